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

/// One snapshot file as [`verify`] found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotCheck {
    pub file: String,
    /// The last LSN it covers (from its name).
    pub lsn: Lsn,
    /// Checksums verify and the caller's payload check accepts it: recovery can start from it.
    pub usable: bool,
    /// Why it is not usable.
    pub detail: Option<String>,
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
    /// Every snapshot file, oldest first.
    pub snapshots: Vec<SnapshotCheck>,
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
/// its end, and its snapshots (checksums only), and summarizes it. See [`verify_with`].
pub fn verify(dir: &Path) -> Result<VerifyReport, WalError> {
    verify_with(dir, |_| Ok(()))
}

/// [`verify`] with a check of each snapshot's payload (the engine decodes its image): reports
/// the first log damage the way `omsd` would meet it, every snapshot that is not usable
/// (`bad_snapshot`), and a log that does not reach back to the oldest usable snapshot
/// (`log_gap`: falling back to that snapshot, as recovery does when the newer ones are damaged,
/// would fail). Nothing here modifies the directory.
pub fn verify_with(dir: &Path, check_payload: impl Fn(&[u8]) -> Result<(), String>) -> Result<VerifyReport, WalError> {
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
    rep.snapshots = check_snapshots(&dir.join("snapshots"), &check_payload)?;
    for snap in rep.snapshots.iter().filter(|s| !s.usable) {
        rep.problems.push(Problem {
            segment: snap.file.clone(),
            offset: 0,
            lsn: snap.lsn,
            kind: "bad_snapshot".into(),
            detail: snap.detail.clone().unwrap_or_default(),
        });
    }
    // Recovery may have to start from the oldest usable snapshot (or from LSN 1 without one): the
    // log must hold every record after it.
    let oldest_usable = rep.snapshots.iter().find(|s| s.usable).map_or(0, |s| s.lsn);
    if let Some(first) = segs.first().map(|s| s.first) {
        if first > oldest_usable + 1 {
            let from =
                if oldest_usable == 0 { "no usable snapshot".to_owned() } else { format!("snapshot {oldest_usable}") };
            rep.problems.push(Problem {
                segment: segs[0].name.clone(),
                offset: 0,
                lsn: oldest_usable + 1,
                kind: "log_gap".into(),
                detail: format!(
                    "recovery from {from} needs lsn {} onwards, but the log starts at lsn {first}",
                    oldest_usable + 1
                ),
            });
        }
    }
    Ok(rep)
}

fn check_snapshots(
    dir: &Path,
    check_payload: &dyn Fn(&[u8]) -> Result<(), String>,
) -> Result<Vec<SnapshotCheck>, WalError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(WalError::Io { op: "list snapshots", source: e }),
    };
    for e in entries {
        let e = e.map_err(WalError::io("list snapshots"))?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
        let Some(lsn) = crate::snapshot::parse_snap_name(&name) else { continue };
        let bytes = std::fs::read(e.path()).map_err(WalError::io("read snapshot"))?;
        let verdict = match crate::snapshot::decode_snapshot(&bytes) {
            Ok((l, _)) if l != lsn => Err(format!("header says lsn {l}, the name {lsn}")),
            Ok((_, payload)) => check_payload(payload),
            Err(reason) => Err(reason),
        };
        found.push(SnapshotCheck { file: name, lsn, usable: verdict.is_ok(), detail: verdict.err() });
    }
    found.sort_by_key(|s| s.lsn);
    Ok(found)
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
