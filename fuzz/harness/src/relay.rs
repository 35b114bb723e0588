//! The relay connection target: a real relay on 127.0.0.1 (plaintext WebSocket, memory store,
//! short timeouts), started once, fed one connection per input.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sealwire_core::IdentityKeyPair;
use sealwire_relay::config::{AdmissionConfig, Config, StoreKind};
use sealwire_relay::server::{Certificate, RelayServer};
use sealwire_transport::auth::{self, ChannelBinding};
use sealwire_transport::frame::{
    self, Ack, Challenge, ClientFrame, MailboxId, MessageId, SUBPROTOCOL, Send, ServerFrame,
};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// The server name the relay is configured with and clients sign.
const SERVER_NAME: &str = "localhost";
/// Longest wait for one step (connect, a frame, a send).
const STEP: Duration = Duration::from_secs(5);
/// Longest wait for the relay to end a connection after the client's close (the relay waits
/// up to 2 s for the peer's close frame, and closes unauthenticated connections after 1 s).
const CLOSE: Duration = Duration::from_secs(10);
/// Longest a whole input may take.
const EXECUTION: Duration = Duration::from_secs(30);

/// Flag in the first input byte: end the connection by dropping the TCP connection instead
/// of a close handshake.
pub(crate) const ABRUPT: u8 = 0x04;

/// How the first input byte's low two bits authenticate the connection.
pub(crate) mod auth_mode {
    /// No `hello`: the input's first frame is the `hello` candidate.
    pub(crate) const NONE: u8 = 0;
    /// As the fixed fuzz identity (the same mailbox in every run).
    pub(crate) const FIXED: u8 = 1;
    /// As a fresh identity.
    pub(crate) const FRESH: u8 = 2;
}

/// Chunk header bits (see [`relay_connection`]).
pub(crate) mod chunk {
    /// A binary WebSocket message (also 1).
    pub(crate) const BINARY: u8 = 0;
    /// A text message.
    pub(crate) const TEXT: u8 = 2;
    /// A ping.
    pub(crate) const PING: u8 = 3;
    /// The length is two bytes (little endian) instead of one.
    pub(crate) const LONG: u8 = 0x04;
}

type Ws = WebSocketStream<TcpStream>;

struct RelayFixture {
    runtime: Runtime,
    addr: SocketAddr,
    fixed: IdentityKeyPair,
    honest: IdentityKeyPair,
    fresh: Mutex<ChaCha20Rng>,
    checks: AtomicU64,
    _relay: RelayServer,
}

fn fixture() -> &'static RelayFixture {
    static FIXTURE: OnceLock<RelayFixture> = OnceLock::new();
    FIXTURE.get_or_init(start)
}

/// The relay's configuration: loopback, port 0, memory store, no admin listener, admission
/// limits out of the way (every input is a new connection), short timeouts, small quotas.
fn config() -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        server_names: vec![SERVER_NAME.into()],
        store: StoreKind::Memory,
        ..Config::default()
    };
    config.admin.enabled = false;
    config.admission = AdmissionConfig {
        max_connections: 4096,
        max_connections_per_ip: 4096,
        connection_rate_per_ip: 1_000_000,
        connection_burst_per_ip: 1_000_000,
    };
    let limits = &mut config.limits;
    limits.handshake_timeout_secs = 2;
    limits.auth_timeout_secs = 1;
    limits.write_timeout_secs = 2;
    limits.ping_interval_secs = 2;
    limits.pong_timeout_secs = 1;
    limits.idle_timeout_secs = 4;
    limits.max_payload = 4096;
    limits.max_recipients = 8;
    limits.max_message_size = 8192;
    limits.outbound_queue = 64;
    config.quotas.max_messages = 64;
    config.quotas.max_bytes = 1 << 20;
    config.quotas.max_total_bytes = 64 << 20;
    config
}

fn start() -> RelayFixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let relay = runtime
        .block_on(RelayServer::start(
            config(),
            Certificate::InsecurePlaintextForTests,
        ))
        .expect("the relay starts");
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1_0003);
    let fixed = IdentityKeyPair::generate(&mut rng);
    let honest = IdentityKeyPair::generate(&mut rng);
    RelayFixture {
        addr: relay.local_addr(),
        runtime,
        fixed,
        honest,
        fresh: Mutex::new(rng),
        checks: AtomicU64::new(0),
        _relay: relay,
    }
}

/// The fixed fuzz identity's public key and mailbox, for seeds (deterministic).
pub(crate) fn fixed_identity() -> IdentityKeyPair {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1_0003);
    IdentityKeyPair::generate(&mut rng)
}

/// Splits the input after the first byte into WebSocket messages: each is a header byte
/// (`h & 3`: 0 or 1 binary, 2 text, 3 ping; `h & LONG`: two length bytes), the length, then
/// that many bytes (fewer at the end of the input).
pub(crate) fn messages(mut rest: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some((&header, tail)) = rest.split_first() {
        let (len, tail) = if header & chunk::LONG != 0 {
            match tail {
                [lo, hi, tail @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), tail),
                _ => (tail.len(), &[][..]),
            }
        } else {
            match tail.split_first() {
                Some((&len, tail)) => (usize::from(len), tail),
                None => (0, tail),
            }
        };
        let (body, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        out.push(match header & 3 {
            chunk::TEXT => Message::Text(Utf8Bytes::from(String::from_utf8_lossy(body).as_ref())),
            chunk::PING => Message::Ping(Bytes::copy_from_slice(&body[..body.len().min(125)])),
            _ => Message::Binary(Bytes::copy_from_slice(body)),
        });
    }
    out
}

/// Encodes one chunk of the input format of [`messages`].
pub(crate) fn encode_chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 3);
    match u8::try_from(body.len()) {
        Ok(len) => out.extend_from_slice(&[kind, len]),
        Err(_) => {
            let len = u16::try_from(body.len()).expect("chunk under 64 KiB");
            out.push(kind | chunk::LONG);
            out.extend_from_slice(&len.to_le_bytes());
        }
    }
    out.extend_from_slice(body);
    out
}

async fn connect(addr: SocketAddr) -> Ws {
    let tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("relay unhealthy: TCP connect timed out")
        .expect("relay unhealthy: TCP connect failed");
    let _ = tcp.set_nodelay(true);
    let mut request = format!("ws://{SERVER_NAME}:{}/", addr.port())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, _) = timeout(STEP, tokio_tungstenite::client_async(request, tcp))
        .await
        .expect("relay unhealthy: upgrade timed out")
        .expect("relay unhealthy: upgrade failed");
    ws
}

/// The next server frame; `None` once the connection ended. Panics on a message that is not
/// a canonical server frame.
async fn read_frame(ws: &mut Ws) -> Option<ServerFrame> {
    loop {
        let message = timeout(STEP, ws.next())
            .await
            .expect("relay unhealthy: no frame in time");
        match message {
            Some(Ok(Message::Binary(bytes))) => {
                return Some(frame::decode(&bytes).expect("the relay sent a malformed frame"));
            }
            Some(Ok(Message::Text(_))) => panic!("the relay sent a text message"),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn send_frame(ws: &mut Ws, frame: &ClientFrame) {
    let bytes = frame::encode(frame).expect("frame encodes");
    timeout(STEP, ws.send(Message::Binary(Bytes::from(bytes))))
        .await
        .expect("relay unhealthy: send timed out")
        .expect("relay unhealthy: send failed");
}

async fn challenge(ws: &mut Ws) -> Challenge {
    match read_frame(ws).await {
        Some(ServerFrame::Challenge(challenge)) => challenge,
        other => panic!("relay unhealthy: expected a challenge, got {other:?}"),
    }
}

/// Authenticates; panics unless `ready` comes for the identity's mailbox.
async fn authenticate(ws: &mut Ws, identity: &IdentityKeyPair, challenge: &Challenge) {
    let hello = auth::respond(
        identity,
        challenge,
        SERVER_NAME,
        &ChannelBinding::None,
        None,
    )
    .expect("hello");
    send_frame(ws, &ClientFrame::Hello(hello)).await;
    match read_frame(ws).await {
        Some(ServerFrame::Ready(ready)) => {
            assert_eq!(ready.mailbox, MailboxId::of(identity.public()), "mailbox");
        }
        other => panic!("relay unhealthy: honest hello answered with {other:?}"),
    }
}

/// Reads until the connection ends; returns the first protocol violation by the server.
async fn drain(mut stream: SplitStream<Ws>, authenticated: bool) -> Result<(), String> {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Binary(bytes)) => {
                let frame = frame::decode::<ServerFrame>(&bytes)
                    .map_err(|error| format!("the relay sent a malformed frame: {error}"))?;
                if !authenticated {
                    return Err(format!(
                        "the relay sent {frame:?} on a connection that never authenticated"
                    ));
                }
            }
            Ok(Message::Text(_)) => return Err("the relay sent a text message".into()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// One connection driven by the input.
async fn drive(fixture: &RelayFixture, data: &[u8]) {
    let flags = data.first().copied().unwrap_or(0);
    let mut ws = connect(fixture.addr).await;
    let challenge = challenge(&mut ws).await;
    let authenticated = match flags & 3 {
        auth_mode::FIXED | 3 => {
            authenticate(&mut ws, &fixture.fixed, &challenge).await;
            true
        }
        auth_mode::FRESH => {
            let identity = IdentityKeyPair::generate(&mut *fixture.fresh.lock().expect("rng"));
            authenticate(&mut ws, &identity, &challenge).await;
            true
        }
        _ => false,
    };
    let (mut sink, stream) = ws.split();
    let reader = tokio::spawn(drain(stream, authenticated));
    for message in messages(data.get(1..).unwrap_or(&[])) {
        match timeout(STEP, sink.send(message)).await {
            Ok(Ok(())) => {}
            // The relay closed the connection (or stopped reading it): legitimate.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    if flags & ABRUPT != 0 {
        reader.abort();
        return;
    }
    let _ = timeout(STEP, sink.send(Message::Close(None))).await;
    match timeout(CLOSE, reader).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(violation))) => panic!("{violation}"),
        Ok(Err(error)) => panic!("reader task failed: {error}"),
        Err(_) => panic!("the relay did not end the connection within {CLOSE:?} of the close"),
    }
}

/// An honest client sends a message to its own mailbox and must receive it.
async fn health(fixture: &RelayFixture) {
    let n = fixture.checks.fetch_add(1, Ordering::Relaxed);
    let identity = &fixture.honest;
    let mailbox = MailboxId::of(identity.public());
    let mut ws = connect(fixture.addr).await;
    let challenge = challenge(&mut ws).await;
    authenticate(&mut ws, identity, &challenge).await;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8..].copy_from_slice(b"healthck");
    let id = MessageId(id);
    let payload = format!("health check {n}").into_bytes();
    let send = Send {
        id,
        to: vec![mailbox],
        payload: payload.clone(),
    };
    send_frame(&mut ws, &ClientFrame::Send(send)).await;
    let (mut accepted, mut delivered) = (false, false);
    while !(accepted && delivered) {
        match read_frame(&mut ws).await {
            Some(ServerFrame::Accepted(a)) if a.id == id => accepted = true,
            Some(ServerFrame::Deliver(delivery)) => {
                if delivery.id == id {
                    assert_eq!(delivery.payload, payload, "relay unhealthy: payload");
                    assert_eq!(delivery.from, mailbox, "relay unhealthy: sender");
                    delivered = true;
                }
                let ack = Ack {
                    deliveries: vec![delivery.delivery],
                };
                send_frame(&mut ws, &ClientFrame::Ack(ack)).await;
            }
            Some(ServerFrame::Error(error)) => {
                panic!("relay unhealthy: honest send refused: {error:?}")
            }
            Some(_) => {}
            None => panic!("relay unhealthy: the honest connection ended"),
        }
    }
    let _ = timeout(STEP, ws.close(None)).await;
    // Wait for the close to complete so that honest connections do not pile up.
    let _ = timeout(STEP, async { while ws.next().await.is_some() {} }).await;
}

/// One WebSocket connection to the relay driven by the input, then a health check.
///
/// First byte: the low two bits choose the authentication (0: none, the input's first
/// message is the `hello` candidate; 1 and 3: the fixed identity; 2: a fresh identity), and
/// `ABRUPT` (0x04) ends the connection by dropping it instead of closing it. The rest is a sequence
/// of chunks `header, len (1 byte, or 2 with LONG), body`: binary messages, text messages and
/// pings, sent in order while a reader drains what the relay sends.
///
/// Checks: the relay accepts the connection and sends a challenge; an honest `hello` gets
/// `ready`; every message the relay sends is a canonical server frame, and none at all is
/// sent (after the challenge) on a connection that never authenticated; the relay ends the
/// connection after a close; and afterwards an honest client can still authenticate, send a
/// message to its own mailbox and receive it. Every step is bounded by a timeout.
pub fn relay_connection(data: &[u8]) {
    let fixture = fixture();
    fixture.runtime.block_on(async {
        timeout(EXECUTION, async {
            drive(fixture, data).await;
            health(fixture).await;
        })
        .await
        .expect("the input took longer than the execution limit")
    });
}
