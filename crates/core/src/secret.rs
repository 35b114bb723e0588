//! Types that hold secret bytes.
//!
//! Every secret lives in a [`Secret32`] (or a struct built from them): boxed, so that moving it
//! does not leave copies on the stack; zeroized on drop; redacted in `Debug`; compared only in
//! constant time. Nothing here implements `Display`, `PartialEq` or `Serialize` for humans.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// 32 secret bytes: a root, chain or message key, a Diffie-Hellman output, or a private key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Secret32(Box<[u8; 32]>);

impl Secret32 {
    /// Takes ownership of `bytes` and wipes the caller's copy.
    pub(crate) fn take(bytes: &mut [u8; 32]) -> Self {
        let secret = Secret32(Box::new(*bytes));
        bytes.zeroize();
        secret
    }

    /// A fresh random secret.
    pub(crate) fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Box::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Secret32(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Mutable access, to overwrite the secret in place (no new allocation, no stray copy).
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; 32] {
        &mut self.0
    }
}

impl core::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

impl Serialize for Secret32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::encoding::fixed::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Secret32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut bytes: Zeroizing<[u8; 32]> =
            Zeroizing::new(crate::encoding::fixed::deserialize(deserializer)?);
        Ok(Secret32::take(&mut bytes))
    }
}

/// An X25519 private key kept as bytes (so that it serializes and zeroizes like any other
/// secret), with its public key alongside.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct DhKeyPair {
    secret: Secret32,
    #[zeroize(skip)]
    #[serde(with = "crate::encoding::fixed")]
    public: [u8; 32],
}

impl DhKeyPair {
    pub(crate) fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let secret = Secret32::random(rng);
        Self::from_secret(secret)
    }

    pub(crate) fn from_secret(secret: Secret32) -> Self {
        let static_secret = x25519_dalek::StaticSecret::from(*secret.expose());
        let public = x25519_dalek::PublicKey::from(&static_secret).to_bytes();
        DhKeyPair { secret, public }
    }

    pub(crate) fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(crate) fn secret(&self) -> &Secret32 {
        &self.secret
    }

    /// X25519 with `their_public`. An all-zero output (a low-order point) is rejected, so a
    /// malicious peer cannot force a known shared secret.
    pub(crate) fn diffie_hellman(&self, their_public: &[u8; 32]) -> Result<Secret32> {
        let static_secret = x25519_dalek::StaticSecret::from(*self.secret.expose());
        let shared = static_secret.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        if !shared.was_contributory() {
            return Err(Error::WeakKey);
        }
        Ok(Secret32(Box::new(*shared.as_bytes())))
    }
}

impl core::fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhKeyPair")
            .field("public", &crate::fmt_hex(&self.public))
            .finish_non_exhaustive()
    }
}

/// Serialized secret state: the bytes zeroize on drop and never print.
///
/// Returned by every `to_bytes` of a type that holds secrets ([`Session`](crate::Session),
/// [`Account`](crate::Account), [`IdentityKeyPair`](crate::IdentityKeyPair)). Store it only
/// encrypted at rest; hand it back to the matching `from_bytes`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The serialized bytes. Do not log them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if empty (never the case for real state).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}
