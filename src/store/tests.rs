use std::path::Path;
use std::sync::atomic::Ordering;

use rand::Rng as _;
use tempfile::TempDir;

use super::{Batch, FILE_NAME, KdfParams, LocalStore, Record, StoreKey};
use crate::error::Error;

mod tamper;

const RAW: [u8; 32] = [0x5a; 32];

fn fast() -> KdfParams {
    KdfParams::insecure_fast_for_tests()
}

fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    records
}

fn record(kind: u8, key: &[u8], value: &[u8]) -> Record {
    Record {
        kind,
        key: key.to_vec(),
        value: value.to_vec().into(),
    }
}

fn sample() -> (Batch, Vec<Record>) {
    let mut batch = Batch::new();
    batch.put(1, b"alice", b"session with alice");
    batch.put(1, b"bob", b"");
    batch.put(2, b"alice", &[0xff; 3000]);
    batch.put(7, b"", b"empty key");
    let expected = vec![
        record(1, b"alice", b"session with alice"),
        record(1, b"bob", b""),
        record(2, b"alice", &[0xff; 3000]),
        record(7, b"", b"empty key"),
    ];
    (batch, expected)
}

/// Creates a store with `key`, commits the sample, closes it, reopens it with `reopen`, and
/// checks the records.
fn round_trip(key: &StoreKey, reopen: &StoreKey) {
    let dir = TempDir::new().unwrap();
    let (batch, expected) = sample();
    let store = LocalStore::create(dir.path(), key, fast()).unwrap();
    store.commit(&batch).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), expected);
    drop(store);
    let store = LocalStore::open(dir.path(), reopen).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), expected);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn write_key_file(path: &Path, contents: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn round_trips_with_a_raw_key() {
    round_trip(&StoreKey::from_bytes(RAW), &StoreKey::from_bytes(RAW));
}

#[test]
fn round_trips_with_a_passphrase() {
    round_trip(
        &StoreKey::passphrase("correct horse battery staple"),
        &StoreKey::passphrase(String::from("correct horse battery staple")),
    );
}

#[test]
fn round_trips_with_a_generated_key_file() {
    let keys = TempDir::new().unwrap();
    let path = keys.path().join("store.key");
    let generated = StoreKey::generate_file(&path).unwrap();
    round_trip(&generated, &StoreKey::from_file(&path).unwrap());
}

#[cfg(unix)]
#[test]
fn key_files_hold_raw_bytes_or_hex() {
    let keys = TempDir::new().unwrap();
    let raw = keys.path().join("raw.key");
    write_key_file(&raw, &RAW, 0o600);
    round_trip(
        &StoreKey::from_bytes(RAW),
        &StoreKey::from_file(&raw).unwrap(),
    );
    let text = keys.path().join("hex.key");
    write_key_file(
        &text,
        format!("  {}\r\n\n", hex::encode_upper(RAW)).as_bytes(),
        0o400,
    );
    round_trip(
        &StoreKey::from_bytes(RAW),
        &StoreKey::from_file(&text).unwrap(),
    );
}

/// Run by [`reads_keys_from_the_environment`] in a child process with the variables set (a
/// test cannot set them in its own process without `unsafe`); does nothing otherwise.
#[test]
fn from_env_child() {
    let Some(dir) = std::env::var_os("SEALWIRE_STORE_TEST_DIR") else {
        return;
    };
    let names = std::env::var("SEALWIRE_STORE_TEST_VARS").unwrap();
    let (good, bad) = names.split_once(' ').unwrap();
    let store = LocalStore::open(Path::new(&dir), &StoreKey::from_env(good).unwrap()).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), sample().1);
    let error = StoreKey::from_env(bad).unwrap_err();
    assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(bad), "{message}");
    assert!(!message.contains("not-a-key"), "{message}");
}

#[test]
fn reads_keys_from_the_environment() {
    let dir = TempDir::new().unwrap();
    let store = LocalStore::create(dir.path(), &StoreKey::from_bytes(RAW), fast()).unwrap();
    store.commit(&sample().0).unwrap();
    drop(store);
    let unique = format!("{}_{}", std::process::id(), rand::rng().next_u64());
    let good = format!("SEALWIRE_STORE_TEST_KEY_{unique}");
    let bad = format!("SEALWIRE_STORE_TEST_BAD_{unique}");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "store::tests::from_env_child",
            "--exact",
            "--test-threads=1",
        ])
        .env("SEALWIRE_STORE_TEST_DIR", dir.path())
        .env("SEALWIRE_STORE_TEST_VARS", format!("{good} {bad}"))
        .env(&good, format!("{}\n", hex::encode(RAW)))
        .env(&bad, "not-a-key")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The child ran exactly that test, and it passed.
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}"
    );

    let missing = format!("SEALWIRE_STORE_TEST_UNSET_{unique}");
    let error = StoreKey::from_env(&missing).unwrap_err();
    assert!(
        matches!(error, Error::StoreKey(ref m) if m.contains(&missing)),
        "{error:?}"
    );
}

#[test]
fn a_later_operation_on_the_same_record_wins() {
    let store = LocalStore::in_memory().unwrap();
    let mut batch = Batch::new();
    assert!(batch.is_empty());
    batch.put(1, b"a", b"first");
    batch.put(1, b"a", b"second");
    batch.put(1, b"b", b"doomed");
    batch.delete(1, b"b");
    batch.delete(1, b"c");
    batch.put(1, b"c", b"revived");
    batch.put(2, b"a", b"other kind");
    assert_eq!(batch.len(), 4);
    store.commit(&batch).unwrap();
    assert_eq!(
        sorted(store.load_all().unwrap()),
        vec![
            record(1, b"a", b"second"),
            record(1, b"c", b"revived"),
            record(2, b"a", b"other kind"),
        ]
    );

    let mut batch = Batch::new();
    batch.delete(1, b"a");
    batch.delete(9, b"never written");
    batch.put(2, b"a", b"overwritten");
    store.commit(&batch).unwrap();
    store.commit(&Batch::new()).unwrap();
    assert_eq!(
        sorted(store.load_all().unwrap()),
        vec![record(1, b"c", b"revived"), record(2, b"a", b"overwritten")]
    );
}

#[test]
fn a_failed_commit_applies_nothing() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::from_bytes(RAW);
    let store = LocalStore::create(dir.path(), &key, fast()).unwrap();
    let (batch, expected) = sample();
    store.commit(&batch).unwrap();

    let mut failing = Batch::new();
    failing.delete(1, b"alice");
    failing.put(1, b"bob", b"changed");
    failing.put(3, b"new", b"new");
    failing.put(4, b"new", b"new");
    // Fails before its third write, after two went into the transaction.
    store.fail_after.store(2, Ordering::Relaxed);
    let error = store.commit(&failing).unwrap_err();
    assert!(matches!(error, Error::Storage(_)), "{error:?}");
    assert_eq!(sorted(store.load_all().unwrap()), expected);
    drop(store);

    let store = LocalStore::open(dir.path(), &key).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), expected);
    store.commit(&failing).unwrap();
    assert_eq!(store.load_all().unwrap().len(), 5);
}

#[test]
fn a_wrong_key_does_not_open() {
    let dir = TempDir::new().unwrap();
    LocalStore::create(dir.path(), &StoreKey::passphrase("right"), fast()).unwrap();
    for key in [
        StoreKey::passphrase("wrong"),
        StoreKey::passphrase("Right"),
        StoreKey::passphrase(""),
        StoreKey::from_bytes(RAW),
    ] {
        let error = LocalStore::open(dir.path(), &key).unwrap_err();
        assert!(matches!(error, Error::WrongStoreKey), "{error:?}");
    }

    let dir = TempDir::new().unwrap();
    LocalStore::create(dir.path(), &StoreKey::from_bytes(RAW), fast()).unwrap();
    let mut other = RAW;
    other[31] ^= 1;
    for key in [StoreKey::from_bytes(other), StoreKey::passphrase("right")] {
        let error = LocalStore::open(dir.path(), &key).unwrap_err();
        assert!(matches!(error, Error::WrongStoreKey), "{error:?}");
    }
}

#[test]
fn a_store_opens_once_at_a_time() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::from_bytes(RAW);
    let first = LocalStore::create(dir.path(), &key, fast()).unwrap();
    let error = LocalStore::open(dir.path(), &key).unwrap_err();
    assert!(matches!(error, Error::StoreInUse), "{error:?}");
    drop(first);
    let first = LocalStore::open(dir.path(), &key).unwrap();
    let error = LocalStore::open(dir.path(), &key).unwrap_err();
    assert!(matches!(error, Error::StoreInUse), "{error:?}");
    drop(first);
}

#[test]
fn create_and_open_check_what_is_there() {
    let dir = TempDir::new().unwrap();
    let key = StoreKey::from_bytes(RAW);
    let error = LocalStore::open(dir.path(), &key).unwrap_err();
    assert!(matches!(error, Error::NoStore(_)), "{error:?}");
    let error = LocalStore::open(&dir.path().join("absent"), &key).unwrap_err();
    assert!(matches!(error, Error::NoStore(_)), "{error:?}");

    let nested = dir.path().join("a").join("b");
    let store = LocalStore::create(&nested, &key, fast()).unwrap();
    store.commit(&sample().0).unwrap();
    drop(store);
    #[cfg(unix)]
    {
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&nested.join(FILE_NAME)), 0o600);
    }
    let error = LocalStore::create(&nested, &key, fast()).unwrap_err();
    assert!(matches!(error, Error::StoreExists(_)), "{error:?}");
    // The existing store is untouched.
    let store = LocalStore::open(&nested, &key).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), sample().1);
}

#[test]
fn bad_parameters_and_empty_passphrases_are_refused_before_writing() {
    assert!(KdfParams::default().validate().is_ok());
    assert!(fast().validate().is_ok());
    for bad in [
        KdfParams {
            memory_kib: 7,
            ..fast()
        },
        KdfParams {
            memory_kib: 8,
            parallelism: 2,
            ..fast()
        },
        KdfParams {
            iterations: 0,
            ..fast()
        },
        KdfParams {
            parallelism: 0,
            ..fast()
        },
        KdfParams {
            parallelism: 1 << 24,
            ..fast()
        },
        KdfParams {
            memory_kib: u32::MAX,
            ..fast()
        },
        KdfParams {
            iterations: 1025,
            ..fast()
        },
    ] {
        assert!(matches!(bad.validate(), Err(Error::StoreKey(_))), "{bad:?}");
        let dir = TempDir::new().unwrap();
        let error = LocalStore::create(dir.path(), &StoreKey::passphrase("p"), bad).unwrap_err();
        assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
        assert!(!dir.path().join(FILE_NAME).exists());
    }
    let dir = TempDir::new().unwrap();
    let error = LocalStore::create(dir.path(), &StoreKey::passphrase(""), fast()).unwrap_err();
    assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
    assert!(!dir.path().join(FILE_NAME).exists());
    // Parameters do not matter for a raw key.
    let bad = KdfParams {
        iterations: 0,
        ..fast()
    };
    LocalStore::create(dir.path(), &StoreKey::from_bytes(RAW), bad).unwrap();
}

#[test]
fn change_key_rewraps_the_data_key() {
    let dir = TempDir::new().unwrap();
    let old = StoreKey::passphrase("old passphrase");
    let store = LocalStore::create(dir.path(), &old, fast()).unwrap();
    store.commit(&sample().0).unwrap();
    let new = StoreKey::from_bytes(RAW);
    store.change_key(&new, fast()).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), sample().1);
    drop(store);

    let error = LocalStore::open(dir.path(), &old).unwrap_err();
    assert!(matches!(error, Error::WrongStoreKey), "{error:?}");
    let store = LocalStore::open(dir.path(), &new).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), sample().1);

    let newer = StoreKey::passphrase("newer passphrase");
    let error = store
        .change_key(&StoreKey::passphrase(""), fast())
        .unwrap_err();
    assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
    store
        .change_key(
            &newer,
            KdfParams {
                memory_kib: 16,
                ..fast()
            },
        )
        .unwrap();
    drop(store);
    let error = LocalStore::open(dir.path(), &new).unwrap_err();
    assert!(matches!(error, Error::WrongStoreKey), "{error:?}");
    let store = LocalStore::open(dir.path(), &newer).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), sample().1);
}

#[cfg(unix)]
#[test]
fn key_files_must_be_private_and_well_formed() {
    let keys = TempDir::new().unwrap();
    let path = keys.path().join("store.key");
    let secret_text = "0123456789abcdef".repeat(4);
    for open_mode in [0o644, 0o640, 0o604, 0o610] {
        write_key_file(&path, secret_text.as_bytes(), open_mode);
        let error = StoreKey::from_file(&path).unwrap_err();
        assert!(matches!(error, Error::KeyFilePermissions(_)), "{error:?}");
    }
    let secret = "s3cr3t-c0ntent";
    for contents in [
        secret.to_string(),
        format!("{secret}{}", "x".repeat(50)),
        format!("{}{secret}", "0".repeat(50)),
        format!("{}gg", &secret_text[..62]),
        format!("{secret_text}00"),
        "s".repeat(1000),
        String::new(),
    ] {
        write_key_file(&path, contents.as_bytes(), 0o600);
        let error = StoreKey::from_file(&path).unwrap_err();
        assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            !message.contains(secret) && !message.contains("gg"),
            "{message}"
        );
        assert!(!message.contains(&secret_text[..8]), "{message}");
    }
    std::fs::remove_file(&path).unwrap();
    let error = StoreKey::from_file(&path).unwrap_err();
    assert!(
        matches!(error, Error::StoreKey(ref m) if m.contains("store.key")),
        "{error:?}"
    );
    let error = StoreKey::from_file(keys.path()).unwrap_err();
    assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
}

#[test]
fn generate_file_never_overwrites() {
    let keys = TempDir::new().unwrap();
    let path = keys.path().join("store.key");
    StoreKey::generate_file(&path).unwrap();
    let contents = std::fs::read_to_string(&path).unwrap();
    assert_eq!(contents.len(), 65);
    assert!(contents.ends_with('\n'));
    assert!(
        contents[..64]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let error = StoreKey::generate_file(&path).unwrap_err();
    assert!(matches!(error, Error::StoreKey(_)), "{error:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
    let error = StoreKey::generate_file(&keys.path().join("no/such/dir")).unwrap_err();
    assert!(matches!(error, Error::StoreKey(_)), "{error:?}");

    // Two generated keys differ.
    let other = keys.path().join("other.key");
    StoreKey::generate_file(&other).unwrap();
    assert_ne!(std::fs::read_to_string(&other).unwrap(), contents);
}

#[test]
fn debug_shows_no_secret() {
    let key = StoreKey::from_bytes(RAW);
    let shown = format!("{key:?} {:?}", StoreKey::passphrase("hunter2"));
    assert!(!shown.contains("hunter2"));
    assert!(!shown.contains(&hex::encode(RAW)) && !shown.contains("90, 90"));
    assert!(!shown.contains("5a") && !shown.contains("5A"));

    let dir = TempDir::new().unwrap();
    let store = LocalStore::create(dir.path(), &key, fast()).unwrap();
    let mut batch = Batch::new();
    batch.put(1, b"name", b"very secret value");
    store.commit(&batch).unwrap();
    let dek = **store.keys.dek;
    let shown = format!("{store:?} {batch:?} {:?}", store.load_all().unwrap());
    for secret in [
        hex::encode(dek),
        hex::encode(RAW),
        format!("{:?}", &dek[..4]),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
    }
    assert!(!shown.contains("very secret value") && !shown.contains("118, 101, 114"));
    assert!(shown.contains("17 bytes redacted"), "{shown}");
}

#[test]
fn an_in_memory_store_works() {
    let store = LocalStore::in_memory().unwrap();
    assert!(store.load_all().unwrap().is_empty());
    let (batch, expected) = sample();
    store.commit(&batch).unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), expected);
    store
        .change_key(&StoreKey::from_bytes(RAW), fast())
        .unwrap();
    assert_eq!(sorted(store.load_all().unwrap()), expected);
    assert!(format!("{store:?}").contains("in-memory"));
}
