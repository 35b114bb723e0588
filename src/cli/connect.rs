//! Connecting to the relay: TLS trust from the options, the first connection, waiting until
//! what was sent is accepted, and closing.

use std::collections::VecDeque;
use std::time::Duration;

use sealwire::client::{Client, ClientOptions, Event, GroupInfo, Profile};
use sealwire::transport::client::{Backoff, ClientConfig};
use sealwire::transport::tls::{ClientTls, parse_fingerprint};
use sealwire::{Error, Result};
use tokio::time::{Instant, timeout, timeout_at};

use super::args::RelayOpts;

/// How long closing may take before the process exits anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How long each wait for `flush` lasts before the events are read again.
const FLUSH_SLICE: Duration = Duration::from_millis(100);

/// A running client and what it reported before the caller looked.
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) url: String,
    /// Events read while waiting for something else, oldest first.
    pub(crate) backlog: VecDeque<Event>,
}

/// The transport configuration from `--relay`, `--pin` and `--ca`.
fn client_config(opts: &RelayOpts) -> Result<ClientConfig> {
    let url = match opts.relay.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => url.to_owned(),
        _ => {
            return Err(Error::InvalidInput {
                what: "relay URL",
                reason: "none given: pass --relay wss://HOST:PORT/ or set SEALWIRE_RELAY (for \
                         `sealwire relay --dev`, the URL on its `listening:` line)"
                    .into(),
            });
        }
    };
    let mut builder = ClientTls::builder();
    let ca = opts.ca.as_ref().filter(|ca| !ca.as_os_str().is_empty());
    if let Some(ca) = ca {
        builder = builder.ca_file(ca).map_err(|e| Error::InvalidInput {
            what: "--ca",
            reason: e.to_string(),
        })?;
    }
    if let Some(pin) = opts.pin.as_deref().filter(|p| !p.trim().is_empty()) {
        let fingerprint = parse_fingerprint(pin).map_err(|e| Error::InvalidInput {
            what: "--pin",
            reason: e.to_string(),
        })?;
        builder = builder.pin_sha256(fingerprint);
        if ca.is_none() {
            // A pin alone: trust exactly that certificate (self-signed development relays).
            builder = builder.pin_only();
        }
    }
    let tls = builder.build().map_err(|e| Error::InvalidInput {
        what: "TLS settings",
        reason: e.to_string(),
    })?;
    let mut config = ClientConfig::new(url, tls);
    config.backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(10),
    };
    Ok(config)
}

/// Starts the client without waiting for the connection.
pub(crate) fn start(profile: Profile, opts: &RelayOpts) -> Result<Connection> {
    let config = client_config(opts)?;
    let url = config.url.clone();
    let client = Client::start(profile, ClientOptions::new(config)).map_err(|e| match e {
        Error::Transport(e) => Error::InvalidInput {
            what: "relay URL",
            reason: format!("{e} (expected wss://HOST:PORT/)"),
        },
        other => other,
    })?;
    Ok(Connection {
        client,
        url,
        backlog: VecDeque::new(),
    })
}

/// Starts the client and waits for its first connection: a failed first attempt is an error
/// (no retrying), and so is no connection by `deadline`.
pub(crate) async fn connect(
    profile: Profile,
    opts: &RelayOpts,
    deadline: Instant,
) -> Result<Connection> {
    let mut conn = start(profile, opts)?;
    loop {
        let event = match timeout_at(deadline, conn.client.next_event()).await {
            Ok(Some(event)) => event,
            Ok(None) => return Err(Error::Stopped),
            Err(_) => {
                let error = Error::RelayUnreachable {
                    url: conn.url.clone(),
                    reason: format!("no connection within {} s", opts.timeout),
                };
                conn.close().await;
                return Err(error);
            }
        };
        match event {
            Event::Connected => return Ok(conn),
            Event::Disconnected { error, .. } => {
                let error = transport_error(&conn.url, error);
                conn.close().await;
                return Err(error);
            }
            Event::Stopped(error) => return Err(stopped_error(&conn.url, error)),
            other => conn.backlog.push_back(other),
        }
    }
}

/// A connection failure, in words that say what to do.
pub(crate) fn transport_error(url: &str, error: sealwire::transport::Error) -> Error {
    use sealwire::transport::Error as T;
    match error {
        T::UntrustedCertificate(reason) => Error::UntrustedRelay {
            url: url.to_owned(),
            reason,
        },
        T::AuthFailed(_) | T::Closed { .. } => Error::RelayUnreachable {
            url: url.to_owned(),
            reason: format!(
                "{error}; the URL's host must be a name the relay serves (for `sealwire relay \
                 --dev`: 127.0.0.1 or localhost)"
            ),
        },
        error => Error::RelayUnreachable {
            url: url.to_owned(),
            reason: format!("{error}; check the URL and that the relay is running"),
        },
    }
}

/// Why the client stopped, in words that say what to do.
pub(crate) fn stopped_error(url: &str, error: Error) -> Error {
    match error {
        Error::Transport(error) => transport_error(url, error),
        other => other,
    }
}

impl Connection {
    /// The next event: the backlog first.
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        match self.backlog.pop_front() {
            Some(event) => Some(event),
            None => self.client.next_event().await,
        }
    }

    /// Waits until the relay accepted (or refused) everything sent so far, reading events
    /// meanwhile into the backlog (so that the client never waits on a full event queue).
    ///
    /// # Errors
    /// [`Error::TimedOut`] at `deadline`; why the client stopped.
    pub(crate) async fn flush(&mut self, deadline: Instant) -> Result<()> {
        loop {
            self.drain().await?;
            match timeout(FLUSH_SLICE, self.client.flush()).await {
                Ok(Ok(())) => return self.drain().await,
                Ok(Err(error)) => {
                    self.drain().await?;
                    return Err(error);
                }
                Err(_) if Instant::now() >= deadline => {
                    return Err(Error::TimedOut(
                        "the relay has not accepted everything sent yet; it stays queued and \
                         goes out the next time sealwire connects (send, recv or chat)"
                            .into(),
                    ));
                }
                Err(_) => {}
            }
        }
    }

    /// Moves the events ready now into the backlog; a stop is an error.
    async fn drain(&mut self) -> Result<()> {
        loop {
            match timeout(Duration::ZERO, self.client.next_event()).await {
                Ok(Some(Event::Stopped(error))) => return Err(stopped_error(&self.url, error)),
                Ok(Some(event)) => self.backlog.push_back(event),
                Ok(None) => return Err(Error::Stopped),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Stops the client, waiting a little for it to finish cleanly.
    pub(crate) async fn close(self) {
        let _ = timeout(CLOSE_WAIT, self.client.close()).await;
    }
}

/// Finds a group by its exact label, or by its id or a prefix of it (at least 4 digits).
///
/// # Errors
/// [`Error::UnknownGroup`]; [`Error::InvalidInput`] if several groups match.
pub(crate) fn find_group<'a>(groups: &'a [GroupInfo], query: &str) -> Result<&'a GroupInfo> {
    let by_label: Vec<&GroupInfo> = groups.iter().filter(|g| g.label == query).collect();
    let matches = if by_label.is_empty() && query.len() >= 4 {
        let query = query.to_ascii_lowercase();
        groups
            .iter()
            .filter(|g| g.id.to_string().starts_with(&query))
            .collect()
    } else {
        by_label
    };
    match matches.as_slice() {
        [group] => Ok(group),
        [] => Err(Error::UnknownGroup(format!(
            "{query:?} (`sealwire group list` shows your groups)"
        ))),
        several => Err(Error::InvalidInput {
            what: "group",
            reason: format!(
                "{query:?} matches {} groups; use the id ({})",
                several.len(),
                several
                    .iter()
                    .map(|g| g.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}
