//! The relay's one error type.

use sealwire_transport::code::ErrorCode;
use sealwire_transport::frame::MailboxId;

/// What a mailbox quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaKind {
    /// Stored messages per mailbox.
    Messages,
    /// Stored payload bytes per mailbox.
    Bytes,
    /// One-time prekeys in a mailbox's pool.
    OneTimePrekeys,
}

impl core::fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            QuotaKind::Messages => "messages",
            QuotaKind::Bytes => "bytes",
            QuotaKind::OneTimePrekeys => "one-time prekeys",
        })
    }
}

/// Everything that can go wrong in the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A recipient mailbox never authenticated at this relay. The sender should check the
    /// recipient's mailbox id (it is derived from the recipient's identity key).
    #[error("mailbox {0} is unknown to this relay: the recipient has never connected here")]
    UnknownMailbox(MailboxId),
    /// A recipient's mailbox is full. Retry later: the recipient frees space by connecting and
    /// acknowledging, and stored messages expire after the retention time.
    #[error("mailbox {mailbox} is over its {kind} quota; retry later")]
    QuotaExceeded {
        /// The full mailbox.
        mailbox: MailboxId,
        /// Which quota.
        kind: QuotaKind,
    },
    /// The store holds its configured maximum of bytes over all mailboxes
    /// (`quotas.max_total_bytes`). Clients get error 8 `unavailable` and retry later; operators
    /// should check disk space, retention and whether someone floods the relay.
    #[error("the store is full (quotas.max_total_bytes); retry later")]
    StoreFull,
    /// The storage engine failed (disk full, I/O error, corrupted file). The request was not
    /// applied; check the data directory and the logs.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The store was closed (the relay is shutting down).
    #[error("the store is closed")]
    StoreClosed,
    /// The configuration is invalid; the message names the setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An I/O error outside the store (binding a listener, reading a file).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The transport failed (TLS configuration, listener).
    #[error(transparent)]
    Transport(#[from] sealwire_transport::Error),
}

impl Error {
    /// The error code a client gets for a request that failed with this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::UnknownMailbox(_) => ErrorCode::UnknownMailbox,
            Error::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            _ => ErrorCode::Unavailable,
        }
    }
}

/// `Result` with the relay's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
