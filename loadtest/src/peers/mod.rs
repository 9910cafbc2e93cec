//! Peers run the same scenario and request stream against other designs, for comparison:
//! Redis with one Lua script per reservation, and PostgreSQL with conditional UPDATEs in one
//! transaction. Each "virtual client" runs one transaction at a time (reserve, then its confirm or
//! release); there are `connections x pipeline` of them for Redis (multiplexed over `connections`
//! TCP connections) and `connections` for PostgreSQL (a session runs one transaction at a time).

pub mod postgres;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::Args;
use crate::error::LoadError;
use crate::ledger::{ack_line, AckLog, Ledger, Rec, RecState, SkuCounters};
use crate::stats::{spawn_progress_reporter, Outcome, Progress, ProgressBuffer, Report, Stats};
use crate::workload::{CampaignKind, Op, OpGen, Plan, ReserveOp, Scenario, Then};

/// A peer's answer to one reservation.
pub enum Reserved {
    Id(u64),
    Refused(&'static str),
    Failed(&'static str),
}

/// One peer session (cheap to clone for Redis: a multiplexed connection).
pub enum PeerConn {
    Redis(redis::RedisConn),
    Postgres(Arc<postgres::PgConn>),
}

impl PeerConn {
    async fn reserve(&mut self, plan: &Plan, op: &ReserveOp) -> Reserved {
        match self {
            PeerConn::Redis(c) => c.reserve(plan, op).await,
            PeerConn::Postgres(c) => c.reserve(plan, op).await,
        }
    }

    /// Ok(()) or the outcome to record.
    async fn follow(&mut self, confirm: bool, id: u64) -> Result<(), Outcome> {
        match self {
            PeerConn::Redis(c) => c.follow(confirm, id).await,
            PeerConn::Postgres(c) => c.follow(confirm, id).await,
        }
    }
}

pub fn check_scenario(scenario: Scenario, target: &'static str) -> Result<(), LoadError> {
    match scenario {
        Scenario::FlashSale | Scenario::Checkout => Ok(()),
        s => Err(LoadError::Unsupported { scenario: s.name(), target }),
    }
}

/// Run the measured phase over `conns` (one virtual client each) and merge the results.
pub async fn run_virtual_clients(
    args: &Args,
    plan: &Arc<Plan>,
    conns: Vec<PeerConn>,
) -> Result<(Stats, Ledger, SkuCounters), LoadError> {
    let progress = Arc::new(Progress::default());
    let reporter =
        spawn_progress_reporter(Arc::clone(&progress), args.scenario.name().to_owned(), crate::run::hdr_log(args)?);
    let ack = match &args.ack_log {
        Some(p) => Some(AckLog::create(p)?),
        None => None,
    };
    let skus = Arc::new(SkuCounters::new(plan.catalog as usize));
    let base = Instant::now();
    let measure_start = base + args.warmup;
    let end = measure_start + args.duration;
    let n = conns.len();
    let step = args.rate.map(|r| Duration::from_secs_f64(n as f64 / r));
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let plan = Arc::clone(plan);
        let progress = Arc::clone(&progress);
        let ack = ack.clone();
        let skus = Arc::clone(&skus);
        tasks.push(tokio::spawn(async move {
            let mut gen = OpGen::new(Arc::clone(&plan), i as u64);
            let mut stats = Stats::default();
            let mut ledger = Ledger::new(plan.campaigns.len());
            let mut buf = ProgressBuffer::default();
            let mut ack_buf = String::new();
            // Spread open-loop clients over one interval.
            let mut next = base + step.map_or(Duration::ZERO, |s| s.mul_f64(i as f64 / n as f64));
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let intended = match step {
                    None => now,
                    Some(s) => {
                        if next > now {
                            tokio::time::sleep_until(next.into()).await;
                        }
                        let t = next;
                        next += s;
                        t
                    }
                };
                if intended >= end {
                    break;
                }
                let measured = intended >= measure_start;
                let Op::Reserve(mut op) = gen.next_op() else { continue };
                op.lines.sort_unstable();
                let answer = conn.reserve(&plan, &op).await;
                let done = Instant::now();
                let latency = done.duration_since(intended).as_micros() as u64;
                let (outcome, id) = match answer {
                    Reserved::Id(id) => (Outcome::Accepted, Some(id)),
                    Reserved::Refused(r) => (Outcome::Rejected(r), None),
                    Reserved::Failed(e) => (Outcome::Error(e), None),
                };
                if measured {
                    stats.record(latency, true, outcome);
                }
                buf.note(latency, outcome);
                if let Some(id) = id {
                    let rec = ledger.recs.len();
                    ledger.recs.push(Rec { id, state: RecState::Held, storm: false });
                    ledger.accepted += 1;
                    apply(&plan, &skus, &mut ledger, &op, 1);
                    if ack.is_some() {
                        ack_line(&mut ack_buf, id, op.lines.iter().map(|(s, q)| (u64::from(*s), *q)));
                    }
                    let confirm = match op.then {
                        Then::Confirm => Some(true),
                        Then::Release => Some(false),
                        _ => None,
                    };
                    if let Some(confirm) = confirm {
                        let t = Instant::now();
                        let r = conn.follow(confirm, id).await;
                        let latency = t.elapsed().as_micros() as u64;
                        let outcome = match r {
                            Ok(()) => {
                                if confirm {
                                    ledger.confirmed += 1;
                                    ledger.recs[rec].state = RecState::Confirmed;
                                } else {
                                    ledger.released += 1;
                                    ledger.recs[rec].state = RecState::Released;
                                    apply(&plan, &skus, &mut ledger, &op, -1);
                                }
                                Outcome::Ok
                            }
                            Err(o) => {
                                ledger.follow_up_refused += 1;
                                ledger.recs[rec].state = RecState::FollowUpRefused;
                                o
                            }
                        };
                        if measured && t < end {
                            stats.record(latency, false, outcome);
                        }
                        buf.note(latency, outcome);
                    }
                }
                if let Some(a) = &ack {
                    if ack_buf.len() > 16 << 10 {
                        a.write(&ack_buf);
                        ack_buf.clear();
                    }
                }
                buf.maybe_publish(&progress, false);
            }
            if let Some(a) = &ack {
                a.write(&ack_buf);
            }
            buf.maybe_publish(&progress, true);
            (stats, ledger)
        }));
    }
    let mut stats = Stats::default();
    let mut ledger = Ledger::new(plan.campaigns.len());
    for t in tasks {
        let (s, l) = t.await.map_err(|e| LoadError::Protocol(format!("client task failed: {e}")))?;
        stats.merge(&s);
        ledger.merge(l);
    }
    progress.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reporter.join();
    if let Some(a) = &ack {
        a.finish()?;
    }
    let skus = Arc::try_unwrap(skus).map_err(|_| LoadError::Protocol("counters still shared".into()))?;
    Ok((stats, ledger, skus))
}

fn apply(plan: &Plan, skus: &SkuCounters, ledger: &mut Ledger, op: &ReserveOp, sign: i64) {
    for (s, q) in &op.lines {
        if *s < plan.catalog {
            skus.add_net(*s, sign * i64::from(*q));
        }
    }
    if let Some(c) = op.campaign {
        let units: i64 = sign * op.lines.iter().map(|(_, q)| i64::from(*q)).sum::<i64>();
        if let Some(v) = ledger.campaign_units.get_mut(c as usize) {
            *v += units;
        }
        *ledger.customer_units.entry((c, op.customer)).or_insert(0) += units;
    }
}

/// Audit a peer from our records and its final stock (`final_stock[sku]` for every catalog index,
/// flash SKUs included: their rows are the pools).
pub fn audit_peer(plan: &Plan, ledger: &Ledger, skus: &SkuCounters, final_stock: &[Option<i64>]) -> (Value, bool) {
    let mut failures = Vec::new();
    let mut examples = Vec::new();
    let (mut oversold, mut mismatched) = (0u64, 0u64);
    for s in 0..plan.sku_count() {
        let initial = plan.initial_on_hand(s) as i64;
        let net = if s < plan.catalog {
            skus.net(s)
        } else {
            plan.campaigns
                .iter()
                .position(|c| c.sku == s)
                .map_or(0, |c| ledger.campaign_units.get(c).copied().unwrap_or(0))
        };
        let Some(fin) = final_stock.get(s as usize).copied().flatten() else { continue };
        if net > initial || fin < 0 {
            oversold += 1;
            if examples.len() < 5 {
                examples.push(format!("{}: {net} units acknowledged, {initial} set up, {fin} left", plan.sku_code(s)));
            }
        }
        if fin != initial - net {
            mismatched += 1;
            if examples.len() < 5 {
                examples.push(format!("{}: {fin} left, expected {}", plan.sku_code(s), initial - net));
            }
        }
    }
    let mut limit_violations = 0u64;
    for ((c, _), units) in &ledger.customer_units {
        if *units > i64::from(plan.campaigns[*c as usize].per_customer_limit) {
            limit_violations += 1;
        }
    }
    if oversold > 0 {
        failures.push(format!("{oversold} SKUs/pools oversold"));
    }
    if mismatched > 0 {
        failures.push(format!("{mismatched} SKUs/pools whose stock differs from the acknowledged history"));
    }
    if limit_violations > 0 {
        failures.push(format!("{limit_violations} customers over the per-customer limit"));
    }
    let campaigns: Vec<Value> = plan
        .campaigns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == CampaignKind::FlashSale)
        .map(|(i, c)| json!({"sku": plan.sku_code(c.sku), "units": c.units, "net_units_acknowledged": ledger.campaign_units.get(i)}))
        .collect();
    let held = ledger.recs.iter().filter(|r| r.state == RecState::Held).count();
    let passed = failures.is_empty();
    let audit = json!({
        "passed": passed,
        "failures": failures,
        "examples": examples,
        "acknowledged": {"accepted": ledger.accepted, "confirmed": ledger.confirmed, "released": ledger.released, "held": held,
                          "follow_up_refused": ledger.follow_up_refused},
        "oversold": oversold,
        "stock_mismatch": mismatched,
        "per_customer_limit_violations": limit_violations,
        "campaigns": campaigns,
    });
    (audit, passed)
}

pub fn finish_report(stats: &Stats, args: &Args, audit: (Value, bool), note: String) -> Report {
    let mut report = Report::from_stats(stats, args.duration.as_secs_f64(), &crate::run::percentiles(args));
    report.audit = audit.0;
    report.audit_passed = audit.1;
    report.notes.push(note);
    let _: BTreeMap<(), ()> = BTreeMap::new();
    report
}
