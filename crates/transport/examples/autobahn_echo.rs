//! A WebSocket echo server for conformance testing of the transport's WebSocket layer with the
//! Autobahn test-suite cases (run by `.ci/autobahn` through the `kosoku` test client).
//!
//! It accepts plain `ws://` connections on 127.0.0.1, upgrades them with the transport's real
//! tungstenite configuration ([`Limits::default`]`.websocket_config()`: 96 KiB message and frame
//! limits, 4 KiB buffers, masked frames required) and echoes every text and binary message.
//! When a read fails it closes with the code the relay server itself would send, from
//! [`read_error_code`]: 1009 for a message or frame over the limit, 1007 for invalid UTF-8,
//! 1002 for a framing error, nothing at all when the socket failed. A close from the peer is
//! answered by tungstenite, and the connection ends. Each connection runs in its own task.
//!
//! What this does *not* exercise, because the test client cannot: the real server also
//! requires TLS, the `sealwire.relay.v1` subprotocol and an allowed `Origin`, accepts only
//! binary messages (a text message is closed with 1003), and runs the authentication and
//! request loop on top. This example tests the framing layer underneath, with the same limits
//! and the same close-code mapping.
//!
//! Run with `cargo run -p sealwire-transport --example autobahn_echo -- PORT` (0, the default,
//! picks a free port). The first line on stdout is `listening on 127.0.0.1:PORT`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sealwire_transport::code::CloseCode;
use sealwire_transport::limits::Limits;
use sealwire_transport::server::read_error_code;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// RFC 6455's 1006: the connection ended without a close frame; nothing is sent.
const ABNORMAL: CloseCode = CloseCode(1006);

/// Longest wait for the peer's close frame after sending ours (as in the server).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|error| format!("usage: autobahn_echo [PORT]: bad port {arg:?}: {error}"))?,
        None => 0,
    };
    let limits = Arc::new(Limits::default());
    limits.validate()?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(serve(tcp, limits.clone()));
            }
            Err(error) => {
                eprintln!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Upgrades one connection, echoes until it ends and closes it with the right code.
async fn serve(tcp: TcpStream, limits: Arc<Limits>) {
    let _ = tcp.set_nodelay(true);
    let config = limits.websocket_config();
    let upgrade = tokio_tungstenite::accept_async_with_config(tcp, Some(config));
    let mut ws = match timeout(limits.handshake_timeout, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => return eprintln!("handshake failed: {error}"),
        Err(_) => return eprintln!("handshake timed out"),
    };
    let code = echo(&mut ws).await;
    if code != ABNORMAL {
        close(&mut ws, &limits, code).await;
    }
}

/// Echoes text and binary messages; returns the close code to send ([`ABNORMAL`]: none).
async fn echo<T: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<T>) -> CloseCode {
    // After a close frame from the peer, tungstenite queues the reply; the next read flushes
    // it and ends the stream, so the loop runs until `None`.
    while let Some(incoming) = ws.next().await {
        match incoming {
            Err(error) => return read_error_code(&error),
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(message).await.is_err() {
                    return ABNORMAL;
                }
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => {}
        }
    }
    ABNORMAL
}

/// Sends a close frame and waits briefly for the peer's, as the server does.
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
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = timeout(limits.write_timeout.min(CLOSE_GRACE), drain).await;
    }
}
