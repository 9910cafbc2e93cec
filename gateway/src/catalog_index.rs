//! What every connection thread needs to route a request without asking a partition: SKU code ->
//! id, kit components, which partition holds a campaign, and the id counters.
//!
//! Threading contract: entries are written by the dispatcher when a define command succeeds (and
//! at start-up from recovered state); any thread reads.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use dashmap::DashMap;
use oms_engine::command::KitComponent;
use oms_engine::{CampaignId, Partition, SkuId, WarehouseId};
use oms_proto::Code;

/// Reservation sequences with this bit set were derived from an idempotency key by earlier
/// versions (a data directory may still hold some); counter-allocated ones stay below it (they
/// start at the clock in ms x 16, which reaches 2^47 in the 23rd century). Every reservation is
/// now counter-allocated, keyed or not: a key never determines an id.
pub const KEYED_SEQUENCE_BIT: u64 = 1 << 47;

#[derive(Default)]
pub struct CatalogIndex {
    codes: DashMap<String, SkuId>,
    /// id -> code, for answers that name SKUs (people read codes, not ids).
    sku_codes: DashMap<u32, Code>,
    warehouse_codes: DashMap<u16, Code>,
    warehouse_ids: DashMap<String, u16>,
    kits: DashMap<SkuId, Vec<KitComponent>>,
    campaigns: DashMap<CampaignId, u32>,
    next_sku: AtomicU32,
    next_reservation: AtomicU64,
}

impl CatalogIndex {
    /// Rebuild from recovered partitions; reservation ids continue above both the recovered ones
    /// and the clock (ms x 64), so ids stay unique across restarts even for forgotten reservations.
    pub fn rebuild(partitions: &[&Partition], now_ms: u64) -> CatalogIndex {
        let index = CatalogIndex::default();
        for p in partitions {
            index.learn_partition(p);
        }
        let clock = now_ms.saturating_mul(16) & (KEYED_SEQUENCE_BIT - 1);
        index.next_reservation.fetch_max(clock, Ordering::Relaxed);
        index
    }

    /// Learn everything a partition's state defines (start-up, and a follower installing the
    /// primary's snapshot): codes, kits, campaigns, and id counters above what it holds.
    pub fn learn_partition(&self, p: &Partition) {
        p.for_each_sku(|id, code, _| {
            self.codes.insert(code.to_owned(), id);
            self.sku_codes.insert(id.0, Code::truncated(code));
            self.next_sku.fetch_max(id.0.saturating_add(1), Ordering::Relaxed);
        });
        for w in p.warehouses() {
            self.set_warehouse(w.id, &w.code);
        }
        for (kit, components) in p.kits() {
            self.kits.insert(kit, components.to_vec());
        }
        for c in p.campaigns() {
            self.campaigns.insert(c.id, p.index());
        }
        let max_sequence = p.max_reservation_sequence(KEYED_SEQUENCE_BIT);
        self.next_reservation.fetch_max(max_sequence.saturating_add(1), Ordering::Relaxed);
    }

    pub fn sku(&self, code: &str) -> Option<SkuId> {
        self.codes.get(code).map(|e| *e)
    }

    /// The id for `code`, allocating the next one if it is new. Returns (id, newly allocated).
    pub fn sku_or_allocate(&self, code: &str) -> (SkuId, bool) {
        if let Some(id) = self.sku(code) {
            return (id, false);
        }
        let mut fresh = false;
        let id = *self.codes.entry(code.to_owned()).or_insert_with(|| {
            fresh = true;
            SkuId(self.next_sku.fetch_add(1, Ordering::Relaxed))
        });
        self.sku_codes.insert(id.0, Code::truncated(code));
        (id, fresh)
    }

    /// A warehouse was defined (or learnt from a partition or a replicated command).
    pub fn set_warehouse(&self, id: WarehouseId, code: &str) {
        if let Some(old) = self.warehouse_codes.insert(id.0, Code::truncated(code)) {
            if old.as_str() != code {
                self.warehouse_ids.remove(old.as_str());
            }
        }
        self.warehouse_ids.insert(code.to_owned(), id.0);
    }

    /// The id of a warehouse code.
    pub fn warehouse(&self, code: &str) -> Option<WarehouseId> {
        self.warehouse_ids.get(code).map(|e| WarehouseId(*e))
    }

    pub fn sku_count(&self) -> usize {
        self.codes.len()
    }

    pub fn kit(&self, sku: SkuId) -> Option<dashmap::mapref::one::Ref<'_, SkuId, Vec<KitComponent>>> {
        self.kits.get(&sku)
    }

    pub fn is_kit(&self, sku: SkuId) -> bool {
        self.kits.contains_key(&sku)
    }

    pub fn set_kit(&self, sku: SkuId, components: Vec<KitComponent>) {
        self.kits.insert(sku, components);
    }

    pub fn campaign_partition(&self, campaign: CampaignId) -> Option<u32> {
        self.campaigns.get(&campaign).map(|p| *p)
    }

    pub fn set_campaign(&self, campaign: CampaignId, partition: u32) {
        self.campaigns.insert(campaign, partition);
    }

    /// Claim a campaign id for `partition` before creating it there; false if any partition
    /// already holds (or is creating) that id. Campaign ids are global even though each campaign
    /// lives in its SKU's partition.
    pub fn claim_campaign(&self, campaign: CampaignId, partition: u32) -> bool {
        match self.campaigns.entry(campaign) {
            dashmap::mapref::entry::Entry::Occupied(_) => false,
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                slot.insert(partition);
                true
            }
        }
    }

    pub fn unclaim_campaign(&self, campaign: CampaignId) {
        self.campaigns.remove(&campaign);
    }

    /// Follower: learn what a replicated command defines (SKU codes with the primary's ids, kits,
    /// campaigns, reservation sequences), so reads resolve and a promotion allocates fresh ids.
    pub fn learn(&self, partition: u32, command: &oms_engine::Command) {
        use oms_engine::Command;
        match command {
            Command::DefineWarehouse { id, code, .. } => self.set_warehouse(*id, code),
            Command::DefineSku { id, code, .. } | Command::DefineKit { id, code, .. } => {
                self.codes.insert(code.clone(), *id);
                self.sku_codes.insert(id.0, Code::truncated(code));
                self.next_sku.fetch_max(id.0.saturating_add(1), Ordering::Relaxed);
                if let Command::DefineKit { components, .. } = command {
                    self.kits.insert(*id, components.clone());
                }
            }
            Command::CreateFlashSale(spec) => self.set_campaign(spec.id, partition),
            Command::CreatePresale(spec) => self.set_campaign(spec.id, partition),
            Command::Reserve(request) => {
                let sequence = oms_engine::routing::reservation_sequence(request.id);
                self.next_reservation.fetch_max(sequence.saturating_add(1), Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The next unkeyed sequence: below [`KEYED_SEQUENCE_BIT`], so it never meets a keyed one.
    pub fn next_reservation_sequence(&self) -> u64 {
        self.next_reservation.fetch_add(1, Ordering::Relaxed) & (KEYED_SEQUENCE_BIT - 1)
    }
}

impl crate::wire_error::CodeNames for CatalogIndex {
    fn sku_code(&self, sku: u32) -> Option<Code> {
        self.sku_codes.get(&sku).map(|e| *e)
    }
    fn warehouse_code(&self, warehouse: u16) -> Option<Code> {
        self.warehouse_codes.get(&warehouse).map(|e| *e)
    }
}
