//! Webhooks end to end: the real omsd configured with `[[webhooks]]`, a local HTTP receiver that
//! fails the first delivery, and the formats checked on what arrives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oms_client::Cart;
use oms_tests::{http_get, Omsd};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One request the receiver got: (path, status it answered, JSON body).
type Received = (String, u16, Value);

/// A tiny HTTP receiver: the FIRST request on each path is answered 500, later ones 200 (with the
/// robots' `{"errcode":0}`).
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let addr = listener.local_addr().expect("receiver addr").to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut seen: HashMap<String, u32> = HashMap::new();
        while let Ok((stream, _)) = listener.accept().await {
            let Some((path, body)) = read_request(&stream).await else { continue };
            let count = seen.entry(path.clone()).or_default();
            *count += 1;
            let status = if *count == 1 { 500 } else { 200 };
            answer(stream, status).await;
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let _ = tx.send((path, status, json));
        }
    });
    (addr, rx)
}

async fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
        if let Some(request) = oms_tests::complete_http_request(&buf) {
            return Some(request);
        }
    }
}

async fn answer(mut stream: TcpStream, status: u16) {
    let body = if status == 200 { r#"{"errcode":0,"errmsg":"ok"}"# } else { "boom" };
    let reason = if status == 200 { "OK" } else { "Internal Server Error" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.read_to_end(&mut rest)).await;
}

fn metric(text: &str, outcome: &str) -> u64 {
    text.lines()
        .filter(|l| l.contains("webhook_deliveries") && l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.split_whitespace().last().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_stock_webhooks_are_retried_and_formatted() {
    // Checks that a low_stock event reaches a generic-JSON webhook and a DingTalk and a WeCom
    // robot webhook after the receiver's first answer (500) is retried, in each configured format,
    // that unsubscribed kinds are not sent, and that /metrics counts the retries and deliveries.
    let (addr, mut received) = receiver().await;
    let dir = tempfile::tempdir().expect("config dir");
    let config = dir.path().join("omsd.toml");
    let toml = format!(
        r#"
[[webhooks]]
url = "http://{addr}/json"
format = "json"
events = ["low_stock"]
retry_initial_ms = 50

[[webhooks]]
url = "http://{addr}/robot/send?access_token=t"
format = "dingtalk"
events = ["low_stock", "campaign_sold_out"]
retry_initial_ms = 50

[[webhooks]]
url = "http://{addr}/cgi-bin/webhook/send?key=k"
format = "wecom"
events = ["campaign_closed"]
retry_initial_ms = 50
"#
    );
    std::fs::write(&config, toml).expect("write config");
    let config = config.display().to_string();
    let omsd = Omsd::start(&["--partitions", "1", "--config", &config]);
    let client = omsd.client().await;
    client.define_warehouse(1, "SH", "east", 0).await.expect("warehouse");
    let sku = client.define_sku("HOOK-1", 5).await.expect("sku");
    client.set_on_hand("HOOK-1", "1", 10).await.expect("on hand");
    let cart = Cart::new(600_000).line("HOOK-1", 8).customer(1);
    client.reserve_cart(&cart).await.expect("reserve below the threshold");

    // Two hooks want low_stock: each gets a 500 first, then the retry succeeds. The SKU was
    // already low (0 available) when defined, so the reservation's event is not the first.
    let json_path = "/json";
    let robot_path = "/robot/send?access_token=t";
    let is_ours_json = |b: &Value| b["event"] == "low_stock" && b["data"]["available"] == 2;
    let is_ours_robot =
        |b: &Value| b["text"]["content"].as_str().is_some_and(|c| c.contains("low_stock") && c.contains("2 available"));
    let mut got: HashMap<String, Vec<(u16, Value)>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let json_done = got.get(json_path).is_some_and(|v| v.iter().any(|(s, b)| *s == 200 && is_ours_json(b)));
        let robot_done = got.get(robot_path).is_some_and(|v| v.iter().any(|(s, b)| *s == 200 && is_ours_robot(b)));
        if json_done && robot_done {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((path, status, body))) = tokio::time::timeout(left, received.recv()).await else {
            panic!("webhooks not delivered in time; got {got:?}; omsd stderr:\n{}", omsd.stderr());
        };
        got.entry(path).or_default().push((status, body));
    }
    for path in [json_path, robot_path] {
        let list = &got[path];
        assert_eq!(list[0].0, 500, "{path}: the first delivery failed");
        assert_eq!((list[1].0, &list[1].1), (200, &list[0].1), "{path}: the retry sends the same body and succeeds");
        assert!(list[2..].iter().all(|(s, _)| *s == 200), "{path}: later deliveries succeed at once: {list:?}");
    }
    let body = got[json_path].iter().map(|(_, b)| b).find(|b| is_ours_json(b)).expect("our event");
    assert_eq!(body["partition"], 0);
    assert!(body["lsn"].as_u64().is_some_and(|l| l > 0), "lsn: {body}");
    assert!(body["at_ms"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "at_ms: {body}");
    assert_eq!(body["data"]["sku"], sku);
    assert_eq!(body["data"]["threshold"], 5);
    let body = got[robot_path].iter().map(|(_, b)| b).find(|b| is_ours_robot(b)).expect("our event");
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "robot body is msgtype + text only: {body}");
    assert!(!got.contains_key("/cgi-bin/webhook/send?key=k"), "the WeCom hook wants no low_stock");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
        let (retried, delivered) = (metric(&text, "retried"), metric(&text, "delivered"));
        if retried >= 2 && delivered >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "metrics: retried {retried}, delivered {delivered}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn webhook_config_errors_are_refused_at_startup() {
    // Checks that omsd refuses to start on an unknown event kind, a `ca_file` on a plain http URL
    // and an unreadable `ca_file`, saying why.
    let dir = tempfile::tempdir().expect("config dir");
    for (toml, expected) in [
        ("[[webhooks]]\nurl = \"http://127.0.0.1:1/x\"\nevents = [\"nope\"]\n", "unknown event kind"),
        (
            "[[webhooks]]\nurl = \"http://127.0.0.1:1/x\"\nevents = [\"low_stock\"]\nca_file = \"/etc/hostname\"\n",
            "only used with an https",
        ),
        (
            "[[webhooks]]\nurl = \"https://127.0.0.1:1/x\"\nevents = [\"low_stock\"]\nca_file = \"/nonexistent/ca.pem\"\n",
            "cannot read TLS CA file",
        ),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, toml).expect("write config");
        let output = std::process::Command::new(oms_tests::omsd_bin())
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .expect("run omsd");
        assert!(!output.status.success(), "omsd accepted {toml}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "stderr for {toml}: {stderr}");
    }
}

/// One request as received: path with query, headers (lower-case names), body.
type Request = (String, HashMap<String, String>, Vec<u8>);

/// A receiver that answers 503 while `down` is set and 200 (`{"errcode":0}`) otherwise, and
/// reports every request it answered 200 with its headers.
async fn switchable_receiver(
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, mpsc::UnboundedReceiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let addr = listener.local_addr().expect("receiver addr").to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let request = loop {
                if stream.readable().await.is_err() {
                    break None;
                }
                match stream.try_read(&mut chunk) {
                    Ok(0) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break None,
                }
                if let Some(request) = oms_tests::complete_http_request(&buf) {
                    break Some(request);
                }
            };
            let Some((path, body)) = request else { continue };
            let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
            let headers: HashMap<String, String> = String::from_utf8_lossy(&buf[..head_end])
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())))
                .collect();
            let is_down = down.load(std::sync::atomic::Ordering::SeqCst);
            answer(stream, if is_down { 503 } else { 200 }).await;
            if !is_down {
                let _ = tx.send((path, headers, body));
            }
        }
    });
    (addr, rx)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn pending(text: &str, webhook: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with("omsd_webhook_pending{") && l.contains(&format!("webhook=\"{webhook}\"")))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_wait_on_disk_through_an_outage_and_a_crash() {
    // A generic JSON webhook with a secret and a signed DingTalk robot with a keyword and an
    // @-mention, while the receiver is down (503): the low_stock event waits in the webhook's disk
    // queue (visible as omsd_webhook_pending), omsd is killed with SIGKILL and started again, the
    // receiver comes back, and the event arrives. The JSON request's X-Omsd-Signature is
    // recomputed here with HMAC-SHA256 over "<timestamp>.<body>"; the robot's `sign` query
    // parameter is recomputed from DingTalk's definition.
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (addr, mut received) = switchable_receiver(down.clone()).await;
    let dir = tempfile::tempdir().expect("config dir");
    let config = dir.path().join("omsd.toml");
    let toml = format!(
        r#"
[[webhooks]]
name = "erp"
url = "http://{addr}/erp"
events = ["low_stock"]
secret = "erp-s3cret"
retry_initial_ms = 50
retry_max_ms = 200

[[webhooks]]
name = "ops-robot"
url = "http://{addr}/robot/send?access_token=t"
format = "dingtalk"
events = ["low_stock"]
secret = "SECrobot"
keyword = "库存"
at_mobiles = ["13800000000"]
retry_initial_ms = 50
retry_max_ms = 200
"#
    );
    std::fs::write(&config, toml).expect("write config");
    let config = config.display().to_string();
    let mut omsd = Omsd::start(&["--partitions", "1", "--config", &config]);
    let client = omsd.client().await;
    client.define_warehouse(1, "SH", "east", 0).await.expect("warehouse");
    client.define_sku("HOOK-2", 5).await.expect("sku");
    client.set_on_hand("HOOK-2", "1", 10).await.expect("on hand");
    let cart = Cart::new(600_000).line("HOOK-2", 7).customer(1);
    client.reserve_cart(&cart).await.expect("reserve below the threshold");
    drop(client);

    // Queued on disk for both webhooks while the receiver refuses: the event is in each spool
    // (an event still on its way to the spool when the process is killed is the documented loss
    // window, so the kill waits for it), pending in /metrics, and retried.
    let spooled = |name: &str| {
        std::fs::read_dir(omsd.data_dir().join("webhooks").join(name))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"available\":3")))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
        let queued = pending(&text, "erp") >= 1 && pending(&text, "ops-robot") >= 1 && metric(&text, "retried") >= 2;
        if queued && spooled("erp") && spooled("ops-robot") {
            break;
        }
        assert!(Instant::now() < deadline, "events not pending:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    omsd.kill();
    omsd.restart();
    down.store(false, std::sync::atomic::Ordering::SeqCst);

    let mut got: HashMap<String, Request> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(request)) = tokio::time::timeout(left, received.recv()).await else {
            panic!("webhooks not delivered after the restart; got {:?}; omsd stderr:\n{}", got.keys(), omsd.stderr());
        };
        let route = request.0.split('?').next().unwrap_or_default().to_owned();
        let body: Value = serde_json::from_slice(&request.2).unwrap_or(Value::Null);
        let ours = body["data"]["sku_code"] == "HOOK-2" && body["data"]["available"] == 3
            || body["text"]["content"].as_str().is_some_and(|c| c.contains("HOOK-2") && c.contains("3 available"));
        if ours {
            got.insert(route, request);
        }
    }

    let (_, headers, body) = &got["/erp"];
    let timestamp = &headers["x-omsd-timestamp"];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    assert!(now.abs_diff(timestamp.parse::<u64>().expect("unix seconds")) < 60, "fresh timestamp {timestamp}");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = format!("sha256={}", hex::encode(hmac_sha256(b"erp-s3cret", &signed)));
    assert_eq!(headers["x-omsd-signature"], expected, "the signature verifies over the raw body");
    assert_eq!(headers["x-omsd-event"], "low_stock");
    assert!(headers.contains_key("idempotency-key"), "{headers:?}");

    let (path, _, body) = &got["/robot/send"];
    let query: HashMap<String, String> = url::Url::parse(&format!("http://x{path}"))
        .expect("path")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(query["access_token"], "t");
    let ts = &query["timestamp"];
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(b"SECrobot", format!("{ts}\nSECrobot").as_bytes()));
    assert_eq!(query["sign"], expected, "DingTalk's sign verifies");
    let body: Value = serde_json::from_slice(body).expect("json");
    let content = body["text"]["content"].as_str().expect("text");
    assert!(content.starts_with("库存 ") && content.ends_with("@13800000000"), "{content}");
    assert_eq!(body["at"]["atMobiles"], serde_json::json!(["13800000000"]));
}
