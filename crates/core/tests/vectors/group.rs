//! `group.json`: every value re-derived from the listed secrets with the primitive crates alone
//! (commit and control encodings, commit hashes, Ed25519 signatures, state hashes, sender keys,
//! sender chains, group message keys, envelopes), then the whole timeline and every negative
//! vector replayed through the public API (`Group::create`, `commit`, `join`, `receive`,
//! `seal`, `open`), with the recorded random draws fed back through a scripted RNG.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::Range;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::Mac;
use sealwire_core::rand_core::{TryCryptoRng, TryRng};
use sealwire_core::{
    Change, ControlKind, ControlMessage, ControlOutcome, Error, Group, GroupConfig,
    GroupEnvelopeHeader, IdentityKeyPair, MemberRole, PublicIdentity, Timestamp,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::codec::{read_varint, varint};
use crate::json::{b32, bytes, find, list, load, num, num32, text_of};
use crate::primitives::{
    Keys, chain_step, gcm_open, gcm_seal, hmac, pad_len, unpad, x25519_public,
};
use crate::{
    LABEL_BINDING, LABEL_GROUP_COMMIT, LABEL_GROUP_COMMIT_HASH, LABEL_GROUP_MESSAGE,
    LABEL_GROUP_SIGNATURE, LABEL_GROUP_STATE,
};

// ---------------------------------------------------------------------------------------------
// Primitives and encodings of the group layer.

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// `HKDF-Expand(PRK = MK, info = "sealwire/v1/group/message", 76)` split 32 / 32 / 12.
fn group_message_keys(message_key: &[u8; 32]) -> Keys {
    let mut okm = [0u8; 76];
    Hkdf::<Sha256>::from_prk(message_key)
        .unwrap()
        .expand(LABEL_GROUP_MESSAGE, &mut okm)
        .unwrap();
    Keys {
        aes: okm[..32].try_into().unwrap(),
        mac: okm[32..64].try_into().unwrap(),
        nonce: okm[64..].try_into().unwrap(),
    }
}

fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

fn sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    SigningKey::from_bytes(seed).sign(message).to_bytes()
}

fn verifies(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let signature = Signature::from_bytes(signature.try_into().unwrap());
    VerifyingKey::from_bytes(public)
        .unwrap()
        .verify_strict(message, &signature)
        .is_ok()
}

fn role_wire(role: &str) -> u8 {
    match role {
        "admin" => 0,
        "member" => 1,
        other => panic!("unknown role {other}"),
    }
}

fn role_of(role: &str) -> MemberRole {
    match role {
        "admin" => MemberRole::Admin,
        "member" => MemberRole::Member,
        other => panic!("unknown role {other}"),
    }
}

/// A roster member: name, 128-byte public identity, role.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Member {
    name: String,
    identity: Vec<u8>,
    role: String,
}

impl Member {
    fn key(&self) -> &[u8] {
        &self.identity[..32]
    }
}

/// A strict reader of postcard fields.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        out
    }
    fn byte(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn varint(&mut self) -> u64 {
        read_varint(self.bytes, &mut self.pos, u32::MAX.into(), true).expect("a canonical varint")
    }
    fn u32(&mut self) -> u32 {
        u32::try_from(self.varint()).unwrap()
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().unwrap()
    }
    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// A change as the commit encodes it: `varint(variant) ‖ fields`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum WireChange {
    Add(Vec<u8>, u8),
    Remove([u8; 32]),
    SetRole([u8; 32], u8),
}

fn encode_change(change: &WireChange) -> Vec<u8> {
    match change {
        WireChange::Add(identity, role) => [&[0][..], identity, &[*role]].concat(),
        WireChange::Remove(key) => [&[1][..], key].concat(),
        WireChange::SetRole(key, role) => [&[2][..], key, &[*role]].concat(),
    }
}

struct DecodedCommit {
    group_id: [u8; 16],
    epoch: u32,
    parent_hash: [u8; 32],
    committer: [u8; 32],
    changes: Vec<WireChange>,
}

fn encode_commit(c: &DecodedCommit) -> Vec<u8> {
    let mut out = c.group_id.to_vec();
    out.extend(varint(c.epoch.into()));
    out.extend_from_slice(&c.parent_hash);
    out.extend_from_slice(&c.committer);
    out.extend(varint(c.changes.len() as u64));
    for change in &c.changes {
        out.extend(encode_change(change));
    }
    out
}

fn decode_commit(bytes: &[u8]) -> DecodedCommit {
    let mut r = Reader::new(bytes);
    let group_id = r.array();
    let epoch = r.u32();
    let parent_hash = r.array();
    let committer = r.array();
    let n = r.varint();
    let changes = (0..n)
        .map(|_| match r.varint() {
            0 => WireChange::Add(r.take(128).to_vec(), u8::try_from(r.varint()).unwrap()),
            1 => WireChange::Remove(r.array()),
            2 => WireChange::SetRole(r.array(), u8::try_from(r.varint()).unwrap()),
            other => panic!("unknown change variant {other}"),
        })
        .collect();
    assert!(r.done(), "trailing bytes after the commit");
    DecodedCommit {
        group_id,
        epoch,
        parent_hash,
        committer,
        changes,
    }
}

/// `version 1 ‖ kind 0 ‖ varint(len) ‖ commit ‖ signature`.
fn commit_control(commit: &[u8], signature: &[u8]) -> Vec<u8> {
    [&[1, 0][..], &varint(commit.len() as u64), commit, signature].concat()
}

/// `version 1 ‖ kind 1 ‖ summary ‖ varint(len) ‖ commit ‖ signature`, where the summary is
/// `varint(epoch) ‖ parent hash ‖ commit hash ‖ varint(n) ‖ (identity ‖ role)*`.
fn welcome_control(parent: &Value, commit: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = vec![1, 1];
    out.extend(varint(num(parent, "epoch")));
    out.extend(bytes(parent, "parent_hash"));
    out.extend(bytes(parent, "commit_hash"));
    let members = list(parent, "members");
    out.extend(varint(members.len() as u64));
    for m in members {
        out.extend(bytes(m, "public_identity"));
        out.push(role_wire(text_of(m, "role")));
    }
    out.extend(varint(commit.len() as u64));
    out.extend_from_slice(commit);
    out.extend_from_slice(signature);
    out
}

/// `version 1 ‖ kind 2 ‖ group id ‖ varint(epoch) ‖ S ‖ varint(counter) ‖ CK ‖ signing key`.
fn sender_key_control(
    group_id: &[u8],
    epoch: u32,
    state_hash: &[u8],
    counter: u32,
    chain_key: &[u8],
    signing_key: &[u8],
) -> Vec<u8> {
    [
        &[1, 2][..],
        group_id,
        &varint(epoch.into()),
        state_hash,
        &varint(counter.into()),
        chain_key,
        signing_key,
    ]
    .concat()
}

/// The group envelope header: `1 ‖ 1 ‖ 2 ‖ group id ‖ varint(epoch) ‖ varint(sender) ‖
/// varint(counter)`.
fn group_header(group_id: &[u8], epoch: u32, sender: u32, counter: u32) -> Vec<u8> {
    [
        &[1, 1, 2][..],
        group_id,
        &varint(epoch.into()),
        &varint(sender.into()),
        &varint(counter.into()),
    ]
    .concat()
}

/// A group envelope split by this checker's own parser.
struct GroupEnvelope {
    group_id: [u8; 16],
    epoch: u32,
    sender: u32,
    counter: u32,
    header: Range<usize>,
    ciphertext: Range<usize>,
    hmac_tag: Range<usize>,
    signature: Range<usize>,
    /// Byte ranges of the header fields.
    fields: Vec<(&'static str, Range<usize>)>,
}

fn parse_group_envelope(bytes: &[u8]) -> Option<GroupEnvelope> {
    if bytes.get(..3)? != [1, 1, 2] {
        return None;
    }
    let group_id = bytes.get(3..19)?.try_into().ok()?;
    let mut pos = 19;
    let field = |pos: &mut usize| {
        let start = *pos;
        let value = read_varint(bytes, pos, u32::MAX.into(), true)?;
        Some((u32::try_from(value).ok()?, start..*pos))
    };
    let (epoch, epoch_range) = field(&mut pos)?;
    let (sender, sender_range) = field(&mut pos)?;
    let (counter, counter_range) = field(&mut pos)?;
    let header = 0..pos;
    let len = read_varint(bytes, &mut pos, u32::MAX.into(), true)? as usize;
    let padded = len.checked_sub(16)?;
    if padded < 32 || pad_len(padded - 1) != padded {
        return None;
    }
    let ciphertext = pos..pos + len;
    if bytes.len() != ciphertext.end + 32 + 64 {
        return None;
    }
    Some(GroupEnvelope {
        group_id,
        epoch,
        sender,
        counter,
        header,
        hmac_tag: ciphertext.end..ciphertext.end + 32,
        signature: ciphertext.end + 32..bytes.len(),
        ciphertext,
        fields: vec![
            ("version", 0..1),
            ("suite", 1..2),
            ("kind", 2..3),
            ("group_id", 3..19),
            ("epoch", epoch_range),
            ("sender", sender_range),
            ("counter", counter_range),
        ],
    })
}

impl GroupEnvelope {
    /// The region (and header field) holding byte `offset`.
    fn locate(&self, offset: usize) -> (&'static str, Option<&'static str>) {
        if self.header.contains(&offset) {
            let (field, _) = self
                .fields
                .iter()
                .find(|(_, r)| r.contains(&offset))
                .unwrap();
            return ("header", Some(field));
        }
        let gcm_tag = self.ciphertext.end - 16;
        let region = match offset {
            o if o < self.ciphertext.start => "ciphertext_length",
            o if o < gcm_tag => "ciphertext",
            o if o < self.ciphertext.end => "gcm_tag",
            o if self.hmac_tag.contains(&o) => "hmac_tag",
            _ => "signature",
        };
        (region, None)
    }
}

/// `LABEL ‖ group id ‖ be32(epoch) ‖ parent hash ‖ commit hash ‖ be32(n) ‖ (identity ‖ role)*`.
fn state_hash_input(
    group_id: &[u8],
    epoch: u32,
    parent_hash: &[u8],
    commit_hash: &[u8],
    members: &[Member],
) -> Vec<u8> {
    let mut input = [
        LABEL_GROUP_STATE,
        group_id,
        &epoch.to_be_bytes(),
        parent_hash,
        commit_hash,
        &u32::try_from(members.len()).unwrap().to_be_bytes(),
    ]
    .concat();
    for m in members {
        input.extend_from_slice(&m.identity);
        input.push(role_wire(&m.role));
    }
    input
}

/// Applies a commit's changes to the parent roster, with the authorization rule: any change but
/// leaving needs the admin role. Returns `None` if the committer may not make them.
fn apply_changes(
    parent: &[Member],
    committer: &[u8],
    changes: &[WireChange],
    names: &BTreeMap<Vec<u8>, String>,
) -> Option<Vec<Member>> {
    let committer = parent.iter().find(|m| m.key() == committer)?;
    let leaving = matches!(changes, [WireChange::Remove(key)] if key[..] == *committer.key());
    if !changes.is_empty() && !leaving && committer.role != "admin" {
        return None;
    }
    let mut members = parent.to_vec();
    let role_name = |role: u8| if role == 0 { "admin" } else { "member" }.to_owned();
    for change in changes {
        match change {
            WireChange::Add(identity, role) => {
                assert!(members.iter().all(|m| m.key() != &identity[..32]));
                members.push(Member {
                    name: names[identity].clone(),
                    identity: identity.clone(),
                    role: role_name(*role),
                });
            }
            WireChange::Remove(key) => members.retain(|m| m.key() != key),
            WireChange::SetRole(key, role) => {
                let m = members.iter_mut().find(|m| m.key() == key).unwrap();
                m.role = role_name(*role);
            }
        }
    }
    members.sort_by(|a, b| a.key().cmp(b.key()));
    Some(members)
}

fn members_of(epoch: &Value) -> Vec<Member> {
    list(epoch, "members")
        .iter()
        .map(|m| Member {
            name: text_of(m, "name").to_owned(),
            identity: bytes(m, "public_identity"),
            role: text_of(m, "role").to_owned(),
        })
        .collect()
}

fn names_of(v: &Value, key: &str) -> Vec<String> {
    list(v, key)
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The file, loaded and checked from the primitives.

/// A party's signing seed, agreement secret and public identity.
type PartyKeys = ([u8; 32], [u8; 32], Vec<u8>);

struct GroupVectors {
    file: Value,
    group_id: Vec<u8>,
    /// Name → (signing seed, agreement secret, public identity).
    parties: BTreeMap<String, PartyKeys>,
    /// Public identity → name.
    names: BTreeMap<Vec<u8>, String>,
}

impl GroupVectors {
    fn load() -> Self {
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

    fn list(&self, key: &str) -> &Vec<Value> {
        list(&self.file, key)
    }

    fn identity(&self, name: &str) -> &[u8] {
        &self.parties[name].2
    }

    fn epoch(&self, epoch: u64) -> &Value {
        let e = &self.list("epochs")[epoch as usize];
        assert_eq!(num(e, "epoch"), epoch);
        e
    }

    fn state_hash(&self, epoch: u64) -> Vec<u8> {
        bytes(self.epoch(epoch), "state_hash")
    }

    fn index_in(&self, epoch: u64, name: &str) -> u32 {
        let members = members_of(self.epoch(epoch));
        u32::try_from(members.iter().position(|m| m.name == name).unwrap()).unwrap()
    }

    fn config(&self) -> GroupConfig {
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
    fn wire_changes(&self, changes: &[Value]) -> Vec<WireChange> {
        changes
            .iter()
            .map(|c| {
                let member = self.identity(text_of(c, "member"));
                match text_of(c, "kind") {
                    "add" => {
                        assert_eq!(bytes(c, "identity"), member);
                        WireChange::Add(member.to_vec(), role_wire(text_of(c, "role")))
                    }
                    "remove" => {
                        assert_eq!(bytes(c, "key"), member[..32]);
                        WireChange::Remove(member[..32].try_into().unwrap())
                    }
                    "set_role" => {
                        assert_eq!(bytes(c, "key"), member[..32]);
                        WireChange::SetRole(
                            member[..32].try_into().unwrap(),
                            role_wire(text_of(c, "role")),
                        )
                    }
                    other => panic!("unknown change kind {other}"),
                }
            })
            .collect()
    }

    /// A commit's bytes, signature and hash from its fields (recorded or crafted).
    fn check_commit_fields(&self, c: &Value, signer: &str, what: &str) -> DecodedCommit {
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

    fn step_time(&self, step: usize) -> u64 {
        let timeline = self.list("timeline");
        num(&timeline[0], "time") + 10 * step as u64
    }

    /// Epochs and commits: the epoch chain, each commit's encoding, signature and hash, the
    /// rosters (from the changes) and their state hashes.
    fn check_epochs_and_commits(&self) {
        let epochs = self.list("epochs");
        let commits = self.list("commits");
        let timeline = self.list("timeline");
        assert_eq!(epochs.len(), commits.len() + 1);
        let create = &timeline[0];
        assert_eq!(text_of(create, "action"), "create");
        assert_eq!(
            bytes(create, "drawn"),
            self.group_id,
            "the group id is drawn at creation"
        );
        assert_eq!(self.group_id.len(), 16);
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
            let expected_members = if e == 0 {
                assert!(epoch["commit"].is_null());
                assert_eq!(b32(epoch, "parent_hash"), [0; 32]);
                assert_eq!(b32(epoch, "commit_hash"), [0; 32]);
                let creator = text_of(create, "party");
                vec![Member {
                    name: creator.to_owned(),
                    identity: self.identity(creator).to_vec(),
                    role: "admin".to_owned(),
                }]
            } else {
                let c = &commits[num(epoch, "commit") as usize];
                assert_eq!(num(c, "epoch") as usize, e);
                assert_eq!(
                    epoch["parent_hash"],
                    epochs[e - 1]["state_hash"],
                    "epoch {e}"
                );
                assert_eq!(epoch["commit_hash"], c["commit_hash"], "epoch {e}");
                let committer = bytes(c, "commit_bytes");
                let committer = decode_commit(&committer).committer;
                apply_changes(
                    &members_of(&epochs[e - 1]),
                    &committer,
                    &self.wire_changes(list(c, "changes")),
                    &self.names,
                )
                .expect("the committer may make the changes")
            };
            assert_eq!(members, expected_members, "epoch {e}: members");
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
        for (i, c) in commits.iter().enumerate() {
            assert_eq!(num(c, "index") as usize, i);
            let committer = text_of(c, "committer");
            let e = num(c, "epoch");
            let parent = self.epoch(e - 1);
            assert_eq!(c["parent_hash"], parent["state_hash"], "c{i}: parent hash");
            assert_eq!(self.epoch(e)["commit"], i, "c{i}: the epoch it starts");
            let decoded = self.check_commit_fields(c, committer, &format!("c{i}"));
            assert_eq!(decoded.group_id[..], self.group_id[..]);
            assert_eq!(u64::from(decoded.epoch), e);
            let parent_members = members_of(parent);
            let role = &parent_members
                .iter()
                .find(|m| m.name == committer)
                .unwrap()
                .role;
            assert_eq!(text_of(c, "committer_role"), role, "c{i}");
            let control = commit_control(&bytes(c, "commit_bytes"), &bytes(c, "signature"));
            assert_eq!(bytes(c, "control"), control, "c{i}: control message");
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
                let welcome =
                    welcome_control(parent, &bytes(c, "commit_bytes"), &bytes(c, "signature"));
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
    fn check_sender_keys(&self) {
        let timeline = self.list("timeline");
        for (i, k) in self.list("sender_keys").iter().enumerate() {
            assert_eq!(num(k, "index") as usize, i);
            let (sender, epoch) = (text_of(k, "sender"), num(k, "epoch"));
            let control = bytes(k, "control");
            let expected = sender_key_control(
                &self.group_id,
                num32(k, "epoch"),
                &bytes(k, "state_hash"),
                num32(k, "counter"),
                &bytes(k, "chain_key"),
                &bytes(k, "signing_key"),
            );
            assert_eq!(control, expected, "k{i}: control message");
            let mut r = Reader::new(&control);
            assert_eq!((r.byte(), r.varint()), (1, 2), "k{i}: version and kind");
            assert_eq!(r.take(16), &self.group_id[..]);
            assert_eq!(u64::from(r.u32()), epoch);
            assert_eq!(r.take(32), bytes(k, "state_hash"));
            assert_eq!(r.u32(), num32(k, "counter"));
            assert_eq!(r.take(32), bytes(k, "chain_key"));
            assert_eq!(r.take(32), bytes(k, "signing_key"));
            assert!(r.done());
            assert_eq!(num(k, "counter"), 0, "k{i}: a fresh chain starts at 0");
            assert_eq!(
                ed25519_public(&b32(k, "signing_seed")),
                b32(k, "signing_key"),
                "k{i}: signing key"
            );
            assert_eq!(
                bytes(k, "state_hash"),
                self.state_hash(epoch),
                "k{i}: state hash"
            );
            assert_eq!(
                num32(k, "sender_index"),
                self.index_in(epoch, sender),
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
    fn check_messages(&self) {
        let sender_keys = self.list("sender_keys");
        let timeline = self.list("timeline");
        let mut next: BTreeMap<usize, u32> = BTreeMap::new();
        for (i, m) in self.list("messages").iter().enumerate() {
            assert_eq!(num(m, "index") as usize, i);
            let (sender, epoch) = (text_of(m, "sender"), num(m, "epoch"));
            let k = num(m, "sender_key") as usize;
            let key = &sender_keys[k];
            assert_eq!(
                (key["sender"].clone(), key["epoch"].clone()),
                (m["sender"].clone(), m["epoch"].clone())
            );
            let counter = num32(m, "counter");
            let expected_counter = next.entry(k).or_insert(0);
            assert_eq!(
                counter, *expected_counter,
                "m{i}: counters follow the sealing order"
            );
            *expected_counter += 1;
            let mut chain = b32(key, "chain_key");
            for _ in 0..counter {
                chain = chain_step(&chain).1;
            }
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
            let sender_index = self.index_in(epoch, sender);
            assert_eq!(num32(m, "sender_index"), sender_index, "m{i}");
            let role = &members_of(self.epoch(epoch))[sender_index as usize].role;
            assert_eq!(text_of(m, "sender_role"), role, "m{i}");
            let header = group_header(&self.group_id, num32(m, "epoch"), sender_index, counter);
            assert_eq!(bytes(m, "header"), header, "m{i}: header");

            let plaintext = bytes(m, "plaintext");
            let padded_len = pad_len(plaintext.len());
            assert_eq!(num(m, "padded_length") as usize, padded_len);
            let mut padded = plaintext.clone();
            padded.push(0x80);
            padded.resize(padded_len, 0);
            let aad = [&header[..], &state_hash].concat();
            let ciphertext = gcm_seal(&keys.aes, &keys.nonce, &aad, &padded);
            assert_eq!(bytes(m, "ciphertext"), ciphertext, "m{i}: ciphertext");
            let hmac_input = [&header[..], &state_hash, &keys.nonce, &ciphertext].concat();
            assert_eq!(bytes(m, "hmac_input"), hmac_input, "m{i}: HMAC input");
            let tag = hmac(&keys.mac, &[&hmac_input])
                .finalize()
                .into_bytes()
                .to_vec();
            assert_eq!(bytes(m, "hmac_tag"), tag, "m{i}: HMAC tag");
            let unsigned = [
                &header[..],
                &varint(ciphertext.len() as u64),
                &ciphertext,
                &tag,
            ]
            .concat();
            let signature_input = [LABEL_GROUP_SIGNATURE, &state_hash, &unsigned].concat();
            assert_eq!(bytes(m, "signature_input"), signature_input, "m{i}");
            let signature = sign(&b32(key, "signing_seed"), &signature_input);
            assert_eq!(bytes(m, "signature"), signature, "m{i}: signature");
            assert!(verifies(
                &b32(key, "signing_key"),
                &signature_input,
                &signature
            ));
            let envelope = [&unsigned[..], &signature].concat();
            assert_eq!(bytes(m, "envelope"), envelope, "m{i}: envelope");

            // Opened back from the envelope alone, by this parser.
            let env = parse_group_envelope(&envelope).unwrap();
            assert_eq!(
                (
                    env.group_id.to_vec(),
                    u64::from(env.epoch),
                    env.sender,
                    env.counter
                ),
                (self.group_id.clone(), epoch, sender_index, counter)
            );
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
    fn check_timeline_numbering(&self) {
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

// ---------------------------------------------------------------------------------------------
// Replay through the public API.

/// An RNG that hands out recorded bytes, and nothing more.
struct Script {
    bytes: Vec<u8>,
    pos: usize,
}

impl Script {
    fn new(bytes: Vec<u8>) -> Self {
        Script { bytes, pos: 0 }
    }
    fn next(&mut self, n: usize) -> &[u8] {
        let out = self
            .bytes
            .get(self.pos..self.pos + n)
            .expect("the API drew more than the vectors recorded");
        self.pos += n;
        out
    }
    fn finish(self) {
        assert_eq!(
            self.pos,
            self.bytes.len(),
            "the API drew less than the vectors recorded"
        );
    }
}

impl TryRng for Script {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.next(4).try_into().unwrap()))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.next(8).try_into().unwrap()))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.copy_from_slice(self.next(dst.len()));
        Ok(())
    }
}

impl TryCryptoRng for Script {}

/// The class of a public-API error, as the vectors name them.
fn error_class(error: &Error) -> &'static str {
    match error {
        Error::Malformed(_) => "malformed",
        Error::UnsupportedVersion(_) => "unsupported_version",
        Error::UnsupportedSuite(_) => "unsupported_suite",
        Error::TooLarge { .. } => "too_large",
        Error::DecryptFailed => "decrypt_failed",
        Error::Replay => "replay",
        Error::StaleMessage => "stale_message",
        Error::UnknownEpoch { .. } => "unknown_epoch",
        Error::TooFarAhead { .. } => "too_far_ahead",
        Error::UnexpectedKind(_) => "unexpected_kind",
        Error::InvalidSignature(_) => "invalid_signature",
        Error::WrongGroup => "wrong_group",
        Error::EpochAhead { .. } => "epoch_ahead",
        Error::MissingSenderKey { .. } => "missing_sender_key",
        Error::NotAMember(_) => "not_a_member",
        Error::NotAuthorized(_) => "not_authorized",
        Error::InvalidChange(_) => "invalid_change",
        Error::UnknownParent { .. } => "unknown_parent",
        Error::SenderKeyConflict => "sender_key_conflict",
        _ => "other",
    }
}

fn outcome_name(outcome: &ControlOutcome) -> &'static str {
    match outcome {
        ControlOutcome::EpochStarted { .. } => "epoch_started",
        ControlOutcome::ConflictResolved { .. } => "conflict_resolved",
        ControlOutcome::LostConflict { .. } => "lost_conflict",
        ControlOutcome::SenderKeyAdded { .. } => "sender_key_added",
        ControlOutcome::SenderKeyPending { .. } => "sender_key_pending",
        ControlOutcome::Duplicate => "duplicate",
        _ => "other",
    }
}

/// The parties' groups, driven through the public API.
struct Replay<'a> {
    v: &'a GroupVectors,
    config: GroupConfig,
    identities: BTreeMap<String, IdentityKeyPair>,
    groups: BTreeMap<String, Group>,
}

impl<'a> Replay<'a> {
    fn new(v: &'a GroupVectors) -> Self {
        let identities = v
            .parties
            .iter()
            .map(|(name, (seed, secret, identity))| {
                // An identity draws its signing seed, then its agreement secret.
                let mut rng = Script::new([&seed[..], secret].concat());
                let pair = IdentityKeyPair::generate(&mut rng);
                rng.finish();
                assert_eq!(pair.public().to_bytes().to_vec(), *identity);
                (name.clone(), pair)
            })
            .collect();
        Replay {
            v,
            config: v.config(),
            identities,
            groups: BTreeMap::new(),
        }
    }

    fn public(&self, name: &str) -> PublicIdentity {
        self.identities[name].public().clone()
    }

    fn name_of(&self, identity: &PublicIdentity) -> String {
        self.v.names[&identity.to_bytes().to_vec()].clone()
    }

    fn names(&self, identities: &[PublicIdentity]) -> Vec<String> {
        identities.iter().map(|i| self.name_of(i)).collect()
    }

    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.get_mut(name).unwrap()
    }

    /// Performs one timeline step and checks everything it returns.
    fn step(&mut self, step: &Value) {
        let i = num(step, "step");
        let party = text_of(step, "party");
        let now = Timestamp::from_unix_secs(num(step, "time"));
        let v = self.v;
        let index = |key| num(step, key) as usize;
        let result: String = match text_of(step, "action") {
            "create" => {
                let mut rng = Script::new(bytes(step, "drawn"));
                let group =
                    Group::create(&self.identities[party], self.config.clone(), &mut rng, now)
                        .unwrap();
                rng.finish();
                assert_eq!(
                    group.id().as_bytes()[..],
                    v.group_id[..],
                    "step {i}: group id"
                );
                self.groups.insert(party.to_owned(), group);
                "ok".into()
            }
            "commit" => {
                let c = &v.list("commits")[index("commit")];
                let changes: Vec<Change> = list(c, "changes")
                    .iter()
                    .map(|ch| {
                        let member = self.public(text_of(ch, "member"));
                        match text_of(ch, "kind") {
                            "add" => Change::Add(member, role_of(text_of(ch, "role"))),
                            "remove" => Change::Remove(member),
                            _ => Change::SetRole(member, role_of(text_of(ch, "role"))),
                        }
                    })
                    .collect();
                let identity = &self.identities[party];
                let group = self.groups.get_mut(party).unwrap();
                let out = group.commit(identity, &changes, now).unwrap();
                assert_eq!(u64::from(out.epoch), num(c, "epoch"));
                assert_eq!(out.commit, bytes(c, "control"), "step {i}: commit");
                assert_eq!(
                    self.names(&out.commit_recipients),
                    names_of(c, "recipients")
                );
                assert_eq!(
                    out.welcome.map(hex::encode),
                    c["welcome"].as_str().map(String::from)
                );
                assert_eq!(
                    self.names(&out.welcome_recipients),
                    names_of(c, "welcome_recipients")
                );
                let parsed = ControlMessage::parse(&bytes(c, "control")).unwrap();
                assert_eq!(parsed.kind(), ControlKind::Commit);
                assert_eq!(u64::from(parsed.epoch()), num(c, "epoch"));
                "ok".into()
            }
            "join" => {
                let c = &v.list("commits")[index("commit")];
                let welcome = bytes(c, "welcome");
                let parsed = ControlMessage::parse(&welcome).unwrap();
                assert_eq!(parsed.kind(), ControlKind::Welcome);
                assert_eq!(parsed.group_id().as_bytes()[..], v.group_id[..]);
                let from = self.public(text_of(step, "from"));
                assert_eq!(text_of(step, "from"), text_of(c, "committer"));
                match Group::join(
                    &self.public(party),
                    &from,
                    &welcome,
                    self.config.clone(),
                    now,
                ) {
                    Ok(group) => {
                        self.groups.insert(party.to_owned(), group);
                        "ok".into()
                    }
                    Err(e) => error_class(&e).into(),
                }
            }
            "receive_commit" | "receive_sender_key" => {
                let (control, owner, kind) = if text_of(step, "action") == "receive_commit" {
                    let c = &v.list("commits")[index("commit")];
                    (
                        bytes(c, "control"),
                        text_of(c, "committer"),
                        ControlKind::Commit,
                    )
                } else {
                    let k = &v.list("sender_keys")[index("sender_key")];
                    assert!(names_of(k, "recipients").iter().any(|r| r == party));
                    (
                        bytes(k, "control"),
                        text_of(k, "sender"),
                        ControlKind::SenderKey,
                    )
                };
                assert_eq!(text_of(step, "from"), owner);
                assert_eq!(ControlMessage::parse(&control).unwrap().kind(), kind);
                let from = self.public(owner);
                match self.group(party).receive(&from, &control, now) {
                    Ok(outcome) => {
                        if let ControlOutcome::SenderKeyAdded { sender, .. } = &outcome {
                            assert_eq!(self.name_of(sender), owner);
                        }
                        outcome_name(&outcome).into()
                    }
                    Err(e) => error_class(&e).into(),
                }
            }
            "seal" => {
                let m = &v.list("messages")[index("message")];
                let drawn = step
                    .get("drawn")
                    .map_or_else(Vec::new, |_| bytes(step, "drawn"));
                let mut rng = Script::new(drawn);
                let sealed = self
                    .group(party)
                    .seal(&bytes(m, "plaintext"), &mut rng, now)
                    .unwrap();
                rng.finish();
                assert_eq!(sealed.envelope, bytes(m, "envelope"), "step {i}: envelope");
                match (sealed.sender_key, step.get("sender_key")) {
                    (None, None) => {}
                    (Some(key), Some(k)) => {
                        let k = &v.list("sender_keys")[k.as_u64().unwrap() as usize];
                        assert_eq!(key.message.expose_secret(), bytes(k, "control"));
                        assert_eq!(self.names(&key.recipients), names_of(k, "recipients"));
                    }
                    _ => panic!("step {i}: a sender key where none is recorded, or none"),
                }
                "ok".into()
            }
            "open" => {
                let m = &v.list("messages")[index("message")];
                match self.group(party).open(&bytes(m, "envelope"), now) {
                    Ok(opened) => {
                        let o = &step["opened"];
                        assert_eq!(opened.plaintext, bytes(m, "plaintext"), "step {i}");
                        assert_eq!(opened.plaintext, bytes(o, "plaintext"), "step {i}");
                        assert_eq!(self.name_of(&opened.sender), text_of(m, "sender"));
                        assert_eq!(self.name_of(&opened.sender), text_of(o, "sender"));
                        assert_eq!(u64::from(opened.epoch), num(m, "epoch"));
                        assert_eq!(u64::from(opened.epoch), num(o, "epoch"));
                        "ok".into()
                    }
                    Err(e) => {
                        assert!(step.get("opened").is_none());
                        error_class(&e).into()
                    }
                }
            }
            other => panic!("unknown action {other}"),
        };
        assert_eq!(result, text_of(step, "result"), "step {i}: result");
        let group = &self.groups[party];
        let epoch = u64::from(group.epoch());
        assert_eq!(epoch, num(step, "epoch_after"), "step {i}: epoch");
        assert_eq!(
            group.is_member(),
            step["member_after"] == true,
            "step {i}: member"
        );
        assert_eq!(
            group.state_hash().to_vec(),
            bytes(step, "state_hash_after"),
            "step {i}"
        );
        assert_eq!(group.state_hash().to_vec(), v.state_hash(epoch), "step {i}");
        let members: Vec<(Vec<u8>, MemberRole)> = group
            .members()
            .iter()
            .map(|m| (m.identity().to_bytes().to_vec(), m.role()))
            .collect();
        let expected: Vec<(Vec<u8>, MemberRole)> = members_of(v.epoch(epoch))
            .into_iter()
            .map(|m| (m.identity, role_of(&m.role)))
            .collect();
        assert_eq!(members, expected, "step {i}: members");
    }
}

pub(crate) fn group_vectors() {
    let v = GroupVectors::load();
    v.check_epochs_and_commits();
    v.check_sender_keys();
    v.check_messages();
    v.check_timeline_numbering();

    let timeline = v.list("timeline");
    let mut replay = Replay::new(&v);
    for step in timeline {
        replay.step(step);
    }

    // The scenario has the properties it is meant to exercise.
    let epochs = v.list("epochs");
    assert!(
        epochs.iter().any(|e| list(e, "members").len() == 3),
        "three members"
    );
    let kinds: BTreeSet<&str> = v
        .list("commits")
        .iter()
        .flat_map(|c| list(c, "changes").iter().map(|ch| text_of(ch, "kind")))
        .collect();
    assert!(
        kinds.contains("add") && kinds.contains("remove"),
        "an add and a remove"
    );
    let roles: BTreeSet<&str> = v
        .list("messages")
        .iter()
        .map(|m| text_of(m, "sender_role"))
        .collect();
    assert_eq!(roles.len(), 2, "messages from an admin and from a member");
    let mut opened: BTreeMap<(String, u64), Vec<u64>> = BTreeMap::new();
    for s in timeline
        .iter()
        .filter(|s| s["action"] == "open" && s["result"] == "ok")
    {
        let m = &v.list("messages")[num(s, "message") as usize];
        opened
            .entry((text_of(s, "party").to_owned(), num(m, "sender_key")))
            .or_default()
            .push(num(m, "counter"));
    }
    assert!(
        opened.values().any(|c| c.windows(2).any(|w| w[0] > w[1])),
        "out-of-order delivery"
    );
    let results: BTreeSet<&str> = timeline.iter().map(|s| text_of(s, "result")).collect();
    for result in [
        "replay",
        "not_a_member",
        "epoch_ahead",
        "unknown_epoch",
        "missing_sender_key",
    ] {
        assert!(results.contains(result), "a delivery with result {result}");
    }
    let removed_reads = timeline.iter().any(|s| {
        s["member_after"] == false && s["action"] == "open" && s["result"] == "not_a_member"
    });
    assert!(removed_reads, "the removed member cannot read what follows");
}

// ---------------------------------------------------------------------------------------------
// Negative vectors.

/// The base a negative vector names: its bytes and the pairwise peer it normally comes from.
fn base_of(v: &GroupVectors, base: &Value) -> (Vec<u8>, Option<String>) {
    let index = num(base, "index") as usize;
    match text_of(base, "kind") {
        "message" => (bytes(&v.list("messages")[index], "envelope"), None),
        "commit" => {
            let c = &v.list("commits")[index];
            (
                bytes(c, "control"),
                Some(text_of(c, "committer").to_owned()),
            )
        }
        "welcome" => {
            let c = &v.list("commits")[index];
            (
                bytes(c, "welcome"),
                Some(text_of(c, "committer").to_owned()),
            )
        }
        "sender_key" => {
            let k = &v.list("sender_keys")[index];
            (bytes(k, "control"), Some(text_of(k, "sender").to_owned()))
        }
        other => panic!("unknown base kind {other}"),
    }
}

/// Region and field of byte `offset` of a control message (commit or sender key).
fn control_region(control: &[u8], offset: usize) -> (&'static str, Option<&'static str>) {
    if offset == 0 {
        return ("control", Some("version"));
    }
    assert_eq!(
        control[1], 0,
        "only commits are mutated past their version byte"
    );
    let mut pos = 2;
    let len = read_varint(control, &mut pos, u32::MAX.into(), true).unwrap() as usize;
    let commit = &control[pos..pos + len];
    let mut r = Reader::new(commit);
    r.take(16);
    r.u32();
    let parent = pos + r.pos;
    match offset {
        o if (pos..pos + 16).contains(&o) => ("commit", Some("group_id")),
        o if (parent..parent + 32).contains(&o) => ("commit", Some("parent_hash")),
        o if o >= pos + len => ("signature", None),
        _ => panic!("no named field at offset {offset}"),
    }
}

/// Re-derives an input built from scratch (forged envelope, crafted commit or sender key).
fn check_crafted(v: &GroupVectors, n: &Value, input: &[u8], name: &str) {
    if let Some(f) = n.get("forged_envelope") {
        let epoch = num(f, "epoch");
        let (forger, victim) = (text_of(f, "forger"), text_of(f, "impersonated"));
        assert_ne!(forger, victim);
        let sender_keys = v.list("sender_keys");
        let victim_key = sender_keys
            .iter()
            .find(|k| k["sender"] == victim && num(k, "epoch") == epoch)
            .unwrap();
        let forger_key = &sender_keys[num(f, "forger_sender_key") as usize];
        assert_eq!(
            (text_of(forger_key, "sender"), num(forger_key, "epoch")),
            (forger, epoch)
        );
        assert_eq!(
            f["forger_signing_seed"], forger_key["signing_seed"],
            "{name}"
        );
        // The forger steps the victim's chain, which it holds, to the counter it forges.
        let counter = num32(f, "counter");
        let mut chain = b32(victim_key, "chain_key");
        for _ in 0..counter {
            chain = chain_step(&chain).1;
        }
        assert_eq!(b32(f, "chain_key"), chain, "{name}: chain key");
        let (mk, _) = chain_step(&chain);
        assert_eq!(b32(f, "message_key"), mk, "{name}");
        let keys = group_message_keys(&mk);
        assert_eq!(
            (b32(f, "aes_key"), b32(f, "mac_key")),
            (keys.aes, keys.mac),
            "{name}"
        );
        assert_eq!(bytes(f, "nonce"), keys.nonce, "{name}");
        let state_hash = v.state_hash(epoch);
        assert_eq!(bytes(f, "state_hash"), state_hash);
        let sender_index = v.index_in(epoch, victim);
        assert_eq!(num32(f, "sender_index"), sender_index);
        let header = group_header(&v.group_id, num32(f, "epoch"), sender_index, counter);
        assert_eq!(bytes(f, "header"), header, "{name}: header");
        let plaintext = bytes(f, "plaintext");
        let mut padded = plaintext.clone();
        padded.push(0x80);
        padded.resize(pad_len(plaintext.len()), 0);
        let ciphertext = gcm_seal(
            &keys.aes,
            &keys.nonce,
            &[&header[..], &state_hash].concat(),
            &padded,
        );
        let hmac_input = [&header[..], &state_hash, &keys.nonce, &ciphertext].concat();
        assert_eq!(bytes(f, "hmac_input"), hmac_input, "{name}");
        let tag = hmac(&keys.mac, &[&hmac_input])
            .finalize()
            .into_bytes()
            .to_vec();
        assert_eq!(bytes(f, "hmac_tag"), tag, "{name}: a valid HMAC tag");
        let unsigned = [
            &header[..],
            &varint(ciphertext.len() as u64),
            &ciphertext,
            &tag,
        ]
        .concat();
        let signature_input = [LABEL_GROUP_SIGNATURE, &state_hash, &unsigned].concat();
        assert_eq!(bytes(f, "signature_input"), signature_input, "{name}");
        let signature = sign(&b32(f, "forger_signing_seed"), &signature_input);
        assert_eq!(bytes(f, "signature"), signature, "{name}");
        assert_eq!(input, [&unsigned[..], &signature].concat(), "{name}: input");
        assert!(verifies(
            &b32(forger_key, "signing_key"),
            &signature_input,
            &signature
        ));
        assert!(
            !verifies(
                &b32(victim_key, "signing_key"),
                &signature_input,
                &signature
            ),
            "{name}: the forgery must not verify under the impersonated member's key"
        );
    } else if let Some(c) = n.get("crafted_commit") {
        let signer = text_of(c, "signer");
        let epoch = num(c, "epoch");
        assert_eq!(
            epoch as usize,
            v.list("epochs").len(),
            "{name}: the next epoch"
        );
        assert_eq!(bytes(c, "parent_hash"), v.state_hash(epoch - 1), "{name}");
        let decoded = v.check_commit_fields(c, signer, name);
        let control = commit_control(&bytes(c, "commit_bytes"), &bytes(c, "signature"));
        assert_eq!(input, control, "{name}: input");
        // Whether the signer may commit this in the parent epoch.
        let parent = members_of(v.epoch(epoch - 1));
        let allowed = apply_changes(&parent, &decoded.committer, &decoded.changes, &v.names);
        assert!(
            allowed.is_none(),
            "{name}: the crafted commit must not be allowed"
        );
    } else if let Some(k) = n.get("crafted_sender_key") {
        let (owner, epoch) = (text_of(k, "owner"), num(k, "epoch"));
        assert_eq!(bytes(k, "state_hash"), v.state_hash(epoch));
        assert_eq!(
            ed25519_public(&b32(k, "signing_seed")),
            b32(k, "signing_key")
        );
        let control = sender_key_control(
            &v.group_id,
            num32(k, "epoch"),
            &bytes(k, "state_hash"),
            num32(k, "counter"),
            &bytes(k, "chain_key"),
            &bytes(k, "signing_key"),
        );
        assert_eq!(input, control, "{name}: input");
        let real = v
            .list("sender_keys")
            .iter()
            .find(|r| r["sender"] == owner && num(r, "epoch") == epoch)
            .unwrap();
        assert_ne!(
            real["signing_key"], k["signing_key"],
            "{name}: a different key"
        );
        assert_eq!(text_of(n, "from"), owner, "{name}: from its owner");
    } else {
        panic!("{name}: no crafted input recorded");
    }
}

/// Checks that the input is the base changed exactly as the mutation says.
fn check_mutation(v: &GroupVectors, n: &Value, base: &[u8], input: &[u8], name: &str) {
    let mutation = &n["mutation"];
    let kind = text_of(mutation, "kind");
    let offset = || num(mutation, "offset") as usize;
    let is_envelope = n["base"]["kind"] == "message";
    let region = |offset: usize| {
        if is_envelope {
            parse_group_envelope(base).unwrap().locate(offset)
        } else {
            control_region(base, offset)
        }
    };
    match kind {
        "none" => assert_eq!(input, base, "{name}"),
        "wrong_from" => assert_eq!(input, base, "{name}"),
        "flip_byte" | "set_byte" => {
            let mut expected = base.to_vec();
            if kind == "flip_byte" {
                expected[offset()] ^= num(mutation, "xor") as u8;
            } else {
                expected[offset()] = num(mutation, "value") as u8;
            }
            assert_eq!(input, expected, "{name}");
            let (r, f) = region(offset());
            assert_eq!(r, text_of(mutation, "region"), "{name}: region");
            assert_eq!(f, mutation["field"].as_str(), "{name}: field");
        }
        "truncate" => assert_eq!(input, &base[..num(mutation, "length") as usize], "{name}"),
        "append" => assert_eq!(input, [base, &bytes(mutation, "bytes")].concat(), "{name}"),
        "overlong_varint" => {
            let env = parse_group_envelope(base).unwrap();
            let field = text_of(mutation, "field");
            let (_, range) = env.fields.iter().find(|(f, _)| *f == field).unwrap();
            assert_eq!(range.start, offset(), "{name}");
            let replacement = bytes(mutation, "bytes");
            let (mut a, mut b) = (range.start, 0);
            let value = read_varint(base, &mut a, u64::MAX, true).unwrap();
            let same = read_varint(&replacement, &mut b, u64::MAX, false).unwrap();
            assert_eq!((same, b), (value, replacement.len()), "{name}: same value");
            assert!(replacement.len() > range.len(), "{name}: longer");
            let expected = [&base[..range.start], &replacement, &base[range.end..]].concat();
            assert_eq!(input, expected, "{name}");
        }
        "rewrite_field" => {
            let (b, i) = (
                parse_group_envelope(base).unwrap(),
                parse_group_envelope(input).unwrap(),
            );
            let value = num32(mutation, "value");
            let mut expected = (b.epoch, b.sender, b.counter);
            match text_of(mutation, "field") {
                "epoch" => expected.0 = value,
                "sender" => expected.1 = value,
                "counter" => expected.2 = value,
                other => panic!("{name}: unexpected field {other}"),
            }
            assert_ne!(expected, (b.epoch, b.sender, b.counter), "{name}: changed");
            assert_eq!((i.epoch, i.sender, i.counter), expected, "{name}");
            assert_eq!(input[..3], base[..3]);
            assert_eq!(i.group_id, b.group_id);
            assert_eq!(
                input[i.header.end..],
                base[b.header.end..],
                "{name}: the rest"
            );
        }
        "flip_byte_reauthenticate" | "reseal_bad_padding" => {
            let m = &v.list("messages")[num(&n["base"], "index") as usize];
            let keys = group_message_keys(&b32(m, "message_key"));
            let key = &v.list("sender_keys")[num(m, "sender_key") as usize];
            let state_hash = bytes(m, "state_hash");
            let env = parse_group_envelope(input).unwrap();
            let header = &input[env.header.clone()];
            assert_eq!(header, bytes(m, "header"), "{name}: header");
            let body = &input[env.ciphertext.clone()];
            let hmac_ok = hmac(&keys.mac, &[header, &state_hash, &keys.nonce, body])
                .verify_slice(&input[env.hmac_tag.clone()])
                .is_ok();
            assert!(hmac_ok, "{name}: the HMAC tag verifies");
            let signed = [
                LABEL_GROUP_SIGNATURE,
                &state_hash,
                &input[..env.signature.start],
            ]
            .concat();
            assert!(
                verifies(
                    &b32(key, "signing_key"),
                    &signed,
                    &input[env.signature.clone()]
                ),
                "{name}: the signature verifies"
            );
            let aad = [header, &state_hash].concat();
            let opened = gcm_open(&keys.aes, &keys.nonce, &aad, body);
            if kind == "reseal_bad_padding" {
                let padded = opened.expect("AES-GCM verifies");
                assert_eq!(padded, bytes(mutation, "bytes"), "{name}");
                assert_eq!(unpad(&padded), None, "{name}: the padding is invalid");
            } else {
                assert!(opened.is_none(), "{name}: AES-GCM fails");
                let mut expected = base[..env.hmac_tag.start].to_vec();
                expected[offset()] ^= num(mutation, "xor") as u8;
                assert_eq!(input[..env.hmac_tag.start], expected, "{name}");
                assert_eq!(region(offset()).0, text_of(mutation, "region"), "{name}");
            }
        }
        other => panic!("{name}: unknown mutation kind {other}"),
    }
}

/// Applies `input` to a copy of `group` (or joins as `receiver`); returns the error class (or
/// "ok") and the copy's state afterwards.
fn apply(
    replay: &Replay<'_>,
    group: Option<&Group>,
    receiver: &str,
    operation: &str,
    from: Option<&str>,
    input: &[u8],
    now: Timestamp,
) -> (&'static str, Option<Vec<u8>>) {
    let mut copy = group.map(|g| Group::from_bytes(g.to_bytes().expose_secret()).unwrap());
    let result = match (operation, copy.as_mut()) {
        ("open", Some(g)) => g.open(input, now).map(|_| ()),
        ("receive", Some(g)) => g
            .receive(&replay.public(from.unwrap()), input, now)
            .map(|_| ()),
        ("join", None) => {
            let (me, from) = (replay.public(receiver), replay.public(from.unwrap()));
            Group::join(&me, &from, input, replay.config.clone(), now).map(|_| ())
        }
        _ => panic!("{receiver}: {operation} with the wrong state"),
    };
    let state = copy.map(|g| g.to_bytes().expose_secret().to_vec());
    (result.as_ref().map_or_else(error_class, |()| "ok"), state)
}

pub(crate) fn group_negative_vectors() {
    let v = GroupVectors::load();
    let timeline = v.list("timeline");
    let vectors = v.list("negative");
    let mut names = BTreeSet::new();
    for n in vectors {
        let name = text_of(n, "name");
        assert!(names.insert(name), "duplicate vector {name}");
        assert!(!text_of(n, "description").is_empty());
        let receiver = text_of(n, "receiver");
        let after = num(n, "after_steps") as usize;
        assert!(after <= timeline.len());
        assert_eq!(num(n, "now"), v.step_time(after), "{name}: now");
        let now = Timestamp::from_unix_secs(num(n, "now"));
        let input = bytes(n, "input");

        // The receiver's state: its own steps of the timeline prefix, through the public API.
        let own: Vec<usize> = timeline[..after]
            .iter()
            .enumerate()
            .filter(|(_, s)| s["party"] == receiver)
            .map(|(i, _)| i)
            .collect();
        let listed: Vec<usize> = list(n, "receiver_steps")
            .iter()
            .map(|s| s.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(listed, own, "{name}: receiver_steps");
        let mut replay = Replay::new(&v);
        for &i in &own {
            replay.step(&timeline[i]);
        }
        let group = replay.groups.get(receiver);
        let operation = text_of(n, "operation");
        let from = n["from"].as_str();
        assert_eq!(from.is_none(), operation == "open", "{name}: from");

        // The input, from its base or from scratch.
        if n["base"].is_null() {
            assert!(n["base_accepted"].is_null());
            check_crafted(&v, n, &input, name);
        } else {
            let (base, real_from) = base_of(&v, &n["base"]);
            check_mutation(&v, n, &base, &input, name);
            if text_of(&n["mutation"], "kind") == "wrong_from" {
                assert_ne!(from, real_from.as_deref(), "{name}: another peer");
            }
            let (control, _) = apply(
                &replay,
                group,
                receiver,
                operation,
                real_from.as_deref(),
                &base,
                now,
            );
            assert_eq!(
                control == "ok",
                n["base_accepted"] == true,
                "{name}: base_accepted ({control})"
            );
        }

        // The receiver rejects it, and is left exactly as it was.
        let before = group.map(|g| g.to_bytes().expose_secret().to_vec());
        let (result, after_state) = apply(&replay, group, receiver, operation, from, &input, now);
        assert_eq!(result, text_of(n, "expected_error"), "{name}: error class");
        assert!(
            before == after_state,
            "{name}: the rejected input changed the group"
        );
    }
    for class in [
        "invalid_signature",
        "not_authorized",
        "not_a_member",
        "epoch_ahead",
        "unknown_epoch",
        "decrypt_failed",
        "malformed",
        "replay",
        "wrong_group",
        "unknown_parent",
        "missing_sender_key",
        "too_far_ahead",
    ] {
        assert!(
            vectors.iter().any(|n| n["expected_error"] == class),
            "no group negative vector for {class}"
        );
    }
    for kind in [
        "forged_envelope",
        "crafted_commit",
        "flip_byte",
        "none",
        "wrong_from",
    ] {
        assert!(
            vectors.iter().any(|n| n["mutation"]["kind"] == kind),
            "no group negative vector of kind {kind}"
        );
    }
}
