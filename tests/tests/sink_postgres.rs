//! oms-sink-postgres end to end: a real PostgreSQL (initdb in a temporary directory), the real
//! omsd, the real sink binary killed with SIGKILL mid-stream and restarted; the tables must then
//! equal the engine's state, with every stock movement exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oms_client::{Cart, Client, LogStream};
use oms_engine::replica::Replica;
use oms_engine::Event;
use oms_proto::json::{SkuKey, StockOp, WarehouseKey};
use oms_proto::{LogRecords, Response, SkuRef};
use oms_tests::{free_addr, Omsd};

const SKUS: [&str; 6] = ["SINK-A", "SINK-B", "SINK-C", "SINK-D", "SINK-E", "SINK-F"];

// ---------------------------------------------------------------------------------------------
// PostgreSQL in a temporary directory

/// A private PostgreSQL server; stopped (pg_ctl stop -m immediate) when dropped, also on panic.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The directory holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<v>/bin.
fn postgres_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return dir;
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|d| d.join("initdb").is_file());
    versions.sort();
    match versions.pop() {
        Some(dir) => dir,
        None => panic!(
            "initdb not found (not on PATH, nothing under /usr/lib/postgresql/*/bin): this test needs a real \
             PostgreSQL server. Install it: apt-get install postgresql (.ci/run does)"
        ),
    }
}

/// Run a PostgreSQL tool; as root it runs as the `postgres` user (initdb refuses root).
fn pg_command(bin: &Path, tool: &str, args: &[String]) -> std::process::Output {
    let program = bin.join(tool);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    command.args(args).stdin(Stdio::null());
    match command.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {}: {e}", program.display()),
    }
}

impl Postgres {
    fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir for postgres");
        if is_root() {
            let status = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("run chown");
            assert!(status.success(), "chown postgres {} failed (is there a postgres user?)", dir.path().display());
        }
        let data = dir.path().join("data");
        let out = pg_command(
            &bin,
            "initdb",
            &["-D".into(), data.display().to_string(), "-A".into(), "trust".into(), "-U".into(), "postgres".into()],
        );
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_addr().port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            dir.path().display()
        );
        let out = pg_command(
            &bin,
            "pg_ctl",
            &[
                "-D".into(),
                data.display().to_string(),
                "-o".into(),
                options,
                "-l".into(),
                dir.path().join("log").display().to_string(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "start".into(),
            ],
        );
        let pg = Postgres { dir, bin, port };
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
        );
        pg
    }

    fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.expect("connect to postgres");
        tokio::spawn(connection);
        client
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = pg_command(&self.bin, "pg_ctl", &["-D".into(), data, "-m".into(), "immediate".into(), "stop".into()]);
    }
}

// ---------------------------------------------------------------------------------------------
// The sink binary

static SINK: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Build oms-sink-postgres with the test's profile into the test's target directory (as the
/// harness does for omsd), or take `OMS_SINK_BIN`.
fn sink_bin() -> PathBuf {
    let built = SINK.get_or_init(|| {
        if let Some(path) = std::env::var_os("OMS_SINK_BIN") {
            return Ok(PathBuf::from(path));
        }
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let profile_dir = exe.parent().and_then(Path::parent).ok_or("unexpected test path")?;
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).ok_or("no profile directory")?.to_owned();
        let target = profile_dir.parent().ok_or("no target directory")?;
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace directory")?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut command = Command::new(cargo);
        command.current_dir(workspace).args(["build", "-p", "oms-sink-postgres"]).arg("--target-dir").arg(target);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                command.arg("--release");
            }
            other => {
                command.args(["--profile", other]);
            }
        }
        for var in [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            command.env_remove(var);
        }
        let output = command.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo build -p oms-sink-postgres failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let bin = target.join(&profile).join("oms-sink-postgres");
        if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("{} was not built", bin.display()))
        }
    });
    match built {
        Ok(path) => path.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A running sink; SIGKILLed when dropped.
struct Sink {
    child: Child,
    log: PathBuf,
}

impl Sink {
    fn start(server: &str, pg: &Postgres, extra: &[&str], log: PathBuf) -> Sink {
        let file = std::fs::File::create(&log).expect("sink log file");
        let child = Command::new(sink_bin())
            .args(["--server", server, "--postgres", &pg.url()])
            .args(extra)
            .env("OMS_SINK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start oms-sink-postgres");
        Sink { child, log }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("oms-sink-postgres exited ({status}):\n{}", self.stderr());
        }
    }

    /// SIGKILL: no chance to finish a transaction or flush anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Workload and checks

fn cart(sku: &str, qty: u32, customer: u64) -> Cart {
    Cart::new(3_600_000).line(sku, qty).customer(customer).channel(1)
}

/// Reserve `n` single-line carts; confirm every 3rd, release every 5th, ship every 7th confirmed;
/// adjust and transfer some stock. Returns the reservation ids.
async fn workload(client: &Client, round: u64, n: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let sku = SKUS[(i % SKUS.len() as u64) as usize];
        let reserved = client.reserve_cart(&cart(sku, 1 + (i % 3) as u32, round * 1000 + i)).await.expect("reserve");
        ids.push(reserved.id);
        if i % 3 == 0 {
            client.confirm(reserved.id).await.expect("confirm");
            if i % 7 == 0 {
                client.ship(reserved.id).await.expect("ship");
            }
        } else if i % 5 == 0 {
            client.release(reserved.id).await.expect("release");
        }
        if i % 50 == 0 {
            client
                .stock_op(StockOp::Adjust { sku: SkuKey::from(sku), warehouse: WarehouseKey::Id(1), delta: 3 })
                .await
                .expect("adjust");
            client
                .stock_op(StockOp::Transfer {
                    sku: SkuKey::from(sku),
                    from: WarehouseKey::Id(1),
                    to: WarehouseKey::Id(2),
                    qty: 2,
                })
                .await
                .expect("transfer");
        }
    }
    ids
}

async fn durable_lsns(client: &Client) -> Vec<u64> {
    let audit = client.audit().await.expect("audit");
    audit["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["durable_lsn"].as_u64().expect("durable_lsn"))
        .collect()
}

async fn positions(db: &tokio_postgres::Client, partitions: usize) -> Vec<u64> {
    let mut out = vec![0; partitions];
    // The table does not exist until the sink first connected.
    if let Ok(rows) = db.query("SELECT partition, lsn FROM sink_position", &[]).await {
        for row in rows {
            let (p, lsn): (i32, i64) = (row.get(0), row.get(1));
            out[p as usize] = lsn as u64;
        }
    }
    out
}

/// Stock movements the engine emitted, recomputed independently from the log: (partition, lsn, seq) -> kind.
async fn movements_from_log(addr: &str) -> BTreeMap<(u32, u64, u32), String> {
    let mut stream = LogStream::connect(addr, None, "sink-test", Duration::from_secs(5)).await.expect("connect");
    let partitions = stream.info().partitions;
    let mut replica = Replica::new(partitions, stream.info().max_lines as usize);
    stream.subscribe(1, None, 1, true).await.expect("subscribe");
    let mut done = vec![false; partitions as usize];
    let mut out = BTreeMap::new();
    let mut events = Vec::new();
    while !done.iter().all(|d| *d) {
        let (_, response) = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("log frame in time")
            .expect("log frame");
        if let Response::LogRecords(LogRecords { partition, records, durable_lsn }) = response {
            for r in &records {
                events.clear();
                replica.apply(partition, r.lsn, r.record_type, &r.payload, &mut events).expect("apply");
                let mut seq = 0;
                for e in &events {
                    if let Event::StockMoved(m) = e {
                        let kind = serde_json::to_value(m.kind).expect("kind");
                        out.insert((partition, r.lsn, seq), kind.as_str().unwrap_or_default().to_owned());
                        seq += 1;
                    }
                }
            }
            if replica.next_lsn(partition) > durable_lsn {
                done[partition as usize] = true;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_projects_exactly_once_across_a_sigkill() {
    // Checks that oms-sink-postgres, SIGKILLed mid-stream and restarted while omsd keeps taking
    // writes, ends with tables equal to the engine's state (reservations and their statuses,
    // allocations, stock levels vs GetStock) and every stock movement exactly once, with its
    // position equal to the server's durable LSNs.
    let pg = Postgres::start();
    let db = pg.connect().await;
    let omsd = Omsd::start(&["--partitions", "2"]);
    let client = omsd.client().await;
    let addr = omsd.addr().to_string();
    client.define_warehouse(1, "SH", "east", 0).await.expect("warehouse 1");
    client.define_warehouse(2, "BJ", "north", 1).await.expect("warehouse 2");
    for sku in SKUS {
        client.define_sku(sku, 5).await.expect("define sku");
        client.set_on_hand(sku, "1", 100_000).await.expect("set on hand");
        client
            .stock_op(StockOp::Receive { sku: SkuKey::from(sku), warehouse: WarehouseKey::Id(2), qty: 50 })
            .await
            .expect("receive");
    }
    let mut ids = workload(&client, 1, 1500).await;

    // Small transactions so the kill lands between two of them, mid-stream.
    let logs = tempfile::tempdir().expect("log dir");
    let mut sink = Sink::start(&addr, &pg, &["--batch", "40"], logs.path().join("sink-0.log"));
    let durable = durable_lsns(&client).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        sink.assert_running();
        let at = positions(&db, 2).await;
        if at.iter().sum::<u64>() > 0 {
            eprintln!("killing the sink at positions {at:?} (durable {durable:?})");
            break;
        }
        assert!(Instant::now() < deadline, "the sink projected nothing in 60 s:\n{}", sink.stderr());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.kill();
    let at_kill = positions(&db, 2).await;

    // More writes while the sink is down, then more while it catches up.
    ids.extend(workload(&client, 2, 400).await);
    let mut sink = Sink::start(&addr, &pg, &[], logs.path().join("sink-1.log"));
    ids.extend(workload(&client, 3, 300).await);

    let target = durable_lsns(&client).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        sink.assert_running();
        let at = positions(&db, 2).await;
        if at.iter().zip(&target).all(|(a, t)| a >= t) {
            break;
        }
        assert!(Instant::now() < deadline, "sink at {at:?}, server durable {target:?}:\n{}", sink.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        at_kill.iter().zip(&target).any(|(k, t)| k < t),
        "the kill was supposed to land before the end ({at_kill:?} vs {target:?})"
    );

    // Reservations: one row per (id, partition) with the engine's status and allocations.
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    for &id in &ids {
        let view = client.reservation(id).await.expect("get reservation");
        *by_status.entry(view.status.name().to_owned()).or_default() += 1;
        let rows = db
            .query("SELECT status, customer, channel, expires_at_ms FROM reservations WHERE id = $1", &[&(id as i64)])
            .await
            .expect("select reservation");
        assert_eq!(rows.len(), 1, "reservation {id}: one row");
        let status: String = rows[0].get(0);
        assert_eq!(status, view.status.name(), "reservation {id} status");
        assert_eq!(rows[0].get::<_, i64>(1) as u64, view.customer, "reservation {id} customer");
        assert_eq!(rows[0].get::<_, i32>(2) as u16, view.channel, "reservation {id} channel");
        assert_eq!(rows[0].get::<_, i64>(3) as u64, view.expires_at_ms, "reservation {id} expiry");
        let allocated: i64 = db
            .query_one(
                "SELECT COALESCE(SUM(qty), 0)::int8 FROM reservation_allocations WHERE reservation_id = $1",
                &[&(id as i64)],
            )
            .await
            .expect("select allocations")
            .get(0);
        let expected: u64 = view.allocations.iter().map(|a| u64::from(a.qty)).sum();
        assert_eq!(allocated as u64, expected, "reservation {id} allocations");
    }
    let db_status: BTreeMap<String, i64> = db
        .query("SELECT status, COUNT(*) FROM reservations GROUP BY status", &[])
        .await
        .expect("status counts")
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(db_status, by_status, "reservations by status");
    assert!(by_status.len() >= 3, "the workload covers several statuses: {by_status:?}");

    // Stock levels equal GetStock, per warehouse.
    for sku in SKUS {
        let view = client.stock(SkuRef::Code(sku)).await.expect("get stock");
        for w in &view.warehouses {
            let row = db
                .query_one(
                    "SELECT on_hand, reserved, available FROM stock_levels WHERE code = $1 AND warehouse = $2",
                    &[&sku, &i32::from(w.warehouse_id)],
                )
                .await
                .unwrap_or_else(|e| panic!("stock level of {sku} in {}: {e}", w.warehouse));
            let got: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            assert_eq!(
                got,
                (w.on_hand as i64, w.reserved as i64, w.available as i64),
                "{sku} in warehouse {}",
                w.warehouse
            );
        }
    }

    // Every movement exactly once: the same (partition, lsn, seq) keys and kinds as the log.
    let expected = movements_from_log(&addr).await;
    let got: BTreeMap<(u32, u64, u32), String> = db
        .query("SELECT partition, lsn, seq, kind FROM stock_movements", &[])
        .await
        .expect("movements")
        .into_iter()
        .map(|r| ((r.get::<_, i32>(0) as u32, r.get::<_, i64>(1) as u64, r.get::<_, i32>(2) as u32), r.get(3)))
        .collect();
    let total: i64 = db.query_one("SELECT COUNT(*) FROM stock_movements", &[]).await.expect("count").get(0);
    assert_eq!(total as usize, got.len(), "no duplicate movement rows");
    // The log may have grown (ticks) after the target was read: compare up to what was projected.
    let last = positions(&db, 2).await;
    let expected: BTreeMap<_, _> = expected.into_iter().filter(|((p, lsn, _), _)| *lsn <= last[*p as usize]).collect();
    assert_eq!(got.len(), expected.len(), "movement count");
    assert!(got == expected, "movements differ from the log");
    eprintln!("sink log (second run):\n{}", sink.stderr());
}
