//! Record framing.
//!
//! Every record is a fixed 24-byte little-endian header, the payload, and zero
//! padding up to the next multiple of 8 bytes:
//!
//! ```text
//! byte  0..4   len          u32  payload length in bytes (padding excluded)
//! byte  4..8   crc          u32  CRC32C over bytes 8..24 of the header, then the payload
//! byte  8..16  lsn          u64  log sequence number (dense, starts at 1; never 0)
//! byte 16      record_type  u8   opaque to the log (the engine's command kind)
//! byte 17      flags        u8   0 for a record; FLAG_SEAL for the seal (below)
//! byte 18..20  reserved     u16  written as 0
//! byte 20..24  ack_gap      u32  lsn - durable_lsn at the time of append (>= 1,
//!                                saturating); lets recovery tell a torn tail
//!                                from corruption of acknowledged data
//! byte 24..    payload      len bytes, then 0..7 zero bytes of padding
//! ```
//!
//! An all-zero header is never valid (LSN 0 does not exist), so pre-allocated
//! zero space decodes as [`RecordError::ZeroHeader`]: the normal end of a log.
//!
//! The **seal** is a header-only record (len 0, flags [`FLAG_SEAL`]) carrying
//! the LSN the *next* segment starts with. It is written after the next
//! segment exists, so it proves that a successor segment was created: a log
//! whose last segment is sealed has lost its newest segment. A seal is not a
//! log record: readers stop at it and continue in the next segment.
//!
//! Decoding never panics, never allocates, and never trusts the length field
//! beyond `max_record_bytes` and the bytes actually present.

use crate::Lsn;

/// `flags` bit of the seal written at the end of a segment once its successor exists.
pub const FLAG_SEAL: u8 = 0x01;

/// Size of the fixed record header in bytes.
pub const HEADER_LEN: usize = 24;
/// Records start and end on this alignment.
pub const ALIGN: usize = 8;

/// Why bytes could not be decoded as the expected record.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes are present than the header/length announce (torn write or cut file).
    #[error("truncated record: need {needed} bytes, {available} present")]
    Truncated { needed: u64, available: u64 },
    /// Checksum mismatch (torn write, bit rot, garbage).
    #[error("bad crc: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    /// Length field exceeds the configured bound.
    #[error("record length {len} exceeds limit {max}")]
    TooLarge { len: u64, max: u64 },
    /// A checksum-valid record sits where another LSN was expected (stale or misdirected).
    #[error("wrong lsn: expected {expected}, found {found}")]
    WrongLsn { expected: Lsn, found: Lsn },
    /// Non-zero padding after a checksum-valid payload (a damaged record).
    #[error("non-zero padding after payload")]
    BadPadding,
    /// All-zero header: never-written, pre-allocated space (normal end of log).
    #[error("zero header (end of written log)")]
    ZeroHeader,
}

/// A decoded record borrowing its payload from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub lsn: Lsn,
    pub record_type: u8,
    pub flags: u8,
    pub crc: u32,
    /// `lsn - durable_lsn` when the record was appended.
    pub ack_gap: u32,
    pub payload: &'a [u8],
    /// Bytes the record occupies including header and padding.
    pub total_len: usize,
}

impl RecordRef<'_> {
    /// The seal ending a segment (its `lsn` is the next segment's first LSN), not a record.
    pub fn is_seal(&self) -> bool {
        self.flags & FLAG_SEAL != 0
    }

    /// The durable LSN the writer had published when this record was appended.
    pub fn durable_base(&self) -> Lsn {
        self.lsn.saturating_sub(self.ack_gap as u64)
    }
}

/// Rounds `n` up to a multiple of [`ALIGN`].
#[inline]
pub const fn align_up(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// Total on-disk size of a record with a `payload_len`-byte payload.
#[inline]
pub const fn encoded_len(payload_len: usize) -> usize {
    HEADER_LEN + align_up(payload_len)
}

#[inline]
fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn rd_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Appends the encoded record (header, payload, padding) to `out`.
///
/// The caller guarantees `payload.len() <= u32::MAX`.
pub fn encode_into(out: &mut Vec<u8>, lsn: Lsn, record_type: u8, ack_gap: u32, payload: &[u8]) {
    debug_assert!(payload.len() <= u32::MAX as usize);
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[8..16].copy_from_slice(&lsn.to_le_bytes());
    h[16] = record_type;
    h[17] = 0;
    h[20..24].copy_from_slice(&ack_gap.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[8..]), payload);
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let pad = align_up(payload.len()) - payload.len();
    out.extend_from_slice(&[0u8; ALIGN][..pad]);
}

/// Appends the seal of a segment whose successor starts at `next_lsn`. Every record before it is
/// durable when it is written (`ack_gap` 1).
pub fn encode_seal(out: &mut Vec<u8>, next_lsn: Lsn) {
    let start = out.len();
    encode_into(out, next_lsn, 0, 1, &[]);
    out[start + 17] = FLAG_SEAL;
    let crc = crc32c::crc32c(&out[start + 8..start + HEADER_LEN]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the record at the start of `buf` whatever its LSN.
///
/// `WrongLsn` is never returned by this function; see [`decode`].
pub fn decode_any(buf: &[u8], max_record_bytes: u32) -> Result<RecordRef<'_>, RecordError> {
    if buf.len() < HEADER_LEN {
        if buf.iter().all(|&b| b == 0) {
            return Err(RecordError::ZeroHeader);
        }
        return Err(RecordError::Truncated { needed: HEADER_LEN as u64, available: buf.len() as u64 });
    }
    let h = &buf[..HEADER_LEN];
    let len = rd_u32(h, 0);
    let stored = rd_u32(h, 4);
    let lsn = rd_u64(h, 8);
    if lsn == 0 && len == 0 && stored == 0 && h[16..].iter().all(|&b| b == 0) {
        return Err(RecordError::ZeroHeader);
    }
    if len > max_record_bytes {
        return Err(RecordError::TooLarge { len: len as u64, max: max_record_bytes as u64 });
    }
    let total = encoded_len(len as usize);
    let plen = len as usize;
    if buf.len() < HEADER_LEN + plen {
        return Err(RecordError::Truncated { needed: total as u64, available: buf.len() as u64 });
    }
    let payload = &buf[HEADER_LEN..HEADER_LEN + plen];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&h[8..]), payload);
    if computed != stored {
        return Err(RecordError::BadCrc { stored, computed });
    }
    // Padding is not covered by the CRC; a record whose padding is cut off by
    // the end of the buffer is still torn.
    if buf.len() < total {
        return Err(RecordError::Truncated { needed: total as u64, available: buf.len() as u64 });
    }
    if buf[HEADER_LEN + plen..total].iter().any(|&b| b != 0) {
        return Err(RecordError::BadPadding);
    }
    Ok(RecordRef {
        lsn,
        record_type: h[16],
        flags: h[17],
        crc: stored,
        ack_gap: rd_u32(h, 20),
        payload,
        total_len: total,
    })
}

/// Decodes the record at the start of `buf`, which must carry `expected` as LSN.
#[inline]
pub fn decode(buf: &[u8], expected: Lsn, max_record_bytes: u32) -> Result<RecordRef<'_>, RecordError> {
    let r = decode_any(buf, max_record_bytes)?;
    if r.lsn != expected {
        return Err(RecordError::WrongLsn { expected, found: r.lsn });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Checks that an encoded record decodes back to the same fields and size.
    #[test]
    fn round_trip() {
        for n in 0..40usize {
            let payload: Vec<u8> = (0..n as u8).collect();
            let mut out = Vec::new();
            encode_into(&mut out, 7, 3, 2, &payload);
            assert_eq!(out.len(), encoded_len(n));
            assert_eq!(out.len() % ALIGN, 0);
            let r = decode(&out, 7, 1 << 20).unwrap();
            assert_eq!(
                (r.lsn, r.record_type, r.payload, r.total_len, r.durable_base()),
                (7, 3, &payload[..], out.len(), 5)
            );
        }
    }

    // Checks that a seal decodes as a header-only record flagged as the seal, carrying the next
    // segment's first LSN, and that an ordinary record is not a seal.
    #[test]
    fn seal_round_trip() {
        let mut out = Vec::new();
        encode_seal(&mut out, 41);
        assert_eq!(out.len(), HEADER_LEN);
        let r = decode(&out, 41, 100).unwrap();
        assert!(r.is_seal());
        assert_eq!((r.payload.len(), r.durable_base()), (0, 40));
        let mut plain = Vec::new();
        encode_into(&mut plain, 41, 0, 1, &[]);
        assert!(!decode(&plain, 41, 100).unwrap().is_seal());
    }

    // Checks the typed errors: zero header, truncation, crc, too large, wrong lsn.
    #[test]
    fn typed_errors() {
        assert_eq!(decode(&[0u8; 64], 1, 100), Err(RecordError::ZeroHeader));
        assert_eq!(decode(&[0u8; 5], 1, 100), Err(RecordError::ZeroHeader));
        let mut out = Vec::new();
        encode_into(&mut out, 1, 1, 1, b"hello world");
        assert!(matches!(decode(&out[..10], 1, 100), Err(RecordError::Truncated { .. })));
        assert!(matches!(decode(&out[..30], 1, 100), Err(RecordError::Truncated { .. })));
        assert!(matches!(decode(&out, 1, 4), Err(RecordError::TooLarge { .. })));
        assert_eq!(decode(&out, 2, 100), Err(RecordError::WrongLsn { expected: 2, found: 1 }));
        let mut bad = out.clone();
        bad[HEADER_LEN + 2] ^= 1;
        assert!(matches!(decode(&bad, 1, 100), Err(RecordError::BadCrc { .. })));
    }

    proptest! {
        // Checks that decoding arbitrary bytes never panics and never reports a
        // record longer than the input.
        #[test]
        fn decode_arbitrary_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), max in 0u32..300) {
            if let Ok(r) = decode_any(&bytes, max) {
                prop_assert!(r.total_len <= bytes.len());
                prop_assert!(r.payload.len() as u32 <= max);
            }
        }
    }
}
