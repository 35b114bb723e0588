//! Connection authentication: challenge and response with the client's identity key.
//!
//! Right after the WebSocket upgrade the server sends a [`Challenge`] holding 32 fresh random
//! bytes. The client answers with a [`Hello`]: its public identity, the server name it
//! connected to, an optional bearer token, and an Ed25519 signature by its identity key over
//! the *transcript*:
//!
//! ```text
//! transcript = "sealwire/v1/relay/auth" (22 bytes)
//!            ‖ nonce (32)
//!            ‖ len(server_name) (1) ‖ server_name
//!            ‖ binding_kind (1) ‖ binding
//!            ‖ token_kind (1) ‖ token_hash
//! binding_kind = 1, binding = TLS exporter (RFC 8446 §7.5 / RFC 5705),
//!                label "EXPORTER-sealwire-relay-v1", no context, 32 bytes
//!              | 0, binding empty (plaintext `ws://`, tests only)
//! token_kind   = 1, token_hash = SHA-256(token as UTF-8) | 0, token_hash empty
//! signature    = IdentityKeyPair::sign_with_label("sealwire/v1/relay/auth", transcript)
//! ```
//!
//! (`sign_with_label` prefixes its own domain separator; see spec/sealwire.md, "Application
//! signatures".) The server verifies the signature against the identity in the `hello`, and
//! binds the connection to that identity's [`MailboxId`].
//!
//! What each part buys:
//! - the **nonce** is fresh per connection, so a recorded `hello` fails on any other connection
//!   (replay);
//! - the **server name** must be one of the server's own names, so a response obtained by a
//!   malicious server for itself cannot be forwarded to another relay;
//! - the **TLS exporter** ties the response to this TLS session, so even a man in the middle
//!   holding a certificate the client trusts cannot relay it to the real server;
//! - the **token hash** keeps a man in the middle from swapping the bearer token.
//!
//! Everything here is sans-IO: [`ServerAuth`] takes bytes and returns the verdict.

use sealwire_core::{IdentityKeyPair, PublicIdentity};
use sha2::{Digest, Sha256};

use crate::code::CloseCode;
use crate::error::{Error, Result};
use crate::frame::{self, Challenge, ClientFrame, Hello, MailboxId};
use crate::token::{BearerToken, Claims, TokenError, TokenVerifier};

/// The label of the authentication signature (and the transcript's prefix).
pub const AUTH_LABEL: &[u8] = b"sealwire/v1/relay/auth";

/// The TLS exporter label of the channel binding.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-sealwire-relay-v1";

/// Longest server name accepted in a `hello`.
pub const MAX_SERVER_NAME_LEN: usize = 255;

/// What ties the authentication to the connection underneath it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    /// The 32-byte TLS exporter value of this TLS session.
    Tls([u8; 32]),
    /// No TLS (plaintext `ws://`, only with the insecure test option): no binding.
    None,
}

impl core::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ChannelBinding::Tls(_) => "ChannelBinding::Tls(..)",
            ChannelBinding::None => "ChannelBinding::None",
        })
    }
}

impl ChannelBinding {
    /// The exporter value of a rustls connection (client or server side).
    ///
    /// # Errors
    /// [`Error::TlsHandshake`] if the handshake is not complete.
    pub fn from_tls<D>(connection: &rustls::ConnectionCommon<D>) -> Result<ChannelBinding> {
        let mut out = [0u8; 32];
        connection
            .export_keying_material(&mut out, EXPORTER_LABEL, None)
            .map_err(|error| Error::TlsHandshake(format!("channel binding: {error}")))?;
        Ok(ChannelBinding::Tls(out))
    }
}

/// The bytes the client signs (see the module docs).
///
/// # Errors
/// [`Error::AuthFailed`] if the server name is empty or longer than 255 bytes.
pub fn transcript(
    nonce: &[u8; 32],
    server_name: &str,
    binding: &ChannelBinding,
    token: Option<&str>,
) -> Result<Vec<u8>> {
    let name_len = match u8::try_from(server_name.len()) {
        Ok(len @ 1..) => len,
        _ => return Err(Error::AuthFailed("server name must be 1 to 255 bytes")),
    };
    let mut out = Vec::with_capacity(AUTH_LABEL.len() + 32 + 1 + server_name.len() + 66);
    out.extend_from_slice(AUTH_LABEL);
    out.extend_from_slice(nonce);
    out.push(name_len);
    out.extend_from_slice(server_name.as_bytes());
    match binding {
        ChannelBinding::Tls(value) => {
            out.push(1);
            out.extend_from_slice(value);
        }
        ChannelBinding::None => out.push(0),
    }
    match token {
        Some(token) => {
            out.push(1);
            out.extend_from_slice(&Sha256::digest(token.as_bytes()));
        }
        None => out.push(0),
    }
    Ok(out)
}

/// Builds the client's `hello` for a challenge.
///
/// # Errors
/// [`Error::AuthFailed`] for an empty or over-long server name.
pub fn respond(
    identity: &IdentityKeyPair,
    challenge: &Challenge,
    server_name: &str,
    binding: &ChannelBinding,
    token: Option<&BearerToken>,
) -> Result<Hello> {
    let token = token.map(|token| token.as_str().to_owned());
    let message = transcript(&challenge.nonce, server_name, binding, token.as_deref())?;
    let signature = identity.sign_with_label(AUTH_LABEL, &message)?;
    Ok(Hello {
        identity: identity.public().to_bytes(),
        server_name: server_name.to_owned(),
        token,
        signature,
    })
}

/// The server's policy for accepting a `hello`.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// The names clients may use for this server (compared ASCII case-insensitively).
    pub server_names: Vec<String>,
    /// If set, a valid bearer token is required.
    pub token: Option<TokenVerifier>,
}

/// A connection that passed authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The verified identity.
    pub identity: PublicIdentity,
    /// The mailbox the connection is bound to.
    pub mailbox: MailboxId,
    /// The bearer token's claims, when the policy requires a token.
    pub claims: Option<Claims>,
}

/// Why authentication failed: the close code to send and the local error to log.
#[derive(Debug)]
pub struct Rejection {
    /// The close code to send to the client.
    pub code: CloseCode,
    /// The detailed reason (for logs and metrics, not for the peer).
    pub error: Error,
}

impl Rejection {
    fn new(code: CloseCode, error: Error) -> Rejection {
        Rejection { code, error }
    }
}

/// The server side of authentication for one connection (sans-IO).
#[derive(Debug)]
pub struct ServerAuth {
    nonce: [u8; 32],
    binding: ChannelBinding,
    sni: Option<String>,
}

impl ServerAuth {
    /// Starts authentication with a fresh random nonce; send the returned challenge first.
    pub fn new(binding: ChannelBinding) -> (ServerAuth, Challenge) {
        Self::with_nonce(rand::random(), binding)
    }

    /// Starts authentication with a given nonce. The nonce must never repeat: use
    /// [`ServerAuth::new`] outside of tests and vectors.
    pub fn with_nonce(nonce: [u8; 32], binding: ChannelBinding) -> (ServerAuth, Challenge) {
        (
            ServerAuth {
                nonce,
                binding,
                sni: None,
            },
            Challenge { nonce },
        )
    }

    /// Also requires the `hello`'s server name to be the one the client sent in TLS SNI
    /// (when it sent one: clients connecting to an IP address send none).
    pub fn with_sni(mut self, sni: Option<String>) -> ServerAuth {
        self.sni = sni;
        self
    }

    /// Checks the client's first message. Consumes `self`: a nonce answers one `hello` only.
    ///
    /// # Errors
    /// A [`Rejection`] with [`CloseCode::MALFORMED_FRAME`] for bytes that are not a frame,
    /// [`CloseCode::POLICY_VIOLATION`] for a frame other than `hello`,
    /// [`CloseCode::AUTH_FAILED`] for a bad identity, server name or signature, and the token
    /// codes for token failures.
    pub fn verify(
        self,
        message: &[u8],
        policy: &AuthPolicy,
        now_unix_secs: u64,
    ) -> core::result::Result<Authenticated, Rejection> {
        let hello = match frame::decode::<ClientFrame>(message) {
            Ok(ClientFrame::Hello(hello)) => hello,
            Ok(_) => {
                return Err(Rejection::new(
                    CloseCode::POLICY_VIOLATION,
                    Error::UnexpectedFrame("a request before hello"),
                ));
            }
            Err(error) => return Err(Rejection::new(CloseCode::MALFORMED_FRAME, error)),
        };
        let failed = |what| Rejection::new(CloseCode::AUTH_FAILED, Error::AuthFailed(what));
        let known_name = policy
            .server_names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&hello.server_name));
        if !known_name {
            return Err(failed("the hello names another server"));
        }
        if let Some(sni) = &self.sni
            && !sni.eq_ignore_ascii_case(&hello.server_name)
        {
            return Err(failed("the hello's server name is not the TLS server name"));
        }
        let identity = PublicIdentity::from_bytes(&hello.identity)
            .map_err(|_| failed("malformed identity"))?;
        let message = transcript(
            &self.nonce,
            &hello.server_name,
            &self.binding,
            hello.token.as_deref(),
        )
        .map_err(|error| Rejection::new(CloseCode::AUTH_FAILED, error))?;
        identity
            .verify_with_label(AUTH_LABEL, &message, &hello.signature)
            .map_err(|_| failed("the challenge signature does not verify"))?;
        let mailbox = MailboxId::of(&identity);

        let claims = match (&policy.token, hello.token.as_deref()) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Rejection::new(
                    CloseCode::TOKEN_REQUIRED,
                    Error::Token(TokenError::Missing),
                ));
            }
            (Some(verifier), Some(token)) => {
                let claims = verifier
                    .verify(token, now_unix_secs, &mailbox.0)
                    .map_err(|error| Rejection::new(token_close_code(&error), error.into()))?;
                Some(claims)
            }
        };
        Ok(Authenticated {
            identity,
            mailbox,
            claims,
        })
    }
}

/// The close code for a token failure.
pub fn token_close_code(error: &TokenError) -> CloseCode {
    match error {
        TokenError::Missing => CloseCode::TOKEN_REQUIRED,
        TokenError::Expired | TokenError::NotYetValid => CloseCode::TOKEN_EXPIRED,
        _ => CloseCode::TOKEN_INVALID,
    }
}
