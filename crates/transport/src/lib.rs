//! `sealwire-transport` carries sealwire envelopes between clients and a relay over
//! WebSocket Secure.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod code;
pub mod error;
pub mod frame;
pub mod limits;
pub mod server;
pub mod tls;
pub mod token;

pub use error::{Error, Result};
pub use sealwire_core as core;
