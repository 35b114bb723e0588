//! Delivery: one FIFO link per ordered pair of identities (the relay keeps order per sender
//! and recipient), carrying commits, welcomes and sender keys (pairwise plaintexts) and group
//! envelopes; and what each client does with a refused item.
//!
//! Both clients keep, and retry after each success, what the spec says to keep: `EpochAhead`,
//! `UnknownParent`, `MissingSenderKey`, `OtherBranch` (spec 14), and anything that arrives
//! before the welcome of the membership it belongs to. (`UnknownEpoch`, after which the spec
//! says to drop them, never happens: nothing is pruned.) The documented client drops every
//! other refusal; the retrying one keeps those too.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rand::RngExt;

use super::world::{Fate, Item, World};
use super::{Client, POOL, STEP_LIMIT};

impl World {
    fn deliver(&mut self, from: usize, to: usize, item: Item) -> Result<(), TestCaseError> {
        match self.process(from, to, &item)? {
            Fate::Done => self.retry_parked(to),
            Fate::Park => {
                self.nodes[to].parked.push((from, item));
                Ok(())
            }
            Fate::Drop => Ok(()),
        }
    }

    fn retry_parked(&mut self, to: usize) -> Result<(), TestCaseError> {
        loop {
            let parked = std::mem::take(&mut self.nodes[to].parked);
            let mut progress = false;
            for (from, item) in parked {
                match self.process(from, to, &item)? {
                    Fate::Done => progress = true,
                    Fate::Park => self.nodes[to].parked.push((from, item)),
                    Fate::Drop => {}
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }

    fn nonempty_links(&self) -> Vec<usize> {
        (0..POOL * POOL)
            .filter(|&l| !self.links[l].is_empty())
            .collect()
    }

    /// Delivers the next item (with `drain`, every item) of one non-empty link.
    pub(super) fn deliver_next(&mut self, link: Index, drain: bool) -> Result<(), TestCaseError> {
        let links = self.nonempty_links();
        if links.is_empty() {
            return Ok(());
        }
        let l = links[link.index(links.len())];
        while let Some(item) = self.links[l].pop_front() {
            self.deliver(l / POOL, l % POOL, item)?;
            if !drain {
                break;
            }
        }
        Ok(())
    }

    /// Delivers everything addressed to `x`.
    pub(super) fn catch_up(&mut self, x: usize) -> Result<(), TestCaseError> {
        for from in 0..POOL {
            while let Some(item) = self.links[from * POOL + x].pop_front() {
                self.deliver(from, x, item)?;
            }
        }
        Ok(())
    }

    /// Delivers everything, one item of a random link at a time.
    pub(super) fn flush(&mut self) -> Result<(), TestCaseError> {
        loop {
            let links = self.nonempty_links();
            if links.is_empty() {
                return Ok(());
            }
            let l = links[self.rng.random_range(0..links.len())];
            let item = self.links[l].pop_front().unwrap();
            self.deliver(l / POOL, l % POOL, item)?;
        }
    }

    /// The fate of an item refused with an error the spec says to drop.
    pub(super) fn refused(&self) -> Fate {
        match self.client {
            Client::Documented => Fate::Drop,
            Client::Retrying => Fate::Park,
        }
    }

    pub(super) fn process(
        &mut self,
        from: usize,
        to: usize,
        item: &Item,
    ) -> Result<Fate, TestCaseError> {
        self.steps += 1;
        prop_assert!(self.steps < STEP_LIMIT, "delivery does not terminate");
        match item {
            Item::Welcome(c) => self.process_welcome(to, *c),
            Item::Commit(c) => self.process_commit(to, *c),
            Item::SenderKey { bytes, key } => {
                prop_assert_eq!(from, key.0);
                self.process_sender_key(to, bytes, *key)
            }
            Item::Envelope(m) => self.process_envelope(to, *m),
        }
    }
}
