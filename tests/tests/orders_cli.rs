//! The order lifecycle through the real `oms` binary against a real omsd: channel import (the three
//! marketplace samples, a batch with a malformed order, idempotent re-import), audit holds from a
//! reloaded rules file, allocation, waves, pack / ship / deliver, tracking, a return received back
//! to stock, waybill PDFs, and a restart that keeps every order.

use oms_tests::{text, Omsd};
use serde_json::Value;
use std::path::Path;

const TAOBAO: &str = include_str!("../../engine/tests/orders_samples/taobao-style.json");
const JD: &str = include_str!("../../engine/tests/orders_samples/jd-style.json");
const DOUYIN: &str = include_str!("../../engine/tests/orders_samples/douyin-style.json");

const CATALOG: &str = r#"{
  "warehouses": [{"id": 1, "code": "SH", "region": "east", "priority": 0},
                 {"id": 2, "code": "BJ", "region": "north", "priority": 1}],
  "skus": [{"code": "TSHIRT-RED-XL"}, {"code": "CAP-BLK"}, {"code": "SNEAKER-42"},
           {"code": "SOCKS-3P"}, {"code": "MUG-WHT"}, {"code": "PEN"}],
  "stock": [{"sku": "TSHIRT-RED-XL", "warehouse": 1, "on_hand": 10},
            {"sku": "CAP-BLK", "warehouse": 1, "on_hand": 10},
            {"sku": "SNEAKER-42", "warehouse": 1, "on_hand": 10},
            {"sku": "SOCKS-3P", "warehouse": 1, "on_hand": 10},
            {"sku": "MUG-WHT", "warehouse": 1, "on_hand": 10},
            {"sku": "PEN", "warehouse": 1, "on_hand": 10}]
}"#;

/// JD's sample pays 429.00: above 400.00 it is held by "big-order".
const RULES: &str = r#"
[audit]
[[audit.rule]]
name = "big-order"
kind = "amount_above"
cents = 40000

[carriers]
default_weight_g = 500
[[carriers.carrier]]
code = "SF"
prefix = "SF"
range_start = 1000
range_end = 1999
base_cents = 1200
per_kg_cents = 200
cod = true
"#;

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// A server with the catalog and the rules loaded through the CLI, and the files' directory.
fn server_in(data_dir: Option<&Path>) -> (Omsd, tempfile::TempDir) {
    let omsd = match data_dir {
        Some(dir) => Omsd::start_in(dir, &[]),
        None => Omsd::start(&[]),
    };
    let files = tempfile::tempdir().expect("tempdir");
    omsd.oms_ok(&["catalog", "load", &write(files.path(), "catalog.json", CATALOG)]);
    let reloaded = omsd.oms_json(&["rules", "reload", &write(files.path(), "rules.toml", RULES)]);
    assert_eq!(reloaded["reloaded"], serde_json::json!(["order_set_audit_rules", "order_set_carrier_rules"]));
    (omsd, files)
}

/// Import one payload file; answers the single result.
fn import(omsd: &Omsd, dir: &Path, channel: &str, payload: &str) -> Value {
    let path = write(dir, &format!("{channel}.json"), payload);
    let doc = omsd.oms_json(&["order", "import", "--channel", channel, &path]);
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["results"].as_array().map(Vec::len), Some(1), "{doc}");
    doc["results"][0].clone()
}

fn order_id(result: &Value) -> String {
    result["order"].as_u64().unwrap_or_else(|| panic!("no order id in {result}")).to_string()
}

/// omsd's default partition count (the tests start it without `--partitions`).
const PARTITIONS: u64 = 2;

/// The first waybill number the order's partition issues from a range starting at `start`:
/// partition `p` takes the numbers `n % PARTITIONS == p`.
fn first_waybill(prefix: &str, start: u64, order: &str) -> String {
    let p = order.parse::<u64>().expect("order id") % PARTITIONS;
    format!("{prefix}{}", start + (p + PARTITIONS - start % PARTITIONS) % PARTITIONS)
}

/// Scan every item left on a wave's pick list through `oms wave scan` (packing waits for it).
fn scan_all(omsd: &Omsd, wave: u64) {
    let w = omsd.oms_json(&["wave", "get", &wave.to_string()]);
    for item in w["pick_list"].as_array().into_iter().flatten() {
        let left = item["qty"].as_u64().unwrap_or(0) - item["picked"].as_u64().unwrap_or(0);
        let sku = item["sku_code"].as_str().unwrap_or_else(|| panic!("pick item without a SKU code: {w}"));
        if left > 0 {
            omsd.oms_json(&["wave", "scan", &wave.to_string(), sku, "--qty", &left.to_string()]);
        }
    }
}

/// `oms wave create` in a warehouse, then every wave scanned complete.
fn wave_and_scan(omsd: &Omsd, warehouse: &str) -> Value {
    let waves = omsd.oms_json(&["wave", "create", "--warehouse", warehouse]);
    for w in waves["waves"].as_array().into_iter().flatten() {
        scan_all(omsd, w["wave"].as_u64().unwrap_or_else(|| panic!("{waves}")));
    }
    waves
}

/// The orders of `oms order list --json ARGS` (one page).
fn list(omsd: &Omsd, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["order", "list"];
    full.extend_from_slice(args);
    let page = omsd.oms_json(&full);
    page["orders"].as_array().cloned().unwrap_or_else(|| panic!("no orders in {page}"))
}

fn get(omsd: &Omsd, id: &str) -> Value {
    omsd.oms_json(&["order", "get", id])
}

fn stock(omsd: &Omsd, sku: &str) -> (u64, u64) {
    let v = omsd.oms_json(&["stock", "get", sku]);
    (v["on_hand"].as_u64().unwrap_or(u64::MAX), v["reserved"].as_u64().unwrap_or(u64::MAX))
}

#[test]
fn channel_samples_import_with_exact_amounts_and_reimport_changes_nothing() {
    // The Taobao, JD and Douyin samples import through `oms order import`; `oms order get --json`
    // shows status, holds with rule names, lines with allocated amounts and shipments with
    // warehouse and carrier; importing the same payload again changes nothing.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let tb = import(&omsd, dir, "taobao", TAOBAO);
    assert_eq!((tb["status"].as_str(), tb["unchanged"].as_bool()), (Some("allocated"), Some(false)), "{tb}");
    let jd = import(&omsd, dir, "jd", JD);
    assert_eq!(jd["status"], "on_hold", "{jd}");
    assert_eq!(jd["holds"], serde_json::json!(["big-order"]));
    let dy = import(&omsd, dir, "douyin", DOUYIN);
    assert_eq!(dy["status"], "allocated", "{dy}");

    let o = get(&omsd, &order_id(&tb));
    assert_eq!(o["external_id"], "2865530871004518");
    assert_eq!(o["status"], "allocated");
    assert_eq!(o["paid_cents"], 25_800);
    let lines = o["lines"].as_array().expect("lines");
    let amounts: Vec<(String, i64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["sku_code"].as_str().unwrap_or("").to_owned(),
                l["allocated_cents"].as_i64().unwrap_or(0),
                l["allocated_qty"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(amounts, vec![("TSHIRT-RED-XL".to_owned(), 17_143, 2), ("CAP-BLK".to_owned(), 8_657, 1)]);
    let shipment = &o["shipments"][0];
    assert_eq!(shipment["warehouse"], 1, "{o}");
    assert_eq!(shipment["carrier"], "SF", "{o}");
    assert_eq!(shipment["status"], "allocated");
    assert!(shipment["waybill"].is_null(), "the waybill is issued at pack");
    assert_eq!(stock(&omsd, "TSHIRT-RED-XL"), (10, 2), "two T-shirts reserved");

    // JD's discount is allocated pro rata; the held order holds no stock.
    let held = get(&omsd, &order_id(&jd));
    let jd_amounts: Vec<i64> =
        held["lines"].as_array().into_iter().flatten().map(|l| l["allocated_cents"].as_i64().unwrap_or(0)).collect();
    assert_eq!(jd_amounts, vec![37_292, 5_608]);
    assert_eq!(held["holds"], serde_json::json!(["big-order"]));
    assert_eq!(stock(&omsd, "SNEAKER-42"), (10, 0));

    // Listing by status.
    let on_hold = list(&omsd, &["--status", "on_hold"]);
    let ids: Vec<u64> = on_hold.iter().filter_map(|r| r["id"].as_u64()).collect();
    assert_eq!(ids, vec![jd["order"].as_u64().unwrap_or(0)]);
    let allocated = list(&omsd, &["--status", "allocated"]);
    assert_eq!(allocated.len(), 2, "{allocated:?}");
    let bad = omsd.oms(&["order", "list", "--status", "lost"]);
    assert_eq!(bad.status.code(), Some(1), "unknown status refused");

    // Re-import: same order, marked unchanged, nothing moved.
    let before = get(&omsd, &order_id(&tb));
    let again = import(&omsd, dir, "taobao", TAOBAO);
    assert_eq!((again["order"].clone(), again["unchanged"].as_bool()), (tb["order"].clone(), Some(true)));
    assert_eq!(get(&omsd, &order_id(&tb)), before);
    assert_eq!(stock(&omsd, "TSHIRT-RED-XL"), (10, 2));
    let human = omsd.oms_ok(&["order", "import", "--channel", "jd", &write(dir, "jd.json", JD)]);
    assert!(human.contains("unchanged"), "{human}");
    assert_eq!(list(&omsd, &[]).len(), 3);
}

#[test]
fn a_batch_imports_the_good_orders_and_names_the_malformed_field() {
    // A native batch of three with a malformed middle element: exit 1, the bad one is reported
    // with its index and field path, the other two are imported; an unknown SKU code and a
    // payload that is not JSON are refused with their paths.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let good = |id: &str, sku: &str| {
        format!(
            r#"{{"order_id": "{id}", "buyer": "ann", "address": {{"name": "Ann", "phone": "555", "province": "广东省",
                "city": "深圳市", "district": "南山区", "detail": "科技园 1 号", "zip": "518000"}},
                "lines": [{{"sku": "{sku}", "qty": 1, "unit_price_cents": 1000}}]}}"#
        )
    };
    let bad = good("B-2", "PEN").replace(r#""qty": 1"#, r#""qty": 0"#);
    let batch = format!("[{}, {}, {}]", good("B-1", "PEN"), bad, good("B-3", "MUG-WHT"));
    let path = write(dir, "batch.json", &batch);
    let out = omsd.oms(&["--json", "order", "import", "--channel", "native", &path]);
    assert_eq!(out.status.code(), Some(1), "a rejected order makes the import exit 1");
    let doc: Value = serde_json::from_str(&text(&out.stdout)).expect("JSON document");
    assert_eq!((doc["imported"].as_u64(), doc["rejected"].as_u64()), (Some(2), Some(1)), "{doc}");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results[1]["ok"], false);
    assert_eq!(results[1]["path"], "lines[0].qty", "{doc}");
    assert!(results[1]["error"].as_str().unwrap_or("").starts_with("[1].lines[0].qty"), "{doc}");
    assert!(results[0]["ok"] == true && results[2]["ok"] == true);
    assert_eq!(list(&omsd, &[]).len(), 2);

    let unknown = write(dir, "unknown.json", &good("U-1", "NO-SUCH-SKU"));
    let out = omsd.oms(&["--json", "order", "import", "--channel", "native", &unknown]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&text(&out.stdout)).expect("JSON document");
    assert_eq!(doc["results"][0]["path"], "lines[0].sku", "{doc}");

    let junk = write(dir, "junk.json", "{not json");
    let out = omsd.oms(&["order", "import", "--channel", "taobao", &junk]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("$: invalid JSON"), "{}", text(&out.stderr));
}

#[test]
fn held_order_approved_then_waved_packed_shipped_delivered_and_returned() {
    // The JD order is held by the reloaded audit rule, approved (and allocated), waved, packed
    // (waybill issued, label printed as a PDF), shipped (stock leaves), tracked, delivered; a
    // return of one line is received back to stock (on-hand goes up) and refunded.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let jd = import(&omsd, dir, "jd", JD);
    let id = order_id(&jd);
    assert_eq!(get(&omsd, &id)["status"], "on_hold");
    let approved = omsd.oms_json(&["order", "approve", &id]);
    assert_eq!(approved["status"], "allocated", "{approved}");
    assert_eq!(approved["allocation"]["result"], "full");
    assert_eq!(stock(&omsd, "SNEAKER-42"), (10, 1));
    // Approving again is an illegal transition (exit 1, typed error).
    let again = omsd.oms(&["--json", "order", "approve", &id]);
    assert_eq!(again.status.code(), Some(1));
    let err: Value = serde_json::from_str(&text(&again.stdout)).expect("JSON error");
    assert_eq!(err["error"]["name"], "illegal_transition", "{err}");

    let o = get(&omsd, &id);
    let shipment = o["shipments"][0]["id"].as_u64().expect("shipment id");
    let sid = shipment.to_string();
    // Packing before the wave is refused.
    assert_eq!(omsd.oms(&["shipment", "pack", &sid]).status.code(), Some(1));

    let waves = omsd.oms_json(&["wave", "create", "--warehouse", "1"]);
    let wave = waves["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["shipments"].as_array().into_iter().flatten().any(|s| s.as_u64() == Some(shipment)))
        .unwrap_or_else(|| panic!("no wave holds shipment {shipment}: {waves}"))["wave"]
        .as_u64()
        .expect("wave id");
    let w = omsd.oms_json(&["wave", "get", &wave.to_string()]);
    assert_eq!(w["warehouse"], 1);
    assert_eq!(w["pick_list"].as_array().map(Vec::len), Some(2), "{w}");
    assert_eq!(get(&omsd, &id)["status"], "picking");
    assert_eq!(omsd.oms(&["wave", "create", "--warehouse", "1"]).status.code(), Some(1), "nothing left to wave");
    // Nothing is packed before its wave is picked: a wrong item and too many units are refused
    // by the scan, and packing is refused until the list is scanned complete.
    let out = omsd.oms(&["--json", "shipment", "pack", &sid]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("not_picked"), "{}", text(&out.stdout));
    let wrong = omsd.oms(&["--json", "wave", "scan", &wave.to_string(), "PEN"]);
    assert!(text(&wrong.stdout).contains("wrong_sku"), "{}", text(&wrong.stdout));
    let first = &w["pick_list"][0];
    let too_many = (first["qty"].as_u64().unwrap_or(0) + 1).to_string();
    let sku = first["sku_code"].as_str().expect("pick items carry SKU codes");
    let over = omsd.oms(&["--json", "wave", "scan", &wave.to_string(), sku, "--qty", &too_many]);
    assert!(text(&over.stdout).contains("over_pick"), "{}", text(&over.stdout));
    scan_all(&omsd, wave);
    assert_eq!(omsd.oms_json(&["wave", "get", &wave.to_string()])["picked"], true);

    let packed = omsd.oms_json(&["shipment", "pack", &sid]);
    assert_eq!(packed["status"], "packed");
    let waybill = packed["waybill"].as_str().expect("waybill issued").to_owned();
    assert_eq!(waybill, first_waybill("SF", 1000, &id));

    let pdf_path = dir.join("label.pdf");
    let printed = omsd.oms_json(&["waybill", "print", &sid, "--out", &pdf_path.to_string_lossy()]);
    assert_eq!(printed["waybill"], waybill);
    let pdf = std::fs::read(&pdf_path).expect("label written");
    // The label's contents are checked with poppler and zbar in tests/labels.rs.
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert_eq!(printed["bytes"].as_u64(), Some(pdf.len() as u64));

    omsd.oms_ok(&["shipment", "ship", &sid]);
    assert_eq!(stock(&omsd, "SNEAKER-42"), (9, 0), "shipped units left on-hand");
    assert_eq!(stock(&omsd, "SOCKS-3P"), (9, 0));
    let tracked = omsd.oms_json(&["track", "add", &sid, "--event", "in_transit", "--location", "Beijing"]);
    assert_eq!(tracked["tracking"][0]["code"], "in_transit", "{tracked}");
    assert_eq!(tracked["tracking"][0]["location"], "Beijing");
    omsd.oms_ok(&["shipment", "deliver", &sid]);
    assert_eq!(get(&omsd, &id)["status"], "delivered");

    let created = omsd.oms_json(&["aftersale", "create", &id, "--type", "return", "--line", "SOCKS-3P:1"]);
    assert_eq!(created["status"], "requested", "{created}");
    assert_eq!(created["refund_cents"], 5_608, "the allocated amount of the line");
    let after_sale = created["after_sale"].as_u64().expect("after-sale id").to_string();
    let received = omsd.oms_json(&["aftersale", "receive", &after_sale]);
    assert_eq!(received["status"], "closed", "{received}");
    assert_eq!(received["refunded_cents"], 5_608);
    assert_eq!(stock(&omsd, "SOCKS-3P"), (10, 0), "the returned pair is back on hand");
    // Each unit can be claimed once.
    let twice = omsd.oms(&["aftersale", "create", &id, "--type", "return", "--line", "SOCKS-3P:1"]);
    assert_eq!(twice.status.code(), Some(1));
    let audit = omsd.oms_json(&["audit"]);
    assert_eq!(audit["clean"], true);
}

#[test]
fn cancel_releases_stock_and_reject_cancels_a_held_order() {
    // Cancelling an allocated order releases its reservation; rejecting a held order cancels it
    // with the reason; a waybill for an unpacked shipment is refused.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let dy = import(&omsd, dir, "douyin", DOUYIN);
    let id = order_id(&dy);
    assert_eq!(stock(&omsd, "MUG-WHT"), (10, 3));
    let shipment = get(&omsd, &id)["shipments"][0]["id"].as_u64().expect("shipment").to_string();
    let out = omsd.oms(&["waybill", "print", &shipment, "--out", &dir.join("x.pdf").to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "no waybill before pack");
    let cancelled = omsd.oms_json(&["order", "cancel", &id, "--reason", "buyer asked"]);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "buyer asked");
    assert_eq!(stock(&omsd, "MUG-WHT"), (10, 0), "reservation released");

    let jd = import(&omsd, dir, "jd", JD);
    let rejected = omsd.oms_json(&["order", "reject", &order_id(&jd), "--reason", "fraud"]);
    assert_eq!(rejected["status"], "cancelled", "{rejected}");
    assert_eq!(omsd.oms(&["order", "get", "42"]).status.code(), Some(1), "unknown order");
}

#[test]
fn every_order_survives_a_restart() {
    // Orders in several states (allocated, on hold, packed with a waybill) are read back identical
    // after SIGTERM and a start in the same data directory, and their lifecycle goes on.
    let data = tempfile::tempdir().expect("data dir");
    let (mut omsd, files) = server_in(Some(data.path()));
    let dir = files.path();
    let ids: Vec<String> = [("taobao", TAOBAO), ("jd", JD), ("douyin", DOUYIN)]
        .iter()
        .map(|(channel, payload)| order_id(&import(&omsd, dir, channel, payload)))
        .collect();
    let shipment = get(&omsd, &ids[0])["shipments"][0]["id"].as_u64().expect("shipment").to_string();
    wave_and_scan(&omsd, "1");
    let packed = omsd.oms_json(&["shipment", "pack", &shipment]);
    assert_eq!(packed["waybill"], first_waybill("SF", 1000, &ids[0]));
    let before: Vec<Value> = ids.iter().map(|id| get(&omsd, id)).collect();
    let list_before = omsd.oms_json(&["order", "list"]);
    omsd.terminate();
    drop(omsd);

    let omsd = Omsd::start_in(data.path(), &[]);
    let after: Vec<Value> = ids.iter().map(|id| get(&omsd, id)).collect();
    assert_eq!(after, before);
    assert_eq!(omsd.oms_json(&["order", "list"]), list_before);
    // The carrier rules came back with the log: the other waved shipment still packs with one.
    let other = get(&omsd, &ids[2])["shipments"][0]["id"].as_u64().expect("shipment").to_string();
    let next = omsd.oms_json(&["shipment", "pack", &other]);
    assert!(next["waybill"].as_str().is_some_and(|w| w.starts_with("SF")), "{next}");
    omsd.oms_ok(&["shipment", "ship", &shipment]);
    assert_eq!(get(&omsd, &ids[0])["status"], "shipped");
}

#[test]
fn a_cancel_whose_release_never_ran_is_reconciled_at_start() {
    // A crash between an order command and its stock command, made deterministic: the Cancel is
    // written to the order's partition log by hand (as omsd would have made it durable) and the
    // Release it implies is not. The next start reconciles: the hold is released before serving.
    use oms_engine::codec::{encode_envelope, RECORD_COMMAND};
    use oms_engine::orders::OrderCommand;
    use oms_engine::{Command, Envelope, Limits};

    let data = tempfile::tempdir().expect("data dir");
    let (mut omsd, files) = server_in(Some(data.path()));
    let id = order_id(&import(&omsd, files.path(), "douyin", DOUYIN));
    assert_eq!(stock(&omsd, "MUG-WHT"), (10, 3), "allocated: three mugs held");
    omsd.terminate();
    drop(omsd);

    let base = oms_wal::WalConfig::new(data.path());
    let mut recovered =
        oms_gateway::runtime::recover_partitions(data.path(), PARTITIONS as u32, Limits::default(), &base, false)
            .expect("recover");
    let order: u64 = id.parse().expect("order id");
    let p = &mut recovered[(order % PARTITIONS) as usize];
    let envelope = Envelope {
        now_ms: p.partition.now_ms() + 1,
        command: Command::Order(OrderCommand::Cancel { order, reason: "crash test".into() }),
    };
    let mut events = Vec::new();
    p.partition.apply(&envelope, &mut events).expect("cancel applies");
    p.wal.append(RECORD_COMMAND, &encode_envelope(&envelope).expect("encode")).expect("append");
    p.wal.commit().expect("commit");
    drop(recovered);

    let omsd = Omsd::start_in(data.path(), &[]);
    assert_eq!(get(&omsd, &id)["status"], "cancelled");
    assert_eq!(stock(&omsd, "MUG-WHT"), (10, 0), "the hold was released at start");
    assert!(omsd.stderr().contains("order stock effect reconciled"), "{}", omsd.stderr());
    assert_eq!(omsd.oms_json(&["audit"])["clean"], true);
}

#[test]
fn ticks_cancel_overdue_parked_orders_with_their_holds_and_retry_parked_ones_when_stock_arrives() {
    // A partially allocated order parked with a short deadline is cancelled by the partition's
    // tick, and its partial hold released without any request; a parked order is allocated on
    // its own once stock is received.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let rules = "[routing]\n[[routing.rule]]\nname = \"dy\"\nchannels = [\"douyin\"]\npartial = true\n\
                 on_unfillable = \"cancel\"\ncancel_after_ms = 300\n";
    omsd.oms_json(&["rules", "reload", &write(dir, "routing.toml", rules)]);
    omsd.oms_ok(&["stock", "set", "MUG-WHT", "--warehouse", "1", "--on-hand", "2"]);
    let dy = order_id(&import(&omsd, dir, "douyin", DOUYIN));
    assert_eq!(stock(&omsd, "MUG-WHT"), (2, 2), "two of three mugs held, the rest parked");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while get(&omsd, &dy)["status"] != "cancelled" || stock(&omsd, "MUG-WHT") != (2, 0) {
        assert!(std::time::Instant::now() < deadline, "not cancelled and released: {}", get(&omsd, &dy));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(get(&omsd, &dy)["cancel_reason"], "unfillable");

    omsd.oms_ok(&["stock", "set", "PEN", "--warehouse", "1", "--on-hand", "0"]);
    let native = r#"{"order_id": "P-1", "buyer": "pat", "address": {"name": "Pat", "phone": "555",
        "province": "广东省", "city": "深圳市", "district": "南山区", "detail": "1 号"},
        "lines": [{"sku": "PEN", "qty": 2, "unit_price_cents": 100}]}"#;
    let parked = import(&omsd, dir, "native", native);
    assert_eq!(parked["allocation"]["result"], "parked", "{parked}");
    let pen = order_id(&parked);
    omsd.oms_ok(&["stock", "receive", "PEN", "--warehouse", "1", "--qty", "5"]);
    while get(&omsd, &pen)["status"] != "allocated" {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(5), "{}", get(&omsd, &pen));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(stock(&omsd, "PEN"), (5, 2));
}

#[test]
fn nearest_warehouse_rule_routes_through_the_server() {
    // A `sort = "nearest"` rule reloaded through the CLI: a Guangdong buyer is served from BJ
    // (nearer by the distance table, though SH has priority) while it has stock, then from SH.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let rules = "[routing]\n[[routing.rule]]\nname = \"near\"\nsort = \"nearest\"\n\
                 [[routing.distance]]\nbuyer_region = \"广东省\"\nwarehouse_region = \"north\"\ndistance = 100\n\
                 [[routing.distance]]\nbuyer_region = \"广东省\"\nwarehouse_region = \"east\"\ndistance = 500\n";
    omsd.oms_json(&["rules", "reload", &write(dir, "near.toml", rules)]);
    omsd.oms_ok(&["stock", "set", "PEN", "--warehouse", "2", "--on-hand", "1"]);
    let order = |n: u32| {
        format!(
            r#"{{"order_id": "NEAR-{n}", "buyer": "b{n}", "address": {{"name": "Pat", "phone": "555",
            "province": "广东省", "city": "深圳市", "district": "南山区", "detail": "1 号"}},
            "lines": [{{"sku": "PEN", "qty": 1, "unit_price_cents": 100}}]}}"#
        )
    };
    let first = order_id(&import(&omsd, dir, "native", &order(1)));
    assert_eq!(get(&omsd, &first)["shipments"][0]["warehouse"], 2, "the nearest warehouse with stock");
    let second = order_id(&import(&omsd, dir, "native", &order(2)));
    assert_eq!(get(&omsd, &second)["shipments"][0]["warehouse"], 1, "then the next nearest");
}

#[test]
fn the_order_desk_pages_newest_first_filters_and_holds() {
    // Seven native orders through `oms order import`; `oms order list` pages them newest first
    // with a keyset cursor (an order imported between two pages does not shift the second), filters
    // by buyer, SKU, channel and status (incl. parked), and `oms order hold` / `unhold` move an
    // order waiting for stock on and off an operator hold that `--hold manual` lists.
    let (omsd, files) = server_in(None);
    let dir = files.path();
    let native = |id: &str, buyer: &str, sku: &str, qty: u32| {
        format!(
            r#"{{"order_id": "{id}", "buyer": "{buyer}", "address": {{"name": "Ann", "phone": "555", "province": "广东省",
                "city": "深圳市", "district": "南山区", "detail": "科技园 1 号", "zip": "518000"}},
                "lines": [{{"sku": "{sku}", "qty": {qty}, "unit_price_cents": 1000}}]}}"#
        )
    };
    let mut ids = Vec::new();
    for i in 0..6 {
        let buyer = if i % 2 == 0 { "ann" } else { "bob" };
        let sku = if i < 3 { "PEN" } else { "MUG-WHT" };
        ids.push(order_id(&import(&omsd, dir, "native", &native(&format!("D-{i}"), buyer, sku, 1))));
    }
    let page1 = omsd.oms_json(&["order", "list", "--limit", "4"]);
    let cursor = page1["next"].as_str().unwrap_or_else(|| panic!("a next cursor: {page1}")).to_owned();
    let first: Vec<String> = page1["orders"].as_array().into_iter().flatten().map(|r| r["id"].to_string()).collect();
    assert_eq!(first.len(), 4);
    // An order imported now is newer than the cursor: it never appears on a later page.
    let late = order_id(&import(&omsd, dir, "native", &native("D-late", "cy", "PEN", 30)));
    let rest: Vec<String> =
        list(&omsd, &["--limit", "4", "--cursor", &cursor]).iter().map(|r| r["id"].to_string()).collect();
    assert_eq!(rest.len(), 2, "{rest:?}");
    let mut seen: Vec<String> = first.iter().chain(&rest).cloned().collect();
    seen.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(seen, all, "the two pages hold every earlier order once");
    let newest = list(&omsd, &["--limit", "1"]);
    assert_eq!(newest[0]["id"].to_string(), late, "newest first");
    let created: Vec<u64> = list(&omsd, &[]).iter().filter_map(|r| r["created_at_ms"].as_u64()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    let oldest = list(&omsd, &["--oldest-first", "--limit", "1"]);
    assert_eq!(oldest[0]["id"].to_string(), ids[0]);

    // Filters: buyer, SKU (by code, shown by code), channel, a bad status.
    assert_eq!(list(&omsd, &["--buyer", "ann"]).len(), 3);
    let mugs = list(&omsd, &["--sku", "MUG-WHT"]);
    assert_eq!(mugs.len(), 3);
    assert!(mugs.iter().all(|r| r["skus"] == serde_json::json!(["MUG-WHT"])), "{mugs:?}");
    assert_eq!(list(&omsd, &["--channel", "taobao"]).len(), 0);
    assert_eq!(omsd.oms(&["order", "list", "--status", "lost"]).status.code(), Some(1));

    // 30 pens cannot be filled: the order is parked (its status still says approved).
    let parked = list(&omsd, &["--status", "parked"]);
    assert_eq!(parked.iter().map(|r| r["id"].to_string()).collect::<Vec<_>>(), vec![late.clone()]);
    assert_eq!(parked[0]["parked"], true);
    let held = omsd.oms_json(&["order", "hold", &late, "--reason", "call the buyer"]);
    assert_eq!(held["status"], "on_hold", "{held}");
    assert_eq!(held["holds"], serde_json::json!(["manual: call the buyer"]));
    let manual = list(&omsd, &["--hold", "manual"]);
    assert_eq!(manual.iter().map(|r| r["id"].to_string()).collect::<Vec<_>>(), vec![late.clone()]);
    assert_eq!(list(&omsd, &["--status", "parked"]).len(), 0, "a held order is not waiting for stock");
    // An allocated order cannot be held; an audit hold is not released by unhold.
    let out = omsd.oms(&["--json", "order", "hold", &ids[0], "--reason", "x"]);
    assert!(text(&out.stdout).contains("illegal_transition"), "{}", text(&out.stdout));
    let released = omsd.oms_json(&["order", "unhold", &late, "--reason", "buyer confirmed"]);
    assert_eq!(released["status"], "approved", "{released}");
    assert_eq!(released["allocation"]["result"], "parked", "{released}");
    assert_eq!(list(&omsd, &["--hold", "manual"]).len(), 0);
    let human = omsd.oms_ok(&["order", "list", "--status", "parked"]);
    assert!(human.contains("approved+parked") && human.contains("PEN"), "{human}");
}
