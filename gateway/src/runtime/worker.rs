//! One writer thread per partition: drain a batch, apply, append, one group commit, answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TrySendError};
use oms_engine::codec::{encode_envelope_into, encode_image, RECORD_COMMAND};
use oms_engine::event::ReleaseReason;
use oms_engine::fastpath::SoldOutBoard;
use oms_engine::{Command, Envelope, Event, Outcome, Partition};
use oms_wal::{Lsn, Retention, SnapshotStore, Wal};
use rkyv::util::AlignedVec;

use super::{AnswerShape, Failure, Job, Outbound, PartitionAudit, Query, QueryAnswer, RecoveredPartition, Reply};
use crate::metrics::Metrics;
use crate::protocol::{ReservedWire, Response, WireAllocation};
use crate::wire_error::{from_engine, GatewayCode};

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
    /// `--ack-after-replica`: answers wait until the followers acknowledged their records.
    pub replica_ack: Option<Arc<crate::replication::AckBoard>>,
}

/// Handles to every partition thread.
pub struct Workers {
    senders: Vec<Sender<Job>>,
    threads: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    poisoned: Arc<AtomicBool>,
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
        self.poisoned.load(Ordering::Acquire)
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
    let poisoned = Arc::new(AtomicBool::new(false));
    let following = Arc::new(AtomicBool::new(false));
    let mut logs = Vec::new();
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for r in recovered {
        let (tx, rx) = channel::bounded(config.queue_capacity);
        let index = r.partition.index();
        publish_all(&r.partition, &board);
        let snapshots = SnapshotStore::open(&r.dir).map_err(std::io::Error::other)?;
        logs.push((r.wal.reader_handle(), r.dir.clone()));
        let worker = Worker {
            label: Metrics::partition(index),
            partition: r.partition,
            wal: r.wal,
            snapshots,
            rx,
            board: board.clone(),
            metrics: metrics.clone(),
            config: config.clone(),
            stop: stop.clone(),
            poisoned: poisoned.clone(),
            following: following.clone(),
            encode_buffer: AlignedVec::new(),
            events: Vec::with_capacity(1024),
            pending: Vec::with_capacity(config.batch_limit),
            answers: Vec::new(),
            appended: false,
            since_snapshot: 0,
            last_tick: Instant::now(),
            expiry_behind: false,
            snapshot_thread: None,
            notify_pending: Vec::new(),
            held: config.replica_ack.clone().map(|b| super::held::HeldAnswers::new(b, index, metrics.clone())),
        };
        let thread = std::thread::Builder::new().name(format!("omsd-p{index}")).spawn(move || worker.run())?;
        senders.push(tx);
        threads.push(thread);
    }
    Ok(Workers { senders, threads: parking_lot::Mutex::new(threads), stop, poisoned, logs, following })
}

/// Seed the board with every SKU's availability and every campaign's state.
fn publish_all(partition: &Partition, board: &SoldOutBoard) {
    partition.for_each_sku(|sku, _, available| board.publish_available(sku, available));
    for c in partition.campaigns() {
        board.set_campaign_sold_out(c.id, c.remaining == 0 || c.closed);
    }
}

struct Worker {
    label: crate::metrics::PartitionLabel,
    partition: Partition,
    wal: Wal,
    snapshots: SnapshotStore,
    rx: Receiver<Job>,
    board: Arc<SoldOutBoard>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
    stop: Arc<AtomicBool>,
    poisoned: Arc<AtomicBool>,
    following: Arc<AtomicBool>,
    encode_buffer: AlignedVec,
    /// Events of the current batch; each pending reply owns a range of it.
    events: Vec<Event>,
    pending: Vec<(Reply, Result<Outcome, Failure>, std::ops::Range<usize>)>,
    answers: Vec<(tokio::sync::oneshot::Sender<QueryAnswer>, QueryAnswer)>,
    appended: bool,
    since_snapshot: u64,
    last_tick: Instant,
    /// The last tick used its whole expiry budget: tick again after the next batch instead of
    /// waiting for the interval, so an expiry storm is worked off in slices between batches.
    expiry_behind: bool,
    snapshot_thread: Option<JoinHandle<Result<Lsn, String>>>,
    /// Events of the current batch wanted by a webhook, handed to the notifier after the commit.
    notify_pending: Vec<crate::notify::Notification>,
    /// `--ack-after-replica` only: committed answers waiting for the followers.
    held: Option<super::held::HeldAnswers>,
}

impl Worker {
    fn run(mut self) {
        loop {
            let mut wait = self.config.tick_interval.saturating_sub(self.last_tick.elapsed());
            if let Some(deadline) = self.held.as_ref().and_then(|h| h.next_deadline()) {
                wait = wait.min(deadline.saturating_duration_since(Instant::now()));
            }
            match self.rx.recv_timeout(wait) {
                Ok(job) => self.handle(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while self.pending.len() + self.answers.len() < self.config.batch_limit {
                match self.rx.try_recv() {
                    Ok(job) => self.handle(job),
                    Err(_) => break,
                }
            }
            if self.following.load(Ordering::Acquire) {
                self.last_tick = Instant::now();
            } else if self.expiry_behind || self.last_tick.elapsed() >= self.config.tick_interval {
                self.tick();
            }
            self.finish_batch();
            if let Some(held) = self.held.as_mut() {
                held.release();
            }
            self.maybe_snapshot();
            if self.stop.load(Ordering::Acquire) && self.rx.is_empty() {
                break;
            }
        }
        self.finish_batch();
        if let Some(held) = self.held.as_mut() {
            held.expire_all();
        }
        self.final_snapshot();
    }

    fn tick(&mut self) {
        self.last_tick = Instant::now();
        let budget = self.config.expiry_budget_per_tick;
        let envelope = Envelope { now_ms: now_ms(), command: Command::Tick { budget } };
        let start = self.events.len();
        self.apply(envelope, None);
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

    fn handle(&mut self, job: Job) {
        match job {
            Job::Apply { envelope, reply } => self.apply(envelope, Some(reply)),
            Job::Query { query, reply } => {
                let answer = self.query(query);
                self.answers.push((reply, answer));
            }
            // Only wakes the thread: the loop releases held answers after every batch.
            Job::Replicated => {}
            Job::Install { lsn, partition, bytes, reply } => {
                let _ = reply.send(self.install(lsn, *partition, &bytes));
            }
        }
    }

    /// Follower catch-up from the primary's snapshot (`replication::follower`). The snapshot is
    /// made durable before the log is restarted after it, so a crash in between recovers from it.
    fn install(&mut self, lsn: u64, partition: Partition, bytes: &[u8]) -> Result<(), String> {
        if !self.following.load(Ordering::Acquire) {
            return Err("only a follower installs a snapshot".to_owned());
        }
        // Whatever this batch holds so far is answered against the old state, before it goes.
        self.finish_batch();
        if let Some(thread) = self.snapshot_thread.take() {
            let _ = thread.join();
        }
        self.snapshots.write(lsn, bytes).map_err(|e| format!("cannot store the snapshot: {e}"))?;
        if let Err(e) = self.wal.restart_at(lsn + 1) {
            self.poison(&e);
            return Err(format!("cannot restart the log after the snapshot: {e}"));
        }
        self.partition = partition;
        publish_all(&self.partition, &self.board);
        self.since_snapshot = 0;
        self.metrics.wal_durable_lsn.get_or_create(&self.label).set(lsn);
        tracing::info!(partition = self.partition.index(), lsn, "installed the primary's snapshot");
        Ok(())
    }

    fn apply(&mut self, envelope: Envelope, reply: Option<Reply>) {
        if self.poisoned.load(Ordering::Acquire) {
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
        match reply {
            Some(reply) => self.pending.push((reply, result, start..self.events.len())),
            None => {}
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
                self.poisoned.store(true, Ordering::Release);
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
                self.notify_pending.push(crate::notify::Notification {
                    kind,
                    partition: self.partition.index(),
                    lsn,
                    at_ms: envelope.now_ms,
                    event: event.clone(),
                });
            }
        }
    }

    fn poison(&mut self, error: &dyn std::fmt::Display) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
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
        }
    }

    fn finish_batch(&mut self) {
        if self.pending.is_empty() && self.answers.is_empty() && !self.appended {
            return;
        }
        self.metrics.batch_size.get_or_create(&self.label).observe((self.pending.len() + self.answers.len()) as f64);
        if self.appended && !self.poisoned.load(Ordering::Acquire) {
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
        let failed = self.poisoned.load(Ordering::Acquire);
        if !self.notify_pending.is_empty() {
            // After the commit, never blocking: the notifier only queues (dropping its oldest).
            match self.config.notifier.as_ref() {
                Some(notifier) if !failed => notifier.offer(self.notify_pending.drain(..)),
                _ => self.notify_pending.clear(),
            }
        }
        self.publish();
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
            let result = match result {
                Ok(_) if failed => Err(Failure::Storage),
                other => other,
            };
            deliver(reply, result, &self.events[range]);
        }
        for (reply, answer) in self.answers.drain(..) {
            let answer = if failed { QueryAnswer::Unavailable(Failure::Storage) } else { answer };
            let _ = reply.send(answer);
        }
        self.events.clear();
        self.metrics.live_reservations.get_or_create(&self.label).set(self.partition.live_reservations() as i64);
        self.metrics.queue_depth.get_or_create(&self.label).set(self.rx.len() as i64);
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

    fn maybe_snapshot(&mut self) {
        if let Some(thread) = self.snapshot_thread.as_ref() {
            if !thread.is_finished() {
                return;
            }
            if let Some(thread) = self.snapshot_thread.take() {
                match thread.join() {
                    Ok(Ok(lsn)) => {
                        self.metrics.snapshots.get_or_create(&self.label).inc();
                        if let Err(e) = self.wal.truncate_before(lsn, self.config.retention) {
                            tracing::warn!(partition = self.partition.index(), error = %e, "could not delete old segments");
                        }
                    }
                    Ok(Err(e)) => tracing::error!(partition = self.partition.index(), error = %e, "snapshot failed"),
                    Err(_) => tracing::error!(partition = self.partition.index(), "snapshot thread panicked"),
                }
            }
        }
        if self.since_snapshot < self.config.snapshot_every || self.poisoned.load(Ordering::Acquire) {
            return;
        }
        // The image reflects every appended record, so the log must hold all of them durably
        // before the snapshot claims their LSN (otherwise a crash could leave a snapshot ahead of
        // the log, and new records would reuse LSNs the snapshot already covers).
        if let Err(e) = self.wal.sync() {
            self.poison(&e);
            return;
        }
        // The clone is the consistent point; encoding and the file write happen off this thread.
        let image = self.partition.image();
        let lsn = self.wal.durable_lsn();
        debug_assert_eq!(lsn, self.wal.last_lsn());
        let store = self.snapshots.clone();
        self.since_snapshot = 0;
        let spawned =
            std::thread::Builder::new().name(format!("omsd-snap{}", self.partition.index())).spawn(move || {
                let bytes = encode_image(&image).map_err(|e| e.to_string())?;
                store.write(lsn, &bytes).map_err(|e| e.to_string())?;
                Ok(lsn)
            });
        match spawned {
            Ok(handle) => self.snapshot_thread = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the snapshot thread"),
        }
    }

    fn final_snapshot(&mut self) {
        if let Some(thread) = self.snapshot_thread.take() {
            let _ = thread.join();
        }
        if self.poisoned.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.wal.sync() {
            self.poison(&e);
            return;
        }
        if self.since_snapshot > 0 {
            let lsn = self.wal.durable_lsn();
            let written = encode_image(&self.partition.image())
                .map_err(|e| e.to_string())
                .and_then(|bytes| self.snapshots.write(lsn, &bytes).map_err(|e| e.to_string()));
            match written {
                Ok(_) => tracing::info!(partition = self.partition.index(), lsn, "final snapshot written"),
                Err(e) => tracing::error!(partition = self.partition.index(), error = %e, "final snapshot failed"),
            }
        }
    }
}

pub(super) fn deliver(reply: Reply, result: Result<Outcome, Failure>, events: &[Event]) {
    match reply {
        Reply::Part(tx) => {
            let _ = tx.send(result.map(|_| events.to_vec()));
        }
        Reply::Conn { tx, request_id, opcode, started, shape } => {
            let response = match result {
                Ok(_) => match shape {
                    AnswerShape::Reserved => reserved_response_of(events),
                    AnswerShape::Done => Response::Done,
                    AnswerShape::SkuDefined(id) => Response::SkuDefined { id },
                },
                Err(failure) => Response::Error(failure_to_wire(&failure)),
            };
            let _ = tx.send(Outbound { request_id, opcode, started, response });
        }
    }
}

pub fn failure_to_wire(failure: &Failure) -> crate::protocol::WireError {
    match failure {
        Failure::Engine(e) => from_engine(e),
        Failure::Storage => {
            GatewayCode::StorageFailed.error("the log could not be written; nothing further is acknowledged")
        }
        Failure::ShuttingDown => GatewayCode::ShuttingDown.error("the server is shutting down"),
        Failure::Busy => GatewayCode::Busy.error("partition queue full; retry with backoff"),
        Failure::NotReplicated => GatewayCode::ReplicaTimeout.error(
            "committed on this server but not confirmed by the followers in time: it may not survive a failover; \
             retry with the same idempotency key",
        ),
    }
}

/// The wire answer for a reservation from the events of its part(s).
pub fn reserved_response_of(events: &[Event]) -> Response {
    let mut answer: Option<ReservedWire> = None;
    for event in events {
        if let Event::Reserved { id, allocations, expires_at_ms, replayed, promise_ms } = event {
            let wire = answer.get_or_insert_with(|| ReservedWire {
                id: id.0,
                allocations: Vec::with_capacity(allocations.len()),
                expires_at_ms: *expires_at_ms,
                replayed: *replayed,
                promise_ms: *promise_ms,
            });
            wire.allocations.extend(allocations.iter().map(|a| WireAllocation {
                sku: a.sku.0,
                warehouse: a.warehouse.0,
                qty: a.qty,
            }));
            wire.replayed &= *replayed;
            wire.promise_ms = wire.promise_ms.max(*promise_ms);
        }
    }
    match answer {
        Some(wire) => Response::Reserved(wire),
        None => Response::Error(GatewayCode::Internal.error("reservation produced no answer")),
    }
}
