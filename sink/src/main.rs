//! oms-sink-postgres: follows omsd's log (every partition) and maintains relational tables in
//! PostgreSQL. See docs/REPLICATION.md ("Downstream").
//!
//! Exactly once: the rows of a batch of records and the new per-partition position
//! (`sink_position`) are written in ONE transaction. On start the sink reads the positions and
//! rebuilds its replica partitions by re-reading each partition's log from LSN 1 (or from the
//! server's snapshot when the beginning is no longer retained), writing nothing for LSNs at or
//! below the stored position. Nothing but rows and positions is persisted, so the replica state
//! can never disagree with the rows.

mod batch;
mod schema;

use std::time::{Duration, Instant};

use clap::Parser;
use oms_client::{ClientError, LogStream};
use oms_engine::replica::{Replica, ReplicaError};
use oms_proto::{LogRecords, Response, SnapshotChunk, WireError};
use tokio_postgres::NoTls;

use crate::batch::Batch;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Project omsd's replicated log into PostgreSQL tables (reservations, reservation_allocations,
/// stock_movements, stock_levels, orders, order_lines, shipments), exactly once.
#[derive(Parser, Debug, Clone)]
#[command(name = "oms-sink-postgres", version)]
struct Args {
    /// omsd (or follower) address, host:port
    #[arg(long, env = "OMS_SERVER", value_name = "ADDR")]
    server: String,
    /// PostgreSQL connection string, e.g. "host=127.0.0.1 port=5432 user=postgres dbname=oms" or
    /// "postgresql://user@host/db"
    #[arg(long, env = "OMS_SINK_POSTGRES", value_name = "URL")]
    postgres: String,
    /// API key with the reader (or ops) role
    #[arg(long, env = "OMS_API_KEY", value_name = "KEY")]
    api_key: Option<String>,
    /// Accept the server's partition count when it differs from the one the stored positions
    /// belong to: the projected tables are emptied and rebuilt from the log. Without it the sink
    /// refuses to start on such a mismatch.
    #[arg(long)]
    partitions_from_server: bool,
    /// Largest number of log records written in one transaction
    #[arg(long, default_value_t = 4096, value_name = "N")]
    batch: usize,
    /// Longest time a record waits for its batch to fill while more records keep arriving
    #[arg(long, default_value = "200ms", value_parser = humantime_ms, value_name = "DURATION")]
    max_delay: Duration,
    /// Exit once every partition is projected up to the server's durable LSN (for backfills and
    /// benchmarks)
    #[arg(long)]
    exit_when_caught_up: bool,
    /// Connect timeout (omsd)
    #[arg(long, default_value = "5s", value_parser = humantime_ms, value_name = "DURATION")]
    connect_timeout: Duration,
    /// Connect to a TLS omsd, trusting only the PEM certificate(s) in FILE
    #[arg(long, env = "OMS_TLS_CA", value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// Connect to a TLS omsd, trusting the public web PKI roots
    #[arg(long, env = "OMS_TLS")]
    tls: bool,
    /// Name omsd's certificate must carry [default: the host part of --server]
    #[arg(long, env = "OMS_TLS_SERVER_NAME", value_name = "NAME")]
    tls_server_name: Option<String>,
}

fn humantime_ms(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "ms"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?} (e.g. 200ms, 5s)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("unknown duration unit in {s:?} (ms, s, m)")),
    }
}

#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("omsd: {0}")]
    Stream(#[from] ClientError),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("omsd refused the subscription: {} ({}): {}", .0.name, .0.code.0, .0.message)]
    Server(WireError),
    #[error("replica: {0}")]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Tls(#[from] oms_client::tls::TlsError),
    #[error(
        "the stored positions belong to {stored} partitions but the server has {server}; \
         pass --partitions-from-server to empty the tables and project again"
    )]
    PartitionCount { stored: String, server: u32 },
}

impl SinkError {
    /// Connection trouble is retried; a diverged replica or a configuration mismatch is not.
    fn retryable(&self) -> bool {
        matches!(self, SinkError::Stream(_) | SinkError::Postgres(_))
    }
}

/// Throughput counters, logged periodically.
struct Stats {
    started: Instant,
    records: u64,
    rows: u64,
    transactions: u64,
    last_log: Instant,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OMS_SINK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oms-sink-postgres: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("oms-sink-postgres: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), SinkError> {
    let mut stats = Stats { started: Instant::now(), records: 0, rows: 0, transactions: 0, last_log: Instant::now() };
    let mut backoff = oms_client::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let attempt = Instant::now();
        match run_once(&args, &mut stats).await {
            Ok(()) => {
                log_stats(&stats);
                return Ok(());
            }
            Err(e) if e.retryable() => {
                if attempt.elapsed() > Duration::from_secs(30) {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::warn!("{e}; starting again in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn log_stats(stats: &Stats) {
    let secs = stats.started.elapsed().as_secs_f64().max(1e-9);
    tracing::info!(
        records = stats.records,
        rows = stats.rows,
        transactions = stats.transactions,
        "projected {} records as {} rows in {:.1}s ({:.0} records/s, {:.0} rows/s)",
        stats.records,
        stats.rows,
        secs,
        stats.records as f64 / secs,
        stats.rows as f64 / secs
    );
}

/// One session: connect both ends, rebuild the replicas from the log, project until an error.
async fn run_once(args: &Args, stats: &mut Stats) -> Result<(), SinkError> {
    let (mut pg, connection) = tokio_postgres::connect(&args.postgres, NoTls).await?;
    let connection = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("postgres connection: {e}");
        }
    });
    let result = project(args, stats, &mut pg).await;
    drop(pg);
    let _ = connection.await;
    result
}

async fn project(args: &Args, stats: &mut Stats, pg: &mut tokio_postgres::Client) -> Result<(), SinkError> {
    schema::create(pg).await?;
    let name = format!("oms-sink-postgres/{}", env!("CARGO_PKG_VERSION"));
    let tls = if args.tls || args.tls_ca.is_some() {
        Some(oms_client::tls::ClientTls::new(args.tls_ca.as_deref(), args.tls_server_name.as_deref())?)
    } else {
        None
    };
    let (key, timeout) = (args.api_key.as_deref(), args.connect_timeout);
    let mut stream = LogStream::connect_tls(&args.server, key, &name, timeout, tls.as_ref()).await?;
    let partitions = stream.info().partitions;
    match schema::stored_partitions(pg).await? {
        Some(stored) if stored == partitions.to_string() => {}
        Some(stored) if !args.partitions_from_server => {
            return Err(SinkError::PartitionCount { stored, server: partitions });
        }
        _ => {
            tracing::info!(partitions, "starting a new projection (tables emptied)");
            schema::reset(pg, partitions).await?;
        }
    }
    let mut stored = schema::positions(pg, partitions).await?;
    tracing::info!(server = %args.server, partitions, positions = ?stored, "resuming; rebuilding replicas from the log");
    let mut replica = Replica::new(partitions, stream.info().max_lines as usize);
    for p in 0..partitions {
        stream.subscribe(u64::from(p), Some(p), 1, true).await?;
    }
    let mut caught_up = vec![false; partitions as usize];
    let mut batch = Batch::default();
    let mut events = Vec::new();
    loop {
        let (_, response) = stream.next().await?;
        match response {
            Response::Snapshot(SnapshotChunk { partition, lsn, offset, total, data }) => {
                let done = replica.on_snapshot(partition, lsn, offset, total, &data)?;
                let position = stored.get(partition as usize).copied().unwrap_or(0);
                if done && lsn > position {
                    tracing::warn!(
                        partition,
                        "the log before LSN {} is no longer retained: rows are rewritten from the snapshot; \
                         stock movements of LSNs {}..={lsn} are not available",
                        lsn + 1,
                        position + 1
                    );
                    batch.full_resync(partition, lsn);
                }
            }
            Response::LogRecords(LogRecords { partition, records, durable_lsn }) => {
                let position = stored.get(partition as usize).copied().unwrap_or(0);
                for record in &records {
                    events.clear();
                    let envelope =
                        replica.apply(partition, record.lsn, record.record_type, &record.payload, &mut events)?;
                    if record.lsn > position {
                        batch.add(partition, record.lsn, envelope.now_ms, &events);
                        if batch.records >= args.batch {
                            commit(pg, &replica, &mut batch, &mut stored, stats).await?;
                        }
                    }
                }
                let applied = replica.next_lsn(partition).saturating_sub(1);
                let partition_caught_up = applied >= durable_lsn;
                let old_enough = batch.started.is_some_and(|t| t.elapsed() >= args.max_delay);
                if !batch.is_empty() && (partition_caught_up || old_enough) {
                    commit(pg, &replica, &mut batch, &mut stored, stats).await?;
                }
                if let Some(slot) = caught_up.get_mut(partition as usize) {
                    *slot = partition_caught_up
                        && stored.get(partition as usize).copied().unwrap_or(0) >= applied.min(durable_lsn);
                }
                if stats.last_log.elapsed() >= Duration::from_secs(10) {
                    stats.last_log = Instant::now();
                    log_stats(stats);
                }
                if args.exit_when_caught_up && batch.is_empty() && caught_up.iter().all(|c| *c) {
                    return Ok(());
                }
            }
            Response::Error(e) => return Err(SinkError::Server(e)),
            _ => {}
        }
    }
}

/// Write the batch (rows and positions, one transaction) and start a new one.
async fn commit(
    pg: &mut tokio_postgres::Client,
    replica: &Replica,
    batch: &mut Batch,
    stored: &mut [u64],
    stats: &mut Stats,
) -> Result<(), SinkError> {
    let rows = batch.flush(pg, replica).await?;
    stats.records += batch.records as u64;
    stats.rows += rows;
    stats.transactions += 1;
    for (&p, &lsn) in &batch.positions {
        if let Some(slot) = stored.get_mut(p as usize) {
            *slot = lsn;
        }
    }
    tracing::debug!(records = batch.records, rows, "batch committed");
    *batch = Batch::default();
    Ok(())
}
