//! The marketplace connectors (crate `oms-connectors`) wired into omsd: the hook partition
//! threads hand committed batches to, and omsd as the connectors' [`Host`].
//!
//! The connectors run inside omsd (so `omsd --demo` with `[[shops]]` is all a shop runs) but off
//! the partition threads: a partition thread only computes the new sellable quantities of the
//! SKUs its batch touched (for the channels some shop pushes) and notes them on the stock board,
//! after the commit. Everything else (HTTP, signing, retries) runs on the io runtime, and every
//! change the connectors make (imports, revisions, confirmations, exceptions) is an ordinary,
//! logged order command.

use std::sync::Arc;

use oms_connectors::{Connectors, Host, HostError, OrderOutcome, Package, StockBoard, StockRow, UnconfirmedOrder};
use oms_engine::orders::model::{ExceptionKind, SalesChannel, ShipmentStatus};
use oms_engine::orders::{intake, OrderCommand, OrderEvent};
use oms_engine::{ChannelId, Event, Partition, SkuId};
use oms_proto::{ErrorCode, JsonRequest, Response};
use serde_json::{json, Value};

use crate::orders::{OrderAnswer, OrderQuery, UnconfirmedView};
use crate::runtime::{Query, QueryAnswer};
use crate::server::ServerCtx;
use crate::wire_error::gateway;

/// Rows per unconfirmed-shipment query.
const UNCONFIRMED_PAGE: u32 = 1_000;

/// What partition threads call after each commit.
pub struct ConnectorHook {
    connectors: Arc<Connectors>,
    board: Arc<StockBoard>,
    channels: Vec<u16>,
}

impl std::fmt::Debug for ConnectorHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorHook").field("channels", &self.channels).finish()
    }
}

impl ConnectorHook {
    pub fn new(connectors: Arc<Connectors>) -> ConnectorHook {
        let board = connectors.board();
        let channels = board.channels();
        ConnectorHook { connectors, board, channels }
    }

    /// A batch committed in `partition` (log position `lsn`): note the new sellable quantities of
    /// every SKU it touched, and wake the confirmation tasks if a parcel shipped. Never blocks on
    /// anything but the board's short lock.
    pub fn committed(&self, partition: &Partition, events: &[Event], lsn: u64) {
        let mut skus: Vec<SkuId> = Vec::new();
        let mut every_sku = false;
        let mut shipped = false;
        for event in events {
            match event {
                Event::StockMoved(m) => skus.push(m.sku),
                Event::SkuDefined { id } => skus.push(*id),
                Event::ChannelStock { sku, .. } => skus.push(*sku),
                Event::ChannelPolicySet { .. } => every_sku = true,
                Event::Order(OrderEvent::ShipmentStatusChanged { to: ShipmentStatus::Shipped, .. }) => shipped = true,
                _ => {}
            }
        }
        if shipped {
            self.connectors.shipment_shipped();
        }
        if skus.is_empty() && !every_sku {
            return;
        }
        skus.sort_unstable();
        skus.dedup();
        let mut changes: Vec<(u32, u64)> = Vec::with_capacity(skus.len());
        for &channel in &self.channels {
            changes.clear();
            if every_sku {
                partition.for_each_channel_sellable(ChannelId(channel), |sku, _, qty| changes.push((sku.0, qty)));
            } else {
                changes.extend(
                    skus.iter().filter_map(|s| partition.channel_sellable(ChannelId(channel), *s).map(|q| (s.0, q))),
                );
            }
            self.board.note(channel, &changes, lsn);
        }
    }
}

/// omsd as the connectors see it.
pub struct GatewayHost {
    pub ctx: Arc<ServerCtx>,
}

fn host_error(e: impl std::fmt::Display) -> HostError {
    HostError(e.to_string())
}

impl Host for GatewayHost {
    async fn channel_stock(&self, channel: u16) -> Result<Vec<StockRow>, HostError> {
        let mut rows = Vec::new();
        for p in 0..self.ctx.workers.partitions() {
            match self.ctx.ask(p, Query::ChannelStock(channel)).await {
                QueryAnswer::ChannelStock { lsn, rows: part } => rows
                    .extend(part.into_iter().map(|(sku, code, qty)| StockRow { sku: sku.0, code, qty, version: lsn })),
                QueryAnswer::Unavailable(f) => return Err(HostError(format!("partition {p}: {f:?}"))),
                _ => return Err(HostError("unexpected answer".into())),
            }
        }
        Ok(rows)
    }

    async fn import_orders(
        &self,
        shop: &str,
        channel: SalesChannel,
        orders: Vec<Value>,
    ) -> Result<Vec<OrderOutcome>, HostError> {
        let parsed: Vec<_> = orders.iter().map(|v| intake::parse_value(channel, v)).collect();
        let ids: Vec<String> = orders
            .iter()
            .map(|v| {
                let id = match channel {
                    SalesChannel::Taobao => &v["tid"],
                    SalesChannel::Jd => &v["orderId"],
                    _ => &v["order_id"],
                };
                match id {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                }
            })
            .collect();
        let results = self.ctx.import_parsed(parsed, true, Some(shop)).await;
        Ok(results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let external_id = r["external_id"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| ids.get(i).cloned().unwrap_or_default());
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default()
                };
                if r["ok"] != true {
                    OrderOutcome::Rejected { external_id, error: r["error"].as_str().unwrap_or("rejected").to_owned() }
                } else if r["skipped"] == true {
                    OrderOutcome::Skipped { external_id, reason: r["reason"].as_str().unwrap_or_default().to_owned() }
                } else if r["revised"] == true {
                    let (changes, exceptions) = (strings(&r["changes"]), strings(&r["exceptions"]));
                    if changes.is_empty() && exceptions.is_empty() {
                        OrderOutcome::Unchanged { external_id }
                    } else {
                        OrderOutcome::Revised { external_id, changes, exceptions }
                    }
                } else if r["unchanged"] == true {
                    OrderOutcome::Unchanged { external_id }
                } else {
                    OrderOutcome::Imported { external_id }
                }
            })
            .collect())
    }

    async fn unconfirmed(&self, channel: SalesChannel) -> Result<Vec<UnconfirmedOrder>, HostError> {
        let mut views: Vec<UnconfirmedView> = Vec::new();
        for p in 0..self.ctx.workers.partitions() {
            let mut after = 0;
            loop {
                let query = OrderQuery::Unconfirmed { channel: Some(channel), after, limit: UNCONFIRMED_PAGE };
                let OrderAnswer::Unconfirmed(rows) = self.ctx.order_ask(p, query).await.map_err(host_error)? else {
                    return Err(HostError("unexpected answer".into()));
                };
                let full = rows.len() == UNCONFIRMED_PAGE as usize;
                after = rows.last().map_or(after, |r| r.shipment + 1);
                views.extend(rows);
                if !full {
                    break;
                }
            }
        }
        let mut orders: Vec<UnconfirmedOrder> = Vec::new();
        for v in views {
            let package =
                Package { shipment: v.shipment, carrier: v.carrier, waybill: v.waybill, sku_codes: v.sku_codes };
            match orders.iter_mut().find(|o| o.order == v.order) {
                Some(o) => o.packages.push(package),
                None => orders.push(UnconfirmedOrder {
                    order: v.order,
                    external_id: v.external_id,
                    shop: v.shop,
                    packages: vec![package],
                    total_packages: v.total_packages,
                    all_left: v.all_left,
                }),
            }
        }
        Ok(orders)
    }

    async fn confirmed(&self, order: u64, shipments: Vec<u64>) -> Result<(), HostError> {
        self.ctx.order_call(OrderCommand::ChannelConfirmed { order, shipments }).await.map(drop).map_err(host_error)
    }

    async fn raise(&self, order: u64, shipment: u64, detail: String) -> Result<(), HostError> {
        let command = OrderCommand::RaiseException {
            order,
            kind: ExceptionKind::ShipmentConfirmation,
            detail,
            shipment: Some(shipment),
        };
        self.ctx.order_call(command).await.map(drop).map_err(host_error)
    }

    async fn sku_code(&self, sku: u32) -> Option<String> {
        let sku = SkuId(sku);
        match self.ctx.ask(self.ctx.owner(sku), Query::Stock(sku)).await {
            QueryAnswer::Stock(Some(view)) => Some(view.code),
            _ => None,
        }
    }

    fn is_primary(&self) -> bool {
        !self.ctx.replication.is_following()
    }
}

/// Default and largest number of open exceptions `order_exceptions` answers.
const EXCEPTIONS_LIMIT: u32 = 1_000;

/// Answer a shop or exception-desk request (opcodes 67-71, ops): the shops' list, status and
/// sync, the open exceptions and their resolution.
pub async fn execute(ctx: &Arc<ServerCtx>, request: JsonRequest) -> Response {
    let bad = |m: String| Response::Error(gateway(ErrorCode::BAD_REQUEST, m));
    let answer: Result<Value, Response> = match request {
        JsonRequest::ShopList => Ok(json!({ "shops": ctx.connectors.as_ref().map(|c| c.list()).unwrap_or_default() })),
        JsonRequest::ShopStatus(body) => match (&ctx.connectors, body.shop.as_deref()) {
            (None, None) => Ok(json!({ "shops": [] })),
            (None, Some(shop)) => Err(bad(format!("unknown shop {shop:?} (no [[shops]] configured)"))),
            (Some(c), shop) => c.status(shop).map(|s| json!({ "shops": s })).map_err(|e| bad(e.to_string())),
        },
        JsonRequest::ShopSync(body) => match &ctx.connectors {
            None => Err(bad("no [[shops]] configured".to_owned())),
            Some(c) => c.sync(body.shop.as_deref()).map(|s| json!({ "synced": s })).map_err(|e| bad(e.to_string())),
        },
        JsonRequest::OrderExceptions(body) => exceptions(ctx, body.limit).await,
        JsonRequest::OrderResolve(body) => resolve(ctx, body.id, body.index).await,
        other => Err(Response::Error(gateway(
            ErrorCode::INTERNAL,
            format!("{} is not a shop or exception-desk request", other.opcode().name()),
        ))),
    };
    match answer {
        Ok(v) => Response::Json(v.to_string()),
        Err(r) => r,
    }
}

/// Open exceptions of every partition, oldest first.
async fn exceptions(ctx: &Arc<ServerCtx>, limit: u32) -> Result<Value, Response> {
    let limit = if limit == 0 { EXCEPTIONS_LIMIT } else { limit.min(EXCEPTIONS_LIMIT) };
    let mut rows = Vec::new();
    for p in 0..ctx.workers.partitions() {
        match ctx.order_ask(p, OrderQuery::Exceptions { limit }).await {
            Ok(OrderAnswer::Exceptions(part)) => rows.extend(part),
            Ok(_) => return Err(Response::Error(gateway(ErrorCode::INTERNAL, "unexpected answer from a partition"))),
            Err(e) => return Err(Response::Error(e.wire(&ctx.index))),
        }
    }
    rows.sort_by_key(|r| (r.raised_at_ms, r.order, r.index));
    rows.truncate(limit as usize);
    Ok(json!({ "exceptions": rows }))
}

/// Resolve one exception; answer the order's id, status and whole exception list.
async fn resolve(ctx: &Arc<ServerCtx>, order: u64, index: u32) -> Result<Value, Response> {
    let wire = |e: crate::orders::OrderError| Response::Error(e.wire(&ctx.index));
    ctx.order_call(OrderCommand::ResolveException { order, index }).await.map_err(wire)?;
    let o = ctx.order(order).await.map_err(wire)?;
    Ok(json!({ "order": o.id, "external_id": o.external_id, "status": o.status, "exceptions": o.exceptions }))
}
