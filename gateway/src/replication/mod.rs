//! Log replication: the log subscription served to readers (`server`), the client side of a
//! subscription (`stream`), replica partitions that turn logged commands back into events
//! (`replica`), and follower mode (`follower`: `omsd --follow PRIMARY`, `oms admin promote`).
//! See docs/REPLICATION.md.
//!
//! The log stores COMMANDS. A consumer that wants events keeps a replica `Partition` (from a
//! snapshot image, or empty when the log is retained from LSN 1) and applies each command: the
//! engine is deterministic, so the replica emits exactly the events the primary emitted.

pub mod ack;
pub mod follower;
pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};

use oms_proto::{ErrorCode, Opcode, WireError};

pub use ack::{on_replica_ack, AckBoard};
pub use follower::{promote, spawn_follower};
pub use oms_client::LogStream;
pub use oms_engine::replica::{Replica, ReplicaError};
pub use server::{spawn_subscription, FrameCredit, StreamTx};

/// Gateway error code: the requested LSN is older than the retained log; `available` carries the
/// oldest retained LSN. Subscribe again with `bootstrap` to start from a snapshot.
pub const CODE_BEHIND_RETENTION: ErrorCode = ErrorCode::BEHIND_RETENTION;
/// Gateway error code: the requested LSN is beyond the durable log (the subscriber has records
/// the server does not: a diverged follower); `available` carries the durable LSN.
pub const CODE_LSN_AHEAD: ErrorCode = ErrorCode::LSN_AHEAD;

pub fn behind_retention(requested: u64, oldest: u64) -> WireError {
    let mut e = WireError::new(CODE_BEHIND_RETENTION, format!("LSN {requested} is no longer retained; the oldest retained LSN is {oldest} (subscribe with bootstrap to start from a snapshot)"));
    e.available = Some(oldest);
    e
}

pub fn lsn_ahead(requested: u64, durable: u64) -> WireError {
    let mut e = WireError::new(
        CODE_LSN_AHEAD,
        format!("LSN {requested} is beyond this server's durable log (durable LSN {durable})"),
    );
    e.available = Some(durable);
    e
}

/// Replication role of this server.
#[derive(Default)]
pub struct ReplicationState {
    /// The primary this server follows (`--follow`), if any.
    pub primary: Option<String>,
    /// API key sent to the primary.
    pub primary_api_key: Option<String>,
    /// TLS towards the primary (`--follow-tls-ca`, `--follow-tls`).
    pub primary_tls: Option<crate::tls::ClientTls>,
    following: AtomicBool,
    /// Set by `promote`: the follower task stops after the frame it is applying.
    pub(crate) stop: AtomicBool,
    pub(crate) task: parking_lot::Mutex<Option<tokio::task::JoinHandle<follower::FollowerExit>>>,
    /// Per partition: (highest LSN applied here, highest durable LSN the primary reported).
    pub(crate) positions: parking_lot::Mutex<Vec<(u64, u64)>>,
    /// Acknowledgements of the followers of this server (`--replicas N --ack-after-replica`).
    pub acks: std::sync::Arc<AckBoard>,
}

impl ReplicationState {
    pub fn new(
        primary: Option<String>,
        primary_api_key: Option<String>,
        acks: std::sync::Arc<AckBoard>,
    ) -> ReplicationState {
        let following = primary.is_some();
        ReplicationState { primary, primary_api_key, following: AtomicBool::new(following), acks, ..Default::default() }
    }

    pub fn with_tls(mut self, tls: Option<crate::tls::ClientTls>) -> ReplicationState {
        self.primary_tls = tls;
        self
    }

    /// True while this server is a follower (read-only to clients).
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    pub(crate) fn set_following(&self, following: bool) {
        self.following.store(following, Ordering::Release);
    }

    /// A follower refuses every opcode that could change state (answered `read_only`).
    pub fn refuses(&self, opcode: Opcode) -> bool {
        self.is_following() && !is_read_only(opcode)
    }
}

/// Opcodes that never change state. Anything not listed (including opcodes added later) counts
/// as a write, so a follower refuses it.
pub fn is_read_only(opcode: Opcode) -> bool {
    use Opcode::*;
    matches!(
        opcode,
        Hello
            | Ping
            | GetStock
            | GetReservation
            | LookupSkus
            | ExportStock
            | GetCampaign
            | Audit
            | Subscribe
            | Promote
            // Order reads: answered from the replicated order books.
            | OrderGet
            | OrderList
            | OrderPage
            | WaveGet
            | Waybill
            // The shops' configuration and state, and the exception desk (order books).
            | ShopList
            | ShopStatus
            | OrderExceptions
            | ReplicaAck
    )
}
