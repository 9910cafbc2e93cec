//! The full order lifecycle in process, one partition: import (with audit rules loaded) ->
//! allocate (Reserve + Confirm + RecordAllocation through the `Desk` coordinator) -> pick wave
//! (one per 100 orders) -> pack (waybill) -> ship (order and stock). Reported in orders/s.
//! Target (orders issue, step 12): >= 200,000 orders/s.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oms_engine::orders::desk::Desk;
use oms_engine::orders::model::*;
use oms_engine::orders::{OrderCommand, RulesFile};
use oms_engine::{Command, Envelope, Limits, ShardedEngine, SkuId, WarehouseId};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: u64 = 10_000;
const WAVE_SIZE: u64 = 100;
const SKUS: u32 = 8;

const RULES: &str = r#"
[audit]
[[audit.rule]]
name = "big-order"
kind = "amount_above"
cents = 10000000
[[audit.rule]]
name = "remark"
kind = "remark_keywords"
values = ["refund"]
[[audit.rule]]
name = "address-incomplete"
kind = "address_incomplete"
[carriers]
[[carriers.carrier]]
code = "SF"
prefix = "SF"
range_start = 1
range_end = 100000000000
"#;

fn engine() -> ShardedEngine {
    let mut engine = ShardedEngine::new(1, Limits::default());
    let mut out = Vec::new();
    let mut run = |command: Command| {
        out.clear();
        engine.apply(&Envelope { now_ms: 1, command }, &mut out).expect("setup");
    };
    run(Command::DefineWarehouse { id: WarehouseId(1), code: "W1".into(), region: "cn".into(), priority: 1 });
    for sku in 0..SKUS {
        run(Command::DefineSku { id: SkuId(sku), code: format!("S{sku}"), low_stock_threshold: 0 });
        run(Command::SetOnHand { sku: SkuId(sku), warehouse: WarehouseId(1), on_hand: 1 << 40 });
    }
    for command in RulesFile::parse(RULES).expect("rules").commands() {
        run(Command::Order(command));
    }
    engine
}

fn new_order(i: u64) -> NewOrder {
    let external_id = format!("B-{i}");
    let lines: Vec<NewOrderLine> = (0..2)
        .map(|k| {
            let sku = ((i + k) % u64::from(SKUS)) as u32;
            NewOrderLine {
                sku: SkuId(sku),
                sku_code: format!("S{sku}"),
                qty: 1 + k as u32,
                list_cents: 1_990,
                paid_cents: None,
            }
        })
        .collect();
    NewOrder {
        id: oms_engine::orders::order_id_for(SalesChannel::Native, &external_id),
        channel: SalesChannel::Native,
        external_id,
        shop: "web".into(),
        buyer: format!("buyer-{}", i % 1_000),
        address: Address {
            name: "Ann".into(),
            phone: "555".into(),
            province: "广东省".into(),
            city: "深圳市".into(),
            district: "南山区".into(),
            detail: "科技园 1 号".into(),
            zip: String::new(),
        },
        remark: String::new(),
        cash_on_delivery: false,
        lines,
        shipping_cents: 0,
        paid_cents: 3_500,
    }
}

fn lifecycle(engine: &mut ShardedEngine, orders: Vec<NewOrder>) -> Duration {
    let mut desk = Desk::new(0);
    let mut out = Vec::with_capacity(64);
    let now = 10;
    let start = Instant::now();
    for (chunk_index, chunk) in orders.chunks(WAVE_SIZE as usize).enumerate() {
        let ids: Vec<OrderId> = chunk.iter().map(|o| o.id).collect();
        for order in chunk {
            out.clear();
            Desk::order_command(engine, now, OrderCommand::Import(order.clone()), &mut out).expect("import");
            out.clear();
            desk.allocate(engine, now, order.id, &mut out).expect("allocate");
        }
        out.clear();
        let wave = chunk_index as u64 + 1;
        let command = OrderCommand::CreateWave {
            wave,
            warehouse: WarehouseId(1),
            carrier: None,
            max_shipments: WAVE_SIZE as u32,
            cutoff_ms: None,
        };
        Desk::order_command(engine, now, command, &mut out).expect("wave");
        // Packing waits for the pick scan: one scan per pick-list line (the warehouse's work).
        let p = oms_engine::orders::owner_of(wave, engine.partition_count()) as usize;
        let picks = engine.partitions()[p].orders().wave(wave).map(|w| w.pick_list.clone()).unwrap_or_default();
        for item in picks {
            out.clear();
            let scan = OrderCommand::ScanPick { wave, sku: item.sku, qty: item.qty };
            Desk::order_command(engine, now, scan, &mut out).expect("scan");
        }
        for id in ids {
            let shipment = (id << 8) | 1;
            out.clear();
            Desk::order_command(engine, now, OrderCommand::Pack { shipment }, &mut out).expect("pack");
            out.clear();
            Desk::order_command(engine, now, OrderCommand::Ship { shipment }, &mut out).expect("ship");
        }
    }
    start.elapsed()
}

fn full_lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("orders");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.bench_function("import_audit_allocate_wave_pack_ship", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for iter in 0..iters {
                let mut engine = engine();
                let orders: Vec<NewOrder> = (0..BATCH).map(|i| new_order(iter * BATCH + i)).collect();
                total += lifecycle(&mut engine, orders);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, full_lifecycle);
criterion_main!(benches);
