//! sealwire's benchmark code (not published): the pieces shared by the relay load generator
//! (`src/bin/loadgen.rs`) and the bare forwarder baseline (`src/bin/bare_forwarder.rs`). The
//! criterion comparison with the floor and with vodozemac is `benches/compare.rs`. Everything is
//! run by `bench/run`, which writes `BENCHMARKS.md`.
