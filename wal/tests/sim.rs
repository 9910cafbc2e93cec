//! Fault-injection tests against `SimulatedStorage`.
mod common;
use common::*;
use oms_wal::sim::{CrashMode, SimRng, SimulatedStorage};
use oms_wal::*;
use proptest::prelude::*;
use std::sync::Arc;

fn cfg() -> WalConfig {
    let mut c = WalConfig::new("/sim");
    c.segment_bytes = 4096;
    c
}

fn open(sim: &SimulatedStorage) -> Result<(Wal, Recovery), WalError> {
    Wal::open_with_storage(cfg(), Arc::new(sim.clone()))
}

/// Records of 150..=390 bytes, so a group commit spans several sectors.
fn big_payload(l: Lsn) -> Vec<u8> {
    vec![l as u8; 150 + (l % 7) as usize * 40]
}

/// Runs a fixed workload; returns (records appended, highest LSN whose commit returned Ok).
fn workload_with(sim: &SimulatedStorage, seed: u64, payload: fn(Lsn) -> Vec<u8>) -> (u64, u64) {
    let mut rng = SimRng::new(seed);
    let Ok((mut wal, rec)) = open(sim) else {
        return (0, 0);
    };
    let mut appended = rec.last_lsn;
    let mut acked = rec.last_lsn;
    for _ in 0..40 {
        let batch = 1 + rng.below(6);
        for _ in 0..batch {
            let l = appended + 1;
            match wal.append(rtype(l), &payload(l)) {
                Ok(got) => {
                    assert_eq!(got, l);
                    appended = l;
                }
                Err(_) => return (appended, acked),
            }
        }
        match wal.commit() {
            Ok(d) => acked = d,
            Err(_) => return (appended, acked),
        }
    }
    (appended, acked)
}

fn recover_all(sim: &SimulatedStorage) -> Vec<(Lsn, u8, Vec<u8>)> {
    let (_wal, rec) = open(sim).expect("recovery after crash must succeed");
    collect(&rec, 1)
}

// Checks, for every k, a crash at the k-th storage operation under each crash
// mode: recovery succeeds, returns a prefix of the appended history, and
// contains every record whose commit() returned Ok before the crash.
#[test]
fn crash_at_every_operation() {
    for pf in [payload as fn(Lsn) -> Vec<u8>, big_payload] {
        let probe = SimulatedStorage::new();
        let full = workload_with(&probe, 1, pf);
        let total_ops = probe.ops();
        assert!(full.1 > 100 && total_ops > 50, "{full:?} {total_ops}");
        for k in 0..total_ops {
            for (m, mode) in
                [CrashMode::DropUnflushed, CrashMode::KeepPrefix, CrashMode::RandomSectors].into_iter().enumerate()
            {
                let sim = SimulatedStorage::new();
                sim.fail_at_op(k);
                let (appended, acked) = workload_with(&sim, 1, pf);
                sim.crash(mode, k * 3 + m as u64);
                let got = recover_all(&sim);
                for (l, t, p) in &got {
                    assert_eq!((*t, p), (rtype(*l), &pf(*l)));
                }
                assert!(got.iter().enumerate().all(|(i, r)| r.0 == i as u64 + 1));
                let last = got.last().map_or(0, |r| r.0);
                assert!(last >= acked, "k={k} {mode:?}: acked {acked} but recovered only {last}");
                assert!(last <= appended, "k={k} {mode:?}: recovered {last} > appended {appended}");
            }
        }
    }
}

// Checks that an EIO from a flush poisons the log: commit fails, and every
// later append/commit returns Poisoned; after restart nothing unflushed is acked.
#[test]
fn eio_on_flush_poisons() {
    let sim = SimulatedStorage::new();
    let (mut wal, _) = open(&sim).unwrap();
    wal.append(1, b"one").unwrap();
    assert_eq!(wal.commit().unwrap(), 1);
    wal.append(1, b"two").unwrap();
    sim.fail_next_sync();
    assert!(matches!(wal.commit(), Err(WalError::Io { .. })));
    assert!(wal.is_poisoned());
    assert!(matches!(wal.append(1, b"three"), Err(WalError::Poisoned)));
    assert!(matches!(wal.commit(), Err(WalError::Poisoned)));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned)));
    assert_eq!(wal.durable_lsn(), 1);
    drop(wal);
    sim.crash(CrashMode::DropUnflushed, 0);
    let (_w, rec) = open(&sim).unwrap();
    assert_eq!(rec.last_lsn, 1);
}

// Checks that a crash during recovery (at every operation of the recovery's
// own cut/zero/remove work), followed by another recovery, yields exactly the
// records an uninterrupted recovery yields.
#[test]
fn crash_during_recovery_is_idempotent() {
    let mut tested = 0;
    for seed in 0..150u64 {
        let base = SimulatedStorage::new();
        base.fail_at_op(21 + 2 * (seed * 7 % 60));
        workload_with(&base, seed, big_payload);
        base.crash(CrashMode::RandomSectors, seed);
        let reference = base.deep_clone();
        let expected = recover_all(&reference);
        let probe = base.deep_clone();
        drop(open(&probe).unwrap());
        let rec_ops = probe.ops();
        for k in 0..rec_ops {
            for mode in [CrashMode::DropUnflushed, CrashMode::RandomSectors, CrashMode::KeepPrefix] {
                let s = base.deep_clone();
                s.fail_at_op(k);
                let _ = open(&s);
                s.crash(mode, k);
                assert_eq!(recover_all(&s), expected, "seed {seed} k {k} {mode:?}");
                tested += 1;
            }
        }
    }
    eprintln!("crash-during-recovery cases: {tested}");
    assert!(tested > 100);
}

// Checks that bit rot in the durable middle of the simulated log is refused.
#[test]
fn sim_mid_log_rot_refused() {
    let sim = SimulatedStorage::new();
    let (mut wal, _) = open(&sim).unwrap();
    for l in 1..=30 {
        wal.append(rtype(l), &payload(l)).unwrap();
        wal.commit().unwrap();
    }
    drop(wal);
    let name = "00000000000000000001.seg";
    let b = sim.file_bytes(name).unwrap();
    sim.corrupt(name, 32 + 5, &[b[37] ^ 1]);
    assert!(matches!(open(&sim), Err(WalError::MidLogCorruption { lsn: 1, .. })));
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Commit,
    Crash(u8, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..60).prop_map(Op::Append),
        3 => Just(Op::Commit),
        1 => (0u8..3, any::<u64>()).prop_map(|(m, s)| Op::Crash(m, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]
    // Checks random append/commit/crash sequences against a model: after every
    // crash the recovered log is a prefix of the history that includes all
    // acknowledged records, and appends continue densely after it.
    #[test]
    fn random_ops_against_model(ops in proptest::collection::vec(op(), 1..120)) {
        let sim = SimulatedStorage::new();
        let mut history: Vec<Vec<u8>> = Vec::new();
        let mut acked = 0u64;
        let (mut wal, _) = open(&sim).unwrap();
        for o in ops {
            match o {
                Op::Append(n) => {
                    let p = vec![n; n as usize];
                    let l = wal.append(n, &p).unwrap();
                    prop_assert_eq!(l, history.len() as u64 + 1);
                    history.push(p);
                }
                Op::Commit => acked = wal.commit().unwrap(),
                Op::Crash(m, seed) => {
                    let mode = [CrashMode::DropUnflushed, CrashMode::KeepPrefix, CrashMode::RandomSectors][m as usize];
                    sim.fail_at_op(sim.ops()); // no flush on drop
                    drop(wal);
                    sim.crash(mode, seed);
                    let (w, rec) = open(&sim).unwrap();
                    let got = collect(&rec, 1);
                    prop_assert!(got.len() as u64 >= acked);
                    prop_assert!(got.len() <= history.len());
                    for (l, t, p) in &got {
                        let h = &history[*l as usize - 1];
                        prop_assert_eq!((p, *t), (h, h.len() as u8));
                    }
                    history.truncate(got.len());
                    acked = got.len() as u64;
                    wal = w;
                }
            }
        }
    }
}
