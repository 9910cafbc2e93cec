//! Framing: `{ len: u32 LE | opcode: u16 LE | flags: u16 LE | request_id: u64 LE | payload }`.

use bytes::{Buf, BufMut, BytesMut};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Bytes of the whole header, length prefix included.
pub const FRAME_HEADER_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub opcode: u16,
    pub flags: u16,
    pub request_id: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge { len: u64, limit: u32 },
    #[error("frame length {len} is shorter than the {min}-byte header")]
    TooShort { len: u32, min: u32 },
}

/// Append one frame to `out`.
pub fn encode_frame(out: &mut BytesMut, opcode: u16, request_id: u64, payload: &[u8]) {
    let len = (FRAME_HEADER_LEN - LENGTH_PREFIX_LEN + payload.len()) as u32;
    out.reserve(LENGTH_PREFIX_LEN + len as usize);
    out.put_u32_le(len);
    out.put_u16_le(opcode);
    out.put_u16_le(0);
    out.put_u64_le(request_id);
    out.put_slice(payload);
}

/// Splits complete frames off a read buffer; never allocates by a peer-chosen length.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    pub max_frame_bytes: u32,
}

impl FrameDecoder {
    /// The next complete frame, or `None` if more bytes are needed. An error means the stream is
    /// unusable (the connection should be answered and closed): framing cannot resynchronise.
    pub fn decode(&self, buffer: &mut BytesMut) -> Result<Option<(FrameHeader, BytesMut)>, FrameError> {
        if buffer.len() < LENGTH_PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
        let min = (FRAME_HEADER_LEN - LENGTH_PREFIX_LEN) as u32;
        if len < min {
            return Err(FrameError::TooShort { len, min });
        }
        let total = u64::from(len) + LENGTH_PREFIX_LEN as u64;
        if total > u64::from(self.max_frame_bytes) {
            return Err(FrameError::TooLarge { len: total, limit: self.max_frame_bytes });
        }
        if buffer.len() < total as usize {
            return Ok(None);
        }
        let mut frame = buffer.split_to(total as usize);
        frame.advance(LENGTH_PREFIX_LEN);
        let opcode = frame.get_u16_le();
        let flags = frame.get_u16_le();
        let request_id = frame.get_u64_le();
        Ok(Some((FrameHeader { opcode, flags, request_id }, frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_partial_input_waits() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, 10, 7, b"abc");
        encode_frame(&mut out, 11, 8, b"");
        let decoder = FrameDecoder { max_frame_bytes: 1024 };
        let mut partial = BytesMut::from(&out[..5]);
        assert_eq!(decoder.decode(&mut partial), Ok(None));
        let (header, payload) = decoder.decode(&mut out).unwrap().unwrap();
        assert_eq!(header, FrameHeader { opcode: 10, flags: 0, request_id: 7 });
        assert_eq!(&payload[..], b"abc");
        let (header, payload) = decoder.decode(&mut out).unwrap().unwrap();
        assert_eq!(header.request_id, 8);
        assert!(payload.is_empty());
        assert_eq!(decoder.decode(&mut out), Ok(None));
    }

    #[test]
    fn hostile_lengths_are_refused_before_buffering() {
        let decoder = FrameDecoder { max_frame_bytes: 1024 };
        let mut huge = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
        assert!(matches!(decoder.decode(&mut huge), Err(FrameError::TooLarge { .. })));
        let mut tiny = BytesMut::from(&3u32.to_le_bytes()[..]);
        assert!(matches!(decoder.decode(&mut tiny), Err(FrameError::TooShort { .. })));
    }
}
