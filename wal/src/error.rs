//! Error types. Corruption (what the bytes say) is kept apart from I/O (what the
//! operating system says); see [`WalError::is_corruption`].

use crate::record::RecordError;
use crate::Lsn;
use std::io;

/// Errors returned by the log.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system I/O error.
    #[error("wal i/o error during {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A record could not be decoded (reported by readers and inspect tools).
    #[error("bad record in {segment} at offset {offset}: {source}")]
    Corrupt {
        segment: String,
        offset: u64,
        #[source]
        source: RecordError,
    },
    /// A segment file's header is wrong (misplaced, foreign or damaged file).
    #[error("bad segment header in {segment}: {reason}")]
    BadSegmentHeader { segment: String, reason: String },
    /// Damage followed by records that were written after the damaged one was
    /// already durable: acknowledged data is lost. Needs `RecoveryMode::TruncateMidLog`.
    #[error("mid-log corruption in {segment} at offset {offset} (first bad lsn {lsn}); refusing to truncate acknowledged records (operator flag: TruncateMidLog)")]
    MidLogCorruption { segment: String, offset: u64, lsn: Lsn },
    /// The log's structure proves that records it held are gone: a segment file shorter than it
    /// was created or without its header, or a sealed newest segment whose successor is missing.
    /// No crash produces these shapes (see `docs/WAL.md`). Needs `RecoveryMode::TruncateMidLog`.
    #[error("lost log records in {segment} at offset {offset} (first missing lsn {lsn}): {reason}; refusing to continue without them (operator flag: TruncateMidLog)")]
    LostRecords { segment: String, offset: u64, lsn: Lsn, reason: String },
    /// The log does not contain the records needed to continue from the requested start.
    #[error("log gap: need lsn {expected}, oldest available is {found}")]
    MissingRecords { expected: Lsn, found: Lsn },
    /// A previous flush failed; the log refuses all further writes.
    #[error("wal is poisoned by an earlier i/o error; restart and recover")]
    Poisoned,
    /// A follower asked for records that were already deleted by retention.
    #[error("lsn {requested} is behind retention; oldest retained lsn is {oldest}")]
    BehindRetention { requested: Lsn, oldest: Lsn },
    /// `Wal::restart_at` was asked to continue at or before the log's next LSN (LSNs are never
    /// reused).
    #[error("cannot restart the log at lsn {requested}: its next lsn is already {next}")]
    LsnBackwards { next: Lsn, requested: Lsn },
    /// Payload larger than `max_record_bytes` or than a segment can hold.
    #[error("record of {len} bytes exceeds the limit of {max}")]
    RecordTooLarge { len: u64, max: u64 },
    /// Invalid configuration.
    #[error("invalid wal config: {0}")]
    Config(String),
    /// A snapshot file is damaged (only reported by explicit loads).
    #[error("bad snapshot {path}: {reason}")]
    BadSnapshot { path: String, reason: String },
}

impl WalError {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> WalError {
        move |source| WalError::Io { op, source }
    }

    /// True when the error describes damaged or inconsistent bytes rather than
    /// a failing device or system call.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            WalError::Corrupt { .. }
                | WalError::BadSegmentHeader { .. }
                | WalError::MidLogCorruption { .. }
                | WalError::LostRecords { .. }
                | WalError::MissingRecords { .. }
                | WalError::BadSnapshot { .. }
        )
    }
}
