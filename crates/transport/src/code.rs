//! Wire codes: WebSocket close codes and the error codes of `error` frames.
//!
//! A *close code* ends the connection; the client decides from it whether to reconnect
//! ([`CloseCode::is_fatal`]). An *error code* answers one request and leaves the connection
//! open. Both lists are part of the relay protocol (spec/relay-protocol.md, "Codes"); a
//! receiver treats an unknown close code as transient and an unknown error code as
//! [`ErrorCode::Unknown`].

use core::fmt;

/// A WebSocket close code (RFC 6455 section 7.4), with the ones this protocol defines named.
///
/// Codes 1000–1015 are RFC 6455's; 4000–4099 are this protocol's (the range RFC 6455 leaves to
/// applications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the work is done (client logout, server closing an idle connection cleanly).
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is shutting down or restarting. Reconnect with backoff.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: a WebSocket-level protocol error (bad framing).
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a text message arrived; this protocol uses binary messages only.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: a binary message that is not a well-formed frame of this protocol version.
    pub const MALFORMED_FRAME: CloseCode = CloseCode(1007);
    /// 1008: a frame that is not allowed in this state (for example `send` before `hello`).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message or frame larger than the limit.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server failed internally. Reconnect with backoff.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1013: the server is over capacity. Reconnect with backoff.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 4000: no valid `hello` within the authentication timeout.
    pub const AUTH_TIMEOUT: CloseCode = CloseCode(4000);
    /// 4001: the challenge response did not verify (wrong key, replayed, bound to another
    /// server name or TLS session) or the identity is malformed.
    pub const AUTH_FAILED: CloseCode = CloseCode(4001);
    /// 4002: the server requires a bearer token and none was sent.
    pub const TOKEN_REQUIRED: CloseCode = CloseCode(4002);
    /// 4003: the bearer token has expired (or is not valid yet), at authentication or later on
    /// an open connection. Fetch a fresh one.
    pub const TOKEN_EXPIRED: CloseCode = CloseCode(4003);
    /// 4004: the bearer token is malformed, uses an unknown key id or a wrong signature, or
    /// names another mailbox.
    pub const TOKEN_INVALID: CloseCode = CloseCode(4004);
    /// 4005: the outbound queue overflowed or a write stalled: the client reads too slowly.
    /// Nothing is lost; un-acknowledged messages are redelivered on reconnect.
    pub const SLOW_CONSUMER: CloseCode = CloseCode(4005);
    /// 4006: a ping was not answered within the pong timeout.
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4006);
    /// 4007: nothing at all was received within the idle timeout.
    pub const IDLE_TIMEOUT: CloseCode = CloseCode(4007);
    /// 4008: another connection authenticated for the same mailbox and replaced this one.
    pub const REPLACED: CloseCode = CloseCode(4008);
    /// 4029: a rate limit was exceeded. Reconnect after backing off.
    pub const RATE_LIMITED: CloseCode = CloseCode(4029);

    /// Whether reconnecting with the same identity and token cannot help: authentication or
    /// token failures, and protocol violations (this client is broken or out of date).
    /// [`CloseCode::TOKEN_EXPIRED`] is fatal only until the application supplies a new token.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            CloseCode::PROTOCOL_ERROR
                | CloseCode::UNSUPPORTED_DATA
                | CloseCode::MALFORMED_FRAME
                | CloseCode::POLICY_VIOLATION
                | CloseCode::AUTH_FAILED
                | CloseCode::TOKEN_REQUIRED
                | CloseCode::TOKEN_EXPIRED
                | CloseCode::TOKEN_INVALID
                | CloseCode::REPLACED
        )
    }

    /// The protocol's name for the code, or `None` for a code it does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            CloseCode::NORMAL => "normal",
            CloseCode::GOING_AWAY => "going_away",
            CloseCode::PROTOCOL_ERROR => "protocol_error",
            CloseCode::UNSUPPORTED_DATA => "unsupported_data",
            CloseCode::MALFORMED_FRAME => "malformed_frame",
            CloseCode::POLICY_VIOLATION => "policy_violation",
            CloseCode::MESSAGE_TOO_BIG => "message_too_big",
            CloseCode::INTERNAL_ERROR => "internal_error",
            CloseCode::TRY_AGAIN_LATER => "try_again_later",
            CloseCode::AUTH_TIMEOUT => "auth_timeout",
            CloseCode::AUTH_FAILED => "auth_failed",
            CloseCode::TOKEN_REQUIRED => "token_required",
            CloseCode::TOKEN_EXPIRED => "token_expired",
            CloseCode::TOKEN_INVALID => "token_invalid",
            CloseCode::SLOW_CONSUMER => "slow_consumer",
            CloseCode::HEARTBEAT_TIMEOUT => "heartbeat_timeout",
            CloseCode::IDLE_TIMEOUT => "idle_timeout",
            CloseCode::REPLACED => "replaced",
            CloseCode::RATE_LIMITED => "rate_limited",
            _ => return None,
        })
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} {name}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The code of an `error` frame: one request was refused, the connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 1: the request is well formed but makes no sense (no recipients, a duplicate
    /// recipient, an empty upload). Fix the request.
    BadRequest,
    /// 2: the payload is larger than the server's limit (announced in `ready`).
    PayloadTooLarge,
    /// 3: more recipients than the server's limit (announced in `ready`).
    TooManyRecipients,
    /// 4: a recipient mailbox is unknown to the server (it never authenticated there).
    UnknownMailbox,
    /// 5: a recipient's mailbox is full (message count or bytes). Retry later.
    QuotaExceeded,
    /// 6: the client sends faster than its rate limit. Retry after backing off.
    RateLimited,
    /// 7: the request acts on a mailbox that is not the connection's own.
    Forbidden,
    /// 8: the server cannot take the request right now (storage unavailable). Retry later.
    Unavailable,
    /// 9: the mailbox has no prekey bundle on the server.
    NoBundle,
    /// A code this implementation does not know (from a newer server).
    Unknown(u16),
}

impl ErrorCode {
    /// The numeric value on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 1,
            ErrorCode::PayloadTooLarge => 2,
            ErrorCode::TooManyRecipients => 3,
            ErrorCode::UnknownMailbox => 4,
            ErrorCode::QuotaExceeded => 5,
            ErrorCode::RateLimited => 6,
            ErrorCode::Forbidden => 7,
            ErrorCode::Unavailable => 8,
            ErrorCode::NoBundle => 9,
            ErrorCode::Unknown(code) => code,
        }
    }

    /// The code for a numeric value; values this version does not define map to
    /// [`ErrorCode::Unknown`].
    pub fn from_u16(code: u16) -> ErrorCode {
        match code {
            1 => ErrorCode::BadRequest,
            2 => ErrorCode::PayloadTooLarge,
            3 => ErrorCode::TooManyRecipients,
            4 => ErrorCode::UnknownMailbox,
            5 => ErrorCode::QuotaExceeded,
            6 => ErrorCode::RateLimited,
            7 => ErrorCode::Forbidden,
            8 => ErrorCode::Unavailable,
            9 => ErrorCode::NoBundle,
            other => ErrorCode::Unknown(other),
        }
    }

    /// Whether the same request may succeed if retried later unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::QuotaExceeded | ErrorCode::RateLimited | ErrorCode::Unavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::TooManyRecipients => "too_many_recipients",
            ErrorCode::UnknownMailbox => "unknown_mailbox",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NoBundle => "no_bundle",
            ErrorCode::Unknown(_) => "unknown",
        };
        write!(f, "{} {name}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for value in 0..=20u16 {
            assert_eq!(ErrorCode::from_u16(value).to_u16(), value);
        }
    }

    #[test]
    fn auth_and_protocol_failures_are_fatal_transient_ones_are_not() {
        assert!(CloseCode::AUTH_FAILED.is_fatal());
        assert!(CloseCode::TOKEN_INVALID.is_fatal());
        assert!(!CloseCode::GOING_AWAY.is_fatal());
        assert!(!CloseCode::SLOW_CONSUMER.is_fatal());
        assert!(!CloseCode::HEARTBEAT_TIMEOUT.is_fatal());
        assert!(!CloseCode(4999).is_fatal());
    }
}
