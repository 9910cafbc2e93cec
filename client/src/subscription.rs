//! The client side of a log subscription (docs/PROTOCOL.md section 8): a dedicated connection,
//! `subscribe` requests, then a stream of frames. Used by `oms log tail`, follower mode and the
//! PostgreSQL sink. Several subscriptions may share one connection (one request id each).

use std::time::Duration;

use oms_proto::{Request, Response, ServerInfo, Subscribe};

use crate::connection::{ConnectOptions, Connection};
use crate::error::ClientError;
use crate::stream::TlsSettings;

/// A ping keeps the connection from the server's idle timeout.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Request id of `replica_ack` frames (never answered, so it only has to differ from pings').
pub const ACK_REQUEST_ID: u64 = u64::MAX - 1;
/// Request id of keep-alive pings; their answer (`Response::Done`) is returned like any frame.
pub const PING_REQUEST_ID: u64 = u64::MAX;

pub struct LogStream {
    connection: Connection,
}

impl LogStream {
    /// Connect and handshake (plain TCP).
    pub async fn connect(
        addr: &str,
        api_key: Option<&str>,
        client: &str,
        timeout: Duration,
    ) -> Result<LogStream, ClientError> {
        LogStream::connect_tls(addr, api_key, client, timeout, None).await
    }

    /// [`LogStream::connect`], over TLS when `tls` is given.
    pub async fn connect_tls(
        addr: &str,
        api_key: Option<&str>,
        client: &str,
        timeout: Duration,
        tls: Option<&TlsSettings>,
    ) -> Result<LogStream, ClientError> {
        let options = ConnectOptions {
            api_key: api_key.map(str::to_owned),
            client_name: client.to_owned(),
            connect_timeout: timeout,
            tls: tls.cloned(),
        };
        Ok(LogStream { connection: Connection::open(addr, &options).await? })
    }

    /// What the server announced in the handshake.
    pub fn info(&self) -> &ServerInfo {
        self.connection.info()
    }

    async fn send(&mut self, request_id: u64, request: &Request<'_>) -> Result<(), ClientError> {
        self.connection.push(request_id, request)?;
        self.connection.flush().await
    }

    /// Send any request (e.g. `promote`); its answer arrives through [`LogStream::next`].
    pub async fn request(&mut self, request_id: u64, request: &Request<'_>) -> Result<(), ClientError> {
        self.send(request_id, request).await
    }

    /// Start a subscription whose frames will carry `request_id`.
    pub async fn subscribe(
        &mut self,
        request_id: u64,
        partition: Option<u32>,
        from_lsn: u64,
        bootstrap: bool,
    ) -> Result<(), ClientError> {
        self.send(request_id, &Request::Subscribe(Subscribe { from_lsn, partition, bootstrap })).await
    }

    /// Report (as a follower) that this server's log holds `partition` durably up to
    /// `durable_lsn`. The server never answers it.
    pub async fn ack(&mut self, partition: u32, durable_lsn: u64) -> Result<(), ClientError> {
        self.send(ACK_REQUEST_ID, &Request::ReplicaAck { partition, durable_lsn }).await
    }

    /// The next frame if one has already arrived (never waits for the network).
    pub fn try_next(&mut self) -> Result<Option<(u64, Response)>, ClientError> {
        loop {
            if let Some((header, response)) = self.connection.try_frame()? {
                return Ok(Some((header.request_id, response)));
            }
            if !self.connection.read_ready()? {
                return Ok(None);
            }
        }
    }

    /// The next frame: (request id, response). Sends a keep-alive ping when the connection has
    /// been quiet (its answer, `Response::Done` with [`PING_REQUEST_ID`], is returned like any
    /// other frame).
    pub async fn next(&mut self) -> Result<(u64, Response), ClientError> {
        loop {
            if let Some((header, response)) = self.connection.try_frame()? {
                return Ok((header.request_id, response));
            }
            if self.connection.last_write().elapsed() >= KEEPALIVE {
                self.send(PING_REQUEST_ID, &Request::Ping).await?;
            }
            match tokio::time::timeout(KEEPALIVE, self.connection.read_more()).await {
                Err(_) => continue,
                Ok(result) => result?,
            }
        }
    }
}
