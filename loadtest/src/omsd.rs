//! A lean pipelined driver for omsd: one task per connection encodes as many frames as the window
//! allows into one buffer and writes them in one syscall, reads whatever has arrived, decodes
//! every complete frame, and keeps at most `window` requests in flight. The connection, its
//! handshake and the codec are `oms-client`'s and `oms-proto`'s; only the loop is this crate's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oms_client::tls::ClientTls;
use oms_client::{ClientError, ConnectOptions, Connection};
use oms_proto::json::JsonRequest;
use oms_proto::{Line, Lines, Request, Reserve, Response, SkuRef};

use crate::error::LoadError;
use crate::ledger::{ack_line, now_unix_ms, Ledger, Rec, RecState, Unsettled};
use crate::run::{OpSource, Phase, RunCtx};
use crate::stats::{intern, Outcome, ProgressBuffer, Stats};
use crate::workload::{Op, ReserveOp, SkuRole, Then};

/// Response frames can be large (a full stock export).
const MAX_FRAME: u32 = 512 << 20;

/// A request the driver sends, owned (the protocol's `Request` borrows its parts).
#[derive(Clone, Debug)]
pub enum Req {
    /// Lines by SKU id.
    Reserve {
        lines: Vec<Line<'static>>,
        ttl_ms: u64,
        customer: u64,
        campaign: Option<u32>,
    },
    Confirm(u64),
    Release(u64),
    PayBalance(u64),
    Ship(u64),
    GetStock(u32),
    GetReservation(u64),
    Json(JsonRequest),
}

impl From<JsonRequest> for Req {
    fn from(json: JsonRequest) -> Req {
        Req::Json(json)
    }
}

/// One connection speaking the omsd protocol.
pub struct Wire {
    connection: Connection,
    next_id: u64,
}

impl From<ClientError> for LoadError {
    fn from(e: ClientError) -> LoadError {
        match e {
            ClientError::Connect { addr, source } => LoadError::Connect { addr, source },
            ClientError::ConnectTimeout { addr } => {
                LoadError::Connect { addr, source: std::io::ErrorKind::TimedOut.into() }
            }
            ClientError::Handshake(e) => LoadError::Handshake(format!("{} ({}): {}", e.name, e.code.0, e.message)),
            ClientError::Closed => LoadError::Closed,
            ClientError::Io(source) => LoadError::Io { what: "connection".into(), source },
            other => LoadError::Protocol(other.to_string()),
        }
    }
}

impl Wire {
    /// Connect (over TLS with `tls`) and handshake with `api_key` (empty: none).
    pub async fn connect(addr: &str, tls: Option<&ClientTls>, api_key: &str) -> Result<Wire, LoadError> {
        let options = ConnectOptions {
            api_key: (!api_key.is_empty()).then(|| api_key.to_owned()),
            client_name: "oms-loadtest".into(),
            connect_timeout: Duration::from_secs(5),
            tls: tls.cloned(),
        };
        let mut connection = Connection::open(addr, &options).await?;
        connection.set_max_response_bytes(MAX_FRAME);
        Ok(Wire { connection, next_id: 1 })
    }

    /// Queue one request frame (sent by the next `flush`).
    pub fn push(&mut self, id: u64, request: &Req) -> Result<(), LoadError> {
        let body;
        let wire = match request {
            Req::Reserve { lines, ttl_ms, customer, campaign } => Request::Reserve(Reserve {
                ttl_ms: *ttl_ms,
                customer: *customer,
                channel: 0,
                campaign: *campaign,
                idempotency_key: "",
                lines: Lines::Slice(lines),
            }),
            Req::Confirm(id) => Request::Confirm { id: *id },
            Req::Release(id) => Request::Release { id: *id },
            Req::PayBalance(id) => Request::PayBalance { id: *id },
            Req::Ship(id) => Request::Ship { id: *id },
            Req::GetStock(sku) => Request::GetStock { sku: SkuRef::Id(*sku) },
            Req::GetReservation(id) => Request::GetReservation { id: *id },
            Req::Json(json) => {
                body = json.body().map_err(|e| LoadError::Protocol(e.to_string()))?;
                Request::Json { opcode: json.opcode(), body: &body }
            }
        };
        self.connection.push(id, &wire)?;
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), LoadError> {
        Ok(self.connection.flush().await?)
    }

    /// The next complete response in the read buffer.
    pub fn next_response(&mut self) -> Result<Option<(u64, Response)>, LoadError> {
        Ok(self.connection.try_frame()?.map(|(header, response)| (header.request_id, response)))
    }

    async fn read_more(&mut self) -> Result<(), LoadError> {
        Ok(self.connection.read_more().await?)
    }

    pub async fn call(&mut self, request: &Req) -> Result<Response, LoadError> {
        let mut out = self.call_many(std::slice::from_ref(request), 1).await?;
        out.pop().ok_or_else(|| LoadError::Protocol("no answer".into()))
    }

    /// Send `requests` with at most `window` in flight; answers in request order.
    pub async fn call_many(&mut self, requests: &[Req], window: usize) -> Result<Vec<Response>, LoadError> {
        let base = self.next_id;
        self.next_id += requests.len() as u64;
        let mut answers: Vec<Option<Response>> = vec![None; requests.len()];
        let (mut sent, mut done) = (0usize, 0usize);
        while done < requests.len() {
            while sent < requests.len() && sent - done < window.max(1) {
                self.push(base + sent as u64, &requests[sent])?;
                sent += 1;
            }
            self.flush().await?;
            self.read_more().await?;
            while let Some((id, response)) = self.next_response()? {
                let slot = id.checked_sub(base).map(|i| i as usize).filter(|i| *i < requests.len());
                let Some(slot) = slot else { return Err(LoadError::Protocol(format!("unexpected request id {id}"))) };
                if answers[slot].replace(response).is_none() {
                    done += 1;
                }
            }
        }
        Ok(answers.into_iter().map(|a| a.unwrap_or(Response::Done)).collect())
    }

    /// A JSON answer (reads and admin queries).
    pub async fn json(&mut self, request: JsonRequest) -> Result<serde_json::Value, LoadError> {
        let name = request.opcode().name();
        match self.call(&Req::Json(request)).await? {
            Response::Json(s) => Ok(serde_json::from_str(&s)?),
            Response::Error(e) => Err(LoadError::Audit(format!("{name}: {} ({})", e.name, e.message))),
            other => Err(LoadError::Protocol(format!("unexpected answer {other:?}"))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FollowKind {
    Confirm,
    Release,
    PayBalance,
    Ship,
}

#[derive(Debug)]
struct Follow {
    kind: FollowKind,
    id: u64,
    rec: u32,
    lines: Vec<(u32, u32)>,
    campaign: Option<u32>,
    customer: u64,
}

#[derive(Debug)]
enum What {
    Reserve { op: ReserveOp, storm: bool },
    Follow(Follow),
    GetStock,
    Receive { sku: u32, qty: u32 },
}

#[derive(Debug)]
struct Pending {
    intended_ns: u64,
    what: What,
}

/// Result of one connection.
pub struct ConnOutcome {
    pub stats: Stats,
    pub ledger: Ledger,
    pub fatal: Option<LoadError>,
    /// The connection, for the next phase (unusable if `fatal` is set).
    pub wire: Wire,
}

/// Map a target-agnostic op onto a wire request.
fn to_request(ctx: &RunCtx, op: &Op) -> Req {
    let id = |sku: u32| ctx.sku_ids.get(sku as usize).copied().unwrap_or(u32::MAX);
    match op {
        Op::Reserve(r) => {
            let ttl_ms = match r.expire_at_ms {
                Some(at) => at.saturating_sub(now_unix_ms()).max(1),
                None => r.ttl_ms,
            };
            Req::Reserve {
                lines: r.lines.iter().map(|(s, q)| Line::id(id(*s), *q)).collect(),
                ttl_ms,
                customer: r.customer,
                campaign: r.campaign.and_then(|c| ctx.campaign_ids.get(c as usize).copied()),
            }
        }
        Op::GetStock { sku } => Req::GetStock(id(*sku)),
        Op::Receive { sku, qty } => Req::Json(JsonRequest::StockOp(oms_proto::json::StockOp::Receive {
            sku: oms_proto::json::SkuKey::Id(id(*sku)),
            warehouse: oms_proto::json::WarehouseKey::Id(crate::run::WAREHOUSE),
            qty: *qty,
        })),
    }
}

/// Drive one connection through one phase.
pub async fn run_connection(ctx: Arc<RunCtx>, phase: Phase, mut wire: Wire, mut source: OpSource) -> ConnOutcome {
    let mut stats = Stats::default();
    let mut ledger = Ledger::new(ctx.plan.campaigns.len());
    let mut progress = ProgressBuffer::default();
    let mut ack_buf = String::new();
    let window = phase.window.max(1);
    let mut slots: Vec<Option<Pending>> = Vec::with_capacity(window);
    let mut free: Vec<u32> = Vec::new();
    let mut gens: Vec<u32> = Vec::new();
    let mut inflight = 0usize;
    let mut now_q: VecDeque<Follow> = VecDeque::new();
    // Due time, then a sequence number to keep equal due times apart: follow-ups with different
    // delays (balance payments, shipments) interleave, so a FIFO queue would hold a payment
    // behind a later shipment.
    let mut delayed: BTreeMap<(u64, u64), Follow> = BTreeMap::new();
    let mut delayed_seq = 0u64;
    let interval_ns = phase.rate_per_conn.map(|r| (1e9 / r.max(1e-6)) as u64);
    let mut next_intended = ctx.now_ns();
    let mut fatal = None;
    let catalog = ctx.plan.catalog;

    'main: loop {
        let now = ctx.now_ns();
        let producing = now < phase.end_ns && !source.exhausted();
        while let Some(entry) = delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            now_q.push_back(entry.remove());
        }
        // Fill the window: follow-ups first, then new work.
        while inflight < window {
            let (intended_ns, what, request) = if let Some(f) = now_q.pop_front() {
                let request = match f.kind {
                    FollowKind::Confirm => Req::Confirm(f.id),
                    FollowKind::Release => Req::Release(f.id),
                    FollowKind::PayBalance => Req::PayBalance(f.id),
                    FollowKind::Ship => Req::Ship(f.id),
                };
                (now, What::Follow(f), request)
            } else {
                if !producing {
                    break;
                }
                let intended = match interval_ns {
                    None => now,
                    Some(step) => {
                        if next_intended > now {
                            break;
                        }
                        let t = next_intended;
                        next_intended += step;
                        t
                    }
                };
                let Some(op) = source.next_op() else { break };
                let request = to_request(&ctx, &op);
                let what = match op {
                    Op::Reserve(r) => What::Reserve { storm: r.expire_at_ms.is_some(), op: r },
                    Op::GetStock { .. } => What::GetStock,
                    Op::Receive { sku, qty } => What::Receive { sku, qty },
                };
                (intended, what, request)
            };
            let slot = match free.pop() {
                Some(s) => s,
                None => {
                    slots.push(None);
                    gens.push(0);
                    (slots.len() - 1) as u32
                }
            };
            gens[slot as usize] = gens[slot as usize].wrapping_add(1);
            let rid = (u64::from(gens[slot as usize]) << 32) | u64::from(slot);
            if let Err(e) = wire.push(rid, &request) {
                fatal = Some(e);
                break 'main;
            }
            slots[slot as usize] = Some(Pending { intended_ns, what });
            inflight += 1;
        }
        if let Err(e) = wire.flush().await {
            fatal = Some(e);
            break;
        }
        if !producing && inflight == 0 && now_q.is_empty() {
            break;
        }
        if now > phase.end_ns + phase.drain_ns {
            tracing::warn!(
                "{inflight} requests still unanswered {:?} after the end; giving up",
                Duration::from_nanos(phase.drain_ns)
            );
            break;
        }
        // Wait for answers, the next scheduled send, a due follow-up, or the end of the phase.
        let mut wake = now + 100_000_000;
        if producing {
            wake = wake.min(phase.end_ns);
            if let (Some(_), true) = (interval_ns, inflight < window) {
                wake = wake.min(next_intended);
            }
        }
        if let Some(((due, _), _)) = delayed.first_key_value() {
            wake = wake.min(*due);
        }
        let sleep_for = Duration::from_nanos(wake.saturating_sub(now));
        let got = if inflight == 0 {
            tokio::time::sleep(sleep_for).await;
            false
        } else {
            tokio::select! {
                r = wire.read_more() => {
                    if let Err(e) = r { fatal = Some(e); break; }
                    true
                }
                _ = tokio::time::sleep(sleep_for) => false,
            }
        };
        if !got {
            progress.maybe_publish(&ctx.progress, false);
            continue;
        }
        let done_ns = ctx.now_ns();
        loop {
            let (rid, response) = match wire.next_response() {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    fatal = Some(e);
                    break 'main;
                }
            };
            let slot = (rid & 0xFFFF_FFFF) as usize;
            let valid =
                slots.get(slot).is_some_and(|s| s.is_some()) && gens.get(slot).copied() == Some((rid >> 32) as u32);
            if !valid {
                fatal = Some(LoadError::Protocol(format!("answer to unknown request id {rid}")));
                break 'main;
            }
            let Some(pending) = slots[slot].take() else { continue };
            free.push(slot as u32);
            inflight -= 1;
            let latency_us = done_ns.saturating_sub(pending.intended_ns) / 1_000;
            let measured = pending.intended_ns >= phase.measure_start_ns && pending.intended_ns < phase.end_ns;
            let (outcome, is_reserve) = match pending.what {
                What::Reserve { op, storm } => {
                    let outcome = match response {
                        Response::Reserved(r) => {
                            let rec = ledger.recs.len() as u32;
                            ledger.recs.push(Rec { id: r.id, state: RecState::Held, storm });
                            ledger.accepted += 1;
                            if !storm {
                                for (s, q) in &op.lines {
                                    if *s < catalog {
                                        ctx.skus.add_net(*s, i64::from(*q));
                                    }
                                }
                                ledger.unsettled.insert(
                                    r.id,
                                    Unsettled {
                                        lines: op.lines.clone(),
                                        campaign: op.campaign,
                                        customer: op.customer,
                                        expires_unix_ms: now_unix_ms() + op.ttl_ms,
                                        refused: false,
                                    },
                                );
                            }
                            if let Some(c) = op.campaign {
                                let units: i64 = op.lines.iter().map(|(_, q)| i64::from(*q)).sum();
                                if let Some(v) = ledger.campaign_units.get_mut(c as usize) {
                                    *v += units;
                                }
                                *ledger.customer_units.entry((c, op.customer)).or_insert(0) += units;
                            }
                            if ctx.ack.is_some() {
                                ack_line(
                                    &mut ack_buf,
                                    r.id,
                                    op.lines.iter().map(|(s, q)| {
                                        (u64::from(ctx.sku_ids.get(*s as usize).copied().unwrap_or(0)), *q)
                                    }),
                                );
                            }
                            let follow = |kind| Follow {
                                kind,
                                id: r.id,
                                rec,
                                lines: op.lines.clone(),
                                campaign: op.campaign,
                                customer: op.customer,
                            };
                            match op.then {
                                Then::Keep => {}
                                Then::Confirm => now_q.push_back(follow(FollowKind::Confirm)),
                                Then::Release => now_q.push_back(follow(FollowKind::Release)),
                                Then::PayBalance { after_ms } => {
                                    delayed_seq += 1;
                                    delayed.insert(
                                        (done_ns + after_ms * 1_000_000, delayed_seq),
                                        follow(FollowKind::PayBalance),
                                    );
                                }
                            }
                            Outcome::Accepted
                        }
                        Response::Error(e) if e.code.is_refusal() => Outcome::Rejected(intern(&e.name)),
                        Response::Error(e) => Outcome::Error(intern(&e.name)),
                        _ => Outcome::Error("unexpected_answer"),
                    };
                    (outcome, true)
                }
                What::Follow(f) => {
                    let outcome = match response {
                        Response::Done => {
                            let state = match f.kind {
                                FollowKind::Confirm => {
                                    ledger.confirmed += 1;
                                    RecState::Confirmed
                                }
                                // Shipped units leave on-hand and the hold together: availability
                                // and the audit's per-SKU net are unchanged.
                                FollowKind::Ship => {
                                    ledger.shipped += 1;
                                    RecState::Shipped
                                }
                                FollowKind::PayBalance => {
                                    ledger.paid += 1;
                                    RecState::BalancePaid
                                }
                                FollowKind::Release => {
                                    ledger.released += 1;
                                    for (s, q) in &f.lines {
                                        if *s < catalog {
                                            ctx.skus.add_net(*s, -i64::from(*q));
                                        }
                                    }
                                    if let Some(c) = f.campaign {
                                        let units: i64 = f.lines.iter().map(|(_, q)| i64::from(*q)).sum();
                                        if let Some(v) = ledger.campaign_units.get_mut(c as usize) {
                                            *v -= units;
                                        }
                                        *ledger.customer_units.entry((c, f.customer)).or_insert(0) -= units;
                                    }
                                    RecState::Released
                                }
                            };
                            if let Some(rec) = ledger.recs.get_mut(f.rec as usize) {
                                rec.state = state;
                            }
                            ledger.unsettled.remove(&f.id);
                            if let (FollowKind::Confirm, Some(after_ms)) = (f.kind, ctx.plan.p.ship_after_ms) {
                                delayed_seq += 1;
                                delayed.insert(
                                    (done_ns + after_ms * 1_000_000, delayed_seq),
                                    Follow { kind: FollowKind::Ship, ..f },
                                );
                            }
                            Outcome::Ok
                        }
                        Response::Error(e) if e.code.is_refusal() => {
                            ledger.follow_up_refused += 1;
                            if let Some(u) = ledger.unsettled.get_mut(&f.id) {
                                u.refused = true;
                            }
                            if let Some(rec) = ledger.recs.get_mut(f.rec as usize) {
                                rec.state = RecState::FollowUpRefused;
                            }
                            Outcome::Rejected(intern(&e.name))
                        }
                        Response::Error(e) => Outcome::Error(intern(&e.name)),
                        _ => Outcome::Error("unexpected_answer"),
                    };
                    (outcome, false)
                }
                What::GetStock => {
                    let outcome = match response {
                        Response::Stock(_) => Outcome::Ok,
                        Response::Error(e) if e.code.is_refusal() => Outcome::Rejected(intern(&e.name)),
                        Response::Error(e) => Outcome::Error(intern(&e.name)),
                        _ => Outcome::Error("unexpected_answer"),
                    };
                    (outcome, false)
                }
                What::Receive { sku, qty } => {
                    let outcome = match response {
                        Response::Json(_) => {
                            if ctx.plan.role(sku) == SkuRole::Catalog {
                                ctx.skus.add_received(sku, i64::from(qty));
                            }
                            Outcome::Ok
                        }
                        Response::Error(e) if e.code.is_refusal() => Outcome::Rejected(intern(&e.name)),
                        Response::Error(e) => Outcome::Error(intern(&e.name)),
                        _ => Outcome::Error("unexpected_answer"),
                    };
                    (outcome, false)
                }
            };
            if measured {
                stats.record(latency_us, is_reserve, outcome);
            }
            progress.note(latency_us, outcome);
        }
        if let Some(ack) = &ctx.ack {
            if ack_buf.len() > 32 << 10 {
                ack.write(&ack_buf);
                ack_buf.clear();
            }
        }
        progress.maybe_publish(&ctx.progress, false);
    }
    // Whatever is still in flight has an unknown outcome.
    for p in slots.iter().flatten() {
        if let What::Reserve { .. } = p.what {
            ledger.unknown += 1;
        }
        *stats.errors.entry(if fatal.is_some() { "connection_lost" } else { "unanswered" }).or_insert(0) += 1;
    }
    if let Some(ack) = &ctx.ack {
        ack.write(&ack_buf);
    }
    progress.maybe_publish(&ctx.progress, true);
    if let Some(e) = &fatal {
        tracing::error!("connection failed: {e}");
    }
    ConnOutcome { stats, ledger, fatal, wire }
}

/// Elapsed-time helper for setup logging.
pub fn took(start: Instant) -> String {
    format!("{:.2}s", start.elapsed().as_secs_f64())
}
