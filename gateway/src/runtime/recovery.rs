//! Start-up: each partition = latest valid snapshot + the log after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oms_engine::codec::{decode_envelope, decode_image, RECORD_COMMAND};
use oms_engine::{Limits, Partition};
use oms_wal::{FsStorage, Lsn, RecoveryMode, Snapshot, SnapshotStore, Storage, Wal, WalConfig, WalError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    #[error("partition {partition}: log: {source}{}", override_hint(.source))]
    Wal { partition: u32, source: WalError },
    #[error("partition {partition}: snapshot at LSN {lsn} does not decode: {reason}")]
    Snapshot { partition: u32, lsn: Lsn, reason: String },
    #[error("partition {partition}: record {lsn} does not decode: {reason}")]
    Record { partition: u32, lsn: Lsn, reason: String },
    #[error("partition {partition}: record {lsn} was refused on replay ({error}); the log does not match this engine")]
    Replay { partition: u32, lsn: Lsn, error: oms_engine::EngineError },
    #[error("partition {partition}: unknown record type {record_type} at LSN {lsn}")]
    RecordType { partition: u32, lsn: Lsn, record_type: u8 },
    #[error(
        "data directory {dir} was created with {found} partitions, not {configured}; start with --partitions {found}"
    )]
    PartitionCount { dir: PathBuf, found: u32, configured: u32 },
    #[error("data directory {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
}

/// What the operator can do about a log that recovery refuses.
fn override_hint(source: &WalError) -> &'static str {
    match source {
        WalError::MidLogCorruption { .. } | WalError::LostRecords { .. } => {
            ". Read `oms wal verify --data-dir DIR`; --truncate-corrupt-log starts anyway, cutting the log at the \
             damage (the records after it are lost)"
        }
        _ => "",
    }
}

pub struct RecoveredPartition {
    pub partition: Partition,
    /// The partition's log directory (snapshots live in its `snapshots/`).
    pub dir: PathBuf,
    pub wal: Wal,
    pub snapshot_lsn: Lsn,
    pub replayed: u64,
}

pub fn partition_dir(data_dir: &Path, partition: u32) -> PathBuf {
    data_dir.join(format!("p{partition}")).join("wal")
}

/// The partition count is fixed per data directory (SKU ownership depends on it).
fn check_manifest(data_dir: &Path, partitions: u32) -> Result<(), RecoveryError> {
    let io = |source| RecoveryError::Io { dir: data_dir.to_owned(), source };
    create_private_dir(data_dir).map_err(io)?;
    let manifest = data_dir.join("PARTITIONS");
    match std::fs::read_to_string(&manifest) {
        Ok(text) => {
            let found = text.trim().parse::<u32>().unwrap_or(0);
            if found != partitions {
                return Err(RecoveryError::PartitionCount { dir: data_dir.to_owned(), found, configured: partitions });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&manifest, format!("{partitions}\n")).map_err(io)?;
            Ok(())
        }
        Err(e) => Err(io(e)),
    }
}

/// Owner-only permissions: the log holds customer ids and order data.
/// Create `dir` owner-only, and tighten one that already exists (an operator's `mkdir` leaves it
/// 0755, and the log holds customer ids and order data).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
        tracing::warn!(dir = %dir.display(), from = format!("{mode:o}"), to = format!("{:o}", mode & 0o700), "tightened data directory permissions to owner-only");
    }
    Ok(())
}

pub fn recover_partitions(
    data_dir: &Path,
    partitions: u32,
    limits: Limits,
    base: &WalConfig,
    truncate_corrupt_log: bool,
) -> Result<Vec<RecoveredPartition>, RecoveryError> {
    check_manifest(data_dir, partitions)?;
    (0..partitions).map(|index| recover_one(data_dir, index, partitions, limits, base, truncate_corrupt_log)).collect()
}

fn recover_one(
    data_dir: &Path,
    index: u32,
    partitions: u32,
    limits: Limits,
    base: &WalConfig,
    truncate_corrupt_log: bool,
) -> Result<RecoveredPartition, RecoveryError> {
    let wal_err = |source| RecoveryError::Wal { partition: index, source };
    let dir = partition_dir(data_dir, index);
    create_private_dir(&dir).map_err(|source| RecoveryError::Io { dir: dir.clone(), source })?;
    let snapshots = SnapshotStore::open(&dir).map_err(wal_err)?;
    let mut config = base.clone();
    config.dir = dir.clone();
    if truncate_corrupt_log {
        config.recovery_mode = RecoveryMode::TruncateMidLog;
    }
    let storage: Arc<dyn Storage> =
        Arc::new(FsStorage::open(&dir, config.write_mode).map_err(|source| RecoveryError::Io { dir, source })?);
    // Newest snapshot first; one that fails its checksums or whose image does not load is skipped
    // for the next older one, whose log suffix retention keeps (`SnapshotStore::oldest`). Loaded
    // one at a time: a snapshot can be as large as the state.
    for lsn in snapshots.list().map_err(wal_err)?.into_iter().rev() {
        let snapshot = match snapshots.load(lsn) {
            Ok(snapshot) => snapshot,
            Err(e @ WalError::BadSnapshot { .. }) => {
                tracing::warn!(partition = index, error = %e, "skipping a damaged snapshot for an older one");
                continue;
            }
            Err(e) => return Err(wal_err(e)),
        };
        match recover_partition(index, partitions, limits, Some(&snapshot), config.clone(), storage.clone()) {
            Err(e @ RecoveryError::Snapshot { .. }) => {
                tracing::warn!(partition = index, error = %e, "skipping a snapshot that does not load for an older one");
            }
            done => return done,
        }
    }
    recover_partition(index, partitions, limits, None, config, storage)
}

/// One partition from its newest valid snapshot (if any) and the log on `storage` after it. The
/// daemon passes real files; the simulation passes `oms_wal::sim::SimulatedStorage`.
/// `config.start_lsn` is set here from the snapshot.
pub fn recover_partition(
    index: u32,
    partitions: u32,
    limits: Limits,
    snapshot: Option<&Snapshot>,
    mut config: WalConfig,
    storage: Arc<dyn Storage>,
) -> Result<RecoveredPartition, RecoveryError> {
    let wal_err = |source| RecoveryError::Wal { partition: index, source };
    let (mut partition, snapshot_lsn) = match snapshot {
        Some(snapshot) => {
            let refused = |reason: String| RecoveryError::Snapshot { partition: index, lsn: snapshot.lsn, reason };
            let image = decode_image(&snapshot.data).map_err(|e| refused(e.to_string()))?;
            if (image.index, image.partitions) != (index, partitions) {
                return Err(refused(format!(
                    "it holds partition {} of {}, this directory is partition {index} of {partitions}",
                    image.index, image.partitions
                )));
            }
            (Partition::from_image(image, limits).map_err(|e| refused(e.to_string()))?, snapshot.lsn)
        }
        None => (Partition::new(index, partitions, limits), 0),
    };
    config.start_lsn = snapshot_lsn + 1;
    let dir = config.dir.clone();
    let (wal, recovery) = Wal::open_with_storage(config, storage).map_err(wal_err)?;
    let mut events = Vec::new();
    let replayed = recovery.for_each_record(snapshot_lsn + 1, |lsn, record_type, payload| {
        if record_type != RECORD_COMMAND {
            return Err(RecoveryError::RecordType { partition: index, lsn, record_type });
        }
        let envelope = decode_envelope(payload).map_err(|e| RecoveryError::Record {
            partition: index,
            lsn,
            reason: e.to_string(),
        })?;
        events.clear();
        partition.apply(&envelope, &mut events).map_err(|error| RecoveryError::Replay {
            partition: index,
            lsn,
            error,
        })?;
        Ok(())
    })?;
    tracing::info!(partition = index, snapshot_lsn, replayed, last_lsn = wal.last_lsn(), "partition recovered");
    Ok(RecoveredPartition { partition, dir, wal, snapshot_lsn, replayed })
}

impl From<WalError> for RecoveryError {
    fn from(source: WalError) -> Self {
        RecoveryError::Wal { partition: u32::MAX, source }
    }
}

/// Start-up order reconciliation (`oms_engine::orders::reconcile`): carry out the stock commands
/// the recovered order books imply but the stock partitions never received (a crash between an
/// order command and its stock commands), including holds an interrupted allocation left behind.
/// Runs before any partition thread starts, so no allocation is in flight. Each command is applied
/// and logged in its partition like any other, and made durable before serving. Answers how many
/// commands were applied.
pub fn reconcile_orders(recovered: &mut [RecoveredPartition], now_ms: u64) -> Result<usize, RecoveryError> {
    use oms_engine::codec::encode_envelope;
    use oms_engine::orders::reconcile::{already_done, owed_stock_commands};
    use oms_engine::{Envelope, Outcome};

    let owed = {
        let partitions: Vec<&Partition> = recovered.iter().map(|r| &r.partition).collect();
        owed_stock_commands(&partitions, true)
    };
    let mut applied = 0;
    let mut touched = vec![false; recovered.len()];
    let mut events = Vec::new();
    for (p, command) in owed {
        let Some(r) = recovered.get_mut(p as usize) else { continue };
        let envelope = Envelope { now_ms, command };
        events.clear();
        match r.partition.apply(&envelope, &mut events) {
            Ok(Outcome::Changed) => {
                let bytes = encode_envelope(&envelope).map_err(|e| RecoveryError::Record {
                    partition: p,
                    lsn: r.wal.last_lsn() + 1,
                    reason: e.to_string(),
                })?;
                r.wal.append(RECORD_COMMAND, &bytes).map_err(|source| RecoveryError::Wal { partition: p, source })?;
                touched[p as usize] = true;
                applied += 1;
                tracing::info!(partition = p, command = envelope.command.name(), "order stock effect reconciled");
            }
            Ok(Outcome::Unchanged) => {}
            Err(e) if already_done(&e) => {}
            Err(e) => {
                tracing::warn!(partition = p, command = envelope.command.name(), error = %e, "order stock effect could not be reconciled")
            }
        }
    }
    for (r, touched) in recovered.iter_mut().zip(touched) {
        if touched {
            let index = r.partition.index();
            r.wal.commit().map_err(|source| RecoveryError::Wal { partition: index, source })?;
        }
    }
    Ok(applied)
}
