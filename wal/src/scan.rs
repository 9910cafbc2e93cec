//! What a log may look like after a crash, and what is damage: one scanner shared by recovery
//! ([`crate::Wal::open`]) and [`crate::inspect::verify`], so `omsd` and `oms wal verify` never
//! disagree about a directory.
//!
//! ## What a crash can leave (the legitimate shapes)
//! * Segment files appear complete: each is created under a temporary name, pre-allocated, its
//!   header (with its length) flushed, then renamed. A `.seg` file is therefore never short and
//!   never headerless after a crash.
//! * A segment is flushed whole before its successor is created, and sealed (a seal record naming
//!   the successor's first LSN, flushed) once the successor exists. Every segment but the newest
//!   holds only flushed records; the newest may follow an unsealed segment only while it is empty.
//! * Only the newest segment receives unflushed writes: the records of the last group commit,
//!   written but maybe not (or partly, in any sector order) flushed. That is the torn tail.
//!
//! ## What is damage (refused unless the operator overrides)
//! * a segment file shorter than its header says, or without a valid header: `Lost`;
//! * a sealed newest segment (its successor, which existed, is gone): `Lost`;
//! * a segment that does not start where the previous one ended (a gap): `MidLog`;
//! * damaged records in a segment that has a successor: `MidLog` (those records were flushed
//!   before the successor existed), unless the successor starts exactly at the damaged LSN (junk
//!   after the last record, e.g. a torn seal: no record is missing, so it is only noted);
//! * damage in the newest segment followed by a checksum-valid record that was appended after
//!   the damaged LSN was durable (its `ack_gap`): `MidLog`.
//!
//! Anything else in the newest segment is the torn tail: damage that begins after the last record
//! that any surviving record proves durable. It is at most the last group commit.

use crate::record::{self, RecordError, RecordRef, ALIGN, HEADER_LEN};
use crate::segment::{check_segment, decode_header, segment_name, SEGMENT_HEADER_LEN};

use crate::Lsn;

/// One segment file as the scanner sees it.
pub(crate) struct SegView<'a> {
    pub name: &'a str,
    /// The LSN its file name claims.
    pub first_lsn: Lsn,
    pub bytes: &'a [u8],
}

/// How bad the first damage found is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Damage in the newest segment that no surviving record proves durable: cut with a warning.
    TornTail,
    /// Damaged or missing records followed by records that were written after them.
    MidLog,
    /// The end of the log is missing: a segment cut short or headerless, or a sealed newest
    /// segment whose successor is gone.
    Lost,
}

/// The first damage in the log.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    /// Index of the segment (into the scanned views) where the log stops being readable.
    pub segment: usize,
    /// Byte offset in that segment of the first byte not kept.
    pub offset: usize,
    /// First LSN that is not recovered.
    pub lsn: Lsn,
    pub reason: String,
    pub finding: Finding,
    /// The segment's header is valid but its file is shorter than the length the header
    /// records (the override grows it back to this length).
    pub short_of: Option<u64>,
}

/// The result of scanning a run of segments.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Last LSN of the readable prefix (first LSN of the first segment - 1 if none).
    pub last_lsn: Lsn,
    /// Where the readable log ends: the segment (index into the views) holding the last readable
    /// record or seal, the byte offset after it, and whether that segment is sealed (it cannot
    /// take more records). `None` when not even the first segment is readable.
    pub end: Option<End>,
    pub damage: Option<Damage>,
    /// Oddities that lose nothing (junk after the last record of a segment whose successor
    /// continues at the right LSN).
    pub notes: Vec<String>,
}

pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    let whole = chunks.by_ref().all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0);
    whole && chunks.remainder().iter().all(|&x| x == 0)
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

/// The position after the last readable record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct End {
    pub segment: usize,
    pub offset: usize,
    pub sealed: bool,
}

/// Why reading stopped inside one segment.
enum Stop {
    /// Zero space after the last record (the normal end of a segment's records).
    Clean,
    /// A seal after the last record: the successor starts at the LSN expected next.
    Sealed,
    /// Bytes that are not the expected record.
    Damaged(RecordError),
}

/// Scans `segs` (consecutive segment files in LSN order, the first one holding the first LSN
/// wanted) and calls `on_record` for every readable record in order. Never panics on any bytes.
pub(crate) fn scan(segs: &[SegView<'_>], max: u32, mut on_record: impl FnMut(&RecordRef<'_>)) -> Scan {
    let Some(first) = segs.first() else {
        return Scan { last_lsn: 0, end: None, damage: None, notes: Vec::new() };
    };
    let mut expected = first.first_lsn;
    let mut notes = Vec::new();
    // End of the last segment read completely (where a cut before the next segment leaves the log).
    let mut end: Option<End> = None;
    let damage = |segment: usize, offset: usize, lsn: Lsn, reason: String, finding: Finding| Damage {
        segment,
        offset,
        lsn,
        reason,
        finding,
        short_of: None,
    };
    for (i, seg) in segs.iter().enumerate() {
        let newest = i + 1 == segs.len();
        // A file under a segment name was created complete: a bad header or a short file is
        // damage, never a crash.
        let short_of = match check_segment(seg.bytes, seg.first_lsn) {
            Ok(h) if h.first_lsn == expected => None,
            Ok(h) => {
                let reason = format!(
                    "segment {} starts at lsn {}, but the log before it ends at lsn {}: records {}..{} are missing",
                    seg.name,
                    h.first_lsn,
                    expected - 1,
                    expected.min(h.first_lsn),
                    h.first_lsn.max(expected)
                );
                let d = damage(i, 0, expected, reason, Finding::MidLog);
                return Scan { last_lsn: expected - 1, end, damage: Some(d), notes };
            }
            Err(reason) => match decode_header(seg.bytes) {
                // The header is intact but the file lost its end: read what is left, then stop.
                Ok(h) if h.first_lsn == seg.first_lsn && h.first_lsn == expected => h.len,
                _ => {
                    let finding = if newest { Finding::Lost } else { Finding::MidLog };
                    let reason = format!("segment {}: {reason}", seg.name);
                    return Scan {
                        last_lsn: expected - 1,
                        end,
                        damage: Some(damage(i, 0, expected, reason, finding)),
                        notes,
                    };
                }
            },
        };
        let mut off = SEGMENT_HEADER_LEN;
        let stop = loop {
            match record::decode(seg.bytes.get(off..).unwrap_or(&[]), expected, max) {
                Ok(r) if r.is_seal() => {
                    off += r.total_len;
                    break Stop::Sealed;
                }
                Ok(r) => {
                    on_record(&r);
                    expected += 1;
                    off += r.total_len;
                }
                Err(RecordError::ZeroHeader) if is_zero(seg.bytes.get(off..).unwrap_or(&[])) => break Stop::Clean,
                Err(e) => break Stop::Damaged(e),
            }
        };
        let here = |sealed| Some(End { segment: i, offset: off, sealed });
        if let Some(len) = short_of {
            let reason = format!(
                "segment {} is {} bytes but was created as {len}: its end was cut off after lsn {}",
                seg.name,
                seg.bytes.len(),
                expected - 1
            );
            let mut d = damage(i, off, expected, reason, Finding::Lost);
            d.short_of = Some(len);
            return Scan { last_lsn: expected - 1, end: here(false), damage: Some(d), notes };
        }
        match stop {
            Stop::Clean if newest => {
                return Scan { last_lsn: expected - 1, end: here(false), damage: None, notes };
            }
            Stop::Clean => end = here(false),
            Stop::Sealed if newest => {
                let reason = format!(
                    "segment {} is sealed: the log continued in {}, which is missing (records from lsn {expected} are lost)",
                    seg.name,
                    segment_name(expected)
                );
                let d = damage(i, off, expected, reason, Finding::Lost);
                return Scan { last_lsn: expected - 1, end: here(true), damage: Some(d), notes };
            }
            Stop::Sealed => end = here(true),
            Stop::Damaged(e) if newest => {
                let (finding, reason) = match acked_after(seg.bytes, off, expected, max) {
                    Some(later) => (
                        Finding::MidLog,
                        format!("{e}; record {later} after it was written when lsn {expected} was already durable"),
                    ),
                    None => (Finding::TornTail, e.to_string()),
                };
                let d = damage(i, off, expected, reason, finding);
                return Scan { last_lsn: expected - 1, end: here(false), damage: Some(d), notes };
            }
            Stop::Damaged(e) => {
                let next_starts_here = decode_header(segs[i + 1].bytes).is_ok_and(|h| h.first_lsn == expected);
                if !next_starts_here {
                    let reason =
                        format!("{e} in segment {}, which has a successor (its records were flushed)", seg.name);
                    let d = damage(i, off, expected, reason, Finding::MidLog);
                    return Scan { last_lsn: expected - 1, end: here(false), damage: Some(d), notes };
                }
                // Treated as sealed: what follows the records is not a place to write.
                end = here(true);
                notes.push(format!(
                    "segment {} offset {off}: {e} after its last record (lsn {}); its successor continues at lsn {expected}, so nothing is missing",
                    seg.name,
                    expected - 1
                ));
            }
        }
    }
    // Unreachable in practice (the newest segment always returns above); keep a sane answer.
    Scan { last_lsn: expected - 1, end, damage: None, notes }
}
