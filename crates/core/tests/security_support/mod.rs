//! Helpers shared by the test files that drive the public API (`properties*.rs`, `bounds*.rs`,
//! `account.rs`, `adversarial.rs`, `secrecy.rs`, `redaction.rs`, `fingerprint.rs`,
//! `conversation.rs`). `vectors/` deliberately shares nothing with them.
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sealwire_core::{
    Account, AccountConfig, BundlePolicy, EnvelopeHeader, Error, IdentityKeyPair, Session,
    SessionConfig, Timestamp, VerifiedBundle,
};

/// A fixed "now" far from the Unix epoch, so that offsets in both directions are meaningful.
pub(crate) const T0: u64 = 1_780_000_000;

/// `T0 + offset` seconds.
pub(crate) fn at(offset: u64) -> Timestamp {
    Timestamp::from_unix_secs(T0 + offset)
}

pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A session configuration: the defaults, changed by `f`.
pub(crate) fn config(f: impl FnOnce(&mut SessionConfig)) -> SessionConfig {
    let mut config = SessionConfig::default();
    f(&mut config);
    config.validate().expect("test configuration is valid");
    config
}

/// A configuration whose epoch-retention bounds are so large (and grace so long) that no
/// honest message can ever be discarded by a bound in a short test; rotation after
/// `rotate_after_messages` messages.
pub(crate) fn roomy_config(rotate_after_messages: u32) -> SessionConfig {
    config(|c| {
        c.rotate_after_messages = rotate_after_messages;
        c.max_own_epochs = 100_000;
        c.max_receiving_epochs = 100_000;
        c.max_skipped_epochs = 10_000;
        c.max_epoch_jump = 100_000;
        c.grace_secs = 10 * 365 * 24 * 60 * 60;
    })
}

/// Sets the configuration of the sessions an account creates.
pub(crate) fn set_account_session_config(account: &mut Account, session: SessionConfig) {
    let mut config: AccountConfig = account.config().clone();
    config.session = session;
    account.set_config(config).expect("valid account config");
}

pub(crate) fn new_account(rng: &mut ChaCha20Rng, now: Timestamp) -> Account {
    Account::new(IdentityKeyPair::generate(rng), rng, now)
}

/// A verified bundle of `account`, with a fresh one-time prekey if `one_time`.
pub(crate) fn verified_bundle(
    account: &mut Account,
    one_time: bool,
    rng: &mut ChaCha20Rng,
    now: Timestamp,
) -> VerifiedBundle {
    let opk = if one_time {
        Some(account.generate_one_time_prekeys(1, rng).expect("opk")[0].id)
    } else {
        None
    };
    account
        .bundle(opk)
        .expect("bundle")
        .verify(&BundlePolicy::default(), now)
        .expect("own bundle verifies")
}

/// Bob's account and Alice's session initiated from his bundle, before anything was sealed.
pub(crate) struct Initiated {
    pub(crate) rng: ChaCha20Rng,
    pub(crate) alice_identity: IdentityKeyPair,
    pub(crate) alice: Session,
    pub(crate) bob_account: Account,
}

/// Sets up an [`Initiated`] pair at `at(0)`: Bob's bundle has a one-time prekey if `one_time`;
/// Alice's session has `alice_config`.
pub(crate) fn initiated(seed: u64, one_time: bool, alice_config: SessionConfig) -> Initiated {
    let mut rng = rng(seed);
    let mut bob_account = new_account(&mut rng, at(0));
    let bundle = verified_bundle(&mut bob_account, one_time, &mut rng, at(0));
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let alice =
        Session::initiate(&alice_identity, &bundle, alice_config, &mut rng, at(0)).expect("init");
    Initiated {
        rng,
        alice_identity,
        alice,
        bob_account,
    }
}

/// Two parties with an established session: Alice initiated, Bob accepted Alice's first
/// message and replied, and Alice opened the reply.
pub(crate) struct Established {
    pub(crate) rng: ChaCha20Rng,
    pub(crate) alice_identity: IdentityKeyPair,
    pub(crate) alice: Session,
    pub(crate) bob_account: Account,
    pub(crate) bob: Session,
}

/// Sets up an [`Established`] pair at `at(0)` (from an [`Initiated`] one, with a one-time
/// prekey), with the given session configurations.
pub(crate) fn established(
    seed: u64,
    alice_config: SessionConfig,
    bob_config: SessionConfig,
) -> Established {
    let Initiated {
        mut rng,
        alice_identity,
        mut alice,
        mut bob_account,
    } = initiated(seed, true, alice_config);
    set_account_session_config(&mut bob_account, bob_config);
    let first = alice.seal(b"hello Bob", &mut rng, at(0)).expect("seal");
    let accepted = bob_account.accept(&first, at(0)).expect("accept");
    assert_eq!(accepted.plaintext, b"hello Bob");
    let mut bob = accepted.session;
    let reply = bob.seal(b"hello Alice", &mut rng, at(0)).expect("seal");
    assert_eq!(alice.open(&reply, at(0)).expect("open"), b"hello Alice");
    Established {
        rng,
        alice_identity,
        alice,
        bob_account,
        bob,
    }
}

/// The serialized state of a session, as plain bytes (for before/after comparisons).
pub(crate) fn state(session: &Session) -> Vec<u8> {
    session.to_bytes().expose_secret().to_vec()
}

pub(crate) fn account_state(account: &Account) -> Vec<u8> {
    account.to_bytes().expose_secret().to_vec()
}

/// Seals `count` messages from `session` at `now`: message `i` is `text(tag, i, 12)`.
pub(crate) fn burst(
    session: &mut Session,
    rng: &mut ChaCha20Rng,
    tag: &str,
    count: usize,
    now: Timestamp,
) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| session.seal(&text(tag, i, 12), rng, now).unwrap())
        .collect()
}

/// Opens `envelope` expecting a refusal, checks that the session is unchanged, and returns the
/// error.
#[track_caller]
pub(crate) fn open_refused(session: &mut Session, envelope: &[u8], now: Timestamp) -> Error {
    let before = state(session);
    let err = match session.open(envelope, now) {
        Ok(plaintext) => panic!("open succeeded ({plaintext:?}), expected a refusal"),
        Err(err) => err,
    };
    assert_eq!(state(session), before, "a failed open changed the session");
    err
}

/// Opens `envelope` expecting the error `expected`, and checks that the session is unchanged.
#[track_caller]
pub(crate) fn expect_open_err(
    session: &mut Session,
    envelope: &[u8],
    now: Timestamp,
    expected: Error,
) {
    assert_eq!(open_refused(session, envelope, now), expected);
}

/// Accepts `envelope` expecting a refusal, checks that the account is unchanged, and returns
/// the error.
#[track_caller]
pub(crate) fn accept_refused(account: &mut Account, envelope: &[u8], now: Timestamp) -> Error {
    let before = account_state(account);
    let err = match account.accept(envelope, now) {
        Ok(_) => panic!("accept succeeded, expected a refusal"),
        Err(err) => err,
    };
    assert_eq!(
        account_state(account),
        before,
        "a failed accept changed the account"
    );
    err
}

/// Accepts `envelope` expecting the error `expected`, and checks that the account is unchanged.
#[track_caller]
pub(crate) fn expect_accept_err(
    account: &mut Account,
    envelope: &[u8],
    now: Timestamp,
    expected: Error,
) {
    assert_eq!(accept_refused(account, envelope, now), expected);
}

/// The epoch and counter in an envelope's public header.
pub(crate) fn epoch_of(envelope: &[u8]) -> (u32, u32) {
    let header = EnvelopeHeader::parse(envelope).expect("parse");
    (header.epoch(), header.counter())
}

/// Byte offsets of the fields of a message header inside an envelope, for tests that forge
/// public header fields. Per the wire format (`envelope.rs`): `version:u8 ‖ suite:u8 ‖
/// kind:varint ‖ session_id[16] ‖ epoch:varint ‖ parent:varint ‖ counter:varint ‖ ...`
/// (postcard). Only valid while epoch, parent and counter are below 128 (one-byte varints),
/// which is asserted.
pub(crate) struct HeaderOffsets {
    pub(crate) kind: usize,
    pub(crate) session_id: usize,
    pub(crate) epoch: usize,
    pub(crate) parent: usize,
    pub(crate) counter: usize,
}

pub(crate) fn header_offsets(envelope: &[u8]) -> HeaderOffsets {
    assert_eq!(envelope[0], 1, "version");
    assert_eq!(envelope[1], 1, "suite");
    assert!(envelope[2] <= 1, "kind");
    assert!(
        envelope[19..22].iter().all(|&b| b < 0x80),
        "multi-byte varint in header"
    );
    HeaderOffsets {
        kind: 2,
        session_id: 3,
        epoch: 19,
        parent: 20,
        counter: 21,
    }
}

/// A unique, recognisable plaintext of at least `len` bytes.
pub(crate) fn text(tag: &str, index: usize, len: usize) -> Vec<u8> {
    let mut out = format!("{tag}#{index}:").into_bytes();
    let mut byte = (index % 251) as u8;
    while out.len() < len {
        out.push(byte);
        byte = byte.wrapping_mul(31).wrapping_add(7);
    }
    out
}

/// The two 32-byte secrets of an identity, parsed from `IdentityKeyPair::to_bytes()`.
///
/// The state format (identity.rs, state.rs) is postcard: `version:varint(=1) ‖ signing seed[32] ‖
/// agreement secret[32]`. The parse is checked, not assumed: the seed must derive the public
/// Ed25519 key and the agreement secret the public X25519 key.
pub(crate) struct IdentitySecrets {
    pub(crate) signing_seed: [u8; 32],
    pub(crate) agreement_secret: [u8; 32],
}

pub(crate) fn identity_secrets(identity: &IdentityKeyPair) -> IdentitySecrets {
    let bytes = identity.to_bytes();
    let bytes = bytes.expose_secret();
    assert_eq!(bytes.len(), 65, "identity state layout changed");
    assert_eq!(bytes[0], 1, "identity state version");
    let signing_seed: [u8; 32] = bytes[1..33].try_into().unwrap();
    let agreement_secret: [u8; 32] = bytes[33..65].try_into().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&signing_seed);
    assert_eq!(
        signing.verifying_key().as_bytes(),
        identity.public().signing_key(),
        "parsed signing seed does not match the public identity"
    );
    let agreement =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(agreement_secret));
    assert_eq!(
        agreement.as_bytes(),
        identity.public().agreement_key(),
        "parsed agreement secret does not match the public identity"
    );
    IdentitySecrets {
        signing_seed,
        agreement_secret,
    }
}

/// Signs `message` with a raw Ed25519 seed (what an attacker holding the seed can do, or an
/// owner publishing something the API would not let it sign).
pub(crate) fn raw_sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(message)
        .to_bytes()
}

/// The message a signed prekey signature covers (prekey.rs module docs):
/// `"sealwire/v1/signed-prekey" ‖ be32(id) ‖ be64(created_at) ‖ key`.
pub(crate) fn signed_prekey_message(id: u32, created_at: u64, key: &[u8; 32]) -> Vec<u8> {
    [
        b"sealwire/v1/signed-prekey".as_slice(),
        &id.to_be_bytes(),
        &created_at.to_be_bytes(),
        key,
    ]
    .concat()
}

/// Offsets of the setup-header fields of the *first* initial envelope of a session (epoch 1,
/// counter 0, no `previous`): `... ‖ previous:option(=0) @22 ‖ ratchet_key[32] @23 ‖
/// base_key[32] @55 ‖ signed_prekey_id:varint @87 ‖ one_time_prekey_id:option @88 ...`.
pub(crate) struct SetupOffsets {
    pub(crate) base_key: usize,
    pub(crate) signed_prekey_id: usize,
    pub(crate) one_time_option: usize,
}

pub(crate) fn setup_offsets(envelope: &[u8]) -> SetupOffsets {
    header_offsets(envelope);
    assert_eq!(envelope[2], 0, "not an initial envelope");
    assert_eq!(&envelope[19..23], &[1, 0, 0, 0], "not the first message");
    assert!(envelope[87] < 0x80, "multi-byte prekey id");
    SetupOffsets {
        base_key: 55,
        signed_prekey_id: 87,
        one_time_option: 88,
    }
}

/// The public message header of an envelope, decoded per spec 10.1 (postcard varints, any
/// size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageHeader {
    pub(crate) initial: bool,
    pub(crate) session_id: [u8; 16],
    pub(crate) epoch: u32,
    pub(crate) parent: u32,
    pub(crate) counter: u32,
    pub(crate) previous: Option<(u32, u32)>,
    pub(crate) ratchet_key: [u8; 32],
}

pub(crate) fn message_header(envelope: &[u8]) -> MessageHeader {
    fn varint(bytes: &[u8], at: &mut usize) -> u32 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = bytes[*at];
            *at += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return u32::try_from(value).unwrap();
            }
            shift += 7;
        }
    }
    assert_eq!(&envelope[..2], &[1, 1]);
    let initial = match envelope[2] {
        0 => true,
        1 => false,
        kind => panic!("kind {kind}"),
    };
    let session_id: [u8; 16] = envelope[3..19].try_into().unwrap();
    let mut at = 19;
    let epoch = varint(envelope, &mut at);
    let parent = varint(envelope, &mut at);
    let counter = varint(envelope, &mut at);
    let previous = match envelope[at] {
        0 => {
            at += 1;
            None
        }
        1 => {
            at += 1;
            let e = varint(envelope, &mut at);
            let l = varint(envelope, &mut at);
            Some((e, l))
        }
        tag => panic!("option tag {tag}"),
    };
    let ratchet_key: [u8; 32] = envelope[at..at + 32].try_into().unwrap();
    let header = MessageHeader {
        initial,
        session_id,
        epoch,
        parent,
        counter,
        previous,
        ratchet_key,
    };
    let public = EnvelopeHeader::parse(envelope).unwrap();
    assert_eq!(
        (public.epoch(), public.counter()),
        (header.epoch, header.counter)
    );
    header
}
