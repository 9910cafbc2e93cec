//! Read-only inspection for the `oms wal dump` / `oms wal verify` CLI.
//! Nothing here modifies the directory.

use crate::record::{self, RecordError};
use crate::scan::{is_zero, scan, Finding, SegView};
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
    /// `torn_tail` (recovery cuts it: the last group commit, never acknowledged or at most the
    /// last acknowledged one), `mid_log_corruption` (damaged records followed by newer ones) or
    /// `lost_records` (a segment cut short or headerless, or the newest segment missing); recovery
    /// refuses the last two.
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
    /// Oddities that lose nothing (junk after a segment's last record when its successor
    /// continues at the next LSN; a segment whose creation a crash interrupted).
    pub notes: Vec<String>,
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
                match decode_header(seg.bytes()).map(|h| h.first_lsn) {
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
            let next_continues = |expected: Lsn| {
                self.segs
                    .get(self.idx + 1)
                    .is_some_and(|n| decode_header(n.bytes()).is_ok_and(|h| h.first_lsn == expected))
            };
            match record::decode(bytes.get(self.off..).unwrap_or(&[]), self.expected, MAX_RECORD) {
                Ok(r) if r.is_seal() => {
                    self.idx += 1;
                    self.off = SEGMENT_HEADER_LEN;
                }
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
                // Junk after the last record of a segment whose successor continues: nothing missing.
                Err(_) if next_continues(self.expected) => {
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

/// Checks the log in `dir` with the rules recovery applies (`scan`), from its oldest segment to
/// its end, and summarizes it. Reports the first damage the way `omsd` would meet it.
pub fn verify(dir: &Path) -> Result<VerifyReport, WalError> {
    let segs = open_segments(dir)?;
    let mut rep = VerifyReport { segments: segs.len(), ..VerifyReport::default() };
    for name in creating_leftovers(dir)? {
        rep.notes.push(format!("{name}: a segment whose creation was interrupted (recovery removes it)"));
    }
    let views: Vec<SegView<'_>> =
        segs.iter().map(|s| SegView { name: &s.name, first_lsn: s.first, bytes: s.bytes() }).collect();
    let verdict = scan(&views, MAX_RECORD, |r| {
        rep.records += 1;
        rep.bytes += r.total_len as u64;
        rep.first_lsn.get_or_insert(r.lsn);
        rep.last_lsn = Some(r.lsn);
    });
    rep.notes.extend(verdict.notes);
    if let Some(d) = verdict.damage {
        let kind = match d.finding {
            Finding::TornTail => "torn_tail",
            Finding::MidLog => "mid_log_corruption",
            Finding::Lost => "lost_records",
        };
        rep.problems.push(Problem {
            segment: segs[d.segment].name.clone(),
            offset: d.offset as u64,
            lsn: d.lsn,
            kind: kind.into(),
            detail: d.reason,
        });
    }
    Ok(rep)
}

fn creating_leftovers(dir: &Path) -> Result<Vec<String>, WalError> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).map_err(WalError::io("list wal dir"))? {
        let e = e.map_err(WalError::io("list wal dir"))?;
        if let Some(name) = e.file_name().to_str().filter(|n| n.ends_with(".seg.tmp")) {
            found.push(name.to_owned());
        }
    }
    found.sort();
    Ok(found)
}

/// Directory of a partition's log (helper for the CLI).
pub fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, WalError> {
    Ok(open_segments(dir)?.into_iter().map(|s| dir.join(s.name)).collect())
}
