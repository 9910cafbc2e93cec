//! oms-wal benchmarks.
//!
//! 1. Criterion: appends/s under `Durability::Always` with group commit
//!    (batch 1, 16, 256) for 64- and 256-byte records, both write modes.
//! 2. A printed "limits" table (skip with `OMS_WAL_LIMITS=0`): raw sequential
//!    write MiB/s (1 MiB pwrite + one fdatasync), fdatasync latency p50/p99 for
//!    4 KiB writes (hdrhistogram), the log's MiB/s with 256 B records in batches
//!    of 256, and recovery records/s over 10,000,000 64-byte records.
//!
//! Run: `cargo bench -p oms-benches --bench wal` (set `OMS_WAL_BENCH_DIR` to
//! choose the disk; default is a temp dir under /work or the system temp).

use criterion::{BenchmarkId, Criterion, Throughput};
use hdrhistogram::Histogram;
use oms_wal::{Durability, Wal, WalConfig, WalError, WriteMode};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn tmpdir() -> tempfile::TempDir {
    match std::env::var("OMS_WAL_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) if Path::new("/work").is_dir() => tempfile::tempdir_in("/work").unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

fn cfg(dir: &Path, mode: WriteMode, durability: Durability) -> WalConfig {
    let mut c = WalConfig::new(dir);
    c.write_mode = mode;
    c.durability = durability;
    c
}

fn bench_appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_append_always");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for mode in [WriteMode::Pwrite, WriteMode::Mmap] {
        for size in [64usize, 256] {
            for batch in [1u64, 16, 256] {
                let d = tmpdir();
                let (mut wal, _) = Wal::open(cfg(d.path(), mode, Durability::Always)).unwrap();
                let payload = vec![0xA5u8; size];
                g.throughput(Throughput::Elements(batch));
                let id = BenchmarkId::new(format!("{mode:?}/{size}B"), format!("batch{batch}"));
                g.bench_function(id, |b| {
                    b.iter(|| {
                        for _ in 0..batch {
                            wal.append(1, &payload).unwrap();
                        }
                        wal.commit().unwrap()
                    })
                });
            }
        }
    }
    g.finish();
}

/// `File::sync_data` is `fdatasync(2)` on Linux.
fn fdatasync(f: &std::fs::File) {
    f.sync_data().unwrap();
}

fn limits() {
    let d = tmpdir();
    println!("\n== oms-wal limits (dir {}) ==", d.path().display());

    // Raw sequential write: 512 MiB in 1 MiB pwrites, one fdatasync at the end.
    let path = d.path().join("raw.bin");
    let f = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    let buf = vec![0x5Au8; 1 << 20];
    let total = 512u64 << 20;
    let t = Instant::now();
    let mut off = 0;
    while off < total {
        f.write_all_at(&buf, off).unwrap();
        off += buf.len() as u64;
    }
    fdatasync(&f);
    let secs = t.elapsed().as_secs_f64();
    println!("raw sequential write (1 MiB pwrite, 512 MiB, + fdatasync): {:.0} MiB/s", 512.0 / secs);

    // fdatasync latency: 4 KiB overwrite in the (now allocated) file + fdatasync.
    let mut h = Histogram::<u64>::new(3).unwrap();
    let small = vec![0x11u8; 4096];
    for i in 0..2000u64 {
        f.write_all_at(&small, (i % 4096) * 4096).unwrap();
        let t = Instant::now();
        fdatasync(&f);
        h.record(t.elapsed().as_micros() as u64).unwrap();
    }
    println!(
        "fdatasync after 4 KiB write (n=2000): p50 {} us, p99 {} us, max {} us",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
    // The same device at the log's cadence: one pwrite of a batch's bytes (256 records of 24 +
    // 256 B) then fdatasync, 400,000 records' worth. The log's figure below is compared with this
    // one: same bytes, same number of syncs, no framing, CRC or bookkeeping.
    let batch = vec![0x3Cu8; 256 * (24 + 256)];
    let t = Instant::now();
    let mut off = 0u64;
    for _ in 0..400_000 / 256 {
        f.write_all_at(&batch, off).unwrap();
        fdatasync(&f);
        off += batch.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let raw_cadence = off as f64 / (1 << 20) as f64 / secs;
    println!("raw at the log's cadence (70 KiB pwrite + fdatasync, x1562): {raw_cadence:.0} MiB/s");
    drop(f);
    let _ = std::fs::remove_file(&path);

    // The log's throughput: 256 B records, batches of 256, Always, both modes.
    for mode in [WriteMode::Pwrite, WriteMode::Mmap] {
        let ld = tmpdir();
        let (mut wal, _) = Wal::open(cfg(ld.path(), mode, Durability::Always)).unwrap();
        let flusher = wal.flusher_name();
        let payload = vec![0x3Cu8; 256];
        let n = 400_000u64;
        let mut h = Histogram::<u64>::new(3).unwrap();
        let t = Instant::now();
        for _ in 0..n / 256 {
            for _ in 0..256 {
                wal.append(1, &payload).unwrap();
            }
            let c = Instant::now();
            wal.commit().unwrap();
            h.record(c.elapsed().as_micros() as u64).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let mib = (n * (24 + 256)) as f64 / (1 << 20) as f64;
        println!(
            "log {mode:?} ({flusher}): 256 B x batch 256, Always: {:.0} records/s, {:.0} MiB/s on disk ({:.0}% of raw at the same cadence), commit p50 {} us p99 {} us",
            n as f64 / secs,
            mib / secs,
            100.0 * mib / secs / raw_cadence,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
    }

    // Recovery speed: 10,000,000 64-byte records.
    let rd = tmpdir();
    let n = 10_000_000u64;
    {
        let (mut wal, _) = Wal::open(cfg(rd.path(), WriteMode::Pwrite, Durability::Off)).unwrap();
        let payload = [7u8; 64];
        for i in 0..n {
            wal.append(1, &payload).unwrap();
            if i % 4096 == 0 {
                wal.commit().unwrap();
            }
        }
        wal.close().unwrap();
    }
    // Drop the page cache for this dir is not possible unprivileged: this is warm-cache recovery.
    let t = Instant::now();
    let (wal, rec) = Wal::open(cfg(rd.path(), WriteMode::Pwrite, Durability::Always)).unwrap();
    let scan = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let mut sum = 0u64;
    let replayed = rec
        .for_each_record::<WalError, _>(1, |_, _, p| {
            sum = sum.wrapping_add(p[0] as u64);
            Ok(())
        })
        .unwrap();
    let replay = t2.elapsed().as_secs_f64();
    assert_eq!((rec.records, replayed), (n, n));
    println!(
        "recovery of {n} x 64 B records ({} segments, warm page cache): open/validate {:.2} s = {:.1} M records/s; replay {:.2} s = {:.1} M records/s; total {:.1} M records/s",
        rec.segments,
        scan,
        n as f64 / scan / 1e6,
        replay,
        n as f64 / replay / 1e6,
        n as f64 / (scan + replay) / 1e6
    );
    drop(wal);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_appends(&mut c);
    c.final_summary();
    if std::env::var("OMS_WAL_LIMITS").as_deref() != Ok("0") {
        limits();
    }
}
