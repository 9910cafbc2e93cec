//! The HTTP/JSON API (docs/HTTP.md): resource-oriented routes for shops that want no client
//! library (a PHP shop with curl), on their own port (`--http-listen`), plain or TLS like the
//! storefront port, with an OpenAPI 3 document generated from these handlers (`GET
//! /openapi.json`, committed as docs/openapi.json).
//!
//! It is a second front end, not a second path into the engine: a route turns its URL and JSON
//! into the same `oms_proto::Request` the binary port decodes from a frame, and
//! [`bridge::Caller::call`] runs it through the binary port's own role check
//! ([`ServerCtx::authorize`]) and [`ServerCtx::dispatch`]. This module must not build engine
//! commands, talk to partitions or keep state of its own (idempotency included: that is the
//! engine's, through the reservation's key).

mod bridge;
mod catalog;
mod listener;
mod openapi;
mod orders;
mod problem;
mod reservations;
mod stock;
mod types;

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post, put};
use axum::Router;
use oms_proto::ErrorCode;

pub use bridge::Peer;
pub use listener::{serve, serve_router};
pub use openapi::document;
pub use problem::{status_of, Problem, ProblemDetails, PROBLEM_JSON};

use crate::server::ServerCtx;
use crate::wire_error::gateway;

/// A JSON document as the server produced it (a JSON-bodied operation's answer), sent as is.
pub struct JsonText(pub String);

impl IntoResponse for JsonText {
    fn into_response(self) -> HttpResponse {
        let mut response = self.0.into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Every route of the API.
pub fn router(ctx: Arc<ServerCtx>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi::serve_document))
        .route("/v1/reservations", post(reservations::create))
        .route("/v1/reservations/{id}", get(reservations::get))
        .route("/v1/reservations/{id}/confirm", post(reservations::confirm))
        .route("/v1/reservations/{id}/release", post(reservations::release))
        .route("/v1/reservations/{id}/pay-balance", post(reservations::pay_balance))
        .route("/v1/reservations/{id}/ship", post(reservations::ship))
        .route("/v1/stock", get(stock::export))
        .route("/v1/stock/{sku}", get(stock::get))
        .route("/v1/stock/{sku}/on-hand", put(stock::set_on_hand))
        .route("/v1/stock/{sku}/receipts", post(stock::receive))
        .route("/v1/stock/{sku}/adjustments", post(stock::adjust))
        .route("/v1/stock/{sku}/transfers", post(stock::transfer))
        .route("/v1/stock/{sku}/bucket", put(stock::set_bucket))
        .route("/v1/stock/{sku}/returns", post(stock::return_to_stock))
        .route("/v1/purchase-orders/{po}/expected", post(stock::expect_incoming))
        .route("/v1/purchase-orders/{po}/reschedule", post(stock::reschedule_incoming))
        .route("/v1/purchase-orders/{po}/receipts", post(stock::receive_purchase_order))
        .route("/v1/warehouses", post(catalog::define_warehouse))
        .route("/v1/skus", post(catalog::define_sku))
        .route("/v1/skus/lookup", post(catalog::lookup))
        .route("/v1/kits", post(catalog::define_kit))
        .route("/v1/catalog", post(catalog::load))
        .route("/v1/audit", get(catalog::audit))
        .route("/v1/campaigns/flash-sales", post(catalog::create_flash_sale))
        .route("/v1/campaigns/presales", post(catalog::create_presale))
        .route("/v1/campaigns/{id}", get(catalog::get_campaign))
        .route("/v1/channels/{channel}/policy", put(catalog::set_channel_policy))
        .route("/v1/orders", post(orders::import).get(orders::list))
        .route("/v1/orders/allocate", post(orders::allocate_all))
        .route("/v1/orders/{id}", get(orders::get))
        .route("/v1/orders/{id}/approve", post(orders::approve))
        .route("/v1/orders/{id}/reject", post(orders::reject))
        .route("/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/v1/orders/{id}/allocate", post(orders::allocate))
        .route("/v1/waves", post(orders::create_wave))
        .route("/v1/waves/{id}", get(orders::get_wave))
        .route("/v1/shipments/{id}/pack", post(orders::pack))
        .route("/v1/shipments/{id}/ship", post(orders::ship_shipment))
        .route("/v1/shipments/{id}/deliver", post(orders::deliver))
        .route("/v1/shipments/{id}/tracking", post(orders::track))
        .route("/v1/shipments/{id}/waybill", get(orders::waybill))
        .route("/v1/after-sales", post(orders::create_after_sale))
        .route("/v1/after-sales/{id}/receive", post(orders::receive_after_sale))
        .route("/v1/rules", put(orders::reload_rules))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
}

async fn unknown_route(method: Method, uri: Uri) -> Problem {
    Problem::new(gateway(ErrorCode::UNKNOWN_OPCODE, format!("no route {method} {}", uri.path())))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    let mut problem =
        Problem::new(gateway(ErrorCode::UNKNOWN_OPCODE, format!("{} does not accept {method}", uri.path())));
    problem.status = StatusCode::METHOD_NOT_ALLOWED;
    problem
}
