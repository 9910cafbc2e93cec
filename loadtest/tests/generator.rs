//! Request-stream generator tests.

use std::sync::Arc;

use oms_loadtest::rng::{SplitMix64, Zipf};
use oms_loadtest::workload::{Op, OpGen, Plan, PlanParams, Scenario};

fn stream(scenario: Scenario, seed: u64, conn: u64, n: usize) -> Vec<Op> {
    let mut p = PlanParams::new(scenario, seed);
    p.skus = 10_000;
    p.skew = 0.9;
    let plan = Arc::new(Plan::new(p));
    let mut g = OpGen::new(plan, conn);
    (0..n).map(|_| g.next_op()).collect()
}

// Checks: the same seed gives the same request stream for every scenario, per connection.
#[test]
fn same_seed_same_stream() {
    for s in [Scenario::FlashSale, Scenario::Checkout, Scenario::Presale, Scenario::ExpiryStorm, Scenario::Mixed] {
        assert_eq!(stream(s, 42, 3, 2_000), stream(s, 42, 3, 2_000), "{s:?}");
    }
}

// Checks: a different seed, or a different connection, gives a different stream.
#[test]
fn different_seed_or_connection_differs() {
    assert_ne!(stream(Scenario::Checkout, 42, 0, 200), stream(Scenario::Checkout, 43, 0, 200));
    assert_ne!(stream(Scenario::Checkout, 42, 0, 200), stream(Scenario::Checkout, 42, 1, 200));
}

// Checks: checkout orders have 1..=max_lines distinct lines with quantities in range, and flash-sale
// requests are single-unit campaign requests from buyers in range.
#[test]
fn orders_are_well_formed() {
    for op in stream(Scenario::Checkout, 7, 0, 5_000) {
        let Op::Reserve(r) = op else { panic!("checkout only reserves") };
        assert!((1..=5).contains(&r.lines.len()));
        let mut skus: Vec<u32> = r.lines.iter().map(|l| l.0).collect();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(skus.len(), r.lines.len(), "duplicate SKU in one order");
        assert!(r.lines.iter().all(|(s, q)| *s < 10_000 && (1..=2).contains(q)));
        assert!(r.campaign.is_none());
    }
    for op in stream(Scenario::FlashSale, 7, 0, 5_000) {
        let Op::Reserve(r) = op else { panic!("flash-sale only reserves") };
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].1, 1);
        assert!(r.campaign.is_some());
        assert!((1..=1_000_000).contains(&r.customer));
    }
}

// Checks: the Zipf sampler is deterministic, stays in range, and favours low ranks; skew 0 is uniform.
#[test]
fn zipf_is_skewed_and_deterministic() {
    let z = Zipf::new(1_000, 1.0);
    let (mut a, mut b) = (SplitMix64::new(9), SplitMix64::new(9));
    let mut counts = vec![0u32; 1_000];
    for _ in 0..100_000 {
        let x = z.sample(&mut a);
        assert_eq!(x, z.sample(&mut b));
        counts[x as usize] += 1;
    }
    assert!(counts[0] > 10 * counts[500].max(1), "rank 0 {} vs rank 500 {}", counts[0], counts[500]);
    let u = Zipf::new(10, 0.0);
    let mut r = SplitMix64::new(1);
    let mut seen = [0u32; 10];
    for _ in 0..10_000 {
        seen[u.sample(&mut r) as usize] += 1;
    }
    assert!(seen.iter().all(|c| (800..1_200).contains(c)), "{seen:?}");
}
