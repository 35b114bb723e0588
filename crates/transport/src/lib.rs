//! `sealwire-transport` carries sealwire envelopes between clients and a relay over WebSocket
//! Secure (tokio-tungstenite over rustls), with the connection security the everyday "secure
//! WebSocket chat" recipe lacks.
//!
//! ```
//! use std::sync::Arc;
//! use sealwire_core::IdentityKeyPair;
//! use sealwire_transport::client::{Client, ClientConfig, Event};
//! use sealwire_transport::frame::{Accepted, Delivery, ServerFrame};
//! use sealwire_transport::server::{Connection, Refusal, Request, Server, ServerConfig, Service, Welcome};
//! use sealwire_transport::tls::{ClientTls, DevCa};
//! use sealwire_transport::code::CloseCode;
//!
//! /// A toy service: a message sent to one's own mailbox comes straight back.
//! struct Mirror;
//!
//! impl Service for Mirror {
//!     async fn connected(&self, _: &Connection) -> Result<Welcome, Refusal> {
//!         Ok(Welcome::default())
//!     }
//!     async fn request(&self, connection: &Connection, request: Request) -> Result<(), Refusal> {
//!         let Request::Send(send) = request else { return Ok(()) };
//!         let delivery = Delivery { delivery: 1, from: connection.mailbox(), id: send.id, payload: send.payload };
//!         let _ = connection.send(&ServerFrame::Accepted(Accepted { id: send.id }));
//!         let _ = connection.send(&ServerFrame::Deliver(delivery));
//!         Ok(())
//!     }
//!     async fn disconnected(&self, _: &Connection, _: CloseCode) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A development CA and a certificate for localhost (production: `ServerTls::from_pem_files`).
//! let ca = DevCa::generate("example CA")?;
//! let server_tls = ca.issue_server(&["localhost"])?.server_tls()?;
//! let config = ServerConfig::new(server_tls, ["localhost"]);
//! let server = Server::bind("127.0.0.1:0".parse()?, config, Arc::new(Mirror)).await?.spawn()?;
//!
//! // The client trusts that CA, authenticates with its identity key and keeps reconnecting.
//! let tls = ClientTls::builder().ca_pem(ca.ca_pem().as_bytes())?.build()?;
//! let url = format!("wss://localhost:{}/", server.local_addr().port());
//! let identity = IdentityKeyPair::generate(&mut rand::rng());
//! let mut client = Client::start(ClientConfig::new(url, tls), identity)?;
//!
//! let id = client.send(vec![client.mailbox()], b"an opaque envelope".to_vec()).await?;
//! loop {
//!     match client.next_event().await {
//!         Some(Event::Delivered(delivery)) => {
//!             assert_eq!((delivery.id, delivery.payload.as_slice()), (id, &b"an opaque envelope"[..]));
//!             client.ack(vec![delivery.delivery]).await?;
//!             break;
//!         }
//!         Some(_) => continue, // connected, accepted
//!         None => panic!("the client stopped"),
//!     }
//! }
//! client.close().await;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it provides
//!
//! | module | what |
//! |---|---|
//! | [`frame`] | the relay protocol's frames (postcard in binary WebSocket messages), mailbox ids |
//! | [`auth`] | challenge-response authentication with the identity key, bound to the server name and the TLS session |
//! | [`token`] | optional HS256 (JWT-compatible) bearer tokens with key ids for rotation |
//! | [`tls`] | rustls configurations: TLS 1.3/1.2, AEAD suites only, CA or webpki roots, pins, mutual TLS, certificate hot reload, dev certificates |
//! | [`limits`] | every timeout, size, buffer and queue bound, with defaults for tens of thousands of connections |
//! | [`server`] | the listener: admission control before TLS (connections in total and per address, connection rate), TLS, Origin allowlist, subprotocol, authentication, heartbeats, slow-consumer cut-off; hands connections to a [`Service`](server::Service) |
//! | [`client`] | a client that reconnects with backoff and jitter, resends what the relay has not accepted, with backpressure |
//! | [`code`] | close codes and error codes |
//!
//! The protocol is specified in `spec/relay-protocol.md` in the repository, with test vectors
//! in `spec/vectors/relay.json`. Plaintext `ws://` exists only behind options named
//! `insecure_*_for_tests`.
//!
//! What the transport does *not* do: it never sees a key that opens an envelope (payloads are
//! opaque `sealwire-core` envelopes), and it leaves routing, storage, quotas and per-identity
//! rate limits to the relay (`sealwire-relay`), which implements [`server::Service`]. (Per-address
//! connection limits are the transport's: [`server::AdmissionLimits`].)
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

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
