//! An active attacker against group envelopes (group/message.rs, group/messaging.rs):
//!
//! - any flipped byte, truncation or extension of an envelope is refused with a typed error and
//!   leaves the receiver byte-for-byte unchanged; the genuine envelope still opens;
//! - replays;
//! - a member forging another member's message: it holds the sender's chain key, so the HMAC and
//!   AES-GCM layers accept its forgery; only the sender's signature stops it. The forger is an
//!   independent implementation of the envelope from the spec, first checked byte for byte
//!   against a genuine envelope, so the refusal cannot be an artefact of a broken forger;
//! - envelopes of the wrong epoch, of the wrong kind; a flood of sender keys for epochs not
//!   entered; `Debug` output that must not leak.
//!
//! Control messages and membership attacks are in `group_adversarial_control.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod group_support;
mod security_support;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use group_support::{
    Net, SenderKeyFields, config, decode_sender_key, group_state, open_refused, push_varint,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sealwire_core::{
    ControlOutcome, EnvelopeHeader, Error, GroupEnvelopeHeader, GroupSealed, IdentityKeyPair,
    MAX_ENVELOPE_LEN, MemberRole, SessionConfig, padded_len,
};
use security_support::{established, identity_secrets};
use sha2::Sha256;

const SIGNATURE_LABEL: &[u8] = b"sealwire/v1/group/signature";

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// chain.rs / kdf.rs: `MK = HMAC(CK, 0x01)`, `CK' = HMAC(CK, 0x02)`.
fn chain_step(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (hmac(chain_key, &[&[0x01]]), hmac(chain_key, &[&[0x02]]))
}

/// kdf.rs: `HKDF-Expand(PRK = MK, info = "sealwire/v1/group/message", 76)` → AES key 32 ‖
/// MAC key 32 ‖ nonce 12.
fn group_message_keys(message_key: &[u8; 32]) -> [u8; 76] {
    let mut out = [0u8; 76];
    Hkdf::<Sha256>::from_prk(message_key)
        .unwrap()
        .expand(b"sealwire/v1/group/message", &mut out)
        .unwrap();
    out
}

/// Builds group envelopes from a sender key, as any holder of that sender key can.
struct Forger {
    key: SenderKeyFields,
    sender: u32,
}

impl Forger {
    /// message.rs: `header ‖ varint(len) ‖ ct ‖ tag`, everything but the signature.
    fn body(&self, counter: u32, plaintext: &[u8]) -> Vec<u8> {
        let mut chain_key = self.key.chain_key;
        for _ in self.key.counter..counter {
            chain_key = chain_step(&chain_key).1;
        }
        let keys = group_message_keys(&chain_step(&chain_key).0);
        let (aes_key, mac_key, nonce) = (&keys[..32], &keys[32..64], &keys[64..]);
        let mut header = vec![1, 1, 2];
        header.extend_from_slice(&self.key.group_id);
        push_varint(&mut header, u64::from(self.key.epoch));
        header.extend_from_slice(&self.key.state_hash[..4]);
        push_varint(&mut header, u64::from(self.sender));
        push_varint(&mut header, u64::from(counter));
        let state_hash = &self.key.state_hash;
        let mut padded = plaintext.to_vec();
        padded.push(0x80);
        padded.resize(padded_len(plaintext.len()), 0);
        let ciphertext = Aes256Gcm::new_from_slice(aes_key)
            .unwrap()
            .encrypt(
                &Nonce::<Aes256Gcm>::try_from(nonce).unwrap(),
                Payload {
                    msg: &padded,
                    aad: &[header.as_slice(), state_hash].concat(),
                },
            )
            .unwrap();
        let tag = hmac(mac_key, &[&header, state_hash, nonce, &ciphertext]);
        let mut envelope = header;
        push_varint(&mut envelope, ciphertext.len() as u64);
        envelope.extend_from_slice(&ciphertext);
        envelope.extend_from_slice(&tag);
        envelope
    }

    /// What the signature covers: `label ‖ S ‖ body`.
    fn signed_message(&self, body: &[u8]) -> Vec<u8> {
        [SIGNATURE_LABEL, &self.key.state_hash, body].concat()
    }

    fn sign(&self, body: &[u8], seed: &[u8; 32]) -> Vec<u8> {
        let signature = SigningKey::from_bytes(seed).sign(&self.signed_message(body));
        [body, &signature.to_bytes()].concat()
    }
}

/// Node 0 (admin), 1 and 2 in epoch 2; node 0 seals `count` messages ("message i"), whose
/// sender key nodes 1 and 2 receive.
fn setup(count: usize) -> (Net, Vec<GroupSealed>, SenderKeyFields) {
    let mut net = Net::new(3);
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let sealed: Vec<GroupSealed> = (0..count)
        .map(|i| net.seal(0, format!("message {i}").as_bytes()))
        .collect();
    let key = sealed[0]
        .sender_key
        .as_ref()
        .unwrap()
        .message
        .expose_secret();
    let fields = decode_sender_key(key);
    let (zero, now) = (net.public(0), net.now);
    for i in [1, 2] {
        net.group_mut(i).receive(&zero, key, now).unwrap();
    }
    (net, sealed, fields)
}

fn opens(net: &mut Net, i: usize, envelope: &[u8], want: &[u8]) {
    let now = net.now;
    let opened = net.group_mut(i).open(envelope, now).unwrap();
    assert_eq!(opened.plaintext, want);
    assert_eq!(opened.sender, net.public(0));
}

#[test]
fn every_flipped_byte_of_an_envelope_is_refused_and_changes_nothing() {
    let (mut net, sealed, _) = setup(4);
    // Node 1 opens 2 first: 0 and 1 wait in the skipped store, 3 is ahead of the chain.
    opens(&mut net, 1, &sealed[2].envelope, b"message 2");
    let now = net.now;
    for target in [1, 3] {
        let genuine = &sealed[target].envelope;
        for position in 0..genuine.len() {
            for pattern in [0x01u8, 0x80, 0xff] {
                let mut flipped = genuine.clone();
                flipped[position] ^= pattern;
                let _ = GroupEnvelopeHeader::parse(&flipped);
                let g = net.group_mut(1);
                let before = group_state(g);
                let err = g.open(&flipped, now).unwrap_err();
                assert_eq!(
                    group_state(g),
                    before,
                    "envelope {target}, byte {position} ^ {pattern:#x}: {err:?} changed the group"
                );
            }
        }
        opens(&mut net, 1, genuine, format!("message {target}").as_bytes());
    }
}

#[test]
fn truncated_or_extended_envelopes_are_refused_with_typed_errors() {
    let (mut net, sealed, _) = setup(1);
    let genuine = &sealed[0].envelope;
    let now = net.now;
    let g = net.group_mut(1);
    // (Two bytes, version and suite without a kind, are covered by
    // `a_two_byte_prefix_is_malformed_not_a_pairwise_envelope`.)
    for len in (0..genuine.len()).filter(|&len| len != 2) {
        let err = open_refused(g, &genuine[..len], now);
        assert!(matches!(err, Error::Malformed(_)), "{len}: {err:?}");
        assert_eq!(
            GroupEnvelopeHeader::parse(&genuine[..len]).unwrap_err(),
            err
        );
    }
    assert_ne!(open_refused(g, &genuine[..2], now), Error::DecryptFailed);
    for extra in [1usize, 32, 64, 96, 200] {
        let mut extended = genuine.clone();
        extended.extend(std::iter::repeat_n(0u8, extra));
        assert!(matches!(
            open_refused(g, &extended, now),
            Error::Malformed(_)
        ));
    }
    let mut huge = genuine.clone();
    huge.resize(MAX_ENVELOPE_LEN + 1, 0);
    assert_eq!(
        open_refused(g, &huge, now),
        Error::TooLarge {
            what: "envelope",
            len: MAX_ENVELOPE_LEN + 1,
            max: MAX_ENVELOPE_LEN
        }
    );
    // Version and suite are checked before anything else.
    let mut other = genuine.clone();
    other[0] = 2;
    assert_eq!(open_refused(g, &other, now), Error::UnsupportedVersion(2));
    let mut other = genuine.clone();
    other[1] = 9;
    assert_eq!(open_refused(g, &other, now), Error::UnsupportedSuite(9));
    opens(&mut net, 1, genuine, b"message 0");
}

#[test]
fn a_two_byte_prefix_is_malformed_not_a_pairwise_envelope() {
    let (mut net, sealed, _) = setup(1);
    let now = net.now;
    let prefix = &sealed[0].envelope[..2];
    assert_eq!(prefix, [1, 1]);
    assert!(matches!(
        open_refused(net.group_mut(1), prefix, now),
        Error::Malformed(_)
    ));
    assert!(matches!(
        GroupEnvelopeHeader::parse(prefix),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn a_replayed_envelope_is_refused_in_its_epoch_and_after() {
    let (mut net, sealed, _) = setup(2);
    opens(&mut net, 1, &sealed[1].envelope, b"message 1");
    let now = net.now;
    assert_eq!(
        open_refused(net.group_mut(1), &sealed[1].envelope, now),
        Error::Replay
    );
    // Still a replay once the epoch is superseded (its chain is kept for late messages).
    net.commit(0, &[]).unwrap();
    net.flush();
    assert_eq!(net.group(1).epoch(), 3);
    assert_eq!(
        open_refused(net.group_mut(1), &sealed[1].envelope, now),
        Error::Replay
    );
    opens(&mut net, 1, &sealed[0].envelope, b"message 0");
    assert_eq!(
        open_refused(net.group_mut(1), &sealed[0].envelope, now),
        Error::Replay
    );
}

#[test]
fn a_member_holding_the_sender_key_cannot_forge_the_senders_messages() {
    let (mut net, sealed, fields) = setup(2);
    let sender = net
        .group(2)
        .members()
        .iter()
        .position(|m| m.identity() == &net.public(0))
        .unwrap() as u32;
    assert_eq!(fields.state_hash, net.group(2).state_hash());
    let forger = Forger {
        key: fields.clone(),
        sender,
    };

    // The forger is exact: it rebuilds node 0's genuine envelope 0 (all but the signature),
    // and node 0's signature verifies over what the forger says it covers.
    let genuine = &sealed[0].envelope;
    let (body, signature) = genuine.split_at(genuine.len() - 64);
    assert_eq!(forger.body(0, b"message 0"), body);
    VerifyingKey::from_bytes(&fields.signing_key)
        .unwrap()
        .verify_strict(
            &forger.signed_message(body),
            &Signature::from_bytes(signature.try_into().unwrap()),
        )
        .unwrap();

    // Node 2 forges message 1 in node 0's name, signed with its own identity key: the HMAC
    // and AES-GCM layers accept it, the signature does not.
    let own_seed = identity_secrets(&net.nodes[2].identity).signing_seed;
    let forged_body = forger.body(1, b"forged by 2");
    let now = net.now;
    let g = net.group_mut(1);
    assert!(matches!(
        open_refused(g, &forger.sign(&forged_body, &own_seed), now),
        Error::InvalidSignature(_)
    ));
    // Far ahead: refused before any skipped key is stored.
    assert!(matches!(
        open_refused(g, &forger.sign(&forger.body(40, b"far"), &own_seed), now),
        Error::InvalidSignature(_)
    ));
    // With node 0's real signatures, of this epoch's other messages, in place of its own.
    for other in &sealed {
        let real = &other.envelope[other.envelope.len() - 64..];
        let replaced = [forged_body.as_slice(), real].concat();
        assert!(matches!(
            open_refused(g, &replaced, now),
            Error::InvalidSignature(_)
        ));
    }
    // Zero signature; signature stripped.
    let zeroed = [forged_body.as_slice(), &[0u8; 64]].concat();
    assert!(matches!(
        open_refused(g, &zeroed, now),
        Error::InvalidSignature(_)
    ));
    assert!(matches!(
        open_refused(g, &forged_body, now),
        Error::Malformed(_)
    ));
    // The genuine envelope with its signature stripped or replaced by another's.
    assert!(matches!(open_refused(g, body, now), Error::Malformed(_)));
    let swapped = [body, &sealed[1].envelope[sealed[1].envelope.len() - 64..]].concat();
    assert!(matches!(
        open_refused(g, &swapped, now),
        Error::InvalidSignature(_)
    ));
    // Without the chain key (an outsider), even the HMAC fails.
    let outsider = Forger {
        key: SenderKeyFields {
            chain_key: [7; 32],
            ..fields.clone()
        },
        sender,
    };
    assert_eq!(
        open_refused(g, &outsider.sign(&outsider.body(1, b"x"), &own_seed), now),
        Error::DecryptFailed
    );

    // Nothing of this changed node 1: the genuine messages open.
    opens(&mut net, 1, &sealed[1].envelope, b"message 1");
    opens(&mut net, 1, &sealed[0].envelope, b"message 0");
}

#[test]
fn envelopes_of_an_epoch_ahead_or_pruned_are_refused() {
    let mut net = Net::with_config(3, config(|c| c.max_past_epochs = 1));
    net.add(0, 1, MemberRole::Member);
    net.add(0, 2, MemberRole::Member);
    net.flush();
    let old = net.seal(1, b"epoch 2");
    let old_key = old.sender_key.clone().unwrap();
    let (one, now) = (net.public(1), net.now);
    // Ahead: node 0 commits and seals in epoch 3; node 2 has not seen the commit.
    net.commit(0, &[]).unwrap();
    let ahead = net.seal(0, b"epoch 3");
    assert_eq!(
        open_refused(net.group_mut(2), &ahead.envelope, now),
        Error::EpochAhead {
            epoch: 3,
            current: 2
        }
    );
    // Pruned: two more commits; with one past epoch kept, epoch 2 is gone at node 2.
    net.commit(0, &[]).unwrap();
    net.commit(0, &[]).unwrap();
    net.drop_link(0, 1);
    net.deliver(0, 2);
    assert_eq!(net.group(2).epoch(), 5);
    assert_eq!(
        open_refused(net.group_mut(2), &old.envelope, now),
        Error::UnknownEpoch { epoch: 2 }
    );
    let g = net.group_mut(2);
    let before = group_state(g);
    assert_eq!(
        g.receive(&one, old_key.message.expose_secret(), now),
        Err(Error::UnknownEpoch { epoch: 2 })
    );
    assert_eq!(group_state(g), before);
}

#[test]
fn pairwise_and_group_envelopes_are_not_interchangeable() {
    let (mut net, sealed, _) = setup(1);
    let mut p = established(7, SessionConfig::default(), SessionConfig::default());
    let pairwise = p
        .alice
        .seal(b"pairwise", &mut p.rng, security_support::at(1))
        .unwrap();
    let group_envelope = &sealed[0].envelope;
    let now = net.now;
    assert!(matches!(
        open_refused(net.group_mut(1), &pairwise, now),
        Error::UnexpectedKind(_)
    ));
    assert!(matches!(
        GroupEnvelopeHeader::parse(&pairwise),
        Err(Error::UnexpectedKind(_))
    ));
    assert!(matches!(
        security_support::open_refused(&mut p.bob, group_envelope, security_support::at(1)),
        Error::UnexpectedKind(_)
    ));
    assert!(matches!(
        security_support::accept_refused(
            &mut p.bob_account,
            group_envelope,
            security_support::at(1)
        ),
        Error::UnexpectedKind(_)
    ));
    assert!(matches!(
        EnvelopeHeader::parse(group_envelope),
        Err(Error::UnexpectedKind(_))
    ));
    assert_eq!(
        p.bob.open(&pairwise, security_support::at(1)).unwrap(),
        b"pairwise"
    );
    opens(&mut net, 1, group_envelope, b"message 0");
}

#[test]
fn a_flood_of_sender_keys_for_epochs_not_entered_is_bounded() {
    let mut net = Net::with_config(2, config(|c| c.max_pending_sender_keys = 6));
    net.add(0, 1, MemberRole::Member);
    net.flush();
    let (p0, now) = (net.public(0), net.now);
    let gid = *net.group(1).id().as_bytes();
    let junk = |i: u8, epoch: u8| {
        let mut bytes = vec![1, 2];
        bytes.extend_from_slice(&gid);
        bytes.push(epoch);
        bytes.extend_from_slice(&[i; 32]);
        bytes.push(0);
        bytes.extend_from_slice(&[i; 32]);
        bytes.extend_from_slice(p0.signing_key());
        bytes
    };
    let g = net.group_mut(1);
    // One sender: at most 4 kept (its oldest dropped), so the state stops growing.
    let mut size = 0;
    for i in 0..20u8 {
        let epoch = 2 + i % 5;
        assert_eq!(
            g.receive(&p0, &junk(i, epoch), now).unwrap(),
            ControlOutcome::SenderKeyPending {
                epoch: u32::from(epoch)
            }
        );
        let len = g.to_bytes().len();
        if i == 3 {
            size = len;
        }
        if i >= 3 {
            assert_eq!(len, size, "one sender's pending keys beyond 4 are kept");
        }
    }
    // More than 8 epochs ahead: refused, nothing kept.
    let before = group_state(g);
    assert_eq!(
        g.receive(&p0, &junk(99, 10), now),
        Err(Error::EpochAhead {
            epoch: 10,
            current: 1
        })
    );
    assert_eq!(group_state(g), before);
    // Other senders fill the total cap (6); then new keys are refused, not evicting others.
    let mut rng = rand::rng();
    let others: Vec<_> = (0..3)
        .map(|_| IdentityKeyPair::generate(&mut rng).public().clone())
        .collect();
    assert!(g.receive(&others[0], &junk(1, 2), now).is_ok());
    assert!(g.receive(&others[1], &junk(2, 2), now).is_ok());
    let full = group_state(g);
    assert_eq!(
        g.receive(&others[2], &junk(3, 2), now),
        Err(Error::EpochAhead {
            epoch: 2,
            current: 1
        })
    );
    assert_eq!(group_state(g), full);
    // A sender key for an epoch already left is refused, not kept.
    let before = group_state(g);
    let old = junk(0, 0);
    assert_eq!(
        g.receive(&p0, &old, now),
        Err(Error::UnknownEpoch { epoch: 0 })
    );
    assert_eq!(group_state(g), before);
    // The group still works.
    net.send(0, b"still fine");
    net.flush();
    assert_eq!(net.nodes[1].opened, vec![(0, b"still fine".to_vec())]);
}
/// Every way `Debug` could print `secret`: hex (both cases) and a decimal byte list.
fn assert_hidden(debug: &str, secret: &[u8], what: &str) {
    let compact: String = debug.chars().filter(|c| !c.is_whitespace()).collect();
    let hex = hex::encode(secret);
    let decimal: Vec<String> = secret.iter().map(u8::to_string).collect();
    let decimal = decimal.join(",");
    assert!(!compact.contains(&hex), "{what} in hex: {debug}");
    assert!(
        !compact.contains(&hex.to_uppercase()),
        "{what} in HEX: {debug}"
    );
    assert!(!compact.contains(&decimal), "{what} as bytes: {debug}");
}

#[test]
fn debug_output_never_shows_a_secret() {
    let mut net = Net::new(2);
    let add = net.add(0, 1, MemberRole::Member);
    net.flush();
    let plaintext = b"the launch code is 0000".to_vec();
    let sealed = net.seal(0, &plaintext);
    let key = sealed.sender_key.as_ref().unwrap();
    let fields = decode_sender_key(key.message.expose_secret());
    let (zero, now) = (net.public(0), net.now);
    let outcome = net
        .group_mut(1)
        .receive(&zero, key.message.expose_secret(), now)
        .unwrap();
    let opened = net.group_mut(1).open(&sealed.envelope, now).unwrap();
    assert_eq!(opened.plaintext, plaintext);

    // The secrets: the chain key handed out, the next one, the message keys, and node 0's
    // epoch signing seed (found in its state right after its sending chain key, as chain.rs
    // lays it out: chain key[32] ‖ counter:varint ‖ signing seed[32]; checked below).
    let (message_key, next_chain_key) = chain_step(&fields.chain_key);
    let keys = group_message_keys(&message_key);
    let state = net.state(0);
    let at = state
        .windows(32)
        .position(|w| w == next_chain_key)
        .expect("sending chain key in the state");
    assert_eq!(state[at + 32], 1, "counter 1");
    let seed: [u8; 32] = state[at + 33..at + 65].try_into().unwrap();
    assert_eq!(
        SigningKey::from_bytes(&seed).verifying_key().to_bytes(),
        fields.signing_key
    );
    let secrets: [(&[u8], &str); 7] = [
        (&fields.chain_key, "chain key"),
        (&next_chain_key, "next chain key"),
        (&message_key, "message key"),
        (&keys[..32], "AES key"),
        (&keys[32..64], "MAC key"),
        (&seed, "signing seed"),
        (&plaintext, "plaintext"),
    ];

    let outputs = [
        format!("{:?}", net.group(0)),
        format!("{:?}", net.group(1)),
        format!("{sealed:?}"),
        format!("{key:?}"),
        format!("{opened:?}"),
        format!("{outcome:?}"),
        format!("{add:?}"),
        format!("{:?}", net.group(0).to_bytes()),
    ];
    for output in &outputs {
        for (secret, what) in secrets {
            assert_hidden(output, secret, what);
        }
        assert!(
            !output.contains(std::str::from_utf8(&plaintext).unwrap()),
            "plaintext: {output}"
        );
    }
    for output in [
        format!("{:#?}", net.group(0)),
        format!("{sealed:#?}"),
        format!("{key:#?}"),
        format!("{opened:#?}"),
    ] {
        for (secret, what) in secrets {
            assert_hidden(&output, secret, what);
        }
    }
    // The redaction is not vacuous: the public parts do show.
    assert!(outputs[4].contains(&hex::encode(net.public(0).signing_key())));
    assert!(outputs[4].contains(&format!("<{} bytes>", plaintext.len())));
}
