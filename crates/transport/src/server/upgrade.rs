//! The HTTP upgrade: Origin allowlist (cross-site WebSocket hijacking) and subprotocol
//! negotiation, decided before any WebSocket frame is exchanged.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};

use crate::frame::SUBPROTOCOL;

/// Which browser origins may open a connection.
///
/// A browser attaches `Origin` to every WebSocket upgrade and lets any page open a WebSocket
/// to any host, carrying that host's cookies: without this check a malicious page could talk
/// to the relay as the user (cross-site WebSocket hijacking). sealwire authenticates with a
/// signature rather than cookies, so a hijacked socket cannot authenticate anyway; the check is
/// defence in depth and keeps foreign pages from using the relay's resources.
///
/// Origins are compared exactly (ASCII case-insensitively) as `scheme://host[:port]`. The
/// default allows no browser origin and allows clients that send none (native apps, servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    allow_missing: bool,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        OriginPolicy {
            allowed: Vec::new(),
            allow_missing: true,
        }
    }
}

impl OriginPolicy {
    /// Allows exactly these origins (for example `https://chat.example.com`), plus clients that
    /// send no `Origin`.
    pub fn allow<I, S>(origins: I) -> OriginPolicy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OriginPolicy {
            allowed: origins
                .into_iter()
                .map(|origin| origin.into().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            allow_missing: true,
        }
    }

    /// Whether a connection without an `Origin` header (a non-browser client) is allowed.
    pub fn allow_missing(mut self, allow: bool) -> OriginPolicy {
        self.allow_missing = allow;
        self
    }

    /// The allowed origins.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    /// Whether an upgrade with this `Origin` header value (or none) is allowed.
    pub fn permits(&self, origin: Option<&HeaderValue>) -> bool {
        match origin {
            None => self.allow_missing,
            Some(value) => match value.to_str() {
                Ok(origin) => self
                    .allowed
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin)),
                Err(_) => false,
            },
        }
    }
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpgradeRefusal {
    /// The Origin is not allowed (HTTP 403).
    Origin,
    /// The client did not offer the protocol's subprotocol (HTTP 400).
    Subprotocol,
}

impl UpgradeRefusal {
    /// The HTTP response that refuses the upgrade.
    pub(crate) fn response(self) -> ErrorResponse {
        match self {
            UpgradeRefusal::Origin => refuse(StatusCode::FORBIDDEN, "origin not allowed"),
            UpgradeRefusal::Subprotocol => refuse(
                StatusCode::BAD_REQUEST,
                "offer the WebSocket subprotocol sealwire.relay.v1",
            ),
        }
    }
}

/// Checks the upgrade request; on success returns the response with the subprotocol selected.
pub(crate) fn check(
    policy: &OriginPolicy,
    request: &Request,
    mut response: Response,
) -> Result<Response, UpgradeRefusal> {
    if !policy.permits(request.headers().get(header::ORIGIN)) {
        return Err(UpgradeRefusal::Origin);
    }
    let offered = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if !offered {
        return Err(UpgradeRefusal::Subprotocol);
    }
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

fn refuse(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_owned()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_missing_ones_follow_the_setting() {
        let policy = OriginPolicy::allow(["https://Chat.Example.com/"]);
        let ok = HeaderValue::from_static("https://chat.example.com");
        let evil = HeaderValue::from_static("https://chat.example.com.evil.net");
        let null = HeaderValue::from_static("null");
        assert!(policy.permits(Some(&ok)));
        assert!(!policy.permits(Some(&evil)));
        assert!(!policy.permits(Some(&null)));
        assert!(policy.permits(None));
        assert!(!policy.clone().allow_missing(false).permits(None));
    }
}
