//! Shared setup for the WSS tests: a CA generated per test (rcgen), a server on 127.0.0.1 with
//! a free port, clients, and a raw client that speaks the protocol frame by frame.
#![allow(dead_code, unreachable_pub)]

pub(crate) mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use sealwire_core::IdentityKeyPair;
use sealwire_transport::auth::{self, ChannelBinding};
use sealwire_transport::client::{Client, ClientConfig, Event};
use sealwire_transport::code::CloseCode;
use sealwire_transport::frame::{self, Challenge, ClientFrame, SUBPROTOCOL, ServerFrame};
use sealwire_transport::server::{Server, ServerConfig, ServerHandle};
use sealwire_transport::tls::{ClientTls, DevCa, ServerTls};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};

pub(crate) use relay::MemoryRelay;

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) const SERVER_NAME: &str = "localhost";

/// A CA and a server certificate for `localhost` and 127.0.0.1, made fresh for each test.
pub(crate) struct Pki {
    pub(crate) ca: DevCa,
    pub(crate) server: ServerTls,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let ca = DevCa::generate("sealwire test CA").unwrap();
        let server = ca
            .issue_server(&[SERVER_NAME, "127.0.0.1"])
            .unwrap()
            .server_tls()
            .unwrap();
        Pki { ca, server }
    }

    pub(crate) fn client_tls(&self) -> ClientTls {
        ClientTls::builder()
            .ca_pem(self.ca.ca_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap()
    }

    pub(crate) fn server_config(&self) -> ServerConfig {
        ServerConfig::new(self.server.clone(), [SERVER_NAME])
    }
}

/// Starts a server on 127.0.0.1 (port 0 unless `addr` is given).
pub(crate) async fn serve(
    config: ServerConfig,
    relay: Arc<MemoryRelay>,
    addr: Option<SocketAddr>,
) -> ServerHandle {
    let addr = addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
    Server::bind(addr, config, relay)
        .await
        .unwrap()
        .spawn()
        .unwrap()
}

pub(crate) fn url(addr: SocketAddr) -> String {
    format!("wss://{SERVER_NAME}:{}/", addr.port())
}

pub(crate) fn identity() -> IdentityKeyPair {
    IdentityKeyPair::generate(&mut rand::rng())
}

/// A second copy of an identity key pair (the type is deliberately not `Clone`).
pub(crate) fn duplicate(identity: &IdentityKeyPair) -> IdentityKeyPair {
    IdentityKeyPair::from_bytes(identity.to_bytes().expose_secret()).unwrap()
}

/// A client config for `addr` trusting the test CA, with quick reconnects.
pub(crate) fn client_config(pki: &Pki, addr: SocketAddr) -> ClientConfig {
    let mut config = ClientConfig::new(url(addr), pki.client_tls());
    config.backoff.initial = Duration::from_millis(20);
    config.backoff.max = Duration::from_millis(200);
    config
}

/// The next event, within [`WAIT`].
pub(crate) async fn next_event(client: &mut Client) -> Event {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("no event in time")
        .expect("client task ended")
}

/// Skips events until `pick` returns something.
pub(crate) async fn wait_for<T>(
    client: &mut Client,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    loop {
        if let Some(found) = pick(next_event(client).await) {
            return found;
        }
    }
}

/// Waits for [`Event::Connected`]; returns the mailbox the relay bound the connection to.
pub(crate) async fn connected(client: &mut Client) -> sealwire_transport::frame::MailboxId {
    wait_for(client, |event| match event {
        Event::Connected(ready) => Some(ready.mailbox),
        _ => None,
    })
    .await
}

pub(crate) type RawSocket = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A raw TLS + WebSocket connection with chosen headers; returns the socket and its channel
/// binding, or the upgrade error.
pub(crate) async fn raw_connect(
    pki: &Pki,
    addr: SocketAddr,
    headers: &[(&'static str, &str)],
) -> Result<(RawSocket, ChannelBinding), tokio_tungstenite::tungstenite::Error> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = pki
        .client_tls()
        .connector()
        .connect(name, tcp)
        .await
        .unwrap();
    let binding = ChannelBinding::from_tls(tls.get_ref().1).unwrap();
    let mut request = url(addr).into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let (ws, _) = tokio_tungstenite::client_async(request, tls).await?;
    Ok((ws, binding))
}

/// A raw connection offering the subprotocol, past the upgrade, with the challenge read.
pub(crate) async fn raw_challenged(
    pki: &Pki,
    addr: SocketAddr,
) -> (RawSocket, ChannelBinding, Challenge) {
    let (mut ws, binding) = raw_connect(pki, addr, &[("sec-websocket-protocol", SUBPROTOCOL)])
        .await
        .unwrap();
    let challenge = match raw_read(&mut ws).await {
        Ok(ServerFrame::Challenge(challenge)) => challenge,
        other => panic!("expected a challenge, got {other:?}"),
    };
    (ws, binding, challenge)
}

/// Sends a frame on a raw connection.
pub(crate) async fn raw_send(ws: &mut RawSocket, frame: &ClientFrame) {
    let bytes = frame::encode(frame).unwrap();
    ws.send(Message::Binary(Bytes::from(bytes))).await.unwrap();
}

/// Reads the next frame on a raw connection, or the close code that ended it.
pub(crate) async fn raw_read(ws: &mut RawSocket) -> Result<ServerFrame, CloseCode> {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("nothing in time");
        match message {
            Some(Ok(Message::Binary(bytes))) => return Ok(frame::decode(&bytes).unwrap()),
            Some(Ok(Message::Close(Some(close)))) => return Err(CloseCode(close.code.into())),
            Some(Ok(Message::Close(None))) => return Err(CloseCode(1005)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(CloseCode(1006)),
        }
    }
}

/// Authenticates a raw connection as `identity`; returns the `ready` frame or the close code.
pub(crate) async fn raw_authenticate(
    pki: &Pki,
    addr: SocketAddr,
    identity: &IdentityKeyPair,
) -> (RawSocket, Result<ServerFrame, CloseCode>) {
    let (mut ws, binding, challenge) = raw_challenged(pki, addr).await;
    let hello = auth::respond(identity, &challenge, SERVER_NAME, &binding, None).unwrap();
    raw_send(&mut ws, &ClientFrame::Hello(hello)).await;
    let answer = raw_read(&mut ws).await;
    (ws, answer)
}
