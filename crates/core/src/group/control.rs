//! Group control messages: commits, welcomes and sender keys, as carried inside pairwise
//! sessions, and the two hashes that chain a group's epochs.
//!
//! ```text
//! control    = version:u8 (1) ‖ kind:varint ‖ body                                  (postcard)
//! kind 0     = commit:  signed-commit
//! kind 1     = welcome: parent-summary ‖ signed-commit
//! kind 2     = sender key: group id[16] ‖ epoch:varint ‖ state hash[32] ‖ counter:varint ‖ chain key[32] ‖ signing key[32]
//! signed-commit = varint(len) ‖ commit bytes ‖ signature[64]
//! commit     = group id[16] ‖ epoch:varint ‖ parent hash[32] ‖ committer[32] ‖ varint(n) ‖ change*
//! signature  = Ed25519(committer identity, "sealwire/v1/group/commit" ‖ commit bytes)
//! commit hash = SHA-256("sealwire/v1/group/commit-hash" ‖ commit bytes)
//! state hash = SHA-256("sealwire/v1/group/state" ‖ group id ‖ be32(epoch) ‖ parent hash ‖ commit hash
//!                      ‖ be32(n) ‖ (identity[128] ‖ role:u8 ‖ be32(since epoch) ‖ be32(since index))*)
//!              members in roster order
//! ```
//!
//! Every control message must be in canonical postcard form (decoding then re-encoding gives
//! the same bytes), so one message has one encoding and the signed commit bytes are exactly
//! the bytes every member hashes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::roster::{Roster, WireChange, WireMember};
use crate::error::{Error, Result};
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::kdf::{LABEL_GROUP_COMMIT, LABEL_GROUP_COMMIT_HASH, LABEL_GROUP_STATE};
use crate::secret::{Secret32, SecretBytes};

/// Version byte of every control message.
pub(crate) const CONTROL_VERSION: u8 = 1;
/// Largest control message accepted: control messages travel as one pairwise plaintext.
pub const MAX_CONTROL_LEN: usize = crate::envelope::MAX_PLAINTEXT_LEN;

/// A group's 16-byte identifier, chosen at random by its creator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId([u8; 16]);

impl GroupId {
    /// Wraps 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        GroupId(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl core::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GroupId({})", crate::fmt_hex(&self.0))
    }
}

impl core::fmt::Display for GroupId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&crate::fmt_hex(&self.0))
    }
}

/// The content of a commit: the exact bytes are signed and hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Commit {
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) group_id: [u8; 16],
    pub(crate) epoch: u32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) parent_hash: [u8; 32],
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) committer: [u8; 32],
    pub(crate) changes: Vec<WireChange>,
}

/// A commit's bytes and the committer's signature over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedCommit {
    pub(crate) commit: Vec<u8>,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) signature: [u8; 64],
}

impl SignedCommit {
    /// Encodes and signs `commit` with the committer's identity.
    pub(crate) fn sign(commit: &Commit, identity: &IdentityKeyPair) -> Result<SignedCommit> {
        let bytes =
            crate::encoding::to_exact_vec(commit).map_err(|_| Error::Malformed("commit"))?;
        let signature = identity.sign(&[LABEL_GROUP_COMMIT, &bytes]);
        Ok(SignedCommit {
            commit: bytes,
            signature,
        })
    }

    /// Decodes the commit (canonical form required). The signature is not checked here: the
    /// committer's identity comes from the parent roster ([`Self::verify`]).
    pub(crate) fn decode(&self) -> Result<Commit> {
        let commit: Commit = decode_canonical(&self.commit, "commit")?;
        Ok(commit)
    }

    /// Verifies the signature with the committer's identity.
    pub(crate) fn verify(&self, committer: &PublicIdentity) -> Result<()> {
        committer.verify(
            &[LABEL_GROUP_COMMIT, &self.commit],
            &self.signature,
            "group commit",
        )
    }

    pub(crate) fn hash(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(LABEL_GROUP_COMMIT_HASH)
            .chain_update(&self.commit)
            .finalize()
            .into()
    }
}

/// The public description of an epoch that a welcome carries: enough for a new member to
/// recompute the parent's state hash and apply the commit exactly as existing members did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireSummary {
    pub(crate) epoch: u32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) parent_hash: [u8; 32],
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) commit_hash: [u8; 32],
    pub(crate) members: Vec<WireMember>,
}

/// A sender key: the start of one member's sending chain for one epoch, and the public key
/// that verifies its signatures.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct WireSenderKey {
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) group_id: [u8; 16],
    pub(crate) epoch: u32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) state_hash: [u8; 32],
    pub(crate) counter: u32,
    pub(crate) chain_key: Secret32,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) signing_key: [u8; 32],
}

#[derive(Serialize, Deserialize)]
pub(crate) enum ControlBody {
    /// kind 0
    Commit(SignedCommit),
    /// kind 1
    Welcome {
        parent: WireSummary,
        commit: SignedCommit,
    },
    /// kind 2
    SenderKey(WireSenderKey),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ControlWire {
    pub(crate) version: u8,
    pub(crate) body: ControlBody,
}

impl ControlWire {
    pub(crate) fn new(body: ControlBody) -> Self {
        ControlWire {
            version: CONTROL_VERSION,
            body,
        }
    }

    /// Encodes into zeroizing bytes (sender keys carry a chain key).
    pub(crate) fn encode(&self) -> Result<SecretBytes> {
        crate::encoding::to_exact_vec(self)
            .map(SecretBytes::new)
            .map_err(|_| Error::Malformed("control message"))
    }

    /// Encodes a control message that holds no secret (commit, welcome).
    pub(crate) fn encode_public(&self) -> Result<Vec<u8>> {
        crate::encoding::to_exact_vec(self).map_err(|_| Error::Malformed("control message"))
    }

    /// Decodes a control message: size, version, canonical form.
    pub(crate) fn decode(bytes: &[u8]) -> Result<ControlWire> {
        if bytes.len() > MAX_CONTROL_LEN {
            return Err(Error::TooLarge {
                what: "group control message",
                len: bytes.len(),
                max: MAX_CONTROL_LEN,
            });
        }
        match bytes.first() {
            None => return Err(Error::Malformed("group control message (empty)")),
            Some(&version) if version != CONTROL_VERSION => {
                return Err(Error::UnsupportedVersion(version));
            }
            Some(_) => {}
        }
        decode_canonical(bytes, "group control message")
    }
}

/// Postcard-decodes `bytes` as a whole and requires them to be the canonical encoding.
fn decode_canonical<T: Serialize + serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T> {
    let value: T = postcard::from_bytes(bytes).map_err(|_| Error::Malformed(what))?;
    // Re-encoding must give back every byte: this rejects trailing bytes as well as
    // non-canonical varints.
    let again =
        Zeroizing::new(crate::encoding::to_exact_vec(&value).map_err(|_| Error::Malformed(what))?);
    if again.as_slice() != bytes {
        return Err(Error::Malformed(what));
    }
    Ok(value)
}

/// The state hash of an epoch: binds the group id, the epoch number, the whole history (through
/// the parent's hash), the commit that started it and the resulting roster.
pub(crate) fn state_hash(
    group_id: &[u8; 16],
    epoch: u32,
    parent_hash: &[u8; 32],
    commit_hash: &[u8; 32],
    roster: &Roster,
) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(LABEL_GROUP_STATE);
    hash.update(group_id);
    hash.update(epoch.to_be_bytes());
    hash.update(parent_hash);
    hash.update(commit_hash);
    let count = u32::try_from(roster.len()).unwrap_or(u32::MAX);
    hash.update(count.to_be_bytes());
    for member in roster.members() {
        hash.update(member.identity().to_bytes());
        hash.update([member.role().wire()]);
        hash.update(member.since().epoch.to_be_bytes());
        hash.update(member.since().index.to_be_bytes());
    }
    hash.finalize().into()
}

/// What a control message is, for routing it to the right group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlKind {
    /// A commit: a membership change or a key rotation, for existing members.
    Commit,
    /// A welcome: the state a new member needs to join.
    Welcome,
    /// A sender key: a member's sending chain for one epoch.
    SenderKey,
}

/// The public view of a group control message (the plaintext of a pairwise message), for
/// routing: which group it concerns and what it is. Nothing is authenticated here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    kind: ControlKind,
    group_id: GroupId,
    epoch: u32,
}

impl ControlMessage {
    /// Parses a control message's framing and returns its public view.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::UnsupportedVersion`] or [`Error::Malformed`].
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let wire = ControlWire::decode(bytes)?;
        let (kind, group_id, epoch) = match &wire.body {
            ControlBody::Commit(signed) | ControlBody::Welcome { commit: signed, .. } => {
                let commit = signed.decode()?;
                let kind = if matches!(wire.body, ControlBody::Commit(_)) {
                    ControlKind::Commit
                } else {
                    ControlKind::Welcome
                };
                (kind, commit.group_id, commit.epoch)
            }
            ControlBody::SenderKey(key) => (ControlKind::SenderKey, key.group_id, key.epoch),
        };
        Ok(ControlMessage {
            kind,
            group_id: GroupId(group_id),
            epoch,
        })
    }

    /// Commit, welcome or sender key.
    pub fn kind(&self) -> ControlKind {
        self.kind
    }

    /// The group it concerns.
    pub fn group_id(&self) -> GroupId {
        self.group_id
    }

    /// The epoch it starts (commit, welcome) or belongs to (sender key).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
}
