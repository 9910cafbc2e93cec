//! What an operator relies on, against the real omsd: JSON logs, /metrics that `promtool check
//! metrics` (Debian package prometheus, installed by `.ci/run`) accepts in the classic text format,
//! OpenMetrics for scrapers that ask, build and process metrics, and a Grafana dashboard that only
//! queries metrics omsd exports.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use oms_tests::{http_get, text, Omsd};

/// GET with an Accept header: (content type, body).
fn get_with_accept(addr: SocketAddr, path: &str, accept: &str) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect admin");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.trim()))
        .unwrap_or_default()
        .to_owned();
    (content_type, body.to_owned())
}

/// Names with HELP text in a classic-format scrape.
fn documented(metrics: &str) -> BTreeSet<String> {
    metrics.lines().filter_map(|l| l.strip_prefix("# HELP ")?.split_whitespace().next().map(str::to_owned)).collect()
}

#[test]
fn json_logs_and_metrics_that_promtool_accepts() {
    // Starts omsd with --log-format json and the demo catalog, sends a request, then checks: every
    // log line is a JSON object with level and message; /metrics without an Accept header is the
    // classic format and `promtool check metrics` reports nothing; omsd_build_info and the process
    // metrics are there; a scraper asking for OpenMetrics gets OpenMetrics (ending in # EOF).
    let omsd = Omsd::start(&["--log-format", "json", "--demo"]);
    omsd.oms_ok(&["stock", "get", "TSHIRT-RED-XL"]);
    let logs = omsd.stderr();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(value["level"].is_string() && value["message"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("omsd ready on")), "{logs}");

    let (status, metrics) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
    assert_eq!(status, 200);
    assert!(!metrics.contains("# EOF"), "classic format by default");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    promtool.stdin.take().expect("stdin").write_all(metrics.as_bytes()).expect("feed promtool");
    let checked = promtool.wait_with_output().expect("promtool ran");
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics: {}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    assert!(metrics.contains(&format!("omsd_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))), "{metrics}");
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds"] {
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"));
        assert!(value > 0.0, "{name} = {value}");
    }
    let requests = metrics.lines().find(|l| l.starts_with("omsd_requests_total{")).expect("a request counted");
    assert!(requests.contains("opcode="), "{requests}");

    let (content_type, open) =
        get_with_accept(omsd.admin_addr(), "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    assert!(open.contains("# TYPE omsd_requests counter"));
}

#[test]
fn the_dashboard_queries_only_metrics_omsd_exports() {
    // Every omsd_* / process_* name in docs/ops/grafana-dashboard.json (histogram series
    // suffixes removed) has HELP text in a live omsd's /metrics, and the dashboard covers
    // throughput, latency, queue depth, refusals, log flush time, replication lag and webhooks.
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/ops/grafana-dashboard.json")).expect("dashboard JSON");
    let mut queried = BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr").to_owned();
            let mut rest = expr.as_str();
            while let Some(at) = rest.find(|c: char| c.is_ascii_lowercase()) {
                rest = &rest[at..];
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                let word = &rest[..end];
                if word.starts_with("omsd_") || word.starts_with("process_") {
                    let base = ["_bucket", "_sum", "_count"].iter().fold(word, |w, s| w.strip_suffix(s).unwrap_or(w));
                    queried.insert(base.to_owned());
                }
                rest = &rest[end..];
            }
            exprs.push(expr);
        }
    }
    let omsd = Omsd::start(&[]);
    let (_, metrics) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
    let exported = documented(&metrics);
    let missing: Vec<&String> = queried.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics omsd does not export: {missing:?}");
    for needed in [
        "omsd_requests_total",
        "omsd_request_latency_seconds",
        "omsd_partition_queue_depth",
        "omsd_refused_total",
        "omsd_wal_flush_latency_seconds",
        "omsd_replication_lag_seconds",
        "omsd_webhook_deliveries_total",
    ] {
        assert!(queried.contains(needed), "the dashboard has no panel on {needed}");
    }
}

#[test]
fn a_bad_log_format_is_a_usage_error() {
    // clap refuses an unknown --log-format before anything starts.
    let out = Command::new(oms_tests::omsd_bin()).args(["--log-format", "xml"]).output().expect("run omsd");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("text") && text(&out.stderr).contains("json"));
}
