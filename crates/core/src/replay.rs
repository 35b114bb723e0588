//! Replay protection and bounded out-of-order delivery: the store of skipped message keys.
//!
//! When a message arrives ahead of others in its epoch, the keys of the messages it skipped
//! are derived and kept here so that those messages can still be opened when they arrive. The
//! store is bounded three ways (keys per epoch, keys in total, and a grace period), and evicts
//! oldest first. A key is removed the moment it is used, so each message opens at most once:
//! a second delivery finds no key and is rejected.
//!
//! Within one epoch keys are inserted in counter order and evicted oldest first, so the evicted
//! keys of an epoch are always a prefix of its skipped counters. The ratchet uses that to tell a
//! certain replay (the counter was opened) from a message whose key was discarded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secret::Secret32;
use crate::time::Timestamp;

/// One stored key.
#[derive(Clone, Serialize, Deserialize)]
struct Skipped {
    key: Secret32,
    stored_at: Timestamp,
    seq: u64,
}

/// Result of looking a key up.
pub(crate) enum Lookup<'a> {
    /// The key is held and within its grace period.
    Found(&'a Secret32),
    /// The key is held but its grace period has passed (it is pruned on the next success).
    Expired,
    /// No key is held for this message.
    Absent,
}

/// Skipped message keys, keyed by `(epoch, counter)`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(from = "SkippedKeysState", into = "SkippedKeysState")]
pub(crate) struct SkippedKeys {
    entries: BTreeMap<(u32, u32), Skipped>,
    /// Insertion order index: `seq -> (epoch, counter)`, for oldest-first eviction.
    order: BTreeMap<u64, (u32, u32)>,
    next_seq: u64,
}

/// Serialized form: the entries alone; the order index is rebuilt on load.
#[derive(Clone, Serialize, Deserialize)]
struct SkippedKeysState {
    entries: Vec<(u32, u32, Skipped)>,
}

impl From<SkippedKeysState> for SkippedKeys {
    fn from(state: SkippedKeysState) -> Self {
        let mut keys = SkippedKeys::default();
        for (epoch, counter, skipped) in state.entries {
            keys.next_seq = keys.next_seq.max(skipped.seq.saturating_add(1));
            keys.order.insert(skipped.seq, (epoch, counter));
            keys.entries.insert((epoch, counter), skipped);
        }
        keys
    }
}

impl From<SkippedKeys> for SkippedKeysState {
    fn from(keys: SkippedKeys) -> Self {
        SkippedKeysState {
            entries: keys
                .entries
                .into_iter()
                .map(|((epoch, counter), skipped)| (epoch, counter, skipped))
                .collect(),
        }
    }
}

impl SkippedKeys {
    /// True if the serialized state was self-consistent (every entry indexed exactly once).
    pub(crate) fn is_consistent(&self) -> bool {
        self.entries.len() == self.order.len()
    }

    pub(crate) fn lookup(
        &self,
        epoch: u32,
        counter: u32,
        now: Timestamp,
        grace: u64,
    ) -> Lookup<'_> {
        match self.entries.get(&(epoch, counter)) {
            Some(skipped) if now.secs_since(skipped.stored_at) >= grace => Lookup::Expired,
            Some(skipped) => Lookup::Found(&skipped.key),
            None => Lookup::Absent,
        }
    }

    /// Removes a used key.
    pub(crate) fn remove(&mut self, epoch: u32, counter: u32) {
        if let Some(skipped) = self.entries.remove(&(epoch, counter)) {
            self.order.remove(&skipped.seq);
        }
    }

    pub(crate) fn count_in(&self, epoch: u32) -> usize {
        self.entries.range((epoch, 0)..=(epoch, u32::MAX)).count()
    }

    /// True if any key of `epoch` is held (one tree lookup, unlike [`Self::count_in`]).
    pub(crate) fn has_keys(&self, epoch: u32) -> bool {
        self.entries
            .range((epoch, 0)..=(epoch, u32::MAX))
            .next()
            .is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Inserts the keys of one epoch (in counter order), then enforces the per-epoch and total
    /// caps. Returns every evicted `(epoch, counter)`.
    pub(crate) fn insert(
        &mut self,
        epoch: u32,
        keys: Vec<(u32, Secret32)>,
        now: Timestamp,
        per_epoch_cap: usize,
        total_cap: usize,
    ) -> Vec<(u32, u32)> {
        for (counter, key) in keys {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.insert(seq, (epoch, counter));
            if let Some(old) = self.entries.insert(
                (epoch, counter),
                Skipped {
                    key,
                    stored_at: now,
                    seq,
                },
            ) {
                self.order.remove(&old.seq);
            }
        }
        // The lowest counters of this epoch are its oldest keys: evict the excess in one pass.
        let excess = self.count_in(epoch).saturating_sub(per_epoch_cap);
        let mut evicted: Vec<(u32, u32)> = self
            .entries
            .range((epoch, 0)..=(epoch, u32::MAX))
            .take(excess)
            .map(|(&id, _)| id)
            .collect();
        for &(epoch, counter) in &evicted {
            self.remove(epoch, counter);
        }
        while self.entries.len() > total_cap {
            let Some((_, &oldest)) = self.order.iter().next() else {
                break;
            };
            self.remove(oldest.0, oldest.1);
            evicted.push(oldest);
        }
        evicted
    }

    /// When the key [`Self::prune_expired`] looks at first (the oldest inserted) was stored: it
    /// removes nothing while that key is within the grace period.
    pub(crate) fn oldest_stored_at(&self) -> Option<Timestamp> {
        let (_, id) = self.order.iter().next()?;
        self.entries.get(id).map(|s| s.stored_at)
    }

    /// Removes keys whose grace period has passed. Returns every evicted `(epoch, counter)`.
    pub(crate) fn prune_expired(&mut self, now: Timestamp, grace: u64) -> Vec<(u32, u32)> {
        let expired: Vec<(u32, u32)> = self
            .order
            .values()
            .copied()
            .take_while(|id| {
                self.entries
                    .get(id)
                    .is_some_and(|s| now.secs_since(s.stored_at) >= grace)
            })
            .collect();
        for &(epoch, counter) in &expired {
            self.remove(epoch, counter);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret32 {
        Secret32::take(&mut [byte; 32])
    }

    #[test]
    fn per_epoch_cap_evicts_lowest_counters_of_that_epoch() {
        let mut store = SkippedKeys::default();
        let now = Timestamp::from_unix_secs(10);
        store.insert(1, vec![(0, key(0)), (1, key(1))], now, 3, 100);
        let evicted = store.insert(3, (0..5).map(|c| (c, key(c as u8))).collect(), now, 3, 100);
        assert_eq!(evicted, vec![(3, 0), (3, 1)]);
        assert_eq!(store.count_in(1), 2);
        assert_eq!(store.count_in(3), 3);
    }

    #[test]
    fn total_cap_evicts_oldest_inserted() {
        let mut store = SkippedKeys::default();
        let now = Timestamp::from_unix_secs(10);
        store.insert(1, vec![(5, key(5)), (6, key(6))], now, 10, 3);
        let evicted = store.insert(3, vec![(0, key(0)), (1, key(1))], now, 10, 3);
        assert_eq!(evicted, vec![(1, 5)]);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn lookup_respects_grace_and_prune_removes_only_expired() {
        let mut store = SkippedKeys::default();
        store.insert(1, vec![(0, key(0))], Timestamp::from_unix_secs(0), 10, 10);
        store.insert(1, vec![(1, key(1))], Timestamp::from_unix_secs(50), 10, 10);
        let now = Timestamp::from_unix_secs(100);
        assert!(matches!(store.lookup(1, 0, now, 100), Lookup::Expired));
        assert!(matches!(store.lookup(1, 1, now, 100), Lookup::Found(_)));
        assert!(matches!(store.lookup(1, 2, now, 100), Lookup::Absent));
        assert_eq!(store.prune_expired(now, 100), vec![(1, 0)]);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn serialization_roundtrip_rebuilds_order() {
        let mut store = SkippedKeys::default();
        let now = Timestamp::from_unix_secs(1);
        store.insert(1, vec![(0, key(0)), (2, key(2))], now, 10, 10);
        let bytes = postcard::to_allocvec(&store).unwrap();
        let mut restored: SkippedKeys = postcard::from_bytes(&bytes).unwrap();
        assert!(restored.is_consistent());
        assert_eq!(
            restored.insert(1, vec![(3, key(3))], now, 10, 2),
            vec![(1, 0)]
        );
    }
}
