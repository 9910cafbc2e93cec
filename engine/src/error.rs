//! Typed refusals. Every error carries the facts a caller needs to decide what to do next.

use crate::ids::{CampaignId, ChannelId, ReservationId, SkuId, TimeMs, WarehouseId};

/// A command was refused; the state is exactly as before the command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EngineError {
    #[error("unknown SKU {sku}")]
    UnknownSku { sku: SkuId },
    #[error("unknown warehouse {warehouse}")]
    UnknownWarehouse { warehouse: WarehouseId },
    #[error("unknown reservation {id}")]
    UnknownReservation { id: ReservationId },
    #[error("unknown campaign {campaign}")]
    UnknownCampaign { campaign: CampaignId },
    #[error("quantity must be positive (line {line})")]
    ZeroQuantity { line: usize },
    #[error("a reservation needs at least one line")]
    NoLines,
    #[error("{lines} lines exceed the limit of {limit}")]
    TooManyLines { lines: usize, limit: usize },
    #[error("SKU {sku} appears on more than one line")]
    DuplicateLine { sku: SkuId },
    #[error("insufficient stock for SKU {sku}: requested {requested}, available {available}")]
    InsufficientStock { sku: SkuId, requested: u64, available: u64 },
    #[error("channel {channel} may sell only {available} of SKU {sku}, requested {requested}")]
    ChannelLimit { channel: ChannelId, sku: SkuId, requested: u64, available: u64 },
    #[error("campaign {campaign} is sold out")]
    SoldOut { campaign: CampaignId },
    #[error("customer limit of {limit} reached in campaign {campaign} (already holds {held})")]
    LimitExceeded { campaign: CampaignId, limit: u32, held: u32, requested: u32 },
    #[error("campaign {campaign} is not open (window {starts_at_ms}..{ends_at_ms}, now {now_ms})")]
    CampaignNotOpen { campaign: CampaignId, starts_at_ms: TimeMs, ends_at_ms: TimeMs, now_ms: TimeMs },
    #[error("campaign {campaign} sells SKU {expected}, not SKU {found}")]
    CampaignSkuMismatch { campaign: CampaignId, expected: SkuId, found: SkuId },
    #[error("reservation {id} expired at {expired_at_ms}")]
    ReservationExpired { id: ReservationId, expired_at_ms: TimeMs },
    #[error("reservation {id} is {state}, cannot {action}")]
    InvalidReservationState { id: ReservationId, state: &'static str, action: &'static str },
    #[error("ttl must be between 1 ms and {max_ms} ms")]
    InvalidTtl { max_ms: u64 },
    #[error("on-hand of SKU {sku} in warehouse {warehouse} cannot go below {committed} (reserved or set aside), requested {requested}")]
    BelowCommitted { sku: SkuId, warehouse: WarehouseId, committed: u64, requested: i128 },
    #[error("only {available} units of SKU {sku} are available in warehouse {warehouse}, requested {requested}")]
    InsufficientInWarehouse { sku: SkuId, warehouse: WarehouseId, requested: u64, available: u64 },
    #[error("SKU {sku} is a kit; {action} applies to its components")]
    KitNotStocked { sku: SkuId, action: &'static str },
    #[error("kit {kit} is invalid: {reason}")]
    InvalidKit { kit: SkuId, reason: &'static str },
    #[error("campaign {campaign} already exists")]
    DuplicateCampaign { campaign: CampaignId },
    #[error("invalid campaign {campaign}: {reason}")]
    InvalidCampaign { campaign: CampaignId, reason: &'static str },
    #[error("SKU {sku} is owned by partition {owner}, not {this}")]
    WrongPartition { sku: SkuId, owner: u32, this: u32 },
    #[error("ratio {ratio_bp} exceeds 10000 basis points")]
    InvalidRatio { ratio_bp: u32 },
    #[error("a transfer needs two different warehouses")]
    SameWarehouse,
    #[error("unknown purchase order {po} for SKU {sku}")]
    UnknownPurchaseOrder { po: u64, sku: SkuId },
    #[error("reservation id {id} is already in use")]
    DuplicateReservation { id: ReservationId },
    #[error("code must be 1..={limit} bytes")]
    InvalidCode { limit: usize },
    #[error(
        "code has an invisible or control character U+{codepoint:04X} at byte {index}; codes must be printable text"
    )]
    InvalidCodeCharacter { index: usize, codepoint: u32 },
    #[error("on-hand of SKU {sku} in warehouse {warehouse} would exceed {max}")]
    QuantityOverflow { sku: SkuId, warehouse: WarehouseId, max: u64 },
    // ----- orders (crate::orders) -----
    #[error("unknown order {order}")]
    UnknownOrder { order: u64 },
    #[error("order {order} is {state}, cannot {action}")]
    IllegalTransition { order: u64, state: &'static str, action: &'static str },
    #[error("shipment {shipment} is {state}, cannot {action}")]
    ShipmentTransition { shipment: u64, state: &'static str, action: &'static str },
    #[error("order {order} is owned by partition {owner}, not {this}")]
    WrongOrderPartition { order: u64, owner: u32, this: u32 },
    #[error("order id {order} already belongs to channel order {external_id}")]
    OrderConflict { order: u64, external_id: String },
    #[error("invalid order {order}: {reason}")]
    InvalidOrder { order: u64, reason: &'static str },
    #[error("order {order}: {requested} units of SKU {sku} requested but only {open} are not yet allocated")]
    ExceedsOpen { order: u64, sku: SkuId, requested: u32, open: u32 },
    #[error("order {order}: {requested} units of SKU {sku} claimed but only {claimable} may be")]
    ExceedsClaimable { order: u64, sku: SkuId, requested: u32, claimable: u32 },
    #[error("unknown shipment {shipment}")]
    UnknownShipment { shipment: u64 },
    #[error("unknown after-sales request {after_sale}")]
    UnknownAfterSale { after_sale: u64 },
    #[error("unknown wave {wave}")]
    UnknownWave { wave: u64 },
    #[error("wave {wave} already exists")]
    DuplicateWave { wave: u64 },
    #[error("invalid wave {wave}: {reason}")]
    InvalidWave { wave: u64, reason: &'static str },
    #[error("no allocated shipment waits in warehouse {warehouse}")]
    NothingToWave { warehouse: WarehouseId },
    #[error("SKU {sku} is not on the pick list of wave {wave}")]
    WrongSku { wave: u64, sku: SkuId },
    #[error("wave {wave}: {requested} units of SKU {sku} scanned but {remaining} remain to pick")]
    OverPick { wave: u64, sku: SkuId, requested: u32, remaining: u32 },
    #[error("shipment {shipment} has no carrier (no carrier rule accepts it)")]
    NoCarrier { shipment: u64 },
    #[error("waybill number range of carrier {carrier} is exhausted")]
    WaybillRangeExhausted { carrier: String },
    #[error("invalid rules: {reason}")]
    InvalidRules { reason: String },
    #[error("SKU id {sku} is not below the limit of {limit}")]
    SkuIdOutOfRange { sku: SkuId, limit: u32 },
    #[error("shipment {shipment} cannot be packed: wave {wave} is not fully picked ({unscanned} units not scanned); scan the rest or have a supervisor override")]
    NotPicked { shipment: u64, wave: u64, unscanned: u32 },
    #[error("a name must be at most {limit} bytes without control or invisible characters")]
    InvalidName { limit: usize },
    #[error("idempotency key {key:?} was already used for a different request (reservation {id}); a new request needs a new key")]
    IdempotencyKeyReused { key: String, id: ReservationId },
}

impl EngineError {
    /// A stable, machine-readable code for the wire protocol and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownSku { .. } => "unknown_sku",
            EngineError::UnknownWarehouse { .. } => "unknown_warehouse",
            EngineError::UnknownReservation { .. } => "unknown_reservation",
            EngineError::UnknownCampaign { .. } => "unknown_campaign",
            EngineError::ZeroQuantity { .. } => "zero_quantity",
            EngineError::NoLines => "no_lines",
            EngineError::TooManyLines { .. } => "too_many_lines",
            EngineError::DuplicateLine { .. } => "duplicate_line",
            EngineError::InsufficientStock { .. } => "insufficient_stock",
            EngineError::ChannelLimit { .. } => "channel_limit",
            EngineError::SoldOut { .. } => "sold_out",
            EngineError::LimitExceeded { .. } => "limit_exceeded",
            EngineError::CampaignNotOpen { .. } => "campaign_not_open",
            EngineError::CampaignSkuMismatch { .. } => "campaign_sku_mismatch",
            EngineError::ReservationExpired { .. } => "reservation_expired",
            EngineError::InvalidReservationState { .. } => "invalid_reservation_state",
            EngineError::InvalidTtl { .. } => "invalid_ttl",
            EngineError::BelowCommitted { .. } => "below_committed",
            EngineError::InsufficientInWarehouse { .. } => "insufficient_in_warehouse",
            EngineError::KitNotStocked { .. } => "kit_not_stocked",
            EngineError::InvalidKit { .. } => "invalid_kit",
            EngineError::DuplicateCampaign { .. } => "duplicate_campaign",
            EngineError::InvalidCampaign { .. } => "invalid_campaign",
            EngineError::WrongPartition { .. } => "wrong_partition",
            EngineError::InvalidRatio { .. } => "invalid_ratio",
            EngineError::SameWarehouse => "same_warehouse",
            EngineError::UnknownPurchaseOrder { .. } => "unknown_purchase_order",
            EngineError::DuplicateReservation { .. } => "duplicate_reservation",
            EngineError::InvalidCode { .. } | EngineError::InvalidCodeCharacter { .. } => "invalid_code",
            EngineError::QuantityOverflow { .. } => "quantity_overflow",
            EngineError::UnknownOrder { .. } => "unknown_order",
            EngineError::IllegalTransition { .. } => "illegal_transition",
            EngineError::ShipmentTransition { .. } => "shipment_transition",
            EngineError::WrongOrderPartition { .. } => "wrong_order_partition",
            EngineError::OrderConflict { .. } => "order_conflict",
            EngineError::InvalidOrder { .. } => "invalid_order",
            EngineError::ExceedsOpen { .. } => "exceeds_open",
            EngineError::ExceedsClaimable { .. } => "exceeds_claimable",
            EngineError::UnknownShipment { .. } => "unknown_shipment",
            EngineError::UnknownAfterSale { .. } => "unknown_after_sale",
            EngineError::UnknownWave { .. } => "unknown_wave",
            EngineError::DuplicateWave { .. } => "duplicate_wave",
            EngineError::InvalidWave { .. } => "invalid_wave",
            EngineError::NothingToWave { .. } => "nothing_to_wave",
            EngineError::WrongSku { .. } => "wrong_sku",
            EngineError::OverPick { .. } => "over_pick",
            EngineError::NoCarrier { .. } => "no_carrier",
            EngineError::WaybillRangeExhausted { .. } => "waybill_range_exhausted",
            EngineError::InvalidRules { .. } => "invalid_rules",
            EngineError::SkuIdOutOfRange { .. } => "sku_id_out_of_range",
            EngineError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            EngineError::NotPicked { .. } => "not_picked",
            EngineError::InvalidName { .. } => "invalid_name",
        }
    }
}

/// The SKUs and warehouses an error names by id, so a caller that knows the catalog can name
/// their codes instead (the engine's partitions do not all know every SKU's code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    pub skus: [Option<SkuId>; 2],
    pub warehouses: [Option<WarehouseId>; 1],
}

impl EngineError {
    /// What this error names by id. Exhaustive on purpose: a new variant must say.
    pub fn mentions(&self) -> Mentions {
        let sku = |s: &SkuId| Mentions { skus: [Some(*s), None], warehouses: [None] };
        let sku_in = |s: &SkuId, w: &WarehouseId| Mentions { skus: [Some(*s), None], warehouses: [Some(*w)] };
        match self {
            EngineError::UnknownSku { sku: s }
            | EngineError::DuplicateLine { sku: s }
            | EngineError::InsufficientStock { sku: s, .. }
            | EngineError::ChannelLimit { sku: s, .. }
            | EngineError::KitNotStocked { sku: s, .. }
            | EngineError::InvalidKit { kit: s, .. }
            | EngineError::WrongPartition { sku: s, .. }
            | EngineError::UnknownPurchaseOrder { sku: s, .. }
            | EngineError::ExceedsOpen { sku: s, .. }
            | EngineError::ExceedsClaimable { sku: s, .. }
            | EngineError::WrongSku { sku: s, .. }
            | EngineError::OverPick { sku: s, .. }
            | EngineError::SkuIdOutOfRange { sku: s, .. } => sku(s),
            EngineError::CampaignSkuMismatch { expected, found, .. } => {
                Mentions { skus: [Some(*found), Some(*expected)], warehouses: [None] }
            }
            EngineError::BelowCommitted { sku: s, warehouse: w, .. }
            | EngineError::InsufficientInWarehouse { sku: s, warehouse: w, .. }
            | EngineError::QuantityOverflow { sku: s, warehouse: w, .. } => sku_in(s, w),
            EngineError::UnknownWarehouse { warehouse } | EngineError::NothingToWave { warehouse } => {
                Mentions { skus: [None, None], warehouses: [Some(*warehouse)] }
            }
            EngineError::UnknownReservation { .. }
            | EngineError::UnknownCampaign { .. }
            | EngineError::ZeroQuantity { .. }
            | EngineError::NoLines
            | EngineError::TooManyLines { .. }
            | EngineError::SoldOut { .. }
            | EngineError::LimitExceeded { .. }
            | EngineError::CampaignNotOpen { .. }
            | EngineError::ReservationExpired { .. }
            | EngineError::InvalidReservationState { .. }
            | EngineError::InvalidTtl { .. }
            | EngineError::DuplicateCampaign { .. }
            | EngineError::InvalidCampaign { .. }
            | EngineError::InvalidRatio { .. }
            | EngineError::SameWarehouse
            | EngineError::DuplicateReservation { .. }
            | EngineError::InvalidCode { .. }
            | EngineError::InvalidCodeCharacter { .. }
            | EngineError::UnknownOrder { .. }
            | EngineError::IllegalTransition { .. }
            | EngineError::ShipmentTransition { .. }
            | EngineError::WrongOrderPartition { .. }
            | EngineError::OrderConflict { .. }
            | EngineError::InvalidOrder { .. }
            | EngineError::UnknownShipment { .. }
            | EngineError::UnknownAfterSale { .. }
            | EngineError::UnknownWave { .. }
            | EngineError::DuplicateWave { .. }
            | EngineError::InvalidWave { .. }
            | EngineError::NoCarrier { .. }
            | EngineError::WaybillRangeExhausted { .. }
            | EngineError::InvalidRules { .. }
            | EngineError::NotPicked { .. }
            | EngineError::IdempotencyKeyReused { .. }
            | EngineError::InvalidName { .. } => Mentions::default(),
        }
    }
}

/// Every [`EngineError::code`], in the order the wire protocol numbers them (code 100 + index):
/// never reorder or remove, only append.
pub const ERROR_CODES: [&str; 53] = [
    "unknown_sku",
    "unknown_warehouse",
    "unknown_reservation",
    "unknown_campaign",
    "zero_quantity",
    "no_lines",
    "too_many_lines",
    "duplicate_line",
    "insufficient_stock",
    "channel_limit",
    "sold_out",
    "limit_exceeded",
    "campaign_not_open",
    "campaign_sku_mismatch",
    "reservation_expired",
    "invalid_reservation_state",
    "invalid_ttl",
    "below_committed",
    "insufficient_in_warehouse",
    "kit_not_stocked",
    "invalid_kit",
    "duplicate_campaign",
    "invalid_campaign",
    "wrong_partition",
    "invalid_ratio",
    "same_warehouse",
    "unknown_purchase_order",
    "duplicate_reservation",
    "invalid_code",
    "quantity_overflow",
    "unknown_order",
    "illegal_transition",
    "shipment_transition",
    "wrong_order_partition",
    "order_conflict",
    "invalid_order",
    "exceeds_open",
    "exceeds_claimable",
    "unknown_shipment",
    "unknown_after_sale",
    "unknown_wave",
    "duplicate_wave",
    "invalid_wave",
    "nothing_to_wave",
    "wrong_sku",
    "over_pick",
    "no_carrier",
    "waybill_range_exhausted",
    "invalid_rules",
    "sku_id_out_of_range",
    "idempotency_key_reused",
    "not_picked",
    "invalid_name",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_code_list_is_unique_and_names_every_code() {
        // The wire numbering is the position in ERROR_CODES, so a name listed twice or missing
        // would give two errors one number, or an error none.
        let mut seen = std::collections::HashSet::new();
        assert!(ERROR_CODES.iter().all(|c| seen.insert(*c)), "duplicate name in ERROR_CODES");
        let samples = [
            EngineError::NoLines,
            EngineError::SameWarehouse,
            EngineError::UnknownSku { sku: SkuId(1) },
            EngineError::SoldOut { campaign: CampaignId(1) },
            EngineError::InvalidCode { limit: 64 },
        ];
        for e in samples {
            assert!(ERROR_CODES.contains(&e.code()), "{} missing from ERROR_CODES", e.code());
        }
    }
}
