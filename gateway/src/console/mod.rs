//! The web console (docs/CONSOLE.md): the front end in `console/` (built into `console/dist`,
//! embedded here), served on its own port (`--console-listen`) with a session cookie in front of
//! the HTTP/JSON API.
//!
//! It is a third front end, not a path into the engine: `/api/...` is the HTTP API's own router
//! ([`crate::http::router`]) mounted behind [`session::gate`], which turns the session cookie
//! back into the API key it was opened with (so every call goes through the same
//! authentication, role check and dispatch as a shop's), and checks the CSRF token on every
//! change. This module must not build requests for the engine or keep state other than the
//! sessions.
//!
//! Routes: `/` and `/assets/...` (the embedded bundle), `/session` (GET: state, POST: sign in
//! with an API key of role ops, DELETE: sign out), `/api/...` (the HTTP API). Every answer carries
//! the security headers of [`headers`].

mod assets;
mod headers;
mod session;

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use session::{Sessions, SESSION_LIMIT};

use crate::server::ServerCtx;

/// What the console's handlers share.
pub struct ConsoleState {
    pub ctx: Arc<ServerCtx>,
    pub sessions: Sessions,
    /// Served over TLS: the session cookie is marked `Secure`.
    pub tls: bool,
}

/// Every route of the console.
pub fn router(ctx: Arc<ServerCtx>, tls: bool) -> Router {
    let state = Arc::new(ConsoleState { ctx: ctx.clone(), sessions: Sessions::new(SESSION_LIMIT), tls });
    let api = crate::http::router(ctx).layer(from_fn_with_state(state.clone(), session::gate));
    Router::new()
        .route("/session", get(session::read).post(session::sign_in).delete(session::sign_out))
        .nest_service("/api", api)
        .fallback(assets::serve)
        .layer(from_fn_with_state(state.clone(), headers::admit_and_protect))
        .with_state(state)
}

/// Serve the console on `listener` (plain, or TLS like the other ports) until the process stops.
pub async fn serve(ctx: Arc<ServerCtx>, listener: TcpListener, tls: Option<crate::tls::TlsAcceptor>) {
    let router = router(ctx.clone(), tls.is_some());
    crate::http::serve_router(ctx, listener, tls, router).await
}
