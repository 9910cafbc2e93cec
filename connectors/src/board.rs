//! The stock board: the latest sellable quantity per shop and SKU that the platform has not been
//! sent yet. Partition threads write it after each commit ([`StockBoard::note`]: one short lock
//! per shop and batch, never a wait on the network); each shop's push task takes what is due.
//!
//! Coalescing is by construction: a SKU has one entry per shop, overwritten by every newer value,
//! so a flash sale that changes a SKU thousands of times a second leaves one entry whose `since`
//! is the oldest change not yet sent (the lag metric measures from there).
//!
//! Values carry a version: the LSN of the owning partition's log after the batch that produced
//! them (a SKU lives in one partition, so its versions only grow). A value older than one already
//! noted or sent is ignored, so a start-up sync that read the state before a later change cannot
//! overwrite that change.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A SKU's value waiting to be pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub qty: u64,
    pub version: u64,
    /// The oldest change this entry carries that the platform has not acknowledged.
    pub since: Instant,
}

/// One shop's waiting values.
#[derive(Debug)]
pub struct ShopBoard {
    pub channel: u16,
    pending: Mutex<HashMap<u32, Pending>>,
    wake: Notify,
}

impl ShopBoard {
    fn new(channel: u16) -> ShopBoard {
        ShopBoard { channel, pending: Mutex::new(HashMap::new()), wake: Notify::new() }
    }

    /// Record new values (only if newer than what waits); wakes the push task.
    pub fn note(&self, changes: &[(u32, u64)], version: u64, now: Instant) {
        if changes.is_empty() {
            return;
        }
        {
            let mut pending = self.pending.lock();
            for &(sku, qty) in changes {
                pending
                    .entry(sku)
                    .and_modify(|p| {
                        if version >= p.version {
                            p.qty = qty;
                            p.version = version;
                        }
                    })
                    .or_insert(Pending { qty, version, since: now });
            }
        }
        self.wake.notify_one();
    }

    /// Put back a value whose push failed, unless a newer one arrived meanwhile (which then keeps
    /// the older `since`, so the lag still counts from the first unsent change).
    pub fn put_back(&self, sku: u32, value: Pending) {
        let mut pending = self.pending.lock();
        match pending.get_mut(&sku) {
            Some(newer) => newer.since = newer.since.min(value.since),
            None => {
                pending.insert(sku, value);
            }
        }
    }

    /// Take the entries `due` selects (called by the push task).
    pub fn take(&self, mut due: impl FnMut(u32, &Pending) -> bool) -> Vec<(u32, Pending)> {
        let mut pending = self.pending.lock();
        let keys: Vec<u32> = pending.iter().filter(|(sku, p)| due(**sku, p)).map(|(sku, _)| *sku).collect();
        keys.into_iter().filter_map(|sku| pending.remove(&sku).map(|p| (sku, p))).collect()
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.pending.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The earliest moment any waiting SKU is allowed out, by `ready_at`.
    pub fn next_ready(&self, ready_at: impl Fn(u32) -> Instant) -> Option<Instant> {
        self.pending.lock().keys().map(|sku| ready_at(*sku)).min()
    }

    pub async fn notified(&self) {
        self.wake.notified().await
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Every shop's board, in shop order (shared with the partition threads).
#[derive(Debug, Default)]
pub struct StockBoard {
    shops: Vec<ShopBoard>,
}

impl StockBoard {
    pub fn new(channels: &[u16]) -> StockBoard {
        StockBoard { shops: channels.iter().map(|c| ShopBoard::new(*c)).collect() }
    }

    /// The distinct stock channels some shop pushes (what a partition computes after a commit).
    pub fn channels(&self) -> Vec<u16> {
        let mut channels: Vec<u16> = self.shops.iter().map(|s| s.channel).collect();
        channels.sort_unstable();
        channels.dedup();
        channels
    }

    /// New sellable quantities of `channel` (sku, qty), as of log position `version` of the
    /// owning partition. Called by partition threads after a commit.
    pub fn note(&self, channel: u16, changes: &[(u32, u64)], version: u64) {
        let now = Instant::now();
        for shop in self.shops.iter().filter(|s| s.channel == channel) {
            shop.note(changes, version, now);
        }
    }

    pub fn shop(&self, index: usize) -> Option<&ShopBoard> {
        self.shops.get(index)
    }

    pub fn is_empty(&self) -> bool {
        self.shops.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_latest_value_wins_and_since_stays_the_oldest() {
        // Three notes of one SKU coalesce into one entry with the last value and the first time; a
        // note with an older version is ignored; only shops of the channel get it.
        let board = StockBoard::new(&[1, 2]);
        board.note(1, &[(7, 10)], 5);
        let first = board.shop(0).unwrap().take(|_, _| false);
        assert!(first.is_empty());
        board.note(1, &[(7, 9)], 6);
        board.note(1, &[(7, 8)], 7);
        board.note(1, &[(7, 50)], 3);
        assert!(board.shop(1).unwrap().is_empty());
        let taken = board.shop(0).unwrap().take(|_, _| true);
        assert_eq!(taken.len(), 1);
        let (sku, p) = taken[0];
        assert_eq!((sku, p.qty, p.version), (7, 8, 7));
        // A failed push goes back, but not over a newer value; the older `since` is kept.
        let shop = board.shop(0).unwrap();
        shop.note(&[(7, 4)], 9, Instant::now());
        shop.put_back(7, p);
        let again = shop.take(|_, _| true);
        assert_eq!((again[0].1.qty, again[0].1.since), (4, p.since));
    }
}
