//! # sealwire
//!
//! End-to-end encrypted messaging in which the server never holds a key. This facade crate
//! re-exports the parts:
//!
//! - [`core`] (`sealwire-core`): the protocol. Identities, prekeys, asynchronous session setup,
//!   the ratchet with key-rotation epochs, and the key-committing envelope. Sans-IO.
//! - [`transport`] (`sealwire-transport`): envelopes over WebSocket Secure (in progress).
//! - [`relay`] (`sealwire-relay`): the blind store-and-forward relay (in progress).
//!
//! ```
//! use sealwire::core::{Account, BundlePolicy, IdentityKeyPair, Session, SessionConfig, Timestamp};
//!
//! # fn main() -> Result<(), sealwire::core::Error> {
//! let mut rng = rand::rng();
//! let now = Timestamp::from_unix_secs(1_780_000_000);
//! let mut bob = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
//! let bundle = bob.bundle(None)?.verify(&BundlePolicy::default(), now)?;
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let mut session = Session::initiate(&alice, &bundle, SessionConfig::default(), &mut rng, now)?;
//! let envelope = session.seal(b"hello", &mut rng, now)?;
//! assert_eq!(bob.accept(&envelope, now)?.plaintext, b"hello");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub use sealwire_core as core;
pub use sealwire_relay as relay;
pub use sealwire_transport as transport;

/// The README's code blocks, compiled and run as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
