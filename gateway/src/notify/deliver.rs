//! One task per webhook: take the next spooled record, POST it (reqwest over omsd's rustls
//! configuration), retry with [`oms_client::backoff::Backoff`] until it is delivered, its attempts run
//! out or it is older than the retention, then acknowledge it in the spool.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::format::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::spool::{Record, SpoolReader};
use super::{Format, Hook};
use crate::metrics::{Metrics, OutcomeLabel, WebhookLabel};

/// Largest answer body read (the robots answer a few bytes of JSON).
const ANSWER_LIMIT: usize = 64 * 1024;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The HTTP client of one webhook: HTTP/1.1, the webhook's timeout, TLS through `tls` (public
/// roots plus the webhook's `ca_file`).
pub fn client(hook: &super::WebhookConfig, tls: &crate::tls::ClientTls) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_millis(hook.timeout_ms.max(1));
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls.rustls_config()).clone())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("omsd/", env!("CARGO_PKG_VERSION")))
        // Webhook URLs are configured; a redirect elsewhere is a misconfiguration to see, not follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// One POST; Ok when the receiver took it.
async fn attempt(hook: &Hook, record: &Record) -> Result<(), String> {
    let config = &hook.config;
    let body = format::body(config, record).to_string();
    let mut request =
        hook.client.post(hook.url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8");
    match (config.format, config.secret.as_deref()) {
        (Format::Json, secret) => {
            // A stable id per event, so a receiver can drop the duplicates retries may bring.
            let id = format!("{}-{}-{}", record.partition, record.lsn, record.kind);
            request = request.header("x-omsd-event", &record.kind).header("idempotency-key", id);
            if let Some(secret) = secret {
                let timestamp = now_ms() / 1000;
                request = request
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, format::generic_signature(secret, timestamp, &body));
            }
        }
        (Format::Dingtalk, Some(secret)) => {
            let timestamp = now_ms();
            request = request
                .query(&[("timestamp", timestamp.to_string()), ("sign", format::dingtalk_sign(secret, timestamp))]);
        }
        (Format::Dingtalk | Format::Wecom, _) => {}
    }
    let mut answer = request.body(body).send().await.map_err(|e| without_url(&e))?;
    let status = answer.status().as_u16();
    let mut text = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| without_url(&e))? {
        text.extend_from_slice(&chunk);
        if text.len() >= ANSWER_LIMIT {
            break;
        }
    }
    format::check_answer(config.format, status, &String::from_utf8_lossy(&text))
}

/// reqwest's message names the URL, which holds the robots' tokens: log the cause only.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "bad answer"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_owned(),
    }
}

/// Deliver spooled records in order, forever.
pub async fn deliver_forever(hook: Arc<Hook>, mut spool: SpoolReader, metrics: Arc<Metrics>) {
    let config = &hook.config;
    let label = WebhookLabel { webhook: hook.name.clone() };
    let outcome = |outcome: &'static str| metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome }).inc();
    let retention_ms = config.retention.as_millis() as u64;
    loop {
        metrics.webhook_pending.get_or_create(&label).set(spool.pending() as i64);
        let next = match spool.next() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(webhook = %hook.name, error = %e, "webhook spool unreadable; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let Some(record) = next else {
            // Wake on the next append; the timeout re-checks in case a wake-up raced the check.
            let _ = tokio::time::timeout(Duration::from_secs(1), hook.wake.notified()).await;
            continue;
        };
        let mut backoff = oms_client::backoff::Backoff::new(
            Duration::from_millis(config.retry_initial_ms),
            Duration::from_millis(config.retry_max_ms),
        );
        let mut attempts = 0u32;
        loop {
            if now_ms().saturating_sub(record.at_ms) > retention_ms {
                outcome("expired");
                tracing::warn!(webhook = %hook.name, kind = %record.kind, partition = record.partition, lsn = record.lsn, attempts, "webhook event older than the retention; dropped");
                break;
            }
            attempts += 1;
            match attempt(&hook, &record).await {
                Ok(()) => {
                    outcome("delivered");
                    break;
                }
                Err(reason) if config.max_attempts == 0 || attempts < config.max_attempts => {
                    outcome("retried");
                    let delay = backoff.next_delay();
                    tracing::debug!(webhook = %hook.name, attempt = attempts, %reason, "webhook delivery failed; retrying in {delay:?}");
                    if attempts.is_multiple_of(10) {
                        tracing::warn!(webhook = %hook.name, attempts, %reason, "webhook receiver still failing; events wait on disk");
                    }
                    tokio::time::sleep(delay).await;
                }
                Err(reason) => {
                    outcome("failed");
                    tracing::warn!(webhook = %hook.name, kind = %record.kind, partition = record.partition, lsn = record.lsn, attempts, %reason, "webhook delivery gave up");
                    break;
                }
            }
        }
        if let Err(e) = spool.ack(record.seq) {
            // The record may be sent again after a restart; receivers dedupe by the event id.
            tracing::error!(webhook = %hook.name, error = %e, "cannot record webhook progress");
        }
    }
}
