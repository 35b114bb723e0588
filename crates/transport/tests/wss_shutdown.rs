//! Over real TLS on 127.0.0.1: graceful shutdown ends connections promptly in every phase
//! (TLS, authentication, authenticated), and answers already queued are written before a
//! 1001 `going_away` or 4008 `replaced` close.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire_transport::auth;
use sealwire_transport::code::CloseCode;
use sealwire_transport::frame::{ClientFrame, MailboxId, MessageId, Send, ServerFrame};
use sealwire_transport::server::ServerHandle;
use support::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a graceful shutdown may take here: well under the 10 s handshake, authentication
/// and write timeouts, above the 2 s close grace.
const PROMPT: Duration = Duration::from_secs(5);

/// Waits until the server counts `expected` open connections.
async fn wait_connections(server: &ServerHandle, expected: usize) {
    tokio::time::timeout(WAIT, async {
        while server.connections() != expected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("connection count not reached");
}

/// Starts a graceful shutdown on its own task (so the test can keep reading meanwhile).
fn start_shutdown(server: ServerHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(server.shutdown())
}

/// Expects the shutdown to have returned, or to return promptly.
async fn expect_shut_down(shutdown: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(PROMPT, shutdown)
        .await
        .expect("shutdown did not return in time")
        .unwrap();
}

/// A raw connection authenticated as `identity`, with its mailbox.
async fn authenticated(
    pki: &Pki,
    server: &ServerHandle,
    identity: &sealwire_core::IdentityKeyPair,
) -> (RawSocket, MailboxId) {
    let (ws, ready) = raw_authenticate(pki, server.local_addr(), identity).await;
    match ready {
        Ok(ServerFrame::Ready(ready)) => (ws, ready.mailbox),
        other => panic!("not ready: {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_right_after_spawn_returns() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    // Called on this task at once: the accept loop has not run yet (single-threaded
    // runtime), and must still see the shutdown.
    tokio::time::timeout(PROMPT, server.shutdown())
        .await
        .expect("shutdown did not return in time");
}

#[tokio::test]
async fn shutdown_during_tls_drops_the_connection_promptly() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    // Connected, not a byte of TLS sent: the server waits in the TLS handshake.
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    wait_connections(&server, 1).await;

    expect_shut_down(start_shutdown(server)).await;
    let mut buf = [0u8; 16];
    match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(n)) => panic!("the server sent {n} bytes"),
        Err(_) => panic!("the connection stayed open"),
    }
    // Abandoned by the shutdown, not a failed handshake (nor anything else).
    assert_eq!(relay.handshake_failures(), []);
    assert_eq!(relay.auth_failures(), []);
    assert_eq!(relay.disconnects(), []);
}

#[tokio::test]
async fn shutdown_during_authentication_closes_with_going_away_and_no_ready() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let addr = server.local_addr();
    // Past TLS and the upgrade, the challenge read, no `hello` yet.
    let (mut ws, binding, challenge) = raw_challenged(&pki, addr).await;
    wait_connections(&server, 1).await;

    let shutdown = start_shutdown(server);
    assert_eq!(raw_read(&mut ws).await.unwrap_err(), CloseCode::GOING_AWAY);
    expect_shut_down(shutdown).await;
    assert_eq!(
        relay.auth_failures(),
        [(ws_peer(&ws), CloseCode::GOING_AWAY)]
    );
    assert_eq!(relay.disconnects(), [], "never connected");

    // A `hello` now gets no `ready`: the connection is gone.
    let hello = auth::respond(&identity(), &challenge, SERVER_NAME, &binding, None).unwrap();
    let bytes = sealwire_transport::frame::encode(&ClientFrame::Hello(hello)).unwrap();
    let _ = futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::Binary(bytes.into()),
    )
    .await;
    assert!(raw_read(&mut ws).await.is_err());
}

/// The local address of a raw client: the server's `peer`.
fn ws_peer(ws: &RawSocket) -> std::net::SocketAddr {
    ws.get_ref().get_ref().0.local_addr().unwrap()
}

/// Sends a message to `to` on `ws`, and returns its id.
async fn send(ws: &mut RawSocket, to: MailboxId) -> MessageId {
    let id = MessageId::random();
    let send = ClientFrame::Send(Send {
        id,
        to: vec![to],
        payload: b"in flight".to_vec(),
    });
    raw_send(ws, &send).await;
    id
}

/// Reads until the close; expects the `accepted` of `id` (and its delivery if `delivery`),
/// then `code`.
async fn expect_answered_then_closed(
    ws: &mut RawSocket,
    id: MessageId,
    delivery: bool,
    code: CloseCode,
) {
    let (mut accepted, mut delivered) = (false, !delivery);
    loop {
        match raw_read(ws).await {
            Ok(ServerFrame::Accepted(a)) if a.id == id => accepted = true,
            Ok(ServerFrame::Deliver(d)) if delivery && d.id == id => delivered = true,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(closed) => {
                assert!(accepted, "closed with {closed} before `accepted`");
                assert!(delivered, "closed with {closed} before the delivery");
                assert_eq!(closed, code);
                return;
            }
        }
    }
}

#[tokio::test]
async fn answers_queued_before_a_shutdown_are_written_before_going_away() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    relay.set_send_delay(Duration::from_millis(300));
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let (mut ws, me) = authenticated(&pki, &server, &identity()).await;

    // To its own mailbox: the answer and a delivery are queued when the request returns.
    let id = send(&mut ws, me).await;
    relay
        .wait_until(|relay| (relay.sends_started() == 1).then_some(()))
        .await;
    let shutdown = start_shutdown(server);
    expect_answered_then_closed(&mut ws, id, true, CloseCode::GOING_AWAY).await;
    expect_shut_down(shutdown).await;
    assert_eq!(relay.accepted_sends(), 1);
    assert_eq!(relay.wait_disconnect(me).await, CloseCode::GOING_AWAY);
}

#[tokio::test]
async fn answers_queued_before_a_replacement_are_written_before_replaced() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    relay.set_send_delay(Duration::from_millis(300));
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let me = identity();
    let (mut first, mailbox) = authenticated(&pki, &server, &duplicate(&me)).await;

    // To another mailbox (a delivery to its own would go to its successor).
    let id = send(&mut first, MailboxId::of(identity().public())).await;
    relay
        .wait_until(|relay| (relay.sends_started() == 1).then_some(()))
        .await;
    // The same identity connects again while the first connection's request is in progress.
    let (_second, again) = authenticated(&pki, &server, &me).await;
    assert_eq!(again, mailbox);
    expect_answered_then_closed(&mut first, id, false, CloseCode::REPLACED).await;
    expect_shut_down(start_shutdown(server)).await;
}
