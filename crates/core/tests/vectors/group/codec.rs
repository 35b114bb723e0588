//! The group wire formats (groups.md 4.1, 8.1), written from the spec: commit, welcome and
//! sender-key control messages, the group envelope header, a strict parser of group envelopes
//! and sealing under given keys.

use std::ops::Range;

use hmac::Mac;

use super::model::Member;
use super::sign;
use crate::LABEL_GROUP_SIGNATURE;
use crate::codec::{read_varint, varint};
use crate::primitives::{Keys, gcm_seal, hmac, pad_len};

/// Length of the branch tag of a group envelope header.
const BRANCH_LEN: usize = 4;

/// A strict reader of postcard fields.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        out
    }
    pub(super) fn byte(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub(super) fn varint(&mut self) -> u64 {
        read_varint(self.bytes, &mut self.pos, u32::MAX.into(), true).expect("a canonical varint")
    }
    pub(super) fn u32(&mut self) -> u32 {
        u32::try_from(self.varint()).unwrap()
    }
    pub(super) fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().unwrap()
    }
    pub(super) fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// A change as the commit encodes it: `varint(variant) ‖ fields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum WireChange {
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

pub(super) struct DecodedCommit {
    pub(super) group_id: [u8; 16],
    pub(super) epoch: u32,
    pub(super) parent_hash: [u8; 32],
    pub(super) committer: [u8; 32],
    pub(super) changes: Vec<WireChange>,
}

pub(super) fn encode_commit(c: &DecodedCommit) -> Vec<u8> {
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

pub(super) fn decode_commit(bytes: &[u8]) -> DecodedCommit {
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
pub(super) fn commit_control(commit: &[u8], signature: &[u8]) -> Vec<u8> {
    [&[1, 0][..], &varint(commit.len() as u64), commit, signature].concat()
}

/// The public description of an epoch in a welcome.
pub(super) struct Summary<'a> {
    pub(super) epoch: u32,
    pub(super) parent_hash: &'a [u8],
    pub(super) commit_hash: &'a [u8],
    pub(super) members: &'a [Member],
}

/// `version 1 ‖ kind 1 ‖ summary ‖ varint(len) ‖ commit ‖ signature`, where the summary is
/// `varint(epoch) ‖ P ‖ H ‖ varint(n) ‖ (identity ‖ role ‖ varint(since.epoch) ‖
/// varint(since.index))*`.
pub(super) fn welcome_control(parent: &Summary<'_>, commit: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = vec![1, 1];
    out.extend(varint(parent.epoch.into()));
    out.extend_from_slice(parent.parent_hash);
    out.extend_from_slice(parent.commit_hash);
    out.extend(varint(parent.members.len() as u64));
    for m in parent.members {
        out.extend_from_slice(&m.identity);
        out.push(m.role);
        out.extend(varint(m.since.0.into()));
        out.extend(varint(m.since.1.into()));
    }
    out.extend(varint(commit.len() as u64));
    out.extend_from_slice(commit);
    out.extend_from_slice(signature);
    out
}

/// The fields of a sender key.
pub(super) struct SenderKey<'a> {
    pub(super) group_id: &'a [u8],
    pub(super) epoch: u32,
    pub(super) state_hash: &'a [u8],
    pub(super) counter: u32,
    pub(super) chain_key: &'a [u8],
    pub(super) signing_key: &'a [u8],
}

/// `version 1 ‖ kind 2 ‖ group id ‖ varint(epoch) ‖ S ‖ varint(counter) ‖ CK ‖ signing key`.
pub(super) fn sender_key_control(k: &SenderKey<'_>) -> Vec<u8> {
    [
        &[1, 2][..],
        k.group_id,
        &varint(k.epoch.into()),
        k.state_hash,
        &varint(k.counter.into()),
        k.chain_key,
        k.signing_key,
    ]
    .concat()
}

/// The group envelope header: `1 ‖ 1 ‖ 2 ‖ group id ‖ varint(epoch) ‖ branch ‖ varint(sender)
/// ‖ varint(counter)`, where the branch tag is `S[0..4]`, the first four bytes of the epoch's
/// state hash.
pub(super) fn group_header(
    group_id: &[u8],
    epoch: u32,
    state_hash: &[u8],
    sender: u32,
    counter: u32,
) -> Vec<u8> {
    [
        &[1, 1, 2][..],
        group_id,
        &varint(epoch.into()),
        &state_hash[..BRANCH_LEN],
        &varint(sender.into()),
        &varint(counter.into()),
    ]
    .concat()
}

/// A group envelope sealed from its parts, with every intermediate value.
pub(super) struct Sealed {
    pub(super) ciphertext: Vec<u8>,
    pub(super) hmac_input: Vec<u8>,
    pub(super) hmac_tag: Vec<u8>,
    pub(super) signature_input: Vec<u8>,
    pub(super) signature: [u8; 64],
    pub(super) envelope: Vec<u8>,
}

/// Pads `plaintext`, encrypts it with `AAD = header ‖ S`, computes the HMAC tag and signs
/// `LABEL ‖ S ‖ header ‖ varint(len) ‖ ciphertext ‖ tag` with `signing_seed` (groups.md 8.1).
pub(super) fn seal(
    header: &[u8],
    keys: &Keys,
    state_hash: &[u8],
    signing_seed: &[u8; 32],
    plaintext: &[u8],
) -> Sealed {
    let mut padded = plaintext.to_vec();
    padded.push(0x80);
    padded.resize(pad_len(plaintext.len()), 0);
    let aad = [header, state_hash].concat();
    let ciphertext = gcm_seal(&keys.aes, &keys.nonce, &aad, &padded);
    let hmac_input = [header, state_hash, &keys.nonce, &ciphertext].concat();
    let hmac_tag = hmac(&keys.mac, &[&hmac_input])
        .finalize()
        .into_bytes()
        .to_vec();
    let unsigned = [
        header,
        &varint(ciphertext.len() as u64),
        &ciphertext,
        &hmac_tag,
    ]
    .concat();
    let signature_input = [LABEL_GROUP_SIGNATURE, state_hash, &unsigned].concat();
    let signature = sign(signing_seed, &signature_input);
    let envelope = [&unsigned[..], &signature].concat();
    Sealed {
        ciphertext,
        hmac_input,
        hmac_tag,
        signature_input,
        signature,
        envelope,
    }
}

/// A group envelope split by this checker's own parser.
pub(super) struct GroupEnvelope {
    pub(super) group_id: [u8; 16],
    pub(super) epoch: u32,
    pub(super) branch: [u8; BRANCH_LEN],
    pub(super) sender: u32,
    pub(super) counter: u32,
    pub(super) header: Range<usize>,
    pub(super) ciphertext: Range<usize>,
    pub(super) hmac_tag: Range<usize>,
    pub(super) signature: Range<usize>,
    /// Byte ranges of the header fields.
    pub(super) fields: Vec<(&'static str, Range<usize>)>,
}

pub(super) fn parse_group_envelope(bytes: &[u8]) -> Option<GroupEnvelope> {
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
    let branch_range = pos..pos + BRANCH_LEN;
    let branch = bytes.get(branch_range.clone())?.try_into().ok()?;
    pos = branch_range.end;
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
        branch,
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
            ("branch", branch_range),
            ("sender", sender_range),
            ("counter", counter_range),
        ],
    })
}

impl GroupEnvelope {
    /// The region (and header field) holding byte `offset`.
    pub(super) fn locate(&self, offset: usize) -> (&'static str, Option<&'static str>) {
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

/// Region and field of byte `offset` of a control message: its version byte, a field of a
/// commit (group id, parent hash, signature) or of a welcome summary's member (role,
/// seniority).
pub(super) fn control_region(
    control: &[u8],
    offset: usize,
) -> (&'static str, Option<&'static str>) {
    if offset == 0 {
        return ("control", Some("version"));
    }
    let mut r = Reader::new(control);
    r.take(1);
    match r.varint() {
        0 => commit_region(control, r.pos, offset),
        1 => summary_region(r, offset),
        kind => panic!("no named field at offset {offset} of a control message of kind {kind}"),
    }
}

fn commit_region(
    control: &[u8],
    start: usize,
    offset: usize,
) -> (&'static str, Option<&'static str>) {
    let mut pos = start;
    let len = read_varint(control, &mut pos, u32::MAX.into(), true).unwrap() as usize;
    let mut r = Reader::new(&control[pos..pos + len]);
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

fn summary_region(mut r: Reader<'_>, offset: usize) -> (&'static str, Option<&'static str>) {
    r.u32();
    r.take(64);
    for _ in 0..r.varint() {
        r.take(128);
        let fields = ["role", "since_epoch", "since_index"];
        for field in fields {
            let start = r.pos;
            r.varint();
            if (start..r.pos).contains(&offset) {
                return ("summary", Some(field));
            }
        }
    }
    panic!("no named field at offset {offset} of the summary")
}
