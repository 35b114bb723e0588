//! sealwire's benchmark code (not published): the pieces shared by the relay load generator
//! (`src/bin/loadgen.rs`) and the bare forwarder baseline (`src/bin/bare_forwarder.rs`), and the
//! reading of criterion's results for the report (`src/bin/core_report.rs`), and the fixtures of
//! the criterion benchmarks. The criterion benchmarks of the core are `benches/core.rs` and
//! `benches/group.rs`; the comparison with the floor and with vodozemac is `benches/compare.rs`.
//! Everything is run by `bench/run`, which writes `BENCHMARKS.md`.
//!
//! | module | what |
//! |---|---|
//! | [`stamp`] | the 256-byte payload (sender, sequence number, send time) and message ids |
//! | [`accounting`] | loss and duplicate accounting by sequence numbers |
//! | [`pacing`] | open-loop schedules (latency from the scheduled send time) |
//! | [`bare`] | the bare forwarder's wire format |
//! | [`conn`] | relay clients (the real `sealwire-transport` client) and bare clients, receivers |
//! | [`server`] | the server under test as a pinned child process, its RSS |
//! | [`scenario`] | traffic (1:1 ring, fan-out; closed or open loop) and idle connections |
//! | [`report`] | results as JSON and Markdown, with the targets |
//! | [`criterion_read`] | criterion's estimates, for the core report |
//! | [`fixtures`] | the criterion benchmarks' sessions, groups, floor and settings |
//!
//! `bench/README.md` explains how to run the load generator and its method.

pub mod accounting;
pub mod bare;
pub mod conn;
pub mod criterion_read;
pub mod fixtures;
pub mod pacing;
pub mod report;
pub mod scenario;
pub mod server;
pub mod stamp;

/// The error type of the load generator's fallible steps.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
