//! The negative vectors of `group.json`: each input rebuilt from its base and mutation (or
//! from scratch, re-derived from the primitives), the base checked at the same position, and
//! the input rejected with the expected class by the receiver's group, rebuilt through the
//! public API from its own steps, without changing its state.

use std::collections::BTreeSet;

use ed25519_dalek::VerifyingKey;
use hmac::Mac;
use sealwire_core::{Group, Timestamp};
use serde_json::Value;

use super::codec::{
    SenderKey, commit_control, control_region, group_header, parse_group_envelope, seal,
    sender_key_control,
};
use super::file::{GroupVectors, step_chain};
use super::model::{apply_changes, members_of};
use super::replay::{Replay, error_class};
use super::{ed25519_public, group_message_keys, verifies};
use crate::LABEL_GROUP_SIGNATURE;
use crate::codec::read_varint;
use crate::json::{b32, bytes, list, num, num32, text_of};
use crate::primitives::{chain_step, gcm_open, hmac, unpad};

/// The base a negative vector names: its bytes and the pairwise peer it normally comes from.
fn base_of(v: &GroupVectors, base: &Value) -> (Vec<u8>, Option<String>) {
    let index = num(base, "index") as usize;
    let (record, bytes_key, from_key) = match text_of(base, "kind") {
        "message" => return (bytes(&v.list("messages")[index], "envelope"), None),
        "commit" => (&v.list("commits")[index], "control", "committer"),
        "welcome" => (&v.list("commits")[index], "welcome", "committer"),
        "sender_key" => (&v.list("sender_keys")[index], "control", "sender"),
        other => panic!("unknown base kind {other}"),
    };
    (
        bytes(record, bytes_key),
        Some(text_of(record, from_key).to_owned()),
    )
}

/// The forged-sender envelope: the forger steps the impersonated member's chain, which it
/// holds, to the counter it forges, seals a valid HMAC tag, and signs with its own key.
fn check_forged(v: &GroupVectors, f: &Value, input: &[u8], name: &str) {
    let epoch = num(f, "epoch");
    let (forger, victim) = (text_of(f, "forger"), text_of(f, "impersonated"));
    assert_ne!(forger, victim);
    let victim_key = v.sender_key_of(victim, epoch).unwrap();
    let forger_key = &v.list("sender_keys")[num(f, "forger_sender_key") as usize];
    assert_eq!(
        (text_of(forger_key, "sender"), num(forger_key, "epoch")),
        (forger, epoch)
    );
    assert_eq!(
        f["forger_signing_seed"], forger_key["signing_seed"],
        "{name}"
    );
    let counter = num32(f, "counter");
    let chain = step_chain(b32(victim_key, "chain_key"), counter);
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
    let sender_index = v.member_in(epoch, victim).0;
    assert_eq!(num32(f, "sender_index"), sender_index);
    let epoch32 = num32(f, "epoch");
    let header = group_header(&v.group_id, epoch32, &state_hash, sender_index, counter);
    assert_eq!(bytes(f, "header"), header, "{name}: header");
    let seed = b32(f, "forger_signing_seed");
    let sealed = seal(&header, &keys, &state_hash, &seed, &bytes(f, "plaintext"));
    assert_eq!(bytes(f, "hmac_input"), sealed.hmac_input, "{name}");
    assert_eq!(
        bytes(f, "hmac_tag"),
        sealed.hmac_tag,
        "{name}: a valid HMAC tag"
    );
    assert_eq!(
        bytes(f, "signature_input"),
        sealed.signature_input,
        "{name}"
    );
    assert_eq!(bytes(f, "signature"), sealed.signature, "{name}");
    assert_eq!(input, sealed.envelope, "{name}: input");
    let verifies_under = |key: &Value| {
        verifies(
            &b32(key, "signing_key"),
            &sealed.signature_input,
            &sealed.signature,
        )
    };
    assert!(verifies_under(forger_key));
    assert!(
        !verifies_under(victim_key),
        "{name}: the forgery must not verify under the impersonated member's key"
    );
}

/// A crafted commit: its fields, and the class the roster model predicts for it.
fn check_crafted_commit(v: &GroupVectors, n: &Value, input: &[u8], name: &str) {
    let c = &n["crafted_commit"];
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
    let applied = apply_changes(
        &parent,
        &decoded.committer,
        &decoded.changes,
        decoded.epoch,
        &v.names,
    );
    assert_eq!(
        applied.err(),
        Some(text_of(n, "expected_error")),
        "{name}: the roster model's class"
    );
}

/// A crafted sender key: its fields, its signing key (from its seed, or of small order), and
/// how it differs from the owner's real sender key of that epoch, if there is one.
fn check_crafted_sender_key(v: &GroupVectors, n: &Value, input: &[u8], name: &str) {
    let k = &n["crafted_sender_key"];
    let (owner, epoch) = (text_of(k, "owner"), num(k, "epoch"));
    assert_eq!(text_of(n, "from"), owner, "{name}: from its owner");
    let known = epoch < v.list("epochs").len() as u64;
    let state_hash = if known {
        v.state_hash(epoch)
    } else {
        vec![0; 32]
    };
    assert_eq!(bytes(k, "state_hash"), state_hash, "{name}: state hash");
    let signing_key = b32(k, "signing_key");
    match k["signing_seed"].as_str() {
        Some(_) => assert_eq!(ed25519_public(&b32(k, "signing_seed")), signing_key),
        None => assert!(
            VerifyingKey::from_bytes(&signing_key).unwrap().is_weak(),
            "{name}: a signing key without a seed must be of small order"
        ),
    }
    let fields = SenderKey {
        group_id: &v.group_id,
        epoch: num32(k, "epoch"),
        state_hash: &state_hash,
        counter: num32(k, "counter"),
        chain_key: &bytes(k, "chain_key"),
        signing_key: &signing_key,
    };
    assert_eq!(input, sender_key_control(&fields), "{name}: input");
    if let Some(real) = v.sender_key_of(owner, epoch) {
        assert_ne!(
            real["signing_key"], k["signing_key"],
            "{name}: a different key"
        );
    }
}

/// Re-derives an input built from scratch (forged envelope, crafted commit or sender key).
fn check_crafted(v: &GroupVectors, n: &Value, input: &[u8], name: &str) {
    if let Some(f) = n.get("forged_envelope") {
        check_forged(v, f, input, name);
    } else if n.get("crafted_commit").is_some() {
        check_crafted_commit(v, n, input, name);
    } else if n.get("crafted_sender_key").is_some() {
        check_crafted_sender_key(v, n, input, name);
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
            assert_eq!((i.group_id, i.branch), (b.group_id, b.branch), "{name}");
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
        "other_branch",
        "unexpected_kind",
        "unsupported_version",
        "unsupported_suite",
        "invalid_change",
        "sender_key_conflict",
    ] {
        assert!(
            vectors.iter().any(|n| n["expected_error"] == class),
            "no group negative vector for {class}"
        );
    }
    for kind in [
        "forged_envelope",
        "crafted_commit",
        "crafted_sender_key",
        "flip_byte",
        "truncate",
        "none",
        "wrong_from",
    ] {
        assert!(
            vectors.iter().any(|n| n["mutation"]["kind"] == kind),
            "no group negative vector of kind {kind}"
        );
    }
}
