//! Catalog and stock administration: warehouses, SKUs, kits, counts, receipts, transfers, returns,
//! unavailable buckets and channel policies.

use super::{Outcome, Partition};
use crate::catalog::{check_code, SkuState, Warehouse, QUANTITY_LIMIT};
use crate::channel::FULL_RATIO_BP;
use crate::command::{Bucket, ChannelPolicy, KitComponent};
use crate::error::EngineError;
use crate::event::{Event, MovementKind};
use crate::ids::{local_index, SkuId, WarehouseId};

impl Partition {
    pub(super) fn define_warehouse(
        &mut self,
        id: WarehouseId,
        code: &str,
        region: &str,
        priority: u16,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        check_code(code)?;
        if region.len() > crate::catalog::CODE_LIMIT {
            return Err(EngineError::InvalidCode { limit: crate::catalog::CODE_LIMIT });
        }
        crate::catalog::check_printable(region)?;
        let warehouse = Warehouse { id, code: code.to_owned(), region: region.to_owned(), priority };
        match self.warehouses.binary_search_by_key(&id, |w| w.id) {
            Ok(i) if self.warehouses[i] == warehouse => return Ok(Outcome::Unchanged),
            Ok(i) => self.warehouses[i] = warehouse,
            Err(i) => self.warehouses.insert(i, warehouse),
        }
        let mut order: Vec<(u16, WarehouseId)> = self.warehouses.iter().map(|w| (w.priority, w.id)).collect();
        order.sort_unstable();
        self.warehouse_order = order.into_iter().map(|(_, id)| id).collect();
        out.push(Event::WarehouseDefined { id });
        Ok(Outcome::Changed)
    }

    /// A SKU's display name (empty removes it).
    pub(super) fn name_sku(&mut self, id: SkuId, name: &str, out: &mut Vec<Event>) -> Result<Outcome, EngineError> {
        self.sku(id)?;
        crate::catalog::check_name(name)?;
        if self.names.skus.get(&id).map_or("", String::as_str) == name {
            return Ok(Outcome::Unchanged);
        }
        if name.is_empty() {
            self.names.skus.remove(&id);
        } else {
            self.names.skus.insert(id, name.to_owned());
        }
        out.push(Event::SkuDefined { id });
        Ok(Outcome::Changed)
    }

    /// A warehouse's display name (empty removes it).
    pub(super) fn name_warehouse(
        &mut self,
        id: WarehouseId,
        name: &str,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(id)?;
        crate::catalog::check_name(name)?;
        if self.names.warehouses.get(&id).map_or("", String::as_str) == name {
            return Ok(Outcome::Unchanged);
        }
        if name.is_empty() {
            self.names.warehouses.remove(&id);
        } else {
            self.names.warehouses.insert(id, name.to_owned());
        }
        out.push(Event::WarehouseDefined { id });
        Ok(Outcome::Changed)
    }

    pub(super) fn define_sku(
        &mut self,
        id: SkuId,
        code: &str,
        low_stock_threshold: u32,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.owns_new(id)?;
        check_code(code)?;
        let slot = local_index(id, self.partitions);
        if self.skus.len() <= slot {
            self.skus.resize_with(slot + 1, || None);
        }
        match &mut self.skus[slot] {
            Some(state) if state.code == code && state.low_stock_threshold == low_stock_threshold => {
                return Ok(Outcome::Unchanged)
            }
            Some(state) => {
                state.code = code.to_owned();
                state.low_stock_threshold = low_stock_threshold;
            }
            empty @ None => {
                let mut state = SkuState::new(id, code.to_owned(), low_stock_threshold);
                state.channel_shown = vec![0; self.channels.len()];
                *empty = Some(state);
                self.sku_count += 1;
            }
        }
        out.push(Event::SkuDefined { id });
        self.after_sku_change(id, out);
        Ok(Outcome::Changed)
    }

    /// Components may live in other partitions, so their existence is checked by the router
    /// ([`crate::sharded`] or the gateway) before this command is issued.
    pub(super) fn define_kit(
        &mut self,
        id: SkuId,
        code: &str,
        components: &[KitComponent],
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.owns_new(id)?;
        check_code(code)?;
        validate_kit(id, components, self.limits.max_lines)?;
        if let Ok(existing) = self.sku(id) {
            if existing.cells.iter().any(|(_, c)| *c != Default::default()) {
                return Err(EngineError::InvalidKit { kit: id, reason: "the SKU already holds stock" });
            }
        }
        let slot = local_index(id, self.partitions);
        if self.skus.len() <= slot {
            self.skus.resize_with(slot + 1, || None);
        }
        if self.skus[slot].is_none() {
            self.sku_count += 1;
        }
        let channels = self.channels.len();
        let state = self.skus[slot].get_or_insert_with(|| {
            // One column per channel policy, like define_sku: set_channel_policy inserts into it.
            let mut state = SkuState::new(id, code.to_owned(), 0);
            state.channel_shown = vec![0; channels];
            state
        });
        state.code = code.to_owned();
        state.kit = Some(components.to_vec());
        out.push(Event::KitDefined { id });
        Ok(Outcome::Changed)
    }

    pub(super) fn set_on_hand(
        &mut self,
        sku: SkuId,
        warehouse: WarehouseId,
        on_hand: u64,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(warehouse)?;
        let state = self.stocked_sku(sku, "set on-hand")?;
        if on_hand > QUANTITY_LIMIT {
            return Err(EngineError::QuantityOverflow { sku, warehouse, max: QUANTITY_LIMIT });
        }
        let cell = state.cell(warehouse).copied().unwrap_or_default();
        if on_hand < cell.committed() {
            return Err(EngineError::BelowCommitted {
                sku,
                warehouse,
                committed: cell.committed(),
                requested: i128::from(on_hand),
            });
        }
        if on_hand == cell.on_hand && state.cell(warehouse).is_some() {
            return Ok(Outcome::Unchanged);
        }
        self.sku_mut(sku).cell_mut(warehouse).on_hand = on_hand;
        if on_hand >= cell.on_hand {
            self.move_stock(sku, warehouse, MovementKind::AdjustedUp, on_hand - cell.on_hand, 0, out);
        } else {
            self.move_stock(sku, warehouse, MovementKind::AdjustedDown, cell.on_hand - on_hand, 0, out);
        }
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn receive(
        &mut self,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(warehouse)?;
        self.stocked_sku(sku, "receive")?;
        if qty == 0 {
            return Err(EngineError::ZeroQuantity { line: 0 });
        }
        self.room_for(sku, warehouse, u64::from(qty))?;
        self.sku_mut(sku).cell_mut(warehouse).on_hand += u64::from(qty);
        self.move_stock(sku, warehouse, MovementKind::Received, u64::from(qty), 0, out);
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn adjust(
        &mut self,
        sku: SkuId,
        warehouse: WarehouseId,
        delta: i64,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(warehouse)?;
        let state = self.stocked_sku(sku, "adjust")?;
        if delta == 0 {
            return Err(EngineError::ZeroQuantity { line: 0 });
        }
        let cell = state.cell(warehouse).copied().unwrap_or_default();
        let target = i128::from(cell.on_hand) + i128::from(delta);
        if target < i128::from(cell.committed()) {
            return Err(EngineError::BelowCommitted { sku, warehouse, committed: cell.committed(), requested: target });
        }
        let on_hand = u64::try_from(target)
            .ok()
            .filter(|q| *q <= QUANTITY_LIMIT)
            .ok_or(EngineError::QuantityOverflow { sku, warehouse, max: QUANTITY_LIMIT })?;
        self.sku_mut(sku).cell_mut(warehouse).on_hand = on_hand;
        let (kind, qty) = if delta > 0 {
            (MovementKind::AdjustedUp, delta.unsigned_abs())
        } else {
            (MovementKind::AdjustedDown, delta.unsigned_abs())
        };
        self.move_stock(sku, warehouse, kind, qty, 0, out);
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn set_bucket(
        &mut self,
        sku: SkuId,
        warehouse: WarehouseId,
        bucket: Bucket,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(warehouse)?;
        let state = self.stocked_sku(sku, "set a bucket")?;
        if qty > QUANTITY_LIMIT {
            return Err(EngineError::QuantityOverflow { sku, warehouse, max: QUANTITY_LIMIT });
        }
        let mut cell = state.cell(warehouse).copied().unwrap_or_default();
        let previous = cell.buckets[bucket.index()];
        if previous == qty {
            return Ok(Outcome::Unchanged);
        }
        cell.buckets[bucket.index()] = qty;
        // Damaged and quality-control units are physical; the safety margin is only a policy.
        if cell.check().is_err() {
            return Err(EngineError::BelowCommitted {
                sku,
                warehouse,
                committed: cell.committed(),
                requested: i128::from(cell.on_hand),
            });
        }
        *self.sku_mut(sku).cell_mut(warehouse) = cell;
        let (kind, moved) = if qty > previous {
            (MovementKind::BucketIn, qty - previous)
        } else {
            (MovementKind::BucketOut, previous - qty)
        };
        self.move_stock(sku, warehouse, kind, moved, bucket.index() as u64, out);
        out.push(Event::BucketSet { sku, warehouse, bucket, qty });
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn transfer(
        &mut self,
        sku: SkuId,
        from: WarehouseId,
        to: WarehouseId,
        qty: u32,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(from)?;
        self.warehouse(to)?;
        let state = self.stocked_sku(sku, "transfer")?;
        if from == to {
            return Err(EngineError::SameWarehouse);
        }
        if qty == 0 {
            return Err(EngineError::ZeroQuantity { line: 0 });
        }
        let available = state.cell(from).map_or(0, |c| c.available());
        if available < u64::from(qty) {
            return Err(EngineError::InsufficientInWarehouse {
                sku,
                warehouse: from,
                requested: u64::from(qty),
                available,
            });
        }
        self.room_for(sku, to, u64::from(qty))?;
        let state = self.sku_mut(sku);
        state.cell_mut(from).on_hand -= u64::from(qty);
        state.cell_mut(to).on_hand += u64::from(qty);
        self.move_stock(sku, from, MovementKind::TransferOut, u64::from(qty), u64::from(to.0), out);
        self.move_stock(sku, to, MovementKind::TransferIn, u64::from(qty), u64::from(from.0), out);
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    pub(crate) fn return_to_stock(
        &mut self,
        sku: SkuId,
        warehouse: WarehouseId,
        qty: u32,
        damaged: bool,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        self.warehouse(warehouse)?;
        self.stocked_sku(sku, "return to stock")?;
        if qty == 0 {
            return Err(EngineError::ZeroQuantity { line: 0 });
        }
        // Damaged units never exceed on-hand, so room for on-hand is room for the bucket too.
        self.room_for(sku, warehouse, u64::from(qty))?;
        let cell = self.sku_mut(sku).cell_mut(warehouse);
        cell.on_hand += u64::from(qty);
        if damaged {
            cell.buckets[Bucket::Damaged.index()] += u64::from(qty);
        }
        let kind = if damaged { MovementKind::ReturnedDamaged } else { MovementKind::Returned };
        self.move_stock(sku, warehouse, kind, u64::from(qty), 0, out);
        self.after_sku_change(sku, out);
        Ok(Outcome::Changed)
    }

    pub(super) fn set_channel_policy(
        &mut self,
        policy: &ChannelPolicy,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        if policy.ratio_bp > FULL_RATIO_BP {
            return Err(EngineError::InvalidRatio { ratio_bp: policy.ratio_bp });
        }
        if let Some(bad) = policy.exceptions.iter().find(|e| e.ratio_bp > FULL_RATIO_BP) {
            return Err(EngineError::InvalidRatio { ratio_bp: bad.ratio_bp });
        }
        if policy.exceptions.len() > 4 * self.limits.max_lines.max(1024) {
            return Err(EngineError::TooManyLines {
                lines: policy.exceptions.len(),
                limit: 4 * self.limits.max_lines.max(1024),
            });
        }
        match self.channels.binary_search_by_key(&policy.channel, |p| p.channel) {
            Ok(i) if self.channels[i] == *policy => return Ok(Outcome::Unchanged),
            Ok(i) => self.channels[i] = policy.clone(),
            Err(i) => {
                self.channels.insert(i, policy.clone());
                for state in self.skus.iter_mut().flatten() {
                    // u64::MAX never equals a computed quantity, so every SKU publishes once.
                    state.channel_shown.insert(i, u64::MAX);
                }
            }
        }
        out.push(Event::ChannelPolicySet { channel: policy.channel });
        let ids: Vec<SkuId> = self.skus.iter().flatten().map(|s| s.id).collect();
        for sku in ids {
            self.after_sku_change(sku, out);
        }
        Ok(Outcome::Changed)
    }
}

/// Rules every kit definition must satisfy, wherever its components live.
pub fn validate_kit(kit: SkuId, components: &[KitComponent], max_lines: usize) -> Result<(), EngineError> {
    if components.is_empty() {
        return Err(EngineError::InvalidKit { kit, reason: "a kit needs at least one component" });
    }
    if components.len() > max_lines {
        return Err(EngineError::InvalidKit { kit, reason: "too many components" });
    }
    for (i, c) in components.iter().enumerate() {
        if c.qty == 0 {
            return Err(EngineError::InvalidKit { kit, reason: "component quantity must be positive" });
        }
        if c.sku == kit {
            return Err(EngineError::InvalidKit { kit, reason: "a kit cannot contain itself" });
        }
        if components[..i].iter().any(|o| o.sku == c.sku) {
            return Err(EngineError::InvalidKit { kit, reason: "a component is listed twice" });
        }
    }
    Ok(())
}
