//! Stock push: each shop's task sends the platform the latest sellable quantity of every SKU
//! whose value changed, as a full-quantity set.
//!
//! - Coalescing: at most one request per SKU per `push_interval`; the board keeps only the latest
//!   value, so what goes out is always current.
//! - Order: decreases first (a late decrease can oversell, a late increase only undersells), then
//!   the oldest change first, so no SKU starves.
//! - Rate: every request waits for the shop's token bucket (`rate_limit`).
//! - Failures: transient ones (throttled, timeouts, 5xx, an expired session) are retried after
//!   an exponential backoff with jitter, unless a newer value arrived (which is sent instead);
//!   permanent ones (SKU not on the platform) wait for the next change or `oms shop sync`.
//! - Fresh orders first: before a round of updates the shop's orders are pulled (unless a pull
//!   started within the push interval), because a full-quantity set computed before omsd has
//!   imported the platform's latest orders would overwrite the platform's own decrement and sell
//!   those units again. What remains is the platform's sales between that pull and the update's
//!   arrival (docs/CHANNELS.md, "Limits").
//! - Restart: what is owed is computed from omsd's state (every SKU's sellable quantity) against
//!   the acknowledged values of a clean stop, or in full after a crash (see `state`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::board::Pending;
use crate::host::Host;
use crate::limits::backoff;
use crate::shop::{now_ms, Shop, LAGS_KEPT};

/// The longest the task sleeps between looks at the board.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Per-SKU pacing kept by the push task.
#[derive(Default)]
struct Pacing {
    last_sent: HashMap<u32, Instant>,
    /// (retry not before, failed attempts so far)
    retry: HashMap<u32, (Instant, u32)>,
    /// (qty, version) the platform acknowledged.
    acked: HashMap<u32, (u64, u64)>,
}

impl Pacing {
    fn ready_at(&self, sku: u32, interval: Duration) -> Option<Instant> {
        let sent = self.last_sent.get(&sku).map(|t| *t + interval);
        let retry = self.retry.get(&sku).map(|(t, _)| *t);
        sent.into_iter().chain(retry).max()
    }
}

impl Shop {
    /// Read every SKU's sellable quantity and put what the platform is owed on the board: all of
    /// it when `full`, else what differs from the acknowledged values. Returns the SKUs noted.
    async fn sync_from_state<H: Host>(&self, host: &H, pacing: &mut Pacing, full: bool) -> Result<usize, String> {
        let rows = host.channel_stock(self.settings.channel).await.map_err(|e| e.to_string())?;
        let Some(board) = self.board.shop(self.index) else { return Ok(0) };
        let now = Instant::now();
        let mut owed = 0;
        {
            let mut codes = self.codes.lock();
            for row in &rows {
                codes.insert(row.sku, row.code.clone());
            }
        }
        for row in rows {
            if !self.client.sells(&row.code) {
                continue;
            }
            let acked = pacing.acked.get(&row.sku).copied();
            if full || acked.is_none_or(|(qty, _)| qty != row.qty) {
                board.note(&[(row.sku, row.qty)], row.version, now);
                owed += 1;
            }
        }
        Ok(owed)
    }

    pub(crate) async fn push_loop<H: Host>(self: Arc<Self>, host: Arc<H>) {
        let Some(board) = self.board.shop(self.index) else { return };
        let interval = self.settings.push_interval;
        let mut pacing = Pacing::default();
        // The acknowledged values of a clean stop count; after a crash nothing does.
        let (clean, acked_by_code) = {
            let state = self.state.lock();
            (state.clean, state.acked.clone())
        };
        let mut first = true;
        loop {
            if !host.is_primary() {
                if self.stopped_or(IDLE_WAKE).await {
                    return;
                }
                continue;
            }
            if first || self.sync_requested.swap(false, Ordering::AcqRel) {
                let full = !first || !clean;
                if first && clean {
                    // Map the acknowledged codes to ids through the current catalog.
                    if let Ok(rows) = host.channel_stock(self.settings.channel).await {
                        for row in rows {
                            if let Some(&(qty, version)) = acked_by_code.get(&row.code) {
                                pacing.acked.insert(row.sku, (qty, version));
                            }
                        }
                    }
                }
                if full {
                    pacing.acked.clear();
                }
                match self.sync_from_state(&*host, &mut pacing, full).await {
                    Ok(owed) => {
                        tracing::info!(shop = %self.settings.shop, owed, full, "stock sync: values owed to the platform queued");
                        if !first {
                            self.status.lock().full_syncs += 1;
                        }
                        first = false;
                    }
                    Err(e) => {
                        self.error("push", format!("cannot read sellable quantities: {e}"));
                        self.sync_requested.store(true, Ordering::Release);
                        if self.stopped_or(Duration::from_secs(1)).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            // Pull this shop's orders first (unless a pass just ran): a full-quantity set computed
            // before omsd has the platform's latest orders would hand their units out again.
            let now = Instant::now();
            let due = board.next_ready(|sku| pacing.ready_at(sku, interval).unwrap_or(now)).is_some_and(|t| t <= now);
            if due {
                self.pull_fresh(&*host, interval).await;
            }
            self.push_due(&*host, &mut pacing).await;
            let backlog = board.len();
            self.metrics.push_backlog.get_or_create(&self.label()).set(backlog as i64);
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let now = Instant::now();
            let next = board.next_ready(|sku| pacing.ready_at(sku, interval).unwrap_or(now)).unwrap_or(now + IDLE_WAKE);
            let next = next.max(now).min(now + IDLE_WAKE);
            tokio::select! {
                _ = board.notified() => {}
                _ = tokio::time::sleep_until(next) => {}
                _ = self.sync.notified() => {}
                _ = self.stop.notified() => return,
            }
        }
    }

    /// Send every value that is due, decreases first, then the oldest.
    async fn push_due<H: Host>(&self, host: &H, pacing: &mut Pacing) {
        let Some(board) = self.board.shop(self.index) else { return };
        let interval = self.settings.push_interval;
        let now = Instant::now();
        let mut due = board.take(|sku, _| pacing.ready_at(sku, interval).is_none_or(|t| t <= now));
        due.sort_by_key(|(sku, p)| {
            let decrease = pacing.acked.get(sku).is_none_or(|(qty, _)| p.qty < *qty);
            (!decrease, p.since)
        });
        for (sku, pending) in due {
            if self.stopping.load(Ordering::Acquire) {
                board.put_back(sku, pending);
                continue;
            }
            if let Some(&(qty, version)) = pacing.acked.get(&sku) {
                if pending.version < version {
                    continue; // older than what the platform has
                }
                if pending.qty == qty {
                    pacing.acked.insert(sku, (qty, pending.version));
                    continue; // the platform shows this already
                }
            }
            self.push_one(host, pacing, sku, pending).await;
        }
    }

    async fn push_one<H: Host>(&self, host: &H, pacing: &mut Pacing, sku: u32, pending: Pending) {
        let Some(board) = self.board.shop(self.index) else { return };
        let cached = self.codes.lock().get(&sku).cloned();
        let code = match cached {
            Some(code) => code,
            None => match host.sku_code(sku).await {
                Some(code) => code,
                None => return,
            },
        };
        self.codes.lock().insert(sku, code.clone());
        if !self.client.sells(&code) {
            return;
        }
        *self.in_flight.lock() = Some(sku);
        let result = self.client.set_stock(&code, pending.qty).await;
        *self.in_flight.lock() = None;
        let now = Instant::now();
        pacing.last_sent.insert(sku, now);
        match result {
            Ok(()) => {
                pacing.retry.remove(&sku);
                pacing.acked.insert(sku, (pending.qty, pending.version));
                let lag = now.saturating_duration_since(pending.since);
                self.metrics.push_lag.get_or_create(&self.label()).observe(lag.as_secs_f64());
                self.metrics.pushes.get_or_create(&self.label()).inc();
                {
                    let mut lags = self.lags_ms.lock();
                    if lags.len() == LAGS_KEPT {
                        lags.pop_front();
                    }
                    lags.push_back(lag.as_millis() as u64);
                }
                {
                    let mut status = self.status.lock();
                    status.pushes += 1;
                    status.last_push_at_ms = Some(now_ms());
                }
                self.state.lock().acked.insert(code, (pending.qty, pending.version));
                self.state_dirty.store(true, Ordering::Release);
            }
            Err(e) if e.transient() => {
                let attempts = pacing.retry.get(&sku).map_or(0, |(_, n)| *n) + 1;
                let delay = backoff(attempts, self.settings.retry_initial, self.settings.retry_max);
                pacing.retry.insert(sku, (now + delay, attempts));
                board.put_back(sku, pending);
                self.error("push", format!("SKU {code} = {}: {e} (retry {attempts} in {delay:?})", pending.qty));
            }
            Err(e) => {
                pacing.retry.remove(&sku);
                self.error("push", format!("SKU {code} = {}: {e} (not retried until it changes)", pending.qty));
            }
        }
    }
}
