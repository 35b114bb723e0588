//! A model of both parties of `conversation.json`: their state, and the receiving side of spec
//! 11.2 (processing order, epoch and chain derivation, skipped keys and salts, closing, replay).
//! The sending side (9.4, 9.6, 11.1) is checked step by step in `conversation.rs`.

use std::collections::BTreeMap;

use crate::codec::{Header, Setup, open, parse_envelope};
use crate::primitives::{chain_step, epoch_keys, message_keys, x25519};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Who {
    Initiator,
    Responder,
}

pub(crate) struct Config {
    pub(crate) rotate_after_messages: u32,
    pub(crate) rotate_after_secs: u64,
    pub(crate) max_forward_jump: u32,
    pub(crate) max_epoch_jump: u32,
    pub(crate) grace_secs: u64,
}

/// The child seed chain of one of a party's own epochs, receiving side.
#[derive(Clone)]
pub(crate) struct Children {
    pub(crate) next: u32,
    pub(crate) seed: [u8; 32],
    pub(crate) skipped: BTreeMap<u32, [u8; 32]>,
}

#[derive(Clone)]
pub(crate) struct OwnEpoch {
    pub(crate) private: [u8; 32],
    pub(crate) root: [u8; 32],
    pub(crate) children: Children,
}

#[derive(Clone)]
pub(crate) struct Receiving {
    pub(crate) parent: u32,
    pub(crate) ratchet_key: [u8; 32],
    pub(crate) chain: Option<[u8; 32]>,
    pub(crate) next: u32,
}

#[derive(Clone, Copy)]
pub(crate) struct Sending {
    pub(crate) epoch: u32,
    pub(crate) parent: u32,
    pub(crate) count: u32,
    pub(crate) started: u64,
    pub(crate) previous: Option<(u32, u32)>,
}

#[derive(Clone)]
pub(crate) struct Party {
    pub(crate) who: Who,
    pub(crate) own: BTreeMap<u32, OwnEpoch>,
    pub(crate) sending: Option<Sending>,
    /// Latest peer epoch: its number and the next child number of the sender's copy of its seed
    /// chain (9.4).
    pub(crate) latest: Option<(u32, u32)>,
    pub(crate) receiving: BTreeMap<u32, Receiving>,
    /// Root keys of the peer's epochs as this party derived them (the parents of its own).
    pub(crate) peer_roots: BTreeMap<u32, [u8; 32]>,
    pub(crate) skipped: BTreeMap<(u32, u32), ([u8; 32], u64)>,
    pub(crate) opened_any: bool,
    pub(crate) delivered: Vec<usize>,
}

impl Party {
    fn owns(&self, epoch: u32) -> bool {
        (epoch % 2 == 1) == (self.who == Who::Initiator)
    }
}

/// The change an accepted envelope commits (11.2 step 11).
pub(crate) enum Change {
    UseSkipped,
    Advance([u8; 32], u32, Vec<(u32, [u8; 32])>),
    NewEpoch {
        parent_children: Children,
        record: Receiving,
        root: [u8; 32],
        skipped: Vec<(u32, [u8; 32])>,
    },
}

/// Skipped keys `(counter, MK)`, the message key and the next chain key.
pub(crate) type Walked = (Vec<(u32, [u8; 32])>, [u8; 32], [u8; 32]);

/// Steps a chain from counter `from` to `to`: the skipped keys, `MK_to` and the next chain key.
pub(crate) fn walk(chain: [u8; 32], from: u32, to: u32) -> Walked {
    let mut chain = chain;
    let mut skipped = Vec::new();
    for n in from..to {
        let (mk, next) = chain_step(&chain);
        skipped.push((n, mk));
        chain = next;
    }
    let (mk, next) = chain_step(&chain);
    (skipped, mk, next)
}

pub(crate) struct Session {
    pub(crate) config: Config,
    pub(crate) session_id: [u8; 16],
    pub(crate) ad: [u8; 32],
    pub(crate) setup_header: Option<Setup>,
}

/// Spec 11.2 on the model: the plaintext, or the error class, and the change to commit.
pub(crate) fn receive(
    s: &Session,
    party: &Party,
    envelope: &[u8],
    now: u64,
) -> Result<(Vec<u8>, Change), &'static str> {
    let env = parse_envelope(envelope)?;
    let h = &env.header;
    if h.session_id != s.session_id {
        return Err("wrong_session");
    }
    if h.kind == 0 {
        if party.who == Who::Initiator {
            return Err("unexpected_kind");
        }
        if h.setup != s.setup_header {
            return Err("decrypt_failed");
        }
    }
    let (e, n, cfg) = (h.epoch, h.counter, &s.config);
    if e == 0 || party.owns(e) {
        return Err("unknown_epoch");
    }
    let (message_key, change) = if let Some(r) = party.receiving.get(&e) {
        if r.parent != h.parent || r.ratchet_key != h.ratchet_key {
            return Err("decrypt_failed");
        }
        if n < r.next {
            match party.skipped.get(&(e, n)) {
                Some((_, stored)) if now - stored >= cfg.grace_secs => return Err("stale_message"),
                Some((key, _)) => (*key, Change::UseSkipped),
                None => return Err("replay"),
            }
        } else {
            let chain = r.chain.ok_or("stale_message")?;
            if n - r.next > cfg.max_forward_jump {
                return Err("too_far_ahead");
            }
            let (skipped, mk, next) = walk(chain, r.next, n);
            (mk, Change::Advance(next, n + 1, skipped))
        }
    } else {
        let parent = party.own.get(&h.parent).ok_or("unknown_epoch")?;
        if e <= h.parent {
            return Err("unknown_epoch");
        }
        let mut children = parent.children.clone();
        let salt = if e >= children.next {
            if (e - children.next) / 2 > cfg.max_epoch_jump {
                return Err("too_far_ahead");
            }
            let mut seed = children.seed;
            for skipped in (children.next..e).step_by(2) {
                let (salt, next) = chain_step(&seed);
                children.skipped.insert(skipped, salt);
                seed = next;
            }
            let (salt, next) = chain_step(&seed);
            (children.next, children.seed) = (e + 2, next);
            salt
        } else {
            // Skipped salts carry no timestamps in this model: the conversation stays within
            // the grace period.
            children.skipped.remove(&e).ok_or("stale_message")?
        };
        if n > cfg.max_forward_jump {
            return Err("too_far_ahead");
        }
        let dh = x25519(&parent.private, &h.ratchet_key).ok_or("decrypt_failed")?;
        let (root, chain) = epoch_keys(&salt, h.parent, e, &dh);
        let (skipped, mk, next) = walk(chain, 0, n);
        let record = Receiving {
            parent: h.parent,
            ratchet_key: h.ratchet_key,
            chain: Some(next),
            next: n + 1,
        };
        let change = Change::NewEpoch {
            parent_children: children,
            record,
            root,
            skipped,
        };
        (mk, change)
    };
    let plaintext = open(&env, &message_keys(&message_key), &s.ad)?;
    Ok((plaintext, change))
}

/// 11.2 step 11.
pub(crate) fn commit(s: &Session, party: &mut Party, header: &Header, change: Change, now: u64) {
    let e = header.epoch;
    match change {
        Change::UseSkipped => {
            party.skipped.remove(&(e, header.counter));
        }
        Change::Advance(chain, next, skipped) => {
            let r = party.receiving.get_mut(&e).unwrap();
            (r.chain, r.next) = (Some(chain), next);
            party
                .skipped
                .extend(skipped.into_iter().map(|(n, k)| ((e, n), (k, now))));
        }
        Change::NewEpoch {
            parent_children,
            record,
            root,
            skipped,
        } => {
            party.own.get_mut(&header.parent).unwrap().children = parent_children;
            party.receiving.insert(e, record);
            party.peer_roots.insert(e, root);
            party
                .skipped
                .extend(skipped.into_iter().map(|(n, k)| ((e, n), (k, now))));
            if party.latest.is_none_or(|(latest, _)| latest < e) {
                party.latest = Some((e, e + 1));
            }
        }
    }
    if let Some((q, len)) = header.previous
        && let Some(r) = party.receiving.get_mut(&q)
        && let Some(chain) = r.chain.take()
    {
        let end = len.min(r.next + s.config.max_forward_jump);
        if end > r.next {
            let (mut skipped, last, _) = walk(chain, r.next, end - 1);
            skipped.push((end - 1, last));
            party
                .skipped
                .extend(skipped.into_iter().map(|(n, k)| ((q, n), (k, now))));
            r.next = end;
        }
    }
    party.opened_any = true;
}
