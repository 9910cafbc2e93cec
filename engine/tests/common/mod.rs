//! Shared scaffolding for the engine integration tests: a `Sim` that drives a journaled
//! `ShardedEngine` with an explicit clock, plus helpers that build commands and check the
//! invariants every test wants (consistency check clean, journal replay identical).
#![allow(dead_code)]

use oms_engine::codec;
use oms_engine::command::{ChannelException, ChannelPolicy, FlashSaleSpec, KitComponent, PartInfo, PresaleSpec};
use oms_engine::event::{Allocation, Event};
use oms_engine::routing;
use oms_engine::*;

pub const TTL: u64 = 60_000;

pub fn limits() -> Limits {
    Limits::default()
}

pub struct Sim {
    pub engine: ShardedEngine,
    pub now: u64,
    /// Events of the last successful or failed command.
    pub events: Vec<Event>,
    next_seq: u64,
}

impl Sim {
    /// `partitions` partitions, warehouses 1 (priority 1) and 2 (priority 2) defined everywhere.
    pub fn new(partitions: u32) -> Self {
        let mut sim = Sim::bare(partitions);
        sim.warehouse(1, 1);
        sim.warehouse(2, 2);
        sim
    }

    pub fn bare(partitions: u32) -> Self {
        Sim {
            engine: ShardedEngine::new(partitions, limits()).with_journal(),
            now: 1_000,
            events: Vec::new(),
            next_seq: 1,
        }
    }

    pub fn run(&mut self, command: Command) -> Result<Vec<Event>, EngineError> {
        self.events.clear();
        let envelope = Envelope { now_ms: self.now, command };
        let mut out = Vec::new();
        let result = self.engine.apply(&envelope, &mut out);
        self.events = out.clone();
        result.map(|()| out)
    }

    #[track_caller]
    pub fn ok(&mut self, command: Command) -> Vec<Event> {
        let name = command.name();
        match self.run(command) {
            Ok(events) => events,
            Err(e) => panic!("{name} refused: {e:?}"),
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// Advance the clock and tick every partition.
    pub fn tick_to(&mut self, now: u64) -> Vec<Event> {
        self.now = self.now.max(now);
        self.ok(Command::Tick { budget: 1_000 })
    }

    pub fn warehouse(&mut self, id: u16, priority: u16) {
        self.ok(Command::DefineWarehouse {
            id: WarehouseId(id),
            code: format!("W{id}"),
            region: "eu".into(),
            priority,
        });
    }

    pub fn sku(&mut self, id: u32, threshold: u32) {
        self.ok(Command::DefineSku { id: SkuId(id), code: format!("SKU-{id}"), low_stock_threshold: threshold });
    }

    pub fn kit(&mut self, id: u32, components: &[(u32, u32)]) -> Result<Vec<Event>, EngineError> {
        self.run(Command::DefineKit {
            id: SkuId(id),
            code: format!("KIT-{id}"),
            components: components.iter().map(|&(sku, qty)| KitComponent { sku: SkuId(sku), qty }).collect(),
        })
    }

    pub fn receive(&mut self, sku: u32, warehouse: u16, qty: u32) {
        self.ok(Command::Receive { sku: SkuId(sku), warehouse: WarehouseId(warehouse), qty });
    }

    pub fn fresh_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn request(&mut self, lines: &[(u32, u32)]) -> ReserveRequest {
        let seq = self.fresh_seq();
        request(seq, lines)
    }

    /// Reserve general stock for customer 1 on channel 0; answers the id and allocations.
    pub fn reserve(&mut self, lines: &[(u32, u32)]) -> Result<(ReservationId, Vec<Allocation>), EngineError> {
        let req = self.request(lines);
        self.reserve_with(req)
    }

    pub fn reserve_with(&mut self, req: ReserveRequest) -> Result<(ReservationId, Vec<Allocation>), EngineError> {
        let events = self.run(Command::Reserve(req))?;
        Ok(reserved_of(&events))
    }

    pub fn stock(&self, sku: u32) -> oms_engine::partition::SkuStockView {
        self.engine.stock(SkuId(sku)).expect("known sku")
    }

    pub fn available(&self, sku: u32) -> u64 {
        self.engine.available(SkuId(sku)).expect("known sku")
    }

    /// (on_hand, reserved, available) of a SKU over all warehouses.
    pub fn totals(&self, sku: u32) -> (u64, u64, u64) {
        let s = self.stock(sku);
        (s.on_hand, s.reserved, s.available)
    }

    pub fn cell(&self, sku: u32, warehouse: u16) -> oms_engine::partition::WarehouseStockView {
        self.stock(sku).warehouses.into_iter().find(|w| w.warehouse == WarehouseId(warehouse)).unwrap_or(
            oms_engine::partition::WarehouseStockView {
                warehouse: WarehouseId(warehouse),
                on_hand: 0,
                reserved: 0,
                pooled: 0,
                safety: 0,
                damaged: 0,
                quality_control: 0,
                available: 0,
            },
        )
    }

    pub fn images(&self) -> Vec<oms_engine::partition::PartitionImage> {
        self.engine.partitions().iter().map(|p| p.image()).collect()
    }

    #[track_caller]
    pub fn assert_clean(&self) {
        for p in self.engine.partitions() {
            let report = p.check();
            assert!(report.is_clean(), "partition {} not clean: {report:?}", p.index());
        }
    }

    /// Replay the journal into fresh partitions: same images and same encoded bytes.
    #[track_caller]
    pub fn assert_replay(&self) {
        assert_replay(&self.engine);
    }
}

#[track_caller]
pub fn assert_replay(engine: &ShardedEngine) {
    let n = engine.partition_count();
    let mut fresh: Vec<Partition> = (0..n).map(|i| Partition::new(i, n, limits())).collect();
    let mut out = Vec::new();
    for (p, envelope) in engine.journal() {
        out.clear();
        fresh[*p as usize].apply(envelope, &mut out).expect("journaled command replays");
    }
    for (live, replayed) in engine.partitions().iter().zip(&fresh) {
        let (a, b) = (live.image(), replayed.image());
        assert_eq!(a, b, "partition {} image differs after replay", live.index());
        let (ea, eb) = (codec::encode_image(&a).unwrap(), codec::encode_image(&b).unwrap());
        assert_eq!(ea.as_slice(), eb.as_slice(), "partition {} bytes differ after replay", live.index());
    }
}

/// An idempotency key in the scope every test uses.
pub fn key(k: &str) -> Option<Box<oms_engine::command::IdempotencyKey>> {
    Some(Box::new(oms_engine::command::IdempotencyKey { scope: "test-shop".into(), key: k.into() }))
}

/// A key (in the tests' scope) whose home is `partition` of `partitions`.
pub fn key_homed_at(partition: u32, partitions: u32) -> Option<Box<oms_engine::command::IdempotencyKey>> {
    named_key_homed_at("cart", partition, partitions)
}

/// A key named `prefix-N` whose home is `partition` of `partitions`.
pub fn named_key_homed_at(
    prefix: &str,
    partition: u32,
    partitions: u32,
) -> Option<Box<oms_engine::command::IdempotencyKey>> {
    (0..)
        .map(|i| key(&format!("{prefix}-{i}")))
        .find(|k| k.as_deref().is_some_and(|k| routing::key_home(k, partitions) == partition))
        .flatten()
}

pub fn request(seq: u64, lines: &[(u32, u32)]) -> ReserveRequest {
    ReserveRequest {
        id: ReservationId(seq),
        lines: lines.iter().map(|&(sku, qty)| Line { sku: SkuId(sku), qty }).collect(),
        ttl_ms: TTL,
        idempotency_key: None,
        fingerprint: 0,
        customer: CustomerId(1),
        channel: ChannelId(0),
        campaign: None,
        part: PartInfo::SINGLE,
        prefer_warehouses: None,
    }
}

/// The (non-replayed or replayed) Reserved event's id and allocations.
#[track_caller]
pub fn reserved_of(events: &[Event]) -> (ReservationId, Vec<Allocation>) {
    let mut id = None;
    let mut all = Vec::new();
    for e in events {
        if let Event::Reserved { id: rid, allocations, .. } = e {
            id = Some(*rid);
            all.extend_from_slice(allocations);
        }
    }
    (id.expect("a Reserved event"), all)
}

pub fn alloc(sku: u32, warehouse: u16, qty: u32) -> Allocation {
    Allocation { sku: SkuId(sku), warehouse: WarehouseId(warehouse), qty }
}

pub fn flash(id: u32, sku: u32, pool: u32, limit: u32, starts: u64, ends: u64) -> Command {
    Command::CreateFlashSale(FlashSaleSpec {
        id: CampaignId(id),
        sku: SkuId(sku),
        pool_qty: pool,
        per_customer_limit: limit,
        starts_at_ms: starts,
        ends_at_ms: ends,
    })
}

pub fn presale(id: u32, sku: u32, quota: u32, limit: u32, starts: u64, ends: u64, balance_window_ms: u64) -> Command {
    Command::CreatePresale(PresaleSpec {
        id: CampaignId(id),
        sku: SkuId(sku),
        quota,
        per_customer_limit: limit,
        starts_at_ms: starts,
        ends_at_ms: ends,
        balance_window_ms,
    })
}

pub fn policy(channel: u16, ratio_bp: u32, floor: u32, exceptions: &[(u32, u32, u32)]) -> Command {
    Command::SetChannelPolicy(ChannelPolicy {
        channel: ChannelId(channel),
        ratio_bp,
        floor,
        exceptions: exceptions
            .iter()
            .map(|&(sku, ratio_bp, cap)| ChannelException { sku: SkuId(sku), ratio_bp, cap })
            .collect(),
    })
}

/// A single-partition id for `Partition::apply` users.
pub fn pid(seq: u64, partition: u32) -> ReservationId {
    let mut set = routing::PartitionSet::default();
    set.insert(partition);
    routing::reservation_id(seq, set)
}

/// Apply to one partition and demand that a refusal changes nothing and emits nothing.
#[track_caller]
pub fn apply_checked(p: &mut Partition, now_ms: u64, command: Command) -> Result<(Outcome, Vec<Event>), EngineError> {
    let before = p.image();
    let mut out = Vec::new();
    let result = p.apply(&Envelope { now_ms, command }, &mut out);
    match result {
        Ok(outcome) => {
            if outcome == Outcome::Unchanged {
                assert_eq!(p.image(), before, "Unchanged outcome but the image changed");
            }
            Ok((outcome, out))
        }
        Err(e) => {
            assert!(out.is_empty(), "refusal {e:?} emitted events {out:?}");
            assert_eq!(p.image(), before, "refusal {e:?} changed the state");
            Err(e)
        }
    }
}
