//! Sending: sealing for a contact or a group, queueing until a session exists, and the
//! sessions made from fetched prekey bundles.

use sealwire_core::{
    BundlePolicy, Change, CommitOutput, Group, GroupId, MemberRole, PrekeyBundle, PublicIdentity,
    Session,
};
use sealwire_transport::code::ErrorCode;
use sealwire_transport::frame::{MailboxId, MessageId};

use super::actor::{Actor, Outgoing, now};
use super::content::{Content, MAX_BODY_LEN};
use super::profile::unix_now;
use super::state::{Dirty, GroupEntry, OutboxRecord, QueuedRecord, SessionEntry};
use crate::error::{Error, Result};

/// Sessions kept per peer: the one in use and a few older ones, for messages in flight.
const SESSIONS_PER_PEER: usize = 4;

/// A copy of a bundle failure, for each message that waited on it.
fn same_error(error: &Error) -> Error {
    match error {
        Error::NoBundle(contact) => Error::NoBundle(contact.clone()),
        Error::BadBundle { contact, reason } => Error::BadBundle {
            contact: contact.clone(),
            reason: reason.clone(),
        },
        other => Error::InvalidInput {
            what: "session",
            reason: other.to_string(),
        },
    }
}

fn check_body(body: &[u8]) -> Result<()> {
    if body.len() > MAX_BODY_LEN {
        return Err(Error::InvalidInput {
            what: "message",
            reason: format!("{} bytes, the most is {MAX_BODY_LEN}", body.len()),
        });
    }
    Ok(())
}

impl Actor {
    /// Sends a message to the contact `to`.
    pub(super) fn send_direct(&mut self, to: &str, body: Vec<u8>) -> Result<MessageId> {
        check_body(&body)?;
        let identity = self.state.contact_identity(to)?;
        let content = Content::Message {
            sent_at: unix_now(),
            body,
        };
        self.send_pairwise(&identity, &content, true)
    }

    /// Seals `content` for `peer` on the session in use, or queues it until there is one
    /// (fetching the peer's bundle). Queued contents keep their order.
    pub(super) fn send_pairwise(
        &mut self,
        peer: &PublicIdentity,
        content: &Content,
        report: bool,
    ) -> Result<MessageId> {
        let mailbox = MailboxId::of(peer);
        let id = MessageId::random();
        let encoded = content.encode();
        let peer_bytes = peer.to_bytes();
        let waiting = self
            .state
            .queued
            .values()
            .any(|queued| queued.peer.as_slice() == peer_bytes.as_slice());
        if !waiting
            && let Some(&session_id) = self.state.active.get(&mailbox)
            && let Some(entry) = self.state.sessions.get_mut(&session_id)
        {
            let envelope = entry.session.seal(&encoded, &mut self.rng, now())?;
            self.state.mark(Dirty::Session(session_id));
            self.push_outbox(id, vec![mailbox], envelope, report);
            return Ok(id);
        }
        let seq = self.state.next_seq();
        self.state.queued.insert(
            seq,
            QueuedRecord {
                id: id.0,
                report,
                mailbox: mailbox.0,
                peer: peer_bytes.to_vec(),
                content: encoded.to_vec(),
            },
        );
        self.state.mark(Dirty::Queued(seq));
        self.fetch_bundle(mailbox);
        Ok(id)
    }

    /// Stores a sealed envelope in the outbox and queues it for the relay.
    pub(super) fn push_outbox(
        &mut self,
        id: MessageId,
        to: Vec<MailboxId>,
        payload: Vec<u8>,
        report: bool,
    ) {
        let seq = self.state.next_seq();
        self.state.outbox.insert(
            seq,
            OutboxRecord {
                id: id.0,
                report,
                to: to.iter().map(|m| m.0).collect(),
                payload: payload.clone(),
            },
        );
        self.state.mark(Dirty::Outbox(seq));
        self.outbox_index.insert(id, seq);
        self.submit(Outgoing::Send { id, to, payload });
    }

    /// A bundle fetch finished: start the session and seal what waited for it, or fail what
    /// waited if the peer has no bundle. Other errors leave the queue: returns `true` then,
    /// to try again shortly.
    pub(super) fn bundle_fetched(
        &mut self,
        mailbox: MailboxId,
        result: sealwire_transport::Result<Vec<u8>>,
    ) -> bool {
        let waiting: Vec<u64> = self
            .state
            .queued
            .iter()
            .filter(|(_, queued)| queued.mailbox == mailbox.0)
            .map(|(&seq, _)| seq)
            .collect();
        if waiting.is_empty() {
            return false;
        }
        let session = match self.state.active.get(&mailbox) {
            Some(&id) if self.state.sessions.contains_key(&id) => Ok(id),
            _ => match result {
                Ok(bytes) => self.session_from_bundle(mailbox, &bytes),
                Err(sealwire_transport::Error::Refused {
                    code: ErrorCode::NoBundle,
                }) => Err(Error::NoBundle(self.describe(mailbox))),
                Err(error) => {
                    tracing::debug!(%error, "fetching a bundle failed; retrying");
                    return true;
                }
            },
        };
        match session {
            Ok(session_id) => {
                for seq in waiting {
                    if let Err(error) = self.seal_queued(seq, mailbox, session_id) {
                        self.fail_queued(seq, error);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "messages waiting for a session failed");
                for seq in waiting {
                    self.fail_queued(seq, same_error(&error));
                }
            }
        }
        false
    }

    fn seal_queued(
        &mut self,
        seq: u64,
        mailbox: MailboxId,
        session_id: sealwire_core::SessionId,
    ) -> Result<()> {
        let Some(queued) = self.state.queued.remove(&seq) else {
            return Ok(());
        };
        self.state.mark(Dirty::Queued(seq));
        let entry = self
            .state
            .sessions
            .get_mut(&session_id)
            .ok_or(Error::Stopped)?;
        let envelope = entry.session.seal(&queued.content, &mut self.rng, now())?;
        self.state.mark(Dirty::Session(session_id));
        self.push_outbox(MessageId(queued.id), vec![mailbox], envelope, queued.report);
        Ok(())
    }

    fn fail_queued(&mut self, seq: u64, error: Error) {
        if let Some(queued) = self.state.queued.remove(&seq) {
            self.state.mark(Dirty::Queued(seq));
            if queued.report {
                self.emit(super::Event::SendFailed {
                    id: MessageId(queued.id),
                    error,
                });
            } else {
                tracing::warn!(%error, "a group control message could not be sent");
            }
        }
    }

    /// A contact's name, or the mailbox in hex.
    fn describe(&self, mailbox: MailboxId) -> String {
        self.state
            .contacts
            .iter()
            .find(|(_, c)| {
                self.state
                    .stored_identity(&c.identity)
                    .is_ok_and(|identity| MailboxId::of(&identity) == mailbox)
            })
            .map_or_else(|| mailbox.to_hex(), |(name, _)| name.clone())
    }

    /// Verifies a fetched bundle (it must be the identity behind `mailbox`, correctly signed)
    /// and starts a session from it, which becomes the one in use.
    fn session_from_bundle(
        &mut self,
        mailbox: MailboxId,
        bytes: &[u8],
    ) -> Result<sealwire_core::SessionId> {
        let bad = |reason: String| Error::BadBundle {
            contact: mailbox.to_hex(),
            reason,
        };
        let bundle = PrekeyBundle::from_bytes(bytes).map_err(|e| bad(e.to_string()))?;
        if MailboxId::of(&bundle.identity) != mailbox {
            return Err(bad("it belongs to another identity".into()));
        }
        let now = now();
        let verified = bundle
            .verify(&BundlePolicy::default(), now)
            .map_err(|e| bad(e.to_string()))?;
        let session = Session::initiate(
            self.state.account.identity(),
            &verified,
            self.options.session.clone(),
            &mut self.rng,
            now,
        )?;
        let id = session.session_id();
        self.add_session(mailbox, session);
        self.state.active.insert(mailbox, id);
        self.state.mark(Dirty::Active(mailbox));
        Ok(id)
    }

    /// Keeps a new session, retiring the peer's oldest beyond [`SESSIONS_PER_PEER`].
    pub(super) fn add_session(&mut self, peer: MailboxId, session: Session) {
        let id = session.session_id();
        self.state.sessions.insert(
            id,
            SessionEntry {
                session,
                peer,
                created: unix_now(),
            },
        );
        self.state.mark(Dirty::Session(id));
        let active = self.state.active.get(&peer).copied();
        let mut theirs: Vec<(u64, sealwire_core::SessionId)> = self
            .state
            .sessions
            .iter()
            .filter(|(sid, entry)| entry.peer == peer && **sid != id && Some(**sid) != active)
            .map(|(sid, entry)| (entry.created, *sid))
            .collect();
        theirs.sort();
        while theirs.len() + 2 > SESSIONS_PER_PEER && !theirs.is_empty() {
            let (_, old) = theirs.remove(0);
            self.state.sessions.remove(&old);
            self.state.mark(Dirty::Session(old));
        }
    }

    /// Creates a group with this client as admin and adds `members`.
    pub(super) fn create_group(&mut self, label: String, members: &[String]) -> Result<GroupId> {
        if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(Error::InvalidInput {
                what: "group label",
                reason: "use 1 to 64 printable characters".into(),
            });
        }
        let changes = self.member_changes(members, &[])?;
        let now = now();
        let identity = self.state.account.identity();
        let mut group = Group::create(identity, self.options.group.clone(), &mut self.rng, now)?;
        let output = if changes.is_empty() {
            None
        } else {
            Some(group.commit(identity, &changes, now)?)
        };
        let id = group.id();
        self.state.groups.insert(id, GroupEntry { group, label });
        self.state.mark(Dirty::Group(id));
        if let Some(output) = output {
            self.deliver_commit(&output)?;
        }
        Ok(id)
    }

    fn member_changes(&self, add: &[String], remove: &[String]) -> Result<Vec<Change>> {
        let mut changes = Vec::with_capacity(add.len() + remove.len());
        for name in add {
            let identity = self.state.contact_identity(name)?;
            changes.push(Change::Add(identity, MemberRole::Member));
        }
        for name in remove {
            let identity = self.state.contact_identity(name)?;
            changes.push(Change::Remove(identity));
        }
        Ok(changes)
    }

    /// Adds and removes members: one commit, sent to the members over the pairwise sessions,
    /// and a welcome for the new ones.
    pub(super) fn change_members(
        &mut self,
        id: GroupId,
        add: &[String],
        remove: &[String],
    ) -> Result<()> {
        let changes = self.member_changes(add, remove)?;
        let entry = self
            .state
            .groups
            .get_mut(&id)
            .ok_or_else(|| Error::UnknownGroup(id.to_string()))?;
        let output = entry
            .group
            .commit(self.state.account.identity(), &changes, now())?;
        self.state.mark(Dirty::Group(id));
        self.deliver_commit(&output)
    }

    fn deliver_commit(&mut self, output: &CommitOutput) -> Result<()> {
        let commit = Content::GroupControl {
            control: output.commit.clone(),
        };
        for member in &output.commit_recipients {
            self.send_pairwise(member, &commit, false)?;
        }
        if let Some(welcome) = &output.welcome {
            let welcome = Content::GroupControl {
                control: welcome.clone(),
            };
            for member in &output.welcome_recipients {
                self.send_pairwise(member, &welcome, false)?;
            }
        }
        Ok(())
    }

    /// Seals `body` for a group: on this member's first message of an epoch its sender key
    /// goes first to every other member over the pairwise sessions; then one envelope for the
    /// relay to fan out (split into several sends above the relay's recipient limit).
    pub(super) fn send_group(&mut self, id: GroupId, body: Vec<u8>) -> Result<MessageId> {
        check_body(&body)?;
        let content = Content::Message {
            sent_at: unix_now(),
            body,
        };
        let encoded = content.encode();
        let entry = self
            .state
            .groups
            .get_mut(&id)
            .ok_or_else(|| Error::UnknownGroup(id.to_string()))?;
        let sealed = entry.group.seal(&encoded, &mut self.rng, now())?;
        let own = entry.group.own_identity().clone();
        let recipients: Vec<MailboxId> = entry
            .group
            .members()
            .iter()
            .filter(|member| member.identity() != &own)
            .map(|member| MailboxId::of(member.identity()))
            .collect();
        self.state.mark(Dirty::Group(id));
        if let Some(sender_key) = &sealed.sender_key {
            let control = Content::GroupControl {
                control: sender_key.message.expose_secret().to_vec(),
            };
            for member in &sender_key.recipients {
                self.send_pairwise(member, &control, false)?;
            }
        }
        let id = MessageId::random();
        for (i, chunk) in recipients.chunks(self.max_recipients.max(1)).enumerate() {
            let chunk_id = if i == 0 { id } else { MessageId::random() };
            self.push_outbox(chunk_id, chunk.to_vec(), sealed.envelope.clone(), i == 0);
        }
        Ok(id)
    }
}
