//! The group envelope: the pairwise envelope's discipline plus the sender's signature.
//!
//! ```text
//! envelope  = header ‖ varint(len) ‖ ct ‖ tag ‖ signature
//! header    = version:u8 (1) ‖ suite:u8 (1) ‖ kind:u8 (2) ‖ group id[16] ‖ epoch:varint
//!             ‖ branch[4] ‖ sender:varint ‖ counter:varint                       (postcard)
//! ct        = AES-256-GCM(key, nonce, padded plaintext, aad = header ‖ S) ‖ GCM tag(16)
//! tag       = HMAC-SHA256(mac key, header ‖ S ‖ nonce ‖ ct)                       (32 bytes)
//! signature = Ed25519(sender's epoch signing key,
//!                     "sealwire/v1/group/signature" ‖ S ‖ header ‖ varint(len) ‖ ct ‖ tag)
//! ```
//!
//! `S` is the epoch's state hash: it binds the message to the group, the epoch, the branch of
//! history and the exact member list, none of which need to be sent. `branch` is the first four
//! bytes of `S`: a receiver that holds another state for that epoch (it applied a competing
//! commit) recognises the message as belonging to another branch, and keeps it until the
//! conflict is resolved, instead of misreading `sender`, the sender's index in that epoch's
//! member list, against its own list. Keys and nonce come from the sender's chain as for
//! pairwise messages, with the group label. A receiver checks, in order: framing, the HMAC tag
//! (cheap, rejects any non-member), the signature (rejects a member forging another member's
//! message: every member holds the HMAC key, only the sender holds the signing key), then
//! AES-GCM.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::envelope::{self, GROUP_KIND, MAC_LEN, PROTOCOL_VERSION, SUITE_V1};
use crate::error::{Error, Result};
use crate::kdf::{LABEL_GROUP_SIGNATURE, MessageKeys};

use super::batch::BatchVerified;
use super::control::GroupId;

/// Length of the sender's Ed25519 signature at the end of a group envelope.
pub const GROUP_SIGNATURE_LEN: usize = 64;
/// Length of the branch tag: a prefix of the epoch's state hash.
pub(crate) const BRANCH_TAG_LEN: usize = 4;
/// Longest group header: 3 fixed bytes, the group id, the branch tag and three 5-byte varints.
const MAX_GROUP_HEADER_LEN: usize = 3 + 16 + BRANCH_TAG_LEN + 3 * 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupHeader {
    pub(crate) version: u8,
    pub(crate) suite: u8,
    pub(crate) kind: u8,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) group_id: [u8; 16],
    pub(crate) epoch: u32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) branch: [u8; BRANCH_TAG_LEN],
    pub(crate) sender: u32,
    pub(crate) counter: u32,
}

/// The branch tag of an epoch with state hash `state_hash`.
pub(crate) fn branch_tag(state_hash: &[u8; 32]) -> [u8; BRANCH_TAG_LEN] {
    let mut tag = [0u8; BRANCH_TAG_LEN];
    tag.copy_from_slice(&state_hash[..BRANCH_TAG_LEN]);
    tag
}

impl GroupHeader {
    pub(crate) fn new(
        group_id: &GroupId,
        epoch: u32,
        state_hash: &[u8; 32],
        sender: u32,
        counter: u32,
    ) -> Self {
        GroupHeader {
            version: PROTOCOL_VERSION,
            suite: SUITE_V1,
            kind: GROUP_KIND,
            group_id: *group_id.as_bytes(),
            epoch,
            branch: branch_tag(state_hash),
            sender,
            counter,
        }
    }
}

/// A group envelope split into its parts, with the header bytes exactly as received.
pub(crate) struct ParsedGroupEnvelope<'a> {
    pub(crate) header: GroupHeader,
    pub(crate) header_bytes: &'a [u8],
    pub(crate) ciphertext: &'a [u8],
    pub(crate) tag: &'a [u8; MAC_LEN],
    /// Everything the signature covers after `S`: header through tag.
    pub(crate) signed: &'a [u8],
    pub(crate) signature: &'a [u8; GROUP_SIGNATURE_LEN],
}

/// Splits and checks the framing of a group envelope. Never panics, whatever the input.
pub(crate) fn parse(bytes: &[u8]) -> Result<ParsedGroupEnvelope<'_>> {
    envelope::check_prefix(bytes)?;
    if bytes.len() < 3 {
        return Err(Error::Malformed("group envelope (truncated header)"));
    }
    if bytes.get(2) != Some(&GROUP_KIND) {
        return Err(Error::UnexpectedKind(
            "a pairwise envelope: open it with its Session",
        ));
    }
    let (header, rest) = postcard::take_from_bytes::<GroupHeader>(bytes)
        .map_err(|_| Error::Malformed("group envelope header"))?;
    let header_bytes = &bytes[..bytes.len() - rest.len()];
    let mut canonical = [0u8; MAX_GROUP_HEADER_LEN];
    let canonical = postcard::to_slice(&header, &mut canonical)
        .map_err(|_| Error::Malformed("group envelope header"))?;
    if *canonical != *header_bytes {
        return Err(Error::Malformed("group envelope header (not canonical)"));
    }
    let (ciphertext, after) = envelope::split_ciphertext(rest)?;
    if after.len() != MAC_LEN + GROUP_SIGNATURE_LEN {
        return Err(Error::Malformed(
            "group envelope trailer (must be a 32-byte tag and a 64-byte signature)",
        ));
    }
    let (tag, signature) = after.split_at(MAC_LEN);
    let tag: &[u8; MAC_LEN] = tag
        .try_into()
        .map_err(|_| Error::Malformed("group envelope tag"))?;
    let signature: &[u8; GROUP_SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| Error::Malformed("group envelope signature"))?;
    Ok(ParsedGroupEnvelope {
        header,
        header_bytes,
        ciphertext,
        tag,
        signed: &bytes[..bytes.len() - GROUP_SIGNATURE_LEN],
        signature,
    })
}

/// Seals `plaintext` into a complete group envelope.
pub(crate) fn seal(
    header: &GroupHeader,
    keys: &MessageKeys,
    state_hash: &[u8; 32],
    signing_key: &SigningKey,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let capacity = MAX_GROUP_HEADER_LEN
        + 3
        + crate::padding::padded_len(plaintext.len().min(envelope::MAX_PLAINTEXT_LEN))
        + 16
        + MAC_LEN
        + GROUP_SIGNATURE_LEN;
    let out = postcard::to_extend(header, Vec::with_capacity(capacity))
        .map_err(|_| Error::Malformed("group envelope header"))?;
    let mut out = envelope::seal_after_header(out, keys, state_hash, plaintext)?;
    let signature = signing_key.sign(&signed_message(state_hash, &out));
    out.extend_from_slice(&signature.to_bytes());
    Ok(out)
}

/// The bytes a group envelope's signature covers.
pub(crate) fn signed_message(state_hash: &[u8; 32], envelope_without_signature: &[u8]) -> Vec<u8> {
    [
        LABEL_GROUP_SIGNATURE,
        state_hash,
        envelope_without_signature,
    ]
    .concat()
}

/// How [`open`] checks the sender's signature (spec/groups.md 8.4 step 16).
pub(crate) enum SignatureCheck<'a> {
    /// Verify it strictly, alone. The only check [`Group::open`](crate::Group::open) uses.
    Strict,
    /// It was verified together with others in a batch that passed. It is skipped only if the
    /// proof covers exactly this signature, key, state hash and signed bytes; otherwise the
    /// signature is verified strictly.
    Batched(&'a BatchVerified<'a>),
}

/// Checks the HMAC tag, then the sender's signature, then decrypts. Returns the plaintext.
pub(crate) fn open(
    envelope: &ParsedGroupEnvelope<'_>,
    keys: &MessageKeys,
    state_hash: &[u8; 32],
    sender_key: &VerifyingKey,
    check: SignatureCheck<'_>,
) -> Result<Vec<u8>> {
    if !envelope::tag_is_authentic(
        envelope.header_bytes,
        envelope.ciphertext,
        envelope.tag,
        keys,
        state_hash,
    ) {
        return Err(Error::DecryptFailed);
    }
    let batch_verified = match check {
        SignatureCheck::Strict => false,
        SignatureCheck::Batched(proof) => {
            proof.covers(sender_key, state_hash, envelope.signed, envelope.signature)
        }
    };
    if !batch_verified {
        sender_key
            .verify_strict(
                &signed_message(state_hash, envelope.signed),
                &Signature::from_bytes(envelope.signature),
            )
            .map_err(|_| Error::InvalidSignature("group message (not signed by its sender)"))?;
    }
    envelope::decrypt(envelope.header_bytes, envelope.ciphertext, keys, state_hash)
}

/// The public header of a group envelope, for routing: which group, epoch and sender it names.
/// Nothing here is authenticated until the envelope is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEnvelopeHeader {
    group_id: GroupId,
    epoch: u32,
    sender: u32,
    counter: u32,
}

impl GroupEnvelopeHeader {
    /// Parses the framing of a group envelope and returns its public header.
    ///
    /// # Errors
    /// The framing errors of [`Group::open`](crate::Group::open): [`Error::TooLarge`],
    /// [`Error::Malformed`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`], and
    /// [`Error::UnexpectedKind`] for a pairwise envelope.
    pub fn parse(envelope: &[u8]) -> Result<Self> {
        let parsed = parse(envelope)?;
        Ok(GroupEnvelopeHeader {
            group_id: GroupId::from_bytes(parsed.header.group_id),
            epoch: parsed.header.epoch,
            sender: parsed.header.sender,
            counter: parsed.header.counter,
        })
    }

    /// The group.
    pub fn group_id(&self) -> GroupId {
        self.group_id
    }

    /// The group epoch it was sealed in.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The sender's index in that epoch's member list.
    pub fn sender(&self) -> u32 {
        self.sender
    }

    /// The message counter in the sender's chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_group_header_fits() {
        let header = GroupHeader::new(
            &GroupId::from_bytes([7; 16]),
            u32::MAX,
            &[9; 32],
            u32::MAX,
            u32::MAX,
        );
        let mut buf = [0u8; MAX_GROUP_HEADER_LEN];
        assert_eq!(
            postcard::to_slice(&header, &mut buf).unwrap().len(),
            MAX_GROUP_HEADER_LEN
        );
    }
}
