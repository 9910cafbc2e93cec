//! Per-channel sellable quantities derived from shared availability.
//!
//! A channel shows `available * ratio`, lifted to `floor` while at least that many units are
//! available, and never more than is available, so no marketplace can show stock that is gone and
//! no single channel can drain what the others share.

use crate::command::ChannelPolicy;
use crate::ids::SkuId;

/// Basis points in one whole.
pub const FULL_RATIO_BP: u32 = 10_000;

/// What `policy` lets its channel sell of `sku` when `available` units are shared.
pub fn sellable(policy: &ChannelPolicy, sku: SkuId, available: u64) -> u64 {
    let (ratio_bp, cap) = policy
        .exceptions
        .iter()
        .find(|e| e.sku == sku)
        .map_or((policy.ratio_bp, u64::MAX), |e| (e.ratio_bp, u64::from(e.cap)));
    let share = (u128::from(available) * u128::from(ratio_bp) / u128::from(FULL_RATIO_BP)) as u64;
    let lifted = share.max(u64::from(policy.floor).min(available));
    lifted.min(available).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ChannelException;
    use crate::ids::ChannelId;

    fn policy(ratio_bp: u32, floor: u32) -> ChannelPolicy {
        ChannelPolicy { channel: ChannelId(1), ratio_bp, floor, exceptions: vec![] }
    }

    #[test]
    fn ratio_floor_and_cap_never_exceed_availability() {
        // 30% of 100 is 30.
        assert_eq!(sellable(&policy(3_000, 0), SkuId(1), 100), 30);
        // The floor lifts a small share: 30% of 10 is 3, floor 5.
        assert_eq!(sellable(&policy(3_000, 5), SkuId(1), 10), 5);
        // ...but never above what is available.
        assert_eq!(sellable(&policy(3_000, 5), SkuId(1), 2), 2);
        assert_eq!(sellable(&policy(10_000, 0), SkuId(1), 0), 0);
        let mut p = policy(3_000, 0);
        p.exceptions.push(ChannelException { sku: SkuId(7), ratio_bp: 10_000, cap: 40 });
        assert_eq!(sellable(&p, SkuId(7), 100), 40);
        assert_eq!(sellable(&p, SkuId(8), 100), 30);
    }
}
