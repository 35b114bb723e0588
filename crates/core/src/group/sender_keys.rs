//! Sender keys arriving over pairwise sessions: stored in their epoch, or kept aside until the
//! commit that starts their epoch arrives.

use serde::{Deserialize, Serialize};

use super::ControlOutcome;
use super::chain::ReceivingChain;
use super::control::WireSenderKey;
use super::state::Group;
use crate::error::{Error, Result};
use crate::identity::{PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::time::Timestamp;

/// Sender keys are kept aside for at most this many epochs ahead of the current one.
pub(crate) const MAX_PENDING_EPOCHS_AHEAD: u32 = 8;
/// Sender keys kept aside per sending member.
pub(crate) const PENDING_PER_SENDER: usize = 4;

/// A sender key kept until the commit that starts its epoch arrives.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct PendingSenderKey {
    #[serde(with = "crate::encoding::fixed")]
    pub(super) from: [u8; PUBLIC_IDENTITY_LEN],
    pub(super) key: WireSenderKey,
    pub(super) received_at: Timestamp,
}

impl Group {
    pub(super) fn receive_sender_key(
        &mut self,
        from: &PublicIdentity,
        key: WireSenderKey,
        now: Timestamp,
    ) -> Result<ControlOutcome> {
        if key.group_id != *self.id.as_bytes() {
            return Err(Error::WrongGroup);
        }
        let epoch = key.epoch;
        let grace = self.config.past_epoch_secs;
        let held = self.epochs.get(&epoch);
        if held.is_some_and(|state| state.is_expired(now, grace)) {
            return Err(Error::UnknownEpoch { epoch });
        }
        if held.is_some_and(|state| state.state_hash == key.state_hash) {
            return self.install_sender_key(from, key);
        }
        let oldest = self.epochs.keys().next().copied().unwrap_or(0);
        if epoch < oldest {
            return Err(Error::UnknownEpoch { epoch });
        }
        let current = self.epoch();
        if epoch > current.saturating_add(MAX_PENDING_EPOCHS_AHEAD) {
            return Err(Error::EpochAhead { epoch, current });
        }
        // A future epoch, or a branch this member does not follow (yet): keep it aside, at
        // most PENDING_PER_SENDER per sender (its oldest dropped first) and
        // `max_pending_sender_keys` in all, so that no peer can push out the others' keys.
        let from_bytes = from.to_bytes();
        let duplicate = self.pending.iter().any(|pending| {
            pending.from == from_bytes
                && pending.key.epoch == epoch
                && pending.key.state_hash == key.state_hash
        });
        if !duplicate {
            let from_sender = self
                .pending
                .iter()
                .filter(|pending| pending.from == from_bytes)
                .count();
            if from_sender >= PENDING_PER_SENDER
                && let Some(oldest) = self.pending.iter().position(|p| p.from == from_bytes)
            {
                self.pending.remove(oldest);
            }
            let cap = self.config.max_pending_sender_keys as usize;
            if self.pending.len() >= cap {
                return Err(Error::EpochAhead { epoch, current });
            }
            self.pending.push(PendingSenderKey {
                from: from_bytes,
                key,
                received_at: now,
            });
        }
        Ok(ControlOutcome::SenderKeyPending { epoch })
    }

    /// Stores a sender key for an epoch on this member's chain.
    fn install_sender_key(
        &mut self,
        from: &PublicIdentity,
        key: WireSenderKey,
    ) -> Result<ControlOutcome> {
        let still_member = self.current().roster.index_of(from.signing_key()).is_some();
        let Some(state) = self.epochs.get_mut(&key.epoch) else {
            return Err(Error::UnknownEpoch { epoch: key.epoch });
        };
        let index = state
            .roster
            .index_of(from.signing_key())
            .filter(|&index| {
                state
                    .roster
                    .get(index)
                    .is_some_and(|m| m.identity() == from)
            })
            .and_then(|index| u32::try_from(index).ok())
            .ok_or(Error::NotAMember(
                "the sender of a sender key is not a member of its epoch",
            ))?;
        if !still_member || state.is_revoked(index) {
            return Err(Error::NotAMember("the sender was removed from the group"));
        }
        if state.own_index.is_none() {
            return Err(Error::NotAMember(
                "this member is not in that epoch (removed before it, or joined after it)",
            ));
        }
        if state.own_index == Some(index) {
            return Err(Error::UnexpectedKind("this member's own sender key"));
        }
        if let Some(existing) = state.receiving.get(&index) {
            return if existing.same_origin(&key.signing_key) {
                Ok(ControlOutcome::Duplicate)
            } else {
                Err(Error::SenderKeyConflict)
            };
        }
        let chain = ReceivingChain::new(key.chain_key, key.counter, key.signing_key)?;
        state.receiving.insert(index, chain);
        Ok(ControlOutcome::SenderKeyAdded {
            epoch: key.epoch,
            sender: from.clone(),
        })
    }

    /// Moves the pending sender keys of `epoch` (on this branch) into it; invalid ones are
    /// dropped.
    pub(super) fn install_pending(&mut self, epoch: u32, state_hash: [u8; 32]) {
        let (ready, rest): (Vec<_>, Vec<_>) = core::mem::take(&mut self.pending)
            .into_iter()
            .partition(|pending| {
                pending.key.epoch == epoch && pending.key.state_hash == state_hash
            });
        self.pending = rest;
        for pending in ready {
            if let Ok(from) = PublicIdentity::from_bytes(&pending.from) {
                // A pending key that does not fit (not a member, conflicting) is dropped, as it
                // would have been rejected had it arrived after the commit.
                let _ = self.install_sender_key(&from, pending.key);
            }
        }
    }
}
