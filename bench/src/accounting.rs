//! Loss and duplicate accounting by sequence numbers.
//!
//! Each receiving client keeps a [`Receipts`]: per sender, the set of sequence numbers it has
//! seen ([`SeqSet`], a growable bitset), so a second delivery of one message is a duplicate.
//! After the drain, [`Losses::compute`] compares what was expected (every message the sender
//! sent, minus those the server explicitly refused, times the recipients of each) with the
//! distinct deliveries: the difference is the loss. A message still unaccepted when the drain
//! timeout expires counts as lost: nothing is excused silently.

use std::collections::HashMap;

/// A set of sequence numbers, as a bitset that grows as needed.
#[derive(Debug, Clone, Default)]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; `false` if it was already there (a duplicate).
    pub fn insert(&mut self, seq: u64) -> bool {
        let word = usize::try_from(seq / 64).unwrap_or(usize::MAX);
        if word == usize::MAX {
            return false;
        }
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (seq % 64);
        let Some(slot) = self.words.get_mut(word) else {
            return false;
        };
        if *slot & bit != 0 {
            return false;
        }
        *slot |= bit;
        self.len += 1;
        true
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        usize::try_from(seq / 64)
            .ok()
            .and_then(|word| self.words.get(word))
            .is_some_and(|slot| slot & (1u64 << (seq % 64)) != 0)
    }

    /// Distinct sequence numbers in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What one receiving client saw.
#[derive(Debug, Clone, Default)]
pub struct Receipts {
    /// Sequence numbers seen, per sender index.
    pub by_sender: HashMap<u32, SeqSet>,
    /// Deliveries of a message already seen.
    pub duplicates: u64,
    /// Deliveries whose payload was not a benchmark payload.
    pub foreign: u64,
}

impl Receipts {
    /// Records a delivery of `(sender, seq)`; `true` if it is the first one.
    pub fn record(&mut self, sender: u32, seq: u64) -> bool {
        let fresh = self.by_sender.entry(sender).or_default().insert(seq);
        if !fresh {
            self.duplicates += 1;
        }
        fresh
    }

    /// Distinct deliveries over all senders.
    pub fn distinct(&self) -> u64 {
        self.by_sender.values().map(SeqSet::len).sum()
    }
}

/// The loss figures of a scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Losses {
    /// Deliveries expected: for every message sent and not refused, one per recipient.
    pub expected: u64,
    /// Distinct deliveries seen.
    pub delivered: u64,
    /// Expected deliveries never seen (must be 0).
    pub lost: u64,
    /// Deliveries of a message the recipient had already seen (at-least-once redelivery after
    /// a reconnect; reported, not hidden).
    pub duplicates: u64,
    /// Deliveries that were not benchmark payloads (must be 0).
    pub foreign: u64,
}

impl Losses {
    /// Compares `expected` deliveries with what the receivers saw.
    pub fn compute<'a>(expected: u64, receipts: impl IntoIterator<Item = &'a Receipts>) -> Losses {
        let mut losses = Losses {
            expected,
            ..Losses::default()
        };
        for receipt in receipts {
            losses.delivered += receipt.distinct();
            losses.duplicates += receipt.duplicates;
            losses.foreign += receipt.foreign;
        }
        losses.lost = expected.saturating_sub(losses.delivered);
        losses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqset_counts_distinct_and_grows() {
        let mut set = SeqSet::default();
        assert!(set.is_empty());
        assert!(set.insert(0));
        assert!(set.insert(1_000));
        assert!(!set.insert(1_000));
        assert!(set.insert(63));
        assert!(set.insert(64));
        assert_eq!(set.len(), 4);
        assert!(set.contains(64) && set.contains(1_000) && !set.contains(65));
    }

    #[test]
    fn losses_count_missing_and_duplicates() {
        let mut a = Receipts::default();
        for seq in 0..10 {
            assert!(a.record(0, seq));
        }
        assert!(!a.record(0, 3));
        let mut b = Receipts::default();
        for seq in 0..8 {
            b.record(1, seq);
        }
        b.foreign = 1;
        let losses = Losses::compute(20, [&a, &b]);
        assert_eq!(
            losses,
            Losses {
                expected: 20,
                delivered: 18,
                lost: 2,
                duplicates: 1,
                foreign: 1,
            }
        );
        let none = Losses::compute(18, [&a, &b]);
        assert_eq!(none.lost, 0);
    }
}
