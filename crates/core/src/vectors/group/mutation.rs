//! How each negative input of group.json is built: located and mutated from its base (a
//! message, commit, welcome or sender key of the script), or crafted from scratch (`crafted`),
//! with the records that let a checker rebuild it.

use std::ops::Range;

use super::super::h;
use super::super::negative::MutationVector;
use super::crafted::{
    CraftedCommitVector, CraftedSenderKeyVector, ForgedVector, craft_commit, craft_sender_key,
    forge,
};
use super::negative::{Base, Mutation, Spec};
use super::scenario::Generated;
use super::script::Party;
use super::wire::{
    decode_signed_commit, decode_welcome, hmac_input, seal_raw, sign_envelope, varint_len,
};
use crate::group::message;
use crate::group::roster::WireChange;
use crate::kdf;

/// A negative input and its records.
#[derive(Default)]
pub(super) struct Built {
    pub(super) input: Vec<u8>,
    pub(super) mutation: MutationVector,
    pub(super) forged: Option<ForgedVector>,
    pub(super) commit: Option<CraftedCommitVector>,
    pub(super) sender_key: Option<CraftedSenderKeyVector>,
}

impl Built {
    fn plain(input: Vec<u8>, mutation: MutationVector) -> Self {
        Built {
            input,
            mutation,
            ..Built::default()
        }
    }

    /// A crafted input (or the base itself), with no mutation fields.
    pub(super) fn crafted(input: Vec<u8>, kind: &'static str) -> Self {
        Built::plain(
            input,
            MutationVector {
                kind,
                ..MutationVector::default()
            },
        )
    }
}

impl Generated {
    /// The bytes of a base and the pairwise peer it is normally delivered from.
    pub(super) fn base(&self, base: Base) -> Option<(Vec<u8>, Option<Party>)> {
        let runner = &self.runner;
        Some(match base {
            Base::Message(m) => (self.messages[m].envelope.clone(), None),
            Base::Commit(c) => (
                runner.commits[c].1.commit.clone(),
                Some(runner.commits[c].0),
            ),
            Base::Welcome(c) => {
                let (committer, out) = &runner.commits[c];
                (out.welcome.clone().expect("a welcome"), Some(*committer))
            }
            Base::SenderKey(k) => {
                let (owner, key) = &runner.sender_keys[k];
                (key.message.expose_secret().to_vec(), Some(*owner))
            }
            Base::None => return None,
        })
    }
}

/// A located field: its region, its field name (if the region has named fields) and its bytes.
type Located = (&'static str, Option<&'static str>, Range<usize>);

/// The field `field` of a group envelope.
fn envelope_field(envelope: &[u8], field: &str) -> Located {
    let parsed = message::parse(envelope).unwrap();
    let header = &parsed.header;
    let header_len = parsed.header_bytes.len();
    let epoch_end = 19 + varint_len(header.epoch.into());
    let branch_end = epoch_end + header.branch.len();
    let sender_end = branch_end + varint_len(header.sender.into());
    assert_eq!(sender_end + varint_len(header.counter.into()), header_len);
    let ciphertext_start = header_len + varint_len(parsed.ciphertext.len() as u64);
    let signature = envelope.len() - 64;
    let hmac = signature - 32;
    let gcm = hmac - 16;
    let header_fields: [(&'static str, Range<usize>); 8] = [
        ("version", 0..1),
        ("suite", 1..2),
        ("kind", 2..3),
        ("group_id", 3..19),
        ("epoch", 19..epoch_end),
        ("branch", epoch_end..branch_end),
        ("sender", branch_end..sender_end),
        ("counter", sender_end..header_len),
    ];
    assert_eq!(envelope[epoch_end..branch_end], header.branch);
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

/// The field `field` of a commit control message.
fn commit_field(control: &[u8], field: &str) -> Located {
    let signed = decode_signed_commit(control);
    let commit = signed.decode().unwrap();
    let start = 2 + varint_len(signed.commit.len() as u64);
    let parent = start + 16 + varint_len(commit.epoch.into());
    let end = start + signed.commit.len();
    assert_eq!(end + 64, control.len());
    let (name, range, value): (_, _, &[u8]) = match field {
        "group_id" => ("group_id", start..start + 16, &commit.group_id),
        "parent_hash" => ("parent_hash", parent..parent + 32, &commit.parent_hash),
        "signature" => return ("signature", None, end..control.len()),
        _ => panic!("no commit field {field}"),
    };
    assert_eq!(control[range.clone()], *value);
    ("commit", Some(name), range)
}

/// The field `field` (`role`, `since_epoch` or `since_index`) of member `member` in the
/// summary of a welcome: `01 ‖ 01 ‖ varint(epoch) ‖ P ‖ H ‖ varint(n) ‖ (identity ‖ role ‖
/// varint(since.epoch) ‖ varint(since.index))*`.
fn summary_field(welcome: &[u8], member: usize, field: &str) -> Located {
    let (summary, _) = decode_welcome(welcome);
    let count = summary.members.len() as u64;
    let mut start = 2 + varint_len(summary.epoch.into()) + 64 + varint_len(count);
    for m in &summary.members[..member] {
        start += 128 + 1 + varint_len(m.since.epoch.into()) + varint_len(m.since.index.into());
    }
    let m = &summary.members[member];
    assert_eq!(welcome[start..start + 128], m.identity);
    let role = start + 128;
    let since_epoch = role + 1;
    let since_index = since_epoch + varint_len(m.since.epoch.into());
    let (name, range) = match field {
        "role" => ("role", role..role + 1),
        "since_epoch" => ("since_epoch", since_epoch..since_index),
        "since_index" => (
            "since_index",
            since_index..since_index + varint_len(m.since.index.into()),
        ),
        _ => panic!("no summary member field {field}"),
    };
    ("summary", Some(name), range)
}

fn locate(base: Base, bytes: &[u8], field: &str) -> Located {
    match (base, field) {
        (Base::Message(_), _) => envelope_field(bytes, field),
        (Base::Commit(_), _) => commit_field(bytes, field),
        (Base::SenderKey(_) | Base::Welcome(_), "version") => ("control", Some("version"), 0..1),
        _ => panic!("no field {field} in this base"),
    }
}

/// `base` with byte `offset` XORed with 1.
fn flip(base: Vec<u8>, (region, field, range): Located, n: usize) -> Built {
    assert!(n < range.len());
    let offset = range.start + n;
    let mut input = base;
    input[offset] ^= 1;
    Built::plain(
        input,
        MutationVector {
            kind: "flip_byte",
            region: Some(region),
            field,
            offset: Some(offset),
            xor: Some(1),
            ..MutationVector::default()
        },
    )
}

fn truncate(base: &[u8], length: usize) -> Built {
    Built::plain(
        base[..length].to_vec(),
        MutationVector {
            kind: "truncate",
            length: Some(length),
            ..MutationVector::default()
        },
    )
}

pub(super) fn build(spec: &Spec, generated: &Generated) -> Built {
    let base = generated.base(spec.base).map(|(bytes, _)| bytes);
    let base = || base.clone().expect("the mutation needs a base");
    match spec.mutation {
        Mutation::Unchanged => Built::crafted(base(), "none"),
        Mutation::WrongFrom => Built::crafted(base(), "wrong_from"),
        Mutation::Flip(field, n) => {
            let base = base();
            let located = locate(spec.base, &base, field);
            flip(base, located, n)
        }
        Mutation::FlipSummary { member, field } => {
            let base = base();
            let located = summary_field(&base, member, field);
            flip(base, located, 0)
        }
        Mutation::SetByte(field, value) => {
            let base = base();
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
            let base = base();
            truncate(&base, base.len() - n)
        }
        Mutation::KeepFirst(n) => truncate(&base(), n),
        Mutation::Append(bytes) => Built::plain(
            [base().as_slice(), bytes].concat(),
            MutationVector {
                kind: "append",
                bytes: Some(h(bytes)),
                ..MutationVector::default()
            },
        ),
        Mutation::Overlong(field) => overlong(&base(), field),
        Mutation::Rewrite(field, value) => rewrite(&base(), field, value),
        Mutation::ResealFlippedCiphertext(n) => reseal_flipped(spec.base, generated, n),
        Mutation::ResealBadPadding => reseal_bad_padding(spec.base, generated),
        Mutation::Forge {
            forger,
            impersonated,
            epoch,
            counter,
        } => forge(generated, forger, impersonated, epoch, counter),
        Mutation::CraftCommit {
            signer,
            epoch,
            changes,
        } => {
            let changes = changes
                .iter()
                .map(|op| WireChange::from_change(&op.change()));
            craft_commit(generated, signer, epoch, changes.collect())
        }
        Mutation::CraftSenderKey {
            owner,
            epoch,
            signing,
        } => craft_sender_key(generated, owner, epoch, signing),
    }
}

/// The header varint `field` encoded with a redundant trailing zero group.
fn overlong(base: &[u8], field: &str) -> Built {
    let (region, field, range) = envelope_field(base, field);
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

/// The header with `field` set to `value`, re-encoded canonically.
fn rewrite(base: &[u8], field: &'static str, value: u32) -> Built {
    let parsed = message::parse(base).unwrap();
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

/// One ciphertext bit flipped, then the HMAC tag and the signature recomputed.
fn reseal_flipped(base: Base, generated: &Generated, n: usize) -> Built {
    let Base::Message(m) = base else {
        panic!("reseal needs a message")
    };
    let sealed = &generated.messages[m];
    let state_hash = generated.epochs[&sealed.epoch].state_hash;
    let (_, _, ciphertext) = envelope_field(&sealed.envelope, "ciphertext");
    let (_, _, hmac_tag) = envelope_field(&sealed.envelope, "hmac_tag");
    let offset = ciphertext.start + n;
    let mut input = sealed.envelope[..hmac_tag.start].to_vec();
    input[offset] ^= 1;
    let header_len = message::parse(&sealed.envelope).unwrap().header_bytes.len();
    // The ciphertext (with its GCM tag) sits between the length prefix and the HMAC tag.
    let body = &input[ciphertext.start..hmac_tag.start];
    let mac = kdf::hmac(
        &sealed.keys.mac_key,
        &[&hmac_input(
            &input[..header_len],
            &state_hash,
            &sealed.keys,
            body,
        )],
    );
    input.extend_from_slice(&mac);
    Built::plain(
        sign_envelope(input, &state_hash, &sealed.signing_seed),
        MutationVector {
            kind: "flip_byte_reauthenticate",
            region: Some("ciphertext"),
            offset: Some(offset),
            xor: Some(1),
            ..MutationVector::default()
        },
    )
}

/// 32 zero bytes sealed under the base message's header and keys.
fn reseal_bad_padding(base: Base, generated: &Generated) -> Built {
    let Base::Message(m) = base else {
        panic!("reseal needs a message")
    };
    let sealed = &generated.messages[m];
    let state_hash = generated.epochs[&sealed.epoch].state_hash;
    let parsed = message::parse(&sealed.envelope).unwrap();
    let zeros = [0u8; 32];
    let input = seal_raw(
        parsed.header_bytes,
        &sealed.keys,
        &state_hash,
        &sealed.signing_seed,
        &zeros,
    );
    Built::plain(
        input,
        MutationVector {
            kind: "reseal_bad_padding",
            bytes: Some(h(&zeros)),
            ..MutationVector::default()
        },
    )
}
