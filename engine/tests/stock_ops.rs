//! Stock administration: receive, counts, adjustments, transfers, returns, buckets, low stock.
mod common;

use common::*;
use oms_engine::event::Event;
use oms_engine::*;

/// (warehouse, on_hand, reserved, safety, damaged, quality_control, available)
type Cell = (u16, u64, u64, u64, u64, u64, u64);

fn cells(sim: &Sim, sku: u32) -> Vec<Cell> {
    [1u16, 2]
        .iter()
        .map(|&w| {
            let c = sim.cell(sku, w);
            (w, c.on_hand, c.reserved, c.safety, c.damaged, c.quality_control, c.available)
        })
        .collect()
}

fn receive(w: u16, qty: u32) -> Command {
    Command::Receive { sku: SkuId(0), warehouse: WarehouseId(w), qty }
}
fn set_on_hand(w: u16, on_hand: u64) -> Command {
    Command::SetOnHand { sku: SkuId(0), warehouse: WarehouseId(w), on_hand }
}
fn adjust(w: u16, delta: i64) -> Command {
    Command::Adjust { sku: SkuId(0), warehouse: WarehouseId(w), delta }
}
fn transfer(from: u16, to: u16, qty: u32) -> Command {
    Command::Transfer { sku: SkuId(0), from: WarehouseId(from), to: WarehouseId(to), qty }
}
fn returned(w: u16, qty: u32, damaged: bool) -> Command {
    Command::ReturnToStock { sku: SkuId(0), warehouse: WarehouseId(w), qty, damaged }
}
fn bucket(w: u16, bucket: Bucket, qty: u64) -> Command {
    Command::SetBucket { sku: SkuId(0), warehouse: WarehouseId(w), bucket, qty }
}

/// Setup: SKU 0 gets 10 units in warehouse 1 and a 3-unit hold there (warehouse 2 empty).
/// Then `op` runs: either it succeeds and both cells equal `expected`, or it fails with the code and
/// the cells are as after setup. Consistency check and replay after every scenario.
#[track_caller]
fn check(op: Command, expected: Result<[Cell; 2], &str>) {
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.receive(0, 1, 10);
    sim.reserve(&[(0, 3)]).unwrap();
    let before = cells(&sim, 0);
    let name = op.name();
    match (sim.run(op), expected) {
        (Ok(_), Ok(want)) => assert_eq!(cells(&sim, 0), want.to_vec(), "{name}"),
        (Err(e), Err(code)) => {
            assert_eq!(e.code(), code, "{name}: {e:?}");
            assert!(sim.events.is_empty());
            assert_eq!(cells(&sim, 0), before, "{name} refused but changed stock");
        }
        (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
    }
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn stock_operations_table() {
    // Each row: one operation after the setup, and the resulting (warehouse 1, warehouse 2) cells.
    let empty2: Cell = (2, 0, 0, 0, 0, 0, 0);
    check(receive(1, 5), Ok([(1, 15, 3, 0, 0, 0, 12), empty2]));
    check(receive(2, 4), Ok([(1, 10, 3, 0, 0, 0, 7), (2, 4, 0, 0, 0, 0, 4)]));
    check(receive(1, 0), Err("zero_quantity"));
    check(receive(9, 1), Err("unknown_warehouse"));
    check(set_on_hand(1, 4), Ok([(1, 4, 3, 0, 0, 0, 1), empty2]));
    check(set_on_hand(1, 3), Ok([(1, 3, 3, 0, 0, 0, 0), empty2]));
    check(set_on_hand(1, 2), Err("below_committed"));
    check(set_on_hand(1, 20), Ok([(1, 20, 3, 0, 0, 0, 17), empty2]));
    check(adjust(1, -7), Ok([(1, 3, 3, 0, 0, 0, 0), empty2]));
    check(adjust(1, -8), Err("below_committed"));
    check(adjust(1, 2), Ok([(1, 12, 3, 0, 0, 0, 9), empty2]));
    check(adjust(2, -1), Err("below_committed"));
    check(adjust(1, 0), Err("zero_quantity"));
    check(adjust(1, i64::MIN), Err("below_committed"));
    // Transfers move only available units (7 of the 10: 3 are held).
    check(transfer(1, 2, 7), Ok([(1, 3, 3, 0, 0, 0, 0), (2, 7, 0, 0, 0, 0, 7)]));
    check(transfer(1, 2, 8), Err("insufficient_in_warehouse"));
    check(transfer(2, 1, 1), Err("insufficient_in_warehouse"));
    check(transfer(1, 1, 1), Err("same_warehouse"));
    check(transfer(1, 2, 0), Err("zero_quantity"));
    // Returns: sellable ones become available, damaged ones land in the damaged bucket.
    check(returned(1, 2, false), Ok([(1, 12, 3, 0, 0, 0, 9), empty2]));
    check(returned(2, 2, true), Ok([(1, 10, 3, 0, 0, 0, 7), (2, 2, 0, 0, 2, 0, 0)]));
    check(returned(1, 0, true), Err("zero_quantity"));
    // Buckets: damaged and QC are physical (bounded by on_hand - reserved); safety only lowers
    // availability and may exceed it.
    check(bucket(1, Bucket::Damaged, 7), Ok([(1, 10, 3, 0, 7, 0, 0), empty2]));
    check(bucket(1, Bucket::Damaged, 8), Err("below_committed"));
    check(bucket(1, Bucket::QualityControl, 2), Ok([(1, 10, 3, 0, 0, 2, 5), empty2]));
    check(bucket(1, Bucket::QualityControl, 8), Err("below_committed"));
    check(bucket(1, Bucket::Safety, 4), Ok([(1, 10, 3, 4, 0, 0, 3), empty2]));
    check(bucket(1, Bucket::Safety, 50), Ok([(1, 10, 3, 50, 0, 0, 0), empty2]));
    // Quantities are bounded (QUANTITY_LIMIT = 2^40): at the bound they are taken, past it
    // refused quantity_overflow; nothing saturates.
    let limit = catalog::QUANTITY_LIMIT;
    check(bucket(1, Bucket::Safety, limit), Ok([(1, 10, 3, limit, 0, 0, 0), empty2]));
    check(bucket(1, Bucket::Safety, limit + 1), Err("quantity_overflow"));
    check(bucket(1, Bucket::Safety, u64::MAX), Err("quantity_overflow"));
    check(bucket(1, Bucket::Damaged, u64::MAX), Err("quantity_overflow"));
    check(set_on_hand(1, limit), Ok([(1, limit, 3, 0, 0, 0, limit - 3), empty2]));
    check(set_on_hand(1, limit + 1), Err("quantity_overflow"));
    check(set_on_hand(2, u64::MAX), Err("quantity_overflow"));
    check(adjust(1, i64::MAX), Err("quantity_overflow"));
}

#[test]
fn totals_over_warehouses_never_saturate() {
    // Issue 12: on_hand = 2^64-1 was accepted and a SKU's totals over warehouses saturated. With
    // every cell at the bound in two warehouses, the totals are the exact sum.
    let mut sim = Sim::new(1);
    sim.warehouse(2, 2);
    sim.sku(0, 0);
    let limit = catalog::QUANTITY_LIMIT;
    for w in [1, 2] {
        sim.ok(Command::SetOnHand { sku: SkuId(0), warehouse: WarehouseId(w), on_hand: limit });
    }
    assert_eq!(sim.totals(0), (2 * limit, 0, 2 * limit));
    assert_eq!(
        sim.run(Command::Receive { sku: SkuId(0), warehouse: WarehouseId(1), qty: 1 }).unwrap_err(),
        EngineError::QuantityOverflow { sku: SkuId(0), warehouse: WarehouseId(1), max: limit }
    );
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn huge_counts_never_panic() {
    // Operator input near u64::MAX: each command either succeeds or is a typed error, the state
    // stays consistent (checked by the consistency report), and nothing panics on overflow.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.receive(0, 1, 10);
    sim.reserve(&[(0, 1)]).unwrap();
    let ops = [
        set_on_hand(1, u64::MAX),
        receive(1, u32::MAX),
        adjust(1, i64::MAX),
        returned(1, 5, true),
        returned(1, 5, false),
        bucket(1, Bucket::Damaged, u64::MAX - 3),
        bucket(1, Bucket::Safety, u64::MAX),
        bucket(1, Bucket::QualityControl, u64::MAX),
        set_on_hand(2, u64::MAX),
        transfer(2, 1, u32::MAX),
        receive(2, u32::MAX),
    ];
    for op in ops {
        let _ = sim.run(op);
        sim.assert_clean();
        let _ = sim.engine.available(SkuId(0));
        let _ = sim.engine.stock(SkuId(0));
    }
    let _ = sim.reserve(&[(0, u32::MAX)]);
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn low_stock_is_edge_triggered() {
    // Threshold 5: the event fires when availability first drops below 5, not again while it stays
    // below, and again after it went back up and dropped once more.
    let mut sim = Sim::new(1);
    sim.sku(0, 5);
    let low = |events: &[Event]| events.iter().filter(|e| matches!(e, Event::LowStock { .. })).count();
    sim.receive(0, 1, 10);
    let (a, _) = sim.reserve(&[(0, 5)]).unwrap();
    assert_eq!(low(&sim.events), 0, "5 available is not below 5");
    let (b, _) = sim.reserve(&[(0, 1)]).unwrap();
    assert_eq!(
        sim.events
            .iter()
            .filter(|e| matches!(e, Event::LowStock { sku: SkuId(0), available: 4, threshold: 5 }))
            .count(),
        1
    );
    sim.reserve(&[(0, 1)]).unwrap();
    assert_eq!(low(&sim.events), 0, "still below: no second event");
    sim.ok(Command::Release { id: a, cause: ReleaseCause::Cancel });
    assert_eq!(low(&sim.events), 0);
    sim.ok(Command::Release { id: b, cause: ReleaseCause::Cancel });
    sim.reserve(&[(0, 6)]).unwrap();
    assert_eq!(low(&sim.events), 1, "crossed below again");
    sim.assert_clean();
}

#[test]
fn kits_are_not_stocked() {
    // Stock commands on a kit SKU are refused with KitNotStocked and change nothing.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.kit(5, &[(0, 1)]).unwrap();
    for op in [
        Command::Receive { sku: SkuId(5), warehouse: WarehouseId(1), qty: 1 },
        Command::SetOnHand { sku: SkuId(5), warehouse: WarehouseId(1), on_hand: 1 },
        Command::Adjust { sku: SkuId(5), warehouse: WarehouseId(1), delta: 1 },
        Command::ReturnToStock { sku: SkuId(5), warehouse: WarehouseId(1), qty: 1, damaged: false },
    ] {
        let before = sim.images();
        assert_eq!(sim.run(op).unwrap_err().code(), "kit_not_stocked");
        assert_eq!(sim.images(), before);
    }
}
