//! Precise errors at the edges of the input (config.rs, envelope.rs, session.rs, account.rs):
//! wrong session, unexpected kind, unsupported version or suite, sizes at and past their
//! maxima, invalid configurations. Every refusal names its documented error variant and leaves
//! the session or account byte-for-byte unchanged. Out-of-order bounds are in
//! `bounds_skipped.rs` (skipped message keys) and `bounds_epochs.rs` (epochs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::{
    EnvelopeHeader, EnvelopeKind, Error, IdentityKeyPair, MAX_ENVELOPE_LEN, MAX_PLAINTEXT_LEN,
    PrekeyBundle, Session, SessionConfig,
};
use security_support::{
    Initiated, accept_refused, at, config, epoch_of, established, expect_accept_err,
    expect_open_err, initiated, open_refused, state, verified_bundle,
};

#[test]
fn wrong_session_names_the_envelope_session() {
    let mut p = established(110, SessionConfig::default(), SessionConfig::default());
    // Carol starts a second session with the same Bob.
    let carol = IdentityKeyPair::generate(&mut p.rng);
    let bundle = verified_bundle(&mut p.bob_account, false, &mut p.rng, at(1));
    let mut carol_session =
        Session::initiate(&carol, &bundle, SessionConfig::default(), &mut p.rng, at(1)).unwrap();
    let initial = carol_session.seal(b"c0", &mut p.rng, at(1)).unwrap();
    let mut bob_carol = p.bob_account.accept(&initial, at(1)).unwrap().session;
    let reply = bob_carol.seal(b"to carol", &mut p.rng, at(1)).unwrap();
    carol_session.open(&reply, at(1)).unwrap();
    let follow_up = carol_session.seal(b"c1", &mut p.rng, at(1)).unwrap();
    let carol_id = carol_session.session_id();
    assert_ne!(carol_id, p.bob.session_id());
    assert_eq!(
        EnvelopeHeader::parse(&follow_up).unwrap().session_id(),
        carol_id
    );
    expect_open_err(&mut p.bob, &follow_up, at(1), Error::WrongSession(carol_id));
    expect_open_err(&mut p.bob, &initial, at(1), Error::WrongSession(carol_id));
    // And Alice's envelopes to Bob are foreign to Alice's peer Carol.
    let to_bob = p.alice.seal(b"a", &mut p.rng, at(1)).unwrap();
    expect_open_err(
        &mut bob_carol,
        &to_bob,
        at(1),
        Error::WrongSession(p.alice.session_id()),
    );
    assert_eq!(bob_carol.open(&follow_up, at(1)).unwrap(), b"c1");
}

#[test]
fn unexpected_kind_for_own_initial_and_for_follow_up_at_accept() {
    let Initiated {
        mut rng,
        mut alice,
        mut bob_account,
        ..
    } = initiated(111, true, SessionConfig::default());
    assert_eq!(alice.next_envelope_kind(), EnvelopeKind::Initial);
    let initial = alice.seal(b"0", &mut rng, at(0)).unwrap();
    assert!(matches!(
        open_refused(&mut alice, &initial, at(0)),
        Error::UnexpectedKind(_)
    ));

    let mut bob = bob_account.accept(&initial, at(0)).unwrap().session;
    let follow_up = bob.seal(b"1", &mut rng, at(0)).unwrap();
    assert_eq!(
        EnvelopeHeader::parse(&follow_up).unwrap().kind(),
        EnvelopeKind::Message
    );
    assert!(matches!(
        accept_refused(&mut bob_account, &follow_up, at(0)),
        Error::UnexpectedKind(_)
    ));
    assert_eq!(alice.open(&follow_up, at(0)).unwrap(), b"1");
    // Once established, Alice's own follow-ups are also refused (reflection).
    let own = alice.seal(b"2", &mut rng, at(0)).unwrap();
    let epoch = epoch_of(&own).0;
    expect_open_err(&mut alice, &own, at(0), Error::UnknownEpoch { epoch });
}

#[test]
fn unsupported_version_and_suite() {
    let Initiated {
        mut rng,
        mut alice,
        mut bob_account,
        ..
    } = initiated(112, false, SessionConfig::default());
    let initial = alice.seal(b"0", &mut rng, at(0)).unwrap();
    let second = alice.seal(b"1", &mut rng, at(0)).unwrap();
    let mut bob = bob_account.accept(&initial, at(0)).unwrap().session;
    let follow_up = bob.seal(b"reply", &mut rng, at(0)).unwrap();
    for (index, value, expected) in [
        (0, 0u8, Error::UnsupportedVersion(0)),
        (0, 2, Error::UnsupportedVersion(2)),
        (0, 0xFF, Error::UnsupportedVersion(0xFF)),
        (1, 0, Error::UnsupportedSuite(0)),
        (1, 2, Error::UnsupportedSuite(2)),
    ] {
        let mut bad = follow_up.clone();
        bad[index] = value;
        assert_eq!(EnvelopeHeader::parse(&bad), Err(expected.clone()));
        expect_open_err(&mut alice, &bad, at(0), expected.clone());
        let mut bad_initial = second.clone();
        bad_initial[index] = value;
        expect_open_err(&mut bob, &bad_initial, at(0), expected.clone());
        expect_accept_err(&mut bob_account, &bad_initial, at(0), expected);
    }
    assert_eq!(bob.open(&second, at(0)).unwrap(), b"1");
    assert_eq!(alice.open(&follow_up, at(0)).unwrap(), b"reply");
}

#[test]
fn too_large_envelopes_and_bundles_are_rejected_first() {
    let mut p = established(113, SessionConfig::default(), SessionConfig::default());
    let e = p.alice.seal(b"x", &mut p.rng, at(1)).unwrap();
    let mut big = e.clone();
    big.resize(MAX_ENVELOPE_LEN + 1, 0);
    let expected = Error::TooLarge {
        what: "envelope",
        len: MAX_ENVELOPE_LEN + 1,
        max: MAX_ENVELOPE_LEN,
    };
    assert_eq!(EnvelopeHeader::parse(&big), Err(expected.clone()));
    expect_open_err(&mut p.bob, &big, at(1), expected.clone());
    expect_accept_err(&mut p.bob_account, &big, at(1), expected);
    // At exactly the maximum the length check passes (and the framing check fails).
    big.truncate(MAX_ENVELOPE_LEN);
    assert!(matches!(
        EnvelopeHeader::parse(&big),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        open_refused(&mut p.bob, &big, at(1)),
        Error::Malformed(_)
    ));
    assert_eq!(p.bob.open(&e, at(1)).unwrap(), b"x");

    let bundle = p.bob_account.bundle(None).unwrap().to_bytes();
    let mut big_bundle = bundle.clone();
    big_bundle.resize(513, 0);
    assert_eq!(
        PrekeyBundle::from_bytes(&big_bundle),
        Err(Error::TooLarge {
            what: "prekey bundle",
            len: 513,
            max: 512
        })
    );
}

#[test]
fn plaintext_too_large_at_max_plus_one_and_max_works() {
    let Initiated {
        mut rng,
        mut alice,
        mut bob_account,
        ..
    } = initiated(114, true, SessionConfig::default());
    let too_big = vec![0xA5u8; MAX_PLAINTEXT_LEN + 1];
    let max: Vec<u8> = (0..MAX_PLAINTEXT_LEN).map(|i| (i % 253) as u8).collect();
    let expected = Error::PlaintextTooLarge {
        len: MAX_PLAINTEXT_LEN + 1,
        max: MAX_PLAINTEXT_LEN,
    };
    // Initial envelopes.
    let before = state(&alice);
    assert_eq!(alice.seal(&too_big, &mut rng, at(0)), Err(expected.clone()));
    assert_eq!(state(&alice), before);
    let initial = alice.seal(&max, &mut rng, at(0)).unwrap();
    assert!(initial.len() <= MAX_ENVELOPE_LEN);
    let accepted = bob_account.accept(&initial, at(0)).unwrap();
    assert_eq!(accepted.plaintext, max);
    let mut bob = accepted.session;
    // Follow-up envelopes.
    let before = state(&bob);
    assert_eq!(bob.seal(&too_big, &mut rng, at(0)), Err(expected));
    assert_eq!(state(&bob), before);
    let reply = bob.seal(&max, &mut rng, at(0)).unwrap();
    assert!(reply.len() <= MAX_ENVELOPE_LEN);
    assert_eq!(alice.open(&reply, at(0)).unwrap(), max);
    let empty = alice.seal(b"", &mut rng, at(0)).unwrap();
    assert_eq!(bob.open(&empty, at(0)).unwrap(), b"");
}

#[test]
fn invalid_configurations_are_rejected_and_change_nothing() {
    let mut p = established(115, SessionConfig::default(), SessionConfig::default());
    let mutations: Vec<fn(&mut SessionConfig)> = vec![
        |c| c.rotate_after_messages = 0,
        |c| c.rotate_after_messages = u32::MAX,
        |c| c.rotate_after_secs = 0,
        |c| {
            c.max_skipped_per_epoch = 11;
            c.max_skipped_total = 10;
        },
        |c| {
            c.max_skipped_total = 1_000_001;
            c.max_skipped_per_epoch = 1;
        },
        |c| c.max_forward_jump = 1_000_001,
        |c| c.max_epoch_jump = 100_001,
        |c| c.max_skipped_epochs = 10_001,
        |c| c.max_receiving_epochs = 0,
        |c| c.max_own_epochs = 0,
        |c| c.grace_secs = 0,
    ];
    for mutate in mutations {
        let mut bad = SessionConfig::default();
        mutate(&mut bad);
        assert!(matches!(bad.validate(), Err(Error::InvalidConfig(_))));
        let before = state(&p.alice);
        assert!(matches!(
            p.alice.set_config(bad.clone()),
            Err(Error::InvalidConfig(_))
        ));
        assert_eq!(state(&p.alice), before);
        assert!(matches!(
            Session::initiate(
                &p.alice_identity,
                &verified_bundle(&mut p.bob_account, false, &mut p.rng, at(0)),
                bad,
                &mut p.rng,
                at(0)
            ),
            Err(Error::InvalidConfig(_))
        ));
    }
    // The documented maxima themselves are valid.
    config(|c| {
        c.max_skipped_total = 1_000_000;
        c.max_forward_jump = 1_000_000;
        c.max_epoch_jump = 100_000;
        c.max_skipped_epochs = 10_000;
        c.rotate_after_messages = u32::MAX - 1;
    });
}
