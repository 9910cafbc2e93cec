//! What the connectors need from omsd, as a trait the daemon implements (so this crate never
//! names the gateway: the import graph runs gateway -> connectors -> engine).

use std::future::Future;

use oms_engine::orders::SalesChannel;
use serde::Serialize;
use serde_json::Value;

use crate::platform::Package;

/// One SKU's sellable quantity for a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockRow {
    pub sku: u32,
    pub code: String,
    pub qty: u64,
    /// Log position of the SKU's partition when the value was read (see `board`).
    pub version: u64,
}

/// What became of one pulled order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OrderOutcome {
    Imported {
        external_id: String,
    },
    /// An order imported before, changed on the platform: applied or raised for the desk.
    Revised {
        external_id: String,
        changes: Vec<String>,
        exceptions: Vec<String>,
    },
    Unchanged {
        external_id: String,
    },
    /// Not imported: unpaid, or cancelled / shipped before omsd ever saw it.
    Skipped {
        external_id: String,
        reason: String,
    },
    /// Could not be read or imported (unknown SKU code, malformed field).
    Rejected {
        external_id: String,
        error: String,
    },
}

impl OrderOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            OrderOutcome::Imported { .. } => "imported",
            OrderOutcome::Revised { .. } => "revised",
            OrderOutcome::Unchanged { .. } => "unchanged",
            OrderOutcome::Skipped { .. } => "skipped",
            OrderOutcome::Rejected { .. } => "rejected",
        }
    }
}

/// The unconfirmed parcels of one order, with what the confirmation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnconfirmedOrder {
    pub order: u64,
    pub external_id: String,
    /// The order's shop (as imported).
    pub shop: String,
    pub packages: Vec<Package>,
    pub total_packages: usize,
    pub all_left: bool,
}

/// Why omsd could not answer (busy, stopping, a refused command).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

/// omsd, as the connectors see it. Every method is answered from committed, durable state.
pub trait Host: Send + Sync + 'static {
    /// Every SKU's sellable quantity for stock channel `channel`.
    fn channel_stock(&self, channel: u16) -> impl Future<Output = Result<Vec<StockRow>, HostError>> + Send;

    /// Import (or revise) orders pulled from `shop`, through the channel's intake adapter.
    fn import_orders(
        &self,
        shop: &str,
        channel: SalesChannel,
        orders: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<OrderOutcome>, HostError>> + Send;

    /// Shipped parcels of `channel`'s orders that the platform has not confirmed.
    fn unconfirmed(
        &self,
        channel: SalesChannel,
    ) -> impl Future<Output = Result<Vec<UnconfirmedOrder>, HostError>> + Send;

    /// The platform accepted these parcels of the order.
    fn confirmed(&self, order: u64, shipments: Vec<u64>) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Put a parcel the platform would not confirm on the order's exception list.
    fn raise(&self, order: u64, shipment: u64, detail: String) -> impl Future<Output = Result<(), HostError>> + Send;

    /// The code of a SKU id (None: unknown).
    fn sku_code(&self, sku: u32) -> impl Future<Output = Option<String>> + Send;

    /// Whether this omsd is the primary (followers push, pull and confirm nothing).
    fn is_primary(&self) -> bool;
}
