//! The high-level client against a malicious relay (issue 7), groups: a group envelope
//! re-attributed to another member (opened at once, or kept aside first), and replayed
//! welcomes, commits and envelopes of a past epoch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sealwire::client::{Client, Conversation, Event};
use sealwire::core::GroupId;
use sealwire::transport::frame::MailboxId;
use support::evil::{
    Envelope, Evil, Scene, Shown, collect_until, collect_until_with, mismatch, replay,
};
use support::*;

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

/// `from` sends `body` to `group`.
async fn group_send(from: &Client, group: GroupId, body: &str) {
    from.send_group(group, body.as_bytes().to_vec())
        .await
        .unwrap();
}

/// `from` sends `body` to `group` while the relay holds the mailbox `to` back; returns what
/// was held, split as by [`split`].
async fn send_group_held(
    evil: &Evil,
    from: &Client,
    group: GroupId,
    to: MailboxId,
    body: &str,
) -> (Vec<Envelope>, Envelope) {
    evil.hold(to, true);
    group_send(from, group, body).await;
    let held = split(evil.take_held(to, 2).await);
    evil.hold(to, false);
    held
}

fn check_group(shown: &Shown, group: GroupId, bodies: &[&str], sender: &str) {
    assert_eq!(shown.bodies(), bodies);
    let conversation = Conversation::Group(group);
    assert!(shown.all_from(sender, conversation), "{:?}", shown.messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_envelope_re_attributed_to_another_member_is_dropped_and_the_genuine_copy_opens() {
    let scene = Scene::new(&["alice", "bob", "carol"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client, mut carol_client] =
        scene.online_all(["alice", "bob", "carol"]).await;
    let (alice_box, bob_box) = (scene.mailbox("alice"), scene.mailbox("bob"));
    let carol_box = scene.mailbox("carol");
    let group = alice_client
        .create_group("team", &["bob", "carol"])
        .await
        .unwrap();
    joined(&mut bob_client, group).await;
    joined(&mut carol_client, group).await;

    // Alice's first group message: her sender key (pairwise), then the envelope. Bob gets the
    // key, then the envelope claimed to be Carol's (it opens, the signer is Alice: the group
    // state must be put back), then the genuine copy.
    let (keys, envelope) = send_group_held(evil, &alice_client, group, bob_box, "g1").await;
    let lie = envelope.from(carol_box);
    for message in keys.iter().chain([&lie, &envelope]) {
        evil.deliver(bob_box, message);
    }
    group_send(&alice_client, group, "g2").await;
    let shown = collect_until(&mut bob_client, "g2").await;
    check_group(&shown, group, &["g1", "g2"], "alice");
    shown.check_dropped(carol_box, 1, mismatch);

    // Carol's first group message, claimed to be Alice's, arrives before Carol's sender key:
    // it is kept aside, and dropped when the key arrives and shows the signer is Carol.
    let (keys, envelope) = send_group_held(evil, &carol_client, group, bob_box, "c1").await;
    let lie = envelope.from(alice_box);
    for message in [&lie].into_iter().chain(&keys).chain([&envelope]) {
        evil.deliver(bob_box, message);
    }
    group_send(&carol_client, group, "c2").await;
    let shown = collect_until(&mut bob_client, "c2").await;
    check_group(&shown, group, &["c1", "c2"], "carol");
    shown.check_dropped(alice_box, 1, mismatch);

    // Alice got Carol's messages untouched, and Bob can still write to the group.
    let shown = collect_until(&mut alice_client, "c2").await;
    check_group(&shown, group, &["c1", "c2"], "carol");
    group_send(&bob_client, group, "b1").await;
    let shown = collect_until(&mut alice_client, "b1").await;
    check_group(&shown, group, &["b1"], "bob");
    let shown = collect_until(&mut carol_client, "b1").await;
    assert_eq!(shown.bodies(), ["g1", "g2", "b1"]);
    assert!(shown.dropped.is_empty());
    scene
        .finish([alice_client, bob_client, carol_client], &[])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_welcomes_commits_and_past_epoch_envelopes_change_nothing() {
    let scene = Scene::new(&["alice", "bob", "carol", "dave"]).await;
    let evil = &scene.evil;
    let [alice_client, mut bob_client] = scene.online_all(["alice", "bob"]).await;
    let bob_box = scene.mailbox("bob");

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
    group_send(&alice_client, group, "g1").await;
    let (keys, g1) = split(evil.take_held(bob_box, 2).await);
    for message in keys.iter().chain([&g1]) {
        evil.deliver(bob_box, message);
    }
    // A second message, held back until the epoch has moved on.
    group_send(&alice_client, group, "late").await;
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
    group_send(&alice_client, group, "g2").await;

    let mut joins = 0;
    let mut changes = 0;
    let shown = collect_until_with(&mut bob_client, "g2", |event| match event {
        Event::GroupJoined { group: g, .. } if g == group => joins += 1,
        Event::GroupChanged { group: g, .. } if g == group => changes += 1,
        _ => {}
    })
    .await;
    check_group(&shown, group, &["g1", "late", "g2"], "alice");
    assert_eq!((joins, changes), (1, 1));
    // The replayed welcome, the replayed commit and the past-epoch copy: each dropped, from
    // Alice's mailbox, by the core's replay protection.
    shown.check_dropped(scene.mailbox("alice"), 3, replay);
    scene.finish([alice_client, bob_client], &[]).await;
}
