//! `sealwire-relay`: the blind store-and-forward relay for sealwire.
//!
//! ```text
//! sealwire-relay --dev                      # try it: self-signed certificate, ./sealwire-relay-data
//! sealwire-relay --config /etc/sealwire/relay.toml
//! ```
//!
//! See `crates/relay/README.md` (the operator's guide) and `sealwire-relay --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sealwire_relay::config::{Config, LogFormat, StoreKind};
use sealwire_relay::server::{Certificate, RelayServer};
use sealwire_transport::tls::{DevCertificate, fingerprint_hex};

/// The sealwire relay: routes and stores end-to-end encrypted envelopes it cannot read.
///
/// Settings come from, highest first: these flags; environment variables named
/// SEALWIRE_RELAY__<SECTION>__<KEY> (e.g. SEALWIRE_RELAY__QUOTAS__MAX_MESSAGES=5000); the
/// TOML file given with --config; built-in defaults. Every setting and its default is listed
/// in crates/relay/README.md.
///
/// Signals: SIGTERM or SIGINT shut down gracefully (no accepted message is lost); SIGHUP
/// reloads the TLS certificate and key if the files changed (they are also checked every
/// tls.reload_interval_secs).
#[derive(Debug, Parser)]
#[command(name = "sealwire-relay", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(short, long, env = "SEALWIRE_RELAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Development mode: a fresh self-signed certificate for localhost and 127.0.0.1 (its
    /// SHA-256 fingerprint is printed for clients to pin), listening on 127.0.0.1:8443 unless
    /// --listen says otherwise. Never for production.
    #[arg(long)]
    dev: bool,

    /// Address of the WSS listener [default: 0.0.0.0:8443; with --dev 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Address of the admin listener (/metrics, /healthz, /readyz) [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,

    /// Directory of the durable store [default: ./sealwire-relay-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// A name clients use in the relay URL (repeat for several).
    #[arg(long = "server-name", value_name = "NAME")]
    server_names: Vec<String>,

    /// PEM certificate chain (e.g. Let's Encrypt fullchain.pem).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// PEM private key (e.g. Let's Encrypt privkey.pem).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Store: redb (durable, default) or memory (lost on restart).
    #[arg(long, value_enum)]
    store: Option<StoreKind>,

    /// Log format [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,

    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

impl Cli {
    fn config(&self) -> Result<Config, sealwire_relay::Error> {
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

fn init_logs(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Whatever the operator asks for: the WebSocket library logs whole frames (payloads,
    // `hello` with its token) at trace level, and the relay never logs envelope content.
    for quiet in ["tungstenite=debug", "tokio_tungstenite=debug"] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sealwire-relay: {error}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(error) => {
                eprintln!("sealwire-relay: cannot print the configuration: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    init_logs(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sealwire-relay: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, cli.dev)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "relay failed");
            eprintln!("sealwire-relay: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, dev: bool) -> Result<(), sealwire_relay::Error> {
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
async fn wait_for_shutdown(relay: &RelayServer) -> Result<(), sealwire_relay::Error> {
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
async fn wait_for_shutdown(_relay: &RelayServer) -> Result<(), sealwire_relay::Error> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
