//! `conversation.json`: every step of the conversation replayed on the model of both parties,
//! sending side (9.4, 9.6, 11.1) and receiving side (11.2).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::codec::{
    Header, check_public_header, contains, encode_header, open, parse_envelope, seal_envelope,
};
use crate::json::{b32, bytes, find, list, load, num, num32, text_of};
use crate::model::{Children, Config, OwnEpoch, Party, Sending, Session, Who, commit, receive};
use crate::primitives::{
    chain_step, derive_epoch, keys_of, message_keys, pad_len, x25519, x25519_public,
};

/// Everything the conversation file says, checked step by step.
pub(crate) struct Conversation {
    pub(crate) file: Value,
    pub(crate) session: Session,
    pub(crate) initiator: String,
    pub(crate) spk_secret: [u8; 32],
    pub(crate) setup_root: [u8; 32],
    pub(crate) base_key: [u8; 32],
    /// S and X of both identities, which no envelope may show.
    pub(crate) identity_keys: Vec<Vec<u8>>,
}

impl Conversation {
    pub(crate) fn load() -> Self {
        let file = load("conversation.json");
        let setup = load("setup.json");
        let case = find(list(&setup, "cases"), text_of(&file, "setup_case"));
        let c = &file["config"];
        // Spec section 14 defaults, with the two overrides README.md lists.
        let defaults = [
            ("rotate_after_messages", 3),
            ("rotate_after_secs", 86_400),
            ("max_forward_jump", 10),
            ("max_skipped_per_epoch", 1_000),
            ("max_skipped_total", 2_000),
            ("max_epoch_jump", 64),
            ("max_skipped_epochs", 16),
            ("max_receiving_epochs", 5),
            ("max_own_epochs", 32),
            ("grace_secs", 2_592_000),
        ];
        assert_eq!(
            c.as_object().unwrap().len(),
            defaults.len(),
            "config fields"
        );
        for (key, value) in defaults {
            assert_eq!(num(c, key), value, "config {key}");
        }
        let config = Config {
            rotate_after_messages: num32(c, "rotate_after_messages"),
            rotate_after_secs: num(c, "rotate_after_secs"),
            max_forward_jump: num32(c, "max_forward_jump"),
            max_epoch_jump: num32(c, "max_epoch_jump"),
            grace_secs: num(c, "grace_secs"),
        };
        assert_eq!(file["session_id"], case["session_id"]);
        assert_eq!(file["session_ad"], case["session_ad"]);
        assert_eq!(
            text_of(&file, "initiator"),
            text_of(&case["initiator"], "name")
        );
        assert_eq!(
            text_of(&file, "responder"),
            text_of(&case["responder"], "name")
        );
        let e0 = &file["epoch_0"];
        assert_eq!(text_of(e0, "owner"), text_of(&file, "responder"));
        assert_eq!(e0["ratchet_key"], case["signed_prekey"]["public"]);
        assert_eq!(e0["epoch_root"], case["setup_root"]);
        let first = &list(&file, "messages")[0];
        assert_eq!(first["envelope"], case["first_message"]["envelope"]);
        assert_eq!(first["time"], case["time"]);
        // Timeline steps are 10 seconds apart.
        let timeline = list(&file, "timeline");
        for (i, step) in timeline.iter().enumerate() {
            assert_eq!(num(step, "time"), num(&timeline[0], "time") + 10 * i as u64);
        }
        let env = bytes(first, "envelope");
        let setup_header = parse_envelope(&env).unwrap().header.setup;
        Conversation {
            session: Session {
                config,
                session_id: bytes(&file, "session_id").try_into().unwrap(),
                ad: b32(&file, "session_ad"),
                setup_header,
            },
            initiator: text_of(&file, "initiator").to_owned(),
            spk_secret: b32(&case["signed_prekey"], "secret"),
            setup_root: b32(case, "setup_root"),
            base_key: b32(&case["base_key"], "secret"),
            identity_keys: [&case["initiator"], &case["responder"]]
                .iter()
                .flat_map(|p| {
                    let id = bytes(p, "public_identity");
                    [id[..32].to_vec(), id[32..64].to_vec()]
                })
                .collect(),
            file,
        }
    }

    pub(crate) fn messages(&self) -> &Vec<Value> {
        list(&self.file, "messages")
    }

    pub(crate) fn timeline(&self) -> &Vec<Value> {
        list(&self.file, "timeline")
    }

    pub(crate) fn who(&self, name: &str) -> Who {
        if name == self.initiator {
            Who::Initiator
        } else {
            assert_eq!(name, text_of(&self.file, "responder"));
            Who::Responder
        }
    }

    /// Both parties after the first `steps` steps, every step checked on the way.
    pub(crate) fn run(&self, steps: usize) -> BTreeMap<Who, Party> {
        let spk_public = x25519_public(&self.spk_secret);
        let fresh = |who| Party {
            who,
            own: BTreeMap::new(),
            sending: None,
            latest: None,
            receiving: BTreeMap::new(),
            peer_roots: BTreeMap::new(),
            skipped: BTreeMap::new(),
            opened_any: false,
            delivered: Vec::new(),
        };
        let mut initiator = fresh(Who::Initiator);
        initiator.latest = Some((0, 1));
        initiator.peer_roots.insert(0, self.setup_root);
        let mut responder = fresh(Who::Responder);
        responder.own.insert(
            0,
            OwnEpoch {
                private: self.spk_secret,
                root: self.setup_root,
                children: Children {
                    next: 1,
                    seed: self.setup_root,
                    skipped: BTreeMap::new(),
                },
            },
        );
        let mut parties =
            BTreeMap::from([(Who::Initiator, initiator), (Who::Responder, responder)]);
        // Public ratchet keys and roots of every epoch, as the senders derived them.
        let mut epochs: BTreeMap<u32, ([u8; 32], [u8; 32])> =
            BTreeMap::from([(0, (spk_public, self.setup_root))]);
        let mut chains: BTreeMap<u32, ([u8; 32], u32)> = BTreeMap::new();
        let mut sealed = 0;
        for (index, step) in self.timeline()[..steps].iter().enumerate() {
            assert_eq!(num(step, "step") as usize, index);
            let time = num(step, "time");
            let who = self.who(text_of(step, "party"));
            let m = num(step, "message") as usize;
            let msg = &self.messages()[m];
            let party = parties.get_mut(&who).unwrap();
            if text_of(step, "action") == "seal" {
                assert_eq!(
                    m, sealed,
                    "step {index}: messages are numbered in sealing order"
                );
                sealed += 1;
                self.check_seal(party, msg, m, time, &mut epochs, &mut chains);
            } else {
                self.check_open(party, step, msg, m, time);
            }
        }
        parties
    }

    fn check_seal(
        &self,
        party: &mut Party,
        msg: &Value,
        m: usize,
        time: u64,
        epochs: &mut BTreeMap<u32, ([u8; 32], [u8; 32])>,
        chains: &mut BTreeMap<u32, ([u8; 32], u32)>,
    ) {
        let cfg = &self.session.config;
        assert_eq!(num(msg, "index") as usize, m);
        assert_eq!(num(msg, "time"), time, "m{m}: time");
        assert_eq!(self.who(text_of(msg, "sender")), party.who, "m{m}: sender");
        let (epoch, parent, counter) = (
            num32(msg, "epoch"),
            num32(msg, "parent"),
            num32(msg, "counter"),
        );
        let previous = (!msg["previous"].is_null()).then(|| {
            (
                num32(&msg["previous"], "epoch"),
                num32(&msg["previous"], "length"),
            )
        });
        let ratchet_key = b32(msg, "ratchet_key");
        // 9.6: when a new epoch starts; 9.4: its number.
        let new_epoch = match (party.sending, party.latest) {
            (None, _) => true,
            (Some(s), Some((latest, _))) => {
                latest != s.parent
                    || s.count >= cfg.rotate_after_messages
                    || time - s.started >= cfg.rotate_after_secs
            }
            (Some(_), None) => false,
        };
        assert_eq!(!msg["new_epoch"].is_null(), new_epoch, "m{m}: new epoch?");
        if new_epoch {
            let (p, next_child) = party.latest.expect("a parent to derive from");
            let own_last = party.own.keys().next_back().copied();
            let e = own_last.map_or(next_child, |l| next_child.max(l + 2));
            assert_eq!((epoch, parent, counter), (e, p, 0), "m{m}: epoch numbering");
            assert_eq!(
                previous,
                party.sending.map(|s| (s.epoch, s.count)),
                "m{m}: previous"
            );
            let ne = &msg["new_epoch"];
            let private = b32(ne, "ratchet_private");
            if e == 1 {
                assert_eq!(private, self.base_key, "epoch 1 uses the base key");
            }
            assert_eq!(x25519_public(&private), ratchet_key, "m{m}: ratchet key");
            let (parent_public, parent_root) = epochs[&p];
            // The sender's copy of the parent's root (derived when it received that epoch)
            // equals the parent owner's.
            assert_eq!(party.peer_roots[&p], parent_root, "m{m}: parent root");
            assert_eq!(b32(ne, "parent_ratchet_key"), parent_public);
            assert_eq!(b32(ne, "parent_root"), parent_root);
            let dh = x25519(&private, &parent_public).unwrap();
            assert_eq!(b32(ne, "dh"), dh, "m{m}: D");
            let d = derive_epoch(&parent_root, p, e, &dh);
            assert_eq!(b32(ne, "child_seed"), d.seed, "m{m}: child seed");
            assert_eq!(b32(ne, "child_salt"), d.salt, "m{m}: child salt");
            assert_eq!(b32(ne, "epoch_root"), d.root, "m{m}: epoch root");
            assert_eq!(b32(ne, "chain_key"), d.chain, "m{m}: chain key");
            epochs.insert(e, (ratchet_key, d.root));
            chains.insert(e, (d.chain, 0));
            let children = Children {
                next: e + 1,
                seed: d.root,
                skipped: BTreeMap::new(),
            };
            party.own.insert(
                e,
                OwnEpoch {
                    private,
                    root: d.root,
                    children,
                },
            );
            party.latest = Some((p, e + 2));
            party.sending = Some(Sending {
                epoch: e,
                parent: p,
                count: 0,
                started: time,
                previous,
            });
        }
        let sending = party.sending.as_mut().unwrap();
        assert_eq!(
            (epoch, parent, counter, previous),
            (
                sending.epoch,
                sending.parent,
                sending.count,
                sending.previous
            ),
            "m{m}: header position"
        );
        assert_eq!(party.own[&epoch].root, epochs[&epoch].1);
        sending.count += 1;
        // 9.5: the chain step and message keys.
        let (chain, n) = chains[&epoch];
        assert_eq!(n, counter);
        assert_eq!(b32(msg, "chain_key"), chain, "m{m}: chain key");
        let (mk, next) = chain_step(&chain);
        chains.insert(epoch, (next, n + 1));
        assert_eq!(b32(msg, "message_key"), mk, "m{m}: message key");
        let keys = message_keys(&mk);
        assert_eq!(keys_of(msg), keys, "m{m}: message keys");
        // 10.1: the header and envelope.
        let initial = party.who == Who::Initiator && !party.opened_any;
        assert_eq!(
            text_of(msg, "kind"),
            if initial { "initial" } else { "message" }
        );
        let envelope = bytes(msg, "envelope");
        let env = parse_envelope(&envelope).unwrap();
        let expected = Header {
            kind: u8::from(!initial),
            session_id: self.session.session_id,
            epoch,
            parent,
            counter,
            previous,
            ratchet_key,
            setup: if initial {
                self.session.setup_header.clone()
            } else {
                None
            },
        };
        assert_eq!(env.header, expected, "m{m}: header");
        assert_eq!(
            encode_header(&expected),
            bytes(msg, "header"),
            "m{m}: header bytes"
        );
        let plaintext = bytes(msg, "plaintext");
        assert_eq!(
            open(&env, &keys, &self.session.ad),
            Ok(plaintext.clone()),
            "m{m}"
        );
        assert_eq!(
            seal_envelope(env.header_bytes, &keys, &self.session.ad, &plaintext),
            envelope,
            "m{m}: seal"
        );
        assert_eq!(num(msg, "padded_length") as usize, pad_len(plaintext.len()));
        assert_eq!(env.ciphertext.len(), pad_len(plaintext.len()) + 16);
        check_public_header(&envelope);
        for key in &self.identity_keys {
            assert!(
                !contains(&envelope, key),
                "m{m}: an identity key is visible"
            );
        }
    }

    fn check_open(&self, party: &mut Party, step: &Value, msg: &Value, m: usize, time: u64) {
        let accept = party.who == Who::Responder && !party.opened_any;
        assert_eq!(
            text_of(step, "action"),
            if accept { "accept" } else { "open" }
        );
        assert_ne!(self.who(text_of(msg, "sender")), party.who);
        let envelope = bytes(msg, "envelope");
        match receive(&self.session, party, &envelope, time) {
            Ok((plaintext, change)) => {
                assert_eq!(text_of(step, "result"), "ok", "open m{m}");
                assert_eq!(plaintext, bytes(msg, "plaintext"), "open m{m}");
                assert_eq!(bytes(step, "plaintext"), plaintext);
                let header = parse_envelope(&envelope).unwrap().header;
                commit(&self.session, party, &header, change, time);
                party.delivered.push(m);
            }
            Err(class) => {
                assert_eq!(text_of(step, "result"), class, "open m{m}");
                assert!(step.get("plaintext").is_none());
            }
        }
        assert_eq!(
            num(step, "skipped_keys_after") as usize,
            party.skipped.len(),
            "after open m{m}"
        );
    }
}

pub(crate) fn conversation_vectors() {
    let conversation = Conversation::load();
    let timeline = conversation.timeline();
    let parties = conversation.run(timeline.len());
    let messages = conversation.messages();

    // The conversation has the properties it is meant to exercise.
    let senders: BTreeSet<&str> = messages.iter().map(|m| text_of(m, "sender")).collect();
    let epochs: BTreeSet<u64> = messages.iter().map(|m| num(m, "epoch")).collect();
    assert!(messages.len() >= 12 && senders.len() == 2 && epochs.len() >= 4);
    let seals = timeline.iter().filter(|s| s["action"] == "seal").count();
    assert_eq!(seals, messages.len(), "every message is sealed once");
    let opened: BTreeSet<usize> = parties.values().flat_map(|p| p.delivered.clone()).collect();
    assert_eq!(opened.len(), messages.len(), "every message is delivered");
    let rotations = messages.iter().filter(|m| {
        !m["new_epoch"].is_null() && !m["previous"].is_null() && {
            // The parent is unchanged: the new epoch is a sibling, not a turn.
            let previous = num(&m["previous"], "epoch");
            messages
                .iter()
                .any(|o| num(o, "epoch") == previous && o["parent"] == m["parent"])
        }
    });
    assert!(rotations.count() >= 2, "rotations while the peer is silent");
    let turns = messages.iter().filter(|m| {
        !m["new_epoch"].is_null()
            && messages
                .iter()
                .any(|o| o["sender"] != m["sender"] && num(o, "epoch") == num(m, "parent"))
            && num(m, "parent") != 0
    });
    assert!(turns.count() >= 2, "turns");
    let out_of_order = parties
        .values()
        .any(|p| p.delivered.windows(2).any(|w| w[0] > w[1]));
    assert!(out_of_order, "out-of-order delivery");
    let skipped_used = timeline.iter().any(|s| {
        let m = &messages[num(s, "message") as usize];
        s["action"] == "open"
            && s["result"] == "ok"
            && timeline.iter().any(|earlier| {
                num(earlier, "step") < num(s, "step")
                    && earlier["party"] == s["party"]
                    && earlier["result"] == "ok"
                    && messages[num(earlier, "message") as usize]["epoch"] == m["epoch"]
                    && num(&messages[num(earlier, "message") as usize], "counter")
                        > num(m, "counter")
            })
    });
    assert!(skipped_used, "a skipped key used later");
    assert!(timeline.iter().any(|s| s["result"] == "replay"), "a replay");
}
