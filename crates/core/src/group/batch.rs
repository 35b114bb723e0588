//! Opening several group envelopes that arrived together, with their signatures verified by one
//! batch equation (spec/groups.md 8.5).
//!
//! Before anything changes, every envelope whose signature check can be prepared (it parses, and
//! routes to a sender's receiving chain, spec/groups.md 8.4 steps 1-13) contributes its signed
//! bytes, signature and the chain's signing key to one `ed25519_dalek::verify_batch` call. If
//! the batch passes, each envelope is opened in order through the single-message path with a
//! [`BatchVerified`] proof in place of the strict signature check; every other step (tag,
//! replay and bounds, decryption, commit, retention) is unchanged. If the batch fails, or fewer
//! than two envelopes took part, every envelope goes through [`Group::open`] unchanged.
//!
//! A proof is bound to the exact signing key, state hash, signed bytes and signature that the
//! batch verified: if the sequential open finds anything else (say the state changed between
//! the batch and the open), it verifies the signature strictly, as [`Group::open`] would.

use ed25519_dalek::{Signature, VerifyingKey};

use super::GroupOpened;
use super::message::{self, GROUP_SIGNATURE_LEN, SignatureCheck};
use super::state::Group;
use crate::error::Result;
use crate::time::Timestamp;

/// Below this many signatures, a batch saves nothing: they are verified one by one.
const MIN_BATCH: usize = 2;

/// One signature that a batch equation accepted, with exactly what it was checked against.
///
/// Only [`Group::verify_together`] creates one, and only after `verify_batch` accepted the
/// whole batch; its fields are private to this module, so no other path can skip a signature.
pub(crate) struct BatchVerified<'a> {
    signing_key: [u8; 32],
    state_hash: [u8; 32],
    signed: &'a [u8],
    signature: [u8; GROUP_SIGNATURE_LEN],
}

impl BatchVerified<'_> {
    /// True if this proof covers `signature` by `signing_key` over `signed` in the epoch of
    /// state hash `state_hash`: the very inputs the batch verified.
    pub(crate) fn covers(
        &self,
        signing_key: &VerifyingKey,
        state_hash: &[u8; 32],
        signed: &[u8],
        signature: &[u8; GROUP_SIGNATURE_LEN],
    ) -> bool {
        self.signing_key == *signing_key.as_bytes()
            && self.state_hash == *state_hash
            && self.signed == signed
            && self.signature == *signature
    }
}

impl Group {
    /// Opens group envelopes that arrived together, in order. The results, and the group
    /// afterwards, are those of calling [`Group::open`] on each envelope in turn, with one
    /// documented exception below; the cost is lower because the Ed25519 signatures are
    /// verified together, by one batch equation, instead of one at a time.
    ///
    /// Before changing anything, every envelope whose signature check can be prepared (it
    /// parses and names an epoch, a sender and a receiving chain this member holds) takes part
    /// in one batch verification. If the batch passes, the envelopes are opened in order with
    /// the signature step replaced by the batch's verdict, and every other check (tag, replay
    /// and bounds, decryption) and state change exactly as in [`Group::open`]. If the batch
    /// fails (one forged or corrupted signature is enough), every envelope is opened with
    /// [`Group::open`], signatures verified one by one: a bad envelope costs speed, never the
    /// other envelopes. Envelopes whose signing key is unknown before the batch simply go
    /// through [`Group::open`]. A failed envelope leaves the group as [`Group::open`] would.
    ///
    /// # The one divergence from [`Group::open`]
    ///
    /// [`Group::open`] verifies strictly (`verify_strict`: canonical `s`, `R` not of small
    /// order, and the cofactorless equation `R = [s]B − [k]A` checked on the exact bytes of `R`,
    /// with `k = H(R ‖ A ‖ M)`). The batch equation (`ed25519_dalek::verify_batch`: canonical
    /// `s`, then `Σ z_i([s_i]B − R_i − [k_i]A_i) = 0` with 128-bit coefficients `z_i` derived
    /// from all the inputs) accepts every signature that strict verification accepts, and some
    /// that it refuses: those whose residue `[s]B − R − [k]A` is a non-zero small-order point
    /// (from an `R`, or a key `A`, with a small-order component) that the coefficients happen
    /// to cancel, and those whose `R` is itself of small order (the identity, or a small-order
    /// point encoded non-canonically) while the equation holds. Only the holder of the
    /// sender's per-epoch signing key can make one: the batch accepts only if the prime-order
    /// part of every `[s_i]B − R_i − [k_i]A_i` is zero (else with probability about 2^-128),
    /// which is the cofactored Ed25519 equation, unforgeable without the key; changing any
    /// signed byte or the bytes of `R` changes `k`, and `s + ℓ` is refused as non-canonical. So a malicious sender can have its own message accepted
    /// here and refused by a member that verifies one by one. It gains nothing: it seals its
    /// envelopes and chooses who receives each send, so it can already make members see
    /// different messages. spec/groups.md 8.5 states the rule.
    pub fn open_batch(&mut self, envelopes: &[&[u8]], now: Timestamp) -> Vec<Result<GroupOpened>> {
        let proofs = self.verify_together(envelopes, now);
        envelopes
            .iter()
            .enumerate()
            .map(|(i, envelope)| {
                let check = match proofs.get(i) {
                    Some(Some(proof)) => SignatureCheck::Batched(proof),
                    _ => SignatureCheck::Strict,
                };
                self.open_checked(envelope, now, check)
            })
            .collect()
    }

    /// Verifies together the signatures of every envelope whose check can be prepared, without
    /// changing anything. Returns one entry per envelope (a proof for those in the batch) if
    /// the batch passed, or nothing (verify every signature one by one) otherwise.
    fn verify_together<'a>(
        &self,
        envelopes: &[&'a [u8]],
        now: Timestamp,
    ) -> Vec<Option<BatchVerified<'a>>> {
        let mut proofs = Vec::with_capacity(envelopes.len());
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut keys = Vec::new();
        for &envelope in envelopes {
            let proof = message::parse(envelope).ok().and_then(|parsed| {
                let route = self.route(&parsed.header, now).ok()?;
                let state_hash = route.state.state_hash;
                let signing_key = *route.chain.signing_key();
                messages.push(message::signed_message(&state_hash, parsed.signed));
                signatures.push(Signature::from_bytes(parsed.signature));
                keys.push(signing_key);
                Some(BatchVerified {
                    signing_key: signing_key.to_bytes(),
                    state_hash,
                    signed: parsed.signed,
                    signature: *parsed.signature,
                })
            });
            proofs.push(proof);
        }
        if keys.len() < MIN_BATCH {
            return Vec::new();
        }
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        match ed25519_dalek::verify_batch(&messages, &signatures, &keys) {
            Ok(()) => proofs,
            Err(_) => Vec::new(),
        }
    }
}
