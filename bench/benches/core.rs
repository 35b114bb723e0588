//! Criterion benchmarks of `sealwire-core`, through the public API.
//!
//! Run with `cargo bench -p sealwire-bench --bench core` (add a filter such as `-- seal/` to run
//! a subset). Every benchmark uses seeded `ChaCha20Rng`s, so runs are reproducible, and keeps
//! its setup work (key generation, session establishment, sealing the envelopes an `open`
//! benchmark consumes, restoring snapshots) outside the timed region.
//!
//! Outputs: the per-message benchmarks free their envelope or plaintext inside the timed
//! region, as a caller does (it is one `free`). Keeping every output alive until the end of a
//! sample instead (`iter_with_large_drop`) makes each call allocate fresh memory and page-fault,
//! which was about 12% of `seal/256`'s profile. The heavier benchmarks (setup, epochs,
//! state) run one input per batch (`BatchSize::PerIteration`: the timer overhead, tens of ns, is
//! noise at their scale) and drop their output (sessions, which zeroize) outside the timed
//! region, right after it, so memory is reused.
//!
//! Groups:
//! - `seal/N`, `open/N`: one message of N plaintext bytes on an established session in steady
//!   state (no epoch change in the measured message).
//! - `floor_seal/N`, `floor_open/N`: the cryptographic floor at the same padded length: raw
//!   AES-256-GCM plus HMAC-SHA256 over the ciphertext, with fixed keys: the AES-GCM cipher is
//!   keyed once, the HMAC is keyed per message (two SHA-256 compressions). `floor_keyed/*` also
//!   keys the AES-GCM cipher per message (AES key schedule, GHASH key), as a protocol with a
//!   fresh key per message must.
//! - `setup/*`: bundle to first message opened (`setup/full`) and its pieces.
//! - `epoch/*`: the first seal of a new epoch (a turn) and opening it.
//! - `state/*`: `Session::to_bytes` and `Session::from_bytes` with skipped keys held.
//! - `primitive/*`: the public-key operations session setup is made of (X25519 with a variable
//!   and with the fixed base point, Ed25519 strict verification), to account for setup costs.
//!
//! The fixtures (established sessions, setup inputs, the floor's seal and open, the criterion
//! settings) are shared with `group.rs` and `compare.rs`: `sealwire_bench::fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealwire_bench::fixtures::{
    FLOOR_AES_KEY, NOW, criterion_config, established, floor_buffer, floor_open_in_place,
    floor_seal_into, floor_sealed, plaintext, seeded, setup_full_routine, setup_input,
    steady_config,
};
use sealwire_core::{BundlePolicy, MAX_PLAINTEXT_LEN, PrekeyBundle, Session, SessionConfig};

/// Plaintext sizes of the per-message benchmarks: 64 B, 256 B, 4 KiB, and the largest plaintext
/// (64 KiB - 1, which pads to exactly 64 KiB).
const SIZES: [usize; 4] = [64, 256, 4096, MAX_PLAINTEXT_LEN];

/// The plaintext size compared against the floor (the benchmark issue's target).
const FLOOR_SIZE: usize = 256;

/// Skipped keys held by the session in the `state/*` benchmarks.
const SKIPPED_KEYS: usize = 32;

fn seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    for size in SIZES {
        let mut rng = seeded(1);
        let (mut alice, _bob) = established(&steady_config(), &mut rng);
        let epoch = alice.sending_epoch();
        let message = plaintext(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &message, |b, message| {
            b.iter(|| alice.seal(black_box(message), &mut rng, NOW).unwrap());
        });
        assert_eq!(
            alice.sending_epoch(),
            epoch,
            "an epoch changed while measuring"
        );
    }
    group.finish();
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    for size in SIZES {
        let mut rng = seeded(2);
        let (mut alice, mut bob) = established(&steady_config(), &mut rng);
        let epoch = bob.peer_epoch();
        let message = plaintext(size);
        group.throughput(Throughput::Bytes(size as u64));
        // Each `open` needs a fresh envelope: opening one consumes its key, and a second open of
        // the same envelope is a (cheap) replay rejection, not an open. So the untimed setup of
        // `iter_batched` seals a batch of envelopes (in order, from Alice's live session), and
        // only Bob's `open` of each of them, in the same order, is timed. This measures open
        // alone, with no subtraction of a separately measured seal (which would add the noise
        // of two measurements); every open is an in-order, steady-state message (no skipped
        // keys, no epoch change). The routine frees the envelope and the plaintext, as a caller
        // would, so that retained outputs do not make every open allocate fresh pages.
        let batch = if size > 4096 {
            BatchSize::LargeInput
        } else {
            BatchSize::SmallInput
        };
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                || alice.seal(&message, &mut rng, NOW).unwrap(),
                |envelope| bob.open(black_box(&envelope), NOW).unwrap().len(),
                batch,
            );
        });
        assert_eq!(bob.peer_epoch(), epoch, "an epoch changed while measuring");
        assert_eq!(
            bob.skipped_key_count(),
            0,
            "messages were opened out of order"
        );
    }
    group.finish();
}

fn floor(c: &mut Criterion) {
    // The cipher is keyed once: the floor is the cost of the primitives on the message itself.
    let cipher = Aes256Gcm::new(&FLOOR_AES_KEY.into());

    let mut group = c.benchmark_group("floor_seal");
    for size in SIZES {
        let mut buf = floor_buffer(size);
        group.throughput(Throughput::Bytes(size as u64));
        // Encrypting the previous iteration's ciphertext in place costs the same as encrypting
        // the plaintext: AES-GCM's cost does not depend on the data.
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| floor_seal_into(&cipher, black_box(&mut buf)));
        });
    }
    group.finish();

    // Decryption is in place, so each iteration gets its own copy of the sealed buffer, made in
    // the untimed setup: the floor is verify + decrypt alone, with no copy. (A timed copy into a
    // reused buffer was also tried: at 64 KiB, glibc's `rep movsb` copy between two heap buffers
    // whose addresses alias modulo 4 KiB took about a quarter of the time on this AMD machine,
    // an artifact of the benchmark's buffer placement rather than a cost of the primitives.)
    let mut group = c.benchmark_group("floor_open");
    for size in SIZES {
        let (sealed, mac_tag) = floor_sealed(&cipher, size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                || sealed.clone(),
                |mut buf| {
                    floor_open_in_place(&cipher, black_box(&mut buf), &mac_tag);
                    buf
                },
                if size > 4096 {
                    BatchSize::LargeInput
                } else {
                    BatchSize::SmallInput
                },
            );
        });
    }
    group.finish();

    // The same, with the per-message key setup (AES key schedule, GHASH key) that a protocol
    // with a fresh key per message cannot avoid. Keys are still fixed bytes (not derived).
    let mut group = c.benchmark_group("floor_keyed");
    let mut buf = floor_buffer(FLOOR_SIZE);
    group.bench_function(BenchmarkId::new("seal", FLOOR_SIZE), |b| {
        b.iter(|| {
            let cipher = Aes256Gcm::new(&black_box(FLOOR_AES_KEY).into());
            floor_seal_into(&cipher, black_box(&mut buf))
        });
    });
    let (sealed, mac_tag) = floor_sealed(&cipher, FLOOR_SIZE);
    group.bench_function(BenchmarkId::new("open", FLOOR_SIZE), |b| {
        b.iter_batched(
            || sealed.clone(),
            |mut buf| {
                let cipher = Aes256Gcm::new(&black_box(FLOOR_AES_KEY).into());
                floor_open_in_place(&cipher, black_box(&mut buf), &mac_tag);
                buf
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn setup(c: &mut Criterion) {
    let mut group = c.benchmark_group("setup");
    let message = plaintext(FLOOR_SIZE);
    let config = SessionConfig::default();
    let policy = BundlePolicy::default();

    // Bundle to first message opened: Alice verifies Bob's bundle, initiates, seals her first
    // message; Bob accepts it (creating his session and opening the message). Every iteration
    // uses a fresh account and identity, generated in the untimed setup.
    let mut setup_rng = seeded(3);
    let mut run_rng = seeded(4);
    group.bench_function("full", |b| {
        setup_full_routine(b, &message, &mut setup_rng, &mut run_rng);
    });

    // The pieces.
    let mut rng = seeded(5);
    let input = setup_input(&mut rng);
    let bundle_bytes = input.bundle.to_bytes();
    group.bench_function("bundle_decode", |b| {
        b.iter_batched(
            || (),
            |()| PrekeyBundle::from_bytes(black_box(&bundle_bytes)).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("bundle_verify", |b| {
        b.iter_batched(
            || input.bundle.clone(),
            |bundle| bundle.verify(&policy, NOW).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let verified = input.bundle.clone().verify(&policy, NOW).unwrap();
    group.bench_function("initiate", |b| {
        b.iter_batched(
            || config.clone(),
            |config| Session::initiate(&input.alice, &verified, config, &mut rng, NOW).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let mut setup_rng = seeded(6);
    let mut run_rng = seeded(7);
    group.bench_function("first_seal", |b| {
        b.iter_batched(
            || {
                Session::initiate(&input.alice, &verified, config.clone(), &mut setup_rng, NOW)
                    .unwrap()
            },
            |mut alice| {
                let first = alice.seal(&message, &mut run_rng, NOW).unwrap();
                (alice, first)
            },
            BatchSize::PerIteration,
        );
    });
    let mut setup_rng = seeded(8);
    group.bench_function("accept", |b| {
        b.iter_batched(
            || {
                let input = setup_input(&mut setup_rng);
                let verified = input.bundle.clone().verify(&policy, NOW).unwrap();
                let mut alice =
                    Session::initiate(&input.alice, &verified, config.clone(), &mut setup_rng, NOW)
                        .unwrap();
                let first = alice.seal(&message, &mut setup_rng, NOW).unwrap();
                (input.account, first)
            },
            |(mut account, first)| {
                let accepted = account.accept(&first, NOW).unwrap();
                (account, accepted)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("epoch");
    let message = plaintext(FLOOR_SIZE);
    let mut rng = seeded(9);
    // Default configuration: turns happen whatever the rotation policy.
    let (alice, bob) = established(&SessionConfig::default(), &mut rng);
    // Bob has just opened a message from Alice's newer epoch, so his next seal starts a new
    // epoch (fresh ratchet key, DH with Alice's ratchet key, epoch KDF) before sealing.
    let bob_before_turn = bob.to_bytes();
    let alice_before_turn = alice.to_bytes();
    let mut probe = Session::from_bytes(bob_before_turn.expose_secret()).unwrap();
    let epoch_before = probe.sending_epoch();
    let turn = probe.seal(&message, &mut rng, NOW).unwrap();
    assert_ne!(
        probe.sending_epoch(),
        epoch_before,
        "the seal was not a turn"
    );

    // Each iteration starts from the same snapshot (restored in the untimed setup), so every
    // measured seal is the first of a new epoch.
    group.bench_function("turn_seal", |b| {
        b.iter_batched(
            || Session::from_bytes(bob_before_turn.expose_secret()).unwrap(),
            |mut bob| {
                let envelope = bob.seal(&message, &mut rng, NOW).unwrap();
                (bob, envelope)
            },
            BatchSize::PerIteration,
        );
    });
    // Opening the first message of the new epoch: DH with the new ratchet key, epoch KDF, then
    // the message. Same snapshot approach: Alice's state before she has seen the new epoch.
    let mut check = Session::from_bytes(alice_before_turn.expose_secret()).unwrap();
    check.open(&turn, NOW).unwrap();
    assert_eq!(check.peer_epoch(), probe.sending_epoch());
    group.bench_function("turn_open", |b| {
        b.iter_batched(
            || Session::from_bytes(alice_before_turn.expose_secret()).unwrap(),
            |mut alice| {
                let plaintext = alice.open(black_box(&turn), NOW).unwrap();
                (alice, plaintext)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn state(c: &mut Criterion) {
    let mut group = c.benchmark_group("state");
    let mut rng = seeded(10);
    let (mut alice, mut bob) = established(&SessionConfig::default(), &mut rng);
    // Bob receives only the last of SKIPPED_KEYS + 1 messages: he keeps the keys of the others.
    let mut last = Vec::new();
    for _ in 0..=SKIPPED_KEYS {
        last = alice.seal(b"in flight", &mut rng, NOW).unwrap();
    }
    bob.open(&last, NOW).unwrap();
    assert_eq!(bob.skipped_key_count(), SKIPPED_KEYS);
    let bytes = bob.to_bytes();
    eprintln!(
        "state: session with {SKIPPED_KEYS} skipped keys serializes to {} bytes",
        bytes.len()
    );
    group.bench_function(BenchmarkId::new("to_bytes", SKIPPED_KEYS), |b| {
        b.iter_batched(
            || (),
            |()| black_box(&bob).to_bytes(),
            BatchSize::PerIteration,
        );
    });
    group.bench_function(BenchmarkId::new("from_bytes", SKIPPED_KEYS), |b| {
        b.iter_batched(
            || (),
            |()| Session::from_bytes(black_box(bytes.expose_secret())).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn primitive(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitive");
    let mut rng = seeded(11);
    let mut secret = [0u8; 32];
    rand::Rng::fill_bytes(&mut rng, &mut secret);
    let ours = x25519_dalek::StaticSecret::from(secret);
    rand::Rng::fill_bytes(&mut rng, &mut secret);
    let theirs = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
    // One X25519 key agreement (Montgomery ladder over a variable point).
    group.bench_function("x25519_dh", |b| {
        b.iter(|| black_box(&ours).diffie_hellman(black_box(&theirs)));
    });
    // One X25519 key generation (fixed base point, precomputed tables).
    group.bench_function("x25519_keygen", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(black_box(&ours)));
    });
    // One Ed25519 strict verification, as used for prekey and identity-binding signatures.
    let signing = ed25519_dalek::SigningKey::from_bytes(&secret);
    let verifying = signing.verifying_key();
    let message = [0x5A; 100];
    let signature = ed25519_dalek::Signer::sign(&signing, &message);
    group.bench_function("ed25519_verify_strict", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&message), black_box(&signature))
                .unwrap();
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = floor, seal, open, setup, epoch, state, primitive
}
criterion_main!(benches);
