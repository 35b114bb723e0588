//! Adversarial floods against the real relay over WSS on 127.0.0.1 (issue 7): connection
//! floods beyond the admission limits, slowloris handshakes, oversize and fragmented
//! messages, floods of valid messages and of pings. Every attack runs while two honest
//! clients exchange messages (each one checked: delivered exactly once, in order, no
//! disconnect); afterwards the test checks that the attack was refused with its code and
//! counted in the metrics, that nothing was stored for it, that a victim's stored messages
//! are intact, and that the relay still admits and serves new clients.
//!
//! Malformed frames, requests before authentication, other mailboxes and replays are in
//! `adversarial_frames.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/attack.rs"]
mod attack;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use attack::*;
use futures_util::future::join_all;
use sealwire_relay::config::{Config, StoreKind};
use sealwire_transport::client::Client;
use sealwire_transport::frame::{Accepted, ClientFrame, MessageId, Send, ServerFrame};
use sealwire_transport::tls::ClientTls;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Sender;
use tokio_rustls::rustls;

/// Whether the relay admitted a raw TCP connection: a refused one is closed at once without a
/// byte (before TLS); an admitted one waits for a TLS ClientHello.
async fn admitted(tcp: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut byte)).await {
        Err(_) => true,
        Ok(Ok(0) | Err(_)) => false,
        Ok(Ok(_)) => panic!("the relay sent bytes before the client's TLS ClientHello"),
    }
}

/// Opens `n` TCP connections as fast as possible and holds them; returns them with whether
/// each was admitted.
async fn flood(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(addr).await.unwrap());
    }
    let outcomes = join_all(sockets.iter_mut().map(admitted)).await;
    let admitted = outcomes.iter().filter(|admitted| **admitted).count();
    (sockets, admitted)
}

/// Whether `client` connects within `within`.
async fn connects_within(client: &mut Client, within: Duration) -> bool {
    tokio::time::timeout(within, connected(client))
        .await
        .is_ok()
}

/// Every socket of these tests comes from 127.0.0.1: sets the per-address cap and rate out of
/// the way, so that the total is what binds.
fn no_per_address_limits(config: &mut Config) {
    config.admission.max_connections_per_ip = 1000;
    config.admission.connection_rate_per_ip = 1000;
    config.admission.connection_burst_per_ip = 1000;
}

/// A new client connects within [`WAIT`] (the attack left a slot, and a token, for it).
async fn newcomer_gets_in(arena: &Arena) -> Client {
    let mut carol = arena.client(identity());
    assert!(connects_within(&mut carol, WAIT).await);
    carol
}

#[tokio::test]
async fn a_flood_beyond_max_connections_is_dropped_before_tls_while_honest_clients_carry_on() {
    let arena = Arena::start_with(|config| {
        config.admission.max_connections = 6;
        no_per_address_limits(config);
    })
    .await;
    let traffic = arena.traffic().await;

    let (sockets, admitted) = flood(arena.addr, 60).await;
    assert_eq!(admitted, 4, "6 slots, 2 held by the honest clients");
    arena.expect_metric(&limit("max_connections"), 56.0).await;
    // While the flood holds the slots, a newcomer cannot get in either...
    let mut carol = arena.client(identity());
    assert!(!connects_within(&mut carol, Duration::from_millis(500)).await);
    // ...and once it stops, it does (its retries were refused meanwhile).
    drop(sockets);
    assert!(connects_within(&mut carol, WAIT).await);
    assert!(arena.metric(&limit("max_connections")).await > 56.0);
    assert_eq!(arena.metric(&limit("max_connections_per_ip")).await, 0.0);

    let pair = traffic.stop().await;
    pair.alice
        .send(vec![carol.mailbox()], b"welcome".to_vec())
        .await
        .unwrap();
    assert_eq!(wait_for(&mut carol, delivered).await.payload, b"welcome");
    arena.shutdown().await;
}

#[tokio::test]
async fn a_flood_beyond_the_connection_rate_is_dropped_before_tls_until_the_bucket_refills() {
    let arena = Arena::start_with(|config| {
        config.admission.max_connections = 1000;
        config.admission.max_connections_per_ip = 1000;
        config.admission.connection_rate_per_ip = 2;
        config.admission.connection_burst_per_ip = 6;
    })
    .await;
    // The honest clients take 2 of the 6 tokens.
    let traffic = arena.traffic().await;

    let started = Instant::now();
    let (sockets, admitted) = flood(arena.addr, 40).await;
    let elapsed = started.elapsed().as_secs_f64();
    // 4 tokens left, plus what refilled during the flood (2 per second).
    let most = 4 + (2.0 * elapsed).ceil() as usize;
    assert!(
        (1..=most).contains(&admitted),
        "{admitted} admitted in {elapsed:.2} s"
    );
    let refused = (40 - admitted) as f64;
    arena
        .expect_metric(&limit("connection_rate_per_ip"), refused)
        .await;
    drop(sockets);
    // The bucket refills: a newcomer gets in, and the honest clients never noticed.
    let _carol = newcomer_gets_in(&arena).await;
    assert_eq!(arena.metric(&limit("max_connections")).await, 0.0);
    traffic.stop().await;
    arena.shutdown().await;
}

/// The first flight of a real TLS client (a ClientHello for `localhost`).
fn client_hello(pki: &Pki) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    let mut tls = rustls::ClientConnection::new(pki.client_tls().config(), name).unwrap();
    let mut out = Vec::new();
    tls.write_tls(&mut out).unwrap();
    assert!(out.len() > 100, "a ClientHello");
    out
}

/// Writes `bytes` one at a time, `every` apart, until the peer drops the connection; returns
/// how long that took. Fails the test if the peer lets it go on for [`WAIT`].
async fn trickle<T>(stream: &mut T, bytes: &[u8], every: Duration) -> Duration
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut sink = [0u8; 64];
    for byte in bytes.iter().cycle() {
        let going_on = start.elapsed();
        assert!(going_on < WAIT, "the relay let a slow handshake go on");
        if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
            break;
        }
        match tokio::time::timeout(every, stream.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => panic!("the relay answered an unfinished handshake"),
            Err(_) => {}
        }
    }
    start.elapsed()
}

/// Opens TCP and finishes TLS with `client_tls`, then reports on `holding` that it holds a slot.
async fn tls_holding(addr: SocketAddr, client_tls: ClientTls, holding: Sender<()>) -> Tls {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    let tls = client_tls.connector().connect(name, tcp).await.unwrap();
    holding.send(()).await.unwrap();
    tls
}

#[tokio::test]
async fn slowloris_handshakes_are_cut_at_the_handshake_timeout_and_free_their_slots() {
    const EACH: usize = 6;
    let arena = Arena::start_with(|config| {
        config.limits.handshake_timeout_secs = 2;
        // Exactly room for the honest pair and the slow connections.
        config.admission.max_connections = 2 + 3 * EACH;
        no_per_address_limits(config);
    })
    .await;
    let (pki, addr) = (&arena.pki, arena.addr);
    let traffic = arena.traffic().await;
    let timeout = Duration::from_secs(2);
    let every = Duration::from_millis(100);

    let (holding, mut held) = tokio::sync::mpsc::channel(3 * EACH);
    let mut attackers = tokio::task::JoinSet::new();
    let hello = client_hello(pki);
    for _ in 0..EACH {
        // A ClientHello, one byte every 100 ms.
        let (tx, hello) = (holding.clone(), hello.clone());
        attackers.spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tx.send(()).await.unwrap();
            trickle(&mut tcp, &hello, every).await
        });
        // TLS, then nothing.
        let (tx, pki_tls) = (holding.clone(), pki.client_tls());
        attackers.spawn(async move {
            let start = Instant::now();
            let mut tls = tls_holding(addr, pki_tls, tx).await;
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(WAIT, tls.read(&mut byte)).await;
            assert!(
                matches!(read, Ok(Ok(0) | Err(_))),
                "stalled after TLS: {read:?}"
            );
            start.elapsed()
        });
        // TLS, then the upgrade request's headers one byte every 100 ms.
        let (tx, pki_tls) = (holding.clone(), pki.client_tls());
        attackers.spawn(async move {
            let start = Instant::now();
            let mut tls = tls_holding(addr, pki_tls, tx).await;
            let request = upgrade_request(addr);
            trickle(&mut tls, &request.as_bytes()[..request.len() - 2], every).await;
            start.elapsed()
        });
    }
    for _ in 0..3 * EACH {
        tokio::time::timeout(WAIT, held.recv())
            .await
            .unwrap()
            .unwrap();
    }
    // Every slot is taken: one more connection is refused before TLS.
    let mut probe = TcpStream::connect(addr).await.unwrap();
    assert!(!admitted(&mut probe).await, "a slot was free");

    while let Some(cut_after) = attackers.join_next().await {
        let cut_after = cut_after.unwrap();
        assert!(
            cut_after >= timeout - every * 3 && cut_after < timeout + Duration::from_secs(3),
            "cut after {cut_after:?}, the handshake timeout is {timeout:?}"
        );
    }
    let timeouts = "sealwire_relay_handshake_failures_total{stage=\"timeout\"}";
    arena.expect_metric(timeouts, (3 * EACH) as f64).await;
    // The slots are free again.
    let _carol = newcomer_gets_in(&arena).await;
    traffic.stop().await;
    arena.shutdown().await;
}

/// A `send` frame to `to` with a payload of `len` bytes, encoded.
fn send_bytes(to: sealwire_transport::frame::MailboxId, len: usize) -> (MessageId, Vec<u8>) {
    let id = MessageId::random();
    let frame = ClientFrame::Send(Send {
        id,
        to: vec![to],
        payload: vec![0x5A; len],
    });
    (id, sealwire_transport::frame::encode(&frame).unwrap())
}

/// A frame header (masked) announcing `len` payload bytes, without the payload.
fn header_announcing(first: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first, 0x80 | 127];
    out.extend(len.to_be_bytes());
    out.extend(rand::random::<[u8; 4]>());
    out
}

/// `message` in masked fragments of `size` bytes: a binary frame, then continuations, the
/// last with FIN.
fn fragments(message: &[u8], size: usize) -> Vec<Vec<u8>> {
    let count = message.len().div_ceil(size);
    let pieces = message.chunks(size).enumerate();
    pieces
        .map(|(i, piece)| {
            let opcode = if i == 0 { BINARY } else { CONTINUATION };
            let fin = if i + 1 == count { FIN } else { 0 };
            masked(fin | opcode, piece)
        })
        .collect()
}

#[tokio::test]
async fn oversize_and_fragmented_floods_are_closed_with_1009_and_store_nothing() {
    let arena = Arena::start().await;
    let backlog = Backlog::store(&arena, identity(), 3).await;
    let traffic = arena.traffic().await;
    let mallory = identity();
    let too_big = disconnects(1009, "message_too_big");

    // One frame one byte over the limit.
    let (mut wire, _) = Wire::connect(&arena, &mallory).await;
    let _ = wire
        .writer
        .raw(&masked(FIN | BINARY, &vec![0u8; MAX_MESSAGE + 1]))
        .await;
    assert_eq!(wire.closed().await, 1009);
    drop(wire);

    // A header announcing a terabyte: refused on the header, before any payload.
    let (mut wire, _) = Wire::connect(&arena, &mallory).await;
    let _ = wire
        .writer
        .raw(&header_announcing(FIN | BINARY, 1 << 40))
        .await;
    assert_eq!(wire.closed().await, 1009);
    drop(wire);

    // Fragments, each well under the limit, whose sum is over it. The message is a valid
    // `send` to the victim cut into pieces, padded past the limit.
    let (mut wire, _) = Wire::connect(&arena, &mallory).await;
    let (_, mut bytes) = send_bytes(backlog.mailbox, MAX_PAYLOAD);
    bytes.resize(MAX_MESSAGE + 1, 0);
    for fragment in fragments(&bytes, 1000) {
        let _ = wire.writer.raw(&fragment).await;
    }
    assert_eq!(wire.closed().await, 1009);
    drop(wire);

    // An endless stream of one-byte fragments of one message: closed once they add up.
    let (mut reader, mut writer) = Wire::connect(&arena, &mallory).await.0.into_split();
    let endless = tokio::spawn(async move {
        let mut written = 0usize;
        let mut batch = masked(BINARY, b"x");
        loop {
            for _ in 0..256 {
                batch.extend(masked(CONTINUATION, b"x"));
            }
            if writer.raw(&batch).await.is_err() {
                return written;
            }
            written += batch.len();
            batch.clear();
        }
    });
    assert_eq!(reader.closed().await, 1009);
    drop(reader);
    let written = tokio::time::timeout(WAIT, endless).await.unwrap().unwrap();
    assert!(written > 0);

    // Positive control: a valid `send` in 16-byte fragments is reassembled and accepted (to
    // Mallory herself, so that the victim's mailbox stays as it was).
    let (mut wire, ready) = Wire::connect(&arena, &mallory).await;
    let (id, bytes) = send_bytes(ready.mailbox, MAX_PAYLOAD);
    for fragment in fragments(&bytes, 16) {
        wire.writer.raw(&fragment).await.unwrap();
    }
    assert_eq!(
        wire.reader.frame().await,
        Ok(ServerFrame::Accepted(Accepted { id }))
    );

    arena.expect_metric(&too_big, 4.0).await;
    // Only honest sends were stored: the backlog's and the positive control.
    arena.finish(traffic, backlog, 3.0 + 1.0).await;
}

#[tokio::test]
async fn a_flood_of_max_size_messages_is_throttled_not_refused() {
    const FLOOD: usize = 30;
    let arena = Arena::start_with(|config| {
        // In memory, so that slow commits on a busy machine do not space the sends out by
        // themselves (the throttle is what is tested here).
        config.store = StoreKind::Memory;
        config.rates.messages_per_second = 20.0;
        config.rates.message_burst = 5.0;
    })
    .await;
    let sink_identity = identity();
    let sink = register(&arena.pki, arena.addr, &sink_identity).await;
    let traffic = arena.traffic().await;

    let (mut reader, mut writer) = Wire::connect(&arena, &identity()).await.0.into_split();
    let flood: Vec<_> = (0..FLOOD).map(|_| send_bytes(sink, MAX_PAYLOAD)).collect();
    let ids: Vec<_> = flood.iter().map(|(id, _)| *id).collect();
    let started = Instant::now();
    let writing = tokio::spawn(async move {
        for (_, bytes) in flood {
            writer.binary(&bytes).await;
        }
        writer
    });
    // Every one is accepted, in order, none refused; it just takes its time.
    for id in &ids {
        assert_eq!(
            reader.frame().await,
            Ok(ServerFrame::Accepted(Accepted { id: *id }))
        );
    }
    let took = started.elapsed();
    let _writer = writing.await.unwrap();
    // 30 sends against a burst of 5 at 20 per second: at least 1.25 s.
    assert!(took >= Duration::from_millis(1100), "took only {took:?}");
    let throttled = arena.metric(&limit("message_rate")).await;
    assert!(throttled >= 10.0, "throttled {throttled} times");
    assert!(reader.quiet_for(Duration::from_millis(200)).await);

    arena.stop_counting(traffic, FLOOD as f64).await;
    // Nothing was lost: the sink gets every one, once, in order.
    let mut sink_client = arena.online(duplicate(&sink_identity)).await;
    for id in &ids {
        let delivery = wait_for(&mut sink_client, delivered).await;
        assert_eq!(delivery.id, *id);
        assert_eq!(delivery.payload.len(), MAX_PAYLOAD);
    }
    arena.shutdown().await;
}

#[tokio::test]
async fn a_ping_flood_between_fragments_is_answered_and_the_message_still_arrives() {
    const PINGS: usize = 2000;
    let arena = Arena::start().await;
    let traffic = arena.traffic().await;

    let (wire, ready) = Wire::connect(&arena, &identity()).await;
    let (mut reader, mut writer) = wire.into_split();
    let (id, bytes) = send_bytes(ready.mailbox, MAX_PAYLOAD);
    let (second, second_bytes) = send_bytes(ready.mailbox, 10);
    let writing = tokio::spawn(async move {
        // The `send` in 20 fragments, with 100 maximal pings (125 bytes) before each.
        let pieces = fragments(&bytes, bytes.len().div_ceil(20));
        for piece in &pieces {
            let mut batch = Vec::new();
            for _ in 0..PINGS / pieces.len() {
                batch.extend(masked(FIN | PING, &[0x70; 125]));
            }
            batch.extend(piece);
            writer.raw(&batch).await.unwrap();
        }
        // And then an ordinary message.
        writer.binary(&second_bytes).await;
        writer
    });
    let mut pongs = 0;
    let mut answers = Vec::new();
    while answers.len() < 4 {
        match reader.next().await {
            Incoming::Pong(len) => {
                assert_eq!(len, 125);
                pongs += 1;
            }
            Incoming::Frame(frame) => answers.push(frame),
            other => panic!("unexpected {other:?}"),
        }
    }
    let _writer = writing.await.unwrap();
    // Accepted and delivered (to itself), both messages, in order.
    let (mut accepted, mut delivered) = (Vec::new(), Vec::new());
    for frame in &answers {
        match frame {
            ServerFrame::Accepted(accept) => accepted.push(accept.id),
            ServerFrame::Deliver(delivery) => delivered.push(delivery.id),
            _ => {}
        }
    }
    assert_eq!(accepted, [id, second]);
    assert_eq!(delivered, [id, second]);
    // Pings are answered (tungstenite keeps only the latest pong pending, so a flood cannot
    // queue up replies), and the connection is still open.
    assert!(pongs >= 1);
    assert!(pongs <= PINGS);
    assert!(reader.quiet_for(Duration::from_millis(200)).await);

    arena.stop_counting(traffic, 2.0).await;
    for code in ["1002", "1009"] {
        let (_, body) = http_get(arena.admin, "/metrics").await;
        assert!(
            !body.contains(&format!("code=\"{code}\"")),
            "closed with {code}"
        );
    }
    arena.shutdown().await;
}
