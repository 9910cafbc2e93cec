//! Real-process crash test: a child process appends with Durability::Always and
//! reports each durable LSN on stdout; the parent SIGKILLs it after a seeded
//! random delay and checks every reported LSN survived intact.
mod common;
use common::*;
use oms_wal::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "OMS_WAL_SIGKILL_CHILD_DIR";

fn cfg(dir: &str, mode: WriteMode) -> WalConfig {
    let mut c = WalConfig::new(dir);
    c.segment_bytes = 256 << 10;
    c.write_mode = mode;
    c.durability = Durability::Always;
    c
}

/// Child side: the append loop. Runs only when the env var is set.
fn child_loop(dir: &str) -> ! {
    let mode = if std::env::var("OMS_WAL_SIGKILL_MODE").as_deref() == Ok("mmap") {
        WriteMode::Mmap
    } else {
        WriteMode::Pwrite
    };
    let (mut wal, rec) = Wal::open(cfg(dir, mode)).expect("child open");
    let mut out = std::io::stdout().lock();
    let mut next = rec.last_lsn + 1;
    loop {
        for _ in 0..(next % 5 + 1) {
            let l = wal.append(rtype(next), &payload(next)).expect("append");
            assert_eq!(l, next);
            next += 1;
        }
        let d = wal.commit().expect("commit");
        writeln!(out, "{d}").unwrap();
        out.flush().unwrap();
    }
}

// Checks (when the env var is set) nothing: it is the child's entry point.
#[test]
fn sigkill_child_entry() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_loop(&dir);
    }
}

// Checks that every LSN a SIGKILLed child reported durable is present and
// intact after reopening, for several seeds and both write modes, including
// appending again after a previous kill.
#[test]
fn sigkill_reported_lsns_survive() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (seed, mode) in [(1u64, "pwrite"), (2, "mmap"), (3, "pwrite"), (4, "mmap"), (5, "pwrite")] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_str().unwrap().to_string();
        let mut rng = oms_wal::sim::SimRng::new(seed);
        let mut reported = 0u64;
        for round in 0..2 {
            let mut child = Command::new(&exe)
                .args(["--exact", "sigkill_child_entry", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &dir)
                .env("OMS_WAL_SIGKILL_MODE", mode)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(l) = line.trim().parse::<u64>() {
                        let _ = tx.send(l);
                    }
                }
            });
            // Wait for the first durable report, then a seeded random delay.
            let first = rx.recv_timeout(Duration::from_secs(20)).expect("child reported nothing");
            reported = reported.max(first);
            let delay = Duration::from_millis(20 + rng.below(200));
            let start = Instant::now();
            while start.elapsed() < delay {
                if let Ok(l) = rx.recv_timeout(Duration::from_millis(1)) {
                    reported = reported.max(l);
                }
            }
            // SAFETY: kill(2) with SIGKILL on our own, not yet reaped child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            t.join().unwrap();
            while let Ok(l) = rx.try_recv() {
                reported = reported.max(l);
            }
            let (_w, rec) = Wal::open(cfg(&dir, WriteMode::Pwrite)).unwrap();
            assert!(
                rec.last_lsn >= reported,
                "seed {seed} round {round}: reported {reported} durable, recovered {}",
                rec.last_lsn
            );
            let got = collect(&rec, 1);
            assert_eq!(got.len() as u64, rec.last_lsn);
            assert_history(&got, 1);
            assert!(reported > 0);
        }
    }
}
