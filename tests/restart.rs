//! Clients restarted from their encrypted stores: they carry on, messages not confirmed come
//! again under the same sequence number, and a client killed at random moments while
//! messages arrive loses nothing and stores nothing twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sealwire::client::Event;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_carries_on_and_replays_unconfirmed_messages() {
    let LocalRelay {
        pki,
        root,
        relay,
        port,
    } = LocalRelay::start().await;
    let [alice, bob] = &users(root.path(), &["alice", "bob"])[..] else {
        unreachable!()
    };
    let mut alice_client = alice.start(&pki, port);
    let mut bob_client = bob.start(&pki, port);
    connected(&mut bob_client).await;

    alice_client.send("bob", b"one".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut bob_client).await), "one");
    bob_client.send("alice", b"two".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "two");

    // Bob reads "three" but does not confirm it, then restarts.
    alice_client.send("bob", b"three".to_vec()).await.unwrap();
    let unconfirmed = wait_for(&mut bob_client, |event| match event {
        Event::Message(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(text(&unconfirmed), "three");
    bob_client.close().await;
    assert_eq!(bob.profile().inbox_len(), 1);

    let mut bob_client = bob.start(&pki, port);
    let again = next_message(&mut bob_client).await;
    assert_eq!(
        (text(&again), again.seq),
        ("three".to_owned(), unconfirmed.seq)
    );

    // The sessions carry on in both directions, and nothing else comes twice.
    bob_client.send("alice", b"four".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "four");
    alice_client.send("bob", b"five".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut bob_client).await), "five");
    bob_client.close().await;
    assert_eq!(bob.profile().inbox_len(), 0);

    // Alice restarts too, with a send still in her outbox: it goes out once.
    alice_client.close().await;
    let alice_client = alice.start(&pki, port);
    alice_client.send("bob", b"six".to_vec()).await.unwrap();
    alice_client.flush().await.unwrap();
    let mut bob_client = bob.start(&pki, port);
    assert_eq!(text(&next_message(&mut bob_client).await), "six");
    let quiet = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let Some(Event::Message(message)) = bob_client.next_event().await {
                return message;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a message came twice");
    alice_client.close().await;
    bob_client.close().await;
    relay.shutdown().await;
}

/// Bob's client runs on its own runtime, which is torn down at random moments while Alice's
/// messages stream in: between a commit and its ack, mid-commit, mid-handshake. After every
/// kill Bob restarts from his store. In the end he has every message, and none under two
/// sequence numbers (a message shown but not confirmed before a kill comes again under the
/// same number, which is the inbox's contract).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_loses_nothing_and_repeats_nothing() {
    const MESSAGES: usize = 60;
    let LocalRelay {
        pki,
        root,
        relay,
        port,
    } = LocalRelay::start().await;
    let [alice, bob] = &users(root.path(), &["alice", "bob"])[..] else {
        unreachable!()
    };
    publish_prekeys(bob, &pki, port).await;
    let alice_client = alice.start(&pki, port);
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            alice_client
                .send("bob", format!("m{i}").into_bytes())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        alice_client.flush().await.unwrap();
        alice_client
    });

    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    let mut kills = 0;
    let mut rng_state = 0x5eed_u64;
    while by_seq.values().collect::<BTreeSet<_>>().len() < MESSAGES {
        assert!(kills < 40, "no progress after {kills} kills");
        rng_state = rng_state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let lifetime = Duration::from_millis(50 + (rng_state >> 33) % 400);
        let received = run_and_kill(bob, &pki, port, lifetime).await;
        for (seq, body) in received {
            if let Some(previous) = by_seq.insert(seq, body.clone()) {
                assert_eq!(
                    previous, body,
                    "sequence number {seq} reused for another message"
                );
            }
        }
        kills += 1;
    }
    let mut alice_client = sender.await.unwrap();
    // Every message exactly once: no body under two sequence numbers.
    let bodies: Vec<&String> = by_seq.values().collect();
    let distinct: BTreeSet<&String> = bodies.iter().copied().collect();
    assert_eq!(distinct.len(), MESSAGES);
    assert_eq!(
        bodies.len(),
        MESSAGES,
        "a message was stored twice: {by_seq:?}"
    );
    // And the sessions survived the kills: a reply still works.
    let bob_client = bob.start(&pki, port);
    bob_client
        .send("alice", b"all here".to_vec())
        .await
        .unwrap();
    assert_eq!(text(&next_message(&mut alice_client).await), "all here");
    bob_client.close().await;
    alice_client.close().await;
    relay.shutdown().await;
}

/// Runs Bob's client on a fresh runtime for `lifetime`, confirming what it reads, then
/// drops the runtime without any shutdown. Returns what it read as (seq, body).
async fn run_and_kill(bob: &User, pki: &Pki, port: u16, lifetime: Duration) -> Vec<(u64, String)> {
    // The previous runtime's blocking commit may still hold the store for a moment.
    let profile = loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bob.profile())) {
            Ok(profile) => break profile,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let tls = pki.client_tls();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let url = format!("wss://{SERVER_NAME}:{port}/");
            let config = sealwire::transport::client::ClientConfig::new(url, tls);
            let options = sealwire::client::ClientOptions::new(config);
            let mut client = sealwire::client::Client::start(profile, options).unwrap();
            let _ = tokio::time::timeout(lifetime, async {
                while let Some(event) = client.next_event().await {
                    if let Event::Message(message) = event {
                        let body = String::from_utf8(message.body.clone()).unwrap();
                        tx.send((message.seq, body)).unwrap();
                        if client.confirm(message.seq).await.is_err() {
                            break;
                        }
                    }
                }
            })
            .await;
            std::mem::forget(client);
        });
        // Dropping the runtime cancels every task at its next await point.
        runtime.shutdown_background();
    });
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    rx.try_iter().collect()
}
