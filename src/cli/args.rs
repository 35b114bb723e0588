//! The command line: every subcommand and option, for clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sealwire_relay::cli::RelayArgs;

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other error
  2  bad arguments or input
  3  no store yet (run `sealwire keygen`)
  4  wrong passphrase or store key, unreadable or unsafe key file
  5  unknown contact
  6  unknown group
  7  a contact's identity key changed (refused without --replace)
  8  the relay cannot be reached
  9  the relay's certificate is not trusted (--pin, --ca)
  10 a message was not delivered
  11 timed out waiting for the relay
  12 keygen: a store already exists
  13 the store is in use by another sealwire process";

/// sealwire: end-to-end encrypted messaging through a relay that cannot read it.
///
/// Your identity, contacts, sessions and messages live in an encrypted store (--home). The
/// store key comes from, first found: --key-file (or SEALWIRE_KEY_FILE), the environment
/// variable SEALWIRE_STORE_KEY (64 hex digits), the environment variable SEALWIRE_PASSPHRASE,
/// else a passphrase asked on the terminal.
///
/// Quick start: `sealwire relay --dev` in one terminal; then `sealwire keygen`, swap identities
/// with `sealwire contact add`, and `sealwire chat NAME --relay URL --pin SHA256`.
#[derive(Debug, Parser)]
#[command(name = "sealwire", version, about, long_about, after_long_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options of every subcommand except `relay`.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// Directory of the encrypted store [default: $HOME/.sealwire].
    #[arg(long, global = true, env = "SEALWIRE_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,

    /// File holding the store key: 64 hex digits (or 32 raw bytes), mode 0600.
    #[arg(long, global = true, env = "SEALWIRE_KEY_FILE", value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the encrypted store and a new identity.
    Keygen(KeygenArgs),
    /// Print your identity (to give to your contacts) and your mailbox.
    Id,
    /// Add, list, verify and remove contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Send one message and wait until the relay has accepted it.
    Send(SendArgs),
    /// Print the messages waiting for you, one line each, then exit.
    Recv(RecvArgs),
    /// List groups, create them, add and remove members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Talk interactively: lines you type are sent, messages are shown as they arrive.
    Chat(ChatArgs),
    Relay(RelayArgs),
}

/// `keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Write a fresh random store key to this new file (mode 0600) and encrypt the store with
    /// it, instead of a passphrase. Keep the file: without it the store cannot be opened.
    #[arg(long, value_name = "PATH")]
    pub(crate) new_key_file: Option<PathBuf>,
}

/// `contact …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContactCommand {
    /// Add a contact under a name of your choice.
    Add {
        /// The local name (letters, digits, '-', '_', '.').
        name: String,
        /// Their identity: the hex after `identity:` in their `sealwire id`.
        identity: String,
        /// Replace the identity of an existing contact (after comparing the new safety number
        /// with them in person). The contact is no longer marked verified.
        #[arg(long)]
        replace: bool,
    },
    /// List contacts: name, verified or not, safety number.
    List,
    /// Mark a contact verified after comparing safety numbers in person.
    Verify {
        /// The contact.
        name: String,
        /// Mark them not verified instead.
        #[arg(long)]
        undo: bool,
    },
    /// Remove a contact.
    Remove {
        /// The contact.
        name: String,
    },
    /// Show the safety number to compare with a contact.
    Safety {
        /// The contact.
        name: String,
    },
}

/// How to reach the relay.
#[derive(Debug, Clone, Args)]
pub(crate) struct RelayOpts {
    /// The relay's URL, wss://HOST:PORT/ (for `sealwire relay --dev`: its `listening:` line).
    #[arg(long, env = "SEALWIRE_RELAY", value_name = "URL")]
    pub(crate) relay: Option<String>,

    /// Trust exactly the relay certificate with this SHA-256 fingerprint (the
    /// `certificate-sha256:` line printed by `sealwire relay --dev`).
    #[arg(long, env = "SEALWIRE_PIN", value_name = "SHA256HEX")]
    pub(crate) pin: Option<String>,

    /// Trust the CA certificate(s) in this PEM file instead of the built-in (webpki) roots.
    #[arg(long, env = "SEALWIRE_CA", value_name = "PEM")]
    pub(crate) ca: Option<PathBuf>,

    /// Give up after this many seconds (connecting, and waiting for the relay to accept what
    /// was sent).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) timeout: u64,
}

/// `send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Send to this group (its label or id) instead of a contact; then the only argument is
    /// the message.
    #[arg(long, value_name = "LABEL_OR_ID")]
    pub(crate) group: Option<String>,

    /// The contact to write to (omit with --group).
    #[arg(value_name = "TO")]
    pub(crate) to: Option<String>,

    /// The message [default: standard input, without its final newline].
    #[arg(value_name = "MESSAGE")]
    pub(crate) message: Option<String>,

    #[command(flatten)]
    pub(crate) relay: RelayOpts,
}

/// `recv`.
#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// Exit once nothing arrived for this many seconds after connecting.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub(crate) wait: u64,

    #[command(flatten)]
    pub(crate) relay: RelayOpts,
}

/// `group …`.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// List your groups and their members.
    List,
    /// Create a group with you as its admin.
    Create {
        /// A label of your choice (other members see the group's id).
        label: String,
        /// Contacts to add.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
        #[command(flatten)]
        relay: RelayOpts,
    },
    /// Add contacts to a group you administer.
    Add {
        /// The group's label or id.
        group: String,
        /// Contacts to add.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
        #[command(flatten)]
        relay: RelayOpts,
    },
    /// Remove members from a group you administer.
    Remove {
        /// The group's label or id.
        group: String,
        /// Contacts to remove.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
        #[command(flatten)]
        relay: RelayOpts,
    },
}

/// `chat`.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The contact to talk to (change with /to NAME).
    #[arg(value_name = "NAME", conflicts_with = "group")]
    pub(crate) name: Option<String>,

    /// Talk in this group (its label or id) instead.
    #[arg(long, value_name = "LABEL")]
    pub(crate) group: Option<String>,

    #[command(flatten)]
    pub(crate) relay: RelayOpts,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }
}
