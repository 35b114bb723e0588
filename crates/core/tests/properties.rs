//! Property tests of whole conversations through the public API (spec sections 11, 12, 13):
//! random two-party conversations (sends both ways, loss, reordering, duplication, clock
//! advance, per-party clock skew, small `rotate_after_messages`, state restored from
//! `to_bytes()` at random points): every delivered envelope opens exactly once with the right
//! plaintext, every duplicate is rejected, nothing panics, a failed open changes nothing, and
//! the parties can still talk at the end. Tampered envelopes and hostile input to the decoders
//! are in `properties_integrity.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod security_support;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rand_chacha::ChaCha20Rng;
use sealwire_core::{
    Account, EnvelopeHeader, EnvelopeKind, Error, IdentityKeyPair, PublicIdentity, Session,
    SessionConfig, Timestamp,
};
use security_support::{
    account_state, at, config, new_account, roomy_config, set_account_session_config, state, text,
    verified_bundle,
};

// ---------------------------------------------------------------------------------------------
// Conversations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// Seal a message of `len` bytes (Alice or Bob; Bob only once he has a session).
    Send { alice: bool, len: usize },
    /// Deliver one in-flight envelope (any of them: reordering).
    Deliver(Index),
    /// Lose one in-flight envelope.
    Drop(Index),
    /// Deliver again an envelope that was already opened.
    Duplicate(Index),
    /// Advance the shared clock.
    Advance(u64),
    /// Replace a party's session by the one restored from its serialized state.
    Restore { alice: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), prop_oneof![4 => 0usize..48, 1 => 0usize..1_500])
            .prop_map(|(alice, len)| Op::Send { alice, len }),
        6 => any::<Index>().prop_map(Op::Deliver),
        1 => any::<Index>().prop_map(Op::Drop),
        1 => any::<Index>().prop_map(Op::Duplicate),
        1 => prop_oneof![0u64..120, 0u64..200_000].prop_map(Op::Advance),
        1 => any::<bool>().prop_map(|alice| Op::Restore { alice }),
    ]
}

#[derive(Clone)]
struct Msg {
    to_bob: bool,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
}

/// How strictly a first delivery is judged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Oracle {
    /// Retention bounds too large to be reached: every first delivery must open.
    Strict,
    /// Default bounds: a first delivery may be refused (a bound discarded its key or parent,
    /// which the spec allows), but never with a wrong plaintext or a state change.
    Safety,
}

struct World {
    rng: ChaCha20Rng,
    oracle: Oracle,
    alice_public: PublicIdentity,
    alice: Session,
    account: Account,
    bob: Option<Session>,
    in_flight: Vec<Msg>,
    delivered: Vec<Msg>,
    sent: usize,
    clock: u64,
    skew_alice: u64,
    skew_bob: u64,
}

impl World {
    fn new(
        seed: u64,
        oracle: Oracle,
        config: SessionConfig,
        one_time: bool,
        skews: (u64, u64),
    ) -> World {
        let mut rng = security_support::rng(seed);
        let mut account = new_account(&mut rng, at(0));
        set_account_session_config(&mut account, config.clone());
        let bundle = verified_bundle(&mut account, one_time, &mut rng, at(0));
        let identity = IdentityKeyPair::generate(&mut rng);
        let alice = Session::initiate(&identity, &bundle, config, &mut rng, at(skews.0)).unwrap();
        World {
            rng,
            oracle,
            alice_public: identity.public().clone(),
            alice,
            account,
            bob: None,
            in_flight: Vec::new(),
            delivered: Vec::new(),
            sent: 0,
            clock: 0,
            skew_alice: skews.0,
            skew_bob: skews.1,
        }
    }

    fn now(&self, alice: bool) -> Timestamp {
        at(self.clock
            + if alice {
                self.skew_alice
            } else {
                self.skew_bob
            })
    }

    fn send(&mut self, alice: bool, len: usize) -> Result<(), TestCaseError> {
        if !alice && self.bob.is_none() {
            return Ok(());
        }
        let now = self.now(alice);
        let plaintext = text(if alice { "alice" } else { "bob" }, self.sent, len);
        self.sent += 1;
        let session = if alice {
            &mut self.alice
        } else {
            self.bob.as_mut().unwrap()
        };
        let kind = session.next_envelope_kind();
        let bytes = session.seal(&plaintext, &mut self.rng, now).unwrap();
        let header = EnvelopeHeader::parse(&bytes).unwrap();
        prop_assert_eq!(header.kind(), kind);
        prop_assert_eq!(header.session_id(), session.session_id());
        prop_assert_eq!(Some(header.epoch()), session.sending_epoch());
        self.in_flight.push(Msg {
            to_bob: alice,
            bytes,
            plaintext,
        });
        Ok(())
    }

    fn deliver(&mut self, msg: Msg) -> Result<bool, TestCaseError> {
        let now = self.now(!msg.to_bob);
        if msg.to_bob && self.bob.is_none() {
            prop_assert_eq!(
                EnvelopeHeader::parse(&msg.bytes).unwrap().kind(),
                EnvelopeKind::Initial
            );
            let before = account_state(&self.account);
            return match self.account.accept(&msg.bytes, now) {
                Ok(accepted) => {
                    prop_assert_eq!(&accepted.plaintext, &msg.plaintext);
                    prop_assert_eq!(&accepted.peer, &self.alice_public);
                    prop_assert_eq!(accepted.session.session_id(), self.alice.session_id());
                    self.bob = Some(accepted.session);
                    self.delivered.push(msg);
                    Ok(true)
                }
                Err(err) => {
                    prop_assert!(
                        self.oracle == Oracle::Safety,
                        "first initial envelope refused: {:?}",
                        err
                    );
                    prop_assert_eq!(account_state(&self.account), before);
                    Ok(false)
                }
            };
        }
        let oracle = self.oracle;
        let session = self.receiver(msg.to_bob);
        let before = state(session);
        match session.open(&msg.bytes, now) {
            Ok(plaintext) => {
                prop_assert_eq!(&plaintext, &msg.plaintext);
                self.delivered.push(msg);
                Ok(true)
            }
            Err(err) => {
                prop_assert!(
                    oracle == Oracle::Safety,
                    "first delivery refused: {:?} (epoch, counter) = {:?}",
                    err,
                    security_support::epoch_of(&msg.bytes)
                );
                prop_assert!(
                    matches!(
                        err,
                        Error::UnknownEpoch { .. }
                            | Error::StaleMessage
                            | Error::TooFarAhead { .. }
                    ),
                    "unexpected refusal of a genuine envelope: {:?}",
                    err
                );
                prop_assert_eq!(state(session), before, "failed open changed the session");
                Ok(false)
            }
        }
    }

    fn duplicate(&mut self, msg: &Msg) -> Result<(), TestCaseError> {
        let now = self.now(!msg.to_bob);
        let oracle = self.oracle;
        let session = self.receiver(msg.to_bob);
        let before = state(session);
        let result = session.open(&msg.bytes, now);
        let refused = match &result {
            Err(Error::Replay | Error::StaleMessage) => true,
            // With default bounds the epoch of an old duplicate may be forgotten altogether.
            Err(Error::UnknownEpoch { .. }) => oracle == Oracle::Safety,
            _ => false,
        };
        prop_assert!(refused, "duplicate not refused as a replay: {:?}", result);
        prop_assert_eq!(
            state(session),
            before,
            "refused duplicate changed the session"
        );
        if msg.to_bob && EnvelopeHeader::parse(&msg.bytes).unwrap().kind() == EnvelopeKind::Initial
        {
            // Misrouted to the account, a repeated setup is a replay.
            let before = account_state(&self.account);
            prop_assert_eq!(
                self.account.accept(&msg.bytes, now).map(|_| ()),
                Err(Error::Replay)
            );
            prop_assert_eq!(account_state(&self.account), before);
        }
        Ok(())
    }

    fn receiver(&mut self, to_bob: bool) -> &mut Session {
        if to_bob {
            self.bob.as_mut().unwrap()
        } else {
            &mut self.alice
        }
    }

    fn restore(&mut self, alice: bool) -> Result<(), TestCaseError> {
        let session = if alice {
            &mut self.alice
        } else {
            match self.bob.as_mut() {
                Some(bob) => bob,
                None => return Ok(()),
            }
        };
        let bytes = state(session);
        let restored = Session::from_bytes(&bytes).unwrap();
        prop_assert_eq!(state(&restored), bytes);
        *session = restored;
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Send { alice, len } => self.send(*alice, *len)?,
            Op::Deliver(index) if !self.in_flight.is_empty() => {
                let msg = self.in_flight.remove(index.index(self.in_flight.len()));
                self.deliver(msg)?;
            }
            Op::Drop(index) if !self.in_flight.is_empty() => {
                self.in_flight.remove(index.index(self.in_flight.len()));
            }
            Op::Duplicate(index) if !self.delivered.is_empty() => {
                let msg = self.delivered[index.index(self.delivered.len())].clone();
                self.duplicate(&msg)?;
            }
            Op::Advance(secs) => self.clock += secs,
            Op::Restore { alice } => self.restore(*alice)?,
            _ => {}
        }
        Ok(())
    }

    /// One message each way, in the given order; true if both opened.
    fn exchange(&mut self, alice_first: bool) -> Result<bool, TestCaseError> {
        let mut ok = true;
        for alice in [alice_first, !alice_first] {
            self.send(alice, 20)?;
            let msg = self.in_flight.pop().unwrap();
            ok &= self.deliver(msg)?;
        }
        Ok(ok)
    }

    fn finish(&mut self, flush_order: &[Index]) -> Result<(), TestCaseError> {
        if self.bob.is_none() {
            // Every initial envelope so far was lost or is still in flight: a new one sets up.
            self.send(true, 10)?;
            let msg = self.in_flight.pop().unwrap();
            prop_assert!(self.deliver(msg)?, "setup failed");
        }
        // Both can talk while old envelopes are still in flight ...
        let talked = self.exchange(true)? & self.exchange(false)?;
        if self.oracle == Oracle::Strict {
            prop_assert!(talked, "final exchange failed");
        }
        // ... the envelopes still in flight open afterwards, in any order ...
        for index in flush_order {
            if self.in_flight.is_empty() {
                break;
            }
            let msg = self.in_flight.remove(index.index(self.in_flight.len()));
            self.deliver(msg)?;
        }
        while let Some(msg) = self.in_flight.pop() {
            self.deliver(msg)?;
        }
        // ... every envelope ever opened is refused from now on, by the live sessions and by
        // sessions restored from their current state (forward secrecy of used keys) ...
        self.restore(true)?;
        self.restore(false)?;
        for msg in self.delivered.clone() {
            self.duplicate(&msg)?;
        }
        // ... and the conversation goes on.
        if self.oracle == Oracle::Strict {
            prop_assert!(self.exchange(true)?, "exchange after flush failed");
        }
        Ok(())
    }
}

/// One random conversation: the setup, the operations, and the order in which the envelopes
/// still in flight at the end are delivered.
#[derive(Debug, Clone)]
struct Script {
    seed: u64,
    rotate: u32,
    one_time: bool,
    skews: (u64, u64),
    ops: Vec<Op>,
    flush: Vec<Index>,
}

/// Rotation after 1 to 6 messages, with or without a one-time prekey, clock skews up to an
/// hour, up to 89 operations.
fn script() -> impl Strategy<Value = Script> {
    (
        any::<u64>(),
        1u32..=6,
        any::<bool>(),
        (0u64..3_600, 0u64..3_600),
        prop::collection::vec(op(), 1..90),
        prop::collection::vec(any::<Index>(), 0..40),
    )
        .prop_map(|(seed, rotate, one_time, skews, ops, flush)| Script {
            seed,
            rotate,
            one_time,
            skews,
            ops,
            flush,
        })
}

impl Script {
    /// Runs every operation, then [`World::finish`], judged by `oracle`.
    fn play(&self, oracle: Oracle, config: SessionConfig) -> Result<(), TestCaseError> {
        let mut world = World::new(self.seed, oracle, config, self.one_time, self.skews);
        for op in &self.ops {
            world.run(op)?;
        }
        world.finish(&self.flush)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Retention bounds (own epochs, receiving epochs, skipped epochs, epoch jump, grace) set
    /// out of reach, default skipped-key bounds, rotation after 1 to 6 messages: whatever the
    /// interleaving, loss, reordering and duplication, every envelope opens exactly once with
    /// its plaintext, and the parties can always talk.
    #[test]
    fn random_conversations_open_every_envelope_exactly_once(script in script()) {
        script.play(Oracle::Strict, roomy_config(script.rotate))?;
    }

    /// The same with the default bounds (and small rotation counts, which reach them quickly):
    /// a genuine envelope may be refused once a bound has discarded its key or its parent
    /// epoch (spec 12.2, 13 "Forward secrecy has a window", "Lost epochs beyond bounds"), but
    /// only with `UnknownEpoch`, `StaleMessage` or `TooFarAhead`, never with a wrong plaintext,
    /// never twice, never with a state change. Liveness under default bounds is not asserted
    /// here: see `bounds_epochs.rs::crossing_rotations_beyond_max_own_epochs_do_not_deadlock`.
    #[test]
    fn random_conversations_with_default_bounds_are_safe(script in script()) {
        script.play(Oracle::Safety, config(|c| c.rotate_after_messages = script.rotate))?;
    }
}
