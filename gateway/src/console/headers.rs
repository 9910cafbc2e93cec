//! What every console answer carries, and who may be answered at all: without API keys the
//! console, like the protocol, serves loopback clients only (the same rule as
//! [`Authenticator::authenticate`](crate::server::Authenticator::authenticate), so
//! `--allow-unauthenticated-remote` widens both).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ConsoleState;
use crate::http::Peer;

/// Scripts, styles, images and calls from the console's own origin only; no inline script, no
/// framing, no plugins. ECharts draws on a canvas and sets styles through the DOM, which
/// `style-src 'self'` allows.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub async fn admit_and_protect(State(state): State<Arc<ConsoleState>>, request: Request, next: Next) -> Response {
    let Some(Peer(peer)) = request.extensions().get::<Peer>().copied() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the connection's peer address is missing").into_response();
    };
    let mut response = if state.ctx.auth.open() && state.ctx.auth.authenticate("", peer).is_err() {
        state.ctx.metrics.refused.get_or_create(&crate::metrics::ReasonLabel { reason: "not_loopback" }).inc();
        (StatusCode::FORBIDDEN, "no API keys are configured, so the console serves loopback clients only\n")
            .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(headers, HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
