//! The relay process is SIGKILLed mid-conversation and restarted on the same data directory:
//! every message it accepted arrives, exactly once, and the conversation carries on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use sealwire::client::{Conversation, Event};
use support::process::{RelayFiles, RelayProcess, free_port};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_and_restarted_mid_conversation_loses_nothing() {
    const MESSAGES: usize = 40;
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let files = RelayFiles::new(&pki, dir.path());
    let relay = RelayProcess::start(&files, free_port());
    let port = relay.port;
    let [alice, bob, carol] = &users(dir.path(), &["alice", "bob", "carol"])[..] else {
        unreachable!()
    };
    let mut alice_client = alice.start(&pki, port);
    let mut bob_client = bob.start(&pki, port);
    let mut carol_client = carol.start(&pki, port);
    for client in [&mut alice_client, &mut bob_client, &mut carol_client] {
        connected(client).await;
    }
    let group = alice_client
        .create_group("g", &["bob", "carol"])
        .await
        .unwrap();

    // Alice writes Bob 1:1 and the group in turn; the relay dies a third of the way through.
    let writer = tokio::spawn(async move {
        for i in 0..MESSAGES {
            if i % 2 == 0 {
                alice_client
                    .send("bob", format!("direct {i}").into_bytes())
                    .await
                    .unwrap();
            } else {
                alice_client
                    .send_group(group, format!("group {i}").into_bytes())
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        tokio::time::timeout(WAIT, alice_client.flush())
            .await
            .unwrap()
            .unwrap();
        alice_client
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let relay = RelayProcess::start(&files, port);

    let mut bob_read = BTreeSet::new();
    let mut bob_count = 0;
    while bob_count < MESSAGES {
        let message = next_message(&mut bob_client).await;
        bob_count += 1;
        let expected_conversation = if text(&message).starts_with("group") {
            Conversation::Group(group)
        } else {
            Conversation::Direct
        };
        assert_eq!(message.conversation, expected_conversation);
        assert!(
            bob_read.insert(text(&message)),
            "{:?} came twice",
            text(&message)
        );
    }
    let mut carol_read = BTreeSet::new();
    while carol_read.len() < MESSAGES / 2 {
        let message = next_message(&mut carol_client).await;
        assert!(
            carol_read.insert(text(&message)),
            "{:?} came twice",
            text(&message)
        );
    }
    let mut alice_client = writer.await.unwrap();
    let expected: BTreeSet<String> = (0..MESSAGES)
        .map(|i| {
            if i % 2 == 0 {
                format!("direct {i}")
            } else {
                format!("group {i}")
            }
        })
        .collect();
    assert_eq!(bob_read, expected);
    assert!(carol_read.iter().all(|t| t.starts_with("group")));

    // Nothing more comes, and the conversation carries on after the restart.
    let extra = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let Some(Event::Message(m)) = bob_client.next_event().await {
                return text(&m);
            }
        }
    })
    .await;
    assert!(extra.is_err(), "an extra message: {extra:?}");
    bob_client
        .send("alice", b"still here".to_vec())
        .await
        .unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "still here");

    for client in [alice_client, bob_client, carol_client] {
        client.close().await;
    }
    relay.terminate();
}
