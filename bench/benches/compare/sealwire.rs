//! sealwire's side of the comparison, through the public API of `sealwire-core`. The fixtures
//! are those of `bench/benches/core.rs` and `group.rs` (`sealwire_bench::fixtures`): the same
//! steady-state configurations and the same session and group establishment.

use std::hint::black_box;

use criterion::{BatchSize, Throughput};
use sealwire_bench::fixtures::{
    NOW, established, group_fixture, group_open_routine, seeded, setup_full_routine, steady_config,
};

use crate::{Cmp, plaintext};

/// `cmp/sealwire_seal`: one message on an established session, in its current epoch.
pub(crate) fn seal(group: &mut Cmp<'_>) {
    let mut rng = seeded(101);
    let (mut alice, _bob) = established(&steady_config(), &mut rng);
    let epoch = alice.sending_epoch();
    let message = plaintext();
    group.bench_function("sealwire_seal", |b| {
        b.iter(|| alice.seal(black_box(&message), &mut rng, NOW).unwrap());
    });
    assert_eq!(
        alice.sending_epoch(),
        epoch,
        "an epoch changed while measuring"
    );
}

/// `cmp/sealwire_open`: Bob opens fresh envelopes sealed (untimed) by Alice's live session,
/// in order: every measured open is an in-order, steady-state message.
pub(crate) fn open(group: &mut Cmp<'_>) {
    let mut rng = seeded(102);
    let (mut alice, mut bob) = established(&steady_config(), &mut rng);
    let epoch = bob.peer_epoch();
    let message = plaintext();
    group.bench_function("sealwire_open", |b| {
        b.iter_batched(
            || alice.seal(&message, &mut rng, NOW).unwrap(),
            |envelope| bob.open(black_box(&envelope), NOW).unwrap().len(),
            BatchSize::SmallInput,
        );
    });
    assert_eq!(bob.peer_epoch(), epoch, "an epoch changed while measuring");
    assert_eq!(
        bob.skipped_key_count(),
        0,
        "messages were opened out of order"
    );
}

/// The group of the group comparisons: 3 members (admin, receiver, one other member); the
/// receiver holds the admin's sender key, so the admin's next seals are steady-state messages.
const GROUP_MEMBERS: usize = 3;

/// `cmp/sealwire_group_seal`: one steady-state group message (signed; no sender-key message).
pub(crate) fn group_seal(group: &mut Cmp<'_>) {
    let mut rng = seeded(103);
    let mut f = group_fixture(GROUP_MEMBERS, &mut rng);
    let message = plaintext();
    group.bench_function("sealwire_group_seal", |b| {
        b.iter(|| {
            let sealed = f.admin.seal(black_box(&message), &mut rng, NOW).unwrap();
            debug_assert!(sealed.sender_key.is_none());
            sealed
        });
    });
}

/// `cmp/sealwire_group_open`: the receiver opens fresh envelopes, sealed (untimed) by the
/// admin's live group, one at a time and in order.
pub(crate) fn group_open(group: &mut Cmp<'_>) {
    let mut rng = seeded(104);
    let mut f = group_fixture(GROUP_MEMBERS, &mut rng);
    let message = plaintext();
    let epoch = f.receiver.epoch();
    group.bench_function("sealwire_group_open", |b| {
        group_open_routine(b, &mut f, &message, &mut rng);
    });
    assert_eq!(f.receiver.epoch(), epoch);
}

/// Messages of `cmp/sealwire_group_open_batch`: what a client catching up, or under load, gets
/// from one relay read.
const BATCH: usize = 64;

/// `cmp/sealwire_group_open_batch`: `BATCH` messages from one sender, sealed in order in the
/// untimed setup, opened with one `Group::open_batch` call (their signatures checked by one
/// batch equation). Registered last, with element throughput: the report divides by `BATCH`.
/// Megolm has no batch API: it is compared with `cmp/megolm_decrypt`, one message.
pub(crate) fn group_open_batch(group: &mut Cmp<'_>) {
    let mut rng = seeded(105);
    let mut f = group_fixture(GROUP_MEMBERS, &mut rng);
    let message = plaintext();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("sealwire_group_open_batch", |b| {
        b.iter_batched(
            || {
                (0..BATCH)
                    .map(|_| f.admin.seal(&message, &mut rng, NOW).unwrap().envelope)
                    .collect::<Vec<_>>()
            },
            |envelopes| {
                let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
                let opened = f.receiver.open_batch(black_box(&refs), NOW);
                assert!(opened.iter().all(Result::is_ok));
                opened.len()
            },
            BatchSize::SmallInput,
        );
    });
}

/// `cmp/sealwire_setup`: bundle to first message opened, as `setup/full` in `benches/core.rs`. Every
/// iteration uses a fresh account and identity, generated in the untimed setup.
pub(crate) fn setup(group: &mut Cmp<'_>) {
    let message = plaintext();
    let mut setup_rng = seeded(105);
    let mut run_rng = seeded(106);
    group.bench_function("sealwire_setup", |b| {
        setup_full_routine(b, &message, &mut setup_rng, &mut run_rng);
    });
}
