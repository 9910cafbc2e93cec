//! One writer thread per partition: drain a batch, apply, append, one group commit, answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TrySendError};
use oms_engine::codec::{encode_envelope_into, encode_image, RECORD_COMMAND};
use oms_engine::event::ReleaseReason;
use oms_engine::fastpath::SoldOutBoard;
use oms_engine::partition::PartitionImage;
use oms_engine::{Command, Envelope, Event, Outcome, Partition};
use oms_wal::{Lsn, Retention, SnapshotStore, Wal};
use rkyv::util::AlignedVec;

use super::{AnswerShape, Failure, Job, Outbound, PartitionAudit, Query, QueryAnswer, RecoveredPartition, Reply};
use crate::metrics::Metrics;
use crate::wire_error::{from_engine, gateway, CodeNames};
use oms_proto::{Allocation, Code, ErrorCode, Reserved, Response, WireError};

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub queue_capacity: usize,
    pub batch_limit: usize,
    pub tick_interval: Duration,
    pub expiry_budget_per_tick: u32,
    pub snapshot_every: u64,
    pub retention: Retention,
    /// Webhooks: committed events of the kinds they want are handed over after each commit.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// Orders: committed batches are shown to it, so the stock effects of ticks (an order cancelled
    /// past its deadline) are carried out and parked orders retried when stock comes back.
    pub orders: Option<Arc<crate::orders::OrderHook>>,
    /// `--ack-after-replica`: answers wait until the followers acknowledged their records.
    pub replica_ack: Option<Arc<crate::replication::AckBoard>>,
    /// Marketplace connectors: sellable-quantity changes and shipped parcels of each committed
    /// batch are handed over (a short lock, never a wait on the network).
    pub connectors: Option<Arc<crate::connectors::ConnectorHook>>,
}

/// Whether the process's logs can still be written, shared by every partition thread: the first
/// write or flush that fails stops all acknowledgements (writes are answered `storage_failed`
/// until a restart), while reads are still answered from memory. Keeps the first failure's reason
/// for `/health`.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failed: AtomicBool,
    reason: parking_lot::Mutex<Option<String>>,
}

impl StorageHealth {
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records a failure; answers whether it was the first.
    pub fn fail(&self, reason: String) -> bool {
        let mut first = self.reason.lock();
        if first.is_none() {
            *first = Some(reason);
        }
        !self.failed.swap(true, Ordering::AcqRel)
    }

    /// Why the storage failed (the first failure), if it did.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().clone()
    }
}

/// Handles to every partition thread.
pub struct Workers {
    senders: Vec<Sender<Job>>,
    threads: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    storage: Arc<StorageHealth>,
    /// Per partition: a log follower and the log directory (snapshots), for log subscriptions.
    logs: Vec<(oms_wal::LogFollower, std::path::PathBuf)>,
    /// Set while this server follows a primary: partition threads apply no ticks of their own.
    following: Arc<AtomicBool>,
}

impl Workers {
    /// The log follower and log directory of a partition (replication, subscriptions).
    pub fn log(&self, partition: u32) -> Option<&(oms_wal::LogFollower, std::path::PathBuf)> {
        self.logs.get(partition as usize)
    }

    /// Follower mode: while set, partition threads do not tick (time comes from the primary's log).
    pub fn set_following(&self, following: bool) {
        self.following.store(following, Ordering::Release);
    }

    pub fn partitions(&self) -> u32 {
        self.senders.len() as u32
    }

    /// Enqueue without blocking; a full queue is load to shed (the job comes back to answer BUSY).
    #[allow(clippy::result_large_err)] // the job itself comes back, unboxed like in the queue
    pub fn try_submit(&self, partition: u32, job: Job) -> Result<(), Job> {
        match self.senders.get(partition as usize) {
            Some(sender) => sender.try_send(job).map_err(|e| match e {
                TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
            }),
            None => Err(job),
        }
    }

    pub fn queue_depth(&self, partition: u32) -> usize {
        self.senders.get(partition as usize).map_or(0, |s| s.len())
    }

    pub fn storage_failed(&self) -> bool {
        self.storage.failed()
    }

    /// Why the storage failed (the first failure), if it did.
    pub fn storage_failure(&self) -> Option<String> {
        self.storage.reason()
    }

    /// Stop after draining what is queued; each worker flushes and writes a final snapshot.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let threads = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a partition thread panicked during shutdown");
            }
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn spawn_workers(
    recovered: Vec<RecoveredPartition>,
    config: WorkerConfig,
    board: Arc<SoldOutBoard>,
    metrics: Arc<Metrics>,
) -> std::io::Result<Workers> {
    let stop = Arc::new(AtomicBool::new(false));
    let storage = Arc::new(StorageHealth::default());
    let following = Arc::new(AtomicBool::new(false));
    let mut logs = Vec::new();
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for r in recovered {
        let (tx, rx) = channel::bounded(config.queue_capacity);
        let index = r.partition.index();
        let snapshots = SnapshotStore::open(&r.dir).map_err(std::io::Error::other)?;
        logs.push((r.wal.reader_handle(), r.dir.clone()));
        let core = PartitionCore::new(
            r.partition,
            r.wal,
            Box::new(ThreadSnapshots { store: snapshots, thread: None }),
            board.clone(),
            metrics.clone(),
            config.clone(),
            storage.clone(),
            following.clone(),
        );
        let worker = Worker { core, rx, stop: stop.clone(), last_tick: Instant::now() };
        let thread = std::thread::Builder::new().name(format!("omsd-p{index}")).spawn(move || worker.run())?;
        senders.push(tx);
        threads.push(thread);
    }
    Ok(Workers { senders, threads: parking_lot::Mutex::new(threads), stop, storage, logs, following })
}

/// Seed the board with every SKU's availability and every campaign's state.
fn publish_all(partition: &Partition, board: &SoldOutBoard) {
    partition.for_each_sku(|sku, _, available| board.publish_available(sku, available));
    for c in partition.campaigns() {
        board.set_campaign_sold_out(c.id, c.remaining == 0 || c.closed);
    }
}

/// Writes a partition's snapshots. At most one write is in flight; the core polls it between
/// batches. Behind a trait so the simulation can decide when a write finishes, fails, or is lost
/// in a crash, while the core's snapshot policy stays the one the daemon runs.
pub trait SnapshotWriter: Send {
    /// Begins writing `image` as the snapshot covering records `..=lsn`.
    fn start(&mut self, partition: u32, lsn: Lsn, image: PartitionImage);
    /// A write was started and its result not taken yet.
    fn in_flight(&self) -> bool;
    /// The in-flight write's result once it finished (taken once); `None` while it runs.
    fn poll(&mut self) -> Option<Result<Lsn, String>>;
    /// Waits for the in-flight write, if any, and returns its result.
    fn wait(&mut self) -> Option<Result<Lsn, String>>;
    /// Writes an encoded image synchronously (a follower installing its primary's snapshot).
    fn write_encoded(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), String>;
    /// The oldest snapshot kept (a fallback if a newer one is damaged): the log keeps every
    /// record after it. `None` when there is none.
    fn oldest_kept(&self) -> Option<Lsn>;
    /// Drops the snapshots older than `lsn`: after a follower installed its primary's snapshot at
    /// `lsn` and restarted its log there, they can no longer be completed from the log.
    fn forget_before(&mut self, lsn: Lsn);
    /// Writes synchronously (the final snapshot at shutdown).
    fn write_now(&mut self, lsn: Lsn, image: &PartitionImage) -> Result<(), String> {
        let bytes = encode_image(image).map_err(|e| e.to_string())?;
        self.write_encoded(lsn, &bytes)
    }
}

/// The daemon's writer: encodes and writes on a helper thread, off the partition thread.
struct ThreadSnapshots {
    store: SnapshotStore,
    thread: Option<JoinHandle<Result<Lsn, String>>>,
}

impl SnapshotWriter for ThreadSnapshots {
    fn start(&mut self, partition: u32, lsn: Lsn, image: PartitionImage) {
        let store = self.store.clone();
        let spawned = std::thread::Builder::new().name(format!("omsd-snap{partition}")).spawn(move || {
            let bytes = encode_image(&image).map_err(|e| e.to_string())?;
            store.write(lsn, &bytes).map_err(|e| e.to_string())?;
            Ok(lsn)
        });
        match spawned {
            Ok(handle) => self.thread = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the snapshot thread"),
        }
    }

    fn in_flight(&self) -> bool {
        self.thread.is_some()
    }

    fn poll(&mut self) -> Option<Result<Lsn, String>> {
        if !self.thread.as_ref()?.is_finished() {
            return None;
        }
        self.wait()
    }

    fn wait(&mut self) -> Option<Result<Lsn, String>> {
        let thread = self.thread.take()?;
        Some(thread.join().unwrap_or_else(|_| Err("snapshot thread panicked".to_owned())))
    }

    fn write_encoded(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), String> {
        self.store.write(lsn, bytes).map(|_| ()).map_err(|e| e.to_string())
    }

    fn oldest_kept(&self) -> Option<Lsn> {
        match self.store.oldest() {
            Ok(oldest) => oldest,
            Err(e) => {
                // Unknown: keep all of the log rather than risk the fallback's records.
                tracing::warn!(error = %e, "cannot list snapshots; keeping the log");
                Some(0)
            }
        }
    }

    fn forget_before(&mut self, lsn: Lsn) {
        if let Err(e) = self.store.forget_before(lsn) {
            tracing::warn!(error = %e, "cannot delete snapshots older than an installed one");
        }
    }
}

/// The thread: waits for jobs or the next tick and drives its [`PartitionCore`].
struct Worker {
    core: PartitionCore,
    rx: Receiver<Job>,
    stop: Arc<AtomicBool>,
    last_tick: Instant,
}

impl Worker {
    fn run(mut self) {
        let tick_interval = self.core.config.tick_interval;
        loop {
            let mut wait = tick_interval.saturating_sub(self.last_tick.elapsed());
            if let Some(deadline) = self.core.next_held_deadline() {
                wait = wait.min(deadline.saturating_duration_since(Instant::now()));
            }
            match self.rx.recv_timeout(wait) {
                Ok(job) => self.core.handle(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while !self.core.batch_full() {
                match self.rx.try_recv() {
                    Ok(job) => self.core.handle(job),
                    Err(_) => break,
                }
            }
            if self.core.is_following() {
                self.last_tick = Instant::now();
            } else if self.core.expiry_behind() || self.last_tick.elapsed() >= tick_interval {
                self.last_tick = Instant::now();
                self.core.tick(now_ms());
            }
            if self.core.finish_batch() {
                self.core.metrics.queue_depth.get_or_create(&self.core.label).set(self.rx.len() as i64);
            }
            self.core.release_held();
            self.core.maybe_snapshot();
            if self.stop.load(Ordering::Acquire) && self.rx.is_empty() {
                break;
            }
        }
        self.core.finish_batch();
        self.core.expire_held();
        self.core.final_snapshot();
    }
}

/// One partition's writer logic without a thread, queue or clock: the caller hands it jobs, says
/// when to tick (and what time it is), and ends each batch. The daemon's thread ([`Worker`]) and
/// the deterministic simulation (`gateway/tests/simulation.rs`) drive this same code.
pub struct PartitionCore {
    label: crate::metrics::PartitionLabel,
    partition: Partition,
    wal: Wal,
    snapshots: Box<dyn SnapshotWriter>,
    board: Arc<SoldOutBoard>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
    poisoned: Arc<StorageHealth>,
    following: Arc<AtomicBool>,
    encode_buffer: AlignedVec,
    /// Events of the current batch; each pending reply owns a range of it.
    events: Vec<Event>,
    pending: Vec<(Reply, Result<Outcome, Failure>, std::ops::Range<usize>)>,
    answers: Vec<(tokio::sync::oneshot::Sender<QueryAnswer>, QueryAnswer)>,
    appended: bool,
    since_snapshot: u64,
    /// The last tick used its whole expiry budget: tick again after the next batch instead of
    /// waiting for the interval, so an expiry storm is worked off in slices between batches.
    expiry_behind: bool,
    /// Events of the current batch wanted by a webhook, handed to the notifier after the commit.
    notify_pending: Vec<crate::notify::Notification>,
    /// The events of the current batch that a Tick produced (for the order hook).
    tick_events: std::ops::Range<usize>,
    /// `--ack-after-replica` only: committed answers waiting for the followers.
    held: Option<super::held::HeldAnswers>,
}

impl PartitionCore {
    /// `storage` is shared by every partition of a process: one failed log stops all
    /// acknowledgements, as `/ready` and `/health` report one state for the server.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition: Partition,
        wal: Wal,
        snapshots: Box<dyn SnapshotWriter>,
        board: Arc<SoldOutBoard>,
        metrics: Arc<Metrics>,
        config: WorkerConfig,
        poisoned: Arc<StorageHealth>,
        following: Arc<AtomicBool>,
    ) -> PartitionCore {
        publish_all(&partition, &board);
        let held =
            config.replica_ack.clone().map(|b| super::held::HeldAnswers::new(b, partition.index(), metrics.clone()));
        PartitionCore {
            held,
            label: Metrics::partition(partition.index()),
            partition,
            wal,
            snapshots,
            board,
            metrics,
            pending: Vec::with_capacity(config.batch_limit),
            config,
            poisoned,
            following,
            encode_buffer: AlignedVec::new(),
            events: Vec::with_capacity(1024),
            answers: Vec::new(),
            appended: false,
            since_snapshot: 0,
            expiry_behind: false,
            notify_pending: Vec::new(),
            tick_events: 0..0,
        }
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.failed()
    }

    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// The batch holds `batch_limit` jobs: end it before taking more.
    pub fn batch_full(&self) -> bool {
        self.pending.len() + self.answers.len() >= self.config.batch_limit
    }

    /// The last tick expired its whole budget: tick again after the next batch.
    pub fn expiry_behind(&self) -> bool {
        self.expiry_behind
    }

    /// Applies an expiry tick at `now_ms` (part of the current batch).
    pub fn tick(&mut self, now_ms: u64) {
        let budget = self.config.expiry_budget_per_tick;
        let envelope = Envelope { now_ms, command: Command::Tick { budget } };
        let start = self.events.len();
        self.apply(envelope, None);
        self.tick_events = start..self.events.len();
        let expired = self.events[start..]
            .iter()
            .filter(|e| {
                matches!(e, Event::Released { reason: ReleaseReason::Expired | ReleaseReason::BalanceMissed, .. })
            })
            .count();
        self.expiry_behind = expired >= budget as usize;
        if let Err(e) = self.wal.flush_if_due(Instant::now()) {
            self.poison(&e);
        }
    }

    /// Adds a job to the current batch; nothing is answered before [`PartitionCore::finish_batch`].
    pub fn handle(&mut self, job: Job) {
        match job {
            Job::Apply { envelope, reply } => self.apply(envelope, Some(reply)),
            Job::Query { query, reply } => {
                let answer = self.query(query);
                self.answers.push((reply, answer));
            }
            // Only wakes the thread: held answers are released after every batch.
            Job::Replicated => {}
            Job::Install { lsn, partition, bytes, reply } => {
                let _ = reply.send(self.install(lsn, *partition, &bytes));
            }
        }
    }

    /// When the oldest held answer times out (`--ack-after-replica`), to bound the thread's wait.
    pub fn next_held_deadline(&self) -> Option<Instant> {
        self.held.as_ref().and_then(|h| h.next_deadline())
    }

    /// Answers the held batches the followers now cover, and those past the timeout.
    pub fn release_held(&mut self) {
        if let Some(held) = self.held.as_mut() {
            held.release(&self.partition);
        }
    }

    /// At shutdown: every held answer is answered `replica_timeout`.
    pub fn expire_held(&mut self) {
        if let Some(held) = self.held.as_mut() {
            held.expire_all(&self.partition);
        }
    }

    /// Follower catch-up from the primary's snapshot (`replication::follower`). The snapshot is
    /// made durable before the log is restarted after it, so a crash in between recovers from it.
    fn install(&mut self, lsn: u64, partition: Partition, bytes: &[u8]) -> Result<(), String> {
        if !self.is_following() {
            return Err("only a follower installs a snapshot".to_owned());
        }
        // Whatever this batch holds so far is answered against the old state, before it goes.
        self.finish_batch();
        let _ = self.snapshots.wait();
        self.snapshots.write_encoded(lsn, bytes).map_err(|e| format!("cannot store the snapshot: {e}"))?;
        if let Err(e) = self.wal.restart_at(lsn + 1) {
            self.poison(&e);
            return Err(format!("cannot restart the log after the snapshot: {e}"));
        }
        self.snapshots.forget_before(lsn);
        self.partition = partition;
        publish_all(&self.partition, &self.board);
        self.since_snapshot = 0;
        self.metrics.wal_durable_lsn.get_or_create(&self.label).set(lsn);
        tracing::info!(partition = self.partition.index(), lsn, "installed the primary's snapshot");
        Ok(())
    }

    fn apply(&mut self, envelope: Envelope, reply: Option<Reply>) {
        if self.poisoned.failed() {
            if let Some(reply) = reply {
                self.pending.push((reply, Err(Failure::Storage), 0..0));
            }
            return;
        }
        let start = self.events.len();
        let result = self.partition.apply(&envelope, &mut self.events).map_err(Failure::Engine);
        if let Ok(Outcome::Changed) = result {
            self.append(&envelope);
            self.collect_notifications(&envelope, start);
        }
        if let Some(reply) = reply {
            self.pending.push((reply, result, start..self.events.len()));
        }
    }

    fn append(&mut self, envelope: &Envelope) {
        let buffer = std::mem::take(&mut self.encode_buffer);
        match encode_envelope_into(envelope, buffer) {
            Ok(bytes) => {
                if let Err(e) = self.wal.append(RECORD_COMMAND, &bytes) {
                    self.poison(&e);
                }
                self.encode_buffer = bytes;
                self.appended = true;
                self.since_snapshot += 1;
            }
            Err(e) => {
                // The state already changed in memory but cannot be logged: stop acknowledging.
                tracing::error!(partition = self.partition.index(), error = %e, "cannot encode a command");
                self.poison(&format!("cannot encode a command: {e}"));
            }
        }
    }

    /// Keep the events (from `start`) that some webhook wants, with the LSN just appended. Nothing
    /// is sent before the commit; a follower sends nothing (its primary does).
    fn collect_notifications(&mut self, envelope: &Envelope, start: usize) {
        let Some(notifier) = self.config.notifier.as_ref() else { return };
        if self.following.load(Ordering::Acquire) {
            return;
        }
        let lsn = self.wal.last_lsn();
        for event in &self.events[start..] {
            if let Some(kind) = notifier.kind_of(event) {
                let sku_code = match event {
                    oms_engine::Event::LowStock { sku, .. } => self.partition.stock(*sku).map(|view| view.code),
                    _ => None,
                };
                self.notify_pending.push(crate::notify::Notification {
                    kind,
                    partition: self.partition.index(),
                    lsn,
                    at_ms: envelope.now_ms,
                    event: event.clone(),
                    sku_code,
                });
            }
        }
    }

    fn poison(&mut self, error: &dyn std::fmt::Display) {
        if self.poisoned.fail(format!("partition {}: {error}", self.partition.index())) {
            tracing::error!(partition = self.partition.index(), %error, "log write failed: no further writes or acknowledgements");
        }
        self.metrics.storage_failed.set(1);
    }

    fn query(&mut self, query: Query) -> QueryAnswer {
        let p = &self.partition;
        match query {
            Query::Stock(sku) => QueryAnswer::Stock(p.stock(sku)),
            Query::Available(sku) => QueryAnswer::Available(p.available(sku)),
            Query::Reservation(id) => QueryAnswer::Reservation(p.reservation(id)),
            Query::Campaign(id) => QueryAnswer::Campaign(p.campaign(id)),
            Query::Export => {
                let mut rows = Vec::with_capacity(p.sku_count());
                p.for_each_sku(|sku, code, available| rows.push((sku, code.to_owned(), available)));
                QueryAnswer::Export(rows)
            }
            Query::Audit => QueryAnswer::Audit(Box::new(PartitionAudit {
                partition: p.index(),
                counters: p.counters(),
                live_reservations: p.live_reservations(),
                skus: p.sku_count(),
                durable_lsn: self.wal.durable_lsn(),
                check: p.check(),
            })),
            Query::Orders(q) => QueryAnswer::Orders(crate::orders::answer(p, q)),
            Query::ChannelStock(channel) => {
                let mut rows = Vec::with_capacity(p.sku_count());
                p.for_each_channel_sellable(oms_engine::ChannelId(channel), |sku, code, qty| {
                    rows.push((sku, code.to_owned(), qty))
                });
                QueryAnswer::ChannelStock { lsn: self.wal.last_lsn(), rows }
            }
        }
    }

    /// Ends the batch: one group commit for everything appended, then every answer. Returns
    /// whether there was a batch to end.
    pub fn finish_batch(&mut self) -> bool {
        if self.pending.is_empty() && self.answers.is_empty() && !self.appended {
            return false;
        }
        self.metrics.batch_size.get_or_create(&self.label).observe((self.pending.len() + self.answers.len()) as f64);
        if self.appended && !self.poisoned.failed() {
            let started = Instant::now();
            match self.wal.commit() {
                Ok(lsn) => {
                    self.metrics.wal_durable_lsn.get_or_create(&self.label).set(lsn);
                }
                Err(e) => self.poison(&e),
            }
            self.metrics.flush_latency.get_or_create(&self.label).observe(started.elapsed().as_secs_f64());
        }
        self.appended = false;
        let failed = self.poisoned.failed();
        if !self.notify_pending.is_empty() {
            // After the commit, never blocking: the notifier only queues (dropping its oldest).
            match self.config.notifier.as_ref() {
                Some(notifier) if !failed => notifier.offer(self.notify_pending.drain(..)),
                _ => self.notify_pending.clear(),
            }
        }
        self.publish();
        if let (Some(hook), false) = (self.config.orders.as_ref(), failed) {
            hook.committed(&self.events, &self.events[self.tick_events.clone()]);
        }
        if let (Some(hook), false) = (self.config.connectors.as_ref(), failed) {
            if !self.following.load(Ordering::Acquire) {
                hook.committed(&self.partition, &self.events, self.wal.last_lsn());
            }
        }
        self.tick_events = 0..0;
        let hold = match self.held.as_mut() {
            // A follower's own answers go to its replication task, which must never wait for acks.
            Some(held) if !failed && !self.following.load(Ordering::Acquire) && held.must_hold(self.wal.last_lsn()) => {
                Some(held)
            }
            _ => None,
        };
        if let Some(held) = hold {
            held.hold(self.wal.last_lsn(), self.pending.drain(..), &self.events);
        }
        for (reply, result, range) in self.pending.drain(..) {
            // A refusal in a failed batch is not answered either: it may rest on commands of this
            // batch that are lost (the last unit taken by a reserve that never became durable).
            let result = if failed { Err(Failure::Storage) } else { result };
            deliver(reply, result, &self.events[range], &self.partition);
        }
        // Reads are answered from memory even after the log failed: what they show includes the
        // commands of a failed batch (answered storage_failed: they may or may not survive a
        // restart), never anything acknowledged that is not there.
        for (reply, answer) in self.answers.drain(..) {
            let _ = reply.send(answer);
        }
        self.events.clear();
        self.metrics.live_reservations.get_or_create(&self.label).set(self.partition.live_reservations() as i64);
        true
    }

    /// Refresh the sold-out board for everything this batch touched.
    fn publish(&mut self) {
        self.board.observe(&self.events);
        let mut last = None;
        let mut low_stock_changed = false;
        for event in &self.events {
            let sku = match event {
                Event::StockMoved(m) => m.sku,
                Event::SkuDefined { id } => *id,
                Event::LowStock { sku, .. } => {
                    low_stock_changed = true;
                    *sku
                }
                _ => continue,
            };
            if last == Some(sku) {
                continue;
            }
            last = Some(sku);
            if let Some(available) = self.partition.available(sku) {
                self.board.publish_available(sku, available);
            }
        }
        if low_stock_changed {
            self.metrics.low_stock_skus.get_or_create(&self.label).set(self.partition.low_stock_skus() as i64);
        }
    }

    /// Between batches: take a finished snapshot write (then delete the log segments that every
    /// kept snapshot covers), and start a new one every `snapshot_every` logged commands.
    pub fn maybe_snapshot(&mut self) {
        if self.snapshots.in_flight() {
            match self.snapshots.poll() {
                None => return,
                Some(Ok(lsn)) => {
                    self.metrics.snapshots.get_or_create(&self.label).inc();
                    // Keep the log after the OLDEST kept snapshot, not just the new one: if the
                    // new one is damaged or deleted, recovery falls back to the older one and
                    // needs every record after it.
                    let covered = self.snapshots.oldest_kept().map_or(0, |oldest| oldest.min(lsn));
                    if let Err(e) = self.wal.truncate_before(covered, self.config.retention) {
                        tracing::warn!(partition = self.partition.index(), error = %e, "could not delete old segments");
                    }
                }
                Some(Err(e)) => tracing::error!(partition = self.partition.index(), error = %e, "snapshot failed"),
            }
        }
        if self.since_snapshot < self.config.snapshot_every || self.poisoned.failed() {
            return;
        }
        // The image reflects every appended record, so the log must hold all of them durably
        // before the snapshot claims their LSN (otherwise a crash could leave a snapshot ahead of
        // the log, and new records would reuse LSNs the snapshot already covers).
        if let Err(e) = self.wal.sync() {
            self.poison(&e);
            return;
        }
        // The clone is the consistent point; encoding and the file write happen elsewhere.
        let image = self.partition.image();
        let lsn = self.wal.durable_lsn();
        debug_assert_eq!(lsn, self.wal.last_lsn());
        self.since_snapshot = 0;
        self.snapshots.start(self.partition.index(), lsn, image);
    }

    /// At shutdown, after the last batch: flush, and snapshot if anything was logged since the last.
    pub fn final_snapshot(&mut self) {
        let _ = self.snapshots.wait();
        if self.poisoned.failed() {
            return;
        }
        if let Err(e) = self.wal.sync() {
            self.poison(&e);
            return;
        }
        if self.since_snapshot > 0 {
            let lsn = self.wal.durable_lsn();
            match self.snapshots.write_now(lsn, &self.partition.image()) {
                Ok(()) => tracing::info!(partition = self.partition.index(), lsn, "final snapshot written"),
                Err(e) => tracing::error!(partition = self.partition.index(), error = %e, "final snapshot failed"),
            }
        }
    }
}

pub(super) fn deliver(reply: Reply, result: Result<Outcome, Failure>, events: &[Event], names: &dyn CodeNames) {
    match reply {
        Reply::Part(tx) => {
            let _ = tx.send(result.map(|_| events.to_vec()));
        }
        Reply::Conn { tx, request_id, opcode, started, shape } => {
            let response = match result {
                Ok(_) => match shape {
                    AnswerShape::Reserved => reserved_response_of(events, names),
                    AnswerShape::Done => Response::Done,
                },
                Err(failure) => Response::Error(failure_to_wire(&failure, names)),
            };
            let _ = tx.send(Outbound { request_id, opcode: opcode as u16, heavy: false, started, response });
        }
    }
}

pub fn failure_to_wire(failure: &Failure, names: &dyn CodeNames) -> WireError {
    match failure {
        Failure::Engine(e) => from_engine(e, names),
        Failure::Storage => {
            gateway(ErrorCode::STORAGE_FAILED, "the log could not be written; nothing further is acknowledged")
        }
        Failure::ShuttingDown => gateway(ErrorCode::SHUTTING_DOWN, "the server is shutting down"),
        Failure::Busy => gateway(ErrorCode::BUSY, "partition queue full; retry with backoff"),
        Failure::NotReplicated => gateway(
            ErrorCode::REPLICA_TIMEOUT,
            "committed on this server but not confirmed by the followers in time: it may not survive a failover; \
             retry with the same idempotency key",
        ),
    }
}

/// The wire answer for a reservation from the events of its part(s), naming SKUs and warehouses
/// by code.
pub fn reserved_response_of(events: &[Event], names: &dyn CodeNames) -> Response {
    let mut answer: Option<Reserved> = None;
    for event in events {
        if let Event::Reserved { id, allocations, expires_at_ms, replayed, promise_ms } = event {
            let wire = answer.get_or_insert_with(|| Reserved {
                id: id.0,
                allocations: Vec::with_capacity(allocations.len()),
                expires_at_ms: *expires_at_ms,
                replayed: *replayed,
                promise_ms: *promise_ms,
            });
            wire.allocations.extend(allocations.iter().map(|a| Allocation {
                sku_id: a.sku.0,
                warehouse_id: a.warehouse.0,
                qty: a.qty,
                sku: names.sku_code(a.sku.0).unwrap_or(Code::EMPTY),
                warehouse: names.warehouse_code(a.warehouse.0).unwrap_or(Code::EMPTY),
            }));
            wire.replayed &= *replayed;
            wire.promise_ms = wire.promise_ms.max(*promise_ms);
        }
    }
    match answer {
        Some(wire) => Response::Reserved(wire),
        None => Response::Error(gateway(ErrorCode::INTERNAL, "reservation produced no answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_engine::command::{PartInfo, ReserveRequest};
    use oms_engine::{ChannelId, CustomerId, Limits, Line, SkuId, WarehouseId};
    use oms_wal::sim::SimulatedStorage;
    use oms_wal::WalConfig;

    struct NoSnapshots;
    impl SnapshotWriter for NoSnapshots {
        fn start(&mut self, _: u32, _: Lsn, _: PartitionImage) {}
        fn in_flight(&self) -> bool {
            false
        }
        fn poll(&mut self) -> Option<Result<Lsn, String>> {
            None
        }
        fn wait(&mut self) -> Option<Result<Lsn, String>> {
            None
        }
        fn write_encoded(&mut self, _: Lsn, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn oldest_kept(&self) -> Option<Lsn> {
            None
        }
        fn forget_before(&mut self, _: Lsn) {}
    }

    fn job(command: Command) -> (Job, tokio::sync::oneshot::Receiver<super::super::PartResult>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Job::Apply { envelope: Envelope { now_ms: 1_000, command }, reply: Reply::Part(tx) }, rx)
    }

    fn reserve(id: u64) -> Command {
        Command::Reserve(ReserveRequest {
            id: oms_engine::routing::reservation_id(id, oms_engine::routing::PartitionSet(1)),
            lines: vec![Line { sku: SkuId(0), qty: 1 }],
            ttl_ms: 60_000,
            fingerprint: 0,
            idempotency_key: None,
            customer: CustomerId(1),
            channel: ChannelId(0),
            campaign: None,
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
        })
    }

    // Checks that when a batch's flush fails, a refusal in that batch is answered storage_failed
    // too: it was decided on state (the last unit, taken by a reserve of the same batch) that the
    // failed flush may have lost. Found by the deterministic simulation (seeds 0, 2, 5).
    #[test]
    fn a_refusal_in_a_failed_batch_is_not_answered() {
        let storage = SimulatedStorage::new();
        let (wal, _) = Wal::open_with_storage(WalConfig::new("/sim"), Arc::new(storage.clone())).unwrap();
        let config = WorkerConfig {
            queue_capacity: 16,
            batch_limit: 16,
            tick_interval: Duration::from_millis(100),
            expiry_budget_per_tick: 16,
            snapshot_every: 1_000,
            retention: Retention::default(),
            notifier: None,
            orders: None,
            connectors: None,
            replica_ack: None,
        };
        let mut core = PartitionCore::new(
            Partition::new(0, 1, Limits::default()),
            wal,
            Box::new(NoSnapshots),
            Arc::new(SoldOutBoard::new()),
            Arc::new(Metrics::new()),
            config,
            Arc::new(StorageHealth::default()),
            Arc::new(AtomicBool::new(false)),
        );
        let setup = [
            Command::DefineWarehouse { id: WarehouseId(1), code: "W1".into(), region: "r".into(), priority: 0 },
            Command::DefineSku { id: SkuId(0), code: "S0".into(), low_stock_threshold: 0 },
            Command::Receive { sku: SkuId(0), warehouse: WarehouseId(1), qty: 1 },
        ];
        let mut answers = Vec::new();
        for command in setup {
            let (job, rx) = job(command);
            core.handle(job);
            answers.push(rx);
        }
        core.finish_batch();
        for mut rx in answers {
            assert!(rx.try_recv().unwrap().is_ok());
        }
        // The first reserve takes the last unit, the second is refused for it; the flush fails.
        let (first, mut first_rx) = job(reserve(1));
        let (second, mut second_rx) = job(reserve(2));
        core.handle(first);
        core.handle(second);
        storage.fail_next_sync();
        core.finish_batch();
        assert!(core.is_poisoned());
        assert_eq!(first_rx.try_recv().unwrap(), Err(Failure::Storage));
        assert_eq!(second_rx.try_recv().unwrap(), Err(Failure::Storage));
    }

    // Checks issue 12's "after a disk-full error reads are refused too": once the log failed,
    // writes are answered storage_failed and change nothing, while reads are still answered from
    // memory, and the failure's reason is kept for /health.
    #[test]
    fn after_a_storage_failure_reads_are_served_and_writes_refused() {
        let storage = SimulatedStorage::new();
        let (wal, _) = Wal::open_with_storage(WalConfig::new("/sim"), Arc::new(storage.clone())).unwrap();
        let health = Arc::new(StorageHealth::default());
        let config = WorkerConfig {
            queue_capacity: 16,
            batch_limit: 16,
            tick_interval: Duration::from_millis(100),
            expiry_budget_per_tick: 16,
            snapshot_every: 1_000,
            retention: Retention::default(),
            notifier: None,
            orders: None,
            replica_ack: None,
            connectors: None,
        };
        let mut core = PartitionCore::new(
            Partition::new(0, 1, Limits::default()),
            wal,
            Box::new(NoSnapshots),
            Arc::new(SoldOutBoard::new()),
            Arc::new(Metrics::new()),
            config,
            health.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        for command in [
            Command::DefineWarehouse { id: WarehouseId(1), code: "W1".into(), region: "r".into(), priority: 0 },
            Command::DefineSku { id: SkuId(0), code: "S0".into(), low_stock_threshold: 0 },
            Command::Receive { sku: SkuId(0), warehouse: WarehouseId(1), qty: 3 },
        ] {
            core.handle(job(command).0);
        }
        core.finish_batch();
        let (reserve_job, mut reserve_rx) = job(reserve(1));
        core.handle(reserve_job);
        storage.fail_next_sync();
        core.finish_batch();
        assert!(health.failed());
        assert!(health.reason().is_some_and(|r| r.contains("partition 0")), "{:?}", health.reason());
        assert_eq!(reserve_rx.try_recv().unwrap(), Err(Failure::Storage));
        // A later write is refused without touching the state; a read is answered.
        let before = core.partition().image();
        let (write, mut write_rx) = job(Command::Receive { sku: SkuId(0), warehouse: WarehouseId(1), qty: 1 });
        let (tx, mut read_rx) = tokio::sync::oneshot::channel();
        core.handle(write);
        core.handle(Job::Query { query: Query::Stock(SkuId(0)), reply: tx });
        core.finish_batch();
        assert_eq!(write_rx.try_recv().unwrap(), Err(Failure::Storage));
        assert_eq!(core.partition().image(), before);
        match read_rx.try_recv().unwrap() {
            QueryAnswer::Stock(Some(view)) => assert_eq!(view.on_hand, 3),
            other => panic!("a read after the storage failure was not served: {other:?}"),
        }
    }
}
