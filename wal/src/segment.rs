//! Segment files: naming and the 32-byte segment header.
//!
//! ```text
//! byte  0..8   magic      b"OMSWAL01"
//! byte  8..12  version    u32 LE = 1
//! byte 12..16  reserved   u32 = 0
//! byte 16..24  first_lsn  u64 LE (must match the file name)
//! byte 24..28  crc        u32 LE, CRC32C of bytes 0..24
//! byte 28..32  reserved   u32 = 0
//! ```
//! Records follow at byte 32. Files are named `{first_lsn:020}.seg` and are
//! pre-allocated (zero-filled) to the configured segment size.

use crate::Lsn;

pub const SEGMENT_MAGIC: &[u8; 8] = b"OMSWAL01";
pub const SEGMENT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = 32;

/// File name of the segment whose first record is `first_lsn`.
pub fn segment_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}.seg")
}

/// Parses a segment file name; `None` for anything else.
pub fn parse_segment_name(name: &str) -> Option<Lsn> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub fn encode_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Validates a segment header and returns its first LSN.
pub fn decode_header(buf: &[u8]) -> Result<Lsn, String> {
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
    Ok(first)
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
        let h = encode_header(9);
        assert_eq!(decode_header(&h), Ok(9));
        let mut bad = h;
        bad[17] ^= 1;
        assert!(decode_header(&bad).is_err());
        assert!(decode_header(&[0u8; 32]).is_err());
        assert!(decode_header(&h[..10]).is_err());
    }
}
