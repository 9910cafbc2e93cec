use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("invalid --target {0:?}: expected omsd://HOST:PORT, redis://HOST:PORT or postgres://USER@HOST:PORT/DB")]
    Target(String),
    #[error("invalid argument: {0}")]
    Args(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("i/o error ({what}): {source}")]
    Io { what: String, source: std::io::Error },
    #[error("connection closed by the server")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("handshake refused: {0}")]
    Handshake(String),
    #[error("setup failed: {0}")]
    Setup(String),
    #[error("audit query failed: {0}")]
    Audit(String),
    #[error("scenario {scenario} is not supported against {target}")]
    Unsupported { scenario: &'static str, target: &'static str },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Tls(#[from] oms_client::tls::TlsError),
}
