//! Serving a log subscription: one task per subscribed partition reads durable records through
//! the partition's `LogFollower` (never touching the writer thread) and streams them as
//! `LogRecords` frames with the subscription's request id.
//!
//! Backpressure: a frame is only queued while the connection has fewer than
//! [`MAX_UNWRITTEN_FRAMES`] frames not yet written to the socket, so a slow reader holds at most
//! that many frames (each at most ~`max_frame_bytes / 2` of payload) and is simply read from
//! more slowly; the writer thread never waits for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oms_engine::codec::encode_image;
use oms_engine::{Limits, Partition};
use oms_wal::{LogFollower, SnapshotStore, WalError};

use super::{behind_retention, lsn_ahead};
use crate::runtime::{ConnTx, Outbound};
use crate::server::ServerCtx;
use crate::wire_error::gateway;
use oms_proto::{ErrorCode, LogRecord, LogRecords, Opcode, Response, SnapshotChunk};

/// Frames of one connection queued but not yet written, above which a subscription waits.
pub const MAX_UNWRITTEN_FRAMES: u32 = 8;
/// Records read from the log per step.
const READ_RECORDS: usize = 1024;
/// An idle subscription sends an empty `LogRecords` (a heartbeat with the durable LSN) this often.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The connection's count of frames not yet written (implemented by the connection).
pub trait FrameCredit: Send + Sync {
    /// Count one more frame as queued.
    fn add(&self);
    /// Frames queued and not yet written.
    fn unwritten(&self) -> u32;
    /// Completes after the connection writer wrote some frames.
    fn written(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The sending side of one subscription: frames carry the subscription's request id.
#[derive(Clone)]
pub struct StreamTx {
    tx: ConnTx,
    request_id: u64,
    credit: Arc<dyn FrameCredit>,
}

impl StreamTx {
    pub fn new(tx: ConnTx, request_id: u64, credit: Arc<dyn FrameCredit>) -> StreamTx {
        StreamTx { tx, request_id, credit }
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queue a frame, waiting while the connection has too many unwritten frames. False when the
    /// connection is gone.
    pub async fn send(&self, response: Response) -> bool {
        loop {
            let written = self.credit.written();
            if self.credit.unwritten() < MAX_UNWRITTEN_FRAMES {
                break;
            }
            if self.tx.is_closed() {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), written).await;
        }
        self.credit.add();
        self.tx
            .send(Outbound {
                request_id: self.request_id,
                opcode: Opcode::Subscribe as u16,
                heavy: false,
                started: Instant::now(),
                response,
            })
            .is_ok()
    }
}

/// Start streaming `partition` (or every partition) from `from_lsn`.
pub fn spawn_subscription(ctx: Arc<ServerCtx>, partition: Option<u32>, from_lsn: u64, bootstrap: bool, out: StreamTx) {
    let count = ctx.workers.partitions();
    let partitions: Vec<u32> = match partition {
        Some(p) if p < count => vec![p],
        Some(p) => {
            let error =
                gateway(ErrorCode::BAD_REQUEST, format!("partition {p} does not exist (this server has {count})"));
            tokio::spawn(async move { out.send(Response::Error(error)).await });
            return;
        }
        None => (0..count).collect(),
    };
    tokio::spawn(async move {
        ctx.metrics.subscriptions.inc();
        let tasks: Vec<_> = partitions
            .into_iter()
            .map(|p| tokio::spawn(stream_partition(ctx.clone(), p, from_lsn, bootstrap, out.clone())))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        ctx.metrics.subscriptions.dec();
    });
}

fn stopped(ctx: &ServerCtx, out: &StreamTx) -> bool {
    out.is_closed() || ctx.shutting_down.load(std::sync::atomic::Ordering::Acquire)
}

async fn stream_partition(ctx: Arc<ServerCtx>, partition: u32, from_lsn: u64, bootstrap: bool, out: StreamTx) {
    let Some((log, dir)) = ctx.workers.log(partition).cloned() else {
        out.send(Response::Error(gateway(ErrorCode::INTERNAL, "no log for this partition"))).await;
        return;
    };
    let mut next = from_lsn.max(1);
    let oldest = log.oldest_lsn();
    let durable = log.durable_lsn();
    let behind = oldest > 1 && next < oldest;
    if next > durable + 1 {
        out.send(Response::Error(lsn_ahead(next, durable))).await;
        return;
    }
    if behind && !bootstrap {
        out.send(Response::Error(behind_retention(next, oldest))).await;
        return;
    }
    if bootstrap && (from_lsn == 0 || behind) {
        match send_snapshot(&ctx, partition, &dir, oldest, &out).await {
            Ok(lsn) => next = lsn + 1,
            Err(error) => {
                tracing::warn!(partition, %error, "subscription bootstrap failed");
                out.send(Response::Error(gateway(ErrorCode::INTERNAL, format!("cannot bootstrap: {error}")))).await;
                return;
            }
        }
    }
    let max_bytes = (ctx.config.max_frame_bytes as usize / 2).max(4096);
    let mut last_sent = Instant::now();
    let mut idle_announced = false;
    loop {
        if stopped(&ctx, &out) {
            return;
        }
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let read = log.read_from(next, READ_RECORDS, |lsn, record_type, payload| {
            // Stop taking records once the frame is full (the next read starts after the last taken).
            if bytes < max_bytes && (records.is_empty() || bytes + payload.len() + 32 <= max_bytes) {
                bytes += payload.len() + 32;
                records.push(LogRecord { lsn, record_type, payload: payload.to_vec() });
            }
        });
        match read {
            Ok(_) => {}
            Err(WalError::BehindRetention { requested, oldest }) => {
                out.send(Response::Error(behind_retention(requested, oldest))).await;
                return;
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "subscription cannot read the log");
                out.send(Response::Error(gateway(ErrorCode::INTERNAL, format!("cannot read the log: {e}")))).await;
                return;
            }
        }
        if let Some(last) = records.last() {
            next = last.lsn + 1;
            idle_announced = false;
            last_sent = Instant::now();
            if !out.send(Response::LogRecords(LogRecords { partition, records, durable_lsn: log.durable_lsn() })).await
            {
                return;
            }
            continue;
        }
        // Caught up: announce it at once (so a reader knows), then heartbeat while idle.
        if !idle_announced || last_sent.elapsed() >= HEARTBEAT {
            idle_announced = true;
            last_sent = Instant::now();
            if !out
                .send(Response::LogRecords(LogRecords {
                    partition,
                    records: Vec::new(),
                    durable_lsn: log.durable_lsn(),
                }))
                .await
            {
                return;
            }
        }
        wait_durable(&log, next - 1).await;
    }
}

/// Wait (off the async threads) until a record after `lsn` is durable, at most 250 ms.
async fn wait_durable(log: &LogFollower, lsn: u64) {
    let waiter = log.clone();
    let _ = tokio::task::spawn_blocking(move || waiter.wait_durable_beyond(lsn, Duration::from_millis(250))).await;
}

#[derive(Debug, thiserror::Error)]
enum BootstrapError {
    #[error("snapshot store: {0}")]
    Store(#[from] WalError),
    #[error("cannot encode the image: {0}")]
    Encode(String),
    #[error("the log is not retained after the latest snapshot (snapshot {snapshot}, oldest {oldest})")]
    Gap { snapshot: u64, oldest: u64 },
    #[error("snapshot task failed")]
    Join,
}

/// Send the latest snapshot (or the empty image at LSN 0 when there is none and the log starts at
/// 1) in chunks; returns its LSN.
async fn send_snapshot(
    ctx: &ServerCtx,
    partition: u32,
    dir: &std::path::Path,
    oldest: u64,
    out: &StreamTx,
) -> Result<u64, BootstrapError> {
    let dir = dir.to_owned();
    let partitions = ctx.workers.partitions();
    let limits = Limits { max_lines: ctx.config.max_lines, ..Limits::default() };
    let loaded = tokio::task::spawn_blocking(move || -> Result<(u64, Vec<u8>), BootstrapError> {
        let store = SnapshotStore::open(&dir)?;
        match store.latest_valid()? {
            Some(snapshot) => Ok((snapshot.lsn, snapshot.data.to_vec())),
            None => {
                let image = Partition::new(partition, partitions, limits).image();
                let bytes = encode_image(&image).map_err(|e| BootstrapError::Encode(e.to_string()))?;
                Ok((0, bytes.to_vec()))
            }
        }
    })
    .await
    .map_err(|_| BootstrapError::Join)??;
    let (lsn, data) = loaded;
    if oldest > 1 && lsn + 1 < oldest {
        return Err(BootstrapError::Gap { snapshot: lsn, oldest });
    }
    let chunk = (ctx.config.max_frame_bytes as usize / 2).max(4096);
    let total = data.len() as u64;
    let mut offset = 0usize;
    loop {
        let end = (offset + chunk).min(data.len());
        let piece = data.get(offset..end).unwrap_or(&[]).to_vec();
        if !out
            .send(Response::Snapshot(SnapshotChunk { partition, lsn, offset: offset as u64, total, data: piece }))
            .await
        {
            break;
        }
        offset = end;
        if offset >= data.len() {
            break;
        }
    }
    Ok(lsn)
}
