//! Orders and fulfilment (docs/ORDERS.md): import, read, list, approve, reject, cancel, allocate;
//! waves, shipments (pack, ship, deliver, tracking, waybill), after-sales and the rules file.
//! Answers are the order book's JSON views, passed on as the binary port's JSON operations give
//! them (their members are described in docs/ORDERS.md).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use oms_proto::json::{self, JsonRequest, SkuKey, WarehouseKey};
use oms_proto::{ErrorCode, WireError};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::bridge::{Caller, JsonBody};
use super::problem::{Problem, ProblemDetails};
use super::reservations::refuse_idempotency_key;
use super::stock::json_call;
use super::types::{documented_object, path_id, OrderPayload};
use super::JsonText;
use crate::server::ServerCtx;

documented_object!(
    OrderView,
    "An order: id, channel, external_id, status, holds, buyer, lines, shipments, after_sales, ... (docs/ORDERS.md)."
);
documented_object!(ImportResults, "{channel, imported, rejected, results: [{index, ok, order, external_id, status, ...} or {index, ok: false, path, error}]}.");
documented_object!(
    AllocationResults,
    "{orders: [{order, allocation: {result: full|partial|parked|not_waiting, reservation, shipments}}]}."
);
documented_object!(
    WaveView,
    "A wave or the waves created: {warehouse, waves: [{wave, shipments}]} / the wave with its pick list."
);
documented_object!(ShipmentView, "A shipment plus order and order_status.");
documented_object!(AfterSaleView, "An after-sale: {after_sale, order, kind, refund_cents, status, ...}.");
documented_object!(RulesReloaded, "{reloaded: [command names]}.");
documented_object!(WaybillLabel, "The waybill label data: {waybill, carrier, shipment, order, channel, external_id, warehouse, weight_g, cash_on_delivery, cod_cents, to, items}.");

/// One order summary in a list.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct OrderSummary {
    #[schema(minimum = 0, format = Int64)]
    pub id: u64,
    pub channel: String,
    pub external_id: String,
    pub status: String,
}

// Shipment and after-sale ids carry their order's id: an unknown one may be answered
// `unknown_order`, which then means the resource in the URL does not exist too.
const ORDER_IN_PATH: &[ErrorCode] = &[ErrorCode(130)];
const SHIPMENT_IN_PATH: &[ErrorCode] = &[ErrorCode(138), ErrorCode(130)];
const WAVE_IN_PATH: &[ErrorCode] = &[ErrorCode(140)];
const AFTER_SALE_IN_PATH: &[ErrorCode] = &[ErrorCode(139), ErrorCode(130)];

/// An order status name (docs/ORDERS.md), from the engine's list.
pub struct OrderStatusName;

impl utoipa::PartialSchema for OrderStatusName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use oms_engine::orders::model::OrderStatus;
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::new(utoipa::openapi::schema::Type::String))
            .enum_values(Some(OrderStatus::ALL.iter().map(|s| s.name())))
            .into()
    }
}

impl ToSchema for OrderStatusName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("OrderStatus")
    }
}

/// Orders from a channel: one order object or an array, in the channel's own format.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// taobao, jd, douyin or native.
    #[schema(example = "native")]
    pub channel: ImportChannel,
    /// The channel's order object or an array of them (kept exactly as sent, amounts included).
    #[schema(value_type = OrderPayload)]
    pub payload: Box<RawValue>,
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportChannel {
    Taobao,
    Jd,
    Douyin,
    Native,
}

/// Import orders (storefront). A channel order imported again with the same contents answers
/// `unchanged`; with different contents it is refused `order_conflict` for that order: the
/// channel's order id is the import's idempotency key.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = ImportBody,
    responses((status = 200, body = ImportResults)), security(("bearer" = [])))]
pub async fn import(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ImportBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let channel = match b.channel {
        ImportChannel::Taobao => "taobao",
        ImportChannel::Jd => "jd",
        ImportChannel::Douyin => "douyin",
        ImportChannel::Native => "native",
    };
    // The binary protocol also takes the payload's text as a JSON string (for the CLI, which has
    // a file); over HTTP the payload is the JSON itself.
    let payload = b.payload.get().to_owned();
    if !(payload.starts_with('{') || payload.starts_with('[')) {
        return Err(Problem::bad_request("payload must be the channel's order object or an array of them"));
    }
    let request = JsonRequest::OrderImport(json::OrderImport { channel: channel.to_owned(), payload });
    json_call(&ctx, &caller, request, &[]).await
}

/// Filters of an order list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status (docs/ORDERS.md).
    #[param(value_type = Option<OrderStatusName>)]
    pub status: Option<String>,
    /// At most this many (0 or absent: 1000, the most).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
}

/// List orders, oldest first (storefront).
#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(ListQuery),
    responses((status = 200, body = Vec<OrderSummary>)), security(("bearer" = [])))]
pub async fn list(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<JsonText, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(0);
    if limit > 1000 {
        return Err(Problem::bad_request("limit is at most 1000"));
    }
    json_call(&ctx, &caller, JsonRequest::OrderList(json::OrderList { status: query.status, limit }), &[]).await
}

fn order_id(text: &str) -> Result<u64, Problem> {
    match path_id(text, "order", ORDER_IN_PATH[0])? {
        // Orders are numbered from 1; 0 means "every waiting order" to the allocate request,
        // which only `POST /v1/orders/allocate` may ask for.
        0 => Err(Problem::on_route(WireError::new(ORDER_IN_PATH[0], "unknown order 0"), ORDER_IN_PATH)),
        id => Ok(id),
    }
}

/// Read an order (storefront).
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id", pattern = "^[0-9]{1,20}$")),
    responses((status = 200, body = OrderView),
        (status = 404, description = "unknown_order", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonText, Problem> {
    let id = order_id(&id)?;
    json_call(&ctx, &caller, JsonRequest::OrderGet(json::IdBody { id }), ORDER_IN_PATH).await
}

/// Why an order is rejected or cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub reason: String,
}

macro_rules! order_action {
    ($fn:ident, $path:literal, $doc:literal, $body:ty, |$id:ident, $b:ident| $request:expr, $answer:ty) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "orders",
            params(("id" = String, Path, description = "Order id", pattern = "^[0-9]{1,20}$")),
            request_body(content = Option<$body>, description = "Optional: an empty body reads as `{}`."),
            responses((status = 200, body = $answer),
                (status = 404, description = "unknown_order", body = ProblemDetails, content_type = "application/problem+json"),
                (status = 409, description = "illegal_transition: the order's state does not allow it", body = ProblemDetails, content_type = "application/problem+json")),
            security(("bearer" = [])))]
        pub async fn $fn(
            State(ctx): State<Arc<ServerCtx>>,
            caller: Caller,
            headers: HeaderMap,
            Path(id): Path<String>,
            JsonBody($b): JsonBody<$body>,
        ) -> Result<JsonText, Problem> {
            refuse_idempotency_key(&headers)?;
            let $id = order_id(&id)?;
            json_call(&ctx, &caller, $request, ORDER_IN_PATH).await
        }
    };
}

/// No body (an empty one, or `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

order_action!(
    approve,
    "/v1/orders/{id}/approve",
    "Approve an order held for review (ops); it is allocated at once.",
    NoBody,
    |id, _b| JsonRequest::OrderApprove(json::IdBody { id }),
    OrderView
);
order_action!(
    reject,
    "/v1/orders/{id}/reject",
    "Reject an order (ops).",
    ReasonBody,
    |id, b| JsonRequest::OrderReject(json::OrderReason { id, reason: b.reason }),
    OrderView
);
order_action!(
    cancel,
    "/v1/orders/{id}/cancel",
    "Cancel an order (storefront); its reservations are released.",
    ReasonBody,
    |id, b| JsonRequest::OrderCancel(json::OrderReason { id, reason: b.reason }),
    OrderView
);
order_action!(
    allocate,
    "/v1/orders/{id}/allocate",
    "Allocate a waiting or parked order (ops).",
    NoBody,
    |id, _b| JsonRequest::OrderAllocate(json::IdBody { id }),
    AllocationResults
);

/// Allocate every waiting and parked order (ops).
#[utoipa::path(post, path = "/v1/orders/allocate", tag = "orders",
    request_body(content = Option<NoBody>, description = "Optional: an empty body reads as `{}`."),
    responses((status = 200, body = AllocationResults)), security(("bearer" = [])))]
pub async fn allocate_all(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(_b): JsonBody<NoBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    json_call(&ctx, &caller, JsonRequest::OrderAllocate(json::IdBody { id: 0 }), &[]).await
}

/// Waves to create in a warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveBody {
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub warehouse: String,
    /// Only shipments for this carrier.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub carrier: Option<String>,
    /// 0: no limit.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub max_shipments: u32,
}

/// Create pick waves from allocated shipments (ops).
#[utoipa::path(post, path = "/v1/waves", tag = "fulfilment", request_body = WaveBody,
    responses((status = 200, body = WaveView),
        (status = 409, description = "nothing_to_wave", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create_wave(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(b): JsonBody<WaveBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let request = JsonRequest::WaveCreate(json::WaveCreate {
        warehouse: WarehouseKey::Code(b.warehouse),
        carrier: b.carrier,
        max_shipments: b.max_shipments,
    });
    json_call(&ctx, &caller, request, &[]).await
}

/// Read a wave and its pick list (ops).
#[utoipa::path(get, path = "/v1/waves/{id}", tag = "fulfilment",
    params(("id" = String, Path, description = "Wave id", pattern = "^[0-9]{1,20}$")),
    responses((status = 200, body = WaveView),
        (status = 404, description = "unknown_wave", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_wave(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonText, Problem> {
    let id = path_id(&id, "wave", WAVE_IN_PATH[0])?;
    json_call(&ctx, &caller, JsonRequest::WaveGet(json::IdBody { id }), WAVE_IN_PATH).await
}

macro_rules! shipment_action {
    ($fn:ident, $path:literal, $doc:literal, $variant:ident) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "fulfilment",
            params(("id" = String, Path, description = "Shipment id", pattern = "^[0-9]{1,20}$")),
            request_body(content = Option<NoBody>, description = "Optional: an empty body reads as `{}`."),
            responses((status = 200, body = ShipmentView),
                (status = 404, description = "unknown_shipment", body = ProblemDetails, content_type = "application/problem+json"),
                (status = 409, description = "shipment_transition", body = ProblemDetails, content_type = "application/problem+json")),
            security(("bearer" = [])))]
        pub async fn $fn(
            State(ctx): State<Arc<ServerCtx>>,
            caller: Caller,
            headers: HeaderMap,
            Path(id): Path<String>,
            JsonBody(_b): JsonBody<NoBody>,
        ) -> Result<JsonText, Problem> {
            refuse_idempotency_key(&headers)?;
            let shipment = path_id(&id, "shipment", SHIPMENT_IN_PATH[0])?;
            json_call(&ctx, &caller, JsonRequest::$variant(json::ShipmentBody { shipment }), SHIPMENT_IN_PATH).await
        }
    };
}

shipment_action!(pack, "/v1/shipments/{id}/pack", "Pack a shipment; its waybill is issued (ops).", ShipmentPack);
shipment_action!(
    ship_shipment,
    "/v1/shipments/{id}/ship",
    "Hand a shipment to the carrier (ops); the stock leaves when the last shipment of a reservation ships.",
    ShipmentShip
);
shipment_action!(deliver, "/v1/shipments/{id}/deliver", "Mark a shipment delivered (ops).", ShipmentDeliver);

/// A carrier tracking event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingBody {
    /// The event code.
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub location: String,
}

/// Record a tracking event on a shipment (ops).
#[utoipa::path(post, path = "/v1/shipments/{id}/tracking", tag = "fulfilment",
    params(("id" = String, Path, description = "Shipment id", pattern = "^[0-9]{1,20}$")),
    request_body = TrackingBody,
    responses((status = 200, body = ShipmentView),
        (status = 404, description = "unknown_shipment", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn track(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TrackingBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let shipment = path_id(&id, "shipment", SHIPMENT_IN_PATH[0])?;
    let request = JsonRequest::TrackAdd(json::TrackAdd { shipment, code: b.code, location: b.location });
    json_call(&ctx, &caller, request, SHIPMENT_IN_PATH).await
}

/// The waybill label data of a packed shipment (ops); `oms waybill print` renders it as PDF.
#[utoipa::path(get, path = "/v1/shipments/{id}/waybill", tag = "fulfilment",
    params(("id" = String, Path, description = "Shipment id", pattern = "^[0-9]{1,20}$")),
    responses((status = 200, body = WaybillLabel),
        (status = 404, description = "unknown_shipment", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn waybill(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonText, Problem> {
    let shipment = path_id(&id, "shipment", SHIPMENT_IN_PATH[0])?;
    json_call(&ctx, &caller, JsonRequest::Waybill(json::ShipmentBody { shipment }), SHIPMENT_IN_PATH).await
}

/// A return, exchange or refund on delivered units.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterSaleBody {
    #[schema(minimum = 0, format = Int64)]
    pub order: u64,
    pub kind: AfterSaleKind,
    #[schema(min_items = 1, max_items = 64)]
    pub lines: Vec<AfterSaleLine>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub reason: String,
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AfterSaleKind {
    Return,
    Exchange,
    Refund,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterSaleLine {
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    #[schema(minimum = 1, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

/// Open an after-sale (ops).
#[utoipa::path(post, path = "/v1/after-sales", tag = "after-sales", request_body = AfterSaleBody,
    responses((status = 200, body = AfterSaleView)), security(("bearer" = [])))]
pub async fn create_after_sale(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(b): JsonBody<AfterSaleBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let kind = match b.kind {
        AfterSaleKind::Return => "return",
        AfterSaleKind::Exchange => "exchange",
        AfterSaleKind::Refund => "refund",
    };
    let request = JsonRequest::AfterSaleCreate(json::AfterSaleCreate {
        order: b.order,
        kind: kind.to_owned(),
        lines: b.lines.into_iter().map(|l| json::JsonLine { sku: SkuKey::Code(l.sku), qty: l.qty }).collect(),
        reason: b.reason,
    });
    json_call(&ctx, &caller, request, &[]).await
}

/// Returned goods of an after-sale arrived.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveAfterSaleBody {
    #[serde(default)]
    pub damaged: bool,
}

/// Receive an after-sale's returned goods (ops).
#[utoipa::path(post, path = "/v1/after-sales/{id}/receive", tag = "after-sales",
    params(("id" = String, Path, description = "After-sale id", pattern = "^[0-9]{1,20}$")),
    request_body(content = Option<ReceiveAfterSaleBody>, description = "Optional: an empty body reads as `{}`."),
    responses((status = 200, body = AfterSaleView),
        (status = 404, description = "unknown_after_sale", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn receive_after_sale(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReceiveAfterSaleBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let id = path_id(&id, "after-sale", AFTER_SALE_IN_PATH[0])?;
    let request = JsonRequest::AfterSaleReceive(json::AfterSaleReceive { id, damaged: b.damaged });
    json_call(&ctx, &caller, request, AFTER_SALE_IN_PATH).await
}

/// The rules file (audit, routing and carrier rules; docs/ORDERS.md "Rules file").
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    /// The rules file's TOML text.
    pub toml: String,
}

/// Replace the rules (ops); parsed by the server and applied as logged commands.
#[utoipa::path(put, path = "/v1/rules", tag = "orders", request_body = RulesBody,
    responses((status = 200, body = RulesReloaded)), security(("bearer" = [])))]
pub async fn reload_rules(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(b): JsonBody<RulesBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    json_call(&ctx, &caller, JsonRequest::RulesReload(json::RulesReload { toml: b.toml }), &[]).await
}
