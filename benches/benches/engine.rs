//! In-process engine benchmarks (one partition on one core unless stated). Each timed loop applies
//! pre-built commands to a prepared partition, so the figures are the state machine's own cost.
//! Targets (issue 2): >= 5,000,000 single-line reservations/s on one core, >= 50,000,000 sold-out
//! rejects/s; figures and method in docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oms_benches::*;
use oms_engine::fastpath::SoldOutBoard;
use oms_engine::{CampaignId, Command, Envelope, Event, Line, SkuId};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Operations per timed iteration: large enough that a fresh catalog's warm-up (first touches,
/// index growth) does not dominate when criterion picks few iterations.
const BATCH: u64 = 10_000;

/// Apply `commands` to `partition` and return the time it took (excluding construction).
fn time_apply(partition: &mut oms_engine::Partition, commands: &[Envelope]) -> Duration {
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let start = Instant::now();
    for envelope in commands {
        let _ = partition.apply(envelope, &mut events);
        events.clear();
    }
    start.elapsed()
}

fn single_line_hot_sku(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("single_line_hot_sku", |b| {
        b.iter_custom(|iters| {
            let mut partition = partition_with_catalog(0, 1, 1, BOTTOMLESS);
            let commands: Vec<Envelope> =
                (0..iters * BATCH).map(|i| reserve(i + 1, 0, vec![Line { sku: SkuId(0), qty: 1 }], i, None)).collect();
            time_apply(&mut partition, &commands)
        })
    });
    group.finish();
}

fn reserve_confirm_uniform_catalog(c: &mut Criterion) {
    const SKUS: u32 = 1_000_000;
    let base = partition_with_catalog(0, 1, SKUS, BOTTOMLESS);
    let mut group = c.benchmark_group("reserve_confirm");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.bench_function("uniform_1m_skus", |b| {
        b.iter_custom(|iters| {
            let mut partition = base.clone();
            let mut rng = SplitMix(iters);
            let mut commands = Vec::with_capacity((iters * BATCH) as usize * 2);
            for i in 0..iters * BATCH {
                let sku = SkuId(rng.below(u64::from(SKUS)) as u32);
                let envelope = reserve(i + 1, 0, vec![Line { sku, qty: 1 }], i, None);
                let id = match &envelope.command {
                    Command::Reserve(r) => r.id,
                    _ => unreachable!(),
                };
                commands.push(envelope);
                commands.push(at(3, Command::Confirm { id }));
            }
            time_apply(&mut partition, &commands)
        })
    });
    group.finish();
}

fn three_line_orders_across_partitions(c: &mut Criterion) {
    const SKUS: u32 = 100_000;
    let base = sharded_with_catalog(2, SKUS, BOTTOMLESS);
    let mut group = c.benchmark_group("reserve");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.bench_function("three_lines_two_partitions", |b| {
        b.iter_custom(|iters| {
            let mut engine = base.clone();
            let mut rng = SplitMix(iters ^ 7);
            let commands: Vec<Envelope> = (0..iters * BATCH)
                .map(|i| {
                    // Three distinct SKUs; consecutive ids live in different partitions.
                    let first = rng.below(u64::from(SKUS - 3)) as u32;
                    let lines = (0..3).map(|k| Line { sku: SkuId(first + k), qty: 1 }).collect();
                    reserve_multi(i + 1, lines)
                })
                .collect();
            let mut events = Vec::with_capacity(64);
            let start = Instant::now();
            for envelope in &commands {
                let _ = engine.apply(envelope, &mut events);
                events.clear();
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn flash_sale_sold_out_in_partition(c: &mut Criterion) {
    let mut group = c.benchmark_group("flash_sale");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("sold_out_refusal_in_partition", |b| {
        b.iter_custom(|iters| {
            let mut partition = partition_with_catalog(0, 1, 1, 10);
            let mut events = Vec::new();
            let _ = partition.apply(&flash_sale(CampaignId(1), SkuId(0), 1), &mut events);
            let _ = partition
                .apply(&reserve(1, 0, vec![Line { sku: SkuId(0), qty: 1 }], 1, Some(CampaignId(1))), &mut events);
            let commands: Vec<Envelope> = (0..iters * BATCH)
                .map(|i| reserve(i + 2, 0, vec![Line { sku: SkuId(0), qty: 1 }], i + 2, Some(CampaignId(1))))
                .collect();
            time_apply(&mut partition, &commands)
        })
    });
    group.finish();
}

fn sold_out_fast_path_two_threads(c: &mut Criterion) {
    let board = SoldOutBoard::new();
    board.set_campaign_sold_out(CampaignId(7), true);
    board.publish_available(SkuId(3), 0);
    let mut group = c.benchmark_group("fast_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sold_out_rejects_2_threads", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters / 2 + 1;
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2u32 {
                    let board = &board;
                    s.spawn(move || {
                        let mut rejected = 0u64;
                        for i in 0..per_thread {
                            // Alternate the two checks a gateway makes: campaign bit, then SKU availability.
                            let refused = if i & 1 == 0 {
                                board.campaign_sold_out(CampaignId(7))
                            } else {
                                board.available(SkuId(3)) == Some(0)
                            };
                            rejected += u64::from(std::hint::black_box(refused));
                        }
                        assert_eq!(rejected, per_thread);
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = single_line_hot_sku, reserve_confirm_uniform_catalog, three_line_orders_across_partitions,
        flash_sale_sold_out_in_partition, sold_out_fast_path_two_threads
}
criterion_main!(benches);
