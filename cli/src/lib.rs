//! `oms-cli`: the `oms` command-line tool for omsd, built on `oms-client` (docs/CLI.md): argument
//! definitions (clap derive) and command execution. It also reads log files directly
//! (`oms wal`) and replays subscribed logs into replica partitions (`oms log tail`).
//!
//! It must not know the server's internals: everything it asks a server goes through the wire
//! protocol (`oms-proto`) like any other client.
//!
//! Exit codes: 0 success; 1 the server refused (reason on stderr, and a JSON document on stdout
//! with `--json`) or a check found problems; 2 usage error; 3 the server could not be reached or
//! the connection broke.

pub mod catalog;
pub mod channels;
pub mod label;
pub mod log;
pub mod orders;
pub mod parse;
pub mod shops;
pub mod wal;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use oms_client::{Client, ClientError, ClientOptions};
use oms_proto::json::{self as wire, SkuKey, StockOp, WarehouseKey};
use oms_proto::{Line, ReservationView, Reserve, SkuRef, StockView, WireError};
use parse::{ExceptionArg, LineArg, TimeSpec};

pub const EXIT_OK: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CONNECTION: u8 = 3;

#[derive(Parser, Debug)]
#[command(name = "oms", version, about = "Command-line client for omsd, the order and stock-reservation engine", long_about = None)]
pub struct Cli {
    /// Address of omsd's client port (host:port)
    #[arg(long, global = true, env = "OMS_SERVER", default_value = "127.0.0.1:7700", value_name = "ADDR")]
    pub server: String,
    /// API key sent in the handshake
    #[arg(long, global = true, env = "OMS_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Print one machine-readable JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up on a connection attempt or request after this long (e.g. 5s, 1m)
    #[arg(long, global = true, default_value = "30s", value_parser = parse::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Connect over TLS, trusting the public web PKI roots (see --tls-ca for a private server)
    #[arg(long, global = true, env = "OMS_TLS")]
    pub tls: bool,
    /// Connect over TLS, trusting only the PEM certificate(s) in FILE (the server's CA or its
    /// self-signed certificate)
    #[arg(long, global = true, env = "OMS_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Name the server's certificate must carry [default: the host part of --server]
    #[arg(long, global = true, env = "OMS_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read stock levels and change stock (set, receive, adjust, transfer, buckets, export)
    #[command(subcommand)]
    Stock(StockCmd),
    /// Load warehouses, SKUs, kits and stock from a JSON or CSV file
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Reserve stock for a cart; prints the reservation id and the warehouse of each line
    Reserve(ReserveArgs),
    /// Confirm a held reservation (the order was paid)
    Confirm(ReservationArg),
    /// Release a reservation, returning its stock
    Release(ReservationArg),
    /// Mark a confirmed reservation as shipped (stock leaves the warehouse)
    Ship(ReservationArg),
    /// Record the balance payment of a presale reservation
    PayBalance(ReservationArg),
    /// Inspect reservations
    #[command(subcommand)]
    Reservation(ReservationCmd),
    /// Create and inspect flash sales and presales
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// Purchase orders: announce incoming stock and receive it
    #[command(subcommand)]
    Incoming(IncomingCmd),
    /// Per-channel stock policies
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// Print the server's consistency audit; exits 1 if it is not clean
    Audit,
    /// Check that the server answers; prints what it announced in the handshake
    Ping,
    /// Offline inspection of a data directory's write-ahead logs (no server needed)
    #[command(subcommand)]
    Wal(WalCmd),
    /// Read the replicated log as events (`oms log tail`)
    #[command(subcommand)]
    Log(log::LogCmd),
    /// Replication administration (`oms admin promote`)
    #[command(subcommand)]
    Admin(log::AdminCmd),
    /// Orders: import channel payloads, read, approve, reject, cancel, allocate
    #[command(subcommand)]
    Order(orders::OrderCmd),
    /// Pick waves: group allocated shipments of a warehouse, show pick lists
    #[command(subcommand)]
    Wave(orders::WaveCmd),
    /// Shipments: pack, ship, deliver
    #[command(subcommand)]
    Shipment(orders::ShipmentCmd),
    /// Carrier tracking events
    #[command(subcommand)]
    Track(orders::TrackCmd),
    /// After-sales: returns, exchanges, refunds
    #[command(subcommand)]
    Aftersale(orders::AfterSaleCmd),
    /// Order rules (audit, routing, carriers) from a TOML file
    #[command(subcommand)]
    Rules(orders::RulesCmd),
    /// Shipping labels
    #[command(subcommand)]
    Waybill(orders::WaybillCmd),
    /// Marketplace shops: list, status, force a full stock sync
    #[command(subcommand)]
    Shop(shops::ShopCmd),
}

#[derive(Args, Debug)]
pub struct ReservationArg {
    /// Reservation id (as printed by `oms reserve`)
    pub reservation: u64,
}

#[derive(Subcommand, Debug)]
pub enum StockCmd {
    /// Show on-hand, reserved and available units, in total and per warehouse
    Get {
        /// SKU code
        sku: String,
    },
    /// Set the counted on-hand quantity of a SKU in one warehouse
    Set {
        /// SKU code
        sku: String,
        /// Warehouse code (e.g. SH) or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// New on-hand quantity
        #[arg(long, value_name = "N")]
        on_hand: u64,
    },
    /// Add received units to a warehouse (goods in without a purchase order)
    Receive {
        /// SKU code
        sku: String,
        /// Warehouse code (e.g. SH) or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// Units received
        #[arg(long, value_name = "N")]
        qty: u32,
    },
    /// Correct on-hand by a signed delta (e.g. --delta=-3 after a count)
    Adjust {
        /// SKU code
        sku: String,
        /// Warehouse code (e.g. SH) or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// Units to add (negative to remove); write negative values as --delta=-3
        #[arg(long, allow_negative_numbers = true, value_name = "N")]
        delta: i64,
    },
    /// Move units from one warehouse to another
    Transfer {
        /// SKU code
        sku: String,
        /// Source warehouse code or id
        #[arg(long, value_name = "WH")]
        from: String,
        /// Destination warehouse code or id
        #[arg(long, value_name = "WH")]
        to: String,
        /// Units to move
        #[arg(long, value_name = "N")]
        qty: u32,
    },
    /// Set a non-sellable bucket (safety stock, damaged, quality control) in one warehouse
    Bucket {
        /// SKU code
        sku: String,
        /// Warehouse code (e.g. SH) or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// Bucket: safety, damaged or qc
        #[arg(long, value_parser = parse::parse_bucket, value_name = "BUCKET")]
        bucket: u8,
        /// Units in that bucket
        #[arg(long, value_name = "N")]
        qty: u64,
    },
    /// Put returned units back on hand (or into the damaged bucket with --damaged)
    Return {
        /// SKU code
        sku: String,
        /// Warehouse code (e.g. SH) or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// Units returned
        #[arg(long, value_name = "N")]
        qty: u32,
        /// The returned units are damaged (not sellable)
        #[arg(long)]
        damaged: bool,
    },
    /// List every SKU with its available quantity
    Export,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCmd {
    /// Load a catalog file (idempotent: defines are upserts and stock uses set-on-hand).
    ///
    /// The format is chosen by extension.
    ///
    /// JSON (.json), every section optional:
    ///   {"warehouses":[{"id":1,"code":"SH","region":"east","priority":0}],
    ///    "skus":[{"code":"TSHIRT-RED-XL","low_stock_threshold":5}],
    ///    "kits":[{"code":"GIFT-BOX","components":[{"sku":"MUG-WHT","qty":1}]}],
    ///    "stock":[{"sku":"TSHIRT-RED-XL","warehouse":1,"on_hand":100}]}
    ///
    /// CSV (.csv), one row per SKU x warehouse, with a header:
    ///   sku,warehouse,on_hand[,low_stock_threshold]
    ///   TSHIRT-RED-XL,1,100,5
    /// Warehouses the server does not know are defined with code "WH<id>"; SKUs it does not know
    /// are defined (threshold from the optional column, else 0).
    #[command(verbatim_doc_comment)]
    Load {
        /// Catalog file (.json or .csv)
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ReserveArgs {
    /// A cart line as SKU:QTY; repeat for several lines
    #[arg(long = "line", required = true, value_parser = parse::parse_line, value_name = "SKU:QTY")]
    pub lines: Vec<LineArg>,
    /// How long the hold lasts before it expires (900s, 15m, 2h, 1d)
    #[arg(long, default_value = "15m", value_parser = parse::parse_ttl, value_name = "DURATION")]
    pub ttl: Duration,
    /// Idempotency key: retrying with the same key returns the same reservation
    #[arg(long, value_name = "IDEMPOTENCY_KEY")]
    pub key: Option<String>,
    /// Customer id (used for per-customer campaign limits)
    #[arg(long, default_value_t = 0, value_name = "ID")]
    pub customer: u64,
    /// Sales channel: own, taobao, jd, douyin, or a number
    #[arg(long, default_value = "own", value_parser = channels::parse_channel, value_name = "NAME")]
    pub channel: u16,
    /// Reserve from this flash sale or presale campaign
    #[arg(long, value_name = "ID")]
    pub campaign: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum ReservationCmd {
    /// Show a reservation: status, customer, allocations, expiry
    Get(ReservationArg),
}

#[derive(Subcommand, Debug)]
pub enum CampaignCmd {
    /// Create a flash sale or a presale
    #[command(subcommand)]
    Create(CampaignCreate),
    /// Show a campaign: remaining units, open or closed, window
    Get {
        /// Campaign id
        id: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum CampaignCreate {
    /// A flash sale: a pool of units set aside for the sale, with a per-customer limit
    FlashSale {
        /// Campaign id (chosen by you, unique)
        #[arg(long, value_name = "N")]
        id: u32,
        /// SKU code on sale
        #[arg(long, value_name = "SKU")]
        sku: String,
        /// Units set aside for the sale
        #[arg(long, value_name = "N")]
        pool: u32,
        /// Most units one customer may hold
        #[arg(long, value_name = "N")]
        limit: u32,
        /// Start: RFC 3339 time, `now`, or +DURATION from now
        #[arg(long, default_value = "now", value_parser = parse::parse_time, value_name = "TIME")]
        starts: TimeSpec,
        /// End: RFC 3339 time, or +DURATION from the start (e.g. +2h)
        #[arg(long, default_value = "+1d", value_parser = parse::parse_time, value_name = "TIME")]
        ends: TimeSpec,
    },
    /// A presale: deposits now against a quota, balance paid within a window
    Presale {
        /// Campaign id (chosen by you, unique)
        #[arg(long, value_name = "N")]
        id: u32,
        /// SKU code on presale
        #[arg(long, value_name = "SKU")]
        sku: String,
        /// Units that may be sold
        #[arg(long, value_name = "N")]
        quota: u32,
        /// Most units one customer may hold
        #[arg(long, value_name = "N")]
        limit: u32,
        /// Time the buyer has to pay the balance (e.g. 7d)
        #[arg(long, value_parser = parse::parse_duration, value_name = "DURATION")]
        balance_window: Duration,
        /// Start: RFC 3339 time, `now`, or +DURATION from now
        #[arg(long, default_value = "now", value_parser = parse::parse_time, value_name = "TIME")]
        starts: TimeSpec,
        /// End: RFC 3339 time, or +DURATION from the start (e.g. +7d)
        #[arg(long, default_value = "+7d", value_parser = parse::parse_time, value_name = "TIME")]
        ends: TimeSpec,
    },
}

#[derive(Subcommand, Debug)]
pub enum IncomingCmd {
    /// Announce units arriving on a purchase order
    Expect {
        /// Purchase order number
        #[arg(long, value_name = "N")]
        po: u64,
        /// SKU code
        sku: String,
        /// Receiving warehouse code or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// Units expected
        #[arg(long, value_name = "N")]
        qty: u32,
        /// Expected arrival: RFC 3339 time or +DURATION from now
        #[arg(long, value_parser = parse::parse_time, value_name = "TIME")]
        eta: TimeSpec,
    },
    /// Move an announced purchase order's arrival time
    Reschedule {
        /// Purchase order number
        #[arg(long, value_name = "N")]
        po: u64,
        /// SKU code
        sku: String,
        /// New expected arrival: RFC 3339 time or +DURATION from now
        #[arg(long, value_parser = parse::parse_time, value_name = "TIME")]
        eta: TimeSpec,
    },
    /// Receive units of a purchase order into stock
    Receive {
        /// Purchase order number
        #[arg(long, value_name = "N")]
        po: u64,
        /// SKU code
        sku: String,
        /// Units received
        #[arg(long, value_name = "N")]
        qty: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChannelCmd {
    /// Set how much stock a channel may sell: a share of available stock, with a floor
    Set {
        /// Channel: own, taobao, jd, douyin, or a number
        #[arg(value_parser = channels::parse_channel, value_name = "NAME")]
        channel: u16,
        /// Share of available stock the channel may sell (0.3 or 30%)
        #[arg(long, value_parser = parse::parse_ratio_bp, value_name = "RATIO")]
        ratio: u32,
        /// Units the channel may always sell regardless of the ratio
        #[arg(long, default_value_t = 0, value_name = "N")]
        floor: u32,
        /// Per-SKU override as SKU:RATIO:CAP; repeat for several
        #[arg(long = "exception", value_parser = parse::parse_exception, value_name = "SKU:RATIO:CAP")]
        exceptions: Vec<ExceptionArg>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WalCmd {
    /// Print every log record (one JSON object per line with --json)
    Dump {
        /// omsd data directory (contains p0/wal, p1/wal, ...)
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// First LSN to print (per partition)
        #[arg(long, default_value_t = 0, value_name = "LSN")]
        from: u64,
    },
    /// Check every partition's log; exits 1 if any problem is found
    Verify {
        /// omsd data directory (contains p0/wal, p1/wal, ...)
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Wal(#[from] wal::WalCliError),
    /// The command ran but reports a problem (audit not clean, WAL problems); already printed.
    #[error("{0}")]
    Problems(String),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Tls(#[from] oms_client::tls::TlsError),
    #[error(transparent)]
    Label(#[from] crate::label::LabelError),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        let client = match self {
            CliError::Client(e) => Some(e),
            CliError::Catalog(e) => e.client_error(),
            _ => None,
        };
        match (self, client) {
            (_, Some(e)) if e.is_connection() => EXIT_CONNECTION,
            (CliError::Usage(_) | CliError::Tls(_), _) => EXIT_USAGE,
            (CliError::Label(crate::label::LabelError::Size(_) | crate::label::LabelError::Dpi(_)), _) => EXIT_USAGE,
            _ => EXIT_REFUSED,
        }
    }

    fn wire_error(&self) -> Option<&WireError> {
        match self {
            CliError::Client(e) => e.wire_error(),
            CliError::Catalog(e) => e.client_error().and_then(ClientError::wire_error),
            _ => None,
        }
    }
}

pub fn wire_error_json(e: &WireError) -> Value {
    json!({
        "code": e.code,
        "name": e.name,
        "message": e.message,
        "available": e.available,
        "sku": e.sku,
        "sku_id": e.sku_id,
        "warehouse": e.warehouse,
    })
}

/// Parse the process arguments, run, and turn the outcome into an exit code.
pub async fn main_with(cli: Cli) -> ExitCode {
    let as_json = cli.json;
    match run(cli).await {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            report_error(&e, as_json);
            ExitCode::from(e.exit_code())
        }
    }
}

fn report_error(e: &CliError, as_json: bool) {
    if matches!(e, CliError::Problems(_)) {
        eprintln!("oms: {e}");
        return;
    }
    let mut line = format!("oms: {e}");
    if let Some(w) = e.wire_error() {
        if let Some(available) = w.available {
            line.push_str(&format!(" (available: {available})"));
        }
    }
    eprintln!("{line}");
    if as_json {
        let error = match e.wire_error() {
            Some(w) => wire_error_json(w),
            None => json!({ "message": e.to_string() }),
        };
        println!("{}", json!({ "ok": false, "error": error }));
    }
}

struct Ctx {
    server: String,
    options: ClientOptions,
    json: bool,
}

impl Ctx {
    async fn client(&self) -> Result<Client, ClientError> {
        Client::connect(self.server.clone(), self.options.clone()).await
    }

    fn print_json(&self, value: &Value) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{value}")?;
        Ok(())
    }

    /// Print `{"ok":true,...}` with --json, else the human text.
    fn done(&self, value: Value, human: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.json {
            let mut v = json!({ "ok": true });
            if let (Value::Object(out), Value::Object(extra)) = (&mut v, value) {
                out.extend(extra);
            }
            self.print_json(&v)
        } else {
            println!("{}", human());
            Ok(())
        }
    }
}

fn code(sku: &str) -> SkuKey {
    SkuKey::Code(sku.to_owned())
}

/// A warehouse argument: its id (`1`) or its code (`SH`).
fn warehouse(arg: &str) -> WarehouseKey {
    match arg.parse::<u16>() {
        Ok(id) => WarehouseKey::Id(id),
        Err(_) => WarehouseKey::Code(arg.to_owned()),
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let tls = if cli.tls || cli.tls_ca.is_some() {
        Some(oms_client::tls::ClientTls::new(cli.tls_ca.as_deref(), cli.tls_server_name.as_deref())?)
    } else if cli.tls_server_name.is_some() {
        return Err(CliError::Usage("--tls-server-name needs --tls or --tls-ca".into()));
    } else {
        None
    };
    let ctx = Ctx {
        server: cli.server,
        options: ClientOptions {
            api_key: cli.api_key,
            client_name: format!("oms-cli/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: cli.timeout,
            request_timeout: cli.timeout,
            reconnect: false,
            tls,
        },
        json: cli.json,
    };
    match cli.command {
        Command::Wal(cmd) => run_wal(&ctx, cmd),
        Command::Log(cmd) => log::run_log(&ctx, cmd).await,
        Command::Admin(cmd) => log::run_admin(&ctx, cmd).await,
        Command::Order(cmd) => orders::run_order(&ctx, cmd).await,
        Command::Wave(cmd) => orders::run_wave(&ctx, cmd).await,
        Command::Shipment(cmd) => orders::run_shipment(&ctx, cmd).await,
        Command::Track(cmd) => orders::run_track(&ctx, cmd).await,
        Command::Aftersale(cmd) => orders::run_after_sale(&ctx, cmd).await,
        Command::Rules(cmd) => orders::run_rules(&ctx, cmd).await,
        Command::Waybill(cmd) => orders::run_waybill(&ctx, cmd).await,
        Command::Shop(cmd) => shops::run_shop(&ctx, cmd).await,
        Command::Stock(cmd) => run_stock(&ctx, cmd).await,
        Command::Catalog(CatalogCmd::Load { file }) => {
            let catalog = catalog::read_catalog(&file)?;
            let client = ctx.client().await?;
            let summary = catalog::load(&client, &catalog).await?;
            let value = serde_json::to_value(&summary).unwrap_or(Value::Null);
            ctx.done(value, || {
                format!(
                    "loaded {}: {} warehouses ({} auto-defined), {} skus, {} kits, {} stock rows",
                    file.display(),
                    summary.warehouses,
                    summary.warehouses_auto_defined,
                    summary.skus,
                    summary.kits,
                    summary.stock
                )
            })
        }
        Command::Reserve(args) => run_reserve(&ctx, args).await,
        Command::Confirm(r) => lifecycle(&ctx, "confirm", r.reservation).await,
        Command::Release(r) => lifecycle(&ctx, "release", r.reservation).await,
        Command::Ship(r) => lifecycle(&ctx, "ship", r.reservation).await,
        Command::PayBalance(r) => lifecycle(&ctx, "pay-balance", r.reservation).await,
        Command::Reservation(ReservationCmd::Get(r)) => {
            let client = ctx.client().await?;
            let view = client.reservation(r.reservation).await?;
            if ctx.json {
                return ctx.print_json(&serde_json::to_value(&view).unwrap_or(Value::Null));
            }
            print_reservation(&view);
            Ok(())
        }
        Command::Campaign(cmd) => run_campaign(&ctx, cmd).await,
        Command::Incoming(cmd) => run_incoming(&ctx, cmd).await,
        Command::Channel(ChannelCmd::Set { channel, ratio, floor, exceptions }) => {
            let client = ctx.client().await?;
            let exceptions = exceptions
                .iter()
                .map(|e| wire::ChannelException { sku: code(&e.sku), ratio_bp: e.ratio_bp, cap: e.cap })
                .collect();
            client.set_channel_policy(wire::SetChannelPolicy { channel, ratio_bp: ratio, floor, exceptions }).await?;
            let name = channels::channel_name(channel).map_or_else(|| channel.to_string(), str::to_owned);
            ctx.done(json!({ "channel": channel, "ratio_bp": ratio, "floor": floor }), || {
                format!("channel {name}: ratio {:.2}%, floor {floor}", f64::from(ratio) / 100.0)
            })
        }
        Command::Audit => {
            let client = ctx.client().await?;
            let report = client.audit().await?;
            if ctx.json {
                ctx.print_json(&report)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_else(|_| report.to_string()));
            }
            if report.get("clean") == Some(&Value::Bool(false)) {
                return Err(CliError::Problems("audit reports problems (\"clean\": false)".into()));
            }
            Ok(())
        }
        Command::Ping => {
            let client = ctx.client().await?;
            let started = std::time::Instant::now();
            client.ping().await?;
            let rtt_us = started.elapsed().as_micros() as u64;
            let info = client.server_info();
            let value = json!({ "server": info, "rtt_us": rtt_us });
            ctx.done(value, || match info {
                Some(i) => format!(
                    "pong from {} ({}, protocol {}, {} partitions, role {}) in {rtt_us} us",
                    ctx.server, i.server, i.version, i.partitions, i.role
                ),
                None => format!("pong from {} in {rtt_us} us", ctx.server),
            })
        }
    }
}

fn parse_server_json(text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|source| ClientError::Json { what: "JSON", source })
}

fn run_wal(ctx: &Ctx, cmd: WalCmd) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cmd {
        WalCmd::Dump { data_dir, from } => wal::dump(&data_dir, from, ctx.json, &mut out, &mut std::io::stderr()),
        WalCmd::Verify { data_dir } => wal::verify(&data_dir, ctx.json, &mut out),
    };
    let problems = match result.and_then(|p| out.flush().map(|()| p).map_err(wal::WalCliError::from)) {
        Ok(p) => p,
        // The reader went away (`oms wal dump | head`): stop quietly.
        Err(wal::WalCliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if problems > 0 {
        return Err(CliError::Problems(format!("{problems} problem(s) found in the log")));
    }
    Ok(())
}

async fn run_stock(ctx: &Ctx, cmd: StockCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let (op, what, details) = match cmd {
        StockCmd::Get { sku } => {
            let view = client.stock(SkuRef::Code(&sku)).await?;
            if ctx.json {
                return ctx.print_json(&serde_json::to_value(&view).unwrap_or(Value::Null));
            }
            print_stock(&view);
            return Ok(());
        }
        StockCmd::Export => {
            let text = client.json_text(&wire::JsonRequest::ExportStock).await?;
            let value = parse_server_json(&text)?;
            if ctx.json {
                return ctx.print_json(&value);
            }
            println!("{:<8} {:<24} {:>12}", "ID", "SKU", "AVAILABLE");
            for row in value.as_array().into_iter().flatten() {
                let field = |k: &str| {
                    row.get(k).map_or_else(String::new, |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                };
                println!("{:<8} {:<24} {:>12}", field("sku"), field("code"), field("available"));
            }
            return Ok(());
        }
        StockCmd::Set { sku, warehouse: w, on_hand } => (
            StockOp::SetOnHand { sku: code(&sku), warehouse: warehouse(&w), on_hand },
            format!("{sku}: on hand in warehouse {w} set to {on_hand}"),
            json!({ "op": "set", "sku": sku, "warehouse": w, "on_hand": on_hand }),
        ),
        StockCmd::Receive { sku, warehouse: w, qty } => (
            StockOp::Receive { sku: code(&sku), warehouse: warehouse(&w), qty },
            format!("{sku}: received {qty} into warehouse {w}"),
            json!({ "op": "receive", "sku": sku, "warehouse": w, "qty": qty }),
        ),
        StockCmd::Adjust { sku, warehouse: w, delta } => (
            StockOp::Adjust { sku: code(&sku), warehouse: warehouse(&w), delta },
            format!("{sku}: on hand in warehouse {w} adjusted by {delta:+}"),
            json!({ "op": "adjust", "sku": sku, "warehouse": w, "delta": delta }),
        ),
        StockCmd::Transfer { sku, from, to, qty } => (
            StockOp::Transfer { sku: code(&sku), from: warehouse(&from), to: warehouse(&to), qty },
            format!("{sku}: moved {qty} from warehouse {from} to {to}"),
            json!({ "op": "transfer", "sku": sku, "from": from, "to": to, "qty": qty }),
        ),
        StockCmd::Bucket { sku, warehouse: w, bucket, qty } => {
            let name = ["safety", "damaged", "qc"].get(usize::from(bucket)).copied().unwrap_or("?");
            let bucket = match bucket {
                0 => wire::Bucket::Safety,
                1 => wire::Bucket::Damaged,
                2 => wire::Bucket::QualityControl,
                other => {
                    return Err(CliError::Usage(format!(
                        "bucket {other}: use 0 (safety), 1 (damaged) or 2 (quality control)"
                    )))
                }
            };
            (
                StockOp::SetBucket { sku: code(&sku), warehouse: warehouse(&w), bucket, qty },
                format!("{sku}: {name} bucket in warehouse {w} set to {qty}"),
                json!({ "op": "bucket", "sku": sku, "warehouse": w, "bucket": name, "qty": qty }),
            )
        }
        StockCmd::Return { sku, warehouse: w, qty, damaged } => (
            StockOp::ReturnToStock { sku: code(&sku), warehouse: warehouse(&w), qty, damaged },
            format!("{sku}: {qty} returned to warehouse {w}{}", if damaged { " (damaged)" } else { "" }),
            json!({ "op": "return", "sku": sku, "warehouse": w, "qty": qty, "damaged": damaged }),
        ),
    };
    client.stock_op(op).await?;
    ctx.done(details, || what)
}

fn print_stock(view: &StockView) {
    println!("{} (id {})", view.sku, view.sku_id);
    println!(
        "  on_hand {}  reserved {}  pooled {}  unavailable {}  available {}  incoming {}",
        view.on_hand, view.reserved, view.pooled, view.unavailable, view.available, view.incoming
    );
    if !view.kit.is_empty() {
        let parts: Vec<String> = view.kit.iter().map(|c| format!("{} x {}", c.qty, c.sku)).collect();
        println!("  kit of: {}", parts.join(", "));
    }
    if !view.warehouses.is_empty() {
        println!(
            "  {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>10}",
            "WAREHOUSE", "ON_HAND", "RESERVED", "POOLED", "SAFETY", "DAMAGED", "QC", "AVAILABLE"
        );
        for w in &view.warehouses {
            println!(
                "  {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>10}",
                w.warehouse, w.on_hand, w.reserved, w.pooled, w.safety, w.damaged, w.quality_control, w.available
            );
        }
    }
}

fn print_reservation(view: &ReservationView) {
    let channel = channels::channel_name(view.channel).map_or_else(|| view.channel.to_string(), str::to_owned);
    println!("reservation {}: {}", view.id, view.status);
    println!(
        "  customer {}  channel {channel}  campaign {}",
        view.customer,
        view.campaign.map_or("-".into(), |c| c.to_string())
    );
    println!("  created {}  expires {}", fmt_ms(view.created_at_ms), fmt_ms(view.expires_at_ms));
    if view.presale_outstanding > 0 {
        println!("  presale balance outstanding: {}", view.presale_outstanding);
    }
    if let Some(p) = view.promise_ms {
        println!("  promised by {}", fmt_ms(p));
    }
    for a in &view.allocations {
        println!("  {:<24} warehouse {:<8} qty {}", a.sku, a.warehouse, a.qty);
    }
    for part in &view.parts {
        println!("  part in partition {}: {}", part.partition, part.status);
    }
}

pub(crate) fn fmt_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

async fn run_reserve(ctx: &Ctx, args: ReserveArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let lines: Vec<Line<'_>> = args.lines.iter().map(|l| Line::code(&l.sku, l.qty)).collect();
    let ttl_ms = args.ttl.as_millis().min(u128::from(u64::MAX)) as u64;
    let request = Reserve::new(&lines, ttl_ms)
        .key(args.key.as_deref().unwrap_or_default())
        .customer(args.customer)
        .channel(args.channel)
        .campaign(args.campaign);
    let reserved = client.reserve(&request).await?;
    if ctx.json {
        return ctx.print_json(&json!({
            "ok": true,
            "id": reserved.id,
            "expires_at_ms": reserved.expires_at_ms,
            "replayed": reserved.replayed,
            "promise_ms": reserved.promise_ms,
            "allocations": reserved.allocations,
        }));
    }
    let replayed = if reserved.replayed { " (replayed: this key was already used)" } else { "" };
    println!("reserved {}{replayed}, expires {}", reserved.id, fmt_ms(reserved.expires_at_ms));
    if let Some(p) = reserved.promise_ms {
        println!("  promised by {}", fmt_ms(p));
    }
    for a in &reserved.allocations {
        println!("  {}  qty {}  warehouse {}", a.sku, a.qty, a.warehouse);
    }
    Ok(())
}

async fn lifecycle(ctx: &Ctx, action: &'static str, id: u64) -> Result<(), CliError> {
    let client = ctx.client().await?;
    match action {
        "confirm" => client.confirm(id).await?,
        "release" => client.release(id).await?,
        "ship" => client.ship(id).await?,
        _ => client.pay_balance(id).await?,
    }
    let past = match action {
        "confirm" => "confirmed",
        "release" => "released",
        "ship" => "shipped",
        _ => "balance paid",
    };
    ctx.done(json!({ "id": id, "action": action }), || format!("reservation {id} {past}"))
}

async fn run_campaign(ctx: &Ctx, cmd: CampaignCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let now = parse::now_ms();
    match cmd {
        CampaignCmd::Get { id } => {
            let text = client.json_text(&wire::JsonRequest::GetCampaign(wire::GetCampaign { id })).await?;
            let value = parse_server_json(&text)?;
            if ctx.json {
                return ctx.print_json(&value);
            }
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or(text));
            Ok(())
        }
        CampaignCmd::Create(CampaignCreate::FlashSale { id, sku, pool, limit, starts, ends }) => {
            let starts_ms = starts.resolve(now, now);
            let ends_ms = ends.resolve(now, starts_ms);
            if ends_ms <= starts_ms {
                return Err(CliError::Usage(format!(
                    "--ends ({}) must be after --starts ({})",
                    fmt_ms(ends_ms),
                    fmt_ms(starts_ms)
                )));
            }
            client
                .create_flash_sale(wire::CreateFlashSale {
                    id,
                    sku: code(&sku),
                    pool_qty: pool,
                    per_customer_limit: limit,
                    starts_at_ms: starts_ms,
                    ends_at_ms: ends_ms,
                })
                .await?;
            ctx.done(
                json!({ "id": id, "kind": "flash_sale", "sku": sku, "pool": pool, "limit": limit, "starts_at_ms": starts_ms, "ends_at_ms": ends_ms }),
                || format!("flash sale {id} on {sku}: {pool} units, limit {limit} per customer, {} to {}", fmt_ms(starts_ms), fmt_ms(ends_ms)),
            )
        }
        CampaignCmd::Create(CampaignCreate::Presale { id, sku, quota, limit, balance_window, starts, ends }) => {
            let starts_ms = starts.resolve(now, now);
            let ends_ms = ends.resolve(now, starts_ms);
            if ends_ms <= starts_ms {
                return Err(CliError::Usage(format!(
                    "--ends ({}) must be after --starts ({})",
                    fmt_ms(ends_ms),
                    fmt_ms(starts_ms)
                )));
            }
            let window_ms = balance_window.as_millis().min(u128::from(u64::MAX)) as u64;
            client
                .create_presale(wire::CreatePresale {
                    id,
                    sku: code(&sku),
                    quota,
                    per_customer_limit: limit,
                    starts_at_ms: starts_ms,
                    ends_at_ms: ends_ms,
                    balance_window_ms: window_ms,
                })
                .await?;
            ctx.done(
                json!({ "id": id, "kind": "presale", "sku": sku, "quota": quota, "limit": limit, "starts_at_ms": starts_ms, "ends_at_ms": ends_ms, "balance_window_ms": window_ms }),
                || format!("presale {id} on {sku}: quota {quota}, limit {limit} per customer, {} to {}", fmt_ms(starts_ms), fmt_ms(ends_ms)),
            )
        }
    }
}

async fn run_incoming(ctx: &Ctx, cmd: IncomingCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let now = parse::now_ms();
    match cmd {
        IncomingCmd::Expect { po, sku, warehouse: w, qty, eta } => {
            let eta_ms = eta.resolve(now, now);
            client
                .stock_op(StockOp::ExpectIncoming { po, sku: code(&sku), warehouse: warehouse(&w), qty, eta_ms })
                .await?;
            ctx.done(json!({ "po": po, "sku": sku, "warehouse": w, "qty": qty, "eta_ms": eta_ms }), || {
                format!("PO {po}: {qty} x {sku} expected in warehouse {w} by {}", fmt_ms(eta_ms))
            })
        }
        IncomingCmd::Reschedule { po, sku, eta } => {
            let eta_ms = eta.resolve(now, now);
            client.stock_op(StockOp::RescheduleIncoming { po, sku: code(&sku), eta_ms }).await?;
            ctx.done(json!({ "po": po, "sku": sku, "eta_ms": eta_ms }), || {
                format!("PO {po}: {sku} now expected by {}", fmt_ms(eta_ms))
            })
        }
        IncomingCmd::Receive { po, sku, qty } => {
            client.stock_op(StockOp::ReceivePurchaseOrder { po, sku: code(&sku), qty }).await?;
            ctx.done(json!({ "po": po, "sku": sku, "qty": qty }), || format!("PO {po}: received {qty} x {sku}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("oms").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        // Checks clap's own consistency rules over the whole command tree (duplicate flags etc.).
        Cli::command().debug_assert();
    }

    #[test]
    fn reserve_arguments() {
        // Checks that reserve collects repeated --line values, TTL, key, customer, channel name and campaign.
        let cli = parse(&[
            "--server",
            "10.0.0.1:7700",
            "reserve",
            "--line",
            "TSHIRT-RED-XL:2",
            "--line",
            "MUG-WHT:1",
            "--ttl",
            "2h",
            "--key",
            "k1",
            "--customer",
            "42",
            "--channel",
            "jd",
            "--campaign",
            "7",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.server, "10.0.0.1:7700");
        assert!(cli.json);
        let Command::Reserve(args) = cli.command else { panic!("not reserve") };
        assert_eq!(args.lines.len(), 2);
        assert_eq!(args.lines[1], LineArg { sku: "MUG-WHT".into(), qty: 1 });
        assert_eq!(args.ttl, Duration::from_secs(7200));
        assert_eq!(args.key.as_deref(), Some("k1"));
        assert_eq!((args.customer, args.channel, args.campaign), (42, 2, Some(7)));
    }

    #[test]
    fn reserve_defaults_and_usage_errors() {
        // Checks reserve defaults (15m TTL, own channel) and that bad values are usage errors (exit 2).
        let cli = parse(&["reserve", "--line", "A:1"]).unwrap();
        let Command::Reserve(args) = cli.command else { panic!("not reserve") };
        assert_eq!((args.ttl, args.channel, args.customer), (Duration::from_secs(900), 0, 0));
        for bad in [
            &["reserve"][..],
            &["reserve", "--line", "A"],
            &["reserve", "--line", "A:0"],
            &["reserve", "--line", "A:1", "--ttl", "900"],
            &["reserve", "--line", "A:1", "--channel", "amazon"],
        ] {
            let e = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} parsed"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn stock_and_campaign_arguments() {
        // Checks the stock, campaign, channel, incoming and wal argument shapes users' scripts rely on.
        let cli = parse(&["stock", "adjust", "MUG", "--warehouse", "1", "--delta", "-3"]).unwrap();
        assert!(
            matches!(cli.command, Command::Stock(StockCmd::Adjust { delta: -3, ref warehouse, .. }) if warehouse == "1")
        );
        let cli = parse(&["stock", "bucket", "MUG", "--warehouse", "2", "--bucket", "qc", "--qty", "4"]).unwrap();
        assert!(matches!(cli.command, Command::Stock(StockCmd::Bucket { bucket: 2, qty: 4, .. })));
        let cli = parse(&[
            "campaign",
            "create",
            "flash-sale",
            "--id",
            "5",
            "--sku",
            "MUG",
            "--pool",
            "10",
            "--limit",
            "1",
            "--ends",
            "+2h",
        ])
        .unwrap();
        let Command::Campaign(CampaignCmd::Create(CampaignCreate::FlashSale { starts, ends, .. })) = cli.command else {
            panic!("not flash-sale")
        };
        assert_eq!((starts, ends), (TimeSpec::Now, TimeSpec::After(Duration::from_secs(7200))));
        let cli = parse(&[
            "campaign",
            "create",
            "presale",
            "--id",
            "6",
            "--sku",
            "MUG",
            "--quota",
            "10",
            "--limit",
            "2",
            "--balance-window",
            "7d",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Campaign(CampaignCmd::Create(CampaignCreate::Presale { quota: 10, .. }))
        ));
        let cli = parse(&["channel", "set", "taobao", "--ratio", "0.3", "--floor", "5"]).unwrap();
        assert!(matches!(cli.command, Command::Channel(ChannelCmd::Set { channel: 1, ratio: 3000, floor: 5, .. })));
        let cli = parse(&[
            "incoming",
            "expect",
            "--po",
            "9",
            "MUG",
            "--warehouse",
            "1",
            "--qty",
            "5",
            "--eta",
            "2030-01-01T00:00:00Z",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Incoming(IncomingCmd::Expect { po: 9, .. })));
        let cli = parse(&["wal", "dump", "--data-dir", "/tmp/x", "--from", "5", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Wal(WalCmd::Dump { from: 5, .. })));
        assert_eq!(
            parse(&["stock", "bucket", "MUG", "--warehouse", "2", "--bucket", "lost", "--qty", "4"])
                .err()
                .map(|e| e.exit_code()),
            Some(2)
        );
    }
}
