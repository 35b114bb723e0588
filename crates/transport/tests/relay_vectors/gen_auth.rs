//! Generator: the authentication cases (spec 4): `hello` frames the relay accepts, with their
//! transcripts, and `hello`s (or other first messages) it rejects, with the close code.

use rand_chacha::ChaCha20Rng;
use sealwire_core::rand_core::{Rng, SeedableRng};
use sealwire_transport::auth::{self, AuthPolicy, ChannelBinding, ServerAuth};
use sealwire_transport::frame::{self, Ack, ClientFrame, Hello, MessageId, Send};
use sealwire_transport::token::{BearerToken, Claims, TokenKey, issue};
use serde::Serialize;

use crate::generate::{NOW, Party, TOKEN_KID, token_key, token_verifier};
use crate::primitives;
use crate::to_hex;

/// The names the relay of every case answers to.
const SERVER_NAMES: [&str; 2] = ["relay.example", "relay-backup.example"];

/// The seed of the nonces and binding values drawn for the cases.
const NONCE_SEED: u64 = 0x7265_6c61_7910;

#[derive(Serialize, PartialEq)]
pub(crate) struct Authentication {
    server_names: Vec<&'static str>,
    accept: Vec<AcceptCase>,
    reject: Vec<RejectCase>,
}

#[derive(Serialize, PartialEq)]
struct AcceptCase {
    name: &'static str,
    description: &'static str,
    identity: &'static str,
    nonce: String,
    server_name: String,
    binding: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
    token_required: bool,
    transcript: String,
    signed_message: String,
    signature: String,
    hello: String,
    verdict: &'static str,
    mailbox: String,
    claims: Option<Claims>,
}

/// What the client signed (before any `mutation`).
#[derive(Serialize, PartialEq)]
struct Signed {
    signer: &'static str,
    nonce: String,
    server_name: String,
    binding: Option<String>,
    token: Option<String>,
    transcript: String,
}

#[derive(Serialize, PartialEq)]
struct RejectCase {
    name: &'static str,
    description: &'static str,
    nonce: String,
    binding: Option<String>,
    token_required: bool,
    signed: Option<Signed>,
    mutation: Option<&'static str>,
    hello: String,
    verdict: &'static str,
    close_code: u16,
    close_name: &'static str,
}

fn binding_hex(binding: &ChannelBinding) -> Option<String> {
    match binding {
        ChannelBinding::Tls(value) => Some(to_hex(value)),
        ChannelBinding::None => None,
    }
}

fn binding_bytes(binding: &ChannelBinding) -> Option<&[u8; 32]> {
    match binding {
        ChannelBinding::Tls(value) => Some(value),
        ChannelBinding::None => None,
    }
}

fn policy(token_required: bool) -> AuthPolicy {
    AuthPolicy {
        server_names: SERVER_NAMES.iter().map(|name| (*name).to_owned()).collect(),
        token: token_required.then(token_verifier),
    }
}

/// The client's side: what it signs and the `hello` it sends (through `auth::respond`).
struct Response {
    signed: Signed,
    hello: Hello,
}

fn respond(
    party: &Party,
    nonce: [u8; 32],
    server_name: &str,
    binding: ChannelBinding,
    token: Option<&str>,
) -> Response {
    let transcript = auth::transcript(&nonce, server_name, &binding, token).unwrap();
    assert_eq!(
        transcript,
        primitives::transcript(&nonce, server_name, binding_bytes(&binding), token)
    );
    let (_, challenge) = ServerAuth::with_nonce(nonce, binding);
    let bearer = token.map(|token| BearerToken::new(token.to_owned()));
    let hello = auth::respond(
        &party.keys,
        &challenge,
        server_name,
        &binding,
        bearer.as_ref(),
    )
    .unwrap();
    assert!(primitives::verifies(
        &party.public(),
        &primitives::signed_message(&transcript),
        &hello.signature
    ));
    Response {
        signed: Signed {
            signer: party.name,
            nonce: to_hex(&nonce),
            server_name: server_name.to_owned(),
            binding: binding_hex(&binding),
            token: token.map(str::to_owned),
            transcript: to_hex(&transcript),
        },
        hello,
    }
}

fn hello_bytes(hello: &Hello) -> Vec<u8> {
    frame::encode(&ClientFrame::Hello(hello.clone())).unwrap()
}

struct Draw(ChaCha20Rng);

impl Draw {
    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.0.fill_bytes(&mut out);
        out
    }
}

fn claims_for(party: &Party) -> Claims {
    Claims {
        iat: Some(NOW - 60),
        sub: Some(party.name.to_owned()),
        sealwire_mailbox: Some(party.mailbox().to_hex()),
        ..Claims::new(NOW + 600)
    }
}

pub(crate) fn authentication(alice: &Party, bob: &Party) -> Authentication {
    let mut draw = Draw(ChaCha20Rng::seed_from_u64(NONCE_SEED));
    let tls = ChannelBinding::Tls(draw.bytes32());
    let valid_token = issue(&token_key(), &claims_for(alice));

    let accept_case = |name,
                       description,
                       nonce: [u8; 32],
                       server_name: &str,
                       binding: ChannelBinding,
                       token: Option<&str>,
                       token_required: bool| {
        let response = respond(alice, nonce, server_name, binding, token);
        let hello = hello_bytes(&response.hello);
        let (server, _) = ServerAuth::with_nonce(nonce, binding);
        let accepted = server
            .verify(&hello, &policy(token_required), NOW)
            .unwrap_or_else(|rejection| panic!("{name}: rejected with {}", rejection.code));
        assert_eq!(accepted.mailbox, alice.mailbox());
        let transcript = crate::from_hex(&response.signed.transcript);
        AcceptCase {
            name,
            description,
            identity: alice.name,
            nonce: to_hex(&nonce),
            server_name: server_name.to_owned(),
            binding: binding_hex(&binding),
            token: token.map(str::to_owned),
            token_hash: token
                .map(|token| to_hex(&<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()))),
            token_required,
            signed_message: to_hex(&primitives::signed_message(&transcript)),
            transcript: response.signed.transcript,
            signature: to_hex(&response.hello.signature),
            hello: to_hex(&hello),
            verdict: "accept",
            mailbox: accepted.mailbox.to_hex(),
            claims: accepted.claims,
        }
    };

    let spec_nonce: [u8; 32] = core::array::from_fn(|i| i as u8);
    let accept = vec![
        accept_case(
            "spec_example",
            "The example transcript of section 4.3: nonce 00..1f, binding 0x11^32, token \"t\". \
             This relay requires no token, so the token is not verified, but the signature covers \
             its hash.",
            spec_nonce,
            "relay.example",
            ChannelBinding::Tls([0x11; 32]),
            Some("t"),
            false,
        ),
        accept_case(
            "tls_binding_with_token",
            "TLS channel binding and a valid bearer token bound to the client's mailbox; the \
             relay requires tokens and returns the claims.",
            draw.bytes32(),
            "relay.example",
            tls,
            Some(&valid_token),
            true,
        ),
        accept_case(
            "no_binding_no_token",
            "Plaintext ws:// (tests only): binding_kind 0, no token (a 70-byte transcript + 13 \
             bytes of server name).",
            draw.bytes32(),
            "relay.example",
            ChannelBinding::None,
            None,
            false,
        ),
        accept_case(
            "second_server_name",
            "The relay's second configured name, TLS binding, no token.",
            draw.bytes32(),
            "relay-backup.example",
            tls,
            None,
            false,
        ),
        accept_case(
            "server_name_case_insensitive",
            "The server name matches ASCII case-insensitively; the transcript holds it as sent.",
            draw.bytes32(),
            "RELAY.Example",
            tls,
            None,
            false,
        ),
    ];

    let reject = rejections(alice, bob, &mut draw, tls);
    Authentication {
        server_names: SERVER_NAMES.to_vec(),
        accept,
        reject,
    }
}

/// One rejected first message.
struct Reject {
    name: &'static str,
    description: &'static str,
    binding: ChannelBinding,
    token_required: bool,
    response: Option<Response>,
    mutation: Option<&'static str>,
    /// The first message; `None`: the (possibly mutated) `hello` of `response`.
    bytes: Option<Vec<u8>>,
    close_code: u16,
}

fn rejections(alice: &Party, bob: &Party, draw: &mut Draw, tls: ChannelBinding) -> Vec<RejectCase> {
    let nonce = draw.bytes32();
    let other_nonce = draw.bytes32();
    let other_tls = ChannelBinding::Tls(draw.bytes32());
    let ok = |binding, token: Option<&str>| respond(alice, nonce, "relay.example", binding, token);
    let base = |name, description, close_code, response, token_required| Reject {
        name,
        description,
        binding: tls,
        token_required,
        response: Some(response),
        mutation: None,
        bytes: None,
        close_code,
    };
    let mutated =
        |name, description, mutation, mut response: Response, change: &dyn Fn(&mut Hello)| {
            change(&mut response.hello);
            Reject {
                mutation: Some(mutation),
                ..base(name, description, 4001, response, false)
            }
        };
    let raw = |name, description, bytes: Vec<u8>, close_code| Reject {
        name,
        description,
        binding: tls,
        token_required: false,
        response: None,
        mutation: None,
        bytes: Some(bytes),
        close_code,
    };
    let token = |claims: Claims, key: &TokenKey| issue(key, &claims);
    let other_key = TokenKey::new(TOKEN_KID, vec![0x5a; 32]).unwrap();
    let unknown_kid =
        TokenKey::new("relay-vectors-unknown", crate::generate::token_secret()).unwrap();
    let valid_hello = hello_bytes(&ok(tls, None).hello);
    let name_at = 1 + 128;
    assert_eq!(
        valid_hello[name_at], 13,
        "the server name length of \"relay.example\""
    );

    let cases = vec![
        base(
            "signature_over_another_nonce",
            "Replay: a hello signed for another connection's nonce (4.4 check 6).",
            4001,
            respond(alice, other_nonce, "relay.example", tls, None),
            false,
        ),
        base(
            "another_server_name",
            "A hello for a server name this relay does not have: a response obtained by another \
             relay (check 3).",
            4001,
            respond(alice, nonce, "other-relay.example", tls, None),
            false,
        ),
        base(
            "another_channel_binding",
            "A hello signed over another TLS session's exporter value: relayed by a man in the \
             middle (check 6).",
            4001,
            ok(other_tls, None),
            false,
        ),
        base(
            "binding_absent_in_signature",
            "A hello signed without a channel binding (binding_kind 0) on a TLS connection \
             (check 6).",
            4001,
            ok(ChannelBinding::None, None),
            false,
        ),
        mutated(
            "flipped_signature_byte",
            "The signature with its first byte flipped (check 6).",
            "signature[0] ^= 0x01",
            ok(tls, None),
            &|hello| hello.signature[0] ^= 0x01,
        ),
        mutated(
            "identity_of_someone_else",
            "Bob's public identity with Alice's signature (check 6).",
            "identity replaced by bob's public identity",
            ok(tls, None),
            &|hello| hello.identity = bob.public(),
        ),
        mutated(
            "malformed_identity",
            "Alice's identity with a flipped byte in its binding signature: not a valid public \
             identity (check 4).",
            "identity[100] ^= 0x01",
            ok(tls, None),
            &|hello| hello.identity[100] ^= 0x01,
        ),
        mutated(
            "token_swapped",
            "A man in the middle replaced the token the client signed; the relay does not require \
             tokens, but the signature covers the token hash (check 6).",
            "token replaced by \"swapped\"",
            ok(tls, Some("original")),
            &|hello| hello.token = Some("swapped".to_owned()),
        ),
        raw(
            "ack_before_hello",
            "A well-formed ack as the first frame (check 2).",
            frame::encode(&ClientFrame::Ack(Ack {
                deliveries: vec![1],
            }))
            .unwrap(),
            1008,
        ),
        raw(
            "send_before_hello",
            "A well-formed send as the first frame (check 2).",
            frame::encode(&ClientFrame::Send(Send {
                id: MessageId([7; 16]),
                to: vec![alice.mailbox()],
                payload: b"abc".to_vec(),
            }))
            .unwrap(),
            1008,
        ),
        raw(
            "hello_with_trailing_byte",
            "A valid hello followed by one 0x00 byte: not canonical (check 1).",
            [valid_hello.as_slice(), &[0]].concat(),
            1007,
        ),
        raw(
            "hello_with_overlong_varint",
            "A valid hello whose server-name length 0x0d is written as the over-long varint 8d 00 \
             (check 1).",
            [
                &valid_hello[..name_at],
                &[0x8d, 0x00],
                &valid_hello[name_at + 1..],
            ]
            .concat(),
            1007,
        ),
        raw(
            "hello_truncated",
            "A valid hello without its last byte (check 1).",
            valid_hello[..valid_hello.len() - 1].to_vec(),
            1007,
        ),
        raw(
            "empty_message",
            "An empty binary message (check 1).",
            Vec::new(),
            1007,
        ),
        base(
            "token_missing",
            "The relay requires a token and the hello has none (check 7).",
            4002,
            ok(tls, None),
            true,
        ),
        base(
            "token_empty",
            "The relay requires a token and the hello's token is empty (check 7).",
            4002,
            ok(tls, Some("")),
            true,
        ),
        base(
            "token_expired",
            "exp + leeway = now: expired, by one second (check 8, 5.3 step 6).",
            4003,
            ok(
                tls,
                Some(&token(
                    Claims {
                        exp: NOW - 30,
                        ..claims_for(alice)
                    },
                    &token_key(),
                )),
            ),
            true,
        ),
        base(
            "token_not_yet_valid",
            "nbf = now + leeway + 1 (check 8, 5.3 step 6).",
            4003,
            ok(
                tls,
                Some(&token(
                    Claims {
                        nbf: Some(NOW + 31),
                        ..claims_for(alice)
                    },
                    &token_key(),
                )),
            ),
            true,
        ),
        base(
            "token_bad_tag",
            "A token tagged with another secret under the relay's kid (check 8, 5.3 step 4).",
            4004,
            ok(tls, Some(&token(claims_for(alice), &other_key))),
            true,
        ),
        base(
            "token_unknown_kid",
            "A token whose kid is not in the relay's ring (check 8, 5.3 step 3).",
            4004,
            ok(tls, Some(&token(claims_for(alice), &unknown_kid))),
            true,
        ),
        base(
            "token_for_another_mailbox",
            "A valid token bound to bob's mailbox, presented by alice (check 8, 5.3 step 8).",
            4004,
            ok(tls, Some(&token(claims_for(bob), &token_key()))),
            true,
        ),
        base(
            "token_not_a_jwt",
            "A token that is not a JWS (check 8, 5.3 step 2).",
            4004,
            ok(tls, Some("t")),
            true,
        ),
    ];

    cases
        .into_iter()
        .map(|case| {
            let bytes = case
                .bytes
                .clone()
                .unwrap_or_else(|| hello_bytes(&case.response.as_ref().unwrap().hello));
            let (server, _) = ServerAuth::with_nonce(nonce, case.binding);
            let rejection = match server.verify(&bytes, &policy(case.token_required), NOW) {
                Ok(_) => panic!("{}: accepted", case.name),
                Err(rejection) => rejection,
            };
            assert_eq!(
                rejection.code.0, case.close_code,
                "{}: {:?}",
                case.name, rejection.error
            );
            RejectCase {
                name: case.name,
                description: case.description,
                nonce: to_hex(&nonce),
                binding: binding_hex(&case.binding),
                token_required: case.token_required,
                signed: case.response.map(|response| response.signed),
                mutation: case.mutation,
                hello: to_hex(&bytes),
                verdict: "reject",
                close_code: rejection.code.0,
                close_name: rejection.code.name().unwrap(),
            }
        })
        .collect()
}
