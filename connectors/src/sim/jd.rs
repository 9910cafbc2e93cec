//! The JD router, simulated: `POST /routerjson` with a signed form carrying `360buy_param_json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, State as AxumState};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{fresh, local_time, parse_local_time, yuan, Confirmation, Reply, SimError, SimItem, Simulator};
use crate::sign::{jd_sign, signatures_match};

pub(super) fn router(sim: Arc<Simulator>) -> Router {
    Router::new().route("/routerjson", post(handle)).with_state(sim)
}

async fn handle(AxumState(sim): AxumState<Arc<Simulator>>, Form(form): Form<BTreeMap<String, String>>) -> Json<Value> {
    let method = form.get("method").cloned().unwrap_or_default();
    let signed = form.get("app_key").is_some_and(|k| *k == sim.config.app_key)
        && form.get("sign").is_some_and(|s| signatures_match(s, &jd_sign(&form, &sim.config.secret)));
    let timestamp_ok = fresh(form.get("timestamp").and_then(|t| parse_local_time(t)));
    let session = form.get("access_token").cloned().unwrap_or_default();
    let params: Value = form.get("360buy_param_json").and_then(|p| serde_json::from_str(p).ok()).unwrap_or(Value::Null);
    let key = format!("{}_responce", method.replace('.', "_"));
    let reply = sim.serve(&method, params, signed, timestamp_ok, &session, |sim, state, p| {
        let text = |name: &str| match &p[name] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        match method.as_str() {
            "jingdong.stock.write.updateSkuStock" => {
                let Some(code) = sim.code_of("", &text("skuId")) else {
                    return Reply::Ok(json!({ "code": "0", "success": false, "resultCode": "sku-not-exist",
                        "resultMessage": format!("sku {} does not exist", text("skuId")) }));
                };
                let Ok(qty) = text("stockNum").parse::<i64>() else { return Reply::Error(SimError::BadParameter) };
                match sim.set_shown(state, &code, qty) {
                    Ok(()) => Reply::Ok(json!({ "code": "0", "success": true })),
                    Err(e) => Reply::Error(e),
                }
            }
            "jingdong.pop.order.search" => {
                let (Some(from), Some(to)) =
                    (parse_local_time(&text("start_date")), parse_local_time(&text("end_date")))
                else {
                    return Reply::Error(SimError::BadParameter);
                };
                let page = text("page").parse::<usize>().unwrap_or(1).max(1);
                let size = text("page_size").parse::<usize>().unwrap_or(20).clamp(1, 100);
                let (orders, total) = Simulator::orders_in(state, from, to + time::Duration::seconds(1), page, size);
                Reply::Ok(
                    json!({ "code": "0", "searchorderinfo_result": { "orderTotal": total, "orderInfoList": orders } }),
                )
            }
            "jingdong.pop.order.shipment" => {
                let id = text("orderId");
                if !state.orders.iter().any(|o| o.external_id == id) {
                    return Reply::Error(SimError::BadParameter);
                }
                if Simulator::refuse_confirmation(state, &id) {
                    return Reply::Error(SimError::ConfirmRefused);
                }
                state.confirmations.push(Confirmation {
                    external_id: id,
                    company: text("logiCoprId"),
                    waybill: text("logiNo"),
                    parts: String::new(),
                });
                Reply::Ok(json!({ "code": "0", "success": true }))
            }
            _ => Reply::Error(SimError::UnknownMethod),
        }
    });
    Json(match reply {
        Reply::Ok(body) => json!({ key: body }),
        Reply::Error(e) => {
            let (code, zh, en) = match e {
                SimError::BadSignature => ("14", "签名无效", "Invalid signature"),
                SimError::StaleTimestamp => ("15", "时间戳错误", "Invalid timestamp"),
                SimError::SessionExpired => ("19", "token已过期或者不存在，请重新授权访问", "Invalid access_token"),
                SimError::Throttled => ("67", "调用频率超限", "call frequency limit exceeded"),
                SimError::ItemNotFound => ("100", "商品不存在", "item does not exist"),
                SimError::BadParameter => ("10", "参数错误", "invalid parameter"),
                SimError::UnknownMethod => ("22", "方法不存在", "invalid method"),
                SimError::ConfirmRefused => ("2001", "出库失败，请稍后重试", "shipment refused, retry later"),
            };
            json!({ "error_response": { "code": code, "zh_desc": zh, "en_desc": en } })
        }
    })
}

/// A paid order waiting for stock-out, shaped like the order search's `orderInfoList` entries.
pub(super) fn order(id: &str, item: &SimItem, qty: i64, buyer: &str, now: OffsetDateTime) -> Value {
    let total = item.price_cents * qty;
    json!({
        "orderId": id,
        "venderId": "sim-shop",
        "pin": buyer,
        "orderState": "WAIT_SELLER_STOCK_OUT",
        "orderTotalPrice": yuan(total),
        "orderPayment": yuan(total),
        "freightPrice": "0.00",
        "orderRemark": "",
        "orderStartTime": local_time(now),
        "modified": local_time(now),
        "consigneeInfo": {
            "fullname": "王五",
            "mobile": "138****7788",
            "province": "北京",
            "city": "北京市",
            "county": "朝阳区",
            "town": "",
            "fullAddress": "北京朝阳区建国路 88 号"
        },
        "itemInfoList": [{
            "skuId": item.sku_id,
            "outerSkuId": item.code,
            "jdPrice": yuan(item.price_cents),
            "itemTotal": qty.to_string(),
        }]
    })
}
