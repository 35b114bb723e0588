//! Out-of-order bounds on skipped message keys and skipped epochs (config.rs, replay.rs,
//! ratchet.rs): `max_forward_jump`, `max_skipped_per_epoch`, `max_skipped_total` and
//! `grace_secs` reject with their documented error variant, evict oldest first, tell evicted
//! keys (stale) from used ones (replay), and leave the session byte-for-byte unchanged on
//! failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::Error;
use security_support::{at, burst, config, epoch_of, established, expect_open_err, text};

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
