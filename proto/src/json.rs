//! The JSON-bodied operations (docs/PROTOCOL.md section 7): typed request bodies, parsed with
//! unknown fields refused so a misspelt field is an error, not a silent default.
//!
//! 64-bit fields accept a JSON integer or a string of decimal digits (JavaScript clients cannot
//! hold integers above 2^53 in a number); they are written as integers.

use serde::{Deserialize, Serialize};

use crate::codec::DecodeError;
use crate::limits::LOOKUP_LIMIT;
use crate::Opcode;

/// A SKU named in a JSON body: its code (`"MUG-WHT"`) or its id (`7`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SkuKey {
    Id(u32),
    Code(String),
}

impl std::fmt::Display for SkuKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkuKey::Id(id) => write!(f, "#{id}"),
            SkuKey::Code(code) => f.write_str(code),
        }
    }
}

impl From<&str> for SkuKey {
    fn from(code: &str) -> Self {
        SkuKey::Code(code.to_owned())
    }
}

/// A warehouse named in a JSON body: its id (`1`) or its code (`"SH"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WarehouseKey {
    Id(u16),
    Code(String),
}

impl std::fmt::Display for WarehouseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WarehouseKey::Id(id) => write!(f, "#{id}"),
            WarehouseKey::Code(code) => f.write_str(code),
        }
    }
}

/// Integers that may arrive as JSON numbers or decimal strings.
mod lenient {
    use serde::de::{self, Deserializer, Visitor};

    struct U64;
    impl Visitor<'_> for U64 {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer or a string of decimal digits")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse().map_err(|_| E::custom(format!("{v:?} is not a non-negative 64-bit integer")))
        }
    }

    struct I64;
    impl Visitor<'_> for I64 {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or a string of decimal digits")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} exceeds 2^63 - 1")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.parse().map_err(|_| E::custom(format!("{v:?} is not a 64-bit integer")))
        }
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(U64)
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(I64)
    }

    /// An optional 64-bit field: absent or `null` is `None`.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct Opt;
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("null, a non-negative integer or a string of decimal digits")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(U64).map(Some)
            }
        }
        d.deserialize_option(Opt)
    }
}

/// A document kept exactly as sent (an order payload's amounts must not be re-formatted): on the
/// wire either the JSON value itself or a JSON string holding its text (a client that has the
/// file's text need not parse it, and text that is not JSON reaches the server's parser, which
/// names the problem).
mod raw {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        match RawValue::from_string(text.trim().to_owned()) {
            Ok(raw) => raw.serialize(s),
            Err(_) => s.serialize_str(text),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get().starts_with('"') {
            return serde_json::from_str::<String>(raw.get()).map_err(serde::de::Error::custom);
        }
        Ok(raw.get().to_owned())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupSkus {
    pub codes: Vec<String>,
}

/// The answer to `lookup_skus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupAnswer {
    pub ids: Vec<Option<u32>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetCampaign {
    pub id: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineWarehouse {
    pub id: u16,
    pub code: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub priority: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineSku {
    pub code: String,
    #[serde(default)]
    pub low_stock_threshold: u32,
}

/// The answer to `define_sku` and `define_kit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinedSku {
    pub id: u32,
}

/// A SKU and a quantity (kit components, after-sale lines).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLine {
    pub sku: SkuKey,
    pub qty: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineKit {
    pub code: String,
    pub components: Vec<JsonLine>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Safety,
    Damaged,
    QualityControl,
}

/// One stock operation (opcode 33), named by `op`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum StockOp {
    SetOnHand {
        sku: SkuKey,
        warehouse: WarehouseKey,
        #[serde(deserialize_with = "lenient::u64")]
        on_hand: u64,
    },
    Receive {
        sku: SkuKey,
        warehouse: WarehouseKey,
        qty: u32,
    },
    Adjust {
        sku: SkuKey,
        warehouse: WarehouseKey,
        #[serde(deserialize_with = "lenient::i64")]
        delta: i64,
    },
    SetBucket {
        sku: SkuKey,
        warehouse: WarehouseKey,
        bucket: Bucket,
        #[serde(deserialize_with = "lenient::u64")]
        qty: u64,
    },
    Transfer {
        sku: SkuKey,
        from: WarehouseKey,
        to: WarehouseKey,
        qty: u32,
    },
    ReturnToStock {
        sku: SkuKey,
        warehouse: WarehouseKey,
        qty: u32,
        #[serde(default)]
        damaged: bool,
    },
    ExpectIncoming {
        #[serde(deserialize_with = "lenient::u64")]
        po: u64,
        sku: SkuKey,
        warehouse: WarehouseKey,
        qty: u32,
        #[serde(deserialize_with = "lenient::u64")]
        eta_ms: u64,
    },
    RescheduleIncoming {
        #[serde(deserialize_with = "lenient::u64")]
        po: u64,
        sku: SkuKey,
        #[serde(deserialize_with = "lenient::u64")]
        eta_ms: u64,
    },
    ReceivePurchaseOrder {
        #[serde(deserialize_with = "lenient::u64")]
        po: u64,
        sku: SkuKey,
        qty: u32,
    },
}

impl StockOp {
    /// The SKU the operation applies to.
    pub fn sku(&self) -> &SkuKey {
        match self {
            StockOp::SetOnHand { sku, .. }
            | StockOp::Receive { sku, .. }
            | StockOp::Adjust { sku, .. }
            | StockOp::SetBucket { sku, .. }
            | StockOp::Transfer { sku, .. }
            | StockOp::ReturnToStock { sku, .. }
            | StockOp::ExpectIncoming { sku, .. }
            | StockOp::RescheduleIncoming { sku, .. }
            | StockOp::ReceivePurchaseOrder { sku, .. } => sku,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFlashSale {
    pub id: u32,
    pub sku: SkuKey,
    pub pool_qty: u32,
    pub per_customer_limit: u32,
    #[serde(deserialize_with = "lenient::u64")]
    pub starts_at_ms: u64,
    #[serde(deserialize_with = "lenient::u64")]
    pub ends_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePresale {
    pub id: u32,
    pub sku: SkuKey,
    pub quota: u32,
    pub per_customer_limit: u32,
    #[serde(deserialize_with = "lenient::u64")]
    pub starts_at_ms: u64,
    #[serde(deserialize_with = "lenient::u64")]
    pub ends_at_ms: u64,
    #[serde(deserialize_with = "lenient::u64")]
    pub balance_window_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelException {
    pub sku: SkuKey,
    pub ratio_bp: u32,
    pub cap: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetChannelPolicy {
    pub channel: u16,
    pub ratio_bp: u32,
    #[serde(default)]
    pub floor: u32,
    #[serde(default)]
    pub exceptions: Vec<ChannelException>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderImport {
    /// taobao, jd, douyin or native.
    pub channel: String,
    /// The channel's order object or array: its JSON text (sent as the JSON value when it parses,
    /// else as a string), kept exactly as sent.
    #[serde(with = "raw")]
    pub payload: String,
}

/// A body naming one order, wave or after-sale by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdBody {
    #[serde(deserialize_with = "lenient::u64")]
    pub id: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderList {
    #[serde(default)]
    pub status: Option<String>,
    /// 0: the server's default and maximum (1000).
    #[serde(default)]
    pub limit: u32,
}

/// `order_page`: one page of orders matching every filter given, newest first unless
/// `oldest_first`; `cursor` is the previous page's `next` (keyset paging: rows created meanwhile
/// never shift a later page).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPage {
    /// An order status name, or `parked` (waiting in the unfillable queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<String>,
    /// Created at or after (Unix ms).
    #[serde(default, deserialize_with = "lenient::opt_u64", skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Created before (Unix ms).
    #[serde(default, deserialize_with = "lenient::opt_u64", skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<u64>,
    /// A hold rule (`big_order`, `manual`) or a whole hold text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// Orders with a line of this SKU (code or id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<SkuKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// 0: 50; at most 1000.
    #[serde(default)]
    pub limit: u32,
    #[serde(default)]
    pub oldest_first: bool,
}

/// `wave_scan`: units of a SKU picked for a wave (the scanner's reading).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveScan {
    #[serde(deserialize_with = "lenient::u64")]
    pub wave: u64,
    pub sku: SkuKey,
    #[serde(default = "one")]
    pub qty: u32,
}

fn one() -> u32 {
    1
}

/// `wave_override`: a supervisor releases a wave for packing without a complete scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveOverride {
    #[serde(deserialize_with = "lenient::u64")]
    pub wave: u64,
    pub supervisor: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderReason {
    #[serde(deserialize_with = "lenient::u64")]
    pub id: u64,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveCreate {
    pub warehouse: WarehouseKey,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub max_shipments: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentBody {
    #[serde(deserialize_with = "lenient::u64")]
    pub shipment: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackAdd {
    #[serde(deserialize_with = "lenient::u64")]
    pub shipment: u64,
    pub code: String,
    #[serde(default)]
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterSaleCreate {
    #[serde(deserialize_with = "lenient::u64")]
    pub order: u64,
    /// return, exchange or refund.
    pub kind: String,
    pub lines: Vec<JsonLine>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterSaleReceive {
    #[serde(deserialize_with = "lenient::u64")]
    pub id: u64,
    #[serde(default)]
    pub damaged: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesReload {
    pub toml: String,
}

/// `shop_status` and `shop_sync`: one marketplace shop by its id, or every shop when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopBody {
    #[serde(default)]
    pub shop: Option<String>,
}

/// `order_exceptions`: the exception desk's open entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderExceptions {
    /// 0: the server's default and maximum (1000).
    #[serde(default)]
    pub limit: u32,
}

/// `order_resolve`: mark entry `index` of order `id`'s exception list as dealt with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderResolve {
    #[serde(deserialize_with = "lenient::u64")]
    pub id: u64,
    pub index: u32,
}

/// One row of `export_stock`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRow {
    /// SKU id.
    pub sku: u32,
    /// SKU code.
    pub code: String,
    /// For a kit: complete kits.
    pub available: u64,
}

/// `get_campaign`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignView {
    pub id: u32,
    /// SKU id.
    pub sku: u32,
    /// SKU code.
    pub sku_code: String,
    /// flash_sale or presale.
    pub kind: String,
    pub remaining: u64,
    pub open: bool,
    pub closed: bool,
    pub per_customer_limit: u32,
    pub starts_at_ms: u64,
    pub ends_at_ms: u64,
}

/// Where a parcel goes (part of a [`Label`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelAddress {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub zip: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelItem {
    /// SKU code.
    pub sku: String,
    pub qty: u32,
}

/// What a shipping label shows: `waybill`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub waybill: String,
    pub carrier: String,
    pub shipment: u64,
    pub order: u64,
    pub channel: String,
    pub external_id: String,
    /// Warehouse code.
    pub warehouse: String,
    pub warehouse_id: u16,
    pub weight_g: u32,
    pub cash_on_delivery: bool,
    pub cod_cents: i64,
    pub to: LabelAddress,
    pub items: Vec<LabelItem>,
}

/// A JSON-bodied request, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonRequest {
    LookupSkus(LookupSkus),
    ExportStock,
    GetCampaign(GetCampaign),
    Audit,
    DefineWarehouse(DefineWarehouse),
    DefineSku(DefineSku),
    DefineKit(DefineKit),
    StockOp(StockOp),
    CreateFlashSale(CreateFlashSale),
    CreatePresale(CreatePresale),
    SetChannelPolicy(SetChannelPolicy),
    Promote,
    OrderImport(OrderImport),
    OrderGet(IdBody),
    OrderList(OrderList),
    OrderApprove(IdBody),
    OrderReject(OrderReason),
    OrderCancel(OrderReason),
    OrderAllocate(IdBody),
    WaveCreate(WaveCreate),
    WaveGet(IdBody),
    ShipmentPack(ShipmentBody),
    ShipmentShip(ShipmentBody),
    ShipmentDeliver(ShipmentBody),
    TrackAdd(TrackAdd),
    AfterSaleCreate(AfterSaleCreate),
    AfterSaleReceive(AfterSaleReceive),
    RulesReload(RulesReload),
    Waybill(ShipmentBody),
    ShopList,
    ShopStatus(ShopBody),
    ShopSync(ShopBody),
    OrderExceptions(OrderExceptions),
    OrderResolve(OrderResolve),
    OrderPage(OrderPage),
    OrderHold(OrderReason),
    OrderUnhold(OrderReason),
    WaveScan(WaveScan),
    WaveOverride(WaveOverride),
}

fn parse<'a, T: Deserialize<'a>>(opcode: Opcode, body: &'a str) -> Result<T, DecodeError> {
    let body = if body.trim().is_empty() { "{}" } else { body };
    serde_json::from_str(body).map_err(|e| DecodeError::Json { opcode: opcode.name(), message: e.to_string() })
}

impl JsonRequest {
    pub fn opcode(&self) -> Opcode {
        match self {
            JsonRequest::LookupSkus(_) => Opcode::LookupSkus,
            JsonRequest::ExportStock => Opcode::ExportStock,
            JsonRequest::GetCampaign(_) => Opcode::GetCampaign,
            JsonRequest::Audit => Opcode::Audit,
            JsonRequest::DefineWarehouse(_) => Opcode::DefineWarehouse,
            JsonRequest::DefineSku(_) => Opcode::DefineSku,
            JsonRequest::DefineKit(_) => Opcode::DefineKit,
            JsonRequest::StockOp(_) => Opcode::StockOp,
            JsonRequest::CreateFlashSale(_) => Opcode::CreateFlashSale,
            JsonRequest::CreatePresale(_) => Opcode::CreatePresale,
            JsonRequest::SetChannelPolicy(_) => Opcode::SetChannelPolicy,
            JsonRequest::Promote => Opcode::Promote,
            JsonRequest::OrderImport(_) => Opcode::OrderImport,
            JsonRequest::OrderGet(_) => Opcode::OrderGet,
            JsonRequest::OrderList(_) => Opcode::OrderList,
            JsonRequest::OrderApprove(_) => Opcode::OrderApprove,
            JsonRequest::OrderReject(_) => Opcode::OrderReject,
            JsonRequest::OrderCancel(_) => Opcode::OrderCancel,
            JsonRequest::OrderAllocate(_) => Opcode::OrderAllocate,
            JsonRequest::WaveCreate(_) => Opcode::WaveCreate,
            JsonRequest::WaveGet(_) => Opcode::WaveGet,
            JsonRequest::ShipmentPack(_) => Opcode::ShipmentPack,
            JsonRequest::ShipmentShip(_) => Opcode::ShipmentShip,
            JsonRequest::ShipmentDeliver(_) => Opcode::ShipmentDeliver,
            JsonRequest::TrackAdd(_) => Opcode::TrackAdd,
            JsonRequest::AfterSaleCreate(_) => Opcode::AfterSaleCreate,
            JsonRequest::AfterSaleReceive(_) => Opcode::AfterSaleReceive,
            JsonRequest::RulesReload(_) => Opcode::RulesReload,
            JsonRequest::Waybill(_) => Opcode::Waybill,
            JsonRequest::ShopList => Opcode::ShopList,
            JsonRequest::ShopStatus(_) => Opcode::ShopStatus,
            JsonRequest::ShopSync(_) => Opcode::ShopSync,
            JsonRequest::OrderExceptions(_) => Opcode::OrderExceptions,
            JsonRequest::OrderResolve(_) => Opcode::OrderResolve,
            JsonRequest::OrderPage(_) => Opcode::OrderPage,
            JsonRequest::OrderHold(_) => Opcode::OrderHold,
            JsonRequest::OrderUnhold(_) => Opcode::OrderUnhold,
            JsonRequest::WaveScan(_) => Opcode::WaveScan,
            JsonRequest::WaveOverride(_) => Opcode::WaveOverride,
        }
    }

    /// Parse the body of a JSON-bodied request (an empty body reads as `{}`), checking the
    /// limits the document gives for it.
    pub fn parse(opcode: Opcode, body: &str) -> Result<JsonRequest, DecodeError> {
        let request = match opcode {
            Opcode::LookupSkus => {
                let lookup: LookupSkus = parse(opcode, body)?;
                if lookup.codes.len() > LOOKUP_LIMIT {
                    return Err(DecodeError::TooMany {
                        field: "codes",
                        count: lookup.codes.len(),
                        limit: LOOKUP_LIMIT,
                    });
                }
                JsonRequest::LookupSkus(lookup)
            }
            Opcode::ExportStock => parse::<Empty>(opcode, body).map(|_| JsonRequest::ExportStock)?,
            Opcode::GetCampaign => JsonRequest::GetCampaign(parse(opcode, body)?),
            Opcode::Audit => parse::<Empty>(opcode, body).map(|_| JsonRequest::Audit)?,
            Opcode::DefineWarehouse => JsonRequest::DefineWarehouse(parse(opcode, body)?),
            Opcode::DefineSku => JsonRequest::DefineSku(parse(opcode, body)?),
            Opcode::DefineKit => JsonRequest::DefineKit(parse(opcode, body)?),
            Opcode::StockOp => JsonRequest::StockOp(parse(opcode, body)?),
            Opcode::CreateFlashSale => JsonRequest::CreateFlashSale(parse(opcode, body)?),
            Opcode::CreatePresale => JsonRequest::CreatePresale(parse(opcode, body)?),
            Opcode::SetChannelPolicy => JsonRequest::SetChannelPolicy(parse(opcode, body)?),
            Opcode::Promote => parse::<Empty>(opcode, body).map(|_| JsonRequest::Promote)?,
            Opcode::OrderImport => JsonRequest::OrderImport(parse(opcode, body)?),
            Opcode::OrderGet => JsonRequest::OrderGet(parse(opcode, body)?),
            Opcode::OrderList => JsonRequest::OrderList(parse(opcode, body)?),
            Opcode::OrderApprove => JsonRequest::OrderApprove(parse(opcode, body)?),
            Opcode::OrderReject => JsonRequest::OrderReject(parse(opcode, body)?),
            Opcode::OrderCancel => JsonRequest::OrderCancel(parse(opcode, body)?),
            Opcode::OrderAllocate => JsonRequest::OrderAllocate(parse(opcode, body)?),
            Opcode::WaveCreate => JsonRequest::WaveCreate(parse(opcode, body)?),
            Opcode::WaveGet => JsonRequest::WaveGet(parse(opcode, body)?),
            Opcode::ShipmentPack => JsonRequest::ShipmentPack(parse(opcode, body)?),
            Opcode::ShipmentShip => JsonRequest::ShipmentShip(parse(opcode, body)?),
            Opcode::ShipmentDeliver => JsonRequest::ShipmentDeliver(parse(opcode, body)?),
            Opcode::TrackAdd => JsonRequest::TrackAdd(parse(opcode, body)?),
            Opcode::AfterSaleCreate => JsonRequest::AfterSaleCreate(parse(opcode, body)?),
            Opcode::AfterSaleReceive => JsonRequest::AfterSaleReceive(parse(opcode, body)?),
            Opcode::RulesReload => JsonRequest::RulesReload(parse(opcode, body)?),
            Opcode::Waybill => JsonRequest::Waybill(parse(opcode, body)?),
            Opcode::ShopList => parse::<Empty>(opcode, body).map(|_| JsonRequest::ShopList)?,
            Opcode::ShopStatus => JsonRequest::ShopStatus(parse(opcode, body)?),
            Opcode::ShopSync => JsonRequest::ShopSync(parse(opcode, body)?),
            Opcode::OrderExceptions => JsonRequest::OrderExceptions(parse(opcode, body)?),
            Opcode::OrderResolve => JsonRequest::OrderResolve(parse(opcode, body)?),
            Opcode::OrderPage => JsonRequest::OrderPage(parse(opcode, body)?),
            Opcode::OrderHold => JsonRequest::OrderHold(parse(opcode, body)?),
            Opcode::OrderUnhold => JsonRequest::OrderUnhold(parse(opcode, body)?),
            Opcode::WaveScan => JsonRequest::WaveScan(parse(opcode, body)?),
            Opcode::WaveOverride => JsonRequest::WaveOverride(parse(opcode, body)?),
            binary => {
                return Err(DecodeError::Json { opcode: binary.name(), message: "not a JSON-bodied operation".into() })
            }
        };
        Ok(request)
    }

    /// The body to send.
    pub fn body(&self) -> Result<String, crate::EncodeError> {
        let text = match self {
            JsonRequest::ExportStock | JsonRequest::Audit | JsonRequest::Promote | JsonRequest::ShopList => {
                serde_json::to_string(&Empty {})
            }
            JsonRequest::LookupSkus(b) => serde_json::to_string(b),
            JsonRequest::GetCampaign(b) => serde_json::to_string(b),
            JsonRequest::DefineWarehouse(b) => serde_json::to_string(b),
            JsonRequest::DefineSku(b) => serde_json::to_string(b),
            JsonRequest::DefineKit(b) => serde_json::to_string(b),
            JsonRequest::StockOp(b) => serde_json::to_string(b),
            JsonRequest::CreateFlashSale(b) => serde_json::to_string(b),
            JsonRequest::CreatePresale(b) => serde_json::to_string(b),
            JsonRequest::SetChannelPolicy(b) => serde_json::to_string(b),
            JsonRequest::OrderImport(b) => serde_json::to_string(b),
            JsonRequest::OrderList(b) => serde_json::to_string(b),
            JsonRequest::OrderGet(b)
            | JsonRequest::OrderApprove(b)
            | JsonRequest::OrderAllocate(b)
            | JsonRequest::WaveGet(b) => serde_json::to_string(b),
            JsonRequest::OrderReject(b)
            | JsonRequest::OrderCancel(b)
            | JsonRequest::OrderHold(b)
            | JsonRequest::OrderUnhold(b) => serde_json::to_string(b),
            JsonRequest::OrderPage(b) => serde_json::to_string(b),
            JsonRequest::WaveScan(b) => serde_json::to_string(b),
            JsonRequest::WaveOverride(b) => serde_json::to_string(b),
            JsonRequest::WaveCreate(b) => serde_json::to_string(b),
            JsonRequest::ShipmentPack(b)
            | JsonRequest::ShipmentShip(b)
            | JsonRequest::ShipmentDeliver(b)
            | JsonRequest::Waybill(b) => serde_json::to_string(b),
            JsonRequest::TrackAdd(b) => serde_json::to_string(b),
            JsonRequest::AfterSaleCreate(b) => serde_json::to_string(b),
            JsonRequest::AfterSaleReceive(b) => serde_json::to_string(b),
            JsonRequest::RulesReload(b) => serde_json::to_string(b),
            JsonRequest::ShopStatus(b) | JsonRequest::ShopSync(b) => serde_json::to_string(b),
            JsonRequest::OrderExceptions(b) => serde_json::to_string(b),
            JsonRequest::OrderResolve(b) => serde_json::to_string(b),
        };
        text.map_err(|e| crate::EncodeError::Json(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_with_defaults_and_refuse_unknown_fields() {
        // Checks the documented defaults, the code-or-id and number-or-string forms, and that a
        // misspelt field is refused with bad_request rather than ignored.
        let op = JsonRequest::parse(
            Opcode::StockOp,
            r#"{"op":"set_on_hand","sku":"MUG-WHT","warehouse":"SH","on_hand":"18446744073709551615"}"#,
        )
        .unwrap();
        assert_eq!(
            op,
            JsonRequest::StockOp(StockOp::SetOnHand {
                sku: SkuKey::Code("MUG-WHT".into()),
                warehouse: WarehouseKey::Code("SH".into()),
                on_hand: u64::MAX
            })
        );
        let op = JsonRequest::parse(Opcode::StockOp, r#"{"op":"adjust","sku":7,"warehouse":1,"delta":-3}"#).unwrap();
        assert_eq!(
            op,
            JsonRequest::StockOp(StockOp::Adjust { sku: SkuKey::Id(7), warehouse: WarehouseKey::Id(1), delta: -3 })
        );
        let bad = JsonRequest::parse(Opcode::StockOp, r#"{"op":"receive","sku":7,"warehouse":1,"quantity":3}"#);
        assert!(matches!(bad, Err(DecodeError::Json { .. })), "{bad:?}");
        assert_eq!(bad.unwrap_err().code(), crate::ErrorCode::BAD_REQUEST);
        assert_eq!(JsonRequest::parse(Opcode::Audit, ""), Ok(JsonRequest::Audit));
        assert!(JsonRequest::parse(Opcode::Audit, r#"{"x":1}"#).is_err());
        assert_eq!(
            JsonRequest::parse(Opcode::OrderList, "{}"),
            Ok(JsonRequest::OrderList(OrderList { status: None, limit: 0 }))
        );
        let import =
            JsonRequest::parse(Opcode::OrderImport, r#"{"channel":"jd","payload":{"orderPayment":"12.30"}}"#).unwrap();
        let JsonRequest::OrderImport(import) = import else { panic!("not an import") };
        assert_eq!(import.payload, r#"{"orderPayment":"12.30"}"#);
        let again = JsonRequest::OrderImport(import.clone()).body().unwrap();
        assert_eq!(JsonRequest::parse(Opcode::OrderImport, &again), Ok(JsonRequest::OrderImport(import)));
        // Text that is not JSON travels as a string and arrives as the same text.
        let junk = JsonRequest::OrderImport(OrderImport { channel: "jd".into(), payload: "{not json".into() });
        let body = junk.body().unwrap();
        assert_eq!(JsonRequest::parse(Opcode::OrderImport, &body), Ok(junk));
        let as_string = JsonRequest::parse(Opcode::OrderImport, r#"{"channel":"jd","payload":"[1, 2]"}"#).unwrap();
        assert!(matches!(as_string, JsonRequest::OrderImport(OrderImport { payload, .. }) if payload == "[1, 2]"));
    }
}
