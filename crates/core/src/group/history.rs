//! A member's view of one group epoch, and how a commit turns one epoch into the next.
//!
//! Epochs form a chain through their state hashes. When two valid commits build on the same
//! parent (two admins changed the group at once), every member keeps the one that ranks first
//! ([`EpochState::rank`]). A member that applied the other commit first switches when it sees
//! the winner, so all members that receive both commits converge on the same chain.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::chain::{ReceivingChain, SendingChain};
use super::control::{Commit, SignedCommit, WireSummary, state_hash};
use super::roster::{Change, MemberRole, Roster, Seniority, WireMember};
use crate::error::{Error, Result};
use crate::identity::PublicIdentity;
use crate::replay::SkippedKeys;
use crate::time::Timestamp;

/// One epoch as this member holds it: its public description and its keys.
pub(crate) struct EpochState {
    pub(crate) epoch: u32,
    pub(crate) parent_hash: [u8; 32],
    pub(crate) commit_hash: [u8; 32],
    pub(crate) state_hash: [u8; 32],
    /// Whether the commit that started this epoch was made by an admin (for conflict ranking).
    pub(crate) admin_commit: bool,
    /// The Ed25519 identity key of that commit's committer.
    pub(crate) committer: [u8; 32],
    /// The committer's seniority in the parent epoch (for conflict ranking).
    pub(crate) committer_since: Seniority,
    /// The signed commit that started this epoch (none for epoch 0), kept to resend it.
    pub(crate) commit: Option<SignedCommit>,
    pub(crate) roster: Roster,
    /// This member's index in the roster; `None` if the commit removed it.
    pub(crate) own_index: Option<u32>,
    pub(crate) sending: Option<SendingChain>,
    /// Receiving chains by sender index.
    pub(crate) receiving: BTreeMap<u32, ReceivingChain>,
    /// Skipped keys by `(sender index, counter)`.
    pub(crate) skipped: SkippedKeys,
    /// Members removed after this epoch: `(index here, epoch whose commit removed them)`. Their
    /// sender keys here are unusable from then on (kept only so that a commit switch that
    /// undoes the removal can restore them; erased with the epoch).
    pub(crate) revoked: Vec<(u32, u32)>,
    pub(crate) entered_at: Timestamp,
    pub(crate) superseded_at: Option<Timestamp>,
    /// Messages this member sealed in the epoch.
    pub(crate) sealed: u32,
    /// Messages this member opened in the epoch.
    pub(crate) opened: u32,
}

/// The outcome of validating a commit against its parent epoch.
pub(crate) struct Applied {
    pub(crate) state: EpochState,
    pub(crate) changes: Vec<Change>,
    pub(crate) committer: PublicIdentity,
}

impl EpochState {
    /// Epoch 0 of a new group: its creator alone, as admin.
    pub(crate) fn genesis(group_id: &[u8; 16], founder: PublicIdentity, now: Timestamp) -> Self {
        let roster = Roster::founder(founder);
        let state_hash = state_hash(group_id, 0, &[0; 32], &[0; 32], &roster);
        EpochState::new(
            0,
            [0; 32],
            [0; 32],
            state_hash,
            (true, [0; 32]),
            roster,
            Some(0),
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        epoch: u32,
        parent_hash: [u8; 32],
        commit_hash: [u8; 32],
        state_hash: [u8; 32],
        (admin_commit, committer): (bool, [u8; 32]),
        roster: Roster,
        own_index: Option<u32>,
        now: Timestamp,
    ) -> Self {
        EpochState {
            epoch,
            parent_hash,
            commit_hash,
            state_hash,
            admin_commit,
            committer,
            committer_since: Seniority { epoch: 0, index: 0 },
            commit: None,
            roster,
            own_index,
            sending: None,
            receiving: BTreeMap::new(),
            skipped: SkippedKeys::default(),
            revoked: Vec::new(),
            entered_at: now,
            superseded_at: None,
            sealed: 0,
            opened: 0,
        }
    }

    /// Conflict rank of the commit that started this epoch; between two commits with the same
    /// parent, the lower rank wins. An admin's commit first; then the more senior committer
    /// (fixed by the parent's member list, so it cannot be ground, and unique among members);
    /// then the committer's identity key and, for two commits by the same committer, the lower
    /// commit hash.
    ///
    /// Seniority makes the outcome of a conflict between admins match their authority: the
    /// only admin that can override a commit after the fact is one more senior than its
    /// committer, which could have removed that committer anyway.
    pub(crate) fn rank(&self) -> (u8, Seniority, [u8; 32], [u8; 32]) {
        (
            u8::from(!self.admin_commit),
            self.committer_since,
            self.committer,
            self.commit_hash,
        )
    }

    /// True if the commit that started this epoch removed the member with identity key `key`.
    pub(crate) fn removed_by_commit(&self, key: &[u8; 32]) -> bool {
        self.roster.index_of(key).is_none()
    }

    /// The public description a welcome carries for this epoch.
    pub(crate) fn summary(&self) -> WireSummary {
        WireSummary {
            epoch: self.epoch,
            parent_hash: self.parent_hash,
            commit_hash: self.commit_hash,
            members: self.roster.to_wire(),
        }
    }

    /// Rebuilds the public part of an epoch from a welcome's summary (no keys). The rank is
    /// unknown and irrelevant: a welcomed member has no competing history.
    pub(crate) fn from_summary(
        group_id: &[u8; 16],
        summary: &WireSummary,
        now: Timestamp,
    ) -> Result<Self> {
        let roster = Roster::from_wire(&summary.members)?;
        let hash = state_hash(
            group_id,
            summary.epoch,
            &summary.parent_hash,
            &summary.commit_hash,
            &roster,
        );
        Ok(EpochState::new(
            summary.epoch,
            summary.parent_hash,
            summary.commit_hash,
            hash,
            (true, [0; 32]),
            roster,
            None,
            now,
        ))
    }

    /// Validates `signed` (already decoded as `commit`) as the commit that follows this epoch,
    /// and builds the epoch it starts. Nothing is modified.
    pub(crate) fn apply(
        &self,
        group_id: &[u8; 16],
        signed: &SignedCommit,
        commit: &Commit,
        own_key: &[u8; 32],
        now: Timestamp,
    ) -> Result<Applied> {
        self.apply_checked(group_id, signed, commit, own_key, now, true)
    }

    /// [`Self::apply`] for a commit this member has just signed itself: every rule is checked
    /// but the signature, which it made.
    pub(crate) fn apply_own(
        &self,
        group_id: &[u8; 16],
        signed: &SignedCommit,
        commit: &Commit,
        own_key: &[u8; 32],
        now: Timestamp,
    ) -> Result<Applied> {
        self.apply_checked(group_id, signed, commit, own_key, now, false)
    }

    fn apply_checked(
        &self,
        group_id: &[u8; 16],
        signed: &SignedCommit,
        commit: &Commit,
        own_key: &[u8; 32],
        now: Timestamp,
        verify_signature: bool,
    ) -> Result<Applied> {
        if commit.group_id != *group_id {
            return Err(Error::WrongGroup);
        }
        if Some(commit.epoch) != self.epoch.checked_add(1) || commit.parent_hash != self.state_hash
        {
            return Err(Error::UnknownParent {
                epoch: commit.epoch,
            });
        }
        let committer_index = self
            .roster
            .index_of(&commit.committer)
            .ok_or(Error::NotAMember(
                "the committer is not a member of the group",
            ))?;
        let committer = self.roster.get(committer_index).ok_or(Error::NotAMember(
            "the committer is not a member of the group",
        ))?;
        if verify_signature {
            signed.verify(committer.identity())?;
        }
        let (roster, changes) =
            self.roster
                .apply(committer_index, &commit.changes, commit.epoch)?;
        let commit_hash = signed.hash();
        let hash = state_hash(
            group_id,
            commit.epoch,
            &self.state_hash,
            &commit_hash,
            &roster,
        );
        let own_index = roster
            .index_of(own_key)
            .and_then(|index| u32::try_from(index).ok());
        let mut state = EpochState::new(
            commit.epoch,
            self.state_hash,
            commit_hash,
            hash,
            (committer.role() == MemberRole::Admin, commit.committer),
            roster,
            own_index,
            now,
        );
        state.commit = Some(signed.clone());
        state.committer_since = committer.since();
        Ok(Applied {
            state,
            changes,
            committer: committer.identity().clone(),
        })
    }

    /// Revokes, in this epoch, the members named in `keys`, removed by the commit of epoch
    /// `by`: their sender keys here are no longer used or accepted, even if they are added back
    /// later.
    pub(crate) fn revoke(&mut self, keys: &[[u8; 32]], by: u32) {
        for key in keys {
            if let Some(index) = self
                .roster
                .index_of(key)
                .and_then(|index| u32::try_from(index).ok())
                && !self.is_revoked(index)
            {
                self.revoked.push((index, by));
            }
        }
    }

    /// Undoes the revocations made by commits of epoch `from` or later (they were abandoned).
    pub(crate) fn unrevoke_from(&mut self, from: u32) {
        self.revoked.retain(|&(_, by)| by < from);
    }

    /// True if the member at `index` was removed from the group after this epoch.
    pub(crate) fn is_revoked(&self, index: u32) -> bool {
        self.revoked.iter().any(|&(revoked, _)| revoked == index)
    }

    /// True if this epoch was superseded `grace` seconds or more before `now`: its keys are
    /// treated as gone even before the next pruning erases them.
    pub(crate) fn is_expired(&self, now: Timestamp, grace: u64) -> bool {
        self.superseded_at
            .is_some_and(|at| now.secs_since(at) >= grace)
    }
}

/// Serialized form of an epoch.
#[derive(Serialize, Deserialize)]
pub(crate) struct EpochStateWire {
    epoch: u32,
    #[serde(with = "crate::encoding::fixed")]
    parent_hash: [u8; 32],
    #[serde(with = "crate::encoding::fixed")]
    commit_hash: [u8; 32],
    admin_commit: bool,
    #[serde(with = "crate::encoding::fixed")]
    committer: [u8; 32],
    committer_since: Seniority,
    commit: Option<SignedCommit>,
    members: Vec<WireMember>,
    sending: Option<SendingChain>,
    receiving: Vec<(u32, ReceivingChain)>,
    skipped: SkippedKeys,
    revoked: Vec<(u32, u32)>,
    entered_at: Timestamp,
    superseded_at: Option<Timestamp>,
    sealed: u32,
    opened: u32,
}

impl EpochState {
    pub(crate) fn to_wire(&self) -> EpochStateWire {
        EpochStateWire {
            epoch: self.epoch,
            parent_hash: self.parent_hash,
            commit_hash: self.commit_hash,
            admin_commit: self.admin_commit,
            committer: self.committer,
            committer_since: self.committer_since,
            commit: self.commit.clone(),
            members: self.roster.to_wire(),
            sending: self.sending.clone(),
            receiving: self
                .receiving
                .iter()
                .map(|(index, chain)| (*index, chain.clone()))
                .collect(),
            skipped: self.skipped.clone(),
            revoked: self.revoked.clone(),
            entered_at: self.entered_at,
            superseded_at: self.superseded_at,
            sealed: self.sealed,
            opened: self.opened,
        }
    }

    /// Restores an epoch. `identities` caches decoded identities across epochs (each is
    /// verified once). The state hash is recomputed, never trusted from storage.
    pub(crate) fn from_wire(
        wire: EpochStateWire,
        group_id: &[u8; 16],
        own_key: &[u8; 32],
        identities: &mut HashMap<[u8; 128], PublicIdentity>,
    ) -> Result<Self> {
        let roster = Roster::from_wire_cached(&wire.members, identities)
            .map_err(|_| Error::InvalidState("group member list"))?;
        if !wire.skipped.is_consistent() {
            return Err(Error::InvalidState("group skipped keys"));
        }
        let member_count = roster.len();
        if wire
            .receiving
            .iter()
            .any(|(index, _)| *index as usize >= member_count)
            || wire
                .revoked
                .iter()
                .any(|&(index, by)| index as usize >= member_count || by <= wire.epoch)
        {
            return Err(Error::InvalidState("group receiving chain"));
        }
        if wire
            .commit
            .as_ref()
            .is_some_and(|commit| commit.hash() != wire.commit_hash)
        {
            return Err(Error::InvalidState("group commit does not match its hash"));
        }
        let hash = state_hash(
            group_id,
            wire.epoch,
            &wire.parent_hash,
            &wire.commit_hash,
            &roster,
        );
        let own_index = roster
            .index_of(own_key)
            .and_then(|index| u32::try_from(index).ok());
        Ok(EpochState {
            epoch: wire.epoch,
            parent_hash: wire.parent_hash,
            commit_hash: wire.commit_hash,
            state_hash: hash,
            admin_commit: wire.admin_commit,
            committer: wire.committer,
            committer_since: wire.committer_since,
            commit: wire.commit,
            roster,
            own_index,
            sending: wire.sending,
            receiving: wire.receiving.into_iter().collect(),
            skipped: wire.skipped,
            revoked: wire.revoked,
            entered_at: wire.entered_at,
            superseded_at: wire.superseded_at,
            sealed: wire.sealed,
            opened: wire.opened,
        })
    }
}
