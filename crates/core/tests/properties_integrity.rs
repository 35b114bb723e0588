//! Property tests of integrity and decoding through the public API (spec sections 10, 11):
//!
//! - integrity: any single byte or bit changed, truncation or extension of an initial or
//!   follow-up envelope is rejected and leaves session or account byte-for-byte unchanged;
//! - decoding never panics on arbitrary or mutated bytes, and restored mutated state is safe to
//!   use.
//!
//! Random whole conversations are in `properties.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use std::ops::Range;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use sealwire_core::{
    Account, EnvelopeHeader, EnvelopeKind, IdentityKeyPair, PrekeyBundle, PublicIdentity, Session,
    SessionConfig,
};
use security_support::{
    Initiated, account_state, at, config, established, initiated, state, text, verified_bundle,
};

// ---------------------------------------------------------------------------------------------
// Integrity
// ---------------------------------------------------------------------------------------------

/// Edits to make to an envelope: bytes XORed with a non-zero value, single bits flipped, a
/// truncation point, and a byte to append and to prepend.
#[derive(Debug, Clone)]
struct Tampering {
    bytes: Vec<(Index, u8)>,
    bits: Vec<(Index, u32)>,
    cut: Index,
    extra: u8,
}

/// `edits` byte changes and `edits` bit flips (each count drawn from the range).
fn tampering(edits: Range<usize>) -> impl Strategy<Value = Tampering> {
    (
        prop::collection::vec((any::<Index>(), 1u8..=255), edits.clone()),
        prop::collection::vec((any::<Index>(), 0u32..8), edits),
        any::<Index>(),
        any::<u8>(),
    )
        .prop_map(|(bytes, bits, cut, extra)| Tampering {
            bytes,
            bits,
            cut,
            extra,
        })
}

impl Tampering {
    /// Every variant of `envelope` described by the edits: a byte XORed with a non-zero value,
    /// a single bit flipped, a truncation, a byte appended, a byte prepended.
    fn variants(&self, envelope: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (index, xor) in &self.bytes {
            let mut e = envelope.to_vec();
            e[index.index(envelope.len())] ^= *xor;
            out.push(e);
        }
        for (index, bit) in &self.bits {
            let mut e = envelope.to_vec();
            e[index.index(envelope.len())] ^= 1 << bit;
            out.push(e);
        }
        out.push(envelope[..self.cut.index(envelope.len())].to_vec());
        let mut appended = envelope.to_vec();
        appended.push(self.extra);
        out.push(appended);
        let mut prepended = vec![self.extra];
        prepended.extend_from_slice(envelope);
        out.push(prepended);
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Follow-up envelopes, either direction, at various positions (in order or ahead of
    /// undelivered ones, possibly after a rotation) and sizes.
    #[test]
    fn tampered_follow_up_envelopes_never_open_and_change_nothing(
        seed in any::<u64>(),
        from_alice in any::<bool>(),
        rotate in 1u32..=4,
        earlier in 0usize..5,
        deliver_earlier in any::<bool>(),
        len in prop_oneof![3 => 0usize..64, 1 => 0usize..1_500],
        tampering in tampering(1..10),
    ) {
        let cfg = config(|c| c.rotate_after_messages = rotate);
        let mut p = established(seed, cfg.clone(), cfg);
        let (sender, receiver) = if from_alice {
            (&mut p.alice, &mut p.bob)
        } else {
            (&mut p.bob, &mut p.alice)
        };
        for i in 0..earlier {
            let e = sender.seal(&text("earlier", i, 8), &mut p.rng, at(1)).unwrap();
            if deliver_earlier {
                receiver.open(&e, at(1)).unwrap();
            }
        }
        let plaintext = text("target", 0, len);
        let envelope = sender.seal(&plaintext, &mut p.rng, at(1)).unwrap();
        let before = state(receiver);
        for bad in tampering.variants(&envelope) {
            prop_assert_ne!(&bad, &envelope);
            let result = receiver.open(&bad, at(1));
            prop_assert!(result.is_err(), "tampered envelope opened");
            prop_assert_eq!(state(receiver), before.clone());
        }
        prop_assert_eq!(receiver.open(&envelope, at(1)).unwrap(), plaintext);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Initial envelopes (the first or a later one of the session, with or without a one-time
    /// prekey): tampered ones are refused by `Account::accept` with the account unchanged, and
    /// by the responder's session once it exists, with the session unchanged.
    #[test]
    fn tampered_initial_envelopes_are_never_accepted_and_change_nothing(
        seed in any::<u64>(),
        one_time in any::<bool>(),
        rotate in 1u32..=3,
        earlier in 0usize..4,
        len in prop_oneof![3 => 0usize..64, 1 => 0usize..1_000],
        tampering in tampering(1..4),
    ) {
        let cfg = config(|c| c.rotate_after_messages = rotate);
        let Initiated { mut rng, mut alice, bob_account: mut bob, .. } =
            initiated(seed, one_time, cfg);
        for i in 0..earlier {
            alice.seal(&text("lost", i, 4), &mut rng, at(0)).unwrap();
        }
        let plaintext = text("initial", 0, len);
        let envelope = alice.seal(&plaintext, &mut rng, at(0)).unwrap();
        let later = alice.seal(b"later", &mut rng, at(0)).unwrap();
        prop_assert_eq!(EnvelopeHeader::parse(&later).unwrap().kind(), EnvelopeKind::Initial);

        let before = account_state(&bob);
        for bad in tampering.variants(&envelope) {
            prop_assert!(bob.accept(&bad, at(0)).is_err(), "tampered initial envelope accepted");
            prop_assert_eq!(account_state(&bob), before.clone());
        }
        let accepted = bob.accept(&envelope, at(0)).unwrap();
        prop_assert_eq!(&accepted.plaintext, &plaintext);
        let mut session = accepted.session;
        let before = state(&session);
        for bad in tampering.variants(&later) {
            prop_assert!(session.open(&bad, at(0)).is_err(), "tampered initial envelope opened");
            prop_assert_eq!(state(&session), before.clone());
        }
        prop_assert_eq!(session.open(&later, at(0)).unwrap(), b"later".to_vec());
    }
}

/// Deterministic and exhaustive over positions: every byte of an initial and of a follow-up
/// envelope, changed on its own (lowest bit and highest bit), is rejected without a state
/// change, by the session and (for the initial envelope) by `Account::accept`.
#[test]
fn every_single_byte_change_is_rejected() {
    let Initiated {
        mut rng,
        mut alice,
        mut bob_account,
        ..
    } = initiated(400, true, SessionConfig::default());
    let first = alice.seal(b"first", &mut rng, at(0)).unwrap();
    let second = alice.seal(b"second", &mut rng, at(0)).unwrap();

    let before = account_state(&bob_account);
    for index in 0..first.len() {
        let mut bad = first.clone();
        bad[index] ^= 0x01;
        assert!(bob_account.accept(&bad, at(0)).is_err(), "byte {index}");
        assert_eq!(account_state(&bob_account), before, "byte {index}");
    }
    let mut bob = bob_account.accept(&first, at(0)).unwrap().session;
    let reply = bob.seal(b"reply", &mut rng, at(0)).unwrap();

    for (receiver, envelope, plaintext) in [
        (&mut bob, &second, b"second".as_slice()),
        (&mut alice, &reply, b"reply".as_slice()),
    ] {
        let before = state(receiver);
        for index in 0..envelope.len() {
            for xor in [0x01, 0x80] {
                let mut bad = envelope.clone();
                bad[index] ^= xor;
                assert!(
                    receiver.open(&bad, at(0)).is_err(),
                    "byte {index} ^ {xor:#x}"
                );
                assert_eq!(state(receiver), before, "byte {index} ^ {xor:#x}");
            }
        }
        for cut in 0..envelope.len() {
            assert!(receiver.open(&envelope[..cut], at(0)).is_err(), "cut {cut}");
        }
        assert_eq!(state(receiver), before);
        assert_eq!(receiver.open(envelope, at(0)).unwrap(), plaintext);
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Valid encodings of every decodable type, and serialized sessions to open things with.
struct Samples {
    encodings: Vec<Vec<u8>>,
    alice_state: Vec<u8>,
    bob_state: Vec<u8>,
    account_state: Vec<u8>,
    envelopes: Vec<Vec<u8>>,
}

fn samples() -> &'static Samples {
    static SAMPLES: OnceLock<Samples> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut p = established(
            500,
            config(|c| c.rotate_after_messages = 2),
            SessionConfig::default(),
        );
        let opk = p
            .bob_account
            .generate_one_time_prekeys(3, &mut p.rng)
            .unwrap();
        let bundle_with = p.bob_account.bundle(Some(opk[0].id)).unwrap().to_bytes();
        let bundle_without = p.bob_account.bundle(None).unwrap().to_bytes();
        let verified = verified_bundle(&mut p.bob_account, true, &mut p.rng, at(0));
        let mut other = Session::initiate(
            &p.alice_identity,
            &verified,
            SessionConfig::default(),
            &mut p.rng,
            at(0),
        )
        .unwrap();
        let mut envelopes = vec![other.seal(b"initial", &mut p.rng, at(0)).unwrap()];
        for i in 0..4 {
            envelopes.push(p.alice.seal(&[i; 10], &mut p.rng, at(1)).unwrap());
            envelopes.push(p.bob.seal(&[i; 100], &mut p.rng, at(1)).unwrap());
        }
        // Leave some skipped keys and skipped epochs in the states.
        p.bob.open(&envelopes[7], at(1)).unwrap();
        p.alice.open(&envelopes[8], at(1)).unwrap();
        let mut encodings = vec![
            bundle_with,
            bundle_without,
            p.alice_identity.public().to_bytes().to_vec(),
            p.alice_identity.to_bytes().expose_secret().to_vec(),
            state(&p.alice),
            state(&p.bob),
            account_state(&p.bob_account),
        ];
        encodings.extend(envelopes.iter().cloned());
        Samples {
            encodings,
            alice_state: state(&p.alice),
            bob_state: state(&p.bob),
            account_state: account_state(&p.bob_account),
            envelopes,
        }
    })
}

/// Live sessions and an account to feed decoded input to. Kept per thread across cases (a
/// refused input leaves them unchanged, which is asserted); restored afresh after any input
/// that was accepted.
struct Receivers {
    alice: Session,
    bob: Session,
    account: Account,
}

impl Receivers {
    fn fresh() -> Receivers {
        let samples = samples();
        Receivers {
            alice: Session::from_bytes(&samples.alice_state).unwrap(),
            bob: Session::from_bytes(&samples.bob_state).unwrap(),
            account: Account::from_bytes(&samples.account_state).unwrap(),
        }
    }
}

thread_local! {
    static RECEIVERS: std::cell::RefCell<Receivers> = std::cell::RefCell::new(Receivers::fresh());
}

/// Feeds `bytes` to every decoder; anything that decodes is then used.
fn decode_everything(bytes: &[u8]) {
    let samples = samples();
    let now = at(2);
    let _ = EnvelopeHeader::parse(bytes);
    if let Ok(bundle) = PrekeyBundle::from_bytes(bytes) {
        assert_eq!(bundle.to_bytes(), bytes, "bundle decoding is not canonical");
        let _ = bundle.verify(&Default::default(), now);
    }
    if let Ok(identity) = PublicIdentity::from_bytes(bytes) {
        assert_eq!(identity.to_bytes().as_slice(), bytes);
    }
    if let Ok(identity) = IdentityKeyPair::from_bytes(bytes) {
        let _ = identity.public().to_bytes();
        let _ = identity.to_bytes();
    }
    RECEIVERS.with(|cell| {
        let mut receivers = cell.borrow_mut();
        let mut accepted_something = false;
        let Receivers {
            alice,
            bob,
            account,
        } = &mut *receivers;
        for session in [alice, bob] {
            let before = state(session);
            match session.open(bytes, now) {
                Ok(_) => accepted_something = true,
                Err(_) => assert_eq!(state(session), before, "refused input changed a session"),
            }
        }
        let before = account_state(account);
        match account.accept(bytes, now) {
            Ok(_) => accepted_something = true,
            Err(_) => assert_eq!(
                account_state(account),
                before,
                "refused input changed the account"
            ),
        }
        if accepted_something {
            *receivers = Receivers::fresh();
        }
    });
    // Restored from arbitrary bytes: whatever is accepted must be usable without panicking.
    if let Ok(mut session) = Session::from_bytes(bytes) {
        for envelope in &samples.envelopes {
            let _ = session.open(envelope, now);
        }
        let _ = session.to_bytes();
        let _ = format!("{session:?}");
    }
    if let Ok(mut account) = Account::from_bytes(bytes) {
        for envelope in &samples.envelopes {
            let _ = account.accept(envelope, now);
        }
        let _ = account.bundle(None);
        let _ = account.to_bytes();
        let _ = format!("{account:?}");
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Xor(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<Index>(), 1u8..=255).prop_map(|(i, b)| Mutation::Xor(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        if let Mutation::Insert(_, b) = mutation {
            bytes.push(*b);
        }
        return;
    }
    let len = bytes.len();
    match mutation {
        Mutation::Set(i, b) => bytes[i.index(len)] = *b,
        Mutation::Xor(i, b) => bytes[i.index(len)] ^= *b,
        Mutation::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
        Mutation::Remove(i) => {
            bytes.remove(i.index(len));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(len)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Arbitrary bytes, alone and behind a valid version and suite (to reach the header
    /// decoder), never make a decoder panic.
    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(
        bytes in prop::collection::vec(any::<u8>(), 0..700),
    ) {
        decode_everything(&bytes);
        let mut framed = vec![1u8, 1];
        framed.extend_from_slice(&bytes);
        decode_everything(&framed);
        let mut state_like = vec![1u8];
        state_like.extend_from_slice(&bytes);
        decode_everything(&state_like);
    }

    /// Valid encodings (envelopes, bundles, identities, session, account and identity state)
    /// with a few random mutations never make any decoder panic; what still decodes is usable.
    #[test]
    fn mutated_valid_encodings_never_panic_any_decoder(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let samples = samples();
        let mut bytes = samples.encodings[which.index(samples.encodings.len())].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        decode_everything(&bytes);
    }
}
