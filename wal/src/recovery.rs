//! Crash recovery: validate the log from the start LSN, cut a torn tail, refuse
//! mid-log corruption, and hand the surviving records to the caller for replay.
//!
//! ## Tail damage versus mid-log corruption
//! Scanning stops at the first record that does not decode as the expected LSN
//! (torn, bad CRC, too large, wrong LSN, or a zero header not followed by the
//! next segment). Recovery then searches everything after that point (rest of
//! the segment at every 8-byte offset, and all later segments) for
//! checksum-valid records with a higher LSN. Each record carries `ack_gap`, from
//! which recovery knows the durable LSN at the time the record was appended
//! (`durable_base`). If some later record was appended *after* the damaged
//! LSN had been made durable (`durable_base >= damaged lsn`), acknowledged data
//! was destroyed: that is mid-log corruption and recovery refuses (unless
//! [`RecoveryMode::TruncateMidLog`]). Otherwise every later byte belongs to
//! writes that were never acknowledged (a torn group commit, possibly with
//! sectors persisted out of order): it is tail damage and is cut: the rest of
//! the segment is zeroed and flushed, later segments are deleted, and the cut
//! is logged with `tracing::warn!`.

use crate::reader::{segment_view, SegEntry};
use crate::record::{self, RecordError, ALIGN, HEADER_LEN};
use crate::segment::{decode_header, parse_segment_name, SEGMENT_HEADER_LEN};
use crate::storage::{SegmentFile, SegmentReader, Storage};
use crate::{Lsn, RecoveryMode, WalError};
use std::sync::Arc;
use std::time::Instant;

/// What recovery cut off the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CutInfo {
    /// Segment file where the cut starts.
    pub segment: String,
    /// Byte offset of the cut inside that segment.
    pub offset: u64,
    /// Non-zero bytes discarded (rest of the segment plus later segments).
    pub bytes: u64,
    /// Last LSN kept.
    pub last_good_lsn: Lsn,
    /// Why the first discarded record was rejected.
    pub reason: String,
    /// Later segment files deleted.
    pub removed_segments: Vec<String>,
    /// True when acknowledged records were cut (operator override).
    pub mid_log: bool,
}

/// The result of recovery: counts, the cut (if any), and replay access.
pub struct Recovery {
    /// First LSN requested (snapshot LSN + 1).
    pub start_lsn: Lsn,
    /// Last valid LSN in the log (`start_lsn - 1` if none at or after it).
    pub last_lsn: Lsn,
    /// Records with LSN >= `start_lsn` available for replay.
    pub records: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    /// Segment files scanned.
    pub segments: usize,
    pub cut: Option<CutInfo>,
    pub(crate) segs: Vec<SegEntry>,
    pub(crate) max_record_bytes: u32,
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("start_lsn", &self.start_lsn)
            .field("last_lsn", &self.last_lsn)
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .field("segments", &self.segments)
            .field("cut", &self.cut)
            .finish()
    }
}

impl Recovery {
    /// Calls `f(lsn, record_type, payload)` for every recovered record with
    /// LSN in `from_lsn..=last_lsn`, in order. Payloads borrow the segment
    /// mapping (or one reused buffer): no allocation per record. Returns the
    /// number of records delivered.
    pub fn for_each_record<E, F>(&self, from_lsn: Lsn, mut f: F) -> Result<u64, E>
    where
        E: From<WalError>,
        F: FnMut(Lsn, u8, &[u8]) -> Result<(), E>,
    {
        let mut n = 0;
        if from_lsn > self.last_lsn {
            return Ok(0);
        }
        let idx = self.segs.partition_point(|s| s.first_lsn <= from_lsn).saturating_sub(1);
        let mut buf = Vec::new();
        for seg in &self.segs[idx..] {
            let bytes = segment_view(&*seg.reader, &mut buf)?;
            let mut off = SEGMENT_HEADER_LEN;
            let mut expected = seg.first_lsn;
            while expected <= self.last_lsn {
                let r = match record::decode(bytes.get(off..).unwrap_or(&[]), expected, self.max_record_bytes) {
                    Ok(r) => r,
                    Err(RecordError::ZeroHeader) => break,
                    Err(source) => {
                        return Err(WalError::Corrupt { segment: seg.name.clone(), offset: off as u64, source }.into())
                    }
                };
                if r.lsn >= from_lsn {
                    f(r.lsn, r.record_type, r.payload)?;
                    n += 1;
                }
                expected += 1;
                off += r.total_len;
            }
            if expected > self.last_lsn {
                break;
            }
        }
        Ok(n)
    }
}

/// Everything [`crate::Wal`] needs to continue writing after recovery.
pub(crate) struct Recovered {
    pub segs: Vec<SegEntry>,
    /// Writable handle of the last segment and the offset after its last record.
    pub tail: Option<(Box<dyn SegmentFile>, u64)>,
    pub next_lsn: Lsn,
}

struct Opened {
    first_lsn: Lsn,
    name: String,
    file: Box<dyn SegmentFile>,
    reader: Arc<dyn SegmentReader>,
}

pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    let whole = chunks.by_ref().all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0);
    whole && chunks.remainder().iter().all(|&x| x == 0)
}

/// Index one past the last non-zero byte of `b` (0 if all zero).
fn nonzero_end(b: &[u8]) -> usize {
    b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1)
}

/// Searches `bytes[from..]` at every aligned offset for a checksum-valid record
/// with LSN > `lsn` whose writer already had `lsn` durable.
pub(crate) fn acked_after(bytes: &[u8], from: usize, lsn: Lsn, max: u32) -> Option<Lsn> {
    let mut off = from & !(ALIGN - 1);
    while off + HEADER_LEN <= bytes.len() {
        let h = &bytes[off..off + HEADER_LEN];
        // Cheap filters before computing a CRC.
        let cand_lsn = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        if cand_lsn > lsn {
            if let Ok(r) = record::decode_any(&bytes[off..], max) {
                if r.durable_base() >= lsn {
                    return Some(r.lsn);
                }
            }
        }
        off += ALIGN;
    }
    None
}

pub(crate) fn recover(
    storage: &dyn Storage,
    start_lsn: Lsn,
    mode: RecoveryMode,
    max: u32,
) -> Result<(Recovered, Recovery), WalError> {
    let now = Instant::now();
    let mut names: Vec<(Lsn, String)> = Vec::new();
    for n in storage.list().map_err(WalError::io("list segments"))? {
        match parse_segment_name(&n) {
            Some(l) => names.push((l, n)),
            None if n.ends_with(".seg") => {
                tracing::warn!(file = %n, "ignoring misnamed segment file")
            }
            None => {}
        }
    }
    names.sort();
    let mut recovery = Recovery {
        start_lsn,
        last_lsn: start_lsn - 1,
        records: 0,
        bytes: 0,
        segments: 0,
        cut: None,
        segs: Vec::new(),
        max_record_bytes: max,
    };
    if names.is_empty() {
        return Ok((Recovered { segs: Vec::new(), tail: None, next_lsn: start_lsn }, recovery));
    }
    let i0 = match names.iter().rposition(|(l, _)| *l <= start_lsn) {
        Some(i) => i,
        None => return Err(WalError::MissingRecords { expected: start_lsn, found: names[0].0 }),
    };

    // Older segments (entirely before the start) are kept for followers but not validated.
    let mut kept: Vec<SegEntry> = Vec::new();
    for (l, n) in &names[..i0] {
        let f = storage.open_segment(n).map_err(WalError::io("open segment"))?;
        let reader = f.reader().map_err(WalError::io("map segment"))?;
        kept.push(SegEntry { first_lsn: *l, name: n.clone(), bytes: reader.len(), reader, created_at: now });
    }

    let mut opened: Vec<Opened> = Vec::new();
    for (l, n) in &names[i0..] {
        let file = storage.open_segment(n).map_err(WalError::io("open segment"))?;
        let reader = file.reader().map_err(WalError::io("map segment"))?;
        opened.push(Opened { first_lsn: *l, name: n.clone(), file, reader });
    }
    recovery.segments = opened.len();

    let mut buf = Vec::new();
    let mut expected = opened[0].first_lsn;
    let mut end_off = SEGMENT_HEADER_LEN;
    // (segment index, offset, reason) of the first damage.
    let mut damage: Option<(usize, usize, String)> = None;
    'segs: for i in 0..opened.len() {
        let bytes = segment_view(&*opened[i].reader, &mut buf)?;
        match decode_header(bytes) {
            Ok(f) if f == opened[i].first_lsn && f == expected => {}
            Ok(f) => {
                let r =
                    format!("segment header first_lsn {f}, expected {expected} (name says {})", opened[i].first_lsn);
                damage = Some((i, 0, r));
                break;
            }
            Err(r) => {
                damage = Some((i, 0, r));
                break;
            }
        }
        let mut off = SEGMENT_HEADER_LEN;
        loop {
            match record::decode(bytes.get(off..).unwrap_or(&[]), expected, max) {
                Ok(r) => {
                    if r.lsn >= start_lsn {
                        recovery.records += 1;
                        recovery.bytes += r.payload.len() as u64;
                    }
                    expected += 1;
                    off += r.total_len;
                }
                Err(RecordError::ZeroHeader) if is_zero(&bytes[off.min(bytes.len())..]) => {
                    end_off = off;
                    if i + 1 == opened.len() {
                        break 'segs;
                    }
                    // Normal roll: the next segment must start at `expected`
                    // (its header is checked at the top of the loop).
                    continue 'segs;
                }
                Err(e) => {
                    damage = Some((i, off, e.to_string()));
                    break 'segs;
                }
            }
        }
    }
    let last_lsn = expected - 1;

    let mut tail_idx = opened.len() - 1;
    if let Some((i, off, reason)) = damage {
        // Classify: is any later record one that was written after `expected` was durable?
        let mut acked = None;
        for (j, seg) in opened.iter().enumerate().skip(i) {
            let bytes = segment_view(&*seg.reader, &mut buf)?;
            let from = if j == i { off } else { 0 };
            if let Some(l) = acked_after(bytes, from, expected, max) {
                acked = Some(l);
                break;
            }
        }
        let seg_name = opened[i].name.clone();
        if let Some(later) = acked {
            if mode == RecoveryMode::Strict {
                tracing::error!(segment = %seg_name, offset = off, lsn = expected, later_lsn = later, %reason,
                    "wal: mid-log corruption; refusing to start (operator flag TruncateMidLog cuts here)");
                return Err(WalError::MidLogCorruption { segment: seg_name, offset: off as u64, lsn: expected });
            }
        }
        // Cut: zero the rest of segment i (or drop it if its header is bad), delete later segments.
        let mut cut_bytes = 0u64;
        let mut removed = Vec::new();
        let drop_from = if off < SEGMENT_HEADER_LEN { i } else { i + 1 };
        if off >= SEGMENT_HEADER_LEN {
            let end = {
                let bytes = segment_view(&*opened[i].reader, &mut buf)?;
                off + nonzero_end(bytes.get(off..).unwrap_or(&[]))
            };
            if end > off {
                cut_bytes += (end - off) as u64;
                zero_range(&mut *opened[i].file, off as u64, end as u64)?;
            }
            end_off = off;
        }
        for seg in &opened[drop_from..] {
            let bytes = segment_view(&*seg.reader, &mut buf)?;
            cut_bytes += nonzero_end(bytes) as u64;
            storage.remove(&seg.name).map_err(WalError::io("remove segment"))?;
            removed.push(seg.name.clone());
        }
        if !removed.is_empty() {
            storage.sync_dir().map_err(WalError::io("sync dir"))?;
        }
        let cut = CutInfo {
            segment: seg_name,
            offset: off as u64,
            bytes: cut_bytes,
            last_good_lsn: last_lsn,
            reason,
            removed_segments: removed,
            mid_log: acked.is_some(),
        };
        if cut.mid_log {
            tracing::error!(segment = %cut.segment, offset = cut.offset, bytes = cut.bytes, last_good_lsn = cut.last_good_lsn,
                reason = %cut.reason, removed = ?cut.removed_segments,
                "wal: TRUNCATING MID-LOG CORRUPTION by operator request: acknowledged records after lsn {} are lost", last_lsn);
        } else {
            tracing::warn!(segment = %cut.segment, offset = cut.offset, bytes = cut.bytes, last_good_lsn = cut.last_good_lsn,
                reason = %cut.reason, removed = ?cut.removed_segments, "wal: cut torn tail");
        }
        recovery.cut = Some(cut);
        opened.truncate(drop_from);
        if opened.is_empty() {
            recovery.last_lsn = last_lsn.max(start_lsn - 1);
            recovery.segs = kept.clone();
            return Ok((Recovered { segs: kept, tail: None, next_lsn: last_lsn + 1 }, recovery));
        }
        tail_idx = opened.len() - 1;
    }

    recovery.last_lsn = last_lsn.max(start_lsn - 1);
    let mut tail = None;
    for (j, o) in opened.into_iter().enumerate() {
        let bytes = o.reader.len();
        kept.push(SegEntry { first_lsn: o.first_lsn, name: o.name, reader: o.reader, bytes, created_at: now });
        if j == tail_idx {
            tail = Some((o.file, end_off as u64));
        }
    }
    recovery.segs = kept.clone();
    Ok((Recovered { segs: kept, tail, next_lsn: last_lsn + 1 }, recovery))
}

fn zero_range(file: &mut dyn SegmentFile, from: u64, to: u64) -> Result<(), WalError> {
    let zeros = vec![0u8; ((to - from) as usize).min(1 << 20)];
    let mut off = from;
    while off < to {
        let n = ((to - off) as usize).min(zeros.len());
        file.write_at(off, &zeros[..n]).map_err(WalError::io("zero torn tail"))?;
        off += n as u64;
    }
    file.sync_range(from, to - from).map_err(WalError::io("sync torn tail"))
}
