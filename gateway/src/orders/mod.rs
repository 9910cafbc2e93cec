//! Orders through the server: the async equivalent of `oms_engine::orders::desk` on top of
//! [`ServerCtx::call`] and [`ServerCtx::ask`].
//!
//! Order commands go to the order's partition (`order % partitions`, or the wave's); the stock
//! commands the engine asks for with effect events (`orders::stock_commands`: release, ship,
//! return) and the reservations of an allocation go through the ordinary per-SKU paths (a Reserve
//! split per SKU partition, then Confirm), and the result is recorded on the order with
//! `RecordAllocation`. Every step is a durable, logged command in its partition.
//!
//! Not atomic across partitions: if the server stops between an order command and the stock
//! commands it implies, start-up reconciliation (`runtime::recovery::reconcile_orders`) carries
//! the stock side out before the server serves (see docs/ORDERS.md).

mod effects;
mod query;

use std::sync::Arc;

use oms_engine::command::{KitComponent, PartInfo};
use oms_engine::orders::desk::{channel_id, is_shortage, Allocated};
use oms_engine::orders::intake::{self, IntakeError};
use oms_engine::orders::model::{
    parent_order, AfterSaleKind, ChannelState, Order, OrderId, OrderStatus, Revision, SalesChannel, ShipmentId, WaveId,
};
use oms_engine::orders::rules::{RoutingRule, RulesFile, Unfillable};
use oms_engine::orders::{owner_of, reconcile, stock_commands, OrderCommand, OrderEvent};
use oms_engine::routing;
use oms_engine::{
    Allocation, Command, CustomerId, EngineError, Event, Line, ReleaseCause, ReservationId, ReserveRequest, SkuId,
    WarehouseId,
};
use serde_json::{json, Value};

pub use effects::{spawn as spawn_effects, OrderHook};
pub use query::{
    answer, AllocationView, ExceptionRow, OrderAnswer, OrderQuery, OrderSummary, PageRow, UnconfirmedView,
};

use oms_proto::json::{JsonLine, JsonRequest};
use oms_proto::{ErrorCode, Response, WireError};

use crate::runtime::{failure_to_wire, now_ms, Failure, Query, QueryAnswer};
use crate::server::ServerCtx;
use crate::wire_error::{from_engine, gateway, CodeNames};

/// How long an order's hold lasts between Reserve and Confirm (they follow each other at once).
const ORDER_HOLD_TTL_MS: u64 = 60_000;
/// Default and largest number of rows `OrderList` answers.
pub const LIST_LIMIT: u32 = 1_000;
/// Rows of an order page when the request says 0.
pub const PAGE_DEFAULT: u32 = 50;
/// Index entries one partition examines for one page at most: a filter that matches little
/// answers a short page with a cursor instead of walking a million orders in a writer thread.
pub const PAGE_BUDGET: usize = 20_000;
/// Default shipments per wave.
pub const WAVE_DEFAULT_MAX: u32 = 1_000;

/// Why an order request failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("partition unavailable: {0:?}")]
    Unavailable(Failure),
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", .0.message)]
    Wire(WireError),
    #[error("unexpected answer from a partition")]
    Unexpected,
}

impl From<Failure> for OrderError {
    fn from(f: Failure) -> OrderError {
        match f {
            Failure::Engine(e) => OrderError::Engine(e),
            other => OrderError::Unavailable(other),
        }
    }
}

impl OrderError {
    pub fn wire(&self, names: &dyn CodeNames) -> WireError {
        match self {
            OrderError::Engine(e) => from_engine(e, names),
            OrderError::Unavailable(f) => failure_to_wire(f, names),
            OrderError::BadRequest(m) => gateway(ErrorCode::BAD_REQUEST, m.clone()),
            OrderError::Wire(w) => w.clone(),
            OrderError::Unexpected => gateway(ErrorCode::INTERNAL, self.to_string()),
        }
    }
}

fn json_response(value: Result<Value, OrderError>, names: &dyn CodeNames) -> Response {
    match value {
        Ok(v) => Response::Json(v.to_string()),
        Err(e) => Response::Error(e.wire(names)),
    }
}

fn allocated_json(a: &Allocated) -> Value {
    match a {
        Allocated::Full { reservation, shipments } => {
            json!({ "result": "full", "reservation": reservation.0, "shipments": shipments })
        }
        Allocated::Partial { reservation, shipments } => {
            json!({ "result": "partial", "reservation": reservation.0, "shipments": shipments })
        }
        Allocated::Parked => json!({ "result": "parked" }),
        Allocated::NotWaiting => json!({ "result": "not_waiting" }),
    }
}

/// Answer an order request (called from `ServerCtx::execute`).
pub async fn execute(ctx: &Arc<ServerCtx>, request: JsonRequest) -> Response {
    let ctx: &ServerCtx = ctx;
    let names = &ctx.index;
    let answer = match request {
        JsonRequest::OrderImport(b) => ctx.import_orders(&b.channel, &b.payload).await,
        JsonRequest::OrderGet(b) => ctx.order_json(b.id).await,
        JsonRequest::OrderList(b) => ctx.list_orders(b.status.as_deref(), b.limit).await,
        JsonRequest::OrderApprove(b) => ctx.approve(b.id).await,
        JsonRequest::OrderReject(b) => {
            ctx.order_step(OrderCommand::Reject { order: b.id, reason: b.reason }, b.id).await
        }
        JsonRequest::OrderCancel(b) => {
            ctx.order_step(OrderCommand::Cancel { order: b.id, reason: b.reason }, b.id).await
        }
        JsonRequest::OrderAllocate(b) => ctx.allocate_request(b.id).await,
        JsonRequest::WaveCreate(b) => match ctx.resolve_warehouse(&b.warehouse) {
            Ok(warehouse) => ctx.create_waves(warehouse, b.carrier, b.max_shipments).await,
            Err(e) => Err(OrderError::Wire(e)),
        },
        JsonRequest::WaveGet(b) => ctx.wave_json(b.id).await,
        JsonRequest::ShipmentPack(b) => ctx.shipment_step(OrderCommand::Pack { shipment: b.shipment }).await,
        JsonRequest::ShipmentShip(b) => ctx.shipment_step(OrderCommand::Ship { shipment: b.shipment }).await,
        JsonRequest::ShipmentDeliver(b) => ctx.shipment_step(OrderCommand::Deliver { shipment: b.shipment }).await,
        JsonRequest::TrackAdd(b) => {
            ctx.shipment_step(OrderCommand::Track { shipment: b.shipment, code: b.code, location: b.location }).await
        }
        JsonRequest::AfterSaleCreate(b) => ctx.create_after_sale(b.order, &b.kind, &b.lines, b.reason).await,
        JsonRequest::AfterSaleReceive(b) => ctx.receive_return(b.id, b.damaged).await,
        JsonRequest::RulesReload(b) => ctx.reload_rules(&b.toml).await,
        JsonRequest::Waybill(b) => ctx.waybill(b.shipment).await,
        JsonRequest::OrderPage(b) => ctx.order_page(&b).await,
        JsonRequest::WaveScan(b) => match ctx.resolve_key(&b.sku) {
            Ok(sku) => ctx.wave_step(OrderCommand::ScanPick { wave: b.wave, sku, qty: b.qty }, b.wave).await,
            Err(e) => Err(OrderError::Wire(e)),
        },
        JsonRequest::WaveOverride(b) => {
            let command = OrderCommand::OverridePick { wave: b.wave, supervisor: b.supervisor, reason: b.reason };
            ctx.wave_step(command, b.wave).await
        }
        JsonRequest::OrderHold(b) => ctx.order_step(OrderCommand::Hold { order: b.id, reason: b.reason }, b.id).await,
        JsonRequest::OrderUnhold(b) => {
            // Released to approved: allocate at once, as approve does.
            match ctx.order_step(OrderCommand::Unhold { order: b.id, reason: b.reason }, b.id).await {
                Ok(_) => match ctx.allocate(b.id).await {
                    Ok(allocated) => ctx.order(b.id).await.and_then(|o| {
                        let mut value = order_value(&o)?;
                        value["allocation"] = allocated_json(&allocated);
                        Ok(value)
                    }),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        other => Err(OrderError::Wire(gateway(
            ErrorCode::INTERNAL,
            format!("{} is not an order request", other.opcode().name()),
        ))),
    };
    json_response(answer, names)
}

impl ServerCtx {
    fn order_partition(&self, id: u64) -> u32 {
        owner_of(id, self.workers.partitions())
    }

    pub(crate) async fn order_ask(&self, partition: u32, query: OrderQuery) -> Result<OrderAnswer, OrderError> {
        match self.ask(partition, Query::Orders(query)).await {
            QueryAnswer::Orders(answer) => Ok(answer),
            QueryAnswer::Unavailable(f) => Err(OrderError::Unavailable(f)),
            _ => Err(OrderError::Unexpected),
        }
    }

    /// The order, as its partition holds it now.
    pub async fn order(&self, id: OrderId) -> Result<Order, OrderError> {
        match self.order_ask(self.order_partition(id), OrderQuery::Order(id)).await? {
            OrderAnswer::Order(Some(o)) => Ok(*o),
            OrderAnswer::Order(None) => Err(EngineError::UnknownOrder { order: id }.into()),
            _ => Err(OrderError::Unexpected),
        }
    }

    /// Apply an order command in its partition (every partition for rules), then carry out the
    /// stock commands its effect events ask for. Answers the events.
    pub async fn order_call(&self, command: OrderCommand) -> Result<Vec<Event>, OrderError> {
        let partitions = self.workers.partitions();
        let mut events = Vec::new();
        match command.partition(partitions) {
            Some(p) => events.extend(self.call(p, Command::Order(command)).await?),
            None => {
                for p in 0..partitions {
                    events.extend(self.call(p, Command::Order(command.clone())).await?);
                }
            }
        }
        self.apply_effects(&events).await?;
        Ok(events)
    }

    /// Release, ship and return stock as the order events ask (`orders::stock_commands`).
    pub(crate) async fn apply_effects(&self, events: &[Event]) -> Result<(), OrderError> {
        let kits: Vec<(SkuId, Vec<KitComponent>)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Order(OrderEvent::ReturnStock { sku, .. }) => self.index.kit(*sku).map(|k| (*sku, k.clone())),
                _ => None,
            })
            .collect();
        let commands = stock_commands(events, |sku| kits.iter().find(|(k, _)| *k == sku).map(|(_, c)| c.as_slice()));
        for command in commands {
            let targets: Vec<u32> = match &command {
                Command::Release { id, .. } | Command::Ship { id } => routing::reservation_parts(*id).iter().collect(),
                Command::ReturnToStock { sku, .. } => vec![self.owner(*sku)],
                Command::Order(order) => order.partition(self.workers.partitions()).into_iter().collect(),
                _ => Vec::new(),
            };
            for p in targets {
                match self.call(p, command.clone()).await {
                    Ok(_) => {}
                    // Done before (a repeat after a crash, or a part an operator released).
                    Err(Failure::Engine(e)) if reconcile::already_done(&e) => {}
                    Err(f) => {
                        tracing::error!(partition = p, command = command.name(), failure = ?f, "stock effect of an order command failed");
                        return Err(f.into());
                    }
                }
            }
        }
        Ok(())
    }

    // ----- import -----

    async fn import_orders(&self, channel: &str, payload: &str) -> Result<Value, OrderError> {
        let channel = SalesChannel::parse(channel).ok_or_else(|| {
            OrderError::BadRequest(format!("unknown channel {channel:?} (expected taobao, jd, douyin or native)"))
        })?;
        let parsed = intake::parse(channel, payload).map_err(|e| OrderError::BadRequest(e.to_string()))?;
        let batch = payload.trim_start().starts_with('[');
        let results = self.import_parsed(parsed, batch, None).await;
        let imported = results.iter().filter(|r| r["ok"] == true).count();
        Ok(
            json!({ "channel": channel.name(), "imported": imported, "rejected": results.len() - imported, "results": results }),
        )
    }

    /// Import parsed channel orders one by one (an order seen before is revised); `shop` replaces
    /// the payload's shop (orders pulled by a connector carry the shop they came from). One
    /// result object per order, `ok: false` with the path and error for a refused one.
    pub(crate) async fn import_parsed(
        &self,
        parsed: Vec<Result<intake::ChannelOrder, IntakeError>>,
        batch: bool,
        shop: Option<&str>,
    ) -> Vec<Value> {
        let mut results = Vec::with_capacity(parsed.len());
        for (i, item) in parsed.into_iter().enumerate() {
            let index = batch.then_some(i);
            let external = item.as_ref().map(|o| o.external_id.clone()).unwrap_or_default();
            let result = match item {
                Err(e) => Err(e),
                Ok(mut order) => {
                    if let Some(shop) = shop {
                        order.shop = shop.to_owned();
                    }
                    let state = order.state;
                    order
                        .resolve(|code| self.index.sku(code))
                        .map(|new| (new, state))
                        .map_err(|e| IntakeError { index, ..e })
                }
            };
            let (new, state) = match result {
                Ok(pair) => pair,
                Err(e) => {
                    results.push(
                        json!({ "index": i, "ok": false, "external_id": external, "path": e.path, "error": e.to_string() }),
                    );
                    continue;
                }
            };
            let (id, external_id) = (new.id, new.external_id.clone());
            match self.import_one(new, state).await {
                Ok(mut value) => {
                    if let Value::Object(m) = &mut value {
                        m.insert("index".into(), json!(i));
                        m.insert("ok".into(), json!(true));
                    }
                    results.push(value)
                }
                Err(e) => {
                    let w = e.wire(&self.index);
                    results.push(json!({ "index": i, "ok": false, "order": id, "external_id": external_id, "error": w.message, "code": w.name }));
                }
            }
        }
        results
    }

    /// Import a new channel order, or revise one imported before (`state`: what the channel says
    /// about it). An unknown order the channel shows unpaid, cancelled or shipped is skipped.
    async fn import_one(&self, new: oms_engine::orders::NewOrder, state: ChannelState) -> Result<Value, OrderError> {
        let id = new.id;
        let external_id = new.external_id.clone();
        let known = match self.order(id).await {
            Ok(o) => o.channel == new.channel && o.external_id == new.external_id,
            Err(OrderError::Engine(EngineError::UnknownOrder { .. })) => false,
            Err(e) => return Err(e),
        };
        if known {
            return self.revise_one(new, state).await;
        }
        if !matches!(state, ChannelState::AwaitingShipment | ChannelState::RefundRequested) {
            return Ok(json!({
                "order": id, "external_id": external_id, "skipped": true, "unchanged": true,
                "reason": format!("not imported: the channel shows it {}", state.name()),
            }));
        }
        let events = match self.order_call(OrderCommand::Import(new.clone())).await {
            Ok(events) => events,
            // Imported meanwhile by someone else with other contents: revise instead.
            Err(OrderError::Engine(EngineError::OrderConflict { .. })) => return self.revise_one(new, state).await,
            Err(e) => return Err(e),
        };
        // No events: this channel order was imported before; nothing changes (not even allocation).
        let unchanged = events.is_empty();
        let mut allocation = Value::Null;
        if !unchanged {
            tracing::info!(order = id, external_id = %external_id, "order imported");
            if state == ChannelState::RefundRequested {
                // Imported with a refund already pending: put it on the desk's list (and hold it).
                self.revise_one(new, state).await?;
            }
            let approved = events
                .iter()
                .any(|e| matches!(e, Event::Order(OrderEvent::StatusChanged { to: OrderStatus::Approved, .. })));
            if approved && state == ChannelState::AwaitingShipment {
                allocation = allocated_json(&self.allocate(id).await?);
            }
        }
        let o = self.order(id).await?;
        Ok(json!({
            "order": id, "external_id": external_id, "status": o.status, "holds": o.holds,
            "unchanged": unchanged, "allocation": allocation,
        }))
    }

    /// Apply what the channel shows now to an order imported before (`OrderCommand::Revise`):
    /// `changes` applied, `exceptions` raised for the desk; nothing at all for a revision seen
    /// before (`unchanged`).
    async fn revise_one(&self, new: oms_engine::orders::NewOrder, state: ChannelState) -> Result<Value, OrderError> {
        let id = new.id;
        let external_id = new.external_id.clone();
        let events = self.order_call(OrderCommand::Revise(Box::new(Revision { order: new, state }))).await?;
        let mut changes: Vec<String> = Vec::new();
        let mut exceptions: Vec<String> = Vec::new();
        for e in &events {
            match e {
                Event::Order(OrderEvent::Revised { changes: c, .. }) => changes.extend(c.iter().cloned()),
                Event::Order(OrderEvent::ExceptionRaised { kind, detail, .. }) => {
                    exceptions.push(format!("{}: {detail}", kind.name()))
                }
                _ => {}
            }
        }
        if !changes.is_empty() || !exceptions.is_empty() {
            tracing::info!(order = id, external_id = %external_id, ?changes, ?exceptions, "order revised by its channel");
        }
        let mut allocation = Value::Null;
        if changes.iter().any(|c| c == "lines") {
            allocation = allocated_json(&self.allocate(id).await?);
        }
        let o = self.order(id).await?;
        Ok(json!({
            "order": id, "external_id": external_id, "status": o.status, "holds": o.holds,
            "unchanged": events.is_empty(), "revised": !events.is_empty(),
            "changes": changes, "exceptions": exceptions, "allocation": allocation,
        }))
    }

    // ----- reads -----

    async fn order_json(&self, id: OrderId) -> Result<Value, OrderError> {
        let order = self.order(id).await?;
        order_value(&order)
    }

    async fn list_orders(&self, status: Option<&str>, limit: u32) -> Result<Value, OrderError> {
        let status = match status {
            None => None,
            Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
                let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.name()).collect();
                OrderError::BadRequest(format!("unknown status {s:?} (expected one of {})", names.join(", ")))
            })?),
        };
        let limit = if limit == 0 { LIST_LIMIT } else { limit.min(LIST_LIMIT) };
        let mut rows = Vec::new();
        for p in 0..self.workers.partitions() {
            match self.order_ask(p, OrderQuery::List { status, limit }).await? {
                OrderAnswer::List(part) => rows.extend(part),
                _ => return Err(OrderError::Unexpected),
            }
        }
        rows.sort_unstable_by_key(|r| (r.created_at_ms, r.id));
        rows.truncate(limit as usize);
        serde_json::to_value(&rows).map_err(|e| OrderError::BadRequest(e.to_string()))
    }

    /// One page of orders: every partition answers its part from its order index (a bounded walk
    /// from the cursor), and the parts are merged newest first (or oldest first).
    async fn order_page(&self, b: &oms_proto::json::OrderPage) -> Result<Value, OrderError> {
        use oms_engine::orders::index::{self, OrderFilter, PageSpec, StatusFilter};
        let bad = OrderError::BadRequest;
        let status = match b.status.as_deref() {
            None => None,
            Some(s) => Some(StatusFilter::parse(s).ok_or_else(|| {
                let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.name()).collect();
                bad(format!("unknown status {s:?} (expected parked or one of {})", names.join(", ")))
            })?),
        };
        let channel = match b.channel.as_deref() {
            None => None,
            Some(c) => Some(
                SalesChannel::parse(c)
                    .ok_or_else(|| bad(format!("unknown channel {c:?} (expected taobao, jd, douyin or native)")))?,
            ),
        };
        let sku = match &b.sku {
            None => None,
            Some(key) => Some(self.resolve_key(key).map_err(OrderError::Wire)?),
        };
        let after = match b.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(
                index::parse_cursor(c)
                    .ok_or_else(|| bad(format!("cursor {c:?} is not a cursor from an earlier page")))?,
            ),
        };
        let limit = match b.limit {
            0 => PAGE_DEFAULT,
            n => n.min(LIST_LIMIT),
        } as usize;
        let filter = OrderFilter {
            status,
            channel,
            buyer: b.buyer.clone(),
            from_ms: b.from_ms,
            to_ms: b.to_ms,
            hold: b.hold.clone(),
            sku,
        };
        let spec = PageSpec { after, newest_first: !b.oldest_first, rows: limit + 1, budget: PAGE_BUDGET };
        let mut parts = Vec::new();
        for p in 0..self.workers.partitions() {
            let query = OrderQuery::Page { filter: Box::new(filter.clone()), spec };
            match self.order_ask(p, query).await? {
                OrderAnswer::Page(part) => parts.push(part),
                _ => return Err(OrderError::Unexpected),
            }
        }
        let (rows, next) = index::merge_pages(parts, spec.newest_first, limit);
        Ok(json!({
            "orders": rows,
            "next": next.map(index::cursor_text),
            "newest_first": spec.newest_first,
        }))
    }

    /// Run a wave command (scan, override) and answer the wave afterwards.
    async fn wave_step(&self, command: OrderCommand, wave: WaveId) -> Result<Value, OrderError> {
        self.order_call(command).await?;
        self.wave_json(wave).await
    }

    async fn wave_json(&self, id: WaveId) -> Result<Value, OrderError> {
        match self.order_ask(self.order_partition(id), OrderQuery::Wave(id)).await? {
            OrderAnswer::Wave(Some(w)) => {
                let mut value = serde_json::to_value(&*w).map_err(|e| OrderError::BadRequest(e.to_string()))?;
                if let Some(items) = value.get_mut("pick_list").and_then(Value::as_array_mut) {
                    for (item, pick) in items.iter_mut().zip(&w.pick_list) {
                        item["bin_label"] = pick.bin.map_or(Value::Null, |b| json!(b.label()));
                        item["sku_code"] = self.index.sku_code(pick.sku.0).map_or(Value::Null, |c| json!(c.as_str()));
                    }
                }
                value["warehouse_code"] =
                    self.index.warehouse_code(w.warehouse.0).map_or(Value::Null, |c| json!(c.as_str()));
                Ok(value)
            }
            OrderAnswer::Wave(None) => Err(EngineError::UnknownWave { wave: id }.into()),
            _ => Err(OrderError::Unexpected),
        }
    }

    // ----- lifecycle steps -----

    /// Run an order command and answer the order afterwards.
    async fn order_step(&self, command: OrderCommand, order: OrderId) -> Result<Value, OrderError> {
        self.order_call(command).await?;
        order_value(&self.order(order).await?)
    }

    async fn approve(&self, id: OrderId) -> Result<Value, OrderError> {
        self.order_call(OrderCommand::Approve { order: id }).await?;
        let allocation = allocated_json(&self.allocate(id).await?);
        let mut value = order_value(&self.order(id).await?)?;
        value["allocation"] = allocation;
        Ok(value)
    }

    async fn allocate_request(&self, id: OrderId) -> Result<Value, OrderError> {
        if id != 0 {
            let allocation = allocated_json(&self.allocate(id).await?);
            return Ok(json!({ "orders": [ { "order": id, "allocation": allocation } ] }));
        }
        let mut rows = Vec::new();
        for p in 0..self.workers.partitions() {
            let OrderAnswer::Waiting(ids) = self.order_ask(p, OrderQuery::Waiting).await? else {
                return Err(OrderError::Unexpected);
            };
            for order in ids {
                let allocation = allocated_json(&self.allocate(order).await?);
                rows.push(json!({ "order": order, "allocation": allocation }));
            }
        }
        Ok(json!({ "orders": rows }))
    }

    async fn shipment_step(&self, command: OrderCommand) -> Result<Value, OrderError> {
        let shipment = match &command {
            OrderCommand::Pack { shipment }
            | OrderCommand::Ship { shipment }
            | OrderCommand::Deliver { shipment }
            | OrderCommand::Track { shipment, .. } => *shipment,
            _ => return Err(OrderError::Unexpected),
        };
        self.order_call(command).await?;
        let order = self.order(parent_order(shipment)).await?;
        let s = order.shipment(shipment).ok_or(EngineError::UnknownShipment { shipment })?;
        let mut value = serde_json::to_value(s).map_err(|e| OrderError::BadRequest(e.to_string()))?;
        value["order"] = json!(order.id);
        value["order_status"] = json!(order.status);
        Ok(value)
    }

    // ----- allocation (Desk::allocate over the partition threads) -----

    /// Allocate an approved order (or the open rest of a partially allocated one) following the
    /// routing rules: reserve, or on shortage partial / next rule / park / cancel later.
    pub async fn allocate(&self, order: OrderId) -> Result<Allocated, OrderError> {
        let view = match self.order_ask(self.order_partition(order), OrderQuery::ForAllocation(order)).await? {
            OrderAnswer::ForAllocation(Some(v)) => v,
            OrderAnswer::ForAllocation(None) => return Err(EngineError::UnknownOrder { order }.into()),
            _ => return Err(OrderError::Unexpected),
        };
        if !view.waiting || view.open.is_empty() {
            return Ok(Allocated::NotWaiting);
        }
        let mut last_rule: Option<RoutingRule> = None;
        for (rule, prefer) in view.rules.iter().cloned() {
            match self.reserve_for(order, &view.open, view.channel, None, prefer.clone()).await {
                Ok(done) => return Ok(done),
                Err(OrderError::Engine(e)) if is_shortage(&e) => {}
                Err(e) => return Err(e),
            }
            if rule.partial && !view.merged {
                let mut partial = Vec::new();
                for l in &view.open {
                    let available = self.available(l.sku).await?.min(u64::from(l.qty)) as u32;
                    if available > 0 {
                        partial.push(Line { sku: l.sku, qty: available });
                    }
                }
                if !partial.is_empty() {
                    if let Ok(Allocated::Full { reservation, shipments }) =
                        self.reserve_for(order, &partial, view.channel, None, prefer).await
                    {
                        self.park(order, &rule, view.cancel_at_ms).await?;
                        return Ok(Allocated::Partial { reservation, shipments });
                    }
                }
            }
            let stop = rule.on_unfillable != Unfillable::Next;
            last_rule = Some(rule);
            if stop {
                break;
            }
        }
        if let Some(rule) = last_rule {
            if !(view.parked && rule.on_unfillable == Unfillable::Park) {
                self.park(order, &rule, view.cancel_at_ms).await?;
            }
        }
        Ok(Allocated::Parked)
    }

    async fn park(&self, order: OrderId, rule: &RoutingRule, existing: Option<u64>) -> Result<(), OrderError> {
        let cancel_at_ms =
            (rule.on_unfillable == Unfillable::Cancel).then(|| now_ms().saturating_add(rule.cancel_after_ms));
        // Keep an existing deadline: a retry does not push it back.
        self.order_call(OrderCommand::Park { order, cancel_at_ms: existing.or(cancel_at_ms) }).await?;
        Ok(())
    }

    /// Sellable units of a SKU (for a kit: the minimum over its components).
    async fn available(&self, sku: SkuId) -> Result<u64, OrderError> {
        let components: Vec<KitComponent> = match self.index.kit(sku) {
            Some(k) => k.clone(),
            None => vec![KitComponent { sku, qty: 1 }],
        };
        let mut available = u64::MAX;
        for c in components {
            match self.ask(self.owner(c.sku), Query::Available(c.sku)).await {
                QueryAnswer::Available(a) => available = available.min(a.unwrap_or(0) / u64::from(c.qty.max(1))),
                QueryAnswer::Unavailable(f) => return Err(OrderError::Unavailable(f)),
                _ => return Err(OrderError::Unexpected),
            }
        }
        Ok(if available == u64::MAX { 0 } else { available })
    }

    /// Reserve and confirm `lines` for the order through the per-SKU partitions, then record the
    /// allocation on the order. If the record is refused (the order changed meanwhile), the
    /// reservation is released again.
    async fn reserve_for(
        &self,
        order: OrderId,
        lines: &[Line],
        channel: SalesChannel,
        after_sale: Option<u64>,
        prefer_warehouses: Option<Vec<WarehouseId>>,
    ) -> Result<Allocated, OrderError> {
        let partitions = self.workers.partitions();
        let expanded = if lines.iter().any(|l| self.index.is_kit(l.sku)) {
            let kits: Vec<(SkuId, Vec<KitComponent>)> =
                lines.iter().filter_map(|l| self.index.kit(l.sku).map(|k| (l.sku, k.clone()))).collect();
            routing::expand_kits(lines, self.config.max_lines, |sku| {
                kits.iter().find(|(k, _)| *k == sku).map(|(_, c)| c.as_slice())
            })?
        } else {
            lines.to_vec()
        };
        let set = routing::partitions_of(&expanded, partitions);
        let id = routing::reservation_id(self.index.next_reservation_sequence(), set);
        let request = ReserveRequest {
            id,
            lines: expanded,
            ttl_ms: ORDER_HOLD_TTL_MS,
            fingerprint: oms_engine::orders::allocation_key(order, id),
            idempotency_key: None,
            customer: CustomerId(order),
            channel: channel_id(channel),
            campaign: None,
            part: PartInfo::SINGLE,
            prefer_warehouses,
        };
        let parts = routing::split_reserve(&request, partitions, None);
        let calls = parts.into_iter().map(|(p, part)| async move { (p, self.call(p, Command::Reserve(part)).await) });
        let mut allocations: Vec<Allocation> = Vec::new();
        let mut refusal = None;
        let mut succeeded = Vec::new();
        for (p, result) in futures::future::join_all(calls).await {
            match result {
                Ok(events) => {
                    succeeded.push(p);
                    for e in &events {
                        if let Event::Reserved { allocations: a, .. } = e {
                            allocations.extend(a.iter().copied());
                        }
                    }
                }
                Err(f) => {
                    refusal.get_or_insert(f);
                }
            }
        }
        if let Some(failure) = refusal {
            self.release_parts(id, &succeeded, ReleaseCause::Compensation).await;
            return Err(failure.into());
        }
        for p in &succeeded {
            if let Err(f) = self.call(*p, Command::Confirm { id }).await {
                self.release_parts(id, &succeeded, ReleaseCause::Cancel).await;
                return Err(f.into());
            }
        }
        let record =
            OrderCommand::RecordAllocation { order, reservation: id, lines: lines.to_vec(), allocations, after_sale };
        let events = match self.order_call(record).await {
            Ok(events) => events,
            Err(e) => {
                self.release_parts(id, &succeeded, ReleaseCause::Cancel).await;
                return Err(e);
            }
        };
        let shipments = events.iter().filter(|e| matches!(e, Event::Order(OrderEvent::ShipmentCreated { .. }))).count();
        Ok(Allocated::Full { reservation: id, shipments })
    }

    async fn release_parts(&self, id: ReservationId, parts: &[u32], cause: ReleaseCause) {
        for p in parts {
            if let Err(f) = self.call(*p, Command::Release { id, cause }).await {
                tracing::error!(reservation = id.0, partition = p, failure = ?f, "release failed; the part lapses at its TTL");
            }
        }
    }

    // ----- waves -----

    /// One wave per partition with allocated shipments of the warehouse: ids `first * P + p`,
    /// `first` taken from the clock (a clash moves on to the next number).
    async fn create_waves(
        &self,
        warehouse: WarehouseId,
        carrier: Option<String>,
        max_shipments: u32,
    ) -> Result<Value, OrderError> {
        let partitions = u64::from(self.workers.partitions());
        let max_shipments = if max_shipments == 0 { WAVE_DEFAULT_MAX } else { max_shipments };
        let mut first = now_ms();
        let mut created = Vec::new();
        for p in 0..partitions {
            let mut attempts = 0;
            loop {
                let wave = first * partitions + p;
                let command = OrderCommand::CreateWave {
                    wave,
                    warehouse,
                    carrier: carrier.clone(),
                    max_shipments,
                    cutoff_ms: None,
                };
                match self.order_call(command).await {
                    Ok(events) => {
                        let shipments: Vec<ShipmentId> = events
                            .iter()
                            .find_map(|e| match e {
                                Event::Order(OrderEvent::WaveCreated { shipments, .. }) => Some(shipments.clone()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        created.push(json!({ "wave": wave, "shipments": shipments }));
                        break;
                    }
                    Err(OrderError::Engine(EngineError::NothingToWave { .. })) => break,
                    Err(OrderError::Engine(EngineError::DuplicateWave { .. })) if attempts < 16 => {
                        attempts += 1;
                        first += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if created.is_empty() {
            return Err(EngineError::NothingToWave { warehouse }.into());
        }
        tracing::info!(warehouse = warehouse.0, waves = created.len(), "waves created");
        Ok(json!({ "warehouse": warehouse.0, "waves": created }))
    }

    // ----- after-sales -----

    async fn create_after_sale(
        &self,
        order: OrderId,
        kind: &str,
        lines: &[JsonLine],
        reason: String,
    ) -> Result<Value, OrderError> {
        let kind = AfterSaleKind::parse(kind).ok_or_else(|| {
            OrderError::BadRequest(format!("unknown after-sale type {kind:?} (expected return, exchange or refund)"))
        })?;
        let mut resolved = Vec::with_capacity(lines.len());
        for l in lines {
            resolved.push(Line { sku: self.resolve_key(&l.sku).map_err(OrderError::Wire)?, qty: l.qty });
        }
        let events = self.order_call(OrderCommand::CreateAfterSale { order, kind, lines: resolved, reason }).await?;
        let (id, refund_cents) = events
            .iter()
            .find_map(|e| match e {
                Event::Order(OrderEvent::AfterSaleCreated { after_sale, refund_cents, .. }) => {
                    Some((*after_sale, *refund_cents))
                }
                _ => None,
            })
            .ok_or(OrderError::Unexpected)?;
        let o = self.order(order).await?;
        let status = o.after_sale(id).map(|a| a.status);
        Ok(json!({ "after_sale": id, "order": order, "kind": kind, "refund_cents": refund_cents, "status": status }))
    }

    async fn receive_return(&self, id: u64, damaged: bool) -> Result<Value, OrderError> {
        let events = self.order_call(OrderCommand::ReceiveReturn { after_sale: id, damaged }).await?;
        let order = parent_order(id);
        let mut replacement = Value::Null;
        for e in &events {
            if let Event::Order(OrderEvent::ReplacementNeeded { order, after_sale, lines }) = e {
                let channel = self.order(*order).await?.channel;
                replacement = allocated_json(&self.reserve_for(*order, lines, channel, Some(*after_sale), None).await?);
            }
        }
        let returned: Vec<Value> = events
            .iter()
            .filter_map(|e| match e {
                Event::Order(OrderEvent::ReturnStock { sku, warehouse, qty, damaged, .. }) => {
                    Some(json!({ "sku": sku.0, "warehouse": warehouse.0, "qty": qty, "damaged": damaged }))
                }
                _ => None,
            })
            .collect();
        let refunded: i64 = events
            .iter()
            .filter_map(|e| match e {
                Event::Order(OrderEvent::Refunded { cents, .. }) => Some(*cents),
                _ => None,
            })
            .sum();
        let o = self.order(order).await?;
        let status = o.after_sale(id).map(|a| a.status);
        Ok(
            json!({ "after_sale": id, "order": order, "status": status, "returned": returned, "refunded_cents": refunded, "replacement": replacement }),
        )
    }

    // ----- rules -----

    async fn reload_rules(&self, toml: &str) -> Result<Value, OrderError> {
        let file = RulesFile::parse(toml).map_err(|reason| EngineError::InvalidRules { reason })?;
        let commands = file.commands();
        let mut sections = Vec::new();
        for command in commands {
            let name = command.name();
            self.order_call(command).await?;
            sections.push(name);
        }
        tracing::info!(sections = ?sections, "order rules reloaded");
        Ok(json!({ "reloaded": sections }))
    }

    // ----- waybill -----

    /// The label data of a packed shipment.
    async fn waybill(&self, shipment: ShipmentId) -> Result<Value, OrderError> {
        let order = self.order(parent_order(shipment)).await?;
        let s = order.shipment(shipment).ok_or(EngineError::UnknownShipment { shipment })?;
        let waybill = s.waybill.clone().ok_or_else(|| {
            OrderError::BadRequest(format!(
                "shipment {shipment} has no waybill yet (status {}): pack it first",
                s.status.name()
            ))
        })?;
        let items: Vec<Value> = s
            .items
            .iter()
            .map(|a| {
                let code = order
                    .lines
                    .iter()
                    .find(|l| l.sku == a.sku)
                    .map_or_else(|| format!("#{}", a.sku.0), |l| l.sku_code.clone());
                json!({ "sku": code, "qty": a.qty })
            })
            .collect();
        let label = oms_proto::json::Label {
            waybill,
            carrier: s.carrier.clone().unwrap_or_default(),
            shipment,
            order: order.id,
            channel: order.channel.name().to_owned(),
            external_id: order.external_id.clone(),
            warehouse: self.index.warehouse_code(s.warehouse.0).map(|c| c.to_string()).unwrap_or_default(),
            warehouse_id: s.warehouse.0,
            weight_g: s.weight_g,
            cash_on_delivery: order.cash_on_delivery,
            cod_cents: if order.cash_on_delivery { order.paid_cents } else { 0 },
            to: oms_proto::json::LabelAddress {
                name: order.address.name.clone(),
                phone: order.address.phone.clone(),
                province: order.address.province.clone(),
                city: order.address.city.clone(),
                district: order.address.district.clone(),
                detail: order.address.detail.clone(),
                zip: order.address.zip.clone(),
            },
            items: s
                .items
                .iter()
                .zip(items)
                .map(|(a, v)| oms_proto::json::LabelItem {
                    sku: v["sku"].as_str().unwrap_or_default().to_owned(),
                    qty: a.qty,
                })
                .collect(),
        };
        serde_json::to_value(&label).map_err(|e| OrderError::BadRequest(e.to_string()))
    }
}

/// The order as JSON (engine serde view), with the line amounts and shipments as they are.
pub fn order_value(order: &Order) -> Result<Value, OrderError> {
    serde_json::to_value(order).map_err(|e| OrderError::BadRequest(e.to_string()))
}
