//! Fuzz target `session_open`: see `sealwire_fuzz_harness::session_open`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sealwire_fuzz_harness::session_open(data));
