//! The general request path: translate a wire request into engine commands and queries, send them
//! to the owning partitions, and coordinate multi-partition answers.

use std::sync::Arc;

use oms_engine::command::{ChannelException, ChannelPolicy, FlashSaleSpec, KitComponent, PresaleSpec, ReleaseCause};
use oms_engine::ids::{idempotency_hash, partition_of};
use oms_engine::routing::{self, PartitionSet};
use oms_engine::{
    Bucket, CampaignId, ChannelId, Command, CustomerId, EngineError, Envelope, Line, PurchaseOrderId, ReservationId,
    ReserveRequest, SkuId, WarehouseId,
};
use tokio::sync::oneshot;

use super::ServerCtx;
use crate::protocol::{BatchItem, Request, ReserveWire, Response, SkuRef, StockOpWire, WireError, WireLine};
use crate::runtime::{
    failure_to_wire, now_ms, reserved_response_of, Failure, Job, PartResult, Query, QueryAnswer, Reply,
};
use crate::wire_error::{from_engine, GatewayCode};

/// Longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_LIMIT: usize = 128;

fn engine(e: EngineError) -> Response {
    Response::Error(from_engine(&e))
}

fn unknown_code(code: &str) -> WireError {
    WireError {
        code: crate::wire_error::engine_code("unknown_sku"),
        name: "unknown_sku".to_owned(),
        message: format!("unknown SKU code {code:?}"),
        available: None,
        sku: None,
    }
}

impl ServerCtx {
    pub fn resolve(&self, sku: &SkuRef) -> Result<SkuId, WireError> {
        match sku {
            SkuRef::Id(id) => Ok(SkuId(*id)),
            SkuRef::Code(code) => self.index.sku(code).ok_or_else(|| unknown_code(code)),
        }
    }

    pub fn owner(&self, sku: SkuId) -> u32 {
        partition_of(sku, self.workers.partitions())
    }

    /// Apply one command in one partition and wait for its durable outcome.
    pub async fn call(&self, partition: u32, command: Command) -> PartResult {
        let (tx, rx) = oneshot::channel();
        let job = Job::Apply { envelope: Envelope { now_ms: now_ms(), command }, reply: Reply::Part(tx) };
        if self.workers.try_submit(partition, job).is_err() {
            return Err(Failure::Busy);
        }
        rx.await.unwrap_or(Err(Failure::ShuttingDown))
    }

    pub async fn ask(&self, partition: u32, query: Query) -> QueryAnswer {
        let (tx, rx) = oneshot::channel();
        if self.workers.try_submit(partition, Job::Query { query, reply: tx }).is_err() {
            return QueryAnswer::Unavailable(Failure::Busy);
        }
        rx.await.unwrap_or(QueryAnswer::Unavailable(Failure::ShuttingDown))
    }

    async fn call_all(&self, command: Command) -> Result<(), Failure> {
        for p in 0..self.workers.partitions() {
            self.call(p, command.clone()).await?;
        }
        Ok(())
    }

    /// Resolve codes, check the limits the gateway owns, expand kits; the engine validates the rest.
    pub fn build_reserve(&self, wire: &ReserveWire) -> Result<(ReserveRequest, PartitionSet), WireError> {
        let max_lines = self.config.max_lines;
        if wire.lines.len() > max_lines {
            return Err(from_engine(&EngineError::TooManyLines { lines: wire.lines.len(), limit: max_lines }));
        }
        if wire.idempotency_key.len() > IDEMPOTENCY_KEY_LIMIT {
            return Err(
                GatewayCode::BadRequest.error(format!("idempotency key longer than {IDEMPOTENCY_KEY_LIMIT} bytes"))
            );
        }
        let mut lines = Vec::with_capacity(wire.lines.len());
        let mut has_kit = false;
        for WireLine { sku, qty } in &wire.lines {
            let sku = self.resolve(sku)?;
            has_kit |= self.index.is_kit(sku);
            lines.push(Line { sku, qty: *qty });
        }
        if has_kit {
            let kits: Vec<(SkuId, Vec<KitComponent>)> =
                lines.iter().filter_map(|l| self.index.kit(l.sku).map(|k| (l.sku, k.clone()))).collect();
            lines = routing::expand_kits(&lines, max_lines, |sku| {
                kits.iter().find(|(k, _)| *k == sku).map(|(_, c)| c.as_slice())
            })
            .map_err(|e| from_engine(&e))?;
        } else {
            routing::validate_lines(&lines, max_lines).map_err(|e| from_engine(&e))?;
        }
        let set = routing::partitions_of(&lines, self.workers.partitions());
        let key = if wire.idempotency_key.is_empty() { 0 } else { idempotency_hash(wire.idempotency_key.as_bytes()) };
        // A keyed reservation's id is a function of its key, so a retry (after a crash that kept
        // only some parts of a multi-partition reservation) uses the same id in every partition:
        // the surviving parts replay, the missing ones are reserved under that id, and the answer
        // names one reservation holding every line.
        let sequence = if key == 0 {
            self.index.next_reservation_sequence()
        } else {
            crate::catalog_index::KEYED_SEQUENCE_BIT | (key & (crate::catalog_index::KEYED_SEQUENCE_BIT - 1))
        };
        let id = routing::reservation_id(sequence, set);
        let request = ReserveRequest {
            id,
            lines,
            ttl_ms: wire.ttl_ms,
            idempotency_key: key,
            customer: CustomerId(wire.customer),
            channel: ChannelId(wire.channel),
            campaign: wire.campaign.map(CampaignId),
            part: oms_engine::command::PartInfo::SINGLE,
            prefer_warehouses: None,
        };
        Ok((request, set))
    }

    /// The fast-path refusal for a reservation against a sold-out campaign, if it is sold out.
    pub fn sold_out_campaign(&self, campaign: CampaignId) -> Option<WireError> {
        if !self.board.campaign_sold_out(campaign) {
            return None;
        }
        self.metrics.fast_path_rejects.inc();
        Some(from_engine(&EngineError::SoldOut { campaign }))
    }

    /// Refuse from the sold-out board without a partition hop, when that answer is certain enough.
    pub fn fast_reject(&self, request: &ReserveRequest) -> Option<WireError> {
        if let Some(campaign) = request.campaign {
            return self.sold_out_campaign(campaign);
        }
        for line in &request.lines {
            if self.board.available(line.sku) == Some(0) {
                self.metrics.fast_path_rejects.inc();
                return Some(from_engine(&EngineError::InsufficientStock {
                    sku: line.sku,
                    requested: u64::from(line.qty),
                    available: 0,
                }));
            }
        }
        None
    }

    /// Reserve across partitions: every part in parallel, then compensate if any part refused.
    pub async fn reserve_coordinated(&self, request: ReserveRequest) -> Response {
        let partitions = self.workers.partitions();
        let campaign_partition = match request.campaign {
            Some(c) => match self.index.campaign_partition(c) {
                Some(p) => Some(p),
                None => return engine(EngineError::UnknownCampaign { campaign: c }),
            },
            None => None,
        };
        let id = request.id;
        let parts = routing::split_reserve(&request, partitions, campaign_partition);
        let calls = parts.into_iter().map(|(p, part)| async move { (p, self.call(p, Command::Reserve(part)).await) });
        let results = futures::future::join_all(calls).await;
        let mut events = Vec::new();
        let mut refusal = None;
        let mut succeeded = Vec::new();
        for (p, result) in results {
            match result {
                Ok(e) => {
                    events.extend(e);
                    succeeded.push(p);
                }
                Err(failure) => {
                    refusal.get_or_insert(failure);
                }
            }
        }
        match refusal {
            None => reserved_response_of(&events),
            Some(failure) => {
                for p in succeeded {
                    if let Err(f) = self.call(p, Command::Release { id, cause: ReleaseCause::Compensation }).await {
                        tracing::error!(reservation = id.0, partition = p, failure = ?f, "compensation failed; the part lapses at its TTL");
                    }
                }
                Response::Error(failure_to_wire(&failure))
            }
        }
    }

    async fn reserve(&self, wire: &ReserveWire) -> Response {
        let (request, set) = match self.build_reserve(wire) {
            Ok(built) => built,
            Err(e) => return Response::Error(e),
        };
        if let Some(e) = self.fast_reject(&request) {
            return Response::Error(e);
        }
        if set.len() == 1 && request.campaign.is_none_or(|c| self.index.campaign_partition(c) == set.iter().next()) {
            let p = set.iter().next().unwrap_or(0);
            return match self.call(p, Command::Reserve(request)).await {
                Ok(events) => reserved_response_of(&events),
                Err(f) => Response::Error(failure_to_wire(&f)),
            };
        }
        self.reserve_coordinated(request).await
    }

    /// Confirm, release, ship or pay: every partition named by the id.
    pub async fn on_parts(&self, id: u64, make: impl Fn(ReservationId) -> Command) -> Response {
        let id = ReservationId(id);
        let parts = routing::reservation_parts(id);
        if parts.is_empty() || parts.iter().any(|p| p >= self.workers.partitions()) {
            return engine(EngineError::UnknownReservation { id });
        }
        let calls = parts.iter().map(|p| {
            let command = make(id);
            async move { self.call(p, command).await }
        });
        let results = futures::future::join_all(calls).await;
        // A part already in the state this command leads to (released, shipped) means an earlier
        // attempt reached it before a crash cut the others off: when this attempt moved some
        // part, it completed that one, and the answer is Done. When no part moved, the usual
        // refusal stands (as for a single-partition reservation).
        let moved = results.iter().any(Result::is_ok);
        for result in results {
            match result {
                Ok(_) => {}
                Err(Failure::Engine(EngineError::InvalidReservationState { state, action, .. }))
                    if moved && reached_by(action) == Some(state) => {}
                Err(f) => return Response::Error(failure_to_wire(&f)),
            }
        }
        Response::Done
    }

    fn json<T: serde::Serialize>(value: &T) -> Response {
        match serde_json::to_string(value) {
            Ok(text) => Response::Json(text),
            Err(e) => Response::Error(GatewayCode::Internal.error(e.to_string())),
        }
    }

    async fn stock(&self, sku: &SkuRef) -> Response {
        let sku = match self.resolve(sku) {
            Ok(s) => s,
            Err(e) => return Response::Error(e),
        };
        let mut view = match self.ask(self.owner(sku), Query::Stock(sku)).await {
            QueryAnswer::Stock(Some(view)) => view,
            QueryAnswer::Stock(None) => return engine(EngineError::UnknownSku { sku }),
            QueryAnswer::Unavailable(f) => return Response::Error(failure_to_wire(&f)),
            _ => return Response::Error(GatewayCode::Internal.error("unexpected answer")),
        };
        if let Some(components) = view.kit.clone() {
            let mut available = u64::MAX;
            for c in components {
                match self.ask(self.owner(c.sku), Query::Available(c.sku)).await {
                    QueryAnswer::Available(a) => available = available.min(a.unwrap_or(0) / u64::from(c.qty.max(1))),
                    QueryAnswer::Unavailable(f) => return Response::Error(failure_to_wire(&f)),
                    _ => return Response::Error(GatewayCode::Internal.error("unexpected answer")),
                }
            }
            view.available = if available == u64::MAX { 0 } else { available };
        }
        Self::json(&view)
    }

    async fn reservation(&self, id: u64) -> Response {
        let id = ReservationId(id);
        let parts = routing::reservation_parts(id);
        if parts.is_empty() || parts.iter().any(|p| p >= self.workers.partitions()) {
            return engine(EngineError::UnknownReservation { id });
        }
        let mut views = Vec::with_capacity(parts.len() as usize);
        for p in parts.iter() {
            match self.ask(p, Query::Reservation(id)).await {
                QueryAnswer::Reservation(Some(view)) => views.push((p, view)),
                QueryAnswer::Reservation(None) => {}
                QueryAnswer::Unavailable(f) => return Response::Error(failure_to_wire(&f)),
                _ => return Response::Error(GatewayCode::Internal.error("unexpected answer")),
            }
        }
        match merge_parts(views) {
            Some(view) => Self::json(&view),
            None => engine(EngineError::UnknownReservation { id }),
        }
    }

    async fn export(&self) -> Response {
        let mut rows = Vec::new();
        for p in 0..self.workers.partitions() {
            match self.ask(p, Query::Export).await {
                QueryAnswer::Export(part) => rows.extend(part),
                QueryAnswer::Unavailable(f) => return Response::Error(failure_to_wire(&f)),
                _ => return Response::Error(GatewayCode::Internal.error("unexpected answer")),
            }
        }
        rows.sort_unstable_by_key(|(sku, _, _)| *sku);
        let available_of = |sku: SkuId, rows: &[(SkuId, String, u64)]| {
            rows.binary_search_by_key(&sku, |(s, _, _)| *s).map_or(0, |i| rows[i].2)
        };
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|(sku, code, available)| {
                let available = match self.index.kit(*sku) {
                    Some(kit) => {
                        kit.iter().map(|c| available_of(c.sku, &rows) / u64::from(c.qty.max(1))).min().unwrap_or(0)
                    }
                    None => *available,
                };
                serde_json::json!({ "sku": sku.0, "code": code, "available": available })
            })
            .collect();
        Self::json(&json)
    }

    pub async fn audit(&self) -> Response {
        let mut partitions = Vec::new();
        for p in 0..self.workers.partitions() {
            match self.ask(p, Query::Audit).await {
                QueryAnswer::Audit(audit) => partitions.push(*audit),
                QueryAnswer::Unavailable(f) => return Response::Error(failure_to_wire(&f)),
                _ => return Response::Error(GatewayCode::Internal.error("unexpected answer")),
            }
        }
        let clean = partitions.iter().all(|a| a.check.is_clean());
        let mut totals = oms_engine::reservation::ReservationCounters::default();
        let mut live = 0;
        for a in &partitions {
            // A multi-partition reservation counts once per part; the loadtest audit uses ids.
            totals.accepted += a.counters.accepted;
            totals.confirmed += a.counters.confirmed;
            totals.released += a.counters.released;
            totals.expired += a.counters.expired;
            totals.shipped += a.counters.shipped;
            totals.compensated += a.counters.compensated;
            live += a.live_reservations;
        }
        Self::json(
            &serde_json::json!({ "clean": clean, "totals": totals, "live_reservations": live, "partitions": partitions }),
        )
    }

    async fn define_kit(&self, code: &str, components: &[WireLine]) -> Response {
        let mut resolved = Vec::with_capacity(components.len());
        for c in components {
            match self.resolve(&c.sku) {
                Ok(sku) => resolved.push(KitComponent { sku, qty: c.qty }),
                Err(e) => return Response::Error(e),
            }
        }
        if let Err(e) = oms_engine::catalog::CODE_LIMIT
            .checked_sub(code.len())
            .filter(|_| !code.is_empty())
            .ok_or(EngineError::InvalidCode { limit: oms_engine::catalog::CODE_LIMIT })
        {
            return engine(e);
        }
        for c in &resolved {
            if self.index.is_kit(c.sku) {
                let kit = self.index.sku(code).unwrap_or(SkuId(u32::MAX));
                return engine(EngineError::InvalidKit { kit, reason: "kits of kits are not supported" });
            }
        }
        let (id, _) = self.index.sku_or_allocate(code);
        if let Err(e) = oms_engine::partition::validate_kit(id, &resolved, self.config.max_lines) {
            return engine(e);
        }
        match self
            .call(self.owner(id), Command::DefineKit { id, code: code.to_owned(), components: resolved.clone() })
            .await
        {
            Ok(_) => {
                self.index.set_kit(id, resolved);
                Response::SkuDefined { id: id.0 }
            }
            Err(f) => Response::Error(failure_to_wire(&f)),
        }
    }

    /// The engine command for a stock operation, with its owning partition.
    pub fn stock_command(&self, op: &StockOpWire) -> Result<(u32, Command), WireError> {
        let command = match op {
            StockOpWire::SetOnHand { sku, warehouse, on_hand } => {
                Command::SetOnHand { sku: self.resolve(sku)?, warehouse: WarehouseId(*warehouse), on_hand: *on_hand }
            }
            StockOpWire::Receive { sku, warehouse, qty } => {
                Command::Receive { sku: self.resolve(sku)?, warehouse: WarehouseId(*warehouse), qty: *qty }
            }
            StockOpWire::Adjust { sku, warehouse, delta } => {
                Command::Adjust { sku: self.resolve(sku)?, warehouse: WarehouseId(*warehouse), delta: *delta }
            }
            StockOpWire::SetBucket { sku, warehouse, bucket, qty } => {
                let bucket = match bucket {
                    0 => Bucket::Safety,
                    1 => Bucket::Damaged,
                    2 => Bucket::QualityControl,
                    _ => {
                        return Err(GatewayCode::BadRequest
                            .error("bucket must be 0 (safety), 1 (damaged) or 2 (quality control)"))
                    }
                };
                Command::SetBucket { sku: self.resolve(sku)?, warehouse: WarehouseId(*warehouse), bucket, qty: *qty }
            }
            StockOpWire::Transfer { sku, from, to, qty } => {
                Command::Transfer { sku: self.resolve(sku)?, from: WarehouseId(*from), to: WarehouseId(*to), qty: *qty }
            }
            StockOpWire::ReturnToStock { sku, warehouse, qty, damaged } => Command::ReturnToStock {
                sku: self.resolve(sku)?,
                warehouse: WarehouseId(*warehouse),
                qty: *qty,
                damaged: *damaged,
            },
            StockOpWire::ExpectIncoming { po, sku, warehouse, qty, eta_ms } => Command::ExpectIncoming {
                po: PurchaseOrderId(*po),
                sku: self.resolve(sku)?,
                warehouse: WarehouseId(*warehouse),
                qty: *qty,
                eta_ms: *eta_ms,
            },
            StockOpWire::RescheduleIncoming { po, sku, eta_ms } => {
                Command::RescheduleIncoming { po: PurchaseOrderId(*po), sku: self.resolve(sku)?, eta_ms: *eta_ms }
            }
            StockOpWire::ReceivePurchaseOrder { po, sku, qty } => {
                Command::ReceivePurchaseOrder { po: PurchaseOrderId(*po), sku: self.resolve(sku)?, qty: *qty }
            }
        };
        let sku = match &command {
            Command::SetOnHand { sku, .. }
            | Command::Receive { sku, .. }
            | Command::Adjust { sku, .. }
            | Command::SetBucket { sku, .. }
            | Command::Transfer { sku, .. }
            | Command::ReturnToStock { sku, .. }
            | Command::ExpectIncoming { sku, .. }
            | Command::RescheduleIncoming { sku, .. }
            | Command::ReceivePurchaseOrder { sku, .. } => *sku,
            _ => SkuId(0),
        };
        Ok((self.owner(sku), command))
    }

    async fn create_campaign(&self, campaign: CampaignId, partition: u32, command: Command) -> Response {
        if !self.index.claim_campaign(campaign, partition) {
            return engine(EngineError::DuplicateCampaign { campaign });
        }
        let answer = self.done(partition, command).await;
        if !matches!(answer, Response::Done) {
            self.index.unclaim_campaign(campaign);
        }
        answer
    }

    async fn done(&self, partition: u32, command: Command) -> Response {
        match self.call(partition, command).await {
            Ok(_) => Response::Done,
            Err(f) => Response::Error(failure_to_wire(&f)),
        }
    }

    /// Answer any request (the slow path; hot requests are short-circuited in dispatch).
    pub async fn execute(self: Arc<Self>, request: Request) -> Response {
        match request {
            Request::Hello { .. } => Response::Error(GatewayCode::BadRequest.error("already authenticated")),
            Request::Ping => Response::Pong,
            Request::Reserve(wire) => self.reserve(&wire).await,
            Request::ReserveBatch(batch) => {
                if batch.len() > crate::protocol::MAX_BATCH {
                    return Response::Error(
                        GatewayCode::BatchTooLarge
                            .error(format!("at most {} reservations per batch", crate::protocol::MAX_BATCH)),
                    );
                }
                let answers = futures::future::join_all(batch.iter().map(|wire| self.reserve(wire))).await;
                Response::Batch(
                    answers
                        .into_iter()
                        .map(|r| match r {
                            Response::Reserved(w) => BatchItem::Reserved(w),
                            Response::Error(e) => BatchItem::Error(e),
                            _ => BatchItem::Error(GatewayCode::Internal.error("unexpected answer")),
                        })
                        .collect(),
                )
            }
            Request::Confirm { id } => self.on_parts(id, |id| Command::Confirm { id }).await,
            Request::Release { id } => {
                self.on_parts(id, |id| Command::Release { id, cause: ReleaseCause::Cancel }).await
            }
            Request::PayBalance { id } => self.on_parts(id, |id| Command::PayBalance { id }).await,
            Request::Ship { id } => self.on_parts(id, |id| Command::Ship { id }).await,
            Request::GetStock { sku } => self.stock(&sku).await,
            Request::GetReservation { id } => self.reservation(id).await,
            Request::LookupSkus { codes } => {
                Response::SkuIds(codes.iter().map(|c| self.index.sku(c).map(|s| s.0)).collect())
            }
            Request::ExportStock => self.export().await,
            Request::GetCampaign { id } => {
                let campaign = CampaignId(id);
                let Some(p) = self.index.campaign_partition(campaign) else {
                    return engine(EngineError::UnknownCampaign { campaign });
                };
                match self.ask(p, Query::Campaign(campaign)).await {
                    QueryAnswer::Campaign(Some(view)) => Self::json(&view),
                    QueryAnswer::Unavailable(f) => Response::Error(failure_to_wire(&f)),
                    _ => engine(EngineError::UnknownCampaign { campaign }),
                }
            }
            Request::Audit => self.audit().await,
            Request::Promote => crate::replication::promote(&self).await,
            Request::Subscribe { .. } | Request::ReplicaAck { .. } => {
                Response::Error(GatewayCode::Internal.error("subscriptions are served by the connection"))
            }
            Request::DefineWarehouse { id, code, region, priority } => {
                match self.call_all(Command::DefineWarehouse { id: WarehouseId(id), code, region, priority }).await {
                    Ok(()) => Response::Done,
                    Err(f) => Response::Error(failure_to_wire(&f)),
                }
            }
            Request::DefineSku { code, low_stock_threshold } => {
                if code.is_empty() || code.len() > oms_engine::catalog::CODE_LIMIT {
                    return engine(EngineError::InvalidCode { limit: oms_engine::catalog::CODE_LIMIT });
                }
                let (id, _) = self.index.sku_or_allocate(&code);
                match self.call(self.owner(id), Command::DefineSku { id, code, low_stock_threshold }).await {
                    Ok(_) => Response::SkuDefined { id: id.0 },
                    Err(f) => Response::Error(failure_to_wire(&f)),
                }
            }
            Request::DefineKit { code, components } => self.define_kit(&code, &components).await,
            Request::StockOp(op) => match self.stock_command(&op) {
                Ok((p, command)) => self.done(p, command).await,
                Err(e) => Response::Error(e),
            },
            Request::CreateFlashSale { id, sku, pool_qty, per_customer_limit, starts_at_ms, ends_at_ms } => {
                let sku = match self.resolve(&sku) {
                    Ok(s) => s,
                    Err(e) => return Response::Error(e),
                };
                let spec =
                    FlashSaleSpec { id: CampaignId(id), sku, pool_qty, per_customer_limit, starts_at_ms, ends_at_ms };
                let p = self.owner(sku);
                self.create_campaign(CampaignId(id), p, Command::CreateFlashSale(spec)).await
            }
            Request::CreatePresale {
                id,
                sku,
                quota,
                per_customer_limit,
                starts_at_ms,
                ends_at_ms,
                balance_window_ms,
            } => {
                let sku = match self.resolve(&sku) {
                    Ok(s) => s,
                    Err(e) => return Response::Error(e),
                };
                let spec = PresaleSpec {
                    id: CampaignId(id),
                    sku,
                    quota,
                    per_customer_limit,
                    starts_at_ms,
                    ends_at_ms,
                    balance_window_ms,
                };
                let p = self.owner(sku);
                self.create_campaign(CampaignId(id), p, Command::CreatePresale(spec)).await
            }
            Request::SetChannelPolicy { channel, ratio_bp, floor, exceptions } => {
                let mut resolved = Vec::with_capacity(exceptions.len());
                for (sku, ratio_bp, cap) in &exceptions {
                    match self.resolve(sku) {
                        Ok(sku) => resolved.push(ChannelException { sku, ratio_bp: *ratio_bp, cap: *cap }),
                        Err(e) => return Response::Error(e),
                    }
                }
                let policy = ChannelPolicy { channel: ChannelId(channel), ratio_bp, floor, exceptions: resolved };
                match self.call_all(Command::SetChannelPolicy(policy)).await {
                    Ok(()) => Response::Done,
                    Err(f) => Response::Error(failure_to_wire(&f)),
                }
            }
            // Orders: the coordinator in crate::orders (docs/ORDERS.md, "Through the server").
            order @ (Request::OrderImport { .. }
            | Request::OrderGet { .. }
            | Request::OrderList { .. }
            | Request::OrderApprove { .. }
            | Request::OrderReject { .. }
            | Request::OrderCancel { .. }
            | Request::OrderAllocate { .. }
            | Request::WaveCreate { .. }
            | Request::WaveGet { .. }
            | Request::ShipmentPack { .. }
            | Request::ShipmentShip { .. }
            | Request::ShipmentDeliver { .. }
            | Request::TrackAdd { .. }
            | Request::AfterSaleCreate { .. }
            | Request::AfterSaleReceive { .. }
            | Request::RulesReload { .. }
            | Request::Waybill { .. }) => crate::orders::execute(&self, order).await,
            Request::Channels { json } => crate::connectors::execute(&self, &json).await,
        }
    }
}

/// One view of a reservation from its parts' views. Parts in the same state read as one
/// reservation; parts that disagree (a confirm or release that a crash interrupted after some
/// partitions) read as status "partial" with each part listed, so a client neither counts a
/// released part as held nor the reverse, and knows to retry.
fn merge_parts(
    views: Vec<(u32, oms_engine::partition::ReservationView)>,
) -> Option<oms_engine::partition::ReservationView> {
    let same = views.windows(2).all(|w| w[0].1.status == w[1].1.status);
    let mut iter = views.into_iter();
    let (first_partition, mut merged) = iter.next()?;
    if same {
        for (_, view) in iter {
            merged.allocations.extend(view.allocations);
        }
        return Some(merged);
    }
    let mut parts = vec![oms_engine::partition::ReservationPart {
        partition: first_partition,
        status: merged.status.clone(),
        allocations: merged.allocations.clone(),
    }];
    for (partition, view) in iter {
        merged.allocations.extend(view.allocations.iter().copied());
        parts.push(oms_engine::partition::ReservationPart {
            partition,
            status: view.status,
            allocations: view.allocations,
        });
    }
    merged.status = "partial".to_owned();
    merged.parts = parts;
    Some(merged)
}

/// The state a follow-up command leaves a reservation part in, by the engine's action name.
fn reached_by(action: &str) -> Option<&'static str> {
    match action {
        "release" => Some("released"),
        "ship" => Some("shipped"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use oms_engine::partition::ReservationView;
    use oms_engine::{Allocation, ReservationId, SkuId, WarehouseId};

    fn view(status: &str, sku: u32) -> ReservationView {
        ReservationView {
            id: ReservationId(3 << 48 | 9),
            status: status.to_owned(),
            customer: 1,
            channel: 0,
            campaign: None,
            created_at_ms: 0,
            expires_at_ms: 60_000,
            allocations: vec![Allocation { sku: SkuId(sku), warehouse: WarehouseId(1), qty: 2 }],
            presale_outstanding: 0,
            promise_ms: None,
            parts: Vec::new(),
        }
    }

    #[test]
    fn parts_in_one_state_merge_and_parts_that_disagree_read_partial() {
        // Checks that a reservation whose parts agree reads as one (all allocations, no parts
        // list), and one whose release reached only one partition reads "partial" with each
        // part's status, never as wholly held.
        let merged = super::merge_parts(vec![(0, view("held", 2)), (1, view("held", 3))]).expect("merged");
        assert_eq!((merged.status.as_str(), merged.allocations.len(), merged.parts.len()), ("held", 2, 0));
        let partial = super::merge_parts(vec![(0, view("held", 2)), (1, view("released", 3))]).expect("merged");
        assert_eq!(partial.status, "partial");
        assert_eq!(partial.allocations.len(), 2);
        let parts: Vec<(u32, &str)> = partial.parts.iter().map(|p| (p.partition, p.status.as_str())).collect();
        assert_eq!(parts, vec![(0, "held"), (1, "released")]);
        assert!(super::merge_parts(Vec::new()).is_none());
        assert_eq!(super::reached_by("release"), Some("released"));
        assert_eq!(super::reached_by("confirm"), None);
    }
}
