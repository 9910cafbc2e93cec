//! What the load generator itself knows was acknowledged: the basis of the audit (the server is
//! checked against these records, not against itself), and the `--ack-log` writer.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::LoadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecState {
    /// Acknowledged, no follow-up acknowledged (live, or expired / balance missed by now).
    Held,
    Confirmed,
    Released,
    /// Confirmed, then shipped (`--ship-after`).
    Shipped,
    BalancePaid,
    /// A confirm / release / payment was refused (for example the hold had expired).
    FollowUpRefused,
}

#[derive(Clone, Copy, Debug)]
pub struct Rec {
    pub id: u64,
    pub state: RecState,
    /// Part of the expiry storm (expected to have expired by the end).
    pub storm: bool,
}

/// One connection's acknowledged reservations and derived counters (merged at the end).
#[derive(Debug, Default)]
pub struct Ledger {
    pub recs: Vec<Rec>,
    /// Net units (accepted - released) per (campaign index, customer).
    pub customer_units: HashMap<(u32, u64), i64>,
    /// Net units per campaign index.
    pub campaign_units: Vec<i64>,
    pub accepted: u64,
    pub confirmed: u64,
    pub released: u64,
    pub paid: u64,
    pub shipped: u64,
    pub follow_up_refused: u64,
    /// Reservations whose answer never came (connection lost): they may or may not exist.
    pub unknown: u64,
    /// Acknowledged, non-storm reservations with no acknowledged confirm, payment or release:
    /// the server may have ended them by itself (expiry, missed balance), which the audit asks
    /// about before counting their units as held.
    pub unsettled: HashMap<u64, Unsettled>,
}

/// What an acknowledged reservation held, kept until a follow-up settles it.
#[derive(Clone, Debug)]
pub struct Unsettled {
    pub lines: Vec<(u32, u32)>,
    pub campaign: Option<u32>,
    pub customer: u64,
    /// When the hold expires at the latest (ms since the epoch, from the acknowledgement).
    pub expires_unix_ms: u64,
    /// A confirm or payment was refused: the server had ended the hold by then.
    pub refused: bool,
}

impl Ledger {
    pub fn new(campaigns: usize) -> Ledger {
        Ledger { campaign_units: vec![0; campaigns], ..Ledger::default() }
    }

    pub fn merge(&mut self, other: Ledger) {
        self.recs.extend(other.recs);
        for (k, v) in other.customer_units {
            *self.customer_units.entry(k).or_insert(0) += v;
        }
        if self.campaign_units.len() < other.campaign_units.len() {
            self.campaign_units.resize(other.campaign_units.len(), 0);
        }
        for (i, v) in other.campaign_units.iter().enumerate() {
            self.campaign_units[i] += v;
        }
        self.accepted += other.accepted;
        self.confirmed += other.confirmed;
        self.released += other.released;
        self.paid += other.paid;
        self.shipped += other.shipped;
        self.follow_up_refused += other.follow_up_refused;
        self.unknown += other.unknown;
        self.unsettled.extend(other.unsettled);
    }
}

/// Per-SKU net units held by acknowledged, non-released, non-storm reservations, and receipts.
#[derive(Debug)]
pub struct SkuCounters {
    pub net: Vec<AtomicI64>,
    pub received: Vec<AtomicI64>,
}

impl SkuCounters {
    pub fn new(n: usize) -> SkuCounters {
        SkuCounters {
            net: (0..n).map(|_| AtomicI64::new(0)).collect(),
            received: (0..n).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    #[inline]
    pub fn add_net(&self, sku: u32, delta: i64) {
        if let Some(c) = self.net.get(sku as usize) {
            c.fetch_add(delta, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn add_received(&self, sku: u32, qty: i64) {
        if let Some(c) = self.received.get(sku as usize) {
            c.fetch_add(qty, Ordering::Relaxed);
        }
    }

    pub fn net(&self, sku: u32) -> i64 {
        self.net.get(sku as usize).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn received(&self, sku: u32) -> i64 {
        self.received.get(sku as usize).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// `--ack-log`: one JSON line per acknowledged reservation, written through a buffer that is
/// flushed every second and at the end.
pub struct AckLog {
    out: Mutex<BufWriter<File>>,
    stop: AtomicBool,
}

impl AckLog {
    pub fn create(path: &Path) -> Result<Arc<AckLog>, LoadError> {
        let file = File::create(path)
            .map_err(|source| LoadError::Io { what: format!("create {}", path.display()), source })?;
        let log =
            Arc::new(AckLog { out: Mutex::new(BufWriter::with_capacity(1 << 20, file)), stop: AtomicBool::new(false) });
        let flusher = Arc::clone(&log);
        std::thread::spawn(move || {
            while !flusher.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let _ = flusher.out.lock().flush();
            }
        });
        Ok(log)
    }

    /// Append a connection's buffered lines.
    pub fn write(&self, chunk: &str) {
        if chunk.is_empty() {
            return;
        }
        if let Err(e) = self.out.lock().write_all(chunk.as_bytes()) {
            tracing::warn!("ack log write failed: {e}");
        }
    }

    pub fn finish(&self) -> Result<(), LoadError> {
        self.stop.store(true, Ordering::Relaxed);
        self.out.lock().flush().map_err(|source| LoadError::Io { what: "flush the ack log".into(), source })
    }
}

/// Format one ack line into `buf`.
pub fn ack_line(buf: &mut String, id: u64, lines: impl Iterator<Item = (u64, u32)>) {
    use std::fmt::Write;
    let t_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let _ = write!(buf, "{{\"id\":{id},\"lines\":[");
    for (i, (sku, qty)) in lines.enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let _ = write!(buf, "[{sku},{qty}]");
    }
    let _ = writeln!(buf, "],\"t_ms\":{t_ms}}}");
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
