//! Differential test: random sequences of operations applied to [`MemoryStore`] and
//! [`RedbStore`] give the same answers, step by step (the memory store is the model).

use proptest::prelude::*;
use sealwire_core::{OneTimePrekey, PublicIdentity, SignedPrekey};

use super::*;

/// One operation, over 4 mailboxes, 3 senders and 6 message ids.
#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Append {
        from: u8,
        id: u8,
        to: Vec<u8>,
        size: usize,
        at: u64,
    },
    Pending {
        mailbox: u8,
        after: u64,
        limit: usize,
    },
    Ack(u8, Vec<u64>),
    Expire(u64),
    PutPrekeys(u8, Vec<u32>),
    TakeBundle(u8),
    PrekeyCount(u8),
    Stats,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..=4u8).prop_map(Op::Register),
        (
            10..=12u8,
            0..6u8,
            proptest::sample::subsequence(vec![1u8, 2, 3, 4], 1..=3),
            0..40usize,
            0..100u64
        )
            .prop_map(|(from, id, to, size, at)| Op::Append {
                from,
                id,
                to,
                size,
                at
            }),
        (1..=4u8, 0..8u64, 1..4usize).prop_map(|(mailbox, after, limit)| Op::Pending {
            mailbox,
            after,
            limit
        }),
        (1..=4u8, proptest::collection::vec(0..8u64, 1..4)).prop_map(|(m, ids)| Op::Ack(m, ids)),
        (0..120u64).prop_map(Op::Expire),
        (1..=2u8, proptest::collection::vec(0..6u32, 0..4))
            .prop_map(|(m, ids)| Op::PutPrekeys(m, ids)),
        (1..=3u8).prop_map(Op::TakeBundle),
        (1..=3u8).prop_map(Op::PrekeyCount),
        Just(Op::Stats),
    ]
}

/// Outcomes compared between the stores (errors by their rendering).
fn show<T: core::fmt::Debug>(result: &crate::Result<T>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(error) => format!("err {error}"),
    }
}

async fn apply(store: &impl Store, op: &Op, keys: &[(PublicIdentity, SignedPrekey)]) -> String {
    match op {
        Op::Register(m) => show(&store.register(mailbox(*m)).await),
        Op::Append {
            from,
            id,
            to,
            size,
            at,
        } => show(
            &store
                .append(message(*from, *id, to, &vec![0xAB; *size], *at))
                .await,
        ),
        Op::Pending {
            mailbox: m,
            after,
            limit,
        } => show(&store.pending(mailbox(*m), *after, *limit).await),
        Op::Ack(m, ids) => show(&store.ack(mailbox(*m), ids.clone()).await),
        Op::Expire(cutoff) => show(&store.expire(*cutoff).await),
        Op::PutPrekeys(m, ids) => {
            let (identity, signed) = keys[usize::from(*m) - 1].clone();
            let one_time = ids
                .iter()
                .map(|id| OneTimePrekey {
                    id: *id,
                    public_key: [*id as u8; 32],
                })
                .collect();
            show(
                &store
                    .put_prekeys(mailbox(*m), identity, signed, one_time)
                    .await,
            )
        }
        Op::TakeBundle(m) => show(&store.take_bundle(mailbox(*m)).await),
        Op::PrekeyCount(m) => show(&store.prekey_count(mailbox(*m)).await),
        Op::Stats => show(&store.stats().await),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_redb_stores_answer_alike(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            // Small quotas, so that refusals happen too.
            let quotas = Quotas {
                max_messages: 4,
                max_bytes: 80,
                max_one_time_prekeys: 3,
                max_total_bytes: 200,
            };
            let keys: Vec<_> = (0..2)
                .map(|_| {
                    let account = account();
                    (account.identity().public().clone(), account.signed_prekey().clone())
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let model = MemoryStore::new(quotas);
            let durable = RedbStore::open(dir.path(), redb_options(quotas)).unwrap();
            for (step, op) in ops.iter().enumerate() {
                let expected = apply(&model, op, &keys).await;
                let actual = apply(&durable, op, &keys).await;
                assert_eq!(actual, expected, "step {step}: {op:?}");
            }
        });
    }
}
