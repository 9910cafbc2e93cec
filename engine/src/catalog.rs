//! Warehouses, SKUs and kits as one partition sees them.

use std::collections::VecDeque;

use serde::Serialize;

use crate::command::KitComponent;
use crate::ids::{CampaignId, ReservationId, SkuId, WarehouseId};
use crate::stock::{Incoming, StockCell};

/// Longest SKU, warehouse or region code accepted, in bytes.
pub const CODE_LIMIT: usize = 64;
/// Longest display name of a SKU or warehouse, in bytes (85 Chinese characters).
pub const NAME_LIMIT: usize = 256;

/// Display names of SKUs (this partition's) and warehouses (all of them): what people read next
/// to the codes. Kept apart from [`SkuState`] and [`Warehouse`] so their image layout stays.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub skus: std::collections::BTreeMap<SkuId, String>,
    pub warehouses: std::collections::BTreeMap<WarehouseId, String>,
}

/// A display name: at most [`NAME_LIMIT`] bytes, none of the control or invisible characters
/// codes refuse (names end up in terminals, labels and robot messages). Empty is allowed (it
/// removes the name).
pub fn check_name(name: &str) -> Result<(), crate::EngineError> {
    if name.len() > NAME_LIMIT || check_printable(name).is_err() {
        return Err(crate::EngineError::InvalidName { limit: NAME_LIMIT });
    }
    Ok(())
}

/// The most units one stock cell may hold on hand (and in any bucket): 2^40, about 1.1 trillion.
/// Bounded so that a SKU's totals over every warehouse (at most 2^16 of them) stay exact in a u64
/// instead of saturating; a command past it is refused `quantity_overflow`.
pub const QUANTITY_LIMIT: u64 = 1 << 40;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    pub code: String,
    pub region: String,
    /// Lower is preferred when several warehouses can fill a reservation.
    pub priority: u16,
}

/// Everything a partition knows about one SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SkuState {
    pub id: SkuId,
    pub code: String,
    pub low_stock_threshold: u32,
    /// Components when this SKU is a kit; a kit holds no stock of its own.
    pub kit: Option<Vec<KitComponent>>,
    /// Stock per warehouse, sorted by warehouse id; a warehouse appears once it has been touched.
    pub cells: Vec<(WarehouseId, StockCell)>,
    /// Unreceived purchase orders, sorted by (eta, po).
    pub incoming: Vec<Incoming>,
    /// Presale reservations still waiting for units, in arrival order, with the units outstanding.
    pub presale_queue: VecDeque<(ReservationId, u32)>,
    /// The presale campaign selling this SKU, if any.
    pub presale: Option<CampaignId>,
    /// Whether availability is currently below the low-stock threshold (edge-triggers the event).
    pub low: bool,
    /// Last quantity published to each channel, indexed like the partition's channel policies.
    pub channel_shown: Vec<u64>,
}

impl SkuState {
    pub fn new(id: SkuId, code: String, low_stock_threshold: u32) -> Self {
        SkuState {
            id,
            code,
            low_stock_threshold,
            kit: None,
            cells: Vec::new(),
            incoming: Vec::new(),
            presale_queue: VecDeque::new(),
            presale: None,
            low: false,
            channel_shown: Vec::new(),
        }
    }

    pub fn cell(&self, warehouse: WarehouseId) -> Option<&StockCell> {
        self.cells.binary_search_by_key(&warehouse, |(w, _)| *w).ok().map(|i| &self.cells[i].1)
    }

    /// The cell for `warehouse`, created empty on first use.
    pub fn cell_mut(&mut self, warehouse: WarehouseId) -> &mut StockCell {
        let index = match self.cells.binary_search_by_key(&warehouse, |(w, _)| *w) {
            Ok(i) => i,
            Err(i) => {
                self.cells.insert(i, (warehouse, StockCell::default()));
                i
            }
        };
        &mut self.cells[index].1
    }

    /// Sellable units over all warehouses.
    pub fn available(&self) -> u64 {
        self.cells.iter().fold(0u64, |sum, (_, c)| sum.saturating_add(c.available()))
    }

    pub fn totals(&self) -> StockCell {
        let mut total = StockCell::default();
        for (_, cell) in &self.cells {
            total.on_hand = total.on_hand.saturating_add(cell.on_hand);
            total.reserved = total.reserved.saturating_add(cell.reserved);
            total.pooled = total.pooled.saturating_add(cell.pooled);
            for (sum, part) in total.buckets.iter_mut().zip(cell.buckets) {
                *sum = sum.saturating_add(part);
            }
        }
        total
    }

    pub fn incoming_total(&self) -> u64 {
        self.incoming.iter().map(|i| u64::from(i.qty)).sum()
    }
}

/// A SKU, warehouse or region code: 1..=[`CODE_LIMIT`] bytes of printable text. People read
/// codes in every message, label and view, so a code must not hide or reorder what it shows:
/// control characters (NUL, newlines, escapes), format characters (bidi overrides, zero-width
/// spaces, soft hyphens), line and paragraph separators, private-use, surrogate and unassigned
/// code points are refused (Unicode general categories C*, Zl, Zp).
pub fn check_code(code: &str) -> Result<(), crate::EngineError> {
    if code.is_empty() || code.len() > CODE_LIMIT {
        return Err(crate::EngineError::InvalidCode { limit: CODE_LIMIT });
    }
    check_printable(code)
}

/// Refuses the characters [`check_code`] does not allow (any length).
pub fn check_printable(text: &str) -> Result<(), crate::EngineError> {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    for (index, c) in text.char_indices() {
        let hidden = c.general_category_group() == GeneralCategoryGroup::Other
            || matches!(c.general_category(), GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator);
        if hidden {
            return Err(crate::EngineError::InvalidCodeCharacter { index, codepoint: u32::from(c) });
        }
    }
    Ok(())
}
