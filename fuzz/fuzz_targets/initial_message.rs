//! Fuzz target `initial_message`: see `sealwire_fuzz_harness::initial_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sealwire_fuzz_harness::initial_message(data));
