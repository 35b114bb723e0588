//! Primitives and the key schedule (spec sections 2, 8, 9), fingerprints (section 6) and padding
//! (section 10.2), written from the spec with the primitive crates alone.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::json::{b32, bytes};
use crate::{FINGERPRINT_ITERATIONS, LABEL_EPOCH, LABEL_FINGERPRINT, LABEL_MESSAGE, MIN_PADDED};

pub(crate) fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

pub(crate) fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
    let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*public));
    shared.was_contributory().then(|| shared.to_bytes())
}

pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac
}

pub(crate) fn chain_step(key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let derived = hmac(key, &[&[0x01]]).finalize().into_bytes().into();
    let next = hmac(key, &[&[0x02]]).finalize().into_bytes().into();
    (derived, next)
}

pub(crate) fn split32(okm: &[u8]) -> ([u8; 32], [u8; 32]) {
    (
        okm[..32].try_into().unwrap(),
        okm[32..64].try_into().unwrap(),
    )
}

/// `RK_e, CK_e` from the parent's root key (stepping its child seed chain to `e`) and `D`.
pub(crate) fn derive_epoch(
    parent_root: &[u8; 32],
    parent: u32,
    epoch: u32,
    dh: &[u8; 32],
) -> Derived {
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
pub(crate) fn epoch_keys(salt: &[u8; 32], p: u32, e: u32, dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let info = [LABEL_EPOCH, &e.to_be_bytes(), &p.to_be_bytes()].concat();
    split32(&hkdf(salt, dh, &info, 64))
}

pub(crate) struct Derived {
    pub(crate) seed: [u8; 32],
    pub(crate) salt: [u8; 32],
    pub(crate) root: [u8; 32],
    pub(crate) chain: [u8; 32],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Keys {
    pub(crate) aes: [u8; 32],
    pub(crate) mac: [u8; 32],
    pub(crate) nonce: [u8; 12],
}

pub(crate) fn message_keys(message_key: &[u8; 32]) -> Keys {
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

pub(crate) fn keys_of(v: &Value) -> Keys {
    Keys {
        aes: b32(v, "aes_key"),
        mac: b32(v, "mac_key"),
        nonce: bytes(v, "nonce").try_into().unwrap(),
    }
}

pub(crate) fn gcm_seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).unwrap();
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into())
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

pub(crate) fn gcm_open(key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
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

pub(crate) fn fingerprint(key_bytes: &[u8]) -> String {
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

pub(crate) fn padme(x: usize) -> usize {
    if x < 2 {
        return x;
    }
    let e = x.ilog2();
    let s = e.ilog2() + 1;
    let mask = (1usize << (e - s)) - 1;
    (x + mask) & !mask
}

pub(crate) fn pad_len(plaintext_len: usize) -> usize {
    padme(plaintext_len + 1).max(MIN_PADDED)
}

pub(crate) fn unpad(padded: &[u8]) -> Option<&[u8]> {
    let end = padded.iter().rposition(|b| *b != 0)?;
    (padded[end] == 0x80).then(|| &padded[..end])
}
