//! One partition: the single-writer state machine that owns a slice of the SKUs.
//!
//! `apply` is the only mutator. A refused command leaves the state exactly as it was (handlers
//! validate everything before they change anything), and a command that changes nothing also
//! leaves the clock alone, so the runtime may skip logging it and replay still matches.

mod campaigns;
mod query;
mod reserve;
mod stock_ops;

use std::collections::BTreeMap;

use crate::campaign::Campaign;
use crate::catalog::{SkuState, Warehouse};
use crate::command::{ChannelPolicy, Command, Envelope};
use crate::error::EngineError;
use crate::event::{Allocation, Event, Movement, MovementKind};
use crate::ids::{local_index, partition_of, SkuId, TimeMs, WarehouseId, SKU_ID_LIMIT};
use crate::ledger::Ledger;
use crate::reservation::ReservationBook;

pub use query::{
    CampaignView, ConsistencyReport, ImageError, PartitionImage, PartitionImageV1, PartitionImageV2, ReservationPart,
    ReservationView, SkuStockView, WarehouseStockView,
};
pub use stock_ops::validate_kit;

/// Bounds on what one command may ask for and on what a partition remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Lines in one reservation (after kit expansion).
    pub max_lines: usize,
    /// Longest reservation TTL.
    pub max_ttl_ms: u64,
    /// Ended reservations remembered for idempotent retries and precise errors.
    pub ended_retention: usize,
    /// Open ledger entries before the period is closed.
    pub ledger_fold_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_lines: 64, max_ttl_ms: 7 * 24 * 3_600_000, ended_retention: 262_144, ledger_fold_limit: 1 << 16 }
    }
}

/// What a successful command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// State changed: the command must be logged.
    Changed,
    /// Nothing changed (an idempotent retry, a tick with nothing due): no need to log it.
    Unchanged,
}

#[derive(Clone, Debug)]
pub struct Partition {
    index: u32,
    partitions: u32,
    limits: Limits,
    now_ms: TimeMs,
    /// Sorted by id.
    warehouses: Vec<Warehouse>,
    /// Warehouse ids in preference order (priority, then id).
    warehouse_order: Vec<WarehouseId>,
    /// Dense by local slot (see [`crate::ids::local_index`]).
    skus: Vec<Option<SkuState>>,
    sku_count: usize,
    book: ReservationBook,
    campaigns: BTreeMap<crate::ids::CampaignId, Campaign>,
    /// Sorted by channel id; `SkuState::channel_shown` is indexed like this.
    channels: Vec<ChannelPolicy>,
    ledger: Ledger,
    /// Orders owned by this partition (by order id), see [`crate::orders`].
    pub(crate) orders: crate::orders::OrderBook,
    /// Display names of this partition's SKUs and of every warehouse.
    names: crate::catalog::Names,
    /// SKUs whose `low` flag is set (derived: the dashboard lists them without a scan).
    low_skus: std::collections::BTreeSet<SkuId>,
    /// Reused buffer for reservation planning, so the hot path does not allocate for it.
    scratch: Vec<Allocation>,
}

impl Partition {
    pub fn new(index: u32, partitions: u32, limits: Limits) -> Self {
        assert!(partitions > 0 && index < partitions, "partition {index} of {partitions}");
        Partition {
            index,
            partitions,
            limits,
            now_ms: 0,
            warehouses: Vec::new(),
            warehouse_order: Vec::new(),
            skus: Vec::new(),
            sku_count: 0,
            book: ReservationBook::default(),
            campaigns: BTreeMap::new(),
            channels: Vec::new(),
            ledger: Ledger::with_fold_limit(limits.ledger_fold_limit),
            orders: crate::orders::OrderBook::default(),
            names: crate::catalog::Names::default(),
            low_skus: std::collections::BTreeSet::new(),
            scratch: Vec::new(),
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn now_ms(&self) -> TimeMs {
        self.now_ms
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Apply one command. Events are appended to `out`; on error nothing is appended and the
    /// state is unchanged.
    pub fn apply(&mut self, envelope: &Envelope, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let now = self.now_ms.max(envelope.now_ms);
        let mark = out.len();
        let result = self.dispatch(now, &envelope.command, out);
        match result {
            Ok(Outcome::Changed) => self.now_ms = now,
            // The only thing an unchanged command may say is the replayed answer to a retry.
            Ok(Outcome::Unchanged) => debug_assert!(
                out[mark..].iter().all(|e| matches!(
                    e,
                    Event::Reserved { replayed: true, .. } | Event::KeyClaimed { replayed: true, .. }
                )),
                "an unchanged command emitted events"
            ),
            Err(_) => out.truncate(mark),
        }
        #[cfg(debug_assertions)]
        if result.is_ok() {
            self.debug_check_touched(&envelope.command);
        }
        result
    }

    fn dispatch(&mut self, now: TimeMs, command: &Command, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        match command {
            Command::Tick { budget } => {
                let stock = self.tick(now, *budget, out);
                let mark = out.len();
                let orders = self.orders.tick(now, *budget, out);
                // Deadlines and tracking alerts move orders too: keep the lists in step.
                self.orders.refresh_touched(None, &out[mark..]);
                Ok(if orders { Outcome::Changed } else { stock })
            }
            Command::DefineWarehouse { id, code, region, priority } => {
                self.define_warehouse(*id, code, region, *priority, out)
            }
            Command::DefineSku { id, code, low_stock_threshold } => {
                self.define_sku(*id, code, *low_stock_threshold, out)
            }
            Command::DefineKit { id, code, components } => self.define_kit(*id, code, components, out),
            Command::SetOnHand { sku, warehouse, on_hand } => self.set_on_hand(*sku, *warehouse, *on_hand, out),
            Command::Receive { sku, warehouse, qty } => self.receive(*sku, *warehouse, *qty, out),
            Command::Adjust { sku, warehouse, delta } => self.adjust(*sku, *warehouse, *delta, out),
            Command::SetBucket { sku, warehouse, bucket, qty } => self.set_bucket(*sku, *warehouse, *bucket, *qty, out),
            Command::Transfer { sku, from, to, qty } => self.transfer(*sku, *from, *to, *qty, out),
            Command::ReturnToStock { sku, warehouse, qty, damaged } => {
                self.return_to_stock(*sku, *warehouse, *qty, *damaged, out)
            }
            Command::ExpectIncoming { po, sku, warehouse, qty, eta_ms } => {
                self.expect_incoming(*po, *sku, *warehouse, *qty, *eta_ms, out)
            }
            Command::RescheduleIncoming { po, sku, eta_ms } => self.reschedule_incoming(*po, *sku, *eta_ms, out),
            Command::ReceivePurchaseOrder { po, sku, qty } => self.receive_purchase_order(*po, *sku, *qty, out),
            Command::Reserve(request) => self.reserve(now, request, out),
            Command::ClaimKey { key, fingerprint, id, ttl_ms } => {
                self.claim_key(now, key, *fingerprint, *id, *ttl_ms, out)
            }
            Command::ForgetKey { key, id } => Ok(self.forget_key(key, *id)),
            Command::Confirm { id } => self.confirm(now, *id, out),
            Command::Release { id, cause } => self.release(now, *id, *cause, out),
            Command::Ship { id } => self.ship(now, *id, out),
            Command::PayBalance { id } => self.pay_balance(now, *id, out),
            Command::CreateFlashSale(spec) => self.create_flash_sale(now, spec, out),
            Command::CreatePresale(spec) => self.create_presale(spec, out),
            Command::SetChannelPolicy(policy) => self.set_channel_policy(policy, out),
            Command::Order(order) => self.apply_order(now, order, out),
            Command::NameSku { sku, name } => self.name_sku(*sku, name, out),
            Command::NameWarehouse { warehouse, name } => self.name_warehouse(*warehouse, name, out),
        }
    }

    // ----- lookups shared by the handlers -----

    fn owns(&self, sku: SkuId) -> Result<(), EngineError> {
        let owner = partition_of(sku, self.partitions);
        if owner != self.index {
            return Err(EngineError::WrongPartition { sku, owner, this: self.index });
        }
        Ok(())
    }

    /// `owns` plus the id bound that keeps the dense SKU table small: for commands that create a SKU.
    fn owns_new(&self, sku: SkuId) -> Result<(), EngineError> {
        self.owns(sku)?;
        if sku.0 >= SKU_ID_LIMIT {
            return Err(EngineError::SkuIdOutOfRange { sku, limit: SKU_ID_LIMIT });
        }
        Ok(())
    }

    fn sku(&self, sku: SkuId) -> Result<&SkuState, EngineError> {
        self.owns(sku)?;
        self.skus.get(local_index(sku, self.partitions)).and_then(Option::as_ref).ok_or(EngineError::UnknownSku { sku })
    }

    /// A SKU that holds stock of its own (not a kit).
    fn stocked_sku(&self, sku: SkuId, action: &'static str) -> Result<&SkuState, EngineError> {
        let state = self.sku(sku)?;
        if state.kit.is_some() {
            return Err(EngineError::KitNotStocked { sku, action });
        }
        Ok(state)
    }

    fn sku_mut(&mut self, sku: SkuId) -> &mut SkuState {
        let slot = local_index(sku, self.partitions);
        match self.skus.get_mut(slot).and_then(Option::as_mut) {
            Some(state) => state,
            // Handlers look a SKU up (and fail cleanly) before they mutate it.
            None => unreachable!("sku_mut({sku}) before validation"),
        }
    }

    fn warehouse(&self, id: WarehouseId) -> Result<&Warehouse, EngineError> {
        self.warehouses
            .binary_search_by_key(&id, |w| w.id)
            .map(|i| &self.warehouses[i])
            .map_err(|_| EngineError::UnknownWarehouse { warehouse: id })
    }

    /// Refuse a command that would push a cell's on-hand past [`crate::catalog::QUANTITY_LIMIT`]
    /// (call after `stocked_sku`).
    fn room_for(&self, sku: SkuId, warehouse: WarehouseId, qty: u64) -> Result<(), EngineError> {
        let on_hand = self.sku(sku)?.cell(warehouse).map_or(0, |c| c.on_hand);
        let max = crate::catalog::QUANTITY_LIMIT;
        on_hand.checked_add(qty).filter(|q| *q <= max).map(drop).ok_or(EngineError::QuantityOverflow {
            sku,
            warehouse,
            max,
        })
    }

    fn warehouse_priority(&self, id: WarehouseId) -> u16 {
        self.warehouse(id).map_or(u16::MAX, |w| w.priority)
    }

    /// Record a movement in the ledger and as an event.
    fn movement(&mut self, movement: Movement, out: &mut Vec<Event>) {
        if movement.qty == 0 {
            return;
        }
        self.ledger.record(movement);
        out.push(Event::StockMoved(movement));
    }

    fn move_stock(
        &mut self,
        sku: SkuId,
        warehouse: WarehouseId,
        kind: MovementKind,
        qty: u64,
        cause: u64,
        out: &mut Vec<Event>,
    ) {
        self.movement(Movement { sku, warehouse, kind, qty, cause }, out);
    }

    /// Derived signals after a SKU's availability may have changed: low stock and channel stock.
    fn after_sku_change(&mut self, sku: SkuId, out: &mut Vec<Event>) {
        let channels = &self.channels;
        let slot = local_index(sku, self.partitions);
        let Some(Some(state)) = self.skus.get_mut(slot) else {
            return;
        };
        if state.kit.is_some() {
            return;
        }
        let available = state.available();
        if state.low_stock_threshold > 0 {
            let below = available < u64::from(state.low_stock_threshold);
            if below && !state.low {
                out.push(Event::LowStock { sku, available, threshold: state.low_stock_threshold });
            }
            if below != state.low {
                if below {
                    self.low_skus.insert(sku);
                } else {
                    self.low_skus.remove(&sku);
                }
            }
            state.low = below;
        }
        for (i, policy) in channels.iter().enumerate() {
            let qty = crate::channel::sellable(policy, sku, available);
            if state.channel_shown.get(i) != Some(&qty) {
                if let Some(shown) = state.channel_shown.get_mut(i) {
                    *shown = qty;
                }
                out.push(Event::ChannelStock { channel: policy.channel, sku, qty });
            }
        }
    }

    #[cfg(debug_assertions)]
    fn debug_check_touched(&self, command: &Command) {
        let check = |sku: SkuId| {
            if let Ok(state) = self.sku(sku) {
                for (warehouse, cell) in &state.cells {
                    if let Err(what) = cell.check() {
                        panic!("invariant broken for SKU {sku} in warehouse {warehouse}: {what}: {cell:?}");
                    }
                }
            }
        };
        match command {
            Command::Reserve(r) => r.lines.iter().for_each(|l| check(l.sku)),
            Command::SetOnHand { sku, .. }
            | Command::Receive { sku, .. }
            | Command::Adjust { sku, .. }
            | Command::SetBucket { sku, .. }
            | Command::Transfer { sku, .. }
            | Command::ReturnToStock { sku, .. }
            | Command::ReceivePurchaseOrder { sku, .. } => check(*sku),
            Command::Order(crate::orders::OrderCommand::Restock { sku, .. }) => check(*sku),
            _ => {}
        }
    }
}
