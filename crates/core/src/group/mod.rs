//! Groups: sender-key epochs, signed group envelopes, roles and membership changes.
//!
//! A group is a member list (identities with roles), an id and an epoch. In each epoch every
//! member has its own sending chain, a *sender key*, which it hands to every other member over
//! their pairwise [`Session`](crate::Session)s the first time it sends in that epoch. Sending a
//! group message is then one envelope, whatever the group size; the relay fans it out.
//!
//! Every membership change is a *commit*, signed by an admin with its identity key and sent to
//! every member over the pairwise sessions (one pairwise message per member). A commit starts
//! a new epoch, in which every member draws a fresh sender key and hands it only to the new
//! member list: a removed member cannot read what a member sends once it has processed the
//! removal, and a new member cannot read what was sent before it joined. Any member may also
//! commit with no change, to rotate everyone's keys ([`Group::rotation_due`]).
//!
//! Two commits made at once on the same epoch are ordered by a rule every member applies
//! (an admin's first, then the more senior committer), so members converge on one history
//! instead of forking silently; `spec/groups.md` states the rule and its limits.
//!
//! This crate is sans-IO: [`Group`] returns the bytes to send and to whom, and the caller
//! carries them. Control messages ([`Group::receive`]) travel as pairwise plaintexts; the
//! caller must pass the authenticated pairwise peer as `from`. Group envelopes
//! ([`Group::open`]) travel through the relay.
//!
//! Envelopes that arrive together (say, what waited at the relay while a client was offline)
//! can be opened with [`Group::open_batch`]: the same results as [`Group::open`] on each in
//! turn, with their Ed25519 signatures verified by one batch equation, which is cheaper. A
//! batch that fails falls back to verifying the signatures one by one. The one difference is
//! documented there (and in `spec/groups.md` 8.5): the batch equation also accepts signatures
//! that only the sender's own signing key can craft, which gives a sender nothing it lacks.
//!
//! ```
//! use sealwire_core::{Change, Group, GroupConfig, IdentityKeyPair, MemberRole, Timestamp};
//!
//! # fn main() -> Result<(), sealwire_core::Error> {
//! let mut rng = rand::rng();
//! let now = Timestamp::from_unix_secs(1_780_000_000);
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let bob = IdentityKeyPair::generate(&mut rng);
//!
//! // Alice creates a group and adds Bob. The welcome goes to Bob over their pairwise session.
//! let mut alice_group = Group::create(&alice, GroupConfig::default(), &mut rng, now)?;
//! let commit = alice_group.commit(&alice, &[Change::Add(bob.public().clone(), MemberRole::Member)], now)?;
//! let welcome = commit.welcome.expect("Bob was added");
//! let mut bob_group = Group::join(bob.public(), alice.public(), &welcome, GroupConfig::default(), now)?;
//!
//! // Alice's first message in the epoch comes with her sender key, which Bob receives over
//! // the pairwise session before the group envelope.
//! let sealed = alice_group.seal(b"hello group", &mut rng, now)?;
//! let sender_key = sealed.sender_key.expect("first message of the epoch");
//! bob_group.receive(alice.public(), sender_key.message.expose_secret(), now)?;
//! let opened = bob_group.open(&sealed.envelope, now)?;
//! assert_eq!(opened.plaintext, b"hello group");
//! assert_eq!(&opened.sender, alice.public());
//! # Ok(())
//! # }
//! ```

pub(crate) mod batch;
pub(crate) mod chain;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod history;
pub(crate) mod message;
pub(crate) mod messaging;
pub(crate) mod persist;
pub(crate) mod roster;
pub(crate) mod sender_keys;
pub(crate) mod state;

pub use config::GroupConfig;
pub use control::{ControlKind, ControlMessage, GroupId, MAX_CONTROL_LEN};
pub use message::{GROUP_SIGNATURE_LEN, GroupEnvelopeHeader};
pub use roster::{Change, MAX_COMMIT_CHANGES, MAX_GROUP_MEMBERS, Member, MemberRole, Seniority};
pub use state::Group;

use crate::identity::PublicIdentity;
use crate::secret::SecretBytes;

/// What [`Group::commit`] produced: the commit for the existing members and, if members were
/// added, the welcome for the new ones. Send both over the pairwise sessions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommitOutput {
    /// The epoch the commit starts (this member is already in it).
    pub epoch: u32,
    /// The commit: a control message for every member of the previous epoch.
    pub commit: Vec<u8>,
    /// Who gets `commit`: every other member of the previous epoch, removed members included
    /// (so that they learn of their removal).
    pub commit_recipients: Vec<PublicIdentity>,
    /// The welcome, if the commit adds members.
    pub welcome: Option<Vec<u8>>,
    /// Who gets `welcome`: the added members.
    pub welcome_recipients: Vec<PublicIdentity>,
}

/// A sender key to hand to other members over the pairwise sessions, before the group
/// envelope it accompanies. The message is secret (it holds a chain key): seal it only with
/// pairwise sessions, never log it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SenderKeyMessage {
    /// Who must receive it: every other member of the epoch.
    pub recipients: Vec<PublicIdentity>,
    /// The control message, the same for every recipient.
    pub message: SecretBytes,
}

/// What [`Group::seal`] produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupSealed {
    /// Present on this member's first message of an epoch: deliver it to every recipient over
    /// the pairwise sessions before the envelope.
    pub sender_key: Option<SenderKeyMessage>,
    /// The group envelope, for the relay to fan out to every other member.
    pub envelope: Vec<u8>,
}

/// A group message that opened.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupOpened {
    /// The member who sent it (its signature verified).
    pub sender: PublicIdentity,
    /// The epoch it was sealed in.
    pub epoch: u32,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

impl core::fmt::Debug for GroupOpened {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupOpened")
            .field("sender", &self.sender)
            .field("epoch", &self.epoch)
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .finish()
    }
}

/// What [`Group::receive`] did with a control message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlOutcome {
    /// A commit was applied: the group is in a new epoch.
    EpochStarted {
        /// The new epoch.
        epoch: u32,
        /// Who committed it.
        committer: PublicIdentity,
        /// The changes (empty for a key rotation).
        changes: Vec<Change>,
    },
    /// A commit that conflicts with one already applied won the tie-break: the group switched
    /// to it, abandoning the epochs after its parent. Messages this member sealed in the
    /// abandoned epochs were not readable by members on the winning branch: resend them.
    ConflictResolved {
        /// The new epoch.
        epoch: u32,
        /// Who committed it.
        committer: PublicIdentity,
        /// The changes.
        changes: Vec<Change>,
        /// How many messages this member sealed in the abandoned epochs.
        abandoned_messages: u32,
    },
    /// The commit conflicts with one already applied and lost the tie-break: ignored. (Its
    /// committer will see the winner and switch.)
    LostConflict {
        /// The epoch both commits would start.
        epoch: u32,
    },
    /// A sender key was stored.
    SenderKeyAdded {
        /// Its epoch.
        epoch: u32,
        /// Whose it is.
        sender: PublicIdentity,
    },
    /// A sender key for an epoch this member has not entered (or a branch it does not follow)
    /// was kept aside until the commit arrives.
    SenderKeyPending {
        /// Its epoch.
        epoch: u32,
    },
    /// The message was already processed; nothing changed.
    Duplicate,
}
