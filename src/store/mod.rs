//! [`LocalStore`]: the client's local store, encrypted at rest.
//!
//! A store is a set of records, each a `(kind, key) → value` entry (`kind` a byte that says
//! what the record is, `key` its name within the kind, `value` its contents). The client loads
//! every record at start ([`LocalStore::load_all`]) and writes changes in atomic, durable
//! batches ([`LocalStore::commit`]). Every record is encrypted and authenticated on its own, and
//! the database keys are keyed hashes, so the file shows neither contents, names nor kinds.
//!
//! A store is opened with a [`StoreKey`]: a passphrase (stretched with Argon2id, parameters in
//! [`KdfParams`]) or a raw 256-bit key (from a key file, an environment variable or the
//! caller). The store key only wraps a random data key, so [`LocalStore::change_key`] re-wraps
//! that key without rewriting the records.
//!
//! # On-disk format, version 1
//!
//! One [redb](https://docs.rs/redb) file, `store.redb`, in the store's directory (a directory
//! that [`LocalStore::create`] makes is mode 0700, the file it makes mode 0600, on unix). It
//! has two tables:
//!
//! | table     | key type | value type | rows |
//! |-----------|----------|------------|------|
//! | `meta`    | `&str`   | `&[u8]`    | `"format"`, `"key"` |
//! | `records` | `&[u8]`  | `&[u8]`    | one per record: slot → sealed record |
//!
//! Below, `‖` is concatenation, labels are their ASCII bytes (no terminator), `varint` is
//! postcard's unsigned LEB128, and `postcard(x)` is the [postcard](https://docs.rs/postcard)
//! encoding of `x`.
//!
//! - `meta["format"]`: the format version, a u32 little-endian: `01 00 00 00`. Any other
//!   version is refused ([`Error::UnsupportedStoreVersion`]).
//! - `meta["key"]`: `postcard(KeyWrap)`, where
//!
//!   ```text
//!   struct KeyWrap { kdf: Kdf, nonce: [u8; 12], wrapped: Vec<u8> }
//!   enum Kdf {
//!       Passphrase { salt: [u8; 16], memory_kib: u32, iterations: u32, parallelism: u32 }, // 0
//!       Raw,                                                                              // 1
//!   }
//!   ```
//!
//!   that is `varint(variant)` ‖ (for `Passphrase`: the 16 salt bytes ‖ `varint(memory_kib)` ‖
//!   `varint(iterations)` ‖ `varint(parallelism)`) ‖ the 12 nonce bytes ‖ `varint(48)` ‖
//!   `wrapped` (48 bytes).
//!
//! ## Keys
//!
//! - **KEK** (key-encryption key, 32 bytes), from the store key as `kdf` says:
//!   - `Raw`: HKDF-SHA256(salt = none, ikm = the 32-byte key, info = `"sealwire store v1 kek"`).
//!   - `Passphrase`: Argon2id, version 0x13, over the passphrase's UTF-8 bytes with `salt` (16
//!     random bytes, new at every wrap) and the stored memory (KiB), iterations and lanes; no
//!     secret, no associated data; 32-byte output.
//!
//!   A store key of the other kind than `kdf` is [`Error::WrongStoreKey`].
//! - **DEK** (data key): 32 random bytes made by [`LocalStore::create`], never changed.
//!   `wrapped` = AES-256-GCM(key = KEK, nonce = `nonce` (12 random bytes, new at every wrap),
//!   plaintext = DEK, associated data = `"sealwire store v1 dek"` ‖ `postcard(kdf)`), i.e. the
//!   32-byte ciphertext ‖ the 16-byte tag. The associated data makes an altered KDF
//!   description fail the tag; a tag that does not verify is [`Error::WrongStoreKey`].
//! - **Record key** = HKDF-SHA256(salt = none, ikm = DEK, info =
//!   `"sealwire store v1 record encryption"`), 32 bytes: an AES-256-GCM key.
//! - **Index key** = HKDF-SHA256(salt = none, ikm = DEK, info = `"sealwire store v1 record index"`),
//!   32 bytes: an HMAC-SHA256 key.
//!
//! ("salt = none" is HKDF's default salt, 32 zero bytes; RFC 5869.)
//!
//! ## Records
//!
//! The record `(kind, key) → value` is the `records` row
//!
//! - key (the *slot*): HMAC-SHA256(index key, `kind` ‖ `key`), 32 bytes;
//! - value: `nonce` (12 random bytes, new at every write) ‖ AES-256-GCM(key = record key,
//!   nonce, plaintext = `postcard((kind, key, value))`, associated data = slot), i.e. the
//!   ciphertext ‖ the 16-byte tag, where `postcard((kind, key, value))` = `kind` (1 byte) ‖
//!   `varint(len(key))` ‖ `key` ‖ `varint(len(value))` ‖ `value`.
//!
//! A deleted record's row is removed. [`LocalStore::load_all`] checks, for every row, that the
//! slot is 32 bytes, that the value decrypts with the slot as associated data, that the
//! plaintext decodes with no byte left over, and that its `(kind, key)` gives back the slot;
//! any failure is [`Error::StoreCorrupt`] (a record altered, truncated or moved to another
//! slot).
//!
//! # What this protects, and what not
//!
//! Someone who reads or alters the file, without the store key, learns nothing of the records'
//! contents, names and kinds, and cannot alter, forge or move a record undetected. They still
//! see, and this design does **not** hide or protect:
//!
//! - **Rollback.** The file, or any of its records, can be replaced by an older copy (a
//!   backup, a snapshot), and records can be deleted: an older record still decrypts in its
//!   slot. The store cannot tell; whoever needs freshness must keep a counter elsewhere.
//! - **Count and sizes.** The number of records, each record's size (its value is
//!   `len(key) + len(value)` plus 31 bytes, or a few more for lengths of 128 or more), and
//!   when and how often each slot changes.
//! - **Old key wraps.** redb writes copy-on-write, so old pages (older record values, and
//!   after [`LocalStore::change_key`] the data key wrapped under the old store key) stay in
//!   the file until reused, and in every copy of it. `change_key` changes what opens the store
//!   from now on; it does not revoke a leaked key. After a leak, create a new store (new data
//!   key) and copy the records into it.
//!
//! Record nonces are random, all under the one record key, which lasts as long as the store
//! (`change_key` keeps it): keep a store under 2^32 record writes (puts, counting rewrites),
//! the bound of NIST SP 800-38D for random 96-bit nonces. Writes are not counted.
//!
//! In memory, the store key, the KEK, the data key and the keys derived from it live in
//! zeroizing buffers (the AES key schedules are wiped by `aes-gcm`), as do plaintext values in
//! [`Batch`] and [`Record`]; none of them is shown by `Debug` or in error messages. (The
//! intermediate HMAC states inside HKDF and slot computations are not wiped.)
//!
//! # Concurrency and durability
//!
//! [`LocalStore`] is `Send + Sync`: commits are serialized by redb's single writer, and
//! [`LocalStore::load_all`] reads a snapshot of the last commit. A commit is one redb write
//! transaction with [`Durability::Immediate`]: when it returns, the batch is on disk; on any
//! error nothing of it is. The file is locked while open: a second open, from this process or
//! another, is [`Error::StoreInUse`].

mod key;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rand::Rng as _;
use redb::backends::{FileBackend, InMemoryBackend};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use zeroize::{Zeroize, Zeroizing};

use self::key::Keys;
pub use self::key::{KdfParams, StoreKey};
use crate::error::{Error, Result};

/// The database file in the store's directory.
const FILE_NAME: &str = "store.redb";
/// The format this code reads and writes.
const FORMAT_VERSION: u32 = 1;
/// name → bytes: `"format"` and `"key"`.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// slot → sealed record.
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const FORMAT_ROW: &str = "format";
const KEY_ROW: &str = "key";
/// How an in-memory store is named in messages.
const IN_MEMORY: &str = "in-memory store";

/// The client's local store, encrypted at rest: see the [module documentation](self) for the
/// format and what it protects.
///
/// `Debug` shows where the store is, never key material.
pub struct LocalStore {
    db: Database,
    location: String,
    keys: Keys,
    #[cfg(test)]
    fail_after: std::sync::atomic::AtomicUsize,
}

// The async client calls the store from `spawn_blocking`.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<LocalStore>();
};

impl fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Creates a new store in `dir` (made, mode 0700 on unix, if missing), in the file
    /// `dir/store.redb`, opened with `key`. `kdf` is used only if `key` is a passphrase.
    ///
    /// # Errors
    /// [`Error::StoreExists`] if `dir/store.redb` exists; [`Error::StoreKey`] for an empty
    /// passphrase or invalid `kdf`; [`Error::Storage`] if the directory or file cannot be made
    /// (a partly made file is removed).
    pub fn create(dir: &Path, key: &StoreKey, kdf: KdfParams) -> Result<LocalStore> {
        let mut dek = Box::new(Zeroizing::new([0u8; 32]));
        rand::rng().fill_bytes(dek.as_mut_slice());
        // The slow part (Argon2id) and every check, before anything is written.
        let wrapped = key::wrap(key, kdf, &dek)?;
        create_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let location = path.display().to_string();
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::StoreExists(dir.display().to_string())
            } else {
                Error::Storage(format!("cannot create {location}: {e}"))
            }
        })?;
        let made = FileBackend::new(file)
            .and_then(|backend| Database::builder().create_with_backend(backend))
            .or_db(&location, "creating the database")
            .and_then(|db| init(&db, &location, &wrapped).map(|()| db));
        match made {
            Ok(db) => Ok(LocalStore::new(db, location, dek)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Opens the store in `dir` with `key`.
    ///
    /// # Errors
    /// [`Error::NoStore`] if there is no `dir/store.redb`; [`Error::StoreInUse`] if it is open
    /// (in this process or another); [`Error::UnsupportedStoreVersion`];
    /// [`Error::WrongStoreKey`] if `key` does not unwrap the data key; [`Error::StoreCorrupt`]
    /// if the file is damaged or not a store; [`Error::Storage`] for I/O errors.
    pub fn open(dir: &Path, key: &StoreKey) -> Result<LocalStore> {
        let path = dir.join(FILE_NAME);
        let location = path.display().to_string();
        match path.try_exists() {
            Ok(true) => {}
            Ok(false) => return Err(Error::NoStore(dir.display().to_string())),
            Err(e) => return Err(Error::Storage(format!("cannot open {location}: {e}"))),
        }
        let mut builder = Database::builder();
        let repairing = location.clone();
        builder.set_repair_callback(move |session| {
            tracing::warn!(
                path = %repairing,
                progress = session.progress(),
                "repairing the local store after an unclean shutdown"
            );
        });
        let db = builder.open(&path).or_db(&location, "opening")?;
        let wrapped = {
            let txn = db.begin_read().or_db(&location, "reading")?;
            let meta = txn.open_table(META).or_db(&location, "reading")?;
            let format = meta
                .get(FORMAT_ROW)
                .or_db(&location, "reading")?
                .ok_or(Error::StoreCorrupt("the format version is missing"))?;
            let format: [u8; 4] = format
                .value()
                .try_into()
                .map_err(|_| Error::StoreCorrupt("the format version is malformed"))?;
            let version = u32::from_le_bytes(format);
            if version != FORMAT_VERSION {
                return Err(Error::UnsupportedStoreVersion(version));
            }
            txn.open_table(RECORDS).or_db(&location, "reading")?;
            let wrapped = meta
                .get(KEY_ROW)
                .or_db(&location, "reading")?
                .ok_or(Error::StoreCorrupt("the key record is missing"))?;
            wrapped.value().to_vec()
        };
        let dek = key::unwrap(key, &wrapped)?;
        Ok(LocalStore::new(db, location, dek))
    }

    /// A new store in memory (redb's in-memory backend) under a random key, gone when dropped:
    /// for demos and tests.
    ///
    /// # Errors
    /// [`Error::Storage`] if redb fails to set it up.
    pub fn in_memory() -> Result<LocalStore> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let key = StoreKey::from_bytes(raw);
        raw.zeroize();
        let mut dek = Box::new(Zeroizing::new([0u8; 32]));
        rand::rng().fill_bytes(dek.as_mut_slice());
        let wrapped = key::wrap(&key, KdfParams::default(), &dek)?;
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .or_db(IN_MEMORY, "creating")?;
        init(&db, IN_MEMORY, &wrapped)?;
        Ok(LocalStore::new(db, IN_MEMORY.to_owned(), dek))
    }

    fn new(db: Database, location: String, dek: Box<Zeroizing<[u8; 32]>>) -> LocalStore {
        LocalStore {
            db,
            location,
            keys: Keys::new(dek),
            #[cfg(test)]
            fail_after: std::sync::atomic::AtomicUsize::new(usize::MAX),
        }
    }

    /// Every record, decrypted, in no particular order.
    ///
    /// # Errors
    /// [`Error::StoreCorrupt`] if any record fails its checks (see the module documentation);
    /// [`Error::Storage`] for I/O errors.
    pub fn load_all(&self) -> Result<Vec<Record>> {
        let txn = self.db.begin_read().or_db(&self.location, "reading")?;
        let table = txn.open_table(RECORDS).or_db(&self.location, "reading")?;
        let mut records = Vec::new();
        for row in table.iter().or_db(&self.location, "reading")? {
            let (slot, sealed) = row.or_db(&self.location, "reading")?;
            records.push(self.keys.open(slot.value(), sealed.value())?);
        }
        Ok(records)
    }

    /// Applies `batch` in one transaction, durable (fsynced) when this returns. On error,
    /// nothing of it is applied. An empty batch does nothing.
    ///
    /// # Errors
    /// [`Error::Storage`] if the write fails (disk full, I/O error, a value too large).
    pub fn commit(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Seal first, so that the write lock is held only for the database work.
        let mut writes = Vec::with_capacity(batch.len());
        for ((kind, key), op) in &batch.ops {
            let slot = self.keys.slot(*kind, key);
            let sealed = match op {
                Op::Put(value) => Some(self.keys.seal(&slot, *kind, key, value)?),
                Op::Delete => None,
            };
            writes.push((slot, sealed));
        }
        let mut txn = self.db.begin_write().or_db(&self.location, "writing")?;
        txn.set_durability(Durability::Immediate)
            .or_db(&self.location, "writing")?;
        {
            let mut table = txn.open_table(RECORDS).or_db(&self.location, "writing")?;
            for (index, (slot, sealed)) in writes.iter().enumerate() {
                self.injected_failure(index)?;
                match sealed {
                    Some(sealed) => {
                        table
                            .insert(slot.as_slice(), sealed.as_slice())
                            .or_db(&self.location, "writing")?;
                    }
                    None => {
                        table
                            .remove(slot.as_slice())
                            .or_db(&self.location, "writing")?;
                    }
                }
            }
        }
        // An early return above drops `txn`, which aborts it.
        txn.commit().or_db(&self.location, "committing")
    }

    /// Wraps the data key under `new` (with `kdf` if it is a passphrase) in place of the
    /// current store key, durably. The records are not rewritten. See the module
    /// documentation: this does not revoke the old key for copies of the file.
    ///
    /// # Errors
    /// [`Error::StoreKey`] for an empty passphrase or invalid `kdf`; [`Error::Storage`] if
    /// the write fails (the old key then still opens the store).
    pub fn change_key(&self, new: &StoreKey, kdf: KdfParams) -> Result<()> {
        let wrapped = key::wrap(new, kdf, &self.keys.dek)?;
        let mut txn = self.db.begin_write().or_db(&self.location, "writing")?;
        txn.set_durability(Durability::Immediate)
            .or_db(&self.location, "writing")?;
        {
            let mut meta = txn.open_table(META).or_db(&self.location, "writing")?;
            meta.insert(KEY_ROW, wrapped.as_slice())
                .or_db(&self.location, "writing")?;
        }
        txn.commit().or_db(&self.location, "committing")
    }

    #[cfg(test)]
    fn injected_failure(&self, index: usize) -> Result<()> {
        if index == self.fail_after.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Storage("injected failure".into()));
        }
        Ok(())
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn injected_failure(&self, _index: usize) -> Result<()> {
        Ok(())
    }
}

/// Writes the format version and the wrapped key, and makes the `records` table.
fn init(db: &Database, location: &str, wrapped: &[u8]) -> Result<()> {
    let mut txn = db.begin_write().or_db(location, "initializing")?;
    txn.set_durability(Durability::Immediate)
        .or_db(location, "initializing")?;
    {
        let mut meta = txn.open_table(META).or_db(location, "initializing")?;
        meta.insert(FORMAT_ROW, FORMAT_VERSION.to_le_bytes().as_slice())
            .or_db(location, "initializing")?;
        meta.insert(KEY_ROW, wrapped)
            .or_db(location, "initializing")?;
        txn.open_table(RECORDS).or_db(location, "initializing")?;
    }
    txn.commit().or_db(location, "initializing")
}

/// Makes `dir` (and its parents) if missing, mode 0700 on unix; an existing directory keeps
/// its permissions.
fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        Error::Storage(format!(
            "cannot create the store directory {}: {e}",
            dir.display()
        ))
    })
}

/// Maps redb errors to [`Error`], naming the file and what was being done.
trait OrDb<T> {
    fn or_db(self, location: &str, doing: &str) -> Result<T>;
}

impl<T, E: Into<redb::Error>> OrDb<T> for core::result::Result<T, E> {
    fn or_db(self, location: &str, doing: &str) -> Result<T> {
        self.map_err(|e| match e.into() {
            redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                Error::StoreInUse
            }
            redb::Error::Corrupted(_) => Error::StoreCorrupt("the database file is damaged"),
            // What redb reports for an empty file, or one without its magic number.
            redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Error::StoreCorrupt("the file is empty or not a redb database")
            }
            redb::Error::TableDoesNotExist(_) => Error::StoreCorrupt(
                "a table is missing: not a sealwire store, or its creation was interrupted",
            ),
            redb::Error::UpgradeRequired(version) => Error::Storage(format!(
                "{location} has redb file format {version}, which this version cannot read"
            )),
            other => Error::Storage(format!("{location}: {doing}: {other}")),
        })
    }
}

/// One record, decrypted. `Debug` shows the kind and key, not the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// What the record is (the caller's numbering).
    pub kind: u8,
    /// Its name within the kind.
    pub key: Vec<u8>,
    /// Its contents, wiped on drop.
    pub value: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field(
                "value",
                &format_args!("<{} bytes redacted>", self.value.len()),
            )
            .finish()
    }
}

/// Puts and deletes to apply together with [`LocalStore::commit`]. A later operation on the
/// same `(kind, key)` replaces an earlier one. Values are held in zeroizing buffers.
#[derive(Clone, Default)]
pub struct Batch {
    /// `(kind, key)` → what to do with it.
    ops: BTreeMap<(u8, Vec<u8>), Op>,
}

/// What a [`Batch`] does with one record.
#[derive(Clone)]
enum Op {
    Put(Zeroizing<Vec<u8>>),
    Delete,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("operations", &self.ops.len())
            .finish()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Sets `(kind, key)` to `value` (a copy, wiped when the batch drops).
    pub fn put(&mut self, kind: u8, key: &[u8], value: &[u8]) {
        self.ops.insert(
            (kind, key.to_vec()),
            Op::Put(Zeroizing::new(value.to_vec())),
        );
    }

    /// Deletes `(kind, key)` (nothing if absent).
    pub fn delete(&mut self, kind: u8, key: &[u8]) {
        self.ops.insert((kind, key.to_vec()), Op::Delete);
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations it holds: one per distinct `(kind, key)`.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}
