//! The general request path: translate a request into engine commands and queries, send them to
//! the owning partitions, and coordinate multi-partition answers. Answers name SKUs and
//! warehouses by code (`wire_error::CodeNames`, the catalog index).

use std::sync::Arc;

use oms_engine::command::{
    ChannelException, ChannelPolicy, FlashSaleSpec, IdempotencyKey, KitComponent, PresaleSpec, ReleaseCause,
};
use oms_engine::event::Event;
use oms_engine::ids::partition_of;
use oms_engine::routing::{self, PartitionSet};
use oms_engine::{
    Bucket, CampaignId, ChannelId, Command, CustomerId, EngineError, Envelope, Line, PurchaseOrderId, ReservationId,
    ReserveRequest, SkuId, WarehouseId,
};
use oms_proto::json::{self, JsonRequest, SkuKey, WarehouseKey};
use oms_proto::{
    Allocation, BatchItem, Code, ErrorCode, KitComponent as WireKitComponent, ReservationPart, ReservationStatus,
    ReservationView, Reserve, Response, SkuRef, StockView, WarehouseStock, WireError,
};
use tokio::sync::oneshot;

use super::ServerCtx;
use crate::runtime::{
    failure_to_wire, now_ms, reserved_response_of, Failure, Job, PartResult, Query, QueryAnswer, Reply,
};
use crate::wire_error::{from_engine, gateway, CodeNames};

/// Longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_LIMIT: usize = oms_proto::IDEMPOTENCY_KEY_LIMIT;

fn unknown_code(code: &str) -> WireError {
    let mut e = WireError::new(ErrorCode::UNKNOWN_SKU, format!("unknown SKU code {code:?}"));
    e.sku = Code::new(code).ok().map(|c| c.as_str().into());
    e
}

fn unknown_warehouse_code(code: &str) -> WireError {
    let mut e = WireError::new(
        ErrorCode::from_name("unknown_warehouse").unwrap_or(ErrorCode::INTERNAL),
        format!("unknown warehouse code {code:?}"),
    );
    e.warehouse = Code::new(code).ok().map(|c| c.as_str().into());
    e
}

/// A reservation resolved and routed, ready for its partition(s).
pub type Built = Result<(ReserveRequest, PartitionSet), WireError>;

impl ServerCtx {
    /// An engine refusal, naming codes.
    pub fn engine_error(&self, e: &EngineError) -> WireError {
        from_engine(e, &self.index)
    }

    fn engine(&self, e: EngineError) -> Response {
        Response::Error(self.engine_error(&e))
    }

    /// A failed job, naming codes.
    pub fn failure(&self, f: &Failure) -> Response {
        Response::Error(failure_to_wire(f, &self.index))
    }

    pub fn resolve(&self, sku: SkuRef<'_>) -> Result<SkuId, WireError> {
        match sku {
            SkuRef::Id(id) => Ok(SkuId(id)),
            SkuRef::Code(code) => self.index.sku(code).ok_or_else(|| unknown_code(code)),
        }
    }

    pub fn resolve_key(&self, sku: &SkuKey) -> Result<SkuId, WireError> {
        match sku {
            SkuKey::Id(id) => Ok(SkuId(*id)),
            SkuKey::Code(code) => self.index.sku(code).ok_or_else(|| unknown_code(code)),
        }
    }

    pub fn resolve_warehouse(&self, warehouse: &WarehouseKey) -> Result<WarehouseId, WireError> {
        match warehouse {
            WarehouseKey::Id(id) => Ok(WarehouseId(*id)),
            WarehouseKey::Code(code) => self.index.warehouse(code).ok_or_else(|| unknown_warehouse_code(code)),
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

    /// Resolve codes, check the limits the gateway owns, expand kits; the engine validates the
    /// rest. Reads the request where it lies (the decoder's borrowed lines). `scope` is the name
    /// of the API key the request came with: its idempotency key is that client's, never another's.
    pub fn build_reserve(&self, wire: &Reserve<'_>, scope: &str) -> Built {
        let max_lines = self.config.max_lines;
        if wire.lines.len() > max_lines {
            return Err(self.engine_error(&EngineError::TooManyLines { lines: wire.lines.len(), limit: max_lines }));
        }
        if wire.idempotency_key.len() > IDEMPOTENCY_KEY_LIMIT {
            return Err(gateway(
                ErrorCode::BAD_REQUEST,
                format!("idempotency key longer than {IDEMPOTENCY_KEY_LIMIT} bytes"),
            ));
        }
        let mut lines = Vec::with_capacity(wire.lines.len());
        let mut has_kit = false;
        for line in wire.lines.iter() {
            let sku = self.resolve(line.sku)?;
            has_kit |= self.index.is_kit(sku);
            lines.push(Line { sku, qty: line.qty });
        }
        if has_kit {
            let kits: Vec<(SkuId, Vec<KitComponent>)> =
                lines.iter().filter_map(|l| self.index.kit(l.sku).map(|k| (l.sku, k.clone()))).collect();
            lines = routing::expand_kits(&lines, max_lines, |sku| {
                kits.iter().find(|(k, _)| *k == sku).map(|(_, c)| c.as_slice())
            })
            .map_err(|e| self.engine_error(&e))?;
        } else {
            routing::validate_lines(&lines, max_lines).map_err(|e| self.engine_error(&e))?;
        }
        let set = routing::partitions_of(&lines, self.workers.partitions());
        // Keyed or not, the id comes from the counter: a key never determines an id. The key's
        // home partition remembers the key (compared as a key) and the reservation it made, so a
        // retry is answered with the first reservation wherever its parts are.
        let id = routing::reservation_id(self.index.next_reservation_sequence(), set);
        let idempotency_key = (!wire.idempotency_key.is_empty())
            .then(|| Box::new(IdempotencyKey { scope: scope.to_owned(), key: wire.idempotency_key.to_owned() }));
        let mut request = ReserveRequest {
            id,
            lines,
            ttl_ms: wire.ttl_ms,
            fingerprint: 0,
            customer: CustomerId(wire.customer),
            channel: ChannelId(wire.channel),
            campaign: wire.campaign.map(CampaignId),
            part: oms_engine::command::PartInfo::SINGLE,
            prefer_warehouses: None,
            idempotency_key,
        };
        if request.idempotency_key.is_some() {
            request.fingerprint = routing::request_fingerprint(&request);
        }
        Ok((request, set))
    }

    /// Whether a reservation over `set` is decided by one partition alone, so it can go straight
    /// into that partition's queue: its lines, its campaign and its idempotency key's home are all
    /// there.
    pub fn single_partition(&self, request: &ReserveRequest, set: PartitionSet) -> Option<u32> {
        let p = set.iter().next().filter(|_| set.len() == 1)?;
        if request.campaign.is_some_and(|c| self.index.campaign_partition(c) != Some(p)) {
            return None;
        }
        if request.idempotency_key.as_deref().is_some_and(|k| routing::key_home(k, self.workers.partitions()) != p) {
            return None;
        }
        Some(p)
    }

    /// The fast-path refusal for a reservation against a sold-out campaign, if it is sold out.
    pub fn sold_out_campaign(&self, campaign: CampaignId) -> Option<WireError> {
        if !self.board.campaign_sold_out(campaign) {
            return None;
        }
        self.metrics.fast_path_rejects.inc();
        Some(self.engine_error(&EngineError::SoldOut { campaign }))
    }

    /// Refuse from the sold-out board without a partition hop, when that answer is certain enough.
    pub fn fast_reject(&self, request: &ReserveRequest) -> Option<WireError> {
        if let Some(campaign) = request.campaign {
            return self.sold_out_campaign(campaign);
        }
        for line in &request.lines {
            if self.board.available(line.sku) == Some(0) {
                self.metrics.fast_path_rejects.inc();
                return Some(self.engine_error(&EngineError::InsufficientStock {
                    sku: line.sku,
                    requested: u64::from(line.qty),
                    available: 0,
                }));
            }
        }
        None
    }

    /// Reserve across partitions: every part in parallel, then compensate if any part refused.
    ///
    /// With an idempotency key, the key's home partition (`routing::key_home`) decides which
    /// reservation the key stands for: its part (or, when none of the lines live there, a
    /// `ClaimKey` sent in parallel with the parts). A key seen before with the same request
    /// answers its first reservation: the parts this attempt made under the new id are undone and
    /// the request is sent again under the first id (parts that exist replay; parts a crash lost
    /// are made). A key seen with another request is refused `idempotency_key_reused`. One
    /// coordinated attempt per key at a time (a concurrent one is answered `busy`), so two
    /// attempts never undo each other's parts.
    pub async fn reserve_coordinated(&self, request: ReserveRequest) -> Response {
        let campaign_partition = match request.campaign {
            Some(c) => match self.index.campaign_partition(c) {
                Some(p) => Some(p),
                None => return self.engine(EngineError::UnknownCampaign { campaign: c }),
            },
            None => None,
        };
        let Some(key) = request.idempotency_key.as_deref().cloned() else {
            return self.reserve_parts(&request, campaign_partition, None, false).await.answer(self);
        };
        let Some(_in_flight) = self.keys_in_flight.enter(&key) else {
            return Response::Error(gateway(
                ErrorCode::BUSY,
                "a request with this idempotency key is still being processed; retry with backoff",
            ));
        };
        match self.reserve_parts(&request, campaign_partition, Some(&key), false).await {
            Attempt::Existing(first) => {
                let again = ReserveRequest { id: first, ..request };
                match self.reserve_parts(&again, campaign_partition, Some(&key), true).await {
                    Attempt::Existing(other) => Response::Error(gateway(
                        ErrorCode::INTERNAL,
                        format!("idempotency key moved from reservation {} to {} during a retry", first.0, other.0),
                    )),
                    attempt => attempt.answer(self),
                }
            }
            attempt => attempt.answer(self),
        }
    }

    /// One attempt: every part of `request` (and the key's claim) in parallel; undo what this
    /// attempt made if it is refused, or if the key stands for another reservation. `retrying`:
    /// `request.id` is the key's earlier reservation, whose claim this attempt must keep.
    async fn reserve_parts(
        &self,
        request: &ReserveRequest,
        campaign_partition: Option<u32>,
        key: Option<&IdempotencyKey>,
        retrying: bool,
    ) -> Attempt {
        let partitions = self.workers.partitions();
        let id = request.id;
        let parts = routing::split_reserve(request, partitions, campaign_partition);
        let home = key.map(|k| routing::key_home(k, partitions));
        let claim = match (key, home) {
            (Some(k), Some(h)) if !parts.iter().any(|(p, _)| *p == h) => Some((
                h,
                Command::ClaimKey { key: k.clone(), fingerprint: request.fingerprint, id, ttl_ms: request.ttl_ms },
            )),
            _ => None,
        };
        let calls = parts.into_iter().map(|(p, part)| async move { (p, self.call(p, Command::Reserve(part)).await) });
        let claiming = async {
            match claim {
                Some((h, command)) => Some(self.call(h, command).await),
                None => None,
            }
        };
        let (results, claimed) = futures::future::join(futures::future::join_all(calls), claiming).await;

        let mut events = Vec::new();
        // Partitions whose part this attempt made (not replayed): what compensation undoes.
        let mut made = Vec::new();
        let mut refusal: Option<Failure> = None;
        // The reservation the key stands for, when it is not `id`.
        let mut first = None;
        let mut claimed_now = false;
        let refuse = |failure: Failure, refusal: &mut Option<Failure>| {
            // The key's refusal says the most: the request itself is wrong, not the stock.
            let reused = matches!(failure, Failure::Engine(EngineError::IdempotencyKeyReused { .. }));
            if reused || refusal.is_none() {
                *refusal = Some(failure);
            }
        };
        for (p, result) in results {
            match result {
                Ok(part_events) => {
                    for event in &part_events {
                        if let Event::Reserved { id: got, replayed, .. } = event {
                            let at_home = Some(p) == home;
                            if at_home && *got != id {
                                first = Some(*got);
                            } else if !replayed {
                                made.push(p);
                                claimed_now |= at_home && !retrying;
                            }
                        }
                    }
                    events.extend(part_events);
                }
                Err(failure) => refuse(failure, &mut refusal),
            }
        }
        match claimed {
            Some(Ok(claim_events)) => {
                for event in claim_events {
                    if let Event::KeyClaimed { id: got, replayed } = event {
                        if got != id {
                            first = Some(got);
                        } else {
                            claimed_now |= !replayed && !retrying;
                        }
                    }
                }
            }
            Some(Err(failure)) => refuse(failure, &mut refusal),
            None => {}
        }
        if first.is_none() && refusal.is_none() {
            return Attempt::Done(events);
        }
        for p in made {
            if let Err(f) = self.call(p, Command::Release { id, cause: ReleaseCause::Compensation }).await {
                tracing::error!(reservation = id.0, partition = p, failure = ?f, "compensation failed; the part lapses at its TTL");
            }
        }
        if let (true, Some(key), Some(h)) = (claimed_now, key, home) {
            if let Err(f) = self.call(h, Command::ForgetKey { key: key.clone(), id }).await {
                tracing::error!(reservation = id.0, partition = h, failure = ?f, "could not forget an idempotency key; a retry continues under the undone reservation");
            }
        }
        match first {
            Some(first) => Attempt::Existing(first),
            None => Attempt::Refused(refusal.unwrap_or(Failure::ShuttingDown)),
        }
    }

    /// A built reservation, on whichever path its partitions need.
    pub async fn reserve_built(&self, built: Built) -> Response {
        let (request, set) = match built {
            Ok(built) => built,
            Err(e) => return Response::Error(e),
        };
        if let Some(e) = self.fast_reject(&request) {
            return Response::Error(e);
        }
        if let Some(p) = self.single_partition(&request, set) {
            return match self.call(p, Command::Reserve(request)).await {
                Ok(events) => reserved_response_of(&events, &self.index),
                Err(f) => self.failure(&f),
            };
        }
        self.reserve_coordinated(request).await
    }

    /// A batch of built reservations, each on its own.
    pub async fn reserve_batch(&self, batch: Vec<Built>) -> Response {
        let answers = futures::future::join_all(batch.into_iter().map(|built| self.reserve_built(built))).await;
        Response::Batch(
            answers
                .into_iter()
                .map(|r| match r {
                    Response::Reserved(w) => BatchItem::Reserved(w),
                    Response::Error(e) => BatchItem::Refused(e),
                    _ => BatchItem::Refused(gateway(ErrorCode::INTERNAL, "unexpected answer")),
                })
                .collect(),
        )
    }

    /// Confirm, release, ship or pay: every partition named by the id.
    pub async fn on_parts(&self, id: u64, make: impl Fn(ReservationId) -> Command) -> Response {
        let id = ReservationId(id);
        let parts = routing::reservation_parts(id);
        if parts.is_empty() || parts.iter().any(|p| p >= self.workers.partitions()) {
            return self.engine(EngineError::UnknownReservation { id });
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
                Err(f) => return self.failure(&f),
            }
        }
        Response::Done
    }

    fn json<T: serde::Serialize>(value: &T) -> Response {
        match serde_json::to_string(value) {
            Ok(text) => Response::Json(text),
            Err(e) => Response::Error(gateway(ErrorCode::INTERNAL, e.to_string())),
        }
    }

    fn unexpected() -> Response {
        Response::Error(gateway(ErrorCode::INTERNAL, "unexpected answer"))
    }

    fn allocation(&self, a: &oms_engine::Allocation) -> Allocation {
        Allocation {
            sku_id: a.sku.0,
            warehouse_id: a.warehouse.0,
            qty: a.qty,
            sku: self.index.sku_code(a.sku.0).unwrap_or(Code::EMPTY),
            warehouse: self.index.warehouse_code(a.warehouse.0).unwrap_or(Code::EMPTY),
        }
    }

    pub async fn stock(&self, sku: SkuId) -> Response {
        let view = match self.ask(self.owner(sku), Query::Stock(sku)).await {
            QueryAnswer::Stock(Some(view)) => view,
            QueryAnswer::Stock(None) => return self.engine(EngineError::UnknownSku { sku }),
            QueryAnswer::Unavailable(f) => return self.failure(&f),
            _ => return Self::unexpected(),
        };
        let mut available = view.available;
        if let Some(components) = &view.kit {
            let mut kits = u64::MAX;
            for c in components {
                match self.ask(self.owner(c.sku), Query::Available(c.sku)).await {
                    QueryAnswer::Available(a) => kits = kits.min(a.unwrap_or(0) / u64::from(c.qty.max(1))),
                    QueryAnswer::Unavailable(f) => return self.failure(&f),
                    _ => return Self::unexpected(),
                }
            }
            available = if kits == u64::MAX { 0 } else { kits };
        }
        Response::Stock(StockView {
            sku_id: view.sku.0,
            on_hand: view.on_hand,
            reserved: view.reserved,
            pooled: view.pooled,
            unavailable: view.unavailable,
            available,
            incoming: view.incoming,
            sku: Code::truncated(&view.code),
            kit: view
                .kit
                .iter()
                .flatten()
                .map(|c| WireKitComponent {
                    qty: c.qty,
                    sku_id: c.sku.0,
                    sku: self.index.sku_code(c.sku.0).unwrap_or(Code::EMPTY),
                })
                .collect(),
            warehouses: view
                .warehouses
                .iter()
                .map(|w| WarehouseStock {
                    warehouse_id: w.warehouse.0,
                    on_hand: w.on_hand,
                    reserved: w.reserved,
                    pooled: w.pooled,
                    safety: w.safety,
                    damaged: w.damaged,
                    quality_control: w.quality_control,
                    available: w.available,
                    warehouse: self.index.warehouse_code(w.warehouse.0).unwrap_or(Code::EMPTY),
                })
                .collect(),
        })
    }

    pub async fn reservation(&self, id: u64) -> Response {
        let id = ReservationId(id);
        let parts = routing::reservation_parts(id);
        if parts.is_empty() || parts.iter().any(|p| p >= self.workers.partitions()) {
            return self.engine(EngineError::UnknownReservation { id });
        }
        let mut views = Vec::with_capacity(parts.len() as usize);
        for p in parts.iter() {
            match self.ask(p, Query::Reservation(id)).await {
                QueryAnswer::Reservation(Some(view)) => views.push((p, view)),
                QueryAnswer::Reservation(None) => {}
                QueryAnswer::Unavailable(f) => return self.failure(&f),
                _ => return Self::unexpected(),
            }
        }
        let Some(view) = merge_parts(views) else {
            return self.engine(EngineError::UnknownReservation { id });
        };
        let status = |name: &str| ReservationStatus::from_name(name);
        let Some(merged_status) = status(&view.status) else {
            return Response::Error(gateway(
                ErrorCode::INTERNAL,
                format!("unknown reservation status {}", view.status),
            ));
        };
        let mut parts = Vec::with_capacity(view.parts.len());
        for part in &view.parts {
            let Some(part_status) = status(&part.status) else {
                return Response::Error(gateway(
                    ErrorCode::INTERNAL,
                    format!("unknown reservation status {}", part.status),
                ));
            };
            parts.push(ReservationPart {
                partition: part.partition,
                status: part_status,
                allocations: part.allocations.iter().map(|a| self.allocation(a)).collect(),
            });
        }
        Response::Reservation(ReservationView {
            id: view.id.0,
            customer: view.customer,
            created_at_ms: view.created_at_ms,
            expires_at_ms: view.expires_at_ms,
            promise_ms: view.promise_ms,
            campaign: view.campaign.map(|c| c.0),
            presale_outstanding: view.presale_outstanding,
            channel: view.channel,
            status: merged_status,
            allocations: view.allocations.iter().map(|a| self.allocation(a)).collect(),
            parts,
        })
    }

    async fn export(&self) -> Response {
        let mut rows = Vec::new();
        for p in 0..self.workers.partitions() {
            match self.ask(p, Query::Export).await {
                QueryAnswer::Export(part) => rows.extend(part),
                QueryAnswer::Unavailable(f) => return self.failure(&f),
                _ => return Self::unexpected(),
            }
        }
        rows.sort_unstable_by_key(|(sku, _, _)| *sku);
        let available_of = |sku: SkuId, rows: &[(SkuId, String, u64)]| {
            rows.binary_search_by_key(&sku, |(s, _, _)| *s).map_or(0, |i| rows[i].2)
        };
        let json: Vec<json::ExportRow> = rows
            .iter()
            .map(|(sku, code, available)| {
                let available = match self.index.kit(*sku) {
                    Some(kit) => {
                        kit.iter().map(|c| available_of(c.sku, &rows) / u64::from(c.qty.max(1))).min().unwrap_or(0)
                    }
                    None => *available,
                };
                json::ExportRow { sku: sku.0, code: code.clone(), available }
            })
            .collect();
        Self::json(&json)
    }

    pub async fn audit(&self) -> Response {
        let mut partitions = Vec::new();
        for p in 0..self.workers.partitions() {
            match self.ask(p, Query::Audit).await {
                QueryAnswer::Audit(audit) => partitions.push(*audit),
                QueryAnswer::Unavailable(f) => return self.failure(&f),
                _ => return Self::unexpected(),
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

    async fn campaign(&self, id: u32) -> Response {
        let campaign = CampaignId(id);
        let Some(p) = self.index.campaign_partition(campaign) else {
            return self.engine(EngineError::UnknownCampaign { campaign });
        };
        match self.ask(p, Query::Campaign(campaign)).await {
            QueryAnswer::Campaign(Some(view)) => Self::json(&json::CampaignView {
                id: view.id.0,
                sku: view.sku.0,
                sku_code: self.index.sku_code(view.sku.0).map(|c| c.to_string()).unwrap_or_default(),
                kind: view.kind,
                remaining: view.remaining,
                open: view.open,
                closed: view.closed,
                per_customer_limit: view.per_customer_limit,
                starts_at_ms: view.starts_at_ms,
                ends_at_ms: view.ends_at_ms,
            }),
            QueryAnswer::Unavailable(f) => self.failure(&f),
            _ => self.engine(EngineError::UnknownCampaign { campaign }),
        }
    }

    async fn define_kit(&self, code: &str, components: &[json::JsonLine]) -> Response {
        let mut resolved = Vec::with_capacity(components.len());
        for c in components {
            match self.resolve_key(&c.sku) {
                Ok(sku) => resolved.push(KitComponent { sku, qty: c.qty }),
                Err(e) => return Response::Error(e),
            }
        }
        // Checked before the code is interned (the engine checks it again).
        if let Err(e) = oms_engine::catalog::check_code(code) {
            return self.engine(e);
        }
        for c in &resolved {
            if self.index.is_kit(c.sku) {
                let kit = self.index.sku(code).unwrap_or(SkuId(u32::MAX));
                return self.engine(EngineError::InvalidKit { kit, reason: "kits of kits are not supported" });
            }
        }
        let (id, _) = self.index.sku_or_allocate(code);
        if let Err(e) = oms_engine::partition::validate_kit(id, &resolved, self.config.max_lines) {
            return self.engine(e);
        }
        match self
            .call(self.owner(id), Command::DefineKit { id, code: code.to_owned(), components: resolved.clone() })
            .await
        {
            Ok(_) => {
                self.index.set_kit(id, resolved);
                Self::json(&json::DefinedSku { id: id.0 })
            }
            Err(f) => self.failure(&f),
        }
    }

    /// The engine command for a stock operation, with its owning partition.
    pub fn stock_command(&self, op: &json::StockOp) -> Result<(u32, Command), WireError> {
        use json::StockOp as Op;
        let sku = self.resolve_key(op.sku())?;
        let command = match op {
            Op::SetOnHand { warehouse, on_hand, .. } => {
                Command::SetOnHand { sku, warehouse: self.resolve_warehouse(warehouse)?, on_hand: *on_hand }
            }
            Op::Receive { warehouse, qty, .. } => {
                Command::Receive { sku, warehouse: self.resolve_warehouse(warehouse)?, qty: *qty }
            }
            Op::Adjust { warehouse, delta, .. } => {
                Command::Adjust { sku, warehouse: self.resolve_warehouse(warehouse)?, delta: *delta }
            }
            Op::SetBucket { warehouse, bucket, qty, .. } => {
                let bucket = match bucket {
                    json::Bucket::Safety => Bucket::Safety,
                    json::Bucket::Damaged => Bucket::Damaged,
                    json::Bucket::QualityControl => Bucket::QualityControl,
                };
                Command::SetBucket { sku, warehouse: self.resolve_warehouse(warehouse)?, bucket, qty: *qty }
            }
            Op::Transfer { from, to, qty, .. } => Command::Transfer {
                sku,
                from: self.resolve_warehouse(from)?,
                to: self.resolve_warehouse(to)?,
                qty: *qty,
            },
            Op::ReturnToStock { warehouse, qty, damaged, .. } => Command::ReturnToStock {
                sku,
                warehouse: self.resolve_warehouse(warehouse)?,
                qty: *qty,
                damaged: *damaged,
            },
            Op::ExpectIncoming { po, warehouse, qty, eta_ms, .. } => Command::ExpectIncoming {
                po: PurchaseOrderId(*po),
                sku,
                warehouse: self.resolve_warehouse(warehouse)?,
                qty: *qty,
                eta_ms: *eta_ms,
            },
            Op::RescheduleIncoming { po, eta_ms, .. } => {
                Command::RescheduleIncoming { po: PurchaseOrderId(*po), sku, eta_ms: *eta_ms }
            }
            Op::ReceivePurchaseOrder { po, qty, .. } => {
                Command::ReceivePurchaseOrder { po: PurchaseOrderId(*po), sku, qty: *qty }
            }
        };
        Ok((self.owner(sku), command))
    }

    async fn create_campaign(&self, campaign: CampaignId, partition: u32, command: Command) -> Response {
        if !self.index.claim_campaign(campaign, partition) {
            return self.engine(EngineError::DuplicateCampaign { campaign });
        }
        let answer = self.done(partition, command).await;
        if matches!(answer, Response::Error(_)) {
            self.index.unclaim_campaign(campaign);
        }
        answer
    }

    /// One command; `{}` when it succeeded.
    async fn done(&self, partition: u32, command: Command) -> Response {
        match self.call(partition, command).await {
            Ok(_) => Self::json(&json::Empty {}),
            Err(f) => self.failure(&f),
        }
    }

    /// Answer a JSON-bodied request (lookups, reports, administration, orders, promote).
    pub async fn execute(self: Arc<Self>, request: JsonRequest) -> Response {
        match request {
            JsonRequest::LookupSkus(lookup) => Self::json(&json::LookupAnswer {
                ids: lookup.codes.iter().map(|c| self.index.sku(c).map(|s| s.0)).collect(),
            }),
            JsonRequest::ExportStock => self.export().await,
            JsonRequest::GetCampaign(body) => self.campaign(body.id).await,
            JsonRequest::Audit => self.audit().await,
            JsonRequest::Promote => crate::replication::promote(&self).await,
            JsonRequest::DefineWarehouse(w) => {
                // Documented as 1..=65535 (docs/PROTOCOL.md 7.2); checked here rather than in the
                // engine, whose logs may already hold older commands.
                if w.id == 0 {
                    return Response::Error(gateway(ErrorCode::BAD_REQUEST, "warehouse ids are 1 to 65535"));
                }
                let id = WarehouseId(w.id);
                let code = w.code.clone();
                match self
                    .call_all(Command::DefineWarehouse { id, code: w.code, region: w.region, priority: w.priority })
                    .await
                {
                    Ok(()) => {
                        self.index.set_warehouse(id, &code);
                        Self::json(&json::Empty {})
                    }
                    Err(f) => self.failure(&f),
                }
            }
            JsonRequest::DefineSku(d) => {
                // Checked before the code is interned (the engine checks it again).
                if let Err(e) = oms_engine::catalog::check_code(&d.code) {
                    return self.engine(e);
                }
                let (id, _) = self.index.sku_or_allocate(&d.code);
                match self
                    .call(
                        self.owner(id),
                        Command::DefineSku { id, code: d.code, low_stock_threshold: d.low_stock_threshold },
                    )
                    .await
                {
                    Ok(_) => Self::json(&json::DefinedSku { id: id.0 }),
                    Err(f) => self.failure(&f),
                }
            }
            JsonRequest::DefineKit(k) => self.define_kit(&k.code, &k.components).await,
            JsonRequest::StockOp(op) => match self.stock_command(&op) {
                Ok((p, command)) => self.done(p, command).await,
                Err(e) => Response::Error(e),
            },
            JsonRequest::CreateFlashSale(f) => {
                let sku = match self.resolve_key(&f.sku) {
                    Ok(s) => s,
                    Err(e) => return Response::Error(e),
                };
                let spec = FlashSaleSpec {
                    id: CampaignId(f.id),
                    sku,
                    pool_qty: f.pool_qty,
                    per_customer_limit: f.per_customer_limit,
                    starts_at_ms: f.starts_at_ms,
                    ends_at_ms: f.ends_at_ms,
                };
                let p = self.owner(sku);
                self.create_campaign(CampaignId(f.id), p, Command::CreateFlashSale(spec)).await
            }
            JsonRequest::CreatePresale(f) => {
                let sku = match self.resolve_key(&f.sku) {
                    Ok(s) => s,
                    Err(e) => return Response::Error(e),
                };
                let spec = PresaleSpec {
                    id: CampaignId(f.id),
                    sku,
                    quota: f.quota,
                    per_customer_limit: f.per_customer_limit,
                    starts_at_ms: f.starts_at_ms,
                    ends_at_ms: f.ends_at_ms,
                    balance_window_ms: f.balance_window_ms,
                };
                let p = self.owner(sku);
                self.create_campaign(CampaignId(f.id), p, Command::CreatePresale(spec)).await
            }
            JsonRequest::SetChannelPolicy(policy) => {
                let mut resolved = Vec::with_capacity(policy.exceptions.len());
                for e in &policy.exceptions {
                    match self.resolve_key(&e.sku) {
                        Ok(sku) => resolved.push(ChannelException { sku, ratio_bp: e.ratio_bp, cap: e.cap }),
                        Err(e) => return Response::Error(e),
                    }
                }
                let policy = ChannelPolicy {
                    channel: ChannelId(policy.channel),
                    ratio_bp: policy.ratio_bp,
                    floor: policy.floor,
                    exceptions: resolved,
                };
                match self.call_all(Command::SetChannelPolicy(policy)).await {
                    Ok(()) => Self::json(&json::Empty {}),
                    Err(f) => self.failure(&f),
                }
            }
            // Orders: the coordinator in crate::orders (docs/ORDERS.md, "Through the server").
            // Marketplace shops and the exception desk (docs/CHANNELS.md).
            request @ (JsonRequest::ShopList
            | JsonRequest::ShopStatus(_)
            | JsonRequest::ShopSync(_)
            | JsonRequest::OrderExceptions(_)
            | JsonRequest::OrderResolve(_)) => crate::connectors::execute(&self, request).await,
            order => crate::orders::execute(&self, order).await,
        }
    }
}

/// How one attempt of a coordinated reservation ended.
enum Attempt {
    /// Every part answered: their events.
    Done(Vec<Event>),
    Refused(Failure),
    /// The idempotency key stands for this earlier reservation (same request): what this attempt
    /// made was undone; send the request again under this id.
    Existing(ReservationId),
}

impl Attempt {
    fn answer(self, ctx: &ServerCtx) -> Response {
        match self {
            Attempt::Done(events) => reserved_response_of(&events, &ctx.index),
            Attempt::Refused(failure) => ctx.failure(&failure),
            Attempt::Existing(id) => Response::Error(gateway(
                ErrorCode::INTERNAL,
                format!("reservation {} stands for this key; not retried", id.0),
            )),
        }
    }
}

/// Keyed reservations being coordinated right now (their keys).
#[derive(Default)]
pub struct KeysInFlight(dashmap::DashSet<IdempotencyKey>);

impl KeysInFlight {
    /// Marks `key` in flight until the guard drops; `None` when it already is.
    pub fn enter(&self, key: &IdempotencyKey) -> Option<KeyInFlight<'_>> {
        self.0.insert(key.clone()).then(|| KeyInFlight { set: self, key: key.clone() })
    }
}

pub struct KeyInFlight<'a> {
    set: &'a KeysInFlight,
    key: IdempotencyKey,
}

impl Drop for KeyInFlight<'_> {
    fn drop(&mut self) {
        self.set.0.remove(&self.key);
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
