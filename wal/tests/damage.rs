mod common;
use common::*;
use oms_wal::*;
use std::fs;
use std::path::{Path, PathBuf};

const N: u64 = 20;

fn cfg(dir: &Path) -> WalConfig {
    let mut c = WalConfig::new(dir);
    c.segment_bytes = 64 << 10;
    c
}

/// Writes records 1..=n (13-byte payloads, so every record has padding),
/// committing each one; returns the single segment's path.
fn write_log(dir: &Path, n: u64, segment_bytes: u64) -> Vec<PathBuf> {
    let mut c = cfg(dir);
    c.segment_bytes = segment_bytes;
    let (mut wal, _) = Wal::open(c).unwrap();
    for l in 1..=n {
        wal.append(rtype(l), &fixed_payload(l)).unwrap();
        wal.commit().unwrap();
    }
    drop(wal);
    inspect::segment_paths(dir).unwrap()
}

fn fixed_payload(l: u64) -> Vec<u8> {
    let mut p = l.to_le_bytes().to_vec();
    p.extend_from_slice(b"abcde");
    p
}

fn record_pos(dir: &Path, lsn: u64) -> (String, u64, u64) {
    let r = inspect::dump(dir, lsn).unwrap().next().unwrap().unwrap();
    (r.segment, r.offset, 24 + (r.len as u64).div_ceil(8) * 8)
}

fn check_prefix(rec: &Recovery, upto: u64) {
    let got = collect(rec, 1);
    assert_eq!(got.len() as u64, upto);
    for (l, t, p) in got {
        assert_eq!((t, p), (rtype(l), fixed_payload(l)));
    }
}

// Checks tail damage exhaustively on the last committed record: zeroing the rest
// of the file and flipping every byte of the record, one at a time on a fresh
// copy, is cut as a torn tail (records 1..N-1 kept, the log writable and stable
// across a second reopen); shortening the file at any of its bytes is refused as
// lost records (a segment is created at full length, so no crash shortens it),
// and the operator override recovers 1..N-1 and grows the file back.
#[test]
fn tail_damage_every_byte() {
    let src = tempfile::tempdir().unwrap();
    let segs = write_log(src.path(), N, 64 << 10);
    assert_eq!(segs.len(), 1);
    let pristine = fs::read(&segs[0]).unwrap();
    let (seg, off, size) = record_pos(src.path(), N);
    assert_eq!(size, 40);
    let mut cases = 0;
    for i in 0..size as usize {
        for variant in 0..3 {
            let d = tempfile::tempdir().unwrap();
            let path = d.path().join(&seg);
            let mut b = pristine.clone();
            let at = off as usize + i;
            match variant {
                0 => b[at..].iter_mut().for_each(|x| *x = 0),
                1 => b.truncate(at),
                _ => b[at] ^= 0xff,
            }
            fs::write(&path, &b).unwrap();
            if variant == 1 {
                match Wal::open(cfg(d.path())) {
                    Err(WalError::LostRecords { lsn, .. }) => assert_eq!(lsn, N, "case {i}"),
                    other => panic!("case {i}: a shortened segment must be refused, got {:?}", other.map(|x| x.1)),
                }
                let rep = inspect::verify(d.path()).unwrap();
                assert_eq!(rep.problems[0].kind, "lost_records", "case {i}");
                let mut c = cfg(d.path());
                c.recovery_mode = RecoveryMode::TruncateMidLog;
                let (_w, rec) = Wal::open(c).unwrap();
                assert_eq!(rec.last_lsn, N - 1, "case {i}");
                assert!(rec.cut.as_ref().unwrap().mid_log);
                assert_eq!(fs::metadata(&path).unwrap().len(), 64 << 10, "the override grows the segment back");
            }
            let mut c = cfg(d.path());
            if variant == 1 {
                c.recovery_mode = RecoveryMode::TruncateMidLog;
            }
            let (mut wal, rec) = Wal::open(c).unwrap_or_else(|e| panic!("case {i}/{variant}: {e}"));
            if variant == 0 && i >= 37 {
                // Zeroing only the (already zero) padding leaves the record intact.
                assert_eq!((rec.last_lsn, rec.cut.clone()), (N, None));
                continue;
            }
            assert_eq!(rec.last_lsn, N - 1, "case {i}/{variant}");
            check_prefix(&rec, N - 1);
            if variant != 1 {
                assert_eq!(rec.cut.is_some(), !(variant == 0 && i == 0), "case {i}/{variant}: {:?}", rec.cut);
            }
            // The log continues at N and survives another reopen.
            assert_eq!(wal.append(rtype(N), &fixed_payload(N)).unwrap(), N);
            wal.commit().unwrap();
            drop(wal);
            let (_w, rec) = Wal::open(cfg(d.path())).unwrap();
            assert_eq!((rec.last_lsn, rec.cut.clone()), (N, None));
            check_prefix(&rec, N);
            cases += 1;
        }
    }
    assert_eq!(cases, 117);
}

// Checks the adversarial review's scenario (issue 12): a log of many acknowledged records over
// 16 KiB segments whose newest segment file is cut to 0, 32, 40 bytes or inside its records. Each
// is refused by recovery as lost records (naming the segment) and reported by verify as
// `lost_records`, never accepted as the end of the log; the operator override opens it, keeping
// every record before the cut, and the next open is clean.
#[test]
fn cut_newest_segment_is_refused() {
    for cut_to in [0u64, 32, 40, 2 << 10] {
        let d = tempfile::tempdir().unwrap();
        let segs = write_log(d.path(), 900, 16 << 10);
        assert!(segs.len() >= 3, "{segs:?}");
        let newest = segs.last().unwrap().clone();
        let name = newest.file_name().unwrap().to_string_lossy().into_owned();
        let first_in_newest: u64 = name.trim_end_matches(".seg").parse().unwrap();
        let survivors = if cut_to < 32 { first_in_newest - 1 } else { 0 };
        fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(cut_to).unwrap();
        let mut c = cfg(d.path());
        c.segment_bytes = 16 << 10;
        match Wal::open(c.clone()) {
            Err(WalError::LostRecords { segment, .. }) => assert_eq!(segment, name, "cut to {cut_to}"),
            other => panic!("cut to {cut_to}: expected LostRecords, got {:?}", other.map(|x| x.1)),
        }
        let rep = inspect::verify(d.path()).unwrap();
        assert_eq!(rep.problems.len(), 1, "cut to {cut_to}: {rep:?}");
        assert_eq!(rep.problems[0].kind, "lost_records", "cut to {cut_to}");
        assert!(rep.problems[0].detail.contains(&name), "{}", rep.problems[0].detail);
        let mut o = c.clone();
        o.recovery_mode = RecoveryMode::TruncateMidLog;
        let (mut wal, rec) = Wal::open(o).unwrap();
        assert!(rec.cut.as_ref().unwrap().mid_log);
        if survivors > 0 {
            assert_eq!(rec.last_lsn, survivors, "cut to {cut_to}");
        } else {
            assert!(rec.last_lsn >= first_in_newest - 1 && rec.last_lsn < 900, "cut to {cut_to}: {}", rec.last_lsn);
        }
        check_prefix(&rec, rec.last_lsn);
        let next = rec.last_lsn + 1;
        assert_eq!(wal.append(rtype(next), &fixed_payload(next)).unwrap(), next);
        wal.commit().unwrap();
        drop(wal);
        let (_w, rec) = Wal::open(c).unwrap();
        assert_eq!((rec.last_lsn, rec.cut.clone()), (next, None), "cut to {cut_to}");
        assert!(inspect::verify(d.path()).unwrap().problems.is_empty());
    }
}

// Checks that deleting the newest segment file is refused: its predecessor was sealed once the
// newest existed, so a log ending in a sealed segment has lost records. Verify reports it; the
// override continues the log in a new segment after the sealed one.
#[test]
fn deleted_newest_segment_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let segs = write_log(d.path(), 900, 16 << 10);
    let newest = segs.last().unwrap();
    let first_in_newest: u64 = newest.file_name().unwrap().to_string_lossy().trim_end_matches(".seg").parse().unwrap();
    fs::remove_file(newest).unwrap();
    let mut c = cfg(d.path());
    c.segment_bytes = 16 << 10;
    match Wal::open(c.clone()) {
        Err(WalError::LostRecords { lsn, reason, .. }) => {
            assert_eq!(lsn, first_in_newest);
            assert!(reason.contains("sealed"), "{reason}");
        }
        other => panic!("expected LostRecords, got {:?}", other.map(|x| x.1)),
    }
    assert_eq!(inspect::verify(d.path()).unwrap().problems[0].kind, "lost_records");
    let mut o = c.clone();
    o.recovery_mode = RecoveryMode::TruncateMidLog;
    let (mut wal, rec) = Wal::open(o).unwrap();
    assert_eq!(rec.last_lsn, first_in_newest - 1);
    assert_eq!(wal.append(rtype(first_in_newest), &fixed_payload(first_in_newest)).unwrap(), first_in_newest);
    wal.commit().unwrap();
    drop(wal);
    let (_w, rec) = Wal::open(c).unwrap();
    assert_eq!((rec.last_lsn, rec.cut.clone()), (first_in_newest, None));
    check_prefix(&rec, first_in_newest);
}

// Checks the shapes an interrupted rotation can leave, which are not damage: a segment whose
// creation was interrupted (`.seg.tmp`) is removed; an unsealed segment followed by an empty
// newest one (crash before the seal) opens clean; junk where the seal goes (a torn seal) is
// only noted, since the successor starts at the next LSN.
#[test]
fn interrupted_rotation_is_not_damage() {
    let d = tempfile::tempdir().unwrap();
    let segs = write_log(d.path(), 900, 16 << 10);
    let older = &segs[segs.len() - 2];
    let (seg, off, size) = {
        let name = older.file_name().unwrap().to_string_lossy().into_owned();
        let last =
            inspect::dump(d.path(), 1).unwrap().filter_map(Result::ok).filter(|r| r.segment == name).last().unwrap();
        (name, last.offset, 24 + (last.len as u64).div_ceil(8) * 8)
    };
    fs::write(d.path().join("00000000000000099999.seg.tmp"), b"half made").unwrap();
    let mut b = fs::read(d.path().join(&seg)).unwrap();
    let seal_at = (off + size) as usize;
    b[seal_at + 3] ^= 0x5a;
    fs::write(d.path().join(&seg), &b).unwrap();
    let rep = inspect::verify(d.path()).unwrap();
    assert!(rep.problems.is_empty(), "{rep:?}");
    assert_eq!(rep.notes.len(), 2, "{rep:?}");
    let mut c = cfg(d.path());
    c.segment_bytes = 16 << 10;
    let (_w, rec) = Wal::open(c.clone()).unwrap();
    assert_eq!((rec.last_lsn, rec.cut.clone()), (900, None));
    check_prefix(&rec, 900);
    assert!(!d.path().join("00000000000000099999.seg.tmp").exists());
    assert_eq!(inspect::dump(d.path(), 1).unwrap().filter(Result::is_ok).count(), 900);
}

// Checks that damage to record k of N, with later records still valid and
// written after k was durable, is refused as MidLogCorruption, reported by
// verify, and that RecoveryMode::TruncateMidLog recovers the prefix 1..k-1.
#[test]
fn middle_damage_refused_unless_operator_flag() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), N, 64 << 10);
    let (seg, off, _) = record_pos(d.path(), 8);
    let path = d.path().join(&seg);
    let mut b = fs::read(&path).unwrap();
    b[off as usize + 26] ^= 0x01;
    fs::write(&path, &b).unwrap();
    match Wal::open(cfg(d.path())) {
        Err(WalError::MidLogCorruption { segment, offset, lsn }) => {
            assert_eq!((segment, offset, lsn), (seg.clone(), off, 8))
        }
        other => panic!("expected MidLogCorruption, got {:?}", other.map(|(_, r)| r)),
    }
    let rep = inspect::verify(d.path()).unwrap();
    assert_eq!(rep.problems.len(), 1);
    assert_eq!((rep.problems[0].kind.as_str(), rep.problems[0].lsn), ("mid_log_corruption", 8));
    let mut c = cfg(d.path());
    c.recovery_mode = RecoveryMode::TruncateMidLog;
    let (_w, rec) = Wal::open(c).unwrap();
    assert_eq!(rec.last_lsn, 7);
    assert!(rec.cut.as_ref().unwrap().mid_log);
    check_prefix(&rec, 7);
}

// Checks mid-log corruption across segments: damage in the first segment while
// later segments hold valid records is refused.
#[test]
fn middle_damage_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let segs = write_log(d.path(), 400, 4096);
    assert!(segs.len() >= 3);
    let (seg, off, _) = record_pos(d.path(), 50);
    let path = d.path().join(&seg);
    let mut b = fs::read(&path).unwrap();
    b[off as usize] ^= 0x40;
    fs::write(&path, &b).unwrap();
    let mut c = cfg(d.path());
    c.segment_bytes = 4096;
    assert!(matches!(Wal::open(c.clone()), Err(WalError::MidLogCorruption { lsn: 50, .. })));
    // A whole missing middle segment is refused too.
    let d2 = tempfile::tempdir().unwrap();
    let segs = write_log(d2.path(), 400, 4096);
    fs::remove_file(&segs[1]).unwrap();
    let mut c2 = cfg(d2.path());
    c2.segment_bytes = 4096;
    assert!(matches!(Wal::open(c2), Err(WalError::MidLogCorruption { .. })));
}

// Checks that a misdirected record (valid CRC, copied from another position, so
// it carries the wrong LSN) is rejected: in the middle it is MidLogCorruption,
// at the tail it is cut.
#[test]
fn misdirected_record_rejected() {
    for target in [9, N] {
        let d = tempfile::tempdir().unwrap();
        write_log(d.path(), N, 64 << 10);
        let (seg, from, size) = record_pos(d.path(), 5);
        let (_, to, _) = record_pos(d.path(), target);
        let path = d.path().join(&seg);
        let mut b = fs::read(&path).unwrap();
        let copy = b[from as usize..(from + size) as usize].to_vec();
        b[to as usize..(to + size) as usize].copy_from_slice(&copy);
        fs::write(&path, &b).unwrap();
        let r = Wal::open(cfg(d.path()));
        if target == N {
            let (_w, rec) = r.unwrap();
            assert_eq!(rec.last_lsn, N - 1);
            assert!(rec.cut.unwrap().reason.contains("wrong lsn"));
        } else {
            assert!(matches!(r, Err(WalError::MidLogCorruption { lsn: 9, .. })), "{:?}", r.map(|x| x.1));
        }
    }
}

// Checks that a segment file whose header does not match its name (misplaced
// file) is detected, and that a torn group commit (first record of an
// unacknowledged batch damaged, later ones intact) is treated as tail damage.
#[test]
fn misplaced_segment_and_torn_batch() {
    let d = tempfile::tempdir().unwrap();
    let segs = write_log(d.path(), 3, 64 << 10);
    fs::rename(&segs[0], d.path().join("00000000000000000002.seg")).unwrap();
    let r = Wal::open(cfg(d.path()));
    assert!(matches!(r, Err(WalError::MissingRecords { expected: 1, found: 2 })), "{:?}", r.map(|x| x.1));

    let d = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(cfg(d.path())).unwrap();
        for l in 1..=10 {
            wal.append(rtype(l), &fixed_payload(l)).unwrap();
            wal.commit().unwrap();
        }
        for l in 11..=30 {
            wal.append(rtype(l), &fixed_payload(l)).unwrap();
        }
        wal.commit().unwrap();
    }
    let (seg, off, _) = record_pos(d.path(), 11);
    let path = d.path().join(&seg);
    let mut b = fs::read(&path).unwrap();
    b[off as usize + 30] ^= 0x01;
    fs::write(&path, &b).unwrap();
    let (_w, rec) = Wal::open(cfg(d.path())).unwrap();
    assert_eq!(rec.last_lsn, 10);
    assert!(!rec.cut.unwrap().mid_log);
}

// Checks that verify checks snapshots and the chain from the oldest usable one: a damaged
// snapshot is `bad_snapshot`; a log whose segments before the newest snapshot were deleted no
// longer reaches back to the older snapshot (`log_gap`: falling back to it would fail); with
// the log kept after the older one (what retention now does), verify is clean.
#[test]
fn verify_checks_snapshots_and_the_chain() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.segment_bytes = 4096;
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    for l in 1..=400 {
        wal.append(rtype(l), &fixed_payload(l)).unwrap();
        wal.commit().unwrap();
    }
    let store = SnapshotStore::open(d.path()).unwrap();
    store.write(150, b"older").unwrap();
    store.write(300, b"newer").unwrap();
    assert_eq!(store.oldest().unwrap(), Some(150));
    wal.truncate_before(150, Retention::default()).unwrap();
    let rep = inspect::verify(d.path()).unwrap();
    assert!(rep.problems.is_empty(), "{rep:?}");
    assert_eq!(rep.snapshots.iter().map(|s| (s.lsn, s.usable)).collect::<Vec<_>>(), vec![(150, true), (300, true)]);
    // A payload the caller cannot load makes that snapshot unusable.
    let rep = inspect::verify_with(d.path(), |p| if p == b"newer" { Err("no image".into()) } else { Ok(()) }).unwrap();
    assert_eq!(rep.problems.iter().map(|p| (p.kind.as_str(), p.lsn)).collect::<Vec<_>>(), vec![("bad_snapshot", 300)]);
    // Deleting the log the older snapshot needs (the old retention rule) is a gap.
    wal.truncate_before(300, Retention::default()).unwrap();
    let rep = inspect::verify(d.path()).unwrap();
    assert_eq!(rep.problems.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>(), vec!["log_gap"], "{rep:?}");
    assert_eq!(rep.problems[0].lsn, 151);
    // Damage the newer snapshot too.
    let path = store.path_for(300);
    let mut b = fs::read(&path).unwrap();
    let n = b.len();
    b[n - 2] ^= 1;
    fs::write(&path, &b).unwrap();
    let rep = inspect::verify(d.path()).unwrap();
    let kinds: Vec<&str> = rep.problems.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, vec!["bad_snapshot", "log_gap"], "{rep:?}");
    // A follower that installed a snapshot forgets the older ones it cannot complete.
    assert_eq!(store.forget_before(300).unwrap(), 1);
    assert_eq!(store.list().unwrap(), vec![300]);
}
