//! Deterministic test vectors for `spec/vectors/`, and the tests that keep them in step with the
//! code.
//!
//! Every vector is built from fixed ChaCha20 seeds and fixed timestamps, through the real
//! protocol code (identities, accounts, sessions), with the intermediate values recomputed from
//! the recorded secrets by the crate's own key schedule and checked against the envelopes the
//! sessions produced. `vectors_match_files` compares the generated JSON with the files byte for
//! byte; with `SEALWIRE_WRITE_VECTORS=1` it writes them instead:
//!
//! ```text
//! SEALWIRE_WRITE_VECTORS=1 cargo test -p sealwire-core --lib vectors
//! ```
//!
//! `crates/core/tests/vectors/` checks the files independently, from the primitives alone.

mod conversation;
mod group;
mod keys;
mod negative;
mod setup;

use std::convert::Infallible;
use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use serde::Serialize;

use crate::error::Error;
use crate::secret::{DhKeyPair, Secret32};

/// Format version of every vector file.
const FILE_VERSION: u32 = 1;

/// Creation time of Bob's signed prekey (Unix seconds); everything else happens after it.
const T0: u64 = 1_780_000_000;

/// The command that regenerates every file.
const REGENERATE: &str = "SEALWIRE_WRITE_VECTORS=1 cargo test -p sealwire-core --lib vectors";

/// A seeded ChaCha20 RNG that records every byte it hands out, so that the secrets the protocol
/// code draws (prekeys, base keys, ratchet keys) can be written into the vectors.
struct Recorder {
    rng: ChaCha20Rng,
    drawn: Vec<u8>,
}

impl Recorder {
    fn new(seed: u64) -> Self {
        Recorder {
            rng: ChaCha20Rng::seed_from_u64(seed),
            drawn: Vec::new(),
        }
    }

    /// The bytes drawn since the last call.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.drawn)
    }

    /// The bytes drawn since the last call, which must be exactly one 32-byte secret.
    fn take32(&mut self) -> [u8; 32] {
        let drawn = self.take();
        drawn
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("expected one 32-byte draw, got {} bytes", drawn.len()))
    }
}

impl TryRng for Recorder {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let value = self.rng.next_u32();
        self.drawn.extend_from_slice(&value.to_le_bytes());
        Ok(value)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let value = self.rng.next_u64();
        self.drawn.extend_from_slice(&value.to_le_bytes());
        Ok(value)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.rng.fill_bytes(dst);
        self.drawn.extend_from_slice(dst);
        Ok(())
    }
}

impl TryCryptoRng for Recorder {}

/// Lower-case hex.
fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn secret(bytes: &[u8; 32]) -> Secret32 {
    Secret32::take(&mut bytes.clone())
}

fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    *DhKeyPair::from_secret(secret(private)).public()
}

fn x25519(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    let shared = DhKeyPair::from_secret(secret(private))
        .diffie_hellman(public)
        .expect("vector keys are contributory");
    *shared.expose()
}

/// The per-message keys, as plain bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RawKeys {
    aes_key: [u8; 32],
    mac_key: [u8; 32],
    nonce: [u8; 12],
}

/// One chain step: `(MK, CK')`.
fn chain_step(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let (message, next) = crate::kdf::chain_step(&secret(chain_key));
    (*message.expose(), *next.expose())
}

fn message_keys(message_key: &[u8; 32]) -> RawKeys {
    let keys = crate::kdf::message_keys(&secret(message_key));
    RawKeys {
        aes_key: keys.aes_key,
        mac_key: keys.mac_key,
        nonce: keys.nonce,
    }
}

/// Opens `envelope` with explicitly given keys (not through a session), so that the generator's
/// derivations are checked against what the sessions actually sealed.
fn open_with(envelope: &[u8], keys: &RawKeys, session_ad: &[u8; 32]) -> Vec<u8> {
    let parsed = crate::envelope::parse(envelope).expect("generated envelope parses");
    let keys = crate::kdf::MessageKeys {
        aes_key: keys.aes_key,
        mac_key: keys.mac_key,
        nonce: keys.nonce,
    };
    crate::envelope::open(&parsed, &keys, session_ad)
        .expect("the generator's derived keys open the envelope the session sealed")
}

/// The derivation of an epoch from its parent (see `epoch.rs`).
struct EpochStart {
    /// `S(p, e)`: the parent's child seed for this epoch.
    child_seed: [u8; 32],
    /// `C_e`, the HKDF salt.
    child_salt: [u8; 32],
    dh: [u8; 32],
    root: [u8; 32],
    chain_key: [u8; 32],
}

fn derive_epoch(
    parent: u32,
    parent_root: &[u8; 32],
    parent_public: &[u8; 32],
    number: u32,
    private: &[u8; 32],
) -> EpochStart {
    assert!(
        number > parent && (number - parent) % 2 == 1,
        "epoch {number} cannot be a child of {parent}"
    );
    let mut child_seed = *parent_root;
    for _ in 0..(number - parent - 1) / 2 {
        child_seed = chain_step(&child_seed).1;
    }
    let child_salt = chain_step(&child_seed).0;
    let dh = x25519(private, parent_public);
    let (root, chain_key) =
        crate::kdf::epoch_keys(&secret(&child_salt), &secret(&dh), number, parent);
    EpochStart {
        child_seed,
        child_salt,
        dh,
        root: *root.expose(),
        chain_key: *chain_key.expose(),
    }
}

/// The snake_case name of an error variant: the "error class" the vectors use.
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
        Error::WrongSession(_) => "wrong_session",
        Error::UnexpectedKind(_) => "unexpected_kind",
        Error::InvalidSignature(_) => "invalid_signature",
        Error::UnknownSignedPrekey(_) => "unknown_signed_prekey",
        Error::UnknownOneTimePrekey(_) => "unknown_one_time_prekey",
        Error::StalePrekey { .. } => "stale_prekey",
        Error::WeakKey => "weak_key",
        Error::PlaintextTooLarge { .. } => "plaintext_too_large",
        Error::InvalidConfig(_) => "invalid_config",
        Error::SessionExhausted => "session_exhausted",
        Error::PrekeyExhausted(_) => "prekey_exhausted",
        Error::InvalidState(_) => "invalid_state",
        Error::UnsupportedStateVersion(_) => "unsupported_state_version",
        Error::WrongGroup => "wrong_group",
        Error::EpochAhead { .. } => "epoch_ahead",
        Error::MissingSenderKey { .. } => "missing_sender_key",
        Error::NotAMember(_) => "not_a_member",
        Error::NotAuthorized(_) => "not_authorized",
        Error::InvalidChange(_) => "invalid_change",
        Error::UnknownParent { .. } => "unknown_parent",
        Error::SenderKeyConflict => "sender_key_conflict",
        Error::OtherBranch { .. } => "other_branch",
    }
}

/// Pretty JSON with a trailing newline.
fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("vector structs serialize");
    text.push('\n');
    text
}

/// Every vector file: its name in `spec/vectors/` and its exact contents.
fn generate() -> Vec<(&'static str, String)> {
    let conversation = conversation::generate();
    vec![
        ("identity.json", to_json(&keys::identity_file())),
        ("prekeys.json", to_json(&keys::prekeys_file())),
        ("setup.json", to_json(&setup::setup_file())),
        ("conversation.json", to_json(&conversation.file)),
        ("padding.json", to_json(&keys::padding_file())),
        (
            "negative.json",
            to_json(&negative::negative_file(&conversation)),
        ),
        ("group.json", to_json(&group::group_file())),
    ]
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors"))
}

/// Where two texts first differ, for the failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    format!(
        "first difference at line {} ({} lines generated, {} in the file)",
        line + 1,
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn vectors_match_files() {
    let dir = vectors_dir();
    let write = std::env::var("SEALWIRE_WRITE_VECTORS").is_ok_and(|v| v == "1");
    let generated = generate();
    if write {
        std::fs::create_dir_all(&dir).expect("create spec/vectors");
        for (name, text) in &generated {
            std::fs::write(dir.join(name), text).expect("write vector file");
        }
        return;
    }
    let mut problems = Vec::new();
    for (name, text) in &generated {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == *text => {}
            Ok(existing) => problems.push(format!(
                "spec/vectors/{name} differs from the generated vectors: {}",
                first_difference(text, &existing)
            )),
            Err(err) => problems.push(format!(
                "spec/vectors/{name} cannot be read ({}): {err}",
                path.display()
            )),
        }
    }
    // A JSON file the generator no longer writes is stale too (files generated by other
    // crates are listed here).
    // relay.json: sealwire-transport's relay_vectors; client.json: the facade's client_vectors.
    const OTHER_GENERATORS: &[&str] = &["relay.json", "client.json"];
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json")
                && !OTHER_GENERATORS.contains(&name.as_str())
                && !generated.iter().any(|(n, _)| *n == name)
            {
                problems.push(format!(
                    "spec/vectors/{name} is not produced by the generator: delete it"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the test vectors in spec/vectors/ do not match the code:\n  {}\n\
         If the protocol change is intended, regenerate every file with\n  {REGENERATE}\n\
         then review the diff (and update spec/vectors/README.md if a layout changed).",
        problems.join("\n  ")
    );
}

#[test]
fn generation_is_deterministic() {
    assert!(
        generate() == generate(),
        "two runs of the vector generator disagree: something draws unseeded randomness"
    );
}
