//! `sealwire-relay` is the blind forwarder: it routes and stores opaque sealwire envelopes for
//! offline recipients and holds no key that can open them.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace so that the
//! layout matches the architecture; routing, durable store-and-forward, the prekey directory and
//! limits are built by their own issue. It exposes nothing but this notice and a re-export of
//! the protocol core.
#![forbid(unsafe_code)]

pub use sealwire_core as core;
