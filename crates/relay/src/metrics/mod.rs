//! Prometheus metrics: what the relay counts, and the text exposition the admin listener
//! serves at `/metrics` (see [`crate::admin`]).
//!
//! [`Metrics`] is a cheap handle (an [`Arc`] inside) that every part of the relay clones and
//! calls; it owns a private registry, so nothing else ends up in the exposition. The output
//! of [`Metrics::encode`] is [OpenMetrics] text, served with the content type
//! [`CONTENT_TYPE`].
//!
//! # Privacy and cardinality
//!
//! **No label ever carries a mailbox id, an IP address, a message id or anything derived from
//! a payload.** Every label value comes from a small fixed set chosen by the relay's code
//! (a close code's name, a [`Limit`], an error code's name, a handshake stage), so the number
//! of series is bounded and the metrics reveal nothing about who talks to whom: the relay
//! stays blind in its metrics too. Close codes a peer invents are folded into
//! `code="other",reason="unknown"`.
//!
//! # The metrics
//!
//! Every name starts with `sealwire_relay_`. Counters are exposed with the `_total` suffix,
//! histograms as `_bucket`, `_sum` and `_count` series.
//!
//! | Name | Type | Labels | Meaning |
//! |------|------|--------|---------|
//! | `sealwire_relay_connections` | gauge | | Authenticated connections open now. |
//! | `sealwire_relay_tcp_connections` | gauge | | TCP connections admitted now, including those not (yet) authenticated. |
//! | `sealwire_relay_disconnects_total` | counter | `code`, `reason` | Authenticated connections closed, by close code: `code="4005",reason="slow_consumer"`; `1006` is `abnormal` (no close frame), `1005` is `no_status`. |
//! | `sealwire_relay_handshake_failures_total` | counter | `stage` | TLS or WebSocket handshakes that failed, by stage (the relay's stage names). |
//! | `sealwire_relay_auth_failures_total` | counter | `reason` | Failed authentications, by close code name: `auth_failed`, `auth_timeout`, `token_required`, `token_expired`, `token_invalid`. |
//! | `sealwire_relay_auth_successes_total` | counter | | Successful authentications. |
//! | `sealwire_relay_limit_rejections_total` | counter | `limit` | Connections, frames or requests refused by a limit: `max_connections`, `max_connections_per_ip`, `connection_rate_per_ip`, `message_rate`, `byte_rate`, `payload_size`, `recipients`, `quota_messages`, `quota_bytes`, `quota_prekeys`, `fetch_rate`, `store_bytes` (rate limits throttle: counted once per delayed request). |
//! | `sealwire_relay_messages_accepted_total` | counter | | Messages accepted from senders (stored durably, `accepted` sent). |
//! | `sealwire_relay_recipients_total` | counter | | Stored copies: the recipients of the accepted messages. |
//! | `sealwire_relay_received_bytes_total` | counter | | Payload bytes of the accepted messages (once per message, not per recipient). |
//! | `sealwire_relay_messages_duplicate_total` | counter | | Sender retries of a message already stored (stored once, acknowledged again). |
//! | `sealwire_relay_messages_delivered_total` | counter | | Messages handed to a recipient's connection (redeliveries count again). |
//! | `sealwire_relay_delivered_bytes_total` | counter | | Payload bytes handed to recipients' connections. |
//! | `sealwire_relay_delivery_latency_seconds` | histogram | | From receipt of a message to its hand-off to the recipient's connection; buckets 100 µs × 2ⁿ up to ~52 s. |
//! | `sealwire_relay_messages_acked_total` | counter | | Stored messages deleted because their recipient acknowledged them. |
//! | `sealwire_relay_messages_expired_total` | counter | | Stored messages deleted unread at the end of the retention time. |
//! | `sealwire_relay_request_errors_total` | counter | `code` | Requests refused with an `error` frame, by error code name (`quota_exceeded`, `unknown_mailbox`, `rate_limited`, ...). |
//! | `sealwire_relay_store_commit_seconds` | histogram | | Duration of one store commit (a group commit: many operations, one sync); buckets 50 µs × 2ⁿ up to ~6.6 s. |
//! | `sealwire_relay_store_commit_operations` | histogram | | Operations per group commit; buckets 1, 2, 4, ..., 1024. |
//! | `sealwire_relay_store_errors_total` | counter | | Store failures (the request was answered `unavailable`). |
//! | `sealwire_relay_mailboxes` | gauge | | Mailboxes with undelivered mail. |
//! | `sealwire_relay_stored_messages` | gauge | | Undelivered stored copies (the queue depth). |
//! | `sealwire_relay_stored_bytes` | gauge | | Payload bytes of the undelivered stored copies. |
//! | `sealwire_relay_bundles_served_total` | counter | `one_time_prekey` | Prekey bundles handed out, `one_time_prekey="true"` when the bundle carried a one-time prekey, `"false"` when the pool was empty. |
//! | `sealwire_relay_prekeys_low_total` | counter | | Times a mailbox was told its one-time prekey pool runs low. |
//!
//! [OpenMetrics]: https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use sealwire_transport::code::{CloseCode, ErrorCode};

/// The `Content-Type` of [`Metrics::encode`]'s output (OpenMetrics text 1.0.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The prefix of every metric name (followed by `_`).
const PREFIX: &str = "sealwire_relay";

/// A limit that refused a connection, a frame or a request: the `limit` label of
/// `sealwire_relay_limit_rejections_total`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The relay-wide cap on open connections.
    MaxConnections,
    /// The cap on open connections from one IP address.
    MaxConnectionsPerIp,
    /// The rate of new connections from one IP address.
    ConnectionRate,
    /// A connection's message rate.
    MessageRate,
    /// A connection's byte rate.
    ByteRate,
    /// The largest payload.
    PayloadSize,
    /// The most recipients of one message.
    Recipients,
    /// A mailbox's stored message quota.
    QuotaMessages,
    /// A mailbox's stored byte quota.
    QuotaBytes,
    /// A mailbox's one-time prekey quota.
    QuotaPrekeys,
    /// Bundle fetches per connection.
    FetchRate,
    /// Bytes stored over all mailboxes.
    StoreBytes,
}

impl Limit {
    /// Every limit, in declaration order.
    pub const ALL: [Limit; 12] = [
        Limit::MaxConnections,
        Limit::MaxConnectionsPerIp,
        Limit::ConnectionRate,
        Limit::MessageRate,
        Limit::ByteRate,
        Limit::PayloadSize,
        Limit::Recipients,
        Limit::QuotaMessages,
        Limit::QuotaBytes,
        Limit::QuotaPrekeys,
        Limit::FetchRate,
        Limit::StoreBytes,
    ];

    /// The label value (snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxConnections => "max_connections",
            Limit::MaxConnectionsPerIp => "max_connections_per_ip",
            Limit::ConnectionRate => "connection_rate_per_ip",
            Limit::MessageRate => "message_rate",
            Limit::ByteRate => "byte_rate",
            Limit::PayloadSize => "payload_size",
            Limit::Recipients => "recipients",
            Limit::QuotaMessages => "quota_messages",
            Limit::QuotaBytes => "quota_bytes",
            Limit::QuotaPrekeys => "quota_prekeys",
            Limit::FetchRate => "fetch_rate",
            Limit::StoreBytes => "store_bytes",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DisconnectLabels {
    code: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BundleLabels {
    one_time_prekey: bool,
}

type CounterFamily<L> = Family<L, Counter>;

/// The relay's metrics. Cheap to clone: clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    connections: Gauge,
    tcp_connections: Gauge,
    disconnects: CounterFamily<DisconnectLabels>,
    handshake_failures: CounterFamily<StageLabels>,
    auth_failures: CounterFamily<ReasonLabels>,
    auth_successes: Counter,
    limit_rejections: CounterFamily<LimitLabels>,
    messages_accepted: Counter,
    recipients: Counter,
    received_bytes: Counter,
    messages_duplicate: Counter,
    messages_delivered: Counter,
    delivered_bytes: Counter,
    delivery_latency: Histogram,
    messages_acked: Counter,
    messages_expired: Counter,
    request_errors: CounterFamily<ErrorLabels>,
    store_commit_seconds: Histogram,
    store_commit_operations: Histogram,
    store_errors: Counter,
    mailboxes: Gauge,
    stored_messages: Gauge,
    stored_bytes: Gauge,
    bundles_served: CounterFamily<BundleLabels>,
    prekeys_low: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("connections", &self.inner.connections.get())
            .field("tcp_connections", &self.inner.tcp_connections.get())
            .finish_non_exhaustive()
    }
}

/// A `usize` or `u64` count as a gauge value (saturating).
fn gauge_value<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// A `usize` count as a counter increment (saturating; `usize` fits in `u64` everywhere
/// Rust runs today).
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The `code` and `reason` labels of a close code. Codes without a name (other than 1005
/// and 1006, which never appear on the wire) are folded into one series: a peer can send
/// any code, and the number of series must stay bounded.
fn disconnect_labels(code: CloseCode) -> DisconnectLabels {
    let named = match code.0 {
        1005 => Some("no_status"),
        1006 => Some("abnormal"),
        _ => code.name(),
    };
    match named {
        Some(reason) => DisconnectLabels {
            code: code.0.to_string(),
            reason,
        },
        None => DisconnectLabels {
            code: "other".to_owned(),
            reason: "unknown",
        },
    }
}

/// The name part of an error code ("quota_exceeded" for "5 quota_exceeded").
fn error_name(code: ErrorCode) -> String {
    let text = code.to_string();
    match text.split_once(' ') {
        Some((_, name)) => name.to_owned(),
        None => "unknown".to_owned(),
    }
}

impl Metrics {
    /// Fresh metrics, every counter at zero, in their own registry.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);

        let connections = Gauge::default();
        registry.register(
            "connections",
            "Authenticated connections open",
            connections.clone(),
        );
        let tcp_connections = Gauge::default();
        registry.register(
            "tcp_connections",
            "TCP connections admitted, including unauthenticated ones",
            tcp_connections.clone(),
        );
        let disconnects = CounterFamily::<DisconnectLabels>::default();
        registry.register(
            "disconnects",
            "Authenticated connections closed, by close code",
            disconnects.clone(),
        );
        let handshake_failures = CounterFamily::<StageLabels>::default();
        registry.register(
            "handshake_failures",
            "Failed TLS or WebSocket handshakes, by stage",
            handshake_failures.clone(),
        );
        let auth_failures = CounterFamily::<ReasonLabels>::default();
        registry.register(
            "auth_failures",
            "Failed authentications, by close code name",
            auth_failures.clone(),
        );
        let auth_successes = Counter::default();
        registry.register(
            "auth_successes",
            "Successful authentications",
            auth_successes.clone(),
        );
        let limit_rejections = CounterFamily::<LimitLabels>::default();
        for limit in Limit::ALL {
            // Every series exists from the start, so that rates work from the first scrape.
            let _ = limit_rejections.get_or_create(&LimitLabels {
                limit: limit.as_str(),
            });
        }
        registry.register(
            "limit_rejections",
            "Connections, frames or requests refused by a limit",
            limit_rejections.clone(),
        );
        let messages_accepted = Counter::default();
        registry.register(
            "messages_accepted",
            "Messages accepted from senders and stored",
            messages_accepted.clone(),
        );
        let recipients = Counter::default();
        registry.register(
            "recipients",
            "Stored copies of accepted messages (one per recipient)",
            recipients.clone(),
        );
        let received_bytes = Counter::default();
        registry.register_with_unit(
            "received",
            "Payload bytes of accepted messages",
            Unit::Bytes,
            received_bytes.clone(),
        );
        let messages_duplicate = Counter::default();
        registry.register(
            "messages_duplicate",
            "Sender retries of a message already stored",
            messages_duplicate.clone(),
        );
        let messages_delivered = Counter::default();
        registry.register(
            "messages_delivered",
            "Messages handed to a recipient's connection",
            messages_delivered.clone(),
        );
        let delivered_bytes = Counter::default();
        registry.register_with_unit(
            "delivered",
            "Payload bytes handed to recipients' connections",
            Unit::Bytes,
            delivered_bytes.clone(),
        );
        // 100 µs to ~52 s.
        let delivery_latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 20));
        registry.register_with_unit(
            "delivery_latency",
            "Time from the receipt of a message to its hand-off to the recipient's connection",
            Unit::Seconds,
            delivery_latency.clone(),
        );
        let messages_acked = Counter::default();
        registry.register(
            "messages_acked",
            "Stored messages deleted on acknowledgement",
            messages_acked.clone(),
        );
        let messages_expired = Counter::default();
        registry.register(
            "messages_expired",
            "Stored messages deleted unread at the end of the retention time",
            messages_expired.clone(),
        );
        let request_errors = CounterFamily::<ErrorLabels>::default();
        registry.register(
            "request_errors",
            "Requests refused with an error frame, by error code",
            request_errors.clone(),
        );
        // 50 µs to ~6.6 s.
        let store_commit_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 18));
        registry.register_with_unit(
            "store_commit",
            "Duration of one store (group) commit",
            Unit::Seconds,
            store_commit_seconds.clone(),
        );
        // 1, 2, 4, ..., 1024.
        let store_commit_operations = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "store_commit_operations",
            "Operations per store group commit",
            store_commit_operations.clone(),
        );
        let store_errors = Counter::default();
        registry.register("store_errors", "Store failures", store_errors.clone());
        let mailboxes = Gauge::default();
        registry.register(
            "mailboxes",
            "Mailboxes with undelivered mail",
            mailboxes.clone(),
        );
        let stored_messages = Gauge::default();
        registry.register(
            "stored_messages",
            "Undelivered stored message copies",
            stored_messages.clone(),
        );
        let stored_bytes = Gauge::default();
        registry.register_with_unit(
            "stored",
            "Payload bytes of undelivered stored message copies",
            Unit::Bytes,
            stored_bytes.clone(),
        );
        let bundles_served = CounterFamily::<BundleLabels>::default();
        for one_time_prekey in [true, false] {
            let _ = bundles_served.get_or_create(&BundleLabels { one_time_prekey });
        }
        registry.register(
            "bundles_served",
            "Prekey bundles handed out, by whether they carried a one-time prekey",
            bundles_served.clone(),
        );
        let prekeys_low = Counter::default();
        registry.register(
            "prekeys_low",
            "Times a mailbox was told its one-time prekey pool runs low",
            prekeys_low.clone(),
        );

        Metrics {
            inner: Arc::new(Inner {
                registry,
                connections,
                tcp_connections,
                disconnects,
                handshake_failures,
                auth_failures,
                auth_successes,
                limit_rejections,
                messages_accepted,
                recipients,
                received_bytes,
                messages_duplicate,
                messages_delivered,
                delivered_bytes,
                delivery_latency,
                messages_acked,
                messages_expired,
                request_errors,
                store_commit_seconds,
                store_commit_operations,
                store_errors,
                mailboxes,
                stored_messages,
                stored_bytes,
                bundles_served,
                prekeys_low,
            }),
        }
    }

    /// A connection authenticated (`connections` + 1).
    pub fn connection_opened(&self) {
        self.inner.connections.inc();
    }

    /// An authenticated connection closed with `code` (`connections` − 1, and
    /// `disconnects_total{code,reason}` + 1).
    pub fn connection_closed(&self, code: CloseCode) {
        self.inner.connections.dec();
        self.inner
            .disconnects
            .get_or_create(&disconnect_labels(code))
            .inc();
    }

    /// The number of admitted TCP connections, authenticated or not.
    pub fn set_tcp_connections(&self, n: usize) {
        self.inner.tcp_connections.set(gauge_value(n));
    }

    /// A TLS or WebSocket handshake failed at `stage` (a fixed name chosen by the relay).
    pub fn handshake_failed(&self, stage: &'static str) {
        self.inner
            .handshake_failures
            .get_or_create(&StageLabels { stage })
            .inc();
    }

    /// Authentication failed; the connection is closed with `code`.
    pub fn auth_failed(&self, code: CloseCode) {
        let reason = code.name().unwrap_or("unknown");
        self.inner
            .auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A connection authenticated.
    pub fn auth_succeeded(&self) {
        self.inner.auth_successes.inc();
    }

    /// A limit refused a connection, a frame or a request.
    pub fn limit_hit(&self, limit: Limit) {
        self.inner
            .limit_rejections
            .get_or_create(&LimitLabels {
                limit: limit.as_str(),
            })
            .inc();
    }

    /// A message of `bytes` payload bytes was stored for `recipients` recipients.
    pub fn message_accepted(&self, recipients: usize, bytes: usize) {
        self.inner.messages_accepted.inc();
        self.inner.recipients.inc_by(count(recipients));
        self.inner.received_bytes.inc_by(count(bytes));
    }

    /// A sender retried a message that is already stored (it was not stored again).
    pub fn message_duplicate(&self) {
        self.inner.messages_duplicate.inc();
    }

    /// A message of `bytes` payload bytes was handed to its recipient's connection,
    /// `latency` after the relay received it (if known).
    pub fn message_delivered(&self, bytes: usize, latency: Option<Duration>) {
        self.inner.messages_delivered.inc();
        self.inner.delivered_bytes.inc_by(count(bytes));
        if let Some(latency) = latency {
            self.inner.delivery_latency.observe(latency.as_secs_f64());
        }
    }

    /// `n` stored messages were deleted on acknowledgement.
    pub fn messages_acked(&self, n: u64) {
        self.inner.messages_acked.inc_by(n);
    }

    /// `n` stored messages expired unread.
    pub fn messages_expired(&self, n: u64) {
        self.inner.messages_expired.inc_by(n);
    }

    /// A request was refused with an `error` frame carrying `code`.
    pub fn request_refused(&self, code: ErrorCode) {
        self.inner
            .request_errors
            .get_or_create(&ErrorLabels {
                code: error_name(code),
            })
            .inc();
    }

    /// The store committed `operations` operations in one commit that took `duration`.
    pub fn store_commit(&self, operations: usize, duration: Duration) {
        self.inner
            .store_commit_seconds
            .observe(duration.as_secs_f64());
        // Exact for any realistic batch size.
        self.inner
            .store_commit_operations
            .observe(count(operations) as f64);
    }

    /// A store operation failed.
    pub fn store_error(&self) {
        self.inner.store_errors.inc();
    }

    /// The undelivered mail: mailboxes holding some, stored copies, and their payload bytes.
    pub fn set_stored(&self, mailboxes: u64, messages: u64, bytes: u64) {
        self.inner.mailboxes.set(gauge_value(mailboxes));
        self.inner.stored_messages.set(gauge_value(messages));
        self.inner.stored_bytes.set(gauge_value(bytes));
    }

    /// A prekey bundle was handed out, with or without a one-time prekey.
    pub fn bundle_served(&self, with_one_time_prekey: bool) {
        self.inner
            .bundles_served
            .get_or_create(&BundleLabels {
                one_time_prekey: with_one_time_prekey,
            })
            .inc();
    }

    /// A mailbox was told its one-time prekey pool runs low.
    pub fn prekeys_low(&self) {
        self.inner.prekeys_low.inc();
    }

    /// The OpenMetrics text exposition of every metric, ending with `# EOF`. Serve it with
    /// the content type [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a `String` cannot fail, and every label value here encodes.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests;
