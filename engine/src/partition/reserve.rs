//! Reservations: reserve (all-or-nothing), confirm, release, ship, expiry.

use super::{Outcome, Partition};
use crate::campaign::CampaignKind;
use crate::command::{ReleaseCause, ReserveRequest};
use crate::error::EngineError;
use crate::event::{Allocation, Event, MovementKind, ReleaseReason};
use crate::ids::{ReservationId, SkuId, TimeMs, WarehouseId};
use crate::reservation::{Allocations, Ending, HoldState, Reservation};
use crate::routing;

impl Partition {
    pub(super) fn reserve(
        &mut self,
        now: TimeMs,
        req: &ReserveRequest,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        // At the key's home, a key claimed before stands for its first reservation: the same
        // request continues under that reservation's id (replaying it, or completing it if this
        // part was undone), a different request is refused.
        let mut resolved = None;
        let mut claim_here = None;
        if let Some(key) =
            req.idempotency_key.as_deref().filter(|k| routing::key_home(k, self.partitions) == self.index)
        {
            match self.book.claims.get(key) {
                Some(claim) if claim.fingerprint != req.fingerprint => {
                    return Err(EngineError::IdempotencyKeyReused { key: key.key.clone(), id: claim.id });
                }
                Some(claim) if claim.id != req.id => resolved = Some(claim.id),
                Some(_) => {}
                None => claim_here = Some(key),
            }
        }
        if let Some(first) = resolved {
            let again = ReserveRequest { id: first, ..req.clone() };
            return self.reserve_part(now, &again, out);
        }
        let outcome = self.reserve_part(now, req, out)?;
        if let (Some(key), Outcome::Changed) = (claim_here, outcome) {
            self.claim(key.clone(), req.id, req.fingerprint, now.saturating_add(req.ttl_ms), now);
        }
        Ok(outcome)
    }

    /// Remember that `key` made reservation `id` (see `keys::KeyClaims`).
    pub(super) fn claim(
        &mut self,
        key: crate::command::IdempotencyKey,
        id: ReservationId,
        fingerprint: u64,
        remember_until_ms: TimeMs,
        now: TimeMs,
    ) {
        let claim = crate::keys::Claim { id, fingerprint, remember_until_ms };
        let limit = self.limits.ended_retention;
        self.book.claims.insert(key, claim, now, limit);
    }

    /// [`crate::Command::ClaimKey`]: the key's home holds none of the reservation's lines.
    pub(super) fn claim_key(
        &mut self,
        now: TimeMs,
        key: &crate::command::IdempotencyKey,
        fingerprint: u64,
        id: ReservationId,
        ttl_ms: u64,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        if routing::key_home(key, self.partitions) != self.index {
            return Err(EngineError::WrongPartition {
                sku: SkuId(0),
                owner: routing::key_home(key, self.partitions),
                this: self.index,
            });
        }
        if ttl_ms == 0 || ttl_ms > self.limits.max_ttl_ms {
            return Err(EngineError::InvalidTtl { max_ms: self.limits.max_ttl_ms });
        }
        match self.book.claims.get(key) {
            Some(claim) if claim.fingerprint != fingerprint => {
                Err(EngineError::IdempotencyKeyReused { key: key.key.clone(), id: claim.id })
            }
            Some(claim) => {
                out.push(Event::KeyClaimed { id: claim.id, replayed: true });
                Ok(Outcome::Unchanged)
            }
            None => {
                self.claim(key.clone(), id, fingerprint, now.saturating_add(ttl_ms), now);
                out.push(Event::KeyClaimed { id, replayed: false });
                Ok(Outcome::Changed)
            }
        }
    }

    /// [`crate::Command::ForgetKey`].
    pub(super) fn forget_key(&mut self, key: &crate::command::IdempotencyKey, id: ReservationId) -> Outcome {
        if self.book.claims.forget(key, id) {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }

    /// Reserve this partition's part under `req.id`. A part that already exists under that id
    /// replays if it was made by the same request (a retry completing a reservation), and is
    /// refused as a duplicate id otherwise.
    fn reserve_part(
        &mut self,
        now: TimeMs,
        req: &ReserveRequest,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let existing = self.book.live.get(&req.id).or_else(|| self.book.ended.get(&req.id).map(|e| &e.reservation));
        if let Some(existing) = existing {
            if req.fingerprint != 0 && existing.fingerprint == req.fingerprint {
                out.push(self.replayed_answer(req.id));
                return Ok(Outcome::Unchanged);
            }
            return Err(EngineError::DuplicateReservation { id: req.id });
        }
        routing::validate_lines(&req.lines, self.limits.max_lines)?;
        if req.ttl_ms == 0 || req.ttl_ms > self.limits.max_ttl_ms {
            return Err(EngineError::InvalidTtl { max_ms: self.limits.max_ttl_ms });
        }
        if !routing::reservation_parts(req.id).contains(self.index) {
            // The id names the partitions that hold its parts; a part elsewhere could never be
            // confirmed or released.
            return Err(EngineError::WrongPartition { sku: req.lines[0].sku, owner: self.index, this: self.index });
        }
        for line in &req.lines {
            self.stocked_sku(line.sku, "reserve")?;
        }
        let campaign_sku = match req.campaign {
            None => None,
            Some(id) => {
                let campaign = self.campaigns.get(&id).ok_or(EngineError::UnknownCampaign { campaign: id })?;
                if let CampaignKind::Presale { .. } = campaign.kind {
                    return self.reserve_presale(now, req, out);
                }
                Some(campaign.sku)
            }
        };

        // Plan without touching state: general lines first, then the flash-sale line.
        let mut plan = std::mem::take(&mut self.scratch);
        plan.clear();
        let planned =
            self.plan_general(req, campaign_sku, &mut plan).and_then(|()| self.plan_flash_sale(now, req, &mut plan));
        if let Err(error) = planned {
            self.scratch = plan;
            return Err(error);
        }

        // Commit.
        let flash = campaign_sku.zip(req.campaign);
        for allocation in &plan {
            let from_pool = flash.is_some_and(|(sku, _)| sku == allocation.sku);
            let cell = self.sku_mut(allocation.sku).cell_mut(allocation.warehouse);
            cell.reserved += u64::from(allocation.qty);
            let kind = if from_pool {
                cell.pooled -= u64::from(allocation.qty);
                MovementKind::ReservedFromPool
            } else {
                MovementKind::Reserved
            };
            self.move_stock(allocation.sku, allocation.warehouse, kind, u64::from(allocation.qty), req.id.0, out);
        }
        if let Some((sku, campaign_id)) = flash {
            let units = plan.iter().filter(|a| a.sku == sku).map(|a| a.qty).sum::<u32>();
            if let Some(campaign) = self.campaigns.get_mut(&campaign_id) {
                if let CampaignKind::FlashSale { pool, .. } = &mut campaign.kind {
                    for allocation in plan.iter().filter(|a| a.sku == sku) {
                        if let Some((_, left)) = pool.iter_mut().find(|(w, _)| *w == allocation.warehouse) {
                            *left -= u64::from(allocation.qty);
                        }
                    }
                }
                campaign.add_customer_units(req.customer, units);
                if campaign.remaining() == 0 {
                    out.push(Event::CampaignSoldOut { id: campaign_id });
                }
            }
        }
        let expires_at_ms = now.saturating_add(req.ttl_ms);
        self.book.insert(Reservation {
            id: req.id,
            customer: req.customer,
            channel: req.channel,
            campaign: req.campaign,
            state: HoldState::Held,
            hold_ms: u32::try_from(req.ttl_ms).unwrap_or(u32::MAX),
            expires_at_ms,
            fingerprint: req.fingerprint,
            allocations: Allocations::from_slice(&plan),
            presale: None,
        });
        self.book.counters.accepted += 1;
        out.push(Event::Reserved {
            id: req.id,
            allocations: Allocations::from_slice(&plan),
            expires_at_ms,
            replayed: false,
            promise_ms: None,
        });
        for line in &req.lines {
            self.after_sku_change(line.sku, out);
        }
        self.scratch = plan;
        Ok(Outcome::Changed)
    }

    /// Choose warehouses for every line not served by a flash-sale pool. Prefer one warehouse that
    /// can ship everything (fewest shipments); otherwise fill each line from the warehouses with
    /// the most available, splitting a line when no single warehouse has enough.
    fn plan_general(
        &self,
        req: &ReserveRequest,
        campaign_sku: Option<SkuId>,
        plan: &mut Vec<Allocation>,
    ) -> Result<(), EngineError> {
        let general = |sku: SkuId| campaign_sku != Some(sku);
        let policy = self.channels.iter().find(|p| p.channel == req.channel);
        for line in req.lines.iter().filter(|l| general(l.sku)) {
            let state = self.sku(line.sku)?;
            let available = state.available();
            if available < u64::from(line.qty) {
                return Err(EngineError::InsufficientStock {
                    sku: line.sku,
                    requested: u64::from(line.qty),
                    available,
                });
            }
            if let Some(policy) = policy {
                let sellable = crate::channel::sellable(policy, line.sku, available);
                if sellable < u64::from(line.qty) {
                    return Err(EngineError::ChannelLimit {
                        channel: req.channel,
                        sku: line.sku,
                        requested: u64::from(line.qty),
                        available: sellable,
                    });
                }
            }
        }
        let preferred: &[WarehouseId] = match req.prefer_warehouses.as_deref() {
            Some(list) => &list[..list.len().min(crate::command::PREFERRED_WAREHOUSES_LIMIT)],
            None => &[],
        };
        let rank = |warehouse: WarehouseId| preferred.iter().position(|w| *w == warehouse).unwrap_or(usize::MAX);
        // Preferred warehouses first (in the caller's order), then the rest by priority.
        let mut candidates = preferred
            .iter()
            .copied()
            .filter(|w| self.warehouse(*w).is_ok())
            .chain(self.warehouse_order.iter().copied().filter(|w| rank(*w) == usize::MAX));
        let single = candidates.find(|&warehouse| {
            req.lines.iter().filter(|l| general(l.sku)).all(|line| {
                self.sku(line.sku)
                    .ok()
                    .and_then(|s| s.cell(warehouse))
                    .is_some_and(|c| c.available() >= u64::from(line.qty))
            })
        });
        for line in req.lines.iter().filter(|l| general(l.sku)) {
            if let Some(warehouse) = single {
                plan.push(Allocation { sku: line.sku, warehouse, qty: line.qty });
                continue;
            }
            let state = self.sku(line.sku)?;
            // Split: preferred warehouses first in the caller's order (rank MAX for the rest, a
            // no-op without preferences), then the most stock, then priority.
            let mut cells: Vec<_> = state
                .cells
                .iter()
                .filter(|(_, c)| c.available() > 0)
                .map(|(w, c)| (rank(*w), std::cmp::Reverse(c.available()), self.warehouse_priority(*w), *w))
                .collect();
            cells.sort_unstable();
            let mut needed = u64::from(line.qty);
            for (_, std::cmp::Reverse(available), _, warehouse) in cells {
                let take = available.min(needed);
                plan.push(Allocation { sku: line.sku, warehouse, qty: take as u32 });
                needed -= take;
                if needed == 0 {
                    break;
                }
            }
            debug_assert_eq!(needed, 0, "availability was checked above");
        }
        Ok(())
    }

    fn plan_flash_sale(
        &self,
        now: TimeMs,
        req: &ReserveRequest,
        plan: &mut Vec<Allocation>,
    ) -> Result<(), EngineError> {
        let Some(campaign_id) = req.campaign else {
            return Ok(());
        };
        let campaign =
            self.campaigns.get(&campaign_id).ok_or(EngineError::UnknownCampaign { campaign: campaign_id })?;
        let CampaignKind::FlashSale { pool, .. } = &campaign.kind else {
            return Ok(());
        };
        let Some(line) = req.lines.iter().find(|l| l.sku == campaign.sku) else {
            return Err(EngineError::CampaignSkuMismatch {
                campaign: campaign_id,
                expected: campaign.sku,
                found: req.lines[0].sku,
            });
        };
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
        let remaining = campaign.remaining();
        if remaining == 0 {
            return Err(EngineError::SoldOut { campaign: campaign_id });
        }
        if remaining < u64::from(line.qty) {
            return Err(EngineError::InsufficientStock {
                sku: line.sku,
                requested: u64::from(line.qty),
                available: remaining,
            });
        }
        let mut needed = u64::from(line.qty);
        for &(warehouse, left) in pool {
            let take = left.min(needed);
            if take > 0 {
                plan.push(Allocation { sku: line.sku, warehouse, qty: take as u32 });
                needed -= take;
            }
            if needed == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The first answer of a reservation made before (a retry), reconstructed without changing
    /// anything.
    fn replayed_answer(&self, id: ReservationId) -> Event {
        let reservation = self.book.live.get(&id).or_else(|| self.book.ended.get(&id).map(|e| &e.reservation));
        match reservation {
            Some(r) => Event::Reserved {
                id,
                allocations: r.allocations.clone(),
                expires_at_ms: r.expires_at_ms,
                replayed: true,
                promise_ms: r.presale.as_ref().and_then(|p| p.promise_ms),
            },
            None => Event::Reserved {
                id,
                allocations: Allocations::None,
                expires_at_ms: 0,
                replayed: true,
                promise_ms: None,
            },
        }
    }

    /// Why `id` is not live, as the error a caller should see.
    pub(super) fn not_live_error(&self, id: ReservationId, action: &'static str) -> EngineError {
        match self.book.ended.get(&id) {
            Some(ended) => match ended.ending {
                Ending::Released(ReleaseReason::Expired) => {
                    EngineError::ReservationExpired { id, expired_at_ms: ended.reservation.expires_at_ms }
                }
                Ending::Released(_) => EngineError::InvalidReservationState { id, state: "released", action },
                Ending::Shipped => EngineError::InvalidReservationState { id, state: "shipped", action },
            },
            None => EngineError::UnknownReservation { id },
        }
    }

    pub(super) fn confirm(
        &mut self,
        now: TimeMs,
        id: ReservationId,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let Some(reservation) = self.book.live.get(&id) else {
            return Err(self.not_live_error(id, "confirm"));
        };
        match reservation.state {
            HoldState::Confirmed | HoldState::BalancePaid => Ok(Outcome::Unchanged),
            HoldState::DepositHeld => Err(EngineError::InvalidReservationState {
                id,
                state: "deposit_held",
                action: "confirm (pay the balance instead)",
            }),
            HoldState::Held if reservation.expires_at_ms <= now => {
                // Due but not yet swept by a tick: it is expired all the same.
                Err(EngineError::ReservationExpired { id, expired_at_ms: reservation.expires_at_ms })
            }
            HoldState::Held => {
                self.book.set_state(id, HoldState::Confirmed, reservation.expires_at_ms);
                self.book.counters.confirmed += 1;
                out.push(Event::Confirmed { id });
                Ok(Outcome::Changed)
            }
        }
    }

    pub(super) fn release(
        &mut self,
        now: TimeMs,
        id: ReservationId,
        cause: ReleaseCause,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        if !self.book.live.contains_key(&id) {
            if cause == ReleaseCause::Compensation {
                // Compensation is sent to every part; a part that never reserved has nothing to undo.
                return Ok(Outcome::Unchanged);
            }
            return Err(self.not_live_error(id, "release"));
        }
        let reason = match cause {
            ReleaseCause::Cancel => ReleaseReason::Cancelled,
            ReleaseCause::Compensation => ReleaseReason::Compensation,
        };
        self.end_reservation(now, id, reason, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn ship(
        &mut self,
        now: TimeMs,
        id: ReservationId,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let Some(reservation) = self.book.live.get(&id) else {
            return Err(self.not_live_error(id, "ship"));
        };
        match reservation.state {
            HoldState::Confirmed => {}
            HoldState::BalancePaid if reservation.presale.as_ref().is_some_and(|p| p.outstanding == 0) => {}
            HoldState::BalancePaid => {
                return Err(EngineError::InvalidReservationState { id, state: "awaiting_stock", action: "ship" })
            }
            state => return Err(EngineError::InvalidReservationState { id, state: state.name(), action: "ship" }),
        }
        let Some(reservation) = self.book.remove_live(id) else {
            return Err(EngineError::UnknownReservation { id });
        };
        for allocation in reservation.allocations.as_slice() {
            let cell = self.sku_mut(allocation.sku).cell_mut(allocation.warehouse);
            cell.reserved -= u64::from(allocation.qty);
            cell.on_hand -= u64::from(allocation.qty);
            self.move_stock(
                allocation.sku,
                allocation.warehouse,
                MovementKind::Shipped,
                u64::from(allocation.qty),
                id.0,
                out,
            );
        }
        let skus: Vec<SkuId> = reservation.allocations.as_slice().iter().map(|a| a.sku).collect();
        self.book.counters.shipped += 1;
        let limit = self.limits.ended_retention;
        self.book.record_ended(reservation, Ending::Shipped, now, limit);
        out.push(Event::Shipped { id });
        for sku in skus {
            self.after_sku_change(sku, out);
        }
        Ok(Outcome::Changed)
    }

    /// Return a live reservation's units and remember how it ended. Callers have checked it is live.
    pub(super) fn end_reservation(
        &mut self,
        now: TimeMs,
        id: ReservationId,
        reason: ReleaseReason,
        out: &mut Vec<Event>,
    ) {
        let Some(reservation) = self.book.remove_live(id) else {
            debug_assert!(false, "end_reservation of a reservation that is not live");
            return;
        };
        let campaign = reservation.campaign.and_then(|c| self.campaigns.get(&c));
        let campaign_sku = campaign.map(|c| c.sku);
        // Units of an open flash sale go back to its pool; otherwise to general stock.
        let pool_open = campaign.is_some_and(|c| matches!(c.kind, CampaignKind::FlashSale { .. }) && c.is_open(now));
        let mut campaign_units = 0u32;
        for allocation in reservation.allocations.as_slice() {
            let is_campaign_line = campaign_sku == Some(allocation.sku);
            if is_campaign_line {
                campaign_units += allocation.qty;
            }
            let back_to_pool = pool_open && is_campaign_line;
            let cell = self.sku_mut(allocation.sku).cell_mut(allocation.warehouse);
            cell.reserved -= u64::from(allocation.qty);
            let kind = if back_to_pool {
                cell.pooled += u64::from(allocation.qty);
                MovementKind::ReleasedToPool
            } else if matches!(reason, ReleaseReason::Expired | ReleaseReason::BalanceMissed) {
                MovementKind::ReleasedExpired
            } else {
                MovementKind::ReleasedCancel
            };
            if back_to_pool {
                self.return_to_pool(reservation.campaign, allocation, out);
            }
            self.move_stock(allocation.sku, allocation.warehouse, kind, u64::from(allocation.qty), id.0, out);
        }
        if let Some(presale) = &reservation.presale {
            campaign_units = presale.qty;
            self.drop_presale_hold(&reservation, out);
        }
        if let Some(c) = reservation.campaign.and_then(|c| self.campaigns.get_mut(&c)) {
            c.remove_customer_units(reservation.customer, campaign_units);
        }
        match reason {
            ReleaseReason::Expired | ReleaseReason::BalanceMissed => self.book.counters.expired += 1,
            ReleaseReason::Compensation => self.book.counters.compensated += 1,
            ReleaseReason::Cancelled | ReleaseReason::CampaignClosed => self.book.counters.released += 1,
        }
        let mut skus: Vec<SkuId> = reservation.allocations.as_slice().iter().map(|a| a.sku).collect();
        skus.extend(campaign_sku);
        skus.dedup();
        let limit = self.limits.ended_retention;
        self.book.record_ended(reservation, Ending::Released(reason), now, limit);
        out.push(Event::Released { id, reason });
        for sku in skus {
            self.after_sku_change(sku, out);
        }
    }

    fn return_to_pool(
        &mut self,
        campaign: Option<crate::ids::CampaignId>,
        allocation: &Allocation,
        out: &mut Vec<Event>,
    ) {
        let Some(c) = campaign.and_then(|c| self.campaigns.get_mut(&c)) else {
            return;
        };
        let was_sold_out = c.remaining() == 0;
        if let CampaignKind::FlashSale { pool, .. } = &mut c.kind {
            if let Some((_, left)) = pool.iter_mut().find(|(w, _)| *w == allocation.warehouse) {
                *left += u64::from(allocation.qty);
            }
        }
        if was_sold_out {
            out.push(Event::CampaignRestocked { id: c.id, remaining: c.remaining() });
        }
    }

    /// Expire what is due (at most `budget`), close campaigns whose window ended.
    pub(super) fn tick(&mut self, now: TimeMs, budget: u32, out: &mut Vec<Event>) -> Outcome {
        let mut changed = false;
        for id in self.book.take_due(now, budget as usize) {
            let reason = match self.book.live.get(&id).map(|r| r.state) {
                Some(HoldState::DepositHeld) => ReleaseReason::BalanceMissed,
                _ => ReleaseReason::Expired,
            };
            self.end_reservation(now, id, reason, out);
            changed = true;
        }
        changed |= self.close_due_campaigns(now, out);
        if changed {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }
}
