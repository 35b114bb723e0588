//! Saving and restoring a [`Group`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::config::GroupConfig;
use super::control::GroupId;
use super::history::{EpochState, EpochStateWire};
use super::sender_keys::PendingSenderKey;
use super::state::Group;
use crate::error::{Error, Result};
use crate::identity::{PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::secret::SecretBytes;

/// Format version of serialized [`Group`] state.
const GROUP_STATE_VERSION: u16 = 1;

#[derive(Serialize, Deserialize)]
struct GroupState {
    version: u16,
    #[serde(with = "crate::encoding::fixed")]
    id: [u8; 16],
    #[serde(with = "crate::encoding::fixed")]
    own: [u8; PUBLIC_IDENTITY_LEN],
    config: GroupConfig,
    epochs: Vec<EpochStateWire>,
    pending: Vec<PendingSenderKey>,
}

impl Group {
    /// Serializes the group (versioned). The result is secret (it holds chain keys): store it
    /// encrypted at rest, and save after every successful call. Restoring an older copy lets
    /// messages opened since then open again.
    pub fn to_bytes(&self) -> SecretBytes {
        let state = GroupState {
            version: GROUP_STATE_VERSION,
            id: *self.id.as_bytes(),
            own: self.own.to_bytes(),
            config: self.config.clone(),
            epochs: self.epochs.values().map(EpochState::to_wire).collect(),
            pending: self.pending.clone(),
        };
        SecretBytes::new(crate::state::encode(&state))
    }

    /// Restores a group serialized by [`Group::to_bytes`]. Every identity is verified again and
    /// every state hash recomputed; the epochs must form one chain.
    ///
    /// # Errors
    /// [`Error::InvalidState`] or [`Error::UnsupportedStateVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Group> {
        let state: GroupState = crate::state::decode(bytes, GROUP_STATE_VERSION)?;
        state
            .config
            .validate()
            .map_err(|_| Error::InvalidState("group configuration"))?;
        let own = PublicIdentity::from_bytes(&state.own)
            .map_err(|_| Error::InvalidState("group member identity"))?;
        let mut identities = HashMap::new();
        let mut epochs = BTreeMap::new();
        let mut previous: Option<(u32, [u8; 32])> = None;
        for wire in state.epochs {
            let epoch = EpochState::from_wire(wire, &state.id, own.signing_key(), &mut identities)?;
            if let Some((number, hash)) = previous
                && (Some(epoch.epoch) != number.checked_add(1) || epoch.parent_hash != hash)
            {
                return Err(Error::InvalidState("group epochs do not form a chain"));
            }
            previous = Some((epoch.epoch, epoch.state_hash));
            epochs.insert(epoch.epoch, epoch);
        }
        if epochs.is_empty() {
            return Err(Error::InvalidState("group without an epoch"));
        }
        Ok(Group {
            id: GroupId::from_bytes(state.id),
            own,
            config: state.config,
            epochs,
            pending: state.pending,
        })
    }
}
