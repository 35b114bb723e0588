//! Fuzz target `relay_connection`: see `sealwire_fuzz_harness::relay_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sealwire_fuzz_harness::relay_connection(data));
