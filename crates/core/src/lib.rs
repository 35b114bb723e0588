//! # sealwire-core
//!
//! The sealwire protocol: identities, prekeys, asynchronous session setup, a ratchet with
//! explicit key-rotation epochs, and the key-committing envelope. Sans-IO: this crate does no
//! network or file I/O and reads no clock. Callers pass bytes in, get bytes out, and supply
//! randomness (any [`rand_core::CryptoRng`]) and the current time ([`Timestamp`]).
//!
//! Alice starts a session from Bob's prekey bundle while Bob is offline; Bob creates his side
//! from Alice's first envelope; then they talk:
//!
//! ```
//! use sealwire_core::{Account, BundlePolicy, IdentityKeyPair, Session, SessionConfig, Timestamp};
//!
//! # fn main() -> Result<(), sealwire_core::Error> {
//! let mut rng = rand::rng();
//! let now = Timestamp::from_unix_secs(1_780_000_000);
//!
//! // Bob publishes a bundle (in practice through the relay's prekey directory).
//! let mut bob = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
//! let one_time = bob.generate_one_time_prekeys(1, &mut rng)?;
//! let bundle = bob.bundle(Some(one_time[0].id))?;
//!
//! // Alice verifies it and seals her first message.
//! let alice_identity = IdentityKeyPair::generate(&mut rng);
//! let verified = bundle.verify(&BundlePolicy::default(), now)?;
//! let mut alice = Session::initiate(&alice_identity, &verified, SessionConfig::default(), &mut rng, now)?;
//! let first = alice.seal(b"hello Bob", &mut rng, now)?;
//!
//! // Bob accepts it: that creates his session and opens the message.
//! let accepted = bob.accept(&first, now)?;
//! assert_eq!(accepted.plaintext, b"hello Bob");
//! assert_eq!(&accepted.peer, alice_identity.public());
//! let mut bob_session = accepted.session;
//!
//! // Replies ratchet forward; a replay is rejected.
//! let reply = bob_session.seal(b"hi Alice", &mut rng, now)?;
//! assert_eq!(alice.open(&reply, now)?, b"hi Alice");
//! assert_eq!(alice.open(&reply, now), Err(sealwire_core::Error::Replay));
//!
//! // Both can compare the same safety number out of band.
//! assert_eq!(
//!     alice.peer_identity().safety_number(alice_identity.public()),
//!     bob_session.peer_identity().safety_number(bob.identity().public()),
//! );
//! # Ok(())
//! # }
//! ```
//!
//! ## Map of the crate
//!
//! | module | concept |
//! |---|---|
//! | [`identity`](IdentityKeyPair) | Ed25519 + X25519 identities, their 128-byte public encoding |
//! | [`fingerprint`](SafetyNumber) | safety numbers |
//! | [`prekey`](PrekeyBundle) | signed and one-time prekeys, bundles and their verification |
//! | [`account`](Account) | the responder's prekey secrets; turning an initial envelope into a session |
//! | `handshake` | the X3DH-style setup and the sealed initiator identity |
//! | `epoch`, `ratchet` | the epoch tree, sending and receiving chains |
//! | `replay` | skipped message keys, replay rejection |
//! | [`envelope`](EnvelopeHeader) | the wire format |
//! | [`group`](Group) | groups: sender-key epochs, signed group envelopes, roles, commits |
//! | `padding` | Padmé padding |
//! | `kdf` | every key derivation and label |
//!
//! The protocol is specified in `spec/sealwire.md` in the repository, with test vectors in
//! `spec/vectors/`.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod account;
mod config;
pub mod encoding;
mod envelope;
mod epoch;
mod error;
mod fingerprint;
mod group;
mod handshake;
mod identity;
mod kdf;
mod padding;
mod prekey;
mod ratchet;
mod replay;
mod secret;
mod session;
mod state;
mod time;
#[cfg(test)]
mod vectors;

pub use account::{Accepted, Account, AccountConfig};
pub use config::SessionConfig;
pub use envelope::{
    EnvelopeHeader, EnvelopeKind, MAC_LEN, MAX_ENVELOPE_LEN, MAX_PLAINTEXT_LEN, PROTOCOL_VERSION,
    SEALED_IDENTITY_LEN, SUITE_V1,
};
pub use error::{Error, Result};
pub use fingerprint::{FINGERPRINT_ITERATIONS, SafetyNumber};
pub use group::{
    Change, CommitOutput, ControlKind, ControlMessage, ControlOutcome, GROUP_SIGNATURE_LEN, Group,
    GroupConfig, GroupEnvelopeHeader, GroupId, GroupOpened, GroupSealed, MAX_COMMIT_CHANGES,
    MAX_CONTROL_LEN, MAX_GROUP_MEMBERS, Member, MemberRole, SenderKeyMessage, Seniority,
};
pub use identity::{IdentityKeyPair, PUBLIC_IDENTITY_LEN, PublicIdentity};
pub use padding::{MIN_PADDED_LEN, padded_len};
pub use prekey::{BundlePolicy, OneTimePrekey, PrekeyBundle, SignedPrekey, VerifiedBundle};
pub use ratchet::Role;
pub use secret::SecretBytes;
pub use session::{Session, SessionId};
pub use time::Timestamp;

/// Re-export of the RNG traits the API takes, so callers need not depend on `rand_core`.
pub use rand_core;

/// Lower-case hex, for `Debug` and `Display` of public values.
pub(crate) fn fmt_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xF)]));
    }
    out
}
