//! The OpenAPI 3 document of the API, generated from the handlers' `#[utoipa::path]` attributes
//! and the body types. `GET /openapi.json` serves it; docs/openapi.json is the committed copy that
//! `gateway/tests/openapi.rs` keeps equal to it.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response as HttpResponse};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::{catalog, orders, problem, reservations, stock, types};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "omsd HTTP/JSON API",
        description = "Stock reservations, stock, catalog, campaigns and orders over HTTP/JSON (docs/HTTP.md). Every refusal is an RFC 9457 problem document (application/problem+json) carrying the stable error `code` and `name` of docs/PROTOCOL.md section 6.",
        license(name = "Apache-2.0")
    ),
    paths(
        reservations::create, reservations::get, reservations::confirm, reservations::release,
        reservations::pay_balance, reservations::ship,
        stock::export, stock::get, stock::set_on_hand, stock::receive, stock::adjust, stock::transfer,
        stock::set_bucket, stock::return_to_stock, stock::expect_incoming, stock::reschedule_incoming,
        stock::receive_purchase_order,
        catalog::define_warehouse, catalog::define_sku, catalog::define_kit, catalog::lookup, catalog::load,
        catalog::audit, catalog::create_flash_sale, catalog::create_presale, catalog::get_campaign,
        catalog::set_channel_policy,
        orders::import, orders::list, orders::get, orders::approve, orders::reject, orders::cancel,
        orders::allocate, orders::allocate_all, orders::create_wave, orders::get_wave, orders::pack,
        orders::ship_shipment, orders::deliver, orders::track, orders::waybill, orders::create_after_sale,
        orders::receive_after_sale, orders::reload_rules,
    ),
    components(schemas(
        problem::ProblemDetails, types::U64, types::Channel, types::AllocationBody, orders::OrderStatusName
    )),
    modifiers(&Common),
    tags(
        (name = "reservations", description = "The checkout: reserve, confirm, release, pay balance, ship."),
        (name = "stock", description = "Stock reads and counting operations."),
        (name = "catalog", description = "Warehouses, SKUs, kits, lookups, catalog load, audit."),
        (name = "campaigns", description = "Flash sales, presales and channel policies."),
        (name = "orders", description = "Order import and lifecycle, rules."),
        (name = "fulfilment", description = "Waves, shipments, tracking, waybills."),
        (name = "after-sales", description = "Returns, exchanges, refunds."),
    )
)]
pub struct ApiDoc;

/// The bearer scheme, and the problems any route may answer (documented once here rather than
/// on every route): malformed input, keys and roles, state conflicts, refusals, backpressure.
struct Common;

/// (status, description, only for routes with a request body)
const COMMON: [(&str, &str, bool); 10] = [
    ("400", "bad_request: malformed JSON, an unknown field, a bad header or path id.", false),
    ("401", "unauthenticated: missing or unknown API key (or, without configured keys, a non-loopback client).", false),
    ("403", "forbidden: the key's role may not do this.", false),
    ("404", "unknown_*: the resource named in the URL does not exist (or no such route).", false),
    ("409", "A state conflict: the resource's state does not allow the action.", false),
    ("413", "frame_too_large: the body is above max_frame_bytes.", true),
    ("415", "bad_request: the body must be JSON (Content-Type: application/json).", true),
    (
        "422",
        "A refusal of a well-formed request (stock, limits, unknown SKUs in the body, values out of range).",
        false,
    ),
    ("429", "busy: a partition queue is full; retry after Retry-After.", false),
    (
        "503",
        "shutting_down, storage_failed, not_ready, read_only (a follower) or replica_timeout; retry after Retry-After.",
        false,
    ),
];

impl Modify for Common {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from omsd's [[api_keys]]; not needed from loopback when no keys are configured.",
                    ))
                    .build(),
            ),
        );
        for item in api.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                if let Some(body) = operation.request_body.as_mut() {
                    optional_body_not_null(body);
                }
                let has_body = operation.request_body.is_some();
                for (status, description, body_only) in COMMON {
                    if (body_only && !has_body) || operation.responses.responses.contains_key(status) {
                        continue;
                    }
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            problem::PROBLEM_JSON,
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("ProblemDetails"))).build(),
                        )
                        .build();
                    operation.responses.responses.insert(status.to_owned(), RefOr::T(response));
                }
            }
        }
    }
}

/// An optional body is declared `Option<T>`, which utoipa renders as "T or null"; the API means
/// "T, or no body at all" (an empty body reads as `{}`), so the null branch is dropped.
fn optional_body_not_null(body: &mut utoipa::openapi::request_body::RequestBody) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else { continue };
        let is_null = |item: &RefOr<Schema>| matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        if one_of.items.len() == 2 && one_of.items.iter().any(is_null) {
            content.schema = one_of.items.iter().find(|item| !is_null(item)).cloned();
        }
    }
}

/// The document as pretty JSON with a final newline (the committed file's exact bytes).
pub fn document() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// `GET /openapi.json` (no key needed: the document is public).
pub async fn serve_document() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(document).clone();
    let mut response = text.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
