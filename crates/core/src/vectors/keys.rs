//! identity.json, prekeys.json and padding.json, and the fixed identities and prekeys that every
//! other file builds on.

use serde::Serialize;

use super::{FILE_VERSION, Recorder, T0, h, x25519_public};
use crate::account::{Account, AccountConfig};
use crate::fingerprint::fingerprint_digits;
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::kdf::LABEL_IDENTITY_BINDING;
use crate::padding;
use crate::prekey::{PrekeyBundle, SignedPrekey};
use crate::time::Timestamp;

/// The identities of the vectors, with the seed of the RNG each is generated from.
pub(super) const IDENTITIES: [(&str, u64); 3] = [
    ("alice", 0x5EA1_0001),
    ("bob", 0x5EA1_0002),
    ("carol", 0x5EA1_0003),
];

/// Seed of the RNG Bob's account draws its prekeys from.
const BOB_PREKEY_SEED: u64 = 0x5EA1_0B0B;

pub(super) const SIGNED_PREKEY_ID: u32 = 1;
pub(super) const ONE_TIME_PREKEY_ID: u32 = 1;

/// An identity key pair with the secrets it was made from.
pub(super) struct Identity {
    pub(super) pair: IdentityKeyPair,
    pub(super) signing_seed: [u8; 32],
    pub(super) agreement_secret: [u8; 32],
}

/// The identity called `name` (see [`IDENTITIES`]), generated the way the API generates one.
pub(super) fn identity(name: &str) -> Identity {
    let seed = IDENTITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, seed)| *seed)
        .unwrap_or_else(|| panic!("no vector identity named {name}"));
    let mut rng = Recorder::new(seed);
    let pair = IdentityKeyPair::generate(&mut rng);
    let drawn = rng.take();
    assert_eq!(
        drawn.len(),
        64,
        "an identity draws a signing seed and an agreement secret"
    );
    let signing_seed: [u8; 32] = drawn[..32].try_into().unwrap();
    let agreement_secret: [u8; 32] = drawn[32..].try_into().unwrap();
    assert_eq!(pair.signing_seed(), signing_seed);
    assert_eq!(
        pair.public().agreement_key(),
        &x25519_public(&agreement_secret)
    );
    Identity {
        pair,
        signing_seed,
        agreement_secret,
    }
}

/// Bob's account: signed prekey 1 created at `T0`, one-time prekey 1, and the conversation's
/// session configuration for the sessions it accepts.
pub(super) struct BobAccount {
    pub(super) account: Account,
    pub(super) signed_prekey_secret: [u8; 32],
    pub(super) one_time_prekey_secret: [u8; 32],
}

pub(super) fn bob_account() -> BobAccount {
    let mut rng = Recorder::new(BOB_PREKEY_SEED);
    let mut account = Account::new(
        identity("bob").pair,
        &mut rng,
        Timestamp::from_unix_secs(T0),
    );
    let signed_prekey_secret = rng.take32();
    let one_time = account.generate_one_time_prekeys(1, &mut rng).unwrap();
    let one_time_prekey_secret = rng.take32();
    assert_eq!(account.signed_prekey().id, SIGNED_PREKEY_ID);
    assert_eq!(
        account.signed_prekey().public_key,
        x25519_public(&signed_prekey_secret)
    );
    assert_eq!(one_time[0].id, ONE_TIME_PREKEY_ID);
    assert_eq!(
        one_time[0].public_key,
        x25519_public(&one_time_prekey_secret)
    );
    account
        .set_config(AccountConfig {
            session: super::conversation::config(),
            ..AccountConfig::default()
        })
        .unwrap();
    BobAccount {
        account,
        signed_prekey_secret,
        one_time_prekey_secret,
    }
}

#[derive(Serialize)]
pub(super) struct IdentityFile {
    description: &'static str,
    version: u32,
    fingerprint_iterations: u32,
    identities: Vec<IdentityVector>,
    safety_numbers: Vec<SafetyNumberVector>,
}

#[derive(Serialize)]
struct IdentityVector {
    name: &'static str,
    signing_seed: String,
    agreement_secret: String,
    signing_public: String,
    agreement_public: String,
    binding_message: String,
    binding_signature: String,
    public_identity: String,
    fingerprint: String,
}

#[derive(Serialize)]
struct SafetyNumberVector {
    identities: [&'static str; 2],
    safety_number: String,
}

pub(super) fn identity_file() -> IdentityFile {
    let identities: Vec<(&'static str, Identity)> =
        IDENTITIES.iter().map(|(n, _)| (*n, identity(n))).collect();
    let vectors = identities
        .iter()
        .map(|(name, id)| {
            let public = id.pair.public();
            let encoded = public.to_bytes();
            // Decoding verifies the binding signature.
            assert_eq!(&PublicIdentity::from_bytes(&encoded).unwrap(), public);
            let binding_message = [
                LABEL_IDENTITY_BINDING,
                public.signing_key(),
                public.agreement_key(),
            ]
            .concat();
            IdentityVector {
                name,
                signing_seed: h(&id.signing_seed),
                agreement_secret: h(&id.agreement_secret),
                signing_public: h(public.signing_key()),
                agreement_public: h(public.agreement_key()),
                binding_message: h(&binding_message),
                binding_signature: h(&encoded[64..]),
                public_identity: h(&encoded),
                fingerprint: fingerprint_digits(public),
            }
        })
        .collect();
    let mut safety_numbers = Vec::new();
    for (i, (a, first)) in identities.iter().enumerate() {
        for (b, second) in &identities[i + 1..] {
            let number = first.pair.public().safety_number(second.pair.public());
            assert_eq!(
                number,
                second.pair.public().safety_number(first.pair.public())
            );
            safety_numbers.push(SafetyNumberVector {
                identities: [a, b],
                safety_number: number.digits().to_owned(),
            });
        }
    }
    IdentityFile {
        description: "Identities: Ed25519 signing key and X25519 agreement key from their secrets, \
                      the identity binding signature, the 128-byte public identity, 30-digit \
                      fingerprints and 60-digit safety numbers. See README.md.",
        version: FILE_VERSION,
        fingerprint_iterations: crate::FINGERPRINT_ITERATIONS,
        identities: vectors,
        safety_numbers,
    }
}

#[derive(Serialize)]
pub(super) struct PrekeysFile {
    description: &'static str,
    version: u32,
    owner: &'static str,
    owner_public_identity: String,
    signed_prekey: SignedPrekeyVector,
    one_time_prekey: OneTimePrekeyVector,
    bundle_with_one_time_prekey: String,
    bundle_without_one_time_prekey: String,
}

#[derive(Serialize)]
struct SignedPrekeyVector {
    id: u32,
    created_at: u64,
    secret: String,
    public: String,
    signed_message: String,
    signature: String,
}

#[derive(Serialize)]
struct OneTimePrekeyVector {
    id: u32,
    secret: String,
    public: String,
}

pub(super) fn prekeys_file() -> PrekeysFile {
    let bob = bob_account();
    let spk = bob.account.signed_prekey().clone();
    let identity = bob.account.identity().public().clone();
    let signed_message = SignedPrekey::signed_message(spk.id, spk.created_at, &spk.public_key);
    spk.verify(&identity).unwrap();
    let with = bob.account.bundle(Some(ONE_TIME_PREKEY_ID)).unwrap();
    let without = bob.account.bundle(None).unwrap();
    let one_time = with.one_time_prekey.clone().unwrap();
    for bundle in [&with, &without] {
        assert_eq!(
            &PrekeyBundle::from_bytes(&bundle.to_bytes()).unwrap(),
            bundle
        );
    }
    PrekeysFile {
        description: "Bob's signed prekey and one-time prekey (secrets, public keys, the signed \
                      message and its Ed25519 signature) and his prekey bundle encoded with and \
                      without the one-time prekey. The owner's identity is in identity.json.",
        version: FILE_VERSION,
        owner: "bob",
        owner_public_identity: h(&identity.to_bytes()),
        signed_prekey: SignedPrekeyVector {
            id: spk.id,
            created_at: spk.created_at.as_unix_secs(),
            secret: h(&bob.signed_prekey_secret),
            public: h(&spk.public_key),
            signed_message: h(&signed_message),
            signature: h(&spk.signature),
        },
        one_time_prekey: OneTimePrekeyVector {
            id: one_time.id,
            secret: h(&bob.one_time_prekey_secret),
            public: h(&one_time.public_key),
        },
        bundle_with_one_time_prekey: h(&with.to_bytes()),
        bundle_without_one_time_prekey: h(&without.to_bytes()),
    }
}

#[derive(Serialize)]
pub(super) struct PaddingFile {
    description: &'static str,
    version: u32,
    min_padded_length: usize,
    lengths: Vec<PaddedLength>,
    examples: Vec<PaddingExample>,
}

#[derive(Serialize)]
struct PaddedLength {
    plaintext_length: usize,
    padded_length: usize,
}

#[derive(Serialize)]
struct PaddingExample {
    plaintext: String,
    padded: String,
}

pub(super) fn padding_file() -> PaddingFile {
    let lengths = [0, 1, 31, 32, 33, 100, 1000, 1025, 4096, 65535]
        .into_iter()
        .map(|len| PaddedLength {
            plaintext_length: len,
            padded_length: padding::padded_len(len),
        })
        .collect();
    let samples: [&[u8]; 3] = [b"", b"hello", b"thirty-three bytes of plaintext!!"];
    let examples = samples
        .into_iter()
        .map(|plaintext| {
            let mut padded = plaintext.to_vec();
            padding::pad_in_place(&mut padded, 0);
            PaddingExample {
                plaintext: h(plaintext),
                padded: h(&padded),
            }
        })
        .collect();
    PaddingFile {
        description: "Padme padding of plaintexts: padded length = max(32, padme(n + 1)), framing \
                      plaintext || 0x80 || 0x00*. See README.md.",
        version: FILE_VERSION,
        min_padded_length: padding::MIN_PADDED_LEN,
        lengths,
        examples,
    }
}
