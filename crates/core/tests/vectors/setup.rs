//! `setup.json`: the asynchronous setup of spec section 8 (DH outputs, sealed identity,
//! transcript, setup root, session AD), epoch 1 (9.7) and the first envelope (9.5, 10).

use std::collections::BTreeSet;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::codec::{
    Header, Setup, check_public_header, contains, encode_header, open, parse_envelope,
    seal_envelope,
};
use crate::json::{b32, bytes, find, list, load, num, num32, text_of};
use crate::primitives::{
    chain_step, derive_epoch, gcm_open, gcm_seal, hkdf, keys_of, message_keys, pad_len, x25519,
    x25519_public,
};
use crate::{LABEL_AD, LABEL_ROOT, LABEL_SEAL};

pub(crate) fn setup_vectors() {
    let file = load("setup.json");
    let identities = load("identity.json");
    let prekeys = load("prekeys.json");
    let cases = list(&file, "cases");
    assert_eq!(cases.len(), 2);
    let mut one_time_seen = BTreeSet::new();
    for case in cases {
        let name = text_of(case, "name");
        let (a, b) = (&case["initiator"], &case["responder"]);
        for party in [a, b] {
            let reference = find(list(&identities, "identities"), text_of(party, "name"));
            for key in ["signing_seed", "agreement_secret", "public_identity"] {
                assert_eq!(party[key], reference[key], "{name}: {key}");
            }
        }
        let spk = &case["signed_prekey"];
        assert_eq!(spk["id"], prekeys["signed_prekey"]["id"]);
        assert_eq!(spk["secret"], prekeys["signed_prekey"]["secret"]);
        let spk_public = x25519_public(&b32(spk, "secret"));
        assert_eq!(spk_public, b32(spk, "public"));
        let opk = (!case["one_time_prekey"].is_null()).then(|| &case["one_time_prekey"]);
        let expected_name = if opk.is_some() {
            "with_one_time_prekey"
        } else {
            "without_one_time_prekey"
        };
        assert_eq!(name, expected_name);
        // The bundle was valid when the initiator used it.
        let time = num(case, "time");
        let created_at = num(&prekeys["signed_prekey"], "created_at");
        assert!(
            time >= created_at && time - created_at <= 90 * 24 * 60 * 60,
            "{name}: time"
        );
        one_time_seen.insert(opk.is_some());
        let opk_public = opk.map(|o| {
            assert_eq!(o["secret"], prekeys["one_time_prekey"]["secret"]);
            assert_eq!(o["id"], prekeys["one_time_prekey"]["id"]);
            let public = x25519_public(&b32(o, "secret"));
            assert_eq!(public, b32(o, "public"));
            public
        });
        let ek = b32(&case["base_key"], "secret");
        let ek_public = x25519_public(&ek);
        assert_eq!(ek_public, b32(&case["base_key"], "public"));
        let id_a = bytes(a, "public_identity");
        let id_b = bytes(b, "public_identity");
        let (keys_a, keys_b) = (&id_a[..64], &id_b[..64]);
        let x_b: [u8; 32] = id_b[32..64].try_into().unwrap();
        let sid = bytes(case, "session_id");
        assert_eq!(sid.len(), 16);

        // 8.1: the four DH outputs.
        let dh1 = x25519(&b32(a, "agreement_secret"), &spk_public).unwrap();
        let dh2 = x25519(&ek, &x_b).unwrap();
        let dh3 = x25519(&ek, &spk_public).unwrap();
        let dh4 = opk.map(|o| x25519(&ek, &b32(o, "public")).unwrap());
        assert_eq!(dh1, b32(case, "dh1"), "{name}: DH1");
        assert_eq!(dh2, b32(case, "dh2"), "{name}: DH2");
        assert_eq!(dh3, b32(case, "dh3"), "{name}: DH3");
        assert_eq!(
            case["dh4"],
            dh4.map_or(Value::Null, |d| hex::encode(d).into())
        );
        // The responder computes the same outputs from its side.
        let id_a_x: [u8; 32] = id_a[32..64].try_into().unwrap();
        assert_eq!(x25519(&b32(spk, "secret"), &id_a_x), Some(dh1));
        assert_eq!(x25519(&b32(b, "agreement_secret"), &ek_public), Some(dh2));

        // 8.3: the sealed identity.
        let seal = &case["identity_seal"];
        let ikm = [&dh2[..], &dh3, dh4.as_ref().map_or(&[][..], |d| d)].concat();
        let info = [LABEL_SEAL, &ek_public, keys_b, &spk_public].concat();
        assert_eq!(ikm, bytes(seal, "ikm"));
        assert_eq!(info, bytes(seal, "info"));
        let okm = hkdf(&[0; 32], &ikm, &info, 44);
        assert_eq!(okm[..32], bytes(seal, "key")[..]);
        assert_eq!(okm[32..], bytes(seal, "nonce")[..]);
        assert_eq!(bytes(seal, "plaintext"), id_a);
        let sealed = gcm_seal(&okm[..32], &okm[32..], &[], &id_a);
        assert_eq!(sealed.len(), 144);
        assert_eq!(sealed, bytes(seal, "sealed"), "{name}: sealed identity");
        assert_eq!(
            gcm_open(&okm[..32], &okm[32..], &[], &sealed),
            Some(id_a.clone())
        );

        // 8.4, 8.5: transcript, setup root, session AD.
        let one_time_part = match (opk, opk_public) {
            (Some(o), Some(public)) => {
                [&[1u8][..], &num32(o, "id").to_be_bytes(), &public].concat()
            }
            _ => vec![0],
        };
        let transcript = [
            keys_a,
            keys_b,
            &num32(spk, "id").to_be_bytes(),
            &spk_public,
            &one_time_part,
            &ek_public,
            &sid,
        ]
        .concat();
        assert_eq!(transcript, bytes(case, "transcript"), "{name}: transcript");
        let root_ikm = [&[0xFF; 32][..], &dh1, &ikm].concat();
        let root_info = [LABEL_ROOT, &transcript].concat();
        assert_eq!(root_ikm, bytes(case, "root_ikm"));
        assert_eq!(root_info, bytes(case, "root_info"));
        let root: [u8; 32] = hkdf(&[0; 32], &root_ikm, &root_info, 32)
            .try_into()
            .unwrap();
        assert_eq!(root, b32(case, "setup_root"), "{name}: setup root");
        let ad: [u8; 32] = Sha256::digest([LABEL_AD, keys_a, keys_b].concat()).into();
        assert_eq!(ad, b32(case, "session_ad"), "{name}: session AD");

        // 9.7: epoch 1, a child of epoch 0 (root RK_setup, ratchet key SPK), with EK.
        let e1 = &case["epoch_1"];
        let derived = derive_epoch(&root, 0, 1, &dh3);
        assert_eq!(x25519(&ek, &spk_public), Some(dh3));
        assert_eq!(derived.seed, b32(e1, "child_seed"));
        assert_eq!(derived.salt, b32(e1, "child_salt"));
        assert_eq!(dh3, b32(e1, "dh"));
        assert_eq!(derived.root, b32(e1, "epoch_root"));
        assert_eq!(derived.chain, b32(e1, "chain_key"));

        // 9.5, 10: the first envelope.
        let first = &case["first_message"];
        assert_eq!(b32(first, "chain_key"), derived.chain);
        let (mk, next) = chain_step(&derived.chain);
        assert_eq!(mk, b32(first, "message_key"));
        assert_eq!(next, b32(first, "next_chain_key"));
        let keys = message_keys(&mk);
        assert_eq!(keys, keys_of(first));
        let envelope = bytes(first, "envelope");
        let env = parse_envelope(&envelope).unwrap();
        let expected_header = Header {
            kind: 0,
            session_id: sid.clone().try_into().unwrap(),
            epoch: 1,
            parent: 0,
            counter: 0,
            previous: None,
            ratchet_key: ek_public,
            setup: Some(Setup {
                base_key: ek_public,
                signed_prekey_id: num32(spk, "id"),
                one_time_prekey_id: opk.map(|o| num32(o, "id")),
                sealed_identity: sealed.clone(),
            }),
        };
        assert_eq!(env.header, expected_header, "{name}: header fields");
        assert_eq!(encode_header(&expected_header), bytes(first, "header"));
        assert_eq!(env.header_bytes, &bytes(first, "header")[..]);
        let plaintext = bytes(first, "plaintext");
        assert_eq!(
            open(&env, &keys, &ad),
            Ok(plaintext.clone()),
            "{name}: open"
        );
        assert_eq!(
            seal_envelope(env.header_bytes, &keys, &ad, &plaintext),
            envelope,
            "{name}: seal"
        );
        let padded = num(first, "padded_length") as usize;
        assert_eq!(padded, pad_len(plaintext.len()));
        assert_eq!(env.ciphertext.len(), padded + 16);
        check_public_header(&envelope);
        for key in [&id_a[..32], &id_a[32..64], &id_b[..32], &id_b[32..64]] {
            assert!(
                !contains(&envelope, key),
                "{name}: an identity key is visible"
            );
        }
    }
    assert_eq!(
        one_time_seen.len(),
        2,
        "a case with and one without a one-time prekey"
    );
}
