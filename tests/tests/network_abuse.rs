//! Network abuse against the REAL omsd on loopback: hostile or broken peers must cost the server
//! only their own connection, never its life, its memory bound or its service to other clients.
//!
//! Every test starts its own omsd (debug build, `--fsync always`), abuses it through raw
//! `std::net::TcpStream`s, and ends with the same checks (`Fixture::assert_healthy`): the process
//! is alive, a well-behaved client (the real `oms_client::Client`) still reserves, and
//! where the abuse is a refusal, `omsd_refused_total{reason=..}` counted it and the server's
//! stderr has a line naming the reason. All sockets use 127.0.0.1, every read and write has a
//! timeout, and every loop is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oms_client::{Cart, Client, ClientOptions};
use oms_proto::{
    decode_response, peek_frame, Hello, Line, Opcode, Request, Reserve, Response, SkuRef, HELLO_MAGIC, PROTOCOL_VERSION,
};
use oms_tests::{http_get, Omsd};

const OPS_KEY: &str = "ops-key-7f3a9c0e51d24b86";
const STOREFRONT_KEY: &str = "shop-key-2b8e61d4c09a7f35";
const READER_KEY: &str = "reader-key-9d0c3e7a18f2b645";
/// The SKU every well-behaved reservation takes one unit of.
const GOOD_SKU: &str = "ABUSE-GOOD";
/// Socket timeouts of the abusive raw connections.
const RAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Deterministic generator for garbage (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One omsd plus a well-behaved client (ops role) and the runtime that drives it.
struct Fixture {
    omsd: Omsd,
    runtime: tokio::runtime::Runtime,
    client: Client,
    key: Option<&'static str>,
    _config_dir: tempfile::TempDir,
}

impl Fixture {
    /// Start omsd; with `keys`, the config holds an ops, a storefront and a reader key.
    fn start(keys: bool) -> Fixture {
        let config_dir = tempfile::tempdir().expect("config dir");
        let config: PathBuf = config_dir.path().join("omsd.toml");
        let mut text = String::from("max_in_flight = 4096\n");
        if keys {
            for (name, key, role) in [
                ("ops-team", OPS_KEY, "ops"),
                ("web-shop", STOREFRONT_KEY, "storefront"),
                ("auditor", READER_KEY, "reader"),
            ] {
                text.push_str(&format!("[[api_keys]]\nname = \"{name}\"\nkey = \"{key}\"\nrole = \"{role}\"\n"));
            }
        }
        std::fs::write(&config, text).expect("write config");
        let config_arg = config.to_string_lossy().into_owned();
        let omsd = Omsd::start(&["--config", &config_arg, "--partitions", "2", "--fsync", "always"]);
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let key = keys.then_some(OPS_KEY);
        let client =
            runtime.block_on(connect(omsd.addr(), key)).unwrap_or_else(|e| panic!("connect: {e}\n{}", omsd.stderr()));
        runtime.block_on(async {
            client.define_warehouse(1, "SH", "east", 0).await.expect("define warehouse");
            client.define_sku(GOOD_SKU, 0).await.expect("define sku");
            client.set_on_hand(GOOD_SKU, "1", 10_000_000).await.expect("set on hand");
        });
        Fixture { omsd, runtime, client, key, _config_dir: config_dir }
    }

    fn addr(&self) -> SocketAddr {
        self.omsd.addr()
    }

    fn pid(&self) -> u32 {
        self.omsd.pid().expect("omsd running")
    }

    /// The server is alive, accepts a NEW connection, and both the long-lived and the new
    /// client reserve one unit.
    fn assert_healthy(&self, after: &str) {
        assert!(process_alive(self.pid()), "omsd died after {after}; stderr:\n{}", self.omsd.stderr());
        let key = self.key;
        let addr = self.addr();
        let result = self.runtime.block_on(async {
            let fresh = connect(addr, key).await?;
            let first = tokio::time::timeout(Duration::from_secs(10), self.client.reserve_cart(&cart(1))).await;
            let second = tokio::time::timeout(Duration::from_secs(10), fresh.reserve_cart(&cart(1))).await;
            match (first, second) {
                (Ok(a), Ok(b)) => Ok::<_, oms_client::ClientError>((a?, b?)),
                _ => Err(oms_client::ClientError::Timeout(Duration::from_secs(10))),
            }
        });
        if let Err(e) = result {
            panic!("a well-behaved client could not reserve after {after}: {e}; stderr:\n{}", self.omsd.stderr());
        }
    }

    /// `omsd_refused_total{reason="<reason>"}` from /metrics (0 when absent).
    fn refused(&self, reason: &str) -> u64 {
        metric(&self.metrics(), &format!("omsd_refused_total{{reason=\"{reason}\"}}"))
    }

    fn metrics(&self) -> String {
        match http_get(self.omsd.admin_addr(), "/metrics") {
            Some((200, body)) => body,
            other => panic!("GET /metrics failed: {other:?}"),
        }
    }

    /// Assert the refusal was counted, and logged: a stderr line contains `log_needle` (the
    /// reason label, or the sentence the server logs for it).
    fn assert_refusal_reported(&self, reason: &str, at_least: u64, log_needle: &str) {
        let counted = self.refused(reason);
        assert!(
            counted >= at_least,
            "omsd_refused_total{{reason=\"{reason}\"}} = {counted}, expected >= {at_least}; metrics:\n{}",
            self.metrics()
        );
        let stderr = self.omsd.stderr();
        assert!(
            stderr.contains(log_needle),
            "no log line for {reason:?} (looked for {log_needle:?}); stderr:\n{stderr}"
        );
    }
}

async fn connect(addr: SocketAddr, key: Option<&str>) -> Result<Client, oms_client::ClientError> {
    let options = ClientOptions {
        api_key: key.map(str::to_owned),
        client_name: "abuse-good-client".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        reconnect: true,
        ..ClientOptions::default()
    };
    Client::connect(addr.to_string(), options).await
}

fn cart(qty: u32) -> Cart {
    Cart::new(600_000).line(GOOD_SKU, qty).customer(1)
}

/// The frame of a one-line reserve of `qty` units of the good SKU.
fn reserve_frame(qty: u32, request_id: u64) -> Vec<u8> {
    let lines = [Line::code(GOOD_SKU, qty)];
    request_frame(&Request::Reserve(Reserve::new(&lines, 600_000).customer(1)), request_id)
}

/// The frame of a JSON-bodied request.
fn json_frame(opcode: Opcode, body: &str, request_id: u64) -> Vec<u8> {
    request_frame(&Request::Json { opcode, body }, request_id)
}

/// A Prometheus sample value by its exact series text, 0 if absent.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .map_or(0, |v| v as u64)
}

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !status.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}

/// Resident set size of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, RAW_TIMEOUT).expect("raw connect");
    stream.set_read_timeout(Some(RAW_TIMEOUT)).expect("read timeout");
    stream.set_write_timeout(Some(RAW_TIMEOUT)).expect("write timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A frame with any opcode and payload, laid out by hand (docs/PROTOCOL.md section 2).
fn frame(opcode: u16, request_id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&(12 + payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn request_frame(request: &Request<'_>, request_id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    request.encode(request_id, &mut out).expect("encode request");
    out
}

fn hello_frame(key: &str, version: u16, magic: [u8; 4]) -> Vec<u8> {
    let hello = Hello { magic, version, features: 0, api_key: key, client: "abuser" };
    request_frame(&Request::Hello(hello), 1)
}

/// Reads one response frame; `None` on EOF, reset or timeout.
fn read_response(stream: &mut TcpStream) -> Option<(u64, Response)> {
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).ok()?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    assert!((12..=64 << 20).contains(&len), "server sent a frame of implausible length {len}");
    let mut frame = header.to_vec();
    frame.resize(4 + len, 0);
    stream.read_exact(&mut frame[16..]).ok()?;
    let span = peek_frame(&frame, 64 << 20).expect("a valid frame").expect("a whole frame");
    let response =
        decode_response(&span.header, span.payload(&frame)).expect("server sent an invalid response payload");
    Some((span.header.request_id, response))
}

/// The wire error name of a response (panics on success answers).
fn error_name(response: &Response) -> &str {
    match response {
        Response::Error(e) => &e.name,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// True if the server closes the connection (EOF or reset) within `within`, draining anything
/// it still sends.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A raw connection that completed the handshake with `key`.
fn authenticated(addr: SocketAddr, key: &str) -> TcpStream {
    let mut stream = raw(addr);
    stream.write_all(&hello_frame(key, PROTOCOL_VERSION, HELLO_MAGIC)).expect("send hello");
    match read_response(&mut stream) {
        Some((1, Response::HelloOk(_))) => stream,
        other => panic!("handshake failed: {other:?}"),
    }
}

#[test]
fn broken_framing_closes_only_the_offending_connection() {
    // Checks garbage bytes, a too-short length, u32::MAX and 2 MiB length prefixes, a truncated
    // frame and garbage after a valid hello: each is answered bad_frame / frame_too_large (request
    // id 0) or simply closed, the server closes that connection, counts the refusal and logs a
    // reason, and keeps serving others.
    let fx = Fixture::start(false);
    let mut rng = Rng(0x5eed_0001);

    // Length prefix u32::MAX: refused before anything is buffered.
    let mut s = raw(fx.addr());
    s.write_all(&u32::MAX.to_le_bytes()).expect("send");
    let (id, response) = read_response(&mut s).expect("an answer to a u32::MAX length");
    assert_eq!((id, error_name(&response)), (0, "frame_too_large"));
    assert!(closed_by_server(&mut s, RAW_TIMEOUT), "connection left open after frame_too_large");

    // 2 MiB frame (above the 1 MiB default): refused from its header alone.
    let mut s = raw(fx.addr());
    s.write_all(&((2u32 << 20) - 4).to_le_bytes()).expect("send");
    let (_, response) = read_response(&mut s).expect("answer");
    assert_eq!(error_name(&response), "frame_too_large");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT));

    // Length below the 12-byte header.
    let mut s = raw(fx.addr());
    s.write_all(&[3, 0, 0, 0, 1, 2, 3]).expect("send");
    let (_, response) = read_response(&mut s).expect("answer");
    assert_eq!(error_name(&response), "bad_frame");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT));

    // Garbage after a valid handshake: the first four garbage bytes are an impossible length.
    let mut s = authenticated(fx.addr(), "");
    let mut garbage = vec![0xFF, 0xFF, 0xFF, 0x7F];
    garbage.extend(rng.bytes(1000));
    s.write_all(&garbage).expect("send garbage");
    let (_, response) = read_response(&mut s).expect("answer");
    assert_eq!(error_name(&response), "frame_too_large");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT));

    // Random garbage: whatever the first bytes mean, the server must not hang or die. A length
    // that happens to be plausible leaves the server waiting for the rest: we hang up.
    for _ in 0..50 {
        let mut s = raw(fx.addr());
        let n = 1 + (rng.next() % 512) as usize;
        let _ = s.write_all(&rng.bytes(n));
        s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let _ = closed_by_server(&mut s, Duration::from_millis(300));
    }

    // A truncated frame: header promises 100 bytes, 10 arrive, then the client goes away.
    let mut s = raw(fx.addr());
    let mut truncated = frame(Opcode::Ping as u16, 9, &[0u8; 88]);
    truncated.truncate(26);
    s.write_all(&truncated).expect("send");
    drop(s);

    fx.assert_healthy("broken framing");
    fx.assert_refusal_reported("frame_too_large", 3, "exceeds the limit");
    fx.assert_refusal_reported("bad_frame", 1, "shorter than the 12-byte header");
    assert!(fx.omsd.stderr().contains("bad framing"), "no 'bad framing' log line");
}

#[test]
fn unknown_opcodes_and_bad_payloads_are_answered_and_the_connection_continues() {
    // Checks that after the handshake an unknown opcode is answered unknown_opcode and a payload
    // that does not validate (or does not match its opcode) is answered bad_request, with the
    // request id echoed and the connection still usable (a Ping gets a Pong); before the
    // handshake an unknown opcode closes the connection. Refusals are counted and logged.
    let fx = Fixture::start(false);
    let mut s = authenticated(fx.addr(), "");
    s.write_all(&frame(999, 41, b"whatever")).expect("send");
    let (id, response) = read_response(&mut s).expect("answer");
    assert_eq!((id, error_name(&response)), (41, "unknown_opcode"));
    // The server logs the first refusal of a connection only: bad payloads on a second one.
    let mut s = authenticated(fx.addr(), "");
    s.write_all(&frame(Opcode::Reserve as u16, 42, &[0xAB; 40])).expect("send");
    let (id, response) = read_response(&mut s).expect("answer");
    assert_eq!((id, error_name(&response)), (42, "bad_request"));
    let ping_payload: &[u8] = &[];
    s.write_all(&frame(Opcode::Reserve as u16, 43, ping_payload)).expect("send");
    let (id, response) = read_response(&mut s).expect("answer");
    assert_eq!((id, error_name(&response)), (43, "bad_request"));
    s.write_all(&frame(100, 44, ping_payload)).expect("send");
    let (id, response) = read_response(&mut s).expect("answer");
    assert_eq!(id, 44);
    assert!(matches!(response, Response::Error(_)), "a client sending opcode 100 must be refused: {response:?}");
    s.write_all(&request_frame(&Request::Ping, 45)).expect("send");
    assert_eq!(read_response(&mut s), Some((45, Response::Done)));

    let mut before_hello = raw(fx.addr());
    before_hello.write_all(&frame(7777, 5, &[])).expect("send");
    let (_, response) = read_response(&mut before_hello).expect("answer");
    assert_eq!(error_name(&response), "unknown_opcode");
    assert!(closed_by_server(&mut before_hello, RAW_TIMEOUT), "unknown opcode before hello must close");

    fx.assert_healthy("unknown opcodes and bad payloads");
    fx.assert_refusal_reported("unknown_opcode", 2, "unknown_opcode");
    fx.assert_refusal_reported("bad_request", 2, "bad_request");
}

#[test]
fn wrong_version_bad_magic_and_missing_hello_are_refused() {
    // Checks the handshake refusals: a newer version -> unsupported_version, a wrong magic -> bad_frame,
    // a first frame that is not Hello -> unauthenticated; each closes the connection and is
    // counted in omsd_refused_total with its reason and logged.
    let fx = Fixture::start(false);
    let mut s = raw(fx.addr());
    s.write_all(&hello_frame("", PROTOCOL_VERSION + 1, HELLO_MAGIC)).expect("send");
    let (_, response) = read_response(&mut s).expect("answer");
    assert_eq!(error_name(&response), "unsupported_version");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT));

    let mut s = raw(fx.addr());
    s.write_all(&hello_frame("", PROTOCOL_VERSION, *b"HTTP")).expect("send");
    let (_, response) = read_response(&mut s).expect("answer");
    assert_eq!(error_name(&response), "bad_frame");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT));

    let mut s = raw(fx.addr());
    s.write_all(&reserve_frame(1, 3)).expect("send");
    let (_, response) = read_response(&mut s).expect("answer");
    assert_eq!(error_name(&response), "unauthenticated");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT));

    // An HTTP request sent to the binary port by mistake.
    let mut s = raw(fx.addr());
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    assert!(closed_by_server(&mut s, RAW_TIMEOUT), "an HTTP request must get the connection closed");

    fx.assert_healthy("handshake refusals");
    fx.assert_refusal_reported("unsupported_version", 1, "unsupported_version");
    fx.assert_refusal_reported("bad_magic", 1, "bad_magic");
    fx.assert_refusal_reported("no_hello", 1, "no_hello");
}

#[test]
fn api_keys_refuse_strangers_and_roles_limit_opcodes() {
    // Checks with three configured keys: a wrong, empty or prefix-of-a-real key is refused
    // unauthenticated and the connection closed; a storefront key may reserve but gets forbidden
    // (connection kept) for DefineSku, StockOp, Ship and Audit; a reader key may only ping. Each
    // refusal is counted (invalid_key, forbidden) and logged without the key.
    let fx = Fixture::start(true);
    for wrong in ["not-a-key", "", &OPS_KEY[..OPS_KEY.len() - 1], &format!("{OPS_KEY}x")] {
        let mut s = raw(fx.addr());
        s.write_all(&hello_frame(wrong, PROTOCOL_VERSION, HELLO_MAGIC)).expect("send");
        let (_, response) = read_response(&mut s).expect("answer");
        assert_eq!(error_name(&response), "unauthenticated", "key {wrong:?}");
        assert!(closed_by_server(&mut s, RAW_TIMEOUT));
    }

    let mut shop = authenticated(fx.addr(), STOREFRONT_KEY);
    let set_on_hand = format!(r#"{{"op":"set_on_hand","sku":"{GOOD_SKU}","warehouse":1,"on_hand":0}}"#);
    let ops_requests = [
        json_frame(Opcode::DefineSku, r#"{"code":"EVIL"}"#, 100),
        json_frame(Opcode::StockOp, &set_on_hand, 101),
        request_frame(&Request::Ship { id: 1 }, 102),
        json_frame(Opcode::Audit, "{}", 103),
    ];
    for (i, request) in ops_requests.iter().enumerate() {
        let id = 100 + i as u64;
        shop.write_all(request).expect("send");
        let (got, response) = read_response(&mut shop).expect("answer");
        assert_eq!((got, error_name(&response)), (id, "forbidden"), "request {i}");
    }
    shop.write_all(&reserve_frame(2, 200)).expect("send");
    match read_response(&mut shop) {
        Some((200, Response::Reserved(r))) => assert!(r.id != 0),
        other => panic!("storefront reserve failed: {other:?}"),
    }

    let mut reader = authenticated(fx.addr(), READER_KEY);
    reader.write_all(&reserve_frame(1, 300)).expect("send");
    let (_, response) = read_response(&mut reader).expect("answer");
    assert_eq!(error_name(&response), "forbidden");
    reader.write_all(&request_frame(&Request::Ping, 301)).expect("send");
    assert_eq!(read_response(&mut reader), Some((301, Response::Done)));

    // The stock the forbidden SetOnHand aimed at is untouched.
    let stock = fx.runtime.block_on(fx.client.stock(SkuRef::Code(GOOD_SKU))).expect("stock");
    assert_eq!(stock.on_hand, 10_000_000);

    fx.assert_healthy("bad keys and wrong roles");
    fx.assert_refusal_reported("invalid_key", 4, "invalid_key");
    fx.assert_refusal_reported("forbidden", 5, "role does not allow it");
    assert!(fx.omsd.stderr().contains("role does not allow it"));
}

#[test]
fn hundreds_of_idle_connections_do_not_block_service() {
    // Checks that 500 idle connections (half never say hello, half stop after it) leave the
    // server serving a well-behaved client, that the connections gauge sees them, that the
    // server's memory per idle connection stays small (< 256 KiB), and that the gauge falls back
    // once they are gone.
    let fx = Fixture::start(false);
    let rss_before = rss_kib(fx.pid());
    let mut idle = Vec::with_capacity(500);
    for i in 0..500 {
        if i % 2 == 0 {
            idle.push(raw(fx.addr()));
        } else {
            idle.push(authenticated(fx.addr(), ""));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&fx.metrics(), "omsd_connections ") < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let open = metric(&fx.metrics(), "omsd_connections ");
    assert!(open >= 500, "connections gauge {open} < 500");
    fx.assert_healthy("500 idle connections");
    let rss_with = rss_kib(fx.pid());
    let per_connection = rss_with.saturating_sub(rss_before) * 1024 / 500;
    eprintln!("rss {rss_before} KiB -> {rss_with} KiB with 500 idle connections: {per_connection} B each");
    assert!(per_connection < 256 * 1024, "{per_connection} bytes of RSS per idle connection");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&fx.metrics(), "omsd_connections ") > 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(&fx.metrics(), "omsd_connections ") <= 5, "closed connections still counted");
}

#[test]
fn slowloris_writers_do_not_block_other_clients() {
    // Checks that 16 clients dribbling their Hello and a Ping one byte every 100 ms neither block
    // nor slow a well-behaved client (each of its reserves answers within 2 s meanwhile), and
    // that the dribbled frames are still understood correctly when complete.
    let fx = Fixture::start(false);
    let addr = fx.addr();
    let writers: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = raw(addr);
                let mut bytes = hello_frame("", PROTOCOL_VERSION, HELLO_MAGIC);
                bytes.extend(request_frame(&Request::Ping, 2));
                for b in &bytes {
                    s.write_all(std::slice::from_ref(b)).expect("dribble");
                    std::thread::sleep(Duration::from_millis(100));
                }
                let hello = read_response(&mut s);
                let pong = read_response(&mut s);
                (bytes.len(), hello, pong)
            })
        })
        .collect();
    let started = Instant::now();
    let mut reserves = 0;
    while writers.iter().any(|w| !w.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        let t = Instant::now();
        let r = fx.runtime.block_on(fx.client.reserve_cart(&cart(1)));
        assert!(r.is_ok(), "reserve failed during slowloris: {r:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "reserve took {:?} during slowloris", t.elapsed());
        reserves += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    for w in writers {
        let (len, hello, pong) = w.join().expect("writer");
        assert!(matches!(hello, Some((1, Response::HelloOk(_)))), "dribbled hello ({len} bytes) not understood");
        assert_eq!(pong, Some((2, Response::Done)));
    }
    assert!(reserves > 10, "only {reserves} reserves during the slowloris run");
    fx.assert_healthy("slowloris writers");
}

/// Pipeline `frames` copies of `one` on a fresh authenticated connection without ever reading;
/// stops at the first write that cannot complete within 2 s (the server stopped reading).
/// Returns the bytes written and the still-open stream.
fn pipeline_without_reading(addr: SocketAddr, one: &[u8], frames: usize) -> (usize, TcpStream) {
    let mut s = authenticated(addr, "");
    s.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut chunk = Vec::new();
    let per_chunk = (256 * 1024 / one.len()).max(1);
    for _ in 0..per_chunk {
        chunk.extend_from_slice(one);
    }
    let mut written = 0;
    let mut sent = 0;
    while sent < frames {
        match s.write(&chunk) {
            Ok(n) => {
                written += n;
                sent += per_chunk;
                if n < chunk.len() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    (written, s)
}

#[test]
fn pipelining_without_reading_keeps_memory_bounded() {
    // Checks the backpressure promise: a client pipelines up to 1,000,000 reserves (~60 MB, more
    // than loopback socket buffers absorb) and never reads
    // a response. The server must stop reading from it (writes to it stall), its RSS must grow by
    // less than 128 MiB, and a well-behaved client keeps reserving meanwhile (20 reserves, each
    // within 5 s). Afterwards the abuser hangs up and the server is healthy.
    let fx = Fixture::start(false);
    let rss_before = rss_kib(fx.pid());
    let addr = fx.addr();
    let one = reserve_frame(1, 77);
    let total = one.len() * 1_000_000;
    let abuser = std::thread::spawn(move || pipeline_without_reading(addr, &one, 1_000_000));
    for _ in 0..20 {
        let t = Instant::now();
        let r = fx.runtime.block_on(fx.client.reserve_cart(&cart(1)));
        assert!(r.is_ok(), "reserve failed while a client pipelines without reading: {r:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "reserve took {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (written, stream) = abuser.join().expect("abuser");
    let rss_after = rss_kib(fx.pid());
    eprintln!("abuser wrote {written} bytes; server rss {rss_before} KiB -> {rss_after} KiB");
    assert!(written < total, "the server read all {total} bytes: no backpressure");
    assert!(rss_after < rss_before + 128 * 1024, "server RSS grew from {rss_before} KiB to {rss_after} KiB");
    fx.assert_healthy("a client pipelining without reading");
    drop(stream);
    fx.assert_healthy("the non-reading client hung up");
}

#[test]
fn large_answers_to_a_client_that_never_reads_stay_bounded() {
    // Checks that memory stays bounded in BYTES, not only in requests: with a catalog of 25,000
    // SKUs (an export answer of ~1.5 MiB), a client sends 4,096 export requests of 18 bytes each
    // (~6 GiB of answers if they were all queued) and never reads. The server's RSS must grow by
    // less than 128 MiB while they sit unanswered, and a well-behaved client keeps being served.
    let fx = Fixture::start(false);
    fx.runtime.block_on(async {
        let defines: Vec<_> = (0..25_000)
            .map(|i| {
                let client = fx.client.clone();
                tokio::spawn(async move { client.define_sku(&format!("EXPORT-{i:06}"), 0).await })
            })
            .collect();
        for define in defines {
            define.await.expect("task").expect("define sku");
        }
    });
    let export_len =
        fx.runtime.block_on(fx.client.json_text(&oms_proto::JsonRequest::ExportStock)).expect("export").len();
    assert!(export_len > 1 << 20, "an export answer is only {export_len} bytes");
    let rss_before = rss_kib(fx.pid());
    let one = json_frame(Opcode::ExportStock, "{}", 88);
    let addr = fx.addr();
    let abuser = std::thread::spawn(move || pipeline_without_reading(addr, &one, 4096));
    let (written, stream) = abuser.join().expect("abuser");
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_kib(fx.pid());
    eprintln!("abuser wrote {} MiB; server rss {rss_before} KiB -> {rss_after} KiB", written >> 20);
    fx.assert_healthy("large answers queued for a client that never reads");
    drop(stream);
    assert!(
        rss_after < rss_before + 128 * 1024,
        "server RSS grew from {rss_before} KiB to {rss_after} KiB for one client that never reads"
    );
}

#[test]
fn a_flood_of_malformed_frames_is_answered_counted_and_not_logged_per_frame() {
    // Checks a flood: one authenticated connection sends 20,000 frames whose payloads do not
    // validate and reads every answer (all bad_request, ids echoed in order), and 300 short-lived
    // connections each send a broken length. The server answers all, counts them in
    // omsd_refused_total, logs reasons without one line per refused request (no log flood), and
    // stays healthy.
    let fx = Fixture::start(false);
    let mut rng = Rng(0x5eed_0002);
    let flood = 20_000u64;
    let mut s = authenticated(fx.addr(), "");
    let mut reader = s.try_clone().expect("clone");
    let counter = std::thread::spawn(move || {
        let mut next = 1000u64;
        for _ in 0..flood {
            match read_response(&mut reader) {
                Some((id, Response::Error(e))) => {
                    assert_eq!((id, &*e.name), (next, "bad_request"));
                    next += 1;
                }
                other => panic!("flood answer {next}: {other:?}"),
            }
        }
        next - 1000
    });
    let mut batch = Vec::new();
    for i in 0..flood {
        // Shorter than a reserve's 23-byte head: always refused as truncated.
        let n = 1 + (rng.next() % 22) as usize;
        let payload = rng.bytes(n);
        batch.extend(frame(Opcode::Reserve as u16, 1000 + i, &payload));
        if batch.len() > 64 * 1024 {
            s.write_all(&batch).expect("flood write");
            batch.clear();
        }
    }
    s.write_all(&batch).expect("flood write");
    assert_eq!(counter.join().expect("reader"), flood);
    for _ in 0..300 {
        let mut c = raw(fx.addr());
        let _ = c.write_all(&[1, 0, 0, 0]);
        let _ = read_response(&mut c);
    }
    fx.assert_healthy("a flood of malformed frames");
    fx.assert_refusal_reported("bad_request", flood, "bad_request");
    fx.assert_refusal_reported("bad_frame", 300, "shorter than the 12-byte header");
    let lines = fx.omsd.stderr().lines().count();
    assert!(lines < 2_000, "{lines} log lines for a flood of {flood} refused requests: the log can be flooded");
}
