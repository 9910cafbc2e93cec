//! The append-only ledger of stock movements, and the check that recomputes stock from it.
//!
//! Memory stays bounded the way accountants close their books: when the open entries exceed a
//! limit, they are folded into per-cell opening balances and a new period starts. The check
//! recomputes every cell as `opening + sum(entries)` and compares it with the live state. The
//! full, unfolded history is the write-ahead log itself (replaying it re-emits every movement).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::event::{Movement, MovementKind};
use crate::ids::{SkuId, WarehouseId};
use crate::stock::StockCell;

/// Balances the ledger tracks per SKU x warehouse (buckets are set by operators, not moved).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Balance {
    pub on_hand: i128,
    pub reserved: i128,
    pub pooled: i128,
}

impl Balance {
    fn apply(&mut self, kind: MovementKind, qty: u64) {
        let q = i128::from(qty);
        use MovementKind::*;
        match kind {
            Received | AdjustedUp | TransferIn | Returned => self.on_hand += q,
            AdjustedDown | TransferOut => self.on_hand -= q,
            // Damaged returns are counted on hand and put straight into the damaged bucket.
            ReturnedDamaged => self.on_hand += q,
            Reserved => self.reserved += q,
            ReleasedCancel | ReleasedExpired => self.reserved -= q,
            Shipped => {
                self.reserved -= q;
                self.on_hand -= q;
            }
            PooledForCampaign => self.pooled += q,
            UnpooledFromCampaign => self.pooled -= q,
            ReservedFromPool => {
                self.pooled -= q;
                self.reserved += q;
            }
            ReleasedToPool => {
                self.reserved -= q;
                self.pooled += q;
            }
            BucketIn | BucketOut => {}
        }
    }
}

/// A difference between the ledger and the live state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub sku: SkuId,
    pub warehouse: WarehouseId,
    pub ledger: Balance,
    pub live: Balance,
}

#[derive(Clone, Debug, Default)]
pub struct Ledger {
    pub opening: FxHashMap<(SkuId, WarehouseId), Balance>,
    pub entries: Vec<Movement>,
    /// Entries appended since the partition started (folded ones included).
    pub total_entries: u64,
    pub fold_limit: usize,
}

impl Ledger {
    pub fn with_fold_limit(fold_limit: usize) -> Self {
        Ledger { fold_limit: fold_limit.max(1), ..Ledger::default() }
    }

    pub fn record(&mut self, movement: Movement) {
        debug_assert!(movement.qty > 0, "a zero movement is noise in the ledger");
        self.entries.push(movement);
        self.total_entries += 1;
        if self.entries.len() >= self.fold_limit {
            self.fold();
        }
    }

    /// Close the period: fold every open entry into the opening balances.
    pub fn fold(&mut self) {
        for m in self.entries.drain(..) {
            self.opening.entry((m.sku, m.warehouse)).or_default().apply(m.kind, m.qty);
        }
    }

    /// Balances per cell according to the ledger.
    pub fn balances(&self) -> FxHashMap<(SkuId, WarehouseId), Balance> {
        let mut balances = self.opening.clone();
        for m in &self.entries {
            balances.entry((m.sku, m.warehouse)).or_default().apply(m.kind, m.qty);
        }
        balances
    }

    /// Compare the ledger with the live cells; an empty result means no drift.
    pub fn check<'a>(&self, cells: impl Iterator<Item = (SkuId, WarehouseId, &'a StockCell)>) -> Vec<Drift> {
        let mut balances = self.balances();
        let mut drifts = Vec::new();
        for (sku, warehouse, cell) in cells {
            let ledger = balances.remove(&(sku, warehouse)).unwrap_or_default();
            let live = Balance {
                on_hand: i128::from(cell.on_hand),
                reserved: i128::from(cell.reserved),
                pooled: i128::from(cell.pooled),
            };
            if ledger != live {
                drifts.push(Drift { sku, warehouse, ledger, live });
            }
        }
        for ((sku, warehouse), ledger) in balances {
            if ledger != Balance::default() {
                drifts.push(Drift { sku, warehouse, ledger, live: Balance::default() });
            }
        }
        drifts.sort_by_key(|d| (d.sku, d.warehouse));
        drifts
    }
}
