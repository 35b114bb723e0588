//! Out-of-order bounds and precise errors (config.rs, replay.rs, epoch.rs, ratchet.rs,
//! envelope.rs): every documented bound rejects with its documented error variant, evicts oldest
//! first, and leaves the session byte-for-byte unchanged on failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::{
    EnvelopeHeader, EnvelopeKind, Error, IdentityKeyPair, MAX_ENVELOPE_LEN, MAX_PLAINTEXT_LEN,
    PrekeyBundle, Session, SessionConfig,
};
use security_support::{
    at, config, epoch_of, established, expect_accept_err, expect_open_err, header_offsets, state,
    text, verified_bundle,
};

/// Seals `count` messages from `session` at `now`.
fn burst(
    session: &mut Session,
    rng: &mut rand_chacha::ChaCha20Rng,
    tag: &str,
    count: usize,
    now: sealwire_core::Timestamp,
) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| session.seal(&text(tag, i, 12), rng, now).unwrap())
        .collect()
}

#[test]
fn too_far_ahead_past_max_forward_jump_in_open_and_new_epochs() {
    let mut p = established(
        101,
        config(|c| c.rotate_after_messages = 1_000),
        config(|c| c.max_forward_jump = 5),
    );
    let m = burst(&mut p.alice, &mut p.rng, "a", 8, at(1));
    for (i, e) in m.iter().enumerate() {
        assert_eq!(epoch_of(e), (3, i as u32));
    }
    assert_eq!(p.bob.open(&m[0], at(1)).unwrap(), text("a", 0, 12));
    // Next expected is 1: message 7 would skip 6 keys, one more than allowed.
    expect_open_err(
        &mut p.bob,
        &m[7],
        at(1),
        Error::TooFarAhead { jump: 6, max: 5 },
    );
    // Exactly the bound is fine.
    assert_eq!(p.bob.open(&m[6], at(1)).unwrap(), text("a", 6, 12));
    assert_eq!(p.bob.skipped_key_count(), 5);
    for (i, e) in m.iter().enumerate().take(6).skip(1) {
        assert_eq!(p.bob.open(e, at(1)).unwrap(), text("a", i, 12));
    }
    assert_eq!(p.bob.open(&m[7], at(1)).unwrap(), text("a", 7, 12));
    assert_eq!(p.bob.skipped_key_count(), 0);

    // A new epoch whose first message seen is too far ahead of its counter 0.
    let reply = p.bob.seal(b"turn", &mut p.rng, at(2)).unwrap();
    p.alice.open(&reply, at(2)).unwrap();
    let n = burst(&mut p.alice, &mut p.rng, "n", 7, at(3));
    let new_epoch = epoch_of(&n[0]).0;
    assert!(new_epoch > 3);
    assert_eq!(epoch_of(&n[6]), (new_epoch, 6));
    expect_open_err(
        &mut p.bob,
        &n[6],
        at(3),
        Error::TooFarAhead { jump: 6, max: 5 },
    );
    assert_eq!(p.bob.open(&n[5], at(3)).unwrap(), text("n", 5, 12));
    assert_eq!(p.bob.open(&n[6], at(3)).unwrap(), text("n", 6, 12));
}

#[test]
fn per_epoch_skipped_cap_evicts_oldest_and_tells_evicted_from_used() {
    let mut p = established(
        102,
        config(|c| c.rotate_after_messages = 1_000),
        config(|c| {
            c.max_skipped_per_epoch = 3;
            c.max_skipped_total = 10;
        }),
    );
    let m = burst(&mut p.alice, &mut p.rng, "a", 10, at(1));
    assert_eq!(p.bob.open(&m[9], at(1)).unwrap(), text("a", 9, 12));
    // Nine keys were skipped; only the newest three (6, 7, 8) are kept.
    assert_eq!(p.bob.skipped_key_count(), 3);
    for e in &m[..6] {
        expect_open_err(&mut p.bob, e, at(1), Error::StaleMessage);
    }
    assert_eq!(p.bob.open(&m[6], at(1)).unwrap(), text("a", 6, 12));
    // Used keys: replays, not stale.
    expect_open_err(&mut p.bob, &m[6], at(1), Error::Replay);
    expect_open_err(&mut p.bob, &m[9], at(1), Error::Replay);
    assert_eq!(p.bob.open(&m[7], at(1)).unwrap(), text("a", 7, 12));
    assert_eq!(p.bob.open(&m[8], at(1)).unwrap(), text("a", 8, 12));
    assert_eq!(p.bob.skipped_key_count(), 0);
    expect_open_err(&mut p.bob, &m[8], at(1), Error::Replay);
}

#[test]
fn total_skipped_cap_evicts_oldest_across_epochs() {
    let mut p = established(
        103,
        config(|c| c.rotate_after_messages = 4),
        config(|c| {
            c.max_skipped_per_epoch = 5;
            c.max_skipped_total = 5;
        }),
    );
    let m = burst(&mut p.alice, &mut p.rng, "a", 8, at(1));
    for (i, e) in m.iter().enumerate() {
        let expected_epoch = if i < 4 { 3 } else { 5 };
        assert_eq!(epoch_of(e), (expected_epoch, (i % 4) as u32));
    }
    assert_eq!(p.bob.open(&m[3], at(1)).unwrap(), text("a", 3, 12));
    assert_eq!(p.bob.skipped_key_count(), 3);
    // Three more skipped keys in epoch 5: the total of 6 exceeds 5, the oldest, (3, 0), goes.
    assert_eq!(p.bob.open(&m[7], at(1)).unwrap(), text("a", 7, 12));
    assert_eq!(p.bob.skipped_key_count(), 5);
    expect_open_err(&mut p.bob, &m[0], at(1), Error::StaleMessage);
    assert_eq!(p.bob.open(&m[1], at(1)).unwrap(), text("a", 1, 12));
    expect_open_err(&mut p.bob, &m[1], at(1), Error::Replay);
    expect_open_err(&mut p.bob, &m[3], at(1), Error::Replay);
    expect_open_err(&mut p.bob, &m[7], at(1), Error::Replay);
    for i in [2, 4, 5, 6] {
        assert_eq!(p.bob.open(&m[i], at(1)).unwrap(), text("a", i, 12));
    }
    assert_eq!(p.bob.skipped_key_count(), 0);
}

#[test]
fn skipped_message_keys_expire_after_grace_secs() {
    let mut p = established(
        104,
        config(|c| c.rotate_after_messages = 1_000),
        config(|c| c.grace_secs = 1_000),
    );
    let m = burst(&mut p.alice, &mut p.rng, "a", 4, at(10));
    assert_eq!(p.bob.open(&m[3], at(10)).unwrap(), text("a", 3, 12));
    // Stored at 10: still held at 1009, expired at 1010 (grace is a strict bound).
    assert_eq!(p.bob.open(&m[0], at(1_009)).unwrap(), text("a", 0, 12));
    expect_open_err(&mut p.bob, &m[1], at(1_010), Error::StaleMessage);
    // A later success prunes the expired keys for good.
    let later = p.alice.seal(b"later", &mut p.rng, at(1_010)).unwrap();
    assert_eq!(p.bob.open(&later, at(1_010)).unwrap(), b"later");
    assert_eq!(p.bob.skipped_key_count(), 0);
    expect_open_err(&mut p.bob, &m[2], at(1_010), Error::StaleMessage);
    expect_open_err(&mut p.bob, &m[1], at(1_010), Error::StaleMessage);
    expect_open_err(&mut p.bob, &later, at(1_010), Error::Replay);
}

#[test]
fn skipped_epochs_expire_after_grace_secs() {
    let mut p = established(
        105,
        config(|c| c.rotate_after_messages = 1),
        config(|c| c.grace_secs = 1_000),
    );
    let m = burst(&mut p.alice, &mut p.rng, "a", 3, at(10));
    assert_eq!(
        m.iter().map(|e| epoch_of(e)).collect::<Vec<_>>(),
        vec![(3, 0), (5, 0), (7, 0)]
    );
    // Epochs 3 and 5 are skipped (their seeds kept) when 7 arrives.
    assert_eq!(p.bob.open(&m[2], at(10)).unwrap(), text("a", 2, 12));
    assert_eq!(p.bob.open(&m[0], at(1_009)).unwrap(), text("a", 0, 12));
    expect_open_err(&mut p.bob, &m[1], at(1_010), Error::StaleMessage);
}

#[test]
fn unknown_epoch_when_parent_was_retired_or_never_held() {
    // Retired: Bob's reply to Alice's epoch 3 is delayed; meanwhile Alice rotates to epoch 5,
    // Bob answers that one (so Alice knows Bob has moved past 3), and epoch 3, superseded, is
    // erased after Alice's grace period. The delayed reply then names a parent Alice no
    // longer holds.
    let mut p = established(
        106,
        config(|c| {
            c.rotate_after_messages = 1;
            c.grace_secs = 100;
        }),
        SessionConfig::default(),
    );
    let a1 = p.alice.seal(b"a1", &mut p.rng, at(1)).unwrap();
    assert_eq!(epoch_of(&a1).0, 3);
    assert_eq!(p.bob.open(&a1, at(1)).unwrap(), b"a1");
    let delayed = p.bob.seal(b"delayed", &mut p.rng, at(1)).unwrap();
    let header = header_offsets(&delayed);
    assert_eq!(delayed[header.parent], 3);
    let a2 = p.alice.seal(b"a2", &mut p.rng, at(2)).unwrap();
    assert_eq!(epoch_of(&a2).0, 5);
    assert_eq!(p.bob.open(&a2, at(2)).unwrap(), b"a2");
    let b2 = p.bob.seal(b"b2", &mut p.rng, at(2)).unwrap();
    assert_eq!(p.alice.open(&b2, at(2)).unwrap(), b"b2");
    p.alice.seal(b"later", &mut p.rng, at(200)).unwrap();
    expect_open_err(
        &mut p.alice,
        &delayed,
        at(200),
        Error::UnknownEpoch { epoch: 3 },
    );

    // Never held: the same kind of reply, with a parent Alice never had. Rejected from the
    // public header alone, before authentication.
    let mut q = established(107, SessionConfig::default(), SessionConfig::default());
    let a1 = q.alice.seal(b"a1", &mut q.rng, at(1)).unwrap();
    q.bob.open(&a1, at(1)).unwrap();
    let b1 = q.bob.seal(b"b1", &mut q.rng, at(1)).unwrap();
    let header = header_offsets(&b1);
    let mut forged = b1.clone();
    forged[header.parent] = 99;
    expect_open_err(
        &mut q.alice,
        &forged,
        at(1),
        Error::UnknownEpoch { epoch: 99 },
    );
    // An epoch number of Alice's own parity is never a peer epoch.
    let mut own_parity = b1.clone();
    own_parity[header.epoch] = 5;
    expect_open_err(
        &mut q.alice,
        &own_parity,
        at(1),
        Error::UnknownEpoch { epoch: 5 },
    );
    assert_eq!(q.alice.open(&b1, at(1)).unwrap(), b"b1");
}

#[test]
fn max_epoch_jump_and_max_skipped_epochs() {
    // max_epoch_jump may not be below max_own_epochs: use 5 for both.
    let mut p = established(
        108,
        config(|c| c.rotate_after_messages = 1),
        config(|c| {
            c.max_epoch_jump = 5;
            c.max_own_epochs = 5;
        }),
    );
    let m = burst(&mut p.alice, &mut p.rng, "a", 8, at(1));
    let epochs: Vec<u32> = m.iter().map(|e| epoch_of(e).0).collect();
    assert_eq!(epochs, vec![3, 5, 7, 9, 11, 13, 15, 17]);
    assert_eq!(p.bob.open(&m[0], at(1)).unwrap(), text("a", 0, 12));
    // Next child expected is 5; 17 would skip 5, 7, 9, 11, 13 and 15: six, one too many.
    expect_open_err(
        &mut p.bob,
        &m[7],
        at(1),
        Error::TooFarAhead { jump: 6, max: 5 },
    );
    assert_eq!(p.bob.open(&m[6], at(1)).unwrap(), text("a", 6, 12));
    for i in [1, 2, 3, 4, 5, 7] {
        assert_eq!(p.bob.open(&m[i], at(1)).unwrap(), text("a", i, 12));
    }

    let mut q = established(
        109,
        config(|c| c.rotate_after_messages = 1),
        config(|c| c.max_skipped_epochs = 1),
    );
    let m = burst(&mut q.alice, &mut q.rng, "a", 5, at(1));
    assert_eq!(q.bob.open(&m[0], at(1)).unwrap(), text("a", 0, 12));
    // Epochs 5, 7 and 9 are skipped; only the newest skipped seed (9) is kept.
    assert_eq!(q.bob.open(&m[4], at(1)).unwrap(), text("a", 4, 12));
    expect_open_err(&mut q.bob, &m[1], at(1), Error::StaleMessage);
    expect_open_err(&mut q.bob, &m[2], at(1), Error::StaleMessage);
    assert_eq!(q.bob.open(&m[3], at(1)).unwrap(), text("a", 3, 12));
    expect_open_err(&mut q.bob, &m[3], at(1), Error::Replay);
}

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
    let mut rng = security_support::rng(111);
    let mut bob_account = security_support::new_account(&mut rng, at(0));
    let bundle = verified_bundle(&mut bob_account, true, &mut rng, at(0));
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let mut alice = Session::initiate(
        &alice_identity,
        &bundle,
        SessionConfig::default(),
        &mut rng,
        at(0),
    )
    .unwrap();
    assert_eq!(alice.next_envelope_kind(), EnvelopeKind::Initial);
    let initial = alice.seal(b"0", &mut rng, at(0)).unwrap();
    let before = state(&alice);
    assert!(matches!(
        alice.open(&initial, at(0)),
        Err(Error::UnexpectedKind(_))
    ));
    assert_eq!(state(&alice), before);

    let mut bob = bob_account.accept(&initial, at(0)).unwrap().session;
    let follow_up = bob.seal(b"1", &mut rng, at(0)).unwrap();
    assert_eq!(
        EnvelopeHeader::parse(&follow_up).unwrap().kind(),
        EnvelopeKind::Message
    );
    let before = security_support::account_state(&bob_account);
    assert!(matches!(
        bob_account.accept(&follow_up, at(0)),
        Err(Error::UnexpectedKind(_))
    ));
    assert_eq!(security_support::account_state(&bob_account), before);
    assert_eq!(alice.open(&follow_up, at(0)).unwrap(), b"1");
    // Once established, Alice's own follow-ups are also refused (reflection).
    let own = alice.seal(b"2", &mut rng, at(0)).unwrap();
    let epoch = epoch_of(&own).0;
    expect_open_err(&mut alice, &own, at(0), Error::UnknownEpoch { epoch });
}

#[test]
fn unsupported_version_and_suite() {
    let mut rng = security_support::rng(112);
    let mut bob_account = security_support::new_account(&mut rng, at(0));
    let bundle = verified_bundle(&mut bob_account, false, &mut rng, at(0));
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let mut alice = Session::initiate(
        &alice_identity,
        &bundle,
        SessionConfig::default(),
        &mut rng,
        at(0),
    )
    .unwrap();
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
    let before = state(&p.bob);
    assert!(matches!(p.bob.open(&big, at(1)), Err(Error::Malformed(_))));
    assert_eq!(state(&p.bob), before);
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
    let mut rng = security_support::rng(114);
    let mut bob_account = security_support::new_account(&mut rng, at(0));
    let bundle = verified_bundle(&mut bob_account, true, &mut rng, at(0));
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let mut alice = Session::initiate(
        &alice_identity,
        &bundle,
        SessionConfig::default(),
        &mut rng,
        at(0),
    )
    .unwrap();
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

/// A message whose epoch was closed by a *bound* (here `max_receiving_epochs`) before it
/// arrived is a genuine message whose key was discarded: `StaleMessage` by the error contract
/// (error.rs: "its key was used or discarded (bounds or grace period)"), and a header-decided
/// rejection, not an authentication failure.
#[test]
fn message_of_epoch_closed_by_bound_is_stale_not_decrypt_failed() {
    for leave_skipped_key in [false, true] {
        let mut p = established(
            116,
            config(|c| c.rotate_after_messages = 3),
            config(|c| c.max_receiving_epochs = 1),
        );
        let m = burst(&mut p.alice, &mut p.rng, "a", 7, at(1));
        let epochs: Vec<u32> = m.iter().map(|e| epoch_of(e).0).collect();
        assert_eq!(epochs, vec![3, 3, 3, 5, 5, 5, 7]);
        if !leave_skipped_key {
            assert_eq!(p.bob.open(&m[0], at(1)).unwrap(), text("a", 0, 12));
        }
        assert_eq!(p.bob.open(&m[1], at(1)).unwrap(), text("a", 1, 12));
        // Epoch 7 arrives (5 was lost so far): epoch 3 is closed by the bound of one open
        // receiving chain, with message 2 still in flight.
        assert_eq!(p.bob.open(&m[6], at(1)).unwrap(), text("a", 6, 12));
        expect_open_err(&mut p.bob, &m[2], at(1), Error::StaleMessage);
        if leave_skipped_key {
            assert_eq!(p.bob.open(&m[0], at(1)).unwrap(), text("a", 0, 12));
        }
        // The skipped epoch 5 still opens (its salt was kept); with one open chain allowed,
        // opening it closes it again at once, so its next message is stale too.
        assert_eq!(p.bob.open(&m[3], at(1)).unwrap(), text("a", 3, 12));
        expect_open_err(&mut p.bob, &m[4], at(1), Error::StaleMessage);
        expect_open_err(&mut p.bob, &m[3], at(1), Error::Replay);
    }
}

/// Spec 12.2: after messages cross, a sender's next epoch number can skip up to as many
/// children as it holds own epochs, so a receiver whose `max_epoch_jump` is at least the
/// sender's `max_own_epochs` must accept it. Here Bob rotates after every message and holds 70
/// own epochs; Alice's single reply is in flight while he sends 68 more, so his next epoch skips
/// 68 child numbers under Alice's epoch 3 that never existed.
#[test]
fn epoch_numbers_skipped_after_crossing_are_within_documented_max_epoch_jump() {
    for (alice_jump, expect_ok) in [(70, true), (67, false)] {
        let mut p = established(
            117,
            config(|c| {
                c.max_epoch_jump = alice_jump;
            }),
            config(|c| {
                c.rotate_after_messages = 1;
                c.max_own_epochs = 70;
                c.max_epoch_jump = 70;
            }),
        );
        let a1 = p.alice.seal(b"a1", &mut p.rng, at(1)).unwrap();
        assert_eq!(epoch_of(&a1).0, 3);
        for i in 0..68 {
            let b = p.bob.seal(&text("b", i, 4), &mut p.rng, at(1)).unwrap();
            assert_eq!(p.alice.open(&b, at(1)).unwrap(), text("b", i, 4));
        }
        assert_eq!(p.bob.open(&a1, at(1)).unwrap(), b"a1");
        let b = p.bob.seal(b"after", &mut p.rng, at(1)).unwrap();
        assert_eq!(epoch_of(&b).0, 140);
        if expect_ok {
            assert_eq!(p.alice.open(&b, at(1)).unwrap(), b"after");
        } else {
            // A receiver configured below the sender's max_own_epochs rejects it.
            expect_open_err(
                &mut p.alice,
                &b,
                at(1),
                Error::TooFarAhead { jump: 68, max: 67 },
            );
        }
    }
}

/// Liveness with the *default* configuration and no loss at all: both parties keep writing
/// while neither receives (for example both offline for a few days; rotation by age starts a
/// new epoch each day). Each side then holds only its 5 newest own epochs
/// (`max_own_epochs`), so each side's replies name a parent the other has discarded, and
/// every later message does too: the session can never carry a message again, and the only
/// error either side sees is `UnknownEpoch` ("drop it").
#[test]
fn crossing_rotations_beyond_max_own_epochs_do_not_deadlock() {
    let mut p = established(118, SessionConfig::default(), SessionConfig::default());
    let day = 24 * 60 * 60;
    let mut from_alice = Vec::new();
    let mut from_bob = Vec::new();
    for d in 1..=5u64 {
        from_alice.push(
            p.alice
                .seal(&text("a", d as usize, 8), &mut p.rng, at(d * day))
                .unwrap(),
        );
        from_bob.push(
            p.bob
                .seal(&text("b", d as usize, 8), &mut p.rng, at(d * day))
                .unwrap(),
        );
    }
    // Everything is delivered, in order; some of it may be unreadable (crossing beyond the
    // bound), but afterwards the two must be able to talk again.
    let now = at(6 * day);
    let mut failures = Vec::new();
    for e in &from_alice {
        if let Err(err) = p.bob.open(e, now) {
            failures.push(err);
        }
    }
    for e in &from_bob {
        if let Err(err) = p.alice.open(e, now) {
            failures.push(err);
        }
    }
    for round in 0..3 {
        let a = p.alice.seal(b"still there?", &mut p.rng, now).unwrap();
        let b = p.bob.seal(b"still there?", &mut p.rng, now).unwrap();
        let at_bob = p.bob.open(&a, now);
        let at_alice = p.alice.open(&b, now);
        if at_bob.is_ok() && at_alice.is_ok() {
            return;
        }
        failures.push(at_bob.err().or(at_alice.err()).unwrap());
        assert!(round < 2, "session deadlocked; errors: {failures:?}");
    }
}

/// Spec 12.2: a closed receiving epoch with no keys left is remembered (as a tombstone, among
/// the 32 newest) so that a replay into it is reported as `Replay`; once forgotten, its
/// messages are refused as `StaleMessage` or `UnknownEpoch`, never derived again.
#[test]
fn replays_into_closed_epochs_are_replays_until_forgotten() {
    let mut p = established(
        119,
        config(|c| c.rotate_after_messages = 2),
        SessionConfig::default(),
    );
    let first = burst(&mut p.alice, &mut p.rng, "a", 3, at(1));
    assert_eq!(
        first.iter().map(|e| epoch_of(e)).collect::<Vec<_>>(),
        vec![(3, 0), (3, 1), (5, 0)]
    );
    for (i, e) in first.iter().enumerate() {
        assert_eq!(p.bob.open(e, at(1)).unwrap(), text("a", i, 12));
    }
    // Epoch 3 was closed by epoch 5's `previous` field, with every key used.
    assert_eq!(p.bob.skipped_key_count(), 0);
    expect_open_err(&mut p.bob, &first[0], at(1), Error::Replay);
    expect_open_err(&mut p.bob, &first[1], at(1), Error::Replay);
    // 40 turns later (each closes one more of Alice's epochs) epoch 3 is out of the memory
    // of 32.
    for round in 0..40 {
        let b = p.bob.seal(b"b", &mut p.rng, at(2)).unwrap();
        assert_eq!(p.alice.open(&b, at(2)).unwrap(), b"b");
        let a = p
            .alice
            .seal(&text("a", round, 3), &mut p.rng, at(2))
            .unwrap();
        assert_eq!(p.bob.open(&a, at(2)).unwrap(), text("a", round, 3));
    }
    assert!(epoch_of(&p.alice.seal(b"x", &mut p.rng, at(2)).unwrap()).0 > 80);
    for e in &first[..2] {
        let before = state(&p.bob);
        let result = p.bob.open(e, at(2));
        assert!(
            matches!(
                result,
                Err(Error::StaleMessage | Error::UnknownEpoch { .. })
            ),
            "{result:?}"
        );
        assert_eq!(state(&p.bob), before);
    }
}
