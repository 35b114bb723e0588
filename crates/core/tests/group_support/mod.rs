//! A simulated group: members, per-pair FIFO links (as the relay keeps order per sender and
//! recipient), and delivery with retry of what arrived too early.
#![allow(dead_code)]

use std::collections::VecDeque;

use sealwire_core::{
    Change, CommitOutput, ControlOutcome, Error, Group, GroupConfig, GroupOpened, IdentityKeyPair,
    MemberRole, PublicIdentity, Timestamp,
};

pub(crate) const T0: Timestamp = Timestamp::from_unix_secs(1_780_000_000);

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
}

pub(crate) struct Net {
    pub(crate) nodes: Vec<Node>,
    /// links[from][to]: FIFO.
    pub(crate) links: Vec<Vec<VecDeque<Item>>>,
    pub(crate) rng: rand::rngs::ThreadRng,
    pub(crate) now: Timestamp,
}

impl Net {
    /// `n` identities; node 0 creates the group (alone, admin).
    pub(crate) fn new(n: usize) -> Net {
        let mut rng = rand::rng();
        let mut nodes: Vec<Node> = (0..n)
            .map(|_| Node {
                identity: IdentityKeyPair::generate(&mut rng),
                group: None,
                parked: Vec::new(),
                opened: Vec::new(),
            })
            .collect();
        nodes[0].group =
            Some(Group::create(&nodes[0].identity, GroupConfig::default(), &mut rng, T0).unwrap());
        Net {
            links: (0..n)
                .map(|_| (0..n).map(|_| VecDeque::new()).collect())
                .collect(),
            nodes,
            rng,
            now: T0,
        }
    }

    pub(crate) fn public(&self, i: usize) -> PublicIdentity {
        self.nodes[i].identity.public().clone()
    }

    fn index_of(&self, identity: &PublicIdentity) -> usize {
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

    /// `sender` seals `text`; its sender key (if any) and the envelope are queued to every
    /// other current member. Returns the envelope.
    pub(crate) fn send(&mut self, sender: usize, text: &[u8]) -> Vec<u8> {
        let now = self.now;
        let sealed = {
            let Net { nodes, rng, .. } = self;
            nodes[sender]
                .group
                .as_mut()
                .unwrap()
                .seal(text, rng, now)
                .unwrap()
        };
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
        sealed.envelope
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

    /// Processes one item at `to`; parks it if it arrived early. Returns true on progress.
    fn process(&mut self, from: usize, to: usize, item: Item) -> bool {
        let now = self.now;
        let from_identity = self.public(from);
        let node = &mut self.nodes[to];
        match item.clone() {
            Item::Control(bytes) => match &mut node.group {
                None => match Group::join(
                    node.identity.public(),
                    &from_identity,
                    &bytes,
                    GroupConfig::default(),
                    now,
                ) {
                    Ok(group) => {
                        node.group = Some(group);
                        true
                    }
                    Err(Error::UnexpectedKind(_)) => {
                        node.parked.push((from, item));
                        false
                    }
                    Err(e) => panic!("node {to} could not join: {e}"),
                },
                Some(group) => match group.receive(&from_identity, &bytes, now) {
                    Ok(ControlOutcome::SenderKeyPending { .. }) => true,
                    Ok(_) => true,
                    Err(Error::EpochAhead { .. }) | Err(Error::UnknownParent { .. }) => {
                        node.parked.push((from, item));
                        false
                    }
                    Err(Error::UnexpectedKind(_)) => false, // a welcome for a group we hold
                    Err(e) => panic!("node {to} rejected a control message from {from}: {e}"),
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
                    Err(e) => panic!("node {to} could not open a message from {from}: {e}"),
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
