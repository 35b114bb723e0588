//! The positive part of group.json: the script played against real groups, with every commit,
//! epoch, sender key and message recomputed by hand and checked against what the groups made.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::super::{FILE_VERSION, RawKeys, chain_step, h};
use super::records::{
    CommitVector, EpochVector, GroupFile, MessageVector, OpenedVector, SenderKeyVector, StepVector,
    member_vectors, party_vectors,
};
use super::script::{
    Outcome, Party, Runner, Step, TIMELINE, config, names, plaintext, result_name, role_name,
    step_time,
};
use super::wire::{
    decode_sender_key, decode_signed_commit, decode_welcome, group_keys, hmac_input, message_keys,
    padded, seal_raw, sha256, signature_input, state_hash_input, verifying_key,
};
use crate::group::message;
use crate::group::roster::WireChange;
use crate::group::{Group, GroupId, Member};
use crate::kdf::{self, LABEL_GROUP_COMMIT, LABEL_GROUP_COMMIT_HASH};

/// An epoch as the generator tracks it.
pub(super) struct KnownEpoch {
    pub(super) state_hash: [u8; 32],
    pub(super) members: Vec<Member>,
}

impl KnownEpoch {
    pub(super) fn member(&self, party: Party) -> (u32, &Member) {
        let index = self
            .members
            .iter()
            .position(|m| Party::of(m.identity()) == party)
            .expect("a member of the epoch");
        (u32::try_from(index).unwrap(), &self.members[index])
    }

    pub(super) fn index_of(&self, party: Party) -> u32 {
        self.member(party).0
    }
}

/// A sender's chain in one epoch, as the generator tracks it.
#[derive(Clone, Copy)]
pub(super) struct Chain {
    pub(super) sender_key: usize,
    /// `CK` at counter 0, as the sender key gave it.
    pub(super) first_chain_key: [u8; 32],
    /// `CK` of the next message.
    pub(super) chain_key: [u8; 32],
    pub(super) next: u32,
    pub(super) signing_seed: [u8; 32],
}

/// A message's raw values, for the negative vectors.
pub(super) struct SealedMessage {
    pub(super) epoch: u32,
    pub(super) keys: RawKeys,
    pub(super) signing_seed: [u8; 32],
    pub(super) envelope: Vec<u8>,
}

/// The positive part of the file, with the raw values the negative vectors are built from.
pub(super) struct Generated {
    pub(super) file: GroupFile,
    pub(super) group_id: [u8; 16],
    pub(super) epochs: BTreeMap<u32, KnownEpoch>,
    pub(super) chains: BTreeMap<(Party, u32), Chain>,
    pub(super) messages: Vec<SealedMessage>,
    pub(super) runner: Runner,
}

/// The records made so far while the script plays.
#[derive(Default)]
struct Recording {
    group_id: Option<[u8; 16]>,
    epochs: BTreeMap<u32, KnownEpoch>,
    epoch_vectors: Vec<EpochVector>,
    commits: Vec<CommitVector>,
    sender_keys: Vec<SenderKeyVector>,
    messages: Vec<MessageVector>,
    sealed: Vec<SealedMessage>,
    chains: BTreeMap<(Party, u32), Chain>,
}

impl Recording {
    /// Records the epoch `group` is in, with its state hash recomputed from the roster.
    fn record_epoch(
        &mut self,
        group: &Group,
        commit: Option<usize>,
        parent_hash: [u8; 32],
        commit_hash: [u8; 32],
    ) {
        let members = group.members();
        let id = group.id();
        let input = state_hash_input(
            id.as_bytes(),
            group.epoch(),
            &parent_hash,
            &commit_hash,
            members,
        );
        let state_hash = sha256(&[&input]);
        assert_eq!(state_hash, group.state_hash(), "epoch {}", group.epoch());
        self.epoch_vectors.push(EpochVector {
            epoch: group.epoch(),
            commit,
            parent_hash: h(&parent_hash),
            commit_hash: h(&commit_hash),
            members: member_vectors(members),
            state_hash_input: h(&input),
            state_hash: h(&state_hash),
        });
        let known = KnownEpoch {
            state_hash,
            members: members.to_vec(),
        };
        assert!(self.epochs.insert(group.epoch(), known).is_none());
    }

    fn created(&mut self, group: &Group, drawn: &[u8]) {
        let id: [u8; 16] = drawn.try_into().expect("a 16-byte group id");
        assert_eq!(group.id(), GroupId::from_bytes(id));
        self.group_id = Some(id);
        self.record_epoch(group, None, [0; 32], [0; 32]);
    }

    /// Commit `index`: its encoding, signature, hash, the epoch it starts and its welcome.
    fn committed(&mut self, runner: &Runner, index: usize, time: u64) {
        let (committer, out) = &runner.commits[index];
        let signed = decode_signed_commit(&out.commit);
        let commit = signed.decode().unwrap();
        signed.verify(&committer.public()).unwrap();
        let commit_hash = sha256(&[LABEL_GROUP_COMMIT_HASH, &signed.commit]);
        assert_eq!(commit_hash, signed.hash());
        let parent = &self.epochs[&(commit.epoch - 1)];
        assert_eq!(commit.parent_hash, parent.state_hash);
        assert_eq!(&commit.committer, committer.public().signing_key());
        assert_eq!(Some(commit.group_id), self.group_id);
        let (_, committer_member) = parent.member(*committer);
        let (committer_role, committer_since) = (committer_member.role(), committer_member.since());
        if let Some(welcome) = &out.welcome {
            // The summary is the parent epoch, roles and seniorities included.
            let (summary, carried) = decode_welcome(welcome);
            assert_eq!(carried, signed);
            let parent_vector = &self.epoch_vectors[commit.epoch as usize - 1];
            assert_eq!(summary.epoch, commit.epoch - 1);
            assert_eq!(h(&summary.parent_hash), parent_vector.parent_hash);
            assert_eq!(h(&summary.commit_hash), parent_vector.commit_hash);
            let listed: Vec<_> = summary
                .members
                .iter()
                .map(|m| (m.identity.to_vec(), m.role, m.since))
                .collect();
            let expected: Vec<_> = parent
                .members
                .iter()
                .map(|m| (m.identity().to_bytes().to_vec(), m.role(), m.since()))
                .collect();
            assert_eq!(listed, expected);
        }
        let group = runner.group(*committer);
        assert_eq!(group.epoch(), commit.epoch);
        // Added members get the seniority (epoch, position of the change).
        for (position, change) in commit.changes.iter().enumerate() {
            if let WireChange::Add { identity, .. } = change {
                let member = group
                    .members()
                    .iter()
                    .find(|m| m.identity().to_bytes() == *identity)
                    .unwrap();
                assert_eq!(
                    (member.since().epoch, member.since().index as usize),
                    (commit.epoch, position)
                );
            }
        }
        self.commits.push(CommitVector {
            index,
            committer: committer.name(),
            committer_role: role_name(committer_role),
            committer_since: committer_since.into(),
            time,
            epoch: commit.epoch,
            parent_hash: h(&commit.parent_hash),
            changes: commit.changes.iter().map(Into::into).collect(),
            commit_bytes: h(&signed.commit),
            signed_message: h(&[LABEL_GROUP_COMMIT, &signed.commit].concat()),
            signature: h(&signed.signature),
            commit_hash: h(&commit_hash),
            control: h(&out.commit),
            recipients: names(&out.commit_recipients),
            welcome: out.welcome.as_ref().map(|w| h(w)),
            welcome_recipients: names(&out.welcome_recipients),
        });
        self.record_epoch(group, Some(index), commit.parent_hash, commit_hash);
    }

    /// Sender key `k`, drawn (`CK`, then the signing seed) by the seal that starts `party`'s
    /// chain in `epoch`.
    fn sender_key_made(&mut self, runner: &Runner, k: usize, epoch: u32, drawn: &[u8]) {
        let (party, key_message) = &runner.sender_keys[k];
        assert_eq!(drawn.len(), 64, "a sender key draws two secrets");
        let chain_key: [u8; 32] = drawn[..32].try_into().unwrap();
        let signing_seed: [u8; 32] = drawn[32..].try_into().unwrap();
        let known = &self.epochs[&epoch];
        let control = key_message.message.expose_secret().to_vec();
        let key = decode_sender_key(&control);
        assert_eq!(Some(key.group_id), self.group_id);
        assert_eq!(key.epoch, epoch);
        assert_eq!(key.state_hash, known.state_hash);
        assert_eq!(key.counter, 0);
        assert_eq!(key.chain_key.expose(), &chain_key);
        assert_eq!(key.signing_key, verifying_key(&signing_seed));
        let recipients = names(&key_message.recipients);
        let expected: Vec<&str> = known
            .members
            .iter()
            .map(|m| Party::of(m.identity()))
            .filter(|p| p != party)
            .map(Party::name)
            .collect();
        assert_eq!(recipients, expected);
        self.sender_keys.push(SenderKeyVector {
            index: k,
            sender: party.name(),
            epoch,
            sender_index: known.index_of(*party),
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
            first_chain_key: chain_key,
            chain_key,
            next: 0,
            signing_seed,
        };
        assert!(self.chains.insert((*party, epoch), fresh).is_none());
    }

    /// Message `index`: its keys stepped from the sender's chain, and the envelope rebuilt by
    /// hand.
    fn sealed(&mut self, runner: &Runner, index: usize, time: u64) {
        let (party, envelope) = &runner.envelopes[index];
        let parsed = message::parse(envelope).unwrap();
        let header = &parsed.header;
        let known = &self.epochs[&header.epoch];
        let (sender_index, sender) = known.member(*party);
        assert_eq!(header.sender, sender_index);
        assert_eq!(Some(header.group_id), self.group_id);
        assert_eq!(
            header.branch,
            known.state_hash[..4],
            "the branch tag is S[0..4]"
        );
        let chain = self.chains.get_mut(&(*party, header.epoch)).unwrap();
        assert_eq!(header.counter, chain.next);
        let chain_key = chain.chain_key;
        let (message_key, next_chain_key) = chain_step(&chain_key);
        chain.chain_key = next_chain_key;
        chain.next += 1;
        let chain = *chain;
        let keys = group_keys(&message_key);
        let state_hash = known.state_hash;
        let header_bytes = parsed.header_bytes;
        let hmac_input = hmac_input(header_bytes, &state_hash, &keys, parsed.ciphertext);
        let hmac_tag = kdf::hmac(&keys.mac_key, &[&hmac_input]);
        assert_eq!(&hmac_tag, parsed.tag);
        let signature_input = signature_input(&state_hash, parsed.signed);
        let signature = SigningKey::from_bytes(&chain.signing_seed).sign(&signature_input);
        assert_eq!(&signature.to_bytes(), parsed.signature);
        // The generator's keys open what the group sealed, and sealing by hand reproduces it.
        let text = plaintext(index);
        let verifying = VerifyingKey::from_bytes(&verifying_key(&chain.signing_seed)).unwrap();
        let opened = message::open(
            &parsed,
            &message_keys(&keys),
            &state_hash,
            &verifying,
            message::SignatureCheck::Strict,
        );
        assert_eq!(opened.unwrap(), text);
        let resealed = seal_raw(
            header_bytes,
            &keys,
            &state_hash,
            &chain.signing_seed,
            &padded(&text),
        );
        assert_eq!(&resealed, envelope);
        self.messages.push(MessageVector {
            index,
            sender: party.name(),
            sender_role: role_name(sender.role()),
            time,
            epoch: header.epoch,
            sender_index,
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
            padded_length: crate::padding::padded_len(text.len()),
            header: h(header_bytes),
            ciphertext: h(parsed.ciphertext),
            hmac_input: h(&hmac_input),
            hmac_tag: h(&hmac_tag),
            signature_input: h(&signature_input),
            signature: h(&signature.to_bytes()),
            envelope: h(envelope),
        });
        self.sealed.push(SealedMessage {
            epoch: header.epoch,
            keys,
            signing_seed: chain.signing_seed,
            envelope: envelope.clone(),
        });
    }
}

/// Plays the script and records every step.
pub(super) fn generate() -> Generated {
    let mut runner = Runner::new();
    let mut rec = Recording::default();
    let mut timeline = Vec::new();
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
            (Step::Create(_), Outcome::Created { drawn }) => {
                rec.created(runner.group(party), &drawn);
                vector.action = "create";
                vector.drawn = Some(h(&drawn));
            }
            (Step::Commit(..), Outcome::Committed { commit }) => {
                rec.committed(&runner, commit, time);
                vector.action = "commit";
                vector.commit = Some(commit);
            }
            (Step::Join(_, c), Outcome::Joined(_)) => {
                vector.action = "join";
                vector.commit = Some(c);
                vector.from = Some(runner.commits[c].0.name());
            }
            (Step::ReceiveCommit(_, c), Outcome::Received(_)) => {
                vector.action = "receive_commit";
                vector.commit = Some(c);
                vector.from = Some(runner.commits[c].0.name());
            }
            (Step::ReceiveSenderKey(_, k), Outcome::Received(_)) => {
                vector.action = "receive_sender_key";
                vector.sender_key = Some(k);
                vector.from = Some(runner.sender_keys[k].0.name());
            }
            (
                Step::Seal(_),
                Outcome::Sealed {
                    message,
                    sender_key,
                    drawn,
                },
            ) => {
                match sender_key {
                    Some(k) => rec.sender_key_made(&runner, k, runner.group(party).epoch(), &drawn),
                    None => assert!(drawn.is_empty(), "m{message}: drew for no sender key"),
                }
                rec.sealed(&runner, message, time);
                vector.action = "seal";
                vector.message = Some(message);
                vector.sender_key = sender_key;
                vector.drawn = (!drawn.is_empty()).then(|| h(&drawn));
            }
            (Step::Open(_, m), Outcome::Opened(opened)) => {
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
        assert_eq!(group.state_hash(), rec.epochs[&group.epoch()].state_hash);
        timeline.push(vector);
    }
    let group_id = rec.group_id.expect("the group was created");
    let file = GroupFile {
        description: "One group: alice creates it and adds bob (epoch 1) and carol (epoch 2), \
                      all three send, alice removes bob (epoch 3) and carol and alice go on \
                      without him. Every commit, state hash (with each member's seniority), \
                      sender key and message with its keys, the timeline of deliveries through \
                      the public API, and the inputs a member must reject (negative). See \
                      README.md.",
        version: FILE_VERSION,
        config: config(),
        parties: party_vectors(),
        group_id: h(&group_id),
        epochs: rec.epoch_vectors,
        commits: rec.commits,
        sender_keys: rec.sender_keys,
        messages: rec.messages,
        timeline,
        negative: Vec::new(),
    };
    Generated {
        file,
        group_id,
        epochs: rec.epochs,
        chains: rec.chains,
        messages: rec.sealed,
        runner,
    }
}
