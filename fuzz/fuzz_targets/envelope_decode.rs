//! Fuzz target `envelope_decode`: see `sealwire_fuzz_harness::envelope_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sealwire_fuzz_harness::envelope_decode(data));
