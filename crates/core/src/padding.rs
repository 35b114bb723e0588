//! Plaintext padding (Padmé), so that envelope sizes leak less about message lengths.
//!
//! A plaintext of `n` bytes is framed as `plaintext ‖ 0x80 ‖ 0x00*` to the padded length
//! `max(MIN_PADDED_LEN, padme(n + 1))`. Padmé (Nikitin et al., "Reducing Metadata Leakage from
//! Encrypted Files and Communication with PURBs", PETS 2019) rounds a length `L` so that only
//! `O(log log L)` bits of it remain, for at most 12% overhead:
//!
//! ```text
//! E = floor(log2 L);  S = floor(log2 E) + 1;  z = E - S;  padme(L) = (L + 2^z - 1) & !(2^z - 1)
//! ```
//!
//! The minimum of 32 bytes hides the length of short messages ("ok", "yes") entirely. Padding
//! is removed only after the envelope has been authenticated, so unpadding is no oracle.

use crate::error::{Error, Result};

/// Smallest padded plaintext length.
pub const MIN_PADDED_LEN: usize = 32;

/// Padmé rounding of `len` (identity for `len < 2`).
pub(crate) fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len), >= 1
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let z = e - s;
    let mask = (1usize << z) - 1;
    (len + mask) & !mask
}

/// The padded length for a plaintext of `plaintext_len` bytes.
pub fn padded_len(plaintext_len: usize) -> usize {
    padme(plaintext_len + 1).max(MIN_PADDED_LEN)
}

/// True if `len` is a length that [`padded_len`] can produce.
pub(crate) fn is_padded_len(len: usize) -> bool {
    len >= MIN_PADDED_LEN && padme(len) == len
}

/// Appends the padding for `plaintext` (already in `buf` from `start`) in place.
pub(crate) fn pad_in_place(buf: &mut Vec<u8>, start: usize) {
    let plaintext_len = buf.len() - start;
    buf.push(0x80);
    buf.resize(start + padded_len(plaintext_len), 0);
}

/// Removes the padding in place. `buf` holds exactly the padded plaintext.
pub(crate) fn unpad_in_place(buf: &mut Vec<u8>) -> Result<()> {
    let marker = buf
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(Error::Malformed("padding"))?;
    if buf[marker] != 0x80 {
        return Err(Error::Malformed("padding"));
    }
    buf.truncate(marker);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_matches_reference_values() {
        // Reference values computed independently (Python) from the formula in the module docs.
        let cases = [
            (2, 2),
            (9, 10),
            (33, 36),
            (65, 72),
            (100, 104),
            (257, 272),
            (1000, 1024),
            (1025, 1088),
            (65_536, 65_536),
        ];
        for (input, expected) in cases {
            assert_eq!(padme(input), expected, "padme({input})");
        }
    }

    #[test]
    fn padme_is_idempotent_monotone_and_bounded() {
        let mut previous = 0;
        for len in 2..70_000usize {
            let padded = padme(len);
            assert!(padded >= len);
            assert_eq!(padme(padded), padded);
            assert!(padded >= previous);
            assert!(
                padded as f64 <= len as f64 * 1.12 + 1.0,
                "{len} -> {padded}"
            );
            previous = padded;
        }
    }

    #[test]
    fn pad_roundtrip_and_every_padded_len_is_valid() {
        for len in 0..3000usize {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut buf = plaintext.clone();
            pad_in_place(&mut buf, 0);
            assert_eq!(buf.len(), padded_len(len));
            assert!(is_padded_len(buf.len()));
            unpad_in_place(&mut buf).unwrap();
            assert_eq!(buf, plaintext);
        }
    }

    #[test]
    fn bad_padding_is_rejected() {
        assert!(unpad_in_place(&mut vec![0u8; 32]).is_err());
        let mut wrong_marker = vec![0u8; 32];
        wrong_marker[3] = 0x81;
        assert!(unpad_in_place(&mut wrong_marker).is_err());
    }
}
