//! Admin HTTP: /metrics (Prometheus text), /health (process and log writable: `storage: ok`, or
//! `storage: failed` with the reason), /ready (recovered and accepting).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::server::ServerCtx;

/// What the admin endpoints read; `ctx` is set once recovery is done.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub ctx: std::sync::OnceLock<Arc<ServerCtx>>,
}

pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

/// OpenMetrics when the scraper asks for it (Prometheus does), the classic text format otherwise
/// (curl, promtool, older scrapers).
async fn metrics(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> impl IntoResponse {
    if let Some(ctx) = state.ctx.get() {
        for p in 0..ctx.workers.partitions() {
            state.metrics.queue_depth.get_or_create(&Metrics::partition(p)).set(ctx.workers.queue_depth(p) as i64);
        }
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            crate::metrics::to_prometheus_text(&state.metrics.render()),
        )
    }
}

/// 200 `ok` / `storage: ok` while the logs can be written; 503 with `storage: failed` and the
/// first failure's reason once one could not (writes are then refused until a restart, reads are
/// still served from memory).
async fn health(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    match state.ctx.get() {
        Some(ctx) if ctx.workers.storage_failed() => {
            let reason = ctx.workers.storage_failure().unwrap_or_else(|| "unknown".to_owned());
            let body = format!(
                "storage: failed\nreason: {reason}\nwrites: refused (storage_failed) until omsd is restarted\n\
                 reads: served from memory\n"
            );
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
        _ => (StatusCode::OK, "ok\nstorage: ok\n".to_owned()),
    }
}

async fn ready(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    match state.ctx.get() {
        Some(ctx) if ctx.is_ready() => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
    }
}
