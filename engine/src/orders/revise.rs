//! Orders the marketplace changed after import, and the desk's exception list.
//!
//! A `Revise` carries the order as the marketplace shows it now. What can still be applied is
//! applied (an address before the label is printed, lines before stock is allocated, a
//! cancellation before a parcel leaves); what cannot is put on the order's exception list, so a
//! change is never dropped. The revision's fingerprint is kept on the order: the incremental pull
//! sees most orders several times (its windows overlap), and the same revision again is a no-op.

use super::lifecycle::{priced_lines, validate_new};
use super::model::{
    ChannelState, ExceptionKind, Order, OrderException, OrderId, OrderStatus, Revision, ShipmentId, ShipmentStatus,
};
use super::{OrderBook, OrderEvent, EXCEPTIONS_LIMIT, TEXT_LIMIT};
use crate::error::EngineError;
use crate::event::Event;
use crate::ids::TimeMs;
use crate::partition::Outcome;

/// What a revision will do, decided before anything changes.
#[derive(Default)]
struct Plan {
    cancel: bool,
    address: bool,
    lines: bool,
    remark: bool,
    hold: bool,
    raise: Vec<(ExceptionKind, String, Option<ShipmentId>)>,
}

/// "SKU A 2 -> 3, SKU B removed, SKU C 1 added; paid 100.00 -> 120.00" for the desk.
fn describe_line_changes(order: &Order, revision: &Revision) -> String {
    let new = &revision.order;
    let mut parts = Vec::new();
    for line in &order.lines {
        match new.lines.iter().find(|l| l.sku == line.sku) {
            None => parts.push(format!("SKU {} removed", line.sku_code)),
            Some(l) if l.qty != line.qty => parts.push(format!("SKU {} {} -> {}", line.sku_code, line.qty, l.qty)),
            Some(_) => {}
        }
    }
    for l in &new.lines {
        if !order.lines.iter().any(|o| o.sku == l.sku) {
            parts.push(format!("SKU {} {} added", l.sku_code, l.qty));
        }
    }
    if order.paid_cents != new.paid_cents {
        parts.push(format!("paid {} -> {}", yuan(order.paid_cents), yuan(new.paid_cents)));
    }
    if parts.is_empty() {
        parts.push("line amounts changed".to_owned());
    }
    parts.join(", ")
}

fn yuan(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

fn lines_differ(order: &Order, revision: &Revision) -> bool {
    let new = &revision.order;
    order.lines.len() != new.lines.len()
        || order.paid_cents != new.paid_cents
        || order.shipping_cents != new.shipping_cents
        || order
            .lines
            .iter()
            .zip(&new.lines)
            .any(|(a, b)| a.sku != b.sku || a.qty != b.qty || a.list_cents != b.list_cents)
}

impl OrderBook {
    pub(super) fn revise(
        &mut self,
        now: TimeMs,
        revision: &Revision,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let new = &revision.order;
        let id = new.id;
        let order = self.order_ref(id)?;
        if order.channel != new.channel || order.external_id != new.external_id {
            return Err(EngineError::OrderConflict { order: id, external_id: order.external_id.clone() });
        }
        validate_new(new)?;
        let fingerprint = Revision::fingerprint(new, revision.state);
        if order.revision == fingerprint {
            return Ok(Outcome::Unchanged);
        }
        let plan = self.plan(order, revision);
        debug_assert!(!(plan.cancel && (plan.address || plan.lines)), "a cancelled revision changes nothing else");

        // Cancel first: it is the one step that can refuse, and it refuses before changing anything.
        if plan.cancel {
            self.cancel(now, id, "cancelled on the platform", out)?;
        }
        let mut changes = Vec::new();
        if let Some(o) = self.orders.get_mut(&id) {
            o.revision = fingerprint;
            o.updated_at_ms = now;
            if plan.address {
                o.address = new.address.clone();
                changes.push("address".to_owned());
            }
            if plan.lines {
                o.lines = priced_lines(new);
                o.paid_cents = new.paid_cents;
                o.shipping_cents = new.shipping_cents;
                changes.push("lines".to_owned());
            }
            if plan.remark {
                o.remark = new.remark.clone();
                changes.push("remark".to_owned());
            }
            o.cash_on_delivery = new.cash_on_delivery;
        }
        if plan.cancel {
            changes.push("cancelled".to_owned());
        }
        if plan.hold {
            // Checked by `plan`: approved, nothing allocated, not merged. A refund request stops
            // the order before stock is taken for it; the desk releases or rejects it.
            let held = self.hold(now, id, "refund requested on the platform", out);
            debug_assert!(held.is_ok(), "plan checked that the order can be held: {held:?}");
        }
        if !changes.is_empty() {
            out.push(Event::Order(OrderEvent::Revised { order: id, changes, at_ms: now }));
        }
        for (kind, detail, shipment) in plan.raise {
            self.push_exception(now, id, kind, detail, shipment, out);
        }
        Ok(Outcome::Changed)
    }

    /// Decide what a revision does to `order` (nothing is changed here).
    fn plan(&self, order: &Order, revision: &Revision) -> Plan {
        use OrderStatus::*;
        let new = &revision.order;
        let mut plan = Plan::default();
        let left =
            order.shipments.iter().any(|s| matches!(s.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered));
        // The label carries the address from packing on.
        let labelled = order
            .shipments
            .iter()
            .any(|s| matches!(s.status, ShipmentStatus::Packed | ShipmentStatus::Shipped | ShipmentStatus::Delivered));
        let open = !matches!(order.status, Cancelled | Completed);
        match revision.state {
            ChannelState::Cancelled => {
                if order.status == Cancelled {
                    return plan;
                }
                let cancellable = matches!(order.status, Created | OnHold | Approved | Allocated | Picking | Packed)
                    && !left
                    && order.merged_into.is_none();
                if cancellable {
                    plan.cancel = true;
                } else if order.merged_into.is_some() && !left {
                    plan.raise.push((
                        ExceptionKind::CancelledAfterShipment,
                        format!(
                            "cancelled on the platform while merged into order {}: split it, then cancel",
                            order.merged_into.unwrap_or_default()
                        ),
                        None,
                    ));
                } else if open {
                    plan.raise.push((
                        ExceptionKind::CancelledAfterShipment,
                        "cancelled on the platform after a parcel left: intercept it or ask the buyer to refuse it"
                            .to_owned(),
                        None,
                    ));
                }
                return plan;
            }
            ChannelState::RefundRequested if open => {
                plan.raise.push((ExceptionKind::RefundRequested, "refund requested on the platform".to_owned(), None));
                plan.hold = order.status == Approved && order.shipments.is_empty() && order.merged_into.is_none();
            }
            ChannelState::Shipped if open && !left => {
                plan.raise.push((
                    ExceptionKind::ShippedOnPlatform,
                    "the platform shows the order shipped; omsd has not shipped it".to_owned(),
                    None,
                ));
            }
            _ => {}
        }
        if new.address != order.address && open {
            if labelled || !matches!(order.status, Created | OnHold | Approved | Allocated | Picking) {
                let a = &new.address;
                plan.raise.push((
                    ExceptionKind::AddressChanged,
                    format!(
                        "address changed on the platform after packing: {} {} {} {} {} {}",
                        a.name, a.phone, a.province, a.city, a.district, a.detail
                    ),
                    None,
                ));
            } else {
                plan.address = true;
            }
        }
        if lines_differ(order, revision) && open {
            let unallocated = matches!(order.status, Created | OnHold | Approved)
                && order.shipments.is_empty()
                && order.lines.iter().all(|l| l.allocated_qty == 0 && l.claimed_qty == 0)
                && order.merged_into.is_none()
                && order.merged.is_empty();
            if unallocated {
                plan.lines = true;
                // Lines replaced: a hold for a refund would judge the old lines; keep it anyway.
            } else {
                plan.raise.push((
                    ExceptionKind::LinesChanged,
                    format!(
                        "lines changed on the platform after allocation: {}",
                        describe_line_changes(order, revision)
                    ),
                    None,
                ));
            }
        }
        plan.remark = new.remark != order.remark && open;
        plan
    }

    /// Add (or refresh) an exception; an identical open one is left alone. Returns whether the
    /// list changed.
    fn push_exception(
        &mut self,
        now: TimeMs,
        id: OrderId,
        kind: ExceptionKind,
        detail: String,
        shipment: Option<ShipmentId>,
        out: &mut Vec<Event>,
    ) -> bool {
        let Some(o) = self.orders.get_mut(&id) else { return false };
        let detail = truncate(detail);
        if let Some(e) =
            o.exceptions.iter_mut().find(|e| e.resolved_at_ms.is_none() && e.kind == kind && e.shipment == shipment)
        {
            if e.detail == detail {
                return false;
            }
            e.detail = detail.clone();
        } else {
            if o.exceptions.len() >= EXCEPTIONS_LIMIT {
                // Make room: the oldest resolved entry, else the oldest entry.
                let victim = o.exceptions.iter().position(|e| e.resolved_at_ms.is_some()).unwrap_or(0);
                o.exceptions.remove(victim);
            }
            o.exceptions.push(OrderException {
                kind,
                detail: detail.clone(),
                shipment,
                raised_at_ms: now,
                resolved_at_ms: None,
            });
        }
        o.updated_at_ms = now;
        out.push(Event::Order(OrderEvent::ExceptionRaised { order: id, kind, detail, shipment, at_ms: now }));
        true
    }

    pub(super) fn raise_exception(
        &mut self,
        now: TimeMs,
        id: OrderId,
        kind: ExceptionKind,
        detail: &str,
        shipment: Option<ShipmentId>,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        if detail.len() > TEXT_LIMIT {
            return Err(EngineError::InvalidOrder { order: id, reason: "exception detail exceeds 1024 bytes" });
        }
        if let Some(s) = shipment {
            if order.shipment(s).is_none() {
                return Err(EngineError::UnknownShipment { shipment: s });
            }
        }
        let changed = self.push_exception(now, id, kind, detail.to_owned(), shipment, out);
        Ok(if changed { Outcome::Changed } else { Outcome::Unchanged })
    }

    pub(super) fn resolve_exception(
        &mut self,
        now: TimeMs,
        id: OrderId,
        index: u32,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        let Some(e) = order.exceptions.get(index as usize) else {
            return Err(EngineError::InvalidOrder { order: id, reason: "no exception with that index" });
        };
        if e.resolved_at_ms.is_some() {
            return Ok(Outcome::Unchanged);
        }
        let (kind, shipment) = (e.kind, e.shipment);
        if let Some(o) = self.orders.get_mut(&id) {
            o.exceptions[index as usize].resolved_at_ms = Some(now);
            o.updated_at_ms = now;
        }
        out.push(Event::Order(OrderEvent::ExceptionResolved { order: id, kind, shipment, at_ms: now }));
        Ok(Outcome::Changed)
    }

    pub(super) fn channel_confirmed(
        &mut self,
        now: TimeMs,
        id: OrderId,
        shipments: &[ShipmentId],
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        if shipments.is_empty() || shipments.len() > usize::from(super::model::SHIPMENT_CHILD_LIMIT) {
            return Err(EngineError::InvalidOrder { order: id, reason: "1..=127 shipments per confirmation" });
        }
        for s in shipments {
            let shipment = order.shipment(*s).ok_or(EngineError::UnknownShipment { shipment: *s })?;
            if !matches!(shipment.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered) {
                return Err(EngineError::ShipmentTransition {
                    shipment: *s,
                    state: shipment.status.name(),
                    action: "confirm on the platform",
                });
            }
        }
        let mut changed = false;
        let Some(o) = self.orders.get_mut(&id) else { return Err(EngineError::UnknownOrder { order: id }) };
        for s in shipments {
            let Some(shipment) = o.shipments.iter_mut().find(|x| x.id == *s) else { continue };
            if shipment.channel_confirmed_at_ms.is_some() {
                continue;
            }
            shipment.channel_confirmed_at_ms = Some(now);
            self.unconfirmed.remove(s);
            changed = true;
            out.push(Event::Order(OrderEvent::ChannelConfirmed { order: id, shipment: *s, at_ms: now }));
            for e in o.exceptions.iter_mut() {
                if e.resolved_at_ms.is_none() && e.kind == ExceptionKind::ShipmentConfirmation && e.shipment == Some(*s)
                {
                    e.resolved_at_ms = Some(now);
                    out.push(Event::Order(OrderEvent::ExceptionResolved {
                        order: id,
                        kind: e.kind,
                        shipment: e.shipment,
                        at_ms: now,
                    }));
                }
            }
        }
        if changed {
            o.updated_at_ms = now;
        }
        Ok(if changed { Outcome::Changed } else { Outcome::Unchanged })
    }
}

/// Cut a detail to the text limit on a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() > TEXT_LIMIT {
        let mut end = TEXT_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
