//! Derived indexes of the order book for the desk's reads: order lists with filters and keyset
//! paging, shipment lists (tracking alerts), and the dashboard's counters. Rebuilt from the image
//! and kept current after every order command; never part of the image.
//!
//! Every index entry is `(dimension, created_at_ms, id)`: a dimension is one value of one filter
//! ("status on_hold", "SKU 7", "buyer alice"), so each filter is a range of one ordered set and a
//! page newest first is a reverse walk from the cursor. An order's entries follow its status,
//! parked flag and holds; the book tells the index which orders (and shipments) a command touched
//! ([`OrderIndex::refresh`]), and the index compares what it filed them under with what they are.
//!
//! The dashboard needs counts, not rows: per-status counts, holds by rule, parked orders, open
//! tracking alerts, and orders / paid amounts per quarter hour and channel (by creation time), all
//! updated by the same refresh, so a dashboard read costs the same with 10 or 10 million orders.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use super::model::{Order, OrderId, OrderStatus, SalesChannel, Shipment, ShipmentId, ShipmentStatus};
use crate::ids::{SkuId, TimeMs, WarehouseId};

/// A filter value: `kind << 56 | value` (values are masked to 56 bits; hashes may collide, and
/// readers recheck the order itself).
type Dim = u64;

const VALUE_MASK: u64 = (1 << 56) - 1;

/// Dimension kinds of the order index.
mod kind {
    pub const ALL: u64 = 0;
    pub const STATUS: u64 = 1;
    pub const PARKED: u64 = 2;
    pub const CHANNEL: u64 = 3;
    pub const BUYER: u64 = 4;
    pub const SKU: u64 = 5;
    pub const HOLD: u64 = 6;
    // Shipment index kinds.
    pub const SHIPMENT_STATUS: u64 = 16;
    pub const WAREHOUSE: u64 = 17;
    pub const ALERT: u64 = 18;
}

fn dim(kind: u64, value: u64) -> Dim {
    (kind << 56) | (value & VALUE_MASK)
}

/// Quarter hours: time zones with half- and quarter-hour offsets still get whole local hours.
pub const BUCKET_MS: u64 = 15 * 60_000;

/// Stable FNV-1a hash of a text filter value (the engine must not depend on a hasher's seed).
pub fn text_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The rule part of a hold entry: audit holds are the rule's name; operator holds are
/// `"manual: <reason>"` and file under `"manual"`.
pub fn hold_rule(hold: &str) -> &str {
    hold.split_once(':').map_or(hold, |(rule, _)| rule).trim()
}

pub fn channel_index(channel: SalesChannel) -> usize {
    match channel {
        SalesChannel::Taobao => 0,
        SalesChannel::Jd => 1,
        SalesChannel::Douyin => 2,
        SalesChannel::Native => 3,
    }
}

pub const CHANNELS: [SalesChannel; 4] =
    [SalesChannel::Taobao, SalesChannel::Jd, SalesChannel::Douyin, SalesChannel::Native];

fn status_index(status: OrderStatus) -> usize {
    OrderStatus::ALL.iter().position(|s| *s == status).unwrap_or(0)
}

pub const SHIPMENT_STATUSES: [ShipmentStatus; 7] = [
    ShipmentStatus::Allocated,
    ShipmentStatus::Waved,
    ShipmentStatus::Picked,
    ShipmentStatus::Packed,
    ShipmentStatus::Shipped,
    ShipmentStatus::Delivered,
    ShipmentStatus::Cancelled,
];

fn shipment_status_index(status: ShipmentStatus) -> usize {
    SHIPMENT_STATUSES.iter().position(|s| *s == status).unwrap_or(0)
}

/// Orders and paid cents created in one quarter hour, per channel (index [`channel_index`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub orders: [u64; 4],
    pub paid_cents: [i64; 4],
    pub cancelled: [u64; 4],
    pub cancelled_cents: [i64; 4],
}

/// What an order is filed under now (so a refresh knows which entries to move).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Filed {
    status: OrderStatus,
    parked: bool,
    /// Hold rules filed while on hold.
    holds: Vec<String>,
    /// The SKUs of its lines, sorted, and what was paid: a marketplace revision
    /// (`OrderCommand::Revise`) may change both while the order is not allocated.
    skus: Vec<SkuId>,
    paid_cents: i64,
}

impl Filed {
    fn of(order: &Order) -> Filed {
        let mut holds: Vec<String> = if order.status == OrderStatus::OnHold {
            order.holds.iter().map(|h| hold_rule(h).to_owned()).collect()
        } else {
            Vec::new()
        };
        holds.sort_unstable();
        holds.dedup();
        Filed {
            status: order.status,
            parked: order.parked_since_ms.is_some(),
            holds,
            skus: line_skus(order),
            paid_cents: order.paid_cents,
        }
    }
}

/// The SKUs of an order's lines, sorted, each once.
fn line_skus(order: &Order) -> Vec<SkuId> {
    let mut skus: Vec<SkuId> = order.lines.iter().map(|l| l.sku).collect();
    skus.sort_unstable();
    skus.dedup();
    skus
}

/// What a shipment is filed under now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FiledShipment {
    status: ShipmentStatus,
    alerts: u8,
}

/// The dashboard's counters of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub orders: u64,
    /// Per [`OrderStatus::ALL`] position.
    pub status: [u64; 10],
    pub parked: u64,
    /// Orders on hold per hold rule (operator holds under "manual").
    pub holds: BTreeMap<String, u64>,
    /// Shipped parcels with an open alert: [no progress, late].
    pub alerts_open: [u64; 2],
    /// Per [`SHIPMENT_STATUSES`] position.
    pub shipments: [u64; 7],
    /// By quarter hour of creation (`created_at_ms / BUCKET_MS`).
    pub buckets: BTreeMap<u64, Bucket>,
}

#[derive(Clone, Debug, Default)]
pub struct OrderIndex {
    orders: BTreeSet<(Dim, TimeMs, OrderId)>,
    shipments: BTreeSet<(Dim, TimeMs, ShipmentId)>,
    filed: FxHashMap<OrderId, Filed>,
    filed_shipments: FxHashMap<ShipmentId, FiledShipment>,
    counters: Counters,
}

/// Whether a shipment counts as an open alert of kind bit `bit` (1 no progress, 2 late).
fn alert_open(s: FiledShipment, bit: u8) -> bool {
    s.status == ShipmentStatus::Shipped && s.alerts & bit != 0
}

impl OrderIndex {
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Index every order of a book (after loading an image).
    pub(crate) fn rebuild<'a>(orders: impl Iterator<Item = &'a Order>) -> OrderIndex {
        let mut index = OrderIndex::default();
        for order in orders {
            index.add(order);
        }
        index
    }

    /// File a new order (import, or a rebuild) and its shipments.
    pub(crate) fn add(&mut self, order: &Order) {
        debug_assert!(!self.filed.contains_key(&order.id), "order {} filed twice", order.id);
        let (t, id) = (order.created_at_ms, order.id);
        self.orders.insert((dim(kind::ALL, 0), t, id));
        self.orders.insert((dim(kind::CHANNEL, channel_index(order.channel) as u64), t, id));
        if !order.buyer.is_empty() {
            self.orders.insert((dim(kind::BUYER, text_hash(&order.buyer)), t, id));
        }
        for line in &order.lines {
            self.orders.insert((dim(kind::SKU, u64::from(line.sku.0)), t, id));
        }
        self.counters.orders += 1;
        let bucket = self.counters.buckets.entry(t / BUCKET_MS).or_default();
        let c = channel_index(order.channel);
        bucket.orders[c] += 1;
        bucket.paid_cents[c] += order.paid_cents;
        let filed = Filed {
            status: OrderStatus::Created,
            parked: false,
            holds: Vec::new(),
            skus: line_skus(order),
            paid_cents: order.paid_cents,
        };
        self.file_mutable(order, &filed, true);
        for s in &order.shipments {
            self.refresh_shipment(s);
        }
    }

    /// Move an order's mutable entries (status, parked, holds) from what it was filed under to
    /// what it is now, and keep the counters in step.
    fn file_mutable(&mut self, order: &Order, before: &Filed, new: bool) {
        let now = Filed::of(order);
        if !new && now == *before {
            return;
        }
        let (t, id) = (order.created_at_ms, order.id);
        let c = channel_index(order.channel);
        if !new && now.skus != before.skus {
            for sku in before.skus.iter().filter(|s| !now.skus.contains(s)) {
                self.orders.remove(&(dim(kind::SKU, u64::from(sku.0)), t, id));
            }
            for sku in now.skus.iter().filter(|s| !before.skus.contains(s)) {
                self.orders.insert((dim(kind::SKU, u64::from(sku.0)), t, id));
            }
        }
        if !new && now.paid_cents != before.paid_cents {
            let bucket = self.counters.buckets.entry(t / BUCKET_MS).or_default();
            bucket.paid_cents[c] += now.paid_cents - before.paid_cents;
            if now.status == OrderStatus::Cancelled && before.status == OrderStatus::Cancelled {
                bucket.cancelled_cents[c] += now.paid_cents - before.paid_cents;
            }
        }
        if new || now.status != before.status {
            if !new {
                self.orders.remove(&(dim(kind::STATUS, status_index(before.status) as u64), t, id));
                self.counters.status[status_index(before.status)] -= 1;
            }
            self.orders.insert((dim(kind::STATUS, status_index(now.status) as u64), t, id));
            self.counters.status[status_index(now.status)] += 1;
            let cancelled = now.status == OrderStatus::Cancelled;
            let was_cancelled = !new && before.status == OrderStatus::Cancelled;
            if cancelled != was_cancelled {
                let bucket = self.counters.buckets.entry(t / BUCKET_MS).or_default();
                let sign = if cancelled { 1 } else { -1 };
                bucket.cancelled[c] = bucket.cancelled[c].wrapping_add_signed(sign);
                // What was counted when it was cancelled comes off; what it paid now goes on.
                bucket.cancelled_cents[c] += if cancelled { now.paid_cents } else { -before.paid_cents };
            }
        }
        if now.parked != (before.parked && !new) {
            if now.parked {
                self.orders.insert((dim(kind::PARKED, 0), t, id));
                self.counters.parked += 1;
            } else {
                self.orders.remove(&(dim(kind::PARKED, 0), t, id));
                self.counters.parked -= 1;
            }
        }
        if now.holds != before.holds || new {
            let old: &[String] = if new { &[] } else { &before.holds };
            for rule in old {
                self.orders.remove(&(dim(kind::HOLD, text_hash(rule)), t, id));
                if let Some(n) = self.counters.holds.get_mut(rule) {
                    *n -= 1;
                    if *n == 0 {
                        self.counters.holds.remove(rule);
                    }
                }
            }
            for rule in &now.holds {
                self.orders.insert((dim(kind::HOLD, text_hash(rule)), t, id));
                *self.counters.holds.entry(rule.clone()).or_default() += 1;
            }
        }
        self.filed.insert(id, now);
    }

    /// Bring one order's entries up to date (after a command touched it).
    pub(crate) fn refresh(&mut self, order: &Order) {
        match self.filed.get(&order.id) {
            None => self.add(order),
            Some(before) => {
                let before = before.clone();
                self.file_mutable(order, &before, false);
                for s in &order.shipments {
                    self.refresh_shipment(s);
                }
            }
        }
    }

    fn refresh_shipment(&mut self, s: &Shipment) {
        let now = FiledShipment { status: s.status, alerts: s.alerts };
        let (t, id) = (s.created_at_ms, s.id);
        let before = self.filed_shipments.get(&id).copied();
        if before == Some(now) {
            return;
        }
        match before {
            None => {
                self.shipments.insert((dim(kind::ALL, 0), t, id));
                self.shipments.insert((dim(kind::WAREHOUSE, u64::from(s.warehouse.0)), t, id));
            }
            Some(b) => {
                self.shipments.remove(&(dim(kind::SHIPMENT_STATUS, shipment_status_index(b.status) as u64), t, id));
                self.counters.shipments[shipment_status_index(b.status)] -= 1;
                for bit in [1u8, 2] {
                    if b.alerts & bit != 0 {
                        self.shipments.remove(&(dim(kind::ALERT, u64::from(bit)), t, id));
                    }
                    if alert_open(b, bit) {
                        self.counters.alerts_open[usize::from(bit - 1)] -= 1;
                    }
                }
            }
        }
        self.shipments.insert((dim(kind::SHIPMENT_STATUS, shipment_status_index(now.status) as u64), t, id));
        self.counters.shipments[shipment_status_index(now.status)] += 1;
        for bit in [1u8, 2] {
            if now.alerts & bit != 0 {
                self.shipments.insert((dim(kind::ALERT, u64::from(bit)), t, id));
            }
            if alert_open(now, bit) {
                self.counters.alerts_open[usize::from(bit - 1)] += 1;
            }
        }
        self.filed_shipments.insert(id, now);
    }

    /// Recompute every entry from the orders and compare (the consistency check).
    pub fn verify<'a>(&self, orders: impl Iterator<Item = &'a Order>) -> Result<(), String> {
        let fresh = OrderIndex::rebuild(orders);
        if fresh.orders != self.orders {
            let missing = fresh.orders.difference(&self.orders).next();
            let stale = self.orders.difference(&fresh.orders).next();
            return Err(format!("order index differs from the orders (missing {missing:?}, stale {stale:?})"));
        }
        if fresh.shipments != self.shipments {
            return Err("shipment index differs from the shipments".into());
        }
        let mut counters = self.counters.clone();
        // Buckets emptied by cancellations are kept at zero; compare the non-empty ones.
        counters.buckets.retain(|_, b| *b != Bucket::default());
        let mut expected = fresh.counters.clone();
        expected.buckets.retain(|_, b| *b != Bucket::default());
        if counters != expected {
            return Err(format!("dashboard counters differ: {counters:?} vs {expected:?}"));
        }
        Ok(())
    }
}

/// Which orders a list asks for. Every field narrows the list; `None` does not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Option<StatusFilter>,
    pub channel: Option<SalesChannel>,
    pub buyer: Option<String>,
    /// Created at or after (ms).
    pub from_ms: Option<TimeMs>,
    /// Created before (ms).
    pub to_ms: Option<TimeMs>,
    /// A hold rule (`"big-order"`, `"manual"`) or a whole hold text (`"manual: call the buyer"`).
    pub hold: Option<String>,
    pub sku: Option<SkuId>,
}

/// `status` in a list filter: an order status, or `parked` (waiting in the unfillable queue,
/// whatever its status says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Is(OrderStatus),
    Parked,
}

impl StatusFilter {
    pub fn parse(name: &str) -> Option<StatusFilter> {
        if name == "parked" {
            return Some(StatusFilter::Parked);
        }
        OrderStatus::parse(name).map(StatusFilter::Is)
    }
}

impl OrderFilter {
    pub fn matches(&self, o: &Order) -> bool {
        let status = match self.status {
            None => true,
            Some(StatusFilter::Parked) => o.parked_since_ms.is_some(),
            Some(StatusFilter::Is(s)) => o.status == s,
        };
        status
            && self.channel.is_none_or(|c| o.channel == c)
            && self.buyer.as_deref().is_none_or(|b| o.buyer == b)
            && self.from_ms.is_none_or(|t| o.created_at_ms >= t)
            && self.to_ms.is_none_or(|t| o.created_at_ms < t)
            && self.sku.is_none_or(|sku| o.lines.iter().any(|l| l.sku == sku))
            && self.hold.as_deref().is_none_or(|wanted| {
                o.status == OrderStatus::OnHold && o.holds.iter().any(|h| h == wanted || hold_rule(h) == wanted)
            })
    }

    /// The most selective dimension the filter names.
    fn dimension(&self) -> Dim {
        if let Some(b) = &self.buyer {
            return dim(kind::BUYER, text_hash(b));
        }
        if let Some(sku) = self.sku {
            return dim(kind::SKU, u64::from(sku.0));
        }
        if let Some(h) = &self.hold {
            return dim(kind::HOLD, text_hash(hold_rule(h)));
        }
        match self.status {
            Some(StatusFilter::Parked) => return dim(kind::PARKED, 0),
            Some(StatusFilter::Is(s)) => return dim(kind::STATUS, status_index(s) as u64),
            None => {}
        }
        if let Some(c) = self.channel {
            return dim(kind::CHANNEL, channel_index(c) as u64);
        }
        dim(kind::ALL, 0)
    }
}

/// Which shipments a list asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipmentFilter {
    pub status: Option<ShipmentStatus>,
    pub warehouse: Option<WarehouseId>,
    /// Only shipments with a tracking alert (either kind).
    pub alerts: bool,
    pub from_ms: Option<TimeMs>,
    pub to_ms: Option<TimeMs>,
}

impl ShipmentFilter {
    pub fn matches(&self, s: &Shipment) -> bool {
        self.status.is_none_or(|st| s.status == st)
            && self.warehouse.is_none_or(|w| s.warehouse == w)
            && (!self.alerts || s.alerts != 0)
            && self.from_ms.is_none_or(|t| s.created_at_ms >= t)
            && self.to_ms.is_none_or(|t| s.created_at_ms < t)
    }

    fn dimensions(&self) -> Vec<Dim> {
        if self.alerts {
            // Two ranges (no progress, late); a shipment with both is seen twice and deduplicated.
            return vec![dim(kind::ALERT, 1), dim(kind::ALERT, 2)];
        }
        if let Some(s) = self.status {
            return vec![dim(kind::SHIPMENT_STATUS, shipment_status_index(s) as u64)];
        }
        if let Some(w) = self.warehouse {
            return vec![dim(kind::WAREHOUSE, u64::from(w.0))];
        }
        vec![dim(kind::ALL, 0)]
    }
}

/// A position in a list: the `(created_at_ms, id)` of the last row seen. Pages continue strictly
/// after it (older when newest first), so rows created meanwhile never shift a later page.
pub type Cursor = (TimeMs, u64);

/// One page request to one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSpec {
    pub after: Option<Cursor>,
    pub newest_first: bool,
    /// Rows wanted (the caller asks for one more than it shows, to know whether more exist).
    pub rows: usize,
    /// Index entries examined at most, so a filter that matches little cannot stall the partition.
    pub budget: usize,
}

/// One partition's part of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagePart<T> {
    pub rows: Vec<(Cursor, T)>,
    /// `None`: this partition examined everything past the cursor. `Some(k)`: it examined the
    /// entries up to and including `k` (in the list's direction) and stopped.
    pub stopped_at: Option<Cursor>,
}

/// Entries of one dimension created in `[from_ms, to_ms)`, strictly past the cursor, in the
/// list's direction. The cursor narrows the range itself (a seek, not a skip).
fn range<'a>(
    set: &'a BTreeSet<(Dim, TimeMs, u64)>,
    d: Dim,
    from_ms: Option<TimeMs>,
    to_ms: Option<TimeMs>,
    spec: &PageSpec,
) -> Box<dyn Iterator<Item = Cursor> + 'a> {
    let mut low = (d, from_ms.unwrap_or(0), 0u64);
    let mut high = match to_ms {
        Some(0) => return Box::new(std::iter::empty()),
        Some(t) => (d, t - 1, u64::MAX),
        None => (d, TimeMs::MAX, u64::MAX),
    };
    match (spec.after, spec.newest_first) {
        (Some((0, 0)), true) => return Box::new(std::iter::empty()),
        (Some((t, 0)), true) => high = high.min((d, t - 1, u64::MAX)),
        (Some((t, id)), true) => high = high.min((d, t, id - 1)),
        (Some((t, u64::MAX)), false) => match t.checked_add(1) {
            Some(next) => low = low.max((d, next, 0)),
            None => return Box::new(std::iter::empty()),
        },
        (Some((t, id)), false) => low = low.max((d, t, id + 1)),
        (None, _) => {}
    }
    if low > high {
        return Box::new(std::iter::empty());
    }
    let keys = set.range(low..=high).map(|(_, t, id)| (*t, *id));
    if spec.newest_first {
        Box::new(keys.rev())
    } else {
        Box::new(keys)
    }
}

impl OrderIndex {
    /// One partition's page of orders matching `filter`; `get` reads an order by id.
    pub fn orders_page<'a>(
        &self,
        filter: &OrderFilter,
        spec: &PageSpec,
        get: impl Fn(OrderId) -> Option<&'a Order>,
    ) -> PagePart<&'a Order> {
        let d = filter.dimension();
        let mut rows = Vec::new();
        let mut last = None;
        for (examined, key) in range(&self.orders, d, filter.from_ms, filter.to_ms, spec).enumerate() {
            if examined >= spec.budget.max(1) || rows.len() >= spec.rows {
                return PagePart { rows, stopped_at: last };
            }
            last = Some(key);
            if let Some(o) = get(key.1).filter(|o| filter.matches(o)) {
                rows.push((key, o));
            }
        }
        PagePart { rows, stopped_at: None }
    }

    /// One partition's page of shipments matching `filter`; `get` reads a shipment by id.
    pub fn shipments_page<'a>(
        &self,
        filter: &ShipmentFilter,
        spec: &PageSpec,
        get: impl Fn(ShipmentId) -> Option<(&'a Order, &'a Shipment)>,
    ) -> PagePart<(&'a Order, &'a Shipment)> {
        // Several ranges (the two alert kinds) are merged in order and deduplicated; each is
        // read up to the budget, and the merge only trusts keys every truncated range reached.
        let mut keys: Vec<Cursor> = Vec::new();
        let mut bound: Option<Cursor> = None;
        for d in filter.dimensions() {
            for (taken, key) in range(&self.shipments, d, filter.from_ms, filter.to_ms, spec).enumerate() {
                if taken >= spec.budget.max(1) {
                    let reached = keys.last().copied();
                    bound = match (bound, reached) {
                        (Some(b), Some(r)) => Some(if spec.newest_first { b.max(r) } else { b.min(r) }),
                        (b, r) => b.or(r),
                    };
                    break;
                }
                keys.push(key);
            }
        }
        if spec.newest_first {
            keys.sort_unstable_by(|a, b| b.cmp(a));
        } else {
            keys.sort_unstable();
        }
        keys.dedup();
        if let Some(b) = bound {
            keys.retain(|k| if spec.newest_first { *k >= b } else { *k <= b });
        }
        let mut rows = Vec::new();
        let mut last = None;
        for key in keys {
            if rows.len() >= spec.rows {
                return PagePart { rows, stopped_at: last };
            }
            last = Some(key);
            if let Some((o, s)) = get(key.1).filter(|(_, s)| filter.matches(s)) {
                rows.push((key, (o, s)));
            }
        }
        PagePart { rows, stopped_at: bound }
    }
}

/// Merge the partitions' parts of one page: rows sorted in the list's direction, cut where the
/// least advanced partition stopped (below that, a partition has not looked yet), at most
/// `limit`. Answers the rows and the cursor of the next page (`None`: nothing more).
pub fn merge_pages<T>(parts: Vec<PagePart<T>>, newest_first: bool, limit: usize) -> (Vec<T>, Option<Cursor>) {
    // The entries every partition has examined: up to the stop point nearest the cursor.
    let bound = parts.iter().filter_map(|p| p.stopped_at).reduce(|a, b| if newest_first { a.max(b) } else { a.min(b) });
    let mut rows: Vec<(Cursor, T)> = parts
        .into_iter()
        .flat_map(|p| p.rows)
        .filter(|(k, _)| bound.is_none_or(|b| if newest_first { *k >= b } else { *k <= b }))
        .collect();
    if newest_first {
        rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    } else {
        rows.sort_unstable_by_key(|r| r.0);
    }
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(k, _)| *k)
    } else {
        bound
    };
    (rows.into_iter().map(|(_, row)| row).collect(), next)
}

/// A cursor as text: `"<created_at_ms>.<id>"`.
pub fn cursor_text(c: Cursor) -> String {
    format!("{}.{}", c.0, c.1)
}

pub fn parse_cursor(text: &str) -> Option<Cursor> {
    let (t, id) = text.split_once('.')?;
    if t.is_empty()
        || id.is_empty()
        || !t.bytes().all(|b| b.is_ascii_digit())
        || !id.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((t.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_pages_stop_where_a_partition_stopped() {
        // Newest first over two partitions: partition 0 returned two rows and stopped at (50, 5);
        // partition 1 looked at everything. Rows older than 50 from partition 1 wait for the next
        // page (partition 0 may have rows there it has not looked at).
        let p0 = PagePart { rows: vec![((90, 9), "a"), ((50, 5), "b")], stopped_at: Some((50, 5)) };
        let p1 = PagePart { rows: vec![((70, 7), "c"), ((10, 1), "d")], stopped_at: None };
        let (rows, next) = merge_pages(vec![p0, p1], true, 10);
        assert_eq!(rows, vec!["a", "c", "b"]);
        assert_eq!(next, Some((50, 5)));
        // More rows than the limit: cut at the limit, continue after the last shown.
        let p0 = PagePart { rows: vec![((90, 9), "a"), ((50, 5), "b")], stopped_at: None };
        let p1 = PagePart { rows: vec![((70, 7), "c")], stopped_at: None };
        let (rows, next) = merge_pages(vec![p0, p1], true, 2);
        assert_eq!((rows, next), (vec!["a", "c"], Some((70, 7))));
        let (rows, next) = merge_pages::<&str>(vec![PagePart { rows: vec![], stopped_at: None }], true, 2);
        assert_eq!((rows.len(), next), (0, None));
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        assert_eq!(parse_cursor(&cursor_text((1_700_000_000_000, 42))), Some((1_700_000_000_000, 42)));
        for junk in ["", ".", "1.", ".2", "a.b", "1.2.3", "-1.2", "1 .2", "99999999999999999999.1"] {
            assert_eq!(parse_cursor(junk), None, "{junk:?}");
        }
        assert_eq!(hold_rule("manual: call the buyer"), "manual");
        assert_eq!(hold_rule("big-order"), "big-order");
    }
}
