//! The relational tables the sink maintains, and its position bookkeeping.
//!
//! Engine ids are unsigned; PostgreSQL has no unsigned types, so u64 ids (reservations, orders,
//! shipments, causes) are stored as `bigint` with the same bit pattern (`as i64`): ids below 2^63
//! read back unchanged, larger ones read back negative.

use tokio_postgres::Client;

pub const SCHEMA: &str = r#"
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS sink_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS sink_position (
    partition integer PRIMARY KEY,
    lsn       bigint  NOT NULL
);
CREATE TABLE IF NOT EXISTS reservations (
    id            bigint  NOT NULL,
    partition     integer NOT NULL,
    status        text    NOT NULL,
    customer      bigint  NOT NULL,
    channel       integer NOT NULL,
    campaign      bigint,
    created_at_ms bigint,
    expires_at_ms bigint  NOT NULL,
    PRIMARY KEY (id, partition)
);
CREATE INDEX IF NOT EXISTS reservations_status ON reservations (status);
CREATE TABLE IF NOT EXISTS reservation_allocations (
    reservation_id bigint  NOT NULL,
    partition      integer NOT NULL,
    sku            bigint  NOT NULL,
    warehouse      integer NOT NULL,
    qty            bigint  NOT NULL,
    PRIMARY KEY (reservation_id, sku, warehouse)
);
CREATE TABLE IF NOT EXISTS stock_movements (
    partition integer NOT NULL,
    lsn       bigint  NOT NULL,
    seq       integer NOT NULL,
    at_ms     bigint  NOT NULL,
    sku       bigint  NOT NULL,
    warehouse integer NOT NULL,
    kind      text    NOT NULL,
    qty       bigint  NOT NULL,
    cause     bigint  NOT NULL,
    PRIMARY KEY (partition, lsn, seq)
);
CREATE TABLE IF NOT EXISTS stock_levels (
    sku       bigint  NOT NULL,
    warehouse integer NOT NULL,
    partition integer NOT NULL,
    code      text    NOT NULL,
    on_hand   bigint  NOT NULL,
    reserved  bigint  NOT NULL,
    pooled    bigint  NOT NULL,
    available bigint  NOT NULL,
    PRIMARY KEY (sku, warehouse)
);
CREATE TABLE IF NOT EXISTS orders (
    id             bigint PRIMARY KEY,
    partition      integer NOT NULL,
    channel        text    NOT NULL,
    external_id    text    NOT NULL,
    shop           text    NOT NULL,
    buyer          text    NOT NULL,
    status         text    NOT NULL,
    paid_cents     bigint  NOT NULL,
    shipping_cents bigint  NOT NULL,
    created_at_ms  bigint  NOT NULL,
    updated_at_ms  bigint  NOT NULL
);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id        bigint  NOT NULL,
    line_no         integer NOT NULL,
    sku             bigint  NOT NULL,
    sku_code        text    NOT NULL,
    qty             bigint  NOT NULL,
    list_cents      bigint  NOT NULL,
    allocated_cents bigint  NOT NULL,
    allocated_qty   bigint  NOT NULL,
    refunded_cents  bigint  NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE IF NOT EXISTS shipments (
    id              bigint PRIMARY KEY,
    order_id        bigint  NOT NULL,
    warehouse       integer NOT NULL,
    reservation_id  bigint  NOT NULL,
    status          text    NOT NULL,
    carrier         text,
    waybill         text,
    created_at_ms   bigint  NOT NULL,
    shipped_at_ms   bigint,
    delivered_at_ms bigint
);
"#;

/// Tables holding projected rows (emptied when the sink starts over).
pub const DATA_TABLES: &[&str] = &[
    "sink_position",
    "reservations",
    "reservation_allocations",
    "stock_movements",
    "stock_levels",
    "orders",
    "order_lines",
    "shipments",
];

pub async fn create(pg: &Client) -> Result<(), tokio_postgres::Error> {
    pg.batch_execute(SCHEMA).await
}

/// The partition count the stored positions belong to, if any.
pub async fn stored_partitions(pg: &Client) -> Result<Option<String>, tokio_postgres::Error> {
    let row = pg.query_opt("SELECT value FROM sink_meta WHERE key = 'partitions'", &[]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Forget everything projected and record the new partition count, in one transaction.
pub async fn reset(pg: &mut Client, partitions: u32) -> Result<(), tokio_postgres::Error> {
    let tx = pg.transaction().await?;
    tx.batch_execute(&format!("TRUNCATE {}", DATA_TABLES.join(", "))).await?;
    tx.execute(
        "INSERT INTO sink_meta (key, value) VALUES ('partitions', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&partitions.to_string()],
    )
    .await?;
    tx.commit().await
}

/// Stored position (last projected LSN) per partition; 0 where nothing was projected yet.
pub async fn positions(pg: &Client, partitions: u32) -> Result<Vec<u64>, tokio_postgres::Error> {
    let mut out = vec![0u64; partitions as usize];
    for row in pg.query("SELECT partition, lsn FROM sink_position", &[]).await? {
        let (p, lsn): (i32, i64) = (row.get(0), row.get(1));
        if let Some(slot) = usize::try_from(p).ok().and_then(|p| out.get_mut(p)) {
            *slot = lsn.max(0) as u64;
        }
    }
    Ok(out)
}
