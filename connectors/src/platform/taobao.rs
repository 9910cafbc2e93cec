//! Taobao / Tmall through the TOP router: every call is a form POST of the system parameters
//! (`method`, `app_key`, `session`, `timestamp`, `format=json`, `v=2.0`, `sign_method`) and the
//! API's own parameters, signed together (`sign::top_sign`). Answers are
//! `{"<api_without_taobao_prefix_dots_as_underscores>_response": {...}}` or
//! `{"error_response": {"code", "msg", "sub_code", "sub_msg"}}`.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use super::{text_of, Client, ConfirmOrder, ConfirmResults, OrdersPage, PlatformError};
use crate::config::PlatformSku;
use crate::sign::top_sign;

/// Trade fields asked for by the increment query (what the Taobao intake adapter reads).
pub const TRADE_FIELDS: &str = "tid,status,modified,buyer_nick,seller_nick,type,receiver_name,receiver_state,\
receiver_city,receiver_district,receiver_address,receiver_zip,receiver_mobile,receiver_phone,payment,post_fee,\
total_fee,discount_fee,buyer_message,seller_memo,created,pay_time,orders.oid,orders.outer_sku_id,orders.num,\
orders.price,orders.total_fee,orders.payment,orders.refund_status,orders.title";

/// `taobao.item.quantity.update` -> `item_quantity_update_response`.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.trim_start_matches("taobao.").replace('.', "_"))
}

async fn call(client: &Client, method: &str, params: BTreeMap<String, String>) -> Result<Value, PlatformError> {
    let s = client.settings();
    let mut form = params;
    form.insert("method".into(), method.into());
    form.insert("app_key".into(), s.app_key.clone());
    form.insert("session".into(), s.session.expose().to_owned());
    form.insert("timestamp".into(), client.local_time(OffsetDateTime::now_utc()));
    form.insert("format".into(), "json".into());
    form.insert("v".into(), "2.0".into());
    form.insert("sign_method".into(), s.top_sign_method.name().into());
    let sign = top_sign(&form, s.secret.expose(), s.top_sign_method);
    form.insert("sign".into(), sign);
    let mut answer = client.post_form(&s.endpoint, method, &form).await?;
    if let Some(error) = answer.get("error_response") {
        return Err(client.platform_error(method, classify(error)).await);
    }
    answer
        .get_mut(response_key(method))
        .map(Value::take)
        .ok_or_else(|| PlatformError::BadAnswer(format!("no {} in the answer", response_key(method))))
}

/// Sort a TOP `error_response` into an error kind.
pub fn classify(error: &Value) -> PlatformError {
    let code = text_of(&error["code"]);
    let sub_code = text_of(&error["sub_code"]);
    let message = [text_of(&error["msg"]), text_of(&error["sub_msg"])]
        .into_iter()
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let shown = if sub_code.is_empty() { code.clone() } else { format!("{code}/{sub_code}") };
    if code == "26" || code == "27" || sub_code.contains("session") {
        PlatformError::SessionExpired { code: shown, message }
    } else if code == "7" || sub_code.starts_with("accesscontrol") || sub_code.contains("call-limited") {
        PlatformError::Throttled { code: shown, message }
    } else if sub_code.contains("not-exist") || sub_code.contains("not-found") {
        PlatformError::ItemNotFound { code: shown, message }
    } else {
        PlatformError::Refused { code: shown, message }
    }
}

pub(super) async fn set_stock(
    client: &Client,
    code: &str,
    target: Option<&PlatformSku>,
    qty: u64,
) -> Result<(), PlatformError> {
    let Some(target) = target else { return Err(PlatformError::Unmapped(code.to_owned())) };
    let mut p = BTreeMap::new();
    p.insert("num_iid".to_owned(), target.item_id.clone());
    if !target.sku_id.is_empty() {
        p.insert("sku_id".to_owned(), target.sku_id.clone());
    }
    p.insert("quantity".to_owned(), qty.to_string());
    // 1: full quantity (set), 2: incremental. Always set, so a retry is harmless.
    p.insert("type".to_owned(), "1".to_owned());
    call(client, "taobao.item.quantity.update", p).await.map(drop)
}

pub(super) async fn orders_page(
    client: &Client,
    from: OffsetDateTime,
    to: OffsetDateTime,
    page: u32,
) -> Result<OrdersPage, PlatformError> {
    let mut p = BTreeMap::new();
    p.insert("fields".to_owned(), TRADE_FIELDS.to_owned());
    p.insert("start_modified".to_owned(), client.local_time(from));
    p.insert("end_modified".to_owned(), client.local_time(to));
    p.insert("page_no".to_owned(), page.to_string());
    p.insert("page_size".to_owned(), client.settings().pull_page_size.to_string());
    p.insert("use_has_next".to_owned(), "true".to_owned());
    let answer = call(client, "taobao.trades.sold.increment.get", p).await?;
    let orders = match answer.get("trades").and_then(|t| t.get("trade")) {
        Some(Value::Array(trades)) => trades.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => return Err(PlatformError::BadAnswer(format!("trades.trade is not a list: {other}"))),
    };
    let has_next = answer.get("has_next").and_then(Value::as_bool).unwrap_or(false);
    Ok(OrdersPage { orders, has_next })
}

/// The sub-order ids (`oid`) of a trade by the outer SKU code of each line (for split orders).
async fn sub_orders(client: &Client, tid: &str) -> Result<Vec<(String, String)>, PlatformError> {
    let mut p = BTreeMap::new();
    p.insert("fields".to_owned(), "tid,orders.oid,orders.outer_sku_id".to_owned());
    p.insert("tid".to_owned(), tid.to_owned());
    let answer = call(client, "taobao.trade.fullinfo.get", p).await?;
    let lines = answer["trade"]["orders"]["order"].as_array().cloned().unwrap_or_default();
    Ok(lines.iter().map(|l| (text_of(&l["outer_sku_id"]), text_of(&l["oid"]))).collect())
}

/// `taobao.logistics.offline.send` per parcel; a split order names the sub-orders each parcel
/// carries (`is_split=1`, `sub_tid`).
pub(super) async fn confirm(client: &Client, order: &ConfirmOrder) -> ConfirmResults {
    let split = order.total_packages > 1;
    let oids = if split {
        match sub_orders(client, &order.external_id).await {
            Ok(oids) => oids,
            Err(e) => return order.packages.iter().map(|p| (p.shipment, Err(e.clone()))).collect(),
        }
    } else {
        Vec::new()
    };
    let mut results = Vec::with_capacity(order.packages.len());
    for package in &order.packages {
        let result = async {
            let company = client.company(&package.carrier)?;
            let mut p = BTreeMap::new();
            p.insert("tid".to_owned(), order.external_id.clone());
            p.insert("out_sid".to_owned(), package.waybill.clone());
            p.insert("company_code".to_owned(), company);
            if split {
                let sub: Vec<&str> = oids
                    .iter()
                    .filter(|(code, _)| package.sku_codes.iter().any(|c| c == code))
                    .map(|(_, oid)| oid.as_str())
                    .collect();
                if sub.is_empty() {
                    return Err(PlatformError::Refused {
                        code: "omsd".into(),
                        message: format!("no sub-order of trade {} matches the parcel's SKUs", order.external_id),
                    });
                }
                p.insert("is_split".to_owned(), "1".to_owned());
                p.insert("sub_tid".to_owned(), sub.join(","));
            }
            let answer = call(client, "taobao.logistics.offline.send", p).await?;
            match answer["shipping"]["is_success"].as_bool() {
                Some(true) => Ok(()),
                _ => Err(PlatformError::BadAnswer(format!("shipping.is_success is not true: {answer}"))),
            }
        }
        .await;
        results.push((package.shipment, result));
    }
    results
}
