//! Snapshot files: `snapshots/snap-{lsn:020}.bin`, written atomically
//! (temp file, fsync, rename, directory fsync). The newest two are kept, and the
//! log keeps every record after the older of them ([`SnapshotStore::oldest`]),
//! so a damaged or deleted newest snapshot falls back to the older one plus the
//! log instead of leaving the directory unstartable.
//!
//! ```text
//! byte  0..8   magic        b"OMSSNAP1"
//! byte  8..12  version      u32 LE = 1
//! byte 12..16  reserved     u32 = 0
//! byte 16..24  lsn          u64 LE: the last LSN the snapshot covers
//! byte 24..32  len          u64 LE: payload length
//! byte 32..36  payload_crc  u32 LE: CRC32C of the payload
//! byte 36..40  header_crc   u32 LE: CRC32C of bytes 0..36
//! byte 40..    payload      (opaque, produced by the caller)
//! ```

use crate::{Lsn, WalError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"OMSSNAP1";
const VERSION: u32 = 1;
/// Snapshot header length in bytes.
pub const SNAPSHOT_HEADER_LEN: usize = 40;
const KEEP: usize = 2;

/// A loaded, checksum-verified snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Last LSN the snapshot covers; recovery starts at `lsn + 1`.
    pub lsn: Lsn,
    pub data: Vec<u8>,
    pub path: PathBuf,
}

/// Snapshots of one partition, in `<wal dir>/snapshots/`.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

fn snap_name(lsn: Lsn) -> String {
    format!("snap-{lsn:020}.bin")
}

pub(crate) fn parse_snap_name(n: &str) -> Option<Lsn> {
    let d = n.strip_prefix("snap-")?.strip_suffix(".bin")?;
    if d.len() != 20 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// Encodes header + payload.
pub fn encode_snapshot(lsn: Lsn, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let hc = crc32c::crc32c(&out[..36]);
    out.extend_from_slice(&hc.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Validates a snapshot file's bytes; never panics. Returns (lsn, payload).
pub fn decode_snapshot(b: &[u8]) -> Result<(Lsn, &[u8]), String> {
    if b.len() < SNAPSHOT_HEADER_LEN {
        return Err(format!("file too short ({} bytes)", b.len()));
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    if &b[0..8] != MAGIC {
        return Err("bad magic".into());
    }
    if crc32c::crc32c(&b[..36]) != u32_at(36) {
        return Err("header crc mismatch".into());
    }
    if u32_at(8) != VERSION {
        return Err(format!("unsupported version {}", u32_at(8)));
    }
    let len = u64_at(24);
    let avail = (b.len() - SNAPSHOT_HEADER_LEN) as u64;
    if len != avail {
        return Err(format!("length {len} but {avail} payload bytes present"));
    }
    let data = &b[SNAPSHOT_HEADER_LEN..];
    if crc32c::crc32c(data) != u32_at(32) {
        return Err("payload crc mismatch".into());
    }
    Ok((u64_at(16), data))
}

impl SnapshotStore {
    /// Opens (creating) `wal_dir/snapshots`.
    pub fn open(wal_dir: &Path) -> Result<Self, WalError> {
        let dir = wal_dir.join("snapshots");
        fs::create_dir_all(&dir).map_err(WalError::io("create snapshot dir"))?;
        Ok(SnapshotStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// LSNs of all snapshot files present (valid or not), ascending.
    pub fn list(&self) -> Result<Vec<Lsn>, WalError> {
        let mut v = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(WalError::io("list snapshots"))? {
            let e = e.map_err(WalError::io("list snapshots"))?;
            if let Some(l) = e.file_name().to_str().and_then(parse_snap_name) {
                v.push(l);
            }
        }
        v.sort_unstable();
        Ok(v)
    }

    /// Path of the snapshot for `lsn`.
    pub fn path_for(&self, lsn: Lsn) -> PathBuf {
        self.dir.join(snap_name(lsn))
    }

    /// Writes a snapshot covering records `..=lsn` atomically and durably,
    /// then prunes all but the newest two.
    pub fn write(&self, lsn: Lsn, data: &[u8]) -> Result<PathBuf, WalError> {
        let path = self.path_for(lsn);
        let tmp = self.dir.join(format!("{}.tmp", snap_name(lsn)));
        let bytes = encode_snapshot(lsn, data);
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(WalError::io("create snapshot temp"))?;
            f.write_all(&bytes).map_err(WalError::io("write snapshot"))?;
            f.sync_all().map_err(WalError::io("fsync snapshot"))?;
        }
        fs::rename(&tmp, &path).map_err(WalError::io("rename snapshot"))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(WalError::io("fsync snapshot dir"))?;
        self.prune()?;
        Ok(path)
    }

    /// Loads and verifies the snapshot for `lsn`.
    pub fn load(&self, lsn: Lsn) -> Result<Snapshot, WalError> {
        let path = self.path_for(lsn);
        let b = fs::read(&path).map_err(WalError::io("read snapshot"))?;
        match decode_snapshot(&b) {
            Ok((l, _)) if l != lsn => Err(WalError::BadSnapshot {
                path: path.display().to_string(),
                reason: format!("header lsn {l} != name"),
            }),
            Ok(_) => {
                let mut data = b;
                data.drain(..SNAPSHOT_HEADER_LEN);
                Ok(Snapshot { lsn, data, path })
            }
            Err(reason) => Err(WalError::BadSnapshot { path: path.display().to_string(), reason }),
        }
    }

    /// The oldest snapshot file kept (valid or not): the log must keep every record after it.
    pub fn oldest(&self) -> Result<Option<Lsn>, WalError> {
        Ok(self.list()?.first().copied())
    }

    /// Deletes every snapshot older than `lsn` (a follower that installed its primary's snapshot
    /// at `lsn` and restarted its log after it: the older ones can no longer be completed by it).
    pub fn forget_before(&self, lsn: Lsn) -> Result<usize, WalError> {
        let old: Vec<Lsn> = self.list()?.into_iter().filter(|l| *l < lsn).collect();
        for l in &old {
            fs::remove_file(self.path_for(*l)).map_err(WalError::io("remove old snapshot"))?;
        }
        if !old.is_empty() {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(WalError::io("fsync snapshot dir"))?;
        }
        Ok(old.len())
    }

    /// The newest snapshot whose checksums verify; corrupt ones are skipped
    /// with a warning. `None` if there is no valid snapshot.
    pub fn latest_valid(&self) -> Result<Option<Snapshot>, WalError> {
        for lsn in self.list()?.into_iter().rev() {
            match self.load(lsn) {
                Ok(s) => return Ok(Some(s)),
                Err(e @ WalError::BadSnapshot { .. }) => {
                    tracing::warn!(error = %e, "skipping corrupt snapshot")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn prune(&self) -> Result<(), WalError> {
        let all = self.list()?;
        if all.len() > KEEP {
            for lsn in &all[..all.len() - KEEP] {
                fs::remove_file(self.path_for(*lsn)).map_err(WalError::io("remove old snapshot"))?;
            }
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(WalError::io("fsync snapshot dir"))?;
        }
        // Left-over temp files from a crash mid-write.
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Checks that the newest valid snapshot is chosen, that a corrupted newest one
    // falls back to the previous one, and that only the newest two are kept.
    #[test]
    fn latest_valid_and_fallback() {
        let d = tempfile::tempdir().unwrap();
        let s = SnapshotStore::open(d.path()).unwrap();
        assert_eq!(s.latest_valid().unwrap(), None);
        s.write(10, b"ten").unwrap();
        s.write(20, b"twenty").unwrap();
        s.write(30, b"thirty").unwrap();
        assert_eq!(s.list().unwrap(), vec![20, 30]);
        assert_eq!(s.latest_valid().unwrap().unwrap().data, b"thirty");
        let p = s.path_for(30);
        let mut b = fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 0xff;
        fs::write(&p, &b).unwrap();
        let l = s.latest_valid().unwrap().unwrap();
        assert_eq!((l.lsn, &l.data[..]), (20, &b"twenty"[..]));
        fs::write(s.path_for(20), b"garbage").unwrap();
        assert_eq!(s.latest_valid().unwrap(), None);
    }

    proptest! {
        // Checks that decoding arbitrary bytes (and damaged valid snapshots) never panics
        // and never accepts a snapshot whose bytes changed.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128), flip in any::<usize>()) {
            let _ = decode_snapshot(&bytes);
            let mut good = encode_snapshot(7, &bytes);
            prop_assert_eq!(decode_snapshot(&good).map(|(l, d)| (l, d.to_vec())), Ok((7, bytes.clone())));
            let i = flip % good.len();
            good[i] ^= 0x10;
            prop_assert!(decode_snapshot(&good).is_err());
        }
    }
}
