//! Start-up and shutdown of omsd: configuration, recovery, partition threads, listeners, signals.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oms_engine::fastpath::SoldOutBoard;
use oms_engine::Limits;
use oms_wal::{Durability, Retention, WalConfig};
use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::catalog_index::CatalogIndex;
use crate::config::{Config, ConfigError, OmsdArgs};
use crate::metrics::Metrics;
use crate::runtime::{self, recover_partitions, spawn_workers, RecoveryError, WorkerConfig};
use crate::server::{serve_connection, serve_tls_connection, Authenticator, ServerCtx};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("recovery failed: {0}")]
    Recovery(#[from] RecoveryError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("cannot start threads: {0}")]
    Threads(std::io::Error),
    #[error("demo catalog failed: {0}")]
    Demo(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("marketplace connectors: {0}")]
    Connectors(String),
}

pub fn run(args: OmsdArgs) -> Result<(), DaemonError> {
    let config = Config::resolve(&args)?;
    if config.durability == Durability::Off {
        tracing::warn!("*** --fsync off: the log is never flushed; acknowledged writes WILL be lost on a crash. Benchmarks only. ***");
    }
    // Certificates are loaded before recovery, so a bad path fails in milliseconds, not after a
    // long replay.
    let tls = match &config.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => None,
    };
    let follow_tls = match &config.follow_tls {
        Some(f) => Some(crate::tls::ClientTls::new(f.ca.as_deref(), f.server_name.as_deref())?),
        None => None,
    };
    let auth = Authenticator::new(config.api_keys.clone(), config.allow_unauthenticated_remote);
    if auth.open() && config.allow_unauthenticated_remote {
        tracing::warn!(listen = %config.listen, "*** no api_keys configured and --allow-unauthenticated-remote: ANY client that reaches this address gets full (ops) access ***");
    } else if auth.open() {
        tracing::warn!("no api_keys configured: accepting loopback clients only, with full (ops) access");
    }
    let limits = Limits { max_lines: config.max_lines, ..Limits::default() };
    let mut base = WalConfig::new(&config.data_dir);
    base.segment_bytes = config.segment_bytes;
    base.durability = config.durability;
    let started = std::time::Instant::now();
    let mut recovered =
        recover_partitions(&config.data_dir, config.partitions, limits, &base, config.truncate_corrupt_log)?;
    let replayed: u64 = recovered.iter().map(|r| r.replayed).sum();
    // A follower's log is its primary's: the primary reconciles, the follower replicates that.
    let reconciled =
        if config.follow.is_none() { runtime::reconcile_orders(&mut recovered, runtime::now_ms())? } else { 0 };
    let index = {
        let refs: Vec<&oms_engine::Partition> = recovered.iter().map(|r| &r.partition).collect();
        CatalogIndex::rebuild(&refs, runtime::now_ms())
    };
    tracing::info!(
        partitions = config.partitions,
        replayed,
        reconciled,
        skus = index.sku_count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        data_dir = %config.data_dir.display(),
        "recovery complete"
    );
    let board = Arc::new(SoldOutBoard::new());
    let metrics = Arc::new(Metrics::new());
    let notifier =
        crate::notify::Notifier::new(&config.webhooks, &config.data_dir, metrics.clone()).map_err(ConfigError::from)?;
    let (order_hook, order_effects) = crate::orders::OrderHook::new();
    // Marketplace connectors: built now (their hook goes to the partition threads), started once
    // the server is ready. Their sync state lives beside the logs.
    let connectors = if config.shops.is_empty() {
        None
    } else {
        let dir = config.data_dir.join("shops");
        let c = oms_connectors::Connectors::new(config.shops.clone(), &dir, metrics.shops.clone())
            .map_err(|e| DaemonError::Connectors(e.to_string()))?;
        Some(Arc::new(c))
    };
    let acks = Arc::new(crate::replication::AckBoard::new(
        config.partitions,
        config.replicas as usize,
        config.ack_after_replica,
        config.replica_ack_timeout,
        metrics.clone(),
    ));
    if config.ack_after_replica {
        tracing::info!(
            replicas = config.replicas,
            timeout_ms = config.replica_ack_timeout.as_millis() as u64,
            "--ack-after-replica: writes are answered once the followers hold them"
        );
    } else if config.replicas > 0 {
        tracing::warn!(
            replicas = config.replicas,
            "--replicas without --ack-after-replica: writes are acknowledged after the local commit only"
        );
    }
    let worker_config = WorkerConfig {
        queue_capacity: config.queue_capacity,
        batch_limit: config.batch_limit,
        tick_interval: config.tick_interval,
        expiry_budget_per_tick: config.expiry_budget_per_tick,
        snapshot_every: config.snapshot_every,
        retention: Retention { min_bytes: 2 * config.segment_bytes, min_age: config.log_retention },
        notifier: notifier.clone(),
        orders: Some(order_hook.clone()),
        replica_ack: acks.holds().then(|| acks.clone()),
        connectors: connectors.as_ref().map(|c| Arc::new(crate::connectors::ConnectorHook::new(c.clone()))),
    };
    let workers =
        spawn_workers(recovered, worker_config, board.clone(), metrics.clone()).map_err(DaemonError::Threads)?;
    if config.follow.is_some() {
        workers.set_following(true);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads)
        .thread_name("omsd-io")
        .enable_all()
        .build()
        .map_err(DaemonError::Threads)?;
    if let Some(notifier) = &notifier {
        notifier.start(runtime.handle()).map_err(DaemonError::Threads)?;
    }
    let ctx = Arc::new(ServerCtx {
        config: config.clone(),
        workers,
        index,
        board,
        metrics: metrics.clone(),
        auth,
        ready: AtomicBool::new(false),
        shutting_down: AtomicBool::new(false),
        shutdown: tokio::sync::Notify::new(),
        open_connections: AtomicUsize::new(0),
        replication: crate::replication::ReplicationState::new(
            config.follow.clone(),
            config.follow_api_key.clone(),
            acks,
        )
        .with_tls(follow_tls),
        connectors: connectors.clone(),
        keys_in_flight: Default::default(),
    });
    {
        let _entered = runtime.enter();
        crate::orders::spawn_effects(ctx.clone(), order_hook, order_effects);
    }
    let served = runtime.block_on(serve(ctx.clone(), metrics, tls));
    if let Some(c) = &connectors {
        // Stop pushing and record what the platforms acknowledged, as a clean stop.
        c.shutdown();
    }
    // Partition threads drain their queues, flush and write a final snapshot.
    ctx.workers.shutdown();
    // The partition threads have stopped: spool the last events so they are sent after a restart.
    if let Some(notifier) = &notifier {
        notifier.flush(Duration::from_secs(2));
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    tracing::info!("omsd stopped");
    served
}

async fn serve(
    ctx: Arc<ServerCtx>,
    metrics: Arc<Metrics>,
    tls: Option<crate::tls::TlsAcceptor>,
) -> Result<(), DaemonError> {
    let config = &ctx.config;
    let admin_state = Arc::new(AdminState { metrics, ctx: std::sync::OnceLock::new() });
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: config.admin_listen, source })?;
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| DaemonError::Listen { addr: config.listen, source })?;
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: config.http_listen, source })?;
    let console_listener = TcpListener::bind(config.console_listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: config.console_listen, source })?;
    let _ = admin_state.ctx.set(ctx.clone());
    let admin = tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, admin::router(admin_state)).await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    if let Some(primary) = &config.follow {
        tracing::info!(%primary, "follower: replicating the primary's log; writes are refused until promoted");
        crate::replication::spawn_follower(ctx.clone());
    } else if config.demo && ctx.index.sku_count() == 0 {
        crate::demo::load(&ctx).await.map_err(DaemonError::Demo)?;
    }
    ctx.ready.store(true, Ordering::Release);
    if let Some(c) = &ctx.connectors {
        c.start(Arc::new(crate::connectors::GatewayHost { ctx: ctx.clone() }));
    }
    let local = listener.local_addr().unwrap_or(config.listen);
    let http_local = http_listener.local_addr().unwrap_or(config.http_listen);
    // The HTTP API serves once the server is ready (recovered, demo catalog loaded), like the
    // storefront port whose requests wait for the same moment.
    let http = tokio::spawn(crate::http::serve(ctx.clone(), http_listener, tls.clone()));
    let console_local = console_listener.local_addr().unwrap_or(config.console_listen);
    let console = tokio::spawn(crate::console::serve(ctx.clone(), console_listener, tls.clone()));
    let transport = if tls.is_some() { "tls" } else { "tcp" };
    tracing::info!(listen = %local, http = %http_local, console = %console_local, transport, admin = %config.admin_listen, fsync = ?config.durability, "omsd ready on {local}");
    // systemd (Type=notify): `systemctl start` returns now. Does nothing outside systemd.
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd omsd is ready");
    }

    let connection_limit = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(permit) = connection_limit.clone().try_acquire_owned() else {
                    ctx.metrics.refused.get_or_create(&crate::metrics::ReasonLabel { reason: "max_connections" }).inc();
                    tracing::warn!(%peer, limit = config.max_connections, "refusing connection: too many connections");
                    drop(stream);
                    continue;
                };
                let ctx = ctx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    ctx.metrics.connections.inc();
                    ctx.open_connections.fetch_add(1, Ordering::AcqRel);
                    match tls {
                        Some(acceptor) => serve_tls_connection(ctx.clone(), acceptor, stream, peer).await,
                        None => serve_connection(ctx.clone(), stream, peer).await,
                    }
                    ctx.open_connections.fetch_sub(1, Ordering::AcqRel);
                    ctx.metrics.connections.dec();
                    drop(permit);
                });
            }
        }
    }
    tracing::info!("shutdown requested: no new connections; draining in-flight requests");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    drop(listener);
    ctx.ready.store(false, Ordering::Release);
    ctx.shutting_down.store(true, Ordering::Release);
    ctx.shutdown.notify_waiters();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ctx.open_connections.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        ctx.shutdown.notify_waiters();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin.abort();
    http.abort();
    console.abort();
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
