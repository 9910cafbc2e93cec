//! Where HTTP meets the request path the binary port uses: authenticate the bearer key with the
//! same [`Authenticator`](crate::server::Authenticator) (and its loopback-only rule when no keys
//! are configured), apply the same role check ([`ServerCtx::authorize`]), then hand the decoded
//! `oms_proto::Request` to [`ServerCtx::dispatch`] with a reply channel of its own, and wait for
//! the one answer. Answers come after the partition's log flush, exactly as on the binary port.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Request as HttpRequest};
use axum::http::{header, request::Parts};
use bytes::Bytes;
use oms_proto::{ErrorCode, Request, Response};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::problem::Problem;
use crate::metrics::{OpcodeLabel, ReasonLabel, RequestLabels};
use crate::server::{AuthError, Identity, ServerCtx};
use crate::wire_error::gateway;

/// The TCP peer of an HTTP connection, put into every request's extensions by the listener.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// An authenticated HTTP caller: who (the API key's name and role) and from where.
pub struct Caller {
    pub who: Identity,
    pub peer: SocketAddr,
}

impl FromRequestParts<Arc<ServerCtx>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<ServerCtx>) -> Result<Caller, Problem> {
        let Some(Peer(peer)) = parts.extensions.get::<Peer>().copied() else {
            return Err(Problem::internal("the connection's peer address is missing"));
        };
        match authenticate(&ctx.auth, parts.headers.get(header::AUTHORIZATION), peer) {
            Ok(who) => Ok(Caller { who, peer }),
            Err((reason, problem)) => {
                refused(ctx, reason);
                // Counted in omsd_refused_total; logged at debug so a scan cannot flood the log.
                tracing::debug!(%peer, reason, "HTTP request refused: not authenticated");
                Err(*problem)
            }
        }
    }
}

/// The caller behind an `Authorization` header (or its absence), by the binary port's
/// [`Authenticator`](crate::server::Authenticator): configured keys, or loopback-only with full
/// access when none are configured. Refusals carry the metric reason.
pub fn authenticate(
    auth: &crate::server::Authenticator,
    authorization: Option<&axum::http::HeaderValue>,
    peer: SocketAddr,
) -> Result<Identity, (&'static str, Box<Problem>)> {
    // Boxed: the refusal is the cold path and keeps the `Ok` result small.
    let unauthenticated = |message: String| Box::new(Problem::new(gateway(ErrorCode::UNAUTHENTICATED, message)));
    let key = match authorization {
        None => "",
        Some(value) => bearer(value.as_bytes()).ok_or_else(|| {
            ("invalid_key", unauthenticated("the Authorization header must be `Bearer <API key>`".to_owned()))
        })?,
    };
    auth.authenticate(key, peer).map_err(|e| {
        let reason = match e {
            AuthError::InvalidKey => "invalid_key",
            AuthError::NotLoopback => "not_loopback",
        };
        let message = match (e, key.is_empty()) {
            (AuthError::InvalidKey, true) => {
                "an API key is required: send `Authorization: Bearer <API key>`".to_owned()
            }
            (e, _) => e.to_string(),
        };
        (reason, unauthenticated(message))
    })
}

fn refused(ctx: &ServerCtx, reason: &'static str) {
    ctx.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
}

/// The key of an `Authorization: Bearer <key>` header (the scheme is case-insensitive, RFC 9110
/// section 11.1); `None` for another scheme or a value that is not visible ASCII.
fn bearer(value: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(value).ok()?;
    let (scheme, key) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    (!key.is_empty()).then_some(key)
}

impl Caller {
    /// Run one request through the binary port's path (role check, dispatch) and wait for its
    /// answer. The request may borrow the HTTP body: it is decoded and dispatched before the
    /// first await, like a frame in the connection's read buffer.
    pub async fn call(&self, ctx: &Arc<ServerCtx>, request: Request<'_>) -> Response {
        let opcode = request.opcode();
        let started = Instant::now();
        let mut answers = match self.dispatch(ctx, request, started) {
            Ok(answers) => answers,
            Err(e) => return Response::Error(e),
        };
        let response = match answers.recv().await {
            Some(outbound) => outbound.response,
            // Every sender dropped unanswered: only a partition thread stopping does that.
            None => Response::Error(gateway(ErrorCode::SHUTTING_DOWN, "the server is shutting down")),
        };
        let outcome = match &response {
            Response::Error(e) => crate::server::outcome_label(&e.name),
            _ => "ok",
        };
        ctx.metrics.requests.get_or_create(&RequestLabels { opcode: opcode.name(), outcome }).inc();
        ctx.metrics
            .latency
            .get_or_create(&OpcodeLabel { opcode: opcode.name() })
            .observe(started.elapsed().as_secs_f64());
        response
    }

    fn dispatch(
        &self,
        ctx: &Arc<ServerCtx>,
        request: Request<'_>,
        started: Instant,
    ) -> Result<mpsc::UnboundedReceiver<crate::runtime::Outbound>, oms_proto::WireError> {
        ctx.authorize(&self.who, request.opcode(), self.peer)?;
        if ctx.shutting_down.load(Ordering::Acquire) {
            return Err(gateway(ErrorCode::SHUTTING_DOWN, "shutting down"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // Request ids only matter on a multiplexed connection; this channel carries one answer.
        ctx.dispatch(request, 0, started, &tx, &self.who.scope);
        Ok(rx)
    }
}

/// A JSON request body of type `T`, read with the server's frame limit (`max_frame_bytes`) as the
/// body limit. An empty body reads as `{}`. Refusals: 400 for a body that is not the documented
/// JSON object (unknown fields included), 413 above the limit, 415 for a non-JSON `Content-Type`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<ServerCtx>> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: HttpRequest, ctx: &Arc<ServerCtx>) -> Result<Self, Problem> {
        let bytes = read_body(request, ctx).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        // Every body is a JSON object. serde would also read a struct from an array of its
        // fields in order (`[]` as an empty struct), which the document does not allow.
        if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Problem::bad_request("the request body must be a JSON object"));
        }
        parse_json(text).map(JsonBody).map_err(|e| Problem::bad_request(format!("the request body is not valid: {e}")))
    }
}

/// Parse a JSON body. JSON Schema (and so the OpenAPI document) counts `3.0` as an integer while
/// serde does not: a body refused at first is read again with integral numbers written as
/// integers, so a generator or a language that writes every number as a float is not refused.
/// The common case parses once.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Err(first) };
    if !integral_numbers_as_integers(&mut value) {
        return Err(first);
    }
    let Ok(text) = serde_json::to_vec(&value) else { return Err(first) };
    serde_json::from_slice(&text).map_err(|_| first)
}

/// Rewrite `3.0` as `3` throughout; whether anything changed.
fn integral_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) else { return false };
            // Only where the float is exact: above 2^53 a float no longer names one integer.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if f.abs() > EXACT {
                return false;
            }
            *n = if f < 0.0 { serde_json::Number::from(f as i64) } else { serde_json::Number::from(f as u64) };
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| integral_numbers_as_integers(v) | changed),
        Value::Object(members) => {
            members.values_mut().fold(false, |changed, v| integral_numbers_as_integers(v) | changed)
        }
        _ => false,
    }
}

/// The raw body (for routes that must not parse it twice), with the same checks as [`JsonBody`].
pub async fn read_body(request: HttpRequest, ctx: &Arc<ServerCtx>) -> Result<Bytes, Problem> {
    if let Some(kind) = request.headers().get(header::CONTENT_TYPE) {
        if !is_json(kind.as_bytes()) {
            let mut problem = Problem::bad_request("send the body as JSON with `Content-Type: application/json`");
            problem.status = axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return Err(problem);
        }
    }
    let limit = ctx.config.max_frame_bytes as usize;
    let body = request.into_body();
    match collect(http_body_util::Limited::new(body, limit)).await {
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TooLarge) => Err(Problem::new(gateway(
            ErrorCode::FRAME_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        ))),
        Err(BodyError::Read(e)) => Err(Problem::bad_request(format!("cannot read the request body: {e}"))),
    }
}

/// `application/json`, `application/problem+json`, `application/json; charset=utf-8`, ...
fn is_json(content_type: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(content_type) else { return false };
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

enum BodyError {
    TooLarge,
    Read(String),
}

async fn collect(body: http_body_util::Limited<axum::body::Body>) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_and_the_loopback_rule_over_http() {
        // Checks the HTTP caller is authenticated by the binary port's Authenticator: a
        // configured key grants its role, a missing or wrong key or another scheme is 401, and
        // without keys only loopback peers get in (a remote peer is refused `not_loopback`).
        use crate::config::ApiKeyConfig;
        use crate::server::Authenticator;
        use axum::http::HeaderValue;
        use oms_proto::Role;
        let local: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let remote: std::net::SocketAddr = "192.0.2.7:9".parse().unwrap();
        let keyed = Authenticator::new(
            vec![ApiKeyConfig { name: "shop".into(), key: "shop-key-0123456789abcdef".into(), role: Role::Storefront }],
            false,
        );
        let header = |v: &'static str| HeaderValue::from_static(v);
        let who = super::authenticate(&keyed, Some(&header("Bearer shop-key-0123456789abcdef")), remote).unwrap();
        assert_eq!(who.role, Role::Storefront);
        for value in [None, Some(header("Bearer nope")), Some(header("Basic c2hvcDp4"))] {
            let (reason, problem) = super::authenticate(&keyed, value.as_ref(), local).unwrap_err();
            assert_eq!((reason, problem.status.as_u16()), ("invalid_key", 401));
        }
        let open = Authenticator::new(Vec::new(), false);
        assert_eq!(super::authenticate(&open, None, local).map(|w| w.role).ok(), Some(Role::Ops));
        let (reason, problem) = super::authenticate(&open, None, remote).unwrap_err();
        assert_eq!((reason, problem.status.as_u16(), problem.error.code.0), ("not_loopback", 401, 3));
    }

    #[test]
    fn bearer_and_content_type_parsing() {
        // Checks the Authorization scheme is matched case-insensitively and anything else is
        // refused, and which content types count as JSON.
        assert_eq!(super::bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(super::bearer(b"bearer  abc "), Some("abc"));
        assert_eq!(super::bearer(b"Basic abc"), None);
        assert_eq!(super::bearer(b"Bearer "), None);
        assert_eq!(super::bearer(b"Bearer\xff"), None);
        assert!(super::is_json(b"application/json"));
        assert!(super::is_json(b"Application/JSON; charset=utf-8"));
        assert!(super::is_json(b"application/merge-patch+json"));
        assert!(!super::is_json(b"application/x-www-form-urlencoded"));
        assert!(!super::is_json(b"text/plain"));
    }

    #[test]
    fn integral_floats_read_as_integers() {
        // Checks that 3.0 is accepted where an integer is expected (JSON Schema's reading), while
        // 3.5, -1.0 for an unsigned field and floats beyond 2^53 are still refused.
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            qty: u32,
            delta: i64,
        }
        let parse = |text: &str| super::parse_json::<Body>(text.as_bytes()).ok();
        assert_eq!(parse(r#"{"qty": 3, "delta": -2}"#), Some(Body { qty: 3, delta: -2 }));
        assert_eq!(parse(r#"{"qty": 3.0, "delta": -2.0}"#), Some(Body { qty: 3, delta: -2 }));
        assert_eq!(parse(r#"{"qty": 3.5, "delta": 0}"#), None);
        assert_eq!(parse(r#"{"qty": -1.0, "delta": 0}"#), None);
        assert_eq!(parse(r#"{"qty": 1e300, "delta": 0}"#), None);
        // Large integral floats below 2^53 parse exactly (serde_json's float_roundtrip; the fast
        // parser put this one an ulp off, schemathesis seed 1).
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Window {
            ends_at_ms: super::super::types::U64,
        }
        let window = super::parse_json::<Window>(br#"{"ends_at_ms": 4456738916732270.0}"#).ok();
        assert_eq!(window.map(|w| w.ends_at_ms.0), Some(4_456_738_916_732_270));
    }
}
