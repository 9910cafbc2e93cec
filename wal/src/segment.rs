//! Segment files: naming and the 32-byte segment header.
//!
//! ```text
//! byte  0..8   magic      b"OMSWAL01"
//! byte  8..12  version    u32 LE = 1
//! byte 12..16  pages      u32 LE: file length in 4 KiB pages (0: not recorded,
//!                         written by versions before the length was recorded)
//! byte 16..24  first_lsn  u64 LE (must match the file name)
//! byte 24..28  crc        u32 LE, CRC32C of bytes 0..24
//! byte 28..32  reserved   u32 = 0
//! ```
//! Records follow at byte 32. Files are named `{first_lsn:020}.seg` and are
//! pre-allocated (zero-filled) to the configured segment size. A segment is
//! created complete under a temporary name (`{first_lsn:020}.seg.tmp`:
//! pre-allocated, header written and flushed) and only then renamed, so a file
//! with a segment name always has a valid header and its full length: a short
//! or headerless `.seg` file is damage, never an interrupted creation.

use crate::Lsn;

pub const SEGMENT_MAGIC: &[u8; 8] = b"OMSWAL01";
pub const SEGMENT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Segment lengths are whole multiples of this (the header records pages).
pub const SEGMENT_PAGE: u64 = 4096;
/// Suffix of a segment being created; never part of the log.
pub const CREATING_SUFFIX: &str = ".tmp";

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub first_lsn: Lsn,
    /// The length the file was created with; `None` in segments written before it was recorded.
    pub len: Option<u64>,
}

/// File name of the segment whose first record is `first_lsn`.
pub fn segment_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}.seg")
}

/// Name of the temporary file a segment is created under before its rename.
pub fn creating_name(first_lsn: Lsn) -> String {
    format!("{}{CREATING_SUFFIX}", segment_name(first_lsn))
}

/// Parses a segment file name; `None` for anything else.
pub fn parse_segment_name(name: &str) -> Option<Lsn> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The header of a segment of `len` bytes (a multiple of [`SEGMENT_PAGE`]).
pub fn encode_header(first_lsn: Lsn, len: u64) -> [u8; SEGMENT_HEADER_LEN] {
    debug_assert!(len.is_multiple_of(SEGMENT_PAGE) && len / SEGMENT_PAGE <= u64::from(u32::MAX));
    let pages = u32::try_from(len / SEGMENT_PAGE).unwrap_or(0);
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&pages.to_le_bytes());
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Validates a segment header (not the file's length: see [`check_segment`]).
pub fn decode_header(buf: &[u8]) -> Result<SegmentHeader, String> {
    if buf.len() < SEGMENT_HEADER_LEN {
        return Err(format!("file too short ({} bytes)", buf.len()));
    }
    if &buf[0..8] != SEGMENT_MAGIC {
        return Err("bad magic".into());
    }
    let crc = u32::from_le_bytes(buf[24..28].try_into().unwrap_or_default());
    if crc32c::crc32c(&buf[0..24]) != crc {
        return Err("header crc mismatch".into());
    }
    let version = u32::from_le_bytes(buf[8..12].try_into().unwrap_or_default());
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let first = u64::from_le_bytes(buf[16..24].try_into().unwrap_or_default());
    if first == 0 {
        return Err("first_lsn is 0".into());
    }
    let pages = u32::from_le_bytes(buf[12..16].try_into().unwrap_or_default());
    let len = (pages != 0).then(|| u64::from(pages) * SEGMENT_PAGE);
    Ok(SegmentHeader { first_lsn: first, len })
}

/// Validates the whole segment file `bytes` named for `name_lsn`: a valid header naming the same
/// first LSN, and the length the header recorded (a shorter file lost its end). Returns the
/// header or why the file is not a complete segment.
pub fn check_segment(bytes: &[u8], name_lsn: Lsn) -> Result<SegmentHeader, String> {
    let header = decode_header(bytes)?;
    if header.first_lsn != name_lsn {
        return Err(format!("header first_lsn {} does not match the file name ({name_lsn})", header.first_lsn));
    }
    if let Some(len) = header.len {
        if bytes.len() as u64 != len {
            return Err(format!("file is {} bytes, created as {len}: its end was cut off", bytes.len()));
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks name formatting/parsing and header validation.
    #[test]
    fn names_and_header() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        let h = encode_header(9, 8192);
        assert_eq!(decode_header(&h), Ok(SegmentHeader { first_lsn: 9, len: Some(8192) }));
        let mut whole = h.to_vec();
        whole.resize(8192, 0);
        assert!(check_segment(&whole, 9).is_ok());
        assert!(check_segment(&whole, 10).unwrap_err().contains("file name"));
        assert!(check_segment(&whole[..4096], 9).unwrap_err().contains("cut off"));
        assert_eq!(creating_name(42), "00000000000000000042.seg.tmp");
        assert_eq!(parse_segment_name(&creating_name(42)), None);
        let mut bad = h;
        bad[17] ^= 1;
        assert!(decode_header(&bad).is_err());
        assert!(decode_header(&[0u8; 32]).is_err());
        assert!(decode_header(&h[..10]).is_err());
    }
}
