//! End to end against the real omsd binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oms_loadtest::workload::Scenario;
use oms_loadtest::Args;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// target/<profile>/omsd next to the test executable, or build it into a separate target dir
/// under it (so the build does not wait on the outer cargo's lock).
fn omsd_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>").to_path_buf();
    let next_to = profile_dir.join("omsd");
    if next_to.exists() {
        return next_to;
    }
    let target = profile_dir.join("omsd-e2e-target");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "oms-gateway", "--bin", "omsd", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build for omsd");
    assert!(status.success(), "building omsd failed");
    target.join("debug").join("omsd")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start_omsd(data: &std::path::Path) -> (Daemon, String) {
    start_omsd_with(data, &[])
}

fn start_omsd_with(data: &std::path::Path, extra: &[&str]) -> (Daemon, String) {
    let (port, admin) = (free_port(), free_port());
    let child = Command::new(omsd_binary())
        .args(["--data-dir"])
        .arg(data)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
            "--http-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
            "--fsync",
            "always",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn omsd");
    let daemon = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "omsd did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    (daemon, format!("omsd://127.0.0.1:{port}"))
}

// Checks: a 2-second flash-sale and a 2-second checkout against a real omsd (fsync always) pass the
// audit, the flash sale never acknowledges more (net) units than its pool, checkout never oversells
// a SKU, and the server agrees with every checked reservation.
#[test]
fn flash_sale_and_checkout_pass_the_audit_against_real_omsd() {
    let data = tempfile::tempdir().expect("tempdir");
    let (_daemon, target) = start_omsd(data.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");

    let mut flash = Args::for_scenario(Scenario::FlashSale, &target);
    flash.connections = 2;
    flash.pipeline = 32;
    flash.duration = Duration::from_secs(2);
    flash.warmup = Duration::ZERO;
    flash.pool = 500;
    flash.buyers = 2_000; // repeat buyers exercise the per-customer limit
    let report = runtime.block_on(oms_loadtest::run(&flash)).expect("flash-sale run");
    assert!(report.audit_passed, "flash-sale audit failed: {}", report.audit);
    let ack = &report.audit["acknowledged"];
    let net = ack["accepted"].as_u64().unwrap_or(u64::MAX) - ack["released"].as_u64().unwrap_or(0);
    assert!(net <= 500, "net accepted units {net} > pool 500");
    assert!(report.accepted <= 500 + ack["released"].as_u64().unwrap_or(0));
    assert!(
        report.rejected.get("sold_out").copied().unwrap_or(0) > 0,
        "the pool should sell out: {:?}",
        report.rejected
    );
    assert_eq!(report.audit["oversold"], 0);
    assert_eq!(report.audit["per_customer_limit_violations"], 0);

    let mut checkout = Args::for_scenario(Scenario::Checkout, &target);
    checkout.connections = 2;
    checkout.pipeline = 32;
    checkout.duration = Duration::from_secs(2);
    checkout.warmup = Duration::ZERO;
    checkout.skus = Some(2_000);
    checkout.stock = 50;
    checkout.skew = 0.8;
    let report = runtime.block_on(oms_loadtest::run(&checkout)).expect("checkout run");
    assert!(report.audit_passed, "checkout audit failed: {}", report.audit);
    assert!(report.accepted > 0);
    assert_eq!(report.audit["oversold"], 0);
    assert_eq!(report.audit["stock_mismatch"], 0);
    assert_eq!(report.audit["reservation_status_mismatch"], 0);
    assert_eq!(report.errors, 0, "{:?}", report.errors_by_kind);
}

// Checks: against an omsd that accepts only an API key, a run without the key is refused at the
// handshake, and with `api_key` set it passes; thresholds are judged on the report (a p99 limit of
// 10 s passes, a throughput floor of 1G req/s is missed); `--hdr-log` writes an HdrHistogram
// interval log with a start time and at least one interval histogram; the report lists p99.99.
#[test]
fn a_keyed_omsd_is_driven_with_thresholds_and_an_hdr_log() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = data.path().join("omsd.toml");
    std::fs::write(&config, "[[api_keys]]\nname = \"load\"\nkey = \"load-test-key-0001\"\nrole = \"ops\"\n")
        .expect("config");
    let (_daemon, target) = start_omsd_with(&data.path().join("data"), &["--config", &config.to_string_lossy()]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");

    let mut args = Args::for_scenario(Scenario::FlashSale, &target);
    args.connections = 1;
    args.pipeline = 16;
    args.duration = Duration::from_secs(2);
    args.warmup = Duration::ZERO;
    args.pool = 200;
    let refused = runtime.block_on(oms_loadtest::run(&args)).expect_err("no key, no run");
    assert!(refused.to_string().contains("unauthenticated"), "{refused}");

    let hlog = data.path().join("run.hlog");
    args.api_key = "load-test-key-0001".into();
    args.hdr_log = Some(hlog.clone());
    args.max_p99 = Some(Duration::from_secs(10));
    args.min_throughput = Some(1e9);
    let report = runtime.block_on(oms_loadtest::run(&args)).expect("keyed run");
    assert!(report.audit_passed, "audit: {}", report.audit);
    let judged: Vec<(&str, bool)> = report.thresholds.iter().map(|t| (t.name.as_str(), t.passed)).collect();
    assert_eq!(judged, vec![("max_p99", true), ("min_throughput", false)]);
    assert!(!report.thresholds_passed);
    assert!(report.percentiles_us.contains_key("p99.99"), "{:?}", report.percentiles_us);
    assert!(report.table().contains("threshold    min_throughput MISSED"), "{}", report.table());

    let log = std::fs::read_to_string(&hlog).expect("hdr log written");
    assert!(log.contains("#[StartTime: "), "{log}");
    let intervals: Vec<&str> =
        log.lines().filter(|l| !l.starts_with('#') && !l.starts_with("\"StartTimestamp")).collect();
    assert!(!intervals.is_empty(), "{log}");
    for line in &intervals {
        // start,duration,max,histogram (compressed, base64)
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert!(fields[3].len() > 20, "{line}");
    }
    // The log reads back into histograms with samples.
    let bytes = log.as_bytes();
    let mut deserializer = hdrhistogram::serialization::Deserializer::new();
    let mut total = 0u64;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(bytes) {
        if let Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(h)) = entry {
            let decoded = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> =
                deserializer.deserialize(&mut decoded.as_slice()).expect("a histogram");
            total += hist.len();
        }
    }
    assert!(total > 0, "the intervals hold the requests");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}
