//! Refusals as RFC 9457 problem details (`application/problem+json`), carrying the wire error's
//! stable `code` and `name` and its facts (available units, SKU and warehouse codes), so an HTTP
//! client branches on exactly what a binary client branches on.
//!
//! The HTTP status comes from the error's name (table below, documented in docs/HTTP.md). One
//! refinement needs the route: an unknown id named in the URL path is 404, while an unknown SKU
//! named inside a request body is 422 (the request is well formed, its content refers to nothing).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use oms_proto::{ErrorCode, WireError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::wire_error::gateway;

/// Media type of a problem document (RFC 9457 section 3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A refusal on its way to an HTTP client.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub error: WireError,
}

/// The problem document (RFC 9457) with omsd's extension members.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// `urn:omsd:error:<name>`: one type per stable error code.
    #[schema(example = "urn:omsd:error:insufficient_stock")]
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the type (the same for every occurrence).
    #[schema(example = "Insufficient stock")]
    pub title: String,
    /// The HTTP status code of this response.
    #[schema(example = 422, minimum = 400, maximum = 599)]
    pub status: u16,
    /// One sentence for people; never branch on it.
    #[schema(example = "insufficient stock for TSHIRT-RED-XL: 5 requested, 3 available")]
    pub detail: String,
    /// The stable error code (docs/PROTOCOL.md section 6).
    #[schema(example = 108, minimum = 1, maximum = 65535)]
    pub code: u16,
    /// The code's name.
    #[schema(example = "insufficient_stock")]
    pub name: String,
    /// Units available, when a stock check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub available: Option<u64>,
    /// The SKU concerned, by code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The SKU concerned, by the server's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub sku_id: Option<u32>,
    /// The warehouse concerned, by code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
}

impl Problem {
    /// A refusal whose status follows from its code alone.
    pub fn new(error: WireError) -> Problem {
        Problem { status: status_of(&error, &[]), error }
    }

    /// A refusal answering a route whose URL names the resources in `in_path` (their "unknown"
    /// codes become 404).
    pub fn on_route(error: WireError, in_path: &[ErrorCode]) -> Problem {
        Problem { status: status_of(&error, in_path), error }
    }

    /// Malformed input (400 `bad_request`).
    pub fn bad_request(message: impl Into<String>) -> Problem {
        Problem::new(gateway(ErrorCode::BAD_REQUEST, message))
    }

    /// A bug on our side (500 `internal`).
    pub fn internal(message: impl Into<String>) -> Problem {
        Problem::new(gateway(ErrorCode::INTERNAL, message))
    }

    pub fn details(&self) -> ProblemDetails {
        let name = self.error.name.to_string();
        ProblemDetails {
            kind: format!("urn:omsd:error:{name}"),
            title: title(&name),
            status: self.status.as_u16(),
            detail: self.error.message.clone(),
            code: self.error.code.0,
            name,
            available: self.error.available,
            sku: self.error.sku.as_deref().map(str::to_owned),
            sku_id: self.error.sku_id,
            warehouse: self.error.warehouse.as_deref().map(str::to_owned),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> HttpResponse {
        let body = match serde_json::to_vec(&self.details()) {
            Ok(body) => body,
            // Serializing strings and integers cannot fail; answer something valid regardless.
            Err(_) => br#"{"type":"urn:omsd:error:internal","title":"Internal","status":500,"detail":"","code":13,"name":"internal"}"#.to_vec(),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"omsd\""));
            }
            // Backpressure: the condition is expected to pass; a second is the binary clients'
            // first backoff step too.
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of an oversized body is never read, so the server drops the connection
            // after answering; saying so keeps a client from pooling it and sending its next
            // request into a closed socket (seen as `IncompleteMessage` by hyper clients).
            StatusCode::PAYLOAD_TOO_LARGE => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// `insufficient_stock` -> `Insufficient stock`.
fn title(name: &str) -> String {
    let mut title = name.replace('_', " ");
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    title
}

/// The HTTP status of a wire error (docs/HTTP.md, "Errors"). `in_path`: the codes meaning
/// "the resource the URL names does not exist" on this route.
pub fn status_of(error: &WireError, in_path: &[ErrorCode]) -> StatusCode {
    if in_path.contains(&error.code) {
        return StatusCode::NOT_FOUND;
    }
    match error.code.name() {
        Some(name) => status_of_name(name),
        // A code newer than this table: by range, like a client would.
        None if error.code.is_refusal() => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn status_of_name(name: &str) -> StatusCode {
    match name {
        // Malformed input.
        "bad_frame" | "bad_request" | "unsupported_version" | "batch_too_large" => StatusCode::BAD_REQUEST,
        "frame_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unauthenticated" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "unknown_opcode" => StatusCode::NOT_FOUND,
        // Backpressure: retry later.
        "busy" | "in_flight_limit" => StatusCode::TOO_MANY_REQUESTS,
        "shutting_down" | "storage_failed" | "not_ready" | "read_only" | "replica_timeout" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // The resource's current state does not allow the action.
        "reservation_expired"
        | "invalid_reservation_state"
        | "below_committed"
        | "duplicate_campaign"
        | "duplicate_reservation"
        | "illegal_transition"
        | "shipment_transition"
        | "order_conflict"
        | "duplicate_wave"
        | "nothing_to_wave"
        | "not_picked"
        | "waybill_range_exhausted" => StatusCode::CONFLICT,
        // Bugs: routing that should never fail.
        "internal" | "wrong_partition" | "wrong_order_partition" | "behind_retention" | "lsn_ahead" => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        // Every other refusal: the request is well formed but refused (insufficient stock, sold
        // out, limits, unknown SKUs named in the body, an idempotency key reused for another
        // request, validation of values).
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str) -> u16 {
        let code = ErrorCode::from_name(name).unwrap_or_else(|| panic!("no code named {name}"));
        status_of(&WireError::new(code, "x"), &[]).as_u16()
    }

    #[test]
    fn statuses_follow_the_documented_table() {
        // Checks the status of every class the issue names (409 state conflicts, 422 refused
        // reservations and reused idempotency keys, 401/403, 429/503 backpressure, 400 malformed)
        // and that "unknown" codes are 404 only for a resource named in the URL.
        let cases = [
            ("invalid_reservation_state", 409),
            ("reservation_expired", 409),
            ("not_picked", 409),
            ("insufficient_stock", 422),
            ("sold_out", 422),
            ("limit_exceeded", 422),
            ("idempotency_key_reused", 422),
            ("unauthenticated", 401),
            ("forbidden", 403),
            ("busy", 429),
            ("in_flight_limit", 429),
            ("shutting_down", 503),
            ("storage_failed", 503),
            ("not_ready", 503),
            ("bad_request", 400),
            ("frame_too_large", 413),
            ("unknown_opcode", 404),
            ("unknown_sku", 422),
            ("internal", 500),
        ];
        for (name, want) in cases {
            assert_eq!(status(name), want, "{name}");
        }
        let unknown = WireError::new(ErrorCode::UNKNOWN_SKU, "x");
        assert_eq!(status_of(&unknown, &[ErrorCode::UNKNOWN_SKU]), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&WireError::new(ErrorCode(199), "x"), &[]), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status_of(&WireError::new(ErrorCode(99), "x"), &[]), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn problem_document_carries_code_name_and_facts() {
        // Checks the RFC 9457 members and omsd's extensions on a refused reservation.
        let mut error = WireError::new(ErrorCode::INSUFFICIENT_STOCK, "short");
        error.available = Some(3);
        error.sku = Some("MUG-WHT".into());
        let details = Problem::new(error).details();
        let json = serde_json::to_value(&details).expect("json");
        assert_eq!(json["type"], "urn:omsd:error:insufficient_stock");
        assert_eq!(json["title"], "Insufficient stock");
        assert_eq!(json["status"], 422);
        assert_eq!(json["code"], 108);
        assert_eq!(json["available"], 3);
        assert_eq!(json["sku"], "MUG-WHT");
        assert!(json.get("warehouse").is_none());
    }
}
