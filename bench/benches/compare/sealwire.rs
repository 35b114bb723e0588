//! sealwire's side of the comparison, through the public API of `sealwire-core`. The fixtures
//! follow `crates/core/benches/core.rs` and `group.rs`: the same steady-state configurations
//! and the same session and group establishment.

use std::hint::black_box;

use criterion::{BatchSize, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealwire_core::{
    Account, BundlePolicy, Change, Group, GroupConfig, IdentityKeyPair, MemberRole, PrekeyBundle,
    Session, SessionConfig, Timestamp,
};

use crate::{Cmp, plaintext};

/// A fixed time: rotation by age never triggers inside a benchmark.
const NOW: Timestamp = Timestamp::from_unix_secs(1_780_000_000);

fn seeded(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A session configuration that never rotates by message count.
fn steady_config() -> SessionConfig {
    let mut config = SessionConfig::default();
    config.rotate_after_messages = u32::MAX - 1;
    config
}

/// A group configuration whose rotation never becomes due inside a benchmark.
fn steady_group_config() -> GroupConfig {
    let mut config = GroupConfig::default();
    config.rotate_after_messages = u32::MAX;
    config.max_forward_jump = u32::MAX / 2;
    config
}

/// A fresh responder account with one one-time prekey, and its (not yet verified) bundle.
fn responder(rng: &mut ChaCha20Rng) -> (Account, PrekeyBundle) {
    let mut account = Account::new(IdentityKeyPair::generate(rng), rng, NOW);
    let opk = account.generate_one_time_prekeys(1, rng).unwrap()[0].id;
    let bundle = account.bundle(Some(opk)).unwrap();
    (account, bundle)
}

/// Alice (initiator) and Bob (responder) in steady state: Alice's initial message accepted, Bob
/// replied, Alice answered in a new epoch (a turn) and Bob opened it. From here on Alice's
/// seals stay in her current epoch and Bob opens them in order.
fn established(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let config = steady_config();
    let (mut account, bundle) = responder(rng);
    let mut account_config = account.config().clone();
    account_config.session = config.clone();
    account.set_config(account_config).unwrap();
    let verified = bundle.verify(&BundlePolicy::default(), NOW).unwrap();
    let alice_identity = IdentityKeyPair::generate(rng);
    let mut alice = Session::initiate(&alice_identity, &verified, config, rng, NOW).unwrap();
    let first = alice.seal(b"hello", rng, NOW).unwrap();
    let mut bob = account.accept(&first, NOW).unwrap().session;
    let reply = bob.seal(b"hi", rng, NOW).unwrap();
    alice.open(&reply, NOW).unwrap();
    let turn = alice.seal(b"turn", rng, NOW).unwrap();
    bob.open(&turn, NOW).unwrap();
    assert!(alice.is_established() && bob.is_established());
    (alice, bob)
}

/// `cmp/sealwire_seal`: one message on an established session, in its current epoch.
pub(crate) fn seal(group: &mut Cmp<'_>) {
    let mut rng = seeded(101);
    let (mut alice, _bob) = established(&mut rng);
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
    let (mut alice, mut bob) = established(&mut rng);
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

/// A 3-member group (admin, receiver, one other member); the receiver holds the admin's sender
/// key, so the admin's next seals are steady-state messages.
struct GroupFixture {
    admin: Group,
    receiver: Group,
}

fn group_fixture(rng: &mut ChaCha20Rng) -> GroupFixture {
    let admin_identity = IdentityKeyPair::generate(rng);
    let receiver_identity = IdentityKeyPair::generate(rng);
    let other = IdentityKeyPair::generate(rng);
    let mut admin = Group::create(&admin_identity, steady_group_config(), rng, NOW).unwrap();
    let add_other = [Change::Add(other.public().clone(), MemberRole::Member)];
    admin.commit(&admin_identity, &add_other, NOW).unwrap();
    let add_receiver = [Change::Add(
        receiver_identity.public().clone(),
        MemberRole::Member,
    )];
    let out = admin.commit(&admin_identity, &add_receiver, NOW).unwrap();
    let mut receiver = Group::join(
        receiver_identity.public(),
        admin_identity.public(),
        &out.welcome.unwrap(),
        steady_group_config(),
        NOW,
    )
    .unwrap();
    assert_eq!(admin.members().len(), 3);
    // The admin's first message of the epoch draws its sender key; hand it to the receiver.
    let sealed = admin.seal(b"first", rng, NOW).unwrap();
    let key = sealed.sender_key.unwrap();
    receiver
        .receive(admin_identity.public(), key.message.expose_secret(), NOW)
        .unwrap();
    receiver.open(&sealed.envelope, NOW).unwrap();
    GroupFixture { admin, receiver }
}

/// `cmp/sealwire_group_seal`: one steady-state group message (signed; no sender-key message).
pub(crate) fn group_seal(group: &mut Cmp<'_>) {
    let mut rng = seeded(103);
    let mut f = group_fixture(&mut rng);
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
    let mut f = group_fixture(&mut rng);
    let message = plaintext();
    let epoch = f.receiver.epoch();
    group.bench_function("sealwire_group_open", |b| {
        b.iter_batched(
            || f.admin.seal(&message, &mut rng, NOW).unwrap().envelope,
            |envelope| {
                f.receiver
                    .open(black_box(&envelope), NOW)
                    .unwrap()
                    .plaintext
                    .len()
            },
            BatchSize::SmallInput,
        );
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
    let mut f = group_fixture(&mut rng);
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

/// Inputs of one session setup: Bob's fresh account and bundle, and Alice's identity.
struct SetupInput {
    account: Account,
    bundle: PrekeyBundle,
    alice: IdentityKeyPair,
}

/// `cmp/sealwire_setup`: bundle to first message opened, as `setup/full` in `core.rs`. Every
/// iteration uses a fresh account and identity, generated in the untimed setup.
pub(crate) fn setup(group: &mut Cmp<'_>) {
    let message = plaintext();
    let config = SessionConfig::default();
    let policy = BundlePolicy::default();
    let mut setup_rng = seeded(105);
    let mut run_rng = seeded(106);
    group.bench_function("sealwire_setup", |b| {
        b.iter_batched(
            || {
                let (account, bundle) = responder(&mut setup_rng);
                SetupInput {
                    account,
                    bundle,
                    alice: IdentityKeyPair::generate(&mut setup_rng),
                }
            },
            |input| {
                let SetupInput {
                    mut account,
                    bundle,
                    alice: alice_identity,
                } = input;
                let verified = bundle.verify(&policy, NOW).unwrap();
                let mut alice = Session::initiate(
                    &alice_identity,
                    &verified,
                    config.clone(),
                    &mut run_rng,
                    NOW,
                )
                .unwrap();
                let first = alice.seal(&message, &mut run_rng, NOW).unwrap();
                let accepted = account.accept(&first, NOW).unwrap();
                assert_eq!(accepted.plaintext.len(), message.len());
                (alice, accepted, account, alice_identity)
            },
            BatchSize::PerIteration,
        );
    });
}
