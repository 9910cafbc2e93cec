//! Webhooks: committed events of chosen kinds POSTed to HTTP endpoints, in a generic JSON format
//! or as DingTalk / WeCom group-robot text messages. See docs/REPLICATION.md ("Downstream").
//!
//! The partition thread never waits for a webhook: after a batch's group commit it hands the
//! matching events to [`Notifier::offer`], which only pushes them onto one bounded queue per
//! webhook (when a queue is full its OLDEST entry is dropped and counted as
//! `omsd_webhook_deliveries_total{outcome="dropped"}`). One task per webhook delivers in order,
//! retrying with exponential backoff up to `max_attempts`.

mod http;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use oms_engine::Event;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::metrics::{Metrics, OutcomeLabel};

/// `[[webhooks]]` in the TOML configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http[s]://host[:port]/path?query`.
    pub url: String,
    /// `https://` only: a PEM file of extra trusted certificates (a private receiver's CA or
    /// self-signed certificate), trusted in addition to the public web PKI roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub format: Format,
    /// Event kinds: `low_stock`, `campaign_sold_out`, `campaign_restocked`, `campaign_closed`,
    /// `order` (every order event) or `order_<name>` (e.g. `order_status_changed`, `order_held`).
    pub events: Vec<String>,
    /// Attempts per event, the first included (default 5).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles after each failure, at most 60 s (default 500).
    #[serde(default = "default_retry_ms")]
    pub retry_initial_ms: u64,
    /// Events waiting for this webhook; beyond it the oldest is dropped (default 1024).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Per attempt: connect, send and read the answer (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_retry_ms() -> u64 {
    500
}
fn default_queue() -> usize {
    1024
}
fn default_timeout_ms() -> u64 {
    5000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"event", "partition", "lsn", "at_ms", "data"}`.
    #[default]
    Json,
    /// DingTalk group robot: `{"msgtype":"text","text":{"content":...}}`.
    Dingtalk,
    /// WeCom (WeChat Work) group robot: `{"msgtype":"text","text":{"content":...}}`.
    Wecom,
}

const PLAIN_KINDS: [&str; 4] = ["low_stock", "campaign_sold_out", "campaign_restocked", "campaign_closed"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("webhook {url}: unknown event kind {kind:?} (expected one of low_stock, campaign_sold_out, campaign_restocked, campaign_closed, order, order_<name>)")]
    Kind { url: String, kind: String },
    #[error("webhook {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("webhook {url}: no event kinds")]
    NoEvents { url: String },
    #[error("webhook {url}: {source}")]
    Tls { url: String, source: crate::tls::TlsError },
    #[error("webhook {url}: ca_file is only used with an https:// URL")]
    CaWithoutHttps { url: String },
}

/// Check a webhook's configuration (called when the configuration is resolved).
pub fn validate(hook: &WebhookConfig) -> Result<(), WebhookError> {
    let target =
        http::Target::parse(&hook.url).map_err(|reason| WebhookError::Url { url: hook.url.clone(), reason })?;
    if hook.ca_file.is_some() && !target.https {
        return Err(WebhookError::CaWithoutHttps { url: hook.url.clone() });
    }
    if hook.events.is_empty() {
        return Err(WebhookError::NoEvents { url: hook.url.clone() });
    }
    for kind in &hook.events {
        if !(PLAIN_KINDS.contains(&kind.as_str()) || kind == "order" || kind.starts_with("order_")) {
            return Err(WebhookError::Kind { url: hook.url.clone(), kind: kind.clone() });
        }
    }
    Ok(())
}

/// One committed event on its way to the webhooks.
#[derive(Clone, Debug)]
pub struct Notification {
    pub kind: String,
    pub partition: u32,
    /// LSN of the record whose command produced the event.
    pub lsn: u64,
    pub at_ms: u64,
    pub event: Event,
}

struct Hook {
    config: WebhookConfig,
    target: http::Target,
    /// Built once at start for `https://` targets (loading roots per delivery would be waste).
    tls: Option<crate::tls::ClientTls>,
    queue: parking_lot::Mutex<VecDeque<Notification>>,
    wake: tokio::sync::Notify,
}

impl Hook {
    fn wants(&self, kind: &str) -> bool {
        self.config.events.iter().any(|k| k == kind || (k == "order" && kind.starts_with("order_")))
    }
}

pub struct Notifier {
    hooks: Vec<Arc<Hook>>,
    /// Some webhook wants order events (their kind needs a serialization to be known).
    orders: bool,
    plain: Vec<&'static str>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("webhooks", &self.hooks.len()).finish()
    }
}

impl Notifier {
    /// `None` when no webhook is configured (the partition threads then do nothing at all).
    pub fn new(configs: &[WebhookConfig], metrics: Arc<Metrics>) -> Result<Option<Arc<Notifier>>, WebhookError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut hooks = Vec::new();
        for config in configs {
            validate(config)?;
            let target = http::Target::parse(&config.url)
                .map_err(|reason| WebhookError::Url { url: config.url.clone(), reason })?;
            let tls = if target.https {
                let tls = crate::tls::ClientTls::public_and(config.ca_file.as_deref())
                    .map_err(|source| WebhookError::Tls { url: config.url.clone(), source })?;
                Some(tls)
            } else {
                None
            };
            hooks.push(Arc::new(Hook {
                config: config.clone(),
                target,
                tls,
                queue: parking_lot::Mutex::new(VecDeque::new()),
                wake: tokio::sync::Notify::new(),
            }));
        }
        let orders = configs.iter().flat_map(|c| &c.events).any(|k| k.starts_with("order"));
        let plain =
            PLAIN_KINDS.into_iter().filter(|k| configs.iter().flat_map(|c| &c.events).any(|e| e == k)).collect();
        Ok(Some(Arc::new(Notifier { hooks, orders, plain, metrics })))
    }

    /// The kind of an event if some webhook wants it. Cheap for the events nobody wants.
    pub fn kind_of(&self, event: &Event) -> Option<String> {
        let kind = match event {
            Event::LowStock { .. } => "low_stock",
            Event::CampaignSoldOut { .. } => "campaign_sold_out",
            Event::CampaignRestocked { .. } => "campaign_restocked",
            Event::CampaignClosed { .. } => "campaign_closed",
            Event::Order(order) if self.orders => {
                let value = serde_json::to_value(order).ok()?;
                let name = value.get("order_event")?.as_str()?;
                let kind = format!("order_{name}");
                return self.hooks.iter().any(|h| h.wants(&kind)).then_some(kind);
            }
            _ => return None,
        };
        self.plain.contains(&kind).then(|| kind.to_owned())
    }

    /// Queue committed events for delivery. Never blocks on I/O: a short lock per webhook; a full
    /// queue drops its oldest entry.
    pub fn offer(&self, items: impl IntoIterator<Item = Notification>) {
        for item in items {
            for hook in &self.hooks {
                if !hook.wants(&item.kind) {
                    continue;
                }
                let dropped = {
                    let mut queue = hook.queue.lock();
                    let dropped =
                        if queue.len() >= hook.config.queue.max(1) { queue.pop_front().is_some() } else { false };
                    queue.push_back(item.clone());
                    dropped
                };
                if dropped {
                    self.metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "dropped" }).inc();
                }
                hook.wake.notify_one();
            }
        }
    }

    /// Start one delivery task per webhook on the given runtime.
    pub fn start(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        for hook in &self.hooks {
            let (hook, metrics) = (hook.clone(), self.metrics.clone());
            runtime.spawn(deliver_forever(hook, metrics));
        }
    }
}

async fn deliver_forever(hook: Arc<Hook>, metrics: Arc<Metrics>) {
    loop {
        let next = hook.queue.lock().pop_front();
        let Some(item) = next else {
            hook.wake.notified().await;
            continue;
        };
        let body = render(hook.config.format, &item).to_string();
        let timeout = Duration::from_millis(hook.config.timeout_ms.max(1));
        let mut delay = Duration::from_millis(hook.config.retry_initial_ms);
        let attempts = hook.config.max_attempts.max(1);
        for attempt in 1..=attempts {
            let answer = http::post_json(&hook.target, &body, timeout, hook.tls.as_ref()).await;
            let outcome = answer.and_then(|(status, text)| check_answer(hook.config.format, status, &text));
            match outcome {
                Ok(()) => {
                    metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "delivered" }).inc();
                    break;
                }
                Err(reason) if attempt < attempts => {
                    metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "retried" }).inc();
                    tracing::debug!(url = %hook.config.url, attempt, %reason, "webhook delivery failed; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
                Err(reason) => {
                    metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "failed" }).inc();
                    tracing::warn!(url = %hook.config.url, kind = %item.kind, attempts, %reason, "webhook delivery gave up");
                }
            }
        }
    }
}

/// 2xx is success; the robots also answer 200 with a non-zero `errcode` on failure (rate limit,
/// bad keyword, ...), which is retried like an HTTP error.
fn check_answer(format: Format, status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    if format != Format::Json {
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            if let Some(code) = value.get("errcode").and_then(Value::as_i64) {
                if code != 0 {
                    return Err(format!("errcode {code}: {}", value["errmsg"].as_str().unwrap_or_default()));
                }
            }
        }
    }
    Ok(())
}

/// The request body of one notification.
pub fn render(format: Format, item: &Notification) -> Value {
    let mut data = serde_json::to_value(&item.event).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        map.remove("event");
    }
    match format {
        Format::Json => json!({
            "event": item.kind,
            "partition": item.partition,
            "lsn": item.lsn,
            "at_ms": item.at_ms,
            "data": data,
        }),
        Format::Dingtalk | Format::Wecom => {
            // Both robots cap text content (WeCom: 2048 bytes).
            let mut content = format!(
                "[omsd] {}: {} (partition {}, lsn {})",
                item.kind,
                summary(&item.event, &data),
                item.partition,
                item.lsn
            );
            truncate(&mut content, 2000);
            json!({"msgtype": "text", "text": {"content": content}})
        }
    }
}

fn summary(event: &Event, data: &Value) -> String {
    match event {
        Event::LowStock { sku, available, threshold } => {
            format!("SKU {sku} is down to {available} available (threshold {threshold})")
        }
        Event::CampaignSoldOut { id } => format!("campaign {id} sold out"),
        Event::CampaignRestocked { id, remaining } => format!("campaign {id} has {remaining} units again"),
        Event::CampaignClosed { id, returned } => format!("campaign {id} closed, {returned} unsold units returned"),
        _ => data.to_string(),
    }
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
