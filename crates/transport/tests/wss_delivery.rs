//! Over real TLS on 127.0.0.1: authentication, delivery, acknowledgement, prekeys, reconnect
//! after a server restart, graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire_core::{Account, BundlePolicy, PrekeyBundle, Timestamp};
use sealwire_transport::Error;
use sealwire_transport::client::{Client, Event};
use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::frame::{Delivery, MailboxId, PrekeyUpload};
use support::*;

fn delivered(event: Event) -> Option<Delivery> {
    match event {
        Event::Delivered(delivery) => Some(delivery),
        _ => None,
    }
}

#[tokio::test]
async fn clients_authenticate_exchange_and_acknowledge_messages() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let mut alice = Client::start(client_config(&pki, server.local_addr()), identity()).unwrap();
    let mut bob = Client::start(client_config(&pki, server.local_addr()), identity()).unwrap();
    assert_eq!(connected(&mut alice).await, alice.mailbox());
    assert_eq!(connected(&mut bob).await, bob.mailbox());

    let id = alice
        .send(vec![bob.mailbox()], b"sealed bytes".to_vec())
        .await
        .unwrap();
    let accepted = wait_for(&mut alice, |event| match event {
        Event::Accepted(accepted) => Some(accepted),
        _ => None,
    })
    .await;
    assert_eq!(accepted, id);
    let delivery = wait_for(&mut bob, delivered).await;
    assert_eq!((delivery.from, delivery.id), (alice.mailbox(), id));
    assert_eq!(delivery.payload, b"sealed bytes");
    assert_eq!(relay.stored(bob.mailbox()), 1);

    bob.ack(vec![delivery.delivery]).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while relay.stored(bob.mailbox()) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the ack reached the relay");

    // The client refuses, before queueing, a send with no recipient or a recipient twice.
    let twice = alice
        .send(vec![bob.mailbox(), bob.mailbox()], b"x".to_vec())
        .await;
    assert!(matches!(twice, Err(Error::InvalidConfig(_))), "{twice:?}");
    let nobody = alice.send(Vec::new(), b"x".to_vec()).await;
    assert!(matches!(nobody, Err(Error::InvalidConfig(_))), "{nobody:?}");

    // A send to several mailboxes reaches each of them once.
    let carol_identity = identity();
    let mut carol =
        Client::start(client_config(&pki, server.local_addr()), carol_identity).unwrap();
    connected(&mut carol).await;
    alice
        .send(vec![bob.mailbox(), carol.mailbox()], b"to both".to_vec())
        .await
        .unwrap();
    assert_eq!(wait_for(&mut bob, delivered).await.payload, b"to both");
    assert_eq!(wait_for(&mut carol, delivered).await.payload, b"to both");
    server.shutdown().await;
}

#[tokio::test]
async fn prekeys_are_uploaded_for_the_own_mailbox_and_fetched_verified() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay, None).await;
    let now = Timestamp::from_unix_secs(1_780_000_000);
    let mut rng = rand::rng();
    let mut account = Account::new(identity(), &mut rng, now);
    let one_time = account.generate_one_time_prekeys(2, &mut rng).unwrap();
    let bob_identity = duplicate(account.identity());
    let mut bob = Client::start(client_config(&pki, server.local_addr()), bob_identity).unwrap();
    let mut alice = Client::start(client_config(&pki, server.local_addr()), identity()).unwrap();
    connected(&mut bob).await;
    connected(&mut alice).await;

    assert!(matches!(
        alice.fetch_bundle(bob.mailbox()).await,
        Err(Error::Refused {
            code: ErrorCode::NoBundle
        })
    ));
    let upload = PrekeyUpload {
        request: 0,
        signed_prekey: account.signed_prekey().clone(),
        one_time,
    };
    let status = bob.upload_prekeys(upload).await.unwrap();
    assert_eq!(status.one_time_prekeys, 2);

    let mut seen = Vec::new();
    for _ in 0..3 {
        let bytes = alice.fetch_bundle(bob.mailbox()).await.unwrap();
        let bundle = PrekeyBundle::from_bytes(&bytes).unwrap();
        assert_eq!(MailboxId::of(&bundle.identity), bob.mailbox());
        let verified = bundle.verify(&BundlePolicy::default(), now).unwrap();
        seen.push(verified.bundle().one_time_prekey.as_ref().map(|key| key.id));
    }
    // Each one-time prekey is handed out once; then bundles come without one.
    assert!(seen[0].is_some() && seen[1].is_some() && seen[0] != seen[1]);
    assert_eq!(seen[2], None);
    server.shutdown().await;
}

#[tokio::test]
async fn after_a_server_restart_clients_reconnect_resend_and_get_redeliveries() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let addr = server.local_addr();
    let mut alice = Client::start(client_config(&pki, addr), identity()).unwrap();
    let mut bob = Client::start(client_config(&pki, addr), identity()).unwrap();
    connected(&mut alice).await;
    connected(&mut bob).await;

    // Bob receives m1 but does not acknowledge it before the crash.
    alice
        .send(vec![bob.mailbox()], b"m1".to_vec())
        .await
        .unwrap();
    let first = wait_for(&mut bob, delivered).await;

    server.abort();
    for client in [&mut alice, &mut bob] {
        wait_for(client, |event| match event {
            Event::Disconnected { .. } => Some(()),
            _ => None,
        })
        .await;
    }
    // Sent while the relay is down: queued, then resent after the reconnect.
    let m2 = alice
        .send(vec![bob.mailbox()], b"m2".to_vec())
        .await
        .unwrap();
    let m3 = alice
        .send(vec![bob.mailbox()], b"m3".to_vec())
        .await
        .unwrap();

    let server = serve(pki.server_config(), relay.clone(), Some(addr)).await;
    let mut accepted = Vec::new();
    while accepted.len() < 2 {
        if let Event::Accepted(id) = next_event(&mut alice).await {
            accepted.push(id);
        }
    }
    assert_eq!(accepted, [m2, m3]);

    let mut payloads = Vec::new();
    while payloads.len() < 3 {
        let delivery = wait_for(&mut bob, delivered).await;
        if delivery.payload == b"m1" {
            assert_eq!(
                delivery.delivery, first.delivery,
                "redelivered under the same id"
            );
        }
        payloads.push(delivery.payload);
        bob.ack(vec![delivery.delivery]).await.unwrap();
    }
    assert_eq!(payloads, [b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()]);
    assert_eq!(relay.accepted_sends(), 3, "each send stored once");
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_with_going_away_and_a_second_connection_replaces_the_first() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let addr = server.local_addr();
    let bob_identity = identity();
    let mut first = Client::start(client_config(&pki, addr), duplicate(&bob_identity)).unwrap();
    connected(&mut first).await;
    let mut second = Client::start(client_config(&pki, addr), bob_identity).unwrap();
    connected(&mut second).await;
    let stopped = wait_for(&mut first, |event| match event {
        Event::Stopped { error } => Some(error),
        _ => None,
    })
    .await;
    assert!(
        matches!(
            stopped,
            Error::Closed {
                code: CloseCode::REPLACED,
                ..
            }
        ),
        "{stopped:?}"
    );

    server.shutdown().await;
    let error = wait_for(&mut second, |event| match event {
        Event::Disconnected { error, .. } => Some(error),
        _ => None,
    })
    .await;
    assert!(
        matches!(
            error,
            Error::Closed {
                code: CloseCode::GOING_AWAY,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_burst_of_sends_and_acks_arrives_complete_and_in_order() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let mut alice = Client::start(client_config(&pki, server.local_addr()), identity()).unwrap();
    let mut bob = Client::start(client_config(&pki, server.local_addr()), identity()).unwrap();
    connected(&mut alice).await;
    connected(&mut bob).await;

    // Queued without waiting for acceptance, so that the client writes them in batches.
    const COUNT: u32 = 300;
    let requester = alice.requester();
    let to = bob.mailbox();
    let sending = tokio::spawn(async move {
        let mut ids = Vec::new();
        for n in 0..COUNT {
            ids.push(
                requester
                    .send(vec![to], n.to_be_bytes().to_vec())
                    .await
                    .unwrap(),
            );
        }
        ids
    });
    let mut accepted = Vec::new();
    while accepted.len() < COUNT as usize {
        if let Event::Accepted(id) = next_event(&mut alice).await {
            accepted.push(id);
        }
    }
    assert_eq!(
        accepted,
        sending.await.unwrap(),
        "accepted in the order sent"
    );

    // Bob acknowledges each delivery at once; the acks queue up behind each other.
    for n in 0..COUNT {
        let delivery = wait_for(&mut bob, delivered).await;
        assert_eq!(
            delivery.payload,
            n.to_be_bytes(),
            "delivered in the order sent"
        );
        bob.ack(vec![delivery.delivery]).await.unwrap();
    }
    // The relay handles one connection's requests in order: once this is answered, every
    // ack before it was applied.
    assert!(matches!(
        bob.fetch_bundle(bob.mailbox()).await,
        Err(Error::Refused {
            code: ErrorCode::NoBundle
        })
    ));
    assert_eq!(relay.stored(bob.mailbox()), 0, "every ack arrived");
    assert_eq!(relay.accepted_sends(), COUNT as usize);
    server.shutdown().await;
}
