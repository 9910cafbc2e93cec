//! oms-gateway: the omsd daemon, its wire protocol, the Rust client and the `oms` CLI.
//!
//! It owns sockets, threads, the clock, configuration, access control, metrics and the mapping
//! from storefront SKU codes to engine ids. It must not decide anything about stock: every
//! decision is a command applied by the engine in the owning partition's writer thread.

pub mod admin;
pub mod catalog_index;
pub mod cli;
pub mod client;
pub mod config;
pub mod connectors;
pub mod daemon;
pub mod demo;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod protocol;
pub mod replication;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod wire_error;
