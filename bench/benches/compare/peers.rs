//! The peers: vodozemac 0.11's Olm (pairwise) and Megolm (group), with the session
//! configurations in use (`version_1`: AES-256-CBC, HMAC-SHA256 truncated to 8 bytes). Compiled
//! only with the `peers` feature.

use std::hint::black_box;

use criterion::BatchSize;
use vodozemac::megolm::{self, GroupSession, InboundGroupSession};
use vodozemac::olm::{self, Account, OlmMessage, Session};
use vodozemac::{Curve25519PublicKey, Ed25519Signature};

use crate::{Cmp, plaintext};

fn olm_config() -> olm::SessionConfig {
    olm::SessionConfig::version_1()
}

fn megolm_config() -> megolm::SessionConfig {
    megolm::SessionConfig::version_1()
}

/// Bob's account with one fresh one-time key, and that key.
fn olm_responder() -> (Account, Curve25519PublicKey) {
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let one_time_key = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    (bob, one_time_key)
}

/// Alice and Bob in the same steady state as sealwire's fixture: Alice's pre-key message
/// accepted, Bob replied, Alice answered on a new chain (a turn) and Bob decrypted it. From here
/// on Alice's messages are normal messages on her current chain, which Bob already has.
fn olm_established() -> (Session, Session) {
    let alice_account = Account::new();
    let (mut bob_account, one_time_key) = olm_responder();
    let mut alice = alice_account
        .create_outbound_session(olm_config(), bob_account.curve25519_key(), one_time_key)
        .unwrap();
    let OlmMessage::PreKey(first) = alice.encrypt(b"hello").unwrap() else {
        panic!("the first message is not a pre-key message");
    };
    let mut bob = bob_account
        .create_inbound_session(olm_config(), alice_account.curve25519_key(), &first)
        .unwrap()
        .session;
    let reply = bob.encrypt(b"hi").unwrap();
    assert_eq!(alice.decrypt(&reply).unwrap(), b"hi");
    let turn = alice.encrypt(b"turn").unwrap();
    assert!(matches!(turn, OlmMessage::Normal(_)));
    assert_eq!(bob.decrypt(&turn).unwrap(), b"turn");
    (alice, bob)
}

/// `cmp/olm_encrypt`: one normal message on Alice's established chain.
pub(crate) fn olm_encrypt(group: &mut Cmp<'_>) {
    let (mut alice, _bob) = olm_established();
    let message = plaintext();
    group.bench_function("olm_encrypt", |b| {
        b.iter(|| alice.encrypt(black_box(&message)).unwrap());
    });
}

/// `cmp/olm_decrypt`: Bob decrypts fresh messages encrypted (untimed) by Alice's live session,
/// in order, so no message key is ever skipped or missing.
pub(crate) fn olm_decrypt(group: &mut Cmp<'_>) {
    let (mut alice, mut bob) = olm_established();
    let message = plaintext();
    group.bench_function("olm_decrypt", |b| {
        b.iter_batched(
            || alice.encrypt(&message).unwrap(),
            |encrypted| bob.decrypt(black_box(&encrypted)).unwrap().len(),
            BatchSize::SmallInput,
        );
    });
}

/// An outbound Megolm session and the inbound session built from its session key, with one
/// message already exchanged (as sealwire's group fixture has).
fn megolm_pair() -> (GroupSession, InboundGroupSession) {
    let mut outbound = GroupSession::new(megolm_config());
    let mut inbound = InboundGroupSession::new(&outbound.session_key(), megolm_config());
    let first = outbound.encrypt(b"first");
    assert_eq!(inbound.decrypt(&first).unwrap().plaintext, b"first");
    (outbound, inbound)
}

/// `cmp/megolm_encrypt`: `GroupSession::encrypt` (encrypt, MAC, Ed25519 signature, ratchet step).
pub(crate) fn megolm_encrypt(group: &mut Cmp<'_>) {
    let (mut outbound, _inbound) = megolm_pair();
    let message = plaintext();
    group.bench_function("megolm_encrypt", |b| {
        b.iter(|| outbound.encrypt(black_box(&message)));
    });
}

/// `cmp/megolm_decrypt`: `InboundGroupSession::decrypt` of fresh messages, encrypted (untimed)
/// by the live outbound session, in order: each decryption verifies the signature, advances
/// the inbound ratchet by one step, checks the MAC and decrypts.
pub(crate) fn megolm_decrypt(group: &mut Cmp<'_>) {
    let (mut outbound, mut inbound) = megolm_pair();
    let message = plaintext();
    group.bench_function("megolm_decrypt", |b| {
        b.iter_batched(
            || outbound.encrypt(&message),
            |encrypted| {
                inbound
                    .decrypt(black_box(&encrypted))
                    .unwrap()
                    .plaintext
                    .len()
            },
            BatchSize::SmallInput,
        );
    });
}

/// Inputs of one Olm setup: Alice's and Bob's fresh accounts and the one-time key of Bob's
/// that Alice claimed, with Bob's signature over it (checked only by `olm_setup_verified`).
struct OlmSetupInput {
    alice: Account,
    bob: Account,
    one_time_key: Curve25519PublicKey,
    signed: Vec<u8>,
    signature: Ed25519Signature,
}

fn olm_setup_input() -> OlmSetupInput {
    let alice = Account::new();
    let (bob, one_time_key) = olm_responder();
    // What a Matrix device signs for a one-time key: the canonical JSON of the key object.
    let signed = format!(r#"{{"key":"{}"}}"#, one_time_key.to_base64()).into_bytes();
    let signature = bob.sign(&signed);
    OlmSetupInput {
        alice,
        bob,
        one_time_key,
        signed,
        signature,
    }
}

/// Alice's outbound session and 256-byte first (pre-key) message; Bob's inbound session from
/// it, which decrypts it.
fn olm_setup_once(input: &mut OlmSetupInput, message: &[u8]) -> (Session, Session) {
    let mut alice = input
        .alice
        .create_outbound_session(olm_config(), input.bob.curve25519_key(), input.one_time_key)
        .unwrap();
    let OlmMessage::PreKey(first) = alice.encrypt(message).unwrap() else {
        panic!("the first message is not a pre-key message");
    };
    let created = input
        .bob
        .create_inbound_session(olm_config(), input.alice.curve25519_key(), &first)
        .unwrap();
    assert_eq!(created.plaintext.len(), message.len());
    (alice, created.session)
}

/// `cmp/olm_setup`: session setup as vodozemac does it (no signature verification).
pub(crate) fn olm_setup(group: &mut Cmp<'_>) {
    let message = plaintext();
    group.bench_function("olm_setup", |b| {
        b.iter_batched(
            olm_setup_input,
            |mut input| {
                let sessions = olm_setup_once(&mut input, &message);
                (sessions, input)
            },
            BatchSize::PerIteration,
        );
    });
}

/// `cmp/olm_setup_verified`: `cmp/olm_setup` preceded by the verification of the one-time key's
/// signature with Bob's Ed25519 device key, which a Matrix client does before creating the
/// session (vodozemac leaves it to its caller).
pub(crate) fn olm_setup_verified(group: &mut Cmp<'_>) {
    let message = plaintext();
    group.bench_function("olm_setup_verified", |b| {
        b.iter_batched(
            olm_setup_input,
            |mut input| {
                input
                    .bob
                    .ed25519_key()
                    .verify(&input.signed, &input.signature)
                    .unwrap();
                let sessions = olm_setup_once(&mut input, &message);
                (sessions, input)
            },
            BatchSize::PerIteration,
        );
    });
}
