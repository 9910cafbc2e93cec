//! Quick profiling target: single-line reservations on one hot SKU (run under `perf record`).
use std::time::Instant;

use oms_benches::*;
use oms_engine::{Line, SkuId};

fn main() {
    let mut p = partition_with_catalog(0, 1, 1, BOTTOMLESS);
    let mut events = Vec::new();
    let n = 2_000_000u64;
    let cmds: Vec<_> = (0..n).map(|i| reserve(i + 1, 0, vec![Line { sku: SkuId(0), qty: 1 }], i, None)).collect();
    let t = Instant::now();
    for c in &cmds {
        let _ = p.apply(c, &mut events);
        events.clear();
    }
    println!("{:.0} ns per single-line reserve", t.elapsed().as_nanos() as f64 / n as f64);
}
