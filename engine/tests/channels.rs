//! Channel policies: sellable quantity per channel, ChannelStock events, ChannelLimit refusals.
mod common;

use common::*;
use oms_engine::event::Event;
use oms_engine::*;

fn shown(events: &[Event], channel: u16, sku: u32) -> Option<u64> {
    events.iter().rev().find_map(|e| match e {
        Event::ChannelStock { channel: c, sku: s, qty } if *c == ChannelId(channel) && *s == SkuId(sku) => Some(*qty),
        _ => None,
    })
}

/// Policy for channel 1 (ratio_bp, floor, exceptions); SKU 0 gets `available` units. Checks the
/// ChannelStock event carries `sellable`, that channel 1 can reserve exactly `sellable` units (one
/// more is ChannelLimit and changes nothing), and that channel 0 (no policy) is not limited.
#[track_caller]
fn check(ratio_bp: u32, floor: u32, exceptions: &[(u32, u32, u32)], available: u32, sellable: u64) {
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.ok(policy(1, ratio_bp, floor, exceptions));
    sim.receive(0, 1, available);
    assert_eq!(shown(&sim.events, 1, 0).unwrap_or(0), sellable, "ratio {ratio_bp} floor {floor} avail {available}");
    let over = sellable as u32 + 1;
    if u64::from(over) <= u64::from(available) {
        let mut req = sim.request(&[(0, over)]);
        req.channel = ChannelId(1);
        let before = sim.images();
        let err = sim.reserve_with(req).unwrap_err();
        assert_eq!(
            err,
            EngineError::ChannelLimit {
                channel: ChannelId(1),
                sku: SkuId(0),
                requested: u64::from(over),
                available: sellable
            }
        );
        assert_eq!(sim.images(), before);
        // Channel 0 has no policy.
        let mut req = sim.request(&[(0, over)]);
        req.channel = ChannelId(0);
        let (id, _) = sim.reserve_with(req).unwrap();
        sim.ok(Command::Release { id, cause: ReleaseCause::Cancel });
    }
    if sellable > 0 {
        let mut req = sim.request(&[(0, sellable as u32)]);
        req.channel = ChannelId(1);
        sim.reserve_with(req).unwrap();
    }
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn sellable_quantity_table() {
    check(10_000, 0, &[], 10, 10);
    check(3_000, 0, &[], 100, 30);
    check(3_000, 0, &[], 10, 3);
    check(3_000, 5, &[], 10, 5);
    check(3_000, 5, &[], 2, 2);
    check(0, 0, &[], 10, 0);
    check(3_000, 0, &[(0, 10_000, 40)], 100, 40);
    check(3_000, 0, &[(0, 5_000, u32::MAX)], 100, 50);
    check(3_000, 0, &[(1, 10_000, 1)], 100, 30);
}

#[test]
fn channel_stock_follows_every_change() {
    // A ChannelStock event accompanies every change of what a channel may sell (receive, reserve,
    // release, bucket change) and none when the quantity stays the same.
    let mut sim = Sim::new(1);
    sim.sku(0, 0);
    sim.sku(1, 0);
    sim.receive(0, 1, 10);
    let events = sim.ok(policy(1, 5_000, 0, &[]));
    assert_eq!(shown(&events, 1, 0), Some(5));
    assert_eq!(shown(&events, 1, 1), Some(0), "every SKU publishes once when a policy appears");
    let (id, _) = sim.reserve(&[(0, 4)]).unwrap();
    assert_eq!(shown(&sim.events, 1, 0), Some(3));
    sim.receive(0, 1, 1);
    assert_eq!(shown(&sim.events, 1, 0), None, "7 * 50% is still 3");
    sim.ok(Command::SetBucket { sku: SkuId(0), warehouse: WarehouseId(1), bucket: Bucket::Safety, qty: 3 });
    assert_eq!(shown(&sim.events, 1, 0), Some(2));
    sim.ok(Command::Release { id, cause: ReleaseCause::Cancel });
    assert_eq!(shown(&sim.events, 1, 0), Some(4));
    // Updating the policy republishes only what changed.
    let events = sim.ok(policy(1, 10_000, 0, &[]));
    assert_eq!(shown(&events, 1, 0), Some(8));
    assert_eq!(shown(&events, 1, 1), None);
    assert_eq!(sim.run(policy(1, 10_000, 0, &[])).unwrap(), vec![], "an identical policy is a no-op");
    sim.assert_clean();
    sim.assert_replay();
}

#[test]
fn policies_after_a_kit_do_not_panic() {
    // A kit defined while one channel policy exists, then a second policy with a higher channel id
    // (so its column is inserted after the first): must be accepted, in 1 and 2 partitions.
    for partitions in [1, 2] {
        let mut sim = Sim::new(partitions);
        sim.sku(0, 0);
        sim.receive(0, 1, 4);
        sim.ok(policy(1, 5_000, 0, &[]));
        sim.kit(10, &[(0, 2)]).unwrap();
        sim.ok(policy(2, 5_000, 0, &[]));
        sim.ok(policy(0, 5_000, 0, &[]));
        assert_eq!(sim.available(10), 2);
        sim.assert_clean();
        sim.assert_replay();
    }
}

#[test]
fn invalid_ratios_are_refused() {
    // Ratios above 10000 bp, for the channel or an exception, are InvalidRatio and change nothing.
    let mut sim = Sim::new(2);
    sim.sku(0, 0);
    for command in [policy(1, 10_001, 0, &[]), policy(1, 100, 0, &[(0, 20_000, 1)])] {
        let before = sim.images();
        assert_eq!(sim.run(command).unwrap_err().code(), "invalid_ratio");
        assert_eq!(sim.images(), before);
    }
}
