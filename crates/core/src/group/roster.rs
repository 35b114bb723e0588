//! Group membership: members and their roles, the changes a commit makes, and the rules that
//! decide whether a change is valid.
//!
//! A roster is kept sorted by the members' Ed25519 identity keys, so that every member computes
//! the same order, the same member indices (which group envelopes use to name their sender)
//! and the same state hash.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::{PUBLIC_IDENTITY_LEN, PublicIdentity};

/// Largest number of members a group may have.
///
/// A welcome carries the previous epoch's member list (about 135 bytes per member) and must fit
/// in one pairwise message ([`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN)): at 450 members
/// the largest welcome is about 61 KB. Larger groups need a more compact member list (a future
/// protocol version).
pub const MAX_GROUP_MEMBERS: usize = 450;
/// Largest number of changes one commit may carry.
pub const MAX_COMMIT_CHANGES: usize = 100;

/// A member's role. Admins may change membership and roles; members may only send, rotate the
/// group's keys and remove themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MemberRole {
    /// May add and remove members and change roles (wire value 0).
    Admin,
    /// May send, rotate and leave (wire value 1).
    Member,
}

impl MemberRole {
    /// The role's wire value, as hashed into the state hash.
    pub(crate) fn wire(self) -> u8 {
        match self {
            MemberRole::Admin => 0,
            MemberRole::Member => 1,
        }
    }
}

/// When a member got its current role: the epoch of that commit and the change's position in
/// it. Among admins, the earlier one is the more senior; seniority decides conflicts between
/// admins' commits ([`crate::Group::receive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Seniority {
    /// The epoch whose commit gave the member its current role (0 for the group's creator).
    pub epoch: u32,
    /// The position of that change in the commit's change list.
    pub index: u32,
}

/// One member of a group: its identity, its role, and since when it holds that role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    identity: PublicIdentity,
    role: MemberRole,
    since: Seniority,
}

impl Member {
    /// The member's identity.
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }

    /// The member's role.
    pub fn role(&self) -> MemberRole {
        self.role
    }

    /// When the member got its current role: an admin with an earlier value is more senior.
    pub fn since(&self) -> Seniority {
        self.since
    }
}

/// A membership change, as an admin proposes it in [`Group::commit`](crate::Group::commit) and
/// as every member sees it once a commit is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Add a new member with a role.
    Add(PublicIdentity, MemberRole),
    /// Remove a member. A member without the admin role may remove itself (leave).
    Remove(PublicIdentity),
    /// Change a member's role.
    SetRole(PublicIdentity, MemberRole),
}

/// A change as encoded in a commit: members already in the roster are named by their Ed25519
/// identity key alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireChange {
    /// variant 0
    Add {
        #[serde(with = "crate::encoding::fixed")]
        identity: [u8; PUBLIC_IDENTITY_LEN],
        role: MemberRole,
    },
    /// variant 1
    Remove {
        #[serde(with = "crate::encoding::fixed")]
        member: [u8; 32],
    },
    /// variant 2
    SetRole {
        #[serde(with = "crate::encoding::fixed")]
        member: [u8; 32],
        role: MemberRole,
    },
}

impl WireChange {
    pub(crate) fn from_change(change: &Change) -> WireChange {
        match change {
            Change::Add(identity, role) => WireChange::Add {
                identity: identity.to_bytes(),
                role: *role,
            },
            Change::Remove(identity) => WireChange::Remove {
                member: *identity.signing_key(),
            },
            Change::SetRole(identity, role) => WireChange::SetRole {
                member: *identity.signing_key(),
                role: *role,
            },
        }
    }

    /// The Ed25519 key of the member this change concerns.
    fn target(&self) -> [u8; 32] {
        match self {
            WireChange::Add { identity, .. } => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&identity[..32]);
                key
            }
            WireChange::Remove { member } | WireChange::SetRole { member, .. } => *member,
        }
    }
}

/// A group's members, sorted by Ed25519 identity key, each key at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Roster {
    members: Vec<Member>,
}

/// Serialized form of a roster member (state and welcome messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireMember {
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) identity: [u8; PUBLIC_IDENTITY_LEN],
    pub(crate) role: MemberRole,
    pub(crate) since: Seniority,
}

impl Roster {
    /// A roster with one member, the group's creator, as admin.
    pub(crate) fn founder(identity: PublicIdentity) -> Roster {
        Roster {
            members: vec![Member {
                identity,
                role: MemberRole::Admin,
                since: Seniority { epoch: 0, index: 0 },
            }],
        }
    }

    /// Decodes and validates a roster: every identity verifies, keys are strictly increasing,
    /// at least one admin, at most [`MAX_GROUP_MEMBERS`].
    pub(crate) fn from_wire(wire: &[WireMember]) -> Result<Roster> {
        Self::from_wire_cached(wire, &mut HashMap::new())
    }

    /// [`Self::from_wire`], decoding (and verifying) each distinct identity once across calls.
    pub(crate) fn from_wire_cached(
        wire: &[WireMember],
        identities: &mut HashMap<[u8; PUBLIC_IDENTITY_LEN], PublicIdentity>,
    ) -> Result<Roster> {
        if wire.is_empty() || wire.len() > MAX_GROUP_MEMBERS {
            return Err(Error::InvalidChange("member list size out of range"));
        }
        let mut members = Vec::with_capacity(wire.len());
        for entry in wire {
            let identity = match identities.get(&entry.identity) {
                Some(identity) => identity.clone(),
                None => {
                    let identity = PublicIdentity::from_bytes(&entry.identity)?;
                    identities.insert(entry.identity, identity.clone());
                    identity
                }
            };
            members.push(Member {
                identity,
                role: entry.role,
                since: entry.since,
            });
        }
        let sorted = members
            .windows(2)
            .all(|pair| pair[0].identity.signing_key() < pair[1].identity.signing_key());
        if !sorted {
            return Err(Error::Malformed("member list (not sorted by identity key)"));
        }
        let roster = Roster { members };
        if !roster.has_admin() {
            return Err(Error::InvalidChange("the group would have no admin"));
        }
        Ok(roster)
    }

    pub(crate) fn to_wire(&self) -> Vec<WireMember> {
        self.members
            .iter()
            .map(|member| WireMember {
                identity: member.identity.to_bytes(),
                role: member.role,
                since: member.since,
            })
            .collect()
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Index of the member with Ed25519 identity key `key`.
    pub(crate) fn index_of(&self, key: &[u8; 32]) -> Option<usize> {
        self.members
            .binary_search_by(|member| member.identity.signing_key().cmp(key))
            .ok()
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Member> {
        self.members.get(index)
    }

    fn has_admin(&self) -> bool {
        self.members
            .iter()
            .any(|member| member.role == MemberRole::Admin)
    }

    /// Checks that the member at `committer` may make `changes`, applies them, and returns the
    /// new roster with the changes resolved to full identities. `self` is not modified.
    ///
    /// Rules, in order: at most [`MAX_COMMIT_CHANGES`] changes, each member targeted at most
    /// once; a commit without changes (a key rotation) may come from any member; a commit that
    /// only removes its committer (leaving) may come from any member; any other change needs
    /// the admin role. Then each change must make sense (add a non-member, remove or re-role a
    /// member, with a different role), and the result must have at least one admin and at most
    /// [`MAX_GROUP_MEMBERS`] members.
    /// Added and re-roled members get the seniority `(epoch, position of the change)`.
    pub(crate) fn apply(
        &self,
        committer: usize,
        changes: &[WireChange],
        epoch: u32,
    ) -> Result<(Roster, Vec<Change>)> {
        let committer_member = self
            .members
            .get(committer)
            .ok_or(Error::NotAMember("the committer"))?;
        if changes.len() > MAX_COMMIT_CHANGES {
            return Err(Error::InvalidChange("too many changes in one commit"));
        }
        let mut targets: Vec<[u8; 32]> = changes.iter().map(WireChange::target).collect();
        targets.sort_unstable();
        if targets.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(Error::InvalidChange("a member is named by two changes"));
        }
        let committer_key = *committer_member.identity.signing_key();
        let leaving =
            matches!(changes, [WireChange::Remove { member }] if *member == committer_key);
        if !changes.is_empty() && !leaving && committer_member.role != MemberRole::Admin {
            return Err(Error::NotAuthorized("membership change by a non-admin"));
        }

        let mut members = self.members.clone();
        let mut resolved = Vec::with_capacity(changes.len());
        for (position, change) in changes.iter().enumerate() {
            let since = Seniority {
                epoch,
                index: u32::try_from(position).unwrap_or(u32::MAX),
            };
            match change {
                WireChange::Add { identity, role } => {
                    let identity = PublicIdentity::from_bytes(identity)?;
                    match members
                        .binary_search_by(|m| m.identity.signing_key().cmp(identity.signing_key()))
                    {
                        Ok(_) => return Err(Error::InvalidChange("added member already present")),
                        Err(position) => members.insert(
                            position,
                            Member {
                                identity: identity.clone(),
                                role: *role,
                                since,
                            },
                        ),
                    }
                    resolved.push(Change::Add(identity, *role));
                }
                WireChange::Remove { member } => {
                    let position = members
                        .binary_search_by(|m| m.identity.signing_key().cmp(member))
                        .map_err(|_| Error::InvalidChange("removed member is not a member"))?;
                    let removed = members.remove(position);
                    resolved.push(Change::Remove(removed.identity));
                }
                WireChange::SetRole { member, role } => {
                    let position = members
                        .binary_search_by(|m| m.identity.signing_key().cmp(member))
                        .map_err(|_| Error::InvalidChange("re-roled member is not a member"))?;
                    let entry = &mut members[position];
                    if entry.role == *role {
                        return Err(Error::InvalidChange("role is unchanged"));
                    }
                    entry.role = *role;
                    entry.since = since;
                    resolved.push(Change::SetRole(entry.identity.clone(), *role));
                }
            }
        }
        if members.is_empty() {
            return Err(Error::InvalidChange("the group would have no members"));
        }
        if members.len() > MAX_GROUP_MEMBERS {
            return Err(Error::InvalidChange(
                "the group would exceed its maximum size",
            ));
        }
        let roster = Roster { members };
        if !roster.has_admin() {
            return Err(Error::InvalidChange("the group would have no admin"));
        }
        Ok((roster, resolved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;

    fn identities(n: usize) -> Vec<PublicIdentity> {
        let mut rng = rand::rng();
        let mut ids: Vec<PublicIdentity> = (0..n)
            .map(|_| IdentityKeyPair::generate(&mut rng).public().clone())
            .collect();
        ids.sort_by(|a, b| a.signing_key().cmp(b.signing_key()));
        ids
    }

    #[test]
    fn apply_keeps_order_and_checks_authorization() {
        let ids = identities(3);
        let roster = Roster::founder(ids[1].clone());
        let add = |id: &PublicIdentity| {
            WireChange::from_change(&Change::Add(id.clone(), MemberRole::Member))
        };
        let (roster, resolved) = roster.apply(0, &[add(&ids[2]), add(&ids[0])], 1).unwrap();
        assert_eq!(resolved.len(), 2);
        let keys: Vec<_> = roster
            .members()
            .iter()
            .map(|m| *m.identity().signing_key())
            .collect();
        assert!(keys.windows(2).all(|p| p[0] < p[1]));
        // ids[0] is now at index 0 and is a plain member.
        let err = roster.apply(
            0,
            &[WireChange::Remove {
                member: *ids[2].signing_key(),
            }],
            2,
        );
        assert_eq!(
            err.unwrap_err(),
            Error::NotAuthorized("membership change by a non-admin")
        );
        // A member may leave and may rotate.
        assert!(
            roster
                .apply(
                    0,
                    &[WireChange::Remove {
                        member: *ids[0].signing_key()
                    }],
                    2
                )
                .is_ok()
        );
        assert!(roster.apply(0, &[], 2).is_ok());
        // The last admin cannot demote itself.
        let demote = WireChange::SetRole {
            member: *ids[1].signing_key(),
            role: MemberRole::Member,
        };
        assert_eq!(
            roster.apply(1, &[demote], 2).unwrap_err(),
            Error::InvalidChange("the group would have no admin")
        );
        // Duplicate targets are rejected.
        let twice = [
            WireChange::Remove {
                member: *ids[2].signing_key(),
            },
            WireChange::SetRole {
                member: *ids[2].signing_key(),
                role: MemberRole::Admin,
            },
        ];
        assert_eq!(
            roster.apply(1, &twice, 2).unwrap_err(),
            Error::InvalidChange("a member is named by two changes")
        );
    }

    #[test]
    fn wire_roster_must_be_sorted() {
        let ids = identities(2);
        let wire = vec![
            WireMember {
                identity: ids[1].to_bytes(),
                role: MemberRole::Admin,
                since: Seniority { epoch: 0, index: 0 },
            },
            WireMember {
                identity: ids[0].to_bytes(),
                role: MemberRole::Member,
                since: Seniority { epoch: 1, index: 0 },
            },
        ];
        assert!(matches!(Roster::from_wire(&wire), Err(Error::Malformed(_))));
    }
}
