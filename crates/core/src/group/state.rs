//! [`Group`]: one member's state of a group, and the membership operations (create, join,
//! commit, receive control messages). Sender keys are in `sender_keys`, messaging in
//! `messaging`, persistence in `persist`.

use std::collections::BTreeMap;

use super::config::GroupConfig;
use super::control::{Commit, ControlBody, ControlWire, GroupId, MAX_CONTROL_LEN, SignedCommit};
use super::history::{Applied, EpochState};
use super::roster::{Change, Member, MemberRole, WireChange};
use super::sender_keys::PendingSenderKey;
use super::{CommitOutput, ControlOutcome};
use crate::error::{Error, Result};
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::time::Timestamp;

/// One member's state of a group: the member list and roles of the current epoch, its own
/// sending chain, the sender keys of the other members, and a bounded history of earlier
/// epochs for late messages and conflict resolution.
///
/// Every method that takes input from the network is all-or-nothing: on `Err` the group is
/// exactly as it was. Persist it with [`Group::to_bytes`] after every successful call.
///
/// Group envelopes are opened with [`Group::open`], or, when several arrive together, with
/// [`Group::open_batch`]: the same results as opening each in turn, with the envelopes'
/// signatures verified by one batch equation, at a lower cost per envelope (its documentation
/// states the one, sender-only, difference).
pub struct Group {
    pub(super) id: GroupId,
    pub(super) own: PublicIdentity,
    pub(super) config: GroupConfig,
    /// Consecutive epochs of this member's chain; the last is the current epoch.
    pub(super) epochs: BTreeMap<u32, EpochState>,
    /// Sender keys for epochs not (yet) on this member's chain, oldest first.
    pub(super) pending: Vec<PendingSenderKey>,
}

impl core::fmt::Debug for Group {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.id)
            .field("epoch", &self.epoch())
            .field("members", &self.members().len())
            .finish_non_exhaustive()
    }
}

impl Group {
    /// Creates a group with `identity` as its only member and admin, in epoch 0, with a random
    /// group id. Add members with [`Group::commit`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `config` is out of range.
    pub fn create<R: rand_core::CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        config: GroupConfig,
        rng: &mut R,
        now: Timestamp,
    ) -> Result<Group> {
        config.validate()?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let genesis = EpochState::genesis(&id, identity.public().clone(), now);
        Ok(Group {
            id: GroupId::from_bytes(id),
            own: identity.public().clone(),
            config,
            epochs: BTreeMap::from([(0, genesis)]),
            pending: Vec::new(),
        })
    }

    /// Joins a group from a welcome that `from` sent over their pairwise session. `me` is this
    /// member's own public identity; `from` must be the authenticated peer of that session.
    ///
    /// The welcome carries the previous epoch's member list and the signed commit that adds
    /// this member; the commit is checked exactly as existing members check it. A joining
    /// member cannot verify the group's history before that epoch: it trusts the admin who
    /// added it (as in every sender-key design), and the state hash it then shares with every
    /// member binds that history.
    ///
    /// # Errors
    /// [`Error::UnexpectedKind`] if the bytes are not a welcome; [`Error::Malformed`],
    /// [`Error::InvalidSignature`], [`Error::NotAuthorized`] (the commit is not valid, or was
    /// not sent by its committer); [`Error::InvalidChange`] if it does not add `me`.
    pub fn join(
        me: &PublicIdentity,
        from: &PublicIdentity,
        welcome: &[u8],
        config: GroupConfig,
        now: Timestamp,
    ) -> Result<Group> {
        config.validate()?;
        let wire = ControlWire::decode(welcome)?;
        let ControlBody::Welcome { parent, commit } = wire.body else {
            return Err(Error::UnexpectedKind(
                "not a welcome: give it to Group::receive",
            ));
        };
        let decoded = commit.decode()?;
        let parent_state = EpochState::from_summary(&decoded.group_id, &parent, now)?;
        let applied =
            parent_state.apply(&decoded.group_id, &commit, &decoded, me.signing_key(), now)?;
        if &applied.committer != from {
            return Err(Error::NotAuthorized(
                "a welcome must come from the admin whose commit it carries",
            ));
        }
        let added = applied
            .changes
            .iter()
            .any(|change| matches!(change, Change::Add(identity, _) if identity == me));
        if !added {
            return Err(Error::InvalidChange("the welcome does not add this member"));
        }
        Ok(Group {
            id: GroupId::from_bytes(decoded.group_id),
            own: me.clone(),
            config,
            epochs: BTreeMap::from([(decoded.epoch, applied.state)]),
            pending: Vec::new(),
        })
    }

    /// The group id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// This member's identity.
    pub fn own_identity(&self) -> &PublicIdentity {
        &self.own
    }

    /// The current epoch.
    pub fn epoch(&self) -> u32 {
        self.current().epoch
    }

    /// The members of the current epoch, sorted by identity key.
    pub fn members(&self) -> &[Member] {
        self.current().roster.members()
    }

    /// The role of `identity` in the current epoch, if it is a member.
    pub fn role_of(&self, identity: &PublicIdentity) -> Option<MemberRole> {
        let roster = &self.current().roster;
        let member = roster.get(roster.index_of(identity.signing_key())?)?;
        (member.identity() == identity).then(|| member.role())
    }

    /// False once a commit removing this member has been applied.
    pub fn is_member(&self) -> bool {
        self.current().own_index.is_some()
    }

    /// The current epoch's state hash: it commits to the group id, the epoch, the whole
    /// history and the member list. Members that show the same value are in the same state;
    /// comparing it out of band detects a silent fork.
    pub fn state_hash(&self) -> [u8; 32] {
        self.current().state_hash
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// True when the rotation policy asks for a new epoch: this member sealed or opened
    /// `rotate_after_messages` messages in the current epoch, or entered it
    /// `rotate_after_secs` ago. Rotate with [`Group::commit`] and no changes (any member may).
    pub fn rotation_due(&self, now: Timestamp) -> bool {
        let current = self.current();
        let messages = current.sealed.saturating_add(current.opened);
        messages >= self.config.rotate_after_messages
            || now.secs_since(current.entered_at) >= self.config.rotate_after_secs
    }

    /// The commit that started `epoch` (if that epoch is still held), as a control message, to
    /// resend to a member that missed it: a member stuck on [`Error::EpochAhead`] catches up
    /// with the commits it lacks, and one that already has it answers
    /// [`ControlOutcome::Duplicate`].
    pub fn commit_message(&self, epoch: u32) -> Option<Vec<u8>> {
        let commit = self.epochs.get(&epoch)?.commit.clone()?;
        ControlWire::new(ControlBody::Commit(commit))
            .encode_public()
            .ok()
    }

    /// The welcome of the commit that started `epoch`, to resend to a member it added that
    /// lost it. Only the committer's copy is accepted by [`Group::join`], so this returns
    /// `None` unless this member made that commit (or if the epoch before it is no longer
    /// held).
    pub fn welcome_message(&self, epoch: u32) -> Option<Vec<u8>> {
        let state = self.epochs.get(&epoch)?;
        if state.committer != *self.own.signing_key() {
            return None;
        }
        let parent = self.epochs.get(&epoch.checked_sub(1)?)?;
        let commit = state.commit.clone()?;
        ControlWire::new(ControlBody::Welcome {
            parent: parent.summary(),
            commit,
        })
        .encode_public()
        .ok()
    }

    pub(super) fn current(&self) -> &EpochState {
        match self.epochs.last_key_value() {
            Some((_, state)) => state,
            None => unreachable!("a group always holds its current epoch"),
        }
    }

    /// Commits `changes` (none for a key rotation), signed with `identity`, and moves this
    /// member to the new epoch at once.
    ///
    /// Send [`CommitOutput::commit`] to every member of the previous epoch and
    /// [`CommitOutput::welcome`] to the added members, over the pairwise sessions. The cost of
    /// a change is one pairwise message per member; each member's next group message then
    /// carries its fresh sender key.
    ///
    /// # Errors
    /// [`Error::NotAuthorized`] for a membership change by a non-admin (members may only
    /// rotate or remove themselves); [`Error::InvalidChange`] for a change that does not apply;
    /// [`Error::NotAMember`] if this member was removed; [`Error::InvalidConfig`] if `identity`
    /// is not this group's member.
    pub fn commit(
        &mut self,
        identity: &IdentityKeyPair,
        changes: &[Change],
        now: Timestamp,
    ) -> Result<CommitOutput> {
        if identity.public() != &self.own {
            return Err(Error::InvalidConfig(
                "the identity given is not this group's member",
            ));
        }
        let current = self.current();
        if current.own_index.is_none() {
            return Err(Error::NotAMember("this member was removed from the group"));
        }
        let epoch = current
            .epoch
            .checked_add(1)
            .ok_or(Error::SessionExhausted)?;
        let commit = Commit {
            group_id: *self.id.as_bytes(),
            epoch,
            parent_hash: current.state_hash,
            committer: *self.own.signing_key(),
            changes: changes.iter().map(WireChange::from_change).collect(),
        };
        let signed = SignedCommit::sign(&commit, identity)?;
        let applied = current.apply_own(
            self.id.as_bytes(),
            &signed,
            &commit,
            self.own.signing_key(),
            now,
        )?;
        let added: Vec<PublicIdentity> = applied
            .changes
            .iter()
            .filter_map(|change| match change {
                Change::Add(identity, _) => Some(identity.clone()),
                _ => None,
            })
            .collect();
        let commit_recipients: Vec<PublicIdentity> = current
            .roster
            .members()
            .iter()
            .map(|member| member.identity().clone())
            .filter(|identity| identity != &self.own)
            .collect();
        let welcome = if added.is_empty() {
            None
        } else {
            let welcome = ControlWire::new(ControlBody::Welcome {
                parent: current.summary(),
                commit: signed.clone(),
            })
            .encode_public()?;
            if welcome.len() > MAX_CONTROL_LEN {
                return Err(Error::TooLarge {
                    what: "welcome (add fewer members per commit)",
                    len: welcome.len(),
                    max: MAX_CONTROL_LEN,
                });
            }
            Some(welcome)
        };
        let commit_bytes = ControlWire::new(ControlBody::Commit(signed)).encode_public()?;
        self.enter(applied, now);
        self.prune(now);
        Ok(CommitOutput {
            epoch,
            commit: commit_bytes,
            commit_recipients,
            welcome,
            welcome_recipients: added,
        })
    }

    /// Processes a control message (a commit or a sender key) that arrived over the pairwise
    /// session with `from`. `from` must be that session's authenticated peer: sender keys are
    /// attributed to it.
    ///
    /// Commits are applied in epoch order; a commit for a later epoch is refused with
    /// [`Error::EpochAhead`] (keep it and retry after the missing commit). Two valid commits
    /// for the same epoch are ranked (an admin's before a non-admin's, then the lower
    /// committer identity key, then the lower commit hash) and every member keeps the winner
    /// ([`ControlOutcome::ConflictResolved`], [`ControlOutcome::LostConflict`]). A losing
    /// commit whose committer the winner removes is an error ([`Error::NotAMember`]).
    ///
    /// # Errors
    /// [`Error::WrongGroup`], [`Error::Malformed`], [`Error::UnsupportedVersion`];
    /// for commits [`Error::InvalidSignature`], [`Error::NotAMember`], [`Error::NotAuthorized`],
    /// [`Error::InvalidChange`], [`Error::EpochAhead`], [`Error::UnknownParent`]; for sender
    /// keys [`Error::NotAMember`], [`Error::SenderKeyConflict`], [`Error::UnknownEpoch`],
    /// [`Error::EpochAhead`] (too far ahead, or too many kept aside: retry later),
    /// [`Error::Malformed`], and [`Error::UnexpectedKind`] for this member's own sender key;
    /// [`Error::UnexpectedKind`] for a welcome (use [`Group::join`]).
    pub fn receive(
        &mut self,
        from: &PublicIdentity,
        control: &[u8],
        now: Timestamp,
    ) -> Result<ControlOutcome> {
        let wire = ControlWire::decode(control)?;
        let outcome = match wire.body {
            ControlBody::Commit(signed) => self.receive_commit(&signed, now)?,
            ControlBody::SenderKey(key) => self.receive_sender_key(from, key, now)?,
            ControlBody::Welcome { .. } => {
                return Err(Error::UnexpectedKind("a welcome: give it to Group::join"));
            }
        };
        self.prune(now);
        Ok(outcome)
    }

    fn receive_commit(&mut self, signed: &SignedCommit, now: Timestamp) -> Result<ControlOutcome> {
        let commit = signed.decode()?;
        if commit.group_id != *self.id.as_bytes() {
            return Err(Error::WrongGroup);
        }
        let current = self.epoch();
        let parent = commit
            .epoch
            .checked_sub(1)
            .and_then(|parent| self.epochs.get(&parent))
            .filter(|parent| !parent.is_expired(now, self.config.past_epoch_secs))
            .filter(|parent| parent.state_hash == commit.parent_hash);
        let Some(parent) = parent else {
            // Epochs past their grace period count as erased, pruned or not.
            let grace = self.config.past_epoch_secs;
            let oldest = self
                .epochs
                .values()
                .find(|state| !state.is_expired(now, grace))
                .map_or(current, |state| state.epoch);
            return Err(if commit.epoch > current.saturating_add(1) {
                Error::EpochAhead {
                    epoch: commit.epoch,
                    current,
                }
            } else if commit.epoch <= oldest {
                Error::UnknownEpoch {
                    epoch: commit.epoch,
                }
            } else {
                Error::UnknownParent {
                    epoch: commit.epoch,
                }
            });
        };
        let existing = self.epochs.get(&commit.epoch);
        if existing.is_some_and(|state| state.commit_hash == signed.hash()) {
            return Ok(ControlOutcome::Duplicate);
        }
        let applied = parent.apply(
            self.id.as_bytes(),
            signed,
            &commit,
            self.own.signing_key(),
            now,
        )?;
        if let Some(existing) = existing
            && applied.state.rank() >= existing.rank()
        {
            if existing.removed_by_commit(&commit.committer) {
                return Err(Error::NotAMember(
                    "the committer was removed by the commit already applied for that epoch",
                ));
            }
            return Ok(ControlOutcome::LostConflict {
                epoch: commit.epoch,
            });
        }
        let epoch = applied.state.epoch;
        let committer = applied.committer.clone();
        let changes = applied.changes.clone();
        Ok(match self.enter(applied, now) {
            None => ControlOutcome::EpochStarted {
                epoch,
                committer,
                changes,
            },
            Some(abandoned_messages) => ControlOutcome::ConflictResolved {
                epoch,
                committer,
                changes,
                abandoned_messages,
            },
        })
    }

    /// Moves to the epoch `applied` starts (already validated against its parent, which is on
    /// this member's chain). Returns, if epochs were abandoned for it, how many messages this
    /// member had sealed in them.
    fn enter(&mut self, applied: Applied, now: Timestamp) -> Option<u32> {
        let Applied { state, changes, .. } = applied;
        let abandoned: Vec<u32> = self.epochs.range(state.epoch..).map(|(&e, _)| e).collect();
        let reorganized = (!abandoned.is_empty()).then(|| {
            abandoned
                .iter()
                .filter_map(|epoch| self.epochs.remove(epoch))
                .map(|dropped| dropped.sealed)
                .fold(0u32, u32::saturating_add)
        });
        if let Some(parent) = self.epochs.values_mut().next_back() {
            parent.superseded_at.get_or_insert(now);
            parent.sending = None;
        }
        let removed: Vec<[u8; 32]> = changes
            .iter()
            .filter_map(|change| match change {
                Change::Remove(identity) => Some(*identity.signing_key()),
                _ => None,
            })
            .collect();
        let new_epoch = state.epoch;
        for epoch in self.epochs.values_mut() {
            epoch.unrevoke_from(new_epoch);
            epoch.revoke(&removed, new_epoch);
        }
        let (epoch, state_hash) = (state.epoch, state.state_hash);
        self.epochs.insert(epoch, state);
        self.install_pending(epoch, state_hash);
        reorganized
    }

    /// Applies the retention bounds: expired skipped keys, superseded epochs beyond the count
    /// or age bound, stale pending sender keys.
    pub(super) fn prune(&mut self, now: Timestamp) {
        let grace = self.config.past_epoch_secs;
        for state in self.epochs.values_mut() {
            for (sender, counter) in state.skipped.prune_expired(now, grace) {
                if let Some(chain) = state.receiving.get_mut(&sender) {
                    chain.note_discarded(counter);
                }
            }
        }
        let current = self.epoch();
        let max_past = self.config.max_past_epochs as usize;
        // Only a prefix is removed, so the epochs held stay consecutive (the current epoch is
        // the last, so `len - 1` epochs are past ones).
        loop {
            let past = self.epochs.len() - 1;
            let Some(oldest) = self.epochs.first_entry() else {
                break;
            };
            if *oldest.key() >= current
                || (past <= max_past && !oldest.get().is_expired(now, grace))
            {
                break;
            }
            oldest.remove();
        }
        let oldest = self.epochs.keys().next().copied().unwrap_or(current);
        self.pending.retain(|pending| {
            pending.key.epoch >= oldest && now.secs_since(pending.received_at) < grace
        });
    }
}
