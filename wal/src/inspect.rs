//! Read-only inspection for the `oms wal dump` / `oms wal verify` CLI.
//! Nothing here modifies the directory.

use crate::record::{self, RecordError};
use crate::recovery::{acked_after, is_zero};
use crate::segment::{decode_header, parse_segment_name, SEGMENT_HEADER_LEN};
use crate::{Lsn, WalError};
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Bound applied to lengths read by the inspect tools.
const MAX_RECORD: u32 = u32::MAX - 64;

/// One record as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordInfo {
    pub lsn: Lsn,
    pub record_type: u8,
    pub len: u32,
    pub crc: u32,
    pub segment: String,
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// A problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub segment: String,
    pub offset: u64,
    /// LSN expected at that position.
    pub lsn: Lsn,
    /// `bad_segment_header`, `torn_tail` (recovery will cut it), or
    /// `mid_log_corruption` (recovery will refuse).
    pub kind: String,
    pub detail: String,
}

/// Summary of a log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub segments: usize,
    pub records: u64,
    /// Bytes of valid records (headers, payloads, padding).
    pub bytes: u64,
    pub first_lsn: Option<Lsn>,
    pub last_lsn: Option<Lsn>,
    pub problems: Vec<Problem>,
}

struct Seg {
    name: String,
    first: Lsn,
    map: Option<Mmap>,
}

fn open_segments(dir: &Path) -> Result<Vec<Seg>, WalError> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(WalError::io("list wal dir"))? {
        let e = e.map_err(WalError::io("list wal dir"))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(first) = parse_segment_name(&name) else {
            continue;
        };
        let f = File::open(e.path()).map_err(WalError::io("open segment"))?;
        let len = f.metadata().map_err(WalError::io("stat segment"))?.len();
        // SAFETY: read-only mapping; the inspect tools run against a log that is not being truncated.
        let map = if len == 0 { None } else { Some(unsafe { Mmap::map(&f) }.map_err(WalError::io("map segment"))?) };
        v.push(Seg { name, first, map });
    }
    v.sort_by_key(|s| s.first);
    Ok(v)
}

impl Seg {
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Iterator returned by [`dump`].
pub struct Dump {
    segs: Vec<Seg>,
    idx: usize,
    off: usize,
    expected: Lsn,
    from: Lsn,
    started: bool,
    done: bool,
}

/// Iterates the records of the log in `dir` with LSN >= `from_lsn`. Stops after
/// the first error (yielded as `Err`), or at the end of the log.
pub fn dump(dir: &Path, from_lsn: Lsn) -> Result<Dump, WalError> {
    let segs = open_segments(dir)?;
    let idx = segs.iter().rposition(|s| s.first <= from_lsn.max(1)).unwrap_or(0);
    Ok(Dump { segs, idx, off: SEGMENT_HEADER_LEN, expected: 0, from: from_lsn, started: false, done: false })
}

impl Iterator for Dump {
    type Item = Result<RecordInfo, WalError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done || self.idx >= self.segs.len() {
                return None;
            }
            let seg = &self.segs[self.idx];
            if self.off == SEGMENT_HEADER_LEN {
                match decode_header(seg.bytes()) {
                    Ok(f) if f == seg.first && (!self.started || f == self.expected) => {
                        self.expected = f;
                        self.started = true;
                    }
                    Ok(f) => {
                        self.done = true;
                        let reason = format!("first_lsn {f}, name {}, expected {}", seg.first, self.expected);
                        return Some(Err(WalError::BadSegmentHeader { segment: seg.name.clone(), reason }));
                    }
                    Err(reason) => {
                        self.done = true;
                        return Some(Err(WalError::BadSegmentHeader { segment: seg.name.clone(), reason }));
                    }
                }
            }
            let bytes = seg.bytes();
            match record::decode(bytes.get(self.off..).unwrap_or(&[]), self.expected, MAX_RECORD) {
                Ok(r) => {
                    let off = self.off;
                    self.off += r.total_len;
                    self.expected += 1;
                    if r.lsn < self.from {
                        continue;
                    }
                    return Some(Ok(RecordInfo {
                        lsn: r.lsn,
                        record_type: r.record_type,
                        len: r.payload.len() as u32,
                        crc: r.crc,
                        segment: seg.name.clone(),
                        offset: off as u64,
                        payload: r.payload.to_vec(),
                    }));
                }
                Err(RecordError::ZeroHeader) if is_zero(bytes.get(self.off..).unwrap_or(&[])) => {
                    self.idx += 1;
                    self.off = SEGMENT_HEADER_LEN;
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(WalError::Corrupt { segment: seg.name.clone(), offset: self.off as u64, source }));
                }
            }
        }
    }
}

/// Checks every segment of the log in `dir` and summarizes it.
pub fn verify(dir: &Path) -> Result<VerifyReport, WalError> {
    let segs = open_segments(dir)?;
    let mut rep = VerifyReport { segments: segs.len(), ..VerifyReport::default() };
    let mut expected: Option<Lsn> = None;
    for (i, seg) in segs.iter().enumerate() {
        let bytes = seg.bytes();
        let problem = |off: usize, lsn: Lsn, detail: String, header: bool| {
            let later = segs[i..]
                .iter()
                .enumerate()
                .find_map(|(j, s)| acked_after(s.bytes(), if j == 0 { off } else { 0 }, lsn, MAX_RECORD));
            let kind = match (header, later) {
                (_, Some(_)) => "mid_log_corruption",
                (true, None) => "bad_segment_header",
                (false, None) => "torn_tail",
            };
            Problem { segment: seg.name.clone(), offset: off as u64, lsn, kind: kind.into(), detail }
        };
        let first = match decode_header(bytes) {
            Ok(f) if f == seg.first && (expected.is_none() || expected == Some(f)) => f,
            Ok(f) => {
                let p = problem(
                    0,
                    expected.unwrap_or(seg.first),
                    format!("header first_lsn {f}, expected {expected:?}"),
                    true,
                );
                rep.problems.push(p);
                expected = None;
                continue;
            }
            Err(reason) => {
                let p = problem(0, expected.unwrap_or(seg.first), reason, true);
                rep.problems.push(p);
                expected = None;
                continue;
            }
        };
        let mut lsn = first;
        let mut off = SEGMENT_HEADER_LEN;
        loop {
            match record::decode(bytes.get(off..).unwrap_or(&[]), lsn, MAX_RECORD) {
                Ok(r) => {
                    rep.records += 1;
                    rep.bytes += r.total_len as u64;
                    rep.first_lsn.get_or_insert(r.lsn);
                    rep.last_lsn = Some(r.lsn);
                    lsn += 1;
                    off += r.total_len;
                }
                Err(RecordError::ZeroHeader) if is_zero(bytes.get(off..).unwrap_or(&[])) => break,
                Err(e) => {
                    let p = problem(off, lsn, e.to_string(), false);
                    rep.problems.push(p);
                    break;
                }
            }
        }
        expected = Some(lsn);
    }
    Ok(rep)
}

/// Directory of a partition's log (helper for the CLI).
pub fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, WalError> {
    Ok(open_segments(dir)?.into_iter().map(|s| dir.join(s.name)).collect())
}
