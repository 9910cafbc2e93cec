//! The client side of a log subscription: a dedicated connection (handshake, `Subscribe`
//! requests, then a stream of frames). Used by `oms log tail`, follower mode and the PostgreSQL
//! sink. Several subscriptions may share one connection (one request id each).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use rkyv::util::AlignedVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::protocol::{
    self, encode_frame, FrameDecoder, PayloadError, Request, Response, WireError, HELLO_MAGIC, PROTOCOL_VERSION,
};

/// A ping keeps the connection from the server's idle timeout.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Request id of `ReplicaAck` frames (never answered, so it only has to differ from pings').
const ACK_REQUEST_ID: u64 = u64::MAX - 1;
/// Bound on one response frame read by a subscriber (snapshots arrive in chunks below this).
const MAX_RESPONSE_FRAME: u32 = 64 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("timed out connecting to {0}")]
    ConnectTimeout(String),
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls { addr: String, source: std::io::Error },
    #[error("handshake refused: {} ({}): {}", .0.name, .0.code, .0.message)]
    Handshake(WireError),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the server")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// What the server announced in the handshake.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub partitions: u32,
    pub max_lines: u32,
    pub max_frame_bytes: u32,
    pub role: String,
}

pub struct LogStream {
    stream: crate::tls::MaybeTls,
    buffer: BytesMut,
    scratch: AlignedVec,
    decoder: FrameDecoder,
    out: BytesMut,
    last_write: Instant,
    pub info: ServerInfo,
}

impl LogStream {
    pub async fn connect(
        addr: &str,
        api_key: Option<&str>,
        client: &str,
        timeout: Duration,
    ) -> Result<LogStream, StreamError> {
        LogStream::connect_tls(addr, api_key, client, timeout, None).await
    }

    /// [`LogStream::connect`], over TLS when `tls` is given.
    pub async fn connect_tls(
        addr: &str,
        api_key: Option<&str>,
        client: &str,
        timeout: Duration,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<LogStream, StreamError> {
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| StreamError::ConnectTimeout(addr.to_owned()))?
            .map_err(|source| StreamError::Connect { addr: addr.to_owned(), source })?;
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            None => crate::tls::MaybeTls::Plain(tcp),
            Some(tls) => {
                let tls_stream = tokio::time::timeout(timeout, tls.handshake(addr, tcp))
                    .await
                    .map_err(|_| StreamError::ConnectTimeout(addr.to_owned()))?
                    .map_err(|source| StreamError::Tls { addr: addr.to_owned(), source })?;
                crate::tls::MaybeTls::Tls(Box::new(tls_stream))
            }
        };
        let mut this = LogStream {
            stream,
            buffer: BytesMut::with_capacity(64 * 1024),
            scratch: AlignedVec::new(),
            decoder: FrameDecoder { max_frame_bytes: MAX_RESPONSE_FRAME },
            out: BytesMut::new(),
            last_write: Instant::now(),
            info: ServerInfo { partitions: 0, max_lines: 64, max_frame_bytes: 0, role: String::new() },
        };
        let hello = Request::Hello {
            magic: HELLO_MAGIC,
            version: PROTOCOL_VERSION,
            api_key: api_key.unwrap_or_default().to_owned(),
            client: client.to_owned(),
        };
        this.send(0, &hello).await?;
        let answer = tokio::time::timeout(timeout, this.next())
            .await
            .map_err(|_| StreamError::ConnectTimeout(addr.to_owned()))??;
        match answer.1 {
            Response::HelloOk { partitions, role, max_frame_bytes, max_lines, .. } => {
                this.info = ServerInfo { partitions, max_lines, max_frame_bytes, role };
                Ok(this)
            }
            Response::Error(e) => Err(StreamError::Handshake(e)),
            other => Err(StreamError::Protocol(format!("unexpected answer to hello: {other:?}"))),
        }
    }

    async fn send(&mut self, request_id: u64, request: &Request) -> Result<(), StreamError> {
        let payload = protocol::encode(request)?;
        self.out.clear();
        encode_frame(&mut self.out, request.opcode() as u16, request_id, &payload);
        self.stream.write_all(&self.out).await?;
        // TLS may hold records back until flushed; on TCP it is a no-op.
        self.stream.flush().await?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Send any request (e.g. `Promote`); its answer arrives through [`LogStream::next`].
    pub async fn request(&mut self, request_id: u64, request: &Request) -> Result<(), StreamError> {
        self.send(request_id, request).await
    }

    /// Start a subscription whose frames will carry `request_id`.
    pub async fn subscribe(
        &mut self,
        request_id: u64,
        partition: Option<u32>,
        from_lsn: u64,
        bootstrap: bool,
    ) -> Result<(), StreamError> {
        self.send(request_id, &Request::Subscribe { partition, from_lsn, bootstrap }).await
    }

    /// Report (as a follower) that this server's log holds `partition` durably up to
    /// `durable_lsn`. The server never answers it.
    pub async fn ack(&mut self, partition: u32, durable_lsn: u64) -> Result<(), StreamError> {
        self.send(ACK_REQUEST_ID, &Request::ReplicaAck { partition, durable_lsn }).await
    }

    /// The next frame if one has already arrived (never waits for the network).
    pub fn try_next(&mut self) -> Result<Option<(u64, Response)>, StreamError> {
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some((header, payload))) => {
                    let response = protocol::decode_response(&payload, &mut self.scratch)?;
                    return Ok(Some((header.request_id, response)));
                }
                Ok(None) => {}
                Err(e) => return Err(StreamError::Protocol(e.to_string())),
            }
            self.buffer.reserve(64 * 1024);
            // One poll of the read (plain or TLS): `read_buf` is cancel-safe, so a read that is
            // not ready is dropped without losing bytes, and `next` awaits it properly later.
            match futures::FutureExt::now_or_never(self.stream.read_buf(&mut self.buffer)) {
                None => return Ok(None),
                Some(Ok(0)) => return Err(StreamError::Closed),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(StreamError::Io(e)),
            }
        }
    }

    /// The next frame: (request id, response). Sends a keep-alive ping when the connection has
    /// been quiet (its `Pong` is returned like any other frame).
    pub async fn next(&mut self) -> Result<(u64, Response), StreamError> {
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some((header, payload))) => {
                    let response = protocol::decode_response(&payload, &mut self.scratch)?;
                    return Ok((header.request_id, response));
                }
                Ok(None) => {}
                Err(e) => return Err(StreamError::Protocol(e.to_string())),
            }
            if self.last_write.elapsed() >= KEEPALIVE {
                self.send(u64::MAX, &Request::Ping).await?;
            }
            self.buffer.reserve(64 * 1024);
            match tokio::time::timeout(KEEPALIVE, self.stream.read_buf(&mut self.buffer)).await {
                Err(_) => continue,
                Ok(Ok(0)) => return Err(StreamError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(StreamError::Io(e)),
            }
        }
    }
}
