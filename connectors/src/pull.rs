//! Order pull: incremental polling by modification time, the way the platforms' increment APIs
//! are meant to be used.
//!
//! Each pass asks for orders modified in `[pulled_until - overlap, now)`, page by page, in
//! windows of at most a day, and hands every page to omsd's import (the platform's intake
//! adapter; an order seen before is a revision, and the same revision again changes nothing).
//! Only when every page of the pass was imported does `pulled_until` move (and get saved); a
//! failed pass is repeated whole. The overlap catches orders the platform indexed late.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::host::{Host, OrderOutcome};
use crate::limits::backoff;
use crate::metrics::OrderOutcomeLabels;
use crate::shop::{now_ms, RejectedOrder, Shop, REJECTED_KEPT};

/// The longest window in one query (Taobao's increment API takes at most one day).
const WINDOW_MAX: Duration = Duration::from_secs(86_400);
/// Pages in one pass, at most (a bound on one pass's work; the rest is the next pass's).
const PAGES_MAX: u32 = 1_000;

impl Shop {
    pub(crate) async fn pull_loop<H: Host>(self: Arc<Self>, host: Arc<H>) {
        let mut failures = 0u32;
        loop {
            if host.is_primary() {
                match self.pull_once(&*host).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        self.metrics.pull_errors.get_or_create(&self.label()).inc();
                        self.error("pull", e);
                    }
                }
            }
            let wait = if failures == 0 {
                self.settings.pull_interval
            } else {
                backoff(failures, self.settings.retry_initial, self.settings.retry_max).max(self.settings.pull_interval)
            };
            tokio::select! {
                _ = self.stop.notified() => return,
                _ = self.sync.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Pull now unless a pass started less than `max_age` ago (the push task calls this before
    /// it sends: see `push`). A failure is recorded and the push goes on.
    pub(crate) async fn pull_fresh<H: Host>(&self, host: &H, max_age: Duration) {
        if !self.settings.pull {
            return;
        }
        {
            // Counted from the last attempt, so a failing pull (an expired session) is not
            // repeated before every round of updates.
            let mut last = self.last_pull.lock();
            if last.is_some_and(|t| t.elapsed() < max_age) {
                return;
            }
            *last = Some(tokio::time::Instant::now());
        }
        if let Err(e) = self.pull_once(host).await {
            self.metrics.pull_errors.get_or_create(&self.label()).inc();
            self.error("pull", e);
        }
    }

    /// One pass over `[pulled_until - overlap, now)`.
    async fn pull_once<H: Host>(&self, host: &H) -> Result<(), String> {
        let _one_at_a_time = self.pull_guard.lock().await;
        let started = tokio::time::Instant::now();
        let now = OffsetDateTime::now_utc();
        let pulled_until = self.state.lock().pulled_until_ms;
        let start = match pulled_until {
            Some(ms) => from_ms(ms) - self.settings.pull_overlap,
            None => now - self.settings.pull_lookback,
        };
        let mut from = start.min(now);
        while from < now {
            let to = (from + WINDOW_MAX).min(now);
            let mut page = 1;
            loop {
                let result = self.client.orders_page(from, to, page).await.map_err(|e| e.to_string())?;
                if !result.orders.is_empty() {
                    let outcomes = host
                        .import_orders(&self.settings.shop, self.settings.platform.sales_channel(), result.orders)
                        .await
                        .map_err(|e| format!("import failed: {e}"))?;
                    self.record(&outcomes);
                }
                if !result.has_next || page >= PAGES_MAX {
                    break;
                }
                page += 1;
            }
            from = to;
        }
        let until = to_ms(now);
        {
            let mut last = self.last_pull.lock();
            *last = Some(last.map_or(started, |t| t.max(started)));
        }
        {
            let mut state = self.state.lock();
            state.pulled_until_ms = Some(until);
        }
        self.state_dirty.store(true, Ordering::Release);
        let lag = (OffsetDateTime::now_utc() - now).as_seconds_f64().max(0.0);
        self.metrics.pull_lag_seconds.get_or_create(&self.label()).set(lag);
        let mut status = self.status.lock();
        status.last_pull_at_ms = Some(now_ms());
        status.pulled_until_ms = Some(until);
        Ok(())
    }

    fn record(&self, outcomes: &[OrderOutcome]) {
        let mut status = self.status.lock();
        for outcome in outcomes {
            self.metrics
                .pulled_orders
                .get_or_create(&OrderOutcomeLabels { shop: self.settings.shop.clone(), outcome: outcome.label() })
                .inc();
            match outcome {
                OrderOutcome::Imported { .. } => status.orders_imported += 1,
                OrderOutcome::Revised { .. } => status.orders_revised += 1,
                OrderOutcome::Rejected { external_id, error } => {
                    // Never silently: logged, counted, and listed in `oms shop status`.
                    tracing::warn!(shop = %self.settings.shop, external_id, %error, "pulled order rejected");
                    status.orders_rejected += 1;
                    if status.rejected.len() == REJECTED_KEPT {
                        status.rejected.remove(0);
                    }
                    status.rejected.push(RejectedOrder {
                        at_ms: now_ms(),
                        external_id: external_id.clone(),
                        error: error.clone(),
                    });
                }
                OrderOutcome::Unchanged { .. } | OrderOutcome::Skipped { .. } => {}
            }
        }
    }
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}
