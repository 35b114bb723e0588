//! Session configuration: the rotation policy and the out-of-order bounds, with documented
//! defaults.
//!
//! | setting | default | libsignal, for comparison |
//! |---|---|---|
//! | `rotate_after_messages` | 100 | none (rotates only on replies) |
//! | `rotate_after_secs` | 86 400 (1 day) | none |
//! | `max_forward_jump` | 2 000 | 25 000 (`MAX_FORWARD_JUMPS`) |
//! | `max_skipped_per_epoch` | 1 000 | 2 000 per chain (`MAX_MESSAGE_KEYS`) |
//! | `max_skipped_total` | 2 000 | 2 000 × 5 chains |
//! | `max_epoch_jump` | 64 | n/a |
//! | `max_skipped_epochs` | 16 | n/a |
//! | `max_receiving_epochs` | 5 | 5 (`MAX_RECEIVER_CHAINS`) |
//! | `max_own_epochs` | 32 | n/a (one ratchet key, kept until the peer answers) |
//! | `grace_secs` | 2 592 000 (30 days) | none (count bounds only) |
//!
//! Why smaller than libsignal: with rotation every 100 messages an honest epoch rarely holds
//! more than a few hundred messages, so a jump of 2 000 already tolerates losing whole epochs'
//! worth; and a forged message with a large counter costs the receiver one HMAC pair per skipped
//! key before it can be rejected, so a lower bound caps that cost (2 000 jumps ≈ 1 ms, against
//! ≈ 10 ms for 25 000). The grace period equals the relay's default store time: a skipped key is
//! kept as long as its message could still be delivered, and no longer.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Rotation policy and out-of-order bounds of a session. Stored with the session state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Start a new sending epoch after this many messages in the current one, even if the peer
    /// is silent.
    pub rotate_after_messages: u32,
    /// Start a new sending epoch when the current one is this old (seconds), even if the peer
    /// is silent. Age is measured with the `now` the caller passes.
    pub rotate_after_secs: u64,
    /// Maximum number of message keys skipped at once inside one epoch; a message further ahead
    /// is rejected with [`Error::TooFarAhead`].
    pub max_forward_jump: u32,
    /// Maximum skipped message keys kept for one epoch (oldest evicted first).
    pub max_skipped_per_epoch: u32,
    /// Maximum skipped message keys kept in total (oldest evicted first).
    pub max_skipped_total: u32,
    /// Maximum number of the peer's epochs skipped at once (epochs whose messages were all
    /// lost, or numbers a peer skipped after messages crossed); an epoch further ahead is
    /// rejected with [`Error::TooFarAhead`]. Must be at least `max_own_epochs`, and should be at
    /// least the peer's `max_own_epochs`: after crossing messages a sender's next epoch number
    /// can skip up to that many children.
    pub max_epoch_jump: u32,
    /// Maximum skipped epoch seeds kept (epochs that were skipped but may still arrive).
    pub max_skipped_epochs: u32,
    /// Maximum peer epochs whose receiving chain is kept open.
    pub max_receiving_epochs: u32,
    /// Maximum own epochs awaiting acknowledgement by the peer. The peer may derive its next
    /// epochs from any own epoch it has seen, so these are never erased; when this many exist,
    /// new epochs (rotations and turns) pause until the peer answers. Also the number of
    /// acknowledged older own epochs kept, within the grace period, for late messages.
    pub max_own_epochs: u32,
    /// Seconds that skipped keys, skipped epochs and superseded epochs are kept.
    pub grace_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            rotate_after_messages: 100,
            rotate_after_secs: 24 * 60 * 60,
            max_forward_jump: 2_000,
            max_skipped_per_epoch: 1_000,
            max_skipped_total: 2_000,
            max_epoch_jump: 64,
            max_skipped_epochs: 16,
            max_receiving_epochs: 5,
            max_own_epochs: 32,
            grace_secs: 30 * 24 * 60 * 60,
        }
    }
}

impl SessionConfig {
    /// Checks that every value is in range.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first value out of range.
    pub fn validate(&self) -> Result<()> {
        let checks: [(bool, &'static str); 8] = [
            (
                (1..u32::MAX).contains(&self.rotate_after_messages),
                "rotate_after_messages must be between 1 and 2^32 - 2",
            ),
            (
                self.rotate_after_secs > 0,
                "rotate_after_secs must be positive",
            ),
            (
                self.max_skipped_per_epoch <= self.max_skipped_total,
                "max_skipped_per_epoch must not exceed max_skipped_total",
            ),
            (
                self.max_skipped_total <= 1_000_000 && self.max_forward_jump <= 1_000_000,
                "skipped-key bounds must be at most 1,000,000",
            ),
            (
                self.max_epoch_jump <= 100_000 && self.max_skipped_epochs <= 10_000,
                "epoch bounds must be at most 100,000 (jump) and 10,000 (skipped)",
            ),
            (
                self.max_receiving_epochs >= 1 && self.max_own_epochs >= 1,
                "max_receiving_epochs and max_own_epochs must be at least 1",
            ),
            (self.grace_secs > 0, "grace_secs must be positive"),
            (
                self.max_epoch_jump >= self.max_own_epochs,
                "max_epoch_jump must be at least max_own_epochs (a peer's epoch numbers may jump that far)",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(Error::InvalidConfig(message)),
            None => Ok(()),
        }
    }
}
