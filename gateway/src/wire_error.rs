//! Engine refusals and gateway conditions as wire errors. The numbers and names are oms-proto's
//! table (docs/PROTOCOL.md section 6); this module maps the engine's errors onto it with the facts
//! a caller acts on, naming SKUs and warehouses by their codes (people read codes, not ids).

use oms_engine::{EngineError, Partition, SkuId, WarehouseId};
pub use oms_proto::{Code, ErrorCode, WireError, ENGINE_CODE_BASE};

/// Where answers find the codes of the ids they mention: a partition (in its writer thread) or
/// the catalog index (anywhere else).
pub trait CodeNames {
    fn sku_code(&self, sku: u32) -> Option<Code>;
    fn warehouse_code(&self, warehouse: u16) -> Option<Code>;
}

impl CodeNames for Partition {
    fn sku_code(&self, sku: u32) -> Option<Code> {
        Partition::sku_code(self, SkuId(sku)).map(Code::truncated)
    }
    fn warehouse_code(&self, warehouse: u16) -> Option<Code> {
        Partition::warehouse_code(self, WarehouseId(warehouse)).map(Code::truncated)
    }
}

/// Knows no codes (answers carry ids only).
pub struct NoNames;

impl CodeNames for NoNames {
    fn sku_code(&self, _: u32) -> Option<Code> {
        None
    }
    fn warehouse_code(&self, _: u16) -> Option<Code> {
        None
    }
}

/// A gateway error (codes below 100) with a message.
pub fn gateway(code: ErrorCode, message: impl Into<String>) -> WireError {
    debug_assert!(!code.is_refusal(), "{code} is an engine code");
    WireError::new(code, message)
}

/// The wire code of an engine error name (`internal` for a name the table lacks: a bug that
/// `engine_codes_match_the_protocol_table` catches).
pub fn engine_code(name: &str) -> ErrorCode {
    ErrorCode::from_name(name).filter(|c| c.is_refusal()).unwrap_or(ErrorCode::INTERNAL)
}

/// `message` with `"{word} {id}"` (not followed by another digit) replaced by `"{word} {code}"`.
fn name_in(message: &str, word: &str, id: u64, code: &str) -> String {
    let needle = format!("{word} {id}");
    let mut out = String::with_capacity(message.len() + code.len());
    let mut rest = message;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push_str(word);
            out.push(' ');
            out.push_str(code);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

pub fn from_engine(error: &EngineError, names: &dyn CodeNames) -> WireError {
    let (available, sku) = match error {
        EngineError::InsufficientStock { sku, available, .. }
        | EngineError::ChannelLimit { sku, available, .. }
        | EngineError::InsufficientInWarehouse { sku, available, .. } => (Some(*available), Some(*sku)),
        EngineError::SoldOut { .. } => (Some(0), None),
        EngineError::UnknownSku { sku }
        | EngineError::DuplicateLine { sku }
        | EngineError::BelowCommitted { sku, .. }
        | EngineError::QuantityOverflow { sku, .. }
        | EngineError::KitNotStocked { sku, .. }
        | EngineError::CampaignSkuMismatch { found: sku, .. } => (None, Some(*sku)),
        EngineError::InvalidKit { kit, .. } => (None, Some(*kit)),
        EngineError::LimitExceeded { limit, held, .. } => (Some(u64::from(limit.saturating_sub(*held))), None),
        _ => (None, None),
    };
    let warehouse = match error {
        EngineError::InsufficientInWarehouse { warehouse, .. }
        | EngineError::BelowCommitted { warehouse, .. }
        | EngineError::QuantityOverflow { warehouse, .. }
        | EngineError::UnknownWarehouse { warehouse } => Some(*warehouse),
        _ => None,
    };
    let mut wire = WireError::new(engine_code(error.code()), error.to_string());
    wire.available = available;
    if let Some(sku) = sku.filter(|s| s.0 != u32::MAX) {
        wire.sku_id = Some(sku.0);
        if let Some(code) = names.sku_code(sku.0) {
            wire.sku = Some(code.as_str().into());
        }
    }
    // People read codes: every SKU and warehouse the message names by id is named by code
    // (the engine's partitions do not all know every code; the gateway's catalog index does).
    let mentions = error.mentions();
    for sku in mentions.skus.into_iter().flatten().filter(|s| s.0 != u32::MAX) {
        if let Some(code) = names.sku_code(sku.0) {
            wire.message = name_in(&wire.message, "SKU", u64::from(sku.0), &code);
            wire.message = name_in(&wire.message, "kit", u64::from(sku.0), &code);
        }
    }
    if let Some(warehouse) = warehouse {
        if let Some(code) = names.warehouse_code(warehouse.0) {
            wire.warehouse = Some(code.as_str().into());
        }
    }
    for warehouse in mentions.warehouses.into_iter().flatten() {
        if let Some(code) = names.warehouse_code(warehouse.0) {
            wire.message = name_in(&wire.message, "warehouse", u64::from(warehouse.0), &code);
        }
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl CodeNames for Names {
        fn sku_code(&self, sku: u32) -> Option<Code> {
            (sku == 4).then(|| Code::truncated("MUG-WHT"))
        }
        fn warehouse_code(&self, warehouse: u16) -> Option<Code> {
            (warehouse == 1).then(|| Code::truncated("SH"))
        }
    }

    #[test]
    fn engine_codes_match_the_protocol_table() {
        // Checks the engine's error list and oms-proto's table agree name for name from 100 up,
        // so no engine error is sent with another's number (the table may run ahead of the
        // engine: codes reserved for errors not raised yet).
        for (i, name) in oms_engine::error::ERROR_CODES.iter().enumerate() {
            assert_eq!(oms_proto::ENGINE_NAMES.get(i), Some(name), "engine code {} differs", 100 + i);
        }
        assert_eq!(engine_code("insufficient_stock"), ErrorCode(108));
        assert_eq!(engine_code("sold_out"), ErrorCode(110));
        assert_eq!(engine_code("unknown_order"), ErrorCode(130));
        // Issue 12: a key reused for another request has its own code, after sku_id_out_of_range.
        assert_eq!(engine_code("sku_id_out_of_range"), ErrorCode(149));
        let e = from_engine(
            &EngineError::IdempotencyKeyReused { key: "k".into(), id: oms_engine::ReservationId(1) },
            &NoNames,
        );
        assert_eq!((e.code, e.name.as_ref()), (ErrorCode(150), "idempotency_key_reused"));
    }

    #[test]
    fn refusals_name_skus_and_warehouses_by_code() {
        // Checks the facts (available, SKU id and code, warehouse code) and that the sentence
        // names codes instead of ids, without touching a longer number that starts the same.
        let e = from_engine(&EngineError::InsufficientStock { sku: SkuId(4), requested: 3, available: 1 }, &Names);
        assert_eq!((e.code, e.available, e.sku_id), (ErrorCode(108), Some(1), Some(4)));
        assert_eq!(e.sku.as_deref(), Some("MUG-WHT"));
        assert_eq!(e.name, "insufficient_stock");
        assert!(e.message.contains("SKU MUG-WHT"), "{}", e.message);
        let e = from_engine(
            &EngineError::BelowCommitted { sku: SkuId(4), warehouse: WarehouseId(1), committed: 12, requested: 5 },
            &Names,
        );
        assert_eq!(e.warehouse.as_deref(), Some("SH"));
        assert!(e.message.contains("warehouse SH"), "{}", e.message);
        assert_eq!(name_in("SKU 4 and SKU 42", "SKU", 4, "X"), "SKU X and SKU 42");
        let e = from_engine(&EngineError::UnknownSku { sku: SkuId(9) }, &NoNames);
        assert_eq!((e.sku_id, e.sku), (Some(9), None));
    }
}
