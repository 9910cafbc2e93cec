//! Property tests for orders. (1) Price allocation: shares always sum exactly to the paid amount,
//! each within one cent of its exact pro-rata value, and refunds of every unit in any steps give
//! back exactly the line amount. (2) Random order workloads (import, allocate, receive stock,
//! retry parked, cancel, wave + pack + ship, deliver, return, ticks) on a 2-partition engine:
//! after every step every partition's check() is clean, every unit is accounted for (received +
//! returned = on hand + shipped, per SKU), reserved units equal the units of live shipments whose
//! reservation has not shipped (so nothing ships without stock and a cancel releases everything),
//! allocated line amounts sum to the goods paid, refunds never exceed them; at the end the
//! journal replays to identical images. Case count: PROPTEST_CASES (default 256).
mod common;

use std::collections::BTreeMap;

use common::assert_replay;
use oms_engine::orders::desk::Desk;
use oms_engine::orders::model::*;
use oms_engine::orders::pricing::{allocate_pro_rata, refund_share};
use oms_engine::orders::{OrderCommand, RulesFile};
use oms_engine::*;
use proptest::prelude::*;

const SKUS: u32 = 4;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn allocation_sums_are_exact(total in 0i64..10_000_000, weights in prop::collection::vec(0i64..1_000_000, 1..20)) {
        let shares = allocate_pro_rata(total, &weights);
        prop_assert_eq!(shares.iter().sum::<i64>(), total);
        let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
        for (share, weight) in shares.iter().zip(&weights) {
            prop_assert!(*share >= 0);
            if sum > 0 {
                let exact = i128::from(total) * i128::from(*weight);
                let share = i128::from(*share) * sum;
                prop_assert!(share >= exact - sum && share <= exact + sum, "share off by more than a cent");
            }
        }
    }

    #[test]
    fn refunds_in_any_steps_sum_to_the_line(amount in 0i64..1_000_000, steps in prop::collection::vec(1u32..5, 1..10)) {
        let qty: u32 = steps.iter().sum();
        let mut done = 0;
        let mut refunded = 0;
        for units in steps {
            refunded += refund_share(amount, qty, done, units);
            done += units;
        }
        prop_assert_eq!(refunded, amount);
    }

    #[test]
    fn order_workloads_account_for_every_unit(ops in prop::collection::vec(arb_op(), 1..60)) {
        let mut run = Run::new();
        for op in &ops {
            run.step(op);
            run.check()?;
        }
        assert_replay(&run.engine);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Import { buyer: u8, lines: Vec<(u32, u32)>, discount: i64 },
    Allocate(usize),
    Receive { sku: u32, warehouse: u16, qty: u32 },
    RetryParked,
    Cancel(usize),
    Ship(usize),
    Deliver(usize),
    Return { order: usize, sku: u32, qty: u32, damaged: bool },
    Tick(u64),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3, prop::collection::vec((0..SKUS, 1u32..4), 1..4), 0i64..500)
            .prop_map(|(buyer, lines, discount)| Op::Import { buyer, lines, discount }),
        3 => (0usize..20).prop_map(Op::Allocate),
        2 => (0..SKUS, 1u16..3, 1u32..8).prop_map(|(sku, warehouse, qty)| Op::Receive { sku, warehouse, qty }),
        1 => Just(Op::RetryParked),
        1 => (0usize..20).prop_map(Op::Cancel),
        2 => (0usize..20).prop_map(Op::Ship),
        2 => (0usize..20).prop_map(Op::Deliver),
        2 => (0usize..20, 0..SKUS, 1u32..3, any::<bool>())
            .prop_map(|(order, sku, qty, damaged)| Op::Return { order, sku, qty, damaged }),
        1 => (1u64..100_000_000).prop_map(Op::Tick),
    ]
}

struct Run {
    engine: ShardedEngine,
    desk: Desk,
    now: u64,
    orders: Vec<OrderId>,
    waves: u64,
    received: BTreeMap<u32, u64>,
    returned: BTreeMap<u32, u64>,
}

impl Run {
    fn new() -> Run {
        let mut run = Run {
            engine: ShardedEngine::new(2, Limits::default()).with_journal(),
            desk: Desk::new(0),
            now: 1_000,
            orders: Vec::new(),
            waves: 0,
            received: BTreeMap::new(),
            returned: BTreeMap::new(),
        };
        for id in [1u16, 2] {
            run.apply(Command::DefineWarehouse {
                id: WarehouseId(id),
                code: format!("W{id}"),
                region: "cn".into(),
                priority: id,
            })
            .unwrap();
        }
        for sku in 0..SKUS {
            run.apply(Command::DefineSku { id: SkuId(sku), code: format!("S{sku}"), low_stock_threshold: 0 }).unwrap();
        }
        run.desk.learn_codes(&run.engine);
        let rules = r#"
[routing]
[[routing.rule]]
name = "partial-for-buyer-0"
regions = ["R0"]
partial = true
[[routing.rule]]
name = "cancel-for-buyer-1"
regions = ["R1"]
on_unfillable = "cancel"
cancel_after_ms = 50000000
[carriers]
no_progress_ms = 10000000
[[carriers.carrier]]
code = "C"
range_start = 1
range_end = 1000000
"#;
        for command in RulesFile::parse(rules).unwrap().commands() {
            run.apply(Command::Order(command)).unwrap();
        }
        run
    }

    fn apply(&mut self, command: Command) -> Result<Vec<Event>, EngineError> {
        let mut out = Vec::new();
        self.engine.apply(&Envelope { now_ms: self.now, command }, &mut out).map(|()| out)
    }

    fn order_at(&self, i: usize) -> Option<Order> {
        let id = *self.orders.get(i % self.orders.len().max(1))?;
        let p = oms_engine::orders::owner_of(id, 2) as usize;
        self.engine.partitions()[p].orders().order(id).cloned()
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Import { buyer, lines, discount } => {
                let n = self.orders.len();
                let mut merged: Vec<NewOrderLine> = Vec::new();
                for &(sku, qty) in lines {
                    if merged.iter().any(|l| l.sku == SkuId(sku)) {
                        continue;
                    }
                    merged.push(NewOrderLine {
                        sku: SkuId(sku),
                        sku_code: format!("S{sku}"),
                        qty,
                        list_cents: 1_000 * i64::from(qty),
                        paid_cents: None,
                    });
                }
                let list: i64 = merged.iter().map(|l| l.list_cents).sum();
                let new = NewOrder {
                    id: oms_engine::orders::order_id_for(SalesChannel::Native, &format!("P-{n}")),
                    channel: SalesChannel::Native,
                    external_id: format!("P-{n}"),
                    shop: "s".into(),
                    buyer: format!("b{buyer}"),
                    address: Address {
                        name: "n".into(),
                        phone: "p".into(),
                        province: format!("R{buyer}"),
                        city: "c".into(),
                        district: String::new(),
                        detail: "d".into(),
                        zip: String::new(),
                    },
                    remark: String::new(),
                    cash_on_delivery: false,
                    lines: merged,
                    shipping_cents: 100,
                    paid_cents: list - discount.min(&list) + 100,
                };
                let id = new.id;
                self.apply(Command::Order(OrderCommand::Import(new))).unwrap();
                self.orders.push(id);
            }
            Op::Allocate(i) => {
                if let Some(o) = self.order_at(*i) {
                    let mut out = Vec::new();
                    self.desk.allocate(&mut self.engine, self.now, o.id, &mut out).unwrap();
                }
            }
            Op::Receive { sku, warehouse, qty } => {
                self.apply(Command::Receive { sku: SkuId(*sku), warehouse: WarehouseId(*warehouse), qty: *qty })
                    .unwrap();
                *self.received.entry(*sku).or_default() += u64::from(*qty);
            }
            Op::RetryParked => {
                let mut out = Vec::new();
                self.desk.retry_parked(&mut self.engine, self.now, &mut out).unwrap();
            }
            Op::Cancel(i) => {
                if let Some(o) = self.order_at(*i) {
                    let _ = self.apply(Command::Order(OrderCommand::Cancel { order: o.id, reason: "test".into() }));
                }
            }
            Op::Ship(i) => {
                let Some(o) = self.order_at(*i) else { return };
                for s in o.shipments.iter().filter(|s| s.status == ShipmentStatus::Allocated) {
                    self.waves += 1;
                    let wave = self.waves * 2 + oms_engine::orders::owner_of(o.id, 2) as u64;
                    let _ = self.apply(Command::Order(OrderCommand::CreateWave {
                        wave,
                        warehouse: s.warehouse,
                        carrier: None,
                        max_shipments: 3,
                        cutoff_ms: None,
                    }));
                }
                let o = self.order_at(*i).unwrap();
                // Packing needs the wave picked: scan what is left of each wave's list, or (every
                // other wave) have a supervisor release it.
                let waves: std::collections::BTreeSet<u64> =
                    o.shipments.iter().filter(|s| s.status == ShipmentStatus::Waved).filter_map(|s| s.wave).collect();
                for wave in waves {
                    let p = oms_engine::orders::owner_of(wave, 2) as usize;
                    let Some(w) = self.engine.partitions()[p].orders().wave(wave).cloned() else { continue };
                    if wave % 4 < 2 {
                        for item in w.pick_list.iter().filter(|item| item.picked < item.qty) {
                            let qty = item.qty - item.picked;
                            let scan = OrderCommand::ScanPick { wave, sku: item.sku, qty };
                            self.apply(Command::Order(scan)).unwrap();
                        }
                    } else {
                        let release =
                            OrderCommand::OverridePick { wave, supervisor: "lead".into(), reason: "test".into() };
                        self.apply(Command::Order(release)).unwrap();
                    }
                }
                let o = self.order_at(*i).unwrap();
                for s in
                    o.shipments.iter().filter(|s| matches!(s.status, ShipmentStatus::Waved | ShipmentStatus::Picked))
                {
                    self.apply(Command::Order(OrderCommand::Pack { shipment: s.id })).unwrap();
                    self.apply(Command::Order(OrderCommand::Ship { shipment: s.id })).unwrap();
                }
            }
            Op::Deliver(i) => {
                let Some(o) = self.order_at(*i) else { return };
                for s in o.shipments.iter().filter(|s| s.status == ShipmentStatus::Shipped) {
                    self.apply(Command::Order(OrderCommand::Deliver { shipment: s.id })).unwrap();
                }
            }
            Op::Return { order, sku, qty, damaged } => {
                let Some(o) = self.order_at(*order) else { return };
                let kind = AfterSaleKind::Return;
                let line = Line { sku: SkuId(*sku), qty: *qty };
                if self
                    .apply(Command::Order(OrderCommand::CreateAfterSale {
                        order: o.id,
                        kind,
                        lines: vec![line],
                        reason: String::new(),
                    }))
                    .is_ok()
                {
                    let id = self.order_at(*order).unwrap().after_sales.last().unwrap().id;
                    self.apply(Command::Order(OrderCommand::ReceiveReturn { after_sale: id, damaged: *damaged }))
                        .unwrap();
                    *self.returned.entry(*sku).or_default() += u64::from(*qty);
                }
            }
            Op::Tick(ms) => {
                self.now += ms;
                self.apply(Command::Tick { budget: 1_000 }).unwrap();
            }
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let mut shipped: BTreeMap<u32, u64> = BTreeMap::new();
        let mut held: BTreeMap<u32, u64> = BTreeMap::new();
        for p in self.engine.partitions() {
            prop_assert!(p.check().is_clean(), "partition {} not clean: {:?}", p.index(), p.check());
            for o in p.orders().orders() {
                let goods: i64 = o.lines.iter().map(|l| l.allocated_cents).sum();
                prop_assert_eq!(goods, o.paid_cents - o.shipping_cents);
                for l in &o.lines {
                    prop_assert!(l.refunded_cents <= l.allocated_cents && l.claimed_qty <= l.allocated_qty);
                }
                let live: Vec<&Shipment> =
                    o.shipments.iter().filter(|s| s.status != ShipmentStatus::Cancelled).collect();
                for s in &live {
                    let all_left = live
                        .iter()
                        .filter(|x| x.reservation == s.reservation)
                        .all(|x| matches!(x.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered));
                    let bucket = if all_left { &mut shipped } else { &mut held };
                    for a in &s.items {
                        *bucket.entry(a.sku.0).or_default() += u64::from(a.qty);
                    }
                }
            }
        }
        for sku in 0..SKUS {
            let stock = self.engine.stock(SkuId(sku)).unwrap();
            let received = self.received.get(&sku).copied().unwrap_or(0);
            let returned = self.returned.get(&sku).copied().unwrap_or(0);
            let out = shipped.get(&sku).copied().unwrap_or(0);
            prop_assert_eq!(received + returned, stock.on_hand + out, "SKU {} units not accounted for", sku);
            prop_assert_eq!(
                stock.reserved,
                held.get(&sku).copied().unwrap_or(0),
                "SKU {} reserved != live shipments",
                sku
            );
        }
        Ok(())
    }
}
