//! The storage seam: a directory of segment files behind two small traits, so
//! tests can inject faults ([`crate::sim::SimulatedStorage`]) and production
//! uses real files ([`FsStorage`]) in either [`WriteMode`].

use crate::WriteMode;
use memmap2::{Mmap, MmapMut};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A directory holding one log's segment files.
pub trait Storage: Send + Sync {
    /// Names of all files in the directory (the caller filters `*.seg`).
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates a new file of `len` zero bytes (fails if it exists).
    fn create_segment(&self, name: &str, len: u64) -> io::Result<Box<dyn SegmentFile>>;
    /// Opens an existing file for reading and writing.
    fn open_segment(&self, name: &str) -> io::Result<Box<dyn SegmentFile>>;
    /// Unlinks a file (durable after [`Storage::sync_dir`]).
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames a file, replacing nothing (durable after [`Storage::sync_dir`]).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Grows a file that lost its end back to `len` bytes with zeros, durably (the operator's
    /// override repairing a cut segment; never used otherwise).
    fn extend(&self, name: &str, len: u64) -> io::Result<()>;
    /// Makes creations and removals durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Which flush mechanism is in use (for logs and benches).
    fn flusher_name(&self) -> &'static str {
        "simulated"
    }
}

/// One open segment file, owned by the single writer.
pub trait SegmentFile: Send {
    fn write_at(&mut self, off: u64, buf: &[u8]) -> io::Result<()>;
    /// Makes `[off, off+len)` durable. Only this call makes data durable.
    fn sync_range(&mut self, off: u64, len: u64) -> io::Result<()>;
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A read handle that other threads may use concurrently with the writer.
    fn reader(&self) -> io::Result<Arc<dyn SegmentReader>>;
}

/// Read-only, shareable view of a segment.
pub trait SegmentReader: Send + Sync {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The whole segment as a slice when it is memory-mapped (zero-copy path).
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
}

// ---------------------------------------------------------------------------
// Flusher
// ---------------------------------------------------------------------------

/// How `sync_range` reaches the disk in pwrite mode, chosen once at open.
pub enum Flusher {
    /// `IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC` on the dirty range.
    #[cfg(target_os = "linux")]
    IoUring(Box<parking_lot::Mutex<io_uring::IoUring>>),
    /// `fdatasync(2)`.
    Portable,
}

impl Flusher {
    /// Tries io_uring (ring creation plus one real fsync of `probe`), falls back
    /// to `fdatasync`. Set `OMS_WAL_NO_URING=1` to force the fallback.
    pub fn detect(probe: &File) -> Flusher {
        #[cfg(target_os = "linux")]
        {
            if std::env::var_os("OMS_WAL_NO_URING").is_none() {
                match io_uring::IoUring::new(8) {
                    Ok(ring) => {
                        let f = Flusher::IoUring(Box::new(parking_lot::Mutex::new(ring)));
                        match f.datasync(probe, 0, 0) {
                            Ok(()) => {
                                tracing::info!(flusher = "io_uring", "wal flusher: io_uring IORING_OP_FSYNC(DATASYNC)");
                                return f;
                            }
                            Err(e) => {
                                tracing::info!(error = %e, "io_uring fsync probe failed; using fdatasync")
                            }
                        }
                    }
                    Err(e) => tracing::info!(error = %e, "io_uring unavailable; using fdatasync"),
                }
            }
        }
        let _ = probe;
        tracing::info!(flusher = "fdatasync", "wal flusher: portable fdatasync/msync");
        Flusher::Portable
    }

    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Flusher::IoUring(_) => "io_uring",
            Flusher::Portable => "fdatasync",
        }
    }

    /// Data-syncs `[off, off+len)` of `file` (`len == 0`: whole file).
    pub fn datasync(&self, file: &File, off: u64, len: u64) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Flusher::IoUring(ring) => {
                use io_uring::{opcode, types};
                let (off, len) = if len > u32::MAX as u64 { (0, 0) } else { (off, len as u32) };
                let mut ring = ring.lock();
                let sqe = opcode::Fsync::new(types::Fd(file.as_raw_fd()))
                    .offset(off)
                    .len(len)
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(0x5157);
                // SAFETY: the fd outlives the operation: we wait for its completion below.
                unsafe { ring.submission().push(&sqe).map_err(|_| io::Error::other("io_uring sq full"))? };
                loop {
                    match ring.submit_and_wait(1) {
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                let cqe = ring.completion().next().ok_or_else(|| io::Error::other("io_uring: no completion"))?;
                if cqe.result() < 0 {
                    return Err(io::Error::from_raw_os_error(-cqe.result()));
                }
                Ok(())
            }
            Flusher::Portable => {
                let _ = (off, len);
                fdatasync(file)
            }
        }
    }
}

fn fdatasync(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on an owned, open fd.
        #[cfg(target_os = "linux")]
        let rc = unsafe { libc::fdatasync(file.as_raw_fd()) };
        #[cfg(not(target_os = "linux"))]
        let rc = unsafe { libc::fsync(file.as_raw_fd()) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

// ---------------------------------------------------------------------------
// Real files
// ---------------------------------------------------------------------------

/// Real files in a directory, written with pwrite or through a shared mapping.
pub struct FsStorage {
    dir: PathBuf,
    mode: WriteMode,
    flusher: Arc<Flusher>,
}

impl FsStorage {
    pub fn open(dir: &Path, mode: WriteMode) -> io::Result<FsStorage> {
        std::fs::create_dir_all(dir)?;
        let d = File::open(dir)?;
        let flusher = Arc::new(Flusher::detect(&d));
        Ok(FsStorage { dir: dir.to_path_buf(), mode, flusher })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wrap(&self, file: File) -> io::Result<Box<dyn SegmentFile>> {
        let len = file.metadata()?.len();
        Ok(match self.mode {
            WriteMode::Pwrite => Box::new(PwriteSegment { file, len, flusher: self.flusher.clone() }),
            WriteMode::Mmap => {
                // SAFETY: the file is private to this log; nobody truncates it while mapped.
                let map = unsafe { MmapMut::map_mut(&file)? };
                Box::new(MmapSegment { file, map })
            }
        })
    }
}

/// Pre-allocates `len` bytes: fallocate, then explicit zeros so later
/// fdatasyncs need no extent conversion (metadata) work.
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscall on an owned fd.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        if rc != 0 && rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    file.set_len(len)?;
    let zeros = vec![0u8; (1 << 20).min(len as usize).max(1)];
    let mut off = 0u64;
    while off < len {
        let n = zeros.len().min((len - off) as usize);
        file.write_all_at(&zeros[..n], off)?;
        off += n as u64;
    }
    Ok(())
}

impl Storage for FsStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                v.push(n.to_string());
            }
        }
        Ok(v)
    }

    fn create_segment(&self, name: &str, len: u64) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(self.dir.join(name))?;
        preallocate(&file, len)?;
        self.wrap(file)
    }

    fn open_segment(&self, name: &str) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().read(true).write(true).open(self.dir.join(name))?;
        self.wrap(file)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let to = self.dir.join(to);
        if to.exists() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        std::fs::rename(self.dir.join(from), to)
    }

    fn extend(&self, name: &str, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
        if file.metadata()?.len() < len {
            file.set_len(len)?;
        }
        file.sync_all()
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn flusher_name(&self) -> &'static str {
        match self.mode {
            WriteMode::Mmap => "msync",
            WriteMode::Pwrite => self.flusher.name(),
        }
    }
}

struct PwriteSegment {
    file: File,
    len: u64,
    flusher: Arc<Flusher>,
}

impl SegmentFile for PwriteSegment {
    fn write_at(&mut self, off: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, off)
    }
    fn sync_range(&mut self, off: u64, len: u64) -> io::Result<()> {
        self.flusher.datasync(&self.file, off, len)
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, off)
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn reader(&self) -> io::Result<Arc<dyn SegmentReader>> {
        MapReader::open(&self.file)
    }
}

struct MmapSegment {
    file: File,
    map: MmapMut,
}

impl SegmentFile for MmapSegment {
    fn write_at(&mut self, off: u64, buf: &[u8]) -> io::Result<()> {
        let off = off as usize;
        let end = off.checked_add(buf.len()).filter(|&e| e <= self.map.len());
        let end = end.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write past segment end"))?;
        self.map[off..end].copy_from_slice(buf);
        Ok(())
    }
    fn sync_range(&mut self, off: u64, len: u64) -> io::Result<()> {
        // msync(MS_SYNC) of exactly the dirty pages.
        self.map.flush_range(off as usize, len as usize)
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let off = off as usize;
        let src = self.map.get(off..off + buf.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.map.len() as u64
    }
    fn reader(&self) -> io::Result<Arc<dyn SegmentReader>> {
        MapReader::open(&self.file)
    }
}

/// Read-only shared mapping of a segment (readers, recovery).
pub(crate) struct MapReader {
    map: Option<Mmap>,
}

impl MapReader {
    pub(crate) fn open(file: &File) -> io::Result<Arc<dyn SegmentReader>> {
        let len = file.metadata()?.len();
        // SAFETY: segment files are never truncated while the log is open.
        let map = if len == 0 { None } else { Some(unsafe { Mmap::map(file)? }) };
        Ok(Arc::new(MapReader { map }))
    }
}

impl SegmentReader for MapReader {
    fn len(&self) -> u64 {
        self.map.as_ref().map_or(0, |m| m.len() as u64)
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let s = self.as_slice().unwrap_or(&[]);
        let off = off as usize;
        let src = s.get(off..off + buf.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.map.as_deref().unwrap_or(&[]))
    }
}
