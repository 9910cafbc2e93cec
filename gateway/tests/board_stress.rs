//! Stress tests (real threads, real atomics) of the two concurrent structures the hot path relies
//! on: the sold-out board (one writer per SKU/campaign, any reader) and the bounded crossbeam
//! queue between connections and a partition writer (many senders, one receiver, BUSY when
//! full). The loom models in `engine/src/fastpath_loom.rs` cover small interleavings exhaustively;
//! these cover many threads and many iterations. Every loop is bounded.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam::channel::{bounded, TrySendError};
use oms_engine::fastpath::SoldOutBoard;
use oms_engine::{CampaignId, Event, SkuId};

const READERS: usize = 6;
const ROUNDS: u64 = 200_000;

/// Published values for SKU `s` in round `r`: a value that encodes both, so a reader can tell a
/// value that was never published (torn or invented) from a stale one.
fn value(sku: u32, round: u64) -> u64 {
    round << 20 | u64::from(sku)
}

#[test]
fn board_readers_never_see_unpublished_or_backward_values() {
    // Checks with 4 writer threads (each owning 16 SKUs spread over two board chunks and 16
    // campaigns sharing bitset words with the others) and 6 readers over 200,000 rounds: a reader
    // only ever sees values some writer published for that very SKU, never an older value after a
    // newer one (per SKU, per reader), and campaign bits owned by different writers in the same
    // word are never lost.
    let board = Arc::new(SoldOutBoard::new());
    let done = Arc::new(AtomicBool::new(false));
    let skus_of = |w: u32| (0..16u32).map(move |i| if i % 2 == 0 { w * 16 + i } else { 70_000 + w * 16 + i });
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let board = board.clone();
            thread::spawn(move || {
                for round in 1..=ROUNDS {
                    for sku in skus_of(w) {
                        board.publish_available(SkuId(sku), value(sku, round));
                    }
                    // Campaign ids w, w+4, ... share words with the other writers' campaigns.
                    let campaign = CampaignId(w + 4 * (round % 16) as u32);
                    if round % 2 == 0 {
                        board.observe(&[Event::CampaignSoldOut { id: campaign }]);
                    } else {
                        board.set_campaign_sold_out(campaign, false);
                    }
                }
                // Final state: each writer's campaign w is sold out.
                board.set_campaign_sold_out(CampaignId(w), true);
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (board, done) = (board.clone(), done.clone());
            thread::spawn(move || {
                let all: Vec<u32> = (0..4).flat_map(skus_of).collect();
                let mut last = vec![0u64; all.len()];
                let mut reads = 0u64;
                let mut i = r;
                while !done.load(Ordering::Acquire) && reads < 50_000_000 {
                    i = (i + 7) % all.len();
                    let sku = all[i];
                    if let Some(v) = board.available(SkuId(sku)) {
                        assert_eq!(
                            v & 0xF_FFFF,
                            u64::from(sku),
                            "SKU {sku} shows a value published for another SKU: {v:#x}"
                        );
                        let round = v >> 20;
                        assert!((1..=ROUNDS).contains(&round), "SKU {sku}: never published value {v:#x}");
                        assert!(round >= last[i], "SKU {sku} went back from round {} to {round}", last[i]);
                        last[i] = round;
                    }
                    let _ = board.campaign_sold_out(CampaignId(sku % 64));
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Release);
    let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    for w in 0..4u32 {
        assert!(board.campaign_sold_out(CampaignId(w)), "campaign {w}'s bit was lost");
        for sku in skus_of(w) {
            assert_eq!(board.available(SkuId(sku)), Some(value(sku, ROUNDS)));
        }
    }
    eprintln!("board stress: {} publishes, {reads} reads", 4 * 16 * ROUNDS);
}

#[test]
fn bounded_queue_delivers_each_job_once_and_refuses_when_full() {
    // Checks the partition queue's contract under 8 producer threads x 50,000 jobs and one
    // consumer that drains in batches (like the writer thread): every job that try_send accepted
    // is received exactly once and intact, every refused one got Full (the BUSY answer), the
    // consumer never sees a job nobody sent, and per-producer order is preserved.
    const PRODUCERS: u64 = 8;
    const JOBS: u64 = 50_000;
    let (tx, rx) = bounded::<u64>(1024);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut accepted = Vec::new();
                let mut busy = 0u64;
                for j in 0..JOBS {
                    let job = p << 32 | j;
                    // Like a storefront retrying BUSY with backoff, a bounded number of times.
                    let mut attempts = 0;
                    loop {
                        match tx.try_send(job) {
                            Ok(()) => {
                                accepted.push(job);
                                break;
                            }
                            Err(TrySendError::Full(back)) => {
                                assert_eq!(back, job, "Full returned another job");
                                attempts += 1;
                                if attempts == 64 {
                                    busy += 1;
                                    break;
                                }
                                thread::yield_now();
                            }
                            Err(TrySendError::Disconnected(_)) => panic!("consumer gone"),
                        }
                    }
                }
                (accepted, busy)
            })
        })
        .collect();
    drop(tx);
    let consumer = thread::spawn(move || {
        let mut seen = HashSet::new();
        let mut last = vec![None::<u64>; PRODUCERS as usize];
        let mut batch = Vec::with_capacity(4096);
        while let Ok(first) = rx.recv() {
            batch.push(first);
            batch.extend(rx.try_iter().take(4095));
            for job in batch.drain(..) {
                let (p, j) = (job >> 32, job & 0xFFFF_FFFF);
                assert!(p < PRODUCERS && j < JOBS, "job {job:#x} was never sent");
                assert!(seen.insert(job), "job {job:#x} received twice");
                if let Some(prev) = last[p as usize] {
                    assert!(j > prev, "producer {p}: job {j} after {prev}");
                }
                last[p as usize] = Some(j);
            }
        }
        seen
    });
    let mut accepted = HashSet::new();
    let mut busy = 0;
    for p in producers {
        let (jobs, refused) = p.join().expect("producer");
        busy += refused;
        accepted.extend(jobs);
    }
    let received = consumer.join().expect("consumer");
    assert_eq!(received, accepted, "received jobs differ from accepted ones");
    assert_eq!(accepted.len() as u64 + busy, PRODUCERS * JOBS);
    eprintln!("queue stress: {} accepted, {busy} refused busy", accepted.len());
}
