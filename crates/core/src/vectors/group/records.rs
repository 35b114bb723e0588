//! The records of group.json's positive part (see `spec/vectors/README.md`), and how the
//! library's values are written into them.

use serde::Serialize;

use super::super::{h, keys};
use super::negative::NegativeVector;
use super::script::{PARTIES, Party, role_name};
use crate::group::roster::WireChange;
use crate::group::{GroupConfig, Member, Seniority};
use crate::identity::PublicIdentity;

#[derive(Serialize)]
pub(in crate::vectors) struct GroupFile {
    pub(super) description: &'static str,
    pub(super) version: u32,
    pub(super) config: GroupConfig,
    pub(super) parties: Vec<PartyVector>,
    pub(super) group_id: String,
    pub(super) epochs: Vec<EpochVector>,
    pub(super) commits: Vec<CommitVector>,
    pub(super) sender_keys: Vec<SenderKeyVector>,
    pub(super) messages: Vec<MessageVector>,
    pub(super) timeline: Vec<StepVector>,
    pub(super) negative: Vec<NegativeVector>,
}

#[derive(Serialize)]
pub(super) struct PartyVector {
    name: &'static str,
    signing_seed: String,
    agreement_secret: String,
    public_identity: String,
}

/// The three parties, as in identity.json.
pub(super) fn party_vectors() -> Vec<PartyVector> {
    PARTIES
        .iter()
        .map(|p| {
            let id = keys::identity(p.name());
            PartyVector {
                name: p.name(),
                signing_seed: h(&id.signing_seed),
                agreement_secret: h(&id.agreement_secret),
                public_identity: h(&id.pair.public().to_bytes()),
            }
        })
        .collect()
}

#[derive(Serialize)]
pub(super) struct EpochVector {
    pub(super) epoch: u32,
    pub(super) commit: Option<usize>,
    pub(super) parent_hash: String,
    pub(super) commit_hash: String,
    pub(super) members: Vec<MemberVector>,
    pub(super) state_hash_input: String,
    pub(super) state_hash: String,
}

#[derive(Serialize)]
pub(super) struct MemberVector {
    index: u32,
    name: &'static str,
    role: &'static str,
    since: SinceVector,
    public_identity: String,
}

/// A seniority: the epoch of the commit that gave the member its role, and the position of
/// that change in the commit.
#[derive(Serialize)]
pub(super) struct SinceVector {
    epoch: u32,
    index: u32,
}

impl From<Seniority> for SinceVector {
    fn from(since: Seniority) -> Self {
        SinceVector {
            epoch: since.epoch,
            index: since.index,
        }
    }
}

/// A roster, in roster order.
pub(super) fn member_vectors(members: &[Member]) -> Vec<MemberVector> {
    members
        .iter()
        .enumerate()
        .map(|(index, member)| MemberVector {
            index: u32::try_from(index).unwrap(),
            name: Party::of(member.identity()).name(),
            role: role_name(member.role()),
            since: member.since().into(),
            public_identity: h(&member.identity().to_bytes()),
        })
        .collect()
}

#[derive(Serialize)]
pub(super) struct CommitVector {
    pub(super) index: usize,
    pub(super) committer: &'static str,
    pub(super) committer_role: &'static str,
    pub(super) committer_since: SinceVector,
    pub(super) time: u64,
    pub(super) epoch: u32,
    pub(super) parent_hash: String,
    pub(super) changes: Vec<ChangeVector>,
    pub(super) commit_bytes: String,
    pub(super) signed_message: String,
    pub(super) signature: String,
    pub(super) commit_hash: String,
    pub(super) control: String,
    pub(super) recipients: Vec<&'static str>,
    pub(super) welcome: Option<String>,
    pub(super) welcome_recipients: Vec<&'static str>,
}

#[derive(Serialize)]
pub(super) struct ChangeVector {
    kind: &'static str,
    member: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

impl From<&WireChange> for ChangeVector {
    fn from(change: &WireChange) -> Self {
        let (kind, member, identity, key, role) = match change {
            WireChange::Add { identity, role } => {
                let party = Party::of(&PublicIdentity::from_bytes(identity).unwrap());
                ("add", party, Some(h(identity)), None, Some(*role))
            }
            WireChange::Remove { member } => {
                ("remove", Party::of_key(member), None, Some(h(member)), None)
            }
            WireChange::SetRole { member, role } => (
                "set_role",
                Party::of_key(member),
                None,
                Some(h(member)),
                Some(*role),
            ),
        };
        ChangeVector {
            kind,
            member: member.name(),
            identity,
            key,
            role: role.map(role_name),
        }
    }
}

#[derive(Serialize)]
pub(super) struct SenderKeyVector {
    pub(super) index: usize,
    pub(super) sender: &'static str,
    pub(super) epoch: u32,
    pub(super) sender_index: u32,
    pub(super) state_hash: String,
    pub(super) counter: u32,
    pub(super) chain_key: String,
    pub(super) signing_seed: String,
    pub(super) signing_key: String,
    pub(super) recipients: Vec<&'static str>,
    pub(super) control: String,
}

#[derive(Serialize)]
pub(super) struct MessageVector {
    pub(super) index: usize,
    pub(super) sender: &'static str,
    pub(super) sender_role: &'static str,
    pub(super) time: u64,
    pub(super) epoch: u32,
    pub(super) sender_index: u32,
    pub(super) counter: u32,
    pub(super) sender_key: usize,
    pub(super) state_hash: String,
    pub(super) chain_key: String,
    pub(super) message_key: String,
    pub(super) next_chain_key: String,
    pub(super) aes_key: String,
    pub(super) mac_key: String,
    pub(super) nonce: String,
    pub(super) plaintext: String,
    pub(super) padded_length: usize,
    pub(super) header: String,
    pub(super) ciphertext: String,
    pub(super) hmac_input: String,
    pub(super) hmac_tag: String,
    pub(super) signature_input: String,
    pub(super) signature: String,
    pub(super) envelope: String,
}

#[derive(Serialize)]
pub(super) struct StepVector {
    pub(super) step: usize,
    pub(super) time: u64,
    pub(super) party: &'static str,
    pub(super) action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) commit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sender_key: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) drawn: Option<String>,
    pub(super) result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) opened: Option<OpenedVector>,
    pub(super) epoch_after: u32,
    pub(super) member_after: bool,
    pub(super) state_hash_after: String,
}

#[derive(Serialize)]
pub(super) struct OpenedVector {
    pub(super) sender: &'static str,
    pub(super) epoch: u32,
    pub(super) plaintext: String,
}
