//! Pass/fail criteria for CI pipelines (k6-style thresholds) and the percentiles a report lists.
//! `--max-p99 2ms --min-throughput 100k`: the run exits 3 when one is missed.

use std::time::Duration;

use serde::Serialize;

use crate::error::LoadError;
use crate::stats::Report;

/// `--percentiles 50,90,99,99.9,99.99`: each within (0, 100].
pub fn parse_percentiles(text: &str) -> Result<Vec<f64>, LoadError> {
    let mut list = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p: f64 = part
            .trim_start_matches('p')
            .parse()
            .map_err(|_| LoadError::Args(format!("--percentiles: {part:?} is not a number")))?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(LoadError::Args(format!("--percentiles: {part} is not within (0, 100]")));
        }
        list.push(p);
    }
    if list.is_empty() {
        return Err(LoadError::Args("--percentiles: give at least one, e.g. 50,99,99.99".into()));
    }
    Ok(list)
}

/// The report's name of a percentile: 99 -> "p99", 99.99 -> "p99.99".
pub fn percentile_name(p: f64) -> String {
    let text = format!("{p}");
    format!("p{text}")
}

/// `100k`, `1.5M`, `250000`: requests per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    let value: f64 =
        number.trim().parse().map_err(|_| format!("{text:?}: expected a rate like 100k, 1.5M or 250000"))?;
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("{text:?}: expected a positive rate"));
    }
    Ok(value * scale)
}

/// One threshold's outcome (in the `--json` report).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Threshold {
    /// `max_p99`, `max_p999`, `min_throughput`.
    pub name: String,
    pub limit: f64,
    pub actual: f64,
    /// Unit of limit and actual: `us` or `req/s`.
    pub unit: &'static str,
    pub passed: bool,
}

/// The limits asked for, from the command line.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub max_p99: Option<Duration>,
    pub max_p999: Option<Duration>,
    pub min_throughput: Option<f64>,
}

/// Judge a finished run. Latency is over all requests, throughput over the measured time.
pub fn evaluate(report: &Report, limits: &Limits) -> Vec<Threshold> {
    let mut out = Vec::new();
    let mut latency = |name: &str, limit: Option<Duration>, actual_us: u64| {
        if let Some(limit) = limit {
            let limit_us = limit.as_secs_f64() * 1e6;
            out.push(Threshold {
                name: name.to_owned(),
                limit: limit_us,
                actual: actual_us as f64,
                unit: "us",
                passed: actual_us as f64 <= limit_us,
            });
        }
    };
    latency("max_p99", limits.max_p99, report.p99_us);
    latency("max_p999", limits.max_p999, report.p999_us);
    if let Some(min) = limits.min_throughput {
        out.push(Threshold {
            name: "min_throughput".into(),
            limit: min,
            actual: report.throughput_per_s,
            unit: "req/s",
            passed: report.throughput_per_s >= min,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentiles_parse() {
        // Checks the suffixes, the percentile names, and refusals.
        assert_eq!(parse_rate("100k"), Ok(100_000.0));
        assert_eq!(parse_rate("1.5M"), Ok(1_500_000.0));
        assert_eq!(parse_rate("250000"), Ok(250_000.0));
        assert!(parse_rate("fast").is_err() && parse_rate("-1k").is_err());
        assert_eq!(parse_percentiles("50, 99,p99.99").expect("valid"), vec![50.0, 99.0, 99.99]);
        assert!(parse_percentiles("0").is_err() && parse_percentiles("101").is_err() && parse_percentiles("").is_err());
        assert_eq!(percentile_name(99.99), "p99.99");
        assert_eq!(percentile_name(50.0), "p50");
    }

    #[test]
    fn thresholds_pass_and_fail_on_the_report() {
        // A report with p99 1500 us and 120k req/s passes --max-p99 2ms --min-throughput 100k and
        // fails --max-p999 1ms.
        let mut report = Report::from_stats(&crate::stats::Stats::default(), 1.0, &[99.0]);
        report.p99_us = 1500;
        report.p999_us = 1800;
        report.throughput_per_s = 120_000.0;
        let limits = Limits {
            max_p99: Some(Duration::from_millis(2)),
            max_p999: Some(Duration::from_millis(1)),
            min_throughput: Some(100_000.0),
        };
        let results = evaluate(&report, &limits);
        let passed: Vec<(&str, bool)> = results.iter().map(|t| (t.name.as_str(), t.passed)).collect();
        assert_eq!(passed, vec![("max_p99", true), ("max_p999", false), ("min_throughput", true)]);
        assert!(evaluate(&report, &Limits::default()).is_empty());
    }
}
