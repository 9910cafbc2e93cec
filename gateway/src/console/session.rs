//! Console sessions: sign-in with an API key of role ops exchanges the key for a random session
//! token in an HttpOnly, SameSite=Strict cookie; the key stays on the server, in the session, and
//! [`gate`] puts it back as `Authorization: Bearer` on every API call, so the HTTP API
//! authenticates and authorizes the call exactly as it would a shop's (a key removed from the
//! configuration stops working at once). Every change (any method but GET/HEAD) must carry the
//! session's CSRF token in `X-CSRF-Token`.
//!
//! Without API keys the console, like the protocol, needs no sign-in from loopback clients:
//! reading `/session` opens a session (for its CSRF token) without a key.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use oms_proto::{ErrorCode, Role};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::ConsoleState;
use crate::http::{Peer, Problem};
use crate::server::{AuthError, Identity};
use crate::wire_error::gateway;

/// Sessions kept at once; signing in beyond it ends the least recently used one.
pub const SESSION_LIMIT: usize = 1024;
/// A session unused this long is ended.
pub const IDLE_LIMIT: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after sign-in, used or not.
pub const LIFETIME_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// The longest API key a sign-in may send (keys are configured, so this only bounds the input).
const KEY_LENGTH_LIMIT: usize = 1024;

const COOKIE: &str = "omsd_console_session";
const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Clone, Debug)]
pub struct Session {
    /// The API key the session was opened with ("" without keys configured): never sent back.
    key: String,
    pub who: Identity,
    pub csrf: String,
    opened: Instant,
    used: Instant,
}

/// The open sessions by token, bounded by `limit`.
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    limit: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(getrandom::Error);

impl Sessions {
    pub fn new(limit: usize) -> Sessions {
        debug_assert!(limit > 0);
        Sessions { open: Mutex::new(HashMap::new()), limit }
    }

    /// Open a session; answers its token.
    pub fn open(&self, key: String, who: Identity, now: Instant) -> Result<(String, Session), RandomError> {
        let token = random_hex()?;
        let session = Session { key, who, csrf: random_hex()?, opened: now, used: now };
        let mut open = self.open.lock();
        if open.len() >= self.limit {
            open.retain(|_, s| alive(s, now));
        }
        if open.len() >= self.limit {
            let oldest = open.iter().min_by_key(|(_, s)| s.used).map(|(token, _)| token.clone());
            if let Some(oldest) = oldest {
                open.remove(&oldest);
            }
        }
        open.insert(token.clone(), session.clone());
        debug_assert!(open.len() <= self.limit);
        Ok((token, session))
    }

    /// The live session of `token`, marked used at `now`; an expired one is ended.
    pub fn find(&self, token: &str, now: Instant) -> Option<Session> {
        let mut open = self.open.lock();
        let session = open.get_mut(token)?;
        if !alive(session, now) {
            open.remove(token);
            return None;
        }
        session.used = now;
        Some(session.clone())
    }

    pub fn close(&self, token: &str) {
        self.open.lock().remove(token);
    }

    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.saturating_duration_since(session.used) < IDLE_LIMIT
        && now.saturating_duration_since(session.opened) < LIFETIME_LIMIT
}

/// 32 random bytes in hex.
fn random_hex() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(RandomError)?;
    let mut text = String::with_capacity(64);
    for b in bytes {
        let _ = write!(text, "{b:02x}");
    }
    Ok(text)
}

/// The session cookie's value in a `Cookie` header, if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn set_cookie(token: &str, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let max_age = LIFETIME_LIMIT.as_secs();
    // A token is hex, so the value is always a valid header.
    HeaderValue::from_str(&format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("omsd_console_session=; Path=/; Max-Age=0"))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("omsd_console_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// What `/session` answers.
#[derive(Debug, Serialize)]
pub struct SessionAnswer {
    pub signed_in: bool,
    /// False without API keys configured (loopback clients need no sign-in).
    pub sign_in_required: bool,
    pub who: Option<WhoAnswer>,
    /// Send it as `X-CSRF-Token` with every change.
    pub csrf: Option<String>,
    /// The shop's time zone (IANA name) for showing times.
    pub time_zone: String,
}

#[derive(Debug, Serialize)]
pub struct WhoAnswer {
    pub name: String,
    pub role: &'static str,
}

fn answer(state: &ConsoleState, session: Option<&Session>) -> SessionAnswer {
    SessionAnswer {
        signed_in: session.is_some(),
        sign_in_required: !state.ctx.auth.open(),
        who: session.map(|s| WhoAnswer { name: s.who.name.clone(), role: s.who.role.name() }),
        csrf: session.map(|s| s.csrf.clone()),
        time_zone: state.ctx.config.console_time_zone.clone(),
    }
}

fn opened(state: &ConsoleState, token: &str, session: &Session) -> Response {
    let mut response = Json(answer(state, Some(session))).into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(token, state.tls));
    response
}

fn random_failed(e: RandomError) -> Response {
    tracing::error!(error = %e, "console: cannot open a session");
    Problem::internal(e.to_string()).into_response()
}

/// `GET /session`: whether this browser is signed in (and its CSRF token). Without API keys it
/// opens a session for the (loopback) client at once.
pub async fn read(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let now = Instant::now();
    if let Some(session) = cookie_token(&headers).and_then(|token| state.sessions.find(token, now)) {
        return Json(answer(&state, Some(&session))).into_response();
    }
    if state.ctx.auth.open() {
        // The loopback rule was applied before this handler (`headers::admit_and_protect`).
        let who = Identity { name: "loopback".to_owned(), role: Role::Ops, scope: "loopback".to_owned() };
        return match state.sessions.open(String::new(), who, now) {
            Ok((token, session)) => opened(&state, &token, &session),
            Err(e) => random_failed(e),
        };
    }
    Json(answer(&state, None)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    key: String,
}

/// `POST /session` `{"key": "..."}`: sign in with an API key of role ops.
pub async fn sign_in(
    State(state): State<Arc<ConsoleState>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse_cross_site(&headers) {
        return refusal;
    }
    // A JSON content type cannot be sent across sites without a CORS preflight, which this
    // server never grants: no other site can sign a browser in to its own key.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !json {
        let mut problem = Problem::bad_request("send the key as JSON with `Content-Type: application/json`");
        problem.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return problem.into_response();
    }
    let Ok(SignInBody { key }) = serde_json::from_slice::<SignInBody>(&body) else {
        return Problem::bad_request("the body must be {\"key\": \"<API key>\"}").into_response();
    };
    if key.len() > KEY_LENGTH_LIMIT {
        return Problem::bad_request(format!("an API key is at most {KEY_LENGTH_LIMIT} bytes")).into_response();
    }
    let refused = |reason: &'static str| {
        state.ctx.metrics.refused.get_or_create(&crate::metrics::ReasonLabel { reason }).inc();
    };
    let who = match state.ctx.auth.authenticate(&key, peer) {
        Ok(who) => who,
        Err(e) => {
            refused(match e {
                AuthError::InvalidKey => "invalid_key",
                AuthError::NotLoopback => "not_loopback",
            });
            tracing::info!(%peer, "console sign-in refused: {e}");
            return Problem::new(gateway(ErrorCode::UNAUTHENTICATED, e.to_string())).into_response();
        }
    };
    if who.role != Role::Ops {
        refused("forbidden");
        tracing::info!(%peer, client = %who.name, role = who.role.name(), "console sign-in refused: role");
        return Problem::new(gateway(
            ErrorCode::FORBIDDEN,
            format!("the console needs a key of role ops; {} is {}", who.name, who.role.name()),
        ))
        .into_response();
    }
    // A new token at every sign-in: a token planted before sign-in never becomes a session.
    if let Some(old) = cookie_token(&headers) {
        state.sessions.close(old);
    }
    match state.sessions.open(key, who, Instant::now()) {
        Ok((token, session)) => {
            tracing::info!(%peer, client = %session.who.name, "console sign-in");
            opened(&state, &token, &session)
        }
        Err(e) => random_failed(e),
    }
}

/// `DELETE /session`: sign out (needs the CSRF token, so another site cannot sign a browser out).
pub async fn sign_out(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let Some(token) = cookie_token(&headers) else {
        return Problem::new(gateway(ErrorCode::UNAUTHENTICATED, "not signed in")).into_response();
    };
    let Some(session) = state.sessions.find(token, Instant::now()) else {
        return Problem::new(gateway(ErrorCode::UNAUTHENTICATED, "the session has ended")).into_response();
    };
    if let Some(refusal) = refuse_without_csrf(&headers, &session) {
        return refusal;
    }
    state.sessions.close(token);
    let mut response = Json(serde_json::json!({})).into_response();
    response.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    response
}

/// In front of every `/api/...` call: the session, the CSRF token for changes, and the API key
/// the session was opened with as the call's `Authorization`.
pub async fn gate(State(state): State<Arc<ConsoleState>>, mut request: Request, next: Next) -> Response {
    let session = cookie_token(request.headers()).and_then(|token| state.sessions.find(token, Instant::now()));
    let Some(session) = session else {
        return Problem::new(gateway(ErrorCode::UNAUTHENTICATED, "sign in to the console first")).into_response();
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Some(refusal) = refuse_without_csrf(request.headers(), &session) {
            return refusal;
        }
    }
    let headers = request.headers_mut();
    headers.remove(header::COOKIE);
    headers.remove(header::AUTHORIZATION);
    if !session.key.is_empty() {
        match HeaderValue::from_str(&format!("Bearer {}", session.key)) {
            Ok(mut value) => {
                value.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, value);
            }
            Err(_) => return Problem::internal("the session's key is not a header value").into_response(),
        }
    }
    next.run(request).await
}

fn refuse_without_csrf(headers: &HeaderMap, session: &Session) -> Option<Response> {
    let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let equal: bool = sent.ct_eq(session.csrf.as_bytes()).into();
    if equal {
        return None;
    }
    Some(
        Problem::new(gateway(ErrorCode::FORBIDDEN, "missing or wrong X-CSRF-Token: reload the console"))
            .into_response(),
    )
}

/// Browsers say where a request comes from (`Sec-Fetch-Site`); a sign-in from another site is
/// refused outright.
fn refuse_cross_site(headers: &HeaderMap) -> Option<Response> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())?;
    if site == "same-origin" || site == "none" {
        return None;
    }
    Some(
        Problem::new(gateway(ErrorCode::FORBIDDEN, "sign-in is accepted from the console's own pages only"))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Identity {
        Identity { name: "desk".into(), role: Role::Ops, scope: "desk".into() }
    }

    #[test]
    fn sessions_are_bounded_and_expire() {
        // Checks that a session is found by its token, that tokens and CSRF tokens are random and
        // distinct, that the limit ends the least recently used session, and that idle and
        // lifetime limits end sessions.
        let sessions = Sessions::new(2);
        let start = Instant::now();
        let (a, session_a) = sessions.open("k".into(), who(), start).unwrap();
        let (b, _) = sessions.open("k".into(), who(), start + Duration::from_secs(1)).unwrap();
        assert_eq!((a.len(), session_a.csrf.len()), (64, 64));
        assert_ne!(a, b);
        assert_ne!(a, session_a.csrf);
        // Using a makes b the least recently used one.
        assert!(sessions.find(&a, start + Duration::from_secs(2)).is_some());
        let (c, _) = sessions.open("k".into(), who(), start + Duration::from_secs(3)).unwrap();
        assert_eq!(sessions.len(), 2);
        assert!(sessions.find(&b, start + Duration::from_secs(4)).is_none());
        assert!(sessions.find(&c, start + Duration::from_secs(4)).is_some());
        assert!(sessions.find(&c, start + Duration::from_secs(4) + IDLE_LIMIT).is_none(), "idle too long");
        let mut now = start + Duration::from_secs(2);
        while now < start + LIFETIME_LIMIT {
            now += IDLE_LIMIT / 2;
            if now < start + LIFETIME_LIMIT {
                assert!(sessions.find(&a, now).is_some());
            }
        }
        assert!(sessions.find(&a, now).is_none(), "older than the lifetime limit");
        assert!(sessions.find("no-such-token", start).is_none());
    }

    #[test]
    fn cookie_and_csrf_checks() {
        // Checks that the session cookie is found among others, that the cookie set is HttpOnly
        // and SameSite=Strict (Secure over TLS), and that a change needs the exact CSRF token.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; omsd_console_session=abc ; b=2"));
        assert_eq!(cookie_token(&headers), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("omsd_console_session="));
        assert_eq!(cookie_token(&headers), None);
        let cookie = set_cookie("abc", false);
        let text = cookie.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict") && !text.contains("Secure"));
        assert!(set_cookie("abc", true).to_str().unwrap().ends_with("; Secure"));
        let session = Sessions::new(1).open(String::new(), who(), Instant::now()).unwrap().1;
        let mut headers = HeaderMap::new();
        assert!(refuse_without_csrf(&headers, &session).is_some());
        headers.insert(CSRF_HEADER, HeaderValue::from_str(&session.csrf[..63]).unwrap());
        assert!(refuse_without_csrf(&headers, &session).is_some());
        headers.insert(CSRF_HEADER, HeaderValue::from_str(&session.csrf).unwrap());
        assert!(refuse_without_csrf(&headers, &session).is_none());
        let mut headers = HeaderMap::new();
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(refuse_cross_site(&headers).is_some());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(refuse_cross_site(&headers).is_none());
    }
}
