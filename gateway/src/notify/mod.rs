//! Webhooks: committed events of chosen kinds POSTed to HTTP endpoints, in a generic JSON format
//! (HMAC-signed with a `secret`) or as DingTalk / WeCom group-robot text messages. See
//! docs/OPERATIONS.md ("Webhooks") and docs/REPLICATION.md ("Downstream").
//!
//! The partition thread never waits for a webhook: after a batch's group commit it hands the
//! matching events to [`Notifier::offer`], which only pushes them onto a bounded channel. A spool
//! thread appends them to each webhook's disk-backed queue (`spool.rs`, flushed before delivery
//! starts) and one task per webhook delivers them in order (`deliver.rs`), retrying with backoff
//! and jitter until delivered, out of attempts, or older than the retention. So a restart or a
//! receiver's outage loses nothing within the retention; what is lost is counted and logged:
//! `omsd_webhook_deliveries_total{outcome="dropped"}` (the channel or the spool full),
//! `"expired"` (older than the retention), `"failed"` (out of attempts). Events still in the
//! channel when the process is killed (not stopped) are lost: that window is the time one append
//! and flush takes.

mod deliver;
mod format;
mod spool;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oms_engine::Event;
use serde::Deserialize;
use serde_json::Value;

use crate::metrics::{Metrics, OutcomeLabel};

pub use format::{dingtalk_sign, generic_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// `[[webhooks]]` in the TOML configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the webhook in logs, metrics and its spool directory (default: derived from the
    /// URL's host and a hash of the URL). Letters, digits, `-` and `_`.
    #[serde(default)]
    pub name: Option<String>,
    /// `http[s]://host[:port]/path?query`.
    pub url: String,
    /// `https://` only: a PEM file of extra trusted certificates (a private receiver's CA or
    /// self-signed certificate), trusted in addition to the public web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub format: Format,
    /// Event kinds: `low_stock`, `campaign_sold_out`, `campaign_restocked`, `campaign_closed`,
    /// `order` (every order event) or `order_<name>` (e.g. `order_status_changed`, `order_held`).
    pub events: Vec<String>,
    /// `json`: signs each request (`X-Omsd-Timestamp`, `X-Omsd-Signature: sha256=...`).
    /// `dingtalk`: the robot's signing secret (`SEC...`), adds `timestamp` and `sign` to the URL.
    #[serde(default)]
    pub secret: Option<String>,
    /// `wecom`: the robot's key, added to the URL as `key=` (or put it in the URL yourself).
    #[serde(default)]
    pub key: Option<String>,
    /// Robots: a word every message starts with (DingTalk's "custom keyword" security setting).
    #[serde(default)]
    pub keyword: Option<String>,
    /// Robots: mobiles to @-mention.
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    /// Robots: user ids to @-mention.
    #[serde(default)]
    pub at_user_ids: Vec<String>,
    /// Robots: @-mention everyone.
    #[serde(default)]
    pub at_all: bool,
    /// Attempts per event, the first included; 0 (default): retry until the retention runs out.
    #[serde(default)]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles after each failure (default 500).
    #[serde(default = "default_retry_ms")]
    pub retry_initial_ms: u64,
    /// Longest delay between retries (default 60000).
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Events older than this are not delivered any more (counted as expired), e.g. "24h".
    #[serde(default = "default_retention", with = "humantime_serde_compat")]
    pub retention: Duration,
    /// Events waiting for the spool thread; beyond it new ones are dropped (default 65536).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Disk the spool may use; beyond it new events are dropped (default 256 MiB).
    #[serde(default = "default_spool_bytes")]
    pub spool_max_bytes: u64,
    /// Per attempt: connect, send and read the answer (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_retry_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    60_000
}
fn default_retention() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_queue() -> usize {
    65_536
}
fn default_spool_bytes() -> u64 {
    256 << 20
}
fn default_timeout_ms() -> u64 {
    5000
}

/// `retention = "24h"` through humantime.
mod humantime_serde_compat {
    use serde::Deserialize;
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
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

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Dingtalk => "dingtalk",
            Format::Wecom => "wecom",
        }
    }
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
    // Boxed: a TLS error is large and every configuration check returns this type.
    Tls { url: String, source: Box<crate::tls::TlsError> },
    #[error("webhook {url}: ca_file is only used with an https:// URL")]
    CaWithoutHttps { url: String },
    #[error("webhook {url}: {field} does not apply to the {format} format")]
    Option { url: String, field: &'static str, format: &'static str },
    #[error("webhook name {0:?}: use letters, digits, '-' and '_' (at most 64)")]
    Name(String),
    #[error("two webhooks are named {0:?}")]
    DuplicateName(String),
    #[error("webhook {name}: spool {dir}: {source}")]
    Spool { name: String, dir: PathBuf, source: std::io::Error },
    #[error("webhook {url}: HTTP client: {reason}")]
    Client { url: String, reason: String },
}

/// The URL with its query (tokens, keys) left out, for messages.
fn redacted(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_owned()
}

/// The URL requests go to: the configured one, plus the WeCom key.
fn target_url(hook: &WebhookConfig) -> Result<reqwest::Url, WebhookError> {
    let bad = |reason: String| WebhookError::Url { url: redacted(&hook.url), reason };
    let mut url = reqwest::Url::parse(&hook.url).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("expected http[s]://host[:port]/path".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not supported (use secret or key)".into()));
    }
    if let Some(key) = &hook.key {
        url.query_pairs_mut().append_pair("key", key);
    }
    Ok(url)
}

/// The webhook's name: configured, or `<host>-<8 hex of the URL's hash>`.
pub fn hook_name(hook: &WebhookConfig) -> String {
    use sha2::Digest;
    if let Some(name) = &hook.name {
        return name.clone();
    }
    let host: String = reqwest::Url::parse(&hook.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let hash = sha2::Sha256::digest(hook.url.as_bytes());
    format!("{host}-{}", &hex::encode(hash)[..8])
}

/// Check a webhook's configuration (called when the configuration is resolved).
pub fn validate(hook: &WebhookConfig) -> Result<(), WebhookError> {
    let url = target_url(hook)?;
    let shown = redacted(&hook.url);
    if hook.ca_file.is_some() && url.scheme() != "https" {
        return Err(WebhookError::CaWithoutHttps { url: shown });
    }
    if hook.events.is_empty() {
        return Err(WebhookError::NoEvents { url: shown });
    }
    for kind in &hook.events {
        if !(PLAIN_KINDS.contains(&kind.as_str()) || kind == "order" || kind.starts_with("order_")) {
            return Err(WebhookError::Kind { url: shown, kind: kind.clone() });
        }
    }
    let option = |field| WebhookError::Option { url: shown.clone(), field, format: hook.format.name() };
    match hook.format {
        Format::Json => {
            let robot_only = [
                ("key", hook.key.is_some()),
                ("keyword", hook.keyword.is_some()),
                ("at_mobiles", !hook.at_mobiles.is_empty()),
                ("at_user_ids", !hook.at_user_ids.is_empty()),
                ("at_all", hook.at_all),
            ];
            if let Some((field, _)) = robot_only.into_iter().find(|(_, set)| *set) {
                return Err(option(field));
            }
        }
        Format::Dingtalk if hook.key.is_some() => return Err(option("key")),
        Format::Wecom if hook.secret.is_some() => return Err(option("secret")),
        _ => {}
    }
    if let Some(name) = &hook.name {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(WebhookError::Name(name.clone()));
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
    /// The SKU's code when the event is about one SKU (people read codes, not ids).
    pub sku_code: Option<String>,
}

/// What the spool thread receives.
enum Intake {
    Event(Notification),
    /// Everything sent before is spooled: answer on the channel.
    Flush(crossbeam::channel::Sender<()>),
}

struct Hook {
    name: String,
    config: WebhookConfig,
    url: reqwest::Url,
    client: reqwest::Client,
    /// Rung by the spool thread after each append.
    wake: tokio::sync::Notify,
}

impl Hook {
    fn wants(&self, kind: &str) -> bool {
        wants(&self.config, kind)
    }
}

fn wants(config: &WebhookConfig, kind: &str) -> bool {
    config.events.iter().any(|k| k == kind || (k == "order" && kind.starts_with("order_")))
}

/// What `Notifier::start` hands to the spool thread and the delivery tasks.
type StartParts = (crossbeam::channel::Receiver<Intake>, Vec<spool::SpoolWriter>, Vec<spool::SpoolReader>);

pub struct Notifier {
    hooks: Vec<Arc<Hook>>,
    intake: crossbeam::channel::Sender<Intake>,
    /// The spool thread's end of the channel and the spools, until `start` takes them.
    pending_start: parking_lot::Mutex<Option<StartParts>>,
    spool_thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
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
    /// Opens each webhook's spool under `<data_dir>/webhooks/`.
    pub fn new(
        configs: &[WebhookConfig],
        data_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Arc<Notifier>>, WebhookError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut hooks = Vec::new();
        let (mut writers, mut readers) = (Vec::new(), Vec::new());
        let mut names = std::collections::BTreeSet::new();
        for config in configs {
            validate(config)?;
            let name = hook_name(config);
            if !names.insert(name.clone()) {
                return Err(WebhookError::DuplicateName(name));
            }
            let url = target_url(config)?;
            let tls = crate::tls::ClientTls::public_and(config.ca_file.as_deref())
                .map_err(|source| WebhookError::Tls { url: redacted(&config.url), source: Box::new(source) })?;
            let client = deliver::client(config, &tls)
                .map_err(|e| WebhookError::Client { url: redacted(&config.url), reason: e.to_string() })?;
            let dir = data_dir.join("webhooks").join(&name);
            let (writer, reader) = spool::open(&dir).map_err(|source| WebhookError::Spool {
                name: name.clone(),
                dir: dir.clone(),
                source,
            })?;
            if reader.pending() > 0 {
                tracing::info!(webhook = %name, pending = reader.pending(), "webhook events from before the restart will be delivered");
            }
            writers.push(writer);
            readers.push(reader);
            hooks.push(Arc::new(Hook { name, config: config.clone(), url, client, wake: tokio::sync::Notify::new() }));
        }
        let capacity = configs.iter().map(|c| c.queue.max(1)).max().unwrap_or(1);
        let (intake, receiver) = crossbeam::channel::bounded(capacity);
        let orders = configs.iter().flat_map(|c| &c.events).any(|k| k.starts_with("order"));
        let plain =
            PLAIN_KINDS.into_iter().filter(|k| configs.iter().flat_map(|c| &c.events).any(|e| e == k)).collect();
        Ok(Some(Arc::new(Notifier {
            hooks,
            intake,
            pending_start: parking_lot::Mutex::new(Some((receiver, writers, readers))),
            spool_thread: parking_lot::Mutex::new(None),
            orders,
            plain,
            metrics,
        })))
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

    /// Hand committed events to the spool thread. Never blocks: when the channel is full the
    /// event is dropped, counted and logged.
    pub fn offer(&self, items: impl IntoIterator<Item = Notification>) {
        for item in items {
            let (kind, partition, lsn) = (item.kind.clone(), item.partition, item.lsn);
            if self.intake.try_send(Intake::Event(item)).is_err() {
                self.metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "dropped" }).inc();
                tracing::warn!(%kind, partition, lsn, "webhook queue full: event dropped");
            }
        }
    }

    /// Start the spool thread and one delivery task per webhook on the given runtime.
    pub fn start(self: &Arc<Self>, runtime: &tokio::runtime::Handle) -> std::io::Result<()> {
        let Some((receiver, writers, readers)) = self.pending_start.lock().take() else { return Ok(()) };
        let handles: Vec<spool::SpoolHandle> = readers.iter().map(spool::SpoolReader::handle).collect();
        for (hook, reader) in self.hooks.iter().zip(readers) {
            runtime.spawn(deliver::deliver_forever(hook.clone(), reader, self.metrics.clone()));
        }
        let (hooks, metrics) = (self.hooks.clone(), self.metrics.clone());
        let thread = std::thread::Builder::new()
            .name("omsd-webhooks".into())
            .spawn(move || spool_loop(receiver, hooks, writers, handles, metrics))?;
        *self.spool_thread.lock() = Some(thread);
        Ok(())
    }

    /// Spool every event offered so far (at shutdown, after the partition threads stopped), waiting
    /// at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        let (tx, rx) = crossbeam::channel::bounded(1);
        if self.intake.send_timeout(Intake::Flush(tx), timeout).is_ok() && rx.recv_timeout(timeout).is_err() {
            tracing::warn!("webhook events not all spooled at shutdown");
        }
    }
}

/// The spool thread: append what arrives to each interested webhook's spool, flush, wake the
/// delivery tasks.
fn spool_loop(
    receiver: crossbeam::channel::Receiver<Intake>,
    hooks: Vec<Arc<Hook>>,
    mut writers: Vec<spool::SpoolWriter>,
    handles: Vec<spool::SpoolHandle>,
    metrics: Arc<Metrics>,
) {
    const BATCH_LIMIT: usize = 1024;
    while let Ok(first) = receiver.recv() {
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        for intake in std::iter::once(first).chain(receiver.try_iter().take(BATCH_LIMIT)) {
            match intake {
                Intake::Event(n) => events.push(n),
                Intake::Flush(done) => flushes.push(done),
            }
        }
        let rendered: Vec<(Notification, Value, String)> = events
            .into_iter()
            .map(|n| {
                let (data, summary) = describe(&n);
                (n, data, summary)
            })
            .collect();
        for ((hook, writer), handle) in hooks.iter().zip(writers.iter_mut()).zip(&handles) {
            let mut records = Vec::new();
            for (n, data, summary) in &rendered {
                if !hook.wants(&n.kind) {
                    continue;
                }
                if writer.pending_bytes() >= hook.config.spool_max_bytes {
                    metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "dropped" }).inc();
                    tracing::warn!(webhook = %hook.name, kind = %n.kind, partition = n.partition, lsn = n.lsn, limit = hook.config.spool_max_bytes, "webhook spool full: event dropped");
                    continue;
                }
                records.push(spool::NewRecord {
                    kind: n.kind.clone(),
                    partition: n.partition,
                    lsn: n.lsn,
                    at_ms: n.at_ms,
                    data: data.clone(),
                    summary: summary.clone(),
                });
            }
            if records.is_empty() {
                continue;
            }
            let count = records.len();
            match writer.append(records) {
                Ok(_) => writer.published_to(handle),
                Err(e) => {
                    metrics.webhook_deliveries.get_or_create(&OutcomeLabel { outcome: "dropped" }).inc_by(count as u64);
                    tracing::error!(webhook = %hook.name, error = %e, count, "cannot write the webhook spool: events dropped");
                }
            }
            hook.wake.notify_one();
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// The event as JSON (without its tag) and the robots' one-line summary.
fn describe(n: &Notification) -> (Value, String) {
    let mut data = serde_json::to_value(&n.event).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        map.remove("event");
        if let Some(code) = &n.sku_code {
            map.insert("sku_code".into(), Value::String(code.clone()));
        }
    }
    let summary = summary(&n.event, n.sku_code.as_deref(), &data);
    (data, summary)
}

fn summary(event: &Event, sku_code: Option<&str>, data: &Value) -> String {
    match event {
        Event::LowStock { sku, available, threshold } => {
            let sku = sku_code.map_or_else(|| format!("#{sku}"), str::to_owned);
            format!("SKU {sku} is down to {available} available (threshold {threshold})")
        }
        Event::CampaignSoldOut { id } => format!("campaign {id} sold out"),
        Event::CampaignRestocked { id, remaining } => format!("campaign {id} has {remaining} units again"),
        Event::CampaignClosed { id, returned } => format!("campaign {id} closed, {returned} unsold units returned"),
        _ => data.to_string(),
    }
}
