//! Stable error codes on the wire. Numbers are part of the protocol: never renumber, only add.

// Engine refusals occupy codes 100 and up, in the order of `oms_engine::error::ERROR_CODES`.
use oms_engine::error::ERROR_CODES as ENGINE_CODES;
use oms_engine::EngineError;

use crate::protocol::WireError;

/// Errors the gateway itself raises (not engine refusals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum GatewayCode {
    BadFrame = 1,
    UnsupportedVersion = 2,
    Unauthenticated = 3,
    Forbidden = 4,
    Busy = 5,
    FrameTooLarge = 6,
    InFlightLimit = 7,
    ShuttingDown = 8,
    StorageFailed = 9,
    ReadOnly = 10,
    BadRequest = 11,
    UnknownOpcode = 12,
    Internal = 13,
    NotReady = 14,
    BatchTooLarge = 15,
    // 16 and 17 are the subscription codes (`replication::CODE_*`).
    ReplicaTimeout = 18,
}

impl GatewayCode {
    pub fn name(self) -> &'static str {
        match self {
            GatewayCode::BadFrame => "bad_frame",
            GatewayCode::UnsupportedVersion => "unsupported_version",
            GatewayCode::Unauthenticated => "unauthenticated",
            GatewayCode::Forbidden => "forbidden",
            GatewayCode::Busy => "busy",
            GatewayCode::FrameTooLarge => "frame_too_large",
            GatewayCode::InFlightLimit => "in_flight_limit",
            GatewayCode::ShuttingDown => "shutting_down",
            GatewayCode::StorageFailed => "storage_failed",
            GatewayCode::ReadOnly => "read_only",
            GatewayCode::BadRequest => "bad_request",
            GatewayCode::UnknownOpcode => "unknown_opcode",
            GatewayCode::Internal => "internal",
            GatewayCode::NotReady => "not_ready",
            GatewayCode::BatchTooLarge => "batch_too_large",
            GatewayCode::ReplicaTimeout => "replica_timeout",
        }
    }

    pub fn error(self, message: impl Into<String>) -> WireError {
        WireError {
            code: self as u16,
            name: self.name().to_owned(),
            message: message.into(),
            available: None,
            sku: None,
        }
    }
}

pub const ENGINE_CODE_BASE: u16 = 100;

pub fn engine_code(name: &str) -> u16 {
    ENGINE_CODES.iter().position(|n| *n == name).map_or(GatewayCode::Internal as u16, |i| ENGINE_CODE_BASE + i as u16)
}

pub fn from_engine(error: &EngineError) -> WireError {
    let (available, sku) = match error {
        EngineError::InsufficientStock { sku, available, .. }
        | EngineError::ChannelLimit { sku, available, .. }
        | EngineError::InsufficientInWarehouse { sku, available, .. } => (Some(*available), Some(sku.0)),
        EngineError::SoldOut { .. } => (Some(0), None),
        EngineError::UnknownSku { sku } | EngineError::DuplicateLine { sku } => (None, Some(sku.0)),
        EngineError::LimitExceeded { limit, held, .. } => (Some(u64::from(limit.saturating_sub(*held))), None),
        _ => (None, None),
    };
    WireError {
        code: engine_code(error.code()),
        name: error.code().to_owned(),
        message: error.to_string(),
        available,
        sku,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_codes_are_stable_and_known() {
        assert_eq!(engine_code("unknown_sku"), 100);
        assert_eq!(engine_code("insufficient_stock"), 108);
        assert_eq!(engine_code("sold_out"), 110);
        let e = from_engine(&EngineError::InsufficientStock { sku: oms_engine::SkuId(4), requested: 3, available: 1 });
        assert_eq!((e.code, e.available, e.sku), (108, Some(1), Some(4)));
    }

    #[test]
    fn order_codes_follow_the_engine_list() {
        // The order refusals are appended after quantity_overflow (129), in EngineError::code order.
        assert_eq!(engine_code("quantity_overflow"), 129);
        assert_eq!(engine_code("unknown_order"), 130);
        assert_eq!(engine_code("invalid_rules"), 148);
        let e = from_engine(&EngineError::UnknownOrder { order: 7 });
        assert_eq!((e.code, e.name.as_str()), (130, "unknown_order"));
        // Issue 12: appended after sku_id_out_of_range (149).
        assert_eq!(engine_code("sku_id_out_of_range"), 149);
        let e = from_engine(&EngineError::IdempotencyKeyReused { key: "k".into(), id: oms_engine::ReservationId(1) });
        assert_eq!((e.code, e.name.as_str()), (150, "idempotency_key_reused"));
    }
}
