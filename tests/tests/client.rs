//! The async Rust client against the real omsd: pipelining, typed helpers, disconnects and reconnects.

use std::collections::HashSet;
use std::time::Duration;

use oms_client::{Cart, Client, ClientError, ClientOptions};
use oms_proto::SkuRef;
use oms_tests::Omsd;

fn cart(sku: &str, qty: u32) -> Cart {
    Cart::new(600_000).line(sku, qty)
}

async fn seed(client: &Client, sku: &str, on_hand: u64) {
    client.define_warehouse(1, "SH", "east", 0).await.expect("define warehouse");
    client.define_sku(sku, 0).await.expect("define sku");
    client.set_on_hand(sku, "SH", on_hand).await.expect("set on hand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_concurrent_reserves() {
    // Checks 1100 concurrent reserves on one shared client/connection against 1000 units: exactly 1000 succeed with unique ids.
    let omsd = Omsd::start(&[]);
    let client = omsd.client().await;
    seed(&client, "MUG-WHT", 1000).await;
    let tasks: Vec<_> = (0..1100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.reserve_cart(&cart("MUG-WHT", 1)).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(r) => assert!(ids.insert(r.id), "duplicate reservation id {}", r.id),
            Err(ClientError::Refused(e)) => {
                assert!(e.name == "insufficient_stock" || e.name == "sold_out", "unexpected refusal {e:?}");
                refused += 1;
            }
            Err(e) => panic!("reserve failed: {e}"),
        }
    }
    assert_eq!((ids.len(), refused), (1000, 100));
    let stock = client.stock(SkuRef::Code("MUG-WHT")).await.expect("stock");
    assert_eq!((stock.reserved, stock.available), (1000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_helpers() {
    // Checks the typed helpers: ping, lookup, reserve_batch, reservation, confirm/release, export, audit and refusals as Refused.
    let omsd = Omsd::start(&[]);
    let client = omsd.client().await;
    client.ping().await.expect("ping");
    let info = client.server_info().expect("server info");
    assert!(info.partitions >= 1);
    seed(&client, "CAP-BLK", 10).await;
    let ids = client.lookup_skus(vec!["CAP-BLK".into(), "NOPE".into()]).await.expect("lookup");
    assert!(ids[0].is_some() && ids[1].is_none());
    let batch =
        client.reserve_carts(&[cart("CAP-BLK", 4), cart("CAP-BLK", 100), cart("CAP-BLK", 6)]).await.expect("batch");
    assert_eq!(batch.len(), 3);
    let first = batch[0].as_ref().expect("first item reserved");
    assert_eq!(batch[1].as_ref().err().map(|e| e.code.0), Some(108));
    assert_eq!(batch[1].as_ref().err().and_then(|e| e.sku.as_deref()), Some("CAP-BLK"), "refusals name the SKU code");
    assert_eq!(first.allocations[0].sku, "CAP-BLK");
    assert_eq!(first.allocations[0].warehouse, "SH");
    assert!(batch[2].is_ok());
    client.confirm(first.id).await.expect("confirm");
    assert_eq!(client.reservation(first.id).await.expect("view").status, "confirmed");
    let second = batch[2].as_ref().expect("third item reserved");
    client.release(second.id).await.expect("release");
    match client.reserve_cart(&cart("CAP-BLK", 7)).await {
        Err(ClientError::Refused(e)) => assert_eq!((&*e.name, e.available), ("insufficient_stock", Some(6))),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match client.release(second.id).await {
        Err(ClientError::Refused(e)) => assert!(e.code >= 100),
        other => panic!("double release must be refused, got {other:?}"),
    }
    let export = client.export_stock().await.expect("export");
    assert!(export.iter().any(|r| r.code == "CAP-BLK" && r.available == 6), "{export:?}");
    assert_eq!(client.audit().await.expect("audit")["clean"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_server_restart() {
    // Checks that a dropped connection fails calls with Disconnected (no silent retry) and the next call reconnects after restart.
    let mut omsd = Omsd::start(&[]);
    let client = omsd.client().await;
    seed(&client, "SNEAKER-42", 100).await;
    let before = client.reserve_cart(&cart("SNEAKER-42", 1)).await.expect("reserve");

    // In-flight calls when the server dies end promptly as Ok, Refused, Disconnected or a
    // connection error, never hang.
    let in_flight: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.reserve_cart(&cart("SNEAKER-42", 1)).await })
        })
        .collect();
    omsd.kill();
    for task in in_flight {
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("call hung after server death")
            .expect("task");
        match result {
            Ok(_) | Err(ClientError::Refused(_)) | Err(ClientError::Disconnected) => {}
            // A task the scheduler starts only after the kill finds no connection and cannot
            // open one: a connection error, never applied, also fine.
            Err(e) if e.is_connection() => {}
            Err(e) => panic!("unexpected error for an in-flight call: {e}"),
        }
    }
    // While the server is down, calls fail as connection errors.
    let down = client.ping().await.expect_err("server is down");
    assert!(down.is_connection(), "{down}");

    omsd.restart();
    client.ping().await.expect("ping after restart reconnects");
    let view = client.reservation(before.id).await.expect("reservation survived");
    assert_eq!(view.status, "held");
    client.reserve_cart(&cart("SNEAKER-42", 1)).await.expect("reserve after reconnect");

    // With reconnect off, a dropped connection stays dropped.
    let fixed = Client::connect(omsd.addr().to_string(), ClientOptions { reconnect: false, ..Omsd::client_options() })
        .await
        .expect("connect");
    fixed.ping().await.expect("ping");
    omsd.kill();
    assert!(fixed.ping().await.is_err());
    omsd.restart();
    assert!(matches!(fixed.ping().await, Err(ClientError::Disconnected)));
    client.ping().await.expect("the reconnecting client recovers again");
}

#[tokio::test]
async fn connect_errors() {
    // Checks that connecting to a port nobody listens on fails fast with a connection error.
    let addr = oms_tests::free_addr().to_string();
    let err =
        Client::connect(addr, ClientOptions { connect_timeout: Duration::from_secs(2), ..ClientOptions::default() })
            .await
            .expect_err("nothing listens there");
    assert!(err.is_connection(), "{err}");
}
