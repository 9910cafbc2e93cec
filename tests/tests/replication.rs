//! Log replication end to end: the log subscription, `oms log tail`, follower mode and promotion,
//! against the real omsd and oms binaries.

use std::time::{Duration, Instant};

use oms_client::{Cart, Client, LogStream};
use oms_engine::replica::Replica;
use oms_engine::SkuId;
use oms_proto::json::{self as wire, JsonRequest, WarehouseKey};
use oms_proto::{LogRecords, Response, SkuRef, SnapshotChunk};
use oms_tests::{http_get, Omsd};

fn cart(sku: &str, qty: u32) -> Cart {
    Cart::new(3_600_000).line(sku, qty).customer(7)
}

async fn seed(client: &Client, skus: &[&str], on_hand: u64) {
    client.define_warehouse(1, "SH", "east", 0).await.expect("define warehouse");
    for sku in skus {
        client.define_sku(sku, 5).await.expect("define sku");
        client.set_on_hand(sku, "1", on_hand).await.expect("set on hand");
    }
}

/// Durable LSN per partition, from the audit.
async fn durable_lsns(client: &Client) -> Vec<u64> {
    let audit = client.audit().await.expect("audit");
    audit["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["durable_lsn"].as_u64().expect("durable_lsn"))
        .collect()
}

async fn wait_converged(primary: &Client, follower: &Client) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (p, f) = (durable_lsns(primary).await, durable_lsns(follower).await);
        if p == f {
            return p;
        }
        assert!(Instant::now() < deadline, "follower did not catch up: primary {p:?}, follower {f:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_streams_every_durable_record_in_order() {
    // Checks that a subscription from LSN 1 delivers every durable record of every partition,
    // densely and in order, ending each catch-up with an empty frame carrying the durable LSN, and
    // that replica partitions fed with them reach the same stock as the server.
    let omsd = Omsd::start(&["--partitions", "2"]);
    let client = omsd.client().await;
    seed(&client, &["A-1", "B-2", "C-3"], 100).await;
    for i in 0..30 {
        let sku = ["A-1", "B-2", "C-3"][i % 3];
        client.reserve_cart(&cart(sku, 1)).await.expect("reserve");
    }
    let durable = durable_lsns(&client).await;
    let mut stream =
        LogStream::connect(&omsd.addr().to_string(), None, "test", Duration::from_secs(5)).await.expect("connect");
    stream.subscribe(1, None, 1, false).await.expect("subscribe");
    let mut replica = Replica::new(2, stream.info().max_lines as usize);
    let mut caught_up = [false, false];
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !caught_up.iter().all(|c| *c) {
        assert!(Instant::now() < deadline, "subscription did not catch up");
        let (id, response) = stream.next().await.expect("frame");
        assert_eq!(id, 1, "frames carry the subscription's request id");
        match response {
            Response::LogRecords(LogRecords { partition, records, durable_lsn }) => {
                for r in &records {
                    replica
                        .apply(partition, r.lsn, r.record_type, &r.payload, &mut events)
                        .expect("records are dense and apply");
                }
                if records.is_empty() && replica.next_lsn(partition) - 1 == durable_lsn {
                    caught_up[partition as usize] = true;
                }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    for (p, d) in durable.iter().enumerate() {
        assert_eq!(replica.next_lsn(p as u32) - 1, *d, "partition {p} fully received");
    }
    for sku in ["A-1", "B-2", "C-3"] {
        let view = client.stock(SkuRef::Code(sku)).await.expect("stock");
        let p = view.sku_id % 2;
        let state = replica.partition(p).expect("replica partition");
        assert_eq!(state.available(SkuId(view.sku_id)), Some(view.available), "{sku} availability on the replica");
    }
    // New writes arrive on the open subscription.
    client.reserve_cart(&cart("A-1", 2)).await.expect("reserve");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "new record not streamed");
        if let (_, Response::LogRecords(LogRecords { records, .. })) = stream.next().await.expect("frame") {
            if !records.is_empty() {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_one_json_line_per_command_with_its_events() {
    // Checks `oms log tail --json`: one line per logged command with partition, lsn, now_ms,
    // command name and the events a replica partition recomputed; `--from` skips earlier LSNs.
    let omsd = Omsd::start(&["--partitions", "1"]);
    let client = omsd.client().await;
    seed(&client, &["TEE"], 10).await;
    let reserved = client.reserve_cart(&cart("TEE", 3)).await.expect("reserve");
    client.confirm(reserved.id).await.expect("confirm");
    let text = omsd.oms_ok(&["log", "tail", "--json"]);
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let commands: Vec<&str> = lines.iter().map(|l| l["command"].as_str().unwrap_or("")).collect();
    assert_eq!(commands, ["define_warehouse", "define_sku", "set_on_hand", "reserve", "confirm"], "{text}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["lsn"].as_u64(), Some(i as u64 + 1));
        assert_eq!(line["partition"].as_u64(), Some(0));
        assert!(line["now_ms"].as_u64().is_some());
    }
    let reserve_events: Vec<&str> =
        lines[3]["events"].as_array().expect("events").iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(reserve_events.contains(&"reserved"), "{reserve_events:?}");
    let reserved_event =
        lines[3]["events"].as_array().expect("events").iter().find(|e| e["event"] == "reserved").cloned();
    assert_eq!(reserved_event.and_then(|e| e["id"].as_u64()), Some(reserved.id));
    let from = omsd.oms_ok(&["log", "tail", "--json", "--from", "4"]);
    assert_eq!(from.lines().count(), 2, "{from}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_sends_a_snapshot_then_the_records_after_it() {
    // Checks that a subscription with from_lsn 0 and bootstrap gets the latest snapshot (written
    // at a graceful restart) in chunks, then exactly the records after its LSN, and that the
    // replica built from them matches the server; and that a subscription beyond the durable log
    // is refused lsn_ahead (17) with the durable LSN.
    let mut omsd = Omsd::start(&["--partitions", "1"]);
    {
        let client = omsd.client().await;
        seed(&client, &["MUG"], 50).await;
        client.reserve_cart(&cart("MUG", 4)).await.expect("reserve");
    }
    omsd.terminate();
    omsd.restart();
    let client = omsd.client().await;
    client.reserve_cart(&cart("MUG", 5)).await.expect("reserve after restart");
    let durable = durable_lsns(&client).await[0];
    let mut stream =
        LogStream::connect(&omsd.addr().to_string(), None, "test", Duration::from_secs(5)).await.expect("connect");
    stream.subscribe(9, Some(0), 0, true).await.expect("subscribe");
    let mut replica = Replica::new(1, 64);
    let mut snapshot_lsn = None;
    let mut events = Vec::new();
    loop {
        match stream.next().await.expect("frame").1 {
            Response::Snapshot(SnapshotChunk { partition, lsn, offset, total, data }) => {
                assert!(replica.next_lsn(0) == 1, "snapshot comes first");
                if replica.on_snapshot(partition, lsn, offset, total, &data).expect("chunk") {
                    snapshot_lsn = Some(lsn);
                }
            }
            Response::LogRecords(LogRecords { partition, records, durable_lsn }) => {
                let snap = snapshot_lsn.expect("snapshot before records");
                assert!(snap >= 4, "the restart wrote a snapshot at the end of the log (got {snap})");
                for r in &records {
                    assert!(r.lsn > snap);
                    replica.apply(partition, r.lsn, r.record_type, &r.payload, &mut events).expect("apply");
                }
                if replica.next_lsn(0) - 1 == durable_lsn && durable_lsn == durable {
                    break;
                }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let view = client.stock(SkuRef::Code("MUG")).await.expect("stock");
    assert_eq!(replica.partition(0).and_then(|p| p.available(SkuId(view.sku_id))), Some(view.available));
    assert_eq!(view.available, 41);
    let mut ahead =
        LogStream::connect(&omsd.addr().to_string(), None, "test", Duration::from_secs(5)).await.expect("connect");
    ahead.subscribe(3, Some(0), durable + 5, false).await.expect("subscribe");
    match ahead.next().await.expect("frame").1 {
        Response::Error(e) => {
            assert_eq!((e.code.0, &*e.name, e.available), (17, "lsn_ahead", Some(durable)));
        }
        other => panic!("expected lsn_ahead, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_replicates_refuses_writes_and_is_promoted() {
    // Checks follower mode: the follower's log reaches the primary's LSNs with the same state,
    // writes to it are answered read_only (10) while reads work, lag is in /metrics, a restarted
    // follower resumes from its own LSN, and after the primary dies `oms admin promote` makes it
    // writable with fresh ids (a new SKU does not reuse a replicated id).
    let mut primary = Omsd::start(&["--partitions", "2"]);
    let pclient = primary.client().await;
    seed(&pclient, &["A-1", "B-2", "C-3", "D-4"], 200).await;
    let primary_addr = primary.addr().to_string();
    let mut follower = Omsd::start(&["--partitions", "2", "--follow", &primary_addr]);
    let fclient = follower.client().await;
    for i in 0..40 {
        pclient.reserve_cart(&cart(["A-1", "B-2", "C-3", "D-4"][i % 4], 1)).await.expect("reserve");
    }
    let lsns = wait_converged(&pclient, &fclient).await;
    assert!(lsns.iter().sum::<u64>() >= 49, "{lsns:?}");
    for sku in ["A-1", "B-2", "C-3", "D-4"] {
        let p = pclient.stock(SkuRef::Code(sku)).await.expect("primary stock");
        let f = fclient.stock(SkuRef::Code(sku)).await.expect("follower stock (reads by code work)");
        assert_eq!((p.available, p.reserved), (f.available, f.reserved), "{sku}");
    }
    let refused = fclient.reserve_cart(&cart("A-1", 1)).await.expect_err("writes are refused on a follower");
    assert_eq!(refused.wire_error().map(|e| e.code.0), Some(10), "{refused}");
    let (_, metrics) = http_get(follower.admin_addr(), "/metrics").expect("metrics");
    assert!(metrics.contains("omsd_replication_lag_records{partition=\"0\"} 0"), "{metrics}");
    assert!(metrics.contains("omsd_replication_lag_seconds"), "{metrics}");

    // Restart the follower while the primary keeps writing: it resumes from its own log.
    follower.terminate();
    for i in 0..10 {
        pclient.reserve_cart(&cart(["A-1", "B-2"][i % 2], 2)).await.expect("reserve");
    }
    follower.restart();
    let fclient = follower.client().await;
    let lsns = wait_converged(&pclient, &fclient).await;
    let before = fclient.stock(SkuRef::Code("A-1")).await.expect("stock");

    // Promote after the primary dies.
    primary.kill();
    let promoted = follower.oms_json(&["admin", "promote"]);
    assert_eq!(promoted["promoted"], true, "{promoted}");
    for (p, lsn) in lsns.iter().enumerate() {
        assert_eq!(promoted["partitions"][p]["durable_lsn"].as_u64(), Some(*lsn), "{promoted}");
        assert_eq!(promoted["partitions"][p]["records_not_received"].as_u64(), Some(0), "{promoted}");
    }
    let reserved = fclient.reserve_cart(&cart("A-1", 3)).await.expect("the promoted follower accepts writes");
    let after = fclient.stock(SkuRef::Code("A-1")).await.expect("stock");
    assert_eq!(after.available + 3, before.available);
    fclient.confirm(reserved.id).await.expect("confirm");
    let id = fclient.define_sku("E-5", 0).await.expect("define a new sku");
    assert_eq!(id, 4, "fresh SKU id after the replicated ones");
    let again = follower.oms(&["admin", "promote"]);
    assert_eq!(again.status.code(), Some(1), "promoting a primary is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_answers_order_reads_and_refuses_order_writes() {
    // Checks that a follower serves the read-only order opcodes (order get and list, wave get,
    // waybill) from its replicated order books with the primary's answers, and still refuses
    // order writes as read_only (10).
    let primary = Omsd::start(&["--partitions", "2"]);
    let pclient = primary.client().await;
    seed(&pclient, &["PEN"], 50).await;
    let rules =
        "[carriers]\n[[carriers.carrier]]\ncode = \"SF\"\nprefix = \"SF\"\nrange_start = 1000\nrange_end = 1999\n";
    pclient.reload_rules(rules.into()).await.expect("rules");
    let payload = r#"{"order_id": "F-1", "buyer": "ann", "address": {"name": "Ann", "phone": "555",
        "province": "广东省", "city": "深圳市", "district": "南山区", "detail": "1 号"},
        "lines": [{"sku": "PEN", "qty": 2, "unit_price_cents": 100}]}"#;
    let imported = pclient.import_orders("native", payload.into()).await.expect("import");
    let id = imported["results"][0]["order"].as_u64().unwrap_or_else(|| panic!("{imported}"));
    let order = pclient.order(id).await.expect("order");
    let shipment = order["shipments"][0]["id"].as_u64().unwrap_or_else(|| panic!("{order}"));
    let waves = pclient
        .json(&JsonRequest::WaveCreate(wire::WaveCreate {
            warehouse: WarehouseKey::Id(1),
            carrier: None,
            max_shipments: 0,
        }))
        .await
        .expect("wave");
    let wave = waves["waves"][0]["wave"].as_u64().unwrap_or_else(|| panic!("{waves}"));
    // Packing waits for the wave's pick list to be scanned complete.
    let w = pclient.json(&JsonRequest::WaveGet(wire::IdBody { id: wave })).await.expect("wave");
    for item in w["pick_list"].as_array().into_iter().flatten() {
        let sku = item["sku_code"].as_str().unwrap_or_else(|| panic!("{w}"));
        let qty = item["qty"].as_u64().and_then(|q| u32::try_from(q).ok()).unwrap_or_else(|| panic!("{w}"));
        pclient.scan_pick(wave, sku, qty).await.expect("scan");
    }
    pclient.json(&JsonRequest::ShipmentPack(wire::ShipmentBody { shipment })).await.expect("pack");

    let follower = Omsd::start(&["--partitions", "2", "--follow", &primary.addr().to_string()]);
    let fclient = follower.client().await;
    wait_converged(&pclient, &fclient).await;
    assert_eq!(fclient.order(id).await.expect("order get on a follower"), pclient.order(id).await.expect("order"));
    assert_eq!(
        fclient.list_orders(None, 0).await.expect("order list on a follower"),
        pclient.list_orders(None, 0).await.expect("order list")
    );
    let wave_get = JsonRequest::WaveGet(wire::IdBody { id: wave });
    assert_eq!(
        fclient.json(&wave_get).await.expect("wave get on a follower"),
        pclient.json(&wave_get).await.expect("wave get")
    );
    let label = fclient.waybill(shipment).await.expect("waybill on a follower");
    assert!(label.waybill.starts_with("SF"), "{}", label.waybill);
    let refused = fclient
        .json(&JsonRequest::OrderCancel(wire::OrderReason { id, reason: "no".into() }))
        .await
        .expect_err("order writes are refused on a follower");
    assert_eq!(refused.wire_error().map(|e| e.code.0), Some(10), "{refused}");
}

/// The value of one metric line (`name{labels} value`) in a /metrics text.
fn metric(metrics: &str, line_prefix: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_after_replica_holds_writes_until_a_follower_has_them() {
    // Checks --replicas 1 --ack-after-replica: a write is not answered while no follower is
    // connected (its answer is held, visible in /metrics), is answered once a follower holds it,
    // and after SIGKILL of the primary the promoted follower has every acknowledged write.
    let mut primary =
        Omsd::start(&["--partitions", "2", "--replicas", "1", "--ack-after-replica", "--replica-ack-timeout", "15s"]);
    let pclient = primary.client().await;
    let seeding = {
        let client = pclient.clone();
        tokio::spawn(async move { seed(&client, &["A-1", "B-2", "C-3", "D-4"], 200).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!seeding.is_finished(), "a write was acknowledged with no follower connected");
    let (_, metrics) = http_get(primary.admin_addr(), "/metrics").expect("metrics");
    let held: f64 = ["0", "1"]
        .iter()
        .filter_map(|p| metric(&metrics, &format!("omsd_replica_held_answers{{partition=\"{p}\"}} ")))
        .sum();
    assert!(held >= 1.0, "held answers in /metrics: {metrics}");

    let primary_addr = primary.addr().to_string();
    let follower = Omsd::start(&["--partitions", "2", "--follow", &primary_addr, "--fsync", "always"]);
    tokio::time::timeout(Duration::from_secs(15), seeding)
        .await
        .expect("the held write is answered once the follower has it")
        .expect("seed task");

    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let reserved = pclient.reserve_cart(&cart(["A-1", "B-2", "C-3", "D-4"][i % 4], 1)).await.expect("reserve");
        acknowledged.push(reserved.id);
    }
    let (_, metrics) = http_get(primary.admin_addr(), "/metrics").expect("metrics");
    assert!(metrics.contains("omsd_replica_acked_lsn{follower="), "{metrics}");
    assert!(metric(&metrics, "omsd_replica_ack_wait_seconds_count ").unwrap_or(0.0) >= 40.0, "{metrics}");
    assert_eq!(metric(&metrics, "omsd_replica_timeouts_total "), Some(0.0), "{metrics}");

    // No convergence wait: every acknowledged write must already be on the follower.
    primary.kill();
    let promoted = follower.oms_json(&["admin", "promote"]);
    assert_eq!(promoted["promoted"], true, "{promoted}");
    let fclient = follower.client().await;
    for id in &acknowledged {
        let view = fclient.reservation(*id).await.expect("an acknowledged reservation survives the failover");
        assert_eq!(view.status, "held");
    }
    for sku in ["A-1", "B-2", "C-3", "D-4"] {
        let view = fclient.stock(SkuRef::Code(sku)).await.expect("stock");
        assert_eq!((view.available, view.reserved), (190, 10), "{sku}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_after_replica_without_follower_answers_replica_timeout() {
    // Checks that with --ack-after-replica and no follower a write is answered replica_timeout
    // (18) after the configured timeout instead of being acknowledged, and that reads still work.
    let omsd =
        Omsd::start(&["--partitions", "1", "--replicas", "1", "--ack-after-replica", "--replica-ack-timeout", "700ms"]);
    let client = omsd.client().await;
    let started = Instant::now();
    let refused = client.define_warehouse(1, "SH", "east", 0).await.expect_err("not acknowledged without a follower");
    let elapsed = started.elapsed();
    let error = refused.wire_error().expect("a typed error");
    assert_eq!((error.code.0, &*error.name), (18, "replica_timeout"), "{refused}");
    assert!(elapsed >= Duration::from_millis(650), "answered after {elapsed:?}");
    client.audit().await.expect("reads are not held");
    let (_, metrics) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
    assert_eq!(metric(&metrics, "omsd_replica_timeouts_total "), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "omsd_replica_held_answers{partition=\"0\"} "), Some(0.0), "{metrics}");
}

/// True when partition `p` of the server no longer retains LSN 1 (a subscription from 1 without
/// bootstrap is refused behind_retention).
async fn behind_retention(addr: &str, p: u32) -> bool {
    let mut stream = LogStream::connect(addr, None, "test", Duration::from_secs(5)).await.expect("connect");
    stream.subscribe(1, Some(p), 1, false).await.expect("subscribe");
    match stream.next().await.expect("frame").1 {
        Response::Error(e) => {
            assert_eq!(e.code, 16, "{e:?}");
            true
        }
        _ => false,
    }
}

/// Every partition's audit (counters, live reservations, SKUs, durable LSN, consistency check).
async fn audit_partitions(client: &Client) -> serde_json::Value {
    client.audit().await.expect("audit")["partitions"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_behind_retention_catches_up_from_the_primary_snapshot() {
    // Checks that a follower whose next LSN the primary no longer retains (small segments,
    // frequent snapshots, no minimum log age) installs the primary's snapshot, continues the log
    // after it, ends with the primary's state (audit and stock), keeps following new writes, and
    // recovers from the installed snapshot after a restart.
    let primary = Omsd::start(&[
        "--partitions",
        "2",
        "--segment-bytes",
        "8192",
        "--snapshot-every",
        "25",
        "--log-retention",
        "0s",
    ]);
    let pclient = primary.client().await;
    let skus = ["A-1", "B-2", "C-3", "D-4", "E-5", "F-6"];
    seed(&pclient, &skus, 100_000).await;
    let addr = primary.addr().to_string();
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // One batch request per round: its reservations share group commits, which keeps the
        // test fast while still filling several segments per partition.
        let carts: Vec<Cart> = (0..200).map(|i| cart(skus[i % skus.len()], 1 + (i % 3) as u32)).collect();
        let answers = pclient.reserve_carts(&carts).await.expect("reserve batch");
        for (i, answer) in answers.into_iter().enumerate() {
            let reserved = answer.expect("reserved");
            if i % 10 == 0 {
                pclient.confirm(reserved.id).await.expect("confirm");
            }
            ids.push(reserved.id);
        }
        // Segment deletion happens after a background snapshot, at a later batch.
        tokio::time::sleep(Duration::from_millis(200)).await;
        pclient.ping().await.expect("ping");
        if behind_retention(&addr, 0).await && behind_retention(&addr, 1).await {
            break;
        }
        assert!(Instant::now() < deadline, "the primary never deleted its first segments");
    }

    let mut follower = Omsd::start(&["--partitions", "2", "--follow", &addr]);
    let fclient = follower.client().await;
    wait_converged(&pclient, &fclient).await;
    assert_eq!(audit_partitions(&fclient).await, audit_partitions(&pclient).await);
    for sku in skus {
        let p = pclient.stock(SkuRef::Code(sku)).await.expect("primary stock");
        let f = fclient.stock(SkuRef::Code(sku)).await.expect("follower stock");
        assert_eq!((p.available, p.reserved, p.on_hand), (f.available, f.reserved, f.on_hand), "{sku}");
    }
    for id in ids.iter().step_by(37) {
        let p = pclient.reservation(*id).await.expect("primary reservation");
        let f = fclient.reservation(*id).await.expect("follower reservation");
        assert_eq!(p.status, f.status, "reservation {id}");
    }
    assert!(follower.stderr().contains("catching up from its snapshot"), "{}", follower.stderr());

    // New writes stream on after the installed snapshot; a restart recovers from it.
    for i in 0..30 {
        pclient.reserve_cart(&cart(skus[i % skus.len()], 1)).await.expect("reserve");
    }
    wait_converged(&pclient, &fclient).await;
    follower.terminate();
    for i in 0..10 {
        pclient.reserve_cart(&cart(skus[i % skus.len()], 2)).await.expect("reserve");
    }
    follower.restart();
    let fclient = follower.client().await;
    wait_converged(&pclient, &fclient).await;
    assert_eq!(audit_partitions(&fclient).await, audit_partitions(&pclient).await);
    for sku in skus {
        let p = pclient.stock(SkuRef::Code(sku)).await.expect("primary stock");
        let f = fclient.stock(SkuRef::Code(sku)).await.expect("follower stock");
        assert_eq!((p.available, p.reserved), (f.available, f.reserved), "{sku} after the follower's restart");
    }
}
