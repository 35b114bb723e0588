//! The single error type of `sealwire-core`.
//!
//! Failures that a network attacker can trigger on purpose are deliberately coarse: every
//! authentication failure of an envelope is [`Error::DecryptFailed`], whatever the reason
//! (wrong key, flipped bit, forged header), so that error values are not an oracle. Rejections
//! decided from public header fields alone (replay, too far ahead, unknown epoch) are precise,
//! because the header is public anyway and the caller needs them to reason about delivery.
//! Local misuse (bad configuration, state that does not parse) gets precise variants.

use crate::session::SessionId;

/// Everything that can go wrong in `sealwire-core`. Each variant says what to do about it.
///
/// A failed operation never leaves a [`Session`](crate::Session) or an
/// [`Account`](crate::Account) half-updated: on any `Err` the state is exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed envelope, bundle, identity or key. Drop them; they were
    /// not produced by a conforming implementation (or were corrupted in transit).
    #[error("malformed {0}: drop it, it is not valid sealwire data")]
    Malformed(&'static str),

    /// The envelope uses a protocol version this implementation does not speak. Upgrade, or ask
    /// the sender to use version 1.
    #[error("unsupported protocol version {0}: upgrade or ask the sender to use version 1")]
    UnsupportedVersion(u8),

    /// The envelope uses a cipher suite this implementation does not support.
    #[error("unsupported cipher suite {0}: only suite 1 is defined in protocol version 1")]
    UnsupportedSuite(u8),

    /// The input is larger than the protocol allows; it was rejected before any processing.
    #[error("{what} is {len} bytes, more than the maximum of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum allowed.
        max: usize,
    },

    /// The envelope authenticates with no key this session holds: it was tampered with,
    /// truncated, forged, or sealed for another session. Drop it; the session is unchanged.
    #[error("decryption failed: the envelope is not authentic for this session; drop it")]
    DecryptFailed,

    /// This envelope (or the session setup it carries) was already accepted once. Drop it: it is
    /// a duplicate or a replay. If you still hold the session it set up, open it with that session.
    #[error("replay: this envelope was already accepted; drop it")]
    Replay,

    /// The key for this message is no longer held: either the message was already accepted, or
    /// its key was discarded by the out-of-order bounds or after the grace period. Drop it.
    #[error("stale message: its key was used or discarded (bounds or grace period); drop it")]
    StaleMessage,

    /// The message belongs to an epoch this session does not (or no longer) holds keys for.
    #[error("unknown epoch {epoch}: its keys were never held or were retired; drop it")]
    UnknownEpoch {
        /// The epoch named by the header (or its parent, when the parent is the unknown one).
        epoch: u32,
    },

    /// The message counter is further ahead of the next expected message than the configured
    /// bound: accepting it would mean deriving and storing too many skipped keys.
    #[error("message is {jump} messages ahead of the next expected one (maximum {max}); drop it")]
    TooFarAhead {
        /// How many message keys would have to be skipped.
        jump: u64,
        /// The configured maximum forward jump.
        max: u32,
    },

    /// The envelope was sealed for a different session. Route it by its session id
    /// ([`EnvelopeHeader::session_id`](crate::EnvelopeHeader::session_id)).
    #[error("envelope belongs to session {0}, not to this one: route it by session id")]
    WrongSession(SessionId),

    /// The envelope kind is not valid here (for example an initial message given to the
    /// session that sent it, or a follow-up message given to [`Account::accept`](crate::Account::accept)).
    #[error("unexpected envelope kind: {0}")]
    UnexpectedKind(&'static str),

    /// A signature (identity binding, signed prekey) did not verify. Do not use the key or
    /// bundle: it was forged or corrupted, possibly by the server that handed it out.
    #[error("invalid signature on {0}: do not use it (forged or corrupted)")]
    InvalidSignature(&'static str),

    /// The signed prekey named by an initial message is not held (never existed, or retired
    /// past its grace period). The sender must fetch a fresh bundle and start a new session.
    #[error("unknown signed prekey {0}: the sender must fetch a fresh bundle")]
    UnknownSignedPrekey(u32),

    /// The one-time prekey named by an initial message is unknown or was already used. The
    /// sender must fetch a fresh bundle and start a new session.
    #[error("unknown or already used one-time prekey {0}: the sender must fetch a fresh bundle")]
    UnknownOneTimePrekey(u32),

    /// The bundle's signed prekey is older than the policy allows, or dated in the future.
    /// Fetch a fresh bundle; the owner should rotate its signed prekey.
    #[error(
        "signed prekey {id} is out of date (created {created_at}s, now {now}s): fetch a fresh bundle"
    )]
    StalePrekey {
        /// The prekey id.
        id: u32,
        /// Its signed creation time (Unix seconds).
        created_at: u64,
        /// The caller's `now` (Unix seconds).
        now: u64,
    },

    /// A Diffie-Hellman exchange produced the all-zero output (a low-order public key). The
    /// key is malicious or corrupted; do not use it.
    #[error(
        "weak public key: a Diffie-Hellman output was all zero; the key is malicious or corrupted"
    )]
    WeakKey,

    /// The plaintext is longer than an envelope can carry ([`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN)).
    /// Split it at the application layer.
    #[error("plaintext is {len} bytes, more than the maximum of {max}: split it")]
    PlaintextTooLarge {
        /// The plaintext length.
        len: usize,
        /// The maximum.
        max: usize,
    },

    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),

    /// The session can send no more messages (epoch or counter space exhausted). Start a new
    /// session.
    #[error("session exhausted: start a new session")]
    SessionExhausted,

    /// The account cannot accept more sessions under its current signed prekey (its replay
    /// cache is full). Rotate the signed prekey.
    #[error(
        "signed prekey {0} has set up the maximum number of sessions: rotate the signed prekey"
    )]
    PrekeyExhausted(u32),

    /// Serialized state could not be restored: it is corrupted, truncated or not sealwire
    /// state. Nothing was restored.
    #[error("invalid serialized state: {0}")]
    InvalidState(&'static str),

    /// A group envelope or control message belongs to another group. Route it by its group
    /// id ([`GroupEnvelopeHeader::group_id`](crate::GroupEnvelopeHeader::group_id),
    /// [`ControlMessage::group_id`](crate::ControlMessage::group_id)).
    #[error("belongs to another group: route it by group id")]
    WrongGroup,

    /// The group message or sender key names an epoch this member has not entered yet: the
    /// commit that starts it has not been processed. Keep it and retry after processing the
    /// pending control messages (commits travel separately and may arrive later).
    #[error(
        "group epoch {epoch} is ahead of this member's epoch {current}: keep it and retry after the commit"
    )]
    EpochAhead {
        /// The epoch named by the message.
        epoch: u32,
        /// This member's current epoch.
        current: u32,
    },

    /// No sender key from this sender is held for the message's epoch: its sender-key message
    /// (sent over the pairwise session before the group message) has not been processed. Keep
    /// the envelope and retry after processing the sender's pending pairwise messages.
    #[error(
        "no sender key from member {sender} for group epoch {epoch}: keep it and retry after the sender's pairwise messages"
    )]
    MissingSenderKey {
        /// The epoch named by the message.
        epoch: u32,
        /// The sender's index in that epoch's member list.
        sender: u32,
    },

    /// The sender, committer or signer is not a member of the group in the epoch concerned
    /// (never was, or was removed). The message or change is rejected; the group is unchanged.
    #[error("not a group member: {0}; rejected, the group is unchanged")]
    NotAMember(&'static str),

    /// A membership change was signed by a member without the admin role. Rejected by every
    /// member; the group is unchanged.
    #[error("not authorized: {0}; only admins change membership, the group is unchanged")]
    NotAuthorized(&'static str),

    /// A commit's changes are invalid against the group it applies to (for example adding an
    /// existing member, removing a non-member, or leaving no admin). Nothing was applied.
    #[error("invalid group change: {0}; nothing was applied")]
    InvalidChange(&'static str),

    /// A commit builds on an epoch state this member does not hold: either an earlier commit
    /// has not been processed yet (keep it and retry after the pending control messages), or it
    /// extends a branch that lost a conflict (drop it once newer commits have been applied).
    #[error(
        "commit for group epoch {epoch} builds on an unknown state: retry after pending commits, or drop it"
    )]
    UnknownParent {
        /// The epoch the commit would start.
        epoch: u32,
    },

    /// The group message was sealed on a competing branch of the group's history: this member
    /// holds another state for that epoch (it applied a different commit). Keep it and retry
    /// after processing pending commits: if its branch wins the conflict, it opens; once its
    /// epoch is no longer held ([`Error::UnknownEpoch`]), drop it.
    #[error(
        "group message from a competing branch of epoch {epoch}: keep it and retry after pending commits"
    )]
    OtherBranch {
        /// The epoch named by the message.
        epoch: u32,
    },

    /// A sender key conflicts with the one already held for the same member and epoch (a
    /// member cannot change its sender key within an epoch). Rejected; the group is unchanged.
    #[error("conflicting sender key for the same member and group epoch; rejected")]
    SenderKeyConflict,

    /// Serialized state has a format version this implementation cannot read.
    #[error("unsupported state format version {0}: upgrade sealwire-core")]
    UnsupportedStateVersion(u16),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
