//! What can go wrong talking to omsd, as one typed error.

use std::time::Duration;

use oms_proto::{DecodeError, EncodeError, WireError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("timed out connecting to {addr}")]
    ConnectTimeout { addr: String },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls { addr: String, source: std::io::Error },
    #[error("server refused the handshake: {} ({}): {}", .0.name, .0.code.0, .0.message)]
    Handshake(Box<WireError>),
    #[error("connection lost (the request may or may not have been applied)")]
    Disconnected,
    #[error("connection closed by the server")]
    Closed,
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("request timed out after {0:?} (it may or may not have been applied)")]
    Timeout(Duration),
    /// The engine refused the request (codes 100 and up): insufficient stock, sold out, ...
    #[error("refused: {} ({}): {}", .0.name, .0.code.0, .0.message)]
    Refused(Box<WireError>),
    /// The server refused the request (codes below 100): busy, forbidden, bad request, ...
    #[error("server error: {} ({}): {}", .0.name, .0.code.0, .0.message)]
    Server(Box<WireError>),
    #[error("the server sent a frame that does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unexpected response to {request}: {got}")]
    UnexpectedResponse { request: &'static str, got: String },
    /// Refused before sending: the request breaks a protocol limit (nothing was sent).
    #[error("cannot send the request: {0}")]
    Encode(#[from] EncodeError),
    #[error("server sent JSON that does not parse as {what}: {source}")]
    Json { what: &'static str, source: serde_json::Error },
}

impl ClientError {
    /// The server's refusal, if this error is one.
    pub fn wire_error(&self) -> Option<&WireError> {
        match self {
            ClientError::Refused(e) | ClientError::Server(e) | ClientError::Handshake(e) => Some(e),
            _ => None,
        }
    }

    /// True when the server could not be reached or the connection broke.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::ConnectTimeout { .. }
                | ClientError::Tls { .. }
                | ClientError::Disconnected
                | ClientError::Closed
                | ClientError::Io(_)
                | ClientError::Timeout(_)
        )
    }

    /// A refusal as the right variant: engine codes (100+) are `Refused`, the rest `Server`.
    pub fn from_wire(error: WireError) -> ClientError {
        if error.code.is_refusal() {
            ClientError::Refused(Box::new(error))
        } else {
            ClientError::Server(Box::new(error))
        }
    }
}
