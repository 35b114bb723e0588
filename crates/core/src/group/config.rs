//! Group configuration: the rotation policy and the retention bounds, with documented defaults.
//!
//! | setting | default | why |
//! |---|---|---|
//! | `rotate_after_messages` | 1 000 | messages sealed or opened in an epoch by this member before [`Group::rotation_due`](crate::Group::rotation_due) |
//! | `rotate_after_secs` | 604 800 (7 days) | epoch age before rotation is due |
//! | `max_past_epochs` | 4 | superseded epochs kept for late messages and for resolving conflicts |
//! | `past_epoch_secs` | 604 800 (7 days) | how long a superseded epoch (and any skipped key) is kept |
//! | `max_forward_jump` | 2 000 | as for sessions: caps the work a forged counter can cause |
//! | `max_skipped_per_sender` | 1 000 | skipped keys kept per sender and epoch |
//! | `max_skipped_per_epoch` | 5 000 | skipped keys kept per epoch, all senders together |
//! | `max_pending_sender_keys` | 2 000 | sender keys held for epochs whose commit has not arrived |
//!
//! Memory is bounded by `(1 + max_past_epochs) × (members × 120 B + max_skipped_per_epoch ×
//! 80 B)` plus the pending sender keys: about 2.5 MB for a full group of 1 000 members with
//! every bound reached, a few kilobytes for a typical small group.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Rotation policy and retention bounds of a group. Local to each member (not part of the
/// protocol), stored with the group state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupConfig {
    /// Rotation is due after this many messages sealed or opened by this member in the
    /// current epoch.
    pub rotate_after_messages: u32,
    /// Rotation is due when the current epoch is this old (seconds, from when this member
    /// entered it).
    pub rotate_after_secs: u64,
    /// Superseded epochs kept for late messages and conflict resolution (at least 1).
    pub max_past_epochs: u32,
    /// Seconds a superseded epoch, and any skipped message key, is kept.
    pub past_epoch_secs: u64,
    /// Maximum message keys skipped at once in one sender chain ([`Error::TooFarAhead`]).
    pub max_forward_jump: u32,
    /// Maximum skipped keys kept per sender and epoch (oldest evicted first).
    pub max_skipped_per_sender: u32,
    /// Maximum skipped keys kept per epoch over all senders (oldest evicted first).
    pub max_skipped_per_epoch: u32,
    /// Maximum sender keys held for epochs this member has not entered yet (oldest dropped).
    pub max_pending_sender_keys: u32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            rotate_after_messages: 1_000,
            rotate_after_secs: 7 * 24 * 3600,
            max_past_epochs: 4,
            past_epoch_secs: 7 * 24 * 3600,
            max_forward_jump: 2_000,
            max_skipped_per_sender: 1_000,
            max_skipped_per_epoch: 5_000,
            max_pending_sender_keys: 2_000,
        }
    }
}

impl GroupConfig {
    /// Checks that every value is in range.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first value out of range.
    pub fn validate(&self) -> Result<()> {
        if self.rotate_after_messages == 0 {
            return Err(Error::InvalidConfig(
                "rotate_after_messages must be at least 1",
            ));
        }
        if self.max_past_epochs == 0 || self.max_past_epochs > 64 {
            return Err(Error::InvalidConfig("max_past_epochs must be 1 to 64"));
        }
        if self.max_forward_jump == 0 {
            return Err(Error::InvalidConfig("max_forward_jump must be at least 1"));
        }
        if self.max_skipped_per_sender > self.max_skipped_per_epoch {
            return Err(Error::InvalidConfig(
                "max_skipped_per_sender must not exceed max_skipped_per_epoch",
            ));
        }
        Ok(())
    }
}
