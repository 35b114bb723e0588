//! Group messaging: membership, sender keys, rotation and conflicts, end to end in memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod group_support;

use group_support::Net;
use sealwire_core::{Change, ControlOutcome, Error, MemberRole};

#[test]
fn three_members_add_and_remove() {
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    assert_eq!(net.group(1).epoch(), 2);
    assert_eq!(net.group(1).state_hash(), net.group(0).state_hash());
    assert_eq!(net.group(2).state_hash(), net.group(0).state_hash());
    net.send(0, b"from 0");
    net.send(1, b"from 1");
    net.send(2, b"from 2");
    net.flush();
    assert_eq!(net.nodes[0].opened.len(), 2);
    assert_eq!(net.nodes[1].opened.len(), 2);
    assert_eq!(net.nodes[2].opened.len(), 2);

    // Remove 1, add 3: 1 stops reading, 3 reads only what comes after.
    net.remove(0, 1);
    net.add(0, 3, MemberRole::Member);
    net.flush();
    assert!(!net.group(1).is_member());
    let envelope = net.send(2, b"after");
    net.flush();
    assert_eq!(net.nodes[3].opened, vec![(2, b"after".to_vec())]);
    assert_eq!(net.nodes[0].opened.last().unwrap().1, b"after");
    let now = net.now;
    assert!(net.group_mut(1).open(&envelope, now).is_err());
}

#[test]
fn concurrent_commits_converge_on_one_winner() {
    let mut net = Net::new(4);
    net.add(0, 1, MemberRole::Admin);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    // Both admins change the group at once.
    net.add(0, 3, MemberRole::Member);
    net.commit(1, &[Change::SetRole(net.public(2), MemberRole::Admin)])
        .unwrap();
    net.flush();
    let hashes: Vec<_> = (0..3).map(|i| net.group(i).state_hash()).collect();
    assert_eq!(hashes[0], hashes[1]);
    assert_eq!(hashes[0], hashes[2]);
    let _ = (ControlOutcome::Duplicate, Error::Replay);
}
