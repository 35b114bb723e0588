//! conversation.json: one session, scripted step by step (seals and deliveries), with every
//! epoch derivation and message key.

use std::collections::BTreeMap;

use serde::Serialize;

use super::keys;
use super::setup;
use super::{
    FILE_VERSION, RawKeys, Recorder, T0, chain_step, derive_epoch, error_class, h, message_keys,
    open_with, x25519_public,
};
use crate::account::Account;
use crate::config::SessionConfig;
use crate::envelope::{self, EnvelopeKind};
use crate::error::Error;
use crate::padding;
use crate::session::Session;
use crate::time::Timestamp;

/// Seed of Alice's session RNG (session id, base key, ratchet keys).
pub(super) const ALICE_SEED: u64 = 0x5EA1_5E55_0001;
/// Seed of Bob's session RNG (ratchet keys).
const BOB_SEED: u64 = 0x5EA1_5E55_B0B0;

/// The session configuration of the conversation: rotation after 3 messages, and a small
/// forward-jump bound so that the negative vectors can exceed it with small counters.
pub(super) fn config() -> SessionConfig {
    SessionConfig {
        rotate_after_messages: 3,
        max_forward_jump: 10,
        ..SessionConfig::default()
    }
}

/// The time of timeline step `step` (Unix seconds).
pub(super) fn step_time(step: usize) -> u64 {
    T0 + 100 + 10 * step as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Party {
    Alice,
    Bob,
}

impl Party {
    pub(super) fn name(self) -> &'static str {
        match self {
            Party::Alice => "alice",
            Party::Bob => "bob",
        }
    }
}

/// One step of the conversation.
#[derive(Clone, Copy)]
pub(super) enum Step {
    /// The party seals the next message.
    Seal(Party),
    /// The party opens message `n`, which must succeed.
    Open(Party, usize),
    /// The party is given message `n` again, which must be rejected as a replay.
    Replay(Party, usize),
}

use Party::{Alice, Bob};
use Step::{Open, Replay, Seal};

/// The script. Seals are numbered in order: message `n` is the `n`-th `Seal`.
pub(super) const TIMELINE: [Step; 29] = [
    Seal(Alice),     // 0: m0, epoch 1 (initial)
    Seal(Alice),     // 1: m1
    Seal(Alice),     // 2: m2
    Open(Bob, 0),    // 3: Bob accepts the session
    Open(Bob, 2),    // 4: m1 skipped
    Seal(Bob),       // 5: m3, epoch 2
    Seal(Bob),       // 6: m4
    Seal(Alice),     // 7: m5, epoch 3: rotation while Bob seems silent (crosses m3, m4)
    Open(Alice, 4),  // 8: m3 skipped; Alice's session is established
    Seal(Alice),     // 9: m6, epoch 5: a turn
    Open(Alice, 3),  // 10: skipped key used
    Open(Bob, 1),    // 11: skipped key used
    Open(Bob, 6),    // 12: epoch 5 before epoch 3
    Open(Bob, 5),    // 13: late epoch 3
    Seal(Bob),       // 14: m7, epoch 6: a turn
    Seal(Bob),       // 15: m8
    Seal(Bob),       // 16: m9
    Seal(Bob),       // 17: m10, epoch 8: rotation while Alice is silent
    Open(Alice, 7),  // 18
    Open(Alice, 9),  // 19: m8 skipped
    Open(Alice, 10), // 20
    Seal(Alice),     // 21: m11, epoch 9
    Open(Alice, 8),  // 22: skipped key used after the epoch was superseded
    Open(Bob, 11),   // 23
    Replay(Bob, 11), // 24: duplicate delivery
    Seal(Bob),       // 25: m12, epoch 10
    Open(Alice, 12), // 26
    Seal(Alice),     // 27: m13, epoch 11
    Open(Bob, 13),   // 28
];

/// `(epoch, parent, counter)` of each message, as the script intends.
const EXPECTED: [(u32, u32, u32); 14] = [
    (1, 0, 0),
    (1, 0, 1),
    (1, 0, 2),
    (2, 1, 0),
    (2, 1, 1),
    (3, 0, 0),
    (5, 2, 0),
    (6, 5, 0),
    (6, 5, 1),
    (6, 5, 2),
    (8, 5, 0),
    (9, 8, 0),
    (10, 9, 0),
    (11, 10, 0),
];

const PLAINTEXTS: [&str; 14] = [
    "Hello Bob! This is Alice, writing while you are offline.",
    "Second message, still before any reply.",
    "Third one. My next message starts a new epoch.",
    "Hi Alice, Bob here.",
    "",
    "Alice again, in a new epoch: you had not answered yet.",
    "Got your reply, so this one starts a new epoch after yours.",
    "Bob: a new epoch, first message.",
    "Bob: second message of the epoch, delivered last.",
    "Bob: third message of the epoch.",
    "Bob: three messages sent, so this one rotates to a new epoch even though Alice has not \
     answered. It is long enough to pad to more than the minimum.",
    "Alice: answering your newest epoch.",
    "Bob: and again a new epoch.",
    "Alice: goodbye!",
];

pub(super) fn plaintext(message: usize) -> Vec<u8> {
    PLAINTEXTS[message].as_bytes().to_vec()
}

/// Plays the script against real sessions.
pub(super) struct Runner {
    alice: Session,
    alice_rng: Recorder,
    bob_account: Account,
    bob: Option<Session>,
    bob_rng: Recorder,
    base_key: [u8; 32],
    envelopes: Vec<Vec<u8>>,
}

pub(super) enum Outcome {
    /// A message was sealed; `drawn` is what the sealing drew from the RNG.
    Sealed { drawn: Vec<u8> },
    /// A message was given to its receiver; `accepted` if that created Bob's session.
    Opened {
        result: Result<Vec<u8>, Error>,
        accepted: bool,
    },
}

impl Runner {
    pub(super) fn new() -> Self {
        let alice = keys::identity("alice");
        let bob = keys::bob_account();
        let now = Timestamp::from_unix_secs(step_time(0));
        let initiated = setup::initiate(&alice.pair, &bob.account, true, ALICE_SEED, now);
        Runner {
            alice: initiated.session,
            alice_rng: initiated.rng,
            bob_account: bob.account,
            bob: None,
            bob_rng: Recorder::new(BOB_SEED),
            base_key: initiated.base_key,
            envelopes: Vec::new(),
        }
    }

    /// The sessions after the first `steps` steps of the script.
    pub(super) fn after(steps: usize) -> Self {
        let mut runner = Runner::new();
        for step in 0..steps {
            runner.step(step);
        }
        runner
    }

    pub(super) fn session_mut(&mut self, party: Party) -> &mut Session {
        match party {
            Alice => &mut self.alice,
            Bob => self
                .bob
                .as_mut()
                .expect("Bob has accepted the first envelope"),
        }
    }

    pub(super) fn step(&mut self, step: usize) -> Outcome {
        let now = Timestamp::from_unix_secs(step_time(step));
        match TIMELINE[step] {
            Seal(party) => {
                let message = self.envelopes.len();
                let (session, rng) = match party {
                    Alice => (&mut self.alice, &mut self.alice_rng),
                    Bob => (
                        self.bob.as_mut().expect("Bob seals after accepting"),
                        &mut self.bob_rng,
                    ),
                };
                let envelope = session.seal(&plaintext(message), rng, now).unwrap();
                self.envelopes.push(envelope);
                Outcome::Sealed { drawn: rng.take() }
            }
            Open(party, message) | Replay(party, message) => {
                let envelope = self.envelopes[message].clone();
                let accepted = party == Bob && self.bob.is_none();
                let result = if accepted {
                    self.bob_account.accept(&envelope, now).map(|accepted| {
                        self.bob = Some(accepted.session);
                        accepted.plaintext
                    })
                } else {
                    self.session_mut(party).open(&envelope, now)
                };
                let expected = match TIMELINE[step] {
                    Replay(..) => Err(Error::Replay),
                    _ => Ok(plaintext(message)),
                };
                assert_eq!(
                    result, expected,
                    "step {step}: the sessions no longer behave as the scripted conversation \
                     expects"
                );
                Outcome::Opened { result, accepted }
            }
        }
    }
}

#[derive(Serialize)]
pub(super) struct ConversationFile {
    description: &'static str,
    version: u32,
    setup_case: &'static str,
    initiator: &'static str,
    responder: &'static str,
    config: SessionConfig,
    session_id: String,
    session_ad: String,
    epoch_0: EpochZero,
    messages: Vec<MessageVector>,
    timeline: Vec<StepVector>,
}

#[derive(Serialize)]
struct EpochZero {
    owner: &'static str,
    ratchet_key: String,
    epoch_root: String,
}

#[derive(Serialize)]
struct MessageVector {
    index: usize,
    sender: &'static str,
    time: u64,
    kind: &'static str,
    epoch: u32,
    parent: u32,
    counter: u32,
    previous: Option<PreviousVector>,
    ratchet_key: String,
    new_epoch: Option<NewEpochVector>,
    chain_key: String,
    message_key: String,
    aes_key: String,
    mac_key: String,
    nonce: String,
    plaintext: String,
    padded_length: usize,
    header: String,
    envelope: String,
}

#[derive(Serialize)]
struct PreviousVector {
    epoch: u32,
    length: u32,
}

#[derive(Serialize)]
struct NewEpochVector {
    ratchet_private: String,
    parent_ratchet_key: String,
    parent_root: String,
    child_seed: String,
    child_salt: String,
    dh: String,
    epoch_root: String,
    chain_key: String,
}

#[derive(Serialize)]
struct StepVector {
    step: usize,
    time: u64,
    party: &'static str,
    action: &'static str,
    message: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_keys_after: Option<usize>,
}

/// The conversation file, with the raw values the negative vectors are built from.
pub(super) struct Generated {
    pub(super) file: ConversationFile,
    pub(super) envelopes: Vec<Vec<u8>>,
    pub(super) keys: Vec<RawKeys>,
    pub(super) session_ad: [u8; 32],
}

/// An epoch as the generator tracks it.
struct Known {
    public: [u8; 32],
    root: [u8; 32],
    chain_key: [u8; 32],
    next: u32,
}

/// The messages `party` opened successfully in the first `steps` steps, in order.
pub(super) fn delivered_before(party: Party, steps: usize) -> Vec<usize> {
    TIMELINE[..steps]
        .iter()
        .filter_map(|step| match step {
            Open(p, message) if *p == party => Some(*message),
            _ => None,
        })
        .collect()
}

pub(super) fn generate() -> Generated {
    let setup = setup::conversation_setup();
    let bob = keys::bob_account();
    let mut epochs = BTreeMap::new();
    let spk_public = bob.account.signed_prekey().public_key;
    epochs.insert(
        0,
        Known {
            public: spk_public,
            root: setup.setup_root,
            chain_key: [0; 32],
            next: 0,
        },
    );
    let mut runner = Runner::new();
    assert_eq!(runner.base_key, setup.base_key);
    let mut messages = Vec::new();
    let mut timeline = Vec::new();
    let mut all_keys = Vec::new();
    let mut session_id = None;
    for (step, script) in TIMELINE.iter().enumerate() {
        let time = step_time(step);
        match (*script, runner.step(step)) {
            (Seal(party), Outcome::Sealed { drawn }) => {
                let index = messages.len();
                let envelope = runner.envelopes[index].clone();
                if index == 0 {
                    assert_eq!(
                        envelope, setup.envelope,
                        "m0 is setup.json's first envelope"
                    );
                }
                let parsed = envelope::parse(&envelope).unwrap();
                let header = parsed.header.message().clone();
                assert_eq!(
                    *session_id.get_or_insert(header.session_id),
                    header.session_id
                );
                assert_eq!(
                    (header.epoch, header.parent, header.counter),
                    EXPECTED[index],
                    "message {index} is not where the script expects it"
                );
                let new_epoch = if epochs.contains_key(&header.epoch) {
                    assert!(
                        drawn.is_empty(),
                        "message {index}: a key drawn for no new epoch"
                    );
                    None
                } else {
                    let private: [u8; 32] = if header.epoch == 1 {
                        assert!(drawn.is_empty());
                        runner.base_key
                    } else {
                        drawn
                            .as_slice()
                            .try_into()
                            .expect("a new epoch draws one key")
                    };
                    assert_eq!(x25519_public(&private), header.ratchet_key);
                    let parent = &epochs[&header.parent];
                    let start = derive_epoch(
                        header.parent,
                        &parent.root,
                        &parent.public,
                        header.epoch,
                        &private,
                    );
                    let vector = NewEpochVector {
                        ratchet_private: h(&private),
                        parent_ratchet_key: h(&parent.public),
                        parent_root: h(&parent.root),
                        child_seed: h(&start.child_seed),
                        child_salt: h(&start.child_salt),
                        dh: h(&start.dh),
                        epoch_root: h(&start.root),
                        chain_key: h(&start.chain_key),
                    };
                    epochs.insert(
                        header.epoch,
                        Known {
                            public: header.ratchet_key,
                            root: start.root,
                            chain_key: start.chain_key,
                            next: 0,
                        },
                    );
                    Some(vector)
                };
                let known = epochs.get_mut(&header.epoch).unwrap();
                assert_eq!(header.counter, known.next);
                let chain_key = known.chain_key;
                let (message_key, next_chain_key) = chain_step(&chain_key);
                known.chain_key = next_chain_key;
                known.next += 1;
                let keys = message_keys(&message_key);
                let text = plaintext(index);
                assert_eq!(open_with(&envelope, &keys, &setup.session_ad), text);
                all_keys.push(keys);
                messages.push(MessageVector {
                    index,
                    sender: party.name(),
                    time,
                    kind: match parsed.header.kind() {
                        EnvelopeKind::Initial => "initial",
                        EnvelopeKind::Message => "message",
                    },
                    epoch: header.epoch,
                    parent: header.parent,
                    counter: header.counter,
                    previous: header.previous.map(|p| PreviousVector {
                        epoch: p.epoch,
                        length: p.length,
                    }),
                    ratchet_key: h(&header.ratchet_key),
                    new_epoch,
                    chain_key: h(&chain_key),
                    message_key: h(&message_key),
                    aes_key: h(&keys.aes_key),
                    mac_key: h(&keys.mac_key),
                    nonce: h(&keys.nonce),
                    plaintext: h(&text),
                    padded_length: padding::padded_len(text.len()),
                    header: h(parsed.header_bytes),
                    envelope: h(&envelope),
                });
                timeline.push(StepVector {
                    step,
                    time,
                    party: party.name(),
                    action: "seal",
                    message: index,
                    result: None,
                    plaintext: None,
                    skipped_keys_after: None,
                });
            }
            (
                Open(party, message) | Replay(party, message),
                Outcome::Opened { result, accepted },
            ) => {
                let skipped = runner.session_mut(party).skipped_key_count();
                timeline.push(StepVector {
                    step,
                    time,
                    party: party.name(),
                    action: if accepted { "accept" } else { "open" },
                    message,
                    result: Some(result.as_ref().map_or_else(error_class, |_| "ok")),
                    plaintext: result.ok().map(|p| h(&p)),
                    skipped_keys_after: Some(skipped),
                });
            }
            _ => unreachable!("a seal step seals and an open step opens"),
        }
    }
    let file = ConversationFile {
        description: "One session between Alice (initiator) and Bob (responder), continuing \
                      setup.json's case with a one-time prekey: every message with its epoch \
                      derivation and keys, and the timeline of seals and deliveries (out of \
                      order, with skipped keys used later and a replay). See README.md.",
        version: FILE_VERSION,
        setup_case: "with_one_time_prekey",
        initiator: "alice",
        responder: "bob",
        config: config(),
        session_id: h(&session_id.expect("the conversation has messages")),
        session_ad: h(&setup.session_ad),
        epoch_0: EpochZero {
            owner: "bob",
            ratchet_key: h(&spk_public),
            epoch_root: h(&setup.setup_root),
        },
        messages,
        timeline,
    };
    Generated {
        file,
        envelopes: runner.envelopes,
        keys: all_keys,
        session_ad: setup.session_ad,
    }
}
