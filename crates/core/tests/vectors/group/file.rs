//! `group.json` loaded, and every recorded value re-derived from the listed secrets: rosters
//! (from the changes, with their seniorities), state hashes, commit encodings, signatures and
//! hashes, welcomes, sender keys, chains, group message keys and envelopes.

use std::collections::BTreeMap;

use sealwire_core::{GroupConfig, GroupEnvelopeHeader};
use serde_json::Value;

use super::codec::{
    DecodedCommit, Reader, SenderKey, Summary, WireChange, commit_control, decode_commit,
    encode_commit, group_header, parse_group_envelope, seal, sender_key_control, welcome_control,
};
use super::model::{Member, apply_changes, members_of, since_of, state_hash_input};
use super::{ADMIN, ed25519_public, group_message_keys, role_wire, sha256, sign, verifies};
use crate::json::{b32, bytes, find, list, load, num, num32, text_of};
use crate::primitives::{chain_step, gcm_open, pad_len, unpad, x25519_public};
use crate::{LABEL_BINDING, LABEL_GROUP_COMMIT, LABEL_GROUP_COMMIT_HASH};

/// A party's signing seed, agreement secret and public identity.
pub(super) type PartyKeys = ([u8; 32], [u8; 32], Vec<u8>);

pub(super) struct GroupVectors {
    pub(super) file: Value,
    pub(super) group_id: Vec<u8>,
    /// Name → (signing seed, agreement secret, public identity).
    pub(super) parties: BTreeMap<String, PartyKeys>,
    /// Public identity → name.
    pub(super) names: BTreeMap<Vec<u8>, String>,
}

/// `CK` stepped `n` times.
pub(super) fn step_chain(mut chain_key: [u8; 32], n: u32) -> [u8; 32] {
    for _ in 0..n {
        chain_key = chain_step(&chain_key).1;
    }
    chain_key
}

pub(super) fn names_of(v: &Value, key: &str) -> Vec<String> {
    list(v, key)
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

impl GroupVectors {
    pub(super) fn load() -> Self {
        let file = load("group.json");
        let identities = load("identity.json");
        let mut parties = BTreeMap::new();
        let mut names = BTreeMap::new();
        for p in list(&file, "parties") {
            let name = text_of(p, "name");
            let reference = find(list(&identities, "identities"), name);
            for key in ["signing_seed", "agreement_secret", "public_identity"] {
                assert_eq!(p[key], reference[key], "{name}: {key}");
            }
            let (seed, secret) = (b32(p, "signing_seed"), b32(p, "agreement_secret"));
            let (s, x) = (ed25519_public(&seed), x25519_public(&secret));
            let binding = sign(&seed, &[LABEL_BINDING, &s, &x].concat());
            let identity = [&s[..], &x, &binding].concat();
            assert_eq!(identity, bytes(p, "public_identity"), "{name}");
            parties.insert(name.to_owned(), (seed, secret, identity.clone()));
            names.insert(identity, name.to_owned());
        }
        GroupVectors {
            group_id: bytes(&file, "group_id"),
            file,
            parties,
            names,
        }
    }

    pub(super) fn list(&self, key: &str) -> &Vec<Value> {
        list(&self.file, key)
    }

    pub(super) fn identity(&self, name: &str) -> &[u8] {
        &self.parties[name].2
    }

    pub(super) fn epoch(&self, epoch: u64) -> &Value {
        let e = &self.list("epochs")[epoch as usize];
        assert_eq!(num(e, "epoch"), epoch);
        e
    }

    pub(super) fn state_hash(&self, epoch: u64) -> Vec<u8> {
        bytes(self.epoch(epoch), "state_hash")
    }

    /// A member of a recorded epoch and its index there.
    pub(super) fn member_in(&self, epoch: u64, name: &str) -> (u32, Member) {
        let members = members_of(self.epoch(epoch));
        let index = members.iter().position(|m| m.name == name).unwrap();
        (u32::try_from(index).unwrap(), members[index].clone())
    }

    /// The recorded sender key of `owner` for `epoch`, if any.
    pub(super) fn sender_key_of(&self, owner: &str, epoch: u64) -> Option<&Value> {
        self.list("sender_keys")
            .iter()
            .find(|k| k["sender"] == owner && num(k, "epoch") == epoch)
    }

    pub(super) fn step_time(&self, step: usize) -> u64 {
        num(&self.list("timeline")[0], "time") + 10 * step as u64
    }

    pub(super) fn config(&self) -> GroupConfig {
        let c = &self.file["config"];
        // The defaults of `GroupConfig`, except max_past_epochs (README.md).
        let expected = [
            ("rotate_after_messages", 1_000),
            ("rotate_after_secs", 604_800),
            ("max_past_epochs", 1),
            ("past_epoch_secs", 604_800),
            ("max_forward_jump", 2_000),
            ("max_skipped_per_sender", 1_000),
            ("max_skipped_per_epoch", 5_000),
            ("max_pending_sender_keys", 2_000),
        ];
        assert_eq!(
            c.as_object().unwrap().len(),
            expected.len(),
            "config fields"
        );
        for (key, value) in expected {
            assert_eq!(num(c, key), value, "config {key}");
        }
        let mut config = GroupConfig::default();
        config.rotate_after_messages = num32(c, "rotate_after_messages");
        config.rotate_after_secs = num(c, "rotate_after_secs");
        config.max_past_epochs = num32(c, "max_past_epochs");
        config.past_epoch_secs = num(c, "past_epoch_secs");
        config.max_forward_jump = num32(c, "max_forward_jump");
        config.max_skipped_per_sender = num32(c, "max_skipped_per_sender");
        config.max_skipped_per_epoch = num32(c, "max_skipped_per_epoch");
        config.max_pending_sender_keys = num32(c, "max_pending_sender_keys");
        config
    }

    /// The changes of a commit (recorded or crafted), checked against their fields.
    pub(super) fn wire_changes(&self, changes: &[Value]) -> Vec<WireChange> {
        changes
            .iter()
            .map(|c| {
                let member = self.identity(text_of(c, "member"));
                let key: [u8; 32] = member[..32].try_into().unwrap();
                match text_of(c, "kind") {
                    "add" => {
                        assert_eq!(bytes(c, "identity"), member);
                        WireChange::Add(member.to_vec(), role_wire(text_of(c, "role")))
                    }
                    "remove" => {
                        assert_eq!(bytes(c, "key"), key);
                        WireChange::Remove(key)
                    }
                    "set_role" => {
                        assert_eq!(bytes(c, "key"), key);
                        WireChange::SetRole(key, role_wire(text_of(c, "role")))
                    }
                    other => panic!("unknown change kind {other}"),
                }
            })
            .collect()
    }

    /// A commit's bytes, signature and hash from its fields (recorded or crafted).
    pub(super) fn check_commit_fields(&self, c: &Value, signer: &str, what: &str) -> DecodedCommit {
        let commit_bytes = bytes(c, "commit_bytes");
        let decoded = decode_commit(&commit_bytes);
        let expected = DecodedCommit {
            group_id: self.group_id.clone().try_into().unwrap(),
            epoch: num32(c, "epoch"),
            parent_hash: b32(c, "parent_hash"),
            committer: self.identity(signer)[..32].try_into().unwrap(),
            changes: self.wire_changes(list(c, "changes")),
        };
        assert_eq!(
            encode_commit(&expected),
            commit_bytes,
            "{what}: commit bytes"
        );
        assert_eq!(decoded.changes, expected.changes, "{what}: changes");
        assert_eq!(decoded.committer, expected.committer, "{what}: committer");
        let signed_message = [LABEL_GROUP_COMMIT, &commit_bytes].concat();
        assert_eq!(bytes(c, "signed_message"), signed_message, "{what}");
        let seed = &self.parties[signer].0;
        let signature = sign(seed, &signed_message);
        assert_eq!(bytes(c, "signature"), signature, "{what}: signature");
        assert!(verifies(&decoded.committer, &signed_message, &signature));
        let hash = sha256(&[LABEL_GROUP_COMMIT_HASH, &commit_bytes]);
        assert_eq!(b32(c, "commit_hash"), hash, "{what}: commit hash");
        decoded
    }

    /// The roster epoch `e` must have: the creator alone (admin, since (0, 0)) for epoch 0,
    /// else the parent roster with the changes of the commit that started it.
    fn expected_roster(&self, e: usize) -> Vec<Member> {
        let epochs = self.list("epochs");
        let epoch = &epochs[e];
        if e == 0 {
            assert!(epoch["commit"].is_null());
            assert_eq!(b32(epoch, "parent_hash"), [0; 32]);
            assert_eq!(b32(epoch, "commit_hash"), [0; 32]);
            let create = &self.list("timeline")[0];
            assert_eq!(text_of(create, "action"), "create");
            let creator = text_of(create, "party");
            return vec![Member {
                name: creator.to_owned(),
                identity: self.identity(creator).to_vec(),
                role: ADMIN,
                since: (0, 0),
            }];
        }
        let c = &self.list("commits")[num(epoch, "commit") as usize];
        assert_eq!(num(c, "epoch") as usize, e);
        assert_eq!(
            epoch["parent_hash"],
            epochs[e - 1]["state_hash"],
            "epoch {e}"
        );
        assert_eq!(epoch["commit_hash"], c["commit_hash"], "epoch {e}");
        let committer = decode_commit(&bytes(c, "commit_bytes")).committer;
        apply_changes(
            &members_of(&epochs[e - 1]),
            &committer,
            &self.wire_changes(list(c, "changes")),
            u32::try_from(e).unwrap(),
            &self.names,
        )
        .expect("the committer may make the changes")
    }

    /// Epochs: each roster derived from the changes (seniorities included), its order and
    /// indices, and its state hash.
    pub(super) fn check_epochs(&self) {
        let create = &self.list("timeline")[0];
        assert_eq!(
            bytes(create, "drawn"),
            self.group_id,
            "the group id is drawn at creation"
        );
        assert_eq!(self.group_id.len(), 16);
        let epochs = self.list("epochs");
        assert_eq!(epochs.len(), self.list("commits").len() + 1);
        for (e, epoch) in epochs.iter().enumerate() {
            assert_eq!(num(epoch, "epoch") as usize, e);
            let members = members_of(epoch);
            for (i, m) in list(epoch, "members").iter().enumerate() {
                assert_eq!(num(m, "index") as usize, i);
                assert_eq!(self.identity(&members[i].name), members[i].identity);
            }
            assert!(
                members.windows(2).all(|w| w[0].key() < w[1].key()),
                "epoch {e}: order"
            );
            let mut seniorities: Vec<_> = members.iter().map(|m| m.since).collect();
            seniorities.sort_unstable();
            seniorities.dedup();
            assert_eq!(seniorities.len(), members.len(), "epoch {e}: seniorities");
            assert_eq!(members, self.expected_roster(e), "epoch {e}: members");
            let input = state_hash_input(
                &self.group_id,
                u32::try_from(e).unwrap(),
                &bytes(epoch, "parent_hash"),
                &bytes(epoch, "commit_hash"),
                &members,
            );
            assert_eq!(
                bytes(epoch, "state_hash_input"),
                input,
                "epoch {e}: state hash input"
            );
            assert_eq!(
                b32(epoch, "state_hash"),
                sha256(&[&input]),
                "epoch {e}: state hash"
            );
        }
    }

    /// Commits: encoding, signature, hash, the committer's role and seniority in the parent,
    /// the control message, recipients and the welcome (summary of the parent epoch).
    pub(super) fn check_commits(&self) {
        let timeline = self.list("timeline");
        for (i, c) in self.list("commits").iter().enumerate() {
            assert_eq!(num(c, "index") as usize, i);
            let committer = text_of(c, "committer");
            let e = num(c, "epoch");
            let parent = self.epoch(e - 1);
            assert_eq!(c["parent_hash"], parent["state_hash"], "c{i}: parent hash");
            assert_eq!(self.epoch(e)["commit"], i, "c{i}: the epoch it starts");
            let decoded = self.check_commit_fields(c, committer, &format!("c{i}"));
            assert_eq!(decoded.group_id[..], self.group_id[..]);
            assert_eq!(u64::from(decoded.epoch), e);
            let (_, member) = self.member_in(e - 1, committer);
            assert_eq!(role_wire(text_of(c, "committer_role")), member.role, "c{i}");
            assert_eq!(since_of(&c["committer_since"]), member.since, "c{i}");
            let (commit, signature) = (bytes(c, "commit_bytes"), bytes(c, "signature"));
            let control = commit_control(&commit, &signature);
            assert_eq!(bytes(c, "control"), control, "c{i}: control message");
            let parent_members = members_of(parent);
            let others: Vec<String> = parent_members
                .iter()
                .map(|m| m.name.clone())
                .filter(|n| n != committer)
                .collect();
            assert_eq!(names_of(c, "recipients"), others, "c{i}: recipients");
            let added: Vec<String> = decoded
                .changes
                .iter()
                .filter_map(|ch| match ch {
                    WireChange::Add(identity, _) => Some(self.names[identity].clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(names_of(c, "welcome_recipients"), added, "c{i}");
            if added.is_empty() {
                assert!(c["welcome"].is_null());
            } else {
                let summary = Summary {
                    epoch: num32(parent, "epoch"),
                    parent_hash: &bytes(parent, "parent_hash"),
                    commit_hash: &bytes(parent, "commit_hash"),
                    members: &parent_members,
                };
                let welcome = welcome_control(&summary, &commit, &signature);
                assert_eq!(bytes(c, "welcome"), welcome, "c{i}: welcome");
            }
            let step = timeline
                .iter()
                .find(|s| s["action"] == "commit" && s["commit"] == i)
                .unwrap();
            assert_eq!(c["time"], step["time"]);
            assert_eq!(step["party"], c["committer"]);
        }
    }

    /// Sender keys: the control message from its fields (and back), the signing key from its
    /// seed, the epoch's state hash, and the random draw of the seal that made it.
    pub(super) fn check_sender_keys(&self) {
        let timeline = self.list("timeline");
        for (i, k) in self.list("sender_keys").iter().enumerate() {
            assert_eq!(num(k, "index") as usize, i);
            let (sender, epoch) = (text_of(k, "sender"), num(k, "epoch"));
            let control = bytes(k, "control");
            let fields = SenderKey {
                group_id: &self.group_id,
                epoch: num32(k, "epoch"),
                state_hash: &bytes(k, "state_hash"),
                counter: num32(k, "counter"),
                chain_key: &bytes(k, "chain_key"),
                signing_key: &bytes(k, "signing_key"),
            };
            assert_eq!(
                control,
                sender_key_control(&fields),
                "k{i}: control message"
            );
            let mut r = Reader::new(&control);
            assert_eq!((r.byte(), r.varint()), (1, 2), "k{i}: version and kind");
            assert_eq!(r.take(16), &self.group_id[..]);
            assert_eq!(u64::from(r.u32()), epoch);
            assert_eq!(r.take(32), fields.state_hash);
            assert_eq!(r.u32(), fields.counter);
            assert_eq!(r.take(32), fields.chain_key);
            assert_eq!(r.take(32), fields.signing_key);
            assert!(r.done());
            assert_eq!(fields.counter, 0, "k{i}: a fresh chain starts at 0");
            assert_eq!(
                ed25519_public(&b32(k, "signing_seed")),
                b32(k, "signing_key"),
                "k{i}: signing key"
            );
            assert_eq!(
                fields.state_hash,
                self.state_hash(epoch),
                "k{i}: state hash"
            );
            assert_eq!(
                num32(k, "sender_index"),
                self.member_in(epoch, sender).0,
                "k{i}"
            );
            let others: Vec<String> = members_of(self.epoch(epoch))
                .into_iter()
                .map(|m| m.name)
                .filter(|n| n != sender)
                .collect();
            assert_eq!(names_of(k, "recipients"), others, "k{i}: recipients");
            let seal = timeline
                .iter()
                .find(|s| s["action"] == "seal" && s["sender_key"] == i)
                .unwrap();
            assert_eq!(text_of(seal, "party"), sender);
            let drawn = [bytes(k, "chain_key"), bytes(k, "signing_seed")].concat();
            assert_eq!(bytes(seal, "drawn"), drawn, "k{i}: drawn by the seal");
        }
    }

    /// Messages: each sender chain stepped from its sender key, the group message keys, the
    /// header, AES-GCM, the HMAC tag, the signature and the envelope, then opened back.
    pub(super) fn check_messages(&self) {
        let sender_keys = self.list("sender_keys");
        let timeline = self.list("timeline");
        let mut next: BTreeMap<usize, u32> = BTreeMap::new();
        for (i, m) in self.list("messages").iter().enumerate() {
            assert_eq!(num(m, "index") as usize, i);
            let (sender, epoch) = (text_of(m, "sender"), num(m, "epoch"));
            let k = num(m, "sender_key") as usize;
            let key = &sender_keys[k];
            assert_eq!((&key["sender"], &key["epoch"]), (&m["sender"], &m["epoch"]));
            let counter = num32(m, "counter");
            let expected_counter = next.entry(k).or_insert(0);
            assert_eq!(
                counter, *expected_counter,
                "m{i}: counters follow the sealing order"
            );
            *expected_counter += 1;
            let chain = step_chain(b32(key, "chain_key"), counter);
            assert_eq!(b32(m, "chain_key"), chain, "m{i}: chain key");
            let (mk, next_chain) = chain_step(&chain);
            assert_eq!(b32(m, "message_key"), mk, "m{i}: message key");
            assert_eq!(b32(m, "next_chain_key"), next_chain, "m{i}: next chain key");
            let keys = group_message_keys(&mk);
            assert_eq!(b32(m, "aes_key"), keys.aes, "m{i}: AES key");
            assert_eq!(b32(m, "mac_key"), keys.mac, "m{i}: MAC key");
            assert_eq!(bytes(m, "nonce"), keys.nonce, "m{i}: nonce");

            let state_hash = self.state_hash(epoch);
            assert_eq!(bytes(m, "state_hash"), state_hash, "m{i}: state hash");
            let (sender_index, member) = self.member_in(epoch, sender);
            assert_eq!(num32(m, "sender_index"), sender_index, "m{i}");
            assert_eq!(role_wire(text_of(m, "sender_role")), member.role, "m{i}");
            let header = group_header(
                &self.group_id,
                num32(m, "epoch"),
                &state_hash,
                sender_index,
                counter,
            );
            assert_eq!(bytes(m, "header"), header, "m{i}: header");

            let plaintext = bytes(m, "plaintext");
            assert_eq!(num(m, "padded_length") as usize, pad_len(plaintext.len()));
            let seed = b32(key, "signing_seed");
            let sealed = seal(&header, &keys, &state_hash, &seed, &plaintext);
            assert_eq!(
                bytes(m, "ciphertext"),
                sealed.ciphertext,
                "m{i}: ciphertext"
            );
            assert_eq!(
                bytes(m, "hmac_input"),
                sealed.hmac_input,
                "m{i}: HMAC input"
            );
            assert_eq!(bytes(m, "hmac_tag"), sealed.hmac_tag, "m{i}: HMAC tag");
            assert_eq!(bytes(m, "signature_input"), sealed.signature_input, "m{i}");
            assert_eq!(bytes(m, "signature"), sealed.signature, "m{i}: signature");
            assert!(verifies(
                &b32(key, "signing_key"),
                &sealed.signature_input,
                &sealed.signature
            ));
            let envelope = sealed.envelope;
            assert_eq!(bytes(m, "envelope"), envelope, "m{i}: envelope");

            // Opened back from the envelope alone, by this parser.
            let env = parse_group_envelope(&envelope).unwrap();
            assert_eq!(
                (
                    &env.group_id[..],
                    u64::from(env.epoch),
                    env.sender,
                    env.counter
                ),
                (&self.group_id[..], epoch, sender_index, counter)
            );
            assert_eq!(
                env.branch,
                state_hash[..4],
                "m{i}: the branch tag is S[0..4]"
            );
            let aad = [&header[..], &state_hash].concat();
            let body = &envelope[env.ciphertext.clone()];
            let opened = gcm_open(&keys.aes, &keys.nonce, &aad, body).unwrap();
            assert_eq!(unpad(&opened), Some(&plaintext[..]), "m{i}: plaintext");
            let public = GroupEnvelopeHeader::parse(&envelope).unwrap();
            assert_eq!(public.group_id().as_bytes()[..], self.group_id[..]);
            assert_eq!(
                (u64::from(public.epoch()), public.sender(), public.counter()),
                (epoch, sender_index, counter)
            );
            let seal = timeline
                .iter()
                .find(|s| s["action"] == "seal" && s["message"] == i)
                .unwrap();
            assert_eq!((&seal["party"], &seal["time"]), (&m["sender"], &m["time"]));
        }
    }

    /// The timeline's numbering: steps 10 seconds apart, commits, sender keys and messages
    /// made in order.
    pub(super) fn check_timeline_numbering(&self) {
        let (mut commits, mut sender_keys, mut messages) = (0, 0, 0);
        for (i, step) in self.list("timeline").iter().enumerate() {
            assert_eq!(num(step, "step") as usize, i);
            assert_eq!(num(step, "time"), self.step_time(i));
            match text_of(step, "action") {
                "commit" => {
                    assert_eq!(num(step, "commit"), commits);
                    commits += 1;
                }
                "seal" => {
                    assert_eq!(num(step, "message"), messages);
                    messages += 1;
                    if let Some(k) = step.get("sender_key") {
                        assert_eq!(k.as_u64().unwrap(), sender_keys);
                        sender_keys += 1;
                    }
                }
                _ => {}
            }
        }
        assert_eq!(commits as usize, self.list("commits").len());
        assert_eq!(sender_keys as usize, self.list("sender_keys").len());
        assert_eq!(messages as usize, self.list("messages").len());
    }
}
