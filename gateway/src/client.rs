//! Async Rust client for omsd.
//!
//! One [`Client`] owns at most one TCP connection at a time and pipelines requests over it: a
//! writer task drains an unbounded queue of encoded frames (coalescing them into few writes), a
//! reader task splits response frames and completes the matching caller through a pending map
//! keyed by request id. Any number of tasks may share one `Client` (it is `Clone + Send + Sync`)
//! and have requests in flight at once; answers may arrive out of order.
//!
//! Failure model: when the connection drops, every call in flight fails with
//! [`ClientError::Disconnected`] and is **never** retried (a reserve may have been applied). The
//! next call opens a new connection (and handshakes again) if [`ClientOptions::reconnect`] is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use oms_engine::partition::{CampaignView, ReservationView, SkuStockView};
use rkyv::util::AlignedVec;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::protocol::{
    self, encode_frame, BatchItem, FrameDecoder, Opcode, PayloadError, Request, ReserveWire, ReservedWire, Response,
    SkuRef, StockOpWire, WireError, WireLine, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT, HELLO_MAGIC,
    PROTOCOL_VERSION,
};
use crate::wire_error::ENGINE_CODE_BASE;

/// How to reach and talk to a server.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Sent in the Hello frame; empty when `None`.
    pub api_key: Option<String>,
    /// Free-form client name reported to the server (shows up in its logs).
    pub client_name: String,
    /// Bound on TCP connect plus the Hello handshake.
    pub connect_timeout: Duration,
    /// Bound on one request's round trip (the call fails with [`ClientError::Timeout`]).
    pub request_timeout: Duration,
    /// Reconnect on the next call after the connection dropped.
    pub reconnect: bool,
    /// Speak TLS to the server (see [`crate::tls::ClientTls`]); `None`: plain TCP.
    pub tls: Option<crate::tls::ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            api_key: None,
            client_name: format!("oms-client/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            reconnect: true,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("timed out connecting to {addr}")]
    ConnectTimeout { addr: String },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls { addr: String, source: std::io::Error },
    #[error("server refused the handshake: {} ({}): {}", .0.name, .0.code, .0.message)]
    Handshake(WireError),
    #[error("connection lost (the request may or may not have been applied)")]
    Disconnected,
    #[error("request timed out after {0:?} (it may or may not have been applied)")]
    Timeout(Duration),
    /// The engine refused the command (codes 100 and up): insufficient stock, sold out, ...
    #[error("refused: {} ({}): {}", .0.name, .0.code, .0.message)]
    Refused(WireError),
    /// The gateway refused the request (codes below 100): busy, forbidden, bad request, ...
    #[error("server error: {} ({}): {}", .0.name, .0.code, .0.message)]
    Server(WireError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unexpected response to {request}: {got}")]
    UnexpectedResponse { request: &'static str, got: String },
    #[error("cannot encode request: {0}")]
    Encode(#[from] PayloadError),
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
                | ClientError::Timeout(_)
        )
    }

    fn from_wire(error: WireError) -> ClientError {
        if error.code >= ENGINE_CODE_BASE {
            ClientError::Refused(error)
        } else {
            ClientError::Server(error)
        }
    }
}

/// What the server said in `HelloOk`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    pub version: u16,
    pub server: String,
    pub partitions: u32,
    pub role: String,
    pub max_frame_bytes: u32,
    pub max_lines: u32,
    pub max_in_flight: u32,
}

/// One row of `ExportStock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRow {
    pub sku: u32,
    pub code: String,
    pub available: u64,
}

/// Bound on one response frame (read answers such as a stock export can be large).
pub const MAX_RESPONSE_FRAME_BYTES: u32 = 64 << 20;

type Reply = Result<Response, ClientError>;
/// `None` once the connection is closed: nothing may be added after that.
type Pending = Arc<parking_lot::Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

struct Conn {
    frames: mpsc::UnboundedSender<BytesMut>,
    pending: Pending,
    permits: Arc<Semaphore>,
    info: ServerInfo,
}

impl Conn {
    fn is_open(&self) -> bool {
        self.pending.lock().is_some() && !self.frames.is_closed()
    }
}

fn close_pending(pending: &Pending) {
    let drained = pending.lock().take();
    if let Some(map) = drained {
        for (_, waiter) in map {
            let _ = waiter.send(Err(ClientError::Disconnected));
        }
    }
}

struct Inner {
    addr: String,
    options: ClientOptions,
    next_id: AtomicU64,
    current: parking_lot::Mutex<Option<Arc<Conn>>>,
    reconnecting: tokio::sync::Mutex<()>,
}

/// A pipelining omsd client. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.inner.addr).finish_non_exhaustive()
    }
}

impl Client {
    /// Connect and handshake. Fails if the server is unreachable or refuses the Hello.
    pub async fn connect(addr: impl Into<String>, options: ClientOptions) -> Result<Client, ClientError> {
        let inner = Arc::new(Inner {
            addr: addr.into(),
            options,
            next_id: AtomicU64::new(1),
            current: parking_lot::Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
        });
        let conn = open(&inner).await?;
        *inner.current.lock() = Some(conn);
        Ok(Client { inner })
    }

    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// What the server announced on the current (or last) connection.
    pub fn server_info(&self) -> Option<ServerInfo> {
        self.inner.current.lock().as_ref().map(|c| c.info.clone())
    }

    async fn connection(&self) -> Result<Arc<Conn>, ClientError> {
        let current = self.inner.current.lock().clone();
        if let Some(conn) = current {
            if conn.is_open() {
                return Ok(conn);
            }
        }
        if !self.inner.options.reconnect {
            return Err(ClientError::Disconnected);
        }
        let _guard = self.inner.reconnecting.lock().await;
        // Someone else may have reconnected while we waited.
        let current = self.inner.current.lock().clone();
        if let Some(conn) = current {
            if conn.is_open() {
                return Ok(conn);
            }
        }
        let conn = open(&self.inner).await?;
        *self.inner.current.lock() = Some(conn.clone());
        Ok(conn)
    }

    /// Send one request and wait for its answer. `Response::Error` is returned as-is (not as an
    /// `Err`); the typed helpers below turn it into [`ClientError::Refused`] / [`ClientError::Server`].
    pub async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let conn = self.connection().await?;
        let permit: OwnedSemaphorePermit =
            conn.permits.clone().acquire_owned().await.map_err(|_| ClientError::Disconnected)?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let payload = protocol::encode(&request)?;
        let mut frame = BytesMut::with_capacity(protocol::FRAME_HEADER_LEN + payload.len());
        encode_frame(&mut frame, request.opcode() as u16, id, &payload);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = conn.pending.lock();
            match pending.as_mut() {
                Some(map) => {
                    map.insert(id, tx);
                }
                None => return Err(ClientError::Disconnected),
            }
        }
        if conn.frames.send(frame).is_err() {
            forget(&conn.pending, id);
            return Err(ClientError::Disconnected);
        }
        let timeout = self.inner.options.request_timeout;
        let answer = tokio::time::timeout(timeout, rx).await;
        drop(permit);
        match answer {
            Err(_) => {
                forget(&conn.pending, id);
                Err(ClientError::Timeout(timeout))
            }
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(reply)) => reply,
        }
    }

    /// Like [`Client::call`], but `Response::Error` becomes an `Err`.
    pub async fn call_ok(&self, request: Request) -> Result<Response, ClientError> {
        match self.call(request).await? {
            Response::Error(e) => Err(ClientError::from_wire(e)),
            other => Ok(other),
        }
    }

    async fn expect_done(&self, request: Request, what: &'static str) -> Result<(), ClientError> {
        match self.call_ok(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(what, &other)),
        }
    }

    /// A read answered with JSON: the server's text, unparsed.
    pub async fn call_json(&self, request: Request) -> Result<String, ClientError> {
        let what = request.opcode().name();
        match self.call_ok(request).await? {
            Response::Json(text) => Ok(text),
            other => Err(unexpected(what, &other)),
        }
    }

    async fn typed_json<T: serde::de::DeserializeOwned>(
        &self,
        request: Request,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let text = self.call_json(request).await?;
        serde_json::from_str(&text).map_err(|source| ClientError::Json { what, source })
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        match self.call_ok(Request::Ping).await? {
            Response::Pong => Ok(()),
            other => Err(unexpected("ping", &other)),
        }
    }

    /// Reserve stock. An engine refusal (insufficient stock, sold out, limit ...) is
    /// `Err(ClientError::Refused(_))`.
    pub async fn reserve(&self, request: ReserveWire) -> Result<ReservedWire, ClientError> {
        match self.call_ok(Request::Reserve(request)).await? {
            Response::Reserved(r) => Ok(r),
            other => Err(unexpected("reserve", &other)),
        }
    }

    /// Reserve many independent carts in one frame; each item is reserved or refused on its own.
    pub async fn reserve_batch(
        &self,
        requests: Vec<ReserveWire>,
    ) -> Result<Vec<Result<ReservedWire, WireError>>, ClientError> {
        match self.call_ok(Request::ReserveBatch(requests)).await? {
            Response::Batch(items) => Ok(items
                .into_iter()
                .map(|item| match item {
                    BatchItem::Reserved(r) => Ok(r),
                    BatchItem::Error(e) => Err(e),
                })
                .collect()),
            other => Err(unexpected("reserve_batch", &other)),
        }
    }

    pub async fn confirm(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(Request::Confirm { id }, "confirm").await
    }

    pub async fn release(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(Request::Release { id }, "release").await
    }

    pub async fn ship(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(Request::Ship { id }, "ship").await
    }

    pub async fn pay_balance(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(Request::PayBalance { id }, "pay_balance").await
    }

    pub async fn stock(&self, sku: SkuRef) -> Result<SkuStockView, ClientError> {
        self.typed_json(Request::GetStock { sku }, "SkuStockView").await
    }

    pub async fn reservation(&self, id: u64) -> Result<ReservationView, ClientError> {
        self.typed_json(Request::GetReservation { id }, "ReservationView").await
    }

    pub async fn campaign(&self, id: u32) -> Result<CampaignView, ClientError> {
        self.typed_json(Request::GetCampaign { id }, "CampaignView").await
    }

    pub async fn export_stock(&self) -> Result<Vec<ExportRow>, ClientError> {
        self.typed_json(Request::ExportStock, "stock export").await
    }

    /// The server's consistency audit, passed through as JSON.
    pub async fn audit(&self) -> Result<serde_json::Value, ClientError> {
        self.typed_json(Request::Audit, "audit").await
    }

    /// Interned ids for SKU codes, in order (`None` for unknown codes).
    pub async fn lookup_skus(&self, codes: Vec<String>) -> Result<Vec<Option<u32>>, ClientError> {
        match self.call_ok(Request::LookupSkus { codes }).await? {
            Response::SkuIds(ids) => Ok(ids),
            other => Err(unexpected("lookup_skus", &other)),
        }
    }

    pub async fn define_warehouse(&self, id: u16, code: &str, region: &str, priority: u16) -> Result<(), ClientError> {
        let request = Request::DefineWarehouse { id, code: code.to_owned(), region: region.to_owned(), priority };
        self.expect_done(request, "define_warehouse").await
    }

    /// Define (or update) a SKU; returns its interned id.
    pub async fn define_sku(&self, code: &str, low_stock_threshold: u32) -> Result<u32, ClientError> {
        match self.call_ok(Request::DefineSku { code: code.to_owned(), low_stock_threshold }).await? {
            Response::SkuDefined { id } => Ok(id),
            other => Err(unexpected("define_sku", &other)),
        }
    }

    /// Define a kit; returns its id when the server reports one.
    pub async fn define_kit(&self, code: &str, components: Vec<WireLine>) -> Result<Option<u32>, ClientError> {
        match self.call_ok(Request::DefineKit { code: code.to_owned(), components }).await? {
            Response::SkuDefined { id } => Ok(Some(id)),
            Response::Done => Ok(None),
            other => Err(unexpected("define_kit", &other)),
        }
    }

    pub async fn stock_op(&self, op: StockOpWire) -> Result<(), ClientError> {
        self.expect_done(Request::StockOp(op), "stock_op").await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_flash_sale(
        &self,
        id: u32,
        sku: SkuRef,
        pool_qty: u32,
        per_customer_limit: u32,
        starts_at_ms: u64,
        ends_at_ms: u64,
    ) -> Result<(), ClientError> {
        let request = Request::CreateFlashSale { id, sku, pool_qty, per_customer_limit, starts_at_ms, ends_at_ms };
        self.expect_done(request, "create_flash_sale").await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_presale(
        &self,
        id: u32,
        sku: SkuRef,
        quota: u32,
        per_customer_limit: u32,
        starts_at_ms: u64,
        ends_at_ms: u64,
        balance_window_ms: u64,
    ) -> Result<(), ClientError> {
        let request =
            Request::CreatePresale { id, sku, quota, per_customer_limit, starts_at_ms, ends_at_ms, balance_window_ms };
        self.expect_done(request, "create_presale").await
    }

    pub async fn set_channel_policy(
        &self,
        channel: u16,
        ratio_bp: u32,
        floor: u32,
        exceptions: Vec<(SkuRef, u32, u32)>,
    ) -> Result<(), ClientError> {
        self.expect_done(Request::SetChannelPolicy { channel, ratio_bp, floor, exceptions }, "set_channel_policy").await
    }
}

fn forget(pending: &Pending, id: u64) {
    if let Some(map) = pending.lock().as_mut() {
        map.remove(&id);
    }
}

fn unexpected(request: &'static str, got: &Response) -> ClientError {
    let mut got = format!("{got:?}");
    got.truncate(200);
    ClientError::UnexpectedResponse { request, got }
}

/// Connect, handshake, and start the reader and writer tasks.
async fn open(inner: &Inner) -> Result<Arc<Conn>, ClientError> {
    let addr = inner.addr.clone();
    let connect = async {
        let stream =
            TcpStream::connect(&addr).await.map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
        let _ = stream.set_nodelay(true);
        match &inner.options.tls {
            // A TCP stream splits without a lock; only the TLS path pays for tokio's split.
            None => {
                let (stream, leftover, info) = hello(inner, stream).await?;
                let (read, write) = stream.into_split();
                Ok::<_, ClientError>(start(read, write, leftover, info))
            }
            Some(tls) => {
                let stream = tls
                    .handshake(&addr, stream)
                    .await
                    .map_err(|source| ClientError::Tls { addr: addr.clone(), source })?;
                let (stream, leftover, info) = hello(inner, stream).await?;
                let (read, write) = tokio::io::split(stream);
                Ok(start(read, write, leftover, info))
            }
        }
    };
    let conn = tokio::time::timeout(inner.options.connect_timeout, connect)
        .await
        .map_err(|_| ClientError::ConnectTimeout { addr: addr.clone() })??;
    tracing::debug!(addr = %addr, server = %conn.info.server, partitions = conn.info.partitions, "connected");
    Ok(conn)
}

/// Send Hello and read `HelloOk`; returns the stream, any bytes read past the answer, and what the
/// server announced.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    inner: &Inner,
    mut stream: S,
) -> Result<(S, BytesMut, ServerInfo), ClientError> {
    let hello = Request::Hello {
        magic: HELLO_MAGIC,
        version: PROTOCOL_VERSION,
        api_key: inner.options.api_key.clone().unwrap_or_default(),
        client: inner.options.client_name.clone(),
    };
    let payload = protocol::encode(&hello)?;
    let mut frame = BytesMut::new();
    encode_frame(&mut frame, Opcode::Hello as u16, 0, &payload);
    stream.write_all(&frame).await.map_err(|_| ClientError::Disconnected)?;
    // TLS buffers writes until flushed; on plain TCP this is a no-op.
    stream.flush().await.map_err(|_| ClientError::Disconnected)?;
    let decoder = FrameDecoder { max_frame_bytes: DEFAULT_MAX_FRAME_BYTES };
    let mut buffer = BytesMut::with_capacity(4096);
    let mut scratch = AlignedVec::new();
    loop {
        match decoder.decode(&mut buffer) {
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
            Ok(Some((_header, payload))) => {
                let response = protocol::decode_response(&payload, &mut scratch)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                return match response {
                    Response::HelloOk {
                        version,
                        server,
                        partitions,
                        role,
                        max_frame_bytes,
                        max_lines,
                        max_in_flight,
                    } => {
                        let info =
                            ServerInfo { version, server, partitions, role, max_frame_bytes, max_lines, max_in_flight };
                        Ok((stream, buffer, info))
                    }
                    Response::Error(e) => Err(ClientError::Handshake(e)),
                    other => Err(unexpected("hello", &other)),
                };
            }
            Ok(None) => {
                let n = stream.read_buf(&mut buffer).await.map_err(|_| ClientError::Disconnected)?;
                if n == 0 {
                    return Err(ClientError::Disconnected);
                }
            }
        }
    }
}

fn start<R, W>(read: R, write: W, leftover: BytesMut, info: ServerInfo) -> Arc<Conn>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let pending: Pending = Arc::new(parking_lot::Mutex::new(Some(HashMap::new())));
    let (frames, queue) = mpsc::unbounded_channel();
    let max_frame = if info.max_frame_bytes == 0 { DEFAULT_MAX_FRAME_BYTES } else { info.max_frame_bytes };
    let in_flight = if info.max_in_flight == 0 { DEFAULT_MAX_IN_FLIGHT } else { info.max_in_flight };
    tokio::spawn(writer(write, queue, pending.clone()));
    tokio::spawn(reader(
        read,
        leftover,
        FrameDecoder { max_frame_bytes: max_frame.max(MAX_RESPONSE_FRAME_BYTES) },
        pending.clone(),
    ));
    Arc::new(Conn { frames, pending, permits: Arc::new(Semaphore::new(in_flight as usize)), info })
}

async fn writer<W: AsyncWrite + Unpin>(mut socket: W, mut queue: mpsc::UnboundedReceiver<BytesMut>, pending: Pending) {
    let mut out = BytesMut::with_capacity(64 * 1024);
    while let Some(frame) = queue.recv().await {
        out.extend_from_slice(&frame);
        // Coalesce whatever else is already queued into the same write.
        while out.len() < 256 * 1024 {
            match queue.try_recv() {
                Ok(frame) => out.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        // flush: TLS may hold records back until asked; on TCP it is a no-op.
        let written = match socket.write_all(&out).await {
            Ok(()) => socket.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; closing connection");
            close_pending(&pending);
            return;
        }
        out.clear();
        if pending.lock().is_none() {
            break;
        }
    }
    let _ = socket.shutdown().await;
}

async fn reader<R: AsyncRead + Unpin>(mut socket: R, mut buffer: BytesMut, decoder: FrameDecoder, pending: Pending) {
    let mut scratch = AlignedVec::new();
    'read: loop {
        loop {
            match decoder.decode(&mut buffer) {
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from server; closing connection");
                    break 'read;
                }
                Ok(None) => break,
                Ok(Some((header, payload))) => {
                    if header.opcode != Opcode::Response as u16 {
                        tracing::warn!(opcode = header.opcode, "server sent a non-response frame; closing connection");
                        break 'read;
                    }
                    let reply = protocol::decode_response(&payload, &mut scratch)
                        .map_err(|e| ClientError::Protocol(e.to_string()));
                    let waiter = pending.lock().as_mut().and_then(|map| map.remove(&header.request_id));
                    match waiter {
                        Some(waiter) => {
                            let _ = waiter.send(reply);
                        }
                        // An answer to a request id 0 is a connection-level error (the server
                        // closes next); anything else unknown is an answer to a timed-out call.
                        None => {
                            if let Ok(Response::Error(e)) = reply {
                                tracing::warn!(code = e.code, name = %e.name, message = %e.message, "server error without a waiting request");
                            }
                        }
                    }
                }
            }
        }
        match socket.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    close_pending(&pending);
}

/// Orders (docs/ORDERS.md, "Through the server"): every answer is the server's JSON view.
impl Client {
    /// Import a channel payload (one order object or a JSON array); one result per order.
    pub async fn import_orders(&self, channel: &str, payload: String) -> Result<serde_json::Value, ClientError> {
        self.typed_json(Request::OrderImport { channel: channel.to_owned(), payload }, "import results").await
    }

    pub async fn order(&self, id: u64) -> Result<oms_engine::orders::Order, ClientError> {
        self.typed_json(Request::OrderGet { id }, "Order").await
    }

    /// Orders in one status (`None`: all), oldest first; `limit` 0 means the server's default.
    pub async fn list_orders(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::orders::OrderSummary>, ClientError> {
        self.typed_json(Request::OrderList { status: status.map(str::to_owned), limit }, "order list").await
    }

    /// Any order request answered with JSON (approve, reject, cancel, waves, shipments, ...).
    pub async fn order_request(&self, request: Request) -> Result<serde_json::Value, ClientError> {
        self.typed_json(request, "order answer").await
    }

    /// The label data of a packed shipment.
    pub async fn waybill(&self, shipment: u64) -> Result<crate::orders::label::Label, ClientError> {
        self.typed_json(Request::Waybill { shipment }, "Label").await
    }

    /// A marketplace-shop or exception-desk request (`Request::Channels`): `op` and its fields.
    pub async fn channels(&self, request: serde_json::Value) -> Result<serde_json::Value, ClientError> {
        self.typed_json(Request::Channels { json: request.to_string() }, "channels answer").await
    }

    /// Send a rules file (TOML text) to the server, which parses and broadcasts it.
    pub async fn reload_rules(&self, toml: String) -> Result<serde_json::Value, ClientError> {
        self.typed_json(Request::RulesReload { toml }, "rules reload").await
    }
}
