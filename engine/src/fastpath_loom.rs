//! Loom models of the sold-out board (`fastpath.rs`): every interleaving (up to loom's bounds) of a
//! publishing partition thread and reading gateway threads. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p oms-engine --release fastpath_loom` (a separate target
//! directory avoids rebuilding the normal one); `sync.rs` switches the board's atomics to loom's.

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::event::Event;
use crate::fastpath::SoldOutBoard;
use crate::ids::{CampaignId, SkuId};

#[test]
fn fastpath_loom_sku_readers_see_only_published_values_in_order() {
    // Checks that a reader racing a publisher of 5 then 0 only ever sees None, 5 or 0, never goes
    // back (0 then 5, or a value then None), and sees 0 once the writer is joined.
    loom::model(|| {
        let board = Arc::new(SoldOutBoard::new());
        let writer = {
            let board = board.clone();
            thread::spawn(move || {
                board.publish_available(SkuId(1), 5);
                board.publish_available(SkuId(1), 0);
            })
        };
        let first = board.available(SkuId(1));
        let second = board.available(SkuId(1));
        assert!(matches!(first, None | Some(5) | Some(0)), "never published: {first:?}");
        match first {
            Some(0) => assert_eq!(second, Some(0), "went back after 0"),
            Some(5) => assert!(matches!(second, Some(5) | Some(0)), "went back after 5: {second:?}"),
            _ => assert!(matches!(second, None | Some(5) | Some(0))),
        }
        writer.join().unwrap();
        assert_eq!(board.available(SkuId(1)), Some(0));
    });
}

#[test]
fn fastpath_loom_availability_publishes_what_was_written_before_it() {
    // Checks the Release/Acquire pairing: a partition writes a value (Relaxed) then publishes the
    // SKU's availability; a reader that sees the availability must also see the value.
    loom::model(|| {
        let board = Arc::new(SoldOutBoard::new());
        let data = Arc::new(AtomicU64::new(0));
        let writer = {
            let (board, data) = (board.clone(), data.clone());
            thread::spawn(move || {
                data.store(42, Ordering::Relaxed);
                board.publish_available(SkuId(3), 7);
            })
        };
        if board.available(SkuId(3)) == Some(7) {
            assert_eq!(data.load(Ordering::Relaxed), 42, "published before the data it covers");
        }
        writer.join().unwrap();
    });
}

#[test]
fn fastpath_loom_campaign_bits_sharing_a_word_are_not_lost() {
    // Checks that two partitions flipping different campaigns that share one 64-bit word (3 and 4)
    // never lose each other's update, and that a reader of campaign 3 never sees it un-sold-out
    // after it saw it sold out.
    loom::model(|| {
        let board = Arc::new(SoldOutBoard::new());
        let a = {
            let board = board.clone();
            thread::spawn(move || board.observe(&[Event::CampaignSoldOut { id: CampaignId(3) }]))
        };
        let b = {
            let board = board.clone();
            thread::spawn(move || {
                board.set_campaign_sold_out(CampaignId(4), true);
                board.set_campaign_sold_out(CampaignId(4), false);
            })
        };
        let seen = board.campaign_sold_out(CampaignId(3));
        let again = board.campaign_sold_out(CampaignId(3));
        assert!(!seen || again, "campaign 3 went back to open");
        a.join().unwrap();
        b.join().unwrap();
        assert!(board.campaign_sold_out(CampaignId(3)));
        assert!(!board.campaign_sold_out(CampaignId(4)));
    });
}
