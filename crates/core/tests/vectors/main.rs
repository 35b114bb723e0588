#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An independent check of `spec/vectors/`: every derived value is recomputed from the listed
//! inputs with the primitive crates alone (x25519-dalek, ed25519-dalek, hkdf, hmac, sha2,
//! aes-gcm), following `spec/sealwire.md`, the way a second implementation would. Nothing here
//! calls sealwire's internals; the public API is used only to cross-check decoding.
//!
//! The receive side is a small model implementation of spec section 11.2 (processing order,
//! epoch and chain derivation, skipped keys and salts, closing, replay): it opens every
//! delivery of the conversation and predicts the error class of every negative vector.
//!
//! This test target shares no code with the other test files (`security_support`) nor with
//! `src/`: it is a second implementation, and must stay one. Layout:
//!
//! - `json`: loading the vector files;
//! - `primitives`: the key schedule, fingerprints and padding;
//! - `codec`: the header codec, envelope framing, sealing and opening;
//! - `model`: the model of both parties and its receiving side;
//! - `identity`, `setup`, `conversation`, `negative`: the checks of each vector file;
//! - `group`: `group.json`, re-derived from the primitives (rosters, roles and seniorities from
//!   the commits), then replayed through the public group API (scripted RNG fed with the
//!   recorded draws), negative vectors included; its modules are listed in `group/mod.rs`.
//!
//! The tests are declared here, so that their names do not depend on the module layout.

mod codec;
mod conversation;
mod group;
mod identity;
mod json;
mod model;
mod negative;
mod primitives;
mod setup;

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
const LABEL_GROUP_MESSAGE: &[u8] = b"sealwire/v1/group/message";
const LABEL_GROUP_COMMIT: &[u8] = b"sealwire/v1/group/commit";
const LABEL_GROUP_COMMIT_HASH: &[u8] = b"sealwire/v1/group/commit-hash";
const LABEL_GROUP_STATE: &[u8] = b"sealwire/v1/group/state";
const LABEL_GROUP_SIGNATURE: &[u8] = b"sealwire/v1/group/signature";
const FINGERPRINT_ITERATIONS: usize = 5200;
const MAX_ENVELOPE: usize = 66_048;
const MIN_PADDED: usize = 32;

// ---------------------------------------------------------------------------------------------
// The tests, one per vector file.

#[test]
fn identity_vectors() {
    identity::identity_vectors();
}

#[test]
fn prekey_vectors() {
    identity::prekey_vectors();
}

#[test]
fn padding_vectors() {
    identity::padding_vectors();
}

#[test]
fn setup_vectors() {
    setup::setup_vectors();
}

#[test]
fn conversation_vectors() {
    conversation::conversation_vectors();
}

#[test]
fn negative_vectors() {
    negative::negative_vectors();
}

#[test]
fn group_vectors() {
    group::group_vectors();
}

#[test]
fn group_negative_vectors() {
    group::group_negative_vectors();
}
