//! `--replicas N --ack-after-replica` on the primary: followers report, on their subscription
//! connection, the LSN their own log holds durably (`ReplicaAck`), and this board keeps, per
//! partition, the N-th highest of those LSNs (the *quorum LSN*). Partition threads hold the
//! answers of committed batches until the quorum LSN covers them (`runtime::held`).
//!
//! The quorum LSN never goes down: a record a follower acknowledged stays durable in that
//! follower's log after it disconnects, so it still counts for the records it covered. A follower
//! is identified by its connection; when the connection closes its entry is forgotten, so a
//! reconnecting follower is never counted twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{FollowerLabel, Metrics};
use crate::runtime::Job;
use crate::server::ServerCtx;

/// Acknowledgements of every follower connected to this server, and the quorum LSN per partition.
#[derive(Default)]
pub struct AckBoard {
    /// N of `--replicas N` (0: acknowledgements are only reported in /metrics).
    required: usize,
    /// `--ack-after-replica`: partition threads hold answers until `quorum` covers them.
    hold: bool,
    /// How long an answer may be held before it is answered `replica_timeout`.
    timeout: Duration,
    quorum: Vec<AtomicU64>,
    /// Per follower connection: the acknowledged LSN of each partition.
    followers: parking_lot::Mutex<HashMap<SocketAddr, Vec<u64>>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for AckBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckBoard")
            .field("required", &self.required)
            .field("hold", &self.hold)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AckBoard {
    pub fn new(partitions: u32, required: usize, hold: bool, timeout: Duration, metrics: Arc<Metrics>) -> AckBoard {
        AckBoard {
            required,
            hold,
            timeout,
            quorum: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            followers: parking_lot::Mutex::new(HashMap::new()),
            metrics: Some(metrics),
        }
    }

    /// N of `--replicas N`.
    pub fn required(&self) -> usize {
        self.required
    }

    /// True when answers are held until N followers have the records (`--ack-after-replica`).
    pub fn holds(&self) -> bool {
        self.hold && self.required > 0
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The highest LSN of `partition` that N followers hold durably (0 before that is known).
    pub fn quorum(&self, partition: u32) -> u64 {
        self.quorum.get(partition as usize).map_or(0, |q| q.load(Ordering::Acquire))
    }

    /// Record an acknowledgement; true when the partition's quorum LSN advanced.
    pub fn record(&self, follower: SocketAddr, partition: u32, lsn: u64) -> bool {
        let index = partition as usize;
        if index >= self.quorum.len() {
            return false;
        }
        let mut followers = self.followers.lock();
        let partitions = self.quorum.len();
        let acked = followers.entry(follower).or_insert_with(|| vec![0; partitions]);
        let Some(slot) = acked.get_mut(index) else { return false };
        if lsn <= *slot {
            return false;
        }
        *slot = lsn;
        if let Some(metrics) = &self.metrics {
            let label = FollowerLabel { follower: follower.to_string(), partition: partition.to_string() };
            metrics.replica_acked_lsn.get_or_create(&label).set(lsn);
        }
        if self.required == 0 {
            return false;
        }
        let mut lsns: Vec<u64> = followers.values().filter_map(|a| a.get(index).copied()).collect();
        drop(followers);
        if lsns.len() < self.required {
            return false;
        }
        lsns.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&quorum) = lsns.get(self.required - 1) else { return false };
        let Some(cell) = self.quorum.get(index) else { return false };
        let before = cell.fetch_max(quorum, Ordering::AcqRel);
        if quorum > before {
            if let Some(metrics) = &self.metrics {
                metrics.replica_quorum_lsn.get_or_create(&Metrics::partition(partition)).set(quorum);
            }
            return true;
        }
        false
    }

    /// The connection of `follower` closed: it no longer counts towards the quorum.
    pub fn forget(&self, follower: SocketAddr) {
        let removed = self.followers.lock().remove(&follower);
        if let (Some(acked), Some(metrics)) = (removed, &self.metrics) {
            for partition in 0..acked.len() {
                let label = FollowerLabel { follower: follower.to_string(), partition: partition.to_string() };
                metrics.replica_acked_lsn.remove(&label);
            }
        }
    }

    /// Followers currently connected that have acknowledged something.
    pub fn connected(&self) -> usize {
        self.followers.lock().len()
    }
}

/// A `ReplicaAck` frame arrived on a connection (the connection task calls this; no answer).
pub fn on_replica_ack(ctx: &ServerCtx, follower: SocketAddr, partition: u32, durable_lsn: u64) {
    let Some((log, _)) = ctx.workers.log(partition) else { return };
    // A follower cannot hold records this server has not made durable: a bogus or diverged ack
    // must never release an answer early.
    let lsn = durable_lsn.min(log.durable_lsn());
    if ctx.replication.acks.record(follower, partition, lsn) && ctx.replication.acks.holds() {
        // Wake the partition thread so it releases the answers now covered. A full queue means
        // the thread is busy and checks the quorum after its current batch anyway.
        let _ = ctx.workers.try_submit(partition, Job::Replicated);
    }
}
