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
    InsufficientStock {
        sku: SkuId,
        requested: u64,
        available: u64,
    },
    #[error("channel {channel} may sell only {available} of SKU {sku}, requested {requested}")]
    ChannelLimit {
        channel: ChannelId,
        sku: SkuId,
        requested: u64,
        available: u64,
    },
    #[error("campaign {campaign} is sold out")]
    SoldOut { campaign: CampaignId },
    #[error("customer limit of {limit} reached in campaign {campaign} (already holds {held})")]
    LimitExceeded {
        campaign: CampaignId,
        limit: u32,
        held: u32,
        requested: u32,
    },
    #[error("campaign {campaign} is not open (window {starts_at_ms}..{ends_at_ms}, now {now_ms})")]
    CampaignNotOpen {
        campaign: CampaignId,
        starts_at_ms: TimeMs,
        ends_at_ms: TimeMs,
        now_ms: TimeMs,
    },
    #[error("campaign {campaign} sells SKU {expected}, not {found}")]
    CampaignSkuMismatch {
        campaign: CampaignId,
        expected: SkuId,
        found: SkuId,
    },
    #[error("reservation {id} expired at {expired_at_ms}")]
    ReservationExpired {
        id: ReservationId,
        expired_at_ms: TimeMs,
    },
    #[error("reservation {id} is {state}, cannot {action}")]
    InvalidReservationState {
        id: ReservationId,
        state: &'static str,
        action: &'static str,
    },
    #[error("ttl must be between 1 ms and {max_ms} ms")]
    InvalidTtl { max_ms: u64 },
    #[error("on-hand of SKU {sku} in warehouse {warehouse} cannot go below {committed} (reserved or set aside), requested {requested}")]
    BelowCommitted {
        sku: SkuId,
        warehouse: WarehouseId,
        committed: u64,
        requested: i128,
    },
    #[error("only {available} units of SKU {sku} are available in warehouse {warehouse}, requested {requested}")]
    InsufficientInWarehouse {
        sku: SkuId,
        warehouse: WarehouseId,
        requested: u64,
        available: u64,
    },
    #[error("SKU {sku} is a kit; {action} applies to its components")]
    KitNotStocked { sku: SkuId, action: &'static str },
    #[error("kit {kit} is invalid: {reason}")]
    InvalidKit { kit: SkuId, reason: &'static str },
    #[error("campaign {campaign} already exists")]
    DuplicateCampaign { campaign: CampaignId },
    #[error("invalid campaign {campaign}: {reason}")]
    InvalidCampaign {
        campaign: CampaignId,
        reason: &'static str,
    },
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
    #[error("on-hand of SKU {sku} in warehouse {warehouse} would exceed {max}")]
    QuantityOverflow {
        sku: SkuId,
        warehouse: WarehouseId,
        max: u64,
    },
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
            EngineError::InvalidCode { .. } => "invalid_code",
            EngineError::QuantityOverflow { .. } => "quantity_overflow",
        }
    }
}
