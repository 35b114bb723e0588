//! Group encodings, hashes and seals built by hand from the primitives, which the generator
//! checks the real groups' output against, and the decoders it reads that output with.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use super::super::{RawKeys, secret};
use crate::group::Member;
use crate::group::control::{ControlBody, ControlWire, SignedCommit, WireSenderKey, WireSummary};
use crate::kdf::{self, LABEL_GROUP_SIGNATURE, LABEL_GROUP_STATE, MessageKeys};
use crate::padding;

/// The group message keys of a message key (label `sealwire/v1/group/message`).
pub(super) fn group_keys(message_key: &[u8; 32]) -> RawKeys {
    let keys = kdf::group_message_keys(&secret(message_key));
    RawKeys {
        aes_key: keys.aes_key,
        mac_key: keys.mac_key,
        nonce: keys.nonce,
    }
}

/// `keys` as the crate's own type.
pub(super) fn message_keys(keys: &RawKeys) -> MessageKeys {
    MessageKeys {
        aes_key: keys.aes_key,
        mac_key: keys.mac_key,
        nonce: keys.nonce,
    }
}

pub(super) fn verifying_key(signing_seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(signing_seed)
        .verifying_key()
        .to_bytes()
}

pub(super) fn varint(value: u64) -> Vec<u8> {
    crate::encoding::to_exact_vec(&value).unwrap()
}

pub(super) fn varint_len(value: u64) -> usize {
    varint(value).len()
}

pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// `LABEL ‖ group id ‖ be32(epoch) ‖ parent hash ‖ commit hash ‖ be32(n)
/// ‖ (identity ‖ role:u8 ‖ be32(since.epoch) ‖ be32(since.index))*`.
pub(super) fn state_hash_input(
    group_id: &[u8; 16],
    epoch: u32,
    parent_hash: &[u8; 32],
    commit_hash: &[u8; 32],
    members: &[Member],
) -> Vec<u8> {
    let count = u32::try_from(members.len()).unwrap();
    let mut input = [
        LABEL_GROUP_STATE,
        group_id,
        &epoch.to_be_bytes(),
        parent_hash,
        commit_hash,
        &count.to_be_bytes(),
    ]
    .concat();
    for member in members {
        input.extend_from_slice(&member.identity().to_bytes());
        input.push(member.role().wire());
        input.extend_from_slice(&member.since().epoch.to_be_bytes());
        input.extend_from_slice(&member.since().index.to_be_bytes());
    }
    input
}

/// The bytes a group envelope's signature covers: `LABEL ‖ S ‖ envelope without signature`.
pub(super) fn signature_input(state_hash: &[u8; 32], unsigned: &[u8]) -> Vec<u8> {
    [LABEL_GROUP_SIGNATURE, state_hash, unsigned].concat()
}

/// The HMAC input of a group envelope: `header ‖ S ‖ nonce ‖ ciphertext` (with its GCM tag).
pub(super) fn hmac_input(
    header: &[u8],
    state_hash: &[u8; 32],
    keys: &RawKeys,
    ciphertext: &[u8],
) -> Vec<u8> {
    [header, state_hash, &keys.nonce, ciphertext].concat()
}

/// The padded form of a plaintext.
pub(super) fn padded(plaintext: &[u8]) -> Vec<u8> {
    let mut padded = plaintext.to_vec();
    padding::pad_in_place(&mut padded, 0);
    padded
}

/// `header ‖ varint(len) ‖ AES-GCM(padded) ‖ HMAC ‖ Ed25519`, built by hand.
pub(super) fn seal_raw(
    header: &[u8],
    keys: &RawKeys,
    state_hash: &[u8; 32],
    signing_seed: &[u8; 32],
    padded: &[u8],
) -> Vec<u8> {
    let aad = [header, state_hash].concat();
    let mut ciphertext = padded.to_vec();
    let tag = Aes256Gcm::new(&keys.aes_key.into())
        .encrypt_inout_detached(
            &Nonce::from(keys.nonce),
            &aad,
            ciphertext.as_mut_slice().into(),
        )
        .unwrap();
    ciphertext.extend_from_slice(&tag);
    let unsigned = [header, &varint(ciphertext.len() as u64), &ciphertext].concat();
    let mac = kdf::hmac(
        &keys.mac_key,
        &[&hmac_input(header, state_hash, keys, &ciphertext)],
    );
    sign_envelope([unsigned, mac.to_vec()].concat(), state_hash, signing_seed)
}

/// Appends the Ed25519 signature of `unsigned` (an envelope without its signature).
pub(super) fn sign_envelope(
    unsigned: Vec<u8>,
    state_hash: &[u8; 32],
    signing_seed: &[u8; 32],
) -> Vec<u8> {
    let signature =
        SigningKey::from_bytes(signing_seed).sign(&signature_input(state_hash, &unsigned));
    [unsigned, signature.to_bytes().to_vec()].concat()
}

pub(super) fn decode_signed_commit(control: &[u8]) -> SignedCommit {
    match ControlWire::decode(control).unwrap().body {
        ControlBody::Commit(signed) => signed,
        _ => panic!("not a commit"),
    }
}

pub(super) fn decode_welcome(control: &[u8]) -> (WireSummary, SignedCommit) {
    match ControlWire::decode(control).unwrap().body {
        ControlBody::Welcome { parent, commit } => (parent, commit),
        _ => panic!("not a welcome"),
    }
}

pub(super) fn decode_sender_key(control: &[u8]) -> WireSenderKey {
    match ControlWire::decode(control).unwrap().body {
        ControlBody::SenderKey(key) => key,
        _ => panic!("not a sender key"),
    }
}
