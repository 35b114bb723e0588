//! The key schedule: every derivation of the protocol and every label it uses.
//!
//! | function | construction |
//! |---|---|
//! | setup root | `HKDF-SHA256(salt = 0^32, ikm = 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info = LABEL_SETUP_ROOT ‖ transcript)` → 32 bytes |
//! | identity seal | `HKDF-SHA256(salt = 0^32, ikm = DH2 ‖ DH3 [‖ DH4], info = LABEL_IDENTITY_SEAL ‖ EK ‖ S_B ‖ X_B ‖ SPK_B)` → key 32 ‖ nonce 12 |
//! | epoch | `HKDF-SHA256(salt = C_e, ikm = DH(epoch key, parent key), info = LABEL_EPOCH ‖ be32(e) ‖ be32(p))` → RK_e 32 ‖ CK_e 32, where `C_e` is the child salt from the parent's seed chain ([`crate::epoch`]) |
//! | chain step | `MK = HMAC-SHA256(CK, 0x01)`, `CK' = HMAC-SHA256(CK, 0x02)` |
//! | message keys | `HKDF-Expand(PRK = MK, info = LABEL_MESSAGE, 76)` → AES key 32 ‖ MAC key 32 ‖ nonce 12 |
//! | session AD | `SHA-256(LABEL_SESSION_AD ‖ S_A ‖ X_A ‖ S_B ‖ X_B)`: both identities' key bytes, initiator first |
//! | group message keys | `HKDF-Expand(PRK = MK, info = LABEL_GROUP_MESSAGE, 76)`, `MK` from the sender chain's chain step |
//! | group commit hash | `SHA-256(LABEL_GROUP_COMMIT_HASH ‖ commit bytes)` |
//! | group state hash | `SHA-256(LABEL_GROUP_STATE ‖ group id ‖ be32(epoch) ‖ parent hash ‖ commit hash ‖ be32(n) ‖ (identity ‖ role)*)` ([`crate::group`]) |
//!
//! `S_*` and `X_*` are an identity's Ed25519 and X25519 public keys (its 64 "key bytes").

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::Secret32;

/// Ed25519 signature context for binding an identity's X25519 key to its signing key.
pub(crate) const LABEL_IDENTITY_BINDING: &[u8] = b"sealwire/v1/identity-binding";
/// Ed25519 signature context for signed prekeys.
pub(crate) const LABEL_SIGNED_PREKEY: &[u8] = b"sealwire/v1/signed-prekey";
/// Ed25519 signature prefix for application-level signatures (`sign_with_label`).
pub(crate) const LABEL_APPLICATION: &[u8] = b"sealwire/v1/application";
/// Hash prefix for fingerprints (safety numbers).
pub(crate) const LABEL_FINGERPRINT: &[u8] = b"sealwire/v1/fingerprint";
/// HKDF info prefix for the key that seals the initiator's identity in an initial message.
pub(crate) const LABEL_IDENTITY_SEAL: &[u8] = b"sealwire/v1/setup/identity-seal";
/// HKDF info prefix for the session setup root key.
pub(crate) const LABEL_SETUP_ROOT: &[u8] = b"sealwire/v1/setup/root";
/// HKDF info prefix for an epoch's root and chain keys.
pub(crate) const LABEL_EPOCH: &[u8] = b"sealwire/v1/epoch";
/// HKDF info for a message's AES key, MAC key and nonce.
pub(crate) const LABEL_MESSAGE: &[u8] = b"sealwire/v1/message";
/// Hash prefix for the session associated data.
pub(crate) const LABEL_SESSION_AD: &[u8] = b"sealwire/v1/session-ad";
/// HKDF info for a group message's AES key, MAC key and nonce.
pub(crate) const LABEL_GROUP_MESSAGE: &[u8] = b"sealwire/v1/group/message";
/// Ed25519 signature prefix for a group commit (signed by the committer's identity key).
pub(crate) const LABEL_GROUP_COMMIT: &[u8] = b"sealwire/v1/group/commit";
/// Hash prefix for a commit's hash.
pub(crate) const LABEL_GROUP_COMMIT_HASH: &[u8] = b"sealwire/v1/group/commit-hash";
/// Hash prefix for a group epoch's state hash.
pub(crate) const LABEL_GROUP_STATE: &[u8] = b"sealwire/v1/group/state";
/// Ed25519 signature prefix for a group envelope (signed by the sender's epoch signing key).
pub(crate) const LABEL_GROUP_SIGNATURE: &[u8] = b"sealwire/v1/group/signature";

/// HMAC input byte for a message key.
const CHAIN_MESSAGE_BYTE: u8 = 0x01;
/// HMAC input byte for the next chain key.
const CHAIN_NEXT_BYTE: u8 = 0x02;

type HmacSha256 = Hmac<Sha256>;

/// HKDF-SHA256 extract-then-expand with a multi-part info, into `out`.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    // Output lengths are compile-time constants far below 255 * 32.
    if hk.expand_multi_info(info, out).is_err() {
        unreachable!("HKDF output length is a small constant");
    }
}

/// Root key of the setup epoch, from the X3DH-style key agreement.
///
/// `dh` is `DH1 ‖ DH2 ‖ DH3 [‖ DH4]` and `transcript` the public setup transcript.
pub(crate) fn setup_root(dh: &[u8], transcript: &[u8]) -> Secret32 {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 + dh.len()));
    ikm.extend_from_slice(&[0xFF; 32]);
    ikm.extend_from_slice(dh);
    let mut out = [0u8; 32];
    hkdf(&[0u8; 32], &ikm, &[LABEL_SETUP_ROOT, transcript], &mut out);
    Secret32::take(&mut out)
}

/// Key and nonce that seal the initiator's public identity inside the initial message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SealKey {
    pub(crate) key: [u8; 32],
    pub(crate) nonce: [u8; 12],
}

pub(crate) fn identity_seal_key(dh: &[u8], context: &[&[u8]]) -> SealKey {
    let mut out = Zeroizing::new([0u8; 44]);
    let mut info: Vec<&[u8]> = Vec::with_capacity(1 + context.len());
    info.push(LABEL_IDENTITY_SEAL);
    info.extend_from_slice(context);
    hkdf(&[0u8; 32], dh, &info, out.as_mut());
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&out[..32]);
    nonce.copy_from_slice(&out[32..]);
    SealKey { key, nonce }
}

/// Root and chain key of epoch `epoch`, from its child salt (derived from the parent's seed
/// chain) and the epoch's DH output.
pub(crate) fn epoch_keys(
    child_salt: &Secret32,
    dh: &Secret32,
    epoch: u32,
    parent: u32,
) -> (Secret32, Secret32) {
    let mut out = Zeroizing::new([0u8; 64]);
    hkdf(
        child_salt.expose(),
        dh.expose(),
        &[LABEL_EPOCH, &epoch.to_be_bytes(), &parent.to_be_bytes()],
        out.as_mut(),
    );
    let mut root = [0u8; 32];
    let mut chain = [0u8; 32];
    root.copy_from_slice(&out[..32]);
    chain.copy_from_slice(&out[32..]);
    (Secret32::take(&mut root), Secret32::take(&mut chain))
}

/// The two HMACs of a chain step, keyed once: `(message key, next chain key)`.
fn chain_step_bytes(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let keyed = match <HmacSha256 as KeyInit>::new_from_slice(chain_key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    let mut message = keyed.clone();
    message.update(&[CHAIN_MESSAGE_BYTE]);
    let mut next = keyed;
    next.update(&[CHAIN_NEXT_BYTE]);
    (
        message.finalize().into_bytes().into(),
        next.finalize().into_bytes().into(),
    )
}

/// One step of a symmetric chain: the message key for this position and the next chain key.
pub(crate) fn chain_step(chain_key: &Secret32) -> (Secret32, Secret32) {
    let (mut mk, mut ck) = chain_step_bytes(chain_key.expose());
    (Secret32::take(&mut mk), Secret32::take(&mut ck))
}

/// [`chain_step`] in place, for a chain that only moves forward (the sending chain): the chain
/// key is overwritten with the next one (no new allocation), and the message key is written to
/// `message_key`.
pub(crate) fn chain_step_in_place(chain_key: &mut Secret32, message_key: &mut Zeroizing<[u8; 32]>) {
    let (mut mk, mut ck) = chain_step_bytes(chain_key.expose());
    message_key.copy_from_slice(&mk);
    chain_key.expose_mut().copy_from_slice(&ck);
    mk.zeroize();
    ck.zeroize();
}

/// The per-message keys expanded from a message key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) aes_key: [u8; 32],
    pub(crate) mac_key: [u8; 32],
    pub(crate) nonce: [u8; 12],
}

/// The per-message keys of a pairwise message.
pub(crate) fn message_keys(message_key: &Secret32) -> MessageKeys {
    message_keys_with(message_key.expose(), LABEL_MESSAGE)
}

/// [`message_keys`] from a message key held in a local buffer (see [`chain_step_in_place`]).
pub(crate) fn message_keys_from_bytes(message_key: &[u8; 32]) -> MessageKeys {
    message_keys_with(message_key, LABEL_MESSAGE)
}

/// The per-message keys of a group message (same construction, its own label).
pub(crate) fn group_message_keys(message_key: &Secret32) -> MessageKeys {
    message_keys_with(message_key.expose(), LABEL_GROUP_MESSAGE)
}

fn message_keys_with(message_key: &[u8; 32], label: &[u8]) -> MessageKeys {
    let hk = match Hkdf::<Sha256>::from_prk(message_key) {
        Ok(hk) => hk,
        Err(_) => unreachable!("a 32-byte PRK is valid for HKDF-SHA256"),
    };
    let mut out = Zeroizing::new([0u8; 76]);
    if hk.expand(label, out.as_mut()).is_err() {
        unreachable!("76 bytes is a valid HKDF-SHA256 output length");
    }
    let mut keys = MessageKeys {
        aes_key: [0; 32],
        mac_key: [0; 32],
        nonce: [0; 12],
    };
    keys.aes_key.copy_from_slice(&out[..32]);
    keys.mac_key.copy_from_slice(&out[32..64]);
    keys.nonce.copy_from_slice(&out[64..]);
    keys
}

/// The session associated data: a hash binding both identities, in role order.
pub(crate) fn session_ad(initiator_identity: &[u8], responder_identity: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(LABEL_SESSION_AD);
    hash.update(initiator_identity);
    hash.update(responder_identity);
    hash.finalize().into()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Verifies an HMAC-SHA256 tag over `parts` in constant time.
pub(crate) fn hmac_verify(key: &[u8; 32], parts: &[&[u8]], tag: &[u8; 32]) -> bool {
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_step_in_place_matches_chain_step() {
        let mut chain = Secret32::take(&mut [0x42; 32]);
        for _ in 0..3 {
            let (message, next) = chain_step(&chain);
            let mut message_key = Zeroizing::new([0u8; 32]);
            chain_step_in_place(&mut chain, &mut message_key);
            assert_eq!(&*message_key, message.expose());
            assert_eq!(chain.expose(), next.expose());
            let (a, b) = (
                message_keys(&message),
                message_keys_from_bytes(&message_key),
            );
            assert_eq!(
                (a.aes_key, a.mac_key, a.nonce),
                (b.aes_key, b.mac_key, b.nonce)
            );
        }
    }
}
