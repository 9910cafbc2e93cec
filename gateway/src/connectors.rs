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
use serde_json::Value;

use crate::orders::{OrderAnswer, OrderQuery, UnconfirmedView};
use crate::runtime::{Query, QueryAnswer};
use crate::server::ServerCtx;

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

/// Open exceptions listed per partition at most.
const EXCEPTIONS_LIMIT: u32 = 1_000;

/// Answer a `Request::Channels` (ops): the shops' list, status and sync, and the exception desk.
pub async fn execute(ctx: &Arc<ServerCtx>, json: &str) -> crate::protocol::Response {
    use crate::protocol::Response;
    use crate::wire_error::GatewayCode;
    let bad = |m: String| Response::Error(GatewayCode::BadRequest.error(m));
    let request: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => return bad(format!("channels request is not JSON: {e}")),
    };
    let shop = request["shop"].as_str();
    let answer: Result<Value, Response> = match request["op"].as_str().unwrap_or_default() {
        "shop_list" => Ok(serde_json::json!({
            "shops": ctx.connectors.as_ref().map(|c| c.list()).unwrap_or_default(),
        })),
        "shop_status" => match &ctx.connectors {
            None if shop.is_none() => Ok(serde_json::json!({ "shops": [] })),
            None => Err(bad(format!("unknown shop {:?} (no [[shops]] configured)", shop.unwrap_or_default()))),
            Some(c) => c.status(shop).map(|s| serde_json::json!({ "shops": s })).map_err(|e| bad(e.to_string())),
        },
        "shop_sync" => match &ctx.connectors {
            None => Err(bad("no [[shops]] configured".to_owned())),
            Some(c) => c.sync(shop).map(|s| serde_json::json!({ "synced": s })).map_err(|e| bad(e.to_string())),
        },
        "exceptions" => exceptions(ctx, request["limit"].as_u64().unwrap_or(0)).await,
        "resolve" => {
            let (Some(order), Some(index)) = (request["order"].as_u64(), request["index"].as_u64()) else {
                return bad("resolve needs order and index".to_owned());
            };
            let Ok(index) = u32::try_from(index) else { return bad("index too large".to_owned()) };
            match ctx.order_call(OrderCommand::ResolveException { order, index }).await {
                Ok(_) => match ctx.order(order).await {
                    Ok(o) => Ok(serde_json::json!({
                        "order": o.id, "external_id": o.external_id, "status": o.status,
                        "exceptions": o.exceptions,
                    })),
                    Err(e) => Err(Response::Error(e.wire())),
                },
                Err(e) => Err(Response::Error(e.wire())),
            }
        }
        other => Err(bad(format!(
            "unknown channels op {other:?} (expected shop_list, shop_status, shop_sync, exceptions, resolve)"
        ))),
    };
    match answer {
        Ok(v) => Response::Json(v.to_string()),
        Err(r) => r,
    }
}

/// Open exceptions of every partition, oldest first.
async fn exceptions(ctx: &Arc<ServerCtx>, limit: u64) -> Result<Value, crate::protocol::Response> {
    let limit = if limit == 0 { EXCEPTIONS_LIMIT } else { limit.min(u64::from(EXCEPTIONS_LIMIT)) as u32 };
    let mut rows = Vec::new();
    for p in 0..ctx.workers.partitions() {
        match ctx.order_ask(p, OrderQuery::Exceptions { limit }).await {
            Ok(OrderAnswer::Exceptions(part)) => rows.extend(part),
            Ok(_) => {
                return Err(crate::protocol::Response::Error(
                    crate::wire_error::GatewayCode::Internal.error("unexpected answer".to_owned()),
                ))
            }
            Err(e) => return Err(crate::protocol::Response::Error(e.wire())),
        }
    }
    rows.sort_by_key(|r| (r.raised_at_ms, r.order, r.index));
    rows.truncate(limit as usize);
    Ok(serde_json::json!({ "exceptions": rows }))
}
