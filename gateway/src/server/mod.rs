//! The storefront-facing server: connections, handshake and access control, dispatch into the
//! partition runtime, and graceful shutdown.

mod auth;
mod connection;
mod dispatch;
mod execute;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use oms_engine::fastpath::SoldOutBoard;

use crate::catalog_index::CatalogIndex;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::Workers;

pub use auth::{AuthError, Authenticator};
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
    /// Idempotency keys whose multi-partition reservation is being coordinated right now.
    pub keys_in_flight: execute::KeysInFlight,
}

impl ServerCtx {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.workers.storage_failed()
    }
}
