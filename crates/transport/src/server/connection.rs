//! One connection, from TCP accept to close: TLS, upgrade, authentication, then the request
//! loop with the outbound queue, heartbeats and timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::request::handle;
use super::service::{Connection, HandshakeFailure, Refusal, Service};
use super::upgrade;
use super::{Security, Shared};
use crate::auth::{ChannelBinding, ServerAuth};
use crate::code::CloseCode;
use crate::error::Error;
use crate::frame::{self, Ready, ServerFrame};
use crate::limits::Limits;

/// Close code recorded when the peer vanished without a close frame (RFC 6455's 1006).
const ABNORMAL: CloseCode = CloseCode(1006);

/// Most queued frames written with one flush.
const WRITE_BATCH: usize = 64;

/// Longest wait for the peer's close frame after sending ours.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves one accepted TCP connection until it ends.
///
/// A graceful shutdown ends it promptly in every phase: during TLS and the upgrade the
/// connection is dropped (no WebSocket exists yet to send a close frame on); while
/// authenticating it is closed with 1001 `going_away`; once authenticated, after the request
/// in progress (if any) and the answers already queued.
pub(crate) async fn serve<S: Service>(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared<S>>) {
    // Subscribed first thing, and always checked by value (not by change): a shutdown sent
    // before this task ran, or during any phase below, is seen.
    let mut shutdown = shared.shutdown.subscribe();
    let limits = &shared.config.limits;
    let _ = tcp.set_nodelay(true);
    match &shared.config.security {
        Security::Tls(tls) => {
            let acceptor = tls.acceptor();
            // Boxed: the TLS and upgrade futures are large (about 11 KiB with rustls's
            // handshake state inline) and live only until the upgrade. Inline, they would size
            // this task for its whole life: boxed, an idle connection's task is about 6 KiB
            // instead of 24 (`bench/README.md`, idle memory).
            let handshake = Box::pin(async {
                let stream = acceptor
                    .accept(tcp)
                    .await
                    .map_err(|e| (HandshakeFailure::Tls, Error::from(e)))?;
                let tls = stream.get_ref().1;
                let binding =
                    ChannelBinding::from_tls(tls).map_err(|e| (HandshakeFailure::Tls, e))?;
                let sni = tls.server_name().map(str::to_owned);
                let ws = upgrade(stream, peer, &shared)
                    .await
                    .map_err(|e| (HandshakeFailure::Upgrade, e))?;
                Ok::<_, (HandshakeFailure, Error)>((ws, binding, sni))
            });
            let outcome = tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => return abandoned(peer),
                outcome = timeout(limits.handshake_timeout, handshake) => outcome,
            };
            match outcome {
                Ok(Ok((ws, binding, sni))) => {
                    run(ws, binding, sni, peer, shared.clone(), shutdown).await;
                }
                Ok(Err((failure, error))) => handshake_failed(&shared, peer, failure, &error),
                Err(_) => timed_out(&shared, peer),
            }
        }
        Security::InsecurePlaintext => {
            let outcome = tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => return abandoned(peer),
                // Boxed for the same reason as the TLS handshake above.
                outcome = timeout(limits.handshake_timeout, Box::pin(upgrade(tcp, peer, &shared))) => outcome,
            };
            match outcome {
                Ok(Ok(ws)) => {
                    run(
                        ws,
                        ChannelBinding::None,
                        None,
                        peer,
                        shared.clone(),
                        shutdown,
                    )
                    .await;
                }
                Ok(Err(error)) => {
                    handshake_failed(&shared, peer, HandshakeFailure::Upgrade, &error);
                }
                Err(_) => timed_out(&shared, peer),
            }
        }
    }
}

/// Resolves once a graceful shutdown was requested, including one requested before the call.
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let requested = shutdown.wait_for(|requested| *requested).await.is_ok();
    if !requested {
        // The sender lives in `Shared`, which outlives every connection: not reached.
        std::future::pending::<()>().await;
    }
}

/// A connection still in TLS or the upgrade when the server shuts down: dropped, no hook.
fn abandoned(peer: SocketAddr) {
    tracing::debug!(%peer, "shutting down: handshake abandoned");
}

fn handshake_failed<S: Service>(
    shared: &Shared<S>,
    peer: SocketAddr,
    failure: HandshakeFailure,
    error: &Error,
) {
    tracing::debug!(%peer, %failure, %error, "handshake failed");
    shared.service.handshake_failed(peer, failure);
}

fn timed_out<S: Service>(shared: &Shared<S>, peer: SocketAddr) {
    tracing::debug!(%peer, "handshake timed out");
    shared
        .service
        .handshake_failed(peer, HandshakeFailure::Timeout);
}

// The callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
async fn upgrade<T, S>(
    stream: T,
    peer: SocketAddr,
    shared: &Shared<S>,
) -> Result<WebSocketStream<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let policy = &shared.config.origins;
    let callback = |request: &_, response| {
        upgrade::check(policy, request, response).map_err(|refusal| {
            tracing::info!(%peer, ?refusal, "upgrade refused");
            refusal.response()
        })
    };
    let config = shared.config.limits.websocket_config();
    Ok(tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await?)
}

async fn run<T, S>(
    mut ws: WebSocketStream<T>,
    binding: ChannelBinding,
    sni: Option<String>,
    peer: SocketAddr,
    shared: Arc<Shared<S>>,
    mut shutdown: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    let limits = &shared.config.limits;
    let (auth, challenge) = ServerAuth::new(binding);
    let auth = auth.with_sni(sni);
    if write(&mut ws, limits, &ServerFrame::Challenge(challenge))
        .await
        .is_err()
    {
        shared.service.auth_failed(peer, ABNORMAL);
        return;
    }
    let first = tokio::select! {
        biased;
        () = shutdown_requested(&mut shutdown) => {
            return refuse(&mut ws, peer, &shared, CloseCode::GOING_AWAY).await;
        }
        first = timeout(limits.auth_timeout, next_binary(&mut ws)) => first,
    };
    let first = match first {
        Err(_) => return refuse(&mut ws, peer, &shared, CloseCode::AUTH_TIMEOUT).await,
        Ok(Err(Some(code))) => return refuse(&mut ws, peer, &shared, code).await,
        Ok(Err(None)) => {
            shared.service.auth_failed(peer, ABNORMAL);
            return;
        }
        Ok(Ok(bytes)) => bytes,
    };
    let authenticated = match auth.verify(&first, &shared.config.auth, unix_now()) {
        Ok(authenticated) => authenticated,
        Err(rejection) => {
            tracing::info!(%peer, code = %rejection.code, error = %rejection.error, "authentication failed");
            return refuse(&mut ws, peer, &shared, rejection.code).await;
        }
    };
    if *shutdown.borrow_and_update() {
        // Shut down while the `hello` was checked: not handed to the service.
        return refuse(&mut ws, peer, &shared, CloseCode::GOING_AWAY).await;
    }
    let (outbound, mut queue) = mpsc::channel(limits.outbound_queue);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let connection = Connection::new(id, peer, authenticated, outbound);
    tracing::info!(%peer, id, mailbox = %connection.mailbox(), "authenticated");

    // The service's futures are boxed: inline, the largest of them (`connected`, `request`)
    // would be part of every connection's task for its whole life, idle or not.
    let ended = match Box::pin(shared.service.connected(&connection)).await {
        // Shut down while `connected` ran: no `ready`, nor anything queued (it would come
        // before `ready`); `disconnected` follows as for any connection `connected` accepted.
        Ok(_) if *shutdown.borrow_and_update() => Ended::Close(CloseCode::GOING_AWAY),
        Ok(welcome) => {
            let ready = ServerFrame::Ready(Ready {
                mailbox: connection.mailbox(),
                max_payload: u32::try_from(limits.max_payload).unwrap_or(u32::MAX),
                max_recipients: u32::try_from(limits.max_recipients).unwrap_or(u32::MAX),
                one_time_prekeys: welcome.one_time_prekeys,
            });
            // Ready goes out before anything `connected` queued (stored deliveries).
            match write(&mut ws, limits, &ready).await {
                Ok(()) => {
                    let ended =
                        request_loop(&mut ws, &connection, &mut queue, &shared, &mut shutdown)
                            .await;
                    if let Ended::Close(code) = ended
                        && (code == CloseCode::GOING_AWAY || code == CloseCode::REPLACED)
                    {
                        // An orderly end: the answers and deliveries already queued go out
                        // before the close frame. (Not after an error: a slow consumer's
                        // queue is what could not be written.)
                        flush_queued(&mut ws, limits, &mut queue).await;
                    }
                    ended
                }
                Err(()) => Ended::Dropped,
            }
        }
        Err(Refusal::Close(code)) => Ended::Close(code),
        Err(Refusal::Error(_)) => Ended::Close(CloseCode::INTERNAL_ERROR),
    };
    if let Ended::Close(code) = ended {
        close(&mut ws, limits, code).await;
    }
    let code = ended.code();
    tracing::info!(%peer, id, code = %code, "disconnected");
    shared.service.disconnected(&connection, code).await;
}

/// Ends a connection that did not authenticate: tells the service, then closes with `code`.
async fn refuse<T, S>(
    ws: &mut WebSocketStream<T>,
    peer: SocketAddr,
    shared: &Shared<S>,
    code: CloseCode,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    shared.service.auth_failed(peer, code);
    close(ws, &shared.config.limits, code).await;
}

/// Reads, writes and keeps time until the connection should end; returns the close code.
async fn request_loop<T, S>(
    ws: &mut WebSocketStream<T>,
    connection: &Connection,
    queue: &mut mpsc::Receiver<Bytes>,
    shared: &Shared<S>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    use Ended::{ByPeer, Close, Dropped};
    let limits = &shared.config.limits;
    let mut last_received = Instant::now();
    let mut next_ping = last_received + limits.ping_interval;
    let mut pong_due: Option<Instant> = None;
    // Requests are read only while the outbound queue is less than half full: a client that
    // pipelines requests faster than it reads the answers is slowed down, not disconnected.
    let high_water = (limits.outbound_queue / 2).max(1);
    let token_expires_at = token_deadline(connection, shared);
    let mut was_reading = true;
    loop {
        let reading = queue.len() < high_water;
        if reading && !was_reading {
            // The peer could not be heard (nor pinged) while reads were paused: restart the
            // heartbeat and idle clocks rather than count the pause against it.
            last_received = Instant::now();
            pong_due = None;
        }
        was_reading = reading;
        let idle_at = last_received + limits.idle_timeout;
        let wake_at = pong_due
            .map_or(next_ping, |due| due.min(next_ping))
            .min(idle_at);
        let wake_at = token_expires_at.map_or(wake_at, |at| wake_at.min(at));
        // Biased: close requests first; then reads (while allowed), so that pongs and acks are
        // not held up behind a long backlog; then writes.
        tokio::select! {
            biased;
            code = connection.close_signal().wait() => return Close(code),
            () = shutdown_requested(shutdown) => return Close(CloseCode::GOING_AWAY),
            incoming = ws.next(), if reading => {
                last_received = Instant::now();
                let message = match incoming {
                    None => return Dropped,
                    Some(Err(error)) => return Ended::after_read_error(&error),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Binary(bytes) => {
                        let (handled, written) =
                            handle_while_writing(ws, connection, &bytes, queue, shared).await;
                        if let Err(code) = handled {
                            return Close(code);
                        }
                        if let Err(ended) = written {
                            return ended;
                        }
                    }
                    Message::Text(_) => return Close(CloseCode::UNSUPPORTED_DATA),
                    Message::Pong(_) => pong_due = None,
                    Message::Ping(_) | Message::Frame(_) => {}
                    Message::Close(frame) => {
                        return ByPeer(frame.map_or(CloseCode(1005), |frame| CloseCode(frame.code.into())));
                    }
                }
            }
            frame = queue.recv() => {
                if let Err(ended) = write_queued(ws, frame, queue, limits).await {
                    return ended;
                }
            }
            () = sleep_until(wake_at), if reading => {
                // While reads are paused the peer's pongs wait unread in the socket; liveness
                // is then guarded by the write timeout instead.
                let now = Instant::now();
                if pong_due.is_some_and(|due| now >= due) {
                    return Close(CloseCode::HEARTBEAT_TIMEOUT);
                }
                if now >= idle_at {
                    return Close(CloseCode::IDLE_TIMEOUT);
                }
                if token_expires_at.is_some_and(|at| now >= at) {
                    return Close(CloseCode::TOKEN_EXPIRED);
                }
                if now >= next_ping {
                    next_ping = now + limits.ping_interval;
                    pong_due.get_or_insert(now + limits.pong_timeout);
                    match timeout(limits.write_timeout, ws.send(Message::Ping(Bytes::new()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Dropped,
                        Err(_) => return Close(CloseCode::SLOW_CONSUMER),
                    }
                }
            }
        }
    }
}

/// Handles one request while writing what the connection's queue holds meanwhile: a request
/// can wait (a `send` waits for its store commit), and the answers and deliveries queued for
/// this connection in that time go out at once rather than after it. Nothing more is *read*
/// until the request is handled (backpressure). The request is always handled to the end,
/// even if a write fails meanwhile (no half-done request); then the failed write ends the
/// connection.
async fn handle_while_writing<T, S>(
    ws: &mut WebSocketStream<T>,
    connection: &Connection,
    bytes: &[u8],
    queue: &mut mpsc::Receiver<Bytes>,
    shared: &Shared<S>,
) -> (Result<(), CloseCode>, Result<(), Ended>)
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    let mut handling = Box::pin(handle(connection, bytes, shared));
    let mut written = Ok(());
    loop {
        tokio::select! {
            biased;
            handled = &mut handling => return (handled, written),
            frame = queue.recv(), if written.is_ok() => {
                written = write_queued(ws, frame, queue, &shared.config.limits).await;
            }
        }
    }
}

/// Writes `first` and what is already queued behind it (up to [`WRITE_BATCH`] frames), then
/// flushes once: a burst of answers and deliveries costs one socket write (and few TLS
/// records), not one per frame. `None` (the queue closed) ends the connection with 1011.
async fn write_queued<T>(
    ws: &mut WebSocketStream<T>,
    first: Option<Bytes>,
    queue: &mut mpsc::Receiver<Bytes>,
    limits: &Limits,
) -> Result<(), Ended>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let Some(first) = first else {
        return Err(Ended::Close(CloseCode::INTERNAL_ERROR));
    };
    let write = async {
        ws.feed(Message::Binary(first)).await?;
        for _ in 1..WRITE_BATCH {
            let Ok(frame) = queue.try_recv() else { break };
            ws.feed(Message::Binary(frame)).await?;
        }
        ws.flush().await
    };
    match timeout(limits.write_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(WsError::WriteBufferFull(_))) | Err(_) => {
            Err(Ended::Close(CloseCode::SLOW_CONSUMER))
        }
        Ok(Err(_)) => Err(Ended::Dropped),
    }
}

/// When a connection authenticated with a bearer token must end: at the token's `exp` plus
/// the verifier's leeway, as if it were checked again then. A connection lasts no longer than
/// the token it was admitted with; the client comes back with a fresh one. `None` without a
/// token, or if the instant is beyond what the clock can represent.
fn token_deadline<S: Service>(connection: &Connection, shared: &Shared<S>) -> Option<Instant> {
    let claims = connection.claims()?;
    let leeway = shared.config.auth.token.as_ref()?.leeway_secs();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let left = claims.exp.saturating_add(leeway).saturating_sub(now);
    Instant::now().checked_add(std::time::Duration::from_secs(left))
}

/// How a connection ended.
enum Ended {
    /// This side closes with the code.
    Close(CloseCode),
    /// The peer sent a close frame with this code (tungstenite answers it).
    ByPeer(CloseCode),
    /// The socket failed or vanished; no close frame can be sent.
    Dropped,
}

impl Ended {
    fn after_read_error(error: &WsError) -> Ended {
        match read_error_code(error) {
            ABNORMAL => Ended::Dropped,
            code => Ended::Close(code),
        }
    }

    /// The code reported to the service.
    fn code(&self) -> CloseCode {
        match self {
            Ended::Close(code) | Ended::ByPeer(code) => *code,
            Ended::Dropped => ABNORMAL,
        }
    }
}

/// The next binary message before authentication; `Err(Some(code))` to close with a code,
/// `Err(None)` if the peer is gone.
async fn next_binary<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
) -> Result<Bytes, Option<CloseCode>> {
    loop {
        match ws.next().await {
            None => return Err(None),
            Some(Err(error)) => {
                let code = read_error_code(&error);
                return Err((code != ABNORMAL).then_some(code));
            }
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes),
            Some(Ok(Message::Text(_))) => return Err(Some(CloseCode::UNSUPPORTED_DATA)),
            Some(Ok(Message::Close(_))) => return Err(None),
            Some(Ok(_)) => {}
        }
    }
}

/// The close code for a failed read: 1009 for size limits, 1007 for invalid UTF-8, 1002 for
/// framing errors, and 1006 (send nothing: no close frame can be sent) when the socket itself failed.
pub fn read_error_code(error: &WsError) -> CloseCode {
    match error {
        WsError::Capacity(_) | WsError::WriteBufferFull(_) => CloseCode::MESSAGE_TOO_BIG,
        WsError::Utf8(_) => CloseCode::MALFORMED_FRAME,
        WsError::Protocol(_) => CloseCode::PROTOCOL_ERROR,
        _ => ABNORMAL,
    }
}

async fn write<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
    limits: &Limits,
    frame: &ServerFrame,
) -> Result<(), ()> {
    let bytes = frame::encode(frame).map_err(|_| ())?;
    match timeout(limits.write_timeout, ws.send(Message::Binary(bytes.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Writes the frames already in the outbound queue (not those queued meanwhile), within the
/// write timeout in total; gives up on the rest if the peer does not read them in time.
async fn flush_queued<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
    limits: &Limits,
    queue: &mut mpsc::Receiver<Bytes>,
) {
    let queued = queue.len();
    if queued == 0 {
        return;
    }
    let flush = async {
        for _ in 0..queued {
            let Ok(frame) = queue.try_recv() else { break };
            ws.feed(Message::Binary(frame)).await?;
        }
        ws.flush().await
    };
    match timeout(limits.write_timeout, flush).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, queued, "queued frames not written"),
        Err(_) => tracing::debug!(queued, "queued frames not written in time"),
    }
}

/// Sends a close frame (bounded by the write timeout) and waits briefly for the peer's.
async fn close<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
    limits: &Limits,
    code: CloseCode,
) {
    let frame = CloseFrame {
        code: code.0.into(),
        reason: code.name().unwrap_or("").into(),
    };
    if let Ok(Ok(())) = timeout(limits.write_timeout, ws.close(Some(frame))).await {
        // Read until the peer's close frame (or the end of the stream), briefly, so that the
        // closing handshake completes and the peer sees a clean close.
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = timeout(limits.write_timeout.min(CLOSE_GRACE), drain).await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
