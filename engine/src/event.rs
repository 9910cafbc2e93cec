//! Events: what a command decided. Downstream systems (log readers, channel sync, webhooks) consume
//! these; the engine itself never reads them back.

use serde::{Deserialize, Serialize};

use crate::command::Bucket;
use crate::ids::{CampaignId, ChannelId, PurchaseOrderId, ReservationId, SkuId, TimeMs, WarehouseId};

/// Units of one SKU held in one warehouse for a reservation line.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Allocation {
    pub sku: SkuId,
    pub warehouse: WarehouseId,
    pub qty: u32,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Cancelled,
    Expired,
    Compensation,
    /// A presale balance was not paid within its window.
    BalanceMissed,
    /// The campaign closed with this reservation never confirmed.
    CampaignClosed,
}

/// Why a stock quantity moved; every movement is one ledger entry.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    Received,
    AdjustedUp,
    AdjustedDown,
    TransferIn,
    TransferOut,
    Returned,
    ReturnedDamaged,
    Reserved,
    ReleasedCancel,
    ReleasedExpired,
    Shipped,
    PooledForCampaign,
    UnpooledFromCampaign,
    ReservedFromPool,
    ReleasedToPool,
    BucketIn,
    BucketOut,
}

/// One entry of the stock ledger.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Movement {
    pub sku: SkuId,
    pub warehouse: WarehouseId,
    pub kind: MovementKind,
    pub qty: u64,
    /// The reservation, purchase order or campaign that caused it (0 when an operator did).
    pub cause: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    WarehouseDefined {
        id: WarehouseId,
    },
    SkuDefined {
        id: SkuId,
    },
    KitDefined {
        id: SkuId,
    },
    Reserved {
        id: ReservationId,
        allocations: crate::reservation::Allocations,
        expires_at_ms: TimeMs,
        /// True when this answers a retry with a known idempotency key: nothing changed.
        replayed: bool,
        /// For presale deposits: when the stock is promised to be available.
        promise_ms: Option<TimeMs>,
    },
    /// The home partition of an idempotency key answered [`crate::Command::ClaimKey`]: `id` is
    /// the reservation the key stands for (`replayed`: it was claimed before, by the same request).
    KeyClaimed {
        id: ReservationId,
        replayed: bool,
    },
    Confirmed {
        id: ReservationId,
    },
    Released {
        id: ReservationId,
        reason: ReleaseReason,
    },
    Shipped {
        id: ReservationId,
    },
    BalancePaid {
        id: ReservationId,
    },
    /// A presale promise moved (late or short purchase order); `None` means no stock is expected yet.
    PromiseChanged {
        id: ReservationId,
        promise_ms: Option<TimeMs>,
    },
    StockMoved(Movement),
    BucketSet {
        sku: SkuId,
        warehouse: WarehouseId,
        bucket: Bucket,
        qty: u64,
    },
    /// Availability of a SKU fell below its low-stock threshold.
    LowStock {
        sku: SkuId,
        available: u64,
        threshold: u32,
    },
    /// What a marketplace sync should now show for a SKU.
    ChannelStock {
        channel: ChannelId,
        sku: SkuId,
        qty: u64,
    },
    IncomingExpected {
        po: PurchaseOrderId,
        sku: SkuId,
        qty: u32,
        eta_ms: TimeMs,
    },
    CampaignCreated {
        id: CampaignId,
    },
    CampaignSoldOut {
        id: CampaignId,
    },
    /// A sold-out pool got units back (a release while the window is open).
    CampaignRestocked {
        id: CampaignId,
        remaining: u64,
    },
    /// The window closed; `returned` unsold units went back to general stock.
    CampaignClosed {
        id: CampaignId,
        returned: u64,
    },
    ChannelPolicySet {
        channel: ChannelId,
    },
    /// What an order command decided (see [`crate::orders::OrderEvent`]).
    Order(crate::orders::OrderEvent),
}
