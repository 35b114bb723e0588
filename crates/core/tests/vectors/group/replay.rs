//! The timeline replayed through the public API (`Group::create`, `commit`, `join`, `receive`,
//! `seal`, `open`), with the recorded random draws fed back through a scripted RNG, and every
//! returned byte, outcome, roster (roles and seniorities included) and state hash compared
//! with the file.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use sealwire_core::rand_core::{TryCryptoRng, TryRng};
use sealwire_core::{
    Change, ControlKind, ControlMessage, ControlOutcome, Error, Group, GroupConfig,
    IdentityKeyPair, PublicIdentity, Timestamp,
};
use serde_json::Value;

use super::file::{GroupVectors, names_of};
use super::model::members_of;
use super::{role_of, role_wire};
use crate::json::{bytes, list, num, text_of};

/// An RNG that hands out recorded bytes, and nothing more.
struct Script {
    bytes: Vec<u8>,
    pos: usize,
}

impl Script {
    fn new(bytes: Vec<u8>) -> Self {
        Script { bytes, pos: 0 }
    }
    fn next(&mut self, n: usize) -> &[u8] {
        let out = self
            .bytes
            .get(self.pos..self.pos + n)
            .expect("the API drew more than the vectors recorded");
        self.pos += n;
        out
    }
    fn finish(self) {
        assert_eq!(
            self.pos,
            self.bytes.len(),
            "the API drew less than the vectors recorded"
        );
    }
}

impl TryRng for Script {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.next(4).try_into().unwrap()))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.next(8).try_into().unwrap()))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.copy_from_slice(self.next(dst.len()));
        Ok(())
    }
}

impl TryCryptoRng for Script {}

/// The class of a public-API error, as the vectors name them.
pub(super) fn error_class(error: &Error) -> &'static str {
    match error {
        Error::Malformed(_) => "malformed",
        Error::UnsupportedVersion(_) => "unsupported_version",
        Error::UnsupportedSuite(_) => "unsupported_suite",
        Error::TooLarge { .. } => "too_large",
        Error::DecryptFailed => "decrypt_failed",
        Error::Replay => "replay",
        Error::StaleMessage => "stale_message",
        Error::UnknownEpoch { .. } => "unknown_epoch",
        Error::TooFarAhead { .. } => "too_far_ahead",
        Error::UnexpectedKind(_) => "unexpected_kind",
        Error::InvalidSignature(_) => "invalid_signature",
        Error::WrongGroup => "wrong_group",
        Error::EpochAhead { .. } => "epoch_ahead",
        Error::MissingSenderKey { .. } => "missing_sender_key",
        Error::NotAMember(_) => "not_a_member",
        Error::NotAuthorized(_) => "not_authorized",
        Error::InvalidChange(_) => "invalid_change",
        Error::UnknownParent { .. } => "unknown_parent",
        Error::SenderKeyConflict => "sender_key_conflict",
        Error::OtherBranch { .. } => "other_branch",
        _ => "other",
    }
}

fn outcome_name(outcome: &ControlOutcome) -> &'static str {
    match outcome {
        ControlOutcome::EpochStarted { .. } => "epoch_started",
        ControlOutcome::ConflictResolved { .. } => "conflict_resolved",
        ControlOutcome::LostConflict { .. } => "lost_conflict",
        ControlOutcome::SenderKeyAdded { .. } => "sender_key_added",
        ControlOutcome::SenderKeyPending { .. } => "sender_key_pending",
        ControlOutcome::Duplicate => "duplicate",
        _ => "other",
    }
}

/// The parties' groups, driven through the public API.
pub(super) struct Replay<'a> {
    v: &'a GroupVectors,
    pub(super) config: GroupConfig,
    identities: BTreeMap<String, IdentityKeyPair>,
    pub(super) groups: BTreeMap<String, Group>,
}

impl<'a> Replay<'a> {
    pub(super) fn new(v: &'a GroupVectors) -> Self {
        let identities = v
            .parties
            .iter()
            .map(|(name, (seed, secret, identity))| {
                // An identity draws its signing seed, then its agreement secret.
                let mut rng = Script::new([&seed[..], secret].concat());
                let pair = IdentityKeyPair::generate(&mut rng);
                rng.finish();
                assert_eq!(pair.public().to_bytes().to_vec(), *identity);
                (name.clone(), pair)
            })
            .collect();
        Replay {
            v,
            config: v.config(),
            identities,
            groups: BTreeMap::new(),
        }
    }

    pub(super) fn public(&self, name: &str) -> PublicIdentity {
        self.identities[name].public().clone()
    }

    fn name_of(&self, identity: &PublicIdentity) -> String {
        self.v.names[&identity.to_bytes().to_vec()].clone()
    }

    fn names(&self, identities: &[PublicIdentity]) -> Vec<String> {
        identities.iter().map(|i| self.name_of(i)).collect()
    }

    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.get_mut(name).unwrap()
    }

    /// Performs one timeline step and checks everything it returns.
    pub(super) fn step(&mut self, step: &Value) {
        let i = num(step, "step");
        let party = text_of(step, "party");
        let now = Timestamp::from_unix_secs(num(step, "time"));
        let v = self.v;
        let index = |key| num(step, key) as usize;
        let result: String = match text_of(step, "action") {
            "create" => {
                let mut rng = Script::new(bytes(step, "drawn"));
                let group =
                    Group::create(&self.identities[party], self.config.clone(), &mut rng, now)
                        .unwrap();
                rng.finish();
                assert_eq!(
                    group.id().as_bytes()[..],
                    v.group_id[..],
                    "step {i}: group id"
                );
                self.groups.insert(party.to_owned(), group);
                "ok".into()
            }
            "commit" => {
                let c = &v.list("commits")[index("commit")];
                let changes: Vec<Change> = list(c, "changes")
                    .iter()
                    .map(|ch| {
                        let member = self.public(text_of(ch, "member"));
                        match text_of(ch, "kind") {
                            "add" => Change::Add(member, role_of(role_wire(text_of(ch, "role")))),
                            "remove" => Change::Remove(member),
                            _ => Change::SetRole(member, role_of(role_wire(text_of(ch, "role")))),
                        }
                    })
                    .collect();
                let identity = &self.identities[party];
                let group = self.groups.get_mut(party).unwrap();
                let out = group.commit(identity, &changes, now).unwrap();
                assert_eq!(u64::from(out.epoch), num(c, "epoch"));
                assert_eq!(out.commit, bytes(c, "control"), "step {i}: commit");
                assert_eq!(
                    self.names(&out.commit_recipients),
                    names_of(c, "recipients")
                );
                assert_eq!(
                    out.welcome.map(hex::encode),
                    c["welcome"].as_str().map(String::from)
                );
                assert_eq!(
                    self.names(&out.welcome_recipients),
                    names_of(c, "welcome_recipients")
                );
                let parsed = ControlMessage::parse(&bytes(c, "control")).unwrap();
                assert_eq!(parsed.kind(), ControlKind::Commit);
                assert_eq!(u64::from(parsed.epoch()), num(c, "epoch"));
                "ok".into()
            }
            "join" => {
                let c = &v.list("commits")[index("commit")];
                let welcome = bytes(c, "welcome");
                let parsed = ControlMessage::parse(&welcome).unwrap();
                assert_eq!(parsed.kind(), ControlKind::Welcome);
                assert_eq!(parsed.group_id().as_bytes()[..], v.group_id[..]);
                let from = self.public(text_of(step, "from"));
                assert_eq!(text_of(step, "from"), text_of(c, "committer"));
                match Group::join(
                    &self.public(party),
                    &from,
                    &welcome,
                    self.config.clone(),
                    now,
                ) {
                    Ok(group) => {
                        self.groups.insert(party.to_owned(), group);
                        "ok".into()
                    }
                    Err(e) => error_class(&e).into(),
                }
            }
            "receive_commit" | "receive_sender_key" => {
                let (control, owner, kind) = if text_of(step, "action") == "receive_commit" {
                    let c = &v.list("commits")[index("commit")];
                    (
                        bytes(c, "control"),
                        text_of(c, "committer"),
                        ControlKind::Commit,
                    )
                } else {
                    let k = &v.list("sender_keys")[index("sender_key")];
                    assert!(names_of(k, "recipients").iter().any(|r| r == party));
                    (
                        bytes(k, "control"),
                        text_of(k, "sender"),
                        ControlKind::SenderKey,
                    )
                };
                assert_eq!(text_of(step, "from"), owner);
                assert_eq!(ControlMessage::parse(&control).unwrap().kind(), kind);
                let from = self.public(owner);
                match self.group(party).receive(&from, &control, now) {
                    Ok(outcome) => {
                        if let ControlOutcome::SenderKeyAdded { sender, .. } = &outcome {
                            assert_eq!(self.name_of(sender), owner);
                        }
                        outcome_name(&outcome).into()
                    }
                    Err(e) => error_class(&e).into(),
                }
            }
            "seal" => {
                let m = &v.list("messages")[index("message")];
                let drawn = step
                    .get("drawn")
                    .map_or_else(Vec::new, |_| bytes(step, "drawn"));
                let mut rng = Script::new(drawn);
                let sealed = self
                    .group(party)
                    .seal(&bytes(m, "plaintext"), &mut rng, now)
                    .unwrap();
                rng.finish();
                assert_eq!(sealed.envelope, bytes(m, "envelope"), "step {i}: envelope");
                match (sealed.sender_key, step.get("sender_key")) {
                    (None, None) => {}
                    (Some(key), Some(k)) => {
                        let k = &v.list("sender_keys")[k.as_u64().unwrap() as usize];
                        assert_eq!(key.message.expose_secret(), bytes(k, "control"));
                        assert_eq!(self.names(&key.recipients), names_of(k, "recipients"));
                    }
                    _ => panic!("step {i}: a sender key where none is recorded, or none"),
                }
                "ok".into()
            }
            "open" => {
                let m = &v.list("messages")[index("message")];
                match self.group(party).open(&bytes(m, "envelope"), now) {
                    Ok(opened) => {
                        let o = &step["opened"];
                        assert_eq!(opened.plaintext, bytes(m, "plaintext"), "step {i}");
                        assert_eq!(opened.plaintext, bytes(o, "plaintext"), "step {i}");
                        assert_eq!(self.name_of(&opened.sender), text_of(m, "sender"));
                        assert_eq!(self.name_of(&opened.sender), text_of(o, "sender"));
                        assert_eq!(u64::from(opened.epoch), num(m, "epoch"));
                        assert_eq!(u64::from(opened.epoch), num(o, "epoch"));
                        "ok".into()
                    }
                    Err(e) => {
                        assert!(step.get("opened").is_none());
                        error_class(&e).into()
                    }
                }
            }
            other => panic!("unknown action {other}"),
        };
        assert_eq!(result, text_of(step, "result"), "step {i}: result");
        let group = &self.groups[party];
        let epoch = u64::from(group.epoch());
        assert_eq!(epoch, num(step, "epoch_after"), "step {i}: epoch");
        assert_eq!(
            group.is_member(),
            step["member_after"] == true,
            "step {i}: member"
        );
        assert_eq!(
            group.state_hash().to_vec(),
            bytes(step, "state_hash_after"),
            "step {i}"
        );
        assert_eq!(group.state_hash().to_vec(), v.state_hash(epoch), "step {i}");
        // The roster, roles and seniorities included.
        let members: Vec<_> = group
            .members()
            .iter()
            .map(|m| {
                let since = m.since();
                (
                    m.identity().to_bytes().to_vec(),
                    m.role(),
                    (since.epoch, since.index),
                )
            })
            .collect();
        let expected: Vec<_> = members_of(v.epoch(epoch))
            .into_iter()
            .map(|m| (m.identity, role_of(m.role), m.since))
            .collect();
        assert_eq!(members, expected, "step {i}: members");
    }
}

pub(crate) fn group_vectors() {
    let v = GroupVectors::load();
    v.check_epochs();
    v.check_commits();
    v.check_sender_keys();
    v.check_messages();
    v.check_timeline_numbering();

    let timeline = v.list("timeline");
    let mut replay = Replay::new(&v);
    for step in timeline {
        replay.step(step);
    }

    // The scenario has the properties it is meant to exercise.
    let epochs = v.list("epochs");
    assert!(
        epochs.iter().any(|e| list(e, "members").len() == 3),
        "three members"
    );
    let kinds: BTreeSet<&str> = v
        .list("commits")
        .iter()
        .flat_map(|c| list(c, "changes").iter().map(|ch| text_of(ch, "kind")))
        .collect();
    assert!(
        kinds.contains("add") && kinds.contains("remove"),
        "an add and a remove"
    );
    let roles: BTreeSet<&str> = v
        .list("messages")
        .iter()
        .map(|m| text_of(m, "sender_role"))
        .collect();
    assert_eq!(roles.len(), 2, "messages from an admin and from a member");
    let mut opened: BTreeMap<(String, u64), Vec<u64>> = BTreeMap::new();
    for s in timeline
        .iter()
        .filter(|s| s["action"] == "open" && s["result"] == "ok")
    {
        let m = &v.list("messages")[num(s, "message") as usize];
        opened
            .entry((text_of(s, "party").to_owned(), num(m, "sender_key")))
            .or_default()
            .push(num(m, "counter"));
    }
    assert!(
        opened.values().any(|c| c.windows(2).any(|w| w[0] > w[1])),
        "out-of-order delivery"
    );
    let results: BTreeSet<&str> = timeline.iter().map(|s| text_of(s, "result")).collect();
    for result in [
        "replay",
        "not_a_member",
        "epoch_ahead",
        "unknown_epoch",
        "missing_sender_key",
    ] {
        assert!(results.contains(result), "a delivery with result {result}");
    }
    let removed_reads = timeline.iter().any(|s| {
        s["member_after"] == false && s["action"] == "open" && s["result"] == "not_a_member"
    });
    assert!(removed_reads, "the removed member cannot read what follows");
}
