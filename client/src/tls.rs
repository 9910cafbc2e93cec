//! TLS for the clients that dial omsd (rustls, ring provider): which roots a client trusts and
//! which name it expects (docs/PROTOCOL.md, "TLS"). Also used by the server for its own outgoing
//! connections (followers, `https://` webhooks) and for reading PEM files.
//!
//! The ring provider is named explicitly instead of relying on the process default, so a
//! dependency that enables another provider cannot silently change which one is used (and
//! aws-lc-rs, rustls' default, would need cmake and a C toolchain to build).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

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

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
}

pub fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

    /// The rustls configuration (trusted roots, ring provider), for HTTP clients built on it
    /// (omsd's webhooks).
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
    fn an_empty_ca_file_and_a_bad_name_are_typed_errors() {
        // Checks a CA file without PEM blocks names the file, and a bad server name is refused.
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").expect("write");
        let err = ClientTls::new(Some(&empty), None).expect_err("empty CA refused");
        assert!(matches!(err, TlsError::Empty { what: "CA", .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");
        assert!(matches!(ClientTls::new(None, Some("bad name!")), Err(TlsError::ServerName(_))));
    }
}
