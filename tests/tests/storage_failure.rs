//! A storage failure in the real omsd (issue 12): after the log could not be written, writes are
//! refused `storage_failed` while reads are still answered from memory, `/health` says `storage:
//! failed` with the reason, `/ready` fails, and a restart recovers everything acknowledged.
//!
//! The failure is made without root or a small file system: once the server has logged some
//! records, directories are put where its next segment files would be created
//! (`<lsn>.seg.tmp`), so the segment rotation fails the way a full disk fails it (the
//! creation of the next segment errors), deterministically.

use std::path::Path;
use std::time::Duration;

use oms_client::proto::{Reserved, SkuRef};
use oms_client::{Cart, Client, ClientError};
use oms_tests::{http_get, Omsd};

fn cart(qty: u32) -> Cart {
    Cart::new(3_600_000).line("MUG-WHT", qty).customer(1)
}

/// The last LSN the partition's log holds (from the segment files, read-only).
fn last_lsn(wal: &Path) -> u64 {
    oms_wal::inspect::dump(wal, 1).expect("dump").filter_map(Result::ok).map(|r| r.lsn).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_storage_failure_reads_are_served_and_health_says_why() {
    // Checks: reservations succeed until the segment rotation fails; from then on every write is
    // answered storage_failed (and changes nothing), while GetStock, GetReservation and Audit are
    // still answered; /health is 503 with "storage: failed" and the reason; /ready is 503. After
    // the trap is removed and omsd restarted, every acknowledged reservation is there.
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--partitions", "1", "--segment-bytes", "16384", "--snapshot-every", "1000000"];
    let mut omsd = Omsd::start_in(dir.path(), &args);
    let client: Client = omsd.client().await;
    client.define_warehouse(1, "SH", "east", 0).await.expect("warehouse");
    client.define_sku("MUG-WHT", 0).await.expect("sku");
    client.set_on_hand("MUG-WHT", "SH", 100_000).await.expect("stock");
    let mut acknowledged: Vec<Reserved> = Vec::new();
    for _ in 0..5 {
        acknowledged.push(client.reserve_cart(&cart(1)).await.expect("reserve"));
    }
    let wal = dir.path().join("p0").join("wal");
    let from = last_lsn(&wal) + 1;
    let traps: Vec<_> = (from..from + 1_000).map(|lsn| wal.join(format!("{lsn:020}.seg.tmp"))).collect();
    for trap in &traps {
        std::fs::create_dir(trap).expect("trap");
    }
    let mut failed = None;
    for _ in 0..2_000 {
        match client.reserve_cart(&cart(1)).await {
            Ok(r) => acknowledged.push(r),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    match failed {
        Some(ClientError::Server(e)) => assert_eq!(e.name, "storage_failed", "{e:?}"),
        other => panic!("the rotation did not fail the log: {other:?}"),
    }
    // Writes stay refused and change nothing; reads are answered.
    let before = client.stock(SkuRef::Code("MUG-WHT")).await.expect("a read after the failure");
    for attempt in [client.reserve_cart(&cart(1)).await.map(drop), client.confirm(acknowledged[0].id).await] {
        match attempt {
            Err(ClientError::Server(e)) => assert_eq!(e.name, "storage_failed"),
            other => panic!("a write after the failure: {other:?}"),
        }
    }
    assert_eq!(client.stock(SkuRef::Code("MUG-WHT")).await.expect("read"), before);
    let view = client.reservation(acknowledged[3].id).await.expect("reservation read");
    assert_eq!(view.status, "held");
    let audit = client.audit().await.expect("audit after the failure");
    assert_eq!(audit["clean"], true, "{audit}");
    let (status, body) = http_get(omsd.admin_addr(), "/health").expect("/health");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("storage: failed"), "{body}");
    assert!(body.contains("reason: partition 0:") && body.contains("segment"), "{body}");
    let (status, _) = http_get(omsd.admin_addr(), "/ready").expect("/ready");
    assert_eq!(status, 503);
    drop(client);
    omsd.kill();

    for trap in &traps {
        std::fs::remove_dir(trap).expect("remove trap");
    }
    let omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    for r in &acknowledged {
        assert_eq!(client.reservation(r.id).await.expect("acknowledged reservation").status, "held");
    }
    let (status, body) = http_get(omsd.admin_addr(), "/health").expect("/health");
    assert_eq!((status, body.contains("storage: ok")), (200, true), "{body}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
