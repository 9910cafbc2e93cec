//! Orders: the lifecycle from channel intake to delivery and after-sales, as a deterministic state
//! machine living inside each partition next to the stock it does not own.
//!
//! Orders are partitioned by order id (`order % partitions`), stock by SKU. The order book
//! therefore never touches stock cells: it records reservation ids and emits *effect* events
//! (`ReleaseStock`, `ShipStock`, `ReturnStock`) that the router turns into ordinary stock commands
//! for the SKU partitions ([`stock_commands`]); allocation goes through the ordinary reservation
//! path and is recorded with `RecordAllocation` ([`desk`] is the in-process coordinator).
//!
//! Module map: `model` (types), `pricing` (cents), `rules` (audit / routing / carrier rules),
//! `intake` (channel payload adapters), `lifecycle` (order state machine), `fulfilment` (waves,
//! packing, shipping, tracking, after-sales), `desk` (coordinator over [`crate::ShardedEngine`]).

pub mod desk;
mod fulfilment;
pub mod index;
pub mod intake;
mod lifecycle;
pub mod model;
pub mod pricing;
pub mod reconcile;
mod revise;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{Command, Line, ReleaseCause};
use crate::event::{Allocation, Event};
use crate::ids::{ReservationId, SkuId, TimeMs, WarehouseId};

pub use model::{
    Address, AfterSale, AfterSaleId, AfterSaleKind, AfterSaleStatus, Bin, ChannelState, ExceptionKind, NewOrder,
    NewOrderLine, Order, OrderException, OrderId, OrderLine, OrderStatus, Revision, SalesChannel, Shipment, ShipmentId,
    ShipmentStatus, Wave, WaveId,
};
pub use rules::{AuditRules, CarrierRules, RoutingRules, RulesFile};

/// Lines per order (the reservation limit).
pub const ORDER_LINES_LIMIT: usize = 64;
/// Bytes of any free-text field (names, addresses, remarks, reasons).
pub const TEXT_LIMIT: usize = 1_024;
/// Tracking events kept per shipment (older ones are dropped).
pub const TRACKING_LIMIT: usize = 256;
/// Shipments in one wave.
pub const WAVE_LIMIT: u32 = 10_000;
/// Orders a buyer-velocity rule remembers per buyer.
pub const RECENT_LIMIT: usize = 1_024;
/// Entries on one order's exception list (resolved ones are dropped first when it is full).
pub const EXCEPTIONS_LIMIT: usize = 64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(tag = "order_op", rename_all = "snake_case")]
// Logged like `Command`: boxing would change the archived layout.
#[allow(clippy::large_enum_variant)]
pub enum OrderCommand {
    /// Replace the audit rules in every partition.
    SetAuditRules(AuditRules),
    SetRoutingRules(RoutingRules),
    SetCarrierRules(CarrierRules),
    /// Weight of a SKU, for carrier choice (every partition).
    SetSkuProfile {
        sku: SkuId,
        weight_g: u32,
    },
    /// Where a SKU lies in a warehouse, for pick lists (every partition).
    SetBinLocation {
        warehouse: WarehouseId,
        sku: SkuId,
        bin: Bin,
    },
    /// Create an order and audit it: it ends `on_hold` (with the rule names) or `approved`.
    /// Importing the same channel order again with the same contents changes nothing; with other
    /// contents it is refused (`OrderConflict`): a changed order is a `Revise`.
    Import(NewOrder),
    /// The marketplace shows an imported order differently now (address, lines, cancellation,
    /// refund request): applied while it still can be, otherwise put on the order's exception
    /// list for the desk; the same revision seen again changes nothing (see `orders::revise`).
    Revise(Box<Revision>),
    /// Put an entry on an order's exception list (e.g. a shipment the marketplace would not
    /// confirm). The same open entry again changes nothing; an open entry of the same kind and
    /// shipment gets the new detail.
    RaiseException {
        order: OrderId,
        kind: ExceptionKind,
        detail: String,
        shipment: Option<ShipmentId>,
    },
    /// The desk dealt with entry `index` of the order's exception list.
    ResolveException {
        order: OrderId,
        index: u32,
    },
    /// The marketplace accepted the carrier and waybill of these shipments of the order (their
    /// open `shipment_confirmation` exceptions are resolved).
    ChannelConfirmed {
        order: OrderId,
        shipments: Vec<ShipmentId>,
    },
    Approve {
        order: OrderId,
    },
    Hold {
        order: OrderId,
        reason: String,
    },
    Reject {
        order: OrderId,
        reason: String,
    },
    /// Cancel before the first shipment leaves; its reservations are released.
    Cancel {
        order: OrderId,
        reason: String,
    },
    /// Stock was reserved (and confirmed) for `lines` of the order; `allocations` say where, one
    /// shipment per warehouse. `after_sale` marks the replacement of an exchange.
    RecordAllocation {
        order: OrderId,
        reservation: ReservationId,
        lines: Vec<Line>,
        allocations: Vec<Allocation>,
        after_sale: Option<AfterSaleId>,
    },
    /// Not enough stock: wait in the unfillable queue (cancelled at `cancel_at_ms` if set).
    Park {
        order: OrderId,
        cancel_at_ms: Option<TimeMs>,
    },
    /// Ship several orders of one buyer, shop and address together; the first one leads.
    Merge {
        orders: Vec<OrderId>,
    },
    /// Undo a merge before allocation.
    Split {
        order: OrderId,
    },
    /// Group allocated shipments of a warehouse into a pick wave.
    CreateWave {
        wave: WaveId,
        warehouse: WarehouseId,
        carrier: Option<String>,
        max_shipments: u32,
        cutoff_ms: Option<TimeMs>,
    },
    /// A picker scanned `qty` units of `sku` for a wave; a SKU not on the list is refused.
    ScanPick {
        wave: WaveId,
        sku: SkuId,
        qty: u32,
    },
    Pack {
        shipment: ShipmentId,
    },
    Ship {
        shipment: ShipmentId,
    },
    Deliver {
        shipment: ShipmentId,
    },
    Track {
        shipment: ShipmentId,
        code: String,
        location: String,
    },
    Complete {
        order: OrderId,
    },
    CreateAfterSale {
        order: OrderId,
        kind: AfterSaleKind,
        lines: Vec<Line>,
        reason: String,
    },
    /// The goods of a return or exchange came back.
    ReceiveReturn {
        after_sale: AfterSaleId,
        damaged: bool,
    },
    /// The stock side of `ReceiveReturn` (from its `ReturnStock` effect), in the partition of
    /// `sku` (a kit line: one per component, `line_sku` naming the kit): `ReturnToStock` that the
    /// partition remembers by (after_sale, line_sku, sku), so repeating it changes nothing.
    Restock {
        after_sale: AfterSaleId,
        line_sku: SkuId,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        damaged: bool,
    },
    // Variants below were added for the order desk (issue 15); new ones go at the end, so the
    // tags of logged records never change.
    /// Release an order an operator put on hold (`Hold`); audit holds are approved or rejected.
    Unhold {
        order: OrderId,
        reason: String,
    },
    /// A supervisor lets a wave's shipments be packed although its pick list was not scanned
    /// complete (a scanner failure, a substitution agreed with the buyer); who and why are kept.
    OverridePick {
        wave: WaveId,
        supervisor: String,
        reason: String,
    },
    /// Volume of a SKU in cubic centimetres, for cartons and carriers (every partition).
    SetSkuVolume {
        sku: SkuId,
        volume_cm3: u32,
    },
}

impl OrderCommand {
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::SetAuditRules(_) => "order_set_audit_rules",
            OrderCommand::SetRoutingRules(_) => "order_set_routing_rules",
            OrderCommand::SetCarrierRules(_) => "order_set_carrier_rules",
            OrderCommand::SetSkuProfile { .. } => "order_set_sku_profile",
            OrderCommand::SetBinLocation { .. } => "order_set_bin_location",
            OrderCommand::Import(_) => "order_import",
            OrderCommand::Revise(_) => "order_revise",
            OrderCommand::RaiseException { .. } => "order_raise_exception",
            OrderCommand::ResolveException { .. } => "order_resolve_exception",
            OrderCommand::ChannelConfirmed { .. } => "order_channel_confirmed",
            OrderCommand::Approve { .. } => "order_approve",
            OrderCommand::Hold { .. } => "order_hold",
            OrderCommand::Reject { .. } => "order_reject",
            OrderCommand::Cancel { .. } => "order_cancel",
            OrderCommand::RecordAllocation { .. } => "order_record_allocation",
            OrderCommand::Park { .. } => "order_park",
            OrderCommand::Merge { .. } => "order_merge",
            OrderCommand::Split { .. } => "order_split",
            OrderCommand::CreateWave { .. } => "wave_create",
            OrderCommand::ScanPick { .. } => "wave_scan",
            OrderCommand::Pack { .. } => "shipment_pack",
            OrderCommand::Ship { .. } => "shipment_ship",
            OrderCommand::Deliver { .. } => "shipment_deliver",
            OrderCommand::Track { .. } => "shipment_track",
            OrderCommand::Complete { .. } => "order_complete",
            OrderCommand::CreateAfterSale { .. } => "aftersale_create",
            OrderCommand::ReceiveReturn { .. } => "aftersale_receive",
            OrderCommand::Restock { .. } => "aftersale_restock",
            OrderCommand::Unhold { .. } => "order_unhold",
            OrderCommand::OverridePick { .. } => "wave_override",
            OrderCommand::SetSkuVolume { .. } => "order_set_sku_volume",
        }
    }

    /// Which partition decides this command (`None`: every partition, identically).
    pub fn partition(&self, partitions: u32) -> Option<u32> {
        self.routing_key().map(|key| owner_of(key, partitions))
    }

    /// The order or wave id whose partition decides this command (`None`: broadcast).
    pub fn routing_key(&self) -> Option<u64> {
        let key = match self {
            OrderCommand::SetAuditRules(_)
            | OrderCommand::SetRoutingRules(_)
            | OrderCommand::SetCarrierRules(_)
            | OrderCommand::SetSkuProfile { .. }
            | OrderCommand::SetSkuVolume { .. }
            | OrderCommand::SetBinLocation { .. } => return None,
            OrderCommand::Import(o) => o.id,
            OrderCommand::Revise(r) => r.order.id,
            OrderCommand::Approve { order }
            | OrderCommand::RaiseException { order, .. }
            | OrderCommand::ResolveException { order, .. }
            | OrderCommand::ChannelConfirmed { order, .. }
            | OrderCommand::Hold { order, .. }
            | OrderCommand::Unhold { order, .. }
            | OrderCommand::Reject { order, .. }
            | OrderCommand::Cancel { order, .. }
            | OrderCommand::RecordAllocation { order, .. }
            | OrderCommand::Park { order, .. }
            | OrderCommand::Split { order }
            | OrderCommand::Complete { order }
            | OrderCommand::CreateAfterSale { order, .. } => *order,
            OrderCommand::Merge { orders } => orders.first().copied().unwrap_or(0),
            OrderCommand::CreateWave { wave, .. }
            | OrderCommand::ScanPick { wave, .. }
            | OrderCommand::OverridePick { wave, .. } => *wave,
            OrderCommand::Pack { shipment }
            | OrderCommand::Ship { shipment }
            | OrderCommand::Deliver { shipment }
            | OrderCommand::Track { shipment, .. } => model::parent_order(*shipment),
            OrderCommand::ReceiveReturn { after_sale, .. } => model::parent_order(*after_sale),
            // Stock is partitioned by SKU id with the same modulus (`ids::partition_of`).
            OrderCommand::Restock { sku, .. } => u64::from(sku.0),
        };
        Some(key)
    }
}

/// The tag an order's allocation reservation carries (in `ReserveRequest::fingerprint`): a hash
/// of the order id and the reservation's sequence. It marks the reservation as the order's (start-up reconciliation
/// releases an allocation hold whose `RecordAllocation` was lost by a crash, and must never take
/// a storefront reservation whose customer id merely equals an order id), and being unique per
/// reservation it never makes one allocation replay another.
pub fn allocation_key(order: u64, reservation: ReservationId) -> u64 {
    let mut bytes = [0u8; 30];
    bytes[..14].copy_from_slice(b"oms-allocation");
    bytes[14..22].copy_from_slice(&order.to_le_bytes());
    bytes[22..].copy_from_slice(&crate::routing::reservation_sequence(reservation).to_le_bytes());
    crate::ids::stable_hash(&bytes)
}

/// The partition that owns an order (or wave) id.
pub fn owner_of(id: u64, partitions: u32) -> u32 {
    (id % u64::from(partitions.max(1))) as u32
}

/// The order id of a channel order: a stable hash of (channel, channel order id), 47 bits so that
/// shipment and after-sales ids (`order << 8 | n`) fit in 64 bits. Re-importing the same channel
/// order therefore reaches the same partition and the same order.
pub fn order_id_for(channel: SalesChannel, external_id: &str) -> OrderId {
    let mut key = Vec::with_capacity(external_id.len() + 8);
    key.extend_from_slice(channel.name().as_bytes());
    key.push(0);
    key.extend_from_slice(external_id.as_bytes());
    (crate::ids::stable_hash(&key) & ((1 << 47) - 1)).max(1)
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Shipped, and no tracking progress for `no_progress_ms`.
    NoProgress,
    /// Not delivered within `delivery_sla_ms` of shipping (raised once, at the deadline or at a
    /// late delivery).
    Late,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(tag = "order_event", rename_all = "snake_case")]
pub enum OrderEvent {
    RulesSet {
        what: String,
    },
    Imported {
        order: OrderId,
        channel: SalesChannel,
        external_id: String,
        at_ms: TimeMs,
    },
    StatusChanged {
        order: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        at_ms: TimeMs,
    },
    Held {
        order: OrderId,
        rules: Vec<String>,
        at_ms: TimeMs,
    },
    Parked {
        order: OrderId,
        cancel_at_ms: Option<TimeMs>,
        at_ms: TimeMs,
    },
    Merged {
        primary: OrderId,
        followers: Vec<OrderId>,
        at_ms: TimeMs,
    },
    Split {
        primary: OrderId,
        followers: Vec<OrderId>,
        at_ms: TimeMs,
    },
    ShipmentCreated {
        order: OrderId,
        shipment: ShipmentId,
        warehouse: WarehouseId,
        reservation: ReservationId,
        carrier: Option<String>,
        at_ms: TimeMs,
    },
    ShipmentStatusChanged {
        shipment: ShipmentId,
        from: ShipmentStatus,
        to: ShipmentStatus,
        at_ms: TimeMs,
    },
    WaybillIssued {
        shipment: ShipmentId,
        carrier: String,
        waybill: String,
    },
    WaveCreated {
        wave: WaveId,
        warehouse: WarehouseId,
        shipments: Vec<ShipmentId>,
        at_ms: TimeMs,
    },
    Picked {
        wave: WaveId,
        sku: SkuId,
        qty: u32,
        at_ms: TimeMs,
    },
    Tracked {
        shipment: ShipmentId,
        code: String,
        at_ms: TimeMs,
    },
    Alert {
        shipment: ShipmentId,
        kind: AlertKind,
        at_ms: TimeMs,
    },
    AfterSaleCreated {
        order: OrderId,
        after_sale: AfterSaleId,
        kind: AfterSaleKind,
        refund_cents: i64,
        at_ms: TimeMs,
    },
    AfterSaleReceived {
        after_sale: AfterSaleId,
        damaged: bool,
        at_ms: TimeMs,
    },
    Refunded {
        order: OrderId,
        after_sale: AfterSaleId,
        cents: i64,
        at_ms: TimeMs,
    },
    /// A marketplace revision changed the order (`changes`: "address", "lines", "remark").
    Revised {
        order: OrderId,
        changes: Vec<String>,
        at_ms: TimeMs,
    },
    /// An entry was put on the order's exception list (or its detail changed).
    ExceptionRaised {
        order: OrderId,
        kind: ExceptionKind,
        detail: String,
        shipment: Option<ShipmentId>,
        at_ms: TimeMs,
    },
    ExceptionResolved {
        order: OrderId,
        kind: ExceptionKind,
        shipment: Option<ShipmentId>,
        at_ms: TimeMs,
    },
    /// The marketplace accepted this shipment's carrier and waybill.
    ChannelConfirmed {
        order: OrderId,
        shipment: ShipmentId,
        at_ms: TimeMs,
    },
    /// Effect: release this reservation in the stock partitions (the order was cancelled).
    ReleaseStock {
        order: OrderId,
        reservation: ReservationId,
    },
    /// Effect: every shipment of this reservation left; ship it in the stock partitions.
    ShipStock {
        order: OrderId,
        reservation: ReservationId,
    },
    /// Effect: units came back; `Restock` in the SKU's partition (kits: their components).
    ReturnStock {
        order: OrderId,
        after_sale: AfterSaleId,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        damaged: bool,
    },
    /// Effect: an exchange needs its replacement allocated (the coordinator reserves it and
    /// answers with `RecordAllocation { after_sale: Some(..) }`).
    ReplacementNeeded {
        order: OrderId,
        after_sale: AfterSaleId,
        lines: Vec<Line>,
    },
    /// An operator released a manual hold.
    Unheld {
        order: OrderId,
        reason: String,
        at_ms: TimeMs,
    },
    /// A wave was released for packing without a complete scan.
    PickOverridden {
        wave: WaveId,
        supervisor: String,
        reason: String,
        /// Units on the pick list that were not scanned.
        unscanned: u32,
        at_ms: TimeMs,
    },
}

/// A shipment the marketplace still has to be told about: shipped (or delivered), of a
/// marketplace order, not an exchange's replacement (the platforms take those through their
/// after-sales flows), not confirmed.
pub(crate) fn awaits_channel_confirmation(channel: SalesChannel, shipment: &Shipment) -> bool {
    channel != SalesChannel::Native
        && shipment.after_sale.is_none()
        && matches!(shipment.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered)
        && shipment.channel_confirmed_at_ms.is_none()
}

/// The stock commands that carry out the effect events of an order command, in order. Kit SKUs in
/// `ReturnStock` are expanded with `kit_of` (the caller knows the kits).
pub fn stock_commands<'a>(
    events: &[Event],
    mut kit_of: impl FnMut(SkuId) -> Option<&'a [crate::command::KitComponent]>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    for event in events {
        let Event::Order(event) = event else { continue };
        match event {
            OrderEvent::ReleaseStock { reservation, .. } => {
                commands.push(Command::Release { id: *reservation, cause: ReleaseCause::Cancel })
            }
            OrderEvent::ShipStock { reservation, .. } => commands.push(Command::Ship { id: *reservation }),
            OrderEvent::ReturnStock { after_sale, sku, warehouse, qty, damaged, .. } => {
                commands.extend(restock_commands(*after_sale, *sku, *warehouse, *qty, *damaged, kit_of(*sku)))
            }
            _ => {}
        }
    }
    commands
}

/// The `Restock` commands of one returned line (one per component for a kit).
pub fn restock_commands(
    after_sale: AfterSaleId,
    line_sku: SkuId,
    warehouse: WarehouseId,
    qty: u32,
    damaged: bool,
    kit: Option<&[crate::command::KitComponent]>,
) -> Vec<Command> {
    let restock = |sku: SkuId, qty: u32| {
        Command::Order(OrderCommand::Restock { after_sale, line_sku, sku, warehouse, qty, damaged })
    };
    match kit {
        // Kit sizes are validated (64 lines) and line quantities are u32: saturate rather than wrap.
        Some(components) => components.iter().map(|c| restock(c.sku, c.qty.saturating_mul(qty))).collect(),
        None => vec![restock(line_sku, qty)],
    }
}

/// All order state of one partition.
#[derive(Clone, Debug, Default)]
pub struct OrderBook {
    /// Hashed for speed; every reader that depends on order sorts (the image sorts by id). Boxed:
    /// an order is several hundred bytes, and growing the table moved every one of them (a
    /// quarter of the lifecycle bench's time); now it moves pointers.
    orders: rustc_hash::FxHashMap<OrderId, Box<Order>>,
    waves: BTreeMap<WaveId, Wave>,
    audit: AuditRules,
    routing: RoutingRules,
    carriers: CarrierRules,
    /// Next waybill number per carrier code.
    waybill_next: BTreeMap<String, u64>,
    weights: BTreeMap<SkuId, u32>,
    /// Cubic centimetres per unit (`SetSkuVolume`).
    volumes: BTreeMap<SkuId, u32>,
    bins: BTreeMap<(WarehouseId, SkuId), Bin>,
    /// Waves released for packing without a complete scan, with who and why.
    overrides: BTreeMap<WaveId, PickOverride>,
    /// Recent order times per buyer, for velocity rules (pruned to the longest window).
    recent: BTreeMap<String, Vec<TimeMs>>,
    /// Returned lines this partition put back to stock: (after-sales id, line SKU, SKU).
    restocked: BTreeSet<(AfterSaleId, SkuId, SkuId)>,
    // Derived indexes, rebuilt from the image (never part of it).
    /// Allocated shipments not yet in a wave, by warehouse.
    ready: BTreeSet<(WarehouseId, ShipmentId)>,
    /// Parked orders with a cancel deadline.
    deadlines: BTreeSet<(TimeMs, OrderId)>,
    /// Shipped parcels to check for alerts: (due, shipment, alert kind bit).
    watch: BTreeSet<(TimeMs, ShipmentId, u8)>,
    /// Lists and dashboard counters ([`index`]).
    index: index::OrderIndex,
    /// Shipped parcels of marketplace orders the marketplace has not confirmed yet.
    unconfirmed: BTreeSet<ShipmentId>,
}

/// A supervisor's release of a wave that was not scanned complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PickOverride {
    pub supervisor: String,
    pub reason: String,
    pub unscanned: u32,
    pub at_ms: TimeMs,
}

/// Order-book state added for the desk (issue 15), imaged apart from [`OrderBookImage`] so the
/// layout of images written before it is unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct DeskBookImage {
    pub volumes: Vec<(SkuId, u32)>,
    pub overrides: Vec<(WaveId, PickOverride)>,
}

/// The order book flattened into sorted vectors, inside the partition image.
#[derive(Clone, Debug, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct OrderBookImage {
    pub orders: Vec<Order>,
    pub waves: Vec<Wave>,
    pub audit: AuditRules,
    pub routing: RoutingRules,
    pub carriers: CarrierRules,
    pub waybill_next: Vec<(String, u64)>,
    pub weights: Vec<(SkuId, u32)>,
    pub bins: Vec<(WarehouseId, SkuId, Bin)>,
    pub recent: Vec<(String, Vec<TimeMs>)>,
    pub restocked: Vec<(AfterSaleId, SkuId, SkuId)>,
}

impl OrderBook {
    pub fn image(&self) -> OrderBookImage {
        OrderBookImage {
            orders: {
                let mut orders: Vec<Order> = self.orders.values().map(|o| Order::clone(o)).collect();
                orders.sort_unstable_by_key(|o| o.id);
                orders
            },
            waves: self.waves.values().cloned().collect(),
            audit: self.audit.clone(),
            routing: self.routing.clone(),
            carriers: self.carriers.clone(),
            waybill_next: self.waybill_next.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            weights: self.weights.iter().map(|(k, v)| (*k, *v)).collect(),
            bins: self.bins.iter().map(|((w, s), b)| (*w, *s, *b)).collect(),
            recent: self.recent.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            restocked: self.restocked.iter().copied().collect(),
        }
    }

    pub fn desk_image(&self) -> DeskBookImage {
        DeskBookImage {
            volumes: self.volumes.iter().map(|(k, v)| (*k, *v)).collect(),
            overrides: self.overrides.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }

    pub fn from_image(image: OrderBookImage, desk: DeskBookImage) -> OrderBook {
        let mut book = OrderBook {
            volumes: desk.volumes.into_iter().collect(),
            overrides: desk.overrides.into_iter().collect(),
            orders: image.orders.into_iter().map(|o| (o.id, Box::new(o))).collect(),
            waves: image.waves.into_iter().map(|w| (w.id, w)).collect(),
            audit: image.audit,
            routing: image.routing,
            carriers: image.carriers,
            waybill_next: image.waybill_next.into_iter().collect(),
            weights: image.weights.into_iter().collect(),
            bins: image.bins.into_iter().map(|(w, s, b)| ((w, s), b)).collect(),
            recent: image.recent.into_iter().collect(),
            restocked: image.restocked.into_iter().collect(),
            ..OrderBook::default()
        };
        book.rebuild_indexes();
        book
    }

    fn rebuild_indexes(&mut self) {
        self.index = index::OrderIndex::rebuild(self.orders.values().map(|o| &**o));
        self.ready.clear();
        self.deadlines.clear();
        self.watch.clear();
        self.unconfirmed.clear();
        let mut watch = Vec::new();
        for order in self.orders.values() {
            for s in &order.shipments {
                if awaits_channel_confirmation(order.channel, s) {
                    self.unconfirmed.insert(s.id);
                }
            }
            if let (Some(_), Some(at)) = (order.parked_since_ms, order.parked_cancel_at_ms) {
                self.deadlines.insert((at, order.id));
            }
            for s in &order.shipments {
                if s.status == ShipmentStatus::Allocated {
                    self.ready.insert((s.warehouse, s.id));
                }
                if s.status == ShipmentStatus::Shipped {
                    watch.push(s.clone());
                }
            }
        }
        for s in watch {
            self.watch_shipment(&s);
        }
    }

    /// Add the alert deadlines of a shipped parcel under the current rules.
    fn watch_shipment(&mut self, s: &Shipment) {
        self.watch_parts(s.id, s.last_progress_ms, s.shipped_at_ms, s.alerts);
    }

    /// `watch_shipment` from the fields it reads (so callers need not clone a shipment).
    fn watch_parts(&mut self, id: ShipmentId, last_progress_ms: TimeMs, shipped_at_ms: Option<TimeMs>, alerts: u8) {
        if self.carriers.no_progress_ms > 0 && alerts & 1 == 0 {
            self.watch.insert((last_progress_ms.saturating_add(self.carriers.no_progress_ms), id, 1));
        }
        if let (true, Some(shipped)) = (self.carriers.delivery_sla_ms > 0 && alerts & 2 == 0, shipped_at_ms) {
            self.watch.insert((shipped.saturating_add(self.carriers.delivery_sla_ms), id, 2));
        }
    }

    /// Remove the deadlines `watch_shipment` added (call before changing the shipment).
    fn unwatch_shipment(&mut self, s: &Shipment) {
        self.watch.remove(&(s.last_progress_ms.saturating_add(self.carriers.no_progress_ms), s.id, 1));
        if let Some(shipped) = s.shipped_at_ms {
            self.watch.remove(&(shipped.saturating_add(self.carriers.delivery_sla_ms), s.id, 2));
        }
    }

    // ----- read side -----

    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id).map(|o| &**o)
    }

    /// Every order, in no particular order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> + '_ {
        self.orders.values().map(|o| &**o)
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn wave(&self, id: WaveId) -> Option<&Wave> {
        self.waves.get(&id)
    }

    pub fn waves(&self) -> impl Iterator<Item = &Wave> + '_ {
        self.waves.values()
    }

    pub fn shipment(&self, id: ShipmentId) -> Option<(&Order, &Shipment)> {
        let order: &Order = self.orders.get(&model::parent_order(id))?;
        order.shipment(id).map(|s| (order, s))
    }

    pub fn audit_rules(&self) -> &AuditRules {
        &self.audit
    }

    pub fn routing_rules(&self) -> &RoutingRules {
        &self.routing
    }

    pub fn carrier_rules(&self) -> &CarrierRules {
        &self.carriers
    }

    /// Whether this (stock) partition already put a returned line back (`Restock`).
    pub fn restocked(&self, after_sale: AfterSaleId, line_sku: SkuId, sku: SkuId) -> bool {
        self.restocked.contains(&(after_sale, line_sku, sku))
    }

    pub fn bin(&self, warehouse: WarehouseId, sku: SkuId) -> Option<Bin> {
        self.bins.get(&(warehouse, sku)).copied()
    }

    /// Every bin location: (warehouse, SKU, bin).
    pub fn bins(&self) -> impl Iterator<Item = (WarehouseId, SkuId, Bin)> + '_ {
        self.bins.iter().map(|((w, s), b)| (*w, *s, *b))
    }

    pub fn weight_g(&self, sku: SkuId) -> Option<u32> {
        self.weights.get(&sku).copied()
    }

    pub fn volume_cm3(&self, sku: SkuId) -> Option<u32> {
        self.volumes.get(&sku).copied()
    }

    /// The supervisor's release of a wave, if it was released without a complete scan.
    pub fn pick_override(&self, wave: WaveId) -> Option<&PickOverride> {
        self.overrides.get(&wave)
    }

    /// Lists and dashboard counters.
    pub fn index(&self) -> &index::OrderIndex {
        &self.index
    }

    /// Bring the indexes up to date for the orders a successful command touched: the orders and
    /// shipments its events name, and the order it was routed by.
    pub(crate) fn refresh_touched(&mut self, command: Option<&OrderCommand>, events: &[Event]) {
        let mut touched: Vec<OrderId> = Vec::new();
        if let Some(command) = command {
            let by_order = !matches!(
                command,
                OrderCommand::CreateWave { .. }
                    | OrderCommand::ScanPick { .. }
                    | OrderCommand::OverridePick { .. }
                    | OrderCommand::Restock { .. }
            );
            if let Some(key) = command.routing_key().filter(|_| by_order) {
                touched.push(key);
            }
        }
        if let Some(OrderCommand::Merge { orders }) = command {
            touched.extend_from_slice(orders);
        }
        for event in events {
            let Event::Order(e) = event else { continue };
            match e {
                OrderEvent::Imported { order, .. }
                | OrderEvent::StatusChanged { order, .. }
                | OrderEvent::Held { order, .. }
                | OrderEvent::Parked { order, .. }
                | OrderEvent::ShipmentCreated { order, .. }
                | OrderEvent::AfterSaleCreated { order, .. }
                | OrderEvent::Refunded { order, .. }
                | OrderEvent::Unheld { order, .. } => touched.push(*order),
                OrderEvent::Merged { primary, followers, .. } | OrderEvent::Split { primary, followers, .. } => {
                    touched.push(*primary);
                    touched.extend_from_slice(followers);
                }
                OrderEvent::ShipmentStatusChanged { shipment, .. }
                | OrderEvent::WaybillIssued { shipment, .. }
                | OrderEvent::Tracked { shipment, .. }
                | OrderEvent::Alert { shipment, .. } => touched.push(model::parent_order(*shipment)),
                _ => {}
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for id in touched {
            if let Some(order) = self.orders.get(&id) {
                self.index.refresh(order);
            }
        }
    }

    /// Shipped parcels of marketplace orders that the marketplace has not confirmed, by id (at
    /// most `limit`, from `after` on), with `channel` if given.
    pub fn unconfirmed(&self, channel: Option<SalesChannel>, after: ShipmentId, limit: usize) -> Vec<ShipmentId> {
        self.unconfirmed
            .range(after..)
            .copied()
            .filter(|s| {
                channel.is_none_or(|c| self.orders.get(&model::parent_order(*s)).is_some_and(|o| o.channel == c))
            })
            .take(limit)
            .collect()
    }

    /// Orders with an open exception, oldest exception first (at most `limit`).
    pub fn with_open_exceptions(&self, limit: usize) -> Vec<OrderId> {
        let mut list: Vec<(TimeMs, OrderId)> = self
            .orders
            .values()
            .filter_map(|o| o.open_exceptions().map(|e| e.raised_at_ms).min().map(|at| (at, o.id)))
            .collect();
        list.sort_unstable();
        list.into_iter().take(limit).map(|(_, id)| id).collect()
    }

    /// Orders waiting in the unfillable queue, oldest first.
    pub fn parked(&self) -> Vec<OrderId> {
        let mut parked: Vec<(TimeMs, OrderId)> =
            self.orders.values().filter_map(|o| o.parked_since_ms.map(|t| (t, o.id))).collect();
        parked.sort_unstable();
        parked.into_iter().map(|(_, id)| id).collect()
    }

    /// Approved orders with no allocation yet, oldest first (what an allocation run picks up).
    pub fn awaiting_allocation(&self) -> Vec<OrderId> {
        let mut list: Vec<(TimeMs, OrderId)> = self
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::Approved && o.merged_into.is_none() && o.parked_since_ms.is_none())
            .map(|o| (o.created_at_ms, o.id))
            .collect();
        list.sort_unstable();
        list.into_iter().map(|(_, id)| id).collect()
    }
}

impl crate::partition::Partition {
    /// Apply an order command to this partition's order book (called by `Partition::apply`).
    pub(crate) fn apply_order(
        &mut self,
        now: TimeMs,
        command: &OrderCommand,
        out: &mut Vec<Event>,
    ) -> Result<crate::partition::Outcome, crate::error::EngineError> {
        if let OrderCommand::Restock { after_sale, line_sku, sku, warehouse, qty, damaged } = *command {
            return self.restock(after_sale, line_sku, sku, warehouse, qty, damaged, out);
        }
        let ctx = lifecycle::Ctx { now, index: self.index(), partitions: self.partitions() };
        let mark = out.len();
        let outcome = self.orders.apply(ctx, command, out)?;
        self.orders.refresh_touched(Some(command), &out[mark..]);
        Ok(outcome)
    }

    /// `ReturnToStock` once per returned line: a repeat (a retry, or reconciliation after a crash
    /// that hid whether the first one landed) changes nothing.
    #[allow(clippy::too_many_arguments)]
    fn restock(
        &mut self,
        after_sale: AfterSaleId,
        line_sku: SkuId,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        damaged: bool,
        out: &mut Vec<Event>,
    ) -> Result<crate::partition::Outcome, crate::error::EngineError> {
        if self.orders.restocked(after_sale, line_sku, sku) {
            return Ok(crate::partition::Outcome::Unchanged);
        }
        let outcome = self.return_to_stock(sku, warehouse, qty, damaged, out)?;
        self.orders.restocked.insert((after_sale, line_sku, sku));
        Ok(outcome)
    }

    /// The orders (and waves, and order rules) this partition owns.
    pub fn orders(&self) -> &OrderBook {
        &self.orders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_stable_and_leave_room_for_children() {
        // The same channel order maps to the same id; ids fit in 47 bits and differ by channel.
        let a = order_id_for(SalesChannel::Taobao, "2865530871004518");
        assert_eq!(a, order_id_for(SalesChannel::Taobao, "2865530871004518"));
        assert_ne!(a, order_id_for(SalesChannel::Jd, "2865530871004518"));
        assert!(a < 1 << 47 && a > 0);
    }

    #[test]
    fn bins_sort_along_an_s_shaped_walk() {
        // Odd aisles are walked with bays ascending, even aisles descending.
        let mut bins: Vec<Bin> = ["A02-01-1", "A01-09-1", "A02-07-1", "A01-02-3", "A03-01-1"]
            .iter()
            .map(|t| Bin::parse(t).unwrap())
            .collect();
        bins.sort_by_key(|b| b.walk_key());
        let labels: Vec<String> = bins.iter().map(|b| b.label()).collect();
        assert_eq!(labels, vec!["A01-02-3", "A01-09-1", "A02-07-1", "A02-01-1", "A03-01-1"]);
        assert_eq!(Bin::parse("A03-12-2"), Some(Bin { aisle: 3, bay: 12, level: 2 }));
        assert_eq!(Bin::parse("junk"), None);
    }
}
