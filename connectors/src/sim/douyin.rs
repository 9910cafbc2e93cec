//! The Douyin shop open API, simulated: `POST /<method as path>?app_key&method&v&timestamp&sign
//! &sign_method&access_token` with the JSON body as `param_json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State as AxumState};
use axum::http::Uri;
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{fresh, Confirmation, Reply, SimError, SimItem, Simulator};
use crate::sign::{canonical_json, douyin_sign, signatures_match, DouyinSignMethod};

pub(super) fn router(sim: Arc<Simulator>) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

async fn handle(
    AxumState(sim): AxumState<Arc<Simulator>>,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    body: String,
) -> Json<Value> {
    let method = query.get("method").cloned().unwrap_or_default();
    let path_matches = uri.path().trim_start_matches('/') == method.replace('.', "/");
    let params: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    // The signature covers the canonical form of the body; a body in another key order is refused.
    let canonical = body.trim() == canonical_json(&params);
    let timestamp = query.get("timestamp").cloned().unwrap_or_default();
    let signed = path_matches
        && canonical
        && query.get("app_key").is_some_and(|k| *k == sim.config.app_key)
        && query.get("v").is_some_and(|v| v == "2")
        && match DouyinSignMethod::parse(query.get("sign_method").map_or("", String::as_str)) {
            Some(m) => query.get("sign").is_some_and(|s| {
                signatures_match(
                    s,
                    &douyin_sign(&sim.config.app_key, &method, body.trim(), &timestamp, "2", &sim.config.secret, m),
                )
            }),
            None => false,
        };
    let timestamp_ok = fresh(timestamp.parse::<i64>().ok().and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()));
    let session = query.get("access_token").cloned().unwrap_or_default();
    let reply = sim.serve(&method, params, signed, timestamp_ok, &session, |sim, state, p| {
        let text = |name: &str| match &p[name] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        match method.as_str() {
            "sku.syncStock" => {
                if p["incremental"].as_bool() != Some(false) {
                    return Reply::Error(SimError::BadParameter);
                }
                let code = if p.get("code").is_some() {
                    Some(text("code"))
                } else {
                    sim.code_of(&text("product_id"), &text("sku_id"))
                };
                let Some(code) = code else { return Reply::Error(SimError::ItemNotFound) };
                let Some(qty) = p["stock_num"].as_i64() else { return Reply::Error(SimError::BadParameter) };
                match sim.set_shown(state, &code, qty) {
                    Ok(()) => Reply::Ok(json!({})),
                    Err(e) => Reply::Error(e),
                }
            }
            "order.searchList" => {
                let (Some(from), Some(to)) = (p["update_time_start"].as_i64(), p["update_time_end"].as_i64()) else {
                    return Reply::Error(SimError::BadParameter);
                };
                let (Ok(from), Ok(to)) =
                    (OffsetDateTime::from_unix_timestamp(from), OffsetDateTime::from_unix_timestamp(to))
                else {
                    return Reply::Error(SimError::BadParameter);
                };
                let page = p["page"].as_u64().unwrap_or(0) as usize;
                let size = p["size"].as_u64().unwrap_or(20).clamp(1, 100) as usize;
                let (orders, total) =
                    Simulator::orders_in(state, from, to + time::Duration::seconds(1), page + 1, size);
                Reply::Ok(json!({ "shop_order_list": orders, "total": total, "page": page, "size": size }))
            }
            "order.logisticsAdd" | "order.logisticsAddMultiPack" => {
                let id = text("order_id");
                if !state.orders.iter().any(|o| o.external_id == id) {
                    return Reply::Error(SimError::BadParameter);
                }
                if Simulator::refuse_confirmation(state, &id) {
                    return Reply::Error(SimError::ConfirmRefused);
                }
                if method == "order.logisticsAdd" {
                    state.confirmations.push(Confirmation {
                        external_id: id,
                        company: text("company_code"),
                        waybill: text("logistics_code"),
                        parts: String::new(),
                    });
                } else {
                    for pack in p["pack_list"].as_array().cloned().unwrap_or_default() {
                        state.confirmations.push(Confirmation {
                            external_id: id.clone(),
                            company: pack["company_code"].as_str().unwrap_or_default().to_owned(),
                            waybill: pack["logistics_code"].as_str().unwrap_or_default().to_owned(),
                            parts: pack["shipped_sku_codes"].to_string(),
                        });
                    }
                }
                Reply::Ok(json!({}))
            }
            _ => Reply::Error(SimError::UnknownMethod),
        }
    });
    let log_id = format!("sim{:x}", sim.since_start().as_nanos());
    Json(match reply {
        Reply::Ok(data) => {
            json!({ "code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "data": data, "log_id": log_id })
        }
        Reply::Error(e) => {
            let (code, sub_code, sub_msg) = match e {
                SimError::BadSignature => (30001, "isv.signature-invalid", "签名错误"),
                SimError::StaleTimestamp => (30001, "isv.timestamp-invalid", "时间戳错误"),
                SimError::SessionExpired => (30002, "isv.access-token-expired", "access_token已过期"),
                SimError::Throttled => (50002, "isv.frequency-limit", "调用频率超限"),
                SimError::ItemNotFound => (40004, "isv.sku-not-exist", "商品不存在"),
                SimError::BadParameter => (40004, "isv.parameter-invalid", "参数错误"),
                SimError::UnknownMethod => (40004, "isv.method-not-exist", "方法不存在"),
                SimError::ConfirmRefused => (40004, "isv.logistics-service-error", "发货失败，请重试"),
            };
            json!({ "code": code, "msg": "error", "sub_code": sub_code, "sub_msg": sub_msg, "log_id": log_id })
        }
    })
}

/// A paid order being prepared, shaped like `order.searchList`'s `shop_order_list` entries.
pub(super) fn order(id: &str, item: &SimItem, qty: i64, buyer: &str, now: OffsetDateTime) -> Value {
    let total = item.price_cents * qty;
    json!({
        "order_id": id,
        "shop_id": "sim-shop",
        "order_status": 2,
        "doudian_open_id": buyer,
        "pay_amount": total,
        "post_amount": 0,
        "create_time": now.unix_timestamp(),
        "update_time": now.unix_timestamp(),
        "post_receiver": "赵**",
        "post_tel": "1**********",
        "post_addr": {
            "province": { "name": "浙江省", "id": "33" },
            "city": { "name": "杭州市", "id": "3301" },
            "town": { "name": "余杭区", "id": "330110" },
            "street": { "name": "五常街道", "id": "330110005" },
            "detail": "文一西路 969 号"
        },
        "sku_order_list": [{
            "order_id": format!("{id}1"),
            "sku_id": item.sku_id,
            "product_id": item.item_id,
            "out_sku_id": item.code,
            "item_num": qty,
            "origin_amount": total,
            "pay_amount": total,
            "after_sale_info": { "after_sale_status": 0 }
        }]
    })
}
