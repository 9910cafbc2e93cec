//! Fulfilment: pick waves and the scan check, packing (waybill numbers), shipping, delivery,
//! tracking, and after-sales (returns, exchanges, refunds).

use super::model::{
    parent_order, AfterSale, AfterSaleKind, AfterSaleLine, AfterSaleStatus, OrderId, OrderStatus, PickItem, ShipmentId,
    ShipmentStatus, Wave, WaveId, SHIPMENT_CHILD_LIMIT,
};
use super::{pricing, AlertKind, OrderBook, OrderEvent, TEXT_LIMIT, TRACKING_LIMIT, WAVE_LIMIT};
use crate::command::Line;
use crate::error::EngineError;
use crate::event::Event;
use crate::ids::{SkuId, TimeMs, WarehouseId};
use crate::partition::Outcome;

/// The smallest number `>= from` in partition `index`'s stripe (`n % partitions == index`), or
/// `None` past `u64::MAX`. The stripe is by absolute residue, not by offset from `range_start`, so
/// numbers stay unique across partitions even when a reload moves the range.
fn striped(from: u64, index: u32, partitions: u32) -> Option<u64> {
    let partitions = u64::from(partitions.max(1));
    let index = u64::from(index) % partitions;
    let offset = (index + partitions - from % partitions) % partitions;
    from.checked_add(offset)
}

/// Where returned units of `sku` go back: the warehouse that shipped them (the first delivered
/// shipment holding the SKU, else the first delivered shipment, else the first shipment).
/// Reconciliation recomputes it, so it depends only on the order.
pub(crate) fn return_warehouse(o: &super::model::Order, sku: SkuId) -> Option<WarehouseId> {
    let delivered = || o.shipments.iter().filter(|s| s.status == ShipmentStatus::Delivered && s.after_sale.is_none());
    delivered()
        .find(|s| s.items.iter().any(|a| a.sku == sku))
        .or_else(|| delivered().next())
        .or_else(|| o.shipments.first())
        .map(|s| s.warehouse)
}

/// Units on a wave's pick list not scanned yet.
fn unscanned(w: &Wave) -> u32 {
    w.pick_list.iter().map(|p| p.qty - p.picked).fold(0u32, u32::saturating_add)
}

fn illegal_shipment(s: &super::model::Shipment, action: &'static str) -> EngineError {
    EngineError::ShipmentTransition { shipment: s.id, state: s.status.name(), action }
}

impl OrderBook {
    /// Find a shipment: its order id and index.
    fn locate(&self, shipment: ShipmentId) -> Result<(OrderId, usize), EngineError> {
        let order = parent_order(shipment);
        self.orders
            .get(&order)
            .and_then(|o| o.shipments.iter().position(|s| s.id == shipment))
            .map(|i| (order, i))
            .ok_or(EngineError::UnknownShipment { shipment })
    }

    fn set_shipment_status(&mut self, order: OrderId, i: usize, to: ShipmentStatus, now: TimeMs, out: &mut Vec<Event>) {
        let Some(s) = self.orders.get_mut(&order).and_then(|o| o.shipments.get_mut(i)) else { return };
        let from = s.status;
        s.status = to;
        out.push(Event::Order(OrderEvent::ShipmentStatusChanged { shipment: s.id, from, to, at_ms: now }));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_wave(
        &mut self,
        now: TimeMs,
        wave: WaveId,
        warehouse: WarehouseId,
        carrier: Option<&str>,
        max_shipments: u32,
        cutoff_ms: Option<TimeMs>,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        if self.waves.contains_key(&wave) {
            return Err(EngineError::DuplicateWave { wave });
        }
        if max_shipments == 0 || max_shipments > WAVE_LIMIT {
            return Err(EngineError::InvalidWave { wave, reason: "max_shipments must be 1..=10000" });
        }
        let mut chosen: Vec<(OrderId, usize)> = Vec::new();
        let start = (warehouse, 0);
        for &(w, shipment) in self.ready.range(start..) {
            if w != warehouse || chosen.len() as u32 >= max_shipments {
                break;
            }
            let (order, i) = self.locate(shipment)?;
            let s = &self.orders[&order].shipments[i];
            debug_assert_eq!(s.status, ShipmentStatus::Allocated);
            if carrier.is_some_and(|c| s.carrier.as_deref() != Some(c)) {
                continue;
            }
            if cutoff_ms.is_some_and(|cutoff| s.created_at_ms > cutoff) {
                continue;
            }
            chosen.push((order, i));
        }
        if chosen.is_empty() {
            return Err(EngineError::NothingToWave { warehouse });
        }
        // The pick list: units per SKU, sorted along the S-shaped walk; SKUs without a bin last.
        let mut pick: Vec<PickItem> = Vec::new();
        for &(order, i) in &chosen {
            for item in &self.orders[&order].shipments[i].items {
                match pick.iter_mut().find(|p| p.sku == item.sku) {
                    Some(p) => p.qty += item.qty,
                    None => pick.push(PickItem {
                        sku: item.sku,
                        qty: item.qty,
                        picked: 0,
                        bin: self.bin(warehouse, item.sku),
                    }),
                }
            }
        }
        pick.sort_by_key(|p| (p.bin.is_none(), p.bin.map(|b| b.walk_key()), p.sku));
        let mut shipments = Vec::with_capacity(chosen.len());
        let mut orders: Vec<OrderId> = Vec::new();
        for (order, i) in chosen {
            let id = self.orders[&order].shipments[i].id;
            self.ready.remove(&(warehouse, id));
            if let Some(s) = self.orders.get_mut(&order).map(|o| &mut o.shipments[i]) {
                s.wave = Some(wave);
            }
            self.set_shipment_status(order, i, ShipmentStatus::Waved, now, out);
            shipments.push(id);
            if !orders.contains(&order) {
                orders.push(order);
            }
        }
        for order in orders {
            self.refresh_status(order, now, out);
        }
        out.push(Event::Order(OrderEvent::WaveCreated { wave, warehouse, shipments: shipments.clone(), at_ms: now }));
        self.waves.insert(
            wave,
            Wave {
                id: wave,
                warehouse,
                carrier: carrier.map(str::to_owned),
                shipments,
                pick_list: pick,
                created_at_ms: now,
                picked: false,
            },
        );
        Ok(Outcome::Changed)
    }

    pub(super) fn scan_pick(
        &mut self,
        now: TimeMs,
        wave: WaveId,
        sku: SkuId,
        qty: u32,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let w = self.waves.get(&wave).ok_or(EngineError::UnknownWave { wave })?;
        let item = w.pick_list.iter().position(|p| p.sku == sku).ok_or(EngineError::WrongSku { wave, sku })?;
        let remaining = w.pick_list[item].qty - w.pick_list[item].picked;
        if qty == 0 {
            return Err(EngineError::ZeroQuantity { line: item });
        }
        if qty > remaining {
            return Err(EngineError::OverPick { wave, sku, requested: qty, remaining });
        }
        let Some(w) = self.waves.get_mut(&wave) else { unreachable!("checked above") };
        w.pick_list[item].picked += qty;
        out.push(Event::Order(OrderEvent::Picked { wave, sku, qty, at_ms: now }));
        if w.pick_list.iter().all(|p| p.picked == p.qty) {
            w.picked = true;
            let shipments = w.shipments.clone();
            for shipment in shipments {
                if let Ok((order, i)) = self.locate(shipment) {
                    if self.orders[&order].shipments[i].status == ShipmentStatus::Waved {
                        self.set_shipment_status(order, i, ShipmentStatus::Picked, now, out);
                    }
                }
            }
        }
        Ok(Outcome::Changed)
    }

    /// A supervisor releases a wave for packing without a complete scan; its waved shipments
    /// become picked. Who and why are kept on the book and in the event.
    pub(super) fn override_pick(
        &mut self,
        now: TimeMs,
        wave: WaveId,
        supervisor: &str,
        reason: &str,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let w = self.waves.get(&wave).ok_or(EngineError::UnknownWave { wave })?;
        if supervisor.trim().is_empty() || supervisor.len() > 128 {
            return Err(EngineError::InvalidWave { wave, reason: "an override names its supervisor (1..=128 bytes)" });
        }
        if reason.trim().is_empty() || reason.len() > TEXT_LIMIT {
            return Err(EngineError::InvalidWave { wave, reason: "an override needs a reason (1..=1024 bytes)" });
        }
        if w.picked || self.overrides.contains_key(&wave) {
            return Err(EngineError::InvalidWave { wave, reason: "already picked or released" });
        }
        let unscanned = unscanned(w);
        let shipments = w.shipments.clone();
        self.overrides.insert(
            wave,
            super::PickOverride { supervisor: supervisor.to_owned(), reason: reason.to_owned(), unscanned, at_ms: now },
        );
        out.push(Event::Order(OrderEvent::PickOverridden {
            wave,
            supervisor: supervisor.to_owned(),
            reason: reason.to_owned(),
            unscanned,
            at_ms: now,
        }));
        for shipment in shipments {
            if let Ok((order, i)) = self.locate(shipment) {
                if self.orders[&order].shipments[i].status == ShipmentStatus::Waved {
                    self.set_shipment_status(order, i, ShipmentStatus::Picked, now, out);
                }
            }
        }
        Ok(Outcome::Changed)
    }

    /// Pack a waved shipment and issue its waybill number from the carrier's range. Partition
    /// `index` of `partitions` issues only the numbers `n` with `n % partitions == index`, so
    /// partitions never issue the same number without talking to each other, and replay issues the
    /// same ones.
    pub(super) fn pack(
        &mut self,
        now: TimeMs,
        index: u32,
        partitions: u32,
        shipment: ShipmentId,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let (order, i) = self.locate(shipment)?;
        let s = &self.orders[&order].shipments[i];
        if !matches!(s.status, ShipmentStatus::Waved | ShipmentStatus::Picked) {
            return Err(illegal_shipment(s, "pack"));
        }
        // Nothing leaves unpicked: a waved shipment waits until its wave's list is scanned
        // complete (which moves it to picked) or a supervisor releases the wave.
        if s.status == ShipmentStatus::Waved {
            let wave = s.wave.unwrap_or(0);
            if !self.overrides.contains_key(&wave) {
                let unscanned = self.waves.get(&wave).map_or(0, unscanned);
                return Err(EngineError::NotPicked { shipment, wave, unscanned });
            }
        }
        let code = s.carrier.clone().ok_or(EngineError::NoCarrier { shipment })?;
        let carrier =
            self.carriers.carriers.iter().find(|c| c.code == code).ok_or(EngineError::NoCarrier { shipment })?;
        let number = self.waybill_next.get(&code).copied().unwrap_or(carrier.range_start).max(carrier.range_start);
        let number = striped(number, index, partitions)
            .filter(|n| *n <= carrier.range_end)
            .ok_or_else(|| EngineError::WaybillRangeExhausted { carrier: code.clone() })?;
        let waybill = format!("{}{}", carrier.prefix, number);
        // Rules keep range_end below u64::MAX, so this cannot wrap. The key is allocated only for a
        // carrier's first waybill.
        match self.waybill_next.get_mut(&code) {
            Some(next) => *next = number.saturating_add(1),
            None => drop(self.waybill_next.insert(code.clone(), number.saturating_add(1))),
        }
        if let Some(s) = self.orders.get_mut(&order).map(|o| &mut o.shipments[i]) {
            s.waybill = Some(waybill.clone());
        }
        out.push(Event::Order(OrderEvent::WaybillIssued { shipment, carrier: code, waybill }));
        self.set_shipment_status(order, i, ShipmentStatus::Packed, now, out);
        self.refresh_status(order, now, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn ship(
        &mut self,
        now: TimeMs,
        shipment: ShipmentId,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let (order, i) = self.locate(shipment)?;
        let s = &self.orders[&order].shipments[i];
        if s.status != ShipmentStatus::Packed {
            return Err(illegal_shipment(s, "ship"));
        }
        let reservation = s.reservation;
        let after_sale = s.after_sale;
        self.set_shipment_status(order, i, ShipmentStatus::Shipped, now, out);
        let o = self.orders.get_mut(&order).expect("located");
        let s = &mut o.shipments[i];
        s.shipped_at_ms = Some(now);
        s.last_progress_ms = now;
        let watched = (s.id, s.last_progress_ms, s.shipped_at_ms, s.alerts);
        // The stock leaves the reservation when the last shipment holding it leaves.
        let all_left = o
            .shipments
            .iter()
            .filter(|s| s.reservation == reservation)
            .all(|s| matches!(s.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered));
        if let Some(a) = after_sale.and_then(|a| o.after_sales.iter_mut().find(|r| r.id == a)) {
            a.status = AfterSaleStatus::Closed;
        }
        self.watch_parts(watched.0, watched.1, watched.2, watched.3);
        let o = &self.orders[&order];
        if super::awaits_channel_confirmation(o.channel, &o.shipments[i]) {
            self.unconfirmed.insert(shipment);
        }
        if all_left {
            out.push(Event::Order(OrderEvent::ShipStock { order, reservation }));
        }
        self.refresh_status(order, now, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn deliver(
        &mut self,
        now: TimeMs,
        shipment: ShipmentId,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let (order, i) = self.locate(shipment)?;
        let s = &self.orders[&order].shipments[i];
        if s.status != ShipmentStatus::Shipped {
            return Err(illegal_shipment(s, "deliver"));
        }
        let snapshot = s.clone();
        self.unwatch_shipment(&snapshot);
        let sla = self.carriers.delivery_sla_ms;
        self.set_shipment_status(order, i, ShipmentStatus::Delivered, now, out);
        let s = &mut self.orders.get_mut(&order).expect("located").shipments[i];
        s.delivered_at_ms = Some(now);
        s.last_progress_ms = now;
        let late = sla > 0 && s.alerts & 2 == 0 && s.shipped_at_ms.is_some_and(|at| now > at.saturating_add(sla));
        if late {
            s.alerts |= 2;
            out.push(Event::Order(OrderEvent::Alert { shipment, kind: AlertKind::Late, at_ms: now }));
        }
        self.refresh_status(order, now, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn track(
        &mut self,
        now: TimeMs,
        shipment: ShipmentId,
        code: &str,
        location: &str,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let (order, i) = self.locate(shipment)?;
        let s = &self.orders[&order].shipments[i];
        if !matches!(s.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered) {
            return Err(illegal_shipment(s, "track"));
        }
        if code.is_empty() || code.len() > 64 || location.len() > TEXT_LIMIT {
            return Err(EngineError::InvalidOrder { order, reason: "tracking code must be 1..=64 bytes" });
        }
        let shipped = s.status == ShipmentStatus::Shipped;
        let snapshot = s.clone();
        if shipped {
            self.unwatch_shipment(&snapshot);
        }
        let s = &mut self.orders.get_mut(&order).expect("located").shipments[i];
        s.last_progress_ms = now;
        s.tracking.push(super::model::TrackEvent { at_ms: now, code: code.to_owned(), location: location.to_owned() });
        if s.tracking.len() > TRACKING_LIMIT {
            s.tracking.remove(0);
        }
        let updated = s.clone();
        out.push(Event::Order(OrderEvent::Tracked { shipment, code: code.to_owned(), at_ms: now }));
        if shipped {
            self.watch_shipment(&updated);
            if code == "delivered" {
                return self.deliver(now, shipment, out);
            }
        }
        Ok(Outcome::Changed)
    }

    pub(super) fn create_after_sale(
        &mut self,
        now: TimeMs,
        order: OrderId,
        kind: AfterSaleKind,
        lines: &[Line],
        reason: &str,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let o = self.orders.get(&order).ok_or(EngineError::UnknownOrder { order })?;
        if !matches!(o.status, OrderStatus::Delivered | OrderStatus::Completed) {
            return Err(EngineError::IllegalTransition {
                order,
                state: o.status.name(),
                action: "create after-sales request",
            });
        }
        if reason.len() > TEXT_LIMIT {
            return Err(EngineError::InvalidOrder { order, reason: "reason too long" });
        }
        crate::routing::validate_lines(lines, super::ORDER_LINES_LIMIT)?;
        if u16::from(o.next_after_sale) + u16::from(SHIPMENT_CHILD_LIMIT) + 1 > 255 {
            return Err(EngineError::InvalidOrder { order, reason: "too many after-sales requests" });
        }
        // Units may be claimed once each, from what was allocated (and so delivered).
        let mut refunds = Vec::with_capacity(lines.len());
        for line in lines {
            let claimable: u32 =
                o.lines.iter().filter(|l| l.sku == line.sku).map(|l| l.allocated_qty - l.claimed_qty).sum();
            if line.qty > claimable {
                return Err(EngineError::ExceedsClaimable { order, sku: line.sku, requested: line.qty, claimable });
            }
            let mut left = line.qty;
            let mut refund = 0;
            for l in o.lines.iter().filter(|l| l.sku == line.sku) {
                let take = left.min(l.allocated_qty - l.claimed_qty);
                if take > 0 {
                    refund += pricing::refund_share(l.allocated_cents, l.qty, l.claimed_qty, take);
                }
                left -= take;
            }
            refunds.push(AfterSaleLine { sku: line.sku, qty: line.qty, refund_cents: refund });
        }
        let o = self.orders.get_mut(&order).expect("checked");
        for line in lines {
            let mut left = line.qty;
            for l in o.lines.iter_mut().filter(|l| l.sku == line.sku) {
                let take = left.min(l.allocated_qty - l.claimed_qty);
                l.claimed_qty += take;
                left -= take;
            }
        }
        o.next_after_sale += 1;
        let id = (order << 8) | u64::from(SHIPMENT_CHILD_LIMIT + o.next_after_sale);
        let status = if kind == AfterSaleKind::Refund { AfterSaleStatus::Closed } else { AfterSaleStatus::Requested };
        let request = AfterSale {
            id,
            kind,
            lines: refunds,
            reason: reason.to_owned(),
            status,
            created_at_ms: now,
            damaged: false,
            replacement: None,
        };
        let refund_cents = request.refund_cents();
        o.updated_at_ms = now;
        o.after_sales.push(request);
        out.push(Event::Order(OrderEvent::AfterSaleCreated { order, after_sale: id, kind, refund_cents, at_ms: now }));
        if kind == AfterSaleKind::Refund {
            self.refund(order, id, now, out);
        }
        Ok(Outcome::Changed)
    }

    /// Book the refund of an after-sales request on its order lines.
    fn refund(&mut self, order: OrderId, after_sale: u64, now: TimeMs, out: &mut Vec<Event>) {
        let Some(o) = self.orders.get_mut(&order) else { return };
        let Some(request) = o.after_sales.iter().find(|a| a.id == after_sale).cloned() else { return };
        for line in &request.lines {
            if let Some(l) = o.lines.iter_mut().find(|l| l.sku == line.sku) {
                l.refunded_cents += line.refund_cents;
            }
        }
        out.push(Event::Order(OrderEvent::Refunded { order, after_sale, cents: request.refund_cents(), at_ms: now }));
    }

    pub(super) fn receive_return(
        &mut self,
        now: TimeMs,
        after_sale: u64,
        damaged: bool,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let order = parent_order(after_sale);
        let o = self.orders.get(&order).ok_or(EngineError::UnknownAfterSale { after_sale })?;
        let request = o.after_sale(after_sale).ok_or(EngineError::UnknownAfterSale { after_sale })?;
        if request.status != AfterSaleStatus::Requested || request.kind == AfterSaleKind::Refund {
            return Err(EngineError::IllegalTransition {
                order,
                state: "after_sale_not_awaiting_goods",
                action: "receive",
            });
        }
        let mut effects = Vec::with_capacity(request.lines.len());
        for line in &request.lines {
            let warehouse = return_warehouse(o, line.sku).ok_or(EngineError::IllegalTransition {
                order,
                state: "nothing_delivered",
                action: "receive",
            })?;
            effects.push(OrderEvent::ReturnStock {
                order,
                after_sale,
                sku: line.sku,
                warehouse,
                qty: line.qty,
                damaged,
            });
        }
        let kind = request.kind;
        let lines: Vec<Line> = request.lines.iter().map(|l| Line { sku: l.sku, qty: l.qty }).collect();
        let o = self.orders.get_mut(&order).expect("checked");
        o.updated_at_ms = now;
        if let Some(r) = o.after_sales.iter_mut().find(|a| a.id == after_sale) {
            r.damaged = damaged;
            r.status = if kind == AfterSaleKind::Return { AfterSaleStatus::Closed } else { AfterSaleStatus::Received };
        }
        out.push(Event::Order(OrderEvent::AfterSaleReceived { after_sale, damaged, at_ms: now }));
        out.extend(effects.into_iter().map(Event::Order));
        match kind {
            AfterSaleKind::Return => self.refund(order, after_sale, now, out),
            AfterSaleKind::Exchange => {
                out.push(Event::Order(OrderEvent::ReplacementNeeded { order, after_sale, lines }));
            }
            AfterSaleKind::Refund => unreachable!("refused above"),
        }
        Ok(Outcome::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::striped;

    #[test]
    fn stripes_partition_the_numbers() {
        assert_eq!(striped(1000, 0, 1), Some(1000));
        assert_eq!(striped(1000, 0, 2), Some(1000));
        assert_eq!(striped(1000, 1, 2), Some(1001));
        assert_eq!(striped(1001, 0, 2), Some(1002));
        assert_eq!(striped(7, 2, 4), Some(10));
        assert_eq!(striped(u64::MAX, 0, 2), None, "u64::MAX is odd: no even number above it");
        assert_eq!(striped(u64::MAX, 1, 2), Some(u64::MAX));
    }
}
