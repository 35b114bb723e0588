//! The single error type of `sealwire-transport`.
//!
//! Errors that the peer can cause on purpose (a bad signature, a malformed frame) are reported
//! to the peer only as a close code from [`code`](crate::code); the detail stays in the local
//! [`Error`] and in logs, never in anything an attacker can read back.

use std::time::Duration;

use crate::code::{CloseCode, ErrorCode};

/// Everything that can go wrong in `sealwire-transport`. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket-level failure (connect refused, reset, broken pipe). Transient: the client
    /// reconnects by itself; a server drops that one connection.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The TLS configuration could not be built: a certificate or key file is missing, is not
    /// PEM, or does not match. Fix the files named in the message.
    #[error("TLS configuration: {0}")]
    TlsConfig(String),

    /// The TLS handshake failed: the server's certificate is not trusted (unknown CA, wrong
    /// name, expired, pin mismatch) or the peer offered no acceptable version or cipher suite.
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(String),

    /// The server's certificate is not trusted: unknown CA, a name that does not match the URL,
    /// expired, or a pin mismatch. Check the URL, the configured CA and pins; retrying does not
    /// help.
    #[error("the server's certificate is not trusted: {0}")]
    UntrustedCertificate(String),

    /// The server refused the WebSocket upgrade with this HTTP status: 403 for an `Origin`
    /// it does not allow, 400 if the client did not offer the protocol's subprotocol. 4xx
    /// statuses are permanent (fix the configuration); 5xx and 429 are transient.
    #[error("the server refused the WebSocket upgrade with HTTP status {status}")]
    UpgradeRefused {
        /// The HTTP status code.
        status: u16,
    },

    /// The WebSocket upgrade or a WebSocket frame failed (bad HTTP response, refused origin,
    /// unsupported subprotocol, oversize or malformed frame).
    #[error("WebSocket: {0}")]
    WebSocket(String),

    /// A step did not finish in time (TLS and upgrade, authentication, a request).
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        what: &'static str,
        /// The limit that was exceeded.
        after: Duration,
    },

    /// The bytes are not a well-formed frame of this protocol version. The sender does not
    /// speak sealwire relay protocol version 1 (or the bytes were corrupted).
    #[error("malformed frame: {0}")]
    MalformedFrame(&'static str),

    /// A frame arrived that is not allowed in the connection's current state (for example a
    /// `send` before authentication). The peer is not following the protocol.
    #[error("unexpected frame: {0}")]
    UnexpectedFrame(&'static str),

    /// A frame or payload is larger than the configured limit.
    #[error("{what} is {len} bytes, more than the maximum of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Authentication failed: the challenge response did not verify (wrong key, replayed or
    /// bound to another server or TLS session) or the identity is malformed.
    #[error("authentication failed: {0}")]
    AuthFailed(&'static str),

    /// The bearer token was missing, malformed, signed with an unknown or wrong key, expired or
    /// not yet valid. Fetch a fresh token from the application's backend.
    #[error("bearer token rejected: {0}")]
    Token(#[from] crate::token::TokenError),

    /// The connection was closed with this code. On the client, [`CloseCode::is_fatal`] tells
    /// whether reconnecting can help.
    #[error("connection closed by peer: {code} ({reason})")]
    Closed {
        /// The WebSocket close code.
        code: CloseCode,
        /// The close reason text sent with it (informational, may be empty).
        reason: String,
    },

    /// The server answered a request with an error frame.
    #[error("request refused by the server: {code}")]
    Refused {
        /// What the server said.
        code: ErrorCode,
    },

    /// The client has shut down (or the server it belongs to has); create a new one.
    #[error("the client or server has shut down")]
    Shutdown,

    /// A configuration value is invalid (an empty server name list, a zero limit, a URL that
    /// is not `wss://`). The message names the field.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// An error from the protocol core (for example a malformed identity).
    #[error(transparent)]
    Core(#[from] sealwire_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match error {
            WsError::Io(io) => Error::Io(io),
            WsError::Capacity(capacity) => Error::WebSocket(format!("capacity: {capacity}")),
            WsError::Http(response) => Error::UpgradeRefused {
                status: response.status().as_u16(),
            },
            other => Error::WebSocket(other.to_string()),
        }
    }
}
