//! What the server hands to the application (the relay): authenticated connections and their
//! requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use sealwire_core::PublicIdentity;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Bytes;

use super::admission::AdmissionRefusal;
use crate::auth::Authenticated;
use crate::code::{CloseCode, ErrorCode};
use crate::error::{Error, Result};
use crate::frame::{self, Ack, FetchBundle, MailboxId, PrekeyUpload, Send, ServerFrame};
use crate::token::Claims;

/// A request from an authenticated client, already checked against the limits (payload size,
/// recipient count, no duplicate recipients).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Store or deliver a message. Answer with [`ServerFrame::Accepted`] once it is durable.
    Send(Send),
    /// Forget these deliveries of the connection's mailbox.
    Ack(Ack),
    /// Store prekeys for the connection's own mailbox.
    UploadPrekeys(PrekeyUpload),
    /// Hand out a mailbox's bundle.
    FetchBundle(FetchBundle),
}

/// What the service adds to the `ready` frame of a new connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Welcome {
    /// One-time prekeys left in the mailbox's pool.
    pub one_time_prekeys: u32,
}

impl Welcome {
    /// A welcome announcing `one_time_prekeys` left in the pool.
    pub fn new(one_time_prekeys: u32) -> Welcome {
        Welcome { one_time_prekeys }
    }
}

/// How a [`Service`] refuses a request or a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Answer the request with an `error` frame; the connection stays open.
    Error(ErrorCode),
    /// Close the connection with this code.
    Close(CloseCode),
}

/// Why a connection failed before the WebSocket was open (reported to
/// [`Service::handshake_failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The TLS handshake and WebSocket upgrade did not finish within
    /// [`Limits::handshake_timeout`](crate::limits::Limits::handshake_timeout) (a slow or
    /// stalled client: slowloris).
    Timeout,
    /// The TLS handshake failed: the client closed or reset the connection, spoke something
    /// else than TLS, offered nothing acceptable, or presented no valid client certificate
    /// where one is required.
    Tls,
    /// The WebSocket upgrade was refused or failed: an `Origin` not allowed (HTTP 403), the
    /// protocol's subprotocol not offered (HTTP 400), or a malformed HTTP request.
    Upgrade,
}

impl HandshakeFailure {
    /// A short name: `"timeout"`, `"tls"` or `"upgrade"` (for metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Tls => "tls",
            HandshakeFailure::Upgrade => "upgrade",
        }
    }
}

impl core::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The application behind the server: the relay implements it.
///
/// The server calls [`Service::request`] for one connection at a time, in the order the
/// client sent its requests; while it runs, that connection reads nothing more (natural
/// backpressure). Frames for the client go through [`Connection::send`], from any task.
///
/// # Observability hooks
///
/// [`refused`](Service::refused), [`handshake_failed`](Service::handshake_failed) and
/// [`auth_failed`](Service::auth_failed) report connections that never reached
/// [`connected`](Service::connected) (for metrics, logs, or banning abusive addresses). They
/// do nothing by default. They are plain functions called on the server's own tasks (the
/// accept loop for `refused`, the connection's task for the others), so they must be cheap
/// and must not block: count, log, or hand the event to a channel.
///
/// Every TCP connection the server accepts ends in exactly one of: `refused`;
/// `handshake_failed`; `auth_failed`; or `connected` followed by
/// [`disconnected`](Service::disconnected) (even when `connected` refuses, and even when the
/// server shuts down while `connected` runs). The exceptions are
/// [`ServerHandle::abort`](super::ServerHandle::abort), which drops connections without
/// telling anyone, and a graceful [`ServerHandle::shutdown`](super::ServerHandle::shutdown),
/// which drops connections still in TLS or the WebSocket upgrade without a hook (those in
/// authentication are reported to `auth_failed` with 1001 `going_away`).
pub trait Service: core::marker::Send + Sync + 'static {
    /// A connection authenticated: register it and queue its stored messages. The server sends
    /// `ready` (with the returned [`Welcome`]) before anything queued here.
    fn connected(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<Welcome, Refusal>> + core::marker::Send;

    /// A request from the connection's client.
    fn request(
        &self,
        connection: &Connection,
        request: Request,
    ) -> impl Future<Output = Result<(), Refusal>> + core::marker::Send;

    /// The connection ended, with the code sent or received (1006 if it just dropped).
    fn disconnected(
        &self,
        connection: &Connection,
        code: CloseCode,
    ) -> impl Future<Output = ()> + core::marker::Send;

    /// A TCP connection from `peer` was refused by admission control
    /// ([`AdmissionLimits`](super::AdmissionLimits)) and closed before TLS.
    ///
    /// Runs on the accept loop, which accepts nothing else meanwhile: keep it very cheap.
    /// A flood of refused connections calls it once per connection.
    fn refused(&self, peer: SocketAddr, reason: AdmissionRefusal) {
        let _ = (peer, reason);
    }

    /// A connection from `peer` failed before the WebSocket was open: the TLS handshake, the
    /// WebSocket upgrade (including `Origin` and subprotocol refusals), or the handshake
    /// timeout. Runs on the connection's task; keep it cheap.
    fn handshake_failed(&self, peer: SocketAddr, failure: HandshakeFailure) {
        let _ = (peer, failure);
    }

    /// A connection from `peer` did not authenticate: `code` is the close code sent
    /// ([`CloseCode::AUTH_TIMEOUT`] 4000, [`CloseCode::AUTH_FAILED`] 4001, the token codes
    /// 4002–4004, or a protocol code such as 1007 `malformed_frame`, 1008 `policy_violation`
    /// or 1009 `message_too_big` for a first message that is not a `hello`), 1001 `going_away`
    /// if the server shut down first, or 1006 if the peer closed or vanished before sending
    /// its `hello`. Runs on the connection's task; keep it cheap.
    fn auth_failed(&self, peer: SocketAddr, code: CloseCode) {
        let _ = (peer, code);
    }

    /// The transport refused a request of `connection` itself, before [`Service::request`]:
    /// a payload over `max_payload` ([`ErrorCode::PayloadTooLarge`]), too many recipients
    /// ([`ErrorCode::TooManyRecipients`]), or no or duplicate recipients, an empty `ack`
    /// ([`ErrorCode::BadRequest`]). The client got an `error` frame with `code`. Runs on the
    /// connection's task; keep it cheap.
    fn request_refused(&self, connection: &Connection, code: ErrorCode) {
        let _ = (connection, code);
    }
}

/// An authenticated connection, as the [`Service`] sees it. Cheap to clone; usable from any
/// task (for example to deliver a message sent by another client).
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    peer: SocketAddr,
    auth: Authenticated,
    outbound: mpsc::Sender<Bytes>,
    close: CloseSignal,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("mailbox", &self.inner.auth.mailbox)
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        auth: Authenticated,
        outbound: mpsc::Sender<Bytes>,
    ) -> Connection {
        Connection {
            inner: Arc::new(Inner {
                id,
                peer,
                auth,
                outbound,
                close: CloseSignal::default(),
            }),
        }
    }

    /// A process-unique id of this connection (for logs and for telling a replaced
    /// connection of the same mailbox from its successor).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The mailbox the connection is bound to.
    pub fn mailbox(&self) -> MailboxId {
        self.inner.auth.mailbox
    }

    /// The authenticated identity.
    pub fn identity(&self) -> &PublicIdentity {
        &self.inner.auth.identity
    }

    /// The bearer token's claims, when the server requires tokens.
    pub fn claims(&self) -> Option<&Claims> {
        self.inner.auth.claims.as_ref()
    }

    /// Queues a frame for the client without waiting.
    ///
    /// # Errors
    /// If the outbound queue is full, the connection is closed with
    /// [`CloseCode::SLOW_CONSUMER`] and [`Error::Closed`] is returned: keep the message and
    /// deliver it when the client reconnects. [`Error::Shutdown`] if the connection is gone.
    pub fn send(&self, frame: &ServerFrame) -> Result<()> {
        self.send_encoded(Bytes::from(frame::encode(frame)?))
    }

    /// Queues an already encoded frame (encode once, send to many: group fan-out).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_encoded(&self, frame: Bytes) -> Result<()> {
        match self.inner.outbound.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(CloseCode::SLOW_CONSUMER);
                Err(Error::Closed {
                    code: CloseCode::SLOW_CONSUMER,
                    reason: "outbound queue full".into(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Shutdown),
        }
    }

    /// Queues a frame for the client, waiting while the queue is half full or more. For
    /// streaming a backlog (stored messages on connect) from a task of the service's own: the
    /// connection drains its queue only after [`Service::connected`] returned. Half of the
    /// queue is always left to [`Connection::send`], so that live traffic and answers to
    /// requests never find the queue full because of a backlog.
    ///
    /// # Errors
    /// [`Error::Shutdown`] once the connection has ended (stalled writes end it after the
    /// write timeout, so this does not wait forever).
    pub async fn send_queued(&self, frame: &ServerFrame) -> Result<()> {
        let bytes = Bytes::from(frame::encode(frame)?);
        let outbound = &self.inner.outbound;
        let headroom = outbound.max_capacity() / 2;
        // Waits until `headroom + 1` slots are free, uses one, releases the others.
        let mut permits = outbound
            .reserve_many(headroom + 1)
            .await
            .map_err(|_| Error::Shutdown)?;
        if let Some(permit) = permits.next() {
            permit.send(bytes);
        }
        Ok(())
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn close(&self, code: CloseCode) {
        self.inner.close.request(code);
    }

    /// Whether the connection has ended or is closing.
    pub fn is_closed(&self) -> bool {
        self.inner.outbound.is_closed() || self.inner.close.requested().is_some()
    }

    pub(crate) fn close_signal(&self) -> &CloseSignal {
        &self.inner.close
    }
}

/// A close request from any task to the connection's task.
#[derive(Default)]
pub(crate) struct CloseSignal {
    code: AtomicU16,
    notify: Notify,
}

impl CloseSignal {
    fn request(&self, code: CloseCode) {
        if self
            .code
            .compare_exchange(0, code.0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    pub(crate) fn requested(&self) -> Option<CloseCode> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            code => Some(CloseCode(code)),
        }
    }

    /// Resolves once a close was requested.
    pub(crate) async fn wait(&self) -> CloseCode {
        loop {
            if let Some(code) = self.requested() {
                return code;
            }
            self.notify.notified().await;
        }
    }
}
