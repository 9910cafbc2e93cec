//! Identifiers and the pure functions that route them to partitions.
//!
//! Every id is chosen outside the engine (by the gateway or a test) and carried in commands, so that
//! replaying the log reproduces the same ids. SKU ids are global and dense; the partition that owns a
//! SKU is `sku % partitions`, which spreads consecutive ids evenly.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
        )]
        #[rkyv(derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash), compare(PartialEq))]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A dense, global SKU id. Storefronts speak SKU codes; the gateway interns them to these.
    SkuId(u32)
);
id_type!(
    /// A warehouse (stock location) id.
    WarehouseId(u16)
);
id_type!(
    /// A reservation id, unique across all partitions (a multi-partition reservation uses the same
    /// id in every partition it touches).
    ReservationId(u64)
);
id_type!(
    /// A buyer.
    CustomerId(u64)
);
id_type!(
    /// A flash-sale or presale campaign; it lives in the partition of its SKU.
    CampaignId(u32)
);
id_type!(
    /// A sales channel (marketplace or the shop's own store).
    ChannelId(u16)
);
id_type!(
    /// A purchase order carrying incoming stock.
    PurchaseOrderId(u64)
);

/// Milliseconds since the Unix epoch, as carried by commands. The engine never reads a clock.
pub type TimeMs = u64;

/// The partition that owns `sku` when the engine runs `partitions` partitions.
#[inline]
pub fn partition_of(sku: SkuId, partitions: u32) -> u32 {
    debug_assert!(partitions > 0);
    sku.0 % partitions.max(1)
}

/// SKU ids are below this bound. Each partition keeps its SKUs in a dense table indexed by
/// `id / partitions`, so an unbounded id (from a command or a crafted snapshot) would size that
/// table to gigabytes; 2^24 ids is a catalog of 16.7 million SKUs, ample for a shop. Part of the
/// state machine's definition (a replayed command must meet the same bound), so not configurable.
pub const SKU_ID_LIMIT: u32 = 1 << 24;

/// The slot of `sku` inside its owning partition's dense tables.
#[inline]
pub(crate) fn local_index(sku: SkuId, partitions: u32) -> usize {
    (sku.0 / partitions.max(1)) as usize
}

/// A stable 64-bit hash (FNV-1a followed by a finalizer), never 0. Not keyed: anyone can compute
/// it, so it only ever picks a partition or summarizes a request, never stands for an identity
/// (idempotency keys are compared as keys, see `command::IdempotencyKey`).
pub fn stable_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finalizer: FNV alone mixes the last bytes poorly.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    if hash == 0 {
        1
    } else {
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_spreads_consecutive_ids_and_local_slots_are_dense() {
        let partitions = 4;
        let owners: Vec<u32> = (0..8).map(|i| partition_of(SkuId(i), partitions)).collect();
        assert_eq!(owners, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(local_index(SkuId(5), partitions), 1);
        assert_eq!(local_index(SkuId(8), partitions), 2);
    }

    #[test]
    fn stable_hash_is_stable_and_never_zero() {
        assert_eq!(stable_hash(b"order-1"), stable_hash(b"order-1"));
        assert_ne!(stable_hash(b"order-1"), stable_hash(b"order-2"));
        assert_ne!(stable_hash(b""), 0);
    }
}
