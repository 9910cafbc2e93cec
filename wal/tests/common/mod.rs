#![allow(dead_code)]
use oms_wal::{Lsn, Recovery, WalError};

/// Deterministic payload for an LSN (length varies 0..=40 to exercise padding).
pub fn payload(lsn: Lsn) -> Vec<u8> {
    let n = (lsn * 7 % 41) as usize;
    (0..n).map(|i| (lsn as u8).wrapping_mul(31).wrapping_add(i as u8)).collect()
}

pub fn rtype(lsn: Lsn) -> u8 {
    (lsn % 250) as u8 + 1
}

/// All records of a recovery as (lsn, type, payload).
pub fn collect(rec: &Recovery, from: Lsn) -> Vec<(Lsn, u8, Vec<u8>)> {
    let mut v = Vec::new();
    rec.for_each_record::<WalError, _>(from, |l, t, p| {
        v.push((l, t, p.to_vec()));
        Ok(())
    })
    .unwrap();
    v
}

/// Asserts that `got` is exactly records `from..from+len` of the deterministic history.
pub fn assert_history(got: &[(Lsn, u8, Vec<u8>)], from: Lsn) {
    for (i, (l, t, p)) in got.iter().enumerate() {
        assert_eq!(*l, from + i as u64, "lsn order");
        assert_eq!(*t, rtype(*l), "type of {l}");
        assert_eq!(*p, payload(*l), "payload of {l}");
    }
}
