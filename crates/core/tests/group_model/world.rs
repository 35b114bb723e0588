//! The model: the group's history as a tree of states, every identity's memberships as the
//! library should hold them, the messages and the links; and the run itself.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealwire_core::{Change, Group, IdentityKeyPair, MemberRole, PublicIdentity};

use super::commits::CommitKind;
use super::{Client, Mode, NOW, Op, POOL, config, fail};

pub(super) type Hash = [u8; 32];
/// A member's seniority (spec 3.1): the epoch and the position of the change that gave it its
/// current role.
pub(super) type Since = (u32, u32);
pub(super) type Roster = BTreeMap<usize, (MemberRole, Since)>;
/// A sender key: its sender, epoch and state.
pub(super) type KeyId = (usize, u32, Hash);

/// A state of the group's history: genesis or the result of one commit.
pub(super) struct StateNode {
    pub(super) epoch: u32,
    pub(super) parent: Option<Hash>,
    /// The commit that made it (index into `World::commits`); none for genesis.
    pub(super) commit: Option<usize>,
    pub(super) roster: Roster,
    /// Who the commit added (genesis: the creator).
    pub(super) added: Vec<usize>,
    pub(super) children: Vec<Hash>,
}

pub(super) struct CommitRec {
    pub(super) bytes: Vec<u8>,
    pub(super) welcome: Option<Vec<u8>>,
    pub(super) epoch: u32,
    pub(super) parent: Hash,
    pub(super) result: Hash,
    pub(super) committer: usize,
    /// The committer's role and seniority in the parent state (the conflict order).
    pub(super) admin: bool,
    pub(super) since: Since,
    pub(super) changes: Vec<Change>,
    pub(super) removed: Vec<usize>,
}

pub(super) struct Msg {
    pub(super) sender: usize,
    pub(super) epoch: u32,
    /// The state it was sealed in.
    pub(super) hash: Hash,
    pub(super) plaintext: Vec<u8>,
    pub(super) envelope: Vec<u8>,
    /// The other members of that state.
    pub(super) entitled: BTreeSet<usize>,
    pub(super) opened_by: BTreeSet<usize>,
    /// Entitled members that got `OtherBranch` for it.
    pub(super) other_branch_at: BTreeSet<usize>,
    /// Entitled members that got `NotAMember` for it (a removal of its sender).
    pub(super) refused_by: BTreeSet<usize>,
    /// Entitled members whose client dropped it on `NotAMember`, with the states whose
    /// commits removed its sender (the cause).
    pub(super) dropped_by: BTreeMap<usize, Vec<Hash>>,
}

#[derive(Clone, Debug)]
pub(super) enum Item {
    Commit(usize),
    Welcome(usize),
    SenderKey { bytes: Vec<u8>, key: KeyId },
    Envelope(usize),
}

/// What becomes of a delivered item.
pub(super) enum Fate {
    /// Processed: retry what was kept.
    Done,
    /// Kept, retried after the next success.
    Park,
    /// Refused for good.
    Drop,
}

/// One membership of an identity: the `Group` it got from one welcome (or from creating the
/// group). A removed identity that is added back gets a second one; items are routed to the
/// membership their state belongs to.
pub(super) struct Incarnation {
    /// The state its welcome started (genesis for the creator).
    pub(super) start: Hash,
    pub(super) start_epoch: u32,
    pub(super) group: Group,
    /// The states it follows, by epoch (mirrored from the library's outcomes).
    pub(super) chain: BTreeMap<u32, Hash>,
    /// Removals it applied and still follows.
    pub(super) revoked: Vec<Revocation>,
    /// Sender keys held aside, in arrival order.
    pub(super) pending: Vec<KeyId>,
    /// Sender keys installed (kept, even if unusable, while their epoch is held).
    pub(super) installed: BTreeSet<KeyId>,
    /// Sender keys the per-sender bound dropped from `pending`.
    pub(super) lost_keys: BTreeSet<KeyId>,
    /// Sender keys its client dropped on `NotAMember`: the bytes, and the states whose
    /// commits removed the sender (the cause).
    pub(super) dropped_keys: BTreeMap<KeyId, (Vec<u8>, Vec<Hash>)>,
    /// Messages it sealed, by state.
    pub(super) sealed: HashMap<Hash, u32>,
}

/// A removal a member applied: the removed member is revoked in the states the member held
/// then (spec 6.3 step 3), until the removing commit is abandoned.
pub(super) struct Revocation {
    pub(super) who: usize,
    /// The epoch of the removing commit.
    pub(super) by: u32,
    /// The state the removing commit made.
    pub(super) state: Hash,
    pub(super) held: Vec<(u32, Hash)>,
}

impl Incarnation {
    fn new(start: Hash, start_epoch: u32, group: Group) -> Incarnation {
        Incarnation {
            start,
            start_epoch,
            group,
            chain: BTreeMap::from([(start_epoch, start)]),
            revoked: Vec::new(),
            pending: Vec::new(),
            installed: BTreeSet::new(),
            lost_keys: BTreeSet::new(),
            dropped_keys: BTreeMap::new(),
            sealed: HashMap::new(),
        }
    }

    pub(super) fn tip(&self) -> (u32, Hash) {
        let (epoch, hash) = self.chain.last_key_value().unwrap();
        (*epoch, *hash)
    }

    /// The removals of `sender` this member follows that revoke it in state `hash` of `epoch`
    /// (they were applied while it held that state): the states they made.
    pub(super) fn revocations(&self, sender: usize, epoch: u32, hash: &Hash) -> Vec<Hash> {
        self.revoked
            .iter()
            .filter(|r| r.who == sender && r.held.contains(&(epoch, *hash)))
            .map(|r| r.state)
            .collect()
    }
}

pub(super) struct Node {
    pub(super) identity: IdentityKeyPair,
    pub(super) incarnations: Vec<Incarnation>,
    pub(super) parked: Vec<(usize, Item)>,
}

/// How often each situation arose in a run (printed with `SEALWIRE_GROUP_STATS=1`).
#[derive(Default, Debug)]
pub(super) struct Stats {
    pub(super) commits: usize,
    pub(super) commits_refused: usize,
    pub(super) readds: usize,
    pub(super) conflicts_resolved: usize,
    pub(super) conflicts_lost: usize,
    pub(super) messages: usize,
    pub(super) opened: usize,
    /// `OtherBranch` answers, and messages opened after one.
    pub(super) other_branch: usize,
    pub(super) other_branch_opened: usize,
    /// `NotAMember` answers to envelopes and sender keys of a removed (or revoked) sender.
    pub(super) removed_sender_refusals: usize,
    /// Opened by the retrying client after a `NotAMember` the documented client drops.
    pub(super) rescued: usize,
    /// Revocations a switch to a winning branch undid.
    pub(super) revocations_undone: usize,
    pub(super) exempt_removed_sender: usize,
    pub(super) exempt_lost_key: usize,
    pub(super) exempt_abandoned_removal: usize,
}

pub(super) struct World {
    pub(super) mode: Mode,
    pub(super) client: Client,
    pub(super) rng: ChaCha20Rng,
    pub(super) nodes: Vec<Node>,
    /// Identity signing key to identity number.
    pub(super) keys: HashMap<Hash, usize>,
    pub(super) tree: HashMap<Hash, StateNode>,
    pub(super) genesis: Hash,
    pub(super) commits: Vec<CommitRec>,
    pub(super) msgs: Vec<Msg>,
    /// One FIFO link per ordered pair of identities, `from * POOL + to`.
    pub(super) links: Vec<VecDeque<Item>>,
    pub(super) ever_added: BTreeSet<usize>,
    pub(super) steps: usize,
    pub(super) stats: Stats,
}

impl World {
    pub(super) fn new(seed: u64, mode: Mode, client: Client) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identities: Vec<IdentityKeyPair> = (0..POOL)
            .map(|_| IdentityKeyPair::generate(&mut rng))
            .collect();
        let keys = identities
            .iter()
            .enumerate()
            .map(|(i, id)| (*id.public().signing_key(), i))
            .collect();
        let group = Group::create(&identities[0], config(), &mut rng, NOW).unwrap();
        let genesis = group.state_hash();
        let mut nodes: Vec<Node> = identities
            .into_iter()
            .map(|identity| Node {
                identity,
                incarnations: Vec::new(),
                parked: Vec::new(),
            })
            .collect();
        nodes[0]
            .incarnations
            .push(Incarnation::new(genesis, 0, group));
        let root = StateNode {
            epoch: 0,
            parent: None,
            commit: None,
            roster: BTreeMap::from([(0, (MemberRole::Admin, (0, 0)))]),
            added: vec![0],
            children: Vec::new(),
        };
        World {
            mode,
            client,
            rng,
            nodes,
            keys,
            tree: HashMap::from([(genesis, root)]),
            genesis,
            commits: Vec::new(),
            msgs: Vec::new(),
            links: (0..POOL * POOL).map(|_| VecDeque::new()).collect(),
            ever_added: BTreeSet::from([0]),
            steps: 0,
            stats: Stats::default(),
        }
    }

    /// A new membership of `who`, from a welcome.
    pub(super) fn add_incarnation(
        &mut self,
        who: usize,
        start: Hash,
        start_epoch: u32,
        group: Group,
    ) {
        let inc = Incarnation::new(start, start_epoch, group);
        self.nodes[who].incarnations.push(inc);
    }

    pub(super) fn public(&self, i: usize) -> PublicIdentity {
        self.nodes[i].identity.public().clone()
    }

    pub(super) fn signing_key(&self, i: usize) -> Hash {
        *self.nodes[i].identity.public().signing_key()
    }

    pub(super) fn roster(&self, hash: &Hash) -> &Roster {
        &self.tree[hash].roster
    }

    pub(super) fn is_member(&self, hash: &Hash, who: usize) -> bool {
        self.roster(hash).contains_key(&who)
    }

    /// The index of `who` in the member list of `hash` (sorted by identity key).
    pub(super) fn member_index(&self, hash: &Hash, who: usize) -> u32 {
        let mut keys: Vec<Hash> = self
            .roster(hash)
            .keys()
            .map(|&i| self.signing_key(i))
            .collect();
        keys.sort_unstable();
        let own = self.signing_key(who);
        keys.iter().position(|k| *k == own).unwrap() as u32
    }

    /// Conflict order of a commit, lower wins (spec 11): an admin's first, then the more
    /// senior committer, then the lower identity key. (Two commits on one state are never by
    /// the same committer here, so the commit hash never decides.)
    pub(super) fn rank(&self, commit: usize) -> (u8, Since, Hash) {
        let rec = &self.commits[commit];
        (
            u8::from(!rec.admin),
            rec.since,
            self.signing_key(rec.committer),
        )
    }

    /// The start of the membership of `who` that state `hash` belongs to: the nearest state at
    /// or above it whose commit added `who`.
    pub(super) fn route(&self, who: usize, hash: &Hash) -> Result<Hash, TestCaseError> {
        let mut current = *hash;
        loop {
            let node = &self.tree[&current];
            if node.added.contains(&who) {
                return Ok(current);
            }
            match node.parent {
                Some(parent) => current = parent,
                None => return fail(format!("harness: {who} was never added above {hash:?}")),
            }
        }
    }

    pub(super) fn incarnation(&self, who: usize, start: &Hash) -> Option<usize> {
        self.nodes[who]
            .incarnations
            .iter()
            .position(|inc| inc.start == *start)
    }

    /// The membership of `who` that state `hash` belongs to, if it joined already.
    pub(super) fn incarnation_for(
        &self,
        who: usize,
        hash: &Hash,
    ) -> Result<Option<usize>, TestCaseError> {
        Ok(self.incarnation(who, &self.route(who, hash)?))
    }

    /// The membership an identity acts with: its most recent one.
    pub(super) fn live(&self, who: usize) -> usize {
        let incs = &self.nodes[who].incarnations;
        (0..incs.len())
            .max_by_key(|&i| incs[i].start_epoch)
            .unwrap()
    }

    pub(super) fn check_members(&self, group: &Group, hash: &Hash) -> Result<(), TestCaseError> {
        let got: BTreeMap<usize, MemberRole> = group
            .members()
            .iter()
            .map(|m| (self.keys[m.identity().signing_key()], m.role()))
            .collect();
        let want: BTreeMap<usize, MemberRole> = self
            .roster(hash)
            .iter()
            .map(|(&i, &(role, _))| (i, role))
            .collect();
        prop_assert_eq!(got, want, "member list differs from the model");
        let sorted = group
            .members()
            .windows(2)
            .all(|w| w[0].identity().signing_key() < w[1].identity().signing_key());
        prop_assert!(sorted, "member list not sorted by identity key");
        Ok(())
    }

    /// Identities with a membership; with `admins_only`, those that are admins in their own
    /// view (all of them if there is none).
    fn actors(&self, admins_only: bool) -> Vec<usize> {
        let all: Vec<usize> = (0..POOL)
            .filter(|&i| !self.nodes[i].incarnations.is_empty())
            .collect();
        if !admins_only {
            return all;
        }
        let admins: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| {
                let tip = self.nodes[i].incarnations[self.live(i)].tip().1;
                matches!(self.roster(&tip).get(&i), Some((MemberRole::Admin, _)))
            })
            .collect();
        if admins.is_empty() { all } else { admins }
    }

    pub(super) fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (by, anyone, kind) = match *op {
            Op::Add {
                by,
                anyone,
                target,
                admin,
            } => (by, anyone, CommitKind::Add { target, admin }),
            Op::Remove { by, anyone, target } => (by, anyone, CommitKind::Remove { target }),
            Op::SetRole { by, anyone, target } => (by, anyone, CommitKind::SetRole { target }),
            Op::Rotate { by } => (by, true, CommitKind::Rotate),
            Op::Send { by, len } => {
                let actors = self.actors(false);
                let x = actors[by.index(actors.len())];
                return self.send(x, self.live(x), len);
            }
            Op::Deliver(link) => return self.deliver_next(link, false),
            Op::DrainLink(link) => return self.deliver_next(link, true),
            Op::Flush => return self.flush(),
            Op::Eavesdrop(m) if !self.msgs.is_empty() => {
                return self.eavesdrop(m.index(self.msgs.len()));
            }
            Op::Eavesdrop(_) => return Ok(()),
        };
        let needs_admin = !matches!(kind, CommitKind::Rotate);
        let actors = self.actors(needs_admin && !anyone);
        let x = actors[by.index(actors.len())];
        self.commit(x, kind)
    }

    /// Everything is delivered and the final members converge; one of them sends once more;
    /// that is delivered; then the delivery, replay and eavesdropping checks.
    pub(super) fn finish(&mut self) -> Result<(), TestCaseError> {
        self.flush()?;
        let canonical = self.canonical();
        self.check_convergence(&canonical)?;
        let tip = *canonical.last().unwrap();
        let last = *self.roster(&tip).keys().next_back().unwrap();
        let ii = self.incarnation_for(last, &tip)?.unwrap();
        self.send(last, ii, 16)?;
        self.flush()?;
        self.check_delivery(&canonical)?;
        self.check_replays()?;
        for m in 0..self.msgs.len() {
            self.eavesdrop(m)?;
        }
        Ok(())
    }
}
