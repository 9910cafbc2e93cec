//! One batch of log records turned into row changes, written in ONE transaction together with the
//! new per-partition positions.
//!
//! Movements are appended as they come (one row per `StockMoved` event, keyed by
//! `(partition, lsn, seq)`). Everything else is "dirty keys": a reservation, SKU or order touched
//! by an event of the batch is rewritten at flush time from the replica partition's CURRENT state,
//! which is the state after the batch's last record, the same point the stored position names.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use oms_engine::event::{Event, ReleaseReason};
use oms_engine::replica::Replica;
use oms_engine::{Partition, ReservationId, SkuId};
use serde_json::Value;
use tokio_postgres::Client;

#[derive(Default)]
struct Movements {
    partition: Vec<i32>,
    lsn: Vec<i64>,
    seq: Vec<i32>,
    at_ms: Vec<i64>,
    sku: Vec<i64>,
    warehouse: Vec<i32>,
    kind: Vec<String>,
    qty: Vec<i64>,
    cause: Vec<i64>,
}

#[derive(Default)]
pub struct Batch {
    /// Records projected in this batch.
    pub records: usize,
    movements: Movements,
    /// (partition, reservation) -> status from the events, used when the replica no longer
    /// remembers the reservation (ended ones are forgotten after a while).
    reservations: BTreeMap<(u32, u64), Option<&'static str>>,
    /// Reservations created in this batch: their allocations are written.
    created: BTreeSet<(u32, u64)>,
    skus: BTreeSet<(u32, u32)>,
    orders: BTreeSet<(u32, u64)>,
    /// Partitions installed from a snapshot newer than the stored position: rewrite all their rows.
    full: BTreeSet<u32>,
    /// New position per partition, written with the rows.
    pub positions: BTreeMap<u32, u64>,
    pub started: Option<Instant>,
}

/// Rows written by one flush (for the throughput log).
pub type Rows = u64;

fn movement_kind(kind: oms_engine::event::MovementKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.full.is_empty() && self.positions.is_empty()
    }

    /// A partition's state came from a snapshot past the stored position: rewrite all its rows.
    pub fn full_resync(&mut self, partition: u32, lsn: u64) {
        self.full.insert(partition);
        self.positions.insert(partition, lsn);
        self.started.get_or_insert_with(Instant::now);
    }

    /// Record the effects of one log record (its events) for the next flush.
    pub fn add(&mut self, partition: u32, lsn: u64, now_ms: u64, events: &[Event]) {
        self.records += 1;
        self.positions.insert(partition, lsn);
        self.started.get_or_insert_with(Instant::now);
        let mut seq = 0i32;
        for event in events {
            match event {
                Event::StockMoved(m) => {
                    let mv = &mut self.movements;
                    mv.partition.push(partition as i32);
                    mv.lsn.push(lsn as i64);
                    mv.seq.push(seq);
                    mv.at_ms.push(now_ms as i64);
                    mv.sku.push(i64::from(m.sku.0));
                    mv.warehouse.push(i32::from(m.warehouse.0));
                    mv.kind.push(movement_kind(m.kind));
                    mv.qty.push(m.qty as i64);
                    mv.cause.push(m.cause as i64);
                    seq += 1;
                    self.skus.insert((partition, m.sku.0));
                }
                Event::BucketSet { sku, .. } => {
                    self.skus.insert((partition, sku.0));
                }
                Event::Reserved { id, replayed: false, .. } => {
                    self.reservations.insert((partition, id.0), Some("held"));
                    self.created.insert((partition, id.0));
                }
                Event::Confirmed { id } => {
                    self.reservations.insert((partition, id.0), Some("confirmed"));
                }
                Event::Released { id, reason } => {
                    let status = match reason {
                        ReleaseReason::Expired => "expired",
                        ReleaseReason::BalanceMissed => "balance_missed",
                        _ => "released",
                    };
                    self.reservations.insert((partition, id.0), Some(status));
                }
                Event::Shipped { id } => {
                    self.reservations.insert((partition, id.0), Some("shipped"));
                }
                Event::BalancePaid { id } | Event::PromiseChanged { id, .. } => {
                    self.reservations.entry((partition, id.0)).or_insert(None);
                }
                Event::Order(order_event) => {
                    // Read the ids generically so new order events need no change here.
                    if let Ok(value) = serde_json::to_value(order_event) {
                        for id in order_ids(&value) {
                            self.orders.insert((partition, id));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Write the batch and the positions in one transaction.
    pub async fn flush(&self, pg: &mut Client, replica: &Replica) -> Result<Rows, tokio_postgres::Error> {
        let mut rows: Rows = 0;
        let tx = pg.transaction().await?;

        // Expand full resyncs into dirty keys.
        let mut reservations = self.reservations.clone();
        let mut created = self.created.clone();
        let mut skus = self.skus.clone();
        let mut orders = self.orders.clone();
        for &p in &self.full {
            let Some(state) = replica.partition(p) else { continue };
            state.for_each_sku(|sku, _, _| {
                skus.insert((p, sku.0));
            });
            let image = state.image();
            for r in image.live.iter().chain(image.ended.iter().map(|e| &e.reservation)) {
                reservations.entry((p, r.id.0)).or_insert(None);
                created.insert((p, r.id.0));
            }
            for order in state.orders().orders() {
                orders.insert((p, order.id));
            }
        }

        let m = &self.movements;
        if !m.lsn.is_empty() {
            rows += tx
                .execute(
                    "INSERT INTO stock_movements (partition, lsn, seq, at_ms, sku, warehouse, kind, qty, cause)
                     SELECT * FROM UNNEST($1::int4[], $2::int8[], $3::int4[], $4::int8[], $5::int8[], $6::int4[],
                                          $7::text[], $8::int8[], $9::int8[])",
                    &[&m.partition, &m.lsn, &m.seq, &m.at_ms, &m.sku, &m.warehouse, &m.kind, &m.qty, &m.cause],
                )
                .await?;
        }

        rows += write_reservations(&tx, replica, &reservations, &created).await?;
        rows += write_stock(&tx, replica, &skus).await?;
        if !orders.is_empty() {
            rows += write_orders(&tx, replica, &orders).await?;
        }

        let (mut pp, mut pl) = (Vec::new(), Vec::new());
        for (&p, &lsn) in &self.positions {
            pp.push(p as i32);
            pl.push(lsn as i64);
        }
        if !pp.is_empty() {
            tx.execute(
                "INSERT INTO sink_position (partition, lsn) SELECT * FROM UNNEST($1::int4[], $2::int8[])
                 ON CONFLICT (partition) DO UPDATE SET lsn = EXCLUDED.lsn",
                &[&pp, &pl],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(rows)
    }
}

/// Order ids named by an order event (shipments and after-sales requests name their order in
/// their id's upper bits).
fn order_ids(value: &Value) -> Vec<u64> {
    let mut ids = Vec::new();
    for key in ["order", "primary"] {
        if let Some(id) = value.get(key).and_then(Value::as_u64) {
            ids.push(id);
        }
    }
    if let Some(list) = value.get("followers").and_then(Value::as_array) {
        ids.extend(list.iter().filter_map(Value::as_u64));
    }
    for key in ["shipment", "after_sale"] {
        if let Some(id) = value.get(key).and_then(Value::as_u64) {
            ids.push(oms_engine::orders::model::parent_order(id));
        }
    }
    if let Some(list) = value.get("shipments").and_then(Value::as_array) {
        ids.extend(list.iter().filter_map(Value::as_u64).map(oms_engine::orders::model::parent_order));
    }
    ids
}

async fn write_reservations(
    tx: &tokio_postgres::Transaction<'_>,
    replica: &Replica,
    dirty: &BTreeMap<(u32, u64), Option<&'static str>>,
    created: &BTreeSet<(u32, u64)>,
) -> Result<Rows, tokio_postgres::Error> {
    if dirty.is_empty() {
        return Ok(0);
    }
    let mut rows = 0;
    // Full rows from the replica's view.
    let (mut id, mut part, mut status, mut customer, mut channel, mut campaign, mut created_at, mut expires) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Status only, for reservations the replica has forgotten.
    let (mut fid, mut fpart, mut fstatus) = (Vec::new(), Vec::new(), Vec::<String>::new());
    // Allocations of new reservations, summed per (sku, warehouse).
    let (mut aid, mut apart, mut asku, mut awh, mut aqty) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut did, mut dpart) = (Vec::new(), Vec::new());
    for (&(p, rid), fallback) in dirty {
        let view = replica.partition(p).and_then(|s: &Partition| s.reservation(ReservationId(rid)));
        match view {
            Some(v) => {
                id.push(rid as i64);
                part.push(p as i32);
                status.push(v.status.clone());
                customer.push(v.customer as i64);
                channel.push(i32::from(v.channel));
                campaign.push(v.campaign.map(|c| i64::from(c.0)));
                created_at.push(v.created_at_ms as i64);
                expires.push(v.expires_at_ms as i64);
                if created.contains(&(p, rid)) {
                    did.push(rid as i64);
                    dpart.push(p as i32);
                    let mut summed: BTreeMap<(u32, u16), u64> = BTreeMap::new();
                    for a in &v.allocations {
                        *summed.entry((a.sku.0, a.warehouse.0)).or_default() += u64::from(a.qty);
                    }
                    for ((sku, wh), qty) in summed {
                        aid.push(rid as i64);
                        apart.push(p as i32);
                        asku.push(i64::from(sku));
                        awh.push(i32::from(wh));
                        aqty.push(qty as i64);
                    }
                }
            }
            None => {
                if let Some(s) = fallback {
                    fid.push(rid as i64);
                    fpart.push(p as i32);
                    fstatus.push((*s).to_owned());
                }
            }
        }
    }
    if !id.is_empty() {
        rows += tx
            .execute(
                "INSERT INTO reservations (id, partition, status, customer, channel, campaign, created_at_ms, expires_at_ms)
                 SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::text[], $4::int8[], $5::int4[], $6::int8[],
                                      $7::int8[], $8::int8[])
                 ON CONFLICT (id, partition) DO UPDATE SET status = EXCLUDED.status, customer = EXCLUDED.customer,
                     channel = EXCLUDED.channel, campaign = EXCLUDED.campaign,
                     created_at_ms = EXCLUDED.created_at_ms, expires_at_ms = EXCLUDED.expires_at_ms",
                &[&id, &part, &status, &customer, &channel, &campaign, &created_at, &expires],
            )
            .await?;
    }
    if !fid.is_empty() {
        rows += tx
            .execute(
                "UPDATE reservations r SET status = u.status
                 FROM UNNEST($1::int8[], $2::int4[], $3::text[]) AS u(id, partition, status)
                 WHERE r.id = u.id AND r.partition = u.partition",
                &[&fid, &fpart, &fstatus],
            )
            .await?;
    }
    if !did.is_empty() {
        tx.execute(
            "DELETE FROM reservation_allocations a USING UNNEST($1::int8[], $2::int4[]) AS d(id, partition)
             WHERE a.reservation_id = d.id AND a.partition = d.partition",
            &[&did, &dpart],
        )
        .await?;
    }
    if !aid.is_empty() {
        rows += tx
            .execute(
                "INSERT INTO reservation_allocations (reservation_id, partition, sku, warehouse, qty)
                 SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::int8[], $4::int4[], $5::int8[])",
                &[&aid, &apart, &asku, &awh, &aqty],
            )
            .await?;
    }
    Ok(rows)
}

async fn write_stock(
    tx: &tokio_postgres::Transaction<'_>,
    replica: &Replica,
    dirty: &BTreeSet<(u32, u32)>,
) -> Result<Rows, tokio_postgres::Error> {
    let (mut sku, mut wh, mut part, mut code, mut on_hand, mut reserved, mut pooled, mut available) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(p, s) in dirty {
        let Some(view) = replica.partition(p).and_then(|state| state.stock(SkuId(s))) else { continue };
        for w in &view.warehouses {
            sku.push(i64::from(s));
            wh.push(i32::from(w.warehouse.0));
            part.push(p as i32);
            code.push(view.code.clone());
            on_hand.push(w.on_hand as i64);
            reserved.push(w.reserved as i64);
            pooled.push(w.pooled as i64);
            available.push(w.available as i64);
        }
    }
    if sku.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO stock_levels (sku, warehouse, partition, code, on_hand, reserved, pooled, available)
         SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::int4[], $4::text[], $5::int8[], $6::int8[], $7::int8[],
                              $8::int8[])
         ON CONFLICT (sku, warehouse) DO UPDATE SET partition = EXCLUDED.partition, code = EXCLUDED.code,
             on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved, pooled = EXCLUDED.pooled,
             available = EXCLUDED.available",
        &[&sku, &wh, &part, &code, &on_hand, &reserved, &pooled, &available],
    )
    .await
}

async fn write_orders(
    tx: &tokio_postgres::Transaction<'_>,
    replica: &Replica,
    dirty: &BTreeSet<(u32, u64)>,
) -> Result<Rows, tokio_postgres::Error> {
    let mut rows = 0;
    let ids: Vec<i64> = dirty.iter().map(|&(_, id)| id as i64).collect();
    tx.execute("DELETE FROM order_lines WHERE order_id = ANY($1)", &[&ids]).await?;
    tx.execute("DELETE FROM shipments WHERE order_id = ANY($1)", &[&ids]).await?;
    for &(p, id) in dirty {
        let Some(order) = replica.partition(p).and_then(|s| s.orders().order(id)) else { continue };
        let oid = id as i64;
        let channel =
            serde_json::to_value(order.channel).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        rows += tx
            .execute(
                "INSERT INTO orders (id, partition, channel, external_id, shop, buyer, status, paid_cents,
                                     shipping_cents, created_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, paid_cents = EXCLUDED.paid_cents,
                     shipping_cents = EXCLUDED.shipping_cents, updated_at_ms = EXCLUDED.updated_at_ms,
                     shop = EXCLUDED.shop, buyer = EXCLUDED.buyer",
                &[
                    &oid,
                    &(p as i32),
                    &channel,
                    &order.external_id,
                    &order.shop,
                    &order.buyer,
                    &order.status.name(),
                    &order.paid_cents,
                    &order.shipping_cents,
                    &(order.created_at_ms as i64),
                    &(order.updated_at_ms as i64),
                ],
            )
            .await?;
        for (n, line) in order.lines.iter().enumerate() {
            rows += tx
                .execute(
                    "INSERT INTO order_lines (order_id, line_no, sku, sku_code, qty, list_cents, allocated_cents,
                                              allocated_qty, refunded_cents)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &oid,
                        &(n as i32),
                        &i64::from(line.sku.0),
                        &line.sku_code,
                        &i64::from(line.qty),
                        &line.list_cents,
                        &line.allocated_cents,
                        &i64::from(line.allocated_qty),
                        &line.refunded_cents,
                    ],
                )
                .await?;
        }
        for s in &order.shipments {
            let status =
                serde_json::to_value(s.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            rows += tx
                .execute(
                    "INSERT INTO shipments (id, order_id, warehouse, reservation_id, status, carrier, waybill,
                                            created_at_ms, shipped_at_ms, delivered_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &(s.id as i64),
                        &oid,
                        &i32::from(s.warehouse.0),
                        &(s.reservation.0 as i64),
                        &status,
                        &s.carrier,
                        &s.waybill,
                        &(s.created_at_ms as i64),
                        &s.shipped_at_ms.map(|t| t as i64),
                        &s.delivered_at_ms.map(|t| t as i64),
                    ],
                )
                .await?;
        }
    }
    Ok(rows)
}
