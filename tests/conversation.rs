//! 1:1 and group conversations through a real relay over WSS on 127.0.0.1, with recipients
//! that come online later.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sealwire::client::{Conversation, Event};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_recipient_gets_everything_in_order() {
    let LocalRelay {
        pki,
        root,
        relay,
        port,
    } = LocalRelay::start().await;
    let [alice, bob] = &users(root.path(), &["alice", "bob"])[..] else {
        unreachable!()
    };

    // Bob connects once (publishes prekeys), then goes offline.
    publish_prekeys(bob, &pki, port).await;

    let mut alice_client = alice.start(&pki, port);
    for i in 0..5 {
        alice_client
            .send("bob", format!("offline {i}").into_bytes())
            .await
            .unwrap();
    }
    tokio::time::timeout(WAIT, alice_client.flush())
        .await
        .unwrap()
        .unwrap();

    let mut bob_client = bob.start(&pki, port);
    for i in 0..5 {
        let message = next_message(&mut bob_client).await;
        assert_eq!(text(&message), format!("offline {i}"));
        assert_eq!(message.contact.as_deref(), Some("alice"));
        assert_eq!(message.conversation, Conversation::Direct);
    }
    bob_client
        .send("alice", b"got them".to_vec())
        .await
        .unwrap();
    let reply = next_message(&mut alice_client).await;
    assert_eq!(text(&reply), "got them");

    // A group: Alice creates it with Bob and Carol; Carol has never been online.
    let carol = User::create(root.path(), "carol");
    carol.add_contacts(&[alice, bob]);
    publish_prekeys(&carol, &pki, port).await;
    // Alice's running client must learn about Carol too.
    alice_client
        .add_contact("carol", carol.identity.clone())
        .await
        .unwrap();
    bob_client
        .add_contact("carol", carol.identity.clone())
        .await
        .unwrap();

    let group = alice_client
        .create_group("friends", &["bob", "carol"])
        .await
        .unwrap();
    alice_client
        .send_group(group, b"hello group".to_vec())
        .await
        .unwrap();
    wait_for(&mut bob_client, |event| {
        matches!(event, Event::GroupJoined { .. }).then_some(())
    })
    .await;
    let message = next_message(&mut bob_client).await;
    assert_eq!(text(&message), "hello group");
    assert_eq!(message.conversation, Conversation::Group(group));
    bob_client
        .send_group(group, b"bob here".to_vec())
        .await
        .unwrap();
    let message = next_message(&mut alice_client).await;
    assert_eq!(text(&message), "bob here");
    tokio::time::timeout(WAIT, bob_client.flush())
        .await
        .unwrap()
        .unwrap();

    // Carol comes online and reads both, in order.
    let mut carol_client = carol.start(&pki, port);
    let first = next_message(&mut carol_client).await;
    let second = next_message(&mut carol_client).await;
    assert_eq!(
        (text(&first).as_str(), text(&second).as_str()),
        ("hello group", "bob here")
    );
    assert_eq!(second.contact.as_deref(), Some("bob"));

    alice_client.close().await;
    bob_client.close().await;
    carol_client.close().await;
    relay.shutdown().await;
}

/// The relay refuses sends for a full mailbox (`quota_exceeded`, retryable): the client keeps
/// them and sends them again once the recipient has read and freed room. Nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_refused_for_a_full_mailbox_are_retried() {
    let pki = Pki::new();
    let root = tempfile::tempdir().unwrap();
    let mut config = relay_config(&root.path().join("relay"));
    config.quotas.max_messages = 3;
    let relay = start_relay(&pki, config).await;
    let port = relay.local_addr().port();
    let [alice, bob] = &users(root.path(), &["alice", "bob"])[..] else {
        unreachable!()
    };
    publish_prekeys(bob, &pki, port).await;

    let fast = |options: &mut sealwire::client::ClientOptions| {
        options.housekeeping = std::time::Duration::from_millis(200);
    };
    let mut alice_client = alice.start_with(&pki, port, fast);
    for i in 0..8 {
        alice_client
            .send("bob", format!("m{i}").into_bytes())
            .await
            .unwrap();
    }
    // Some are refused for now; none fails.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, alice_client.next_event()).await {
        assert!(
            !matches!(event, Event::SendFailed { .. }),
            "a send failed: {event:?}"
        );
    }
    let mut bob_client = bob.start(&pki, port);
    let mut read: Vec<String> = Vec::new();
    while read.len() < 8 {
        read.push(text(&next_message(&mut bob_client).await));
    }
    read.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    assert_eq!(read, expected);
    tokio::time::timeout(WAIT, alice_client.flush())
        .await
        .unwrap()
        .unwrap();
    alice_client.close().await;
    bob_client.close().await;
    relay.shutdown().await;
}

/// Alice and Bob write to each other at the same moment, before either has a session: each
/// starts one, so there are two. Both sides settle on one, and every message of a long
/// exchange arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_messages_settle_on_one_session() {
    let LocalRelay {
        pki,
        root,
        relay,
        port,
    } = LocalRelay::start().await;
    let [alice, bob] = &users(root.path(), &["alice", "bob"])[..] else {
        unreachable!()
    };
    publish_prekeys(alice, &pki, port).await;
    publish_prekeys(bob, &pki, port).await;
    let mut alice_client = alice.start(&pki, port);
    let mut bob_client = bob.start(&pki, port);
    connected(&mut alice_client).await;
    connected(&mut bob_client).await;
    // Both first messages are sealed before either side has received anything.
    let (a, b) = tokio::join!(
        alice_client.send("bob", b"hi bob".to_vec()),
        bob_client.send("alice", b"hi alice".to_vec())
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(text(&next_message(&mut bob_client).await), "hi bob");
    assert_eq!(text(&next_message(&mut alice_client).await), "hi alice");
    for round in 0..6 {
        let to_bob = format!("a{round}");
        let to_alice = format!("b{round}");
        let (a, b) = tokio::join!(
            alice_client.send("bob", to_bob.clone().into_bytes()),
            bob_client.send("alice", to_alice.clone().into_bytes())
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(text(&next_message(&mut bob_client).await), to_bob);
        assert_eq!(text(&next_message(&mut alice_client).await), to_alice);
    }
    alice_client.close().await;
    bob_client.close().await;
    // Both sides send on the same session.
    let by_alice = alice.profile().session_in_use("bob").unwrap();
    let by_bob = bob.profile().session_in_use("alice").unwrap();
    assert!(by_alice.is_some());
    assert_eq!(by_alice, by_bob);
    relay.shutdown().await;
}
