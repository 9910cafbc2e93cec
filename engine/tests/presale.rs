//! Presales: deposits promised against purchase orders in ETA order, balance window, PO receipt.
mod common;

use common::*;
use oms_engine::event::{Event, ReleaseReason};
use oms_engine::*;

const P: CampaignId = CampaignId(3);
const WINDOW: u64 = 10_000;

fn setup(quota: u32, limit: u32) -> Sim {
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.ok(presale(3, 0, quota, limit, 1_000, 50_000, WINDOW));
    sim
}

fn expect(sim: &mut Sim, po: u64, qty: u32, eta: u64) -> Vec<Event> {
    sim.ok(Command::ExpectIncoming {
        po: PurchaseOrderId(po),
        sku: SkuId(0),
        warehouse: WarehouseId(1),
        qty,
        eta_ms: eta,
    })
}

fn deposit(sim: &mut Sim, customer: u64, qty: u32) -> Result<(ReservationId, Option<u64>), EngineError> {
    let mut req = sim.request(&[(0, qty)]);
    req.customer = CustomerId(customer);
    req.campaign = Some(P);
    let events = sim.run(Command::Reserve(req))?;
    match events.iter().find(|e| matches!(e, Event::Reserved { .. })) {
        Some(Event::Reserved { id, allocations, promise_ms, replayed: false, .. }) => {
            assert!(allocations.is_empty(), "a deposit holds no stock yet");
            Ok((*id, *promise_ms))
        }
        other => panic!("{other:?}"),
    }
}

fn view(sim: &Sim, id: ReservationId) -> oms_engine::partition::ReservationView {
    sim.engine.partitions()[0].reservation(id).unwrap()
}

/// Purchase orders (po, qty, eta) then deposits (one customer each) of the given quantities:
/// each deposit's promise must be the ETA of the PO that completes it in arrival order (None when
/// the POs cannot cover it).
#[track_caller]
fn check(pos: &[(u64, u32, u64)], deposits: &[u32], promises: &[Option<u64>]) {
    let mut sim = setup(100, 100);
    for &(po, qty, eta) in pos {
        expect(&mut sim, po, qty, eta);
    }
    let got: Vec<Option<u64>> =
        deposits.iter().enumerate().map(|(i, &q)| deposit(&mut sim, i as u64, q).unwrap().1).collect();
    assert_eq!(got, promises, "pos {pos:?} deposits {deposits:?}");
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn promise_dates_follow_eta_order_first_come_first_served() {
    check(&[(1, 2, 20_000), (2, 10, 30_000)], &[2, 1, 2], &[Some(20_000), Some(30_000), Some(30_000)]);
    // ETA order, not declaration order.
    check(&[(2, 10, 30_000), (1, 2, 20_000)], &[1, 2], &[Some(20_000), Some(30_000)]);
    // A deposit spanning two POs is promised at the later one.
    check(&[(1, 2, 20_000), (2, 2, 30_000)], &[1, 2, 1, 1], &[Some(20_000), Some(30_000), Some(30_000), None]);
    check(&[], &[1], &[None]);
}

#[test]
fn quota_and_per_customer_limit() {
    // Quota 5, limit 2: customers take 2+2+1, then SoldOut; a third unit for one customer is
    // LimitExceeded; releasing one deposit restocks the campaign.
    let mut sim = setup(5, 2);
    sim.now = 1_000;
    let (a, _) = deposit(&mut sim, 1, 2).unwrap();
    assert_eq!(deposit(&mut sim, 1, 1).unwrap_err().code(), "limit_exceeded");
    deposit(&mut sim, 2, 2).unwrap();
    deposit(&mut sim, 3, 1).unwrap();
    assert!(sim.events.contains(&Event::CampaignSoldOut { id: P }));
    assert_eq!(deposit(&mut sim, 4, 1).unwrap_err().code(), "sold_out");
    let events = sim.ok(Command::Release { id: a, cause: ReleaseCause::Cancel });
    assert!(events.contains(&Event::CampaignRestocked { id: P, remaining: 2 }), "{events:?}");
    deposit(&mut sim, 1, 2).unwrap();
    assert_eq!(deposit(&mut sim, 9, 1).unwrap_err().code(), "sold_out");
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn balance_window_and_purchase_order_receipt() {
    // Full life: deposits A (2), B (1), C (2) against PO1 (2 @20s) and PO2 (10 @30s).
    // A pays; B misses its window and is released (BalanceMissed); PO2 is rescheduled (C's promise
    // moves); PO1 arrives short (1 unit): A holds 1 real unit and is re-promised to PO2; PO2 arrives:
    // A and C are fully held; A ships; C cannot ship before paying; confirm on a deposit is refused.
    let mut sim = setup(10, 5);
    expect(&mut sim, 1, 2, 20_000);
    expect(&mut sim, 2, 10, 30_000);
    let (a, pa) = deposit(&mut sim, 1, 2).unwrap();
    let (b, _) = deposit(&mut sim, 2, 1).unwrap();
    let (c, pc) = deposit(&mut sim, 3, 2).unwrap();
    assert_eq!((pa, pc), (Some(20_000), Some(30_000)));
    assert_eq!(view(&sim, a).status, "deposit_held");
    assert_eq!(sim.run(Command::Confirm { id: a }).unwrap_err().code(), "invalid_reservation_state");
    assert_eq!(sim.run(Command::Ship { id: a }).unwrap_err().code(), "invalid_reservation_state");
    sim.advance(5_000);
    let events = sim.ok(Command::PayBalance { id: a });
    assert!(events.contains(&Event::BalancePaid { id: a }));
    sim.ok(Command::PayBalance { id: c });
    assert_eq!(view(&sim, a).status, "balance_paid");
    // B's window ends at 1_000 + WINDOW.
    let events = sim.tick_to(1_000 + WINDOW);
    assert!(events.contains(&Event::Released { id: b, reason: ReleaseReason::BalanceMissed }), "{events:?}");
    assert_eq!(view(&sim, b).status, "balance_missed");
    assert_eq!(sim.run(Command::PayBalance { id: b }).unwrap_err().code(), "invalid_reservation_state");
    // Paid holds do not lapse.
    sim.tick_to(40_000);
    assert_eq!(view(&sim, a).status, "balance_paid");
    let events = sim.ok(Command::RescheduleIncoming { po: PurchaseOrderId(2), sku: SkuId(0), eta_ms: 45_000 });
    assert!(events.contains(&Event::PromiseChanged { id: c, promise_ms: Some(45_000) }), "{events:?}");
    let events = sim.ok(Command::ReceivePurchaseOrder { po: PurchaseOrderId(1), sku: SkuId(0), qty: 1 });
    assert!(events.contains(&Event::PromiseChanged { id: a, promise_ms: Some(45_000) }), "{events:?}");
    assert_eq!(view(&sim, a).presale_outstanding, 1);
    assert_eq!(sim.totals(0), (1, 1, 0));
    assert_eq!(sim.run(Command::Ship { id: a }).unwrap_err().code(), "invalid_reservation_state");
    sim.ok(Command::ReceivePurchaseOrder { po: PurchaseOrderId(2), sku: SkuId(0), qty: 10 });
    assert_eq!(view(&sim, a).presale_outstanding, 0);
    assert_eq!(view(&sim, c).presale_outstanding, 0);
    assert_eq!(sim.totals(0), (11, 4, 7));
    sim.ok(Command::Ship { id: a });
    assert_eq!(sim.totals(0), (9, 2, 7));
    assert_eq!(
        sim.run(Command::ReceivePurchaseOrder { po: PurchaseOrderId(2), sku: SkuId(0), qty: 1 }).unwrap_err().code(),
        "unknown_purchase_order"
    );
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn missed_balance_after_stock_arrived_returns_the_units() {
    // A deposit that got real units from a PO but never paid: the tick after its deadline releases
    // it (BalanceMissed) and its units become available.
    let mut sim = setup(10, 5);
    expect(&mut sim, 1, 3, 2_000);
    let (a, _) = deposit(&mut sim, 1, 2).unwrap();
    sim.ok(Command::ReceivePurchaseOrder { po: PurchaseOrderId(1), sku: SkuId(0), qty: 3 });
    assert_eq!(sim.totals(0), (3, 2, 1));
    let events = sim.tick_to(sim.now + WINDOW);
    assert!(events.contains(&Event::Released { id: a, reason: ReleaseReason::BalanceMissed }));
    assert_eq!(sim.totals(0), (3, 0, 3));
    assert_eq!(sim.engine.partitions()[0].campaign(P).unwrap().remaining, 10);
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn invalid_presales_and_deposits() {
    // Invalid specs and deposits are typed errors that change nothing.
    let mut sim = setup(5, 2);
    let before = sim.images();
    for (command, code) in [
        (presale(4, 0, 5, 1, 1_000, 50_000, WINDOW), "invalid_campaign"),
        (presale(3, 0, 5, 1, 1_000, 50_000, WINDOW), "duplicate_campaign"),
        (presale(4, 9, 5, 1, 1_000, 50_000, WINDOW), "unknown_sku"),
        (presale(4, 0, 5, 0, 1_000, 50_000, WINDOW), "invalid_campaign"),
        (presale(4, 0, 5, 1, 1_000, 50_000, 0), "invalid_campaign"),
    ] {
        assert_eq!(sim.run(command).unwrap_err().code(), code);
        assert_eq!(sim.images(), before);
    }
    sim.sku(1, 0);
    let before = sim.images();
    let mut two_lines = sim.request(&[(0, 1), (1, 1)]);
    two_lines.campaign = Some(P);
    assert_eq!(sim.run(Command::Reserve(two_lines)).unwrap_err().code(), "too_many_lines");
    let mut wrong_sku = sim.request(&[(1, 1)]);
    wrong_sku.campaign = Some(P);
    assert_eq!(sim.run(Command::Reserve(wrong_sku)).unwrap_err().code(), "campaign_sku_mismatch");
    sim.now = 60_000;
    assert_eq!(deposit(&mut sim, 1, 1).unwrap_err().code(), "campaign_not_open");
    assert_eq!(sim.images(), before);
}
