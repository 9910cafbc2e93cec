//! Runs the conformance vectors of `protocol/vectors/` (format: protocol/vectors/README.md) byte
//! for byte: each vector's meaning is built into a message and encoded, which must give exactly
//! the vector's frame; the frame is decoded, which must give exactly the meaning. Malformed frames
//! must be refused with the vector's error code.
//!
//! `OMS_WRITE_VECTORS=1 cargo test -p oms-proto --test vectors` fills in the `frame` of every
//! valid vector from its meaning (after a meaning is edited or added by hand), and then checks.

use std::path::{Path, PathBuf};

use oms_proto::*;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/vectors")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit")).collect()
}

fn field<'v>(v: &'v Value, name: &str) -> &'v Value {
    v.get(name).unwrap_or_else(|| panic!("meaning lacks {name}: {v}"))
}

/// 64-bit fields are decimal strings in the vectors.
fn u64_of(v: &Value, name: &str) -> u64 {
    let text = field(v, name).as_str().unwrap_or_else(|| panic!("{name} must be a decimal string"));
    text.parse().unwrap_or_else(|_| panic!("{name}: {text:?} is not a u64"))
}

fn opt_u64_of(v: &Value, name: &str) -> Option<u64> {
    if field(v, name).is_null() {
        None
    } else {
        Some(u64_of(v, name))
    }
}

fn num(v: &Value, name: &str) -> u64 {
    field(v, name).as_u64().unwrap_or_else(|| panic!("{name} must be a JSON integer"))
}

fn opt_u32_of(v: &Value, name: &str) -> Option<u32> {
    let f = field(v, name);
    if f.is_null() {
        None
    } else {
        Some(f.as_u64().expect("integer") as u32)
    }
}

fn text<'v>(v: &'v Value, name: &str) -> &'v str {
    field(v, name).as_str().unwrap_or_else(|| panic!("{name} must be a string"))
}

fn code(v: &Value, name: &str) -> Code {
    Code::new(text(v, name)).expect("code <= 64 bytes")
}

fn opt_code(v: &Value, name: &str) -> Option<Box<str>> {
    let f = field(v, name);
    if f.is_null() {
        None
    } else {
        Some(code(v, name).as_str().into())
    }
}

// ----- requests -----

enum OwnedSku {
    Code(String),
    Id(u32),
}

impl OwnedSku {
    fn from_meaning(v: &Value) -> OwnedSku {
        if let Some(c) = v.get("code") {
            OwnedSku::Code(c.as_str().expect("code string").to_owned())
        } else {
            OwnedSku::Id(num(v, "id") as u32)
        }
    }

    fn get(&self) -> SkuRef<'_> {
        match self {
            OwnedSku::Code(c) => SkuRef::Code(c),
            OwnedSku::Id(id) => SkuRef::Id(*id),
        }
    }
}

struct OwnedReserve {
    ttl_ms: u64,
    customer: u64,
    channel: u16,
    campaign: Option<u32>,
    key: String,
    lines: Vec<(u32, OwnedSku)>,
}

impl OwnedReserve {
    fn from_meaning(v: &Value) -> OwnedReserve {
        OwnedReserve {
            ttl_ms: u64_of(v, "ttl_ms"),
            customer: u64_of(v, "customer"),
            channel: num(v, "channel") as u16,
            campaign: opt_u32_of(v, "campaign"),
            key: text(v, "idempotency_key").to_owned(),
            lines: field(v, "lines")
                .as_array()
                .expect("lines array")
                .iter()
                .map(|l| (num(l, "qty") as u32, OwnedSku::from_meaning(field(l, "sku"))))
                .collect(),
        }
    }

    fn lines(&self) -> Vec<Line<'_>> {
        self.lines.iter().map(|(qty, sku)| Line { qty: *qty, sku: sku.get() }).collect()
    }

    fn get<'a>(&'a self, lines: &'a [Line<'a>]) -> Reserve<'a> {
        Reserve {
            ttl_ms: self.ttl_ms,
            customer: self.customer,
            channel: self.channel,
            campaign: self.campaign,
            idempotency_key: &self.key,
            lines: Lines::Slice(lines),
        }
    }
}

/// Build the request of a vector and hand it (borrowed) to `f`.
fn with_request<T>(opcode: Opcode, layout: &str, m: &Value, f: impl FnOnce(&Request<'_>) -> T) -> T {
    match layout {
        "hello" => {
            let magic: [u8; 4] = text(m, "magic").as_bytes().try_into().expect("4-byte magic");
            let hello = Hello {
                magic,
                version: num(m, "version") as u16,
                features: num(m, "features") as u32,
                api_key: text(m, "api_key"),
                client: text(m, "client"),
            };
            f(&Request::Hello(hello))
        }
        "empty" => {
            assert_eq!(opcode, Opcode::Ping, "only ping has an empty request");
            f(&Request::Ping)
        }
        "reserve" => {
            let owned = OwnedReserve::from_meaning(m);
            let lines = owned.lines();
            f(&Request::Reserve(owned.get(&lines)))
        }
        "reserve_batch" => {
            let owned: Vec<OwnedReserve> =
                field(m, "reservations").as_array().expect("array").iter().map(OwnedReserve::from_meaning).collect();
            let lines: Vec<Vec<Line<'_>>> = owned.iter().map(|r| r.lines()).collect();
            let reserves: Vec<Reserve<'_>> = owned.iter().zip(&lines).map(|(r, l)| r.get(l)).collect();
            f(&Request::ReserveBatch(Batch::Slice(&reserves)))
        }
        "reservation_id" => {
            let id = u64_of(m, "id");
            let request = match opcode {
                Opcode::Confirm => Request::Confirm { id },
                Opcode::Release => Request::Release { id },
                Opcode::PayBalance => Request::PayBalance { id },
                Opcode::Ship => Request::Ship { id },
                Opcode::GetReservation => Request::GetReservation { id },
                other => panic!("reservation_id layout on {other}"),
            };
            f(&request)
        }
        "stock_query" => {
            let sku = OwnedSku::from_meaning(field(m, "sku"));
            f(&Request::GetStock { sku: sku.get() })
        }
        "subscribe" => f(&Request::Subscribe(Subscribe {
            from_lsn: u64_of(m, "from_lsn"),
            partition: opt_u32_of(m, "partition"),
            bootstrap: field(m, "bootstrap").as_bool().expect("bool"),
        })),
        "replica_ack" => {
            f(&Request::ReplicaAck { partition: num(m, "partition") as u32, durable_lsn: u64_of(m, "durable_lsn") })
        }
        "json" => {
            let body = serde_json::to_string(field(m, "body")).expect("serializes");
            f(&Request::Json { opcode, body: &body })
        }
        other => panic!("unknown request layout {other}"),
    }
}

// ----- responses -----

fn allocations(v: &Value) -> Vec<Allocation> {
    v.as_array()
        .expect("allocations array")
        .iter()
        .map(|a| Allocation {
            sku_id: num(a, "sku_id") as u32,
            warehouse_id: num(a, "warehouse_id") as u16,
            qty: num(a, "qty") as u32,
            sku: code(a, "sku"),
            warehouse: code(a, "warehouse"),
        })
        .collect()
}

fn reserved(m: &Value) -> Reserved {
    Reserved {
        id: u64_of(m, "id"),
        expires_at_ms: u64_of(m, "expires_at_ms"),
        promise_ms: opt_u64_of(m, "promise_ms"),
        replayed: field(m, "replayed").as_bool().expect("bool"),
        allocations: allocations(field(m, "allocations")),
    }
}

fn wire_error(m: &Value) -> WireError {
    WireError {
        code: ErrorCode(num(m, "code") as u16),
        name: text(m, "name").to_owned().into(),
        message: text(m, "message").to_owned(),
        available: opt_u64_of(m, "available"),
        sku_id: opt_u32_of(m, "sku_id"),
        sku: opt_code(m, "sku"),
        warehouse: opt_code(m, "warehouse"),
    }
}

fn status(v: &Value, name: &str) -> ReservationStatus {
    ReservationStatus::from_name(text(v, name)).unwrap_or_else(|| panic!("unknown status {}", v[name]))
}

fn response_of(layout: &str, m: &Value) -> Response {
    match layout {
        "hello_ok" => Response::HelloOk(ServerInfo {
            version: num(m, "version") as u16,
            role: text(m, "role").parse().expect("role"),
            partitions: num(m, "partitions") as u32,
            max_frame_bytes: num(m, "max_frame_bytes") as u32,
            max_lines: num(m, "max_lines") as u32,
            max_in_flight: num(m, "max_in_flight") as u32,
            max_batch: num(m, "max_batch") as u32,
            features: num(m, "features") as u32,
            server: text(m, "server").to_owned(),
        }),
        "empty" => Response::Done,
        "reserved" => Response::Reserved(reserved(m)),
        "batch_result" => Response::Batch(
            field(m, "items")
                .as_array()
                .expect("items")
                .iter()
                .map(|item| match (item.get("reserved"), item.get("refused")) {
                    (Some(r), None) => BatchItem::Reserved(reserved(r)),
                    (None, Some(e)) => BatchItem::Refused(wire_error(e)),
                    _ => panic!("a batch item is reserved or refused: {item}"),
                })
                .collect(),
        ),
        "stock" => Response::Stock(StockView {
            sku_id: num(m, "sku_id") as u32,
            on_hand: u64_of(m, "on_hand"),
            reserved: u64_of(m, "reserved"),
            pooled: u64_of(m, "pooled"),
            unavailable: u64_of(m, "unavailable"),
            available: u64_of(m, "available"),
            incoming: u64_of(m, "incoming"),
            sku: code(m, "sku"),
            kit: field(m, "kit")
                .as_array()
                .expect("kit")
                .iter()
                .map(|c| KitComponent {
                    qty: num(c, "qty") as u32,
                    sku_id: num(c, "sku_id") as u32,
                    sku: code(c, "sku"),
                })
                .collect(),
            warehouses: field(m, "warehouses")
                .as_array()
                .expect("warehouses")
                .iter()
                .map(|w| WarehouseStock {
                    warehouse_id: num(w, "warehouse_id") as u16,
                    on_hand: u64_of(w, "on_hand"),
                    reserved: u64_of(w, "reserved"),
                    pooled: u64_of(w, "pooled"),
                    safety: u64_of(w, "safety"),
                    damaged: u64_of(w, "damaged"),
                    quality_control: u64_of(w, "quality_control"),
                    available: u64_of(w, "available"),
                    warehouse: code(w, "warehouse"),
                })
                .collect(),
        }),
        "reservation" => Response::Reservation(ReservationView {
            id: u64_of(m, "id"),
            customer: u64_of(m, "customer"),
            created_at_ms: u64_of(m, "created_at_ms"),
            expires_at_ms: u64_of(m, "expires_at_ms"),
            promise_ms: opt_u64_of(m, "promise_ms"),
            campaign: opt_u32_of(m, "campaign"),
            presale_outstanding: num(m, "presale_outstanding") as u32,
            channel: num(m, "channel") as u16,
            status: status(m, "status"),
            allocations: allocations(field(m, "allocations")),
            parts: field(m, "parts")
                .as_array()
                .expect("parts")
                .iter()
                .map(|p| ReservationPart {
                    partition: num(p, "partition") as u32,
                    status: status(p, "status"),
                    allocations: allocations(field(p, "allocations")),
                })
                .collect(),
        }),
        "error" => Response::Error(wire_error(m)),
        "log_records" => Response::LogRecords(LogRecords {
            partition: num(m, "partition") as u32,
            durable_lsn: u64_of(m, "durable_lsn"),
            records: field(m, "records")
                .as_array()
                .expect("records")
                .iter()
                .map(|r| LogRecord {
                    lsn: u64_of(r, "lsn"),
                    record_type: num(r, "record_type") as u8,
                    payload: unhex(text(r, "payload")),
                })
                .collect(),
        }),
        "snapshot_chunk" => Response::Snapshot(SnapshotChunk {
            partition: num(m, "partition") as u32,
            lsn: u64_of(m, "lsn"),
            offset: u64_of(m, "offset"),
            total: u64_of(m, "total"),
            data: unhex(text(m, "data")),
        }),
        "json" => Response::Json(serde_json::to_string(field(m, "body")).expect("serializes")),
        other => panic!("unknown response layout {other}"),
    }
}

/// Encode one vector's meaning; check the decode direction against `frame` (the stored hex, or
/// the fresh encoding when writing). Returns the encoding.
fn run_vector(v: &Value, stored: Option<&str>) -> String {
    let name = text(v, "name");
    let direction = text(v, "direction");
    let opcode_number = num(v, "opcode") as u16;
    let flags = num(v, "flags") as u16;
    let request_id = u64_of(v, "request_id");
    let layout = text(v, "layout");
    let meaning = field(v, "meaning");
    let json = layout == "json";

    let mut encoded = Vec::new();
    match direction {
        "request" => {
            let opcode = Opcode::from_u16(opcode_number).expect("known opcode");
            with_request(opcode, layout, meaning, |r| r.encode(request_id, &mut encoded).expect("encodes"));
        }
        "response" => {
            let response = response_of(layout, meaning);
            response.encode(opcode_number, request_id, &mut encoded).expect("encodes");
        }
        other => panic!("{name}: direction {other}"),
    }
    let frame = unhex(stored.unwrap_or(&hex(&encoded)));
    if !json {
        assert_eq!(hex(&encoded), hex(&frame), "{name}: encoding differs from the vector");
    }

    let span = peek_frame(&frame, MAX_RESPONSE_FRAME_BYTES).expect("frame").expect("whole frame");
    assert_eq!(span.total, frame.len(), "{name}: one frame, nothing after it");
    assert_eq!(
        (span.header.opcode, span.header.flags, span.header.request_id),
        (opcode_number, flags, request_id),
        "{name}: header"
    );
    let payload = span.payload(&frame);
    if json {
        // JSON bodies are compared as values: key order and spacing may differ between encoders.
        let text = std::str::from_utf8(payload).expect("UTF-8 body");
        let value: Value = serde_json::from_str(text).expect("JSON body");
        assert_eq!(&value, field(meaning, "body"), "{name}: body differs");
        if direction == "request" {
            let opcode = Opcode::from_u16(opcode_number).expect("known opcode");
            let typed = JsonRequest::parse(opcode, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(typed.opcode(), opcode);
        }
        return hex(&encoded);
    }
    match direction {
        "request" => {
            let limits = Limits { max_frame_bytes: MAX_RESPONSE_FRAME_BYTES, ..Limits::default() };
            let decoded = decode_request(&span.header, payload, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
            let opcode = Opcode::from_u16(opcode_number).expect("known opcode");
            with_request(opcode, layout, meaning, |expected| assert_eq!(&decoded, expected, "{name}: decoded differs"));
        }
        _ => {
            let decoded = decode_response(&span.header, payload).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(decoded, response_of(layout, meaning), "{name}: decoded differs");
        }
    }
    hex(&encoded)
}

fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("protocol/vectors exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Replace the `"frame": "..."` lines of a vector file in order, keeping its formatting.
fn write_frames(path: &Path, frames: &[String]) {
    let text = std::fs::read_to_string(path).expect("readable");
    let mut next = frames.iter();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if let Some(at) = line.find("\"frame\": \"") {
            let frame = next.next().expect("one frame per vector");
            let end = if line.trim_end().ends_with(',') { "\",\n" } else { "\"\n" };
            out.push_str(&line[..at]);
            out.push_str("\"frame\": \"");
            out.push_str(frame);
            out.push_str(end);
        } else {
            out.push_str(line);
        }
    }
    assert!(next.next().is_none(), "every frame written");
    std::fs::write(path, out).expect("writable");
}

#[test]
fn valid_vectors_encode_and_decode_byte_for_byte() {
    let write = std::env::var_os("OMS_WRITE_VECTORS").is_some();
    let mut count = 0;
    let mut opcodes_with_request = std::collections::BTreeSet::new();
    let mut opcodes_with_response = std::collections::BTreeSet::new();
    for path in vector_files() {
        if path.file_name().is_some_and(|n| n == "malformed.json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        let vectors = field(&doc, "vectors").as_array().expect("vectors array");
        let mut frames = Vec::new();
        for v in vectors {
            let stored = text(v, "frame");
            let stored = (!write && !stored.is_empty()).then_some(stored);
            assert!(write || stored.is_some(), "{}: no frame; run with OMS_WRITE_VECTORS=1", text(v, "name"));
            frames.push(run_vector(v, stored));
            count += 1;
            let opcode = num(v, "opcode") as u16;
            match text(v, "direction") {
                "request" => opcodes_with_request.insert(opcode),
                _ => opcodes_with_response.insert(opcode),
            };
        }
        if write {
            write_frames(&path, &frames);
        }
    }
    assert!(count > 100, "only {count} vectors");
    for op in Opcode::ALL {
        let n = *op as u16;
        assert!(opcodes_with_request.contains(&n), "no request vector for {op}");
        if *op != Opcode::ReplicaAck {
            assert!(opcodes_with_response.contains(&n), "no response vector for {op}");
        }
    }
}

#[test]
fn malformed_vectors_get_their_errors() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_dir().join("malformed.json")).expect("readable"))
            .expect("JSON");
    let l = field(&doc, "limits");
    let limits = Limits {
        max_frame_bytes: num(l, "max_frame_bytes") as u32,
        max_lines: num(l, "max_lines") as u32,
        max_batch: num(l, "max_batch") as u32,
    };
    for v in field(&doc, "vectors").as_array().expect("vectors") {
        let name = text(v, "name");
        let frame = unhex(text(v, "frame"));
        let expected = ErrorCode(num(field(v, "error"), "code") as u16);
        assert_eq!(expected.name(), Some(text(field(v, "error"), "name")), "{name}: code and name agree");
        let got = match text(v, "stage") {
            "frame" => peek_frame(&frame, limits.max_frame_bytes).expect_err("refused").code(),
            stage => {
                let span = peek_frame(&frame, limits.max_frame_bytes).expect("frame").expect("whole frame");
                assert_eq!(span.total, frame.len(), "{name}: one frame");
                match decode_request(&span.header, span.payload(&frame), &limits) {
                    Err(e) => e.code(),
                    Ok(Request::Hello(hello)) => {
                        assert_eq!(stage, "handshake", "{name}");
                        hello.check().expect_err("hello refused").0
                    }
                    Ok(Request::Json { opcode, body }) => JsonRequest::parse(opcode, body).expect_err("refused").code(),
                    Ok(other) => panic!("{name}: decoded as {other:?}"),
                }
            }
        };
        assert_eq!(got, expected, "{name}");
    }
}
