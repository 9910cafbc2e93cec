//! Idempotency keys end to end through the real omsd and oms (issue 12, items 3 and 4): keys are
//! compared as keys and scoped to the API key that sent them, a reservation id is not derived
//! from its key, the same key with the same request replays and with another request is refused
//! `idempotency_key_reused` (code 150) on every path (one partition, lines in other partitions,
//! a multi-partition cart, a batch item, the `oms` CLI).
//!
//! Two partitions: SKU ids are given in definition order, so MUG-WHT (0) and CAP-BLK (2) live in
//! partition 0 and SOCKS-3P (1) in partition 1.

use std::path::Path;
use std::time::Duration;

use oms_client::proto::{ErrorCode, Reserved, SkuRef};
use oms_client::{Cart, Client, ClientError, ClientOptions};
use oms_tests::{text, Omsd};

const OPS_KEY: &str = "ops-key-7f3a91c2d4e5b608";
const SHOP_A_KEY: &str = "shop-a-key-1b2c3d4e5f607182";
const SHOP_B_KEY: &str = "shop-b-key-99aa88bb77cc66dd";

fn config(dir: &Path) -> String {
    let path = dir.join("omsd.toml");
    let text = format!(
        "[[api_keys]]\nname = \"ops\"\nkey = \"{OPS_KEY}\"\nrole = \"ops\"\n\
         [[api_keys]]\nname = \"shop-a\"\nkey = \"{SHOP_A_KEY}\"\nrole = \"storefront\"\n\
         [[api_keys]]\nname = \"shop-b\"\nkey = \"{SHOP_B_KEY}\"\nrole = \"storefront\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

async fn connect(omsd: &Omsd, key: &str) -> Client {
    let options = ClientOptions {
        api_key: Some(key.to_owned()),
        client_name: "idempotency-test".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        reconnect: false,
        ..ClientOptions::default()
    };
    Client::connect(omsd.addr().to_string(), options).await.expect("connect")
}

/// omsd with 2 partitions, three API keys and MUG-WHT, SOCKS-3P, CAP-BLK in stock (100 each).
async fn server(dir: &Path) -> Omsd {
    let config = config(dir);
    let omsd = Omsd::start(&["--partitions", "2", "--config", &config]);
    let ops = connect(&omsd, OPS_KEY).await;
    ops.define_warehouse(1, "SH", "east", 0).await.expect("warehouse");
    for code in ["MUG-WHT", "SOCKS-3P", "CAP-BLK"] {
        ops.define_sku(code, 0).await.expect("sku");
        ops.set_on_hand(code, "SH", 100).await.expect("stock");
    }
    omsd
}

fn cart(lines: &[(&str, u32)], key: &str) -> Cart {
    lines.iter().fold(Cart::new(600_000).key(key).customer(5), |cart, (sku, qty)| cart.line(sku, *qty))
}

async fn reserved(client: &Client, sku: &str) -> u64 {
    client.stock(SkuRef::Code(sku)).await.expect("stock").reserved
}

#[track_caller]
fn reused(result: Result<Reserved, ClientError>) {
    match result {
        Err(ClientError::Refused(e)) => {
            assert_eq!(
                (e.name.as_ref(), e.code),
                ("idempotency_key_reused", ErrorCode::IDEMPOTENCY_KEY_REUSED),
                "{e:?}"
            )
        }
        other => panic!("expected idempotency_key_reused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_compared_as_keys_and_scoped_to_the_api_key() {
    // Checks the review's collision: `order-20944892` and `order-22026484` hashed to the same
    // reservation id, so the second checkout was refused `duplicate_reservation` (also after the
    // first was released). Now both reserve, under unrelated ids; releasing the first leaves the
    // second replayable. The same key text from another shop's API key is another key: a new
    // reservation, not a replay of (or a block on) the first shop's.
    let dir = tempfile::tempdir().expect("tempdir");
    let omsd = server(dir.path()).await;
    let shop_a = connect(&omsd, SHOP_A_KEY).await;
    let first = shop_a.reserve_cart(&cart(&[("MUG-WHT", 1)], "order-20944892")).await.expect("first checkout");
    let second = shop_a.reserve_cart(&cart(&[("MUG-WHT", 1)], "order-22026484")).await.expect("second checkout");
    assert_ne!(first.id, second.id);
    assert!(!first.replayed && !second.replayed);
    shop_a.release(first.id).await.expect("release the first");
    let again = shop_a.reserve_cart(&cart(&[("MUG-WHT", 1)], "order-22026484")).await.expect("retry of the second");
    assert_eq!((again.id, again.replayed), (second.id, true));
    let shop_b = connect(&omsd, SHOP_B_KEY).await;
    let other_shop = shop_b.reserve_cart(&cart(&[("MUG-WHT", 1)], "order-22026484")).await.expect("shop b");
    assert_ne!(other_shop.id, second.id, "shop b's key must not replay shop a's reservation");
    assert!(!other_shop.replayed);
    assert_eq!(reserved(&shop_a, "MUG-WHT").await, 2);
    // Consecutive keyed reservations get ids from the server's counter, not from their keys.
    let ids: Vec<u64> = [first.id, second.id, other_shop.id].iter().map(|id| id & ((1 << 48) - 1)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_request_is_refused_everywhere() {
    // Checks the review's case (`--key k-same --line MUG-WHT:1`, then `--key k-same --line
    // SOCKS-3P:5` answered "ok, replayed" with the mug): the same key with another request is
    // refused idempotency_key_reused and reserves nothing, whether the second cart is in the same
    // partition, in another one, or spans both; a batch item and `oms reserve` (another client
    // program with the same API key: the same scope) get the same refusal; the same key with the
    // same request replays, for a multi-partition cart too.
    let dir = tempfile::tempdir().expect("tempdir");
    let omsd = server(dir.path()).await;
    let shop = connect(&omsd, SHOP_A_KEY).await;

    let mug = shop.reserve_cart(&cart(&[("MUG-WHT", 1)], "k-same")).await.expect("mug");
    reused(shop.reserve_cart(&cart(&[("CAP-BLK", 5)], "k-same")).await);
    reused(shop.reserve_cart(&cart(&[("SOCKS-3P", 5)], "k-same")).await);
    reused(shop.reserve_cart(&cart(&[("MUG-WHT", 1), ("SOCKS-3P", 5)], "k-same")).await);
    reused(shop.reserve_cart(&cart(&[("MUG-WHT", 2)], "k-same")).await);
    let replay = shop.reserve_cart(&cart(&[("MUG-WHT", 1)], "k-same")).await.expect("same request");
    assert_eq!((replay.id, replay.replayed), (mug.id, true));

    let multi = shop.reserve_cart(&cart(&[("MUG-WHT", 1), ("SOCKS-3P", 1)], "k-multi")).await.expect("multi");
    let replay = shop.reserve_cart(&cart(&[("SOCKS-3P", 1), ("MUG-WHT", 1)], "k-multi")).await.expect("multi again");
    assert_eq!((replay.id, replay.replayed), (multi.id, true), "line order does not make another request");
    reused(shop.reserve_cart(&cart(&[("MUG-WHT", 2), ("SOCKS-3P", 1)], "k-multi")).await);
    reused(shop.reserve_cart(&cart(&[("SOCKS-3P", 3)], "k-multi")).await);

    let items = shop
        .reserve_carts(&[cart(&[("CAP-BLK", 1)], "k-batch"), cart(&[("SOCKS-3P", 2)], "k-same")])
        .await
        .expect("batch");
    assert!(items[0].is_ok(), "{:?}", items[0]);
    match &items[1] {
        Err(e) => assert_eq!(e.name, "idempotency_key_reused"),
        Ok(r) => panic!("a batch item reusing a key was accepted: {r:?}"),
    }
    assert_eq!(
        (reserved(&shop, "MUG-WHT").await, reserved(&shop, "SOCKS-3P").await, reserved(&shop, "CAP-BLK").await),
        (2, 1, 1),
        "nothing beyond the first requests is held"
    );

    let out = omsd.oms(&["--api-key", SHOP_A_KEY, "reserve", "--key", "k-same", "--line", "SOCKS-3P:5"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("idempotency_key_reused (150)"), "{}", text(&out.stderr));
    // The same request as the first (TTL and customer too): a replay.
    let same = ["--ttl", "10m", "--customer", "5", "--key", "k-same", "--line", "MUG-WHT:1"];
    let out = omsd.oms(&[&["--api-key", SHOP_A_KEY, "--json", "reserve"][..], &same[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((answer["id"].as_u64(), answer["replayed"].as_bool()), (Some(mug.id), Some(true)), "{answer}");
    let audit = connect(&omsd, OPS_KEY).await.audit().await.expect("audit");
    assert_eq!(audit["clean"], true, "{audit}");
}
