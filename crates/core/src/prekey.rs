//! Prekeys and prekey bundles: what a party publishes so that others can start sessions with
//! it while it is offline.
//!
//! A *signed prekey* (id, X25519 key, creation time) is signed by the owner's identity and
//! rotated periodically; *one-time prekeys* (id, X25519 key) are each handed out once. A
//! [`PrekeyBundle`] is what a server hands to an initiator. It must be checked with
//! [`PrekeyBundle::verify`] before use: only a [`VerifiedBundle`] can start a session.
//!
//! ```text
//! signed prekey signature = Ed25519-Sign(identity, "sealwire/v1/signed-prekey" ‖ be32(id) ‖ be64(created_at) ‖ key)
//! bundle (postcard)       = identity[128] ‖ id:varint ‖ key[32] ‖ created_at:varint ‖ signature[64]
//!                           ‖ option(one-time: id:varint ‖ key[32])
//! ```
//!
//! One-time prekeys are not signed (as in Signal's X3DH): a server that substitutes one only
//! removes the extra protection it adds; the signed prekey and both identity keys still
//! authenticate the session.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::{PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::kdf::LABEL_SIGNED_PREKEY;
use crate::time::Timestamp;

/// A signed prekey as published: public data only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPrekey {
    /// Identifier, chosen by the owner.
    pub id: u32,
    /// The X25519 public key.
    #[serde(with = "crate::encoding::fixed")]
    pub public_key: [u8; 32],
    /// When the owner created it (Unix seconds, from the owner's clock).
    pub created_at: Timestamp,
    /// Ed25519 signature by the owner's identity.
    #[serde(with = "crate::encoding::fixed")]
    pub signature: [u8; 64],
}

impl SignedPrekey {
    pub(crate) fn signed_message(id: u32, created_at: Timestamp, public_key: &[u8; 32]) -> Vec<u8> {
        [
            LABEL_SIGNED_PREKEY,
            &id.to_be_bytes(),
            &created_at.as_unix_secs().to_be_bytes(),
            public_key,
        ]
        .concat()
    }

    /// Verifies the signature against `identity`.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`].
    pub fn verify(&self, identity: &PublicIdentity) -> Result<()> {
        identity.verify(
            &[&Self::signed_message(
                self.id,
                self.created_at,
                &self.public_key,
            )],
            &self.signature,
            "signed prekey",
        )
    }
}

/// A one-time prekey as published: public data only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePrekey {
    /// Identifier, chosen by the owner.
    pub id: u32,
    /// The X25519 public key.
    #[serde(with = "crate::encoding::fixed")]
    pub public_key: [u8; 32],
}

/// What an initiator needs to start a session with someone: their identity, signed prekey and,
/// if one is left, a one-time prekey. Not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrekeyBundle {
    /// The owner's identity (its binding signature is verified when decoded).
    pub identity: PublicIdentity,
    /// The owner's current signed prekey.
    pub signed_prekey: SignedPrekey,
    /// A one-time prekey, if the server had one left.
    pub one_time_prekey: Option<OneTimePrekey>,
}

#[derive(Serialize, Deserialize)]
struct BundleWire {
    #[serde(with = "crate::encoding::fixed")]
    identity: [u8; PUBLIC_IDENTITY_LEN],
    signed_prekey: SignedPrekey,
    one_time_prekey: Option<OneTimePrekey>,
}

/// Largest encoded bundle accepted.
const MAX_BUNDLE_LEN: usize = 512;

impl PrekeyBundle {
    /// Encodes the bundle (postcard, see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = BundleWire {
            identity: self.identity.to_bytes(),
            signed_prekey: self.signed_prekey.clone(),
            one_time_prekey: self.one_time_prekey.clone(),
        };
        // Serializing plain integers and byte arrays into a Vec cannot fail.
        crate::encoding::to_exact_vec(&wire).unwrap_or_default()
    }

    /// Decodes a bundle. Verifies the identity binding, not yet the signed prekey: call
    /// [`PrekeyBundle::verify`].
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Malformed`], [`Error::InvalidSignature`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(Error::TooLarge {
                what: "prekey bundle",
                len: bytes.len(),
                max: MAX_BUNDLE_LEN,
            });
        }
        let wire: BundleWire =
            postcard::from_bytes(bytes).map_err(|_| Error::Malformed("prekey bundle"))?;
        let bundle = PrekeyBundle {
            identity: PublicIdentity::from_bytes(&wire.identity)?,
            signed_prekey: wire.signed_prekey,
            one_time_prekey: wire.one_time_prekey,
        };
        if bundle.to_bytes() != bytes {
            return Err(Error::Malformed("prekey bundle (not canonical)"));
        }
        Ok(bundle)
    }

    /// Verifies the signed prekey's signature and age. Only a verified bundle can start a
    /// session.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if the signature does not verify under the bundle's identity;
    /// [`Error::StalePrekey`] if the signed prekey is older than `policy` allows or dated in the
    /// future beyond the allowed clock skew.
    pub fn verify(self, policy: &BundlePolicy, now: Timestamp) -> Result<VerifiedBundle> {
        self.signed_prekey.verify(&self.identity)?;
        let created_at = self.signed_prekey.created_at;
        let too_new = created_at > now.plus_secs(policy.max_clock_skew_secs);
        let too_old = policy
            .max_signed_prekey_age_secs
            .is_some_and(|max| now.secs_since(created_at) > max);
        if too_new || too_old {
            return Err(Error::StalePrekey {
                id: self.signed_prekey.id,
                created_at: created_at.as_unix_secs(),
                now: now.as_unix_secs(),
            });
        }
        Ok(VerifiedBundle(self))
    }
}

/// How strict [`PrekeyBundle::verify`] is about signed-prekey age.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundlePolicy {
    /// Reject signed prekeys older than this (seconds). Default: 90 days, so that a prekey
    /// whose owner stopped rotating (lost device, compromised server storage) stops being used.
    /// `None` disables the check.
    pub max_signed_prekey_age_secs: Option<u64>,
    /// Accept signed prekeys dated this far in the future (seconds), for clock skew. Default: 1 day.
    pub max_clock_skew_secs: u64,
}

impl Default for BundlePolicy {
    fn default() -> Self {
        BundlePolicy {
            max_signed_prekey_age_secs: Some(90 * 24 * 60 * 60),
            max_clock_skew_secs: 24 * 60 * 60,
        }
    }
}

/// A prekey bundle whose signatures have been verified. Starts a session with
/// [`Session::initiate`](crate::Session::initiate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle(PrekeyBundle);

impl VerifiedBundle {
    /// The verified bundle.
    pub fn bundle(&self) -> &PrekeyBundle {
        &self.0
    }
}
