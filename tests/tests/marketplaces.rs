//! The marketplace round trip through the REAL omsd binary against local simulators of Taobao,
//! JD and Douyin (`oms_connectors::sim`, in this test process): stock pushed to the platforms
//! across a flash sale on two channels, a restart in the middle of a push backlog, a throttling
//! platform, orders changed on the platform after import, and a shipment confirmation that fails
//! and later succeeds. The simulators check every signature and answer the platforms' error
//! shapes, so a wrongly signed or shaped request fails these tests.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oms_connectors::config::Platform;
use oms_connectors::sim::{SimConfig, SimItem, Simulator};
use oms_proto::SkuRef;
use oms_tests::Omsd;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

/// Items of the demo catalog (`omsd --demo`) the simulated shops sell, with on-hand totals:
/// PHONE-X 15, MUG-WHT 100, CAP-BLK 40, SNEAKER-42 35.
const ITEMS: [(&str, &str, &str); 4] = [
    ("PHONE-X", "5001", "6001"),
    ("MUG-WHT", "5002", "6002"),
    ("CAP-BLK", "5003", "6003"),
    ("SNEAKER-42", "5004", "6004"),
];

fn items() -> Vec<SimItem> {
    ITEMS
        .iter()
        .map(|(code, item, sku)| SimItem {
            code: (*code).into(),
            item_id: (*item).into(),
            sku_id: (*sku).into(),
            qty: 0,
            price_cents: 9_900,
        })
        .collect()
}

async fn simulator(platform: Platform, rate_limit: f64) -> Arc<Simulator> {
    let config = SimConfig {
        platform,
        app_key: format!("{}-key", platform.name()),
        secret: format!("{}-secret", platform.name()),
        session: format!("{}-session", platform.name()),
        rate_limit,
        items: items(),
        strict_items: true,
    };
    Simulator::start(config, "127.0.0.1:0".parse().expect("addr")).await.expect("simulator starts")
}

/// A `[[shops]]` table for `sim` (a mapping file of the test items; secrets from a file and the
/// environment-free TOML), plus `extra` lines.
fn shop_toml(dir: &Path, shop: &str, sim: &Simulator, extra: &str) -> String {
    let c = sim.config();
    let mapping = dir.join(format!("{shop}-skus.csv"));
    let mut csv = String::from("sku,item_id,sku_id\n");
    for (code, item, sku) in ITEMS {
        csv.push_str(&format!("{code},{item},{sku}\n"));
    }
    std::fs::write(&mapping, csv).expect("mapping file");
    let secret = dir.join(format!("{shop}.secret"));
    std::fs::write(&secret, format!("{}\n", c.secret)).expect("secret file");
    format!(
        "[[shops]]\nplatform = \"{}\"\nshop = \"{shop}\"\nendpoint = \"{}\"\napp_key = \"{}\"\nsecret_file = \"{}\"\n\
         session = \"{}\"\nmapping_file = \"{}\"\npush_interval_ms = 100\npull_interval_ms = 200\n\
         confirm_interval_ms = 200\nretry_initial_ms = 100\nretry_max_ms = 1000\n{extra}\n",
        c.platform.name(),
        sim.endpoint(),
        c.app_key,
        secret.display(),
        c.session,
        mapping.display()
    )
}

const CARRIER_RULES: &str = r#"
[carriers]
default_weight_g = 500
[[carriers.carrier]]
code = "SF"
prefix = "SF"
range_start = 1000
range_end = 1999
base_cents = 1200
per_kg_cents = 200
"#;

/// omsd with the demo catalog and `shops` as its configuration.
fn start(dir: &Path, shops: &str) -> Omsd {
    let config = dir.join("omsd.toml");
    std::fs::write(&config, shops).expect("config");
    let config = config.to_string_lossy().into_owned();
    Omsd::start(&["--config", &config, "--demo"])
}

/// Poll `check` until it holds (or fail with `what` after `WAIT`).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Blocking work (the `oms` binary) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

fn available(omsd: &Omsd, sku: &str) -> i64 {
    omsd.oms_json(&["stock", "get", sku])["available"].as_i64().unwrap_or(-1)
}

/// Every order (one page of `oms order list --json`: these tests import a handful).
fn orders(omsd: &Omsd) -> Vec<Value> {
    omsd.oms_json(&["order", "list", "--limit", "1000"])["orders"].as_array().cloned().unwrap_or_default()
}

/// `oms wave create` in `warehouse`, then every item of the new waves' pick lists scanned
/// (`oms wave scan`): packing waits for the scan.
fn wave_and_scan(omsd: &Omsd, warehouse: &str) {
    let waves = omsd.oms_json(&["wave", "create", "--warehouse", warehouse]);
    for w in waves["waves"].as_array().into_iter().flatten() {
        let id = w["wave"].as_u64().unwrap_or_else(|| panic!("{waves}")).to_string();
        let wave = omsd.oms_json(&["wave", "get", &id]);
        for item in wave["pick_list"].as_array().into_iter().flatten() {
            let sku = item["sku_code"].as_str().unwrap_or_else(|| panic!("{wave}"));
            omsd.oms_json(&["wave", "scan", &id, sku, "--qty", &item["qty"].to_string()]);
        }
    }
}

fn order_by_external(omsd: &Omsd, external: &str) -> Value {
    let row = orders(omsd).into_iter().find(|o| o["external_id"] == external);
    let id = row.unwrap_or_else(|| panic!("order {external} not imported"))["id"].to_string();
    omsd.oms_json(&["order", "get", &id])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_channels_sell_one_sku_in_a_flash_sale_without_overselling() {
    // PHONE-X (15 units) sells on Taobao and Douyin at once; each channel may show 40 % of what
    // is available. Buyers on both platforms buy one unit every 100 ms until neither shows any.
    // omsd pulls every order (no `oms order import`), allocates them, and pushes the falling
    // quantities (pulling before each push). Checked, as issue 18 states it: omsd allocates no
    // unit it does not have (an order beyond its stock waits, approved, in the unfillable
    // queue); sampled every 25 ms during the sale, a platform never shows more than omsd's
    // sellable quantity for its channel for longer than the push interval plus the largest push
    // lag omsd measured (plus the sampling step); and at the end each platform shows exactly
    // omsd's sellable quantity. The platforms' total sales are reported, not bounded: a set can
    // re-offer units bought on the platform between the pull before it and its arrival
    // (docs/CHANNELS.md, "Limits"). The stock lag metric is in /metrics.
    let dir = tempfile::tempdir().expect("dir");
    let taobao = simulator(Platform::Taobao, 50.0).await;
    let douyin = simulator(Platform::Douyin, 50.0).await;
    let config = shop_toml(dir.path(), "tb", &taobao, "rate_limit = 10")
        + &shop_toml(dir.path(), "dy", &douyin, "rate_limit = 10");
    let omsd = start(dir.path(), &config);
    let omsd = Arc::new(omsd);
    let o = omsd.clone();
    blocking(move || {
        o.oms_ok(&["channel", "set", "taobao", "--ratio", "40%"]);
        o.oms_ok(&["channel", "set", "douyin", "--ratio", "40%"]);
    })
    .await;
    // 40 % of 15.
    eventually("both platforms show 6 PHONE-X", || {
        taobao.shown("PHONE-X") == Some(6) && douyin.shown("PHONE-X") == Some(6)
    })
    .await;
    // What was pushed before the sale (the start-up sync, before the channel shares) is not judged.
    let updates_before_sale = taobao.updates().len();

    // Sample omsd's sellable quantity and what both platforms show, until the buyers stop.
    let selling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (taobao, douyin, selling) = (taobao.clone(), douyin.clone(), selling.clone());
        let client = omsd.client().await;
        tokio::spawn(async move {
            let mut samples: Vec<(Instant, i64, Option<i64>, Option<i64>)> = Vec::new();
            while selling.load(std::sync::atomic::Ordering::Relaxed) {
                let stock = client.stock(SkuRef::Code("PHONE-X")).await.expect("stock");
                let sellable = stock.available as i64 * 40 / 100;
                samples.push((Instant::now(), sellable, taobao.shown("PHONE-X"), douyin.shown("PHONE-X")));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            samples
        })
    };
    let mut buyers = Vec::new();
    for (n, sim) in [taobao.clone(), douyin.clone()].into_iter().enumerate() {
        buyers.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut bought = 0;
            // Keep buying for a while after the platform shows none: a late push would show up.
            while started.elapsed() < Duration::from_secs(6) {
                if sim.buy("PHONE-X", 1, &format!("buyer-{n}-{bought}")).is_some() {
                    bought += 1;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bought
        }));
    }
    let mut sold = 0;
    for b in buyers {
        sold += b.await.expect("buyer");
    }
    selling.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.expect("sampler");
    assert_eq!(sold, taobao.sold("PHONE-X") + douyin.sold("PHONE-X"));
    let o = omsd.clone();
    eventually("every sold order imported", || orders(&o).len() as i64 == sold).await;
    assert!(sold > 6, "the sale went past one channel's first share ({sold})");
    eprintln!(
        "flash sale: the platforms sold {sold} of 15 units (taobao {}, douyin {})",
        taobao.sold("PHONE-X"),
        douyin.sold("PHONE-X")
    );

    // The longest time a platform showed more than omsd's sellable quantity.
    let mut longest = Duration::ZERO;
    for platform in 0..2 {
        let mut since: Option<Instant> = None;
        for (at, sellable, tb, dy) in &samples {
            let shown = if platform == 0 { *tb } else { *dy };
            match (shown.is_some_and(|q| q > *sellable), since) {
                (true, None) => since = Some(*at),
                (false, Some(from)) => {
                    longest = longest.max(at.duration_since(from));
                    since = None;
                }
                _ => {}
            }
        }
        if let (Some(from), Some(last)) = (since, samples.last()) {
            longest = longest.max(last.0.duration_since(from));
        }
    }
    let o = omsd.clone();
    let status = blocking(move || o.oms_json(&["shop", "status"])).await;
    let max_lag = status["shops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["push_lag_max_ms"].as_u64())
        .max()
        .expect("push lags measured");
    let sample_gaps = samples.windows(2).map(|w| w[1].0.duration_since(w[0].0)).max().unwrap_or_default();
    let bound = Duration::from_millis(100 + max_lag) + sample_gaps;
    eprintln!("flash sale: a platform showed more than omsd's sellable quantity for at most {longest:?} (bound {bound:?}: push lag max {max_lag} ms, {} samples)", samples.len());
    assert!(samples.len() > 20, "{} samples", samples.len());
    assert!(longest <= bound, "a platform showed more than omsd's sellable quantity for {longest:?} (bound {bound:?})");

    // omsd never allocates a unit it does not have: an order the channel's share no longer
    // covers waits in the unfillable queue (approved, parked), on the desk's screen.
    let statuses: Vec<String> = orders(&omsd).iter().map(|r| r["status"].as_str().unwrap_or("").to_owned()).collect();
    assert!(statuses.iter().all(|s| s == "allocated" || s == "approved"), "{statuses:?}");
    let allocated = statuses.iter().filter(|s| *s == "allocated").count() as i64;
    assert!(allocated <= 15, "{allocated} orders allocated");
    let o = omsd.clone();
    let left = blocking(move || available(&o, "PHONE-X")).await;
    assert_eq!(left, 15 - allocated, "omsd holds exactly the allocated units");
    let expected = left * 40 / 100;
    eventually("both platforms show omsd's sellable quantity", || {
        taobao.shown("PHONE-X") == Some(expected) && douyin.shown("PHONE-X") == Some(expected)
    })
    .await;
    // The pushes went down as the stock went down, and none was ever above 6.
    let pushed: Vec<i64> =
        taobao.updates()[updates_before_sale..].iter().filter(|u| u.code == "PHONE-X").map(|u| u.qty).collect();
    assert!(pushed.iter().all(|q| *q <= 6), "{pushed:?}");
    assert!(taobao.received().iter().all(|r| r.outcome != "bad_signature"));
    let metrics = oms_tests::http_get(omsd.admin_addr(), "/metrics").expect("metrics").1;
    assert!(metrics.contains("omsd_shop_push_lag_seconds_count{shop=\"tb\"}"), "{metrics}");
    assert!(metrics.contains("omsd_shop_pull_lag_seconds{shop=\"dy\"}"), "{metrics}");
    assert!(metrics.contains("omsd_shop_pulled_orders_total{shop=\"tb\",outcome=\"imported\"}"), "{metrics}");
    taobao.stop();
    douyin.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_in_the_middle_of_a_push_backlog_pushes_what_is_owed() {
    // JD allows 2 requests/s. Stock of four SKUs changes at once, so the push backlog lasts a
    // couple of seconds; omsd is killed (SIGKILL) after the first update landed. After the
    // restart the values still owed are derived from omsd's state and the platform ends up
    // showing every SKU's current quantity. Then a clean stop and a change while omsd is down:
    // the restart pushes the change.
    let dir = tempfile::tempdir().expect("dir");
    let jd = simulator(Platform::Jd, 2.0).await;
    let config = shop_toml(dir.path(), "jd1", &jd, "rate_limit = 2");
    let mut omsd = start(dir.path(), &config);
    eventually("the start-up sync reached JD", || {
        ITEMS.iter().all(|(code, _, _)| jd.shown(code).is_some_and(|q| q > 0))
    })
    .await;
    let before = jd.updates().len();
    for (code, _, _) in ITEMS {
        omsd.oms_ok(&["stock", "receive", code, "--warehouse", "1", "--qty", "7"]);
    }
    eventually("one update of the backlog landed", || jd.updates().len() > before).await;
    assert!(
        ITEMS.iter().any(|(code, _, _)| jd.shown(code) != Some(available(&omsd, code))),
        "the backlog was not cut by the kill"
    );
    omsd.kill();
    omsd.restart();
    let expected: Vec<(String, i64)> = ITEMS.iter().map(|(c, _, _)| ((*c).to_owned(), available(&omsd, c))).collect();
    eventually("JD shows every SKU's quantity after the restart", || {
        expected.iter().all(|(code, qty)| jd.shown(code) == Some(*qty))
    })
    .await;

    // A clean stop writes what JD acknowledged; a receipt while omsd is down is a change the
    // restart must push, and it does.
    omsd.terminate();
    let state = std::fs::read_to_string(omsd.data_dir().join("shops").join("jd1.json")).expect("shop state");
    assert!(state.contains("\"clean\": true"), "{state}");
    omsd.restart();
    omsd.oms_ok(&["stock", "receive", "MUG-WHT", "--warehouse", "2", "--qty", "3"]);
    let mug = available(&omsd, "MUG-WHT");
    eventually("the change after the clean restart reached JD", || jd.shown("MUG-WHT") == Some(mug)).await;
    jd.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttling_platform_gets_every_value_in_the_end() {
    // Douyin allows 1 request/s but the shop is configured for 20: the platform answers its
    // throttled error, omsd backs off and retries with jitter, and every SKU's latest quantity
    // still arrives. `oms shop status` names the throttling as the last error.
    let dir = tempfile::tempdir().expect("dir");
    let douyin = simulator(Platform::Douyin, 1.0).await;
    let config = shop_toml(dir.path(), "dy-throttled", &douyin, "rate_limit = 20");
    let omsd = start(dir.path(), &config);
    for (code, _, _) in ITEMS {
        omsd.oms_ok(&["stock", "receive", code, "--warehouse", "1", "--qty", "2"]);
    }
    let expected: Vec<(String, i64)> = ITEMS.iter().map(|(c, _, _)| ((*c).to_owned(), available(&omsd, c))).collect();
    eventually("every value arrived", || expected.iter().all(|(code, qty)| douyin.shown(code) == Some(*qty))).await;
    assert!(douyin.received().iter().any(|r| r.outcome == "throttled"), "the platform throttled");
    let status = omsd.oms_json(&["shop", "status", "dy-throttled"]);
    let error = status["shops"][0]["last_error"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("throttled"), "{status}");
    let metrics = oms_tests::http_get(omsd.admin_addr(), "/metrics").expect("metrics").1;
    assert!(metrics.contains("outcome=\"throttled\""), "{metrics}");
    douyin.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_changed_on_the_platform_are_applied_or_raised() {
    // A Taobao order is pulled, imported and allocated. The buyer changes the address: omsd
    // applies it. The quantity changes after allocation: the order goes on the exception list
    // (`oms order exceptions`). Another order is cancelled on the platform: omsd cancels it and
    // its stock comes back (and is pushed). A refund request on a third goes on the list too.
    // `oms order import` of a changed payload is a revision, not a silent no-op.
    let dir = tempfile::tempdir().expect("dir");
    let taobao = simulator(Platform::Taobao, 50.0).await;
    let omsd = start(dir.path(), &shop_toml(dir.path(), "tb", &taobao, ""));
    eventually("the start-up sync", || {
        taobao.shown("MUG-WHT") == Some(100)
            && taobao.shown("CAP-BLK") == Some(40)
            && taobao.shown("SNEAKER-42") == Some(35)
    })
    .await;
    let a = taobao.buy("MUG-WHT", 2, "ann").expect("bought");
    let b = taobao.buy("CAP-BLK", 1, "bob").expect("bought");
    let c = taobao.buy("SNEAKER-42", 1, "cy").expect("bought");
    eventually("three orders allocated", || {
        let list = orders(&omsd);
        list.len() == 3 && list.iter().all(|o| o["status"] == "allocated")
    })
    .await;

    taobao.modify(&a, |t| t["receiver_address"] = "新地址 9 号".into());
    eventually("the new address applied", || order_by_external(&omsd, &a)["address"]["detail"] == "新地址 9 号").await;
    taobao.modify(&a, |t| {
        t["orders"]["order"][0]["num"] = 3.into();
        t["orders"]["order"][0]["total_fee"] = "297.00".into();
        t["orders"]["order"][0]["payment"] = "297.00".into();
        t["payment"] = "297.00".into();
        t["total_fee"] = "297.00".into();
    });
    taobao.modify(&b, |t| t["status"] = "TRADE_CLOSED".into());
    taobao.modify(&c, |t| t["orders"]["order"][0]["refund_status"] = "WAIT_SELLER_AGREE".into());
    eventually("the cancelled order is cancelled", || order_by_external(&omsd, &b)["status"] == "cancelled").await;
    eventually("the cap is back on the platform", || taobao.shown("CAP-BLK") == Some(40)).await;
    eventually("two exceptions on the desk", || {
        omsd.oms_json(&["order", "exceptions"])["exceptions"].as_array().map_or(0, Vec::len) == 2
    })
    .await;
    let desk = omsd.oms_json(&["order", "exceptions"]);
    let kinds: Vec<&str> =
        desk["exceptions"].as_array().into_iter().flatten().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"lines_changed") && kinds.contains(&"refund_requested"), "{desk}");
    let order_a = order_by_external(&omsd, &a);
    assert_eq!(order_a["lines"][0]["qty"], 2, "allocated lines stay");
    let human = omsd.oms_ok(&["order", "exceptions"]);
    assert!(human.contains("MUG-WHT 2 -> 3"), "{human}");

    // The desk resolves one; it leaves the list.
    let first = &desk["exceptions"][0];
    let (order, index) = (first["order"].to_string(), first["index"].to_string());
    omsd.oms_ok(&["order", "resolve", &order, &index]);
    assert_eq!(omsd.oms_json(&["order", "exceptions"])["exceptions"].as_array().map_or(0, Vec::len), 1);

    // `oms order import` of the platform's current payload of A: seen already (unchanged); of a
    // payload with another address: a revision that applies it.
    let mut payload = taobao.order(&a).expect("payload");
    let file = dir.path().join("a.json");
    std::fs::write(&file, payload.to_string()).expect("write");
    let same = omsd.oms_json(&["order", "import", "--channel", "taobao", &file.to_string_lossy()]);
    assert_eq!(same["results"][0]["unchanged"], true, "{same}");
    payload["receiver_address"] = "再一个地址".into();
    std::fs::write(&file, payload.to_string()).expect("write");
    let changed = omsd.oms_json(&["order", "import", "--channel", "taobao", &file.to_string_lossy()]);
    assert_eq!(changed["results"][0]["revised"], true, "{changed}");
    assert_eq!(order_by_external(&omsd, &a)["address"]["detail"], "再一个地址");
    taobao.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_shipment_confirmation_is_raised_and_later_succeeds() {
    // A JD order is pulled, allocated, waved, packed and shipped with carrier SF. JD refuses the
    // first three confirmations: after two failed attempts the parcel is on the exception list;
    // the retries go on with backoff, the fourth is accepted with JD's company code for SF (467)
    // and the waybill, and the exception is resolved. A second order split over two parcels
    // confirms once, after the last parcel left, with both waybills joined.
    let dir = tempfile::tempdir().expect("dir");
    let jd = simulator(Platform::Jd, 50.0).await;
    let omsd = start(dir.path(), &shop_toml(dir.path(), "jd1", &jd, "confirm_attempts = 2"));
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, CARRIER_RULES).expect("rules");
    omsd.oms_ok(&["rules", "reload", &rules.to_string_lossy()]);
    eventually("the start-up sync", || jd.shown("MUG-WHT") == Some(100)).await;
    let a = jd.buy("MUG-WHT", 1, "ann").expect("bought");
    jd.refuse_confirmations(&a, 3);
    eventually("the order allocated", || {
        orders(&omsd).iter().any(|o| o["external_id"] == a && o["status"] == "allocated")
    })
    .await;
    let order = order_by_external(&omsd, &a);
    let shipment_id = order["shipments"][0]["id"].clone();
    let shipment = shipment_id.to_string();
    wave_and_scan(&omsd, "1");
    let packed = omsd.oms_json(&["shipment", "pack", &shipment]);
    let waybill = packed["waybill"].as_str().expect("waybill").to_owned();
    omsd.oms_ok(&["shipment", "ship", &shipment]);

    eventually("the refused confirmation is on the desk", || {
        let desk = omsd.oms_json(&["order", "exceptions"]);
        desk["exceptions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["kind"] == "shipment_confirmation" && e["external_id"] == a && e["shipment"] == shipment_id)
    })
    .await;
    eventually("JD accepted the confirmation", || jd.confirmations().iter().any(|c| c.external_id == a)).await;
    let confirmed = jd.confirmations().into_iter().find(|c| c.external_id == a).expect("confirmation");
    assert_eq!((confirmed.company.as_str(), confirmed.waybill.as_str()), ("467", waybill.as_str()));
    eventually("the exception resolved", || {
        omsd.oms_json(&["order", "exceptions"])["exceptions"].as_array().is_some_and(|e| e.is_empty())
    })
    .await;
    let order = order_by_external(&omsd, &a);
    assert!(order["shipments"][0]["channel_confirmed_at_ms"].is_u64(), "{order}");
    let refused =
        jd.received().iter().filter(|r| r.method == "jingdong.pop.order.shipment" && r.outcome != "ok").count();
    assert_eq!(refused, 3);

    // B: 70 mugs, more than either warehouse holds (59 left in warehouse 1 after A, 40 in
    // warehouse 2): two parcels. JD takes one shipment call per order once every parcel left, so
    // nothing is sent while one parcel waits, then one call carries both waybills joined by `|`.
    let b = jd.buy("MUG-WHT", 70, "bob").expect("bought");
    eventually("the split order allocated", || {
        orders(&omsd).iter().any(|o| o["external_id"] == b && o["status"] == "allocated")
    })
    .await;
    let order = order_by_external(&omsd, &b);
    let parcels: Vec<(String, String)> = order["shipments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["id"].to_string(), s["warehouse"].to_string()))
        .collect();
    assert_eq!(parcels.len(), 2, "{order}");
    let mut waybills = Vec::new();
    for (shipment, warehouse) in &parcels {
        wave_and_scan(&omsd, warehouse.trim_matches('"'));
        let packed = omsd.oms_json(&["shipment", "pack", shipment]);
        waybills.push(packed["waybill"].as_str().expect("waybill").to_owned());
    }
    omsd.oms_ok(&["shipment", "ship", &parcels[0].0]);
    // Five confirmation rounds (200 ms each) with one parcel still in the warehouse.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!jd.confirmations().iter().any(|c| c.external_id == b), "confirmed before the last parcel left");
    omsd.oms_ok(&["shipment", "ship", &parcels[1].0]);
    eventually("JD accepted the split order", || jd.confirmations().iter().any(|c| c.external_id == b)).await;
    let sent: Vec<_> = jd.confirmations().into_iter().filter(|c| c.external_id == b).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let mut joined: Vec<&str> = sent[0].waybill.split('|').collect();
    joined.sort_unstable();
    waybills.sort();
    assert_eq!(joined, waybills, "{sent:?}");
    assert_eq!(sent[0].company, "467");
    eventually("both parcels marked confirmed", || {
        order_by_external(&omsd, &b)["shipments"]
            .as_array()
            .is_some_and(|s| s.iter().all(|p| p["channel_confirmed_at_ms"].is_u64()))
    })
    .await;
    jd.stop();
}
