//! The storefront-facing server: connections, handshake and access control, dispatch into the
//! partition runtime, and graceful shutdown.

mod auth;
mod connection;
mod dispatch;
mod execute;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use oms_engine::fastpath::SoldOutBoard;
use oms_proto::{ErrorCode, Opcode, WireError};

use crate::catalog_index::CatalogIndex;
use crate::config::Config;
use crate::metrics::{Metrics, ReasonLabel};
use crate::runtime::Workers;
use crate::wire_error::gateway;

pub use auth::{AuthError, Authenticator, Identity};
pub(crate) use connection::outcome_label;
pub use connection::{serve_connection, serve_tls_connection};

/// Everything a connection needs, shared by all of them.
pub struct ServerCtx {
    pub config: Config,
    pub workers: Workers,
    pub index: CatalogIndex,
    pub board: Arc<SoldOutBoard>,
    pub metrics: Arc<Metrics>,
    pub auth: Authenticator,
    pub ready: AtomicBool,
    pub shutting_down: AtomicBool,
    pub shutdown: tokio::sync::Notify,
    pub open_connections: AtomicUsize,
    /// Follower / primary role (docs/REPLICATION.md).
    pub replication: crate::replication::ReplicationState,
    /// Marketplace shops (`[[shops]]`), if any are configured.
    pub connectors: Option<Arc<oms_connectors::Connectors>>,
    /// Idempotency keys whose multi-partition reservation is being coordinated right now.
    pub keys_in_flight: execute::KeysInFlight,
}

impl ServerCtx {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.workers.storage_failed()
    }

    /// The access rule every front end applies between authentication and
    /// [`dispatch`](ServerCtx::dispatch): the key's role must allow the opcode (oms-proto's role
    /// table). The binary port and the HTTP API both call this, so they cannot disagree.
    pub fn authorize(&self, who: &Identity, opcode: Opcode, peer: SocketAddr) -> Result<(), WireError> {
        if who.role.allows(opcode) {
            return Ok(());
        }
        self.metrics.refused.get_or_create(&ReasonLabel { reason: "forbidden" }).inc();
        tracing::warn!(%peer, client = %who.name, role = who.role.name(), opcode = opcode.name(), "request refused: role does not allow it");
        Err(gateway(ErrorCode::FORBIDDEN, format!("role {} may not send {}", who.role.name(), opcode.name())))
    }
}
