//! The relay protocol's constructions, typed from spec/relay-protocol.md (4.3, 4.5, 5.1) and
//! spec/sealwire.md (5, 5.1) with the primitive crates only: nothing here calls
//! `sealwire-transport` or `sealwire-core`. The generator uses it to check what the library
//! produced; the checker uses it to recompute the file's values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The label of the authentication signature and the transcript's prefix (4.3).
pub(crate) const LABEL_AUTH: &[u8] = b"sealwire/v1/relay/auth";
/// The prefix of every application signature (sealwire.md 5.1).
pub(crate) const LABEL_APPLICATION: &[u8] = b"sealwire/v1/application";
/// The prefix of the mailbox hash (4.5).
pub(crate) const LABEL_MAILBOX: &[u8] = b"sealwire/v1/relay/mailbox";
/// The TLS exporter label of the channel binding (4.3).
pub(crate) const LABEL_EXPORTER: &[u8] = b"EXPORTER-sealwire-relay-v1";
/// The prefix of an identity's binding signature (sealwire.md 5).
pub(crate) const LABEL_IDENTITY_BINDING: &[u8] = b"sealwire/v1/identity-binding";
/// The WebSocket subprotocol (2.2).
pub(crate) const SUBPROTOCOL: &str = "sealwire.relay.v1";

/// `transcript` of 4.3. `binding` is the TLS exporter value, or `None` without TLS.
pub(crate) fn transcript(
    nonce: &[u8; 32],
    server_name: &str,
    binding: Option<&[u8; 32]>,
    token: Option<&str>,
) -> Vec<u8> {
    let name_len = u8::try_from(server_name.len()).expect("server names are at most 255 bytes");
    let mut out = Vec::new();
    out.extend_from_slice(LABEL_AUTH);
    out.extend_from_slice(nonce);
    out.push(name_len);
    out.extend_from_slice(server_name.as_bytes());
    match binding {
        Some(value) => {
            out.push(0x01);
            out.extend_from_slice(value);
        }
        None => out.push(0x00),
    }
    match token {
        Some(token) => {
            out.push(0x01);
            out.extend_from_slice(&Sha256::digest(token.as_bytes()));
        }
        None => out.push(0x00),
    }
    out
}

/// The bytes Ed25519 signs for the authentication signature:
/// `"sealwire/v1/application" ‖ be16(len(label)) ‖ label ‖ transcript`.
pub(crate) fn signed_message(transcript: &[u8]) -> Vec<u8> {
    let label_len = u16::try_from(LABEL_AUTH.len()).unwrap().to_be_bytes();
    [LABEL_APPLICATION, &label_len, LABEL_AUTH, transcript].concat()
}

/// `SHA-256("sealwire/v1/relay/mailbox" ‖ S ‖ X)`: the first 64 bytes of a public identity.
pub(crate) fn mailbox(public_identity: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(LABEL_MAILBOX)
        .chain_update(&public_identity[..64])
        .finalize()
        .into()
}

/// Strict Ed25519 verification of `signature` over `message` by the identity's signing key
/// (the first 32 bytes of the public identity).
pub(crate) fn verifies(public_identity: &[u8], message: &[u8], signature: &[u8; 64]) -> bool {
    let key: [u8; 32] = public_identity[..32].try_into().unwrap();
    VerifyingKey::from_bytes(&key).is_ok_and(|key| {
        key.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    })
}

/// The Ed25519 public key of a seed.
pub(crate) fn signing_public(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Whether the 128-byte public identity `S ‖ X ‖ σ` carries a valid binding signature.
pub(crate) fn identity_binding_verifies(public_identity: &[u8]) -> bool {
    let signature: [u8; 64] = public_identity[64..128].try_into().unwrap();
    let message = [LABEL_IDENTITY_BINDING, &public_identity[..64]].concat();
    verifies(public_identity, &message, &signature)
}

/// Whether `token` is an HS256 JWS whose tag verifies under `secret`; returns its header and
/// payload JSON if so.
pub(crate) fn token_parts(
    token: &str,
    secret: &[u8],
) -> Option<(serde_json::Value, serde_json::Value)> {
    let (signing_input, tag) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(tag).ok()?).ok()?;
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some((header, payload))
}
