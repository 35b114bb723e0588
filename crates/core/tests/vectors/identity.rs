//! `identity.json`, `prekeys.json` and `padding.json`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sealwire_core::{BundlePolicy, PrekeyBundle, PublicIdentity, Timestamp, padded_len};

use crate::codec::varint;
use crate::json::{b32, bytes, find, list, load, num, num32, text_of};
use crate::primitives::{fingerprint, pad_len, unpad, x25519_public};
use crate::{FINGERPRINT_ITERATIONS, LABEL_BINDING, LABEL_SIGNED_PREKEY, MIN_PADDED};

pub(crate) fn identity_vectors() {
    let file = load("identity.json");
    assert_eq!(
        num(&file, "fingerprint_iterations"),
        FINGERPRINT_ITERATIONS as u64
    );
    let identities = list(&file, "identities");
    assert!(identities.len() >= 2);
    for id in identities {
        let name = text_of(id, "name");
        let signing = SigningKey::from_bytes(&b32(id, "signing_seed"));
        let signing_public = signing.verifying_key().to_bytes();
        assert_eq!(signing_public, b32(id, "signing_public"), "{name}");
        let agreement_public = x25519_public(&b32(id, "agreement_secret"));
        assert_eq!(agreement_public, b32(id, "agreement_public"), "{name}");
        let message = [LABEL_BINDING, &signing_public, &agreement_public].concat();
        assert_eq!(message, bytes(id, "binding_message"), "{name}");
        let signature = signing.sign(&message).to_bytes();
        assert_eq!(signature.to_vec(), bytes(id, "binding_signature"), "{name}");
        VerifyingKey::from_bytes(&signing_public)
            .unwrap()
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .unwrap();
        let encoded = [&signing_public[..], &agreement_public, &signature].concat();
        assert_eq!(encoded, bytes(id, "public_identity"), "{name}");
        let public = PublicIdentity::from_bytes(&encoded).unwrap();
        assert_eq!(public.signing_key(), &signing_public);
        assert_eq!(public.agreement_key(), &agreement_public);
        let mut forged = encoded.clone();
        forged[100] ^= 1;
        assert!(
            PublicIdentity::from_bytes(&forged).is_err(),
            "{name}: forged binding"
        );
        let digits = fingerprint(&encoded[..64]);
        assert_eq!(digits.len(), 30);
        assert_eq!(digits, text_of(id, "fingerprint"), "{name}");
    }
    let pairs = list(&file, "safety_numbers");
    assert!(!pairs.is_empty());
    for pair in pairs {
        let names: Vec<&str> = pair["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let [a, b] = [find(identities, names[0]), find(identities, names[1])];
        let (fa, fb) = (text_of(a, "fingerprint"), text_of(b, "fingerprint"));
        let expected = if fa <= fb { [fa, fb] } else { [fb, fa] }.concat();
        assert_eq!(expected.len(), 60);
        assert_eq!(text_of(pair, "safety_number"), expected, "{names:?}");
        let pa = PublicIdentity::from_bytes(&bytes(a, "public_identity")).unwrap();
        let pb = PublicIdentity::from_bytes(&bytes(b, "public_identity")).unwrap();
        assert_eq!(pa.safety_number(&pb).digits(), expected);
        assert_eq!(pb.safety_number(&pa).digits(), expected);
    }
}

pub(crate) fn prekey_vectors() {
    let file = load("prekeys.json");
    let identities = load("identity.json");
    let owner = find(list(&identities, "identities"), text_of(&file, "owner"));
    assert_eq!(
        bytes(&file, "owner_public_identity"),
        bytes(owner, "public_identity")
    );
    let identity = bytes(owner, "public_identity");
    let signing = SigningKey::from_bytes(&b32(owner, "signing_seed"));

    let spk = &file["signed_prekey"];
    let (id, created_at) = (num32(spk, "id"), num(spk, "created_at"));
    let public = x25519_public(&b32(spk, "secret"));
    assert_eq!(public, b32(spk, "public"));
    let message = [
        LABEL_SIGNED_PREKEY,
        &id.to_be_bytes(),
        &created_at.to_be_bytes(),
        &public,
    ]
    .concat();
    assert_eq!(message, bytes(spk, "signed_message"));
    let signature = signing.sign(&message).to_bytes();
    assert_eq!(signature.to_vec(), bytes(spk, "signature"));
    signing
        .verifying_key()
        .verify_strict(&message, &Signature::from_bytes(&signature))
        .unwrap();

    let opk = &file["one_time_prekey"];
    let opk_public = x25519_public(&b32(opk, "secret"));
    assert_eq!(opk_public, b32(opk, "public"));

    let prefix = [
        &identity[..],
        &varint(id.into()),
        &public,
        &varint(created_at),
        &signature,
    ]
    .concat();
    let with = [&prefix[..], &[1], &varint(num(opk, "id")), &opk_public].concat();
    let without = [&prefix[..], &[0]].concat();
    assert_eq!(with, bytes(&file, "bundle_with_one_time_prekey"));
    assert_eq!(without, bytes(&file, "bundle_without_one_time_prekey"));
    for (encoded, one_time) in [(&with, true), (&without, false)] {
        let bundle = PrekeyBundle::from_bytes(encoded).unwrap();
        assert_eq!(bundle.identity.to_bytes().to_vec(), identity);
        assert_eq!(bundle.signed_prekey.id, id);
        assert_eq!(bundle.signed_prekey.public_key, public);
        assert_eq!(bundle.signed_prekey.created_at.as_unix_secs(), created_at);
        assert_eq!(bundle.signed_prekey.signature, signature);
        assert_eq!(bundle.one_time_prekey.is_some(), one_time);
        if let Some(o) = &bundle.one_time_prekey {
            assert_eq!((o.id, o.public_key), (num32(opk, "id"), opk_public));
        }
        bundle
            .verify(
                &BundlePolicy::default(),
                Timestamp::from_unix_secs(created_at),
            )
            .unwrap();
    }
}

pub(crate) fn padding_vectors() {
    let file = load("padding.json");
    assert_eq!(num(&file, "min_padded_length") as usize, MIN_PADDED);
    assert_eq!(sealwire_core::MIN_PADDED_LEN, MIN_PADDED);
    let lengths = list(&file, "lengths");
    let wanted = [0, 1, 31, 32, 33, 100, 1000, 1025, 4096, 65535];
    let listed: Vec<u64> = lengths.iter().map(|l| num(l, "plaintext_length")).collect();
    assert_eq!(listed, wanted);
    for entry in lengths {
        let n = num(entry, "plaintext_length") as usize;
        let padded = num(entry, "padded_length") as usize;
        assert_eq!(pad_len(n), padded, "padded length of {n}");
        assert_eq!(padded_len(n), padded, "sealwire_core::padded_len({n})");
        assert!(padded > n && padded <= 65_536);
    }
    for example in list(&file, "examples") {
        let plaintext = bytes(example, "plaintext");
        let padded = bytes(example, "padded");
        assert_eq!(padded.len(), pad_len(plaintext.len()));
        let mut expected = plaintext.clone();
        expected.push(0x80);
        expected.resize(padded.len(), 0);
        assert_eq!(padded, expected);
        assert_eq!(unpad(&padded), Some(&plaintext[..]));
    }
}
