//! The parties, the scripted timeline of group.json and the runner that plays it against real
//! `Group`s.

use std::sync::OnceLock;

use super::super::{Recorder, T0, error_class, keys};
use crate::error::Error;
use crate::group::{
    Change, CommitOutput, ControlOutcome, Group, GroupConfig, GroupOpened, MemberRole,
    SenderKeyMessage,
};
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::time::Timestamp;

/// The group configuration of every member: the defaults, except that one superseded epoch is
/// kept (so that the script shows an epoch being pruned).
pub(super) fn config() -> GroupConfig {
    GroupConfig {
        max_past_epochs: 1,
        ..GroupConfig::default()
    }
}

/// The time of timeline step `step` (Unix seconds): a day after the pairwise vectors.
pub(super) fn step_time(step: usize) -> u64 {
    T0 + 86_400 + 10 * step as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Party {
    Alice,
    Bob,
    Carol,
}

pub(super) use Party::{Alice, Bob, Carol};

pub(super) const PARTIES: [Party; 3] = [Alice, Bob, Carol];

impl Party {
    pub(super) fn name(self) -> &'static str {
        match self {
            Alice => "alice",
            Bob => "bob",
            Carol => "carol",
        }
    }

    pub(super) fn i(self) -> usize {
        self as usize
    }

    /// Seed of the RNG this party's group draws from (group id, sender chains).
    fn seed(self) -> u64 {
        match self {
            Alice => 0x5EA1_6000_0001,
            Bob => 0x5EA1_6000_0002,
            Carol => 0x5EA1_6000_0003,
        }
    }

    pub(super) fn public(self) -> PublicIdentity {
        static PUBLIC: OnceLock<Vec<PublicIdentity>> = OnceLock::new();
        PUBLIC.get_or_init(|| {
            PARTIES
                .iter()
                .map(|p| keys::identity(p.name()).pair.public().clone())
                .collect()
        })[self.i()]
        .clone()
    }

    pub(super) fn of(identity: &PublicIdentity) -> Party {
        PARTIES
            .into_iter()
            .find(|p| p.public() == *identity)
            .expect("a vector identity")
    }

    pub(super) fn of_key(key: &[u8; 32]) -> Party {
        PARTIES
            .into_iter()
            .find(|p| p.public().signing_key() == key)
            .expect("a vector identity key")
    }
}

pub(super) fn names(identities: &[PublicIdentity]) -> Vec<&'static str> {
    identities.iter().map(|i| Party::of(i).name()).collect()
}

pub(super) fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Admin => "admin",
        MemberRole::Member => "member",
    }
}

/// A membership change of the script.
#[derive(Clone, Copy)]
pub(super) enum Op {
    Add(Party, MemberRole),
    Remove(Party),
}

impl Op {
    pub(super) fn change(self) -> Change {
        match self {
            Op::Add(p, role) => Change::Add(p.public(), role),
            Op::Remove(p) => Change::Remove(p.public()),
        }
    }
}

/// One step of the script. Commits, sender keys and messages are numbered in the order they
/// are made.
#[derive(Clone, Copy)]
pub(super) enum Step {
    /// The party creates the group (epoch 0).
    Create(Party),
    /// The party commits one change.
    Commit(Party, Op),
    /// The party joins from the welcome of commit `n` (sent by its committer).
    Join(Party, usize),
    /// The party receives commit `n` from its committer.
    ReceiveCommit(Party, usize),
    /// The party receives sender key `n` from its owner.
    ReceiveSenderKey(Party, usize),
    /// The party seals the next message.
    Seal(Party),
    /// The party opens message `n`.
    Open(Party, usize),
}

use Step::{Create, Join, Open, ReceiveCommit, ReceiveSenderKey, Seal};

impl Step {
    pub(super) fn party(self) -> Party {
        match self {
            Create(p)
            | Step::Commit(p, _)
            | Join(p, _)
            | ReceiveCommit(p, _)
            | ReceiveSenderKey(p, _)
            | Seal(p)
            | Open(p, _) => p,
        }
    }
}

const fn add(p: Party, role: MemberRole) -> Op {
    Op::Add(p, role)
}

/// The script, with the result each step must have ("ok", a control outcome or an error class).
#[rustfmt::skip]
pub(super) const TIMELINE: [(Step, &str); 54] = [
    (Create(Alice), "ok"),                                      // 0: epoch 0, alice alone (admin)
    (Step::Commit(Alice, add(Bob, MemberRole::Member)), "ok"),  // 1: c0, epoch 1
    (Join(Bob, 0), "ok"),                                       // 2
    (Seal(Alice), "ok"),                                        // 3: m0 (epoch 1), sender key k0
    (ReceiveSenderKey(Bob, 0), "sender_key_added"),             // 4
    (Open(Bob, 0), "ok"),                                       // 5
    (Seal(Bob), "ok"),                                          // 6: m1 (epoch 1), k1
    (ReceiveSenderKey(Alice, 1), "sender_key_added"),           // 7: m1 itself arrives at step 53
    (Step::Commit(Alice, add(Carol, MemberRole::Member)), "ok"),// 8: c1, epoch 2
    (ReceiveCommit(Bob, 1), "epoch_started"),                   // 9
    (Join(Carol, 1), "ok"),                                     // 10
    (Seal(Alice), "ok"),                                        // 11: m2 (epoch 2), k2
    (Seal(Alice), "ok"),                                        // 12: m3
    (ReceiveSenderKey(Bob, 2), "sender_key_added"),             // 13
    (Open(Bob, 3), "ok"),                                       // 14: m2 skipped
    (Open(Bob, 2), "ok"),                                       // 15: skipped key used
    (Open(Carol, 2), "missing_sender_key"),                     // 16: the envelope overtook k2
    (ReceiveSenderKey(Carol, 2), "sender_key_added"),           // 17
    (Open(Carol, 2), "ok"),                                     // 18: retried
    (Open(Carol, 3), "ok"),                                     // 19
    (Seal(Bob), "ok"),                                          // 20: m4 (epoch 2, a member), k3
    (Seal(Bob), "ok"),                                          // 21: m5 (empty)
    (Seal(Bob), "ok"),                                          // 22: m6
    (ReceiveSenderKey(Carol, 3), "sender_key_added"),           // 23
    (Open(Carol, 6), "ok"),                                     // 24: m4 and m5 skipped
    (Open(Carol, 4), "ok"),                                     // 25: skipped key used
    (ReceiveSenderKey(Alice, 3), "sender_key_added"),           // 26
    (Open(Alice, 4), "ok"),                                     // 27
    (Open(Alice, 5), "ok"),                                     // 28
    (Open(Alice, 6), "ok"),                                     // 29
    (Seal(Carol), "ok"),                                        // 30: m7 (epoch 2), k4
    (ReceiveSenderKey(Bob, 4), "sender_key_added"),             // 31
    (Open(Bob, 7), "ok"),                                       // 32
    (Open(Carol, 5), "ok"),                                     // 33: late, skipped key used
    (Open(Carol, 5), "replay"),                                 // 34: duplicate delivery
    (Step::Commit(Alice, Op::Remove(Bob)), "ok"),               // 35: c2, epoch 3
    (Seal(Alice), "ok"),                                        // 36: m8 (epoch 3), k5 (carol only)
    (Seal(Bob), "ok"),                                          // 37: m9 (epoch 2): bob has not seen c2
    (ReceiveSenderKey(Carol, 5), "sender_key_pending"),         // 38: k5 overtook c2
    (Open(Carol, 8), "epoch_ahead"),                            // 39: so did m8
    (ReceiveCommit(Carol, 2), "epoch_started"),                 // 40: c2; the pending k5 is installed
    (Open(Carol, 8), "ok"),                                     // 41
    (Open(Carol, 9), "not_a_member"),                           // 42: bob was removed (and is revoked in epoch 2)
    (ReceiveSenderKey(Alice, 4), "sender_key_added"),           // 43: k4 late, into past epoch 2
    (Open(Alice, 7), "ok"),                                     // 44: a member's late message
    (Open(Alice, 9), "not_a_member"),                           // 45
    (Open(Bob, 8), "epoch_ahead"),                              // 46
    (ReceiveCommit(Bob, 2), "epoch_started"),                   // 47: bob learns of his removal
    (Open(Bob, 8), "not_a_member"),                             // 48
    (Seal(Carol), "ok"),                                        // 49: m10 (epoch 3), k6 (alice only)
    (ReceiveSenderKey(Alice, 6), "sender_key_added"),           // 50
    (Open(Alice, 10), "ok"),                                    // 51
    (Open(Bob, 10), "not_a_member"),                            // 52
    (Open(Alice, 1), "unknown_epoch"),                          // 53: epoch 1 was pruned
];

const PLAINTEXTS: [&str; 11] = [
    "Alice (admin), epoch 1: welcome to the group, Bob.",
    "Bob (member), epoch 1: Alice reads this only after epoch 1 was pruned.",
    "Alice: Carol is in. First message of epoch 2.",
    "Alice: second message of epoch 2, which Bob reads first.",
    "Bob: hello Carol.",
    "",
    "Bob: third message of the epoch; Carol reads it before the other two. It is long enough to \
     pad to more than the minimum.",
    "Carol (member): hi both.",
    "Alice, epoch 3: Bob has been removed; only Carol reads this.",
    "Bob, still in epoch 2: I have not seen my removal yet.",
    "Carol, epoch 3: just the two of us now.",
];

pub(super) fn plaintext(message: usize) -> Vec<u8> {
    PLAINTEXTS[message].as_bytes().to_vec()
}

/// Plays the script against real groups.
pub(super) struct Runner {
    identities: Vec<IdentityKeyPair>,
    groups: Vec<Option<Group>>,
    rngs: Vec<Recorder>,
    pub(super) commits: Vec<(Party, CommitOutput)>,
    pub(super) sender_keys: Vec<(Party, SenderKeyMessage)>,
    pub(super) envelopes: Vec<(Party, Vec<u8>)>,
}

/// What a step returned.
pub(super) enum Outcome {
    Created {
        drawn: Vec<u8>,
    },
    Committed {
        commit: usize,
    },
    Joined(Result<(), Error>),
    Received(Result<ControlOutcome, Error>),
    Sealed {
        message: usize,
        sender_key: Option<usize>,
        drawn: Vec<u8>,
    },
    Opened(Result<GroupOpened, Error>),
}

fn control_outcome_name(outcome: &ControlOutcome) -> &'static str {
    match outcome {
        ControlOutcome::EpochStarted { .. } => "epoch_started",
        ControlOutcome::ConflictResolved { .. } => "conflict_resolved",
        ControlOutcome::LostConflict { .. } => "lost_conflict",
        ControlOutcome::SenderKeyAdded { .. } => "sender_key_added",
        ControlOutcome::SenderKeyPending { .. } => "sender_key_pending",
        ControlOutcome::Duplicate => "duplicate",
    }
}

/// "ok", the control outcome or the error class of a step.
pub(super) fn result_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Created { .. }
        | Outcome::Committed { .. }
        | Outcome::Sealed { .. }
        | Outcome::Joined(Ok(()))
        | Outcome::Opened(Ok(_)) => "ok",
        Outcome::Joined(Err(e)) | Outcome::Received(Err(e)) | Outcome::Opened(Err(e)) => {
            error_class(e)
        }
        Outcome::Received(Ok(outcome)) => control_outcome_name(outcome),
    }
}

impl Runner {
    pub(super) fn new() -> Self {
        Runner {
            identities: PARTIES
                .iter()
                .map(|p| keys::identity(p.name()).pair)
                .collect(),
            groups: PARTIES.iter().map(|_| None).collect(),
            rngs: PARTIES.iter().map(|p| Recorder::new(p.seed())).collect(),
            commits: Vec::new(),
            sender_keys: Vec::new(),
            envelopes: Vec::new(),
        }
    }

    /// The party's group, if it has one (it has created or joined the group).
    pub(super) fn get(&self, party: Party) -> Option<&Group> {
        self.groups[party.i()].as_ref()
    }

    pub(super) fn group(&self, party: Party) -> &Group {
        self.get(party).expect("the party is in the group")
    }

    fn group_mut(&mut self, party: Party) -> &mut Group {
        self.groups[party.i()]
            .as_mut()
            .expect("the party is in the group")
    }

    /// Plays step `step` of [`TIMELINE`] and checks its result.
    pub(super) fn step(&mut self, step: usize) -> Outcome {
        let now = Timestamp::from_unix_secs(step_time(step));
        let (script, expected) = TIMELINE[step];
        let outcome = match script {
            Create(p) => {
                let rng = &mut self.rngs[p.i()];
                let group = Group::create(&self.identities[p.i()], config(), rng, now).unwrap();
                self.groups[p.i()] = Some(group);
                Outcome::Created {
                    drawn: self.rngs[p.i()].take(),
                }
            }
            Step::Commit(p, op) => {
                let identity = &self.identities[p.i()];
                let group = self.groups[p.i()].as_mut().unwrap();
                let out = group.commit(identity, &[op.change()], now).unwrap();
                self.commits.push((p, out));
                Outcome::Committed {
                    commit: self.commits.len() - 1,
                }
            }
            Join(p, c) => {
                let (committer, out) = &self.commits[c];
                let welcome = out.welcome.as_ref().expect("the commit adds a member");
                let me = self.identities[p.i()].public();
                let joined = Group::join(me, &committer.public(), welcome, config(), now);
                Outcome::Joined(joined.map(|group| self.groups[p.i()] = Some(group)))
            }
            ReceiveCommit(p, c) => {
                let (committer, out) = &self.commits[c];
                let (from, bytes) = (committer.public(), out.commit.clone());
                Outcome::Received(self.group_mut(p).receive(&from, &bytes, now))
            }
            ReceiveSenderKey(p, k) => {
                let (owner, key) = &self.sender_keys[k];
                assert!(
                    key.recipients.contains(&p.public()),
                    "k{k} is not for {p:?}"
                );
                let (from, bytes) = (owner.public(), key.message.expose_secret().to_vec());
                Outcome::Received(self.group_mut(p).receive(&from, &bytes, now))
            }
            Seal(p) => {
                let message = self.envelopes.len();
                let group = self.groups[p.i()].as_mut().unwrap();
                let rng = &mut self.rngs[p.i()];
                let sealed = group.seal(&plaintext(message), rng, now).unwrap();
                let sender_key = sealed.sender_key.map(|key| {
                    self.sender_keys.push((p, key));
                    self.sender_keys.len() - 1
                });
                self.envelopes.push((p, sealed.envelope));
                Outcome::Sealed {
                    message,
                    sender_key,
                    drawn: self.rngs[p.i()].take(),
                }
            }
            Open(p, m) => {
                let (sender, envelope) = self.envelopes[m].clone();
                let opened = self.group_mut(p).open(&envelope, now);
                if let Ok(opened) = &opened {
                    assert_eq!(opened.plaintext, plaintext(m));
                    assert_eq!(opened.sender, sender.public());
                }
                Outcome::Opened(opened)
            }
        };
        assert_eq!(
            result_name(&outcome),
            expected,
            "step {step}: the groups no longer behave as the scripted timeline expects"
        );
        outcome
    }
}
