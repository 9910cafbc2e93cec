//! TLS (rustls, ring provider) for the storefront port, for the clients that dial it (`Client`,
//! `oms`, followers, log subscribers) and for `https://` webhooks. See docs/PROTOCOL.md ("TLS").
//!
//! The ring provider is named explicitly everywhere instead of relying on the process default, so
//! a dependency that enables another provider cannot silently change which one is used (and
//! aws-lc-rs, rustls' default, would need cmake and a C toolchain to build).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read TLS {what} file {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: io::Error },
    #[error("TLS {what} file {path} is not valid PEM: {reason}")]
    Pem { what: &'static str, path: PathBuf, reason: String },
    #[error("TLS {what} file {path} holds no {expected}")]
    Empty { what: &'static str, path: PathBuf, expected: &'static str },
    #[error("TLS CA file {path}: certificate refused as a trust anchor: {source}")]
    Anchor { path: PathBuf, source: rustls::Error },
    #[error("TLS certificate {cert} and key {key} cannot be used together: {source}")]
    CertKey { cert: PathBuf, key: PathBuf, source: rustls::Error },
    #[error("invalid TLS server name {0:?} (expected a DNS name or an IP address)")]
    ServerName(String),
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what, path: path.to_owned(), expected: "CERTIFICATE block" });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "key";
    let pem = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::Empty { what, path: path.to_owned(), expected: "private key (PKCS#8, PKCS#1 or SEC1 PEM block)" }
        }
        other => TlsError::Pem { what, path: path.to_owned(), reason: other.to_string() },
    })
}

/// The storefront port's TLS acceptor from a PEM certificate chain (leaf first) and its key.
/// Every failure names the file, so a bad deployment stops omsd at start with a clear message.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates("certificate", cert)?;
    let key_der = private_key(key)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|source| TlsError::CertKey { cert: cert.to_owned(), key: key.to_owned(), source })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How a client verifies the server: which roots it trusts and which name it expects.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    /// Overrides the host part of the address as the name the certificate must carry.
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trust only the certificates in `ca` (a private CA, or the server's own self-signed
    /// certificate) or, without it, the public web PKI (webpki-roots). A private CA replaces the
    /// public roots rather than adding to them, so a publicly trusted certificate cannot stand in
    /// for the private server.
    pub fn new(ca: Option<&Path>, server_name: Option<&str>) -> Result<ClientTls, TlsError> {
        ClientTls::build(ca, ca.is_none(), server_name)
    }

    /// The public web PKI plus, if given, the certificates in `extra_ca` (webhooks: public robots
    /// and private receivers alike).
    pub fn public_and(extra_ca: Option<&Path>) -> Result<ClientTls, TlsError> {
        ClientTls::build(extra_ca, true, None)
    }

    fn build(ca: Option<&Path>, public: bool, server_name: Option<&str>) -> Result<ClientTls, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        if public {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(path) = ca {
            for cert in certificates("CA", path)? {
                roots.add(cert).map_err(|source| TlsError::Anchor { path: path.to_owned(), source })?;
            }
        }
        let server_name = server_name
            .map(|name| ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName(name.to_owned())))
            .transpose()?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls { config: Arc::new(config), server_name })
    }

    /// The rustls configuration (trusted roots, ring provider), for HTTP clients built on it.
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The name checked against the server's certificate: the configured one, else the host part
    /// of `addr` (`host:port`, `[v6]:port` or a bare host).
    pub fn server_name_for(&self, addr: &str) -> io::Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = host_of(addr);
        ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a valid TLS server name"))
        })
    }

    /// Run the TLS handshake over an open TCP connection to `addr`.
    pub async fn handshake<S>(&self, addr: &str, stream: S) -> io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.server_name_for(addr)?;
        tokio_rustls::TlsConnector::from(self.config.clone()).connect(name, stream).await
    }
}

fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => addr,
    }
}

/// A client connection that may or may not be encrypted, for the paths where one enum branch per
/// read is nothing next to the work (log subscriptions, webhooks). The request client is generic
/// over its halves instead, so its plain path is the same code as before TLS existed.
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// TCP connect (no delay) and, with `tls`, the TLS handshake. A failed handshake is an
    /// `io::Error` whose text carries rustls' reason (e.g. an unknown issuer).
    pub async fn connect(addr: &str, tls: Option<&ClientTls>) -> io::Result<MaybeTls> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(MaybeTls::Plain(tcp)),
            Some(tls) => Ok(MaybeTls::Tls(Box::new(tls.handshake(addr, tcp).await?))),
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_taken_from_the_address() {
        // Checks the server name derived from each address form a user may type.
        assert_eq!(host_of("127.0.0.1:7700"), "127.0.0.1");
        assert_eq!(host_of("oms.internal:7700"), "oms.internal");
        assert_eq!(host_of("[::1]:7700"), "::1");
        assert_eq!(host_of("oms.internal"), "oms.internal");
        assert_eq!(host_of("::1"), "::1");
    }

    #[test]
    fn missing_and_empty_files_are_typed_errors() {
        // Checks that a missing certificate and a file without PEM blocks name the file and the
        // problem instead of panicking.
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.pem");
        let err = acceptor(&missing, &missing).err().expect("missing file refused");
        assert!(matches!(err, TlsError::Read { what: "certificate", .. }), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").expect("write");
        let err = acceptor(&empty, &empty).err().expect("empty file refused");
        assert!(matches!(err, TlsError::Empty { .. }), "{err}");
        let err = ClientTls::new(Some(&empty), None).err().expect("empty CA refused");
        assert!(matches!(err, TlsError::Empty { what: "CA", .. }), "{err}");
        assert!(matches!(ClientTls::new(None, Some("bad name!")), Err(TlsError::ServerName(_))));
    }
}
