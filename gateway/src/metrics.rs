//! Prometheus metrics for /metrics. Hot counters are plain families; latency histograms are
//! observed once per response by the connection writer and once per batch by partition threads.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub opcode: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpcodeLabel {
    pub opcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FollowerLabel {
    /// The follower connection's peer address.
    pub follower: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<OpcodeLabel, Histogram>,
    pub queue_depth: Family<PartitionLabel, Gauge>,
    pub batch_size: Family<PartitionLabel, Histogram>,
    pub flush_latency: Family<PartitionLabel, Histogram>,
    pub live_reservations: Family<PartitionLabel, Gauge>,
    pub low_stock_skus: Family<PartitionLabel, Gauge>,
    pub wal_durable_lsn: Family<PartitionLabel, Gauge<u64, AtomicU64>>,
    pub connections: Gauge,
    pub refused: Family<ReasonLabel, Counter>,
    pub fast_path_rejects: Counter,
    pub snapshots: Family<PartitionLabel, Counter>,
    pub storage_failed: Gauge,
    /// Follower: records the primary has made durable that this server has not (replication).
    pub replication_lag_records: Family<PartitionLabel, Gauge>,
    /// Follower: age of the primary's newest record not yet applied here (0 when caught up).
    pub replication_lag_seconds: Family<PartitionLabel, Gauge<f64, AtomicU64>>,
    /// Open log subscriptions served by this server.
    pub subscriptions: Gauge,
    /// Webhook deliveries by outcome (delivered, retried, failed, dropped).
    pub webhook_deliveries: Family<OutcomeLabel, Counter>,
    /// Primary: the LSN each connected follower reported durable in its own log, per partition.
    pub replica_acked_lsn: Family<FollowerLabel, Gauge<u64, AtomicU64>>,
    /// Primary: the highest LSN that `--replicas N` followers hold durably, per partition.
    pub replica_quorum_lsn: Family<PartitionLabel, Gauge<u64, AtomicU64>>,
    /// Primary with `--ack-after-replica`: answers committed locally, waiting for the followers.
    pub replica_held_answers: Family<PartitionLabel, Gauge>,
    /// Primary with `--ack-after-replica`: time from a batch's local commit to its release.
    pub replica_ack_wait: Histogram,
    /// Primary with `--ack-after-replica`: answers turned into `replica_timeout`.
    pub replica_timeouts: Counter,
    /// Marketplace connectors (`omsd_shop_*`).
    pub shops: oms_connectors::ShopMetrics,
    registry: Registry,
}

fn latency_histogram() -> Histogram {
    // 1 us .. ~16 s.
    Histogram::new(exponential_buckets(1e-6, 2.0, 25))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("omsd");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OpcodeLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let queue_depth = Family::<PartitionLabel, Gauge>::default();
        let batch_size = Family::<PartitionLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1.0, 2.0, 14))) as fn() -> Histogram,
        );
        let flush_latency =
            Family::<PartitionLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let live_reservations = Family::<PartitionLabel, Gauge>::default();
        let low_stock_skus = Family::<PartitionLabel, Gauge>::default();
        let wal_durable_lsn = Family::<PartitionLabel, Gauge<u64, AtomicU64>>::default();
        let connections = Gauge::default();
        let refused = Family::<ReasonLabel, Counter>::default();
        let fast_path_rejects = Counter::default();
        let snapshots = Family::<PartitionLabel, Counter>::default();
        let storage_failed = Gauge::default();
        let replication_lag_records = Family::<PartitionLabel, Gauge>::default();
        let replication_lag_seconds = Family::<PartitionLabel, Gauge<f64, AtomicU64>>::default();
        let subscriptions = Gauge::default();
        let webhook_deliveries = Family::<OutcomeLabel, Counter>::default();
        let replica_acked_lsn = Family::<FollowerLabel, Gauge<u64, AtomicU64>>::default();
        let replica_quorum_lsn = Family::<PartitionLabel, Gauge<u64, AtomicU64>>::default();
        let replica_held_answers = Family::<PartitionLabel, Gauge>::default();
        let replica_ack_wait = latency_histogram();
        let replica_timeouts = Counter::default();
        registry.register(
            "replica_acked_lsn",
            "Primary: LSN each connected follower reported durable in its own log",
            replica_acked_lsn.clone(),
        );
        registry.register(
            "replica_quorum_lsn",
            "Primary: highest LSN held durably by --replicas N followers",
            replica_quorum_lsn.clone(),
        );
        registry.register(
            "replica_held_answers",
            "Primary: answers committed locally and held until the followers have them",
            replica_held_answers.clone(),
        );
        registry.register(
            "replica_ack_wait_seconds",
            "Primary: time from a batch's local commit to its release by the followers' acknowledgements",
            replica_ack_wait.clone(),
        );
        registry.register(
            "replica_timeouts",
            "Primary: answers given replica_timeout (not confirmed by the followers in time)",
            replica_timeouts.clone(),
        );
        registry.register(
            "replication_lag_records",
            "Follower: durable records on the primary not yet applied here",
            replication_lag_records.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "Follower: age of the oldest primary record not yet applied here",
            replication_lag_seconds.clone(),
        );
        registry.register("subscriptions", "Open log subscriptions", subscriptions.clone());
        registry.register("webhook_deliveries", "Webhook deliveries by outcome", webhook_deliveries.clone());
        registry.register("requests", "Requests by opcode and outcome", requests.clone());
        registry.register(
            "request_latency_seconds",
            "Time from decoding a request to writing its response",
            latency.clone(),
        );
        registry.register("partition_queue_depth", "Jobs waiting in each partition queue", queue_depth.clone());
        registry.register(
            "partition_batch_size",
            "Jobs applied per partition batch (one log flush each)",
            batch_size.clone(),
        );
        registry.register("wal_flush_latency_seconds", "Duration of one group commit", flush_latency.clone());
        registry.register("live_reservations", "Reservations currently held", live_reservations.clone());
        registry.register("low_stock_skus", "SKUs below their low-stock threshold", low_stock_skus.clone());
        registry.register("wal_durable_lsn", "Last durable log sequence number", wal_durable_lsn.clone());
        registry.register("connections", "Open client connections", connections.clone());
        registry.register("refused", "Connections or requests refused, by reason", refused.clone());
        registry.register(
            "fast_path_rejects",
            "Reservations refused as sold out without a partition hop",
            fast_path_rejects.clone(),
        );
        registry.register("snapshots", "Snapshots written", snapshots.clone());
        registry.register("storage_failed", "1 once a log flush failed and writes stopped", storage_failed.clone());
        let shops = oms_connectors::ShopMetrics::register(&mut registry);
        Metrics {
            shops,
            requests,
            latency,
            queue_depth,
            batch_size,
            flush_latency,
            live_reservations,
            low_stock_skus,
            wal_durable_lsn,
            connections,
            refused,
            fast_path_rejects,
            snapshots,
            storage_failed,
            replication_lag_records,
            replication_lag_seconds,
            subscriptions,
            webhook_deliveries,
            replica_acked_lsn,
            replica_quorum_lsn,
            replica_held_answers,
            replica_ack_wait,
            replica_timeouts,
            registry,
        }
    }

    pub fn partition(index: u32) -> PartitionLabel {
        PartitionLabel { partition: index.to_string() }
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
