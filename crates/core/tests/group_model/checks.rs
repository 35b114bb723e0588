//! The final checks of a run, once everything is delivered: convergence on the agreed
//! history, delivery to every entitled member (with the exemptions the spec states), replays.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sealwire_core::{ControlOutcome, Group};

use super::world::{Fate, Hash, World};
use super::{NOW, POOL, fail};

impl World {
    /// The agreed history: from genesis, the winning child of each state.
    pub(super) fn canonical(&self) -> Vec<Hash> {
        let mut path = vec![self.genesis];
        loop {
            let children = &self.tree[path.last().unwrap()].children;
            let best = children
                .iter()
                .min_by_key(|h| self.rank(self.tree[*h].commit.unwrap()));
            match best {
                Some(best) => path.push(*best),
                None => return path,
            }
        }
    }

    /// Every member of the final state is in it, with the same member list; every membership
    /// on the agreed history that ended, ended at the commit that removed it.
    pub(super) fn check_convergence(&self, canonical: &[Hash]) -> Result<(), TestCaseError> {
        let tip = *canonical.last().unwrap();
        let tip_epoch = self.tree[&tip].epoch;
        let mut current = BTreeSet::new();
        for &r in self.roster(&tip).keys() {
            let Some(ii) = self.incarnation_for(r, &tip)? else {
                return fail(format!("member {r} never joined"));
            };
            current.insert((r, ii));
            let inc = &self.nodes[r].incarnations[ii];
            prop_assert_eq!(inc.tip(), (tip_epoch, tip), "member {} did not converge", r);
            prop_assert_eq!(inc.group.state_hash(), tip);
            prop_assert_eq!(inc.group.epoch(), tip_epoch);
            prop_assert!(inc.group.is_member());
            self.check_members(&inc.group, &tip)?;
        }
        for r in 0..POOL {
            for (ii, inc) in self.nodes[r].incarnations.iter().enumerate() {
                if current.contains(&(r, ii)) {
                    continue;
                }
                let Some(position) = canonical.iter().position(|h| *h == inc.start) else {
                    continue; // joined on a branch that lost
                };
                let Some(end) = canonical[position..].iter().find(|h| !self.is_member(h, r)) else {
                    return fail(format!("membership {ii} of {r} never ended"));
                };
                prop_assert_eq!(
                    inc.tip(),
                    (self.tree[end].epoch, *end),
                    "removed member {} did not stop at its removal",
                    r
                );
                prop_assert_eq!(inc.group.state_hash(), *end);
                prop_assert!(!inc.group.is_member());
            }
        }
        Ok(())
    }

    /// Every member of the state a message was sealed in (other than its sender) opened it,
    /// unless it ended up on another branch, or one of the exemptions of the spec applies:
    /// its sender's removal revokes it (spec 6.3 step 3), the per-sender bound on pending
    /// sender keys dropped its sender key (7.3), or the documented client dropped its sender
    /// key or the message itself on a removal of its sender that it later abandoned
    /// ([`World::check_abandoned_removal`]).
    pub(super) fn check_delivery(&mut self, canonical: &[Hash]) -> Result<(), TestCaseError> {
        let agreed: BTreeSet<Hash> = canonical.iter().copied().collect();
        for m in 0..self.msgs.len() {
            let msg = &self.msgs[m];
            let (sender, epoch, hash) = (msg.sender, msg.epoch, msg.hash);
            for r in msg.entitled.clone() {
                let Some(ii) = self.incarnation_for(r, &hash)? else {
                    return fail(format!("{r} never joined for message {m}"));
                };
                let inc = &self.nodes[r].incarnations[ii];
                let on_branch = inc.chain.get(&epoch) == Some(&hash);
                prop_assert!(
                    on_branch || !agreed.contains(&hash),
                    "{} never reached the agreed epoch {} of message {}",
                    r,
                    epoch,
                    m
                );
                if !on_branch || self.msgs[m].opened_by.contains(&r) {
                    continue;
                }
                let key = (sender, epoch, hash);
                if !inc.revocations(sender, epoch, &hash).is_empty() {
                    self.stats.exempt_removed_sender += 1;
                } else if inc.lost_keys.contains(&key) {
                    self.stats.exempt_lost_key += 1;
                } else if inc.dropped_keys.contains_key(&key)
                    || self.msgs[m].dropped_by.contains_key(&r)
                {
                    self.check_abandoned_removal(r, ii, m)?;
                    self.stats.exempt_abandoned_removal += 1;
                } else {
                    return fail(format!(
                        "{r} never opened message {m} (from {sender}, epoch {epoch}, agreed \
                         history: {}, refused before: {})",
                        agreed.contains(&hash),
                        self.msgs[m].refused_by.contains(&r),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The documented limit (spec 12, "Late messages of removed members are rejected"; the
    /// `*_refused_for_good_while_on_a_branch_that_removed_its_sender` tests): while a member
    /// follows a branch whose commit removed a sender, that sender's keys and messages of the
    /// epochs it held are refused with `NotAMember`, which a client drops; when the member
    /// switches to a winning branch that keeps the sender, they would be accepted, but are
    /// gone. Checked precisely: the documented client dropped the sender key or the envelope
    /// of message `m` at `r` on `NotAMember`, every removal that caused it was since
    /// abandoned, and delivering the dropped items again now opens the message (on a copy).
    fn check_abandoned_removal(&self, r: usize, ii: usize, m: usize) -> Result<(), TestCaseError> {
        let msg = &self.msgs[m];
        let inc = &self.nodes[r].incarnations[ii];
        let dropped_key = inc.dropped_keys.get(&(msg.sender, msg.epoch, msg.hash));
        let causes: Vec<&Hash> = dropped_key
            .into_iter()
            .flat_map(|(_, causes)| causes)
            .chain(msg.dropped_by.get(&r).into_iter().flatten())
            .collect();
        prop_assert!(!causes.is_empty());
        for cause in causes {
            prop_assert!(
                !inc.chain.values().any(|h| h == cause),
                "message {} dropped at {} for a removal it still follows",
                m,
                r
            );
        }
        let mut copy = Group::from_bytes(inc.group.to_bytes().expose_secret()).unwrap();
        let sender = self.public(msg.sender);
        if let Some((bytes, _)) = dropped_key {
            let want = ControlOutcome::SenderKeyAdded {
                epoch: msg.epoch,
                sender: sender.clone(),
            };
            prop_assert_eq!(copy.receive(&sender, bytes, NOW), Ok(want));
        }
        let opened = copy.open(&msg.envelope, NOW).map(|o| o.plaintext);
        prop_assert_eq!(opened, Ok(msg.plaintext.clone()), "message {} at {}", m, r);
        Ok(())
    }

    /// Every message delivered again to every member that opened it: refused.
    pub(super) fn check_replays(&mut self) -> Result<(), TestCaseError> {
        for m in 0..self.msgs.len() {
            let readers: Vec<usize> = self.msgs[m].opened_by.iter().copied().collect();
            for r in readers {
                if let Fate::Done = self.process_envelope(r, m)? {
                    return fail(format!("message {m} opened twice at {r}"));
                }
            }
        }
        Ok(())
    }
}
