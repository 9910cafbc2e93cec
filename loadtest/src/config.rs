//! Command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::error::LoadError;
use crate::workload::{PlanParams, Scenario};

#[derive(Parser, Clone)]
#[command(
    name = "oms-loadtest",
    version,
    about = "Load generator for omsd (and Redis+Lua / PostgreSQL peers): closed or open loop, coordinated-omission-free latency, post-run audit",
    after_help = "Examples:\n  oms-loadtest checkout --tls-ca ca.pem --api-key $KEY --max-p99 2ms --min-throughput 100k\n  oms-loadtest flash-sale --connections 8 --pipeline 128 --duration 30s\n  oms-loadtest checkout --skus 1000000 --skew 0.99 --rate 200000 --json out.json\n  oms-loadtest flash-sale --target redis://127.0.0.1:6379 --seed 7\n  oms-loadtest checkout --target postgres://postgres@127.0.0.1:5432/postgres\n\nExit status: 0 passed; 1 the audit failed (oversold SKU, limit violated, server audit unclean, counts that do not add up); 2 the run could not be made; 3 a threshold (--max-p99, --max-p999, --min-throughput) was missed."
)]
pub struct Args {
    /// Workload to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// omsd://HOST:PORT, redis://HOST:PORT or postgres://USER@HOST:PORT/DB.
    #[arg(long, default_value = "omsd://127.0.0.1:7700", env = "OMS_LOADTEST_TARGET")]
    pub target: String,
    /// TCP connections (PostgreSQL: concurrent sessions).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Requests in flight per connection (closed loop); in open loop, the cap on in-flight requests per connection.
    #[arg(long, default_value_t = 64)]
    pub pipeline: usize,
    /// Open loop: total transactions started per second (latency counted from each intended send time).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured time.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before it.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Same seed, same request stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip catalog/stock/campaign setup (codes are resolved on the server; campaign ids come from the seed).
    #[arg(long)]
    pub no_setup: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// One JSON line per acknowledged reservation: {"id":..,"lines":[[sku,qty]..],"t_ms":..}.
    #[arg(long)]
    pub ack_log: Option<PathBuf>,
    /// Catalog SKUs (checkout, expiry-storm, mixed); for flash-sale the number of hot SKUs.
    #[arg(long)]
    pub skus: Option<u32>,
    /// Zipf exponent of SKU popularity (0 = uniform).
    #[arg(long, default_value_t = 0.0)]
    pub skew: f64,
    /// On-hand units set per catalog SKU at setup.
    #[arg(long, default_value_t = 100_000)]
    pub stock: u64,
    /// Hot flash-sale SKUs (mixed; flash-sale takes --skus).
    #[arg(long, default_value_t = 4)]
    pub hot_skus: u32,
    /// Total flash-sale pool (split over the hot SKUs); also the total presale quota.
    #[arg(long, default_value_t = 10_000)]
    pub pool: u32,
    /// Distinct buyer ids.
    #[arg(long, default_value_t = 1_000_000)]
    pub buyers: u64,
    /// Per-customer limit of flash sales and presales.
    #[arg(long, default_value_t = 1)]
    pub limit: u32,
    /// Most lines per checkout order (1..=N).
    #[arg(long, default_value_t = 5)]
    pub max_lines: u32,
    /// Most units per line (1..=N).
    #[arg(long, default_value_t = 2)]
    pub max_qty: u32,
    /// Share of accepted reservations confirmed (the rest released); for presales, the share whose balance is paid.
    #[arg(long, default_value_t = 0.9)]
    pub confirm_ratio: f64,
    /// Reservation hold time.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// Presale SKUs (presale, mixed).
    #[arg(long, default_value_t = 2)]
    pub presale_skus: u32,
    /// Presale balance window.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub balance_window: Duration,
    /// Delay between a deposit and its balance payment.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub pay_after: Duration,
    /// Ship each confirmed reservation this long after its confirm (checkout, mixed; off by
    /// default). Shipping ends the hold, so long runs keep a bounded live state, as a shop does.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ship_after: Option<Duration>,
    /// Expiry storm: reservations that expire within the same second.
    #[arg(long, default_value_t = 1_000_000)]
    pub storm: u64,
    /// Load-generator threads (omsd shares the machine: keep this small).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Reservations checked one by one with GetReservation after the run (all of them if fewer).
    #[arg(long, default_value_t = 5_000)]
    pub audit_sample: usize,
    /// Skip the post-run audit.
    #[arg(long)]
    pub no_audit: bool,
    /// First campaign id (default: derived from --seed).
    #[arg(long)]
    pub campaign_base: Option<u32>,
    /// omsd over TLS, trusting only the PEM certificate(s) in FILE (its CA or self-signed cert).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Name omsd's certificate must carry [default: the host of --target]; needs --tls-ca.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_server_name: Option<String>,
    /// API key sent in omsd's handshake (a storefront key drives checkout traffic; setup and the
    /// audit need an ops key).
    #[arg(long, env = "OMS_LOADTEST_API_KEY", hide_env_values = true, default_value = "", hide_default_value = true)]
    pub api_key: String,
    /// Latency percentiles the report lists (also in --json as percentiles_us).
    #[arg(long, default_value = "50,90,99,99.9,99.99", value_name = "LIST")]
    pub percentiles: String,
    /// Write an HdrHistogram interval log here: one latency histogram per --hdr-interval (warm-up
    /// included), readable by HistogramLogProcessor and the HdrHistogram plotters.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Length of one interval of --hdr-log.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub hdr_interval: Duration,
    /// Threshold: fail (exit 3) when p99 latency is above this, e.g. 2ms.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_p99: Option<Duration>,
    /// Threshold: fail (exit 3) when p99.9 latency is above this.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_p999: Option<Duration>,
    /// Threshold: fail (exit 3) when throughput (requests/s over the measured time) is below
    /// this, e.g. 100k or 1.5M.
    #[arg(long, value_parser = crate::thresholds::parse_rate, value_name = "RATE")]
    pub min_throughput: Option<f64>,
}

/// Debug without the API key.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("scenario", &self.scenario)
            .field("target", &self.target)
            .field("api_key", &if self.api_key.is_empty() { "" } else { "<set>" })
            .finish_non_exhaustive()
    }
}

impl Args {
    /// The --max-*/--min-* thresholds.
    pub fn limits(&self) -> crate::thresholds::Limits {
        crate::thresholds::Limits {
            max_p99: self.max_p99,
            max_p999: self.max_p999,
            min_throughput: self.min_throughput,
        }
    }

    /// Defaults for programmatic use (tests): same as the command line's.
    pub fn for_scenario(scenario: Scenario, target: &str) -> Args {
        let mut args = Args::parse_from(["oms-loadtest", scenario_arg(scenario)]);
        args.target = target.to_owned();
        args
    }

    pub fn plan_params(&self) -> Result<PlanParams, LoadError> {
        if !(0.0..=1.0).contains(&self.confirm_ratio) {
            return Err(LoadError::Args(format!("--confirm-ratio must be within 0..=1, got {}", self.confirm_ratio)));
        }
        if self.connections == 0 || self.pipeline == 0 {
            return Err(LoadError::Args("--connections and --pipeline must be positive".into()));
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(LoadError::Args("--rate must be positive".into()));
        }
        crate::thresholds::parse_percentiles(&self.percentiles)?;
        if self.hdr_interval < Duration::from_millis(100) {
            return Err(LoadError::Args("--hdr-interval must be at least 100ms".into()));
        }
        if self.skew < 0.0 || !self.skew.is_finite() {
            return Err(LoadError::Args("--skew must be >= 0".into()));
        }
        let mut p = PlanParams::new(self.scenario, self.seed);
        match self.scenario {
            Scenario::FlashSale => p.hot_skus = self.skus.unwrap_or(self.hot_skus),
            _ => {
                p.hot_skus = self.hot_skus;
                if let Some(n) = self.skus {
                    p.skus = n;
                }
            }
        }
        if p.skus > 10_000_000 || p.hot_skus > 128 || self.presale_skus > 50 {
            return Err(LoadError::Args("at most 10,000,000 SKUs, 128 hot SKUs and 50 presale SKUs".into()));
        }
        p.skew = self.skew;
        p.stock = self.stock;
        p.pool = self.pool;
        p.buyers = self.buyers.max(1);
        p.per_customer_limit = self.limit.max(1);
        p.max_lines = self.max_lines.clamp(1, 64);
        p.max_qty = self.max_qty.max(1);
        p.confirm_ratio = self.confirm_ratio;
        p.ttl_ms = self.ttl.as_millis() as u64;
        p.presale_skus = self.presale_skus.max(1);
        p.balance_window_ms = self.balance_window.as_millis().max(1) as u64;
        p.pay_after_ms = self.pay_after.as_millis() as u64;
        p.ship_after_ms = self.ship_after.map(|d| d.as_millis() as u64);
        p.storm = self.storm;
        Ok(p)
    }
}

fn scenario_arg(s: Scenario) -> &'static str {
    s.name()
}

/// Where the load goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Omsd { addr: String },
    Redis { url: String },
    Postgres { url: String },
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, LoadError> {
        if let Some(rest) = s.strip_prefix("omsd://") {
            let addr = rest.trim_end_matches('/');
            if addr.is_empty() || !addr.contains(':') {
                return Err(LoadError::Target(s.to_owned()));
            }
            return Ok(Target::Omsd { addr: addr.to_owned() });
        }
        if s.starts_with("redis://") {
            return Ok(Target::Redis { url: s.to_owned() });
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Target::Postgres { url: s.to_owned() });
        }
        Err(LoadError::Target(s.to_owned()))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Omsd { .. } => "omsd",
            Target::Redis { .. } => "redis",
            Target::Postgres { .. } => "postgres",
        }
    }
}
