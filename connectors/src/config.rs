//! `[[shops]]` in omsd's TOML configuration: one marketplace shop each, resolved into
//! [`ShopSettings`] (secrets read from the environment or files, the SKU mapping file loaded,
//! every number checked) before anything runs.
//!
//! Secrets and session tokens never reach a log line: they live in [`Secret`], whose `Debug`
//! prints `***` and which has no `Display`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oms_engine::orders::desk::channel_id;
use oms_engine::orders::SalesChannel;
use serde::Deserialize;
use time::UtcOffset;

use crate::sign::{DouyinSignMethod, TopSignMethod};

/// The marketplaces omsd connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// Taobao and Tmall (one open platform, TOP).
    Taobao,
    Jd,
    Douyin,
}

impl Platform {
    pub fn parse(name: &str) -> Option<Platform> {
        match name.trim().to_ascii_lowercase().as_str() {
            "taobao" | "tmall" => Some(Platform::Taobao),
            "jd" => Some(Platform::Jd),
            "douyin" | "doudian" => Some(Platform::Douyin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::Taobao => "taobao",
            Platform::Jd => "jd",
            Platform::Douyin => "douyin",
        }
    }

    /// The intake adapter (and order channel) of this platform's orders.
    pub fn sales_channel(self) -> SalesChannel {
        match self {
            Platform::Taobao => SalesChannel::Taobao,
            Platform::Jd => SalesChannel::Jd,
            Platform::Douyin => SalesChannel::Douyin,
        }
    }

    /// The platforms' public API endpoints (a shop's `endpoint` replaces it).
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Platform::Taobao => "https://eco.taobao.com/router/rest",
            Platform::Jd => "https://api.jd.com/routerjson",
            Platform::Douyin => "https://openapi-fxg.jinritemai.com",
        }
    }
}

/// A secret or token: never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for signing and sending only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One `[[shops]]` table as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopConfig {
    /// `taobao` (or `tmall`), `jd`, `douyin`.
    pub platform: String,
    /// The shop's id: names it in metrics, `oms shop`, and on the orders pulled from it.
    pub shop: String,
    /// Stock channel whose sellable quantity is pushed: a channel name (`taobao`, `jd`,
    /// `douyin`, `own`) or number [default: the platform's channel].
    pub channel: Option<toml::Value>,
    /// API endpoint [default: the platform's public one].
    pub endpoint: Option<String>,
    pub app_key: String,
    /// App secret, or `secret_file` / `secret_env` (or `OMSD_SHOP_<SHOP>_SECRET`).
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    /// Session key (Taobao) / access token (JD, Douyin), or `session_file` / `session_env` (or
    /// `OMSD_SHOP_<SHOP>_SESSION`).
    pub session: Option<String>,
    pub session_file: Option<PathBuf>,
    pub session_env: Option<String>,
    /// Taobao: `md5` | `hmac` | `hmac-sha256`; Douyin: `md5` | `hmac-sha256` [default: md5,
    /// Douyin hmac-sha256].
    pub sign_method: Option<String>,
    /// Requests per second the platform allows this app for this shop [default: 10].
    pub rate_limit: Option<f64>,
    /// The platform's time zone, as a UTC offset (`+08:00`) or `Asia/Shanghai` [default: +08:00].
    pub time_zone: Option<String>,
    /// CSV `sku,item_id,sku_id`: the SKUs this shop sells and their platform ids. Without it
    /// (Douyin only) every catalog SKU is pushed by its code as the platform's merchant code.
    pub mapping_file: Option<PathBuf>,
    /// At most one stock update per SKU per this many ms, always the latest value [default: 500].
    pub push_interval_ms: Option<u64>,
    /// Order pull period [default: 5000].
    pub pull_interval_ms: Option<u64>,
    /// Each pull starts this far before the last pull's end, so an order the platform indexed
    /// late is still seen [default: 300].
    pub pull_overlap_s: Option<u64>,
    /// The first pull (no sync state yet) looks back this far [default: 86400].
    pub pull_lookback_s: Option<u64>,
    /// Orders per page [default: 50, at most 100].
    pub pull_page_size: Option<u32>,
    /// Shipment confirmation period [default: 1000].
    pub confirm_interval_ms: Option<u64>,
    /// Failed attempts before a shipment goes on the exception list (it is still retried)
    /// [default: 3].
    pub confirm_attempts: Option<u32>,
    /// First retry delay; doubles per failure up to `retry_max_ms`, with jitter [default: 500].
    pub retry_initial_ms: Option<u64>,
    /// [default: 60000].
    pub retry_max_ms: Option<u64>,
    /// Per request [default: 5000].
    pub timeout_ms: Option<u64>,
    /// Turn parts off [default: all on].
    pub push: Option<bool>,
    pub pull: Option<bool>,
    pub confirm: Option<bool>,
    /// omsd carrier code -> the platform's logistics company code (added to the built-in table).
    #[serde(default)]
    pub carriers: BTreeMap<String, String>,
}

/// A platform's ids for one SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSku {
    /// Taobao `num_iid`, JD ware id, Douyin `product_id`.
    pub item_id: String,
    /// Taobao `sku_id`, JD `skuId`, Douyin `sku_id`; empty for a Taobao item without SKUs.
    pub sku_id: String,
}

/// A resolved, checked shop.
#[derive(Clone, Debug)]
pub struct ShopSettings {
    pub platform: Platform,
    pub shop: String,
    /// Stock channel id (engine `ChannelId`).
    pub channel: u16,
    pub endpoint: String,
    pub app_key: String,
    pub secret: Secret,
    pub session: Secret,
    pub top_sign_method: TopSignMethod,
    pub douyin_sign_method: DouyinSignMethod,
    pub rate_limit: f64,
    pub time_zone: UtcOffset,
    /// SKU code -> platform ids; `None`: every catalog SKU by its code (Douyin only).
    pub mapping: Option<HashMap<String, PlatformSku>>,
    pub push_interval: Duration,
    pub pull_interval: Duration,
    pub pull_overlap: Duration,
    pub pull_lookback: Duration,
    pub pull_page_size: u32,
    pub confirm_interval: Duration,
    pub confirm_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
    pub push: bool,
    pub pull: bool,
    pub confirm: bool,
    /// omsd carrier code -> platform company code (built-in table plus the shop's).
    pub carriers: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShopConfigError {
    #[error("shop {shop:?}: unknown platform {platform:?} (expected taobao, tmall, jd or douyin)")]
    Platform { shop: String, platform: String },
    #[error("shop {shop:?}: {what}")]
    Invalid { shop: String, what: String },
    #[error("shop {shop:?}: no {what} (set {what}, {what}_file, {what}_env or {env})")]
    MissingSecret { shop: String, what: &'static str, env: String },
    #[error("shop {shop:?}: cannot read {path}: {source}")]
    Read { shop: String, path: PathBuf, source: std::io::Error },
    #[error("shop {shop:?}: mapping file {path} line {line}: {reason}")]
    Mapping { shop: String, path: PathBuf, line: u64, reason: String },
    #[error("two [[shops]] are named {0:?}")]
    Duplicate(String),
}

const SHOP_ID_LIMIT: usize = 64;

/// The environment variable that overrides a shop's secret or session: `OMSD_SHOP_<SHOP>_<WHAT>`,
/// the shop id upper-cased with every other character turned into `_`.
pub fn secret_env_name(shop: &str, what: &str) -> String {
    let id: String =
        shop.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("OMSD_SHOP_{id}_{}", what.to_ascii_uppercase())
}

/// Resolve every shop; `base` is the directory relative paths are read from (the config file's).
pub fn resolve_shops(shops: &[ShopConfig], base: Option<&Path>) -> Result<Vec<ShopSettings>, ShopConfigError> {
    let mut out: Vec<ShopSettings> = Vec::with_capacity(shops.len());
    for shop in shops {
        let settings = resolve_shop(shop, base, |name| std::env::var(name).ok())?;
        if out.iter().any(|s| s.shop == settings.shop) {
            return Err(ShopConfigError::Duplicate(settings.shop));
        }
        out.push(settings);
    }
    Ok(out)
}

/// Resolve one shop, reading environment variables through `env`.
pub fn resolve_shop(
    c: &ShopConfig,
    base: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ShopSettings, ShopConfigError> {
    let shop = c.shop.trim().to_owned();
    let invalid = |what: String| ShopConfigError::Invalid { shop: shop.clone(), what };
    if shop.is_empty() || shop.len() > SHOP_ID_LIMIT || shop.chars().any(|ch| ch.is_control() || ch.is_whitespace()) {
        return Err(invalid(format!("shop id must be 1..={SHOP_ID_LIMIT} bytes without spaces")));
    }
    let platform = Platform::parse(&c.platform)
        .ok_or_else(|| ShopConfigError::Platform { shop: shop.clone(), platform: c.platform.clone() })?;
    let channel = match &c.channel {
        None => channel_id(platform.sales_channel()).0,
        Some(toml::Value::Integer(n)) => {
            u16::try_from(*n).map_err(|_| invalid(format!("channel {n} is not 0..=65535")))?
        }
        Some(toml::Value::String(name)) => match (SalesChannel::parse(name), name.as_str()) {
            (Some(c), _) => channel_id(c).0,
            (None, "own") => 0,
            _ => name.parse::<u16>().map_err(|_| invalid(format!("unknown channel {name:?}")))?,
        },
        Some(other) => return Err(invalid(format!("channel must be a name or a number, not {other}"))),
    };
    let endpoint = c.endpoint.clone().unwrap_or_else(|| platform.default_endpoint().to_owned());
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(invalid(format!("endpoint {endpoint:?} must start with http:// or https://")));
    }
    if c.app_key.trim().is_empty() {
        return Err(invalid("app_key is empty".to_owned()));
    }
    let read = |path: &Path| -> Result<String, ShopConfigError> {
        let full = match base {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        std::fs::read_to_string(&full).map(|t| t.trim().to_owned()).map_err(|source| ShopConfigError::Read {
            shop: shop.clone(),
            path: full,
            source,
        })
    };
    let secret_of = |what: &'static str,
                     inline: &Option<String>,
                     file: &Option<PathBuf>,
                     var: &Option<String>|
     -> Result<Secret, ShopConfigError> {
        let standard = secret_env_name(&shop, what);
        if let Some(value) = env(&standard).filter(|v| !v.is_empty()) {
            return Ok(Secret(value));
        }
        if let Some(name) = var {
            if let Some(value) = env(name).filter(|v| !v.is_empty()) {
                return Ok(Secret(value));
            }
        }
        if let Some(path) = file {
            let value = read(path)?;
            if !value.is_empty() {
                return Ok(Secret(value));
            }
        }
        match inline {
            Some(value) if !value.is_empty() => Ok(Secret(value.clone())),
            _ => Err(ShopConfigError::MissingSecret { shop: shop.clone(), what, env: standard }),
        }
    };
    let secret = secret_of("secret", &c.secret, &c.secret_file, &c.secret_env)?;
    let session = secret_of("session", &c.session, &c.session_file, &c.session_env)?;
    let method = c.sign_method.as_deref().unwrap_or("");
    let top_sign_method = match platform {
        Platform::Taobao => {
            TopSignMethod::parse(method).ok_or_else(|| invalid(format!("unknown TOP sign_method {method:?}")))?
        }
        _ => TopSignMethod::Md5,
    };
    let douyin_sign_method = match platform {
        Platform::Douyin if method.is_empty() => DouyinSignMethod::HmacSha256,
        Platform::Douyin => {
            DouyinSignMethod::parse(method).ok_or_else(|| invalid(format!("unknown Douyin sign_method {method:?}")))?
        }
        _ => DouyinSignMethod::Md5,
    };
    if platform == Platform::Jd && !method.is_empty() && method != "md5" {
        return Err(invalid(format!("JD signs with md5 only, not {method:?}")));
    }
    let rate_limit = c.rate_limit.unwrap_or(10.0);
    if !(rate_limit.is_finite() && (0.1..=10_000.0).contains(&rate_limit)) {
        return Err(invalid(format!("rate_limit {rate_limit} must be 0.1..=10000 requests/s")));
    }
    let time_zone = parse_time_zone(c.time_zone.as_deref().unwrap_or("+08:00"))
        .ok_or_else(|| invalid(format!("time_zone {:?}: expected +HH:MM or Asia/Shanghai", c.time_zone)))?;
    let mapping = match &c.mapping_file {
        Some(path) => {
            let full = match base {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path.clone(),
            };
            Some(load_mapping(&shop, &full)?)
        }
        None if platform == Platform::Douyin => None,
        None => {
            return Err(invalid(format!(
                "{} needs mapping_file (CSV sku,item_id,sku_id): its stock API addresses SKUs by platform ids",
                platform.name()
            )))
        }
    };
    let ms = |v: Option<u64>, default: u64, min: u64, what: &str| -> Result<Duration, ShopConfigError> {
        let v = v.unwrap_or(default);
        if v < min || v > 86_400_000 {
            return Err(invalid(format!("{what} {v} must be {min}..=86400000")));
        }
        Ok(Duration::from_millis(v))
    };
    let page = c.pull_page_size.unwrap_or(50);
    if !(1..=100).contains(&page) {
        return Err(invalid(format!("pull_page_size {page} must be 1..=100")));
    }
    let retry_initial = ms(c.retry_initial_ms, 500, 1, "retry_initial_ms")?;
    let retry_max = ms(c.retry_max_ms, 60_000, 1, "retry_max_ms")?.max(retry_initial);
    let mut carriers = default_carriers(platform);
    carriers.extend(c.carriers.iter().map(|(k, v)| (k.to_ascii_uppercase(), v.clone())));
    Ok(ShopSettings {
        platform,
        shop: shop.clone(),
        channel,
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        app_key: c.app_key.trim().to_owned(),
        secret,
        session,
        top_sign_method,
        douyin_sign_method,
        rate_limit,
        time_zone,
        mapping,
        push_interval: ms(c.push_interval_ms, 500, 1, "push_interval_ms")?,
        pull_interval: ms(c.pull_interval_ms, 5_000, 10, "pull_interval_ms")?,
        pull_overlap: Duration::from_secs(c.pull_overlap_s.unwrap_or(300).min(86_400)),
        pull_lookback: Duration::from_secs(c.pull_lookback_s.unwrap_or(86_400).clamp(1, 30 * 86_400)),
        pull_page_size: page,
        confirm_interval: ms(c.confirm_interval_ms, 1_000, 10, "confirm_interval_ms")?,
        confirm_attempts: c.confirm_attempts.unwrap_or(3).max(1),
        retry_initial,
        retry_max,
        timeout: ms(c.timeout_ms, 5_000, 10, "timeout_ms")?,
        push: c.push.unwrap_or(true),
        pull: c.pull.unwrap_or(true),
        confirm: c.confirm.unwrap_or(true),
        carriers,
    })
}

/// `+08:00`, `-05:30`, `UTC`, or one of the platforms' zone names (all without daylight saving,
/// so a fixed offset is exact).
pub fn parse_time_zone(text: &str) -> Option<UtcOffset> {
    let text = text.trim();
    match text {
        "UTC" | "Z" | "+00:00" => return UtcOffset::from_hms(0, 0, 0).ok(),
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Hong_Kong" | "Asia/Taipei" | "PRC" => {
            return UtcOffset::from_hms(8, 0, 0).ok()
        }
        _ => {}
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1i8, &text[1..]),
        b'-' => (-1i8, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

#[derive(Deserialize)]
struct MappingRow {
    sku: String,
    item_id: String,
    #[serde(default)]
    sku_id: String,
}

/// Read a mapping CSV (`sku,item_id,sku_id` header; `sku_id` may be empty).
pub fn load_mapping(shop: &str, path: &Path) -> Result<HashMap<String, PlatformSku>, ShopConfigError> {
    let mut reader =
        csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_path(path).map_err(|e| {
            ShopConfigError::Mapping { shop: shop.to_owned(), path: path.to_owned(), line: 0, reason: e.to_string() }
        })?;
    let mut map = HashMap::new();
    for (index, row) in reader.deserialize::<MappingRow>().enumerate() {
        let error = |line: u64, reason: String| ShopConfigError::Mapping {
            shop: shop.to_owned(),
            path: path.to_owned(),
            line,
            reason,
        };
        let row = row.map_err(|e| error(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        // Header is line 1 (comment lines are not counted).
        let line = index as u64 + 2;
        if row.sku.is_empty() || row.item_id.is_empty() {
            return Err(error(line, "sku and item_id must not be empty".to_owned()));
        }
        if map.insert(row.sku.clone(), PlatformSku { item_id: row.item_id, sku_id: row.sku_id }).is_some() {
            return Err(error(line, format!("SKU {} mapped twice", row.sku)));
        }
    }
    Ok(map)
}

/// omsd carrier codes (as in the rules file) -> each platform's logistics company code. The JD
/// numbers are JD's `logiCoprId` values as commonly published; every entry can be replaced per
/// shop (`[shops.carriers]`), and none was checked against a live platform (docs/CHANNELS.md).
pub fn default_carriers(platform: Platform) -> BTreeMap<String, String> {
    let table: &[(&str, &str, &str, &str)] = &[
        // omsd, Taobao, JD, Douyin
        ("SF", "SF", "467", "shunfeng"),
        ("ZTO", "ZTO", "463", "zhongtong"),
        ("YTO", "YTO", "1", "yuantong"),
        ("STO", "STO", "470", "shentong"),
        ("YD", "YUNDA", "1327", "yunda"),
        ("YUNDA", "YUNDA", "1327", "yunda"),
        ("EMS", "EMS", "465", "ems"),
        ("JD", "JD", "2087", "jd"),
        ("JT", "JTSD", "3046", "jtexpress"),
    ];
    table
        .iter()
        .map(|(ours, taobao, jd, douyin)| {
            let theirs = match platform {
                Platform::Taobao => taobao,
                Platform::Jd => jd,
                Platform::Douyin => douyin,
            };
            ((*ours).to_owned(), (*theirs).to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ShopConfig {
        ShopConfig {
            platform: "douyin".into(),
            shop: "dy-1".into(),
            app_key: "k".into(),
            secret: Some("from-toml".into()),
            session: Some("token".into()),
            ..ShopConfig::default()
        }
    }

    #[test]
    fn secrets_come_from_env_then_file_then_toml_and_never_print() {
        // The standard variable wins over secret_env, which wins over secret_file and the TOML
        // value; Debug of the settings shows no secret.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.txt"), "from-file\n").unwrap();
        let mut c = base();
        c.secret_file = Some("s.txt".into());
        let s = resolve_shop(&c, Some(dir.path()), |_| None).unwrap();
        assert_eq!(s.secret.expose(), "from-file");
        c.secret_env = Some("MY_SECRET".into());
        let env = |name: &str| (name == "MY_SECRET").then(|| "from-var".to_owned());
        assert_eq!(resolve_shop(&c, Some(dir.path()), env).unwrap().secret.expose(), "from-var");
        let env = |name: &str| (name == "OMSD_SHOP_DY_1_SECRET").then(|| "from-standard".to_owned());
        let s = resolve_shop(&c, Some(dir.path()), env).unwrap();
        assert_eq!(s.secret.expose(), "from-standard");
        let printed = format!("{s:?}");
        assert!(!printed.contains("from-standard") && !printed.contains("token"), "{printed}");
        c.secret = None;
        c.secret_file = None;
        c.secret_env = None;
        assert!(matches!(resolve_shop(&c, None, |_| None), Err(ShopConfigError::MissingSecret { .. })));
    }

    #[test]
    fn bad_values_are_refused_with_the_shop_named() {
        // Each wrong field is refused with a message naming the shop and the field.
        let refused = |edit: &dyn Fn(&mut ShopConfig)| {
            let mut c = base();
            edit(&mut c);
            resolve_shop(&c, None, |_| None).unwrap_err().to_string()
        };
        assert!(refused(&|c| c.platform = "amazon".into()).contains("unknown platform"));
        assert!(refused(&|c| c.rate_limit = Some(0.0)).contains("rate_limit"));
        assert!(refused(&|c| c.time_zone = Some("Mars/Olympus".into())).contains("time_zone"));
        assert!(refused(&|c| c.endpoint = Some("ftp://x".into())).contains("endpoint"));
        assert!(refused(&|c| c.platform = "jd".into()).contains("mapping_file"));
        assert!(refused(&|c| c.sign_method = Some("sha1".into())).contains("sign_method"));
        assert!(refused(&|c| c.shop = "two words".into()).contains("shop id"));
    }

    #[test]
    fn mapping_files_are_checked() {
        // A good file maps codes to ids; a duplicate SKU or a missing item id names its line.
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "sku,item_id,sku_id\nMUG-WHT,680012,4410021\n# comment\nPEN,680077,\n").unwrap();
        let map = load_mapping("s", &good).unwrap();
        assert_eq!(map["MUG-WHT"], PlatformSku { item_id: "680012".into(), sku_id: "4410021".into() });
        assert_eq!(map["PEN"].sku_id, "");
        let dup = dir.path().join("dup.csv");
        std::fs::write(&dup, "sku,item_id,sku_id\nPEN,1,2\nPEN,3,4\n").unwrap();
        assert!(load_mapping("s", &dup).unwrap_err().to_string().contains("mapped twice"));
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "sku,item_id,sku_id\nPEN,,2\n").unwrap();
        assert!(load_mapping("s", &empty).unwrap_err().to_string().contains("must not be empty"));
    }

    #[test]
    fn time_zones_parse() {
        assert_eq!(parse_time_zone("Asia/Shanghai"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_time_zone("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_time_zone("+8"), None);
    }
}
