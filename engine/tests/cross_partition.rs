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
    // Homed in partition 0, so partition 0 (the key's home) still decides first.
    req.idempotency_key = key_homed_at(0, 2);
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
    req.idempotency_key = key("cart-9");
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

/// The id the engine gives a request whose lines live in `parts` (what `ShardedEngine` fills in).
fn id_over(seq: u64, parts: &[u32]) -> ReservationId {
    let mut set = routing::PartitionSet::default();
    for p in parts {
        set.insert(*p);
    }
    routing::reservation_id(seq, set)
}

#[test]
fn a_key_reused_for_a_cart_in_other_partitions_is_refused() {
    // Issue 12: the same key with a different cart whose lines live in another partition used to
    // create a second live reservation. The key's home remembers it whatever partitions the lines
    // are in: the second cart is refused idempotency_key_reused and nothing changes, in both
    // directions (home among the lines or not); the same cart again replays.
    for home in [0u32, 1] {
        let mut sim = setup([5, 5, 5]);
        let key = key_homed_at(home, 2);
        let mut first = sim.request(&[(0, 1)]);
        first.idempotency_key = key.clone();
        let (id, _) = sim.reserve_with(first.clone()).unwrap();
        let before = sim.images();
        let journal = sim.engine.journal().len();
        let mut other = sim.request(&[(1, 3)]);
        other.idempotency_key = key.clone();
        let err = sim.reserve_with(other).unwrap_err();
        assert_eq!(err, EngineError::IdempotencyKeyReused { key: key.as_ref().unwrap().key.clone(), id });
        assert_eq!(sim.images(), before, "home {home}: a refused reuse changed state");
        assert_eq!(sim.engine.journal().len(), journal);
        // The same cart, sent again under a new id (a retry), replays the first reservation.
        let mut retry = sim.request(&[(0, 1)]);
        retry.idempotency_key = key;
        assert_eq!(sim.reserve_with(retry).unwrap().0, id);
        assert_eq!(sim.totals(0), (5, 1, 4));
        assert_eq!(sim.totals(1), (5, 0, 5));
        sim.assert_clean();
        sim.assert_replay();
    }
}

#[test]
fn a_retry_completes_a_reservation_a_crash_cut_between_parts() {
    // A two-partition keyed reservation whose first attempt reached only the key's home (the
    // process died before the other part): the retry, under a new id as the gateway sends it,
    // names the FIRST reservation and completes it, so one id holds every line (it used to
    // answer an id holding only part of the lines).
    let mut sim = setup([5, 5, 5]);
    let key = key_homed_at(0, 2);
    let mut whole = sim.request(&[(0, 2), (1, 1)]);
    whole.id = id_over(whole.id.0, &[0, 1]);
    whole.idempotency_key = key.clone();
    whole.fingerprint = routing::request_fingerprint(&whole);
    let (first_part, _) = routing::split_reserve(&whole, 2, None).remove(0);
    assert_eq!(first_part, 0);
    let part0 = routing::split_reserve(&whole, 2, None).remove(0).1;
    sim.engine.apply_in(0, &Envelope { now_ms: sim.now, command: Command::Reserve(part0) }, &mut Vec::new()).unwrap();
    assert_eq!((sim.totals(0).1, sim.totals(1).1), (2, 0), "only the home part was made");
    let mut retry = sim.request(&[(0, 2), (1, 1)]);
    retry.idempotency_key = key;
    let events = sim.ok(Command::Reserve(retry));
    let (id, allocations) = reserved_of(&events);
    assert_eq!(id, whole.id, "the retry names the first reservation");
    assert_eq!(allocations.iter().map(|a| (a.sku.0, a.qty)).collect::<Vec<_>>(), vec![(0, 2), (1, 1)]);
    assert_eq!((sim.totals(0).1, sim.totals(1).1), (2, 1));
    for p in sim.engine.partitions() {
        assert!(p.is_live(id), "partition {} holds its part of {id}", p.index());
    }
    sim.ok(Command::Confirm { id });
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn a_claim_made_before_a_crash_continues_under_its_reservation() {
    // The key's home holds no line (it only claims the key). An attempt that claims the key and
    // is refused forgets the claim again, so a retry starts afresh. An attempt that claimed the
    // key and died before any part: retries continue under the claimed id (refused while there is
    // no stock, keeping the claim; then made under it), and later retries replay it.
    let mut sim = setup([5, 0, 5]);
    let fresh_key = key_homed_at(0, 2);
    let mut refused = sim.request(&[(1, 1)]);
    refused.idempotency_key = fresh_key.clone();
    assert_eq!(sim.reserve_with(refused).unwrap_err().code(), "insufficient_stock");
    let journal = sim.engine.journal();
    assert!(matches!(journal[journal.len() - 2].1.command, Command::ClaimKey { .. }), "{journal:?}");
    assert!(matches!(journal[journal.len() - 1].1.command, Command::ForgetKey { .. }), "{journal:?}");

    let key = named_key_homed_at("crashed", 0, 2);
    let mut whole = sim.request(&[(1, 1)]);
    whole.id = id_over(whole.id.0, &[1]);
    whole.idempotency_key = key.clone();
    whole.fingerprint = routing::request_fingerprint(&whole);
    let claim = Command::ClaimKey {
        key: *key.clone().unwrap(),
        fingerprint: whole.fingerprint,
        id: whole.id,
        ttl_ms: whole.ttl_ms,
    };
    sim.engine.apply_in(0, &Envelope { now_ms: sim.now, command: claim }, &mut Vec::new()).unwrap();
    let mut retry = sim.request(&[(1, 1)]);
    retry.idempotency_key = key.clone();
    let journal = sim.engine.journal().len();
    assert_eq!(sim.reserve_with(retry.clone()).unwrap_err().code(), "insufficient_stock");
    assert_eq!(sim.engine.journal().len(), journal, "a claim made before is kept");
    sim.receive(1, 1, 3);
    let (id, _) = sim.reserve_with(retry).unwrap();
    assert_eq!(id, whole.id, "the retry continues under the claimed reservation");
    let mut again = sim.request(&[(1, 1)]);
    again.idempotency_key = key;
    let events = sim.ok(Command::Reserve(again));
    assert!(events.iter().any(|e| matches!(e, Event::KeyClaimed { replayed: true, .. })), "{events:?}");
    assert_eq!(reserved_of(&events).0, id);
    assert_eq!(sim.totals(1), (3, 1, 2));
    sim.assert_clean();
    sim.assert_replay();
}
