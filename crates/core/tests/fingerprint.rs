//! Safety numbers (fingerprint.rs, spec section 6): the same 60 digits for both parties, shown
//! as 12 groups of 5, covering both keys of both identities, and computed exactly as the spec
//! says (checked against an independent implementation with `sha2`). Each safety number costs
//! 2 × 5 201 SHA-512 runs, so the tests compute only a handful.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::{FINGERPRINT_ITERATIONS, IdentityKeyPair, PublicIdentity, SafetyNumber};
use security_support::{established, identity_secrets, raw_sign, rng};
use sha2::{Digest, Sha512};

/// Spec section 6, from the spec alone.
fn fingerprint(identity: &PublicIdentity) -> String {
    let key_bytes = [identity.signing_key().as_slice(), identity.agreement_key()].concat();
    let mut hash = Sha512::new()
        .chain_update(b"sealwire/v1/fingerprint")
        .chain_update(&key_bytes)
        .finalize();
    for _ in 0..5200 {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(&key_bytes)
            .finalize();
    }
    hash[..30]
        .chunks(5)
        .map(|c| {
            let value = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", value % 100_000)
        })
        .collect()
}

fn assert_well_formed(number: &SafetyNumber) {
    let digits = number.digits();
    assert_eq!(digits.len(), 60);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    let shown = number.to_string();
    let groups: Vec<&str> = shown.split(' ').collect();
    assert_eq!(groups.len(), 12, "{shown}");
    assert!(groups.iter().all(|g| g.len() == 5));
    assert_eq!(groups.concat(), digits);
    assert_eq!(shown.len(), 71);
    assert_eq!(format!("{number:?}"), format!("SafetyNumber({shown})"));
}

#[test]
fn safety_number_is_symmetric_well_formed_and_matches_the_spec() {
    assert_eq!(FINGERPRINT_ITERATIONS, 5200);
    let mut rng = rng(800);
    let a = IdentityKeyPair::generate(&mut rng);
    let b = IdentityKeyPair::generate(&mut rng);
    let ab = a.public().safety_number(b.public());
    let ba = b.public().safety_number(a.public());
    assert_eq!(ab, ba);
    assert_well_formed(&ab);
    let (fa, fb) = (fingerprint(a.public()), fingerprint(b.public()));
    assert_ne!(fa, fb);
    let expected = if fa <= fb { fa + &fb } else { fb + &fa };
    assert_eq!(ab.digits(), expected);
}

#[test]
fn safety_number_changes_when_either_identity_or_either_key_changes() {
    let mut rng = rng(801);
    let a = IdentityKeyPair::generate(&mut rng);
    let b = IdentityKeyPair::generate(&mut rng);
    let c = IdentityKeyPair::generate(&mut rng);
    let ab = a.public().safety_number(b.public());
    assert_ne!(a.public().safety_number(c.public()), ab);
    assert_ne!(c.public().safety_number(b.public()), ab);

    // Same signing key, another agreement key (a valid identity: the owner re-binds it).
    let seed = identity_secrets(&a).signing_seed;
    let other_agreement = *c.public().agreement_key();
    let mut rebound = a.public().to_bytes();
    rebound[32..64].copy_from_slice(&other_agreement);
    let binding = raw_sign(
        &seed,
        &[
            b"sealwire/v1/identity-binding".as_slice(),
            a.public().signing_key(),
            &other_agreement,
        ]
        .concat(),
    );
    rebound[64..].copy_from_slice(&binding);
    let rebound = PublicIdentity::from_bytes(&rebound).unwrap();
    assert_ne!(rebound.safety_number(b.public()), ab);
}

#[test]
fn both_parties_of_a_session_compute_the_same_safety_number() {
    let p = established(
        802,
        sealwire_core::SessionConfig::default(),
        sealwire_core::SessionConfig::default(),
    );
    let seen_by_alice = p
        .alice
        .peer_identity()
        .safety_number(p.alice_identity.public());
    let seen_by_bob = p
        .bob
        .peer_identity()
        .safety_number(p.bob_account.identity().public());
    assert_eq!(seen_by_alice, seen_by_bob);
    assert_well_formed(&seen_by_alice);
}
