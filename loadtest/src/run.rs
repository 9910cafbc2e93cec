//! Orchestration: setup, phases, merging, audit and the report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oms_proto::json::{self as wire_json, JsonRequest, SkuKey, WarehouseKey};
use oms_proto::Response;
use serde_json::{json, Value};

use crate::config::{Args, Target};
use crate::error::LoadError;
use crate::ledger::{now_unix_ms, AckLog, Ledger, RecState, SkuCounters};
use crate::omsd::{run_connection, took, Req, Wire};
use crate::stats::{spawn_progress_reporter, Progress, Report, Stats};
use crate::workload::{CampaignKind, Op, OpGen, Plan, Scenario, SkuRole};

/// The warehouse all load-test stock lives in.
pub const WAREHOUSE: u16 = 1;

/// State shared by every connection of a run.
pub struct RunCtx {
    pub plan: Arc<Plan>,
    pub base: Instant,
    pub progress: Arc<Progress>,
    pub ack: Option<Arc<AckLog>>,
    pub skus: SkuCounters,
    /// Catalog index -> the target's SKU id.
    pub sku_ids: Vec<u32>,
    /// Campaign index -> the target's campaign id.
    pub campaign_ids: Vec<u32>,
}

impl RunCtx {
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// Timing of one phase, in ns since `RunCtx::base`.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    /// Requests intended at or after this instant (and before `end_ns`) are measured.
    pub measure_start_ns: u64,
    /// No new work is started after this.
    pub end_ns: u64,
    /// How long to wait for answers after `end_ns`.
    pub drain_ns: u64,
    pub window: usize,
    /// Open loop: transactions per second on this connection.
    pub rate_per_conn: Option<f64>,
}

/// Where a connection's new work comes from.
pub enum OpSource {
    Gen(OpGen),
    Storm { gen: OpGen, left: u64, expire_at_ms: u64 },
}

impl OpSource {
    #[inline]
    pub fn next_op(&mut self) -> Option<Op> {
        match self {
            OpSource::Gen(g) => Some(g.next_op()),
            OpSource::Storm { gen, left, expire_at_ms } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                Some(gen.storm_op(*expire_at_ms))
            }
        }
    }

    pub fn exhausted(&self) -> bool {
        matches!(self, OpSource::Storm { left: 0, .. })
    }
}

/// Default first campaign id for a seed (256 ids per seed: flash sales from +0, presales from +128).
pub fn campaign_base(args: &Args) -> u32 {
    args.campaign_base.unwrap_or(1 + ((args.seed % 1_000_000) as u32) * 256)
}

/// Run a whole load test and audit it. The report's `audit_passed` decides the exit status.
pub async fn run(args: &Args) -> Result<Report, LoadError> {
    let params = args.plan_params()?;
    let target = Target::parse(&args.target)?;
    let plan = Arc::new(Plan::new(params));
    let mut report = match &target {
        Target::Omsd { addr } => run_omsd(args, Arc::clone(&plan), addr).await?,
        Target::Redis { url } => crate::peers::redis::run(args, Arc::clone(&plan), url).await?,
        Target::Postgres { url } => crate::peers::postgres::run(args, Arc::clone(&plan), url).await?,
    };
    report.scenario = args.scenario.name().to_owned();
    report.target = args.target.clone();
    report.mode = if args.rate.is_some() { "open-loop".into() } else { "closed-loop".into() };
    report.connections = args.connections;
    report.pipeline = args.pipeline;
    report.rate = args.rate;
    report.seed = args.seed;
    report.thresholds = crate::thresholds::evaluate(&report, &args.limits());
    report.thresholds_passed = report.thresholds.iter().all(|t| t.passed);
    Ok(report)
}

/// The reporter's HDR interval log, if asked for.
pub fn hdr_log(args: &Args) -> Result<Option<crate::stats::HdrLog>, LoadError> {
    args.hdr_log.as_deref().map(|path| crate::stats::HdrLog::create(path, args.hdr_interval)).transpose()
}

/// The `--percentiles` list (checked by `plan_params`).
pub fn percentiles(args: &Args) -> Vec<f64> {
    crate::thresholds::parse_percentiles(&args.percentiles).unwrap_or_else(|_| vec![50.0, 90.0, 99.0, 99.9, 99.99])
}

/// Resolve or create the catalog, stock and campaigns on omsd. Returns (sku ids, campaign ids).
async fn setup_omsd(args: &Args, plan: &Plan, wire: &mut Wire) -> Result<(Vec<u32>, Vec<u32>), LoadError> {
    let started = Instant::now();
    let n = plan.sku_count();
    let mut ids = Vec::with_capacity(n as usize);
    if args.no_setup {
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let codes = chunk.iter().map(|s| plan.sku_code(*s)).collect();
            match wire.call(&Req::Json(JsonRequest::LookupSkus(wire_json::LookupSkus { codes }))).await? {
                Response::Json(text) => {
                    let found: wire_json::LookupAnswer = serde_json::from_str(&text)?;
                    for (i, f) in found.ids.into_iter().enumerate() {
                        ids.push(f.ok_or_else(|| {
                            LoadError::Setup(format!(
                                "SKU {} is not defined: run once without --no-setup",
                                plan.sku_code(chunk[i])
                            ))
                        })?);
                    }
                }
                other => return Err(LoadError::Setup(format!("LookupSkus answered {other:?}"))),
            }
        }
    } else {
        let wh = Req::Json(JsonRequest::DefineWarehouse(wire_json::DefineWarehouse {
            id: WAREHOUSE,
            code: "LT-W1".into(),
            region: "load".into(),
            priority: 1,
        }));
        if let Response::Error(e) = wire.call(&wh).await? {
            tracing::debug!("DefineWarehouse: {} ({})", e.name, e.message);
        }
        for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
            let requests: Vec<Req> = chunk
                .iter()
                .map(|s| {
                    Req::Json(JsonRequest::DefineSku(wire_json::DefineSku {
                        code: plan.sku_code(*s),
                        low_stock_threshold: 0,
                    }))
                })
                .collect();
            for (i, r) in wire.call_many(&requests, 1024).await?.into_iter().enumerate() {
                let defined = match &r {
                    Response::Json(text) => serde_json::from_str::<wire_json::DefinedSku>(text).ok(),
                    _ => None,
                };
                match defined {
                    Some(defined) => ids.push(defined.id),
                    other => {
                        return Err(LoadError::Setup(format!(
                            "DefineSku {} answered {other:?}",
                            plan.sku_code(chunk[i])
                        )))
                    }
                }
            }
        }
        let stock: Vec<Req> = (0..n)
            .filter(|s| plan.role(*s) != SkuRole::Presale)
            .map(|s| {
                Req::Json(JsonRequest::StockOp(wire_json::StockOp::SetOnHand {
                    sku: SkuKey::Id(ids[s as usize]),
                    warehouse: WarehouseKey::Id(WAREHOUSE),
                    on_hand: plan.initial_on_hand(s),
                }))
            })
            .collect();
        let mut refused = 0usize;
        for chunk in stock.chunks(50_000) {
            for r in wire.call_many(chunk, 1024).await? {
                if let Response::Error(e) = r {
                    refused += 1;
                    if refused <= 3 {
                        tracing::warn!("SetOnHand refused: {} ({})", e.name, e.message);
                    }
                }
            }
        }
        if refused > 0 {
            tracing::warn!("{refused} SetOnHand requests refused (stock committed by an earlier run?)");
        }
    }
    let base = campaign_base(args);
    let mut campaign_ids = Vec::new();
    let now = now_unix_ms();
    let (mut flash_n, mut presale_n) = (0u32, 0u32);
    for c in plan.campaigns.iter() {
        // Flash sales at base.., presales at base+128.., so scenarios never collide.
        let id = match c.kind {
            CampaignKind::FlashSale => {
                flash_n += 1;
                base + flash_n - 1
            }
            CampaignKind::Presale => {
                presale_n += 1;
                base + 128 + presale_n - 1
            }
        };
        campaign_ids.push(id);
        if args.no_setup {
            continue;
        }
        let sku = SkuKey::Id(ids[c.sku as usize]);
        let (starts_at_ms, ends_at_ms) = (now.saturating_sub(1_000), now + 24 * 3_600_000);
        let request = match c.kind {
            CampaignKind::FlashSale => JsonRequest::CreateFlashSale(wire_json::CreateFlashSale {
                id,
                sku,
                pool_qty: c.units,
                per_customer_limit: c.per_customer_limit,
                starts_at_ms,
                ends_at_ms,
            }),
            CampaignKind::Presale => JsonRequest::CreatePresale(wire_json::CreatePresale {
                id,
                sku,
                quota: c.units,
                per_customer_limit: c.per_customer_limit,
                starts_at_ms,
                ends_at_ms,
                balance_window_ms: plan.p.balance_window_ms,
            }),
        };
        match wire.call(&Req::Json(request)).await? {
            Response::Json(_) => {}
            Response::Error(e) if e.name == "duplicate_campaign" => {
                let view = wire.json(JsonRequest::GetCampaign(wire_json::GetCampaign { id })).await?;
                let kind = view.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
                let want = match c.kind {
                    CampaignKind::FlashSale => "flash",
                    CampaignKind::Presale => "presale",
                };
                if !kind.contains(want) {
                    return Err(LoadError::Setup(format!(
                        "campaign {id} exists with kind {kind:?}, not a {want} campaign: pass another --campaign-base"
                    )));
                }
                tracing::info!(
                    "campaign {id} exists already: reusing it (its remaining units are the audit's baseline)"
                );
            }
            other => return Err(LoadError::Setup(format!("creating campaign {id} answered {other:?}"))),
        }
    }
    tracing::info!("setup: {} SKUs, {} campaigns in {}", n, plan.campaigns.len(), took(started));
    Ok((ids, campaign_ids))
}

/// Server state the audit compares against.
#[derive(Debug, Default)]
struct Snapshot {
    audit: Value,
    /// Catalog index -> available.
    available: Vec<Option<u64>>,
    /// Campaign index -> remaining.
    remaining: Vec<Option<u64>>,
}

async fn snapshot(wire: &mut Wire, plan: &Plan, sku_ids: &[u32], campaign_ids: &[u32]) -> Result<Snapshot, LoadError> {
    let audit = wire.json(JsonRequest::Audit).await?;
    let mut available = vec![None; plan.catalog as usize];
    if plan.catalog > 0 {
        let rows = wire.json(JsonRequest::ExportStock).await?;
        let by_id: HashMap<u32, usize> =
            sku_ids.iter().take(plan.catalog as usize).enumerate().map(|(i, id)| (*id, i)).collect();
        for row in rows.as_array().map(Vec::as_slice).unwrap_or_default() {
            let id = row.get("sku").and_then(Value::as_u64).map(|v| v as u32);
            if let (Some(i), Some(av)) =
                (id.and_then(|id| by_id.get(&id)), row.get("available").and_then(Value::as_u64))
            {
                available[*i] = Some(av);
            }
        }
    }
    let mut remaining = Vec::new();
    for id in campaign_ids {
        let v = wire.json(JsonRequest::GetCampaign(wire_json::GetCampaign { id: *id })).await?;
        remaining.push(v.get("remaining").and_then(Value::as_u64));
    }
    Ok(Snapshot { audit, available, remaining })
}

async fn run_omsd(args: &Args, plan: Arc<Plan>, addr: &str) -> Result<Report, LoadError> {
    let tls = match &args.tls_ca {
        Some(ca) => Some(oms_client::tls::ClientTls::new(Some(ca), args.tls_server_name.as_deref())?),
        None => None,
    };
    let mut control = Wire::connect(addr, tls.as_ref(), &args.api_key).await?;
    let (sku_ids, campaign_ids) = setup_omsd(args, &plan, &mut control).await?;
    let before = if args.no_audit {
        Snapshot::default()
    } else {
        snapshot(&mut control, &plan, &sku_ids, &campaign_ids).await?
    };
    let ack = match &args.ack_log {
        Some(p) => Some(AckLog::create(p)?),
        None => None,
    };
    let progress = Arc::new(Progress::default());
    let ctx = Arc::new(RunCtx {
        plan: Arc::clone(&plan),
        base: Instant::now(),
        progress: Arc::clone(&progress),
        ack: ack.clone(),
        skus: SkuCounters::new(plan.catalog as usize),
        sku_ids,
        campaign_ids,
    });
    let conns = args.connections;
    let mut wires = Vec::with_capacity(conns);
    for _ in 0..conns {
        wires.push(Wire::connect(addr, tls.as_ref(), &args.api_key).await?);
    }
    let reporter = spawn_progress_reporter(Arc::clone(&progress), args.scenario.name().to_owned(), hdr_log(args)?);
    let mut notes = Vec::new();
    let mut total = Stats::default();
    let mut ledger = Ledger::new(plan.campaigns.len());
    let mut fatal = None;

    // Expiry storm: fill first (unmeasured), all holds expiring at the same instant, which falls
    // in the middle of the measured checkout phase.
    let mut warmup = args.warmup;
    let mut storm_deadline_ms = None;
    if args.scenario == Scenario::ExpiryStorm && plan.p.storm > 0 {
        let fill_budget = Duration::from_secs_f64((plan.p.storm as f64 / 100_000.0).max(2.0));
        let deadline = now_unix_ms() + (fill_budget + args.warmup + args.duration / 2).as_millis() as u64;
        storm_deadline_ms = Some(deadline);
        let fill_started = Instant::now();
        let phase = Phase {
            measure_start_ns: u64::MAX,
            end_ns: u64::MAX / 4,
            drain_ns: 0,
            window: args.pipeline.max(256),
            rate_per_conn: None,
        };
        let per = plan.p.storm / conns as u64;
        let sources = (0..conns)
            .map(|i| {
                let left = per + if i == 0 { plan.p.storm % conns as u64 } else { 0 };
                OpSource::Storm {
                    gen: OpGen::new(Arc::clone(&plan), 1_000_000 + i as u64),
                    left,
                    expire_at_ms: deadline,
                }
            })
            .collect();
        let (stats, l, f, w) = run_phase(&ctx, phase, std::mem::take(&mut wires), sources).await;
        let _ = stats;
        ledger.merge(l);
        fatal = fatal.or(f);
        wires = w;
        let filled = fill_started.elapsed();
        tracing::info!(
            "expiry storm: {} holds placed in {:.2}s, all expiring at {}",
            ledger.accepted,
            filled.as_secs_f64(),
            deadline
        );
        // Start measuring `duration / 2` before the storm expires.
        let measure_at_ms = deadline.saturating_sub((args.duration / 2).as_millis() as u64);
        let now = now_unix_ms();
        if now > measure_at_ms {
            notes.push(format!(
                "the storm fill took {:.1}s, longer than budgeted: the storm expires early in the measured window",
                filled.as_secs_f64()
            ));
            warmup = Duration::ZERO;
        } else {
            warmup = Duration::from_millis(measure_at_ms - now);
        }
        notes.push(format!("expiry storm: {} holds expiring at unix ms {deadline}", ledger.accepted));
    }

    if fatal.is_none() {
        let start = ctx.now_ns();
        let measure_start_ns = start + warmup.as_nanos() as u64;
        let phase = Phase {
            measure_start_ns,
            end_ns: measure_start_ns + args.duration.as_nanos() as u64,
            drain_ns: 10_000_000_000,
            window: args.pipeline,
            rate_per_conn: args.rate.map(|r| r / conns as f64),
        };
        let sources = (0..conns).map(|i| OpSource::Gen(OpGen::new(Arc::clone(&plan), i as u64))).collect();
        let (stats, l, f, w) = run_phase(&ctx, phase, std::mem::take(&mut wires), sources).await;
        total.merge(&stats);
        ledger.merge(l);
        fatal = fatal.or(f);
        drop(w);
    }
    progress.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reporter.join();
    if let Some(a) = &ack {
        a.finish()?;
    }
    if let Some(deadline) = storm_deadline_ms {
        // Let the storm finish expiring before auditing.
        let now = now_unix_ms();
        if now < deadline + 1_500 {
            tokio::time::sleep(Duration::from_millis(deadline + 1_500 - now)).await;
        }
    }

    let mut report = Report::from_stats(&total, args.duration.as_secs_f64(), &percentiles(args));
    report.notes = notes;
    if let Some(e) = &fatal {
        report.notes.push(format!("a connection failed: {e}"));
    }
    if args.no_audit {
        report.audit = json!({"skipped": true});
        report.audit_passed = fatal.is_none();
    } else {
        // The setup connection sat idle for the whole run: longer than the server's idle timeout
        // (5 min by default) in a soak, so the audit opens a fresh one.
        drop(control);
        let mut control = Wire::connect(addr, tls.as_ref(), &args.api_key).await?;
        // Holds the server ended by itself free their units. Asked before and after the snapshot:
        // those ended before it are reflected in it; one that ended in between makes its SKU and
        // campaign ambiguous for the exact comparison (but not for the oversell check).
        let ended_before = ended_by_server(&ledger, &mut control).await?;
        let after = snapshot(&mut control, &plan, &ctx.sku_ids, &ctx.campaign_ids).await?;
        let ended_after = ended_by_server(&ledger, &mut control).await?;
        let ended = Endings { before: ended_before, after: ended_after };
        let (audit, passed) = audit_omsd(args, &plan, &ctx, &ledger, &before, &after, &ended, &mut control).await?;
        report.audit = audit;
        report.audit_passed = passed && fatal.is_none();
    }
    Ok(report)
}

/// Run every connection through one phase; merge what they report.
async fn run_phase(
    ctx: &Arc<RunCtx>,
    phase: Phase,
    wires: Vec<Wire>,
    sources: Vec<OpSource>,
) -> (Stats, Ledger, Option<LoadError>, Vec<Wire>) {
    let mut tasks = Vec::with_capacity(wires.len());
    for (wire, source) in wires.into_iter().zip(sources) {
        tasks.push(tokio::spawn(run_connection(Arc::clone(ctx), phase, wire, source)));
    }
    let mut stats = Stats::default();
    let mut ledger = Ledger::new(ctx.plan.campaigns.len());
    let mut fatal = None;
    let mut wires = Vec::new();
    for t in tasks {
        match t.await {
            Ok(out) => {
                stats.merge(&out.stats);
                ledger.merge(out.ledger);
                if out.fatal.is_some() && fatal.is_none() {
                    fatal = out.fatal;
                }
                wires.push(out.wire);
            }
            Err(e) => fatal = fatal.or(Some(LoadError::Protocol(format!("connection task failed: {e}")))),
        }
    }
    (stats, ledger, fatal, wires)
}

fn total(v: &Value, key: &str) -> u64 {
    v.get("totals").and_then(|t| t.get(key)).and_then(Value::as_u64).unwrap_or(0)
}

/// Check the server against what this run was told (see docs/LOADTEST.md, "Audit").
#[allow(clippy::too_many_arguments)]
async fn audit_omsd(
    args: &Args,
    plan: &Plan,
    ctx: &RunCtx,
    ledger: &Ledger,
    before: &Snapshot,
    after: &Snapshot,
    ended: &Endings,
    wire: &mut Wire,
) -> Result<(Value, bool), LoadError> {
    let mut failures: Vec<String> = Vec::new();
    let clean = after.audit.get("clean").and_then(Value::as_bool).unwrap_or(false);
    if !clean {
        failures.push("server Audit reports clean=false".into());
    }
    let delta = |k: &str| total(&after.audit, k).saturating_sub(total(&before.audit, k));
    let live_delta = after.audit.get("live_reservations").and_then(Value::as_i64).unwrap_or(0)
        - before.audit.get("live_reservations").and_then(Value::as_i64).unwrap_or(0);
    let server = json!({
        "accepted": delta("accepted"), "confirmed": delta("confirmed"), "released": delta("released"),
        "expired": delta("expired"), "shipped": delta("shipped"), "compensated": delta("compensated"), "live": live_delta,
    });
    // Each acknowledged reservation is at least one accepted part on the server.
    if delta("accepted") < ledger.accepted {
        failures.push(format!(
            "server accepted {} reservations during the run, fewer than the {} acknowledged",
            delta("accepted"),
            ledger.accepted
        ));
    }
    if delta("confirmed") < ledger.confirmed + ledger.paid {
        failures.push(format!(
            "server confirmed {} < {} acknowledged confirms/payments",
            delta("confirmed"),
            ledger.confirmed + ledger.paid
        ));
    }
    if delta("shipped") < ledger.shipped {
        failures.push(format!("server shipped {} < {} acknowledged shipments", delta("shipped"), ledger.shipped));
    }
    if delta("released") < ledger.released {
        failures.push(format!("server released {} < {} acknowledged releases", delta("released"), ledger.released));
    }
    // The server's own ledger identity over the run.
    let lhs = delta("accepted") as i64;
    let rhs = live_delta + (delta("released") + delta("expired") + delta("shipped") + delta("compensated")) as i64;
    if lhs != rhs {
        failures.push(format!("server totals do not add up over the run: accepted {lhs} != live+released+expired+shipped+compensated {rhs}"));
    }

    let mut campaign_units = ledger.campaign_units.clone();
    let mut customer_units = ledger.customer_units.clone();
    let (mut ambiguous_skus, mut ambiguous_campaigns) = (HashSet::new(), HashSet::new());
    for id in &ended.after {
        let Some(p) = ledger.unsettled.get(id) else { continue };
        let units: i64 = p.lines.iter().map(|(_, q)| i64::from(*q)).sum();
        if let Some(c) = p.campaign {
            // The customer's limit is judged on the server's state at the end.
            *customer_units.entry((c, p.customer)).or_insert(0) -= units;
        }
        if ended.before.contains(id) {
            for (s, q) in &p.lines {
                if *s < plan.catalog {
                    ctx.skus.add_net(*s, -i64::from(*q));
                }
            }
            if let Some(v) = p.campaign.and_then(|c| campaign_units.get_mut(c as usize)) {
                *v -= units;
            }
        } else {
            ambiguous_skus.extend(p.lines.iter().map(|(s, _)| *s));
            ambiguous_campaigns.extend(p.campaign);
        }
    }

    // Oversold, from our own records: net acknowledged units never exceed what was there.
    let exact = ledger.unknown == 0;
    let (mut oversold, mut mismatched, mut checked) = (0u64, 0u64, 0u64);
    let mut examples = Vec::new();
    for s in 0..plan.catalog {
        let (Some(b), Some(a)) = (before.available[s as usize], after.available[s as usize]) else { continue };
        let net = ctx.skus.net(s);
        let received = ctx.skus.received(s);
        if net > b as i64 + received {
            oversold += 1;
            if examples.len() < 5 {
                examples.push(format!(
                    "{}: {} units held by acknowledged reservations > {} available + {} received",
                    plan.sku_code(s),
                    net,
                    b,
                    received
                ));
            }
        }
        if net != 0 || received != 0 || a != b {
            checked += 1;
            if exact && !ambiguous_skus.contains(&s) && a as i64 != b as i64 + received - net {
                mismatched += 1;
                if examples.len() < 5 {
                    examples.push(format!(
                        "{}: available {a}, expected {} ({b} + {received} received - {net} held)",
                        plan.sku_code(s),
                        b as i64 + received - net
                    ));
                }
            }
        }
    }
    let mut campaigns = Vec::new();
    let mut limit_violations = 0u64;
    for (i, c) in plan.campaigns.iter().enumerate() {
        let net = campaign_units.get(i).copied().unwrap_or(0);
        let rb = before.remaining.get(i).copied().flatten();
        let ra = after.remaining.get(i).copied().flatten();
        if c.kind == CampaignKind::FlashSale {
            if let Some(rb) = rb {
                if net > rb as i64 {
                    oversold += 1;
                    examples.push(format!(
                        "flash sale {}: {net} units acknowledged > {rb} in the pool",
                        ctx.campaign_ids[i]
                    ));
                }
                if let (true, Some(ra)) = (exact && !ambiguous_campaigns.contains(&(i as u32)), ra) {
                    if ra as i64 != rb as i64 - net {
                        mismatched += 1;
                        examples.push(format!(
                            "flash sale {}: remaining {ra}, expected {}",
                            ctx.campaign_ids[i],
                            rb as i64 - net
                        ));
                    }
                }
            }
        }
        campaigns.push(json!({"id": ctx.campaign_ids[i], "kind": c.kind, "units": c.units, "remaining_before": rb, "remaining_after": ra, "net_units_acknowledged": net}));
    }
    for ((c, customer), units) in &customer_units {
        if *units > i64::from(plan.campaigns[*c as usize].per_customer_limit) {
            limit_violations += 1;
            if limit_violations <= 3 {
                examples.push(format!(
                    "customer {customer} holds {units} units of campaign {}",
                    ctx.campaign_ids[*c as usize]
                ));
            }
        }
    }
    if oversold > 0 {
        failures.push(format!("{oversold} SKUs/pools oversold"));
    }
    if mismatched > 0 {
        failures.push(format!("{mismatched} SKUs/pools whose server stock differs from the acknowledged history"));
    }
    if limit_violations > 0 {
        failures.push(format!("{limit_violations} customers over the per-customer limit"));
    }

    // Reservations one by one (all of them when feasible, else an even sample).
    let n = ledger.recs.len();
    let step = if n <= args.audit_sample.max(1) { 1 } else { n / args.audit_sample.max(1) };
    let sample: Vec<usize> = (0..n).step_by(step.max(1)).take(args.audit_sample.max(1)).collect();
    let requests: Vec<Req> = sample.iter().map(|i| Req::GetReservation(ledger.recs[*i].id)).collect();
    let answers = if requests.is_empty() { Vec::new() } else { wire.call_many(&requests, 256).await? };
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut wrong = 0u64;
    for (i, answer) in sample.iter().zip(answers) {
        let rec = ledger.recs[*i];
        let status = match answer {
            Response::Reservation(view) => view.status.name().to_owned(),
            Response::Error(e) => format!("error:{}", e.name),
            _ => "?".to_owned(),
        };
        let ok = match rec.state {
            _ if rec.storm => status == "expired",
            RecState::Confirmed => matches!(status.as_str(), "confirmed" | "shipped"),
            RecState::Released => status == "released" || status == FORGOTTEN,
            RecState::Shipped => status == "shipped" || status == FORGOTTEN,
            RecState::BalancePaid => matches!(status.as_str(), "balance_paid" | "confirmed" | "shipped"),
            RecState::Held => {
                matches!(status.as_str(), "held" | "expired" | "deposit_held" | "balance_missed" | FORGOTTEN)
            }
            RecState::FollowUpRefused => !status.starts_with("error") || status == FORGOTTEN,
        };
        if !ok {
            wrong += 1;
            if wrong <= 3 {
                examples.push(format!(
                    "reservation {} is {status} on the server, expected {:?}{}",
                    rec.id,
                    rec.state,
                    if rec.storm { " (storm: expired)" } else { "" }
                ));
            }
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    if wrong > 0 {
        failures.push(format!("{wrong} of {} checked reservations have the wrong status", sample.len()));
    }
    let held = ledger.recs.iter().filter(|r| r.state == RecState::Held).count() as u64;
    let audit = json!({
        "passed": failures.is_empty(),
        "failures": failures,
        "examples": examples,
        "server_clean": clean,
        "server_totals_delta": server,
        "acknowledged": {
            "accepted": ledger.accepted, "confirmed": ledger.confirmed, "released": ledger.released,
            "balance_paid": ledger.paid, "shipped": ledger.shipped, "held_or_expired": held, "follow_up_refused": ledger.follow_up_refused,
            "unknown_outcome": ledger.unknown,
        },
        "oversold": oversold,
        "stock_mismatch": mismatched,
        "skus_checked": checked,
        "per_customer_limit_violations": limit_violations,
        "campaigns": campaigns,
        "reservations_checked": sample.len(),
        "reservation_status_mismatch": wrong,
        "reservation_statuses": statuses,
        "ended_by_server": ended.after.len(),
        "ended_during_snapshot": ended.after.len().saturating_sub(ended.before.len()),
    });
    let passed = audit["passed"].as_bool().unwrap_or(false);
    Ok((audit, passed))
}

/// How GetReservation answers for an ended reservation past the server's retention of ended
/// reservations (262,144 per partition): long runs that release or ship see it for old ids; the
/// per-SKU comparison, not the status, is what proves those units were accounted for.
const FORGOTTEN: &str = "error:unknown_reservation";

/// Unsettled acknowledged reservations (no confirm, payment or release acknowledged) the server
/// reports as ended by itself (expired, balance missed, released when their campaign closed),
/// asked just before and just after the final snapshot.
struct Endings {
    before: HashSet<u64>,
    after: HashSet<u64>,
}

/// A hold whose TTL has passed (or whose follow-up was refused) and that the server no longer
/// knows is taken as ended and then forgotten: the soak cannot tell it from a lost one (crash torture is what proves durability).
async fn ended_by_server(ledger: &Ledger, wire: &mut Wire) -> Result<HashSet<u64>, LoadError> {
    let ids: Vec<u64> = ledger.unsettled.keys().copied().collect();
    let mut ended = HashSet::new();
    for chunk in ids.chunks(65_536) {
        let requests: Vec<Req> = chunk.iter().map(|id| Req::GetReservation(*id)).collect();
        let answers = wire.call_many(&requests, 256).await?;
        let now = now_unix_ms();
        for (id, answer) in chunk.iter().zip(answers) {
            let gone = match answer {
                Response::Reservation(view) => {
                    matches!(view.status.name(), "expired" | "balance_missed" | "released")
                }
                Response::Error(e) => {
                    e.name == "unknown_reservation"
                        && ledger.unsettled.get(id).is_some_and(|u| u.refused || u.expires_unix_ms < now)
                }
                _ => false,
            };
            if gone {
                ended.insert(*id);
            }
        }
    }
    Ok(ended)
}
