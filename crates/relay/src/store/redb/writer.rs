//! The writer thread: group commit.
//!
//! Callers send a [`Request`] (the operation and a oneshot for its answer) over a bounded
//! channel. The writer blocks for the first request, drains whatever else is queued (up to
//! `max_batch`), applies the operations one after the other in **one** write transaction
//! (so each sees the effects of the ones before it), commits with [`Durability::Immediate`]
//! (fsync), and only then answers every caller: an answer means the commit holding it is on
//! disk. One fsync is shared by every operation of the batch, which is what makes durable
//! appends cheap under load.
//!
//! Every operation validates before it writes, so a refusal (unknown mailbox, quota) leaves the
//! transaction untouched and the batch commits without it. An engine error while applying, or
//! a failed commit, aborts the transaction: every operation of that batch gets
//! [`Error::Storage`] and nothing of it is on disk.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ::redb::{Database, Durability, ReadableTable, WriteTransaction};
use sealwire_core::{OneTimePrekey, PrekeyBundle, PublicIdentity, SignedPrekey};
use sealwire_transport::frame::MailboxId;
use tokio::sync::{mpsc, oneshot};

use super::tables::{self, OrStorage, PrekeyRecord, Tables, decode, encode};
use super::{CommitInfo, CommitObserver};
use crate::error::{Error, QuotaKind, Result};
use crate::store::{Appended, Expired, NewMessage, Quotas, TakenBundle};

/// Where the answer to a request goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// A write, with the channel for its answer.
pub(super) enum Request {
    Register(MailboxId, Reply<()>),
    Append(NewMessage, Reply<Appended>),
    Ack(MailboxId, Vec<u64>, Reply<u64>),
    Expire(u64, Reply<Expired>),
    PutPrekeys(Box<PrekeyUpload>, Reply<u32>),
    TakeBundle(MailboxId, Reply<Option<TakenBundle>>),
    /// Answered once everything queued before it is committed.
    Flush(Reply<()>),
}

/// What [`Store::put_prekeys`](crate::store::Store::put_prekeys) uploads.
pub(super) struct PrekeyUpload {
    pub(super) mailbox: MailboxId,
    pub(super) identity: PublicIdentity,
    pub(super) signed_prekey: SignedPrekey,
    pub(super) one_time: Vec<OneTimePrekey>,
}

/// An applied (or skipped) operation waiting for the commit to answer its caller.
trait Answer: Send {
    /// The engine error this operation hit, if any (the batch must then be aborted).
    fn engine_error(&self) -> Option<&str>;
    /// Answers: the operation's own result if the batch committed, else the commit error.
    fn answer(self: Box<Self>, commit: core::result::Result<(), &str>);
}

struct Pending<T> {
    reply: Reply<T>,
    result: Result<T>,
}

impl<T: Send + 'static> Answer for Pending<T> {
    fn engine_error(&self) -> Option<&str> {
        match &self.result {
            Err(Error::Storage(message)) => Some(message),
            _ => None,
        }
    }

    fn answer(self: Box<Self>, commit: core::result::Result<(), &str>) {
        let result = match commit {
            Ok(()) => self.result,
            Err(message) => Err(Error::Storage(message.to_owned())),
        };
        // The caller may have given up waiting: nothing to do then.
        let _ = self.reply.send(result);
    }
}

fn pending<T: Send + 'static>(reply: Reply<T>, result: Result<T>) -> Box<dyn Answer> {
    Box::new(Pending { reply, result })
}

impl Request {
    /// Applies the operation to the open transaction.
    fn apply(self, tables: &mut Tables<'_>) -> Box<dyn Answer> {
        match self {
            Request::Register(mailbox, reply) => pending(reply, tables.register(mailbox)),
            Request::Append(message, reply) => pending(reply, tables.append(&message)),
            Request::Ack(mailbox, deliveries, reply) => {
                pending(reply, tables.ack(mailbox, &deliveries))
            }
            Request::Expire(cutoff, reply) => pending(reply, tables.expire(cutoff)),
            Request::PutPrekeys(upload, reply) => {
                let PrekeyUpload {
                    mailbox,
                    identity,
                    signed_prekey,
                    one_time,
                } = *upload;
                pending(
                    reply,
                    tables.put_prekeys(mailbox, &identity, signed_prekey, one_time),
                )
            }
            Request::TakeBundle(mailbox, reply) => pending(reply, tables.take_bundle(mailbox)),
            Request::Flush(reply) => pending(reply, Ok(())),
        }
    }

    /// The operation, not applied: answered with the batch's error.
    fn skip(self) -> Box<dyn Answer> {
        match self {
            Request::Register(_, reply) | Request::Flush(reply) => pending(reply, not_applied()),
            Request::Append(_, reply) => pending(reply, not_applied()),
            Request::Ack(_, _, reply) => pending(reply, not_applied()),
            Request::Expire(_, reply) => pending(reply, not_applied()),
            Request::PutPrekeys(_, reply) => pending(reply, not_applied()),
            Request::TakeBundle(_, reply) => pending(reply, not_applied()),
        }
    }
}

/// The placeholder result of an operation that was not applied (the batch error replaces it).
fn not_applied<T>() -> Result<T> {
    Err(Error::Storage("not applied".into()))
}

/// What the writer thread needs.
pub(super) struct Writer {
    pub(super) db: Arc<Database>,
    pub(super) path: String,
    pub(super) quotas: Quotas,
    pub(super) expiry_chunk: usize,
    pub(super) max_batch: usize,
    pub(super) observer: Option<CommitObserver>,
    /// Set when the store closes (then a request wakes the writer up).
    pub(super) closing: Arc<AtomicBool>,
}

impl Writer {
    /// The writer loop: returns once the store is closing (or every sender is gone) and the
    /// queue is drained. Closing does not wait for senders that have not queued their request
    /// yet (their send fails: the store is closed), so that a close cannot hang on a task that
    /// is not polled.
    pub(super) fn run(self, mut requests: mpsc::Receiver<Request>) {
        let max_batch = self.max_batch.max(1);
        let mut batch = Vec::with_capacity(max_batch);
        loop {
            let first = if self.closing.load(Ordering::Acquire) {
                requests.try_recv().ok()
            } else {
                requests.blocking_recv()
            };
            let Some(first) = first else { break };
            batch.push(first);
            while batch.len() < max_batch {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit(std::mem::take(&mut batch));
        }
        tracing::debug!(path = %self.path, "store writer stopped");
    }

    /// Applies and commits one batch, then answers its callers.
    fn commit(&self, batch: Vec<Request>) {
        let operations = batch
            .iter()
            .filter(|r| !matches!(r, Request::Flush(_)))
            .count();
        if operations == 0 {
            // Only flushes: every earlier batch is already committed.
            for request in batch {
                if let Request::Flush(reply) = request {
                    let _ = reply.send(Ok(()));
                }
            }
            return;
        }
        let started = Instant::now();
        let (answers, outcome) = match self.db.begin_write() {
            Ok(txn) => self.apply_and_commit(txn, batch),
            Err(e) => (
                batch.into_iter().map(Request::skip).collect(),
                Err(format!("beginning a write transaction: {e}")),
            ),
        };
        let outcome = outcome.map_err(|e| {
            tracing::error!(path = %self.path, operations, error = %e, "store commit failed");
            format!(
                "{}: {e}; the {operations} operation(s) of this commit were not applied",
                self.path
            )
        });
        if outcome.is_ok()
            && let Some(observer) = &self.observer
        {
            let info = CommitInfo {
                operations,
                duration: started.elapsed(),
            };
            // A panicking metrics hook must not take the store down with it.
            if std::panic::catch_unwind(AssertUnwindSafe(|| observer(info))).is_err() {
                tracing::error!(path = %self.path, "the commit observer panicked");
            }
        }
        for answer in answers {
            answer.answer(outcome.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }

    fn apply_and_commit(
        &self,
        mut txn: WriteTransaction,
        batch: Vec<Request>,
    ) -> (Vec<Box<dyn Answer>>, core::result::Result<(), String>) {
        if let Err(e) = txn.set_durability(Durability::Immediate) {
            let answers = batch.into_iter().map(Request::skip).collect();
            return (answers, Err(format!("setting durability: {e}")));
        }
        let (answers, failure) = self.apply(&txn, batch);
        let outcome = match failure {
            None => txn.commit().map_err(|e| format!("commit: {e}")),
            Some(failure) => {
                if let Err(e) = txn.abort() {
                    tracing::warn!(path = %self.path, error = %e, "aborting a write transaction failed");
                }
                Err(failure)
            }
        };
        (answers, outcome)
    }

    /// Applies every operation in order; stops applying at the first engine error (returned).
    fn apply(
        &self,
        txn: &WriteTransaction,
        batch: Vec<Request>,
    ) -> (Vec<Box<dyn Answer>>, Option<String>) {
        let mut tables = match Tables::open(txn, self.quotas, self.expiry_chunk) {
            Ok(tables) => tables,
            Err(e) => {
                return (
                    batch.into_iter().map(Request::skip).collect(),
                    Some(engine_message(e)),
                );
            }
        };
        let mut answers = Vec::with_capacity(batch.len());
        let mut failure = None;
        for request in batch {
            if failure.is_some() {
                answers.push(request.skip());
                continue;
            }
            let answer = request.apply(&mut tables);
            failure = answer.engine_error().map(str::to_owned);
            answers.push(answer);
        }
        if failure.is_none()
            && let Err(e) = tables.finish()
        {
            failure = Some(engine_message(e));
        }
        (answers, failure)
    }
}

/// The message of an engine error, without the `storage failed` prefix (added once, by the
/// caller's error).
fn engine_message(error: Error) -> String {
    match error {
        Error::Storage(message) => message,
        other => other.to_string(),
    }
}

/// An error for a state that only a corrupted file (or a bug) can produce.
fn inconsistent(what: &str) -> Error {
    Error::Storage(format!("inconsistent store: {what}"))
}

impl Tables<'_> {
    fn register(&mut self, mailbox: MailboxId) -> Result<()> {
        if self.mailbox(mailbox)?.is_none() {
            self.put_mailbox(mailbox, &Default::default());
            self.totals.mailboxes += 1;
        }
        Ok(())
    }

    fn append(&mut self, message: &NewMessage) -> Result<Appended> {
        let (from, id, at) = (message.from.0, message.id.0, message.received_at);
        if self
            .dedup
            .get((from, id))
            .or_storage("reading dedup")?
            .is_some()
        {
            return Ok(Appended::Duplicate);
        }
        let size = message.payload.len() as u64;
        let copies = size.saturating_mul(message.to.len() as u64);
        if self.totals.bytes.saturating_add(copies) > self.quotas.max_total_bytes {
            return Err(Error::StoreFull);
        }
        // Validate every recipient before writing anything: a refusal changes nothing.
        for to in &message.to {
            let record = self.mailbox(*to)?.ok_or(Error::UnknownMailbox(*to))?;
            let kind = if record.messages >= self.quotas.max_messages {
                QuotaKind::Messages
            } else if record.bytes.saturating_add(size) > self.quotas.max_bytes {
                QuotaKind::Bytes
            } else {
                continue;
            };
            return Err(Error::QuotaExceeded { mailbox: *to, kind });
        }
        let what = "storing a message";
        self.dedup.insert((from, id), at).or_storage(what)?;
        self.dedup_expiry
            .insert((at, from, id), ())
            .or_storage(what)?;
        let mut deliveries = Vec::with_capacity(message.to.len());
        for to in &message.to {
            let mut record = self
                .mailbox(*to)?
                .ok_or_else(|| inconsistent("a validated mailbox vanished"))?;
            record.next_delivery += 1;
            record.messages += 1;
            record.bytes = record.bytes.saturating_add(size);
            let delivery = record.next_delivery;
            self.messages
                .insert((to.0, delivery), (from, id, at, message.payload.as_slice()))
                .or_storage(what)?;
            self.message_expiry
                .insert((at, to.0, delivery), ())
                .or_storage(what)?;
            self.put_mailbox(*to, &record);
            self.totals.messages += 1;
            self.totals.bytes = self.totals.bytes.saturating_add(size);
            deliveries.push(delivery);
        }
        Ok(Appended::Stored(deliveries))
    }

    fn ack(&mut self, mailbox: MailboxId, deliveries: &[u64]) -> Result<u64> {
        let Some(mut record) = self.mailbox(mailbox)? else {
            return Ok(0);
        };
        let what = "removing a message";
        let (mut removed, mut bytes) = (0u64, 0u64);
        for &delivery in deliveries {
            let Some(guard) = self
                .messages
                .remove((mailbox.0, delivery))
                .or_storage(what)?
            else {
                continue;
            };
            let (_, _, at, payload) = guard.value();
            let len = payload.len() as u64;
            drop(guard);
            self.message_expiry
                .remove((at, mailbox.0, delivery))
                .or_storage(what)?;
            removed += 1;
            bytes += len;
        }
        if removed > 0 {
            record.messages = record.messages.saturating_sub(removed);
            record.bytes = record.bytes.saturating_sub(bytes);
            self.put_mailbox(mailbox, &record);
            self.totals.messages = self.totals.messages.saturating_sub(removed);
            self.totals.bytes = self.totals.bytes.saturating_sub(bytes);
        }
        Ok(removed)
    }

    fn expire(&mut self, cutoff: u64) -> Result<Expired> {
        let what = "expiring";
        let mut expired = Expired::default();
        // Walk the expiry index up to the cutoff (never the whole store), removing as we go.
        // At most `expiry_chunk` rows of each kind per call, so that the first sweep after a
        // long downtime does not hold the writer (and every send) for long: the caller calls
        // again while `more` is set.
        let mut per_mailbox: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
        let mut old = Vec::new();
        for entry in self
            .message_expiry
            .range(..(cutoff, [0u8; 32], 0u64))
            .or_storage(what)?
            .take(self.expiry_chunk + 1)
        {
            old.push(entry.or_storage(what)?.0.value());
        }
        expired.more = old.len() > self.expiry_chunk;
        old.truncate(self.expiry_chunk);
        for key in old {
            self.message_expiry.remove(key).or_storage(what)?;
            let (_, mailbox, delivery) = key;
            let Some(guard) = self.messages.remove((mailbox, delivery)).or_storage(what)? else {
                return Err(inconsistent("an expiry entry without its message"));
            };
            let len = guard.value().3.len() as u64;
            let counts = per_mailbox.entry(mailbox).or_default();
            counts.0 += 1;
            counts.1 += len;
            expired.messages += 1;
            expired.bytes += len;
        }
        for (mailbox, (messages, bytes)) in per_mailbox {
            let mailbox = MailboxId(mailbox);
            let mut record = self
                .mailbox(mailbox)?
                .ok_or_else(|| inconsistent("a message without its mailbox"))?;
            record.messages = record.messages.saturating_sub(messages);
            record.bytes = record.bytes.saturating_sub(bytes);
            self.put_mailbox(mailbox, &record);
        }
        self.totals.messages = self.totals.messages.saturating_sub(expired.messages);
        self.totals.bytes = self.totals.bytes.saturating_sub(expired.bytes);
        let mut old = Vec::new();
        for entry in self
            .dedup_expiry
            .range(..(cutoff, [0u8; 32], [0u8; 16]))
            .or_storage(what)?
            .take(self.expiry_chunk + 1)
        {
            old.push(entry.or_storage(what)?.0.value());
        }
        expired.more |= old.len() > self.expiry_chunk;
        old.truncate(self.expiry_chunk);
        for key in old {
            self.dedup_expiry.remove(key).or_storage(what)?;
            let (_, from, id) = key;
            self.dedup.remove((from, id)).or_storage(what)?;
            expired.dedup += 1;
        }
        Ok(expired)
    }

    fn put_prekeys(
        &mut self,
        mailbox: MailboxId,
        identity: &PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
    ) -> Result<u32> {
        let what = "storing prekeys";
        let existing = self.mailbox(mailbox)?;
        let mut record = existing.unwrap_or_default();
        // Keep the first of each id, and only ids never seen before (in the pool or handed
        // out).
        let mut ids = HashSet::new();
        let mut fresh = Vec::with_capacity(one_time.len());
        for key in one_time {
            if ids.insert(key.id)
                && self
                    .pool_ids
                    .get((mailbox.0, key.id))
                    .or_storage(what)?
                    .is_none()
            {
                fresh.push(key);
            }
        }
        let size = record.pool_len as usize + fresh.len();
        if size > self.quotas.max_one_time_prekeys as usize {
            return Err(Error::QuotaExceeded {
                mailbox,
                kind: QuotaKind::OneTimePrekeys,
            });
        }
        let prekeys = encode(
            "prekey record",
            &PrekeyRecord {
                identity: identity.to_bytes().to_vec(),
                signed_prekey,
            },
        )?;
        self.prekeys
            .insert(mailbox.0, prekeys.as_slice())
            .or_storage(what)?;
        for key in fresh {
            let seq = record.pool_next;
            record.pool_next += 1;
            self.pool
                .insert((mailbox.0, seq), (key.id, key.public_key))
                .or_storage(what)?;
            self.pool_ids
                .insert((mailbox.0, key.id), seq)
                .or_storage(what)?;
        }
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        record.pool_len = size;
        self.put_mailbox(mailbox, &record);
        if existing.is_none() {
            self.totals.mailboxes += 1;
        }
        Ok(size)
    }

    fn take_bundle(&mut self, mailbox: MailboxId) -> Result<Option<TakenBundle>> {
        let what = "taking a prekey bundle";
        let Some(mut record) = self.mailbox(mailbox)? else {
            return Ok(None);
        };
        let Some(guard) = self.prekeys.get(mailbox.0).or_storage(what)? else {
            return Ok(None);
        };
        let prekeys: PrekeyRecord = decode("prekey record", guard.value())?;
        drop(guard);
        let identity = PublicIdentity::from_bytes(&prekeys.identity)
            .map_err(|e| inconsistent(&format!("stored identity: {e}")))?;
        // The oldest one-time prekey: the first of this mailbox's range.
        let oldest = match self
            .pool
            .range((mailbox.0, 0u64)..=(mailbox.0, u64::MAX))
            .or_storage(what)?
            .next()
        {
            Some(entry) => {
                let (key, value) = entry.or_storage(what)?;
                Some((key.value().1, value.value()))
            }
            None => None,
        };
        let one_time_prekey = match oldest {
            Some((seq, (id, public_key))) => {
                self.pool.remove((mailbox.0, seq)).or_storage(what)?;
                // The id stays, marked as handed out: a resent upload of the same key (7.4)
                // must not put it back into the pool.
                self.pool_ids
                    .insert((mailbox.0, id), tables::HANDED_OUT)
                    .or_storage(what)?;
                record.pool_len = record.pool_len.saturating_sub(1);
                self.put_mailbox(mailbox, &record);
                Some(OneTimePrekey { id, public_key })
            }
            None => None,
        };
        Ok(Some(TakenBundle {
            bundle: PrekeyBundle {
                identity,
                signed_prekey: prekeys.signed_prekey,
                one_time_prekey,
            },
            one_time_left: record.pool_len,
        }))
    }
}
