//! One shop at run time: the stock push, order pull and shipment confirmation tasks, the shop's
//! status for `oms shop status`, and its sync state file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::board::StockBoard;
use crate::config::ShopSettings;
use crate::host::Host;
use crate::metrics::ShopMetrics;
use crate::platform::{Client, PlatformError};
use crate::state::{self, SyncState};

/// Rejected pulled orders kept for `oms shop status`.
pub const REJECTED_KEPT: usize = 50;
/// Push lags kept for the status's percentiles.
pub(crate) const LAGS_KEPT: usize = 1_024;
/// How often a changed sync state is written.
const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The last thing that went wrong.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LastError {
    pub at_ms: i64,
    /// `push`, `pull` or `confirm`.
    pub task: &'static str,
    pub error: String,
}

/// A pulled order that could not be imported.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RejectedOrder {
    pub at_ms: i64,
    pub external_id: String,
    pub error: String,
}

/// What `oms shop status` shows of a shop.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShopStatus {
    pub shop: String,
    pub platform: &'static str,
    pub channel: u16,
    pub endpoint: String,
    pub rate_limit: f64,
    pub push_interval_ms: u64,
    /// SKUs whose latest value the platform has not acknowledged.
    pub push_backlog: usize,
    pub pushes: u64,
    pub last_push_at_ms: Option<i64>,
    /// Lag of the most recent pushes (ms): median, p99 and max over the last 1024.
    pub push_lag_p50_ms: Option<u64>,
    pub push_lag_p99_ms: Option<u64>,
    pub push_lag_max_ms: Option<u64>,
    pub full_syncs: u64,
    pub last_pull_at_ms: Option<i64>,
    /// Orders modified before this were pulled.
    pub pulled_until_ms: Option<i64>,
    pub orders_imported: u64,
    pub orders_revised: u64,
    pub orders_rejected: u64,
    pub rejected: Vec<RejectedOrder>,
    /// Shipped parcels the platform has not confirmed.
    pub confirm_backlog: usize,
    pub confirmations: u64,
    pub last_error: Option<LastError>,
}

/// One configured shop.
pub struct Shop {
    pub settings: Arc<ShopSettings>,
    /// Its board in the [`StockBoard`].
    pub(crate) index: usize,
    pub(crate) client: Client,
    pub(crate) board: Arc<StockBoard>,
    pub(crate) metrics: ShopMetrics,
    state_path: PathBuf,
    pub(crate) state: Mutex<SyncState>,
    pub(crate) state_dirty: AtomicBool,
    pub(crate) status: Mutex<ShopStatus>,
    pub(crate) lags_ms: Mutex<std::collections::VecDeque<u64>>,
    /// The SKU whose push is on the wire (shutdown must not record it as acknowledged).
    pub(crate) in_flight: Mutex<Option<u32>>,
    /// SKU id -> code, from stock rows and the catalog.
    pub(crate) codes: Mutex<HashMap<u32, String>>,
    /// `oms shop sync`: push every SKU again and pull now.
    pub(crate) sync_requested: AtomicBool,
    pub(crate) sync: Notify,
    pub(crate) confirm_wake: Notify,
    pub(crate) stopping: AtomicBool,
    pub(crate) stop: Notify,
    /// One pull pass at a time (the pull task's, or one the push task asks for).
    pub(crate) pull_guard: tokio::sync::Mutex<()>,
    /// When the last pull pass started (complete ones) or was last tried before a round of
    /// stock updates.
    pub(crate) last_pull: Mutex<Option<tokio::time::Instant>>,
    /// Other shops of the same platform exist: confirm only orders carrying this shop's id.
    pub(crate) shares_platform: bool,
}

impl Shop {
    pub(crate) fn new(
        settings: ShopSettings,
        index: usize,
        board: Arc<StockBoard>,
        metrics: ShopMetrics,
        state_dir: &std::path::Path,
    ) -> Result<Shop, PlatformError> {
        let settings = Arc::new(settings);
        let client = Client::new(settings.clone(), metrics.clone())?;
        let state_path = state::state_path(state_dir, &settings.shop);
        let state = state::load(&state_path);
        let status = ShopStatus {
            shop: settings.shop.clone(),
            platform: settings.platform.name(),
            channel: settings.channel,
            endpoint: settings.endpoint.clone(),
            rate_limit: settings.rate_limit,
            push_interval_ms: settings.push_interval.as_millis() as u64,
            pulled_until_ms: state.pulled_until_ms,
            ..ShopStatus::default()
        };
        Ok(Shop {
            settings,
            index,
            client,
            board,
            metrics,
            state_path,
            state: Mutex::new(state),
            state_dirty: AtomicBool::new(false),
            status: Mutex::new(status),
            lags_ms: Mutex::new(std::collections::VecDeque::with_capacity(LAGS_KEPT)),
            in_flight: Mutex::new(None),
            codes: Mutex::new(HashMap::new()),
            sync_requested: AtomicBool::new(false),
            sync: Notify::new(),
            confirm_wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            pull_guard: tokio::sync::Mutex::new(()),
            last_pull: Mutex::new(None),
            shares_platform: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.shop
    }

    pub fn status(&self) -> ShopStatus {
        let mut status = self.status.lock().clone();
        status.push_backlog =
            self.board.shop(self.index).map_or(0, |b| b.len()) + usize::from(self.in_flight.lock().is_some());
        let mut lags: Vec<u64> = self.lags_ms.lock().iter().copied().collect();
        if !lags.is_empty() {
            lags.sort_unstable();
            let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
            status.push_lag_p50_ms = Some(at(0.5));
            status.push_lag_p99_ms = Some(at(0.99));
            status.push_lag_max_ms = lags.last().copied();
        }
        status
    }

    /// Push every SKU again and pull at once.
    pub fn request_sync(&self) {
        self.sync_requested.store(true, Ordering::Release);
        self.sync.notify_waiters();
        if let Some(b) = self.board.shop(self.index) {
            b.wake();
        }
    }

    /// A parcel shipped: look for confirmations now.
    pub fn wake_confirm(&self) {
        self.confirm_wake.notify_one();
    }

    pub(crate) fn error(&self, task: &'static str, error: impl std::fmt::Display) {
        let error = error.to_string();
        tracing::warn!(shop = %self.settings.shop, task, %error, "marketplace connector");
        self.status.lock().last_error = Some(LastError { at_ms: now_ms(), task, error });
    }

    pub(crate) fn label(&self) -> crate::metrics::ShopLabel {
        ShopMetrics::shop(&self.settings.shop)
    }

    pub(crate) async fn stopped_or(&self, duration: Duration) -> bool {
        if self.stopping.load(Ordering::Acquire) {
            return true;
        }
        tokio::select! {
            _ = self.stop.notified() => true,
            _ = tokio::time::sleep(duration) => self.stopping.load(Ordering::Acquire),
        }
    }

    /// Start this shop's tasks on the current runtime.
    pub(crate) fn spawn<H: Host>(self: &Arc<Self>, host: Arc<H>) {
        if self.settings.push {
            tokio::spawn(self.clone().push_loop(host.clone()));
        }
        if self.settings.pull {
            tokio::spawn(self.clone().pull_loop(host.clone()));
        }
        if self.settings.confirm {
            tokio::spawn(self.clone().confirm_loop(host));
        }
        tokio::spawn(self.clone().save_loop());
    }

    /// Stop the tasks and write the state as clean (the SKU on the wire, if any, is left out of
    /// the acknowledged values, so the next start pushes it again).
    pub(crate) fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
        let mut state = self.state.lock().clone();
        if let Some(sku) = *self.in_flight.lock() {
            let code = self.client_code(sku);
            if let Some(code) = code {
                state.acked.remove(&code);
            }
        }
        state.clean = true;
        if let Err(e) = state::save(&self.state_path, &state) {
            tracing::error!(shop = %self.settings.shop, error = %e, "cannot save the shop state at shutdown");
        }
    }

    fn client_code(&self, sku: u32) -> Option<String> {
        self.codes.lock().get(&sku).cloned()
    }

    /// Write the state if it changed, as not clean (a crash from here on leaves it "unclean").
    async fn save_loop(self: Arc<Self>) {
        loop {
            if self.stopped_or(STATE_SAVE_INTERVAL).await {
                return;
            }
            if self.state_dirty.swap(false, Ordering::AcqRel) {
                let mut state = self.state.lock().clone();
                state.clean = false;
                let path = self.state_path.clone();
                let saved = tokio::task::spawn_blocking(move || state::save(&path, &state)).await;
                match saved {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        self.state_dirty.store(true, Ordering::Release);
                        self.error("push", e);
                    }
                    Err(e) => self.error("push", e),
                }
            }
        }
    }
}
