//! `SimulatedStorage`: an in-memory [`Storage`] for fault injection.
//!
//! Every file keeps two images: `written` (what a reader sees; the page cache)
//! and `durable` (what survives a crash). `sync_range` copies the dirty 512-byte
//! sectors of the range from one to the other; `sync_dir` makes file creation
//! and removal durable. [`SimulatedStorage::crash`] throws away everything not
//! durable, optionally keeping a seeded random prefix of the unflushed writes or
//! a random subset of the unflushed sectors (torn writes). Faults: fail the
//! k-th mutating operation (the storage then fails everything until `crash`),
//! or fail the next sync with EIO. Only the pwrite path is modelled; the mmap
//! path is covered by the real-file tests.

use crate::storage::{SegmentFile, SegmentReader, Storage};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Arc;

/// Sector size used for dirty tracking and tearing.
pub const SECTOR: u64 = 512;

/// What survives of unflushed data in a [`SimulatedStorage::crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unflushed write is lost.
    DropUnflushed,
    /// A random prefix of the unflushed writes survives (the last one possibly
    /// cut at a sector boundary).
    KeepPrefix,
    /// Each unflushed dirty sector independently survives with probability 1/2.
    RandomSectors,
}

#[derive(Default, Clone)]
struct FileData {
    written: Vec<u8>,
    durable: Vec<u8>,
    dirty: BTreeSet<u64>,
    /// Unflushed writes in issue order (offset, bytes), for `KeepPrefix`.
    log: Vec<(u64, Vec<u8>)>,
}

type FileRef = Arc<Mutex<FileData>>;

#[derive(Default)]
struct State {
    visible: BTreeMap<String, FileRef>,
    durable_dir: BTreeMap<String, FileRef>,
    ops: u64,
    fail_at: Option<u64>,
    dead: bool,
    fail_next_sync: bool,
    syncs: u64,
}

impl State {
    fn op(&mut self) -> io::Result<()> {
        if self.dead {
            return Err(io::Error::other("simulated storage has crashed"));
        }
        let k = self.ops;
        self.ops += 1;
        if self.fail_at == Some(k) {
            self.dead = true;
            return Err(io::Error::other(format!("simulated crash at operation {k}")));
        }
        Ok(())
    }
}

/// In-memory storage with crash and fault injection. Cloning shares the state.
#[derive(Clone, Default)]
pub struct SimulatedStorage {
    st: Arc<Mutex<State>>,
}

/// Small deterministic PRNG (splitmix64) so crashes are reproducible by seed.
#[derive(Debug, Clone)]
pub struct SimRng(u64);
impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

impl SimulatedStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of mutating operations (create, write, sync, remove, sync_dir) so far.
    pub fn ops(&self) -> u64 {
        self.st.lock().ops
    }

    /// Number of successful syncs so far.
    pub fn syncs(&self) -> u64 {
        self.st.lock().syncs
    }

    /// Fails the mutating operation with index `k` (0-based, counted from the
    /// start of this storage's life or the last crash), and every one after it.
    pub fn fail_at_op(&self, k: u64) {
        self.st.lock().fail_at = Some(k);
    }

    /// Makes the next `sync_range` return EIO (and not sync anything).
    pub fn fail_next_sync(&self) {
        self.st.lock().fail_next_sync = true;
    }

    /// Simulates power loss: only durable state survives (see [`CrashMode`]).
    /// Handles opened before the crash keep pointing at the old, dead files.
    pub fn crash(&self, mode: CrashMode, seed: u64) {
        let mut rng = SimRng::new(seed);
        let mut st = self.st.lock();
        let mut next = BTreeMap::new();
        for (name, f) in st.durable_dir.iter() {
            let mut d = f.lock().clone();
            match mode {
                CrashMode::DropUnflushed => {}
                CrashMode::RandomSectors => {
                    for &s in &d.dirty {
                        if rng.below(2) == 1 {
                            let (a, b) = sector_range(s, d.written.len());
                            let src = d.written[a..b].to_vec();
                            d.durable[a..b].copy_from_slice(&src);
                        }
                    }
                }
                CrashMode::KeepPrefix => {
                    let n = rng.below(d.log.len() as u64 + 1) as usize;
                    let log = std::mem::take(&mut d.log);
                    for (i, (off, bytes)) in log.iter().enumerate().take(n + 1) {
                        let keep = if i < n {
                            bytes.len()
                        } else {
                            let sectors = (bytes.len() as u64).div_ceil(SECTOR);
                            ((rng.below(sectors + 1) * SECTOR) as usize).min(bytes.len())
                        };
                        apply_dirty_only(&mut d, *off, &bytes[..keep]);
                    }
                }
            }
            let dur = d.durable.clone();
            let fresh = FileData { written: dur.clone(), durable: dur, dirty: BTreeSet::new(), log: Vec::new() };
            next.insert(name.clone(), Arc::new(Mutex::new(fresh)));
        }
        st.visible = next.clone();
        st.durable_dir = next;
        st.dead = false;
        st.fail_at = None;
        st.fail_next_sync = false;
        st.ops = 0;
    }

    /// An independent copy of the current state (visible and durable images).
    pub fn deep_clone(&self) -> SimulatedStorage {
        let st = self.st.lock();
        let mut copies: Vec<(FileRef, FileRef)> = Vec::new();
        let mut copy = |f: &FileRef| -> FileRef {
            if let Some((_, c)) = copies.iter().find(|(o, _)| Arc::ptr_eq(o, f)) {
                return c.clone();
            }
            let c = Arc::new(Mutex::new(f.lock().clone()));
            copies.push((f.clone(), c.clone()));
            c
        };
        let visible = st.visible.iter().map(|(k, v)| (k.clone(), copy(v))).collect();
        let durable_dir = st.durable_dir.iter().map(|(k, v)| (k.clone(), copy(v))).collect();
        SimulatedStorage { st: Arc::new(Mutex::new(State { visible, durable_dir, ops: st.ops, ..State::default() })) }
    }

    /// The visible bytes of a file (for tests that corrupt data directly).
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.st.lock().visible.get(name).map(|f| f.lock().written.clone())
    }

    /// Cuts a file to `len` bytes in both images (an operator's `truncate -s`).
    pub fn truncate(&self, name: &str, len: u64) -> bool {
        let st = self.st.lock();
        let Some(f) = st.visible.get(name) else {
            return false;
        };
        let mut d = f.lock();
        d.written.truncate(len as usize);
        d.durable.truncate(len as usize);
        d.dirty.retain(|&s| s * SECTOR < len);
        true
    }

    /// Overwrites bytes in both the visible and the durable image (bit rot).
    pub fn corrupt(&self, name: &str, off: u64, bytes: &[u8]) -> bool {
        let st = self.st.lock();
        let Some(f) = st.visible.get(name) else {
            return false;
        };
        let mut d = f.lock();
        let (a, b) = (off as usize, off as usize + bytes.len());
        if b > d.written.len() {
            return false;
        }
        d.written[a..b].copy_from_slice(bytes);
        d.durable[a..b].copy_from_slice(bytes);
        true
    }
}

fn sector_range(s: u64, len: usize) -> (usize, usize) {
    let a = (s * SECTOR) as usize;
    (a.min(len), ((s + 1) * SECTOR).min(len as u64) as usize)
}

/// Copies `bytes` at `off` into the durable image, but only inside sectors that
/// are still dirty (already-synced sectors hold newer durable content).
fn apply_dirty_only(d: &mut FileData, off: u64, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        let pos = off + i as u64;
        if d.dirty.contains(&(pos / SECTOR)) && (pos as usize) < d.durable.len() {
            d.durable[pos as usize] = b;
        }
    }
}

impl Storage for SimulatedStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let st = self.st.lock();
        if st.dead {
            return Err(io::Error::other("simulated storage has crashed"));
        }
        Ok(st.visible.keys().cloned().collect())
    }

    fn create_segment(&self, name: &str, len: u64) -> io::Result<Box<dyn SegmentFile>> {
        let mut st = self.st.lock();
        st.op()?;
        if st.visible.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let zeros = vec![0u8; len as usize];
        let f = Arc::new(Mutex::new(FileData { written: zeros.clone(), durable: zeros, ..FileData::default() }));
        st.visible.insert(name.to_string(), f.clone());
        Ok(Box::new(SimFile { st: self.st.clone(), f }))
    }

    fn open_segment(&self, name: &str) -> io::Result<Box<dyn SegmentFile>> {
        let st = self.st.lock();
        if st.dead {
            return Err(io::Error::other("simulated storage has crashed"));
        }
        let f = st.visible.get(name).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(SimFile { st: self.st.clone(), f }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut st = self.st.lock();
        st.op()?;
        st.visible.remove(name).map(|_| ()).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut st = self.st.lock();
        st.op()?;
        if st.visible.contains_key(to) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let f = st.visible.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.visible.insert(to.to_string(), f);
        Ok(())
    }

    fn extend(&self, name: &str, len: u64) -> io::Result<()> {
        let mut st = self.st.lock();
        st.op()?;
        let f = st.visible.get(name).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut d = f.lock();
        if (d.written.len() as u64) < len {
            d.written.resize(len as usize, 0);
            d.durable.resize(len as usize, 0);
        }
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut st = self.st.lock();
        st.op()?;
        st.durable_dir = st.visible.clone();
        Ok(())
    }
}

struct SimFile {
    st: Arc<Mutex<State>>,
    f: FileRef,
}

impl SegmentFile for SimFile {
    fn write_at(&mut self, off: u64, buf: &[u8]) -> io::Result<()> {
        self.st.lock().op()?;
        let mut d = self.f.lock();
        let end = off as usize + buf.len();
        if end > d.written.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "write past end of simulated file"));
        }
        d.written[off as usize..end].copy_from_slice(buf);
        if !buf.is_empty() {
            for s in off / SECTOR..=(end as u64 - 1) / SECTOR {
                d.dirty.insert(s);
            }
            d.log.push((off, buf.to_vec()));
        }
        Ok(())
    }

    fn sync_range(&mut self, off: u64, len: u64) -> io::Result<()> {
        {
            let mut st = self.st.lock();
            st.op()?;
            if std::mem::take(&mut st.fail_next_sync) {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            st.syncs += 1;
        }
        let mut d = self.f.lock();
        let (first, last) = if len == 0 { (0, u64::MAX) } else { (off / SECTOR, (off + len - 1) / SECTOR) };
        let hit: Vec<u64> = d.dirty.range(first..=last).copied().collect();
        for s in hit {
            let (a, b) = sector_range(s, d.written.len());
            let src = d.written[a..b].to_vec();
            d.durable[a..b].copy_from_slice(&src);
            d.dirty.remove(&s);
        }
        if d.dirty.is_empty() {
            d.log.clear();
        }
        Ok(())
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        SimReader { f: self.f.clone() }.read_at(off, buf)
    }

    fn len(&self) -> u64 {
        self.f.lock().written.len() as u64
    }

    fn reader(&self) -> io::Result<Arc<dyn SegmentReader>> {
        Ok(Arc::new(SimReader { f: self.f.clone() }))
    }
}

struct SimReader {
    f: FileRef,
}

impl SegmentReader for SimReader {
    fn len(&self) -> u64 {
        self.f.lock().written.len() as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let d = self.f.lock();
        let src = d
            .written
            .get(off as usize..off as usize + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
