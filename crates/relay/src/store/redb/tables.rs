//! The on-disk layout of [`RedbStore`](super::RedbStore): the table definitions, the record
//! encodings, the schema version, and the table set a write transaction works on.
//!
//! Keys are fixed-width redb tuples, so every range below is a contiguous slice of a B-tree:
//! one mailbox's messages, one mailbox's prekey pool, everything received before a cutoff.

use std::collections::HashMap;
use std::fmt::Display;

use ::redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use sealwire_core::SignedPrekey;
use sealwire_transport::frame::MailboxId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Quotas;

/// The file in the data directory.
pub(in crate::store) const FILE_NAME: &str = "relay.redb";

/// The layout version this code reads and writes. A file with another version is refused.
pub(in crate::store) const SCHEMA_VERSION: u64 = 1;

/// `meta` keys: the schema version and the totals of [`StoreStats`](crate::store::StoreStats),
/// maintained incrementally by every write.
pub(in crate::store) const SCHEMA_KEY: &str = "schema_version";
pub(super) const TOTAL_MAILBOXES: &str = "total_mailboxes";
pub(super) const TOTAL_MESSAGES: &str = "total_messages";
pub(super) const TOTAL_BYTES: &str = "total_bytes";

/// A stored message: sender, sender's message id, received at, payload.
pub(super) type MessageValue = ([u8; 32], [u8; 16], u64, &'static [u8]);

/// name → u64: schema version and totals.
pub(in crate::store) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// mailbox → [`MailboxRecord`] (postcard). Presence means "known mailbox".
pub(super) const MAILBOXES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("mailboxes");
/// (mailbox, delivery id) → message.
pub(super) const MESSAGES: TableDefinition<([u8; 32], u64), MessageValue> =
    TableDefinition::new("messages");
/// (received at, mailbox, delivery id) → (): the expiry index of `messages`.
pub(super) const MESSAGE_EXPIRY: TableDefinition<(u64, [u8; 32], u64), ()> =
    TableDefinition::new("message_expiry");
/// (sender, message id) → received at.
pub(super) const DEDUP: TableDefinition<([u8; 32], [u8; 16]), u64> = TableDefinition::new("dedup");
/// (received at, sender, message id) → (): the expiry index of `dedup`.
pub(super) const DEDUP_EXPIRY: TableDefinition<(u64, [u8; 32], [u8; 16]), ()> =
    TableDefinition::new("dedup_expiry");
/// mailbox → [`PrekeyRecord`] (postcard): identity and current signed prekey.
pub(super) const PREKEYS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("prekeys");
/// (mailbox, pool sequence number) → (one-time prekey id, public key). Sequence numbers grow
/// per mailbox, so the first entry of a mailbox's range is the oldest key.
pub(super) const POOL: TableDefinition<([u8; 32], u64), (u32, [u8; 32])> =
    TableDefinition::new("one_time_pool");
/// The value of a [`POOL_IDS`] row whose key was handed out (no longer in the pool).
pub(super) const HANDED_OUT: u64 = u64::MAX;
/// (mailbox, one-time prekey id) → pool sequence number, or [`HANDED_OUT`]: every id the
/// mailbox ever put in its pool, so that none is handed out twice.
pub(super) const POOL_IDS: TableDefinition<([u8; 32], u32), u64> =
    TableDefinition::new("one_time_ids");

/// Per-mailbox counters, kept in `mailboxes`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(super) struct MailboxRecord {
    /// The last delivery id handed out (0: none yet).
    pub(super) next_delivery: u64,
    /// Stored messages.
    pub(super) messages: u64,
    /// Their payload bytes.
    pub(super) bytes: u64,
    /// One-time prekeys in the pool.
    pub(super) pool_len: u32,
    /// The next pool sequence number.
    pub(super) pool_next: u64,
}

/// A mailbox's published identity (128 bytes) and current signed prekey.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PrekeyRecord {
    pub(super) identity: Vec<u8>,
    pub(super) signed_prekey: SignedPrekey,
}

/// Maps an engine error to [`Error::Storage`].
pub(super) trait OrStorage<T> {
    /// `Error::Storage("{what}: {error}")`.
    fn or_storage(self, what: &str) -> Result<T>;
}

impl<T, E: Display> OrStorage<T> for core::result::Result<T, E> {
    fn or_storage(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::Storage(format!("{what}: {e}")))
    }
}

pub(super) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).or_storage(what)
}

pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).or_storage(&format!("corrupted {what}"))
}

/// Creates the tables of a new file, or checks the schema version of an existing one.
pub(super) fn init(txn: &WriteTransaction, path: &str) -> Result<()> {
    let fresh = txn.list_tables().or_storage(path)?.next().is_none();
    let mut meta = txn.open_table(META).or_storage(path)?;
    let version = meta.get(SCHEMA_KEY).or_storage(path)?.map(|g| g.value());
    match version {
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(Error::Storage(format!(
                "{path} has schema version {other}, but this relay reads only schema version \
                 {SCHEMA_VERSION}: run a relay build that matches this data directory"
            )));
        }
        None if fresh => {
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION).or_storage(path)?;
        }
        None => {
            return Err(Error::Storage(format!(
                "{path} is a redb file but not a sealwire relay store (it has no schema version)"
            )));
        }
    }
    drop(meta);
    Tables::open(txn, Quotas::default(), 1).map(drop)
}

/// The running totals (`meta`), read at the start of a batch and written back before commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub(super) mailboxes: u64,
    pub(super) messages: u64,
    pub(super) bytes: u64,
}

/// Every table, open in one write transaction.
pub(super) struct Tables<'t> {
    pub(super) quotas: Quotas,
    /// Most messages, and most dedup records, one `expire` removes.
    pub(super) expiry_chunk: usize,
    pub(super) meta: Table<'t, &'static str, u64>,
    pub(super) mailboxes: Table<'t, [u8; 32], &'static [u8]>,
    pub(super) messages: Table<'t, ([u8; 32], u64), MessageValue>,
    pub(super) message_expiry: Table<'t, (u64, [u8; 32], u64), ()>,
    pub(super) dedup: Table<'t, ([u8; 32], [u8; 16]), u64>,
    pub(super) dedup_expiry: Table<'t, (u64, [u8; 32], [u8; 16]), ()>,
    pub(super) prekeys: Table<'t, [u8; 32], &'static [u8]>,
    pub(super) pool: Table<'t, ([u8; 32], u64), (u32, [u8; 32])>,
    pub(super) pool_ids: Table<'t, ([u8; 32], u32), u64>,
    pub(super) totals: Totals,
    saved: Totals,
    /// The mailbox records this transaction read or wrote, and whether each was changed:
    /// read once and written once per transaction however many operations touch them (a
    /// group commit often holds a send to a mailbox and that mailbox's ack). Written back by
    /// [`Tables::finish`].
    records: HashMap<[u8; 32], (MailboxRecord, bool)>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(
        txn: &'t WriteTransaction,
        quotas: Quotas,
        expiry_chunk: usize,
    ) -> Result<Tables<'t>> {
        let what = "opening the store tables";
        let meta = txn.open_table(META).or_storage(what)?;
        let total = |key: &str| -> Result<u64> {
            Ok(meta.get(key).or_storage(what)?.map_or(0, |g| g.value()))
        };
        let totals = Totals {
            mailboxes: total(TOTAL_MAILBOXES)?,
            messages: total(TOTAL_MESSAGES)?,
            bytes: total(TOTAL_BYTES)?,
        };
        Ok(Tables {
            quotas,
            expiry_chunk,
            meta,
            mailboxes: txn.open_table(MAILBOXES).or_storage(what)?,
            messages: txn.open_table(MESSAGES).or_storage(what)?,
            message_expiry: txn.open_table(MESSAGE_EXPIRY).or_storage(what)?,
            dedup: txn.open_table(DEDUP).or_storage(what)?,
            dedup_expiry: txn.open_table(DEDUP_EXPIRY).or_storage(what)?,
            prekeys: txn.open_table(PREKEYS).or_storage(what)?,
            pool: txn.open_table(POOL).or_storage(what)?,
            pool_ids: txn.open_table(POOL_IDS).or_storage(what)?,
            totals,
            saved: totals,
            records: HashMap::new(),
        })
    }

    pub(super) fn mailbox(&mut self, mailbox: MailboxId) -> Result<Option<MailboxRecord>> {
        if let Some((record, _)) = self.records.get(&mailbox.0) {
            return Ok(Some(*record));
        }
        let record: Option<MailboxRecord> = match self
            .mailboxes
            .get(mailbox.0)
            .or_storage("reading a mailbox")?
        {
            Some(guard) => Some(decode("mailbox record", guard.value())?),
            None => None,
        };
        if let Some(record) = record {
            self.records.insert(mailbox.0, (record, false));
        }
        Ok(record)
    }

    /// Changes a mailbox record (written back by [`Tables::finish`]).
    pub(super) fn put_mailbox(&mut self, mailbox: MailboxId, record: &MailboxRecord) {
        self.records.insert(mailbox.0, (*record, true));
    }

    /// Writes back the changed mailbox records and the totals: call once, after the last
    /// operation of the transaction and before its commit.
    pub(super) fn finish(&mut self) -> Result<()> {
        for (mailbox, (record, changed)) in &mut self.records {
            if *changed {
                let bytes = encode("mailbox record", record)?;
                self.mailboxes
                    .insert(*mailbox, bytes.as_slice())
                    .or_storage("writing a mailbox")?;
                *changed = false;
            }
        }
        self.save_totals()
    }

    /// Writes the totals back if they changed.
    fn save_totals(&mut self) -> Result<()> {
        if self.totals == self.saved {
            return Ok(());
        }
        let what = "writing the store totals";
        self.meta
            .insert(TOTAL_MAILBOXES, self.totals.mailboxes)
            .or_storage(what)?;
        self.meta
            .insert(TOTAL_MESSAGES, self.totals.messages)
            .or_storage(what)?;
        self.meta
            .insert(TOTAL_BYTES, self.totals.bytes)
            .or_storage(what)?;
        self.saved = self.totals;
        Ok(())
    }
}
