//! Over real TLS on 127.0.0.1: the limits. Oversize messages and payloads, a trickled
//! handshake, a silent client, a slow consumer, a missed pong, an idle connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rustls::pki_types::ServerName;
use sealwire_transport::client::{Client, Event};
use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::frame::{
    ClientFrame, ErrorFrame, MailboxId, MessageId, Send, ServerFrame, Subject,
};
use sealwire_transport::limits::Limits;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

fn send(to: Vec<MailboxId>, payload_len: usize) -> (MessageId, ClientFrame) {
    let id = MessageId::random();
    (
        id,
        ClientFrame::Send(Send {
            id,
            to,
            payload: vec![0xEE; payload_len],
        }),
    )
}

async fn expect_error(ws: &mut RawSocket, frame: &ClientFrame, id: MessageId, code: ErrorCode) {
    raw_send(ws, frame).await;
    let expected = ServerFrame::Error(ErrorFrame {
        code: code.to_u16(),
        subject: Subject::Send(id),
    });
    assert_eq!(raw_read(ws).await, Ok(expected));
}

#[tokio::test]
async fn requests_over_a_limit_get_an_error_and_the_connection_stays_open() {
    let pki = Pki::new();
    let limits = Limits::default();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let (mut ws, ready) = raw_authenticate(&pki, server.local_addr(), &identity()).await;
    let Ok(ServerFrame::Ready(ready)) = ready else {
        panic!("not ready: {ready:?}")
    };
    assert_eq!(ready.max_payload as usize, limits.max_payload);
    let me = ready.mailbox;

    let (id, frame) = send(vec![me], limits.max_payload + 1);
    expect_error(&mut ws, &frame, id, ErrorCode::PayloadTooLarge).await;
    let many: Vec<_> = (0..=limits.max_recipients)
        .map(|i| MailboxId([(i % 251) as u8; 32]))
        .collect();
    let many: Vec<_> = many
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            m.0[1] = (i / 251) as u8;
            m
        })
        .collect();
    let (id, frame) = send(many, 10);
    expect_error(&mut ws, &frame, id, ErrorCode::TooManyRecipients).await;
    let (id, frame) = send(vec![me, me], 10);
    expect_error(&mut ws, &frame, id, ErrorCode::BadRequest).await;
    let (id, frame) = send(vec![], 10);
    expect_error(&mut ws, &frame, id, ErrorCode::BadRequest).await;

    // Exactly at the limit is fine, and the connection still works.
    let (id, frame) = send(vec![me], limits.max_payload);
    raw_send(&mut ws, &frame).await;
    let mut accepted = false;
    for _ in 0..2 {
        match raw_read(&mut ws).await.unwrap() {
            ServerFrame::Accepted(a) => accepted |= a.id == id,
            ServerFrame::Deliver(d) => assert_eq!(d.payload.len(), limits.max_payload),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(accepted);
}

#[tokio::test]
async fn an_oversize_message_closes_the_connection_with_1009() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let (mut ws, ready) = raw_authenticate(&pki, server.local_addr(), &identity()).await;
    assert!(matches!(ready, Ok(ServerFrame::Ready(_))));
    let oversize = vec![0u8; Limits::default().max_message_size + 1];
    ws.send(Message::Binary(oversize.into())).await.unwrap();
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::MESSAGE_TOO_BIG));

    // Before authentication too.
    let (mut ws, _, _) = raw_challenged(&pki, server.local_addr()).await;
    let oversize = vec![0u8; Limits::default().max_message_size + 1];
    ws.send(Message::Binary(oversize.into())).await.unwrap();
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::MESSAGE_TOO_BIG));
}

fn quick_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(400),
        auth_timeout: Duration::from_millis(400),
        ..Limits::default()
    }
}

/// Writes `bytes` one byte every 50 ms until the server hangs up; returns how long it took.
async fn trickle(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    bytes: &[u8],
) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    for byte in bytes.iter().cycle() {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            _ => {}
        }
        assert!(
            start.elapsed() < WAIT,
            "the server let a trickled handshake go on"
        );
    }
    start.elapsed()
}

#[tokio::test]
async fn a_trickled_handshake_is_cut_off_at_the_handshake_timeout() {
    let pki = Pki::new();
    let server = serve(
        pki.server_config().limits(quick_limits()),
        MemoryRelay::new(),
        None,
    )
    .await;
    let addr = server.local_addr();

    // Trickling the TLS ClientHello itself.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let took = trickle(tcp, &hello).await;
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Completing TLS, then trickling the HTTP upgrade request.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = pki
        .client_tls()
        .connector()
        .connect(name, tcp)
        .await
        .unwrap();
    let took = trickle(
        tls,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n",
    )
    .await;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_client_that_never_answers_the_challenge_is_closed_with_auth_timeout() {
    let pki = Pki::new();
    let server = serve(
        pki.server_config().limits(quick_limits()),
        MemoryRelay::new(),
        None,
    )
    .await;
    let (mut ws, _, _) = raw_challenged(&pki, server.local_addr()).await;
    let start = Instant::now();
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::AUTH_TIMEOUT));
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_loses_nothing() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let limits = Limits {
        outbound_queue: 4,
        write_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = serve(pki.server_config().limits(limits), relay.clone(), None).await;
    let addr = server.local_addr();
    let bob = identity();
    let bob_mailbox = MailboxId::of(bob.public());
    // Bob authenticates, then stops reading.
    let (_stalled, ready) = raw_authenticate(&pki, addr, &bob).await;
    assert!(matches!(ready, Ok(ServerFrame::Ready(_))));

    let mut alice = Client::start(client_config(&pki, addr), identity()).unwrap();
    const MESSAGES: usize = 300;
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        let mut payload = vec![0xAB; 60 * 1024];
        payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
        sent.push(alice.send(vec![bob_mailbox], payload).await.unwrap());
    }
    let code = tokio::time::timeout(WAIT, relay.wait_disconnect(bob_mailbox))
        .await
        .unwrap();
    assert_eq!(code, CloseCode::SLOW_CONSUMER);
    // Alice's sends are all accepted and stored; none was lost with the slow connection.
    let mut accepted = 0;
    while accepted < MESSAGES {
        if let Event::Accepted(_) = next_event(&mut alice).await {
            accepted += 1;
        }
    }
    assert_eq!(relay.stored(bob_mailbox), MESSAGES);

    // Bob comes back with a client that reads: everything arrives.
    let mut bob = Client::start(client_config(&pki, addr), bob).unwrap();
    let mut received = std::collections::BTreeSet::new();
    while received.len() < MESSAGES {
        if let Event::Delivered(delivery) = next_event(&mut bob).await {
            received.insert(delivery.id);
            bob.ack(vec![delivery.delivery]).await.unwrap();
        }
    }
    assert_eq!(received, sent.into_iter().collect());
}

fn heartbeat_limits(idle: Duration) -> Limits {
    Limits {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(300),
        idle_timeout: idle,
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_missed_pong_closes_the_connection_and_a_live_client_stays_connected() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let limits = heartbeat_limits(Duration::from_secs(5));
    let server = serve(
        pki.server_config().limits(limits.clone()),
        relay.clone(),
        None,
    )
    .await;
    let addr = server.local_addr();

    // A live client answers pings (its library does, while it reads) and stays connected.
    let mut config = client_config(&pki, addr);
    config.limits = limits;
    let mut alive = Client::start(config, identity()).unwrap();
    connected(&mut alive).await;

    // A client that stopped reading never answers: closed once the pong is overdue.
    let bob = identity();
    let (_stalled, ready) = raw_authenticate(&pki, addr, &bob).await;
    assert!(matches!(ready, Ok(ServerFrame::Ready(_))));
    let start = Instant::now();
    let code = tokio::time::timeout(WAIT, relay.wait_disconnect(MailboxId::of(bob.public())))
        .await
        .unwrap();
    assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT);
    assert!(start.elapsed() >= Duration::from_millis(300));

    // Many ping rounds later, the live client has not been disconnected.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !relay
            .disconnects()
            .iter()
            .any(|(mailbox, _)| *mailbox == alive.mailbox())
    );
    alive
        .send(vec![alive.mailbox()], b"still here".to_vec())
        .await
        .unwrap();
    let delivered = wait_for(&mut alive, |event| match event {
        Event::Delivered(delivery) => Some(delivery.payload),
        Event::Disconnected { error, .. } => panic!("disconnected: {error}"),
        _ => None,
    })
    .await;
    assert_eq!(delivered, b"still here");
}

#[tokio::test]
async fn a_connection_that_receives_nothing_is_closed_at_the_idle_timeout() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    // The pong deadline (100 + 2000 ms) is later than the idle timeout (500 ms).
    let limits = Limits {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = serve(pki.server_config().limits(limits), relay.clone(), None).await;
    let bob = identity();
    let (_stalled, ready) = raw_authenticate(&pki, server.local_addr(), &bob).await;
    assert!(matches!(ready, Ok(ServerFrame::Ready(_))));
    let code = tokio::time::timeout(WAIT, relay.wait_disconnect(MailboxId::of(bob.public())))
        .await
        .unwrap();
    assert_eq!(code, CloseCode::IDLE_TIMEOUT);
}

#[tokio::test]
async fn a_client_pipelining_requests_is_slowed_down_not_disconnected() {
    let pki = Pki::new();
    let limits = Limits {
        outbound_queue: 4,
        ..Limits::default()
    };
    let server = serve(pki.server_config().limits(limits), MemoryRelay::new(), None).await;
    let (mut ws, ready) = raw_authenticate(&pki, server.local_addr(), &identity()).await;
    assert!(matches!(ready, Ok(ServerFrame::Ready(_))));
    // 200 sends written back to back before reading a single answer: far more answers than
    // the outbound queue holds.
    let mut ids = Vec::new();
    for _ in 0..200 {
        let (id, frame) = send(vec![MailboxId([0x42; 32])], 16);
        raw_send(&mut ws, &frame).await;
        ids.push(id);
    }
    for id in ids {
        match raw_read(&mut ws).await {
            Ok(ServerFrame::Accepted(accepted)) => assert_eq!(accepted.id, id),
            other => panic!("expected accepted, got {other:?}"),
        }
    }
}
