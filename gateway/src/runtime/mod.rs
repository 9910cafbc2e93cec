//! The partition runtime: one writer thread per partition, fed by a bounded lock-free queue.
//!
//! A worker drains a batch of jobs, applies each to its engine partition, appends the commands
//! that changed state to its log, makes the whole batch durable with one group commit, and only
//! then answers. Reads are answered after the same commit, so nobody sees state that might not
//! survive a crash.

mod held;
mod recovery;
mod worker;

use std::time::Instant;

use oms_engine::partition::{CampaignView, ConsistencyReport, ReservationView, SkuStockView};
use oms_engine::reservation::ReservationCounters;
use oms_engine::{CampaignId, EngineError, Envelope, Event, ReservationId, SkuId};
use tokio::sync::{mpsc, oneshot};

use oms_proto::{Opcode, Response};

pub use recovery::{
    create_private_dir, reconcile_orders, recover_partition, recover_partitions, RecoveredPartition, RecoveryError,
};
pub use worker::{
    failure_to_wire, now_ms, reserved_response_of, spawn_workers, PartitionCore, SnapshotWriter, StorageHealth,
    WorkerConfig, Workers,
};

/// A response on its way to a connection's writer.
#[derive(Debug)]
pub struct Outbound {
    pub request_id: u64,
    /// The request's opcode, echoed in the response frame (0: a connection-level error).
    pub opcode: u16,
    /// The request took one of the connection's heavy slots, which writing it gives back.
    pub heavy: bool,
    pub started: Instant,
    pub response: Response,
}

pub type ConnTx = mpsc::UnboundedSender<Outbound>;

/// How a single-partition answer is shaped for the wire.
#[derive(Clone, Copy, Debug)]
pub enum AnswerShape {
    Reserved,
    Done,
}

/// Why a job produced no engine answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Engine(EngineError),
    /// A log write or flush failed: nothing is acknowledged any more.
    Storage,
    ShuttingDown,
    Busy,
    /// `--ack-after-replica`: committed here, but the followers did not confirm it in time.
    NotReplicated,
}

pub type PartResult = Result<Vec<Event>, Failure>;

pub enum Reply {
    /// Answer the connection directly: the single-partition hot path.
    Conn { tx: ConnTx, request_id: u64, opcode: Opcode, started: Instant, shape: AnswerShape },
    /// Hand the outcome to a coordinating task (multi-partition and admin requests).
    Part(oneshot::Sender<PartResult>),
}

#[derive(Clone, Debug)]
pub enum Query {
    Stock(SkuId),
    Available(SkuId),
    Reservation(ReservationId),
    Campaign(CampaignId),
    Export,
    Audit,
    /// Order book reads (answered by `crate::orders::answer`).
    Orders(crate::orders::OrderQuery),
    /// Every SKU's sellable quantity for a stock channel (marketplace connectors).
    ChannelStock(u16),
}

#[derive(Debug)]
pub enum QueryAnswer {
    Stock(Option<SkuStockView>),
    Available(Option<u64>),
    Reservation(Option<ReservationView>),
    Campaign(Option<CampaignView>),
    Export(Vec<(SkuId, String, u64)>),
    Audit(Box<PartitionAudit>),
    Orders(crate::orders::OrderAnswer),
    /// (SKU, code, sellable quantity) and the partition's last log position when read.
    ChannelStock {
        lsn: u64,
        rows: Vec<(SkuId, String, u64)>,
    },
    Unavailable(Failure),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PartitionAudit {
    pub partition: u32,
    pub counters: ReservationCounters,
    pub live_reservations: usize,
    pub skus: usize,
    pub durable_lsn: u64,
    pub check: ConsistencyReport,
}

// `Apply` (an envelope and its reply) is the hot path's job: boxing it would add an allocation per
// request to save queue slot bytes. The rare large payloads (`Install`) are boxed.
#[allow(clippy::large_enum_variant)]
pub enum Job {
    Apply {
        envelope: Envelope,
        reply: Reply,
    },
    Query {
        query: Query,
        reply: oneshot::Sender<QueryAnswer>,
    },
    /// Followers acknowledged more of the log: release the held answers it covers.
    Replicated,
    /// Follower catch-up: replace the partition with the primary's snapshot image at `lsn`
    /// (already validated; `bytes` is its encoding, stored as this server's snapshot) and continue
    /// the log at `lsn + 1`.
    Install {
        lsn: u64,
        partition: Box<oms_engine::Partition>,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}
