//! The relay's command line, shared by the `sealwire-relay` binary and the `sealwire relay`
//! subcommand: the options ([`RelayArgs`]) and what the binary does with them ([`run`]).
//!
//! A parent command embeds [`RelayArgs`] (as a subcommand's arguments, or with
//! `#[command(flatten)]`) and awaits [`run`] inside a multi-threaded Tokio runtime:
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//! use sealwire_relay::cli::{self, RelayArgs};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Run a relay.
//!     Relay(RelayArgs),
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     match Cli::parse().command {
//!         Command::Relay(args) => cli::run(args).await,
//!     }
//! }
//! ```
//!
//! [`run`] installs the relay's logging itself ([`init_logging`]); a parent that installed a
//! global `tracing` subscriber before keeps it (the relay then logs through it, and
//! `--log-format` and `log.level` have no effect). The parts of [`run`] are public for a
//! parent that wants to do one of them differently: [`RelayArgs::config`], [`init_logging`],
//! [`serve`].
//!
//! What the relay prints goes to stdout, one line each, for people and scripts:
//! `listening: wss://ADDR/`, `metrics: http://ADDR/metrics` (if the admin listener is on) and,
//! with `--dev`, `certificate-sha256: HEX`. Logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use sealwire_transport::tls::{DevCertificate, fingerprint_hex};

use crate::config::{Config, LogFormat, StoreKind};
use crate::error::Result;
use crate::server::{Certificate, RelayServer};

/// The prefix of the messages [`run`] prints to stderr.
const NAME: &str = "sealwire-relay";

// This text is clap's help too: a subcommand taking these arguments shows it unless it has a
// doc comment of its own (a flattening parent's doc comment takes precedence).
/// Run a sealwire relay, which routes and stores end-to-end encrypted envelopes it cannot read.
///
/// Settings come from, highest first: these flags; environment variables named
/// SEALWIRE_RELAY__<SECTION>__<KEY> (e.g. SEALWIRE_RELAY__QUOTAS__MAX_MESSAGES=5000); the
/// TOML file given with --config; built-in defaults. Every setting and its default is listed
/// in crates/relay/README.md.
///
/// Signals: SIGTERM or SIGINT shut down gracefully (no accepted message is lost); SIGHUP
/// reloads the TLS certificate and key if the files changed (they are also checked every
/// tls.reload_interval_secs).
#[allow(rustdoc::invalid_html_tags)] // `<SECTION>`: plain text in --help, not markup
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RelayArgs {
    /// TOML configuration file.
    #[arg(short, long, env = "SEALWIRE_RELAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Development mode: a fresh self-signed certificate for localhost and 127.0.0.1 (its
    /// SHA-256 fingerprint is printed for clients to pin), listening on 127.0.0.1:8443 unless
    /// --listen says otherwise. Never for production.
    #[arg(long)]
    pub dev: bool,

    /// Address of the WSS listener [default: 0.0.0.0:8443; with --dev 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the admin listener (/metrics, /healthz, /readyz) [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Directory of the durable store [default: ./sealwire-relay-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// A name clients use in the relay URL (repeat for several).
    #[arg(long = "server-name", value_name = "NAME")]
    pub server_names: Vec<String>,

    /// PEM certificate chain (e.g. Let's Encrypt fullchain.pem).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (e.g. Let's Encrypt privkey.pem).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Store: redb (durable, default) or memory (lost on restart).
    #[arg(long, value_enum)]
    pub store: Option<StoreKind>,

    /// Log format [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl RelayArgs {
    /// The effective configuration: built-in defaults, the `--config` file, the
    /// `SEALWIRE_RELAY__…` environment variables and these flags, validated (for development
    /// mode if `--dev`).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an unreadable or invalid file, environment
    /// variable or combination of settings.
    pub fn config(&self) -> Result<Config> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if self.dev && self.listen.is_none() && config.listen == Config::default().listen {
            config.listen = SocketAddr::from(([127, 0, 0, 1], 8443));
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(admin) = self.admin_listen {
            config.admin.listen = admin;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        if !self.server_names.is_empty() {
            config.server_names.clone_from(&self.server_names);
        }
        if let Some(cert) = &self.tls_cert {
            config.tls.cert = Some(cert.clone());
        }
        if let Some(key) = &self.tls_key {
            config.tls.key = Some(key.clone());
        }
        if let Some(store) = self.store {
            config.store = store;
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        config.validate(self.dev)?;
        Ok(config)
    }
}

/// Everything the `sealwire-relay` binary does: works out the configuration
/// ([`RelayArgs::config`]; an error is printed and exits with 2), prints it for
/// `--print-config`, installs the logging ([`init_logging`]), then runs the relay until
/// SIGTERM or SIGINT ([`serve`]; an error is logged, printed and exits with 1).
///
/// Call it inside a multi-threaded Tokio runtime. Error messages go to stderr, prefixed with
/// `sealwire-relay:`.
pub async fn run(args: RelayArgs) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        return match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{NAME}: cannot print the configuration: {error}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(&config);
    match serve(config, args.dev).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "relay failed");
            eprintln!("{NAME}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the relay's logging as the global `tracing` subscriber: to stderr, in
/// `config.log.format`, filtered by `RUST_LOG` or else `config.log.level`, with the WebSocket
/// library capped at `debug` whatever is asked (at `trace` it logs whole frames).
///
/// Returns `false`, changing nothing, if a global subscriber is already installed: a parent
/// binary's logging stays in place. [`run`] calls this; call it only when not using [`run`].
pub fn init_logging(config: &Config) -> bool {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(websocket_cap())
            .try_init(),
        LogFormat::Text => builder.finish().with(websocket_cap()).try_init(),
    };
    installed.is_ok()
}

/// A second filter, on top of the operator's: the WebSocket library never logs beyond `debug`,
/// whatever is asked (at `trace` it logs whole frames: payloads, `hello` with its token; the
/// relay never logs envelope content). An event must pass both filters, so this only ever
/// takes away: it never turns on what the operator's filter left off.
fn websocket_cap() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("tungstenite", LevelFilter::DEBUG)
        .with_target("tokio_tungstenite", LevelFilter::DEBUG)
}

/// Runs a relay with `config` until SIGTERM or SIGINT (Ctrl-C off Unix), then shuts it down
/// gracefully; SIGHUP reloads the TLS certificate files. With `dev`, the certificate is a fresh
/// self-signed one for `localhost`, `127.0.0.1` and `config.server_names`.
///
/// Prints to stdout `listening: wss://ADDR/`, then `metrics: http://ADDR/metrics` if the
/// admin listener is on, then with `dev` a warning line and `certificate-sha256: HEX`.
///
/// # Errors
/// Those of [`RelayServer::start`], and [`Error::Io`](crate::Error::Io) if the signal
/// handlers cannot be installed.
pub async fn serve(config: Config, dev: bool) -> Result<()> {
    let certificate = if dev {
        let mut names: Vec<&str> = vec!["localhost", "127.0.0.1"];
        names.extend(config.server_names.iter().map(String::as_str));
        let certificate = DevCertificate::generate(&names)?;
        let tls = certificate.server_tls()?;
        Certificate::Fixed(tls)
    } else {
        Certificate::Files
    };
    let relay = RelayServer::start(config, certificate).await?;
    // Stdout, one line each, for people and scripts.
    println!("listening: wss://{}/", relay.local_addr());
    if let Some(admin) = relay.admin_addr() {
        println!("metrics: http://{admin}/metrics");
    }
    if dev {
        let fingerprint = relay
            .certificate_fingerprint()
            .map(|f| fingerprint_hex(&f))
            .unwrap_or_default();
        println!("dev mode: self-signed certificate, never use in production");
        println!("certificate-sha256: {fingerprint}");
    }
    wait_for_shutdown(&relay).await?;
    relay.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_shutdown(relay: &RelayServer) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: checking the TLS certificate files");
                relay.reload_certificate();
            }
        }
    }
    tracing::info!("signal received: shutting down gracefully");
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_shutdown(_relay: &RelayServer) -> Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// A stand-in for a parent command.
    #[derive(Debug, Parser)]
    #[command(name = "test-relay")]
    struct TestCli {
        #[command(flatten)]
        args: RelayArgs,
    }

    fn parse(argv: &[&str]) -> RelayArgs {
        let argv = std::iter::once("test-relay").chain(argv.iter().copied());
        TestCli::try_parse_from(argv).expect("parses").args
    }

    /// Whether `filter` lets an event of `target` at `level` through.
    fn logs(filter: &str, target: &str, level: tracing::Level) -> bool {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(filter))
            .with(websocket_cap());
        tracing::subscriber::with_default(subscriber, || probe(target, level_index(level)))
    }

    fn level_index(level: tracing::Level) -> u8 {
        match level {
            tracing::Level::TRACE => 0,
            tracing::Level::DEBUG => 1,
            tracing::Level::INFO => 2,
            tracing::Level::WARN => 3,
            tracing::Level::ERROR => 4,
        }
    }

    /// `enabled!` needs a literal target: one arm per target the tests ask about.
    fn probe(target: &str, level: u8) -> bool {
        macro_rules! at {
            ($target:literal) => {
                match level {
                    0 => tracing::enabled!(target: $target, tracing::Level::TRACE),
                    1 => tracing::enabled!(target: $target, tracing::Level::DEBUG),
                    2 => tracing::enabled!(target: $target, tracing::Level::INFO),
                    3 => tracing::enabled!(target: $target, tracing::Level::WARN),
                    _ => tracing::enabled!(target: $target, tracing::Level::ERROR),
                }
            };
        }
        match target {
            "tungstenite::protocol" => at!("tungstenite::protocol"),
            "tokio_tungstenite" => at!("tokio_tungstenite"),
            _ => at!("sealwire_relay::relay"),
        }
    }

    #[test]
    fn the_websocket_library_is_capped_at_debug_and_never_louder_than_asked() {
        use tracing::Level;
        // At `warn` the library's debug lines (one per closing connection) stay off.
        assert!(!logs("warn", "tungstenite::protocol", Level::DEBUG));
        assert!(!logs("warn", "tokio_tungstenite", Level::INFO));
        assert!(logs("warn", "tungstenite::protocol", Level::WARN));
        // At `trace` it is capped at debug: frames (and tokens) are never logged.
        assert!(logs("trace", "sealwire_relay::relay", Level::TRACE));
        assert!(!logs("trace", "tungstenite::protocol", Level::TRACE));
        assert!(logs("trace", "tungstenite::protocol", Level::DEBUG));
        assert!(!logs(
            "tungstenite=trace,info",
            "tungstenite::protocol",
            Level::TRACE
        ));
        // Tracing the relay alone does not turn the library's debug lines on.
        assert!(!logs(
            "warn,sealwire_relay=trace",
            "tungstenite::protocol",
            Level::DEBUG
        ));
        assert!(logs(
            "warn,sealwire_relay=trace",
            "sealwire_relay::relay",
            Level::TRACE
        ));
        assert!(logs("info", "sealwire_relay::relay", Level::INFO));
        assert!(!logs("info", "sealwire_relay::relay", Level::DEBUG));
    }

    #[test]
    fn command_is_well_formed() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn parses_flags() {
        let args = parse(&["--dev", "--store", "memory", "--log-format", "json"]);
        assert!(args.dev && !args.print_config);
        assert_eq!(args.store, Some(StoreKind::Memory));
        assert_eq!(args.log_format, Some(LogFormat::Json));
        assert_eq!(args.listen, None);

        let args = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "[::1]:9999",
            "--data-dir",
            "/var/lib/relay",
            "--server-name",
            "relay.example",
            "--server-name",
            "other.example",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--print-config",
        ]);
        assert_eq!(args.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(args.admin_listen, Some("[::1]:9999".parse().unwrap()));
        assert_eq!(args.data_dir, Some(PathBuf::from("/var/lib/relay")));
        assert_eq!(args.server_names, ["relay.example", "other.example"]);
        assert_eq!(args.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(args.tls_key, Some(PathBuf::from("key.pem")));
        assert!(args.print_config && !args.dev);

        let args = parse(&["-c", "relay.toml"]);
        assert_eq!(args.config, Some(PathBuf::from("relay.toml")));
    }

    #[test]
    fn refuses_bad_values() {
        for argv in [
            &["--listen", "nowhere"][..],
            &["--store", "floppy"],
            &["--log-format", "xml"],
            &["--unknown"],
        ] {
            let argv = std::iter::once("test-relay").chain(argv.iter().copied());
            assert!(TestCli::try_parse_from(argv).is_err());
        }
    }

    #[test]
    fn flags_override_the_configuration() {
        let args = parse(&["--dev", "--store", "memory", "--data-dir", "relay-data"]);
        let config = args.config().expect("valid in development mode");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8443)));
        assert_eq!(config.store, StoreKind::Memory);
        assert_eq!(config.data_dir, PathBuf::from("relay-data"));

        let args = parse(&["--dev", "--listen", "127.0.0.1:0"]);
        let config = args.config().expect("valid in development mode");
        assert_eq!(config.listen.port(), 0);
    }
}
