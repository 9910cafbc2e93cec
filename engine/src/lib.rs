//! oms-engine: the deterministic state machine at the heart of omsd.
//!
//! It owns inventory (SKUs, warehouses, kits, quantity states, incoming stock), reservations,
//! flash-sale pools, presales, channel stock and the stock ledger, sharded into partitions.
//! It must not know about sockets, files, threads or clocks: time, ids and seeds arrive inside
//! commands, so replaying the same commands rebuilds the same state byte for byte.
//!
//! Entry points: [`Partition::apply`] (one partition, one writer) and [`ShardedEngine`] (all
//! partitions in one thread, the reference for the cross-partition protocol).

pub mod campaign;
pub mod catalog;
pub mod channel;
pub mod codec;
pub mod command;
pub mod error;
pub mod event;
pub mod fastpath;
#[cfg(all(test, loom))]
mod fastpath_loom;
pub mod ids;
pub mod keys;
pub mod ledger;
pub mod orders;
pub mod partition;
pub mod replica;
pub mod reservation;
pub mod routing;
pub mod sharded;
pub mod stock;
mod sync;

pub use command::{Bucket, Command, Envelope, Line, ReleaseCause, ReserveRequest};
pub use error::EngineError;
pub use event::{Allocation, Event};
pub use ids::{
    CampaignId, ChannelId, CustomerId, PurchaseOrderId, ReservationId, SkuId, TimeMs, WarehouseId, SKU_ID_LIMIT,
};
pub use partition::{ImageError, Limits, Outcome, Partition};
pub use sharded::ShardedEngine;
