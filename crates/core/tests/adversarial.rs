//! An active attacker against setup and sessions (spec sections 4, 5, 8, 10, 13):
//!
//! - impersonation: an attacker who knows everything public (Bob's bundle, Alice's public
//!   identity) builds an initial envelope claiming to be Alice. The forger is an independent
//!   implementation of the spec's initiator, first checked byte for byte against the library
//!   with Alice's real key, so the refusal cannot be an artefact of a broken forger;
//! - cross-protocol signatures through `IdentityKeyPair::sign_with_label`;
//! - low-order keys in bundles, identities and headers;
//! - reflection of a party's own envelopes;
//! - identity hiding and length hiding in the envelope bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::Rng;
use sealwire_core::{
    BundlePolicy, EnvelopeHeader, Error, IdentityKeyPair, OneTimePrekey, PrekeyBundle,
    PublicIdentity, Session, SessionConfig, SignedPrekey, padded_len,
};
use security_support::{
    at, epoch_of, established, expect_accept_err, expect_open_err, identity_secrets, new_account,
    raw_sign, rng, setup_offsets, signed_prekey_message, verified_bundle,
};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    StaticSecret::from(*secret)
        .diffie_hellman(&PublicKey::from(*public))
        .to_bytes()
}

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn hmac(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap();
    for part in data {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// What the forger puts into an initial envelope.
struct Forgery<'a> {
    /// The responder's bundle (public).
    bundle: &'a PrekeyBundle,
    /// The identity sealed into the setup header: who the envelope claims to come from.
    claimed: &'a PublicIdentity,
    /// The X25519 secret used for `DH1 = X25519(x_A, SPK_B)`. Only the real initiator has the
    /// one that matches `claimed`.
    dh1_secret: [u8; 32],
    session_id: [u8; 16],
    base_secret: [u8; 32],
    plaintext: &'a [u8],
}

/// The first initial envelope of a session (epoch 1, counter 0), built from the spec alone:
/// 8.1 (DH), 8.3 (sealed identity), 8.4 (setup root), 8.5 (AD), 9.2-9.5 (epoch 1 and its first
/// message key), 10.1-10.2 (layout and padding).
fn forge_initial(f: &Forgery<'_>) -> Vec<u8> {
    let spk = &f.bundle.signed_prekey;
    let responder_keys = [
        f.bundle.identity.signing_key().as_slice(),
        f.bundle.identity.agreement_key(),
    ]
    .concat();
    let claimed_keys = [
        f.claimed.signing_key().as_slice(),
        f.claimed.agreement_key(),
    ]
    .concat();
    let ek = x25519_public(&f.base_secret);

    let dh1 = x25519(&f.dh1_secret, &spk.public_key);
    let dh2 = x25519(&f.base_secret, f.bundle.identity.agreement_key());
    let dh3 = x25519(&f.base_secret, &spk.public_key);
    let dh4 = f
        .bundle
        .one_time_prekey
        .as_ref()
        .map(|o| x25519(&f.base_secret, &o.public_key));

    // 8.3: the sealed identity.
    let mut seal_ikm = [dh2, dh3].concat();
    seal_ikm.extend(dh4.iter().flatten());
    let seal_info = [
        b"sealwire/v1/setup/identity-seal".as_slice(),
        &ek,
        &responder_keys,
        &spk.public_key,
    ]
    .concat();
    let seal = hkdf(&[0u8; 32], &seal_ikm, &seal_info, 44);
    let sealed_identity = Aes256Gcm::new_from_slice(&seal[..32])
        .unwrap()
        .encrypt(
            &Nonce::<Aes256Gcm>::try_from(&seal[32..44]).unwrap(),
            Payload {
                msg: &f.claimed.to_bytes(),
                aad: &[],
            },
        )
        .unwrap();
    assert_eq!(sealed_identity.len(), 144);

    // 8.4: the setup root key.
    let mut transcript = [claimed_keys.as_slice(), &responder_keys].concat();
    transcript.extend_from_slice(&spk.id.to_be_bytes());
    transcript.extend_from_slice(&spk.public_key);
    match &f.bundle.one_time_prekey {
        Some(o) => {
            transcript.push(1);
            transcript.extend_from_slice(&o.id.to_be_bytes());
            transcript.extend_from_slice(&o.public_key);
        }
        None => transcript.push(0),
    }
    transcript.extend_from_slice(&ek);
    transcript.extend_from_slice(&f.session_id);
    let mut root_ikm = vec![0xFF; 32];
    root_ikm.extend_from_slice(&dh1);
    root_ikm.extend_from_slice(&seal_ikm);
    let root = hkdf(
        &[0u8; 32],
        &root_ikm,
        &[b"sealwire/v1/setup/root".as_slice(), &transcript].concat(),
        32,
    );

    // 8.5: the session AD.
    let ad: [u8; 32] = Sha256::new()
        .chain_update(b"sealwire/v1/session-ad")
        .chain_update(&claimed_keys)
        .chain_update(&responder_keys)
        .finalize()
        .into();

    // 9.2-9.5: epoch 1 is child 1 of epoch 0 (seed S(0, 1) = RK_setup), ratchet key EK, parent
    // key SPK_B; its first message key.
    let child_salt = hmac(&root, &[&[0x01]]);
    let epoch = hkdf(
        &child_salt,
        &dh3,
        &[
            b"sealwire/v1/epoch".as_slice(),
            &1u32.to_be_bytes(),
            &0u32.to_be_bytes(),
        ]
        .concat(),
        64,
    );
    let message_key = hmac(&epoch[32..64], &[&[0x01]]);
    let mut keys = [0u8; 76];
    Hkdf::<Sha256>::from_prk(&message_key)
        .unwrap()
        .expand(b"sealwire/v1/message", &mut keys)
        .unwrap();
    let (aes_key, mac_key, nonce) = (&keys[..32], &keys[32..64], &keys[64..76]);

    // 10.1: header (kind 0), padded ciphertext, tag.
    let mut header = vec![1, 1, 0];
    header.extend_from_slice(&f.session_id);
    header.extend_from_slice(&[1, 0, 0, 0]); // epoch 1, parent 0, counter 0, no previous
    header.extend_from_slice(&ek); // ratchet key of epoch 1
    header.extend_from_slice(&ek); // base key
    varint(&mut header, u64::from(spk.id));
    match &f.bundle.one_time_prekey {
        Some(o) => {
            header.push(1);
            varint(&mut header, u64::from(o.id));
        }
        None => header.push(0),
    }
    header.extend_from_slice(&sealed_identity);
    let mut padded = f.plaintext.to_vec();
    padded.push(0x80);
    padded.resize(padded_len(f.plaintext.len()), 0);
    let ciphertext = Aes256Gcm::new_from_slice(aes_key)
        .unwrap()
        .encrypt(
            &Nonce::<Aes256Gcm>::try_from(nonce).unwrap(),
            Payload {
                msg: &padded,
                aad: &[header.as_slice(), &ad].concat(),
            },
        )
        .unwrap();
    let tag = hmac(mac_key, &[&header, &ad, nonce, &ciphertext]);
    let mut envelope = header;
    varint(&mut envelope, ciphertext.len() as u64);
    envelope.extend_from_slice(&ciphertext);
    envelope.extend_from_slice(&tag);
    envelope
}

#[test]
fn impersonating_the_initiator_without_its_identity_key_fails() {
    for one_time in [false, true] {
        let mut rng = rng(300 + u64::from(one_time));
        let mut bob = new_account(&mut rng, at(0));
        let bundle = verified_bundle(&mut bob, one_time, &mut rng, at(0));
        let alice = IdentityKeyPair::generate(&mut rng);
        let alice_secrets = identity_secrets(&alice);

        // Control: with Alice's real key, the forger reproduces the library's envelope byte for
        // byte (same random stream: session id, then base key), so it implements the spec.
        let mut stream = rng.clone();
        let mut session_id = [0u8; 16];
        let mut base_secret = [0u8; 32];
        stream.fill_bytes(&mut session_id);
        stream.fill_bytes(&mut base_secret);
        let mut session =
            Session::initiate(&alice, &bundle, SessionConfig::default(), &mut rng, at(0)).unwrap();
        let genuine = session.seal(b"it is me, Alice", &mut rng, at(0)).unwrap();
        let mut forgery = Forgery {
            bundle: bundle.bundle(),
            claimed: alice.public(),
            dh1_secret: alice_secrets.agreement_secret,
            session_id,
            base_secret,
            plaintext: b"it is me, Alice",
        };
        assert_eq!(forge_initial(&forgery), genuine);

        // Mallory: everything public, fresh session id and base key, but her own X25519 secret
        // for DH1, because she does not have Alice's. The sealed identity opens (it needs only
        // DH2, DH3, DH4), the setup root does not match.
        let mallory = IdentityKeyPair::generate(&mut rng);
        rng.fill_bytes(&mut forgery.session_id);
        rng.fill_bytes(&mut forgery.base_secret);
        forgery.dh1_secret = identity_secrets(&mallory).agreement_secret;
        forgery.plaintext = b"it is me, Alice (really)";
        let forged = forge_initial(&forgery);
        expect_accept_err(&mut bob, &forged, at(0), Error::DecryptFailed);
        // With a random DH1 secret too.
        rng.fill_bytes(&mut forgery.dh1_secret);
        let forged = forge_initial(&forgery);
        expect_accept_err(&mut bob, &forged, at(0), Error::DecryptFailed);
        // The genuine envelope is still accepted afterwards.
        let accepted = bob.accept(&genuine, at(0)).unwrap();
        assert_eq!(&accepted.peer, alice.public());
    }
}

/// Spec section 4: an application's signatures (`sign_with_label`) must never be protocol
/// signatures (signed prekeys, identity bindings), whatever label and message it is asked to
/// sign: the domain separation must hold for the signed bytes, not only for the label. (A check
/// on the label alone lets a label that is a proper prefix of `"sealwire/v1/"` be completed by
/// the message.)
#[test]
fn sign_with_label_cannot_produce_protocol_signatures() {
    let mut rng = rng(310);
    let bob = new_account(&mut rng, at(0));
    let identity = bob.identity();
    assert!(matches!(
        identity.sign_with_label(b"", b"x"),
        Err(Error::InvalidConfig(_))
    ));
    let attacker_key = x25519_public(&[7u8; 32]);
    let created = at(0).as_unix_secs();
    let spk_message = signed_prekey_message(9, created, &attacker_key);
    let binding_message = [
        b"sealwire/v1/identity-binding".as_slice(),
        identity.public().signing_key(),
        &attacker_key,
    ]
    .concat();
    // Every split of a protocol message into label and message: proper prefixes of the
    // reserved space ("s", "sealwire", "sealwire/v1"), the reserved prefix itself, and whole
    // protocol labels.
    for split in [1, 8, 11, 12, 25] {
        // A signed prekey of the attacker's choosing under Bob's identity.
        if let Ok(signature) =
            identity.sign_with_label(&spk_message[..split], &spk_message[split..])
        {
            let forged = PrekeyBundle {
                identity: identity.public().clone(),
                signed_prekey: SignedPrekey {
                    id: 9,
                    public_key: attacker_key,
                    created_at: at(0),
                    signature,
                },
                one_time_prekey: None,
            };
            assert!(
                forged.verify(&BundlePolicy::default(), at(0)).is_err(),
                "label {:?} produced a valid signed prekey signature",
                String::from_utf8_lossy(&spk_message[..split])
            );
        }
        // Bob's signing key bound to the attacker's agreement key.
        if let Ok(signature) =
            identity.sign_with_label(&binding_message[..split], &binding_message[split..])
        {
            let mut forged = [0u8; 128];
            forged[..32].copy_from_slice(identity.public().signing_key());
            forged[32..64].copy_from_slice(&attacker_key);
            forged[64..].copy_from_slice(&signature);
            assert!(
                PublicIdentity::from_bytes(&forged).is_err(),
                "label {:?} produced a valid identity binding",
                String::from_utf8_lossy(&binding_message[..split])
            );
        }
    }
}

#[test]
fn low_order_keys_are_refused_everywhere() {
    let low_order: [[u8; 32]; 2] = [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }];
    let mut rng = rng(320);
    let mut bob = new_account(&mut rng, at(0));
    let bob_secrets = identity_secrets(bob.identity());
    let alice = IdentityKeyPair::generate(&mut rng);
    let genuine = bob.bundle(None).unwrap();
    for point in low_order {
        // A signed prekey that is a low-order point, properly signed by its (malicious or
        // broken) owner: the bundle verifies, the initiator refuses to use it.
        let mut bundle = genuine.clone();
        bundle.signed_prekey.public_key = point;
        bundle.signed_prekey.signature = raw_sign(
            &bob_secrets.signing_seed,
            &signed_prekey_message(1, bundle.signed_prekey.created_at.as_unix_secs(), &point),
        );
        let verified = bundle.verify(&BundlePolicy::default(), at(0)).unwrap();
        assert!(matches!(
            Session::initiate(&alice, &verified, SessionConfig::default(), &mut rng, at(0)),
            Err(Error::WeakKey)
        ));
        // A low-order one-time prekey (unsigned: anyone on the path can substitute it).
        let mut bundle = genuine.clone();
        bundle.one_time_prekey = Some(OneTimePrekey {
            id: 1,
            public_key: point,
        });
        let verified = bundle.verify(&BundlePolicy::default(), at(0)).unwrap();
        assert!(matches!(
            Session::initiate(&alice, &verified, SessionConfig::default(), &mut rng, at(0)),
            Err(Error::WeakKey)
        ));
        // An identity whose agreement key is low-order, bound by a valid signature.
        let mut identity = bob.identity().public().to_bytes();
        identity[32..64].copy_from_slice(&point);
        let binding = raw_sign(
            &bob_secrets.signing_seed,
            &[
                b"sealwire/v1/identity-binding".as_slice(),
                &identity[..32],
                &point,
            ]
            .concat(),
        );
        identity[64..].copy_from_slice(&binding);
        let mut bundle = genuine.clone();
        bundle.identity = PublicIdentity::from_bytes(&identity).unwrap();
        bundle.signed_prekey.signature = genuine.signed_prekey.signature;
        let verified = bundle.verify(&BundlePolicy::default(), at(0)).unwrap();
        assert!(matches!(
            Session::initiate(&alice, &verified, SessionConfig::default(), &mut rng, at(0)),
            Err(Error::WeakKey)
        ));
    }

    // A low-order base key in an initial envelope, and a low-order ratchet key in a new epoch.
    let bundle = verified_bundle(&mut bob, false, &mut rng, at(0));
    let mut alice_session =
        Session::initiate(&alice, &bundle, SessionConfig::default(), &mut rng, at(0)).unwrap();
    let initial = alice_session.seal(b"0", &mut rng, at(0)).unwrap();
    let offsets = setup_offsets(&initial);
    for point in low_order {
        let mut forged = initial.clone();
        forged[offsets.base_key..offsets.base_key + 32].copy_from_slice(&point);
        expect_accept_err(&mut bob, &forged, at(0), Error::DecryptFailed);
        forged[23..55].copy_from_slice(&point);
        expect_accept_err(&mut bob, &forged, at(0), Error::DecryptFailed);
    }
    let mut bob_session = bob.accept(&initial, at(0)).unwrap().session;
    let reply = bob_session.seal(b"r", &mut rng, at(0)).unwrap();
    assert_eq!(epoch_of(&reply).0, 2);
    for point in low_order {
        let mut forged = reply.clone();
        forged[23..55].copy_from_slice(&point);
        expect_open_err(&mut alice_session, &forged, at(0), Error::DecryptFailed);
    }
    assert_eq!(alice_session.open(&reply, at(0)).unwrap(), b"r");
}

#[test]
fn own_envelopes_reflected_back_are_refused() {
    let mut p = established(330, SessionConfig::default(), SessionConfig::default());
    let from_alice = p.alice.seal(b"a", &mut p.rng, at(1)).unwrap();
    let from_bob = p.bob.seal(b"b", &mut p.rng, at(1)).unwrap();
    let alice_epoch = epoch_of(&from_alice).0;
    let bob_epoch = epoch_of(&from_bob).0;
    expect_open_err(
        &mut p.alice,
        &from_alice,
        at(1),
        Error::UnknownEpoch { epoch: alice_epoch },
    );
    expect_open_err(
        &mut p.bob,
        &from_bob,
        at(1),
        Error::UnknownEpoch { epoch: bob_epoch },
    );
    assert_eq!(p.bob.open(&from_alice, at(1)).unwrap(), b"a");
    assert_eq!(p.alice.open(&from_bob, at(1)).unwrap(), b"b");
}

/// Does `haystack` contain any `window`-byte slice of `needle`?
fn contains_window(haystack: &[u8], needle: &[u8], window: usize) -> bool {
    needle
        .windows(window)
        .any(|w| haystack.windows(window).any(|h| h == w))
}

#[test]
fn envelopes_carry_no_identity_or_prekey_in_clear() {
    let mut p = established(340, SessionConfig::default(), SessionConfig::default());
    let bob_public = p.bob_account.identity().public().to_bytes();
    let alice_public = p.alice_identity.public().to_bytes();
    let spk = p.bob_account.signed_prekey().public_key;
    // A fresh session, so that its initial envelopes can be checked too.
    let opk = p
        .bob_account
        .generate_one_time_prekeys(1, &mut p.rng)
        .unwrap()[0]
        .clone();
    let bundle = p
        .bob_account
        .bundle(Some(opk.id))
        .unwrap()
        .verify(&BundlePolicy::default(), at(0))
        .unwrap();
    let mut second = Session::initiate(
        &p.alice_identity,
        &bundle,
        SessionConfig::default(),
        &mut p.rng,
        at(0),
    )
    .unwrap();
    let mut envelopes = vec![
        second.seal(b"initial", &mut p.rng, at(0)).unwrap(),
        second.seal(&[0u8; 300], &mut p.rng, at(0)).unwrap(),
    ];
    for i in 0..6 {
        envelopes.push(p.alice.seal(&[i; 40], &mut p.rng, at(1)).unwrap());
        envelopes.push(p.bob.seal(&[i; 40], &mut p.rng, at(1)).unwrap());
    }
    for e in &envelopes {
        for (name, secret_of_identity) in [
            ("Alice's identity", alice_public.as_slice()),
            ("Bob's identity", bob_public.as_slice()),
            ("Bob's signed prekey", spk.as_slice()),
            ("Bob's one-time prekey", opk.public_key.as_slice()),
        ] {
            assert!(
                !contains_window(e, secret_of_identity, 8),
                "{name} appears in an envelope"
            );
        }
    }
}

#[test]
fn envelope_length_reveals_only_the_padded_length() {
    let mut p = established(350, SessionConfig::default(), SessionConfig::default());
    let mut by_padded: std::collections::BTreeMap<usize, usize> = Default::default();
    let lengths = [
        0, 1, 5, 30, 31, 32, 33, 35, 36, 100, 103, 104, 1000, 1023, 1024,
    ];
    for len in lengths {
        let e = p.alice.seal(&vec![0x41; len], &mut p.rng, at(1)).unwrap();
        assert!(epoch_of(&e).1 < 128);
        let expected = padded_len(len);
        if let Some(previous) = by_padded.insert(expected, e.len()) {
            assert_eq!(
                previous,
                e.len(),
                "two plaintexts with padded length {expected}"
            );
        }
        assert_eq!(
            EnvelopeHeader::parse(&e).unwrap().session_id(),
            p.alice.session_id()
        );
        assert_eq!(p.bob.open(&e, at(1)).unwrap(), vec![0x41; len]);
    }
    // 0..=31 bytes all look the same on the wire.
    assert_eq!(padded_len(0), 32);
    assert_eq!(padded_len(31), 32);
    assert!(padded_len(32) > 32);
    assert_eq!(
        by_padded.len(),
        lengths
            .iter()
            .map(|&l| padded_len(l))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
}

/// Application signatures verify only for the exact label and message they were made for.
#[test]
fn application_signatures_are_bound_to_label_and_message() {
    let mut rng = rng(311);
    let bob = new_account(&mut rng, at(0));
    let identity = bob.identity();
    let signature = identity
        .sign_with_label(b"transport-auth", b"nonce")
        .unwrap();
    let public = identity.public();
    public
        .verify_with_label(b"transport-auth", b"nonce", &signature)
        .unwrap();
    for (label, message) in [
        (b"transport-aut".as_slice(), b"hnonce".as_slice()),
        (b"transport-auth", b"nonc"),
        (b"other", b"nonce"),
    ] {
        assert!(matches!(
            public.verify_with_label(label, message, &signature),
            Err(Error::InvalidSignature(_))
        ));
    }
    assert!(matches!(
        identity.sign_with_label(&[b'l'; 256], b"x"),
        Err(Error::InvalidConfig(_))
    ));
}
