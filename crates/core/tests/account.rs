//! Session setup and the responder's prekey lifecycle (account.rs, prekey.rs, identity.rs,
//! handshake.rs; spec sections 5, 7, 8, 11.3): every way an initial envelope or a bundle can be
//! wrong is rejected with its documented error, and a rejected initial envelope leaves the
//! account byte-for-byte unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use rand_chacha::ChaCha20Rng;
use sealwire_core::{
    Account, BundlePolicy, Error, IdentityKeyPair, OneTimePrekey, PrekeyBundle, PublicIdentity,
    Session, SessionConfig, SignedPrekey, Timestamp, VerifiedBundle,
};
use security_support::{
    T0, account_state, at, expect_accept_err, identity_secrets, new_account, raw_sign, rng,
    setup_offsets, signed_prekey_message, verified_bundle,
};

const DAY: u64 = 24 * 60 * 60;

/// A new initiator's first (initial) envelope to the owner of `bundle`.
fn initial_from(
    bundle: &VerifiedBundle,
    rng: &mut ChaCha20Rng,
    now: Timestamp,
) -> (IdentityKeyPair, Session, Vec<u8>) {
    let identity = IdentityKeyPair::generate(rng);
    let mut session =
        Session::initiate(&identity, bundle, SessionConfig::default(), rng, now).unwrap();
    let envelope = session.seal(b"first", rng, now).unwrap();
    (identity, session, envelope)
}

fn verify(bundle: PrekeyBundle, now: Timestamp) -> VerifiedBundle {
    bundle.verify(&BundlePolicy::default(), now).unwrap()
}

#[test]
fn accept_returns_the_initiator_identity_and_consumes_the_one_time_prekey() {
    let mut rng = rng(200);
    let mut bob = new_account(&mut rng, at(0));
    let bundle = verified_bundle(&mut bob, true, &mut rng, at(0));
    assert_eq!(bob.one_time_prekey_count(), 1);
    let (alice, _session, envelope) = initial_from(&bundle, &mut rng, at(0));
    let accepted = bob.accept(&envelope, at(0)).unwrap();
    assert_eq!(accepted.plaintext, b"first");
    assert_eq!(&accepted.peer, alice.public());
    assert_eq!(accepted.session.peer_identity(), alice.public());
    assert_eq!(bob.one_time_prekey_count(), 0);
}

#[test]
fn unknown_signed_prekey_that_never_existed() {
    let mut rng = rng(201);
    let mut bob = new_account(&mut rng, at(0));
    let before_rotation = bob.to_bytes();
    let new_spk = bob.rotate_signed_prekey(&mut rng, at(10));
    assert_eq!(new_spk.id, 2);
    let bundle = verified_bundle(&mut bob, false, &mut rng, at(10));
    let (_, _, envelope) = initial_from(&bundle, &mut rng, at(10));
    // The account as it was before prekey 2 existed.
    let mut old = Account::from_bytes(before_rotation.expose_secret()).unwrap();
    expect_accept_err(&mut old, &envelope, at(10), Error::UnknownSignedPrekey(2));
    // A prekey id that the current account never had (public header field, checked before any
    // Diffie-Hellman).
    let offsets = setup_offsets(&envelope);
    let mut forged = envelope.clone();
    forged[offsets.signed_prekey_id] = 77;
    expect_accept_err(&mut bob, &forged, at(10), Error::UnknownSignedPrekey(77));
    assert!(bob.accept(&envelope, at(10)).is_ok());
}

#[test]
fn retired_signed_prekey_is_accepted_within_grace_and_unknown_after_prune() {
    let mut rng = rng(202);
    let mut bob = new_account(&mut rng, at(0));
    let grace = bob.config().signed_prekey_grace_secs;
    assert_eq!(grace, 30 * DAY);
    let old_bundle = verified_bundle(&mut bob, false, &mut rng, at(0));
    let envelopes: Vec<Vec<u8>> = (0..3)
        .map(|_| initial_from(&old_bundle, &mut rng, at(0)).2)
        .collect();
    bob.rotate_signed_prekey(&mut rng, at(100));
    // Pruning inside the grace period keeps the retired prekey.
    bob.prune(at(100 + grace - 1));
    assert!(bob.accept(&envelopes[0], at(100 + grace - 1)).is_ok());
    // At the end of the grace period the retired prekey is no longer used, even unpruned.
    expect_accept_err(
        &mut bob,
        &envelopes[1],
        at(100 + grace),
        Error::UnknownSignedPrekey(1),
    );
    // After prune its secret is gone: not even a clock set back can use it again.
    bob.prune(at(100 + grace));
    expect_accept_err(
        &mut bob,
        &envelopes[1],
        at(100),
        Error::UnknownSignedPrekey(1),
    );
    expect_accept_err(
        &mut bob,
        &envelopes[2],
        at(100),
        Error::UnknownSignedPrekey(1),
    );
    // The replay of the envelope accepted under it is refused as well (no key, no cache).
    expect_accept_err(
        &mut bob,
        &envelopes[0],
        at(100),
        Error::UnknownSignedPrekey(1),
    );
    // The current prekey keeps working.
    let bundle = verified_bundle(&mut bob, false, &mut rng, at(100 + grace));
    let (_, _, envelope) = initial_from(&bundle, &mut rng, at(100 + grace));
    assert!(bob.accept(&envelope, at(100 + grace)).is_ok());
}

#[test]
fn unknown_one_time_prekey_never_held_or_already_used() {
    let mut rng = rng(203);
    let mut bob = new_account(&mut rng, at(0));
    let before = bob.to_bytes();
    let opk = bob.generate_one_time_prekeys(1, &mut rng).unwrap()[0].clone();
    let bundle = verify(bob.bundle(Some(opk.id)).unwrap(), at(0));
    let (_, _, from_alice) = initial_from(&bundle, &mut rng, at(0));
    // The server hands the same one-time prekey to a second initiator.
    let (_, _, from_carol) = initial_from(&bundle, &mut rng, at(0));

    // Never held (the account before the prekey was generated).
    let mut old = Account::from_bytes(before.expose_secret()).unwrap();
    expect_accept_err(
        &mut old,
        &from_alice,
        at(0),
        Error::UnknownOneTimePrekey(opk.id),
    );
    // A forged one-time prekey id.
    let offsets = setup_offsets(&from_alice);
    assert_eq!(from_alice[offsets.one_time_option], 1);
    let mut forged = from_alice.clone();
    forged[offsets.one_time_option + 1] = 99;
    expect_accept_err(&mut bob, &forged, at(0), Error::UnknownOneTimePrekey(99));

    // Already used by another session.
    assert!(bob.accept(&from_alice, at(0)).is_ok());
    assert_eq!(bob.one_time_prekey_count(), 0);
    expect_accept_err(
        &mut bob,
        &from_carol,
        at(0),
        Error::UnknownOneTimePrekey(opk.id),
    );
    assert_eq!(
        bob.bundle(Some(opk.id)),
        Err(Error::UnknownOneTimePrekey(opk.id))
    );
}

#[test]
fn replayed_initial_envelopes_are_rejected_with_and_without_one_time_prekey() {
    for one_time in [true, false] {
        let mut rng = rng(204);
        let mut bob = new_account(&mut rng, at(0));
        let bundle = verified_bundle(&mut bob, one_time, &mut rng, at(0));
        let (_, mut alice, first) = initial_from(&bundle, &mut rng, at(0));
        let second = alice.seal(b"second", &mut rng, at(0)).unwrap();
        let mut bob_session = bob.accept(&first, at(0)).unwrap().session;
        expect_accept_err(&mut bob, &first, at(1), Error::Replay);
        // Every initial envelope of the session carries the same base key.
        expect_accept_err(&mut bob, &second, at(1), Error::Replay);
        // The replay cache survives serialization ...
        let mut restored = Account::from_bytes(bob.to_bytes().expose_secret()).unwrap();
        expect_accept_err(&mut restored, &first, at(1), Error::Replay);
        // ... and retirement of the signed prekey.
        restored.rotate_signed_prekey(&mut rng, at(2));
        expect_accept_err(&mut restored, &first, at(3), Error::Replay);
        // The session it set up opens the rest, once.
        assert_eq!(bob_session.open(&second, at(1)).unwrap(), b"second");
        assert_eq!(bob_session.open(&first, at(1)), Err(Error::Replay));
    }
}

#[test]
fn prekey_exhausted_when_max_sessions_per_signed_prekey_is_reached() {
    let mut rng = rng(205);
    let mut bob = new_account(&mut rng, at(0));
    let mut config = bob.config().clone();
    config.max_sessions_per_signed_prekey = 0;
    assert!(matches!(
        bob.set_config(config.clone()),
        Err(Error::InvalidConfig(_))
    ));
    config.max_sessions_per_signed_prekey = 2;
    bob.set_config(config).unwrap();
    let bundle = verified_bundle(&mut bob, false, &mut rng, at(0));
    let envelopes: Vec<Vec<u8>> = (0..3)
        .map(|_| initial_from(&bundle, &mut rng, at(0)).2)
        .collect();
    assert!(bob.accept(&envelopes[0], at(0)).is_ok());
    assert!(bob.accept(&envelopes[1], at(0)).is_ok());
    expect_accept_err(&mut bob, &envelopes[2], at(0), Error::PrekeyExhausted(1));
    // A replay is still reported as a replay.
    expect_accept_err(&mut bob, &envelopes[0], at(0), Error::Replay);
    // Rotation makes room under the new prekey, not under the exhausted one.
    bob.rotate_signed_prekey(&mut rng, at(1));
    let bundle = verified_bundle(&mut bob, false, &mut rng, at(1));
    let (_, _, fresh) = initial_from(&bundle, &mut rng, at(1));
    assert!(bob.accept(&fresh, at(1)).is_ok());
    expect_accept_err(&mut bob, &envelopes[2], at(1), Error::PrekeyExhausted(1));
}

/// A change made to a bundle by whoever hands it out.
type BundleEdit<'a> = Box<dyn Fn(&mut PrekeyBundle) + 'a>;

#[test]
fn forged_signed_prekey_signature_is_invalid() {
    let mut rng = rng(206);
    let mut bob = new_account(&mut rng, at(0));
    let carol = new_account(&mut rng, at(0));
    let genuine = bob.bundle(None).unwrap();
    assert!(
        genuine
            .clone()
            .verify(&BundlePolicy::default(), at(0))
            .is_ok()
    );
    let mutations: Vec<BundleEdit<'_>> = vec![
        Box::new(|b| b.signed_prekey.signature[0] ^= 0x01),
        Box::new(|b| b.signed_prekey.signature[63] ^= 0x40),
        Box::new(|b| b.signed_prekey.public_key[5] ^= 0x10),
        Box::new(|b| b.signed_prekey.id += 1),
        Box::new(|b| {
            b.signed_prekey.created_at = Timestamp::from_unix_secs(T0 + 1);
        }),
        // The server swaps in Carol's identity with Bob's signed prekey.
        Box::new(|b| b.identity = carol.identity().public().clone()),
        // Or Carol's signed prekey (signed by Carol) under Bob's identity.
        Box::new(|b| b.signed_prekey = carol.signed_prekey().clone()),
    ];
    for mutate in mutations {
        let mut bundle = genuine.clone();
        mutate(&mut bundle);
        assert_ne!(bundle, genuine);
        // Survives encoding (identity binding intact), fails verification.
        let decoded = PrekeyBundle::from_bytes(&bundle.to_bytes()).unwrap();
        assert!(matches!(
            decoded.verify(&BundlePolicy::default(), at(0)),
            Err(Error::InvalidSignature(_))
        ));
    }
    let _ = verified_bundle(&mut bob, true, &mut rng, at(0));
}

/// Adds the Ed25519 group order L to the little-endian scalar S of a signature: the same
/// signature in a malleated, non-canonical form.
fn malleate(signature: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let s = &mut signature[32..64];
    let mut carry = 0u16;
    for (byte, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
}

#[test]
fn forged_identity_binding_is_invalid_in_bundle_and_identity_decoding() {
    let mut rng = rng(207);
    let bob = new_account(&mut rng, at(0));
    let carol = IdentityKeyPair::generate(&mut rng);
    let bundle = bob.bundle(None).unwrap().to_bytes();
    let identity = bob.identity().public().to_bytes();
    assert_eq!(&bundle[..128], &identity);
    assert!(PrekeyBundle::from_bytes(&bundle).is_ok());

    let mut forgeries: Vec<[u8; 128]> = Vec::new();
    // Bob's signing key bound to Carol's agreement key (the attack the binding prevents).
    let mut swapped_agreement = identity;
    swapped_agreement[32..64].copy_from_slice(carol.public().agreement_key());
    forgeries.push(swapped_agreement);
    // Carol's signing key with Bob's agreement key and Bob's binding.
    let mut swapped_signing = identity;
    swapped_signing[..32].copy_from_slice(carol.public().signing_key());
    forgeries.push(swapped_signing);
    for index in [64, 80, 95, 96, 127] {
        let mut flipped = identity;
        flipped[index] ^= 0x01;
        forgeries.push(flipped);
    }
    // The same binding signature, malleated (S + L): strict verification refuses it.
    let mut malleated = identity;
    malleate(&mut malleated[64..]);
    forgeries.push(malleated);
    // A small-order signing key (the identity point) with the signature (R = identity, S = 0)
    // that cofactored or non-strict verification would accept for any message.
    let mut small_order = [0u8; 128];
    small_order[0] = 1;
    small_order[32..64].copy_from_slice(carol.public().agreement_key());
    small_order[64] = 1;
    forgeries.push(small_order);

    for forged in forgeries {
        assert!(
            matches!(
                PublicIdentity::from_bytes(&forged),
                Err(Error::InvalidSignature(_))
            ),
            "{:?}",
            PublicIdentity::from_bytes(&forged)
        );
        let mut forged_bundle = bundle.clone();
        forged_bundle[..128].copy_from_slice(&forged);
        assert!(matches!(
            PrekeyBundle::from_bytes(&forged_bundle),
            Err(Error::InvalidSignature(_))
        ));
    }
    assert_eq!(
        PublicIdentity::from_bytes(&identity[..127]),
        Err(Error::Malformed("public identity (must be 128 bytes)"))
    );
}

#[test]
fn stale_and_future_signed_prekeys_are_refused_at_the_documented_limits() {
    let mut rng = rng(208);
    let policy = BundlePolicy::default();
    assert_eq!(policy.max_signed_prekey_age_secs, Some(90 * DAY));
    assert_eq!(policy.max_clock_skew_secs, DAY);
    // Created at T0 + 2 days.
    let bob = new_account(&mut rng, at(2 * DAY));
    let bundle = bob.bundle(None).unwrap();
    let created = T0 + 2 * DAY;
    assert!(bundle.clone().verify(&policy, at(92 * DAY)).is_ok());
    assert_eq!(
        bundle.clone().verify(&policy, at(92 * DAY + 1)),
        Err(Error::StalePrekey {
            id: 1,
            created_at: created,
            now: created + 90 * DAY + 1,
        })
    );
    // Dated in the future: one day of clock skew is tolerated, not more.
    assert!(bundle.clone().verify(&policy, at(DAY)).is_ok());
    assert_eq!(
        bundle.clone().verify(&policy, at(DAY - 1)),
        Err(Error::StalePrekey {
            id: 1,
            created_at: created,
            now: T0 + DAY - 1,
        })
    );
    // A policy without an age limit still refuses the future.
    let mut lenient = BundlePolicy::default();
    lenient.max_signed_prekey_age_secs = None;
    assert!(bundle.clone().verify(&lenient, at(10_000 * DAY)).is_ok());
    assert!(matches!(
        bundle.verify(&lenient, at(0)),
        Err(Error::StalePrekey { .. })
    ));
}

#[test]
fn substituted_one_time_prekey_makes_setup_fail_and_consumes_nothing() {
    let mut rng = rng(209);
    let mut bob = new_account(&mut rng, at(0));
    let mut mallory = new_account(&mut rng, at(0));
    let opks = bob.generate_one_time_prekeys(2, &mut rng).unwrap();
    let fake = mallory.generate_one_time_prekeys(1, &mut rng).unwrap()[0].clone();
    let genuine = bob.bundle(Some(opks[0].id)).unwrap();
    let substitutions = [
        // Mallory's key under Bob's prekey id.
        OneTimePrekey {
            id: opks[0].id,
            public_key: fake.public_key,
        },
        // Bob's other prekey's key under the first one's id.
        OneTimePrekey {
            id: opks[0].id,
            public_key: opks[1].public_key,
        },
    ];
    for substitute in substitutions {
        let mut bundle = genuine.clone();
        bundle.one_time_prekey = Some(substitute);
        // One-time prekeys are unsigned: the bundle still verifies ...
        let verified = verify(bundle, at(0));
        let (_, _, envelope) = initial_from(&verified, &mut rng, at(0));
        // ... but the responder cannot complete the setup.
        expect_accept_err(&mut bob, &envelope, at(0), Error::DecryptFailed);
        assert_eq!(bob.one_time_prekey_count(), 2);
    }
    // Stripping the one-time prekey is allowed (as in X3DH) and consumes none.
    let mut stripped = genuine.clone();
    stripped.one_time_prekey = None;
    let (_, _, envelope) = initial_from(&verify(stripped, at(0)), &mut rng, at(0));
    assert!(bob.accept(&envelope, at(0)).is_ok());
    assert_eq!(bob.one_time_prekey_count(), 2);
    // The genuine bundle still works and consumes exactly its prekey.
    let (_, _, envelope) = initial_from(&verify(genuine, at(0)), &mut rng, at(0));
    assert!(bob.accept(&envelope, at(0)).is_ok());
    assert_eq!(bob.one_time_prekey_count(), 1);
}

#[test]
fn man_in_the_middle_substituting_the_identity_cannot_reach_the_real_responder() {
    let mut rng = rng(210);
    let mut bob = new_account(&mut rng, at(0));
    let mut mallory = new_account(&mut rng, at(0));
    let mallory_secrets = identity_secrets(mallory.identity());

    // 1. The server hands out Mallory's own bundle (her identity, her signed prekey, which has
    //    the same id as Bob's) as Bob's.
    let mitm = verify(mallory.bundle(None).unwrap(), at(0));
    assert_eq!(mitm.bundle().signed_prekey.id, bob.signed_prekey().id);
    let (alice, alice_session, envelope) = initial_from(&mitm, &mut rng, at(0));
    expect_accept_err(&mut bob, &envelope, at(0), Error::DecryptFailed);
    // Mallory can read it: that is what safety numbers are for, and they differ.
    let accepted = mallory.accept(&envelope, at(0)).unwrap();
    assert_eq!(&accepted.peer, alice.public());
    assert_ne!(
        alice_session.peer_identity().safety_number(alice.public()),
        bob.identity().public().safety_number(alice.public()),
    );

    // 2. Mallory re-signs Bob's signed prekey with her identity: the bundle verifies as hers,
    //    but neither Bob nor Mallory can complete the setup.
    let spk = bob.signed_prekey().clone();
    let resigned = PrekeyBundle {
        identity: mallory.identity().public().clone(),
        signed_prekey: SignedPrekey {
            signature: raw_sign(
                &mallory_secrets.signing_seed,
                &signed_prekey_message(spk.id, spk.created_at.as_unix_secs(), &spk.public_key),
            ),
            ..spk
        },
        one_time_prekey: None,
    };
    let (_, _, envelope) = initial_from(&verify(resigned, at(0)), &mut rng, at(0));
    expect_accept_err(&mut bob, &envelope, at(0), Error::DecryptFailed);
    expect_accept_err(&mut mallory, &envelope, at(0), Error::DecryptFailed);

    // 3. Relaying through her own session, Mallory reaches Bob only as herself.
    let bundle = verified_bundle(&mut bob, false, &mut rng, at(0));
    let mut relay = Session::initiate(
        mallory.identity(),
        &bundle,
        SessionConfig::default(),
        &mut rng,
        at(0),
    )
    .unwrap();
    let relayed = relay.seal(b"first", &mut rng, at(0)).unwrap();
    let accepted = bob.accept(&relayed, at(0)).unwrap();
    assert_eq!(&accepted.peer, mallory.identity().public());
    assert_ne!(&accepted.peer, alice.public());
}

#[test]
fn account_state_roundtrip_keeps_prekeys_and_replay_cache() {
    let mut rng = rng(211);
    let mut bob = new_account(&mut rng, at(0));
    let bundle = verified_bundle(&mut bob, true, &mut rng, at(0));
    let spare = bob.generate_one_time_prekeys(3, &mut rng).unwrap();
    let (_, _, first) = initial_from(&bundle, &mut rng, at(0));
    bob.accept(&first, at(0)).unwrap();
    bob.rotate_signed_prekey(&mut rng, at(5));
    let bytes = account_state(&bob);
    let mut restored = Account::from_bytes(&bytes).unwrap();
    assert_eq!(account_state(&restored), bytes);
    assert_eq!(restored.signed_prekey(), bob.signed_prekey());
    assert_eq!(restored.one_time_prekey_count(), 3);
    assert_eq!(restored.identity().public(), bob.identity().public());
    expect_accept_err(&mut restored, &first, at(6), Error::Replay);
    let bundle = verify(restored.bundle(Some(spare[1].id)).unwrap(), at(6));
    let (_, _, envelope) = initial_from(&bundle, &mut rng, at(6));
    assert!(restored.accept(&envelope, at(6)).is_ok());
    assert_eq!(restored.one_time_prekey_count(), 2);
}

#[test]
fn one_time_prekey_generation_is_bounded() {
    let mut rng = rng(212);
    let mut bob = new_account(&mut rng, at(0));
    let mut config = bob.config().clone();
    config.max_one_time_prekeys = 3;
    bob.set_config(config).unwrap();
    bob.generate_one_time_prekeys(2, &mut rng).unwrap();
    let before = account_state(&bob);
    assert!(matches!(
        bob.generate_one_time_prekeys(2, &mut rng),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(account_state(&bob), before);
    assert_eq!(bob.generate_one_time_prekeys(1, &mut rng).unwrap().len(), 1);
}

/// `generate_one_time_prekeys` documents `InvalidConfig` when the count would exceed the
/// bound; an absurd count must get that error, not a panic.
#[test]
fn one_time_prekey_generation_with_absurd_count_is_an_error_not_a_panic() {
    let mut rng = rng(213);
    let mut bob = new_account(&mut rng, at(0));
    bob.generate_one_time_prekeys(1, &mut rng).unwrap();
    let before = account_state(&bob);
    assert!(matches!(
        bob.generate_one_time_prekeys(usize::MAX, &mut rng),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(account_state(&bob), before);
}
