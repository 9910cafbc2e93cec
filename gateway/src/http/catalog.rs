//! Catalog, campaigns and channels: warehouses, SKUs, kits, SKU lookup, a whole catalog at once
//! (what `oms catalog load` sends), the audit, flash sales and presales, channel policies.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use oms_proto::json::{self, JsonRequest, SkuKey, WarehouseKey};
use oms_proto::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bridge::{Caller, JsonBody};
use super::problem::{Problem, ProblemDetails};
use super::reservations::refuse_idempotency_key;
use super::stock::{json_call, Empty};
use super::types::{documented_object, path_id32, Channel, U64};
use super::JsonText;
use crate::server::ServerCtx;

/// A warehouse (ops). Defining an existing id updates it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseBody {
    #[schema(minimum = 1, maximum = 65535, format = Int32)]
    pub id: u16,
    /// Warehouse code, e.g. SH.
    #[schema(min_length = 1, max_length = 64, example = "SH")]
    pub code: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub region: String,
    /// Lower is preferred when several warehouses can fill a line.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 65535, format = Int32)]
    pub priority: u16,
}

/// A SKU (ops). Defining an existing code updates it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkuBody {
    #[schema(min_length = 1, max_length = 64, example = "MUG-WHT")]
    pub code: String,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub low_stock_threshold: u32,
}

/// A kit SKU made of component SKUs (ops).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KitBody {
    #[schema(min_length = 1, max_length = 64, example = "GIFT-BOX")]
    pub code: String,
    #[schema(min_items = 1, max_items = 64)]
    pub components: Vec<ComponentBody>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentBody {
    /// Component SKU code.
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    #[schema(minimum = 1, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

/// The id the server gave a SKU or kit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SkuId {
    #[schema(minimum = 0, format = Int64)]
    pub id: u32,
}

/// SKU codes to look up (storefront).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    #[schema(max_items = 4096)]
    pub codes: Vec<String>,
}

/// The id of each code in order, null when unknown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LookupAnswer {
    pub ids: Vec<Option<u32>>,
}

/// A whole catalog, as `oms catalog load FILE.json` reads it: warehouses, then SKUs, kits and
/// counted stock, applied in that order. Every step is an upsert or a set, so loading the same
/// catalog twice gives the same state; a refused step stops the load (the steps before it stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogBody {
    #[serde(default)]
    #[schema(max_items = 1024)]
    pub warehouses: Vec<WarehouseBody>,
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub skus: Vec<SkuBody>,
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub kits: Vec<KitBody>,
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub stock: Vec<StockRow>,
}

/// The counted on-hand of a SKU in a warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRow {
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    /// Warehouse id.
    #[schema(minimum = 1, maximum = 65535, format = Int32)]
    pub warehouse: u16,
    pub on_hand: U64,
}

/// What a catalog load did.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CatalogLoaded {
    #[schema(minimum = 0)]
    pub warehouses: usize,
    #[schema(minimum = 0)]
    pub skus: usize,
    #[schema(minimum = 0)]
    pub kits: usize,
    #[schema(minimum = 0)]
    pub stock: usize,
}

documented_object!(
    AuditReport,
    "The audit report: clean, totals, live_reservations and per-partition checks (docs/PROTOCOL.md 7.1)."
);

/// Define (or update) a warehouse.
#[utoipa::path(post, path = "/v1/warehouses", tag = "catalog", request_body = WarehouseBody,
    responses((status = 200, body = Empty)), security(("bearer" = [])))]
pub async fn define_warehouse(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<WarehouseBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    json_call(&ctx, &caller, warehouse_request(body), &[]).await
}

fn warehouse_request(w: WarehouseBody) -> JsonRequest {
    JsonRequest::DefineWarehouse(json::DefineWarehouse {
        id: w.id,
        code: w.code,
        region: w.region,
        priority: w.priority,
    })
}

/// Define (or update) a SKU; answers its id.
#[utoipa::path(post, path = "/v1/skus", tag = "catalog", request_body = SkuBody,
    responses((status = 200, body = SkuId)), security(("bearer" = [])))]
pub async fn define_sku(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SkuBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    json_call(&ctx, &caller, sku_request(body), &[]).await
}

fn sku_request(s: SkuBody) -> JsonRequest {
    JsonRequest::DefineSku(json::DefineSku { code: s.code, low_stock_threshold: s.low_stock_threshold })
}

/// Define (or update) a kit; answers its id.
#[utoipa::path(post, path = "/v1/kits", tag = "catalog", request_body = KitBody,
    responses((status = 200, body = SkuId)), security(("bearer" = [])))]
pub async fn define_kit(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<KitBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    json_call(&ctx, &caller, kit_request(body), &[]).await
}

fn kit_request(k: KitBody) -> JsonRequest {
    JsonRequest::DefineKit(json::DefineKit {
        code: k.code,
        components: k.components.into_iter().map(|c| json::JsonLine { sku: SkuKey::Code(c.sku), qty: c.qty }).collect(),
    })
}

/// The ids of SKU codes (storefront).
#[utoipa::path(post, path = "/v1/skus/lookup", tag = "catalog", request_body = LookupBody,
    responses((status = 200, body = LookupAnswer)), security(("bearer" = [])))]
pub async fn lookup(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    JsonBody(body): JsonBody<LookupBody>,
) -> Result<JsonText, Problem> {
    json_call(&ctx, &caller, JsonRequest::LookupSkus(json::LookupSkus { codes: body.codes }), &[]).await
}

/// Load a whole catalog (ops): warehouses, SKUs, kits, counted stock.
#[utoipa::path(post, path = "/v1/catalog", tag = "catalog",
    request_body(content = Option<CatalogBody>, description = "Every list defaults to empty."),
    responses((status = 200, body = CatalogLoaded)), security(("bearer" = [])))]
pub async fn load(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CatalogBody>,
) -> Result<Json<CatalogLoaded>, Problem> {
    refuse_idempotency_key(&headers)?;
    let mut done = CatalogLoaded::default();
    // Each step is its own request through the same path as a single call, like the CLI's load.
    let step = |what: String, request: JsonRequest| {
        let ctx = ctx.clone();
        let caller = &caller;
        async move {
            json_call(&ctx, caller, request, &[]).await.map_err(|mut p| {
                p.error.message = format!("{what}: {}", p.error.message);
                p
            })
        }
    };
    for w in body.warehouses {
        step(format!("warehouse {}", w.code), warehouse_request(w)).await?;
        done.warehouses += 1;
    }
    for s in body.skus {
        step(format!("SKU {}", s.code), sku_request(s)).await?;
        done.skus += 1;
    }
    for k in body.kits {
        step(format!("kit {}", k.code), kit_request(k)).await?;
        done.kits += 1;
    }
    for row in body.stock {
        let what = format!("stock of {} in warehouse {}", row.sku, row.warehouse);
        let op = json::StockOp::SetOnHand {
            sku: SkuKey::Code(row.sku),
            warehouse: WarehouseKey::Id(row.warehouse),
            on_hand: row.on_hand.0,
        };
        step(what, JsonRequest::StockOp(op)).await?;
        done.stock += 1;
    }
    Ok(Json(done))
}

/// The server's consistency audit (ops).
#[utoipa::path(get, path = "/v1/audit", tag = "catalog",
    responses((status = 200, body = AuditReport)), security(("bearer" = [])))]
pub async fn audit(State(ctx): State<Arc<ServerCtx>>, caller: Caller) -> Result<JsonText, Problem> {
    json_call(&ctx, &caller, JsonRequest::Audit, &[]).await
}

/// A flash sale: a pool of units set aside for a time window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlashSaleBody {
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub id: u32,
    /// SKU code.
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub pool_qty: u32,
    /// 0: no limit.
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub per_customer_limit: u32,
    pub starts_at_ms: U64,
    pub ends_at_ms: U64,
}

/// A presale: deposits now, the balance within a window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresaleBody {
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub id: u32,
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub quota: u32,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub per_customer_limit: u32,
    pub starts_at_ms: U64,
    pub ends_at_ms: U64,
    pub balance_window_ms: U64,
}

/// A campaign as the server holds it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignBody {
    #[schema(minimum = 0, format = Int64)]
    pub id: u32,
    /// SKU id.
    #[schema(minimum = 0, format = Int64)]
    pub sku: u32,
    /// SKU code.
    pub sku_code: String,
    /// flash_sale or presale.
    pub kind: String,
    #[schema(minimum = 0, format = Int64)]
    pub remaining: u64,
    pub open: bool,
    pub closed: bool,
    #[schema(minimum = 0, format = Int64)]
    pub per_customer_limit: u32,
    #[schema(minimum = 0, format = Int64)]
    pub starts_at_ms: u64,
    #[schema(minimum = 0, format = Int64)]
    pub ends_at_ms: u64,
}

/// Create a flash sale (ops).
#[utoipa::path(post, path = "/v1/campaigns/flash-sales", tag = "campaigns", request_body = FlashSaleBody,
    responses((status = 200, body = Empty),
        (status = 409, description = "duplicate_campaign", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create_flash_sale(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(b): JsonBody<FlashSaleBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let request = JsonRequest::CreateFlashSale(json::CreateFlashSale {
        id: b.id,
        sku: SkuKey::Code(b.sku),
        pool_qty: b.pool_qty,
        per_customer_limit: b.per_customer_limit,
        starts_at_ms: b.starts_at_ms.0,
        ends_at_ms: b.ends_at_ms.0,
    });
    json_call(&ctx, &caller, request, &[]).await
}

/// Create a presale (ops).
#[utoipa::path(post, path = "/v1/campaigns/presales", tag = "campaigns", request_body = PresaleBody,
    responses((status = 200, body = Empty),
        (status = 409, description = "duplicate_campaign", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create_presale(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(b): JsonBody<PresaleBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let request = JsonRequest::CreatePresale(json::CreatePresale {
        id: b.id,
        sku: SkuKey::Code(b.sku),
        quota: b.quota,
        per_customer_limit: b.per_customer_limit,
        starts_at_ms: b.starts_at_ms.0,
        ends_at_ms: b.ends_at_ms.0,
        balance_window_ms: b.balance_window_ms.0,
    });
    json_call(&ctx, &caller, request, &[]).await
}

/// Read a campaign (storefront).
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id", pattern = "^[0-9]{1,10}$")),
    responses((status = 200, body = CampaignBody),
        (status = 404, description = "unknown_campaign", body = ProblemDetails, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_campaign(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<JsonText, Problem> {
    let unknown = ErrorCode::UNKNOWN_CAMPAIGN;
    let id = path_id32(&id, "campaign", unknown)?;
    json_call(&ctx, &caller, JsonRequest::GetCampaign(json::GetCampaign { id }), &[unknown]).await
}

/// A channel's share of available stock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPolicyBody {
    /// Basis points of available stock the channel may sell (10000 = all).
    #[schema(minimum = 0, maximum = 10000, format = Int64)]
    pub ratio_bp: u32,
    /// Units the channel may always sell (never above what is available).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub floor: u32,
    #[serde(default)]
    #[schema(max_items = 4096)]
    pub exceptions: Vec<ChannelExceptionBody>,
}

/// A per-SKU exception to a channel's ratio.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelExceptionBody {
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    #[schema(minimum = 0, maximum = 10000, format = Int64)]
    pub ratio_bp: u32,
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub cap: u32,
}

/// Set a channel's policy (ops).
#[utoipa::path(put, path = "/v1/channels/{channel}/policy", tag = "campaigns", request_body = ChannelPolicyBody,
    params(("channel" = String, Path, description = "own, taobao, jd, douyin or a channel number", pattern = "^(own|taobao|jd|douyin|[0-9]{1,5})$")),
    responses((status = 200, body = Empty)),
    security(("bearer" = [])))]
pub async fn set_channel_policy(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(channel): Path<String>,
    JsonBody(b): JsonBody<ChannelPolicyBody>,
) -> Result<JsonText, Problem> {
    refuse_idempotency_key(&headers)?;
    let Some(Channel(channel)) = Channel::parse(&channel) else {
        return Err(Problem::bad_request(format!(
            "unknown channel {channel:?} (own, taobao, jd, douyin or 0..=65535)"
        )));
    };
    let request = JsonRequest::SetChannelPolicy(json::SetChannelPolicy {
        channel,
        ratio_bp: b.ratio_bp,
        floor: b.floor,
        exceptions: b
            .exceptions
            .into_iter()
            .map(|e| json::ChannelException { sku: SkuKey::Code(e.sku), ratio_bp: e.ratio_bp, cap: e.cap })
            .collect(),
    });
    json_call(&ctx, &caller, request, &[]).await
}
