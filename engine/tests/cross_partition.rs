//! Reservations spanning partitions: split, compensation, retries, and multi-part lifecycle.
mod common;

use common::*;
use oms_engine::event::{Event, ReleaseReason};
use oms_engine::*;

/// 2 partitions: SKU 0 and 2 in partition 0, SKU 1 in partition 1, with the given stock in
/// warehouse 1. Returns the sim.
fn setup(stock: [u32; 3]) -> Sim {
    let mut sim = Sim::new(2);
    for (sku, qty) in stock.iter().enumerate() {
        sim.sku(sku as u32, 0);
        if *qty > 0 {
            sim.receive(sku as u32, 1, *qty);
        }
    }
    sim
}

/// Data-driven: `lines` against `stock`; when `ok` the reservation holds every line, otherwise
/// every SKU's (on_hand, reserved, available) is as before, no reservation is live anywhere, and the
/// partitions that had reserved a part released it with reason Compensation.
#[track_caller]
fn check(stock: [u32; 3], lines: &[(u32, u32)], ok: bool, compensated: bool) {
    let mut sim = setup(stock);
    let before: Vec<_> = (0..3).map(|s| sim.totals(s)).collect();
    let mut req = sim.request(lines);
    req.idempotency_key = 42;
    let result = sim.reserve_with(req);
    let was_compensated =
        sim.events.iter().any(|e| matches!(e, Event::Released { reason: ReleaseReason::Compensation, .. }));
    assert_eq!(result.is_ok(), ok, "{lines:?} over {stock:?}: {result:?}");
    assert_eq!(was_compensated, compensated, "{lines:?} over {stock:?}: {:?}", sim.events);
    if ok {
        for &(sku, qty) in lines {
            assert_eq!(sim.totals(sku).1, u64::from(qty));
        }
    } else {
        let after: Vec<_> = (0..3).map(|s| sim.totals(s)).collect();
        assert_eq!(after, before, "a refused multi-partition reserve moved stock");
        assert!(sim.engine.partitions().iter().all(|p| p.live_reservations() == 0));
    }
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn split_and_compensation_table() {
    // Parts run in partition order (0 then 1): a failure in partition 1 undoes partition 0's part.
    check([5, 5, 5], &[(0, 2), (1, 2), (2, 1)], true, false);
    check([5, 0, 5], &[(0, 2), (1, 1)], false, true);
    check([5, 0, 5], &[(1, 1), (0, 2), (2, 5)], false, true);
    // Failure in partition 0 comes first: nothing to undo.
    check([1, 5, 5], &[(0, 2), (1, 1)], false, false);
    check([5, 5, 5], &[(0, 1), (1, 6)], false, true);
}

#[test]
fn retry_after_compensation_reserves_afresh() {
    // The first attempt is compensated (SKU 1 empty), which forgets the idempotency key in partition
    // 0; once stock arrives, the same request (same key) reserves for real (replayed=false).
    let mut sim = setup([5, 0, 0]);
    let mut req = sim.request(&[(0, 2), (1, 1)]);
    req.idempotency_key = ids::idempotency_hash(b"cart-9");
    assert_eq!(sim.reserve_with(req.clone()).unwrap_err().code(), "insufficient_stock");
    assert_eq!(sim.totals(0), (5, 0, 5));
    sim.receive(1, 1, 1);
    let events = sim.ok(Command::Reserve(req.clone()));
    assert!(events.iter().any(|e| matches!(e, Event::Reserved { replayed: false, .. })), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Reserved { replayed: true, .. })), "{events:?}");
    assert_eq!(sim.totals(0), (5, 2, 3));
    assert_eq!(sim.totals(1), (1, 1, 0));
    // A further retry now replays in both partitions.
    let events = sim.ok(Command::Reserve(req));
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Reserved { replayed: true, .. })).count(), 2);
    assert_eq!(sim.totals(0), (5, 2, 3));
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn compensation_returns_flash_sale_units_to_the_pool() {
    // A flash-sale line in partition 0 and a short general line in partition 1: the compensation
    // puts the unit back into the pool and frees the customer's limit.
    let mut sim = setup([5, 0, 0]);
    sim.ok(flash(1, 0, 2, 1, 1_000, 100_000));
    let mut req = sim.request(&[(0, 1), (1, 1)]);
    req.campaign = Some(CampaignId(1));
    assert_eq!(sim.reserve_with(req).unwrap_err().code(), "insufficient_stock");
    let c = sim.engine.partitions()[0].campaign(CampaignId(1)).unwrap();
    assert_eq!(c.remaining, 2);
    assert_eq!(sim.stock(0).pooled, 2);
    let mut again = sim.request(&[(0, 1)]);
    again.campaign = Some(CampaignId(1));
    sim.reserve_with(again).unwrap();
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn multi_part_lifecycle_reaches_every_part() {
    // Confirm, ship, release and expiry act on both parts of a 2-partition reservation.
    let mut sim = setup([5, 5, 0]);
    let (a, _) = sim.reserve(&[(0, 1), (1, 1)]).unwrap();
    assert_eq!(routing::reservation_parts(a).len(), 2);
    sim.ok(Command::Confirm { id: a });
    sim.ok(Command::Ship { id: a });
    assert_eq!((sim.totals(0), sim.totals(1)), ((4, 0, 4), (4, 0, 4)));
    let (b, _) = sim.reserve(&[(0, 2), (1, 2)]).unwrap();
    sim.ok(Command::Release { id: b, cause: ReleaseCause::Cancel });
    assert_eq!((sim.totals(0), sim.totals(1)), ((4, 0, 4), (4, 0, 4)));
    let (c, _) = sim.reserve(&[(0, 3), (1, 3)]).unwrap();
    let events = sim.tick_to(sim.now + TTL);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Released { id, reason: ReleaseReason::Expired } if *id == c))
            .count(),
        2
    );
    assert_eq!((sim.totals(0), sim.totals(1)), ((4, 0, 4), (4, 0, 4)));
    assert_eq!(sim.run(Command::Confirm { id: c }).unwrap_err().code(), "reservation_expired");
    sim.assert_clean();
    sim.assert_replay();
}
