//! oms-gateway: the omsd daemon (the server side of wire protocol v2, `oms-proto`).
//!
//! It owns sockets, threads, the clock, configuration, access control, metrics, the mapping
//! from storefront SKU codes to engine ids, and the front ends on top of the request path (the
//! binary port, the HTTP/JSON API and the web console, which embeds `console/dist`). It must not decide anything about stock: every
//! decision is a command applied by the engine in the owning partition's writer thread.

pub mod admin;
pub mod catalog_index;
pub mod config;
pub mod connectors;
pub mod console;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod replication;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod wire_error;
