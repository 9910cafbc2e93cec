//! `oms wal dump` / `oms wal verify`: offline inspection of a data directory's logs
//! (`DIR/p{N}/wal/`, one log per partition). Nothing here writes to the directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use oms_engine::codec::{decode_envelope, decode_image, RECORD_COMMAND};
use oms_wal::inspect;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum WalCliError {
    #[error("no partition logs under {0} (expected {0}/p0/wal, {0}/p1/wal, ...)")]
    NoPartitions(String),
    #[error("partition {partition}: {source}")]
    Wal { partition: u32, source: oms_wal::WalError },
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// The partition log directories under a data dir, in partition order.
pub fn partition_dirs(data_dir: &Path) -> Result<Vec<(u32, PathBuf)>, WalCliError> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|n| n.strip_prefix('p')).and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let wal = entry.path().join("wal");
            if wal.is_dir() {
                found.push((n, wal));
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(WalCliError::NoPartitions(data_dir.display().to_string()));
    }
    Ok(found)
}

fn decoded(record_type: u8, payload: &[u8]) -> (Option<u64>, Value) {
    if record_type != RECORD_COMMAND {
        return (None, json!({ "undecodable": format!("record type {record_type} is not a command envelope") }));
    }
    match decode_envelope(payload) {
        Ok(envelope) => match serde_json::to_value(&envelope.command) {
            Ok(command) => (Some(envelope.now_ms), command),
            Err(e) => (Some(envelope.now_ms), json!({ "undecodable": e.to_string() })),
        },
        Err(e) => (None, json!({ "undecodable": e.to_string() })),
    }
}

/// Print every record with LSN >= `from`. Returns the number of problems met (a record that does
/// not read stops that partition's dump and counts as one).
pub fn dump(
    data_dir: &Path,
    from: u64,
    as_json: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<usize, WalCliError> {
    let mut problems = 0;
    for (partition, dir) in partition_dirs(data_dir)? {
        let records = inspect::dump(&dir, from).map_err(|source| WalCliError::Wal { partition, source })?;
        for record in records {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    problems += 1;
                    if as_json {
                        writeln!(out, "{}", json!({ "partition": partition, "error": e.to_string() }))?;
                    }
                    writeln!(err, "oms: partition {partition}: {e}")?;
                    break;
                }
            };
            let (now_ms, command) = decoded(record.record_type, &record.payload);
            if as_json {
                let line = json!({
                    "partition": partition,
                    "lsn": record.lsn,
                    "record_type": record.record_type,
                    "len": record.len,
                    "segment": record.segment,
                    "offset": record.offset,
                    "now_ms": now_ms,
                    "command": command,
                });
                writeln!(out, "{line}")?;
            } else {
                let mut text = command.to_string();
                if text.len() > 160 {
                    let mut cut = 157;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push_str("...");
                }
                writeln!(
                    out,
                    "p{partition} lsn={} type={} len={} {}@{} {}",
                    record.lsn, record.record_type, record.len, record.segment, record.offset, text
                )?;
            }
        }
    }
    Ok(problems)
}

/// Verify every partition's log and snapshots (checksums and image decoding), and that the log
/// reaches back to the oldest usable snapshot. Returns the number of problems found.
pub fn verify(data_dir: &Path, as_json: bool, out: &mut impl Write) -> Result<usize, WalCliError> {
    let mut problems = 0;
    let mut reports = Vec::new();
    for (partition, dir) in partition_dirs(data_dir)? {
        let image_loads = |payload: &[u8]| decode_image(payload).map(drop).map_err(|e| e.to_string());
        let report =
            inspect::verify_with(&dir, image_loads).map_err(|source| WalCliError::Wal { partition, source })?;
        problems += report.problems.len();
        if !as_json {
            let range = match (report.first_lsn, report.last_lsn) {
                (Some(a), Some(b)) => format!("lsn {a}..={b}"),
                _ => "empty".to_owned(),
            };
            let status = if report.problems.is_empty() { "ok" } else { "PROBLEMS" };
            let usable: Vec<String> = report.snapshots.iter().filter(|s| s.usable).map(|s| s.lsn.to_string()).collect();
            let snapshots = if usable.is_empty() { "none".to_owned() } else { usable.join(", ") };
            writeln!(
                out,
                "p{partition}: {status}: {} segments, {} records, {} bytes, {range}; usable snapshots at lsn {snapshots}",
                report.segments, report.records, report.bytes
            )?;
            for p in &report.problems {
                writeln!(out, "  {} at {}+{} (lsn {}): {}", p.kind, p.segment, p.offset, p.lsn, p.detail)?;
            }
            for note in &report.notes {
                writeln!(out, "  note: {note}")?;
            }
        }
        let mut value = serde_json::to_value(&report).unwrap_or_else(|e| json!({ "error": e.to_string() }));
        if let Value::Object(map) = &mut value {
            map.insert("partition".into(), json!(partition));
        }
        reports.push(value);
    }
    if as_json {
        writeln!(out, "{}", json!({ "ok": problems == 0, "problems": problems, "partitions": reports }))?;
    }
    Ok(problems)
}
