//! Smaller hardening items of issue 12, through the real omsd and oms: weak, empty or repeated
//! API keys and an open non-loopback listen address stop omsd at start with a message naming the
//! problem; a request above the server's frame limit is refused by the client before it is sent
//! (the connection stays usable); codes with control or invisible characters are refused (and not
//! interned).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oms_client::proto::{EncodeError, SkuRef};
use oms_client::{Client, ClientError, ClientOptions};
use oms_tests::{free_addr, http_get_status, omsd_bin, text, Omsd};

/// Runs omsd with `args` (and `--data-dir`, `--admin-listen`, a free `--http-listen` unless
/// `args` names one, a free `--console-listen`); answers its exit status and
/// stderr if it stops within 30 s, or `None` (after killing it) once it is ready.
fn run_omsd(data_dir: &Path, args: &[&str]) -> Option<(bool, String)> {
    let admin = free_addr();
    let mut child = Command::new(omsd_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--admin-listen")
        .arg(admin.to_string())
        .args(if args.contains(&"--http-listen") { &[][..] } else { &["--http-listen", "127.0.0.1:0"][..] })
        .args(["--console-listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn omsd");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return Some((out.status.success(), text(&out.stderr)));
        }
        if http_get_status(admin, "/ready") == Some(200) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        assert!(Instant::now() < deadline, "omsd neither started nor stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn keys_config(dir: &Path, entries: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (name, key) in entries {
        text.push_str(&format!("[[api_keys]]\nname = \"{name}\"\nkey = \"{key}\"\nrole = \"ops\"\n"));
    }
    let path = dir.join("omsd.toml");
    std::fs::write(&path, text).expect("config");
    path.to_string_lossy().into_owned()
}

#[test]
fn weak_or_repeated_api_keys_and_an_open_remote_listen_stop_omsd_at_start() {
    // Checks the review's cases: `key = ""` used to open the server to any client with ops; a
    // short key, a key listed twice (the first role silently won) and an empty name are refused
    // too, each message naming the entry and never the key. With no keys, a non-loopback
    // --listen (or --http-listen, the HTTP/JSON port with the same keys) is refused unless
    // --allow-unauthenticated-remote (flag or env) says so.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", free_addr().port());
    let good = "0123456789abcdef0123";
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("ops", "")], "entry 1 (\"ops\") has a key of 0 bytes; keys must be at least 16 bytes"),
        (&[("ops", good), ("shop", "short-key")], "entry 2 (\"shop\") has a key of 9 bytes"),
        (&[("ops", good), ("shop", good)], "entries 1 (\"ops\") and 2 (\"shop\") hold the same key"),
        (&[("", good)], "entry 1 has an empty name"),
    ];
    for (entries, expected) in cases {
        let config = keys_config(dir.path(), entries);
        let outcome = run_omsd(&data, &["--listen", &listen, "--config", &config]);
        let Some((ok, stderr)) = outcome else { panic!("omsd started with {entries:?}") };
        assert!(!ok, "omsd exited 0 with {entries:?}");
        assert!(stderr.contains(expected), "{entries:?}: {stderr}");
        assert!(!stderr.contains(good), "a key appears in the message: {stderr}");
    }
    let open = format!("0.0.0.0:{}", free_addr().port());
    let Some((ok, stderr)) = run_omsd(&data, &["--listen", &open]) else { panic!("omsd listened openly") };
    assert!(!ok && stderr.contains("--allow-unauthenticated-remote"), "{stderr}");
    assert!(run_omsd(&data, &["--listen", &open, "--allow-unauthenticated-remote"]).is_none(), "the flag is honoured");
    let open_http = format!("0.0.0.0:{}", free_addr().port());
    let Some((ok, stderr)) = run_omsd(&data, &["--listen", &listen, "--http-listen", &open_http]) else {
        panic!("omsd served HTTP openly")
    };
    assert!(!ok && stderr.contains("--http-listen") && stderr.contains("--allow-unauthenticated-remote"), "{stderr}");
    std::env::set_var("OMSD_ALLOW_UNAUTHENTICATED_REMOTE", "true");
    let by_env = run_omsd(&data, &["--listen", &open]);
    std::env::remove_var("OMSD_ALLOW_UNAUTHENTICATED_REMOTE");
    assert!(by_env.is_none(), "the environment variable is honoured: {by_env:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_above_the_frame_limit_is_refused_before_it_is_sent() {
    // Checks that with `max_frame_bytes = 4096`, a request larger than that is refused by the
    // client (FrameTooLarge naming both sizes) without sending it: the server never sees a
    // frame_too_large and the same connection keeps working; `oms` exits 1 with the same message
    // instead of "connection lost, the request may or may not have been applied".
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("omsd.toml");
    std::fs::write(&config, "max_frame_bytes = 4096\n").expect("config");
    let omsd = Omsd::start(&["--config", &config.to_string_lossy()]);
    let client = Client::connect(omsd.addr().to_string(), ClientOptions { reconnect: false, ..Omsd::client_options() })
        .await
        .expect("connect");
    assert_eq!(client.server_info().map(|i| i.max_frame_bytes), Some(4096));
    let codes: Vec<String> = (0..200).map(|i| format!("SKU-CODE-{i:040}")).collect();
    match client.lookup_skus(codes).await {
        Err(ClientError::Encode(EncodeError::FrameTooLarge { len, limit })) => {
            assert!(len > 4096 && limit == 4096, "{len} {limit}")
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    client.ping().await.expect("the connection is still usable");
    client.define_warehouse(1, "SH", "east", 0).await.expect("and serves requests");

    let mut args = vec!["reserve".to_owned()];
    for i in 0..64 {
        args.push("--line".into());
        args.push(format!("{:0>60}:1", i));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = omsd.oms(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the server accepts at most 4096"), "{}", text(&out.stderr));
    assert!(!omsd.stderr().contains("frame_too_large"), "a frame above the limit reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_with_control_or_invisible_characters_are_refused() {
    // Checks the review's SKU codes with NUL and a bidi override (and a zero-width space, a
    // newline): refused invalid_code naming the character, never interned (a lookup finds
    // nothing), for SKUs, kits and warehouses; an ordinary code with a space and non-Latin
    // letters is accepted.
    let omsd = Omsd::start(&[]);
    let client = omsd.client().await;
    client.define_warehouse(1, "SH", "east", 0).await.expect("warehouse");
    for code in ["MUG\0WHT", "MUG-\u{202E}TWH", "MUG\u{200B}WHT", "MUG\nWHT", "\u{FEFF}MUG"] {
        match client.define_sku(code, 0).await {
            Err(ClientError::Refused(e)) => {
                assert_eq!(e.name, "invalid_code", "{code:?}");
                assert!(e.message.contains("U+"), "{}", e.message);
            }
            other => panic!("{code:?} was not refused: {other:?}"),
        }
        assert_eq!(client.lookup_skus(vec![code.to_owned()]).await.expect("lookup"), vec![None], "{code:?} interned");
    }
    match client.define_warehouse(2, "BJ\u{2066}", "north", 1).await {
        Err(ClientError::Refused(e)) => assert_eq!(e.name, "invalid_code"),
        other => panic!("a warehouse code with an isolate was not refused: {other:?}"),
    }
    let id = client.define_sku("杯子 白色", 0).await.expect("printable text is a code");
    assert_eq!(client.lookup_skus(vec!["杯子 白色".into()]).await.expect("lookup"), vec![Some(id)]);
    let stock = client.stock(SkuRef::Code("杯子 白色")).await.expect("stock");
    assert_eq!(stock.on_hand, 0);
}
