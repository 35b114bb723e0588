//! The `sealwire` command, apart from `relay`: dispatch, logging, and how errors become a
//! message on stderr and an exit code.
//!
//! Exit codes (also listed by `sealwire --help`):
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | any other error (storage, protocol, I/O) |
//! | 2    | usage: bad arguments or input (from clap too) |
//! | 3    | no store at --home yet (`sealwire keygen`) |
//! | 4    | the store key: wrong passphrase or key, unreadable or unsafe key file |
//! | 5    | unknown contact |
//! | 6    | unknown group |
//! | 7    | a contact's identity key changed (refused without --replace) |
//! | 8    | the relay cannot be reached (or refused the connection) |
//! | 9    | the relay's certificate is not trusted (--pin / --ca) |
//! | 10   | a message was not delivered (refused, recipient without prekeys) |
//! | 11   | timed out waiting for the relay to accept what was sent |
//! | 12   | `keygen`: a store already exists |
//! | 13   | the store is in use by another sealwire process |

pub(crate) mod args;
mod chat;
mod connect;
mod output;
mod profile;
mod script;

use std::process::ExitCode;

use sealwire::{Error, Result};

use self::args::{Command, Global};

/// Exit codes; see the module documentation.
pub(crate) mod exit {
    pub(crate) const OTHER: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const NO_STORE: u8 = 3;
    pub(crate) const STORE_KEY: u8 = 4;
    pub(crate) const UNKNOWN_CONTACT: u8 = 5;
    pub(crate) const UNKNOWN_GROUP: u8 = 6;
    pub(crate) const IDENTITY_CHANGED: u8 = 7;
    pub(crate) const UNREACHABLE: u8 = 8;
    pub(crate) const UNTRUSTED: u8 = 9;
    pub(crate) const NOT_DELIVERED: u8 = 10;
    pub(crate) const TIMED_OUT: u8 = 11;
    pub(crate) const STORE_EXISTS: u8 = 12;
    pub(crate) const STORE_IN_USE: u8 = 13;
}

/// Runs a subcommand other than `relay`, printing an error as `sealwire: …` on stderr.
pub(crate) async fn run(global: Global, command: Command) -> ExitCode {
    init_logging();
    match dispatch(&global, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::warn(&format!("sealwire: {error}"));
            ExitCode::from(exit_code(&error))
        }
    }
}

async fn dispatch(global: &Global, command: Command) -> Result<()> {
    match command {
        Command::Keygen(args) => profile::keygen(global, &args),
        Command::Id => profile::print_id(&profile::open(global)?),
        Command::Contact(command) => profile::contact(global, &command),
        Command::Send(args) => script::send(global, args).await,
        Command::Recv(args) => script::recv(global, args).await,
        Command::Group(command) => script::group(global, command).await,
        Command::Chat(args) => chat::run(global, args).await,
        Command::Relay(_) => Err(Error::InvalidInput {
            what: "command",
            reason: "the relay runs through sealwire_relay::cli::run".into(),
        }),
    }
}

/// Logs to stderr: `RUST_LOG`, else warnings and errors only (without the transport's
/// "stopped" warning, which the error message printed on exit repeats).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,sealwire_transport::client::driver=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The exit code for an error.
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::InvalidInput { .. } => exit::USAGE,
        Error::NoStore(_) => exit::NO_STORE,
        Error::WrongStoreKey | Error::StoreKey(_) | Error::KeyFilePermissions(_) => exit::STORE_KEY,
        Error::UnknownContact(_) => exit::UNKNOWN_CONTACT,
        Error::UnknownGroup(_) => exit::UNKNOWN_GROUP,
        Error::IdentityChanged { .. } => exit::IDENTITY_CHANGED,
        Error::RelayUnreachable { .. } => exit::UNREACHABLE,
        Error::UntrustedRelay { .. } => exit::UNTRUSTED,
        Error::NotDelivered { .. } | Error::NoBundle(_) | Error::Refused(_) => exit::NOT_DELIVERED,
        Error::TimedOut(_) => exit::TIMED_OUT,
        Error::StoreExists(_) => exit::STORE_EXISTS,
        Error::StoreInUse => exit::STORE_IN_USE,
        _ => exit::OTHER,
    }
}
