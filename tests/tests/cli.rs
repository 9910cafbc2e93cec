//! The real `oms` binary against a real omsd: every command users' scripts rely on, with exit codes.

use oms_tests::{free_addr, oms_bin, text, Omsd};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const CATALOG_JSON: &str = r#"{
  "warehouses": [{"id": 1, "code": "SH", "region": "east", "priority": 0},
                 {"id": 2, "code": "BJ", "region": "north", "priority": 1}],
  "skus": [{"code": "TSHIRT-RED-XL", "low_stock_threshold": 5},
           {"code": "MUG-WHT", "low_stock_threshold": 2},
           {"code": "SOCKS-3P"}],
  "kits": [{"code": "GIFT-BOX", "components": [{"sku": "MUG-WHT", "qty": 1}, {"sku": "SOCKS-3P", "qty": 2}]}],
  "stock": [{"sku": "TSHIRT-RED-XL", "warehouse": 1, "on_hand": 100},
            {"sku": "TSHIRT-RED-XL", "warehouse": 2, "on_hand": 20},
            {"sku": "MUG-WHT", "warehouse": 1, "on_hand": 10},
            {"sku": "SOCKS-3P", "warehouse": 2, "on_hand": 50}]
}"#;

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// Start a server and load the JSON catalog above through `oms catalog load`.
fn server_with_catalog() -> (Omsd, tempfile::TempDir) {
    let omsd = Omsd::start(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let path = write(files.path(), "catalog.json", CATALOG_JSON);
    omsd.oms_ok(&["catalog", "load", &path]);
    (omsd, files)
}

fn stock(omsd: &Omsd, sku: &str) -> Value {
    omsd.oms_json(&["stock", "get", sku])
}

fn warehouse(view: &Value, id: u64) -> Value {
    view["warehouses"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["warehouse_id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no warehouse {id} in {view}"))
}

#[test]
fn stock_commands() {
    // Checks stock set/receive/adjust/transfer/bucket/get/export: exit 0, and the JSON view reflects each change.
    let (omsd, _files) = server_with_catalog();
    omsd.oms_ok(&["stock", "set", "MUG-WHT", "--warehouse", "1", "--on-hand", "30"]);
    omsd.oms_ok(&["stock", "receive", "MUG-WHT", "--warehouse", "2", "--qty", "7"]);
    let view = stock(&omsd, "MUG-WHT");
    assert_eq!(view["sku"], "MUG-WHT");
    assert_eq!(warehouse(&view, 1)["warehouse"], "SH", "warehouses are named by code: {view}");
    assert_eq!(view["on_hand"], 37, "{view}");
    assert_eq!(view["available"], 37, "{view}");
    assert_eq!(warehouse(&view, 1)["on_hand"], 30);
    assert_eq!(warehouse(&view, 2)["on_hand"], 7);

    omsd.oms_ok(&["stock", "adjust", "MUG-WHT", "--warehouse", "1", "--delta=-5"]);
    omsd.oms_ok(&["stock", "transfer", "MUG-WHT", "--from", "SH", "--to", "BJ", "--qty", "3"]);
    omsd.oms_ok(&["stock", "bucket", "MUG-WHT", "--warehouse", "2", "--bucket", "damaged", "--qty", "2"]);
    let view = stock(&omsd, "MUG-WHT");
    assert_eq!(warehouse(&view, 1)["on_hand"], 22, "{view}");
    assert_eq!(warehouse(&view, 2)["on_hand"], 10, "{view}");
    assert_eq!(warehouse(&view, 2)["damaged"], 2, "{view}");
    assert_eq!(view["available"], 30, "{view}");

    // Human output is a table with per-warehouse rows.
    let human = omsd.oms_ok(&["stock", "get", "MUG-WHT"]);
    assert!(human.contains("WAREHOUSE") && human.contains("AVAILABLE"), "{human}");

    // A refused stock op exits 1 and names the reason.
    let out = omsd.oms(&["stock", "transfer", "MUG-WHT", "--from", "1", "--to", "2", "--qty", "1000"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = omsd.oms(&["stock", "get", "NO-SUCH-SKU"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown_sku"), "{}", text(&out.stderr));

    let export = omsd.oms_json(&["stock", "export"]);
    let rows = export.as_array().unwrap_or_else(|| panic!("export is not an array: {export}"));
    let mug = rows.iter().find(|r| r["code"] == "MUG-WHT").unwrap_or_else(|| panic!("no MUG-WHT in {export}"));
    assert_eq!(mug["available"], 30);
    assert!(rows.iter().any(|r| r["code"] == "TSHIRT-RED-XL" && r["available"] == 120), "{export}");
}

#[test]
fn catalog_load_json_and_csv_is_idempotent() {
    // Checks `catalog load` for JSON and CSV: summary counts, warehouse auto-definition, and that a second load changes nothing.
    let omsd = Omsd::start(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let json_path = write(files.path(), "catalog.json", CATALOG_JSON);
    let summary = omsd.oms_json(&["catalog", "load", &json_path]);
    assert_eq!((summary["warehouses"].as_u64(), summary["skus"].as_u64()), (Some(2), Some(3)), "{summary}");
    assert_eq!((summary["kits"].as_u64(), summary["stock"].as_u64()), (Some(1), Some(4)), "{summary}");
    let first = omsd.oms_json(&["stock", "export"]);
    omsd.oms_ok(&["catalog", "load", &json_path]);
    assert_eq!(omsd.oms_json(&["stock", "export"]), first, "loading the same JSON twice changed the state");

    let csv =
        "sku,warehouse,on_hand,low_stock_threshold\nCSV-ONE,1,11,1\nCSV-ONE,7,4,1\nCSV-TWO,2,9,0\nMUG-WHT,1,12,2\n";
    let csv_path = write(files.path(), "stock.csv", csv);
    let summary = omsd.oms_json(&["catalog", "load", &csv_path]);
    assert_eq!(summary["stock"], 4, "{summary}");
    assert_eq!(summary["warehouses_auto_defined"], 1, "warehouse 7 should be auto-defined: {summary}");
    let after_csv = omsd.oms_json(&["stock", "export"]);
    let summary = omsd.oms_json(&["catalog", "load", &csv_path]);
    assert_eq!(summary["warehouses_auto_defined"], 0, "{summary}");
    assert_eq!(omsd.oms_json(&["stock", "export"]), after_csv, "loading the same CSV twice changed the state");
    let one = stock(&omsd, "CSV-ONE");
    assert_eq!(one["on_hand"], 15, "{one}");
    assert_eq!(warehouse(&one, 7)["on_hand"], 4);
    assert_eq!(stock(&omsd, "MUG-WHT")["on_hand"], 12);

    // A CSV without the threshold column works too; a malformed one is refused with its line.
    let plain = write(files.path(), "plain.csv", "sku,warehouse,on_hand\nCSV-TWO,1,3\n");
    omsd.oms_ok(&["catalog", "load", &plain]);
    assert_eq!(stock(&omsd, "CSV-TWO")["on_hand"], 12);
    let bad = write(files.path(), "bad.csv", "sku,warehouse,on_hand\nX,1,many\n");
    let out = omsd.oms(&["catalog", "load", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad.csv:2"), "{}", text(&out.stderr));
}

#[test]
fn reserve_confirm_release_and_idempotency() {
    // Checks reserve exit codes (0 reserved, 1 insufficient stock), --key retries, confirm, release, ship, reservation get --json.
    let (omsd, _files) = server_with_catalog();
    let reserved = omsd.oms_json(&[
        "reserve",
        "--line",
        "TSHIRT-RED-XL:2",
        "--line",
        "MUG-WHT:1",
        "--ttl",
        "15m",
        "--customer",
        "42",
        "--channel",
        "taobao",
    ]);
    let id = reserved["id"].as_u64().unwrap_or_else(|| panic!("no id in {reserved}"));
    let allocations = reserved["allocations"].as_array().cloned().unwrap_or_default();
    assert!(allocations.iter().any(|a| a["sku"] == "TSHIRT-RED-XL" && a["warehouse"] == "SH"), "{reserved}");
    let view = omsd.oms_json(&["reservation", "get", &id.to_string()]);
    assert_eq!(view["status"], "held", "{view}");
    assert_eq!((view["customer"].as_u64(), view["channel"].as_u64()), (Some(42), Some(1)), "{view}");
    assert_eq!(stock(&omsd, "TSHIRT-RED-XL")["reserved"], 2);

    // Human output names the reservation and the warehouse.
    let human = omsd.oms_ok(&["reserve", "--line", "SOCKS-3P:1"]);
    assert!(human.starts_with("reserved ") && human.contains("warehouse BJ"), "{human}");

    // Not enough stock: exit 1, reason on stderr, JSON error on stdout with --json.
    let out = omsd.oms(&["--json", "reserve", "--line", "MUG-WHT:1000"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("insufficient_stock"), "{}", text(&out.stderr));
    let refusal: Value = serde_json::from_slice(&out.stdout).expect("refusal JSON");
    assert_eq!(refusal["ok"], false);
    assert_eq!(refusal["error"]["name"], "insufficient_stock");
    assert_eq!(refusal["error"]["code"], 108);
    assert_eq!(refusal["error"]["available"], 9, "{refusal}");
    assert_eq!(refusal["error"]["sku"], "MUG-WHT", "refusals name the SKU code: {refusal}");

    // Same idempotency key: same reservation, reported as replayed, stock taken once.
    let a = omsd.oms_json(&["reserve", "--line", "SOCKS-3P:3", "--key", "order-1001"]);
    let b = omsd.oms_json(&["reserve", "--line", "SOCKS-3P:3", "--key", "order-1001"]);
    assert_eq!(a["id"], b["id"]);
    assert_eq!((a["replayed"].as_bool(), b["replayed"].as_bool()), (Some(false), Some(true)));
    assert_eq!(stock(&omsd, "SOCKS-3P")["reserved"], 4);

    omsd.oms_ok(&["confirm", &id.to_string()]);
    assert_eq!(omsd.oms_json(&["reservation", "get", &id.to_string()])["status"], "confirmed");
    omsd.oms_ok(&["ship", &id.to_string()]);
    assert_eq!(omsd.oms_json(&["reservation", "get", &id.to_string()])["status"], "shipped");
    assert_eq!(stock(&omsd, "TSHIRT-RED-XL")["on_hand"], 118);

    let key_id = a["id"].as_u64().unwrap_or_default().to_string();
    omsd.oms_ok(&["release", &key_id]);
    assert_eq!(omsd.oms_json(&["reservation", "get", &key_id])["status"], "released");
    assert_eq!(stock(&omsd, "SOCKS-3P")["reserved"], 1);
    // Releasing twice or confirming a released reservation is refused (exit 1).
    assert_eq!(omsd.oms(&["confirm", &key_id]).status.code(), Some(1));
    assert_eq!(omsd.oms(&["reservation", "get", "999999999"]).status.code(), Some(1));
}

#[test]
fn campaigns_flash_sale_and_presale() {
    // Checks campaign create flash-sale/presale, campaign get, a per-customer limit refusal, and pay-balance.
    let (omsd, _files) = server_with_catalog();
    omsd.oms_ok(&[
        "campaign",
        "create",
        "flash-sale",
        "--id",
        "11",
        "--sku",
        "TSHIRT-RED-XL",
        "--pool",
        "5",
        "--limit",
        "1",
        "--ends",
        "+2h",
    ]);
    let campaign = omsd.oms_json(&["campaign", "get", "11"]);
    assert_eq!(campaign["kind"], "flash_sale", "{campaign}");
    assert_eq!(campaign["remaining"], 5, "{campaign}");
    let first = omsd.oms(&["reserve", "--line", "TSHIRT-RED-XL:1", "--campaign", "11", "--customer", "7"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let again = omsd.oms(&["reserve", "--line", "TSHIRT-RED-XL:1", "--campaign", "11", "--customer", "7"]);
    assert_eq!(again.status.code(), Some(1), "a second unit for the same customer must be refused");
    assert!(text(&again.stderr).contains("limit_exceeded"), "{}", text(&again.stderr));
    let other = omsd.oms(&["reserve", "--line", "TSHIRT-RED-XL:1", "--campaign", "11", "--customer", "8"]);
    assert_eq!(other.status.code(), Some(0), "{}", text(&other.stderr));
    assert_eq!(omsd.oms_json(&["campaign", "get", "11"])["remaining"], 3);
    // Duplicate campaign id on the same SKU is refused.
    let dup = omsd.oms(&[
        "campaign",
        "create",
        "flash-sale",
        "--id",
        "11",
        "--sku",
        "TSHIRT-RED-XL",
        "--pool",
        "1",
        "--limit",
        "1",
    ]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(text(&dup.stderr).contains("duplicate_campaign"), "{}", text(&dup.stderr));

    omsd.oms_ok(&[
        "campaign",
        "create",
        "presale",
        "--id",
        "12",
        "--sku",
        "SOCKS-3P",
        "--quota",
        "10",
        "--limit",
        "2",
        "--balance-window",
        "7d",
        "--starts",
        "now",
        "--ends",
        "+3d",
    ]);
    assert_eq!(omsd.oms_json(&["campaign", "get", "12"])["kind"], "presale");
    let r = omsd.oms_json(&["reserve", "--line", "SOCKS-3P:2", "--campaign", "12", "--customer", "9"]);
    let id = r["id"].as_u64().unwrap_or_default().to_string();
    assert_eq!(omsd.oms_json(&["reservation", "get", &id])["status"], "deposit_held");
    omsd.oms_ok(&["pay-balance", &id]);
    assert_eq!(omsd.oms_json(&["reservation", "get", &id])["status"], "balance_paid");
}

#[test]
fn incoming_channel_and_audit() {
    // Checks incoming expect/receive, channel set, and that audit prints clean JSON and exits 0.
    let (omsd, _files) = server_with_catalog();
    omsd.oms_ok(&[
        "incoming",
        "expect",
        "--po",
        "501",
        "MUG-WHT",
        "--warehouse",
        "2",
        "--qty",
        "40",
        "--eta",
        "2031-01-01T08:00:00+08:00",
    ]);
    let view = stock(&omsd, "MUG-WHT");
    assert_eq!(view["incoming"], 40, "{view}");
    omsd.oms_ok(&["incoming", "receive", "--po", "501", "MUG-WHT", "--qty", "40"]);
    let view = stock(&omsd, "MUG-WHT");
    assert_eq!((view["incoming"].as_u64(), view["on_hand"].as_u64()), (Some(0), Some(50)), "{view}");
    let out = omsd.oms(&["incoming", "receive", "--po", "999", "MUG-WHT", "--qty", "1"]);
    assert_eq!(out.status.code(), Some(1), "unknown PO must be refused");

    omsd.oms_ok(&["channel", "set", "taobao", "--ratio", "0.3", "--floor", "0"]);
    omsd.oms_ok(&["channel", "set", "2", "--ratio", "50%", "--floor", "1", "--exception", "MUG-WHT:1:100"]);
    let out = omsd.oms(&["channel", "set", "taobao", "--ratio", "1.5"]);
    assert_eq!(out.status.code(), Some(2), "bad ratio is a usage error");

    let audit = omsd.oms_json(&["audit"]);
    assert_eq!(audit["clean"], true, "{audit}");
    let ping = omsd.oms_json(&["ping"]);
    assert!(ping["server"]["partitions"].as_u64().unwrap_or(0) >= 1, "{ping}");
}

#[test]
fn wal_dump_and_verify_after_terminate() {
    // Checks the offline wal commands on a data dir after SIGTERM: verify exits 0, dump --json decodes every command record.
    let (mut omsd, _files) = server_with_catalog();
    let r = omsd.oms_json(&["reserve", "--line", "MUG-WHT:2"]);
    omsd.oms_ok(&["confirm", &r["id"].as_u64().unwrap_or_default().to_string()]);
    omsd.terminate();
    let dir = omsd.data_dir().to_string_lossy().into_owned();

    let oms = |args: &[&str]| Command::new(oms_bin()).args(args).output().expect("run oms");
    let verify = oms(&["wal", "verify", "--data-dir", &dir]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(text(&verify.stdout).contains("p0: ok"), "{}", text(&verify.stdout));
    let verify = oms(&["--json", "wal", "verify", "--data-dir", &dir]);
    let report: Value = serde_json::from_slice(&verify.stdout).expect("verify JSON");
    assert_eq!(report["ok"], true, "{report}");

    let dump = oms(&["--json", "wal", "dump", "--data-dir", &dir]);
    assert_eq!(dump.status.code(), Some(0), "{}", text(&dump.stderr));
    let lines: Vec<Value> =
        text(&dump.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert!(
        lines.len() >= 10,
        "expected the catalog, the reserve and the confirm in the log, got {} records",
        lines.len()
    );
    for line in &lines {
        for field in ["partition", "lsn", "record_type", "len", "segment", "offset", "command"] {
            assert!(line.get(field).is_some(), "missing {field} in {line}");
        }
        if line["record_type"] == 1 {
            assert!(line["command"].get("undecodable").is_none(), "command record did not decode: {line}");
        }
    }
    let dumped = text(&dump.stdout);
    assert!(
        dumped.contains("MUG-WHT") || dumped.contains("Reserve") || dumped.contains("reserve"),
        "no reserve in the dump"
    );
    // --from skips earlier records.
    let from = oms(&["--json", "wal", "dump", "--data-dir", &dir, "--from", "3"]);
    assert!(text(&from.stdout)
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).map(|v| v["lsn"].as_u64() >= Some(3)).unwrap_or(false)));
    // The human form prints one line per record.
    let human = oms(&["wal", "dump", "--data-dir", &dir]);
    assert_eq!(text(&human.stdout).lines().count(), lines.len());
    // A directory with no logs is an error.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = oms(&["wal", "verify", "--data-dir", &empty.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn exit_codes_for_usage_and_connection_errors() {
    // Checks exit code 2 for usage errors and 3 when no server listens, without starting a server.
    let run = |args: &[&str]| Command::new(oms_bin()).args(args).env_remove("OMS_SERVER").output().expect("run oms");
    assert_eq!(run(&["reserve", "--line", "NOQTY"]).status.code(), Some(2));
    assert_eq!(run(&["reserve", "--line", "A:1", "--ttl", "900"]).status.code(), Some(2));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
    let nobody = free_addr().to_string();
    let out = run(&["--server", &nobody, "stock", "get", "MUG-WHT"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = run(&["--server", &nobody, "--json", "reserve", "--line", "MUG-WHT:1"]);
    assert_eq!(out.status.code(), Some(3));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON error document");
    assert_eq!(doc["ok"], false);
}

#[test]
fn help_describes_every_command_and_flag() {
    // Checks that --help works on every command and documents each flag with a description.
    let commands: &[&[&str]] = &[
        &[],
        &["stock"],
        &["stock", "get"],
        &["stock", "set"],
        &["stock", "receive"],
        &["stock", "adjust"],
        &["stock", "transfer"],
        &["stock", "bucket"],
        &["stock", "export"],
        &["catalog", "load"],
        &["reserve"],
        &["confirm"],
        &["release"],
        &["ship"],
        &["pay-balance"],
        &["reservation", "get"],
        &["campaign", "create", "flash-sale"],
        &["campaign", "create", "presale"],
        &["campaign", "get"],
        &["incoming", "expect"],
        &["incoming", "receive"],
        &["channel", "set"],
        &["audit"],
        &["wal", "dump"],
        &["wal", "verify"],
    ];
    for command in commands {
        let mut args: Vec<&str> = command.to_vec();
        args.push("--help");
        let out = Command::new(oms_bin()).args(&args).output().expect("run oms");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = text(&out.stdout);
        let lines: Vec<&str> = help.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with('-') || line.starts_with("-h, --help") || line.starts_with("-V, --version") {
                continue;
            }
            // The description is on the same line or, in clap's long layout, on the next one.
            let same_line = line.split("  ").map(str::trim).filter(|s| !s.is_empty()).count() >= 2;
            let next_line = lines.get(i + 1).is_some_and(|n| !n.is_empty() && !n.starts_with('-'));
            assert!(same_line || next_line, "flag without a description in `oms {}`: {line}", command.join(" "));
        }
    }
    let help = text(&Command::new(oms_bin()).args(["catalog", "load", "--help"]).output().expect("run oms").stdout);
    assert!(help.contains("sku,warehouse,on_hand") && help.contains("\"warehouses\""), "{help}");
}

#[test]
fn duplicate_campaign_id_on_a_sku_of_another_partition_is_refused() {
    // Checks that a campaign id already used by a flash sale cannot be reused on a SKU owned by another partition.
    let (omsd, _files) = server_with_catalog();
    omsd.oms_ok(&[
        "campaign",
        "create",
        "flash-sale",
        "--id",
        "21",
        "--sku",
        "TSHIRT-RED-XL",
        "--pool",
        "5",
        "--limit",
        "1",
    ]);
    // MUG-WHT is SKU id 1 in this catalog, so with 2 partitions it lives in the other partition.
    let dup = omsd.oms(&[
        "campaign",
        "create",
        "flash-sale",
        "--id",
        "21",
        "--sku",
        "MUG-WHT",
        "--pool",
        "1",
        "--limit",
        "1",
    ]);
    assert_eq!(dup.status.code(), Some(1), "duplicate campaign id accepted: {}", text(&dup.stdout));
    assert_eq!(omsd.oms_json(&["campaign", "get", "21"])["remaining"], 5, "the first campaign must stay reachable");
}
