//! The file as an attacker sees it: no plaintext, the documented layout, and every alteration
//! detected.

use std::path::Path;

use rand::Rng as _;
use redb::{Database, ReadableTable, WriteTransaction};
use tempfile::TempDir;

use super::{RAW, fast, sample};
use crate::error::Error;
use crate::store::key::TAG_LEN;
use crate::store::{Batch, FILE_NAME, LocalStore, META, RECORDS, StoreKey};

/// Opens the closed store's file with redb directly and runs `change` in a write transaction.
fn tamper(dir: &Path, change: impl FnOnce(&WriteTransaction)) {
    let db = Database::open(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn records_raw(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = Database::open(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    let table = txn.open_table(RECORDS).unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect()
}

fn meta_key(dir: &Path) -> Vec<u8> {
    let db = Database::open(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get("key").unwrap().unwrap().value().to_vec()
}

fn set_meta(dir: &Path, row: &str, value: &[u8]) {
    tamper(dir, |txn| {
        txn.open_table(META).unwrap().insert(row, value).unwrap();
    });
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_file_holds_no_plaintext_and_follows_the_documented_layout() {
    let dir = TempDir::new().unwrap();
    let mut value = [0u8; 24];
    rand::rng().fill_bytes(&mut value);
    let name = format!("canary-{}", rand::rng().next_u64());
    let store = LocalStore::create(dir.path(), &StoreKey::from_bytes(RAW), fast()).unwrap();
    let mut batch = Batch::new();
    batch.put(0x42, name.as_bytes(), &value);
    store.commit(&batch).unwrap();
    let dek = **store.keys.dek;
    drop(store);

    let file = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    for needle in [
        value.to_vec(),
        hex::encode(value).into_bytes(),
        hex::encode_upper(value).into_bytes(),
        name.clone().into_bytes(),
        hex::encode(&name).into_bytes(),
        dek.to_vec(),
        RAW.to_vec(),
    ] {
        assert!(!contains(&file, &needle));
    }

    let rows = records_raw(dir.path());
    assert_eq!(rows.len(), 1);
    let (slot, sealed) = &rows[0];
    assert_eq!(slot.len(), 32);
    // nonce ‖ (kind ‖ varint(len key) ‖ key ‖ varint(len value) ‖ value) encrypted ‖ tag.
    assert_eq!(
        sealed.len(),
        12 + 1 + 1 + name.len() + 1 + value.len() + TAG_LEN
    );
    let db = Database::open(dir.path().join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(meta.get("format").unwrap().unwrap().value(), [1, 0, 0, 0]);
    // Raw: variant 1 ‖ nonce (12) ‖ varint(48) ‖ wrapped (48).
    let key = meta.get("key").unwrap().unwrap().value().to_vec();
    assert_eq!((key.len(), key[0], key[13]), (1 + 12 + 1 + 48, 1, 48));
}

#[test]
fn an_altered_record_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::from_bytes(RAW);
    LocalStore::create(dir.path(), &key, fast())
        .unwrap()
        .commit(&sample().0)
        .unwrap();
    let rows = records_raw(dir.path());
    for position in [0, 11, 12, 20] {
        let (slot, mut sealed) = rows[0].clone();
        sealed[position] ^= 0x01;
        tamper(dir.path(), |txn| {
            let mut table = txn.open_table(RECORDS).unwrap();
            table.insert(slot.as_slice(), sealed.as_slice()).unwrap();
        });
        let store = LocalStore::open(dir.path(), &key).unwrap();
        let error = store.load_all().unwrap_err();
        assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");
    }
    // Truncated values and slots of the wrong length.
    for (slot, sealed) in [
        (rows[0].0.clone(), rows[0].1[..27].to_vec()),
        (rows[0].0[..31].to_vec(), rows[0].1.clone()),
    ] {
        tamper(dir.path(), |txn| {
            let mut table = txn.open_table(RECORDS).unwrap();
            table.retain(|_, _| false).unwrap();
            table.insert(slot.as_slice(), sealed.as_slice()).unwrap();
        });
        let error = LocalStore::open(dir.path(), &key)
            .unwrap()
            .load_all()
            .unwrap_err();
        assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");
    }
}

#[test]
fn a_record_moved_to_another_slot_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::from_bytes(RAW);
    LocalStore::create(dir.path(), &key, fast())
        .unwrap()
        .commit(&sample().0)
        .unwrap();
    let rows = records_raw(dir.path());
    tamper(dir.path(), |txn| {
        let mut table = txn.open_table(RECORDS).unwrap();
        table
            .insert(rows[0].0.as_slice(), rows[1].1.as_slice())
            .unwrap();
        table
            .insert(rows[1].0.as_slice(), rows[0].1.as_slice())
            .unwrap();
    });
    let store = LocalStore::open(dir.path(), &key).unwrap();
    let error = store.load_all().unwrap_err();
    assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");

    // A record sealed for one slot but naming another (only someone with the keys can make
    // one): the slot check catches it.
    let store = LocalStore::in_memory().unwrap();
    let slot = store.keys.slot(1, b"here");
    let sealed = store.keys.seal(&slot, 1, b"elsewhere", b"value").unwrap();
    let txn = store.db.begin_write().unwrap();
    txn.open_table(RECORDS)
        .unwrap()
        .insert(slot.as_slice(), sealed.as_slice())
        .unwrap();
    txn.commit().unwrap();
    let error = store.load_all().unwrap_err();
    assert!(
        matches!(error, Error::StoreCorrupt("a record is not in its slot")),
        "{error:?}"
    );
}

#[test]
fn altered_key_parameters_do_not_open() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::passphrase("passphrase");
    LocalStore::create(dir.path(), &key, fast()).unwrap();
    let original = meta_key(dir.path());
    // Passphrase: variant 0 ‖ salt (16) ‖ varint(8) ‖ varint(1) ‖ varint(1) ‖ nonce (12) ‖
    // varint(48) ‖ wrapped (48).
    assert_eq!(original.len(), 1 + 16 + 3 + 12 + 1 + 48);
    assert_eq!(
        (
            original[0],
            original[17],
            original[18],
            original[19],
            original[32]
        ),
        (0, 8, 1, 1, 48)
    );
    // Salt, memory (8 → 16 KiB), iterations (1 → 2), nonce, ciphertext, tag.
    for (position, value) in [
        (3, original[3] ^ 1),
        (17, 16),
        (18, 2),
        (25, original[25] ^ 1),
        (40, original[40] ^ 1),
        (80, original[80] ^ 1),
    ] {
        let mut altered = original.clone();
        altered[position] = value;
        set_meta(dir.path(), "key", &altered);
        let error = LocalStore::open(dir.path(), &key).unwrap_err();
        assert!(
            matches!(error, Error::WrongStoreKey),
            "{position}: {error:?}"
        );
    }
    // Out-of-range parameters (0 iterations) and undecodable records are corrupt.
    let mut altered = original.clone();
    altered[18] = 0;
    set_meta(dir.path(), "key", &altered);
    let error = LocalStore::open(dir.path(), &key).unwrap_err();
    assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");
    for altered in [&original[..50], &[original.as_slice(), &[0]].concat()[..]] {
        set_meta(dir.path(), "key", altered);
        let error = LocalStore::open(dir.path(), &key).unwrap_err();
        assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");
    }
    set_meta(dir.path(), "key", &original);
    LocalStore::open(dir.path(), &key).unwrap();
}

#[test]
fn other_format_versions_are_refused() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::from_bytes(RAW);
    LocalStore::create(dir.path(), &key, fast()).unwrap();
    set_meta(dir.path(), "format", &2u32.to_le_bytes());
    let error = LocalStore::open(dir.path(), &key).unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedStoreVersion(2)),
        "{error:?}"
    );
    set_meta(dir.path(), "format", &[1]);
    let error = LocalStore::open(dir.path(), &key).unwrap_err();
    assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");

    // A redb file that is not a store.
    let other = TempDir::new().unwrap();
    drop(Database::create(other.path().join(FILE_NAME)).unwrap());
    let error = LocalStore::open(other.path(), &key).unwrap_err();
    assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt() {
    for junk in [Vec::new(), b"not a database".to_vec(), vec![0xa5; 10_000]] {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), &junk).unwrap();
        let error = LocalStore::open(dir.path(), &StoreKey::from_bytes(RAW)).unwrap_err();
        assert!(matches!(error, Error::StoreCorrupt(_)), "{error:?}");
    }
}
