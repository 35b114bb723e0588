//! A raw protocol client: TLS, upgrade and `hello` by hand, then frames one by one.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use sealwire_core::IdentityKeyPair;
use sealwire_transport::auth::{self, ChannelBinding};
use sealwire_transport::code::CloseCode;
use sealwire_transport::frame::{self, ClientFrame, SUBPROTOCOL, ServerFrame};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::{Pki, SERVER_NAME, WAIT};

/// An authenticated raw connection.
pub(crate) struct Raw {
    ws: WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
}

impl Raw {
    /// Connects and authenticates as `identity`; panics unless `ready` comes.
    pub(crate) async fn connect(pki: &Pki, addr: SocketAddr, identity: &IdentityKeyPair) -> Raw {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let tls = pki
            .client_tls()
            .connector()
            .connect(name, tcp)
            .await
            .unwrap();
        let binding = ChannelBinding::from_tls(tls.get_ref().1).unwrap();
        let mut request = format!("wss://{SERVER_NAME}:{}/", addr.port())
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let (ws, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
        let mut raw = Raw { ws };
        let ServerFrame::Challenge(challenge) = raw.read().await.unwrap() else {
            panic!("no challenge");
        };
        let hello = auth::respond(identity, &challenge, SERVER_NAME, &binding, None).unwrap();
        raw.send(&ClientFrame::Hello(hello)).await;
        match raw.read().await {
            Ok(ServerFrame::Ready(_)) => raw,
            other => panic!("expected ready, got {other:?}"),
        }
    }

    /// Sends a frame.
    pub(crate) async fn send(&mut self, frame: &ClientFrame) {
        let bytes = frame::encode(frame).unwrap();
        self.ws
            .send(Message::Binary(Bytes::from(bytes)))
            .await
            .unwrap();
    }

    /// The next frame, or the close code that ended the connection.
    pub(crate) async fn read(&mut self) -> Result<ServerFrame, CloseCode> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
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
}
