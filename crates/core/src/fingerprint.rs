//! Safety numbers: a numeric fingerprint of a pair of identities, for out-of-band verification.
//!
//! Like Signal's safety numbers: each identity gets a 30-digit fingerprint from an iterated
//! SHA-512 (iterations make brute-forcing a colliding identity expensive); the safety number of
//! a conversation is the two fingerprints sorted and concatenated, so both parties compute the
//! same 60 digits and can read them to each other or compare them on screen.
//!
//! ```text
//! h_0 = SHA-512("sealwire/v1/fingerprint" ‖ key bytes)       key bytes = signing ‖ agreement (64)
//! h_i = SHA-512(h_{i-1} ‖ key bytes)                          for i = 1 ..= 5200
//! digits = for each 5-byte chunk c of h_5200[0..30]: big-endian u40(c) mod 100000, as 5 digits
//! ```

use sha2::{Digest, Sha512};

use crate::identity::PublicIdentity;
use crate::kdf::LABEL_FINGERPRINT;

/// Iterations of SHA-512 per fingerprint (Signal uses the same count).
pub const FINGERPRINT_ITERATIONS: u32 = 5200;

/// The 60-digit safety number of a conversation between two identities.
///
/// Displayed as 12 groups of 5 digits. Equal for both parties whatever the argument order.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber {
    digits: String,
}

impl SafetyNumber {
    pub(crate) fn new(a: &PublicIdentity, b: &PublicIdentity) -> Self {
        let fa = fingerprint_digits(a);
        let fb = fingerprint_digits(b);
        let digits = if fa <= fb { fa + &fb } else { fb + &fa };
        SafetyNumber { digits }
    }

    /// The 60 digits, without separators.
    pub fn digits(&self) -> &str {
        &self.digits
    }
}

impl core::fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, group) in self.digits.as_bytes().chunks(5).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            // Digits are ASCII by construction.
            f.write_str(core::str::from_utf8(group).map_err(|_| core::fmt::Error)?)?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

/// The 30-digit fingerprint of one identity.
pub(crate) fn fingerprint_digits(identity: &PublicIdentity) -> String {
    let key = identity.key_bytes();
    let mut hash = Sha512::new()
        .chain_update(LABEL_FINGERPRINT)
        .chain_update(key)
        .finalize();
    for _ in 0..FINGERPRINT_ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(key)
            .finalize();
    }
    let mut out = String::with_capacity(30);
    for chunk in hash[..30].chunks(5) {
        let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        out.push_str(&format!("{:05}", value % 100_000));
    }
    out
}
