#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An independent check of `spec/vectors/`: every derived value is recomputed from the listed
//! inputs with the primitive crates alone (x25519-dalek, ed25519-dalek, hkdf, hmac, sha2,
//! aes-gcm), following `spec/sealwire.md`, the way a second implementation would. Nothing here
//! calls sealwire's internals; the public API is used only to cross-check decoding.
//!
//! The receive side is a small model implementation of spec section 11.2 (processing order,
//! epoch and chain derivation, skipped keys and salts, closing, replay): it opens every
//! delivery of the conversation and predicts the error class of every negative vector.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sealwire_core::{
    BundlePolicy, EnvelopeHeader, EnvelopeKind, Error, PrekeyBundle, PublicIdentity, Timestamp,
    padded_len,
};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};

// ---------------------------------------------------------------------------------------------
// Constants of the spec (sections 4, 10.3, 14), typed here independently.

const LABEL_BINDING: &[u8] = b"sealwire/v1/identity-binding";
const LABEL_SIGNED_PREKEY: &[u8] = b"sealwire/v1/signed-prekey";
const LABEL_FINGERPRINT: &[u8] = b"sealwire/v1/fingerprint";
const LABEL_SEAL: &[u8] = b"sealwire/v1/setup/identity-seal";
const LABEL_ROOT: &[u8] = b"sealwire/v1/setup/root";
const LABEL_AD: &[u8] = b"sealwire/v1/session-ad";
const LABEL_EPOCH: &[u8] = b"sealwire/v1/epoch";
const LABEL_MESSAGE: &[u8] = b"sealwire/v1/message";
const FINGERPRINT_ITERATIONS: usize = 5200;
const MAX_ENVELOPE: usize = 66_048;
const MIN_PADDED: usize = 32;

// ---------------------------------------------------------------------------------------------
// JSON access.

fn load(name: &str) -> Value {
    let path = format!("{}/../../spec/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(value["version"], 1, "{name}: version");
    assert!(
        !text_of(&value, "description").is_empty(),
        "{name}: description"
    );
    assert!(text.ends_with("}\n"), "{name}: trailing newline");
    value
}

fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key} in {v}"))
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(text_of(v, key)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn b32(v: &Value, key: &str) -> [u8; 32] {
    bytes(v, key)
        .try_into()
        .unwrap_or_else(|_| panic!("{key}: not 32 bytes"))
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing number {key} in {v}"))
}

fn num32(v: &Value, key: &str) -> u32 {
    u32::try_from(num(v, key)).unwrap()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("missing list {key}"))
}

fn find<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no entry named {name}"))
}

// ---------------------------------------------------------------------------------------------
// Primitives and the key schedule (spec sections 2, 8, 9).

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
    let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*public));
    shared.was_contributory().then(|| shared.to_bytes())
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac
}

fn chain_step(key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let derived = hmac(key, &[&[0x01]]).finalize().into_bytes().into();
    let next = hmac(key, &[&[0x02]]).finalize().into_bytes().into();
    (derived, next)
}

fn split32(okm: &[u8]) -> ([u8; 32], [u8; 32]) {
    (
        okm[..32].try_into().unwrap(),
        okm[32..64].try_into().unwrap(),
    )
}

/// `RK_e, CK_e` from the parent's root key (stepping its child seed chain to `e`) and `D`.
fn derive_epoch(parent_root: &[u8; 32], parent: u32, epoch: u32, dh: &[u8; 32]) -> Derived {
    let mut seed = *parent_root;
    for _ in 0..(epoch - parent - 1) / 2 {
        seed = chain_step(&seed).1;
    }
    let salt = chain_step(&seed).0;
    let (root, chain) = epoch_keys(&salt, parent, epoch, dh);
    Derived {
        seed,
        salt,
        root,
        chain,
    }
}

/// Spec 9.3: `(RK_e, CK_e)` from the child salt `C_e` and `D`.
fn epoch_keys(salt: &[u8; 32], p: u32, e: u32, dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let info = [LABEL_EPOCH, &e.to_be_bytes(), &p.to_be_bytes()].concat();
    split32(&hkdf(salt, dh, &info, 64))
}

struct Derived {
    seed: [u8; 32],
    salt: [u8; 32],
    root: [u8; 32],
    chain: [u8; 32],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Keys {
    aes: [u8; 32],
    mac: [u8; 32],
    nonce: [u8; 12],
}

fn message_keys(message_key: &[u8; 32]) -> Keys {
    let mut okm = [0u8; 76];
    Hkdf::<Sha256>::from_prk(message_key)
        .unwrap()
        .expand(LABEL_MESSAGE, &mut okm)
        .unwrap();
    Keys {
        aes: okm[..32].try_into().unwrap(),
        mac: okm[32..64].try_into().unwrap(),
        nonce: okm[64..].try_into().unwrap(),
    }
}

fn keys_of(v: &Value) -> Keys {
    Keys {
        aes: b32(v, "aes_key"),
        mac: b32(v, "mac_key"),
        nonce: bytes(v, "nonce").try_into().unwrap(),
    }
}

fn gcm_seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).unwrap();
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into())
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

fn gcm_open(key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).unwrap();
    let (body, tag) = sealed.split_at(sealed.len().checked_sub(16)?);
    let mut buf = body.to_vec();
    let tag = Tag::<Aes256Gcm>::try_from(tag).unwrap();
    cipher
        .decrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into(), &tag)
        .ok()
        .map(|()| buf)
}

fn fingerprint(key_bytes: &[u8]) -> String {
    let mut hash = Sha512::new()
        .chain_update(LABEL_FINGERPRINT)
        .chain_update(key_bytes)
        .finalize();
    for _ in 0..FINGERPRINT_ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(key_bytes)
            .finalize();
    }
    hash[..30]
        .chunks(5)
        .map(|c| c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000)
        .map(|group| format!("{group:05}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Padding (spec 10.2).

fn padme(x: usize) -> usize {
    if x < 2 {
        return x;
    }
    let e = x.ilog2();
    let s = e.ilog2() + 1;
    let mask = (1usize << (e - s)) - 1;
    (x + mask) & !mask
}

fn pad_len(plaintext_len: usize) -> usize {
    padme(plaintext_len + 1).max(MIN_PADDED)
}

fn unpad(padded: &[u8]) -> Option<&[u8]> {
    let end = padded.iter().rposition(|b| *b != 0)?;
    (padded[end] == 0x80).then(|| &padded[..end])
}

// ---------------------------------------------------------------------------------------------
// Wire format (spec 3, 7.3, 10.1): an encoder and a strictly canonical decoder.

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// Reads a varint; with `strict`, rejects overlong encodings and values over `max`.
fn read_varint(bytes: &[u8], pos: &mut usize, max: u64, strict: bool) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(*pos + i)?;
        value |= u64::from(byte & 0x7F).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            if strict && ((i > 0 && byte == 0) || value > max) {
                return None;
            }
            *pos += i + 1;
            return Some(value);
        }
    }
    None
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Header {
    kind: u8,
    session_id: [u8; 16],
    epoch: u32,
    parent: u32,
    counter: u32,
    previous: Option<(u32, u32)>,
    ratchet_key: [u8; 32],
    setup: Option<Setup>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Setup {
    base_key: [u8; 32],
    signed_prekey_id: u32,
    one_time_prekey_id: Option<u32>,
    sealed_identity: Vec<u8>,
}

fn encode_header(h: &Header) -> Vec<u8> {
    let mut out = vec![1, 1, h.kind];
    out.extend_from_slice(&h.session_id);
    for field in [h.epoch, h.parent, h.counter] {
        out.extend(varint(field.into()));
    }
    match h.previous {
        Some((epoch, length)) => {
            out.push(1);
            out.extend(varint(epoch.into()));
            out.extend(varint(length.into()));
        }
        None => out.push(0),
    }
    out.extend_from_slice(&h.ratchet_key);
    if let Some(s) = &h.setup {
        out.extend_from_slice(&s.base_key);
        out.extend(varint(s.signed_prekey_id.into()));
        match s.one_time_prekey_id {
            Some(id) => {
                out.push(1);
                out.extend(varint(id.into()));
            }
            None => out.push(0),
        }
        out.extend_from_slice(&s.sealed_identity);
    }
    out
}

/// Byte ranges of the header fields, for locating mutations.
fn header_fields(h: &Header) -> Vec<(&'static str, Range<usize>)> {
    let vl = |v: u32| varint(v.into()).len();
    let previous = h.previous.map_or(1, |(e, l)| 1 + vl(e) + vl(l));
    let mut lens = vec![
        ("session_id", 16),
        ("epoch", vl(h.epoch)),
        ("parent", vl(h.parent)),
        ("counter", vl(h.counter)),
        ("previous", previous),
        ("ratchet_key", 32),
    ];
    if let Some(s) = &h.setup {
        let opk = s.one_time_prekey_id.map_or(1, |id| 1 + vl(id));
        lens.extend([
            ("base_key", 32),
            ("signed_prekey_id", vl(s.signed_prekey_id)),
            ("one_time_prekey_id", opk),
            ("sealed_identity", 144),
        ]);
    }
    let mut start = 3;
    lens.into_iter()
        .map(|(name, len)| {
            start += len;
            (name, start - len..start)
        })
        .collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let out = self.bytes.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        read_varint(self.bytes, &mut self.pos, u32::MAX.into(), true).map(|v| v as u32)
    }
    fn tag(&mut self) -> Option<bool> {
        match self.take(1)?[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// Decodes a header canonically; returns it and its length.
fn decode_header(bytes: &[u8]) -> Option<(Header, usize)> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(2)? != [1, 1] {
        return None;
    }
    let kind = u8::try_from(r.u32()?).ok().filter(|k| *k <= 1)?;
    let session_id = r.array()?;
    let (epoch, parent, counter) = (r.u32()?, r.u32()?, r.u32()?);
    let previous = match r.tag()? {
        true => Some((r.u32()?, r.u32()?)),
        false => None,
    };
    let ratchet_key = r.array()?;
    let setup = match kind {
        0 => Some(Setup {
            base_key: r.array()?,
            signed_prekey_id: r.u32()?,
            one_time_prekey_id: if r.tag()? { Some(r.u32()?) } else { None },
            sealed_identity: r.take(144)?.to_vec(),
        }),
        _ => None,
    };
    let header = Header {
        kind,
        session_id,
        epoch,
        parent,
        counter,
        previous,
        ratchet_key,
        setup,
    };
    Some((header, r.pos))
}

struct Envelope<'a> {
    header: Header,
    header_bytes: &'a [u8],
    /// AES-GCM output (ciphertext ‖ GCM tag), without its length prefix.
    ciphertext: &'a [u8],
    ciphertext_start: usize,
    tag: &'a [u8],
}

/// Framing checks of spec 11.2 steps 1-4, with the error class on failure.
fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, &'static str> {
    if bytes.len() > MAX_ENVELOPE {
        return Err("too_large");
    }
    match bytes {
        [] | [_] => return Err("malformed"),
        [v, ..] if *v != 1 => return Err("unsupported_version"),
        [_, s, ..] if *s != 1 => return Err("unsupported_suite"),
        _ => {}
    }
    let (header, header_len) = decode_header(bytes).ok_or("malformed")?;
    let mut pos = header_len;
    let len = read_varint(bytes, &mut pos, u32::MAX.into(), true).ok_or("malformed")? as usize;
    let ciphertext = bytes.get(pos..pos + len).ok_or("malformed")?;
    let tag = &bytes[pos + len..];
    let padded = len.checked_sub(16).ok_or("malformed")?;
    if tag.len() != 32 || padded < MIN_PADDED || padme(padded) != padded {
        return Err("malformed");
    }
    Ok(Envelope {
        header,
        header_bytes: &bytes[..header_len],
        ciphertext,
        ciphertext_start: pos,
        tag,
    })
}

/// Spec 11.1 step 5: `header ‖ varint(len) ‖ AES-GCM(padded) ‖ HMAC` (deterministic).
fn seal_envelope(header: &[u8], keys: &Keys, ad: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut padded = plaintext.to_vec();
    padded.push(0x80);
    padded.resize(pad_len(plaintext.len()), 0);
    let ciphertext = gcm_seal(&keys.aes, &keys.nonce, &[header, ad].concat(), &padded);
    let tag = hmac(&keys.mac, &[header, ad, &keys.nonce, &ciphertext])
        .finalize()
        .into_bytes();
    [header, &varint(ciphertext.len() as u64), &ciphertext, &tag].concat()
}

/// Spec 11.2 step 10: HMAC first (constant time), then AES-GCM, then unpadding.
fn open(env: &Envelope<'_>, keys: &Keys, ad: &[u8; 32]) -> Result<Vec<u8>, &'static str> {
    hmac(
        &keys.mac,
        &[env.header_bytes, ad, &keys.nonce, env.ciphertext],
    )
    .verify_slice(env.tag)
    .map_err(|_| "decrypt_failed")?;
    let aad = [env.header_bytes, ad].concat();
    let padded = gcm_open(&keys.aes, &keys.nonce, &aad, env.ciphertext).ok_or("decrypt_failed")?;
    unpad(&padded).map(<[u8]>::to_vec).ok_or("malformed")
}

/// The class of a public-API error, as the vectors name them.
fn class(error: &Error) -> &'static str {
    match error {
        Error::Malformed(_) => "malformed",
        Error::UnsupportedVersion(_) => "unsupported_version",
        Error::UnsupportedSuite(_) => "unsupported_suite",
        Error::TooLarge { .. } => "too_large",
        _ => "other",
    }
}

/// The envelope's framing and public header agree between this decoder and the public API.
fn check_public_header(envelope: &[u8]) {
    match (parse_envelope(envelope), EnvelopeHeader::parse(envelope)) {
        (Ok(mine), Ok(theirs)) => {
            assert_eq!(theirs.session_id().as_bytes(), &mine.header.session_id);
            assert_eq!(theirs.epoch(), mine.header.epoch);
            assert_eq!(theirs.counter(), mine.header.counter);
            let kind = if mine.header.kind == 0 {
                EnvelopeKind::Initial
            } else {
                EnvelopeKind::Message
            };
            assert_eq!(theirs.kind(), kind);
        }
        (Err(mine), Err(theirs)) => assert_eq!(mine, class(&theirs), "framing error class"),
        (mine, theirs) => panic!(
            "framing disagrees: this decoder {:?}, EnvelopeHeader::parse {theirs:?}",
            mine.err()
        ),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// identity.json, prekeys.json, padding.json

#[test]
fn identity_vectors() {
    let file = load("identity.json");
    assert_eq!(
        num(&file, "fingerprint_iterations"),
        FINGERPRINT_ITERATIONS as u64
    );
    let identities = list(&file, "identities");
    assert!(identities.len() >= 2);
    for id in identities {
        let name = text_of(id, "name");
        let signing = SigningKey::from_bytes(&b32(id, "signing_seed"));
        let signing_public = signing.verifying_key().to_bytes();
        assert_eq!(signing_public, b32(id, "signing_public"), "{name}");
        let agreement_public = x25519_public(&b32(id, "agreement_secret"));
        assert_eq!(agreement_public, b32(id, "agreement_public"), "{name}");
        let message = [LABEL_BINDING, &signing_public, &agreement_public].concat();
        assert_eq!(message, bytes(id, "binding_message"), "{name}");
        let signature = signing.sign(&message).to_bytes();
        assert_eq!(signature.to_vec(), bytes(id, "binding_signature"), "{name}");
        VerifyingKey::from_bytes(&signing_public)
            .unwrap()
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .unwrap();
        let encoded = [&signing_public[..], &agreement_public, &signature].concat();
        assert_eq!(encoded, bytes(id, "public_identity"), "{name}");
        let public = PublicIdentity::from_bytes(&encoded).unwrap();
        assert_eq!(public.signing_key(), &signing_public);
        assert_eq!(public.agreement_key(), &agreement_public);
        let mut forged = encoded.clone();
        forged[100] ^= 1;
        assert!(
            PublicIdentity::from_bytes(&forged).is_err(),
            "{name}: forged binding"
        );
        let digits = fingerprint(&encoded[..64]);
        assert_eq!(digits.len(), 30);
        assert_eq!(digits, text_of(id, "fingerprint"), "{name}");
    }
    let pairs = list(&file, "safety_numbers");
    assert!(!pairs.is_empty());
    for pair in pairs {
        let names: Vec<&str> = pair["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let [a, b] = [find(identities, names[0]), find(identities, names[1])];
        let (fa, fb) = (text_of(a, "fingerprint"), text_of(b, "fingerprint"));
        let expected = if fa <= fb { [fa, fb] } else { [fb, fa] }.concat();
        assert_eq!(expected.len(), 60);
        assert_eq!(text_of(pair, "safety_number"), expected, "{names:?}");
        let pa = PublicIdentity::from_bytes(&bytes(a, "public_identity")).unwrap();
        let pb = PublicIdentity::from_bytes(&bytes(b, "public_identity")).unwrap();
        assert_eq!(pa.safety_number(&pb).digits(), expected);
        assert_eq!(pb.safety_number(&pa).digits(), expected);
    }
}

#[test]
fn prekey_vectors() {
    let file = load("prekeys.json");
    let identities = load("identity.json");
    let owner = find(list(&identities, "identities"), text_of(&file, "owner"));
    assert_eq!(
        bytes(&file, "owner_public_identity"),
        bytes(owner, "public_identity")
    );
    let identity = bytes(owner, "public_identity");
    let signing = SigningKey::from_bytes(&b32(owner, "signing_seed"));

    let spk = &file["signed_prekey"];
    let (id, created_at) = (num32(spk, "id"), num(spk, "created_at"));
    let public = x25519_public(&b32(spk, "secret"));
    assert_eq!(public, b32(spk, "public"));
    let message = [
        LABEL_SIGNED_PREKEY,
        &id.to_be_bytes(),
        &created_at.to_be_bytes(),
        &public,
    ]
    .concat();
    assert_eq!(message, bytes(spk, "signed_message"));
    let signature = signing.sign(&message).to_bytes();
    assert_eq!(signature.to_vec(), bytes(spk, "signature"));
    signing
        .verifying_key()
        .verify_strict(&message, &Signature::from_bytes(&signature))
        .unwrap();

    let opk = &file["one_time_prekey"];
    let opk_public = x25519_public(&b32(opk, "secret"));
    assert_eq!(opk_public, b32(opk, "public"));

    let prefix = [
        &identity[..],
        &varint(id.into()),
        &public,
        &varint(created_at),
        &signature,
    ]
    .concat();
    let with = [&prefix[..], &[1], &varint(num(opk, "id")), &opk_public].concat();
    let without = [&prefix[..], &[0]].concat();
    assert_eq!(with, bytes(&file, "bundle_with_one_time_prekey"));
    assert_eq!(without, bytes(&file, "bundle_without_one_time_prekey"));
    for (encoded, one_time) in [(&with, true), (&without, false)] {
        let bundle = PrekeyBundle::from_bytes(encoded).unwrap();
        assert_eq!(bundle.identity.to_bytes().to_vec(), identity);
        assert_eq!(bundle.signed_prekey.id, id);
        assert_eq!(bundle.signed_prekey.public_key, public);
        assert_eq!(bundle.signed_prekey.created_at.as_unix_secs(), created_at);
        assert_eq!(bundle.signed_prekey.signature, signature);
        assert_eq!(bundle.one_time_prekey.is_some(), one_time);
        if let Some(o) = &bundle.one_time_prekey {
            assert_eq!((o.id, o.public_key), (num32(opk, "id"), opk_public));
        }
        bundle
            .verify(
                &BundlePolicy::default(),
                Timestamp::from_unix_secs(created_at),
            )
            .unwrap();
    }
}

#[test]
fn padding_vectors() {
    let file = load("padding.json");
    assert_eq!(num(&file, "min_padded_length") as usize, MIN_PADDED);
    assert_eq!(sealwire_core::MIN_PADDED_LEN, MIN_PADDED);
    let lengths = list(&file, "lengths");
    let wanted = [0, 1, 31, 32, 33, 100, 1000, 1025, 4096, 65535];
    let listed: Vec<u64> = lengths.iter().map(|l| num(l, "plaintext_length")).collect();
    assert_eq!(listed, wanted);
    for entry in lengths {
        let n = num(entry, "plaintext_length") as usize;
        let padded = num(entry, "padded_length") as usize;
        assert_eq!(pad_len(n), padded, "padded length of {n}");
        assert_eq!(padded_len(n), padded, "sealwire_core::padded_len({n})");
        assert!(padded > n && padded <= 65_536);
    }
    for example in list(&file, "examples") {
        let plaintext = bytes(example, "plaintext");
        let padded = bytes(example, "padded");
        assert_eq!(padded.len(), pad_len(plaintext.len()));
        let mut expected = plaintext.clone();
        expected.push(0x80);
        expected.resize(padded.len(), 0);
        assert_eq!(padded, expected);
        assert_eq!(unpad(&padded), Some(&plaintext[..]));
    }
}

// ---------------------------------------------------------------------------------------------
// setup.json

#[test]
fn setup_vectors() {
    let file = load("setup.json");
    let identities = load("identity.json");
    let prekeys = load("prekeys.json");
    let cases = list(&file, "cases");
    assert_eq!(cases.len(), 2);
    let mut one_time_seen = BTreeSet::new();
    for case in cases {
        let name = text_of(case, "name");
        let (a, b) = (&case["initiator"], &case["responder"]);
        for party in [a, b] {
            let reference = find(list(&identities, "identities"), text_of(party, "name"));
            for key in ["signing_seed", "agreement_secret", "public_identity"] {
                assert_eq!(party[key], reference[key], "{name}: {key}");
            }
        }
        let spk = &case["signed_prekey"];
        assert_eq!(spk["id"], prekeys["signed_prekey"]["id"]);
        assert_eq!(spk["secret"], prekeys["signed_prekey"]["secret"]);
        let spk_public = x25519_public(&b32(spk, "secret"));
        assert_eq!(spk_public, b32(spk, "public"));
        let opk = (!case["one_time_prekey"].is_null()).then(|| &case["one_time_prekey"]);
        let expected_name = if opk.is_some() {
            "with_one_time_prekey"
        } else {
            "without_one_time_prekey"
        };
        assert_eq!(name, expected_name);
        // The bundle was valid when the initiator used it.
        let time = num(case, "time");
        let created_at = num(&prekeys["signed_prekey"], "created_at");
        assert!(
            time >= created_at && time - created_at <= 90 * 24 * 60 * 60,
            "{name}: time"
        );
        one_time_seen.insert(opk.is_some());
        let opk_public = opk.map(|o| {
            assert_eq!(o["secret"], prekeys["one_time_prekey"]["secret"]);
            assert_eq!(o["id"], prekeys["one_time_prekey"]["id"]);
            let public = x25519_public(&b32(o, "secret"));
            assert_eq!(public, b32(o, "public"));
            public
        });
        let ek = b32(&case["base_key"], "secret");
        let ek_public = x25519_public(&ek);
        assert_eq!(ek_public, b32(&case["base_key"], "public"));
        let id_a = bytes(a, "public_identity");
        let id_b = bytes(b, "public_identity");
        let (keys_a, keys_b) = (&id_a[..64], &id_b[..64]);
        let x_b: [u8; 32] = id_b[32..64].try_into().unwrap();
        let sid = bytes(case, "session_id");
        assert_eq!(sid.len(), 16);

        // 8.1: the four DH outputs.
        let dh1 = x25519(&b32(a, "agreement_secret"), &spk_public).unwrap();
        let dh2 = x25519(&ek, &x_b).unwrap();
        let dh3 = x25519(&ek, &spk_public).unwrap();
        let dh4 = opk.map(|o| x25519(&ek, &b32(o, "public")).unwrap());
        assert_eq!(dh1, b32(case, "dh1"), "{name}: DH1");
        assert_eq!(dh2, b32(case, "dh2"), "{name}: DH2");
        assert_eq!(dh3, b32(case, "dh3"), "{name}: DH3");
        assert_eq!(
            case["dh4"],
            dh4.map_or(Value::Null, |d| hex::encode(d).into())
        );
        // The responder computes the same outputs from its side.
        let id_a_x: [u8; 32] = id_a[32..64].try_into().unwrap();
        assert_eq!(x25519(&b32(spk, "secret"), &id_a_x), Some(dh1));
        assert_eq!(x25519(&b32(b, "agreement_secret"), &ek_public), Some(dh2));

        // 8.3: the sealed identity.
        let seal = &case["identity_seal"];
        let ikm = [&dh2[..], &dh3, dh4.as_ref().map_or(&[][..], |d| d)].concat();
        let info = [LABEL_SEAL, &ek_public, keys_b, &spk_public].concat();
        assert_eq!(ikm, bytes(seal, "ikm"));
        assert_eq!(info, bytes(seal, "info"));
        let okm = hkdf(&[0; 32], &ikm, &info, 44);
        assert_eq!(okm[..32], bytes(seal, "key")[..]);
        assert_eq!(okm[32..], bytes(seal, "nonce")[..]);
        assert_eq!(bytes(seal, "plaintext"), id_a);
        let sealed = gcm_seal(&okm[..32], &okm[32..], &[], &id_a);
        assert_eq!(sealed.len(), 144);
        assert_eq!(sealed, bytes(seal, "sealed"), "{name}: sealed identity");
        assert_eq!(
            gcm_open(&okm[..32], &okm[32..], &[], &sealed),
            Some(id_a.clone())
        );

        // 8.4, 8.5: transcript, setup root, session AD.
        let one_time_part = match (opk, opk_public) {
            (Some(o), Some(public)) => {
                [&[1u8][..], &num32(o, "id").to_be_bytes(), &public].concat()
            }
            _ => vec![0],
        };
        let transcript = [
            keys_a,
            keys_b,
            &num32(spk, "id").to_be_bytes(),
            &spk_public,
            &one_time_part,
            &ek_public,
            &sid,
        ]
        .concat();
        assert_eq!(transcript, bytes(case, "transcript"), "{name}: transcript");
        let root_ikm = [&[0xFF; 32][..], &dh1, &ikm].concat();
        let root_info = [LABEL_ROOT, &transcript].concat();
        assert_eq!(root_ikm, bytes(case, "root_ikm"));
        assert_eq!(root_info, bytes(case, "root_info"));
        let root: [u8; 32] = hkdf(&[0; 32], &root_ikm, &root_info, 32)
            .try_into()
            .unwrap();
        assert_eq!(root, b32(case, "setup_root"), "{name}: setup root");
        let ad: [u8; 32] = Sha256::digest([LABEL_AD, keys_a, keys_b].concat()).into();
        assert_eq!(ad, b32(case, "session_ad"), "{name}: session AD");

        // 9.7: epoch 1, a child of epoch 0 (root RK_setup, ratchet key SPK), with EK.
        let e1 = &case["epoch_1"];
        let derived = derive_epoch(&root, 0, 1, &dh3);
        assert_eq!(x25519(&ek, &spk_public), Some(dh3));
        assert_eq!(derived.seed, b32(e1, "child_seed"));
        assert_eq!(derived.salt, b32(e1, "child_salt"));
        assert_eq!(dh3, b32(e1, "dh"));
        assert_eq!(derived.root, b32(e1, "epoch_root"));
        assert_eq!(derived.chain, b32(e1, "chain_key"));

        // 9.5, 10: the first envelope.
        let first = &case["first_message"];
        assert_eq!(b32(first, "chain_key"), derived.chain);
        let (mk, next) = chain_step(&derived.chain);
        assert_eq!(mk, b32(first, "message_key"));
        assert_eq!(next, b32(first, "next_chain_key"));
        let keys = message_keys(&mk);
        assert_eq!(keys, keys_of(first));
        let envelope = bytes(first, "envelope");
        let env = parse_envelope(&envelope).unwrap();
        let expected_header = Header {
            kind: 0,
            session_id: sid.clone().try_into().unwrap(),
            epoch: 1,
            parent: 0,
            counter: 0,
            previous: None,
            ratchet_key: ek_public,
            setup: Some(Setup {
                base_key: ek_public,
                signed_prekey_id: num32(spk, "id"),
                one_time_prekey_id: opk.map(|o| num32(o, "id")),
                sealed_identity: sealed.clone(),
            }),
        };
        assert_eq!(env.header, expected_header, "{name}: header fields");
        assert_eq!(encode_header(&expected_header), bytes(first, "header"));
        assert_eq!(env.header_bytes, &bytes(first, "header")[..]);
        let plaintext = bytes(first, "plaintext");
        assert_eq!(
            open(&env, &keys, &ad),
            Ok(plaintext.clone()),
            "{name}: open"
        );
        assert_eq!(
            seal_envelope(env.header_bytes, &keys, &ad, &plaintext),
            envelope,
            "{name}: seal"
        );
        let padded = num(first, "padded_length") as usize;
        assert_eq!(padded, pad_len(plaintext.len()));
        assert_eq!(env.ciphertext.len(), padded + 16);
        check_public_header(&envelope);
        for key in [&id_a[..32], &id_a[32..64], &id_b[..32], &id_b[32..64]] {
            assert!(
                !contains(&envelope, key),
                "{name}: an identity key is visible"
            );
        }
    }
    assert_eq!(
        one_time_seen.len(),
        2,
        "a case with and one without a one-time prekey"
    );
}

// ---------------------------------------------------------------------------------------------
// conversation.json: a model of both parties, sending side (9.4, 9.6, 11.1) and receiving side
// (11.2).

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Who {
    Initiator,
    Responder,
}

struct Config {
    rotate_after_messages: u32,
    rotate_after_secs: u64,
    max_forward_jump: u32,
    max_epoch_jump: u32,
    grace_secs: u64,
}

/// The child seed chain of one of a party's own epochs, receiving side.
#[derive(Clone)]
struct Children {
    next: u32,
    seed: [u8; 32],
    skipped: BTreeMap<u32, [u8; 32]>,
}

#[derive(Clone)]
struct OwnEpoch {
    private: [u8; 32],
    root: [u8; 32],
    children: Children,
}

#[derive(Clone)]
struct Receiving {
    parent: u32,
    ratchet_key: [u8; 32],
    chain: Option<[u8; 32]>,
    next: u32,
}

#[derive(Clone, Copy)]
struct Sending {
    epoch: u32,
    parent: u32,
    count: u32,
    started: u64,
    previous: Option<(u32, u32)>,
}

#[derive(Clone)]
struct Party {
    who: Who,
    own: BTreeMap<u32, OwnEpoch>,
    sending: Option<Sending>,
    /// Latest peer epoch: its number and the next child number of the sender's copy of its seed
    /// chain (9.4).
    latest: Option<(u32, u32)>,
    receiving: BTreeMap<u32, Receiving>,
    /// Root keys of the peer's epochs as this party derived them (the parents of its own).
    peer_roots: BTreeMap<u32, [u8; 32]>,
    skipped: BTreeMap<(u32, u32), ([u8; 32], u64)>,
    opened_any: bool,
    delivered: Vec<usize>,
}

impl Party {
    fn owns(&self, epoch: u32) -> bool {
        (epoch % 2 == 1) == (self.who == Who::Initiator)
    }
}

/// The change an accepted envelope commits (11.2 step 11).
enum Change {
    UseSkipped,
    Advance([u8; 32], u32, Vec<(u32, [u8; 32])>),
    NewEpoch {
        parent_children: Children,
        record: Receiving,
        root: [u8; 32],
        skipped: Vec<(u32, [u8; 32])>,
    },
}

/// Skipped keys `(counter, MK)`, the message key and the next chain key.
type Walked = (Vec<(u32, [u8; 32])>, [u8; 32], [u8; 32]);

/// Steps a chain from counter `from` to `to`: the skipped keys, `MK_to` and the next chain key.
fn walk(chain: [u8; 32], from: u32, to: u32) -> Walked {
    let mut chain = chain;
    let mut skipped = Vec::new();
    for n in from..to {
        let (mk, next) = chain_step(&chain);
        skipped.push((n, mk));
        chain = next;
    }
    let (mk, next) = chain_step(&chain);
    (skipped, mk, next)
}

struct Session {
    config: Config,
    session_id: [u8; 16],
    ad: [u8; 32],
    setup_header: Option<Setup>,
}

/// Spec 11.2 on the model: the plaintext, or the error class, and the change to commit.
fn receive(
    s: &Session,
    party: &Party,
    envelope: &[u8],
    now: u64,
) -> Result<(Vec<u8>, Change), &'static str> {
    let env = parse_envelope(envelope)?;
    let h = &env.header;
    if h.session_id != s.session_id {
        return Err("wrong_session");
    }
    if h.kind == 0 {
        if party.who == Who::Initiator {
            return Err("unexpected_kind");
        }
        if h.setup != s.setup_header {
            return Err("decrypt_failed");
        }
    }
    let (e, n, cfg) = (h.epoch, h.counter, &s.config);
    if e == 0 || party.owns(e) {
        return Err("unknown_epoch");
    }
    let (message_key, change) = if let Some(r) = party.receiving.get(&e) {
        if r.parent != h.parent || r.ratchet_key != h.ratchet_key {
            return Err("decrypt_failed");
        }
        if n < r.next {
            match party.skipped.get(&(e, n)) {
                Some((_, stored)) if now - stored >= cfg.grace_secs => return Err("stale_message"),
                Some((key, _)) => (*key, Change::UseSkipped),
                None => return Err("replay"),
            }
        } else {
            let chain = r.chain.ok_or("stale_message")?;
            if n - r.next > cfg.max_forward_jump {
                return Err("too_far_ahead");
            }
            let (skipped, mk, next) = walk(chain, r.next, n);
            (mk, Change::Advance(next, n + 1, skipped))
        }
    } else {
        let parent = party.own.get(&h.parent).ok_or("unknown_epoch")?;
        if e <= h.parent {
            return Err("unknown_epoch");
        }
        let mut children = parent.children.clone();
        let salt = if e >= children.next {
            if (e - children.next) / 2 > cfg.max_epoch_jump {
                return Err("too_far_ahead");
            }
            let mut seed = children.seed;
            for skipped in (children.next..e).step_by(2) {
                let (salt, next) = chain_step(&seed);
                children.skipped.insert(skipped, salt);
                seed = next;
            }
            let (salt, next) = chain_step(&seed);
            (children.next, children.seed) = (e + 2, next);
            salt
        } else {
            // Skipped salts carry no timestamps in this model: the conversation stays within
            // the grace period.
            children.skipped.remove(&e).ok_or("stale_message")?
        };
        if n > cfg.max_forward_jump {
            return Err("too_far_ahead");
        }
        let dh = x25519(&parent.private, &h.ratchet_key).ok_or("decrypt_failed")?;
        let (root, chain) = epoch_keys(&salt, h.parent, e, &dh);
        let (skipped, mk, next) = walk(chain, 0, n);
        let record = Receiving {
            parent: h.parent,
            ratchet_key: h.ratchet_key,
            chain: Some(next),
            next: n + 1,
        };
        let change = Change::NewEpoch {
            parent_children: children,
            record,
            root,
            skipped,
        };
        (mk, change)
    };
    let plaintext = open(&env, &message_keys(&message_key), &s.ad)?;
    Ok((plaintext, change))
}

/// 11.2 step 11.
fn commit(s: &Session, party: &mut Party, header: &Header, change: Change, now: u64) {
    let e = header.epoch;
    match change {
        Change::UseSkipped => {
            party.skipped.remove(&(e, header.counter));
        }
        Change::Advance(chain, next, skipped) => {
            let r = party.receiving.get_mut(&e).unwrap();
            (r.chain, r.next) = (Some(chain), next);
            party
                .skipped
                .extend(skipped.into_iter().map(|(n, k)| ((e, n), (k, now))));
        }
        Change::NewEpoch {
            parent_children,
            record,
            root,
            skipped,
        } => {
            party.own.get_mut(&header.parent).unwrap().children = parent_children;
            party.receiving.insert(e, record);
            party.peer_roots.insert(e, root);
            party
                .skipped
                .extend(skipped.into_iter().map(|(n, k)| ((e, n), (k, now))));
            if party.latest.is_none_or(|(latest, _)| latest < e) {
                party.latest = Some((e, e + 1));
            }
        }
    }
    if let Some((q, len)) = header.previous
        && let Some(r) = party.receiving.get_mut(&q)
        && let Some(chain) = r.chain.take()
    {
        let end = len.min(r.next + s.config.max_forward_jump);
        if end > r.next {
            let (mut skipped, last, _) = walk(chain, r.next, end - 1);
            skipped.push((end - 1, last));
            party
                .skipped
                .extend(skipped.into_iter().map(|(n, k)| ((q, n), (k, now))));
            r.next = end;
        }
    }
    party.opened_any = true;
}

/// Everything the conversation file says, checked step by step.
struct Conversation {
    file: Value,
    session: Session,
    initiator: String,
    spk_secret: [u8; 32],
    setup_root: [u8; 32],
    base_key: [u8; 32],
    /// S and X of both identities, which no envelope may show.
    identity_keys: Vec<Vec<u8>>,
}

impl Conversation {
    fn load() -> Self {
        let file = load("conversation.json");
        let setup = load("setup.json");
        let case = find(list(&setup, "cases"), text_of(&file, "setup_case"));
        let c = &file["config"];
        // Spec section 14 defaults, with the two overrides README.md lists.
        let defaults = [
            ("rotate_after_messages", 3),
            ("rotate_after_secs", 86_400),
            ("max_forward_jump", 10),
            ("max_skipped_per_epoch", 1_000),
            ("max_skipped_total", 2_000),
            ("max_epoch_jump", 64),
            ("max_skipped_epochs", 16),
            ("max_receiving_epochs", 5),
            ("max_own_epochs", 32),
            ("grace_secs", 2_592_000),
        ];
        assert_eq!(
            c.as_object().unwrap().len(),
            defaults.len(),
            "config fields"
        );
        for (key, value) in defaults {
            assert_eq!(num(c, key), value, "config {key}");
        }
        let config = Config {
            rotate_after_messages: num32(c, "rotate_after_messages"),
            rotate_after_secs: num(c, "rotate_after_secs"),
            max_forward_jump: num32(c, "max_forward_jump"),
            max_epoch_jump: num32(c, "max_epoch_jump"),
            grace_secs: num(c, "grace_secs"),
        };
        assert_eq!(file["session_id"], case["session_id"]);
        assert_eq!(file["session_ad"], case["session_ad"]);
        assert_eq!(
            text_of(&file, "initiator"),
            text_of(&case["initiator"], "name")
        );
        assert_eq!(
            text_of(&file, "responder"),
            text_of(&case["responder"], "name")
        );
        let e0 = &file["epoch_0"];
        assert_eq!(text_of(e0, "owner"), text_of(&file, "responder"));
        assert_eq!(e0["ratchet_key"], case["signed_prekey"]["public"]);
        assert_eq!(e0["epoch_root"], case["setup_root"]);
        let first = &list(&file, "messages")[0];
        assert_eq!(first["envelope"], case["first_message"]["envelope"]);
        assert_eq!(first["time"], case["time"]);
        // Timeline steps are 10 seconds apart.
        let timeline = list(&file, "timeline");
        for (i, step) in timeline.iter().enumerate() {
            assert_eq!(num(step, "time"), num(&timeline[0], "time") + 10 * i as u64);
        }
        let env = bytes(first, "envelope");
        let setup_header = parse_envelope(&env).unwrap().header.setup;
        Conversation {
            session: Session {
                config,
                session_id: bytes(&file, "session_id").try_into().unwrap(),
                ad: b32(&file, "session_ad"),
                setup_header,
            },
            initiator: text_of(&file, "initiator").to_owned(),
            spk_secret: b32(&case["signed_prekey"], "secret"),
            setup_root: b32(case, "setup_root"),
            base_key: b32(&case["base_key"], "secret"),
            identity_keys: [&case["initiator"], &case["responder"]]
                .iter()
                .flat_map(|p| {
                    let id = bytes(p, "public_identity");
                    [id[..32].to_vec(), id[32..64].to_vec()]
                })
                .collect(),
            file,
        }
    }

    fn messages(&self) -> &Vec<Value> {
        list(&self.file, "messages")
    }

    fn timeline(&self) -> &Vec<Value> {
        list(&self.file, "timeline")
    }

    fn who(&self, name: &str) -> Who {
        if name == self.initiator {
            Who::Initiator
        } else {
            assert_eq!(name, text_of(&self.file, "responder"));
            Who::Responder
        }
    }

    /// Both parties after the first `steps` steps, every step checked on the way.
    fn run(&self, steps: usize) -> BTreeMap<Who, Party> {
        let spk_public = x25519_public(&self.spk_secret);
        let fresh = |who| Party {
            who,
            own: BTreeMap::new(),
            sending: None,
            latest: None,
            receiving: BTreeMap::new(),
            peer_roots: BTreeMap::new(),
            skipped: BTreeMap::new(),
            opened_any: false,
            delivered: Vec::new(),
        };
        let mut initiator = fresh(Who::Initiator);
        initiator.latest = Some((0, 1));
        initiator.peer_roots.insert(0, self.setup_root);
        let mut responder = fresh(Who::Responder);
        responder.own.insert(
            0,
            OwnEpoch {
                private: self.spk_secret,
                root: self.setup_root,
                children: Children {
                    next: 1,
                    seed: self.setup_root,
                    skipped: BTreeMap::new(),
                },
            },
        );
        let mut parties =
            BTreeMap::from([(Who::Initiator, initiator), (Who::Responder, responder)]);
        // Public ratchet keys and roots of every epoch, as the senders derived them.
        let mut epochs: BTreeMap<u32, ([u8; 32], [u8; 32])> =
            BTreeMap::from([(0, (spk_public, self.setup_root))]);
        let mut chains: BTreeMap<u32, ([u8; 32], u32)> = BTreeMap::new();
        let mut sealed = 0;
        for (index, step) in self.timeline()[..steps].iter().enumerate() {
            assert_eq!(num(step, "step") as usize, index);
            let time = num(step, "time");
            let who = self.who(text_of(step, "party"));
            let m = num(step, "message") as usize;
            let msg = &self.messages()[m];
            let party = parties.get_mut(&who).unwrap();
            if text_of(step, "action") == "seal" {
                assert_eq!(
                    m, sealed,
                    "step {index}: messages are numbered in sealing order"
                );
                sealed += 1;
                self.check_seal(party, msg, m, time, &mut epochs, &mut chains);
            } else {
                self.check_open(party, step, msg, m, time);
            }
        }
        parties
    }

    fn check_seal(
        &self,
        party: &mut Party,
        msg: &Value,
        m: usize,
        time: u64,
        epochs: &mut BTreeMap<u32, ([u8; 32], [u8; 32])>,
        chains: &mut BTreeMap<u32, ([u8; 32], u32)>,
    ) {
        let cfg = &self.session.config;
        assert_eq!(num(msg, "index") as usize, m);
        assert_eq!(num(msg, "time"), time, "m{m}: time");
        assert_eq!(self.who(text_of(msg, "sender")), party.who, "m{m}: sender");
        let (epoch, parent, counter) = (
            num32(msg, "epoch"),
            num32(msg, "parent"),
            num32(msg, "counter"),
        );
        let previous = (!msg["previous"].is_null()).then(|| {
            (
                num32(&msg["previous"], "epoch"),
                num32(&msg["previous"], "length"),
            )
        });
        let ratchet_key = b32(msg, "ratchet_key");
        // 9.6: when a new epoch starts; 9.4: its number.
        let new_epoch = match (party.sending, party.latest) {
            (None, _) => true,
            (Some(s), Some((latest, _))) => {
                latest != s.parent
                    || s.count >= cfg.rotate_after_messages
                    || time - s.started >= cfg.rotate_after_secs
            }
            (Some(_), None) => false,
        };
        assert_eq!(!msg["new_epoch"].is_null(), new_epoch, "m{m}: new epoch?");
        if new_epoch {
            let (p, next_child) = party.latest.expect("a parent to derive from");
            let own_last = party.own.keys().next_back().copied();
            let e = own_last.map_or(next_child, |l| next_child.max(l + 2));
            assert_eq!((epoch, parent, counter), (e, p, 0), "m{m}: epoch numbering");
            assert_eq!(
                previous,
                party.sending.map(|s| (s.epoch, s.count)),
                "m{m}: previous"
            );
            let ne = &msg["new_epoch"];
            let private = b32(ne, "ratchet_private");
            if e == 1 {
                assert_eq!(private, self.base_key, "epoch 1 uses the base key");
            }
            assert_eq!(x25519_public(&private), ratchet_key, "m{m}: ratchet key");
            let (parent_public, parent_root) = epochs[&p];
            // The sender's copy of the parent's root (derived when it received that epoch)
            // equals the parent owner's.
            assert_eq!(party.peer_roots[&p], parent_root, "m{m}: parent root");
            assert_eq!(b32(ne, "parent_ratchet_key"), parent_public);
            assert_eq!(b32(ne, "parent_root"), parent_root);
            let dh = x25519(&private, &parent_public).unwrap();
            assert_eq!(b32(ne, "dh"), dh, "m{m}: D");
            let d = derive_epoch(&parent_root, p, e, &dh);
            assert_eq!(b32(ne, "child_seed"), d.seed, "m{m}: child seed");
            assert_eq!(b32(ne, "child_salt"), d.salt, "m{m}: child salt");
            assert_eq!(b32(ne, "epoch_root"), d.root, "m{m}: epoch root");
            assert_eq!(b32(ne, "chain_key"), d.chain, "m{m}: chain key");
            epochs.insert(e, (ratchet_key, d.root));
            chains.insert(e, (d.chain, 0));
            let children = Children {
                next: e + 1,
                seed: d.root,
                skipped: BTreeMap::new(),
            };
            party.own.insert(
                e,
                OwnEpoch {
                    private,
                    root: d.root,
                    children,
                },
            );
            party.latest = Some((p, e + 2));
            party.sending = Some(Sending {
                epoch: e,
                parent: p,
                count: 0,
                started: time,
                previous,
            });
        }
        let sending = party.sending.as_mut().unwrap();
        assert_eq!(
            (epoch, parent, counter, previous),
            (
                sending.epoch,
                sending.parent,
                sending.count,
                sending.previous
            ),
            "m{m}: header position"
        );
        assert_eq!(party.own[&epoch].root, epochs[&epoch].1);
        sending.count += 1;
        // 9.5: the chain step and message keys.
        let (chain, n) = chains[&epoch];
        assert_eq!(n, counter);
        assert_eq!(b32(msg, "chain_key"), chain, "m{m}: chain key");
        let (mk, next) = chain_step(&chain);
        chains.insert(epoch, (next, n + 1));
        assert_eq!(b32(msg, "message_key"), mk, "m{m}: message key");
        let keys = message_keys(&mk);
        assert_eq!(keys_of(msg), keys, "m{m}: message keys");
        // 10.1: the header and envelope.
        let initial = party.who == Who::Initiator && !party.opened_any;
        assert_eq!(
            text_of(msg, "kind"),
            if initial { "initial" } else { "message" }
        );
        let envelope = bytes(msg, "envelope");
        let env = parse_envelope(&envelope).unwrap();
        let expected = Header {
            kind: u8::from(!initial),
            session_id: self.session.session_id,
            epoch,
            parent,
            counter,
            previous,
            ratchet_key,
            setup: if initial {
                self.session.setup_header.clone()
            } else {
                None
            },
        };
        assert_eq!(env.header, expected, "m{m}: header");
        assert_eq!(
            encode_header(&expected),
            bytes(msg, "header"),
            "m{m}: header bytes"
        );
        let plaintext = bytes(msg, "plaintext");
        assert_eq!(
            open(&env, &keys, &self.session.ad),
            Ok(plaintext.clone()),
            "m{m}"
        );
        assert_eq!(
            seal_envelope(env.header_bytes, &keys, &self.session.ad, &plaintext),
            envelope,
            "m{m}: seal"
        );
        assert_eq!(num(msg, "padded_length") as usize, pad_len(plaintext.len()));
        assert_eq!(env.ciphertext.len(), pad_len(plaintext.len()) + 16);
        check_public_header(&envelope);
        for key in &self.identity_keys {
            assert!(
                !contains(&envelope, key),
                "m{m}: an identity key is visible"
            );
        }
    }

    fn check_open(&self, party: &mut Party, step: &Value, msg: &Value, m: usize, time: u64) {
        let accept = party.who == Who::Responder && !party.opened_any;
        assert_eq!(
            text_of(step, "action"),
            if accept { "accept" } else { "open" }
        );
        assert_ne!(self.who(text_of(msg, "sender")), party.who);
        let envelope = bytes(msg, "envelope");
        match receive(&self.session, party, &envelope, time) {
            Ok((plaintext, change)) => {
                assert_eq!(text_of(step, "result"), "ok", "open m{m}");
                assert_eq!(plaintext, bytes(msg, "plaintext"), "open m{m}");
                assert_eq!(bytes(step, "plaintext"), plaintext);
                let header = parse_envelope(&envelope).unwrap().header;
                commit(&self.session, party, &header, change, time);
                party.delivered.push(m);
            }
            Err(class) => {
                assert_eq!(text_of(step, "result"), class, "open m{m}");
                assert!(step.get("plaintext").is_none());
            }
        }
        assert_eq!(
            num(step, "skipped_keys_after") as usize,
            party.skipped.len(),
            "after open m{m}"
        );
    }
}

#[test]
fn conversation_vectors() {
    let conversation = Conversation::load();
    let timeline = conversation.timeline();
    let parties = conversation.run(timeline.len());
    let messages = conversation.messages();

    // The conversation has the properties it is meant to exercise.
    let senders: BTreeSet<&str> = messages.iter().map(|m| text_of(m, "sender")).collect();
    let epochs: BTreeSet<u64> = messages.iter().map(|m| num(m, "epoch")).collect();
    assert!(messages.len() >= 12 && senders.len() == 2 && epochs.len() >= 4);
    let seals = timeline.iter().filter(|s| s["action"] == "seal").count();
    assert_eq!(seals, messages.len(), "every message is sealed once");
    let opened: BTreeSet<usize> = parties.values().flat_map(|p| p.delivered.clone()).collect();
    assert_eq!(opened.len(), messages.len(), "every message is delivered");
    let rotations = messages.iter().filter(|m| {
        !m["new_epoch"].is_null() && !m["previous"].is_null() && {
            // The parent is unchanged: the new epoch is a sibling, not a turn.
            let previous = num(&m["previous"], "epoch");
            messages
                .iter()
                .any(|o| num(o, "epoch") == previous && o["parent"] == m["parent"])
        }
    });
    assert!(rotations.count() >= 2, "rotations while the peer is silent");
    let turns = messages.iter().filter(|m| {
        !m["new_epoch"].is_null()
            && messages
                .iter()
                .any(|o| o["sender"] != m["sender"] && num(o, "epoch") == num(m, "parent"))
            && num(m, "parent") != 0
    });
    assert!(turns.count() >= 2, "turns");
    let out_of_order = parties
        .values()
        .any(|p| p.delivered.windows(2).any(|w| w[0] > w[1]));
    assert!(out_of_order, "out-of-order delivery");
    let skipped_used = timeline.iter().any(|s| {
        let m = &messages[num(s, "message") as usize];
        s["action"] == "open"
            && s["result"] == "ok"
            && timeline.iter().any(|earlier| {
                num(earlier, "step") < num(s, "step")
                    && earlier["party"] == s["party"]
                    && earlier["result"] == "ok"
                    && messages[num(earlier, "message") as usize]["epoch"] == m["epoch"]
                    && num(&messages[num(earlier, "message") as usize], "counter")
                        > num(m, "counter")
            })
    });
    assert!(skipped_used, "a skipped key used later");
    assert!(timeline.iter().any(|s| s["result"] == "replay"), "a replay");
}

// ---------------------------------------------------------------------------------------------
// negative.json

#[test]
fn negative_vectors() {
    let file = load("negative.json");
    assert_eq!(text_of(&file, "conversation"), "conversation.json");
    let conversation = Conversation::load();
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
                    let mac = hmac(
                        &keys.mac,
                        &[
                            env.header_bytes,
                            &conversation.session.ad,
                            &keys.nonce,
                            env.ciphertext,
                        ],
                    );
                    assert!(mac.verify_slice(env.tag).is_ok(), "{name}: HMAC recomputed");
                    let aad = [env.header_bytes, &conversation.session.ad].concat();
                    assert!(gcm_open(&keys.aes, &keys.nonce, &aad, env.ciphertext).is_none());
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
                let mac = hmac(
                    &keys.mac,
                    &[
                        env.header_bytes,
                        &conversation.session.ad,
                        &keys.nonce,
                        env.ciphertext,
                    ],
                );
                assert!(mac.verify_slice(env.tag).is_ok(), "{name}: HMAC valid");
                let aad = [env.header_bytes, &conversation.session.ad].concat();
                let padded = gcm_open(&keys.aes, &keys.nonce, &aad, env.ciphertext).unwrap();
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
            assert_eq!(
                open(&env, &keys, &conversation.session.ad),
                Err("decrypt_failed"),
                "{name}"
            );
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
