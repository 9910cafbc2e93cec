//! The pipelined client.
//!
//! One [`Client`] owns at most one connection at a time and pipelines requests over it: a writer
//! task drains a queue of encoded frames (coalescing them into few writes), a reader task splits
//! response frames and completes the matching caller through a pending map keyed by request id.
//! Any number of tasks may share one `Client` (it is `Clone + Send + Sync`) and have requests in
//! flight at once, up to the server's `max_in_flight`; answers may arrive out of order.
//!
//! Failure model: when the connection drops, every call in flight fails with
//! [`ClientError::Disconnected`] and is **never** retried (a reserve may have been applied; retry
//! it with the same idempotency key). The next call opens a new connection (and handshakes again)
//! if [`ClientOptions::reconnect`] is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use oms_proto::json::{
    CampaignView, CreateFlashSale, CreatePresale, DefineKit, DefineSku, DefineWarehouse, DefinedSku, ExportRow,
    JsonLine, LookupAnswer, LookupSkus, SetChannelPolicy, StockOp,
};
use oms_proto::{
    decode_response, peek_frame, Batch, BatchItem, JsonRequest, Line, Request, ReservationView, Reserve, Reserved,
    Response, ServerInfo, SkuRef, StockView, WireError, MAX_RESPONSE_FRAME_BYTES,
};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::connection::{unexpected, ConnectOptions, Connection};
use crate::error::ClientError;
use crate::stream::{MaybeTls, TlsSettings};

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
    /// Speak TLS to the server (`tls` feature, [`crate::tls::ClientTls`]); `None`: plain TCP.
    pub tls: Option<TlsSettings>,
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

impl ClientOptions {
    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            api_key: self.api_key.clone(),
            client_name: self.client_name.clone(),
            connect_timeout: self.connect_timeout,
            tls: self.tls.clone(),
        }
    }
}

type Reply = Result<Response, ClientError>;
/// `None` once the connection is closed: nothing may be added after that.
type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the pending map cannot leave it half-updated (single inserts and
    // removals), so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Conn {
    frames: mpsc::UnboundedSender<BytesMut>,
    pending: Pending,
    permits: Arc<Semaphore>,
    info: ServerInfo,
}

impl Conn {
    fn is_open(&self) -> bool {
        lock(&self.pending).is_some() && !self.frames.is_closed()
    }
}

fn close_pending(pending: &Pending) {
    let drained = lock(pending).take();
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
    current: Mutex<Option<Arc<Conn>>>,
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
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
        });
        let conn = open(&inner).await?;
        *lock(&inner.current) = Some(conn);
        Ok(Client { inner })
    }

    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// What the server announced on the current (or last) connection.
    pub fn server_info(&self) -> Option<ServerInfo> {
        lock(&self.inner.current).as_ref().map(|c| c.info.clone())
    }

    async fn connection(&self) -> Result<Arc<Conn>, ClientError> {
        let current = lock(&self.inner.current).clone();
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
        let current = lock(&self.inner.current).clone();
        if let Some(conn) = current {
            if conn.is_open() {
                return Ok(conn);
            }
        }
        let conn = open(&self.inner).await?;
        *lock(&self.inner.current) = Some(conn.clone());
        Ok(conn)
    }

    /// Send one request and wait for its answer. An error answer is returned as
    /// `Ok(Response::Error(_))`; the typed helpers turn it into [`ClientError::Refused`] /
    /// [`ClientError::Server`]. A request above the server's `max_frame_bytes` is refused before
    /// anything is sent ([`ClientError::Encode`]).
    pub async fn call(&self, request: &Request<'_>) -> Result<Response, ClientError> {
        let conn = self.connection().await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::new();
        let size = request.encode(id, &mut frame)?;
        if size > conn.info.max_frame_bytes as usize {
            return Err(oms_proto::EncodeError::FrameTooLarge { len: size, limit: conn.info.max_frame_bytes }.into());
        }
        let permit: OwnedSemaphorePermit =
            conn.permits.clone().acquire_owned().await.map_err(|_| ClientError::Disconnected)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&conn.pending);
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

    /// Like [`Client::call`], but an error answer becomes an `Err`.
    pub async fn call_ok(&self, request: &Request<'_>) -> Result<Response, ClientError> {
        match self.call(request).await? {
            Response::Error(e) => Err(ClientError::from_wire(e)),
            other => Ok(other),
        }
    }

    async fn expect_done(&self, request: &Request<'_>) -> Result<(), ClientError> {
        match self.call_ok(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(request.opcode().name(), &other)),
        }
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        self.expect_done(&Request::Ping).await
    }

    /// Reserve stock. An engine refusal (insufficient stock, sold out, limit ...) is
    /// `Err(ClientError::Refused(_))` carrying the facts (`available`, the SKU code).
    pub async fn reserve(&self, reserve: &Reserve<'_>) -> Result<Reserved, ClientError> {
        match self.call_ok(&Request::Reserve(*reserve)).await? {
            Response::Reserved(r) => Ok(r),
            other => Err(unexpected("reserve", &other)),
        }
    }

    /// Reserve many independent carts in one frame; each is reserved or refused on its own.
    #[allow(clippy::result_large_err)] // one refusal per cart, as the server sent it
    pub async fn reserve_batch(&self, carts: &[Reserve<'_>]) -> Result<Vec<Result<Reserved, WireError>>, ClientError> {
        match self.call_ok(&Request::ReserveBatch(Batch::Slice(carts))).await? {
            Response::Batch(items) => Ok(items
                .into_iter()
                .map(|item| match item {
                    BatchItem::Reserved(r) => Ok(r),
                    BatchItem::Refused(e) => Err(e),
                })
                .collect()),
            other => Err(unexpected("reserve_batch", &other)),
        }
    }

    pub async fn confirm(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(&Request::Confirm { id }).await
    }

    pub async fn release(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(&Request::Release { id }).await
    }

    pub async fn ship(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(&Request::Ship { id }).await
    }

    pub async fn pay_balance(&self, id: u64) -> Result<(), ClientError> {
        self.expect_done(&Request::PayBalance { id }).await
    }

    pub async fn stock(&self, sku: SkuRef<'_>) -> Result<StockView, ClientError> {
        match self.call_ok(&Request::GetStock { sku }).await? {
            Response::Stock(view) => Ok(view),
            other => Err(unexpected("get_stock", &other)),
        }
    }

    pub async fn reservation(&self, id: u64) -> Result<ReservationView, ClientError> {
        match self.call_ok(&Request::GetReservation { id }).await? {
            Response::Reservation(view) => Ok(view),
            other => Err(unexpected("get_reservation", &other)),
        }
    }

    /// A JSON-bodied operation: the server's answer as text.
    pub async fn json_text(&self, request: &JsonRequest) -> Result<String, ClientError> {
        let body = request.body()?;
        let wire = Request::Json { opcode: request.opcode(), body: &body };
        match self.call_ok(&wire).await? {
            Response::Json(text) => Ok(text),
            other => Err(unexpected(request.opcode().name(), &other)),
        }
    }

    /// A JSON-bodied operation: the server's answer as a JSON value.
    pub async fn json(&self, request: &JsonRequest) -> Result<serde_json::Value, ClientError> {
        self.json_as(request, "JSON answer").await
    }

    /// A JSON-bodied operation: the server's answer parsed as `T`.
    pub async fn json_as<T: DeserializeOwned>(
        &self,
        request: &JsonRequest,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let text = self.json_text(request).await?;
        serde_json::from_str(&text).map_err(|source| ClientError::Json { what, source })
    }

    pub async fn campaign(&self, id: u32) -> Result<CampaignView, ClientError> {
        self.json_as(&JsonRequest::GetCampaign(oms_proto::json::GetCampaign { id }), "campaign").await
    }

    pub async fn export_stock(&self) -> Result<Vec<ExportRow>, ClientError> {
        self.json_as(&JsonRequest::ExportStock, "stock export").await
    }

    /// The server's consistency audit, as JSON.
    pub async fn audit(&self) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::Audit).await
    }

    /// Interned ids for SKU codes, in order (`None` for unknown codes).
    pub async fn lookup_skus(&self, codes: Vec<String>) -> Result<Vec<Option<u32>>, ClientError> {
        let answer: LookupAnswer = self.json_as(&JsonRequest::LookupSkus(LookupSkus { codes }), "lookup").await?;
        Ok(answer.ids)
    }

    pub async fn define_warehouse(&self, id: u16, code: &str, region: &str, priority: u16) -> Result<(), ClientError> {
        let request = JsonRequest::DefineWarehouse(DefineWarehouse {
            id,
            code: code.to_owned(),
            region: region.to_owned(),
            priority,
        });
        self.json(&request).await.map(|_| ())
    }

    /// Define (or update) a SKU; returns its id.
    pub async fn define_sku(&self, code: &str, low_stock_threshold: u32) -> Result<u32, ClientError> {
        let request = JsonRequest::DefineSku(DefineSku { code: code.to_owned(), low_stock_threshold });
        let defined: DefinedSku = self.json_as(&request, "defined SKU").await?;
        Ok(defined.id)
    }

    /// Define a kit; returns its id.
    pub async fn define_kit(&self, code: &str, components: Vec<JsonLine>) -> Result<u32, ClientError> {
        let request = JsonRequest::DefineKit(DefineKit { code: code.to_owned(), components });
        let defined: DefinedSku = self.json_as(&request, "defined kit").await?;
        Ok(defined.id)
    }

    pub async fn stock_op(&self, op: StockOp) -> Result<(), ClientError> {
        self.json(&JsonRequest::StockOp(op)).await.map(|_| ())
    }

    pub async fn create_flash_sale(&self, spec: CreateFlashSale) -> Result<(), ClientError> {
        self.json(&JsonRequest::CreateFlashSale(spec)).await.map(|_| ())
    }

    pub async fn create_presale(&self, spec: CreatePresale) -> Result<(), ClientError> {
        self.json(&JsonRequest::CreatePresale(spec)).await.map(|_| ())
    }

    pub async fn set_channel_policy(&self, policy: SetChannelPolicy) -> Result<(), ClientError> {
        self.json(&JsonRequest::SetChannelPolicy(policy)).await.map(|_| ())
    }
}

/// An owned reservation request, for code that builds carts from its own data and sends them from
/// tasks (the protocol's [`Reserve`] borrows its lines).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cart {
    /// (SKU code, units).
    pub lines: Vec<(String, u32)>,
    pub ttl_ms: u64,
    /// Empty for none.
    pub idempotency_key: String,
    pub customer: u64,
    pub channel: u16,
    pub campaign: Option<u32>,
}

impl Cart {
    /// An empty cart held for `ttl_ms` once reserved.
    pub fn new(ttl_ms: u64) -> Cart {
        Cart { ttl_ms, ..Cart::default() }
    }

    pub fn line(mut self, sku: &str, qty: u32) -> Cart {
        self.lines.push((sku.to_owned(), qty));
        self
    }

    pub fn key(mut self, idempotency_key: &str) -> Cart {
        self.idempotency_key = idempotency_key.to_owned();
        self
    }

    pub fn customer(mut self, customer: u64) -> Cart {
        self.customer = customer;
        self
    }

    pub fn channel(mut self, channel: u16) -> Cart {
        self.channel = channel;
        self
    }

    pub fn campaign(mut self, campaign: Option<u32>) -> Cart {
        self.campaign = campaign;
        self
    }

    fn lines(&self) -> Vec<Line<'_>> {
        self.lines.iter().map(|(sku, qty)| Line::code(sku, *qty)).collect()
    }

    fn reserve<'a>(&'a self, lines: &'a [Line<'a>]) -> Reserve<'a> {
        Reserve::new(lines, self.ttl_ms)
            .key(&self.idempotency_key)
            .customer(self.customer)
            .channel(self.channel)
            .campaign(self.campaign)
    }
}

impl Client {
    /// [`Client::reserve`] for an owned cart.
    pub async fn reserve_cart(&self, cart: &Cart) -> Result<Reserved, ClientError> {
        let lines = cart.lines();
        self.reserve(&cart.reserve(&lines)).await
    }

    /// [`Client::reserve_batch`] for owned carts.
    #[allow(clippy::result_large_err)] // one refusal per cart, as the server sent it
    pub async fn reserve_carts(&self, carts: &[Cart]) -> Result<Vec<Result<Reserved, WireError>>, ClientError> {
        let lines: Vec<Vec<Line<'_>>> = carts.iter().map(Cart::lines).collect();
        let reserves: Vec<Reserve<'_>> = carts.iter().zip(&lines).map(|(c, l)| c.reserve(l)).collect();
        self.reserve_batch(&reserves).await
    }

    /// Set the counted on-hand of a SKU in a warehouse (by code or id: `"SH"` or `"1"`).
    pub async fn set_on_hand(&self, sku: &str, warehouse: &str, on_hand: u64) -> Result<(), ClientError> {
        let warehouse = match warehouse.parse::<u16>() {
            Ok(id) => oms_proto::json::WarehouseKey::Id(id),
            Err(_) => oms_proto::json::WarehouseKey::Code(warehouse.to_owned()),
        };
        self.stock_op(StockOp::SetOnHand { sku: sku.into(), warehouse, on_hand }).await
    }
}

/// Orders (docs/ORDERS.md): every answer is the server's JSON view.
impl Client {
    /// Import a channel payload (one order object or a JSON array, as JSON text); one result per
    /// order.
    pub async fn import_orders(&self, channel: &str, payload: String) -> Result<serde_json::Value, ClientError> {
        let request = JsonRequest::OrderImport(oms_proto::json::OrderImport { channel: channel.to_owned(), payload });
        self.json(&request).await
    }

    pub async fn order(&self, id: u64) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::OrderGet(oms_proto::json::IdBody { id })).await
    }

    /// Orders in one status (`None`: all), oldest first; `limit` 0 means the server's default.
    pub async fn list_orders(&self, status: Option<&str>, limit: u32) -> Result<Vec<serde_json::Value>, ClientError> {
        let request = JsonRequest::OrderList(oms_proto::json::OrderList { status: status.map(str::to_owned), limit });
        self.json_as(&request, "order list").await
    }

    /// One page of orders matching the filters in `page` (newest first unless `oldest_first`):
    /// `{"orders": [...], "next": cursor or null}`; pass `next` as `cursor` for the next page.
    pub async fn order_page(&self, page: oms_proto::json::OrderPage) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::OrderPage(page)).await
    }

    /// Put an approved order on hold (an operator's hold, filed under the rule `manual`).
    pub async fn hold_order(&self, id: u64, reason: &str) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::OrderHold(oms_proto::json::OrderReason { id, reason: reason.to_owned() })).await
    }

    /// Release an operator's hold; the order is approved again and allocated.
    pub async fn unhold_order(&self, id: u64, reason: &str) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::OrderUnhold(oms_proto::json::OrderReason { id, reason: reason.to_owned() })).await
    }

    /// Record units of a SKU scanned for a wave; answers the wave (a SKU not on the list or more
    /// than it asks for is refused: wrong_sku, over_pick).
    pub async fn scan_pick(&self, wave: u64, sku: &str, qty: u32) -> Result<serde_json::Value, ClientError> {
        let body = oms_proto::json::WaveScan { wave, sku: sku.into(), qty };
        self.json(&JsonRequest::WaveScan(body)).await
    }

    /// A supervisor releases a wave for packing without a complete scan (logged with who and why).
    pub async fn override_pick(
        &self,
        wave: u64,
        supervisor: &str,
        reason: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let body = oms_proto::json::WaveOverride { wave, supervisor: supervisor.to_owned(), reason: reason.to_owned() };
        self.json(&JsonRequest::WaveOverride(body)).await
    }

    /// The label data of a packed shipment.
    pub async fn waybill(&self, shipment: u64) -> Result<oms_proto::json::Label, ClientError> {
        self.json_as(&JsonRequest::Waybill(oms_proto::json::ShipmentBody { shipment }), "label").await
    }

    /// Send a rules file (TOML text) to the server, which parses and broadcasts it.
    pub async fn reload_rules(&self, toml: String) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::RulesReload(oms_proto::json::RulesReload { toml })).await
    }

    /// The exception desk: open exceptions of every order, oldest first (`limit` 0: the server's
    /// default and maximum), as `{"exceptions": [...]}`.
    pub async fn order_exceptions(&self, limit: u32) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::OrderExceptions(oms_proto::json::OrderExceptions { limit })).await
    }

    /// Mark exception `index` of order `id` as dealt with; answers the order's exception list.
    pub async fn resolve_exception(&self, id: u64, index: u32) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::OrderResolve(oms_proto::json::OrderResolve { id, index })).await
    }
}

/// Marketplace shops (docs/CHANNELS.md): every answer is the server's JSON view.
impl Client {
    /// The configured shops, as `{"shops": [...]}`.
    pub async fn shop_list(&self) -> Result<serde_json::Value, ClientError> {
        self.json(&JsonRequest::ShopList).await
    }

    /// One shop's state (`None`: every shop), as `{"shops": [...]}`.
    pub async fn shop_status(&self, shop: Option<&str>) -> Result<serde_json::Value, ClientError> {
        let body = oms_proto::json::ShopBody { shop: shop.map(str::to_owned) };
        self.json(&JsonRequest::ShopStatus(body)).await
    }

    /// A full stock sync and an order pull now, for one shop (`None`: every shop); answers
    /// `{"synced": [shop ids]}`.
    pub async fn shop_sync(&self, shop: Option<&str>) -> Result<serde_json::Value, ClientError> {
        let body = oms_proto::json::ShopBody { shop: shop.map(str::to_owned) };
        self.json(&JsonRequest::ShopSync(body)).await
    }
}

fn forget(pending: &Pending, id: u64) {
    if let Some(map) = lock(pending).as_mut() {
        map.remove(&id);
    }
}

/// Connect, handshake, and start the reader and writer tasks.
async fn open(inner: &Inner) -> Result<Arc<Conn>, ClientError> {
    let connection = Connection::open(&inner.addr, &inner.options.connect_options()).await?;
    let (stream, leftover, info) = connection.into_parts();
    tracing::debug!(addr = %inner.addr, server = %info.server, partitions = info.partitions, "connected");
    Ok(match stream {
        // A TCP stream splits without a lock; only the TLS path pays for tokio's split.
        MaybeTls::Plain(tcp) => {
            let (read, write) = tcp.into_split();
            start(read, write, leftover, info)
        }
        #[cfg(feature = "tls")]
        tls @ MaybeTls::Tls(_) => {
            let (read, write) = tokio::io::split(tls);
            start(read, write, leftover, info)
        }
    })
}

fn start<R, W>(read: R, write: W, leftover: BytesMut, info: ServerInfo) -> Arc<Conn>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
    let (frames, queue) = mpsc::unbounded_channel();
    let in_flight = info.max_in_flight.max(1);
    tokio::spawn(writer(write, queue, pending.clone()));
    tokio::spawn(reader(read, leftover, pending.clone()));
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
        if lock(&pending).is_none() {
            break;
        }
    }
    let _ = socket.shutdown().await;
}

async fn reader<R: AsyncRead + Unpin>(mut socket: R, mut buffer: BytesMut, pending: Pending) {
    'read: loop {
        loop {
            let span = match peek_frame(&buffer, MAX_RESPONSE_FRAME_BYTES) {
                Ok(Some(span)) => span,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from server; closing connection");
                    break 'read;
                }
            };
            let reply = decode_response(&span.header, span.payload(&buffer)).map_err(ClientError::Decode);
            buffer.advance(span.total);
            let waiter = lock(&pending).as_mut().and_then(|map| map.remove(&span.header.request_id));
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(reply);
                }
                // An answer to request id 0 is a connection-level error (the server closes
                // next); anything else unknown is an answer to a timed-out call.
                None => {
                    if let Ok(Response::Error(e)) = reply {
                        tracing::warn!(code = e.code.0, name = %e.name, message = %e.message, "server error without a waiting request");
                    }
                }
            }
        }
        buffer.reserve(64 * 1024);
        match socket.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    close_pending(&pending);
}
