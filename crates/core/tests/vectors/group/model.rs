//! The roster model (groups.md 3.1, 3.2, 6.2): members with their roles and seniorities, the
//! state hash input, and each commit's changes applied to the parent roster, validated as a
//! receiver validates them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::codec::WireChange;
use super::{ADMIN, MEMBER, role_wire};
use crate::LABEL_GROUP_STATE;
use crate::json::{bytes, list, num32, text_of};

/// A roster member: name, 128-byte public identity, role (wire value) and seniority
/// `since = (epoch, index)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) name: String,
    pub(super) identity: Vec<u8>,
    pub(super) role: u8,
    pub(super) since: (u32, u32),
}

impl Member {
    /// The Ed25519 signing key `S`, the first 32 bytes of the identity.
    pub(super) fn key(&self) -> &[u8] {
        &self.identity[..32]
    }
}

/// The roster of a recorded epoch (`epochs[].members`).
pub(super) fn members_of(epoch: &Value) -> Vec<Member> {
    list(epoch, "members")
        .iter()
        .map(|m| Member {
            name: text_of(m, "name").to_owned(),
            identity: bytes(m, "public_identity"),
            role: role_wire(text_of(m, "role")),
            since: since_of(&m["since"]),
        })
        .collect()
}

/// A recorded seniority: `{"epoch": e, "index": i}`.
pub(super) fn since_of(since: &Value) -> (u32, u32) {
    assert_eq!(
        since.as_object().unwrap().len(),
        2,
        "since: epoch and index"
    );
    (num32(since, "epoch"), num32(since, "index"))
}

/// `LABEL ‖ group id ‖ be32(epoch) ‖ P ‖ H ‖ be32(n)
/// ‖ (identity ‖ role:u8 ‖ be32(since.epoch) ‖ be32(since.index))*`.
pub(super) fn state_hash_input(
    group_id: &[u8],
    epoch: u32,
    parent_hash: &[u8],
    commit_hash: &[u8],
    members: &[Member],
) -> Vec<u8> {
    let mut input = [
        LABEL_GROUP_STATE,
        group_id,
        &epoch.to_be_bytes(),
        parent_hash,
        commit_hash,
        &u32::try_from(members.len()).unwrap().to_be_bytes(),
    ]
    .concat();
    for m in members {
        input.extend_from_slice(&m.identity);
        input.push(m.role);
        input.extend_from_slice(&m.since.0.to_be_bytes());
        input.extend_from_slice(&m.since.1.to_be_bytes());
    }
    input
}

/// The roster of epoch `epoch` after the changes of a commit by `committer`, applied to the
/// parent roster as groups.md 6.2 steps 2, 4, 5 and 6 say (the signature aside): the
/// committer must be a member; any change but leaving needs an admin; each change must apply;
/// Add and SetRole give the seniority `(epoch, position)`; the result keeps an admin. Returns
/// the error class otherwise.
pub(super) fn apply_changes(
    parent: &[Member],
    committer: &[u8],
    changes: &[WireChange],
    epoch: u32,
    names: &BTreeMap<Vec<u8>, String>,
) -> Result<Vec<Member>, &'static str> {
    let committer = parent
        .iter()
        .find(|m| m.key() == committer)
        .ok_or("not_a_member")?;
    let target = |change: &WireChange| match change {
        WireChange::Add(identity, _) => identity[..32].to_vec(),
        WireChange::Remove(key) | WireChange::SetRole(key, _) => key.to_vec(),
    };
    let mut targets: Vec<Vec<u8>> = changes.iter().map(target).collect();
    targets.sort();
    targets.dedup();
    if changes.len() > 100 || targets.len() != changes.len() {
        return Err("invalid_change");
    }
    let leaving = matches!(changes, [WireChange::Remove(key)] if key[..] == *committer.key());
    if !changes.is_empty() && !leaving && committer.role != ADMIN {
        return Err("not_authorized");
    }
    let mut members = parent.to_vec();
    for (position, change) in changes.iter().enumerate() {
        let since = (epoch, u32::try_from(position).unwrap());
        let held = members.iter().position(|m| m.key() == target(change));
        match (change, held) {
            (WireChange::Add(identity, role), None) => members.push(Member {
                name: names[identity].clone(),
                identity: identity.clone(),
                role: *role,
                since,
            }),
            (WireChange::Remove(_), Some(i)) => {
                members.remove(i);
            }
            (WireChange::SetRole(_, role), Some(i)) if members[i].role != *role => {
                members[i].role = *role;
                members[i].since = since;
            }
            _ => return Err("invalid_change"),
        }
    }
    members.sort_by(|a, b| a.key().cmp(b.key()));
    if members.is_empty() || members.len() > 450 || members.iter().all(|m| m.role == MEMBER) {
        return Err("invalid_change");
    }
    Ok(members)
}
