//! `oms log tail` (the log subscription, turned back into events by replica partitions kept
//! here) and `oms admin promote` (turn a follower into the primary). See docs/REPLICATION.md.

use std::collections::BTreeSet;
use std::io::Write;

use clap::Subcommand;
use serde_json::{json, Value};

use oms_client::{ClientError, LogStream};
use oms_engine::replica::Replica;
use oms_proto::{LogRecords, Opcode, Request, Response, SnapshotChunk, WireError};

use super::{CliError, Ctx};

#[derive(Subcommand, Debug)]
pub enum LogCmd {
    /// Print what each logged command did: one line per command (partition, LSN, time, command,
    /// events); with --json one JSON object per line
    Tail {
        /// First LSN to print (earlier records are still read to rebuild state)
        #[arg(long, default_value_t = 1, value_name = "LSN")]
        from: u64,
        /// Only this partition (default: all)
        #[arg(long, value_name = "N")]
        partition: Option<u32>,
        /// Keep waiting for new records instead of stopping when caught up
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Turn this follower into the primary: stop following, check every record received from the
    /// primary is durable here, accept writes
    Promote,
}

async fn connect(ctx: &Ctx) -> Result<LogStream, CliError> {
    let name = format!("oms-cli/{}", env!("CARGO_PKG_VERSION"));
    let (key, timeout, tls) = (ctx.options.api_key.as_deref(), ctx.options.connect_timeout, ctx.options.tls.as_ref());
    Ok(LogStream::connect_tls(&ctx.server, key, &name, timeout, tls).await?)
}

fn server_error(e: WireError) -> CliError {
    CliError::Client(ClientError::from_wire(e))
}

pub(super) async fn run_admin(ctx: &Ctx, cmd: AdminCmd) -> Result<(), CliError> {
    match cmd {
        AdminCmd::Promote => {
            let mut stream = connect(ctx).await?;
            stream.request(1, &Request::Json { opcode: Opcode::Promote, body: "{}" }).await?;
            loop {
                match stream.next().await? {
                    (1, Response::Json(text)) => {
                        let value: Value = serde_json::from_str(&text)
                            .map_err(|source| ClientError::Json { what: "promotion", source })?;
                        return ctx.done(value.clone(), || format!("promoted: {}", value["partitions"]));
                    }
                    (1, Response::Error(e)) => return Err(server_error(e)),
                    (1, other) => return Err(ClientError::Protocol(format!("unexpected answer: {other:?}")).into()),
                    _ => {}
                }
            }
        }
    }
}

pub(super) async fn run_log(ctx: &Ctx, cmd: LogCmd) -> Result<(), CliError> {
    let LogCmd::Tail { from, partition, follow } = cmd;
    let mut stream = connect(ctx).await?;
    let count = stream.info().partitions;
    let partitions: Vec<u32> = match partition {
        Some(p) if p < count => vec![p],
        Some(p) => return Err(CliError::Usage(format!("partition {p} does not exist (the server has {count})"))),
        None => (0..count).collect(),
    };
    let mut replica = Replica::new(count, stream.info().max_lines as usize);
    for &p in &partitions {
        // From LSN 1 so the replica rebuilds state; the server sends a snapshot first if the
        // beginning of the log is no longer retained.
        stream.subscribe(u64::from(p), Some(p), 1, true).await?;
    }
    let mut waiting: BTreeSet<u32> = partitions.iter().copied().collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut events = Vec::new();
    loop {
        let (_, response) = stream.next().await?;
        match response {
            Response::Snapshot(SnapshotChunk { partition, lsn, offset, total, data }) => {
                let done = replica
                    .on_snapshot(partition, lsn, offset, total, &data)
                    .map_err(|e| CliError::Problems(e.to_string()))?;
                if done && lsn >= from {
                    eprintln!("oms: partition {partition}: the log before LSN {} is no longer retained; starting from a snapshot", lsn + 1);
                }
            }
            Response::LogRecords(LogRecords { partition, records, durable_lsn }) => {
                for record in &records {
                    events.clear();
                    let envelope = replica
                        .apply(partition, record.lsn, record.record_type, &record.payload, &mut events)
                        .map_err(|e| CliError::Problems(e.to_string()))?;
                    if record.lsn < from {
                        continue;
                    }
                    let line = if ctx.json {
                        json!({
                            "partition": partition,
                            "lsn": record.lsn,
                            "now_ms": envelope.now_ms,
                            "command": envelope.command.name(),
                            "events": events,
                        })
                        .to_string()
                    } else {
                        let names: Vec<String> = events
                            .iter()
                            .map(|e| {
                                serde_json::to_value(e)
                                    .ok()
                                    .and_then(|v| v["event"].as_str().map(str::to_owned))
                                    .unwrap_or_default()
                            })
                            .collect();
                        format!(
                            "p{partition} #{} {} {}: {}",
                            record.lsn,
                            envelope.now_ms,
                            envelope.command.name(),
                            names.join(", ")
                        )
                    };
                    if let Err(e) = writeln!(out, "{line}") {
                        return quiet_on_broken_pipe(e);
                    }
                }
                if let Err(e) = out.flush() {
                    return quiet_on_broken_pipe(e);
                }
                if !follow && replica.next_lsn(partition).saturating_sub(1) >= durable_lsn {
                    waiting.remove(&partition);
                    if waiting.is_empty() {
                        return Ok(());
                    }
                }
            }
            Response::Error(e) => return Err(server_error(e)),
            _ => {}
        }
    }
}

fn quiet_on_broken_pipe(e: std::io::Error) -> Result<(), CliError> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(CliError::Output(e))
    }
}
