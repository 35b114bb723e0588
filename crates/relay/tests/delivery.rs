//! Routing and store-and-forward over real WSS on 127.0.0.1: live and stored delivery, acks,
//! redelivery, order, group fan-out, unknown mailboxes, quotas, graceful shutdown and restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;

use sealwire_transport::client::Event;
use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::error::Error;
use support::*;

fn rejected(event: Event) -> Option<ErrorCode> {
    match event {
        Event::Rejected { code, .. } => Some(code),
        _ => None,
    }
}

fn accepted(event: Event) -> Option<()> {
    matches!(event, Event::Accepted(_)).then_some(())
}

#[tokio::test]
async fn live_and_stored_messages_arrive_in_order_and_acked_ones_are_not_redelivered() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&pki, config(dir.path())).await;
    let addr = relay.local_addr();
    let bob_identity = identity();
    let bob_mailbox = register(&pki, addr, &bob_identity).await;

    // Bob is offline: five messages are stored.
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;
    for i in 0..5u8 {
        alice.send(vec![bob_mailbox], vec![i; 100]).await.unwrap();
        wait_for(&mut alice, accepted).await;
    }
    // Bob connects: the backlog comes in order; he acknowledges the first three only.
    let mut bob = client(&pki, addr, duplicate(&bob_identity));
    connected(&mut bob).await;
    let mut first = Vec::new();
    for i in 0..5u8 {
        let delivery = wait_for(&mut bob, delivered).await;
        assert_eq!(delivery.payload, vec![i; 100]);
        assert_eq!(delivery.from, alice.mailbox());
        first.push(delivery.delivery);
    }
    bob.ack(first[..3].to_vec()).await.unwrap();
    // Live: a message sent now arrives at once.
    alice
        .send(vec![bob_mailbox], b"live".to_vec())
        .await
        .unwrap();
    let live = wait_for(&mut bob, delivered).await;
    assert_eq!(live.payload, b"live");
    assert!(live.delivery > first[4]);
    bob.close().await;

    // After a reconnect only the unacknowledged ones come again, with the same delivery ids.
    let mut bob = client(&pki, addr, duplicate(&bob_identity));
    connected(&mut bob).await;
    let mut again = Vec::new();
    for _ in 0..3 {
        again.push(wait_for(&mut bob, delivered).await.delivery);
    }
    assert_eq!(again, vec![first[3], first[4], live.delivery]);
    bob.close().await;
    alice.close().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_group_send_fans_out_to_every_recipient_once() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.max_recipients = 3;
    let relay = start(&pki, config).await;
    let addr = relay.local_addr();

    let mut members = Vec::new();
    for _ in 0..3 {
        let mut member = client(&pki, addr, identity());
        connected(&mut member).await;
        members.push(member);
    }
    let offline = identity();
    let offline_mailbox = register(&pki, addr, &offline).await;
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;
    let to: Vec<_> = members.iter().map(|m| m.mailbox()).collect();
    alice
        .send(to.clone(), b"to the group".to_vec())
        .await
        .unwrap();
    wait_for(&mut alice, accepted).await;
    for member in &mut members {
        let delivery = wait_for(member, delivered).await;
        assert_eq!(delivery.payload, b"to the group");
    }
    // More recipients than the relay allows: refused by the relay's announced limit.
    let mut too_many = to.clone();
    too_many.push(offline_mailbox);
    // (The client checks its own, larger default; the relay announced 3 and refuses.)
    alice.send(too_many, b"x".to_vec()).await.unwrap();
    assert_eq!(
        wait_for(&mut alice, rejected).await,
        ErrorCode::TooManyRecipients
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn a_send_to_a_mailbox_the_relay_never_saw_is_refused() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&pki, config(dir.path())).await;
    let mut alice = client(&pki, relay.local_addr(), identity());
    connected(&mut alice).await;
    let stranger = sealwire_transport::frame::MailboxId([7; 32]);
    alice
        .send(vec![stranger], b"hello?".to_vec())
        .await
        .unwrap();
    assert_eq!(
        wait_for(&mut alice, rejected).await,
        ErrorCode::UnknownMailbox
    );
    assert!(
        relay.metrics().encode().contains("unknown_mailbox"),
        "the refusal is counted"
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn a_full_mailbox_refuses_with_quota_exceeded_until_its_owner_acknowledges() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.quotas.max_messages = 3;
    let relay = start(&pki, config).await;
    let addr = relay.local_addr();
    let bob_identity = identity();
    let bob_mailbox = register(&pki, addr, &bob_identity).await;
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;
    for _ in 0..3 {
        alice.send(vec![bob_mailbox], b"m".to_vec()).await.unwrap();
        wait_for(&mut alice, accepted).await;
    }
    alice
        .send(vec![bob_mailbox], b"one too many".to_vec())
        .await
        .unwrap();
    let code = wait_for(&mut alice, rejected).await;
    assert_eq!(code, ErrorCode::QuotaExceeded);
    assert!(code.is_retryable());

    let mut bob = client(&pki, addr, duplicate(&bob_identity));
    connected(&mut bob).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(wait_for(&mut bob, delivered).await.delivery);
    }
    bob.ack(ids).await.unwrap();
    // Once acknowledged, there is room again (the ack is applied before the next request of
    // Bob's connection; poll briefly for Alice's side).
    let mut stored = false;
    for _ in 0..50 {
        alice
            .send(vec![bob_mailbox], b"again".to_vec())
            .await
            .unwrap();
        let outcome = wait_for(&mut alice, |event| match event {
            Event::Accepted(_) => Some(true),
            Event::Rejected { .. } => Some(false),
            _ => None,
        })
        .await;
        if outcome {
            stored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(stored);
    assert_eq!(wait_for(&mut bob, delivered).await.payload, b"again");
    relay.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_says_going_away_and_a_restart_keeps_every_accepted_message() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&pki, config(dir.path())).await;
    let addr = relay.local_addr();
    let bob_identity = identity();
    let bob_mailbox = register(&pki, addr, &bob_identity).await;
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;
    let mut sent = HashSet::new();
    for i in 0..20u32 {
        let payload = i.to_be_bytes().to_vec();
        alice
            .send(vec![bob_mailbox], payload.clone())
            .await
            .unwrap();
        wait_for(&mut alice, accepted).await;
        sent.insert(payload);
    }
    relay.shutdown().await;
    let error = wait_for(&mut alice, |event| match event {
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
    alice.close().await;

    // Same data directory, new process state: everything accepted is still there.
    let mut config = config(dir.path());
    config.listen = addr;
    let relay = start(&pki, config).await;
    let mut bob = client(&pki, relay.local_addr(), duplicate(&bob_identity));
    connected(&mut bob).await;
    let mut got = HashSet::new();
    while got.len() < sent.len() {
        got.insert(wait_for(&mut bob, delivered).await.payload);
    }
    assert_eq!(got, sent);
    relay.shutdown().await;
}
