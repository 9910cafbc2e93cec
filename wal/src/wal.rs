//! The single-writer log: append, group commit, rotation, retention.

use crate::reader::{LogFollower, SegEntry, Shared};
use crate::record::{encode_into, encode_seal, encoded_len, HEADER_LEN};
use crate::recovery::{recover, Recovery};
use crate::segment::{creating_name, encode_header, segment_name, SEGMENT_HEADER_LEN};
use crate::storage::{FsStorage, SegmentFile, Storage};
use crate::{Durability, Lsn, Retention, WalConfig, WalError};
use std::sync::Arc;
use std::time::Instant;

/// Encoded records are staged in memory and written to the file in one call
/// at commit, at rotation, or when this much is pending.
const WRITE_BATCH: usize = 1 << 20;

/// A partition's write-ahead log. Single writer: owned by one thread
/// (`Send`, not shared). Readers on other threads use [`Wal::reader_handle`].
pub struct Wal {
    cfg: WalConfig,
    max_record: u32,
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    active: Option<Box<dyn SegmentFile>>,
    active_len: u64,
    /// End of bytes handed to the file (`pending` goes here).
    write_off: u64,
    /// Start of the written-but-not-flushed range.
    flushed_off: u64,
    pending: Vec<u8>,
    written_lsn: Lsn,
    next_lsn: Lsn,
    durable: Lsn,
    last_flush: Instant,
    poisoned: bool,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.cfg.dir)
            .field("next_lsn", &self.next_lsn)
            .field("durable", &self.durable)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `config.dir` on real files,
    /// recovering first. Replay the returned [`Recovery`] before appending.
    pub fn open(config: WalConfig) -> Result<(Wal, Recovery), WalError> {
        config.validate()?;
        let storage = FsStorage::open(&config.dir, config.write_mode).map_err(WalError::io("open wal dir"))?;
        Self::open_with_storage(config, Arc::new(storage))
    }

    /// Like [`Wal::open`] on any [`Storage`] (e.g. `SimulatedStorage`).
    pub fn open_with_storage(config: WalConfig, storage: Arc<dyn Storage>) -> Result<(Wal, Recovery), WalError> {
        config.validate()?;
        let max_record = config.effective_max_record();
        if config.durability == Durability::Off {
            tracing::warn!(dir = %config.dir.display(),
                "wal durability=off: commits are acknowledged without flushing; ACKNOWLEDGED WRITES CAN BE LOST on power failure or kernel crash");
        }
        tracing::info!(dir = %config.dir.display(), flusher = storage.flusher_name(), mode = ?config.write_mode,
            durability = ?config.durability, "opening wal");
        let (rec, recovery) = recover(&*storage, config.start_lsn, config.recovery_mode, max_record)?;
        let durable = rec.next_lsn - 1;
        let shared = Arc::new(Shared::new(durable, rec.segs, max_record));
        let mut wal = Wal {
            max_record,
            storage,
            shared,
            active: None,
            active_len: 0,
            write_off: 0,
            flushed_off: 0,
            pending: Vec::with_capacity(64 << 10),
            written_lsn: durable,
            next_lsn: rec.next_lsn,
            durable,
            last_flush: Instant::now(),
            poisoned: false,
            cfg: config,
        };
        match rec.tail {
            Some((file, off)) if rec.next_lsn >= wal.cfg.start_lsn => {
                wal.active_len = file.len();
                wal.active = Some(file);
                wal.write_off = off;
                wal.flushed_off = off;
            }
            _ => {
                if rec.next_lsn < wal.cfg.start_lsn && rec.next_lsn > 1 {
                    tracing::warn!(
                        log_end = rec.next_lsn - 1,
                        start_lsn = wal.cfg.start_lsn,
                        "wal ends before the snapshot; continuing in a new segment at the snapshot lsn"
                    );
                }
                wal.next_lsn = wal.next_lsn.max(wal.cfg.start_lsn);
                wal.written_lsn = wal.next_lsn - 1;
                wal.durable = wal.next_lsn - 1;
                wal.shared.publish(wal.durable);
                wal.new_segment()?;
            }
        }
        Ok((wal, recovery))
    }

    /// Buffers a record; it is not durable (nor visible to followers) until a
    /// [`Wal::commit`] flushes it. Returns its LSN.
    pub fn append(&mut self, record_type: u8, payload: &[u8]) -> Result<Lsn, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if payload.len() > self.max_record as usize {
            return Err(WalError::RecordTooLarge { len: payload.len() as u64, max: self.max_record as u64 });
        }
        let need = encoded_len(payload.len()) as u64;
        // The last HEADER_LEN bytes of a segment stay free for its seal.
        if self.write_off + self.pending.len() as u64 + need + HEADER_LEN as u64 > self.active_len {
            self.roll()?;
        }
        let lsn = self.next_lsn;
        let gap = (lsn - self.durable).min(u32::MAX as u64) as u32;
        encode_into(&mut self.pending, lsn, record_type, gap, payload);
        self.next_lsn += 1;
        if self.pending.len() >= WRITE_BATCH {
            self.write_pending()?;
        }
        Ok(lsn)
    }

    /// Ends a group: writes every appended record to the file and, as the
    /// durability policy says, makes all of them durable with ONE flush.
    /// Returns the durable LSN (acknowledge records up to it, not beyond).
    pub fn commit(&mut self) -> Result<Lsn, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        self.write_pending()?;
        match self.cfg.durability {
            Durability::Always => self.flush(),
            Durability::Interval(d) if self.last_flush.elapsed() >= d => self.flush(),
            Durability::Interval(_) | Durability::Off => Ok(self.durable),
        }
    }

    /// Under `Interval`, flushes if records are waiting and the last flush is
    /// at least one interval older than `now`. Returns the durable LSN.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<Lsn, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if let Durability::Interval(d) = self.cfg.durability {
            let dirty = self.written_lsn > self.durable || !self.pending.is_empty();
            if dirty && now.saturating_duration_since(self.last_flush) >= d {
                self.write_pending()?;
                return self.flush();
            }
        }
        Ok(self.durable)
    }

    /// Flushes everything appended so far regardless of the policy.
    pub fn sync(&mut self) -> Result<Lsn, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        self.write_pending()?;
        self.flush()
    }

    /// Flushes and closes the log.
    pub fn close(mut self) -> Result<Lsn, WalError> {
        self.sync()
    }

    /// Highest LSN known durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.durable
    }

    /// Highest LSN appended (durable or not); 0 if none.
    pub fn last_lsn(&self) -> Lsn {
        self.next_lsn - 1
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The flush mechanism in use: "io_uring", "fdatasync", "msync" or "simulated".
    pub fn flusher_name(&self) -> &'static str {
        self.storage.flusher_name()
    }

    /// A handle for reading durable records from other threads.
    pub fn reader_handle(&self) -> LogFollower {
        LogFollower::new(self.shared.clone())
    }

    /// Deletes whole segments whose records are all `<= snapshot_lsn`, oldest
    /// first, while `retention` still holds for the remaining log. The active
    /// segment is never deleted. Returns the number of segments removed.
    pub fn truncate_before(&mut self, snapshot_lsn: Lsn, retention: Retention) -> Result<usize, WalError> {
        let victims: Vec<SegEntry> = {
            let mut segs = self.shared.segments.write();
            let mut kept_bytes: u64 = segs.iter().map(|s| s.bytes).sum();
            let mut n = 0;
            while n + 1 < segs.len() {
                let (s, next) = (&segs[n], &segs[n + 1]);
                if next.first_lsn - 1 > snapshot_lsn
                    || kept_bytes - s.bytes < retention.min_bytes
                    || next.created_at.elapsed() < retention.min_age
                {
                    break;
                }
                kept_bytes -= s.bytes;
                n += 1;
            }
            segs.drain(..n).collect()
        };
        for s in &victims {
            self.storage.remove(&s.name).map_err(WalError::io("remove segment"))?;
            tracing::info!(segment = %s.name, "wal retention: removed segment");
        }
        if !victims.is_empty() {
            self.storage.sync_dir().map_err(WalError::io("sync dir"))?;
        }
        Ok(victims.len())
    }

    /// Discards every segment and continues the log at `next_lsn`: a replica that installed a
    /// snapshot at `next_lsn - 1` because its source no longer retains the records in between.
    /// The caller must have made that snapshot durable first: afterwards the records before
    /// `next_lsn` exist nowhere in this log. Crash-safe in this order: the old segments are
    /// removed (and the directory synced) before the new one is created, so recovery finds either
    /// the old log (ending before the snapshot, which recovery accepts) or the new one, never
    /// both with a gap between them. Followers keep their handles: they see the new segment and
    /// the durable LSN jump to `next_lsn - 1`.
    pub fn restart_at(&mut self, next_lsn: Lsn) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if next_lsn <= self.next_lsn {
            return Err(WalError::LsnBackwards { next: self.next_lsn, requested: next_lsn });
        }
        // Unflushed records would be discarded with their segment: they belong to the state the
        // snapshot replaces, but flushing first keeps "durable" meaning durable until the end.
        self.sync()?;
        let old: Vec<SegEntry> = std::mem::take(&mut *self.shared.segments.write());
        self.active = None;
        for s in &old {
            let r = self.storage.remove(&s.name);
            r.map_err(self.poison("remove segment"))?;
        }
        let r = self.storage.sync_dir();
        r.map_err(self.poison("sync dir"))?;
        self.next_lsn = next_lsn;
        self.written_lsn = next_lsn - 1;
        self.durable = next_lsn - 1;
        self.pending.clear();
        self.new_segment()?;
        self.shared.publish(self.durable);
        tracing::info!(next_lsn, removed_segments = old.len(), "wal restarted after a snapshot install");
        Ok(())
    }

    /// Any write or flush error poisons the log: the state of the unflushed
    /// range is unknown (fsyncgate), so nothing may be acknowledged after it.
    fn poison(&mut self, op: &'static str) -> impl FnOnce(std::io::Error) -> WalError + '_ {
        move |e| {
            self.poisoned = true;
            tracing::error!(error = %e, op, "wal i/o error: wal is now poisoned, no further writes are accepted");
            WalError::Io { op, source: e }
        }
    }

    fn write_pending(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(active) = self.active.as_mut() else {
            return Err(WalError::Poisoned);
        };
        let r = active.write_at(self.write_off, &self.pending);
        r.map_err(self.poison("write"))?;
        self.write_off += self.pending.len() as u64;
        self.pending.clear();
        self.written_lsn = self.next_lsn - 1;
        Ok(())
    }

    /// Flushes the written range; publishes the durable LSN only after the
    /// flush returned (Release/SeqCst store), then wakes followers.
    fn flush(&mut self) -> Result<Lsn, WalError> {
        debug_assert!(self.pending.is_empty());
        if self.write_off > self.flushed_off {
            let Some(active) = self.active.as_mut() else {
                return Err(WalError::Poisoned);
            };
            let r = active.sync_range(self.flushed_off, self.write_off - self.flushed_off);
            r.map_err(self.poison("flush"))?;
            self.flushed_off = self.write_off;
        }
        self.last_flush = Instant::now();
        if self.written_lsn > self.durable {
            self.durable = self.written_lsn;
            self.shared.publish(self.durable);
        }
        Ok(self.durable)
    }

    /// Ends the active segment and starts a new one at `next_lsn`:
    /// 1. flush the active segment, whatever the policy (a later segment must never hold durable
    ///    records while an earlier one does not);
    /// 2. create the successor complete and durable (see [`Wal::new_segment`]);
    /// 3. write and flush the seal after the last record of the old segment, naming the
    ///    successor's first LSN. From then on a log ending in that segment has lost its successor.
    ///
    /// A crash between 2 and 3 leaves an unsealed segment followed by an empty one, which recovery
    /// accepts: nothing was written to the successor before the seal.
    fn roll(&mut self) -> Result<(), WalError> {
        // Records appended so far are all in the active segment's budget.
        self.write_pending()?;
        self.flush()?;
        let seal_at = self.write_off;
        let old = self.active.take();
        self.new_segment()?;
        if let Some(mut old) = old {
            debug_assert!(seal_at + HEADER_LEN as u64 <= old.len(), "append keeps room for the seal");
            let mut seal = Vec::with_capacity(HEADER_LEN);
            encode_seal(&mut seal, self.next_lsn);
            let r = old.write_at(seal_at, &seal);
            r.map_err(self.poison("write segment seal"))?;
            let r = old.sync_range(seal_at, HEADER_LEN as u64);
            r.map_err(self.poison("sync segment seal"))?;
        }
        Ok(())
    }

    /// Creates the segment starting at `next_lsn` and makes it the active one. It is built under a
    /// temporary name (pre-allocated, header with its length written and flushed) and renamed only
    /// then, with the directory synced: a file under a segment name is always complete, so
    /// recovery can read a short or headerless segment as damage instead of an interrupted creation.
    fn new_segment(&mut self) -> Result<(), WalError> {
        let name = segment_name(self.next_lsn);
        let creating = creating_name(self.next_lsn);
        let len = self.cfg.segment_bytes;
        let mut file = match self.storage.create_segment(&creating, len) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left over from a failed attempt in this process (recovery removes the ones a
                // crash leaves).
                self.storage.remove(&creating).map_err(self.poison("remove stale segment"))?;
                let r = self.storage.create_segment(&creating, len);
                r.map_err(self.poison("create segment"))?
            }
            Err(e) => return Err(self.poison("create segment")(e)),
        };
        let r = file.write_at(0, &encode_header(self.next_lsn, len));
        r.map_err(self.poison("write segment header"))?;
        let r = file.sync_range(0, SEGMENT_HEADER_LEN as u64);
        r.map_err(self.poison("sync segment header"))?;
        let r = self.storage.rename(&creating, &name);
        r.map_err(self.poison("rename new segment"))?;
        let r = self.storage.sync_dir();
        r.map_err(self.poison("sync dir"))?;
        let reader = file.reader();
        let reader = reader.map_err(self.poison("map segment"))?;
        self.shared.segments.write().push(SegEntry {
            first_lsn: self.next_lsn,
            name,
            bytes: len,
            reader,
            created_at: Instant::now(),
        });
        self.active_len = file.len();
        self.active = Some(file);
        self.write_off = SEGMENT_HEADER_LEN as u64;
        self.flushed_off = self.write_off;
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if !self.poisoned && (!self.pending.is_empty() || self.write_off > self.flushed_off) {
            if let Err(e) = self.sync() {
                tracing::error!(error = %e, "wal: flush on drop failed");
            }
        }
    }
}
