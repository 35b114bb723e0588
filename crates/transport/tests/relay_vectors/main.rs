#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Test vectors of the relay protocol: `spec/vectors/relay.json`.
//!
//! The file is generated here (`generate`, `gen_auth`, `gen_frames`) from fixed ChaCha20 seeds,
//! fixed nonces and a fixed `now`, through the public API of `sealwire-transport` and
//! `sealwire-core`. `relay_vectors_match_file` regenerates it and fails if the file differs by a
//! single byte; with `SEALWIRE_WRITE_VECTORS=1` it writes the file instead:
//!
//! ```text
//! SEALWIRE_WRITE_VECTORS=1 cargo test -p sealwire-transport --test relay_vectors
//! ```
//!
//! The other tests are the checker (`check_auth`, `check_frames`, `check_codes`): they read the
//! file, never the generator, and check every value through the public API (`frame::decode` /
//! `encode`, `auth::transcript`, `auth::respond`, `ServerAuth::verify`, `MailboxId::of`, the
//! code tables), and recompute what is cheap from the primitives alone (`primitives`: the
//! transcript, the application-signature input, Ed25519 with ed25519-dalek, the mailbox with
//! sha2, token tags with hmac), with the labels typed from the spec, so that a drift of a label
//! in the library is caught even if the file were regenerated.

mod check_auth;
mod check_codes;
mod check_frames;
mod gen_auth;
mod gen_frames;
mod gen_malformed;
mod generate;
mod primitives;

use std::path::PathBuf;

use serde_json::Value;

/// The command that regenerates the file.
pub(crate) const REGENERATE: &str =
    "SEALWIRE_WRITE_VECTORS=1 cargo test -p sealwire-transport --test relay_vectors";

pub(crate) fn vectors_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/vectors/relay.json"
    ))
}

/// Whether this run writes the file (`SEALWIRE_WRITE_VECTORS=1`) instead of comparing it.
pub(crate) fn write_mode() -> bool {
    std::env::var("SEALWIRE_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

/// The vector file, parsed. In write mode the file is written first (once, before any test
/// reads it), so that the checker runs on what was just generated.
pub(crate) fn load() -> Value {
    if write_mode() {
        generate::write_once();
    }
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).expect("relay.json is JSON")
}

/// Lower-case hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Parses lower-case hex (upper case, odd lengths and other characters are errors).
pub(crate) fn from_hex(text: &str) -> Vec<u8> {
    assert!(
        text.len().is_multiple_of(2)
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "not lower-case hex: {text:?}"
    );
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Accessors for the checker: a missing field or a wrong type fails the test with its path.
pub(crate) trait Field {
    fn at(&self, key: &str) -> &Value;
    fn str_at(&self, key: &str) -> &str;
    fn u64_at(&self, key: &str) -> u64;
    fn bool_at(&self, key: &str) -> bool;
    fn bytes_at(&self, key: &str) -> Vec<u8>;
    fn array_at<const N: usize>(&self, key: &str) -> [u8; N];
    fn list_at(&self, key: &str) -> &Vec<Value>;
    /// `null` is `None`.
    fn opt_str_at(&self, key: &str) -> Option<&str>;
    fn opt_bytes_at(&self, key: &str) -> Option<Vec<u8>>;
}

impl Field for Value {
    fn at(&self, key: &str) -> &Value {
        self.get(key)
            .unwrap_or_else(|| panic!("missing field {key:?} in {self}"))
    }

    fn str_at(&self, key: &str) -> &str {
        self.at(key)
            .as_str()
            .unwrap_or_else(|| panic!("{key:?} is not a string"))
    }

    fn u64_at(&self, key: &str) -> u64 {
        self.at(key)
            .as_u64()
            .unwrap_or_else(|| panic!("{key:?} is not an unsigned integer"))
    }

    fn bool_at(&self, key: &str) -> bool {
        self.at(key)
            .as_bool()
            .unwrap_or_else(|| panic!("{key:?} is not a boolean"))
    }

    fn bytes_at(&self, key: &str) -> Vec<u8> {
        from_hex(self.str_at(key))
    }

    fn array_at<const N: usize>(&self, key: &str) -> [u8; N] {
        let bytes = self.bytes_at(key);
        bytes
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("{key:?} has {} bytes, not {N}", bytes.len()))
    }

    fn list_at(&self, key: &str) -> &Vec<Value> {
        self.at(key)
            .as_array()
            .unwrap_or_else(|| panic!("{key:?} is not an array"))
    }

    fn opt_str_at(&self, key: &str) -> Option<&str> {
        match self.at(key) {
            Value::Null => None,
            value => Some(
                value
                    .as_str()
                    .unwrap_or_else(|| panic!("{key:?} is not a string or null")),
            ),
        }
    }

    fn opt_bytes_at(&self, key: &str) -> Option<Vec<u8>> {
        self.opt_str_at(key).map(from_hex)
    }
}

// ---------------------------------------------------------------------------------------------
// The generator (compares, or writes with SEALWIRE_WRITE_VECTORS=1).

#[test]
fn relay_vectors_match_file() {
    generate::match_or_write();
}

#[test]
fn generation_is_deterministic() {
    assert!(
        generate::generate() == generate::generate(),
        "two runs of the relay vector generator disagree: something draws unseeded randomness"
    );
}

// ---------------------------------------------------------------------------------------------
// The checker: reads relay.json only.

#[test]
fn file_header_and_labels() {
    check_codes::header_and_labels(&load());
}

#[test]
fn identities() {
    check_codes::identities(&load());
}

#[test]
fn authentication_accepted() {
    check_auth::accepted(&load());
}

#[test]
fn authentication_rejected() {
    check_auth::rejected(&load());
}

#[test]
fn frames_decode_to_their_fields_and_reencode() {
    check_frames::frames(&load());
}

#[test]
fn malformed_frames_are_rejected() {
    check_frames::malformed(&load());
}

#[test]
fn code_tables() {
    check_codes::codes(&load());
}
