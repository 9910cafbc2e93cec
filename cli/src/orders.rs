//! Order lifecycle commands: `oms order`, `oms wave`, `oms shipment`, `oms track`,
//! `oms aftersale`, `oms rules`, `oms waybill` (docs/CLI.md, docs/ORDERS.md).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

use super::parse::{self, LineArg};
use super::{CliError, Ctx};
use oms_proto::json::{self as wire, JsonLine, JsonRequest, SkuKey};

#[derive(Subcommand, Debug)]
pub enum OrderCmd {
    /// Import a channel payload file: one order (a JSON object) or a batch (a JSON array).
    /// Re-importing an order unchanged changes nothing; a changed one is revised (applied, or
    /// put on the exception list). Exits 1 if any order was rejected (the others are still
    /// imported)
    Import {
        /// Sales channel of the payload: taobao, jd, douyin or native
        #[arg(long, value_name = "CHANNEL", value_parser = ["taobao", "tmall", "jd", "douyin", "native"])]
        channel: String,
        /// The payload file
        file: PathBuf,
    },
    /// Show an order: status, holds (rule names), lines with allocated amounts, shipments
    Get {
        /// Order id (as printed by `oms order import`)
        id: u64,
    },
    /// List orders, newest first, one page at a time (the last line says how to get the next)
    List {
        /// Only orders in this status (created, on_hold, approved, allocated, picking, packed,
        /// shipped, delivered, completed, cancelled) or `parked` (waiting for stock)
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Only orders of this channel (taobao, jd, douyin, native)
        #[arg(long, value_name = "CHANNEL")]
        channel: Option<String>,
        /// Only orders of this buyer
        #[arg(long, value_name = "BUYER")]
        buyer: Option<String>,
        /// Only orders created at or after this time (RFC 3339, `now`, or +DURATION)
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only orders created before this time
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Only orders on hold by this rule (e.g. big_order, manual) or with this hold text
        #[arg(long, value_name = "RULE")]
        hold: Option<String>,
        /// Only orders with a line of this SKU (code)
        #[arg(long, value_name = "SKU")]
        sku: Option<String>,
        /// Continue after this cursor (printed under the previous page)
        #[arg(long, value_name = "CURSOR")]
        cursor: Option<String>,
        /// Orders per page (server maximum 1000)
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// Oldest first instead
        #[arg(long)]
        oldest_first: bool,
    },
    /// Put an approved order on hold (not yet allocated); it waits until released
    Hold {
        /// Order id
        id: u64,
        /// Why (kept on the order; list with --hold manual)
        #[arg(long)]
        reason: String,
    },
    /// Release an order an operator put on hold; it is approved and allocated again
    Unhold {
        /// Order id
        id: u64,
        /// Why (kept in the order's events)
        #[arg(long, default_value = "released by operator")]
        reason: String,
    },
    /// Approve an order on hold; it is then allocated
    Approve {
        /// Order id
        id: u64,
    },
    /// Reject an order on hold (it is cancelled)
    Reject {
        /// Order id
        id: u64,
        /// Why (kept on the order)
        #[arg(long, default_value = "rejected by operator")]
        reason: String,
    },
    /// Cancel an order before its first shipment leaves; its reserved stock is released
    Cancel {
        /// Order id
        id: u64,
        /// Why (kept on the order)
        #[arg(long, default_value = "cancelled by operator")]
        reason: String,
    },
    /// Allocate an approved or parked order (without ID: every order waiting for stock)
    Allocate {
        /// Order id
        id: Option<u64>,
    },
    /// The exception desk: open exceptions of every order (changes a marketplace made that could
    /// not be applied, refund requests, shipments a marketplace would not confirm), oldest first
    Exceptions {
        /// At most this many (server maximum 1000)
        #[arg(long, default_value_t = 1000, value_name = "N")]
        limit: u32,
    },
    /// Mark an order's exception as dealt with
    Resolve {
        /// Order id
        id: u64,
        /// The exception's index (as `oms order exceptions` prints it)
        index: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum WaveCmd {
    /// Group the allocated shipments of a warehouse into pick waves (one per partition)
    Create {
        /// Warehouse code (e.g. SH) or id
        #[arg(long, value_name = "WH")]
        warehouse: String,
        /// Only shipments of this carrier
        #[arg(long, value_name = "CODE")]
        carrier: Option<String>,
        /// At most this many shipments per wave
        #[arg(long, default_value_t = 1000, value_name = "N")]
        max: u32,
    },
    /// Show a wave: its shipments and the pick list in walking order
    Get {
        /// Wave id (as printed by `oms wave create`)
        id: u64,
    },
    /// Record a scanned item of a wave; a SKU not on the pick list or more than it asks for is
    /// refused. Packing waits until every item of the wave is scanned
    Scan {
        /// Wave id
        wave: u64,
        /// SKU code scanned
        sku: String,
        /// Units scanned
        #[arg(long, default_value_t = 1, value_name = "N")]
        qty: u32,
    },
    /// Release a wave for packing without a complete scan (a supervisor's decision, logged)
    Override {
        /// Wave id
        wave: u64,
        /// Who decides (kept with the wave)
        #[arg(long, value_name = "NAME")]
        supervisor: String,
        /// Why (kept with the wave)
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ShipmentCmd {
    /// Pack a waved shipment (issues its waybill number)
    Pack {
        /// Shipment id
        id: u64,
    },
    /// Hand a packed shipment to the carrier (stock leaves the warehouse)
    Ship {
        /// Shipment id
        id: u64,
    },
    /// Record the delivery of a shipped shipment
    Deliver {
        /// Shipment id
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrackCmd {
    /// Record a carrier tracking event (the event "delivered" delivers the shipment)
    Add {
        /// Shipment id
        shipment: u64,
        /// Event code, e.g. picked_up, in_transit, out_for_delivery, delivered
        #[arg(long, value_name = "CODE")]
        event: String,
        /// Where it happened
        #[arg(long, default_value = "", value_name = "TEXT")]
        location: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AfterSaleCmd {
    /// Open a return, exchange or refund on a delivered order
    Create {
        /// Order id
        order: u64,
        /// return, exchange or refund
        #[arg(long = "type", value_name = "TYPE", value_parser = ["return", "exchange", "refund"])]
        kind: String,
        /// A line as SKU:QTY; repeat for several lines
        #[arg(long = "line", required = true, value_parser = parse::parse_line, value_name = "SKU:QTY")]
        lines: Vec<LineArg>,
        /// Why
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The goods of a return or exchange came back: sellable ones go back to stock
    Receive {
        /// After-sale id (as printed by `oms aftersale create`)
        id: u64,
        /// The goods are damaged (they go to the damaged bucket)
        #[arg(long)]
        damaged: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Send a rules file (TOML: [audit], [routing], [carriers]) to the server; only the sections
    /// present are replaced
    Reload {
        /// The rules file
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum WaybillCmd {
    /// Render the shipping label of a packed shipment: PDF (font embedded), PNG or ZPL for thermal
    /// printers; 76x130 mm or 100x180 mm; Code 128 barcode; the phone masked (138****5678)
    Print {
        /// Shipment id
        shipment: u64,
        /// Output format
        #[arg(long, value_enum, default_value = "pdf")]
        format: LabelFormat,
        /// Label size in millimetres: 76x130 (the common e-waybill), 100x180, or WIDTHxHEIGHT
        #[arg(long, default_value = "76x130", value_name = "WxH")]
        size: String,
        /// Dots per inch for png and zpl (thermal printers: 203 or 300)
        #[arg(long, default_value_t = 203, value_name = "DPI")]
        dpi: u32,
        /// Print the recipient's whole phone number (own-fleet deliveries); the platforms require
        /// it masked on parcels they carry. Needs a role that may read it (ops)
        #[arg(long)]
        full_phone: bool,
        /// Write here (default: waybill-<number>.<format> in the current directory; `-` for stdout)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelFormat {
    Pdf,
    Png,
    Zpl,
}

impl LabelFormat {
    fn extension(self) -> &'static str {
        match self {
            LabelFormat::Pdf => "pdf",
            LabelFormat::Png => "png",
            LabelFormat::Zpl => "zpl",
        }
    }
}

fn read_file(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

/// The code a view carries in `code_key`, or the id in `id_key` when the server knows no code.
fn code_or(v: &Value, code_key: &str, id_key: &str) -> String {
    match v[code_key].as_str() {
        Some(code) => code.to_owned(),
        None => format!("#{}", field(v, id_key)),
    }
}

fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn cents(v: &Value) -> String {
    let c = v.as_i64().unwrap_or(0);
    format!("{}{}.{:02}", if c < 0 { "-" } else { "" }, c.abs() / 100, c.abs() % 100)
}

/// Print the server's JSON as is with --json, else a text rendering.
fn show(ctx: &Ctx, value: &Value, human: impl FnOnce(&Value) -> String) -> Result<(), CliError> {
    if ctx.json {
        ctx.print_json(value)
    } else {
        println!("{}", human(value));
        Ok(())
    }
}

fn order_text(o: &Value) -> String {
    let mut out = format!(
        "order {} ({} {}): {}\n",
        field(o, "id"),
        field(o, "channel"),
        field(o, "external_id"),
        field(o, "status")
    );
    let holds: Vec<String> =
        o["holds"].as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_owned)).collect();
    if !holds.is_empty() {
        out.push_str(&format!("  holds: {}\n", holds.join(", ")));
    }
    if let Some(reason) = o["cancel_reason"].as_str() {
        out.push_str(&format!("  cancelled: {reason}\n"));
    }
    out.push_str(&format!(
        "  buyer {}  paid {}  shipping {}\n",
        field(o, "buyer"),
        cents(&o["paid_cents"]),
        cents(&o["shipping_cents"])
    ));
    out.push_str(&format!("  {:<24} {:>5} {:>10} {:>10}\n", "SKU", "QTY", "ALLOCATED", "AMOUNT"));
    for l in o["lines"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {:<24} {:>5} {:>10} {:>10}\n",
            field(l, "sku_code"),
            field(l, "qty"),
            field(l, "allocated_qty"),
            cents(&l["allocated_cents"])
        ));
    }
    for s in o["shipments"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  shipment {}: {} warehouse {} carrier {} waybill {}\n",
            field(s, "id"),
            field(s, "status"),
            field(s, "warehouse"),
            field(s, "carrier"),
            field(s, "waybill")
        ));
    }
    for a in o["after_sales"].as_array().into_iter().flatten() {
        out.push_str(&format!("  after-sale {}: {} {}\n", field(a, "id"), field(a, "kind"), field(a, "status")));
    }
    out.trim_end().to_owned()
}

pub(super) async fn run_order(ctx: &Ctx, cmd: OrderCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    match cmd {
        OrderCmd::Import { channel, file } => {
            let payload = read_file(&file)?;
            let value = client.import_orders(&channel, payload).await?;
            let rejected = value["rejected"].as_u64().unwrap_or(0);
            if ctx.json {
                let mut doc = value.clone();
                doc["ok"] = json!(rejected == 0);
                ctx.print_json(&doc)?;
            } else {
                for r in value["results"].as_array().into_iter().flatten() {
                    if r["ok"] == true {
                        let holds: Vec<&str> =
                            r["holds"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                        let mut line = format!(
                            "order {} ({}): {}",
                            field(r, "order"),
                            field(r, "external_id"),
                            field(r, "status")
                        );
                        if !holds.is_empty() {
                            line.push_str(&format!(" [holds: {}]", holds.join(", ")));
                        }
                        if r["skipped"] == true {
                            line = format!("order {}: skipped ({})", field(r, "external_id"), field(r, "reason"));
                        } else if r["unchanged"] == true {
                            line.push_str(" (already imported, unchanged)");
                        } else if r["revised"] == true {
                            let list = |name: &str| -> String {
                                r[name]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            };
                            line.push_str(&format!(
                                " (revised: changed [{}], exceptions [{}])",
                                list("changes"),
                                list("exceptions")
                            ));
                        }
                        println!("{line}");
                    } else {
                        println!("rejected #{}: {}", field(r, "index"), field(r, "error"));
                    }
                }
            }
            if rejected > 0 {
                return Err(CliError::Problems(format!("{rejected} order(s) rejected")));
            }
            Ok(())
        }
        OrderCmd::Exceptions { limit } => {
            let value = client.order_exceptions(limit).await?;
            if ctx.json {
                return ctx.print_json(&value);
            }
            let mut out = std::io::stdout().lock();
            let rows = value["exceptions"].as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                writeln!(out, "no open exceptions")?;
            }
            for r in rows {
                let shipment = r["shipment"].as_u64().map(|s| format!(" shipment {s}")).unwrap_or_default();
                writeln!(
                    out,
                    "order {} ({} {}, {}) #{} {}{}: {}",
                    field(&r, "order"),
                    field(&r, "channel"),
                    field(&r, "external_id"),
                    field(&r, "status"),
                    field(&r, "index"),
                    field(&r, "kind"),
                    shipment,
                    field(&r, "detail")
                )?;
            }
            Ok(())
        }
        OrderCmd::Resolve { id, index } => {
            let value = client.resolve_exception(id, index).await?;
            ctx.done(value, || format!("order {id}: exception #{index} resolved"))
        }
        OrderCmd::Get { id } => {
            let value = client.json(&JsonRequest::OrderGet(wire::IdBody { id })).await?;
            show(ctx, &value, order_text)
        }
        OrderCmd::List { status, channel, buyer, from, to, hold, sku, cursor, limit, oldest_first } => {
            let now = parse::now_ms();
            let time = |t: Option<String>| -> Result<Option<u64>, CliError> {
                match t {
                    None => Ok(None),
                    Some(t) => {
                        Ok(Some(parse::parse_time(&t).map_err(|e| CliError::Usage(e.to_string()))?.resolve(now, now)))
                    }
                }
            };
            let page = wire::OrderPage {
                status,
                channel,
                buyer,
                from_ms: time(from)?,
                to_ms: time(to)?,
                hold,
                sku: sku.map(SkuKey::Code),
                cursor,
                limit,
                oldest_first,
            };
            let value = client.order_page(page).await?;
            if ctx.json {
                return ctx.print_json(&value);
            }
            println!(
                "{:<16} {:<8} {:<22} {:<10} {:>10} {:<16} {:<24}  HOLDS",
                "ID", "CHANNEL", "EXTERNAL", "STATUS", "PAID", "CREATED", "SKUS"
            );
            for r in value["orders"].as_array().into_iter().flatten() {
                let list = |key: &str| -> String {
                    let items: Vec<&str> = r[key].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    items.join(",")
                };
                let mut status = field(r, "status");
                if r["parked"] == true {
                    status.push_str("+parked");
                }
                println!(
                    "{:<16} {:<8} {:<22} {:<10} {:>10} {:<16} {:<24}  {}",
                    field(r, "id"),
                    field(r, "channel"),
                    field(r, "external_id"),
                    status,
                    cents(&r["paid_cents"]),
                    r["created_at_ms"]
                        .as_u64()
                        .map(super::fmt_ms)
                        .map(|t| t.get(..16).unwrap_or(&t).to_owned())
                        .unwrap_or_default(),
                    list("skus"),
                    list("holds")
                );
            }
            if let Some(next) = value["next"].as_str() {
                println!("more: add --cursor {next}");
            }
            Ok(())
        }
        OrderCmd::Hold { id, reason } => {
            let value = client.hold_order(id, &reason).await?;
            show(ctx, &value, |v| format!("order {id} held: {}", field(v, "status")))
        }
        OrderCmd::Unhold { id, reason } => {
            let value = client.unhold_order(id, &reason).await?;
            show(ctx, &value, |v| {
                format!(
                    "order {id} released: {} (allocation: {})",
                    field(v, "status"),
                    field(&v["allocation"], "result")
                )
            })
        }
        OrderCmd::Approve { id } => {
            let value = client.json(&JsonRequest::OrderApprove(wire::IdBody { id })).await?;
            show(ctx, &value, |v| {
                format!(
                    "order {id} approved: {} (allocation: {})",
                    field(v, "status"),
                    field(&v["allocation"], "result")
                )
            })
        }
        OrderCmd::Reject { id, reason } => {
            let value = client.json(&JsonRequest::OrderReject(wire::OrderReason { id, reason })).await?;
            show(ctx, &value, |v| format!("order {id} rejected: {}", field(v, "status")))
        }
        OrderCmd::Cancel { id, reason } => {
            let value = client.json(&JsonRequest::OrderCancel(wire::OrderReason { id, reason })).await?;
            show(ctx, &value, |v| format!("order {id} cancelled: {}", field(v, "status")))
        }
        OrderCmd::Allocate { id } => {
            let value = client.json(&JsonRequest::OrderAllocate(wire::IdBody { id: id.unwrap_or(0) })).await?;
            show(ctx, &value, |v| {
                let rows: Vec<String> = v["orders"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| format!("order {}: {}", field(r, "order"), field(&r["allocation"], "result")))
                    .collect();
                if rows.is_empty() {
                    "no order waiting for stock".to_owned()
                } else {
                    rows.join("\n")
                }
            })
        }
    }
}

pub(super) async fn run_wave(ctx: &Ctx, cmd: WaveCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    match cmd {
        WaveCmd::Create { warehouse, carrier, max } => {
            let value = client
                .json(&JsonRequest::WaveCreate(wire::WaveCreate {
                    warehouse: crate::warehouse(&warehouse),
                    carrier,
                    max_shipments: max,
                }))
                .await?;
            show(ctx, &value, |v| {
                v["waves"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| {
                        format!(
                            "wave {}: {} shipment(s)",
                            field(w, "wave"),
                            w["shipments"].as_array().map_or(0, Vec::len)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        WaveCmd::Scan { wave, sku, qty } => {
            let value = client.scan_pick(wave, &sku, qty).await?;
            show(ctx, &value, |w| {
                let left: u64 = w["pick_list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["qty"].as_u64().unwrap_or(0).saturating_sub(i["picked"].as_u64().unwrap_or(0)))
                    .sum();
                format!("wave {wave}: scanned {qty} x {sku}; {left} unit(s) left to pick")
            })
        }
        WaveCmd::Override { wave, supervisor, reason } => {
            let value = client.override_pick(wave, &supervisor, &reason).await?;
            show(ctx, &value, |_| format!("wave {wave} released for packing by {supervisor}: {reason}"))
        }
        WaveCmd::Get { id } => {
            let value = client.json(&JsonRequest::WaveGet(wire::IdBody { id })).await?;
            show(ctx, &value, |w| {
                let mut out = format!(
                    "wave {} warehouse {} picked {}\n  shipments: {}\n  {:<10} {:<24} {:>5} {:>7}\n",
                    field(w, "id"),
                    code_or(w, "warehouse_code", "warehouse"),
                    field(w, "picked"),
                    w["shipments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    "BIN",
                    "SKU",
                    "QTY",
                    "PICKED"
                );
                for item in w["pick_list"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  {:<10} {:<24} {:>5} {:>7}\n",
                        field(item, "bin_label"),
                        code_or(item, "sku_code", "sku"),
                        field(item, "qty"),
                        field(item, "picked")
                    ));
                }
                out.trim_end().to_owned()
            })
        }
    }
}

pub(super) async fn run_shipment(ctx: &Ctx, cmd: ShipmentCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let (request, verb) = match cmd {
        ShipmentCmd::Pack { id } => (JsonRequest::ShipmentPack(wire::ShipmentBody { shipment: id }), "packed"),
        ShipmentCmd::Ship { id } => (JsonRequest::ShipmentShip(wire::ShipmentBody { shipment: id }), "shipped"),
        ShipmentCmd::Deliver { id } => (JsonRequest::ShipmentDeliver(wire::ShipmentBody { shipment: id }), "delivered"),
    };
    let value = client.json(&request).await?;
    show(ctx, &value, |s| {
        format!(
            "shipment {} {verb}: carrier {} waybill {} (order {} {})",
            field(s, "id"),
            field(s, "carrier"),
            field(s, "waybill"),
            field(s, "order"),
            field(s, "order_status")
        )
    })
}

pub(super) async fn run_track(ctx: &Ctx, cmd: TrackCmd) -> Result<(), CliError> {
    let TrackCmd::Add { shipment, event, location } = cmd;
    let client = ctx.client().await?;
    let value = client.json(&JsonRequest::TrackAdd(wire::TrackAdd { shipment, code: event.clone(), location })).await?;
    show(ctx, &value, |s| format!("shipment {shipment}: tracked {event} ({})", field(s, "status")))
}

pub(super) async fn run_after_sale(ctx: &Ctx, cmd: AfterSaleCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    match cmd {
        AfterSaleCmd::Create { order, kind, lines, reason } => {
            let lines = lines.into_iter().map(|l| JsonLine { sku: SkuKey::Code(l.sku), qty: l.qty }).collect();
            let value = client
                .json(&JsonRequest::AfterSaleCreate(wire::AfterSaleCreate { order, kind, lines, reason }))
                .await?;
            show(ctx, &value, |v| {
                format!(
                    "after-sale {} ({}) on order {order}: {} refund {}",
                    field(v, "after_sale"),
                    field(v, "kind"),
                    field(v, "status"),
                    cents(&v["refund_cents"])
                )
            })
        }
        AfterSaleCmd::Receive { id, damaged } => {
            let value = client.json(&JsonRequest::AfterSaleReceive(wire::AfterSaleReceive { id, damaged })).await?;
            show(ctx, &value, |v| {
                let returned: Vec<String> = v["returned"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        format!("{} x sku {} to warehouse {}", field(r, "qty"), field(r, "sku"), field(r, "warehouse"))
                    })
                    .collect();
                format!(
                    "after-sale {id} received: {}; returned {}; refunded {}",
                    field(v, "status"),
                    if returned.is_empty() { "nothing".to_owned() } else { returned.join(", ") },
                    cents(&v["refunded_cents"])
                )
            })
        }
    }
}

pub(super) async fn run_rules(ctx: &Ctx, cmd: RulesCmd) -> Result<(), CliError> {
    let RulesCmd::Reload { file } = cmd;
    let text = read_file(&file)?;
    let client = ctx.client().await?;
    let value = client.reload_rules(text).await?;
    ctx.done(value.clone(), || {
        let sections: Vec<String> =
            value["reloaded"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect();
        format!(
            "rules reloaded from {}: {}",
            file.display(),
            if sections.is_empty() { "nothing".to_owned() } else { sections.join(", ") }
        )
    })
}

pub(super) async fn run_waybill(ctx: &Ctx, cmd: WaybillCmd) -> Result<(), CliError> {
    use crate::label;
    let WaybillCmd::Print { shipment, format, size, dpi, full_phone, out } = cmd;
    let options = label::LabelOptions { size: size.parse()?, full_phone, dpi };
    options.check()?;
    let client = ctx.client().await?;
    let role = client.server_info().map(|i| i.role);
    if full_phone && role != Some(oms_proto::Role::Ops) {
        let role = role.map_or("unknown", oms_proto::Role::name);
        return Err(CliError::Usage(format!(
            "--full-phone needs the ops role (this key has {role}): the platforms require a masked phone"
        )));
    }
    let label = client.waybill(shipment).await?;
    let bytes = match format {
        LabelFormat::Pdf => label::render_pdf(&label, &options)?,
        LabelFormat::Png => label::render_png(&label, &options)?,
        LabelFormat::Zpl => label::render_zpl(&label, &options)?.into_bytes(),
    };
    let path = out.unwrap_or_else(|| PathBuf::from(format!("waybill-{}.{}", label.waybill, format.extension())));
    if path.as_os_str() == "-" {
        use std::io::Write as _;
        std::io::stdout().write_all(&bytes)?;
        return Ok(());
    }
    std::fs::write(&path, &bytes)?;
    ctx.done(
        json!({
            "shipment": shipment,
            "waybill": label.waybill,
            "carrier": label.carrier,
            "format": format.extension(),
            "size_mm": [options.size.width_mm, options.size.height_mm],
            "file": path.display().to_string(),
            "bytes": bytes.len(),
        }),
        || format!("waybill {} ({}) written to {}", label.waybill, label.carrier, path.display()),
    )
}
