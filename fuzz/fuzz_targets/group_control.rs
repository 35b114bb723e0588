//! Fuzz target `group_control`: see `sealwire_fuzz_harness::group_control`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sealwire_fuzz_harness::group_control(data));
