//! Fuzz target bodies, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the plain
//! CI test `gateway/tests/fuzz_corpus.rs` (which includes this file with `#[path]`). Each body
//! takes arbitrary bytes and must never panic, hang or allocate by an untrusted length; where a
//! decode succeeds it checks a "pair" assertion (re-encode and decode again to the same value).
//!
//! Only `oms-proto`, `oms-engine`, `oms-wal`, `bytes` and `rkyv` are used, so the file compiles
//! in both crates.

#![allow(dead_code)]

use bytes::{Buf, BytesMut};
use oms_engine::codec::{decode_envelope, decode_image, encode_envelope, encode_image};
use oms_engine::{Limits, Partition};
use oms_proto::{decode_request, decode_response, peek_frame, FrameHeader, JsonRequest, Request};
use oms_wal::record;
use oms_wal::snapshot::{decode_snapshot, encode_snapshot};

/// Frame bound used by the frame target (small, so the fuzzer reaches the limit).
pub const FUZZ_MAX_FRAME_BYTES: u32 = 4096;
/// SKU ids above this are skipped by the replay target (see `engine_replay`).
pub const FUZZ_SKU_ID_LIMIT: u32 = 1 << 20;
/// Record bound used by the log target.
pub const FUZZ_MAX_RECORD_BYTES: u32 = 1 << 16;

/// A fuzz target's name and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name, for the CI test and the corpus writer.
pub const TARGETS: [Target; 6] = [
    ("protocol_frames", protocol_frames),
    ("request_payload", request_payload),
    ("wal_record", wal_record),
    ("engine_replay", engine_replay),
    ("snapshot_load", snapshot_load),
    ("order_intake", order_intake),
];

/// Limits of the protocol targets (small frames, so the fuzzer reaches the bounds).
fn fuzz_limits() -> oms_proto::Limits {
    oms_proto::Limits { max_frame_bytes: FUZZ_MAX_FRAME_BYTES, max_lines: 64, max_batch: 1024 }
}

/// The connection's read path (protocol v2): bytes arrive in chunks (size from the first byte),
/// each complete frame is decoded in place from the read buffer as the server does, then dropped
/// from it. A framing error ends the "connection" like the server does. The buffer never holds
/// more than one maximal frame plus one chunk.
pub fn protocol_frames(data: &[u8]) {
    let limits = fuzz_limits();
    let step = 1 + usize::from(data.first().copied().unwrap_or(0) % 64);
    let mut buffer = BytesMut::new();
    for chunk in data.get(1..).unwrap_or_default().chunks(step) {
        buffer.extend_from_slice(chunk);
        loop {
            match peek_frame(&buffer, limits.max_frame_bytes) {
                Ok(Some(span)) => {
                    assert!(span.total <= FUZZ_MAX_FRAME_BYTES as usize, "frame above the limit accepted");
                    if let Ok(request) = decode_request(&span.header, span.payload(&buffer), &limits) {
                        round_trip_request(&request, span.header.request_id);
                    }
                    buffer.advance(span.total);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buffer.len() < FUZZ_MAX_FRAME_BYTES as usize + step, "decoder buffered {} bytes", buffer.len());
    }
}

/// A request or response payload on its own. The first two bytes pick the opcode (LE), the third
/// the flags (bit 0: an error body, for the response decoder); the rest is the payload. Whatever
/// decodes is re-encoded and decoded again to the same value (pair assertion).
pub fn request_payload(data: &[u8]) {
    let (head, payload) = data.split_at(data.len().min(3));
    let opcode = u16::from_le_bytes([head.first().copied().unwrap_or(0), head.get(1).copied().unwrap_or(0)]);
    let flags = u16::from(head.get(2).copied().unwrap_or(0) & 1);
    let limits = fuzz_limits();
    let request_header = FrameHeader { opcode, flags: 0, request_id: 7 };
    if let Ok(request) = decode_request(&request_header, payload, &limits) {
        let _ = request.opcode();
        round_trip_request(&request, 7);
    }
    let response_header = FrameHeader { opcode, flags, request_id: 7 };
    if let Ok(response) = decode_response(&response_header, payload) {
        let mut bytes = Vec::new();
        response.encode(opcode, 7, &mut bytes).expect("a decoded response re-encodes");
        let span = peek_frame(&bytes, u32::MAX).expect("frame").expect("whole frame");
        let again = decode_response(&span.header, span.payload(&bytes)).expect("a re-encoded response decodes");
        assert_eq!(again, response);
    }
}

fn round_trip_request(request: &Request<'_>, request_id: u64) {
    let mut bytes = Vec::new();
    request.encode(request_id, &mut bytes).expect("a decoded request re-encodes");
    let span = peek_frame(&bytes, u32::MAX).expect("frame").expect("whole frame");
    let limits = oms_proto::Limits { max_frame_bytes: u32::MAX, ..fuzz_limits() };
    let again = decode_request(&span.header, span.payload(&bytes), &limits).expect("a re-encoded request decodes");
    assert_eq!(&again, request);
    if let Request::Json { opcode, body } = request {
        if let Ok(json) = JsonRequest::parse(*opcode, body) {
            let text = json.body().expect("a parsed body re-serializes");
            assert_eq!(JsonRequest::parse(*opcode, &text), Ok(json), "a JSON body survives a round trip");
        }
    }
}

/// The log's record decoder over a segment-like buffer, walked like recovery's scan (on a bad
/// record, step 8 bytes). Any record that decodes is re-encoded to the same bytes; its payload
/// is then decoded as an engine command. Also: the bytes, used as a payload, survive
/// encode -> decode (pair assertion).
pub fn wal_record(data: &[u8]) {
    let mut offset = 0;
    let mut steps = 0;
    while offset < data.len() && steps < 10_000 {
        steps += 1;
        match record::decode_any(&data[offset..], FUZZ_MAX_RECORD_BYTES) {
            Ok(r) => {
                assert!(r.total_len >= 24 && r.total_len % 8 == 0, "record length {}", r.total_len);
                assert!(offset + r.total_len <= data.len(), "record runs past the buffer");
                assert!(record::decode(&data[offset..], r.lsn, FUZZ_MAX_RECORD_BYTES).is_ok());
                let wrong = r.lsn.wrapping_add(1);
                assert!(record::decode(&data[offset..], wrong, FUZZ_MAX_RECORD_BYTES).is_err());
                let mut again = Vec::new();
                record::encode_into(&mut again, r.lsn, r.record_type, r.ack_gap, r.payload);
                // Bytes 17..20 (flags, reserved) are not checked to be zero by the decoder (a
                // finding noted in docs/RELIABILITY.md), so the CRC over them differs too;
                // everything else must re-encode exactly.
                let header = &data[offset..offset + 24];
                let fields = |h: &[u8]| (h[..4].to_vec(), h[8..17].to_vec(), h[20..24].to_vec());
                assert_eq!(fields(&again[..24]), fields(header), "header does not re-encode");
                if header[17..20] == [0, 0, 0] {
                    assert_eq!(&again[..24], header, "a canonical header does not re-encode byte for byte");
                }
                let _ = decode_envelope(r.payload);
                offset += r.total_len;
            }
            Err(_) => offset += 8,
        }
    }
    if data.len() <= FUZZ_MAX_RECORD_BYTES as usize {
        let lsn = 1 + u64::from(data.first().copied().unwrap_or(0));
        let mut encoded = Vec::new();
        record::encode_into(&mut encoded, lsn, 1, 0, data);
        let r = record::decode(&encoded, lsn, FUZZ_MAX_RECORD_BYTES).expect("a fresh record decodes");
        assert_eq!(r.payload, data);
        // Any single flipped bit is detected.
        let bit = data.len() * 8 % (encoded.len() * 8);
        encoded[bit / 8] ^= 1 << (bit % 8);
        assert!(record::decode(&encoded, lsn, FUZZ_MAX_RECORD_BYTES).map(|r| r.payload != data).unwrap_or(true));
    }
}

/// Replay: the input is a sequence of `[len: u16 LE][payload]` log payloads, as recovery would
/// find them after the CRC check. Each one that decodes as an `Envelope` is applied to a fresh
/// partition (0 of 2). Refusals are fine; a panic (an engine assertion) is a bug, and the
/// partition must pass its own consistency check at the end, and its snapshot image must
/// round-trip.
pub fn engine_replay(data: &[u8]) {
    let mut partition = Partition::new(0, 2, Limits::default());
    let mut events = Vec::new();
    let mut rest = data;
    let mut applied = 0;
    while rest.len() >= 2 && applied < 256 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let payload = &rest[..len.min(rest.len())];
        rest = &rest[payload.len()..];
        if let Ok(envelope) = decode_envelope(payload) {
            // The engine refuses ids from `oms_engine::SKU_ID_LIMIT` (2^24) on, but a dense table
            // of up to that size still takes hundreds of megabytes: too slow per fuzz input.
            if let oms_engine::Command::DefineSku { id, .. } | oms_engine::Command::DefineKit { id, .. } =
                &envelope.command
            {
                if id.0 >= FUZZ_SKU_ID_LIMIT {
                    continue;
                }
            }
            let bytes = encode_envelope(&envelope).expect("re-encode envelope");
            assert_eq!(decode_envelope(&bytes).expect("re-decode envelope"), envelope);
            events.clear();
            let _ = partition.apply(&envelope, &mut events);
            applied += 1;
        }
    }
    let report = partition.check();
    assert!(report.is_clean(), "replayed commands broke the partition: {report:?}");
    if applied > 0 {
        let image = partition.image();
        let bytes = encode_image(&image).expect("encode image");
        let decoded = decode_image(&bytes).expect("decode image");
        let restored = Partition::from_image(decoded, Limits::default()).expect("a partition's own image loads");
        assert_eq!(restored.image(), image, "snapshot image does not round-trip");
    }
}

/// The snapshot loader: the file decoder on the raw bytes, then (past the checksums, as a file
/// written by a buggy or foreign build would be) the image decoder and `Partition::from_image`
/// exactly as recovery calls them, then the consistency check.
pub fn snapshot_load(data: &[u8]) {
    if let Ok((_lsn, payload)) = decode_snapshot(data) {
        load_image(payload);
    }
    let file = encode_snapshot(7, data);
    let (lsn, payload) = decode_snapshot(&file).expect("a fresh snapshot file decodes");
    assert_eq!((lsn, payload), (7, data));
    load_image(data);
}

fn load_image(payload: &[u8]) {
    if let Ok(image) = decode_image(payload) {
        if let Ok(partition) = Partition::from_image(image, Limits::default()) {
            let _ = partition.check();
        }
    }
}

/// The channel order adapters: the first byte picks the channel (Taobao, JD, Douyin, native),
/// the rest is the payload text. Parsing must refuse, never panic; a parsed order resolves its
/// SKU codes through a lookup that knows every code (and one that knows none).
pub fn order_intake(data: &[u8]) {
    use oms_engine::orders::intake;
    use oms_engine::orders::model::SalesChannel;
    let Some((&selector, rest)) = data.split_first() else { return };
    let channel =
        [SalesChannel::Taobao, SalesChannel::Jd, SalesChannel::Douyin, SalesChannel::Native][usize::from(selector % 4)];
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = intake::parse_yuan(text);
    if let Ok(orders) = intake::parse(channel, text) {
        for order in orders.into_iter().flatten() {
            let _ = order.order_id();
            let _ = order.resolve(|code| Some(oms_engine::SkuId(code.len() as u32)));
            let _ = order.resolve(|_| None);
        }
    }
}

/// Valid encodings for each target's seed corpus.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use oms_engine::command::{KitComponent, PartInfo};
    use oms_engine::{
        ChannelId, Command, CustomerId, Envelope, Line, ReservationId, ReserveRequest, SkuId, WarehouseId,
    };
    use oms_proto::{
        Allocation, Batch, Code, ErrorCode, Hello, Line as WireLine, Reserve, Reserved, Response, SkuRef, Subscribe,
        WireError,
    };

    let lines = [WireLine::code("TSHIRT-RED-XL", 2), WireLine::id(3, 1)];
    let reserve = Reserve::new(&lines, 900_000).key("k1").customer(9).channel(1);
    let carts = [reserve, reserve.campaign(Some(7))];
    let requests = vec![
        Request::Hello(Hello::new("key", "fuzz")),
        Request::Ping,
        Request::Reserve(reserve),
        Request::ReserveBatch(Batch::Slice(&carts)),
        Request::Confirm { id: 1 << 48 | 5 },
        Request::GetStock { sku: SkuRef::Code("MUG-WHT") },
        Request::GetReservation { id: 1 << 48 | 5 },
        Request::Subscribe(Subscribe { from_lsn: 3, partition: Some(1), bootstrap: true }),
        Request::ReplicaAck { partition: 0, durable_lsn: 9 },
        Request::Json { opcode: oms_proto::Opcode::LookupSkus, body: r#"{"codes":["A","B"]}"# },
        Request::Json { opcode: oms_proto::Opcode::Audit, body: "{}" },
        Request::Json { opcode: oms_proto::Opcode::DefineSku, body: r#"{"code":"MUG-WHT","low_stock_threshold":5}"# },
        Request::Json {
            opcode: oms_proto::Opcode::StockOp,
            body: r#"{"op":"set_on_hand","sku":"MUG-WHT","warehouse":"SH","on_hand":"60"}"#,
        },
    ];
    let mut refusal = WireError::new(ErrorCode::INSUFFICIENT_STOCK, "insufficient stock for SKU MUG-WHT");
    refusal.available = Some(1);
    refusal.sku_id = Some(2);
    refusal.sku = Some("MUG-WHT".into());
    let reserved = Reserved {
        id: 1 << 48 | 5,
        expires_at_ms: 1_000,
        promise_ms: None,
        replayed: false,
        allocations: vec![Allocation {
            sku_id: 2,
            warehouse_id: 1,
            qty: 1,
            sku: Code::truncated("MUG-WHT"),
            warehouse: Code::truncated("SH"),
        }],
    };
    let responses = vec![
        (oms_proto::Opcode::Ping, Response::Done),
        (oms_proto::Opcode::Reserve, Response::Reserved(reserved.clone())),
        (oms_proto::Opcode::Reserve, Response::Error(refusal.clone())),
        (
            oms_proto::Opcode::ReserveBatch,
            Response::Batch(vec![oms_proto::BatchItem::Reserved(reserved), oms_proto::BatchItem::Refused(refusal)]),
        ),
        (oms_proto::Opcode::Audit, Response::Json("{\"clean\":true}".into())),
    ];
    let mut out = Vec::new();
    let mut stream = BytesMut::new();
    stream.extend_from_slice(&[7]);
    for (i, r) in requests.iter().enumerate() {
        let mut frame = Vec::new();
        r.encode(i as u64, &mut frame).expect("encode");
        let opcode = (r.opcode() as u16).to_le_bytes();
        let mut payload = vec![opcode[0], opcode[1], 0];
        payload.extend_from_slice(&frame[16..]);
        out.push(("request_payload", payload));
        let mut one = vec![(i * 13) as u8];
        one.extend_from_slice(&frame);
        out.push(("protocol_frames", one));
        stream.extend_from_slice(&frame);
    }
    out.push(("protocol_frames", stream.to_vec()));
    for (opcode, r) in &responses {
        let mut frame = Vec::new();
        r.encode(*opcode as u16, 1, &mut frame).expect("encode");
        let op = (*opcode as u16).to_le_bytes();
        let mut payload = vec![op[0], op[1], u8::from(matches!(r, Response::Error(_)))];
        payload.extend_from_slice(&frame[16..]);
        out.push(("request_payload", payload));
    }

    let envelopes = vec![
        Envelope {
            now_ms: 1_000,
            command: Command::DefineWarehouse {
                id: WarehouseId(1),
                code: "SH".into(),
                region: "east".into(),
                priority: 0,
            },
        },
        Envelope {
            now_ms: 1_001,
            command: Command::DefineSku { id: SkuId(2), code: "MUG".into(), low_stock_threshold: 3 },
        },
        Envelope {
            now_ms: 1_001,
            command: Command::DefineSku { id: SkuId(4), code: "CAP".into(), low_stock_threshold: 0 },
        },
        Envelope {
            now_ms: 1_002,
            command: Command::SetOnHand { sku: SkuId(2), warehouse: WarehouseId(1), on_hand: 10 },
        },
        Envelope {
            now_ms: 1_002,
            command: Command::SetOnHand { sku: SkuId(4), warehouse: WarehouseId(1), on_hand: 5 },
        },
        Envelope {
            now_ms: 1_003,
            command: Command::DefineKit {
                id: SkuId(6),
                code: "GIFT".into(),
                components: vec![KitComponent { sku: SkuId(2), qty: 1 }, KitComponent { sku: SkuId(4), qty: 1 }],
            },
        },
        Envelope {
            now_ms: 1_004,
            command: Command::Reserve(ReserveRequest {
                id: ReservationId(1 << 48 | 1),
                lines: vec![Line { sku: SkuId(2), qty: 3 }],
                ttl_ms: 60_000,
                fingerprint: 0,
                idempotency_key: None,
                customer: CustomerId(1),
                channel: ChannelId(0),
                campaign: None,
                part: PartInfo::SINGLE,
                prefer_warehouses: None,
            }),
        },
        Envelope { now_ms: 1_005, command: Command::Confirm { id: ReservationId(1 << 48 | 1) } },
        Envelope { now_ms: 1_006, command: Command::Adjust { sku: SkuId(4), warehouse: WarehouseId(1), delta: -2 } },
        Envelope { now_ms: 99_000, command: Command::Tick { budget: 100 } },
    ];
    let mut replay = Vec::new();
    let mut log = Vec::new();
    let mut partition = Partition::new(0, 2, Limits::default());
    let mut events = Vec::new();
    for (i, envelope) in envelopes.iter().enumerate() {
        let payload = encode_envelope(envelope).expect("encode envelope");
        replay.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        replay.extend_from_slice(&payload);
        record::encode_into(&mut log, i as u64 + 1, 1, 0, &payload);
        events.clear();
        let _ = partition.apply(envelope, &mut events);
    }
    out.push(("engine_replay", replay));
    out.push(("wal_record", log));
    let image = encode_image(&partition.image()).expect("encode image");
    out.push(("snapshot_load", encode_snapshot(10, &image)));
    out.push(("snapshot_load", image.to_vec()));
    for (selector, text) in [
        (0u8, &include_bytes!("../../engine/tests/orders_samples/taobao-style.json")[..]),
        (1, &include_bytes!("../../engine/tests/orders_samples/jd-style.json")[..]),
        (2, &include_bytes!("../../engine/tests/orders_samples/douyin-style.json")[..]),
    ] {
        let mut seed = vec![selector];
        seed.extend_from_slice(text);
        out.push(("order_intake", seed));
    }
    out
}
