//! Sender chains: each member's own sending chain for an epoch, and the receiving chains it
//! holds for the other members.
//!
//! A sender key is a chain key, the counter it sits at, and an Ed25519 public key. Message keys
//! come from the chain exactly as in pairwise epochs (`MK = HMAC(CK, 0x01)`,
//! `CK' = HMAC(CK, 0x02)`), expanded with the group label. The signing key is fresh for every
//! member and epoch, so a signature proves authorship only to the members who received the
//! sender key over an authenticated pairwise session, never to outsiders.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kdf;
use crate::replay::{Lookup, SkippedKeys};
use crate::secret::Secret32;
use crate::time::Timestamp;

/// A member's own sending chain for one epoch. The signing key is kept expanded (deriving it
/// from its seed costs a scalar multiplication); it is stored as its seed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "SendingChainState", into = "SendingChainState")]
pub(crate) struct SendingChain {
    chain_key: Secret32,
    counter: u32,
    signing: SigningKey,
}

#[derive(Clone, Serialize, Deserialize)]
struct SendingChainState {
    chain_key: Secret32,
    counter: u32,
    signing_seed: Secret32,
}

impl From<SendingChainState> for SendingChain {
    fn from(state: SendingChainState) -> Self {
        SendingChain {
            chain_key: state.chain_key,
            counter: state.counter,
            signing: SigningKey::from_bytes(state.signing_seed.expose()),
        }
    }
}

impl From<SendingChain> for SendingChainState {
    fn from(chain: SendingChain) -> Self {
        let mut seed = chain.signing.to_bytes();
        SendingChainState {
            chain_key: chain.chain_key,
            counter: chain.counter,
            signing_seed: Secret32::take(&mut seed),
        }
    }
}

impl SendingChain {
    pub(crate) fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let chain_key = Secret32::random(rng);
        let seed = Secret32::random(rng);
        SendingChain {
            chain_key,
            counter: 0,
            signing: SigningKey::from_bytes(seed.expose()),
        }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub(crate) fn verifying_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The chain key and counter of the next message (what a sender key hands out).
    pub(crate) fn position(&self) -> (&Secret32, u32) {
        (&self.chain_key, self.counter)
    }

    /// The next message's counter and key, and the chain key after it, without changing the
    /// chain (the caller stores the step with [`Self::commit_step`] once the message is
    /// sealed). The last counter, `u32::MAX`, is never used, so a receiver can always store
    /// `counter + 1`.
    pub(crate) fn step(&self) -> Result<(u32, Secret32, Secret32)> {
        if self.counter == u32::MAX {
            return Err(Error::SessionExhausted);
        }
        let (message_key, next) = kdf::chain_step(&self.chain_key);
        Ok((self.counter, message_key, next))
    }

    /// Stores a step computed by [`Self::step`].
    pub(crate) fn commit_step(&mut self, next: Secret32) {
        self.chain_key = next;
        self.counter += 1;
    }
}

/// Another member's sending chain, as this member holds it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ReceivingChain {
    chain_key: Secret32,
    /// Counter of the next message not yet derived.
    next: u32,
    /// First counter the sender key covered: earlier messages were never readable here.
    first: u32,
    /// Counters below this whose keys are absent were discarded (bounds or grace), not used.
    discarded_below: u32,
    /// Kept decompressed (decoding a point costs a field inversion); stored as its 32 bytes.
    #[serde(with = "verifying_key_bytes")]
    signing_key: VerifyingKey,
}

/// serde for a [`VerifyingKey`] as its 32-byte encoding (raw bytes in postcard).
mod verifying_key_bytes {
    use ed25519_dalek::VerifyingKey;
    use serde::{Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(key: &VerifyingKey, s: S) -> Result<S::Ok, S::Error> {
        crate::encoding::fixed::serialize(key.as_bytes(), s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VerifyingKey, D::Error> {
        let bytes: [u8; 32] = crate::encoding::fixed::deserialize(d)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| D::Error::custom("invalid verifying key"))
    }
}

/// How to update a receiving chain once a message has opened.
pub(crate) enum Plan {
    /// The key came from the skipped store: remove it.
    Skipped,
    /// The chain moves forward: store the skipped keys, replace the chain key.
    Advance {
        skipped: Vec<(u32, Secret32)>,
        chain_key: Secret32,
        next: u32,
    },
}

/// The bounds a receiving chain enforces.
pub(crate) struct Bounds {
    pub(crate) max_forward_jump: u32,
    pub(crate) grace_secs: u64,
}

impl ReceivingChain {
    pub(crate) fn new(chain_key: Secret32, counter: u32, signing_key: [u8; 32]) -> Result<Self> {
        let signing_key = VerifyingKey::from_bytes(&signing_key)
            .map_err(|_| Error::Malformed("sender key signing key"))?;
        if signing_key.is_weak() {
            return Err(Error::Malformed("sender key signing key (small order)"));
        }
        if counter == u32::MAX {
            return Err(Error::Malformed("sender key counter"));
        }
        Ok(ReceivingChain {
            chain_key,
            next: counter,
            first: counter,
            discarded_below: counter,
            signing_key,
        })
    }

    pub(crate) fn signing_key(&self) -> &VerifyingKey {
        &self.signing_key
    }

    /// True if this chain was created from exactly this sender key material.
    pub(crate) fn same_origin(&self, signing_key: &[u8; 32]) -> bool {
        self.signing_key.as_bytes() == signing_key
    }

    /// Records that the key of `counter` was discarded (evicted or expired).
    pub(crate) fn note_discarded(&mut self, counter: u32) {
        self.discarded_below = self.discarded_below.max(counter.saturating_add(1));
    }

    /// Finds the message key for `counter` without changing anything. `sender` indexes this
    /// chain's entries in the epoch's skipped-key store.
    pub(crate) fn resolve(
        &self,
        sender: u32,
        counter: u32,
        skipped: &SkippedKeys,
        now: Timestamp,
        bounds: &Bounds,
    ) -> Result<(Secret32, Plan)> {
        if counter < self.first {
            return Err(Error::StaleMessage);
        }
        if counter < self.next {
            return match skipped.lookup(sender, counter, now, bounds.grace_secs) {
                Lookup::Found(key) => Ok((key.clone(), Plan::Skipped)),
                Lookup::Expired => Err(Error::StaleMessage),
                Lookup::Absent if counter < self.discarded_below => Err(Error::StaleMessage),
                Lookup::Absent => Err(Error::Replay),
            };
        }
        if counter == u32::MAX {
            return Err(Error::Malformed("group message counter"));
        }
        let jump = counter - self.next;
        if jump > bounds.max_forward_jump {
            return Err(Error::TooFarAhead {
                jump: u64::from(jump),
                max: bounds.max_forward_jump,
            });
        }
        let mut chain_key = self.chain_key.clone();
        let mut keys = Vec::with_capacity(jump as usize);
        for skipped_counter in self.next..counter {
            let (message_key, next) = kdf::chain_step(&chain_key);
            keys.push((skipped_counter, message_key));
            chain_key = next;
        }
        let (message_key, next) = kdf::chain_step(&chain_key);
        Ok((
            message_key,
            Plan::Advance {
                skipped: keys,
                chain_key: next,
                next: counter + 1,
            },
        ))
    }

    /// Moves the chain forward after a successful open (plan from [`Self::resolve`]).
    pub(crate) fn advance_to(&mut self, chain_key: Secret32, next: u32) {
        self.chain_key = chain_key;
        self.next = next;
    }
}
