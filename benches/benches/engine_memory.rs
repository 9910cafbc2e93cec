//! Bytes of memory per SKU and per live reservation, measured with a counting allocator around
//! the system allocator (so the figure is what the engine asks for, not allocator slack).
//! Target (issue 2): <= 128 bytes per live reservation. Prints a small table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use oms_benches::*;
use oms_engine::{Event, Line, SkuId};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// Safety: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    const SKUS: u32 = 1_000_000;
    const RESERVATIONS: u64 = 1_000_000;

    let before = live();
    let mut partition = partition_with_catalog(0, 1, SKUS, BOTTOMLESS);
    let per_sku = (live() - before) as f64 / f64::from(SKUS);

    // Single-line reservations spread over the catalog; commands are built and dropped one by
    // one so only what the engine keeps is counted.
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut rng = SplitMix(1);
    let before = live();
    for i in 0..RESERVATIONS {
        let sku = SkuId(rng.below(u64::from(SKUS)) as u32);
        let envelope = reserve(i + 1, 0, vec![Line { sku, qty: 1 }], i, None);
        partition.apply(&envelope, &mut events).expect("reserve");
        events.clear();
    }
    let per_reservation = (live() - before) as f64 / RESERVATIONS as f64;

    let mut multi = partition_with_catalog(0, 1, 1000, BOTTOMLESS);
    let baseline = live();
    for i in 0..100_000u64 {
        let lines = (0..3).map(|k| Line { sku: SkuId(((i * 3 + k) % 1000) as u32), qty: 1 }).collect();
        multi.apply(&reserve(i + 1, 0, lines, i, None), &mut events).expect("reserve");
        events.clear();
    }
    let per_three_line = (live() - baseline) as f64 / 100_000.0;

    println!("engine memory (counting allocator, bytes requested from the allocator)");
    println!("| measure | bytes |");
    println!("|---|---|");
    println!("| per SKU (1,000,000 SKUs, one warehouse each) | {per_sku:.1} |");
    println!(
        "| per live single-line reservation (1,000,000 live, incl. expiry index and ledger) | {per_reservation:.1} |"
    );
    println!("| per live 3-line reservation (100,000 live) | {per_three_line:.1} |");
    let _ = partition.live_reservations();
}
