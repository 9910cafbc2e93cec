//! `oms shop list|status|sync`: the marketplace shops omsd connects to (docs/CHANNELS.md).

use std::io::Write;

use clap::Subcommand;
use serde_json::Value;

use super::{CliError, Ctx};

#[derive(Subcommand, Debug)]
pub enum ShopCmd {
    /// The configured shops: platform, stock channel, endpoint, rate limit, what runs
    List,
    /// Each shop's state: last pull, push backlog and lag, confirmations waiting, last error
    Status {
        /// Only this shop
        shop: Option<String>,
    },
    /// Push every SKU's sellable quantity again (a full stock sync) and pull orders now
    Sync {
        /// Only this shop
        shop: Option<String>,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `12.3 s ago` from a unix-ms field.
fn ago(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            format!("{:.1} s ago", (now - ms).max(0) as f64 / 1000.0)
        }
        None => "never".to_owned(),
    }
}

pub(super) async fn run_shop(ctx: &Ctx, cmd: ShopCmd) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        ShopCmd::List => {
            let value = client.shop_list().await?;
            if ctx.json {
                return ctx.print_json(&value);
            }
            let shops = value["shops"].as_array().cloned().unwrap_or_default();
            if shops.is_empty() {
                writeln!(out, "no shops configured ([[shops]] in omsd's config)")?;
            }
            for s in shops {
                let parts: Vec<&str> = ["push", "pull", "confirm"].into_iter().filter(|p| s[*p] == true).collect();
                let skus =
                    s["mapped_skus"].as_u64().map_or("every catalog SKU".to_owned(), |n| format!("{n} mapped SKUs"));
                writeln!(
                    out,
                    "{} {} channel {} {} ({} req/s; {}; {})",
                    text(&s["shop"]),
                    text(&s["platform"]),
                    text(&s["channel"]),
                    text(&s["endpoint"]),
                    text(&s["rate_limit"]),
                    parts.join("+"),
                    skus
                )?;
            }
            Ok(())
        }
        ShopCmd::Status { shop } => {
            let value = client.shop_status(shop.as_deref()).await?;
            if ctx.json {
                return ctx.print_json(&value);
            }
            for s in value["shops"].as_array().cloned().unwrap_or_default() {
                writeln!(out, "{} ({}):", text(&s["shop"]), text(&s["platform"]))?;
                writeln!(
                    out,
                    "  last pull:     {} (orders up to {})",
                    ago(&s["last_pull_at_ms"]),
                    ago(&s["pulled_until_ms"])
                )?;
                writeln!(
                    out,
                    "  orders:        {} imported, {} revised, {} rejected",
                    text(&s["orders_imported"]),
                    text(&s["orders_revised"]),
                    text(&s["orders_rejected"])
                )?;
                for r in s["rejected"].as_array().cloned().unwrap_or_default().iter().rev().take(5) {
                    writeln!(out, "    rejected {}: {}", text(&r["external_id"]), text(&r["error"]))?;
                }
                writeln!(
                    out,
                    "  push:          backlog {}, {} sent, last {}, lag p50 {} ms p99 {} ms max {} ms",
                    text(&s["push_backlog"]),
                    text(&s["pushes"]),
                    ago(&s["last_push_at_ms"]),
                    text(&s["push_lag_p50_ms"]),
                    text(&s["push_lag_p99_ms"]),
                    text(&s["push_lag_max_ms"])
                )?;
                writeln!(
                    out,
                    "  confirmations: {} sent, {} waiting",
                    text(&s["confirmations"]),
                    text(&s["confirm_backlog"])
                )?;
                match s["last_error"].as_object() {
                    Some(e) => writeln!(
                        out,
                        "  last error:    {} ({}, {})",
                        text(&e["error"]),
                        text(&e["task"]),
                        ago(&e["at_ms"])
                    )?,
                    None => writeln!(out, "  last error:    none")?,
                }
            }
            Ok(())
        }
        ShopCmd::Sync { shop } => {
            let value = client.shop_sync(shop.as_deref()).await?;
            let names: Vec<String> =
                value["synced"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
            ctx.done(value, || format!("full stock sync and order pull requested: {}", names.join(", ")))
        }
    }
}
