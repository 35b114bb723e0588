//! A simulated group: members, per-pair FIFO links (as the relay keeps order per sender and
//! recipient), and delivery with retry of what arrived too early. Also the refusal helpers the
//! group test files share (each checks that a refusal leaves the group byte-for-byte unchanged).
//!
//! Shared by `group.rs`, `group_conflicts.rs`, `group_adversarial.rs` and
//! `group_properties.rs`; each uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::VecDeque;

use sealwire_core::{
    Change, CommitOutput, ControlKind, ControlMessage, ControlOutcome, Error, Group, GroupConfig,
    GroupOpened, GroupSealed, IdentityKeyPair, MemberRole, PublicIdentity, Timestamp,
};

pub(crate) const T0: Timestamp = Timestamp::from_unix_secs(1_780_000_000);

/// `T0 + secs`.
pub(crate) fn at(secs: u64) -> Timestamp {
    T0.plus_secs(secs)
}

/// The default group configuration, changed by `f` (and checked).
pub(crate) fn config(f: impl FnOnce(&mut GroupConfig)) -> GroupConfig {
    let mut config = GroupConfig::default();
    f(&mut config);
    config.validate().expect("test configuration is valid");
    config
}

/// What travels on a link.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    /// A control message (commit, welcome, sender key), as a pairwise plaintext.
    Control(Vec<u8>),
    /// A group envelope, fanned out by the relay.
    Envelope(Vec<u8>),
}

pub(crate) struct Node {
    pub(crate) identity: IdentityKeyPair,
    pub(crate) group: Option<Group>,
    /// Items that arrived before what they depend on, retried after every success.
    pub(crate) parked: Vec<(usize, Item)>,
    /// Plaintexts opened, with their sender index.
    pub(crate) opened: Vec<(usize, Vec<u8>)>,
    /// Every control outcome, with the index of the node it came from.
    pub(crate) outcomes: Vec<(usize, ControlOutcome)>,
    /// Refusals recorded when the net is not strict, with the index of the node the item came
    /// from.
    pub(crate) errors: Vec<(usize, Error)>,
}

pub(crate) struct Net {
    pub(crate) nodes: Vec<Node>,
    /// links[from][to]: FIFO.
    pub(crate) links: Vec<Vec<VecDeque<Item>>>,
    pub(crate) rng: rand::rngs::ThreadRng,
    pub(crate) now: Timestamp,
    /// The configuration of every group the net creates or joins.
    pub(crate) config: GroupConfig,
    /// When true (the default), a refusal other than "arrived too early" panics; when false it
    /// is recorded in the receiving node's `errors` and the item is dropped.
    pub(crate) strict: bool,
}

impl Net {
    /// `n` identities; node 0 creates the group (alone, admin).
    pub(crate) fn new(n: usize) -> Net {
        Net::with_config(n, GroupConfig::default())
    }

    /// As [`Net::new`], every group with `config`.
    pub(crate) fn with_config(n: usize, config: GroupConfig) -> Net {
        let mut rng = rand::rng();
        let identities = (0..n)
            .map(|_| IdentityKeyPair::generate(&mut rng))
            .collect();
        Net::from_identities(identities, config, rng)
    }

    /// As [`Net::with_config`], with the nodes sorted by Ed25519 identity key: node `i` has a
    /// lower key than node `j` whenever `i < j` (for tests of the conflict tie-break).
    pub(crate) fn sorted(n: usize, config: GroupConfig) -> Net {
        let mut rng = rand::rng();
        let mut identities: Vec<IdentityKeyPair> = (0..n)
            .map(|_| IdentityKeyPair::generate(&mut rng))
            .collect();
        identities.sort_by(|a, b| a.public().signing_key().cmp(b.public().signing_key()));
        Net::from_identities(identities, config, rng)
    }

    fn from_identities(
        identities: Vec<IdentityKeyPair>,
        config: GroupConfig,
        mut rng: rand::rngs::ThreadRng,
    ) -> Net {
        let n = identities.len();
        let mut nodes: Vec<Node> = identities
            .into_iter()
            .map(|identity| Node {
                identity,
                group: None,
                parked: Vec::new(),
                opened: Vec::new(),
                outcomes: Vec::new(),
                errors: Vec::new(),
            })
            .collect();
        nodes[0].group =
            Some(Group::create(&nodes[0].identity, config.clone(), &mut rng, T0).unwrap());
        Net {
            links: (0..n)
                .map(|_| (0..n).map(|_| VecDeque::new()).collect())
                .collect(),
            nodes,
            rng,
            now: T0,
            config,
            strict: true,
        }
    }

    pub(crate) fn public(&self, i: usize) -> PublicIdentity {
        self.nodes[i].identity.public().clone()
    }

    pub(crate) fn index_of(&self, identity: &PublicIdentity) -> usize {
        self.nodes
            .iter()
            .position(|n| n.identity.public() == identity)
            .unwrap()
    }

    pub(crate) fn group(&self, i: usize) -> &Group {
        self.nodes[i].group.as_ref().unwrap()
    }

    pub(crate) fn group_mut(&mut self, i: usize) -> &mut Group {
        self.nodes[i].group.as_mut().unwrap()
    }

    /// The serialized state of node `i`'s group, as plain bytes.
    pub(crate) fn state(&self, i: usize) -> Vec<u8> {
        self.group(i).to_bytes().expose_secret().to_vec()
    }

    /// The state hashes of the given nodes' groups.
    pub(crate) fn hashes(&self, nodes: &[usize]) -> Vec<[u8; 32]> {
        nodes.iter().map(|&i| self.group(i).state_hash()).collect()
    }

    /// `admin` commits `changes`; the outputs are queued on the links.
    pub(crate) fn commit(
        &mut self,
        admin: usize,
        changes: &[Change],
    ) -> Result<CommitOutput, Error> {
        let now = self.now;
        let node = &mut self.nodes[admin];
        let out = node
            .group
            .as_mut()
            .unwrap()
            .commit(&node.identity, changes, now)?;
        for to in &out.commit_recipients {
            let to = self.index_of(to);
            self.links[admin][to].push_back(Item::Control(out.commit.clone()));
        }
        if let Some(welcome) = &out.welcome {
            for to in &out.welcome_recipients {
                let to = self.index_of(to);
                self.links[admin][to].push_back(Item::Control(welcome.clone()));
            }
        }
        Ok(out)
    }

    pub(crate) fn add(&mut self, admin: usize, member: usize, role: MemberRole) -> CommitOutput {
        let identity = self.public(member);
        self.commit(admin, &[Change::Add(identity, role)]).unwrap()
    }

    pub(crate) fn remove(&mut self, admin: usize, member: usize) -> CommitOutput {
        let identity = self.public(member);
        self.commit(admin, &[Change::Remove(identity)]).unwrap()
    }

    /// `sender` seals `text` and nothing is queued: the caller carries the result.
    pub(crate) fn seal(&mut self, sender: usize, text: &[u8]) -> GroupSealed {
        let now = self.now;
        let Net { nodes, rng, .. } = self;
        nodes[sender]
            .group
            .as_mut()
            .unwrap()
            .seal(text, rng, now)
            .unwrap()
    }

    /// `sender` seals `text`; its sender key (if any) and the envelope are queued to every
    /// other current member. Returns the envelope.
    pub(crate) fn send(&mut self, sender: usize, text: &[u8]) -> Vec<u8> {
        let sealed = self.seal(sender, text);
        self.post(sender, &sealed);
        sealed.envelope
    }

    /// Queues what `sender` sealed: its sender key (if any) to the key's recipients and the
    /// envelope to every other current member of `sender`'s group.
    pub(crate) fn post(&mut self, sender: usize, sealed: &GroupSealed) {
        if let Some(key) = &sealed.sender_key {
            for to in &key.recipients {
                let to = self.index_of(to);
                self.links[sender][to]
                    .push_back(Item::Control(key.message.expose_secret().to_vec()));
            }
        }
        let recipients: Vec<usize> = self
            .group(sender)
            .members()
            .iter()
            .map(|m| self.index_of(m.identity()))
            .filter(|&i| i != sender)
            .collect();
        for to in recipients {
            self.links[sender][to].push_back(Item::Envelope(sealed.envelope.clone()));
        }
    }

    /// Delivers the next item on link `from -> to`. Returns false if the link was empty.
    pub(crate) fn step(&mut self, from: usize, to: usize) -> bool {
        let Some(item) = self.links[from][to].pop_front() else {
            return false;
        };
        if self.process(from, to, item.clone()) {
            self.retry_parked(to);
        }
        true
    }

    /// Delivers everything queued on link `from -> to`.
    pub(crate) fn deliver(&mut self, from: usize, to: usize) {
        while self.step(from, to) {}
    }

    /// Discards everything queued on link `from -> to` (a member that never gets it).
    pub(crate) fn drop_link(&mut self, from: usize, to: usize) -> Vec<Item> {
        self.links[from][to].drain(..).collect()
    }

    /// Processes one item at `to`; parks it if it arrived early. Returns true on progress.
    fn process(&mut self, from: usize, to: usize, item: Item) -> bool {
        let now = self.now;
        let strict = self.strict;
        let config = self.config.clone();
        let from_identity = self.public(from);
        let node = &mut self.nodes[to];
        let refused = |node: &mut Node, error: Error, what: &str| {
            assert!(
                !strict,
                "node {to} refused {what} from {from}: {error:?} ({error})"
            );
            node.errors.push((from, error));
            false
        };
        match item.clone() {
            Item::Control(bytes) => match &mut node.group {
                None => {
                    match Group::join(node.identity.public(), &from_identity, &bytes, config, now) {
                        Ok(group) => {
                            node.group = Some(group);
                            true
                        }
                        Err(Error::UnexpectedKind(_)) => {
                            node.parked.push((from, item));
                            false
                        }
                        Err(e) => refused(node, e, "a welcome"),
                    }
                }
                Some(group) => match group.receive(&from_identity, &bytes, now) {
                    Ok(outcome) => {
                        node.outcomes.push((from, outcome));
                        true
                    }
                    Err(Error::EpochAhead { .. }) | Err(Error::UnknownParent { .. }) => {
                        node.parked.push((from, item));
                        false
                    }
                    Err(Error::UnexpectedKind(_)) => {
                        // A welcome for a group this node holds: it was removed, or it joined
                        // a branch that lost a conflict and is added again on the winning one.
                        // Join afresh if the welcome starts a later epoch (or it was removed).
                        let welcome = ControlMessage::parse(&bytes)
                            .is_ok_and(|m| m.kind() == ControlKind::Welcome);
                        if !welcome {
                            return refused(node, Error::UnexpectedKind("control"), "a message");
                        }
                        match Group::join(
                            node.identity.public(),
                            &from_identity,
                            &bytes,
                            config,
                            now,
                        ) {
                            Ok(joined) if !group.is_member() || joined.epoch() > group.epoch() => {
                                *group = joined;
                                true
                            }
                            Ok(_) => false,
                            Err(e) => refused(node, e, "a welcome"),
                        }
                    }
                    Err(e) => refused(node, e, "a control message"),
                },
            },
            Item::Envelope(bytes) => match &mut node.group {
                None => {
                    node.parked.push((from, item));
                    false
                }
                Some(group) => match group.open(&bytes, now) {
                    Ok(GroupOpened {
                        plaintext, sender, ..
                    }) => {
                        let sender = self.index_of(&sender);
                        self.nodes[to].opened.push((sender, plaintext));
                        true
                    }
                    Err(Error::EpochAhead { .. }) | Err(Error::MissingSenderKey { .. }) => {
                        node.parked.push((from, item));
                        false
                    }
                    Err(e) => refused(node, e, "an envelope"),
                },
            },
        }
    }

    fn retry_parked(&mut self, to: usize) {
        loop {
            let parked = std::mem::take(&mut self.nodes[to].parked);
            let mut progress = false;
            for (from, item) in parked {
                if self.process(from, to, item) {
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// Delivers everything, link by link, until every link is empty.
    pub(crate) fn flush(&mut self) {
        let n = self.nodes.len();
        loop {
            let mut any = false;
            for from in 0..n {
                for to in 0..n {
                    while self.step(from, to) {
                        any = true;
                    }
                }
            }
            if !any {
                break;
            }
        }
    }
}

/// The serialized state of `group`, as plain bytes (for before/after comparisons).
pub(crate) fn group_state(group: &Group) -> Vec<u8> {
    group.to_bytes().expose_secret().to_vec()
}

/// Opens `envelope` expecting a refusal; checks that the group is byte-for-byte unchanged and
/// returns the error.
#[track_caller]
pub(crate) fn open_refused(group: &mut Group, envelope: &[u8], now: Timestamp) -> Error {
    let before = group_state(group);
    let err = match group.open(envelope, now) {
        Ok(opened) => panic!("open succeeded ({opened:?}), expected a refusal"),
        Err(err) => err,
    };
    assert_eq!(
        group_state(group),
        before,
        "a failed open changed the group"
    );
    err
}

/// Receives `control` from `from` expecting a refusal; checks that the group is byte-for-byte
/// unchanged and returns the error.
#[track_caller]
pub(crate) fn receive_refused(
    group: &mut Group,
    from: &PublicIdentity,
    control: &[u8],
    now: Timestamp,
) -> Error {
    let before = group_state(group);
    let err = match group.receive(from, control, now) {
        Ok(outcome) => panic!("receive succeeded ({outcome:?}), expected a refusal"),
        Err(err) => err,
    };
    assert_eq!(
        group_state(group),
        before,
        "a failed receive changed the group"
    );
    err
}

/// Reads a postcard (LEB128) varint at `*pos`.
pub(crate) fn read_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..).step_by(7) {
        let byte = bytes[*pos];
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    unreachable!()
}

/// Appends a postcard (LEB128) varint.
pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A sender-key control message, decoded by hand from the layout in control.rs:
/// `version:u8 (1) ‖ kind:varint (2) ‖ group id[16] ‖ epoch:varint ‖ state hash[32] ‖
/// counter:varint ‖ chain key[32] ‖ signing key[32]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SenderKeyFields {
    pub(crate) group_id: [u8; 16],
    pub(crate) epoch: u32,
    pub(crate) state_hash: [u8; 32],
    pub(crate) counter: u32,
    pub(crate) chain_key: [u8; 32],
    pub(crate) signing_key: [u8; 32],
}

pub(crate) fn decode_sender_key(bytes: &[u8]) -> SenderKeyFields {
    assert_eq!(bytes[0], 1, "control version");
    assert_eq!(bytes[1], 2, "control kind: sender key");
    let mut pos = 2;
    let take = |pos: &mut usize, n: usize| {
        let out = bytes[*pos..*pos + n].to_vec();
        *pos += n;
        out
    };
    let group_id = take(&mut pos, 16).try_into().unwrap();
    let epoch = u32::try_from(read_varint(bytes, &mut pos)).unwrap();
    let state_hash = take(&mut pos, 32).try_into().unwrap();
    let counter = u32::try_from(read_varint(bytes, &mut pos)).unwrap();
    let chain_key = take(&mut pos, 32).try_into().unwrap();
    let signing_key = take(&mut pos, 32).try_into().unwrap();
    assert_eq!(pos, bytes.len(), "sender key message has trailing bytes");
    let fields = SenderKeyFields {
        group_id,
        epoch,
        state_hash,
        counter,
        chain_key,
        signing_key,
    };
    // The parse is checked against the public view of the same message.
    let public = ControlMessage::parse(bytes).unwrap();
    assert_eq!(public.kind(), ControlKind::SenderKey);
    assert_eq!(public.epoch(), fields.epoch);
    assert_eq!(public.group_id().as_bytes(), &fields.group_id);
    fields
}
