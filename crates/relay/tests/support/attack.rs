//! Tools for the adversarial tests: a WebSocket client written by hand over TLS (so that it can
//! send what no WebSocket library would: bad opcodes, reserved bits, unmasked or oversize
//! frames, endless fragments), honest traffic that runs while an attack goes on and checks
//! itself, and a stored backlog whose survival proves the store was left alone.
//!
//! Included by the adversarial test files with `#[path]` (next to `support`).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sealwire_core::IdentityKeyPair;
use sealwire_relay::config::Config;
use sealwire_relay::server::RelayServer;
use sealwire_transport::auth::{self, ChannelBinding};
use sealwire_transport::client::{Client, Event};
use sealwire_transport::frame::{
    self, Challenge, ClientFrame, Hello, MailboxId, MessageId, Ready, SUBPROTOCOL, ServerFrame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::support::{
    Pki, SERVER_NAME, WAIT, client, connected, delivered, duplicate, identity, metric, register,
    start,
};

/// The largest WebSocket message (and frame) the relay accepts in these tests.
pub const MAX_MESSAGE: usize = 4096;
/// The largest `send` payload.
pub const MAX_PAYLOAD: usize = 1024;

/// A test relay with small message limits (so that floods are cheap), started for one test,
/// and how to reach it.
pub struct Arena {
    pub pki: Pki,
    pub relay: RelayServer,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The relay's data directory, removed with the arena.
    _dir: tempfile::TempDir,
}

impl Arena {
    pub async fn start() -> Arena {
        Arena::start_with(|_| {}).await
    }

    /// As [`Arena::start`], with the configuration as `adjust` leaves it.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Arena {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::support::config(dir.path());
        config.limits.max_payload = MAX_PAYLOAD;
        config.limits.max_recipients = 4;
        config.limits.max_message_size = MAX_MESSAGE;
        adjust(&mut config);
        let relay = start(&pki, config).await;
        let (addr, admin) = (relay.local_addr(), relay.admin_addr().unwrap());
        Arena {
            pki,
            relay,
            addr,
            admin,
            _dir: dir,
        }
    }

    /// Alice and Bob, connected and exchanging messages in the background (rounds on a task,
    /// until [`Traffic::stop`]).
    pub async fn traffic(&self) -> Traffic {
        let (mut alice, mut bob) = (self.client(identity()), self.client(identity()));
        connected(&mut alice).await;
        connected(&mut bob).await;
        let mut pair = Pair {
            alice,
            bob,
            exchanged: 0,
        };
        watch_panics();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                pair.round().await;
            }
            pair
        });
        Traffic { stop, task }
    }

    /// A started client (not yet waited for).
    pub fn client(&self, identity: IdentityKeyPair) -> Client {
        client(&self.pki, self.addr, identity)
    }

    /// A client, connected.
    pub async fn online(&self, identity: IdentityKeyPair) -> Client {
        let mut client = self.client(identity);
        connected(&mut client).await;
        client
    }

    /// The current value of a metric series.
    pub async fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series).await
    }

    /// Waits until `series` reaches `count` (metrics are updated just after the event a test
    /// observes), and checks that it is exactly `count`.
    pub async fn expect_metric(&self, series: &str, count: f64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut value = self.metric(series).await;
        while value < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            value = self.metric(series).await;
        }
        assert_eq!(value, count, "{series}");
    }

    /// Stops the honest traffic (see [`Traffic::stop`]) and checks that the relay accepted
    /// exactly its messages and `others` more.
    pub async fn stop_counting(&self, traffic: Traffic, others: f64) -> Pair {
        let pair = traffic.stop().await;
        let honest = f64::from(pair.exchanged);
        let accepted = self.metric("sealwire_relay_messages_accepted_total").await;
        assert_eq!(
            accepted,
            honest + others,
            "{honest} honest sends, {others} others"
        );
        pair
    }

    /// The end of an attack that must leave the store alone: [`Arena::stop_counting`], the
    /// victim's backlog intact ([`Backlog::check_intact`]), and the relay shut down.
    pub async fn finish(self, traffic: Traffic, backlog: Backlog, others: f64) {
        self.stop_counting(traffic, others).await;
        backlog.check_intact(&self).await;
        self.shutdown().await;
    }

    pub async fn shutdown(self) {
        self.relay.shutdown().await;
    }
}

/// A TLS connection to the relay, as a client.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// The first byte of a frame: FIN bit.
pub const FIN: u8 = 0x80;
/// RSV1 (no extension is negotiated, so it must be 0).
pub const RSV1: u8 = 0x40;
/// Opcodes.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Close code reported when the connection ended without a close frame.
pub const DROPPED: u16 = 1006;

/// Opens TCP and finishes TLS (trusting the test CA, SNI `localhost`).
pub async fn tls(pki: &Pki, addr: SocketAddr) -> Tls {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    tokio::time::timeout(WAIT, pki.client_tls().connector().connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .unwrap()
}

/// The HTTP upgrade request a WebSocket client sends (the key is RFC 6455's example).
pub fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {SERVER_NAME}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n",
        addr.port()
    )
}

/// One WebSocket frame as a client would put it on the wire: `first` is FIN, RSV and opcode;
/// `mask` is the masking key (clients must mask; `None` sends the payload in the clear).
pub fn frame_bytes(first: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(masked | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(masked | 126);
        out.extend(short.to_be_bytes());
    } else {
        out.push(masked | 127);
        out.extend((len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend(key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend(payload),
    }
    out
}

/// A masked frame with a fresh random key.
pub fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    frame_bytes(first, Some(rand::random()), payload)
}

/// What the relay sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A binary message holding a server frame.
    Frame(ServerFrame),
    /// A ping or a pong (payload length).
    Ping(usize),
    Pong(usize),
    /// A close frame with this code (1005 if it had none).
    Close(u16),
    /// The connection ended without a close frame.
    Dropped,
}

/// The reading side of a hand-made WebSocket connection.
pub struct WireReader {
    tls: ReadHalf<Tls>,
    buf: Vec<u8>,
}

/// The writing side.
pub struct WireWriter {
    tls: WriteHalf<Tls>,
}

/// A WebSocket connection over TLS whose every byte is written by the test.
pub struct Wire {
    pub reader: WireReader,
    pub writer: WireWriter,
    binding: ChannelBinding,
}

impl Wire {
    /// TLS and the HTTP upgrade (checks `101`); nothing more.
    pub async fn upgrade(arena: &Arena) -> Wire {
        let (pki, addr) = (&arena.pki, arena.addr);
        let mut tls = tls(pki, addr).await;
        let binding = ChannelBinding::from_tls(tls.get_ref().1).unwrap();
        tls.write_all(upgrade_request(addr).as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, tls.read(&mut chunk))
                .await
                .expect("upgrade answer in time")
                .unwrap();
            assert_ne!(n, 0, "connection closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        buf.drain(..end);
        let (read, write) = tokio::io::split(tls);
        Wire {
            reader: WireReader { tls: read, buf },
            writer: WireWriter { tls: write },
            binding,
        }
    }

    /// Upgrades and reads the challenge.
    pub async fn challenged(arena: &Arena) -> (Wire, Challenge) {
        let mut wire = Wire::upgrade(arena).await;
        let challenge = match wire.reader.next().await {
            Incoming::Frame(ServerFrame::Challenge(challenge)) => challenge,
            other => panic!("expected a challenge, got {other:?}"),
        };
        (wire, challenge)
    }

    /// The correct `hello` for this connection.
    pub fn hello(&self, identity: &IdentityKeyPair, challenge: &Challenge) -> Hello {
        auth::respond(identity, challenge, SERVER_NAME, &self.binding, None).unwrap()
    }

    /// Upgrades and authenticates as `identity`; panics unless `ready` comes.
    pub async fn connect(arena: &Arena, identity: &IdentityKeyPair) -> (Wire, Ready) {
        let (mut wire, challenge) = Wire::challenged(arena).await;
        let hello = wire.hello(identity, &challenge);
        wire.writer.send(&ClientFrame::Hello(hello)).await;
        match wire.reader.next().await {
            Incoming::Frame(ServerFrame::Ready(ready)) => (wire, ready),
            other => panic!("expected ready, got {other:?}"),
        }
    }

    /// Reads until the relay closes; returns the close code (or [`DROPPED`]). Panics if a
    /// frame arrives first.
    pub async fn closed(&mut self) -> u16 {
        self.reader.closed().await
    }

    /// The two sides, to be used apart (one of them on a task).
    pub fn into_split(self) -> (WireReader, WireWriter) {
        (self.reader, self.writer)
    }
}

impl WireWriter {
    /// Writes bytes as they are.
    pub async fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes).await?;
        self.tls.flush().await
    }

    /// A masked binary message in one frame.
    pub async fn binary(&mut self, payload: &[u8]) {
        self.raw(&masked(FIN | BINARY, payload)).await.unwrap();
    }

    /// A frame encoded as the protocol says, in one masked binary frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.binary(&frame::encode(frame).unwrap()).await;
    }
}

impl WireReader {
    /// Reads more bytes into the buffer; false at the end of the stream (or on an error).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(WAIT, self.tls.read(&mut chunk))
            .await
            .expect("nothing from the relay in time")
        {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next frame from the relay (unmasked, unfragmented: what the relay sends).
    pub async fn next(&mut self) -> Incoming {
        loop {
            if let Some((first, payload, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return match first & 0x0F {
                    BINARY => Incoming::Frame(frame::decode(&payload).unwrap()),
                    PING => Incoming::Ping(payload.len()),
                    PONG => Incoming::Pong(payload.len()),
                    CLOSE if payload.len() >= 2 => {
                        Incoming::Close(u16::from_be_bytes([payload[0], payload[1]]))
                    }
                    CLOSE => Incoming::Close(1005),
                    other => panic!("the relay sent opcode {other:#x}"),
                };
            }
            if !self.fill().await {
                return Incoming::Dropped;
            }
        }
    }

    /// The next server frame, skipping pings and pongs; `Err` with the close code.
    pub async fn frame(&mut self) -> Result<ServerFrame, u16> {
        loop {
            match self.next().await {
                Incoming::Frame(frame) => return Ok(frame),
                Incoming::Ping(_) | Incoming::Pong(_) => {}
                Incoming::Close(code) => return Err(code),
                Incoming::Dropped => return Err(DROPPED),
            }
        }
    }

    /// Reads until the relay closes; returns the close code. Panics on any frame but pings
    /// and pongs: a connection being refused must not be served.
    pub async fn closed(&mut self) -> u16 {
        match self.frame().await {
            Err(code) => code,
            Ok(frame) => panic!("expected a close, got {frame:?}"),
        }
    }

    /// Whether the connection stays open and sends nothing but pings and pongs for `within`.
    pub async fn quiet_for(&mut self, within: Duration) -> bool {
        let quiet = async {
            loop {
                match self.next().await {
                    Incoming::Ping(_) | Incoming::Pong(_) => {}
                    other => return other,
                }
            }
        };
        tokio::time::timeout(within, quiet).await.is_err()
    }
}

/// Parses one unmasked frame at the start of `buf`: (first byte, payload, bytes used).
fn parse_server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "the relay masked a frame");
    let (len, header) = match buf[1] & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap())).unwrap(),
            10,
        ),
        short => (short as usize, 2),
    };
    let payload = buf.get(header..header + len)?.to_vec();
    Some((buf[0], payload, header + len))
}

/// Two honest clients, Alice and Bob, exchanging messages and checking every one of them.
pub struct Pair {
    pub alice: Client,
    pub bob: Client,
    /// Messages exchanged so far (each way counts one).
    pub exchanged: u32,
}

/// Skips an honest client's events until `pick` returns something. A disconnect, a stop or a
/// refusal fails the test: an attack on the relay must not touch honest connections.
async fn honest_until<T>(
    who: &str,
    client: &mut Client,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    loop {
        let event = tokio::time::timeout(WAIT, client.next_event())
            .await
            .unwrap_or_else(|_| panic!("{who}: no event in time"))
            .unwrap_or_else(|| panic!("{who}: client task ended"));
        if let Event::Disconnected { .. } | Event::Stopped { .. } | Event::Rejected { .. } = event {
            panic!("{who} was affected by the attack: {event:?}");
        }
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

/// Picks the ids of accepted sends.
fn accepted(event: Event) -> Option<MessageId> {
    match event {
        Event::Accepted(id) => Some(id),
        _ => None,
    }
}

/// `from` sends one message to `to`; `to` must get exactly it, then acknowledges it.
async fn one_way(names: (&str, &str), from: &mut Client, to: &mut Client, payload: Vec<u8>) {
    let id = from
        .send(vec![to.mailbox()], payload.clone())
        .await
        .unwrap();
    let accepted = honest_until(names.0, from, accepted).await;
    assert_eq!(accepted, id, "{}: accepted another send", names.0);
    let delivery = honest_until(names.1, to, delivered).await;
    assert_eq!(
        (delivery.from, delivery.id, &delivery.payload),
        (from.mailbox(), id, &payload),
        "{}: not the message {} sent (lost, duplicated or reordered)",
        names.1,
        names.0
    );
    to.ack(vec![delivery.delivery]).await.unwrap();
}

impl Pair {
    /// One message each way, each accepted, delivered exactly once and acknowledged.
    pub async fn round(&mut self) {
        let n = self.exchanged;
        let payload = format!("alice to bob #{n}").into_bytes();
        one_way(("alice", "bob"), &mut self.alice, &mut self.bob, payload).await;
        let payload = format!("bob to alice #{n}").into_bytes();
        one_way(("bob", "alice"), &mut self.bob, &mut self.alice, payload).await;
        self.exchanged += 2;
    }
}

/// Honest traffic running in the background.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Pair>,
}

impl Traffic {
    /// Stops after the round in progress; fails the test if any round failed, or if no
    /// message at all got through while the attack ran.
    pub async fn stop(self) -> Pair {
        self.stop.store(true, Ordering::Relaxed);
        let mut pair = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("honest traffic stopped in time")
            .expect("honest traffic failed during the attack");
        assert!(pair.exchanged > 0, "no honest message got through");
        // A panic in a relay task is caught by tokio and would otherwise go unseen.
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "something panicked during the attack"
        );
        // And the pair still works now.
        pair.round().await;
        pair
    }
}

/// A victim with messages stored for it while it is offline: the store's state that every
/// attack must leave alone.
pub struct Backlog {
    pub victim: IdentityKeyPair,
    pub mailbox: MailboxId,
    /// Who sent them.
    pub sender: MailboxId,
    /// The stored messages, in order.
    pub messages: Vec<(MessageId, Vec<u8>)>,
}

impl Backlog {
    /// Registers `victim` and stores `n` messages for it from a fresh sender.
    pub async fn store(arena: &Arena, victim: IdentityKeyPair, n: u8) -> Backlog {
        let mailbox = register(&arena.pki, arena.addr, &victim).await;
        let mut sender = arena.online(identity()).await;
        let mut messages = Vec::new();
        for i in 0..n {
            let payload = vec![i; 100 + usize::from(i)];
            let id = sender.send(vec![mailbox], payload.clone()).await.unwrap();
            assert_eq!(honest_until("sender", &mut sender, accepted).await, id);
            messages.push((id, payload));
        }
        let sender_mailbox = sender.mailbox();
        sender.close().await;
        Backlog {
            victim,
            mailbox,
            sender: sender_mailbox,
            messages,
        }
    }

    /// Connects the victim: it must get every stored message exactly once, in order, and
    /// nothing else. Returns the connected victim (its messages not acknowledged) and the
    /// one-time prekey count its `ready` announced.
    pub async fn check_intact(&self, arena: &Arena) -> (Client, u32) {
        let mut victim = arena.client(duplicate(&self.victim));
        let prekeys = connected(&mut victim).await;
        for (id, payload) in &self.messages {
            let delivery = honest_until("victim", &mut victim, delivered).await;
            assert_eq!(
                (delivery.from, delivery.id, &delivery.payload),
                (self.sender, *id, payload),
                "the victim's stored messages changed"
            );
        }
        let extra = tokio::time::timeout(Duration::from_millis(300), victim.next_event()).await;
        assert!(
            !matches!(extra, Ok(Some(Event::Delivered(_)))),
            "the victim got a message nobody stored for it: {extra:?}"
        );
        (victim, prekeys)
    }
}

/// The series of `sealwire_relay_disconnects_total` for a close code.
pub fn disconnects(code: u16, reason: &str) -> String {
    format!("sealwire_relay_disconnects_total{{code=\"{code}\",reason=\"{reason}\"}}")
}

/// The series of `sealwire_relay_limit_rejections_total` for a limit.
pub fn limit(name: &str) -> String {
    format!("sealwire_relay_limit_rejections_total{{limit=\"{name}\"}}")
}

/// Panics seen anywhere in this test binary since [`watch_panics`] was first called.
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts every panic of the process (relay tasks included), then reports it as usual.
fn watch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}
