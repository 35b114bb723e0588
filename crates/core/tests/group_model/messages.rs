//! Messages: sealing, eavesdropping, and the predicted outcome of every sender key and
//! envelope a member receives (spec 7, 8.4, 9).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sealwire_core::{ControlOutcome, Error};

use super::world::{Fate, Hash, Item, KeyId, Msg, World};
use super::{MAX_PENDING_EPOCHS_AHEAD, NOW, PENDING_PER_SENDER, POOL, config, fail};

impl World {
    /// Membership `ii` of `x` seals a message of at least `len` bytes; every identity not
    /// entitled to it then tries to open it.
    pub(super) fn send(&mut self, x: usize, ii: usize, len: usize) -> Result<(), TestCaseError> {
        let index = self.msgs.len();
        let (epoch, hash) = self.nodes[x].incarnations[ii].tip();
        let member = self.is_member(&hash, x);
        let plaintext = text(index, x, epoch, len);
        let result = self.nodes[x].incarnations[ii]
            .group
            .seal(&plaintext, &mut self.rng, NOW);
        let sealed = match (member, result) {
            (true, Ok(sealed)) => sealed,
            (false, Err(Error::NotAMember(_))) => return Ok(()),
            (member, result) => {
                return fail(format!(
                    "seal by {x} (a member in the model: {member}): {:?}",
                    result.map(|_| ())
                ));
            }
        };
        let inc = &self.nodes[x].incarnations[ii];
        prop_assert_eq!((inc.group.epoch(), inc.group.state_hash()), (epoch, hash));
        let first = !inc.sealed.contains_key(&hash);
        prop_assert_eq!(
            sealed.sender_key.is_some(),
            first,
            "a sender key comes with the first message of an epoch, and only then"
        );
        let entitled: BTreeSet<usize> = self
            .roster(&hash)
            .keys()
            .copied()
            .filter(|&i| i != x)
            .collect();
        if let Some(key) = &sealed.sender_key {
            let recipients: BTreeSet<usize> = key
                .recipients
                .iter()
                .map(|p| self.keys[p.signing_key()])
                .collect();
            prop_assert_eq!(&recipients, &entitled, "sender key recipients");
        }
        *self.nodes[x].incarnations[ii]
            .sealed
            .entry(hash)
            .or_default() += 1;
        for &r in &entitled {
            if let Some(key) = &sealed.sender_key {
                self.links[x * POOL + r].push_back(Item::SenderKey {
                    bytes: key.message.expose_secret().to_vec(),
                    key: (x, epoch, hash),
                });
            }
            self.links[x * POOL + r].push_back(Item::Envelope(index));
        }
        self.msgs.push(Msg {
            sender: x,
            epoch,
            hash,
            plaintext,
            envelope: sealed.envelope,
            entitled,
            opened_by: BTreeSet::new(),
            other_branch_at: BTreeSet::new(),
            refused_by: BTreeSet::new(),
            dropped_by: BTreeMap::new(),
        });
        self.stats.messages += 1;
        self.eavesdrop(index)
    }

    /// Every identity not entitled to message `m` (the sender included) tries to open it with
    /// every membership it has: it must fail and leave the group state unchanged.
    pub(super) fn eavesdrop(&mut self, m: usize) -> Result<(), TestCaseError> {
        for x in 0..POOL {
            if self.msgs[m].entitled.contains(&x) {
                continue;
            }
            for ii in 0..self.nodes[x].incarnations.len() {
                let group = &mut self.nodes[x].incarnations[ii].group;
                let before = group.to_bytes().expose_secret().to_vec();
                let result = group.open(&self.msgs[m].envelope, NOW);
                prop_assert!(
                    result.is_err(),
                    "identity {} opened message {} (from {}, epoch {}) it is not entitled to",
                    x,
                    m,
                    self.msgs[m].sender,
                    self.msgs[m].epoch
                );
                prop_assert!(
                    group.to_bytes().expose_secret() == before.as_slice(),
                    "a refused open changed the group state"
                );
            }
        }
        Ok(())
    }

    /// The removals of `sender` that make membership `ii` of `to` refuse its sender key and
    /// messages of state `hash` of `epoch` (`NotAMember`, spec 7.4 step 2 and 8.4 step 12):
    /// the states they made. Empty if none does.
    fn removal_causes(
        &self,
        to: usize,
        ii: usize,
        (sender, epoch, hash): KeyId,
    ) -> Result<Vec<Hash>, TestCaseError> {
        let inc = &self.nodes[to].incarnations[ii];
        let causes = inc.revocations(sender, epoch, &hash);
        // A member that left the member list since `epoch` was removed by a commit applied
        // while `epoch` was held, so it is revoked there.
        prop_assert!(
            self.is_member(&inc.tip().1, sender) || !causes.is_empty(),
            "model: {} is no longer a member at {}, yet not revoked in epoch {}",
            sender,
            to,
            epoch
        );
        Ok(causes)
    }

    pub(super) fn process_sender_key(
        &mut self,
        to: usize,
        bytes: &[u8],
        key: KeyId,
    ) -> Result<Fate, TestCaseError> {
        let (sender, epoch, hash) = key;
        let Some(ii) = self.incarnation_for(to, &hash)? else {
            return Ok(Fate::Park);
        };
        let inc = &self.nodes[to].incarnations[ii];
        let current = inc.tip().0;

        #[derive(Debug)]
        enum Expect {
            Added,
            /// `NotAMember`: removed by the commits that made these states.
            Refused(Vec<Hash>),
            Pending,
            Ahead,
        }
        let expect = if inc.chain.get(&epoch) == Some(&hash) {
            prop_assert!(
                !inc.installed.contains(&key),
                "harness: key delivered twice"
            );
            let causes = self.removal_causes(to, ii, key)?;
            if causes.is_empty() {
                Expect::Added
            } else {
                Expect::Refused(causes)
            }
        } else if epoch > current + MAX_PENDING_EPOCHS_AHEAD {
            Expect::Ahead
        } else {
            Expect::Pending
        };
        let sender_public = self.public(sender);
        let got = self.nodes[to].incarnations[ii]
            .group
            .receive(&sender_public, bytes, NOW);
        let inc = &mut self.nodes[to].incarnations[ii];
        let fate = match (expect, got) {
            (
                Expect::Added,
                Ok(ControlOutcome::SenderKeyAdded {
                    epoch: e,
                    sender: s,
                }),
            ) if e == epoch && s == sender_public => {
                inc.installed.insert(key);
                Fate::Done
            }
            (Expect::Refused(causes), Err(Error::NotAMember(_))) => {
                self.stats.removed_sender_refusals += 1;
                let fate = self.refused();
                if let Fate::Drop = fate {
                    let inc = &mut self.nodes[to].incarnations[ii];
                    inc.dropped_keys.insert(key, (bytes.to_vec(), causes));
                }
                fate
            }
            (
                Expect::Ahead,
                Err(Error::EpochAhead {
                    epoch: e,
                    current: c,
                }),
            ) if e == epoch && c == current => Fate::Park,
            (Expect::Pending, Ok(ControlOutcome::SenderKeyPending { epoch: e })) if e == epoch => {
                // Spec 7.3: kept once; at most PENDING_PER_SENDER per sender, the oldest
                // dropped. (The total cap, `max_pending_sender_keys`, is out of reach.)
                if !inc.pending.contains(&key) {
                    let held = inc.pending.iter().filter(|p| p.0 == sender).count();
                    if held >= PENDING_PER_SENDER {
                        let oldest = inc.pending.iter().position(|p| p.0 == sender).unwrap();
                        let dropped = inc.pending.remove(oldest);
                        inc.lost_keys.insert(dropped);
                    }
                    inc.pending.push(key);
                }
                prop_assert!(inc.pending.len() < config().max_pending_sender_keys as usize);
                Fate::Done
            }
            (expect, got) => {
                return fail(format!(
                    "sender key of {sender} (epoch {epoch}) at {to}: expected {expect:?}, got \
                     {got:?}"
                ));
            }
        };
        Ok(fate)
    }

    pub(super) fn process_envelope(&mut self, to: usize, m: usize) -> Result<Fate, TestCaseError> {
        let (sender, epoch, hash) = {
            let msg = &self.msgs[m];
            (msg.sender, msg.epoch, msg.hash)
        };
        let Some(ii) = self.incarnation_for(to, &hash)? else {
            return Ok(Fate::Park);
        };
        let inc = &self.nodes[to].incarnations[ii];
        let current = inc.tip().0;
        let opened = self.msgs[m].opened_by.contains(&to);

        #[derive(Debug)]
        enum Expect {
            Ahead,
            /// It holds another state of that epoch: `OtherBranch` (spec 8.4 step 8).
            OtherBranch,
            /// `NotAMember`: its sender was removed by the commits that made these states.
            Refused(Vec<Hash>),
            MissingKey,
            Replay,
            Open,
        }
        let expect = if epoch > current {
            Expect::Ahead
        } else {
            match inc.chain.get(&epoch) {
                None => return fail(format!("harness: {to} does not hold epoch {epoch}")),
                Some(h) if *h != hash => Expect::OtherBranch,
                Some(_) => {
                    let installed = inc.installed.contains(&(sender, epoch, hash));
                    let causes = self.removal_causes(to, ii, (sender, epoch, hash))?;
                    if !causes.is_empty() {
                        Expect::Refused(causes)
                    } else if !installed {
                        Expect::MissingKey
                    } else if opened {
                        Expect::Replay
                    } else {
                        Expect::Open
                    }
                }
            }
        };
        let sender_index = self.member_index(&hash, sender);
        let got = self.nodes[to].incarnations[ii]
            .group
            .open(&self.msgs[m].envelope, NOW);
        let fate = match (expect, got) {
            (
                Expect::Ahead,
                Err(Error::EpochAhead {
                    epoch: e,
                    current: c,
                }),
            ) if e == epoch && c == current => Fate::Park,
            (Expect::OtherBranch, Err(Error::OtherBranch { epoch: e })) if e == epoch => {
                self.stats.other_branch += 1;
                self.msgs[m].other_branch_at.insert(to);
                Fate::Park
            }
            (Expect::Refused(causes), Err(Error::NotAMember(_))) => {
                self.stats.removed_sender_refusals += 1;
                self.msgs[m].refused_by.insert(to);
                let fate = self.refused();
                if let Fate::Drop = fate {
                    self.msgs[m].dropped_by.insert(to, causes);
                }
                fate
            }
            (
                Expect::MissingKey,
                Err(Error::MissingSenderKey {
                    epoch: e,
                    sender: s,
                }),
            ) if e == epoch && s == sender_index => Fate::Park,
            (Expect::Open, Ok(got)) => {
                let msg = &mut self.msgs[m];
                prop_assert_eq!(&got.plaintext, &msg.plaintext, "wrong plaintext");
                prop_assert_eq!(&got.sender, self.nodes[sender].identity.public());
                prop_assert_eq!(got.epoch, epoch);
                self.stats.rescued += usize::from(msg.refused_by.contains(&to));
                self.stats.other_branch_opened += usize::from(msg.other_branch_at.contains(&to));
                self.stats.opened += 1;
                msg.opened_by.insert(to);
                Fate::Done
            }
            (Expect::Replay, Err(Error::Replay)) => Fate::Drop,
            (expect, got) => {
                return fail(format!(
                    "message {m} (from {sender}, epoch {epoch}) at {to}: expected {expect:?} \
                     (opened before: {opened}), got {:?}",
                    got.map(|o| o.plaintext)
                ));
            }
        };
        Ok(fate)
    }
}

/// A unique, recognisable plaintext of at least `len` bytes.
fn text(index: usize, sender: usize, epoch: u32, len: usize) -> Vec<u8> {
    let mut out = format!("message {index} from {sender} in epoch {epoch}").into_bytes();
    let mut byte = (index % 251) as u8;
    while out.len() < len {
        out.push(byte);
        byte = byte.wrapping_mul(31).wrapping_add(7);
    }
    out
}
