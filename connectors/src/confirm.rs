//! Shipment confirmation: carrier and waybill of every shipped parcel go back to the platform.
//!
//! What is owed comes from omsd's state (shipped parcels of marketplace orders without a
//! `channel_confirmed` mark), so nothing is lost across restarts. Each shop looks every
//! `confirm_interval` (and at once when a parcel ships); a failure is retried with backoff, and
//! after `confirm_attempts` failures (or at once for a permanent refusal) the parcel goes on the
//! order's exception list, where the desk sees it (`oms order exceptions`); a later success
//! resolves that entry.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use crate::host::{Host, UnconfirmedOrder};
use crate::limits::backoff;
use crate::platform::ConfirmOrder;
use crate::shop::Shop;

impl Shop {
    /// Whether an order of this shop's platform belongs to this shop.
    fn owns(&self, order: &UnconfirmedOrder) -> bool {
        order.shop == self.settings.shop || !self.shares_platform
    }

    pub(crate) async fn confirm_loop<H: Host>(self: Arc<Self>, host: Arc<H>) {
        // order -> (not before, failed attempts)
        let mut retry: HashMap<u64, (Instant, u32)> = HashMap::new();
        loop {
            if host.is_primary() {
                self.confirm_pass(&*host, &mut retry).await;
            }
            tokio::select! {
                _ = self.stop.notified() => return,
                _ = self.confirm_wake.notified() => {}
                _ = tokio::time::sleep(self.settings.confirm_interval) => {}
            }
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
        }
    }

    async fn confirm_pass<H: Host>(&self, host: &H, retry: &mut HashMap<u64, (Instant, u32)>) {
        let list = match host.unconfirmed(self.settings.platform.sales_channel()).await {
            Ok(list) => list,
            Err(e) => {
                self.error("confirm", format!("cannot list unconfirmed shipments: {e}"));
                return;
            }
        };
        let mine: Vec<UnconfirmedOrder> = list.into_iter().filter(|o| self.owns(o)).collect();
        let backlog: usize = mine.iter().map(|o| o.packages.len()).sum();
        self.metrics.confirm_backlog.get_or_create(&self.label()).set(backlog as i64);
        self.status.lock().confirm_backlog = backlog;
        retry.retain(|order, _| mine.iter().any(|o| o.order == *order));
        let now = Instant::now();
        for order in mine {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            if retry.get(&order.order).is_some_and(|(at, _)| *at > now) {
                continue;
            }
            let request = ConfirmOrder {
                external_id: order.external_id.clone(),
                packages: order.packages.clone(),
                total_packages: order.total_packages,
                all_left: order.all_left,
            };
            let results = self.client.confirm(&request).await;
            let confirmed: Vec<u64> = results.iter().filter(|(_, r)| r.is_ok()).map(|(s, _)| *s).collect();
            if !confirmed.is_empty() {
                match host.confirmed(order.order, confirmed.clone()).await {
                    Ok(()) => {
                        self.metrics.confirmations.get_or_create(&self.label()).inc_by(confirmed.len() as u64);
                        self.status.lock().confirmations += confirmed.len() as u64;
                        tracing::info!(shop = %self.settings.shop, external_id = %order.external_id, parcels = confirmed.len(), "shipment confirmed on the platform");
                    }
                    Err(e) => self
                        .error("confirm", format!("order {}: cannot record the confirmation: {e}", order.external_id)),
                }
            }
            let failed: Vec<(u64, crate::platform::PlatformError)> =
                results.into_iter().filter_map(|(s, r)| r.err().map(|e| (s, e))).collect();
            if failed.is_empty() {
                retry.remove(&order.order);
                continue;
            }
            let attempts = retry.get(&order.order).map_or(0, |(_, n)| *n) + 1;
            let delay = backoff(attempts, self.settings.retry_initial, self.settings.retry_max);
            retry.insert(order.order, (Instant::now() + delay, attempts));
            self.metrics.confirm_errors.get_or_create(&self.label()).inc_by(failed.len() as u64);
            for (shipment, error) in failed {
                let waybill = order.packages.iter().find(|p| p.shipment == shipment).map_or("", |p| p.waybill.as_str());
                let detail = format!(
                    "{} did not confirm waybill {waybill} after {attempts} attempt(s): {error}",
                    self.settings.platform.name()
                );
                self.error("confirm", format!("order {}: {detail}", order.external_id));
                if attempts >= self.settings.confirm_attempts || !error.transient() {
                    if let Err(e) = host.raise(order.order, shipment, detail).await {
                        self.error("confirm", format!("order {}: cannot raise the exception: {e}", order.external_id));
                    }
                }
            }
        }
    }
}
