//! Orders: lifecycle, channel intake, audit rules, allocation and split shipments, merge, waves,
//! carriers, tracking alerts and after-sales, driven through a journaled `ShardedEngine` and the
//! `Desk` coordinator. Every scenario ends by replaying the journal into fresh partitions and
//! comparing images byte for byte.
mod common;

use common::assert_replay;
use oms_engine::command::KitComponent;
use oms_engine::orders::desk::{Allocated, Desk};
use oms_engine::orders::intake::{self, ChannelOrder};
use oms_engine::orders::model::*;
use oms_engine::orders::{AlertKind, OrderCommand, OrderEvent, RulesFile};
use oms_engine::*;

const TAOBAO: &str = include_str!("orders_samples/taobao-style.json");
const JD: &str = include_str!("orders_samples/jd-style.json");
const DOUYIN: &str = include_str!("orders_samples/douyin-style.json");

const RULES: &str = r#"
[audit]
[[audit.rule]]
name = "big-order"
kind = "amount_above"
cents = 100000

[[audit.rule]]
name = "blacklisted-buyer"
kind = "buyer_blacklist"
values = ["fraudster"]

[[audit.rule]]
name = "urgent-remark"
kind = "remark_keywords"
values = ["REFUND", "投诉"]

[[audit.rule]]
name = "risky-region"
kind = "risky_region"
values = ["新疆"]

[[audit.rule]]
name = "velocity"
kind = "buyer_velocity"
max_orders = 3
window_ms = 3600000

[[audit.rule]]
name = "address-incomplete"
kind = "address_incomplete"

[routing]
merge_window_ms = 600000

[carriers]
no_progress_ms = 86400000
delivery_sla_ms = 259200000
default_weight_g = 500

[[carriers.carrier]]
code = "SF"
prefix = "SF"
range_start = 1000
range_end = 1999
base_cents = 1200
per_kg_cents = 200
cod = true

[[carriers.carrier]]
code = "YTO"
prefix = "YT"
range_start = 5000
range_end = 5003
base_cents = 600
per_kg_cents = 100
max_weight_g = 3000
"#;

const SKUS: [&str; 6] = ["TSHIRT-RED-XL", "CAP-BLK", "SNEAKER-42", "SOCKS-3P", "MUG-WHT", "PEN"];

struct World {
    engine: ShardedEngine,
    desk: Desk,
    now: u64,
    events: Vec<Event>,
}

impl World {
    /// `partitions` partitions, warehouses 1 and 2, the six SKUs (ids 0..6), rules loaded,
    /// and `stock` units of every SKU in warehouse 1.
    fn new(partitions: u32, stock: u32) -> World {
        let mut w = World {
            engine: ShardedEngine::new(partitions, Limits::default()).with_journal(),
            desk: Desk::new(1_000),
            now: 1_000,
            events: Vec::new(),
        };
        for (id, priority) in [(1u16, 1u16), (2, 2)] {
            w.ok(Command::DefineWarehouse {
                id: WarehouseId(id),
                code: format!("W{id}"),
                region: "cn".into(),
                priority,
            });
        }
        for (i, code) in SKUS.iter().enumerate() {
            w.ok(Command::DefineSku { id: SkuId(i as u32), code: (*code).into(), low_stock_threshold: 0 });
            if stock > 0 {
                w.receive(i as u32, 1, stock);
            }
        }
        w.desk.learn_codes(&w.engine);
        for command in RulesFile::parse(RULES).unwrap().commands() {
            w.order(command).unwrap();
        }
        w
    }

    fn run(&mut self, command: Command) -> Result<Vec<Event>, EngineError> {
        let mut out = Vec::new();
        let result = self.engine.apply(&Envelope { now_ms: self.now, command }, &mut out);
        self.events = out.clone();
        result.map(|()| out)
    }

    #[track_caller]
    fn ok(&mut self, command: Command) -> Vec<Event> {
        self.run(command).unwrap()
    }

    fn order(&mut self, command: OrderCommand) -> Result<Vec<Event>, EngineError> {
        self.run(Command::Order(command))
    }

    /// Run an order command that must be refused, and check the refusal changed nothing.
    #[track_caller]
    fn refused(&mut self, command: OrderCommand) -> EngineError {
        let before: Vec<_> = self.engine.partitions().iter().map(|p| p.image()).collect();
        let error = self.order(command).expect_err("refused");
        assert!(self.events.is_empty(), "a refusal emitted {:?}", self.events);
        let after: Vec<_> = self.engine.partitions().iter().map(|p| p.image()).collect();
        assert_eq!(before, after, "refusal {error:?} changed the state");
        error
    }

    fn receive(&mut self, sku: u32, warehouse: u16, qty: u32) {
        self.ok(Command::Receive { sku: SkuId(sku), warehouse: WarehouseId(warehouse), qty });
    }

    fn import(&mut self, channel: SalesChannel, text: &str) -> OrderId {
        let parsed = intake::parse(channel, text).unwrap();
        let order = parsed.into_iter().next().unwrap().unwrap();
        self.import_parsed(&order)
    }

    fn import_parsed(&mut self, order: &ChannelOrder) -> OrderId {
        let mut out = Vec::new();
        let id = self.desk.import(&mut self.engine, self.now, order, &mut out).unwrap();
        self.events = out;
        id
    }

    fn allocate(&mut self, order: OrderId) -> Allocated {
        let mut out = Vec::new();
        let result = self.desk.allocate(&mut self.engine, self.now, order, &mut out).unwrap();
        self.events = out;
        result
    }

    fn get(&self, order: OrderId) -> Order {
        let p = oms_engine::orders::owner_of(order, self.engine.partition_count()) as usize;
        self.engine.partitions()[p].orders().order(order).cloned().expect("known order")
    }

    fn wave(&self, wave: WaveId) -> Wave {
        let p = oms_engine::orders::owner_of(wave, self.engine.partition_count()) as usize;
        self.engine.partitions()[p].orders().wave(wave).cloned().expect("known wave")
    }

    /// The `n`th wave id that lives in the partition of `order` (waves group the shipments of
    /// their own partition).
    fn wave_for(&self, order: OrderId, n: u64) -> WaveId {
        let partitions = u64::from(self.engine.partition_count());
        n * partitions + order % partitions
    }

    /// Create a wave and scan its whole pick list (packing needs it).
    fn picked_wave(&mut self, wave: WaveId, warehouse: u16) {
        self.create_wave(wave, warehouse).unwrap();
        for item in self.wave(wave).pick_list {
            self.order(OrderCommand::ScanPick { wave, sku: item.sku, qty: item.qty }).unwrap();
        }
    }

    fn create_wave(&mut self, wave: WaveId, warehouse: u16) -> Result<Vec<Event>, EngineError> {
        self.order(OrderCommand::CreateWave {
            wave,
            warehouse: WarehouseId(warehouse),
            carrier: None,
            max_shipments: 100,
            cutoff_ms: None,
        })
    }

    /// Wave, scan everything, pack, ship every shipment of the order.
    fn ship_all(&mut self, order: OrderId, wave: WaveId) {
        let o = self.get(order);
        let warehouses: Vec<u16> = o.shipments.iter().map(|s| s.warehouse.0).collect();
        for (i, warehouse) in warehouses.iter().enumerate() {
            let wave_id = self.wave_for(order, wave + i as u64);
            self.create_wave(wave_id, *warehouse).unwrap();
            for item in self.wave(wave_id).pick_list {
                self.order(OrderCommand::ScanPick { wave: wave_id, sku: item.sku, qty: item.qty }).unwrap();
            }
        }
        for s in self.get(order).shipments {
            self.order(OrderCommand::Pack { shipment: s.id }).unwrap();
            self.order(OrderCommand::Ship { shipment: s.id }).unwrap();
        }
    }

    fn deliver_all(&mut self, order: OrderId) {
        for s in self.get(order).shipments {
            self.order(OrderCommand::Deliver { shipment: s.id }).unwrap();
        }
    }

    fn stock(&self, sku: u32) -> (u64, u64, u64) {
        let s = self.engine.stock(SkuId(sku)).unwrap();
        (s.on_hand, s.reserved, s.available)
    }

    fn damaged(&self, sku: u32, warehouse: u16) -> u64 {
        let s = self.engine.stock(SkuId(sku)).unwrap();
        s.warehouses.iter().find(|w| w.warehouse == WarehouseId(warehouse)).map_or(0, |w| w.damaged)
    }

    fn order_events(&self) -> Vec<OrderEvent> {
        self.events.iter().filter_map(|e| if let Event::Order(o) = e { Some(o.clone()) } else { None }).collect()
    }

    #[track_caller]
    fn finish(&self) {
        for p in self.engine.partitions() {
            assert!(p.check().is_clean(), "partition {} not clean: {:?}", p.index(), p.check());
            // A snapshot restores to the same image.
            let image = p.image();
            let restored = Partition::from_image(image.clone(), Limits::default()).unwrap();
            assert_eq!(restored.image(), image);
        }
        assert_replay(&self.engine);
    }
}

/// A native order for `buyer` with `lines` of (sku code, qty, unit cents).
fn native(id: &str, buyer: &str, lines: &[(&str, u32, i64)], discount: i64) -> String {
    let lines: Vec<String> = lines
        .iter()
        .map(|(sku, qty, unit)| format!(r#"{{"sku": "{sku}", "qty": {qty}, "unit_price_cents": {unit}}}"#))
        .collect();
    format!(
        r#"{{"order_id": "{id}", "shop": "web", "buyer": "{buyer}", "remark": "",
            "address": {{"name": "Ann", "phone": "555", "province": "广东省", "city": "深圳市",
                         "district": "南山区", "detail": "科技园 1 号", "zip": "518000"}},
            "lines": [{}], "discount_cents": {discount}, "shipping_cents": 0}}"#,
        lines.join(",")
    )
}

#[test]
fn the_happy_path_runs_from_import_to_completed() {
    // A Taobao sample order goes created -> approved -> allocated -> picking -> packed -> shipped
    // -> delivered -> completed; stock is held on allocation and leaves on shipment; every status
    // change is an event with its time; replay gives identical images.
    let mut w = World::new(2, 10);
    let id = w.import(SalesChannel::Taobao, TAOBAO);
    let o = w.get(id);
    assert_eq!(o.status, OrderStatus::Approved);
    assert_eq!(o.paid_cents, 25_800);
    // The channel's own line payments add up, so they are the allocation.
    assert_eq!(o.lines.iter().map(|l| l.allocated_cents).collect::<Vec<_>>(), vec![17_143, 8_657]);
    assert!(w.order_events().contains(&OrderEvent::StatusChanged {
        order: id,
        from: OrderStatus::Created,
        to: OrderStatus::Approved,
        at_ms: 1_000
    }));

    w.now = 2_000;
    assert!(matches!(w.allocate(id), Allocated::Full { shipments: 1, .. }));
    let o = w.get(id);
    assert_eq!(o.status, OrderStatus::Allocated);
    assert_eq!(o.shipments[0].warehouse, WarehouseId(1));
    assert_eq!(w.stock(0), (10, 2, 8), "two T-shirts held");

    let wave_id = w.wave_for(id, 2);
    w.create_wave(wave_id, 1).unwrap();
    assert_eq!(w.get(id).status, OrderStatus::Picking);
    let wave = w.wave(wave_id);
    // Nothing is packed before its wave is picked.
    let shipment = w.get(id).shipments[0].id;
    assert!(matches!(w.refused(OrderCommand::Pack { shipment }), EngineError::NotPicked { .. }));
    // The scan check refuses a SKU that is not on the pick list.
    assert_eq!(
        w.refused(OrderCommand::ScanPick { wave: wave_id, sku: SkuId(4), qty: 1 }),
        EngineError::WrongSku { wave: wave_id, sku: SkuId(4) }
    );
    for item in &wave.pick_list {
        w.order(OrderCommand::ScanPick { wave: wave_id, sku: item.sku, qty: item.qty }).unwrap();
    }
    assert!(w.wave(wave_id).picked);
    let shipment = w.get(id).shipments[0].id;
    w.now = 3_000;
    w.order(OrderCommand::Pack { shipment }).unwrap();
    let o = w.get(id);
    assert_eq!(o.status, OrderStatus::Packed);
    assert_eq!(o.shipments[0].carrier.as_deref(), Some("YTO"), "the cheapest carrier that takes 1.5 kg");
    // Partition p of 2 issues the numbers n with n % 2 == p.
    let expected = format!("YT{}", 5000 + id % 2);
    assert_eq!(o.shipments[0].waybill.as_deref(), Some(expected.as_str()));
    w.order(OrderCommand::Ship { shipment }).unwrap();
    assert_eq!(w.get(id).status, OrderStatus::Shipped);
    assert_eq!(w.stock(0), (8, 0, 8), "shipped units left on-hand");
    w.order(OrderCommand::Deliver { shipment }).unwrap();
    assert_eq!(w.get(id).status, OrderStatus::Delivered);
    w.order(OrderCommand::Complete { order: id }).unwrap();
    assert_eq!(w.get(id).status, OrderStatus::Completed);
    w.finish();
}

#[test]
fn illegal_transitions_are_refused_with_the_current_state() {
    // Each action outside its allowed states is refused with a typed error naming the state, and
    // the refusal changes nothing.
    let mut w = World::new(1, 10);
    let id = w.import(SalesChannel::Native, &native("N-1", "ann", &[("PEN", 1, 100)], 0));
    assert_eq!(
        w.refused(OrderCommand::Approve { order: id }),
        EngineError::IllegalTransition { order: id, state: "approved", action: "approve" }
    );
    assert_eq!(
        w.refused(OrderCommand::Complete { order: id }),
        EngineError::IllegalTransition { order: id, state: "approved", action: "complete" }
    );
    assert_eq!(w.refused(OrderCommand::Approve { order: 42 }), EngineError::UnknownOrder { order: 42 });
    w.allocate(id);
    let shipment = w.get(id).shipments[0].id;
    assert_eq!(
        w.refused(OrderCommand::Ship { shipment }),
        EngineError::ShipmentTransition { shipment, state: "allocated", action: "ship" }
    );
    w.ship_all(id, 1);
    assert_eq!(
        w.refused(OrderCommand::Cancel { order: id, reason: "late".into() }),
        EngineError::IllegalTransition { order: id, state: "shipped", action: "cancel" }
    );
    assert!(matches!(
        w.refused(OrderCommand::CreateAfterSale {
            order: id,
            kind: AfterSaleKind::Return,
            lines: vec![Line { sku: SkuId(5), qty: 1 }],
            reason: String::new()
        }),
        EngineError::IllegalTransition { state: "shipped", .. }
    ));
    w.finish();
}

#[test]
fn cancelling_releases_the_reservation() {
    // An allocated and waved order is cancelled: its reservation is released in the stock
    // partition, its shipments are cancelled and it leaves the wave's ready queue.
    let mut w = World::new(2, 5);
    let id = w.import(SalesChannel::Native, &native("N-2", "bob", &[("PEN", 2, 100), ("MUG-WHT", 1, 500)], 0));
    w.allocate(id);
    assert_eq!(w.stock(5), (5, 2, 3));
    w.order(OrderCommand::Cancel { order: id, reason: "buyer asked".into() }).unwrap();
    let o = w.get(id);
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert_eq!(o.cancel_reason.as_deref(), Some("buyer asked"));
    assert!(o.shipments.iter().all(|s| s.status == ShipmentStatus::Cancelled));
    assert_eq!(w.stock(5), (5, 0, 5));
    assert_eq!(w.stock(4), (5, 0, 5));
    assert_eq!(w.create_wave(1, 1).unwrap_err(), EngineError::NothingToWave { warehouse: WarehouseId(1) });
    w.finish();
}

#[test]
fn channel_samples_parse_into_exact_cents() {
    // The three marketplace samples parse: ids, buyer, address parts and amounts in cents.
    let tb = intake::parse(SalesChannel::Taobao, TAOBAO).unwrap().remove(0).unwrap();
    assert_eq!(tb.external_id, "2865530871004518");
    assert_eq!((tb.paid_cents, tb.shipping_cents), (25_800, 0));
    assert_eq!(tb.lines.len(), 2);
    assert_eq!((tb.lines[0].sku_code.as_str(), tb.lines[0].qty, tb.lines[0].list_cents), ("TSHIRT-RED-XL", 2, 19_800));
    assert_eq!(tb.lines[1].paid_cents, Some(8_657));
    assert_eq!(tb.address.province, "广东省");
    assert_eq!(tb.remark, "请尽快发货");

    let jd = intake::parse(SalesChannel::Jd, JD).unwrap().remove(0).unwrap();
    assert_eq!(jd.external_id, "301248877120");
    assert_eq!(jd.paid_cents, 42_900);
    assert_eq!(jd.lines.iter().map(|l| l.list_cents).collect::<Vec<_>>(), vec![39_900, 6_000]);
    assert_eq!(jd.address.city, "北京市");

    let dy = intake::parse(SalesChannel::Douyin, DOUYIN).unwrap().remove(0).unwrap();
    assert_eq!(dy.external_id, "6932118820016654210");
    assert_eq!((dy.paid_cents, dy.lines[0].qty, dy.lines[0].list_cents), (14_900, 3, 15_900));
    assert_eq!(dy.address.district, "余杭区");

    // JD gives no line payments: the 30.00 discount is allocated pro rata, summing exactly.
    let mut w = World::new(2, 10);
    let id = w.import_parsed(&jd);
    let o = w.get(id);
    assert_eq!(o.lines.iter().map(|l| l.allocated_cents).collect::<Vec<_>>(), vec![37_292, 5_608]);
    assert_eq!(o.lines.iter().map(|l| l.allocated_cents).sum::<i64>(), 42_900);
    w.import_parsed(&dy);
    w.finish();
}

#[test]
fn malformed_payloads_name_the_wrong_field_and_batches_import_the_rest() {
    // Each malformed payload is refused with the path of the wrong field; in a batch the bad
    // element is reported with its index and the good ones still parse.
    let check = |channel: SalesChannel, text: &str, path: &str| {
        let error = intake::parse(channel, text).unwrap().remove(0).unwrap_err();
        assert_eq!(error.path, path, "{text}: {error}");
    };
    check(SalesChannel::Taobao, &TAOBAO.replace(r#""num": 2"#, r#""num": 0"#), "orders.order[0].num");
    check(SalesChannel::Taobao, &TAOBAO.replace(r#""payment": "258.00""#, r#""payment": "258.001""#), "payment");
    check(SalesChannel::Taobao, &TAOBAO.replace(r#""tid""#, r#""tid_x""#), "tid");
    check(SalesChannel::Jd, &JD.replace(r#""jdPrice": "60.00""#, r#""jdPrice": "sixty""#), "itemInfoList[1].jdPrice");
    check(SalesChannel::Jd, &JD.replace(r#""itemTotal": "1"}"#, r#""itemTotal": "-1"}"#), "itemInfoList[0].itemTotal");
    check(
        SalesChannel::Douyin,
        &DOUYIN.replace(r#""pay_amount": 14900,"#, r#""pay_amount": "14.9","#),
        "shop_order_detail.pay_amount",
    );
    check(
        SalesChannel::Douyin,
        &DOUYIN.replace(r#""out_sku_id": "MUG-WHT""#, r#""out_sku_id": """#),
        "shop_order_detail.sku_order_list[0].out_sku_id",
    );
    check(SalesChannel::Native, r#"{"order_id": "x", "address": {}, "lines": []}"#, "lines");
    check(
        SalesChannel::Native,
        &native("N", "b", &[("PEN", 1, 100)], 0)
            .replace(r#""shipping_cents": 0"#, r#""shipping_cents": 0, "paid_cents": 7"#),
        "paid_cents",
    );
    assert_eq!(intake::parse(SalesChannel::Taobao, "{not json").unwrap_err().path, "$");

    let batch = format!(
        "[{}, {}, {}]",
        native("B-1", "x", &[("PEN", 1, 100)], 0),
        r#"{"order_id": 5}"#,
        native("B-3", "y", &[("MUG-WHT", 2, 300)], 100)
    );
    let results = intake::parse(SalesChannel::Native, &batch).unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    let error = results[1].as_ref().unwrap_err();
    assert_eq!((error.index, error.path.as_str()), (Some(1), "address"));
    assert_eq!(error.to_string(), "[1].address: missing");

    // An unknown SKU code is refused at resolution with the line's path.
    let mut order = results[0].clone().unwrap();
    order.lines[0].sku_code = "NOPE".into();
    let w = World::new(1, 0);
    let error = order.resolve(|c| w.desk.codes.get(c).copied()).unwrap_err();
    assert_eq!(error.path, "lines[0].sku");
}

#[test]
fn reimporting_a_channel_order_is_idempotent() {
    // The same channel order imported twice is one order; the second import changes nothing and
    // is not journaled.
    let mut w = World::new(2, 10);
    let first = w.import(SalesChannel::Taobao, TAOBAO);
    let journal = w.engine.journal().len();
    let second = w.import(SalesChannel::Taobao, TAOBAO);
    assert_eq!(first, second);
    assert!(w.events.is_empty());
    assert_eq!(w.engine.journal().len(), journal);
    let total: usize = w.engine.partitions().iter().map(|p| p.orders().len()).sum();
    assert_eq!(total, 1);
    w.finish();
}

#[test]
fn audit_rules_hold_orders_with_the_rule_names() {
    // Orders tripping audit rules go on hold naming every rule; an operator approves or rejects;
    // clean orders are approved automatically; the velocity rule counts a buyer's recent orders.
    let mut w = World::new(1, 100);
    let big = w.import(SalesChannel::Native, &native("A-1", "fraudster", &[("PEN", 1, 200_000)], 0));
    assert_eq!(w.get(big).status, OrderStatus::OnHold);
    assert_eq!(w.get(big).holds, vec!["big-order", "blacklisted-buyer"]);
    assert!(w.order_events().iter().any(|e| matches!(e, OrderEvent::Held { rules, .. } if rules.len() == 2)));

    let remark =
        native("A-2", "carl", &[("PEN", 1, 100)], 0).replace(r#""remark": """#, r#""remark": "will ask for a refund""#);
    let held = w.import(SalesChannel::Native, &remark);
    assert_eq!(w.get(held).holds, vec!["urgent-remark"]);
    let incomplete = native("A-3", "dora", &[("PEN", 1, 100)], 0).replace(r#""phone": "555""#, r#""phone": """#);
    let incomplete = w.import(SalesChannel::Native, &incomplete);
    assert_eq!(w.get(incomplete).holds, vec!["address-incomplete"]);

    w.order(OrderCommand::Approve { order: held }).unwrap();
    assert_eq!(w.get(held).status, OrderStatus::Approved);
    assert!(w.get(held).holds.is_empty());
    w.order(OrderCommand::Reject { order: big, reason: "fraud".into() }).unwrap();
    assert_eq!(w.get(big).status, OrderStatus::Cancelled);
    // On hold, an order cannot be allocated.
    assert_eq!(w.allocate(incomplete), Allocated::NotWaiting);

    // Velocity: the 4th order of one buyer within the hour is held, one later is not.
    let ids: Vec<OrderId> = (0..4)
        .map(|i| w.import(SalesChannel::Native, &native(&format!("V-{i}"), "eve", &[("PEN", 1, 100)], 0)))
        .collect();
    assert_eq!(ids.iter().map(|id| w.get(*id).status).collect::<Vec<_>>()[3], OrderStatus::OnHold);
    assert_eq!(w.get(ids[3]).holds, vec!["velocity"]);
    assert_eq!(w.get(ids[2]).status, OrderStatus::Approved);
    w.now += 3_600_001;
    let later = w.import(SalesChannel::Native, &native("V-9", "eve", &[("PEN", 1, 100)], 0));
    assert_eq!(w.get(later).status, OrderStatus::Approved);

    // Manual hold and release.
    w.order(OrderCommand::Hold { order: later, reason: "call buyer".into() }).unwrap();
    assert_eq!(w.get(later).holds, vec!["manual: call buyer"]);
    // A reload replaces the rules: with no audit rules, nothing is held.
    w.order(OrderCommand::SetAuditRules(Default::default())).unwrap();
    let free = w.import(SalesChannel::Native, &native("A-9", "fraudster", &[("PEN", 1, 200_000)], 0));
    assert_eq!(w.get(free).status, OrderStatus::Approved);
    // Invalid rules are refused with the reason.
    let bad = RulesFile::parse("[[audit.rule]]\nname = \"x\"\nkind = \"amount_above\"\n");
    assert!(bad.unwrap_err().contains("cents must be > 0"));
    w.finish();
}

#[test]
fn lines_split_over_warehouses_make_several_shipments_and_kits_deduct_components() {
    // SKU PEN is only in warehouse 2 and MUG only in warehouse 1: two shipments, each with its
    // warehouse's items. A kit line reserves its components.
    let mut w = World::new(2, 0);
    w.receive(5, 2, 5);
    w.receive(4, 1, 5);
    w.receive(3, 1, 10);
    w.ok(Command::DefineKit {
        id: SkuId(6),
        code: "GIFT".into(),
        components: vec![KitComponent { sku: SkuId(3), qty: 2 }, KitComponent { sku: SkuId(4), qty: 1 }],
    });
    w.desk.learn_codes(&w.engine);
    let id = w.import(
        SalesChannel::Native,
        &native("S-1", "fay", &[("PEN", 2, 100), ("MUG-WHT", 1, 500), ("GIFT", 2, 900)], 0),
    );
    assert!(matches!(w.allocate(id), Allocated::Full { shipments: 2, .. }));
    let o = w.get(id);
    let by_warehouse: Vec<(u16, Vec<(u32, u32)>)> =
        o.shipments.iter().map(|s| (s.warehouse.0, s.items.iter().map(|a| (a.sku.0, a.qty)).collect())).collect();
    assert!(by_warehouse.contains(&(2, vec![(5, 2)])), "{by_warehouse:?}");
    assert_eq!(w.stock(3), (10, 4, 6), "2 kits x 2 socks");
    assert_eq!(w.stock(4), (5, 3, 2), "1 mug + 2 kits x 1 mug");
    w.ship_all(id, 1);
    assert_eq!(w.get(id).status, OrderStatus::Shipped);
    assert_eq!(w.stock(3), (6, 0, 6));
    w.finish();
}

#[test]
fn unfillable_orders_park_retry_when_stock_arrives_and_cancel_after_a_time() {
    // With no stock the default rule parks the order; it is allocated on retry once stock arrives.
    // A "cancel" rule parks with a deadline and a Tick past it cancels the order. A "partial" rule
    // ships what is there and parks the rest.
    let mut w = World::new(2, 0);
    let id = w.import(SalesChannel::Native, &native("U-1", "gus", &[("PEN", 3, 100)], 0));
    assert_eq!(w.allocate(id), Allocated::Parked);
    assert_eq!(w.get(id).parked_since_ms, Some(1_000));
    w.receive(5, 1, 3);
    let mut out = Vec::new();
    let results = w.desk.retry_parked(&mut w.engine, w.now, &mut out).unwrap();
    assert!(matches!(results[0].1, Allocated::Full { .. }));
    assert_eq!(w.get(id).parked_since_ms, None);

    let rules = r#"
[routing]
[[routing.rule]]
name = "douyin-partial"
channels = ["douyin"]
partial = true
[[routing.rule]]
name = "jd-cancel"
channels = ["jd"]
on_unfillable = "cancel"
cancel_after_ms = 5000
"#;
    for c in RulesFile::parse(rules).unwrap().commands() {
        w.order(c).unwrap();
    }
    let jd = w.import(SalesChannel::Jd, JD);
    assert_eq!(w.allocate(jd), Allocated::Parked);
    assert_eq!(w.get(jd).parked_cancel_at_ms, Some(6_000));
    w.now = 6_000;
    w.ok(Command::Tick { budget: 100 });
    assert_eq!(w.get(jd).status, OrderStatus::Cancelled);
    assert_eq!(w.get(jd).cancel_reason.as_deref(), Some("unfillable"));

    w.receive(4, 1, 2);
    let dy = w.import(SalesChannel::Douyin, DOUYIN);
    assert!(matches!(w.allocate(dy), Allocated::Partial { .. }));
    let o = w.get(dy);
    assert_eq!((o.lines[0].allocated_qty, o.status), (2, OrderStatus::Allocated));
    assert!(o.parked_since_ms.is_some());
    w.receive(4, 2, 1);
    let mut out = Vec::new();
    w.desk.retry_parked(&mut w.engine, w.now, &mut out).unwrap();
    let o = w.get(dy);
    assert_eq!((o.lines[0].allocated_qty, o.shipments.len()), (3, 2));
    w.finish();
}

#[test]
fn nearest_warehouse_routing_serves_from_the_nearest_warehouse_with_stock() {
    // A "nearest" rule with a region distance table: a buyer in Guangdong is served from the
    // south warehouse (though the north one has priority), then from the next nearest (west) once
    // the south one is empty, then from the north one when it alone can ship the whole order; a
    // line no single warehouse can fill is split nearest first (not most stock first).
    let mut w = World::new(2, 0);
    for (id, region, priority) in [(1u16, "north", 1u16), (2, "south", 2), (3, "west", 3)] {
        w.ok(Command::DefineWarehouse { id: WarehouseId(id), code: format!("W{id}"), region: region.into(), priority });
    }
    let rules = r#"
[routing]
[[routing.rule]]
name = "nearest-first"
sort = "nearest"
[[routing.distance]]
buyer_region = "广东省"
warehouse_region = "south"
distance = 100
[[routing.distance]]
buyer_region = "广东省"
warehouse_region = "west"
distance = 900
[[routing.distance]]
buyer_region = "广东省"
warehouse_region = "north"
distance = 2000
"#;
    for c in RulesFile::parse(rules).unwrap().commands() {
        w.order(c).unwrap();
    }
    w.receive(5, 1, 10);
    w.receive(5, 2, 2);
    w.receive(5, 3, 5);
    let warehouses = |w: &World, id: OrderId| -> Vec<(u16, u32)> {
        w.get(id).shipments.iter().flat_map(|s| s.items.iter().map(|a| (a.warehouse.0, a.qty))).collect()
    };
    let first = w.import(SalesChannel::Native, &native("N-1", "n1", &[("PEN", 2, 100)], 0));
    assert!(matches!(w.allocate(first), Allocated::Full { shipments: 1, .. }));
    assert_eq!(warehouses(&w, first), vec![(2, 2)], "the nearest warehouse");
    let second = w.import(SalesChannel::Native, &native("N-2", "n2", &[("PEN", 2, 100)], 0));
    w.allocate(second);
    assert_eq!(warehouses(&w, second), vec![(3, 2)], "south is empty: the next nearest");
    let third = w.import(SalesChannel::Native, &native("N-3", "n3", &[("PEN", 4, 100)], 0));
    w.allocate(third);
    assert_eq!(warehouses(&w, third), vec![(1, 4)], "only the farthest can ship all four in one parcel");
    let fourth = w.import(SalesChannel::Native, &native("N-4", "n4", &[("PEN", 8, 100)], 0));
    assert!(matches!(w.allocate(fourth), Allocated::Full { shipments: 2, .. }));
    assert_eq!(warehouses(&w, fourth), vec![(3, 3), (1, 5)], "split nearest first");
    assert_eq!(w.stock(5), (17, 16, 1));
    w.finish();
}

#[test]
fn orders_of_one_buyer_merge_into_one_shipment_and_split_back() {
    // Two approved orders with the same buyer, shop and address merge; allocation of the leader
    // reserves both in one shipment; statuses follow the leader. Split undoes a merge.
    let mut w = World::new(1, 10);
    let a = w.import(SalesChannel::Native, &native("M-1", "hal", &[("PEN", 1, 100)], 0));
    let b = w.import(SalesChannel::Native, &native("M-2", "hal", &[("MUG-WHT", 1, 500)], 0));
    let c = w.import(SalesChannel::Native, &native("M-3", "ivy", &[("MUG-WHT", 1, 500)], 0));
    assert!(matches!(w.refused(OrderCommand::Merge { orders: vec![a, c] }), EngineError::InvalidOrder { .. }));
    w.order(OrderCommand::Merge { orders: vec![a, b] }).unwrap();
    w.order(OrderCommand::Split { order: a }).unwrap();
    assert_eq!(w.get(b).merged_into, None);
    w.order(OrderCommand::Merge { orders: vec![a, b] }).unwrap();
    assert_eq!(w.allocate(b), Allocated::NotWaiting, "a follower is allocated with its leader");
    assert!(matches!(w.allocate(a), Allocated::Full { shipments: 1, .. }));
    let shipment = &w.get(a).shipments[0];
    assert_eq!(shipment.items.len(), 2);
    assert_eq!(w.get(b).status, OrderStatus::Allocated);
    w.ship_all(a, 1);
    assert_eq!(w.get(b).status, OrderStatus::Shipped);
    w.finish();
}

#[test]
fn pick_lists_follow_the_s_shaped_walk() {
    // Bin locations per SKU x warehouse order the pick list: aisle 1 bays ascending, aisle 2 bays
    // descending; SKUs without a bin come last. Waves take shipments of one warehouse only.
    let mut w = World::new(1, 10);
    for (sku, bin) in [(0, "A02-03-1"), (1, "A01-09-1"), (2, "A02-11-1"), (3, "A01-02-2")] {
        w.order(OrderCommand::SetBinLocation {
            warehouse: WarehouseId(1),
            sku: SkuId(sku),
            bin: Bin::parse(bin).unwrap(),
        })
        .unwrap();
    }
    let id = w.import(
        SalesChannel::Native,
        &native(
            "W-1",
            "joe",
            &[
                ("TSHIRT-RED-XL", 1, 100),
                ("CAP-BLK", 1, 100),
                ("SNEAKER-42", 1, 100),
                ("SOCKS-3P", 1, 100),
                ("PEN", 1, 100),
            ],
            0,
        ),
    );
    w.allocate(id);
    assert_eq!(w.create_wave(7, 2).unwrap_err(), EngineError::NothingToWave { warehouse: WarehouseId(2) });
    w.create_wave(7, 1).unwrap();
    let order: Vec<u32> = w.wave(7).pick_list.iter().map(|p| p.sku.0).collect();
    assert_eq!(order, vec![3, 1, 2, 0, 5]);
    assert_eq!(
        w.refused(OrderCommand::ScanPick { wave: 7, sku: SkuId(3), qty: 2 }),
        EngineError::OverPick { wave: 7, sku: SkuId(3), requested: 2, remaining: 1 }
    );
    assert_eq!(
        w.refused(OrderCommand::ScanPick { wave: 8, sku: SkuId(3), qty: 1 }),
        EngineError::UnknownWave { wave: 8 }
    );
    w.finish();
}

#[test]
fn carriers_are_chosen_by_rules_and_waybill_ranges_run_out() {
    // A heavy or cash-on-delivery parcel goes to SF (YTO takes neither); YTO's four-number range
    // runs out with a typed error on the fifth pack (one partition: it issues the whole range).
    let mut w = World::new(1, 100);
    w.order(OrderCommand::SetSkuProfile { sku: SkuId(2), weight_g: 4_000 }).unwrap();
    let heavy = w.import(SalesChannel::Native, &native("C-1", "kim", &[("SNEAKER-42", 1, 100)], 0));
    let cod =
        native("C-2", "lee", &[("PEN", 1, 100)], 0).replace(r#""remark""#, r#""cash_on_delivery": true, "remark""#);
    let cod = w.import(SalesChannel::Native, &cod);
    let light: Vec<OrderId> = (0..5)
        .map(|i| w.import(SalesChannel::Native, &native(&format!("C-L{i}"), &format!("mo{i}"), &[("PEN", 1, 100)], 0)))
        .collect();
    for id in [heavy, cod].iter().chain(&light) {
        w.allocate(*id);
    }
    assert_eq!(w.get(heavy).shipments[0].carrier.as_deref(), Some("SF"));
    assert_eq!(w.get(cod).shipments[0].carrier.as_deref(), Some("SF"));
    assert_eq!(w.get(light[0]).shipments[0].carrier.as_deref(), Some("YTO"));
    w.create_wave(1, 1).unwrap();
    // A supervisor releases the wave unscanned (the scanner is down): logged with who and why.
    assert!(matches!(
        w.refused(OrderCommand::OverridePick { wave: 1, supervisor: " ".into(), reason: "scanner down".into() }),
        EngineError::InvalidWave { .. }
    ));
    let events = w
        .order(OrderCommand::OverridePick { wave: 1, supervisor: "wang".into(), reason: "scanner down".into() })
        .unwrap();
    assert!(events.iter().any(|e| matches!(e,
        Event::Order(OrderEvent::PickOverridden { supervisor, unscanned: 7, .. }) if supervisor == "wang")));
    assert!(matches!(
        w.refused(OrderCommand::OverridePick { wave: 1, supervisor: "wang".into(), reason: "again".into() }),
        EngineError::InvalidWave { .. }
    ));
    for (i, id) in light[..4].iter().enumerate() {
        w.order(OrderCommand::Pack { shipment: w.get(*id).shipments[0].id }).unwrap();
        assert_eq!(w.get(*id).shipments[0].waybill, Some(format!("YT{}", 5000 + i)));
    }
    let fifth = w.get(light[4]).shipments[0].id;
    assert_eq!(
        w.refused(OrderCommand::Pack { shipment: fifth }),
        EngineError::WaybillRangeExhausted { carrier: "YTO".into() }
    );
    w.order(OrderCommand::Pack { shipment: w.get(heavy).shipments[0].id }).unwrap();
    assert_eq!(w.get(heavy).shipments[0].waybill.as_deref(), Some("SF1000"));
    w.finish();
}

#[test]
fn partitions_never_issue_the_same_waybill_number() {
    // Each partition issues its own stripe of a carrier's range (n % partitions == partition), so
    // packs in different partitions never collide; a partition whose stripe is used up refuses
    // with a typed error while the other still issues.
    let mut w = World::new(2, 1_000);
    let rules = r#"
[carriers]
[[carriers.carrier]]
code = "ZT"
prefix = "ZT"
range_start = 10
range_end = 29
"#;
    for c in RulesFile::parse(rules).unwrap().commands() {
        w.order(c).unwrap();
    }
    let mut by_partition: [Vec<OrderId>; 2] = [Vec::new(), Vec::new()];
    let mut n = 0;
    while by_partition.iter().any(|orders| orders.len() < 11) {
        let id = w.import(SalesChannel::Native, &native(&format!("WB-{n}"), &format!("b{n}"), &[("PEN", 1, 100)], 0));
        assert!(matches!(w.allocate(id), Allocated::Full { .. }));
        by_partition[(id % 2) as usize].push(id);
        n += 1;
    }
    for p in 0..2u64 {
        w.picked_wave(40 + p, 1);
    }
    let mut issued: Vec<u64> = Vec::new();
    for (p, orders) in by_partition.iter().enumerate() {
        for (i, id) in orders.iter().enumerate() {
            let shipment = w.get(*id).shipments[0].id;
            if i < 10 {
                w.order(OrderCommand::Pack { shipment }).unwrap();
                let waybill = w.get(*id).shipments[0].waybill.clone().expect("issued");
                let number: u64 = waybill.strip_prefix("ZT").expect("prefix").parse().unwrap();
                assert_eq!(number % 2, p as u64, "partition {p} issued {number}");
                issued.push(number);
            } else {
                assert_eq!(
                    w.refused(OrderCommand::Pack { shipment }),
                    EngineError::WaybillRangeExhausted { carrier: "ZT".into() }
                );
            }
        }
    }
    issued.sort_unstable();
    assert_eq!(issued, (10..=29).collect::<Vec<u64>>(), "every number once, none twice");
    w.finish();
}

#[test]
fn tracking_alerts_fire_on_no_progress_and_late_delivery() {
    // A shipped parcel with no tracking for a day raises NoProgress once; tracking resets the
    // clock; one still undelivered after the 3-day SLA raises Late; a "delivered" scan delivers.
    let mut w = World::new(2, 10);
    let id = w.import(SalesChannel::Native, &native("T-1", "ned", &[("PEN", 1, 100)], 0));
    w.allocate(id);
    w.ship_all(id, 1);
    let shipment = w.get(id).shipments[0].id;
    let shipped = w.now;
    w.now = shipped + 43_200_000;
    w.order(OrderCommand::Track { shipment, code: "in_transit".into(), location: "Shenzhen hub".into() }).unwrap();
    w.now = shipped + 86_400_001;
    w.ok(Command::Tick { budget: 100 });
    assert!(w.order_events().is_empty(), "tracking reset the no-progress clock");
    w.now = shipped + 43_200_000 + 86_400_000;
    w.ok(Command::Tick { budget: 100 });
    assert_eq!(w.order_events(), vec![OrderEvent::Alert { shipment, kind: AlertKind::NoProgress, at_ms: w.now }]);
    w.now += 1;
    w.ok(Command::Tick { budget: 100 });
    assert!(w.order_events().is_empty(), "raised once");
    w.now = shipped + 259_200_000;
    w.ok(Command::Tick { budget: 100 });
    assert_eq!(w.order_events(), vec![OrderEvent::Alert { shipment, kind: AlertKind::Late, at_ms: w.now }]);
    w.order(OrderCommand::Track { shipment, code: "delivered".into(), location: String::new() }).unwrap();
    assert_eq!(w.get(id).status, OrderStatus::Delivered);
    w.finish();
}

#[test]
fn returns_put_stock_back_and_refund_allocated_amounts() {
    // A partial return of a delivered order: sellable units go back to stock, damaged ones to the
    // damaged bucket; refunds come from the allocated line amounts and add up exactly; claiming
    // more than was delivered is refused; a refund-only request refunds at once.
    let mut w = World::new(2, 10);
    let id = w.import(SalesChannel::Native, &native("R-1", "oli", &[("PEN", 3, 1_000), ("MUG-WHT", 1, 500)], 100));
    let o = w.get(id);
    assert_eq!(o.lines.iter().map(|l| l.allocated_cents).collect::<Vec<_>>(), vec![2_914, 486]);
    w.allocate(id);
    w.ship_all(id, 1);
    w.deliver_all(id);
    assert_eq!(w.stock(5), (7, 0, 7));
    w.order(OrderCommand::CreateAfterSale {
        order: id,
        kind: AfterSaleKind::Return,
        lines: vec![Line { sku: SkuId(5), qty: 1 }],
        reason: "too many".into(),
    })
    .unwrap();
    let ret = w.get(id).after_sales[0].clone();
    assert_eq!(ret.refund_cents(), 971);
    w.order(OrderCommand::ReceiveReturn { after_sale: ret.id, damaged: false }).unwrap();
    assert_eq!(w.stock(5), (8, 0, 8), "sellable unit back in stock");
    w.order(OrderCommand::CreateAfterSale {
        order: id,
        kind: AfterSaleKind::Return,
        lines: vec![Line { sku: SkuId(5), qty: 2 }],
        reason: "broken".into(),
    })
    .unwrap();
    let ret2 = w.get(id).after_sales[1].clone();
    w.order(OrderCommand::ReceiveReturn { after_sale: ret2.id, damaged: true }).unwrap();
    assert_eq!(w.damaged(5, 1), 2);
    let o = w.get(id);
    assert_eq!(o.lines[0].refunded_cents, 2_914, "every unit refunded gives back the line amount exactly");
    assert_eq!(
        w.refused(OrderCommand::CreateAfterSale {
            order: id,
            kind: AfterSaleKind::Refund,
            lines: vec![Line { sku: SkuId(5), qty: 1 }],
            reason: String::new()
        }),
        EngineError::ExceedsClaimable { order: id, sku: SkuId(5), requested: 1, claimable: 0 }
    );
    w.order(OrderCommand::CreateAfterSale {
        order: id,
        kind: AfterSaleKind::Refund,
        lines: vec![Line { sku: SkuId(4), qty: 1 }],
        reason: "late".into(),
    })
    .unwrap();
    assert_eq!(w.get(id).lines[1].refunded_cents, 486);
    assert_eq!(
        w.refused(OrderCommand::ReceiveReturn { after_sale: ret.id, damaged: false }),
        EngineError::IllegalTransition { order: id, state: "after_sale_not_awaiting_goods", action: "receive" }
    );
    w.finish();
}

#[test]
fn exchanges_ship_a_replacement() {
    // An exchange: the goods come back to stock, the coordinator reserves a replacement, which
    // ships as its own shipment; the order stays delivered and nothing is refunded.
    let mut w = World::new(2, 10);
    let id = w.import(SalesChannel::Native, &native("E-1", "pia", &[("CAP-BLK", 1, 2_000)], 0));
    w.allocate(id);
    w.ship_all(id, 1);
    w.deliver_all(id);
    w.order(OrderCommand::CreateAfterSale {
        order: id,
        kind: AfterSaleKind::Exchange,
        lines: vec![Line { sku: SkuId(1), qty: 1 }],
        reason: "size".into(),
    })
    .unwrap();
    let ex = w.get(id).after_sales[0].id;
    let events = w.order(OrderCommand::ReceiveReturn { after_sale: ex, damaged: false }).unwrap();
    let lines = events
        .iter()
        .find_map(|e| match e {
            Event::Order(OrderEvent::ReplacementNeeded { lines, .. }) => Some(lines.clone()),
            _ => None,
        })
        .expect("replacement needed");
    assert_eq!(w.stock(1), (10, 0, 10));
    let mut out = Vec::new();
    w.desk.allocate_replacement(&mut w.engine, w.now, id, ex, &lines, &mut out).unwrap();
    let replacement = w.get(id).after_sales[0].replacement.expect("replacement shipment");
    assert_eq!(w.stock(1), (10, 1, 9));
    let wave_id = w.wave_for(id, 3);
    w.picked_wave(wave_id, 1);
    w.order(OrderCommand::Pack { shipment: replacement }).unwrap();
    w.order(OrderCommand::Ship { shipment: replacement }).unwrap();
    let o = w.get(id);
    assert_eq!(o.status, OrderStatus::Delivered);
    assert_eq!(o.after_sales[0].status, AfterSaleStatus::Closed);
    assert_eq!(o.lines[0].refunded_cents, 0);
    assert_eq!(w.stock(1), (9, 0, 9));
    w.finish();
}

#[test]
fn order_commands_must_reach_the_owning_partition() {
    // A partition refuses an order command for an order it does not own.
    let mut p = Partition::new(1, 2, Limits::default());
    let mut out = Vec::new();
    let error = p
        .apply(&Envelope { now_ms: 1, command: Command::Order(OrderCommand::Approve { order: 4 }) }, &mut out)
        .unwrap_err();
    assert_eq!(error, EngineError::WrongOrderPartition { order: 4, owner: 0, this: 1 });
}

impl World {
    /// Apply an order command in its own partition only, as one durable write, and stop there: a
    /// crash before the stock commands its effect events ask for.
    fn order_then_crash(&mut self, command: OrderCommand) -> Vec<Event> {
        let p = command.partition(self.engine.partition_count()).expect("routed");
        let mut out = Vec::new();
        self.engine.apply_in(p, &Envelope { now_ms: self.now, command: Command::Order(command) }, &mut out).unwrap();
        out
    }

    /// What start-up reconciliation would apply, applied (each in its partition); answers it.
    fn reconcile(&mut self, orphans: bool) -> Vec<(u32, Command)> {
        let owed = {
            let partitions: Vec<&Partition> = self.engine.partitions().iter().collect();
            oms_engine::orders::reconcile::owed_stock_commands(&partitions, orphans)
        };
        for (p, command) in &owed {
            let mut out = Vec::new();
            self.engine.apply_in(*p, &Envelope { now_ms: self.now, command: command.clone() }, &mut out).unwrap();
        }
        owed
    }
}

#[test]
fn reconciliation_carries_out_stock_effects_a_crash_skipped() {
    // Each order command below is applied without the stock commands it implies (a crash between
    // the two writes); reconciliation finds what is owed from the order books and stock state,
    // carries it out, and a second pass owes nothing.
    let mut w = World::new(2, 10);
    // Cancel: the hold must go.
    let cancelled = w.import(SalesChannel::Native, &native("R-1", "r1", &[("PEN", 2, 100)], 0));
    w.allocate(cancelled);
    let events = w.order_then_crash(OrderCommand::Cancel { order: cancelled, reason: "buyer".into() });
    assert!(events.iter().any(|e| matches!(e, Event::Order(OrderEvent::ReleaseStock { .. }))));
    assert_eq!(w.stock(5), (10, 2, 8), "the crash left the hold");
    // Ship: the units must leave on-hand.
    let shipped = w.import(SalesChannel::Native, &native("R-2", "r2", &[("MUG-WHT", 3, 100)], 0));
    w.allocate(shipped);
    let s = w.get(shipped).shipments[0].id;
    w.picked_wave(w.wave_for(shipped, 1), 1);
    w.order(OrderCommand::Pack { shipment: s }).unwrap();
    w.order_then_crash(OrderCommand::Ship { shipment: s });
    assert_eq!(w.stock(4), (10, 3, 7));
    // Return: the units must come back, once.
    let returned = w.import(SalesChannel::Native, &native("R-3", "r3", &[("CAP-BLK", 2, 100)], 0));
    w.allocate(returned);
    w.ship_all(returned, 5);
    w.deliver_all(returned);
    w.order(OrderCommand::CreateAfterSale {
        order: returned,
        kind: AfterSaleKind::Return,
        lines: vec![Line { sku: SkuId(1), qty: 2 }],
        reason: String::new(),
    })
    .unwrap();
    let after_sale = w.get(returned).after_sales[0].id;
    w.order_then_crash(OrderCommand::ReceiveReturn { after_sale, damaged: false });
    assert_eq!(w.stock(1), (8, 0, 8));
    // An allocation that reserved and confirmed, then died before RecordAllocation.
    let orphaned = w.import(SalesChannel::Native, &native("R-4", "r4", &[("SOCKS-3P", 4, 100)], 0));
    let mut request = ReserveRequest {
        id: ReservationId(9_999),
        lines: vec![Line { sku: SkuId(3), qty: 4 }],
        ttl_ms: 60_000,
        idempotency_key: None,
        fingerprint: oms_engine::orders::allocation_key(orphaned, ReservationId(9_999)),
        customer: CustomerId(orphaned),
        channel: oms_engine::orders::desk::channel_id(SalesChannel::Native),
        campaign: None,
        part: oms_engine::command::PartInfo::SINGLE,
        prefer_warehouses: None,
    };
    w.ok(Command::Reserve(request.clone()));
    let orphan = match w.events.iter().find_map(|e| if let Event::Reserved { id, .. } = e { Some(*id) } else { None }) {
        Some(id) => id,
        None => panic!("reserved"),
    };
    w.ok(Command::Confirm { id: orphan });
    // A storefront's reservation for another customer is not the order desk's business, nor is
    // one whose customer id happens to equal the order id (same channel, no allocation key).
    request.id = ReservationId(10_000);
    request.customer = CustomerId(7);
    request.fingerprint = 0;
    w.ok(Command::Reserve(request.clone()));
    request.id = ReservationId(10_001);
    request.customer = CustomerId(orphaned);
    request.lines = vec![Line { sku: SkuId(3), qty: 1 }];
    w.ok(Command::Reserve(request));
    assert_eq!(w.stock(3), (10, 9, 1));

    // While serving (no orphan sweep), everything but the orphan is carried out.
    let owed = w.reconcile(false);
    assert_eq!(owed.len(), 3, "{owed:?}");
    assert_eq!(w.stock(5), (10, 0, 10), "cancelled order's hold released");
    assert_eq!(w.stock(4), (7, 0, 7), "shipped units left");
    assert_eq!(w.stock(1), (10, 0, 10), "returned units back");
    assert_eq!(w.stock(3), (10, 9, 1));
    // At start-up the orphaned allocation is released too; the storefront's holds stay.
    let owed = w.reconcile(true);
    assert_eq!(owed, vec![(3 % 2, Command::Release { id: orphan, cause: ReleaseCause::Cancel })]);
    assert_eq!(w.stock(3), (10, 5, 5));
    assert!(w.reconcile(true).is_empty(), "nothing owed twice");
    // A repeated restock changes nothing.
    let line = Command::Order(OrderCommand::Restock {
        after_sale,
        line_sku: SkuId(1),
        sku: SkuId(1),
        warehouse: WarehouseId(1),
        qty: 2,
        damaged: false,
    });
    assert!(w.ok(line).is_empty());
    assert_eq!(w.stock(1), (10, 0, 10));
    assert_eq!(w.get(orphaned).status, OrderStatus::Approved, "the order itself is left to be allocated");
    w.finish();
}

#[test]
fn a_tick_that_cancels_a_parked_order_releases_its_partial_hold() {
    // A partially allocated order parked with a deadline: the Tick that cancels it also releases
    // the units it held (the coordinator carries out the tick's effects).
    let mut w = World::new(2, 0);
    let rules = "[routing]\n[[routing.rule]]\nname = \"p\"\npartial = true\non_unfillable = \"cancel\"\ncancel_after_ms = 5000\n";
    for c in RulesFile::parse(rules).unwrap().commands() {
        w.order(c).unwrap();
    }
    w.receive(5, 1, 2);
    let id = w.import(SalesChannel::Native, &native("T-9", "t9", &[("PEN", 5, 100)], 0));
    assert!(matches!(w.allocate(id), Allocated::Partial { .. }));
    assert_eq!(w.stock(5), (2, 2, 0));
    w.now += 5_000;
    w.ok(Command::Tick { budget: 100 });
    assert_eq!(w.get(id).status, OrderStatus::Cancelled);
    assert_eq!(w.stock(5), (2, 0, 2), "the partial hold was released");
    w.finish();
}

/// The revision of `order` the marketplace would send: `edit` changes the parsed payload.
fn revision_of(w: &World, text: &str, channel: SalesChannel, edit: impl FnOnce(&mut ChannelOrder)) -> OrderCommand {
    let mut parsed = intake::parse(channel, text).unwrap().into_iter().next().unwrap().unwrap();
    edit(&mut parsed);
    let new = parsed.resolve(|code| SKUS.iter().position(|c| *c == code).map(|i| SkuId(i as u32))).unwrap();
    let _ = w;
    OrderCommand::Revise(Box::new(Revision { order: new, state: parsed.state }))
}

fn open_kinds(o: &Order) -> Vec<ExceptionKind> {
    o.open_exceptions().map(|e| e.kind).collect()
}

#[test]
fn a_changed_address_is_applied_before_packing_and_raised_after() {
    // Revise with a new address on an allocated order: applied (Revised event); the same revision
    // again changes nothing and logs nothing. After packing, another address change is put on the
    // exception list and the label's address stays. Replay rebuilds the same images.
    let mut w = World::new(2, 10);
    let id = w.import(SalesChannel::Taobao, TAOBAO);
    w.allocate(id);
    let moved = revision_of(&w, TAOBAO, SalesChannel::Taobao, |o| o.address.detail = "新地址 9 号".into());
    let events = w.order(moved.clone()).unwrap();
    assert!(events.iter().any(
        |e| matches!(e, Event::Order(OrderEvent::Revised { changes, .. }) if changes == &vec!["address".to_owned()])
    ));
    assert_eq!(w.get(id).address.detail, "新地址 9 号");
    assert!(w.order(moved).unwrap().is_empty(), "the same revision again is a no-op");
    // An import of the original payload is now a conflict, not a silent no-op.
    let original = intake::parse(SalesChannel::Taobao, TAOBAO).unwrap().remove(0).unwrap();
    let new = original.resolve(|code| SKUS.iter().position(|c| *c == code).map(|i| SkuId(i as u32))).unwrap();
    assert!(matches!(w.refused(OrderCommand::Import(new)), EngineError::OrderConflict { .. }));

    w.ship_all(id, 1);
    let late = revision_of(&w, TAOBAO, SalesChannel::Taobao, |o| o.address.detail = "又一个地址".into());
    w.order(late).unwrap();
    let o = w.get(id);
    assert_eq!(o.address.detail, "新地址 9 号", "the label's address stays");
    assert_eq!(open_kinds(&o), vec![ExceptionKind::AddressChanged]);
    assert!(o.exceptions[0].detail.contains("又一个地址"));
    w.finish();
}

#[test]
fn changed_lines_reprice_an_unallocated_order_and_raise_after_allocation() {
    // A held (unallocated) order takes the new lines with their amounts; an allocated one keeps
    // its lines and gets a `lines_changed` exception naming the change.
    let mut w = World::new(1, 10);
    let id = w.import(SalesChannel::Taobao, TAOBAO);
    w.order(OrderCommand::Hold { order: id, reason: "check".into() }).unwrap();
    let more = revision_of(&w, TAOBAO, SalesChannel::Taobao, |o| {
        o.lines[1].qty = 2;
        o.lines[1].list_cents = 20_000;
        o.lines[1].paid_cents = Some(17_314);
        o.paid_cents += 8_657;
    });
    w.order(more).unwrap();
    let o = w.get(id);
    assert_eq!(o.lines[1].qty, 2);
    assert_eq!(o.paid_cents, 25_800 + 8_657);
    assert_eq!(o.lines.iter().map(|l| l.allocated_cents).sum::<i64>(), o.goods_cents());
    assert!(o.exceptions.is_empty());

    w.order(OrderCommand::Approve { order: id }).unwrap();
    w.allocate(id);
    let fewer = revision_of(&w, TAOBAO, SalesChannel::Taobao, |o| o.lines[0].qty = 1);
    w.order(fewer).unwrap();
    let o = w.get(id);
    assert_eq!(o.lines[0].qty, 2, "allocated lines stay");
    assert_eq!(open_kinds(&o), vec![ExceptionKind::LinesChanged]);
    assert!(o.exceptions[0].detail.contains("TSHIRT-RED-XL 2 -> 1"), "{}", o.exceptions[0].detail);
    w.finish();
}

#[test]
fn a_revision_that_swaps_a_sku_moves_the_order_in_the_desk_index() {
    // The order desk's index files an order under its lines' SKUs and counts what it paid. A
    // revision of a held order that replaces a line's SKU and lowers the amount moves it from
    // the old SKU to the new one and corrects the counters; `finish` compares the index with one
    // rebuilt from the orders (and replays the log), so a stale entry or count fails here.
    let mut w = World::new(1, 10);
    let id = w.import(SalesChannel::Taobao, TAOBAO);
    w.order(OrderCommand::Hold { order: id, reason: "check".into() }).unwrap();
    let swapped = revision_of(&w, TAOBAO, SalesChannel::Taobao, |o| {
        o.lines[1].sku_code = "PEN".into();
        o.paid_cents -= 100;
        o.lines[1].paid_cents = o.lines[1].paid_cents.map(|c| c - 100);
    });
    w.order(swapped).unwrap();
    let o = w.get(id);
    assert!(o.lines.iter().any(|l| l.sku == SkuId(5)), "the revision took: {o:?}");
    w.order(OrderCommand::Cancel { order: id, reason: "buyer".into() }).unwrap();
    w.finish();
}

#[test]
fn a_platform_cancellation_cancels_before_shipment_and_raises_after() {
    // Cancelled on the platform while allocated: the order is cancelled and its stock released.
    // Cancelled after the parcel left: a `cancelled_after_shipment` exception, status unchanged.
    let mut w = World::new(2, 10);
    let id = w.import(SalesChannel::Jd, JD);
    w.allocate(id);
    assert_eq!(w.stock(2).1, 1, "one sneaker held");
    let cancelled = revision_of(&w, JD, SalesChannel::Jd, |o| o.state = ChannelState::Cancelled);
    let events = w.order(cancelled).unwrap();
    assert_eq!(w.get(id).status, OrderStatus::Cancelled);
    assert!(events.iter().any(|e| matches!(e, Event::Order(OrderEvent::ReleaseStock { .. }))));

    let other = JD.replace("301248877120", "301248877121");
    let id2 = w.import(SalesChannel::Jd, &other);
    w.allocate(id2);
    w.ship_all(id2, 1);
    let late = revision_of(&w, &other, SalesChannel::Jd, |o| o.state = ChannelState::Cancelled);
    w.order(late).unwrap();
    let o = w.get(id2);
    assert_eq!(o.status, OrderStatus::Shipped);
    assert_eq!(open_kinds(&o), vec![ExceptionKind::CancelledAfterShipment]);
    w.finish();
}

#[test]
fn a_refund_request_holds_an_unallocated_order_and_goes_on_the_list() {
    // An approved order with a refund request on one line (Taobao `refund_status`) is held and
    // gets a `refund_requested` exception; the desk resolves it by index; resolving twice is a
    // no-op; a bad index is refused without a change.
    let mut w = World::new(1, 0);
    let id = w.import(SalesChannel::Taobao, TAOBAO);
    let refund = TAOBAO.replacen(
        r#""outer_sku_id": "CAP-BLK""#,
        r#""outer_sku_id": "CAP-BLK", "refund_status": "WAIT_SELLER_AGREE""#,
        1,
    );
    let revision = revision_of(&w, &refund, SalesChannel::Taobao, |_| {});
    w.order(revision).unwrap();
    let o = w.get(id);
    assert_eq!(o.status, OrderStatus::OnHold);
    assert_eq!(open_kinds(&o), vec![ExceptionKind::RefundRequested]);
    w.order(OrderCommand::ResolveException { order: id, index: 0 }).unwrap();
    assert!(w.get(id).open_exceptions().next().is_none());
    assert!(w.order(OrderCommand::ResolveException { order: id, index: 0 }).unwrap().is_empty());
    assert!(matches!(
        w.refused(OrderCommand::ResolveException { order: id, index: 5 }),
        EngineError::InvalidOrder { .. }
    ));
    w.finish();
}

#[test]
fn shipments_await_platform_confirmation_until_confirmed() {
    // A shipped marketplace parcel is listed as unconfirmed; a failed confirmation is raised once
    // (the same detail again is a no-op), and `ChannelConfirmed` resolves it and clears the list.
    // Native orders are never listed.
    let mut w = World::new(1, 10);
    let id = w.import(SalesChannel::Douyin, DOUYIN);
    w.allocate(id);
    w.ship_all(id, 1);
    let native_id = w.import(SalesChannel::Native, &native("N-9", "ann", &[("PEN", 1, 100)], 0));
    w.allocate(native_id);
    w.ship_all(native_id, 5);
    let shipment = w.get(id).shipments[0].id;
    let book = w.engine.partitions()[0].orders();
    assert_eq!(book.unconfirmed(None, 0, 10), vec![shipment]);
    assert!(book.unconfirmed(Some(SalesChannel::Taobao), 0, 10).is_empty());
    let fail = OrderCommand::RaiseException {
        order: id,
        kind: ExceptionKind::ShipmentConfirmation,
        detail: "throttled".into(),
        shipment: Some(shipment),
    };
    assert!(!w.order(fail.clone()).unwrap().is_empty());
    assert!(w.order(fail).unwrap().is_empty(), "the same open exception again changes nothing");
    w.order(OrderCommand::ChannelConfirmed { order: id, shipments: vec![shipment] }).unwrap();
    let o = w.get(id);
    assert!(o.shipments[0].channel_confirmed_at_ms.is_some());
    assert!(o.open_exceptions().next().is_none(), "confirmation resolves the exception");
    assert!(w.engine.partitions()[0].orders().unconfirmed(None, 0, 10).is_empty());
    assert!(w.order(OrderCommand::ChannelConfirmed { order: id, shipments: vec![shipment] }).unwrap().is_empty());
    w.finish();
}

#[test]
fn intake_reads_each_platforms_order_state() {
    // Trade states map to the engine's channel states; an unknown state is refused with its path.
    let state = |channel, text: &str| intake::parse(channel, text).unwrap().remove(0).map(|o| o.state);
    assert_eq!(state(SalesChannel::Taobao, TAOBAO), Ok(ChannelState::AwaitingShipment));
    let closed = TAOBAO.replace("WAIT_SELLER_SEND_GOODS", "TRADE_CLOSED_BY_TAOBAO");
    assert_eq!(state(SalesChannel::Taobao, &closed), Ok(ChannelState::Cancelled));
    let odd = TAOBAO.replace("WAIT_SELLER_SEND_GOODS", "SOMETHING_NEW");
    assert_eq!(state(SalesChannel::Taobao, &odd).unwrap_err().path, "status");
    assert_eq!(
        state(SalesChannel::Jd, &JD.replace("WAIT_SELLER_STOCK_OUT", "LOCKED")),
        Ok(ChannelState::RefundRequested)
    );
    assert_eq!(state(SalesChannel::Douyin, DOUYIN), Ok(ChannelState::AwaitingShipment));
    let shipped = DOUYIN.replace(r#""order_status": 2"#, r#""order_status": 3"#);
    assert_eq!(state(SalesChannel::Douyin, &shipped), Ok(ChannelState::Shipped));
}
