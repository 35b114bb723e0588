//! A profile: one identity and its local state, usable without a relay connection.

use std::sync::Arc;

use sealwire_core::{Account, GroupId, IdentityKeyPair, MemberRole, PublicIdentity, SessionId};
use sealwire_transport::frame::MailboxId;

use super::contacts::Contact;
use super::state::State;
use crate::error::{Error, Result};
use crate::store::LocalStore;

/// A group, as this client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group id.
    pub id: GroupId,
    /// The local label (the creator's label, or the id for a group one was added to).
    pub label: String,
    /// The current epoch.
    pub epoch: u32,
    /// The members and their roles.
    pub members: Vec<(PublicIdentity, MemberRole)>,
    /// Whether this client is still a member.
    pub is_member: bool,
}

/// A user's identity and local state, open in its [`LocalStore`]. Manage contacts here before
/// connecting; [`Client::start`](super::Client::start) takes it over.
pub struct Profile {
    pub(crate) store: Arc<LocalStore>,
    pub(crate) state: State,
}

impl core::fmt::Debug for Profile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Profile")
            .field("identity", self.identity())
            .field("contacts", &self.state.contacts.len())
            .field("sessions", &self.state.sessions.len())
            .field("groups", &self.state.groups.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Profile {
    /// Creates a new identity in an empty store.
    ///
    /// # Errors
    /// [`Error::StoreExists`] if the store already holds an identity; storage errors.
    pub fn create(store: LocalStore) -> Result<Profile> {
        if !store.load_all()?.is_empty() {
            return Err(Error::StoreExists("this store".into()));
        }
        let mut rng = rand::rng();
        let now = sealwire_core::Timestamp::from_unix_secs(unix_now());
        let account = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
        let mut profile = Profile {
            store: Arc::new(store),
            state: State::new(account),
        };
        profile.save()?;
        Ok(profile)
    }

    /// Opens the identity and state in `store`.
    ///
    /// # Errors
    /// [`Error::StoreCorrupt`] if it holds no identity or a damaged record.
    pub fn open(store: LocalStore) -> Result<Profile> {
        let state = State::load(&store)?;
        Ok(Profile {
            store: Arc::new(store),
            state,
        })
    }

    /// This profile's identity.
    pub fn identity(&self) -> &PublicIdentity {
        self.state.own_identity()
    }

    /// This profile's mailbox on a relay.
    pub fn mailbox(&self) -> MailboxId {
        MailboxId::of(self.identity())
    }

    /// Adds a contact under a local name. Adding the same identity again under the same name
    /// changes nothing.
    ///
    /// # Errors
    /// [`Error::IdentityChanged`] if `name` is bound to another identity (compare safety
    /// numbers, then [`Profile::replace_contact`]); [`Error::InvalidInput`] for a bad name,
    /// one's own identity, or an identity already under another name.
    pub fn add_contact(&mut self, name: &str, identity: &PublicIdentity) -> Result<Contact> {
        let contact = self.state.add_contact(name, identity, false, unix_now())?;
        self.save()?;
        Ok(contact)
    }

    /// Binds `name` to a new identity; the contact is no longer verified.
    ///
    /// # Errors
    /// As [`Profile::add_contact`], except [`Error::IdentityChanged`].
    pub fn replace_contact(&mut self, name: &str, identity: &PublicIdentity) -> Result<Contact> {
        let contact = self.state.add_contact(name, identity, true, unix_now())?;
        self.save()?;
        Ok(contact)
    }

    /// Removes a contact (sessions with them are kept).
    ///
    /// # Errors
    /// [`Error::UnknownContact`].
    pub fn remove_contact(&mut self, name: &str) -> Result<()> {
        self.state.remove_contact(name)?;
        self.save()
    }

    /// One contact.
    ///
    /// # Errors
    /// [`Error::UnknownContact`].
    pub fn contact(&self, name: &str) -> Result<Contact> {
        self.state.contact(name)
    }

    /// Every contact, by name.
    ///
    /// # Errors
    /// [`Error::StoreCorrupt`] for a damaged contact.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        self.state.contact_list()
    }

    /// Marks a contact verified, or not.
    ///
    /// # Errors
    /// [`Error::UnknownContact`].
    pub fn set_verified(&mut self, name: &str, verified: bool) -> Result<Contact> {
        let contact = self.state.set_verified(name, verified)?;
        self.save()?;
        Ok(contact)
    }

    /// The pairwise session this profile sends on to the contact `name`, if there is one.
    /// Both sides of a conversation name the same session (after both started one at the
    /// same time they settle on the lower id, `spec/client.md` §7).
    ///
    /// # Errors
    /// [`Error::UnknownContact`].
    pub fn session_in_use(&self, name: &str) -> Result<Option<SessionId>> {
        let identity = self.state.contact_identity(name)?;
        Ok(self
            .state
            .active
            .get(&MailboxId::of(&identity))
            .copied()
            .filter(|id| self.state.sessions.contains_key(id)))
    }

    /// The groups this profile is in (or was removed from).
    pub fn groups(&self) -> Vec<GroupInfo> {
        self.state.group_list()
    }

    /// Messages received and not yet confirmed.
    pub fn inbox_len(&self) -> usize {
        self.state.inbox.len()
    }

    /// Sends sealed or queued and not yet accepted by the relay.
    pub fn outbox_len(&self) -> usize {
        self.state.outbox.len() + self.state.queued.len()
    }

    fn save(&mut self) -> Result<()> {
        if self.state.is_dirty() {
            let batch = self.state.take_batch();
            self.store.commit(&batch)?;
        }
        Ok(())
    }
}

impl State {
    pub(crate) fn group_list(&self) -> Vec<GroupInfo> {
        let mut groups: Vec<GroupInfo> = self
            .groups
            .values()
            .map(|entry| GroupInfo {
                id: entry.group.id(),
                label: entry.label.clone(),
                epoch: entry.group.epoch(),
                members: entry
                    .group
                    .members()
                    .iter()
                    .map(|m| (m.identity().clone(), m.role()))
                    .collect(),
                is_member: entry.group.is_member(),
            })
            .collect();
        groups.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        groups
    }
}
