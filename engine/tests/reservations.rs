//! Reservations: warehouse choice, all-or-nothing, confirm/release/expiry/ship, idempotent retries.
mod common;

use common::*;
use oms_engine::event::{Event, MovementKind, ReleaseReason};
use oms_engine::*;

/// One allocation scenario: stock per (sku, warehouse), a request, and what must happen.
/// Checks the allocations exactly, and that a refusal leaves every SKU's stock untouched.
#[track_caller]
fn check(stock: &[(u32, u16, u32)], lines: &[(u32, u32)], expected: Result<Vec<(u32, u16, u32)>, &str>) {
    let mut sim = Sim::new(1);
    for sku in 0..4 {
        sim.sku(sku, 0);
    }
    for &(sku, wh, qty) in stock {
        sim.receive(sku, wh, qty);
    }
    let before: Vec<_> = (0..4).map(|s| sim.stock(s)).collect();
    let result = sim.reserve(lines);
    match (result, expected) {
        (Ok((_, mut got)), Ok(want)) => {
            let mut want: Vec<_> = want.into_iter().map(|(s, w, q)| alloc(s, w, q)).collect();
            got.sort_by_key(|a| (a.sku, a.warehouse));
            want.sort_by_key(|a| (a.sku, a.warehouse));
            assert_eq!(got, want, "allocations for {lines:?} over {stock:?}");
            for &(sku, qty) in lines {
                let (_, reserved, _) = sim.totals(sku);
                assert_eq!(reserved, u64::from(qty));
            }
        }
        (Err(e), Err(code)) => {
            assert_eq!(e.code(), code, "error for {lines:?} over {stock:?}: {e:?}");
            let after: Vec<_> = (0..4).map(|s| sim.stock(s)).collect();
            assert_eq!(before, after, "a refused reserve changed stock");
        }
        (got, want) => panic!("{lines:?} over {stock:?}: got {got:?}, want {want:?}"),
    }
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn warehouse_choice_and_all_or_nothing() {
    // Data-driven: each row is stock, request, expected allocations (sku, warehouse, qty) or error code.
    // Both warehouses can fill everything: the higher-priority (lower number) warehouse 1 wins.
    check(&[(0, 1, 5), (0, 2, 5), (1, 1, 5), (1, 2, 5)], &[(0, 2), (1, 3)], Ok(vec![(0, 1, 2), (1, 1, 3)]));
    // Only warehouse 2 can ship the whole order: one shipment from it, even though it is lower priority.
    check(&[(0, 1, 5), (0, 2, 5), (1, 1, 1), (1, 2, 5)], &[(0, 2), (1, 3)], Ok(vec![(0, 2, 2), (1, 2, 3)]));
    // No single warehouse has 7 units: split, most available first.
    check(&[(0, 1, 3), (0, 2, 5)], &[(0, 7)], Ok(vec![(0, 2, 5), (0, 1, 2)]));
    // Exactly all units.
    check(&[(0, 1, 3), (0, 2, 5)], &[(0, 8)], Ok(vec![(0, 2, 5), (0, 1, 3)]));
    // One unit short over all warehouses: refused.
    check(&[(0, 1, 3), (0, 2, 5)], &[(0, 9)], Err("insufficient_stock"));
    // The second line is short: the first line is not held either.
    check(&[(0, 1, 5), (1, 1, 1)], &[(0, 1), (1, 2)], Err("insufficient_stock"));
    // A SKU with no stock at all.
    check(&[], &[(2, 1)], Err("insufficient_stock"));
    // Unknown SKU, duplicate line, zero quantity, no lines.
    check(&[(0, 1, 5)], &[(0, 1), (9, 1)], Err("unknown_sku"));
    check(&[(0, 1, 5)], &[(0, 1), (0, 1)], Err("duplicate_line"));
    check(&[(0, 1, 5)], &[(0, 0)], Err("zero_quantity"));
    check(&[(0, 1, 5)], &[], Err("no_lines"));
}

#[test]
fn confirm_keeps_units_release_and_expiry_return_them_ship_consumes() {
    // Walks a reservation through each ending and checks on_hand/reserved/available after each step.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.receive(0, 1, 10);
    // Confirm: survives its TTL, then ships.
    let (a, _) = sim.reserve(&[(0, 3)]).unwrap();
    assert_eq!(sim.totals(0), (10, 3, 7));
    sim.ok(Command::Confirm { id: a });
    sim.tick_to(sim.now + 10 * TTL);
    assert_eq!(sim.totals(0), (10, 3, 7), "a confirmed hold never expires");
    let events = sim.ok(Command::Ship { id: a });
    assert!(events.contains(&Event::Shipped { id: a }));
    assert_eq!(sim.totals(0), (7, 0, 7));
    // Release (cancel) returns the units.
    let (b, _) = sim.reserve(&[(0, 2)]).unwrap();
    assert_eq!(sim.totals(0), (7, 2, 5));
    let events = sim.ok(Command::Release { id: b, cause: ReleaseCause::Cancel });
    assert!(events.contains(&Event::Released { id: b, reason: ReleaseReason::Cancelled }));
    assert_eq!(sim.totals(0), (7, 0, 7));
    // Expiry at the TTL (a tick carrying a later time) returns them.
    let (c, _) = sim.reserve(&[(0, 4)]).unwrap();
    sim.tick_to(sim.now + TTL - 1);
    assert_eq!(sim.totals(0), (7, 4, 3), "not due yet");
    let events = sim.tick_to(sim.now + 1);
    assert!(events.contains(&Event::Released { id: c, reason: ReleaseReason::Expired }), "{events:?}");
    assert_eq!(sim.totals(0), (7, 0, 7));
    // Shipping twice, confirming a shipped one, releasing a released one: typed errors.
    assert_eq!(sim.run(Command::Ship { id: a }).unwrap_err().code(), "invalid_reservation_state");
    assert_eq!(sim.run(Command::Confirm { id: a }).unwrap_err().code(), "invalid_reservation_state");
    assert_eq!(
        sim.run(Command::Release { id: b, cause: ReleaseCause::Cancel }).unwrap_err().code(),
        "invalid_reservation_state"
    );
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn ship_needs_confirm_and_confirm_after_expiry_is_refused() {
    // Ship of a held (unpaid) hold is refused; confirm after the TTL is ReservationExpired both
    // before a tick swept it and after; confirming twice is harmless.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.receive(0, 1, 10);
    let (a, _) = sim.reserve(&[(0, 1)]).unwrap();
    assert_eq!(sim.run(Command::Ship { id: a }).unwrap_err().code(), "invalid_reservation_state");
    let created = sim.now;
    sim.advance(TTL);
    let err = sim.run(Command::Confirm { id: a }).unwrap_err();
    assert_eq!(err, EngineError::ReservationExpired { id: a, expired_at_ms: created + TTL }, "due but not swept");
    sim.tick_to(sim.now);
    let err = sim.run(Command::Confirm { id: a }).unwrap_err();
    assert_eq!(err, EngineError::ReservationExpired { id: a, expired_at_ms: created + TTL }, "swept");
    let (b, _) = sim.reserve(&[(0, 1)]).unwrap();
    sim.ok(Command::Confirm { id: b });
    sim.ok(Command::Confirm { id: b });
    assert_eq!(sim.totals(0), (10, 1, 9));
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn idempotent_retry_returns_first_answer_and_changes_nothing() {
    // On a bare Partition (the key's home): a retry of the same request under a new id answers
    // Reserved{replayed} with the first id and allocations, returns Outcome::Unchanged and leaves
    // the image identical; the same key with other lines is refused idempotency_key_reused and
    // changes nothing; the retry is still answered after the reservation ended; the same key
    // text in another scope (another API key) is another key.
    let mut p = Partition::new(0, 1, limits());
    let mut out = Vec::new();
    for command in [
        Command::DefineWarehouse { id: WarehouseId(1), code: "W1".into(), region: "eu".into(), priority: 1 },
        Command::DefineSku { id: SkuId(0), code: "A".into(), low_stock_threshold: 0 },
        Command::Receive { sku: SkuId(0), warehouse: WarehouseId(1), qty: 5 },
    ] {
        p.apply(&Envelope { now_ms: 10, command }, &mut out).unwrap();
    }
    let mut req = request(1, &[(0, 2)]);
    req.id = pid(1, 0);
    req.idempotency_key = key("order-1");
    req.fingerprint = oms_engine::routing::request_fingerprint(&req);
    let (outcome, first) = apply_checked(&mut p, 20, Command::Reserve(req.clone())).unwrap();
    assert_eq!(outcome, Outcome::Changed);
    let Some(Event::Reserved { allocations, expires_at_ms, replayed: false, .. }) =
        first.iter().find(|e| matches!(e, Event::Reserved { .. })).cloned()
    else {
        panic!("{first:?}")
    };
    let before = p.image();
    let mut retry = req.clone();
    retry.id = pid(2, 0);
    let mut out = Vec::new();
    let outcome = p.apply(&Envelope { now_ms: 30, command: Command::Reserve(retry.clone()) }, &mut out).unwrap();
    assert_eq!(outcome, Outcome::Unchanged);
    assert_eq!(
        out,
        vec![Event::Reserved {
            id: req.id,
            allocations: allocations.clone(),
            expires_at_ms,
            replayed: true,
            promise_ms: None
        }]
    );
    assert_eq!(p.image(), before);
    // Same key, another cart: refused with its own code, nothing changes.
    let mut other = retry.clone();
    other.lines[0].qty = 1;
    other.fingerprint = oms_engine::routing::request_fingerprint(&other);
    let err = p.apply(&Envelope { now_ms: 31, command: Command::Reserve(other.clone()) }, &mut Vec::new()).unwrap_err();
    assert_eq!(err, EngineError::IdempotencyKeyReused { key: "order-1".into(), id: req.id });
    assert_eq!(err.code(), "idempotency_key_reused");
    assert_eq!(p.image(), before);
    // Still answered after the reservation ended.
    p.apply(
        &Envelope { now_ms: 40, command: Command::Release { id: req.id, cause: ReleaseCause::Cancel } },
        &mut Vec::new(),
    )
    .unwrap();
    let before = p.image();
    let mut out = Vec::new();
    let outcome = p.apply(&Envelope { now_ms: 50, command: Command::Reserve(retry) }, &mut out).unwrap();
    assert_eq!(outcome, Outcome::Unchanged);
    assert!(matches!(out.as_slice(), [Event::Reserved { replayed: true, .. }]), "{out:?}");
    assert_eq!(p.image(), before);
    // The same key text sent by another shop is a different key: a new reservation.
    other.idempotency_key =
        Some(Box::new(command::IdempotencyKey { scope: "other-shop".into(), key: "order-1".into() }));
    other.id = pid(3, 0);
    let (outcome, events) = apply_checked(&mut p, 60, Command::Reserve(other)).unwrap();
    assert_eq!(outcome, Outcome::Changed);
    assert!(events.iter().any(|e| matches!(e, Event::Reserved { replayed: false, .. })), "{events:?}");
}

#[test]
fn idempotent_retry_through_the_sharded_engine_is_not_journaled() {
    // Same key twice through ShardedEngine over 2 partitions: one journal entry per part, stock held once.
    let mut sim = Sim::new(2);
    sim.sku(0, 0);
    sim.sku(1, 0);
    sim.receive(0, 1, 5);
    sim.receive(1, 1, 5);
    let mut req = sim.request(&[(0, 1), (1, 1)]);
    req.idempotency_key = key("seventy-seven");
    let (id, _) = sim.reserve_with(req.clone()).unwrap();
    let journal_len = sim.engine.journal().len();
    let events = sim.ok(Command::Reserve(req));
    assert!(
        events.iter().all(|e| matches!(e, Event::Reserved { id: rid, replayed: true, .. } if *rid == id)),
        "{events:?}"
    );
    assert_eq!(sim.engine.journal().len(), journal_len);
    assert_eq!(sim.totals(0), (5, 1, 4));
    assert_eq!(sim.totals(1), (5, 1, 4));
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn ledger_records_each_movement() {
    // The reserve/ship events carry one StockMoved per allocation, with the reservation as cause.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.receive(0, 1, 2);
    sim.receive(0, 2, 2);
    let req = sim.request(&[(0, 3)]);
    let events = sim.ok(Command::Reserve(req));
    let (id, _) = reserved_of(&events);
    let moved: u64 = events
        .iter()
        .filter_map(|e| match e {
            Event::StockMoved(m) if m.kind == MovementKind::Reserved && m.cause == id.0 => Some(m.qty),
            _ => None,
        })
        .sum();
    assert_eq!(moved, 3);
    sim.ok(Command::Confirm { id });
    let events = sim.ok(Command::Ship { id });
    let shipped: u64 = events
        .iter()
        .filter_map(|e| match e {
            Event::StockMoved(m) if m.kind == MovementKind::Shipped => Some(m.qty),
            _ => None,
        })
        .sum();
    assert_eq!(shipped, 3);
    assert_eq!(sim.totals(0), (1, 0, 1));
    sim.assert_clean();
}
