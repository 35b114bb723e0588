//! Fixtures shared by the criterion benchmarks (`benches/core.rs`, `benches/group.rs` and
//! `benches/compare.rs`): seeded generators, steady-state configurations, pairwise sessions
//! established through a prekey bundle, a group whose receiver holds the admin's sender key, the
//! cryptographic floor (AES-256-GCM plus HMAC-SHA256 with fixed keys), the criterion
//! settings every benchmark runs with, and the two measured routines that are measured under two ids each
//! (`setup/full` and `cmp/sealwire_setup`; `group_open/3` and `cmp/sealwire_group_open`).
//!
//! Every fixture is built through the public API of `sealwire-core` with seeded `ChaCha20Rng`s,
//! so runs are reproducible. A fixture that cannot be built is a bug in the benchmark, not a
//! condition to recover from: these functions panic on it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use criterion::{BatchSize, Bencher, Criterion};
use hmac::{Hmac, Mac};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealwire_core::{
    Account, BundlePolicy, Change, Group, GroupConfig, IdentityKeyPair, MAX_COMMIT_CHANGES,
    MemberRole, PrekeyBundle, Session, SessionConfig, Timestamp, padded_len,
};
use sha2::Sha256;

/// A fixed time: rotation by age never triggers inside a benchmark.
pub const NOW: Timestamp = Timestamp::from_unix_secs(1_780_000_000);

/// The criterion settings of every benchmark: 1 s warm-up, 2.5 s measurement, 40 samples
/// (`bench/run` overrides the times on the command line).
pub fn criterion_config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_millis(2500))
        .sample_size(40)
}

/// A `ChaCha20Rng` seeded with `seed`.
pub fn seeded(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A plaintext of `len` bytes (a fixed pattern).
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A session configuration that never rotates by message count, so every measured message of
/// the steady-state benchmarks stays in the same epoch.
pub fn steady_config() -> SessionConfig {
    let mut config = SessionConfig::default();
    config.rotate_after_messages = u32::MAX - 1;
    config
}

/// A group configuration whose rotation never becomes due inside a benchmark.
pub fn steady_group_config() -> GroupConfig {
    let mut config = GroupConfig::default();
    config.rotate_after_messages = u32::MAX;
    config.max_forward_jump = u32::MAX / 2;
    config
}

/// A fresh responder account with one one-time prekey, and its (not yet verified) bundle.
pub fn responder(rng: &mut ChaCha20Rng) -> (Account, PrekeyBundle) {
    let mut account = Account::new(IdentityKeyPair::generate(rng), rng, NOW);
    let opk = account.generate_one_time_prekeys(1, rng).unwrap()[0].id;
    let bundle = account.bundle(Some(opk)).unwrap();
    (account, bundle)
}

/// Alice (initiator) and Bob (responder) with an established session, in steady state:
/// Alice's initial message was accepted, Bob replied, Alice opened the reply and answered in a
/// new epoch (a turn), and Bob opened that. From here on Alice's seals stay in her current
/// epoch (with `config`'s rotation disabled, as in [`steady_config`]) and Bob opens them in
/// order.
pub fn established(config: &SessionConfig, rng: &mut ChaCha20Rng) -> (Session, Session) {
    let (mut account, bundle) = responder(rng);
    let mut account_config = account.config().clone();
    account_config.session = config.clone();
    account.set_config(account_config).unwrap();
    let verified = bundle.verify(&BundlePolicy::default(), NOW).unwrap();
    let alice_identity = IdentityKeyPair::generate(rng);
    let mut alice =
        Session::initiate(&alice_identity, &verified, config.clone(), rng, NOW).unwrap();
    let first = alice.seal(b"hello", rng, NOW).unwrap();
    let mut bob = account.accept(&first, NOW).unwrap().session;
    let reply = bob.seal(b"hi", rng, NOW).unwrap();
    alice.open(&reply, NOW).unwrap();
    let turn = alice.seal(b"turn", rng, NOW).unwrap();
    bob.open(&turn, NOW).unwrap();
    assert!(alice.is_established() && bob.is_established());
    (alice, bob)
}

/// Inputs of one session setup: Bob's fresh account and bundle, and Alice's identity.
pub struct SetupInput {
    /// Bob's account, which accepts Alice's first message.
    pub account: Account,
    /// Bob's bundle (one one-time prekey), not yet verified.
    pub bundle: PrekeyBundle,
    /// Alice's identity.
    pub alice: IdentityKeyPair,
}

/// A fresh [`SetupInput`]: a [`responder`], then Alice's identity.
pub fn setup_input(rng: &mut ChaCha20Rng) -> SetupInput {
    let (account, bundle) = responder(rng);
    SetupInput {
        account,
        bundle,
        alice: IdentityKeyPair::generate(rng),
    }
}

/// A group in steady state: the admin (the sender), a receiver that joined last and holds the
/// admin's sender key (handed out with the admin's first message), and the other members.
pub struct GroupFixture {
    /// The admin's identity.
    pub admin_identity: IdentityKeyPair,
    /// The admin's group: its next seals are steady-state messages (no sender-key message).
    pub admin: Group,
    /// The receiver's identity.
    pub receiver_identity: IdentityKeyPair,
    /// The receiver's group.
    pub receiver: Group,
    /// The identities of the other members (`members - 2` of them).
    pub others: Vec<IdentityKeyPair>,
}

/// The routine of `setup/full` and `cmp/sealwire_setup`, for `bench_function`: bundle to
/// first message opened. Alice verifies Bob's (decoded)
/// bundle, initiates, seals `message` as her first message; Bob accepts it (creating his
/// session and opening the message). Every iteration uses a fresh [`setup_input`] from
/// `setup_rng`, generated in the untimed setup; `run_rng` is the timed part's generator. The
/// outputs are dropped outside the timed region (`BatchSize::PerIteration`).
pub fn setup_full_routine(
    b: &mut Bencher<'_>,
    message: &[u8],
    setup_rng: &mut ChaCha20Rng,
    run_rng: &mut ChaCha20Rng,
) {
    let config = SessionConfig::default();
    let policy = BundlePolicy::default();
    b.iter_batched(
        || setup_input(setup_rng),
        |input| {
            let SetupInput {
                mut account,
                bundle,
                alice: alice_identity,
            } = input;
            let verified = bundle.verify(&policy, NOW).unwrap();
            let mut alice =
                Session::initiate(&alice_identity, &verified, config.clone(), run_rng, NOW)
                    .unwrap();
            let first = alice.seal(message, run_rng, NOW).unwrap();
            let accepted = account.accept(&first, NOW).unwrap();
            assert_eq!(accepted.plaintext.len(), message.len());
            (alice, accepted, account, alice_identity)
        },
        BatchSize::PerIteration,
    );
}

/// A [`GroupFixture`] of `members` members (at least 2), all in [`steady_group_config`]: the
/// others are added by the admin in commits of at most `MAX_COMMIT_CHANGES` changes, then the
/// receiver in a commit of its own, which it joins by the welcome.
pub fn group_fixture(members: usize, rng: &mut ChaCha20Rng) -> GroupFixture {
    let admin_identity = IdentityKeyPair::generate(rng);
    let receiver_identity = IdentityKeyPair::generate(rng);
    let others: Vec<IdentityKeyPair> = (0..members - 2)
        .map(|_| IdentityKeyPair::generate(rng))
        .collect();
    let mut admin = Group::create(&admin_identity, steady_group_config(), rng, NOW).unwrap();
    for chunk in others.chunks(MAX_COMMIT_CHANGES) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|id| Change::Add(id.public().clone(), MemberRole::Member))
            .collect();
        admin.commit(&admin_identity, &changes, NOW).unwrap();
    }
    let add = [Change::Add(
        receiver_identity.public().clone(),
        MemberRole::Member,
    )];
    let out = admin.commit(&admin_identity, &add, NOW).unwrap();
    let mut receiver = Group::join(
        receiver_identity.public(),
        admin_identity.public(),
        &out.welcome.unwrap(),
        steady_group_config(),
        NOW,
    )
    .unwrap();
    assert_eq!(admin.members().len(), members);
    // The admin's first message of the epoch draws its sender key; hand it to the receiver.
    let sealed = admin.seal(b"first", rng, NOW).unwrap();
    let key = sealed.sender_key.unwrap();
    receiver
        .receive(admin_identity.public(), key.message.expose_secret(), NOW)
        .unwrap();
    receiver.open(&sealed.envelope, NOW).unwrap();
    GroupFixture {
        admin_identity,
        admin,
        receiver_identity,
        receiver,
        others,
    }
}

/// The floor's fixed AES-256-GCM key.
pub const FLOOR_AES_KEY: [u8; 32] = [0x11; 32];
/// The floor's fixed HMAC-SHA256 key.
pub const FLOOR_MAC_KEY: [u8; 32] = [0x22; 32];
/// The floor's fixed nonce.
pub const FLOOR_NONCE: [u8; 12] = [0x33; 12];
/// GCM tag length.
pub const TAG_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The floor's seal: AES-256-GCM of the padded plaintext in place (no associated data; the
/// last [`TAG_LEN`] bytes of `buf` receive the GCM tag), then HMAC-SHA256 over ciphertext and
/// GCM tag. Returns the HMAC tag.
pub fn floor_seal_into(cipher: &Aes256Gcm, buf: &mut [u8]) -> [u8; 32] {
    let (body, tag_out) = buf.split_at_mut(buf.len() - TAG_LEN);
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(FLOOR_NONCE), b"", body.into())
        .unwrap();
    tag_out.copy_from_slice(&tag);
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&FLOOR_MAC_KEY).unwrap();
    mac.update(buf);
    mac.finalize().into_bytes().into()
}

/// The floor's open: verify the HMAC tag over `sealed` (ciphertext and GCM tag, constant time),
/// then verify and decrypt the ciphertext in place.
pub fn floor_open_in_place(cipher: &Aes256Gcm, sealed: &mut [u8], mac_tag: &[u8; 32]) {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&FLOOR_MAC_KEY).unwrap();
    mac.update(sealed);
    mac.verify_slice(mac_tag).unwrap();
    let (body, tag) = sealed.split_at_mut(sealed.len() - TAG_LEN);
    let tag = Tag::try_from(&*tag).unwrap();
    cipher
        .decrypt_inout_detached(&Nonce::from(FLOOR_NONCE), b"", body.into(), &tag)
        .unwrap();
}

/// A buffer of the padded length of a `size`-byte plaintext plus the GCM tag, holding the
/// plaintext (then zeros).
pub fn floor_buffer(size: usize) -> Vec<u8> {
    let mut buf = plaintext(size);
    buf.resize(padded_len(size) + TAG_LEN, 0);
    buf
}

/// A [`floor_buffer`] sealed by [`floor_seal_into`], with its HMAC tag.
pub fn floor_sealed(cipher: &Aes256Gcm, size: usize) -> (Vec<u8>, [u8; 32]) {
    let mut sealed = floor_buffer(size);
    let mac_tag = floor_seal_into(cipher, &mut sealed);
    (sealed, mac_tag)
}

/// The routine of `group_open/M` and `cmp/sealwire_group_open`, for `bench_function`: the
/// receiver of `f` opens one steady-state group message at a time. Each is a fresh envelope of
/// `message`, sealed in the untimed setup by the admin's live group, in order.
pub fn group_open_routine(
    b: &mut Bencher<'_>,
    f: &mut GroupFixture,
    message: &[u8],
    rng: &mut ChaCha20Rng,
) {
    b.iter_batched(
        || f.admin.seal(message, rng, NOW).unwrap().envelope,
        |envelope| {
            f.receiver
                .open(black_box(&envelope), NOW)
                .unwrap()
                .plaintext
                .len()
        },
        BatchSize::SmallInput,
    );
}
