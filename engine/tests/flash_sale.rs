//! Flash sales: pool carving, per-customer limits, sold out, restock, close, sold-out board.
mod common;

use common::*;
use oms_engine::event::Event;
use oms_engine::fastpath::SoldOutBoard;
use oms_engine::*;

const C: CampaignId = CampaignId(7);

/// SKU 0 with 10 units (6 in warehouse 1, 4 in warehouse 2); flash sale 7 pools 5 of them,
/// per-customer limit 3, window 2_000..10_000; clock at 2_000.
fn setup(partitions: u32) -> Sim {
    let mut sim = Sim::new(partitions);
    sim.sku(0, 0);
    sim.sku(1, 0);
    sim.receive(0, 1, 6);
    sim.receive(0, 2, 4);
    sim.receive(1, 1, 10);
    sim.ok(flash(7, 0, 5, 3, 2_000, 10_000));
    sim.now = 2_000;
    sim
}

fn campaign_reserve(
    sim: &mut Sim,
    customer: u64,
    lines: &[(u32, u32)],
) -> Result<(ReservationId, Vec<oms_engine::Allocation>), EngineError> {
    let mut req = sim.request(lines);
    req.customer = CustomerId(customer);
    req.campaign = Some(C);
    sim.reserve_with(req)
}

/// Data-driven: each step is (customer, qty) and the expected pool remaining after it, or the
/// error code. Checks pool accounting, availability of general stock (always 5), and the events.
#[track_caller]
fn check(steps: &[(u64, u32, Result<u64, &str>)]) {
    let mut sim = setup(1);
    let board = SoldOutBoard::new();
    for &(customer, qty, ref want) in steps {
        let result = campaign_reserve(&mut sim, customer, &[(0, qty)]);
        board.observe(&sim.events);
        let remaining = sim.engine.partitions()[0].campaign(C).unwrap().remaining;
        match (result, want) {
            (Ok(_), Ok(r)) => {
                assert_eq!(remaining, *r, "customer {customer} qty {qty}");
                let sold_out_event = sim.events.contains(&Event::CampaignSoldOut { id: C });
                assert_eq!(sold_out_event, remaining == 0);
                assert_eq!(board.campaign_sold_out(C), remaining == 0);
            }
            (Err(e), Err(code)) => {
                assert_eq!(e.code(), *code, "customer {customer} qty {qty}: {e:?}")
            }
            (got, want) => panic!("customer {customer} qty {qty}: got {got:?}, want {want:?}"),
        }
        assert_eq!(sim.available(0), 5, "general stock is never touched by the sale");
        sim.assert_clean();
    }
    sim.assert_replay();
}

#[test]
fn pool_limits_and_sold_out_table() {
    check(&[(1, 2, Ok(3)), (1, 1, Ok(2)), (1, 1, Err("limit_exceeded")), (2, 2, Ok(0)), (3, 1, Err("sold_out"))]);
    check(&[(1, 4, Err("limit_exceeded")), (1, 3, Ok(2)), (2, 3, Err("insufficient_stock")), (2, 2, Ok(0))]);
    check(&[(1, 3, Ok(2)), (2, 3, Err("insufficient_stock")), (3, 2, Ok(0)), (2, 1, Err("sold_out"))]);
}

#[test]
fn pool_is_carved_from_available_stock() {
    // Creating the sale moves 5 units from available to pooled; a pool larger than what is
    // available is refused; the general line of a campaign reservation uses general stock.
    let mut sim = setup(1);
    let s = sim.stock(0);
    assert_eq!((s.on_hand, s.pooled, s.available), (10, 5, 5));
    assert_eq!(sim.run(flash(8, 0, 6, 1, 2_000, 9_000)).unwrap_err().code(), "insufficient_stock");
    assert_eq!(sim.run(flash(7, 0, 1, 1, 2_000, 9_000)).unwrap_err().code(), "duplicate_campaign");
    let (_, allocations) = campaign_reserve(&mut sim, 1, &[(0, 2), (1, 4)]).unwrap();
    assert_eq!(allocations.iter().map(|a| a.qty).sum::<u32>(), 6);
    assert_eq!(sim.totals(1), (10, 4, 6));
    assert_eq!(sim.stock(0).pooled, 3);
    assert_eq!(sim.available(0), 5);
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn window_release_restock_and_close() {
    // Before the window: CampaignNotOpen. A release while open returns units to the pool (and
    // CampaignRestocked when it was sold out, clearing the board) and frees the customer's limit.
    // At ends_at a tick closes the sale: unsold units return to general stock (CampaignClosed), and a
    // hold that expires after the close returns its units to general stock too.
    let mut sim = setup(1);
    sim.now = 1_500;
    assert_eq!(campaign_reserve(&mut sim, 1, &[(0, 1)]).unwrap_err().code(), "campaign_not_open");
    sim.now = 2_000;
    let board = SoldOutBoard::new();
    let (a, _) = campaign_reserve(&mut sim, 1, &[(0, 3)]).unwrap();
    let (b, _) = campaign_reserve(&mut sim, 2, &[(0, 2)]).unwrap();
    board.observe(&sim.events);
    assert!(board.campaign_sold_out(C));
    let events = sim.ok(Command::Release { id: a, cause: ReleaseCause::Cancel });
    board.observe(&events);
    assert!(events.contains(&Event::CampaignRestocked { id: C, remaining: 3 }), "{events:?}");
    assert!(!board.campaign_sold_out(C));
    assert_eq!(sim.stock(0).pooled, 3);
    // Customer 1's limit is free again.
    let (c, _) = campaign_reserve(&mut sim, 1, &[(0, 3)]).unwrap();
    sim.ok(Command::Confirm { id: c });
    let (d, _) = {
        sim.ok(Command::Release { id: b, cause: ReleaseCause::Cancel });
        campaign_reserve(&mut sim, 3, &[(0, 1)]).unwrap()
    };
    // Pool now holds 1 unsold unit; d (1 unit) expires after the close.
    assert_eq!(sim.engine.partitions()[0].campaign(C).unwrap().remaining, 1);
    sim.now = 9_999;
    sim.ok(Command::Tick { budget: 10 });
    let events = sim.tick_to(10_000);
    board.observe(&events);
    assert!(events.contains(&Event::CampaignClosed { id: C, returned: 1 }), "{events:?}");
    assert!(board.campaign_sold_out(C), "a closed sale is refused at the edge");
    let s = sim.stock(0);
    assert_eq!((s.pooled, s.reserved, s.available), (0, 4, 6));
    assert_eq!(campaign_reserve(&mut sim, 4, &[(0, 1)]).unwrap_err().code(), "campaign_not_open");
    let events = sim.tick_to(2_000 + TTL);
    assert!(events.iter().any(|e| matches!(e, Event::Released { id, .. } if *id == d)));
    let s = sim.stock(0);
    assert_eq!((s.pooled, s.reserved, s.available), (0, 3, 7));
    // The confirmed one ships out of on-hand.
    sim.ok(Command::Ship { id: c });
    assert_eq!(sim.totals(0), (7, 0, 7));
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn campaign_must_match_a_line_sku() {
    // A request naming the sale but no line of its SKU is CampaignSkuMismatch, on one partition and
    // when the sale lives in another partition than the lines (nothing held either way).
    for partitions in [1, 2] {
        let mut sim = setup(partitions);
        let err = campaign_reserve(&mut sim, 1, &[(1, 1)]).unwrap_err();
        assert_eq!(err.code(), "campaign_sku_mismatch", "{partitions} partitions");
        assert_eq!(sim.totals(1), (10, 0, 10));
        sim.assert_clean();
    }
}

#[test]
fn invalid_flash_sales_are_refused() {
    // Zero pool, zero limit, empty or past window, unknown SKU: typed errors, nothing changes.
    let mut sim = setup(1);
    sim.now = 5_000;
    for (command, code) in [
        (flash(9, 0, 0, 1, 5_000, 6_000), "invalid_campaign"),
        (flash(9, 0, 1, 0, 5_000, 6_000), "invalid_campaign"),
        (flash(9, 0, 1, 1, 6_000, 6_000), "invalid_campaign"),
        (flash(9, 0, 1, 1, 1_000, 4_000), "invalid_campaign"),
        (flash(9, 5, 1, 1, 5_000, 6_000), "unknown_sku"),
    ] {
        let before = sim.images();
        assert_eq!(sim.run(command).unwrap_err().code(), code);
        assert_eq!(sim.images(), before);
    }
}
