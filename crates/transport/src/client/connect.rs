//! One connection attempt: TCP, TLS, WebSocket upgrade, challenge and response.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use sealwire_core::IdentityKeyPair;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};

use super::ClientConfig;
use crate::auth::{self, ChannelBinding};
use crate::code::CloseCode;
use crate::error::{Error, Result};
use crate::frame::{self, ClientFrame, Ready, SUBPROTOCOL, ServerFrame};

/// The client's socket: TLS, or plaintext with the insecure test option.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

pub(crate) type Socket = WebSocketStream<Stream>;

/// Where to connect, parsed from the URL once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

impl Target {
    pub(crate) fn parse(url: &str, allow_plaintext: bool) -> Result<Target> {
        let uri: tokio_tungstenite::tungstenite::http::Uri = url
            .parse()
            .map_err(|_| Error::InvalidConfig(format!("url {url:?} is not a URL")))?;
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") if allow_plaintext => false,
            Some("ws") => {
                return Err(Error::InvalidConfig(format!(
                    "url {url:?} is plaintext ws://; use wss:// (ws:// needs the insecure test option)"
                )));
            }
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "url {url:?} must start with wss://"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::InvalidConfig(format!("url {url:?} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            url: url.to_owned(),
            host,
            port,
            tls,
        })
    }
}

/// Connects and authenticates; returns the socket and the server's `ready`.
pub(crate) async fn connect(
    config: &ClientConfig,
    target: &Target,
    identity: &IdentityKeyPair,
) -> Result<(Socket, Ready)> {
    let limits = &config.limits;
    let handshake = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let _ = tcp.set_nodelay(true);
        let (stream, binding) = if target.tls {
            let name = ServerName::try_from(target.host.clone()).map_err(|_| {
                Error::InvalidConfig(format!("{:?} is not a valid server name", target.host))
            })?;
            let tls = config
                .tls
                .connector()
                .connect(name, tcp)
                .await
                .map_err(tls_error)?;
            let binding = ChannelBinding::from_tls(tls.get_ref().1)?;
            (Stream::Tls(Box::new(tls)), binding)
        } else {
            (Stream::Plain(tcp), ChannelBinding::None)
        };
        let mut request = target.url.as_str().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Some(origin) = &config.origin {
            let value = HeaderValue::from_str(origin).map_err(|_| {
                Error::InvalidConfig(format!("origin {origin:?} is not a header value"))
            })?;
            headers.insert(header::ORIGIN, value);
        }
        let (ws, response) = tokio_tungstenite::client_async_with_config(
            request,
            stream,
            Some(limits.websocket_config()),
        )
        .await?;
        let selected = response.headers().get(header::SEC_WEBSOCKET_PROTOCOL);
        if selected.and_then(|value| value.to_str().ok()) != Some(SUBPROTOCOL) {
            return Err(Error::WebSocket(format!(
                "the server did not select the subprotocol {SUBPROTOCOL}"
            )));
        }
        Ok::<_, Error>((ws, binding))
    };
    let (mut ws, binding) = timeout(limits.handshake_timeout, handshake)
        .await
        .map_err(|_| Error::Timeout {
            what: "TLS and WebSocket handshake",
            after: limits.handshake_timeout,
        })??;

    let authenticate = async {
        let challenge = match next_frame(&mut ws).await? {
            ServerFrame::Challenge(challenge) => challenge,
            _ => return Err(Error::UnexpectedFrame("expected challenge")),
        };
        let token = config.token.as_ref().and_then(super::TokenSource::token);
        let server_name = config.server_name.as_deref().unwrap_or(&target.host);
        let hello = auth::respond(identity, &challenge, server_name, &binding, token.as_ref())?;
        let bytes = frame::encode(&ClientFrame::Hello(hello))?;
        ws.send(Message::Binary(bytes.into())).await?;
        match next_frame(&mut ws).await? {
            ServerFrame::Ready(ready) => Ok(ready),
            _ => Err(Error::UnexpectedFrame("expected ready")),
        }
    };
    let ready = timeout(limits.auth_timeout, authenticate)
        .await
        .map_err(|_| Error::Timeout {
            what: "authentication",
            after: limits.auth_timeout,
        })??;
    Ok((ws, ready))
}

/// Tells an untrusted certificate (fatal) from other handshake failures.
fn tls_error(error: io::Error) -> Error {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            Error::UntrustedCertificate(format!("{reason:?}"))
        }
        Some(other) => Error::TlsHandshake(other.to_string()),
        None => Error::TlsHandshake(error.to_string()),
    }
}

/// The next server frame; a close frame becomes [`Error::Closed`].
pub(crate) async fn next_frame(ws: &mut Socket) -> Result<ServerFrame> {
    loop {
        match ws.next().await {
            None => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Message::Binary(bytes))) => return frame::decode(&bytes),
            Some(Ok(Message::Close(close))) => return Err(closed(close)),
            Some(Ok(Message::Text(_))) => return Err(Error::UnexpectedFrame("text message")),
            Some(Ok(_)) => {}
        }
    }
}

/// The error for a received close frame.
pub(crate) fn closed(close: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Error {
    match close {
        Some(frame) => Error::Closed {
            code: CloseCode(frame.code.into()),
            reason: frame.reason.as_str().to_owned(),
        },
        None => Error::Closed {
            code: CloseCode(1005),
            reason: String::new(),
        },
    }
}
