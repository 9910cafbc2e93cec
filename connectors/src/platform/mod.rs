//! Platform clients: one shop's signed requests to its marketplace, shaped like the platform's
//! documented open API (Taobao/Tmall TOP router, JD routerjson, Douyin shop open API).
//!
//! Every request waits for the shop's rate limiter, is signed, sent with a timeout, and its
//! answer is sorted into [`PlatformError`] kinds the callers act on: `throttled`, `transport` and
//! `session_expired` are retried with backoff; `not_found` and `refused` wait for a change (or a
//! person). Which parts were checked against a live platform and which only against the local
//! simulators is listed in docs/CHANNELS.md.

mod douyin;
mod jd;
mod taobao;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::{Platform, PlatformSku, ShopSettings};
use crate::limits::RateLimiter;
use crate::metrics::{RequestLabels, ShopMetrics};

/// Why a platform call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    #[error("session expired or invalid ({code}: {message})")]
    SessionExpired { code: String, message: String },
    #[error("throttled by the platform ({code}: {message})")]
    Throttled { code: String, message: String },
    #[error("item not found on the platform ({code}: {message})")]
    ItemNotFound { code: String, message: String },
    #[error("refused by the platform ({code}: {message})")]
    Refused { code: String, message: String },
    #[error("request failed: {0}")]
    Transport(String),
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
    #[error("SKU {0} is not in this shop's mapping file")]
    Unmapped(String),
    #[error("carrier {0} has no company code for this platform (add it under [shops.carriers])")]
    UnknownCarrier(String),
}

impl PlatformError {
    /// Worth retrying without anything changing (after a backoff).
    pub fn transient(&self) -> bool {
        matches!(
            self,
            PlatformError::Throttled { .. }
                | PlatformError::Transport(_)
                | PlatformError::BadAnswer(_)
                | PlatformError::SessionExpired { .. }
        )
    }

    /// The metric label of the outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            PlatformError::SessionExpired { .. } => "session_expired",
            PlatformError::Throttled { .. } => "throttled",
            PlatformError::ItemNotFound { .. } => "not_found",
            PlatformError::Refused { .. } | PlatformError::Unmapped(_) | PlatformError::UnknownCarrier(_) => "refused",
            PlatformError::Transport(_) => "transport",
            PlatformError::BadAnswer(_) => "bad_answer",
        }
    }
}

/// One page of orders modified in a window.
#[derive(Clone, Debug, Default)]
pub struct OrdersPage {
    /// Orders as the platform returns them (the intake adapter of the platform reads them).
    pub orders: Vec<Value>,
    pub has_next: bool,
}

/// A parcel to confirm: omsd's carrier code and waybill, and the SKU codes of the order lines
/// it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub shipment: u64,
    pub carrier: String,
    pub waybill: String,
    pub sku_codes: Vec<String>,
}

/// The unconfirmed parcels of one marketplace order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmOrder {
    pub external_id: String,
    pub packages: Vec<Package>,
    /// Parcels of the order in all (confirmed ones included); more than one: a split order.
    pub total_packages: usize,
    /// Every parcel of the order has left.
    pub all_left: bool,
}

/// What a confirmation pass did, per parcel it tried (parcels a platform confirms only together
/// with the others wait until every one has left, and are not listed).
pub type ConfirmResults = Vec<(u64, Result<(), PlatformError>)>;

/// One shop's client.
pub struct Client {
    settings: Arc<ShopSettings>,
    http: reqwest::Client,
    limiter: Arc<RateLimiter>,
    metrics: ShopMetrics,
}

impl Client {
    pub fn new(settings: Arc<ShopSettings>, metrics: ShopMetrics) -> Result<Client, PlatformError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("omsd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlatformError::Transport(e.to_string()))?;
        let limiter = Arc::new(RateLimiter::new(settings.rate_limit));
        Ok(Client { settings, http, limiter, metrics })
    }

    pub fn settings(&self) -> &ShopSettings {
        &self.settings
    }

    /// The platform ids of a SKU code (the code itself, as merchant code, without a mapping file).
    fn target(&self, code: &str) -> Result<Option<&PlatformSku>, PlatformError> {
        match &self.settings.mapping {
            Some(map) => map.get(code).map(Some).ok_or_else(|| PlatformError::Unmapped(code.to_owned())),
            None => Ok(None),
        }
    }

    /// Whether this shop sells the SKU (a mapped SKU, or any SKU without a mapping file).
    pub fn sells(&self, code: &str) -> bool {
        self.settings.mapping.as_ref().is_none_or(|m| m.contains_key(code))
    }

    /// Set the platform's quantity of a SKU (a full-quantity update: repeating it is harmless).
    pub async fn set_stock(&self, code: &str, qty: u64) -> Result<(), PlatformError> {
        let target = self.target(code)?;
        match self.settings.platform {
            Platform::Taobao => taobao::set_stock(self, code, target, qty).await,
            Platform::Jd => jd::set_stock(self, code, target, qty).await,
            Platform::Douyin => douyin::set_stock(self, code, target, qty).await,
        }
    }

    /// Orders modified in `[from, to)`, page `page` (1-based).
    pub async fn orders_page(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        page: u32,
    ) -> Result<OrdersPage, PlatformError> {
        match self.settings.platform {
            Platform::Taobao => taobao::orders_page(self, from, to, page).await,
            Platform::Jd => jd::orders_page(self, from, to, page).await,
            Platform::Douyin => douyin::orders_page(self, from, to, page).await,
        }
    }

    /// Send carrier and waybill of the order's unconfirmed parcels, as the platform allows.
    pub async fn confirm(&self, order: &ConfirmOrder) -> ConfirmResults {
        match self.settings.platform {
            Platform::Taobao => taobao::confirm(self, order).await,
            Platform::Jd => jd::confirm(self, order).await,
            Platform::Douyin => douyin::confirm(self, order).await,
        }
    }

    /// The platform's company code of an omsd carrier code.
    fn company(&self, carrier: &str) -> Result<String, PlatformError> {
        self.settings
            .carriers
            .get(&carrier.to_ascii_uppercase())
            .cloned()
            .ok_or_else(|| PlatformError::UnknownCarrier(carrier.to_owned()))
    }

    /// Time as the platform writes it: `yyyy-MM-dd HH:mm:ss` in the shop's time zone.
    fn local_time(&self, at: OffsetDateTime) -> String {
        let t = at.to_offset(self.settings.time_zone);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// POST a form, wait for the rate limiter first, and return the JSON answer. `api` names the
    /// request in metrics and errors.
    async fn post_form(&self, url: &str, api: &str, form: &BTreeMap<String, String>) -> Result<Value, PlatformError> {
        self.limiter.acquire().await;
        let sent = self.http.post(url).form(form).send().await;
        self.answer(api, sent).await
    }

    /// POST a JSON body to `url` (which carries the signed query).
    async fn post_json(&self, url: reqwest::Url, api: &str, body: String) -> Result<Value, PlatformError> {
        self.limiter.acquire().await;
        let sent = self.http.post(url).header("Content-Type", "application/json").body(body).send().await;
        self.answer(api, sent).await
    }

    async fn answer(&self, api: &str, sent: Result<reqwest::Response, reqwest::Error>) -> Result<Value, PlatformError> {
        let result = async {
            let response = sent.map_err(|e| PlatformError::Transport(without_url(&e)))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| PlatformError::Transport(without_url(&e)))?;
            if status.as_u16() == 429 {
                return Err(PlatformError::Throttled { code: "429".into(), message: "HTTP 429".into() });
            }
            if status.is_server_error() {
                return Err(PlatformError::Transport(format!("HTTP {status}")));
            }
            if !status.is_success() {
                return Err(PlatformError::BadAnswer(format!("HTTP {status}: {}", clip(&text))));
            }
            serde_json::from_str::<Value>(&text).map_err(|e| PlatformError::BadAnswer(format!("{e}: {}", clip(&text))))
        }
        .await;
        self.count(api, result.as_ref().err());
        result
    }

    fn count(&self, api: &str, error: Option<&PlatformError>) {
        let outcome = error.map_or("ok", PlatformError::outcome);
        self.metrics
            .requests
            .get_or_create(&RequestLabels { shop: self.settings.shop.clone(), api: api.to_owned(), outcome })
            .inc();
    }

    /// Record a platform-level error (the HTTP exchange was fine) and slow down on throttling.
    async fn platform_error(&self, api: &str, error: PlatformError) -> PlatformError {
        // `answer` counted this request as ok; count the platform's verdict too.
        self.count(api, Some(&error));
        if matches!(error, PlatformError::Throttled { .. }) {
            self.limiter.back_off().await;
        }
        error
    }
}

/// A reqwest error's text without the URL (which carries signed parameters, the session among
/// them, in its query for Douyin).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_owned(),
    }
}

/// At most 300 characters of an answer, for error messages.
fn clip(text: &str) -> String {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The text of a JSON value that is a string or a number.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The order lines a parcel carries, as a set of SKU codes (for platforms that confirm a split
/// order line by line).
#[allow(dead_code)]
pub fn package_codes(package: &Package) -> Vec<&str> {
    package.sku_codes.iter().map(String::as_str).collect()
}
