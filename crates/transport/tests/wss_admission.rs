//! Over real TLS on 127.0.0.1: admission control at accept time (connections in total, per
//! address, connection rate), `ServerHandle::connections`, and the observability hooks
//! `Service::refused`, `Service::handshake_failed` and `Service::auth_failed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use rustls::pki_types::ServerName;
use sealwire_transport::auth;
use sealwire_transport::code::CloseCode;
use sealwire_transport::frame::{ClientFrame, MailboxId, MessageId, Send, ServerFrame};
use sealwire_transport::limits::Limits;
use sealwire_transport::server::{
    AdmissionLimits, AdmissionRefusal, HandshakeFailure, OriginPolicy, ServerHandle,
};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn admission(max_connections: usize, per_ip: usize, rate: u32, burst: u32) -> AdmissionLimits {
    AdmissionLimits {
        max_connections,
        max_connections_per_ip: per_ip,
        connection_rate_per_ip: rate,
        connection_burst_per_ip: burst,
    }
}

/// Waits until the server counts `expected` open connections.
async fn wait_connections(server: &ServerHandle, expected: usize) {
    tokio::time::timeout(WAIT, async {
        while server.connections() != expected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the server counts {} connections, not {expected}",
            server.connections()
        )
    });
}

/// Authenticates a raw connection and returns it with its mailbox.
async fn authenticated(pki: &Pki, addr: SocketAddr) -> (RawSocket, MailboxId) {
    let (ws, ready) = raw_authenticate(pki, addr, &identity()).await;
    match ready {
        Ok(ServerFrame::Ready(ready)) => (ws, ready.mailbox),
        other => panic!("not ready: {other:?}"),
    }
}

/// Sends a message to the connection's own mailbox and expects it accepted and delivered.
async fn echo(ws: &mut RawSocket, me: MailboxId) {
    let id = MessageId::random();
    let send = ClientFrame::Send(Send {
        id,
        to: vec![me],
        payload: b"still here".to_vec(),
    });
    raw_send(ws, &send).await;
    let (mut accepted, mut delivered) = (false, false);
    while !(accepted && delivered) {
        match raw_read(ws).await {
            Ok(ServerFrame::Accepted(a)) => accepted |= a.id == id,
            Ok(ServerFrame::Deliver(d)) => delivered |= d.id == id,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Expects a TCP connection to be closed by the server without a byte of TLS: the client sees
/// the end of the stream (or a reset) at once.
async fn expect_dropped(tcp: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("the server sent {n} bytes on a refused connection"),
        Err(_) => panic!("the refused connection stayed open"),
    }
}

/// Closes a raw connection cleanly and reads until the server's close.
async fn close(mut ws: RawSocket) {
    ws.close(None).await.unwrap();
    let _ = tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

#[tokio::test]
async fn a_third_connection_from_one_address_is_dropped_before_tls() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let config = pki.server_config().admission(admission(100, 2, 1000, 1000));
    let server = serve(config, relay.clone(), None).await;
    let addr = server.local_addr();
    assert_eq!(server.connections(), 0);

    let (mut first, first_mailbox) = authenticated(&pki, addr).await;
    let (mut second, second_mailbox) = authenticated(&pki, addr).await;
    assert_eq!(server.connections(), 2);

    // The third TCP connection is accepted by the kernel and closed by the server at once.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let third_addr = third.local_addr().unwrap();
    expect_dropped(&mut third).await;
    let refused = relay
        .wait_until(|relay| relay.refused().first().copied())
        .await;
    assert_eq!(refused, (third_addr, AdmissionRefusal::TooManyFromAddress));
    // A TLS client sees the handshake fail.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = tokio::time::timeout(WAIT, pki.client_tls().connector().connect(name, tcp)).await;
    assert!(tls.unwrap().is_err());
    relay
        .wait_until(|relay| (relay.refused().len() == 2).then_some(()))
        .await;
    // No handshake was attempted on them.
    assert!(relay.handshake_failures().is_empty());
    assert_eq!(server.connections(), 2);

    // The two admitted clients keep working.
    echo(&mut first, first_mailbox).await;
    echo(&mut second, second_mailbox).await;

    // Once one closes, its place is free again.
    close(first).await;
    relay.wait_disconnect(first_mailbox).await;
    wait_connections(&server, 1).await;
    let (mut third, third_mailbox) = authenticated(&pki, addr).await;
    assert_eq!(server.connections(), 2);
    echo(&mut third, third_mailbox).await;
    echo(&mut second, second_mailbox).await;

    close(second).await;
    close(third).await;
    wait_connections(&server, 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn max_connections_bounds_the_total() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let config = pki.server_config().admission(admission(2, 64, 1000, 1000));
    let server = serve(config, relay.clone(), None).await;
    let addr = server.local_addr();

    // A connection counts from accept, before TLS and authentication.
    let idle = TcpStream::connect(addr).await.unwrap();
    wait_connections(&server, 1).await;
    let (mut ws, mailbox) = authenticated(&pki, addr).await;
    assert_eq!(server.connections(), 2);

    let mut refused = TcpStream::connect(addr).await.unwrap();
    let refused_addr = refused.local_addr().unwrap();
    expect_dropped(&mut refused).await;
    let seen = relay
        .wait_until(|relay| relay.refused().first().copied())
        .await;
    assert_eq!(seen, (refused_addr, AdmissionRefusal::TooManyConnections));
    echo(&mut ws, mailbox).await;

    // Closing the idle TCP connection frees a place (its handshake fails first).
    drop(idle);
    wait_connections(&server, 1).await;
    let (second, _) = authenticated(&pki, addr).await;
    assert_eq!(server.connections(), 2);
    close(ws).await;
    close(second).await;
    wait_connections(&server, 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_burst_are_refused_until_the_bucket_refills() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    // Two at once, then one every 200 ms.
    let config = pki.server_config().admission(admission(100, 64, 5, 2));
    let server = serve(config, relay.clone(), None).await;
    let addr = server.local_addr();

    // Back-to-back connections: the burst is admitted, the rest refused.
    let mut sockets = Vec::new();
    for _ in 0..6 {
        sockets.push(TcpStream::connect(addr).await.unwrap());
    }
    let refused = relay
        .wait_until(|relay| {
            let refused = relay.refused();
            (refused.len() + server.connections() == sockets.len()).then_some(refused)
        })
        .await;
    assert!(
        refused.len() >= 2,
        "only {} of 6 refused: {refused:?}",
        refused.len()
    );
    assert!(
        refused
            .iter()
            .all(|(_, reason)| *reason == AdmissionRefusal::ConnectionRate)
    );
    for socket in &mut sockets {
        if refused
            .iter()
            .any(|(peer, _)| *peer == socket.local_addr().unwrap())
        {
            expect_dropped(socket).await;
        }
    }
    drop(sockets);
    wait_connections(&server, 0).await;

    // After a refill a full connection is admitted and works.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (mut ws, mailbox) = authenticated(&pki, addr).await;
    echo(&mut ws, mailbox).await;
    close(ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_failures_are_reported_with_their_kind() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let limits = Limits {
        handshake_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let config = pki
        .server_config()
        .limits(limits)
        .origins(OriginPolicy::allow(["https://chat.example"]));
    let server = serve(config, relay.clone(), None).await;
    let addr = server.local_addr();

    // Not TLS at all.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let peer = tcp.local_addr().unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let failure = relay
        .wait_until(|relay| relay.handshake_failures().last().copied())
        .await;
    assert_eq!(failure, (peer, HandshakeFailure::Tls));
    drop(tcp);

    // TLS, but no subprotocol; then a foreign Origin.
    for headers in [
        vec![],
        vec![
            (
                "sec-websocket-protocol",
                sealwire_transport::frame::SUBPROTOCOL,
            ),
            ("origin", "https://evil.example"),
        ],
    ] {
        let before = relay.handshake_failures().len();
        assert!(raw_connect(&pki, addr, &headers).await.is_err());
        let failure = relay
            .wait_until(|relay| {
                let failures = relay.handshake_failures();
                (failures.len() > before).then(|| failures[before])
            })
            .await;
        assert_eq!(failure.1, HandshakeFailure::Upgrade);
    }

    // TCP connected, then silence until the handshake timeout.
    let before = relay.handshake_failures().len();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let peer = silent.local_addr().unwrap();
    let failure = relay
        .wait_until(|relay| {
            let failures = relay.handshake_failures();
            (failures.len() > before).then(|| failures[before])
        })
        .await;
    assert_eq!(failure, (peer, HandshakeFailure::Timeout));
    expect_dropped(&mut silent).await;

    assert!(relay.auth_failures().is_empty());
    assert!(relay.refused().is_empty());
    wait_connections(&server, 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn authentication_failures_are_reported_with_the_close_code_sent() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let limits = Limits {
        auth_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = serve(pki.server_config().limits(limits), relay.clone(), None).await;
    let addr = server.local_addr();

    // A hello for another server name: 4001.
    let (mut ws, binding, challenge) = raw_challenged(&pki, addr).await;
    let peer = ws.get_ref().get_ref().0.local_addr().unwrap();
    let hello = auth::respond(&identity(), &challenge, "other.example", &binding, None).unwrap();
    raw_send(&mut ws, &ClientFrame::Hello(hello)).await;
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::AUTH_FAILED));
    let failure = relay
        .wait_until(|relay| relay.auth_failures().first().copied())
        .await;
    assert_eq!(failure, (peer, CloseCode::AUTH_FAILED));

    // No hello within the authentication timeout: 4000.
    let (mut ws, _, _) = raw_challenged(&pki, addr).await;
    let peer = ws.get_ref().get_ref().0.local_addr().unwrap();
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::AUTH_TIMEOUT));
    let failure = relay
        .wait_until(|relay| relay.auth_failures().get(1).copied())
        .await;
    assert_eq!(failure, (peer, CloseCode::AUTH_TIMEOUT));

    // Gone before the hello: 1006.
    let (ws, _, _) = raw_challenged(&pki, addr).await;
    let peer = ws.get_ref().get_ref().0.local_addr().unwrap();
    drop(ws);
    let failure = relay
        .wait_until(|relay| relay.auth_failures().get(2).copied())
        .await;
    assert_eq!(failure, (peer, CloseCode(1006)));

    // A successful authentication reports nothing.
    let (ws, _) = authenticated(&pki, addr).await;
    assert_eq!(relay.auth_failures().len(), 3);
    assert!(relay.handshake_failures().is_empty());
    close(ws).await;
    wait_connections(&server, 0).await;
    server.shutdown().await;
}
