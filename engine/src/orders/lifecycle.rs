//! The order state machine: import and audit, approve / hold / reject, cancel, allocation records,
//! the unfillable queue, merging, completion, and the order side of `Tick`.
//!
//! Every handler validates everything before it changes anything, so a refusal leaves the book
//! exactly as it was and emits nothing.

use super::model::{Order, OrderId, OrderLine, OrderStatus, Shipment, ShipmentStatus, SHIPMENT_CHILD_LIMIT};
use super::{pricing, NewOrder, OrderBook, OrderCommand, OrderEvent, ORDER_LINES_LIMIT, RECENT_LIMIT, TEXT_LIMIT};
use crate::command::Line;
use crate::error::EngineError;
use crate::event::{Allocation, Event};
use crate::ids::{ReservationId, TimeMs};
use crate::partition::Outcome;

/// Where and when a command runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub now: TimeMs,
    pub index: u32,
    pub partitions: u32,
}

fn illegal(order: &Order, action: &'static str) -> EngineError {
    EngineError::IllegalTransition { order: order.id, state: order.status.name(), action }
}

fn check_text(order: OrderId, text: &str, what: &'static str) -> Result<(), EngineError> {
    if text.len() > TEXT_LIMIT {
        return Err(EngineError::InvalidOrder { order, reason: what });
    }
    Ok(())
}

impl OrderBook {
    pub(crate) fn apply(
        &mut self,
        ctx: Ctx,
        command: &OrderCommand,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        if let Some(key) = command.routing_key() {
            let owner = super::owner_of(key, ctx.partitions);
            if owner != ctx.index {
                return Err(EngineError::WrongOrderPartition { order: key, owner, this: ctx.index });
            }
        }
        let now = ctx.now;
        match command {
            OrderCommand::SetAuditRules(rules) => {
                rules.validate().map_err(|reason| EngineError::InvalidRules { reason })?;
                self.audit = rules.clone();
                out.push(Event::Order(OrderEvent::RulesSet { what: "audit".into() }));
                Ok(Outcome::Changed)
            }
            OrderCommand::SetRoutingRules(rules) => {
                rules.validate().map_err(|reason| EngineError::InvalidRules { reason })?;
                self.routing = rules.clone();
                out.push(Event::Order(OrderEvent::RulesSet { what: "routing".into() }));
                Ok(Outcome::Changed)
            }
            OrderCommand::SetCarrierRules(rules) => {
                rules.validate().map_err(|reason| EngineError::InvalidRules { reason })?;
                self.carriers = rules.clone();
                // Alert deadlines depend on the rules.
                self.rebuild_indexes();
                out.push(Event::Order(OrderEvent::RulesSet { what: "carriers".into() }));
                Ok(Outcome::Changed)
            }
            OrderCommand::SetSkuProfile { sku, weight_g } => {
                if self.weights.get(sku) == Some(weight_g) {
                    return Ok(Outcome::Unchanged);
                }
                self.weights.insert(*sku, *weight_g);
                out.push(Event::Order(OrderEvent::RulesSet { what: format!("weight of SKU {sku}") }));
                Ok(Outcome::Changed)
            }
            OrderCommand::SetSkuVolume { sku, volume_cm3 } => {
                if self.volumes.get(sku) == Some(volume_cm3) {
                    return Ok(Outcome::Unchanged);
                }
                self.volumes.insert(*sku, *volume_cm3);
                out.push(Event::Order(OrderEvent::RulesSet { what: format!("volume of SKU {sku}") }));
                Ok(Outcome::Changed)
            }
            OrderCommand::SetBinLocation { warehouse, sku, bin } => {
                if self.bins.get(&(*warehouse, *sku)) == Some(bin) {
                    return Ok(Outcome::Unchanged);
                }
                self.bins.insert((*warehouse, *sku), *bin);
                out.push(Event::Order(OrderEvent::RulesSet {
                    what: format!("bin of SKU {sku} in warehouse {warehouse}"),
                }));
                Ok(Outcome::Changed)
            }
            OrderCommand::Import(new) => self.import(now, new, out),
            OrderCommand::Revise(revision) => self.revise(now, revision, out),
            OrderCommand::RaiseException { order, kind, detail, shipment } => {
                self.raise_exception(now, *order, *kind, detail, *shipment, out)
            }
            OrderCommand::ResolveException { order, index } => self.resolve_exception(now, *order, *index, out),
            OrderCommand::ChannelConfirmed { order, shipments } => self.channel_confirmed(now, *order, shipments, out),
            OrderCommand::Approve { order } => self.approve(now, *order, out),
            OrderCommand::Hold { order, reason } => self.hold(now, *order, reason, out),
            OrderCommand::Unhold { order, reason } => self.unhold(now, *order, reason, out),
            OrderCommand::Reject { order, reason } => self.reject(now, *order, reason, out),
            OrderCommand::Cancel { order, reason } => self.cancel(now, *order, reason, out),
            OrderCommand::RecordAllocation { order, reservation, lines, allocations, after_sale } => {
                self.record_allocation(now, *order, *reservation, lines, allocations, *after_sale, out)
            }
            OrderCommand::Park { order, cancel_at_ms } => self.park(now, *order, *cancel_at_ms, out),
            OrderCommand::Merge { orders } => self.merge(now, orders, out),
            OrderCommand::Split { order } => self.split(now, *order, out),
            OrderCommand::Complete { order } => {
                let o = self.orders.get(order).ok_or(EngineError::UnknownOrder { order: *order })?;
                if o.status != OrderStatus::Delivered || o.merged_into.is_some() {
                    return Err(illegal(o, "complete"));
                }
                self.set_status(*order, OrderStatus::Completed, now, out);
                Ok(Outcome::Changed)
            }
            OrderCommand::CreateWave { wave, warehouse, carrier, max_shipments, cutoff_ms } => {
                self.create_wave(now, *wave, *warehouse, carrier.as_deref(), *max_shipments, *cutoff_ms, out)
            }
            OrderCommand::ScanPick { wave, sku, qty } => self.scan_pick(now, *wave, *sku, *qty, out),
            OrderCommand::OverridePick { wave, supervisor, reason } => {
                self.override_pick(now, *wave, supervisor, reason, out)
            }
            OrderCommand::Pack { shipment } => self.pack(now, ctx.index, ctx.partitions, *shipment, out),
            OrderCommand::Ship { shipment } => self.ship(now, *shipment, out),
            OrderCommand::Deliver { shipment } => self.deliver(now, *shipment, out),
            OrderCommand::Track { shipment, code, location } => self.track(now, *shipment, code, location, out),
            OrderCommand::CreateAfterSale { order, kind, lines, reason } => {
                self.create_after_sale(now, *order, *kind, lines, reason, out)
            }
            OrderCommand::ReceiveReturn { after_sale, damaged } => self.receive_return(now, *after_sale, *damaged, out),
            // Touches stock: `Partition::apply_order` handles it before the order book is asked.
            OrderCommand::Restock { after_sale, .. } => {
                debug_assert!(false, "Restock reached the order book");
                Err(EngineError::InvalidOrder {
                    order: *after_sale >> 8,
                    reason: "restock is applied by the partition",
                })
            }
        }
    }

    pub(super) fn order_ref(&self, id: OrderId) -> Result<&Order, EngineError> {
        self.orders.get(&id).map(|o| &**o).ok_or(EngineError::UnknownOrder { order: id })
    }

    /// Set an order's status (and its merged followers'), emitting one event per change.
    pub(super) fn set_status(&mut self, id: OrderId, to: OrderStatus, now: TimeMs, out: &mut Vec<Event>) {
        let Some(order) = self.orders.get_mut(&id) else { return };
        if order.merged.is_empty() {
            if order.status != to {
                let from = order.status;
                order.status = to;
                order.updated_at_ms = now;
                out.push(Event::Order(OrderEvent::StatusChanged { order: id, from, to, at_ms: now }));
            }
            return;
        }
        let followers = order.merged.clone();
        for member in std::iter::once(id).chain(followers) {
            let Some(o) = self.orders.get_mut(&member) else { continue };
            if o.status == to {
                continue;
            }
            let from = o.status;
            o.status = to;
            o.updated_at_ms = now;
            out.push(Event::Order(OrderEvent::StatusChanged { order: member, from, to, at_ms: now }));
        }
    }

    /// Recompute the status of an order in fulfilment from its shipments: the least advanced
    /// shipment decides, and an order with units still unallocated stays `allocated`.
    pub(super) fn refresh_status(&mut self, id: OrderId, now: TimeMs, out: &mut Vec<Event>) {
        let Some(order) = self.orders.get(&id) else { return };
        use OrderStatus::*;
        if !matches!(order.status, Approved | Allocated | Picking | Packed | Shipped) {
            return;
        }
        let stage = order
            .shipments
            .iter()
            .filter(|s| s.after_sale.is_none() && s.status != ShipmentStatus::Cancelled)
            .map(|s| s.status.order_stage())
            .min();
        let Some(mut stage) = stage else { return };
        if !self.group_fully_allocated(order) {
            stage = stage.min(Allocated);
        }
        if stage != order.status {
            self.set_status(id, stage, now, out);
        }
    }

    fn group(&self, order: &Order) -> Vec<OrderId> {
        std::iter::once(order.id).chain(order.merged.iter().copied()).collect()
    }

    fn group_fully_allocated(&self, order: &Order) -> bool {
        if order.merged.is_empty() {
            return order.fully_allocated();
        }
        self.group(order).iter().filter_map(|id| self.orders.get(id)).all(|o| o.fully_allocated())
    }

    fn import(&mut self, now: TimeMs, new: &NewOrder, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let fingerprint = super::Revision::fingerprint(new, super::ChannelState::AwaitingShipment);
        if let Some(existing) = self.orders.get(&new.id) {
            if existing.channel == new.channel
                && existing.external_id == new.external_id
                && existing.revision == fingerprint
            {
                // A re-import of the same channel order as it was (or as a later revision left
                // it): nothing to do.
                return Ok(Outcome::Unchanged);
            }
            // Another channel order with the same id (a hash collision), or this one with other
            // contents: a changed order is a `Revise`, never a silent no-op.
            return Err(EngineError::OrderConflict { order: new.id, external_id: existing.external_id.clone() });
        }
        validate_new(new)?;
        let window = self.audit.velocity_window_ms();
        let history = self.recent.get(&new.buyer);
        let holds = self.audit.check(new, |w| {
            history.map_or(0, |times| times.iter().filter(|at| at.saturating_add(w) > now).count() as u32)
        });

        if window > 0 && !new.buyer.is_empty() {
            let times = self.recent.entry(new.buyer.clone()).or_default();
            times.retain(|at| at.saturating_add(window) > now);
            times.push(now);
            if times.len() > RECENT_LIMIT {
                times.remove(0);
            }
        }
        let status = if holds.is_empty() { OrderStatus::Approved } else { OrderStatus::OnHold };
        let lines = priced_lines(new);
        self.orders.insert(
            new.id,
            Box::new(Order {
                id: new.id,
                channel: new.channel,
                external_id: new.external_id.clone(),
                shop: new.shop.clone(),
                buyer: new.buyer.clone(),
                address: new.address.clone(),
                remark: new.remark.clone(),
                cash_on_delivery: new.cash_on_delivery,
                lines,
                shipping_cents: new.shipping_cents,
                paid_cents: new.paid_cents,
                status,
                holds: holds.clone(),
                cancel_reason: None,
                created_at_ms: now,
                updated_at_ms: now,
                shipments: Vec::new(),
                after_sales: Vec::new(),
                parked_since_ms: None,
                parked_cancel_at_ms: None,
                merged_into: None,
                merged: Vec::new(),
                next_shipment: 0,
                next_after_sale: 0,
                revision: fingerprint,
                exceptions: Vec::new(),
            }),
        );
        out.push(Event::Order(OrderEvent::Imported {
            order: new.id,
            channel: new.channel,
            external_id: new.external_id.clone(),
            at_ms: now,
        }));
        out.push(Event::Order(OrderEvent::StatusChanged {
            order: new.id,
            from: OrderStatus::Created,
            to: status,
            at_ms: now,
        }));
        if !holds.is_empty() {
            out.push(Event::Order(OrderEvent::Held { order: new.id, rules: holds, at_ms: now }));
        }
        Ok(Outcome::Changed)
    }

    fn approve(&mut self, now: TimeMs, id: OrderId, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        if order.status != OrderStatus::OnHold {
            return Err(illegal(order, "approve"));
        }
        if let Some(o) = self.orders.get_mut(&id) {
            o.holds.clear();
        }
        self.set_status(id, OrderStatus::Approved, now, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn hold(
        &mut self,
        now: TimeMs,
        id: OrderId,
        reason: &str,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        check_text(id, reason, "reason too long")?;
        // Only an order nobody has started to fulfil can go back on hold.
        if order.status != OrderStatus::Approved || !order.shipments.is_empty() || order.merged_into.is_some() {
            return Err(illegal(order, "hold"));
        }
        let rule = format!("manual: {reason}");
        if let Some(o) = self.orders.get_mut(&id) {
            o.holds = vec![rule.clone()];
        }
        self.unpark(id);
        self.set_status(id, OrderStatus::OnHold, now, out);
        out.push(Event::Order(OrderEvent::Held { order: id, rules: vec![rule], at_ms: now }));
        Ok(Outcome::Changed)
    }

    /// Release a manual hold: the order is approved again (and allocated by the coordinator).
    /// Audit holds are a decision (approve or reject), not something to take back.
    fn unhold(&mut self, now: TimeMs, id: OrderId, reason: &str, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        check_text(id, reason, "reason too long")?;
        if order.status != OrderStatus::OnHold {
            return Err(illegal(order, "unhold"));
        }
        if order.holds.iter().any(|h| super::index::hold_rule(h) != "manual") {
            return Err(EngineError::IllegalTransition {
                order: id,
                state: "on_hold by an audit rule",
                action: "unhold (approve or reject it)",
            });
        }
        if let Some(o) = self.orders.get_mut(&id) {
            o.holds.clear();
        }
        self.set_status(id, OrderStatus::Approved, now, out);
        out.push(Event::Order(OrderEvent::Unheld { order: id, reason: reason.to_owned(), at_ms: now }));
        Ok(Outcome::Changed)
    }

    fn reject(&mut self, now: TimeMs, id: OrderId, reason: &str, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        check_text(id, reason, "reason too long")?;
        if order.status != OrderStatus::OnHold {
            return Err(illegal(order, "reject"));
        }
        if let Some(o) = self.orders.get_mut(&id) {
            o.cancel_reason = Some(format!("rejected: {reason}"));
        }
        self.set_status(id, OrderStatus::Cancelled, now, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn cancel(
        &mut self,
        now: TimeMs,
        id: OrderId,
        reason: &str,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        use OrderStatus::*;
        let order = self.order_ref(id)?;
        check_text(id, reason, "reason too long")?;
        let left =
            order.shipments.iter().any(|s| matches!(s.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered));
        if !matches!(order.status, Created | OnHold | Approved | Allocated | Picking | Packed) || left {
            return Err(illegal(order, "cancel"));
        }
        if order.merged_into.is_some() {
            // A follower ships with its leader: split the group first.
            return Err(EngineError::IllegalTransition { order: id, state: "merged", action: "cancel" });
        }
        let mut reservations: Vec<ReservationId> =
            order.shipments.iter().filter(|s| s.status != ShipmentStatus::Cancelled).map(|s| s.reservation).collect();
        reservations.sort_unstable();
        reservations.dedup();
        let members = self.group(order);
        let shipments: Vec<(ShipmentId, ShipmentStatus, crate::ids::WarehouseId)> = order
            .shipments
            .iter()
            .filter(|s| s.status != ShipmentStatus::Cancelled)
            .map(|s| (s.id, s.status, s.warehouse))
            .collect();
        for (shipment, from, warehouse) in shipments {
            self.ready.remove(&(warehouse, shipment));
            out.push(Event::Order(OrderEvent::ShipmentStatusChanged {
                shipment,
                from,
                to: ShipmentStatus::Cancelled,
                at_ms: now,
            }));
        }
        if let Some(o) = self.orders.get_mut(&id) {
            for s in &mut o.shipments {
                s.status = ShipmentStatus::Cancelled;
            }
        }
        for member in &members {
            self.unpark(*member);
            if let Some(o) = self.orders.get_mut(member) {
                o.cancel_reason = Some(reason.to_owned());
            }
        }
        self.set_status(id, OrderStatus::Cancelled, now, out);
        for reservation in reservations {
            out.push(Event::Order(OrderEvent::ReleaseStock { order: id, reservation }));
        }
        Ok(Outcome::Changed)
    }

    fn unpark(&mut self, id: OrderId) {
        if let Some(o) = self.orders.get_mut(&id) {
            if let Some(at) = o.parked_cancel_at_ms.take() {
                self.deadlines.remove(&(at, id));
            }
            o.parked_since_ms = None;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_allocation(
        &mut self,
        now: TimeMs,
        id: OrderId,
        reservation: ReservationId,
        lines: &[Line],
        allocations: &[Allocation],
        after_sale: Option<super::AfterSaleId>,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        if order.merged_into.is_some() {
            return Err(EngineError::IllegalTransition { order: id, state: "merged", action: "allocate" });
        }
        if allocations.is_empty() || lines.is_empty() {
            return Err(EngineError::NoLines);
        }
        if let Some(i) = allocations.iter().position(|a| a.qty == 0) {
            return Err(EngineError::ZeroQuantity { line: i });
        }
        if let Some(i) = lines.iter().position(|l| l.qty == 0) {
            return Err(EngineError::ZeroQuantity { line: i });
        }
        if order.shipments.iter().any(|s| s.reservation == reservation) {
            return Err(EngineError::DuplicateReservation { id: reservation });
        }
        let members = self.group(order);
        match after_sale {
            None => {
                if !matches!(order.status, OrderStatus::Approved | OrderStatus::Allocated) {
                    return Err(illegal(order, "allocate"));
                }
                for line in lines {
                    let open: u32 = members
                        .iter()
                        .filter_map(|m| self.orders.get(m))
                        .flat_map(|o| o.lines.iter())
                        .filter(|l| l.sku == line.sku)
                        .map(|l| l.qty - l.allocated_qty)
                        .sum();
                    if line.qty > open {
                        return Err(EngineError::ExceedsOpen { order: id, sku: line.sku, requested: line.qty, open });
                    }
                }
            }
            Some(a) => {
                let request = order.after_sale(a).ok_or(EngineError::UnknownAfterSale { after_sale: a })?;
                let ready = request.kind == super::AfterSaleKind::Exchange
                    && request.status == super::AfterSaleStatus::Received
                    && request.replacement.is_none();
                if !ready {
                    return Err(EngineError::IllegalTransition {
                        order: id,
                        state: "after_sale_not_awaiting_replacement",
                        action: "allocate",
                    });
                }
            }
        }
        // One shipment per warehouse, in order of first appearance.
        let mut warehouses: Vec<crate::ids::WarehouseId> = Vec::new();
        for a in allocations {
            if !warehouses.contains(&a.warehouse) {
                warehouses.push(a.warehouse);
            }
        }
        if usize::from(order.next_shipment) + warehouses.len() > usize::from(SHIPMENT_CHILD_LIMIT) {
            return Err(EngineError::InvalidOrder { order: id, reason: "too many shipments" });
        }
        let (province, cod) = (order.address.province.clone(), order.cash_on_delivery);

        // Commit: line allocation first (in line order over the group), then shipments.
        if after_sale.is_none() {
            for line in lines {
                let mut left = line.qty;
                for member in &members {
                    let Some(o) = self.orders.get_mut(member) else { continue };
                    for l in o.lines.iter_mut().filter(|l| l.sku == line.sku) {
                        let take = left.min(l.qty - l.allocated_qty);
                        l.allocated_qty += take;
                        left -= take;
                    }
                }
                debug_assert_eq!(left, 0);
            }
        }
        let mut created = Vec::with_capacity(warehouses.len());
        for warehouse in warehouses {
            let items: Vec<Allocation> = allocations.iter().copied().filter(|a| a.warehouse == warehouse).collect();
            let default_weight = self.carriers.default_weight_g;
            let weight_g = items
                .iter()
                .map(|a| a.qty.saturating_mul(self.weights.get(&a.sku).copied().unwrap_or(default_weight)))
                .fold(0u32, u32::saturating_add);
            let carrier = self.carriers.choose(&province, weight_g, cod).map(|c| c.code.clone());
            let Some(o) = self.orders.get_mut(&id) else { unreachable!("checked above") };
            o.next_shipment += 1;
            let shipment = (id << 8) | u64::from(o.next_shipment);
            o.shipments.push(Shipment {
                id: shipment,
                warehouse,
                reservation,
                items,
                status: ShipmentStatus::Allocated,
                wave: None,
                carrier: carrier.clone(),
                waybill: None,
                weight_g,
                after_sale,
                created_at_ms: now,
                shipped_at_ms: None,
                delivered_at_ms: None,
                last_progress_ms: now,
                tracking: Vec::new(),
                alerts: 0,
                channel_confirmed_at_ms: None,
            });
            self.ready.insert((warehouse, shipment));
            created.push(shipment);
            out.push(Event::Order(OrderEvent::ShipmentCreated {
                order: id,
                shipment,
                warehouse,
                reservation,
                carrier,
                at_ms: now,
            }));
        }
        match after_sale {
            Some(a) => {
                if let Some(request) =
                    self.orders.get_mut(&id).and_then(|o| o.after_sales.iter_mut().find(|r| r.id == a))
                {
                    request.replacement = created.first().copied();
                }
            }
            None => {
                let order = &self.orders[&id];
                if self.group_fully_allocated(order) {
                    for member in &members {
                        self.unpark(*member);
                    }
                }
                if self.orders[&id].status == OrderStatus::Approved {
                    self.set_status(id, OrderStatus::Allocated, now, out);
                }
            }
        }
        Ok(Outcome::Changed)
    }

    fn park(
        &mut self,
        now: TimeMs,
        id: OrderId,
        cancel_at_ms: Option<TimeMs>,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        let open = !self.group_fully_allocated(order);
        if !matches!(order.status, OrderStatus::Approved | OrderStatus::Allocated)
            || !open
            || order.merged_into.is_some()
        {
            return Err(illegal(order, "park"));
        }
        if order.parked_since_ms.is_some() && order.parked_cancel_at_ms == cancel_at_ms {
            return Ok(Outcome::Unchanged);
        }
        let since = order.parked_since_ms.unwrap_or(now);
        self.unpark(id);
        if let Some(o) = self.orders.get_mut(&id) {
            o.parked_since_ms = Some(since);
            o.parked_cancel_at_ms = cancel_at_ms;
            o.updated_at_ms = now;
        }
        if let Some(at) = cancel_at_ms {
            self.deadlines.insert((at, id));
        }
        out.push(Event::Order(OrderEvent::Parked { order: id, cancel_at_ms, at_ms: now }));
        Ok(Outcome::Changed)
    }

    fn merge(&mut self, now: TimeMs, orders: &[OrderId], out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let Some((&primary, followers)) = orders.split_first() else { return Err(EngineError::NoLines) };
        if followers.is_empty() {
            return Err(EngineError::InvalidOrder { order: primary, reason: "merge needs at least two orders" });
        }
        let window = self.routing.merge_window_ms;
        if window == 0 {
            return Err(EngineError::InvalidOrder {
                order: primary,
                reason: "merging is disabled (routing.merge_window_ms = 0)",
            });
        }
        let lead = self.order_ref(primary)?;
        let key = lead.merge_key();
        let mergeable = |o: &Order| {
            o.status == OrderStatus::Approved
                && o.shipments.is_empty()
                && o.merged_into.is_none()
                && o.parked_since_ms.is_none()
        };
        if !mergeable(lead) {
            return Err(illegal(lead, "merge"));
        }
        let mut lines = lead.lines.len();
        for (i, &f) in followers.iter().enumerate() {
            if f == primary || followers[..i].contains(&f) {
                return Err(EngineError::InvalidOrder { order: f, reason: "listed twice" });
            }
            // A follower must live in this partition (orders are partitioned by id); one that is
            // elsewhere is unknown here.
            let o = self.orders.get(&f).ok_or(EngineError::UnknownOrder { order: f })?;
            if !mergeable(o) || !o.merged.is_empty() {
                return Err(illegal(o, "merge"));
            }
            if o.merge_key() != key {
                return Err(EngineError::InvalidOrder { order: f, reason: "different buyer, shop or address" });
            }
            if o.created_at_ms.abs_diff(lead.created_at_ms) > window {
                return Err(EngineError::InvalidOrder { order: f, reason: "outside the merge window" });
            }
            lines += o.lines.len();
        }
        if lines + lead.merged.iter().filter_map(|m| self.orders.get(m)).map(|o| o.lines.len()).sum::<usize>()
            > ORDER_LINES_LIMIT
        {
            return Err(EngineError::TooManyLines { lines, limit: ORDER_LINES_LIMIT });
        }
        for &f in followers {
            if let Some(o) = self.orders.get_mut(&f) {
                o.merged_into = Some(primary);
                o.updated_at_ms = now;
            }
        }
        if let Some(o) = self.orders.get_mut(&primary) {
            o.merged.extend_from_slice(followers);
            o.updated_at_ms = now;
        }
        out.push(Event::Order(OrderEvent::Merged { primary, followers: followers.to_vec(), at_ms: now }));
        Ok(Outcome::Changed)
    }

    fn split(&mut self, now: TimeMs, id: OrderId, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let order = self.order_ref(id)?;
        if order.merged.is_empty() || !order.shipments.is_empty() {
            return Err(EngineError::IllegalTransition { order: id, state: order.status.name(), action: "split" });
        }
        let followers = order.merged.clone();
        for f in &followers {
            if let Some(o) = self.orders.get_mut(f) {
                o.merged_into = None;
                o.updated_at_ms = now;
            }
        }
        if let Some(o) = self.orders.get_mut(&id) {
            o.merged.clear();
            o.updated_at_ms = now;
        }
        out.push(Event::Order(OrderEvent::Split { primary: id, followers, at_ms: now }));
        Ok(Outcome::Changed)
    }

    /// The order side of `Tick`: cancel parked orders past their deadline and raise tracking
    /// alerts that are due, at most `budget` of each. Answers whether anything changed.
    pub(crate) fn tick(&mut self, now: TimeMs, budget: u32, out: &mut Vec<Event>) -> bool {
        let mut changed = false;
        let due: Vec<(TimeMs, OrderId)> =
            self.deadlines.iter().take_while(|(at, _)| *at <= now).take(budget as usize).copied().collect();
        for (at, id) in due {
            self.deadlines.remove(&(at, id));
            changed = true;
            let mark = out.len();
            if self.cancel(now, id, "unfillable", out).is_err() {
                out.truncate(mark);
                // Something already left: keep the order, drop the deadline.
                if let Some(o) = self.orders.get_mut(&id) {
                    o.parked_cancel_at_ms = None;
                }
            }
        }
        let due: Vec<(TimeMs, u64, u8)> =
            self.watch.iter().take_while(|(at, _, _)| *at <= now).take(budget as usize).copied().collect();
        for (at, shipment, bit) in due {
            self.watch.remove(&(at, shipment, bit));
            changed = true;
            let order = super::model::parent_order(shipment);
            let Some(s) = self.orders.get_mut(&order).and_then(|o| o.shipments.iter_mut().find(|s| s.id == shipment))
            else {
                continue;
            };
            if s.status != ShipmentStatus::Shipped || s.alerts & bit != 0 {
                continue;
            }
            s.alerts |= bit;
            let kind = if bit == 1 { super::AlertKind::NoProgress } else { super::AlertKind::Late };
            out.push(Event::Order(OrderEvent::Alert { shipment, kind, at_ms: now }));
        }
        changed
    }
}

use super::model::ShipmentId;

/// The order lines of a new order (or a revision's), each with its share of the goods payment:
/// the channel's own per-line payments when it gives them all and they add up, otherwise the
/// discount allocated pro rata to the list amounts.
pub(super) fn priced_lines(new: &NewOrder) -> Vec<OrderLine> {
    let goods = new.paid_cents - new.shipping_cents;
    let channel_split: Option<Vec<i64>> = new.lines.iter().map(|l| l.paid_cents).collect();
    let amounts = match channel_split {
        Some(split) if split.iter().all(|c| *c >= 0) && split.iter().sum::<i64>() == goods => split,
        _ => pricing::allocate_pro_rata(goods, &new.lines.iter().map(|l| l.list_cents).collect::<Vec<_>>()),
    };
    new.lines
        .iter()
        .zip(amounts)
        .map(|(l, allocated_cents)| OrderLine {
            sku: l.sku,
            sku_code: l.sku_code.clone(),
            qty: l.qty,
            list_cents: l.list_cents,
            allocated_cents,
            allocated_qty: 0,
            claimed_qty: 0,
            refunded_cents: 0,
        })
        .collect()
}

pub(super) fn validate_new(new: &NewOrder) -> Result<(), EngineError> {
    let id = new.id;
    if new.lines.is_empty() {
        return Err(EngineError::NoLines);
    }
    if new.lines.len() > ORDER_LINES_LIMIT {
        return Err(EngineError::TooManyLines { lines: new.lines.len(), limit: ORDER_LINES_LIMIT });
    }
    if new.external_id.is_empty() || new.external_id.len() > 128 {
        return Err(EngineError::InvalidOrder { order: id, reason: "external id must be 1..=128 bytes" });
    }
    for text in [
        &new.shop,
        &new.buyer,
        &new.remark,
        &new.address.name,
        &new.address.phone,
        &new.address.province,
        &new.address.city,
        &new.address.district,
        &new.address.detail,
        &new.address.zip,
    ] {
        check_text(id, text, "a text field exceeds 1024 bytes")?;
    }
    let mut list_total: i64 = 0;
    for (i, line) in new.lines.iter().enumerate() {
        if line.qty == 0 {
            return Err(EngineError::ZeroQuantity { line: i });
        }
        if line.list_cents < 0 || line.paid_cents.is_some_and(|c| c < 0) {
            return Err(EngineError::InvalidOrder { order: id, reason: "negative line amount" });
        }
        check_text(id, &line.sku_code, "SKU code too long")?;
        list_total = list_total
            .checked_add(line.list_cents)
            .ok_or(EngineError::InvalidOrder { order: id, reason: "amount overflow" })?;
    }
    if new.shipping_cents < 0 || new.paid_cents < new.shipping_cents {
        return Err(EngineError::InvalidOrder { order: id, reason: "paid must cover shipping, shipping >= 0" });
    }
    if new.paid_cents - new.shipping_cents > list_total {
        return Err(EngineError::InvalidOrder { order: id, reason: "paid exceeds list total plus shipping" });
    }
    Ok(())
}
