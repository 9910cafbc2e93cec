//! Flash-sale pools, presales (deposit + balance) and the purchase orders that presales sell against.

use super::{Outcome, Partition};
use crate::campaign::{Campaign, CampaignKind};
use crate::command::{FlashSaleSpec, PresaleSpec, ReserveRequest};
use crate::error::EngineError;
use crate::event::{Allocation, Event, MovementKind};
use crate::ids::{PurchaseOrderId, SkuId, TimeMs, WarehouseId};
use crate::reservation::{Allocations, HoldState, PresaleHold, Reservation};
use crate::stock::Incoming;

impl Partition {
    /// Carve the pool out of available stock now, so the sale cannot be oversold by general traffic.
    pub(super) fn create_flash_sale(
        &mut self,
        now: TimeMs,
        spec: &FlashSaleSpec,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let state = self.stocked_sku(spec.sku, "run a flash sale")?;
        validate_window(spec.id, spec.pool_qty, spec.per_customer_limit, spec.starts_at_ms, spec.ends_at_ms, now)?;
        if self.campaigns.contains_key(&spec.id) {
            return Err(EngineError::DuplicateCampaign { campaign: spec.id });
        }
        let available = state.available();
        if available < u64::from(spec.pool_qty) {
            return Err(EngineError::InsufficientStock {
                sku: spec.sku,
                requested: u64::from(spec.pool_qty),
                available,
            });
        }
        let mut cells: Vec<(std::cmp::Reverse<u64>, u16, WarehouseId)> = state
            .cells
            .iter()
            .filter(|(_, c)| c.available() > 0)
            .map(|(w, c)| (std::cmp::Reverse(c.available()), self.warehouse_priority(*w), *w))
            .collect();
        cells.sort_unstable();
        let mut needed = u64::from(spec.pool_qty);
        let mut pool = Vec::new();
        for (std::cmp::Reverse(available), _, warehouse) in cells {
            let take = available.min(needed);
            pool.push((warehouse, take));
            needed -= take;
            if needed == 0 {
                break;
            }
        }
        for &(warehouse, qty) in &pool {
            self.sku_mut(spec.sku).cell_mut(warehouse).pooled += qty;
            self.move_stock(spec.sku, warehouse, MovementKind::PooledForCampaign, qty, u64::from(spec.id.0), out);
        }
        self.campaigns.insert(spec.id, Campaign::flash_sale(spec, pool));
        out.push(Event::CampaignCreated { id: spec.id });
        self.after_sku_change(spec.sku, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn create_presale(&mut self, spec: &PresaleSpec, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        let state = self.stocked_sku(spec.sku, "run a presale")?;
        // A quota of 0 means "sell exactly what purchase orders bring".
        validate_window(spec.id, 1, spec.per_customer_limit, spec.starts_at_ms, spec.ends_at_ms, 0)?;
        if spec.balance_window_ms == 0 {
            return Err(EngineError::InvalidCampaign {
                campaign: spec.id,
                reason: "the balance window must be positive",
            });
        }
        if self.campaigns.contains_key(&spec.id) {
            return Err(EngineError::DuplicateCampaign { campaign: spec.id });
        }
        if state.presale.is_some() {
            return Err(EngineError::InvalidCampaign { campaign: spec.id, reason: "the SKU already has a presale" });
        }
        self.sku_mut(spec.sku).presale = Some(spec.id);
        self.campaigns.insert(spec.id, Campaign::presale(spec));
        out.push(Event::CampaignCreated { id: spec.id });
        Ok(Outcome::Changed)
    }

    /// A deposit: the units are promised against incoming stock, first come first served.
    pub(super) fn reserve_presale(
        &mut self,
        now: TimeMs,
        req: &ReserveRequest,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let Some(campaign_id) = req.campaign else {
            return Err(EngineError::NoLines);
        };
        let campaign =
            self.campaigns.get(&campaign_id).ok_or(EngineError::UnknownCampaign { campaign: campaign_id })?;
        let CampaignKind::Presale { quota, sold, balance_window_ms } = campaign.kind else {
            return Err(EngineError::UnknownCampaign { campaign: campaign_id });
        };
        let [line] = req.lines.as_slice() else {
            return Err(EngineError::TooManyLines { lines: req.lines.len(), limit: 1 });
        };
        if line.sku != campaign.sku {
            return Err(EngineError::CampaignSkuMismatch {
                campaign: campaign_id,
                expected: campaign.sku,
                found: line.sku,
            });
        }
        if !campaign.is_open(now) {
            return Err(EngineError::CampaignNotOpen {
                campaign: campaign_id,
                starts_at_ms: campaign.starts_at_ms,
                ends_at_ms: campaign.ends_at_ms,
                now_ms: now,
            });
        }
        let held = campaign.held_by(req.customer);
        if u64::from(held) + u64::from(line.qty) > u64::from(campaign.per_customer_limit) {
            return Err(EngineError::LimitExceeded {
                campaign: campaign_id,
                limit: campaign.per_customer_limit,
                held,
                requested: line.qty,
            });
        }
        let state = self.sku(line.sku)?;
        let capacity = if quota > 0 {
            u64::from(quota).saturating_sub(sold)
        } else {
            let promised: u64 = state.presale_queue.iter().map(|(_, q)| u64::from(*q)).sum();
            state.incoming_total().saturating_sub(promised)
        };
        if capacity == 0 {
            return Err(EngineError::SoldOut { campaign: campaign_id });
        }
        if capacity < u64::from(line.qty) {
            return Err(EngineError::InsufficientStock {
                sku: line.sku,
                requested: u64::from(line.qty),
                available: capacity,
            });
        }

        if let Some(c) = self.campaigns.get_mut(&campaign_id) {
            if let CampaignKind::Presale { sold, .. } = &mut c.kind {
                *sold += u64::from(line.qty);
            }
            c.add_customer_units(req.customer, line.qty);
            if c.remaining() == 0 && quota > 0 {
                out.push(Event::CampaignSoldOut { id: campaign_id });
            }
        }
        let expires_at_ms = now.saturating_add(balance_window_ms);
        self.sku_mut(line.sku).presale_queue.push_back((req.id, line.qty));
        self.book.insert(Reservation {
            id: req.id,
            customer: req.customer,
            channel: req.channel,
            campaign: Some(campaign_id),
            state: HoldState::DepositHeld,
            hold_ms: u32::try_from(balance_window_ms).unwrap_or(u32::MAX),
            expires_at_ms,
            fingerprint: req.fingerprint,
            allocations: Allocations::None,
            presale: Some(Box::new(PresaleHold { qty: line.qty, outstanding: line.qty, promise_ms: None })),
        });
        self.book.counters.accepted += 1;
        self.recompute_promises(line.sku, Some(req.id), out);
        let promise_ms = self.book.live.get(&req.id).and_then(|r| r.presale.as_ref()).and_then(|p| p.promise_ms);
        out.push(Event::Reserved {
            id: req.id,
            allocations: Allocations::None,
            expires_at_ms,
            replayed: false,
            promise_ms,
        });
        Ok(Outcome::Changed)
    }

    pub(super) fn pay_balance(
        &mut self,
        now: TimeMs,
        id: crate::ids::ReservationId,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let Some(reservation) = self.book.live.get(&id) else {
            return Err(self.not_live_error(id, "pay the balance"));
        };
        match reservation.state {
            HoldState::BalancePaid => Ok(Outcome::Unchanged),
            HoldState::DepositHeld if reservation.expires_at_ms <= now => {
                Err(EngineError::ReservationExpired { id, expired_at_ms: reservation.expires_at_ms })
            }
            HoldState::DepositHeld => {
                self.book.set_state(id, HoldState::BalancePaid, reservation.expires_at_ms);
                self.book.counters.confirmed += 1;
                out.push(Event::BalancePaid { id });
                Ok(Outcome::Changed)
            }
            state => Err(EngineError::InvalidReservationState { id, state: state.name(), action: "pay the balance" }),
        }
    }

    /// Forget a presale reservation's place in the queue and give back its quota.
    pub(super) fn drop_presale_hold(&mut self, reservation: &Reservation, out: &mut Vec<Event>) {
        let Some(presale) = &reservation.presale else {
            return;
        };
        let Some(campaign) = reservation.campaign.and_then(|c| self.campaigns.get_mut(&c)) else {
            return;
        };
        let was_sold_out = campaign.remaining() == 0;
        if let CampaignKind::Presale { sold, .. } = &mut campaign.kind {
            *sold -= u64::from(presale.qty);
        }
        if was_sold_out && campaign.remaining() > 0 {
            out.push(Event::CampaignRestocked { id: campaign.id, remaining: campaign.remaining() });
        }
        let sku = campaign.sku;
        let queue = &mut self.sku_mut(sku).presale_queue;
        queue.retain(|(id, _)| *id != reservation.id);
        self.recompute_promises(sku, None, out);
    }

    /// Promise dates follow arrival order over purchase orders sorted by ETA.
    fn recompute_promises(&mut self, sku: SkuId, fresh: Option<crate::ids::ReservationId>, out: &mut Vec<Event>) {
        let slot = crate::ids::local_index(sku, self.partitions);
        let Some(Some(state)) = self.skus.get(slot) else {
            return;
        };
        let mut orders = state.incoming.iter().map(|i| (i.eta_ms, u64::from(i.qty)));
        let mut current = orders.next();
        let mut promises = Vec::with_capacity(state.presale_queue.len());
        for &(id, outstanding) in &state.presale_queue {
            let mut needed = u64::from(outstanding);
            let mut promise = None;
            while needed > 0 {
                let Some((eta, left)) = current.as_mut() else {
                    break;
                };
                let take = (*left).min(needed);
                *left -= take;
                needed -= take;
                promise = Some(*eta);
                if *left == 0 {
                    current = orders.next();
                }
            }
            promises.push((id, if needed == 0 { promise } else { None }));
        }
        for (id, promise) in promises {
            let Some(hold) = self.book.live.get_mut(&id).and_then(|r| r.presale.as_mut()) else {
                continue;
            };
            if hold.promise_ms != promise {
                hold.promise_ms = promise;
                if fresh != Some(id) {
                    out.push(Event::PromiseChanged { id, promise_ms: promise });
                }
            }
        }
    }

    pub(super) fn expect_incoming(
        &mut self,
        po: PurchaseOrderId,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        eta_ms: TimeMs,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(warehouse)?;
        let state = self.stocked_sku(sku, "expect incoming stock")?;
        if qty == 0 {
            return Err(EngineError::ZeroQuantity { line: 0 });
        }
        if state.incoming.len() >= self.limits.max_lines.max(256) && !state.incoming.iter().any(|i| i.po == po) {
            return Err(EngineError::TooManyLines {
                lines: state.incoming.len() + 1,
                limit: self.limits.max_lines.max(256),
            });
        }
        let incoming = &mut self.sku_mut(sku).incoming;
        incoming.retain(|i| i.po != po);
        incoming.push(Incoming { po, warehouse, qty, eta_ms });
        incoming.sort_unstable_by_key(|i| (i.eta_ms, i.po));
        out.push(Event::IncomingExpected { po, sku, qty, eta_ms });
        self.recompute_promises(sku, None, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn reschedule_incoming(
        &mut self,
        po: PurchaseOrderId,
        sku: SkuId,
        eta_ms: TimeMs,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let state = self.stocked_sku(sku, "reschedule incoming stock")?;
        let Some(existing) = state.incoming.iter().find(|i| i.po == po).copied() else {
            return Err(EngineError::UnknownPurchaseOrder { po: po.0, sku });
        };
        if existing.eta_ms == eta_ms {
            return Ok(Outcome::Unchanged);
        }
        let incoming = &mut self.sku_mut(sku).incoming;
        for i in incoming.iter_mut().filter(|i| i.po == po) {
            i.eta_ms = eta_ms;
        }
        incoming.sort_unstable_by_key(|i| (i.eta_ms, i.po));
        out.push(Event::IncomingExpected { po, sku, qty: existing.qty, eta_ms });
        self.recompute_promises(sku, None, out);
        Ok(Outcome::Changed)
    }

    /// Stock arrived: it goes to the oldest presale holds first, the rest becomes available.
    pub(super) fn receive_purchase_order(
        &mut self,
        po: PurchaseOrderId,
        sku: SkuId,
        qty: u32,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let state = self.stocked_sku(sku, "receive a purchase order")?;
        let Some(expected) = state.incoming.iter().find(|i| i.po == po).copied() else {
            return Err(EngineError::UnknownPurchaseOrder { po: po.0, sku });
        };
        let warehouse = expected.warehouse;
        self.room_for(sku, warehouse, u64::from(qty))?;
        let state = self.sku_mut(sku);
        state.incoming.retain(|i| i.po != po);
        if qty > 0 {
            state.cell_mut(warehouse).on_hand += u64::from(qty);
            self.move_stock(sku, warehouse, MovementKind::Received, u64::from(qty), po.0, out);
        }
        let mut left = u64::from(qty);
        while left > 0 {
            let state = self.sku_mut(sku);
            let Some(&(id, outstanding)) = state.presale_queue.front() else {
                break;
            };
            let take = left.min(u64::from(outstanding)) as u32;
            if take == outstanding {
                state.presale_queue.pop_front();
            } else if let Some(front) = state.presale_queue.front_mut() {
                front.1 -= take;
            }
            state.cell_mut(warehouse).reserved += u64::from(take);
            left -= u64::from(take);
            if let Some(r) = self.book.live.get_mut(&id) {
                r.allocations.push(Allocation { sku, warehouse, qty: take });
                if let Some(hold) = r.presale.as_mut() {
                    hold.outstanding -= take;
                }
            }
            self.move_stock(sku, warehouse, MovementKind::Reserved, u64::from(take), id.0, out);
        }
        self.recompute_promises(sku, None, out);
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    /// Close every campaign whose window has ended; unsold flash-sale units return to stock.
    pub(super) fn close_due_campaigns(&mut self, now: TimeMs, out: &mut Vec<Event>) -> bool {
        let due: Vec<_> = self.campaigns.values().filter(|c| !c.closed && c.ends_at_ms <= now).map(|c| c.id).collect();
        for id in &due {
            let Some(campaign) = self.campaigns.get_mut(id) else {
                continue;
            };
            campaign.closed = true;
            let sku = campaign.sku;
            let mut returned_units = Vec::new();
            if let CampaignKind::FlashSale { pool, .. } = &mut campaign.kind {
                for (warehouse, left) in pool.iter_mut() {
                    if *left > 0 {
                        returned_units.push((*warehouse, *left));
                        *left = 0;
                    }
                }
            }
            let mut returned = 0;
            for (warehouse, qty) in returned_units {
                self.sku_mut(sku).cell_mut(warehouse).pooled -= qty;
                self.move_stock(sku, warehouse, MovementKind::UnpooledFromCampaign, qty, u64::from(id.0), out);
                returned += qty;
            }
            out.push(Event::CampaignClosed { id: *id, returned });
            self.after_sku_change(sku, out);
        }
        !due.is_empty()
    }
}

fn validate_window(
    campaign: crate::ids::CampaignId,
    qty: u32,
    per_customer_limit: u32,
    starts_at_ms: TimeMs,
    ends_at_ms: TimeMs,
    now: TimeMs,
) -> Result<(), EngineError> {
    if qty == 0 {
        return Err(EngineError::InvalidCampaign { campaign, reason: "the pool must hold at least one unit" });
    }
    if per_customer_limit == 0 {
        return Err(EngineError::InvalidCampaign { campaign, reason: "the per-customer limit must be positive" });
    }
    if ends_at_ms <= starts_at_ms || ends_at_ms <= now {
        return Err(EngineError::InvalidCampaign {
            campaign,
            reason: "the window must end after it starts and in the future",
        });
    }
    Ok(())
}
