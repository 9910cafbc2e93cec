//! TLS end to end: the real omsd with a certificate made at test time (rcgen), the Rust client,
//! the `oms` CLI and a follower over TLS; refusals (plain client, wrong CA, silent TCP peer); start
//! errors for bad certificate files; and `https://` webhooks to a local TLS receiver.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oms_client::tls::ClientTls;
use oms_client::{Cart, Client, ClientError, ClientOptions};
use oms_proto::SkuRef;
use oms_tests::{http_get, Omsd};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(label: &str) -> Pki {
        let dir = tempfile::tempdir().expect("pki dir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("omsd test CA {label}"));
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        let ca = write("ca.pem", ca_cert.pem());
        let cert = write("server.pem", cert.pem());
        let key = write("server.key", key.serialize_pem());
        Pki { _dir: dir, ca, cert, key }
    }

    fn server_args(&self) -> Vec<String> {
        vec!["--tls-cert".into(), self.cert.display().to_string(), "--tls-key".into(), self.key.display().to_string()]
    }
}

fn start_tls(pki: &Pki, extra: &[&str]) -> Omsd {
    let mut args = pki.server_args();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Omsd::start(&args)
}

fn tls_options(ca: &Path, server_name: Option<&str>) -> ClientOptions {
    let tls = ClientTls::new(Some(ca), server_name).expect("client TLS config");
    ClientOptions { tls: Some(tls), ..Omsd::client_options() }
}

async fn tls_client(omsd: &Omsd, ca: &Path) -> Client {
    match Client::connect(omsd.addr().to_string(), tls_options(ca, None)).await {
        Ok(c) => c,
        Err(e) => panic!("TLS connect failed: {e}; stderr:\n{}", omsd.stderr()),
    }
}

fn cart(sku: &str, qty: u32) -> Cart {
    Cart::new(600_000).line(sku, qty).customer(1)
}

async fn seed(client: &Client, sku: &str, on_hand: u64, threshold: u32) {
    client.define_warehouse(1, "SH", "east", 0).await.expect("warehouse");
    client.define_sku(sku, threshold).await.expect("sku");
    client.set_on_hand(sku, "1", on_hand).await.expect("on hand");
}

fn refused(omsd: &Omsd, reason: &str) -> u64 {
    let (_, text) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
    let series = format!("omsd_refused_total{{reason=\"{reason}\"}}");
    text.lines()
        .find(|l| l.starts_with(&series))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Wait until `omsd`'s stderr contains `needle`.
fn wait_log(omsd: &Omsd, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !omsd.stderr().contains(needle) {
        assert!(Instant::now() < deadline, "no log line {needle:?}; stderr:\n{}", omsd.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_and_cli_are_served_and_plain_clients_are_refused() {
    // Checks that over TLS a client reserves and reads its reservation back and `oms --tls-ca`
    // works, while a plain-TCP client (library and CLI) is refused, the server logs and counts the
    // reason, and it keeps serving TLS clients afterwards.
    let pki = Pki::new("a");
    let omsd = start_tls(&pki, &[]);
    let client = tls_client(&omsd, &pki.ca).await;
    seed(&client, "TLS-1", 10, 0).await;
    let reserved = client.reserve_cart(&cart("TLS-1", 3)).await.expect("reserve over TLS");
    let view = client.reservation(reserved.id).await.expect("read back over TLS");
    assert_eq!(view.status, "held", "{view:?}");
    let stock = client.stock(SkuRef::Code("TLS-1")).await.expect("stock");
    assert_eq!((stock.on_hand, stock.reserved), (10, 3), "{stock:?}");

    let plain = Client::connect(omsd.addr().to_string(), Omsd::client_options()).await;
    assert!(plain.is_err(), "a plain client must not get through a TLS port");
    wait_log(&omsd, "TLS handshake failed");
    assert!(refused(&omsd, "tls_handshake") >= 1, "refusal not counted");

    let ca = pki.ca.display().to_string();
    let ping = omsd.oms_json(&["--tls-ca", &ca, "ping"]);
    assert_eq!(ping["ok"], true, "{ping}");
    let named = omsd.oms_json(&["--tls-ca", &ca, "--tls-server-name", "localhost", "stock", "get", "TLS-1"]);
    assert_eq!(named["sku"], "TLS-1", "{named}");
    let out = omsd.oms(&["ping"]);
    assert_eq!(out.status.code(), Some(3), "plain oms against TLS: {}", String::from_utf8_lossy(&out.stderr));

    // The server stayed up: the first client and a new one are still served.
    client.reserve_cart(&cart("TLS-1", 1)).await.expect("old TLS client still served");
    tls_client(&omsd, &pki.ca).await.ping().await.expect("new TLS client served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_trusting_the_wrong_ca_or_name_are_refused() {
    // Checks that a client trusting another CA, or expecting another name, fails the TLS
    // handshake with a typed error naming the reason, and so does the CLI (exit 3).
    let pki = Pki::new("right");
    let other = Pki::new("wrong");
    let omsd = start_tls(&pki, &[]);
    let wrong_ca = Client::connect(omsd.addr().to_string(), tls_options(&other.ca, None)).await;
    match wrong_ca {
        Err(ClientError::Tls { source, .. }) => {
            assert!(source.to_string().contains("UnknownIssuer"), "reason: {source}")
        }
        other => panic!("expected a TLS error, got {:?}", other.map(|_| "connected")),
    }
    let wrong_name = Client::connect(omsd.addr().to_string(), tls_options(&pki.ca, Some("db.example"))).await;
    match wrong_name {
        Err(ClientError::Tls { source, .. }) => assert!(source.to_string().contains("not valid for name"), "{source}"),
        other => panic!("expected a TLS error, got {:?}", other.map(|_| "connected")),
    }
    let out = omsd.oms(&["--tls-ca", &other.ca.display().to_string(), "ping"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS handshake"), "{}", String::from_utf8_lossy(&out.stderr));
    tls_client(&omsd, &pki.ca).await.ping().await.expect("the right CA still works");
}

/// True when the peer closes `stream` within `within` (EOF or reset).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut byte = [0u8; 64];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_dropped_at_the_handshake_deadline() {
    // Checks that a TCP connection that never sends a TLS ClientHello is closed once the
    // handshake deadline passes (not before), that a good TLS client is served meanwhile, and that
    // the same deadline closes a plain-port connection that never sends its Hello.
    let pki = Pki::new("deadline");
    let omsd = start_tls(&pki, &["--handshake-timeout", "1500ms"]);
    let client = tls_client(&omsd, &pki.ca).await;
    seed(&client, "DL-1", 1_000, 0).await;
    let addr = omsd.addr();
    let silent = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let opened = Instant::now();
        let early = closed_within(&mut s, Duration::from_millis(1000));
        let closed = early || closed_within(&mut s, Duration::from_secs(5));
        (early, closed, opened.elapsed())
    });
    let started = Instant::now();
    let mut served = 0;
    while !silent.is_finished() && started.elapsed() < Duration::from_secs(10) {
        client.reserve_cart(&cart("DL-1", 1)).await.expect("a good client is served meanwhile");
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (early, closed, after) = silent.await.expect("silent peer");
    assert!(!early, "closed before the deadline ({after:?})");
    assert!(closed, "a silent TCP peer was not dropped ({after:?})");
    assert!(served > 10, "only {served} reserves while the silent peer waited");
    wait_log(&omsd, "TLS handshake not completed in time");
    assert!(refused(&omsd, "handshake_timeout") >= 1);

    let plain = Omsd::start(&["--handshake-timeout", "1s"]);
    let addr = plain.addr();
    let (early, closed) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let early = closed_within(&mut s, Duration::from_millis(600));
        (early, early || closed_within(&mut s, Duration::from_secs(5)))
    })
    .await
    .expect("plain silent peer");
    assert!(!early && closed, "plain port: early {early}, closed {closed}");
    wait_log(&plain, "no hello within the handshake timeout");
    plain.client().await.ping().await.expect("plain server still serves");
}

fn omsd_output(args: &[&str]) -> (bool, String) {
    let data = tempfile::tempdir().expect("data dir");
    let output = std::process::Command::new(oms_tests::omsd_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run omsd");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn bad_certificate_files_stop_omsd_with_a_clear_message() {
    // Checks that a missing certificate, a key file without a key, a key that does not match the
    // certificate, and a certificate without its key each stop omsd with a non-zero exit and a
    // message naming the problem (and the file).
    let pki = Pki::new("files");
    let other = Pki::new("other");
    let cert = pki.cert.display().to_string();
    let key = pki.key.display().to_string();
    let missing = pki.cert.with_file_name("missing.pem").display().to_string();
    let (ok, stderr) = omsd_output(&["--tls-cert", &missing, "--tls-key", &key]);
    assert!(!ok && stderr.contains("cannot read TLS certificate file") && stderr.contains("missing.pem"), "{stderr}");
    let (ok, stderr) = omsd_output(&["--tls-cert", &cert, "--tls-key", &cert]);
    assert!(!ok && stderr.contains("holds no private key"), "{stderr}");
    let (ok, stderr) = omsd_output(&["--tls-cert", &cert, "--tls-key", &other.key.display().to_string()]);
    assert!(!ok && stderr.contains("cannot be used together"), "{stderr}");
    let (ok, stderr) = omsd_output(&["--tls-cert", &cert]);
    assert!(!ok && stderr.contains("tls_cert and tls_key must be set together"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_replicates_from_a_tls_primary() {
    // Checks `omsd --follow` over TLS (`--follow-tls-ca`): the follower's state converges to the
    // primary's.
    let pki = Pki::new("repl");
    let primary = start_tls(&pki, &["--partitions", "1"]);
    let pclient = tls_client(&primary, &pki.ca).await;
    seed(&pclient, "R-1", 100, 0).await;
    for _ in 0..5 {
        pclient.reserve_cart(&cart("R-1", 2)).await.expect("reserve on the primary");
    }
    let ca = pki.ca.display().to_string();
    let follower = Omsd::start(&["--partitions", "1", "--follow", &primary.addr().to_string(), "--follow-tls-ca", &ca]);
    let fclient = follower.client().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(view) = fclient.stock(SkuRef::Code("R-1")).await {
            if view.reserved == 10 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "follower did not converge; stderr:\n{}", follower.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTPS receiver (TLS from the test PKI): answers 200 and forwards each request's path and
/// JSON body.
async fn https_receiver(pki: &Pki) -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Value)>) {
    let acceptor = oms_gateway::tls::acceptor(&pki.cert, &pki.key).expect("receiver TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut stream) = acceptor.accept(tcp).await else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let request = loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(request) = oms_tests::complete_http_request(&buf) {
                    break Some(request);
                }
            };
            let Some((path, body)) = request else { continue };
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            let _ = tx.send((path, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhooks_reach_a_receiver_trusted_through_ca_file() {
    // Checks that an https:// webhook is delivered over TLS to a receiver whose certificate is
    // trusted through the webhook's `ca_file`, and that a hook without it (public roots only)
    // cannot deliver to the same receiver and counts a failure instead.
    let pki = Pki::new("hook");
    let (addr, mut received) = https_receiver(&pki).await;
    let dir = tempfile::tempdir().expect("config dir");
    let config = dir.path().join("omsd.toml");
    let toml = format!(
        r#"
[[webhooks]]
url = "https://{addr}/trusted"
events = ["low_stock"]
ca_file = "{ca}"
retry_initial_ms = 50

[[webhooks]]
url = "https://{addr}/untrusted"
events = ["low_stock"]
max_attempts = 1
"#,
        ca = pki.ca.display()
    );
    std::fs::write(&config, toml).expect("write config");
    let config = config.display().to_string();
    let omsd = Omsd::start(&["--partitions", "1", "--config", &config]);
    let client = omsd.client().await;
    seed(&client, "HOOK-S", 10, 5).await;
    client.reserve_cart(&cart("HOOK-S", 8)).await.expect("reserve below the threshold");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((path, body))) = tokio::time::timeout(left, received.recv()).await else {
            panic!("https webhook not delivered; omsd stderr:\n{}", omsd.stderr());
        };
        assert_eq!(path, "/trusted", "only the hook trusting the receiver's CA may deliver");
        if body["event"] == "low_stock" && body["data"]["available"] == 2 {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = http_get(omsd.admin_addr(), "/metrics").expect("metrics");
        let failed = text
            .lines()
            .find(|l| l.starts_with("omsd_webhook_deliveries_total{outcome=\"failed\"}"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if failed >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the untrusted hook's failure was not counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
