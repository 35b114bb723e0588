//! # sealwire-fuzz-harness
//!
//! The bodies of sealwire's fuzz targets. Each public function takes the fuzzer's bytes and
//! checks the invariants of one concern; the cargo-fuzz crate in `fuzz/` wraps each one in a
//! `fuzz_target!`, and `tests/corpus.rs` replays the committed seed corpora and regressions
//! through them on stable, so `cargo test` keeps them honest.
//!
//! | function | what it drives | what it checks |
//! |---|---|---|
//! | [`envelope_decode`] | the public parsers of pairwise and group envelopes and control messages | no panic; a byte string is never both a pairwise and a group envelope |
//! | [`session_open`] | [`Session::open`](sealwire_core::Session::open) on an established session | an error leaves the serialized session unchanged and a genuine message still opens; a success is exactly the effect of a genuine envelope |
//! | [`initial_message`] | [`Account::accept`](sealwire_core::Account::accept) | the same, for the responder's account (no prekey consumed on error) |
//! | [`group_control`] | [`Group::receive`](sealwire_core::Group::receive) and [`Group::join`](sealwire_core::Group::join) in a three-member group | the same, for the group state |
//! | [`relay_frame`] | `frame::decode` of client and server frames | whatever decodes re-encodes to the same bytes (the spec's canonical-decoding rule) |
//! | [`relay_connection`] | a real relay on 127.0.0.1 fed arbitrary WebSocket message sequences | every server message is a frame, the connection ends once closed, and an honest client can still send and receive |
//!
//! The fixtures (identities, sessions, groups, the relay) are built once, deterministically
//! from seeded ChaCha20 generators; [`seeds`] derives the committed seed corpora from them.
//!
//! The mutating targets (`session_open`, `initial_message`, `group_control`) read their first
//! byte as flags: with [`MUTATE`] set, the second byte picks a genuine message and the rest is
//! a mutation recipe applied to it (see [`mutate()`]), so that the fuzzer reaches the checks
//! behind the framing without having to forge a MAC; otherwise the rest is used as it is.

// A fuzz harness reports a broken invariant by panicking (libFuzzer records the input as a
// crash): panics, unwraps and expects are deliberate here, unlike in the library crates.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod frames;
mod group;
mod mutation;
mod pairwise;
mod relay;
pub mod seeds;

pub use frames::relay_frame;
pub use group::group_control;
pub use mutation::mutate;
pub use pairwise::{envelope_decode, initial_message, session_open};
pub use relay::relay_connection;

/// Flag in the first input byte of the mutating targets: the input is a genuine message index
/// followed by a mutation recipe, not the message itself.
pub const MUTATE: u8 = 0x80;

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and of the corpus
/// directories).
pub const TARGETS: &[&str] = &[
    "envelope_decode",
    "session_open",
    "initial_message",
    "group_control",
    "relay_frame",
    "relay_connection",
];

/// Runs the target named `target` on `data`.
///
/// # Panics
/// If the target's invariants do not hold for `data`, or if `target` is not in [`TARGETS`].
pub fn run(target: &str, data: &[u8]) {
    match target {
        "envelope_decode" => envelope_decode(data),
        "session_open" => session_open(data),
        "initial_message" => initial_message(data),
        "group_control" => group_control(data),
        "relay_frame" => relay_frame(data),
        "relay_connection" => relay_connection(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// Splits a mutating target's input: `Some((index, recipe))` in mutation mode, `None` for a
/// raw input (whose bytes are then `data[1..]`).
pub(crate) fn split_mutation(data: &[u8]) -> Option<(usize, &[u8])> {
    let flags = *data.first()?;
    if flags & MUTATE == 0 {
        return None;
    }
    let index = usize::from(data.get(1).copied().unwrap_or(0));
    Some((index, data.get(2..).unwrap_or(&[])))
}
