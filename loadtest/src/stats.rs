//! Latency histograms and outcome counters. Latency is always measured from the request's
//! *intended* send time (closed loop: when it was queued; open loop: its slot in the schedule),
//! so a stalled server is charged for the requests it delayed (no coordinated omission).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// Highest latency tracked (60 s, in microseconds); larger values are clamped.
pub const MAX_TRACKED_US: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits, 1 us .. 60 s: bounds are valid constants.
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// Outcome kinds a response is sorted into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A reservation was acknowledged.
    Accepted,
    /// Any other request succeeded (confirm, release, query, receipt).
    Ok,
    /// A business refusal (engine codes 100+ / peer equivalents), by reason name.
    Rejected(&'static str),
    /// Transport, protocol, gateway (busy, ...) or unexpected answers, by name.
    Error(&'static str),
}

/// Intern a reason name so counters can be keyed by `&'static str` (few distinct names per run).
pub fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock();
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
}

/// Counters and histograms of one connection (merged at the end).
#[derive(Clone, Debug)]
pub struct Stats {
    pub hist: Histogram<u64>,
    pub reserve_hist: Histogram<u64>,
    pub requests: u64,
    pub accepted: u64,
    pub ok: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub errors: BTreeMap<&'static str, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hist: new_histogram(),
            reserve_hist: new_histogram(),
            requests: 0,
            accepted: 0,
            ok: 0,
            rejected: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl Stats {
    #[inline]
    pub fn record(&mut self, latency_us: u64, is_reserve: bool, outcome: Outcome) {
        let v = latency_us.clamp(1, MAX_TRACKED_US);
        let _ = self.hist.record(v);
        if is_reserve {
            let _ = self.reserve_hist.record(v);
        }
        self.requests += 1;
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Ok => self.ok += 1,
            Outcome::Rejected(r) => *self.rejected.entry(r).or_insert(0) += 1,
            Outcome::Error(e) => *self.errors.entry(e).or_insert(0) += 1,
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        let _ = self.hist.add(&other.hist);
        let _ = self.reserve_hist.add(&other.reserve_hist);
        self.requests += other.requests;
        self.accepted += other.accepted;
        self.ok += other.ok;
        for (k, v) in &other.rejected {
            *self.rejected.entry(k).or_insert(0) += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Shared live progress: connections add to it now and then; a reporter prints it.
#[derive(Debug)]
pub struct Progress {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub rejected: AtomicU64,
    pub accepted: AtomicU64,
    pub interval: Mutex<Histogram<u64>>,
    pub stop: AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            interval: Mutex::new(new_histogram()),
            stop: AtomicBool::new(false),
        }
    }
}

/// A connection's not-yet-published progress.
#[derive(Debug)]
pub struct ProgressBuffer {
    hist: Histogram<u64>,
    requests: u64,
    errors: u64,
    rejected: u64,
    accepted: u64,
    last: Instant,
}

impl Default for ProgressBuffer {
    fn default() -> Self {
        ProgressBuffer { hist: new_histogram(), requests: 0, errors: 0, rejected: 0, accepted: 0, last: Instant::now() }
    }
}

impl ProgressBuffer {
    #[inline]
    pub fn note(&mut self, latency_us: u64, outcome: Outcome) {
        let _ = self.hist.record(latency_us.clamp(1, MAX_TRACKED_US));
        self.requests += 1;
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Rejected(_) => self.rejected += 1,
            Outcome::Error(_) => self.errors += 1,
            Outcome::Ok => {}
        }
    }

    /// Publish at most every 100 ms (or when forced).
    pub fn maybe_publish(&mut self, progress: &Progress, force: bool) {
        if !force && self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        progress.requests.fetch_add(self.requests, Ordering::Relaxed);
        progress.errors.fetch_add(self.errors, Ordering::Relaxed);
        progress.rejected.fetch_add(self.rejected, Ordering::Relaxed);
        progress.accepted.fetch_add(self.accepted, Ordering::Relaxed);
        let _ = progress.interval.lock().add(&self.hist);
        self.hist.reset();
        self.requests = 0;
        self.errors = 0;
        self.rejected = 0;
        self.accepted = 0;
    }
}

/// Where the reporter writes the HdrHistogram interval log (`--hdr-log`).
pub struct HdrLog {
    pub file: std::fs::File,
    pub interval: Duration,
}

impl HdrLog {
    pub fn create(path: &std::path::Path, interval: Duration) -> Result<HdrLog, crate::error::LoadError> {
        let file = std::fs::File::create(path)
            .map_err(|source| crate::error::LoadError::Io { what: format!("create {}", path.display()), source })?;
        Ok(HdrLog { file, interval })
    }
}

/// Print progress: once a second on a terminal, otherwise a log line every 5 s. With an
/// [`HdrLog`], also write each interval's latency histogram (values in microseconds).
pub fn spawn_progress_reporter(
    progress: Arc<Progress>,
    label: String,
    hdr_log: Option<HdrLog>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
        let tty = std::io::stderr().is_terminal();
        let print_every = if tty { Duration::from_secs(1) } else { Duration::from_secs(5) };
        let every = hdr_log.as_ref().map_or(print_every, |l| l.interval);
        let start = Instant::now();
        let started_at = std::time::SystemTime::now();
        let mut serializer = hdrhistogram::serialization::V2DeflateSerializer::new();
        let mut hdr_file = hdr_log.map(|l| std::io::BufWriter::new(l.file));
        let mut hdr_writer = hdr_file.as_mut().and_then(|file| {
            IntervalLogWriterBuilder::new()
                .add_comment(&format!("oms-loadtest {label}: request latency in microseconds"))
                .with_start_time(started_at)
                .with_base_time(started_at)
                .with_max_value_divisor(1000.0)
                .begin_log_with(file, &mut serializer)
                .map_err(|e| tracing::warn!("cannot write the HDR log: {e}"))
                .ok()
        });
        let mut interval_hist = new_histogram();
        let mut last_print = Instant::now();
        let mut last_requests = 0u64;
        let mut last = Instant::now();
        loop {
            // Sleep in small steps so the reporter ends promptly.
            let mut stopping = false;
            while last.elapsed() < every {
                if progress.stop.load(Ordering::Relaxed) {
                    stopping = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let interval_start = last;
            let hist = {
                let mut h = progress.interval.lock();
                let taken = h.clone();
                h.reset();
                taken
            };
            if let Some(writer) = hdr_writer.as_mut() {
                let from = interval_start.duration_since(start);
                if let Err(e) = writer.write_histogram(&hist, from, interval_start.elapsed(), None) {
                    tracing::warn!("cannot write the HDR log: {e}");
                }
            }
            if stopping {
                drop(hdr_writer);
                if let Some(file) = hdr_file.as_mut() {
                    let _ = std::io::Write::flush(file);
                }
                if tty {
                    eprintln!();
                }
                return;
            }
            let _ = interval_hist.add(&hist);
            if last_print.elapsed() + Duration::from_millis(10) < print_every {
                last = Instant::now();
                continue;
            }
            let dt = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            last = Instant::now();
            let requests = progress.requests.load(Ordering::Relaxed);
            let rate = (requests - last_requests) as f64 / dt;
            last_requests = requests;
            let p99 = if interval_hist.is_empty() { 0 } else { interval_hist.value_at_quantile(0.99) };
            interval_hist.reset();
            let line = format!(
                "[{label} {:>5.0}s] {:>10.0} req/s  accepted {}  rejected {}  errors {}  p99 {} us",
                start.elapsed().as_secs_f64(),
                rate,
                progress.accepted.load(Ordering::Relaxed),
                progress.rejected.load(Ordering::Relaxed),
                progress.errors.load(Ordering::Relaxed),
                p99
            );
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                tracing::info!("{line}");
            }
        }
    })
}

/// The final report (also the `--json` document).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub mode: String,
    pub connections: usize,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub seed: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub throughput_per_s: f64,
    pub reservations_per_s: f64,
    pub accepted_per_s: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub reserve_p99_us: u64,
    /// The `--percentiles` of all requests' latency, e.g. {"p99.99": 2100}.
    pub percentiles_us: BTreeMap<String, u64>,
    /// `--max-p99`, `--max-p999`, `--min-throughput` outcomes.
    pub thresholds: Vec<crate::thresholds::Threshold>,
    pub thresholds_passed: bool,
    pub accepted: u64,
    pub ok: u64,
    pub rejected: BTreeMap<String, u64>,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub audit: serde_json::Value,
    pub audit_passed: bool,
    pub notes: Vec<String>,
}

impl Report {
    pub fn from_stats(stats: &Stats, duration_s: f64, percentiles: &[f64]) -> Report {
        let q = |h: &Histogram<u64>, q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        let d = duration_s.max(1e-9);
        Report {
            scenario: String::new(),
            target: String::new(),
            mode: String::new(),
            connections: 0,
            pipeline: 0,
            rate: None,
            seed: 0,
            duration_s,
            requests: stats.requests,
            throughput_per_s: stats.requests as f64 / d,
            reservations_per_s: stats.reserve_hist.len() as f64 / d,
            accepted_per_s: stats.accepted as f64 / d,
            p50_us: q(&stats.hist, 0.50),
            p90_us: q(&stats.hist, 0.90),
            p99_us: q(&stats.hist, 0.99),
            p999_us: q(&stats.hist, 0.999),
            max_us: if stats.hist.is_empty() { 0 } else { stats.hist.max() },
            reserve_p99_us: q(&stats.reserve_hist, 0.99),
            percentiles_us: percentiles
                .iter()
                .map(|p| (crate::thresholds::percentile_name(*p), q(&stats.hist, p / 100.0)))
                .collect(),
            thresholds: Vec::new(),
            thresholds_passed: true,
            accepted: stats.accepted,
            ok: stats.ok,
            rejected: stats.rejected.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            errors: stats.error_count(),
            errors_by_kind: stats.errors.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            audit: serde_json::Value::Null,
            audit_passed: false,
            notes: Vec::new(),
        }
    }

    /// The human-readable final table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario     {}  target {}  mode {}  seed {}",
            self.scenario, self.target, self.mode, self.seed
        );
        let _ = writeln!(
            s,
            "duration     {:.2} s measured ({} connections, pipeline {})",
            self.duration_s, self.connections, self.pipeline
        );
        let _ = writeln!(s, "requests     {}", self.requests);
        let _ = writeln!(
            s,
            "throughput   {:.0} req/s  ({:.0} reservations/s, {:.0} accepted/s)",
            self.throughput_per_s, self.reservations_per_s, self.accepted_per_s
        );
        let _ = writeln!(
            s,
            "latency us   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (reserve p99 {})",
            self.p50_us, self.p90_us, self.p99_us, self.p999_us, self.max_us, self.reserve_p99_us
        );
        if !self.percentiles_us.is_empty() {
            let list: Vec<String> = self.percentiles_us.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "percentiles  {}", list.join("  "));
        }
        let _ = writeln!(s, "accepted     {}", self.accepted);
        let _ = writeln!(s, "ok (other)   {}", self.ok);
        if self.rejected.is_empty() {
            let _ = writeln!(s, "rejected     0");
        }
        for (k, v) in &self.rejected {
            let _ = writeln!(s, "rejected     {k}: {v}");
        }
        let _ = writeln!(s, "errors       {}", self.errors);
        for (k, v) in &self.errors_by_kind {
            let _ = writeln!(s, "  error      {k}: {v}");
        }
        let _ = writeln!(s, "audit        {}", if self.audit_passed { "PASSED" } else { "FAILED" });
        if let Some(f) = self.audit.get("failures").and_then(|f| f.as_array()) {
            for x in f {
                let _ = writeln!(s, "  failure    {}", x.as_str().unwrap_or_default());
            }
        }
        for t in &self.thresholds {
            let _ = writeln!(
                s,
                "threshold    {} {}: limit {:.0} {}, actual {:.0} {}",
                t.name,
                if t.passed { "passed" } else { "MISSED" },
                t.limit,
                t.unit,
                t.actual,
                t.unit
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note         {n}");
        }
        s
    }
}
