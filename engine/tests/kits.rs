//! Kits (combo SKUs): availability, atomic reservation of components, definition rules.
mod common;

use common::*;
use oms_engine::*;

/// Two partitions; component i has `stock[i]` units in warehouse 1 (components are SKUs 0..n,
/// spread over both partitions); kit 10 = components with `qtys`. Checks
/// ShardedEngine::available(kit) == min floor(available / qty), then that reserving `want` kits
/// succeeds exactly when want <= that availability, holding qty*want of every component or nothing.
#[track_caller]
fn check(stock: &[u32], qtys: &[u32], want: u32) {
    let mut sim = Sim::new(2);
    for (i, &s) in stock.iter().enumerate() {
        sim.sku(i as u32, 0);
        if s > 0 {
            sim.receive(i as u32, 1, s);
        }
    }
    let components: Vec<(u32, u32)> = qtys.iter().enumerate().map(|(i, &q)| (i as u32, q)).collect();
    sim.kit(10, &components).unwrap();
    let expected = stock.iter().zip(qtys).map(|(&s, &q)| s / q).min().unwrap();
    assert_eq!(sim.available(10), u64::from(expected), "kit availability for {stock:?} / {qtys:?}");
    let result = sim.reserve(&[(10, want)]);
    if want <= expected {
        let (_, allocations) = result.unwrap_or_else(|e| panic!("{want} kits of {stock:?}/{qtys:?}: {e:?}"));
        for (i, &q) in qtys.iter().enumerate() {
            let held: u32 = allocations.iter().filter(|a| a.sku == SkuId(i as u32)).map(|a| a.qty).sum();
            assert_eq!(held, q * want);
            assert_eq!(sim.totals(i as u32).1, u64::from(q * want));
        }
        assert_eq!(sim.available(10), u64::from(expected - want));
    } else {
        assert_eq!(result.unwrap_err().code(), "insufficient_stock");
        for i in 0..stock.len() {
            assert_eq!(sim.totals(i as u32).1, 0, "component {i} held after a refused kit");
        }
    }
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn kit_availability_and_reservation_table() {
    // (component stock, component quantities per kit, kits requested)
    check(&[10, 10], &[1, 1], 10);
    check(&[10, 10], &[1, 1], 11);
    check(&[10, 7], &[2, 1], 5);
    check(&[10, 7], &[2, 1], 6);
    check(&[9, 100, 4], &[3, 1, 1], 3);
    check(&[9, 100, 4], &[3, 1, 1], 4);
    check(&[0, 5], &[1, 1], 1);
    // Components in partition 0 (SKU 0, 2) and 1 (SKU 1): the short one is in partition 0 and is
    // planned first; then the short one is in partition 1 (planned after 0 succeeded: compensation).
    check(&[5, 5, 1], &[1, 1, 1], 2);
    check(&[5, 1, 5], &[1, 1, 1], 2);
}

#[test]
fn kit_and_component_lines_are_summed() {
    // A kit line plus a line of one of its components holds the sum of both for that component.
    let mut sim = Sim::new(2);
    sim.sku(0, 0);
    sim.sku(1, 0);
    sim.receive(0, 1, 10);
    sim.receive(1, 1, 10);
    sim.kit(10, &[(0, 2), (1, 1)]).unwrap();
    let (_, allocations) = sim.reserve(&[(10, 2), (0, 3)]).unwrap();
    assert_eq!(allocations.iter().filter(|a| a.sku == SkuId(0)).map(|a| a.qty).sum::<u32>(), 7);
    assert_eq!(sim.totals(0), (10, 7, 3));
    assert_eq!(sim.totals(1), (10, 2, 8));
    assert_eq!(sim.available(10), 1);
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn invalid_kits_are_refused() {
    // Each invalid definition is a typed error and leaves every partition unchanged.
    let mut sim = Sim::new(2);
    sim.sku(0, 0);
    sim.sku(1, 0);
    sim.receive(1, 1, 1);
    sim.kit(10, &[(0, 1)]).unwrap();
    // (kit id, components as (sku, qty), expected error code)
    type Case<'a> = (u32, &'a [(u32, u32)], &'a str);
    let cases: &[Case] = &[
        (11, &[], "invalid_kit"),
        (11, &[(11, 1)], "invalid_kit"),
        (11, &[(0, 1), (0, 2)], "invalid_kit"),
        (11, &[(0, 0)], "invalid_kit"),
        (11, &[(7, 1)], "unknown_sku"),
        (11, &[(10, 1)], "invalid_kit"),
        // SKU 1 holds stock: it cannot become a kit.
        (1, &[(0, 1)], "invalid_kit"),
    ];
    for &(id, components, code) in cases {
        let before = sim.images();
        let err = sim.kit(id, components).unwrap_err();
        assert_eq!(err.code(), code, "kit {id} of {components:?}: {err:?}");
        assert_eq!(sim.images(), before);
    }
}

#[test]
fn kit_lines_on_a_bare_partition_are_refused() {
    // Kits are expanded by the router; a partition asked to reserve a kit SKU says KitNotStocked.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.receive(0, 1, 5);
    sim.kit(10, &[(0, 1)]).unwrap();
    let mut p = sim.engine.partitions()[0].clone();
    let mut req = request(1, &[(10, 1)]);
    req.id = pid(1, 0);
    let err = apply_checked(&mut p, sim.now, Command::Reserve(req)).unwrap_err();
    assert_eq!(err.code(), "kit_not_stocked");
}
