//! Storage: the [`Store`] trait, and its implementations.
//!
//! A store keeps four things, all keyed by [`MailboxId`]:
//!
//! - the set of **known mailboxes** (every identity that ever authenticated here): a send to
//!   any other mailbox is refused, so that nobody fills the disk with mail for made-up ids;
//! - **stored messages** per recipient, each with a per-mailbox **delivery id** that only
//!   grows (the order of storage) and stays the same across redeliveries;
//! - the **dedup** record of every `(sender, message id)` accepted within the retention time,
//!   so that a retried send is stored once;
//! - the **prekey directory**: an identity, its current signed prekey and a pool of one-time
//!   prekeys, each handed out at most once.
//!
//! Every mutating method returns only once its effect is **durable** (for a durable store):
//! the relay sends `accepted` after [`Store::append`] returns. Implementations may batch
//! concurrent writes into one commit (group commit); callers just await.
//!
//! The trait is async so that a store may be remote (a replicated database behind a
//! multi-node relay); [`MemoryStore`] and [`RedbStore`] are the two implementations here.
//! [`RedbStore`] is the default: embedded, crash-safe, no setup beyond a directory.

mod memory;
mod redb;

pub use self::memory::MemoryStore;
pub use self::redb::{CommitInfo, CommitObserver, RedbOptions, RedbStore};

use sealwire_core::{OneTimePrekey, PrekeyBundle, PublicIdentity, SignedPrekey};
use sealwire_transport::frame::{MailboxId, MessageId};

use crate::error::Result;

/// Per-mailbox storage limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Most messages stored for one mailbox (default 10 000).
    pub max_messages: u64,
    /// Most payload bytes stored for one mailbox (default 256 MiB).
    pub max_bytes: u64,
    /// Most one-time prekeys in one mailbox's pool (default 1 000).
    pub max_one_time_prekeys: u32,
    /// Most payload bytes stored over all mailboxes (default 64 GiB): a bound on the disk
    /// that any number of identities together can fill.
    pub max_total_bytes: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_messages: 10_000,
            max_bytes: 256 * 1024 * 1024,
            max_one_time_prekeys: 1_000,
            max_total_bytes: 64 * 1024 * 1024 * 1024,
        }
    }
}

/// A message to store, as accepted from its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The authenticated sender.
    pub from: MailboxId,
    /// The sender's message id (dedup key with `from`).
    pub id: MessageId,
    /// The recipients: at least one, distinct (the transport checked).
    pub to: Vec<MailboxId>,
    /// The opaque envelope.
    pub payload: Vec<u8>,
    /// When the relay received it (Unix seconds, the relay's clock); drives expiry.
    pub received_at: u64,
}

/// What [`Store::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored for every recipient: the delivery id of each, in the order of `to`.
    Stored(Vec<u64>),
    /// The same `(from, id)` was stored before (a retry): nothing was stored.
    Duplicate,
}

/// A message stored for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The delivery id (per mailbox, increasing in storage order).
    pub delivery: u64,
    /// The sender.
    pub from: MailboxId,
    /// The sender's message id.
    pub id: MessageId,
    /// The opaque envelope.
    pub payload: Vec<u8>,
    /// When the relay received it (Unix seconds).
    pub received_at: u64,
}

/// What [`Store::take_bundle`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenBundle {
    /// The bundle, with a one-time prekey if the pool had one.
    pub bundle: PrekeyBundle,
    /// One-time prekeys left in the pool afterwards (read in the same atomic step, so that
    /// exactly one fetch sees the pool cross the low-water mark).
    pub one_time_left: u32,
}

/// What [`Store::expire`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Stored messages removed (per recipient).
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Dedup records removed.
    pub dedup: u64,
    /// Whether more is due: a store may remove a bounded amount per call (so that a long
    /// backlog of expiry does not stall other writes); call again.
    pub more: bool,
}

/// Totals over the whole store, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Known mailboxes.
    pub mailboxes: u64,
    /// Stored messages (per recipient) not yet acknowledged or expired.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
}

/// The relay's storage. See the [module documentation](self) for what it keeps and the
/// durability contract.
///
/// Errors: [`Error::UnknownMailbox`](crate::Error::UnknownMailbox) and
/// [`Error::QuotaExceeded`](crate::Error::QuotaExceeded) and
/// [`Error::StoreFull`](crate::Error::StoreFull) for requests the store refuses (nothing
/// was changed); [`Error::Storage`](crate::Error::Storage) and
/// [`Error::StoreClosed`](crate::Error::StoreClosed) when the engine fails (nothing was changed
/// either: every method is atomic).
pub trait Store: Send + Sync + 'static {
    /// Records that `mailbox` exists (its owner authenticated). Idempotent.
    fn register(&self, mailbox: MailboxId) -> impl Future<Output = Result<()>> + Send;

    /// Stores `message` for every recipient, atomically: for all or (on an error) for none.
    /// A `(from, id)` stored before and not yet expired is not stored again:
    /// [`Appended::Duplicate`]. Quotas are checked for every recipient.
    fn append(&self, message: NewMessage) -> impl Future<Output = Result<Appended>> + Send;

    /// Up to `limit` stored messages of `mailbox` with a delivery id greater than `after`, in
    /// delivery id order.
    fn pending(
        &self,
        mailbox: MailboxId,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredMessage>>> + Send;

    /// Removes these deliveries of `mailbox`; unknown ids are ignored. Returns how many were
    /// removed.
    fn ack(
        &self,
        mailbox: MailboxId,
        deliveries: Vec<u64>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Removes stored messages and dedup records received before `cutoff` (Unix seconds),
    /// possibly only some of them: call again while [`Expired::more`] is set.
    fn expire(&self, cutoff: u64) -> impl Future<Output = Result<Expired>> + Send;

    /// Stores `identity` and `signed_prekey` for `mailbox` (replacing the previous ones) and
    /// adds `one_time` to its pool, ignoring keys whose id is already in the pool. Returns the
    /// pool size. [`Error::QuotaExceeded`](crate::Error::QuotaExceeded) (nothing stored) if the
    /// pool would exceed its quota.
    fn put_prekeys(
        &self,
        mailbox: MailboxId,
        identity: PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
    ) -> impl Future<Output = Result<u32>> + Send;

    /// The bundle of `mailbox`, removing the one-time prekey it hands out (the oldest in the
    /// pool): each is handed out at most once. `None` if the mailbox has uploaded nothing.
    fn take_bundle(
        &self,
        mailbox: MailboxId,
    ) -> impl Future<Output = Result<Option<TakenBundle>>> + Send;

    /// The number of one-time prekeys in `mailbox`'s pool.
    fn prekey_count(&self, mailbox: MailboxId) -> impl Future<Output = Result<u32>> + Send;

    /// Totals, for metrics.
    fn stats(&self) -> impl Future<Output = Result<StoreStats>> + Send;

    /// Waits until every write submitted so far is durable (graceful shutdown).
    fn flush(&self) -> impl Future<Output = Result<()>> + Send;
}

#[cfg(test)]
mod tests;
