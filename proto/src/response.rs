//! Responses (server -> client) and the wire view types a client returns. They are this crate's
//! own types: no server-side type (engine views, order summaries) leaks into a client.
//!
//! Encoding is the server's; decoding is the client's and allocates only what it returns, never
//! by a count the peer chose (arrays grow as their items are read).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::code::Code;
use crate::codec::{Buffer, DecodeError, EncodeError, Reader, Writer};
use crate::frame::{write_frame, FrameHeader, FLAG_ERROR};
use crate::limits::{CODE_LIMIT, ERROR_MESSAGE_LIMIT, ERROR_NAME_LIMIT, MAX_BATCH, SERVER_NAME_LIMIT};
use crate::opcode::{BodyKind, Opcode};
use crate::role::Role;
use crate::ErrorCode;

/// What the server announced in `hello_ok`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: u16,
    pub role: Role,
    pub partitions: u32,
    pub max_frame_bytes: u32,
    pub max_lines: u32,
    pub max_in_flight: u32,
    pub max_batch: u32,
    pub features: u32,
    pub server: String,
}

/// Units of one SKU held in one warehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub sku_id: u32,
    pub warehouse_id: u16,
    pub qty: u32,
    /// SKU code.
    pub sku: Code,
    /// Warehouse code.
    pub warehouse: Code,
}

/// A reservation made (or replayed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub id: u64,
    pub expires_at_ms: u64,
    pub promise_ms: Option<u64>,
    pub replayed: bool,
    pub allocations: Vec<Allocation>,
}

/// One cart's outcome in a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchItem {
    Reserved(Reserved),
    Refused(WireError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitComponent {
    pub qty: u32,
    pub sku_id: u32,
    pub sku: Code,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseStock {
    pub warehouse_id: u16,
    pub on_hand: u64,
    pub reserved: u64,
    pub pooled: u64,
    pub safety: u64,
    pub damaged: u64,
    pub quality_control: u64,
    pub available: u64,
    pub warehouse: Code,
}

/// A SKU's stock (opcode 20).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    pub sku_id: u32,
    pub on_hand: u64,
    pub reserved: u64,
    pub pooled: u64,
    pub unavailable: u64,
    pub available: u64,
    pub incoming: u64,
    pub sku: Code,
    /// Empty unless the SKU is a kit.
    pub kit: Vec<KitComponent>,
    pub warehouses: Vec<WarehouseStock>,
}

/// Where a reservation stands (docs/PROTOCOL.md section 5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ReservationStatus {
    Held = 1,
    Confirmed = 2,
    DepositHeld = 3,
    BalancePaid = 4,
    Released = 5,
    Expired = 6,
    Shipped = 7,
    BalanceMissed = 8,
    Partial = 9,
}

impl ReservationStatus {
    pub const ALL: [ReservationStatus; 9] = [
        ReservationStatus::Held,
        ReservationStatus::Confirmed,
        ReservationStatus::DepositHeld,
        ReservationStatus::BalancePaid,
        ReservationStatus::Released,
        ReservationStatus::Expired,
        ReservationStatus::Shipped,
        ReservationStatus::BalanceMissed,
        ReservationStatus::Partial,
    ];

    pub fn from_tag(tag: u8) -> Option<ReservationStatus> {
        ReservationStatus::ALL.iter().copied().find(|s| *s as u8 == tag)
    }

    pub fn name(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::DepositHeld => "deposit_held",
            ReservationStatus::BalancePaid => "balance_paid",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
            ReservationStatus::Shipped => "shipped",
            ReservationStatus::BalanceMissed => "balance_missed",
            ReservationStatus::Partial => "partial",
        }
    }

    pub fn from_name(name: &str) -> Option<ReservationStatus> {
        ReservationStatus::ALL.iter().copied().find(|s| s.name() == name)
    }
}

impl PartialEq<&str> for ReservationStatus {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl std::fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPart {
    pub partition: u32,
    pub status: ReservationStatus,
    pub allocations: Vec<Allocation>,
}

/// A reservation as the server holds it (opcode 21).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationView {
    pub id: u64,
    pub customer: u64,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub promise_ms: Option<u64>,
    pub campaign: Option<u32>,
    pub presale_outstanding: u32,
    pub channel: u16,
    pub status: ReservationStatus,
    pub allocations: Vec<Allocation>,
    /// Empty unless `status` is partial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ReservationPart>,
}

/// A refusal: a stable code, its name, a sentence, and the facts a caller acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: ErrorCode,
    pub name: Cow<'static, str>,
    pub message: String,
    /// Units available when a stock check failed.
    pub available: Option<u64>,
    pub sku_id: Option<u32>,
    /// The SKU code concerned (boxed: an error stays small enough to return by value).
    pub sku: Option<Box<str>>,
    /// The warehouse code concerned.
    pub warehouse: Option<Box<str>>,
}

impl WireError {
    /// An error with this build's name for `code` and no facts.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> WireError {
        WireError {
            code,
            name: Cow::Borrowed(code.name().unwrap_or("unknown")),
            message: message.into(),
            available: None,
            sku_id: None,
            sku: None,
            warehouse: None,
        }
    }

    fn encode<B: Buffer>(&self, w: &mut Writer<'_, B>) -> Result<(), EncodeError> {
        w.u16(self.code.0);
        w.opt_u64(self.available);
        w.opt_u32(self.sku_id);
        w.str("error name", &self.name, ERROR_NAME_LIMIT)?;
        w.str("error message", cut(&self.message, ERROR_MESSAGE_LIMIT), ERROR_MESSAGE_LIMIT)?;
        w.str("error sku", self.sku.as_deref().unwrap_or(""), CODE_LIMIT)?;
        w.str("error warehouse", self.warehouse.as_deref().unwrap_or(""), CODE_LIMIT)
    }

    fn decode(r: &mut Reader<'_>) -> Result<WireError, DecodeError> {
        let code = ErrorCode(r.u16("error code")?);
        let available = r.opt_u64("error available")?;
        let sku_id = r.opt_u32("error sku_id")?;
        let name = r.str("error name", ERROR_NAME_LIMIT)?;
        // Known names borrow this build's table: no allocation for the common refusals.
        let name = match code.name() {
            Some(known) if known == name => Cow::Borrowed(known),
            _ => Cow::Owned(name.to_owned()),
        };
        let message = r.str("error message", ERROR_MESSAGE_LIMIT)?.to_owned();
        let sku = decode_code(r, "error sku")?.non_empty().map(|c| c.as_str().into());
        let warehouse = decode_code(r, "error warehouse")?.non_empty().map(|c| c.as_str().into());
        Ok(WireError { code, name, message, available, sku_id, sku, warehouse })
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.name, self.code.0, self.message)
    }
}

impl std::error::Error for WireError {}

/// `text` cut to at most `limit` bytes at a character boundary.
fn cut(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One log record as stored: the payload is the engine's encoded command envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub lsn: u64,
    pub record_type: u8,
    pub payload: Vec<u8>,
}

/// A subscription frame: consecutive durable records (none: a heartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecords {
    pub partition: u32,
    pub durable_lsn: u64,
    pub records: Vec<LogRecord>,
}

/// A subscription bootstrap: part of the encoded partition image at `lsn`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub partition: u32,
    pub lsn: u64,
    pub offset: u64,
    pub total: u64,
    pub data: Vec<u8>,
}

const STREAM_LOG_RECORDS: u8 = 1;
const STREAM_SNAPSHOT: u8 = 2;
const BATCH_RESERVED: u8 = 0;
const BATCH_REFUSED: u8 = 1;

/// A response payload. Which variant answers which opcode is in docs/PROTOCOL.md section 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    HelloOk(ServerInfo),
    /// An empty payload: ping, confirm, release, pay_balance, ship.
    Done,
    Reserved(Reserved),
    Batch(Vec<BatchItem>),
    Stock(StockView),
    Reservation(ReservationView),
    /// The answer of a JSON-bodied operation, as sent.
    Json(String),
    LogRecords(LogRecords),
    Snapshot(SnapshotChunk),
    Error(WireError),
}

fn encode_allocations<B: Buffer>(w: &mut Writer<'_, B>, allocations: &[Allocation]) -> Result<(), EncodeError> {
    w.count("allocations", allocations.len(), usize::from(u16::MAX))?;
    for a in allocations {
        w.u32(a.sku_id);
        w.u16(a.warehouse_id);
        w.u32(a.qty);
        w.str("allocation sku", &a.sku, CODE_LIMIT)?;
        w.str("allocation warehouse", &a.warehouse, CODE_LIMIT)?;
    }
    Ok(())
}

fn decode_code(r: &mut Reader<'_>, field: &'static str) -> Result<Code, DecodeError> {
    let text = r.str(field, CODE_LIMIT)?;
    Code::new(text).map_err(|_| DecodeError::InvalidCode { len: text.len(), limit: CODE_LIMIT })
}

fn decode_allocations(r: &mut Reader<'_>) -> Result<Vec<Allocation>, DecodeError> {
    let count = r.count("allocations", usize::from(u16::MAX))?;
    let mut allocations = Vec::new();
    for _ in 0..count {
        let sku_id = r.u32("allocation sku_id")?;
        let warehouse_id = r.u16("allocation warehouse_id")?;
        let qty = r.u32("allocation qty")?;
        let sku = decode_code(r, "allocation sku")?;
        let warehouse = decode_code(r, "allocation warehouse")?;
        allocations.push(Allocation { sku_id, warehouse_id, qty, sku, warehouse });
    }
    Ok(allocations)
}

fn encode_reserved<B: Buffer>(w: &mut Writer<'_, B>, r: &Reserved) -> Result<(), EncodeError> {
    w.u64(r.id);
    w.u64(r.expires_at_ms);
    w.opt_u64(r.promise_ms);
    w.bool(r.replayed);
    encode_allocations(w, &r.allocations)
}

fn decode_reserved(r: &mut Reader<'_>) -> Result<Reserved, DecodeError> {
    let id = r.u64("id")?;
    let expires_at_ms = r.u64("expires_at_ms")?;
    let promise_ms = r.opt_u64("promise_ms")?;
    let replayed = r.bool("replayed")?;
    let allocations = decode_allocations(r)?;
    Ok(Reserved { id, expires_at_ms, promise_ms, replayed, allocations })
}

fn decode_status(r: &mut Reader<'_>) -> Result<ReservationStatus, DecodeError> {
    let tag = r.u8("status")?;
    ReservationStatus::from_tag(tag).ok_or(DecodeError::InvalidTag { field: "status", value: tag })
}

impl Response {
    /// Append this response as one frame answering `opcode` (0 for a connection-level error).
    pub fn encode<B: Buffer>(&self, opcode: u16, request_id: u64, out: &mut B) -> Result<usize, EncodeError> {
        let flags = if matches!(self, Response::Error(_)) { FLAG_ERROR } else { 0 };
        write_frame(out, FrameHeader { opcode, flags, request_id }, |w| self.encode_payload(w))
    }

    fn encode_payload<B: Buffer>(&self, w: &mut Writer<'_, B>) -> Result<(), EncodeError> {
        match self {
            Response::HelloOk(info) => {
                w.u16(info.version);
                w.u8(info.role.tag());
                w.u8(0);
                w.u32(info.partitions);
                w.u32(info.max_frame_bytes);
                w.u32(info.max_lines);
                w.u32(info.max_in_flight);
                w.u32(info.max_batch);
                w.u32(info.features);
                w.str("server", &info.server, SERVER_NAME_LIMIT)
            }
            Response::Done => Ok(()),
            Response::Reserved(reserved) => encode_reserved(w, reserved),
            Response::Batch(items) => {
                w.count("batch", items.len(), MAX_BATCH as usize)?;
                for item in items {
                    match item {
                        BatchItem::Reserved(reserved) => {
                            w.u8(BATCH_RESERVED);
                            encode_reserved(w, reserved)?;
                        }
                        BatchItem::Refused(error) => {
                            w.u8(BATCH_REFUSED);
                            error.encode(w)?;
                        }
                    }
                }
                Ok(())
            }
            Response::Stock(s) => {
                w.u32(s.sku_id);
                for v in [s.on_hand, s.reserved, s.pooled, s.unavailable, s.available, s.incoming] {
                    w.u64(v);
                }
                w.str("sku", &s.sku, CODE_LIMIT)?;
                w.count("kit", s.kit.len(), usize::from(u16::MAX))?;
                for c in &s.kit {
                    w.u32(c.qty);
                    w.u32(c.sku_id);
                    w.str("kit sku", &c.sku, CODE_LIMIT)?;
                }
                w.count("warehouses", s.warehouses.len(), usize::from(u16::MAX))?;
                for h in &s.warehouses {
                    w.u16(h.warehouse_id);
                    for v in [h.on_hand, h.reserved, h.pooled, h.safety, h.damaged, h.quality_control, h.available] {
                        w.u64(v);
                    }
                    w.str("warehouse", &h.warehouse, CODE_LIMIT)?;
                }
                Ok(())
            }
            Response::Reservation(v) => {
                w.u64(v.id);
                w.u64(v.customer);
                w.u64(v.created_at_ms);
                w.u64(v.expires_at_ms);
                w.opt_u64(v.promise_ms);
                w.opt_u32(v.campaign);
                w.u32(v.presale_outstanding);
                w.u16(v.channel);
                w.u8(v.status as u8);
                encode_allocations(w, &v.allocations)?;
                w.count("parts", v.parts.len(), usize::from(u16::MAX))?;
                for part in &v.parts {
                    w.u32(part.partition);
                    w.u8(part.status as u8);
                    encode_allocations(w, &part.allocations)?;
                }
                Ok(())
            }
            Response::Json(text) => {
                w.raw(text.as_bytes());
                Ok(())
            }
            Response::LogRecords(batch) => {
                w.u8(STREAM_LOG_RECORDS);
                w.u32(batch.partition);
                w.u64(batch.durable_lsn);
                let count = u32::try_from(batch.records.len()).map_err(|_| EncodeError::TooMany {
                    field: "records",
                    count: batch.records.len(),
                    limit: u32::MAX as usize,
                })?;
                w.u32(count);
                for record in &batch.records {
                    w.u64(record.lsn);
                    w.u8(record.record_type);
                    w.bytes(&record.payload)?;
                }
                Ok(())
            }
            Response::Snapshot(chunk) => {
                w.u8(STREAM_SNAPSHOT);
                w.u32(chunk.partition);
                w.u64(chunk.lsn);
                w.u64(chunk.offset);
                w.u64(chunk.total);
                w.bytes(&chunk.data)
            }
            Response::Error(error) => error.encode(w),
        }
    }
}

/// Decode a response payload (the client side). The frame's opcode picks the layout; the ERROR
/// flag means an error body whatever the opcode.
pub fn decode_response(header: &FrameHeader, payload: &[u8]) -> Result<Response, DecodeError> {
    let mut r = Reader::new(payload);
    if header.is_error() {
        let error = WireError::decode(&mut r)?;
        r.finish()?;
        return Ok(Response::Error(error));
    }
    let opcode = Opcode::from_u16(header.opcode).ok_or(DecodeError::NotAResponse(header.opcode))?;
    let response = match opcode {
        Opcode::Hello => {
            let version = r.u16("version")?;
            let tag = r.u8("role")?;
            let role = Role::from_tag(tag).ok_or(DecodeError::InvalidTag { field: "role", value: tag })?;
            let _reserved = r.u8("reserved")?;
            let partitions = r.u32("partitions")?;
            let max_frame_bytes = r.u32("max_frame_bytes")?;
            let max_lines = r.u32("max_lines")?;
            let max_in_flight = r.u32("max_in_flight")?;
            let max_batch = r.u32("max_batch")?;
            let features = r.u32("features")?;
            let server = r.str("server", SERVER_NAME_LIMIT)?.to_owned();
            Response::HelloOk(ServerInfo {
                version,
                role,
                partitions,
                max_frame_bytes,
                max_lines,
                max_in_flight,
                max_batch,
                features,
                server,
            })
        }
        Opcode::Ping | Opcode::Confirm | Opcode::Release | Opcode::PayBalance | Opcode::Ship => Response::Done,
        Opcode::Reserve => Response::Reserved(decode_reserved(&mut r)?),
        Opcode::ReserveBatch => {
            let count = r.count("batch", MAX_BATCH as usize)?;
            let mut items = Vec::new();
            for _ in 0..count {
                match r.u8("batch outcome")? {
                    BATCH_RESERVED => items.push(BatchItem::Reserved(decode_reserved(&mut r)?)),
                    BATCH_REFUSED => items.push(BatchItem::Refused(WireError::decode(&mut r)?)),
                    value => return Err(DecodeError::InvalidTag { field: "batch outcome", value }),
                }
            }
            Response::Batch(items)
        }
        Opcode::GetStock => {
            let sku_id = r.u32("sku_id")?;
            let on_hand = r.u64("on_hand")?;
            let reserved = r.u64("reserved")?;
            let pooled = r.u64("pooled")?;
            let unavailable = r.u64("unavailable")?;
            let available = r.u64("available")?;
            let incoming = r.u64("incoming")?;
            let sku = decode_code(&mut r, "sku")?;
            let kit_count = r.count("kit", usize::from(u16::MAX))?;
            let mut kit = Vec::new();
            for _ in 0..kit_count {
                let qty = r.u32("kit qty")?;
                let sku_id = r.u32("kit sku_id")?;
                let sku = decode_code(&mut r, "kit sku")?;
                kit.push(KitComponent { qty, sku_id, sku });
            }
            let warehouse_count = r.count("warehouses", usize::from(u16::MAX))?;
            let mut warehouses = Vec::new();
            for _ in 0..warehouse_count {
                warehouses.push(WarehouseStock {
                    warehouse_id: r.u16("warehouse_id")?,
                    on_hand: r.u64("warehouse on_hand")?,
                    reserved: r.u64("warehouse reserved")?,
                    pooled: r.u64("warehouse pooled")?,
                    safety: r.u64("warehouse safety")?,
                    damaged: r.u64("warehouse damaged")?,
                    quality_control: r.u64("warehouse quality_control")?,
                    available: r.u64("warehouse available")?,
                    warehouse: decode_code(&mut r, "warehouse")?,
                });
            }
            Response::Stock(StockView {
                sku_id,
                on_hand,
                reserved,
                pooled,
                unavailable,
                available,
                incoming,
                sku,
                kit,
                warehouses,
            })
        }
        Opcode::GetReservation => {
            let id = r.u64("id")?;
            let customer = r.u64("customer")?;
            let created_at_ms = r.u64("created_at_ms")?;
            let expires_at_ms = r.u64("expires_at_ms")?;
            let promise_ms = r.opt_u64("promise_ms")?;
            let campaign = r.opt_u32("campaign")?;
            let presale_outstanding = r.u32("presale_outstanding")?;
            let channel = r.u16("channel")?;
            let status = decode_status(&mut r)?;
            let allocations = decode_allocations(&mut r)?;
            let part_count = r.count("parts", usize::from(u16::MAX))?;
            let mut parts = Vec::new();
            for _ in 0..part_count {
                let partition = r.u32("part partition")?;
                let status = decode_status(&mut r)?;
                let allocations = decode_allocations(&mut r)?;
                parts.push(ReservationPart { partition, status, allocations });
            }
            Response::Reservation(ReservationView {
                id,
                customer,
                created_at_ms,
                expires_at_ms,
                promise_ms,
                campaign,
                presale_outstanding,
                channel,
                status,
                allocations,
                parts,
            })
        }
        Opcode::Subscribe => match r.u8("stream kind")? {
            STREAM_LOG_RECORDS => {
                let partition = r.u32("partition")?;
                let durable_lsn = r.u64("durable_lsn")?;
                let count = r.u32("records")?;
                let mut records = Vec::new();
                for _ in 0..count {
                    let lsn = r.u64("record lsn")?;
                    let record_type = r.u8("record type")?;
                    let payload = r.bytes("record payload", usize::MAX)?.to_vec();
                    records.push(LogRecord { lsn, record_type, payload });
                }
                Response::LogRecords(LogRecords { partition, durable_lsn, records })
            }
            STREAM_SNAPSHOT => {
                let partition = r.u32("partition")?;
                let lsn = r.u64("lsn")?;
                let offset = r.u64("offset")?;
                let total = r.u64("total")?;
                let data = r.bytes("data", usize::MAX)?.to_vec();
                Response::Snapshot(SnapshotChunk { partition, lsn, offset, total, data })
            }
            value => return Err(DecodeError::InvalidTag { field: "stream kind", value }),
        },
        Opcode::ReplicaAck => return Err(DecodeError::NotAResponse(header.opcode)),
        json => {
            debug_assert_eq!(json.body(), BodyKind::Json);
            let text = std::str::from_utf8(r.rest()).map_err(|_| DecodeError::InvalidUtf8 { field: "JSON body" })?;
            return Ok(Response::Json(text.to_owned()));
        }
    };
    r.finish()?;
    Ok(response)
}
