//! An active attacker against group control messages and membership (group/control.rs,
//! group/roster.rs, group/state.rs):
//!
//! - commits that `Group::commit` would never produce (a plain member changing membership, a
//!   non-member or removed member committing), built by an independent implementation of the
//!   commit layout, first checked byte for byte against a genuine commit;
//! - a removed member's rotation racing its removal; a removed member sending or reading
//!   after its removal; a new member reading what came before it;
//! - forged, misdirected, conflicting, echoed, garbage and oversized control messages;
//! - every flipped byte of a commit or a welcome.
//!
//! Every refusal leaves the group byte-for-byte unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod group_support;
mod security_support;

use group_support::{
    Net, decode_sender_key, group_state, open_refused, push_varint, receive_refused,
};
use rand::Rng;
use sealwire_core::{
    Change, CommitOutput, ControlMessage, ControlOutcome, Error, Group, GroupConfig,
    GroupEnvelopeHeader, IdentityKeyPair, MAX_CONTROL_LEN, MemberRole, PublicIdentity,
};
use security_support::{identity_secrets, raw_sign};

fn role_wire(role: MemberRole) -> u8 {
    match role {
        MemberRole::Admin => 0,
        MemberRole::Member => 1,
        _ => unreachable!(),
    }
}

/// A signed commit control message, from the layout in control.rs:
/// `version:u8 (1) ‖ kind:varint (0) ‖ varint(len) ‖ commit ‖ signature[64]`, with
/// `commit = group id[16] ‖ epoch:varint ‖ parent hash[32] ‖ committer[32] ‖ varint(n) ‖ change*`
/// (roster.rs: `0 ‖ identity[128] ‖ role`, `1 ‖ key[32]`, `2 ‖ key[32] ‖ role`) and
/// `signature = Ed25519(committer, "sealwire/v1/group/commit" ‖ commit)`.
fn build_commit(
    group: &Group,
    committer: &IdentityKeyPair,
    epoch: u32,
    parent_hash: &[u8; 32],
    changes: &[Change],
) -> Vec<u8> {
    let mut commit = group.id().as_bytes().to_vec();
    push_varint(&mut commit, u64::from(epoch));
    commit.extend_from_slice(parent_hash);
    commit.extend_from_slice(committer.public().signing_key());
    push_varint(&mut commit, changes.len() as u64);
    for change in changes {
        match change {
            Change::Add(identity, role) => {
                commit.push(0);
                commit.extend_from_slice(&identity.to_bytes());
                commit.push(role_wire(*role));
            }
            Change::Remove(identity) => {
                commit.push(1);
                commit.extend_from_slice(identity.signing_key());
            }
            Change::SetRole(identity, role) => {
                commit.push(2);
                commit.extend_from_slice(identity.signing_key());
                commit.push(role_wire(*role));
            }
            _ => unreachable!(),
        }
    }
    let seed = identity_secrets(committer).signing_seed;
    let signature = raw_sign(
        &seed,
        &[b"sealwire/v1/group/commit".as_slice(), &commit].concat(),
    );
    let mut out = vec![1, 0];
    push_varint(&mut out, commit.len() as u64);
    out.extend_from_slice(&commit);
    out.extend_from_slice(&signature);
    out
}

/// A commit on top of `group`'s current epoch.
fn commit_on(group: &Group, committer: &IdentityKeyPair, changes: &[Change]) -> Vec<u8> {
    build_commit(
        group,
        committer,
        group.epoch() + 1,
        &group.state_hash(),
        changes,
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `i` commits `changes` and is then restored to its state before: the commit is kept aside
/// (nothing is queued), for tests that need genuine commit bytes.
fn commit_aside(net: &mut Net, i: usize, changes: &[Change]) -> CommitOutput {
    let snapshot = net.state(i);
    let now = net.now;
    let node = &mut net.nodes[i];
    let out = node
        .group
        .as_mut()
        .unwrap()
        .commit(&node.identity, changes, now)
        .unwrap();
    node.group = Some(Group::from_bytes(&snapshot).unwrap());
    out
}

/// The epoch in a group envelope's public header.
fn epoch_of(envelope: &[u8]) -> u32 {
    GroupEnvelopeHeader::parse(envelope).unwrap().epoch()
}

/// Node 0 (admin) and plain members 1..n, all in the same epoch.
fn group_of(n: usize) -> Net {
    let mut net = Net::new(n);
    for i in 1..n {
        net.add(0, i, MemberRole::Member);
    }
    net.flush();
    net
}

#[test]
fn a_plain_member_cannot_change_membership() {
    let mut net = group_of(4);
    let outsider = IdentityKeyPair::generate(&mut rand::rng());
    let (p0, p1, p2, now) = (net.public(0), net.public(1), net.public(2), net.now);

    // The builder is exact: it reproduces the admin's genuine commit.
    let add = [Change::Add(outsider.public().clone(), MemberRole::Member)];
    let built = commit_on(net.group(0), &net.nodes[0].identity, &add);
    assert_eq!(built, commit_aside(&mut net, 0, &add).commit);

    let forbidden: Vec<Vec<Change>> = vec![
        add.to_vec(),
        vec![Change::Remove(p2.clone())],
        vec![Change::Remove(p0.clone())],
        vec![Change::SetRole(p2.clone(), MemberRole::Admin)],
        vec![Change::SetRole(p1.clone(), MemberRole::Admin)],
        vec![
            Change::Remove(p1.clone()),
            Change::Add(outsider.public().clone(), MemberRole::Member),
        ],
    ];
    for changes in &forbidden {
        let commit = commit_on(net.group(1), &net.nodes[1].identity, changes);
        for i in 0..4 {
            let err = receive_refused(net.group_mut(i), &p1, &commit, now);
            assert!(
                matches!(err, Error::NotAuthorized(_)),
                "{changes:?} at {i}: {err:?}"
            );
        }
    }
    // What a plain member may do, built the same way, is accepted: leaving, rotating.
    let leave = commit_on(
        net.group(1),
        &net.nodes[1].identity,
        &[Change::Remove(p1.clone())],
    );
    let mut copy = Group::from_bytes(&net.state(0)).unwrap();
    assert!(matches!(
        copy.receive(&p1, &leave, now).unwrap(),
        ControlOutcome::EpochStarted { .. }
    ));
    let rotate = commit_on(net.group(1), &net.nodes[1].identity, &[]);
    assert!(matches!(
        net.group_mut(2).receive(&p1, &rotate, now).unwrap(),
        ControlOutcome::EpochStarted { .. }
    ));
}

#[test]
fn commits_by_non_members_and_removed_members_are_refused() {
    let mut net = group_of(4);
    let outsider = IdentityKeyPair::generate(&mut rand::rng());
    let now = net.now;
    for changes in [
        vec![],
        vec![Change::Add(outsider.public().clone(), MemberRole::Admin)],
    ] {
        let commit = commit_on(net.group(0), &outsider, &changes);
        for i in 0..4 {
            let err = receive_refused(net.group_mut(i), outsider.public(), &commit, now);
            assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
        }
    }
    // 3 is removed; it knows the new epoch's state hash, but is no longer in its member list.
    net.remove(0, 3);
    net.flush();
    assert_eq!(net.group(3).state_hash(), net.group(0).state_hash());
    let p3 = net.public(3);
    for changes in [vec![], vec![Change::Add(p3.clone(), MemberRole::Admin)]] {
        let commit = commit_on(net.group(3), &net.nodes[3].identity, &changes);
        for i in 0..4 {
            let err = receive_refused(net.group_mut(i), &p3, &commit, now);
            assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
        }
    }
}

#[test]
fn a_removed_members_concurrent_rotation_loses_and_is_refused() {
    let mut net = group_of(4);
    net.commit(0, &[Change::Remove(net.public(3))]).unwrap();
    net.commit(3, &[]).unwrap();
    let removal = vec![Change::Remove(net.public(3))];
    let (p3, now) = (net.public(3), net.now);
    net.strict = false;
    // 1 applies the removal first: the rotation then loses, and its committer is gone.
    net.deliver(0, 1);
    let rotation = net.links[3][1].front().cloned().unwrap();
    let group_support::Item::Control(rotation) = rotation else {
        panic!()
    };
    let err = receive_refused(net.group_mut(1), &p3, &rotation, now);
    assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
    net.deliver(3, 1);
    // 2 applies the rotation first, then switches to the removal.
    net.deliver(3, 2);
    net.deliver(0, 2);
    let outcomes: Vec<_> = net.nodes[2]
        .outcomes
        .iter()
        .map(|(_, o)| o.clone())
        .collect();
    assert_eq!(
        &outcomes[outcomes.len() - 2..],
        [
            ControlOutcome::EpochStarted {
                epoch: 4,
                committer: p3.clone(),
                changes: vec![],
            },
            ControlOutcome::ConflictResolved {
                epoch: 4,
                committer: net.public(0),
                changes: removal.clone(),
                abandoned_messages: 0,
            },
        ]
    );
    // The admin, and the removed member itself.
    net.deliver(3, 0);
    net.deliver(0, 3);
    assert!(matches!(
        net.nodes[0].errors[..],
        [(3, Error::NotAMember(_))]
    ));
    assert!(matches!(
        net.nodes[1].errors[..],
        [(3, Error::NotAMember(_))]
    ));
    assert!(net.nodes[2].errors.is_empty());
    assert_eq!(
        net.nodes[3].outcomes.last().unwrap().1,
        ControlOutcome::ConflictResolved {
            epoch: 4,
            committer: net.public(0),
            changes: removal,
            abandoned_messages: 0,
        }
    );
    assert!(!net.group(3).is_member());
    assert_eq!(
        net.hashes(&[0, 1, 2, 3]),
        vec![net.group(0).state_hash(); 4]
    );
}

#[test]
fn a_removed_member_reads_nothing_new_and_a_new_member_nothing_old() {
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let first = net.seal(2, b"before removal");
    net.post(2, &first);
    net.flush();
    let (p1, p2, now) = (net.public(1), net.public(2), net.now);
    // 2's chain keys (the one handed out, and the next ones) as the others hold them.
    let key = decode_sender_key(first.sender_key.unwrap().message.expose_secret());
    let mut chain_keys = vec![key.chain_key];
    for _ in 0..3 {
        let next = hmac_sha256(chain_keys.last().unwrap(), &[0x02]);
        chain_keys.push(next);
    }
    let holds = |state: &[u8]| {
        chain_keys
            .iter()
            .any(|ck| state.windows(32).any(|w| w == ck))
    };
    assert!(holds(&net.state(0)) && holds(&net.state(1)));
    // 0 removes 2; 1 processes it, 2 not yet. Both revoke 2's receiving chains at once (they
    // are kept, unusable, until their epoch is erased, so that a commit switch that undoes the
    // removal can restore them).
    net.remove(0, 2);
    net.deliver(0, 1);

    // 2, unaware, sends in its last epoch: refused by those who processed the removal,
    // envelope and sender key alike.
    let late = net.seal(2, b"after removal");
    assert!(late.sender_key.is_none());
    let err = open_refused(net.group_mut(1), &late.envelope, now);
    assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
    let err = open_refused(net.group_mut(0), &late.envelope, now);
    assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
    let mut rng = rand::rng();
    let again = net.group_mut(2).sender_key_message(&mut rng).unwrap();
    let err = receive_refused(net.group_mut(1), &p2, again.message.expose_secret(), now);
    assert!(matches!(err, Error::NotAMember(_)), "{err:?}");

    // 1 sends after the removal: its sender key is not for 2, and 2 cannot open it, neither
    // before nor after processing its removal, even if handed the key.
    let after = net.seal(1, b"secret from 2");
    let key = after.sender_key.clone().unwrap();
    assert!(!key.recipients.contains(&p2));
    assert_eq!(key.recipients, vec![net.public(0)]);
    assert_eq!(
        open_refused(net.group_mut(2), &after.envelope, now),
        Error::EpochAhead {
            epoch: 3,
            current: 2
        }
    );
    assert_eq!(
        net.group_mut(2)
            .receive(&p1, key.message.expose_secret(), now)
            .unwrap(),
        ControlOutcome::SenderKeyPending { epoch: 3 }
    );
    net.deliver(0, 2);
    assert!(!net.group(2).is_member());
    for _ in 0..2 {
        let err = open_refused(net.group_mut(2), &after.envelope, now);
        assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
        let err = receive_refused(net.group_mut(2), &p1, key.message.expose_secret(), now);
        assert!(matches!(err, Error::NotAMember(_)), "{err:?}");
    }

    // 3 joins after: it cannot read epoch 3 (or 2), envelope or sender key.
    net.post(1, &after);
    net.add(0, 3, MemberRole::Member);
    net.flush();
    assert_eq!(net.group(3).epoch(), 4);
    for (envelope, key) in [(&after.envelope, &key), (&late.envelope, &again)] {
        let epoch = epoch_of(envelope);
        assert_eq!(
            open_refused(net.group_mut(3), envelope, now),
            Error::UnknownEpoch { epoch }
        );
        let from = if epoch == 3 { &p1 } else { &p2 };
        assert_eq!(
            receive_refused(net.group_mut(3), from, key.message.expose_secret(), now),
            Error::UnknownEpoch { epoch }
        );
    }
    assert!(
        net.nodes[2]
            .opened
            .iter()
            .all(|(_, m)| m != b"secret from 2")
    );
    assert!(net.nodes[3].opened.is_empty());
    assert_eq!(
        net.nodes[0].opened.last().unwrap(),
        &(1, b"secret from 2".to_vec())
    );

    // Once the epochs 2 sent in are past `past_epoch_secs`, its chain keys are erased.
    assert!(holds(&net.state(0)) && holds(&net.state(1)));
    net.now = net
        .now
        .plus_secs(sealwire_core::GroupConfig::default().past_epoch_secs);
    net.send(0, b"a week later");
    net.flush();
    assert!(!holds(&net.state(0)) && !holds(&net.state(1)));
}

#[test]
fn forged_misdirected_and_echoed_control_messages_are_refused() {
    // 0, 1 and 2 are members; 3 is not.
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let (p0, p1, p2, p3, now) = (
        net.public(0),
        net.public(1),
        net.public(2),
        net.public(3),
        net.now,
    );

    // A commit whose signature does not verify.
    let rotation = commit_aside(&mut net, 0, &[]).commit;
    for position in [rotation.len() - 1, rotation.len() - 64] {
        let mut bad = rotation.clone();
        bad[position] ^= 0x01;
        assert!(matches!(
            receive_refused(net.group_mut(1), &p0, &bad, now),
            Error::InvalidSignature(_)
        ));
    }

    // Control messages and envelopes of another group.
    let mut rng = rand::rng();
    let mut other = Group::create(
        &net.nodes[0].identity,
        GroupConfig::default(),
        &mut rng,
        now,
    )
    .unwrap();
    let foreign = other
        .commit(
            &net.nodes[0].identity,
            &[Change::Add(p1.clone(), MemberRole::Member)],
            now,
        )
        .unwrap();
    let mut other1 = Group::join(
        &p1,
        &p0,
        foreign.welcome.as_ref().unwrap(),
        GroupConfig::default(),
        now,
    )
    .unwrap();
    let foreign_rotation = other.commit(&net.nodes[0].identity, &[], now).unwrap();
    let foreign_sealed = other.seal(b"other group", &mut rng, now).unwrap();
    let g1 = net.group_mut(1);
    assert_eq!(
        receive_refused(g1, &p0, &foreign_rotation.commit, now),
        Error::WrongGroup
    );
    let foreign_key = foreign_sealed
        .sender_key
        .as_ref()
        .unwrap()
        .message
        .expose_secret();
    assert_eq!(
        receive_refused(g1, &p0, foreign_key, now),
        Error::WrongGroup
    );
    assert_eq!(
        open_refused(g1, &foreign_sealed.envelope, now),
        Error::WrongGroup
    );
    assert_eq!(
        other1.receive(&p0, &foreign_rotation.commit, now).unwrap(),
        ControlOutcome::EpochStarted {
            epoch: 2,
            committer: p0.clone(),
            changes: vec![],
        }
    );

    // A welcome not from its committer; a welcome that does not add its receiver; a welcome
    // given to `receive`; a commit given to `join`.
    let added = commit_aside(&mut net, 0, &[Change::Add(p3.clone(), MemberRole::Member)]);
    let welcome = added.welcome.unwrap();
    let me = &p3;
    let join = |from: &PublicIdentity, me: &PublicIdentity, bytes: &[u8]| {
        Group::join(me, from, bytes, GroupConfig::default(), now).unwrap_err()
    };
    assert!(matches!(join(&p1, me, &welcome), Error::NotAuthorized(_)));
    assert!(matches!(join(&p0, &p2, &welcome), Error::InvalidChange(_)));
    assert!(matches!(
        join(&p0, me, &added.commit),
        Error::UnexpectedKind(_)
    ));
    assert!(matches!(
        receive_refused(net.group_mut(2), &p0, &welcome, now),
        Error::UnexpectedKind(_)
    ));
    assert!(Group::join(me, &p0, &welcome, GroupConfig::default(), now).is_ok());

    // Sender keys: from a non-member; 1's key attributed to 2 at 2 itself; a second, different
    // key for the same member and epoch (1 restored from a backup draws a new one).
    let snapshot = net.state(1);
    let first = net.seal(1, b"first");
    let first_key = first.sender_key.unwrap().message;
    net.nodes[1].group = Some(Group::from_bytes(&snapshot).unwrap());
    let second = net.seal(1, b"second");
    let second_key = second.sender_key.unwrap().message;
    let g2 = net.group_mut(2);
    assert!(matches!(
        receive_refused(g2, &p3, first_key.expose_secret(), now),
        Error::NotAMember(_)
    ));
    assert!(matches!(
        receive_refused(g2, &p2, first_key.expose_secret(), now),
        Error::UnexpectedKind(_)
    ));
    assert!(matches!(
        g2.receive(&p1, first_key.expose_secret(), now).unwrap(),
        ControlOutcome::SenderKeyAdded { .. }
    ));
    assert_eq!(
        receive_refused(g2, &p1, second_key.expose_secret(), now),
        Error::SenderKeyConflict
    );
    assert_eq!(
        g2.receive(&p1, first_key.expose_secret(), now).unwrap(),
        ControlOutcome::Duplicate
    );
    assert!(matches!(
        open_refused(g2, &second.envelope, now),
        Error::DecryptFailed | Error::InvalidSignature(_)
    ));
    assert_eq!(g2.open(&first.envelope, now).unwrap().plaintext, b"first");

    // Echoes: 1's own envelope and own sender key.
    let g1 = net.group_mut(1);
    assert!(matches!(
        open_refused(g1, &second.envelope, now),
        Error::UnexpectedKind(_)
    ));
    assert!(matches!(
        receive_refused(g1, &p1, second_key.expose_secret(), now),
        Error::UnexpectedKind(_)
    ));
}

#[test]
fn garbage_and_oversized_control_messages_get_typed_errors() {
    let mut net = group_of(2);
    let (p0, p1, now) = (net.public(0), net.public(1), net.now);
    let rotation = net.commit(0, &[]).unwrap().commit;
    net.drop_link(0, 1);
    let mut oversized = rotation.clone();
    oversized.resize(MAX_CONTROL_LEN + 1, 0);
    let mut trailing = rotation.clone();
    trailing.push(0);
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (vec![], Error::Malformed("group control message (empty)")),
        (vec![2, 0], Error::UnsupportedVersion(2)),
        (
            [&[0u8][..], &rotation[1..]].concat(),
            Error::UnsupportedVersion(0),
        ),
        (vec![1], Error::Malformed("group control message")),
        (vec![1, 3, 0, 0], Error::Malformed("group control message")),
        (vec![1; 300], Error::Malformed("group control message")),
        (
            rotation[..rotation.len() - 1].to_vec(),
            Error::Malformed("group control message"),
        ),
        (trailing, Error::Malformed("group control message")),
        (
            oversized,
            Error::TooLarge {
                what: "group control message",
                len: MAX_CONTROL_LEN + 1,
                max: MAX_CONTROL_LEN,
            },
        ),
    ];
    for (bytes, expected) in &cases {
        assert_eq!(
            &receive_refused(net.group_mut(1), &p0, bytes, now),
            expected,
            "{:?}",
            &bytes[..bytes.len().min(8)]
        );
        assert_eq!(
            &Group::join(&p1, &p0, bytes, GroupConfig::default(), now).unwrap_err(),
            expected
        );
        assert_eq!(&ControlMessage::parse(bytes).unwrap_err(), expected);
    }
    // Random bytes behind a valid version: never a panic, always a typed refusal.
    let mut rng = rand::rng();
    for len in 1..200 {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes[0] = 1;
        let err = receive_refused(net.group_mut(1), &p0, &bytes, now);
        assert!(
            matches!(
                err,
                Error::Malformed(_) | Error::WrongGroup | Error::UnexpectedKind(_)
            ),
            "{err:?}"
        );
    }
    assert!(matches!(
        net.group_mut(1).receive(&p0, &rotation, now).unwrap(),
        ControlOutcome::EpochStarted { epoch: 2, .. }
    ));
}

#[test]
fn every_flipped_byte_of_a_commit_or_a_welcome_is_refused() {
    // 0 and 1 are members; 0 adds 2.
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.flush();
    let (p0, p2, now) = (net.public(0), net.public(2), net.now);
    let out = commit_aside(&mut net, 0, &[Change::Add(p2.clone(), MemberRole::Member)]);
    let g = net.group_mut(1);
    for position in 0..out.commit.len() {
        let mut bad = out.commit.clone();
        bad[position] ^= [0x01u8, 0x80, 0xff][position % 3];
        let before = group_state(g);
        assert!(g.receive(&p0, &bad, now).is_err(), "commit byte {position}");
        assert_eq!(group_state(g), before);
    }
    // (Each join verifies every identity, slow in debug builds: every third byte.)
    let welcome = out.welcome.unwrap();
    let me = &p2;
    for position in (0..welcome.len()).step_by(3) {
        let mut bad = welcome.clone();
        bad[position] ^= [0x01u8, 0x80, 0xff][position % 9 / 3];
        assert!(
            Group::join(me, &p0, &bad, GroupConfig::default(), now).is_err(),
            "welcome byte {position}"
        );
    }
    assert!(matches!(
        g.receive(&p0, &out.commit, now).unwrap(),
        ControlOutcome::EpochStarted { epoch: 2, .. }
    ));
    let joined = Group::join(me, &p0, &welcome, GroupConfig::default(), now).unwrap();
    assert_eq!(joined.state_hash(), g.state_hash());
}
