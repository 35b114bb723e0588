//! `negative.json`: each vector is the conversation's base message changed as described, and
//! the model receiver predicts its error class.

use std::collections::BTreeSet;

use crate::codec::{
    check_public_header, decode_header, gcm_open_envelope, header_fields, hmac_valid, open,
    parse_envelope, read_varint,
};
use crate::conversation::Conversation;
use crate::json::{bytes, list, load, num, num32, text_of};
use crate::model::receive;
use crate::primitives::{keys_of, unpad};

pub(crate) fn negative_vectors() {
    let file = load("negative.json");
    assert_eq!(text_of(&file, "conversation"), "conversation.json");
    let conversation = Conversation::load();
    let ad = &conversation.session.ad;
    let messages = conversation.messages();
    let vectors = list(&file, "vectors");
    let mut names = BTreeSet::new();
    let mut mutation_kinds = BTreeSet::new();
    for v in vectors {
        let name = text_of(v, "name");
        assert!(names.insert(name), "duplicate vector {name}");
        let who = conversation.who(text_of(v, "receiver"));
        let steps = num(v, "after_steps") as usize;
        let parties = conversation.run(steps);
        let party = &parties[&who];
        let delivered: Vec<usize> = list(v, "delivered_before")
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(delivered, party.delivered, "{name}: delivered_before");
        let now = num(v, "now");
        let next_time = num(&conversation.timeline()[steps], "time");

        let base_index = num(v, "base_message") as usize;
        let base_msg = &messages[base_index];
        let base = bytes(base_msg, "envelope");
        let base_env = parse_envelope(&base).unwrap();
        let keys = keys_of(base_msg);
        let envelope = bytes(v, "envelope");
        let mutation = &v["mutation"];
        let kind = text_of(mutation, "kind");
        mutation_kinds.insert(kind);
        let offset = || num(mutation, "offset") as usize;
        let in_region = |offset: usize| -> &str {
            let gcm_tag = base.len() - 48;
            let ciphertext_start = base_env.ciphertext_start;
            match offset {
                o if o < base_env.header_bytes.len() => "header",
                o if o < ciphertext_start => "ciphertext_length",
                o if o < gcm_tag => "ciphertext",
                o if o < base.len() - 32 => "gcm_tag",
                _ => "hmac_tag",
            }
        };

        // The envelope is the base message changed exactly as described.
        match kind {
            "none" => assert_eq!(envelope, base, "{name}"),
            "flip_byte" | "flip_byte_recompute_hmac" => {
                let mut expected = base.clone();
                expected[offset()] ^= num(mutation, "xor") as u8;
                assert_eq!(in_region(offset()), text_of(mutation, "region"), "{name}");
                if let Some(field) = mutation["field"].as_str() {
                    let (_, range) = header_fields(&base_env.header)
                        .into_iter()
                        .find(|(f, _)| *f == field)
                        .unwrap();
                    assert!(range.contains(&offset()), "{name}: offset in {field}");
                }
                if kind == "flip_byte" {
                    assert_eq!(envelope, expected, "{name}");
                } else {
                    let split = base.len() - 32;
                    assert_eq!(envelope[..split], expected[..split], "{name}");
                    let env = parse_envelope(&envelope).unwrap();
                    assert!(hmac_valid(&env, &keys, ad), "{name}: HMAC recomputed");
                    assert!(gcm_open_envelope(&env, &keys, ad).is_none());
                }
            }
            "truncate" => assert_eq!(envelope, base[..num(mutation, "length") as usize], "{name}"),
            "append" => assert_eq!(envelope, [base.clone(), bytes(mutation, "bytes")].concat()),
            "set_byte" => {
                let mut expected = base.clone();
                expected[offset()] = num(mutation, "value") as u8;
                assert_eq!(envelope, expected, "{name}");
            }
            "overlong_varint" => {
                assert_eq!(in_region(offset()), text_of(mutation, "region"), "{name}");
                if let Some(field) = mutation["field"].as_str() {
                    let fields = header_fields(&base_env.header);
                    let (_, range) = fields.iter().find(|(f, _)| *f == field).unwrap();
                    assert_eq!(range.start, offset(), "{name}: offset of {field}");
                }
                let mut pos = offset();
                let value = read_varint(&base, &mut pos, u64::MAX, true).unwrap();
                let replacement = bytes(mutation, "bytes");
                let mut rpos = 0;
                let same = read_varint(&replacement, &mut rpos, u64::MAX, false).unwrap();
                assert_eq!(
                    (same, rpos),
                    (value, replacement.len()),
                    "{name}: same value"
                );
                assert!(
                    replacement.len() > pos - offset(),
                    "{name}: longer than canonical"
                );
                let expected = [&base[..offset()], &replacement, &base[pos..]].concat();
                assert_eq!(envelope, expected, "{name}");
            }
            "rewrite_field" => {
                assert_eq!(text_of(mutation, "region"), "header", "{name}");
                let (header, len) = decode_header(&envelope).unwrap();
                let mut expected = base_env.header.clone();
                let value = num32(mutation, "value");
                match text_of(mutation, "field") {
                    "epoch" => expected.epoch = value,
                    "parent" => expected.parent = value,
                    "counter" => expected.counter = value,
                    other => panic!("{name}: unexpected field {other}"),
                }
                assert_ne!(expected, base_env.header, "{name}: the field changed");
                assert_eq!(header, expected, "{name}");
                assert_eq!(
                    envelope[len..],
                    base[base_env.header_bytes.len()..],
                    "{name}"
                );
            }
            "reseal_bad_padding" => {
                let env = parse_envelope(&envelope).unwrap();
                assert_eq!(env.header_bytes, base_env.header_bytes, "{name}");
                assert!(hmac_valid(&env, &keys, ad), "{name}: HMAC valid");
                let padded = gcm_open_envelope(&env, &keys, ad).unwrap();
                assert_eq!(padded, bytes(mutation, "bytes"), "{name}");
                assert_eq!(unpad(&padded), None, "{name}: padding invalid");
            }
            other => panic!("{name}: unknown mutation kind {other}"),
        }

        // Any change to an envelope fails authentication under the base message's keys.
        if envelope != base
            && kind != "reseal_bad_padding"
            && kind != "flip_byte_recompute_hmac"
            && let Ok(env) = parse_envelope(&envelope)
        {
            assert_eq!(open(&env, &keys, ad), Err("decrypt_failed"), "{name}");
        }

        // The model receiver reaches the same verdict, and the base message behaves as stated.
        let expected = text_of(v, "expected_error");
        let predicted = receive(&conversation.session, party, &envelope, now).map(|_| ());
        assert_eq!(predicted, Err(expected), "{name}: predicted error class");
        if now != next_time {
            // A vector about time sits exactly on its boundary: a second earlier, it opens.
            assert!(now > next_time, "{name}: now");
            let earlier = receive(&conversation.session, party, &envelope, now - 1);
            assert!(earlier.is_ok(), "{name}: one second before now it opens");
        }
        let base_result = receive(&conversation.session, party, &base, next_time).map(|_| ());
        assert_eq!(
            base_result.is_ok(),
            v["base_opens"] == true,
            "{name}: base_opens"
        );
        check_public_header(&envelope);
    }
    for class in [
        "decrypt_failed",
        "replay",
        "unknown_epoch",
        "malformed",
        "unsupported_version",
        "too_far_ahead",
        "stale_message",
        "wrong_session",
    ] {
        assert!(
            vectors.iter().any(|v| v["expected_error"] == class),
            "no negative vector for {class}"
        );
    }
    for kind in [
        "flip_byte",
        "truncate",
        "append",
        "overlong_varint",
        "rewrite_field",
        "none",
    ] {
        assert!(
            mutation_kinds.contains(kind),
            "no negative vector of kind {kind}"
        );
    }
}
