//! # oms-wal: durable, ordered storage of opaque records, one log per partition
//!
//! **Owns:** the on-disk format of a partition's write-ahead log (record framing,
//! segment files, snapshot files), making appended records durable under a
//! configurable policy with group commit, crash recovery (tail truncation,
//! refusal of mid-log corruption), retention, and concurrent read access for log
//! followers (replication, CDC) that never block the writer.
//!
//! **Must not know:** engine types (payloads are opaque bytes; the engine
//! serializes its commands with rkyv elsewhere and chooses `record_type`
//! values), sockets, client sessions, or the gateway's threads. A [`Wal`] is a
//! plain single-writer object owned by one partition thread; followers get a
//! [`LogFollower`] handle and bring their own threads.
//!
//! Entry points: [`Wal::open`] (recovers first and returns a [`Recovery`] to
//! replay), [`Wal::append`] / [`Wal::commit`], [`Wal::reader_handle`],
//! [`SnapshotStore`], and the [`inspect`] module for `oms wal dump/verify`.
//! See `docs/WAL.md` for the format and the durability argument.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod inspect;
pub mod reader;
pub mod record;
pub mod recovery;
mod scan;
pub mod segment;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod snapshot;
pub mod storage;
mod wal;

pub use error::WalError;
pub use reader::LogFollower;
pub use record::RecordError;
pub use recovery::{CutInfo, Recovery};
pub use snapshot::{Snapshot, SnapshotStore};
pub use storage::{FsStorage, SegmentFile, SegmentReader, Storage};
pub use wal::Wal;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Log sequence number: dense, starts at 1, one per record. 0 means "none".
pub type Lsn = u64;

/// How records reach the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// `memcpy` into a shared `MmapMut`, made durable with `msync(MS_SYNC)` of
    /// exactly the dirty range.
    Mmap,
    /// `pwrite` into the pre-allocated file, made durable with a data sync of
    /// the dirty range (io_uring `IORING_OP_FSYNC`+DATASYNC or `fdatasync`).
    #[default]
    Pwrite,
}

/// When [`Wal::commit`] makes records durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit flushes (one flush per group commit).
    #[default]
    Always,
    /// A commit flushes only if the last flush is older than the interval.
    Interval(Duration),
    /// Never flush except on rotation and close: acknowledged writes can be lost.
    Off,
}

/// Error parsing a [`Durability`] string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseDurabilityError {
    #[error("unknown durability {0:?} (expected always, interval, interval=<ms>, off)")]
    Unknown(String),
    #[error("bad interval milliseconds {0:?}")]
    BadInterval(String),
}

impl FromStr for Durability {
    type Err = ParseDurabilityError;
    /// `always`, `interval` (10 ms), `interval=<ms>`, `off`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(Durability::Always),
            "off" => Ok(Durability::Off),
            "interval" => Ok(Durability::Interval(Duration::from_millis(10))),
            l => match l.strip_prefix("interval=") {
                Some(ms) => ms
                    .trim()
                    .parse::<u64>()
                    .map(|ms| Durability::Interval(Duration::from_millis(ms)))
                    .map_err(|_| ParseDurabilityError::BadInterval(ms.to_string())),
                None => Err(ParseDurabilityError::Unknown(s.to_string())),
            },
        }
    }
}

/// What recovery may do with damage that is followed by valid, acknowledged records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse with [`WalError::MidLogCorruption`] (default).
    #[default]
    Strict,
    /// Operator override: cut the log at the damage, losing later records.
    TruncateMidLog,
}

/// How much log to keep for followers in [`Wal::truncate_before`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep at least this many bytes of segment files.
    pub min_bytes: u64,
    /// Keep segments whose newest record is younger than this.
    pub min_age: Duration,
}

/// Configuration of one log.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Directory holding this log's segments (one directory per partition).
    pub dir: PathBuf,
    /// Size each segment file is pre-allocated to (default 64 MiB).
    pub segment_bytes: u64,
    /// Largest accepted payload; also bounds every length read from disk.
    pub max_record_bytes: u32,
    pub write_mode: WriteMode,
    pub durability: Durability,
    pub recovery_mode: RecoveryMode,
    /// First LSN recovery must return (snapshot LSN + 1; 1 without a snapshot).
    pub start_lsn: Lsn,
}

impl WalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            max_record_bytes: 16 << 20,
            write_mode: WriteMode::default(),
            durability: Durability::Always,
            recovery_mode: RecoveryMode::Strict,
            start_lsn: 1,
        }
    }

    /// Largest payload that fits both the limit and one segment (with room for the seal).
    pub fn effective_max_record(&self) -> u32 {
        let room = self
            .segment_bytes
            .saturating_sub((segment::SEGMENT_HEADER_LEN + 2 * record::HEADER_LEN + record::ALIGN) as u64);
        (self.max_record_bytes as u64).min(room).min(u32::MAX as u64) as u32
    }

    pub(crate) fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes < 4096 {
            return Err(WalError::Config("segment_bytes must be at least 4096".into()));
        }
        if self.segment_bytes > (1 << 40) {
            return Err(WalError::Config("segment_bytes must be at most 1 TiB".into()));
        }
        if !self.segment_bytes.is_multiple_of(segment::SEGMENT_PAGE) {
            return Err(WalError::Config(format!(
                "segment_bytes must be a multiple of {} (the segment header records it in pages)",
                segment::SEGMENT_PAGE
            )));
        }
        if self.start_lsn == 0 {
            return Err(WalError::Config("start_lsn must be >= 1".into()));
        }
        Ok(())
    }
}

// Compile-time check: the writer can move to its partition thread; followers
// can be cloned and moved anywhere.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync_clone<T: Send + Sync + Clone>() {}
    send::<Wal>();
    send_sync_clone::<LogFollower>();
};

#[cfg(test)]
mod tests {
    use super::*;

    // Checks Durability parsing: the three forms, the bare `interval` default, and typed errors.
    #[test]
    fn parse_durability() {
        assert_eq!("always".parse::<Durability>(), Ok(Durability::Always));
        assert_eq!("OFF".parse::<Durability>(), Ok(Durability::Off));
        assert_eq!("interval".parse::<Durability>(), Ok(Durability::Interval(Duration::from_millis(10))));
        assert_eq!("interval=250".parse::<Durability>(), Ok(Durability::Interval(Duration::from_millis(250))));
        assert_eq!("interval=x".parse::<Durability>(), Err(ParseDurabilityError::BadInterval("x".into())));
        assert!(matches!("sometimes".parse::<Durability>(), Err(ParseDurabilityError::Unknown(_))));
    }
}
