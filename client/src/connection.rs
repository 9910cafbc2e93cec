//! One connection with its handshake, used whole by the sequential users (log subscriptions, the
//! load generator) and split into reader and writer tasks by the pipelined [`crate::Client`].
//! This is the only place a Hello is sent and read.

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use oms_proto::{
    decode_response, peek_frame, FrameHeader, Hello, Request, Response, ServerInfo, DEFAULT_MAX_FRAME_BYTES,
    MAX_RESPONSE_FRAME_BYTES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ClientError;
use crate::stream::{MaybeTls, TlsSettings};

/// How to open a connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Sent in the Hello frame; empty when `None`.
    pub api_key: Option<String>,
    /// Free-form client name reported to the server (shows up in its logs).
    pub client_name: String,
    /// Bound on TCP connect, TLS and the Hello handshake together.
    pub connect_timeout: Duration,
    /// Speak TLS to the server (`tls` feature); `None`: plain TCP.
    pub tls: Option<TlsSettings>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            api_key: None,
            client_name: format!("oms-client/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(5),
            tls: None,
        }
    }
}

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// An open, authenticated connection.
pub struct Connection {
    stream: MaybeTls,
    read: BytesMut,
    write: BytesMut,
    info: ServerInfo,
    max_response_bytes: u32,
    last_write: Instant,
}

impl Connection {
    /// Connect (and TLS), send Hello, read HelloOk, all within `connect_timeout`.
    pub async fn open(addr: &str, options: &ConnectOptions) -> Result<Connection, ClientError> {
        let open = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::Connect { addr: addr.to_owned(), source })?;
            let stream = MaybeTls::over(tcp, addr, options.tls.as_ref())
                .await
                .map_err(|source| ClientError::Tls { addr: addr.to_owned(), source })?;
            let mut connection = Connection {
                stream,
                read: BytesMut::with_capacity(READ_CHUNK),
                write: BytesMut::new(),
                info: ServerInfo {
                    version: 0,
                    role: oms_proto::Role::Reader,
                    partitions: 0,
                    max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
                    max_lines: oms_proto::DEFAULT_MAX_LINES,
                    max_in_flight: oms_proto::DEFAULT_MAX_IN_FLIGHT,
                    max_batch: oms_proto::MAX_BATCH,
                    features: 0,
                    server: String::new(),
                },
                max_response_bytes: MAX_RESPONSE_FRAME_BYTES,
                last_write: Instant::now(),
            };
            let key = options.api_key.as_deref().unwrap_or_default();
            connection.push(0, &Request::Hello(Hello::new(key, &options.client_name)))?;
            connection.flush().await?;
            let (_, answer) = connection.next().await?;
            match answer {
                Response::HelloOk(info) => {
                    connection.info = info;
                    Ok(connection)
                }
                Response::Error(e) => Err(ClientError::Handshake(Box::new(e))),
                other => Err(unexpected("hello", &other)),
            }
        };
        tokio::time::timeout(options.connect_timeout, open)
            .await
            .map_err(|_| ClientError::ConnectTimeout { addr: addr.to_owned() })?
    }

    /// What the server announced in its `hello_ok`.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// Accept response frames up to `bytes` (default 64 MiB).
    pub fn set_max_response_bytes(&mut self, bytes: u32) {
        self.max_response_bytes = bytes;
    }

    /// Queue one request (sent by the next [`Connection::flush`]). A request the server would
    /// refuse for its size is refused here, before anything is sent.
    pub fn push(&mut self, request_id: u64, request: &Request<'_>) -> Result<usize, ClientError> {
        let at = self.write.len();
        let size = request.encode(request_id, &mut self.write)?;
        if size > self.info.max_frame_bytes as usize {
            self.write.truncate(at);
            return Err(oms_proto::EncodeError::FrameTooLarge { len: size, limit: self.info.max_frame_bytes }.into());
        }
        Ok(size)
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.write.len()
    }

    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.write.is_empty() {
            self.stream.write_all(&self.write).await?;
            // TLS may hold records back until flushed; on TCP it is a no-op.
            self.stream.flush().await?;
            self.write.clear();
            self.last_write = Instant::now();
        }
        Ok(())
    }

    /// When this connection last wrote.
    pub fn last_write(&self) -> Instant {
        self.last_write
    }

    /// The next complete frame already read, decoded; `None` when more bytes are needed.
    pub fn try_frame(&mut self) -> Result<Option<(FrameHeader, Response)>, ClientError> {
        let Some(span) =
            peek_frame(&self.read, self.max_response_bytes).map_err(|e| ClientError::Protocol(e.to_string()))?
        else {
            return Ok(None);
        };
        let response = decode_response(&span.header, span.payload(&self.read))?;
        self.read.advance(span.total);
        Ok(Some((span.header, response)))
    }

    /// Read once from the socket (waits for bytes). A closed connection is an error.
    pub async fn read_more(&mut self) -> Result<(), ClientError> {
        self.read.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.read).await? {
            0 => Err(ClientError::Closed),
            _ => Ok(()),
        }
    }

    /// Read from the socket only if bytes are already there (never waits).
    pub fn read_ready(&mut self) -> Result<bool, ClientError> {
        self.read.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.read);
        let mut read = std::pin::pin!(read);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // `read_buf` is cancel-safe: a read that is not ready is dropped without losing bytes.
        match std::future::Future::poll(read.as_mut(), &mut cx) {
            std::task::Poll::Pending => Ok(false),
            std::task::Poll::Ready(Ok(0)) => Err(ClientError::Closed),
            std::task::Poll::Ready(Ok(_)) => Ok(true),
            std::task::Poll::Ready(Err(e)) => Err(e.into()),
        }
    }

    /// The next frame, reading as needed: (header, response).
    pub async fn next(&mut self) -> Result<(FrameHeader, Response), ClientError> {
        loop {
            if let Some(frame) = self.try_frame()? {
                return Ok(frame);
            }
            self.read_more().await?;
        }
    }

    /// Send one request and wait for the answer with its id (frames for other ids are dropped:
    /// use this only when nothing else is in flight).
    pub async fn call(&mut self, request_id: u64, request: &Request<'_>) -> Result<Response, ClientError> {
        self.push(request_id, request)?;
        self.flush().await?;
        loop {
            let (header, response) = self.next().await?;
            if header.request_id == request_id {
                return Ok(response);
            }
        }
    }

    /// The stream, the bytes read past the last frame taken, and the server's announcement.
    pub fn into_parts(self) -> (MaybeTls, BytesMut, ServerInfo) {
        (self.stream, self.read, self.info)
    }

    /// The underlying stream (for a caller that reads and writes it directly).
    pub fn stream_mut(&mut self) -> &mut MaybeTls {
        &mut self.stream
    }
}

pub(crate) fn unexpected(request: &'static str, got: &Response) -> ClientError {
    let mut got = format!("{got:?}");
    got.truncate(200);
    ClientError::UnexpectedResponse { request, got }
}
