//! The client's state in memory, and how it maps onto records of the local store.
//!
//! Every change marks what it touched ([`Dirty`]); [`State::take_batch`] turns the marks into
//! one [`Batch`] of puts and deletes, written atomically. The client commits before it acts on
//! a change (acknowledges a delivery, submits a send), so a crash at any point leaves the
//! store at a state from which redelivery and resending recover without loss or repetition.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use sealwire_core::{
    Account, Group, GroupId, PUBLIC_IDENTITY_LEN, PublicIdentity, Session, SessionId,
};
use sealwire_transport::frame::{MailboxId, MessageId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::{Batch, LocalStore};

/// Record kinds in the local store.
mod kind {
    pub(super) const ACCOUNT: u8 = 1;
    pub(super) const SESSION: u8 = 2;
    pub(super) const ACTIVE: u8 = 3;
    pub(super) const CONTACT: u8 = 4;
    pub(super) const GROUP: u8 = 5;
    pub(super) const INBOX: u8 = 6;
    pub(super) const OUTBOX: u8 = 7;
    pub(super) const QUEUED: u8 = 8;
    pub(super) const SEEN: u8 = 9;
    pub(super) const PARKED: u8 = 10;
    pub(super) const COUNTERS: u8 = 11;
}

/// One thing that changed and must be written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dirty {
    Account,
    Session(SessionId),
    Active(MailboxId),
    Contact(String),
    Group(GroupId),
    Inbox(u64),
    Outbox(u64),
    Queued(u64),
    Seen(MailboxId, MessageId),
    Parked(u64),
    Counters,
}

/// A pairwise session and whom it is with.
pub(crate) struct SessionEntry {
    pub(crate) session: Session,
    pub(crate) peer: MailboxId,
    /// When it was created (Unix seconds), to retire the oldest of a peer's sessions.
    pub(crate) created: u64,
}

/// A contact as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    pub(crate) identity: Vec<u8>,
    pub(crate) verified: bool,
    pub(crate) added_at: u64,
}

/// A group and its local label.
pub(crate) struct GroupEntry {
    pub(crate) group: Group,
    pub(crate) label: String,
}

/// A received message not yet confirmed by the application.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct InboxRecord {
    pub(crate) from: Vec<u8>,
    pub(crate) group: Option<[u8; 16]>,
    pub(crate) body: Vec<u8>,
    pub(crate) sent_at: u64,
    pub(crate) received_at: u64,
}

/// A sealed envelope handed to the relay and not yet accepted.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct OutboxRecord {
    pub(crate) id: [u8; 16],
    /// Whether the application sees this send's outcome ([`Event::Sent`](super::Event::Sent)):
    /// false for control messages and extra fan-out chunks.
    pub(crate) report: bool,
    pub(crate) to: Vec<[u8; 32]>,
    pub(crate) payload: Vec<u8>,
}

/// A pairwise content waiting for a session with `peer` (its bundle is being fetched).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct QueuedRecord {
    pub(crate) id: [u8; 16],
    /// As [`OutboxRecord::report`].
    pub(crate) report: bool,
    /// The peer's mailbox (derived from `peer`, kept for matching without decoding it).
    pub(crate) mailbox: [u8; 32],
    pub(crate) peer: Vec<u8>,
    pub(crate) content: Vec<u8>,
}

/// A group envelope or control message that cannot be processed yet (its sender key, commit
/// or welcome has not arrived).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ParkedRecord {
    pub(crate) group: [u8; 16],
    pub(crate) from: [u8; 32],
    /// The pairwise peer, for a control message; `None` for a group envelope.
    pub(crate) sender: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
    pub(crate) parked_at: u64,
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub(crate) next_seq: u64,
}

impl Drop for InboxRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
}

impl Drop for ParkedRecord {
    fn drop(&mut self) {
        // A kept-aside control message may be a sender key (a chain key).
        zeroize::Zeroize::zeroize(&mut self.payload);
    }
}

impl Drop for QueuedRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.content);
    }
}

/// Everything the client knows, loaded from and written back to the [`LocalStore`].
pub(crate) struct State {
    pub(crate) account: Account,
    pub(crate) sessions: HashMap<SessionId, SessionEntry>,
    pub(crate) active: HashMap<MailboxId, SessionId>,
    pub(crate) contacts: BTreeMap<String, ContactRecord>,
    pub(crate) groups: HashMap<GroupId, GroupEntry>,
    pub(crate) inbox: BTreeMap<u64, InboxRecord>,
    pub(crate) outbox: BTreeMap<u64, OutboxRecord>,
    pub(crate) queued: BTreeMap<u64, QueuedRecord>,
    pub(crate) seen: HashMap<(MailboxId, MessageId), u64>,
    pub(crate) parked: BTreeMap<u64, ParkedRecord>,
    pub(crate) counters: Counters,
    dirty: BTreeSet<Dirty>,
    /// Identities decoded from this store's records (already authenticated by the store's
    /// encryption), so that their binding signatures are verified once, not on every use.
    identities: RefCell<HashMap<[u8; PUBLIC_IDENTITY_LEN], PublicIdentity>>,
}

fn encode<T: Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(postcard::to_allocvec(value).unwrap_or_default())
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|_| Error::StoreCorrupt(what))
}

fn seq_key(key: &[u8], what: &'static str) -> Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| Error::StoreCorrupt(what))?;
    Ok(u64::from_be_bytes(bytes))
}

impl State {
    /// A fresh state around a new account.
    pub(crate) fn new(account: Account) -> State {
        let mut state = State {
            account,
            sessions: HashMap::new(),
            active: HashMap::new(),
            contacts: BTreeMap::new(),
            groups: HashMap::new(),
            inbox: BTreeMap::new(),
            outbox: BTreeMap::new(),
            queued: BTreeMap::new(),
            seen: HashMap::new(),
            parked: BTreeMap::new(),
            counters: Counters { next_seq: 1 },
            dirty: BTreeSet::new(),
            identities: RefCell::default(),
        };
        state.mark(Dirty::Account);
        state.mark(Dirty::Counters);
        state
    }

    /// Loads everything from `store`.
    ///
    /// # Errors
    /// [`Error::NoStore`]-like [`Error::StoreCorrupt`] if the store holds no identity;
    /// [`Error::StoreCorrupt`] for a record that does not decode.
    pub(crate) fn load(store: &LocalStore) -> Result<State> {
        let records = store.load_all()?;
        let mut account = None;
        let mut pending_sessions = Vec::new();
        let mut active = HashMap::new();
        let mut contacts = BTreeMap::new();
        let mut groups = HashMap::new();
        let mut inbox = BTreeMap::new();
        let mut outbox = BTreeMap::new();
        let mut queued = BTreeMap::new();
        let mut seen = HashMap::new();
        let mut parked = BTreeMap::new();
        let mut counters = Counters { next_seq: 1 };
        for record in records {
            let value = record.value.as_slice();
            match record.kind {
                kind::ACCOUNT => account = Some(Account::from_bytes(value)?),
                kind::SESSION => pending_sessions.push(decode::<StoredSession>(value, "session")?),
                kind::ACTIVE => {
                    let peer = mailbox_key(&record.key)?;
                    let id: [u8; 16] = value
                        .try_into()
                        .map_err(|_| Error::StoreCorrupt("active session"))?;
                    active.insert(peer, SessionId::from_bytes(id));
                }
                kind::CONTACT => {
                    let name = String::from_utf8(record.key.clone())
                        .map_err(|_| Error::StoreCorrupt("contact name"))?;
                    contacts.insert(name, decode(value, "contact")?);
                }
                kind::GROUP => {
                    let stored: StoredGroup = decode(value, "group")?;
                    let group = Group::from_bytes(&stored.state)?;
                    groups.insert(
                        group.id(),
                        GroupEntry {
                            group,
                            label: stored.label.clone(),
                        },
                    );
                }
                kind::INBOX => {
                    inbox.insert(seq_key(&record.key, "inbox")?, decode(value, "inbox")?);
                }
                kind::OUTBOX => {
                    outbox.insert(seq_key(&record.key, "outbox")?, decode(value, "outbox")?);
                }
                kind::QUEUED => {
                    queued.insert(seq_key(&record.key, "queue")?, decode(value, "queue")?);
                }
                kind::SEEN => {
                    let (from, id) = seen_key(&record.key)?;
                    let at: u64 = decode(value, "seen")?;
                    seen.insert((from, id), at);
                }
                kind::PARKED => {
                    parked.insert(seq_key(&record.key, "parked")?, decode(value, "parked")?);
                }
                kind::COUNTERS => counters = decode(value, "counters")?,
                _ => return Err(Error::StoreCorrupt("unknown record kind")),
            }
        }
        let account = account.ok_or(Error::StoreCorrupt("the store holds no identity"))?;
        let mut sessions = HashMap::new();
        for stored in pending_sessions {
            let session = Session::from_bytes(&stored.state)?;
            sessions.insert(
                session.session_id(),
                SessionEntry {
                    session,
                    peer: MailboxId(stored.peer),
                    created: stored.created,
                },
            );
        }
        Ok(State {
            account,
            sessions,
            active,
            contacts,
            groups,
            inbox,
            outbox,
            queued,
            seen,
            parked,
            counters,
            dirty: BTreeSet::new(),
            identities: RefCell::default(),
        })
    }

    /// Marks `what` to be written by the next [`State::take_batch`].
    pub(crate) fn mark(&mut self, what: Dirty) {
        self.dirty.insert(what);
    }

    /// A fresh local sequence number (for inbox, outbox, queue and parked records).
    pub(crate) fn next_seq(&mut self) -> u64 {
        let seq = self.counters.next_seq;
        self.counters.next_seq = seq.saturating_add(1);
        self.mark(Dirty::Counters);
        seq
    }

    /// Whether anything changed since the last batch.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Forgets the marks without writing (after a failed commit the client stops; the store
    /// still holds the last committed state).
    pub(crate) fn take_batch(&mut self) -> Batch {
        let mut batch = Batch::new();
        for what in core::mem::take(&mut self.dirty) {
            match what {
                Dirty::Account => {
                    let bytes = self.account.to_bytes();
                    batch.put(kind::ACCOUNT, b"", bytes.expose_secret());
                }
                Dirty::Session(id) => {
                    let key = id.as_bytes();
                    match self.sessions.get(&id) {
                        Some(entry) => {
                            let state = entry.session.to_bytes();
                            let stored = StoredSession {
                                peer: entry.peer.0,
                                created: entry.created,
                                state: state.expose_secret().to_vec(),
                            };
                            batch.put(kind::SESSION, key, &encode(&stored));
                        }
                        None => batch.delete(kind::SESSION, key),
                    }
                }
                Dirty::Active(peer) => match self.active.get(&peer) {
                    Some(id) => batch.put(kind::ACTIVE, &peer.0, id.as_bytes()),
                    None => batch.delete(kind::ACTIVE, &peer.0),
                },
                Dirty::Contact(name) => match self.contacts.get(&name) {
                    Some(contact) => batch.put(kind::CONTACT, name.as_bytes(), &encode(contact)),
                    None => batch.delete(kind::CONTACT, name.as_bytes()),
                },
                Dirty::Group(id) => match self.groups.get(&id) {
                    Some(entry) => {
                        let state = entry.group.to_bytes();
                        let stored = StoredGroup {
                            label: entry.label.clone(),
                            state: state.expose_secret().to_vec(),
                        };
                        batch.put(kind::GROUP, id.as_bytes(), &encode(&stored));
                    }
                    None => batch.delete(kind::GROUP, id.as_bytes()),
                },
                Dirty::Inbox(seq) => {
                    put_or_delete(&mut batch, kind::INBOX, seq, self.inbox.get(&seq))
                }
                Dirty::Outbox(seq) => {
                    put_or_delete(&mut batch, kind::OUTBOX, seq, self.outbox.get(&seq));
                }
                Dirty::Queued(seq) => {
                    put_or_delete(&mut batch, kind::QUEUED, seq, self.queued.get(&seq));
                }
                Dirty::Parked(seq) => {
                    put_or_delete(&mut batch, kind::PARKED, seq, self.parked.get(&seq));
                }
                Dirty::Seen(from, id) => {
                    let mut key = [0u8; 48];
                    key[..32].copy_from_slice(&from.0);
                    key[32..].copy_from_slice(&id.0);
                    match self.seen.get(&(from, id)) {
                        Some(at) => batch.put(kind::SEEN, &key, &encode(at)),
                        None => batch.delete(kind::SEEN, &key),
                    }
                }
                Dirty::Counters => batch.put(kind::COUNTERS, b"", &encode(&self.counters)),
            }
        }
        batch
    }

    /// Decodes an identity stored in a record, verifying it once per process.
    ///
    /// # Errors
    /// [`Error::StoreCorrupt`] if it does not decode.
    pub(crate) fn stored_identity(&self, bytes: &[u8]) -> Result<PublicIdentity> {
        let key: [u8; PUBLIC_IDENTITY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::StoreCorrupt("identity"))?;
        if let Some(identity) = self.identities.borrow().get(&key) {
            return Ok(identity.clone());
        }
        let identity =
            PublicIdentity::from_bytes(bytes).map_err(|_| Error::StoreCorrupt("identity"))?;
        let mut cache = self.identities.borrow_mut();
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(key, identity.clone());
        Ok(identity)
    }

    /// The contact name for `identity`, if it is a contact.
    pub(crate) fn contact_name(&self, identity: &PublicIdentity) -> Option<(&str, bool)> {
        let bytes = identity.to_bytes();
        self.contacts
            .iter()
            .find(|(_, contact)| contact.identity.as_slice() == bytes.as_slice())
            .map(|(name, contact)| (name.as_str(), contact.verified))
    }
}

fn put_or_delete<T: Serialize>(batch: &mut Batch, kind: u8, seq: u64, value: Option<&T>) {
    let key = seq.to_be_bytes();
    match value {
        Some(value) => batch.put(kind, &key, &encode(value)),
        None => batch.delete(kind, &key),
    }
}

fn mailbox_key(key: &[u8]) -> Result<MailboxId> {
    let bytes: [u8; 32] = key
        .try_into()
        .map_err(|_| Error::StoreCorrupt("mailbox key"))?;
    Ok(MailboxId(bytes))
}

fn seen_key(key: &[u8]) -> Result<(MailboxId, MessageId)> {
    if key.len() != 48 {
        return Err(Error::StoreCorrupt("seen key"));
    }
    let (from, id) = key.split_at(32);
    let from: [u8; 32] = from
        .try_into()
        .map_err(|_| Error::StoreCorrupt("seen key"))?;
    let id: [u8; 16] = id.try_into().map_err(|_| Error::StoreCorrupt("seen key"))?;
    Ok((MailboxId(from), MessageId(id)))
}

#[derive(Serialize, Deserialize)]
struct StoredSession {
    peer: [u8; 32],
    created: u64,
    state: Vec<u8>,
}

impl Drop for StoredSession {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.state);
    }
}

#[derive(Serialize, Deserialize)]
struct StoredGroup {
    label: String,
    state: Vec<u8>,
}

impl Drop for StoredGroup {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.state);
    }
}
