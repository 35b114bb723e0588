//! The high-level client: contacts, 1:1 and group messages over a relay, with every piece of
//! state kept encrypted on disk.
//!
//! A [`Profile`] is a user's identity and everything the client remembers (sessions, groups,
//! contacts, messages not yet confirmed, sends not yet accepted), in a
//! [`LocalStore`](crate::store::LocalStore)
//! encrypted at rest. [`Client::start`] connects it to a relay and keeps it connected:
//!
//! - **Sessions by themselves.** The first message to a contact fetches their prekey bundle
//!   from the relay, checks it is theirs (their mailbox is a hash of their identity, and the
//!   bundle is signed) and starts a session; the peer's client creates its side from the
//!   first envelope. Prekeys are uploaded on first connection and refilled when the relay
//!   says they run low; the signed prekey rotates on schedule.
//! - **Nothing lost, nothing twice.** A received message is decrypted, stored in the inbox
//!   and recorded as seen in one transaction, and only then acknowledged to the relay: after
//!   a crash the relay delivers it again, and the client recognizes it. A sent message is
//!   sealed and stored in the outbox in one transaction before it is handed to the relay,
//!   and sent again with the same id after a restart until the relay accepts it (the relay
//!   stores it once). Messages stay in the inbox until the application
//!   [confirms](Client::confirm) them, so one shown to the user and not confirmed before a
//!   crash comes again as [`Event::Message`] with the same sequence number.
//! - **Groups.** [`Client::create_group`], [`Client::add_members`],
//!   [`Client::remove_members`] and [`Client::send_group`]. Control messages (welcomes,
//!   commits, sender keys) travel over the pairwise sessions; a group message is one envelope
//!   the relay fans out. A group message that arrives before the sender key or commit it
//!   needs is kept aside and opened when they arrive.
//! - **Trust.** Contacts are named by the user; an identity the user never added shows up as
//!   an unknown sender. A name can never silently change its identity: [`Error::IdentityChanged`].
//!
//! ```no_run
//! use sealwire::client::{Client, ClientOptions, Event, Profile};
//! use sealwire::store::{KdfParams, LocalStore, StoreKey};
//! use sealwire::transport::client::ClientConfig;
//! use sealwire::transport::tls::ClientTls;
//!
//! # async fn run() -> Result<(), sealwire::Error> {
//! let key = StoreKey::from_env("SEALWIRE_STORE_KEY")?;
//! let store = LocalStore::open(std::path::Path::new("alice"), &key)?;
//! let profile = Profile::open(store)?;
//! let tls = ClientTls::builder().webpki_roots().build()?;
//! let mut client = Client::start(profile, ClientOptions::new(ClientConfig::new("wss://relay.example/", tls)))?;
//! client.send("bob", b"hello Bob".to_vec()).await?;
//! while let Some(event) = client.next_event().await {
//!     if let Event::Message(message) = event {
//!         println!("{:?}: {}", message.contact, String::from_utf8_lossy(&message.body));
//!         client.confirm(message.seq).await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod actor;
mod contacts;
mod content;
mod inbound;
mod outbound;
mod profile;
mod state;

use std::time::Duration;

use sealwire_core::{Change, GroupConfig, GroupId, PublicIdentity, SessionConfig};
use sealwire_transport::client::ClientConfig;
use sealwire_transport::frame::{MailboxId, MessageId};
use tokio::sync::{mpsc, oneshot};

pub use contacts::{Contact, check_name, identity_to_hex, parse_identity};
pub use content::{CONTENT_VERSION, Content, ContentError, MAX_BODY_LEN};
pub use profile::{GroupInfo, Profile};

use crate::error::{Error, Result};

/// How the client behaves; [`ClientOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The relay connection (URL, TLS trust, token, limits, reconnect backoff).
    pub transport: ClientConfig,
    /// Configuration of new pairwise sessions.
    pub session: SessionConfig,
    /// Configuration of groups this client creates or joins.
    pub group: GroupConfig,
    /// One-time prekeys to keep on the relay.
    pub one_time_prekeys: u32,
    /// Refill the relay's one-time prekeys when fewer than this many are left.
    pub low_prekeys: u32,
    /// How long a message id received is remembered, to drop the relay's redeliveries (longer
    /// than the relay keeps undelivered messages).
    pub remember_seen: Duration,
    /// Most group messages and control messages kept aside waiting for what they need.
    pub max_parked: usize,
    /// Most items kept aside from one sender mailbox: when one sender reaches it, its own
    /// oldest item is given up, so that one account cannot push out everybody else's.
    pub max_parked_per_sender: usize,
    /// How long one is kept aside before it is given up as undecryptable.
    pub park_for: Duration,
    /// How often the client tidies up and retries: bundle fetches that failed, sends the
    /// relay refused for now (quota, rate, space), signed-prekey rotation, expiry.
    pub housekeeping: Duration,
}

impl ClientOptions {
    /// Defaults around a relay connection: 100 one-time prekeys refilled below 25; ids
    /// remembered 45 days; at most 1,000 messages kept aside (100 per sender), for 7 days;
    /// housekeeping every 30 seconds.
    pub fn new(transport: ClientConfig) -> ClientOptions {
        ClientOptions {
            transport,
            session: SessionConfig::default(),
            group: GroupConfig::default(),
            one_time_prekeys: 100,
            low_prekeys: 25,
            remember_seen: Duration::from_secs(45 * 86_400),
            max_parked: 1_000,
            max_parked_per_sender: 100,
            park_for: Duration::from_secs(7 * 86_400),
            housekeeping: Duration::from_secs(30),
        }
    }
}

/// Where a message was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conversation {
    /// A 1:1 message.
    Direct,
    /// A message to a group.
    Group(GroupId),
}

/// A received message, stored in the inbox until [`Client::confirm`]ed.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incoming {
    /// Its place in the inbox (increasing); pass it to [`Client::confirm`].
    pub seq: u64,
    /// The sender, authenticated by the session or the group signature.
    pub sender: PublicIdentity,
    /// The sender's contact name, if they are a contact. `None`: an unknown sender.
    pub contact: Option<String>,
    /// Whether that contact is marked verified.
    pub verified: bool,
    /// 1:1 or which group.
    pub conversation: Conversation,
    /// The body.
    pub body: Vec<u8>,
    /// When the sender says it sealed it (Unix seconds, the sender's clock).
    pub sent_at: u64,
    /// When this client stored it (Unix seconds).
    pub received_at: u64,
}

impl core::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Incoming")
            .field("seq", &self.seq)
            .field("sender", &self.sender)
            .field("contact", &self.contact)
            .field("conversation", &self.conversation)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish_non_exhaustive()
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
}

/// What the client reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Connected and authenticated to the relay (again, after a reconnect).
    Connected,
    /// The connection dropped; the client reconnects after `retry_in`.
    Disconnected {
        /// Why.
        error: sealwire_transport::Error,
        /// When it tries again.
        retry_in: Duration,
    },
    /// A message. Confirm it with [`Client::confirm`] once the user has it.
    Message(Incoming),
    /// The relay accepted this send: it is stored for its recipients.
    Sent(MessageId),
    /// This send failed for good (the recipient has no prekeys on the relay, or the relay
    /// refused it).
    SendFailed {
        /// The send.
        id: MessageId,
        /// Why.
        error: Error,
    },
    /// Someone added this client to a group.
    GroupJoined {
        /// The group.
        group: GroupId,
        /// Who added it.
        by: PublicIdentity,
    },
    /// A group's members changed (or its keys rotated).
    GroupChanged {
        /// The group.
        group: GroupId,
        /// Who committed the change.
        by: PublicIdentity,
        /// The changes.
        changes: Vec<Change>,
    },
    /// This client was removed from a group: it receives nothing more from it.
    RemovedFromGroup {
        /// The group.
        group: GroupId,
        /// Who removed it.
        by: PublicIdentity,
    },
    /// A delivery that could not be read and was dropped: tampered with, replayed, for a
    /// session this client does not have, or kept aside too long.
    Dropped {
        /// The relay's sender mailbox.
        from: MailboxId,
        /// Why.
        error: Error,
    },
    /// The client stopped for good: closed, a storage failure, or the relay refused it in a
    /// way retrying cannot fix (untrusted certificate, authentication).
    Stopped(Error),
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Command {
    AddContact {
        name: String,
        identity: Box<PublicIdentity>,
        replace: bool,
        reply: Reply<Contact>,
    },
    Contacts(Reply<Vec<Contact>>),
    SetVerified {
        name: String,
        verified: bool,
        reply: Reply<Contact>,
    },
    Send {
        to: String,
        body: Vec<u8>,
        reply: Reply<MessageId>,
    },
    CreateGroup {
        label: String,
        members: Vec<String>,
        reply: Reply<GroupId>,
    },
    ChangeMembers {
        group: GroupId,
        add: Vec<String>,
        remove: Vec<String>,
        reply: Reply<()>,
    },
    SendGroup {
        group: GroupId,
        body: Vec<u8>,
        reply: Reply<MessageId>,
    },
    Groups(Reply<Vec<GroupInfo>>),
    Confirm {
        seq: u64,
        reply: Reply<()>,
    },
    Flush(Reply<()>),
}

/// A running client. Dropping it stops the background task (after the current step; state
/// on disk stays consistent).
#[derive(Debug)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
    identity: PublicIdentity,
}

impl Client {
    /// Starts the client for `profile` (it connects in the background). Messages still in the
    /// inbox come first as [`Event::Message`]; sends the relay never accepted are sent again.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Transport`] for an invalid relay URL or configuration.
    pub fn start(profile: Profile, options: ClientOptions) -> Result<Client> {
        let identity = profile.identity().clone();
        let (commands, command_rx) = mpsc::channel(64);
        let (event_tx, events) = mpsc::channel(1024);
        actor::spawn(profile, options, command_rx, event_tx)?;
        Ok(Client {
            commands,
            events,
            identity,
        })
    }

    /// This client's identity.
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }

    /// This client's mailbox on the relay.
    pub fn mailbox(&self) -> MailboxId {
        MailboxId::of(&self.identity)
    }

    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Adds a contact (see [`Profile::add_contact`]).
    ///
    /// # Errors
    /// [`Error::IdentityChanged`] if `name` is bound to another identity;
    /// [`Error::InvalidInput`] for a bad name or one's own identity.
    pub async fn add_contact(&self, name: &str, identity: PublicIdentity) -> Result<Contact> {
        self.call(|reply| Command::AddContact {
            name: name.to_owned(),
            identity: Box::new(identity),
            replace: false,
            reply,
        })
        .await
    }

    /// Binds `name` to a new identity after the user checked the new safety number (see
    /// [`Error::IdentityChanged`]). The contact is no longer marked verified.
    ///
    /// # Errors
    /// [`Error::InvalidInput`].
    pub async fn replace_contact(&self, name: &str, identity: PublicIdentity) -> Result<Contact> {
        self.call(|reply| Command::AddContact {
            name: name.to_owned(),
            identity: Box::new(identity),
            replace: true,
            reply,
        })
        .await
    }

    /// Every contact.
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub async fn contacts(&self) -> Result<Vec<Contact>> {
        self.call(Command::Contacts).await
    }

    /// Marks a contact verified (the user compared safety numbers) or not.
    ///
    /// # Errors
    /// [`Error::UnknownContact`].
    pub async fn set_verified(&self, name: &str, verified: bool) -> Result<Contact> {
        self.call(|reply| Command::SetVerified {
            name: name.to_owned(),
            verified,
            reply,
        })
        .await
    }

    /// Sends `body` to the contact `to`. Returns once the message is stored in the outbox;
    /// [`Event::Sent`] reports the relay's acceptance.
    ///
    /// # Errors
    /// [`Error::UnknownContact`]; [`Error::InvalidInput`] for a body over [`MAX_BODY_LEN`];
    /// [`Error::Stopped`].
    pub async fn send(&self, to: &str, body: Vec<u8>) -> Result<MessageId> {
        self.call(|reply| Command::Send {
            to: to.to_owned(),
            body,
            reply,
        })
        .await
    }

    /// Creates a group with this client as its admin and `members` (contact names).
    ///
    /// # Errors
    /// [`Error::UnknownContact`]; [`Error::Protocol`] for a group that would be too large.
    pub async fn create_group(&self, label: &str, members: &[&str]) -> Result<GroupId> {
        self.call(|reply| Command::CreateGroup {
            label: label.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            reply,
        })
        .await
    }

    /// Adds contacts to a group (this client must be an admin).
    ///
    /// # Errors
    /// [`Error::UnknownGroup`], [`Error::UnknownContact`]; [`Error::Protocol`] with
    /// `NotAuthorized` for a non-admin, `InvalidChange` for a member already there.
    pub async fn add_members(&self, group: GroupId, members: &[&str]) -> Result<()> {
        self.call(|reply| Command::ChangeMembers {
            group,
            add: members.iter().map(|m| (*m).to_owned()).collect(),
            remove: Vec::new(),
            reply,
        })
        .await
    }

    /// Removes contacts from a group (this client must be an admin). They receive nothing the
    /// group sends afterwards.
    ///
    /// # Errors
    /// As [`Client::add_members`].
    pub async fn remove_members(&self, group: GroupId, members: &[&str]) -> Result<()> {
        self.call(|reply| Command::ChangeMembers {
            group,
            add: Vec::new(),
            remove: members.iter().map(|m| (*m).to_owned()).collect(),
            reply,
        })
        .await
    }

    /// Sends `body` to a group.
    ///
    /// # Errors
    /// [`Error::UnknownGroup`]; [`Error::Protocol`] with `NotAMember` once removed;
    /// [`Error::InvalidInput`] for a body over [`MAX_BODY_LEN`].
    pub async fn send_group(&self, group: GroupId, body: Vec<u8>) -> Result<MessageId> {
        self.call(|reply| Command::SendGroup { group, body, reply })
            .await
    }

    /// The groups this client is in (or was removed from).
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub async fn groups(&self) -> Result<Vec<GroupInfo>> {
        self.call(Command::Groups).await
    }

    /// Removes a message from the inbox: the application has it. Until then it comes again
    /// after a restart.
    ///
    /// # Errors
    /// [`Error::Stopped`]; a storage error.
    pub async fn confirm(&self, seq: u64) -> Result<()> {
        self.call(|reply| Command::Confirm { seq, reply }).await
    }

    /// Waits until every message sent so far is accepted by the relay (or failed), and every
    /// prekey upload is answered. Read events meanwhile from another task if many may come:
    /// the client waits for the application once 1,024 events are unread. A send the relay
    /// refuses for now (a full mailbox, rate limits) keeps this waiting until it is accepted or
    /// given up (after 24 hours): bound the wait with a timeout.
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub async fn flush(&self) -> Result<()> {
        self.call(Command::Flush).await
    }

    /// Stops the client. State on disk is consistent whenever this happens.
    pub async fn close(self) {
        let Client {
            commands,
            mut events,
            ..
        } = self;
        drop(commands);
        while events.recv().await.is_some() {}
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }
}
