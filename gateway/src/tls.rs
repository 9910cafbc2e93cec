//! TLS (rustls, ring provider) for the storefront port. The client side (trusted roots, the
//! expected name, the plain-or-TLS stream) is `oms_client::tls`, re-exported here for the
//! server's own outgoing connections (followers, `https://` webhooks). See docs/PROTOCOL.md
//! ("TLS").

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

pub use oms_client::tls::{certificates, provider, read, ClientTls, TlsError};
pub use oms_client::MaybeTls;
pub use tokio_rustls::TlsAcceptor;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
