//! The limits of docs/PROTOCOL.md section 9. Fixed ones are constants; the ones a server may
//! configure travel in `hello_ok` and reach the decoder as [`Limits`].

/// Bytes of the frame header, the length prefix included.
pub const FRAME_HEADER_LEN: usize = 16;
/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Default bound on one request frame, header included.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 1 << 20;
/// Default bound on requests in flight on one connection.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4096;
/// Default bound on lines in one reservation (after kit expansion).
pub const DEFAULT_MAX_LINES: u32 = 64;
/// Most reservations in one batch frame.
pub const MAX_BATCH: u32 = 1024;
/// Clients should accept response frames up to this size (JSON reports can be large).
pub const MAX_RESPONSE_FRAME_BYTES: u32 = 64 << 20;
/// Longest SKU or warehouse code, in bytes.
pub const CODE_LIMIT: usize = 64;
/// Longest idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_LIMIT: usize = 128;
/// Longest API key and client name in Hello, in bytes.
pub const HELLO_STRING_LIMIT: usize = 256;
/// Longest error name.
pub const ERROR_NAME_LIMIT: usize = 64;
/// Longest error message (a server truncates longer ones at a character boundary).
pub const ERROR_MESSAGE_LIMIT: usize = 4096;
/// Longest server name in `hello_ok`.
pub const SERVER_NAME_LIMIT: usize = 256;
/// Most codes in one `lookup_skus`.
pub const LOOKUP_LIMIT: usize = 4096;

/// The limits a decoder enforces, as a server announces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: u32,
    pub max_lines: u32,
    pub max_batch: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame_bytes: DEFAULT_MAX_FRAME_BYTES, max_lines: DEFAULT_MAX_LINES, max_batch: MAX_BATCH }
    }
}
