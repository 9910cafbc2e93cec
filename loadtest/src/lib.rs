//! oms-loadtest: the load generator of omsd (and of its Redis+Lua / PostgreSQL peers).
//!
//! * [`workload`]: scenarios and the seeded, deterministic request stream.
//! * [`omsd`]: a lean pipelined connection driver (many frames per syscall, bulk decode, fixed window).
//! * [`peers`]: the same scenarios against Redis (one Lua script) and PostgreSQL (conditional UPDATEs).
//! * [`stats`]: HdrHistogram latency from intended send times (no coordinated omission), report.
//! * [`run`]: setup, phases, audit. Entry point: [`run::run`].

pub mod config;
pub mod error;
pub mod ledger;
pub mod omsd;
pub mod peers;
pub mod rng;
pub mod run;
pub mod stats;
pub mod thresholds;
pub mod workload;

pub use config::{Args, Target};
pub use error::LoadError;
pub use run::run;
pub use stats::Report;
