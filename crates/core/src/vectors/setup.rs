//! setup.json: session setup from Bob's bundle, with and without a one-time prekey, through
//! the first envelope.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::Serialize;

use super::keys::{self, ONE_TIME_PREKEY_ID};
use super::{
    FILE_VERSION, Recorder, chain_step, derive_epoch, h, message_keys, open_with, x25519,
    x25519_public,
};
use crate::account::Account;
use crate::envelope;
use crate::handshake::Transcript;
use crate::identity::IdentityKeyPair;
use crate::kdf::{self, LABEL_IDENTITY_SEAL, LABEL_SETUP_ROOT};
use crate::padding;
use crate::prekey::BundlePolicy;
use crate::session::Session;
use crate::time::Timestamp;

/// A session Alice started, with the RNG it was started from and the secrets it drew.
pub(super) struct Initiated {
    pub(super) session: Session,
    pub(super) rng: Recorder,
    pub(super) session_id: [u8; 16],
    pub(super) base_key: [u8; 32],
}

/// Alice starts a session from Bob's bundle (with the one-time prekey if `one_time`).
pub(super) fn initiate(
    alice: &IdentityKeyPair,
    bob: &Account,
    one_time: bool,
    seed: u64,
    now: Timestamp,
) -> Initiated {
    let bundle = bob
        .bundle(one_time.then_some(ONE_TIME_PREKEY_ID))
        .unwrap()
        .verify(&BundlePolicy::default(), now)
        .unwrap();
    let mut rng = Recorder::new(seed);
    let session =
        Session::initiate(alice, &bundle, super::conversation::config(), &mut rng, now).unwrap();
    // Session::initiate draws the session id, then the base key.
    let drawn = rng.take();
    assert_eq!(
        drawn.len(),
        48,
        "initiate draws a session id and a base key"
    );
    let session_id: [u8; 16] = drawn[..16].try_into().unwrap();
    let base_key: [u8; 32] = drawn[16..].try_into().unwrap();
    assert_eq!(session.session_id().as_bytes(), &session_id);
    Initiated {
        session,
        rng,
        session_id,
        base_key,
    }
}

/// A setup case: which bundle, which RNG seed, when, and the first plaintext.
struct Case {
    name: &'static str,
    one_time: bool,
    seed: u64,
    time: u64,
    plaintext: Vec<u8>,
}

fn cases() -> [Case; 2] {
    [
        Case {
            name: "with_one_time_prekey",
            one_time: true,
            seed: super::conversation::ALICE_SEED,
            time: super::conversation::step_time(0),
            plaintext: super::conversation::plaintext(0),
        },
        Case {
            name: "without_one_time_prekey",
            one_time: false,
            seed: 0x5EA1_5E55_0002,
            time: super::T0 + 3_600,
            plaintext: b"Hello Bob, your server had no one-time prekey left for me.".to_vec(),
        },
    ]
}

#[derive(Serialize)]
pub(super) struct SetupFile {
    description: &'static str,
    version: u32,
    cases: Vec<SetupCase>,
}

#[derive(Serialize)]
struct SetupCase {
    name: &'static str,
    time: u64,
    initiator: Party,
    responder: Party,
    signed_prekey: Prekey,
    one_time_prekey: Option<Prekey>,
    base_key: KeyPair,
    session_id: String,
    dh1: String,
    dh2: String,
    dh3: String,
    dh4: Option<String>,
    identity_seal: IdentitySeal,
    transcript: String,
    root_ikm: String,
    root_info: String,
    setup_root: String,
    session_ad: String,
    epoch_1: EpochOne,
    first_message: FirstMessage,
}

#[derive(Serialize)]
struct Party {
    name: &'static str,
    signing_seed: String,
    agreement_secret: String,
    public_identity: String,
}

#[derive(Serialize)]
struct Prekey {
    id: u32,
    secret: String,
    public: String,
}

#[derive(Serialize)]
struct KeyPair {
    secret: String,
    public: String,
}

#[derive(Serialize)]
struct IdentitySeal {
    ikm: String,
    info: String,
    key: String,
    nonce: String,
    plaintext: String,
    sealed: String,
}

#[derive(Serialize)]
struct EpochOne {
    child_seed: String,
    child_salt: String,
    dh: String,
    epoch_root: String,
    chain_key: String,
}

#[derive(Serialize)]
struct FirstMessage {
    chain_key: String,
    message_key: String,
    next_chain_key: String,
    aes_key: String,
    mac_key: String,
    nonce: String,
    plaintext: String,
    padded_length: usize,
    header: String,
    envelope: String,
}

/// What the conversation vectors continue from.
pub(super) struct Derived {
    pub(super) setup_root: [u8; 32],
    pub(super) session_ad: [u8; 32],
    pub(super) base_key: [u8; 32],
    pub(super) envelope: Vec<u8>,
}

fn party(name: &'static str) -> Party {
    let id = keys::identity(name);
    Party {
        name,
        signing_seed: h(&id.signing_seed),
        agreement_secret: h(&id.agreement_secret),
        public_identity: h(&id.pair.public().to_bytes()),
    }
}

fn build(case: &Case) -> (SetupCase, Derived) {
    let alice = keys::identity("alice");
    let bob_identity = keys::identity("bob");
    let bob = keys::bob_account();
    let now = Timestamp::from_unix_secs(case.time);
    let mut initiated = initiate(&alice.pair, &bob.account, case.one_time, case.seed, now);
    let envelope = initiated
        .session
        .seal(&case.plaintext, &mut initiated.rng, now)
        .unwrap();
    assert!(
        initiated.rng.take().is_empty(),
        "epoch 1 exists before the first seal"
    );

    let ek = initiated.base_key;
    let ek_public = x25519_public(&ek);
    let spk = bob.signed_prekey_secret;
    let spk_public = x25519_public(&spk);
    let opk = case.one_time.then_some(bob.one_time_prekey_secret);
    let bob_public = bob_identity.pair.public();
    let bob_keys = bob_public.key_bytes();
    let alice_public = alice.pair.public();

    let dh1 = x25519(&alice.agreement_secret, &spk_public);
    let dh2 = x25519(&ek, bob_public.agreement_key());
    let dh3 = x25519(&ek, &spk_public);
    let opk_public = opk.map(|opk| x25519_public(&opk));
    let dh4 = opk_public.map(|public| x25519(&ek, &public));

    let seal_ikm = [&dh2[..], &dh3[..], dh4.as_ref().map_or(&[][..], |d| &d[..])].concat();
    let seal_info = [LABEL_IDENTITY_SEAL, &ek_public, &bob_keys, &spk_public].concat();
    let seal = kdf::identity_seal_key(&seal_ikm, &[&ek_public, &bob_keys, &spk_public]);
    let mut sealed = alice_public.to_bytes().to_vec();
    let gcm_tag = Aes256Gcm::new(&seal.key.into())
        .encrypt_inout_detached(&Nonce::from(seal.nonce), &[], sealed.as_mut_slice().into())
        .unwrap();
    sealed.extend_from_slice(&gcm_tag);

    let transcript = Transcript {
        initiator: alice_public,
        responder: bob_public,
        signed_prekey_id: keys::SIGNED_PREKEY_ID,
        signed_prekey: &spk_public,
        one_time_prekey: opk_public.as_ref().map(|key| (ONE_TIME_PREKEY_ID, key)),
        base_key: &ek_public,
        session_id: &initiated.session_id,
    }
    .to_bytes();
    let dh_concat = [&dh1[..], &seal_ikm].concat();
    let root_ikm = [&[0xFF; 32][..], &dh_concat].concat();
    let root_info = [LABEL_SETUP_ROOT, &transcript].concat();
    let setup_root = *kdf::setup_root(&dh_concat, &transcript).expose();
    let session_ad = kdf::session_ad(&alice_public.key_bytes(), &bob_keys);

    let epoch_1 = derive_epoch(0, &setup_root, &spk_public, 1, &ek);
    assert_eq!(epoch_1.dh, dh3, "epoch 1's DH is DH3");
    let (message_key, next_chain_key) = chain_step(&epoch_1.chain_key);
    let keys = message_keys(&message_key);

    // The derivation matches what the session sealed, and Bob accepts it.
    let parsed = envelope::parse(&envelope).unwrap();
    let header = parsed.header.message();
    let setup = parsed
        .header
        .setup()
        .expect("the first envelope is an initial message");
    assert_eq!(
        (header.epoch, header.parent, header.counter, header.previous),
        (1, 0, 0, None)
    );
    assert_eq!(header.ratchet_key, ek_public);
    assert_eq!(header.session_id, initiated.session_id);
    assert_eq!(setup.base_key, ek_public);
    assert_eq!(setup.signed_prekey_id, keys::SIGNED_PREKEY_ID);
    assert_eq!(
        setup.one_time_prekey_id,
        case.one_time.then_some(ONE_TIME_PREKEY_ID)
    );
    assert_eq!(setup.sealed_identity[..], sealed[..]);
    let header_bytes = parsed.header_bytes.to_vec();
    assert_eq!(open_with(&envelope, &keys, &session_ad), case.plaintext);
    let mut bob_account = keys::bob_account().account;
    let accepted = bob_account.accept(&envelope, now).unwrap();
    assert_eq!(accepted.plaintext, case.plaintext);
    assert_eq!(&accepted.peer, alice_public);

    let prekey = |id, secret: &[u8; 32]| Prekey {
        id,
        secret: h(secret),
        public: h(&x25519_public(secret)),
    };
    let vector = SetupCase {
        name: case.name,
        time: case.time,
        initiator: party("alice"),
        responder: party("bob"),
        signed_prekey: prekey(keys::SIGNED_PREKEY_ID, &spk),
        one_time_prekey: opk.map(|opk| prekey(ONE_TIME_PREKEY_ID, &opk)),
        base_key: KeyPair {
            secret: h(&ek),
            public: h(&ek_public),
        },
        session_id: h(&initiated.session_id),
        dh1: h(&dh1),
        dh2: h(&dh2),
        dh3: h(&dh3),
        dh4: dh4.map(|d| h(&d)),
        identity_seal: IdentitySeal {
            ikm: h(&seal_ikm),
            info: h(&seal_info),
            key: h(&seal.key),
            nonce: h(&seal.nonce),
            plaintext: h(&alice_public.to_bytes()),
            sealed: h(&sealed),
        },
        transcript: h(&transcript),
        root_ikm: h(&root_ikm),
        root_info: h(&root_info),
        setup_root: h(&setup_root),
        session_ad: h(&session_ad),
        epoch_1: EpochOne {
            child_seed: h(&epoch_1.child_seed),
            child_salt: h(&epoch_1.child_salt),
            dh: h(&epoch_1.dh),
            epoch_root: h(&epoch_1.root),
            chain_key: h(&epoch_1.chain_key),
        },
        first_message: FirstMessage {
            chain_key: h(&epoch_1.chain_key),
            message_key: h(&message_key),
            next_chain_key: h(&next_chain_key),
            aes_key: h(&keys.aes_key),
            mac_key: h(&keys.mac_key),
            nonce: h(&keys.nonce),
            plaintext: h(&case.plaintext),
            padded_length: padding::padded_len(case.plaintext.len()),
            header: h(&header_bytes),
            envelope: h(&envelope),
        },
    };
    let derived = Derived {
        setup_root,
        session_ad,
        base_key: ek,
        envelope,
    };
    (vector, derived)
}

pub(super) fn setup_file() -> SetupFile {
    SetupFile {
        description: "Session setup (X3DH-style) from Bob's bundle, with and without a one-time \
                      prekey: every private key, DH1..DH4, the sealed initiator identity, the \
                      transcript, the setup root, the session AD, epoch 1 and the first \
                      envelope. The case with a one-time prekey is the start of \
                      conversation.json. See README.md.",
        version: FILE_VERSION,
        cases: cases().iter().map(|case| build(case).0).collect(),
    }
}

/// The setup the conversation continues from (the case with a one-time prekey).
pub(super) fn conversation_setup() -> Derived {
    build(&cases()[0]).1
}
