//! Commands: the only way state changes. Each is rkyv-archivable because the log stores them.
//!
//! A command routed to a partition carries only what that partition owns; the multi-partition
//! split happens in [`crate::sharded`] (and, concurrently, in the gateway) before commands get here.

use serde::{Deserialize, Serialize};

use crate::ids::{CampaignId, ChannelId, CustomerId, PurchaseOrderId, ReservationId, SkuId, TimeMs, WarehouseId};

/// What the log stores for one command: the time it was accepted, then the command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Envelope {
    /// Wall-clock time chosen by the caller when the command was accepted. The engine only ever
    /// moves its clock forward, so an out-of-order time is treated as "now".
    pub now_ms: TimeMs,
    pub command: Command,
}

/// One line of a reservation request.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Line {
    pub sku: SkuId,
    pub qty: u32,
}

/// One component of a kit (combo SKU).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct KitComponent {
    pub sku: SkuId,
    pub qty: u32,
}

/// The quantity states that are on hand but may not be sold.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Units held back as a buffer against count errors and channel sync lag.
    Safety,
    /// Damaged units waiting for disposal or repair.
    Damaged,
    /// Units waiting for a quality-control decision.
    QualityControl,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Safety, Bucket::Damaged, Bucket::QualityControl];

    pub(crate) fn index(self) -> usize {
        match self {
            Bucket::Safety => 0,
            Bucket::Damaged => 1,
            Bucket::QualityControl => 2,
        }
    }
}

/// How many lines of a reservation a partition holds, and how many partitions share it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct PartInfo {
    /// Number of partitions the whole reservation spans (1 for the common single-partition case).
    pub parts: u16,
}

impl PartInfo {
    pub const SINGLE: PartInfo = PartInfo { parts: 1 };
}

/// A caller's idempotency key as the engine keeps it: the scope it was sent in (the name of the
/// API key that sent it, so one shop can neither replay nor block another's keys) and the key
/// itself. Compared byte for byte: two keys are the same only if both fields are equal.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
}

/// A request to hold stock for a checkout: all lines or none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ReserveRequest {
    pub id: ReservationId,
    pub lines: Vec<Line>,
    /// How long the hold lasts unless confirmed.
    pub ttl_ms: u64,
    /// What identifies the request that makes this reservation: for a keyed storefront request,
    /// [`crate::routing::request_fingerprint`] of the whole request before it is split; for an
    /// order's allocation, [`crate::orders::allocation_key`]; 0 otherwise. A part sent again for
    /// an id that exists replays it only if this matches (a completed retry), never otherwise.
    /// (In place of the hashed key of earlier versions: a `u64` here keeps their log records
    /// decodable.)
    pub fingerprint: u64,
    pub customer: CustomerId,
    pub channel: ChannelId,
    /// Reserve from a flash-sale pool or a presale instead of general stock.
    pub campaign: Option<CampaignId>,
    pub part: PartInfo,
    /// Warehouses to try first, in this order (e.g. nearest to the buyer); the others follow in
    /// priority order. `None`: priority order, and most stock first when a line must split.
    /// Only the first [`PREFERRED_WAREHOUSES_LIMIT`] entries count. Appended after the original
    /// fields, so records written before it existed still decode (as `None`).
    #[serde(default)]
    pub prefer_warehouses: Option<Vec<WarehouseId>>,
    /// The caller's idempotency key, if any. Its home partition ([`crate::routing::key_home`])
    /// remembers which reservation it made and with which request (see [`Command::ClaimKey`]).
    /// Last field, so records written before it existed decode (as `None`).
    #[serde(default)]
    pub idempotency_key: Option<Box<IdempotencyKey>>,
}

/// Entries of `ReserveRequest::prefer_warehouses` that are looked at.
pub const PREFERRED_WAREHOUSES_LIMIT: usize = 64;

/// Why a reservation is being released by request.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseCause {
    /// The buyer or the storefront cancelled.
    Cancel,
    /// Another partition of a multi-partition reservation refused, so this part is undone. The
    /// coordinator also sends [`Command::ForgetKey`] to the key's home, so a retry starts afresh.
    Compensation,
}

/// Sellable-quantity policy of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ChannelPolicy {
    pub channel: ChannelId,
    /// Share of shared availability this channel may sell, in basis points (10_000 = all of it).
    pub ratio_bp: u32,
    /// While at least this many units are available, the channel shows at least this many.
    pub floor: u32,
    /// Per-SKU overrides of the ratio.
    pub exceptions: Vec<ChannelException>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ChannelException {
    pub sku: SkuId,
    pub ratio_bp: u32,
    /// An absolute cap on what the channel shows for this SKU (u32::MAX for none).
    pub cap: u32,
}

/// A flash-sale pool carved from a SKU's stock for a time window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct FlashSaleSpec {
    pub id: CampaignId,
    pub sku: SkuId,
    pub pool_qty: u32,
    pub per_customer_limit: u32,
    pub starts_at_ms: TimeMs,
    pub ends_at_ms: TimeMs,
}

/// A presale (deposit now, balance later) of a SKU that sells against a quota of incoming stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PresaleSpec {
    pub id: CampaignId,
    pub sku: SkuId,
    /// Units that may be sold in total; they are promised against purchase orders in ETA order.
    pub quota: u32,
    pub per_customer_limit: u32,
    pub starts_at_ms: TimeMs,
    pub ends_at_ms: TimeMs,
    /// How long after the deposit the balance may be paid.
    pub balance_window_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
// Boxing the large variants would change the log's archived layout; a command is built once and
// moved into its envelope, so its size costs a copy, not an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Advance the clock: expire reservations, open and close campaign windows, miss balance
    /// windows. At most `budget` expirations are done per tick so an expiry storm cannot stall the
    /// partition; the rest follow on later ticks.
    Tick {
        budget: u32,
    },
    DefineWarehouse {
        id: WarehouseId,
        code: String,
        region: String,
        priority: u16,
    },
    /// Create or update a SKU. Updating keeps its stock.
    DefineSku {
        id: SkuId,
        code: String,
        low_stock_threshold: u32,
    },
    /// Declare `id` a kit of `components`. Components must exist; kits of kits are refused.
    DefineKit {
        id: SkuId,
        code: String,
        components: Vec<KitComponent>,
    },
    /// Set the counted on-hand quantity (a stock count). Refused if it would fall below what is
    /// reserved or set aside.
    SetOnHand {
        sku: SkuId,
        warehouse: WarehouseId,
        on_hand: u64,
    },
    /// Units arrived (without a purchase order).
    Receive {
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
    },
    /// Count correction by a signed delta.
    Adjust {
        sku: SkuId,
        warehouse: WarehouseId,
        delta: i64,
    },
    /// Set the size of an unavailable bucket.
    SetBucket {
        sku: SkuId,
        warehouse: WarehouseId,
        bucket: Bucket,
        qty: u64,
    },
    /// Move available units between warehouses of the same SKU.
    Transfer {
        sku: SkuId,
        from: WarehouseId,
        to: WarehouseId,
        qty: u32,
    },
    /// Units came back from a buyer: sellable ones return to stock, damaged ones to the damaged bucket.
    ReturnToStock {
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        damaged: bool,
    },
    /// Announce incoming stock from a purchase order.
    ExpectIncoming {
        po: PurchaseOrderId,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        eta_ms: TimeMs,
    },
    /// Change a purchase order's ETA (a late supplier); presale promises move with it.
    RescheduleIncoming {
        po: PurchaseOrderId,
        sku: SkuId,
        eta_ms: TimeMs,
    },
    /// A purchase order arrived with `qty` units (may be short). Presale promises on it become real
    /// holds in arrival order; those it cannot cover move to the next purchase order.
    ReceivePurchaseOrder {
        po: PurchaseOrderId,
        sku: SkuId,
        qty: u32,
    },
    Reserve(ReserveRequest),
    /// At the home partition of `key` when none of the reservation's lines live there: remember
    /// that `key` made reservation `id` with the request `fingerprint` (until the hold's deadline
    /// `now + ttl_ms`, and then while the bounded memory of keys allows). A key already claimed
    /// with the same fingerprint answers its first reservation's id (`KeyClaimed { replayed }`);
    /// with another fingerprint it is refused `IdempotencyKeyReused`.
    ClaimKey {
        key: IdempotencyKey,
        fingerprint: u64,
        id: ReservationId,
        ttl_ms: u64,
    },
    /// Undo a claim (the coordinator compensating a reservation it could not complete): forgets
    /// `key` if it still names `id`, so a retry starts afresh.
    ForgetKey {
        key: IdempotencyKey,
        id: ReservationId,
    },
    /// Payment received: the hold no longer expires and waits for shipment.
    Confirm {
        id: ReservationId,
    },
    Release {
        id: ReservationId,
        cause: ReleaseCause,
    },
    /// The held units left the warehouse.
    Ship {
        id: ReservationId,
    },
    /// Pay the balance of a presale deposit.
    PayBalance {
        id: ReservationId,
    },
    CreateFlashSale(FlashSaleSpec),
    CreatePresale(PresaleSpec),
    SetChannelPolicy(ChannelPolicy),
    /// Order lifecycle (see [`crate::orders`]); routed by order or wave id, rules to every partition.
    Order(crate::orders::OrderCommand),
    // Variants below were added later; new ones go at the end, so logged tags never change.
    /// The display name of a SKU (shown next to its code; empty removes it). In the SKU's
    /// partition.
    NameSku {
        sku: SkuId,
        name: String,
    },
    /// The display name of a warehouse (empty removes it). In every partition.
    NameWarehouse {
        warehouse: WarehouseId,
        name: String,
    },
}

impl Command {
    /// A short, stable name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Tick { .. } => "tick",
            Command::DefineWarehouse { .. } => "define_warehouse",
            Command::DefineSku { .. } => "define_sku",
            Command::DefineKit { .. } => "define_kit",
            Command::SetOnHand { .. } => "set_on_hand",
            Command::Receive { .. } => "receive",
            Command::Adjust { .. } => "adjust",
            Command::SetBucket { .. } => "set_bucket",
            Command::Transfer { .. } => "transfer",
            Command::ReturnToStock { .. } => "return_to_stock",
            Command::ExpectIncoming { .. } => "expect_incoming",
            Command::RescheduleIncoming { .. } => "reschedule_incoming",
            Command::ReceivePurchaseOrder { .. } => "receive_purchase_order",
            Command::Reserve(_) => "reserve",
            Command::ClaimKey { .. } => "claim_key",
            Command::ForgetKey { .. } => "forget_key",
            Command::Confirm { .. } => "confirm",
            Command::Release { .. } => "release",
            Command::Ship { .. } => "ship",
            Command::PayBalance { .. } => "pay_balance",
            Command::CreateFlashSale(_) => "create_flash_sale",
            Command::CreatePresale(_) => "create_presale",
            Command::SetChannelPolicy(_) => "set_channel_policy",
            Command::Order(order) => order.name(),
            Command::NameSku { .. } => "name_sku",
            Command::NameWarehouse { .. } => "name_warehouse",
        }
    }
}
