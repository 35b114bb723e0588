//! The `sealwire` command: keys, contacts, an interactive chat, scripted send and receive,
//! and the relay.
//!
//! ```text
//! sealwire relay --dev                 # a relay with a self-signed certificate
//! sealwire --home alice keygen         # a new identity in ./alice, encrypted at rest
//! sealwire --home alice chat bob       # talk
//! ```
//!
//! Run `sealwire --help` for everything.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { global, command } = Cli::parse();
    match command {
        // The relay installs its own logging.
        Command::Relay(args) => sealwire_relay::cli::run(args).await,
        command => cli::run(global, command).await,
    }
}
