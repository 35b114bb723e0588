//! negative.json: envelopes a receiver must reject, each at a position of the conversation, with
//! the error class and proof that the rejection leaves the session unchanged.

use std::ops::Range;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::Serialize;

use super::conversation::{self, Generated, Party, Runner, step_time};
use super::{FILE_VERSION, RawKeys, error_class, h};
use crate::envelope::{self, HeaderBody, WireHeader};
use crate::kdf;
use crate::session::Session;
use crate::time::Timestamp;

/// How a vector's envelope is made from its base message.
#[derive(Clone, Copy)]
enum Mutation {
    /// The base envelope itself.
    Unchanged,
    /// XOR 0x01 into byte `n` of a header field.
    FlipHeader(&'static str, usize),
    /// XOR 0x01 into byte `n` of the AES-GCM ciphertext (without its tag).
    FlipCiphertext(usize),
    /// XOR 0x01 into byte `n` of the GCM tag.
    FlipGcmTag(usize),
    /// XOR 0x01 into byte `n` of the GCM tag, then recompute the HMAC tag under the base
    /// message's real MAC key.
    FlipGcmTagRemac(usize),
    /// XOR 0x01 into byte `n` of the HMAC tag.
    FlipHmacTag(usize),
    /// Drop the last `n` bytes.
    DropLast(usize),
    /// Keep only the first `n` bytes.
    KeepFirst(usize),
    /// Append these bytes.
    Append(&'static [u8]),
    /// Set the byte at this offset.
    SetByte(usize, u8),
    /// Encode this header field's varint with a redundant trailing zero group.
    OverlongHeaderVarint(&'static str),
    /// Encode the ciphertext length varint with a redundant trailing zero group.
    OverlongLength,
    /// Change a header field and re-encode the header canonically.
    Rewrite(&'static str, u32),
    /// Seal 32 zero bytes (no 0x80 marker) under the base message's real keys and header.
    BadPadding,
}

struct Spec {
    name: &'static str,
    description: &'static str,
    receiver: Party,
    after_steps: usize,
    base: usize,
    mutation: Mutation,
    expected: &'static str,
    /// Seconds after the time of step `after_steps` at which the envelope is opened.
    delay: u64,
    /// Whether the unmodified base message opens at that position.
    base_opens: bool,
}

const GRACE: u64 = 30 * 24 * 60 * 60;

#[rustfmt::skip]
const SPECS: &[Spec] = &[
    Spec { name: "header_ratchet_key_flipped", description: "One bit of the header's ratchet key flipped; the header is authenticated.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::FlipHeader("ratchet_key", 5), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "setup_header_flipped", description: "One bit of the sealed identity in an initial message's setup header flipped: it no longer matches the setup that created the session.", receiver: Party::Bob, after_steps: 5, base: 1, mutation: Mutation::FlipHeader("sealed_identity", 10), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "session_id_flipped", description: "One bit of the session id flipped: the envelope names another session.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::FlipHeader("session_id", 0), expected: "wrong_session", delay: 0, base_opens: true },
    Spec { name: "ciphertext_flipped", description: "One bit of the AES-GCM ciphertext flipped.", receiver: Party::Alice, after_steps: 18, base: 7, mutation: Mutation::FlipCiphertext(0), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "gcm_tag_flipped", description: "One bit of the GCM tag flipped (caught by the HMAC tag, which covers it).", receiver: Party::Bob, after_steps: 23, base: 11, mutation: Mutation::FlipGcmTag(0), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "hmac_tag_flipped", description: "One bit of the HMAC tag flipped.", receiver: Party::Alice, after_steps: 26, base: 12, mutation: Mutation::FlipHmacTag(31), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "gcm_tag_flipped_hmac_valid", description: "One bit of the GCM tag flipped and the HMAC tag recomputed under the right MAC key: the HMAC tag verifies, AES-GCM must still be checked and fail.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::FlipGcmTagRemac(0), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "truncated_tag", description: "The last byte removed: the HMAC tag is 31 bytes.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::DropLast(1), expected: "malformed", delay: 0, base_opens: true },
    Spec { name: "truncated_header", description: "Only the first 20 bytes kept: the header is cut short.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::KeepFirst(20), expected: "malformed", delay: 0, base_opens: true },
    Spec { name: "trailing_byte", description: "A zero byte appended after the HMAC tag.", receiver: Party::Alice, after_steps: 18, base: 7, mutation: Mutation::Append(&[0]), expected: "malformed", delay: 0, base_opens: true },
    Spec { name: "overlong_header_varint", description: "The header's counter varint encoded with a redundant zero group (same value, not canonical).", receiver: Party::Alice, after_steps: 19, base: 9, mutation: Mutation::OverlongHeaderVarint("counter"), expected: "malformed", delay: 0, base_opens: true },
    Spec { name: "overlong_ciphertext_length", description: "The ciphertext length varint encoded with a redundant zero group (same value, not canonical).", receiver: Party::Alice, after_steps: 19, base: 9, mutation: Mutation::OverlongLength, expected: "malformed", delay: 0, base_opens: true },
    Spec { name: "wrong_version", description: "Protocol version byte set to 2.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::SetByte(0, 2), expected: "unsupported_version", delay: 0, base_opens: true },
    Spec { name: "wrong_suite", description: "Cipher suite byte set to 2.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::SetByte(1, 2), expected: "unsupported_suite", delay: 0, base_opens: true },
    Spec { name: "replay", description: "A message delivered a second time.", receiver: Party::Bob, after_steps: 24, base: 11, mutation: Mutation::Unchanged, expected: "replay", delay: 0, base_opens: false },
    Spec { name: "replay_of_skipped_message", description: "A message delivered again after it was opened with a skipped key.", receiver: Party::Alice, after_steps: 11, base: 3, mutation: Mutation::Unchanged, expected: "replay", delay: 0, base_opens: false },
    Spec { name: "replay_into_closed_epoch", description: "A message delivered again after its epoch was closed (its length announced) and holds no keys: the closed epoch is remembered, so it is still a replay.", receiver: Party::Bob, after_steps: 14, base: 1, mutation: Mutation::Unchanged, expected: "replay", delay: 0, base_opens: false },
    Spec { name: "beyond_closed_epoch_length", description: "Counter set to 3 in an epoch whose sender announced 3 messages (counters 0..=2): a closed epoch has no further keys.", receiver: Party::Alice, after_steps: 21, base: 9, mutation: Mutation::Rewrite("counter", 3), expected: "stale_message", delay: 0, base_opens: false },
    Spec { name: "skipped_key_expired", description: "A skipped message delivered exactly grace_secs after its key was stored.", receiver: Party::Bob, after_steps: 5, base: 1, mutation: Mutation::Unchanged, expected: "stale_message", delay: GRACE - 10, base_opens: true },
    Spec { name: "unknown_parent_epoch", description: "Header parent set to 4, an epoch the receiver never had.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::Rewrite("parent", 4), expected: "unknown_epoch", delay: 0, base_opens: true },
    Spec { name: "epoch_of_receivers_parity", description: "Header epoch set to 6, a number only the receiver's own epochs use.", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::Rewrite("epoch", 6), expected: "unknown_epoch", delay: 0, base_opens: true },
    Spec { name: "counter_too_far_ahead", description: "Counter set to 12 in an epoch whose next expected counter is 1: a jump of 11 > max_forward_jump (10).", receiver: Party::Alice, after_steps: 19, base: 8, mutation: Mutation::Rewrite("counter", 12), expected: "too_far_ahead", delay: 0, base_opens: true },
    Spec { name: "counter_at_forward_bound", description: "Counter set to 11 where 1 is expected: a jump of exactly max_forward_jump is allowed, so the envelope reaches authentication and fails it.", receiver: Party::Alice, after_steps: 19, base: 8, mutation: Mutation::Rewrite("counter", 11), expected: "decrypt_failed", delay: 0, base_opens: true },
    Spec { name: "new_epoch_counter_too_far_ahead", description: "Counter set to 11 in the first message of an epoch new to the receiver: a jump of 11 > max_forward_jump.", receiver: Party::Alice, after_steps: 18, base: 7, mutation: Mutation::Rewrite("counter", 11), expected: "too_far_ahead", delay: 0, base_opens: true },
    Spec { name: "epoch_too_far_ahead", description: "Epoch set to 139 under parent 8, whose next child is 9: 65 skipped epochs > max_epoch_jump (64).", receiver: Party::Bob, after_steps: 23, base: 11, mutation: Mutation::Rewrite("epoch", 139), expected: "too_far_ahead", delay: 0, base_opens: true },
    Spec { name: "initial_to_initiator", description: "The initiator's own initial message reflected back to it.", receiver: Party::Alice, after_steps: 9, base: 0, mutation: Mutation::Unchanged, expected: "unexpected_kind", delay: 0, base_opens: false },
    Spec { name: "authentic_bad_padding", description: "Header, keys, GCM and HMAC tags all valid for the base message, but the padded plaintext is 32 zero bytes (no 0x80 marker).", receiver: Party::Bob, after_steps: 12, base: 6, mutation: Mutation::BadPadding, expected: "malformed", delay: 0, base_opens: true },
];

#[derive(Serialize)]
pub(super) struct NegativeFile {
    description: &'static str,
    version: u32,
    conversation: &'static str,
    vectors: Vec<NegativeVector>,
}

#[derive(Serialize)]
struct NegativeVector {
    name: &'static str,
    description: &'static str,
    receiver: &'static str,
    after_steps: usize,
    delivered_before: Vec<usize>,
    now: u64,
    base_message: usize,
    base_opens: bool,
    mutation: MutationVector,
    envelope: String,
    expected_error: &'static str,
}

/// How a negative vector was made from a genuine input (shared with the group vectors).
#[derive(Serialize, Default)]
pub(super) struct MutationVector {
    pub(super) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) region: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) offset: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) xor: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) value: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) bytes: Option<String>,
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

/// Byte range of `field` in the encoded header (see `envelope.rs` for the layout).
fn header_field(header: &WireHeader, header_bytes: &[u8], field: &str) -> Range<usize> {
    let m = header.message();
    let previous_len = m.previous.map_or(1, |p| {
        1 + varint_len(p.epoch.into()) + varint_len(p.length.into())
    });
    // version, suite, kind (one byte each), then the message header.
    let mut fields = vec![
        ("session_id", 16),
        ("epoch", varint_len(m.epoch.into())),
        ("parent", varint_len(m.parent.into())),
        ("counter", varint_len(m.counter.into())),
        ("previous", previous_len),
        ("ratchet_key", 32),
    ];
    if let Some(setup) = header.setup() {
        let one_time_len = setup
            .one_time_prekey_id
            .map_or(1, |id| 1 + varint_len(id.into()));
        fields.extend([
            ("base_key", 32),
            (
                "signed_prekey_id",
                varint_len(setup.signed_prekey_id.into()),
            ),
            ("one_time_prekey_id", one_time_len),
            ("sealed_identity", 144),
        ]);
    }
    let mut start = 3;
    let mut found = None;
    for (name, len) in fields {
        if name == field {
            found = Some(start..start + len);
        }
        start += len;
    }
    assert_eq!(start, header_bytes.len(), "header layout");
    let range = found.unwrap_or_else(|| panic!("no header field {field}"));
    if field == "session_id" {
        assert_eq!(header_bytes[range.clone()], m.session_id);
    }
    if field == "ratchet_key" {
        assert_eq!(header_bytes[range.clone()], m.ratchet_key);
    }
    range
}

/// `header ‖ varint(len) ‖ AES-GCM(padded) ‖ GCM tag ‖ HMAC`, built by hand.
fn seal_raw(header_bytes: &[u8], keys: &RawKeys, session_ad: &[u8; 32], padded: &[u8]) -> Vec<u8> {
    let aad = [header_bytes, session_ad].concat();
    let mut ciphertext = padded.to_vec();
    let tag = Aes256Gcm::new(&keys.aes_key.into())
        .encrypt_inout_detached(
            &Nonce::from(keys.nonce),
            &aad,
            ciphertext.as_mut_slice().into(),
        )
        .unwrap();
    ciphertext.extend_from_slice(&tag);
    let len = u8::try_from(ciphertext.len())
        .ok()
        .filter(|l| *l < 0x80)
        .unwrap();
    let mac = kdf::hmac(
        &keys.mac_key,
        &[header_bytes, session_ad, &keys.nonce, &ciphertext],
    );
    [header_bytes, &[len], &ciphertext, &mac].concat()
}

/// Replaces the canonical varint at `range` with an overlong encoding of the same value.
fn overlong(bytes: &[u8], range: Range<usize>) -> (Vec<u8>, Vec<u8>) {
    let mut replacement = bytes[range.clone()].to_vec();
    *replacement.last_mut().unwrap() |= 0x80;
    replacement.push(0);
    let out = [&bytes[..range.start], &replacement, &bytes[range.end..]].concat();
    (out, replacement)
}

fn flip(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= 1;
    out
}

fn apply(spec: &Spec, conversation: &Generated) -> (Vec<u8>, MutationVector) {
    let base = &conversation.envelopes[spec.base];
    let parsed = envelope::parse(base).unwrap();
    let header_len = parsed.header_bytes.len();
    let length_len = varint_len(parsed.ciphertext.len() as u64);
    let ciphertext_start = header_len + length_len;
    let gcm_tag_start = base.len() - 32 - 16;
    let hmac_start = base.len() - 32;
    let flipped = |region, field, offset| {
        let mutation = MutationVector {
            kind: "flip_byte",
            region: Some(region),
            field,
            offset: Some(offset),
            xor: Some(1),
            ..MutationVector::default()
        };
        (flip(base, offset), mutation)
    };
    match spec.mutation {
        Mutation::Unchanged => (
            base.clone(),
            MutationVector {
                kind: "none",
                ..MutationVector::default()
            },
        ),
        Mutation::FlipHeader(field, n) => {
            let range = header_field(&parsed.header, parsed.header_bytes, field);
            assert!(n < range.len());
            flipped("header", Some(field), range.start + n)
        }
        Mutation::FlipCiphertext(n) => {
            assert!(ciphertext_start + n < gcm_tag_start);
            flipped("ciphertext", None, ciphertext_start + n)
        }
        Mutation::FlipGcmTag(n) => flipped("gcm_tag", None, gcm_tag_start + n),
        Mutation::FlipHmacTag(n) => flipped("hmac_tag", None, hmac_start + n),
        Mutation::FlipGcmTagRemac(n) => {
            let keys = &conversation.keys[spec.base];
            let mut out = flip(base, gcm_tag_start + n);
            let mac = kdf::hmac(
                &keys.mac_key,
                &[
                    parsed.header_bytes,
                    &conversation.session_ad,
                    &keys.nonce,
                    &out[ciphertext_start..hmac_start],
                ],
            );
            out[hmac_start..].copy_from_slice(&mac);
            (
                out,
                MutationVector {
                    kind: "flip_byte_recompute_hmac",
                    region: Some("gcm_tag"),
                    offset: Some(gcm_tag_start + n),
                    xor: Some(1),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::DropLast(n) | Mutation::KeepFirst(n) => {
            let length = match spec.mutation {
                Mutation::DropLast(_) => base.len() - n,
                _ => n,
            };
            (
                base[..length].to_vec(),
                MutationVector {
                    kind: "truncate",
                    length: Some(length),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::Append(bytes) => (
            [base, bytes].concat(),
            MutationVector {
                kind: "append",
                bytes: Some(h(bytes)),
                ..MutationVector::default()
            },
        ),
        Mutation::SetByte(offset, value) => {
            let mut out = base.clone();
            out[offset] = value;
            (
                out,
                MutationVector {
                    kind: "set_byte",
                    offset: Some(offset),
                    value: Some(value.into()),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::OverlongHeaderVarint(field) => {
            let range = header_field(&parsed.header, parsed.header_bytes, field);
            let offset = range.start;
            let (out, replacement) = overlong(base, range);
            (
                out,
                MutationVector {
                    kind: "overlong_varint",
                    region: Some("header"),
                    field: Some(field),
                    offset: Some(offset),
                    bytes: Some(h(&replacement)),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::OverlongLength => {
            let (out, replacement) = overlong(base, header_len..ciphertext_start);
            (
                out,
                MutationVector {
                    kind: "overlong_varint",
                    region: Some("ciphertext_length"),
                    offset: Some(header_len),
                    bytes: Some(h(&replacement)),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::Rewrite(field, value) => {
            let mut header = parsed.header.clone();
            let message = match &mut header.body {
                HeaderBody::Initial { message, .. } | HeaderBody::Message { message } => message,
            };
            match field {
                "epoch" => message.epoch = value,
                "parent" => message.parent = value,
                "counter" => message.counter = value,
                _ => panic!("no rewritable field {field}"),
            }
            let header_bytes = envelope::encode_header(&header).unwrap();
            (
                [&header_bytes, &base[header_len..]].concat(),
                MutationVector {
                    kind: "rewrite_field",
                    region: Some("header"),
                    field: Some(field),
                    value: Some(value),
                    ..MutationVector::default()
                },
            )
        }
        Mutation::BadPadding => {
            let keys = &conversation.keys[spec.base];
            let ad = &conversation.session_ad;
            // The hand-built sealing reproduces the real envelope from the real padded text.
            let mut padded = conversation::plaintext(spec.base);
            crate::padding::pad_in_place(&mut padded, 0);
            assert_eq!(&seal_raw(parsed.header_bytes, keys, ad, &padded), base);
            let zeros = [0u8; 32];
            (
                seal_raw(parsed.header_bytes, keys, ad, &zeros),
                MutationVector {
                    kind: "reseal_bad_padding",
                    bytes: Some(h(&zeros)),
                    ..MutationVector::default()
                },
            )
        }
    }
}

fn now(spec: &Spec) -> u64 {
    step_time(spec.after_steps) + spec.delay
}

pub(super) fn negative_file(conversation: &Generated) -> NegativeFile {
    assert_eq!(GRACE, conversation::config().grace_secs);
    let vectors = SPECS
        .iter()
        .map(|spec| {
            let (envelope, mutation) = apply(spec, conversation);
            NegativeVector {
                name: spec.name,
                description: spec.description,
                receiver: spec.receiver.name(),
                after_steps: spec.after_steps,
                delivered_before: conversation::delivered_before(spec.receiver, spec.after_steps),
                now: now(spec),
                base_message: spec.base,
                base_opens: spec.base_opens,
                mutation,
                envelope: h(&envelope),
                expected_error: spec.expected,
            }
        })
        .collect();
    NegativeFile {
        description: "Envelopes that must be rejected. Each applies to the receiver's session \
                      after the first after_steps steps of conversation.json's timeline, opened \
                      at time now; a rejection must leave the session unchanged. See README.md.",
        version: FILE_VERSION,
        conversation: "conversation.json",
        vectors,
    }
}

#[test]
fn negative_vectors_are_rejected_without_state_change() {
    let conversation = conversation::generate();
    for spec in SPECS {
        let (envelope, _) = apply(spec, &conversation);
        let mut runner = Runner::after(spec.after_steps);
        let session = runner.session_mut(spec.receiver);
        let before = session.to_bytes();
        let at = Timestamp::from_unix_secs(now(spec));

        // Control: the unmodified base message, on a copy of the same state, at the time of
        // the next step (the expiry vector differs from it only by its later time).
        let mut copy = Session::from_bytes(before.expose_secret()).unwrap();
        let next_step = Timestamp::from_unix_secs(step_time(spec.after_steps));
        let control = copy.open(&conversation.envelopes[spec.base], next_step);
        assert_eq!(
            control.is_ok(),
            spec.base_opens,
            "{}: the unmodified base message {} (base_opens = {})",
            spec.name,
            spec.base,
            spec.base_opens
        );

        let result = session.open(&envelope, at);
        assert_eq!(
            result.as_ref().err().map(error_class),
            Some(spec.expected),
            "{}: {} opened at step {} by {}: got {result:?}",
            spec.name,
            spec.description,
            spec.after_steps,
            spec.receiver.name()
        );
        assert!(
            session.to_bytes().expose_secret() == before.expose_secret(),
            "{}: the rejected envelope changed the session state",
            spec.name
        );
    }
}
