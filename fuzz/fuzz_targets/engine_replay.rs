//! cargo-fuzz target `engine_replay`: the body lives in `src/bodies.rs`, shared with the plain CI test
//! `gateway/tests/fuzz_corpus.rs`, so CI exercises the same code without libFuzzer.
#![no_main]

#[path = "../src/bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::engine_replay(data));
