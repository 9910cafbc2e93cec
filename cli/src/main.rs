//! `oms`: command-line client for omsd. See docs/CLI.md and `oms --help`.

use std::process::ExitCode;

use clap::Parser;
use oms_cli::{Cli, EXIT_CONNECTION};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Usage errors exit 2 and --help/--version exit 0 (clap's defaults).
    let args = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oms: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_CONNECTION);
        }
    };
    runtime.block_on(oms_cli::main_with(args))
}
