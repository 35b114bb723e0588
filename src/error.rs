//! The facade crate's error type: the client, its local store and the command line.

use sealwire_transport::code::ErrorCode;

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong in the client, its local store or the `sealwire` command. Each variant says
/// what to do about it. Messages never contain key material, passphrases or message contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store key (passphrase, key file or environment variable) does not open this store.
    #[error("the store key does not open this store: wrong passphrase or key file")]
    WrongStoreKey,
    /// The local store failed its integrity checks (a record was altered or truncated).
    #[error("the local store is damaged: {0}; restore it from a backup")]
    StoreCorrupt(&'static str),
    /// The store was written by a newer (or unknown) format version.
    #[error(
        "the local store has format version {0}, which this version does not read; upgrade sealwire"
    )]
    UnsupportedStoreVersion(u32),
    /// Another process has the store open.
    #[error("the local store is in use by another sealwire process; close it first")]
    StoreInUse,
    /// `create` found a store already there.
    #[error("a store already exists at {0}; open it instead, or choose another directory")]
    StoreExists(String),
    /// `open` found no store.
    #[error("no store at {0}; create one first (`sealwire keygen`)")]
    NoStore(String),
    /// The embedded database failed (disk full, permissions, I/O error).
    #[error("local store error: {0}")]
    Storage(String),
    /// A store key could not be read or is malformed (the message says which and why).
    #[error("store key: {0}")]
    StoreKey(String),
    /// A key file is readable by other users.
    #[error("the key file {0} is readable by other users; run `chmod 600` on it")]
    KeyFilePermissions(String),
    /// No contact by this name.
    #[error("no contact named {0:?}; add it first (`sealwire contact add`)")]
    UnknownContact(String),
    /// A contact already exists under this name with a *different* identity key. This is what
    /// an impersonation looks like; it is also what a reinstall looks like. Compare safety
    /// numbers out of band before replacing the contact.
    #[error(
        "IDENTITY KEY CHANGED for contact {name:?}: stored safety number {stored}, new one {new}. \
         Someone may be impersonating them. Verify the new safety number with them in person \
         before replacing the contact."
    )]
    IdentityChanged {
        /// The contact.
        name: String,
        /// The safety number with the stored identity.
        stored: String,
        /// The safety number with the new identity.
        new: String,
    },
    /// No group with this id in the local store.
    #[error("no such group {0}")]
    UnknownGroup(String),
    /// The contact's address (mailbox) has no prekeys on the relay: it never connected there.
    #[error(
        "{0} has no prekeys on this relay: they must connect to it once before you can write to them"
    )]
    NoBundle(String),
    /// The relay handed out a bundle for someone other than the requested mailbox, or one
    /// that does not verify. The relay is faulty or malicious.
    #[error("the relay sent an invalid prekey bundle for {contact}: {reason}")]
    BadBundle {
        /// Whose bundle.
        contact: String,
        /// What was wrong.
        reason: String,
    },
    /// A text argument (identity, mailbox, group id, URL) does not parse.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was being parsed.
        what: &'static str,
        /// Why it does not parse.
        reason: String,
    },
    /// A delivery's sender, as the relay names it, is not who the envelope says sealed it: a
    /// message replayed by another account, or a faulty relay. Dropped.
    #[error("the relay's sender does not match the message's authenticated sender")]
    SenderMismatch,
    /// A message for a pairwise session this client does not have (its state was lost, or
    /// the session was retired long ago). Dropped; the sender is not told (see
    /// `spec/client.md`, limits of the reference client).
    #[error("a message for a session this client does not have")]
    NoSession,
    /// A group message or control message waited too long for what it needs (a sender key,
    /// a commit or a welcome that never came) and was given up.
    #[error("a group message waited too long for its keys and was dropped")]
    ParkedTooLong,
    /// A decrypted message whose content does not decode (a newer or broken client).
    #[error("unreadable message content: {0}")]
    Content(#[from] crate::client::ContentError),
    /// The relay refused a request.
    #[error("the relay refused the request: {0}")]
    Refused(ErrorCode),
    /// The client has stopped (closed, or stopped for good; see the last event).
    #[error("the client has stopped")]
    Stopped,
    /// The relay could not be reached, or refused the connection (the `sealwire` command
    /// reports a failed first attempt instead of retrying forever).
    #[error("cannot reach the relay at {url}: {reason}")]
    RelayUnreachable {
        /// The relay URL.
        url: String,
        /// Why (the transport's error).
        reason: String,
    },
    /// The relay's TLS certificate is not trusted (unknown issuer, name mismatch, expired, or
    /// not the pinned one). Retrying does not help.
    #[error(
        "the relay at {url} presented a certificate that is not trusted ({reason}). For a relay \
         started with `sealwire relay --dev`, pass --pin with the certificate-sha256 it prints; \
         otherwise pass --ca with the CA certificate that issued the relay's certificate, and \
         check that the URL's host is a name the certificate is for"
    )]
    UntrustedRelay {
        /// The relay URL.
        url: String,
        /// What the certificate check said.
        reason: String,
    },
    /// A message was given up: the relay refused it, or the recipient cannot be written to.
    #[error("not delivered to {to}: {reason}")]
    NotDelivered {
        /// The recipient (contact name or group label).
        to: String,
        /// Why.
        reason: String,
    },
    /// Something did not finish in time (the message says what, and what happens next).
    #[error("timed out: {0}")]
    TimedOut(String),
    /// A protocol error from `sealwire-core`.
    #[error(transparent)]
    Protocol(#[from] sealwire_core::Error),
    /// A transport error (connection, TLS, authentication).
    #[error(transparent)]
    Transport(#[from] sealwire_transport::Error),
    /// A relay error (the `relay` subcommand).
    #[error(transparent)]
    Relay(#[from] sealwire_relay::Error),
    /// File I/O outside the store.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
