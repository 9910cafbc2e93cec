//! One webhook's disk-backed queue: events are appended (and flushed) to segment files before
//! anyone tries to deliver them, and the position of the last event delivered (or given up) is
//! kept beside them, so a restart or a receiver's outage loses nothing within the retention.
//!
//! Layout of `<data-dir>/webhooks/<webhook>/`:
//! - `<first seq, 20 digits>.jsonl`: one [`Record`] per line, in sequence order; a new segment
//!   starts past [`SEGMENT_BYTES`]. Only the newest segment is ever appended to.
//! - `delivered`: the sequence number of the last record that needs no more delivery, written to
//!   a temporary file and renamed over (atomic). Segments wholly at or below it are deleted.
//!
//! Threading contract: one [`SpoolWriter`] (the spool thread) appends; one [`SpoolReader`] (the
//! delivery task) reads, acknowledges and deletes. A reader never takes a line without its
//! newline, so it cannot see half an append.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A segment is closed once it is larger than this.
pub const SEGMENT_BYTES: u64 = 4 << 20;
/// Longest record line read back; a longer one is corrupt (events are a few hundred bytes).
const LINE_LIMIT: u64 = 1 << 20;

/// One spooled event, as delivered (`data` is the event's JSON, `summary` the robots' sentence).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub kind: String,
    pub partition: u32,
    pub lsn: u64,
    pub at_ms: u64,
    pub data: serde_json::Value,
    pub summary: String,
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.jsonl"))
}

/// The segments' first sequence numbers, ascending.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut starts: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".jsonl")?.parse().ok())
        .collect();
    starts.sort_unstable();
    Ok(starts)
}

fn read_delivered(dir: &Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(dir.join("delivered")) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Records of one segment file that parse, and the length of its valid prefix (a torn last line
/// from a crash mid-append ends it).
fn scan(path: &Path) -> std::io::Result<(Vec<u64>, u64)> {
    let mut reader = BufReader::new(File::open(path)?);
    let (mut seqs, mut valid) = (Vec::new(), 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader).take(LINE_LIMIT).read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => seqs.push(record.seq),
            Err(_) => break,
        }
        valid += n as u64;
    }
    Ok((seqs, valid))
}

/// Open (or create) the spool in `dir`: the writer continues after the last whole record, the
/// reader after the last delivered one.
pub fn open(dir: &Path) -> std::io::Result<(SpoolWriter, SpoolReader)> {
    crate::runtime::create_private_dir(dir)?;
    let delivered = read_delivered(dir)?;
    let mut starts = segments(dir)?;
    // Drop segments wholly delivered (a crash may have left them before their deletion).
    while starts.len() > 1 && starts[1] <= delivered.saturating_add(1) {
        std::fs::remove_file(segment_path(dir, starts[0]))?;
        starts.remove(0);
    }
    let (next_seq, last_start) = match starts.last() {
        Some(&start) => {
            let path = segment_path(dir, start);
            let (seqs, valid) = scan(&path)?;
            // Cut a torn tail so the next append starts on a line boundary.
            let file = OpenOptions::new().write(true).open(&path)?;
            if file.metadata()?.len() > valid {
                tracing::warn!(file = %path.display(), kept_bytes = valid, "webhook spool: cutting a torn last record");
                file.set_len(valid)?;
                file.sync_all()?;
            }
            (seqs.last().map_or(start, |s| s + 1).max(delivered + 1), start)
        }
        None => (delivered + 1, delivered + 1),
    };
    let pending_bytes = Arc::new(AtomicU64::new(0));
    for start in &starts {
        let len = std::fs::metadata(segment_path(dir, *start))?.len();
        pending_bytes.fetch_add(len, Ordering::Relaxed);
    }
    let path = segment_path(dir, last_start);
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let segment_len = file.metadata()?.len();
    let writer = SpoolWriter { dir: dir.to_owned(), file, segment_len, next_seq, pending_bytes: pending_bytes.clone() };
    let first = starts.first().copied().unwrap_or(last_start);
    let reader = SpoolReader {
        dir: dir.to_owned(),
        segment: first,
        offset: 0,
        delivered,
        next_seq: Arc::new(AtomicU64::new(next_seq)),
        pending_bytes,
    };
    writer.publish(&reader);
    Ok((writer, reader))
}

/// The appending side.
pub struct SpoolWriter {
    dir: PathBuf,
    file: File,
    segment_len: u64,
    next_seq: u64,
    pending_bytes: Arc<AtomicU64>,
}

/// A record before it has a sequence number.
pub struct NewRecord {
    pub kind: String,
    pub partition: u32,
    pub lsn: u64,
    pub at_ms: u64,
    pub data: serde_json::Value,
    pub summary: String,
}

impl SpoolWriter {
    fn publish(&self, reader: &SpoolReader) {
        reader.next_seq.store(self.next_seq, Ordering::Release);
    }

    /// Bytes spooled and not yet deleted (the size limit is checked against it).
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes.load(Ordering::Relaxed)
    }

    /// Append records, then flush them to the disk. Returns the sequence number after the last.
    pub fn append(&mut self, records: Vec<NewRecord>) -> std::io::Result<u64> {
        let mut buf = Vec::with_capacity(records.len() * 256);
        for r in records {
            if self.segment_len + buf.len() as u64 > SEGMENT_BYTES {
                self.flush(&mut buf)?;
                // Start the next segment at this record.
                let path = segment_path(&self.dir, self.next_seq);
                self.file = OpenOptions::new().create(true).append(true).open(path)?;
                self.segment_len = 0;
            }
            let record = Record {
                seq: self.next_seq,
                kind: r.kind,
                partition: r.partition,
                lsn: r.lsn,
                at_ms: r.at_ms,
                data: r.data,
                summary: r.summary,
            };
            serde_json::to_writer(&mut buf, &record).map_err(std::io::Error::other)?;
            buf.push(b'\n');
            self.next_seq += 1;
        }
        self.flush(&mut buf)?;
        Ok(self.next_seq)
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.segment_len += buf.len() as u64;
        self.pending_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        buf.clear();
        Ok(())
    }

    /// Tell the reader how far records exist (after a successful append).
    pub fn published_to(&self, reader_handle: &SpoolHandle) {
        reader_handle.0.store(self.next_seq, Ordering::Release);
    }
}

/// What the writer shares with the reader: the next sequence number to be written.
#[derive(Clone)]
pub struct SpoolHandle(Arc<AtomicU64>);

/// The delivering side.
pub struct SpoolReader {
    dir: PathBuf,
    /// First sequence number of the segment being read, and the byte offset in it.
    segment: u64,
    offset: u64,
    delivered: u64,
    next_seq: Arc<AtomicU64>,
    pending_bytes: Arc<AtomicU64>,
}

impl SpoolReader {
    pub fn handle(&self) -> SpoolHandle {
        SpoolHandle(self.next_seq.clone())
    }

    /// Records written and not yet delivered.
    pub fn pending(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire).saturating_sub(self.delivered + 1)
    }

    /// The next record to deliver, if one has been written. Records the reader cannot parse
    /// (corruption) are skipped with a warning.
    pub fn next(&mut self) -> std::io::Result<Option<Record>> {
        loop {
            if self.delivered + 1 >= self.next_seq.load(Ordering::Acquire) {
                return Ok(None);
            }
            let path = segment_path(&self.dir, self.segment);
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // The writer has not created it yet, or it was the empty first segment.
                    if !self.advance_segment()? {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(self.offset))?;
            let mut reader = BufReader::new(file).take(LINE_LIMIT);
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                if n as u64 >= LINE_LIMIT {
                    tracing::warn!(file = %path.display(), offset = self.offset, "webhook spool: skipping an oversized record");
                    self.offset += n as u64;
                    continue;
                }
                // End of this segment's whole lines: move on if a later segment exists.
                if !self.advance_segment()? {
                    return Ok(None);
                }
                continue;
            }
            self.offset += n as u64;
            match serde_json::from_slice::<Record>(&line) {
                Ok(record) if record.seq <= self.delivered => continue,
                Ok(record) => return Ok(Some(record)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), offset = self.offset, error = %e, "webhook spool: skipping a corrupt record");
                    continue;
                }
            }
        }
    }

    /// Move to the next segment if one exists. Only called at the end of the current one's whole
    /// lines; the writer creates a segment only after its last write to the previous one.
    fn advance_segment(&mut self) -> std::io::Result<bool> {
        let starts = segments(&self.dir)?;
        match starts.into_iter().find(|s| *s > self.segment) {
            Some(next) => {
                // Read what the writer may have appended to this one before it moved on.
                let len = std::fs::metadata(segment_path(&self.dir, self.segment)).map(|m| m.len()).unwrap_or(0);
                if len > self.offset {
                    return Ok(true);
                }
                self.segment = next;
                self.offset = 0;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `seq` needs no more delivery (delivered, given up or expired): remember it durably and
    /// delete the segments before the current one.
    pub fn ack(&mut self, seq: u64) -> std::io::Result<()> {
        debug_assert!(seq > self.delivered, "acknowledgements advance");
        self.delivered = seq;
        let tmp = self.dir.join("delivered.tmp");
        std::fs::write(&tmp, format!("{seq}\n"))?;
        std::fs::rename(&tmp, self.dir.join("delivered"))?;
        for start in segments(&self.dir)? {
            if start >= self.segment {
                break;
            }
            let path = segment_path(&self.dir, start);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path)?;
            self.pending_bytes.fetch_sub(len.min(self.pending_bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(kind: &str, lsn: u64) -> NewRecord {
        NewRecord {
            kind: kind.into(),
            partition: 0,
            lsn,
            at_ms: 1,
            data: serde_json::json!({"lsn": lsn}),
            summary: String::new(),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_acknowledged_ones_do_not_come_back() {
        // Appends five records, delivers two, reopens: the reader resumes at the third, the
        // writer continues the numbering; a torn last line from a crash is cut on reopen.
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut writer, mut reader) = open(dir.path()).expect("open");
        let h = reader.handle();
        writer.append((1..=5).map(|l| new("low_stock", l)).collect()).expect("append");
        writer.published_to(&h);
        assert_eq!(reader.pending(), 5);
        for want in 1..=2 {
            let r = reader.next().expect("read").expect("a record");
            assert_eq!((r.seq, r.lsn), (want, want));
            reader.ack(r.seq).expect("ack");
        }
        drop((writer, reader));
        // A crash mid-append leaves half a line.
        let segment = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&segment).expect("segment");
        f.write_all(b"{\"seq\":6,\"ki").expect("torn write");
        drop(f);
        let (mut writer, mut reader) = open(dir.path()).expect("reopen");
        assert_eq!(reader.pending(), 3);
        let r = reader.next().expect("read").expect("a record");
        assert_eq!(r.seq, 3);
        let h = reader.handle();
        writer.append(vec![new("low_stock", 6)]).expect("append");
        writer.published_to(&h);
        let seqs: Vec<u64> = std::iter::from_fn(|| reader.next().expect("read")).map(|r| r.seq).collect();
        assert_eq!(seqs, vec![4, 5, 6], "the torn record is gone, numbering continues");
    }

    #[test]
    fn segments_roll_and_delivered_ones_are_deleted() {
        // Writes past several segment sizes and checks every record is read once, in order, and
        // that acknowledging everything leaves only the newest segment.
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut writer, mut reader) = open(dir.path()).expect("open");
        let h = reader.handle();
        let big = "x".repeat(64 * 1024);
        let total = 3 * SEGMENT_BYTES / (64 * 1024) + 5;
        for lsn in 1..=total {
            let mut r = new("order_created", lsn);
            r.summary = big.clone();
            writer.append(vec![r]).expect("append");
            writer.published_to(&h);
        }
        assert!(segments(dir.path()).expect("list").len() >= 3);
        let mut last = 0;
        while let Some(r) = reader.next().expect("read") {
            assert_eq!(r.seq, last + 1);
            last = r.seq;
            reader.ack(r.seq).expect("ack");
        }
        assert_eq!(last, total);
        assert_eq!(segments(dir.path()).expect("list").len(), 1, "delivered segments deleted");
        assert!(writer.pending_bytes() <= SEGMENT_BYTES + 128 * 1024);
    }
}
