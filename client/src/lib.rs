//! `oms-client`: the async Rust client for omsd, over wire protocol v2 (docs/PROTOCOL.md).
//!
//! - [`Client`]: pipelined requests from any number of tasks over one connection, reconnecting on
//!   the next call after a drop; typed answers ([`Reserved`](oms_proto::Reserved),
//!   [`StockView`](oms_proto::StockView), ...) and typed refusals ([`ClientError::Refused`]).
//! - [`LogStream`]: a log subscription (followers, the PostgreSQL sink, `oms log tail`).
//! - [`Connection`]: one connection with its handshake, for sequential drivers (the load
//!   generator). It is the only Hello implementation; `Client` and `LogStream` are built on it.
//! - TLS behind the `tls` cargo feature ([`tls::ClientTls`]).
//! - [`backoff::Backoff`]: the retry delays (exponential, jittered) of every loop that reconnects
//!   or redelivers: omsd's followers and webhooks, the PostgreSQL sink.
//!
//! It depends on `oms-proto` and tokio (and rustls with `tls`), never on the server: no engine,
//! no log, no HTTP stack. `client/tests/dependencies.rs` checks that with `cargo tree`.

pub mod backoff;
mod client;
mod connection;
mod error;
mod stream;
mod subscription;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{Cart, Client, ClientOptions};
pub use connection::{ConnectOptions, Connection};
pub use error::ClientError;
pub use oms_proto as proto;
pub use stream::{MaybeTls, TlsSettings};
pub use subscription::{LogStream, ACK_REQUEST_ID, PING_REQUEST_ID};
