//! Shared fixtures for the criterion benches in `benches/benches/`: catalogs and pre-built
//! command streams, so that timed loops measure the engine and not the setup.

use oms_engine::command::{FlashSaleSpec, PartInfo};
use oms_engine::routing::{self, PartitionSet};
use oms_engine::{
    CampaignId, ChannelId, Command, CustomerId, Envelope, Limits, Line, Partition, ReservationId, ReserveRequest,
    ShardedEngine, SkuId, WarehouseId,
};

pub const WAREHOUSE: WarehouseId = WarehouseId(1);
/// Stock so large that no timed loop runs out.
pub const BOTTOMLESS: u64 = 1 << 50;

pub fn at(now_ms: u64, command: Command) -> Envelope {
    Envelope { now_ms, command }
}

/// A single partition (of `partitions`) holding `skus` SKUs it owns, each with `on_hand` units.
pub fn partition_with_catalog(index: u32, partitions: u32, skus: u32, on_hand: u64) -> Partition {
    let mut p = Partition::new(index, partitions, Limits::default());
    let mut events = Vec::new();
    let define =
        at(1, Command::DefineWarehouse { id: WAREHOUSE, code: "SH".into(), region: "east".into(), priority: 0 });
    p.apply(&define, &mut events).expect("warehouse");
    for local in 0..skus {
        let sku = SkuId(local * partitions + index);
        p.apply(
            &at(1, Command::DefineSku { id: sku, code: format!("SKU-{}", sku.0), low_stock_threshold: 0 }),
            &mut events,
        )
        .expect("sku");
        p.apply(&at(1, Command::SetOnHand { sku, warehouse: WAREHOUSE, on_hand }), &mut events).expect("stock");
        events.clear();
    }
    p
}

/// An engine of `partitions` partitions with `skus` SKUs spread over them.
pub fn sharded_with_catalog(partitions: u32, skus: u32, on_hand: u64) -> ShardedEngine {
    let mut engine = ShardedEngine::new(partitions, Limits::default());
    let mut events = Vec::new();
    engine
        .apply(
            &at(1, Command::DefineWarehouse { id: WAREHOUSE, code: "SH".into(), region: "east".into(), priority: 0 }),
            &mut events,
        )
        .expect("warehouse");
    for i in 0..skus {
        let sku = SkuId(i);
        engine
            .apply(
                &at(1, Command::DefineSku { id: sku, code: format!("SKU-{i}"), low_stock_threshold: 0 }),
                &mut events,
            )
            .expect("sku");
        engine.apply(&at(1, Command::SetOnHand { sku, warehouse: WAREHOUSE, on_hand }), &mut events).expect("stock");
        events.clear();
    }
    engine
}

/// A reserve command for `lines` in partition `index` with sequence `seq`.
pub fn reserve(seq: u64, index: u32, lines: Vec<Line>, customer: u64, campaign: Option<CampaignId>) -> Envelope {
    let mut set = PartitionSet::default();
    set.insert(index);
    at(
        2,
        Command::Reserve(ReserveRequest {
            id: routing::reservation_id(seq, set),
            lines,
            ttl_ms: 900_000,
            fingerprint: 0,
            idempotency_key: None,
            customer: CustomerId(customer),
            channel: ChannelId(0),
            campaign,
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
        }),
    )
}

pub fn reserve_multi(seq: u64, lines: Vec<Line>) -> Envelope {
    at(
        2,
        Command::Reserve(ReserveRequest {
            id: ReservationId(seq),
            lines,
            ttl_ms: 900_000,
            fingerprint: 0,
            idempotency_key: None,
            customer: CustomerId(seq),
            channel: ChannelId(0),
            campaign: None,
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
        }),
    )
}

pub fn flash_sale(campaign: CampaignId, sku: SkuId, pool_qty: u32) -> Envelope {
    at(
        1,
        Command::CreateFlashSale(FlashSaleSpec {
            id: campaign,
            sku,
            pool_qty,
            per_customer_limit: 1,
            starts_at_ms: 0,
            ends_at_ms: u64::MAX / 2,
        }),
    )
}

/// SplitMix64: a tiny deterministic generator for bench inputs.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
