//! omsd: the order and stock-reservation daemon. See `omsd --help`.

use clap::Parser;
use oms_gateway::config::LogFormat;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = oms_gateway::config::OmsdArgs::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("OMSD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format() {
        // One JSON object per line: timestamp, level, target, fields (message included), span.
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    match oms_gateway::daemon::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("omsd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
