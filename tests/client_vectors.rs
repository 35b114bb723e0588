//! Test vectors of the client's content layer and delivery routing: `spec/vectors/client.json`
//! (`spec/client.md` sections 3 and 4).
//!
//! The file is generated here from fixed inputs through the public API
//! (`sealwire::client::Content::encode`, and for the routing examples real envelopes sealed by
//! `sealwire-core` from a fixed ChaCha20 seed at a fixed time). `client_vectors_match_file`
//! regenerates it and fails if the file differs by a single byte; with
//! `SEALWIRE_WRITE_VECTORS=1` it writes the file instead:
//!
//! ```text
//! SEALWIRE_WRITE_VECTORS=1 cargo test --test client_vectors
//! ```
//!
//! The other tests read the file only. They decode every valid encoding and compare its fields
//! (`Content::decode`), check that every invalid one is rejected with its class
//! (`ContentError`), and re-derive every encoding and every verdict with an encoder and a strict
//! decoder written here from the rules of `spec/client.md` section 3 alone (their own varints),
//! so that a change in postcard's behaviour is caught even if the file were regenerated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealwire::client::{CONTENT_VERSION, Content, ContentError, MAX_BODY_LEN};
use sealwire::core::{
    Account, BundlePolicy, EnvelopeHeader, EnvelopeKind, Group, GroupConfig, GroupEnvelopeHeader,
    IdentityKeyPair, MAX_PLAINTEXT_LEN, Session, SessionConfig, Timestamp,
};
use serde::Serialize;
use serde_json::Value;

/// The command that regenerates the file.
const REGENERATE: &str = "SEALWIRE_WRITE_VECTORS=1 cargo test --test client_vectors";

/// The time of every example (Unix seconds).
const NOW: u64 = 1_780_000_000;

/// The seed of the routing examples' randomness (`ChaCha20Rng::seed_from_u64`).
const ROUTING_SEED: u64 = 0x636c_6965_6e74; // "client"

fn vectors_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/vectors/client.json"
    ))
}

fn write_mode() -> bool {
    std::env::var("SEALWIRE_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parses lower-case hex (anything else fails the test).
fn from_hex(text: &str) -> Vec<u8> {
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "not lower-case hex: {text:?}"
    );
    hex::decode(text).unwrap_or_else(|err| panic!("bad hex {text:?}: {err}"))
}

// ---------------------------------------------------------------------------------------------
// The generator.

#[derive(Serialize)]
struct File {
    description: &'static str,
    version: u32,
    content_version: u8,
    max_body_len: usize,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
    routing: Vec<Routing>,
}

#[derive(Serialize)]
struct Valid {
    name: &'static str,
    description: &'static str,
    variant: &'static str,
    variant_index: u32,
    sent_at: Option<u64>,
    body: Option<String>,
    control: Option<String>,
    encoding: String,
}

#[derive(Serialize)]
struct Invalid {
    name: &'static str,
    description: &'static str,
    encoding: String,
    expected_error: &'static str,
}

#[derive(Serialize)]
struct Routing {
    name: &'static str,
    description: &'static str,
    payload: String,
    byte_2: Option<u8>,
    route: &'static str,
    content: Option<String>,
}

fn message(sent_at: u64, body: &[u8]) -> Content {
    Content::Message {
        sent_at,
        body: body.to_vec(),
    }
}

fn control(control: &[u8]) -> Content {
    Content::GroupControl {
        control: control.to_vec(),
    }
}

fn valid(name: &'static str, description: &'static str, content: &Content) -> Valid {
    let encoding = to_hex(&content.encode());
    match content {
        Content::Message { sent_at, body } => Valid {
            name,
            description,
            variant: "message",
            variant_index: 0,
            sent_at: Some(*sent_at),
            body: Some(to_hex(body)),
            control: None,
            encoding,
        },
        Content::GroupControl { control } => Valid {
            name,
            description,
            variant: "group_control",
            variant_index: 1,
            sent_at: None,
            body: None,
            control: Some(to_hex(control)),
            encoding,
        },
    }
}

fn invalid(
    name: &'static str,
    description: &'static str,
    encoding: &[u8],
    expected_error: &'static str,
) -> Invalid {
    Invalid {
        name,
        description,
        encoding: to_hex(encoding),
        expected_error,
    }
}

/// `a ‖ b`.
fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

fn generate_valid() -> Vec<Valid> {
    let body_200: Vec<u8> = (0..200u8).collect();
    let control_128: Vec<u8> = (0..128u8).map(|i| i.wrapping_mul(3)).collect();
    vec![
        valid(
            "message_short",
            "A message: sent_at 300 (varint ac 02), body \"hi\" (length 02).",
            &message(300, b"hi"),
        ),
        valid(
            "message_empty_body",
            "A message with sent_at 0 and an empty body: the shortest content, 4 bytes.",
            &message(0, b""),
        ),
        valid(
            "message_max_sent_at",
            "sent_at = 2^64 - 1, the largest u64: a 10-byte varint ending in 01.",
            &message(u64::MAX, b"max"),
        ),
        valid(
            "message_200_byte_body",
            "A realistic sent_at (5-byte varint) and a 200-byte body: its length takes two \
             varint bytes (c8 01).",
            &message(NOW, &body_200),
        ),
        valid(
            "group_control_short",
            "A group control message of 3 bytes (opaque at this layer).",
            &control(&[9, 9, 9]),
        ),
        valid(
            "group_control_128",
            "A group control message of 128 bytes: the first length that takes two varint \
             bytes (80 01).",
            &control(&control_128),
        ),
    ]
}

fn generate_invalid() -> Vec<Invalid> {
    let short = message(300, b"hi").encode().to_vec();
    let empty = message(0, b"").encode().to_vec();
    let group = control(&[9, 9, 9]).encode().to_vec();
    let mut version_0 = empty.clone();
    version_0[0] = 0;
    let mut version_2 = empty.clone();
    version_2[0] = 2;
    vec![
        invalid("empty", "No byte at all.", &[], "malformed"),
        invalid(
            "version_0",
            "Version byte 0; the rest is a valid version-1 body.",
            &version_0,
            "unsupported_version",
        ),
        invalid(
            "version_2",
            "Version byte 2; the rest is a valid version-1 body.",
            &version_2,
            "unsupported_version",
        ),
        invalid(
            "version_only",
            "The version byte and nothing else: no variant index.",
            &[CONTENT_VERSION],
            "malformed",
        ),
        invalid(
            "unknown_variant",
            "Variant index 2, which version 1 does not define.",
            &[CONTENT_VERSION, 2, 0],
            "malformed",
        ),
        invalid(
            "non_minimal_variant",
            "Variant index 0 written as the two-byte varint 80 00.",
            &cat(&[CONTENT_VERSION, 0x80], &empty[1..]),
            "malformed",
        ),
        invalid(
            "trailing_byte",
            "A valid message followed by one byte 00.",
            &cat(&short, &[0]),
            "malformed",
        ),
        invalid(
            "non_minimal_sent_at",
            "sent_at 0 written as the two-byte varint 80 00.",
            &[CONTENT_VERSION, 0, 0x80, 0x00, 0],
            "malformed",
        ),
        invalid(
            "sent_at_overflow",
            "sent_at as a 10-byte varint whose last byte is 02: the value exceeds 2^64 - 1.",
            &cat(
                &[CONTENT_VERSION, 0],
                &[
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0,
                ],
            ),
            "malformed",
        ),
        invalid(
            "sent_at_eleven_bytes",
            "sent_at as a varint that does not end within 10 bytes.",
            &cat(&[CONTENT_VERSION, 0], &[0x80; 11]),
            "malformed",
        ),
        invalid(
            "missing_body",
            "A message whose input ends after sent_at: no body length.",
            &[CONTENT_VERSION, 0, 0xac, 0x02],
            "malformed",
        ),
        invalid(
            "non_minimal_length",
            "The body length 2 written as the two-byte varint 82 00.",
            &[CONTENT_VERSION, 0, 0xac, 0x02, 0x82, 0x00, b'h', b'i'],
            "malformed",
        ),
        invalid(
            "truncated_body",
            "The body length says 5, one byte follows.",
            &[CONTENT_VERSION, 0, 0, 5, 1],
            "malformed",
        ),
        invalid(
            "length_beyond_input",
            "The body length is 2^32 - 1 (ff ff ff ff 0f), far more than the input holds.",
            &[CONTENT_VERSION, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3],
            "malformed",
        ),
        invalid(
            "length_overflow",
            "The body length as a 10-byte varint whose value exceeds 2^64 - 1.",
            &cat(
                &[CONTENT_VERSION, 0, 0],
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ),
            "malformed",
        ),
        invalid(
            "group_control_trailing",
            "A valid group control content followed by one byte 00.",
            &cat(&group, &[0]),
            "malformed",
        ),
        invalid(
            "group_control_truncated",
            "A group control content whose length says 3 and two bytes follow.",
            &group[..group.len() - 1],
            "malformed",
        ),
    ]
}

/// Real envelopes, to show the routing rule of spec/client.md section 4.
fn generate_routing() -> Vec<Routing> {
    let mut rng = ChaCha20Rng::seed_from_u64(ROUTING_SEED);
    let now = Timestamp::from_unix_secs(NOW);
    let alice = IdentityKeyPair::generate(&mut rng);
    let mut bob = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
    let bundle = bob
        .bundle(None)
        .unwrap()
        .verify(&BundlePolicy::default(), now)
        .unwrap();
    let mut session =
        Session::initiate(&alice, &bundle, SessionConfig::default(), &mut rng, now).unwrap();
    let to_bob = message(NOW, b"hello Bob").encode();
    let initial = session.seal(&to_bob, &mut rng, now).unwrap();
    let mut accepted = bob.accept(&initial, now).unwrap();
    assert_eq!(accepted.plaintext, to_bob.as_slice());
    let to_alice = message(NOW, b"hello Alice").encode();
    let follow_up = accepted.session.seal(&to_alice, &mut rng, now).unwrap();
    let mut group = Group::create(&alice, GroupConfig::default(), &mut rng, now).unwrap();
    let to_group = message(NOW, b"hello group").encode();
    let sealed = group.seal(&to_group, &mut rng, now).unwrap();
    vec![
        Routing {
            name: "pairwise_initial",
            description: "Alice's first envelope to Bob (kind 0, initial): byte 2 is 00, a \
                          pairwise envelope.",
            byte_2: initial.get(2).copied(),
            payload: to_hex(&initial),
            route: "pairwise",
            content: Some(to_hex(&to_bob)),
        },
        Routing {
            name: "pairwise_message",
            description: "Bob's reply on that session (kind 1): byte 2 is 01, a pairwise \
                          envelope.",
            byte_2: follow_up.get(2).copied(),
            payload: to_hex(&follow_up),
            route: "pairwise",
            content: Some(to_hex(&to_alice)),
        },
        Routing {
            name: "group",
            description: "Alice's first message in a group she just created (kind 2): byte 2 \
                          is 02, a group envelope.",
            byte_2: sealed.envelope.get(2).copied(),
            payload: to_hex(&sealed.envelope),
            route: "group",
            content: Some(to_hex(&to_group)),
        },
        Routing {
            name: "too_short",
            description: "Two bytes: there is no byte 2, so the delivery goes the pairwise \
                          way, whose decoder rejects it as malformed.",
            byte_2: None,
            payload: to_hex(&[1, 1]),
            route: "pairwise",
            content: None,
        },
    ]
}

fn generate() -> String {
    let file = File {
        description: "The sealwire client's content layer, version 1 (spec/client.md section 3): \
                      valid contents with their fields and encoding, encodings a client must \
                      reject with their error class, and the routing of a delivery by its byte \
                      2 (section 4) on real envelopes. Generated and checked by \
                      tests/client_vectors.rs.",
        version: 1,
        content_version: CONTENT_VERSION,
        max_body_len: MAX_BODY_LEN,
        valid: generate_valid(),
        invalid: generate_invalid(),
        routing: generate_routing(),
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap();
    text.push('\n');
    text
}

static WRITTEN: OnceLock<()> = OnceLock::new();

/// Writes the file, once per run (the other tests wait for it).
fn write_once() {
    WRITTEN.get_or_init(|| {
        let path = vectors_path();
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, generate()).unwrap();
        std::fs::rename(&temporary, &path).unwrap();
    });
}

/// The file, parsed (written first in write mode).
fn load() -> Value {
    if write_mode() {
        write_once();
    }
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).expect("client.json is JSON")
}

#[test]
fn client_vectors_match_file() {
    if write_mode() {
        write_once();
        return;
    }
    let generated = generate();
    let path = vectors_path();
    let existing = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    if existing != generated {
        let line = generated
            .lines()
            .zip(existing.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(existing.lines().count()));
        panic!(
            "spec/vectors/client.json does not match the code: first difference at line {} \
             ({} lines generated, {} in the file).\n\
             If the change of the content layer is intended, regenerate it with\n  {REGENERATE}\n\
             then review the diff (and spec/client.md sections 3 and 4).",
            line + 1,
            generated.lines().count(),
            existing.lines().count()
        );
    }
}

#[test]
fn generation_is_deterministic() {
    assert!(
        generate() == generate(),
        "two runs of the client vector generator disagree: something draws unseeded randomness"
    );
}

// ---------------------------------------------------------------------------------------------
// The checker: reads client.json only.

fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key:?} is missing or not a string in {value}"))
}

fn opt_str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    match value.get(key) {
        Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        _ => panic!("{key:?} is missing or not a string or null in {value}"),
    }
}

fn opt_u64_at(value: &Value, key: &str) -> Option<u64> {
    match value.get(key) {
        Some(Value::Null) => None,
        Some(number) => Some(
            number
                .as_u64()
                .unwrap_or_else(|| panic!("{key:?} is not an unsigned integer in {value}")),
        ),
        None => panic!("{key:?} is missing in {value}"),
    }
}

fn list<'a>(file: &'a Value, key: &str) -> &'a Vec<Value> {
    file.get(key)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{key:?} is missing or not an array"))
}

/// The content a valid vector describes, built from its fields.
fn described(vector: &Value) -> Content {
    let name = str_at(vector, "name");
    match str_at(vector, "variant") {
        "message" => {
            assert_eq!(opt_u64_at(vector, "variant_index"), Some(0), "{name}");
            assert_eq!(opt_str_at(vector, "control"), None, "{name}");
            Content::Message {
                sent_at: opt_u64_at(vector, "sent_at").expect("a message has sent_at"),
                body: from_hex(opt_str_at(vector, "body").expect("a message has a body")),
            }
        }
        "group_control" => {
            assert_eq!(opt_u64_at(vector, "variant_index"), Some(1), "{name}");
            assert_eq!(opt_u64_at(vector, "sent_at"), None, "{name}");
            assert_eq!(opt_str_at(vector, "body"), None, "{name}");
            Content::GroupControl {
                control: from_hex(opt_str_at(vector, "control").expect("a control")),
            }
        }
        other => panic!("{name}: unknown variant {other:?}"),
    }
}

fn class(error: ContentError) -> &'static str {
    match error {
        ContentError::UnsupportedVersion(_) => "unsupported_version",
        ContentError::Malformed => "malformed",
        other => panic!("an error class the spec does not name: {other:?}"),
    }
}

#[test]
fn header_and_constants() {
    let file = load();
    assert_eq!(file["version"], 1);
    assert!(file["description"].is_string());
    assert_eq!(file["content_version"].as_u64(), Some(1));
    assert_eq!(
        u64::from(CONTENT_VERSION),
        1,
        "spec/client.md 3: version 0x01"
    );
    assert_eq!(file["max_body_len"].as_u64(), Some(65_000));
    assert_eq!(MAX_BODY_LEN, 65_000, "spec/client.md 3: MAX_BODY_LEN");
    assert!(list(&file, "valid").len() >= 6);
    assert!(list(&file, "invalid").len() >= 10);
}

#[test]
fn valid_contents_decode_to_their_fields() {
    let file = load();
    for vector in list(&file, "valid") {
        let name = str_at(vector, "name");
        let encoding = from_hex(str_at(vector, "encoding"));
        let expected = described(vector);
        let decoded = Content::decode(&encoding)
            .unwrap_or_else(|err| panic!("{name}: does not decode: {err}"));
        assert_eq!(decoded, expected, "{name}: decoded fields");
        assert_eq!(
            decoded.encode().as_slice(),
            encoding.as_slice(),
            "{name}: re-encoding"
        );
    }
}

#[test]
fn invalid_contents_are_rejected_with_their_class() {
    let file = load();
    for vector in list(&file, "invalid") {
        let name = str_at(vector, "name");
        let encoding = from_hex(str_at(vector, "encoding"));
        let expected = str_at(vector, "expected_error");
        match Content::decode(&encoding) {
            Ok(content) => panic!("{name}: decoded as {content:?}, expected {expected}"),
            Err(error) => {
                assert_eq!(class(error), expected, "{name}: error class");
                if let ContentError::UnsupportedVersion(version) = error {
                    assert_eq!(Some(&version), encoding.first(), "{name}: reported version");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An independent encoder and strict decoder, from spec/client.md section 3 alone.

/// Unsigned LEB128, shortest form.
fn spec_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// `0x01 ‖ varint(variant) ‖ fields`, each byte string as `varint(len) ‖ bytes`.
fn spec_encode(content: &Content) -> Vec<u8> {
    let mut out = vec![0x01];
    match content {
        Content::Message { sent_at, body } => {
            spec_varint(0, &mut out);
            spec_varint(*sent_at, &mut out);
            spec_varint(body.len() as u64, &mut out);
            out.extend_from_slice(body);
        }
        Content::GroupControl { control } => {
            spec_varint(1, &mut out);
            spec_varint(control.len() as u64, &mut out);
            out.extend_from_slice(control);
        }
    }
    out
}

/// Reads one minimal varint of at most 10 bytes whose value fits in 64 bits.
fn spec_read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        if i == 9 && byte > 0x01 {
            return None; // more than 64 bits
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return None; // not the shortest form
            }
            return Some(value);
        }
    }
    None // does not end within 10 bytes
}

/// Reads `varint(len) ‖ bytes`.
fn spec_read_bytes(input: &mut &[u8]) -> Option<Vec<u8>> {
    let len = spec_read_varint(input)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= input.len())?;
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    Some(bytes.to_vec())
}

/// The fields, or the error class.
fn spec_decode(bytes: &[u8]) -> Result<(u64, Option<u64>, Vec<u8>), &'static str> {
    let (&version, mut rest) = bytes.split_first().ok_or("malformed")?;
    if version != 0x01 {
        return Err("unsupported_version");
    }
    let variant = spec_read_varint(&mut rest).ok_or("malformed")?;
    let decoded = match variant {
        0 => {
            let sent_at = spec_read_varint(&mut rest).ok_or("malformed")?;
            let body = spec_read_bytes(&mut rest).ok_or("malformed")?;
            (0, Some(sent_at), body)
        }
        1 => (1, None, spec_read_bytes(&mut rest).ok_or("malformed")?),
        _ => return Err("malformed"),
    };
    if !rest.is_empty() {
        return Err("malformed");
    }
    Ok(decoded)
}

#[test]
fn valid_encodings_follow_the_spec_rules() {
    let file = load();
    for vector in list(&file, "valid") {
        let name = str_at(vector, "name");
        let encoding = from_hex(str_at(vector, "encoding"));
        let content = described(vector);
        assert_eq!(
            spec_encode(&content),
            encoding,
            "{name}: the spec's encoding"
        );
        assert_eq!(
            content.encode().as_slice(),
            encoding.as_slice(),
            "{name}: Content::encode"
        );
        let (variant, sent_at, bytes) =
            spec_decode(&encoding).unwrap_or_else(|class| panic!("{name}: {class}"));
        assert_eq!(Some(variant), opt_u64_at(vector, "variant_index"), "{name}");
        assert_eq!(sent_at, opt_u64_at(vector, "sent_at"), "{name}");
        let field = if variant == 0 { "body" } else { "control" };
        assert_eq!(
            Some(bytes),
            opt_str_at(vector, field).map(from_hex),
            "{name}"
        );
    }
}

#[test]
fn the_spec_rules_predict_every_rejection() {
    let file = load();
    for vector in list(&file, "invalid") {
        let name = str_at(vector, "name");
        let encoding = from_hex(str_at(vector, "encoding"));
        assert_eq!(
            spec_decode(&encoding).err(),
            Some(str_at(vector, "expected_error")),
            "{name}"
        );
    }
}

#[test]
fn spec_examples_and_boundaries() {
    // spec/client.md 3.2: the worked example.
    assert_eq!(
        message(300, b"hi").encode().as_slice(),
        [0x01, 0x00, 0xac, 0x02, 0x02, b'h', b'i']
    );
    // Varint boundaries of sent_at and of the length.
    for (value, len) in [
        (0u64, 1usize),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (u64::from(u32::MAX), 5),
        (u64::MAX, 10),
    ] {
        let encoded = message(value, b"").encode();
        assert_eq!(encoded.len(), 1 + 1 + len + 1, "sent_at {value}");
        assert_eq!(spec_encode(&message(value, b"")), encoded.as_slice());
    }
    for len in [0usize, 127, 128, 16_383, 16_384, MAX_BODY_LEN] {
        let content = control(&vec![0xa5; len]);
        let encoded = content.encode();
        assert_eq!(spec_encode(&content), encoded.as_slice(), "length {len}");
        assert_eq!(Content::decode(&encoded).unwrap(), content);
    }
    // The largest message a client sends fits in one pairwise or group envelope.
    let largest = message(u64::MAX, &vec![0xff; MAX_BODY_LEN]).encode();
    assert_eq!(largest.len(), 65_015);
    assert!(largest.len() <= MAX_PLAINTEXT_LEN);
    // Versions other than 1 are refused before anything else is read.
    for version in [0u8, 2, 0x7f, 0x80, 0xff] {
        assert_eq!(
            Content::decode(&[version]),
            Err(ContentError::UnsupportedVersion(version))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Routing (spec/client.md section 4).

#[test]
fn deliveries_route_by_byte_2() {
    let file = load();
    let routing = list(&file, "routing");
    assert!(routing.iter().any(|case| str_at(case, "route") == "group"));
    assert!(
        routing
            .iter()
            .any(|case| str_at(case, "route") == "pairwise")
    );
    for case in routing {
        let name = str_at(case, "name");
        let payload = from_hex(str_at(case, "payload"));
        assert_eq!(
            opt_u64_at(case, "byte_2"),
            payload.get(2).map(|b| u64::from(*b)),
            "{name}: byte_2"
        );
        // The rule of section 4, as written there.
        let route = if payload.get(2) == Some(&0x02) {
            "group"
        } else {
            "pairwise"
        };
        assert_eq!(route, str_at(case, "route"), "{name}: route");
        // Each decoder accepts its own kind and refuses the other's as unexpected_kind.
        match route {
            "group" => {
                GroupEnvelopeHeader::parse(&payload)
                    .unwrap_or_else(|err| panic!("{name}: group header: {err}"));
                assert!(
                    matches!(
                        EnvelopeHeader::parse(&payload),
                        Err(sealwire::core::Error::UnexpectedKind(_))
                    ),
                    "{name}: a pairwise decoder must refuse a group envelope"
                );
            }
            _ if payload.len() < 3 => {
                assert!(
                    matches!(
                        EnvelopeHeader::parse(&payload),
                        Err(sealwire::core::Error::Malformed(_))
                    ),
                    "{name}: too short"
                );
            }
            _ => {
                let header = EnvelopeHeader::parse(&payload)
                    .unwrap_or_else(|err| panic!("{name}: pairwise header: {err}"));
                let kind = match header.kind() {
                    EnvelopeKind::Initial => 0,
                    EnvelopeKind::Message => 1,
                    other => panic!("{name}: unexpected kind {other:?}"),
                };
                assert_eq!(Some(kind), opt_u64_at(case, "byte_2"), "{name}: kind");
                assert!(
                    matches!(
                        GroupEnvelopeHeader::parse(&payload),
                        Err(sealwire::core::Error::UnexpectedKind(_))
                    ),
                    "{name}: a group decoder must refuse a pairwise envelope"
                );
            }
        }
        // What was sealed inside is a valid content.
        if let Some(content) = opt_str_at(case, "content") {
            let content = Content::decode(&from_hex(content))
                .unwrap_or_else(|err| panic!("{name}: sealed content: {err}"));
            assert!(matches!(content, Content::Message { .. }), "{name}");
        }
    }
}
