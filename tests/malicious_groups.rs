//! The high-level client against a malicious relay (issue 7), groups: a group envelope
//! re-attributed to another member (opened at once, or kept aside first), and replayed
//! welcomes, commits and envelopes of a past epoch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sealwire::Error;
use sealwire::client::{Client, Conversation, Event};
use sealwire::core::GroupId;
use sealwire::transport::frame::MailboxId;
use support::evil::{Envelope, Shown, collect_until, online, world};
use support::*;

fn mailbox(user: &User) -> MailboxId {
    MailboxId::of(&user.identity)
}

async fn joined(client: &mut Client, group: GroupId) {
    wait_for(client, |event| match event {
        Event::GroupJoined { group: g, .. } => (g == group).then_some(()),
        _ => None,
    })
    .await;
}

/// Splits held messages into the pairwise ones and the single group envelope.
fn split(held: Vec<Envelope>) -> (Vec<Envelope>, Envelope) {
    let (mut group, pairwise): (Vec<_>, Vec<_>) = held.into_iter().partition(Envelope::is_group);
    assert_eq!(group.len(), 1, "one group envelope expected");
    (pairwise, group.remove(0))
}

fn check_group(shown: &Shown, group: GroupId, bodies: &[&str], sender: &str) {
    assert_eq!(shown.bodies(), bodies);
    for (_, contact, conversation) in &shown.messages {
        assert_eq!(contact.as_deref(), Some(sender));
        assert_eq!(*conversation, Conversation::Group(group));
    }
}

fn check_mismatches(shown: &Shown, claimed: MailboxId, count: usize) {
    assert_eq!(shown.dropped.len(), count, "{:?}", shown.dropped);
    for (from, error) in &shown.dropped {
        assert_eq!(*from, claimed);
        assert!(matches!(error, Error::SenderMismatch), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_envelope_re_attributed_to_another_member_is_dropped_and_the_genuine_copy_opens() {
    let (pki, _root, evil, people) = world(&["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let mut carol_client = online(carol, &pki, &evil).await;
    let bob_box = mailbox(bob);
    let group = alice_client
        .create_group("team", &["bob", "carol"])
        .await
        .unwrap();
    joined(&mut bob_client, group).await;
    joined(&mut carol_client, group).await;

    // Alice's first group message: her sender key (pairwise), then the envelope. Bob gets the
    // key, then the envelope claimed to be Carol's (it opens, the signer is Alice: the group
    // state must be put back), then the genuine copy.
    evil.hold(bob_box, true);
    alice_client
        .send_group(group, b"g1".to_vec())
        .await
        .unwrap();
    let (keys, envelope) = split(evil.take_held(bob_box, 2).await);
    evil.hold(bob_box, false);
    for key in &keys {
        evil.deliver(bob_box, key);
    }
    evil.deliver(bob_box, &envelope.from(mailbox(carol)));
    evil.deliver(bob_box, &envelope);
    alice_client
        .send_group(group, b"g2".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut bob_client, "g2").await;
    check_group(&shown, group, &["g1", "g2"], "alice");
    check_mismatches(&shown, mailbox(carol), 1);

    // Carol's first group message, claimed to be Alice's, arrives before Carol's sender key:
    // it is kept aside, and dropped when the key arrives and shows the signer is Carol.
    evil.hold(bob_box, true);
    carol_client
        .send_group(group, b"c1".to_vec())
        .await
        .unwrap();
    let (keys, envelope) = split(evil.take_held(bob_box, 2).await);
    evil.hold(bob_box, false);
    evil.deliver(bob_box, &envelope.from(mailbox(alice)));
    for key in &keys {
        evil.deliver(bob_box, key);
    }
    evil.deliver(bob_box, &envelope);
    carol_client
        .send_group(group, b"c2".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut bob_client, "c2").await;
    check_group(&shown, group, &["c1", "c2"], "carol");
    check_mismatches(&shown, mailbox(alice), 1);

    // Alice got Carol's messages untouched, and Bob can still write to the group.
    let shown = collect_until(&mut alice_client, "c2").await;
    check_group(&shown, group, &["c1", "c2"], "carol");
    bob_client.send_group(group, b"b1".to_vec()).await.unwrap();
    let shown = collect_until(&mut alice_client, "b1").await;
    check_group(&shown, group, &["b1"], "bob");
    let shown = collect_until(&mut carol_client, "b1").await;
    assert_eq!(shown.bodies(), ["g1", "g2", "b1"]);
    assert!(shown.dropped.is_empty());
    for client in [alice_client, bob_client, carol_client] {
        client.close().await;
    }
    evil.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_welcomes_commits_and_past_epoch_envelopes_change_nothing() {
    let (pki, _root, evil, people) = world(&["alice", "bob", "carol", "dave"]).await;
    let [alice, bob, _carol, _dave] = &people[..] else {
        unreachable!()
    };
    let alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let bob_box = mailbox(bob);

    // The welcome, delivered again under the same and a fresh delivery id (silently
    // ignored), and under a fresh message id (a pairwise replay: dropped). Bob joins once.
    evil.hold(bob_box, true);
    let group = alice_client
        .create_group("team", &["bob", "carol"])
        .await
        .unwrap();
    let welcome = evil.take_held(bob_box, 1).await.remove(0);
    let delivery = evil.deliver(bob_box, &welcome);
    evil.push(bob_box, delivery, &welcome);
    evil.deliver(bob_box, &welcome);
    evil.deliver(bob_box, &welcome.fresh_id());
    // A first group message (sender key + envelope), kept to replay after the next epoch.
    alice_client
        .send_group(group, b"g1".to_vec())
        .await
        .unwrap();
    let (keys, g1) = split(evil.take_held(bob_box, 2).await);
    for key in &keys {
        evil.deliver(bob_box, key);
    }
    evil.deliver(bob_box, &g1);
    // A second message, held back until the epoch has moved on.
    alice_client
        .send_group(group, b"late".to_vec())
        .await
        .unwrap();
    let late = evil.take_held(bob_box, 1).await.remove(0);
    // Alice adds Dave: the commit reaches Bob, then again under a fresh message id.
    alice_client.add_members(group, &["dave"]).await.unwrap();
    let commit = evil.take_held(bob_box, 1).await.remove(0);
    evil.deliver(bob_box, &commit);
    evil.deliver(bob_box, &commit.fresh_id());
    // The held message of the past epoch still opens (the epoch is retained); the first
    // message again, under a fresh message id, does not.
    evil.deliver(bob_box, &late);
    evil.deliver(bob_box, &g1.fresh_id());
    evil.hold(bob_box, false);
    alice_client
        .send_group(group, b"g2".to_vec())
        .await
        .unwrap();

    let mut joins = 0;
    let mut changes = 0;
    let mut shown = Shown::default();
    while shown.bodies().last() != Some(&"g2") {
        let event = wait_for(&mut bob_client, Some).await;
        match event {
            Event::GroupJoined { group: g, .. } if g == group => joins += 1,
            Event::GroupChanged { group: g, .. } if g == group => changes += 1,
            Event::Message(message) => {
                bob_client.confirm(message.seq).await.unwrap();
                shown.messages.push((
                    text(&message),
                    message.contact.clone(),
                    message.conversation,
                ));
            }
            Event::Dropped { from, error } => shown.dropped.push((from, error)),
            _ => {}
        }
    }
    check_group(&shown, group, &["g1", "late", "g2"], "alice");
    assert_eq!((joins, changes), (1, 1));
    // The replayed welcome, the replayed commit and the past-epoch copy: each dropped, from
    // Alice's mailbox, by the core's replay protection.
    assert_eq!(shown.dropped.len(), 3, "{:?}", shown.dropped);
    for (from, error) in &shown.dropped {
        assert_eq!(*from, mailbox(alice));
        assert!(
            matches!(error, Error::Protocol(sealwire::core::Error::Replay)),
            "{error}"
        );
    }
    for client in [alice_client, bob_client] {
        client.close().await;
    }
    evil.shutdown().await;
}
