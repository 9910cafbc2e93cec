//! Framing: `{ len: u32 | opcode: u16 | flags: u16 | request_id: u64 | payload }`, little-endian,
//! where `len` counts every byte after itself (docs/PROTOCOL.md section 2).

use crate::codec::{Buffer, EncodeError, Writer};
use crate::error_code::ErrorCode;
use crate::limits::{FRAME_HEADER_LEN, LENGTH_PREFIX_LEN};

/// Response flag: the payload is an error body.
pub const FLAG_ERROR: u16 = 0x0001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub opcode: u16,
    pub flags: u16,
    pub request_id: u64,
}

impl FrameHeader {
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }
}

/// A frame whose header cannot be accepted; the stream cannot be resynchronised after it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge { len: u64, limit: u32 },
    #[error("frame length {len} is shorter than the {min}-byte header")]
    TooShort { len: u32, min: u32 },
}

impl FrameError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
            FrameError::TooShort { .. } => ErrorCode::BAD_FRAME,
        }
    }
}

/// A complete frame found at the front of a buffer: its header, and where its payload lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    pub header: FrameHeader,
    /// Bytes of the whole frame, length prefix included.
    pub total: usize,
}

impl FrameSpan {
    /// The payload of this frame within the buffer it was found in.
    pub fn payload<'a>(&self, buffer: &'a [u8]) -> &'a [u8] {
        &buffer[FRAME_HEADER_LEN..self.total]
    }
}

/// Look at the front of `buffer`: `Ok(None)` when more bytes are needed; `Ok(Some(span))` when a
/// whole frame is there (the caller decodes `span.payload(buffer)` in place, then drops
/// `span.total` bytes). The length is checked against `max_frame_bytes` as soon as its 4 bytes
/// are in, before anything else is read or buffered.
#[inline]
pub fn peek_frame(buffer: &[u8], max_frame_bytes: u32) -> Result<Option<FrameSpan>, FrameError> {
    let Some(prefix) = buffer.first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*prefix);
    let min = (FRAME_HEADER_LEN - LENGTH_PREFIX_LEN) as u32;
    if len < min {
        return Err(FrameError::TooShort { len, min });
    }
    let total = u64::from(len) + LENGTH_PREFIX_LEN as u64;
    if total > u64::from(max_frame_bytes) {
        return Err(FrameError::TooLarge { len: total, limit: max_frame_bytes });
    }
    let total = total as usize;
    let Some(head) = buffer.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    if buffer.len() < total {
        return Ok(None);
    }
    let header = FrameHeader {
        opcode: u16::from_le_bytes([head[4], head[5]]),
        flags: u16::from_le_bytes([head[6], head[7]]),
        request_id: u64::from_le_bytes([head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15]]),
    };
    Ok(Some(FrameSpan { header, total }))
}

/// Append one frame: the header, then whatever `body` writes, then the length patched in. On an
/// error the buffer is left as it was. Returns the frame's size in bytes.
#[inline]
pub fn write_frame<B: Buffer>(
    out: &mut B,
    header: FrameHeader,
    body: impl FnOnce(&mut Writer<'_, B>) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let start = out.position();
    let mut head = [0u8; FRAME_HEADER_LEN];
    head[4..6].copy_from_slice(&header.opcode.to_le_bytes());
    head[6..8].copy_from_slice(&header.flags.to_le_bytes());
    head[8..16].copy_from_slice(&header.request_id.to_le_bytes());
    out.put(&head);
    let written = body(&mut Writer::new(out));
    let total = out.position() - start;
    match (written, u32::try_from(total - LENGTH_PREFIX_LEN)) {
        (Ok(()), Ok(len)) => {
            out.patch(start, &len.to_le_bytes());
            Ok(total)
        }
        (Err(e), _) => {
            out.truncate_to(start);
            Err(e)
        }
        (Ok(()), Err(_)) => {
            out.truncate_to(start);
            Err(EncodeError::FrameTooLarge { len: total, limit: u32::MAX })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_partial_input_waits() {
        // Checks a written frame is found again whole, and that every shorter prefix asks for more.
        let mut out = Vec::new();
        let header = FrameHeader { opcode: 10, flags: 0, request_id: 7 };
        let size = write_frame(&mut out, header, |w| {
            w.raw(b"abc");
            Ok(())
        })
        .unwrap();
        assert_eq!(size, 19);
        assert_eq!(&out[..4], &15u32.to_le_bytes());
        for cut in 0..out.len() {
            assert_eq!(peek_frame(&out[..cut], 1024), Ok(None));
        }
        let span = peek_frame(&out, 1024).unwrap().unwrap();
        assert_eq!(span.header, header);
        assert_eq!(span.payload(&out), b"abc");
    }

    #[test]
    fn hostile_lengths_are_refused_before_buffering() {
        // Checks the length is judged from its 4 bytes alone: too large or too short fails at once.
        assert!(matches!(peek_frame(&u32::MAX.to_le_bytes(), 1024), Err(FrameError::TooLarge { .. })));
        assert!(matches!(peek_frame(&3u32.to_le_bytes(), 1024), Err(FrameError::TooShort { .. })));
        assert!(matches!(peek_frame(&1021u32.to_le_bytes(), 1024), Err(FrameError::TooLarge { .. })));
        assert_eq!(peek_frame(&1020u32.to_le_bytes(), 1024), Ok(None));
    }

    #[test]
    fn a_failed_body_leaves_the_buffer_unchanged() {
        // Checks the encoder's promise that a refused message writes nothing.
        let mut out = vec![9u8];
        let result = write_frame(&mut out, FrameHeader { opcode: 1, flags: 0, request_id: 0 }, |w| {
            w.u64(1);
            Err(EncodeError::Empty { field: "x" })
        });
        assert!(result.is_err());
        assert_eq!(out, vec![9u8]);
    }
}
