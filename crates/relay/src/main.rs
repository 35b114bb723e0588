//! `sealwire-relay`: the blind store-and-forward relay for sealwire.
//!
//! ```text
//! sealwire-relay --dev                      # try it: self-signed certificate, ./sealwire-relay-data
//! sealwire-relay --config /etc/sealwire/relay.toml
//! ```
//!
//! See `crates/relay/README.md` (the operator's guide) and `sealwire-relay --help`. The command
//! line itself is [`sealwire_relay::cli`], shared with `sealwire relay`.

use std::process::ExitCode;

use clap::Parser;
use sealwire_relay::cli::{self, RelayArgs};

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
    #[command(flatten)]
    args: RelayArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::run(Cli::parse().args).await
}
