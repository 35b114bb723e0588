//! Group messaging, functional: membership flows (create, add, remove, roles, leaving),
//! rotation by any member and the rotation policy, and the whole control plane carried over
//! real pairwise sessions. Delivery order, bounds, retention and persistence are in
//! `group_delivery.rs`; concurrent commits in `group_conflicts.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod group_support;

use std::collections::{BTreeMap, BTreeSet};

use group_support::{Net, T0, at, config, decode_sender_key};
use sealwire_core::{
    Account, BundlePolicy, Change, CommitOutput, ControlOutcome, Error, Group, GroupConfig,
    GroupSealed, IdentityKeyPair, MemberRole, PublicIdentity, Session, SessionConfig,
};

fn identities(out: &CommitOutput) -> BTreeSet<[u8; 32]> {
    out.commit_recipients
        .iter()
        .map(|id| *id.signing_key())
        .collect()
}

fn keys(net: &Net, nodes: &[usize]) -> BTreeSet<[u8; 32]> {
    nodes
        .iter()
        .map(|&i| *net.public(i).signing_key())
        .collect()
}

/// The last control outcome node `i` recorded.
fn last_outcome(net: &Net, i: usize) -> ControlOutcome {
    net.nodes[i].outcomes.last().unwrap().1.clone()
}

#[test]
fn create_add_set_role_and_remove() {
    let mut net = Net::new(4);
    let founder = net.group(0);
    assert_eq!(founder.epoch(), 0);
    assert!(founder.is_member());
    assert_eq!(founder.members().len(), 1);
    assert_eq!(founder.role_of(&net.public(0)), Some(MemberRole::Admin));
    assert_eq!(founder.role_of(&net.public(1)), None);
    assert_eq!(founder.own_identity(), &net.public(0));

    // Adding to a group of one: nobody gets the commit, the new member gets the welcome.
    let out = net.add(0, 1, MemberRole::Member);
    assert_eq!(out.epoch, 1);
    assert!(out.commit_recipients.is_empty());
    assert_eq!(out.welcome_recipients, vec![net.public(1)]);
    assert!(out.welcome.is_some());
    net.flush();
    assert_eq!(net.group(1).epoch(), 1);
    assert_eq!(net.group(1).id(), net.group(0).id());
    assert_eq!(net.group(1).state_hash(), net.group(0).state_hash());
    assert_eq!(
        net.group(1).role_of(&net.public(1)),
        Some(MemberRole::Member)
    );

    let out = net.add(0, 2, MemberRole::Member);
    assert_eq!(identities(&out), keys(&net, &[1]));
    net.flush();
    assert_eq!(
        last_outcome(&net, 1),
        ControlOutcome::EpochStarted {
            epoch: 2,
            committer: net.public(0),
            changes: vec![Change::Add(net.public(2), MemberRole::Member)],
        }
    );

    // Promote 1; the promotion lets it add 3.
    net.commit(0, &[Change::SetRole(net.public(1), MemberRole::Admin)])
        .unwrap();
    net.flush();
    let promoted = ControlOutcome::EpochStarted {
        epoch: 3,
        committer: net.public(0),
        changes: vec![Change::SetRole(net.public(1), MemberRole::Admin)],
    };
    assert_eq!(last_outcome(&net, 1), promoted);
    assert_eq!(last_outcome(&net, 2), promoted);
    for i in 0..3 {
        assert_eq!(
            net.group(i).role_of(&net.public(1)),
            Some(MemberRole::Admin)
        );
    }
    net.add(1, 3, MemberRole::Member);
    net.flush();
    assert_eq!(
        net.hashes(&[0, 1, 2, 3]),
        vec![net.group(0).state_hash(); 4]
    );

    // 1 removes 2: the removed member gets the commit too, to learn of its removal.
    let out = net.remove(1, 2);
    assert_eq!(identities(&out), keys(&net, &[0, 2, 3]));
    assert!(out.welcome.is_none());
    net.flush();
    let removal = ControlOutcome::EpochStarted {
        epoch: 5,
        committer: net.public(1),
        changes: vec![Change::Remove(net.public(2))],
    };
    for i in [0, 2, 3] {
        assert_eq!(last_outcome(&net, i), removal);
    }
    assert!(!net.group(2).is_member());
    assert_eq!(net.hashes(&[0, 1, 3]), vec![net.group(2).state_hash(); 3]);
    let roster: BTreeSet<_> = net
        .group(0)
        .members()
        .iter()
        .map(|m| *m.identity().signing_key())
        .collect();
    assert_eq!(roster, keys(&net, &[0, 1, 3]));
    // Members are sorted by identity key.
    let members = net.group(3).members();
    assert!(
        members
            .windows(2)
            .all(|p| p[0].identity().signing_key() < p[1].identity().signing_key())
    );

    // The removed member can neither send nor commit; the others talk without it.
    let now = net.now;
    let Net { nodes, rng, .. } = &mut net;
    let node = &mut nodes[2];
    let removed = node.group.as_mut().unwrap();
    assert!(matches!(
        removed.seal(b"x", rng, now),
        Err(Error::NotAMember(_))
    ));
    assert!(matches!(
        removed.commit(&node.identity, &[], now),
        Err(Error::NotAMember(_))
    ));
    net.send(3, b"without 2");
    net.flush();
    assert_eq!(
        net.nodes[0].opened.last().unwrap(),
        &(3, b"without 2".to_vec())
    );
    assert_eq!(
        net.nodes[1].opened.last().unwrap(),
        &(3, b"without 2".to_vec())
    );
    assert!(!net.nodes[2].opened.iter().any(|(_, m)| m == b"without 2"));
}

#[test]
fn invalid_commits_are_refused_locally_and_change_nothing() {
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Member);
    net.flush();
    let before = net.state(0);
    let (one, three) = (net.public(1), net.public(3));
    let refused = [
        (
            vec![Change::Add(one.clone(), MemberRole::Admin)],
            "added member already present",
        ),
        (vec![Change::Remove(three.clone())], "not a member"),
        (
            vec![Change::SetRole(three.clone(), MemberRole::Admin)],
            "not a member",
        ),
        (
            vec![Change::SetRole(one.clone(), MemberRole::Member)],
            "role is unchanged",
        ),
        (vec![Change::Remove(net.public(0))], "no admin"),
        (
            vec![Change::SetRole(net.public(0), MemberRole::Member)],
            "no admin",
        ),
        (
            vec![
                Change::Add(three.clone(), MemberRole::Member),
                Change::SetRole(three.clone(), MemberRole::Admin),
            ],
            "two changes",
        ),
    ];
    for (changes, why) in refused {
        match net.commit(0, &changes) {
            Err(Error::InvalidChange(message)) => {
                assert!(message.contains(why), "{changes:?}: {message}")
            }
            other => panic!("{changes:?}: expected InvalidChange, got {other:?}"),
        }
        assert_eq!(net.state(0), before, "{changes:?} changed the group");
    }
    // Another identity than the group's own.
    let now = net.now;
    let Net { nodes, .. } = &mut net;
    let (left, right) = nodes.split_at_mut(1);
    assert!(matches!(
        left[0]
            .group
            .as_mut()
            .unwrap()
            .commit(&right[0].identity, &[], now),
        Err(Error::InvalidConfig(_))
    ));
    // A plain member may not change membership.
    for changes in [
        vec![Change::Add(three.clone(), MemberRole::Member)],
        vec![Change::Remove(net.public(0))],
        vec![Change::SetRole(one.clone(), MemberRole::Admin)],
        vec![
            Change::Remove(one.clone()),
            Change::Add(three.clone(), MemberRole::Member),
        ],
    ] {
        let before = net.state(1);
        assert!(
            matches!(net.commit(1, &changes), Err(Error::NotAuthorized(_))),
            "{changes:?}"
        );
        assert_eq!(net.state(1), before);
    }
    assert_eq!(net.state(0), before);
    assert!(net.links.iter().flatten().all(|link| link.is_empty()));
}

#[test]
fn a_member_leaves_by_removing_itself() {
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.add(0, 3, MemberRole::Admin);
    net.flush();
    net.send(2, b"before leaving");
    net.flush();

    // A plain member leaves.
    let out = net.commit(2, &[Change::Remove(net.public(2))]).unwrap();
    assert_eq!(out.epoch, 4);
    assert_eq!(identities(&out), keys(&net, &[0, 1, 3]));
    assert!(!net.group(2).is_member());
    net.flush();
    for i in [0, 1, 3] {
        assert_eq!(
            last_outcome(&net, i),
            ControlOutcome::EpochStarted {
                epoch: 4,
                committer: net.public(2),
                changes: vec![Change::Remove(net.public(2))],
            }
        );
        assert_eq!(net.group(i).role_of(&net.public(2)), None);
    }
    assert_eq!(net.hashes(&[0, 1, 3]), vec![net.group(2).state_hash(); 3]);
    net.send(1, b"after 2 left");
    net.flush();
    assert_eq!(
        net.nodes[3].opened.last().unwrap(),
        &(1, b"after 2 left".to_vec())
    );
    assert!(
        !net.nodes[2]
            .opened
            .iter()
            .any(|(_, m)| m == b"after 2 left")
    );

    // An admin leaves while another admin remains.
    net.commit(3, &[Change::Remove(net.public(3))]).unwrap();
    net.flush();
    assert!(!net.group(3).is_member());
    assert_eq!(net.group(0).members().len(), 2);
    // The last admin cannot leave: the group would have no admin.
    let before = net.state(0);
    assert!(matches!(
        net.commit(0, &[Change::Remove(net.public(0))]),
        Err(Error::InvalidChange(_))
    ));
    assert_eq!(net.state(0), before);
}

#[test]
fn any_member_rotates_and_everyone_gets_fresh_keys() {
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let mut first_keys = BTreeMap::new();
    for i in 0..3 {
        let sealed = net.seal(i, format!("epoch 2 from {i}").as_bytes());
        let key = decode_sender_key(sealed.sender_key.as_ref().unwrap().message.expose_secret());
        assert_eq!((key.epoch, key.counter), (2, 0));
        first_keys.insert(i, key);
        net.post(i, &sealed);
        // Only the first message of an epoch carries a sender key.
        let second = net.seal(i, b"second");
        assert!(second.sender_key.is_none());
        net.post(i, &second);
    }
    net.flush();

    // A plain member rotates: no changes, a new epoch for everyone.
    let out = net.commit(1, &[]).unwrap();
    assert_eq!(out.epoch, 3);
    assert!(out.welcome.is_none());
    net.flush();
    for i in [0, 2] {
        assert_eq!(
            last_outcome(&net, i),
            ControlOutcome::EpochStarted {
                epoch: 3,
                committer: net.public(1),
                changes: vec![],
            }
        );
    }
    assert_eq!(net.hashes(&[0, 1, 2]), vec![net.group(0).state_hash(); 3]);
    assert_ne!(net.group(0).state_hash(), first_keys[&0].state_hash);

    // Every member's next message carries a fresh sender key for the new epoch.
    for i in 0..3 {
        let sealed = net.seal(i, format!("epoch 3 from {i}").as_bytes());
        let key = decode_sender_key(sealed.sender_key.as_ref().unwrap().message.expose_secret());
        assert_eq!((key.epoch, key.counter), (3, 0));
        assert_eq!(key.state_hash, net.group(i).state_hash());
        for old in first_keys.values() {
            assert_ne!(key.chain_key, old.chain_key);
            assert_ne!(key.signing_key, old.signing_key);
        }
        net.post(i, &sealed);
    }
    net.flush();
    for i in 0..3 {
        let mut got: Vec<_> = net.nodes[i].opened.iter().rev().take(2).cloned().collect();
        got.sort();
        let want: Vec<_> = (0..3)
            .filter(|&j| j != i)
            .map(|j| (j, format!("epoch 3 from {j}").into_bytes()))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn rotation_is_due_by_message_count_and_by_age() {
    let mut net = Net::with_config(
        2,
        config(|c| {
            c.rotate_after_messages = 3;
            c.rotate_after_secs = 1_000;
        }),
    );
    net.add(0, 1, MemberRole::Member);
    net.flush();
    assert!(!net.group(0).rotation_due(T0));
    net.send(0, b"1");
    net.send(0, b"2");
    net.flush();
    assert!(!net.group(0).rotation_due(T0), "2 sealed");
    assert!(!net.group(1).rotation_due(T0), "2 opened");
    net.send(1, b"3");
    assert!(net.group(1).rotation_due(T0), "2 opened + 1 sealed");
    assert!(!net.group(0).rotation_due(T0));
    net.flush();
    assert!(net.group(0).rotation_due(T0), "2 sealed + 1 opened");

    // Either member rotates; the count restarts in the new epoch, for both.
    net.now = at(500);
    net.commit(1, &[]).unwrap();
    net.flush();
    assert!(!net.group(0).rotation_due(at(500)));
    assert!(!net.group(1).rotation_due(at(500)));

    // By age, counted from when each member entered the epoch.
    assert!(!net.group(0).rotation_due(at(1_499)));
    assert!(net.group(0).rotation_due(at(1_500)));
    assert!(net.group(1).rotation_due(at(1_500)));
    net.now = at(1_500);
    net.commit(0, &[]).unwrap();
    net.flush();
    assert!(!net.group(0).rotation_due(at(2_499)));
    assert!(!net.group(1).rotation_due(at(2_499)));
    assert!(net.group(1).rotation_due(at(2_500)));
}

// ---------------------------------------------------------------------------------------------
// The control plane over real pairwise sessions.

struct Party {
    account: Account,
    group: Option<Group>,
    /// Pairwise sessions by peer index.
    sessions: BTreeMap<usize, Session>,
}

/// `n` parties with an established pairwise session between every two of them.
fn parties(n: usize) -> Vec<Party> {
    let mut rng = rand::rng();
    let mut parties: Vec<Party> = (0..n)
        .map(|_| Party {
            account: Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, T0),
            group: None,
            sessions: BTreeMap::new(),
        })
        .collect();
    for i in 0..n {
        for j in i + 1..n {
            let one_time = parties[j]
                .account
                .generate_one_time_prekeys(1, &mut rng)
                .unwrap();
            let bundle = parties[j]
                .account
                .bundle(Some(one_time[0].id))
                .unwrap()
                .verify(&BundlePolicy::default(), T0)
                .unwrap();
            let mut initiator = Session::initiate(
                parties[i].account.identity(),
                &bundle,
                SessionConfig::default(),
                &mut rng,
                T0,
            )
            .unwrap();
            let hello = initiator.seal(b"hello", &mut rng, T0).unwrap();
            let accepted = parties[j].account.accept(&hello, T0).unwrap();
            let mut responder = accepted.session;
            let ack = responder.seal(b"ack", &mut rng, T0).unwrap();
            assert_eq!(initiator.open(&ack, T0).unwrap(), b"ack");
            parties[i].sessions.insert(j, initiator);
            parties[j].sessions.insert(i, responder);
        }
    }
    parties
}

/// Carries `control` from `from` to `to` inside their pairwise session, and hands it to `to`'s
/// group with the session's authenticated peer as the sender (joining from a welcome if `to`
/// has no group yet).
fn carry(parties: &mut [Party], from: usize, to: usize, control: &[u8]) -> Option<ControlOutcome> {
    try_carry(parties, from, to, control).unwrap()
}

/// [`carry`], returning the group's refusal.
fn try_carry(
    parties: &mut [Party],
    from: usize,
    to: usize,
    control: &[u8],
) -> Result<Option<ControlOutcome>, Error> {
    let mut rng = rand::rng();
    let envelope = parties[from]
        .sessions
        .get_mut(&to)
        .unwrap()
        .seal(control, &mut rng, T0)
        .unwrap();
    let party = &mut parties[to];
    let session = party.sessions.get_mut(&from).unwrap();
    let plaintext = session.open(&envelope, T0).unwrap();
    let peer = session.peer_identity().clone();
    match &mut party.group {
        Some(group) => group.receive(&peer, &plaintext, T0).map(Some),
        None => {
            let me = party.account.identity().public().clone();
            let group = Group::join(&me, &peer, &plaintext, GroupConfig::default(), T0)?;
            party.group = Some(group);
            Ok(None)
        }
    }
}

fn index_of(parties: &[Party], who: &PublicIdentity) -> usize {
    parties
        .iter()
        .position(|p| p.account.identity().public() == who)
        .unwrap()
}

/// `admin` commits `changes`; commit and welcome travel over the pairwise sessions.
fn commit_over_sessions(parties: &mut [Party], admin: usize, changes: &[Change]) -> CommitOutput {
    let party = &mut parties[admin];
    let out = party
        .group
        .as_mut()
        .unwrap()
        .commit(party.account.identity(), changes, T0)
        .unwrap();
    for to in &out.commit_recipients {
        let to = index_of(parties, to);
        let outcome = carry(parties, admin, to, &out.commit).unwrap();
        assert!(
            matches!(outcome, ControlOutcome::EpochStarted { epoch, .. } if epoch == out.epoch)
        );
    }
    for to in &out.welcome_recipients {
        let to = index_of(parties, to);
        assert!(carry(parties, admin, to, out.welcome.as_ref().unwrap()).is_none());
    }
    out
}

/// `sender` seals `text`: the sender key over the pairwise sessions, the envelope through the
/// "relay" to every other member, who must open it.
fn send_over_sessions(parties: &mut [Party], sender: usize, text: &[u8]) -> GroupSealed {
    let mut rng = rand::rng();
    let sealed = parties[sender]
        .group
        .as_mut()
        .unwrap()
        .seal(text, &mut rng, T0)
        .unwrap();
    if let Some(key) = &sealed.sender_key {
        for to in &key.recipients {
            let to = index_of(parties, to);
            let outcome = carry(parties, sender, to, key.message.expose_secret()).unwrap();
            assert!(matches!(outcome, ControlOutcome::SenderKeyAdded { .. }));
        }
    }
    let me = parties[sender].account.identity().public().clone();
    let members: Vec<PublicIdentity> = parties[sender]
        .group
        .as_ref()
        .unwrap()
        .members()
        .iter()
        .map(|m| m.identity().clone())
        .filter(|id| id != &me)
        .collect();
    for to in members {
        let to = index_of(parties, &to);
        let opened = parties[to]
            .group
            .as_mut()
            .unwrap()
            .open(&sealed.envelope, T0)
            .unwrap();
        assert_eq!((&opened.sender, opened.plaintext.as_slice()), (&me, text));
    }
    sealed
}

#[test]
fn every_control_message_travels_over_pairwise_sessions() {
    let mut parties = parties(4);
    let mut rng = rand::rng();
    let founder = Group::create(
        parties[0].account.identity(),
        GroupConfig::default(),
        &mut rng,
        T0,
    )
    .unwrap();
    parties[0].group = Some(founder);
    let public = |parties: &[Party], i: usize| parties[i].account.identity().public().clone();

    // Welcome (1), then commit (to 1) and welcome (to 2).
    let p1 = public(&parties, 1);
    commit_over_sessions(&mut parties, 0, &[Change::Add(p1, MemberRole::Admin)]);
    let p2 = public(&parties, 2);
    commit_over_sessions(&mut parties, 0, &[Change::Add(p2, MemberRole::Member)]);
    // Sender keys, from everyone.
    for i in 0..3 {
        send_over_sessions(&mut parties, i, format!("hello from {i}").as_bytes());
    }
    // A plain member rotates; the second admin adds 3 and removes 2.
    commit_over_sessions(&mut parties, 2, &[]);
    let (p3, p2) = (public(&parties, 3), public(&parties, 2));
    let out = commit_over_sessions(
        &mut parties,
        1,
        &[Change::Add(p3, MemberRole::Member), Change::Remove(p2)],
    );
    let sealed: Vec<GroupSealed> = [0, 1, 3]
        .iter()
        .map(|&i| send_over_sessions(&mut parties, i, format!("epoch 4 from {i}").as_bytes()))
        .collect();
    // A sender key is attributed to the session's authenticated peer, not to whoever made it:
    // 0's key forwarded by 1 over 1's own session is 1's second, conflicting key; a welcome
    // forwarded by anyone but its committer is refused.
    let zeros_key = sealed[0]
        .sender_key
        .as_ref()
        .unwrap()
        .message
        .expose_secret();
    assert_eq!(
        try_carry(&mut parties, 1, 3, zeros_key),
        Err(Error::SenderKeyConflict)
    );
    let joined = parties[3].group.take();
    let welcome = out.welcome.unwrap();
    assert!(matches!(
        try_carry(&mut parties, 0, 3, &welcome),
        Err(Error::NotAuthorized(_))
    ));
    assert!(parties[3].group.is_none());
    parties[3].group = joined;
    let hash = parties[0].group.as_ref().unwrap().state_hash();
    for i in [1, 2, 3] {
        assert_eq!(parties[i].group.as_ref().unwrap().state_hash(), hash);
    }
    assert!(!parties[2].group.as_ref().unwrap().is_member());
    assert_eq!(parties[3].group.as_ref().unwrap().epoch(), 4);
}
