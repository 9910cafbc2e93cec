//! Quantity states of one SKU in one warehouse, and the arithmetic that keeps them consistent.

use serde::Serialize;

use crate::command::Bucket;
use crate::ids::{PurchaseOrderId, TimeMs, WarehouseId};

/// Stock of one SKU in one warehouse.
///
/// `reserved + pooled + damaged + quality_control <= on_hand` always holds (checked by
/// [`StockCell::check`]); the safety bucket is a policy amount that only lowers `available`, so a
/// count that drops on-hand into the safety margin makes the SKU unavailable rather than invalid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StockCell {
    pub on_hand: u64,
    /// Held for reservations and orders (checkout holds, confirmed orders awaiting shipment).
    pub reserved: u64,
    /// Set aside for flash-sale pools.
    pub pooled: u64,
    /// Unavailable buckets, indexed by [`Bucket::index`].
    pub buckets: [u64; 3],
}

impl StockCell {
    /// Units that physically exist but are promised or unusable (the safety margin excluded).
    #[inline]
    pub fn committed(&self) -> u64 {
        // Saturating: operators may set buckets to any u64; `check` compares the exact sum.
        self.reserved
            .saturating_add(self.pooled)
            .saturating_add(self.buckets[Bucket::Damaged.index()])
            .saturating_add(self.buckets[Bucket::QualityControl.index()])
    }

    /// Sellable units: on-hand less everything reserved, pooled or unavailable, never below zero.
    #[inline]
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.committed().saturating_add(self.buckets[Bucket::Safety.index()]))
    }

    pub fn unavailable(&self) -> u64 {
        self.buckets.iter().fold(0u64, |sum, b| sum.saturating_add(*b))
    }

    pub fn bucket(&self, bucket: Bucket) -> u64 {
        self.buckets[bucket.index()]
    }

    /// The cell invariant, for debug assertions and the consistency check.
    pub fn check(&self) -> Result<(), &'static str> {
        let exact = u128::from(self.reserved)
            + u128::from(self.pooled)
            + u128::from(self.buckets[Bucket::Damaged.index()])
            + u128::from(self.buckets[Bucket::QualityControl.index()]);
        if exact > u128::from(self.on_hand) {
            return Err("reserved + pooled + damaged + quality_control exceeds on_hand");
        }
        Ok(())
    }
}

/// Stock expected from a purchase order that has not arrived yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Incoming {
    pub po: PurchaseOrderId,
    pub warehouse: WarehouseId,
    pub qty: u32,
    pub eta_ms: TimeMs,
}
