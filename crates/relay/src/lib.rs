//! `sealwire-relay` is the blind store-and-forward relay of sealwire: clients connect over WSS
//! (`sealwire-transport`), authenticate with their identity key and hand it end-to-end
//! encrypted envelopes for mailboxes. It delivers them to connected recipients at once, stores
//! them durably for offline ones until they acknowledge, runs the prekey directory, and holds
//! no key that can open an envelope.
//!
//! ```
//! use sealwire_relay::config::{Config, StoreKind};
//! use sealwire_relay::server::{Certificate, RelayServer};
//! use sealwire_transport::tls::DevCertificate;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let mut config = Config::default();
//!     config.listen = "127.0.0.1:0".parse()?; // any free port
//!     config.admin.listen = "127.0.0.1:0".parse()?;
//!     config.store = StoreKind::Memory; // `Redb` (the default) keeps messages across restarts
//!     let certificate = DevCertificate::generate(&["localhost"])?;
//!     let relay = RelayServer::start(config, Certificate::Fixed(certificate.server_tls()?)).await?;
//!     println!("wss://localhost:{}/", relay.local_addr().port());
//!     relay.shutdown().await; // graceful: finishes commits, closes with "going away"
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # Architecture
//!
//! | module | what |
//! |---|---|
//! | [`server`] | a whole relay from a [`config::Config`]: store, listeners, housekeeping, shutdown |
//! | [`relay`] | the [`Relay`] service: routing, catch-up, acks, the prekey directory |
//! | [`store`] | the [`store::Store`] trait; [`store::RedbStore`] (durable, group commit) and [`store::MemoryStore`] |
//! | [`ratelimit`] | per-connection token buckets that throttle |
//! | [`metrics`], [`admin`] | Prometheus metrics and the admin listener |
//! | [`config`] | the TOML configuration with environment overrides |
//! | [`cli`] | the command line of `sealwire-relay` (and `sealwire relay`) |
//!
//! Connection admission (total and per-address caps, connection rate), TLS, authentication,
//! origins, frame limits, heartbeats and slow consumers are the transport's
//! (`sealwire_transport::server`); this crate configures them.
//!
//! The operator's guide is `crates/relay/README.md`; what the relay stores, logs and enforces
//! is specified in `spec/relay-protocol.md` section 14.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod error;
mod limitlog;
pub mod metrics;
pub mod ratelimit;
mod registry;
pub mod relay;
pub mod server;
pub mod store;

pub use error::{Error, QuotaKind, Result};
pub use relay::{Relay, RelayOptions};
