//! Security properties of the REAL omsd: API keys never reach its log (even at debug level), the
//! data directory it creates is owner-only, and the handshake gives a wrong key nothing.
//!
//! Each test starts its own omsd on loopback with a TOML config holding `[[api_keys]]`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use oms_client::{Client, ClientError, ClientOptions};
use oms_tests::{http_get, Omsd};

/// Distinctive keys, so a grep of the log cannot miss them.
const OPS_KEY: &str = "SECRET-ops-5c1f9a7be2d04e83a6";
const SHOP_KEY: &str = "SECRET-shop-0b7d3e9f16a24c58";
const WRONG_KEY: &str = "SECRET-wrong-a9e4c2716f3b08d5";

fn config(dir: &Path) -> String {
    let path = dir.join("omsd.toml");
    let text = format!(
        "[[api_keys]]\nname = \"ops-team\"\nkey = \"{OPS_KEY}\"\nrole = \"ops\"\n\
         [[api_keys]]\nname = \"web-shop\"\nkey = \"{SHOP_KEY}\"\nrole = \"storefront\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

fn options(key: &str) -> ClientOptions {
    ClientOptions {
        api_key: Some(key.to_owned()),
        client_name: "security-test".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        reconnect: false,
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_appear_in_the_log_or_metrics() {
    // Checks, with OMSD_LOG=debug (the most verbose level an operator would use), that after a
    // refused wrong key, an empty key, a key differing in one character, and successful ops and
    // storefront sessions (including a forbidden request), neither the server's stderr nor
    // /metrics nor /health contains any of the key strings, while the refusals ARE logged.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    // The harness passes the test's environment to omsd.
    std::env::set_var("OMSD_LOG", "debug");
    let omsd = Omsd::start(&["--config", &config]);
    let addr = omsd.addr().to_string();
    let near_miss = format!("{}X", &OPS_KEY[..OPS_KEY.len() - 1]);
    for wrong in [WRONG_KEY, "", near_miss.as_str()] {
        match Client::connect(addr.clone(), options(wrong)).await {
            Err(ClientError::Handshake(e)) => assert_eq!(e.name, "unauthenticated"),
            other => panic!("key {wrong:?} was not refused: {other:?}"),
        }
    }
    let ops = Client::connect(addr.clone(), options(OPS_KEY)).await.expect("ops key accepted");
    ops.define_warehouse(1, "SH", "east", 0).await.expect("ops may define");
    let shop = Client::connect(addr.clone(), options(SHOP_KEY)).await.expect("shop key accepted");
    assert_eq!(shop.server_info().map(|i| i.role), Some(oms_proto::Role::Storefront));
    let forbidden = shop.define_warehouse(2, "BJ", "north", 1).await;
    assert!(matches!(&forbidden, Err(ClientError::Server(e)) if e.name == "forbidden"), "{forbidden:?}");
    shop.ping().await.expect("ping");
    drop((ops, shop));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stderr = omsd.stderr();
    assert!(stderr.contains("invalid_key"), "the refusals are not logged:\n{stderr}");
    let metrics = http_get(omsd.admin_addr(), "/metrics").map(|(_, b)| b).unwrap_or_default();
    let health = http_get(omsd.admin_addr(), "/health").map(|(_, b)| b).unwrap_or_default();
    for key in [OPS_KEY, SHOP_KEY, WRONG_KEY, near_miss.as_str(), "SECRET-"] {
        assert!(!stderr.contains(key), "key {key:?} appears in omsd's log:\n{stderr}");
        assert!(!metrics.contains(key), "key {key:?} appears in /metrics");
        assert!(!health.contains(key), "key {key:?} appears in /health");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn data_directory_is_created_owner_only() {
    // Checks that a data directory omsd creates (and each partition directory in it) has mode
    // 0700, and that nothing under it is readable or writable by group or others through a
    // path that is not already behind a 0700 directory.
    let parent = tempfile::tempdir().expect("tempdir");
    let data = parent.path().join("fresh-data");
    let config = config(parent.path());
    let mut omsd = Omsd::start_in(&data, &["--config", &config, "--partitions", "2"]);
    omsd.terminate();
    assert_eq!(mode(&data), 0o700, "data directory mode {:o}", mode(&data));
    for p in 0..2 {
        let partition = data.join(format!("p{p}"));
        assert_eq!(mode(&partition), 0o700, "{} mode {:o}", partition.display(), mode(&partition));
        let wal = partition.join("wal");
        assert_eq!(mode(&wal), 0o700, "{} mode {:o}", wal.display(), mode(&wal));
    }
}

#[test]
fn an_existing_open_data_directory_is_tightened() {
    // Checks that a data directory an operator made with the usual 0755 is narrowed to 0700 at
    // start (and says so in the log), and that its contents survive.
    let parent = tempfile::tempdir().expect("tempdir");
    let data = parent.path().join("premade-data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(data.join("operator-notes.txt"), "kept").expect("write");
    let config = config(parent.path());
    let mut omsd = Omsd::start_in(&data, &["--config", &config, "--partitions", "1"]);
    omsd.terminate();
    assert_eq!(mode(&data), 0o700, "data directory mode {:o}", mode(&data));
    let log = omsd.stderr();
    assert!(log.contains("tightened data directory permissions"), "no warning in the log:\n{log}");
    assert_eq!(std::fs::read_to_string(data.join("operator-notes.txt")).expect("read"), "kept");
}

#[test]
fn a_wrong_key_learns_nothing_but_unauthenticated() {
    // Checks that the refusal for a wrong key and for a key of another length is the same answer
    // (code, name and message), so the handshake does not tell a guesser which keys exist or how
    // long they are.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let omsd = Omsd::start(&["--config", &config]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut answers = Vec::new();
    for wrong in [WRONG_KEY, "x", &OPS_KEY[..10], &format!("{SHOP_KEY}{SHOP_KEY}")] {
        match runtime.block_on(Client::connect(omsd.addr().to_string(), options(wrong))) {
            Err(ClientError::Handshake(e)) => answers.push((e.code, e.name, e.message)),
            other => panic!("key {wrong:?} was not refused: {other:?}"),
        }
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "refusals differ: {answers:?}");
}
