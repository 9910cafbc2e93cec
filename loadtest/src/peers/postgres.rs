//! PostgreSQL peer: a reservation is one transaction of conditional UPDATEs
//! (`UPDATE lt_stock SET avail = avail - q WHERE sku = s AND avail >= q`, one per line, in SKU
//! order), rolled back when any line matched no row, then an INSERT of the reservation; flash-sale
//! per-customer limits are an upsert into `lt_limits` checked in the same transaction. The
//! transaction is a PL/pgSQL function so it costs one round trip; durability is the server's
//! `synchronous_commit` (see benches/peers/postgres.sh). Setup drops and recreates the `lt_*` tables.

use std::sync::Arc;

use serde_json::json;
use tokio_postgres::{Client, NoTls, Statement};

use super::{audit_peer, check_scenario, finish_report, run_virtual_clients, PeerConn, Reserved};
use crate::config::Args;
use crate::error::LoadError;
use crate::stats::{Outcome, Report};
use crate::workload::{Plan, ReserveOp};

const SCHEMA: &str = r#"
DROP TABLE IF EXISTS lt_stock, lt_limits, lt_reservation;
CREATE TABLE lt_stock (sku int PRIMARY KEY, avail bigint NOT NULL);
CREATE TABLE lt_limits (campaign int, customer bigint, units int NOT NULL, PRIMARY KEY (campaign, customer));
CREATE TABLE lt_reservation (id bigserial PRIMARY KEY, skus int[] NOT NULL, qtys int[] NOT NULL, campaign int,
  customer bigint NOT NULL, status text NOT NULL, expires_at timestamptz NOT NULL);
CREATE OR REPLACE FUNCTION lt_reserve(p_skus int[], p_qtys int[], p_campaign int, p_customer bigint, p_limit int, p_ttl_ms bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE i int; total int := 0; held int; rid bigint;
BEGIN
  FOR i IN 1 .. array_length(p_skus, 1) LOOP
    UPDATE lt_stock SET avail = avail - p_qtys[i] WHERE sku = p_skus[i] AND avail >= p_qtys[i];
    IF NOT FOUND THEN
      IF p_campaign IS NOT NULL THEN RAISE EXCEPTION 'sold_out' USING ERRCODE = 'LT001'; END IF;
      RAISE EXCEPTION 'insufficient_stock' USING ERRCODE = 'LT002';
    END IF;
    total := total + p_qtys[i];
  END LOOP;
  IF p_campaign IS NOT NULL THEN
    INSERT INTO lt_limits AS l VALUES (p_campaign, p_customer, total)
      ON CONFLICT (campaign, customer) DO UPDATE SET units = l.units + EXCLUDED.units RETURNING units INTO held;
    IF held > p_limit THEN RAISE EXCEPTION 'limit_exceeded' USING ERRCODE = 'LT003'; END IF;
  END IF;
  INSERT INTO lt_reservation (skus, qtys, campaign, customer, status, expires_at)
    VALUES (p_skus, p_qtys, p_campaign, p_customer, 'held', now() + p_ttl_ms * interval '1 millisecond') RETURNING id INTO rid;
  RETURN rid;
END $$;
CREATE OR REPLACE FUNCTION lt_release(p_id bigint) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r lt_reservation%ROWTYPE; i int;
BEGIN
  UPDATE lt_reservation SET status = 'released' WHERE id = p_id AND status = 'held' RETURNING * INTO r;
  IF NOT FOUND THEN RETURN 0; END IF;
  FOR i IN 1 .. array_length(r.skus, 1) LOOP
    UPDATE lt_stock SET avail = avail + r.qtys[i] WHERE sku = r.skus[i];
  END LOOP;
  IF r.campaign IS NOT NULL THEN
    UPDATE lt_limits SET units = units - (SELECT sum(q) FROM unnest(r.qtys) q) WHERE campaign = r.campaign AND customer = r.customer;
  END IF;
  RETURN 1;
END $$;
"#;

pub struct PgConn {
    client: Client,
    reserve: Statement,
    confirm: Statement,
    release: Statement,
}

impl PgConn {
    async fn connect(url: &str) -> Result<PgConn, LoadError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("postgres connection: {e}");
            }
        });
        let reserve = client.prepare("SELECT lt_reserve($1, $2, $3, $4, $5, $6)").await?;
        let confirm =
            client.prepare("UPDATE lt_reservation SET status = 'confirmed' WHERE id = $1 AND status = 'held'").await?;
        let release = client.prepare("SELECT lt_release($1)").await?;
        Ok(PgConn { client, reserve, confirm, release })
    }

    pub async fn reserve(&self, plan: &Plan, op: &ReserveOp) -> Reserved {
        let skus: Vec<i32> = op.lines.iter().map(|(s, _)| *s as i32).collect();
        let qtys: Vec<i32> = op.lines.iter().map(|(_, q)| *q as i32).collect();
        let campaign: Option<i32> = op.campaign.map(|c| c as i32);
        let limit = op.campaign.map_or(0, |c| plan.campaigns[c as usize].per_customer_limit) as i32;
        let customer = op.customer as i64;
        let ttl = op.ttl_ms as i64;
        match self.client.query_one(&self.reserve, &[&skus, &qtys, &campaign, &customer, &limit, &ttl]).await {
            Ok(row) => match row.try_get::<_, i64>(0) {
                Ok(id) => Reserved::Id(id as u64),
                Err(_) => Reserved::Failed("unexpected_answer"),
            },
            Err(e) => match e.code().map(|c| c.code()) {
                Some("LT001") => Reserved::Refused("sold_out"),
                Some("LT002") => Reserved::Refused("insufficient_stock"),
                Some("LT003") => Reserved::Refused("limit_exceeded"),
                Some("40P01") => Reserved::Failed("deadlock"),
                Some("40001") => Reserved::Failed("serialization_failure"),
                _ => {
                    tracing::debug!("postgres reserve: {e}");
                    Reserved::Failed("db_error")
                }
            },
        }
    }

    pub async fn follow(&self, confirm: bool, id: u64) -> Result<(), Outcome> {
        let id = id as i64;
        let changed = if confirm {
            self.client.execute(&self.confirm, &[&id]).await.map(|n| n as i64)
        } else {
            match self.client.query_one(&self.release, &[&id]).await {
                Ok(row) => Ok(i64::from(row.try_get::<_, i32>(0).unwrap_or(0))),
                Err(e) => Err(e),
            }
        };
        match changed {
            Ok(1) => Ok(()),
            Ok(_) => Err(Outcome::Rejected("invalid_reservation_state")),
            Err(_) => Err(Outcome::Error("db_error")),
        }
    }
}

pub async fn run(args: &Args, plan: Arc<Plan>, url: &str) -> Result<Report, LoadError> {
    check_scenario(args.scenario, "postgres")?;
    let (control, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    if !args.no_setup {
        control.batch_execute(SCHEMA).await?;
        let catalog = plan.catalog;
        if catalog > 0 {
            control
                .batch_execute(&format!(
                    "INSERT INTO lt_stock SELECT g, {} FROM generate_series(0, {}) g",
                    plan.p.stock,
                    catalog - 1
                ))
                .await?;
        }
        for s in catalog..plan.sku_count() {
            control.batch_execute(&format!("INSERT INTO lt_stock VALUES ({s}, {})", plan.initial_on_hand(s))).await?;
        }
        control.batch_execute("VACUUM ANALYZE lt_stock").await?;
    }
    let sync: String = control.query_one("SHOW synchronous_commit", &[]).await?.try_get(0)?;
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(PeerConn::Postgres(Arc::new(PgConn::connect(url).await?)));
    }
    let (stats, ledger, skus) = run_virtual_clients(args, &plan, conns).await?;
    let mut left = vec![None; plan.sku_count() as usize];
    for row in control.query("SELECT sku, avail FROM lt_stock", &[]).await? {
        let (sku, avail): (i32, i64) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(slot) = left.get_mut(sku as usize) {
            *slot = Some(avail);
        }
    }
    let (mut audit, passed) = audit_peer(&plan, &ledger, &skus, &left);
    audit["design"] = json!("conditional UPDATE per line in one transaction (PL/pgSQL function), limits upsert");
    audit["synchronous_commit"] = json!(sync);
    let note = format!(
        "postgres: {} sessions, one transaction each at a time (--pipeline ignored), synchronous_commit={sync}",
        args.connections
    );
    Ok(finish_report(&stats, args, (audit, passed), note))
}
