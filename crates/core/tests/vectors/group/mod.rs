//! `group.json`: every value re-derived from the listed secrets with the primitive crates alone
//! (rosters with roles and seniorities, state hashes, commit and control encodings, commit
//! hashes, Ed25519 signatures, sender keys, sender chains, group message keys, envelopes), then
//! the whole timeline and every negative vector replayed through the public API.
//!
//! - `codec`: the group wire formats (control messages, envelope header, envelope parser);
//! - `model`: rosters, seniorities, state hash input, and commits applied to a roster;
//! - `file`: the file loaded, and every recorded value re-derived;
//! - `replay`: the timeline through the public `Group` API, with a scripted RNG;
//! - `negative`: the negative vectors rebuilt from their bases and replayed.

mod codec;
mod file;
mod model;
mod negative;
mod replay;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sealwire_core::MemberRole;
use sha2::{Digest, Sha256};

use crate::LABEL_GROUP_MESSAGE;
use crate::primitives::Keys;

pub(crate) use negative::group_negative_vectors;
pub(crate) use replay::group_vectors;

/// Wire value of the admin role.
const ADMIN: u8 = 0;
/// Wire value of the member role.
const MEMBER: u8 = 1;

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

/// Strict Ed25519 verification.
fn verifies(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let signature = Signature::from_bytes(signature.try_into().unwrap());
    VerifyingKey::from_bytes(public)
        .unwrap()
        .verify_strict(message, &signature)
        .is_ok()
}

/// The wire value of a recorded role.
fn role_wire(role: &str) -> u8 {
    match role {
        "admin" => ADMIN,
        "member" => MEMBER,
        other => panic!("unknown role {other}"),
    }
}

/// The public API's role of a wire value.
fn role_of(wire: u8) -> MemberRole {
    match wire {
        ADMIN => MemberRole::Admin,
        MEMBER => MemberRole::Member,
        other => panic!("unknown role {other}"),
    }
}
