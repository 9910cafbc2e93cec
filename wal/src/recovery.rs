//! Crash recovery: validate the log from the start LSN, cut a torn tail, refuse
//! damage to records that were (or may have been) acknowledged, and hand the
//! surviving records to the caller for replay.
//!
//! What counts as a torn tail and what as damage is decided by [`crate::scan`]
//! (shared with `oms wal verify`). Recovery acts on the verdict: a torn tail is
//! cut (the rest of the newest segment zeroed and flushed, logged with
//! `tracing::warn!`); anything else is refused with
//! [`WalError::MidLogCorruption`] or [`WalError::LostRecords`] unless the
//! operator passes [`RecoveryMode::TruncateMidLog`], which cuts the log at the
//! damage (or grows a cut segment back to its length) and logs an error.

use crate::reader::{segment_view, SegEntry};
use crate::record;
use crate::scan::{scan, Finding, SegView};
use crate::segment::{parse_segment_name, CREATING_SUFFIX, SEGMENT_HEADER_LEN};
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
        let mut continues_at: Option<Lsn> = None;
        for seg in &self.segs[idx..] {
            if let Some(expected) = continues_at.filter(|l| *l != seg.first_lsn) {
                return Err(WalError::MissingRecords { expected, found: seg.first_lsn }.into());
            }
            let bytes = segment_view(&*seg.reader, &mut buf)?;
            let mut off = SEGMENT_HEADER_LEN;
            let mut expected = seg.first_lsn;
            while expected <= self.last_lsn {
                // Recovery validated every record up to `last_lsn`; what stops reading inside a
                // segment (zeros, its seal, junk after its last record) only ends that segment.
                let r = match record::decode(bytes.get(off..).unwrap_or(&[]), expected, self.max_record_bytes) {
                    Ok(r) if !r.is_seal() => r,
                    Ok(_) | Err(_) => break,
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
            continues_at = Some(expected);
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

/// Index one past the last non-zero byte of `b` (0 if all zero).
fn nonzero_end(b: &[u8]) -> usize {
    b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1)
}

pub(crate) fn recover(
    storage: &dyn Storage,
    start_lsn: Lsn,
    mode: RecoveryMode,
    max: u32,
) -> Result<(Recovered, Recovery), WalError> {
    let now = Instant::now();
    let mut names: Vec<(Lsn, String)> = Vec::new();
    let mut leftovers = Vec::new();
    for n in storage.list().map_err(WalError::io("list segments"))? {
        match parse_segment_name(&n) {
            Some(l) => names.push((l, n)),
            // A segment whose creation a crash interrupted: it never held a record.
            None if n.ends_with(&format!(".seg{CREATING_SUFFIX}")) => leftovers.push(n),
            None if n.ends_with(".seg") => {
                tracing::warn!(file = %n, "ignoring misnamed segment file")
            }
            None => {}
        }
    }
    for n in &leftovers {
        tracing::info!(file = %n, "removing a segment whose creation was interrupted");
        storage.remove(n).map_err(WalError::io("remove interrupted segment"))?;
    }
    if !leftovers.is_empty() {
        storage.sync_dir().map_err(WalError::io("sync dir"))?;
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

    // Segments read through a mapping are scanned in place; others are copied once.
    let mut copies: Vec<Option<Vec<u8>>> = Vec::with_capacity(opened.len());
    for o in &opened {
        if o.reader.as_slice().is_some() {
            copies.push(None);
        } else {
            let mut buf = Vec::new();
            segment_view(&*o.reader, &mut buf)?;
            copies.push(Some(buf));
        }
    }
    let views: Vec<SegView<'_>> = opened
        .iter()
        .zip(&copies)
        .map(|(o, copy)| SegView {
            name: &o.name,
            first_lsn: o.first_lsn,
            bytes: copy.as_deref().unwrap_or_else(|| o.reader.as_slice().unwrap_or(&[])),
        })
        .collect();
    let verdict = scan(&views, max, |r| {
        if r.lsn >= start_lsn {
            recovery.records += 1;
            recovery.bytes += r.payload.len() as u64;
        }
    });
    for note in &verdict.notes {
        tracing::warn!(note = %note, "wal: junk after a segment's last record (nothing is missing)");
    }
    let last_lsn = verdict.last_lsn;
    // The log continues after its last readable record, unless that segment is sealed (then in a
    // new segment named for the next LSN).
    let end = verdict.end;

    if let Some(d) = verdict.damage {
        let seg_name = opened[d.segment].name.clone();
        let refused = d.finding != Finding::TornTail && mode == RecoveryMode::Strict;
        if refused {
            tracing::error!(segment = %seg_name, offset = d.offset, lsn = d.lsn, reason = %d.reason,
                "wal: acknowledged records are damaged or missing; refusing to start (operator override: TruncateMidLog)");
            return Err(match d.finding {
                Finding::Lost => {
                    WalError::LostRecords { segment: seg_name, offset: d.offset as u64, lsn: d.lsn, reason: d.reason }
                }
                _ => WalError::MidLogCorruption { segment: seg_name, offset: d.offset as u64, lsn: d.lsn },
            });
        }
        drop(views);
        let mut cut_bytes = 0u64;
        let mut removed = Vec::new();
        let mut buf = Vec::new();
        // Everything from the damage on goes: the rest of the damaged segment is zeroed (or the
        // segment dropped when its header is what is damaged) and later segments are deleted.
        let drop_from = if d.offset < SEGMENT_HEADER_LEN { d.segment } else { d.segment + 1 };
        if d.offset >= SEGMENT_HEADER_LEN {
            let end = {
                let bytes = segment_view(&*opened[d.segment].reader, &mut buf)?;
                d.offset + nonzero_end(bytes.get(d.offset..).unwrap_or(&[]))
            };
            if end > d.offset {
                cut_bytes += (end - d.offset) as u64;
                zero_range(&mut *opened[d.segment].file, d.offset as u64, end as u64)?;
            }
            if let Some(len) = d.short_of {
                // Grow the cut segment back to its length so it can be written again.
                storage.extend(&seg_name, len).map_err(WalError::io("extend cut segment"))?;
                let file = storage.open_segment(&seg_name).map_err(WalError::io("open segment"))?;
                let reader = file.reader().map_err(WalError::io("map segment"))?;
                opened[d.segment].file = file;
                opened[d.segment].reader = reader;
            }
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
            offset: d.offset as u64,
            bytes: cut_bytes,
            last_good_lsn: last_lsn,
            reason: d.reason,
            removed_segments: removed,
            mid_log: d.finding != Finding::TornTail,
        };
        if cut.mid_log {
            tracing::error!(segment = %cut.segment, offset = cut.offset, bytes = cut.bytes, last_good_lsn = cut.last_good_lsn,
                reason = %cut.reason, removed = ?cut.removed_segments,
                "wal: TRUNCATING DAMAGED LOG by operator request: acknowledged records after lsn {} are lost", last_lsn);
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
    }

    recovery.last_lsn = last_lsn.max(start_lsn - 1);
    // Writing continues in the segment holding the last readable record, after it, unless that
    // segment is sealed: then in a new segment named for the next LSN, as its seal says.
    let tail_idx = end.filter(|e| !e.sealed && e.segment + 1 == opened.len()).map(|e| (e.segment, e.offset));
    debug_assert!(tail_idx.is_none_or(|(_, offset)| offset >= SEGMENT_HEADER_LEN));
    let mut tail = None;
    for (j, o) in opened.into_iter().enumerate() {
        let bytes = o.reader.len();
        kept.push(SegEntry { first_lsn: o.first_lsn, name: o.name, reader: o.reader, bytes, created_at: now });
        if let Some((_, offset)) = tail_idx.filter(|(segment, _)| *segment == j) {
            tail = Some((o.file, offset as u64));
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
