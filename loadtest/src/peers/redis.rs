//! Redis peer: one Lua script (EVALSHA) per reservation, all-or-nothing over its lines, with TTL
//! and per-customer limit; small scripts for confirm and release.
//!
//! Keys: `lt:s:{sku}` units left (flash SKUs: the pool), `lt:l:{campaign}:{customer}` units held,
//! `lt:r:{id}` the reservation (`sku=qty,...`, PX ttl; prefixed `C|` once confirmed), `lt:seq`.
//! Setup runs FLUSHDB: point this at a benchmark instance only. Release/expiry keys are touched
//! inside scripts without being declared (fine on one instance, not cluster-safe), and a hold that
//! expires in Redis does not return its units (the naive design; runs use TTLs longer than the run).

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use serde_json::json;

use super::{audit_peer, check_scenario, finish_report, run_virtual_clients, PeerConn, Reserved};
use crate::config::Args;
use crate::error::LoadError;
use crate::stats::{Outcome, Report};
use crate::workload::{Plan, ReserveOp};

const RESERVE: &str = r#"
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = #ARGV - 2
for i = 1, n do
  local a = tonumber(redis.call('GET', KEYS[i]) or '0')
  if a < tonumber(ARGV[i + 2]) then
    if limit > 0 and a <= 0 then return -2 end
    return -1
  end
end
local total = 0
for i = 1, n do total = total + tonumber(ARGV[i + 2]) end
if limit > 0 then
  local held = tonumber(redis.call('GET', KEYS[n + 1]) or '0')
  if held + total > limit then return -3 end
  redis.call('INCRBY', KEYS[n + 1], total)
end
local id = redis.call('INCR', 'lt:seq')
local parts = {}
for i = 1, n do
  redis.call('DECRBY', KEYS[i], ARGV[i + 2])
  parts[#parts + 1] = KEYS[i] .. '=' .. ARGV[i + 2]
end
if limit > 0 then parts[#parts + 1] = 'L:' .. KEYS[n + 1] .. '=' .. total end
redis.call('SET', 'lt:r:' .. id, table.concat(parts, ','), 'PX', ttl)
return id
"#;

const CONFIRM: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return -4 end
if string.sub(v, 1, 2) == 'C|' then return 0 end
redis.call('SET', KEYS[1], 'C|' .. v)
return 1
"#;

const RELEASE: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return -4 end
if string.sub(v, 1, 2) == 'C|' then return -5 end
for k, q in string.gmatch(v, '([^,=]+)=([^,]+)') do
  if string.sub(k, 1, 2) == 'L:' then
    redis.call('DECRBY', string.sub(k, 3), q)
  else
    redis.call('INCRBY', k, q)
  end
end
redis.call('DEL', KEYS[1])
return 1
"#;

#[derive(Clone)]
pub struct RedisConn {
    con: MultiplexedConnection,
    shas: Arc<[String; 3]>,
}

fn stock_key(sku: u32) -> String {
    format!("lt:s:{sku}")
}

impl RedisConn {
    pub async fn reserve(&mut self, plan: &Plan, op: &ReserveOp) -> Reserved {
        let limit = op.campaign.map_or(0, |c| plan.campaigns[c as usize].per_customer_limit);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.shas[0]).arg(op.lines.len() + usize::from(limit > 0));
        for (s, _) in &op.lines {
            cmd.arg(stock_key(*s));
        }
        if let Some(c) = op.campaign.filter(|_| limit > 0) {
            cmd.arg(format!("lt:l:{c}:{}", op.customer));
        }
        cmd.arg(op.ttl_ms).arg(limit);
        for (_, q) in &op.lines {
            cmd.arg(*q);
        }
        match cmd.query_async::<i64>(&mut self.con).await {
            Ok(id) if id > 0 => Reserved::Id(id as u64),
            Ok(-1) => Reserved::Refused("insufficient_stock"),
            Ok(-2) => Reserved::Refused("sold_out"),
            Ok(-3) => Reserved::Refused("limit_exceeded"),
            Ok(_) => Reserved::Failed("unexpected_answer"),
            Err(e) => {
                tracing::debug!("redis reserve: {e}");
                Reserved::Failed("redis_error")
            }
        }
    }

    pub async fn follow(&mut self, confirm: bool, id: u64) -> Result<(), Outcome> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.shas[if confirm { 1 } else { 2 }]).arg(1).arg(format!("lt:r:{id}"));
        match cmd.query_async::<i64>(&mut self.con).await {
            Ok(1) | Ok(0) => Ok(()),
            Ok(-4) => Err(Outcome::Rejected("unknown_reservation")),
            Ok(_) => Err(Outcome::Rejected("invalid_reservation_state")),
            Err(_) => Err(Outcome::Error("redis_error")),
        }
    }
}

pub async fn run(args: &Args, plan: Arc<Plan>, url: &str) -> Result<Report, LoadError> {
    check_scenario(args.scenario, "redis")?;
    let client = redis::Client::open(url)?;
    let mut control = client.get_multiplexed_async_connection().await?;
    let mut shas = Vec::new();
    for src in [RESERVE, CONFIRM, RELEASE] {
        let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(src).query_async(&mut control).await?;
        shas.push(sha);
    }
    let shas: Arc<[String; 3]> = Arc::new([shas[0].clone(), shas[1].clone(), shas[2].clone()]);
    if !args.no_setup {
        let _: () = redis::cmd("FLUSHDB").query_async(&mut control).await?;
        let all: Vec<u32> = (0..plan.sku_count()).collect();
        for chunk in all.chunks(10_000) {
            let mut cmd = redis::cmd("MSET");
            for s in chunk {
                cmd.arg(stock_key(*s)).arg(plan.initial_on_hand(*s));
            }
            let _: () = cmd.query_async(&mut control).await?;
        }
    }
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        let con = client.get_multiplexed_async_connection().await?;
        for _ in 0..args.pipeline {
            conns.push(PeerConn::Redis(RedisConn { con: con.clone(), shas: Arc::clone(&shas) }));
        }
    }
    let (stats, ledger, skus) = run_virtual_clients(args, &plan, conns).await?;
    // Audit: units left per SKU against our acknowledged history.
    let all: Vec<u32> = (0..plan.sku_count()).collect();
    let mut left = Vec::with_capacity(all.len());
    for chunk in all.chunks(10_000) {
        let mut cmd = redis::cmd("MGET");
        for s in chunk {
            cmd.arg(stock_key(*s));
        }
        let values: Vec<Option<i64>> = cmd.query_async(&mut control).await?;
        left.extend(values);
    }
    let (mut audit, passed) = audit_peer(&plan, &ledger, &skus, &left);
    audit["design"] = json!("one Lua script per reservation (EVALSHA), all-or-nothing, PX ttl, per-customer counter");
    let note =
        format!("redis: {} virtual clients over {} connections", args.connections * args.pipeline, args.connections);
    Ok(finish_report(&stats, args, (audit, passed), note))
}
