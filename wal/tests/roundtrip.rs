mod common;
use common::*;
use oms_wal::*;
use std::time::Duration;

fn cfg(dir: &std::path::Path, mode: WriteMode) -> WalConfig {
    let mut c = WalConfig::new(dir);
    c.segment_bytes = 64 << 10;
    c.write_mode = mode;
    c
}

// Checks append/commit/reopen across several segment rollovers in both write
// modes: every record comes back in order with its type and payload, and
// appends continue at the right LSN after reopening.
#[test]
fn round_trip_rollover_both_modes() {
    for mode in [WriteMode::Pwrite, WriteMode::Mmap] {
        let d = tempfile::tempdir().unwrap();
        let n = 5000u64;
        {
            let (mut wal, rec) = Wal::open(cfg(d.path(), mode)).unwrap();
            assert_eq!((rec.records, rec.last_lsn), (0, 0));
            for l in 1..=n {
                assert_eq!(wal.append(rtype(l), &payload(l)).unwrap(), l);
                if l % 13 == 0 {
                    assert_eq!(wal.commit().unwrap(), l);
                }
            }
            assert_eq!(wal.commit().unwrap(), n);
            assert_eq!((wal.durable_lsn(), wal.last_lsn()), (n, n));
        }
        let segs = std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
            .count();
        assert!(segs >= 3, "expected several segments, got {segs}");
        let (mut wal, rec) = Wal::open(cfg(d.path(), mode)).unwrap();
        assert_eq!((rec.records, rec.last_lsn, rec.cut.clone()), (n, n, None), "{mode:?}");
        let got = collect(&rec, 1);
        assert_eq!(got.len() as u64, n);
        assert_history(&got, 1);
        assert_history(&collect(&rec, 4000), 4000);
        assert_eq!(wal.append(rtype(n + 1), &payload(n + 1)).unwrap(), n + 1);
        wal.commit().unwrap();
        drop(wal);
        let (_wal, rec) = Wal::open(cfg(d.path(), mode)).unwrap();
        assert_eq!(rec.last_lsn, n + 1);
        let rep = inspect::verify(d.path()).unwrap();
        assert_eq!((rep.records, rep.first_lsn, rep.last_lsn, rep.problems.len()), (n + 1, Some(1), Some(n + 1), 0));
        let dumped: Vec<_> = inspect::dump(d.path(), n - 1).unwrap().map(|r| r.unwrap().lsn).collect();
        assert_eq!(dumped, vec![n - 1, n, n + 1]);
    }
}

// Checks that recovery starting at a snapshot LSN replays only later records,
// and that a start beyond the log's end continues at the snapshot LSN.
#[test]
fn start_lsn_from_snapshot() {
    let d = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(cfg(d.path(), WriteMode::Pwrite)).unwrap();
        for l in 1..=3000 {
            wal.append(rtype(l), &payload(l)).unwrap();
        }
        wal.commit().unwrap();
    }
    let mut c = cfg(d.path(), WriteMode::Pwrite);
    c.start_lsn = 2501;
    let (wal, rec) = Wal::open(c.clone()).unwrap();
    assert_eq!((rec.records, rec.last_lsn), (500, 3000));
    assert_history(&collect(&rec, 2501), 2501);
    drop(wal);
    c.start_lsn = 4001;
    let (mut wal, rec) = Wal::open(c).unwrap();
    assert_eq!(rec.records, 0);
    assert_eq!(wal.append(1, b"x").unwrap(), 4001);
}

// Checks durability policies: Off never flushes on commit, Interval flushes
// only when due (commit or flush_if_due), Always flushes every commit.
#[test]
fn durability_policies() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path(), WriteMode::Pwrite);
    c.durability = Durability::Off;
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    wal.append(1, b"a").unwrap();
    assert_eq!(wal.commit().unwrap(), 0);
    assert_eq!(wal.sync().unwrap(), 1);
    drop(wal);
    c.durability = Durability::Interval(Duration::from_millis(50));
    let (mut wal, _) = Wal::open(c).unwrap();
    // First commit after open is due only after an interval.
    wal.append(1, b"b").unwrap();
    assert_eq!(wal.commit().unwrap(), 1);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(wal.commit().unwrap(), 2);
    wal.append(1, b"c").unwrap();
    assert_eq!(wal.commit().unwrap(), 2);
    let now = std::time::Instant::now();
    assert_eq!(wal.flush_if_due(now).unwrap(), 2);
    assert_eq!(wal.flush_if_due(now + Duration::from_millis(60)).unwrap(), 3);
}

// Checks that a follower on another thread sees records only after commit, in
// order, waits without blocking the writer, and reports BehindRetention after
// truncate_before removed old segments.
#[test]
fn follower_and_retention() {
    for mode in [WriteMode::Pwrite, WriteMode::Mmap] {
        let d = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(cfg(d.path(), mode)).unwrap();
        let f = wal.reader_handle();
        wal.append(rtype(1), &payload(1)).unwrap();
        let mut seen = Vec::new();
        assert_eq!(f.read_from(1, 100, |l, _, _| seen.push(l)).unwrap(), 1);
        assert!(seen.is_empty(), "uncommitted record visible");
        wal.commit().unwrap();
        assert_eq!(f.read_from(1, 100, |l, _, _| seen.push(l)).unwrap(), 2);
        assert_eq!(seen, vec![1]);

        let n = 6000u64;
        let f2 = f.clone();
        let t = std::thread::spawn(move || {
            let mut next = 2;
            let mut got = Vec::new();
            while next <= n {
                f2.wait_durable_beyond(next - 1, Duration::from_secs(5));
                next = f2
                    .read_from(next, 257, |l, t, p| {
                        assert_eq!((t, p), (rtype(l), &payload(l)[..]));
                        got.push(l)
                    })
                    .unwrap();
            }
            got
        });
        for l in 2..=n {
            wal.append(rtype(l), &payload(l)).unwrap();
            if l % 7 == 0 {
                wal.commit().unwrap();
            }
        }
        wal.commit().unwrap();
        let got = t.join().unwrap();
        assert_eq!(got, (2..=n).collect::<Vec<_>>());

        // Retention: bytes floor keeps segments; then delete up to lsn 3000.
        let r = Retention { min_bytes: u64::MAX, min_age: Duration::ZERO };
        assert_eq!(wal.truncate_before(3000, r).unwrap(), 0);
        let removed = wal.truncate_before(3000, Retention::default()).unwrap();
        assert!(removed >= 1);
        let oldest = f.oldest_lsn();
        assert!(oldest > 1 && oldest <= 3001);
        match f.read_from(1, 10, |_, _, _| {}) {
            Err(WalError::BehindRetention { requested: 1, oldest: o }) => assert_eq!(o, oldest),
            other => panic!("expected BehindRetention, got {other:?}"),
        }
        let mut v = Vec::new();
        f.read_from(oldest, 3, |l, _, _| v.push(l)).unwrap();
        assert_eq!(v, vec![oldest, oldest + 1, oldest + 2]);
        drop(wal);
        // Reopening from the snapshot LSN works after truncation.
        let mut c = cfg(d.path(), mode);
        c.start_lsn = 3001;
        let (_w, rec) = Wal::open(c).unwrap();
        assert_eq!(rec.last_lsn, n);
        assert_history(&collect(&rec, 3001), 3001);
    }
}

// Checks that oversized payloads are rejected without poisoning the log.
#[test]
fn too_large_rejected() {
    let d = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(d.path(), WriteMode::Pwrite)).unwrap();
    assert!(matches!(wal.append(1, &vec![0u8; 70 << 10]), Err(WalError::RecordTooLarge { .. })));
    assert_eq!(wal.append(1, &vec![7u8; 60 << 10]).unwrap(), 1);
    assert_eq!(wal.commit().unwrap(), 1);
}

// Checks `Wal::restart_at` (a replica installing a snapshot): every old segment is gone, a
// reader handle taken before sees the new durable LSN and the records after it, appends continue
// at the new LSN, a reopen with the snapshot's start LSN recovers exactly those records, and a
// restart at or before the next LSN is refused.
#[test]
fn restart_at_discards_the_log_and_continues_after_a_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path(), WriteMode::Pwrite);
    c.segment_bytes = 4096;
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    for l in 1..=300 {
        wal.append(rtype(l), &payload(l)).unwrap();
    }
    wal.commit().unwrap();
    let reader = wal.reader_handle();
    assert!(matches!(wal.restart_at(300), Err(WalError::LsnBackwards { .. })));
    assert!(matches!(wal.restart_at(301), Err(WalError::LsnBackwards { .. })));
    wal.restart_at(1001).unwrap();
    assert_eq!(
        (wal.durable_lsn(), wal.last_lsn(), reader.durable_lsn(), reader.oldest_lsn()),
        (1000, 1000, 1000, 1001)
    );
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    for l in 1001..=1010 {
        assert_eq!(wal.append(rtype(l), &payload(l)).unwrap(), l);
    }
    wal.commit().unwrap();
    let mut seen = Vec::new();
    reader.read_from(1001, 100, |l, _, _| seen.push(l)).unwrap();
    assert_eq!(seen, (1001..=1010).collect::<Vec<_>>());
    drop(wal);
    c.start_lsn = 1001;
    let (wal, rec) = Wal::open(c).unwrap();
    assert_history(&collect(&rec, 1001), 1001);
    assert_eq!((collect(&rec, 1001).len(), wal.last_lsn()), (10, 1010));
}
