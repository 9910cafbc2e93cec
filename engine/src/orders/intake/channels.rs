//! One adapter per channel payload shape. Each reads only what the engine needs and reports the
//! path of the first wrong field.

use super::{line_total, ChannelLine, ChannelOrder, Field, IntakeError};
use crate::orders::model::{Address, ChannelState, SalesChannel};

fn join_nonempty(parts: &[&str], separator: &str) -> String {
    parts.iter().filter(|p| !p.trim().is_empty()).copied().collect::<Vec<_>>().join(separator)
}

/// Taobao / Tmall trade: `tid`, `receiver_*`, `payment` and `post_fee` in yuan strings,
/// `orders.order[]` with `outer_sku_id`, `num`, `total_fee` (or `price`) and `payment`.
pub(super) fn taobao(root: Field<'_>) -> Result<ChannelOrder, IntakeError> {
    let t = root.unwrap_envelope("trade");
    let external_id = t.req("tid")?.nonempty_text()?;
    let paid_cents = t.req("payment")?.yuan()?;
    let shipping_cents = t.opt("post_fee").map_or(Ok(0), |f| f.yuan())?;
    let address = Address {
        name: t.text_or_empty("receiver_name")?,
        phone: match t.opt("receiver_mobile") {
            Some(f) => f.text()?,
            None => t.text_or_empty("receiver_phone")?,
        },
        province: t.text_or_empty("receiver_state")?,
        city: t.text_or_empty("receiver_city")?,
        district: t.text_or_empty("receiver_district")?,
        detail: t.text_or_empty("receiver_address")?,
        zip: t.text_or_empty("receiver_zip")?,
    };
    let remark = join_nonempty(&[&t.text_or_empty("buyer_message")?, &t.text_or_empty("seller_memo")?], " / ");
    let mut state = match t.opt("status") {
        None => ChannelState::AwaitingShipment,
        Some(f) => taobao_state(&f)?,
    };
    let mut lines = Vec::new();
    for item in t.req("orders")?.req("order")?.items()? {
        // A line's refund in progress (anything but none, closed or refused).
        let refund = item.text_or_empty("refund_status")?;
        if state == ChannelState::AwaitingShipment
            && !matches!(refund.as_str(), "" | "NO_REFUND" | "CLOSED" | "SELLER_REFUSE_BUYER")
        {
            state = ChannelState::RefundRequested;
        }
        let code = item.req("outer_sku_id")?;
        let qty = item.req("num")?.quantity()?;
        let list_cents = match item.opt("total_fee") {
            Some(f) => f.yuan()?,
            None => line_total(item.req("price")?.yuan()?, qty, &item)?,
        };
        lines.push(ChannelLine {
            sku_code: code.nonempty_text()?,
            qty,
            list_cents,
            paid_cents: item.opt("payment").map(|f| f.yuan()).transpose()?,
            path: code.path().to_owned(),
        });
    }
    Ok(ChannelOrder {
        state,
        channel: SalesChannel::Taobao,
        external_id,
        shop: t.text_or_empty("seller_nick")?,
        buyer: t.text_or_empty("buyer_nick")?,
        address,
        remark,
        cash_on_delivery: t.text_or_empty("type")? == "cod",
        lines,
        shipping_cents,
        paid_cents,
    })
}

/// JD order: `orderId`, `consigneeInfo`, `orderPayment` / `freightPrice` in yuan strings,
/// `itemInfoList[]` with `outerSkuId`, `itemTotal` (a count) and `jdPrice` (unit price).
pub(super) fn jd(root: Field<'_>) -> Result<ChannelOrder, IntakeError> {
    let o = root.unwrap_envelope("orderInfo");
    let external_id = o.req("orderId")?.nonempty_text()?;
    let paid_cents = o.req("orderPayment")?.yuan()?;
    let shipping_cents = o.opt("freightPrice").map_or(Ok(0), |f| f.yuan())?;
    let c = o.req("consigneeInfo")?;
    let phone = match c.opt("mobile") {
        Some(f) => f.text()?,
        None => c.text_or_empty("telephone")?,
    };
    let name = c.text_or_empty("fullname")?;
    let address = Address {
        name: name.clone(),
        phone: phone.clone(),
        province: c.text_or_empty("province")?,
        city: c.text_or_empty("city")?,
        district: join_nonempty(&[&c.text_or_empty("county")?, &c.text_or_empty("town")?], " "),
        detail: c.text_or_empty("fullAddress")?,
        zip: String::new(),
    };
    let mut lines = Vec::new();
    for item in o.req("itemInfoList")?.items()? {
        let code = item.req("outerSkuId")?;
        let qty = item.req("itemTotal")?.quantity()?;
        let unit = item.req("jdPrice")?.yuan()?;
        lines.push(ChannelLine {
            sku_code: code.nonempty_text()?,
            qty,
            list_cents: line_total(unit, qty, &item)?,
            paid_cents: None,
            path: code.path().to_owned(),
        });
    }
    let buyer = match o.opt("pin") {
        Some(f) => f.text()?,
        None => join_nonempty(&[&name, &phone], "/"),
    };
    let state = match o.opt("orderState") {
        None => ChannelState::AwaitingShipment,
        Some(f) => jd_state(&f)?,
    };
    Ok(ChannelOrder {
        state,
        channel: SalesChannel::Jd,
        external_id,
        shop: o.text_or_empty("venderId")?,
        buyer,
        address,
        remark: o.text_or_empty("orderRemark")?,
        cash_on_delivery: o.text_or_empty("payType")?.starts_with('1'),
        lines,
        shipping_cents,
        paid_cents,
    })
}

/// Douyin shop order: `order_id`, `post_addr`, integer-fen `pay_amount` / `post_amount`,
/// `sku_order_list[]` with `out_sku_id`, `item_num`, `origin_amount` and `pay_amount`.
pub(super) fn douyin(root: Field<'_>) -> Result<ChannelOrder, IntakeError> {
    let o = root.unwrap_envelope("data").unwrap_envelope("shop_order_detail");
    let external_id = o.req("order_id")?.nonempty_text()?;
    let paid_cents = o.req("pay_amount")?.cents()?;
    let shipping_cents = o.opt("post_amount").map_or(Ok(0), |f| f.cents())?;
    let a = o.req("post_addr")?;
    let region = |name: &str| -> Result<String, IntakeError> {
        match a.opt(name) {
            Some(f) => f.text_or_empty("name"),
            None => Ok(String::new()),
        }
    };
    let name = o.text_or_empty("post_receiver")?;
    let phone = o.text_or_empty("post_tel")?;
    let address = Address {
        name: name.clone(),
        phone: phone.clone(),
        province: region("province")?,
        city: region("city")?,
        district: region("town")?,
        detail: join_nonempty(&[&region("street")?, &a.text_or_empty("detail")?], " "),
        zip: String::new(),
    };
    let mut state = match o.opt("order_status") {
        None => ChannelState::AwaitingShipment,
        Some(f) => douyin_state(&f)?,
    };
    let mut lines = Vec::new();
    for item in o.req("sku_order_list")?.items()? {
        // A line with an after-sales case open (after_sale_status > 0).
        let after_sale = match item.opt("after_sale_info").and_then(|a| a.opt("after_sale_status")) {
            Some(f) => f.cents()?,
            None => 0,
        };
        if state == ChannelState::AwaitingShipment && after_sale > 0 {
            state = ChannelState::RefundRequested;
        }
        let code = item.req("out_sku_id")?;
        let qty = item.req("item_num")?.quantity()?;
        let list_cents = match item.opt("origin_amount") {
            Some(f) => f.cents()?,
            None => line_total(item.req("goods_price")?.cents()?, qty, &item)?,
        };
        lines.push(ChannelLine {
            sku_code: code.nonempty_text()?,
            qty,
            list_cents,
            paid_cents: item.opt("pay_amount").map(|f| f.cents()).transpose()?,
            path: code.path().to_owned(),
        });
    }
    let buyer = match o.opt("doudian_open_id") {
        Some(f) => f.text()?,
        None => join_nonempty(&[&name, &phone], "/"),
    };
    let remark = join_nonempty(&[&o.text_or_empty("buyer_words")?, &o.text_or_empty("seller_words")?], " / ");
    Ok(ChannelOrder {
        state,
        channel: SalesChannel::Douyin,
        external_id,
        shop: o.text_or_empty("shop_id")?,
        buyer,
        address,
        remark,
        cash_on_delivery: o.opt("pay_type").map(|f| f.cents()).transpose()? == Some(0),
        lines,
        shipping_cents,
        paid_cents,
    })
}

/// The native format (docs/ORDERS.md): integer cents, explicit buyer and shop.
pub(super) fn native(o: Field<'_>) -> Result<ChannelOrder, IntakeError> {
    let external_id = o.req("order_id")?.nonempty_text()?;
    let a = o.req("address")?;
    let address = Address {
        name: a.text_or_empty("name")?,
        phone: a.text_or_empty("phone")?,
        province: a.text_or_empty("province")?,
        city: a.text_or_empty("city")?,
        district: a.text_or_empty("district")?,
        detail: a.text_or_empty("detail")?,
        zip: a.text_or_empty("zip")?,
    };
    let mut lines = Vec::new();
    for item in o.req("lines")?.items()? {
        let code = item.req("sku")?;
        let qty = item.req("qty")?.quantity()?;
        let unit = item.req("unit_price_cents")?.cents()?;
        lines.push(ChannelLine {
            sku_code: code.nonempty_text()?,
            qty,
            list_cents: line_total(unit, qty, &item)?,
            paid_cents: item.opt("paid_cents").map(|f| f.cents()).transpose()?,
            path: code.path().to_owned(),
        });
    }
    let shipping_cents = o.opt("shipping_cents").map_or(Ok(0), |f| f.cents())?;
    let discount = o.opt("discount_cents").map_or(Ok(0), |f| f.cents())?;
    let list: i64 = lines.iter().map(|l| l.list_cents).sum();
    let expected = list - discount + shipping_cents;
    if expected < shipping_cents {
        return Err(o.req("discount_cents")?.error_at("discount exceeds the line totals"));
    }
    let paid_cents = match o.opt("paid_cents") {
        None => expected,
        Some(f) => {
            let paid = f.cents()?;
            if paid != expected {
                return Err(f.error_at(format!(
                    "{paid} != line totals {list} - discount {discount} + shipping {shipping_cents}"
                )));
            }
            paid
        }
    };
    Ok(ChannelOrder {
        state: ChannelState::AwaitingShipment,
        channel: SalesChannel::Native,
        external_id,
        shop: o.text_or_empty("shop")?,
        buyer: o.text_or_empty("buyer")?,
        address,
        remark: o.text_or_empty("remark")?,
        cash_on_delivery: o.opt("cash_on_delivery").map(|f| f.boolean()).transpose()?.unwrap_or(false),
        lines,
        shipping_cents,
        paid_cents,
    })
}

/// Taobao trade `status` (TOP trade states).
fn taobao_state(f: &Field<'_>) -> Result<ChannelState, IntakeError> {
    Ok(match f.text()?.as_str() {
        "WAIT_BUYER_PAY" | "TRADE_NO_CREATE_PAY" | "PAY_PENDING" | "WAIT_PRE_AUTH_CONFIRM" => ChannelState::Unpaid,
        "WAIT_SELLER_SEND_GOODS" | "PAID_FORBID_CONSIGN" => ChannelState::AwaitingShipment,
        "SELLER_CONSIGNED_PART" | "WAIT_BUYER_CONFIRM_GOODS" | "TRADE_BUYER_SIGNED" | "TRADE_FINISHED" => {
            ChannelState::Shipped
        }
        "TRADE_CLOSED" | "TRADE_CLOSED_BY_TAOBAO" => ChannelState::Cancelled,
        other => return Err(f.error_at(format!("unknown trade status {other:?}"))),
    })
}

/// JD `orderState`.
fn jd_state(f: &Field<'_>) -> Result<ChannelState, IntakeError> {
    Ok(match f.text()?.as_str() {
        "WAIT_PAY" | "NOT_PAY" => ChannelState::Unpaid,
        "WAIT_SELLER_STOCK_OUT" | "WAIT_SELLER_DELIVERY" => ChannelState::AwaitingShipment,
        "SEND_TO_DISTRIBUTION_CENER"
        | "DISTRIBUTION_CENTER_RECEIVED"
        | "WAIT_GOODS_RECEIVE_CONFIRM"
        | "RECEIPTS_CONFIRM"
        | "FINISHED_L" => ChannelState::Shipped,
        "TRADE_CANCELED" => ChannelState::Cancelled,
        // Locked: a cancellation / refund request waits for the seller.
        "LOCKED" | "POP_ORDER_PAUSE" => ChannelState::RefundRequested,
        other => return Err(f.error_at(format!("unknown order state {other:?}"))),
    })
}

/// Douyin `order_status` (1 unpaid, 105 paid, 2 preparing, 101 partly shipped, 3 shipped,
/// 4 cancelled, 5 completed).
fn douyin_state(f: &Field<'_>) -> Result<ChannelState, IntakeError> {
    Ok(match f.cents()? {
        1 => ChannelState::Unpaid,
        2 | 105 => ChannelState::AwaitingShipment,
        3 | 5 | 101 => ChannelState::Shipped,
        4 => ChannelState::Cancelled,
        other => return Err(f.error_at(format!("unknown order status {other}"))),
    })
}

impl Field<'_> {
    fn error_at(&self, reason: impl Into<String>) -> IntakeError {
        IntakeError::new(self.path(), reason)
    }
}
