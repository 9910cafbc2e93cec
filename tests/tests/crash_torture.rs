//! Crash torture: the REAL omsd (`--fsync always`, 2 partitions, frequent snapshots) is driven by
//! concurrent pipelined reservations (single- and multi-partition carts, batches, confirms and
//! releases), SIGKILLed at a seeded random moment, sometimes killed again while it recovers, and
//! restarted on the same data directory. After every restart we check, from the ledger of what
//! the clients were told:
//! - every acknowledged reservation is present with exactly its lines, in the status the
//!   acknowledged follow-ups imply (held / confirmed / released);
//! - no SKU is oversold: reserved <= on_hand, on-hand unchanged, and the acknowledged live units
//!   of a SKU fit in what the server holds as reserved (hence in the initial stock);
//! - the server's Audit is clean;
//! - a reservation whose answer never arrived (single reserve or batch item) is wholly present or
//!   wholly absent: retrying with the same idempotency key either replays ALL its lines or
//!   reserves afresh. (Multi-partition carts are excluded from this check by design: a part that
//!   succeeded before the crash may hold its units until its TTL, see ARCHITECTURE.md.)
//!
//! A bug this test found (docs/RELIABILITY.md, findings 2 and 12, fixed): the idempotent retry of
//! a multi-partition reservation whose first attempt was partly durable answered an id that held
//! only part of the lines. `CRASH_TORTURE_SKIP_KNOWN_BUG=1` counts those instead of failing, for
//! bisecting old builds.
//!
//! Seeds: `CRASH_TORTURE_SEEDS` (count, default 5) starting at `CRASH_TORTURE_SEED` (default
//! 1); `loadtest/scripts/crash_torture.sh` runs many by hand. A failure names its seed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oms_client::{Client, ClientError, ClientOptions};
use oms_proto::{Line, Reserve, Reserved, SkuRef};
use oms_tests::{free_addr, omsd_bin, Omsd};

const SKUS: usize = 8;
const PARTITIONS: u32 = 2;
const INITIAL_STOCK: u64 = 1_500;
const ROUNDS_PER_SEED: u32 = 2;
const CONNECTIONS: usize = 4;
const TASKS_PER_CONNECTION: usize = 4;
/// Upper bound on requests one driver task sends in a round (the kill normally comes first).
const REQUESTS_PER_TASK_LIMIT: usize = 5_000;

/// omsd's flags; `CRASH_TORTURE_SNAPSHOT_EVERY` overrides the snapshot interval (default 150
/// logged commands, so most recoveries start from a snapshot).
fn args() -> Vec<String> {
    let snapshot_every = std::env::var("CRASH_TORTURE_SNAPSHOT_EVERY").unwrap_or_else(|_| "150".to_owned());
    ["--partitions", "2", "--fsync", "always", "--snapshot-every", &snapshot_every]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

fn omsd_in(dir: &Path) -> Omsd {
    let args = args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Omsd::start_in(dir, &args)
}

/// Deterministic generator (splitmix64).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A cart as sent: (sku id, qty) lines, its idempotency key, whether all lines share a partition.
#[derive(Clone, Debug)]
struct Cart {
    key: String,
    lines: Vec<(u32, u32)>,
    single_partition: bool,
}

impl Cart {
    /// Reserve this cart (lines by SKU id) through `client`.
    async fn reserve(&self, client: &Client) -> Result<Reserved, ClientError> {
        let lines: Vec<Line<'_>> = self.lines.iter().map(|&(sku, qty)| Line::id(sku, qty)).collect();
        client.reserve(&Reserve::new(&lines, 3_600_000).key(&self.key).customer(7)).await
    }
}

/// What the clients were told.
#[derive(Default)]
struct Ledger {
    /// Acknowledged reservations: id -> cart.
    reserved: BTreeMap<u64, Cart>,
    /// Reserves (or batch items) whose answer never arrived.
    unknown: Vec<Cart>,
    /// Acknowledged follow-ups.
    confirmed: Vec<u64>,
    released: Vec<u64>,
    /// Follow-ups whose answer never arrived.
    pending_follow_up: Vec<u64>,
    refused: u64,
    /// Unacknowledged reservations found wholly present / absent on retry.
    unknown_present: u64,
    unknown_absent: u64,
    /// Retries that hit the known split-retry bug (only with CRASH_TORTURE_SKIP_KNOWN_BUG).
    split_retries: u64,
}

fn client_options() -> ClientOptions {
    ClientOptions {
        client_name: "crash-torture".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        reconnect: false,
        ..ClientOptions::default()
    }
}

/// Every wholly-in-one-partition cart maps to the same partition for all its lines.
fn make_cart(rng: &mut Rng, skus: &[u32], seq: &str) -> Cart {
    let n = 1 + rng.below(3) as usize;
    let mut lines: Vec<(u32, u32)> = Vec::new();
    while lines.len() < n {
        let sku = skus[rng.below(skus.len() as u64) as usize];
        if lines.iter().all(|(s, _)| *s != sku) {
            lines.push((sku, 1 + rng.below(3) as u32));
        }
    }
    let first = lines[0].0 % PARTITIONS;
    let single_partition = lines.iter().all(|(s, _)| s % PARTITIONS == first);
    Cart { key: format!("ct-{seq}"), lines, single_partition }
}

async fn driver(
    client: Client,
    mut rng: Rng,
    skus: Arc<Vec<u32>>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    name: String,
) {
    let mut mine: Vec<u64> = Vec::new();
    for i in 0..REQUESTS_PER_TASK_LIMIT {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let roll = rng.below(100);
        if roll < 10 && !mine.is_empty() {
            // Confirm or release one of our acknowledged reservations.
            let id = mine.swap_remove(rng.below(mine.len() as u64) as usize);
            let confirm = roll < 6;
            let result = if confirm { client.confirm(id).await } else { client.release(id).await };
            let mut l = ledger.lock().unwrap();
            match result {
                Ok(()) if confirm => l.confirmed.push(id),
                Ok(()) => l.released.push(id),
                Err(e) if e.is_connection() => {
                    l.pending_follow_up.push(id);
                    return;
                }
                Err(e) => panic!("{name}: follow-up of {id} refused: {e}"),
            }
        } else if roll < 25 {
            let carts: Vec<Cart> =
                (0..2 + rng.below(4)).map(|j| make_cart(&mut rng, &skus, &format!("{name}-{i}-{j}"))).collect();
            let lines: Vec<Vec<Line<'_>>> =
                carts.iter().map(|c| c.lines.iter().map(|&(sku, qty)| Line::id(sku, qty)).collect()).collect();
            let reserves: Vec<Reserve<'_>> =
                carts.iter().zip(&lines).map(|(c, l)| Reserve::new(l, 3_600_000).key(&c.key).customer(7)).collect();
            let result = client.reserve_batch(&reserves).await;
            let mut l = ledger.lock().unwrap();
            match result {
                Ok(items) => {
                    assert_eq!(items.len(), carts.len(), "{name}: batch answer length");
                    for (cart, item) in carts.into_iter().zip(items) {
                        match item {
                            Ok(r) => {
                                check_answer(&r, &cart);
                                mine.push(r.id);
                                l.reserved.insert(r.id, cart);
                            }
                            Err(e) => {
                                assert!(refusal_expected(&e.name), "{name}: batch item refused {e:?}");
                                l.refused += 1;
                            }
                        }
                    }
                }
                Err(e) if e.is_connection() => {
                    l.unknown.extend(carts);
                    return;
                }
                Err(e) => panic!("{name}: batch failed: {e}"),
            }
        } else {
            let cart = make_cart(&mut rng, &skus, &format!("{name}-{i}"));
            let result = cart.reserve(&client).await;
            let mut l = ledger.lock().unwrap();
            match result {
                Ok(r) => {
                    check_answer(&r, &cart);
                    mine.push(r.id);
                    l.reserved.insert(r.id, cart);
                }
                Err(ClientError::Refused(e)) if refusal_expected(&e.name) => l.refused += 1,
                Err(e) if e.is_connection() => {
                    l.unknown.push(cart);
                    return;
                }
                Err(e) => panic!("{name}: reserve failed: {e}"),
            }
        }
    }
}

fn refusal_expected(name: &str) -> bool {
    matches!(name, "insufficient_stock" | "sold_out" | "busy")
}

/// An answer covers exactly the cart's lines.
fn check_answer(r: &Reserved, cart: &Cart) {
    let mut got: BTreeMap<u32, u32> = BTreeMap::new();
    for a in &r.allocations {
        *got.entry(a.sku_id).or_default() += a.qty;
    }
    let want: BTreeMap<u32, u32> = cart.lines.iter().copied().collect();
    assert_eq!(got, want, "reservation {} answered with other lines than asked (key {})", r.id, cart.key);
}

/// Spawn omsd on the data dir and SIGKILL it after `delay`, whether or not it finished recovery.
fn kill_during_recovery(data_dir: &Path, delay: Duration) {
    let mut child = Command::new(omsd_bin())
        .arg("--listen")
        .arg(free_addr().to_string())
        .arg("--admin-listen")
        .arg(free_addr().to_string())
        .arg("--http-listen")
        .arg("127.0.0.1:0")
        .arg("--console-listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn omsd");
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

async fn seed_catalog(client: &Client) -> Vec<u32> {
    client.define_warehouse(1, "SH", "east", 0).await.expect("define warehouse");
    client.define_warehouse(2, "BJ", "north", 1).await.expect("define warehouse");
    let mut ids = Vec::new();
    for i in 0..SKUS {
        let code = format!("CT-{i}");
        ids.push(client.define_sku(&code, 0).await.expect("define sku"));
        for (warehouse, on_hand) in [("SH", INITIAL_STOCK / 2), ("BJ", INITIAL_STOCK - INITIAL_STOCK / 2)] {
            client.set_on_hand(&code, warehouse, on_hand).await.expect("stock");
        }
    }
    ids
}

/// The checks after a restart; panics with the seed on the first violation.
async fn verify(client: &Client, ledger: &mut Ledger, skus: &[u32], seed: u64, round: u32) {
    let ctx = format!("seed {seed} round {round}");
    let confirmed: std::collections::HashSet<u64> = ledger.confirmed.iter().copied().collect();
    let released: std::collections::HashSet<u64> = ledger.released.iter().copied().collect();
    let pending: std::collections::HashSet<u64> = ledger.pending_follow_up.iter().copied().collect();
    let mut live_units: HashMap<u32, u64> = HashMap::new();
    let ids: Vec<u64> = ledger.reserved.keys().copied().collect();
    for chunk in ids.chunks(256) {
        // Pipelined over the one connection: one task per lookup.
        let lookups: Vec<_> = chunk
            .iter()
            .map(|id| {
                let (client, id) = (client.clone(), *id);
                tokio::spawn(async move { client.reservation(id).await })
            })
            .collect();
        let mut views = Vec::with_capacity(lookups.len());
        for lookup in lookups {
            views.push(lookup.await.expect("lookup task"));
        }
        for (id, view) in chunk.iter().zip(views) {
            let cart = &ledger.reserved[id];
            let view =
                view.unwrap_or_else(|e| panic!("{ctx}: acknowledged reservation {id} (key {}) lost: {e}", cart.key));
            let expected: &[&str] = if pending.contains(id) {
                // "partial": a multi-partition confirm or release the crash cut off after some
                // partitions (each part's status is listed).
                &["held", "confirmed", "released", "partial"]
            } else if confirmed.contains(id) {
                &["confirmed"]
            } else if released.contains(id) {
                &["released"]
            } else {
                &["held"]
            };
            assert!(
                expected.contains(&view.status.name()),
                "{ctx}: reservation {id} is {} (expected {expected:?})",
                view.status
            );
            if view.status != "released" {
                let mut got: BTreeMap<u32, u32> = BTreeMap::new();
                for a in &view.allocations {
                    *got.entry(a.sku_id).or_default() += a.qty;
                }
                let want: BTreeMap<u32, u32> = cart.lines.iter().copied().collect();
                assert_eq!(
                    got,
                    want,
                    "{ctx}: reservation {id} (partition set {:#x}, key {}) came back with other lines; view {view:?}; \
                     follow-up pending {}, confirmed {}, released {}",
                    id >> 48,
                    cart.key,
                    pending.contains(id),
                    confirmed.contains(id),
                    released.contains(id)
                );
                // Only the parts still holding stock count (all of them unless "partial").
                let ended_parts: Vec<u32> = view
                    .parts
                    .iter()
                    .filter(|p| matches!(p.status.name(), "released" | "expired" | "shipped"))
                    .map(|p| p.partition)
                    .collect();
                for (sku, qty) in &cart.lines {
                    if !ended_parts.contains(&(sku % PARTITIONS)) {
                        *live_units.entry(*sku).or_default() += u64::from(*qty);
                    }
                }
            }
        }
    }
    for (i, sku) in skus.iter().enumerate() {
        let stock = client.stock(SkuRef::Id(*sku)).await.unwrap_or_else(|e| panic!("{ctx}: stock of CT-{i}: {e}"));
        assert_eq!(stock.on_hand, INITIAL_STOCK, "{ctx}: on-hand of CT-{i} changed");
        assert!(stock.reserved <= stock.on_hand, "{ctx}: CT-{i} oversold: {stock:?}");
        assert_eq!(
            stock.available,
            stock.on_hand - stock.reserved - stock.pooled - stock.unavailable,
            "{ctx}: CT-{i}: {stock:?}"
        );
        let acked = live_units.get(sku).copied().unwrap_or(0);
        assert!(
            acked <= stock.reserved,
            "{ctx}: CT-{i}: {acked} acknowledged units live but only {} reserved",
            stock.reserved
        );
        assert!(acked <= INITIAL_STOCK, "{ctx}: CT-{i}: {acked} acknowledged units > initial stock");
    }
    let audit = client.audit().await.unwrap_or_else(|e| panic!("{ctx}: audit: {e}"));
    assert_eq!(audit["clean"], true, "{ctx}: audit not clean: {audit}");

    // Unacknowledged reservations: retry each with its idempotency key.
    let unknown = std::mem::take(&mut ledger.unknown);
    for cart in unknown {
        match cart.reserve(client).await {
            Ok(r) => {
                // Whatever the first attempt left behind, the retry's answer must name ONE
                // reservation that holds every line: present wholly (replayed) or made afresh.
                check_answer(&r, &cart);
                let view =
                    client.reservation(r.id).await.unwrap_or_else(|e| panic!("{ctx}: retried {} missing: {e}", r.id));
                let mut got: BTreeMap<u32, u32> = BTreeMap::new();
                for a in &view.allocations {
                    *got.entry(a.sku_id).or_default() += a.qty;
                }
                let want: BTreeMap<u32, u32> = cart.lines.iter().copied().collect();
                if got != want && !cart.single_partition && std::env::var_os("CRASH_TORTURE_SKIP_KNOWN_BUG").is_some() {
                    // Known bug (docs/RELIABILITY.md, "split retry"): counted, not failed, so a
                    // long run can still check everything else.
                    ledger.split_retries += 1;
                    continue;
                }
                assert_eq!(
                    got,
                    want,
                    "{ctx}: the idempotent retry of unacknowledged reservation (key {}, {} partition(s)) answered id {} \
                     (replayed: {}) covering every line, but that id holds only some of them: the first attempt was \
                     partly durable, and the retry replayed that part under its old id while reserving the rest afresh \
                     under the new one",
                    cart.key,
                    if cart.single_partition { "one" } else { "several" },
                    r.id,
                    r.replayed
                );
                if r.replayed {
                    ledger.unknown_present += 1;
                } else {
                    ledger.unknown_absent += 1;
                }
                check_answer(&r, &cart);
                ledger.reserved.insert(r.id, cart);
            }
            Err(ClientError::Refused(e)) if refusal_expected(&e.name) => ledger.unknown_absent += 1,
            Err(e) => panic!("{ctx}: retry of unacknowledged {} failed: {e}", cart.key),
        }
    }
}

async fn one_seed(seed: u64) -> (u64, u64, u64, u64, u64) {
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("data dir");
    let mut omsd = omsd_in(dir.path());
    let admin = omsd.client().await;
    let skus = Arc::new(seed_catalog(&admin).await);
    drop(admin);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut crashes = 0;
    for round in 0..ROUNDS_PER_SEED {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let client = Client::connect(omsd.addr().to_string(), client_options()).await.expect("connect");
            for t in 0..TASKS_PER_CONNECTION {
                let name = format!("r{round}c{c}t{t}");
                tasks.push(tokio::spawn(driver(
                    client.clone(),
                    Rng(rng.next()),
                    skus.clone(),
                    ledger.clone(),
                    stop.clone(),
                    name,
                )));
            }
        }
        let kill_after = Duration::from_millis(100 + rng.below(900));
        tokio::time::sleep(kill_after).await;
        omsd.kill();
        crashes += 1;
        for task in tasks {
            if let Err(e) = task.await {
                panic!("seed {seed} round {round}: driver panicked: {e}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        if rng.below(2) == 0 {
            // Crash again while recovering (often before it is ready).
            let delay = Duration::from_millis(rng.below(120));
            let data_dir = dir.path().to_path_buf();
            tokio::task::spawn_blocking(move || kill_during_recovery(&data_dir, delay)).await.expect("recovery kill");
            crashes += 1;
        }
        omsd = tokio::task::spawn_blocking({
            let path = dir.path().to_path_buf();
            move || omsd_in(&path)
        })
        .await
        .expect("restart");
        // Recovery's warnings (torn tails cut, snapshots skipped) go to the test's output.
        for line in omsd
            .stderr()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("recovered"))
            .take(20)
        {
            eprintln!("seed {seed} round {round}: omsd: {line}");
        }
        let client = Client::connect(omsd.addr().to_string(), client_options()).await.expect("connect after restart");
        let mut l = std::mem::take(&mut *ledger.lock().unwrap());
        verify(&client, &mut l, &skus, seed, round).await;
        *ledger.lock().unwrap() = l;
    }
    let l = ledger.lock().unwrap();
    (crashes, l.reserved.len() as u64, l.refused, l.unknown_present + l.unknown_absent, l.split_retries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    // Checks the crash guarantees above for CRASH_TORTURE_SEEDS seeds (default 5), two kill
    // rounds each (plus a kill during recovery on about half the rounds); prints totals.
    let first: u64 = std::env::var("CRASH_TORTURE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let count: u64 = std::env::var("CRASH_TORTURE_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let started = Instant::now();
    let (mut crashes, mut acked, mut refused, mut unacknowledged, mut split) = (0, 0, 0, 0, 0);
    for seed in first..first + count {
        eprintln!("crash torture: seed {seed}");
        let (c, a, r, u, k) = one_seed(seed).await;
        unacknowledged += u;
        split += k;
        crashes += c;
        acked += a;
        refused += r;
    }
    eprintln!(
        "crash torture: {count} seeds from {first}: {crashes} crashes survived, {acked} acknowledged reservations checked, {unacknowledged} unacknowledged ones all-or-nothing, {refused} refusals, {split} split retries (known bug, counted only with CRASH_TORTURE_SKIP_KNOWN_BUG), nothing lost ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
}
