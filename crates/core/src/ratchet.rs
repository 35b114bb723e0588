//! The ratchet: sending and receiving chains over the epoch tree (see [`crate::epoch`]).
//!
//! Opening a message is split in two so that a failure changes nothing:
//! [`Ratchet::resolve`] works out the message key and every state change it implies without
//! touching the state; the caller authenticates the envelope with that key; only then does
//! [`Ratchet::commit`] apply the change.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::SessionConfig;
use crate::envelope::{MessageHeader, Previous};
use crate::epoch::{ChildAdvance, ChildSeeds, OwnEpoch, PeerLatest, ReceivingEpoch, Sending};
use crate::error::{Error, Result};
use crate::kdf::{self, MessageKeys};
use crate::replay::{Lookup, SkippedKeys};
use crate::secret::{DhKeyPair, Secret32};
use crate::time::Timestamp;

/// Closed receiving epochs remembered (without any key) so that replays into them are
/// reported as replays.
pub(crate) const CLOSED_EPOCH_MEMORY: usize = 32;

/// Which side of the session setup this party was on; fixes the parity of its epoch numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Sent the first message from the peer's prekey bundle. Owns the odd epochs.
    Initiator,
    /// Created the session from an initial message. Owns the even epochs (0 is its setup epoch).
    Responder,
}

impl Role {
    fn owns(self, epoch: u32) -> bool {
        (epoch % 2 == 1) == (self == Role::Initiator)
    }
}

/// The state of a session's ratchet.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Ratchet {
    pub(crate) role: Role,
    /// Own epochs still held, ascending by number; the last is the current sending epoch.
    pub(crate) own: Vec<OwnEpoch>,
    pub(crate) peer: Option<PeerLatest>,
    pub(crate) sending: Option<Sending>,
    /// Peer epochs still held, ascending by number.
    pub(crate) receiving: Vec<ReceivingEpoch>,
    /// The newest own epoch the peer has named as a parent, if any.
    pub(crate) acknowledged: Option<u32>,
    pub(crate) skipped: SkippedKeys,
    /// [`Ratchet::prune`] is known to have nothing to do before this time, as long as nothing
    /// it looks at changes: set by a full prune, cleared by every change that could give it
    /// work. A cache, not state: never serialized (a restored ratchet starts without it).
    #[serde(skip)]
    pub(crate) quiet_until: Option<Timestamp>,
}

/// What opening one message will change, computed before authentication.
pub(crate) struct Resolution {
    epoch: u32,
    counter: u32,
    pub(crate) message_key: Secret32,
    change: Change,
}

enum Change {
    UseSkipped,
    Advance {
        chain: Secret32,
        next: u32,
        skipped: Vec<(u32, Secret32)>,
    },
    NewEpoch {
        record: ReceivingEpoch,
        root: Secret32,
        skipped: Vec<(u32, Secret32)>,
        parent_advance: ChildAdvance,
    },
}

/// Derives the keys of messages `from..=to` of a chain: the skipped ones, the key for `to`, and
/// the chain key after it.
fn walk_chain(chain: &Secret32, from: u32, to: u32) -> (Vec<(u32, Secret32)>, Secret32, Secret32) {
    let mut skipped = Vec::with_capacity((to - from) as usize);
    // The chain is borrowed until it first steps (no copy for the in-order message).
    let mut stepped: Option<Secret32> = None;
    for counter in from..to {
        let (key, next) = kdf::chain_step(stepped.as_ref().unwrap_or(chain));
        skipped.push((counter, key));
        stepped = Some(next);
    }
    let (key, next) = kdf::chain_step(stepped.as_ref().unwrap_or(chain));
    (skipped, key, next)
}

impl Ratchet {
    /// Whether the next message must start a new epoch: there is none yet, the peer has started
    /// a newer epoch than our current one's parent (a turn), or the rotation policy says so;
    /// and, except for the first, fewer than `max_own_epochs` own epochs await acknowledgement.
    pub(crate) fn needs_new_epoch(&self, config: &SessionConfig, now: Timestamp) -> bool {
        match (&self.sending, &self.peer) {
            (None, _) => true,
            (Some(sending), Some(peer)) => {
                let wanted = peer.number != sending.parent
                    || sending.next >= config.rotate_after_messages
                    || now.secs_since(sending.started_at) >= config.rotate_after_secs;
                wanted && self.unacknowledged() < config.max_own_epochs as usize
            }
            (Some(_), None) => false,
        }
    }

    /// Own epochs the peer has not yet acknowledged (named as the parent of one of its epochs
    /// that this party received, or older than one so named). The peer may still derive
    /// epochs from any of them, so none can be erased; the count is bounded by pausing the
    /// creation of new epochs.
    fn unacknowledged(&self) -> usize {
        self.own
            .iter()
            .filter(|o| self.acknowledged.is_none_or(|a| o.number > a))
            .count()
    }

    /// Starts a new sending epoch as a child of the peer's latest epoch. `key` is the ratchet
    /// key to use (the initiator's first epoch uses its setup base key); otherwise a fresh one.
    pub(crate) fn start_epoch<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        key: Option<DhKeyPair>,
        rng: &mut R,
        now: Timestamp,
    ) -> Result<()> {
        let peer = self.peer.as_ref().ok_or(Error::InvalidState(
            "no peer epoch to derive a sending epoch from",
        ))?;
        let mut number = peer.children.next;
        if let Some(last) = self.own.last() {
            number = number.max(last.number.checked_add(2).ok_or(Error::SessionExhausted)?);
        }
        if number > u32::MAX - 4 {
            return Err(Error::SessionExhausted);
        }
        let (salt, advance) = peer
            .children
            .salt_for(number, u32::MAX, now, u64::MAX, false)?;
        let key = key.unwrap_or_else(|| DhKeyPair::generate(rng));
        let dh = key.diffie_hellman(&peer.ratchet_key)?;
        let (root, chain) = kdf::epoch_keys(&salt, &dh, number, peer.number);
        let parent = peer.number;

        self.quiet_until = None;
        if let Some(peer) = self.peer.as_mut() {
            peer.children.apply(advance, now);
        }
        if let Some(current) = self.own.last_mut() {
            current.superseded_at.get_or_insert(now);
        }
        self.own.push(OwnEpoch {
            number,
            key,
            children: ChildSeeds::new(number, root),
            superseded_at: None,
        });
        let previous = self.sending.take().map(|s| Previous {
            epoch: s.epoch,
            length: s.next,
        });
        self.sending = Some(Sending {
            epoch: number,
            parent,
            chain,
            next: 0,
            started_at: now,
            previous,
        });
        Ok(())
    }

    /// Takes the next message's keys in the current sending epoch, with the header fields that
    /// locate it. The chain key moves forward in place; the message key never leaves this
    /// function (a zeroized local).
    pub(crate) fn next_message_keys(&mut self) -> Result<(MessageKeys, SendPosition)> {
        let sending = self
            .sending
            .as_mut()
            .ok_or(Error::InvalidState("no sending epoch"))?;
        if sending.next == u32::MAX {
            return Err(Error::SessionExhausted);
        }
        let ratchet_key = self
            .own
            .iter()
            .find(|o| o.number == sending.epoch)
            .map(|o| *o.key.public())
            .ok_or(Error::InvalidState("sending epoch has no key"))?;
        let mut message_key = Zeroizing::new([0u8; 32]);
        kdf::chain_step_in_place(&mut sending.chain, &mut message_key);
        let keys = kdf::message_keys_from_bytes(&message_key);
        let position = SendPosition {
            epoch: sending.epoch,
            parent: sending.parent,
            counter: sending.next,
            previous: sending.previous,
            ratchet_key,
        };
        sending.next += 1;
        Ok((keys, position))
    }

    /// Works out the key for an incoming message and the state change that opening it implies.
    /// Changes nothing.
    pub(crate) fn resolve(
        &self,
        header: &MessageHeader,
        config: &SessionConfig,
        now: Timestamp,
    ) -> Result<Resolution> {
        let epoch = header.epoch;
        let counter = header.counter;
        if !self.role_is_peer(epoch) {
            return Err(Error::UnknownEpoch { epoch });
        }
        if let Some(record) = self.receiving.iter().find(|r| r.number == epoch) {
            if record.parent != header.parent || record.ratchet_key != header.ratchet_key {
                return Err(Error::DecryptFailed);
            }
            if counter < record.next {
                return match self.skipped.lookup(epoch, counter, now, config.grace_secs) {
                    Lookup::Found(key) => Ok(Resolution {
                        epoch,
                        counter,
                        message_key: key.clone(),
                        change: Change::UseSkipped,
                    }),
                    Lookup::Expired => Err(Error::StaleMessage),
                    Lookup::Absent if counter >= record.discarded_below => Err(Error::Replay),
                    Lookup::Absent => Err(Error::StaleMessage),
                };
            }
            // A closed epoch holds no key beyond its next counter: the sender announced its
            // length, or a bound closed it.
            let chain = record.chain.as_ref().ok_or(Error::StaleMessage)?;
            check_jump(counter - record.next, config.max_forward_jump)?;
            let (skipped, message_key, chain) = walk_chain(chain, record.next, counter);
            return Ok(Resolution {
                epoch,
                counter,
                message_key,
                change: Change::Advance {
                    chain,
                    next: counter + 1,
                    skipped,
                },
            });
        }

        let parent =
            self.own
                .iter()
                .find(|o| o.number == header.parent)
                .ok_or(Error::UnknownEpoch {
                    epoch: header.parent,
                })?;
        if epoch <= header.parent {
            return Err(Error::UnknownEpoch { epoch });
        }
        let (salt, parent_advance) =
            parent
                .children
                .salt_for(epoch, config.max_epoch_jump, now, config.grace_secs, true)?;
        check_jump(counter, config.max_forward_jump)?;
        let dh = parent
            .key
            .diffie_hellman(&header.ratchet_key)
            .map_err(|_| Error::DecryptFailed)?;
        let (root, chain) = kdf::epoch_keys(&salt, &dh, epoch, header.parent);
        let (skipped, message_key, chain) = walk_chain(&chain, 0, counter);
        Ok(Resolution {
            epoch,
            counter,
            message_key,
            change: Change::NewEpoch {
                record: ReceivingEpoch {
                    number: epoch,
                    parent: header.parent,
                    ratchet_key: header.ratchet_key,
                    chain: Some(chain),
                    next: counter + 1,
                    discarded_below: 0,
                    created_at: now,
                },
                root,
                skipped,
                parent_advance,
            },
        })
    }

    fn role_is_peer(&self, epoch: u32) -> bool {
        epoch != 0 && !self.role.owns(epoch)
    }

    /// Applies a resolution after the envelope authenticated.
    pub(crate) fn commit(
        &mut self,
        resolution: Resolution,
        header: &MessageHeader,
        config: &SessionConfig,
        now: Timestamp,
    ) {
        let Resolution {
            epoch,
            counter,
            change,
            ..
        } = resolution;
        // An in-order message of an open epoch only moves its chain forward, which gives
        // `prune` nothing to do; any other change may.
        if !matches!(&change, Change::Advance { skipped, .. } if skipped.is_empty()) {
            self.quiet_until = None;
        }
        match change {
            Change::UseSkipped => self.skipped.remove(epoch, counter),
            Change::Advance {
                chain,
                next,
                skipped,
            } => {
                if let Some(record) = self.receiving.iter_mut().find(|r| r.number == epoch) {
                    record.chain = Some(chain);
                    record.next = next;
                }
                self.store_skipped(epoch, skipped, config, now);
            }
            Change::NewEpoch {
                record,
                root,
                skipped,
                parent_advance,
            } => {
                // A skipped child number that is already a known peer epoch (under another
                // parent) cannot be a child of this parent: do not keep its salt.
                let parent_advance = parent_advance
                    .without(|number| self.receiving.iter().any(|r| r.number == number));
                if let Some(parent) = self.own.iter_mut().find(|o| o.number == record.parent) {
                    parent.children.apply(parent_advance, now);
                }
                let is_latest = self.peer.as_ref().is_none_or(|p| p.number < epoch);
                if is_latest {
                    self.peer = Some(PeerLatest {
                        number: epoch,
                        ratchet_key: record.ratchet_key,
                        children: ChildSeeds::new(epoch, root),
                    });
                }
                self.acknowledged = Some(
                    self.acknowledged
                        .map_or(record.parent, |a| a.max(record.parent)),
                );
                let position = self.receiving.partition_point(|r| r.number < epoch);
                self.receiving.insert(position, record);
                self.store_skipped(epoch, skipped, config, now);
            }
        }
        if let Some(previous) = header.previous {
            self.close_epoch(previous, config, now);
        }
        self.prune(config, now);
    }

    /// Closes a peer epoch whose sender announced its final length: derives the keys of the
    /// messages still in flight (within the jump bound) and erases the chain key.
    fn close_epoch(&mut self, previous: Previous, config: &SessionConfig, now: Timestamp) {
        let Some(record) = self
            .receiving
            .iter_mut()
            .find(|r| r.number == previous.epoch)
        else {
            return;
        };
        let Some(chain) = record.chain.take() else {
            return;
        };
        self.quiet_until = None;
        let end = previous
            .length
            .min(record.next.saturating_add(config.max_forward_jump));
        if end > record.next {
            let (mut skipped, last_key, _) = walk_chain(&chain, record.next, end - 1);
            skipped.push((end - 1, last_key));
            record.next = end;
            self.store_skipped(previous.epoch, skipped, config, now);
        }
    }

    fn store_skipped(
        &mut self,
        epoch: u32,
        keys: Vec<(u32, Secret32)>,
        config: &SessionConfig,
        now: Timestamp,
    ) {
        if keys.is_empty() {
            return;
        }
        let evicted = self.skipped.insert(
            epoch,
            keys,
            now,
            config.max_skipped_per_epoch as usize,
            config.max_skipped_total as usize,
        );
        self.note_discarded(&evicted);
    }

    fn note_discarded(&mut self, evicted: &[(u32, u32)]) {
        for &(epoch, counter) in evicted {
            if let Some(record) = self.receiving.iter_mut().find(|r| r.number == epoch) {
                record.discarded_below = record.discarded_below.max(counter.saturating_add(1));
            }
        }
    }

    /// Enforces every bound and grace period. Called after each successful seal or open.
    ///
    /// O(1) when a previous full prune showed there is nothing to do until a later time and
    /// nothing has changed since (the common case: in-order messages in steady state).
    pub(crate) fn prune(&mut self, config: &SessionConfig, now: Timestamp) {
        if self.quiet_until.is_some_and(|until| now < until) {
            #[cfg(debug_assertions)]
            self.debug_check_quiet(config, now);
            return;
        }
        self.prune_all(config, now);
        self.quiet_until = Some(self.next_deadline(config.grace_secs));
    }

    /// Forgets that `prune` has nothing to do (after a configuration change).
    pub(crate) fn invalidate_prune(&mut self) {
        self.quiet_until = None;
    }

    /// Debug builds: checks that skipping `prune` was right (a full prune changes nothing).
    #[cfg(debug_assertions)]
    fn debug_check_quiet(&self, config: &SessionConfig, now: Timestamp) {
        let mut pruned = self.clone();
        pruned.prune_all(config, now);
        debug_assert!(
            Zeroizing::new(crate::state::encode(&pruned))
                == Zeroizing::new(crate::state::encode(self)),
            "a skipped prune would have changed the ratchet"
        );
    }

    /// The earliest time at which some element the grace period applies to expires. Until
    /// then, after a full prune and with no change, `prune_all` is a no-op: every count bound
    /// holds, and the time conditions (`now - t >= grace`) are all false.
    fn next_deadline(&self, grace: u64) -> Timestamp {
        let expiry = |t: Timestamp| t.plus_secs(grace);
        let skipped = self.skipped.oldest_stored_at().map(expiry);
        let receiving = self.receiving.iter().map(|r| expiry(r.created_at));
        let superseded = self.own.iter().filter_map(|o| o.superseded_at.map(expiry));
        let children = self
            .own
            .iter()
            .flat_map(|o| o.children.skipped.iter().map(|c| expiry(c.stored_at)));
        skipped
            .into_iter()
            .chain(receiving)
            .chain(superseded)
            .chain(children)
            .min()
            .unwrap_or(Timestamp::from_unix_secs(u64::MAX))
    }

    fn prune_all(&mut self, config: &SessionConfig, now: Timestamp) {
        let grace = config.grace_secs;
        let expired = self.skipped.prune_expired(now, grace);
        self.note_discarded(&expired);

        // Peer epochs: close the oldest open chains beyond the bound, and chains that are not
        // the peer's latest and have outlived the grace period.
        let latest = self.peer.as_ref().map(|p| p.number);
        let mut open = self.receiving.iter().filter(|r| r.chain.is_some()).count();
        for record in self.receiving.iter_mut() {
            let stale = Some(record.number) != latest && now.secs_since(record.created_at) >= grace;
            if record.chain.is_some() && (open > config.max_receiving_epochs as usize || stale) {
                record.chain = None;
                open -= 1;
            }
        }
        // Closed epochs with no keys left are kept as tombstones (no secrets: number, parent,
        // ratchet key, counters), the newest CLOSED_EPOCH_MEMORY of them within the grace
        // period, so that a replay into them is still recognised as a replay.
        let skipped = &self.skipped;
        let keyless = |r: &ReceivingEpoch| r.chain.is_none() && !skipped.has_keys(r.number);
        let tombstones = self.receiving.iter().filter(|r| keyless(r)).count();
        // `receiving` is ascending, so the first tombstones met are the oldest.
        let mut excess = tombstones.saturating_sub(CLOSED_EPOCH_MEMORY);
        self.receiving.retain(|r| {
            if !keyless(r) {
                return true;
            }
            if excess > 0 {
                excess -= 1;
                return false;
            }
            now.secs_since(r.created_at) < grace
        });

        // Own epochs: the acknowledged one and every newer one are always kept (the peer may
        // derive new epochs from them). Older ones are kept only for late messages: within the
        // grace period, and at most `max_own_epochs` of them.
        let acknowledged = self.acknowledged;
        let pinned = |number: u32| acknowledged.is_none_or(|a| number >= a);
        self.own.retain(|o| {
            pinned(o.number) || o.superseded_at.is_none_or(|t| now.secs_since(t) < grace)
        });
        let older = self.own.iter().filter(|o| !pinned(o.number)).count();
        if older > config.max_own_epochs as usize {
            // `own` is ascending, so the older epochs are its prefix.
            self.own.drain(..older - config.max_own_epochs as usize);
        }
        for own in &mut self.own {
            own.children
                .prune(config.max_skipped_epochs as usize, now, grace);
        }
    }

    /// Basic invariants of restored state.
    pub(crate) fn is_consistent(&self) -> bool {
        self.skipped.is_consistent()
            && self.own.windows(2).all(|w| w[0].number < w[1].number)
            && self.receiving.windows(2).all(|w| w[0].number < w[1].number)
            && self
                .own
                .iter()
                .all(|o| self.role.owns(o.number) || o.number == 0)
            && self.receiving.iter().all(|r| self.role_is_peer(r.number))
            && self
                .sending
                .as_ref()
                .is_none_or(|s| self.own.last().is_some_and(|o| o.number == s.epoch))
            && self
                .acknowledged
                .is_none_or(|a| self.own.iter().any(|o| o.number == a))
    }
}

fn check_jump(jump: u32, max: u32) -> Result<()> {
    if jump > max {
        return Err(Error::TooFarAhead {
            jump: u64::from(jump),
            max,
        });
    }
    Ok(())
}

/// Where a sealed message sits: the header fields the ratchet decides.
pub(crate) struct SendPosition {
    pub(crate) epoch: u32,
    pub(crate) parent: u32,
    pub(crate) counter: u32,
    pub(crate) previous: Option<Previous>,
    pub(crate) ratchet_key: [u8; 32],
}
