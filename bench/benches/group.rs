//! Criterion benchmarks of sealwire groups, through the public API.
//!
//! Run with `cargo bench -p sealwire-bench --bench group`. Seeded `ChaCha20Rng`s make runs
//! reproducible; building the groups, handing out sender keys and sealing the envelopes an
//! `open` benchmark consumes all happen outside the timed region.
//!
//! Groups:
//! - `group_seal/M`, `group_open/M`: one 256-byte message in a group of M members, in steady
//!   state (the sender key already handed out). The cost must not depend on M.
//! - `group_open_batch/64`: 64 messages of 256 bytes from one sender, in a group of 3,
//!   arriving together and opened with `Group::open_batch` (their signatures verified by one
//!   batch equation); `group_open_batch/64_from_4_senders`: the same from 4 senders in a group
//!   of 6, interleaved. Throughput is per message: compare its time per element with
//!   `group_open/3`.
//! - `group_verify/strict`, `group_verify/batch_64`: the signature floor of `group_open` and
//!   `group_open_batch`: one strict Ed25519 verification, and `ed25519_dalek::verify_batch` on
//!   64 signatures of 300-byte messages (per signature).
//! - `group_floor/*`: what a group message cannot avoid: the pairwise floor (AES-256-GCM and
//!   HMAC-SHA256 of the padded plaintext, fixed keys) plus one Ed25519 signature (seal) or one
//!   strict verification (open).
//! - `group_commit/M`: an admin commits the removal of one member from a group of M members
//!   (signing, validating and entering the new epoch); `group_receive_commit/M`: a member
//!   applies it.
//! - `group_first_seal/M`: the first message of an epoch, which draws a sender key and encodes
//!   the sender-key message for the M - 1 other members.
//!
//! The group fixture, the floor's keys and the criterion settings are shared with `core.rs`
//! and `compare.rs`: `sealwire_bench::fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use hmac::KeyInit;
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use sealwire_bench::fixtures::{
    FLOOR_AES_KEY, FLOOR_MAC_KEY, FLOOR_NONCE, NOW, criterion_config, group_fixture,
    group_open_routine, seeded, steady_group_config,
};
use sealwire_core::{Change, Group, IdentityKeyPair, MAX_GROUP_MEMBERS, MemberRole, padded_len};
use sha2::Sha256;

const SIZE: usize = 256;
const GROUP_SIZES: [usize; 3] = [3, 100, MAX_GROUP_MEMBERS];

fn group_seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_seal");
    for members in GROUP_SIZES {
        let mut rng = seeded(21);
        let mut f = group_fixture(members, &mut rng);
        let message = vec![0x42; SIZE];
        group.bench_function(BenchmarkId::from_parameter(members), |b| {
            b.iter(|| f.admin.seal(black_box(&message), &mut rng, NOW).unwrap());
        });
    }
    group.finish();
}

fn group_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_open");
    for members in GROUP_SIZES {
        let mut rng = seeded(22);
        let mut f = group_fixture(members, &mut rng);
        let message = vec![0x42; SIZE];
        let epoch = f.receiver.epoch();
        group.bench_function(BenchmarkId::from_parameter(members), |b| {
            group_open_routine(b, &mut f, &message, &mut rng);
        });
        assert_eq!(f.receiver.epoch(), epoch);
    }
    group.finish();
}

/// A group of `senders + 1` members in which the receiver (the last) holds every other
/// member's sender key; returns the senders' groups and the receiver's.
fn senders_fixture(senders: usize, rng: &mut ChaCha20Rng) -> (Vec<Group>, Group) {
    let identities: Vec<IdentityKeyPair> = (0..=senders)
        .map(|_| IdentityKeyPair::generate(rng))
        .collect();
    let (admin_identity, members) = identities.split_first().unwrap();
    let mut admin = Group::create(admin_identity, steady_group_config(), rng, NOW).unwrap();
    let changes: Vec<Change> = members
        .iter()
        .map(|id| Change::Add(id.public().clone(), MemberRole::Member))
        .collect();
    let welcome = admin
        .commit(admin_identity, &changes, NOW)
        .unwrap()
        .welcome
        .unwrap();
    let mut groups = vec![admin];
    for member in members {
        let joined = Group::join(
            member.public(),
            admin_identity.public(),
            &welcome,
            steady_group_config(),
            NOW,
        );
        groups.push(joined.unwrap());
    }
    let mut receiver = groups.pop().unwrap();
    for (group, identity) in groups.iter_mut().zip(&identities) {
        let sealed = group.seal(b"first", rng, NOW).unwrap();
        let key = sealed.sender_key.unwrap();
        receiver
            .receive(identity.public(), key.message.expose_secret(), NOW)
            .unwrap();
        receiver.open(&sealed.envelope, NOW).unwrap();
    }
    (groups, receiver)
}

fn group_open_batch(c: &mut Criterion) {
    const BATCH: usize = 64;
    let mut group = c.benchmark_group("group_open_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    let message = vec![0x42; SIZE];
    for (name, senders) in [("64", 1), ("64_from_4_senders", 4)] {
        let mut rng = seeded(26);
        let (mut sending, mut receiver) = senders_fixture(senders, &mut rng);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                || {
                    (0..BATCH)
                        .map(|i| {
                            let sender = &mut sending[i % senders];
                            sender.seal(&message, &mut rng, NOW).unwrap().envelope
                        })
                        .collect::<Vec<_>>()
                },
                |envelopes| {
                    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
                    let results = receiver.open_batch(black_box(&refs), NOW);
                    assert!(results.iter().all(Result::is_ok));
                    results.len()
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn group_verify(c: &mut Criterion) {
    const BATCH: usize = 64;
    let mut group = c.benchmark_group("group_verify");
    let signing = ed25519_dalek::SigningKey::from_bytes(&[0x44; 32]);
    let verifying = signing.verifying_key();
    let messages: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 300]).collect();
    let signatures: Vec<_> = messages.iter().map(|m| signing.sign(m)).collect();
    group.throughput(Throughput::Elements(1));
    group.bench_function("strict", |b| {
        b.iter(|| verifying.verify_strict(black_box(&messages[0]), &signatures[0]))
    });
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let keys = vec![verifying; BATCH];
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch_64", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &signatures, &keys).unwrap())
    });
    group.finish();
}

fn group_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_floor");
    let cipher = Aes256Gcm::new(&FLOOR_AES_KEY.into());
    let nonce = Nonce::from(FLOOR_NONCE);
    let signing = ed25519_dalek::SigningKey::from_bytes(&[0x44; 32]);
    let verifying = signing.verifying_key();
    let padded = padded_len(SIZE);
    let seal_once = |buf: &mut Vec<u8>| {
        buf.clear();
        buf.resize(padded, 0x42);
        let tag = cipher
            .encrypt_inout_detached(&nonce, &[], buf.as_mut_slice().into())
            .unwrap();
        buf.extend_from_slice(&tag);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&FLOOR_MAC_KEY).unwrap();
        mac.update(buf);
        buf.extend_from_slice(&mac.finalize().into_bytes());
        let signature = signing.sign(buf);
        buf.extend_from_slice(&signature.to_bytes());
    };
    let mut buf = Vec::with_capacity(padded + 128);
    group.bench_function("seal", |b| b.iter(|| seal_once(black_box(&mut buf))));
    seal_once(&mut buf);
    let sealed = buf.clone();
    group.bench_function("open", |b| {
        b.iter(|| {
            let (body, signature) = sealed.split_at(sealed.len() - 64);
            let signature = ed25519_dalek::Signature::from_slice(signature).unwrap();
            verifying.verify_strict(body, &signature).unwrap();
            let (ct, tag) = body.split_at(body.len() - 32);
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&FLOOR_MAC_KEY).unwrap();
            mac.update(ct);
            mac.verify_slice(tag).unwrap();
            let (ct, gcm_tag) = ct.split_at(ct.len() - 16);
            let mut plain = ct.to_vec();
            cipher
                .decrypt_inout_detached(
                    &nonce,
                    &[],
                    plain.as_mut_slice().into(),
                    gcm_tag.try_into().unwrap(),
                )
                .unwrap();
            black_box(plain)
        });
    });
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut commit_group = c.benchmark_group("group_commit");
    commit_group.sample_size(20);
    for members in GROUP_SIZES {
        let mut rng = seeded(23);
        let f = group_fixture(members, &mut rng);
        let bytes = f.admin.to_bytes();
        let add = [Change::Remove(f.others[0].public().clone())];
        commit_group.bench_function(BenchmarkId::from_parameter(members), |b| {
            b.iter_batched(
                || Group::from_bytes(bytes.expose_secret()).unwrap(),
                |mut admin| {
                    admin
                        .commit(&f.admin_identity, black_box(&add), NOW)
                        .unwrap();
                    admin
                },
                BatchSize::PerIteration,
            );
        });
    }
    commit_group.finish();

    let mut receive_group = c.benchmark_group("group_receive_commit");
    receive_group.sample_size(20);
    for members in GROUP_SIZES {
        let mut rng = seeded(24);
        let mut f = group_fixture(members, &mut rng);
        let bytes = f.receiver.to_bytes();
        let add = [Change::Remove(f.others[0].public().clone())];
        let out = f.admin.commit(&f.admin_identity, &add, NOW).unwrap();
        receive_group.bench_function(BenchmarkId::from_parameter(members), |b| {
            b.iter_batched(
                || Group::from_bytes(bytes.expose_secret()).unwrap(),
                |mut receiver| {
                    receiver
                        .receive(f.admin_identity.public(), black_box(&out.commit), NOW)
                        .unwrap();
                    receiver
                },
                BatchSize::PerIteration,
            );
        });
    }
    receive_group.finish();

    let mut first_group = c.benchmark_group("group_first_seal");
    first_group.sample_size(20);
    for members in GROUP_SIZES {
        let mut rng = seeded(25);
        let mut f = group_fixture(members, &mut rng);
        f.admin.commit(&f.admin_identity, &[], NOW).unwrap();
        let bytes = f.admin.to_bytes();
        let message = vec![0x42; SIZE];
        first_group.bench_function(BenchmarkId::from_parameter(members), |b| {
            b.iter_batched(
                || Group::from_bytes(bytes.expose_secret()).unwrap(),
                |mut admin| {
                    let sealed = admin.seal(black_box(&message), &mut rng, NOW).unwrap();
                    assert!(sealed.sender_key.is_some());
                    (admin, sealed)
                },
                BatchSize::PerIteration,
            );
        });
        black_box(&f.receiver_identity);
    }
    first_group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = group_floor, group_verify, group_seal, group_open, group_open_batch, group_commit
}
criterion_main!(benches);
