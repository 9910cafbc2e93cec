//! Flash-sale pools and presales: limited quantities sold in a time window with per-buyer limits.

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::command::{FlashSaleSpec, PresaleSpec};
use crate::ids::{CampaignId, CustomerId, SkuId, TimeMs, WarehouseId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum CampaignKind {
    /// Units carved out of stock, per warehouse, still unsold.
    FlashSale { pool: Vec<(WarehouseId, u64)>, pool_qty: u32 },
    /// Units sold against a quota of incoming stock.
    Presale { quota: u32, sold: u64, balance_window_ms: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub sku: SkuId,
    pub kind: CampaignKind,
    pub per_customer_limit: u32,
    pub starts_at_ms: TimeMs,
    pub ends_at_ms: TimeMs,
    pub closed: bool,
    /// Units each buyer holds or has bought in this campaign (released units no longer count).
    pub per_customer: FxHashMap<CustomerId, u32>,
}

impl Campaign {
    pub fn flash_sale(spec: &FlashSaleSpec, pool: Vec<(WarehouseId, u64)>) -> Self {
        Campaign {
            id: spec.id,
            sku: spec.sku,
            kind: CampaignKind::FlashSale { pool, pool_qty: spec.pool_qty },
            per_customer_limit: spec.per_customer_limit,
            starts_at_ms: spec.starts_at_ms,
            ends_at_ms: spec.ends_at_ms,
            closed: false,
            per_customer: FxHashMap::default(),
        }
    }

    pub fn presale(spec: &PresaleSpec) -> Self {
        Campaign {
            id: spec.id,
            sku: spec.sku,
            kind: CampaignKind::Presale { quota: spec.quota, sold: 0, balance_window_ms: spec.balance_window_ms },
            per_customer_limit: spec.per_customer_limit,
            starts_at_ms: spec.starts_at_ms,
            ends_at_ms: spec.ends_at_ms,
            closed: false,
            per_customer: FxHashMap::default(),
        }
    }

    pub fn is_open(&self, now_ms: TimeMs) -> bool {
        !self.closed && self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    /// Units that can still be sold.
    pub fn remaining(&self) -> u64 {
        match &self.kind {
            CampaignKind::FlashSale { pool, .. } => pool.iter().map(|(_, q)| q).sum(),
            CampaignKind::Presale { quota, sold, .. } => u64::from(*quota).saturating_sub(*sold),
        }
    }

    pub fn held_by(&self, customer: CustomerId) -> u32 {
        self.per_customer.get(&customer).copied().unwrap_or(0)
    }

    pub fn add_customer_units(&mut self, customer: CustomerId, qty: u32) {
        *self.per_customer.entry(customer).or_insert(0) += qty;
    }

    pub fn remove_customer_units(&mut self, customer: CustomerId, qty: u32) {
        if let Some(held) = self.per_customer.get_mut(&customer) {
            debug_assert!(*held >= qty, "customer count underflow");
            *held = held.saturating_sub(qty);
            if *held == 0 {
                self.per_customer.remove(&customer);
            }
        }
    }
}

/// A serializable image of a campaign (maps sorted) for snapshots and state comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CampaignImage {
    pub id: CampaignId,
    pub sku: SkuId,
    pub kind: CampaignKind,
    pub per_customer_limit: u32,
    pub starts_at_ms: TimeMs,
    pub ends_at_ms: TimeMs,
    pub closed: bool,
    pub per_customer: Vec<(CustomerId, u32)>,
}

impl From<&Campaign> for CampaignImage {
    fn from(c: &Campaign) -> Self {
        let mut per_customer: Vec<_> = c.per_customer.iter().map(|(k, v)| (*k, *v)).collect();
        per_customer.sort_unstable();
        CampaignImage {
            id: c.id,
            sku: c.sku,
            kind: c.kind.clone(),
            per_customer_limit: c.per_customer_limit,
            starts_at_ms: c.starts_at_ms,
            ends_at_ms: c.ends_at_ms,
            closed: c.closed,
            per_customer,
        }
    }
}

impl From<CampaignImage> for Campaign {
    fn from(c: CampaignImage) -> Self {
        Campaign {
            id: c.id,
            sku: c.sku,
            kind: c.kind,
            per_customer_limit: c.per_customer_limit,
            starts_at_ms: c.starts_at_ms,
            ends_at_ms: c.ends_at_ms,
            closed: c.closed,
            per_customer: c.per_customer.into_iter().collect(),
        }
    }
}
