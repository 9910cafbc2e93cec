//! Codec: envelopes and partition images round-trip exactly; arbitrary or corrupted bytes decode
//! to an error, never a panic (proptest).
mod common;

use common::*;
use oms_engine::codec::{decode_envelope, decode_image, encode_envelope, encode_image};
use oms_engine::command::{ChannelException, ChannelPolicy, FlashSaleSpec, KitComponent, PartInfo, PresaleSpec};
use oms_engine::partition::PartitionImage;
use oms_engine::*;
use proptest::prelude::*;

/// A partition with warehouses, SKUs, a kit, stock, buckets, a flash sale, a presale with a
/// promised deposit, a channel policy, and live, confirmed and ended reservations.
fn rich_sim() -> Sim {
    let mut sim = Sim::new(2);
    for sku in 0..4 {
        sim.sku(sku, 2);
        sim.receive(sku, 1, 20);
    }
    sim.kit(6, &[(0, 1), (1, 2)]).unwrap();
    sim.ok(policy(3, 5_000, 2, &[(0, 10_000, 7)]));
    sim.ok(Command::SetBucket { sku: SkuId(2), warehouse: WarehouseId(1), bucket: Bucket::QualityControl, qty: 2 });
    sim.ok(Command::ReturnToStock { sku: SkuId(2), warehouse: WarehouseId(2), qty: 1, damaged: true });
    sim.ok(flash(1, 0, 4, 2, 1_000, 90_000));
    sim.ok(presale(2, 3, 5, 5, 0, 90_000, 50_000));
    sim.ok(Command::ExpectIncoming {
        po: PurchaseOrderId(4),
        sku: SkuId(3),
        warehouse: WarehouseId(2),
        qty: 3,
        eta_ms: 9_000,
    });
    let mut r = sim.request(&[(3, 2)]);
    r.campaign = Some(CampaignId(2));
    sim.reserve_with(r).unwrap();
    let mut r = sim.request(&[(0, 2), (1, 1)]);
    r.campaign = Some(CampaignId(1));
    r.idempotency_key = key("five");
    sim.reserve_with(r).unwrap();
    let (a, _) = sim.reserve(&[(6, 2)]).unwrap();
    sim.ok(Command::Confirm { id: a });
    let (b, _) = sim.reserve(&[(2, 1)]).unwrap();
    sim.ok(Command::Release { id: b, cause: ReleaseCause::Cancel });
    sim.reserve(&[(1, 1)]).unwrap();
    sim.assert_clean();
    sim
}

#[test]
fn images_round_trip_and_restore() {
    // encode -> decode gives the same image; Partition::from_image of it has the same image and a
    // clean consistency check.
    let sim = rich_sim();
    for p in sim.engine.partitions() {
        let image = p.image();
        let bytes = encode_image(&image).unwrap();
        let decoded = decode_image(&bytes).unwrap();
        assert_eq!(decoded, image);
        let restored = Partition::from_image(decoded, limits()).unwrap();
        assert_eq!(restored.image(), image);
        assert!(restored.check().is_clean());
    }
    sim.assert_replay();
}

#[test]
fn images_written_before_claims_still_load() {
    // A snapshot image as written before the image held idempotency claims (the same fields
    // without `claims`, and no tag) still decodes, with no claims: a data directory from before
    // issue 12 starts from its snapshots. A tagged image carries its claims.
    let sim = rich_sim();
    for p in sim.engine.partitions() {
        let image = p.image();
        let old = oms_engine::partition::PartitionImageV1 {
            index: image.index,
            partitions: image.partitions,
            now_ms: image.now_ms,
            warehouses: image.warehouses.clone(),
            skus: image.skus.clone(),
            live: image.live.clone(),
            ended: image.ended.clone(),
            counters: image.counters,
            campaigns: image.campaigns.clone(),
            channels: image.channels.clone(),
            ledger_opening: image.ledger_opening.clone(),
            ledger_entries: image.ledger_entries.clone(),
            ledger_total_entries: image.ledger_total_entries,
            orders: image.orders.clone(),
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&old).unwrap();
        let decoded = decode_image(&bytes).unwrap();
        let bare =
            oms_engine::partition::PartitionImage { claims: Vec::new(), desk: Default::default(), ..image.clone() };
        assert_eq!(decoded, bare);
        // The layout with claims but before the desk's state (tag OMSIMG02) keeps its claims.
        let v2 = oms_engine::partition::PartitionImageV2 {
            index: old.index,
            partitions: old.partitions,
            now_ms: old.now_ms,
            warehouses: old.warehouses,
            skus: old.skus,
            live: old.live,
            ended: old.ended,
            counters: old.counters,
            campaigns: old.campaigns,
            channels: old.channels,
            ledger_opening: old.ledger_opening,
            ledger_entries: old.ledger_entries,
            ledger_total_entries: old.ledger_total_entries,
            orders: old.orders,
            claims: image.claims.clone(),
        };
        let mut bytes = oms_engine::codec::IMAGE_TAG_V2.to_vec();
        bytes.extend_from_slice(&rkyv::to_bytes::<rkyv::rancor::Error>(&v2).unwrap());
        let decoded = decode_image(&bytes).unwrap();
        assert_eq!(decoded, oms_engine::partition::PartitionImage { desk: Default::default(), ..image.clone() });
        assert!(encode_image(&image).unwrap().starts_with(oms_engine::codec::IMAGE_TAG));
    }
    assert!(
        sim.engine.partitions().iter().any(|p| !p.image().claims.is_empty()),
        "the rich scenario has a keyed reservation, so some image holds a claim"
    );
}

#[test]
fn journal_envelopes_round_trip() {
    // Every envelope the rich scenario journaled survives encode/decode unchanged.
    let sim = rich_sim();
    for (_, envelope) in sim.engine.journal() {
        let bytes = encode_envelope(envelope).unwrap();
        assert_eq!(&decode_envelope(&bytes).unwrap(), envelope);
    }
}

fn arb_command() -> impl Strategy<Value = Command> {
    let sku = any::<u32>().prop_map(SkuId);
    let wh = any::<u16>().prop_map(WarehouseId);
    prop_oneof![
        any::<u32>().prop_map(|budget| Command::Tick { budget }),
        (wh.clone(), ".{0,8}", ".{0,8}", any::<u16>())
            .prop_map(|(id, code, region, priority)| { Command::DefineWarehouse { id, code, region, priority } }),
        (sku.clone(), prop::collection::vec((any::<u32>(), any::<u32>()), 0..4)).prop_map(|(id, c)| {
            Command::DefineKit {
                id,
                code: "k".into(),
                components: c.into_iter().map(|(s, q)| KitComponent { sku: SkuId(s), qty: q }).collect(),
            }
        }),
        (sku.clone(), wh.clone(), any::<i64>())
            .prop_map(|(sku, warehouse, delta)| { Command::Adjust { sku, warehouse, delta } }),
        (sku.clone(), wh.clone(), any::<u64>(), 0..3usize).prop_map(|(sku, warehouse, qty, b)| {
            Command::SetBucket { sku, warehouse, bucket: Bucket::ALL[b], qty }
        }),
        (any::<u64>(), prop::collection::vec((any::<u32>(), any::<u32>()), 0..5), any::<u64>(), any::<Option<u32>>())
            .prop_map(|(id, lines, key, campaign)| Command::Reserve(ReserveRequest {
                id: ReservationId(id),
                lines: lines.into_iter().map(|(s, q)| Line { sku: SkuId(s), qty: q }).collect(),
                ttl_ms: key / 3,
                idempotency_key: (key % 2 == 0).then(|| {
                    Box::new(oms_engine::command::IdempotencyKey {
                        scope: format!("s{}", key % 7),
                        key: key.to_string(),
                    })
                }),
                fingerprint: key,
                customer: CustomerId(key ^ 1),
                channel: ChannelId(key as u16),
                campaign: campaign.map(CampaignId),
                part: PartInfo { parts: 2 },
                prefer_warehouses: (key % 3 != 0)
                    .then(|| (0..(key % 5) as u16).map(|w| WarehouseId(w ^ key as u16)).collect()),
            })),
        (any::<u64>(), any::<bool>()).prop_map(|(id, c)| Command::Release {
            id: ReservationId(id),
            cause: if c { ReleaseCause::Cancel } else { ReleaseCause::Compensation }
        }),
        (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(id, q, t)| Command::CreateFlashSale(FlashSaleSpec {
            id: CampaignId(id),
            sku: SkuId(q),
            pool_qty: q,
            per_customer_limit: id,
            starts_at_ms: t,
            ends_at_ms: t / 2
        })),
        (any::<u32>(), any::<u64>()).prop_map(|(id, t)| Command::CreatePresale(PresaleSpec {
            id: CampaignId(id),
            sku: SkuId(id),
            quota: id,
            per_customer_limit: 1,
            starts_at_ms: t,
            ends_at_ms: t,
            balance_window_ms: t
        })),
        (any::<u16>(), any::<u32>(), prop::collection::vec(any::<(u32, u32, u32)>(), 0..3)).prop_map(|(c, r, e)| {
            Command::SetChannelPolicy(ChannelPolicy {
                channel: ChannelId(c),
                ratio_bp: r,
                floor: r / 2,
                exceptions: e
                    .into_iter()
                    .map(|(s, r, cap)| ChannelException { sku: SkuId(s), ratio_bp: r, cap })
                    .collect(),
            })
        }),
        (any::<u64>(), sku, any::<u32>())
            .prop_map(|(po, sku, qty)| { Command::ReceivePurchaseOrder { po: PurchaseOrderId(po), sku, qty } }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary envelopes round-trip exactly.
    #[test]
    fn envelopes_round_trip(now_ms in any::<u64>(), command in arb_command()) {
        let envelope = Envelope { now_ms, command };
        let bytes = encode_envelope(&envelope).unwrap();
        prop_assert_eq!(decode_envelope(&bytes).unwrap(), envelope);
    }

    /// Random bytes are an error or a value, never a panic, for both decoders.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_envelope(&bytes);
        let _ = decode_image(&bytes);
    }

    /// A valid encoding with a few bytes overwritten or truncated never panics the decoder, and
    /// whatever decodes re-encodes without panicking.
    #[test]
    fn corrupted_encodings_never_panic(
        command in arb_command(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_envelope(&Envelope { now_ms: 7, command }).unwrap().to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(envelope) = decode_envelope(&bytes) {
            let _ = encode_envelope(&envelope);
        }
        let _ = decode_envelope(&bytes[..cut.index(bytes.len() + 1)]);
    }
}

#[test]
fn corrupted_images_never_panic() {
    // Every single-byte corruption of a real image (xor with 0xff) and every truncation point
    // decodes to Ok or Err without panicking.
    let sim = rich_sim();
    let image = sim.engine.partitions()[0].image();
    let bytes = encode_image(&image).unwrap().to_vec();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0xff;
        let _ = decode_image(&b);
        let _ = decode_image(&bytes[..i]);
    }
}

#[test]
fn images_of_the_wrong_shape_are_refused_not_loaded() {
    // An image that passed its checksum but cannot be held (a foreign or buggy writer) is a typed
    // error: a partition index out of range, a SKU id past the limit or owned by another
    // partition, or a SKU listed twice; nothing is allocated by the bad id.
    let sim = rich_sim();
    let good = sim.engine.partitions()[0].image();
    assert!(!good.skus.is_empty());
    let refused = |image: PartitionImage| Partition::from_image(image, limits()).err();

    let mut bad = good.clone();
    bad.index = bad.partitions;
    assert_eq!(refused(bad), Some(ImageError::BadPartition { index: good.partitions, partitions: good.partitions }));
    let mut bad = good.clone();
    bad.partitions = 0;
    assert!(matches!(refused(bad), Some(ImageError::BadPartition { .. })));

    let mut bad = good.clone();
    let far = SKU_ID_LIMIT - SKU_ID_LIMIT % good.partitions + good.index + good.partitions;
    bad.skus[0].id = SkuId(far);
    assert_eq!(refused(bad), Some(ImageError::BadSku { sku: SkuId(far), index: good.index }));
    let mut bad = good.clone();
    bad.skus[0].id = SkuId(bad.skus[0].id.0 + 1);
    assert!(matches!(refused(bad), Some(ImageError::BadSku { .. })));

    let mut bad = good.clone();
    let first = bad.skus[0].clone();
    bad.skus.push(first);
    assert_eq!(refused(bad), Some(ImageError::DuplicateSku { sku: good.skus[0].id }));
}

#[test]
fn reserve_records_written_before_the_warehouse_preference_still_decode() {
    // The bytes of a Reserve record as logged before `prefer_warehouses` was appended to
    // `ReserveRequest`: the archived command keeps its size (a larger variant decides it) and
    // rkyv zero-fills the rest, which reads as `None`. A log written by the earlier version
    // therefore replays unchanged.
    const BEFORE: &str = "050000000200000008000000010000007b68e5cf8b0100000d000000000000004d00000000000300\
        d8ffffff0200000060ea000000000000edfe0000000000002a0000000000000003000000010000000900000002000000";
    let mut bytes: Vec<u8> =
        (0..BEFORE.len() / 2).map(|i| u8::from_str_radix(&BEFORE[2 * i..2 * i + 2], 16).unwrap()).collect();
    bytes.resize(168, 0);
    let decoded = decode_envelope(&bytes).expect("an old Reserve record decodes");
    let expected = Envelope {
        now_ms: 1_700_000_000_123,
        command: Command::Reserve(ReserveRequest {
            id: ReservationId((3 << 48) | 77),
            lines: vec![Line { sku: SkuId(5), qty: 2 }, Line { sku: SkuId(8), qty: 1 }],
            ttl_ms: 60_000,
            idempotency_key: None,
            fingerprint: 0xfeed,
            customer: CustomerId(42),
            channel: ChannelId(3),
            campaign: Some(CampaignId(9)),
            part: PartInfo { parts: 2 },
            prefer_warehouses: None,
        }),
    };
    assert_eq!(decoded, expected);
    assert_eq!(encode_envelope(&expected).unwrap().as_slice(), bytes.as_slice(), "and encodes to the same bytes");
}
