//! The Taobao/Tmall TOP router, simulated: `POST /router/rest` with a signed form.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, State as AxumState};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{
    fresh, local_time, params_json, parse_local_time, yuan, Confirmation, Reply, SimError, SimItem, Simulator,
};
use crate::sign::{signatures_match, top_sign, TopSignMethod};

const SYSTEM: [&str; 8] = ["method", "app_key", "session", "timestamp", "format", "v", "sign_method", "sign"];

pub(super) fn router(sim: Arc<Simulator>) -> Router {
    Router::new().route("/router/rest", post(handle)).with_state(sim)
}

async fn handle(AxumState(sim): AxumState<Arc<Simulator>>, Form(form): Form<BTreeMap<String, String>>) -> Json<Value> {
    let method = form.get("method").cloned().unwrap_or_default();
    let signed = form.get("app_key").is_some_and(|k| *k == sim.config.app_key)
        && match TopSignMethod::parse(form.get("sign_method").map_or("", String::as_str)) {
            Some(m) => form.get("sign").is_some_and(|s| signatures_match(s, &top_sign(&form, &sim.config.secret, m))),
            None => false,
        };
    let timestamp_ok = fresh(form.get("timestamp").and_then(|t| parse_local_time(t)));
    let session = form.get("session").cloned().unwrap_or_default();
    let params = params_json(&form, &SYSTEM);
    let reply = sim.serve(&method, params, signed, timestamp_ok, &session, |sim, state, p| {
        let text = |name: &str| p[name].as_str().unwrap_or_default().to_owned();
        match method.as_str() {
            "taobao.item.quantity.update" => {
                let Some(code) = sim.code_of(&text("num_iid"), &text("sku_id")) else {
                    return Reply::Error(SimError::ItemNotFound);
                };
                let Ok(qty) = text("quantity").parse::<i64>() else { return Reply::Error(SimError::BadParameter) };
                if text("type") != "1" {
                    return Reply::Error(SimError::BadParameter);
                }
                match sim.set_shown(state, &code, qty) {
                    Ok(()) => Reply::Ok(json!({ "item_quantity_update_response": { "item": {
                        "num_iid": text("num_iid"), "quantity": qty, "modified": local_time(OffsetDateTime::now_utc()) } } })),
                    Err(e) => Reply::Error(e),
                }
            }
            "taobao.trades.sold.increment.get" => {
                let (Some(from), Some(to)) = (parse_local_time(&text("start_modified")), parse_local_time(&text("end_modified")))
                else {
                    return Reply::Error(SimError::BadParameter);
                };
                if to - from > time::Duration::days(1) || to < from {
                    return Reply::Error(SimError::BadParameter);
                }
                let page = text("page_no").parse::<usize>().unwrap_or(1).max(1);
                let size = text("page_size").parse::<usize>().unwrap_or(40).clamp(1, 100);
                // TOP's times have whole seconds: the window's end second is included.
                let (orders, total) = Simulator::orders_in(state, from, to + time::Duration::seconds(1), page, size);
                Reply::Ok(json!({ "trades_sold_increment_get_response": {
                    "total_results": total, "has_next": page * size < total, "trades": { "trade": orders } } }))
            }
            "taobao.trade.fullinfo.get" => match state.orders.iter().find(|o| o.external_id == text("tid")) {
                Some(o) => Reply::Ok(json!({ "trade_fullinfo_get_response": { "trade": o.payload } })),
                None => Reply::Error(SimError::BadParameter),
            },
            "taobao.logistics.offline.send" => {
                let tid = text("tid");
                let Some(order) = state.orders.iter().find(|o| o.external_id == tid) else {
                    return Reply::Error(SimError::BadParameter);
                };
                if text("is_split") == "1" {
                    let oids: Vec<String> = order.payload["orders"]["order"]
                        .as_array()
                        .map(|l| l.iter().map(|o| o["oid"].to_string()).collect())
                        .unwrap_or_default();
                    if text("sub_tid").split(',').any(|s| !oids.contains(&s.to_owned())) {
                        return Reply::Error(SimError::BadParameter);
                    }
                }
                if Simulator::refuse_confirmation(state, &tid) {
                    return Reply::Error(SimError::ConfirmRefused);
                }
                state.confirmations.push(Confirmation {
                    external_id: tid,
                    company: text("company_code"),
                    waybill: text("out_sid"),
                    parts: text("sub_tid"),
                });
                Reply::Ok(json!({ "logistics_offline_send_response": { "shipping": { "is_success": true } } }))
            }
            _ => Reply::Error(SimError::UnknownMethod),
        }
    });
    Json(render(reply, sim.since_start().as_nanos()))
}

fn render(reply: Reply, request: u128) -> Value {
    let request_id = format!("sim{request:x}");
    let error = |code: u32, msg: &str, sub_code: &str, sub_msg: &str| json!({ "error_response": { "code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, "request_id": request_id } });
    match reply {
        Reply::Ok(body) => body,
        Reply::Error(e) => match e {
            SimError::BadSignature => error(25, "Invalid signature", "isv.invalid-signature", "签名无效"),
            SimError::StaleTimestamp => error(31, "Invalid timestamp", "isv.invalid-timestamp", "时间戳错误"),
            SimError::SessionExpired => error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法或过期"),
            SimError::Throttled => error(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-app-access-count",
                "This ban will last for 1 more seconds",
            ),
            SimError::ItemNotFound => error(15, "Remote service error", "isv.item-not-exist", "商品不存在"),
            SimError::BadParameter => error(41, "Invalid arguments", "isv.invalid-parameter", "参数错误"),
            SimError::UnknownMethod => error(22, "Invalid method", "isv.invalid-method", "方法不存在"),
            SimError::ConfirmRefused => {
                error(15, "Remote service error", "isv.logistics-offline-service-error", "物流服务暂不可用")
            }
        },
    }
}

/// A paid trade waiting for shipment, shaped like the increment query's trades.
pub(super) fn order(tid: &str, item: &SimItem, qty: i64, buyer: &str, now: OffsetDateTime) -> Value {
    let total = item.price_cents * qty;
    json!({
        "tid": tid.parse::<u64>().unwrap_or_default(),
        "status": "WAIT_SELLER_SEND_GOODS",
        "buyer_nick": buyer,
        "seller_nick": "sim-shop",
        "receiver_name": "李四",
        "receiver_state": "广东省",
        "receiver_city": "深圳市",
        "receiver_district": "南山区",
        "receiver_address": "科技园南路 18 号",
        "receiver_zip": "518057",
        "receiver_mobile": "139****0021",
        "payment": yuan(total),
        "post_fee": "0.00",
        "total_fee": yuan(total),
        "created": local_time(now),
        "modified": local_time(now),
        "orders": { "order": [{
            "oid": tid.parse::<u64>().unwrap_or_default() * 10 + 1,
            "num_iid": item.item_id.parse::<u64>().unwrap_or_default(),
            "sku_id": item.sku_id,
            "outer_sku_id": item.code,
            "num": qty,
            "price": yuan(item.price_cents),
            "total_fee": yuan(total),
            "payment": yuan(total),
            "refund_status": "NO_REFUND",
        }] }
    })
}
