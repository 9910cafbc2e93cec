//! The HTTP port's accept loop: the connection limit (`max_connections`, counted apart from the
//! binary port's), TLS with the storefront port's acceptor and handshake deadline, HTTP/1.1 by
//! hyper with a header-read deadline (which also closes idle keep-alive connections), the peer
//! address for the loopback rule, and a graceful close on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower_service::Service;

use super::bridge::Peer;
use crate::metrics::ReasonLabel;
use crate::server::ServerCtx;

/// Serve the API on `listener` until the process stops (the daemon aborts this task after its
/// drain; open connections finish their request and close on the shutdown notice).
pub async fn serve(ctx: Arc<ServerCtx>, listener: TcpListener, tls: Option<crate::tls::TlsAcceptor>) {
    let router = super::router(ctx.clone());
    serve_router(ctx, listener, tls, router).await
}

/// Serve `router` with this accept loop (the web console serves its own router, which mounts
/// this API's, the same way); every request carries its [`Peer`] in its extensions.
pub async fn serve_router(
    ctx: Arc<ServerCtx>,
    listener: TcpListener,
    tls: Option<crate::tls::TlsAcceptor>,
    router: Router,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(ctx.config.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "max_connections" }).inc();
            tracing::warn!(%peer, limit = ctx.config.max_connections, "refusing HTTP connection: too many connections");
            continue;
        };
        let ctx = ctx.clone();
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            ctx.open_connections.fetch_add(1, Ordering::AcqRel);
            let _ = stream.set_nodelay(true);
            match tls {
                Some(acceptor) => serve_tls(&ctx, acceptor, stream, peer, router).await,
                None => serve_connection(&ctx, stream, peer, router).await,
            }
            ctx.open_connections.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
        });
    }
}

async fn serve_tls(
    ctx: &Arc<ServerCtx>,
    acceptor: crate::tls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
) {
    match tokio::time::timeout(ctx.config.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(ctx, stream, peer, router).await,
        Ok(Err(e)) => {
            ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "tls_handshake" }).inc();
            tracing::warn!(%peer, error = %e, "HTTP TLS handshake failed; closing connection");
        }
        Err(_) => {
            ctx.metrics.refused.get_or_create(&ReasonLabel { reason: "handshake_timeout" }).inc();
            tracing::warn!(%peer, "HTTP TLS handshake not completed in time; closing connection");
        }
    }
}

async fn serve_connection<I>(ctx: &Arc<ServerCtx>, io: I, peer: SocketAddr, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        let mut router = router.clone();
        async move {
            Ok::<_, Infallible>(router.call(request.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {}))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // A request's headers must arrive within this long of the connection (or the previous
        // answer): slow clients and idle keep-alive connections do not hold a slot for long.
        .header_read_timeout(ctx.config.handshake_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
            return;
        }
        _ = ctx.shutdown.notified() => {}
    }
    // Shutting down: finish the request in progress (answered after its log flush), then close.
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
}
