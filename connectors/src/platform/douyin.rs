//! Douyin shop (doudian) open API: `POST {endpoint}/{method with dots as slashes}` with the system
//! parameters in the query (`app_key`, `method`, `v=2`, `timestamp`, `sign`, `sign_method`,
//! `access_token`) and the API parameters as the JSON body (`param_json`, keys sorted, signed:
//! `sign::douyin_sign`). Answers are `{"code": 10000, "msg", "sub_code", "sub_msg", "data": {...}}`;
//! any other code is an error.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{text_of, Client, ConfirmOrder, ConfirmResults, OrdersPage, PlatformError};
use crate::config::PlatformSku;
use crate::sign::{canonical_json, douyin_sign};

pub const SUCCESS: i64 = 10_000;

async fn call(client: &Client, method: &str, params: Value) -> Result<Value, PlatformError> {
    let s = client.settings();
    let param_json = canonical_json(&params);
    let timestamp = OffsetDateTime::now_utc().unix_timestamp().to_string();
    let sign = douyin_sign(&s.app_key, method, &param_json, &timestamp, "2", s.secret.expose(), s.douyin_sign_method);
    let path = method.replace('.', "/");
    let mut url = reqwest::Url::parse(&format!("{}/{path}", s.endpoint))
        .map_err(|e| PlatformError::Transport(format!("bad endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("app_key", &s.app_key)
        .append_pair("method", method)
        .append_pair("v", "2")
        .append_pair("timestamp", &timestamp)
        .append_pair("sign", &sign)
        .append_pair("sign_method", s.douyin_sign_method.name())
        .append_pair("access_token", s.session.expose());
    let mut answer = client.post_json(url, method, param_json).await?;
    let code = answer["code"].as_i64().unwrap_or(-1);
    if code != SUCCESS {
        return Err(client.platform_error(method, classify(&answer)).await);
    }
    Ok(answer.get_mut("data").map(Value::take).unwrap_or(Value::Null))
}

/// Sort a Douyin error answer into an error kind.
pub fn classify(answer: &Value) -> PlatformError {
    let code = text_of(&answer["code"]);
    let sub_code = text_of(&answer["sub_code"]);
    let message = [text_of(&answer["msg"]), text_of(&answer["sub_msg"])]
        .into_iter()
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let shown = if sub_code.is_empty() { code } else { format!("{code}/{sub_code}") };
    if sub_code.contains("access-token") || sub_code.contains("token-expired") {
        PlatformError::SessionExpired { code: shown, message }
    } else if sub_code.contains("frequency") || sub_code.contains("rate-limit") || sub_code.contains("flow-limit") {
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
    let params = match target {
        Some(t) => json!({ "product_id": t.item_id, "sku_id": t.sku_id, "stock_num": qty, "incremental": false }),
        // Without a mapping file: the SKU's merchant code (`code`) is omsd's SKU code.
        None => json!({ "code": code, "stock_num": qty, "incremental": false }),
    };
    call(client, "sku.syncStock", params).await.map(drop)
}

pub(super) async fn orders_page(
    client: &Client,
    from: OffsetDateTime,
    to: OffsetDateTime,
    page: u32,
) -> Result<OrdersPage, PlatformError> {
    let size = client.settings().pull_page_size;
    // Douyin pages count from 0.
    let params = json!({
        "update_time_start": from.unix_timestamp(),
        "update_time_end": to.unix_timestamp(),
        "page": page.saturating_sub(1),
        "size": size,
        "order_by": "update_time",
        "order_asc": true,
    });
    let data = call(client, "order.searchList", params).await?;
    let orders = match &data["shop_order_list"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        other => return Err(PlatformError::BadAnswer(format!("shop_order_list is not a list: {other}"))),
    };
    let total = data["total"].as_u64().unwrap_or(0);
    Ok(OrdersPage { orders, has_next: u64::from(page) * u64::from(size) < total })
}

/// One parcel: `order.logisticsAdd`. A split order: `order.logisticsAddMultiPack` with every
/// parcel once all of them left.
pub(super) async fn confirm(client: &Client, order: &ConfirmOrder) -> ConfirmResults {
    if order.total_packages <= 1 {
        let mut results = Vec::new();
        for p in &order.packages {
            let result = async {
                let company = client.company(&p.carrier)?;
                let params =
                    json!({ "order_id": order.external_id, "company_code": company, "logistics_code": p.waybill });
                call(client, "order.logisticsAdd", params).await.map(drop)
            }
            .await;
            results.push((p.shipment, result));
        }
        return results;
    }
    if !order.all_left {
        return Vec::new();
    }
    let result = async {
        let mut packs = Vec::with_capacity(order.packages.len());
        for p in &order.packages {
            packs.push(json!({
                "company_code": client.company(&p.carrier)?,
                "logistics_code": p.waybill,
                "shipped_sku_codes": p.sku_codes,
            }));
        }
        let params = json!({ "order_id": order.external_id, "pack_list": packs });
        call(client, "order.logisticsAddMultiPack", params).await.map(drop)
    }
    .await;
    order.packages.iter().map(|p| (p.shipment, result.clone())).collect()
}
