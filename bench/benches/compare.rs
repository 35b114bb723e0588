//! Criterion comparison of sealwire-core with the cryptographic floor and with its peers from
//! crates.io (vodozemac's Olm and Megolm), every per-message figure at a 256-byte plaintext, all
//! in one run so that the ratios are taken between figures measured under the same machine
//! conditions (the machine is noisy; absolute figures move between runs, ratios much less).
//!
//! Run with
//!
//! ```text
//! cargo bench -p sealwire-bench --features peers --bench compare
//! cargo run -p sealwire-bench --bin core_report          # writes target/bench/core.md
//! ```
//!
//! Without `--features peers` the binary still builds and runs the floor and sealwire ids (the
//! vodozemac code is compiled only with the feature, so the default workspace build never
//! compiles vodozemac). A filter runs a subset: `-- cmp/olm_`. Short smoke runs:
//! `-- --warm-up-time 0.5 --measurement-time 1`.
//!
//! Every benchmark uses seeded `ChaCha20Rng`s where the API takes a random generator (vodozemac
//! draws its own randomness from `rand::rng()`, a user-space ChaCha generator too). Setup work
//! (key generation, session establishment, sealing the messages an open/decrypt benchmark
//! consumes) is outside the timed region, and so is dropping the outputs of the heavier
//! benchmarks (`iter_batched` keeps them until the batch is timed).
//!
//! # Ids (group `cmp`)
//!
//! - `cmp/floor_seal`, `cmp/floor_open`: the cryptographic floor at sealwire's padded length of
//!   a 256-byte plaintext (`sealwire_core::padded_len(256)`): AES-256-GCM encrypt (decrypt) in
//!   place plus HMAC-SHA256 over ciphertext and GCM tag, with fixed keys; the AES-GCM cipher is
//!   keyed once, the HMAC per message. The same definition as `floor_seal/256` and
//!   `floor_open/256` in `bench/benches/core.rs` (both use `sealwire_bench::fixtures`).
//! - `cmp/sealwire_seal`, `cmp/sealwire_open`: one message on an established pairwise
//!   [`Session`](sealwire_core::Session) in steady state (initial message accepted, a reply and
//!   a turn exchanged; rotation by count disabled so that no measured message changes epoch).
//!   Input: plaintext bytes (seal) or envelope bytes (open); output: envelope bytes or plaintext.
//! - `cmp/olm_encrypt`, `cmp/olm_decrypt`: vodozemac `olm::Session::encrypt` / `decrypt` on a
//!   session pair in the same steady state (the pre-key message accepted, a reply and a turn
//!   exchanged, so every measured message is a normal message on an existing chain).
//! - `cmp/sealwire_group_seal`, `cmp/megolm_encrypt`: one group message, sealwire `Group::seal`
//!   in a 3-member group whose sender key is already handed out (so no sender-key message is
//!   drawn); vodozemac `megolm::GroupSession::encrypt`. Both sign every message (Ed25519).
//! - `cmp/sealwire_group_open`, `cmp/megolm_decrypt`: one group message at a time,
//!   `Group::open` of envelope bytes; `megolm::InboundGroupSession::decrypt`. Both verify the
//!   sender's Ed25519 signature on every message.
//! - `cmp/sealwire_setup`: bundle to first message opened, the same work as `setup/full` in
//!   `core.rs`: Alice verifies Bob's (decoded) prekey bundle, initiates, seals a 256-byte first
//!   message; Bob accepts it (creating his session, opening the message).
//! - `cmp/olm_setup`: Alice `create_outbound_session` from Bob's identity and one-time key,
//!   encrypts a 256-byte first (pre-key) message; Bob `create_inbound_session` from it, which
//!   decrypts it.
//! - `cmp/olm_setup_verified`: `cmp/olm_setup` plus the one Ed25519 verification a Matrix client
//!   does before it (the one-time key's signature by the device key, done by the client, not by
//!   vodozemac), to account for the signature sealwire's bundle verification includes.
//!
//! # Comparability and known asymmetries
//!
//! - *Fresh inputs.* Every open/decrypt consumes a fresh message: the untimed setup of
//!   `iter_batched` produces a batch of messages from the live sending session, in order, and
//!   only the receiver's open/decrypt of each, in the same order, is timed. So no measured
//!   message is a replay (sealwire rejects those, and Olm cannot decrypt a message twice: its
//!   key is gone), none is skipped (Olm keeps at most 40 skipped keys per chain), and the
//!   Megolm receiver advances its ratchet by one step per message, as in real use. (Megolm
//!   itself does not reject replays: `InboundGroupSession::decrypt` returns the message index
//!   and leaves replay detection to the application. The in-order fresh messages make that
//!   irrelevant here; a Matrix client's replay check, a map lookup, is not counted.)
//! - *Bytes versus structures.* sealwire's figures include encoding the envelope (seal) and
//!   parsing it (open), because its API takes and returns bytes. vodozemac's `encrypt` returns a
//!   message structure and `decrypt` takes one, so the peers' figures exclude
//!   `to_bytes`/`from_bytes` (and Matrix's base64). This favours the peers slightly.
//! - *Outputs.* Per-message outputs (envelopes, messages, plaintexts) are dropped inside the
//!   timed region, as a caller does, on both sides.
//! - *Ciphers.* Olm v1 and Megolm v1 (the versions in use) encrypt with AES-256-CBC and a MAC
//!   truncated to 8 bytes; sealwire with AES-256-GCM plus a full HMAC-SHA256 (key commitment).
//!   Olm's per-message chain step is one HMAC; Megolm's ratchet step is one to four HMACs.
//! - *Olm encrypt.* vodozemac's `Session::encrypt` derives its ratchet public key from the
//!   secret key (an X25519 fixed-base multiplication) for every message it encrypts, so
//!   `cmp/olm_encrypt` is an order of magnitude above `cmp/olm_decrypt`. That is the peer's
//!   implementation as published, and it is measured as is.
//! - *Setup.* Neither setup id decodes keys or bundles from bytes: sealwire starts from a
//!   decoded [`PrekeyBundle`](sealwire_core::PrekeyBundle) (its decoding, which verifies the
//!   identity binding, is `setup/bundle_decode` in `core.rs`), Olm from `Curve25519PublicKey`s.
//!   sealwire's setup verifies two Ed25519 signatures (the signed prekey, and on Bob's side the
//!   binding of the initiator identity that travels sealed in the first message) and runs an
//!   X3DH with four X25519 agreements on each side (one-time prekey present); vodozemac's Olm
//!   verifies no signature (its caller does: see `cmp/olm_setup_verified`) and runs a 3DH with
//!   three agreements on each side, the initiator's identity key travelling in clear in the
//!   pre-key message. Account and key generation is untimed on both sides.
//! - *Batch open.* The issue's group-open target is for a batch of messages arriving together
//!   (batch signature verification): `cmp/sealwire_group_open_batch` opens 64 messages with one
//!   `Group::open_batch` call and is reported per message; Megolm has no batch API, so it is
//!   compared with `cmp/megolm_decrypt` of one message. `cmp/sealwire_group_open` is the
//!   single-message figure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use sealwire_bench::fixtures::criterion_config;

// The crate root is this file, so its modules would be looked up next to it, in `benches/`,
// where cargo would also take them for bench targets of their own: they live in `compare/`.
#[path = "compare/floor.rs"]
mod floor;
#[cfg(feature = "peers")]
#[path = "compare/peers.rs"]
mod peers;
#[path = "compare/sealwire.rs"]
mod sealwire;

/// The benchmark group every comparison is registered in (`cmp`).
pub(crate) type Cmp<'a> = BenchmarkGroup<'a, WallTime>;

/// The plaintext size of every per-message comparison (the issue's target size).
pub(crate) const SIZE: usize = 256;

/// The plaintext of every per-message comparison and of the first message of setups.
pub(crate) fn plaintext() -> Vec<u8> {
    sealwire_bench::fixtures::plaintext(SIZE)
}

/// All ids in one criterion group, in pairs (ours next to the peer's), so that each pair is
/// measured close together in time.
fn compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("cmp");
    floor::floor_seal(&mut group);
    floor::floor_open(&mut group);
    sealwire::seal(&mut group);
    sealwire::open(&mut group);
    #[cfg(feature = "peers")]
    {
        peers::olm_encrypt(&mut group);
        peers::olm_decrypt(&mut group);
    }
    sealwire::group_seal(&mut group);
    #[cfg(feature = "peers")]
    peers::megolm_encrypt(&mut group);
    sealwire::group_open(&mut group);
    #[cfg(feature = "peers")]
    peers::megolm_decrypt(&mut group);
    sealwire::setup(&mut group);
    #[cfg(feature = "peers")]
    {
        peers::olm_setup(&mut group);
        peers::olm_setup_verified(&mut group);
    }
    // Last: it sets the group's element throughput.
    sealwire::group_open_batch(&mut group);
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = compare
}
criterion_main!(benches);
