//! oms-connectors: omsd's marketplace round trip for Taobao/Tmall, JD and Douyin shops.
//!
//! It owns the platform clients and their request signing (`sign`, `platform`), the per-shop
//! rate limiter and retry backoff (`limits`), the stock board that coalesces sellable-quantity
//! changes (`board`), the push, pull and confirmation tasks (`push`, `pull`, `confirm`), the
//! shops' sync state files (`state`), their configuration (`config`) and metrics, and, behind the
//! `sim` feature, local simulators of the three platforms (`sim`).
//!
//! It must not know the gateway: omsd is reached only through the [`Host`] trait the daemon
//! implements, and partition threads only ever call [`StockBoard::note`] (a short lock, never a
//! wait on the network). It decides nothing about stock or orders: imports, revisions,
//! confirmations and exceptions are commands omsd applies and logs.

pub mod board;
pub mod config;
mod confirm;
pub mod host;
pub mod limits;
pub mod metrics;
pub mod platform;
mod pull;
mod push;
pub mod shop;
pub mod sign;
pub mod state;

#[cfg(feature = "sim")]
pub mod sim;

use std::path::Path;
use std::sync::Arc;

pub use board::StockBoard;
pub use config::{resolve_shops, Platform, ShopConfig, ShopConfigError, ShopSettings};
pub use host::{Host, HostError, OrderOutcome, StockRow, UnconfirmedOrder};
pub use metrics::ShopMetrics;
pub use platform::{Package, PlatformError};
pub use shop::ShopStatus;

/// Why the connectors could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    #[error("shop {shop}: cannot build its HTTP client: {source}")]
    Client { shop: String, source: PlatformError },
    #[error("unknown shop {0:?}")]
    UnknownShop(String),
}

/// Every configured shop.
pub struct Connectors {
    shops: Vec<Arc<shop::Shop>>,
    board: Arc<StockBoard>,
}

/// A shop as `oms shop list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShopSummary {
    pub shop: String,
    pub platform: &'static str,
    pub channel: u16,
    pub endpoint: String,
    pub rate_limit: f64,
    pub push: bool,
    pub pull: bool,
    pub confirm: bool,
    /// SKUs in the mapping file; `None`: every catalog SKU (no mapping file).
    pub mapped_skus: Option<usize>,
}

impl Connectors {
    /// Build the shops (no task runs yet). Sync state files live in `state_dir`.
    pub fn new(
        settings: Vec<ShopSettings>,
        state_dir: &Path,
        metrics: ShopMetrics,
    ) -> Result<Connectors, ConnectorError> {
        let channels: Vec<u16> = settings.iter().map(|s| s.channel).collect();
        let board = Arc::new(StockBoard::new(&channels));
        let platforms: Vec<Platform> = settings.iter().map(|s| s.platform).collect();
        let mut shops = Vec::with_capacity(settings.len());
        for (index, s) in settings.into_iter().enumerate() {
            let name = s.shop.clone();
            let shares = platforms.iter().filter(|p| **p == s.platform).count() > 1;
            let mut shop = shop::Shop::new(s, index, board.clone(), metrics.clone(), state_dir)
                .map_err(|source| ConnectorError::Client { shop: name, source })?;
            shop.shares_platform = shares;
            shops.push(Arc::new(shop));
        }
        Ok(Connectors { shops, board })
    }

    /// No shops configured.
    pub fn is_empty(&self) -> bool {
        self.shops.is_empty()
    }

    /// The board partition threads note sellable-quantity changes on.
    pub fn board(&self) -> Arc<StockBoard> {
        self.board.clone()
    }

    /// Start every shop's tasks on the current tokio runtime.
    pub fn start<H: Host>(&self, host: Arc<H>) {
        for shop in &self.shops {
            tracing::info!(
                shop = %shop.settings.shop,
                platform = shop.settings.platform.name(),
                channel = shop.settings.channel,
                endpoint = %shop.settings.endpoint,
                rate_limit = shop.settings.rate_limit,
                "marketplace connector started"
            );
            shop.spawn(host.clone());
        }
    }

    pub fn list(&self) -> Vec<ShopSummary> {
        self.shops
            .iter()
            .map(|s| {
                let c = &s.settings;
                ShopSummary {
                    shop: c.shop.clone(),
                    platform: c.platform.name(),
                    channel: c.channel,
                    endpoint: c.endpoint.clone(),
                    rate_limit: c.rate_limit,
                    push: c.push,
                    pull: c.pull,
                    confirm: c.confirm,
                    mapped_skus: c.mapping.as_ref().map(|m| m.len()),
                }
            })
            .collect()
    }

    /// Every shop's status, or one shop's.
    pub fn status(&self, shop: Option<&str>) -> Result<Vec<ShopStatus>, ConnectorError> {
        self.select(shop).map(|shops| shops.iter().map(|s| s.status()).collect())
    }

    /// Force a full stock sync and an immediate pull (every shop, or one).
    pub fn sync(&self, shop: Option<&str>) -> Result<Vec<String>, ConnectorError> {
        let shops = self.select(shop)?;
        for s in &shops {
            s.request_sync();
        }
        Ok(shops.iter().map(|s| s.settings.shop.clone()).collect())
    }

    /// A parcel of a marketplace order shipped: confirmation tasks look now.
    pub fn shipment_shipped(&self) {
        for s in &self.shops {
            s.wake_confirm();
        }
    }

    /// Stop the tasks and write every shop's state as a clean stop.
    pub fn shutdown(&self) {
        for s in &self.shops {
            s.shutdown();
        }
    }

    fn select(&self, shop: Option<&str>) -> Result<Vec<Arc<shop::Shop>>, ConnectorError> {
        match shop {
            None => Ok(self.shops.clone()),
            Some(name) => self
                .shops
                .iter()
                .find(|s| s.name() == name)
                .map(|s| vec![s.clone()])
                .ok_or_else(|| ConnectorError::UnknownShop(name.to_owned())),
        }
    }
}
