//! Bearer tokens: HS256 JSON Web Tokens that gate access to a relay.
//!
//! An operator who wants only the users of one application to reach a relay configures the
//! relay with a key ring ([`TokenKeys`]) shared with the application's backend. The backend
//! issues each client a short-lived token ([`issue`], or any JWT library), the client carries
//! it in its first frame (`hello`) as a [`BearerToken`], and the relay checks it with
//! [`TokenVerifier::verify`]. The token is a bearer secret: whoever holds it gets in until it
//! expires, so it is zeroized on drop and never printed.
//!
//! # Accepted format
//!
//! A token is a JWS in compact serialization (RFC 7515, RFC 7519), at most
//! [`MAX_TOKEN_LEN`] bytes: `BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(tag)`.
//!
//! - Each segment is unpadded base64url with canonical trailing bits; padding, other
//!   alphabets and whitespace are rejected.
//! - The header is a JSON object with `"alg": "HS256"` (nothing else, in particular not
//!   `"none"`), a `"kid"` naming a key of the ring, optionally `"typ": "JWT"`, and no `"crit"`.
//!   Other header members are ignored.
//! - The tag is HMAC-SHA256 under the key named by `kid`, over the ASCII bytes of the first
//!   two segments joined by `"."`. It is compared in constant time before the payload is read.
//! - The payload is a JSON object of [`Claims`]: `exp` is required; `nbf`, `iat`, `sub`,
//!   `aud`, `iss` and `sealwire_mailbox` are optional; other claims are ignored. Times are
//!   integer seconds since the Unix epoch; `aud` is a single string (not an array).
//! - Duplicate members among those read (`alg`, `kid`, `typ`, `crit` in the header; the
//!   claims listed above in the payload) are rejected; other members are ignored.
//!
//! Keys are at least [`MIN_SECRET_LEN`] random bytes, loaded from a file
//! ([`TokenKeys::from_file`]) or an environment variable ([`TokenKeys::from_env`]); several
//! keys with distinct `kid`s may be active at once so that keys can be rotated.
//!
//! # Example
//!
//! ```
//! use sealwire_transport::token::{issue, Claims, TokenKey, TokenKeys, TokenVerifier};
//!
//! # fn main() -> Result<(), sealwire_transport::token::TokenError> {
//! // In production the secret comes from `TokenKeys::from_file` or `from_env`.
//! let key = TokenKey::new("2025-01", vec![0x42; 32])?;
//! let mailbox = [7u8; 32];
//! let now = 1_750_000_000;
//!
//! // Application backend: issue a token valid for ten minutes, for one mailbox.
//! let claims = Claims {
//!     aud: Some("relay.example".into()),
//!     sealwire_mailbox: Some("07".repeat(32)),
//!     ..Claims::new(now + 600)
//! };
//! let token = issue(&key, &claims);
//!
//! // Relay: verify it.
//! let verifier = TokenVerifier::new(TokenKeys::new(vec![key])?).with_audience("relay.example");
//! assert_eq!(verifier.verify(&token, now, &mailbox)?, claims);
//! assert!(verifier.verify(&token, now + 3600, &mailbox).is_err());
//! # Ok(())
//! # }
//! ```

mod keys;

use std::fmt;

pub use keys::{TokenKey, TokenKeys};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;
/// The shortest accepted secret, in bytes (the output size of SHA-256).
pub const MIN_SECRET_LEN: usize = 32;
/// The longest accepted key id, in characters.
pub const MAX_KID_LEN: usize = 64;
/// The default clock-skew allowance of [`TokenVerifier`], in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// The largest key file [`TokenKeys::from_file`] reads, in bytes.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// Why a bearer token or a token key was rejected. Messages never contain secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token was presented but the server requires one.
    #[error("a bearer token is required: obtain one from the application's backend")]
    Missing,
    /// The token is not a well-formed HS256 JWT (the detail says which part).
    #[error("malformed token ({0}): fetch a fresh token from the application's backend")]
    Malformed(&'static str),
    /// The header's `alg` is not `HS256` (for example `none` or `HS512`).
    #[error("unsupported token algorithm: only HS256 is accepted; issue HS256 tokens")]
    UnsupportedAlgorithm,
    /// The header has no `kid`, or names a key that is not in the key ring.
    #[error("unknown token key id: add the token's kid to the key ring or fetch a new token")]
    UnknownKey,
    /// The signature does not verify under the key named by `kid`.
    #[error("bad token signature: check that the backend and the relay share the same key")]
    BadSignature,
    /// The token's `exp` (plus leeway) has passed.
    #[error("token expired: fetch a fresh token from the application's backend")]
    Expired,
    /// The token's `nbf` is still in the future (beyond the leeway).
    #[error("token not yet valid: check the clocks of the backend and the relay")]
    NotYetValid,
    /// The token's `aud` does not match the configured audience (or one side has none).
    #[error("token is for another audience: fetch a token issued for this relay")]
    WrongAudience,
    /// The token's `iss` does not match the configured issuer.
    #[error("token is from an unexpected issuer: fetch a token from the configured issuer")]
    WrongIssuer,
    /// The token's `sealwire_mailbox` names another mailbox.
    #[error("token is bound to another mailbox: fetch a token for this mailbox")]
    WrongMailbox,
    /// A key id or secret passed to [`TokenKey::new`] is unacceptable.
    #[error("invalid token key: {0}")]
    InvalidKey(&'static str),
    /// A key ring passed to [`TokenKeys::new`] is empty or has duplicate key ids.
    #[error("invalid token key ring: {0}")]
    InvalidKeyRing(String),
    /// A key file or environment variable could not be read or parsed. The message names the
    /// source, the line and the reason, never secret bytes.
    #[error("token key file: {0}")]
    KeyFile(String),
}

/// The claims of a token. Unknown claims are ignored when verifying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, in seconds since the Unix epoch. Required.
    pub exp: u64,
    /// Not valid before, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, in seconds since the Unix epoch (informational; not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Subject: the application's user id (informational; not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience: the relay the token is for. Must match [`TokenVerifier::with_audience`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer: the backend that issued the token. Checked if [`TokenVerifier::with_issuer`]
    /// is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Lowercase hex of the 32-byte mailbox id the token is restricted to; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealwire_mailbox: Option<String>,
}

impl Claims {
    /// Claims with expiry `exp` (seconds since the Unix epoch) and nothing else.
    pub fn new(exp: u64) -> Self {
        Self {
            exp,
            ..Self::default()
        }
    }
}

/// The JOSE header members this module looks at.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    #[serde(default)]
    crit: Present,
}

/// Whether a member is present, whatever its value (even `null`).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// Checks bearer tokens against a key ring, a clock and the relay's expectations.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: TokenKeys,
    leeway_secs: u64,
    audience: Option<String>,
    issuer: Option<String>,
}

impl TokenVerifier {
    /// A verifier for tokens signed by `keys`, with a leeway of [`DEFAULT_LEEWAY_SECS`] and no
    /// audience or issuer configured (then tokens that carry an `aud` are rejected).
    pub fn new(keys: TokenKeys) -> Self {
        Self {
            keys,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            audience: None,
            issuer: None,
        }
    }

    /// Sets the clock-skew allowance applied to `exp` and `nbf`.
    #[must_use]
    pub fn with_leeway_secs(mut self, leeway_secs: u64) -> Self {
        self.leeway_secs = leeway_secs;
        self
    }

    /// Requires tokens to carry exactly this `aud`.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Requires tokens to carry exactly this `iss`.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The key ring.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The clock-skew allowance, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// Verifies `token` at time `now_unix_secs` for a client that opens `mailbox`, and returns
    /// its claims. Checks, in this order (the first failure is returned):
    ///
    /// 1. non-empty ([`TokenError::Missing`]) and at most [`MAX_TOKEN_LEN`] bytes;
    /// 2. exactly three strict unpadded base64url segments;
    /// 3. header: a JSON object with `alg` `HS256` ([`TokenError::UnsupportedAlgorithm`]), a
    ///    `kid` in the ring ([`TokenError::UnknownKey`]), `typ` absent or `JWT`, no `crit`;
    /// 4. HMAC-SHA256 tag, in constant time, before the payload is parsed
    ///    ([`TokenError::BadSignature`]);
    /// 5. payload: a JSON object of [`Claims`] with an integer `exp`;
    /// 6. `exp + leeway > now` ([`TokenError::Expired`]), then `nbf <= now + leeway`
    ///    ([`TokenError::NotYetValid`]);
    /// 7. `aud` equal to the configured audience, both absent if none is configured
    ///    (RFC 7519 §4.1.3; [`TokenError::WrongAudience`]); `iss` equal to the configured
    ///    issuer if one is ([`TokenError::WrongIssuer`]);
    /// 8. `sealwire_mailbox`, if present, equal to the lowercase hex of `mailbox`
    ///    ([`TokenError::WrongMailbox`]).
    ///
    /// Other failures are [`TokenError::Malformed`].
    ///
    /// # Errors
    ///
    /// The [`TokenError`] of the first failed check.
    pub fn verify(
        &self,
        token: &str,
        now_unix_secs: u64,
        mailbox: &[u8; 32],
    ) -> Result<Claims, TokenError> {
        use TokenError::Malformed;
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Malformed("longer than 4096 bytes"));
        }
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(tag_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(Malformed("not three dot-separated segments"));
        };
        let decode = |segment: &str, what: &'static str| {
            URL_SAFE_NO_PAD.decode(segment).map_err(|_| Malformed(what))
        };
        let header = decode(header_b64, "header is not unpadded base64url")?;
        let payload = decode(payload_b64, "payload is not unpadded base64url")?;
        let tag = decode(tag_b64, "signature is not unpadded base64url")?;

        let header: Header = parse_json_object(&header)
            .ok_or(Malformed("header is not a JSON object with string members"))?;
        if header.alg.as_deref() != Some("HS256") {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        if header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
            return Err(Malformed("typ header is not JWT"));
        }
        if header.crit.0 {
            return Err(Malformed("crit header is not supported"));
        }

        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.mac(signing_input.as_bytes())?
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;

        let claims: Claims = parse_json_object(&payload).ok_or(Malformed(
            "payload is not a JSON object of claims with an integer exp",
        ))?;
        if claims.exp.saturating_add(self.leeway_secs) <= now_unix_secs {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now_unix_secs.saturating_add(self.leeway_secs))
        {
            return Err(TokenError::NotYetValid);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        if self.issuer.is_some() && claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if let Some(bound) = &claims.sealwire_mailbox
            && *bound != hex::encode(mailbox)
        {
            return Err(TokenError::WrongMailbox);
        }
        Ok(claims)
    }
}

/// Parses `bytes` as a JSON object (not an array, which serde would also map to a struct).
fn parse_json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// Issues an HS256 token for `claims` signed with `key`, with the header
/// `{"alg":"HS256","kid":<kid>,"typ":"JWT"}`. For application backends and tests; the relay
/// only verifies.
pub fn issue(key: &TokenKey, claims: &Claims) -> String {
    let mut header = Map::new();
    header.insert("alg".into(), Value::String("HS256".into()));
    header.insert("kid".into(), Value::String(key.kid().to_owned()));
    header.insert("typ".into(), Value::String("JWT".into()));
    let mut token = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
    token.push('.');
    // Neither serializing these claims (strings and integers) nor keying HMAC (any key length
    // is valid) can fail; if either ever did, the token would be one that no verifier accepts.
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).unwrap_or_default(), &mut token);
    let tag = key
        .mac(token.as_bytes())
        .map(|mac| mac.finalize().into_bytes());
    token.push('.');
    if let Ok(tag) = tag {
        URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    }
    token
}

/// A bearer token held by a client: zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// Wraps `token` (as issued by the application's backend).
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    /// The token, to put in the `hello` frame.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}
