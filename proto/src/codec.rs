//! The primitive types of docs/PROTOCOL.md section 1: a bounds-checked reader over a borrowed
//! payload and a writer into any growable byte buffer.
//!
//! The reader never allocates and never panics: every read checks the remaining length first and
//! names the field it was reading in its error.

use crate::error_code::ErrorCode;

/// Where encoded frames go: a `Vec<u8>` or a `bytes::BytesMut` (the server's and client's write
/// buffers). The frame length is written last, so a buffer must allow patching.
pub trait Buffer {
    fn put(&mut self, bytes: &[u8]);
    fn position(&self) -> usize;
    fn patch(&mut self, at: usize, bytes: &[u8]);
    fn truncate_to(&mut self, len: usize);
}

impl Buffer for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn position(&self) -> usize {
        self.len()
    }
    #[inline]
    fn patch(&mut self, at: usize, bytes: &[u8]) {
        self[at..at + bytes.len()].copy_from_slice(bytes);
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

impl Buffer for bytes::BytesMut {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn position(&self) -> usize {
        self.len()
    }
    #[inline]
    fn patch(&mut self, at: usize, bytes: &[u8]) {
        self[at..at + bytes.len()].copy_from_slice(bytes);
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

/// A message that cannot be encoded within the protocol's limits (the encoder refuses before
/// anything reaches the network, and leaves the buffer as it was).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{field} is {len} bytes; the limit is {limit}")]
    StringTooLong { field: &'static str, len: usize, limit: usize },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} has {count} items; the limit is {limit}")]
    TooMany { field: &'static str, count: usize, limit: usize },
    #[error("the frame would be {len} bytes; the server accepts at most {limit}")]
    FrameTooLarge { len: usize, limit: u32 },
    #[error("{0} is not a request this encoder sends")]
    NotARequest(&'static str),
    #[error("JSON body does not serialize: {0}")]
    Json(String),
}

/// Why a payload was refused. Each maps to a stable wire error code ([`DecodeError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("payload ends inside {field}")]
    Truncated { field: &'static str },
    #[error("{count} bytes left over after the last field")]
    TrailingBytes { count: usize },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{field} has the unknown tag {value}")]
    InvalidTag { field: &'static str, value: u8 },
    #[error("{field} must be 0 or 1, not {value}")]
    InvalidBool { field: &'static str, value: u8 },
    #[error("{field} is absent but its value bytes are not zero")]
    AbsentNotZero { field: &'static str },
    #[error("{field} is {len} bytes; the limit is {limit}")]
    StringTooLong { field: &'static str, len: usize, limit: usize },
    #[error("SKU code must be 1..={limit} bytes, got {len}")]
    InvalidCode { len: usize, limit: usize },
    #[error("{count} lines exceed the limit of {limit}")]
    TooManyLines { count: usize, limit: usize },
    #[error("{count} reservations in one batch exceed the limit of {limit}")]
    BatchTooLarge { count: usize, limit: usize },
    #[error("{field}: {count} items exceed the limit of {limit}")]
    TooMany { field: &'static str, count: usize, limit: usize },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    #[error("request flags must be 0, got {0:#06x}")]
    RequestFlags(u16),
    #[error("opcode {0} is not a request")]
    NotARequest(u16),
    #[error("opcode {0} has no response layout")]
    NotAResponse(u16),
    #[error("invalid JSON body for {opcode}: {message}")]
    Json { opcode: &'static str, message: String },
}

impl DecodeError {
    /// The wire error a server answers this refusal with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::InvalidCode { .. } => ErrorCode::INVALID_CODE,
            DecodeError::TooManyLines { .. } => ErrorCode::TOO_MANY_LINES,
            DecodeError::BatchTooLarge { .. } => ErrorCode::BATCH_TOO_LARGE,
            DecodeError::UnknownOpcode(_) => ErrorCode::UNKNOWN_OPCODE,
            _ => ErrorCode::BAD_REQUEST,
        }
    }
}

/// `bytes` as a `str`, refusing invalid UTF-8. Codes and keys are nearly always ASCII, which a
/// word-at-a-time check settles faster than the general validator does for short strings.
#[inline]
pub fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    if bytes.is_ascii() {
        // Safety: every byte is below 0x80, and ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field })
}

/// Appends primitive values to a buffer (docs/PROTOCOL.md section 1).
pub struct Writer<'b, B: Buffer> {
    out: &'b mut B,
}

impl<'b, B: Buffer> Writer<'b, B> {
    pub fn new(out: &'b mut B) -> Self {
        Writer { out }
    }

    pub fn position(&self) -> usize {
        self.out.position()
    }

    #[inline]
    pub fn u8(&mut self, value: u8) {
        self.out.put(&[value]);
    }
    #[inline]
    pub fn u16(&mut self, value: u16) {
        self.out.put(&value.to_le_bytes());
    }
    #[inline]
    pub fn u32(&mut self, value: u32) {
        self.out.put(&value.to_le_bytes());
    }
    #[inline]
    pub fn u64(&mut self, value: u64) {
        self.out.put(&value.to_le_bytes());
    }
    #[inline]
    pub fn i64(&mut self, value: i64) {
        self.out.put(&value.to_le_bytes());
    }
    #[inline]
    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }
    #[inline]
    pub fn opt_u32(&mut self, value: Option<u32>) {
        let mut bytes = [0u8; 5];
        if let Some(v) = value {
            bytes[0] = 1;
            bytes[1..].copy_from_slice(&v.to_le_bytes());
        }
        self.out.put(&bytes);
    }
    #[inline]
    pub fn opt_u64(&mut self, value: Option<u64>) {
        let mut bytes = [0u8; 9];
        if let Some(v) = value {
            bytes[0] = 1;
            bytes[1..].copy_from_slice(&v.to_le_bytes());
        }
        self.out.put(&bytes);
    }
    /// A `str` whose length the caller has checked against the field's limit (at most 65,535).
    #[inline]
    pub fn str(&mut self, field: &'static str, value: &str, limit: usize) -> Result<(), EncodeError> {
        debug_assert!(limit <= usize::from(u16::MAX));
        if value.len() > limit {
            return Err(EncodeError::StringTooLong { field, len: value.len(), limit });
        }
        self.u16(value.len() as u16);
        self.out.put(value.as_bytes());
        Ok(())
    }
    pub fn bytes(&mut self, value: &[u8]) -> Result<(), EncodeError> {
        let len = u32::try_from(value.len()).map_err(|_| EncodeError::StringTooLong {
            field: "bytes",
            len: value.len(),
            limit: u32::MAX as usize,
        })?;
        self.u32(len);
        self.out.put(value);
        Ok(())
    }
    /// A count prefix (`u16`), checked against `limit`.
    #[inline]
    pub fn count(&mut self, field: &'static str, count: usize, limit: usize) -> Result<(), EncodeError> {
        debug_assert!(limit <= usize::from(u16::MAX));
        if count > limit {
            return Err(EncodeError::TooMany { field, count, limit });
        }
        self.u16(count as u16);
        Ok(())
    }
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.put(bytes);
    }
}

/// Reads primitive values from a borrowed payload, front to back.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    #[inline]
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        match self.bytes.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.bytes = rest;
                Ok(*head)
            }
            None => Err(DecodeError::Truncated { field }),
        }
    }

    #[inline]
    pub fn slice(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::Truncated { field });
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take::<1>(field)?[0])
    }
    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take(field)?))
    }
    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(field)?))
    }
    #[inline]
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(field)?))
    }
    #[inline]
    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.take(field)?))
    }
    #[inline]
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidBool { field, value }),
        }
    }
    #[inline]
    pub fn opt_u32(&mut self, field: &'static str) -> Result<Option<u32>, DecodeError> {
        let present = self.bool(field)?;
        let value = self.u32(field)?;
        match (present, value) {
            (true, v) => Ok(Some(v)),
            (false, 0) => Ok(None),
            (false, _) => Err(DecodeError::AbsentNotZero { field }),
        }
    }
    #[inline]
    pub fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, DecodeError> {
        let present = self.bool(field)?;
        let value = self.u64(field)?;
        match (present, value) {
            (true, v) => Ok(Some(v)),
            (false, 0) => Ok(None),
            (false, _) => Err(DecodeError::AbsentNotZero { field }),
        }
    }
    /// A `str` of at most `limit` bytes, checked before its bytes are looked at.
    #[inline]
    pub fn str(&mut self, field: &'static str, limit: usize) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16(field)?);
        if len > limit {
            return Err(DecodeError::StringTooLong { field, len, limit });
        }
        let bytes = self.slice(field, len)?;
        utf8(bytes, field)
    }

    /// The next `N` bytes as an array (one bounds check for a fixed-size head).
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        self.take(field)
    }
    /// A `bytes` field of at most `limit` bytes.
    pub fn bytes(&mut self, field: &'static str, limit: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        if len > limit {
            return Err(DecodeError::StringTooLong { field, len, limit });
        }
        self.slice(field, len)
    }
    /// A `u16` count prefix, checked against `limit`.
    #[inline]
    pub fn count(&mut self, field: &'static str, limit: usize) -> Result<usize, DecodeError> {
        let count = usize::from(self.u16(field)?);
        if count > limit {
            return Err(DecodeError::TooMany { field, count, limit });
        }
        Ok(count)
    }
    /// The payload must be consumed exactly.
    #[inline]
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { count: self.bytes.len() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip_and_short_input_names_the_field() {
        // Checks every primitive writes the documented little-endian bytes and reads back, and
        // that a read past the end fails naming the field instead of panicking.
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.u16(0x0201);
        w.opt_u32(None);
        w.opt_u64(Some(7));
        w.str("s", "hé", 8).unwrap();
        assert_eq!(&out[..2], &[1, 2]);
        assert_eq!(&out[2..7], &[0; 5]);
        assert_eq!(&out[7..16], &[1, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[16..], &[3, 0, b'h', 0xc3, 0xa9]);
        let mut r = Reader::new(&out);
        assert_eq!(r.u16("a"), Ok(0x0201));
        assert_eq!(r.opt_u32("b"), Ok(None));
        assert_eq!(r.opt_u64("c"), Ok(Some(7)));
        assert_eq!(r.str("s", 8), Ok("hé"));
        assert_eq!(r.u8("end"), Err(DecodeError::Truncated { field: "end" }));
        assert_eq!(Reader::new(&[0, 1, 0, 0, 0]).opt_u32("x"), Err(DecodeError::AbsentNotZero { field: "x" }));
        assert_eq!(Reader::new(&[2]).bool("x"), Err(DecodeError::InvalidBool { field: "x", value: 2 }));
        assert_eq!(
            Reader::new(&[5, 0, b'a']).str("x", 4),
            Err(DecodeError::StringTooLong { field: "x", len: 5, limit: 4 })
        );
        assert_eq!(Reader::new(&[2, 0, 0xff, 0xfe]).str("x", 4), Err(DecodeError::InvalidUtf8 { field: "x" }));
    }
}
