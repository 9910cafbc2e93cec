//! Bad input: every EngineError variant is reachable from commands, is returned as a typed error
//! (never a panic), emits no events and leaves the partition image unchanged.
mod common;

use std::collections::BTreeSet;

use common::*;
use oms_engine::command::KitComponent;
use oms_engine::error::ERROR_CODES;
use oms_engine::*;

const NOW: u64 = 3_000;

fn setup() -> Partition {
    // Partition 0 of 2 (owns even SKUs), at most 4 lines per reservation.
    let limits = Limits { max_lines: 4, ..Limits::default() };
    let mut p = Partition::new(0, 2, limits);
    let mut run = |now: u64, command: Command| {
        let mut out = Vec::new();
        let name = command.name();
        p.apply(&Envelope { now_ms: now, command }, &mut out).unwrap_or_else(|e| panic!("setup {name}: {e:?}"));
    };
    for w in [1, 2] {
        run(
            1_000,
            Command::DefineWarehouse { id: WarehouseId(w), code: format!("W{w}"), region: "eu".into(), priority: w },
        );
    }
    for sku in [0, 2, 6] {
        run(1_000, Command::DefineSku { id: SkuId(sku), code: format!("S{sku}"), low_stock_threshold: 1 });
    }
    run(1_000, Command::Receive { sku: SkuId(0), warehouse: WarehouseId(1), qty: 10 });
    run(1_000, Command::Receive { sku: SkuId(2), warehouse: WarehouseId(1), qty: 10 });
    run(1_000, Command::SetOnHand { sku: SkuId(6), warehouse: WarehouseId(2), on_hand: catalog::QUANTITY_LIMIT });
    run(
        1_000,
        Command::DefineKit { id: SkuId(4), code: "K".into(), components: vec![KitComponent { sku: SkuId(0), qty: 1 }] },
    );
    run(1_000, flash(7, 2, 1, 1, 1_000, 100_000));
    run(1_000, flash(9, 2, 1, 5, 50_000, 100_000));
    run(1_000, presale(8, 6, 1, 1, 0, 100_000, 10_000));
    run(
        1_000,
        Command::ExpectIncoming {
            po: PurchaseOrderId(1),
            sku: SkuId(6),
            warehouse: WarehouseId(1),
            qty: 5,
            eta_ms: 5_000,
        },
    );
    run(1_000, policy(1, 0, 0, &[]));
    let mut r1 = reserve(1, &[(0, 2)]);
    r1.ttl_ms = 1_000;
    run(1_000, Command::Reserve(r1));
    run(1_000, Command::Reserve(reserve(2, &[(0, 1)])));
    run(1_000, Command::Confirm { id: pid(2, 0) });
    run(1_000, Command::Ship { id: pid(2, 0) });
    run(1_000, Command::Reserve(campaign(reserve(3, &[(2, 1)]), 7, 1)));
    run(1_000, Command::Reserve(campaign(reserve(4, &[(6, 1)]), 8, 1)));
    run(NOW, Command::Tick { budget: 100 });
    run(NOW, Command::Reserve(reserve(5, &[(0, 1)])));
    let claim = Command::ClaimKey { key: *key_homed_at(0, 2).unwrap(), fingerprint: 11, id: pid(6, 1), ttl_ms: 60_000 };
    run(NOW, claim);
    assert!(p.check().is_clean());
    p
}

fn reserve(seq: u64, lines: &[(u32, u32)]) -> ReserveRequest {
    let mut r = request(seq, lines);
    r.id = pid(seq, 0);
    r
}

fn campaign(mut r: ReserveRequest, campaign: u32, customer: u64) -> ReserveRequest {
    r.campaign = Some(CampaignId(campaign));
    r.customer = CustomerId(customer);
    r
}

fn with(mut r: ReserveRequest, f: impl FnOnce(&mut ReserveRequest)) -> ReserveRequest {
    f(&mut r);
    r
}

/// Apply `command` to a fresh copy of the setup state; it must fail with `code`, unchanged image,
/// no events. Returns the code for the coverage check.
#[track_caller]
fn check(base: &Partition, command: Command, code: &str) -> String {
    let mut p = base.clone();
    let name = command.name();
    match apply_checked(&mut p, NOW, command) {
        Ok(ok) => panic!("{name} accepted, expected {code}: {ok:?}"),
        Err(e) => {
            assert_eq!(e.code(), code, "{name}: {e:?}");
            assert!(p.check().is_clean());
            e.code().to_owned()
        }
    }
}

#[test]
fn every_error_is_reachable_typed_and_changes_nothing() {
    let base = setup();
    let b = &base;
    let w = WarehouseId;
    let s = SkuId;
    let hit: BTreeSet<String> = [
        check(b, Command::Confirm { id: pid(1, 0) }, "reservation_expired"),
        check(b, Command::Ship { id: pid(2, 0) }, "invalid_reservation_state"),
        check(b, Command::Confirm { id: pid(99, 0) }, "unknown_reservation"),
        check(b, Command::Release { id: pid(99, 0), cause: ReleaseCause::Cancel }, "unknown_reservation"),
        check(b, Command::DefineSku { id: s(1), code: "X".into(), low_stock_threshold: 0 }, "wrong_partition"),
        check(b, Command::Reserve(reserve(10, &[(10, 1)])), "unknown_sku"),
        check(b, Command::Receive { sku: s(0), warehouse: w(9), qty: 1 }, "unknown_warehouse"),
        check(b, Command::Reserve(campaign(reserve(10, &[(0, 1)]), 55, 1)), "unknown_campaign"),
        check(b, Command::Reserve(reserve(10, &[(0, 0)])), "zero_quantity"),
        check(b, Command::Reserve(reserve(10, &[])), "no_lines"),
        check(b, Command::Reserve(reserve(10, &[(0, 1), (2, 1), (6, 1), (8, 1), (10, 1)])), "too_many_lines"),
        check(b, Command::Reserve(reserve(10, &[(0, 1), (0, 1)])), "duplicate_line"),
        check(b, Command::Reserve(reserve(10, &[(0, 100)])), "insufficient_stock"),
        check(b, Command::Reserve(with(reserve(10, &[(0, 1)]), |r| r.channel = ChannelId(1))), "channel_limit"),
        check(b, Command::Reserve(campaign(reserve(10, &[(2, 1)]), 7, 2)), "sold_out"),
        check(b, Command::Reserve(campaign(reserve(10, &[(2, 1)]), 7, 1)), "limit_exceeded"),
        check(b, Command::Reserve(campaign(reserve(10, &[(6, 1)]), 8, 2)), "sold_out"),
        check(b, Command::Reserve(campaign(reserve(10, &[(2, 1)]), 9, 1)), "campaign_not_open"),
        check(b, Command::Reserve(campaign(reserve(10, &[(0, 1)]), 7, 3)), "campaign_sku_mismatch"),
        check(b, Command::Reserve(with(reserve(10, &[(0, 1)]), |r| r.ttl_ms = 0)), "invalid_ttl"),
        check(b, Command::Reserve(with(reserve(10, &[(0, 1)]), |r| r.ttl_ms = u64::MAX)), "invalid_ttl"),
        check(b, Command::Reserve(reserve(5, &[(0, 1)])), "duplicate_reservation"),
        check(b, Command::Reserve(reserve(2, &[(0, 1)])), "duplicate_reservation"),
        check(b, Command::Reserve(with(reserve(10, &[(0, 1)]), |r| r.id = pid(10, 1))), "wrong_partition"),
        check(b, Command::SetOnHand { sku: s(0), warehouse: w(1), on_hand: 0 }, "below_committed"),
        check(b, Command::Adjust { sku: s(0), warehouse: w(1), delta: -9 }, "below_committed"),
        check(b, Command::SetBucket { sku: s(0), warehouse: w(1), bucket: Bucket::Damaged, qty: 9 }, "below_committed"),
        check(b, Command::Transfer { sku: s(0), from: w(1), to: w(2), qty: 100 }, "insufficient_in_warehouse"),
        check(b, Command::Transfer { sku: s(0), from: w(1), to: w(1), qty: 1 }, "same_warehouse"),
        check(b, Command::Receive { sku: s(4), warehouse: w(1), qty: 1 }, "kit_not_stocked"),
        check(b, Command::DefineKit { id: s(12), code: "K".into(), components: vec![] }, "invalid_kit"),
        check(
            b,
            Command::DefineKit { id: s(0), code: "K".into(), components: vec![KitComponent { sku: s(2), qty: 1 }] },
            "invalid_kit",
        ),
        check(b, flash(7, 2, 1, 1, 1_000, 100_000), "duplicate_campaign"),
        check(b, flash(11, 2, 0, 1, 1_000, 100_000), "invalid_campaign"),
        check(b, presale(11, 6, 1, 1, 0, 100_000, 10_000), "invalid_campaign"),
        check(b, policy(2, 20_000, 0, &[]), "invalid_ratio"),
        check(
            b,
            Command::ReceivePurchaseOrder { po: PurchaseOrderId(77), sku: s(6), qty: 1 },
            "unknown_purchase_order",
        ),
        check(
            b,
            Command::RescheduleIncoming { po: PurchaseOrderId(77), sku: s(6), eta_ms: 1 },
            "unknown_purchase_order",
        ),
        check(b, Command::DefineSku { id: s(20), code: String::new(), low_stock_threshold: 0 }, "invalid_code"),
        check(
            b,
            Command::DefineWarehouse { id: w(3), code: "x".repeat(65), region: "eu".into(), priority: 0 },
            "invalid_code",
        ),
        check(b, Command::Receive { sku: s(6), warehouse: w(2), qty: 1 }, "quantity_overflow"),
        check(
            b,
            Command::SetOnHand { sku: s(0), warehouse: w(1), on_hand: catalog::QUANTITY_LIMIT + 1 },
            "quantity_overflow",
        ),
        check(b, Command::SetOnHand { sku: s(0), warehouse: w(1), on_hand: u64::MAX }, "quantity_overflow"),
        check(
            b,
            Command::SetBucket { sku: s(0), warehouse: w(1), bucket: Bucket::Safety, qty: u64::MAX },
            "quantity_overflow",
        ),
        // Codes people read must not hide what they show: NUL, a bidi override, a zero-width
        // space, a newline (SKU, warehouse and region codes).
        check(b, Command::DefineSku { id: s(20), code: "MUG\0WHT".into(), low_stock_threshold: 0 }, "invalid_code"),
        check(
            b,
            Command::DefineSku { id: s(20), code: "MUG-\u{202E}TWH".into(), low_stock_threshold: 0 },
            "invalid_code",
        ),
        check(b, Command::DefineKit { id: s(20), code: "KIT\u{200B}".into(), components: vec![] }, "invalid_code"),
        check(
            b,
            Command::DefineWarehouse { id: w(3), code: "SH\nBJ".into(), region: "eu".into(), priority: 0 },
            "invalid_code",
        ),
        check(
            b,
            Command::DefineWarehouse { id: w(3), code: "SH2".into(), region: "e\u{2066}u".into(), priority: 0 },
            "invalid_code",
        ),
        check(b, Command::ReturnToStock { sku: s(6), warehouse: w(2), qty: 1, damaged: true }, "quantity_overflow"),
        check(b, Command::PayBalance { id: pid(5, 0) }, "invalid_reservation_state"),
        // Display names end up in terminals and labels: no control characters, bounded length.
        check(b, Command::NameSku { sku: s(0), name: "Mug\u{1b}[2J".into() }, "invalid_name"),
        check(b, Command::NameWarehouse { warehouse: w(1), name: "x".repeat(257) }, "invalid_name"),
        check(b, Command::Confirm { id: pid(4, 0) }, "invalid_reservation_state"),
        // The key claimed in setup, now with another request (fingerprint), as a claim and as a
        // reservation whose lines live in the key's home.
        check(
            b,
            Command::ClaimKey { key: *key_homed_at(0, 2).unwrap(), fingerprint: 12, id: pid(7, 1), ttl_ms: 60_000 },
            "idempotency_key_reused",
        ),
        check(
            b,
            Command::Reserve(with(reserve(7, &[(0, 1)]), |r| {
                r.idempotency_key = key_homed_at(0, 2);
                r.fingerprint = 13;
            })),
            "idempotency_key_reused",
        ),
        check(
            b,
            Command::DefineSku { id: s(u32::MAX - 1), code: "HUGE".into(), low_stock_threshold: 0 },
            "sku_id_out_of_range",
        ),
        check(
            b,
            Command::DefineKit { id: s(SKU_ID_LIMIT), code: "K".into(), components: vec![] },
            "sku_id_out_of_range",
        ),
    ]
    .into_iter()
    .collect();
    // Every code the wire knows, except the order lifecycle's (reached in tests/orders.rs): a new
    // stock error added to ERROR_CODES must be reached here too.
    let position = |name: &str| ERROR_CODES.iter().position(|c| *c == name).expect("code listed");
    let orders = position("unknown_order")..=position("invalid_rules");
    let all: Vec<&str> = ERROR_CODES
        .iter()
        .enumerate()
        .filter(|(i, c)| !orders.contains(i) && **c != "not_picked")
        .map(|(_, c)| *c)
        .collect();
    let missing: Vec<_> = all.iter().filter(|c| !hit.contains(**c)).collect();
    assert!(missing.is_empty(), "error variants never reached: {missing:?}");
}

#[test]
fn sharded_engine_refusals_change_nothing() {
    // Through the ShardedEngine (2 partitions): routing-level refusals (bad reservation ids, unknown
    // campaign, kit definitions) leave every partition image as it was.
    let mut sim = Sim::new(2);
    sim.sku(0, 0);
    sim.sku(1, 0);
    sim.receive(0, 1, 5);
    let cases = [
        (Command::Confirm { id: ReservationId(5) }, "unknown_reservation"),
        (Command::Confirm { id: ReservationId(u64::MAX) }, "unknown_reservation"),
        (Command::Reserve(with(request(3, &[(0, 1)]), |r| r.campaign = Some(CampaignId(4)))), "unknown_campaign"),
        (Command::Reserve(with(request(3, &[(0, 1)]), |r| r.id = pid(3, 1))), "unknown_reservation"),
        (Command::Reserve(request(3, &[(0, 9)])), "insufficient_stock"),
        (Command::Reserve(request(3, &[(9, 1)])), "unknown_sku"),
        (
            Command::DefineKit {
                id: SkuId(4),
                code: "K".into(),
                components: vec![KitComponent { sku: SkuId(9), qty: 1 }],
            },
            "unknown_sku",
        ),
        (Command::Tick { budget: 0 }, ""),
    ];
    for (command, code) in cases {
        let before = sim.images();
        let name = command.name();
        match sim.run(command) {
            Err(e) => assert_eq!(e.code(), code, "{name}: {e:?}"),
            Ok(events) => assert!(code.is_empty() && events.is_empty(), "{name} accepted"),
        }
        assert_eq!(sim.images(), before, "{name} changed state");
    }
}
