//! The model, oracle and harness behind `group_properties.rs` (see its module doc for what is
//! checked). Layout:
//!
//! - this file: constants, the operations a run is made of, and [`play`];
//! - `world`: the model of the group's history (a tree of states, each with the member list
//!   the model computes itself) and of every identity's memberships, and the run itself;
//! - `commits`: making commits and predicting how each member receives them;
//! - `messages`: sealing, sender keys and envelopes, and their predicted outcomes;
//! - `delivery`: the links, and what the two clients keep, retry or drop;
//! - `checks`: the final checks (convergence, delivery with its exemptions, replays).
//!
//! Used by `group_properties.rs` alone.

mod checks;
mod commits;
mod delivery;
mod messages;
mod world;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use sealwire_core::{GroupConfig, Timestamp};

use world::World;

/// Identities in play; identity 0 creates the group.
const POOL: usize = 6;
/// The clock never moves: nothing expires.
pub(crate) const NOW: Timestamp = Timestamp::from_unix_secs(1_780_000_000);
/// Commits per run, below `max_past_epochs` (64 here) so that no epoch is ever pruned.
const MAX_COMMITS: usize = 48;
/// Calls to the library per run before delivery is declared non-terminating.
const STEP_LIMIT: usize = 200_000;
/// Spec 7.2 step 4: sender keys more than this many epochs ahead are refused (`EpochAhead`).
const MAX_PENDING_EPOCHS_AHEAD: u32 = 8;
/// Spec 7.3 step 1: pending sender keys kept per peer (the oldest is dropped).
const PENDING_PER_SENDER: usize = 4;

/// Retention bounds out of reach in a run (no epoch is pruned), everything else default.
pub(crate) fn config() -> GroupConfig {
    let mut config = GroupConfig::default();
    config.max_past_epochs = 64;
    config
}

/// How commits are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A committer first receives everything addressed to it: history is linear. Removed
    /// identities may be added back.
    Serialized,
    /// Anyone commits from whatever state it is in: conflicts. Each identity is added at most
    /// once.
    Concurrent,
}

/// What a client does with a refused item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    /// Keeps what the spec says to keep (and what arrives before the welcome), retries it
    /// after each success, and drops the rest.
    Documented,
    /// Keeps every refused item and retries it after each success.
    Retrying,
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// An admin (or, with `anyone`, any identity) adds a non-member.
    Add {
        by: Index,
        anyone: bool,
        target: Index,
        admin: bool,
    },
    /// An admin (or anyone) removes a member; a member removing itself leaves.
    Remove {
        by: Index,
        anyone: bool,
        target: Index,
    },
    /// An admin (or anyone) toggles a member's role.
    SetRole {
        by: Index,
        anyone: bool,
        target: Index,
    },
    /// Any identity rotates (a commit without changes).
    Rotate { by: Index },
    /// Any identity (member or not) seals a message of at least `len` bytes.
    Send { by: Index, len: usize },
    /// Delivers the next item of one non-empty link.
    Deliver(Index),
    /// Delivers everything on one non-empty link.
    DrainLink(Index),
    /// Delivers everything, in a random order.
    Flush,
    /// Every identity not entitled to a message tries to open it.
    Eavesdrop(Index),
}

fn op() -> impl Strategy<Value = Op> {
    let by = || (any::<Index>(), prop::bool::weighted(0.15));
    prop_oneof![
        3 => (by(), any::<Index>(), prop::bool::weighted(0.5))
            .prop_map(|((by, anyone), target, admin)| Op::Add { by, anyone, target, admin }),
        2 => (by(), any::<Index>())
            .prop_map(|((by, anyone), target)| Op::Remove { by, anyone, target }),
        1 => (by(), any::<Index>())
            .prop_map(|((by, anyone), target)| Op::SetRole { by, anyone, target }),
        2 => any::<Index>().prop_map(|by| Op::Rotate { by }),
        8 => (any::<Index>(), 0usize..80).prop_map(|(by, len)| Op::Send { by, len }),
        8 => any::<Index>().prop_map(Op::Deliver),
        1 => any::<Index>().prop_map(Op::DrainLink),
        1 => Just(Op::Flush),
        1 => any::<Index>().prop_map(Op::Eavesdrop),
    ]
}

/// The seed of the identities and of all randomness, and up to `max_ops - 1` operations.
pub(crate) fn script(max_ops: usize) -> impl Strategy<Value = (u64, Vec<Op>)> {
    (any::<u64>(), prop::collection::vec(op(), 1..max_ops))
}

/// `cases` proptest cases, unless `PROPTEST_CASES` says otherwise.
pub(crate) fn cases(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// One run: the operations, then everything delivered and the final checks. Set
/// `SEALWIRE_GROUP_STATS=1` to print how often each situation arose.
pub(crate) fn play(seed: u64, ops: &[Op], mode: Mode, client: Client) -> Result<(), TestCaseError> {
    let mut world = World::new(seed, mode, client);
    for op in ops {
        world.run(op)?;
    }
    world.finish()?;
    if std::env::var_os("SEALWIRE_GROUP_STATS").is_some() {
        eprintln!("{mode:?} {client:?} ops={} {:?}", ops.len(), world.stats);
    }
    Ok(())
}

fn fail<T>(message: String) -> Result<T, TestCaseError> {
    Err(TestCaseError::fail(message))
}
