//! Durability across restarts of the real omsd: a graceful SIGTERM and a SIGKILL.

use oms_client::{Cart, Client};
use oms_proto::SkuRef;
use oms_tests::Omsd;

fn cart(sku: &str, qty: u32, key: &str) -> Cart {
    Cart::new(3_600_000).line(sku, qty).key(key).customer(1)
}

async fn seed(client: &Client, sku: &str, on_hand: u64) {
    client.define_warehouse(1, "SH", "east", 0).await.expect("define warehouse");
    client.define_sku(sku, 0).await.expect("define sku");
    client.set_on_hand(sku, "1", on_hand).await.expect("set on hand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_keeps_state() {
    // Checks that after reserve + confirm + SIGTERM (exit 0), a restart on the same data dir has the same reservations and stock.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut omsd = Omsd::start_in(dir.path(), &["--partitions", "4"]);
    let client = omsd.client().await;
    seed(&client, "MUG-WHT", 50).await;
    let confirmed = client.reserve_cart(&cart("MUG-WHT", 3, "")).await.expect("reserve");
    client.confirm(confirmed.id).await.expect("confirm");
    let held = client.reserve_cart(&cart("MUG-WHT", 2, "k-held")).await.expect("reserve");
    let before = client.stock(SkuRef::Code("MUG-WHT")).await.expect("stock");
    drop(client);
    omsd.terminate();

    let omsd = Omsd::start_in(dir.path(), &["--partitions", "4"]);
    let client = omsd.client().await;
    let after = client.stock(SkuRef::Code("MUG-WHT")).await.expect("stock after restart");
    assert_eq!(after, before, "stock changed across a graceful restart");
    assert_eq!(client.reservation(confirmed.id).await.expect("confirmed reservation").status, "confirmed");
    assert_eq!(client.reservation(held.id).await.expect("held reservation").status, "held");
    // The idempotency key survived: retrying returns the same reservation.
    let retry = client.reserve_cart(&cart("MUG-WHT", 2, "k-held")).await.expect("retry");
    assert_eq!((retry.id, retry.replayed), (held.id, true));
    let audit = client.audit().await.expect("audit");
    assert_eq!(audit["clean"], true, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_keeps_every_acknowledged_reservation() {
    // Checks that every reservation acknowledged before a SIGKILL is present after restart (fsync always), and stock adds up.
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--partitions", "2", "--fsync", "always"];
    let mut omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    seed(&client, "SOCKS-3P", 10_000).await;
    let mut tasks = Vec::new();
    for i in 0..300u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.reserve_cart(&cart("SOCKS-3P", 1 + i % 3, "")).await }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.push(task.await.expect("task").expect("reserve"));
    }
    // More reserves race with the kill: those may or may not survive, but must not break recovery.
    let racing: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.reserve_cart(&cart("SOCKS-3P", 1, "")).await })
        })
        .collect();
    omsd.kill();
    let mut raced_ok = Vec::new();
    for task in racing {
        if let Ok(Ok(r)) = task.await {
            raced_ok.push(r);
        }
    }
    drop(client);

    let omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    let mut total: u64 = 0;
    for r in acknowledged.iter().chain(raced_ok.iter()) {
        let view =
            client.reservation(r.id).await.unwrap_or_else(|e| panic!("reservation {} lost after SIGKILL: {e}", r.id));
        assert_eq!(view.status, "held");
        total += view.allocations.iter().map(|a| u64::from(a.qty)).sum::<u64>();
    }
    let stock = client.stock(SkuRef::Code("SOCKS-3P")).await.expect("stock");
    // Racing reserves acknowledged to nobody may also have survived, so reserved >= acknowledged total.
    assert!(stock.reserved >= total, "reserved {} < acknowledged {total}", stock.reserved);
    assert!(stock.reserved <= total + 100, "reserved {} > acknowledged {total} + 100 racing units", stock.reserved);
    assert_eq!(stock.on_hand, 10_000);
    let audit = client.audit().await.expect("audit");
    assert_eq!(audit["clean"], true, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_snapshot_plus_log_tail_after_sigkill() {
    // Checks recovery = latest snapshot + the log after it: with a snapshot every 40 logged commands,
    // 150 acknowledged reservations (several snapshots, then a log tail), a SIGKILL, and a restart,
    // every acknowledged reservation is present, stock adds up, the audit is clean, and the log
    // says it started from a snapshot.
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--partitions", "2", "--snapshot-every", "40"];
    let mut omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    seed(&client, "SOCKS-3P", 1_000).await;
    let mut ids = Vec::new();
    for i in 0..150 {
        let reserved = client.reserve_cart(&cart("SOCKS-3P", 2, &format!("snap-{i}"))).await.expect("reserve");
        ids.push(reserved.id);
    }
    // Give the background snapshot threads a moment, then crash.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(client);
    omsd.kill();

    let omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    for id in &ids {
        let view = client.reservation(*id).await.expect("acknowledged reservation survived");
        assert_eq!(view.status, "held", "reservation {id}");
    }
    let stock = client.stock(SkuRef::Code("SOCKS-3P")).await.expect("stock");
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (1_000, 300, 700));
    let audit = client.audit().await.expect("audit");
    assert_eq!(audit["clean"], true, "{audit}");
    let log = omsd.stderr();
    assert!(
        log.lines().any(|l| l.contains("partition recovered") && !l.contains("snapshot_lsn=0")),
        "no partition recovered from a snapshot:\n{log}"
    );
}
