//! oms-marketsim: a local simulator of one marketplace's open API (Taobao/Tmall TOP, JD router or
//! Douyin shop), for demos of omsd's connectors on a machine that cannot reach the platforms.
//! Point a `[[shops]]` entry's `endpoint` at the address it prints.

use std::net::SocketAddr;

use clap::Parser;
use oms_connectors::config::Platform;
use oms_connectors::sim::{SimConfig, SimItem, Simulator};

/// Simulate one marketplace: signed requests, rate limit, error shapes, orders for the pull.
#[derive(Debug, Parser)]
#[command(name = "oms-marketsim", version, about)]
struct Args {
    /// taobao (or tmall), jd, douyin.
    #[arg(long)]
    platform: String,
    /// Address to serve on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value = "demo-key")]
    app_key: String,
    #[arg(long, env = "OMS_MARKETSIM_SECRET", default_value = "demo-secret", hide_env_values = true)]
    secret: String,
    #[arg(long, env = "OMS_MARKETSIM_SESSION", default_value = "demo-session", hide_env_values = true)]
    session: String,
    /// Requests per second the app may make.
    #[arg(long, default_value_t = 10.0)]
    rate_limit: f64,
    /// An item: CODE:ITEM_ID:SKU_ID:QTY:PRICE_CENTS (repeatable).
    #[arg(long = "item", value_name = "CODE:ITEM_ID:SKU_ID:QTY:PRICE_CENTS")]
    items: Vec<String>,
    /// Print the endpoint as JSON (`{"platform","endpoint"}`).
    #[arg(long)]
    json: bool,
}

fn parse_item(text: &str) -> Result<SimItem, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [code, item_id, sku_id, qty, price] = parts.as_slice() else {
        return Err(format!("--item {text:?}: expected CODE:ITEM_ID:SKU_ID:QTY:PRICE_CENTS"));
    };
    Ok(SimItem {
        code: (*code).to_owned(),
        item_id: (*item_id).to_owned(),
        sku_id: (*sku_id).to_owned(),
        qty: qty.parse().map_err(|_| format!("--item {text:?}: QTY must be a number"))?,
        price_cents: price.parse().map_err(|_| format!("--item {text:?}: PRICE_CENTS must be a number"))?,
    })
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let Some(platform) = Platform::parse(&args.platform) else {
        eprintln!("oms-marketsim: unknown platform {:?} (expected taobao, jd or douyin)", args.platform);
        return std::process::ExitCode::from(2);
    };
    let items = match args.items.iter().map(|i| parse_item(i)).collect::<Result<Vec<_>, _>>() {
        Ok(items) => items,
        Err(e) => {
            eprintln!("oms-marketsim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = SimConfig {
        platform,
        app_key: args.app_key,
        secret: args.secret,
        session: args.session,
        rate_limit: args.rate_limit,
        items,
        strict_items: true,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oms-marketsim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let sim = match Simulator::start(config, args.listen).await {
            Ok(sim) => sim,
            Err(e) => {
                eprintln!("oms-marketsim: cannot listen on {}: {e}", args.listen);
                return std::process::ExitCode::FAILURE;
            }
        };
        if args.json {
            println!("{}", serde_json::json!({ "platform": platform.name(), "endpoint": sim.endpoint() }));
        } else {
            println!(
                "{} simulator on {} (state: GET http://{}/sim/state)",
                platform.name(),
                sim.endpoint(),
                sim.addr()
            );
        }
        let _ = tokio::signal::ctrl_c().await;
        sim.stop();
        std::process::ExitCode::SUCCESS
    })
}
