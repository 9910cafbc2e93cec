//! One client connection: a reader that decodes and dispatches frames, and a writer that batches
//! responses into as few socket writes as possible.
//!
//! Memory per connection is bounded: the read buffer never holds more than one maximal frame plus
//! one read, and at most `max_in_flight` requests (answered or not, until written) exist at once;
//! when the cap is reached the reader stops reading, which pushes back on the client through TCP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use oms_proto::{decode_request, peek_frame, ErrorCode, FrameError, Limits, Opcode, Request, Response, ServerInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use super::auth::Identity;
use super::dispatch::is_heavy;
use super::ServerCtx;
use crate::metrics::{OpcodeLabel, ReasonLabel, RequestLabels};
use crate::runtime::Outbound;
use crate::wire_error::gateway;

/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// First read size of a connection: reads double up to `READ_CHUNK` while they fill the space
/// offered, so an idle connection holds 4 KiB instead of 64 KiB and a busy one soon reads 64 KiB.
const FIRST_READ_CHUNK: usize = 4 * 1024;
/// Responses coalesced into one socket write.
const WRITE_BATCH: usize = 512;

/// Requests whose answers can be large (up to a frame, or a whole catalog export) that may be
/// unwritten at once on one connection: the count cap alone would let 4096 of them pile up in
/// memory for a client that never reads.
const HEAVY_IN_FLIGHT: u32 = 4;

struct InFlight {
    count: AtomicU32,
    /// Heavy requests dispatched and not yet written (see [`HEAVY_IN_FLIGHT`]).
    heavy: AtomicU32,
    drained: Notify,
}

/// What ends a connection (logged with the peer, never with a credential).
#[derive(Debug, thiserror::Error)]
enum Close {
    #[error("peer closed")]
    PeerClosed,
    #[error("idle timeout")]
    Idle,
    #[error("server shutdown")]
    Shutdown,
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    #[error("bad framing: {0}")]
    Frame(FrameError),
    #[error("handshake refused: {0}")]
    Handshake(&'static str),
    #[error("no hello within the handshake timeout")]
    HandshakeTimeout,
}

impl crate::replication::FrameCredit for InFlight {
    fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }
    fn unwritten(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
    fn written(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.drained.notified())
    }
}

/// Serve a plain TCP connection. Its halves are split without a lock, so the plain path costs
/// what it did before TLS existed.
pub async fn serve_connection(ctx: Arc<ServerCtx>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + ctx.config.handshake_timeout;
    let (reader, writer) = stream.into_split();
    serve_stream(ctx, reader, writer, peer, deadline).await;
}

/// Serve a connection on a TLS port: the TLS handshake and the Hello share one deadline, so a peer
/// that opens TCP and never finishes either holds its slot for at most `handshake_timeout`.
pub async fn serve_tls_connection(
    ctx: Arc<ServerCtx>,
    acceptor: crate::tls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + ctx.config.handshake_timeout;
    let accepted = tokio::select! {
        accepted = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => accepted,
        _ = ctx.shutdown.notified() => return,
    };
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            // Typically a plain-TCP client on the TLS port, or a client that does not trust us.
            ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "tls_handshake" }).inc();
            tracing::warn!(%peer, error = %e, "TLS handshake failed; closing connection");
            return;
        }
        Err(_) => {
            ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "handshake_timeout" }).inc();
            tracing::warn!(%peer, timeout = ?ctx.config.handshake_timeout, "TLS handshake not completed in time; closing connection");
            return;
        }
    };
    let (reader, writer) = tokio::io::split(stream);
    serve_stream(ctx, reader, writer, peer, deadline).await;
}

async fn serve_stream<R, W>(
    ctx: Arc<ServerCtx>,
    mut reader: R,
    writer: W,
    peer: SocketAddr,
    handshake_deadline: tokio::time::Instant,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Outbound>();
    let in_flight = Arc::new(InFlight { count: AtomicU32::new(0), heavy: AtomicU32::new(0), drained: Notify::new() });
    let writer_task = tokio::spawn(write_loop(writer, rx, in_flight.clone(), ctx.clone()));
    let limits = Limits {
        max_frame_bytes: ctx.config.max_frame_bytes,
        max_lines: ctx.config.max_lines as u32,
        max_batch: oms_proto::MAX_BATCH,
    };
    let max_in_flight = ctx.config.max_in_flight;
    let mut buffer = BytesMut::new();
    let mut chunk = FIRST_READ_CHUNK;
    let mut identity: Option<Identity> = None;
    // Requests refused without closing the connection: counted per reason, logged once.
    let mut refused_requests: u64 = 0;

    let close = 'conn: loop {
        loop {
            let span = match peek_frame(&buffer, limits.max_frame_bytes) {
                Ok(Some(span)) => span,
                Ok(None) => break,
                Err(e) => {
                    let reason = match e {
                        FrameError::TooLarge { .. } => "frame_too_large",
                        _ => "bad_frame",
                    };
                    ctx.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
                    send(&tx, 0, 0, Response::Error(gateway(e.code(), e.to_string())), &in_flight);
                    break 'conn Close::Frame(e);
                }
            };
            let header = span.header;
            let started = Instant::now();
            // Decoded in place: the request borrows `buffer` until the frame is dropped below.
            let decoded = decode_request(&header, span.payload(&buffer), &limits);
            let verdict = match decoded {
                Ok(request) => {
                    serve_request(
                        &ctx,
                        request,
                        header.request_id,
                        started,
                        peer,
                        &tx,
                        &in_flight,
                        &mut identity,
                        &mut refused_requests,
                    )
                    .await
                }
                Err(e) => {
                    let reason = if e.code() == ErrorCode::UNKNOWN_OPCODE { "unknown_opcode" } else { "bad_request" };
                    send(
                        &tx,
                        header.request_id,
                        header.opcode,
                        Response::Error(gateway_or_engine(e.code(), e.to_string())),
                        &in_flight,
                    );
                    note_refused(&ctx, peer, &mut refused_requests, reason);
                    if identity.is_none() {
                        Verdict::Close(Close::Handshake(if reason == "unknown_opcode" {
                            "unknown opcode before hello"
                        } else {
                            "malformed hello"
                        }))
                    } else {
                        Verdict::Continue
                    }
                }
            };
            buffer.advance(span.total);
            if let Verdict::Close(close) = verdict {
                break 'conn close;
            }
        }

        // Backpressure: wait for the writer before reading more.
        while in_flight.count.load(Ordering::Acquire) >= max_in_flight {
            let drained = in_flight.drained.notified();
            if in_flight.count.load(Ordering::Acquire) < max_in_flight {
                break;
            }
            tokio::select! {
                _ = drained => {}
                _ = tx.closed() => break 'conn Close::PeerClosed,
            }
        }
        buffer.reserve(chunk);
        let offered = buffer.capacity() - buffer.len();
        // Before the Hello the wait is bounded by the handshake deadline too: a slowloris that
        // never completes a Hello must not keep a connection slot for the idle timeout.
        let mut wait = ctx.config.idle_timeout;
        if identity.is_none() {
            wait = wait.min(handshake_deadline.saturating_duration_since(tokio::time::Instant::now()));
        }
        let read = tokio::select! {
            read = tokio::time::timeout(wait, reader.read_buf(&mut buffer)) => read,
            _ = ctx.shutdown.notified() => break 'conn Close::Shutdown,
        };
        match read {
            Err(_) if identity.is_none() => {
                ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "handshake_timeout" }).inc();
                break Close::HandshakeTimeout;
            }
            Err(_) => break Close::Idle,
            Ok(Ok(0)) => break Close::PeerClosed,
            Ok(Ok(n)) => {
                if n >= offered {
                    chunk = (chunk * 2).min(READ_CHUNK);
                }
            }
            Ok(Err(e)) => break Close::Io(e),
        }
    };
    if refused_requests > 1 {
        tracing::warn!(%peer, refused_requests, "connection refused several requests");
    }
    match &close {
        Close::PeerClosed | Close::Shutdown => tracing::debug!(%peer, reason = %close, "connection closed"),
        Close::Idle => tracing::info!(%peer, "closing idle connection"),
        _ => tracing::warn!(%peer, reason = %close, "closing connection"),
    }
    ctx.replication.acks.forget(peer);
    // Let the writer finish what is in flight (bounded), then close.
    drop(tx);
    let drain = ctx.config.idle_timeout.min(std::time::Duration::from_secs(10));
    let _ = tokio::time::timeout(drain, writer_task).await;
}

/// Count a request refused by the gateway (the connection may continue). Only the first one per
/// connection is logged, so a flood of malformed frames cannot flood the log; the count is
/// reported when the connection closes.
fn note_refused(ctx: &ServerCtx, peer: SocketAddr, refused_requests: &mut u64, reason: &'static str) {
    ctx.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
    if *refused_requests == 0 {
        tracing::warn!(%peer, reason, "request refused (further refusals on this connection are counted, not logged)");
    }
    *refused_requests += 1;
}

/// A refusal's wire error: a gateway code, or (for limits the decoder enforces, such as
/// `too_many_lines`) the engine refusal with the same number.
fn gateway_or_engine(code: ErrorCode, message: String) -> oms_proto::WireError {
    oms_proto::WireError::new(code, message)
}

fn send(tx: &mpsc::UnboundedSender<Outbound>, request_id: u64, opcode: u16, response: Response, in_flight: &InFlight) {
    in_flight.count.fetch_add(1, Ordering::AcqRel);
    // Immediate refusals never took a heavy slot, so they do not give one back in the writer.
    let _ = tx.send(Outbound { request_id, opcode, heavy: false, started: Instant::now(), response });
}

/// What the connection does after a request.
enum Verdict {
    Continue,
    Close(Close),
}

/// One decoded request: the handshake, access control, the connection-level requests
/// (subscriptions, replica acks), backpressure for heavy answers, then dispatch.
#[allow(clippy::too_many_arguments)]
async fn serve_request(
    ctx: &Arc<ServerCtx>,
    request: Request<'_>,
    request_id: u64,
    started: Instant,
    peer: SocketAddr,
    tx: &mpsc::UnboundedSender<Outbound>,
    in_flight: &Arc<InFlight>,
    identity: &mut Option<Identity>,
    refused_requests: &mut u64,
) -> Verdict {
    let opcode = request.opcode();
    let Some(who) = identity.as_ref() else {
        return match handshake(ctx, request, peer) {
            Ok((who, response)) => {
                tracing::debug!(%peer, client = %who.name, role = who.role.name(), "client authenticated");
                *identity = Some(who);
                send(tx, request_id, opcode as u16, response, in_flight);
                Verdict::Continue
            }
            Err((reason, error)) => {
                ctx.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
                tracing::warn!(%peer, reason, "handshake refused");
                send(tx, request_id, opcode as u16, Response::Error(*error), in_flight);
                Verdict::Close(Close::Handshake(reason))
            }
        };
    };
    if let Err(error) = ctx.authorize(who, opcode, peer) {
        send(tx, request_id, opcode as u16, Response::Error(error), in_flight);
        return Verdict::Continue;
    }
    if let Request::ReplicaAck { partition, durable_lsn } = request {
        // A follower's progress report on its subscription connection: never answered (not even while
        // shutting down: an error frame would stop the follower instead of letting it reconnect).
        crate::replication::on_replica_ack(ctx, peer, partition, durable_lsn);
        return Verdict::Continue;
    }
    if ctx.shutting_down.load(Ordering::Acquire) {
        send(
            tx,
            request_id,
            opcode as u16,
            Response::Error(gateway(ErrorCode::SHUTTING_DOWN, "shutting down")),
            in_flight,
        );
        return Verdict::Continue;
    }
    if let Request::Subscribe(subscribe) = request {
        // A long-lived stream of frames with this request id (docs/REPLICATION.md).
        let stream = crate::replication::StreamTx::new(tx.clone(), request_id, in_flight.clone());
        crate::replication::spawn_subscription(
            ctx.clone(),
            subscribe.partition,
            subscribe.from_lsn,
            subscribe.bootstrap,
            stream,
        );
        return Verdict::Continue;
    }
    let _ = refused_requests;
    if is_heavy(opcode) {
        while in_flight.heavy.load(Ordering::Acquire) >= HEAVY_IN_FLIGHT {
            let drained = in_flight.drained.notified();
            if in_flight.heavy.load(Ordering::Acquire) < HEAVY_IN_FLIGHT {
                break;
            }
            tokio::select! {
                _ = drained => {}
                _ = tx.closed() => return Verdict::Close(Close::PeerClosed),
            }
        }
        in_flight.heavy.fetch_add(1, Ordering::AcqRel);
    }
    in_flight.count.fetch_add(1, Ordering::AcqRel);
    ctx.dispatch(request, request_id, started, tx, &who.scope);
    Verdict::Continue
}

fn handshake(
    ctx: &ServerCtx,
    request: Request<'_>,
    peer: SocketAddr,
) -> Result<(Identity, Response), (&'static str, Box<oms_proto::WireError>)> {
    let Request::Hello(hello) = request else {
        return Err(("no_hello", Box::new(gateway(ErrorCode::UNAUTHENTICATED, "the first frame must be hello"))));
    };
    if let Err((code, message)) = hello.check() {
        let reason = if code == ErrorCode::BAD_FRAME { "bad_magic" } else { "unsupported_version" };
        return Err((reason, Box::new(gateway(code, message))));
    }
    let who = ctx.auth.authenticate(hello.api_key, peer).map_err(|e| {
        let reason = match e {
            super::AuthError::InvalidKey => "invalid_key",
            super::AuthError::NotLoopback => "not_loopback",
        };
        (reason, Box::new(gateway(ErrorCode::UNAUTHENTICATED, e.to_string())))
    })?;
    let who = Identity {
        name: if hello.client.is_empty() { who.name } else { format!("{} ({})", who.name, hello.client) },
        role: who.role,
        scope: who.scope,
    };
    let response = Response::HelloOk(ServerInfo {
        version: oms_proto::PROTOCOL_VERSION,
        role: who.role,
        partitions: ctx.workers.partitions(),
        max_frame_bytes: ctx.config.max_frame_bytes,
        max_lines: ctx.config.max_lines as u32,
        max_in_flight: ctx.config.max_in_flight,
        max_batch: oms_proto::MAX_BATCH,
        features: 0,
        server: format!("omsd {}", env!("CARGO_PKG_VERSION")),
    });
    Ok((who, response))
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    in_flight: Arc<InFlight>,
    ctx: Arc<ServerCtx>,
) {
    // Allocated on the first answer, not at accept: idle connections are cheap.
    let mut out = BytesMut::new();
    let mut batch = Vec::new();
    let mut metrics = ResponseMetrics::new(&ctx.metrics);
    loop {
        let count = rx.recv_many(&mut batch, WRITE_BATCH).await;
        if count == 0 {
            break;
        }
        out.clear();
        let heavy = batch.iter().filter(|o| o.heavy).count() as u32;
        for o in batch.drain(..) {
            let outcome = match &o.response {
                Response::Error(e) => outcome_label(&e.name),
                _ => "ok",
            };
            if let Err(e) = o.response.encode(o.opcode, o.request_id, &mut out) {
                // A bug (an answer over a protocol limit): answer `internal` rather than nothing.
                tracing::error!(error = %e, opcode = o.opcode, "cannot encode a response");
                let internal =
                    Response::Error(gateway(ErrorCode::INTERNAL, format!("the answer could not be encoded: {e}")));
                let _ = internal.encode(o.opcode, o.request_id, &mut out);
            }
            if let Some(opcode) = Opcode::from_u16(o.opcode) {
                metrics.record(opcode, outcome, o.started.elapsed().as_secs_f64());
            }
        }
        // flush: TLS may hold records back until asked; on TCP it is a no-op.
        let written = match writer.write_all(&out).await {
            Ok(()) => writer.flush().await,
            Err(e) => Err(e),
        };
        // Written (or undeliverable) responses no longer count against the in-flight cap.
        in_flight.count.fetch_sub(count as u32, Ordering::AcqRel);
        if heavy > 0 {
            in_flight.heavy.fetch_sub(heavy, Ordering::AcqRel);
        }
        in_flight.drained.notify_waiters();
        // One huge answer must not pin its buffer for the connection's life.
        if out.capacity() > 4 * READ_CHUNK {
            out = BytesMut::with_capacity(READ_CHUNK);
        }
        if written.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

/// One writer's handles to the response metrics, so a response neither hashes a label set nor
/// takes a metric family's lock; the handles share the registry's atomics.
struct ResponseMetrics<'a> {
    metrics: &'a crate::metrics::Metrics,
    counters: Vec<(Opcode, &'static str, prometheus_client::metrics::counter::Counter)>,
    latency: Vec<(Opcode, prometheus_client::metrics::histogram::Histogram)>,
}

impl<'a> ResponseMetrics<'a> {
    fn new(metrics: &'a crate::metrics::Metrics) -> Self {
        ResponseMetrics { metrics, counters: Vec::new(), latency: Vec::new() }
    }

    fn record(&mut self, opcode: Opcode, outcome: &'static str, seconds: f64) {
        match self.counters.iter().find(|(op, out, _)| *op == opcode && *out == outcome) {
            Some((_, _, counter)) => {
                counter.inc();
            }
            None => {
                let counter =
                    self.metrics.requests.get_or_create(&RequestLabels { opcode: opcode.name(), outcome }).clone();
                counter.inc();
                self.counters.push((opcode, outcome, counter));
            }
        }
        match self.latency.iter().find(|(op, _)| *op == opcode) {
            Some((_, histogram)) => histogram.observe(seconds),
            None => {
                let histogram = self.metrics.latency.get_or_create(&OpcodeLabel { opcode: opcode.name() }).clone();
                histogram.observe(seconds);
                self.latency.push((opcode, histogram));
            }
        }
    }
}

/// Outcome labels come from a fixed set of error names; map them to static strings.
pub(crate) fn outcome_label(name: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "insufficient_stock",
        "sold_out",
        "limit_exceeded",
        "unknown_sku",
        "unknown_reservation",
        "reservation_expired",
        "busy",
        "storage_failed",
        "forbidden",
        "bad_request",
        "channel_limit",
        "campaign_not_open",
        "invalid_reservation_state",
        "duplicate_line",
        "too_many_lines",
        "zero_quantity",
    ];
    KNOWN.iter().find(|k| **k == name).copied().unwrap_or("error")
}
