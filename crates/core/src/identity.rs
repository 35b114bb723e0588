//! Long-term identities.
//!
//! An identity is an Ed25519 signing key plus an X25519 key-agreement key that the signing key
//! signs (the *identity binding*). Two separate keys, rather than one Ed25519 key converted to
//! X25519 (XEdDSA-style), keep each key in the one role its primitive was analysed for and let
//! implementations use stock Ed25519 and X25519 APIs. The binding signature makes the pair one
//! identity: [`PublicIdentity::from_bytes`] verifies it, so an unverified identity cannot exist.
//!
//! Encoding of a public identity (128 bytes, fixed):
//!
//! ```text
//! signing key (Ed25519, 32) ‖ agreement key (X25519, 32) ‖ binding signature (Ed25519, 64)
//! binding signature = Ed25519-Sign(signing key, "sealwire/v1/identity-binding" ‖ signing key ‖ agreement key)
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::fingerprint::SafetyNumber;
use crate::kdf::{LABEL_APPLICATION, LABEL_IDENTITY_BINDING};
use crate::secret::{DhKeyPair, Secret32, SecretBytes};

/// Length of an encoded [`PublicIdentity`].
pub const PUBLIC_IDENTITY_LEN: usize = 128;

/// Format version of serialized [`IdentityKeyPair`] state.
const IDENTITY_STATE_VERSION: u16 = 1;

/// The public half of an identity, with its binding signature verified.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    signing: VerifyingKey,
    agreement: [u8; 32],
    binding: Signature,
}

impl PublicIdentity {
    /// Decodes and verifies an encoded public identity (128 bytes).
    ///
    /// # Errors
    /// [`Error::Malformed`] if the length or a key encoding is wrong,
    /// [`Error::InvalidSignature`] if the binding signature does not verify (strict
    /// verification) or the signing key is a weak (small-order) point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; PUBLIC_IDENTITY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Malformed("public identity (must be 128 bytes)"))?;
        let mut signing = [0u8; 32];
        let mut agreement = [0u8; 32];
        let mut binding = [0u8; 64];
        signing.copy_from_slice(&bytes[..32]);
        agreement.copy_from_slice(&bytes[32..64]);
        binding.copy_from_slice(&bytes[64..]);
        let signing = VerifyingKey::from_bytes(&signing)
            .map_err(|_| Error::Malformed("identity signing key"))?;
        if signing.is_weak() {
            return Err(Error::InvalidSignature("identity (weak signing key)"));
        }
        let binding = Signature::from_bytes(&binding);
        signing
            .verify_strict(&binding_message(&signing, &agreement), &binding)
            .map_err(|_| Error::InvalidSignature("identity binding"))?;
        Ok(PublicIdentity {
            signing,
            agreement,
            binding,
        })
    }

    /// The 128-byte encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        let mut out = [0u8; PUBLIC_IDENTITY_LEN];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..64].copy_from_slice(&self.agreement);
        out[64..].copy_from_slice(&self.binding.to_bytes());
        out
    }

    /// The Ed25519 signing (verifying) key.
    pub fn signing_key(&self) -> &[u8; 32] {
        self.signing.as_bytes()
    }

    /// The X25519 key-agreement key.
    pub fn agreement_key(&self) -> &[u8; 32] {
        &self.agreement
    }

    /// The two public keys, `signing ‖ agreement` (64 bytes): what sessions bind and what
    /// fingerprints cover.
    pub fn key_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(&self.agreement);
        out
    }

    /// The safety number of a conversation between this identity and `other`. Both parties
    /// compute the same number; compare it out of band to rule out a man in the middle.
    pub fn safety_number(&self, other: &PublicIdentity) -> SafetyNumber {
        SafetyNumber::new(self, other)
    }

    /// Verifies a signature made with [`IdentityKeyPair::sign_with_label`] for `label`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty or over-long label; [`Error::InvalidSignature`]
    /// if the signature does not verify (strictly).
    pub fn verify_with_label(
        &self,
        label: &[u8],
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<()> {
        let label_len = application_label_len(label)?;
        self.verify(
            &[LABEL_APPLICATION, &label_len, label, message],
            signature,
            "application signature",
        )
    }

    /// Verifies (strictly) an Ed25519 signature by this identity over the concatenated
    /// `parts`; `what` names the signed object in the error.
    pub(crate) fn verify(
        &self,
        parts: &[&[u8]],
        signature: &[u8; 64],
        what: &'static str,
    ) -> Result<()> {
        let message: Vec<u8> = parts.concat();
        self.signing
            .verify_strict(&message, &Signature::from_bytes(signature))
            .map_err(|_| Error::InvalidSignature(what))
    }
}

impl core::fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("signing", &crate::fmt_hex(self.signing.as_bytes()))
            .field("agreement", &crate::fmt_hex(&self.agreement))
            .finish_non_exhaustive()
    }
}

/// `be16(len(label))` for an application signature label of 1 to 255 bytes.
fn application_label_len(label: &[u8]) -> Result<[u8; 2]> {
    match u16::try_from(label.len()) {
        Ok(len @ 1..=255) => Ok(len.to_be_bytes()),
        _ => Err(Error::InvalidConfig(
            "application signature label must be 1 to 255 bytes",
        )),
    }
}

fn binding_message(signing: &VerifyingKey, agreement: &[u8; 32]) -> Vec<u8> {
    [LABEL_IDENTITY_BINDING, signing.as_bytes(), agreement].concat()
}

/// A full identity: the secret keys and the public identity they define.
///
/// Secret keys zeroize on drop and never appear in `Debug`.
pub struct IdentityKeyPair {
    signing: SigningKey,
    agreement: DhKeyPair,
    public: PublicIdentity,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct IdentityState {
    version: u16,
    signing_seed: Secret32,
    agreement_secret: Secret32,
}

impl IdentityKeyPair {
    /// Generates a new identity from `rng`.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let signing = Secret32::random(rng);
        let agreement = Secret32::random(rng);
        Self::from_secrets(&signing, agreement)
    }

    pub(crate) fn from_secrets(signing_seed: &Secret32, agreement: Secret32) -> Self {
        let signing = SigningKey::from_bytes(signing_seed.expose());
        let agreement = DhKeyPair::from_secret(agreement);
        let verifying = signing.verifying_key();
        let binding = signing.sign(&binding_message(&verifying, agreement.public()));
        let public = PublicIdentity {
            signing: verifying,
            agreement: *agreement.public(),
            binding,
        };
        IdentityKeyPair {
            signing,
            agreement,
            public,
        }
    }

    /// The public identity to publish.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// Signs `parts` concatenated (callers prefix a protocol label).
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; 64] {
        let message = Zeroizing::new(parts.concat());
        self.signing.sign(&message).to_bytes()
    }

    pub(crate) fn agreement(&self) -> &DhKeyPair {
        &self.agreement
    }

    /// The Ed25519 seed (secret). Callers must zeroize the copy.
    pub(crate) fn signing_seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Signs `message` for an application-level purpose named by `label` (for example
    /// transport authentication), with the identity's Ed25519 key.
    ///
    /// The signed bytes are `"sealwire/v1/application" ‖ be16(len(label)) ‖ label ‖ message`:
    /// the fixed prefix differs from every protocol signature's prefix and the label is
    /// length-prefixed, so no choice of label and message can produce a signature that the
    /// protocol (or another label) would accept. Verify with
    /// [`PublicIdentity::verify_with_label`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `label` is empty or longer than 255 bytes.
    pub fn sign_with_label(&self, label: &[u8], message: &[u8]) -> Result<[u8; 64]> {
        let label_len = application_label_len(label)?;
        Ok(self.sign(&[LABEL_APPLICATION, &label_len, label, message]))
    }

    /// Serializes the secret keys (versioned). The result is secret: store it encrypted.
    pub fn to_bytes(&self) -> SecretBytes {
        let mut seed = self.signing.to_bytes();
        let state = IdentityState {
            version: IDENTITY_STATE_VERSION,
            signing_seed: Secret32::take(&mut seed),
            agreement_secret: self.agreement.secret().clone(),
        };
        SecretBytes::new(crate::state::encode(&state))
    }

    /// Restores an identity serialized by [`IdentityKeyPair::to_bytes`].
    ///
    /// # Errors
    /// [`Error::InvalidState`] or [`Error::UnsupportedStateVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let state: IdentityState = crate::state::decode(bytes, IDENTITY_STATE_VERSION)?;
        Ok(Self::from_secrets(
            &state.signing_seed,
            state.agreement_secret.clone(),
        ))
    }
}

impl core::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
