//! Prometheus metrics for /metrics. Hot counters are plain families; latency histograms are
//! observed once per response by the connection writer and once per batch by partition threads.
//! Every metric has HELP text; `omsd_build_info` names the version; the `process_*` family (CPU,
//! memory, open files, threads, start time) is read from /proc on each scrape.
//!
//! prometheus-client writes OpenMetrics, where a counter's family is named without `_total`;
//! scrapers that ask for the classic text format (and `promtool check metrics`) get it through
//! [`to_prometheus_text`].

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
pub struct WebhookLabel {
    pub webhook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
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
    /// Events spooled for each webhook and not yet delivered.
    pub webhook_pending: Family<WebhookLabel, Gauge>,
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
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("omsd");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "Always 1; the version of this omsd in its labels", build_info);
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
        let webhook_pending = Family::<WebhookLabel, Gauge>::default();
        registry.register(
            "webhook_pending",
            "Events in each webhook's disk queue not yet delivered",
            webhook_pending.clone(),
        );
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
        registry.register(
            "webhook_deliveries",
            "Webhook events by outcome: delivered, retried, failed (gave up), dropped (queue or spool full), expired (older than the retention)",
            webhook_deliveries.clone(),
        );
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
        let shops = oms_connectors::ShopMetrics::register(registry);
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
            webhook_pending,
            replica_acked_lsn,
            replica_quorum_lsn,
            replica_held_answers,
            replica_ack_wait,
            replica_timeouts,
            registry: root,
        }
    }

    pub fn partition(index: u32) -> PartitionLabel {
        PartitionLabel { partition: index.to_string() }
    }

    /// The metrics in OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// OpenMetrics text to the Prometheus text format 0.0.4: a counter family is renamed to its
/// samples' `_total` name, `# UNIT` and `# EOF` lines go, `info` becomes a gauge, `unknown`
/// becomes `untyped`. Samples are unchanged.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.push(name);
            }
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let tail = match tail {
                    "info" => "gauge",
                    "unknown" => "untyped",
                    other => other,
                };
                let suffix = if counters.contains(&name) && !name.ends_with("_total") { "_total" } else { "" };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The standard `process_*` metrics of this process, read from /proc at scrape time. A value
/// that cannot be read is left out of that scrape.
#[derive(Debug)]
struct ProcessCollector;

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Ok(me) = procfs::process::Process::myself() else { return Ok(()) };
        let mut gauge = |name: &str, help: &str, value: f64| -> Result<(), std::fmt::Error> {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        let stat = me.stat().ok();
        if let Some(stat) = &stat {
            let page = procfs::page_size() as f64;
            gauge("process_resident_memory_bytes", "Resident memory size in bytes", stat.rss as f64 * page)?;
            gauge("process_virtual_memory_bytes", "Virtual memory size in bytes", stat.vsize as f64)?;
            gauge("process_threads", "Number of OS threads in the process", stat.num_threads as f64)?;
            if let Ok(boot) = procfs::boot_time_secs() {
                let start = boot as f64 + stat.starttime as f64 / procfs::ticks_per_second() as f64;
                gauge(
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch in seconds",
                    start,
                )?;
            }
        }
        if let Ok(fds) = me.fd_count() {
            gauge("process_open_fds", "Number of open file descriptors", fds as f64)?;
        }
        if let Ok(limits) = me.limits() {
            if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                gauge("process_max_fds", "Maximum number of open file descriptors", max as f64)?;
            }
        }
        if let Some(stat) = stat {
            let cpu = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;
            let metric = ConstCounter::new(cpu);
            metric.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                metric.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_with_total_and_keeps_samples() {
        // Converts a registry with a counter, a gauge and the process collector, and checks the
        // counter's HELP/TYPE lines carry its samples' name, no OpenMetrics-only line remains,
        // and every sample line is kept.
        let metrics = Metrics::new();
        metrics.fast_path_rejects.inc();
        metrics.refused.get_or_create(&ReasonLabel { reason: "busy" }).inc();
        let open = metrics.render();
        let classic = to_prometheus_text(&open);
        assert!(classic.contains("# TYPE omsd_fast_path_rejects_total counter\n"), "{classic}");
        assert!(classic.contains("# HELP omsd_fast_path_rejects_total "));
        assert!(classic.contains("omsd_fast_path_rejects_total 1\n"));
        assert!(classic.contains("omsd_refused_total{reason=\"busy\"} 1\n"));
        assert!(classic.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(classic.contains("omsd_build_info{version=\""));
        assert!(classic.contains("\nprocess_open_fds "), "{classic}");
        assert!(!classic.contains("# EOF"));
        let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples(&open), samples(&classic));
    }
}
