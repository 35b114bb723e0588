//! The negative vectors of group.json: inputs a member must reject at a position of the script,
//! each with its expected error class, and the test that checks them against real groups.

use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;

use super::super::negative::MutationVector;
use super::super::{error_class, h};
use super::crafted::{CraftedCommitVector, CraftedSenderKeyVector, ForgedVector};
use super::mutation::{Built, build};
use super::scenario::Generated;
use super::script::{Alice, Bob, Carol, Op, Party, Runner, TIMELINE, config, step_time};
use super::wire::signature_input;
use crate::error::Error;
use crate::group::message;
use crate::group::{Group, MemberRole};
use crate::time::Timestamp;

/// What the receiver does with the input.
#[derive(Clone, Copy)]
pub(super) enum Operation {
    /// `Group::open`.
    Open,
    /// `Group::receive` from this pairwise peer.
    Receive(Party),
    /// `Group::join` with this pairwise peer.
    Join(Party),
}

/// What the input is made from.
#[derive(Clone, Copy)]
pub(super) enum Base {
    Message(usize),
    Commit(usize),
    Welcome(usize),
    SenderKey(usize),
    /// Built from scratch (see the mutation).
    None,
}

/// The signing key of a crafted sender key.
#[derive(Clone, Copy)]
pub(super) enum SigningKeyKind {
    /// The public key of a seed drawn from `CONFLICT_SEED`.
    Drawn,
    /// A point of small order (8): it decodes, but signs nothing verifiably.
    SmallOrder,
}

/// How the input is made from its base.
#[derive(Clone, Copy)]
pub(super) enum Mutation {
    /// The base itself.
    Unchanged,
    /// The base itself, given as coming from a pairwise peer other than its real sender.
    WrongFrom,
    /// XOR 0x01 into byte `n` of a field.
    Flip(&'static str, usize),
    /// XOR 0x01 into the first byte of a field of member `member` of a welcome's summary.
    FlipSummary { member: usize, field: &'static str },
    /// Set the first byte of a field.
    SetByte(&'static str, u8),
    /// Drop the last `n` bytes.
    DropLast(usize),
    /// Keep the first `n` bytes.
    KeepFirst(usize),
    /// Append these bytes.
    Append(&'static [u8]),
    /// Encode a header varint with a redundant trailing zero group.
    Overlong(&'static str),
    /// Change a header field and re-encode the header canonically.
    Rewrite(&'static str, u32),
    /// XOR 0x01 into byte `n` of the ciphertext, then recompute the HMAC tag and the signature
    /// with the real sender's keys.
    ResealFlippedCiphertext(usize),
    /// Seal 32 zero bytes (no 0x80 marker) under the base message's header and keys, with a
    /// valid HMAC tag and signature.
    ResealBadPadding,
    /// A member who holds another member's chain key builds an envelope in its name, with a
    /// valid HMAC tag, and signs it with its own epoch signing key.
    Forge {
        forger: Party,
        impersonated: Party,
        epoch: u32,
        counter: u32,
    },
    /// A commit for `epoch`, on the script's chain, signed by `signer`.
    CraftCommit {
        signer: Party,
        epoch: u32,
        changes: &'static [Op],
    },
    /// A sender key of `owner` for `epoch` (with the epoch's state hash if it exists, else
    /// zeros), its chain key drawn from `CONFLICT_SEED`.
    CraftSenderKey {
        owner: Party,
        epoch: u32,
        signing: SigningKeyKind,
    },
}

pub(super) struct Spec {
    pub(super) name: &'static str,
    description: &'static str,
    pub(super) receiver: Party,
    after_steps: usize,
    pub(super) operation: Operation,
    pub(super) base: Base,
    pub(super) mutation: Mutation,
    expected: &'static str,
    /// Whether the base, delivered unchanged from its real sender at that position, is
    /// accepted (`None` without a base).
    base_accepted: Option<bool>,
}

pub(super) const FORGED_TEXT: &str = "Alice: please send me your password (forged by carol).";

#[rustfmt::skip]
const SPECS: &[Spec] = &[
    Spec { name: "forged_sender", description: "Carol holds Alice's epoch-2 chain key (from Alice's sender key): she derives the key of Alice's next counter, builds an envelope naming Alice as its sender with a valid HMAC tag, and signs it with her own epoch-2 signing key.", receiver: Bob, after_steps: 33, operation: Operation::Open, base: Base::None, mutation: Mutation::Forge { forger: Carol, impersonated: Alice, epoch: 2, counter: 2 }, expected: "invalid_signature", base_accepted: None },
    Spec { name: "header_group_id_flipped", description: "One bit of the header's group id flipped: the envelope names another group.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("group_id", 0), expected: "wrong_group", base_accepted: Some(true) },
    Spec { name: "wrong_version", description: "Protocol version byte set to 2.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::SetByte("version", 2), expected: "unsupported_version", base_accepted: Some(true) },
    Spec { name: "wrong_suite", description: "Cipher suite byte set to 2.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::SetByte("suite", 2), expected: "unsupported_suite", base_accepted: Some(true) },
    Spec { name: "pairwise_kind", description: "Kind byte set to 1: a pairwise envelope, not for Group::open.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::SetByte("kind", 1), expected: "unexpected_kind", base_accepted: Some(true) },
    Spec { name: "envelope_too_short", description: "Only the version and suite bytes of an envelope: no kind byte (a group envelope shorter than 3 bytes).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::KeepFirst(2), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "branch_flipped", description: "One bit of the header's branch tag flipped: the envelope names another branch of epoch 2 than the one Carol holds (keep it, retry after pending commits).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("branch", 0), expected: "other_branch", base_accepted: Some(true) },
    Spec { name: "sender_index_flipped", description: "Sender index 2 flipped to 3: no member has that index in epoch 2.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("sender", 0), expected: "not_a_member", base_accepted: Some(true) },
    Spec { name: "counter_flipped", description: "Counter 0 flipped to 1: the key of counter 1 does not authenticate the changed header.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("counter", 0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "ciphertext_flipped", description: "One bit of the AES-GCM ciphertext flipped (caught by the HMAC tag).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("ciphertext", 0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "gcm_tag_flipped", description: "One bit of the GCM tag flipped (caught by the HMAC tag).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("gcm_tag", 0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "hmac_tag_flipped", description: "One bit of the HMAC tag flipped.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("hmac_tag", 31), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "signature_flipped", description: "One bit of the sender's signature flipped: the HMAC tag verifies, the signature does not.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Flip("signature", 0), expected: "invalid_signature", base_accepted: Some(true) },
    Spec { name: "ciphertext_flipped_resigned", description: "One bit of the ciphertext flipped, then the HMAC tag and the signature recomputed with the real sender's keys: both verify, AES-GCM must still be checked and fail.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::ResealFlippedCiphertext(0), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "authentic_bad_padding", description: "Header, keys, GCM tag, HMAC tag and signature all valid, but the padded plaintext is 32 zero bytes (no 0x80 marker).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::ResealBadPadding, expected: "malformed", base_accepted: Some(true) },
    Spec { name: "truncated_signature", description: "The last byte removed: the signature is 63 bytes.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::DropLast(1), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "trailing_byte", description: "A zero byte appended after the signature.", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Append(&[0]), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "overlong_header_varint", description: "The header's counter varint encoded with a redundant zero group (same value, not canonical).", receiver: Carol, after_steps: 18, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Overlong("counter"), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "epoch_ahead", description: "Epoch set to 3 in an envelope to a member still in epoch 2: keep it and retry after the commit.", receiver: Carol, after_steps: 30, operation: Operation::Open, base: Base::Message(5), mutation: Mutation::Rewrite("epoch", 3), expected: "epoch_ahead", base_accepted: Some(true) },
    Spec { name: "epoch_before_join", description: "An epoch-1 message to Carol, who joined in epoch 2 and never had epoch 1.", receiver: Carol, after_steps: 19, operation: Operation::Open, base: Base::Message(0), mutation: Mutation::Unchanged, expected: "unknown_epoch", base_accepted: Some(false) },
    Spec { name: "pruned_epoch", description: "Bob's epoch-1 message, delivered again at the end: Alice keeps one superseded epoch (max_past_epochs = 1), and epoch 1 was pruned.", receiver: Alice, after_steps: 54, operation: Operation::Open, base: Base::Message(1), mutation: Mutation::Unchanged, expected: "unknown_epoch", base_accepted: Some(false) },
    Spec { name: "replay", description: "A message delivered a second time (it was opened from a skipped key).", receiver: Bob, after_steps: 16, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Unchanged, expected: "replay", base_accepted: Some(false) },
    Spec { name: "replay_in_order", description: "A message delivered a second time (it was opened in order, advancing the chain).", receiver: Carol, after_steps: 26, operation: Operation::Open, base: Base::Message(6), mutation: Mutation::Unchanged, expected: "replay", base_accepted: Some(false) },
    Spec { name: "missing_sender_key", description: "An envelope that overtook its sender key: keep it and retry after the sender's pairwise messages.", receiver: Carol, after_steps: 16, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Unchanged, expected: "missing_sender_key", base_accepted: Some(false) },
    Spec { name: "counter_too_far_ahead", description: "Counter set to 2001 where 0 is next: a jump of 2001 > max_forward_jump (2000).", receiver: Bob, after_steps: 32, operation: Operation::Open, base: Base::Message(7), mutation: Mutation::Rewrite("counter", 2001), expected: "too_far_ahead", base_accepted: Some(true) },
    Spec { name: "counter_at_forward_bound", description: "Counter set to 2000 where 0 is next: a jump of exactly max_forward_jump is allowed, so the envelope reaches authentication and fails it.", receiver: Bob, after_steps: 32, operation: Operation::Open, base: Base::Message(7), mutation: Mutation::Rewrite("counter", 2000), expected: "decrypt_failed", base_accepted: Some(true) },
    Spec { name: "own_message_reflected", description: "Alice's own group message given back to her.", receiver: Alice, after_steps: 13, operation: Operation::Open, base: Base::Message(2), mutation: Mutation::Unchanged, expected: "unexpected_kind", base_accepted: Some(false) },
    Spec { name: "removed_member_message", description: "Bob sealed in epoch 2 after Alice's commit removed him, before he saw it; Carol has applied the commit (Bob is no longer in the current roster, and is revoked in epoch 2).", receiver: Carol, after_steps: 42, operation: Operation::Open, base: Base::Message(9), mutation: Mutation::Unchanged, expected: "not_a_member", base_accepted: Some(false) },
    Spec { name: "message_to_removed_member", description: "An epoch-3 message given to Bob, who applied his removal: he is not in epoch 3.", receiver: Bob, after_steps: 48, operation: Operation::Open, base: Base::Message(8), mutation: Mutation::Unchanged, expected: "not_a_member", base_accepted: Some(false) },
    Spec { name: "commit_bad_signature", description: "The removal commit with one bit of its signature flipped.", receiver: Carol, after_steps: 40, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Flip("signature", 0), expected: "invalid_signature", base_accepted: Some(true) },
    Spec { name: "commit_wrong_group", description: "The removal commit with one bit of the commit's group id flipped (checked before the signature).", receiver: Carol, after_steps: 40, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Flip("group_id", 0), expected: "wrong_group", base_accepted: Some(true) },
    Spec { name: "commit_unknown_parent", description: "The removal commit with one bit of its parent hash flipped: it builds on no state the receiver knows (checked before the signature).", receiver: Carol, after_steps: 40, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Flip("parent_hash", 0), expected: "unknown_parent", base_accepted: Some(true) },
    Spec { name: "commit_epoch_ahead", description: "The epoch-3 commit given to Bob while he is in epoch 1: keep it and retry after the missing commit.", receiver: Bob, after_steps: 9, operation: Operation::Receive(Alice), base: Base::Commit(2), mutation: Mutation::Unchanged, expected: "epoch_ahead", base_accepted: Some(false) },
    Spec { name: "commit_by_non_admin", description: "Carol, a member (not an admin), commits epoch 4 adding Bob back, correctly signed.", receiver: Alice, after_steps: 54, operation: Operation::Receive(Carol), base: Base::None, mutation: Mutation::CraftCommit { signer: Carol, epoch: 4, changes: &[Op::Add(Bob, MemberRole::Member)] }, expected: "not_authorized", base_accepted: None },
    Spec { name: "commit_by_non_member", description: "Bob, removed in epoch 3, commits epoch 4 (a key rotation, which any member may commit), correctly signed.", receiver: Carol, after_steps: 54, operation: Operation::Receive(Bob), base: Base::None, mutation: Mutation::CraftCommit { signer: Bob, epoch: 4, changes: &[] }, expected: "not_a_member", base_accepted: None },
    Spec { name: "sender_key_from_non_member", description: "Carol's epoch-3 sender key, arriving over Bob's pairwise session: sender keys are attributed to the pairwise peer, and Bob is not in epoch 3.", receiver: Alice, after_steps: 50, operation: Operation::Receive(Bob), base: Base::SenderKey(6), mutation: Mutation::WrongFrom, expected: "not_a_member", base_accepted: Some(true) },
    Spec { name: "removed_member_sender_key", description: "Bob's epoch-2 sender key, delivered again to Carol after she applied his removal: epoch 2 is retained, but Bob is no longer in the current roster and is revoked there.", receiver: Carol, after_steps: 42, operation: Operation::Receive(Bob), base: Base::SenderKey(3), mutation: Mutation::Unchanged, expected: "not_a_member", base_accepted: Some(false) },
    Spec { name: "sender_key_conflict", description: "A second sender key from Alice for epoch 2, with another chain key and signing key: a member's sender key cannot change within an epoch.", receiver: Bob, after_steps: 14, operation: Operation::Receive(Alice), base: Base::None, mutation: Mutation::CraftSenderKey { owner: Alice, epoch: 2, signing: SigningKeyKind::Drawn }, expected: "sender_key_conflict", base_accepted: None },
    Spec { name: "sender_key_small_order", description: "A sender key from Carol for epoch 2, before Bob has hers, whose signing key is a point of order 8: it decodes, but is refused.", receiver: Bob, after_steps: 31, operation: Operation::Receive(Carol), base: Base::None, mutation: Mutation::CraftSenderKey { owner: Carol, epoch: 2, signing: SigningKeyKind::SmallOrder }, expected: "malformed", base_accepted: None },
    Spec { name: "sender_key_too_far_ahead", description: "A sender key from Alice for epoch 12 (with a zero state hash) to Carol in epoch 3: more than MAX_PENDING_EPOCHS_AHEAD (8) epochs ahead, so it is not kept pending (epoch 11 would be).", receiver: Carol, after_steps: 54, operation: Operation::Receive(Alice), base: Base::None, mutation: Mutation::CraftSenderKey { owner: Alice, epoch: 12, signing: SigningKeyKind::Drawn }, expected: "epoch_ahead", base_accepted: None },
    Spec { name: "control_truncated", description: "A sender key with its last byte removed.", receiver: Carol, after_steps: 17, operation: Operation::Receive(Alice), base: Base::SenderKey(2), mutation: Mutation::DropLast(1), expected: "malformed", base_accepted: Some(true) },
    Spec { name: "control_wrong_version", description: "A sender key with its control version byte set to 2.", receiver: Carol, after_steps: 17, operation: Operation::Receive(Alice), base: Base::SenderKey(2), mutation: Mutation::SetByte("version", 2), expected: "unsupported_version", base_accepted: Some(true) },
    Spec { name: "welcome_to_receive", description: "A welcome given to Group::receive (welcomes are for Group::join).", receiver: Bob, after_steps: 10, operation: Operation::Receive(Alice), base: Base::Welcome(1), mutation: Mutation::Unchanged, expected: "unexpected_kind", base_accepted: Some(false) },
    Spec { name: "welcome_for_another_member", description: "Bob's welcome (epoch 1) used by Carol to join: it does not add her.", receiver: Carol, after_steps: 10, operation: Operation::Join(Alice), base: Base::Welcome(0), mutation: Mutation::Unchanged, expected: "invalid_change", base_accepted: Some(false) },
    Spec { name: "welcome_from_wrong_peer", description: "Carol's welcome, arriving over Bob's pairwise session: a welcome must come from the admin whose commit it carries.", receiver: Carol, after_steps: 10, operation: Operation::Join(Bob), base: Base::Welcome(1), mutation: Mutation::WrongFrom, expected: "not_authorized", base_accepted: Some(true) },
    Spec { name: "welcome_summary_seniority_changed", description: "Carol's welcome with Alice's seniority in the summary changed from (0, 0) to (1, 0): the seniorities are in the state hash, so the recomputed parent state hash is not the commit's parent hash.", receiver: Carol, after_steps: 10, operation: Operation::Join(Alice), base: Base::Welcome(1), mutation: Mutation::FlipSummary { member: 1, field: "since_epoch" }, expected: "unknown_parent", base_accepted: Some(true) },
];

#[derive(Serialize)]
pub(super) struct NegativeVector {
    name: &'static str,
    description: &'static str,
    receiver: &'static str,
    after_steps: usize,
    receiver_steps: Vec<usize>,
    now: u64,
    operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    base: Option<BaseVector>,
    base_accepted: Option<bool>,
    mutation: MutationVector,
    #[serde(skip_serializing_if = "Option::is_none")]
    forged_envelope: Option<ForgedVector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crafted_commit: Option<CraftedCommitVector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crafted_sender_key: Option<CraftedSenderKeyVector>,
    input: String,
    expected_error: &'static str,
}

#[derive(Serialize)]
struct BaseVector {
    kind: &'static str,
    index: usize,
}

fn operation_name(operation: Operation) -> (&'static str, Option<&'static str>) {
    match operation {
        Operation::Open => ("open", None),
        Operation::Receive(from) => ("receive", Some(from.name())),
        Operation::Join(from) => ("join", Some(from.name())),
    }
}

fn base_vector(base: Base) -> Option<BaseVector> {
    let (kind, index) = match base {
        Base::Message(i) => ("message", i),
        Base::Commit(i) => ("commit", i),
        Base::Welcome(i) => ("welcome", i),
        Base::SenderKey(i) => ("sender_key", i),
        Base::None => return None,
    };
    Some(BaseVector { kind, index })
}

fn receiver_steps(spec: &Spec) -> Vec<usize> {
    TIMELINE[..spec.after_steps]
        .iter()
        .enumerate()
        .filter(|(_, (step, _))| step.party() == spec.receiver)
        .map(|(i, _)| i)
        .collect()
}

pub(super) fn negative_vectors(generated: &Generated) -> Vec<NegativeVector> {
    SPECS
        .iter()
        .map(|spec| {
            let Built {
                input,
                mutation,
                forged,
                commit,
                sender_key,
            } = build(spec, generated);
            let (operation, from) = operation_name(spec.operation);
            NegativeVector {
                name: spec.name,
                description: spec.description,
                receiver: spec.receiver.name(),
                after_steps: spec.after_steps,
                receiver_steps: receiver_steps(spec),
                now: step_time(spec.after_steps),
                operation,
                from,
                base: base_vector(spec.base),
                base_accepted: spec.base_accepted,
                mutation,
                forged_envelope: forged,
                crafted_commit: commit,
                crafted_sender_key: sender_key,
                input: h(&input),
                expected_error: spec.expected,
            }
        })
        .collect()
}

/// A copy of `group`, through its serialized state.
fn copy(group: &Group) -> Group {
    Group::from_bytes(group.to_bytes().expose_secret()).unwrap()
}

/// Applies `input` as `operation` to a copy of `group` (the receiver's state), or joins as
/// `receiver`. Returns the result and the copy's state afterwards.
fn apply(
    group: Option<&Group>,
    receiver: Party,
    operation: Operation,
    input: &[u8],
    now: Timestamp,
) -> (Result<(), Error>, Option<Vec<u8>>) {
    let mut copy = group.map(copy);
    let result = match (operation, copy.as_mut()) {
        (Operation::Open, Some(group)) => group.open(input, now).map(|_| ()),
        (Operation::Receive(from), Some(group)) => {
            group.receive(&from.public(), input, now).map(|_| ())
        }
        (Operation::Join(from), None) => {
            Group::join(&receiver.public(), &from.public(), input, config(), now).map(|_| ())
        }
        _ => panic!("{receiver:?}: a join needs no group, the rest need one"),
    };
    (result, copy.map(|g| g.to_bytes().expose_secret().to_vec()))
}

/// Checks one negative vector against the receiver's real group at its position.
fn check_negative(spec: &Spec, generated: &Generated, group: Option<&Group>) {
    let built = build(spec, generated);
    let now = Timestamp::from_unix_secs(step_time(spec.after_steps));
    let before = group.map(|g| g.to_bytes().expose_secret().to_vec());

    // Control: the unmodified base, from its real sender, on the same state.
    if let Some((base, real_from)) = generated.base(spec.base) {
        let operation = match spec.operation {
            Operation::Open => Operation::Open,
            Operation::Receive(_) => Operation::Receive(real_from.unwrap()),
            Operation::Join(_) => Operation::Join(real_from.unwrap()),
        };
        let (control, _) = apply(group, spec.receiver, operation, &base, now);
        assert_eq!(
            Some(control.is_ok()),
            spec.base_accepted,
            "{}: the unmodified base ({control:?})",
            spec.name
        );
    }

    let (result, after) = apply(group, spec.receiver, spec.operation, &built.input, now);
    assert_eq!(
        result.as_ref().err().map(error_class),
        Some(spec.expected),
        "{}: {}: got {result:?}",
        spec.name,
        spec.description
    );
    assert!(
        before == after,
        "{}: the rejected input changed the group",
        spec.name
    );

    if let Mutation::Forge {
        impersonated,
        epoch,
        ..
    } = spec.mutation
    {
        // Signed with the impersonated member's real key instead, the forged envelope opens:
        // the signature is the only thing wrong with it.
        let parsed = message::parse(&built.input).unwrap();
        let state_hash = generated.epochs[&epoch].state_hash;
        let real_seed = generated.chains[&(impersonated, epoch)].signing_seed;
        let signature =
            SigningKey::from_bytes(&real_seed).sign(&signature_input(&state_hash, parsed.signed));
        let genuine = [parsed.signed, &signature.to_bytes()].concat();
        let opened = copy(group.unwrap()).open(&genuine, now).unwrap();
        assert_eq!(opened.plaintext, FORGED_TEXT.as_bytes());
        assert_eq!(opened.sender, impersonated.public());
    }
}

#[test]
fn group_negative_vectors_are_rejected_without_state_change() {
    let generated = super::scenario::generate();
    let mut runner = Runner::new();
    for position in 0..=TIMELINE.len() {
        for spec in SPECS.iter().filter(|s| s.after_steps == position) {
            let group = runner.get(spec.receiver);
            assert_eq!(
                group.is_none(),
                matches!(spec.operation, Operation::Join(_)),
                "{}: only a join starts from no group",
                spec.name
            );
            check_negative(spec, &generated, group);
        }
        if position < TIMELINE.len() {
            runner.step(position);
        }
    }
}
