//! Secrets never appear in `Debug` (or `Display`) output (secret.rs, identity.rs, account.rs,
//! session.rs): not as lower- or upper-case hex, not as the decimal byte list `{:?}` prints
//! for a byte array, in compact or pretty (`{:#?}`) form.
//!
//! The secrets are taken from the serialized state, not guessed: the identity seeds are parsed
//! out of `IdentityKeyPair::to_bytes()` and checked against the public keys; for sessions and
//! accounts every window of their serialized state is checked, except windows lying inside a
//! public value that `Debug` is allowed to show (session id, public identities).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use sealwire_core::{Error, IdentityKeyPair, SecretBytes, Session, SessionConfig};
use security_support::{
    account_state, at, established, identity_secrets, rng, state, verified_bundle,
};

/// The decimal numbers in `text`, in order (every maximal run of ASCII digits).
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| run.parse::<u64>().unwrap_or(u64::MAX))
        .collect()
}

/// Does `text` show any `window`-byte slice of `secret` as hex (either case) or as a run of
/// decimal byte values? Windows contained in one of `public` are skipped.
fn leaks(text: &str, secret: &[u8], window: usize, public: &[&[u8]]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let decimal = numbers(text);
    for (offset, w) in secret.windows(window).enumerate() {
        if public.iter().any(|p| p.windows(window).any(|pw| pw == w)) {
            continue;
        }
        if lower.contains(&hex::encode(w)) {
            return Some(format!("hex of secret bytes {offset}..{}", offset + window));
        }
        let as_numbers: Vec<u64> = w.iter().map(|&b| u64::from(b)).collect();
        if decimal.windows(window).any(|d| d == as_numbers.as_slice()) {
            return Some(format!(
                "decimal secret bytes {offset}..{}",
                offset + window
            ));
        }
    }
    None
}

#[track_caller]
fn assert_no_leak(what: &str, text: &str, secret: &[u8], window: usize, public: &[&[u8]]) {
    if let Some(how) = leaks(text, secret, window, public) {
        panic!("{what} leaks {how}: {text}");
    }
}

#[test]
fn the_leak_detector_finds_leaks() {
    let secret: Vec<u8> = (0..40u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let public: &[&[u8]] = &[];
    for leaky in [
        format!("X {{ key: {:?} }}", secret),
        format!("X {{ key: {:#?} }}", secret),
        format!("key={}", hex::encode(&secret)),
        format!("KEY={}", hex::encode_upper(&secret)),
        format!("partial {}", hex::encode(&secret[7..23])),
        format!("{:?}", &secret[20..30]),
    ] {
        assert!(leaks(&leaky, &secret, 8, public).is_some(), "{leaky}");
    }
    assert!(leaks("nothing here 1 2 3", &secret, 8, public).is_none());
    // Public windows are allowed.
    assert!(leaks(&hex::encode(&secret[..16]), &secret, 16, &[&secret[..16]]).is_none());
}

#[test]
fn identity_key_pair_debug_shows_no_seed() {
    let mut rng = rng(700);
    let identity = IdentityKeyPair::generate(&mut rng);
    let secrets = identity_secrets(&identity);
    let texts = [
        format!("{identity:?}"),
        format!("{identity:#?}"),
        format!("{:?}", identity.to_bytes()),
        format!("{:#?}", identity.to_bytes()),
    ];
    for text in &texts {
        for secret in [secrets.signing_seed, secrets.agreement_secret] {
            assert_no_leak("IdentityKeyPair", text, &secret, 8, &[]);
        }
    }
    // What it does show is the public identity.
    assert!(texts[0].contains(&hex::encode(identity.public().signing_key())));
    let bytes: SecretBytes = identity.to_bytes();
    assert_eq!(
        format!("{bytes:?}"),
        format!("SecretBytes(<{} bytes redacted>)", bytes.len())
    );
}

#[test]
fn account_session_accepted_and_error_debug_show_no_secret() {
    let mut p = established(701, SessionConfig::default(), SessionConfig::default());
    // Give the states skipped keys, skipped epochs, a retired prekey and spare one-time keys.
    p.bob_account
        .generate_one_time_prekeys(3, &mut p.rng)
        .unwrap();
    p.bob_account.rotate_signed_prekey(&mut p.rng, at(1));
    let mut envelopes: Vec<Vec<u8>> = (0..4)
        .map(|i| p.alice.seal(&[i; 50], &mut p.rng, at(1)).unwrap())
        .collect();
    p.bob.open(&envelopes[3], at(1)).unwrap();
    envelopes.push(p.bob.seal(b"reply", &mut p.rng, at(1)).unwrap());

    // A second session, accepted now, to have an `Accepted` value.
    let bundle = verified_bundle(&mut p.bob_account, true, &mut p.rng, at(1));
    let carol = IdentityKeyPair::generate(&mut p.rng);
    let mut carol_session =
        Session::initiate(&carol, &bundle, SessionConfig::default(), &mut p.rng, at(1)).unwrap();
    let initial = carol_session.seal(b"hello", &mut p.rng, at(1)).unwrap();
    let accepted = p.bob_account.accept(&initial, at(1)).unwrap();

    // Errors of every kind that the flows above can produce.
    let mut errors: Vec<Error> = vec![
        p.bob.open(&envelopes[3], at(1)).unwrap_err(),
        p.bob.open(&envelopes[0][..10], at(1)).unwrap_err(),
        p.bob.open(&initial, at(1)).unwrap_err(),
        p.bob_account.accept(&initial, at(1)).unwrap_err(),
        p.bob_account.accept(&envelopes[4], at(1)).unwrap_err(),
        p.alice.open(&envelopes[0], at(1)).unwrap_err(),
        p.alice
            .seal(&vec![0; 70_000], &mut p.rng, at(1))
            .unwrap_err(),
        Session::from_bytes(&[1, 2, 3]).unwrap_err(),
        Session::from_bytes(&[9]).unwrap_err(),
    ];
    let mut bad = envelopes[1].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    errors.push(p.bob.open(&bad, at(1)).unwrap_err());

    let mut secrets: Vec<(&str, Vec<u8>)> = vec![
        ("Alice's session state", state(&p.alice)),
        ("Bob's session state", state(&p.bob)),
        ("Bob's new session state", state(&accepted.session)),
        ("Bob's account state", account_state(&p.bob_account)),
        ("Carol's session state", state(&carol_session)),
    ];
    for identity in [&p.alice_identity, p.bob_account.identity(), &carol] {
        let s = identity_secrets(identity);
        secrets.push(("identity seed", s.signing_seed.to_vec()));
        secrets.push(("identity agreement secret", s.agreement_secret.to_vec()));
    }
    let public_ids = [
        p.alice.session_id().as_bytes().to_vec(),
        carol_session.session_id().as_bytes().to_vec(),
        p.alice_identity.public().to_bytes().to_vec(),
        p.bob_account.identity().public().to_bytes().to_vec(),
        carol.public().to_bytes().to_vec(),
    ];
    let public: Vec<&[u8]> = public_ids.iter().map(Vec::as_slice).collect();

    let mut texts: Vec<(String, String)> = Vec::new();
    for (name, text) in [
        ("Session (Alice)", format!("{:?} {:#?}", p.alice, p.alice)),
        ("Session (Bob)", format!("{:?} {:#?}", p.bob, p.bob)),
        (
            "Account",
            format!("{:?} {:#?}", p.bob_account, p.bob_account),
        ),
        ("Accepted", format!("{accepted:?} {accepted:#?}")),
        (
            "SecretBytes",
            format!(
                "{:?} {:#?} {:?}",
                p.bob.to_bytes(),
                p.bob_account.to_bytes(),
                accepted.session.to_bytes()
            ),
        ),
    ] {
        texts.push((name.to_string(), text));
    }
    for error in &errors {
        texts.push((
            format!("Error {error:?}"),
            format!("{error:?} {error:#?} {error}"),
        ));
    }
    for (name, text) in &texts {
        for (what, secret) in &secrets {
            // Identity secrets: any 8 bytes. Serialized states: any 16 bytes outside the
            // public values.
            let window = if secret.len() == 32 { 8 } else { 16 };
            assert_no_leak(&format!("{name} ({what})"), text, secret, window, &public);
        }
    }
    // The redaction is not vacuous: the public parts are shown.
    assert!(texts[0].1.contains(&p.alice.session_id().to_string()));
    assert!(
        texts[3]
            .1
            .contains(&hex::encode(carol.public().signing_key()))
    );
}
