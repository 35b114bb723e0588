//! `Group::open_batch` (group/batch.rs, spec/groups.md 8.5): opening envelopes that arrived
//! together, with their signatures verified by one batch equation.
//!
//! - For any sequence of envelopes (honest, replayed, reordered, tampered at any byte of the
//!   header, ciphertext, tag or signature, with another envelope's signature, truncated,
//!   garbage, from a removed member, from another group, of an old, expired or future epoch,
//!   without a sender key) `open_batch` returns exactly what `open` returns on each envelope in
//!   turn, and leaves exactly the same serialized state.
//! - A batch with one forged signature falls back and still opens every other envelope; a
//!   signature by the right key on other bytes is refused; empty batches and batches of one.
//! - The documented divergence, on ed25519-dalek itself: the batch equation accepts signatures
//!   that strict verification refuses only when they are crafted with the signing key; a third
//!   party's changes to a genuine signature or to the signed bytes are refused by both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey, verify_batch};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealwire_core::{
    Change, Error, Group, GroupConfig, GroupOpened, GroupSealed, IdentityKeyPair, MemberRole,
    Timestamp,
};
use sha2::{Digest, Sha512};

const T0: Timestamp = Timestamp::from_unix_secs(1_780_000_000);
const SIGNATURE_LEN: usize = 64;
const TAG_LEN: usize = 32;

fn config() -> GroupConfig {
    let mut config = GroupConfig::default();
    // Small bounds, so that random deliveries also evict skipped keys and jump too far.
    config.max_forward_jump = 6;
    config.max_skipped_per_sender = 3;
    config.max_skipped_per_epoch = 5;
    config.past_epoch_secs = 3_600;
    config.validate().unwrap();
    config
}

/// The receiver's serialized state and the envelopes it may be given.
struct Fixture {
    receiver: Vec<u8>,
    envelopes: Vec<Vec<u8>>,
    /// Indices of envelopes the receiver can open (in a fresh state, at `T0`).
    openable: Vec<usize>,
    /// The same, per sender and epoch, in sending order.
    chains: Vec<Vec<usize>>,
}

fn seal(group: &mut Group, text: &[u8], rng: &mut ChaCha20Rng) -> GroupSealed {
    group.seal(text, rng, T0).unwrap()
}

/// A (admin), B and C (members) and R (the receiver) in epoch 1. R holds the sender keys of A,
/// B and C in epoch 1. A removes C (epoch 2, R and B follow); A's sender key of epoch 2 reaches
/// R, B's does not. A rotates again (epoch 3, R does not follow). X has a group of its own.
fn build() -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1);
    let [a, b, c, r, x] = std::array::from_fn(|_| IdentityKeyPair::generate(&mut rng));
    let mut ga = Group::create(&a, config(), &mut rng, T0).unwrap();
    let add: Vec<Change> = [&b, &c, &r]
        .iter()
        .map(|id| Change::Add(id.public().clone(), MemberRole::Member))
        .collect();
    let welcome = ga.commit(&a, &add, T0).unwrap().welcome.unwrap();
    let join = |me: &IdentityKeyPair| {
        Group::join(me.public(), a.public(), &welcome, config(), T0).unwrap()
    };
    let (mut gb, mut gc, mut gr) = (join(&b), join(&c), join(&r));

    let mut envelopes = Vec::new();
    let mut chains = Vec::new();
    let mut send = |group: &mut Group,
                    from: &IdentityKeyPair,
                    count: usize,
                    deliver_key: Option<&mut Group>,
                    opens: bool,
                    rng: &mut ChaCha20Rng| {
        let mut receiver = deliver_key;
        let mut chain = Vec::new();
        for i in 0..count {
            let sealed = seal(group, format!("{i} from a member").as_bytes(), rng);
            if let (Some(key), Some(receiver)) = (&sealed.sender_key, receiver.as_deref_mut()) {
                receiver
                    .receive(from.public(), key.message.expose_secret(), T0)
                    .unwrap();
            }
            chain.push(envelopes.len());
            envelopes.push(sealed.envelope);
        }
        if opens {
            chains.push(chain);
        }
    };
    // Epoch 1.
    send(&mut ga, &a, 8, Some(&mut gr), true, &mut rng);
    send(&mut gb, &b, 5, Some(&mut gr), true, &mut rng);
    send(&mut gc, &c, 2, Some(&mut gr), false, &mut rng);
    // Epoch 2: C removed.
    let commit = ga
        .commit(&a, &[Change::Remove(c.public().clone())], T0)
        .unwrap()
        .commit;
    gr.receive(a.public(), &commit, T0).unwrap();
    gb.receive(a.public(), &commit, T0).unwrap();
    send(&mut ga, &a, 5, Some(&mut gr), true, &mut rng);
    send(&mut gb, &b, 2, None, false, &mut rng);
    // Epoch 3, which R never enters.
    ga.commit(&a, &[], T0).unwrap();
    send(&mut ga, &a, 2, None, false, &mut rng);
    // Another group.
    let mut gx = Group::create(&x, config(), &mut rng, T0).unwrap();
    send(&mut gx, &x, 2, None, false, &mut rng);

    Fixture {
        receiver: gr.to_bytes().expose_secret().to_vec(),
        envelopes,
        openable: chains.concat(),
        chains,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn receiver() -> Group {
    Group::from_bytes(&fixture().receiver).unwrap()
}

fn state(group: &Group) -> Vec<u8> {
    group.to_bytes().expose_secret().to_vec()
}

/// Opens `envelopes` one by one with `open`, and in batches (split at `splits`) with
/// `open_batch`, on two identical receivers; checks that results and states are equal.
fn compare(
    envelopes: &[Vec<u8>],
    splits: &[usize],
    now: Timestamp,
) -> Vec<Result<GroupOpened, Error>> {
    let mut sequential = receiver();
    let expected: Vec<_> = envelopes
        .iter()
        .map(|envelope| sequential.open(envelope, now))
        .collect();
    let mut batched = receiver();
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    let mut got = Vec::new();
    let mut start = 0;
    for &split in splits.iter().chain(std::iter::once(&refs.len())) {
        let end = split.clamp(start, refs.len());
        got.extend(batched.open_batch(&refs[start..end], now));
        start = end;
    }
    assert_eq!(got, expected);
    assert_eq!(state(&batched), state(&sequential));
    expected
}

/// Offsets in a group envelope: `(header end, tag start, signature start)`. The header is
/// postcard: 3 bytes, the 16-byte group id, the epoch varint, 4 branch bytes and two varints.
fn regions(envelope: &[u8]) -> (usize, usize, usize) {
    fn varint_end(bytes: &[u8], mut at: usize) -> usize {
        while bytes[at] & 0x80 != 0 {
            at += 1;
        }
        at + 1
    }
    let mut at = varint_end(envelope, 19) + 4;
    at = varint_end(envelope, at);
    at = varint_end(envelope, at);
    let signature = envelope.len() - SIGNATURE_LEN;
    (at, signature - TAG_LEN, signature)
}

#[derive(Debug, Clone)]
enum Tamper {
    None,
    /// XOR a nonzero mask into one byte of a region: 0 header, 1 ciphertext, 2 tag, 3 signature.
    Flip {
        region: u8,
        at: usize,
        mask: u8,
    },
    /// Replace the signature with that of another envelope.
    Signature(usize),
    Truncate(usize),
}

#[derive(Debug, Clone)]
enum Input {
    Pool(usize, Tamper),
    Garbage(Vec<u8>),
}

fn apply(input: &Input, pool: &[Vec<u8>]) -> Vec<u8> {
    match input {
        Input::Garbage(bytes) => bytes.clone(),
        Input::Pool(i, change) => {
            let mut envelope = pool[i % pool.len()].clone();
            let (header, tag, signature) = regions(&envelope);
            match *change {
                Tamper::None => {}
                Tamper::Flip { region, at, mask } => {
                    let (from, to) = match region % 4 {
                        0 => (0, header),
                        1 => (header, tag),
                        2 => (tag, signature),
                        _ => (signature, envelope.len()),
                    };
                    envelope[from + at % (to - from)] ^= mask;
                }
                Tamper::Signature(j) => {
                    let other = &pool[j % pool.len()];
                    envelope[signature..].copy_from_slice(&other[other.len() - SIGNATURE_LEN..]);
                }
                Tamper::Truncate(n) => envelope.truncate(envelope.len() - 1 - n % 100),
            }
            envelope
        }
    }
}

fn clean_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        8 => any::<usize>().prop_map(|i| {
            let fixture = fixture();
            Input::Pool(fixture.openable[i % fixture.openable.len()], Tamper::None)
        }),
        3 => any::<usize>().prop_map(|i| Input::Pool(i, Tamper::None)),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Input::Garbage),
    ]
}

fn any_input() -> impl Strategy<Value = Input> {
    let change = prop_oneof![
        (any::<u8>(), any::<usize>(), 1..=255u8).prop_map(|(region, at, mask)| Tamper::Flip {
            region,
            at,
            mask
        }),
        any::<usize>().prop_map(Tamper::Signature),
        any::<usize>().prop_map(Tamper::Truncate),
    ];
    prop_oneof![
        6 => clean_input(),
        2 => (any::<usize>(), change).prop_map(|(i, change)| Input::Pool(i, change)),
    ]
}

fn now() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        3 => Just(T0),
        1 => Just(T0.plus_secs(config().past_epoch_secs)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Honest envelopes in any order, with replays, garbage and envelopes that cannot open
    /// (removed sender, other group, future epoch, no sender key): the batch verifies, and
    /// `open_batch` must still match `open` exactly.
    #[test]
    fn open_batch_equals_sequential_open_on_untampered_input(
        inputs in proptest::collection::vec(clean_input(), 0..24),
        splits in proptest::collection::vec(0..24usize, 0..3),
        now in now(),
    ) {
        compare_inputs(&inputs, splits, now);
    }

    /// The same, with envelopes tampered at random bytes of every part, signatures swapped
    /// between envelopes and truncations: whether the batch passes or falls back, the results
    /// and the final state are those of `open`.
    #[test]
    fn open_batch_equals_sequential_open_on_any_input(
        inputs in proptest::collection::vec(any_input(), 0..24),
        splits in proptest::collection::vec(0..24usize, 0..3),
        now in now(),
    ) {
        compare_inputs(&inputs, splits, now);
    }
}

/// Builds the envelopes `inputs` describe and compares `open_batch` with `open` on them, cut
/// into batches at `splits`.
fn compare_inputs(inputs: &[Input], mut splits: Vec<usize>, now: Timestamp) {
    let pool = &fixture().envelopes;
    let envelopes: Vec<Vec<u8>> = inputs.iter().map(|input| apply(input, pool)).collect();
    splits.sort_unstable();
    compare(&envelopes, &splits, now);
}

/// `n` envelopes the receiver can open, from A (epoch 1), B (epoch 1) and A (epoch 2) in turn,
/// each sender's in its sending order: `honest(6)` holds the first two of each.
fn honest(n: usize) -> Vec<Vec<u8>> {
    let fixture = fixture();
    (0..)
        .flat_map(|k| fixture.chains.iter().filter_map(move |chain| chain.get(k)))
        .take(n)
        .map(|&i| fixture.envelopes[i].clone())
        .collect()
}

#[test]
fn a_forged_signature_falls_back_and_every_other_envelope_opens() {
    let mut envelopes = honest(12);
    let last = envelopes[5].len() - 1;
    envelopes[5][last] ^= 0x40;
    let results = compare(&envelopes, &[], T0);
    for (i, result) in results.iter().enumerate() {
        if i == 5 {
            assert!(
                matches!(result, Err(Error::InvalidSignature(_))),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "envelope {i}: {result:?}");
        }
    }
    // The refused envelope left nothing behind: the genuine one still opens.
    let mut group = receiver();
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    group.open_batch(&refs, T0);
    let genuine = &honest(12)[5];
    assert!(group.open(genuine, T0).is_ok());
}

#[test]
fn a_signature_by_the_right_key_on_other_bytes_is_refused() {
    // Two envelopes of the same sender and epoch (A's last two of epoch 1): the second's
    // signature on the first's bytes, whose tag is genuine, so the signature step decides.
    let chain = &fixture().chains[0];
    let first = &fixture().envelopes[chain[chain.len() - 2]];
    let second = &fixture().envelopes[chain[chain.len() - 1]];
    let mut spliced = first.clone();
    let at = spliced.len() - SIGNATURE_LEN;
    spliced[at..].copy_from_slice(&second[second.len() - SIGNATURE_LEN..]);
    let mut envelopes = honest(6);
    envelopes.insert(3, spliced.clone());
    let results = compare(&envelopes, &[], T0);
    assert!(
        matches!(results[3], Err(Error::InvalidSignature(_))),
        "{:?}",
        results[3]
    );
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 6);
    // Next to the genuine envelope.
    let results = compare(&[spliced, first.clone()], &[], T0);
    assert!(matches!(results[0], Err(Error::InvalidSignature(_))));
    assert!(results[1].is_ok());
}

#[test]
fn an_empty_batch_changes_nothing() {
    let mut group = receiver();
    let before = state(&group);
    assert!(group.open_batch(&[], T0).is_empty());
    assert_eq!(state(&group), before);
}

#[test]
fn a_batch_of_one_is_open() {
    let genuine = honest(1);
    let results = compare(&genuine, &[], T0);
    assert!(results[0].is_ok());
    let mut forged = genuine[0].clone();
    forged[genuine[0].len() - 1] ^= 1;
    let results = compare(&[forged], &[], T0);
    assert!(matches!(results[0], Err(Error::InvalidSignature(_))));
}

#[test]
fn a_replay_inside_a_verified_batch_is_refused() {
    let mut envelopes = honest(4);
    envelopes.push(envelopes[1].clone());
    let results = compare(&envelopes, &[], T0);
    assert_eq!(results[4], Err(Error::Replay));
}

/// `k = H(R ‖ A ‖ M)` reduced mod ℓ, as RFC 8032 and ed25519-dalek compute it.
fn challenge(r: &[u8; 32], key: &VerifyingKey, message: &[u8]) -> Scalar {
    Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(key.as_bytes())
            .chain_update(message),
    )
}

/// The divergence spec/groups.md 8.5 documents, checked on ed25519-dalek itself: the holder of
/// a signing key can make signatures that the batch equation accepts and `verify_strict`
/// refuses; nobody can turn a genuine signature into one, or move it to other bytes.
#[test]
fn batch_acceptance_beyond_strict_needs_the_signing_key() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = key.verifying_key();
    let a = key.to_scalar();
    let genuine_message: &[u8] = b"a genuine message";
    let genuine = key.sign(genuine_message);

    // 1. R = the identity (small order), s = k·a: the cofactorless equation holds exactly, so
    //    the batch accepts it every time; strict verification refuses the small-order R.
    let r = EdwardsPoint::identity().compress().to_bytes();
    let message: &[u8] = b"crafted with the signing key";
    let s = challenge(&r, &public, message) * a;
    let crafted = Signature::from_components(r, s.to_bytes());
    assert!(public.verify_strict(message, &crafted).is_err());
    verify_batch(
        &[message, genuine_message],
        &[crafted, genuine],
        &[public, public],
    )
    .unwrap();

    // 2. R with an order-8 component: accepted when the batch coefficient of that signature is
    //    a multiple of 8, which the signer can grind for (about 1 try in 8).
    let mut accepted = 0;
    for n in 0u64..128 {
        let nonce = Scalar::from(1_000 + n);
        let r = (ED25519_BASEPOINT_POINT * nonce + EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        let message = n.to_le_bytes();
        let s = nonce + challenge(&r, &public, &message) * a;
        let crafted = Signature::from_components(r, s.to_bytes());
        assert!(public.verify_strict(&message, &crafted).is_err());
        let messages: [&[u8]; 2] = [&message, genuine_message];
        if verify_batch(&messages, &[crafted, genuine], &[public, public]).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > 0 && accepted < 128, "{accepted}");

    // 3. Without the signing key: a genuine signature with a small-order point added to R, or
    //    on other bytes, or with s + ℓ, is refused by the batch as by strict verification.
    let r_point = genuine.r_bytes();
    let r_point = curve25519_dalek::edwards::CompressedEdwardsY(*r_point)
        .decompress()
        .unwrap();
    for torsion in EIGHT_TORSION.iter().skip(1) {
        let mauled = Signature::from_components(
            (r_point + torsion).compress().to_bytes(),
            *genuine.s_bytes(),
        );
        assert!(public.verify_strict(genuine_message, &mauled).is_err());
        assert!(
            verify_batch(
                &[genuine_message, genuine_message],
                &[mauled, genuine],
                &[public, public]
            )
            .is_err()
        );
    }
    let other: &[u8] = b"other bytes";
    assert!(
        verify_batch(
            &[other, genuine_message],
            &[genuine, genuine],
            &[public, public]
        )
        .is_err()
    );
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    let l = Scalar::ZERO - Scalar::ONE; // ℓ − 1
    for (i, byte) in s_plus_l.iter_mut().enumerate() {
        let sum = u16::from(genuine.s_bytes()[i])
            + u16::from(l.as_bytes()[i])
            + u16::from(i == 0)
            + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    let malleated = Signature::from_components(*genuine.r_bytes(), s_plus_l);
    assert!(
        verify_batch(
            &[genuine_message, genuine_message],
            &[malleated, genuine],
            &[public, public]
        )
        .is_err()
    );
}
