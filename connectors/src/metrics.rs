//! Per-shop metrics, registered into omsd's Prometheus registry (names start `omsd_shop_`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShopLabel {
    pub shop: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub shop: String,
    /// The platform API (`taobao.item.quantity.update`, ...).
    pub api: String,
    /// `ok`, `throttled`, `session_expired`, `not_found`, `refused`, `transport`, `bad_answer`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrderOutcomeLabels {
    pub shop: String,
    /// `imported`, `revised`, `unchanged`, `skipped`, `rejected`.
    pub outcome: &'static str,
}

/// What the connectors report.
#[derive(Clone)]
pub struct ShopMetrics {
    /// Time from a sellable-quantity change to the platform's acknowledgement of the update
    /// that carries it (the oldest change an update covers).
    pub push_lag: Family<ShopLabel, Histogram>,
    /// SKUs whose latest sellable quantity the platform has not acknowledged.
    pub push_backlog: Family<ShopLabel, Gauge>,
    /// Stock updates the platform acknowledged.
    pub pushes: Family<ShopLabel, Counter>,
    /// Every platform request by API and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds between now and the end of the last complete pull window.
    pub pull_lag_seconds: Family<ShopLabel, Gauge<f64, AtomicU64>>,
    /// Pull passes that failed (the next pass covers the same window again).
    pub pull_errors: Family<ShopLabel, Counter>,
    /// Orders pulled, by what became of them.
    pub pulled_orders: Family<OrderOutcomeLabels, Counter>,
    /// Shipped parcels the platform has not confirmed (failed and waiting ones).
    pub confirm_backlog: Family<ShopLabel, Gauge>,
    pub confirmations: Family<ShopLabel, Counter>,
    pub confirm_errors: Family<ShopLabel, Counter>,
}

fn lag_histogram() -> Histogram {
    // 1 ms .. ~46 s in steps of sqrt(2) (..., 0.512, 0.724, 1.024, ...): fine enough to tell a
    // p99 under the 1 s target from one above it.
    Histogram::new(exponential_buckets(0.001, std::f64::consts::SQRT_2, 32))
}

impl ShopMetrics {
    /// The metrics, registered in `registry` (which carries omsd's `omsd` prefix).
    pub fn register(registry: &mut Registry) -> ShopMetrics {
        let m = ShopMetrics {
            push_lag: Family::new_with_constructor(lag_histogram as fn() -> Histogram),
            push_backlog: Family::default(),
            pushes: Family::default(),
            requests: Family::default(),
            pull_lag_seconds: Family::default(),
            pull_errors: Family::default(),
            pulled_orders: Family::default(),
            confirm_backlog: Family::default(),
            confirmations: Family::default(),
            confirm_errors: Family::default(),
        };
        registry.register(
            "shop_push_lag_seconds",
            "Time from a sellable-quantity change to the platform acknowledging the update that carries it",
            m.push_lag.clone(),
        );
        registry.register(
            "shop_push_backlog",
            "SKUs whose latest sellable quantity the platform has not acknowledged",
            m.push_backlog.clone(),
        );
        registry.register("shop_pushes", "Stock updates acknowledged by the platform", m.pushes.clone());
        registry.register("shop_requests", "Platform requests by API and outcome", m.requests.clone());
        registry.register(
            "shop_pull_lag_seconds",
            "Age of the end of the last completely pulled order window",
            m.pull_lag_seconds.clone(),
        );
        registry.register("shop_pull_errors", "Order pull passes that failed", m.pull_errors.clone());
        registry.register("shop_pulled_orders", "Orders pulled, by outcome", m.pulled_orders.clone());
        registry.register(
            "shop_confirm_backlog",
            "Shipped parcels the platform has not confirmed yet",
            m.confirm_backlog.clone(),
        );
        registry.register("shop_confirmations", "Shipments confirmed on the platform", m.confirmations.clone());
        registry.register("shop_confirm_errors", "Shipment confirmations that failed", m.confirm_errors.clone());
        m
    }

    /// Unregistered metrics (tests, tools).
    pub fn detached() -> ShopMetrics {
        ShopMetrics::register(&mut Registry::default())
    }

    pub fn shop(shop: &str) -> ShopLabel {
        ShopLabel { shop: shop.to_owned() }
    }
}
