//! `sealwire-transport` carries sealwire envelopes between clients and a relay over
//! WebSocket Secure.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace so that the
//! layout matches the architecture; the transport (connection authentication, origin checks,
//! limits, heartbeats, reconnect) is specified and built by its own issue. It exposes nothing
//! but this notice and a re-export of the protocol core, whose envelopes it will carry.
#![forbid(unsafe_code)]

pub use sealwire_core as core;
