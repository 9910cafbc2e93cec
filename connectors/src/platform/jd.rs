//! JD through its router (`routerjson`): a form POST of the system parameters (`method`,
//! `access_token`, `app_key`, `timestamp`, `v=2.0`) and the API parameters as one JSON string,
//! `360buy_param_json`, all signed together (`sign::jd_sign`). Answers are
//! `{"<method with dots as underscores>_responce": {...}}` (JD's spelling) or
//! `{"error_response": {"code", "zh_desc", "en_desc"}}`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{text_of, Client, ConfirmOrder, ConfirmResults, OrdersPage, PlatformError};
use crate::config::PlatformSku;
use crate::sign::{canonical_json, jd_sign};

/// Order states the pull asks for: everything that can matter to an imported order.
pub const PULL_STATES: &str =
    "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,FINISHED_L,TRADE_CANCELED,LOCKED,POP_ORDER_PAUSE";

/// `jingdong.stock.write.updateSkuStock` -> `jingdong_stock_write_updateSkuStock_responce`.
pub fn response_key(method: &str) -> String {
    format!("{}_responce", method.replace('.', "_"))
}

async fn call(client: &Client, method: &str, params: Value) -> Result<Value, PlatformError> {
    let s = client.settings();
    let mut form = BTreeMap::new();
    form.insert("method".to_owned(), method.to_owned());
    form.insert("access_token".to_owned(), s.session.expose().to_owned());
    form.insert("app_key".to_owned(), s.app_key.clone());
    form.insert("timestamp".to_owned(), client.local_time(OffsetDateTime::now_utc()));
    form.insert("v".to_owned(), "2.0".to_owned());
    form.insert("360buy_param_json".to_owned(), canonical_json(&params));
    let sign = jd_sign(&form, s.secret.expose());
    form.insert("sign".to_owned(), sign);
    let mut answer = client.post_form(&s.endpoint, method, &form).await?;
    if let Some(error) = answer.get("error_response") {
        return Err(client.platform_error(method, classify(error)).await);
    }
    let body = answer
        .get_mut(response_key(method))
        .map(Value::take)
        .ok_or_else(|| PlatformError::BadAnswer(format!("no {} in the answer", response_key(method))))?;
    // Business refusals come inside the answer: {"code": "0", "success": false, "resultCode", ...}.
    if body.get("success").and_then(Value::as_bool) == Some(false) {
        let error =
            PlatformError::Refused { code: text_of(&body["resultCode"]), message: text_of(&body["resultMessage"]) };
        let error = if text_of(&body["resultCode"]).contains("not-exist") {
            PlatformError::ItemNotFound { code: text_of(&body["resultCode"]), message: text_of(&body["resultMessage"]) }
        } else {
            error
        };
        return Err(client.platform_error(method, error).await);
    }
    Ok(body)
}

/// Sort a JD `error_response` into an error kind.
pub fn classify(error: &Value) -> PlatformError {
    let code = text_of(&error["code"]);
    let message = [text_of(&error["en_desc"]), text_of(&error["zh_desc"])]
        .into_iter()
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    match code.as_str() {
        // 19: invalid or expired access_token.
        "19" => PlatformError::SessionExpired { code, message },
        // Call frequency limits.
        "66" | "67" | "429" => PlatformError::Throttled { code, message },
        _ if message.contains("not exist") || message.contains("不存在") => {
            PlatformError::ItemNotFound { code, message }
        }
        _ => PlatformError::Refused { code, message },
    }
}

pub(super) async fn set_stock(
    client: &Client,
    code: &str,
    target: Option<&PlatformSku>,
    qty: u64,
) -> Result<(), PlatformError> {
    let Some(target) = target else { return Err(PlatformError::Unmapped(code.to_owned())) };
    // JD addresses the SKU by its JD sku id; a mapping row without one uses the item id.
    let sku = if target.sku_id.is_empty() { &target.item_id } else { &target.sku_id };
    let params = json!({ "skuId": sku, "stockNum": qty });
    call(client, "jingdong.stock.write.updateSkuStock", params).await.map(drop)
}

pub(super) async fn orders_page(
    client: &Client,
    from: OffsetDateTime,
    to: OffsetDateTime,
    page: u32,
) -> Result<OrdersPage, PlatformError> {
    let size = client.settings().pull_page_size;
    let params = json!({
        "start_date": client.local_time(from),
        "end_date": client.local_time(to),
        // 1: by modification time.
        "dateType": 1,
        "order_state": PULL_STATES,
        "page": page.to_string(),
        "page_size": size.to_string(),
    });
    let answer = call(client, "jingdong.pop.order.search", params).await?;
    let result = &answer["searchorderinfo_result"];
    let orders = match &result["orderInfoList"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        other => return Err(PlatformError::BadAnswer(format!("orderInfoList is not a list: {other}"))),
    };
    let total = result["orderTotal"].as_u64().or_else(|| text_of(&result["orderTotal"]).parse().ok()).unwrap_or(0);
    let has_next = u64::from(page) * u64::from(size) < total;
    Ok(OrdersPage { orders, has_next })
}

/// `jingdong.pop.order.shipment`: one call per order once every parcel left, the waybills
/// joined with `|` (JD takes one logistics company per order: the first parcel's).
pub(super) async fn confirm(client: &Client, order: &ConfirmOrder) -> ConfirmResults {
    if !order.all_left || order.packages.is_empty() {
        return Vec::new();
    }
    let result = async {
        let company = client.company(&order.packages[0].carrier)?;
        let waybills: Vec<&str> = order.packages.iter().map(|p| p.waybill.as_str()).collect();
        let params = json!({ "orderId": order.external_id, "logiCoprId": company, "logiNo": waybills.join("|") });
        call(client, "jingdong.pop.order.shipment", params).await.map(drop)
    }
    .await;
    order.packages.iter().map(|p| (p.shipment, result.clone())).collect()
}
