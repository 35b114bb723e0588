//! group.json: one group of three members (alice, bob, carol) across two adds and a removal,
//! scripted step by step (commits, welcomes, sender keys, seals, deliveries), with every commit,
//! state hash, sender key and message key; and the group envelopes and control messages a member
//! must reject, each at a position of the script.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::OnceLock;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{FILE_VERSION, RawKeys, Recorder, T0, error_class, h, keys};
use crate::error::Error;
use crate::group::control::{Commit, ControlBody, ControlWire, SignedCommit, WireSenderKey};
use crate::group::message::{self, GroupHeader};
use crate::group::roster::WireChange;
use crate::group::{
    Change, CommitOutput, ControlOutcome, Group, GroupConfig, GroupId, GroupOpened, Member,
    MemberRole, SenderKeyMessage,
};
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::kdf::{
    self, LABEL_GROUP_COMMIT, LABEL_GROUP_COMMIT_HASH, LABEL_GROUP_SIGNATURE, LABEL_GROUP_STATE,
    MessageKeys,
};
use crate::padding;
use crate::secret::Secret32;
use crate::time::Timestamp;

/// The group configuration of every member: the defaults, except that one superseded epoch is
/// kept (so that the script shows an epoch being pruned).
fn config() -> GroupConfig {
    GroupConfig {
        max_past_epochs: 1,
        ..GroupConfig::default()
    }
}

/// The time of timeline step `step` (Unix seconds): a day after the pairwise vectors.
fn step_time(step: usize) -> u64 {
    T0 + 86_400 + 10 * step as u64
}

/// Seed of the RNG the conflicting sender key of `sender_key_conflict` is drawn from.
const CONFLICT_SEED: u64 = 0x5EA1_6000_0C0F;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Party {
    Alice,
    Bob,
    Carol,
}

use Party::{Alice, Bob, Carol};

const PARTIES: [Party; 3] = [Alice, Bob, Carol];

impl Party {
    fn name(self) -> &'static str {
        match self {
            Alice => "alice",
            Bob => "bob",
            Carol => "carol",
        }
    }

    fn i(self) -> usize {
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

    fn public(self) -> PublicIdentity {
        static PUBLIC: OnceLock<Vec<PublicIdentity>> = OnceLock::new();
        PUBLIC.get_or_init(|| {
            PARTIES
                .iter()
                .map(|p| keys::identity(p.name()).pair.public().clone())
                .collect()
        })[self.i()]
        .clone()
    }

    fn of(identity: &PublicIdentity) -> Party {
        PARTIES
            .into_iter()
            .find(|p| p.public() == *identity)
            .expect("a vector identity")
    }
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Admin => "admin",
        MemberRole::Member => "member",
    }
}

/// A membership change of the script.
#[derive(Clone, Copy)]
enum Op {
    Add(Party, MemberRole),
    Remove(Party),
}

impl Op {
    fn change(self) -> Change {
        match self {
            Op::Add(p, role) => Change::Add(p.public(), role),
            Op::Remove(p) => Change::Remove(p.public()),
        }
    }
}

/// One step of the script. Commits, sender keys and messages are numbered in the order they
/// are made.
#[derive(Clone, Copy)]
enum Step {
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
    fn party(self) -> Party {
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
const TIMELINE: [(Step, &str); 54] = [
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
    (Open(Carol, 9), "not_a_member"),                           // 42: bob was removed
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

fn plaintext(message: usize) -> Vec<u8> {
    PLAINTEXTS[message].as_bytes().to_vec()
}

/// Plays the script against real groups.
struct Runner {
    identities: Vec<IdentityKeyPair>,
    groups: Vec<Option<Group>>,
    rngs: Vec<Recorder>,
    commits: Vec<(Party, CommitOutput)>,
    sender_keys: Vec<(Party, SenderKeyMessage)>,
    envelopes: Vec<(Party, Vec<u8>)>,
}

enum Outcome {
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

fn result_name(outcome: &Outcome) -> &'static str {
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
    fn new() -> Self {
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

    fn group(&self, party: Party) -> &Group {
        self.groups[party.i()]
            .as_ref()
            .expect("the party is in the group")
    }

    fn group_mut(&mut self, party: Party) -> &mut Group {
        self.groups[party.i()]
            .as_mut()
            .expect("the party is in the group")
    }

    fn step(&mut self, step: usize) -> Outcome {
        let now = Timestamp::from_unix_secs(step_time(step));
        let (script, expected) = TIMELINE[step];
        let outcome = match script {
            Create(p) => {
                let group = Group::create(
                    &self.identities[p.i()],
                    config(),
                    &mut self.rngs[p.i()],
                    now,
                )
                .unwrap();
                self.groups[p.i()] = Some(group);
                Outcome::Created {
                    drawn: self.rngs[p.i()].take(),
                }
            }
            Step::Commit(p, op) => {
                let group = self.groups[p.i()].as_mut().unwrap();
                let out = group
                    .commit(&self.identities[p.i()], &[op.change()], now)
                    .unwrap();
                self.commits.push((p, out));
                Outcome::Committed {
                    commit: self.commits.len() - 1,
                }
            }
            Join(p, c) => {
                let (committer, out) = &self.commits[c];
                let welcome = out.welcome.clone().expect("the commit adds a member");
                let joined = Group::join(
                    self.identities[p.i()].public(),
                    &committer.public(),
                    &welcome,
                    config(),
                    now,
                );
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
                let sealed = group
                    .seal(&plaintext(message), &mut self.rngs[p.i()], now)
                    .unwrap();
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

// ---------------------------------------------------------------------------------------------
// The file.

#[derive(Serialize)]
pub(super) struct GroupFile {
    description: &'static str,
    version: u32,
    config: GroupConfig,
    parties: Vec<PartyVector>,
    group_id: String,
    epochs: Vec<EpochVector>,
    commits: Vec<CommitVector>,
    sender_keys: Vec<SenderKeyVector>,
    messages: Vec<MessageVector>,
    timeline: Vec<StepVector>,
    negative: Vec<NegativeVector>,
}

#[derive(Serialize)]
struct PartyVector {
    name: &'static str,
    signing_seed: String,
    agreement_secret: String,
    public_identity: String,
}

#[derive(Serialize)]
struct EpochVector {
    epoch: u32,
    commit: Option<usize>,
    parent_hash: String,
    commit_hash: String,
    members: Vec<MemberVector>,
    state_hash_input: String,
    state_hash: String,
}

#[derive(Serialize)]
struct MemberVector {
    index: u32,
    name: &'static str,
    role: &'static str,
    public_identity: String,
}

#[derive(Serialize)]
struct CommitVector {
    index: usize,
    committer: &'static str,
    committer_role: &'static str,
    time: u64,
    epoch: u32,
    parent_hash: String,
    changes: Vec<ChangeVector>,
    commit_bytes: String,
    signed_message: String,
    signature: String,
    commit_hash: String,
    control: String,
    recipients: Vec<&'static str>,
    welcome: Option<String>,
    welcome_recipients: Vec<&'static str>,
}

#[derive(Serialize)]
struct ChangeVector {
    kind: &'static str,
    member: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

#[derive(Serialize)]
struct SenderKeyVector {
    index: usize,
    sender: &'static str,
    epoch: u32,
    sender_index: u32,
    state_hash: String,
    counter: u32,
    chain_key: String,
    signing_seed: String,
    signing_key: String,
    recipients: Vec<&'static str>,
    control: String,
}

#[derive(Serialize)]
struct MessageVector {
    index: usize,
    sender: &'static str,
    sender_role: &'static str,
    time: u64,
    epoch: u32,
    sender_index: u32,
    counter: u32,
    sender_key: usize,
    state_hash: String,
    chain_key: String,
    message_key: String,
    next_chain_key: String,
    aes_key: String,
    mac_key: String,
    nonce: String,
    plaintext: String,
    padded_length: usize,
    header: String,
    ciphertext: String,
    hmac_input: String,
    hmac_tag: String,
    signature_input: String,
    signature: String,
    envelope: String,
}

#[derive(Serialize)]
struct StepVector {
    step: usize,
    time: u64,
    party: &'static str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_key: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drawn: Option<String>,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    opened: Option<OpenedVector>,
    epoch_after: u32,
    member_after: bool,
    state_hash_after: String,
}

#[derive(Serialize)]
struct OpenedVector {
    sender: &'static str,
    epoch: u32,
    plaintext: String,
}

/// An epoch as the generator tracks it.
struct KnownEpoch {
    state_hash: [u8; 32],
    members: Vec<(Party, MemberRole)>,
}

impl KnownEpoch {
    fn index_of(&self, party: Party) -> u32 {
        let index = self
            .members
            .iter()
            .position(|(p, _)| *p == party)
            .expect("a member of the epoch");
        u32::try_from(index).unwrap()
    }
}

/// A sender's chain in one epoch, as the generator tracks it.
#[derive(Clone, Copy)]
struct Chain {
    sender_key: usize,
    chain_key: [u8; 32],
    next: u32,
    signing_seed: [u8; 32],
}

/// A message's raw values, for the negative vectors.
struct SealedMessage {
    epoch: u32,
    keys: RawKeys,
    signing_seed: [u8; 32],
    envelope: Vec<u8>,
}

/// The positive part of the file, with the raw values the negative vectors are built from.
struct Generated {
    file: GroupFile,
    group_id: [u8; 16],
    epochs: BTreeMap<u32, KnownEpoch>,
    chains: BTreeMap<(Party, u32), Chain>,
    messages: Vec<SealedMessage>,
    commits: Vec<Vec<u8>>,
    welcomes: Vec<Option<Vec<u8>>>,
    sender_keys: Vec<Vec<u8>>,
}

fn chain_step(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let (message, next) = kdf::chain_step(&Secret32::take(&mut chain_key.clone()));
    (*message.expose(), *next.expose())
}

fn group_keys(message_key: &[u8; 32]) -> RawKeys {
    let keys = kdf::group_message_keys(&Secret32::take(&mut message_key.clone()));
    RawKeys {
        aes_key: keys.aes_key,
        mac_key: keys.mac_key,
        nonce: keys.nonce,
    }
}

fn message_keys(keys: &RawKeys) -> MessageKeys {
    MessageKeys {
        aes_key: keys.aes_key,
        mac_key: keys.mac_key,
        nonce: keys.nonce,
    }
}

fn verifying_key(signing_seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(signing_seed)
        .verifying_key()
        .to_bytes()
}

fn varint(value: u64) -> Vec<u8> {
    crate::encoding::to_exact_vec(&value).unwrap()
}

fn varint_len(value: u64) -> usize {
    varint(value).len()
}

/// `LABEL ‖ group id ‖ be32(epoch) ‖ parent hash ‖ commit hash ‖ be32(n) ‖ (identity ‖ role)*`.
fn state_hash_input(
    group_id: &[u8; 16],
    epoch: u32,
    parent_hash: &[u8; 32],
    commit_hash: &[u8; 32],
    members: &[Member],
) -> Vec<u8> {
    let count = u32::try_from(members.len()).unwrap();
    let mut input = [
        LABEL_GROUP_STATE,
        group_id,
        &epoch.to_be_bytes(),
        parent_hash,
        commit_hash,
        &count.to_be_bytes(),
    ]
    .concat();
    for member in members {
        input.extend_from_slice(&member.identity().to_bytes());
        input.push(member.role().wire());
    }
    input
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

fn names(identities: &[PublicIdentity]) -> Vec<&'static str> {
    identities.iter().map(|i| Party::of(i).name()).collect()
}

/// The epoch `group` is in, checked against its public state and recorded.
fn record_epoch(
    group: &Group,
    commit: Option<usize>,
    parent_hash: [u8; 32],
    commit_hash: [u8; 32],
) -> (EpochVector, KnownEpoch) {
    let members = group.members();
    let input = state_hash_input(
        group.id().as_bytes(),
        group.epoch(),
        &parent_hash,
        &commit_hash,
        members,
    );
    let state_hash = sha256(&[&input]);
    assert_eq!(state_hash, group.state_hash(), "epoch {}", group.epoch());
    let vector = EpochVector {
        epoch: group.epoch(),
        commit,
        parent_hash: h(&parent_hash),
        commit_hash: h(&commit_hash),
        members: members
            .iter()
            .enumerate()
            .map(|(index, member)| MemberVector {
                index: u32::try_from(index).unwrap(),
                name: Party::of(member.identity()).name(),
                role: role_name(member.role()),
                public_identity: h(&member.identity().to_bytes()),
            })
            .collect(),
        state_hash_input: h(&input),
        state_hash: h(&state_hash),
    };
    let known = KnownEpoch {
        state_hash,
        members: members
            .iter()
            .map(|m| (Party::of(m.identity()), m.role()))
            .collect(),
    };
    (vector, known)
}

fn change_vector(change: &WireChange) -> ChangeVector {
    match change {
        WireChange::Add { identity, role } => ChangeVector {
            kind: "add",
            member: Party::of(&PublicIdentity::from_bytes(identity).unwrap()).name(),
            identity: Some(h(identity)),
            key: None,
            role: Some(role_name(*role)),
        },
        WireChange::Remove { member } => ChangeVector {
            kind: "remove",
            member: party_of_key(member).name(),
            identity: None,
            key: Some(h(member)),
            role: None,
        },
        WireChange::SetRole { member, role } => ChangeVector {
            kind: "set_role",
            member: party_of_key(member).name(),
            identity: None,
            key: Some(h(member)),
            role: Some(role_name(*role)),
        },
    }
}

fn party_of_key(key: &[u8; 32]) -> Party {
    PARTIES
        .into_iter()
        .find(|p| p.public().signing_key() == key)
        .expect("a vector identity key")
}

fn decode_signed_commit(control: &[u8]) -> SignedCommit {
    match ControlWire::decode(control).unwrap().body {
        ControlBody::Commit(signed) => signed,
        _ => panic!("not a commit"),
    }
}

fn decode_sender_key(control: &[u8]) -> WireSenderKey {
    match ControlWire::decode(control).unwrap().body {
        ControlBody::SenderKey(key) => key,
        _ => panic!("not a sender key"),
    }
}

/// The bytes a group envelope's signature covers: `LABEL ‖ S ‖ envelope without signature`.
fn signature_input(state_hash: &[u8; 32], unsigned: &[u8]) -> Vec<u8> {
    [LABEL_GROUP_SIGNATURE, state_hash, unsigned].concat()
}

/// `header ‖ varint(len) ‖ AES-GCM(padded) ‖ HMAC ‖ Ed25519`, built by hand.
fn seal_raw(
    header: &[u8],
    keys: &RawKeys,
    state_hash: &[u8; 32],
    signing_seed: &[u8; 32],
    padded: &[u8],
) -> Vec<u8> {
    let aad = [header, state_hash].concat();
    let mut ciphertext = padded.to_vec();
    let tag = Aes256Gcm::new(&keys.aes_key.into())
        .encrypt_inout_detached(
            &Nonce::from(keys.nonce),
            &aad,
            ciphertext.as_mut_slice().into(),
        )
        .unwrap();
    ciphertext.extend_from_slice(&tag);
    let mac = kdf::hmac(
        &keys.mac_key,
        &[header, state_hash, &keys.nonce, &ciphertext],
    );
    let unsigned = [header, &varint(ciphertext.len() as u64), &ciphertext, &mac].concat();
    let signature =
        SigningKey::from_bytes(signing_seed).sign(&signature_input(state_hash, &unsigned));
    [unsigned, signature.to_bytes().to_vec()].concat()
}

fn generate() -> Generated {
    let mut runner = Runner::new();
    let mut group_id = None;
    let mut epoch_vectors = Vec::new();
    let mut epochs: BTreeMap<u32, KnownEpoch> = BTreeMap::new();
    let mut commits = Vec::new();
    let mut sender_keys = Vec::new();
    let mut messages = Vec::new();
    let mut sealed_messages = Vec::new();
    let mut timeline = Vec::new();
    let mut chains: BTreeMap<(Party, u32), Chain> = BTreeMap::new();
    for (step, (script, _)) in TIMELINE.iter().enumerate() {
        let time = step_time(step);
        let party = script.party();
        let outcome = runner.step(step);
        let mut vector = StepVector {
            step,
            time,
            party: party.name(),
            action: "",
            commit: None,
            sender_key: None,
            message: None,
            from: None,
            drawn: None,
            result: result_name(&outcome),
            opened: None,
            epoch_after: 0,
            member_after: false,
            state_hash_after: String::new(),
        };
        match (*script, outcome) {
            (Create(_), Outcome::Created { drawn }) => {
                let group = runner.group(party);
                let id: [u8; 16] = drawn.as_slice().try_into().expect("a 16-byte group id");
                assert_eq!(group.id(), GroupId::from_bytes(id));
                group_id = Some(id);
                let (epoch, known) = record_epoch(group, None, [0; 32], [0; 32]);
                epoch_vectors.push(epoch);
                epochs.insert(0, known);
                vector.action = "create";
                vector.drawn = Some(h(&drawn));
            }
            (Step::Commit(..), Outcome::Committed { commit: index }) => {
                let (committer, out) = &runner.commits[index];
                let signed = decode_signed_commit(&out.commit);
                let commit = signed.decode().unwrap();
                signed.verify(&committer.public()).unwrap();
                let commit_hash = sha256(&[LABEL_GROUP_COMMIT_HASH, &signed.commit]);
                assert_eq!(commit_hash, signed.hash());
                let parent = &epochs[&(commit.epoch - 1)];
                assert_eq!(commit.parent_hash, parent.state_hash);
                assert_eq!(&commit.committer, committer.public().signing_key());
                assert_eq!(Some(commit.group_id), group_id);
                let committer_role = parent.members[parent.index_of(*committer) as usize].1;
                let group = runner.group(*committer);
                assert_eq!(group.epoch(), commit.epoch);
                let (epoch, known) =
                    record_epoch(group, Some(index), commit.parent_hash, commit_hash);
                if let Some(welcome) = &out.welcome {
                    let ControlBody::Welcome {
                        parent: summary,
                        commit: carried,
                    } = ControlWire::decode(welcome).unwrap().body
                    else {
                        panic!("not a welcome");
                    };
                    assert_eq!(carried, signed);
                    let parent_vector = &epoch_vectors[commit.epoch as usize - 1];
                    assert_eq!(summary.epoch, commit.epoch - 1);
                    assert_eq!(h(&summary.parent_hash), parent_vector.parent_hash);
                    assert_eq!(h(&summary.commit_hash), parent_vector.commit_hash);
                    let members: Vec<String> =
                        summary.members.iter().map(|m| h(&m.identity)).collect();
                    let expected: Vec<String> = parent_vector
                        .members
                        .iter()
                        .map(|m| m.public_identity.clone())
                        .collect();
                    assert_eq!(members, expected);
                }
                commits.push(CommitVector {
                    index,
                    committer: committer.name(),
                    committer_role: role_name(committer_role),
                    time,
                    epoch: commit.epoch,
                    parent_hash: h(&commit.parent_hash),
                    changes: commit.changes.iter().map(change_vector).collect(),
                    commit_bytes: h(&signed.commit),
                    signed_message: h(&[LABEL_GROUP_COMMIT, &signed.commit].concat()),
                    signature: h(&signed.signature),
                    commit_hash: h(&commit_hash),
                    control: h(&out.commit),
                    recipients: names(&out.commit_recipients),
                    welcome: out.welcome.as_ref().map(|w| h(w)),
                    welcome_recipients: names(&out.welcome_recipients),
                });
                epoch_vectors.push(epoch);
                epochs.insert(commit.epoch, known);
                vector.action = "commit";
                vector.commit = Some(index);
            }
            (Join(_, c), Outcome::Joined(_)) => {
                vector.action = "join";
                vector.commit = Some(c);
                vector.from = Some(runner.commits[c].0.name());
            }
            (ReceiveCommit(_, c), Outcome::Received(_)) => {
                vector.action = "receive_commit";
                vector.commit = Some(c);
                vector.from = Some(runner.commits[c].0.name());
            }
            (ReceiveSenderKey(_, k), Outcome::Received(_)) => {
                vector.action = "receive_sender_key";
                vector.sender_key = Some(k);
                vector.from = Some(runner.sender_keys[k].0.name());
            }
            (
                Seal(_),
                Outcome::Sealed {
                    message: index,
                    sender_key,
                    drawn,
                },
            ) => {
                let envelope = runner.envelopes[index].1.clone();
                let parsed = message::parse(&envelope).unwrap();
                let header = parsed.header.clone();
                let known = &epochs[&header.epoch];
                assert_eq!(header.sender, known.index_of(party));
                assert_eq!(Some(header.group_id), group_id);
                if let Some(k) = sender_key {
                    // A fresh sending chain: its chain key, then its signing seed.
                    assert_eq!(drawn.len(), 64, "a sender key draws two secrets");
                    let chain_key: [u8; 32] = drawn[..32].try_into().unwrap();
                    let signing_seed: [u8; 32] = drawn[32..].try_into().unwrap();
                    let key_message = &runner.sender_keys[k].1;
                    let control = key_message.message.expose_secret().to_vec();
                    let key = decode_sender_key(&control);
                    assert_eq!(Some(key.group_id), group_id);
                    assert_eq!(key.epoch, header.epoch);
                    assert_eq!(key.state_hash, known.state_hash);
                    assert_eq!(key.counter, 0);
                    assert_eq!(key.chain_key.expose(), &chain_key);
                    assert_eq!(key.signing_key, verifying_key(&signing_seed));
                    let recipients = names(&key_message.recipients);
                    let expected: Vec<&str> = known
                        .members
                        .iter()
                        .filter(|(p, _)| *p != party)
                        .map(|(p, _)| p.name())
                        .collect();
                    assert_eq!(recipients, expected);
                    sender_keys.push(SenderKeyVector {
                        index: k,
                        sender: party.name(),
                        epoch: key.epoch,
                        sender_index: header.sender,
                        state_hash: h(&key.state_hash),
                        counter: key.counter,
                        chain_key: h(&chain_key),
                        signing_seed: h(&signing_seed),
                        signing_key: h(&key.signing_key),
                        recipients,
                        control: h(&control),
                    });
                    let fresh = Chain {
                        sender_key: k,
                        chain_key,
                        next: 0,
                        signing_seed,
                    };
                    assert!(chains.insert((party, header.epoch), fresh).is_none());
                } else {
                    assert!(drawn.is_empty(), "m{index}: drew for no sender key");
                }
                let chain = chains.get_mut(&(party, header.epoch)).unwrap();
                assert_eq!(header.counter, chain.next);
                let chain_key = chain.chain_key;
                let (message_key, next_chain_key) = chain_step(&chain_key);
                chain.chain_key = next_chain_key;
                chain.next += 1;
                let chain = *chain;
                let keys = group_keys(&message_key);
                let state_hash = known.state_hash;
                let header_bytes = parsed.header_bytes.to_vec();
                let hmac_input = [
                    &header_bytes[..],
                    &state_hash,
                    &keys.nonce,
                    parsed.ciphertext,
                ]
                .concat();
                let hmac_tag = kdf::hmac(&keys.mac_key, &[&hmac_input]);
                assert_eq!(&hmac_tag, parsed.tag);
                let signature_input = signature_input(&state_hash, parsed.signed);
                let signature = SigningKey::from_bytes(&chain.signing_seed).sign(&signature_input);
                assert_eq!(&signature.to_bytes(), parsed.signature);
                let text = plaintext(index);
                // The generator's keys open what the group sealed, and sealing by hand
                // reproduces it.
                let verifying =
                    ed25519_dalek::VerifyingKey::from_bytes(&verifying_key(&chain.signing_seed))
                        .unwrap();
                assert_eq!(
                    message::open(&parsed, &message_keys(&keys), &state_hash, &verifying).unwrap(),
                    text
                );
                let mut padded = text.clone();
                padding::pad_in_place(&mut padded, 0);
                assert_eq!(
                    seal_raw(
                        &header_bytes,
                        &keys,
                        &state_hash,
                        &chain.signing_seed,
                        &padded
                    ),
                    envelope
                );
                let role = known.members[header.sender as usize].1;
                messages.push(MessageVector {
                    index,
                    sender: party.name(),
                    sender_role: role_name(role),
                    time,
                    epoch: header.epoch,
                    sender_index: header.sender,
                    counter: header.counter,
                    sender_key: chain.sender_key,
                    state_hash: h(&state_hash),
                    chain_key: h(&chain_key),
                    message_key: h(&message_key),
                    next_chain_key: h(&next_chain_key),
                    aes_key: h(&keys.aes_key),
                    mac_key: h(&keys.mac_key),
                    nonce: h(&keys.nonce),
                    plaintext: h(&text),
                    padded_length: padding::padded_len(text.len()),
                    header: h(&header_bytes),
                    ciphertext: h(parsed.ciphertext),
                    hmac_input: h(&hmac_input),
                    hmac_tag: h(&hmac_tag),
                    signature_input: h(&signature_input),
                    signature: h(&signature.to_bytes()),
                    envelope: h(&envelope),
                });
                sealed_messages.push(SealedMessage {
                    epoch: header.epoch,
                    keys,
                    signing_seed: chain.signing_seed,
                    envelope: envelope.clone(),
                });
                vector.action = "seal";
                vector.message = Some(index);
                vector.sender_key = sender_key;
                vector.drawn = (!drawn.is_empty()).then(|| h(&drawn));
            }
            (Open(_, m), Outcome::Opened(opened)) => {
                vector.action = "open";
                vector.message = Some(m);
                vector.opened = opened.ok().map(|o| OpenedVector {
                    sender: Party::of(&o.sender).name(),
                    epoch: o.epoch,
                    plaintext: h(&o.plaintext),
                });
            }
            _ => unreachable!("each step has its outcome"),
        }
        let group = runner.group(party);
        vector.epoch_after = group.epoch();
        vector.member_after = group.is_member();
        vector.state_hash_after = h(&group.state_hash());
        assert_eq!(group.state_hash(), epochs[&group.epoch()].state_hash);
        timeline.push(vector);
    }
    let group_id = group_id.expect("the group was created");
    let file = GroupFile {
        description: "One group: alice creates it and adds bob (epoch 1) and carol (epoch 2), \
                      all three send, alice removes bob (epoch 3) and carol and alice go on \
                      without him. Every commit, state hash, sender key and message with its \
                      keys, the timeline of deliveries through the public API, and the inputs a \
                      member must reject (negative). See README.md.",
        version: FILE_VERSION,
        config: config(),
        parties: PARTIES
            .iter()
            .map(|p| {
                let id = keys::identity(p.name());
                PartyVector {
                    name: p.name(),
                    signing_seed: h(&id.signing_seed),
                    agreement_secret: h(&id.agreement_secret),
                    public_identity: h(&id.pair.public().to_bytes()),
                }
            })
            .collect(),
        group_id: h(&group_id),
        epochs: epoch_vectors,
        commits,
        sender_keys,
        messages,
        timeline,
        negative: Vec::new(),
    };
    Generated {
        file,
        group_id,
        epochs,
        chains,
        messages: sealed_messages,
        commits: runner
            .commits
            .iter()
            .map(|(_, o)| o.commit.clone())
            .collect(),
        welcomes: runner
            .commits
            .iter()
            .map(|(_, o)| o.welcome.clone())
            .collect(),
        sender_keys: runner
            .sender_keys
            .iter()
            .map(|(_, k)| k.message.expose_secret().to_vec())
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Negative vectors.

/// What the receiver does with the input.
#[derive(Clone, Copy)]
enum Operation {
    /// `Group::open`.
    Open,
    /// `Group::receive` from this pairwise peer.
    Receive(Party),
    /// `Group::join` with this pairwise peer.
    Join(Party),
}

/// What the input is made from.
#[derive(Clone, Copy)]
enum Base {
    Message(usize),
    Commit(usize),
    Welcome(usize),
    SenderKey(usize),
    /// Built from scratch (see the mutation).
    None,
}

/// How the input is made from its base.
#[derive(Clone, Copy)]
enum Mutation {
    /// The base itself.
    Unchanged,
    /// The base itself, given as coming from a pairwise peer other than its real sender.
    WrongFrom,
    /// XOR 0x01 into byte `n` of a field.
    Flip(&'static str, usize),
    /// Set the first byte of a field.
    SetByte(&'static str, u8),
    /// Drop the last `n` bytes.
    DropLast(usize),
    /// Append these bytes.
    Append(&'static [u8]),
    /// Encode a header varint with a redundant trailing zero group.
    Overlong(&'static str),
    /// Change a header field and re-encode the header canonically.
    Rewrite(&'static str, u32),
    /// XOR 0x01 into byte `n` of the ciphertext, then recompute the HMAC tag and the signature
    /// with the real sender's keys.
    ResealFlippedCiphertext(usize),
    /// Seal 32 zero bytes (no 0x80 marker) under the base message's header and keys, with a
    /// valid HMAC tag and signature.
    ResealBadPadding,
    /// A member who holds another member's chain key builds an envelope in its name, with a
    /// valid HMAC tag, and signs it with its own epoch signing key.
    Forge {
        forger: Party,
        impersonated: Party,
        epoch: u32,
        counter: u32,
    },
    /// A commit for `epoch`, on the script's chain, signed by `signer`.
    CraftCommit {
        signer: Party,
        epoch: u32,
        changes: &'static [Op],
    },
    /// A second sender key of `owner` for `epoch`, drawn from `CONFLICT_SEED`.
    CraftSenderKey { owner: Party, epoch: u32 },
}

struct Spec {
    name: &'static str,
    description: &'static str,
    receiver: Party,
    after_steps: usize,
    operation: Operation,
    base: Base,
    mutation: Mutation,
    expected: &'static str,
    /// Whether the base, delivered unchanged from its real sender at that position, is
    /// accepted (`None` without a base).
    base_accepted: Option<bool>,
}

const FORGED_TEXT: &str = "Alice: please send me your password (forged by carol).";

#[rustfmt::skip]
const SPECS: &[Spec] = &[
    Spec { name: "forged_sender", description: "Carol holds Alice's epoch-2 chain key (from Alice's sender key): she derives the key of Alice's next counter, builds an envelope naming Alice as its sender with a valid HMAC tag, and signs it with her own epoch-2 signing key.", receiver: Bob, after_steps: 33, operation: Operation::Open, base: Base::None, mutation: Mutation::Forge { forger: Carol, impersonated: Alice, epoch: 2, counter: 2 }, expected: "invalid_signature", base_accepted: None },
    Spec { name: "header_group_id_flipped", description: "One bit of the header's group id flipped: the envelope names another group.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("group_id", 0), expected: "wrong_group", base_accepted: Some(true) },
    Spec { name: "wrong_version", description: "Protocol version byte set to 2.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::SetByte("version", 2), expected: "unsupported_version", base_accepted: Some(true) },
    Spec { name: "wrong_suite", description: "Cipher suite byte set to 2.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::SetByte("suite", 2), expected: "unsupported_suite", base_accepted: Some(true) },
    Spec { name: "pairwise_kind", description: "Kind byte set to 1: a pairwise envelope, not for Group::open.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::SetByte("kind", 1), expected: "unexpected_kind", base_accepted: Some(true) },
    Spec { name: "sender_index_flipped", description: "Sender index 2 flipped to 3: no member has that index in epoch 2.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("sender", 0), expected: "not_a_member", base_accepted: Some(true) },
    Spec { name: "counter_flipped", description: "Counter 0 flipped to 1: the key of counter 1 does not authenticate the changed header.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("counter", 0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "ciphertext_flipped", description: "One bit of the AES-GCM ciphertext flipped (caught by the HMAC tag).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("ciphertext", 0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "gcm_tag_flipped", description: "One bit of the GCM tag flipped (caught by the HMAC tag).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("gcm_tag", 0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "hmac_tag_flipped", description: "One bit of the HMAC tag flipped.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("hmac_tag", 31), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "signature_flipped", description: "One bit of the sender's signature flipped: the HMAC tag verifies, the signature does not.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("signature", 0), expected: "invalid_signature", base_accepted: Some(true) },
    Spec { name: "ciphertext_flipped_resigned", description: "One bit of the ciphertext flipped, then the HMAC tag and the signature recomputed with the real sender's keys: both verify, AES-GCM must still be checked and fail.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::ResealFlippedCiphertext(0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "authentic_bad_padding", description: "Header, keys, GCM tag, HMAC tag and signature all valid, but the padded plaintext is 32 zero bytes (no 0x80 marker).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::ResealBadPadding, expected: "malformed", base_accepted: Some(true) },
    Spec { name: "truncated_signature", description: "The last byte removed: the signature is 63 bytes.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::DropLast(1), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "trailing_byte", description: "A zero byte appended after the signature.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Append(&[0]), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "overlong_header_varint", description: "The header's counter varint encoded with a redundant zero group (same value, not canonical).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Overlong("counter"), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "epoch_ahead", description: "Epoch set to 3 in an envelope to a member still in epoch 2: keep it and retry after the commit.", receiver: Carol, after_steps: 30, operation: Operation::Open, base: Base::Message(5), mutation: Mutation::Rewrite("epoch", 3), expected: "epoch_ahead", base_accepted: Some(true) },
    Spec { name: "epoch_before_join", description: "An epoch-1 message to Carol, who joined in epoch 2 and never had epoch 1.", receiver: Carol, after_steps: 19, operation: Operation::Open, base: Base::Message(0), mutation: Mutation::Unchanged, expected: "unknown_epoch", base_accepted: Some(false) },
    Spec { name: "pruned_epoch", description: "Bob's epoch-1 message, delivered again at the end: Alice keeps one superseded epoch (max_past_epochs = 1), and epoch 1 was pruned.", receiver: Alice, after_steps: 54, operation: Operation::Open, base: Base::Message(1), mutation: Mutation::Unchanged, expected: "unknown_epoch", base_accepted: Some(false) },
    Spec { name: "replay", description: "A message delivered a second time (it was opened from a skipped key).", receiver: Bob, after_steps: 16, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Unchanged, expected: "replay", base_accepted: Some(false) },
    Spec { name: "replay_in_order", description: "A message delivered a second time (it was opened in order, advancing the chain).", receiver: Carol, after_steps: 26, operation: Operation::Open, base: Base::Message(6), mutation: Mutation::Unchanged, expected: "replay", base_accepted: Some(false) },
    Spec { name: "missing_sender_key", description: "An envelope that overtook its sender key: keep it and retry after the sender's pairwise messages.", receiver: Carol, after_steps: 16, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Unchanged, expected: "missing_sender_key", base_accepted: Some(false) },
    Spec { name: "counter_too_far_ahead", description: "Counter set to 2001 where 0 is next: a jump of 2001 > max_forward_jump (2000).", receiver: Bob, after_steps: 32, operation: Operation::Open, base: Base::Message(7), mutation: Mutation::Rewrite("counter", 2001), expected: "too_far_ahead", base_accepted: Some(true) },
    Spec { name: "counter_at_forward_bound", description: "Counter set to 2000 where 0 is next: a jump of exactly max_forward_jump is allowed, so the envelope reaches authentication and fails it.", receiver: Bob, after_steps: 32, operation: Operation::Open, base: Base::Message(7), mutation: Mutation::Rewrite("counter", 2000), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "own_message_reflected", description: "Alice's own group message given back to her.", receiver: Alice, after_steps: 13, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Unchanged, expected: "unexpected_kind", base_accepted: Some(false) },
    Spec { name: "removed_member_message", description: "Bob sealed in epoch 2 after Alice's commit removed him, before he saw it; Carol has applied the commit.", receiver: Carol, after_steps: 42, operation: Operation::Open, base: Base::Message(9), mutation: Mutation::Unchanged, expected: "not_a_member", base_accepted: Some(false) },
    Spec { name: "message_to_removed_member", description: "An epoch-3 message given to Bob, who applied his removal: he is not in epoch 3.", receiver: Bob, after_steps: 48, operation: Operation::Open, base: Base::Message(8), mutation: Mutation::Unchanged, expected: "not_a_member", base_accepted: Some(false) },
    Spec { name: "commit_bad_signature", description: "The removal commit with one bit of its signature flipped.", receiver: Carol, after_steps: 40, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Flip("signature", 0), expected: "invalid_signature", base_accepted: Some(true) },
    Spec { name: "commit_wrong_group", description: "The removal commit with one bit of the commit's group id flipped (checked before the signature).", receiver: Carol, after_steps: 40, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Flip("group_id", 0), expected: "wrong_group", base_accepted: Some(true) },
    Spec { name: "commit_unknown_parent", description: "The removal commit with one bit of its parent hash flipped: it builds on no state the receiver knows (checked before the signature).", receiver: Carol, after_steps: 40, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Flip("parent_hash", 0), expected: "unknown_parent", base_accepted: Some(true) },
    Spec { name: "commit_epoch_ahead", description: "The epoch-3 commit given to Bob while he is in epoch 1: keep it and retry after the missing commit.", receiver: Bob, after_steps: 9, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Unchanged, expected: "epoch_ahead", base_accepted: Some(false) },
    Spec { name: "commit_by_non_admin", description: "Carol, a member (not an admin), commits epoch 4 adding Bob back, correctly signed.", receiver: Alice, after_steps: 54, operation: Operation::Receive(Carol), base: Base::None, mutation: Mutation::CraftCommit { signer: Carol, epoch: 4, changes: &[Op::Add(Bob, MemberRole::Member)] }, expected: "not_authorized", base_accepted: None },
    Spec { name: "commit_by_non_member", description: "Bob, removed in epoch 3, commits epoch 4 (a key rotation, which any member may commit), correctly signed.", receiver: Carol, after_steps: 54, operation: Operation::Receive(Bob), base: Base::None, mutation: Mutation::CraftCommit { signer: Bob, epoch: 4, changes: &[] }, expected: "not_a_member", base_accepted: None },
    Spec { name: "sender_key_from_non_member", description: "Carol's epoch-3 sender key, arriving over Bob's pairwise session: sender keys are attributed to the pairwise peer, and Bob is not in epoch 3.", receiver: Alice, after_steps: 50, operation: Operation::Receive(Bob), base: Base::SenderKey(6), mutation: Mutation::WrongFrom, expected: "not_a_member", base_accepted: Some(true) },
    Spec { name: "sender_key_conflict", description: "A second sender key from Alice for epoch 2, with another chain key and signing key: a member's sender key cannot change within an epoch.", receiver: Bob, after_steps: 14, operation: Operation::Receive(Alice), base: Base::None, mutation: Mutation::CraftSenderKey { owner: Alice, epoch: 2 }, expected: "sender_key_conflict", base_accepted: None },
    Spec { name: "control_truncated", description: "A sender key with its last byte removed.", receiver: Carol, after_steps: 17, operation: Operation::Receive(Alice), base: Base::SenderKey(2), mutation: Mutation::DropLast(1), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "control_wrong_version", description: "A sender key with its control version byte set to 2.", receiver: Carol, after_steps: 17, operation: Operation::Receive(Alice), base: Base::SenderKey(2), mutation: Mutation::SetByte("version", 2), expected: "unsupported_version", base_accepted: Some(true) },
    Spec { name: "welcome_to_receive", description: "A welcome given to Group::receive (welcomes are for Group::join).", receiver: Bob, after_steps: 10, operation: Operation::Receive(Alice), base: Base::Welcome(1), mutation: Mutation::Unchanged, expected: "unexpected_kind", base_accepted: Some(false) },
    Spec { name: "welcome_for_another_member", description: "Bob's welcome (epoch 1) used by Carol to join: it does not add her.", receiver: Carol, after_steps: 10, operation: Operation::Join(Alice), base: Base::Welcome(0), mutation: Mutation::Unchanged, expected: "invalid_change", base_accepted: Some(false) },
    Spec { name: "welcome_from_wrong_peer", description: "Carol's welcome, arriving over Bob's pairwise session: a welcome must come from the admin whose commit it carries.", receiver: Carol, after_steps: 10, operation: Operation::Join(Bob), base: Base::Welcome(1), mutation: Mutation::WrongFrom, expected: "not_authorized", base_accepted: Some(true) },
];

#[derive(Serialize)]
struct NegativeVector {
    name: &'static str,
    description: &'static str,
    receiver: &'static str,
    after_steps: usize,
    receiver_steps: Vec<usize>,
    now: u64,
    operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    base: Option<BaseVector>,
    base_accepted: Option<bool>,
    mutation: MutationVector,
    #[serde(skip_serializing_if = "Option::is_none")]
    forged_envelope: Option<ForgedVector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crafted_commit: Option<CraftedCommitVector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crafted_sender_key: Option<CraftedSenderKeyVector>,
    input: String,
    expected_error: &'static str,
}

#[derive(Serialize)]
struct BaseVector {
    kind: &'static str,
    index: usize,
}

#[derive(Serialize, Default)]
struct MutationVector {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xor: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
}

#[derive(Serialize)]
struct ForgedVector {
    forger: &'static str,
    impersonated: &'static str,
    epoch: u32,
    sender_index: u32,
    counter: u32,
    state_hash: String,
    chain_key: String,
    message_key: String,
    aes_key: String,
    mac_key: String,
    nonce: String,
    plaintext: String,
    header: String,
    hmac_input: String,
    hmac_tag: String,
    forger_sender_key: usize,
    forger_signing_seed: String,
    signature_input: String,
    signature: String,
}

#[derive(Serialize)]
struct CraftedCommitVector {
    signer: &'static str,
    epoch: u32,
    parent_hash: String,
    changes: Vec<ChangeVector>,
    commit_bytes: String,
    signed_message: String,
    signature: String,
    commit_hash: String,
}

#[derive(Serialize)]
struct CraftedSenderKeyVector {
    owner: &'static str,
    epoch: u32,
    state_hash: String,
    counter: u32,
    chain_key: String,
    signing_seed: String,
    signing_key: String,
}

/// Byte range, region and (for headers) field name of `field` in a group envelope.
fn envelope_field(
    envelope: &[u8],
    field: &str,
) -> (&'static str, Option<&'static str>, Range<usize>) {
    let parsed = message::parse(envelope).unwrap();
    let header = &parsed.header;
    let header_len = parsed.header_bytes.len();
    let epoch_end = 19 + varint_len(header.epoch.into());
    let sender_end = epoch_end + varint_len(header.sender.into());
    assert_eq!(sender_end + varint_len(header.counter.into()), header_len);
    let ciphertext_start = header_len + varint_len(parsed.ciphertext.len() as u64);
    let signature = envelope.len() - 64;
    let hmac = signature - 32;
    let gcm = hmac - 16;
    let header_fields: [(&'static str, Range<usize>); 7] = [
        ("version", 0..1),
        ("suite", 1..2),
        ("kind", 2..3),
        ("group_id", 3..19),
        ("epoch", 19..epoch_end),
        ("sender", epoch_end..sender_end),
        ("counter", sender_end..header_len),
    ];
    if let Some((name, range)) = header_fields.into_iter().find(|(n, _)| *n == field) {
        return ("header", Some(name), range);
    }
    let regions: [(&'static str, Range<usize>); 5] = [
        ("ciphertext_length", header_len..ciphertext_start),
        ("ciphertext", ciphertext_start..gcm),
        ("gcm_tag", gcm..hmac),
        ("hmac_tag", hmac..signature),
        ("signature", signature..envelope.len()),
    ];
    let (region, range) = regions
        .into_iter()
        .find(|(n, _)| *n == field)
        .unwrap_or_else(|| panic!("no envelope field {field}"));
    (region, None, range)
}

/// Byte range, region and field name of `field` in a commit control message.
fn commit_field(control: &[u8], field: &str) -> (&'static str, Option<&'static str>, Range<usize>) {
    let signed = decode_signed_commit(control);
    let commit = signed.decode().unwrap();
    let start = 2 + varint_len(signed.commit.len() as u64);
    let parent = start + 16 + varint_len(commit.epoch.into());
    let end = start + signed.commit.len();
    assert_eq!(end + 64, control.len());
    let range = match field {
        "group_id" => start..start + 16,
        "parent_hash" => parent..parent + 32,
        "signature" => return ("signature", None, end..control.len()),
        _ => panic!("no commit field {field}"),
    };
    assert_eq!(
        control[range.clone()],
        if field == "group_id" {
            commit.group_id.to_vec()
        } else {
            commit.parent_hash.to_vec()
        }
    );
    (
        "commit",
        Some(if field == "group_id" {
            "group_id"
        } else {
            "parent_hash"
        }),
        range,
    )
}

fn locate(
    base: Base,
    bytes: &[u8],
    field: &str,
) -> (&'static str, Option<&'static str>, Range<usize>) {
    match (base, field) {
        (Base::Message(_), _) => envelope_field(bytes, field),
        (Base::Commit(_), _) => commit_field(bytes, field),
        (Base::SenderKey(_) | Base::Welcome(_), "version") => ("control", Some("version"), 0..1),
        _ => panic!("no field {field} in this base"),
    }
}

fn base_bytes(base: Base, generated: &Generated) -> Option<Vec<u8>> {
    match base {
        Base::Message(m) => Some(generated.messages[m].envelope.clone()),
        Base::Commit(c) => Some(generated.commits[c].clone()),
        Base::Welcome(c) => Some(generated.welcomes[c].clone().expect("a welcome")),
        Base::SenderKey(k) => Some(generated.sender_keys[k].clone()),
        Base::None => None,
    }
}

/// The pairwise peer a base is normally delivered from.
fn real_from(base: Base, file: &GroupFile) -> Option<Party> {
    let name = match base {
        Base::Message(_) | Base::None => return None,
        Base::Commit(c) | Base::Welcome(c) => file.commits[c].committer,
        Base::SenderKey(k) => file.sender_keys[k].sender,
    };
    PARTIES.into_iter().find(|p| p.name() == name)
}

struct Built {
    input: Vec<u8>,
    mutation: MutationVector,
    forged: Option<ForgedVector>,
    commit: Option<CraftedCommitVector>,
    sender_key: Option<CraftedSenderKeyVector>,
}

impl Built {
    fn plain(input: Vec<u8>, mutation: MutationVector) -> Self {
        Built {
            input,
            mutation,
            forged: None,
            commit: None,
            sender_key: None,
        }
    }
}

fn build(spec: &Spec, generated: &Generated) -> Built {
    let base = base_bytes(spec.base, generated);
    let base_ref = || base.clone().expect("the mutation needs a base");
    let kind = |kind| MutationVector {
        kind,
        ..MutationVector::default()
    };
    match spec.mutation {
        Mutation::Unchanged => Built::plain(base_ref(), kind("none")),
        Mutation::WrongFrom => Built::plain(base_ref(), kind("wrong_from")),
        Mutation::Flip(field, n) => {
            let base = base_ref();
            let (region, field, range) = locate(spec.base, &base, field);
            assert!(n < range.len());
            let mut input = base;
            input[range.start + n] ^= 1;
            Built::plain(
                input,
                MutationVector {
                    kind: "flip_byte",
                    region: Some(region),
                    field,
                    offset: Some(range.start + n),
                    xor: Some(1),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::SetByte(field, value) => {
            let base = base_ref();
            let (region, field, range) = locate(spec.base, &base, field);
            let mut input = base;
            assert_ne!(input[range.start], value);
            input[range.start] = value;
            Built::plain(
                input,
                MutationVector {
                    kind: "set_byte",
                    region: Some(region),
                    field,
                    offset: Some(range.start),
                    value: Some(value.into()),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::DropLast(n) => {
            let base = base_ref();
            let length = base.len() - n;
            Built::plain(
                base[..length].to_vec(),
                MutationVector {
                    kind: "truncate",
                    length: Some(length),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::Append(bytes) => Built::plain(
            [base_ref().as_slice(), bytes].concat(),
            MutationVector {
                kind: "append",
                bytes: Some(h(bytes)),
                ..MutationVector::default()
            },
        ),
        Mutation::Overlong(field) => {
            let base = base_ref();
            let (region, field, range) = envelope_field(&base, field);
            let mut replacement = base[range.clone()].to_vec();
            *replacement.last_mut().unwrap() |= 0x80;
            replacement.push(0);
            Built::plain(
                [&base[..range.start], &replacement, &base[range.end..]].concat(),
                MutationVector {
                    kind: "overlong_varint",
                    region: Some(region),
                    field,
                    offset: Some(range.start),
                    bytes: Some(h(&replacement)),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::Rewrite(field, value) => {
            let base = base_ref();
            let parsed = message::parse(&base).unwrap();
            let mut header = parsed.header.clone();
            match field {
                "epoch" => header.epoch = value,
                "sender" => header.sender = value,
                "counter" => header.counter = value,
                _ => panic!("no rewritable field {field}"),
            }
            let header_bytes = crate::encoding::to_exact_vec(&header).unwrap();
            Built::plain(
                [&header_bytes, &base[parsed.header_bytes.len()..]].concat(),
                MutationVector {
                    kind: "rewrite_field",
                    region: Some("header"),
                    field: Some(field),
                    value: Some(value),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::ResealFlippedCiphertext(n) => {
            let Base::Message(m) = spec.base else {
                panic!("reseal needs a message")
            };
            let sealed = &generated.messages[m];
            let state_hash = generated.epochs[&sealed.epoch].state_hash;
            let (_, _, range) = envelope_field(&sealed.envelope, "ciphertext");
            let offset = range.start + n;
            let mut input = sealed.envelope.clone();
            input[offset] ^= 1;
            let parsed = message::parse(&sealed.envelope).unwrap();
            let header_len = parsed.header_bytes.len();
            let hmac = input.len() - 64 - 32;
            // The ciphertext (with its GCM tag) sits between the length prefix and the HMAC tag.
            let ciphertext_start = header_len + varint_len(parsed.ciphertext.len() as u64);
            let mac = kdf::hmac(
                &sealed.keys.mac_key,
                &[
                    &input[..header_len],
                    &state_hash,
                    &sealed.keys.nonce,
                    &input[ciphertext_start..hmac],
                ],
            );
            input[hmac..hmac + 32].copy_from_slice(&mac);
            let signature = SigningKey::from_bytes(&sealed.signing_seed)
                .sign(&signature_input(&state_hash, &input[..input.len() - 64]));
            let end = input.len();
            input[end - 64..].copy_from_slice(&signature.to_bytes());
            Built::plain(
                input,
                MutationVector {
                    kind: "flip_byte_reauthenticate",
                    region: Some("ciphertext"),
                    offset: Some(offset),
                    xor: Some(1),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::ResealBadPadding => {
            let Base::Message(m) = spec.base else {
                panic!("reseal needs a message")
            };
            let sealed = &generated.messages[m];
            let state_hash = generated.epochs[&sealed.epoch].state_hash;
            let parsed = message::parse(&sealed.envelope).unwrap();
            let zeros = [0u8; 32];
            Built::plain(
                seal_raw(
                    parsed.header_bytes,
                    &sealed.keys,
                    &state_hash,
                    &sealed.signing_seed,
                    &zeros,
                ),
                MutationVector {
                    kind: "reseal_bad_padding",
                    bytes: Some(h(&zeros)),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::Forge {
            forger,
            impersonated,
            epoch,
            counter,
        } => {
            let known = &generated.epochs[&epoch];
            let victim =
                &generated.file.sender_keys[generated.chains[&(impersonated, epoch)].sender_key];
            let mut chain_key: [u8; 32] =
                hex::decode(&victim.chain_key).unwrap().try_into().unwrap();
            for _ in 0..counter {
                chain_key = chain_step(&chain_key).1;
            }
            let (message_key, _) = chain_step(&chain_key);
            let keys = group_keys(&message_key);
            let sender_index = known.index_of(impersonated);
            let header = GroupHeader::new(
                &GroupId::from_bytes(generated.group_id),
                epoch,
                sender_index,
                counter,
            );
            let header_bytes = crate::encoding::to_exact_vec(&header).unwrap();
            let forger_chain = generated.chains[&(forger, epoch)];
            let text = FORGED_TEXT.as_bytes();
            let mut padded = text.to_vec();
            padding::pad_in_place(&mut padded, 0);
            let input = seal_raw(
                &header_bytes,
                &keys,
                &known.state_hash,
                &forger_chain.signing_seed,
                &padded,
            );
            let parsed = message::parse(&input).unwrap();
            assert_eq!(
                input,
                message::seal(
                    &header,
                    &message_keys(&keys),
                    &known.state_hash,
                    &SigningKey::from_bytes(&forger_chain.signing_seed),
                    text
                )
                .unwrap()
            );
            let hmac_input = [
                &header_bytes[..],
                &known.state_hash,
                &keys.nonce,
                parsed.ciphertext,
            ]
            .concat();
            let forged = ForgedVector {
                forger: forger.name(),
                impersonated: impersonated.name(),
                epoch,
                sender_index,
                counter,
                state_hash: h(&known.state_hash),
                chain_key: h(&chain_key),
                message_key: h(&message_key),
                aes_key: h(&keys.aes_key),
                mac_key: h(&keys.mac_key),
                nonce: h(&keys.nonce),
                plaintext: h(text),
                header: h(&header_bytes),
                hmac_input: h(&hmac_input),
                hmac_tag: h(parsed.tag),
                forger_sender_key: forger_chain.sender_key,
                forger_signing_seed: h(&forger_chain.signing_seed),
                signature_input: h(&signature_input(&known.state_hash, parsed.signed)),
                signature: h(parsed.signature),
            };
            Built {
                input,
                mutation: kind("forged_envelope"),
                forged: Some(forged),
                commit: None,
                sender_key: None,
            }
        }
        Mutation::CraftCommit {
            signer,
            epoch,
            changes,
        } => {
            let parent = &generated.epochs[&(epoch - 1)];
            let commit = Commit {
                group_id: generated.group_id,
                epoch,
                parent_hash: parent.state_hash,
                committer: *signer.public().signing_key(),
                changes: changes
                    .iter()
                    .map(|op| WireChange::from_change(&op.change()))
                    .collect(),
            };
            let identity = keys::identity(signer.name()).pair;
            let signed = SignedCommit::sign(&commit, &identity).unwrap();
            let input = ControlWire::new(ControlBody::Commit(signed.clone()))
                .encode_public()
                .unwrap();
            let crafted = CraftedCommitVector {
                signer: signer.name(),
                epoch,
                parent_hash: h(&parent.state_hash),
                changes: commit.changes.iter().map(change_vector).collect(),
                commit_bytes: h(&signed.commit),
                signed_message: h(&[LABEL_GROUP_COMMIT, &signed.commit].concat()),
                signature: h(&signed.signature),
                commit_hash: h(&signed.hash()),
            };
            Built {
                input,
                mutation: kind("crafted_commit"),
                forged: None,
                commit: Some(crafted),
                sender_key: None,
            }
        }
        Mutation::CraftSenderKey { owner, epoch } => {
            let mut rng = Recorder::new(CONFLICT_SEED);
            let mut secrets = [0u8; 64];
            rand_core::Rng::fill_bytes(&mut rng, &mut secrets);
            let chain_key: [u8; 32] = secrets[..32].try_into().unwrap();
            let signing_seed: [u8; 32] = secrets[32..].try_into().unwrap();
            let state_hash = generated.epochs[&epoch].state_hash;
            let key = WireSenderKey {
                group_id: generated.group_id,
                epoch,
                state_hash,
                counter: 0,
                chain_key: Secret32::take(&mut chain_key.clone()),
                signing_key: verifying_key(&signing_seed),
            };
            let input = ControlWire::new(ControlBody::SenderKey(key))
                .encode()
                .unwrap()
                .expose_secret()
                .to_vec();
            let crafted = CraftedSenderKeyVector {
                owner: owner.name(),
                epoch,
                state_hash: h(&state_hash),
                counter: 0,
                chain_key: h(&chain_key),
                signing_seed: h(&signing_seed),
                signing_key: h(&verifying_key(&signing_seed)),
            };
            Built {
                input,
                mutation: kind("crafted_sender_key"),
                forged: None,
                commit: None,
                sender_key: Some(crafted),
            }
        }
    }
}

fn operation_name(operation: Operation) -> (&'static str, Option<&'static str>) {
    match operation {
        Operation::Open => ("open", None),
        Operation::Receive(from) => ("receive", Some(from.name())),
        Operation::Join(from) => ("join", Some(from.name())),
    }
}

fn base_vector(base: Base) -> Option<BaseVector> {
    let (kind, index) = match base {
        Base::Message(i) => ("message", i),
        Base::Commit(i) => ("commit", i),
        Base::Welcome(i) => ("welcome", i),
        Base::SenderKey(i) => ("sender_key", i),
        Base::None => return None,
    };
    Some(BaseVector { kind, index })
}

fn receiver_steps(spec: &Spec) -> Vec<usize> {
    TIMELINE[..spec.after_steps]
        .iter()
        .enumerate()
        .filter(|(_, (step, _))| step.party() == spec.receiver)
        .map(|(i, _)| i)
        .collect()
}

fn negative_vectors(generated: &Generated) -> Vec<NegativeVector> {
    SPECS
        .iter()
        .map(|spec| {
            let built = build(spec, generated);
            let (operation, from) = operation_name(spec.operation);
            NegativeVector {
                name: spec.name,
                description: spec.description,
                receiver: spec.receiver.name(),
                after_steps: spec.after_steps,
                receiver_steps: receiver_steps(spec),
                now: step_time(spec.after_steps),
                operation,
                from,
                base: base_vector(spec.base),
                base_accepted: spec.base_accepted,
                mutation: built.mutation,
                forged_envelope: built.forged,
                crafted_commit: built.commit,
                crafted_sender_key: built.sender_key,
                input: h(&built.input),
                expected_error: spec.expected,
            }
        })
        .collect()
}

pub(super) fn group_file() -> GroupFile {
    let generated = generate();
    let negative = negative_vectors(&generated);
    GroupFile {
        negative,
        ..generated.file
    }
}

/// Applies `input` as `operation` to a copy of `group` (the receiver's state), or joins as
/// `receiver`. Returns the result and the copy's state afterwards.
fn apply(
    group: Option<&Group>,
    receiver: Party,
    operation: Operation,
    input: &[u8],
    now: Timestamp,
) -> (Result<(), Error>, Option<Vec<u8>>) {
    let mut copy = group.map(|g| Group::from_bytes(g.to_bytes().expose_secret()).unwrap());
    let result = match (operation, copy.as_mut()) {
        (Operation::Open, Some(group)) => group.open(input, now).map(|_| ()),
        (Operation::Receive(from), Some(group)) => {
            group.receive(&from.public(), input, now).map(|_| ())
        }
        (Operation::Join(from), None) => {
            Group::join(&receiver.public(), &from.public(), input, config(), now).map(|_| ())
        }
        _ => panic!("{receiver:?}: a join needs no group, the rest need one"),
    };
    (result, copy.map(|g| g.to_bytes().expose_secret().to_vec()))
}

/// Checks one negative vector against the receiver's real group at its position.
fn check_negative(spec: &Spec, generated: &Generated, group: Option<&Group>) {
    let built = build(spec, generated);
    let now = Timestamp::from_unix_secs(step_time(spec.after_steps));
    let before = group.map(|g| g.to_bytes().expose_secret().to_vec());

    // Control: the unmodified base, from its real sender, on the same state.
    if let Some(base) = base_bytes(spec.base, generated) {
        let operation = match spec.operation {
            Operation::Open => Operation::Open,
            Operation::Receive(_) => {
                Operation::Receive(real_from(spec.base, &generated.file).unwrap())
            }
            Operation::Join(_) => Operation::Join(real_from(spec.base, &generated.file).unwrap()),
        };
        let (control, _) = apply(group, spec.receiver, operation, &base, now);
        assert_eq!(
            Some(control.is_ok()),
            spec.base_accepted,
            "{}: the unmodified base ({control:?})",
            spec.name
        );
    }

    let (result, after) = apply(group, spec.receiver, spec.operation, &built.input, now);
    assert_eq!(
        result.as_ref().err().map(error_class),
        Some(spec.expected),
        "{}: {}: got {result:?}",
        spec.name,
        spec.description
    );
    assert!(
        before == after,
        "{}: the rejected input changed the group",
        spec.name
    );

    if let Mutation::Forge {
        impersonated,
        epoch,
        ..
    } = spec.mutation
    {
        // Signed with the impersonated member's real key instead, the forged envelope opens:
        // the signature is the only thing wrong with it.
        let parsed = message::parse(&built.input).unwrap();
        let state_hash = generated.epochs[&epoch].state_hash;
        let real_seed = generated.chains[&(impersonated, epoch)].signing_seed;
        let signature =
            SigningKey::from_bytes(&real_seed).sign(&signature_input(&state_hash, parsed.signed));
        let genuine = [parsed.signed, &signature.to_bytes()].concat();
        let mut copy = Group::from_bytes(group.unwrap().to_bytes().expose_secret()).unwrap();
        let opened = copy.open(&genuine, now).unwrap();
        assert_eq!(opened.plaintext, FORGED_TEXT.as_bytes());
        assert_eq!(opened.sender, impersonated.public());
    }
}

#[test]
fn group_negative_vectors_are_rejected_without_state_change() {
    let generated = generate();
    let mut runner = Runner::new();
    for position in 0..=TIMELINE.len() {
        for spec in SPECS.iter().filter(|s| s.after_steps == position) {
            let group = runner.groups[spec.receiver.i()].as_ref();
            assert_eq!(
                group.is_none(),
                matches!(spec.operation, Operation::Join(_)),
                "{}: only a join starts from no group",
                spec.name
            );
            check_negative(spec, &generated, group);
        }
        if position < TIMELINE.len() {
            runner.step(position);
        }
    }
}
