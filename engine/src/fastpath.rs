//! The sold-out board: what any gateway thread may read to refuse a request without a hop into
//! the owning partition and without a log write.
//!
//! Threading contract: only the partition thread that owns a SKU or campaign writes its entries
//! (after applying the command that changed it); any thread reads. Entries are single atomics, so a
//! reader sees either the old or the new value. A stale "sold out" after a release is a false
//! refusal for one request, never an oversell, because only the partition grants stock.

use std::sync::OnceLock;

use crate::event::Event;
use crate::ids::{CampaignId, SkuId};
use crate::sync::{AtomicU64, Ordering};

const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
/// SKU ids tracked: 256 chunks of 65,536 (16,777,216 SKUs); higher ids simply take the slow path.
const SKU_CHUNKS: usize = 256;
/// Campaign ids tracked by the bitsets; higher ids take the slow path.
pub const CAMPAIGN_LIMIT: u32 = 1 << 20;

pub struct SoldOutBoard {
    /// available + 1 per SKU (0 = not published yet), allocated a chunk at a time.
    skus: Box<[OnceLock<Box<[AtomicU64]>>]>,
    campaigns_sold_out: Box<[AtomicU64]>,
}

impl Default for SoldOutBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl SoldOutBoard {
    pub fn new() -> Self {
        SoldOutBoard {
            skus: (0..SKU_CHUNKS).map(|_| OnceLock::new()).collect(),
            campaigns_sold_out: (0..CAMPAIGN_LIMIT / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn sku_slot(&self, sku: SkuId) -> Option<&AtomicU64> {
        let chunk = self.skus.get((sku.0 >> CHUNK_BITS) as usize)?;
        let slots = chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        slots.get(sku.0 as usize & (CHUNK - 1))
    }

    /// Record a SKU's availability (owner partition only).
    pub fn publish_available(&self, sku: SkuId, available: u64) {
        if let Some(slot) = self.sku_slot(sku) {
            slot.store(available.saturating_add(1), Ordering::Release);
        }
    }

    /// Last published availability, if any.
    #[inline]
    pub fn available(&self, sku: SkuId) -> Option<u64> {
        let chunk = self.skus.get((sku.0 >> CHUNK_BITS) as usize)?.get()?;
        let value = chunk.get(sku.0 as usize & (CHUNK - 1))?.load(Ordering::Acquire);
        value.checked_sub(1)
    }

    pub fn set_campaign_sold_out(&self, campaign: CampaignId, sold_out: bool) {
        if campaign.0 >= CAMPAIGN_LIMIT {
            return;
        }
        let word = &self.campaigns_sold_out[(campaign.0 / 64) as usize];
        let bit = 1u64 << (campaign.0 % 64);
        if sold_out {
            word.fetch_or(bit, Ordering::Release);
        } else {
            word.fetch_and(!bit, Ordering::Release);
        }
    }

    #[inline]
    pub fn campaign_sold_out(&self, campaign: CampaignId) -> bool {
        campaign.0 < CAMPAIGN_LIMIT
            && self.campaigns_sold_out[(campaign.0 / 64) as usize].load(Ordering::Acquire) & (1 << (campaign.0 % 64))
                != 0
    }

    /// Update campaign bits from the events a partition just produced.
    pub fn observe(&self, events: &[Event]) {
        for event in events {
            match event {
                Event::CampaignSoldOut { id } | Event::CampaignClosed { id, .. } => {
                    self.set_campaign_sold_out(*id, true)
                }
                Event::CampaignRestocked { id, .. } | Event::CampaignCreated { id } => {
                    self.set_campaign_sold_out(*id, false)
                }
                _ => {}
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn board_tracks_availability_and_sold_out_campaigns() {
        let board = SoldOutBoard::new();
        assert_eq!(board.available(SkuId(7)), None);
        board.publish_available(SkuId(7), 0);
        assert_eq!(board.available(SkuId(7)), Some(0));
        board.publish_available(SkuId(70_000), 12);
        assert_eq!(board.available(SkuId(70_000)), Some(12));
        assert!(!board.campaign_sold_out(CampaignId(3)));
        board.observe(&[Event::CampaignSoldOut { id: CampaignId(3) }]);
        assert!(board.campaign_sold_out(CampaignId(3)));
        board.observe(&[Event::CampaignRestocked { id: CampaignId(3), remaining: 1 }]);
        assert!(!board.campaign_sold_out(CampaignId(3)));
        assert!(!board.campaign_sold_out(CampaignId(u32::MAX)));
    }

    #[test]
    fn concurrent_readers_see_only_published_values() {
        // One writer flips a campaign and a SKU while readers check they never see a torn value.
        let board = std::sync::Arc::new(SoldOutBoard::new());
        board.publish_available(SkuId(1), 5);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let board = board.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        let a = board.available(SkuId(1)).unwrap();
                        assert!(a == 5 || a == 0);
                    }
                })
            })
            .collect();
        for i in 0..100_000 {
            board.publish_available(SkuId(1), if i % 2 == 0 { 0 } else { 5 });
        }
        for r in readers {
            r.join().unwrap();
        }
    }
}
