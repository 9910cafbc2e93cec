//! Request and response payloads. Hot-path messages are typed; read and admin answers carry JSON
//! views (the engine's serde types), which keeps the wire small to maintain and the CLI's `--json`
//! output identical to what the server computed.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::Opcode;

macro_rules! wire {
    ($item:item) => {
        #[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        $item
    };
}

wire! {
/// A SKU named by the storefront's code or by its interned id.
pub enum SkuRef {
    Code(String),
    Id(u32),
}
}

wire! {
pub struct WireLine {
    pub sku: SkuRef,
    pub qty: u32,
}
}

wire! {
pub struct ReserveWire {
    pub lines: Vec<WireLine>,
    pub ttl_ms: u64,
    /// The caller's idempotency key (hashed by the server); empty for none.
    pub idempotency_key: String,
    pub customer: u64,
    pub channel: u16,
    pub campaign: Option<u32>,
}
}

wire! {
pub enum StockOpWire {
    SetOnHand { sku: SkuRef, warehouse: u16, on_hand: u64 },
    Receive { sku: SkuRef, warehouse: u16, qty: u32 },
    Adjust { sku: SkuRef, warehouse: u16, delta: i64 },
    /// bucket: 0 safety, 1 damaged, 2 quality control.
    SetBucket { sku: SkuRef, warehouse: u16, bucket: u8, qty: u64 },
    Transfer { sku: SkuRef, from: u16, to: u16, qty: u32 },
    ReturnToStock { sku: SkuRef, warehouse: u16, qty: u32, damaged: bool },
    ExpectIncoming { po: u64, sku: SkuRef, warehouse: u16, qty: u32, eta_ms: u64 },
    RescheduleIncoming { po: u64, sku: SkuRef, eta_ms: u64 },
    ReceivePurchaseOrder { po: u64, sku: SkuRef, qty: u32 },
}
}

wire! {
pub enum Request {
    Hello { magic: u32, version: u16, api_key: String, client: String },
    Ping,
    Reserve(ReserveWire),
    ReserveBatch(Vec<ReserveWire>),
    Confirm { id: u64 },
    Release { id: u64 },
    PayBalance { id: u64 },
    Ship { id: u64 },
    GetStock { sku: SkuRef },
    GetReservation { id: u64 },
    LookupSkus { codes: Vec<String> },
    ExportStock,
    GetCampaign { id: u32 },
    Audit,
    DefineWarehouse { id: u16, code: String, region: String, priority: u16 },
    DefineSku { code: String, low_stock_threshold: u32 },
    DefineKit { code: String, components: Vec<WireLine> },
    StockOp(StockOpWire),
    CreateFlashSale { id: u32, sku: SkuRef, pool_qty: u32, per_customer_limit: u32, starts_at_ms: u64, ends_at_ms: u64 },
    CreatePresale { id: u32, sku: SkuRef, quota: u32, per_customer_limit: u32, starts_at_ms: u64, ends_at_ms: u64, balance_window_ms: u64 },
    /// exceptions: (sku, ratio_bp, cap).
    SetChannelPolicy { channel: u16, ratio_bp: u32, floor: u32, exceptions: Vec<(SkuRef, u32, u32)> },
    /// Log subscription (docs/REPLICATION.md): stream durable records of one partition (or of all
    /// when `None`) from `from_lsn`; `bootstrap` asks for a snapshot first when `from_lsn` is 0 or
    /// older than the retained log (otherwise that is refused `behind_retention`).
    Subscribe { partition: Option<u32>, from_lsn: u64, bootstrap: bool },
    /// Turn a follower into the primary (ops).
    Promote,
    // ----- Orders (docs/ORDERS.md, "Through the server"); answers are `Json` -----
    /// Import a channel payload (one order object or a JSON array); `channel` is taobao, jd,
    /// douyin or native. Answers one result per order (a malformed one names its field path).
    OrderImport { channel: String, payload: String },
    OrderGet { id: u64 },
    /// Orders in one status (`None`: every status), oldest first, at most `limit` (0: 1000).
    OrderList { status: Option<String>, limit: u32 },
    OrderApprove { id: u64 },
    OrderReject { id: u64, reason: String },
    OrderCancel { id: u64, reason: String },
    /// Allocate one order (0: every approved order waiting and every parked one).
    OrderAllocate { id: u64 },
    /// One pick wave per partition that has allocated shipments in `warehouse`.
    WaveCreate { warehouse: u16, carrier: Option<String>, max_shipments: u32 },
    WaveGet { id: u64 },
    ShipmentPack { shipment: u64 },
    ShipmentShip { shipment: u64 },
    ShipmentDeliver { shipment: u64 },
    TrackAdd { shipment: u64, code: String, location: String },
    /// `kind`: return, exchange or refund.
    AfterSaleCreate { order: u64, kind: String, lines: Vec<WireLine>, reason: String },
    AfterSaleReceive { id: u64, damaged: bool },
    /// The rules file's TOML text; parsed by the server and broadcast as commands.
    RulesReload { toml: String },
    /// The label data of a packed shipment (waybill, carrier, addresses, items).
    Waybill { shipment: u64 },
    /// A follower's report, on its subscription connection, that its own log holds `partition`
    /// durably up to `durable_lsn` (docs/REPLICATION.md, `--ack-after-replica`). Never answered.
    ReplicaAck { partition: u32, durable_lsn: u64 },
    /// Marketplace shops and the exception desk (ops): `json` is one of `{"op":"shop_list"}`,
    /// `{"op":"shop_status","shop":null|"id"}`, `{"op":"shop_sync","shop":null|"id"}`,
    /// `{"op":"exceptions","limit":N}`, `{"op":"resolve","order":ID,"index":N}`; answered `Json`.
    Channels { json: String },
}
}

impl Request {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Hello { .. } => Opcode::Hello,
            Request::Ping => Opcode::Ping,
            Request::Reserve(_) => Opcode::Reserve,
            Request::ReserveBatch(_) => Opcode::ReserveBatch,
            Request::Confirm { .. } => Opcode::Confirm,
            Request::Release { .. } => Opcode::Release,
            Request::PayBalance { .. } => Opcode::PayBalance,
            Request::Ship { .. } => Opcode::Ship,
            Request::GetStock { .. } => Opcode::GetStock,
            Request::GetReservation { .. } => Opcode::GetReservation,
            Request::LookupSkus { .. } => Opcode::LookupSkus,
            Request::ExportStock => Opcode::ExportStock,
            Request::GetCampaign { .. } => Opcode::GetCampaign,
            Request::Audit => Opcode::Audit,
            Request::DefineWarehouse { .. } => Opcode::DefineWarehouse,
            Request::DefineSku { .. } => Opcode::DefineSku,
            Request::DefineKit { .. } => Opcode::DefineKit,
            Request::StockOp(_) => Opcode::StockOp,
            Request::CreateFlashSale { .. } => Opcode::CreateFlashSale,
            Request::CreatePresale { .. } => Opcode::CreatePresale,
            Request::SetChannelPolicy { .. } => Opcode::SetChannelPolicy,
            Request::Subscribe { .. } => Opcode::Subscribe,
            Request::Promote => Opcode::Promote,
            Request::OrderImport { .. } => Opcode::OrderImport,
            Request::OrderGet { .. } => Opcode::OrderGet,
            Request::OrderList { .. } => Opcode::OrderList,
            Request::OrderApprove { .. } => Opcode::OrderApprove,
            Request::OrderReject { .. } => Opcode::OrderReject,
            Request::OrderCancel { .. } => Opcode::OrderCancel,
            Request::OrderAllocate { .. } => Opcode::OrderAllocate,
            Request::WaveCreate { .. } => Opcode::WaveCreate,
            Request::WaveGet { .. } => Opcode::WaveGet,
            Request::ShipmentPack { .. } => Opcode::ShipmentPack,
            Request::ShipmentShip { .. } => Opcode::ShipmentShip,
            Request::ShipmentDeliver { .. } => Opcode::ShipmentDeliver,
            Request::TrackAdd { .. } => Opcode::TrackAdd,
            Request::AfterSaleCreate { .. } => Opcode::AfterSaleCreate,
            Request::AfterSaleReceive { .. } => Opcode::AfterSaleReceive,
            Request::RulesReload { .. } => Opcode::RulesReload,
            Request::Waybill { .. } => Opcode::Waybill,
            Request::ReplicaAck { .. } => Opcode::ReplicaAck,
            Request::Channels { .. } => Opcode::Channels,
        }
    }
}

wire! {
pub struct WireAllocation {
    pub sku: u32,
    pub warehouse: u16,
    pub qty: u32,
}
}

wire! {
/// A refusal: a stable numeric code, its name, a sentence, and the facts a caller acts on.
pub struct WireError {
    pub code: u16,
    pub name: String,
    pub message: String,
    /// Units available when a stock check failed.
    pub available: Option<u64>,
    /// The SKU concerned, if any.
    pub sku: Option<u32>,
}
}

wire! {
pub struct ReservedWire {
    pub id: u64,
    pub allocations: Vec<WireAllocation>,
    pub expires_at_ms: u64,
    pub replayed: bool,
    pub promise_ms: Option<u64>,
}
}

wire! {
/// One answer inside a batch: reserved or refused.
pub enum BatchItem {
    Reserved(ReservedWire),
    Error(WireError),
}
}

wire! {
/// One log record as stored: the payload is the engine's encoded command envelope.
pub struct LogRecordWire {
    pub lsn: u64,
    pub record_type: u8,
    pub payload: Vec<u8>,
}
}

wire! {
pub enum Response {
    HelloOk { version: u16, server: String, partitions: u32, role: String, max_frame_bytes: u32, max_lines: u32, max_in_flight: u32 },
    Pong,
    Reserved(ReservedWire),
    Batch(Vec<BatchItem>),
    /// A command succeeded and there is nothing else to say.
    Done,
    SkuDefined { id: u32 },
    /// Interned ids for LookupSkus, in request order.
    SkuIds(Vec<Option<u32>>),
    /// A read or admin answer as JSON (engine view types).
    Json(String),
    Error(WireError),
    /// A subscription frame: consecutive durable records (possibly none: a heartbeat).
    LogRecords { partition: u32, records: Vec<LogRecordWire>, durable_lsn: u64 },
    /// A subscription bootstrap: part of the encoded partition image at `lsn`; the records that
    /// follow start at `lsn + 1`. The image is complete when `offset + data.len() == total`.
    Snapshot { partition: u32, lsn: u64, offset: u64, total: u64, data: Vec<u8> },
}
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error("payload does not validate: {0}")]
    Invalid(String),
    #[error("payload could not be encoded: {0}")]
    Encode(String),
}

/// Encode a message into its payload bytes.
pub fn encode<T>(message: &T) -> Result<AlignedVec, PayloadError>
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<AlignedVec, rkyv::ser::allocator::ArenaHandle<'a>, rancor::Error>,
    >,
{
    rkyv::to_bytes::<rancor::Error>(message).map_err(|e| PayloadError::Encode(e.to_string()))
}

/// Encode into a reused buffer (the writer's hot path: no allocation per response).
pub fn encode_into<T>(message: &T, mut buffer: AlignedVec) -> Result<AlignedVec, PayloadError>
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<AlignedVec, rkyv::ser::allocator::ArenaHandle<'a>, rancor::Error>,
    >,
{
    buffer.clear();
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(message, buffer).map_err(|e| PayloadError::Encode(e.to_string()))
}

/// Validate and decode a request payload. `scratch` is reused so that aligning the bytes does not
/// allocate per request.
pub fn decode_request(payload: &[u8], scratch: &mut AlignedVec) -> Result<Request, PayloadError> {
    scratch.clear();
    scratch.extend_from_slice(payload);
    rkyv::from_bytes::<Request, rancor::Error>(scratch).map_err(|e| PayloadError::Invalid(e.to_string()))
}

pub fn decode_response(payload: &[u8], scratch: &mut AlignedVec) -> Result<Response, PayloadError> {
    scratch.clear();
    scratch.extend_from_slice(payload);
    rkyv::from_bytes::<Response, rancor::Error>(scratch).map_err(|e| PayloadError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        let request = Request::Reserve(ReserveWire {
            lines: vec![WireLine { sku: SkuRef::Code("TSHIRT-RED-XL".into()), qty: 2 }],
            ttl_ms: 900_000,
            idempotency_key: "k1".into(),
            customer: 9,
            channel: 1,
            campaign: None,
        });
        let bytes = encode(&request).unwrap();
        let mut scratch = AlignedVec::new();
        assert_eq!(decode_request(&bytes, &mut scratch).unwrap(), request);
        for garbage in [&b""[..], b"\xff\xff\xff\xff", &[0u8; 64], &[0xAB; 300]] {
            let _ = decode_request(garbage, &mut scratch);
        }
        // Flipping any byte either still validates or is refused; it never panics.
        for i in 0..bytes.len() {
            let mut damaged = bytes.to_vec();
            damaged[i] ^= 0x5A;
            let _ = decode_request(&damaged, &mut scratch);
        }
    }
}
