//! The high-level client against a malicious relay (issue 7), 1:1: substituted prekey bundles,
//! lies about the sender, tampered, dropped, reordered, duplicated, replayed and delayed
//! deliveries. Each test checks the typed outcome the client reports, that nothing is shown
//! twice or under the wrong sender, and that honest parties lose nothing the relay delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire::Error;
use sealwire::client::{Client, Conversation};
use sealwire::core::{Account, IdentityKeyPair, Timestamp};
use sealwire::transport::frame::MailboxId;
use support::evil::{Envelope, Evil, collect_until, online, outcome, world};
use support::*;

const DAY: u64 = 86_400;

fn mailbox(user: &User) -> MailboxId {
    MailboxId::of(&user.identity)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Alice writes to Bob and Bob answers, so that both hold the session.
async fn converse(alice: &mut Client, bob: &mut Client) {
    alice.send("bob", b"hello bob".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(bob).await), "hello bob");
    bob.send("alice", b"hello alice".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(alice).await), "hello alice");
}

/// `from` sends `bodies` to Bob (mailbox `bob`) while the relay holds his mailbox back;
/// returns the envelopes in the order they were sent.
async fn send_held(evil: &Evil, from: &Client, bob: MailboxId, bodies: &[&str]) -> Vec<Envelope> {
    evil.hold(bob, true);
    for body in bodies {
        from.send("bob", body.as_bytes().to_vec()).await.unwrap();
    }
    let held = evil.take_held(bob, bodies.len()).await;
    evil.hold(bob, false);
    held
}

/// `from` sends `body` to the contact `to` (mailbox `to_box`) while the relay holds that
/// mailbox back; returns the envelope.
async fn capture(evil: &Evil, from: &Client, to: &str, to_box: MailboxId, body: &str) -> Envelope {
    evil.hold(to_box, true);
    from.send(to, body.as_bytes().to_vec()).await.unwrap();
    let envelope = evil.take_held(to_box, 1).await.remove(0);
    evil.hold(to_box, false);
    envelope
}

fn all_from(shown: &support::evil::Shown, name: &str) -> bool {
    shown.messages.iter().all(|(_, contact, conversation)| {
        contact.as_deref() == Some(name) && *conversation == Conversation::Direct
    })
}

// --- 7. Bundle substitution ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_bundles_are_refused_and_nothing_is_sealed_for_mallory() {
    let (pki, _root, evil, people) = world(&["alice", "bob", "carol", "mallory"]).await;
    let [alice, bob, carol, mallory] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;

    let bobs = evil.take_bundle(mailbox(bob)).unwrap();
    let mut bad_signature = bobs.clone();
    bad_signature.signed_prekey.signature[7] ^= 0x01;
    let mut other_key = bobs.clone();
    other_key.signed_prekey.public_key = evil
        .take_bundle(mailbox(mallory))
        .unwrap()
        .signed_prekey
        .public_key;
    let mut redated = bobs.clone();
    redated.signed_prekey.created_at = Timestamp::from_unix_secs(unix_now() - 200 * DAY);
    let mut trailing = bobs.to_bytes();
    trailing.push(0);
    let substitutes: Vec<(&str, Vec<u8>)> = vec![
        (
            "mallory's bundle",
            evil.take_bundle(mailbox(mallory)).unwrap().to_bytes(),
        ),
        ("a broken signature", bad_signature.to_bytes()),
        (
            "carol's bundle",
            evil.take_bundle(mailbox(carol)).unwrap().to_bytes(),
        ),
        ("garbage", b"definitely not a prekey bundle".to_vec()),
        ("mallory's prekey in bob's bundle", other_key.to_bytes()),
        ("a redated prekey", redated.to_bytes()),
        ("a trailing byte", trailing),
        ("nothing at all", Vec::new()),
    ];
    for (i, (what, bytes)) in substitutes.iter().enumerate() {
        evil.substitute_bundle(mailbox(bob), Some(bytes.clone()));
        let id = alice_client
            .send("bob", format!("attempt {i}").into_bytes())
            .await
            .unwrap();
        match outcome(&mut alice_client, id).await {
            Err(Error::BadBundle { .. }) => {}
            other => panic!("{what}: expected bad_bundle, got {other:?}"),
        }
    }
    // One fetch per attempt, and not one envelope sealed under any of those bundles.
    assert_eq!(evil.served(mailbox(bob)).len(), substitutes.len());
    assert!(evil.sent().iter().all(|sent| sent.from != mailbox(alice)));

    // The relay behaves: the next message reaches the real Bob, once, from Alice.
    alice_client
        .send("bob", b"the real one".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut bob_client, "the real one").await;
    assert_eq!(shown.bodies(), ["the real one"]);
    assert!(all_from(&shown, "alice") && shown.dropped.is_empty());

    // Mallory, handed every envelope Alice ever sent, opens none of them.
    let mut mallory_client = online(mallory, &pki, &evil).await;
    let alices: Vec<_> = evil
        .sent()
        .into_iter()
        .filter(|sent| sent.from == mailbox(alice))
        .collect();
    assert!(!alices.is_empty());
    for sent in &alices {
        let envelope = Envelope {
            from: sent.from,
            id: sent.id,
            payload: sent.payload.clone(),
        };
        evil.deliver(mailbox(mallory), &envelope.fresh_id());
    }
    alice_client
        .send("mallory", b"for mallory".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut mallory_client, "for mallory").await;
    assert_eq!(shown.bodies(), ["for mallory"]);
    assert_eq!(shown.dropped.len(), alices.len());
    bob_client.close().await;
    mallory_client.close().await;
    alice_client.close().await;
    evil.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_future_signed_prekeys_are_refused() {
    let (pki, _root, evil, people) = world(&["alice"]).await;
    let alice = &people[0];
    let mut alice_client = online(alice, &pki, &evil).await;
    // Dave is a bare account the test holds: it can sign prekeys at any date.
    let mut rng = rand::rng();
    let now = unix_now();
    let bundle_at = |secs: u64, rng: &mut _| {
        let account = Account::new(
            IdentityKeyPair::generate(rng),
            rng,
            Timestamp::from_unix_secs(secs),
        );
        (
            account.identity().public().clone(),
            account.bundle(None).unwrap(),
        )
    };
    for (what, created) in [
        ("91 days old", now - 91 * DAY),
        ("2 days ahead", now + 2 * DAY),
    ] {
        let (dave, bundle) = bundle_at(created, &mut rng);
        alice_client
            .replace_contact("dave", dave.clone())
            .await
            .unwrap();
        evil.substitute_bundle(MailboxId::of(&dave), Some(bundle.to_bytes()));
        let id = alice_client
            .send("dave", b"hi dave".to_vec())
            .await
            .unwrap();
        match outcome(&mut alice_client, id).await {
            Err(Error::BadBundle { reason, .. }) => {
                assert!(reason.contains("out of date"), "{reason}")
            }
            other => panic!("{what}: expected bad_bundle, got {other:?}"),
        }
    }
    // A signed prekey within the limits (89 days old) is used.
    let (dave, bundle) = bundle_at(now - 89 * DAY, &mut rng);
    alice_client
        .replace_contact("dave", dave.clone())
        .await
        .unwrap();
    evil.substitute_bundle(MailboxId::of(&dave), Some(bundle.to_bytes()));
    let id = alice_client
        .send("dave", b"hi dave".to_vec())
        .await
        .unwrap();
    outcome(&mut alice_client, id).await.unwrap();
    let sent = evil.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, [MailboxId::of(&dave)]);
    alice_client.close().await;
    evil.shutdown().await;
}

// --- 6. Sender binding -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_lying_about_the_sender_is_caught_and_the_genuine_copy_still_opens() {
    let (pki, _root, evil, people) = world(&["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let mut carol_client = online(carol, &pki, &evil).await;
    let bob_box = mailbox(bob);

    // Alice's initial envelope, shown to Bob as Carol's (Carol is Bob's contact, and has no
    // session with Bob), then the genuine copy: the lie must not use up Bob's prekeys.
    let first = capture(&evil, &alice_client, "bob", bob_box, "first").await;
    evil.deliver(bob_box, &first.from(mailbox(carol)));
    evil.deliver(bob_box, &first);
    // A follow-up on the session Bob now holds, re-attributed the same way.
    let second = capture(&evil, &alice_client, "bob", bob_box, "second").await;
    evil.deliver(bob_box, &second.from(mailbox(carol)));
    evil.deliver(bob_box, &second);
    // The relay forwards a copy of Alice's envelope to Carol, as if Bob had sent it.
    evil.deliver(mailbox(carol), &second.from(bob_box));
    alice_client.send("bob", b"third".to_vec()).await.unwrap();

    let shown = collect_until(&mut bob_client, "third").await;
    assert_eq!(shown.bodies(), ["first", "second", "third"]);
    assert!(all_from(&shown, "alice"), "{:?}", shown.messages);
    assert_eq!(shown.dropped.len(), 2, "{:?}", shown.dropped);
    for (from, error) in &shown.dropped {
        assert_eq!(*from, mailbox(carol));
        assert!(matches!(error, Error::SenderMismatch), "{error}");
    }

    // Everyone's sessions carry on: Bob answers Alice, Carol writes to Bob and Alice.
    bob_client
        .send("alice", b"bob to alice".to_vec())
        .await
        .unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "bob to alice");
    carol_client
        .send("bob", b"carol to bob".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut bob_client, "carol to bob").await;
    assert!(all_from(&shown, "carol") && shown.dropped.is_empty());
    carol_client
        .send("alice", b"carol to alice".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut alice_client, "carol to alice").await;
    assert!(all_from(&shown, "carol"));
    // Carol never shows Alice's envelope as Bob's: it names no session of hers.
    alice_client
        .send("carol", b"alice to carol".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut carol_client, "alice to carol").await;
    assert_eq!(shown.bodies(), ["alice to carol"]);
    assert_eq!(shown.dropped.len(), 1);
    assert_eq!(shown.dropped[0].0, bob_box);
    for client in [alice_client, bob_client, carol_client] {
        client.close().await;
    }
    evil.shutdown().await;
}

// --- 1. Tampered envelopes ---------------------------------------------------------------

/// Delivers tampered copies of `envelope` (flipped at each of `positions`, under fresh
/// message ids), then the genuine one.
fn tamper_then_deliver(evil: &Evil, to: MailboxId, envelope: &Envelope, positions: &[usize]) {
    for &at in positions {
        evil.deliver(to, &envelope.tampered(at).fresh_id());
    }
    evil.deliver(to, envelope);
}

fn check_dropped(shown: &support::evil::Shown, from: MailboxId, count: usize) {
    assert_eq!(shown.dropped.len(), count, "{:?}", shown.dropped);
    assert!(shown.dropped.iter().all(|(f, _)| *f == from));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_envelopes_are_dropped_and_the_session_carries_on() {
    let (pki, _root, evil, people) = world(&["alice", "bob"]).await;
    let [alice, bob] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let (alice_box, bob_box) = (mailbox(alice), mailbox(bob));
    let positions = |len: usize| {
        [
            0,
            1,
            2,
            3,
            5,
            8,
            13,
            21,
            34,
            55,
            89,
            144,
            len / 2,
            len - 17,
            len - 1,
        ]
    };

    // Alice's initial envelope (before Bob holds a session), then follow-ups both ways.
    let first = capture(&evil, &alice_client, "bob", bob_box, "first").await;
    let at = positions(first.payload.len());
    tamper_then_deliver(&evil, bob_box, &first, &at);
    alice_client.send("bob", b"second".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "second").await;
    assert_eq!(shown.bodies(), ["first", "second"]);
    assert!(all_from(&shown, "alice"));
    check_dropped(&shown, alice_box, at.len());

    let reply = capture(&evil, &bob_client, "alice", alice_box, "reply").await;
    tamper_then_deliver(&evil, alice_box, &reply, &positions(reply.payload.len()));
    bob_client.send("alice", b"reply 2".to_vec()).await.unwrap();
    let shown = collect_until(&mut alice_client, "reply 2").await;
    assert_eq!(shown.bodies(), ["reply", "reply 2"]);
    check_dropped(&shown, bob_box, at.len());

    let third = capture(&evil, &alice_client, "bob", bob_box, "third").await;
    tamper_then_deliver(&evil, bob_box, &third, &positions(third.payload.len()));
    alice_client.send("bob", b"fourth".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "fourth").await;
    assert_eq!(shown.bodies(), ["third", "fourth"]);
    check_dropped(&shown, alice_box, at.len());

    // A tampered copy under the genuine message id: dropped, and the id counts as processed
    // (client.md 9.1, 6): the genuine copy delivered afterwards is a silent duplicate. The
    // relay could as well have dropped it; later messages still open.
    let lost = capture(&evil, &alice_client, "bob", bob_box, "lost").await;
    evil.deliver(bob_box, &lost.tampered(lost.payload.len() / 2));
    evil.deliver(bob_box, &lost);
    alice_client.send("bob", b"after".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "after").await;
    assert_eq!(shown.bodies(), ["after"]);
    check_dropped(&shown, alice_box, 1);
    bob_client
        .send("alice", b"still here".to_vec())
        .await
        .unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "still here");
    evil.wait_all_acked(alice_box).await;
    evil.wait_all_acked(bob_box).await;
    alice_client.close().await;
    bob_client.close().await;
    evil.shutdown().await;
}

// --- 4. Duplicates and replays -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_replayed_deliveries_are_shown_once_even_after_a_restart() {
    let (pki, _root, evil, people) = world(&["alice", "bob"]).await;
    let [alice, bob] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let (alice_box, bob_box) = (mailbox(alice), mailbox(bob));
    converse(&mut alice_client, &mut bob_client).await;

    // The same delivery twice, a second delivery of the same message (same sender and id:
    // silent duplicates), and a copy under a fresh message id (the session's replay check).
    let once = capture(&evil, &alice_client, "bob", bob_box, "once").await;
    let delivery = evil.deliver(bob_box, &once);
    evil.push(bob_box, delivery, &once);
    evil.deliver(bob_box, &once);
    evil.deliver(bob_box, &once.fresh_id());
    alice_client.send("bob", b"mark 1".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "mark 1").await;
    assert_eq!(shown.bodies(), ["once", "mark 1"]);
    check_dropped(&shown, alice_box, 1);
    let replay = sealwire::core::Error::Replay;
    assert!(matches!(&shown.dropped[0].1, Error::Protocol(e) if *e == replay));
    evil.wait_acked(bob_box, delivery).await;

    // Bob restarts; the relay replays the acknowledged message, as it was and under a fresh
    // id: neither is shown.
    bob_client.close().await;
    evil.deliver(bob_box, &once);
    evil.deliver(bob_box, &once.fresh_id());
    let mut bob_client = bob.start(&pki, evil.port());
    alice_client.send("bob", b"mark 2".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "mark 2").await;
    assert_eq!(shown.bodies(), ["mark 2"]);
    check_dropped(&shown, alice_box, 1);
    assert!(matches!(&shown.dropped[0].1, Error::Protocol(e) if *e == replay));

    bob_client
        .send("alice", b"bob again".to_vec())
        .await
        .unwrap();
    let shown = collect_until(&mut alice_client, "bob again").await;
    assert_eq!(shown.bodies(), ["bob again"]);
    alice_client.close().await;
    bob_client.close().await;
    evil.shutdown().await;
}

// --- 2. Dropped deliveries ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_deliveries_come_later_and_lost_ones_cost_nothing_else() {
    let (pki, _root, evil, people) = world(&["alice", "bob"]).await;
    let [alice, bob] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let bob_box = mailbox(bob);

    // Alice's very first message is lost for good: her next ones still start the session.
    evil.discard(bob_box, 1);
    for body in ["lost first", "second"] {
        alice_client
            .send("bob", body.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let shown = collect_until(&mut bob_client, "second").await;
    assert_eq!(shown.bodies(), ["second"]);
    assert!(all_from(&shown, "alice") && shown.dropped.is_empty());
    bob_client.send("alice", b"got it".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "got it");

    // Three deliveries the relay stores but never pushes: not acknowledged, they come when
    // Bob reconnects.
    evil.suppress_live(bob_box, 3);
    for i in 1..=3 {
        alice_client
            .send("bob", format!("kept {i}").into_bytes())
            .await
            .unwrap();
    }
    tokio::time::timeout(WAIT, alice_client.flush())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(evil.unacked(bob_box), 3);
    evil.kick(bob_box);
    let shown = collect_until(&mut bob_client, "kept 3").await;
    assert_eq!(shown.bodies(), ["kept 1", "kept 2", "kept 3"]);
    assert!(shown.dropped.is_empty());

    // Two messages in the middle of the session lost for good: the later ones open (their
    // keys are derived past the gap), and the session works both ways.
    evil.discard(bob_box, 2);
    for body in ["gone 1", "gone 2", "after 1", "after 2"] {
        alice_client
            .send("bob", body.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let shown = collect_until(&mut bob_client, "after 2").await;
    assert_eq!(shown.bodies(), ["after 1", "after 2"]);
    assert!(shown.dropped.is_empty());
    bob_client.send("alice", b"bye".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "bye");
    evil.wait_all_acked(bob_box).await;
    alice_client.close().await;
    bob_client.close().await;
    evil.shutdown().await;
}

// --- 3. Reordered, 5. delayed ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_delayed_deliveries_arrive_complete_once_each() {
    let (pki, _root, evil, people) = world(&["alice", "bob"]).await;
    let [alice, bob] = &people[..] else {
        unreachable!()
    };
    let mut alice_client = online(alice, &pki, &evil).await;
    let mut bob_client = online(bob, &pki, &evil).await;
    let bob_box = mailbox(bob);

    // First contact, shuffled: Alice's first four messages (all initial envelopes of one
    // session) arrive as 3, 1, 4, 2. The client shows them in the order they arrive.
    let held = send_held(&evil, &alice_client, bob_box, &["r1", "r2", "r3", "r4"]).await;
    for i in [2, 0, 3, 1] {
        evil.deliver(bob_box, &held[i]);
    }
    alice_client.send("bob", b"end 1".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "end 1").await;
    assert_eq!(shown.bodies(), ["r3", "r1", "r4", "r2", "end 1"]);
    assert!(all_from(&shown, "alice") && shown.dropped.is_empty());
    bob_client.send("alice", b"ok".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "ok");

    // On the established session: a batch of six reversed.
    let held = send_held(
        &evil,
        &alice_client,
        bob_box,
        &["s1", "s2", "s3", "s4", "s5", "s6"],
    )
    .await;
    for envelope in held.iter().rev() {
        evil.deliver(bob_box, envelope);
    }
    alice_client.send("bob", b"end 2".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "end 2").await;
    assert_eq!(
        shown.bodies(),
        ["s6", "s5", "s4", "s3", "s2", "s1", "end 2"]
    );
    assert!(shown.dropped.is_empty());

    // Delayed: one message held back while later ones go through, delivered a second later.
    let late = send_held(&evil, &alice_client, bob_box, &["late"])
        .await
        .remove(0);
    for body in ["early 1", "early 2"] {
        alice_client
            .send("bob", body.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let shown = collect_until(&mut bob_client, "early 2").await;
    assert_eq!(shown.bodies(), ["early 1", "early 2"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    evil.deliver(bob_box, &late);
    alice_client.send("bob", b"end 3".to_vec()).await.unwrap();
    let shown = collect_until(&mut bob_client, "end 3").await;
    assert_eq!(shown.bodies(), ["late", "end 3"]);
    assert!(shown.dropped.is_empty());
    evil.wait_all_acked(bob_box).await;
    alice_client.close().await;
    bob_client.close().await;
    evil.shutdown().await;
}
