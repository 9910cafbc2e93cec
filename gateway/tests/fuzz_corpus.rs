//! The cargo-fuzz target bodies (`fuzz/src/bodies.rs`) run as a plain test, so CI exercises the
//! same decoders without cargo-fuzz or a nightly toolchain: every file of the committed corpus
//! (`fuzz/corpus/<target>/`), the freshly generated valid seeds, and a few thousand seeded
//! mutations of them (bit flips, byte sets, truncations, splices, random bytes) per target.
//! Any panic fails the test and prints the input (hex) and the target.
//!
//! `OMS_FUZZ_WRITE_SEEDS=1` (re)writes the generated seeds into `fuzz/corpus/<target>/seed-*`.
//! `OMS_FUZZ_ITERATIONS` overrides the mutations per target (default 3000), `OMS_FUZZ_TARGET`
//! runs one target only, `OMS_FUZZ_TRACE=1` prints each input (hex) before running it.

#[path = "../../fuzz/src/bodies.rs"]
mod bodies;

use std::path::{Path, PathBuf};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(corpus_dir(target)) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut input = if pool.is_empty() || rng.below(10) == 0 {
        (0..rng.below(512)).map(|_| rng.next() as u8).collect()
    } else {
        pool[rng.below(pool.len())].clone()
    };
    for _ in 0..1 + rng.below(4) {
        if input.is_empty() {
            input.push(rng.next() as u8);
        }
        let at = rng.below(input.len());
        match rng.below(6) {
            0 => input[at] ^= 1 << rng.below(8),
            1 => input[at] = [0, 0xFF, 0x7F, 0x80, 1][rng.below(5)],
            2 => input.truncate(at),
            3 => {
                let other = &pool[rng.below(pool.len().max(1)).min(pool.len().saturating_sub(1))];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    input.splice(at..at, other[from..].iter().copied().take(64));
                }
            }
            4 => {
                let end = (at + 4).min(input.len());
                input[at..end].copy_from_slice(&u32::MAX.to_le_bytes()[..end - at]);
            }
            _ => input.insert(at, rng.next() as u8),
        }
    }
    input
}

fn run(target: &str, body: fn(&[u8]), input: &[u8]) {
    if std::env::var_os("OMS_FUZZ_TRACE").is_some() {
        // Before the run: an input that aborts the process (e.g. out of memory) is still named.
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("{target} input {hex}");
    }
    if std::panic::catch_unwind(|| body(input)).is_err() {
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        panic!("fuzz target {target} panicked on input ({} bytes): {hex}", input.len());
    }
}

#[test]
fn fuzz_bodies_survive_corpus_seeds_and_mutations() {
    // Checks each fuzz body on the committed corpus, the generated seeds and N seeded mutations
    // per target: no panic anywhere (the bodies themselves assert round trips and invariants).
    if let Ok(hex) = std::env::var("OMS_FUZZ_INPUT") {
        // Reproduce one input: OMS_FUZZ_TARGET=<target> OMS_FUZZ_INPUT=<hex>.
        let input: Vec<u8> =
            (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
        let target = std::env::var("OMS_FUZZ_TARGET").expect("OMS_FUZZ_TARGET");
        let (_, body) = bodies::TARGETS.iter().find(|(t, _)| *t == target).expect("known target");
        if target == "engine_replay" && input.len() > 2 {
            eprintln!("{:?}", oms_engine::codec::decode_envelope(&input[2..]));
        }
        return run(&target, *body, &input);
    }
    let seeds = bodies::seeds();
    if std::env::var_os("OMS_FUZZ_WRITE_SEEDS").is_some() {
        for (i, (target, bytes)) in seeds.iter().enumerate() {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).expect("corpus dir");
            std::fs::write(dir.join(format!("seed-{i:03}")), bytes).expect("write seed");
        }
    }
    let iterations: usize = std::env::var("OMS_FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let mut total = 0;
    let only = std::env::var("OMS_FUZZ_TARGET").ok();
    for (target, body) in bodies::TARGETS {
        if only.as_deref().is_some_and(|t| t != target) {
            continue;
        }
        let mut pool = corpus(target);
        let committed = pool.len();
        pool.extend(seeds.iter().filter(|(t, _)| *t == target).map(|(_, b)| b.clone()));
        assert!(!pool.is_empty(), "no seeds for {target}");
        for input in &pool {
            run(target, body, input);
        }
        let mut rng = Rng(0xF022_0000 ^ target.len() as u64);
        for _ in 0..iterations {
            let input = mutate(&mut rng, &pool);
            run(target, body, &input);
        }
        total += pool.len() + iterations;
        eprintln!("{target}: {committed} corpus files, {} seeds, {iterations} mutations: ok", pool.len() - committed);
    }
    eprintln!("fuzz bodies: {total} inputs, no panic");
}
