//! The client side: one logical connection to a relay that survives disconnects.
//!
//! [`Client::start`] spawns a task that connects, authenticates, and reconnects with
//! [`Backoff`] whenever the connection drops (unless the close code says retrying cannot
//! help, see [`CloseCode::is_fatal`](crate::code::CloseCode::is_fatal)). Sends wait in a
//! bounded queue until the relay accepts them; after a reconnect every send not yet accepted
//! is sent again with the same [`MessageId`], which the relay stores once. The relay in turn
//! redelivers every message not yet acknowledged, so the application sees each message at
//! least once: it drops duplicates by `(from, id)` and acknowledges after processing.
//!
//! Read events promptly with [`Client::next_event`]. While `send_queue + 64` events wait
//! unread, the client stops reading from the relay, which after its write timeout disconnects
//! it as a slow consumer (nothing is lost: undelivered messages come again after the
//! reconnect).

mod backoff;
mod connect;
mod driver;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use sealwire_core::IdentityKeyPair;
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use backoff::Backoff;

use crate::code::ErrorCode;
use crate::error::{Error, Result};
use crate::frame::{Delivery, MailboxId, MessageId, PrekeyStatus, PrekeyUpload, Ready};
use crate::limits::Limits;
use crate::tls::ClientTls;
use crate::token::BearerToken;

/// Supplies a bearer token for each connection attempt (tokens expire: fetch a fresh one from
/// the application's backend when needed).
pub type TokenProvider = Arc<dyn Fn() -> Option<BearerToken> + Send + Sync>;

/// Where the client's bearer token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// The same token on every connection. Once it expires the client stops
    /// ([`CloseCode::TOKEN_EXPIRED`](crate::code::CloseCode::TOKEN_EXPIRED) is fatal).
    Static(Arc<BearerToken>),
    /// Asked before every connection attempt. After an expired-token refusal the client tries
    /// again with the provider's next token, at most [`MAX_EXPIRED_TOKEN_RETRIES`] times in a
    /// row.
    Provider(TokenProvider),
}

/// How many consecutive expired-token refusals a [`TokenSource::Provider`] client retries.
pub const MAX_EXPIRED_TOKEN_RETRIES: u32 = 3;

impl TokenSource {
    pub(crate) fn token(&self) -> Option<BearerToken> {
        match self {
            TokenSource::Static(token) => Some(BearerToken::new(token.as_str().to_owned())),
            TokenSource::Provider(provider) => provider(),
        }
    }
}

/// The client's configuration.
#[derive(Clone)]
pub struct ClientConfig {
    /// The relay's URL, `wss://host[:port][/path]`.
    pub url: String,
    /// Which server certificates to trust.
    pub tls: ClientTls,
    /// The server name to sign in `hello`, if not the URL's host.
    pub server_name: Option<String>,
    /// An `Origin` header to send (browsers always send one; native clients usually none).
    pub origin: Option<String>,
    /// Where bearer tokens come from, if the relay requires them.
    pub token: Option<TokenSource>,
    /// Timeouts and sizes.
    pub limits: Limits,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Sends that may wait for acceptance before [`Client::send`] waits (backpressure).
    pub send_queue: usize,
    /// How long [`Client::fetch_bundle`] and [`Client::upload_prekeys`] wait for an answer.
    pub request_timeout: Duration,
    allow_plaintext: bool,
}

impl core::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("server_name", &self.server_name)
            .field("origin", &self.origin)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.limits)
            .field("backoff", &self.backoff)
            .field("send_queue", &self.send_queue)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A client for `url` trusting `tls`, with default limits, backoff and queue.
    pub fn new(url: impl Into<String>, tls: ClientTls) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            tls,
            server_name: None,
            origin: None,
            token: None,
            limits: Limits::default(),
            backoff: Backoff::default(),
            send_queue: 256,
            request_timeout: Duration::from_secs(10),
            allow_plaintext: false,
        }
    }

    /// Allows a plaintext `ws://` URL. **Insecure**: for tests only.
    pub fn insecure_allow_plaintext_for_tests(mut self) -> ClientConfig {
        self.allow_plaintext = true;
        self
    }

    /// Sends the same bearer token on every connection.
    pub fn token(mut self, token: BearerToken) -> ClientConfig {
        self.token = Some(TokenSource::Static(Arc::new(token)));
        self
    }

    /// Asks `provider` for a token before every connection attempt.
    pub fn token_provider(mut self, provider: TokenProvider) -> ClientConfig {
        self.token = Some(TokenSource::Provider(provider));
        self
    }
}

/// What the client reports, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Connected and authenticated (again, after a reconnect).
    Connected(Ready),
    /// A message for this mailbox. Acknowledge it with [`Client::ack`] once processed, or it
    /// comes again after the next reconnect.
    Delivered(Delivery),
    /// The relay accepted this send; it will not be sent again.
    Accepted(MessageId),
    /// The relay refused this send; it will not be sent again.
    Rejected {
        /// The send.
        id: MessageId,
        /// Why.
        code: ErrorCode,
    },
    /// The relay's pool of this mailbox's one-time prekeys is low: upload more.
    PrekeysLow(PrekeyStatus),
    /// The connection dropped; the client reconnects after `retry_in`.
    Disconnected {
        /// Why it dropped.
        error: Error,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
    /// The client stopped for good: the relay refused it in a way retrying cannot fix
    /// (authentication, token, protocol version, untrusted certificate), or it was closed.
    Stopped {
        /// Why.
        error: Error,
    },
}

pub(crate) enum Command {
    Send(driver::PendingSend),
    Ack(Vec<u64>),
    Fetch(MailboxId, oneshot::Sender<Result<Vec<u8>>>),
    Upload(PrekeyUpload, oneshot::Sender<Result<PrekeyStatus>>),
    Close,
}

/// A relay client. Dropping it (and every [`Requester`] cloned from it) stops the connection
/// task.
#[derive(Debug)]
pub struct Client {
    requester: Requester,
    events: mpsc::Receiver<Event>,
}

/// A cloneable handle that makes requests (send, ack, fetch, upload) through a running
/// [`Client`], for tasks other than the one reading [`Client::next_event`].
#[derive(Debug, Clone)]
pub struct Requester {
    commands: mpsc::Sender<Command>,
    permits: Arc<Semaphore>,
    mailbox: MailboxId,
    limits: Limits,
    request_timeout: Duration,
}

impl Client {
    /// Starts the connection task for `identity` (it connects in the background; watch
    /// [`Client::next_event`] for [`Event::Connected`]). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a URL that is not `wss://` (or `ws://` with the insecure
    /// option), inconsistent limits, or a zero queue.
    pub fn start(config: ClientConfig, identity: IdentityKeyPair) -> Result<Client> {
        config.limits.validate()?;
        if config.send_queue == 0 {
            return Err(Error::InvalidConfig("send_queue must be positive".into()));
        }
        let target = connect::Target::parse(&config.url, config.allow_plaintext)?;
        let mailbox = MailboxId::of(identity.public());
        let permits = Arc::new(Semaphore::new(config.send_queue));
        let (commands, command_rx) = mpsc::channel(config.send_queue + 64);
        let (event_tx, events) = mpsc::channel(config.send_queue + 64);
        let limits = config.limits.clone();
        let request_timeout = config.request_timeout;
        tokio::spawn(driver::run(config, target, identity, command_rx, event_tx));
        Ok(Client {
            requester: Requester {
                commands,
                permits,
                mailbox,
                limits,
                request_timeout,
            },
            events,
        })
    }

    /// A handle for requests from other tasks.
    pub fn requester(&self) -> Requester {
        self.requester.clone()
    }

    /// This client's mailbox.
    pub fn mailbox(&self) -> MailboxId {
        self.requester.mailbox
    }

    /// See [`Requester::send`].
    ///
    /// # Errors
    /// As [`Requester::send`].
    pub async fn send(&self, to: Vec<MailboxId>, payload: Vec<u8>) -> Result<MessageId> {
        self.requester.send(to, payload).await
    }

    /// See [`Requester::send_with_id`].
    ///
    /// # Errors
    /// As [`Requester::send`].
    pub async fn send_with_id(
        &self,
        id: MessageId,
        to: Vec<MailboxId>,
        payload: Vec<u8>,
    ) -> Result<()> {
        self.requester.send_with_id(id, to, payload).await
    }

    /// See [`Requester::ack`].
    ///
    /// # Errors
    /// As [`Requester::ack`].
    pub async fn ack(&self, deliveries: Vec<u64>) -> Result<()> {
        self.requester.ack(deliveries).await
    }

    /// See [`Requester::fetch_bundle`].
    ///
    /// # Errors
    /// As [`Requester::fetch_bundle`].
    pub async fn fetch_bundle(&self, mailbox: MailboxId) -> Result<Vec<u8>> {
        self.requester.fetch_bundle(mailbox).await
    }

    /// See [`Requester::upload_prekeys`].
    ///
    /// # Errors
    /// As [`Requester::fetch_bundle`].
    pub async fn upload_prekeys(&self, upload: PrekeyUpload) -> Result<PrekeyStatus> {
        self.requester.upload_prekeys(upload).await
    }

    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Closes the connection (1000 `normal`) and stops the task. Sends not yet accepted are
    /// dropped.
    pub async fn close(mut self) {
        let _ = self.requester.commands.send(Command::Close).await;
        while self.events.recv().await.is_some() {}
    }
}

impl Requester {
    /// The client's mailbox.
    pub fn mailbox(&self) -> MailboxId {
        self.mailbox
    }

    /// Queues `payload` for `to` and returns its id; waits while `send_queue` sends are
    /// waiting for acceptance (backpressure). Acceptance is reported by [`Event::Accepted`].
    ///
    /// # Errors
    /// [`Error::TooLarge`] over the payload or recipient limit; [`Error::InvalidConfig`] with
    /// no recipients or a recipient listed twice; [`Error::Shutdown`] if the client stopped.
    /// The limits checked here are the client's own [`Limits`]; a relay announcing lower ones
    /// in `ready` refuses larger sends with [`Event::Rejected`].
    pub async fn send(&self, to: Vec<MailboxId>, payload: Vec<u8>) -> Result<MessageId> {
        let id = MessageId::random();
        self.send_with_id(id, to, payload).await?;
        Ok(id)
    }

    /// As [`Client::send`], with the caller's message id. For an application that keeps its
    /// own outbox across restarts: sending a message again under the id it had before is how
    /// the relay recognizes it and stores it once. Use a fresh [`MessageId::random`] for
    /// every new message; reusing one for different contents loses the second.
    ///
    /// # Errors
    /// As [`Requester::send`].
    pub async fn send_with_id(
        &self,
        id: MessageId,
        to: Vec<MailboxId>,
        payload: Vec<u8>,
    ) -> Result<()> {
        self.check_send(&to, &payload)?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Shutdown)?;
        let pending = driver::PendingSend::new(id, to, payload, permit);
        self.command(Command::Send(pending)).await
    }

    fn check_send(&self, to: &[MailboxId], payload: &[u8]) -> Result<()> {
        if payload.len() > self.limits.max_payload {
            return Err(Error::TooLarge {
                what: "payload",
                len: payload.len(),
                max: self.limits.max_payload,
            });
        }
        if to.len() > self.limits.max_recipients {
            return Err(Error::TooLarge {
                what: "recipient list",
                len: to.len(),
                max: self.limits.max_recipients,
            });
        }
        if to.is_empty() {
            return Err(Error::InvalidConfig(
                "a send needs at least one recipient".into(),
            ));
        }
        if !crate::frame::distinct(to) {
            return Err(Error::InvalidConfig(
                "a send lists a recipient twice".into(),
            ));
        }
        Ok(())
    }

    /// Acknowledges deliveries: the relay forgets them.
    ///
    /// # Errors
    /// [`Error::Shutdown`] if the client stopped.
    pub async fn ack(&self, deliveries: Vec<u64>) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.command(Command::Ack(deliveries)).await
    }

    /// Fetches `mailbox`'s prekey bundle (encoded; verify it with `sealwire-core` before use).
    ///
    /// # Errors
    /// [`Error::Refused`] with [`ErrorCode::NoBundle`] if the relay has none;
    /// [`Error::Timeout`] after `request_timeout`; [`Error::Shutdown`].
    pub async fn fetch_bundle(&self, mailbox: MailboxId) -> Result<Vec<u8>> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Fetch(mailbox, reply)).await?;
        self.answer(answer, "fetch_bundle").await
    }

    /// Uploads prekeys for this client's mailbox (the `request` field is set by the client).
    ///
    /// # Errors
    /// As [`Requester::fetch_bundle`].
    pub async fn upload_prekeys(&self, upload: PrekeyUpload) -> Result<PrekeyStatus> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Upload(upload, reply)).await?;
        self.answer(answer, "upload_prekeys").await
    }

    async fn command(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Shutdown)
    }

    async fn answer<T>(
        &self,
        answer: oneshot::Receiver<Result<T>>,
        what: &'static str,
    ) -> Result<T> {
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Shutdown),
            Err(_) => Err(Error::Timeout {
                what,
                after: self.request_timeout,
            }),
        }
    }
}
