//! # sealwire
//!
//! End-to-end encrypted messaging in which the server never holds a key. This facade crate
//! re-exports the parts:
//!
//! - [`core`] (`sealwire-core`): the protocol. Identities, prekeys, asynchronous session setup,
//!   the ratchet with key-rotation epochs, and the key-committing envelope. Sans-IO.
//! - [`transport`] (`sealwire-transport`): envelopes over WebSocket Secure: framing, TLS
//!   (CA or pinned certificates), identity authentication, reconnecting client and server.
//! - [`relay`] (`sealwire-relay`): the blind store-and-forward relay: routing, durable
//!   mailboxes for offline recipients, the prekey directory; it holds no key that opens an
//!   envelope.
//! - [`client`]: the high-level client: contacts, 1:1 and group messages over a relay, with
//!   sessions set up and prekeys published by themselves.
//! - [`store`]: the client's local store, every record encrypted at rest.
//!
//! `cargo run --example demo` runs a relay and three clients in one process and prints what
//! the relay saw beside what the clients read.
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

pub mod client;
pub mod error;
pub mod store;

pub use error::{Error, Result};
pub use sealwire_core as core;
pub use sealwire_relay as relay;
pub use sealwire_transport as transport;

/// The README's code blocks, compiled and run as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
