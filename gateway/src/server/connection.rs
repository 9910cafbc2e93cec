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

use bytes::BytesMut;
use rkyv::util::AlignedVec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use super::auth::Identity;
use super::ServerCtx;
use crate::metrics::{OpcodeLabel, ReasonLabel, RequestLabels};
use crate::protocol::{
    self, encode_frame, FrameDecoder, FrameError, Opcode, Request, Response, HELLO_MAGIC, PROTOCOL_VERSION,
};
use crate::runtime::Outbound;
use crate::wire_error::GatewayCode;

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

fn is_heavy(opcode: Opcode) -> bool {
    matches!(opcode, Opcode::LookupSkus | Opcode::ExportStock | Opcode::Audit | Opcode::ReserveBatch)
}

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
    let decoder = FrameDecoder { max_frame_bytes: ctx.config.max_frame_bytes };
    let max_in_flight = ctx.config.max_in_flight;
    let mut buffer = BytesMut::new();
    let mut chunk = FIRST_READ_CHUNK;
    let mut scratch = AlignedVec::new();
    let mut identity: Option<Identity> = None;
    // Requests refused without closing the connection: counted per reason, logged once.
    let mut refused_requests: u64 = 0;

    let close = 'conn: loop {
        loop {
            let (header, payload) = match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let (code, reason) = match e {
                        FrameError::TooLarge { .. } => (GatewayCode::FrameTooLarge, "frame_too_large"),
                        _ => (GatewayCode::BadFrame, "bad_frame"),
                    };
                    ctx.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
                    send(&tx, 0, Opcode::Response, Response::Error(code.error(e.to_string())), &in_flight);
                    break 'conn Close::Frame(e);
                }
            };
            let started = Instant::now();
            let Some(opcode) = Opcode::from_u16(header.opcode) else {
                let error = GatewayCode::UnknownOpcode.error(format!("unknown opcode {}", header.opcode));
                send(&tx, header.request_id, Opcode::Response, Response::Error(error), &in_flight);
                note_refused(&ctx, peer, &mut refused_requests, "unknown_opcode");
                if identity.is_none() {
                    break 'conn Close::Handshake("unknown opcode before hello");
                }
                continue;
            };
            let request = match protocol::decode_request(&payload, &mut scratch) {
                Ok(r) if r.opcode() == opcode => r,
                Ok(_) | Err(_) => {
                    let error = GatewayCode::BadRequest.error("payload does not match the opcode or does not validate");
                    send(&tx, header.request_id, opcode, Response::Error(error), &in_flight);
                    note_refused(&ctx, peer, &mut refused_requests, "bad_request");
                    if identity.is_none() {
                        break 'conn Close::Handshake("malformed hello");
                    }
                    continue;
                }
            };
            let Some(who) = identity.as_ref() else {
                match handshake(&ctx, request, peer) {
                    Ok((who, response)) => {
                        tracing::debug!(%peer, client = %who.name, role = who.role.name(), "client authenticated");
                        identity = Some(who);
                        send(&tx, header.request_id, opcode, response, &in_flight);
                        continue;
                    }
                    Err((reason, error)) => {
                        ctx.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
                        tracing::warn!(%peer, reason, "handshake refused");
                        send(&tx, header.request_id, opcode, Response::Error(error), &in_flight);
                        break 'conn Close::Handshake(reason);
                    }
                }
            };
            if !who.role.allows(opcode) {
                ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "forbidden" }).inc();
                tracing::warn!(%peer, client = %who.name, role = who.role.name(), opcode = opcode.name(), "request refused: role does not allow it");
                let error =
                    GatewayCode::Forbidden.error(format!("role {} may not send {}", who.role.name(), opcode.name()));
                send(&tx, header.request_id, opcode, Response::Error(error), &in_flight);
                continue;
            }
            if let Request::ReplicaAck { partition, durable_lsn } = request {
                // A follower's progress report on its subscription connection: never answered (not even while
                // shutting down: an error frame would stop the follower instead of letting it reconnect).
                crate::replication::on_replica_ack(&ctx, peer, partition, durable_lsn);
                continue;
            }
            if ctx.shutting_down.load(Ordering::Acquire) {
                send(
                    &tx,
                    header.request_id,
                    opcode,
                    Response::Error(GatewayCode::ShuttingDown.error("shutting down")),
                    &in_flight,
                );
                continue;
            }
            if let Request::Subscribe { partition, from_lsn, bootstrap } = request {
                // A long-lived stream of frames with this request id (docs/REPLICATION.md).
                let stream = crate::replication::StreamTx::new(tx.clone(), header.request_id, in_flight.clone());
                crate::replication::spawn_subscription(ctx.clone(), partition, from_lsn, bootstrap, stream);
                continue;
            }
            if is_heavy(opcode) {
                while in_flight.heavy.load(Ordering::Acquire) >= HEAVY_IN_FLIGHT {
                    let drained = in_flight.drained.notified();
                    if in_flight.heavy.load(Ordering::Acquire) < HEAVY_IN_FLIGHT {
                        break;
                    }
                    tokio::select! {
                        _ = drained => {}
                        _ = tx.closed() => break 'conn Close::PeerClosed,
                    }
                }
                in_flight.heavy.fetch_add(1, Ordering::AcqRel);
            }
            in_flight.count.fetch_add(1, Ordering::AcqRel);
            ctx.dispatch(request, header.request_id, opcode, started, &tx, &who.scope);
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

fn send(
    tx: &mpsc::UnboundedSender<Outbound>,
    request_id: u64,
    opcode: Opcode,
    response: Response,
    in_flight: &InFlight,
) {
    in_flight.count.fetch_add(1, Ordering::AcqRel);
    // Immediate refusals never took a heavy slot, so they must not give one back in the writer.
    let opcode = if is_heavy(opcode) { Opcode::Response } else { opcode };
    let _ = tx.send(Outbound { request_id, opcode, started: Instant::now(), response });
}

fn handshake(
    ctx: &ServerCtx,
    request: Request,
    peer: SocketAddr,
) -> Result<(Identity, Response), (&'static str, crate::protocol::WireError)> {
    let Request::Hello { magic, version, api_key, client } = request else {
        return Err(("no_hello", GatewayCode::Unauthenticated.error("the first frame must be hello")));
    };
    if magic != HELLO_MAGIC {
        return Err(("bad_magic", GatewayCode::BadFrame.error("bad hello magic")));
    }
    if version != PROTOCOL_VERSION {
        return Err((
            "unsupported_version",
            GatewayCode::UnsupportedVersion
                .error(format!("protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}")),
        ));
    }
    let who = ctx.auth.authenticate(&api_key, peer).map_err(|e| {
        let reason = match e {
            super::AuthError::InvalidKey => "invalid_key",
            super::AuthError::NotLoopback => "not_loopback",
        };
        (reason, GatewayCode::Unauthenticated.error(e.to_string()))
    })?;
    let who = Identity {
        name: if client.is_empty() { who.name } else { format!("{} ({client})", who.name) },
        role: who.role,
        scope: who.scope,
    };
    let response = Response::HelloOk {
        version: PROTOCOL_VERSION,
        server: format!("omsd {}", env!("CARGO_PKG_VERSION")),
        partitions: ctx.workers.partitions(),
        role: who.role.name().to_owned(),
        max_frame_bytes: ctx.config.max_frame_bytes,
        max_lines: ctx.config.max_lines as u32,
        max_in_flight: ctx.config.max_in_flight,
    };
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
    let mut scratch = AlignedVec::new();
    let mut metrics = ResponseMetrics::new(&ctx.metrics);
    loop {
        let count = rx.recv_many(&mut batch, WRITE_BATCH).await;
        if count == 0 {
            break;
        }
        out.clear();
        let heavy = batch.iter().filter(|o| is_heavy(o.opcode)).count() as u32;
        for o in batch.drain(..) {
            let outcome = match &o.response {
                Response::Error(e) => outcome_label(&e.name),
                _ => "ok",
            };
            match protocol::encode_into(&o.response, std::mem::take(&mut scratch)) {
                Ok(bytes) => {
                    encode_frame(&mut out, Opcode::Response as u16, o.request_id, &bytes);
                    scratch = bytes;
                }
                Err(e) => tracing::error!(error = %e, "cannot encode a response"),
            }
            metrics.record(o.opcode, outcome, o.started.elapsed().as_secs_f64());
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
fn outcome_label(name: &str) -> &'static str {
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
