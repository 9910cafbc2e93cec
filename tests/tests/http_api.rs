//! The HTTP/JSON API of the REAL omsd (docs/HTTP.md), spoken as a shop without a client library
//! would: plain HTTP/1.1 requests with JSON bodies (reqwest here, curl in the README).
//!
//! Each test starts its own omsd (`--demo` catalog: TSHIRT-RED-XL 200, PHONE-X 15, ... in
//! warehouses SH and BJ) on free loopback ports, the HTTP API on its own port.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oms_tests::Omsd;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

/// Distinct keys per role for the access tests.
const OPS_KEY: &str = "http-ops-key-7d2f0c9a41b8e635";
const SHOP_KEY: &str = "http-shop-key-3a9e5b17c40d2f86";
const READER_KEY: &str = "http-reader-key-e81c4d06b2a7f953";

/// An answer: status, headers, and the body parsed as JSON (Null when empty or not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert an RFC 9457 problem with this status and error name; returns the document.
    fn problem(&self, status: u16, name: &str) -> &Value {
        assert_eq!(self.status, status, "expected {status} {name}, got {}: {}", self.status, self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.body);
        assert_eq!(self.body["name"], name, "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert_eq!(self.body["type"], format!("urn:omsd:error:{name}"), "{}", self.body);
        assert!(self.body["code"].as_u64().is_some_and(|c| c > 0), "{}", self.body);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.body);
        &self.body
    }
}

/// A shop's HTTP session: base URL, optional key.
struct Shop {
    client: reqwest::Client,
    base: String,
    key: Option<String>,
}

fn install_crypto() {
    // reqwest is built without a bundled crypto provider (like the server: ring only).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Shop {
    fn new(omsd: &Omsd, key: Option<&str>) -> Shop {
        install_crypto();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("http client");
        Shop { client, base: format!("http://{}", omsd.http_addr()), key: key.map(str::to_owned) }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(&body.to_string()), &[]).await
    }

    async fn reserve(&self, lines: &[(&str, u32)], key: Option<&str>) -> Answer {
        let lines: Vec<Value> = lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect();
        let body = json!({"lines": lines, "ttl_ms": 900_000, "customer": 42, "channel": "own"}).to_string();
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.send(Method::POST, "/v1/reservations", Some(&body), &headers).await
    }

    async fn available(&self, sku: &str) -> u64 {
        let answer = self.get(&format!("/v1/stock/{sku}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["available"].as_u64().expect("available")
    }
}

fn keys_config(dir: &Path) -> String {
    let path = dir.join("omsd.toml");
    let text = format!(
        "[[api_keys]]\nname = \"ops-team\"\nkey = \"{OPS_KEY}\"\nrole = \"ops\"\n\
         [[api_keys]]\nname = \"web-shop\"\nkey = \"{SHOP_KEY}\"\nrole = \"storefront\"\n\
         [[api_keys]]\nname = \"log-reader\"\nkey = \"{READER_KEY}\"\nrole = \"reader\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_flow_reserve_confirm_release() {
    // Checks the README's checkout over HTTP against the real server: reserve (201, Location,
    // allocations by code), read it (held), confirm on payment, release another on cancel, and
    // the stock view moving by exactly the units held and given back.
    let omsd = Omsd::start(&["--demo"]);
    let shop = Shop::new(&omsd, None);
    let before = shop.available("TSHIRT-RED-XL").await;

    let paid = shop.reserve(&[("TSHIRT-RED-XL", 2), ("MUG-WHT", 1)], Some("checkout-1001")).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let id = paid.body["id"].as_str().expect("id is a string").to_owned();
    assert!(id.parse::<u64>().is_ok(), "id {id}");
    assert_eq!(paid.header("location"), Some(format!("/v1/reservations/{id}").as_str()));
    assert!(paid.header("idempotent-replayed").is_none());
    assert!(paid.body["expires_at_ms"].as_u64().is_some_and(|t| t > 0));
    let mut allocations: Vec<(String, u64)> = paid.body["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .map(|a| (a["sku"].as_str().unwrap_or("").to_owned(), a["qty"].as_u64().unwrap_or(0)))
        .collect();
    allocations.sort();
    assert_eq!(allocations, vec![("MUG-WHT".to_owned(), 1), ("TSHIRT-RED-XL".to_owned(), 2)]);
    assert!(paid.body["allocations"][0]["warehouse"].as_str().is_some_and(|w| w == "SH" || w == "BJ"));
    assert_eq!(shop.available("TSHIRT-RED-XL").await, before - 2);

    let held = shop.get(&format!("/v1/reservations/{id}")).await;
    assert_eq!((held.status, held.body["status"].as_str()), (200, Some("held")), "{}", held.body);
    assert_eq!((held.body["customer"].as_u64(), held.body["channel"].as_str()), (Some(42), Some("own")));

    let confirmed = shop.post(&format!("/v1/reservations/{id}/confirm"), json!({})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(confirmed.body, json!({"id": id, "status": "confirmed"}));
    let read = shop.get(&format!("/v1/reservations/{id}")).await;
    assert_eq!(read.body["status"], "confirmed");

    let cancelled = shop.reserve(&[("TSHIRT-RED-XL", 3)], Some("checkout-1002")).await;
    assert_eq!(cancelled.status, 201, "{}", cancelled.body);
    let other = cancelled.body["id"].as_str().expect("id").to_owned();
    assert_eq!(shop.available("TSHIRT-RED-XL").await, before - 5);
    let released = shop.send(Method::POST, &format!("/v1/reservations/{other}/release"), None, &[]).await;
    assert_eq!(released.body, json!({"id": other, "status": "released"}));
    assert_eq!(shop.available("TSHIRT-RED-XL").await, before - 2, "the released units are sellable again");
    let read = shop.get(&format!("/v1/reservations/{other}")).await;
    assert_eq!(read.body["status"], "released");

    // The document the server serves is the committed one.
    let served = shop.client.get(format!("{}/openapi.json", shop.base)).send().await.expect("openapi");
    assert_eq!(served.status().as_u16(), 200);
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"))
        .expect("docs/openapi.json");
    assert_eq!(served.text().await.expect("text"), committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_problem_details_with_the_stable_code_and_facts() {
    // Checks each class of refusal the issue names, with its HTTP status, the problem+json
    // media type and the wire error's code, name and facts: 422 for a refused reservation
    // (with `available` and the SKU code), 409 for a state conflict, 404 for unknown ids and
    // routes, 400 for malformed JSON, a body that is not an object, unknown fields and bad ids,
    // 413 above the body limit, 415 for a body that is not JSON, 405 for a method a route does
    // not have. Nothing refused changes the stock.
    let omsd = Omsd::start(&["--demo"]);
    let shop = Shop::new(&omsd, None);
    let phones = shop.available("PHONE-X").await;

    let short = shop.reserve(&[("PHONE-X", phones as u32 + 1)], None).await;
    let problem = short.problem(422, "insufficient_stock");
    assert_eq!(problem["code"], 108);
    assert_eq!(problem["available"], phones);
    assert_eq!(problem["sku"], "PHONE-X");
    assert_eq!(problem["title"], "Insufficient stock");

    let unknown = shop.reserve(&[("NO-SUCH-SKU", 1)], None).await;
    assert_eq!(unknown.problem(422, "unknown_sku")["sku"], "NO-SUCH-SKU");
    shop.get("/v1/stock/NO-SUCH-SKU").await.problem(404, "unknown_sku");
    shop.get("/v1/reservations/12345").await.problem(404, "unknown_reservation");
    shop.post("/v1/reservations/12345/confirm", json!({})).await.problem(404, "unknown_reservation");
    shop.get("/v1/reservations/12x").await.problem(400, "bad_request");
    shop.get("/v1/no-such-route").await.problem(404, "unknown_opcode");
    let wrong_method = shop.send(Method::DELETE, "/v1/stock", None, &[]).await;
    wrong_method.problem(405, "unknown_opcode");
    assert_eq!(wrong_method.header("allow"), Some("GET,HEAD"));

    let bad_json = shop.send(Method::POST, "/v1/reservations", Some("{\"lines\": ["), &[]).await;
    bad_json.problem(400, "bad_request");
    let unknown_field =
        shop.post("/v1/reservations", json!({"lines": [{"sku": "MUG-WHT", "qty": 1}], "colour": 1})).await;
    assert!(unknown_field.problem(400, "bad_request")["detail"].as_str().unwrap_or("").contains("colour"));
    let wrong_type = shop.post("/v1/reservations", json!({"lines": [{"sku": "MUG-WHT", "qty": "many"}]})).await;
    wrong_type.problem(400, "bad_request");
    // Bodies are JSON objects: serde alone would read `[]` as an empty struct (schemathesis).
    shop.send(Method::POST, "/v1/orders/allocate", Some("[]"), &[]).await.problem(400, "bad_request");
    // Order 0 is the allocate-everything sentinel of the wire request, not an order.
    shop.post("/v1/orders/0/allocate", json!({})).await.problem(404, "unknown_order");
    let zero = shop.post("/v1/reservations", json!({"lines": [{"sku": "MUG-WHT", "qty": 0}]})).await;
    zero.problem(422, "zero_quantity");
    let huge = "x".repeat(2 << 20);
    let oversize = shop.send(Method::POST, "/v1/reservations", Some(&huge), &[]).await;
    oversize.problem(413, "frame_too_large");
    let form = shop
        .client
        .post(format!("{}/v1/reservations", shop.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("lines=1")
        .send()
        .await
        .expect("send");
    assert_eq!(form.status().as_u16(), 415);

    // A state conflict: confirming a released reservation.
    let made = shop.reserve(&[("MUG-WHT", 1)], None).await;
    let id = made.body["id"].as_str().expect("id").to_owned();
    assert_eq!(shop.post(&format!("/v1/reservations/{id}/release"), json!({})).await.status, 200);
    let conflict = shop.post(&format!("/v1/reservations/{id}/confirm"), json!({})).await;
    conflict.problem(409, "invalid_reservation_state");

    assert_eq!(shop.available("PHONE-X").await, phones, "refusals changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    // Checks the payment-API convention: a retry with the same key and body gets the first
    // answer (201, byte-identical body, `Idempotent-Replayed: true`) and holds nothing more; the
    // same key with a different body is refused 422 `idempotency_key_reused` and changes
    // nothing; a route that does not honour the header refuses it rather than ignore it.
    let omsd = Omsd::start(&["--demo"]);
    let shop = Shop::new(&omsd, None);
    let before = shop.available("SOCKS-3P").await;

    let first = shop.reserve(&[("SOCKS-3P", 4)], Some("order-2001")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let retry = shop.reserve(&[("SOCKS-3P", 4)], Some("order-2001")).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body, "the retry answers the first reservation");
    assert_eq!(shop.available("SOCKS-3P").await, before - 4, "held once");

    let reused = shop.reserve(&[("SOCKS-3P", 5)], Some("order-2001")).await;
    let problem = reused.problem(422, "idempotency_key_reused");
    assert_eq!(problem["code"], 150);
    assert_eq!(shop.available("SOCKS-3P").await, before - 4, "the refused request held nothing");

    let id = first.body["id"].as_str().expect("id");
    let keyed_confirm =
        shop.send(Method::POST, &format!("/v1/reservations/{id}/confirm"), None, &[("Idempotency-Key", "k")]).await;
    keyed_confirm.problem(400, "bad_request");
    let long_key = "k".repeat(129);
    let too_long = shop.reserve(&[("SOCKS-3P", 1)], Some(&long_key)).await;
    too_long.problem(400, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_roles_are_the_binary_ports() {
    // Checks `Authorization: Bearer KEY` against configured keys: no key or a wrong one is 401
    // with `WWW-Authenticate: Bearer`, a storefront key reserves and reads but may not ship or
    // count stock (403 forbidden), an ops key may, and a reader key (log subscriptions only)
    // may not even read stock.
    let dir = tempfile::tempdir().expect("dir");
    let config = keys_config(dir.path());
    let omsd = Omsd::start(&["--config", &config, "--demo"]);

    let anonymous = Shop::new(&omsd, None);
    let refused = anonymous.get("/v1/stock/MUG-WHT").await;
    refused.problem(401, "unauthenticated");
    assert!(refused.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    Shop::new(&omsd, Some("not-a-key")).get("/v1/stock/MUG-WHT").await.problem(401, "unauthenticated");

    let shop = Shop::new(&omsd, Some(SHOP_KEY));
    let made = shop.reserve(&[("MUG-WHT", 1)], Some("role-test-1")).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().expect("id").to_owned();
    assert_eq!(shop.post(&format!("/v1/reservations/{id}/confirm"), json!({})).await.status, 200);
    shop.post(&format!("/v1/reservations/{id}/ship"), json!({})).await.problem(403, "forbidden");
    let receipt = json!({"warehouse": "SH", "qty": 5});
    shop.post("/v1/stock/MUG-WHT/receipts", receipt.clone()).await.problem(403, "forbidden");

    let ops = Shop::new(&omsd, Some(OPS_KEY));
    let before = ops.available("MUG-WHT").await;
    let received = ops.post("/v1/stock/MUG-WHT/receipts", receipt).await;
    assert_eq!((received.status, &received.body), (200, &json!({})));
    assert_eq!(ops.available("MUG-WHT").await, before + 5);
    assert_eq!(ops.post(&format!("/v1/reservations/{id}/ship"), json!({})).await.body["status"], "shipped");

    Shop::new(&omsd, Some(READER_KEY)).get("/v1/stock/MUG-WHT").await.problem(403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_the_binary_ports_scoped_per_api_key() {
    // Checks that the header maps onto the engine's key (issue 12), not a copy of its own: the
    // same key text from another API key is another key (a new reservation, no replay); the same
    // key sent by the same API key over the binary port with the same request replays the HTTP
    // reservation, and with another request is refused idempotency_key_reused (150) there too.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("omsd.toml");
    let shop_b_key = "http-shop-b-key-5c1e7a9d0b3f2864";
    let text = format!(
        "[[api_keys]]\nname = \"web-shop\"\nkey = \"{SHOP_KEY}\"\nrole = \"storefront\"\n\
         [[api_keys]]\nname = \"other-shop\"\nkey = \"{shop_b_key}\"\nrole = \"storefront\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    let omsd = Omsd::start(&["--config", &path.to_string_lossy(), "--demo"]);
    let shop = Shop::new(&omsd, Some(SHOP_KEY));
    let other = Shop::new(&omsd, Some(shop_b_key));
    let before = shop.available("MUG-WHT").await;

    let first = shop.reserve(&[("MUG-WHT", 1)], Some("cart-77")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let theirs = other.reserve(&[("MUG-WHT", 1)], Some("cart-77")).await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert!(theirs.header("idempotent-replayed").is_none(), "another API key's key replayed");
    assert_ne!(theirs.body["id"], first.body["id"]);
    assert_eq!(shop.available("MUG-WHT").await, before - 2);

    let options = oms_client::ClientOptions { api_key: Some(SHOP_KEY.to_owned()), ..Omsd::client_options() };
    let binary = oms_client::Client::connect(omsd.addr().to_string(), options).await.expect("connect");
    // The same request as Shop::reserve sends: 15 minutes, customer 42, channel own.
    let cart = |qty| oms_client::Cart::new(900_000).key("cart-77").customer(42).line("MUG-WHT", qty);
    let replay = binary.reserve_cart(&cart(1)).await.expect("replay over the binary port");
    assert_eq!((replay.id.to_string(), replay.replayed), (first.body["id"].as_str().unwrap_or("").to_owned(), true));
    match binary.reserve_cart(&cart(2)).await {
        Err(oms_client::ClientError::Refused(e)) => {
            assert_eq!((e.name.as_ref(), e.code.0), ("idempotency_key_reused", 150))
        }
        other => panic!("expected idempotency_key_reused, got {other:?}"),
    }
    assert_eq!(shop.available("MUG-WHT").await, before - 2, "replays and refusals held nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_loopback_clients_have_full_access() {
    // Checks the no-keys rule from the loopback side: with no [[api_keys]] a loopback client
    // needs no header and has the ops role (it may count stock). The refusal of non-loopback
    // peers uses the same Authenticator and is unit-tested in gateway/src/http/bridge.rs (the
    // tests may not send traffic from a non-loopback address).
    let omsd = Omsd::start(&["--demo"]);
    let shop = Shop::new(&omsd, None);
    let set = shop.send(Method::PUT, "/v1/stock/CAP-BLK/on-hand", Some(r#"{"warehouse":"SH","on_hand":7}"#), &[]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let stock = shop.get("/v1/stock/CAP-BLK").await;
    let sh = stock.body["warehouses"].as_array().expect("warehouses").iter().find(|w| w["warehouse"] == "SH").cloned();
    assert_eq!(sh.map(|w| w["on_hand"].clone()), Some(json!(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_reservation_survives_a_crash() {
    // Checks the durability rule on the HTTP port: a 201 is sent only after the log flush, so
    // after SIGKILL and a restart the reservation is there, still holding its units.
    let mut omsd = Omsd::start(&["--demo", "--fsync", "always"]);
    let shop = Shop::new(&omsd, None);
    let made = shop.reserve(&[("SNEAKER-42", 2)], Some("crash-1")).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().expect("id").to_owned();
    let available = shop.available("SNEAKER-42").await;
    omsd.kill();
    omsd.restart();
    let shop = Shop::new(&omsd, None);
    let read = shop.get(&format!("/v1/reservations/{id}")).await;
    assert_eq!((read.status, read.body["status"].as_str()), (200, Some("held")), "{}", read.body);
    assert_eq!(shop.available("SNEAKER-42").await, available);
    // The retry after the crash replays it instead of holding the units twice.
    let retry = shop.reserve(&[("SNEAKER-42", 2)], Some("crash-1")).await;
    assert_eq!((retry.status, retry.body["id"].as_str()), (201, Some(id.as_str())));
    assert_eq!(shop.available("SNEAKER-42").await, available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_speaks_tls_with_the_storefront_certificate() {
    // Checks that --tls-cert/--tls-key put the HTTP port on TLS too: an HTTPS client trusting
    // the test CA reserves, and a plain-HTTP request to the same port gets no answer.
    install_crypto();
    let dir = tempfile::tempdir().expect("pki");
    let (ca, cert, key) = pki(dir.path());
    let omsd = Omsd::start(&["--demo", "--tls-cert", &cert, "--tls-key", &key]);

    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for der in rustls_pki_types::CertificateDer::pem_file_iter(&ca).expect("ca pem") {
        roots.add(der.expect("ca cert")).expect("add root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("https client");
    let port = omsd.http_addr().port();
    let answer = client
        .post(format!("https://localhost:{port}/v1/reservations"))
        .header("content-type", "application/json")
        .body(json!({"lines": [{"sku": "MUG-WHT", "qty": 1}]}).to_string())
        .send()
        .await
        .expect("https reserve");
    assert_eq!(answer.status().as_u16(), 201);

    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let refused = plain.get(format!("http://127.0.0.1:{port}/v1/stock")).send().await;
    assert!(refused.is_err(), "plain HTTP on the TLS port was answered: {refused:?}");
}

/// A CA and a server certificate for localhost/127.0.0.1 it signed, as PEM files.
fn pki(dir: &Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "omsd http test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write pem");
        path.to_string_lossy().into_owned()
    };
    (write("ca.pem", ca_cert.pem()), write("server.pem", cert.pem()), write("server.key", key.serialize_pem()))
}
