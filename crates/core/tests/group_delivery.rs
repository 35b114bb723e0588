//! Group messaging, delivery: sender keys that arrive before their commit or after their
//! envelope, envelopes and commits from the future (`EpochAhead`), out-of-order delivery
//! within the bounds, `max_forward_jump`,
//! eviction and expiry of skipped keys (stale vs replay), retention of superseded epochs by
//! count and by age, and persistence (round trip mid-conversation, corrupted state).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod group_support;

use group_support::{Net, at, config, open_refused, receive_refused};
use sealwire_core::{ControlOutcome, Error, Group, GroupConfig, GroupSealed, MemberRole};

/// Node 0 (admin) and node 1 (member) in epoch 1; node 0 seals `count` messages, node 1
/// receives the sender key. Returns the sealed messages (counters 0..count).
fn burst(config: GroupConfig, count: usize) -> (Net, Vec<GroupSealed>) {
    let mut net = Net::with_config(2, config);
    net.add(0, 1, MemberRole::Member);
    net.flush();
    let sealed: Vec<GroupSealed> = (0..count)
        .map(|i| net.seal(0, format!("message {i}").as_bytes()))
        .collect();
    let key = sealed[0]
        .sender_key
        .as_ref()
        .unwrap()
        .message
        .expose_secret();
    let (zero, now) = (net.public(0), net.now);
    net.group_mut(1).receive(&zero, key, now).unwrap();
    (net, sealed)
}

fn open_ok(net: &mut Net, i: usize, sealed: &GroupSealed, want: usize) {
    let now = net.now;
    let opened = net.group_mut(i).open(&sealed.envelope, now).unwrap();
    assert_eq!(opened.plaintext, format!("message {want}").as_bytes());
}

#[test]
fn a_sender_key_that_arrives_before_its_commit_waits_for_it() {
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let commit = net.commit(0, &[]).unwrap();
    assert_eq!(commit.epoch, 3);
    net.step(0, 1);
    assert_eq!(net.group(1).epoch(), 3);
    // 1 sends in epoch 3; 2 gets the sender key and the envelope before the commit.
    let sealed = net.seal(1, b"early");
    let key = sealed.sender_key.clone().unwrap();
    let (one, now) = (net.public(1), net.now);
    let before = net.state(2);
    assert_eq!(
        net.group_mut(2)
            .receive(&one, key.message.expose_secret(), now)
            .unwrap(),
        ControlOutcome::SenderKeyPending { epoch: 3 }
    );
    assert_ne!(net.state(2), before, "the pending key is kept");
    assert_eq!(
        open_refused(net.group_mut(2), &sealed.envelope, now),
        Error::EpochAhead {
            epoch: 3,
            current: 2
        }
    );
    // The same pending key again is kept once.
    let pending = net.state(2);
    net.group_mut(2)
        .receive(&one, key.message.expose_secret(), now)
        .unwrap();
    assert_eq!(net.state(2), pending);

    // The commit arrives: the pending key is installed with it.
    net.step(0, 2);
    assert_eq!(net.group(2).epoch(), 3);
    let opened = net.group_mut(2).open(&sealed.envelope, now).unwrap();
    assert_eq!(opened.plaintext, b"early");
    assert_eq!(opened.sender, one);
    assert_eq!(opened.epoch, 3);
    assert_eq!(
        net.group_mut(2)
            .receive(&one, key.message.expose_secret(), now)
            .unwrap(),
        ControlOutcome::Duplicate
    );
}

#[test]
fn an_envelope_before_its_sender_key_waits_for_it() {
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let sealed = net.seal(2, b"overtook its key");
    let sender_index = net
        .group(0)
        .members()
        .iter()
        .position(|m| m.identity() == &net.public(2))
        .unwrap() as u32;
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(0), &sealed.envelope, now),
        Error::MissingSenderKey {
            epoch: 2,
            sender: sender_index
        }
    );
    let key = sealed.sender_key.unwrap();
    assert_eq!(key.recipients.len(), 2);
    let two = net.public(2);
    assert_eq!(
        net.group_mut(0)
            .receive(&two, key.message.expose_secret(), now)
            .unwrap(),
        ControlOutcome::SenderKeyAdded {
            epoch: 2,
            sender: two.clone()
        }
    );
    let opened = net.group_mut(0).open(&sealed.envelope, now).unwrap();
    assert_eq!(
        (opened.sender, opened.plaintext),
        (two, b"overtook its key".to_vec())
    );
}

#[test]
fn envelopes_and_commits_from_the_future_are_epoch_ahead() {
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let first = net.commit(0, &[]).unwrap().commit;
    let second = net.commit(0, &[]).unwrap().commit;
    let (zero, now, hash) = (net.public(0), net.now, net.group(0).state_hash());
    let g = net.group_mut(1);
    assert_eq!(
        receive_refused(g, &zero, &second, now),
        Error::EpochAhead {
            epoch: 4,
            current: 2
        }
    );
    assert!(matches!(
        g.receive(&zero, &first, now).unwrap(),
        ControlOutcome::EpochStarted { epoch: 3, .. }
    ));
    assert_eq!(
        g.receive(&zero, &first, now).unwrap(),
        ControlOutcome::Duplicate
    );
    assert!(matches!(
        g.receive(&zero, &second, now).unwrap(),
        ControlOutcome::EpochStarted { epoch: 4, .. }
    ));
    assert_eq!(g.state_hash(), hash);
    // An envelope of epoch 4 at a member still in epoch 2.
    let sealed = net.seal(1, b"from epoch 4");
    assert_eq!(
        open_refused(net.group_mut(2), &sealed.envelope, now),
        Error::EpochAhead {
            epoch: 4,
            current: 2
        }
    );
    net.drop_link(0, 1);
    net.post(1, &sealed);
    net.flush();
    assert_eq!(net.nodes[2].opened, vec![(1, b"from epoch 4".to_vec())]);
}

#[test]
fn a_missed_commit_or_welcome_is_sent_again() {
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    // 2 misses 0's rotation, then gets 1's, which builds on it.
    let first = net.commit(0, &[]).unwrap();
    net.drop_link(0, 2);
    net.deliver(0, 1);
    let second = net.commit(1, &[]).unwrap();
    let (p1, now) = (net.public(1), net.now);
    assert_eq!(
        receive_refused(net.group_mut(2), &p1, &second.commit, now),
        Error::EpochAhead {
            epoch: 4,
            current: 2
        }
    );
    // Any member holding epoch 3 resends its commit, byte for byte.
    let resent = net.group(1).commit_message(3).unwrap();
    assert_eq!(resent, first.commit);
    assert_eq!(net.group(0).commit_message(3).unwrap(), first.commit);
    assert!(
        net.group(1).commit_message(0).is_none(),
        "epoch 0 has no commit"
    );
    assert!(net.group(1).commit_message(5).is_none());
    let g = net.group_mut(2);
    assert!(matches!(
        g.receive(&p1, &resent, now).unwrap(),
        ControlOutcome::EpochStarted { epoch: 3, .. }
    ));
    assert_eq!(
        g.receive(&p1, &resent, now).unwrap(),
        ControlOutcome::Duplicate
    );
    net.flush();
    assert_eq!(net.hashes(&[0, 1, 2]), vec![net.group(1).state_hash(); 3]);

    // 3's welcome is lost; only its committer can resend it.
    let out = net.add(0, 3, MemberRole::Member);
    assert_eq!(net.drop_link(0, 3).len(), 1);
    net.flush();
    assert!(net.group(1).welcome_message(5).is_none());
    let welcome = net.group(0).welcome_message(5).unwrap();
    assert_eq!(Some(&welcome), out.welcome.as_ref());
    net.links[0][3].push_back(group_support::Item::Control(welcome));
    net.flush();
    assert_eq!(
        net.hashes(&[0, 1, 2, 3]),
        vec![net.group(0).state_hash(); 4]
    );
}

#[test]
fn out_of_order_within_bounds_then_replays_are_refused() {
    let (mut net, sealed) = burst(GroupConfig::default(), 6);
    for i in [5, 0, 3, 1, 4, 2] {
        open_ok(&mut net, 1, &sealed[i], i);
    }
    let now = net.now;
    for s in &sealed {
        assert_eq!(
            open_refused(net.group_mut(1), &s.envelope, now),
            Error::Replay
        );
    }
}

#[test]
fn a_jump_beyond_max_forward_jump_is_too_far_ahead() {
    let (mut net, sealed) = burst(config(|c| c.max_forward_jump = 5), 8);
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(1), &sealed[6].envelope, now),
        Error::TooFarAhead { jump: 6, max: 5 }
    );
    open_ok(&mut net, 1, &sealed[5], 5);
    open_ok(&mut net, 1, &sealed[7], 7);
    for i in [6, 0, 4] {
        open_ok(&mut net, 1, &sealed[i], i);
    }
}

#[test]
fn evicted_skipped_keys_are_stale_used_ones_are_replays() {
    let cfg = config(|c| {
        c.max_skipped_per_sender = 2;
        c.max_skipped_per_epoch = 2;
    });
    let (mut net, sealed) = burst(cfg, 6);
    // Opening 5 skips 0..=4; only the newest two keys (3, 4) are kept.
    open_ok(&mut net, 1, &sealed[5], 5);
    let now = net.now;
    for i in [0, 1, 2] {
        assert_eq!(
            open_refused(net.group_mut(1), &sealed[i].envelope, now),
            Error::StaleMessage,
            "evicted {i}"
        );
    }
    open_ok(&mut net, 1, &sealed[3], 3);
    for i in [3, 5] {
        assert_eq!(
            open_refused(net.group_mut(1), &sealed[i].envelope, now),
            Error::Replay,
            "used {i}"
        );
    }
    open_ok(&mut net, 1, &sealed[4], 4);
}

#[test]
fn per_epoch_skipped_key_cap_spans_senders() {
    let cfg = config(|c| {
        c.max_skipped_per_sender = 3;
        c.max_skipped_per_epoch = 4;
    });
    let mut net = Net::with_config(3, cfg);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let from0: Vec<_> = (0..4)
        .map(|i| net.seal(0, format!("0:{i}").as_bytes()))
        .collect();
    let from1: Vec<_> = (0..4)
        .map(|i| net.seal(1, format!("1:{i}").as_bytes()))
        .collect();
    let now = net.now;
    let (zero, one) = (net.public(0), net.public(1));
    let g = net.group_mut(2);
    g.receive(
        &zero,
        from0[0]
            .sender_key
            .as_ref()
            .unwrap()
            .message
            .expose_secret(),
        now,
    )
    .unwrap();
    g.receive(
        &one,
        from1[0]
            .sender_key
            .as_ref()
            .unwrap()
            .message
            .expose_secret(),
        now,
    )
    .unwrap();
    // Three keys skipped for 0, then three for 1: the epoch cap (4) evicts 0's two oldest.
    g.open(&from0[3].envelope, now).unwrap();
    g.open(&from1[3].envelope, now).unwrap();
    for stale in [&from0[0], &from0[1]] {
        assert_eq!(open_refused(g, &stale.envelope, now), Error::StaleMessage);
    }
    for (i, s) in [
        (2, &from0[2]),
        (0, &from1[0]),
        (1, &from1[1]),
        (2, &from1[2]),
    ] {
        assert!(g.open(&s.envelope, now).is_ok(), "{i}");
    }
}

#[test]
fn skipped_keys_expire_after_past_epoch_secs() {
    let (mut net, sealed) = burst(config(|c| c.past_epoch_secs = 100), 3);
    open_ok(&mut net, 1, &sealed[2], 2);
    net.now = at(99);
    open_ok(&mut net, 1, &sealed[0], 0);
    net.now = at(100);
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(1), &sealed[1].envelope, now),
        Error::StaleMessage
    );
}

/// Node 0 (admin), 1 and 2; node 1 seals `late` messages in epoch 2 that reach node 2 (and
/// node 0) only later; both receive node 1's sender key now.
fn late_messages(config: GroupConfig, late: usize) -> (Net, Vec<GroupSealed>) {
    let mut net = Net::with_config(3, config);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let sealed: Vec<GroupSealed> = (0..late)
        .map(|i| net.seal(1, format!("message {i}").as_bytes()))
        .collect();
    let key = sealed[0]
        .sender_key
        .as_ref()
        .unwrap()
        .message
        .expose_secret();
    let (one, now) = (net.public(1), net.now);
    for i in [0, 2] {
        net.group_mut(i).receive(&one, key, now).unwrap();
    }
    (net, sealed)
}

#[test]
fn a_late_message_of_a_past_epoch_opens_until_max_past_epochs_more_commits() {
    let (mut net, sealed) = late_messages(config(|c| c.max_past_epochs = 2), 3);
    net.commit(0, &[]).unwrap();
    net.flush();
    assert_eq!(net.group(2).epoch(), 3);
    open_ok(&mut net, 2, &sealed[0], 0);
    net.commit(0, &[]).unwrap();
    net.flush();
    open_ok(&mut net, 2, &sealed[1], 1);
    net.commit(0, &[]).unwrap();
    net.flush();
    assert_eq!(net.group(2).epoch(), 5);
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(2), &sealed[2].envelope, now),
        Error::UnknownEpoch { epoch: 2 }
    );
}

#[test]
fn the_committer_also_forgets_epochs_beyond_max_past_epochs() {
    let (mut net, sealed) = late_messages(config(|c| c.max_past_epochs = 2), 1);
    for _ in 0..3 {
        net.commit(0, &[]).unwrap();
    }
    let now = net.now;
    assert_eq!(net.group(0).epoch(), 5);
    assert_eq!(
        open_refused(net.group_mut(0), &sealed[0].envelope, now),
        Error::UnknownEpoch { epoch: 2 }
    );
}

#[test]
fn a_late_message_of_a_past_epoch_opens_until_past_epoch_secs() {
    let (mut net, sealed) = late_messages(config(|c| c.past_epoch_secs = 1_000), 2);
    net.now = at(10);
    net.commit(0, &[]).unwrap();
    net.flush();
    // Epoch 2 was superseded at 10 at node 2: held until 1 009.
    net.now = at(1_009);
    open_ok(&mut net, 2, &sealed[0], 0);
    // Any later operation applies the bound.
    net.now = at(1_010);
    net.send(2, b"later");
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(2), &sealed[1].envelope, now),
        Error::UnknownEpoch { epoch: 2 }
    );
}

#[test]
fn a_superseded_epoch_past_its_age_is_unknown_even_without_other_activity() {
    let (mut net, sealed) = late_messages(config(|c| c.past_epoch_secs = 1_000), 1);
    net.now = at(10);
    net.commit(0, &[]).unwrap();
    net.flush();
    net.now = at(5_000);
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(2), &sealed[0].envelope, now),
        Error::UnknownEpoch { epoch: 2 }
    );
}

#[test]
fn a_group_restored_mid_conversation_continues() {
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    net.send(1, b"hello");
    net.flush();
    // Node 2 holds skipped keys of node 0 and a pending sender key of node 1 for epoch 3.
    let sealed: Vec<_> = (0..3)
        .map(|i| net.seal(0, format!("message {i}").as_bytes()))
        .collect();
    let (zero, one, now) = (net.public(0), net.public(1), net.now);
    let key = sealed[0]
        .sender_key
        .as_ref()
        .unwrap()
        .message
        .expose_secret();
    net.group_mut(2).receive(&zero, key, now).unwrap();
    open_ok(&mut net, 2, &sealed[2], 2);
    let commit = net.commit(0, &[]).unwrap();
    net.deliver(0, 1);
    let early = net.seal(1, b"epoch 3");
    let early_key = early.sender_key.as_ref().unwrap().message.expose_secret();
    net.group_mut(2).receive(&one, early_key, now).unwrap();

    let saved = net.group(2).to_bytes();
    let restored = Group::from_bytes(saved.expose_secret()).unwrap();
    assert_eq!(restored.to_bytes().expose_secret(), saved.expose_secret());
    let original = net.group(2);
    assert_eq!(restored.id(), original.id());
    assert_eq!(restored.epoch(), original.epoch());
    assert_eq!(restored.members(), original.members());
    assert_eq!(restored.state_hash(), original.state_hash());
    assert_eq!(restored.config(), original.config());
    assert_eq!(restored.own_identity(), original.own_identity());
    net.nodes[2].group = Some(restored);

    // The restored group opens a skipped message, refuses a replay, takes the commit (which
    // installs the pending key) and opens the early message.
    open_ok(&mut net, 2, &sealed[0], 0);
    assert_eq!(
        open_refused(net.group_mut(2), &sealed[2].envelope, now),
        Error::Replay
    );
    net.group_mut(2)
        .receive(&zero, &commit.commit, now)
        .unwrap();
    net.drop_link(0, 2);
    assert_eq!(
        net.group_mut(2)
            .open(&early.envelope, now)
            .unwrap()
            .plaintext,
        b"epoch 3"
    );
    net.send(2, b"after restore");
    net.flush();
    assert_eq!(
        net.nodes[0].opened.last().unwrap(),
        &(2, b"after restore".to_vec())
    );
    assert_eq!(
        net.nodes[1].opened.last().unwrap(),
        &(2, b"after restore".to_vec())
    );
    assert_eq!(net.hashes(&[0, 1, 2]), vec![net.group(0).state_hash(); 3]);
}

#[test]
fn corrupted_truncated_or_foreign_version_state_is_refused() {
    let mut net = Net::new(2);
    net.add(0, 1, MemberRole::Member);
    net.flush();
    net.send(0, b"hello");
    net.send(1, b"hi");
    net.flush();
    let saved = net.state(1);
    assert_eq!(saved[0], 1, "state format version 1 (a one-byte varint)");

    for len in 0..saved.len() {
        assert!(
            matches!(
                Group::from_bytes(&saved[..len]),
                Err(Error::InvalidState(_))
            ),
            "truncated to {len}"
        );
    }
    let mut extended = saved.clone();
    extended.push(0);
    assert_eq!(
        Group::from_bytes(&extended).unwrap_err(),
        Error::InvalidState("trailing bytes")
    );
    for version in [0u8, 2, 0x7f] {
        let mut other = saved.clone();
        other[0] = version;
        assert_eq!(
            Group::from_bytes(&other).unwrap_err(),
            Error::UnsupportedStateVersion(u16::from(version))
        );
    }
    // The own identity (after the version and the 16-byte id) must verify.
    for offset in [1 + 16, 1 + 16 + 127] {
        let mut bad = saved.clone();
        bad[offset] ^= 0x01;
        assert!(matches!(
            Group::from_bytes(&bad),
            Err(Error::InvalidState(_))
        ));
    }
    // Any single flipped byte: a typed refusal or a state that parses, never a panic. (Each
    // restore verifies every identity, slow in debug builds: every other position, one bit
    // pattern each, in turn.)
    let mut refused = 0;
    for position in (0..saved.len()).step_by(2) {
        let pattern = [0x01u8, 0x80, 0xff][position % 3];
        let mut bad = saved.clone();
        bad[position] ^= pattern;
        match Group::from_bytes(&bad) {
            Ok(_) => {}
            Err(Error::InvalidState(_) | Error::UnsupportedStateVersion(_)) => refused += 1,
            Err(other) => panic!("byte {position} ^ {pattern:#x}: {other:?}"),
        }
    }
    assert!(refused > saved.len() / 4, "only {refused} refusals");
    // The intact state still restores.
    assert!(Group::from_bytes(&saved).is_ok());
}
