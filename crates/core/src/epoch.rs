//! Epochs: the nodes of the ratchet tree, and the child-seed chains that link them.
//!
//! Every epoch belongs to one party (its *owner*, who sends in it) and was derived from the
//! peer's latest epoch known to the owner (its *parent*). The children a party derives from one
//! parent epoch come, in epoch-number order, from a hash chain of *child seeds* started at the
//! parent's root key, exactly like message keys come from a chain key:
//!
//! ```text
//! S(p, p+1) = RK_p                       seeds are indexed by the child's epoch number
//! (C_e, S(p, e+2)) = chain_step(S(p, e))  C_e is the salt of child e's derivation
//! (RK_e, CK_e) = KDF_epoch(C_e, DH(K_e, K_p), e, p)
//! ```
//!
//! A used seed is erased, so an epoch can be derived once and never again (no replay), and
//! compromising a party later does not let an attacker re-derive the epochs it already received
//! (forward secrecy). Seeds of skipped children are kept, bounded, like skipped message keys.
//! Numbers: the initiator's epochs are odd, the responder's even; epoch 0 is the responder's
//! setup epoch (root from session setup, key = its signed prekey). A new epoch gets the number
//! `max(own last + 2, next child number of the parent)`, so numbers only grow.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kdf;
use crate::secret::{DhKeyPair, Secret32};
use crate::time::Timestamp;

/// A skipped child seed, already stepped into the child's salt.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SkippedChild {
    pub(crate) epoch: u32,
    pub(crate) salt: Secret32,
    pub(crate) stored_at: Timestamp,
}

/// The chain of child seeds of one epoch.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ChildSeeds {
    /// Number of the next child this chain derives (its seed is `seed`).
    pub(crate) next: u32,
    pub(crate) seed: Secret32,
    /// Skipped children, receiving side only.
    pub(crate) skipped: Vec<SkippedChild>,
}

/// How to update a [`ChildSeeds`] once the derived child has been authenticated.
pub(crate) enum ChildAdvance {
    /// The child came from the skipped list: remove it.
    UsedSkipped { epoch: u32 },
    /// The chain moved forward past `epoch`.
    Stepped {
        next: u32,
        seed: Secret32,
        skipped: Vec<(u32, Secret32)>,
    },
}

impl ChildAdvance {
    /// Drops the skipped salts whose child number satisfies `known_elsewhere`.
    pub(crate) fn without(self, known_elsewhere: impl Fn(u32) -> bool) -> Self {
        match self {
            ChildAdvance::Stepped {
                next,
                seed,
                mut skipped,
            } => {
                skipped.retain(|(number, _)| !known_elsewhere(*number));
                ChildAdvance::Stepped {
                    next,
                    seed,
                    skipped,
                }
            }
            used => used,
        }
    }
}

impl ChildSeeds {
    pub(crate) fn new(parent: u32, root: Secret32) -> Self {
        ChildSeeds {
            next: parent.saturating_add(1),
            seed: root,
            skipped: Vec::new(),
        }
    }

    /// The salt for child `epoch`, and the state change that deriving it implies.
    ///
    /// `max_jump` bounds how many children may be skipped. Children below `next` come only from
    /// the skipped list (if still within `grace`); anything else was already derived. The salts
    /// of skipped children are collected only if `keep_skipped` (the receiving side).
    pub(crate) fn salt_for(
        &self,
        epoch: u32,
        max_jump: u32,
        now: Timestamp,
        grace: u64,
        keep_skipped: bool,
    ) -> Result<(Secret32, ChildAdvance)> {
        if epoch < self.next {
            return match self.skipped.iter().find(|s| s.epoch == epoch) {
                Some(s) if now.secs_since(s.stored_at) < grace => {
                    Ok((s.salt.clone(), ChildAdvance::UsedSkipped { epoch }))
                }
                _ => Err(Error::StaleMessage),
            };
        }
        let distance = epoch - self.next;
        if !distance.is_multiple_of(2) {
            return Err(Error::UnknownEpoch { epoch });
        }
        let steps = distance / 2;
        if steps > max_jump {
            return Err(Error::TooFarAhead {
                jump: u64::from(steps),
                max: max_jump,
            });
        }
        let mut skipped = Vec::with_capacity(if keep_skipped { steps as usize } else { 0 });
        let mut seed = self.seed.clone();
        let mut number = self.next;
        while number < epoch {
            let (salt, next_seed) = kdf::chain_step(&seed);
            if keep_skipped {
                skipped.push((number, salt));
            }
            seed = next_seed;
            number += 2;
        }
        let (salt, next_seed) = kdf::chain_step(&seed);
        let next = epoch.checked_add(2).ok_or(Error::SessionExhausted)?;
        Ok((
            salt,
            ChildAdvance::Stepped {
                next,
                seed: next_seed,
                skipped,
            },
        ))
    }

    /// Applies an advance. Skipped salts are kept only if the advance collected them (the
    /// receiving side); the sending side never derives a lower child again.
    pub(crate) fn apply(&mut self, advance: ChildAdvance, now: Timestamp) {
        match advance {
            ChildAdvance::UsedSkipped { epoch } => self.skipped.retain(|s| s.epoch != epoch),
            ChildAdvance::Stepped {
                next,
                seed,
                skipped,
            } => {
                self.next = next;
                self.seed = seed;
                self.skipped
                    .extend(skipped.into_iter().map(|(epoch, salt)| SkippedChild {
                        epoch,
                        salt,
                        stored_at: now,
                    }));
            }
        }
    }

    /// Enforces the skipped-children bound (oldest first) and grace period.
    pub(crate) fn prune(&mut self, max_skipped: usize, now: Timestamp, grace: u64) {
        self.skipped.retain(|s| now.secs_since(s.stored_at) < grace);
        if self.skipped.len() > max_skipped {
            let excess = self.skipped.len() - max_skipped;
            self.skipped.drain(..excess);
        }
    }
}

/// One of this party's own epochs: its ratchet key and the seeds of the peer's children of it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct OwnEpoch {
    pub(crate) number: u32,
    pub(crate) key: DhKeyPair,
    pub(crate) children: ChildSeeds,
    pub(crate) superseded_at: Option<Timestamp>,
}

/// The peer's latest epoch: the parent of this party's next epoch.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PeerLatest {
    pub(crate) number: u32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) ratchet_key: [u8; 32],
    pub(crate) children: ChildSeeds,
}

/// A peer epoch this party receives in.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ReceivingEpoch {
    pub(crate) number: u32,
    pub(crate) parent: u32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) ratchet_key: [u8; 32],
    /// The chain key for message `next`; `None` once the epoch is closed (the peer said how
    /// many messages it sent in it, or a bound closed it).
    pub(crate) chain: Option<Secret32>,
    pub(crate) next: u32,
    /// Every skipped key of this epoch below this counter has been discarded.
    pub(crate) discarded_below: u32,
    pub(crate) created_at: Timestamp,
}

/// The current sending epoch.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Sending {
    pub(crate) epoch: u32,
    pub(crate) parent: u32,
    pub(crate) chain: Secret32,
    pub(crate) next: u32,
    pub(crate) started_at: Timestamp,
    pub(crate) previous: Option<crate::envelope::Previous>,
}
