//! What only the durable store has: reopening, group commit, closing, schema versions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

use super::*;

// ---- RedbStore only -----------------------------------------------------------------------

/// Records every commit; optionally sleeps in it (holding the writer, so that what is sent
/// meanwhile queues into the next batch).
#[derive(Default)]
struct Commits {
    log: Mutex<Vec<usize>>,
    hold: Mutex<Option<Duration>>,
}

impl Commits {
    fn observer(self: &Arc<Self>) -> CommitObserver {
        let commits = self.clone();
        Arc::new(move |info: CommitInfo| {
            commits.log.lock().unwrap().push(info.operations);
            let hold = *commits.hold.lock().unwrap();
            if let Some(hold) = hold {
                std::thread::sleep(hold);
            }
        })
    }

    fn log(&self) -> Vec<usize> {
        self.log.lock().unwrap().clone()
    }
}

fn open_redb(dir: &TempDir, quotas: Quotas) -> RedbStore {
    RedbStore::open(dir.path(), redb_options(quotas)).unwrap()
}

#[tokio::test]
async fn redb_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = quotas(3, 1_000, 10);
    let mut alice = account();
    let identity = alice.identity().public().clone();
    let signed = alice.signed_prekey().clone();
    let keys = one_time(&mut alice, 3);
    {
        let store = open_redb(&dir, quotas);
        for n in [1, 2] {
            store.register(mailbox(n)).await.unwrap();
        }
        stored(&store, message(9, 1, &[1, 2], b"one", 10)).await;
        stored(&store, message(9, 2, &[1], b"two", 20)).await;
        stored(&store, message(9, 3, &[1], b"three", 30)).await;
        store.ack(mailbox(2), vec![1]).await.unwrap();
        store
            .put_prekeys(mailbox(1), identity.clone(), signed.clone(), keys.clone())
            .await
            .unwrap();
        let bundle = store.take_bundle(mailbox(1)).await.unwrap().unwrap().bundle;
        assert_eq!(bundle.one_time_prekey, Some(keys[0].clone()));
    }
    let store = open_redb(&dir, quotas);
    let pending = store.pending(mailbox(1), 0, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|m| m.delivery).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(pending[2].payload, b"three");
    assert_eq!(pending[2].received_at, 30);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats,
        StoreStats {
            mailboxes: 2,
            messages: 3,
            bytes: 11,
        }
    );
    // Dedup survived, and the quota counters too: mailbox 1 is full.
    let again = store.append(message(9, 2, &[2], b"two", 40)).await.unwrap();
    assert_eq!(again, Appended::Duplicate);
    let err = store
        .append(message(9, 4, &[1], b"4", 40))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::Messages,
            ..
        }
    ));
    // The delivery counter continues.
    assert_eq!(stored(&store, message(9, 5, &[2], b"5", 40)).await, vec![2]);
    store.ack(mailbox(1), vec![1]).await.unwrap();
    assert_eq!(stored(&store, message(9, 6, &[1], b"6", 40)).await, vec![4]);
    // The prekey pool continues where it was.
    assert_eq!(store.prekey_count(mailbox(1)).await.unwrap(), 2);
    let bundle = store.take_bundle(mailbox(1)).await.unwrap().unwrap().bundle;
    assert_eq!(bundle.identity, identity);
    assert_eq!(bundle.signed_prekey, signed);
    assert_eq!(bundle.one_time_prekey, Some(keys[1].clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_concurrent_appends_are_batched_and_durable() {
    const TASKS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(Commits::default());
    let options = RedbOptions {
        observer: Some(commits.observer()),
        ..RedbOptions::default()
    };
    let store = Arc::new(RedbStore::open(dir.path(), options).unwrap());
    for n in 1..=4 {
        store.register(mailbox(n)).await.unwrap();
    }
    let registers = commits.log().iter().sum::<usize>();
    assert_eq!(registers, 4);
    // Hold each commit a little, as a slow disk would: requests pile up meanwhile.
    *commits.hold.lock().unwrap() = Some(Duration::from_millis(5));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let to = (i % 4) as u8 + 1;
                let mut m = message(9, 0, &[to], &i.to_be_bytes(), 10);
                m.id = MessageId((i as u128).to_be_bytes());
                (to, stored(&*store, m).await[0])
            })
        })
        .collect();
    let mut per_mailbox = vec![BTreeSet::new(); 5];
    for task in tasks {
        let (to, delivery) = task.await.unwrap();
        assert!(per_mailbox[usize::from(to)].insert(delivery));
    }
    for set in &per_mailbox[1..] {
        assert_eq!(
            set.iter().copied().collect::<Vec<_>>(),
            (1..=50).collect::<Vec<u64>>()
        );
    }
    let log = commits.log();
    let appends = &log[4..];
    assert_eq!(appends.iter().sum::<usize>(), TASKS);
    assert!(
        appends.len() < TASKS,
        "no batching: {} commits",
        appends.len()
    );
    assert!(appends.iter().any(|&n| n > 1), "{appends:?}");
    drop(store);
    let store = open_redb(&dir, Quotas::default());
    assert_eq!(store.stats().await.unwrap().messages, TASKS as u64);
    for n in 1..=4 {
        assert_eq!(deliveries(&store, mailbox(n)).await.len(), 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_refused_op_does_not_affect_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(Commits::default());
    let options = RedbOptions {
        quotas: quotas(1, 1_000, 10),
        observer: Some(commits.observer()),
        ..RedbOptions::default()
    };
    let store = Arc::new(RedbStore::open(dir.path(), options).unwrap());
    for n in [1, 2, 3] {
        store.register(mailbox(n)).await.unwrap();
    }
    stored(&*store, message(9, 1, &[2], b"fill", 10)).await;
    // Hold the writer in the commit of a blocker while the batch under test queues up.
    *commits.hold.lock().unwrap() = Some(Duration::from_millis(300));
    let blocker = tokio::spawn({
        let store = store.clone();
        async move { store.register(mailbox(4)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    *commits.hold.lock().unwrap() = None;
    let (a, unknown, over_quota, b, duplicate) = tokio::join!(
        store.append(message(9, 2, &[1], b"a", 10)),
        store.append(message(9, 3, &[7], b"x", 10)),
        store.append(message(9, 4, &[2], b"y", 10)),
        store.append(message(8, 5, &[3], b"b", 10)),
        store.append(message(9, 2, &[3], b"a again", 10)),
    );
    blocker.await.unwrap().unwrap();
    assert_eq!(a.unwrap(), Appended::Stored(vec![1]));
    assert!(matches!(unknown.unwrap_err(), Error::UnknownMailbox(m) if m == mailbox(7)));
    assert!(matches!(
        over_quota.unwrap_err(),
        Error::QuotaExceeded {
            kind: QuotaKind::Messages,
            ..
        }
    ));
    assert_eq!(b.unwrap(), Appended::Stored(vec![1]));
    assert_eq!(duplicate.unwrap(), Appended::Duplicate);
    assert_eq!(commits.log().last(), Some(&5), "{:?}", commits.log());
    assert_eq!(deliveries(&*store, mailbox(1)).await, vec![1]);
    assert_eq!(deliveries(&*store, mailbox(3)).await, vec![1]);
    assert_eq!(store.stats().await.unwrap().messages, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_batch_sees_its_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(Commits::default());
    let options = RedbOptions {
        observer: Some(commits.observer()),
        ..RedbOptions::default()
    };
    let store = Arc::new(RedbStore::open(dir.path(), options).unwrap());
    store.register(mailbox(1)).await.unwrap();
    *commits.hold.lock().unwrap() = Some(Duration::from_millis(300));
    let blocker = tokio::spawn({
        let store = store.clone();
        async move { store.register(mailbox(9)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    *commits.hold.lock().unwrap() = None;
    // Queued while the writer is held: one batch, in which the second append sees the first
    // (consecutive delivery ids) and the repeat of the first is a duplicate.
    let (first, second, again, flushed) = tokio::join!(
        store.append(message(9, 1, &[1], b"a", 10)),
        store.append(message(9, 2, &[1], b"b", 10)),
        store.append(message(9, 1, &[1], b"a", 10)),
        store.flush(),
    );
    blocker.await.unwrap().unwrap();
    flushed.unwrap();
    let mut outcomes = vec![first.unwrap(), second.unwrap(), again.unwrap()];
    outcomes.sort_by_key(|outcome| format!("{outcome:?}"));
    assert_eq!(
        outcomes,
        vec![
            Appended::Duplicate,
            Appended::Stored(vec![1]),
            Appended::Stored(vec![2])
        ]
    );
    assert_eq!(commits.log(), vec![1, 1, 3]);
}

#[tokio::test]
async fn redb_closed_store_refuses_and_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_redb(&dir, Quotas::default());
    store.register(mailbox(1)).await.unwrap();
    let second = RedbStore::open(dir.path(), RedbOptions::default()).unwrap_err();
    let text = second.to_string();
    assert!(
        text.contains("relay.redb") && text.contains("in use"),
        "{text}"
    );
    store.close().await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(
        store.register(mailbox(2)).await,
        Err(Error::StoreClosed)
    ));
    assert!(matches!(
        store.pending(mailbox(1), 0, 1).await,
        Err(Error::StoreClosed)
    ));
    assert!(matches!(store.stats().await, Err(Error::StoreClosed)));
    assert!(matches!(store.flush().await, Err(Error::StoreClosed)));
    let reopened = open_redb(&dir, Quotas::default());
    assert_eq!(reopened.stats().await.unwrap().mailboxes, 1);
}

#[tokio::test]
async fn redb_refuses_an_unknown_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_redb(&dir, Quotas::default()));
    let path = dir.path().join(crate::store::redb::FILE_NAME);
    {
        use ::redb::ReadableTable as _;
        let db = ::redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(crate::store::redb::META).unwrap();
            let version = meta
                .get(crate::store::redb::SCHEMA_KEY)
                .unwrap()
                .unwrap()
                .value();
            assert_eq!(version, crate::store::redb::SCHEMA_VERSION);
            meta.insert(crate::store::redb::SCHEMA_KEY, 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = RedbStore::open(dir.path(), RedbOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Storage(_)));
    assert!(
        text.contains("schema version 99") && text.contains("relay.redb"),
        "{text}"
    );
}

#[tokio::test]
async fn redb_refuses_a_file_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(crate::store::redb::FILE_NAME), [0x42; 8192]).unwrap();
    let err = RedbStore::open(dir.path(), RedbOptions::default()).unwrap_err();
    assert!(err.to_string().contains("relay.redb"), "{err}");
}

#[tokio::test]
async fn redb_creates_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let store = RedbStore::open(&nested, RedbOptions::default()).unwrap();
    store.register(mailbox(1)).await.unwrap();
    assert!(nested.join(crate::store::redb::FILE_NAME).is_file());
    assert_eq!(store.path(), nested.join("relay.redb"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&nested).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "a new data directory is private: {mode:o}"
        );
    }
    let debug = format!("{:?}", RedbOptions::default());
    assert!(debug.contains("absent"), "{debug}");
}

#[tokio::test]
async fn redb_counts_commits_for_the_observer() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = RedbOptions {
        observer: Some(Arc::new(move |info: CommitInfo| {
            assert!(info.operations >= 1);
            counter.fetch_add(1, Ordering::SeqCst);
        })),
        ..RedbOptions::default()
    };
    assert!(format!("{options:?}").contains("present"));
    let store = RedbStore::open(dir.path(), options).unwrap();
    store.register(mailbox(1)).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a flush alone commits nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_close_keeps_every_accepted_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_redb(&dir, Quotas::default()));
    store.register(mailbox(1)).await.unwrap();
    let tasks: Vec<_> = (0..100u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append(message(9, i, &[1], &[i], 10)).await })
        })
        .collect();
    tokio::task::yield_now().await;
    store.close().await.unwrap();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Appended::Stored(_)) => accepted += 1,
            Err(Error::StoreClosed) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(store);
    let store = open_redb(&dir, Quotas::default());
    assert_eq!(deliveries(&store, mailbox(1)).await.len(), accepted);
    assert_eq!(
        deliveries(&store, mailbox(1)).await,
        (1..=accepted as u64).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn redb_expires_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbOptions {
        expiry_chunk: 2,
        ..RedbOptions::default()
    };
    let store = RedbStore::open(dir.path(), options).unwrap();
    store.register(mailbox(1)).await.unwrap();
    for id in 1..=5 {
        stored(&store, message(9, id, &[1], b"old", 10)).await;
    }
    stored(&store, message(9, 6, &[1], b"new", 500)).await;
    let mut rounds = Vec::new();
    loop {
        let expired = store.expire(100).await.unwrap();
        rounds.push((expired.messages, expired.dedup, expired.more));
        if !expired.more {
            break;
        }
    }
    assert_eq!(rounds, vec![(2, 2, true), (2, 2, true), (1, 1, false)]);
    assert_eq!(deliveries(&store, mailbox(1)).await, vec![6]);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.bytes), (1, 3));
}
