//! `/v1/reservations`: the checkout hot path (reserve with an `Idempotency-Key`, confirm on
//! payment, release on cancel, pay a presale balance, ship, read one).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Json;
use oms_proto::{ErrorCode, Line, Request, Reserve, Response, WireError, CODE_LIMIT, IDEMPOTENCY_KEY_LIMIT};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bridge::{Caller, JsonBody};
use super::problem::{Problem, ProblemDetails};
use super::types::{path_id, unexpected, AllocationBody, Channel, U64};
use crate::server::ServerCtx;

/// The header a retry repeats (the convention of payment APIs).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that replays an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Default hold when `ttl_ms` is left out: 15 minutes, like `oms reserve`.
const DEFAULT_TTL_MS: u64 = 15 * 60 * 1000;

fn default_ttl() -> u64 {
    DEFAULT_TTL_MS
}

/// A cart to hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// The cart: at least one line, at most `max_lines` (64 by default) after kit expansion,
    /// each SKU once. All lines are held or none is.
    #[schema(min_items = 1, max_items = 64)]
    pub lines: Vec<LineBody>,
    /// How long an unconfirmed hold lasts, in milliseconds (1 ms to 7 days).
    #[serde(default = "default_ttl")]
    #[schema(minimum = 1, maximum = 604800000, default = 900000, format = Int64)]
    pub ttl_ms: u64,
    /// The shop's customer number (per-customer campaign limits); 0 for none.
    #[serde(default)]
    pub customer: U64,
    /// The sales channel [default: own].
    #[serde(default)]
    pub channel: Channel,
    /// Flash-sale or presale id when the cart is bought through one.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4294967295_u32, format = Int64)]
    pub campaign: Option<u32>,
}

/// One line of a cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    /// SKU code (a kit is expanded into its components).
    #[schema(min_length = 1, max_length = 64, example = "TSHIRT-RED-XL")]
    pub sku: String,
    /// Units.
    #[schema(minimum = 1, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

/// A reservation made (201), or the first answer again for a retry with the same key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReservationCreated {
    /// The reservation id: a 64-bit number written as a string (use it in the URLs below).
    #[schema(example = "281474976710657", pattern = "^[0-9]{1,20}$")]
    pub id: String,
    /// Unix time in ms at which an unconfirmed hold lapses.
    #[schema(minimum = 0, format = Int64)]
    pub expires_at_ms: u64,
    /// Presale: when the units are promised.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, format = Int64)]
    pub promise_ms: Option<u64>,
    /// Where the units are held; one line may be filled from several warehouses.
    pub allocations: Vec<AllocationBody>,
}

/// A reservation as the server holds it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReservationBody {
    #[schema(pattern = "^[0-9]{1,20}$")]
    pub id: String,
    /// held, confirmed, deposit_held, balance_paid, released, expired, shipped, balance_missed,
    /// or partial (the parts of a multi-partition reservation disagree: see `parts`).
    #[schema(example = "held")]
    pub status: String,
    #[schema(minimum = 0, format = Int64)]
    pub customer: u64,
    /// The channel's name (own, taobao, jd, douyin) or number.
    pub channel: String,
    #[schema(minimum = 0, format = Int64)]
    pub campaign: Option<u32>,
    #[schema(minimum = 0, format = Int64)]
    pub created_at_ms: u64,
    #[schema(minimum = 0, format = Int64)]
    pub expires_at_ms: u64,
    #[schema(minimum = 0, format = Int64)]
    pub promise_ms: Option<u64>,
    /// Presale units still awaited.
    #[schema(minimum = 0, format = Int64)]
    pub presale_outstanding: u32,
    pub allocations: Vec<AllocationBody>,
    /// Empty unless `status` is partial.
    pub parts: Vec<PartBody>,
}

/// One partition's part of a reservation whose parts disagree.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartBody {
    #[schema(minimum = 0, format = Int64)]
    pub partition: u32,
    pub status: String,
    pub allocations: Vec<AllocationBody>,
}

/// A reservation moved to a new state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReservationState {
    #[schema(pattern = "^[0-9]{1,20}$")]
    pub id: String,
    /// confirmed, released, balance_paid or shipped.
    pub status: String,
}

/// The codes meaning "the reservation in the URL does not exist".
const IN_PATH: &[ErrorCode] = &[ErrorCode::UNKNOWN_RESERVATION];

/// Hold stock for a checkout.
///
/// Lines are all-or-nothing. With an `Idempotency-Key`, a retry with the same key and the same
/// body answers the first reservation again (201, same body, `Idempotent-Replayed: true`) and
/// changes nothing; the same key with a different body is refused `idempotency_key_reused`
/// (422). A refused attempt is not remembered: retrying it tries again.
#[utoipa::path(
    post,
    path = "/v1/reservations",
    tag = "reservations",
    request_body = ReserveBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: up to 128 bytes, unique per checkout attempt (scoped to the API key).", max_length = 128, min_length = 1)
    ),
    responses(
        (status = 201, description = "Held (or replayed).", body = ReservationCreated,
            headers(
                ("Location" = String, description = "/v1/reservations/{id}"),
                ("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request with the same key")
            )),
        (status = 400, description = "Malformed JSON, unknown field, bad header.", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Refused: insufficient_stock (with `available` and `sku`), sold_out, limit_exceeded, channel_limit, unknown_sku, idempotency_key_reused, ...", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ReserveBody>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency_key(&headers)?;
    let mut lines = Vec::with_capacity(body.lines.len());
    for line in &body.lines {
        if line.sku.is_empty() || line.sku.len() > CODE_LIMIT {
            let name = "invalid_code";
            let code = ErrorCode::from_name(name).unwrap_or(ErrorCode::BAD_REQUEST);
            return Err(Problem::new(WireError::new(code, format!("SKU codes are 1 to {CODE_LIMIT} bytes"))));
        }
        lines.push(Line::code(&line.sku, line.qty));
    }
    let reserve = Reserve::new(&lines, body.ttl_ms)
        .key(key)
        .customer(body.customer.0)
        .channel(body.channel.0)
        .campaign(body.campaign);
    match caller.call(&ctx, Request::Reserve(reserve)).await {
        Response::Reserved(reserved) => {
            let id = reserved.id.to_string();
            let location = HeaderValue::from_str(&format!("/v1/reservations/{id}"))
                .map_err(|_| Problem::internal("reservation id is not a header value"))?;
            let created = ReservationCreated {
                id,
                expires_at_ms: reserved.expires_at_ms,
                promise_ms: reserved.promise_ms,
                allocations: reserved.allocations.iter().map(AllocationBody::from).collect(),
            };
            let mut response = (StatusCode::CREATED, Json(created)).into_response();
            response.headers_mut().insert(header::LOCATION, location);
            if reserved.replayed {
                response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            }
            Ok(response)
        }
        Response::Error(e) => Err(Problem::new(e)),
        other => Err(unexpected(&other)),
    }
}

/// The `Idempotency-Key` header ("" when absent).
fn idempotency_key(headers: &HeaderMap) -> Result<&str, Problem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else { return Ok("") };
    let key = value.to_str().map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?;
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LIMIT {
        return Err(Problem::bad_request(format!("Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LIMIT} bytes")));
    }
    Ok(key)
}

/// Refuse an `Idempotency-Key` on a route that does not honour it, so that no client believes a
/// retried stock receipt (say) is safe when it is not (docs/HTTP.md lists the routes).
pub fn refuse_idempotency_key(headers: &HeaderMap) -> Result<(), Problem> {
    if headers.contains_key(IDEMPOTENCY_KEY) {
        return Err(Problem::bad_request(
            "Idempotency-Key is honoured by POST /v1/reservations only; this operation is not made idempotent by it",
        ));
    }
    Ok(())
}

/// Read a reservation.
#[utoipa::path(
    get,
    path = "/v1/reservations/{id}",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id", pattern = "^[0-9]{1,20}$")),
    responses(
        (status = 200, body = ReservationBody),
        (status = 400, description = "The id is not a number.", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "unknown_reservation (ended ones are remembered for a bounded time).", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReservationBody>, Problem> {
    let id = path_id(&id, "reservation", ErrorCode::UNKNOWN_RESERVATION)?;
    match caller.call(&ctx, Request::GetReservation { id }).await {
        Response::Reservation(view) => Ok(Json(ReservationBody {
            id: view.id.to_string(),
            status: view.status.name().to_owned(),
            customer: view.customer,
            channel: Channel::name(view.channel).map_or_else(|| view.channel.to_string(), str::to_owned),
            campaign: view.campaign,
            created_at_ms: view.created_at_ms,
            expires_at_ms: view.expires_at_ms,
            promise_ms: view.promise_ms,
            presale_outstanding: view.presale_outstanding,
            allocations: view.allocations.iter().map(AllocationBody::from).collect(),
            parts: view
                .parts
                .iter()
                .map(|p| PartBody {
                    partition: p.partition,
                    status: p.status.name().to_owned(),
                    allocations: p.allocations.iter().map(AllocationBody::from).collect(),
                })
                .collect(),
        })),
        Response::Error(e) => Err(Problem::on_route(e, IN_PATH)),
        other => Err(unexpected(&other)),
    }
}

/// One state change named by the URL's last segment.
async fn act(
    ctx: Arc<ServerCtx>,
    caller: Caller,
    headers: HeaderMap,
    id: String,
    make: fn(u64) -> Request<'static>,
    status: &'static str,
) -> Result<Json<ReservationState>, Problem> {
    refuse_idempotency_key(&headers)?;
    let id = path_id(&id, "reservation", ErrorCode::UNKNOWN_RESERVATION)?;
    match caller.call(&ctx, make(id)).await {
        Response::Done => Ok(Json(ReservationState { id: id.to_string(), status: status.to_owned() })),
        Response::Error(e) => Err(Problem::on_route(e, IN_PATH)),
        other => Err(unexpected(&other)),
    }
}

/// Confirm: the customer paid; the hold no longer expires.
#[utoipa::path(
    post,
    path = "/v1/reservations/{id}/confirm",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id", pattern = "^[0-9]{1,20}$")),
    responses(
        (status = 200, body = ReservationState),
        (status = 400, body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "unknown_reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "reservation_expired, invalid_reservation_state", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn confirm(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ReservationState>, Problem> {
    act(ctx, caller, headers, id, |id| Request::Confirm { id }, "confirmed").await
}

/// Release: give the units back (the customer cancelled, the payment failed).
#[utoipa::path(
    post,
    path = "/v1/reservations/{id}/release",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id", pattern = "^[0-9]{1,20}$")),
    responses(
        (status = 200, body = ReservationState),
        (status = 400, body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "unknown_reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "invalid_reservation_state (already released, shipped, ...)", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn release(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ReservationState>, Problem> {
    act(ctx, caller, headers, id, |id| Request::Release { id }, "released").await
}

/// Pay a presale's balance.
#[utoipa::path(
    post,
    path = "/v1/reservations/{id}/pay-balance",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id", pattern = "^[0-9]{1,20}$")),
    responses(
        (status = 200, body = ReservationState),
        (status = 400, body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "unknown_reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "reservation_expired, invalid_reservation_state", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn pay_balance(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ReservationState>, Problem> {
    act(ctx, caller, headers, id, |id| Request::PayBalance { id }, "balance_paid").await
}

/// Ship (ops role): the units left the warehouse.
#[utoipa::path(
    post,
    path = "/v1/reservations/{id}/ship",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id", pattern = "^[0-9]{1,20}$")),
    responses(
        (status = 200, body = ReservationState),
        (status = 400, body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: needs the ops role", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "unknown_reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "invalid_reservation_state (ship before confirm, ...)", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn ship(
    State(ctx): State<Arc<ServerCtx>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ReservationState>, Problem> {
    act(ctx, caller, headers, id, |id| Request::Ship { id }, "shipped").await
}
