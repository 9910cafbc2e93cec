//! Property tests of the codec: every request and response this crate can encode decodes back to
//! itself, and no byte string (arbitrary, or a valid frame with damage) makes a decoder panic.

use oms_proto::*;
use proptest::prelude::*;

fn code() -> impl Strategy<Value = String> {
    // Codes are 1..=64 bytes of UTF-8; include multi-byte characters.
    prop_oneof!["[A-Z0-9-]{1,64}", "[a-zé中]{1,16}"].prop_filter("<= 64 bytes", |s| !s.is_empty() && s.len() <= 64)
}

#[derive(Clone, Debug)]
enum OwnedSku {
    Code(String),
    Id(u32),
}

impl OwnedSku {
    fn as_ref(&self) -> SkuRef<'_> {
        match self {
            OwnedSku::Code(c) => SkuRef::Code(c),
            OwnedSku::Id(id) => SkuRef::Id(*id),
        }
    }
}

fn sku() -> impl Strategy<Value = OwnedSku> {
    prop_oneof![code().prop_map(OwnedSku::Code), any::<u32>().prop_map(OwnedSku::Id)]
}

#[derive(Clone, Debug)]
struct OwnedReserve {
    ttl_ms: u64,
    customer: u64,
    channel: u16,
    campaign: Option<u32>,
    key: String,
    lines: Vec<(u32, OwnedSku)>,
}

fn owned_reserve() -> impl Strategy<Value = OwnedReserve> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u16>(),
        any::<Option<u32>>(),
        "[ -~]{0,128}",
        prop::collection::vec((any::<u32>(), sku()), 0..=64),
    )
        .prop_map(|(ttl_ms, customer, channel, campaign, key, lines)| OwnedReserve {
            ttl_ms,
            customer,
            channel,
            campaign,
            key,
            lines,
        })
}

/// Build a borrowed request from owned parts, encode it, decode it, and compare.
fn check_request(request: &Request<'_>) {
    let mut out = Vec::new();
    let size = request.encode(99, &mut out).expect("encodes");
    assert_eq!(size, out.len());
    let span = peek_frame(&out, u32::MAX).expect("frame").expect("whole frame");
    assert_eq!(span.total, out.len());
    let limits = Limits { max_frame_bytes: u32::MAX, max_lines: u32::from(u16::MAX), max_batch: MAX_BATCH };
    let decoded = decode_request(&span.header, span.payload(&out), &limits).expect("decodes");
    assert_eq!(&decoded, request);
    assert_eq!(span.header.request_id, 99);
}

fn allocation() -> impl Strategy<Value = Allocation> {
    (any::<u32>(), any::<u16>(), any::<u32>(), code(), code()).prop_map(
        |(sku_id, warehouse_id, qty, sku, warehouse)| Allocation {
            sku_id,
            warehouse_id,
            qty,
            sku: Code::new(&sku).expect("short"),
            warehouse: Code::new(&warehouse).expect("short"),
        },
    )
}

fn reserved() -> impl Strategy<Value = Reserved> {
    (any::<u64>(), any::<u64>(), any::<Option<u64>>(), any::<bool>(), prop::collection::vec(allocation(), 0..8))
        .prop_map(|(id, expires_at_ms, promise_ms, replayed, allocations)| Reserved {
            id,
            expires_at_ms,
            promise_ms,
            replayed,
            allocations,
        })
}

fn wire_error() -> impl Strategy<Value = WireError> {
    (any::<u16>(), any::<Option<u64>>(), any::<Option<u32>>(), "[a-z_]{1,64}", ".{0,100}", prop::option::of(code()))
        .prop_map(|(code, available, sku_id, name, message, sku)| WireError {
            code: ErrorCode(code),
            name: name.into(),
            message,
            available,
            sku_id,
            sku: sku.map(|s| Code::new(&s).expect("short").as_str().into()),
            warehouse: None,
        })
}

fn status() -> impl Strategy<Value = ReservationStatus> {
    prop::sample::select(ReservationStatus::ALL.to_vec())
}

fn response() -> impl Strategy<Value = (Opcode, Response)> {
    prop_oneof![
        reserved().prop_map(|r| (Opcode::Reserve, Response::Reserved(r))),
        wire_error().prop_map(|e| (Opcode::Reserve, Response::Error(e))),
        prop::collection::vec(
            prop_oneof![reserved().prop_map(BatchItem::Reserved), wire_error().prop_map(BatchItem::Refused)],
            0..6
        )
        .prop_map(|items| (Opcode::ReserveBatch, Response::Batch(items))),
        Just((Opcode::Confirm, Response::Done)),
        Just((Opcode::Ping, Response::Done)),
        (
            any::<u64>(),
            any::<u64>(),
            any::<Option<u64>>(),
            any::<Option<u32>>(),
            status(),
            prop::collection::vec(allocation(), 0..4),
            prop::collection::vec((any::<u32>(), status(), prop::collection::vec(allocation(), 0..3)), 0..3)
        )
            .prop_map(|(id, customer, promise_ms, campaign, status, allocations, parts)| (
                Opcode::GetReservation,
                Response::Reservation(ReservationView {
                    id,
                    customer,
                    created_at_ms: id / 3,
                    expires_at_ms: customer / 5,
                    promise_ms,
                    campaign,
                    presale_outstanding: 3,
                    channel: 2,
                    status,
                    allocations,
                    parts: parts
                        .into_iter()
                        .map(|(partition, status, allocations)| ReservationPart { partition, status, allocations })
                        .collect(),
                })
            )),
        (
            any::<u32>(),
            prop::array::uniform6(any::<u64>()),
            code(),
            prop::collection::vec((any::<u32>(), any::<u32>(), code()), 0..3),
            prop::collection::vec((any::<u16>(), prop::array::uniform7(any::<u64>()), code()), 0..3)
        )
            .prop_map(|(sku_id, q, sku, kit, warehouses)| (
                Opcode::GetStock,
                Response::Stock(StockView {
                    sku_id,
                    on_hand: q[0],
                    reserved: q[1],
                    pooled: q[2],
                    unavailable: q[3],
                    available: q[4],
                    incoming: q[5],
                    sku: Code::new(&sku).expect("short"),
                    kit: kit
                        .into_iter()
                        .map(|(qty, sku_id, sku)| KitComponent { qty, sku_id, sku: Code::new(&sku).expect("short") })
                        .collect(),
                    warehouses: warehouses
                        .into_iter()
                        .map(|(warehouse_id, v, code)| WarehouseStock {
                            warehouse_id,
                            on_hand: v[0],
                            reserved: v[1],
                            pooled: v[2],
                            safety: v[3],
                            damaged: v[4],
                            quality_control: v[5],
                            available: v[6],
                            warehouse: Code::new(&code).expect("short"),
                        })
                        .collect(),
                })
            )),
        ".{0,200}".prop_map(|text| (Opcode::Audit, Response::Json(text))),
        (
            any::<u32>(),
            any::<u64>(),
            prop::collection::vec((any::<u64>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..40)), 0..5)
        )
            .prop_map(|(partition, durable_lsn, records)| (
                Opcode::Subscribe,
                Response::LogRecords(LogRecords {
                    partition,
                    durable_lsn,
                    records: records
                        .into_iter()
                        .map(|(lsn, record_type, payload)| LogRecord { lsn, record_type, payload })
                        .collect(),
                })
            )),
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(
            |(partition, lsn, offset, total, data)| (
                Opcode::Subscribe,
                Response::Snapshot(SnapshotChunk { partition, lsn, offset, total, data })
            )
        ),
        (
            any::<u16>(),
            prop::sample::select(vec![Role::Storefront, Role::Ops, Role::Reader]),
            any::<[u32; 6]>(),
            "[ -~]{0,40}"
        )
            .prop_map(|(version, role, n, server)| (
                Opcode::Hello,
                Response::HelloOk(ServerInfo {
                    version,
                    role,
                    partitions: n[0],
                    max_frame_bytes: n[1],
                    max_lines: n[2],
                    max_in_flight: n[3],
                    max_batch: n[4],
                    features: n[5],
                    server,
                })
            )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reserve_requests_round_trip(reserve in owned_reserve()) {
        // Checks encode -> decode gives back the same reservation, lines included.
        let lines: Vec<Line<'_>> = reserve.lines.iter().map(|(qty, sku)| Line { qty: *qty, sku: sku.as_ref() }).collect();
        let request = Request::Reserve(Reserve {
            ttl_ms: reserve.ttl_ms,
            customer: reserve.customer,
            channel: reserve.channel,
            campaign: reserve.campaign,
            idempotency_key: &reserve.key,
            lines: Lines::Slice(&lines),
        });
        check_request(&request);
    }

    #[test]
    fn batches_and_small_requests_round_trip(carts in prop::collection::vec(owned_reserve(), 1..6), id in any::<u64>(), sku in sku(), lsn in any::<u64>(), partition in any::<Option<u32>>(), bootstrap in any::<bool>(), key in "[ -~]{0,256}") {
        // Checks the batch layout, the id-only bodies, get_stock, subscribe, replica_ack and hello.
        let lines: Vec<Vec<Line<'_>>> = carts
            .iter()
            .map(|c| c.lines.iter().map(|(qty, sku)| Line { qty: *qty, sku: sku.as_ref() }).collect())
            .collect();
        let reserves: Vec<Reserve<'_>> = carts
            .iter()
            .zip(&lines)
            .map(|(c, lines)| Reserve {
                ttl_ms: c.ttl_ms,
                customer: c.customer,
                channel: c.channel,
                campaign: c.campaign,
                idempotency_key: &c.key,
                lines: Lines::Slice(lines),
            })
            .collect();
        check_request(&Request::ReserveBatch(Batch::Slice(&reserves)));
        for request in [
            Request::Confirm { id },
            Request::Release { id },
            Request::PayBalance { id },
            Request::Ship { id },
            Request::GetReservation { id },
            Request::Ping,
            Request::GetStock { sku: sku.as_ref() },
            Request::Subscribe(Subscribe { from_lsn: lsn, partition, bootstrap }),
            Request::ReplicaAck { partition: partition.unwrap_or(0), durable_lsn: lsn },
            Request::Hello(Hello::new(&key, "client/1")),
            Request::Json { opcode: Opcode::Audit, body: "{}" },
        ] {
            check_request(&request);
        }
    }

    #[test]
    fn responses_round_trip((opcode, response) in response(), request_id in any::<u64>()) {
        // Checks every response layout decodes back to what was encoded, with the opcode echoed
        // and the ERROR flag set exactly for errors.
        let mut out = Vec::new();
        response.encode(opcode as u16, request_id, &mut out).expect("encodes");
        let span = peek_frame(&out, u32::MAX).expect("frame").expect("whole frame");
        prop_assert_eq!(span.header.opcode, opcode as u16);
        prop_assert_eq!(span.header.is_error(), matches!(response, Response::Error(_)));
        let decoded = decode_response(&span.header, span.payload(&out)).expect("decodes");
        prop_assert_eq!(decoded, response);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), opcode in any::<u16>(), flags in 0u16..2) {
        // Checks the decoders refuse or accept garbage without panicking, for every opcode.
        let limits = Limits::default();
        let header = FrameHeader { opcode, flags: 0, request_id: 1 };
        if let Ok(Request::Reserve(r)) = decode_request(&header, &bytes, &limits) {
            prop_assert_eq!(r.lines.iter().count(), r.lines.len());
        }
        let _ = decode_response(&FrameHeader { opcode, flags, request_id: 1 }, &bytes);
        let _ = peek_frame(&bytes, 1024);
        for op in Opcode::ALL {
            let header = FrameHeader { opcode: *op as u16, flags: 0, request_id: 1 };
            if let Ok(Request::ReserveBatch(batch)) = decode_request(&header, &bytes, &limits) {
                prop_assert_eq!(batch.iter().count(), batch.len());
            }
            let _ = decode_response(&FrameHeader { opcode: *op as u16, flags, request_id: 1 }, &bytes);
        }
    }

    #[test]
    fn damaged_reserve_frames_never_panic(reserve in owned_reserve(), at in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<prop::sample::Index>()) {
        // Checks a valid frame with one byte flipped, or cut short, decodes to something or an
        // error, and that whatever decodes iterates exactly its counted lines.
        let lines: Vec<Line<'_>> = reserve.lines.iter().map(|(qty, sku)| Line { qty: *qty, sku: sku.as_ref() }).collect();
        let request = Request::Reserve(Reserve {
            ttl_ms: reserve.ttl_ms,
            customer: reserve.customer,
            channel: reserve.channel,
            campaign: reserve.campaign,
            idempotency_key: &reserve.key,
            lines: Lines::Slice(&lines),
        });
        let mut out = Vec::new();
        request.encode(1, &mut out).expect("encodes");
        let limits = Limits::default();
        let mut damaged = out.clone();
        let i = at.index(damaged.len());
        damaged[i] ^= xor;
        let cut_len = cut.index(out.len());
        for bytes in [&damaged[..], &out[..cut_len]] {
            if let Ok(Some(span)) = peek_frame(bytes, limits.max_frame_bytes) {
                if let Ok(Request::Reserve(r)) = decode_request(&span.header, span.payload(bytes), &limits) {
                    prop_assert_eq!(r.lines.iter().count(), r.lines.len());
                }
            }
        }
    }
}

#[test]
fn encoder_refuses_what_the_protocol_forbids() {
    // Checks the encoder's own limits: an empty or 65-byte code, a 129-byte key, an empty batch
    // and a JSON body on a binary opcode are refused, and nothing is written.
    let long = "x".repeat(65);
    let key = "k".repeat(129);
    let mut out = Vec::new();
    for request in [
        Request::GetStock { sku: SkuRef::Code("") },
        Request::GetStock { sku: SkuRef::Code(&long) },
        Request::Reserve(Reserve {
            ttl_ms: 1,
            customer: 0,
            channel: 0,
            campaign: None,
            idempotency_key: &key,
            lines: Lines::Slice(&[]),
        }),
        Request::ReserveBatch(Batch::Slice(&[])),
        Request::Json { opcode: Opcode::Reserve, body: "{}" },
    ] {
        assert!(request.encode(1, &mut out).is_err(), "{request:?}");
        assert!(out.is_empty());
    }
}
