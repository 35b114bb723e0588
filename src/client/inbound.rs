//! Receiving: routing a delivery to its session or group, the inbox, and what is kept aside
//! until the control message it needs arrives.

use sealwire_core::{
    Account, ControlKind, ControlMessage, ControlOutcome, EnvelopeHeader, EnvelopeKind, Group,
    GroupEnvelopeHeader, GroupId, PublicIdentity,
};
use std::collections::hash_map::Entry;

use sealwire_transport::frame::{Delivery, MailboxId};

use super::Event;
use super::actor::{Actor, Outgoing, now};
use super::content::Content;
use super::profile::unix_now;
use super::state::{Dirty, GroupEntry, InboxRecord, ParkedRecord};
use crate::error::{Error, Result};

/// The kind byte (offset 2) of a group envelope (`spec/groups.md`).
const GROUP_ENVELOPE_KIND: u8 = 2;

/// What became of one envelope or control message.
pub(super) enum Step {
    /// Processed.
    Done,
    /// Cannot be processed yet: keep it aside for `group`.
    Park(GroupId),
    /// Unreadable: dropped.
    Drop(Error),
}

impl From<sealwire_core::Error> for Step {
    fn from(error: sealwire_core::Error) -> Step {
        Step::Drop(Error::Protocol(error))
    }
}

impl Actor {
    /// Processes a delivery (unless it was seen before) and acknowledges it. The ack goes out
    /// only after the resulting state is committed.
    pub(super) fn receive(&mut self, delivery: Delivery) -> Result<()> {
        let key = (delivery.from, delivery.id);
        let fresh = match self.state.seen.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(unix_now());
                true
            }
            Entry::Occupied(_) => false,
        };
        if fresh {
            self.state.mark(Dirty::Seen(key.0, key.1));
            match self.process(delivery.from, &delivery.payload, None) {
                Step::Done => {}
                Step::Park(group) => self.park(group, delivery.from, None, delivery.payload),
                Step::Drop(error) => self.emit(Event::Dropped {
                    from: delivery.from,
                    error,
                }),
            }
            self.wake_parked()?;
        }
        self.submit(Outgoing::Ack(vec![delivery.delivery]));
        Ok(())
    }

    /// Routes one payload: a group envelope, or a pairwise envelope. `control_from` is set
    /// when retrying a parked control message (already decrypted; the payload is the control
    /// message and this its pairwise sender).
    fn process(
        &mut self,
        from: MailboxId,
        payload: &[u8],
        control_from: Option<&PublicIdentity>,
    ) -> Step {
        if let Some(sender) = control_from {
            return self.process_control(sender, payload);
        }
        if payload.get(2) == Some(&GROUP_ENVELOPE_KIND) {
            self.process_group_envelope(from, payload)
        } else {
            self.process_pairwise(from, payload)
        }
    }

    fn process_pairwise(&mut self, from: MailboxId, payload: &[u8]) -> Step {
        let header = match EnvelopeHeader::parse(payload) {
            Ok(header) => header,
            Err(error) => return error.into(),
        };
        let session_id = header.session_id();
        let now = now();
        let (peer, plaintext) = if let Some(entry) = self.state.sessions.get_mut(&session_id) {
            if entry.peer != from {
                return Step::Drop(Error::SenderMismatch);
            }
            match entry.session.open(payload, now) {
                Ok(plaintext) => (entry.session.peer_identity().clone(), plaintext),
                Err(error) => return error.into(),
            }
        } else if header.kind() == EnvelopeKind::Initial {
            let snapshot = self.state.account.to_bytes();
            let accepted = match self.state.account.accept(payload, now) {
                Ok(accepted) => accepted,
                Err(error) => return error.into(),
            };
            if MailboxId::of(&accepted.peer) != from {
                // Someone replays another sender's first message: undo the setup.
                match Account::from_bytes(snapshot.expose_secret()) {
                    Ok(account) => self.state.account = account,
                    Err(error) => {
                        tracing::error!(%error, "restoring the account failed");
                        self.state.mark(Dirty::Account);
                    }
                }
                return Step::Drop(Error::SenderMismatch);
            }
            self.state.mark(Dirty::Account);
            self.add_session(from, accepted.session);
            (accepted.peer, accepted.plaintext)
        } else {
            return Step::Drop(Error::NoSession);
        };
        let plaintext = zeroize::Zeroizing::new(plaintext);
        self.state.mark(Dirty::Session(session_id));
        self.prefer_session(from, session_id);
        let mut content = match Content::decode(&plaintext) {
            Ok(content) => content,
            Err(error) => return Step::Drop(Error::Content(error)),
        };
        match &mut content {
            Content::Message { sent_at, body } => {
                let body = core::mem::take(body);
                self.store_incoming(&peer, None, body, *sent_at);
                Step::Done
            }
            Content::GroupControl { control } => {
                // A sender key holds a chain key: wiped when dropped, unless kept aside.
                let mut control = zeroize::Zeroizing::new(core::mem::take(control));
                match self.process_control(&peer, &control) {
                    Step::Park(group) => {
                        self.park(group, from, Some(&peer), core::mem::take(&mut *control));
                        Step::Done
                    }
                    step => step,
                }
            }
        }
    }

    /// Chooses the session to send on when a peer has several (both sides started one at
    /// the same time): a session that just received becomes the one in use if there is none
    /// or if its id is lower, so both sides settle on the same one.
    fn prefer_session(&mut self, peer: MailboxId, session_id: sealwire_core::SessionId) {
        let switch = match self.state.active.get(&peer) {
            None => true,
            Some(current) => {
                *current != session_id
                    && (session_id < *current || !self.state.sessions.contains_key(current))
            }
        };
        if switch {
            self.state.active.insert(peer, session_id);
            self.state.mark(Dirty::Active(peer));
        }
    }

    fn store_incoming(
        &mut self,
        sender: &PublicIdentity,
        group: Option<GroupId>,
        body: Vec<u8>,
        sent_at: u64,
    ) {
        let seq = self.state.next_seq();
        self.state.inbox.insert(
            seq,
            InboxRecord {
                from: sender.to_bytes().to_vec(),
                group: group.map(|id| *id.as_bytes()),
                body,
                sent_at,
                received_at: unix_now(),
            },
        );
        self.state.mark(Dirty::Inbox(seq));
        if let Some(incoming) = self.incoming(seq) {
            self.emit(Event::Message(incoming));
        }
    }

    /// A group control message from the pairwise peer `sender`.
    fn process_control(&mut self, sender: &PublicIdentity, control: &[u8]) -> Step {
        let message = match ControlMessage::parse(control) {
            Ok(message) => message,
            Err(error) => return error.into(),
        };
        let group_id = message.group_id();
        let now = now();
        if message.kind() == ControlKind::Welcome {
            // A welcome for a group this client is in is a duplicate; one for a group it was
            // removed from adds it back.
            if self
                .state
                .groups
                .get(&group_id)
                .is_some_and(|entry| entry.group.is_member())
            {
                return Step::Done;
            }
            let own = self.state.own_identity().clone();
            return match Group::join(&own, sender, control, self.options.group.clone(), now) {
                Ok(group) => {
                    let label = self.state.groups.get(&group_id).map_or_else(
                        || group_id.to_string().chars().take(8).collect(),
                        |old| old.label.clone(),
                    );
                    self.state
                        .groups
                        .insert(group_id, GroupEntry { group, label });
                    self.state.mark(Dirty::Group(group_id));
                    self.woken.insert(group_id);
                    self.emit(Event::GroupJoined {
                        group: group_id,
                        by: sender.clone(),
                    });
                    Step::Done
                }
                Err(error) => error.into(),
            };
        }
        let Some(entry) = self.state.groups.get_mut(&group_id) else {
            return Step::Park(group_id);
        };
        match entry.group.receive(sender, control, now) {
            Ok(outcome) => {
                let still_member = entry.group.is_member();
                self.state.mark(Dirty::Group(group_id));
                self.woken.insert(group_id);
                match outcome {
                    ControlOutcome::EpochStarted {
                        committer, changes, ..
                    }
                    | ControlOutcome::ConflictResolved {
                        committer, changes, ..
                    } => {
                        self.emit(if still_member {
                            Event::GroupChanged {
                                group: group_id,
                                by: committer,
                                changes,
                            }
                        } else {
                            Event::RemovedFromGroup {
                                group: group_id,
                                by: committer,
                            }
                        });
                    }
                    _ => {}
                }
                Step::Done
            }
            Err(
                sealwire_core::Error::EpochAhead { .. }
                | sealwire_core::Error::UnknownParent { .. },
            ) => Step::Park(group_id),
            Err(error) => error.into(),
        }
    }

    fn process_group_envelope(&mut self, from: MailboxId, payload: &[u8]) -> Step {
        let header = match GroupEnvelopeHeader::parse(payload) {
            Ok(header) => header,
            Err(error) => return error.into(),
        };
        let group_id = header.group_id();
        let Some(entry) = self.state.groups.get_mut(&group_id) else {
            return Step::Park(group_id);
        };
        if !entry.group.is_member() {
            return Step::Drop(Error::Protocol(sealwire_core::Error::NotAMember(
                "this client was removed from the group",
            )));
        }
        // Opening uses up the message key: keep the state to put back if the envelope
        // turns out to come from another account than its signer (a re-sent copy).
        let snapshot = entry.group.to_bytes();
        let opened = match entry.group.open(payload, now()) {
            Ok(opened) => opened,
            Err(
                sealwire_core::Error::MissingSenderKey { .. }
                | sealwire_core::Error::EpochAhead { .. }
                | sealwire_core::Error::OtherBranch { .. },
            ) => return Step::Park(group_id),
            Err(error) => return error.into(),
        };
        if MailboxId::of(&opened.sender) != from {
            match Group::from_bytes(snapshot.expose_secret()) {
                Ok(group) => entry.group = group,
                Err(error) => {
                    tracing::error!(%error, "restoring a group state failed");
                    self.state.mark(Dirty::Group(group_id));
                }
            }
            return Step::Drop(Error::SenderMismatch);
        }
        self.state.mark(Dirty::Group(group_id));
        let mut content = match Content::decode(&opened.plaintext) {
            Ok(content) => content,
            Err(error) => return Step::Drop(Error::Content(error)),
        };
        match &mut content {
            Content::Message { sent_at, body } => {
                let body = core::mem::take(body);
                self.store_incoming(&opened.sender, Some(group_id), body, *sent_at);
                Step::Done
            }
            Content::GroupControl { .. } => {
                Step::Drop(Error::Content(super::content::ContentError::Malformed))
            }
        }
    }

    /// Keeps a payload aside until its group can process it. Over the sender's limit, the
    /// sender's oldest item is given up; over the total limit, the oldest of all.
    fn park(
        &mut self,
        group: GroupId,
        from: MailboxId,
        sender: Option<&PublicIdentity>,
        payload: Vec<u8>,
    ) {
        let senders: Vec<u64> = self
            .state
            .parked
            .iter()
            .filter(|(_, record)| record.from == from.0)
            .map(|(&seq, _)| seq)
            .collect();
        let excess = (senders.len() + 1).saturating_sub(self.options.max_parked_per_sender.max(1));
        for &seq in senders.iter().take(excess) {
            self.give_up_parked(seq);
        }
        while self.state.parked.len() >= self.options.max_parked.max(1) {
            let Some((&oldest, _)) = self.state.parked.iter().next() else {
                break;
            };
            self.give_up_parked(oldest);
        }
        let seq = self.state.next_seq();
        self.state.parked.insert(
            seq,
            ParkedRecord {
                group: *group.as_bytes(),
                from: from.0,
                sender: sender.map(|s| s.to_bytes().to_vec()),
                payload,
                parked_at: unix_now(),
            },
        );
        self.state.mark(Dirty::Parked(seq));
    }

    fn give_up_parked(&mut self, seq: u64) {
        if let Some(record) = self.state.parked.remove(&seq) {
            self.state.mark(Dirty::Parked(seq));
            self.emit(Event::Dropped {
                from: MailboxId(record.from),
                error: Error::ParkedTooLong,
            });
        }
    }

    /// Gives up what was kept aside longer than the options allow.
    pub(super) fn expire_parked(&mut self, now_secs: u64) {
        let limit = self.options.park_for.as_secs();
        let old: Vec<u64> = self
            .state
            .parked
            .iter()
            .filter(|(_, record)| now_secs.saturating_sub(record.parked_at) > limit)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in old {
            self.give_up_parked(seq);
        }
    }

    /// Retries what was kept aside for every group that changed, until nothing more opens.
    fn wake_parked(&mut self) -> Result<()> {
        while let Some(&group) = self.woken.iter().next() {
            self.woken.remove(&group);
            let waiting: Vec<u64> = self
                .state
                .parked
                .iter()
                .filter(|(_, record)| record.group == *group.as_bytes())
                .map(|(&seq, _)| seq)
                .collect();
            for seq in waiting {
                let Some(record) = self.state.parked.get(&seq).cloned() else {
                    continue;
                };
                let sender = match record.sender.as_deref() {
                    Some(bytes) => Some(self.state.stored_identity(bytes)?),
                    None => None,
                };
                let step = self.process(MailboxId(record.from), &record.payload, sender.as_ref());
                match step {
                    Step::Park(_) => {}
                    Step::Done => {
                        self.state.parked.remove(&seq);
                        self.state.mark(Dirty::Parked(seq));
                    }
                    Step::Drop(error) => {
                        self.state.parked.remove(&seq);
                        self.state.mark(Dirty::Parked(seq));
                        self.emit(Event::Dropped {
                            from: MailboxId(record.from),
                            error,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
