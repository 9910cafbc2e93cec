//! Damage to a data directory, end to end with the real `omsd` and `oms` (issue 12): a log whose
//! newest segment lost its end is refused by `omsd` (primary and follower) and by `oms wal
//! verify` instead of silently losing acknowledged reservations, and `--truncate-corrupt-log` is
//! the explicit way past it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use oms_client::{Cart, Client};
use oms_tests::{free_addr, oms_bin, omsd_bin, text, Omsd};

fn cart(qty: u32) -> Cart {
    Cart::new(3_600_000).line("MUG-WHT", qty).customer(1)
}

async fn seed(client: &Client) {
    client.define_warehouse(1, "SH", "east", 0).await.expect("define warehouse");
    client.define_sku("MUG-WHT", 0).await.expect("define sku");
    client.set_on_hand("MUG-WHT", "SH", 100_000).await.expect("set on hand");
}

/// Runs omsd on `data_dir` with `args` and expects it to refuse to start: returns its output.
fn omsd_refuses(data_dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(omsd_bin())
        .arg("--listen")
        .arg(free_addr().to_string())
        .arg("--admin-listen")
        .arg(free_addr().to_string())
        .args(["--http-listen", "127.0.0.1:0", "--console-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn omsd");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("omsd output");
            panic!("omsd started on a damaged data directory; stderr:\n{}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("omsd output");
    assert!(!out.status.success(), "omsd exited 0 on a damaged data directory");
    out
}

fn wal_verify(data_dir: &Path) -> Output {
    Command::new(oms_bin())
        .args(["wal", "verify", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run oms wal verify")
}

fn newest_segment(data_dir: &Path) -> PathBuf {
    let wal = data_dir.join("p0").join("wal");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&wal)
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_newest_segment_is_refused_until_the_operator_truncates() {
    // Checks the review's scenario: one partition, 16 KiB segments, ~900 acknowledged
    // reservations, SIGKILL (no snapshot), then the newest segment cut to 32 bytes (header only).
    // `oms wal verify` exits 1 naming lost records; omsd refuses to start, as primary and as a
    // follower; `--truncate-corrupt-log` starts and keeps every reservation logged before the cut.
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--partitions", "1", "--segment-bytes", "16384", "--snapshot-every", "1000000"];
    let mut omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    seed(&client).await;
    let mut acknowledged = Vec::new();
    for chunk in 0..9 {
        let carts = (0..100).map(|i| cart(1 + (chunk + i) % 3)).collect::<Vec<_>>();
        for item in client.reserve_carts(&carts).await.expect("batch") {
            acknowledged.push(item.expect("reserve"));
        }
    }
    drop(client);
    omsd.kill();

    let newest = newest_segment(dir.path());
    std::fs::OpenOptions::new().write(true).open(&newest).expect("open segment").set_len(32).expect("cut");
    let verify = wal_verify(dir.path());
    assert_eq!(verify.status.code(), Some(1), "verify must fail: {}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("lost_records"), "{}", text(&verify.stdout));
    let refused = omsd_refuses(dir.path(), &args);
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("lost log records"), "{stderr}");
    assert!(stderr.contains("--truncate-corrupt-log"), "the refusal names the override: {stderr}");
    // A follower opens its own log the same way before it connects to anything.
    let primary = free_addr().to_string();
    let mut follower_args = args.to_vec();
    follower_args.extend(["--follow", primary.as_str()]);
    let refused = omsd_refuses(dir.path(), &follower_args);
    assert!(text(&refused.stderr).contains("lost log records"), "{}", text(&refused.stderr));
    let mut truncating = args.to_vec();
    truncating.push("--truncate-corrupt-log");
    let omsd = Omsd::start_in(dir.path(), &truncating);
    assert!(omsd.stderr().contains("TRUNCATING"), "the override is logged loudly:\n{}", omsd.stderr());
    let client = omsd.client().await;
    let mut present = 0;
    for r in &acknowledged {
        if client.reservation(r.id).await.is_ok() {
            present += 1;
        }
    }
    assert!(present > 0 && present < acknowledged.len(), "{present} of {} present", acknowledged.len());
    let audit = client.audit().await.expect("audit");
    assert_eq!(audit["clean"], true, "{audit}");
}

fn snapshots(data_dir: &Path, partition: u32) -> Vec<PathBuf> {
    let dir = data_dir.join(format!("p{partition}")).join("wal").join("snapshots");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("snapshot dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_deleted_newest_snapshot_falls_back_to_the_older_one() {
    // Checks the review's scenario: with a snapshot every 300 logged commands, 16 KiB segments and
    // `--log-retention 0s` (old segments go as soon as retention allows), ~2,000 reservations
    // and a SIGKILL, then 16 bytes flipped in the newest snapshot: `oms wal verify` reports it
    // (`bad_snapshot`) and omsd starts from the older snapshot plus the log with every
    // reservation. Then the newest snapshot deleted: verify is clean and omsd starts again.
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--partitions", "1", "--segment-bytes", "16384", "--snapshot-every", "300", "--log-retention", "0s"];
    let mut omsd = Omsd::start_in(dir.path(), &args);
    let client = omsd.client().await;
    seed(&client).await;
    let mut acknowledged = Vec::new();
    for chunk in 0..20 {
        let carts = (0..100).map(|i| cart(1 + (chunk + i) % 2)).collect::<Vec<_>>();
        for item in client.reserve_carts(&carts).await.expect("batch") {
            acknowledged.push(item.expect("reserve"));
        }
        // Let snapshot writes finish between chunks, so retention runs.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(client);
    omsd.kill();

    let found = snapshots(dir.path(), 0);
    assert_eq!(found.len(), 2, "two snapshots are kept: {found:?}");
    let newest = found.last().expect("newest snapshot").clone();
    let mut bytes = std::fs::read(&newest).expect("read snapshot");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0xa5;
    }
    std::fs::write(&newest, &bytes).expect("damage snapshot");

    let verify = wal_verify(dir.path());
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("bad_snapshot"), "{}", text(&verify.stdout));
    assert!(!text(&verify.stdout).contains("log_gap"), "{}", text(&verify.stdout));

    for round in ["damaged", "deleted"] {
        if round == "deleted" {
            std::fs::remove_file(&newest).expect("delete snapshot");
            let verify = wal_verify(dir.path());
            assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
        }
        let mut omsd = Omsd::start_in(dir.path(), &args);
        let client = omsd.client().await;
        for r in &acknowledged {
            let view = client.reservation(r.id).await.unwrap_or_else(|e| panic!("{round}: {} lost: {e}", r.id));
            assert_eq!(view.status, "held");
        }
        let audit = client.audit().await.expect("audit");
        assert_eq!(audit["clean"], true, "{audit}");
        drop(client);
        // A SIGKILL keeps the directory as it was (a clean stop would write a fresh snapshot).
        omsd.kill();
    }
}
