//! One adapter per channel payload shape. Each reads only what the engine needs and reports the
//! path of the first wrong field.

use super::{line_total, ChannelLine, ChannelOrder, Field, IntakeError};
use crate::orders::model::{Address, SalesChannel};

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
    let mut lines = Vec::new();
    for item in t.req("orders")?.req("order")?.items()? {
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
    Ok(ChannelOrder {
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
    let mut lines = Vec::new();
    for item in o.req("sku_order_list")?.items()? {
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

impl Field<'_> {
    fn error_at(&self, reason: impl Into<String>) -> IntakeError {
        IntakeError::new(self.path(), reason)
    }
}
