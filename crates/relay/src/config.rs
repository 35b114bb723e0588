//! The relay's configuration: a TOML file, environment overrides, defaults for everything.
//!
//! Precedence, highest first: command-line flags (the binary's), environment variables,
//! the file, the defaults below. Any setting can come from the environment as
//! `SEALWIRE_RELAY__<SECTION>__<KEY>` (double underscores separate the path; names are case
//! insensitive), for example `SEALWIRE_RELAY__QUOTAS__MAX_MESSAGES=5000` or
//! `SEALWIRE_RELAY__LISTEN=0.0.0.0:8443`. A value is read as TOML (`5000`, `true`,
//! `["a", "b"]`) and, if it does not parse as TOML, as a string.
//!
//! ```toml
//! listen = "0.0.0.0:443"
//! server_names = ["relay.example.com"]
//! data_dir = "/var/lib/sealwire-relay"
//!
//! [tls]
//! cert = "/etc/letsencrypt/live/relay.example.com/fullchain.pem"
//! key = "/etc/letsencrypt/live/relay.example.com/privkey.pem"
//!
//! [admin]
//! listen = "127.0.0.1:9090"
//! ```
//!
//! Every section and key is documented on its struct below; unknown keys are errors (a typo
//! must not silently leave a limit at its default).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ratelimit::RateLimits;
use crate::store::Quotas;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SEALWIRE_RELAY__";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The WSS listener (default `0.0.0.0:8443`).
    pub listen: SocketAddr,
    /// The names clients put in their URLs (they sign one in `hello`). Required outside
    /// `--dev`.
    pub server_names: Vec<String>,
    /// The store's directory (default `./sealwire-relay-data`).
    pub data_dir: PathBuf,
    /// `redb` (durable, the default) or `memory` (lost on restart: tests and benchmarks).
    pub store: StoreKind,
    /// Days a stored message is kept when its recipient never acknowledges it (default 30).
    pub retention_days: u32,
    /// TLS certificate and key.
    pub tls: TlsConfig,
    /// Bearer tokens (optional: without this section, no token is required).
    pub tokens: Option<TokensConfig>,
    /// Browser origins.
    pub origins: OriginsConfig,
    /// The admin listener (metrics, health).
    pub admin: AdminConfig,
    /// Connection admission (before TLS).
    pub admission: AdmissionConfig,
    /// Timeouts, sizes and queues of each connection.
    pub limits: LimitsConfig,
    /// Rates: per connection, and bundle fetches also per client address.
    pub rates: RateLimits,
    /// Per-mailbox quotas.
    pub quotas: QuotasConfig,
    /// The prekey directory.
    pub prekeys: PrekeysConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            server_names: Vec::new(),
            data_dir: PathBuf::from("sealwire-relay-data"),
            store: StoreKind::Redb,
            retention_days: 30,
            tls: TlsConfig::default(),
            tokens: None,
            origins: OriginsConfig::default(),
            admin: AdminConfig::default(),
            admission: AdmissionConfig::default(),
            limits: LimitsConfig::default(),
            rates: RateLimits::default(),
            quotas: QuotasConfig::default(),
            prekeys: PrekeysConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded durable store (redb) in `data_dir`.
    Redb,
    /// In memory: everything is lost on restart.
    Memory,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (for Let's Encrypt: `fullchain.pem`).
    pub cert: Option<PathBuf>,
    /// PEM private key (`privkey.pem`). Keep it `chmod 600`.
    pub key: Option<PathBuf>,
    /// Optional PEM bundle of client CAs: makes client certificates mandatory (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Seconds between checks of the certificate and key files for a renewal (default 60);
    /// `SIGHUP` also triggers a check.
    pub reload_interval_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            client_ca: None,
            reload_interval_secs: 60,
        }
    }
}

/// `[tokens]`: require a bearer token (HS256 JWT) in every `hello`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Key ring file: one `<kid> <base64 secret>` per line, `chmod 600`.
    pub keys_file: PathBuf,
    /// Required `aud` claim, if any.
    #[serde(default)]
    pub audience: Option<String>,
    /// Required `iss` claim, if any.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 60).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    60
}

/// `[origins]`: which web pages may open a WebSocket to the relay (cross-site WebSocket
/// hijacking defence). Non-browser clients send no `Origin`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginsConfig {
    /// Exact origins allowed, e.g. `["https://chat.example.com"]` (default none).
    pub allow: Vec<String>,
    /// Whether requests without an `Origin` header (native clients) are allowed (default
    /// true).
    pub allow_missing: bool,
}

impl Default for OriginsConfig {
    fn default() -> Self {
        OriginsConfig {
            allow: Vec::new(),
            allow_missing: true,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of `/metrics`, `/healthz` and `/readyz` (default `127.0.0.1:9090`). Keep it
    /// off the internet.
    pub listen: SocketAddr,
    /// Whether to run the admin listener at all (default true).
    pub enabled: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            enabled: true,
        }
    }
}

/// `[admission]`: checked when a TCP connection arrives, before any TLS work. A refused
/// connection is closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Open connections in total (default 10 000). Keep it below the process's file
    /// descriptor limit (`ulimit -n`).
    pub max_connections: usize,
    /// Open connections per IPv4 address or IPv6 /64 (default 64).
    pub max_connections_per_ip: usize,
    /// New connections per second per address, sustained (default 20).
    pub connection_rate_per_ip: u32,
    /// New connections per address in a burst (default 40).
    pub connection_burst_per_ip: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 10_000,
            max_connections_per_ip: 64,
            connection_rate_per_ip: 20,
            connection_burst_per_ip: 40,
        }
    }
}

/// `[limits]`: the transport's per-connection limits (see the relay protocol, 10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// TCP accept to finished TLS and WebSocket upgrade, seconds (default 10).
    pub handshake_timeout_secs: u64,
    /// Upgrade to a verified `hello`, seconds (default 10).
    pub auth_timeout_secs: u64,
    /// Largest WebSocket message and frame, bytes (default 98 304).
    pub max_message_size: usize,
    /// Largest envelope (`send` payload), bytes (default 71 680).
    pub max_payload: usize,
    /// Most recipients of one `send` (default 450).
    pub max_recipients: usize,
    /// Frames queued for one connection before it is closed as a slow consumer (default 256).
    pub outbound_queue: usize,
    /// Longest a write may block, seconds (default 10).
    pub write_timeout_secs: u64,
    /// Seconds between pings (default 20).
    pub ping_interval_secs: u64,
    /// Seconds a ping may stay unanswered (default 10).
    pub pong_timeout_secs: u64,
    /// Seconds without receiving anything before the connection is closed (default 60).
    pub idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = sealwire_transport::limits::Limits::default();
        LimitsConfig {
            handshake_timeout_secs: limits.handshake_timeout.as_secs(),
            auth_timeout_secs: limits.auth_timeout.as_secs(),
            max_message_size: limits.max_message_size,
            max_payload: limits.max_payload,
            max_recipients: limits.max_recipients,
            outbound_queue: limits.outbound_queue,
            write_timeout_secs: limits.write_timeout.as_secs(),
            ping_interval_secs: limits.ping_interval.as_secs(),
            pong_timeout_secs: limits.pong_timeout.as_secs(),
            idle_timeout_secs: limits.idle_timeout.as_secs(),
        }
    }
}

impl LimitsConfig {
    /// The transport's limits.
    pub fn to_limits(&self) -> sealwire_transport::limits::Limits {
        sealwire_transport::limits::Limits {
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
            auth_timeout: Duration::from_secs(self.auth_timeout_secs),
            max_message_size: self.max_message_size,
            max_frame_size: self.max_message_size,
            max_payload: self.max_payload,
            max_recipients: self.max_recipients,
            outbound_queue: self.outbound_queue,
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            ping_interval: Duration::from_secs(self.ping_interval_secs),
            pong_timeout: Duration::from_secs(self.pong_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            ..sealwire_transport::limits::Limits::default()
        }
    }
}

/// `[quotas]`: per mailbox. A `send` that would exceed a recipient's quota is refused with
/// error 5 `quota_exceeded` (retryable) and stored for no recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// Stored messages (default 10 000).
    pub max_messages: u64,
    /// Stored payload bytes (default 268 435 456: 256 MiB).
    pub max_bytes: u64,
    /// One-time prekeys in the pool (default 1 000).
    pub max_one_time_prekeys: u32,
    /// Stored payload bytes over all mailboxes (default 68 719 476 736: 64 GiB). Beyond it
    /// sends get error 8 `unavailable`. Keep it below the free space of `data_dir`.
    pub max_total_bytes: u64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        let quotas = Quotas::default();
        QuotasConfig {
            max_messages: quotas.max_messages,
            max_bytes: quotas.max_bytes,
            max_one_time_prekeys: quotas.max_one_time_prekeys,
            max_total_bytes: quotas.max_total_bytes,
        }
    }
}

impl QuotasConfig {
    /// The store's quotas.
    pub fn to_quotas(&self) -> Quotas {
        Quotas {
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
            max_one_time_prekeys: self.max_one_time_prekeys,
            max_total_bytes: self.max_total_bytes,
        }
    }
}

/// `[prekeys]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrekeysConfig {
    /// Below this many one-time prekeys the owner is told to upload more (default 10).
    pub low_water: u32,
}

impl Default for PrekeysConfig {
    fn default() -> Self {
        PrekeysConfig { low_water: 10 }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line).
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` (default) or `info,sealwire_transport=debug`.
    /// `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON objects, one per line.
    Json,
}

impl Config {
    /// Reads `path` (if given), applies the environment overrides in `env` (pass
    /// `std::env::vars()`), and validates.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, variable or setting that is wrong.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    Error::Config(format!("cannot read {}: {error}", path.display()))
                })?;
                text.parse::<toml::Table>()
                    .map_err(|error| Error::Config(format!("{}: {error}", path.display())))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        // Through text, so that an error shows the offending line (file or environment).
        let config: Config =
            toml::from_str(&table.to_string()).map_err(|error| Error::Config(error.to_string()))?;
        Ok(config)
    }

    /// Checks what can be checked without touching files. `dev` relaxes the need for a
    /// certificate and server names.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self, dev: bool) -> Result<()> {
        if !dev {
            if self.server_names.is_empty() {
                return Err(Error::Config(
                    "server_names: list the names clients use in their relay URL".into(),
                ));
            }
            if self.tls.cert.is_none() || self.tls.key.is_none() {
                return Err(Error::Config(
                    "tls.cert and tls.key are required (or run with --dev for a self-signed certificate)".into(),
                ));
            }
        }
        if self.retention_days == 0 {
            return Err(Error::Config("retention_days must be at least 1".into()));
        }
        if self.tls.reload_interval_secs == 0 {
            return Err(Error::Config(
                "tls.reload_interval_secs must be at least 1".into(),
            ));
        }
        let quotas = &self.quotas;
        if quotas.max_messages == 0
            || quotas.max_bytes == 0
            || quotas.max_one_time_prekeys == 0
            || quotas.max_total_bytes < quotas.max_bytes
        {
            return Err(Error::Config(
                "quotas: every quota must be positive, and max_total_bytes at least max_bytes"
                    .into(),
            ));
        }
        if quotas.max_bytes < self.limits.max_payload as u64 {
            return Err(Error::Config(
                "quotas.max_bytes must hold at least one message of limits.max_payload".into(),
            ));
        }
        let admission = &self.admission;
        if admission.max_connections == 0
            || admission.max_connections_per_ip == 0
            || admission.connection_rate_per_ip == 0
            || admission.connection_burst_per_ip == 0
        {
            return Err(Error::Config(
                "admission: every limit must be positive".into(),
            ));
        }
        self.rates.validate()?;
        if self.rates.byte_burst < self.limits.max_payload as f64 {
            return Err(Error::Config(
                "rates.byte_burst must be at least limits.max_payload (one full message)".into(),
            ));
        }
        if self.prekeys.low_water > quotas.max_one_time_prekeys {
            return Err(Error::Config(
                "prekeys.low_water must not exceed quotas.max_one_time_prekeys".into(),
            ));
        }
        self.limits
            .to_limits()
            .validate()
            .map_err(|error| Error::Config(format!("limits: {error}")))?;
        Ok(())
    }

    /// The retention time.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }
}

/// Applies `SEALWIRE_RELAY__A__B=value` overrides to `table`.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<()> {
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            return Err(Error::Config(format!(
                "{name}: empty key in the variable name"
            )));
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        let (last, parents) = keys
            .split_last()
            .ok_or_else(|| Error::Config(format!("{name}: no key")))?;
        let mut current = &mut *table;
        for key in parents {
            let entry = current
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry.as_table_mut().ok_or_else(|| {
                Error::Config(format!("{name}: `{key}` is a setting, not a section"))
            })?;
        }
        current.insert(last.clone(), parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load_without_a_file() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.store, StoreKind::Redb);
        assert_eq!(config.retention(), Duration::from_secs(30 * 86_400));
        config.validate(true).unwrap();
        // Outside dev mode, names and a certificate are required.
        assert!(config.validate(false).is_err());
    }

    #[test]
    fn a_file_and_environment_overrides_combine_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "server_names = [\"relay.example\"]\nretention_days = 7\n[quotas]\nmax_messages = 100\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&path),
            env(&[
                ("SEALWIRE_RELAY__QUOTAS__MAX_MESSAGES", "5000"),
                ("SEALWIRE_RELAY__LISTEN", "127.0.0.1:9443"),
                ("SEALWIRE_RELAY__ORIGINS__ALLOW", "[\"https://a.example\"]"),
                ("SEALWIRE_RELAY__LOG__FORMAT", "json"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.retention_days, 7);
        assert_eq!(config.quotas.max_messages, 5000);
        assert_eq!(config.listen, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(config.origins.allow, vec!["https://a.example".to_owned()]);
        assert_eq!(config.log.format, LogFormat::Json);
        config.validate(false).unwrap();
    }

    #[test]
    fn typos_and_bad_values_are_errors_that_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "[quotas]\nmax_mesages = 1\n").unwrap();
        let error = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("max_mesages"), "{error}");

        let error = Config::load(None, env(&[("SEALWIRE_RELAY__RETENTION_DAYS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("retention_days") || error.contains("invalid type"),
            "{error}"
        );

        let error = Config::load(None, env(&[("SEALWIRE_RELAY__LISTEN__X", "1")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen"), "{error}");

        let mut config = Config::default();
        config.quotas.max_bytes = 10;
        let error = config.validate(true).unwrap_err().to_string();
        assert!(error.contains("quotas.max_bytes"), "{error}");

        let mut config = Config::default();
        config.rates.byte_burst = 1024.0;
        let error = config.validate(true).unwrap_err().to_string();
        assert!(error.contains("rates.byte_burst"), "{error}");

        let mut config = Config::default();
        config.prekeys.low_water = 2_000;
        let error = config.validate(true).unwrap_err().to_string();
        assert!(error.contains("prekeys.low_water"), "{error}");

        let mut config = Config::default();
        config.limits.idle_timeout_secs = 5;
        assert!(
            config
                .validate(true)
                .unwrap_err()
                .to_string()
                .contains("limits")
        );

        let error = Config::load(None, env(&[("SEALWIRE_RELAY____X", "1")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("empty key"), "{error}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = Config::load(Some(Path::new("/nonexistent/relay.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/relay.toml"), "{error}");
    }
}
