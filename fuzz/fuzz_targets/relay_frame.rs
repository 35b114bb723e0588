//! Fuzz target `relay_frame`: see `sealwire_fuzz_harness::relay_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sealwire_fuzz_harness::relay_frame(data));
