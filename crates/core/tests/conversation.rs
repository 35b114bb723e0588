//! Conversations through the public API: rotation while the peer is silent, crossing
//! messages, lost epochs, out-of-order delivery, persistence, and failure atomicity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::{Account, EnvelopeHeader, EnvelopeKind, Error, Session, SessionConfig};
use security_support::{Initiated, at, initiated};

/// Bob's account and Alice's session from his bundle (with a one-time prekey if `one_time`),
/// with the default configuration.
fn setup(seed: u64, one_time: bool) -> Initiated {
    initiated(seed, one_time, SessionConfig::default())
}

fn text(i: usize) -> Vec<u8> {
    format!("message number {i}").into_bytes()
}

#[test]
fn ping_pong_changes_epoch_every_turn() {
    let mut p = setup(1, true);
    let first = p.alice.seal(b"hi", &mut p.rng, at(1)).unwrap();
    let mut bob = p.bob_account.accept(&first, at(1)).unwrap().session;
    assert_eq!(p.alice.sending_epoch(), Some(1));
    let mut last_epochs = (1, 0);
    for round in 0..20u64 {
        let m = bob
            .seal(&text(round as usize), &mut p.rng, at(2 + round))
            .unwrap();
        assert_eq!(
            p.alice.open(&m, at(2 + round)).unwrap(),
            text(round as usize)
        );
        let m = p
            .alice
            .seal(&text(100 + round as usize), &mut p.rng, at(2 + round))
            .unwrap();
        assert_eq!(
            bob.open(&m, at(2 + round)).unwrap(),
            text(100 + round as usize)
        );
        let epochs = (
            p.alice.sending_epoch().unwrap(),
            bob.sending_epoch().unwrap(),
        );
        assert!(
            epochs.0 > last_epochs.0 && epochs.1 > last_epochs.1,
            "{epochs:?}"
        );
        assert_eq!(epochs.0 % 2, 1);
        assert_eq!(epochs.1 % 2, 0);
        last_epochs = epochs;
    }
    assert!(p.alice.is_established());
}

#[test]
fn silent_peer_rotation_by_count_and_age() {
    let mut p = setup(2, false);
    let mut envelopes = Vec::new();
    for i in 0..250 {
        envelopes.push(p.alice.seal(&text(i), &mut p.rng, at(1)).unwrap());
    }
    // 100 messages per epoch by default: epochs 1, 3, 5.
    assert_eq!(p.alice.sending_epoch(), Some(5));
    let epochs: Vec<u32> = envelopes
        .iter()
        .map(|e| EnvelopeHeader::parse(e).unwrap().epoch())
        .collect();
    assert_eq!(epochs[99], 1);
    assert_eq!(epochs[100], 3);
    assert_eq!(epochs[249], 5);
    // Every one is an initial message until Bob answers.
    assert!(
        envelopes
            .iter()
            .all(|e| EnvelopeHeader::parse(e).unwrap().kind() == EnvelopeKind::Initial)
    );
    let mut bob = p.bob_account.accept(&envelopes[0], at(2)).unwrap().session;
    for (i, e) in envelopes.iter().enumerate().skip(1) {
        assert_eq!(bob.open(e, at(2)).unwrap(), text(i));
    }
    // Age: a day later, one message still rotates.
    let later = p.alice.seal(b"later", &mut p.rng, at(1 + 86_400)).unwrap();
    assert_eq!(EnvelopeHeader::parse(&later).unwrap().epoch(), 7);
    assert_eq!(bob.open(&later, at(1 + 86_400)).unwrap(), b"later");
}

#[test]
fn lost_epoch_does_not_block_later_epochs_and_setup_survives_loss() {
    let mut p = setup(3, true);
    let envelopes: Vec<Vec<u8>> = (0..230)
        .map(|i| p.alice.seal(&text(i), &mut p.rng, at(1)).unwrap())
        .collect();
    // All of epoch 1 (0..100) is lost; Bob's session starts from an epoch-3 message.
    let accepted = p.bob_account.accept(&envelopes[150], at(2)).unwrap();
    let mut bob = accepted.session;
    for (i, e) in envelopes.iter().enumerate().skip(100) {
        if i == 150 {
            assert_eq!(bob.open(e, at(2)), Err(Error::Replay));
            continue;
        }
        assert_eq!(bob.open(e, at(2)).unwrap(), text(i), "message {i}");
    }
    // A late epoch-1 message still opens (its epoch seed was kept as skipped).
    assert_eq!(bob.open(&envelopes[5], at(3)).unwrap(), text(5));
    assert_eq!(bob.open(&envelopes[5], at(3)), Err(Error::Replay));
}

#[test]
fn crossing_messages_and_rotations_never_fork() {
    let mut p = setup(4, true);
    let first = p.alice.seal(b"0", &mut p.rng, at(1)).unwrap();
    let mut bob = p.bob_account.accept(&first, at(1)).unwrap().session;
    let b1 = bob.seal(b"b1", &mut p.rng, at(2)).unwrap();
    p.alice.open(&b1, at(2)).unwrap();
    // Now both send at once, and Alice also rotates by count while Bob's messages are in
    // flight, then each side receives the other's batch.
    let mut config = SessionConfig::default();
    config.rotate_after_messages = 3;
    p.alice.set_config(config.clone()).unwrap();
    bob.set_config(config).unwrap();
    let from_alice: Vec<_> = (0..10)
        .map(|i| p.alice.seal(&text(i), &mut p.rng, at(3)).unwrap())
        .collect();
    let from_bob: Vec<_> = (0..10)
        .map(|i| bob.seal(&text(50 + i), &mut p.rng, at(3)).unwrap())
        .collect();
    for (i, e) in from_bob.iter().enumerate().rev() {
        assert_eq!(p.alice.open(e, at(4)).unwrap(), text(50 + i));
    }
    for (i, e) in from_alice.iter().enumerate() {
        assert_eq!(bob.open(e, at(4)).unwrap(), text(i));
    }
    // And the conversation goes on both ways.
    for round in 0..5 {
        let m = p.alice.seal(b"a", &mut p.rng, at(5 + round)).unwrap();
        assert_eq!(bob.open(&m, at(5 + round)).unwrap(), b"a");
        let m = bob.seal(b"b", &mut p.rng, at(5 + round)).unwrap();
        assert_eq!(p.alice.open(&m, at(5 + round)).unwrap(), b"b");
    }
}

#[test]
fn failed_open_leaves_state_byte_for_byte_unchanged() {
    let mut p = setup(5, true);
    let first = p.alice.seal(b"0", &mut p.rng, at(1)).unwrap();
    let mut bob = p.bob_account.accept(&first, at(1)).unwrap().session;
    let envelopes: Vec<_> = (1..6)
        .map(|i| p.alice.seal(&text(i), &mut p.rng, at(1)).unwrap())
        .collect();
    assert_eq!(bob.open(&envelopes[3], at(2)).unwrap(), text(4));
    let before = bob.to_bytes();
    for e in &envelopes {
        for index in [0, 5, 20, e.len() / 2, e.len() - 40, e.len() - 1] {
            let mut bad = e.clone();
            bad[index] ^= 0x01;
            assert!(bob.open(&bad, at(3)).is_err());
            assert_eq!(bob.to_bytes().expose_secret(), before.expose_secret());
        }
        assert!(bob.open(&e[..e.len() - 1], at(3)).is_err());
        assert_eq!(bob.to_bytes().expose_secret(), before.expose_secret());
    }
    assert_eq!(bob.open(&envelopes[3], at(3)), Err(Error::Replay));
    assert_eq!(bob.to_bytes().expose_secret(), before.expose_secret());
}

#[test]
fn persistence_mid_conversation() {
    let mut p = setup(6, false);
    let first = p.alice.seal(b"0", &mut p.rng, at(1)).unwrap();
    let bob = p.bob_account.accept(&first, at(1)).unwrap().session;
    let pending = p.alice.seal(b"in flight", &mut p.rng, at(1)).unwrap();
    let skipped = p.alice.seal(b"skipped", &mut p.rng, at(1)).unwrap();
    let ahead = p.alice.seal(b"ahead", &mut p.rng, at(1)).unwrap();
    let mut bob = Session::from_bytes(bob.to_bytes().expose_secret()).unwrap();
    assert_eq!(bob.open(&ahead, at(2)).unwrap(), b"ahead");
    let mut bob = Session::from_bytes(bob.to_bytes().expose_secret()).unwrap();
    assert_eq!(bob.skipped_key_count(), 2);
    assert_eq!(bob.open(&pending, at(2)).unwrap(), b"in flight");
    let mut alice = Session::from_bytes(p.alice.to_bytes().expose_secret()).unwrap();
    let reply = bob.seal(b"reply", &mut p.rng, at(3)).unwrap();
    assert_eq!(alice.open(&reply, at(3)).unwrap(), b"reply");
    assert_eq!(bob.open(&skipped, at(3)).unwrap(), b"skipped");
    let account = Account::from_bytes(p.bob_account.to_bytes().expose_secret()).unwrap();
    assert_eq!(account.signed_prekey(), p.bob_account.signed_prekey());
}

#[test]
fn setup_replay_and_one_time_prekey_reuse_are_rejected() {
    let mut p = setup(7, true);
    let first = p.alice.seal(b"0", &mut p.rng, at(1)).unwrap();
    let second = p.alice.seal(b"1", &mut p.rng, at(1)).unwrap();
    let before = p.bob_account.to_bytes();
    let mut bob = p.bob_account.accept(&first, at(1)).unwrap().session;
    assert_ne!(
        p.bob_account.to_bytes().expose_secret(),
        before.expose_secret()
    );
    assert_eq!(
        p.bob_account.accept(&first, at(1)).unwrap_err(),
        Error::Replay
    );
    assert_eq!(
        p.bob_account.accept(&second, at(1)).unwrap_err(),
        Error::Replay
    );
    assert_eq!(bob.open(&second, at(1)).unwrap(), b"1");
    assert_eq!(bob.open(&first, at(1)), Err(Error::Replay));
}
