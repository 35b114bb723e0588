//! Out-of-order bounds on epochs (config.rs, epoch.rs, spec 12.2): unknown and retired parents,
//! `max_epoch_jump`, `max_skipped_epochs`, `max_receiving_epochs`, `max_own_epochs` and the
//! memory of closed epochs. Every refusal names its documented error variant and leaves the
//! session byte-for-byte unchanged; crossing rotations never deadlock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::{Error, SessionConfig};
use security_support::{
    at, burst, config, epoch_of, established, expect_open_err, header_offsets, open_refused, text,
};

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
        let err = open_refused(&mut p.bob, e, at(2));
        assert!(
            matches!(err, Error::StaleMessage | Error::UnknownEpoch { .. }),
            "{err:?}"
        );
    }
}
