//! Checker: `authentication` of relay.json, through the public API (`auth::transcript`,
//! `auth::respond`, `ServerAuth::verify`) and against `model`, a second implementation of the
//! relay's checks (spec 4.4, 5.3) from the primitives, which predicts every verdict.

use rand_chacha::ChaCha20Rng;
use sealwire_core::IdentityKeyPair;
use sealwire_core::rand_core::SeedableRng;
use sealwire_transport::auth::{self, AuthPolicy, ChannelBinding, ServerAuth};
use sealwire_transport::frame::{self, ClientFrame, Hello};
use sealwire_transport::token::{BearerToken, TokenKey, TokenKeys, TokenVerifier};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Field, primitives, to_hex};

/// The relay's configuration of the cases, read from the file.
struct Relay {
    server_names: Vec<String>,
    kid: String,
    secret: Vec<u8>,
    leeway: u64,
    now: u64,
}

impl Relay {
    fn from(file: &Value) -> Relay {
        let key = file.at("token_key");
        assert!(key.at("audience").is_null() && key.at("issuer").is_null());
        Relay {
            server_names: (file.at("authentication").list_at("server_names").iter())
                .map(|name| name.as_str().unwrap().to_owned())
                .collect(),
            kid: key.str_at("kid").to_owned(),
            secret: key.bytes_at("secret"),
            leeway: key.u64_at("leeway_secs"),
            now: file.u64_at("now"),
        }
    }

    fn policy(&self, token_required: bool) -> AuthPolicy {
        let verifier = || {
            let key = TokenKey::new(self.kid.clone(), self.secret.clone()).unwrap();
            TokenVerifier::new(TokenKeys::new(vec![key]).unwrap()).with_leeway_secs(self.leeway)
        };
        AuthPolicy {
            server_names: self.server_names.clone(),
            token: token_required.then(verifier),
        }
    }
}

fn binding(case: &Value) -> (ChannelBinding, Option<[u8; 32]>) {
    match case.opt_bytes_at("binding") {
        Some(bytes) => {
            let value: [u8; 32] = bytes.try_into().unwrap();
            (ChannelBinding::Tls(value), Some(value))
        }
        None => (ChannelBinding::None, None),
    }
}

/// `transcript` of a case (or of its `signed` part): the library's and the independent
/// construction both give exactly the listed bytes.
fn check_transcript(name: &str, case: &Value) -> Vec<u8> {
    let nonce: [u8; 32] = case.array_at("nonce");
    let server_name = case.str_at("server_name");
    let token = case.opt_str_at("token");
    let (binding, raw_binding) = binding(case);
    let listed = case.bytes_at("transcript");
    assert_eq!(
        auth::transcript(&nonce, server_name, &binding, token).unwrap(),
        listed,
        "{name}: auth::transcript"
    );
    assert_eq!(
        primitives::transcript(&nonce, server_name, raw_binding.as_ref(), token),
        listed,
        "{name}: transcript from the spec"
    );
    listed
}

fn decode_hello(name: &str, bytes: &[u8]) -> Hello {
    match frame::decode::<ClientFrame>(bytes) {
        Ok(ClientFrame::Hello(hello)) => hello,
        other => panic!("{name}: not a hello: {other:?}"),
    }
}

pub(crate) fn accepted(file: &Value) {
    let relay = Relay::from(file);
    let identities = file.list_at("identities");
    let cases = file.at("authentication").list_at("accept");
    assert!(cases.len() >= 4);
    let mut seen = (false, false, false, false);
    for case in cases {
        let name = case.str_at("name");
        assert_eq!(case.str_at("verdict"), "accept");
        let identity = (identities.iter())
            .find(|i| i.str_at("name") == case.str_at("identity"))
            .unwrap();
        let public = identity.bytes_at("public_identity");
        let nonce: [u8; 32] = case.array_at("nonce");
        let token = case.opt_str_at("token");
        let (binding, raw_binding) = binding(case);
        let token_required = case.bool_at("token_required");
        seen.0 |= raw_binding.is_some();
        seen.1 |= raw_binding.is_none();
        seen.2 |= token.is_some() && token_required;
        seen.3 |= token.is_none();

        let transcript = check_transcript(name, case);
        match token {
            Some(token) => {
                let hash = Sha256::digest(token.as_bytes()).to_vec();
                assert_eq!(case.bytes_at("token_hash"), hash, "{name}: token hash");
                assert_eq!(
                    transcript[transcript.len() - 33..],
                    [&[1][..], &hash].concat()
                );
            }
            None => assert!(case.at("token_hash").is_null() && transcript.ends_with(&[0])),
        }
        let signed_message = primitives::signed_message(&transcript);
        assert_eq!(case.bytes_at("signed_message"), signed_message, "{name}");

        let bytes = case.bytes_at("hello");
        let hello = decode_hello(name, &bytes);
        assert_eq!(hello.identity.to_vec(), public, "{name}: identity");
        assert_eq!(hello.server_name, case.str_at("server_name"), "{name}");
        assert_eq!(hello.token.as_deref(), token, "{name}: token");
        assert_eq!(hello.signature, case.array_at::<64>("signature"), "{name}");
        assert!(
            primitives::verifies(&public, &signed_message, &hello.signature),
            "{name}: Ed25519 over the application-signature input"
        );

        // The client side: the identity from its seed answers the challenge with these bytes.
        let keys =
            IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(identity.u64_at("rng_seed")));
        assert_eq!(keys.public().to_bytes().to_vec(), public, "{name}: seed");
        let (_, challenge) = ServerAuth::with_nonce(nonce, binding);
        let bearer = token.map(|token| BearerToken::new(token.to_owned()));
        let server_name = case.str_at("server_name");
        let response = auth::respond(&keys, &challenge, server_name, &binding, bearer.as_ref());
        let response = frame::encode(&ClientFrame::Hello(response.unwrap())).unwrap();
        assert_eq!(
            to_hex(&response),
            case.str_at("hello"),
            "{name}: auth::respond"
        );

        // The relay side.
        let (server, _) = ServerAuth::with_nonce(nonce, binding);
        let accepted = server
            .verify(&bytes, &relay.policy(token_required), relay.now)
            .unwrap_or_else(|rejection| panic!("{name}: rejected with {}", rejection.code));
        assert_eq!(accepted.mailbox.to_hex(), case.str_at("mailbox"), "{name}");
        assert_eq!(accepted.mailbox.0, primitives::mailbox(&public), "{name}");
        assert_eq!(accepted.identity.to_bytes().to_vec(), public, "{name}");
        let claims = serde_json::to_value(&accepted.claims).unwrap();
        assert_eq!(&claims, case.at("claims"), "{name}: claims");
        if let (true, Some(token)) = (token_required, token) {
            let (_, payload) = primitives::token_parts(token, &relay.secret).unwrap();
            assert_eq!(&payload, case.at("claims"), "{name}: token payload");
        }

        let predicted = model(&relay, &bytes, &nonce, raw_binding.as_ref(), token_required);
        assert_eq!(predicted, Ok(primitives::mailbox(&public)), "{name}: model");
    }
    assert_eq!(
        seen,
        (true, true, true, true),
        "binding with and without, token with and without"
    );
}

pub(crate) fn rejected(file: &Value) {
    let relay = Relay::from(file);
    let cases = file.at("authentication").list_at("reject");
    let mut codes: Vec<u64> = Vec::new();
    for case in cases {
        let name = case.str_at("name");
        assert_eq!(case.str_at("verdict"), "reject");
        let nonce: [u8; 32] = case.array_at("nonce");
        let (binding, raw_binding) = binding(case);
        let token_required = case.bool_at("token_required");
        let bytes = case.bytes_at("hello");
        let expected = case.u64_at("close_code");
        codes.push(expected);

        let (server, _) = ServerAuth::with_nonce(nonce, binding);
        let rejection = match server.verify(&bytes, &relay.policy(token_required), relay.now) {
            Ok(_) => panic!("{name}: accepted"),
            Err(rejection) => rejection,
        };
        assert_eq!(u64::from(rejection.code.0), expected, "{name}: close code");
        assert_eq!(
            rejection.code.name(),
            Some(case.str_at("close_name")),
            "{name}"
        );

        let predicted = model(&relay, &bytes, &nonce, raw_binding.as_ref(), token_required);
        assert_eq!(predicted.map_err(u64::from), Err(expected), "{name}: model");

        if let Value::Object(_) = case.at("signed") {
            let signed = case.at("signed");
            let transcript = check_transcript(name, signed);
            if case.at("mutation").is_null() {
                // Unmodified: the signature is the signer's, over what it signed.
                let hello = decode_hello(name, &bytes);
                assert_eq!(hello.server_name, signed.str_at("server_name"));
                assert_eq!(hello.token.as_deref(), signed.opt_str_at("token"));
                let message = primitives::signed_message(&transcript);
                assert!(primitives::verifies(
                    &hello.identity,
                    &message,
                    &hello.signature
                ));
            }
        }
    }
    for code in [4001, 1008, 1007, 4002, 4003, 4004] {
        assert!(codes.contains(&code), "no rejection with close code {code}");
    }
}

/// The relay's checks of the first message (spec 4.4 and 5.3), from the primitives: the close
/// code of the first failing check, or the mailbox. Frame decoding is the library's.
fn model(
    relay: &Relay,
    bytes: &[u8],
    nonce: &[u8; 32],
    binding: Option<&[u8; 32]>,
    token_required: bool,
) -> Result<[u8; 32], u16> {
    let hello = match frame::decode::<ClientFrame>(bytes) {
        Ok(ClientFrame::Hello(hello)) => hello,
        Ok(_) => return Err(1008),
        Err(_) => return Err(1007),
    };
    let name = hello.server_name.as_str();
    if !relay
        .server_names
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
    {
        return Err(4001);
    }
    if !primitives::identity_binding_verifies(&hello.identity) || !(1..=255).contains(&name.len()) {
        return Err(4001);
    }
    let transcript = primitives::transcript(nonce, name, binding, hello.token.as_deref());
    let message = primitives::signed_message(&transcript);
    if !primitives::verifies(&hello.identity, &message, &hello.signature) {
        return Err(4001);
    }
    let mailbox = primitives::mailbox(&hello.identity);
    if token_required {
        match hello.token.as_deref() {
            None | Some("") => return Err(4002),
            Some(token) => token_model(relay, token, &mailbox)?,
        }
    }
    Ok(mailbox)
}

/// Spec 5.3 for a relay with one key, no audience and no issuer.
fn token_model(relay: &Relay, token: &str, mailbox: &[u8; 32]) -> Result<(), u16> {
    let (header, payload) = primitives::token_parts(token, &relay.secret).ok_or(4004u16)?;
    let member = |value: &Value, key: &str| value.get(key).filter(|v| !v.is_null()).cloned();
    let header_ok = member(&header, "alg") == Some("HS256".into())
        && member(&header, "kid") == Some(relay.kid.clone().into())
        && member(&header, "typ").is_none_or(|typ| typ == "JWT")
        && header.get("crit").is_none();
    if !header_ok {
        return Err(4004);
    }
    let exp = payload.get("exp").and_then(Value::as_u64).ok_or(4004u16)?;
    if exp.saturating_add(relay.leeway) <= relay.now {
        return Err(4003);
    }
    let nbf = member(&payload, "nbf").map(|nbf| nbf.as_u64().unwrap());
    if nbf.is_some_and(|nbf| nbf > relay.now + relay.leeway) {
        return Err(4003);
    }
    if member(&payload, "aud").is_some() {
        return Err(4004);
    }
    if member(&payload, "sealwire_mailbox").is_some_and(|bound| bound != to_hex(mailbox).as_str()) {
        return Err(4004);
    }
    Ok(())
}
