//! Order book reads, answered in the owning partition's writer thread (after the batch commit, like
//! every other query): `Query::Orders(OrderQuery)` -> `QueryAnswer::Orders(OrderAnswer)`.

use oms_engine::orders::index::{OrderFilter, PagePart, PageSpec};
use oms_engine::orders::model::{Order, OrderId, OrderStatus, SalesChannel, ShipmentStatus, Wave, WaveId};
use oms_engine::orders::rules::RoutingRule;
use oms_engine::{Line, Partition, TimeMs, WarehouseId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub enum OrderQuery {
    /// One partition's part of a page of orders (keyset paging over the order index).
    Page {
        filter: Box<OrderFilter>,
        spec: PageSpec,
    },
    Order(OrderId),
    Wave(WaveId),
    /// Orders of this partition in one status (`None`: all), oldest first, at most `limit`.
    List {
        status: Option<OrderStatus>,
        limit: u32,
    },
    /// Approved orders waiting for allocation, then parked ones (oldest first each).
    Waiting,
    /// What an allocation attempt needs: the open units and the matching routing rules.
    ForAllocation(OrderId),
    /// Shipped parcels of marketplace orders (of `channel`, if given) the marketplace has not
    /// confirmed, from shipment id `after` on, at most `limit`.
    Unconfirmed {
        channel: Option<SalesChannel>,
        after: u64,
        limit: u32,
    },
    /// Open exceptions of this partition's orders, oldest first, at most `limit` orders.
    Exceptions {
        limit: u32,
    },
}

/// A shipped parcel the marketplace has not confirmed yet, with what the confirmation needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnconfirmedView {
    pub order: OrderId,
    pub channel: SalesChannel,
    pub external_id: String,
    pub shop: String,
    pub shipment: u64,
    pub carrier: String,
    pub waybill: String,
    /// SKU codes of the order lines in the parcel.
    pub sku_codes: Vec<String>,
    /// Parcels of the order (not cancelled, replacements excluded).
    pub total_packages: usize,
    /// Every such parcel has left.
    pub all_left: bool,
}

/// One open exception, for `oms order exceptions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExceptionRow {
    pub order: OrderId,
    pub channel: SalesChannel,
    pub external_id: String,
    pub shop: String,
    pub status: OrderStatus,
    /// Position in the order's list (what `oms order resolve` takes).
    pub index: u32,
    pub kind: &'static str,
    pub detail: String,
    pub shipment: Option<u64>,
    pub raised_at_ms: TimeMs,
}

/// One row of `oms order list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub id: OrderId,
    pub channel: SalesChannel,
    pub external_id: String,
    pub status: OrderStatus,
    pub buyer: String,
    pub paid_cents: i64,
    pub holds: Vec<String>,
    pub created_at_ms: TimeMs,
}

impl OrderSummary {
    fn of(o: &Order) -> OrderSummary {
        OrderSummary {
            id: o.id,
            channel: o.channel,
            external_id: o.external_id.clone(),
            status: o.status,
            buyer: o.buyer.clone(),
            paid_cents: o.paid_cents,
            holds: o.holds.clone(),
            created_at_ms: o.created_at_ms,
        }
    }
}

/// The inputs of one allocation attempt (`Desk::allocate` reads the same from the engine).
#[derive(Clone, Debug)]
pub struct AllocationView {
    pub channel: SalesChannel,
    /// Approved or partially allocated, and not a merge follower.
    pub waiting: bool,
    /// Open units of the order and its merged followers, one line per SKU.
    pub open: Vec<Line>,
    /// Matching routing rules in order (the fallback when none matches), each with the warehouse
    /// preference its sort asks for (`ReserveRequest::prefer_warehouses`).
    pub rules: Vec<(RoutingRule, Option<Vec<WarehouseId>>)>,
    pub merged: bool,
    pub parked: bool,
    pub cancel_at_ms: Option<TimeMs>,
}

#[derive(Debug)]
pub enum OrderAnswer {
    Order(Option<Box<Order>>),
    Wave(Option<Box<Wave>>),
    List(Vec<OrderSummary>),
    Page(PagePart<PageRow>),
    Waiting(Vec<OrderId>),
    ForAllocation(Option<Box<AllocationView>>),
    Unconfirmed(Vec<UnconfirmedView>),
    Exceptions(Vec<ExceptionRow>),
}

/// One row of an order page: the summary plus what the desk shows beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRow {
    #[serde(flatten)]
    pub summary: OrderSummary,
    /// Waiting in the unfillable queue (its status still says approved or allocated).
    pub parked: bool,
    /// Units ordered over every line.
    pub units: u64,
    /// SKU codes of the lines, in line order.
    pub skus: Vec<String>,
}

/// Answer an order query from one partition.
pub fn answer(p: &Partition, query: OrderQuery) -> OrderAnswer {
    let book = p.orders();
    match query {
        OrderQuery::Unconfirmed { channel, after, limit } => {
            let mut rows = Vec::new();
            for id in book.unconfirmed(channel, after, limit as usize) {
                let Some((o, s)) = book.shipment(id) else { continue };
                let parcels: Vec<_> = o
                    .shipments
                    .iter()
                    .filter(|x| x.after_sale.is_none() && x.status != ShipmentStatus::Cancelled)
                    .collect();
                let mut sku_codes: Vec<String> = o
                    .lines
                    .iter()
                    .filter(|l| s.items.iter().any(|i| i.sku == l.sku))
                    .map(|l| l.sku_code.clone())
                    .collect();
                if sku_codes.is_empty() {
                    // Kit lines ship as components: name every line.
                    sku_codes = o.lines.iter().map(|l| l.sku_code.clone()).collect();
                }
                rows.push(UnconfirmedView {
                    order: o.id,
                    channel: o.channel,
                    external_id: o.external_id.clone(),
                    shop: o.shop.clone(),
                    shipment: id,
                    carrier: s.carrier.clone().unwrap_or_default(),
                    waybill: s.waybill.clone().unwrap_or_default(),
                    sku_codes,
                    total_packages: parcels.len(),
                    all_left: parcels
                        .iter()
                        .all(|x| matches!(x.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered)),
                });
            }
            OrderAnswer::Unconfirmed(rows)
        }
        OrderQuery::Exceptions { limit } => {
            let mut rows = Vec::new();
            for id in book.with_open_exceptions(limit as usize) {
                let Some(o) = book.order(id) else { continue };
                for (index, e) in o.exceptions.iter().enumerate().filter(|(_, e)| e.resolved_at_ms.is_none()) {
                    rows.push(ExceptionRow {
                        order: o.id,
                        channel: o.channel,
                        external_id: o.external_id.clone(),
                        shop: o.shop.clone(),
                        status: o.status,
                        index: index as u32,
                        kind: e.kind.name(),
                        detail: e.detail.clone(),
                        shipment: e.shipment,
                        raised_at_ms: e.raised_at_ms,
                    });
                }
            }
            OrderAnswer::Exceptions(rows)
        }
        OrderQuery::Order(id) => OrderAnswer::Order(book.order(id).cloned().map(Box::new)),
        OrderQuery::Wave(id) => OrderAnswer::Wave(book.wave(id).cloned().map(Box::new)),
        OrderQuery::Page { filter, spec } => {
            let part = book.index().orders_page(&filter, &spec, |id| book.order(id));
            OrderAnswer::Page(PagePart {
                rows: part
                    .rows
                    .into_iter()
                    .map(|(k, o)| {
                        let row = PageRow {
                            summary: OrderSummary::of(o),
                            parked: o.parked_since_ms.is_some(),
                            units: o.lines.iter().map(|l| u64::from(l.qty)).sum(),
                            skus: o.lines.iter().map(|l| l.sku_code.clone()).collect(),
                        };
                        (k, row)
                    })
                    .collect(),
                stopped_at: part.stopped_at,
            })
        }
        OrderQuery::List { status, limit } => {
            let mut rows: Vec<OrderSummary> =
                book.orders().filter(|o| status.is_none_or(|s| o.status == s)).map(OrderSummary::of).collect();
            rows.sort_unstable_by_key(|r| (r.created_at_ms, r.id));
            rows.truncate(limit as usize);
            OrderAnswer::List(rows)
        }
        OrderQuery::Waiting => {
            let mut ids = book.awaiting_allocation();
            ids.extend(book.parked());
            OrderAnswer::Waiting(ids)
        }
        OrderQuery::ForAllocation(id) => OrderAnswer::ForAllocation(book.order(id).map(|o| {
            let waiting = matches!(o.status, OrderStatus::Approved | OrderStatus::Allocated) && o.merged_into.is_none();
            let mut open: Vec<Line> = Vec::new();
            let mut codes: Vec<&str> = Vec::new();
            for member in std::iter::once(o).chain(o.merged.iter().filter_map(|m| book.order(*m))) {
                for l in &member.lines {
                    codes.push(&l.sku_code);
                    let qty = l.qty.saturating_sub(l.allocated_qty);
                    if qty == 0 {
                        continue;
                    }
                    match open.iter_mut().find(|x| x.sku == l.sku) {
                        Some(x) => x.qty += qty,
                        None => open.push(Line { sku: l.sku, qty }),
                    }
                }
            }
            let routing = book.routing_rules();
            let (province, city) = (&o.address.province, &o.address.city);
            let rules = routing
                .matching(o.channel, province, city, &codes)
                .into_iter()
                .map(|rule| {
                    let prefer = routing.preference(&rule, province, city, p.warehouses());
                    (rule, prefer)
                })
                .collect();
            Box::new(AllocationView {
                channel: o.channel,
                waiting,
                open,
                rules,
                merged: !o.merged.is_empty(),
                parked: o.parked_since_ms.is_some(),
                cancel_at_ms: o.parked_cancel_at_ms,
            })
        })),
    }
}
