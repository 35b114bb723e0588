//! [`RedbStore`]: the default store, durable and embedded in one file, `relay.redb`, in the data
//! directory.
//!
//! # Why redb
//!
//! [redb](https://docs.rs/redb) is pure Rust (no C toolchain to build or audit, unlike SQLite or
//! RocksDB), and gives ACID transactions over copy-on-write B-trees: a commit writes new pages
//! beside the old ones, then switches the root in a checksummed header, so a crash at any point
//! leaves either the old or the new state, never a mix. It allows one write transaction at a
//! time and any number of concurrent MVCC readers (each sees a snapshot, and never blocks or is
//! blocked by the writer), which is exactly the shape of group commit: one writer thread,
//! readers everywhere.
//!
//! # On-disk layout
//!
//! Schema version 1 (kept in `meta`; a file with another version is refused at open):
//!
//! | table            | key                                   | value                                  |
//! |------------------|---------------------------------------|----------------------------------------|
//! | `meta`           | name                                  | u64: `schema_version`, `total_*`       |
//! | `mailboxes`      | mailbox                               | postcard {next delivery, messages, bytes, pool len, next pool seq} |
//! | `messages`       | (mailbox, delivery id)                | (from, message id, received at, payload) |
//! | `message_expiry` | (received at, mailbox, delivery id)   | ()                                     |
//! | `dedup`          | (from, message id)                    | received at                            |
//! | `dedup_expiry`   | (received at, from, message id)       | ()                                     |
//! | `prekeys`        | mailbox                               | postcard {identity (128 bytes), signed prekey} |
//! | `one_time_pool`  | (mailbox, pool seq)                   | (prekey id, public key)                |
//! | `one_time_ids`   | (mailbox, prekey id)                  | pool seq                               |
//!
//! Keys are big-endian-ordered redb tuples, so `pending` is one range scan of `messages`,
//! `expire` walks the two expiry indexes only up to the cutoff, and the oldest one-time prekey
//! is the first entry of the mailbox's pool range (sequence numbers only grow). Quotas are
//! checked against the per-mailbox counters, and [`Store::stats`] reads the
//! `total_*` rows, both maintained by every write in the same transaction.
//!
//! # Durability and crashes
//!
//! Every write goes through one writer thread that batches whatever is queued into one write
//! transaction committed with [`Durability::Immediate`](::redb::Durability::Immediate) (an
//! fsync), and answers the callers only after that commit (see `writer.rs`). So when
//! [`Store::append`] returns, the message is on disk, and `accepted`
//! means durable. A crash loses only operations whose callers got no answer yet; the file opens
//! in its last committed state (redb verifies the checksums and rebuilds its allocator state on
//! the first open after an unclean shutdown, which reads the whole file). A commit error fails
//! every operation of its batch and changes nothing. The file is locked while open: a second
//! relay on the same data directory is refused at [`RedbStore::open`].
//!
//! # Reads
//!
//! `pending`, `prekey_count` and `stats` run in their own read transaction on tokio's blocking
//! pool ([`tokio::task::spawn_blocking`]): a `pending` call may read many payloads from disk when
//! they are not cached, and blocking a runtime worker on that would stall every connection it
//! serves. The thread hop costs microseconds, small next to a network round trip. Readers see
//! the last commit and never wait for the writer.
//!
//! # Other engines
//!
//! [`Store`] only asks for atomic operations with the semantics of
//! [`MemoryStore`](super::MemoryStore) and "durable when the future resolves". A distributed
//! engine (a replicated SQL database, FoundationDB, a Raft log) can implement it with the same
//! schema: one transaction per operation, or batched like here, the dedup insert made
//! conditional (insert-if-absent) so that two relay nodes racing on one retry store it once, and
//! delivery ids taken from the mailbox row in the same transaction (or from a per-mailbox
//! sequence), so that they stay increasing across nodes. The conformance tests in
//! `store/tests.rs` then check it behaves as the other two.

mod tables;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ::redb::{
    Database, DatabaseError, ReadOnlyTable, ReadTransaction, ReadableDatabase, StorageError,
};
use sealwire_core::{OneTimePrekey, PublicIdentity, SignedPrekey};
use sealwire_transport::frame::{MailboxId, MessageId};
use tokio::sync::{mpsc, oneshot};

#[cfg(test)]
pub(in crate::store) use self::tables::{FILE_NAME, META, SCHEMA_KEY, SCHEMA_VERSION};
use self::tables::{MailboxRecord, OrStorage, decode};
use self::writer::{PrekeyUpload, Reply, Request, Writer};
use super::{Appended, Expired, NewMessage, Quotas, Store, StoreStats, StoredMessage, TakenBundle};
use crate::error::{Error, Result};

/// Called by the writer thread after every commit (for the store commit latency metric). Keep
/// it quick: the next batch waits for it.
pub type CommitObserver = Arc<dyn Fn(CommitInfo) + Send + Sync>;

/// One commit of the writer.
#[derive(Debug, Clone, Copy)]
pub struct CommitInfo {
    /// The write operations in it (flushes not counted).
    pub operations: usize,
    /// How long its write transaction took, from begin to the end of the fsync.
    pub duration: Duration,
}

/// Options of [`RedbStore::open`].
#[derive(Clone)]
pub struct RedbOptions {
    /// Per-mailbox limits.
    pub quotas: Quotas,
    /// Most operations in one commit (default 512; 0 counts as 1).
    pub max_batch: usize,
    /// Most stored messages, and most dedup records, one [`Store::expire`] call removes
    /// (default 10 000; 0 counts as 1), so that a long expiry backlog does not hold the writer.
    pub expiry_chunk: usize,
    /// Told about every commit.
    pub observer: Option<CommitObserver>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            quotas: Quotas::default(),
            max_batch: 512,
            expiry_chunk: 10_000,
            observer: None,
        }
    }
}

impl fmt::Debug for RedbOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbOptions")
            .field("quotas", &self.quotas)
            .field("expiry_chunk", &self.expiry_chunk)
            .field("max_batch", &self.max_batch)
            .field(
                "observer",
                &if self.observer.is_some() {
                    "present"
                } else {
                    "absent"
                },
            )
            .finish()
    }
}

/// The durable store: one redb file, one writer thread doing group commit, concurrent readers.
///
/// Every write returns once committed with an fsync, batched with the writes queued at the same
/// time; reads run in snapshot transactions beside the writer. The design (why redb, the on-disk
/// layout, durability and crash recovery) is described in `store/redb/mod.rs`.
///
/// Dropping it (or [`RedbStore::close`]) stops taking operations, lets the writer commit and
/// answer everything already queued, and waits for it: no accepted operation is lost. Drop
/// blocks the current thread for that time (at most one batch).
pub struct RedbStore {
    path: PathBuf,
    open: Mutex<Option<Open>>,
}

/// What a closed store lets go of.
struct Open {
    db: Arc<Database>,
    requests: mpsc::Sender<Request>,
    closing: Arc<AtomicBool>,
    writer: JoinHandle<()>,
}

impl Open {
    /// Tells the writer to finish what is queued and stop; returns it, to join.
    fn shut_down(self) -> JoinHandle<()> {
        self.closing.store(true, Ordering::Release);
        // Wake the writer if it waits for a request. If the queue is full, it is not waiting
        // and sees the flag after its batch.
        let _ = self.requests.try_send(Request::Flush(oneshot::channel().0));
        self.writer
    }
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self.open.lock().map(|o| o.is_some()).unwrap_or(false);
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("open", &open)
            .finish()
    }
}

impl RedbStore {
    /// Opens (or creates) `dir/relay.redb`, creating `dir` if needed, and starts the writer.
    ///
    /// # Errors
    /// [`Error::Storage`], naming the file: the directory cannot be created, the file is in use
    /// by another relay, cannot be read or written, is corrupted, is not a relay store or has a
    /// schema version this build does not read.
    pub fn open(dir: &Path, options: RedbOptions) -> Result<RedbStore> {
        // A new data directory is private to the relay's user (it holds ciphertext and
        // metadata: who writes to whom); an existing one keeps the operator's permissions.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| {
            Error::Storage(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(tables::FILE_NAME);
        let shown = path.display().to_string();
        let mut builder = Database::builder();
        let repairing = shown.clone();
        builder.set_repair_callback(move |session| {
            tracing::warn!(
                path = %repairing,
                progress = session.progress(),
                "repairing the store after an unclean shutdown"
            );
        });
        let db = builder.create(&path).map_err(|e| open_error(&shown, e))?;
        let txn = db.begin_write().or_storage(&shown)?;
        tables::init(&txn, &shown)?;
        txn.commit().or_storage(&shown)?;
        let db = Arc::new(db);
        let max_batch = options.max_batch.max(1);
        let (requests, queue) = mpsc::channel(max_batch.saturating_mul(4));
        let closing = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            db: db.clone(),
            path: shown.clone(),
            quotas: options.quotas,
            expiry_chunk: options.expiry_chunk.max(1),
            max_batch,
            observer: options.observer,
            closing: closing.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("relay-store-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| Error::Storage(format!("{shown}: cannot start the writer thread: {e}")))?;
        tracing::info!(path = %shown, "store open");
        Ok(RedbStore {
            path,
            open: Mutex::new(Some(Open {
                db,
                requests,
                closing,
                writer,
            })),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops taking operations (they then fail with [`Error::StoreClosed`]), waits until the
    /// writer has committed and answered everything queued, and releases the file once the
    /// reads in progress end. Idempotent.
    ///
    /// # Errors
    /// [`Error::Storage`] if the writer thread panicked.
    pub async fn close(&self) -> Result<()> {
        let Some(open) = self.take_open() else {
            return Ok(());
        };
        let writer = open.shut_down();
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .map_err(|e| self.failed(&format!("waiting for the writer: {e}")))?
            .map_err(|_| self.failed("the writer thread panicked"))
    }

    fn take_open(&self) -> Option<Open> {
        match self.open.lock() {
            Ok(mut open) => open.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn failed(&self, what: &str) -> Error {
        Error::Storage(format!("{}: {what}", self.path.display()))
    }

    /// The writer's queue and the database, or [`Error::StoreClosed`].
    fn handles(&self) -> Result<(mpsc::Sender<Request>, Arc<Database>)> {
        let open = self
            .open
            .lock()
            .map_err(|_| self.failed("store lock poisoned"))?;
        let open = open.as_ref().ok_or(Error::StoreClosed)?;
        Ok((open.requests.clone(), open.db.clone()))
    }

    /// Queues a write and waits until the commit holding it is durable.
    async fn submit<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T> {
        let (requests, _) = self.handles()?;
        let (reply, answer) = oneshot::channel();
        requests
            .send(request(reply))
            .await
            .map_err(|_| Error::StoreClosed)?;
        // Dropping this future now does not cancel the write: it is committed all the same.
        // No answer: the store closed before the writer took the request (or it panicked).
        answer.await.map_err(|_| Error::StoreClosed)?
    }

    /// Runs `read` in a read transaction (a snapshot of the last commit) on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (_, db) = self.handles()?;
        let path = self.path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().or_storage(&path)?;
            read(&txn).map_err(|e| match e {
                Error::Storage(message) => Error::Storage(format!("{path}: {message}")),
                other => other,
            })
        })
        .await
        .map_err(|e| self.failed(&format!("read task failed: {e}")))?
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        if let Some(open) = self.take_open()
            && open.shut_down().join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the store writer thread panicked");
        }
    }
}

/// A clear error for a failed open.
fn open_error(path: &str, error: DatabaseError) -> Error {
    Error::Storage(match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => format!(
            "{path} is in use: another relay process (or store) has it open; stop it or use \
             another data directory"
        ),
        DatabaseError::Storage(StorageError::Io(e)) => format!("cannot open {path}: {e}"),
        DatabaseError::Storage(StorageError::Corrupted(what)) => format!(
            "{path} is corrupted ({what}): restore it from a backup or move it away to start empty"
        ),
        DatabaseError::UpgradeRequired(version) => {
            format!("{path} has redb file format {version}, which this relay cannot read")
        }
        other => format!("cannot open {path}: {other}"),
    })
}

fn table<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    txn: &ReadTransaction,
    definition: ::redb::TableDefinition<K, V>,
) -> Result<ReadOnlyTable<K, V>> {
    txn.open_table(definition).or_storage("opening a table")
}

fn mailbox_record(txn: &ReadTransaction, mailbox: MailboxId) -> Result<Option<MailboxRecord>> {
    let mailboxes = table(txn, tables::MAILBOXES)?;
    match mailboxes.get(mailbox.0).or_storage("reading a mailbox")? {
        Some(guard) => decode("mailbox record", guard.value()).map(Some),
        None => Ok(None),
    }
}

impl Store for RedbStore {
    async fn register(&self, mailbox: MailboxId) -> Result<()> {
        // Mailboxes are never removed, so a read answers every connect but the first without
        // a commit (a reconnect storm after a restart costs reads, not fsyncs).
        let known = self
            .read(move |txn| {
                let mailboxes = table(txn, tables::MAILBOXES)?;
                Ok(mailboxes
                    .get(mailbox.0)
                    .or_storage("reading mailboxes")?
                    .is_some())
            })
            .await?;
        if known {
            return Ok(());
        }
        self.submit(|reply| Request::Register(mailbox, reply)).await
    }

    async fn append(&self, message: NewMessage) -> Result<Appended> {
        self.submit(|reply| Request::Append(message, reply)).await
    }

    async fn pending(
        &self,
        mailbox: MailboxId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.read(move |txn| {
            let messages = table(txn, tables::MESSAGES)?;
            let range = messages
                .range((mailbox.0, after.saturating_add(1))..=(mailbox.0, u64::MAX))
                .or_storage("reading messages")?;
            let mut out = Vec::with_capacity(limit.min(256));
            for entry in range.take(limit) {
                let (key, value) = entry.or_storage("reading messages")?;
                let (from, id, received_at, payload) = value.value();
                out.push(StoredMessage {
                    delivery: key.value().1,
                    from: MailboxId(from),
                    id: MessageId(id),
                    payload: payload.to_vec(),
                    received_at,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, mailbox: MailboxId, deliveries: Vec<u64>) -> Result<u64> {
        self.submit(|reply| Request::Ack(mailbox, deliveries, reply))
            .await
    }

    async fn expire(&self, cutoff: u64) -> Result<Expired> {
        self.submit(|reply| Request::Expire(cutoff, reply)).await
    }

    async fn put_prekeys(
        &self,
        mailbox: MailboxId,
        identity: PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
    ) -> Result<u32> {
        let upload = PrekeyUpload {
            mailbox,
            identity,
            signed_prekey,
            one_time,
        };
        self.submit(|reply| Request::PutPrekeys(Box::new(upload), reply))
            .await
    }

    async fn take_bundle(&self, mailbox: MailboxId) -> Result<Option<TakenBundle>> {
        self.submit(|reply| Request::TakeBundle(mailbox, reply))
            .await
    }

    async fn prekey_count(&self, mailbox: MailboxId) -> Result<u32> {
        self.read(move |txn| Ok(mailbox_record(txn, mailbox)?.map_or(0, |r| r.pool_len)))
            .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.read(|txn| {
            let meta = table(txn, tables::META)?;
            let total = |key: &str| -> Result<u64> {
                Ok(meta
                    .get(key)
                    .or_storage("reading totals")?
                    .map_or(0, |g| g.value()))
            };
            Ok(StoreStats {
                mailboxes: total(tables::TOTAL_MAILBOXES)?,
                messages: total(tables::TOTAL_MESSAGES)?,
                bytes: total(tables::TOTAL_BYTES)?,
            })
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        self.submit(Request::Flush).await
    }
}
