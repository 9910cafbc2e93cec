//! Log followers: read durable records from any thread without blocking the writer.
//!
//! The writer shares an [`Arc<Shared>`] holding the durable LSN (an `AtomicU64`
//! published with `Release` after each flush) and the list of segments (a
//! `parking_lot::RwLock`, write-locked only for the instant of a roll or a
//! retention cut). Followers read through their own read-only handles (a
//! read-only mmap for real files) and never look past the durable LSN, so they
//! only see bytes that are already flushed and will not change.

use crate::record::{self, RecordError};
use crate::segment::SEGMENT_HEADER_LEN;
use crate::storage::SegmentReader;
use crate::{Lsn, WalError};
use parking_lot::{Condvar, Mutex, RwLock};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub(crate) struct SegEntry {
    pub first_lsn: Lsn,
    pub name: String,
    pub reader: Arc<dyn SegmentReader>,
    pub bytes: u64,
    pub created_at: Instant,
}

pub(crate) struct Shared {
    pub durable: AtomicU64,
    pub segments: RwLock<Vec<SegEntry>>,
    pub max_record_bytes: u32,
    notify_mx: Mutex<()>,
    cv: Condvar,
    waiters: AtomicUsize,
}

impl Shared {
    pub fn new(durable: Lsn, segments: Vec<SegEntry>, max_record_bytes: u32) -> Self {
        Shared {
            durable: AtomicU64::new(durable),
            segments: RwLock::new(segments),
            max_record_bytes,
            notify_mx: Mutex::new(()),
            cv: Condvar::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// Publishes a new durable LSN. Called by the writer only after the flush
    /// covering `lsn` returned. Never blocks: waiters use bounded wait slices,
    /// so a missed wake-up (lost `try_lock` race) costs at most one slice.
    pub fn publish(&self, lsn: Lsn) {
        self.durable.store(lsn, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            if let Some(g) = self.notify_mx.try_lock() {
                drop(g);
            }
            self.cv.notify_all();
        }
    }
}

/// Returns the bytes of a segment: the mapping itself, or a copy in `buf`.
pub(crate) fn segment_view<'a>(r: &'a dyn SegmentReader, buf: &'a mut Vec<u8>) -> Result<&'a [u8], WalError> {
    if r.as_slice().is_some() {
        return Ok(r.as_slice().unwrap_or(&[]));
    }
    buf.clear();
    buf.resize(r.len() as usize, 0);
    r.read_at(0, buf).map_err(WalError::io("read segment"))?;
    Ok(&buf[..])
}

#[derive(Clone, Copy)]
struct Cursor {
    seg_first: Lsn,
    next: Lsn,
    off: usize,
}

/// A `Send + Clone` handle for reading the log from other threads.
pub struct LogFollower {
    shared: Arc<Shared>,
    cursor: Mutex<Option<Cursor>>,
}

impl Clone for LogFollower {
    fn clone(&self) -> Self {
        LogFollower { shared: self.shared.clone(), cursor: Mutex::new(*self.cursor.lock()) }
    }
}

impl LogFollower {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LogFollower { shared, cursor: Mutex::new(None) }
    }

    /// Highest LSN that is durable (flushed).
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// First LSN still retained (0 when the log has no segment).
    pub fn oldest_lsn(&self) -> Lsn {
        self.shared.segments.read().first().map_or(0, |s| s.first_lsn)
    }

    /// Calls `f(lsn, record_type, payload)` for up to `max_records` durable
    /// records starting at `lsn`, in order. Returns the next LSN to ask for
    /// (`lsn` itself when nothing new is durable). Payload slices borrow the
    /// segment mapping; nothing is allocated per record.
    pub fn read_from<F>(&self, lsn: Lsn, max_records: usize, mut f: F) -> Result<Lsn, WalError>
    where
        F: FnMut(Lsn, u8, &[u8]),
    {
        let lsn = lsn.max(1);
        let durable = self.shared.durable.load(Ordering::Acquire);
        let segs: Vec<SegEntry> = {
            let g = self.shared.segments.read();
            let Some(oldest) = g.first().map(|s| s.first_lsn) else {
                return Ok(lsn);
            };
            if lsn < oldest {
                return Err(WalError::BehindRetention { requested: lsn, oldest });
            }
            let idx = g.partition_point(|s| s.first_lsn <= lsn).saturating_sub(1);
            g[idx..].to_vec()
        };
        if lsn > durable || max_records == 0 {
            return Ok(lsn);
        }
        let max = self.shared.max_record_bytes;
        let mut cursor = self.cursor.lock();
        let mut next = lsn;
        let mut delivered = 0usize;
        let mut buf = Vec::new();
        for (idx, seg) in segs.iter().enumerate() {
            if next > durable || delivered >= max_records {
                break;
            }
            let bytes = segment_view(&*seg.reader, &mut buf)?;
            let (mut off, mut expected) = match *cursor {
                Some(c) if c.seg_first == seg.first_lsn && c.next <= next => (c.off, c.next),
                _ => (SEGMENT_HEADER_LEN, seg.first_lsn),
            };
            while next <= durable && delivered < max_records {
                let r = match record::decode(bytes.get(off..).unwrap_or(&[]), expected, max) {
                    Ok(r) if !r.is_seal() => r,
                    // End of this segment's records (zeros or its seal); continue in the next one.
                    Ok(_) | Err(RecordError::ZeroHeader) => break,
                    Err(source) if idx + 1 < segs.len() && segs[idx + 1].first_lsn == expected => {
                        // Junk after the last record of a segment whose successor continues at
                        // the next LSN (a torn seal): nothing is missing.
                        let _ = source;
                        break;
                    }
                    Err(source) => {
                        return Err(WalError::Corrupt { segment: seg.name.clone(), offset: off as u64, source })
                    }
                };
                if r.lsn >= next {
                    f(r.lsn, r.record_type, r.payload);
                    delivered += 1;
                    next = r.lsn + 1;
                }
                expected += 1;
                off += r.total_len;
            }
            *cursor = Some(Cursor { seg_first: seg.first_lsn, next: expected, off });
        }
        Ok(next)
    }

    /// Blocks until the durable LSN exceeds `lsn` or `timeout` passes; returns
    /// the durable LSN seen last.
    pub fn wait_durable_beyond(&self, lsn: Lsn, timeout: Duration) -> Lsn {
        let sh = &*self.shared;
        let d = sh.durable.load(Ordering::Acquire);
        if d > lsn {
            return d;
        }
        let deadline = Instant::now() + timeout;
        sh.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = sh.notify_mx.lock();
        let d = loop {
            let d = sh.durable.load(Ordering::SeqCst);
            let now = Instant::now();
            if d > lsn || now >= deadline {
                break d;
            }
            let slice = (deadline - now).min(Duration::from_millis(5));
            sh.cv.wait_for(&mut g, slice);
        };
        drop(g);
        sh.waiters.fetch_sub(1, Ordering::SeqCst);
        d
    }
}
