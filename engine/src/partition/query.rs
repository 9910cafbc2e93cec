//! Read-only views of a partition, the consistency check, and the snapshot image.

use serde::{Deserialize, Serialize};

use super::{Limits, Partition};
use crate::campaign::{CampaignImage, CampaignKind};
use crate::catalog::{SkuState, Warehouse};
use crate::command::ChannelPolicy;
use crate::event::{Allocation, Movement};
use crate::ids::{CampaignId, ReservationId, SkuId, TimeMs, WarehouseId};
use crate::ledger::{Balance, Drift, Ledger};
use crate::reservation::{Ended, HoldState, Reservation, ReservationBook, ReservationCounters};
use crate::stock::StockCell;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseStockView {
    pub warehouse: WarehouseId,
    pub on_hand: u64,
    pub reserved: u64,
    pub pooled: u64,
    pub safety: u64,
    pub damaged: u64,
    pub quality_control: u64,
    pub available: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuStockView {
    pub sku: SkuId,
    pub code: String,
    pub on_hand: u64,
    pub reserved: u64,
    pub pooled: u64,
    pub unavailable: u64,
    pub available: u64,
    pub incoming: u64,
    /// For kits: the component list (availability is computed across partitions by the router).
    pub kit: Option<Vec<crate::command::KitComponent>>,
    pub warehouses: Vec<WarehouseStockView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationView {
    pub id: ReservationId,
    /// held, confirmed, deposit_held, balance_paid, released, expired, shipped, ...
    pub status: String,
    pub customer: u64,
    pub channel: u16,
    pub campaign: Option<CampaignId>,
    pub created_at_ms: TimeMs,
    pub expires_at_ms: TimeMs,
    pub allocations: Vec<Allocation>,
    pub presale_outstanding: u32,
    pub promise_ms: Option<TimeMs>,
    /// A reservation spanning partitions whose parts are not all in the same state (a confirm or
    /// release interrupted by a crash, to be retried): each part's status, with `status`
    /// "partial". Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ReservationPart>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPart {
    pub partition: u32,
    pub status: String,
    pub allocations: Vec<Allocation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignView {
    pub id: CampaignId,
    pub sku: SkuId,
    pub kind: String,
    /// Units offered: the flash-sale pool or the presale quota.
    pub total: u64,
    /// Units customers hold or bought (flash sale), or sold against the quota (presale).
    pub sold: u64,
    pub remaining: u64,
    pub open: bool,
    pub closed: bool,
    pub per_customer_limit: u32,
    pub starts_at_ms: TimeMs,
    pub ends_at_ms: TimeMs,
}

/// Result of [`Partition::check`]: empty vectors mean the state is consistent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    pub skus_checked: usize,
    pub ledger_entries: u64,
    pub ledger_drift: Vec<Drift>,
    pub problems: Vec<String>,
}

impl ConsistencyReport {
    pub fn is_clean(&self) -> bool {
        self.ledger_drift.is_empty() && self.problems.is_empty()
    }
}

/// Everything a partition holds, with maps flattened into sorted vectors: the snapshot format and
/// the byte-for-byte comparison used by replay tests.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PartitionImage {
    pub index: u32,
    pub partitions: u32,
    pub now_ms: TimeMs,
    pub warehouses: Vec<Warehouse>,
    pub skus: Vec<SkuState>,
    pub live: Vec<Reservation>,
    pub ended: Vec<Ended>,
    pub counters: ReservationCounters,
    pub campaigns: Vec<CampaignImage>,
    pub channels: Vec<ChannelPolicy>,
    pub ledger_opening: Vec<(SkuId, WarehouseId, Balance)>,
    pub ledger_entries: Vec<Movement>,
    pub ledger_total_entries: u64,
    /// Orders, waves and order rules (see [`crate::orders::OrderBookImage`]).
    pub orders: crate::orders::OrderBookImage,
    /// The idempotency keys this partition is home to, in eviction order.
    pub claims: Vec<crate::keys::ClaimImage>,
    /// State added for the order desk (issue 15): display names, SKU volumes, pick overrides.
    pub desk: DeskImage,
}

/// The order desk's additions to a partition image, in one trailing field.
#[derive(Clone, Debug, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct DeskImage {
    pub sku_names: Vec<(SkuId, String)>,
    pub warehouse_names: Vec<(WarehouseId, String)>,
    pub book: crate::orders::DeskBookImage,
}

/// The image as written before it held idempotency claims (snapshots without a tag): loads with
/// no claims and no desk state.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PartitionImageV1 {
    pub index: u32,
    pub partitions: u32,
    pub now_ms: TimeMs,
    pub warehouses: Vec<Warehouse>,
    pub skus: Vec<SkuState>,
    pub live: Vec<Reservation>,
    pub ended: Vec<Ended>,
    pub counters: ReservationCounters,
    pub campaigns: Vec<CampaignImage>,
    pub channels: Vec<ChannelPolicy>,
    pub ledger_opening: Vec<(SkuId, WarehouseId, Balance)>,
    pub ledger_entries: Vec<Movement>,
    pub ledger_total_entries: u64,
    pub orders: crate::orders::OrderBookImage,
}

/// The image as written with idempotency claims but before the desk state (tag
/// `codec::IMAGE_TAG_V2`): loads with no names, volumes or pick overrides.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PartitionImageV2 {
    pub index: u32,
    pub partitions: u32,
    pub now_ms: TimeMs,
    pub warehouses: Vec<Warehouse>,
    pub skus: Vec<SkuState>,
    pub live: Vec<Reservation>,
    pub ended: Vec<Ended>,
    pub counters: ReservationCounters,
    pub campaigns: Vec<CampaignImage>,
    pub channels: Vec<ChannelPolicy>,
    pub ledger_opening: Vec<(SkuId, WarehouseId, Balance)>,
    pub ledger_entries: Vec<Movement>,
    pub ledger_total_entries: u64,
    pub orders: crate::orders::OrderBookImage,
    pub claims: Vec<crate::keys::ClaimImage>,
}

impl From<PartitionImageV1> for PartitionImage {
    fn from(v1: PartitionImageV1) -> Self {
        PartitionImage::from(PartitionImageV2 {
            index: v1.index,
            partitions: v1.partitions,
            now_ms: v1.now_ms,
            warehouses: v1.warehouses,
            skus: v1.skus,
            live: v1.live,
            ended: v1.ended,
            counters: v1.counters,
            campaigns: v1.campaigns,
            channels: v1.channels,
            ledger_opening: v1.ledger_opening,
            ledger_entries: v1.ledger_entries,
            ledger_total_entries: v1.ledger_total_entries,
            orders: v1.orders,
            claims: Vec::new(),
        })
    }
}

impl From<PartitionImageV2> for PartitionImage {
    fn from(v1: PartitionImageV2) -> Self {
        PartitionImage {
            index: v1.index,
            partitions: v1.partitions,
            now_ms: v1.now_ms,
            warehouses: v1.warehouses,
            skus: v1.skus,
            live: v1.live,
            ended: v1.ended,
            counters: v1.counters,
            campaigns: v1.campaigns,
            channels: v1.channels,
            ledger_opening: v1.ledger_opening,
            ledger_entries: v1.ledger_entries,
            ledger_total_entries: v1.ledger_total_entries,
            orders: v1.orders,
            claims: v1.claims,
            desk: DeskImage::default(),
        }
    }
}

fn view_cell(warehouse: WarehouseId, c: &StockCell) -> WarehouseStockView {
    use crate::command::Bucket;
    WarehouseStockView {
        warehouse,
        on_hand: c.on_hand,
        reserved: c.reserved,
        pooled: c.pooled,
        safety: c.bucket(Bucket::Safety),
        damaged: c.bucket(Bucket::Damaged),
        quality_control: c.bucket(Bucket::QualityControl),
        available: c.available(),
    }
}

impl Partition {
    pub fn sku_count(&self) -> usize {
        self.sku_count
    }

    pub fn live_reservations(&self) -> usize {
        self.book.live.len()
    }

    /// Whether this partition holds a live part of reservation `id` (held or confirmed).
    pub fn is_live(&self, id: crate::ids::ReservationId) -> bool {
        self.book.live.contains_key(&id)
    }

    /// Every live reservation part with its customer, channel and fingerprint (an order
    /// allocation's `allocation_key`), in no particular order.
    pub fn live_reservation_owners(
        &self,
    ) -> impl Iterator<Item = (crate::ids::ReservationId, crate::ids::CustomerId, crate::ids::ChannelId, u64)> + '_
    {
        self.book.live.values().map(|r| (r.id, r.customer, r.channel, r.fingerprint))
    }

    pub fn counters(&self) -> ReservationCounters {
        self.book.counters
    }

    pub fn warehouses(&self) -> &[Warehouse] {
        &self.warehouses
    }

    /// The code of a SKU this partition owns (answers name codes, not ids).
    pub fn sku_code(&self, sku: SkuId) -> Option<&str> {
        self.sku(sku).ok().map(|s| s.code.as_str())
    }

    /// The code of a warehouse (every partition knows every warehouse).
    pub fn warehouse_code(&self, warehouse: crate::ids::WarehouseId) -> Option<&str> {
        self.warehouses.iter().find(|w| w.id == warehouse).map(|w| w.code.as_str())
    }

    pub fn kit_components(&self, sku: SkuId) -> Option<&[crate::command::KitComponent]> {
        self.sku(sku).ok().and_then(|s| s.kit.as_deref())
    }

    /// The partition of a campaign's SKU holds it; this answers whether it is here.
    pub fn campaign(&self, id: CampaignId) -> Option<CampaignView> {
        let c = self.campaigns.get(&id)?;
        Some(CampaignView {
            id,
            sku: c.sku,
            kind: match c.kind {
                CampaignKind::FlashSale { .. } => "flash_sale",
                CampaignKind::Presale { .. } => "presale",
            }
            .to_owned(),
            total: match c.kind {
                CampaignKind::FlashSale { pool_qty, .. } => u64::from(pool_qty),
                CampaignKind::Presale { quota, .. } => u64::from(quota),
            },
            sold: match c.kind {
                CampaignKind::FlashSale { .. } => c.per_customer.values().map(|q| u64::from(*q)).sum(),
                CampaignKind::Presale { sold, .. } => sold,
            },
            remaining: c.remaining(),
            open: c.is_open(self.now_ms),
            closed: c.closed,
            per_customer_limit: c.per_customer_limit,
            starts_at_ms: c.starts_at_ms,
            ends_at_ms: c.ends_at_ms,
        })
    }

    pub fn campaigns(&self) -> impl Iterator<Item = CampaignView> + '_ {
        self.campaigns.keys().filter_map(|id| self.campaign(*id))
    }

    /// Sellable units of a SKU (0 for kits, whose availability depends on other partitions).
    pub fn available(&self, sku: SkuId) -> Option<u64> {
        self.sku(sku).ok().map(|s| if s.kit.is_some() { 0 } else { s.available() })
    }

    pub fn stock(&self, sku: SkuId) -> Option<SkuStockView> {
        let s = self.sku(sku).ok()?;
        let totals = s.totals();
        Some(SkuStockView {
            sku,
            code: s.code.clone(),
            on_hand: totals.on_hand,
            reserved: totals.reserved,
            pooled: totals.pooled,
            unavailable: totals.unavailable(),
            available: s.available(),
            incoming: s.incoming_total(),
            kit: s.kit.clone(),
            warehouses: s.cells.iter().map(|(w, c)| view_cell(*w, c)).collect(),
        })
    }

    /// Every SKU with its code and availability, in id order, read from memory.
    /// What `channel` may sell of `sku` now: the channel policy's share of what is available
    /// (`channel::sellable`), or everything available when the channel has no policy. `None` for
    /// a SKU this partition does not know; 0 for a kit (kits hold no stock of their own).
    pub fn channel_sellable(&self, channel: crate::ids::ChannelId, sku: SkuId) -> Option<u64> {
        let s = self.sku(sku).ok()?;
        Some(self.sellable_of(channel, s))
    }

    /// [`Self::channel_sellable`] of every SKU of this partition (kits skipped).
    pub fn for_each_channel_sellable(&self, channel: crate::ids::ChannelId, mut f: impl FnMut(SkuId, &str, u64)) {
        for s in self.skus.iter().flatten().filter(|s| s.kit.is_none()) {
            f(s.id, &s.code, self.sellable_of(channel, s));
        }
    }

    fn sellable_of(&self, channel: crate::ids::ChannelId, s: &crate::catalog::SkuState) -> u64 {
        if s.kit.is_some() {
            return 0;
        }
        let available = s.available();
        match self.channels.iter().find(|p| p.channel == channel) {
            Some(policy) => crate::channel::sellable(policy, s.id, available),
            None => available,
        }
    }

    pub fn for_each_sku(&self, mut f: impl FnMut(SkuId, &str, u64)) {
        for s in self.skus.iter().flatten() {
            f(s.id, &s.code, if s.kit.is_some() { 0 } else { s.available() });
        }
    }

    pub fn reservation(&self, id: ReservationId) -> Option<ReservationView> {
        let (r, status) = match self.book.live.get(&id) {
            Some(r) => (r, r.state.name().to_owned()),
            None => {
                let e = self.book.ended.get(&id)?;
                let status = match e.ending {
                    crate::reservation::Ending::Shipped => "shipped".to_owned(),
                    crate::reservation::Ending::Released(reason) => match reason {
                        crate::event::ReleaseReason::Expired => "expired".to_owned(),
                        crate::event::ReleaseReason::BalanceMissed => "balance_missed".to_owned(),
                        _ => "released".to_owned(),
                    },
                };
                (&e.reservation, status)
            }
        };
        Some(ReservationView {
            id,
            status,
            customer: r.customer.0,
            channel: r.channel.0,
            campaign: r.campaign,
            created_at_ms: r.created_at_ms(),
            expires_at_ms: r.expires_at_ms,
            allocations: r.allocations.as_slice().to_vec(),
            presale_outstanding: r.presale.as_ref().map_or(0, |p| p.outstanding),
            promise_ms: r.presale.as_ref().and_then(|p| p.promise_ms),
            parts: Vec::new(),
        })
    }

    /// Recompute everything derivable and compare: the ledger against the cells, reserved units
    /// against live reservations, pooled units against open pools, and the audit counters.
    pub fn check(&self) -> ConsistencyReport {
        let mut report = ConsistencyReport { ledger_entries: self.ledger.total_entries, ..Default::default() };
        let cells = self.skus.iter().flatten().flat_map(|s| s.cells.iter().map(move |(w, c)| (s.id, *w, c)));
        report.ledger_drift = self.ledger.check(cells);
        let mut held: rustc_hash::FxHashMap<(SkuId, WarehouseId), u64> = Default::default();
        for r in self.book.live.values() {
            for a in r.allocations.as_slice() {
                *held.entry((a.sku, a.warehouse)).or_default() += u64::from(a.qty);
            }
        }
        let mut pooled: rustc_hash::FxHashMap<(SkuId, WarehouseId), u64> = Default::default();
        for c in self.campaigns.values() {
            if let CampaignKind::FlashSale { pool, .. } = &c.kind {
                for (w, q) in pool {
                    *pooled.entry((c.sku, *w)).or_default() += q;
                }
            }
        }
        for s in self.skus.iter().flatten() {
            report.skus_checked += 1;
            for (w, c) in &s.cells {
                // People read codes: the partition knows its SKUs' and every warehouse's.
                let at = format!("SKU {} warehouse {}", s.code, self.warehouse_code(*w).unwrap_or("?"));
                if let Err(what) = c.check() {
                    report.problems.push(format!("{at}: {what}"));
                }
                let expected = held.get(&(s.id, *w)).copied().unwrap_or(0);
                if c.reserved != expected {
                    report
                        .problems
                        .push(format!("{at}: reserved {} but live reservations hold {expected}", c.reserved));
                }
                let expected = pooled.get(&(s.id, *w)).copied().unwrap_or(0);
                if c.pooled != expected {
                    report.problems.push(format!("{at}: pooled {} but pools hold {expected}", c.pooled));
                }
            }
            if s.low != self.low_skus.contains(&s.id) {
                report.problems.push(format!("SKU {}: low-stock flag and low-stock list disagree", s.code));
            }
        }
        if self.low_skus.len() != self.skus.iter().flatten().filter(|s| s.low).count() {
            report.problems.push("the low-stock list names SKUs that are not low".into());
        }
        if let Err(what) = self.orders.index().verify(self.orders.orders()) {
            report.problems.push(what);
        }
        let k = self.book.counters;
        let live = self.book.live.len() as u64;
        let confirmed_live = self
            .book
            .live
            .values()
            .filter(|r| matches!(r.state, HoldState::Confirmed | HoldState::BalancePaid))
            .count() as u64;
        // Every accepted reservation is live, or ended exactly once.
        if k.accepted != live + k.released + k.expired + k.shipped + k.compensated {
            report.problems.push(format!("audit counters do not add up: {k:?}, live {live}"));
        }
        if k.confirmed < confirmed_live {
            report
                .problems
                .push(format!("{confirmed_live} live confirmed reservations but only {} confirms", k.confirmed));
        }
        report
    }

    pub fn image(&self) -> PartitionImage {
        let mut live: Vec<Reservation> = self.book.live.values().cloned().collect();
        live.sort_unstable_by_key(|r| r.id);
        // Ended reservations keep their eviction order, which is part of the state.
        let ended = self.book.ended_order.iter().filter_map(|id| self.book.ended.get(id).cloned()).collect();
        let mut ledger_opening: Vec<_> = self.ledger.opening.iter().map(|((s, w), b)| (*s, *w, *b)).collect();
        ledger_opening.sort_unstable_by_key(|(s, w, _)| (*s, *w));
        PartitionImage {
            index: self.index,
            partitions: self.partitions,
            now_ms: self.now_ms,
            warehouses: self.warehouses.clone(),
            skus: self.skus.iter().flatten().cloned().collect(),
            live,
            ended,
            counters: self.book.counters,
            campaigns: self.campaigns.values().map(CampaignImage::from).collect(),
            channels: self.channels.clone(),
            ledger_opening,
            ledger_entries: self.ledger.entries.clone(),
            ledger_total_entries: self.ledger.total_entries,
            orders: self.orders.image(),
            claims: self.book.claims.image(),
            desk: DeskImage {
                sku_names: self.names.skus.iter().map(|(k, v)| (*k, v.clone())).collect(),
                warehouse_names: self.names.warehouses.iter().map(|(k, v)| (*k, v.clone())).collect(),
                book: self.orders.desk_image(),
            },
        }
    }

    /// Rebuild a partition from a snapshot image. The image comes from disk or the network, so
    /// its shape is checked before anything is sized by it; the consistency of the stock itself
    /// is [`Partition::check`]'s job.
    pub fn from_image(image: PartitionImage, limits: Limits) -> Result<Self, ImageError> {
        if image.partitions == 0 || image.index >= image.partitions {
            return Err(ImageError::BadPartition { index: image.index, partitions: image.partitions });
        }
        let mut partition = Partition::new(image.index, image.partitions, limits);
        partition.now_ms = image.now_ms;
        partition.warehouses = image.warehouses;
        let mut order: Vec<(u16, WarehouseId)> = partition.warehouses.iter().map(|w| (w.priority, w.id)).collect();
        order.sort_unstable();
        partition.warehouse_order = order.into_iter().map(|(_, id)| id).collect();
        for sku in image.skus {
            let id = sku.id;
            partition.owns_new(id).map_err(|_| ImageError::BadSku { sku: id, index: image.index })?;
            let slot = crate::ids::local_index(id, partition.partitions);
            if partition.skus.len() <= slot {
                partition.skus.resize_with(slot + 1, || None);
            }
            if partition.skus[slot].replace(sku).is_some() {
                return Err(ImageError::DuplicateSku { sku: id });
            }
            partition.sku_count += 1;
        }
        let mut book = ReservationBook::default();
        for r in image.live {
            book.insert(r);
        }
        for e in image.ended {
            book.ended_order.push_back(e.reservation.id);
            book.ended.insert(e.reservation.id, e);
        }
        book.claims = crate::keys::KeyClaims::from_image(image.claims);
        book.counters = image.counters;
        partition.book = book;
        partition.campaigns = image.campaigns.into_iter().map(|c| (c.id, c.into())).collect();
        partition.channels = image.channels;
        let mut ledger = Ledger::with_fold_limit(limits.ledger_fold_limit);
        ledger.opening = image.ledger_opening.into_iter().map(|(s, w, b)| ((s, w), b)).collect();
        ledger.entries = image.ledger_entries;
        ledger.total_entries = image.ledger_total_entries;
        partition.orders = crate::orders::OrderBook::from_image(image.orders, image.desk.book);
        partition.names.skus = image.desk.sku_names.into_iter().collect();
        partition.names.warehouses = image.desk.warehouse_names.into_iter().collect();
        partition.low_skus = partition.skus.iter().flatten().filter(|s| s.low).map(|s| s.id).collect();
        partition.ledger = ledger;
        Ok(partition)
    }
}

/// A snapshot image whose shape this build cannot hold (a foreign or damaged file that still
/// passed its checksum).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("image is partition {index} of {partitions}")]
    BadPartition { index: u32, partitions: u32 },
    #[error("SKU {sku} does not belong in partition {index} or is not below the SKU id limit")]
    BadSku { sku: SkuId, index: u32 },
    #[error("SKU {sku} appears twice in the image")]
    DuplicateSku { sku: SkuId },
}

impl Partition {
    /// Highest reservation sequence below `limit` this partition knows (live or remembered), for
    /// id allocation after a restart.
    pub fn max_reservation_sequence(&self, limit: u64) -> u64 {
        self.book
            .live
            .keys()
            .chain(self.book.ended.keys())
            .map(|id| crate::routing::reservation_sequence(*id))
            .filter(|sequence| *sequence < limit)
            .max()
            .unwrap_or(0)
    }

    /// Every kit defined here with its components.
    pub fn kits(&self) -> impl Iterator<Item = (SkuId, &[crate::command::KitComponent])> + '_ {
        self.skus.iter().flatten().filter_map(|s| s.kit.as_deref().map(|k| (s.id, k)))
    }

    /// SKUs currently below their low-stock threshold.
    pub fn low_stock_skus(&self) -> usize {
        self.low_skus.len()
    }

    /// The SKUs below their low-stock threshold, by id (kept current on every stock change).
    pub fn low_stock(&self) -> impl Iterator<Item = &crate::catalog::SkuState> + '_ {
        self.low_skus.iter().filter_map(|id| self.sku(*id).ok())
    }

    /// The display name of a SKU this partition owns.
    pub fn sku_name(&self, sku: SkuId) -> Option<&str> {
        self.names.skus.get(&sku).map(String::as_str)
    }

    /// The display name of a warehouse.
    pub fn warehouse_name(&self, warehouse: WarehouseId) -> Option<&str> {
        self.names.warehouses.get(&warehouse).map(String::as_str)
    }

    /// Every SKU's display name this partition holds.
    pub fn sku_names(&self) -> impl Iterator<Item = (SkuId, &str)> + '_ {
        self.names.skus.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// What each channel with a policy may sell of a SKU (`None`: unknown SKU or a kit, whose
    /// channel quantity depends on its components' partitions).
    pub fn channel_quantities(&self, sku: SkuId) -> Option<Vec<(crate::ids::ChannelId, u64)>> {
        let s = self.sku(sku).ok()?;
        if s.kit.is_some() {
            return None;
        }
        let available = s.available();
        Some(self.channels.iter().map(|p| (p.channel, crate::channel::sellable(p, sku, available))).collect())
    }

    /// The channel policies, by channel id.
    pub fn channel_policies(&self) -> &[ChannelPolicy] {
        &self.channels
    }
}
