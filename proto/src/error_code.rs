//! Stable error codes on the wire (docs/PROTOCOL.md section 6). Numbers are part of the protocol:
//! never renumbered or reused, only added. Gateway conditions are 1..=99, engine refusals 100 and
//! up; the server's test `engine_codes_match_the_protocol_table` keeps the engine's list and this
//! table in step.

/// A wire error code. Unknown codes (from a newer server) are representable: see [`ErrorCode::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

/// First engine refusal code.
pub const ENGINE_CODE_BASE: u16 = 100;

/// Gateway codes (1..=99), by number.
const GATEWAY: [(u16, &str); 18] = [
    (1, "bad_frame"),
    (2, "unsupported_version"),
    (3, "unauthenticated"),
    (4, "forbidden"),
    (5, "busy"),
    (6, "frame_too_large"),
    (7, "in_flight_limit"),
    (8, "shutting_down"),
    (9, "storage_failed"),
    (10, "read_only"),
    (11, "bad_request"),
    (12, "unknown_opcode"),
    (13, "internal"),
    (14, "not_ready"),
    (15, "batch_too_large"),
    (16, "behind_retention"),
    (17, "lsn_ahead"),
    (18, "replica_timeout"),
];

/// Engine refusals: code `100 + index`.
pub const ENGINE_NAMES: [&str; 53] = [
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

impl ErrorCode {
    pub const BAD_FRAME: ErrorCode = ErrorCode(1);
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(2);
    pub const UNAUTHENTICATED: ErrorCode = ErrorCode(3);
    pub const FORBIDDEN: ErrorCode = ErrorCode(4);
    pub const BUSY: ErrorCode = ErrorCode(5);
    pub const FRAME_TOO_LARGE: ErrorCode = ErrorCode(6);
    pub const IN_FLIGHT_LIMIT: ErrorCode = ErrorCode(7);
    pub const SHUTTING_DOWN: ErrorCode = ErrorCode(8);
    pub const STORAGE_FAILED: ErrorCode = ErrorCode(9);
    pub const READ_ONLY: ErrorCode = ErrorCode(10);
    pub const BAD_REQUEST: ErrorCode = ErrorCode(11);
    pub const UNKNOWN_OPCODE: ErrorCode = ErrorCode(12);
    pub const INTERNAL: ErrorCode = ErrorCode(13);
    pub const NOT_READY: ErrorCode = ErrorCode(14);
    pub const BATCH_TOO_LARGE: ErrorCode = ErrorCode(15);
    pub const BEHIND_RETENTION: ErrorCode = ErrorCode(16);
    pub const LSN_AHEAD: ErrorCode = ErrorCode(17);
    pub const REPLICA_TIMEOUT: ErrorCode = ErrorCode(18);

    pub const UNKNOWN_SKU: ErrorCode = ErrorCode(100);
    pub const UNKNOWN_WAREHOUSE: ErrorCode = ErrorCode(101);
    pub const UNKNOWN_RESERVATION: ErrorCode = ErrorCode(102);
    pub const UNKNOWN_CAMPAIGN: ErrorCode = ErrorCode(103);
    pub const ZERO_QUANTITY: ErrorCode = ErrorCode(104);
    pub const NO_LINES: ErrorCode = ErrorCode(105);
    pub const TOO_MANY_LINES: ErrorCode = ErrorCode(106);
    pub const DUPLICATE_LINE: ErrorCode = ErrorCode(107);
    pub const INSUFFICIENT_STOCK: ErrorCode = ErrorCode(108);
    pub const CHANNEL_LIMIT: ErrorCode = ErrorCode(109);
    pub const SOLD_OUT: ErrorCode = ErrorCode(110);
    pub const LIMIT_EXCEEDED: ErrorCode = ErrorCode(111);
    pub const CAMPAIGN_NOT_OPEN: ErrorCode = ErrorCode(112);
    pub const RESERVATION_EXPIRED: ErrorCode = ErrorCode(114);
    pub const INVALID_RESERVATION_STATE: ErrorCode = ErrorCode(115);
    pub const INVALID_TTL: ErrorCode = ErrorCode(116);
    pub const INVALID_CODE: ErrorCode = ErrorCode(128);
    pub const IDEMPOTENCY_KEY_REUSED: ErrorCode = ErrorCode(150);

    /// The code's name, or `None` for a code this build does not know (a newer server's).
    pub fn name(self) -> Option<&'static str> {
        if self.0 >= ENGINE_CODE_BASE {
            return ENGINE_NAMES.get(usize::from(self.0 - ENGINE_CODE_BASE)).copied();
        }
        GATEWAY.iter().find(|(code, _)| *code == self.0).map(|(_, name)| *name)
    }

    /// The code of a name, if this build knows it.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        if let Some(i) = ENGINE_NAMES.iter().position(|n| *n == name) {
            return Some(ErrorCode(ENGINE_CODE_BASE + i as u16));
        }
        GATEWAY.iter().find(|(_, n)| *n == name).map(|(code, _)| ErrorCode(*code))
    }

    /// True for refusals of the request by the engine (codes 100 and up), false for server
    /// conditions (busy, forbidden, bad request, ...).
    pub fn is_refusal(self) -> bool {
        self.0 >= ENGINE_CODE_BASE
    }

    /// Every code this build knows, ascending.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        GATEWAY
            .iter()
            .map(|(code, _)| ErrorCode(*code))
            .chain((0..ENGINE_NAMES.len() as u16).map(|i| ErrorCode(ENGINE_CODE_BASE + i)))
    }
}

impl PartialEq<u16> for ErrorCode {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<u16> for ErrorCode {
    fn partial_cmp(&self, other: &u16) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "error {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_one_to_one() {
        // Checks no name or number is listed twice and a few published numbers never move.
        let mut names = std::collections::HashSet::new();
        let mut last = 0;
        for code in ErrorCode::all() {
            assert!(code.0 > last, "codes ascend");
            last = code.0;
            let name = code.name().expect("named");
            assert!(names.insert(name), "{name} twice");
            assert_eq!(ErrorCode::from_name(name), Some(code));
        }
        assert_eq!(ErrorCode::from_name("insufficient_stock"), Some(ErrorCode(108)));
        assert_eq!(ErrorCode::from_name("sku_id_out_of_range"), Some(ErrorCode(149)));
        assert_eq!(ErrorCode::IDEMPOTENCY_KEY_REUSED.name(), Some("idempotency_key_reused"));
        assert_eq!(ErrorCode(99).name(), None);
        assert_eq!(ErrorCode(999).name(), None);
    }
}
