//! A connection to omsd that may or may not be encrypted. The pipelined [`crate::Client`] splits
//! a plain one without a lock (so its plain path costs nothing for TLS existing); the sequential
//! users (log subscriptions, the load generator, webhooks in the server) use it whole.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What a client needs to open a connection: TLS settings when the `tls` feature is on.
#[cfg(feature = "tls")]
pub type TlsSettings = crate::tls::ClientTls;
/// Without the `tls` feature there are no TLS settings; a `None` is always passed.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug)]
pub enum TlsSettings {}

pub enum MaybeTls {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// TCP connect (no delay) and, with `tls`, the TLS handshake. A failed handshake is an
    /// `io::Error` whose text carries rustls' reason (e.g. an unknown issuer).
    pub async fn connect(addr: &str, tls: Option<&TlsSettings>) -> io::Result<MaybeTls> {
        let tcp = TcpStream::connect(addr).await?;
        MaybeTls::over(tcp, addr, tls).await
    }

    /// Wrap an open TCP connection to `addr` (no delay), running the TLS handshake with `tls`.
    pub async fn over(tcp: TcpStream, addr: &str, tls: Option<&TlsSettings>) -> io::Result<MaybeTls> {
        let _ = tcp.set_nodelay(true);
        let _ = addr;
        match tls {
            None => Ok(MaybeTls::Plain(tcp)),
            #[cfg(feature = "tls")]
            Some(tls) => Ok(MaybeTls::Tls(Box::new(tls.handshake(addr, tcp).await?))),
            #[cfg(not(feature = "tls"))]
            Some(never) => match *never {},
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
