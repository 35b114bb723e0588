//! Wire format (spec 3, 7.3, 10.1): an encoder and a strictly canonical decoder of the
//! envelope header, the framing checks of spec 11.2 steps 1-4, and sealing and opening
//! (11.1 step 5, 11.2 step 10) under given message keys.

use std::ops::Range;

use hmac::Mac;
use sealwire_core::{EnvelopeHeader, EnvelopeKind, Error};

use crate::primitives::{Keys, gcm_open, gcm_seal, hmac, pad_len, padme, unpad};
use crate::{MAX_ENVELOPE, MIN_PADDED};

pub(crate) fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// Reads a varint; with `strict`, rejects overlong encodings and values over `max`.
pub(crate) fn read_varint(bytes: &[u8], pos: &mut usize, max: u64, strict: bool) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(*pos + i)?;
        value |= u64::from(byte & 0x7F).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            if strict && ((i > 0 && byte == 0) || value > max) {
                return None;
            }
            *pos += i + 1;
            return Some(value);
        }
    }
    None
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: u8,
    pub(crate) session_id: [u8; 16],
    pub(crate) epoch: u32,
    pub(crate) parent: u32,
    pub(crate) counter: u32,
    pub(crate) previous: Option<(u32, u32)>,
    pub(crate) ratchet_key: [u8; 32],
    pub(crate) setup: Option<Setup>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Setup {
    pub(crate) base_key: [u8; 32],
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) sealed_identity: Vec<u8>,
}

pub(crate) fn encode_header(h: &Header) -> Vec<u8> {
    let mut out = vec![1, 1, h.kind];
    out.extend_from_slice(&h.session_id);
    for field in [h.epoch, h.parent, h.counter] {
        out.extend(varint(field.into()));
    }
    match h.previous {
        Some((epoch, length)) => {
            out.push(1);
            out.extend(varint(epoch.into()));
            out.extend(varint(length.into()));
        }
        None => out.push(0),
    }
    out.extend_from_slice(&h.ratchet_key);
    if let Some(s) = &h.setup {
        out.extend_from_slice(&s.base_key);
        out.extend(varint(s.signed_prekey_id.into()));
        match s.one_time_prekey_id {
            Some(id) => {
                out.push(1);
                out.extend(varint(id.into()));
            }
            None => out.push(0),
        }
        out.extend_from_slice(&s.sealed_identity);
    }
    out
}

/// Byte ranges of the header fields, for locating mutations.
pub(crate) fn header_fields(h: &Header) -> Vec<(&'static str, Range<usize>)> {
    let vl = |v: u32| varint(v.into()).len();
    let previous = h.previous.map_or(1, |(e, l)| 1 + vl(e) + vl(l));
    let mut lens = vec![
        ("session_id", 16),
        ("epoch", vl(h.epoch)),
        ("parent", vl(h.parent)),
        ("counter", vl(h.counter)),
        ("previous", previous),
        ("ratchet_key", 32),
    ];
    if let Some(s) = &h.setup {
        let opk = s.one_time_prekey_id.map_or(1, |id| 1 + vl(id));
        lens.extend([
            ("base_key", 32),
            ("signed_prekey_id", vl(s.signed_prekey_id)),
            ("one_time_prekey_id", opk),
            ("sealed_identity", 144),
        ]);
    }
    let mut start = 3;
    lens.into_iter()
        .map(|(name, len)| {
            start += len;
            (name, start - len..start)
        })
        .collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let out = self.bytes.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        read_varint(self.bytes, &mut self.pos, u32::MAX.into(), true).map(|v| v as u32)
    }
    fn tag(&mut self) -> Option<bool> {
        match self.take(1)?[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// Decodes a header canonically; returns it and its length.
pub(crate) fn decode_header(bytes: &[u8]) -> Option<(Header, usize)> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(2)? != [1, 1] {
        return None;
    }
    let kind = u8::try_from(r.u32()?).ok().filter(|k| *k <= 1)?;
    let session_id = r.array()?;
    let (epoch, parent, counter) = (r.u32()?, r.u32()?, r.u32()?);
    let previous = match r.tag()? {
        true => Some((r.u32()?, r.u32()?)),
        false => None,
    };
    let ratchet_key = r.array()?;
    let setup = match kind {
        0 => Some(Setup {
            base_key: r.array()?,
            signed_prekey_id: r.u32()?,
            one_time_prekey_id: if r.tag()? { Some(r.u32()?) } else { None },
            sealed_identity: r.take(144)?.to_vec(),
        }),
        _ => None,
    };
    let header = Header {
        kind,
        session_id,
        epoch,
        parent,
        counter,
        previous,
        ratchet_key,
        setup,
    };
    Some((header, r.pos))
}

pub(crate) struct Envelope<'a> {
    pub(crate) header: Header,
    pub(crate) header_bytes: &'a [u8],
    /// AES-GCM output (ciphertext ‖ GCM tag), without its length prefix.
    pub(crate) ciphertext: &'a [u8],
    pub(crate) ciphertext_start: usize,
    pub(crate) tag: &'a [u8],
}

/// Framing checks of spec 11.2 steps 1-4, with the error class on failure.
pub(crate) fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, &'static str> {
    if bytes.len() > MAX_ENVELOPE {
        return Err("too_large");
    }
    match bytes {
        [] | [_] => return Err("malformed"),
        [v, ..] if *v != 1 => return Err("unsupported_version"),
        [_, s, ..] if *s != 1 => return Err("unsupported_suite"),
        _ => {}
    }
    let (header, header_len) = decode_header(bytes).ok_or("malformed")?;
    let mut pos = header_len;
    let len = read_varint(bytes, &mut pos, u32::MAX.into(), true).ok_or("malformed")? as usize;
    let ciphertext = bytes.get(pos..pos + len).ok_or("malformed")?;
    let tag = &bytes[pos + len..];
    let padded = len.checked_sub(16).ok_or("malformed")?;
    if tag.len() != 32 || padded < MIN_PADDED || padme(padded) != padded {
        return Err("malformed");
    }
    Ok(Envelope {
        header,
        header_bytes: &bytes[..header_len],
        ciphertext,
        ciphertext_start: pos,
        tag,
    })
}

/// Spec 11.1 step 5: `header ‖ varint(len) ‖ AES-GCM(padded) ‖ HMAC` (deterministic).
pub(crate) fn seal_envelope(
    header: &[u8],
    keys: &Keys,
    ad: &[u8; 32],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut padded = plaintext.to_vec();
    padded.push(0x80);
    padded.resize(pad_len(plaintext.len()), 0);
    let ciphertext = gcm_seal(&keys.aes, &keys.nonce, &[header, ad].concat(), &padded);
    let tag = hmac(&keys.mac, &[header, ad, &keys.nonce, &ciphertext])
        .finalize()
        .into_bytes();
    [header, &varint(ciphertext.len() as u64), &ciphertext, &tag].concat()
}

/// Spec 11.2 step 10: HMAC first (constant time), then AES-GCM, then unpadding.
pub(crate) fn open(
    env: &Envelope<'_>,
    keys: &Keys,
    ad: &[u8; 32],
) -> Result<Vec<u8>, &'static str> {
    if !hmac_valid(env, keys, ad) {
        return Err("decrypt_failed");
    }
    let padded = gcm_open_envelope(env, keys, ad).ok_or("decrypt_failed")?;
    unpad(&padded).map(<[u8]>::to_vec).ok_or("malformed")
}

/// The HMAC check of [`open`]: `HMAC(header ‖ AD ‖ nonce ‖ ciphertext)` equals the envelope's
/// tag (compared in constant time).
pub(crate) fn hmac_valid(env: &Envelope<'_>, keys: &Keys, ad: &[u8; 32]) -> bool {
    hmac(
        &keys.mac,
        &[env.header_bytes, ad, &keys.nonce, env.ciphertext],
    )
    .verify_slice(env.tag)
    .is_ok()
}

/// The AES-GCM step of [`open`]: the padded plaintext, if the ciphertext authenticates under
/// `header ‖ AD`.
pub(crate) fn gcm_open_envelope(env: &Envelope<'_>, keys: &Keys, ad: &[u8; 32]) -> Option<Vec<u8>> {
    let aad = [env.header_bytes, ad].concat();
    gcm_open(&keys.aes, &keys.nonce, &aad, env.ciphertext)
}

/// The class of a public-API error, as the vectors name them.
pub(crate) fn class(error: &Error) -> &'static str {
    match error {
        Error::Malformed(_) => "malformed",
        Error::UnsupportedVersion(_) => "unsupported_version",
        Error::UnsupportedSuite(_) => "unsupported_suite",
        Error::TooLarge { .. } => "too_large",
        _ => "other",
    }
}

/// The envelope's framing and public header agree between this decoder and the public API.
pub(crate) fn check_public_header(envelope: &[u8]) {
    match (parse_envelope(envelope), EnvelopeHeader::parse(envelope)) {
        (Ok(mine), Ok(theirs)) => {
            assert_eq!(theirs.session_id().as_bytes(), &mine.header.session_id);
            assert_eq!(theirs.epoch(), mine.header.epoch);
            assert_eq!(theirs.counter(), mine.header.counter);
            let kind = if mine.header.kind == 0 {
                EnvelopeKind::Initial
            } else {
                EnvelopeKind::Message
            };
            assert_eq!(theirs.kind(), kind);
        }
        (Err(mine), Err(theirs)) => assert_eq!(mine, class(&theirs), "framing error class"),
        (mine, theirs) => panic!(
            "framing disagrees: this decoder {:?}, EnvelopeHeader::parse {theirs:?}",
            mine.err()
        ),
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
