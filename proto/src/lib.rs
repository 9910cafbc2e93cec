//! `oms-proto`: the omsd wire protocol, version 2 (docs/PROTOCOL.md): frames, requests and
//! responses, opcodes, roles, stable error codes, limits, and the wire view types a client
//! returns. It owns an encoder and an in-place decoder: a server decodes a [`Request`] that
//! borrows its read buffer, with every length, tag and limit checked before use and nothing
//! allocated.
//!
//! It must not know the engine, the log, sockets or an async runtime: it is bytes in, values out,
//! so the client crate, the server and other tools share one codec without pulling in each other.

mod code;
mod codec;
mod error_code;
mod frame;
pub mod json;
mod limits;
mod opcode;
mod request;
mod response;
mod role;

pub use code::{Code, CodeTooLong};
pub use codec::{Buffer, DecodeError, EncodeError, Reader, Writer};
pub use error_code::{ErrorCode, ENGINE_CODE_BASE, ENGINE_NAMES};
pub use frame::{peek_frame, write_frame, FrameError, FrameHeader, FrameSpan, FLAG_ERROR};
pub use json::JsonRequest;
pub use limits::*;
pub use opcode::{BodyKind, Opcode};
pub use request::{
    decode_request, Batch, BatchIter, Hello, Line, Lines, LinesIter, Request, Reserve, SkuRef, Subscribe, Trusted,
    WireBatch, WireLines, HELLO_MAGIC, PROTOCOL_VERSION,
};
pub use response::{
    decode_response, Allocation, BatchItem, KitComponent, LogRecord, LogRecords, ReservationPart, ReservationStatus,
    ReservationView, Reserved, Response, ServerInfo, SnapshotChunk, StockView, WarehouseStock, WireError,
};
pub use role::{Role, RoleParseError};
