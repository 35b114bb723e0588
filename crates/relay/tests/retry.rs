//! Sender retries and malformed sends, frame by frame: a `send` repeated with the same id is
//! stored and delivered once; a `send` from another connection of another sender with the
//! same id is a different message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sealwire_transport::frame::{Accepted, ClientFrame, MessageId, Send, ServerFrame};
use support::raw::Raw;
use support::*;

#[tokio::test]
async fn a_repeated_send_is_accepted_again_but_stored_and_delivered_once() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&pki, config(dir.path())).await;
    let addr = relay.local_addr();
    let bob_identity = identity();
    let bob_mailbox = register(&pki, addr, &bob_identity).await;

    let alice = identity();
    let id = MessageId([5; 16]);
    let send = ClientFrame::Send(Send {
        id,
        to: vec![bob_mailbox],
        payload: b"once".to_vec(),
    });
    let mut raw = Raw::connect(&pki, addr, &alice).await;
    raw.send(&send).await;
    assert_eq!(raw.read().await, Ok(ServerFrame::Accepted(Accepted { id })));
    // The same send again, on the same connection and after a reconnect.
    raw.send(&send).await;
    assert_eq!(raw.read().await, Ok(ServerFrame::Accepted(Accepted { id })));
    drop(raw);
    let mut raw = Raw::connect(&pki, addr, &alice).await;
    raw.send(&send).await;
    assert_eq!(raw.read().await, Ok(ServerFrame::Accepted(Accepted { id })));

    // Carol reuses the id: hers is a different message.
    let mut carol = Raw::connect(&pki, addr, &identity()).await;
    carol
        .send(&ClientFrame::Send(Send {
            id,
            to: vec![bob_mailbox],
            payload: b"carol's".to_vec(),
        }))
        .await;
    assert_eq!(
        carol.read().await,
        Ok(ServerFrame::Accepted(Accepted { id }))
    );

    let mut bob = client(&pki, addr, duplicate(&bob_identity));
    connected(&mut bob).await;
    let first = wait_for(&mut bob, delivered).await;
    let second = wait_for(&mut bob, delivered).await;
    assert_eq!(first.payload, b"once");
    assert_eq!(second.payload, b"carol's");
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        wait_for(&mut bob, delivered).await
    })
    .await;
    assert!(nothing.is_err(), "delivered a third time: {nothing:?}");
    let admin = relay.admin_addr().unwrap();
    assert_eq!(
        metric(admin, "sealwire_relay_messages_duplicate_total").await,
        2.0
    );
    assert_eq!(
        metric(admin, "sealwire_relay_messages_accepted_total").await,
        2.0
    );
    relay.shutdown().await;
}
