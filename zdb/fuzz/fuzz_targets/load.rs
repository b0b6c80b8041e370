#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zdb::fuzzing::load(data));
