//! Checker: the file's header and labels, `identities` and `codes` of relay.json.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use sealwire_core::rand_core::SeedableRng;
use sealwire_core::{IdentityKeyPair, PublicIdentity};
use sealwire_transport::auth::{AUTH_LABEL, EXPORTER_LABEL};
use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::frame::{MAILBOX_LABEL, MailboxId, SUBPROTOCOL};
use serde_json::Value;

use crate::{Field, primitives};

pub(crate) fn header_and_labels(file: &Value) {
    assert_eq!(file.u64_at("version"), 1);
    assert!(!file.str_at("description").is_empty());
    assert_eq!(file.str_at("subprotocol"), primitives::SUBPROTOCOL);
    assert_eq!(
        SUBPROTOCOL,
        primitives::SUBPROTOCOL,
        "the library's subprotocol"
    );
    let labels = file.at("labels");
    for (key, spec, library) in [
        ("auth", primitives::LABEL_AUTH, Some(AUTH_LABEL)),
        ("application", primitives::LABEL_APPLICATION, None),
        ("mailbox", primitives::LABEL_MAILBOX, Some(MAILBOX_LABEL)),
        ("exporter", primitives::LABEL_EXPORTER, Some(EXPORTER_LABEL)),
    ] {
        assert_eq!(
            labels.str_at(key).as_bytes(),
            spec,
            "label {key} in the file"
        );
        if let Some(library) = library {
            assert_eq!(library, spec, "the library's label {key}");
        }
    }
}

pub(crate) fn identities(file: &Value) {
    let identities = file.list_at("identities");
    assert!(identities.len() >= 2);
    for identity in identities {
        let name = identity.str_at("name");
        let public = identity.bytes_at("public_identity");
        assert_eq!(public.len(), 128, "{name}");
        let seed: [u8; 32] = identity.array_at("signing_seed");
        assert_eq!(identity.bytes_at("agreement_secret").len(), 32);
        assert_eq!(public[..32], identity.bytes_at("signing_public"), "{name}");
        assert_eq!(
            public[32..64],
            identity.bytes_at("agreement_public"),
            "{name}"
        );
        assert_eq!(
            primitives::signing_public(&seed)[..],
            public[..32],
            "{name}: seed"
        );
        assert!(
            primitives::identity_binding_verifies(&public),
            "{name}: binding"
        );

        // The library: the identity from its ChaCha20 seed, and its mailbox.
        let mut rng = ChaCha20Rng::seed_from_u64(identity.u64_at("rng_seed"));
        let keys = IdentityKeyPair::generate(&mut rng);
        assert_eq!(
            keys.public().to_bytes().to_vec(),
            public,
            "{name}: generate"
        );
        let parsed = PublicIdentity::from_bytes(&public).unwrap();
        let mailbox = identity.str_at("mailbox");
        assert_eq!(
            MailboxId::of(&parsed).to_hex(),
            mailbox,
            "{name}: MailboxId::of"
        );
        assert_eq!(
            MailboxId::from_hex(mailbox).unwrap(),
            MailboxId::of(&parsed)
        );
        // Independently: SHA-256("sealwire/v1/relay/mailbox" ‖ S ‖ X).
        assert_eq!(
            crate::to_hex(&primitives::mailbox(&public)),
            mailbox,
            "{name}: mailbox from the spec"
        );
    }
}

pub(crate) fn codes(file: &Value) {
    let codes = file.at("codes");
    let mut listed_close = BTreeMap::new();
    for entry in codes.list_at("close") {
        let code = CloseCode(u16::try_from(entry.u64_at("code")).unwrap());
        let name = entry.opt_str_at("name");
        assert_eq!(code.name(), name, "close code {}: name", code.0);
        assert_eq!(
            code.is_fatal(),
            entry.bool_at("fatal"),
            "close code {}",
            code.0
        );
        if let Some(name) = name {
            listed_close.insert(code.0, name);
        }
    }
    let named: BTreeMap<u16, &str> = (0..=u16::MAX)
        .filter_map(|n| CloseCode(n).name().map(|name| (n, name)))
        .collect();
    assert_eq!(
        named, listed_close,
        "the library names exactly the listed close codes"
    );
    assert!(
        codes
            .list_at("close")
            .iter()
            .any(|e| e.at("name").is_null()),
        "an unknown close code is listed"
    );

    let mut listed_error = BTreeMap::new();
    for entry in codes.list_at("error") {
        let number = u16::try_from(entry.u64_at("code")).unwrap();
        let code = ErrorCode::from_u16(number);
        let name = entry.str_at("name");
        assert_eq!(code.to_u16(), number);
        assert_eq!(
            code.to_string(),
            format!("{number} {name}"),
            "error code {number}"
        );
        assert_eq!(
            code.is_retryable(),
            entry.bool_at("retryable"),
            "error code {number}"
        );
        assert_eq!(name == "unknown", matches!(code, ErrorCode::Unknown(_)));
        if name != "unknown" {
            listed_error.insert(number, name.to_owned());
        }
    }
    let known: BTreeMap<u16, String> = (0..=u16::MAX)
        .map(ErrorCode::from_u16)
        .filter(|code| !matches!(code, ErrorCode::Unknown(_)))
        .map(|code| {
            (
                code.to_u16(),
                code.to_string().split_once(' ').unwrap().1.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        known, listed_error,
        "the library defines exactly the listed error codes"
    );
}
