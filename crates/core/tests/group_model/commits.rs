//! Commits: making them (the model computes the new member list, or the refusal, itself),
//! entering them, and the predicted outcome of every commit and welcome a member receives
//! (spec 5, 6 and 11).

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use sealwire_core::{Change, ControlOutcome, Error, Group, MemberRole};

use super::world::{CommitRec, Fate, Hash, Item, Revocation, Roster, StateNode, World};
use super::{MAX_COMMITS, Mode, NOW, POOL, config, fail};

#[derive(Clone, Copy, Debug)]
pub(super) enum CommitKind {
    Add { target: Index, admin: bool },
    Remove { target: Index },
    SetRole { target: Index },
    Rotate,
}

#[derive(Clone, Copy, Debug)]
enum ChangeKind {
    Add(MemberRole),
    Remove,
    SetRole(MemberRole),
}

#[derive(Clone, Copy, Debug)]
enum Refusal {
    NotAMember,
    NotAuthorized,
    InvalidChange,
}

impl World {
    /// `x` commits one change of `kind` (none for a rotation) from the state it is in (in the
    /// serialized mode, after receiving everything addressed to it).
    pub(super) fn commit(&mut self, x: usize, kind: CommitKind) -> Result<(), TestCaseError> {
        if self.commits.len() >= MAX_COMMITS {
            return Ok(());
        }
        if self.mode == Mode::Serialized {
            self.catch_up(x)?;
        }
        let ii = self.live(x);
        let (parent_epoch, parent) = self.nodes[x].incarnations[ii].tip();
        let epoch = parent_epoch + 1;
        let view = self.roster(&parent).clone();
        let Some(change) = self.choose(&view, kind) else {
            return Ok(());
        };
        let changes: Vec<Change> = change
            .iter()
            .map(|&(t, kind)| match kind {
                ChangeKind::Add(role) => Change::Add(self.public(t), role),
                ChangeKind::Remove => Change::Remove(self.public(t)),
                ChangeKind::SetRole(role) => Change::SetRole(self.public(t), role),
            })
            .collect();
        let expected = predict(&view, x, change, epoch);

        let before = {
            let group = &self.nodes[x].incarnations[ii].group;
            (group.epoch(), group.state_hash())
        };
        let node = &mut self.nodes[x];
        let result = node.incarnations[ii]
            .group
            .commit(&node.identity, &changes, NOW);
        let (roster, out) = match (expected, result) {
            (Err(kind), Err(err)) => {
                let ok = match kind {
                    Refusal::NotAMember => matches!(err, Error::NotAMember(_)),
                    Refusal::NotAuthorized => matches!(err, Error::NotAuthorized(_)),
                    Refusal::InvalidChange => matches!(err, Error::InvalidChange(_)),
                };
                prop_assert!(
                    ok,
                    "commit by {} refused with {:?}, model: {:?}",
                    x,
                    err,
                    kind
                );
                let group = &self.nodes[x].incarnations[ii].group;
                prop_assert_eq!(
                    (group.epoch(), group.state_hash()),
                    before,
                    "a refused commit changed the state"
                );
                self.stats.commits_refused += 1;
                return Ok(());
            }
            (Ok(roster), Ok(out)) => (roster, out),
            (expected, result) => {
                return fail(format!(
                    "commit by {x} ({changes:?}): model {:?}, library {:?}",
                    expected.map(|_| ()),
                    result.map(|_| ())
                ));
            }
        };
        prop_assert_eq!(out.epoch, epoch);
        let recipients: BTreeSet<usize> = out
            .commit_recipients
            .iter()
            .map(|p| self.keys[p.signing_key()])
            .collect();
        let expected_recipients: BTreeSet<usize> =
            view.keys().copied().filter(|&i| i != x).collect();
        prop_assert_eq!(&recipients, &expected_recipients, "commit recipients");
        let (added, removed) = match change {
            Some((t, ChangeKind::Add(_))) => (vec![t], Vec::new()),
            Some((t, ChangeKind::Remove)) => (Vec::new(), vec![t]),
            _ => (Vec::new(), Vec::new()),
        };
        let welcomed: Vec<usize> = out
            .welcome_recipients
            .iter()
            .map(|p| self.keys[p.signing_key()])
            .collect();
        prop_assert_eq!(&welcomed, &added, "welcome recipients");
        prop_assert_eq!(out.welcome.is_some(), !added.is_empty());

        let result = self.nodes[x].incarnations[ii].group.state_hash();
        prop_assert_eq!(self.nodes[x].incarnations[ii].group.epoch(), epoch);
        prop_assert!(!self.tree.contains_key(&result), "a state hash repeats");
        for sibling in &self.tree[&parent].children {
            let other = self.tree[sibling].commit.unwrap();
            prop_assert!(
                self.commits[other].committer != x,
                "harness: one committer made two commits on one state"
            );
        }
        let index = self.commits.len();
        self.tree.get_mut(&parent).unwrap().children.push(result);
        self.tree.insert(
            result,
            StateNode {
                epoch,
                parent: Some(parent),
                commit: Some(index),
                roster,
                added: added.clone(),
                children: Vec::new(),
            },
        );
        self.commits.push(CommitRec {
            bytes: out.commit,
            welcome: out.welcome,
            epoch,
            parent,
            result,
            committer: x,
            admin: view[&x].0 == MemberRole::Admin,
            since: view[&x].1,
            changes,
            removed,
        });
        self.stats.commits += 1;
        self.enter(x, ii, index)?;
        for &r in &expected_recipients {
            self.links[x * POOL + r].push_back(Item::Commit(index));
        }
        for &a in &added {
            if !self.ever_added.insert(a) {
                self.stats.readds += 1;
            }
            self.links[x * POOL + a].push_back(Item::Welcome(index));
        }
        Ok(())
    }

    /// The change a commit of `kind` makes on member list `view`: `None` if there is nothing
    /// to do (no one to add), `Some(None)` for a rotation.
    fn choose(&self, view: &Roster, kind: CommitKind) -> Option<Option<(usize, ChangeKind)>> {
        let members: Vec<usize> = view.keys().copied().collect();
        Some(match kind {
            CommitKind::Rotate => None,
            CommitKind::Add { target, admin } => {
                let candidates: Vec<usize> = (0..POOL)
                    .filter(|i| !view.contains_key(i))
                    .filter(|i| self.mode == Mode::Serialized || !self.ever_added.contains(i))
                    .collect();
                if candidates.is_empty() {
                    return None;
                }
                let role = if admin {
                    MemberRole::Admin
                } else {
                    MemberRole::Member
                };
                Some((
                    candidates[target.index(candidates.len())],
                    ChangeKind::Add(role),
                ))
            }
            CommitKind::Remove { target } => {
                Some((members[target.index(members.len())], ChangeKind::Remove))
            }
            CommitKind::SetRole { target } => {
                let t = members[target.index(members.len())];
                let role = if view[&t].0 == MemberRole::Admin {
                    MemberRole::Member
                } else {
                    MemberRole::Admin
                };
                Some((t, ChangeKind::SetRole(role)))
            }
        })
    }

    /// Mirrors a commit the library applied at `to` (the committer included): the chain of
    /// states, the revocations (those of abandoned commits undone), the pending sender keys
    /// installed.
    pub(super) fn enter(&mut self, to: usize, ii: usize, c: usize) -> Result<(), TestCaseError> {
        let (epoch, result) = (self.commits[c].epoch, self.commits[c].result);
        let member = self.is_member(&result, to);
        let removed = self.commits[c].removed.clone();
        let inc = &mut self.nodes[to].incarnations[ii];
        inc.chain.split_off(&epoch);
        let before = inc.revoked.len();
        inc.revoked.retain(|r| r.by < epoch);
        self.stats.revocations_undone += before - inc.revoked.len();
        let held: Vec<(u32, Hash)> = inc.chain.iter().map(|(&e, &h)| (e, h)).collect();
        for who in removed {
            inc.revoked.push(Revocation {
                who,
                by: epoch,
                state: result,
                held: held.clone(),
            });
        }
        inc.chain.insert(epoch, result);
        // Spec 6.3 step 5: the pending keys of the new state install (its senders are its
        // members); all fail, silently, if this member is not one.
        let (ready, rest) = std::mem::take(&mut inc.pending)
            .into_iter()
            .partition(|&(_, e, h)| (e, h) == (epoch, result));
        inc.pending = rest;
        if member {
            inc.installed.extend(ready);
        }
        let inc = &self.nodes[to].incarnations[ii];
        prop_assert_eq!(inc.group.epoch(), epoch);
        prop_assert_eq!(
            inc.group.state_hash(),
            result,
            "member computed another state"
        );
        prop_assert_eq!(inc.group.is_member(), member);
        self.check_members(&inc.group, &result)
    }

    pub(super) fn process_welcome(&mut self, to: usize, c: usize) -> Result<Fate, TestCaseError> {
        let rec = &self.commits[c];
        let joined = Group::join(
            self.nodes[to].identity.public(),
            &self.public(rec.committer),
            rec.welcome.as_ref().unwrap(),
            config(),
            NOW,
        );
        let group = match joined {
            Ok(group) => group,
            Err(err) => return fail(format!("{to} could not join from commit {c}: {err:?}")),
        };
        prop_assert_eq!(group.state_hash(), rec.result);
        prop_assert_eq!(group.epoch(), rec.epoch);
        prop_assert!(group.is_member());
        self.check_members(&group, &rec.result)?;
        prop_assert!(
            self.incarnation(to, &rec.result).is_none(),
            "welcomed twice into one state"
        );
        let (result, epoch) = (rec.result, rec.epoch);
        self.add_incarnation(to, result, epoch, group);
        Ok(Fate::Done)
    }

    pub(super) fn process_commit(&mut self, to: usize, c: usize) -> Result<Fate, TestCaseError> {
        let (epoch, parent, result, committer) = {
            let rec = &self.commits[c];
            (rec.epoch, rec.parent, rec.result, rec.committer)
        };
        let Some(ii) = self.incarnation_for(to, &parent)? else {
            return Ok(Fate::Park);
        };
        let inc = &self.nodes[to].incarnations[ii];
        let current = inc.tip().0;

        #[derive(Debug)]
        enum Expect {
            Started,
            Resolved(u32),
            Lost,
            LoserRemoved,
            Ahead,
            UnknownParent,
        }
        let expect = if inc.chain.get(&(epoch - 1)) == Some(&parent) {
            match inc.chain.get(&epoch) {
                Some(existing) if *existing == result => {
                    return fail(format!("commit {c} delivered twice to {to}"));
                }
                Some(existing) => {
                    let other = self.tree[existing].commit.unwrap();
                    if self.rank(c) < self.rank(other) {
                        let abandoned = inc
                            .chain
                            .range(epoch..)
                            .map(|(_, h)| inc.sealed.get(h).copied().unwrap_or(0))
                            .sum();
                        Expect::Resolved(abandoned)
                    } else if !self.is_member(existing, committer) {
                        Expect::LoserRemoved
                    } else {
                        Expect::Lost
                    }
                }
                None => Expect::Started,
            }
        } else if epoch > current + 1 {
            Expect::Ahead
        } else {
            Expect::UnknownParent
        };

        let committer_public = self.public(committer);
        let got = self.nodes[to].incarnations[ii].group.receive(
            &committer_public,
            &self.commits[c].bytes,
            NOW,
        );
        let changes = self.commits[c].changes.clone();
        let fate = match (&expect, got) {
            (Expect::Started, Ok(outcome)) => {
                let want = ControlOutcome::EpochStarted {
                    epoch,
                    committer: committer_public,
                    changes,
                };
                prop_assert_eq!(outcome, want);
                self.enter(to, ii, c)?;
                Fate::Done
            }
            (Expect::Resolved(abandoned), Ok(outcome)) => {
                let want = ControlOutcome::ConflictResolved {
                    epoch,
                    committer: committer_public,
                    changes,
                    abandoned_messages: *abandoned,
                };
                prop_assert_eq!(outcome, want);
                self.stats.conflicts_resolved += 1;
                self.enter(to, ii, c)?;
                Fate::Done
            }
            (Expect::Lost, Ok(ControlOutcome::LostConflict { epoch: e })) if e == epoch => {
                self.stats.conflicts_lost += 1;
                Fate::Drop
            }
            (Expect::LoserRemoved, Err(Error::NotAMember(_))) => {
                self.stats.conflicts_lost += 1;
                Fate::Drop
            }
            (
                Expect::Ahead,
                Err(Error::EpochAhead {
                    epoch: e,
                    current: c,
                }),
            ) if e == epoch && c == current => Fate::Park,
            (Expect::UnknownParent, Err(Error::UnknownParent { epoch: e })) if e == epoch => {
                Fate::Park
            }
            (expect, got) => {
                return fail(format!(
                    "commit {c} (epoch {epoch}, by {committer}) at {to}: expected {expect:?}, \
                     got {got:?}"
                ));
            }
        };
        if matches!(fate, Fate::Park | Fate::Drop) {
            let inc = &self.nodes[to].incarnations[ii];
            prop_assert_eq!(
                (inc.group.epoch(), inc.group.state_hash()),
                inc.tip(),
                "a refused commit moved the member"
            );
        }
        Ok(fate)
    }
}

/// The model's verdict on a commit by `x` making `change` on a state with member list `view`
/// (spec 6.2 steps 4 and 5): the new member list, or the refusal.
fn predict(
    view: &Roster,
    x: usize,
    change: Option<(usize, ChangeKind)>,
    epoch: u32,
) -> Result<Roster, Refusal> {
    let Some(&(role, _)) = view.get(&x) else {
        return Err(Refusal::NotAMember);
    };
    let mut roster = view.clone();
    let Some((target, kind)) = change else {
        return Ok(roster);
    };
    let leaving = matches!(kind, ChangeKind::Remove) && target == x;
    if !leaving && role != MemberRole::Admin {
        return Err(Refusal::NotAuthorized);
    }
    match kind {
        ChangeKind::Add(role) | ChangeKind::SetRole(role) => {
            roster.insert(target, (role, (epoch, 0)));
        }
        ChangeKind::Remove => {
            roster.remove(&target);
        }
    }
    let admin = roster.values().any(|(r, _)| *r == MemberRole::Admin);
    if roster.is_empty() || !admin {
        return Err(Refusal::InvalidChange);
    }
    Ok(roster)
}
