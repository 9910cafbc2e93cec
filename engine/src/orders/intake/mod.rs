//! Channel intake: pure functions from a marketplace's order payload (JSON text) to a
//! [`ChannelOrder`], then, once SKU codes are resolved, to the engine's [`NewOrder`].
//!
//! Money is parsed exactly into integer cents (decimal yuan strings such as "171.43", or integer
//! fen), never through floats. A malformed payload is refused with the path of the wrong field
//! (`orders.order[1].num`); in a batch (a JSON array) each element is judged on its own, so one bad
//! order does not stop the rest.

mod channels;

use serde::Serialize;
use serde_json::Value;

use super::model::{Address, ChannelState, NewOrder, NewOrderLine, OrderId, SalesChannel};
use crate::ids::SkuId;

/// Orders in one batch payload.
pub const BATCH_LIMIT: usize = 10_000;
/// Largest amount accepted, in cents (10^13 yuan).
pub const AMOUNT_LIMIT_CENTS: i64 = 1_000_000_000_000_000;

/// A refused payload: where (`index` in a batch, JSON `path`) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{path}: {reason}", .index.map(|i| format!("[{i}].")).unwrap_or_default())]
pub struct IntakeError {
    /// Position in a batch (None for a single order).
    pub index: Option<usize>,
    /// Dotted path of the wrong field, e.g. `orders.order[1].num`.
    pub path: String,
    pub reason: String,
}

impl IntakeError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        IntakeError { index: None, path: path.into(), reason: reason.into() }
    }
}

/// One order line as the channel described it, with SKU codes not yet resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelLine {
    pub sku_code: String,
    pub qty: u32,
    /// Line total before discounts, cents.
    pub list_cents: i64,
    /// What the buyer paid for the line, if the channel says.
    pub paid_cents: Option<i64>,
    /// Path of the SKU code field, for resolution errors.
    pub path: String,
}

/// An order as the channel described it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelOrder {
    pub channel: SalesChannel,
    pub external_id: String,
    pub shop: String,
    pub buyer: String,
    pub address: Address,
    pub remark: String,
    pub cash_on_delivery: bool,
    pub lines: Vec<ChannelLine>,
    pub shipping_cents: i64,
    pub paid_cents: i64,
    /// What the marketplace says about the order (paid and waiting, cancelled, refund pending,
    /// shipped): from `status` (Taobao), `orderState` (JD), `order_status` and the lines'
    /// after-sales states (Douyin); `awaiting_shipment` when the payload does not say.
    pub state: ChannelState,
}

impl ChannelOrder {
    /// The engine's order id for this channel order (stable across re-imports).
    pub fn order_id(&self) -> OrderId {
        super::order_id_for(self.channel, &self.external_id)
    }

    /// Resolve SKU codes to ids; an unknown code is refused with its line's path.
    pub fn resolve(&self, mut resolve: impl FnMut(&str) -> Option<SkuId>) -> Result<NewOrder, IntakeError> {
        let mut lines = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let sku = resolve(&line.sku_code)
                .ok_or_else(|| IntakeError::new(&line.path, format!("unknown SKU code {:?}", line.sku_code)))?;
            lines.push(NewOrderLine {
                sku,
                sku_code: line.sku_code.clone(),
                qty: line.qty,
                list_cents: line.list_cents,
                paid_cents: line.paid_cents,
            });
        }
        Ok(NewOrder {
            id: self.order_id(),
            channel: self.channel,
            external_id: self.external_id.clone(),
            shop: self.shop.clone(),
            buyer: self.buyer.clone(),
            address: self.address.clone(),
            remark: self.remark.clone(),
            cash_on_delivery: self.cash_on_delivery,
            lines,
            shipping_cents: self.shipping_cents,
            paid_cents: self.paid_cents,
        })
    }
}

/// Parse a payload: one order (a JSON object) or a batch (a JSON array). Invalid JSON refuses
/// the whole payload; otherwise each order is parsed on its own.
pub fn parse(channel: SalesChannel, text: &str) -> Result<Vec<Result<ChannelOrder, IntakeError>>, IntakeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| IntakeError::new("$", format!("invalid JSON: {e}")))?;
    match &value {
        Value::Array(items) => {
            if items.len() > BATCH_LIMIT {
                return Err(IntakeError::new("$", format!("more than {BATCH_LIMIT} orders in one batch")));
            }
            Ok(items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_value(channel, item).map_err(|e| IntakeError { index: Some(i), ..e }))
                .collect())
        }
        _ => Ok(vec![parse_value(channel, &value)]),
    }
}

/// Parse one order from a JSON value.
pub fn parse_value(channel: SalesChannel, value: &Value) -> Result<ChannelOrder, IntakeError> {
    let root = Field { value, path: String::new() };
    let order = match channel {
        SalesChannel::Taobao => channels::taobao(root)?,
        SalesChannel::Jd => channels::jd(root)?,
        SalesChannel::Douyin => channels::douyin(root)?,
        SalesChannel::Native => channels::native(root)?,
    };
    check_order(&order)?;
    Ok(order)
}

/// Checks common to every channel, reported with the native field names.
fn check_order(order: &ChannelOrder) -> Result<(), IntakeError> {
    let list: i64 = order.lines.iter().map(|l| l.list_cents).sum();
    if order.paid_cents < order.shipping_cents {
        return Err(IntakeError::new("paid", "paid amount is below the shipping fee"));
    }
    if order.paid_cents - order.shipping_cents > list {
        return Err(IntakeError::new("paid", "paid amount exceeds the line totals plus shipping"));
    }
    Ok(())
}

/// A JSON value and the path that reached it.
#[derive(Clone)]
pub(super) struct Field<'a> {
    value: &'a Value,
    path: String,
}

impl<'a> Field<'a> {
    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn error(&self, reason: impl Into<String>) -> IntakeError {
        IntakeError::new(if self.path.is_empty() { "$" } else { &self.path }, reason)
    }

    /// A member that may be absent (or null).
    pub(super) fn opt(&self, name: &str) -> Option<Field<'a>> {
        match self.value.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Field { value, path: self.child_path(name) }),
        }
    }

    /// A member that must be present.
    pub(super) fn req(&self, name: &str) -> Result<Field<'a>, IntakeError> {
        if !self.value.is_object() {
            return Err(self.error("expected an object"));
        }
        self.opt(name).ok_or_else(|| IntakeError::new(self.child_path(name), "missing"))
    }

    /// The object under `name` if present, else this one (for optional envelopes).
    pub(super) fn unwrap_envelope(self, name: &str) -> Field<'a> {
        self.opt(name).filter(|f| f.value.is_object()).unwrap_or(self)
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// A string, or a number written as its digits (marketplaces mix the two for ids).
    pub(super) fn text(&self) -> Result<String, IntakeError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
            _ => Err(self.error("expected a string")),
        }
    }

    /// An optional text member, "" when absent.
    pub(super) fn text_or_empty(&self, name: &str) -> Result<String, IntakeError> {
        self.opt(name).map_or(Ok(String::new()), |f| f.text())
    }

    pub(super) fn nonempty_text(&self) -> Result<String, IntakeError> {
        let text = self.text()?;
        if text.trim().is_empty() {
            return Err(self.error("must not be empty"));
        }
        Ok(text)
    }

    /// A positive quantity: an integer or a string of digits.
    pub(super) fn quantity(&self) -> Result<u32, IntakeError> {
        let n = match self.value {
            Value::Number(n) => n.as_u64().ok_or_else(|| self.error("expected a positive integer"))?,
            Value::String(s) => s.trim().parse::<u64>().map_err(|_| self.error("expected a positive integer"))?,
            _ => return Err(self.error("expected a positive integer")),
        };
        match u32::try_from(n) {
            Ok(q) if q > 0 => Ok(q),
            _ => Err(self.error("expected a positive integer below 2^32")),
        }
    }

    /// An amount in integer cents (fen): a non-negative integer or a string of digits.
    pub(super) fn cents(&self) -> Result<i64, IntakeError> {
        let n = match self.value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n.and_then(|n| i64::try_from(n).ok()) {
            Some(c) if c <= AMOUNT_LIMIT_CENTS => Ok(c),
            _ => Err(self.error("expected a non-negative integer amount in cents")),
        }
    }

    /// An amount in yuan as a decimal string ("171.43") or number, as exact cents.
    pub(super) fn yuan(&self) -> Result<i64, IntakeError> {
        let text = match self.value {
            Value::String(s) => s.clone(),
            // serde_json prints the shortest form that reads back as the same f64, which is the
            // decimal the sender wrote for any amount with at most 15 significant digits.
            Value::Number(n) => n.to_string(),
            _ => return Err(self.error("expected a decimal amount in yuan")),
        };
        parse_yuan(&text).map_err(|reason| self.error(reason))
    }

    pub(super) fn items(&self) -> Result<Vec<Field<'a>>, IntakeError> {
        let Value::Array(items) = self.value else { return Err(self.error("expected an array")) };
        if items.is_empty() {
            return Err(self.error("no lines"));
        }
        if items.len() > super::ORDER_LINES_LIMIT {
            return Err(self.error(format!("more than {} lines", super::ORDER_LINES_LIMIT)));
        }
        Ok(items.iter().enumerate().map(|(i, value)| Field { value, path: format!("{}[{i}]", self.path) }).collect())
    }

    pub(super) fn boolean(&self) -> Result<bool, IntakeError> {
        self.value.as_bool().ok_or_else(|| self.error("expected true or false"))
    }
}

/// Exact decimal yuan to cents: digits, an optional point and at most two decimals (further
/// decimals must be zeros). Negative amounts, exponents and junk are refused.
pub fn parse_yuan(text: &str) -> Result<i64, &'static str> {
    let text = text.trim();
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a non-negative decimal amount such as \"12.30\"");
    }
    if fraction.len() > 2 && fraction[2..].bytes().any(|b| b != b'0') {
        return Err("more than two decimals (sub-cent amount)");
    }
    if whole.len() > 14 {
        return Err("amount too large");
    }
    let mut cents: i64 = whole.parse::<i64>().map_err(|_| "amount too large")? * 100;
    let digits: Vec<u8> = fraction.bytes().chain(std::iter::repeat(b'0')).take(2).collect();
    cents += i64::from(digits[0] - b'0') * 10 + i64::from(digits[1] - b'0');
    Ok(cents)
}

/// `unit` cents times `qty`, refused on overflow.
pub(super) fn line_total(unit: i64, qty: u32, at: &Field<'_>) -> Result<i64, IntakeError> {
    unit.checked_mul(i64::from(qty))
        .filter(|t| *t <= AMOUNT_LIMIT_CENTS)
        .ok_or_else(|| at.error("line total too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_yuan;

    #[test]
    fn yuan_strings_parse_exactly() {
        // Exact cents from decimal strings; junk, negatives and sub-cent amounts are refused.
        assert_eq!(parse_yuan("171.43"), Ok(17_143));
        assert_eq!(parse_yuan("0.1"), Ok(10));
        assert_eq!(parse_yuan("258"), Ok(25_800));
        assert_eq!(parse_yuan("86.570"), Ok(8_657));
        assert!(parse_yuan("-1.00").is_err());
        assert!(parse_yuan("1.005").is_err());
        assert!(parse_yuan("1e3").is_err());
        assert!(parse_yuan("").is_err());
        assert!(parse_yuan(".5").is_err());
    }
}
