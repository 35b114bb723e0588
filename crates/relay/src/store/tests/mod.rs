//! One conformance suite for every [`Store`]: each case is an `async fn` generic over the store,
//! run against [`MemoryStore`] and [`RedbStore`] (see `conformance!`), then tests of what only
//! the durable store has (in `durable.rs`): reopening, group commit, closing, schema versions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use sealwire_core::{Account, IdentityKeyPair, OneTimePrekey, Timestamp};
use sealwire_transport::frame::{MailboxId, MessageId};

use super::*;
use crate::error::{Error, QuotaKind};

// ---- helpers ------------------------------------------------------------------------------

fn mailbox(n: u8) -> MailboxId {
    MailboxId([n; 32])
}

fn message_id(n: u8) -> MessageId {
    MessageId([n; 16])
}

fn message(from: u8, id: u8, to: &[u8], payload: &[u8], received_at: u64) -> NewMessage {
    NewMessage {
        from: mailbox(from),
        id: message_id(id),
        to: to.iter().map(|&n| mailbox(n)).collect(),
        payload: payload.to_vec(),
        received_at,
    }
}

fn quotas(max_messages: u64, max_bytes: u64, max_one_time_prekeys: u32) -> Quotas {
    Quotas {
        max_messages,
        max_bytes,
        max_one_time_prekeys,
        ..Quotas::default()
    }
}

fn account() -> Account {
    let mut rng = rand::rng();
    Account::new(
        IdentityKeyPair::generate(&mut rng),
        &mut rng,
        Timestamp::from_unix_secs(1_000),
    )
}

fn one_time(account: &mut Account, count: usize) -> Vec<OneTimePrekey> {
    account
        .generate_one_time_prekeys(count, &mut rand::rng())
        .unwrap()
}

async fn stored(store: &impl Store, message: NewMessage) -> Vec<u64> {
    match store.append(message).await.unwrap() {
        Appended::Stored(deliveries) => deliveries,
        Appended::Duplicate => panic!("unexpected duplicate"),
    }
}

async fn deliveries(store: &impl Store, mailbox: MailboxId) -> Vec<u64> {
    let pending = store.pending(mailbox, 0, usize::MAX).await.unwrap();
    pending.iter().map(|m| m.delivery).collect()
}

fn redb_options(quotas: Quotas) -> RedbOptions {
    RedbOptions {
        quotas,
        ..RedbOptions::default()
    }
}

/// Runs each case against both stores, each in its own `#[tokio::test]`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::MemoryStore::new).await;
                }
            )*
        }
        mod redb {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$case(|quotas| {
                        super::RedbStore::open(dir.path(), super::redb_options(quotas)).unwrap()
                    })
                    .await;
                }
            )*
        }
    };
}

conformance!(
    unknown_recipient_is_refused,
    deliveries_increase_and_pending_pages,
    duplicate_is_stored_once,
    ack_removes_only_own_deliveries,
    multi_recipient_message_quota_is_atomic,
    multi_recipient_byte_quota_is_atomic,
    expiry_removes_messages_and_dedup,
    prekeys_upload_and_take_in_order,
    signed_prekey_is_replaced,
    prekey_pool_quota,
    no_bundle_without_upload,
    stats_count_mailboxes_messages_bytes,
    store_wide_byte_cap,
);

// ---- the conformance cases ----------------------------------------------------------------

async fn unknown_recipient_is_refused<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    store.register(mailbox(1)).await.unwrap();
    let err = store
        .append(message(9, 1, &[1, 2], b"hello", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownMailbox(m) if m == mailbox(2)),
        "{err:?}"
    );
    assert!(deliveries(&store, mailbox(1)).await.is_empty());
    assert_eq!(store.stats().await.unwrap().messages, 0);
    // Nothing was recorded for dedup either: the retry is stored once the recipient exists.
    store.register(mailbox(2)).await.unwrap();
    let appended = store.append(message(9, 1, &[1, 2], b"hello", 10)).await;
    assert_eq!(appended.unwrap(), Appended::Stored(vec![1, 1]));
}

async fn deliveries_increase_and_pending_pages<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    store.register(mailbox(1)).await.unwrap();
    store.register(mailbox(2)).await.unwrap();
    let (mut next1, mut next2) = (0, 0);
    for i in 1..=5u8 {
        next1 += 1;
        let only_1 = message(9, i, &[1], &[i; 3], u64::from(i));
        assert_eq!(stored(&store, only_1).await, vec![next1]);
        if i % 2 == 0 {
            (next1, next2) = (next1 + 1, next2 + 1);
            let to_both = message(8, i, &[2, 1], b"both", 50);
            assert_eq!(stored(&store, to_both).await, vec![next2, next1]);
        }
    }
    // Mailbox 1: 1, 2 from 9, 3 from 8, 4, 5 from 9, 6 from 8, 7 from 9.
    let all = store.pending(mailbox(1), 0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.delivery).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    let first = &all[0];
    assert_eq!(
        (
            first.from,
            first.id,
            first.payload.as_slice(),
            first.received_at
        ),
        (mailbox(9), message_id(1), &[1u8; 3][..], 1)
    );
    assert_eq!(all[2].from, mailbox(8));
    assert_eq!(all[2].payload, b"both");
    let page = store.pending(mailbox(1), 2, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.delivery).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(store.pending(mailbox(1), 7, 10).await.unwrap().is_empty());
    assert!(store.pending(mailbox(1), 0, 0).await.unwrap().is_empty());
    assert_eq!(deliveries(&store, mailbox(2)).await, vec![1, 2]);
    assert!(store.pending(mailbox(3), 0, 10).await.unwrap().is_empty());
    // Acknowledged ids are not reused.
    store.ack(mailbox(2), vec![1, 2]).await.unwrap();
    assert_eq!(
        stored(&store, message(9, 99, &[2], b"x", 60)).await,
        vec![3]
    );
}

async fn duplicate_is_stored_once<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    store.register(mailbox(1)).await.unwrap();
    assert_eq!(stored(&store, message(9, 1, &[1], b"a", 10)).await, vec![1]);
    let again = store.append(message(9, 1, &[1], b"a", 11)).await.unwrap();
    assert_eq!(again, Appended::Duplicate);
    assert_eq!(deliveries(&store, mailbox(1)).await, vec![1]);
    // Same id from another sender is another message.
    assert_eq!(stored(&store, message(8, 1, &[1], b"b", 12)).await, vec![2]);
    // Still a duplicate after the recipient acknowledged it.
    assert_eq!(store.ack(mailbox(1), vec![1]).await.unwrap(), 1);
    let again = store.append(message(9, 1, &[1], b"a", 13)).await.unwrap();
    assert_eq!(again, Appended::Duplicate);
    assert_eq!(deliveries(&store, mailbox(1)).await, vec![2]);
    assert_eq!(store.stats().await.unwrap().messages, 1);
}

async fn ack_removes_only_own_deliveries<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    for n in [1, 2] {
        store.register(mailbox(n)).await.unwrap();
    }
    stored(&store, message(9, 1, &[1, 2], b"12345", 10)).await;
    stored(&store, message(9, 2, &[1, 2], b"678", 10)).await;
    assert_eq!(store.ack(mailbox(1), vec![1, 99, 1]).await.unwrap(), 1);
    assert_eq!(deliveries(&store, mailbox(1)).await, vec![2]);
    assert_eq!(deliveries(&store, mailbox(2)).await, vec![1, 2]);
    assert_eq!(store.ack(mailbox(1), vec![1]).await.unwrap(), 0);
    assert_eq!(store.ack(mailbox(7), vec![1, 2]).await.unwrap(), 0);
    assert_eq!(store.ack(mailbox(2), vec![]).await.unwrap(), 0);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.bytes), (3, 3 + 5 + 3));
    assert_eq!(store.ack(mailbox(2), vec![2, 1]).await.unwrap(), 2);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.bytes), (1, 3));
}

async fn multi_recipient_message_quota_is_atomic<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(quotas(2, 1_000, 10));
    for n in [1, 2] {
        store.register(mailbox(n)).await.unwrap();
    }
    stored(&store, message(9, 1, &[1], b"a", 10)).await;
    stored(&store, message(9, 2, &[1], b"b", 10)).await;
    let before = store.stats().await.unwrap();
    let err = store
        .append(message(9, 3, &[2, 1], b"c", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::QuotaExceeded { mailbox: m, kind: QuotaKind::Messages } if m == mailbox(1)),
        "{err:?}"
    );
    assert!(deliveries(&store, mailbox(2)).await.is_empty());
    assert_eq!(deliveries(&store, mailbox(1)).await, vec![1, 2]);
    assert_eq!(store.stats().await.unwrap(), before);
    // Not recorded for dedup: once there is room, the retry is stored for both.
    store.ack(mailbox(1), vec![1]).await.unwrap();
    let appended = store.append(message(9, 3, &[2, 1], b"c", 10)).await;
    assert_eq!(appended.unwrap(), Appended::Stored(vec![1, 3]));
}

async fn multi_recipient_byte_quota_is_atomic<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(quotas(100, 10, 10));
    for n in [1, 2] {
        store.register(mailbox(n)).await.unwrap();
    }
    stored(&store, message(9, 1, &[1], b"12345678", 10)).await;
    let err = store
        .append(message(9, 2, &[2, 1], b"abc", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::QuotaExceeded { mailbox: m, kind: QuotaKind::Bytes } if m == mailbox(1)),
        "{err:?}"
    );
    assert!(deliveries(&store, mailbox(2)).await.is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.bytes), (1, 8));
    // Exactly at the limit is allowed; one byte over is not.
    assert_eq!(
        stored(&store, message(9, 3, &[2, 1], b"ab", 10)).await,
        vec![1, 2]
    );
    let err = store
        .append(message(9, 4, &[1], b"x", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                kind: QuotaKind::Bytes,
                ..
            }
        ),
        "{err:?}"
    );
    // A payload larger than the whole quota, to an empty mailbox.
    store.register(mailbox(3)).await.unwrap();
    let err = store
        .append(message(9, 5, &[3], &[0; 11], 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                kind: QuotaKind::Bytes,
                ..
            }
        ),
        "{err:?}"
    );
}

async fn expiry_removes_messages_and_dedup<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(quotas(3, 1_000, 10));
    for n in [1, 2] {
        store.register(mailbox(n)).await.unwrap();
    }
    stored(&store, message(9, 1, &[1, 2], b"old", 100)).await;
    stored(&store, message(9, 2, &[1], b"older", 90)).await;
    stored(&store, message(9, 3, &[1], b"new!", 200)).await;
    // Mailbox 1 is full.
    let err = store
        .append(message(9, 4, &[1], b"x", 210))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::Messages,
            ..
        }
    ));
    assert_eq!(store.expire(90).await.unwrap(), Expired::default());
    let expired = store.expire(150).await.unwrap();
    assert_eq!(
        expired,
        Expired {
            messages: 3,
            bytes: 3 + 3 + 5,
            dedup: 2,
            more: false,
        }
    );
    assert_eq!(deliveries(&store, mailbox(1)).await, vec![3]);
    assert!(deliveries(&store, mailbox(2)).await.is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.mailboxes, stats.messages, stats.bytes), (2, 1, 4));
    // The dedup record is gone: the same id is stored again, with a fresh delivery id.
    assert_eq!(
        stored(&store, message(9, 1, &[1], b"old", 300)).await,
        vec![4]
    );
    // The quota was freed.
    assert_eq!(
        stored(&store, message(9, 4, &[1], b"x", 300)).await,
        vec![5]
    );
    // Not yet expired: still a duplicate.
    let again = store
        .append(message(9, 3, &[1], b"new!", 300))
        .await
        .unwrap();
    assert_eq!(again, Appended::Duplicate);
    assert_eq!(store.expire(150).await.unwrap(), Expired::default());
    let expired = store.expire(u64::MAX).await.unwrap();
    assert_eq!((expired.messages, expired.dedup), (3, 3));
    assert_eq!(store.stats().await.unwrap().messages, 0);
}

async fn prekeys_upload_and_take_in_order<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    let mut alice = account();
    let me = mailbox(1);
    let identity = alice.identity().public().clone();
    let first = one_time(&mut alice, 3);
    let signed = alice.signed_prekey().clone();
    let count = store
        .put_prekeys(me, identity.clone(), signed.clone(), first.clone())
        .await
        .unwrap();
    assert_eq!(count, 3);
    // Ids already in the pool, and repeated ids within one upload, are ignored.
    let second = one_time(&mut alice, 2);
    let mut upload = vec![first[1].clone(), second[0].clone(), second[1].clone()];
    upload.push(OneTimePrekey {
        id: second[0].id,
        public_key: [0xEE; 32],
    });
    let count = store
        .put_prekeys(me, identity.clone(), signed.clone(), upload)
        .await
        .unwrap();
    assert_eq!(count, 5);
    assert_eq!(store.prekey_count(me).await.unwrap(), 5);
    let expected: Vec<OneTimePrekey> = first.iter().chain(&second).cloned().collect();
    for (taken, key) in expected.iter().enumerate() {
        let taken_bundle = store.take_bundle(me).await.unwrap().unwrap();
        assert_eq!(taken_bundle.one_time_left as usize, 4 - taken);
        let bundle = taken_bundle.bundle;
        assert_eq!(bundle.identity, identity);
        assert_eq!(bundle.signed_prekey, signed);
        assert_eq!(bundle.one_time_prekey.as_ref(), Some(key));
        assert_eq!(store.prekey_count(me).await.unwrap() as usize, 4 - taken);
    }
    for _ in 0..2 {
        let bundle = store.take_bundle(me).await.unwrap().unwrap().bundle;
        assert_eq!(bundle.one_time_prekey, None);
        assert_eq!(bundle.signed_prekey, signed);
    }
    // A handed-out key is never accepted again: a resent upload (7.4) must not put it back.
    let third = one_time(&mut alice, 1);
    let count = store
        .put_prekeys(
            me,
            identity,
            signed,
            vec![first[0].clone(), second[1].clone(), third[0].clone()],
        )
        .await
        .unwrap();
    assert_eq!(count, 1);
    let bundle = store.take_bundle(me).await.unwrap().unwrap().bundle;
    assert_eq!(bundle.one_time_prekey.as_ref(), Some(&third[0]));
    assert_eq!(
        store
            .take_bundle(me)
            .await
            .unwrap()
            .unwrap()
            .bundle
            .one_time_prekey,
        None
    );
}

async fn signed_prekey_is_replaced<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    let mut alice = account();
    let me = mailbox(1);
    let identity = alice.identity().public().clone();
    let keys = one_time(&mut alice, 2);
    let old = alice.signed_prekey().clone();
    store
        .put_prekeys(me, identity.clone(), old.clone(), keys.clone())
        .await
        .unwrap();
    let new = alice.rotate_signed_prekey(&mut rand::rng(), Timestamp::from_unix_secs(2_000));
    assert_ne!(new, old);
    let count = store
        .put_prekeys(me, identity.clone(), new.clone(), vec![])
        .await
        .unwrap();
    assert_eq!(count, 2);
    let bundle = store.take_bundle(me).await.unwrap().unwrap().bundle;
    assert_eq!(bundle.signed_prekey, new);
    assert_eq!(bundle.one_time_prekey, Some(keys[0].clone()));
}

async fn prekey_pool_quota<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(quotas(100, 1_000, 3));
    let mut alice = account();
    let me = mailbox(1);
    let identity = alice.identity().public().clone();
    let old = alice.signed_prekey().clone();
    let keys = one_time(&mut alice, 2);
    store
        .put_prekeys(me, identity.clone(), old.clone(), keys.clone())
        .await
        .unwrap();
    let new = alice.rotate_signed_prekey(&mut rand::rng(), Timestamp::from_unix_secs(2_000));
    let err = store
        .put_prekeys(me, identity.clone(), new.clone(), one_time(&mut alice, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::QuotaExceeded { mailbox: m, kind: QuotaKind::OneTimePrekeys } if m == me),
        "{err:?}"
    );
    // Refused as a whole: the signed prekey was not replaced either.
    assert_eq!(store.prekey_count(me).await.unwrap(), 2);
    // Ignored ids do not count against the quota.
    let mut upload = keys.clone();
    upload.extend(one_time(&mut alice, 1));
    let count = store
        .put_prekeys(me, identity.clone(), new.clone(), upload)
        .await
        .unwrap();
    assert_eq!(count, 3);
    let bundle = store.take_bundle(me).await.unwrap().unwrap().bundle;
    assert_eq!(bundle.signed_prekey, new);
    assert_eq!(bundle.one_time_prekey, Some(keys[0].clone()));
    // The quota is on the pool as it is: after a take there is room for one more.
    let count = store
        .put_prekeys(me, identity, new, one_time(&mut alice, 1))
        .await
        .unwrap();
    assert_eq!(count, 3);
    let _ = old;
}

async fn no_bundle_without_upload<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    assert_eq!(store.take_bundle(mailbox(1)).await.unwrap(), None);
    store.register(mailbox(1)).await.unwrap();
    assert_eq!(store.take_bundle(mailbox(1)).await.unwrap(), None);
    assert_eq!(store.prekey_count(mailbox(1)).await.unwrap(), 0);
    assert_eq!(store.prekey_count(mailbox(2)).await.unwrap(), 0);
    // A bundle only for the mailbox that uploaded.
    let alice = account();
    store
        .put_prekeys(
            mailbox(1),
            alice.identity().public().clone(),
            alice.signed_prekey().clone(),
            vec![],
        )
        .await
        .unwrap();
    assert!(store.take_bundle(mailbox(1)).await.unwrap().is_some());
    assert_eq!(store.take_bundle(mailbox(2)).await.unwrap(), None);
}

async fn stats_count_mailboxes_messages_bytes<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas::default());
    assert_eq!(store.stats().await.unwrap(), StoreStats::default());
    for n in [1, 2, 3, 1, 2] {
        store.register(mailbox(n)).await.unwrap();
    }
    stored(&store, message(9, 1, &[1, 2, 3], b"1234", 10)).await;
    stored(&store, message(9, 2, &[2], b"12", 10)).await;
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats,
        StoreStats {
            mailboxes: 3,
            messages: 4,
            bytes: 14,
        }
    );
    store.ack(mailbox(2), vec![1]).await.unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.bytes), (3, 10));
    // Uploading prekeys makes a mailbox known.
    let alice = account();
    store
        .put_prekeys(
            mailbox(4),
            alice.identity().public().clone(),
            alice.signed_prekey().clone(),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.stats().await.unwrap().mailboxes, 4);
    stored(&store, message(9, 3, &[4], b"hi", 10)).await;
    store.flush().await.unwrap();
}

mod differential;
mod durable;

async fn store_wide_byte_cap<S: Store>(open: impl FnOnce(Quotas) -> S) {
    let store = open(Quotas {
        max_total_bytes: 100,
        ..Quotas::default()
    });
    for n in 1..=3 {
        store.register(mailbox(n)).await.unwrap();
    }
    // 2 recipients × 40 bytes = 80: fits; 2 × 40 more would be 160: refused, nothing stored.
    stored(&store, message(9, 1, &[1, 2], &[0; 40], 10)).await;
    let refused = store.append(message(9, 2, &[2, 3], &[0; 40], 10)).await;
    assert!(matches!(refused, Err(Error::StoreFull)), "{refused:?}");
    assert_eq!(
        refused.unwrap_err().code(),
        sealwire_transport::code::ErrorCode::Unavailable
    );
    assert_eq!(store.stats().await.unwrap().bytes, 80);
    // Acknowledged bytes free space again.
    let delivered = deliveries(&store, mailbox(1)).await;
    store.ack(mailbox(1), delivered).await.unwrap();
    stored(&store, message(9, 3, &[3], &[0; 60], 10)).await;
    assert_eq!(store.stats().await.unwrap().bytes, 100);
}
