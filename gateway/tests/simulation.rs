//! Deterministic simulation of the partition runtime (issue 7, item 5).
//!
//! One seed decides everything: the catalog, simulated clients and their mix of requests, the
//! scheduler (which client submits, which partition runs a batch and how many queued jobs it
//! takes, when the clock moves and a tick expires reservations), and the fault plan (a simulated
//! storage that dies at its k-th operation, EIO on a flush, a power loss that tears or drops
//! unflushed writes, a failed or lost snapshot write, a crash during recovery, a clean restart).
//! The runtime under test is `PartitionCore`, the code the daemon's partition threads run, with
//! its log on `oms_wal::sim::SimulatedStorage`; recovery is `recover_partition`, the daemon's.
//!
//! Checked after every step (see `Sim::check_step`): `Partition::check()` clean and no cell
//! oversold in every partition; after every committed batch, the runtime's state equals a
//! reference partition that applied the same jobs in the same order, every job of the batch got
//! exactly one answer and it is the reference's answer, the log is durable up to the last record,
//! and the sold-out board matches; after a failed commit, nothing is acknowledged any more. After
//! every crash: recovery succeeds, recovers `n` records with `acknowledged <= n <= appended`, its
//! state equals the reference replay of exactly those `n` logged commands, and every acknowledged
//! reservation, confirm, release and ship is there.
//!
//! Seeds: `OMS_SIM_SEED=<n>` runs one (printing its steps), `OMS_SIM_SEEDS=<count>` runs
//! `OMS_SIM_FIRST..+count` (default first 0), otherwise the CI set of `CI_SEEDS`. A failure names
//! the seed and the command that replays it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oms_engine::command::{FlashSaleSpec, IdempotencyKey, Line, PartInfo, ReleaseCause, ReserveRequest};
use oms_engine::fastpath::SoldOutBoard;
use oms_engine::ids::partition_of;
use oms_engine::partition::PartitionImage;
use oms_engine::routing::{reservation_id, PartitionSet};
use oms_engine::{
    CampaignId, ChannelId, Command, CustomerId, EngineError, Envelope, Event, Limits, Outcome, Partition,
    ReservationId, SkuId, WarehouseId,
};
use oms_gateway::metrics::Metrics;
use oms_gateway::runtime::{
    failure_to_wire, recover_partition, reserved_response_of, AnswerShape, Failure, Job, Outbound, PartResult,
    PartitionCore, Query, QueryAnswer, Reply, SnapshotWriter, StorageHealth, WorkerConfig,
};
use oms_proto::{ErrorCode, Opcode, Response};
use oms_wal::sim::{CrashMode, SimRng, SimulatedStorage};
use oms_wal::{Lsn, Retention, Snapshot, WalConfig};
use tokio::sync::{mpsc, oneshot};

/// Seeds run by `cargo test` (CI).
const CI_SEEDS: u64 = 200;
/// Scheduler steps per seed.
const STEPS: usize = 400;
const WAREHOUSES: [u16; 3] = [1, 2, 3];
const STORAGE_FAILED: ErrorCode = ErrorCode::STORAGE_FAILED;

// ---------------------------------------------------------------- snapshots

/// Snapshots kept, as `oms_wal::SnapshotStore` keeps them.
const SNAPSHOTS_KEPT: usize = 2;

/// What the snapshot writer holds across the simulated process's life: written snapshots survive
/// a crash, an unfinished write does not (the real store writes a temp file and renames it). Like
/// the real store it keeps the newest two.
#[derive(Default)]
struct SnapState {
    durable: Vec<(Lsn, Vec<u8>)>,
    pending: Option<(Lsn, PartitionImage)>,
    /// Set by the scheduler: the pending write finishes (true) or fails (false) at the next poll.
    outcome: Option<bool>,
}

impl SnapState {
    fn complete(&mut self) -> Option<Result<Lsn, String>> {
        let (lsn, image) = self.pending.take()?;
        let bytes = oms_engine::codec::encode_image(&image).map_err(|e| e.to_string());
        Some(bytes.map(|b| {
            self.keep(lsn, b.to_vec());
            lsn
        }))
    }

    fn keep(&mut self, lsn: Lsn, bytes: Vec<u8>) {
        self.durable.push((lsn, bytes));
        let excess = self.durable.len().saturating_sub(SNAPSHOTS_KEPT);
        self.durable.drain(..excess);
    }
}

struct SimSnapshots(Arc<Mutex<SnapState>>);

impl SnapshotWriter for SimSnapshots {
    fn start(&mut self, _partition: u32, lsn: Lsn, image: PartitionImage) {
        let mut s = self.0.lock().unwrap();
        assert!(s.pending.is_none(), "a snapshot was started while another was in flight");
        s.pending = Some((lsn, image));
        s.outcome = None;
    }
    fn in_flight(&self) -> bool {
        self.0.lock().unwrap().pending.is_some()
    }
    fn poll(&mut self) -> Option<Result<Lsn, String>> {
        let mut s = self.0.lock().unwrap();
        match s.outcome.take()? {
            true => s.complete(),
            false => s.pending.take().map(|_| Err("simulated snapshot write failure".to_owned())),
        }
    }
    fn wait(&mut self) -> Option<Result<Lsn, String>> {
        self.0.lock().unwrap().complete()
    }
    fn write_encoded(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), String> {
        self.0.lock().unwrap().keep(lsn, bytes.to_vec());
        Ok(())
    }
    fn oldest_kept(&self) -> Option<Lsn> {
        self.0.lock().unwrap().durable.first().map(|(lsn, _)| *lsn)
    }
    fn forget_before(&mut self, lsn: Lsn) {
        self.0.lock().unwrap().durable.retain(|(l, _)| *l >= lsn);
    }
}

// ---------------------------------------------------------------- what the harness expects

/// How a request is answered, and how the harness reads the answer back.
enum Waiting {
    Conn { request_id: u64, shape: AnswerShape },
    Part(oneshot::Receiver<PartResult>),
    Query(oneshot::Receiver<QueryAnswer>),
}

/// What the client does with an acknowledgement (its model of the world).
#[derive(Clone, Debug)]
enum Effect {
    Nothing,
    Reserved,
    Confirmed(ReservationId),
    Released(ReservationId),
    Shipped(ReservationId),
    FlashSale { id: CampaignId, sku: SkuId },
}

/// A job the partition took into its current batch, with the reference's verdict.
struct Expect {
    client: usize,
    what: String,
    waiting: Waiting,
    /// `None` when the log was already poisoned: the answer must be a storage failure.
    reference: Option<(Result<Outcome, EngineError>, Vec<Event>)>,
    /// The query answer the reference gives (compared loosely, see `check_query`).
    query: Option<QueryAnswer>,
    effect: Effect,
}

/// A job submitted to a partition's queue, not yet taken into a batch.
struct Queued {
    job: Job,
    client: usize,
    what: String,
    waiting: Waiting,
    effect: Effect,
}

// ---------------------------------------------------------------- clients

#[derive(Clone, Debug)]
struct Held {
    partition: u32,
    allocations: Vec<(u32, u16, u32)>,
    /// The last acknowledged operation on it: "reserved", "confirmed", "released", "shipped".
    last: &'static str,
}

struct Client {
    tx: mpsc::UnboundedSender<Outbound>,
    rx: mpsc::UnboundedReceiver<Outbound>,
    next_request: u64,
    /// Keyed reserve requests this client sent (for retries), acknowledged or not.
    keyed: Vec<ReserveRequest>,
}

// ---------------------------------------------------------------- partitions

struct Part {
    index: u32,
    storage: SimulatedStorage,
    snaps: Arc<Mutex<SnapState>>,
    core: PartitionCore,
    queue: VecDeque<Queued>,
    batch: Vec<Expect>,
    /// The reference: applies exactly what the runtime took, in the same order.
    reference: Partition,
    /// Commands the reference changed state with: what the log must hold, LSN = index + 1.
    journal: Vec<Envelope>,
    /// Highest LSN a delivered acknowledgement depended on.
    acked_lsn: Lsn,
    last_tick_ms: u64,
    /// Journal length at the end of every batch of this process life (group commit boundaries).
    batch_ends: Vec<u64>,
}

#[derive(Default, Debug)]
struct Stats {
    seeds: u64,
    steps: u64,
    batches: u64,
    jobs: u64,
    acks: u64,
    refusals: u64,
    storage_failures: u64,
    /// Times the log failed (the process stopped acknowledging) because of an injected fault.
    log_failures: u64,
    ticks: u64,
    power_losses: u64,
    torn_crashes: u64,
    crash_at_op_armed: u64,
    eio_armed: u64,
    recovery_crashes: u64,
    clean_restarts: u64,
    recoveries: u64,
    recoveries_from_snapshot: u64,
    records_recovered: u64,
    partial_group_commits_recovered: u64,
    snapshots_written: u64,
    snapshots_failed: u64,
    snapshots_lost: u64,
    /// Recoveries that found the newest snapshot damaged and used the older one + the log.
    snapshot_fallbacks: u64,
    /// Reads answered (from memory) in or after a batch whose flush failed.
    reads_after_failure: u64,
    checks: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        macro_rules! sum { ($($f:ident),*) => { $(self.$f += o.$f;)* } }
        sum!(
            seeds,
            steps,
            batches,
            jobs,
            acks,
            refusals,
            storage_failures,
            log_failures,
            ticks,
            power_losses,
            torn_crashes,
            crash_at_op_armed,
            eio_armed,
            recovery_crashes,
            clean_restarts,
            recoveries,
            recoveries_from_snapshot,
            records_recovered,
            partial_group_commits_recovered,
            snapshots_written,
            snapshots_failed,
            snapshots_lost,
            snapshot_fallbacks,
            reads_after_failure,
            checks
        );
    }
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

struct Sim {
    rng: SimRng,
    verbose: bool,
    trace: VecDeque<String>,
    now_ms: u64,
    tick_interval_ms: u64,
    partitions: u32,
    limits: Limits,
    config: WorkerConfig,
    segment_bytes: u64,
    board: Arc<SoldOutBoard>,
    poisoned: Arc<StorageHealth>,
    parts: Vec<Part>,
    clients: Vec<Client>,
    skus: Vec<SkuId>,
    /// Acknowledged reservations and what was last acknowledged about them.
    held: BTreeMap<ReservationId, Held>,
    campaigns: Vec<(CampaignId, SkuId)>,
    next_sequence: u64,
    next_campaign: u32,
    /// The fault plan of the current process life: a step at which a flush fails with EIO.
    eio_at_step: Option<usize>,
    /// Steps left before a poisoned process is restarted.
    restart_in: Option<usize>,
    stats: Stats,
}

fn wal_config(index: u32, segment_bytes: u64) -> WalConfig {
    let mut config = WalConfig::new(format!("/sim/p{index}"));
    config.segment_bytes = segment_bytes;
    config
}

fn replay(index: u32, partitions: u32, limits: Limits, journal: &[Envelope]) -> Partition {
    let mut p = Partition::new(index, partitions, limits);
    let mut events = Vec::new();
    for (i, envelope) in journal.iter().enumerate() {
        events.clear();
        let outcome = p.apply(envelope, &mut events);
        assert_eq!(outcome, Ok(Outcome::Changed), "journal entry {} did not replay as logged", i + 1);
    }
    p
}

impl Sim {
    fn new(seed: u64, verbose: bool) -> Sim {
        let mut rng = SimRng::new(seed);
        let partitions = 1 + rng.below(3) as u32;
        let batch_limit = 1 + rng.below(12) as usize;
        let config = WorkerConfig {
            queue_capacity: 1024,
            batch_limit,
            tick_interval: Duration::from_millis(100),
            expiry_budget_per_tick: 1 + rng.below(6) as u32,
            snapshot_every: 3 + rng.below(40),
            retention: Retention::default(),
            notifier: None,
            orders: None,
            connectors: None,
            replica_ack: None,
        };
        // Small segments so rolls and snapshot-driven segment deletion happen within a seed.
        let segment_bytes = 4096 * (1 + rng.below(3));
        // Mostly the default memory of ended reservations; sometimes a small one, so eviction
        // (part of the snapshot image) happens too.
        let limits = if rng.below(5) == 0 {
            Limits { ended_retention: 16 + rng.below(64) as usize, ..Limits::default() }
        } else {
            Limits::default()
        };
        let clients = (0..2 + rng.below(4))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                Client { tx, rx, next_request: 1, keyed: Vec::new() }
            })
            .collect();
        let skus = (0..3 + rng.below(8) as u32).map(SkuId).collect();
        let tick_interval_ms = 50 + rng.below(500);
        let mut sim = Sim {
            rng,
            verbose,
            trace: VecDeque::new(),
            now_ms: 1_000_000,
            tick_interval_ms,
            partitions,
            limits,
            config,
            segment_bytes,
            board: Arc::new(SoldOutBoard::new()),
            poisoned: Arc::new(StorageHealth::default()),
            parts: Vec::new(),
            clients,
            skus,
            held: BTreeMap::new(),
            campaigns: Vec::new(),
            next_sequence: 1,
            next_campaign: 1,
            eio_at_step: None,
            restart_in: None,
            stats: Stats { seeds: 1, ..Stats::default() },
        };
        for index in 0..partitions {
            let storage = SimulatedStorage::new();
            let snaps = Arc::new(Mutex::new(SnapState::default()));
            let recovered = recover_partition(
                index,
                partitions,
                limits,
                None,
                wal_config(index, segment_bytes),
                Arc::new(storage.clone()),
            )
            .expect("a fresh simulated log opens");
            let core = sim.core(recovered.partition, recovered.wal, &snaps);
            sim.parts.push(Part {
                index,
                storage,
                snaps,
                core,
                queue: VecDeque::new(),
                batch: Vec::new(),
                reference: Partition::new(index, partitions, limits),
                journal: Vec::new(),
                acked_lsn: 0,
                last_tick_ms: 1_000_000,
                batch_ends: vec![0],
            });
        }
        sim
    }

    fn core(&self, partition: Partition, wal: oms_wal::Wal, snaps: &Arc<Mutex<SnapState>>) -> PartitionCore {
        PartitionCore::new(
            partition,
            wal,
            Box::new(SimSnapshots(snaps.clone())),
            self.board.clone(),
            Arc::new(Metrics::new()),
            self.config.clone(),
            self.poisoned.clone(),
            Arc::new(AtomicBool::new(false)),
        )
    }

    fn note(&mut self, line: String) {
        if self.verbose {
            println!("{line}");
        }
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.rng.below(items.len() as u64) as usize])
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    // ------------------------------------------------------------ fault plan

    /// A new process life: maybe arm a crash at a future storage operation or an EIO.
    fn plan_faults(&mut self, step: usize) {
        self.eio_at_step = None;
        match self.rng.below(10) {
            0..=2 => {
                let p = self.rng.below(self.partitions as u64) as usize;
                let k = self.parts[p].storage.ops() + self.rng.below(120);
                self.parts[p].storage.fail_at_op(k);
                self.stats.crash_at_op_armed += 1;
                self.note(format!("fault plan: p{p} storage dies at operation {k}"));
            }
            3..=4 => {
                let at = step + 1 + self.rng.below(150) as usize;
                self.eio_at_step = Some(at);
                self.note(format!("fault plan: EIO on the first flush after step {at}"));
            }
            _ => self.note("fault plan: none".to_owned()),
        }
    }

    // ------------------------------------------------------------ requests

    fn submit(&mut self, client: usize, partition: u32, envelope: Envelope, shape: AnswerShape, effect: Effect) {
        let what = format!("c{client} {:?}", envelope.command);
        let (reply, waiting) = if matches!(shape, AnswerShape::Reserved | AnswerShape::Done) && self.chance(70) {
            let c = &mut self.clients[client];
            let request_id = c.next_request;
            c.next_request += 1;
            let opcode = if matches!(shape, AnswerShape::Reserved) { Opcode::Reserve } else { Opcode::Confirm };
            let reply = Reply::Conn { tx: c.tx.clone(), request_id, opcode, started: Instant::now(), shape };
            (reply, Waiting::Conn { request_id, shape })
        } else {
            let (tx, rx) = oneshot::channel();
            (Reply::Part(tx), Waiting::Part(rx))
        };
        let job = Job::Apply { envelope, reply };
        self.parts[partition as usize].queue.push_back(Queued { job, client, what, waiting, effect });
    }

    fn query(&mut self, client: usize, partition: u32, query: Query) {
        let what = format!("c{client} query {query:?}");
        let (tx, rx) = oneshot::channel();
        let queued = Queued {
            job: Job::Query { query, reply: tx },
            client,
            what,
            waiting: Waiting::Query(rx),
            effect: Effect::Nothing,
        };
        self.parts[partition as usize].queue.push_back(queued);
    }

    fn envelope(&mut self, command: Command) -> Envelope {
        // Clients stamp requests when they send them; batches may apply them out of time order.
        let skew = self.rng.below(50);
        Envelope { now_ms: self.now_ms.saturating_sub(skew), command }
    }

    fn owner(&self, sku: SkuId) -> u32 {
        partition_of(sku, self.partitions)
    }

    fn client_request(&mut self, client: usize) {
        let Some(sku) = self.pick(&self.skus.clone()) else { return };
        let p = self.owner(sku);
        let warehouse = WarehouseId(self.pick(&WAREHOUSES).unwrap_or(1));
        match self.rng.below(100) {
            // Catalog and stock administration.
            0..=3 => {
                for index in 0..self.partitions {
                    let e = self.envelope(Command::DefineWarehouse {
                        id: warehouse,
                        code: format!("W{}", warehouse.0),
                        region: "sim".into(),
                        priority: warehouse.0 % 2,
                    });
                    self.submit(client, index, e, AnswerShape::Done, Effect::Nothing);
                }
            }
            4..=7 => {
                let e = self.envelope(Command::DefineSku {
                    id: sku,
                    code: format!("SKU-{}", sku.0),
                    low_stock_threshold: 3,
                });
                self.submit(client, p, e, AnswerShape::Done, Effect::Nothing);
            }
            8..=15 => {
                let qty = 1 + self.rng.below(20) as u32;
                let e = self.envelope(Command::Receive { sku, warehouse, qty });
                self.submit(client, p, e, AnswerShape::Done, Effect::Nothing);
            }
            16..=18 => {
                let delta = self.rng.below(13) as i64 - 6;
                let e = self.envelope(Command::Adjust { sku, warehouse, delta });
                self.submit(client, p, e, AnswerShape::Done, Effect::Nothing);
            }
            19..=20 => {
                let on_hand = self.rng.below(30);
                let e = self.envelope(Command::SetOnHand { sku, warehouse, on_hand });
                self.submit(client, p, e, AnswerShape::Done, Effect::Nothing);
            }
            21..=22 => {
                let id = CampaignId(self.next_campaign);
                self.next_campaign += 1;
                let spec = FlashSaleSpec {
                    id,
                    sku,
                    pool_qty: 1 + self.rng.below(10) as u32,
                    per_customer_limit: 1 + self.rng.below(3) as u32,
                    starts_at_ms: self.now_ms,
                    ends_at_ms: self.now_ms + 1_000 + self.rng.below(20_000),
                };
                let e = self.envelope(Command::CreateFlashSale(spec));
                self.submit(client, p, e, AnswerShape::Done, Effect::FlashSale { id, sku });
            }
            // Reservations: single and multi-line, keyed or not, from general stock or a pool.
            23..=57 => self.reserve(client, sku),
            58..=63 => {
                let keyed = self.clients[client].keyed.clone();
                if let Some(mut request) = self.pick_cloned(&keyed) {
                    let p = self.owner(request.lines[0].sku);
                    // A retry, as the gateway sends it: a new id, the same key and request; the
                    // key's home answers with the first reservation.
                    let sequence = self.next_sequence;
                    self.next_sequence += 1;
                    request.id = reservation_id(sequence, PartitionSet(1 << p));
                    let e = self.envelope(Command::Reserve(request));
                    self.submit(client, p, e, AnswerShape::Reserved, Effect::Reserved);
                }
            }
            64..=85 => {
                let ids: Vec<ReservationId> = self.held.keys().copied().collect();
                let Some(id) = self.pick(&ids) else { return };
                let partition = self.held[&id].partition;
                let (command, effect, shape) = match self.rng.below(3) {
                    0 => (Command::Confirm { id }, Effect::Confirmed(id), AnswerShape::Done),
                    1 => {
                        (Command::Release { id, cause: ReleaseCause::Cancel }, Effect::Released(id), AnswerShape::Done)
                    }
                    _ => (Command::Ship { id }, Effect::Shipped(id), AnswerShape::Done),
                };
                let e = self.envelope(command);
                self.submit(client, partition, e, shape, effect);
            }
            86..=89 => {
                // An id nobody was answered with (lost in a crash, or never sent).
                let id = reservation_id(self.rng.below(self.next_sequence + 2), PartitionSet(1 << p));
                let e = self.envelope(Command::Confirm { id });
                self.submit(client, p, e, AnswerShape::Done, Effect::Nothing);
            }
            90..=93 => self.query(client, p, Query::Stock(sku)),
            94..=96 => {
                let ids: Vec<ReservationId> = self.held.keys().copied().collect();
                if let Some(id) = self.pick(&ids) {
                    let partition = self.held[&id].partition;
                    self.query(client, partition, Query::Reservation(id));
                }
            }
            _ => self.query(client, p, Query::Audit),
        }
    }

    fn pick_cloned<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        Some(items[self.rng.below(items.len() as u64) as usize].clone())
    }

    fn reserve(&mut self, client: usize, sku: SkuId) {
        let p = self.owner(sku);
        let campaign = if self.chance(20) {
            let own: Vec<(CampaignId, SkuId)> =
                self.campaigns.iter().copied().filter(|(_, s)| self.owner(*s) == p).collect();
            self.pick(&own)
        } else {
            None
        };
        let mut lines = vec![Line { sku: campaign.map_or(sku, |c| c.1), qty: 1 + self.rng.below(4) as u32 }];
        if campaign.is_none() && self.chance(35) {
            // More lines from the same partition (a cross-partition cart is the coordinator's).
            let same: Vec<SkuId> = self.skus.iter().copied().filter(|s| self.owner(*s) == p && *s != sku).collect();
            for _ in 0..1 + self.rng.below(2) {
                if let Some(other) = self.pick(&same) {
                    if lines.iter().all(|l| l.sku != other) {
                        lines.push(Line { sku: other, qty: 1 + self.rng.below(3) as u32 });
                    }
                }
            }
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let keyed = self.chance(50);
        // A keyed request goes straight to a partition only when the key's home is that
        // partition (the gateway's rule); pick such a key.
        let partitions = self.partitions;
        let key = keyed.then(|| {
            (0..)
                .map(|i| Box::new(IdempotencyKey { scope: format!("sim-c{client}"), key: format!("k{sequence}-{i}") }))
                .find(|k| oms_engine::routing::key_home(k, partitions) == p)
                .expect("some key is homed in every partition")
        });
        let mut request = ReserveRequest {
            id: reservation_id(sequence, PartitionSet(1 << p)),
            lines,
            ttl_ms: 200 + self.rng.below(8_000),
            fingerprint: 0,
            customer: CustomerId(client as u64 * 10 + self.rng.below(3)),
            channel: ChannelId(0),
            campaign: campaign.map(|c| c.0),
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
            idempotency_key: key,
        };
        if keyed {
            request.fingerprint = oms_engine::routing::request_fingerprint(&request);
        }
        if keyed {
            self.clients[client].keyed.push(request.clone());
        }
        let e = self.envelope(Command::Reserve(request));
        self.submit(client, p, e, AnswerShape::Reserved, Effect::Reserved);
    }

    // ------------------------------------------------------------ batches

    /// One pass of the partition thread's loop: take queued jobs, maybe tick, end the batch,
    /// consider a snapshot. Mirrors `Worker::run` with the scheduler choosing how many jobs arrived.
    fn run_batch(&mut self, p: usize) -> Check {
        let take = 1 + self.rng.below(self.config.batch_limit as u64 + 2) as usize;
        let mut taken = 0;
        while taken < take && !self.parts[p].core.batch_full() {
            let Some(q) = self.parts[p].queue.pop_front() else { break };
            taken += 1;
            let part = &mut self.parts[p];
            let (reference, query) = if part.core.is_poisoned() {
                // Writes are refused; reads are still answered from memory (the reference holds
                // what the core holds: every command applied, the failed batch's included).
                match &q.job {
                    Job::Query { query, .. } => (None, Some(answer(&part.reference, query.clone()))),
                    _ => (None, None),
                }
            } else {
                let mut events = Vec::new();
                match &q.job {
                    Job::Apply { envelope, .. } => {
                        let r = part.reference.apply(envelope, &mut events);
                        if r == Ok(Outcome::Changed) {
                            part.journal.push(envelope.clone());
                        }
                        (Some((r, events)), None)
                    }
                    Job::Query { query, .. } => {
                        (Some((Ok(Outcome::Unchanged), events)), Some(answer(&part.reference, query.clone())))
                    }
                    // Replication jobs: the simulation drives a primary, which never gets them.
                    Job::Replicated | Job::Install { .. } => unreachable!("the harness never queues {}", q.what),
                }
            };
            if self.verbose {
                println!("  p{p} takes {} -> reference {:?}", q.what, reference.as_ref().map(|r| &r.0));
            }
            part.core.handle(q.job);
            part.batch.push(Expect {
                client: q.client,
                what: q.what,
                waiting: q.waiting,
                reference,
                query,
                effect: q.effect,
            });
        }
        let due = self.now_ms >= self.parts[p].last_tick_ms + self.tick_interval_ms;
        let tick = !self.parts[p].core.is_following() && (self.parts[p].core.expiry_behind() || due);
        if tick {
            self.parts[p].last_tick_ms = self.now_ms;
            let now = self.now_ms;
            let part = &mut self.parts[p];
            if !part.core.is_poisoned() {
                let envelope =
                    Envelope { now_ms: now, command: Command::Tick { budget: self.config.expiry_budget_per_tick } };
                let mut events = Vec::new();
                if part.reference.apply(&envelope, &mut events) == Ok(Outcome::Changed) {
                    part.journal.push(envelope);
                }
            }
            part.core.tick(now);
            self.stats.ticks += 1;
        }
        if let Some(at) = self.eio_at_step {
            if self.stats.steps as usize >= at {
                self.parts[p].storage.fail_next_sync();
                self.eio_at_step = None;
                self.stats.eio_armed += 1;
                self.note(format!("p{p}: the next flush fails with EIO"));
            }
        }
        let was_poisoned = self.parts[p].core.is_poisoned();
        self.parts[p].core.finish_batch();
        self.stats.batches += 1;
        let failed = self.parts[p].core.is_poisoned();
        let end = self.parts[p].journal.len() as u64;
        self.parts[p].batch_ends.push(end);
        self.note(format!(
            "p{p}: batch of {taken} jobs{} -> {}",
            if tick { " + tick" } else { "" },
            if failed { "FAILED" } else { "committed" }
        ));
        if failed && !was_poisoned {
            self.stats.log_failures += 1;
            self.restart_in.get_or_insert(1 + self.rng.below(6) as usize);
        }
        self.collect_answers(p, failed)?;
        if !failed {
            self.check_committed(p)?;
        }
        self.parts[p].core.maybe_snapshot();
        Ok(())
    }

    /// Every job of the batch is answered once, with the reference's answer, or with a storage
    /// failure if the commit failed.
    fn collect_answers(&mut self, p: usize, failed: bool) -> Check {
        let batch = std::mem::take(&mut self.parts[p].batch);
        let mut conn: HashMap<(usize, u64), Response> = HashMap::new();
        for (c, client) in self.clients.iter_mut().enumerate() {
            while let Ok(out) = client.rx.try_recv() {
                ensure!(conn.insert((c, out.request_id), out.response).is_none(), "c{c}: two answers to one request");
            }
        }
        for mut e in batch {
            self.stats.jobs += 1;
            let ok = match &mut e.waiting {
                Waiting::Conn { request_id, shape } => {
                    let got = conn
                        .remove(&(e.client, *request_id))
                        .ok_or_else(|| format!("{}: no answer after the batch ended", e.what))?;
                    match (&e.reference, failed) {
                        (None, _) | (_, true) => {
                            ensure!(
                                matches!(&got, Response::Error(w) if w.code == STORAGE_FAILED),
                                "{}: acknowledged {got:?} after the log failed",
                                e.what
                            );
                            false
                        }
                        (Some((r, events)), false) => {
                            let expected = match r {
                                Ok(_) => match shape {
                                    AnswerShape::Reserved => reserved_response_of(events, &self.parts[p].reference),
                                    AnswerShape::Done => Response::Done,
                                },
                                Err(err) => Response::Error(failure_to_wire(
                                    &Failure::Engine(err.clone()),
                                    &self.parts[p].reference,
                                )),
                            };
                            ensure!(got == expected, "{}: answered {got:?}, the reference says {expected:?}", e.what);
                            if let Response::Reserved(w) = &got {
                                if let Effect::Reserved = e.effect {
                                    let allocations =
                                        w.allocations.iter().map(|a| (a.sku_id, a.warehouse_id, a.qty)).collect();
                                    self.note_reserved(p, ReservationId(w.id), allocations, w.replayed);
                                }
                            }
                            r.is_ok()
                        }
                    }
                }
                Waiting::Part(rx) => {
                    let got = rx.try_recv().map_err(|_| format!("{}: no answer after the batch ended", e.what))?;
                    match (&e.reference, failed) {
                        (None, _) | (_, true) => {
                            ensure!(
                                got == Err(Failure::Storage),
                                "{}: acknowledged {got:?} after the log failed",
                                e.what
                            );
                            false
                        }
                        (Some((r, events)), false) => {
                            let expected = r.clone().map(|_| events.clone()).map_err(Failure::Engine);
                            ensure!(got == expected, "{}: answered {got:?}, the reference says {expected:?}", e.what);
                            if let Ok(events) = &got {
                                for ev in events {
                                    if let Event::Reserved { id, allocations, replayed, .. } = ev {
                                        let a = allocations
                                            .as_slice()
                                            .iter()
                                            .map(|a| (a.sku.0, a.warehouse.0, a.qty))
                                            .collect();
                                        self.note_reserved(p, *id, a, *replayed);
                                    }
                                }
                            }
                            got.is_ok()
                        }
                    }
                }
                Waiting::Query(rx) => {
                    // Reads are answered from memory, also in a failed batch and after it.
                    let got = rx.try_recv().map_err(|_| format!("{}: no answer after the batch ended", e.what))?;
                    check_query(&e.what, &got, e.query.as_ref())?;
                    if failed || e.reference.is_none() {
                        self.stats.reads_after_failure += 1;
                    }
                    true
                }
            };
            if !ok {
                if failed || e.reference.is_none() {
                    self.stats.storage_failures += 1;
                } else {
                    self.stats.refusals += 1;
                }
                continue;
            }
            self.stats.acks += 1;
            match e.effect {
                Effect::Confirmed(id) => self.mark(id, "confirmed"),
                Effect::Released(id) => self.mark(id, "released"),
                Effect::Shipped(id) => self.mark(id, "shipped"),
                Effect::FlashSale { id, sku } => self.campaigns.push((id, sku)),
                Effect::Reserved | Effect::Nothing => {}
            }
        }
        ensure!(conn.is_empty(), "answers nobody asked for: {conn:?}");
        if !failed {
            // Everything the reference logged so far was in a committed batch.
            let part = &mut self.parts[p];
            part.acked_lsn = part.journal.len() as u64;
        }
        Ok(())
    }

    fn note_reserved(
        &mut self,
        partition: usize,
        id: ReservationId,
        allocations: Vec<(u32, u16, u32)>,
        replayed: bool,
    ) {
        let held = self.held.entry(id).or_insert(Held {
            partition: partition as u32,
            allocations: Vec::new(),
            last: "reserved",
        });
        held.allocations = allocations;
        // A fresh answer under a known id: the engine forgot the old one (ended-retention), so
        // this is a new reservation. A replayed answer leaves what was acknowledged about it.
        if !replayed {
            held.last = "reserved";
        }
    }

    fn mark(&mut self, id: ReservationId, last: &'static str) {
        if let Some(h) = self.held.get_mut(&id) {
            h.last = last;
        }
    }

    /// After a committed batch: the runtime applied exactly what the reference did, the log is
    /// durable to its end, and the board shows what the partition holds.
    fn check_committed(&mut self, p: usize) -> Check {
        self.stats.checks += 1;
        let part = &self.parts[p];
        let wal = part.core.wal();
        ensure!(
            wal.durable_lsn() == part.journal.len() as u64 && wal.last_lsn() == wal.durable_lsn(),
            "p{p}: after a commit the log is durable to {} of {} appended, the reference logged {}",
            wal.durable_lsn(),
            wal.last_lsn(),
            part.journal.len()
        );
        ensure!(
            part.core.partition().image() == part.reference.image(),
            "p{p}: the runtime's state differs from the reference after a committed batch"
        );
        let mut bad = None;
        part.core.partition().for_each_sku(|sku, _, available| {
            if self.board.available(sku) != Some(available) && bad.is_none() {
                bad = Some((sku, self.board.available(sku), available));
            }
        });
        ensure!(bad.is_none(), "p{p}: sold-out board (sku, board, partition) {bad:?}");
        for c in part.core.partition().campaigns() {
            let sold_out = c.remaining == 0 || c.closed;
            ensure!(
                self.board.campaign_sold_out(c.id) == sold_out,
                "p{p}: board says campaign {} sold out = {}, partition: remaining {} closed {}",
                c.id.0,
                !sold_out,
                c.remaining,
                c.closed
            );
        }
        Ok(())
    }

    /// After every step, whatever happened: the engine's own check and no oversell.
    fn check_step(&mut self) -> Check {
        for part in &self.parts {
            self.stats.checks += 1;
            let partition = part.core.partition();
            let report = partition.check();
            ensure!(report.is_clean(), "p{}: consistency check: {report:?}", part.index);
            let mut oversold = None;
            partition.for_each_sku(|sku, _, _| {
                if let Some(view) = partition.stock(sku) {
                    for w in &view.warehouses {
                        if w.reserved + w.pooled + w.damaged + w.quality_control > w.on_hand && oversold.is_none() {
                            oversold = Some(w.clone());
                        }
                    }
                }
            });
            ensure!(oversold.is_none(), "p{}: oversold {oversold:?}", part.index);
        }
        Ok(())
    }

    // ------------------------------------------------------------ crashes and recovery

    /// The process dies (`clean` = after a graceful shutdown). Storage keeps what it keeps, the
    /// next process recovers every partition, and its state must be a prefix of what was logged
    /// that holds everything acknowledged.
    fn restart(&mut self, clean: bool) -> Check {
        let mode = if clean {
            self.stats.clean_restarts += 1;
            // Graceful shutdown: the threads drain their queues, then flush and snapshot.
            for p in 0..self.parts.len() {
                while !self.parts[p].queue.is_empty() {
                    self.run_batch(p)?;
                }
            }
            for part in &mut self.parts {
                part.core.final_snapshot();
            }
            CrashMode::DropUnflushed
        } else {
            self.stats.power_losses += 1;
            match self.rng.below(3) {
                0 => CrashMode::DropUnflushed,
                1 => {
                    self.stats.torn_crashes += 1;
                    CrashMode::KeepPrefix
                }
                _ => {
                    self.stats.torn_crashes += 1;
                    CrashMode::RandomSectors
                }
            }
        };
        self.note(format!("restart: {} ({mode:?})", if clean { "clean shutdown" } else { "crash" }));
        let was_poisoned = self.parts.iter().any(|p| p.core.is_poisoned());
        let crash_seed = self.rng.next_u64();
        for part in &mut self.parts {
            part.storage.crash(mode, crash_seed ^ part.index as u64);
            let mut snaps = part.snaps.lock().unwrap();
            if snaps.pending.take().is_some() {
                self.stats.snapshots_lost += 1;
            }
            snaps.outcome = None;
        }
        // A new process: new board, a clear poisoned flag, no queued jobs, no connections.
        self.board = Arc::new(SoldOutBoard::new());
        self.poisoned = Arc::new(StorageHealth::default());
        for c in &mut self.clients {
            while c.rx.try_recv().is_ok() {}
        }
        for p in 0..self.parts.len() {
            self.parts[p].queue.clear();
            self.parts[p].batch.clear();
            self.recover(p, clean, was_poisoned)?;
        }
        self.restart_in = None;
        Ok(())
    }

    fn recover(&mut self, p: usize, clean: bool, was_poisoned: bool) -> Check {
        let (index, partitions, limits, segment_bytes) = (p as u32, self.partitions, self.limits, self.segment_bytes);
        let snapshot = |part: &Part| {
            let snaps = part.snaps.lock().unwrap();
            snaps.durable.last().map(|(lsn, data)| Snapshot { lsn: *lsn, data: data.clone(), path: "sim".into() })
        };
        if self.chance(25) {
            // Crash during recovery: the storage dies at one of recovery's own operations.
            let k = self.parts[p].storage.ops() + self.rng.below(6);
            self.parts[p].storage.fail_at_op(k);
            let snap = snapshot(&self.parts[p]);
            let attempt = recover_partition(
                index,
                partitions,
                limits,
                snap.as_ref(),
                wal_config(index, segment_bytes),
                Arc::new(self.parts[p].storage.clone()),
            );
            let died = attempt.is_err();
            drop(attempt);
            let mode = if self.chance(50) { CrashMode::KeepPrefix } else { CrashMode::DropUnflushed };
            let crash_seed = self.rng.next_u64();
            self.parts[p].storage.crash(mode, crash_seed);
            self.stats.recovery_crashes += 1;
            self.note(format!(
                "p{p}: crash during recovery at operation {k} (recovery {})",
                if died { "failed" } else { "finished" }
            ));
        }
        let mut snap = snapshot(&self.parts[p]);
        if self.chance(15) {
            // The newest snapshot is damaged (bit rot, an operator's mistake): recovery skips it
            // for the older one, whose log suffix retention must have kept.
            let older = match self.parts[p].snaps.lock().unwrap().durable.as_slice() {
                [.., (lsn, data), _] => Some(Snapshot { lsn: *lsn, data: data.clone(), path: "sim".into() }),
                _ => None,
            };
            if let Some(older) = older {
                let (skipped, lsn) = (snap.as_ref().map_or(0, |s| s.lsn), older.lsn);
                snap = Some(older);
                self.stats.snapshot_fallbacks += 1;
                self.note(format!("p{p}: newest snapshot ({skipped}) damaged: recovering from {lsn}"));
            }
        }
        let recovered = recover_partition(
            index,
            partitions,
            limits,
            snap.as_ref(),
            wal_config(index, segment_bytes),
            Arc::new(self.parts[p].storage.clone()),
        )
        .map_err(|e| format!("p{p}: recovery failed: {e}"))?;
        self.stats.recoveries += 1;
        self.stats.recoveries_from_snapshot += u64::from(recovered.snapshot_lsn > 0);
        let n = recovered.wal.last_lsn();
        self.stats.records_recovered += n;
        let part = &mut self.parts[p];
        ensure!(
            n >= part.acked_lsn,
            "p{p}: recovered {n} records but {} were acknowledged (snapshot at {})",
            part.acked_lsn,
            recovered.snapshot_lsn
        );
        ensure!(n <= part.journal.len() as u64, "p{p}: recovered {n} records, only {} were logged", part.journal.len());
        if clean && !was_poisoned {
            ensure!(
                n == part.journal.len() as u64,
                "p{p}: after a clean shutdown recovered {n} of {}",
                part.journal.len()
            );
        }
        if !part.batch_ends.contains(&n) {
            // Legal: each record is a whole request, but a torn tail can keep part of an
            // unacknowledged group commit (the checks above hold all the same).
            self.stats.partial_group_commits_recovered += 1;
        }
        part.batch_ends = vec![n];
        part.journal.truncate(n as usize);
        part.reference = replay(index, partitions, limits, &part.journal);
        ensure!(
            recovered.partition.image() == part.reference.image(),
            "p{p}: recovered state (snapshot {} + {} records) differs from replaying the first {n} logged commands",
            recovered.snapshot_lsn,
            recovered.replayed
        );
        ensure!(recovered.partition.check().is_clean(), "p{p}: recovered state fails its check");
        part.acked_lsn = n;
        self.note(format!(
            "p{p}: recovered {n} records (snapshot {}, replayed {})",
            recovered.snapshot_lsn, recovered.replayed
        ));
        // Acknowledged reservations and transitions are all there. Not with a small ended-retention:
        // there a retry after the engine forgot an ended reservation legitimately creates a new
        // one under the same id (its key forgotten too), so the client's notes go stale; the
        // comparison with the reference above covers those seeds.
        for (id, held) in &self.held {
            if held.partition != index || self.limits.ended_retention < 1_000 {
                continue;
            }
            let view = recovered
                .partition
                .reservation(*id)
                .ok_or_else(|| format!("p{p}: acknowledged reservation {} lost in the crash", id.0))?;
            let allocations: Vec<(u32, u16, u32)> =
                view.allocations.iter().map(|a| (a.sku.0, a.warehouse.0, a.qty)).collect();
            ensure!(
                allocations == held.allocations,
                "p{p}: reservation {} holds {allocations:?}, acknowledged {:?}",
                id.0,
                held.allocations
            );
            let fine = match held.last {
                "released" => view.status == "released",
                "shipped" => view.status == "shipped",
                "confirmed" => !matches!(view.status.as_str(), "held" | "expired"),
                _ => true,
            };
            ensure!(fine, "p{p}: reservation {} is {} after an acknowledged {}", id.0, view.status, held.last);
        }
        let core = {
            let snaps = self.parts[p].snaps.clone();
            self.core(recovered.partition, recovered.wal, &snaps)
        };
        self.parts[p].core = core;
        Ok(())
    }

    // ------------------------------------------------------------ the scheduler

    fn run(&mut self) -> Check {
        self.plan_faults(0);
        // Day one: warehouses and SKUs, through the same queues as everything else.
        for index in 0..self.partitions {
            for w in WAREHOUSES {
                let e = self.envelope(Command::DefineWarehouse {
                    id: WarehouseId(w),
                    code: format!("W{w}"),
                    region: "sim".into(),
                    priority: w % 2,
                });
                self.submit(0, index, e, AnswerShape::Done, Effect::Nothing);
            }
        }
        for sku in self.skus.clone() {
            let p = self.owner(sku);
            let e =
                self.envelope(Command::DefineSku { id: sku, code: format!("SKU-{}", sku.0), low_stock_threshold: 3 });
            self.submit(0, p, e, AnswerShape::Done, Effect::Nothing);
            let qty = 5 + self.rng.below(30) as u32;
            let warehouse = WarehouseId(1 + self.rng.below(3) as u16);
            let e = self.envelope(Command::Receive { sku, warehouse, qty });
            self.submit(0, p, e, AnswerShape::Done, Effect::Nothing);
        }
        for step in 0..STEPS {
            self.stats.steps += 1;
            match self.rng.below(1000) {
                0..=399 => {
                    let client = self.rng.below(self.clients.len() as u64) as usize;
                    for _ in 0..1 + self.rng.below(3) {
                        self.client_request(client);
                    }
                }
                400..=799 => {
                    let p = self.rng.below(self.partitions as u64) as usize;
                    self.run_batch(p)?;
                }
                800..=979 => {
                    let most = if self.chance(10) { 20_000 } else { 700 };
                    self.now_ms += self.rng.below(most);
                    self.note(format!("clock -> {}", self.now_ms));
                }
                980..=991 => {
                    self.restart(false)?;
                    self.plan_faults(step);
                }
                _ => {
                    self.restart(true)?;
                    self.plan_faults(step);
                }
            }
            // A snapshot being written finishes (or fails) a few steps after it started.
            for p in 0..self.parts.len() {
                if self.parts[p].snaps.lock().unwrap().pending.is_none() || !self.chance(25) {
                    continue;
                }
                let ok = self.chance(90);
                self.parts[p].snaps.lock().unwrap().outcome = Some(ok);
                if ok {
                    self.stats.snapshots_written += 1;
                } else {
                    self.stats.snapshots_failed += 1;
                }
                self.note(format!("p{p}: snapshot write {}", if ok { "finishes" } else { "fails" }));
            }
            if self.restart_in.is_none() && self.parts.iter().any(|p| p.core.is_poisoned()) {
                // Poisoned outside a batch (a snapshot's flush): restart soon all the same.
                self.stats.log_failures += 1;
                self.restart_in = Some(1 + self.rng.below(4) as usize);
            }
            if let Some(left) = self.restart_in {
                if left == 0 {
                    self.restart(false)?;
                    self.plan_faults(step);
                } else {
                    self.restart_in = Some(left - 1);
                }
            }
            self.check_step()?;
        }
        // Drain, then one last crash: everything answered must survive it.
        for p in 0..self.parts.len() {
            while !self.parts[p].queue.is_empty() {
                self.run_batch(p)?;
            }
        }
        self.restart(false)?;
        self.check_step()
    }
}

fn answer(p: &Partition, query: Query) -> QueryAnswer {
    match query {
        Query::Stock(sku) => QueryAnswer::Stock(p.stock(sku)),
        Query::Reservation(id) => QueryAnswer::Reservation(p.reservation(id)),
        Query::Available(sku) => QueryAnswer::Available(p.available(sku)),
        _ => QueryAnswer::Audit(Box::new(oms_gateway::runtime::PartitionAudit {
            partition: p.index(),
            counters: p.counters(),
            live_reservations: p.live_reservations(),
            skus: p.sku_count(),
            durable_lsn: 0,
            check: p.check(),
        })),
    }
}

fn check_query(what: &str, got: &QueryAnswer, expected: Option<&QueryAnswer>) -> Check {
    match (got, expected) {
        (QueryAnswer::Stock(a), Some(QueryAnswer::Stock(b))) => {
            ensure!(a == b, "{what}: {a:?}, the reference says {b:?}")
        }
        (QueryAnswer::Reservation(a), Some(QueryAnswer::Reservation(b))) => {
            ensure!(a == b, "{what}: {a:?}, the reference says {b:?}")
        }
        (QueryAnswer::Available(a), Some(QueryAnswer::Available(b))) => {
            ensure!(a == b, "{what}: {a:?}, the reference says {b:?}")
        }
        (QueryAnswer::Audit(a), Some(QueryAnswer::Audit(b))) => {
            ensure!(a.check.is_clean(), "{what}: audit not clean: {:?}", a.check);
            ensure!(a.counters == b.counters && a.live_reservations == b.live_reservations, "{what}: {a:?} vs {b:?}")
        }
        _ => return Err(format!("{what}: unexpected answer {got:?}")),
    }
    Ok(())
}

// ---------------------------------------------------------------- the runner

fn run_seed(seed: u64, verbose: bool) -> Result<Stats, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(seed, verbose);
        let result = sim.run();
        (result, sim.trace, sim.stats)
    }));
    match outcome {
        Ok((Ok(()), _, stats)) => Ok(stats),
        Ok((Err(why), trace, _)) => Err(format!("{why}\nlast steps:\n  {}", Vec::from(trace).join("\n  "))),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(format!("panicked: {why}"))
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")))
}

// Runs the seeded simulation over the CI seed set (or the seeds named by OMS_SIM_SEED /
// OMS_SIM_SEEDS): every invariant after every step, every crash recovered and checked.
#[test]
fn deterministic_simulation() {
    let (seeds, verbose) = match (env_u64("OMS_SIM_SEED"), env_u64("OMS_SIM_SEEDS")) {
        (Some(seed), _) => (seed..seed + 1, true),
        (None, Some(count)) => {
            let first = env_u64("OMS_SIM_FIRST").unwrap_or(0);
            (first..first + count, false)
        }
        (None, None) => (0..CI_SEEDS, false),
    };
    let started = Instant::now();
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for seed in seeds.clone() {
        match run_seed(seed, verbose) {
            Ok(stats) => total.add(&stats),
            Err(why) => {
                eprintln!(
                    "simulation seed {seed} FAILED: {why}\nreplay: OMS_SIM_SEED={seed} cargo test -p oms-gateway --test simulation -- --nocapture"
                );
                failures.push(seed);
                if failures.len() >= 3 {
                    break;
                }
            }
        }
    }
    println!("simulation: seeds {seeds:?} in {:.1} s: {total:#?}", started.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "simulation failed for seeds {failures:?} (replay each with OMS_SIM_SEED=<seed>)");
}

// Checks that a seed replays exactly: two runs of the same seed take the same steps and end with
// the same figures (what makes `OMS_SIM_SEED=<n>` a faithful replay of a failure).
#[test]
fn a_seed_replays_exactly() {
    let run = |seed| {
        let mut sim = Sim::new(seed, false);
        sim.run().unwrap();
        (Vec::from(sim.trace), format!("{:?}", sim.stats))
    };
    for seed in [3, 11] {
        assert_eq!(run(seed), run(seed), "seed {seed} did not replay identically");
    }
}
