//! `/v1/stock`: read a SKU's stock or export every SKU's availability (storefront), and the
//! counting operations of `oms stock` (ops): set on-hand, receive, adjust, transfer, buckets,
//! returns, and incoming purchase orders.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use oms_proto::json::{self, JsonRequest, SkuKey, WarehouseKey};
use oms_proto::{ErrorCode, Request, Response, SkuRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bridge::{Caller, JsonBody};
use super::problem::{Problem, ProblemDetails};
use super::reservations::refuse_idempotency_key;
use super::types::{path_id, unexpected, U64};
use super::JsonText;
use crate::server::ServerCtx;

/// The codes meaning "the SKU in the URL does not exist".
const SKU_IN_PATH: &[ErrorCode] = &[ErrorCode::UNKNOWN_SKU];

/// A SKU's stock over all warehouses, and per warehouse.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StockBody {
    /// SKU code.
    #[schema(example = "TSHIRT-RED-XL")]
    pub sku: String,
    #[schema(minimum = 0, format = Int64)]
    pub sku_id: u32,
    /// Units in all warehouses.
    #[schema(minimum = 0, format = Int64)]
    pub on_hand: u64,
    /// Held by reservations.
    #[schema(minimum = 0, format = Int64)]
    pub reserved: u64,
    /// Set aside for flash-sale pools.
    #[schema(minimum = 0, format = Int64)]
    pub pooled: u64,
    /// Safety stock, damaged and quality control.
    #[schema(minimum = 0, format = Int64)]
    pub unavailable: u64,
    /// What can be reserved now (for a kit: complete kits).
    #[schema(minimum = 0, format = Int64)]
    pub available: u64,
    /// Expected on open purchase orders.
    #[schema(minimum = 0, format = Int64)]
    pub incoming: u64,
    /// Empty unless the SKU is a kit.
    pub kit: Vec<KitComponentBody>,
    pub warehouses: Vec<WarehouseStockBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KitComponentBody {
    /// Component SKU code.
    pub sku: String,
    #[schema(minimum = 0, format = Int64)]
    pub sku_id: u32,
    #[schema(minimum = 0, format = Int64)]
    pub qty: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WarehouseStockBody {
    /// Warehouse code.
    #[schema(example = "SH")]
    pub warehouse: String,
    #[schema(minimum = 0, maximum = 65535, format = Int32)]
    pub warehouse_id: u16,
    #[schema(minimum = 0, format = Int64)]
    pub on_hand: u64,
    #[schema(minimum = 0, format = Int64)]
    pub reserved: u64,
    #[schema(minimum = 0, format = Int64)]
    pub pooled: u64,
    #[schema(minimum = 0, format = Int64)]
    pub safety: u64,
    #[schema(minimum = 0, format = Int64)]
    pub damaged: u64,
    #[schema(minimum = 0, format = Int64)]
    pub quality_control: u64,
    #[schema(minimum = 0, format = Int64)]
    pub available: u64,
}

/// One row of the export.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportRowBody {
    /// SKU id.
    #[schema(minimum = 0, format = Int64)]
    pub sku: u32,
    /// SKU code.
    pub code: String,
    /// For a kit: complete kits.
    #[schema(minimum = 0, format = Int64)]
    pub available: u64,
}

/// An operation with nothing to say: `{}`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Read a SKU's stock.
#[utoipa::path(
    get,
    path = "/v1/stock/{sku}",
    tag = "stock",
    params(("sku" = String, Path, description = "SKU code", min_length = 1, max_length = 64)),
    responses(
        (status = 200, body = StockBody),
        (status = 404, description = "unknown_sku", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    Path(sku): Path<String>,
) -> Result<Json<StockBody>, Problem> {
    match caller.call(&ctx, Request::GetStock { sku: SkuRef::Code(&sku) }).await {
        Response::Stock(view) => Ok(Json(StockBody {
            sku: view.sku.as_str().to_owned(),
            sku_id: view.sku_id,
            on_hand: view.on_hand,
            reserved: view.reserved,
            pooled: view.pooled,
            unavailable: view.unavailable,
            available: view.available,
            incoming: view.incoming,
            kit: view
                .kit
                .iter()
                .map(|c| KitComponentBody { sku: c.sku.as_str().to_owned(), sku_id: c.sku_id, qty: c.qty })
                .collect(),
            warehouses: view
                .warehouses
                .iter()
                .map(|w| WarehouseStockBody {
                    warehouse: w.warehouse.as_str().to_owned(),
                    warehouse_id: w.warehouse_id,
                    on_hand: w.on_hand,
                    reserved: w.reserved,
                    pooled: w.pooled,
                    safety: w.safety,
                    damaged: w.damaged,
                    quality_control: w.quality_control,
                    available: w.available,
                })
                .collect(),
        })),
        Response::Error(e) => Err(Problem::on_route(e, SKU_IN_PATH)),
        other => Err(unexpected(&other)),
    }
}

/// Every SKU with its available quantity, ordered by id.
#[utoipa::path(
    get,
    path = "/v1/stock",
    tag = "stock",
    responses((status = 200, body = Vec<ExportRowBody>)),
    security(("bearer" = []))
)]
pub async fn export(State(ctx): State<Arc<ServerCtx>>, caller: Caller) -> Result<JsonText, Problem> {
    json_call(&ctx, &caller, JsonRequest::ExportStock, &[]).await
}

/// Run a JSON-bodied operation (the binary port's opcodes 22-66) and pass its JSON answer on.
pub async fn json_call(
    ctx: &Arc<ServerCtx>,
    caller: &Caller,
    request: JsonRequest,
    in_path: &[ErrorCode],
) -> Result<JsonText, Problem> {
    let body = request.body().map_err(|e| Problem::internal(format!("cannot encode the operation: {e}")))?;
    match caller.call(ctx, Request::Json { opcode: request.opcode(), body: &body }).await {
        Response::Json(text) => Ok(JsonText(text)),
        Response::Error(e) => Err(Problem::on_route(e, in_path)),
        other => Err(unexpected(&other)),
    }
}

/// A stock operation on the SKU in the URL.
async fn stock_op(
    ctx: &Arc<ServerCtx>,
    caller: &Caller,
    headers: &HeaderMap,
    op: json::StockOp,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(headers)?;
    json_call(ctx, caller, JsonRequest::StockOp(op), SKU_IN_PATH).await
}

fn sku(code: String) -> SkuKey {
    SkuKey::Code(code)
}

fn warehouse(code: String) -> WarehouseKey {
    WarehouseKey::Code(code)
}

/// Set the counted on-hand of a SKU in a warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOnHandBody {
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64, example = "SH")]
    pub warehouse: String,
    pub on_hand: U64,
}

/// Units in or out of one warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveBody {
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64, example = "SH")]
    pub warehouse: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

/// A signed correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub warehouse: String,
    /// Units to add (negative: remove).
    #[schema(format = Int64)]
    pub delta: i64,
}

/// Move units between warehouses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Source warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub from: String,
    /// Destination warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub to: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

/// An unavailable bucket.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BucketName {
    Safety,
    Damaged,
    QualityControl,
}

/// Set the size of an unavailable bucket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketBody {
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub warehouse: String,
    pub bucket: BucketName,
    pub qty: U64,
}

/// Returned goods back into stock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnBody {
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub warehouse: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
    /// Into the damaged bucket instead of sellable stock.
    #[serde(default)]
    pub damaged: bool,
}

macro_rules! stock_route {
    ($fn:ident, $method:ident, $path:literal, $body:ty, $doc:literal, |$sku:ident, $b:ident| $op:expr) => {
        #[doc = $doc]
        #[utoipa::path(
            $method,
            path = $path,
            tag = "stock",
            params(("sku" = String, Path, description = "SKU code", min_length = 1, max_length = 64)),
            request_body = $body,
            responses(
                (status = 200, description = "Done.", body = Empty),
                (status = 404, description = "unknown_sku", body = ProblemDetails, content_type = "application/problem+json"),
                (status = 409, description = "below_committed: on-hand would drop under what is held", body = ProblemDetails, content_type = "application/problem+json"),
                (status = 422, description = "unknown_warehouse, insufficient_in_warehouse, kit_not_stocked, quantity_overflow, ...", body = ProblemDetails, content_type = "application/problem+json"),
            ),
            security(("bearer" = []))
        )]
        pub async fn $fn(
            State(ctx): State<Arc<ServerCtx>>,
            caller: Caller,
            headers: HeaderMap,
            Path($sku): Path<String>,
            JsonBody($b): JsonBody<$body>,
        ) -> Result<JsonText, Problem> {
            stock_op(&ctx, &caller, &headers, $op).await
        }
    };
}

stock_route!(
    set_on_hand,
    put,
    "/v1/stock/{sku}/on-hand",
    SetOnHandBody,
    "Set the counted on-hand of a SKU in a warehouse (ops).",
    |code, b| json::StockOp::SetOnHand { sku: sku(code), warehouse: warehouse(b.warehouse), on_hand: b.on_hand.0 }
);
stock_route!(
    receive,
    post,
    "/v1/stock/{sku}/receipts",
    ReceiveBody,
    "Goods in without a purchase order (ops).",
    |code, b| json::StockOp::Receive { sku: sku(code), warehouse: warehouse(b.warehouse), qty: b.qty }
);
stock_route!(
    adjust,
    post,
    "/v1/stock/{sku}/adjustments",
    AdjustBody,
    "A signed correction of on-hand (ops).",
    |code, b| json::StockOp::Adjust { sku: sku(code), warehouse: warehouse(b.warehouse), delta: b.delta }
);
stock_route!(
    transfer,
    post,
    "/v1/stock/{sku}/transfers",
    TransferBody,
    "Move units between two warehouses (ops).",
    |code, b| json::StockOp::Transfer { sku: sku(code), from: warehouse(b.from), to: warehouse(b.to), qty: b.qty }
);
stock_route!(
    set_bucket,
    put,
    "/v1/stock/{sku}/bucket",
    BucketBody,
    "Set an unavailable bucket (safety, damaged, quality_control) of a SKU in a warehouse (ops).",
    |code, b| json::StockOp::SetBucket {
        sku: sku(code),
        warehouse: warehouse(b.warehouse),
        bucket: match b.bucket {
            BucketName::Safety => json::Bucket::Safety,
            BucketName::Damaged => json::Bucket::Damaged,
            BucketName::QualityControl => json::Bucket::QualityControl,
        },
        qty: b.qty.0,
    }
);
stock_route!(
    return_to_stock,
    post,
    "/v1/stock/{sku}/returns",
    ReturnBody,
    "Returned goods back into a warehouse, sellable or damaged (ops).",
    |code, b| json::StockOp::ReturnToStock {
        sku: sku(code),
        warehouse: warehouse(b.warehouse),
        qty: b.qty,
        damaged: b.damaged
    }
);

/// Units expected on a purchase order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectBody {
    /// SKU code.
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    /// Warehouse code.
    #[schema(min_length = 1, max_length = 64)]
    pub warehouse: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
    /// Expected arrival, Unix ms.
    pub eta_ms: U64,
}

/// A new expected arrival.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    pub eta_ms: U64,
}

/// Units of a purchase order arrived.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoReceiveBody {
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

const PO_IN_PATH: &[ErrorCode] = &[ErrorCode(126)];

macro_rules! po_route {
    ($fn:ident, $path:literal, $body:ty, $doc:literal, |$po:ident, $b:ident| $op:expr) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            tag = "stock",
            params(("po" = String, Path, description = "Purchase order number", pattern = "^[0-9]{1,20}$")),
            request_body = $body,
            responses(
                (status = 200, description = "Done.", body = Empty),
                (status = 404, description = "unknown_purchase_order", body = ProblemDetails, content_type = "application/problem+json"),
                (status = 422, description = "unknown_sku, unknown_warehouse, ...", body = ProblemDetails, content_type = "application/problem+json"),
            ),
            security(("bearer" = []))
        )]
        pub async fn $fn(
            State(ctx): State<Arc<ServerCtx>>,
            caller: Caller,
            headers: HeaderMap,
            Path(po): Path<String>,
            JsonBody($b): JsonBody<$body>,
        ) -> Result<JsonText, Problem> {
            refuse_idempotency_key(&headers)?;
            let $po = path_id(&po, "purchase order", PO_IN_PATH[0])?;
            json_call(&ctx, &caller, JsonRequest::StockOp($op), PO_IN_PATH).await
        }
    };
}

po_route!(
    expect_incoming,
    "/v1/purchase-orders/{po}/expected",
    ExpectBody,
    "Expect units of a SKU on a purchase order (ops): they count as incoming.",
    |po, b| json::StockOp::ExpectIncoming {
        po,
        sku: sku(b.sku),
        warehouse: warehouse(b.warehouse),
        qty: b.qty,
        eta_ms: b.eta_ms.0
    }
);
po_route!(
    reschedule_incoming,
    "/v1/purchase-orders/{po}/reschedule",
    RescheduleBody,
    "Move a purchase order line's expected arrival (ops).",
    |po, b| json::StockOp::RescheduleIncoming { po, sku: sku(b.sku), eta_ms: b.eta_ms.0 }
);
po_route!(
    receive_purchase_order,
    "/v1/purchase-orders/{po}/receipts",
    PoReceiveBody,
    "Units of a purchase order arrived (ops).",
    |po, b| json::StockOp::ReceivePurchaseOrder { po, sku: sku(b.sku), qty: b.qty }
);
