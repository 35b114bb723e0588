//! 1:1 and group conversations through a real relay over WSS on 127.0.0.1, with recipients
//! that come online later.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sealwire::client::{Conversation, Event};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_recipient_gets_everything_in_order() {
    let pki = Pki::new();
    let root = tempfile::tempdir().unwrap();
    let relay = start_relay(&pki, relay_config(&root.path().join("relay"))).await;
    let port = relay.local_addr().port();
    let alice = User::create(root.path(), "alice");
    let bob = User::create(root.path(), "bob");
    alice.add_contacts(&[&bob]);
    bob.add_contacts(&[&alice]);

    // Bob connects once (publishes prekeys), then goes offline.
    let mut bob_client = bob.start(&pki, port);
    connected(&mut bob_client).await;
    bob_client.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    bob_client.close().await;

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
    carol.add_contacts(&[&alice, &bob]);
    let mut carol_client = carol.start(&pki, port);
    connected(&mut carol_client).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    carol_client.close().await;
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
