//! The server side: accepts TCP connections, runs TLS, the WebSocket upgrade (origin and
//! subprotocol checks) and authentication under timeouts, then hands each authenticated
//! connection to a [`Service`] (the relay).
//!
//! Before any of that, admission control ([`AdmissionLimits`]) bounds the open connections in
//! total and per client address, and the rate of new connections per address: a connection
//! over a limit is closed right after `accept()`, before TLS (see [Admission](#admission)).
//!
//! Each connection is one task. Its reads, its bounded outbound queue, heartbeats and timeouts
//! are multiplexed there; see [`Limits`] for every bound and what happens on breach.
//!
//! # Admission
//!
//! | limit | default | on breach |
//! |---|---|---|
//! | `max_connections` | 10 000 | TCP closed before TLS |
//! | `max_connections_per_ip` | 64 | TCP closed before TLS |
//! | `connection_rate_per_ip` | 20 new connections per second | TCP closed before TLS |
//! | `connection_burst_per_ip` | 40 | (the rate's token bucket capacity) |
//!
//! IPv6 addresses count by their /64 prefix; IPv4-mapped IPv6 addresses count as the IPv4
//! address. Refusals are reported to [`Service::refused`]; [`ServerHandle::connections`] tells
//! how many admitted connections are open.

mod admission;
mod connection;
mod request;
mod service;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use admission::{AdmissionLimits, AdmissionRefusal, address_group};
pub use connection::read_error_code;
pub use service::{Connection, HandshakeFailure, Refusal, Request, Service, Welcome};
pub use upgrade::OriginPolicy;

use self::admission::Admission;
use crate::auth::AuthPolicy;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::tls::ServerTls;
use crate::token::TokenVerifier;

/// How the listener protects connections.
#[derive(Debug, Clone)]
pub enum Security {
    /// TLS (WSS). The only mode for real deployments.
    Tls(ServerTls),
    /// Plaintext WebSocket (`ws://`), without TLS and without channel binding. For tests
    /// only: anyone on the path reads the traffic metadata and can hijack the connection.
    InsecurePlaintext,
}

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// TLS or (tests only) plaintext.
    pub security: Security,
    /// Server names and the optional bearer-token requirement.
    pub auth: AuthPolicy,
    /// Browser origins allowed to connect.
    pub origins: OriginPolicy,
    /// Timeouts, sizes, buffers and queues.
    pub limits: Limits,
    /// Bounds on open connections and on the connection rate, checked at accept time.
    pub admission: AdmissionLimits,
}

impl ServerConfig {
    /// A TLS server answering to `server_names` (the names clients put in their URLs), with
    /// the default origin policy (no browser origins, non-browser clients allowed), no token
    /// requirement and default limits.
    pub fn new<I, S>(tls: ServerTls, server_names: I) -> ServerConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ServerConfig::with_security(Security::Tls(tls), server_names)
    }

    /// A plaintext (`ws://`) server. **Insecure**: for tests only.
    pub fn insecure_plaintext_for_tests<I, S>(server_names: I) -> ServerConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ServerConfig::with_security(Security::InsecurePlaintext, server_names)
    }

    fn with_security<I, S>(security: Security, server_names: I) -> ServerConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ServerConfig {
            security,
            auth: AuthPolicy {
                server_names: server_names.into_iter().map(Into::into).collect(),
                token: None,
            },
            origins: OriginPolicy::default(),
            limits: Limits::default(),
            admission: AdmissionLimits::default(),
        }
    }

    /// Requires a valid bearer token in every `hello`, and closes an open connection with
    /// 4003 `token_expired` when its token expires (`exp` plus the verifier's leeway).
    pub fn require_token(mut self, verifier: TokenVerifier) -> ServerConfig {
        self.auth.token = Some(verifier);
        self
    }

    /// Sets the origin policy.
    pub fn origins(mut self, origins: OriginPolicy) -> ServerConfig {
        self.origins = origins;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> ServerConfig {
        self.limits = limits;
        self
    }

    /// Sets the admission limits.
    pub fn admission(mut self, admission: AdmissionLimits) -> ServerConfig {
        self.admission = admission;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no server names, a name longer than 255 bytes, or
    /// inconsistent limits or admission limits.
    pub fn validate(&self) -> Result<()> {
        if self.auth.server_names.is_empty() {
            return Err(Error::InvalidConfig(
                "server_names: at least one is needed".into(),
            ));
        }
        if let Some(name) = self
            .auth
            .server_names
            .iter()
            .find(|name| name.is_empty() || name.len() > crate::auth::MAX_SERVER_NAME_LEN)
        {
            return Err(Error::InvalidConfig(format!(
                "server_names: {name:?} must be 1 to 255 bytes"
            )));
        }
        self.limits.validate()?;
        self.admission.validate()
    }
}

/// State shared by the accept loop and every connection task.
pub(crate) struct Shared<S> {
    pub(crate) config: ServerConfig,
    pub(crate) service: Arc<S>,
    pub(crate) next_id: AtomicU64,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) admission: Arc<Admission>,
}

/// A bound server, not yet accepting.
pub struct Server<S: Service> {
    listener: TcpListener,
    shared: Arc<Shared<S>>,
}

impl<S: Service> Server<S> {
    /// Binds `addr` (use port 0 for any free port).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`ServerConfig::validate`]; [`Error::Io`] if the address
    /// cannot be bound.
    pub async fn bind(addr: SocketAddr, config: ServerConfig, service: Arc<S>) -> Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(addr).await?;
        let (shutdown, _) = watch::channel(false);
        let admission = Admission::new(config.admission.clone());
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                admission,
                config,
                service,
                next_id: AtomicU64::new(1),
                shutdown,
            }),
        })
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// [`Error::Io`] if the socket has no local address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Starts accepting on a background task.
    ///
    /// # Errors
    /// [`Error::Io`] if the socket has no local address.
    pub fn spawn(self) -> Result<ServerHandle> {
        let local_addr = self.local_addr()?;
        let shutdown = self.shared.shutdown.clone();
        let admission = self.shared.admission.clone();
        let task = tokio::spawn(accept_loop(self.listener, self.shared));
        Ok(ServerHandle {
            local_addr,
            shutdown,
            admission,
            task,
        })
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    admission: Arc<Admission>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Admitted TCP connections currently open, before and after authentication (what
    /// [`AdmissionLimits::max_connections`] bounds). A connection counts from `accept()` until
    /// its task has ended, after [`Service::disconnected`].
    pub fn connections(&self) -> usize {
        self.admission.connections()
    }

    /// Graceful shutdown: stops accepting, ends every connection, and returns once all
    /// connection tasks ended.
    ///
    /// Each connection ends promptly, whatever phase it is in: one still in TLS or the
    /// WebSocket upgrade is dropped; one authenticating is closed with 1001 `going_away`
    /// (reported to [`Service::auth_failed`]); an authenticated one is closed with 1001
    /// `going_away` after the request in progress, if any, and after the frames already in
    /// its outbound queue (answers, deliveries) are written, then reported to
    /// [`Service::disconnected`]. The wait for a connection is thus bounded by the service
    /// call in progress ([`Service::connected`] or [`Service::request`]), then the write
    /// timeout ([`Limits::write_timeout`]) for the queued frames, the write timeout for the
    /// close frame and a short grace (at most 2 s) for the peer's close frame.
    pub async fn shutdown(self) {
        // Not `send`, which stores nothing while no task has subscribed yet (a shutdown right
        // after `spawn`, before the accept loop ran).
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }

    /// Stops at once, as a crash would: the listener and every connection are dropped without
    /// a close frame. Meant for tests of what clients do when the server vanishes.
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn accept_loop<S: Service>(listener: TcpListener, shared: Arc<Shared<S>>) {
    let mut connections = JoinSet::new();
    // Checked by value: a shutdown requested before this task first ran is seen too.
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            () = connection::shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match shared.admission.admit(peer.ip()) {
                    Ok(permit) => {
                        let shared = shared.clone();
                        // The permit lives as long as the task, however the task ends. The
                        // `serve` future is made inside the task: made outside and moved in, it
                        // would be held twice (the captured value and the awaited one).
                        connections.spawn(async move {
                            let _permit = permit;
                            connection::serve(tcp, peer, shared).await;
                        });
                    }
                    Err(reason) => {
                        // Closed before any TLS work: no handshake, no task.
                        drop(tcp);
                        tracing::debug!(%peer, %reason, "connection refused");
                        shared.service.refused(peer, reason);
                    }
                },
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::CloseCode;
    use crate::tls::DevCertificate;

    struct Nothing;

    impl Service for Nothing {
        async fn connected(&self, _: &Connection) -> std::result::Result<Welcome, Refusal> {
            Ok(Welcome::default())
        }
        async fn request(&self, _: &Connection, _: Request) -> std::result::Result<(), Refusal> {
            Ok(())
        }
        async fn disconnected(&self, _: &Connection, _: CloseCode) {}
    }

    /// An idle connection costs the server its task's future for as long as it is open: the
    /// handshake and the service's futures are boxed so that they do not size it. Inline, the
    /// future was 24 KiB (`bench/README.md`, idle memory); this fails if it grows back.
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let certificate = DevCertificate::generate(&["localhost"]).unwrap();
        let config = ServerConfig::new(certificate.server_tls().unwrap(), ["localhost"]);
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), config, Arc::new(Nothing))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let peer = tcp.local_addr().unwrap();
        let serve = connection::serve(tcp, peer, server.shared.clone());
        let size = std::mem::size_of_val(&serve);
        assert!(
            size <= 8 * 1024,
            "a connection's task future is {size} bytes"
        );
    }
}
