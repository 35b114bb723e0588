//! Negative inputs of group.json built from scratch: an envelope forged by a member in another
//! member's name, commits and sender keys crafted by a party, with every value used.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;

use super::super::{Recorder, chain_step, h, keys, secret};
use super::mutation::Built;
use super::negative::{FORGED_TEXT, SigningKeyKind};
use super::records::ChangeVector;
use super::scenario::Generated;
use super::script::Party;
use super::wire::{
    group_keys, hmac_input, message_keys, padded, seal_raw, signature_input, verifying_key,
};
use crate::group::GroupId;
use crate::group::control::{Commit, ControlBody, ControlWire, SignedCommit, WireSenderKey};
use crate::group::message::{self, GroupHeader};
use crate::group::roster::WireChange;
use crate::kdf::LABEL_GROUP_COMMIT;

/// Seed of the RNG the chain keys (and signing seeds) of crafted sender keys are drawn from.
const CONFLICT_SEED: u64 = 0x5EA1_6000_0C0F;

/// A point of order 8 on Ed25519 (a valid encoding, refused as a sender key's signing key).
const SMALL_ORDER_POINT: [u8; 32] = [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
];

#[derive(Serialize)]
pub(super) struct ForgedVector {
    forger: &'static str,
    impersonated: &'static str,
    epoch: u32,
    sender_index: u32,
    counter: u32,
    state_hash: String,
    chain_key: String,
    message_key: String,
    aes_key: String,
    mac_key: String,
    nonce: String,
    plaintext: String,
    header: String,
    hmac_input: String,
    hmac_tag: String,
    forger_sender_key: usize,
    forger_signing_seed: String,
    signature_input: String,
    signature: String,
}

#[derive(Serialize)]
pub(super) struct CraftedCommitVector {
    signer: &'static str,
    epoch: u32,
    parent_hash: String,
    changes: Vec<ChangeVector>,
    commit_bytes: String,
    signed_message: String,
    signature: String,
    commit_hash: String,
}

#[derive(Serialize)]
pub(super) struct CraftedSenderKeyVector {
    owner: &'static str,
    epoch: u32,
    state_hash: String,
    counter: u32,
    chain_key: String,
    signing_seed: Option<String>,
    signing_key: String,
}

/// An envelope in `impersonated`'s name, signed with `forger`'s epoch signing key.
pub(super) fn forge(
    generated: &Generated,
    forger: Party,
    impersonated: Party,
    epoch: u32,
    counter: u32,
) -> Built {
    let known = &generated.epochs[&epoch];
    // The forger holds the impersonated member's sender key: its chain from counter 0.
    let mut chain_key = generated.chains[&(impersonated, epoch)].first_chain_key;
    for _ in 0..counter {
        chain_key = chain_step(&chain_key).1;
    }
    let (message_key, _) = chain_step(&chain_key);
    let keys = group_keys(&message_key);
    let sender_index = known.index_of(impersonated);
    let group_id = GroupId::from_bytes(generated.group_id);
    let header = GroupHeader::new(&group_id, epoch, &known.state_hash, sender_index, counter);
    let header_bytes = crate::encoding::to_exact_vec(&header).unwrap();
    let forger_chain = generated.chains[&(forger, epoch)];
    let text = FORGED_TEXT.as_bytes();
    let (state_hash, seed) = (&known.state_hash, &forger_chain.signing_seed);
    let input = seal_raw(&header_bytes, &keys, state_hash, seed, &padded(text));
    let signing = SigningKey::from_bytes(seed);
    let sealed = message::seal(&header, &message_keys(&keys), state_hash, &signing, text);
    assert_eq!(input, sealed.unwrap());
    let parsed = message::parse(&input).unwrap();
    let forged = ForgedVector {
        forger: forger.name(),
        impersonated: impersonated.name(),
        epoch,
        sender_index,
        counter,
        state_hash: h(state_hash),
        chain_key: h(&chain_key),
        message_key: h(&message_key),
        aes_key: h(&keys.aes_key),
        mac_key: h(&keys.mac_key),
        nonce: h(&keys.nonce),
        plaintext: h(text),
        header: h(&header_bytes),
        hmac_input: h(&hmac_input(
            &header_bytes,
            state_hash,
            &keys,
            parsed.ciphertext,
        )),
        hmac_tag: h(parsed.tag),
        forger_sender_key: forger_chain.sender_key,
        forger_signing_seed: h(seed),
        signature_input: h(&signature_input(state_hash, parsed.signed)),
        signature: h(parsed.signature),
    };
    Built {
        forged: Some(forged),
        ..Built::crafted(input, "forged_envelope")
    }
}

/// A commit of `epoch` on the script's chain, signed by `signer`.
pub(super) fn craft_commit(
    generated: &Generated,
    signer: Party,
    epoch: u32,
    changes: Vec<WireChange>,
) -> Built {
    let parent = &generated.epochs[&(epoch - 1)];
    let commit = Commit {
        group_id: generated.group_id,
        epoch,
        parent_hash: parent.state_hash,
        committer: *signer.public().signing_key(),
        changes,
    };
    let identity = keys::identity(signer.name()).pair;
    let signed = SignedCommit::sign(&commit, &identity).unwrap();
    let input = ControlWire::new(ControlBody::Commit(signed.clone()))
        .encode_public()
        .unwrap();
    let crafted = CraftedCommitVector {
        signer: signer.name(),
        epoch,
        parent_hash: h(&parent.state_hash),
        changes: commit.changes.iter().map(Into::into).collect(),
        commit_bytes: h(&signed.commit),
        signed_message: h(&[LABEL_GROUP_COMMIT, &signed.commit].concat()),
        signature: h(&signed.signature),
        commit_hash: h(&signed.hash()),
    };
    Built {
        commit: Some(crafted),
        ..Built::crafted(input, "crafted_commit")
    }
}

/// A sender key of `owner` for `epoch`, drawn from `CONFLICT_SEED`: chain key, then signing
/// seed.
pub(super) fn craft_sender_key(
    generated: &Generated,
    owner: Party,
    epoch: u32,
    signing: SigningKeyKind,
) -> Built {
    let mut rng = Recorder::new(CONFLICT_SEED);
    let mut secrets = [0u8; 64];
    rand_core::Rng::fill_bytes(&mut rng, &mut secrets);
    let chain_key: [u8; 32] = secrets[..32].try_into().unwrap();
    let (signing_seed, signing_key) = match signing {
        SigningKeyKind::Drawn => {
            let seed: [u8; 32] = secrets[32..].try_into().unwrap();
            (Some(seed), verifying_key(&seed))
        }
        SigningKeyKind::SmallOrder => {
            let point = VerifyingKey::from_bytes(&SMALL_ORDER_POINT).unwrap();
            assert!(point.is_weak(), "a small-order point");
            (None, SMALL_ORDER_POINT)
        }
    };
    let state_hash = generated
        .epochs
        .get(&epoch)
        .map_or([0; 32], |known| known.state_hash);
    let key = WireSenderKey {
        group_id: generated.group_id,
        epoch,
        state_hash,
        counter: 0,
        chain_key: secret(&chain_key),
        signing_key,
    };
    let input = ControlWire::new(ControlBody::SenderKey(key))
        .encode()
        .unwrap()
        .expose_secret()
        .to_vec();
    let crafted = CraftedSenderKeyVector {
        owner: owner.name(),
        epoch,
        state_hash: h(&state_hash),
        counter: 0,
        chain_key: h(&chain_key),
        signing_seed: signing_seed.map(|seed| h(&seed)),
        signing_key: h(&signing_key),
    };
    Built {
        sender_key: Some(crafted),
        ..Built::crafted(input, "crafted_sender_key")
    }
}
