//! `oms-loadtest`: see `oms-loadtest --help` and docs/LOADTEST.md.

use std::process::ExitCode;

use clap::Parser;
use oms_loadtest::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OMS_LOADTEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("oms-loadtest: cannot start the runtime: {e}");
                return ExitCode::from(2);
            }
        };
    let report = match runtime.block_on(run(&args)) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("oms-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = match serde_json::to_string_pretty(&report) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("oms-loadtest: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("oms-loadtest: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if !report.audit_passed {
        eprintln!("oms-loadtest: audit FAILED");
        return ExitCode::from(1);
    }
    if !report.thresholds_passed {
        let missed: Vec<&str> = report.thresholds.iter().filter(|t| !t.passed).map(|t| t.name.as_str()).collect();
        eprintln!("oms-loadtest: threshold missed: {}", missed.join(", "));
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
