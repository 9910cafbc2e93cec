//! The order vocabulary: orders, lines, shipments, waves and after-sales requests, and the status
//! names the CLI and scripts rely on.

use serde::{Deserialize, Serialize};

use crate::event::Allocation;
use crate::ids::{ReservationId, SkuId, TimeMs, WarehouseId};

/// An order id. Chosen outside the engine (see [`super::order_id_for`]) and owned by partition
/// `order % partitions`.
pub type OrderId = u64;
/// `order << 8 | n` with n in 1..=127: a shipment lives in its order's partition.
pub type ShipmentId = u64;
/// `order << 8 | n` with n in 128..=255: an after-sales request lives in its order's partition.
pub type AfterSaleId = u64;
/// A pick wave; owned by partition `wave % partitions`.
pub type WaveId = u64;

/// The last child number of a shipment; after-sales requests use the numbers above it.
pub const SHIPMENT_CHILD_LIMIT: u8 = 127;

/// The order a shipment or after-sales request belongs to.
pub fn parent_order(child: u64) -> OrderId {
    child >> 8
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SalesChannel {
    Taobao,
    Jd,
    Douyin,
    Native,
}

impl SalesChannel {
    pub fn name(self) -> &'static str {
        match self {
            SalesChannel::Taobao => "taobao",
            SalesChannel::Jd => "jd",
            SalesChannel::Douyin => "douyin",
            SalesChannel::Native => "native",
        }
    }

    pub fn parse(name: &str) -> Option<SalesChannel> {
        match name {
            "taobao" | "tmall" => Some(SalesChannel::Taobao),
            "jd" => Some(SalesChannel::Jd),
            "douyin" => Some(SalesChannel::Douyin),
            "native" => Some(SalesChannel::Native),
            _ => None,
        }
    }
}

/// Order status. The happy path is `created -> approved -> allocated -> picking -> packed ->
/// shipped -> delivered -> completed`; `on_hold` sits between created and approved (audit or an
/// operator), `cancelled` is reachable until the first shipment leaves.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    OnHold,
    Approved,
    Allocated,
    Picking,
    Packed,
    Shipped,
    Delivered,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 10] = [
        OrderStatus::Created,
        OrderStatus::OnHold,
        OrderStatus::Approved,
        OrderStatus::Allocated,
        OrderStatus::Picking,
        OrderStatus::Packed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::OnHold => "on_hold",
            OrderStatus::Approved => "approved",
            OrderStatus::Allocated => "allocated",
            OrderStatus::Picking => "picking",
            OrderStatus::Packed => "packed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|s| s.name() == name)
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    Allocated,
    Waved,
    Picked,
    Packed,
    Shipped,
    Delivered,
    Cancelled,
}

impl ShipmentStatus {
    pub fn name(self) -> &'static str {
        match self {
            ShipmentStatus::Allocated => "allocated",
            ShipmentStatus::Waved => "waved",
            ShipmentStatus::Picked => "picked",
            ShipmentStatus::Packed => "packed",
            ShipmentStatus::Shipped => "shipped",
            ShipmentStatus::Delivered => "delivered",
            ShipmentStatus::Cancelled => "cancelled",
        }
    }

    /// The order status a shipment in this state implies.
    pub(crate) fn order_stage(self) -> OrderStatus {
        match self {
            ShipmentStatus::Allocated => OrderStatus::Allocated,
            ShipmentStatus::Waved | ShipmentStatus::Picked => OrderStatus::Picking,
            ShipmentStatus::Packed => OrderStatus::Packed,
            ShipmentStatus::Shipped => OrderStatus::Shipped,
            ShipmentStatus::Delivered | ShipmentStatus::Cancelled => OrderStatus::Delivered,
        }
    }
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Address {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub zip: String,
}

impl Address {
    /// Lower-cased, without whitespace and punctuation: the key for merging and blacklists.
    pub fn normalized(&self) -> String {
        [&self.province, &self.city, &self.district, &self.detail]
            .iter()
            .flat_map(|part| part.chars())
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    }

    /// The fields a carrier needs are present.
    pub fn is_complete(&self) -> bool {
        ![&self.name, &self.phone, &self.province, &self.city, &self.detail].iter().any(|f| f.trim().is_empty())
    }
}

/// One line of an order as imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct NewOrderLine {
    pub sku: SkuId,
    pub sku_code: String,
    pub qty: u32,
    /// Line total before discounts (unit price x qty), in cents.
    pub list_cents: i64,
    /// What the channel says the buyer paid for this line, if it says so.
    pub paid_cents: Option<i64>,
}

/// An order as it enters the engine (after channel intake and SKU-code resolution).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct NewOrder {
    pub id: OrderId,
    pub channel: SalesChannel,
    pub external_id: String,
    pub shop: String,
    pub buyer: String,
    pub address: Address,
    pub remark: String,
    pub cash_on_delivery: bool,
    pub lines: Vec<NewOrderLine>,
    /// Shipping fee paid by the buyer, in cents (not allocated to lines).
    pub shipping_cents: i64,
    /// Total paid by the buyer, shipping included, in cents.
    pub paid_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct OrderLine {
    pub sku: SkuId,
    pub sku_code: String,
    pub qty: u32,
    pub list_cents: i64,
    /// This line's share of the goods payment; the lines sum exactly to `paid - shipping`.
    pub allocated_cents: i64,
    /// Units covered by a reservation.
    pub allocated_qty: u32,
    /// Units asked back by after-sales requests (returns, exchanges, refunds).
    pub claimed_qty: u32,
    pub refunded_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct TrackEvent {
    pub at_ms: TimeMs,
    pub code: String,
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Shipment {
    pub id: ShipmentId,
    pub warehouse: WarehouseId,
    /// The reservation holding its units; several shipments may share one.
    pub reservation: ReservationId,
    /// Stocked SKUs (kits already expanded) and quantities.
    pub items: Vec<Allocation>,
    pub status: ShipmentStatus,
    pub wave: Option<WaveId>,
    pub carrier: Option<String>,
    pub waybill: Option<String>,
    pub weight_g: u32,
    /// Set for the replacement shipment of an exchange.
    pub after_sale: Option<AfterSaleId>,
    pub created_at_ms: TimeMs,
    pub shipped_at_ms: Option<TimeMs>,
    pub delivered_at_ms: Option<TimeMs>,
    pub last_progress_ms: TimeMs,
    pub tracking: Vec<TrackEvent>,
    /// Alerts already raised (bit 0: no progress, bit 1: late), so each is raised once.
    pub alerts: u8,
    /// When the marketplace confirmed the shipment (carrier and waybill sent back); `None` for a
    /// shipment not yet confirmed, and always for native orders (nothing to send back).
    pub channel_confirmed_at_ms: Option<TimeMs>,
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AfterSaleKind {
    Return,
    Exchange,
    Refund,
}

impl AfterSaleKind {
    pub fn parse(name: &str) -> Option<AfterSaleKind> {
        match name {
            "return" => Some(AfterSaleKind::Return),
            "exchange" => Some(AfterSaleKind::Exchange),
            "refund" => Some(AfterSaleKind::Refund),
            _ => None,
        }
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AfterSaleStatus {
    /// Waiting for the goods to come back.
    Requested,
    /// Goods received; an exchange waits for its replacement shipment.
    Received,
    /// Money refunded or replacement shipped: nothing left to do.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AfterSaleLine {
    pub sku: SkuId,
    pub qty: u32,
    /// Refund for these units, from the line's allocated amount.
    pub refund_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AfterSale {
    pub id: AfterSaleId,
    pub kind: AfterSaleKind,
    pub lines: Vec<AfterSaleLine>,
    pub reason: String,
    pub status: AfterSaleStatus,
    pub created_at_ms: TimeMs,
    /// Units received back: sellable ones went to stock, damaged ones to the damaged bucket.
    pub damaged: bool,
    pub replacement: Option<ShipmentId>,
}

impl AfterSale {
    pub fn refund_cents(&self) -> i64 {
        match self.kind {
            AfterSaleKind::Exchange => 0,
            AfterSaleKind::Return | AfterSaleKind::Refund => self.lines.iter().map(|l| l.refund_cents).sum(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub channel: SalesChannel,
    pub external_id: String,
    pub shop: String,
    pub buyer: String,
    pub address: Address,
    pub remark: String,
    pub cash_on_delivery: bool,
    pub lines: Vec<OrderLine>,
    pub shipping_cents: i64,
    pub paid_cents: i64,
    pub status: OrderStatus,
    /// Names of the audit rules (or "manual: reason") that put the order on hold.
    pub holds: Vec<String>,
    pub cancel_reason: Option<String>,
    pub created_at_ms: TimeMs,
    pub updated_at_ms: TimeMs,
    pub shipments: Vec<Shipment>,
    pub after_sales: Vec<AfterSale>,
    /// Waiting in the unfillable queue since; cancelled at `parked_cancel_at_ms` if set.
    pub parked_since_ms: Option<TimeMs>,
    pub parked_cancel_at_ms: Option<TimeMs>,
    /// Merged into another order's shipments (this order is a follower).
    pub merged_into: Option<OrderId>,
    /// Followers whose lines ship with this order.
    pub merged: Vec<OrderId>,
    /// Last child number used (shipments 1..=127, after-sales 128..=255).
    pub next_shipment: u8,
    pub next_after_sale: u8,
    /// Fingerprint of the last channel contents and state seen for this order (import or
    /// revision, [`Revision::fingerprint`]): the same payload seen again changes nothing.
    pub revision: u64,
    /// What the desk must look at: changes the marketplace made that could not be applied,
    /// refund requests, shipments the marketplace would not confirm. Oldest first, at most
    /// [`super::EXCEPTIONS_LIMIT`] (resolved ones are dropped first).
    pub exceptions: Vec<OrderException>,
}

impl Order {
    pub fn goods_cents(&self) -> i64 {
        self.paid_cents - self.shipping_cents
    }

    pub fn discount_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.list_cents).sum::<i64>() - self.goods_cents()
    }

    pub fn unallocated(&self) -> impl Iterator<Item = (SkuId, u32)> + '_ {
        self.lines.iter().filter(|l| l.allocated_qty < l.qty).map(|l| (l.sku, l.qty - l.allocated_qty))
    }

    pub fn fully_allocated(&self) -> bool {
        self.lines.iter().all(|l| l.allocated_qty >= l.qty)
    }

    pub fn shipment(&self, id: ShipmentId) -> Option<&Shipment> {
        self.shipments.iter().find(|s| s.id == id)
    }

    pub fn after_sale(&self, id: AfterSaleId) -> Option<&AfterSale> {
        self.after_sales.iter().find(|a| a.id == id)
    }

    /// Exceptions not resolved yet.
    pub fn open_exceptions(&self) -> impl Iterator<Item = &OrderException> + '_ {
        self.exceptions.iter().filter(|e| e.resolved_at_ms.is_none())
    }

    /// Key for merging: same buyer, shop and normalized address.
    pub fn merge_key(&self) -> (String, String, String) {
        (self.buyer.clone(), self.shop.clone(), self.address.normalized())
    }
}

/// What the marketplace says about an order besides its contents (parsed by the intake adapters
/// from `status` / `orderState` / `order_status` and the lines' refund states).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Paid, waiting for the seller to ship (also: the state is not given, a native order).
    #[default]
    AwaitingShipment,
    /// Not paid yet: nothing to fulfil.
    Unpaid,
    /// The buyer (or the platform) cancelled / closed the trade.
    Cancelled,
    /// A refund (or a cancellation request) is pending on at least one line.
    RefundRequested,
    /// The platform records the order as shipped (or finished).
    Shipped,
}

impl ChannelState {
    pub fn name(self) -> &'static str {
        match self {
            ChannelState::AwaitingShipment => "awaiting_shipment",
            ChannelState::Unpaid => "unpaid",
            ChannelState::Cancelled => "cancelled",
            ChannelState::RefundRequested => "refund_requested",
            ChannelState::Shipped => "shipped",
        }
    }
}

/// An order as the marketplace shows it now, for an order imported before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Revision {
    pub order: NewOrder,
    pub state: ChannelState,
}

impl Revision {
    /// A stable hash of everything the channel said (contents and state): equal fingerprints
    /// mean "seen before, nothing to do". Serialised field by field (no serde, whose output could
    /// change with a dependency), hashed with the engine's FNV-1a. The shop is left out.
    pub fn fingerprint(order: &NewOrder, state: ChannelState) -> u64 {
        let mut bytes: Vec<u8> = Vec::with_capacity(256);
        let mut text = |t: &str| {
            bytes.extend_from_slice(&(t.len() as u64).to_le_bytes());
            bytes.extend_from_slice(t.as_bytes());
        };
        text(order.channel.name());
        text(&order.external_id);
        // Not the shop: a connector files pulled orders under its shop id while a payload file
        // names the platform's seller; neither is something a revision changes.
        text(&order.buyer);
        let a = &order.address;
        for field in [&a.name, &a.phone, &a.province, &a.city, &a.district, &a.detail, &a.zip, &order.remark] {
            text(field);
        }
        text(state.name());
        for line in &order.lines {
            bytes.extend_from_slice(&line.sku.0.to_le_bytes());
            bytes.extend_from_slice(&line.qty.to_le_bytes());
            bytes.extend_from_slice(&line.list_cents.to_le_bytes());
            bytes.extend_from_slice(&line.paid_cents.unwrap_or(-1).to_le_bytes());
        }
        bytes.push(u8::from(order.cash_on_delivery));
        bytes.extend_from_slice(&order.shipping_cents.to_le_bytes());
        bytes.extend_from_slice(&order.paid_cents.to_le_bytes());
        crate::ids::stable_hash(&bytes)
    }
}

/// Why an order is on the desk's exception list.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// The buyer changed the address after the parcel was packed (the label is printed).
    AddressChanged,
    /// Lines or amounts changed after stock was allocated.
    LinesChanged,
    /// Cancelled on the platform after a parcel left.
    CancelledAfterShipment,
    /// A refund or cancellation request is pending on the platform.
    RefundRequested,
    /// The platform did not accept the carrier and waybill of a shipment (yet).
    ShipmentConfirmation,
    /// The platform says shipped, omsd has not shipped it.
    ShippedOnPlatform,
}

impl ExceptionKind {
    pub fn name(self) -> &'static str {
        match self {
            ExceptionKind::AddressChanged => "address_changed",
            ExceptionKind::LinesChanged => "lines_changed",
            ExceptionKind::CancelledAfterShipment => "cancelled_after_shipment",
            ExceptionKind::RefundRequested => "refund_requested",
            ExceptionKind::ShipmentConfirmation => "shipment_confirmation",
            ExceptionKind::ShippedOnPlatform => "shipped_on_platform",
        }
    }

    pub fn parse(name: &str) -> Option<ExceptionKind> {
        [
            ExceptionKind::AddressChanged,
            ExceptionKind::LinesChanged,
            ExceptionKind::CancelledAfterShipment,
            ExceptionKind::RefundRequested,
            ExceptionKind::ShipmentConfirmation,
            ExceptionKind::ShippedOnPlatform,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// One entry of an order's exception list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct OrderException {
    pub kind: ExceptionKind,
    /// For the desk, in words (the changed fields, the platform's error).
    pub detail: String,
    /// The shipment concerned, if one.
    pub shipment: Option<ShipmentId>,
    pub raised_at_ms: TimeMs,
    /// Set when resolved: by the desk, or by the event that settles it (a confirmation).
    pub resolved_at_ms: Option<TimeMs>,
}

/// A bin location "A03-12-2": aisle 3, bay 12, level 2.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Bin {
    pub aisle: u16,
    pub bay: u16,
    pub level: u16,
}

impl Bin {
    /// Parse "A03-12-2" (the letter prefix is optional).
    pub fn parse(text: &str) -> Option<Bin> {
        let mut parts = text.trim().split('-');
        let aisle = parts.next()?.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let bay = parts.next()?;
        let level = parts.next().unwrap_or("0");
        if parts.next().is_some() {
            return None;
        }
        Some(Bin { aisle: aisle.parse().ok()?, bay: bay.parse().ok()?, level: level.parse().ok()? })
    }

    /// Position along an S-shaped walk: aisles in order, odd aisles walked with bays ascending,
    /// even aisles descending; levels ascending within a bay.
    pub fn walk_key(self) -> (u16, u16, u16) {
        let bay = if self.aisle % 2 == 1 { self.bay } else { u16::MAX - self.bay };
        (self.aisle, bay, self.level)
    }

    pub fn label(self) -> String {
        format!("A{:02}-{:02}-{}", self.aisle, self.bay, self.level)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PickItem {
    pub sku: SkuId,
    pub qty: u32,
    pub picked: u32,
    pub bin: Option<Bin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Wave {
    pub id: WaveId,
    pub warehouse: WarehouseId,
    pub carrier: Option<String>,
    pub shipments: Vec<ShipmentId>,
    /// Sorted along the S-shaped walk; SKUs without a bin come last, by id.
    pub pick_list: Vec<PickItem>,
    pub created_at_ms: TimeMs,
    pub picked: bool,
}
