//! The high-level client against a malicious relay (issue 7), 1:1: substituted prekey bundles,
//! lies about the sender, tampered, dropped, reordered, duplicated, replayed and delayed
//! deliveries. Each test checks the typed outcome the client reports, that nothing is shown
//! twice or under the wrong sender, and that honest parties lose nothing the relay delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire::Error;
use sealwire::client::Client;
use sealwire::client::Conversation::Direct;
use sealwire::core::{Account, IdentityKeyPair, Timestamp};
use sealwire::transport::frame::MailboxId;
use support::evil::{
    Envelope, Evil, Scene, any, collect_until, mismatch, outcome, replay, send_all,
};
use support::*;

const DAY: u64 = 86_400;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `from` sends `body` to the contact `to`, whose client `to_client` shows it next.
async fn says(from: &Client, to: &str, to_client: &mut Client, body: &str) {
    from.send(to, body.as_bytes().to_vec()).await.unwrap();
    assert_eq!(text(&next_message(to_client).await), body);
}

/// Alice writes to Bob and Bob answers, so that both hold the session.
async fn converse(alice: &mut Client, bob: &mut Client) {
    says(alice, "bob", bob, "hello bob").await;
    says(bob, "alice", alice, "hello alice").await;
}

/// `from` sends `bodies` to the contact `to` (mailbox `to_box`) while the relay holds that
/// mailbox back; returns the envelopes in the order they were sent.
async fn send_held(
    evil: &Evil,
    from: &Client,
    to: &str,
    to_box: MailboxId,
    bodies: &[&str],
) -> Vec<Envelope> {
    evil.hold(to_box, true);
    send_all(from, to, bodies).await;
    let held = evil.take_held(to_box, bodies.len()).await;
    evil.hold(to_box, false);
    held
}

/// As [`send_held`], one message.
async fn capture(evil: &Evil, from: &Client, to: &str, to_box: MailboxId, body: &str) -> Envelope {
    send_held(evil, from, to, to_box, &[body]).await.remove(0)
}

// --- 7. Bundle substitution ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_bundles_are_refused_and_nothing_is_sealed_for_mallory() {
    let scene = Scene::new(&["alice", "bob", "carol", "mallory"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client] = scene.online_all(["alice", "bob"]).await;
    let (alice_box, bob_box) = (scene.mailbox("alice"), scene.mailbox("bob"));
    let mallory_box = scene.mailbox("mallory");

    let bobs = evil.take_bundle(bob_box).unwrap();
    let mut bad_signature = bobs.clone();
    bad_signature.signed_prekey.signature[7] ^= 0x01;
    let mut other_key = bobs.clone();
    other_key.signed_prekey.public_key = evil
        .take_bundle(mallory_box)
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
            evil.take_bundle(mallory_box).unwrap().to_bytes(),
        ),
        ("a broken signature", bad_signature.to_bytes()),
        (
            "carol's bundle",
            evil.take_bundle(scene.mailbox("carol")).unwrap().to_bytes(),
        ),
        ("garbage", b"definitely not a prekey bundle".to_vec()),
        ("mallory's prekey in bob's bundle", other_key.to_bytes()),
        ("a redated prekey", redated.to_bytes()),
        ("a trailing byte", trailing),
        ("nothing at all", Vec::new()),
    ];
    for (i, (what, bytes)) in substitutes.iter().enumerate() {
        evil.substitute_bundle(bob_box, Some(bytes.clone()));
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
    assert_eq!(evil.served(bob_box).len(), substitutes.len());
    assert!(evil.sent().iter().all(|sent| sent.from != alice_box));

    // The relay behaves: the next message reaches the real Bob, once, from Alice.
    send_all(&alice_client, "bob", &["the real one"]).await;
    let shown = collect_until(&mut bob_client, "the real one").await;
    assert_eq!(shown.bodies(), ["the real one"]);
    assert!(shown.all_from("alice", Direct) && shown.dropped.is_empty());

    // Mallory, handed every envelope Alice ever sent, opens none of them.
    let mut mallory_client = scene.online("mallory").await;
    let mut alices = evil.sent();
    alices.retain(|sent| sent.from == alice_box);
    assert!(!alices.is_empty());
    for sent in &alices {
        let envelope = Envelope {
            from: sent.from,
            id: sent.id,
            payload: sent.payload.clone(),
        };
        evil.deliver(mallory_box, &envelope.fresh_id());
    }
    send_all(&alice_client, "mallory", &["for mallory"]).await;
    let shown = collect_until(&mut mallory_client, "for mallory").await;
    assert_eq!(shown.bodies(), ["for mallory"]);
    assert_eq!(shown.dropped.len(), alices.len());
    let clients = [bob_client, mallory_client, alice_client];
    scene.finish(clients, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_future_signed_prekeys_are_refused() {
    let scene = Scene::new(&["alice"]).await;
    let evil = &scene.evil;
    let mut alice_client = scene.online("alice").await;
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
    // Dave (a new one each time) gets a bundle signed at `created`; Alice writes to him.
    let mut send_to_dave = async |created: u64| {
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
        (MailboxId::of(&dave), outcome(&mut alice_client, id).await)
    };
    for (what, created) in [
        ("91 days old", now - 91 * DAY),
        ("2 days ahead", now + 2 * DAY),
    ] {
        match send_to_dave(created).await.1 {
            Err(Error::BadBundle { reason, .. }) => {
                assert!(reason.contains("out of date"), "{reason}")
            }
            other => panic!("{what}: expected bad_bundle, got {other:?}"),
        }
    }
    // A signed prekey within the limits (89 days old) is used.
    let (dave, outcome) = send_to_dave(now - 89 * DAY).await;
    outcome.unwrap();
    let sent = evil.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, [dave]);
    scene.finish([alice_client], &[]).await;
}

// --- 6. Sender binding -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_lying_about_the_sender_is_caught_and_the_genuine_copy_still_opens() {
    let scene = Scene::new(&["alice", "bob", "carol"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client, mut carol_client] =
        scene.online_all(["alice", "bob", "carol"]).await;
    let (bob_box, carol_box) = (scene.mailbox("bob"), scene.mailbox("carol"));

    // Alice's initial envelope, shown to Bob as Carol's (Carol is Bob's contact, and has no
    // session with Bob), then the genuine copy: the lie must not use up Bob's prekeys.
    let first = capture(evil, &alice_client, "bob", bob_box, "first").await;
    evil.deliver(bob_box, &first.from(carol_box));
    evil.deliver(bob_box, &first);
    // A follow-up on the session Bob now holds, re-attributed the same way.
    let second = capture(evil, &alice_client, "bob", bob_box, "second").await;
    evil.deliver(bob_box, &second.from(carol_box));
    evil.deliver(bob_box, &second);
    // The relay forwards a copy of Alice's envelope to Carol, as if Bob had sent it.
    evil.deliver(carol_box, &second.from(bob_box));
    send_all(&alice_client, "bob", &["third"]).await;

    let shown = collect_until(&mut bob_client, "third").await;
    assert_eq!(shown.bodies(), ["first", "second", "third"]);
    assert!(shown.all_from("alice", Direct), "{:?}", shown.messages);
    shown.check_dropped(carol_box, 2, mismatch);

    // Everyone's sessions carry on: Bob answers Alice, Carol writes to Bob and Alice.
    says(&bob_client, "alice", &mut alice_client, "bob to alice").await;
    send_all(&carol_client, "bob", &["carol to bob"]).await;
    let shown = collect_until(&mut bob_client, "carol to bob").await;
    assert!(shown.all_from("carol", Direct) && shown.dropped.is_empty());
    send_all(&carol_client, "alice", &["carol to alice"]).await;
    let shown = collect_until(&mut alice_client, "carol to alice").await;
    assert!(shown.all_from("carol", Direct));
    // Carol never shows Alice's envelope as Bob's: it names no session of hers.
    send_all(&alice_client, "carol", &["alice to carol"]).await;
    let shown = collect_until(&mut carol_client, "alice to carol").await;
    assert_eq!(shown.bodies(), ["alice to carol"]);
    shown.check_dropped(bob_box, 1, any);
    scene
        .finish([alice_client, bob_client, carol_client], &[])
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_envelopes_are_dropped_and_the_session_carries_on() {
    let scene = Scene::new(&["alice", "bob"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client] = scene.online_all(["alice", "bob"]).await;
    let (alice_box, bob_box) = (scene.mailbox("alice"), scene.mailbox("bob"));

    // Alice's initial envelope (before Bob holds a session), then follow-ups both ways: each
    // delivered tampered at one position after another, then as it was.
    let rounds = [
        ("alice", "first", "second"),
        ("bob", "reply", "reply 2"),
        ("alice", "third", "fourth"),
    ];
    for (writer, body, next) in rounds {
        let (from, to, reader) = match writer {
            "alice" => (&alice_client, &mut bob_client, "bob"),
            _ => (&bob_client, &mut alice_client, "alice"),
        };
        let (from_box, to_box) = (scene.mailbox(writer), scene.mailbox(reader));
        let envelope = capture(evil, from, reader, to_box, body).await;
        let len = envelope.payload.len();
        let mut at = vec![0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144];
        at.extend([len / 2, len - 17, len - 1]);
        tamper_then_deliver(evil, to_box, &envelope, &at);
        send_all(from, reader, &[next]).await;
        let shown = collect_until(to, next).await;
        assert_eq!(shown.bodies(), [body, next]);
        assert!(shown.all_from(writer, Direct));
        shown.check_dropped(from_box, at.len(), any);
    }

    // A tampered copy under the genuine message id: dropped, and the id counts as processed
    // (client.md 9.1, 6): the genuine copy delivered afterwards is a silent duplicate. The
    // relay could as well have dropped it; later messages still open.
    let lost = capture(evil, &alice_client, "bob", bob_box, "lost").await;
    evil.deliver(bob_box, &lost.tampered(lost.payload.len() / 2));
    evil.deliver(bob_box, &lost);
    send_all(&alice_client, "bob", &["after"]).await;
    let shown = collect_until(&mut bob_client, "after").await;
    assert_eq!(shown.bodies(), ["after"]);
    shown.check_dropped(alice_box, 1, any);
    says(&bob_client, "alice", &mut alice_client, "still here").await;
    let clients = [alice_client, bob_client];
    scene.finish(clients, &[alice_box, bob_box]).await;
}

// --- 4. Duplicates and replays -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_replayed_deliveries_are_shown_once_even_after_a_restart() {
    let scene = Scene::new(&["alice", "bob"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client] = scene.online_all(["alice", "bob"]).await;
    let (alice_box, bob_box) = (scene.mailbox("alice"), scene.mailbox("bob"));
    converse(&mut alice_client, &mut bob_client).await;

    // The same delivery twice, a second delivery of the same message (same sender and id:
    // silent duplicates), and a copy under a fresh message id (the session's replay check).
    let once = capture(evil, &alice_client, "bob", bob_box, "once").await;
    let delivery = evil.deliver(bob_box, &once);
    evil.push(bob_box, delivery, &once);
    evil.deliver(bob_box, &once);
    evil.deliver(bob_box, &once.fresh_id());
    send_all(&alice_client, "bob", &["mark 1"]).await;
    let shown = collect_until(&mut bob_client, "mark 1").await;
    assert_eq!(shown.bodies(), ["once", "mark 1"]);
    shown.check_dropped(alice_box, 1, replay);
    evil.wait_acked(bob_box, delivery).await;

    // Bob restarts; the relay replays the acknowledged message, as it was and under a fresh
    // id: neither is shown.
    bob_client.close().await;
    evil.deliver(bob_box, &once);
    evil.deliver(bob_box, &once.fresh_id());
    let mut bob_client = scene.start("bob");
    send_all(&alice_client, "bob", &["mark 2"]).await;
    let shown = collect_until(&mut bob_client, "mark 2").await;
    assert_eq!(shown.bodies(), ["mark 2"]);
    shown.check_dropped(alice_box, 1, replay);

    send_all(&bob_client, "alice", &["bob again"]).await;
    let shown = collect_until(&mut alice_client, "bob again").await;
    assert_eq!(shown.bodies(), ["bob again"]);
    scene.finish([alice_client, bob_client], &[]).await;
}

// --- 2. Dropped deliveries ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_deliveries_come_later_and_lost_ones_cost_nothing_else() {
    let scene = Scene::new(&["alice", "bob"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client] = scene.online_all(["alice", "bob"]).await;
    let bob_box = scene.mailbox("bob");

    // Alice's very first message is lost for good: her next ones still start the session.
    evil.discard(bob_box, 1);
    send_all(&alice_client, "bob", &["lost first", "second"]).await;
    let shown = collect_until(&mut bob_client, "second").await;
    assert_eq!(shown.bodies(), ["second"]);
    assert!(shown.all_from("alice", Direct) && shown.dropped.is_empty());
    says(&bob_client, "alice", &mut alice_client, "got it").await;

    // Three deliveries the relay stores but never pushes: not acknowledged, they come when
    // Bob reconnects.
    evil.suppress_live(bob_box, 3);
    send_all(&alice_client, "bob", &["kept 1", "kept 2", "kept 3"]).await;
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
    let bodies = ["gone 1", "gone 2", "after 1", "after 2"];
    send_all(&alice_client, "bob", &bodies).await;
    let shown = collect_until(&mut bob_client, "after 2").await;
    assert_eq!(shown.bodies(), ["after 1", "after 2"]);
    assert!(shown.dropped.is_empty());
    says(&bob_client, "alice", &mut alice_client, "bye").await;
    scene.finish([alice_client, bob_client], &[bob_box]).await;
}

// --- 3. Reordered, 5. delayed ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_delayed_deliveries_arrive_complete_once_each() {
    let scene = Scene::new(&["alice", "bob"]).await;
    let evil = &scene.evil;
    let [mut alice_client, mut bob_client] = scene.online_all(["alice", "bob"]).await;
    let bob_box = scene.mailbox("bob");

    // First contact, shuffled: Alice's first four messages (all initial envelopes of one
    // session) arrive as 3, 1, 4, 2. The client shows them in the order they arrive.
    let held = send_held(
        evil,
        &alice_client,
        "bob",
        bob_box,
        &["r1", "r2", "r3", "r4"],
    )
    .await;
    for i in [2, 0, 3, 1] {
        evil.deliver(bob_box, &held[i]);
    }
    send_all(&alice_client, "bob", &["end 1"]).await;
    let shown = collect_until(&mut bob_client, "end 1").await;
    assert_eq!(shown.bodies(), ["r3", "r1", "r4", "r2", "end 1"]);
    assert!(shown.all_from("alice", Direct) && shown.dropped.is_empty());
    says(&bob_client, "alice", &mut alice_client, "ok").await;

    // On the established session: a batch of six reversed.
    let batch = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let held = send_held(evil, &alice_client, "bob", bob_box, &batch).await;
    for envelope in held.iter().rev() {
        evil.deliver(bob_box, envelope);
    }
    send_all(&alice_client, "bob", &["end 2"]).await;
    let shown = collect_until(&mut bob_client, "end 2").await;
    assert_eq!(
        shown.bodies(),
        ["s6", "s5", "s4", "s3", "s2", "s1", "end 2"]
    );
    assert!(shown.dropped.is_empty());

    // Delayed: one message held back while later ones go through, delivered a second later.
    let late = send_held(evil, &alice_client, "bob", bob_box, &["late"])
        .await
        .remove(0);
    send_all(&alice_client, "bob", &["early 1", "early 2"]).await;
    let shown = collect_until(&mut bob_client, "early 2").await;
    assert_eq!(shown.bodies(), ["early 1", "early 2"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    evil.deliver(bob_box, &late);
    send_all(&alice_client, "bob", &["end 3"]).await;
    let shown = collect_until(&mut bob_client, "end 3").await;
    assert_eq!(shown.bodies(), ["late", "end 3"]);
    assert!(shown.dropped.is_empty());
    scene.finish([alice_client, bob_client], &[bob_box]).await;
}
