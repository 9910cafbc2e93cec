//! omsd configuration: embedded defaults < TOML file < environment < flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use oms_proto::{Role, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT};

/// omsd: in-memory, write-ahead-logged order and stock-reservation engine.
///
/// Every option may also come from a TOML file (--config) or an OMSD_* environment variable;
/// flags win over the environment, which wins over the file, which wins over the defaults.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "omsd", version, about, long_about = None)]
pub struct OmsdArgs {
    /// TOML configuration file.
    #[arg(long, env = "OMSD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Storefront protocol address [default: 127.0.0.1:7700].
    #[arg(long, env = "OMSD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin HTTP address for /metrics, /health, /ready [default: 127.0.0.1:7701].
    #[arg(long, env = "OMSD_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// HTTP/JSON API address (docs/HTTP.md); TLS with --tls-cert like the storefront port
    /// [default: 127.0.0.1:7702].
    #[arg(long, env = "OMSD_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Web console address (docs/CONSOLE.md): sign in with an API key of role ops; without keys,
    /// loopback clients only. TLS with --tls-cert like the other ports [default: 127.0.0.1:7703].
    #[arg(long, env = "OMSD_CONSOLE_LISTEN")]
    pub console_listen: Option<SocketAddr>,
    /// The shop's time zone (IANA name) the console shows times in [default: Asia/Shanghai].
    #[arg(long, env = "OMSD_CONSOLE_TIME_ZONE")]
    pub console_time_zone: Option<String>,
    /// Data directory (write-ahead logs and snapshots) [default: ./data].
    #[arg(long, env = "OMSD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of partitions (writer threads), 1..=16; fixed for the life of a data directory
    /// [default: 2].
    #[arg(long, env = "OMSD_PARTITIONS")]
    pub partitions: Option<u32>,
    /// Durability: always (ack after fsync), interval=<ms> (fsync at most every ms), off
    /// (benchmarks only: acknowledged writes can be lost) [default: always].
    #[arg(long, env = "OMSD_FSYNC")]
    pub fsync: Option<String>,
    /// Load a small demo catalog (warehouses, SKUs, stock) when the data directory is empty.
    #[arg(long, env = "OMSD_DEMO")]
    pub demo: bool,
    /// Network worker threads for connections [default: 1].
    #[arg(long, env = "OMSD_IO_THREADS")]
    pub io_threads: Option<usize>,
    /// Maximum simultaneous client connections [default: 10000].
    #[arg(long, env = "OMSD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Close connections idle for this long, e.g. 5m [default: 5m].
    #[arg(long, env = "OMSD_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Capacity of each partition's command queue; a full queue answers BUSY [default: 65536].
    #[arg(long, env = "OMSD_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,
    /// Log segment size in bytes, a multiple of 4096 [default: 67108864].
    #[arg(long, env = "OMSD_SEGMENT_BYTES")]
    pub segment_bytes: Option<u64>,
    /// Write a snapshot after this many logged commands per partition [default: 1000000].
    #[arg(long, env = "OMSD_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Log segments covered by a snapshot are deleted once they are this old (and at least two
    /// segments' worth of log remains), e.g. 1h; a follower or subscriber further behind catches
    /// up from a snapshot [default: 1h].
    #[arg(long, env = "OMSD_LOG_RETENTION", value_parser = humantime::parse_duration)]
    pub log_retention: Option<Duration>,
    /// Recovery: cut the log at mid-log corruption instead of refusing to start (loses the
    /// records after the damage; use only after reading `oms wal verify`).
    #[arg(long)]
    pub truncate_corrupt_log: bool,
    /// With no api_keys configured, accept clients from any address (with full ops access)
    /// instead of loopback only. Without it, a --listen address that is not loopback is refused
    /// at start unless api_keys are configured. For a trusted private network only.
    #[arg(long, env = "OMSD_ALLOW_UNAUTHENTICATED_REMOTE")]
    pub allow_unauthenticated_remote: bool,
    /// Follow this primary (host:port): replicate its log into this server's own log and serve
    /// reads only (writes are answered read_only) until `oms admin promote`.
    #[arg(long, env = "OMSD_FOLLOW", value_name = "PRIMARY_ADDR")]
    pub follow: Option<String>,
    /// API key (reader or ops role) this follower sends to the primary.
    #[arg(long, env = "OMSD_FOLLOW_API_KEY", hide_env_values = true)]
    pub follow_api_key: Option<String>,
    /// Serve the storefront port over TLS only, with this PEM certificate chain (leaf first);
    /// needs --tls-key. /metrics stays plain HTTP.
    #[arg(long, env = "OMSD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "OMSD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Close a connection that has not completed its TLS handshake and Hello within this long,
    /// e.g. 10s [default: 10s].
    #[arg(long, env = "OMSD_HANDSHAKE_TIMEOUT", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub handshake_timeout: Option<Duration>,
    /// Connect to the --follow primary over TLS, trusting only the PEM certificate(s) in FILE.
    #[arg(long, env = "OMSD_FOLLOW_TLS_CA", value_name = "FILE")]
    pub follow_tls_ca: Option<PathBuf>,
    /// Connect to the --follow primary over TLS, trusting the public web PKI roots.
    #[arg(long, env = "OMSD_FOLLOW_TLS")]
    pub follow_tls: bool,
    /// Name the primary's certificate must carry [default: the host of --follow].
    #[arg(long, env = "OMSD_FOLLOW_TLS_SERVER_NAME", value_name = "NAME")]
    pub follow_tls_server_name: Option<String>,
    /// Followers counted for --ack-after-replica (their acknowledged LSNs are in /metrics either
    /// way) [default: 0].
    #[arg(long, env = "OMSD_REPLICAS", value_name = "N")]
    pub replicas: Option<u32>,
    /// Answer a write only once --replicas N followers hold its log record durably; with fewer
    /// followers, writes wait and are answered replica_timeout (never acknowledged locally).
    /// Needs --replicas >= 1; applies after promotion when given to a follower.
    #[arg(long, env = "OMSD_ACK_AFTER_REPLICA")]
    pub ack_after_replica: bool,
    /// How long --ack-after-replica holds an answer before answering replica_timeout, e.g. 5s
    /// [default: 5s].
    #[arg(long, env = "OMSD_REPLICA_ACK_TIMEOUT", value_parser = humantime::parse_duration)]
    pub replica_ack_timeout: Option<Duration>,
    /// Log lines on stderr: text for people, json (one object per line) for log pipelines
    /// [default: text]. The level filter is OMSD_LOG (e.g. info, omsd=debug).
    #[arg(long, env = "OMSD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl OmsdArgs {
    /// The log format from the flag, the environment or the config file (read before anything
    /// else so the first log line already has the right format). A file that cannot be read is
    /// reported by `Config::resolve` right after.
    pub fn log_format(&self) -> LogFormat {
        if let Some(format) = self.log_format {
            return format;
        }
        self.config
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| toml::from_str::<FileConfig>(&text).ok())
            .and_then(|file| file.log_format)
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub console_listen: Option<SocketAddr>,
    pub console_time_zone: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub partitions: Option<u32>,
    pub fsync: Option<String>,
    pub demo: Option<bool>,
    pub io_threads: Option<usize>,
    pub max_connections: Option<usize>,
    pub idle_timeout: Option<String>,
    pub queue_capacity: Option<usize>,
    pub segment_bytes: Option<u64>,
    pub snapshot_every: Option<u64>,
    pub log_retention: Option<String>,
    pub max_frame_bytes: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub max_lines: Option<usize>,
    pub tick_interval_ms: Option<u64>,
    pub expiry_budget_per_tick: Option<u32>,
    pub batch_limit: Option<usize>,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    pub allow_unauthenticated_remote: Option<bool>,
    pub follow: Option<String>,
    pub follow_api_key: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub handshake_timeout: Option<String>,
    pub follow_tls_ca: Option<PathBuf>,
    pub follow_tls: Option<bool>,
    pub follow_tls_server_name: Option<String>,
    pub replicas: Option<u32>,
    pub ack_after_replica: Option<bool>,
    pub replica_ack_timeout: Option<String>,
    pub log_format: Option<LogFormat>,
    /// `[[webhooks]]`: see `notify::WebhookConfig`.
    #[serde(default)]
    pub webhooks: Vec<crate::notify::WebhookConfig>,
    /// `[[shops]]`: marketplace shops (`oms_connectors::ShopConfig`, docs/CHANNELS.md).
    #[serde(default)]
    pub shops: Vec<oms_connectors::ShopConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who the key belongs to (logged instead of the key). It is also the scope of the
    /// idempotency keys sent with the key: two entries with the same name (a key being rotated)
    /// share them.
    pub name: String,
    /// At least [`API_KEY_MIN_BYTES`] bytes; each key listed once.
    pub key: String,
    pub role: Role,
}

/// Shortest API key accepted at start, in bytes (16 bytes: 128 bits when random; e.g. the 32 hex
/// digits of `openssl rand -hex 16`).
pub const API_KEY_MIN_BYTES: usize = 16;

/// The resolved configuration the daemon runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// The HTTP/JSON API (`http/`).
    pub http_listen: SocketAddr,
    /// The web console (`console/`).
    pub console_listen: SocketAddr,
    /// IANA time zone name the console shows times in.
    pub console_time_zone: String,
    pub data_dir: PathBuf,
    pub partitions: u32,
    pub durability: oms_wal::Durability,
    pub demo: bool,
    pub io_threads: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub queue_capacity: usize,
    pub segment_bytes: u64,
    pub snapshot_every: u64,
    /// Minimum age of a log segment before retention may delete it.
    pub log_retention: Duration,
    pub max_frame_bytes: u32,
    pub max_in_flight: u32,
    pub max_lines: usize,
    pub tick_interval: Duration,
    pub expiry_budget_per_tick: u32,
    pub batch_limit: usize,
    pub truncate_corrupt_log: bool,
    pub api_keys: Vec<ApiKeyConfig>,
    /// No API keys and clients from any address (explicit opt-in).
    pub allow_unauthenticated_remote: bool,
    /// Primary to follow (replication), if any.
    pub follow: Option<String>,
    pub follow_api_key: Option<String>,
    /// `--replicas N`: followers whose acknowledgements count.
    pub replicas: u32,
    /// `--ack-after-replica`: hold answers until `replicas` followers have the records.
    pub ack_after_replica: bool,
    pub replica_ack_timeout: Duration,
    /// Webhooks for committed events (`notify/`).
    pub webhooks: Vec<crate::notify::WebhookConfig>,
    /// Marketplace shops, resolved (secrets read, mapping files loaded).
    pub shops: Vec<oms_connectors::ShopSettings>,
    /// TLS on the storefront port: (certificate chain, key) PEM paths; loaded at start.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bound on TLS handshake + Hello for a new connection.
    pub handshake_timeout: Duration,
    /// TLS towards the followed primary, if any.
    pub follow_tls: Option<FollowTls>,
}

/// How a follower reaches a TLS primary.
#[derive(Clone, Debug)]
pub struct FollowTls {
    /// Trust only these certificates; `None`: the public web PKI roots.
    pub ca: Option<PathBuf>,
    pub server_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid --fsync {0:?}: expected always, interval=<ms> or off")]
    Fsync(String),
    #[error("invalid idle_timeout {0:?}")]
    IdleTimeout(String),
    #[error("invalid handshake_timeout {0:?}")]
    HandshakeTimeout(String),
    #[error("invalid log_retention {0:?}")]
    LogRetention(String),
    #[error("invalid replica_ack_timeout {0:?}")]
    ReplicaAckTimeout(String),
    #[error("partitions must be between 1 and {max}, got {got}")]
    Partitions { got: u32, max: u32 },
    #[error("{0}")]
    Invalid(&'static str),
    #[error("invalid console_time_zone {0:?}: expected an IANA time zone name such as Asia/Shanghai or UTC")]
    TimeZone(String),
    #[error("invalid api_keys: {0}")]
    ApiKey(String),
    #[error("{flag} {listen} is not a loopback address and no api_keys are configured, so anyone who can reach it would have full (ops) access: configure [[api_keys]], listen on 127.0.0.1, or pass --allow-unauthenticated-remote (OMSD_ALLOW_UNAUTHENTICATED_REMOTE, allow_unauthenticated_remote in the config file) for a trusted private network")]
    UnauthenticatedRemote { flag: &'static str, listen: SocketAddr },
    #[error(transparent)]
    Webhook(#[from] crate::notify::WebhookError),
    #[error(transparent)]
    Shop(#[from] oms_connectors::ShopConfigError),
}

impl Config {
    pub fn resolve(args: &OmsdArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|source| ConfigError::Parse { path: path.clone(), source })?
            }
            None => FileConfig::default(),
        };
        let fsync = args.fsync.clone().or(file.fsync.clone()).unwrap_or_else(|| "always".to_owned());
        let durability = fsync.parse::<oms_wal::Durability>().map_err(|_| ConfigError::Fsync(fsync.clone()))?;
        let idle_timeout = match (args.idle_timeout, &file.idle_timeout) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                humantime::parse_duration(text).map_err(|_| ConfigError::IdleTimeout(text.clone()))?
            }
            (None, None) => Duration::from_secs(300),
        };
        let handshake_timeout = match (args.handshake_timeout, &file.handshake_timeout) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                humantime::parse_duration(text).map_err(|_| ConfigError::HandshakeTimeout(text.clone()))?
            }
            (None, None) => Duration::from_secs(10),
        };
        if handshake_timeout.is_zero() {
            return Err(ConfigError::HandshakeTimeout("0".to_owned()));
        }
        let tls = match (args.tls_cert.clone().or(file.tls_cert), args.tls_key.clone().or(file.tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(ConfigError::Invalid("tls_cert and tls_key must be set together")),
        };
        let follow_tls_ca = args.follow_tls_ca.clone().or(file.follow_tls_ca);
        let follow_tls_server_name = args.follow_tls_server_name.clone().or(file.follow_tls_server_name);
        let follow_tls = if follow_tls_ca.is_some() || args.follow_tls || file.follow_tls.unwrap_or(false) {
            Some(FollowTls { ca: follow_tls_ca, server_name: follow_tls_server_name })
        } else if follow_tls_server_name.is_some() {
            return Err(ConfigError::Invalid("follow_tls_server_name needs follow_tls_ca or follow_tls"));
        } else {
            None
        };
        let replica_ack_timeout = match (args.replica_ack_timeout, &file.replica_ack_timeout) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                humantime::parse_duration(text).map_err(|_| ConfigError::ReplicaAckTimeout(text.clone()))?
            }
            (None, None) => Duration::from_secs(5),
        };
        let log_retention = match (args.log_retention, &file.log_retention) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                humantime::parse_duration(text).map_err(|_| ConfigError::LogRetention(text.clone()))?
            }
            (None, None) => Duration::from_secs(3600),
        };
        // Relative paths in [[shops]] (secret files, mapping files) are read from the config
        // file's directory.
        let base = args.config.as_deref().and_then(std::path::Path::parent);
        let shops = oms_connectors::resolve_shops(&file.shops, base)?;
        let partitions = args.partitions.or(file.partitions).unwrap_or(2);
        let max = oms_engine::routing::MAX_PARTITIONS;
        if !(1..=max).contains(&partitions) {
            return Err(ConfigError::Partitions { got: partitions, max });
        }
        let config = Config {
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7700))),
            admin_listen: args
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7701))),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7702))),
            console_listen: args
                .console_listen
                .or(file.console_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7703))),
            console_time_zone: args
                .console_time_zone
                .clone()
                .or(file.console_time_zone.clone())
                .unwrap_or_else(|| "Asia/Shanghai".to_owned()),
            data_dir: args.data_dir.clone().or(file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("data")),
            partitions,
            durability,
            demo: args.demo || file.demo.unwrap_or(false),
            io_threads: args.io_threads.or(file.io_threads).unwrap_or(1).max(1),
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(10_000).max(1),
            idle_timeout,
            queue_capacity: args.queue_capacity.or(file.queue_capacity).unwrap_or(65_536).max(16),
            segment_bytes: args.segment_bytes.or(file.segment_bytes).unwrap_or(64 << 20),
            snapshot_every: args.snapshot_every.or(file.snapshot_every).unwrap_or(1_000_000).max(1),
            log_retention,
            max_frame_bytes: file.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES),
            max_in_flight: file.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT).max(1),
            max_lines: file.max_lines.unwrap_or(64).clamp(1, 1024),
            tick_interval: Duration::from_millis(file.tick_interval_ms.unwrap_or(100).max(1)),
            expiry_budget_per_tick: file.expiry_budget_per_tick.unwrap_or(4_096).max(1),
            batch_limit: file.batch_limit.unwrap_or(4096).max(1),
            truncate_corrupt_log: args.truncate_corrupt_log,
            api_keys: file.api_keys,
            allow_unauthenticated_remote: args.allow_unauthenticated_remote
                || file.allow_unauthenticated_remote.unwrap_or(false),
            follow: args.follow.clone().or(file.follow),
            follow_api_key: args.follow_api_key.clone().or(file.follow_api_key),
            replicas: args.replicas.or(file.replicas).unwrap_or(0),
            ack_after_replica: args.ack_after_replica || file.ack_after_replica.unwrap_or(false),
            replica_ack_timeout,
            webhooks: file.webhooks,
            shops,
            tls,
            handshake_timeout,
            follow_tls,
        };
        for hook in &config.webhooks {
            crate::notify::validate(hook)?;
        }
        if config.ack_after_replica && config.replicas == 0 {
            return Err(ConfigError::Invalid("--ack-after-replica needs --replicas N with N >= 1"));
        }
        if config.replica_ack_timeout.is_zero() {
            return Err(ConfigError::Invalid("replica_ack_timeout must be positive"));
        }
        if config.max_frame_bytes < 4096 {
            return Err(ConfigError::Invalid("max_frame_bytes must be at least 4096"));
        }
        check_api_keys(&config.api_keys)?;
        if !is_time_zone_name(&config.console_time_zone) {
            return Err(ConfigError::TimeZone(config.console_time_zone));
        }
        // The request ports (binary, HTTP and the console) share the keys and this rule.
        let listens = [
            ("--listen", config.listen),
            ("--http-listen", config.http_listen),
            ("--console-listen", config.console_listen),
        ];
        for (flag, listen) in listens {
            if config.api_keys.is_empty() && !listen.ip().is_loopback() && !config.allow_unauthenticated_remote {
                return Err(ConfigError::UnauthenticatedRemote { flag, listen });
            }
        }
        Ok(config)
    }
}

/// The shape of an IANA time zone name (`Asia/Shanghai`, `America/Argentina/Buenos_Aires`,
/// `Etc/GMT+8`, `UTC`). Whether the zone exists is the browser's to know; the console falls back
/// to Asia/Shanghai for a name its browser does not know.
fn is_time_zone_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .split('/')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b)))
}

/// Every key long enough and listed once, every entry named. Messages name the entry (its
/// position and name), never the key.
fn check_api_keys(keys: &[ApiKeyConfig]) -> Result<(), ConfigError> {
    for (i, entry) in keys.iter().enumerate() {
        let n = i + 1;
        if entry.name.trim().is_empty() {
            return Err(ConfigError::ApiKey(format!(
                "entry {n} has an empty name (the name is what logs show and scopes its idempotency keys)"
            )));
        }
        if entry.key.len() < API_KEY_MIN_BYTES {
            return Err(ConfigError::ApiKey(format!(
                "entry {n} ({:?}) has a key of {} bytes; keys must be at least {API_KEY_MIN_BYTES} bytes (e.g. `openssl rand -hex 16`)",
                entry.name,
                entry.key.len()
            )));
        }
        if let Some((j, first)) = keys[..i].iter().enumerate().find(|(_, e)| e.key == entry.key) {
            return Err(ConfigError::ApiKey(format!(
                "entries {} ({:?}) and {n} ({:?}) hold the same key; list each key once (only the first entry's role could ever apply)",
                j + 1,
                first.name,
                entry.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_zone_names() {
        // Checks which console_time_zone values pass the shape check: IANA names with areas,
        // underscores and signs pass; empty parts, spaces, dots and over-long names are refused.
        for good in ["Asia/Shanghai", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+8", "America/Port-au-Prince"] {
            assert!(super::is_time_zone_name(good), "{good}");
        }
        for bad in ["", "Asia/", "/UTC", "Asia//Shanghai", "Asia/Shang hai", "../etc/passwd", &"A".repeat(65)] {
            assert!(!super::is_time_zone_name(bad), "{bad}");
        }
    }
}
