//! [`Relay`]: the [`Service`] behind the WSS server. It stores every message before accepting
//! it, delivers it to the recipient's live connection, streams the backlog to new connections,
//! applies acknowledgements and runs the prekey directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::frame::{
    Accepted, Ack, Bundle, Delivery, ErrorFrame, FetchBundle, PrekeyStatus, PrekeyUpload, Send,
    ServerFrame, Subject,
};
use sealwire_transport::server::{
    AdmissionRefusal, Connection, HandshakeFailure, Refusal, Request, Service, Welcome,
    address_group,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, QuotaKind};
use crate::limitlog::LimitLog;
use crate::metrics::{Limit, Metrics};
use crate::ratelimit::{AddressBuckets, ConnectionBuckets, RateLimits};
use crate::registry::{CatchUp, Registry, Route};
use crate::store::{Appended, NewMessage, Store};

/// Most delivery ids one connection's acks may queue while its previous acks commit; a
/// further ack waits for that commit.
const MAX_QUEUED_ACKS: usize = 4096;

/// One connection's acknowledgements on their way to the store: at most one store operation
/// at a time; acks arriving meanwhile are merged and go in the next one.
#[derive(Default)]
struct AckQueue {
    /// The task committing this connection's acks, while there is one.
    task: Option<JoinHandle<()>>,
    /// Whether that task is still taking ids from `queued`.
    committing: bool,
    /// Ids waiting for the next store operation.
    queued: Vec<u64>,
    /// The connection ended: the task removes the entry when it is done.
    ended: bool,
}

/// How many stored messages the catch-up task reads from the store at a time.
const CATCH_UP_BATCH: usize = 64;

/// The relay's own settings (the transport's are in its `ServerConfig`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RelayOptions {
    /// Per-connection rates.
    pub rates: RateLimits,
    /// Below this many one-time prekeys the owner is told its pool is low (default 10).
    pub low_prekeys: u32,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            rates: RateLimits::default(),
            low_prekeys: 10,
        }
    }
}

/// The relay service: implements the transport's [`Service`] over a [`Store`]. Cheap to clone
/// (shared state).
pub struct Relay<S: Store> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> Clone for Relay<S> {
    fn clone(&self) -> Self {
        Relay {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Store> core::fmt::Debug for Relay<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Relay")
            .field("connected_mailboxes", &self.inner.registry.len())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    store: Arc<S>,
    registry: Registry,
    metrics: Metrics,
    options: RelayOptions,
    /// Rate buckets by connection id.
    buckets: Mutex<HashMap<u64, ConnectionBuckets>>,
    /// Bundle-fetch buckets by client address.
    fetch_buckets: Mutex<AddressBuckets>,
    /// Sampled log lines for limit hits.
    limit_log: LimitLog,
    /// By connection id: that connection's acks being committed (see [`Inner::ack`]).
    acks: Mutex<HashMap<u64, AckQueue>>,
}

impl<S: Store> Relay<S> {
    /// A relay over `store`, reporting to `metrics`.
    pub fn new(store: Arc<S>, metrics: Metrics, options: RelayOptions) -> Relay<S> {
        Relay {
            inner: Arc::new(Inner {
                store,
                registry: Registry::default(),
                metrics,
                options,
                buckets: Mutex::default(),
                fetch_buckets: Mutex::default(),
                limit_log: LimitLog::default(),
                acks: Mutex::default(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.inner.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Mailboxes with a connection now.
    pub fn connected_mailboxes(&self) -> usize {
        self.inner.registry.len()
    }
}

impl<S: Store> Inner<S> {
    /// Waits as long as the connection's bucket says (see [`crate::ratelimit`]).
    async fn throttle(&self, connection: &Connection, costs: &[(Limit, f64)]) {
        let wait = {
            let now = Instant::now();
            let rates = &self.options.rates;
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            let buckets = buckets
                .entry(connection.id())
                .or_insert_with(|| ConnectionBuckets::new(rates, now));
            let mut wait = Duration::ZERO;
            for &(limit, cost) in costs {
                let this = match limit {
                    Limit::ByteRate => buckets.bytes.take(cost, now),
                    Limit::MessageRate => buckets.messages.take(cost, now),
                    _ => {
                        let address = self
                            .fetch_buckets
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .take(
                                address_group(connection.peer().ip()),
                                cost,
                                rates.fetch_burst_per_address,
                                rates.fetches_per_second_per_address,
                                now,
                            );
                        buckets.fetches.take(cost, now).max(address)
                    }
                };
                if !this.is_zero() {
                    self.metrics.limit_hit(limit);
                    self.limit_log.hit(limit, Some(connection.peer()));
                    tracing::debug!(peer = %connection.peer(), id = connection.id(), limit = ?limit, wait_ms = this.as_millis(), "rate limit: throttling");
                }
                wait = wait.max(this);
            }
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn refuse(&self, error: &Error) -> Refusal {
        match error {
            Error::QuotaExceeded { kind, .. } => {
                let limit = match kind {
                    QuotaKind::Messages => Limit::QuotaMessages,
                    QuotaKind::Bytes => Limit::QuotaBytes,
                    _ => Limit::QuotaPrekeys,
                };
                self.metrics.limit_hit(limit);
                self.limit_log.hit(limit, None);
            }
            Error::UnknownMailbox(_) => {}
            Error::StoreFull => {
                self.metrics.limit_hit(Limit::StoreBytes);
                self.limit_log.hit(Limit::StoreBytes, None);
            }
            other => {
                self.metrics.store_error();
                tracing::error!(error = %other, "store failed");
            }
        }
        let code = error.code();
        self.metrics.request_refused(code);
        Refusal::Error(code)
    }

    async fn send(&self, connection: &Connection, send: Send) -> Result<(), Refusal> {
        let received = Instant::now();
        let size = send.payload.len();
        // Bytes are charged per stored copy: a group send costs what it makes the relay store
        // and write.
        let copies = (size as f64) * (send.to.len() as f64);
        self.throttle(
            connection,
            &[(Limit::MessageRate, 1.0), (Limit::ByteRate, copies)],
        )
        .await;
        let from = connection.mailbox();
        let message = NewMessage {
            from,
            id: send.id,
            to: send.to,
            payload: send.payload,
            received_at: unix_now(),
        };
        let to = message.to.clone();
        // Kept for delivery: the store takes its own copy.
        let payload = message.payload.clone();
        let deliveries = match self.store.append(message).await {
            Ok(Appended::Stored(deliveries)) => deliveries,
            Ok(Appended::Duplicate) => {
                self.metrics.message_duplicate();
                let _ = connection.send(&ServerFrame::Accepted(Accepted { id: send.id }));
                return Ok(());
            }
            Err(error) => {
                // Per refusal at debug: limit hits are logged, sampled, by `refuse`; storage
                // failures at error.
                tracing::debug!(peer = %connection.peer(), id = connection.id(), error = %error, "send refused");
                return Err(self.refuse(&error));
            }
        };
        self.metrics.message_accepted(to.len(), size);
        let _ = connection.send(&ServerFrame::Accepted(Accepted { id: send.id }));
        for (recipient, delivery) in to.iter().zip(deliveries) {
            if let Route::Live(live) = self.registry.route(recipient) {
                let frame = ServerFrame::Deliver(Delivery {
                    delivery,
                    from,
                    id: send.id,
                    payload: payload.clone(),
                });
                // A slow consumer is closed by `send`; the message stays stored for its
                // reconnect.
                if live.send(&frame).is_ok() {
                    self.metrics
                        .message_delivered(size, Some(received.elapsed()));
                }
            }
        }
        Ok(())
    }

    /// Applies an `ack` without holding up the connection: the request is done once its ids
    /// are queued for the store, and the commit runs in a task of its own. Acknowledgements are
    /// not promised durable (an ack lost in a crash means a redelivery, relay-protocol 7.2), so
    /// the connection's next request need not wait for an fsync. One connection has at most one
    /// ack operation in the store at a time: acks arriving meanwhile are merged into the next
    /// one (a recipient that acks each message as it arrives costs one store operation per
    /// commit, not one per message), up to [`MAX_QUEUED_ACKS`] ids; beyond that an ack waits
    /// for the commit, which bounds a flood of acks by the commit rate like other requests.
    async fn ack(self: &Arc<Self>, connection: &Connection, ack: Ack) -> Result<(), Refusal> {
        let mut deliveries = ack.deliveries;
        loop {
            let running = {
                let mut acks = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
                let queue = acks.entry(connection.id()).or_default();
                if !queue.committing {
                    queue.committing = true;
                    let inner = self.clone();
                    let owner = connection.clone();
                    queue.task = Some(tokio::spawn(async move {
                        inner.commit_acks(owner, deliveries).await;
                    }));
                    return Ok(());
                }
                if queue.queued.len() + deliveries.len() <= MAX_QUEUED_ACKS {
                    queue.queued.append(&mut deliveries);
                    return Ok(());
                }
                queue.task.take()
            };
            // Full: wait until everything queued so far is committed, then start again.
            if let Some(running) = running {
                let _ = running.await;
            }
            // The task is over. Had it ended without saying so (a panicking store, a cancelled
            // task), this loop would spin: the next task takes over what is still queued.
            if let Some(queue) = self
                .acks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(&connection.id())
            {
                queue.committing = false;
            }
        }
    }

    /// The ack task of a connection: commits `deliveries`, then whatever was queued meanwhile,
    /// until nothing is.
    async fn commit_acks(&self, owner: Connection, mut deliveries: Vec<u64>) {
        loop {
            match self.store.ack(owner.mailbox(), deliveries).await {
                Ok(removed) => self.metrics.messages_acked(removed),
                Err(error) => {
                    if let Refusal::Error(code) = self.refuse(&error) {
                        let _ = owner.send(&ServerFrame::Error(ErrorFrame {
                            code: code.to_u16(),
                            subject: Subject::Ack,
                        }));
                    }
                }
            }
            let mut acks = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(queue) = acks.get_mut(&owner.id()) else {
                return;
            };
            if queue.queued.is_empty() {
                queue.committing = false;
                if queue.ended {
                    acks.remove(&owner.id());
                }
                return;
            }
            deliveries = std::mem::take(&mut queue.queued);
        }
    }

    async fn upload(&self, connection: &Connection, upload: PrekeyUpload) -> Result<(), Refusal> {
        // Each upload is a commit, like a send: it draws on the same bucket.
        self.throttle(connection, &[(Limit::MessageRate, 1.0)])
            .await;
        let mailbox = connection.mailbox();
        let count = self
            .store
            .put_prekeys(
                mailbox,
                connection.identity().clone(),
                upload.signed_prekey,
                upload.one_time,
            )
            .await
            .map_err(|error| self.refuse(&error))?;
        let status = PrekeyStatus {
            request: Some(upload.request),
            one_time_prekeys: count,
            low: count < self.options.low_prekeys,
        };
        let _ = connection.send(&ServerFrame::Prekeys(status));
        Ok(())
    }

    async fn fetch(&self, connection: &Connection, fetch: FetchBundle) -> Result<(), Refusal> {
        self.throttle(connection, &[(Limit::FetchRate, 1.0)]).await;
        let taken = self
            .store
            .take_bundle(fetch.mailbox)
            .await
            .map_err(|error| self.refuse(&error))?;
        let Some(taken) = taken else {
            self.metrics.request_refused(ErrorCode::NoBundle);
            return Err(Refusal::Error(ErrorCode::NoBundle));
        };
        let handed_out = taken.bundle.one_time_prekey.is_some();
        self.metrics.bundle_served(handed_out);
        let frame = ServerFrame::Bundle(Bundle {
            request: fetch.request,
            bundle: taken.bundle.to_bytes(),
        });
        let _ = connection.send(&frame);
        // Exactly one fetch takes the pool below the mark (the count is read in the same
        // atomic step as the take): that one tells the owner.
        let left = taken.one_time_left;
        if handed_out && left < self.options.low_prekeys && left + 1 >= self.options.low_prekeys {
            self.metrics.prekeys_low();
            if let Some(owner) = self.registry.live(&fetch.mailbox) {
                let _ = owner.send(&ServerFrame::Prekeys(PrekeyStatus {
                    request: None,
                    one_time_prekeys: left,
                    low: true,
                }));
            }
        }
        Ok(())
    }

    /// Streams the stored backlog to a new connection, then makes it live.
    async fn catch_up(&self, connection: Connection) {
        let mut after = 0;
        loop {
            let batch = match self
                .store
                .pending(connection.mailbox(), after, CATCH_UP_BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    self.metrics.store_error();
                    tracing::error!(error = %error, "reading stored messages failed");
                    connection.close(CloseCode::INTERNAL_ERROR);
                    return;
                }
            };
            if batch.is_empty() {
                match self.registry.caught_up(&connection) {
                    CatchUp::ReadAgain => continue,
                    CatchUp::Live | CatchUp::Stop => return,
                }
            }
            for message in batch {
                after = message.delivery;
                let size = message.payload.len();
                let frame = ServerFrame::Deliver(Delivery {
                    delivery: message.delivery,
                    from: message.from,
                    id: message.id,
                    payload: message.payload,
                });
                if connection.send_queued(&frame).await.is_err() {
                    return;
                }
                self.metrics.message_delivered(size, None);
            }
        }
    }
}

impl<S: Store> Service for Relay<S> {
    async fn connected(&self, connection: &Connection) -> Result<Welcome, Refusal> {
        let inner = &self.inner;
        let mailbox = connection.mailbox();
        let registered = inner.store.register(mailbox).await;
        let count = match registered {
            Ok(()) => inner.store.prekey_count(mailbox).await,
            Err(error) => Err(error),
        };
        let count = count.map_err(|error| {
            inner.metrics.store_error();
            tracing::error!(error = %error, "registering a mailbox failed");
            Refusal::Close(CloseCode::TRY_AGAIN_LATER)
        })?;
        if !inner.registry.attach(connection) {
            // A newer connection of the same mailbox got here first.
            return Err(Refusal::Close(CloseCode::REPLACED));
        }
        inner.metrics.auth_succeeded();
        inner.metrics.connection_opened();
        // The bucket entry also marks the connection as opened (see `disconnected`).
        inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                connection.id(),
                ConnectionBuckets::new(&inner.options.rates, Instant::now()),
            );
        let relay = self.inner.clone();
        let connection = connection.clone();
        tokio::spawn(async move { relay.catch_up(connection).await });
        Ok(Welcome::new(count))
    }

    async fn request(&self, connection: &Connection, request: Request) -> Result<(), Refusal> {
        let inner = &self.inner;
        match request {
            Request::Send(send) => inner.send(connection, send).await,
            Request::Ack(ack) => inner.ack(connection, ack).await,
            Request::UploadPrekeys(upload) => inner.upload(connection, upload).await,
            Request::FetchBundle(fetch) => inner.fetch(connection, fetch).await,
            _ => Err(Refusal::Error(ErrorCode::BadRequest)),
        }
    }

    fn refused(&self, peer: SocketAddr, reason: AdmissionRefusal) {
        let limit = match reason {
            AdmissionRefusal::TooManyConnections => Limit::MaxConnections,
            AdmissionRefusal::TooManyFromAddress => Limit::MaxConnectionsPerIp,
            _ => Limit::ConnectionRate,
        };
        self.inner.metrics.limit_hit(limit);
        self.inner.limit_log.hit(limit, Some(peer));
        tracing::debug!(%peer, limit = reason.as_str(), "connection refused");
    }

    fn handshake_failed(&self, peer: SocketAddr, failure: HandshakeFailure) {
        self.inner.metrics.handshake_failed(failure.as_str());
        tracing::debug!(%peer, stage = failure.as_str(), "handshake failed");
    }

    fn auth_failed(&self, _peer: SocketAddr, code: CloseCode) {
        // The transport logs the failure with the peer and the reason.
        self.inner.metrics.auth_failed(code);
    }

    fn request_refused(&self, connection: &Connection, code: ErrorCode) {
        let metrics = &self.inner.metrics;
        let limit = match code {
            ErrorCode::PayloadTooLarge => Some(Limit::PayloadSize),
            ErrorCode::TooManyRecipients => Some(Limit::Recipients),
            _ => None,
        };
        if let Some(limit) = limit {
            metrics.limit_hit(limit);
            self.inner.limit_log.hit(limit, Some(connection.peer()));
        }
        metrics.request_refused(code);
        tracing::debug!(peer = %connection.peer(), id = connection.id(), code = %code, "request refused");
    }

    async fn disconnected(&self, connection: &Connection, code: CloseCode) {
        let inner = &self.inner;
        inner.registry.detach(connection);
        // Acks being committed finish on their own (their task then forgets the connection).
        {
            let mut acks = inner.acks.lock().unwrap_or_else(PoisonError::into_inner);
            match acks.get_mut(&connection.id()) {
                Some(queue) if queue.committing => queue.ended = true,
                _ => {
                    acks.remove(&connection.id());
                }
            }
        }
        let opened = inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&connection.id())
            .is_some();
        // A connection refused in `connected` was never counted as open.
        if opened {
            inner.metrics.connection_closed(code);
        }
    }
}

/// The relay's clock, in Unix seconds.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
