//! Local simulators of the three marketplaces' open APIs, for tests and demos (feature `sim`,
//! binary `oms-marketsim`). This machine cannot reach any marketplace; the simulators are what
//! the connectors were verified against (docs/CHANNELS.md says which parts that covers).
//!
//! Each simulator serves one platform on its own loopback port, with one app (key, secret,
//! session) and a catalog of items, and:
//! - checks every request's signature, timestamp and session, and answers the platform's error
//!   shapes (invalid signature, expired session, throttled, item not found);
//! - enforces a request rate (a token bucket per second, like the platform's per-app limit);
//! - keeps the quantity it shows per item, which stock updates set and buyers take from (a buyer
//!   can never buy more than the platform shows);
//! - serves the orders its buyers placed to the increment queries, by modification time and page;
//! - records every request and every stock update with its time, for the tests to inspect.

mod douyin;
mod jd;
mod taobao;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Platform;

/// An item the simulated shop sells.
#[derive(Clone, Debug)]
pub struct SimItem {
    /// omsd's SKU code (the platform's merchant / outer SKU code).
    pub code: String,
    pub item_id: String,
    pub sku_id: String,
    /// Quantity shown at start.
    pub qty: i64,
    /// Unit price in cents.
    pub price_cents: i64,
}

/// How a simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub platform: Platform,
    pub app_key: String,
    pub secret: String,
    pub session: String,
    /// Requests per second the app may make (beyond: the throttled answer).
    pub rate_limit: f64,
    pub items: Vec<SimItem>,
    /// Answer every stock update of an unknown item `not found` (otherwise it is created).
    pub strict_items: bool,
}

/// One stock update the simulator accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockUpdate {
    pub at: Instant,
    pub code: String,
    pub qty: i64,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    /// The platform method (`taobao.item.quantity.update`, ...).
    pub method: String,
    /// Its API parameters (not the system ones).
    pub params: Value,
    /// `ok` or the error answered (`throttled`, `session_expired`, `bad_signature`, ...).
    pub outcome: String,
}

/// One shipment confirmation the simulator accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub external_id: String,
    pub company: String,
    /// Waybill(s) as sent (JD joins several with `|`).
    pub waybill: String,
    /// Taobao `sub_tid`, Douyin pack SKU codes: what the parcel carries, when the platform says.
    pub parts: String,
}

/// A placed order, served to the pull.
#[derive(Clone, Debug)]
pub struct SimOrder {
    pub external_id: String,
    pub modified: OffsetDateTime,
    /// The platform's order object.
    pub payload: Value,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Shown quantity by SKU code.
    shown: BTreeMap<String, i64>,
    orders: Vec<SimOrder>,
    received: Vec<Received>,
    updates: Vec<StockUpdate>,
    confirmations: Vec<Confirmation>,
    /// Answer every call `session expired`.
    session_expired: bool,
    /// External order id -> confirmations still to refuse.
    refuse_confirmations: HashMap<String, u32>,
    /// Bucket of the rate limit.
    tokens: f64,
    refilled: Option<Instant>,
    next_order: u64,
    /// Units bought per code (for the tests' oversell check).
    sold: BTreeMap<String, i64>,
}

/// The outcome of a simulated call: the platform's success body, or one of its errors.
pub(crate) enum Reply {
    Ok(Value),
    Error(SimError),
}

/// The errors the simulators answer (each platform renders its own shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimError {
    BadSignature,
    StaleTimestamp,
    SessionExpired,
    Throttled,
    ItemNotFound,
    BadParameter,
    UnknownMethod,
    ConfirmRefused,
}

impl SimError {
    fn outcome(self) -> &'static str {
        match self {
            SimError::BadSignature => "bad_signature",
            SimError::StaleTimestamp => "stale_timestamp",
            SimError::SessionExpired => "session_expired",
            SimError::Throttled => "throttled",
            SimError::ItemNotFound => "not_found",
            SimError::BadParameter => "bad_parameter",
            SimError::UnknownMethod => "unknown_method",
            SimError::ConfirmRefused => "confirm_refused",
        }
    }
}

/// A running simulator.
pub struct Simulator {
    config: SimConfig,
    state: Mutex<State>,
    addr: SocketAddr,
    started: Instant,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Requests may be this far from the simulator's clock (the platforms allow about 10 minutes).
const TIMESTAMP_SKEW: Duration = Duration::from_secs(600);

impl Simulator {
    /// Start on `addr` (port 0: any free port) on the current tokio runtime.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<Arc<Simulator>> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut state = State { tokens: config.rate_limit.max(1.0), ..State::default() };
        for item in &config.items {
            state.shown.insert(item.code.clone(), item.qty);
        }
        let sim = Arc::new(Simulator {
            config,
            state: Mutex::new(state),
            addr,
            started: Instant::now(),
            server: Mutex::new(None),
        });
        let router = match sim.config.platform {
            Platform::Taobao => taobao::router(sim.clone()),
            Platform::Jd => jd::router(sim.clone()),
            Platform::Douyin => douyin::router(sim.clone()),
        };
        let router = control_routes(sim.clone()).merge(router);
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        *sim.server.lock() = Some(handle);
        Ok(sim)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint a shop configures (`endpoint = ...`).
    pub fn endpoint(&self) -> String {
        match self.config.platform {
            Platform::Taobao => format!("http://{}/router/rest", self.addr),
            Platform::Jd => format!("http://{}/routerjson", self.addr),
            Platform::Douyin => format!("http://{}", self.addr),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Stop serving.
    pub fn stop(&self) {
        if let Some(handle) = self.server.lock().take() {
            handle.abort();
        }
    }

    // ----- what the tests drive -----

    /// The quantity the platform shows for a SKU code.
    pub fn shown(&self, code: &str) -> Option<i64> {
        self.state.lock().shown.get(code).copied()
    }

    /// Units bought per code so far.
    pub fn sold(&self, code: &str) -> i64 {
        self.state.lock().sold.get(code).copied().unwrap_or(0)
    }

    /// Every stock update accepted, oldest first.
    pub fn updates(&self) -> Vec<StockUpdate> {
        self.state.lock().updates.clone()
    }

    /// Every request received, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().received.clone()
    }

    pub fn confirmations(&self) -> Vec<Confirmation> {
        self.state.lock().confirmations.clone()
    }

    /// Expire (or renew) the session: every call answers the platform's expired-session error.
    pub fn set_session_expired(&self, expired: bool) {
        self.state.lock().session_expired = expired;
    }

    /// Refuse the next `times` shipment confirmations of an order.
    pub fn refuse_confirmations(&self, external_id: &str, times: u32) {
        self.state.lock().refuse_confirmations.insert(external_id.to_owned(), times);
    }

    /// A buyer orders `qty` units of `code` (one line). Refused (None) when the platform shows
    /// fewer: the platform never sells more than it shows. Returns the external order id.
    pub fn buy(&self, code: &str, qty: i64, buyer: &str) -> Option<String> {
        let item = self.config.items.iter().find(|i| i.code == code)?.clone();
        let mut state = self.state.lock();
        let shown = state.shown.get(code).copied().unwrap_or(0);
        if qty <= 0 || shown < qty {
            return None;
        }
        state.shown.insert(code.to_owned(), shown - qty);
        *state.sold.entry(code.to_owned()).or_default() += qty;
        state.next_order += 1;
        let external_id = match self.config.platform {
            Platform::Taobao => format!("{}", 2_865_530_871_000_000u64 + state.next_order),
            Platform::Jd => format!("{}", 301_248_000_000u64 + state.next_order),
            Platform::Douyin => format!("{}", 6_932_118_820_000_000_000u64 + state.next_order),
        };
        let now = OffsetDateTime::now_utc();
        let payload = match self.config.platform {
            Platform::Taobao => taobao::order(&external_id, &item, qty, buyer, now),
            Platform::Jd => jd::order(&external_id, &item, qty, buyer, now),
            Platform::Douyin => douyin::order(&external_id, &item, qty, buyer, now),
        };
        state.orders.push(SimOrder { external_id: external_id.clone(), modified: now, payload });
        Some(external_id)
    }

    /// Change a placed order on the platform (address, state, lines: `edit` gets the payload);
    /// its modification time becomes now, so the next increment query returns it.
    pub fn modify(&self, external_id: &str, edit: impl FnOnce(&mut Value)) -> bool {
        let mut state = self.state.lock();
        let Some(order) = state.orders.iter_mut().find(|o| o.external_id == external_id) else { return false };
        edit(&mut order.payload);
        order.modified = OffsetDateTime::now_utc();
        let modified = order.modified;
        let platform = self.config.platform;
        match platform {
            Platform::Taobao => order.payload["modified"] = Value::String(local_time(modified)),
            Platform::Jd => order.payload["modified"] = Value::String(local_time(modified)),
            Platform::Douyin => order.payload["update_time"] = Value::from(modified.unix_timestamp()),
        }
        true
    }

    /// The current payload of a placed order.
    pub fn order(&self, external_id: &str) -> Option<Value> {
        self.state.lock().orders.iter().find(|o| o.external_id == external_id).map(|o| o.payload.clone())
    }

    // ----- shared by the platform modules -----

    /// Rate limit, then record: `Err` is the throttled answer.
    fn admit(&self, state: &mut State) -> Result<(), SimError> {
        let now = Instant::now();
        let rate = self.config.rate_limit;
        let burst = rate.max(1.0);
        let elapsed = state.refilled.map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        state.tokens = (state.tokens + elapsed * rate).min(burst);
        state.refilled = Some(now);
        if state.tokens < 1.0 {
            return Err(SimError::Throttled);
        }
        state.tokens -= 1.0;
        Ok(())
    }

    /// The common checks of every call, then `handle` under the state lock; the request is
    /// recorded with its outcome.
    pub(crate) fn serve(
        &self,
        method: &str,
        params: Value,
        signed: bool,
        timestamp_ok: bool,
        session: &str,
        handle: impl FnOnce(&Simulator, &mut State, &Value) -> Reply,
    ) -> Reply {
        let mut state = self.state.lock();
        let reply = if !signed {
            Reply::Error(SimError::BadSignature)
        } else if !timestamp_ok {
            Reply::Error(SimError::StaleTimestamp)
        } else if let Err(e) = self.admit(&mut state) {
            Reply::Error(e)
        } else if state.session_expired || session != self.config.session {
            Reply::Error(SimError::SessionExpired)
        } else {
            handle(self, &mut state, &params)
        };
        let outcome = match &reply {
            Reply::Ok(_) => "ok".to_owned(),
            Reply::Error(e) => e.outcome().to_owned(),
        };
        state.received.push(Received { at: Instant::now(), method: method.to_owned(), params, outcome });
        reply
    }

    /// Set the shown quantity of a code (a stock update).
    fn set_shown(&self, state: &mut State, code: &str, qty: i64) -> Result<(), SimError> {
        if qty < 0 {
            return Err(SimError::BadParameter);
        }
        let known = self.config.items.iter().any(|i| i.code == code);
        if !known && self.config.strict_items {
            return Err(SimError::ItemNotFound);
        }
        state.shown.insert(code.to_owned(), qty);
        state.updates.push(StockUpdate { at: Instant::now(), code: code.to_owned(), qty });
        Ok(())
    }

    /// The SKU code of an item by the platform's ids.
    fn code_of(&self, item_id: &str, sku_id: &str) -> Option<String> {
        self.config
            .items
            .iter()
            .find(|i| i.item_id == item_id && (sku_id.is_empty() || i.sku_id == sku_id))
            .or_else(|| self.config.items.iter().find(|i| !i.sku_id.is_empty() && i.sku_id == sku_id))
            .map(|i| i.code.clone())
    }

    /// Orders modified in `[from, to)`, oldest first, page `page` (1-based) of `size`; and
    /// the total.
    fn orders_in(
        state: &State,
        from: OffsetDateTime,
        to: OffsetDateTime,
        page: usize,
        size: usize,
    ) -> (Vec<Value>, usize) {
        let mut matching: Vec<&SimOrder> =
            state.orders.iter().filter(|o| o.modified >= from && o.modified < to).collect();
        matching.sort_by_key(|o| o.modified);
        let total = matching.len();
        let start = page.saturating_sub(1).saturating_mul(size);
        (matching.into_iter().skip(start).take(size).map(|o| o.payload.clone()).collect(), total)
    }

    /// Take one refusal of a confirmation of `external_id`, if any are configured.
    fn refuse_confirmation(state: &mut State, external_id: &str) -> bool {
        match state.refuse_confirmations.get_mut(external_id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn since_start(&self) -> Duration {
        self.started.elapsed()
    }
}

/// `GET /sim/state` (what the platform shows, what was sold and confirmed) and
/// `POST /sim/buy?code=..&qty=..&buyer=..` (a buyer orders), for manual demos.
fn control_routes(sim: Arc<Simulator>) -> axum::Router {
    use axum::extract::{Query, State as AxumState};
    use axum::routing::{get, post};
    async fn state(AxumState(sim): AxumState<Arc<Simulator>>) -> axum::Json<Value> {
        let st = sim.state.lock();
        axum::Json(serde_json::json!({
            "platform": sim.config.platform.name(),
            "shown": st.shown,
            "sold": st.sold,
            "orders": st.orders.len(),
            "stock_updates": st.updates.len(),
            "requests": st.received.len(),
            "confirmations": st.confirmations.iter().map(|c| serde_json::json!({
                "order": c.external_id, "company": c.company, "waybill": c.waybill, "parts": c.parts,
            })).collect::<Vec<_>>(),
        }))
    }
    async fn buy(
        AxumState(sim): AxumState<Arc<Simulator>>,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> axum::Json<Value> {
        let code = q.get("code").cloned().unwrap_or_default();
        let qty = q.get("qty").and_then(|n| n.parse().ok()).unwrap_or(1);
        let buyer = q.get("buyer").cloned().unwrap_or_else(|| "demo-buyer".to_owned());
        axum::Json(match sim.buy(&code, qty, &buyer) {
            Some(id) => serde_json::json!({ "ok": true, "order": id }),
            None => serde_json::json!({ "ok": false, "error": "unknown item or not enough shown" }),
        })
    }
    axum::Router::new().route("/sim/state", get(state)).route("/sim/buy", post(buy)).with_state(sim)
}

/// `yyyy-MM-dd HH:mm:ss` at +08:00.
pub fn local_time(at: OffsetDateTime) -> String {
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let t = at.to_offset(offset);
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

/// Parse `yyyy-MM-dd HH:mm:ss` at +08:00.
pub fn parse_local_time(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(text.trim(), &format).ok()?;
    Some(t.assume_offset(time::UtcOffset::from_hms(8, 0, 0).ok()?))
}

/// Whether a platform timestamp is within the allowed skew of now.
fn fresh(at: Option<OffsetDateTime>) -> bool {
    at.is_some_and(|t| (OffsetDateTime::now_utc() - t).abs() <= TIMESTAMP_SKEW)
}

/// Params of a form as a JSON object (for the record).
fn params_json(params: &BTreeMap<String, String>, skip: &[&str]) -> Value {
    Value::Object(
        params
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn yuan(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
