//! Reference-model property test: random sequences of every command kind, with time moving
//! forward randomly, run against a 2-partition ShardedEngine and against a small, independent model
//! written with plain maps. After every step: success/failure of every command as the model
//! predicts; per SKU x warehouse on_hand/reserved/pooled/buckets equal the model's; units conserved;
//! no customer above a campaign limit; `check()` clean everywhere; kit availability; presale
//! promises. At the end: reservation statuses and campaign counts agree, and replaying the
//! journal into fresh partitions gives identical images and identical encoded bytes.
//!
//! The model does not re-derive which warehouse the engine picks; it takes allocations from the
//! engine's events and checks they are legal (never more than the model says is available or
//! pooled there, summing to the requested quantity, one warehouse in priority order when one can
//! fill the part). Case count: PROPTEST_CASES (default 10,000: the
//! figure the project promises for every test run, CI included; about 2 s with the engine optimised).
mod common;

use std::collections::{BTreeMap, VecDeque};

use common::assert_replay;
use oms_engine::command::{ChannelException, ChannelPolicy, FlashSaleSpec, KitComponent, PartInfo, PresaleSpec};
use oms_engine::event::{Event, MovementKind};
use oms_engine::routing::{self, PartitionSet};
use oms_engine::*;
use proptest::prelude::*;

const PARTS: u32 = 2;
const STOCKED: [u32; 6] = [0, 1, 2, 3, 4, 5];
const KIT: u32 = 6;
/// Kit 6 = 1 x SKU 0 (partition 0) + 2 x SKU 1 (partition 1).
const KIT_PARTS: [(u32, u32); 2] = [(0, 1), (1, 2)];
const UNKNOWN: u32 = 9;
const SKU_CHOICES: [u32; 8] = [0, 1, 2, 3, 4, 5, KIT, UNKNOWN];
/// (id, priority): preference order is 2, 3 (priority 1, by id), then 1.
const WAREHOUSES: [(u16, u16); 3] = [(1, 2), (2, 1), (3, 1)];
const WAREHOUSE_ORDER: [u16; 3] = [2, 3, 1];
const FLASH: CampaignId = CampaignId(1);
const FLASH_SKU: u32 = 2;
const PRESALE: CampaignId = CampaignId(2);
const PRESALE_SKU: u32 = 5;
const PRESALE_QUOTA: u32 = 4;
const PRESALE_LIMIT: u32 = 3;
const PRESALE_ENDS: u64 = 15_000;
const BALANCE_WINDOW: u64 = 3_000;
const CHANNEL: u16 = 1;
const CHANNEL_EXCEPTION: (u32, u32, u32) = (3, 10_000, 4);
const START: u64 = 1_000;

// ---------------------------------------------------------------- operations

#[derive(Clone, Debug)]
enum Op {
    Tick,
    Reserve { lines: Vec<(usize, u32)>, customer: u64, channel: u16, keyed: bool, ttl: u64, campaign: u8 },
    Retry(usize),
    Confirm(usize),
    Release(usize),
    Ship(usize),
    PayBalance(usize),
    Receive { sku: usize, wh: usize, qty: u32 },
    Adjust { sku: usize, wh: usize, delta: i64 },
    SetOnHand { sku: usize, wh: usize, on_hand: u64 },
    SetBucket { sku: usize, wh: usize, bucket: usize, qty: u64 },
    Transfer { sku: usize, from: usize, to: usize, qty: u32 },
    Return { sku: usize, wh: usize, qty: u32, damaged: bool },
    CreateFlash { pool: u32, limit: u32, start_in: u64, length: u64 },
    Expect { po: u64, wh: usize, qty: u32, eta_in: u64 },
    Reschedule { po: u64, eta_in: u64 },
    ReceivePo { po: u64, qty: u32 },
    Policy { ratio_bp: u32, floor: u32 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    let sku = 0..SKU_CHOICES.len();
    let wh = 0..WAREHOUSES.len();
    let ttl = prop_oneof![30 => 1..4_000u64, 1 => Just(0u64), 1 => Just(Limits::default().max_ttl_ms + 1)];
    // Mostly distinct SKUs (weighted towards stocked ones), sometimes a duplicate or a zero quantity.
    let line_sku = prop_oneof![12 => 0..6usize, 2 => Just(6usize), 1 => Just(7usize)];
    let lines = (
        prop::collection::vec((line_sku, prop_oneof![30 => 1..5u32, 1 => Just(0u32)]), 1..4),
        prop_oneof![15 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(mut lines, duplicate)| {
            let mut seen = Vec::new();
            lines.retain(|(s, _)| {
                !seen.contains(s) && {
                    seen.push(*s);
                    true
                }
            });
            if duplicate {
                lines.push(lines[0]);
            }
            lines
        });
    prop_oneof![
        3 => Just(Op::Tick),
        12 => (lines, 1..4u64, 0..2u16, any::<bool>(), ttl, prop_oneof![6 => Just(0u8), 3 => Just(1u8), 3 => Just(2u8), 1 => Just(3u8)])
            .prop_map(|(lines, customer, channel, keyed, ttl, campaign)| Op::Reserve { lines, customer, channel, keyed, ttl, campaign }),
        2 => any::<usize>().prop_map(Op::Retry),
        4 => any::<usize>().prop_map(Op::Confirm),
        3 => any::<usize>().prop_map(Op::Release),
        3 => any::<usize>().prop_map(Op::Ship),
        2 => any::<usize>().prop_map(Op::PayBalance),
        4 => (sku.clone(), wh.clone(), 0..6u32).prop_map(|(sku, wh, qty)| Op::Receive { sku, wh, qty }),
        2 => (sku.clone(), wh.clone(), -6..6i64).prop_map(|(sku, wh, delta)| Op::Adjust { sku, wh, delta }),
        1 => (sku.clone(), wh.clone(), 0..12u64).prop_map(|(sku, wh, on_hand)| Op::SetOnHand { sku, wh, on_hand }),
        2 => (sku.clone(), wh.clone(), 0..3usize, 0..4u64).prop_map(|(sku, wh, bucket, qty)| Op::SetBucket { sku, wh, bucket, qty }),
        2 => (sku.clone(), wh.clone(), wh.clone(), 0..5u32).prop_map(|(sku, from, to, qty)| Op::Transfer { sku, from, to, qty }),
        1 => (sku, wh.clone(), 0..4u32, any::<bool>()).prop_map(|(sku, wh, qty, damaged)| Op::Return { sku, wh, qty, damaged }),
        2 => (prop_oneof![9 => 1..7u32, 1 => Just(0u32)], prop_oneof![9 => 1..4u32, 1 => Just(0u32)], 0..2_000u64, 0..6_000u64)
            .prop_map(|(pool, limit, start_in, length)| Op::CreateFlash { pool, limit, start_in, length }),
        2 => (1..4u64, wh, 0..6u32, 0..8_000u64).prop_map(|(po, wh, qty, eta_in)| Op::Expect { po, wh, qty, eta_in }),
        1 => (1..4u64, 0..8_000u64).prop_map(|(po, eta_in)| Op::Reschedule { po, eta_in }),
        2 => (1..4u64, 0..6u32).prop_map(|(po, qty)| Op::ReceivePo { po, qty }),
        1 => (prop_oneof![9 => 0..=10_000u32, 1 => Just(10_001u32)], 0..4u32).prop_map(|(ratio_bp, floor)| Op::Policy { ratio_bp, floor }),
    ]
}

// ---------------------------------------------------------------- the model

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct MCell {
    on_hand: u64,
    reserved: u64,
    pooled: u64,
    /// safety, damaged, quality control
    buckets: [u64; 3],
}

impl MCell {
    fn committed(&self) -> u64 {
        self.reserved + self.pooled + self.buckets[1] + self.buckets[2]
    }
    fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.committed() + self.buckets[0])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MState {
    Held,
    Confirmed,
    Deposit,
    Paid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MEnding {
    Expired,
    BalanceMissed,
    Cancelled,
    Shipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MCampaign {
    None,
    Flash,
    Presale,
}

#[derive(Clone, Debug)]
struct MRes {
    state: MState,
    expires: u64,
    allocs: Vec<(u32, u16, u32)>,
    campaign: MCampaign,
    customer: u64,
    campaign_units: u32,
    outstanding: u32,
}

#[derive(Clone, Debug)]
struct MFlash {
    pool: BTreeMap<u16, u64>,
    limit: u32,
    starts: u64,
    ends: u64,
    closed: bool,
    per_customer: BTreeMap<u64, u32>,
}

impl MFlash {
    fn open(&self, now: u64) -> bool {
        !self.closed && self.starts <= now && now < self.ends
    }
    fn remaining(&self) -> u64 {
        self.pool.values().sum()
    }
}

#[derive(Clone, Debug, Default)]
struct MPresale {
    sold: u32,
    closed: bool,
    per_customer: BTreeMap<u64, u32>,
    queue: VecDeque<(ReservationId, u32)>,
    /// (po, warehouse, qty, eta)
    pos: Vec<(u64, u16, u32, u64)>,
}

#[derive(Debug)]
struct Model {
    now: u64,
    cells: BTreeMap<(u32, u16), MCell>,
    live: BTreeMap<ReservationId, MRes>,
    ended: BTreeMap<ReservationId, MEnding>,
    keys: BTreeMap<oms_engine::command::IdempotencyKey, ReservationId>,
    flash: Option<MFlash>,
    presale: MPresale,
    ratio_bp: u32,
    floor: u32,
    /// Signed unit flows into on-hand.
    receipts: i128,
    adjustments: i128,
    returns: i128,
    shipped: i128,
}

fn is_stocked(sku: u32) -> bool {
    STOCKED.contains(&sku)
}

fn bump(map: &mut BTreeMap<u64, u32>, customer: u64, delta: i64) {
    let held = map.entry(customer).or_insert(0);
    *held = (i64::from(*held) + delta) as u32;
    if *held == 0 {
        map.remove(&customer);
    }
}

impl Model {
    fn cell(&self, sku: u32, wh: u16) -> MCell {
        self.cells.get(&(sku, wh)).copied().unwrap_or_default()
    }
    fn cell_mut(&mut self, sku: u32, wh: u16) -> &mut MCell {
        self.cells.entry((sku, wh)).or_default()
    }
    fn available(&self, sku: u32) -> u64 {
        WAREHOUSES.iter().map(|(w, _)| self.cell(sku, *w).available()).sum()
    }
    fn sellable(&self, sku: u32, available: u64) -> u64 {
        let (ratio, cap) = if sku == CHANNEL_EXCEPTION.0 {
            (CHANNEL_EXCEPTION.1, u64::from(CHANNEL_EXCEPTION.2))
        } else {
            (self.ratio_bp, u64::MAX)
        };
        let share = available * u64::from(ratio) / 10_000;
        share.max(u64::from(self.floor).min(available)).min(available).min(cap)
    }
    fn presale_open(&self) -> bool {
        !self.presale.closed && self.now < PRESALE_ENDS
    }

    /// End a live reservation: return units (to an open flash pool for its flash line), forget its
    /// presale place and quota, lower the customer's campaign count.
    fn end(&mut self, id: ReservationId, ending: MEnding) {
        let r = self.live.remove(&id).expect("live");
        let now = self.now;
        let pool_open = r.campaign == MCampaign::Flash && self.flash.as_ref().is_some_and(|f| f.open(now));
        for &(sku, wh, qty) in &r.allocs {
            let q = u64::from(qty);
            let cell = self.cell_mut(sku, wh);
            cell.reserved -= q;
            if pool_open && sku == FLASH_SKU {
                cell.pooled += q;
                *self.flash.as_mut().unwrap().pool.entry(wh).or_insert(0) += q;
            }
        }
        match r.campaign {
            MCampaign::Flash => {
                bump(&mut self.flash.as_mut().unwrap().per_customer, r.customer, -i64::from(r.campaign_units))
            }
            MCampaign::Presale => {
                self.presale.queue.retain(|(q, _)| *q != id);
                self.presale.sold -= r.campaign_units;
                bump(&mut self.presale.per_customer, r.customer, -i64::from(r.campaign_units));
            }
            MCampaign::None => {}
        }
        self.ended.insert(id, ending);
    }

    fn tick(&mut self) {
        let now = self.now;
        let due: Vec<_> = self
            .live
            .iter()
            .filter(|(_, r)| matches!(r.state, MState::Held | MState::Deposit) && r.expires <= now)
            .map(|(id, r)| (*id, r.state))
            .collect();
        for (id, state) in due {
            self.end(id, if state == MState::Deposit { MEnding::BalanceMissed } else { MEnding::Expired });
        }
        if let Some(f) = self.flash.as_mut() {
            if !f.closed && f.ends <= now {
                f.closed = true;
                let pool = std::mem::take(&mut f.pool);
                for (wh, qty) in pool {
                    self.cells.get_mut(&(FLASH_SKU, wh)).unwrap().pooled -= qty;
                }
            }
        }
        if !self.presale.closed && PRESALE_ENDS <= now {
            self.presale.closed = true;
        }
    }

    /// Promise of each queued deposit: POs in (eta, po) order, first come first served.
    fn promises(&self) -> Vec<(ReservationId, Option<u64>)> {
        let mut pos: Vec<_> = self.presale.pos.iter().map(|&(po, _, qty, eta)| (eta, po, u64::from(qty))).collect();
        pos.sort();
        let mut pos = pos.into_iter();
        let mut current = pos.next();
        let mut out = Vec::new();
        for &(id, outstanding) in &self.presale.queue {
            let mut needed = u64::from(outstanding);
            let mut promise = None;
            while needed > 0 {
                let Some((eta, _, left)) = current.as_mut() else {
                    break;
                };
                let take = (*left).min(needed);
                *left -= take;
                needed -= take;
                promise = Some(*eta);
                if *left == 0 {
                    current = pos.next();
                }
            }
            out.push((id, if needed == 0 { promise } else { None }));
        }
        out
    }
}

// ---------------------------------------------------------------- the runner

struct Run {
    engine: ShardedEngine,
    model: Model,
    /// Every reserve request sent (with the id the caller chose), for retries.
    requests: Vec<ReserveRequest>,
    /// Every full reservation id ever aimed at (successful or not), for confirm/release/ship.
    targets: Vec<ReservationId>,
    seq: u64,
}

fn partition_of(sku: u32) -> u32 {
    sku % PARTS
}

fn expand(lines: &[Line]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut add = |sku: u32, qty: u32| match out.iter_mut().find(|(s, _)| *s == sku) {
        Some((_, q)) => *q += qty,
        None => out.push((sku, qty)),
    };
    for l in lines {
        if l.sku.0 == KIT {
            for (c, q) in KIT_PARTS {
                add(c, q * l.qty);
            }
        } else {
            add(l.sku.0, l.qty);
        }
    }
    out
}

/// What one step returns: (model says ok, engine result, events).
type Applied = (bool, Result<(), EngineError>, Vec<Event>);

impl Run {
    fn new() -> Self {
        let engine = ShardedEngine::new(PARTS, Limits::default()).with_journal();
        let model = Model {
            now: START,
            cells: BTreeMap::new(),
            live: BTreeMap::new(),
            ended: BTreeMap::new(),
            keys: BTreeMap::new(),
            flash: None,
            presale: MPresale::default(),
            ratio_bp: 5_000,
            floor: 2,
            receipts: 0,
            adjustments: 0,
            returns: 0,
            shipped: 0,
        };
        let mut run = Run { engine, model, requests: Vec::new(), targets: Vec::new(), seq: 0 };
        for (id, priority) in WAREHOUSES {
            run.setup(Command::DefineWarehouse {
                id: WarehouseId(id),
                code: format!("W{id}"),
                region: "eu".into(),
                priority,
            });
        }
        for sku in STOCKED {
            run.setup(Command::DefineSku { id: SkuId(sku), code: format!("S{sku}"), low_stock_threshold: 3 });
        }
        run.setup(Command::DefineKit {
            id: SkuId(KIT),
            code: "KIT".into(),
            components: KIT_PARTS.iter().map(|&(sku, qty)| KitComponent { sku: SkuId(sku), qty }).collect(),
        });
        run.setup(Command::CreatePresale(PresaleSpec {
            id: PRESALE,
            sku: SkuId(PRESALE_SKU),
            quota: PRESALE_QUOTA,
            per_customer_limit: PRESALE_LIMIT,
            starts_at_ms: 0,
            ends_at_ms: PRESALE_ENDS,
            balance_window_ms: BALANCE_WINDOW,
        }));
        run.setup(policy_command(5_000, 2));
        // Opening stock: 3 units of every SKU in warehouse 1, 2 in warehouse 2.
        for sku in STOCKED {
            for (wh, qty) in [(1u16, 3u32), (2, 2)] {
                run.setup(Command::Receive { sku: SkuId(sku), warehouse: WarehouseId(wh), qty });
                run.model.cell_mut(sku, wh).on_hand += u64::from(qty);
                run.model.receipts += i128::from(qty);
            }
        }
        run
    }

    fn setup(&mut self, command: Command) {
        let mut out = Vec::new();
        self.engine.apply(&Envelope { now_ms: self.model.now, command }, &mut out).expect("setup");
    }

    fn send(&mut self, command: Command) -> (Result<(), EngineError>, Vec<Event>) {
        let mut out = Vec::new();
        let result = self.engine.apply(&Envelope { now_ms: self.model.now, command }, &mut out);
        (result, out)
    }

    /// Mostly a live reservation matching `pred`, else as `target`.
    fn target_where(&self, i: usize, pred: impl Fn(&MRes) -> bool) -> ReservationId {
        let matching: Vec<_> = self.model.live.iter().filter(|(_, r)| pred(r)).map(|(id, _)| *id).collect();
        if !i.is_multiple_of(5) && !matching.is_empty() {
            return matching[(i / 5) % matching.len()];
        }
        self.target(i)
    }

    /// Mostly a live reservation; sometimes any id ever aimed at (ended, refused) or an unknown one.
    fn target(&self, i: usize) -> ReservationId {
        if !i.is_multiple_of(5) && !self.model.live.is_empty() {
            return *self.model.live.keys().nth((i / 5) % self.model.live.len()).unwrap();
        }
        if self.targets.is_empty() || i.is_multiple_of(7) {
            ReservationId(routing::reservation_id(999, PartitionSet(1)).0)
        } else {
            self.targets[i % self.targets.len()]
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let journal_before = self.engine.journal().len();
        let is_reserve = matches!(op, Op::Reserve { .. } | Op::Retry(_));
        let (expected, result, events) = self.apply(op)?;
        prop_assert_eq!(result.is_ok(), expected, "op {:?}: engine {:?}", op, result);
        if result.is_err() {
            // A refusal journals nothing, except what compensation undoes: every reserve part
            // made is released (Compensation) in its partition, every key claimed is forgotten.
            let added = &self.engine.journal()[journal_before..];
            if is_reserve {
                let mut open: Vec<(u32, &'static str)> = Vec::new();
                for (p, envelope) in added {
                    match &envelope.command {
                        Command::Reserve(_) => open.push((*p, "part")),
                        Command::ClaimKey { .. } => open.push((*p, "claim")),
                        Command::Release { cause: ReleaseCause::Compensation, .. } => {
                            let i = open.iter().position(|o| *o == (*p, "part"));
                            prop_assert!(i.is_some(), "compensation without a part: {:?}", added);
                            open.remove(i.unwrap_or(0));
                        }
                        Command::ForgetKey { .. } => {
                            // Of a ClaimKey, or of the claim a home part made with its reserve.
                            match open.iter().position(|o| *o == (*p, "claim")) {
                                Some(i) => drop(open.remove(i)),
                                None => prop_assert!(
                                    added.iter().any(|(q, e)| q == p && matches!(e.command, Command::Reserve(_))),
                                    "forget without a claim: {:?}",
                                    added
                                ),
                            }
                        }
                        other => prop_assert!(false, "a refused reserve journaled {:?}", other),
                    }
                }
                prop_assert!(open.is_empty(), "not undone: {:?} in {:?}", open, added);
            } else {
                prop_assert!(added.is_empty() && events.is_empty(), "refused {:?} journaled or emitted", op);
            }
        }
        self.compare()
    }

    /// Predict, run, and (on success) update the model. Returns (model says ok, engine result, events).
    fn apply(&mut self, op: &Op) -> Result<Applied, TestCaseError> {
        let m = &self.model;
        let now = m.now;
        let sku_of = |i: usize| SKU_CHOICES[i];
        let wh_of = |i: usize| WAREHOUSES[i].0;
        Ok(match op.clone() {
            Op::Tick => {
                let (r, e) = self.send(Command::Tick { budget: 1_000 });
                self.model.tick();
                (true, r, e)
            }
            Op::Reserve { lines, customer, channel, keyed, ttl, campaign } => {
                self.seq += 1;
                let mut lines: Vec<Line> = lines.iter().map(|&(s, qty)| Line { sku: SkuId(sku_of(s)), qty }).collect();
                let campaign = match campaign {
                    1 => {
                        lines.insert(0, Line { sku: SkuId(FLASH_SKU), qty: lines[0].qty.max(1) });
                        Some(FLASH)
                    }
                    2 => {
                        lines.truncate(1);
                        if !self.seq.is_multiple_of(4) {
                            lines[0].sku = SkuId(PRESALE_SKU);
                        }
                        Some(PRESALE)
                    }
                    3 => Some(CampaignId(77)),
                    _ => None,
                };
                let request = ReserveRequest {
                    id: ReservationId(self.seq),
                    lines,
                    ttl_ms: ttl,
                    idempotency_key: keyed.then(|| {
                        Box::new(oms_engine::command::IdempotencyKey {
                            scope: "model".into(),
                            key: format!("k{}", 10_000 + self.seq),
                        })
                    }),
                    fingerprint: 0,
                    customer: CustomerId(customer),
                    channel: ChannelId(channel),
                    campaign,
                    part: PartInfo::SINGLE,
                    prefer_warehouses: None,
                };
                self.requests.push(request.clone());
                self.reserve(request)?
            }
            Op::Retry(i) => {
                if self.requests.is_empty() {
                    return Ok((true, Ok(()), Vec::new()));
                }
                let request = self.requests[i % self.requests.len()].clone();
                self.reserve(request)?
            }
            Op::Confirm(i) => {
                let id = self.target(i);
                let expected = match m.live.get(&id) {
                    Some(r) => match r.state {
                        MState::Held => r.expires > now,
                        MState::Confirmed | MState::Paid => true,
                        MState::Deposit => false,
                    },
                    None => false,
                };
                let (r, e) = self.send(Command::Confirm { id });
                if expected {
                    let res = self.model.live.get_mut(&id).unwrap();
                    if res.state == MState::Held {
                        res.state = MState::Confirmed;
                    }
                }
                (expected, r, e)
            }
            Op::PayBalance(i) => {
                let id = self.target_where(i, |r| r.campaign == MCampaign::Presale);
                let expected = match m.live.get(&id) {
                    Some(r) => match r.state {
                        MState::Deposit => r.expires > now,
                        MState::Paid => true,
                        _ => false,
                    },
                    None => false,
                };
                let (r, e) = self.send(Command::PayBalance { id });
                if expected {
                    self.model.live.get_mut(&id).unwrap().state = MState::Paid;
                }
                (expected, r, e)
            }
            Op::Release(i) => {
                let id = self.target(i);
                let expected = m.live.contains_key(&id);
                let (r, e) = self.send(Command::Release { id, cause: ReleaseCause::Cancel });
                if expected {
                    self.model.end(id, MEnding::Cancelled);
                }
                (expected, r, e)
            }
            Op::Ship(i) => {
                let id = self.target_where(i, |r| matches!(r.state, MState::Confirmed | MState::Paid));
                let expected = m
                    .live
                    .get(&id)
                    .is_some_and(|r| r.state == MState::Confirmed || (r.state == MState::Paid && r.outstanding == 0));
                let (r, e) = self.send(Command::Ship { id });
                if expected {
                    let res = self.model.live.remove(&id).unwrap();
                    for (sku, wh, qty) in res.allocs {
                        let cell = self.model.cell_mut(sku, wh);
                        cell.on_hand -= u64::from(qty);
                        cell.reserved -= u64::from(qty);
                        self.model.shipped += i128::from(qty);
                    }
                    self.model.ended.insert(id, MEnding::Shipped);
                }
                (expected, r, e)
            }
            Op::Receive { sku, wh, qty } => {
                let (sku, wh) = (sku_of(sku), wh_of(wh));
                let expected = is_stocked(sku) && qty > 0;
                let (r, e) = self.send(Command::Receive { sku: SkuId(sku), warehouse: WarehouseId(wh), qty });
                if expected {
                    self.model.cell_mut(sku, wh).on_hand += u64::from(qty);
                    self.model.receipts += i128::from(qty);
                }
                (expected, r, e)
            }
            Op::Adjust { sku, wh, delta } => {
                let (sku, wh) = (sku_of(sku), wh_of(wh));
                let c = m.cell(sku, wh);
                let target = i128::from(c.on_hand) + i128::from(delta);
                let expected = is_stocked(sku) && delta != 0 && target >= i128::from(c.committed());
                let (r, e) = self.send(Command::Adjust { sku: SkuId(sku), warehouse: WarehouseId(wh), delta });
                if expected {
                    self.model.cell_mut(sku, wh).on_hand = target as u64;
                    self.model.adjustments += i128::from(delta);
                }
                (expected, r, e)
            }
            Op::SetOnHand { sku, wh, on_hand } => {
                let (sku, wh) = (sku_of(sku), wh_of(wh));
                let c = m.cell(sku, wh);
                let expected = is_stocked(sku) && on_hand >= c.committed();
                let (r, e) = self.send(Command::SetOnHand { sku: SkuId(sku), warehouse: WarehouseId(wh), on_hand });
                if expected {
                    self.model.adjustments += i128::from(on_hand) - i128::from(c.on_hand);
                    self.model.cell_mut(sku, wh).on_hand = on_hand;
                }
                (expected, r, e)
            }
            Op::SetBucket { sku, wh, bucket, qty } => {
                let (sku, wh) = (sku_of(sku), wh_of(wh));
                let mut c = m.cell(sku, wh);
                c.buckets[bucket] = qty;
                let expected = is_stocked(sku) && c.committed() <= c.on_hand;
                let b = [Bucket::Safety, Bucket::Damaged, Bucket::QualityControl][bucket];
                let (r, e) =
                    self.send(Command::SetBucket { sku: SkuId(sku), warehouse: WarehouseId(wh), bucket: b, qty });
                if expected {
                    *self.model.cell_mut(sku, wh) = c;
                }
                (expected, r, e)
            }
            Op::Transfer { sku, from, to, qty } => {
                let (sku, from, to) = (sku_of(sku), wh_of(from), wh_of(to));
                let expected =
                    is_stocked(sku) && from != to && qty > 0 && m.cell(sku, from).available() >= u64::from(qty);
                let (r, e) =
                    self.send(Command::Transfer { sku: SkuId(sku), from: WarehouseId(from), to: WarehouseId(to), qty });
                if expected {
                    self.model.cell_mut(sku, from).on_hand -= u64::from(qty);
                    self.model.cell_mut(sku, to).on_hand += u64::from(qty);
                }
                (expected, r, e)
            }
            Op::Return { sku, wh, qty, damaged } => {
                let (sku, wh) = (sku_of(sku), wh_of(wh));
                let expected = is_stocked(sku) && qty > 0;
                let (r, e) =
                    self.send(Command::ReturnToStock { sku: SkuId(sku), warehouse: WarehouseId(wh), qty, damaged });
                if expected {
                    let c = self.model.cell_mut(sku, wh);
                    c.on_hand += u64::from(qty);
                    if damaged {
                        c.buckets[1] += u64::from(qty);
                    }
                    self.model.returns += i128::from(qty);
                }
                (expected, r, e)
            }
            Op::CreateFlash { pool, limit, start_in, length } => {
                let starts = now + start_in;
                let ends = starts + length;
                let expected = m.flash.is_none()
                    && pool > 0
                    && limit > 0
                    && ends > starts
                    && ends > now
                    && m.available(FLASH_SKU) >= u64::from(pool);
                let (r, e) = self.send(Command::CreateFlashSale(FlashSaleSpec {
                    id: FLASH,
                    sku: SkuId(FLASH_SKU),
                    pool_qty: pool,
                    per_customer_limit: limit,
                    starts_at_ms: starts,
                    ends_at_ms: ends,
                }));
                if expected && r.is_ok() {
                    let mut carved = BTreeMap::new();
                    for ev in &e {
                        if let Event::StockMoved(mv) = ev {
                            prop_assert_eq!(mv.kind, MovementKind::PooledForCampaign);
                            let c = self.model.cell_mut(FLASH_SKU, mv.warehouse.0);
                            prop_assert!(mv.qty <= c.available(), "pooled more than available: {:?}", mv);
                            c.pooled += mv.qty;
                            carved.insert(mv.warehouse.0, mv.qty);
                        }
                    }
                    prop_assert_eq!(carved.values().sum::<u64>(), u64::from(pool));
                    self.model.flash = Some(MFlash {
                        pool: carved,
                        limit,
                        starts,
                        ends,
                        closed: false,
                        per_customer: BTreeMap::new(),
                    });
                }
                (expected, r, e)
            }
            Op::Expect { po, wh, qty, eta_in } => {
                let wh = wh_of(wh);
                let expected = qty > 0;
                let (r, e) = self.send(Command::ExpectIncoming {
                    po: PurchaseOrderId(po),
                    sku: SkuId(PRESALE_SKU),
                    warehouse: WarehouseId(wh),
                    qty,
                    eta_ms: now + eta_in,
                });
                if expected {
                    self.model.presale.pos.retain(|p| p.0 != po);
                    self.model.presale.pos.push((po, wh, qty, now + eta_in));
                }
                (expected, r, e)
            }
            Op::Reschedule { po, eta_in } => {
                let expected = m.presale.pos.iter().any(|p| p.0 == po);
                let (r, e) = self.send(Command::RescheduleIncoming {
                    po: PurchaseOrderId(po),
                    sku: SkuId(PRESALE_SKU),
                    eta_ms: now + eta_in,
                });
                if expected {
                    self.model.presale.pos.iter_mut().filter(|p| p.0 == po).for_each(|p| p.3 = now + eta_in);
                }
                (expected, r, e)
            }
            Op::ReceivePo { po, qty } => {
                let found = m.presale.pos.iter().find(|p| p.0 == po).copied();
                let (r, e) =
                    self.send(Command::ReceivePurchaseOrder { po: PurchaseOrderId(po), sku: SkuId(PRESALE_SKU), qty });
                if let Some((_, wh, _, _)) = found {
                    let model = &mut self.model;
                    model.presale.pos.retain(|p| p.0 != po);
                    model.cell_mut(PRESALE_SKU, wh).on_hand += u64::from(qty);
                    model.receipts += i128::from(qty);
                    let mut left = qty;
                    while left > 0 {
                        let Some(front) = model.presale.queue.front_mut() else {
                            break;
                        };
                        let (id, take) = (front.0, left.min(front.1));
                        front.1 -= take;
                        if front.1 == 0 {
                            model.presale.queue.pop_front();
                        }
                        left -= take;
                        model.cell_mut(PRESALE_SKU, wh).reserved += u64::from(take);
                        let res = model.live.get_mut(&id).unwrap();
                        res.outstanding -= take;
                        match res.allocs.iter_mut().find(|a| a.0 == PRESALE_SKU && a.1 == wh) {
                            Some(a) => a.2 += take,
                            None => res.allocs.push((PRESALE_SKU, wh, take)),
                        }
                    }
                }
                (found.is_some(), r, e)
            }
            Op::Policy { ratio_bp, floor } => {
                let expected = ratio_bp <= 10_000;
                let (r, e) = self.send(policy_command(ratio_bp, floor));
                if expected {
                    self.model.ratio_bp = ratio_bp;
                    self.model.floor = floor;
                }
                (expected, r, e)
            }
        })
    }

    fn reserve(&mut self, request: ReserveRequest) -> Result<Applied, TestCaseError> {
        let m = &self.model;
        let now = m.now;
        // A known key answers the first result and changes nothing.
        if let Some(key) = request.idempotency_key.as_deref() {
            if let Some(&first) = m.keys.get(key) {
                let (r, e) = self.send(Command::Reserve(request));
                // (Its home, if it holds none of the lines, says the key is known: KeyClaimed.)
                prop_assert!(
                    e.iter().any(|ev| matches!(ev, Event::Reserved { .. }))
                        && e.iter().all(|ev| matches!(ev,
                            Event::Reserved { id, replayed: true, .. } | Event::KeyClaimed { id, replayed: true }
                                if *id == first)),
                    "{:?}",
                    e
                );
                return Ok((true, r, e));
            }
        }
        let lines = &request.lines;
        let mut ok = !lines.is_empty() && lines.iter().all(|l| l.qty > 0);
        for (i, l) in lines.iter().enumerate() {
            ok &= !lines[..i].iter().any(|o| o.sku == l.sku);
        }
        let expanded = expand(lines);
        ok &= expanded.iter().all(|(s, _)| is_stocked(*s));
        ok &= (1..=Limits::default().max_ttl_ms).contains(&request.ttl_ms);
        let mut set = PartitionSet::default();
        for (s, _) in &expanded {
            set.insert(partition_of(*s));
        }
        let id = routing::reservation_id(request.id.0, set);
        ok &= !m.live.contains_key(&id) && !m.ended.contains_key(&id);
        let kind = match request.campaign {
            None => MCampaign::None,
            Some(FLASH) => MCampaign::Flash,
            Some(PRESALE) => MCampaign::Presale,
            Some(_) => {
                ok = false;
                MCampaign::None
            }
        };
        let customer = request.customer.0;
        let mut campaign_qty = 0;
        match kind {
            MCampaign::Flash => match &m.flash {
                None => ok = false,
                Some(f) => match expanded.iter().find(|(s, _)| *s == FLASH_SKU) {
                    None => ok = false,
                    Some(&(_, qty)) => {
                        campaign_qty = qty;
                        let held = f.per_customer.get(&customer).copied().unwrap_or(0);
                        ok &= f.open(now) && held + qty <= f.limit && f.remaining() >= u64::from(qty);
                    }
                },
            },
            MCampaign::Presale => {
                // The presale part must be exactly one line of the presale SKU.
                let part: Vec<_> =
                    expanded.iter().filter(|(s, _)| partition_of(*s) == partition_of(PRESALE_SKU)).collect();
                match part.as_slice() {
                    [&(sku, qty)] if sku == PRESALE_SKU => {
                        campaign_qty = qty;
                        let held = m.presale.per_customer.get(&customer).copied().unwrap_or(0);
                        ok &= m.presale_open() && held + qty <= PRESALE_LIMIT && m.presale.sold + qty <= PRESALE_QUOTA;
                    }
                    _ => ok = false,
                }
                // Other partitions' lines would be general holds under the same id; the generator
                // only sends single-line presale requests.
                ok &= expanded.len() == 1;
            }
            MCampaign::None => {}
        }
        // General lines: enough available, and within the channel's share.
        for &(sku, qty) in &expanded {
            let from_campaign = (kind == MCampaign::Flash && sku == FLASH_SKU) || kind == MCampaign::Presale;
            if from_campaign || !is_stocked(sku) {
                continue;
            }
            let available = m.available(sku);
            ok &= available >= u64::from(qty);
            if request.channel == ChannelId(CHANNEL) {
                ok &= m.sellable(sku, available) >= u64::from(qty);
            }
        }
        let ttl = request.ttl_ms;
        let key = request.idempotency_key.clone();
        self.targets.push(id);
        let (r, events) = self.send(Command::Reserve(request));
        if !ok || r.is_err() {
            return Ok((ok, r, events));
        }
        // Apply the engine's allocations to the model, checking they are legal.
        let mut allocs: Vec<(u32, u16, u32)> = Vec::new();
        let mut per_partition: BTreeMap<u32, Vec<(u32, u16, u32)>> = BTreeMap::new();
        for e in &events {
            if let Event::Reserved { id: rid, allocations, replayed, .. } = e {
                prop_assert_eq!(*rid, id);
                prop_assert!(!replayed);
                for a in allocations {
                    allocs.push((a.sku.0, a.warehouse.0, a.qty));
                    per_partition.entry(partition_of(a.sku.0)).or_default().push((a.sku.0, a.warehouse.0, a.qty));
                }
            }
        }
        // One warehouse (first in preference order) when one can fill a partition's general lines.
        for (p, part_allocs) in &per_partition {
            let general: Vec<_> = expanded
                .iter()
                .filter(|(s, _)| partition_of(*s) == *p && !(kind == MCampaign::Flash && *s == FLASH_SKU))
                .collect();
            if general.is_empty() {
                continue;
            }
            let single = WAREHOUSE_ORDER
                .iter()
                .find(|&&w| general.iter().all(|(s, q)| self.model.cell(*s, w).available() >= u64::from(*q)));
            if let Some(&w) = single {
                for (s, aw, _) in part_allocs {
                    if !(kind == MCampaign::Flash && *s == FLASH_SKU) {
                        prop_assert_eq!(
                            *aw,
                            w,
                            "expected one shipment from warehouse {} for {:?}: {:?}",
                            w,
                            general,
                            part_allocs
                        );
                    }
                }
            }
        }
        for &(sku, qty) in &expanded {
            let sum: u32 = allocs.iter().filter(|a| a.0 == sku).map(|a| a.2).sum();
            let want = if kind == MCampaign::Presale { 0 } else { qty };
            prop_assert_eq!(sum, want, "allocated units of SKU {}", sku);
        }
        let model = &mut self.model;
        for &(sku, wh, qty) in &allocs {
            let q = u64::from(qty);
            if kind == MCampaign::Flash && sku == FLASH_SKU {
                let f = model.flash.as_mut().unwrap();
                let left = f.pool.get_mut(&wh);
                prop_assert!(left.as_ref().is_some_and(|l| **l >= q), "took {} from pool {:?} in {}", q, f.pool, wh);
                *left.unwrap() -= q;
                let c = model.cell_mut(sku, wh);
                c.pooled -= q;
                c.reserved += q;
            } else {
                let c = model.cell_mut(sku, wh);
                prop_assert!(c.available() >= q, "allocated {} of SKU {} in {} with {:?}", q, sku, wh, c);
                c.reserved += q;
            }
        }
        let (state, expires) = match kind {
            MCampaign::Presale => (MState::Deposit, now + BALANCE_WINDOW),
            _ => (MState::Held, now + ttl),
        };
        match kind {
            MCampaign::Flash => {
                bump(&mut model.flash.as_mut().unwrap().per_customer, customer, i64::from(campaign_qty))
            }
            MCampaign::Presale => {
                bump(&mut model.presale.per_customer, customer, i64::from(campaign_qty));
                model.presale.sold += campaign_qty;
                model.presale.queue.push_back((id, campaign_qty));
                let promise = model.promises().into_iter().find(|(q, _)| *q == id).and_then(|(_, p)| p);
                let reported = events.iter().find_map(|e| match e {
                    Event::Reserved { promise_ms, .. } => Some(*promise_ms),
                    _ => None,
                });
                prop_assert_eq!(reported, Some(promise), "promise of a new deposit");
            }
            MCampaign::None => {}
        }
        if let Some(key) = key {
            model.keys.insert(*key, id);
        }
        model.live.insert(
            id,
            MRes {
                state,
                expires,
                allocs,
                campaign: kind,
                customer,
                campaign_units: campaign_qty,
                outstanding: if kind == MCampaign::Presale { campaign_qty } else { 0 },
            },
        );
        Ok((true, r, events))
    }

    /// Engine state against the model, plus invariants.
    fn compare(&self) -> Result<(), TestCaseError> {
        let m = &self.model;
        let mut total_on_hand: i128 = 0;
        for sku in STOCKED {
            let view = self.engine.stock(SkuId(sku)).unwrap();
            for (wh, _) in WAREHOUSES {
                let want = m.cell(sku, wh);
                let got = view.warehouses.iter().find(|w| w.warehouse == WarehouseId(wh));
                let got = got.map_or(MCell::default(), |w| MCell {
                    on_hand: w.on_hand,
                    reserved: w.reserved,
                    pooled: w.pooled,
                    buckets: [w.safety, w.damaged, w.quality_control],
                });
                prop_assert_eq!(got, want, "SKU {} warehouse {}", sku, wh);
                prop_assert!(got.reserved <= got.on_hand);
                if let Some(w) = view.warehouses.iter().find(|w| w.warehouse == WarehouseId(wh)) {
                    prop_assert_eq!(w.available, want.available());
                }
                total_on_hand += i128::from(want.on_hand);
            }
            prop_assert_eq!(self.engine.available(SkuId(sku)), Some(m.available(sku)));
        }
        prop_assert_eq!(total_on_hand, m.receipts + m.adjustments + m.returns - m.shipped, "units not conserved");
        let kit = KIT_PARTS.iter().map(|&(s, q)| m.available(s) / u64::from(q)).min().unwrap();
        prop_assert_eq!(self.engine.available(SkuId(KIT)), Some(kit));
        if let Some(f) = &m.flash {
            prop_assert!(f.per_customer.values().all(|&u| u <= f.limit));
            let view = self.engine.partitions()[partition_of(FLASH_SKU) as usize].campaign(FLASH).unwrap();
            prop_assert_eq!(view.remaining, f.remaining());
        }
        prop_assert!(m.presale.per_customer.values().all(|&u| u <= PRESALE_LIMIT));
        let presale_partition = &self.engine.partitions()[partition_of(PRESALE_SKU) as usize];
        prop_assert_eq!(
            presale_partition.campaign(PRESALE).unwrap().remaining,
            u64::from(PRESALE_QUOTA - m.presale.sold)
        );
        for (id, promise) in m.promises() {
            let view = presale_partition.reservation(id).unwrap();
            prop_assert_eq!(view.promise_ms, promise, "promise of {:?}", id);
            prop_assert_eq!(view.presale_outstanding, m.live[&id].outstanding);
        }
        for p in self.engine.partitions() {
            let report = p.check();
            prop_assert!(report.is_clean(), "partition {}: {:?}", p.index(), report);
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), TestCaseError> {
        let m = &self.model;
        // Reservation statuses in every partition holding a part.
        for (id, r) in &m.live {
            let want = match r.state {
                MState::Held => "held",
                MState::Confirmed => "confirmed",
                MState::Deposit => "deposit_held",
                MState::Paid => "balance_paid",
            };
            for p in routing::reservation_parts(*id).iter() {
                let view = self.engine.partitions()[p as usize].reservation(*id);
                prop_assert_eq!(view.map(|v| v.status), Some(want.to_owned()), "{:?}", id);
            }
        }
        for (id, ending) in &m.ended {
            let want = match ending {
                MEnding::Expired => "expired",
                MEnding::BalanceMissed => "balance_missed",
                MEnding::Cancelled => "released",
                MEnding::Shipped => "shipped",
            };
            for p in routing::reservation_parts(*id).iter() {
                let view = self.engine.partitions()[p as usize].reservation(*id);
                prop_assert_eq!(view.map(|v| v.status), Some(want.to_owned()), "{:?}", id);
            }
        }
        // Per-customer campaign counts, from the engine's own image.
        for p in self.engine.partitions() {
            for c in p.image().campaigns {
                let want: Vec<(CustomerId, u32)> = if c.id == FLASH {
                    m.flash.as_ref().unwrap().per_customer.iter().map(|(k, v)| (CustomerId(*k), *v)).collect()
                } else {
                    m.presale.per_customer.iter().map(|(k, v)| (CustomerId(*k), *v)).collect()
                };
                prop_assert_eq!(c.per_customer, want, "campaign {:?}", c.id);
                prop_assert!(c.per_customer_limit >= 1);
            }
        }
        assert_replay(&self.engine);
        Ok(())
    }
}

fn policy_command(ratio_bp: u32, floor: u32) -> Command {
    Command::SetChannelPolicy(ChannelPolicy {
        channel: ChannelId(CHANNEL),
        ratio_bp,
        floor,
        exceptions: vec![ChannelException {
            sku: SkuId(CHANNEL_EXCEPTION.0),
            ratio_bp: CHANNEL_EXCEPTION.1,
            cap: CHANNEL_EXCEPTION.2,
        }],
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4_096, ..ProptestConfig::default() })]

    /// Random command sequences (time advancing 0..1.5 s before each) agree with the model.
    #[test]
    fn engine_agrees_with_the_model(steps in prop::collection::vec((0..1_500u64, arb_op()), 1..40)) {
        let mut run = Run::new();
        run.compare()?;
        for (dt, op) in &steps {
            run.model.now += dt;
            run.step(op)?;
        }
        run.finish()?;
    }
}
