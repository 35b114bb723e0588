//! Contacts: local names for identities, and whether their safety numbers were verified.

use sealwire_core::{PublicIdentity, SafetyNumber};
use sealwire_transport::frame::MailboxId;

use super::state::{ContactRecord, Dirty, State};
use crate::error::{Error, Result};

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Contact {
    /// The local name.
    pub name: String,
    /// Their identity.
    pub identity: PublicIdentity,
    /// Their mailbox on the relay.
    pub mailbox: MailboxId,
    /// Whether the user compared safety numbers with them and marked them verified.
    pub verified: bool,
    /// This profile's own identity (for the safety number).
    own: PublicIdentity,
}

impl Contact {
    /// The safety number to compare with them, out of band. Deliberately slow to compute
    /// (an iterated hash, see `spec/sealwire.md` §6): call it when showing it.
    pub fn safety_number(&self) -> SafetyNumber {
        self.own.safety_number(&self.identity)
    }
}

/// Checks a contact name: 1 to 64 characters, letters, digits, `-`, `_` and `.`.
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            what: "contact name",
            reason: "use 1 to 64 letters, digits, '-', '_' or '.'".into(),
        })
    }
}

/// Parses an identity written as hex (256 hex digits, as `sealwire id` prints it).
///
/// # Errors
/// [`Error::InvalidInput`] for anything else.
pub fn parse_identity(text: &str) -> Result<PublicIdentity> {
    let bytes = hex::decode(text.trim()).map_err(|_| Error::InvalidInput {
        what: "identity",
        reason: "expected 256 hex digits (`sealwire id` prints them)".into(),
    })?;
    PublicIdentity::from_bytes(&bytes).map_err(|e| Error::InvalidInput {
        what: "identity",
        reason: e.to_string(),
    })
}

/// The text form of an identity (what [`parse_identity`] reads).
pub fn identity_to_hex(identity: &PublicIdentity) -> String {
    hex::encode(identity.to_bytes())
}

impl State {
    pub(crate) fn own_identity(&self) -> &PublicIdentity {
        self.account.identity().public()
    }

    fn to_contact(&self, name: &str, record: &ContactRecord) -> Result<Contact> {
        let identity = self.stored_identity(&record.identity)?;
        Ok(Contact {
            name: name.to_owned(),
            mailbox: MailboxId::of(&identity),
            verified: record.verified,
            own: self.own_identity().clone(),
            identity,
        })
    }

    /// Adds a contact. Adding the same identity again under the same name changes nothing.
    /// A name already bound to another identity is refused with [`Error::IdentityChanged`]
    /// unless `replace` is set (which resets `verified`).
    pub(crate) fn add_contact(
        &mut self,
        name: &str,
        identity: &PublicIdentity,
        replace: bool,
        now: u64,
    ) -> Result<Contact> {
        check_name(name)?;
        if identity == self.own_identity() {
            return Err(Error::InvalidInput {
                what: "contact",
                reason: "that is your own identity".into(),
            });
        }
        let bytes = identity.to_bytes().to_vec();
        if let Some(existing) = self.contacts.get(name) {
            if existing.identity == bytes {
                return self.contact(name);
            }
            if !replace {
                let stored = self.to_contact(name, existing)?;
                return Err(Error::IdentityChanged {
                    name: name.to_owned(),
                    stored: stored.safety_number().to_string(),
                    new: self.own_identity().safety_number(identity).to_string(),
                });
            }
        }
        if let Some((other, _)) = self.contact_name(identity)
            && other != name
        {
            return Err(Error::InvalidInput {
                what: "contact",
                reason: format!("that identity is already your contact {other:?}"),
            });
        }
        self.contacts.insert(
            name.to_owned(),
            ContactRecord {
                identity: bytes,
                verified: false,
                added_at: now,
            },
        );
        self.mark(Dirty::Contact(name.to_owned()));
        self.contact(name)
    }

    /// A contact's identity, without the (deliberately slow) safety number.
    pub(crate) fn contact_identity(&self, name: &str) -> Result<PublicIdentity> {
        let record = self
            .contacts
            .get(name)
            .ok_or_else(|| Error::UnknownContact(name.to_owned()))?;
        self.stored_identity(&record.identity)
    }

    pub(crate) fn contact(&self, name: &str) -> Result<Contact> {
        let record = self
            .contacts
            .get(name)
            .ok_or_else(|| Error::UnknownContact(name.to_owned()))?;
        self.to_contact(name, record)
    }

    pub(crate) fn contact_list(&self) -> Result<Vec<Contact>> {
        self.contacts
            .iter()
            .map(|(name, record)| self.to_contact(name, record))
            .collect()
    }

    pub(crate) fn set_verified(&mut self, name: &str, verified: bool) -> Result<Contact> {
        let record = self
            .contacts
            .get_mut(name)
            .ok_or_else(|| Error::UnknownContact(name.to_owned()))?;
        record.verified = verified;
        self.mark(Dirty::Contact(name.to_owned()));
        self.contact(name)
    }

    pub(crate) fn remove_contact(&mut self, name: &str) -> Result<()> {
        self.contacts
            .remove(name)
            .ok_or_else(|| Error::UnknownContact(name.to_owned()))?;
        self.mark(Dirty::Contact(name.to_owned()));
        Ok(())
    }
}
