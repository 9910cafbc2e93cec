//! Follower mode (`omsd --follow PRIMARY`): subscribe to every partition of the primary from this
//! server's own durable LSN + 1, and feed each record to the owning partition thread as an
//! ordinary command. The engine is deterministic and the follower applies nothing else (its
//! partition threads do not tick while following), so every record lands in this server's own
//! log at the SAME LSN; that is checked after every frame.
//!
//! `promote` stops following after the frame being applied, checks that every record received
//! from the primary is durable here, and makes the server writable.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use oms_engine::codec::{decode_envelope, decode_image, RECORD_COMMAND};
use oms_engine::{Envelope, Limits, Partition};
use tokio::sync::oneshot;

use oms_client::{ClientError, LogStream};
use oms_engine::replica::MAX_IMAGE_BYTES;
use oms_proto::{ErrorCode, LogRecord, LogRecords, Response, SnapshotChunk};

use super::CODE_BEHIND_RETENTION;
use crate::metrics::Metrics;
use crate::runtime::{now_ms, Failure, Job, PartResult, Reply};
use crate::server::ServerCtx;
use crate::wire_error::gateway;

/// Why the follower task ended.
#[derive(Debug, thiserror::Error)]
pub enum FollowerExit {
    #[error("promoted")]
    Promoted,
    #[error("server shutting down")]
    Shutdown,
    #[error("partition {partition}: {reason}")]
    Fatal { partition: u32, reason: String },
}

pub fn spawn_follower(ctx: Arc<ServerCtx>) {
    let Some(primary) = ctx.replication.primary.clone() else {
        return;
    };
    let partitions = ctx.workers.partitions() as usize;
    {
        let mut positions = ctx.replication.positions.lock();
        *positions = (0..partitions as u32)
            .map(|p| ctx.workers.log(p).map_or((0, 0), |(log, _)| (log.durable_lsn(), log.durable_lsn())))
            .collect();
    }
    let task_ctx = ctx.clone();
    let handle = tokio::spawn(async move {
        let exit = follow(&task_ctx, &primary).await;
        match &exit {
            FollowerExit::Fatal { .. } => tracing::error!(%primary, reason = %exit, "replication stopped"),
            _ => tracing::info!(%primary, reason = %exit, "replication stopped"),
        }
        exit
    });
    *ctx.replication.task.lock() = Some(handle);
}

async fn follow(ctx: &Arc<ServerCtx>, primary: &str) -> FollowerExit {
    let mut backoff = oms_client::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        if ctx.replication.stop.load(Ordering::Acquire) {
            return FollowerExit::Promoted;
        }
        if ctx.shutting_down.load(Ordering::Acquire) {
            return FollowerExit::Shutdown;
        }
        match session(ctx, primary).await {
            Ok(exit) => return exit,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(%primary, error = %e, retry_in_ms = delay.as_millis() as u64, "replication connection lost; reconnecting");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One connection to the primary. Ok = stop for good; Err = reconnect.
async fn session(ctx: &Arc<ServerCtx>, primary: &str) -> Result<FollowerExit, ClientError> {
    let api_key = ctx.replication.primary_api_key.clone();
    let tls = ctx.replication.primary_tls.as_ref();
    let mut stream =
        LogStream::connect_tls(primary, api_key.as_deref(), "omsd-follower", Duration::from_secs(5), tls).await?;
    let partitions = ctx.workers.partitions();
    if stream.info().partitions != partitions {
        return Ok(FollowerExit::Fatal {
            partition: 0,
            reason: format!("the primary has {} partitions, this server {partitions}", stream.info().partitions),
        });
    }
    for p in 0..partitions {
        let from = ctx.workers.log(p).map_or(0, |(log, _)| log.durable_lsn()) + 1;
        stream.subscribe(u64::from(p), Some(p), from, false).await?;
    }
    tracing::info!(%primary, partitions, "following the primary");
    // Snapshots being received, per partition: (lsn, bytes so far).
    let mut images: Vec<Option<(u64, Vec<u8>)>> = (0..partitions).map(|_| None).collect();
    loop {
        if ctx.replication.stop.load(Ordering::Acquire) {
            return Ok(FollowerExit::Promoted);
        }
        if ctx.shutting_down.load(Ordering::Acquire) {
            return Ok(FollowerExit::Shutdown);
        }
        // The primary heartbeats every second, so this returns often enough to notice a promotion.
        let mut frame = stream.next().await?;
        // Record frames already received are handed to the partition threads together and
        // confirmed once, so they share the follower's group commits: applying frame by frame
        // would cost one flush per primary batch and fall behind a busy primary (and hold
        // --ack-after-replica answers for as long).
        let mut batch = FrameBatch::new(partitions);
        while let Response::LogRecords(LogRecords { partition, records, durable_lsn }) = frame.1 {
            if let Err(reason) = batch.submit(ctx, partition, &records, durable_lsn).await {
                return Ok(FollowerExit::Fatal { partition, reason });
            }
            let next = if batch.records < MAX_COALESCED_RECORDS { stream.try_next()? } else { None };
            match next {
                Some(next) => frame = next,
                None => {
                    // Nothing else received yet: confirm what was submitted.
                    frame = (oms_client::PING_REQUEST_ID, Response::Done);
                    break;
                }
            }
        }
        for (partition, pending) in batch.partitions.into_iter().enumerate() {
            let partition = partition as u32;
            if let Some(pending) = pending {
                match confirm_records(ctx, partition, pending).await {
                    // After every frame (heartbeats included, so a new connection reports at
                    // once): a primary with --ack-after-replica releases answers with it.
                    Ok(durable) => stream.ack(partition, durable).await?,
                    Err(reason) => return Ok(FollowerExit::Fatal { partition, reason }),
                }
            }
        }
        match frame.1 {
            // Not reached: the loop above consumes every record frame.
            Response::LogRecords(_) => {}
            Response::Snapshot(SnapshotChunk { partition, lsn, offset, total, data }) => {
                let Some(slot) = images.get_mut(partition as usize) else {
                    return Ok(FollowerExit::Fatal {
                        partition,
                        reason: "snapshot of an unknown partition".to_owned(),
                    });
                };
                match receive_chunk(slot, lsn, offset, total, &data) {
                    Ok(None) => {}
                    Ok(Some(bytes)) => match install_snapshot(ctx, partition, lsn, bytes).await {
                        Ok(durable) => stream.ack(partition, durable).await?,
                        Err(reason) => return Ok(FollowerExit::Fatal { partition, reason }),
                    },
                    Err(reason) => return Ok(FollowerExit::Fatal { partition, reason }),
                }
            }
            Response::Done => {}
            Response::Error(e) if e.code == CODE_BEHIND_RETENTION => {
                // The primary no longer has our next record: catch up from its snapshot instead
                // (the subscription id is the partition number).
                let Some(p) = u32::try_from(frame.0).ok().filter(|p| *p < partitions) else {
                    return Ok(FollowerExit::Fatal {
                        partition: 0,
                        reason: format!("unexpected error: {}", e.message),
                    });
                };
                let from = ctx.workers.log(p).map_or(0, |(log, _)| log.durable_lsn()) + 1;
                tracing::warn!(partition = p, from, oldest = ?e.available, "behind the primary's log retention: catching up from its snapshot");
                stream.subscribe(u64::from(p), Some(p), from, true).await?;
            }
            Response::Error(e) => {
                return Ok(FollowerExit::Fatal {
                    partition: frame.0 as u32,
                    reason: format!("{} ({}): {}", e.name, e.code.0, e.message),
                })
            }
            other => tracing::warn!(answer = ?other, "unexpected frame from the primary"),
        }
    }
}

/// Records of one frame batch handed to a partition thread and not yet confirmed.
#[derive(Default)]
struct Pending {
    waiting: Vec<(u64, oneshot::Receiver<PartResult>)>,
    last_lsn: Option<u64>,
    last_now_ms: Option<u64>,
    primary_durable: u64,
}

/// Frames received back to back, submitted to the partition threads before any is awaited.
struct FrameBatch {
    partitions: Vec<Option<Pending>>,
    records: usize,
}

/// Bound on the records submitted before they are confirmed (and acknowledged).
const MAX_COALESCED_RECORDS: usize = 16 * 1024;

impl FrameBatch {
    fn new(partitions: u32) -> FrameBatch {
        FrameBatch { partitions: (0..partitions).map(|_| None).collect(), records: 0 }
    }

    async fn submit(
        &mut self,
        ctx: &Arc<ServerCtx>,
        partition: u32,
        records: &[LogRecord],
        primary_durable: u64,
    ) -> Result<(), String> {
        let Some(slot) = self.partitions.get_mut(partition as usize) else {
            return Err("no such partition here".to_owned());
        };
        let pending = slot.get_or_insert_with(Pending::default);
        pending.primary_durable = pending.primary_durable.max(primary_durable);
        self.records += records.len();
        submit_records(ctx, partition, records, pending).await
    }
}

/// Hand a frame's records to the partition thread as ordinary command jobs (not awaited).
async fn submit_records(
    ctx: &Arc<ServerCtx>,
    partition: u32,
    records: &[LogRecord],
    pending: &mut Pending,
) -> Result<(), String> {
    for record in records {
        if record.record_type != RECORD_COMMAND {
            return Err(format!("unknown record type {} at LSN {}", record.record_type, record.lsn));
        }
        let envelope: Envelope =
            decode_envelope(&record.payload).map_err(|e| format!("record {} does not decode: {e}", record.lsn))?;
        ctx.index.learn(partition, &envelope.command);
        pending.last_now_ms = Some(envelope.now_ms);
        let (tx, rx) = oneshot::channel::<PartResult>();
        let mut job = Job::Apply { envelope, reply: Reply::Part(tx) };
        loop {
            match ctx.workers.try_submit(partition, job) {
                Ok(()) => break,
                Err(back) => {
                    job = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        pending.waiting.push((record.lsn, rx));
        pending.last_lsn = Some(record.lsn);
    }
    Ok(())
}

/// Wait for the submitted records, then check they landed at the same LSNs here. Returns this
/// server's durable LSN of the partition.
async fn confirm_records(ctx: &Arc<ServerCtx>, partition: u32, pending: Pending) -> Result<u64, String> {
    let Some((log, _)) = ctx.workers.log(partition).cloned() else {
        return Err("no such partition here".to_owned());
    };
    let Pending { waiting, last_lsn, last_now_ms, primary_durable } = pending;
    for (lsn, rx) in waiting {
        match rx.await {
            Ok(Ok(_)) => {}
            Ok(Err(Failure::Engine(e))) => {
                return Err(format!("record {lsn} was refused here ({e}): the follower diverged"))
            }
            Ok(Err(f)) => return Err(format!("record {lsn} could not be applied: {f:?}")),
            Err(_) => return Err("the partition thread stopped".to_owned()),
        }
    }
    let applied = log.durable_lsn();
    if let Some(last) = last_lsn {
        if applied != last {
            return Err(format!("record {last} landed at LSN {applied} here: the logs diverged"));
        }
    }
    let label = Metrics::partition(partition);
    let lag = primary_durable.saturating_sub(applied);
    ctx.metrics.replication_lag_records.get_or_create(&label).set(lag as i64);
    let lag_seconds = match (lag, last_now_ms) {
        (0, _) => 0.0,
        (_, Some(ms)) => now_ms().saturating_sub(ms) as f64 / 1000.0,
        (_, None) => ctx.metrics.replication_lag_seconds.get_or_create(&label).get(),
    };
    ctx.metrics.replication_lag_seconds.get_or_create(&label).set(lag_seconds);
    if let Some(slot) = ctx.replication.positions.lock().get_mut(partition as usize) {
        *slot = (applied, slot.1.max(primary_durable));
    }
    Ok(applied)
}

/// Add one snapshot chunk; the whole image once complete. Chunks must come in order, for one LSN,
/// within the announced total, and the total is bounded, so a peer cannot make this buffer grow
/// without limit.
fn receive_chunk(
    slot: &mut Option<(u64, Vec<u8>)>,
    lsn: u64,
    offset: u64,
    total: u64,
    data: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    if total > MAX_IMAGE_BYTES {
        return Err(format!("snapshot of {total} bytes is larger than accepted ({MAX_IMAGE_BYTES})"));
    }
    if offset == 0 {
        *slot = Some((lsn, Vec::with_capacity(total.min(64 << 20) as usize)));
    }
    let Some((image_lsn, bytes)) = slot.as_mut() else {
        return Err("snapshot chunk without its beginning".to_owned());
    };
    if *image_lsn != lsn || bytes.len() as u64 != offset || offset + data.len() as u64 > total {
        return Err("snapshot chunk out of order".to_owned());
    }
    bytes.extend_from_slice(data);
    if (bytes.len() as u64) < total {
        return Ok(None);
    }
    Ok(slot.take().map(|(_, bytes)| bytes))
}

/// Validate a received image and make it this partition's state at `lsn` (the partition thread
/// stores it as a snapshot and restarts its log at `lsn + 1`). Returns the durable LSN.
async fn install_snapshot(ctx: &Arc<ServerCtx>, partition: u32, lsn: u64, bytes: Vec<u8>) -> Result<u64, String> {
    let durable = ctx.workers.log(partition).map_or(0, |(log, _)| log.durable_lsn());
    if lsn <= durable {
        return Err(format!("the primary's snapshot (LSN {lsn}) is not ahead of this log (durable LSN {durable})"));
    }
    let limits = Limits { max_lines: ctx.config.max_lines, ..Limits::default() };
    // Checked rkyv access and the image rebuild are CPU work proportional to the state: off the
    // async threads.
    let decoded = tokio::task::spawn_blocking(move || {
        let state = decode_image(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|image| Partition::from_image(image, limits).map_err(|e| e.to_string()));
        (state, bytes)
    })
    .await
    .map_err(|_| "snapshot decoding failed".to_owned())?;
    let (state, bytes) = decoded;
    let state = state.map_err(|e| format!("the primary's snapshot at LSN {lsn} does not load: {e}"))?;
    if (state.index(), state.partitions()) != (partition, ctx.workers.partitions()) {
        return Err(format!(
            "the primary sent the snapshot of partition {} of {} for partition {partition} of {}",
            state.index(),
            state.partitions(),
            ctx.workers.partitions()
        ));
    }
    ctx.index.learn_partition(&state);
    let (tx, rx) = oneshot::channel();
    let mut job = Job::Install { lsn, partition: Box::new(state), bytes, reply: tx };
    loop {
        match ctx.workers.try_submit(partition, job) {
            Ok(()) => break,
            Err(back) => {
                job = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    rx.await.map_err(|_| "the partition thread stopped".to_owned())??;
    let durable = ctx.workers.log(partition).map_or(0, |(log, _)| log.durable_lsn());
    if durable != lsn {
        return Err(format!("after installing the snapshot at LSN {lsn} the log is at {durable}"));
    }
    if let Some(slot) = ctx.replication.positions.lock().get_mut(partition as usize) {
        *slot = (lsn, slot.1.max(lsn));
    }
    tracing::info!(partition, lsn, "caught up from the primary's snapshot; streaming from the next record");
    Ok(durable)
}

/// `Promote`: stop following, check every received record is durable here, become writable.
pub async fn promote(ctx: &Arc<ServerCtx>) -> Response {
    if !ctx.replication.is_following() {
        return Response::Error(gateway(ErrorCode::BAD_REQUEST, "this server is not a follower"));
    }
    ctx.replication.stop.store(true, Ordering::Release);
    let task = ctx.replication.task.lock().take();
    let exit = match task {
        Some(task) => match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(exit)) => exit.to_string(),
            Ok(Err(_)) => "follower task failed".to_owned(),
            Err(_) => return Response::Error(gateway(ErrorCode::INTERNAL, "the follower did not stop within 30 s")),
        },
        None => "not running".to_owned(),
    };
    let positions = ctx.replication.positions.lock().clone();
    let mut partitions = Vec::new();
    for p in 0..ctx.workers.partitions() {
        let durable = ctx.workers.log(p).map_or(0, |(log, _)| log.durable_lsn());
        let (applied, primary_seen) = positions.get(p as usize).copied().unwrap_or((0, 0));
        if durable < applied {
            ctx.replication.stop.store(false, Ordering::Release);
            return Response::Error(gateway(
                ErrorCode::INTERNAL,
                format!("partition {p}: LSN {applied} was applied but only {durable} is durable; not promoting"),
            ));
        }
        partitions.push(serde_json::json!({
            "partition": p,
            "durable_lsn": durable,
            "primary_durable_lsn_seen": primary_seen,
            "records_not_received": primary_seen.saturating_sub(durable),
        }));
    }
    ctx.workers.set_following(false);
    ctx.replication.set_following(false);
    for p in 0..ctx.workers.partitions() {
        let label = Metrics::partition(p);
        ctx.metrics.replication_lag_records.get_or_create(&label).set(0);
        ctx.metrics.replication_lag_seconds.get_or_create(&label).set(0.0);
    }
    tracing::warn!(primary = ?ctx.replication.primary, "promoted: this server is now the primary and accepts writes");
    let body = serde_json::json!({ "promoted": true, "follower": exit, "partitions": partitions });
    Response::Json(body.to_string())
}
