//! A minimal HTTP/1.1 POST client (one request per connection) for webhook delivery, over plain
//! TCP (`http://`) or rustls (`https://`, see `crate::tls`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::{ClientTls, MaybeTls};

/// Largest answer read (status line, headers and the start of the body).
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct Target {
    /// host:port to connect to.
    pub addr: String,
    /// Host header.
    pub host: String,
    /// Path and query.
    pub path: String,
    /// `https://`: the connection speaks TLS and the certificate must name the host.
    pub https: bool,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (https, rest) = match url.split_once("://") {
            Some(("http", rest)) => (false, rest),
            Some(("https", rest)) => (true, rest),
            _ => return Err("expected an http:// or https:// URL".into()),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err("expected http[s]://host[:port]/path".into());
        }
        let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        Ok(Target { addr, host: authority.to_owned(), path, https })
    }
}

/// POST a JSON body; returns the status code and the (start of the) answer's body.
/// `tls` is used for `https://` targets (it is built for every webhook that needs it).
pub async fn post_json(
    target: &Target,
    body: &str,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<(u16, String), String> {
    tokio::time::timeout(timeout, exchange(target, body, tls))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

async fn exchange(target: &Target, body: &str, tls: Option<&ClientTls>) -> Result<(u16, String), String> {
    let tls = if target.https { Some(tls.ok_or("https target without a TLS configuration")?) } else { None };
    let mut stream = MaybeTls::connect(&target.addr, tls).await.map_err(|e| format!("connect {}: {e}", target.addr))?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: omsd/{}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    stream.write_all(body.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    stream.flush().await.map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // Many HTTPS servers close without a TLS close_notify after `Connection: close`;
            // rustls reports that as an error, but the answer read so far is complete.
            Err(_) if !answer.is_empty() => break,
            Err(e) => return Err(format!("read: {e}")),
        };
        if n == 0 || answer.len() >= MAX_ANSWER {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        if let Some(expected) = complete_length(&answer) {
            if answer.len() >= expected {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "not an HTTP answer".to_owned())?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Total answer length when the headers are complete and carry a Content-Length.
fn complete_length(answer: &[u8]) -> Option<usize> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok()).flatten()
    })?;
    Some(end + length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_webhook_urls() {
        // Checks host, port (80 / 443 by scheme) and path extraction, and that junk is refused.
        let t = Target::parse("http://127.0.0.1:8080/robot/send?access_token=x").expect("valid");
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("127.0.0.1:8080", "/robot/send?access_token=x"));
        let t = Target::parse("http://hooks.example").expect("valid");
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("hooks.example:80", "/"));
        let t = Target::parse("http://h:1?k=v").expect("valid");
        assert_eq!(t.path, "/?k=v");
        let t = Target::parse("https://oapi.dingtalk.com/robot/send?access_token=x").expect("valid");
        assert_eq!(
            (t.addr.as_str(), t.path.as_str(), t.https),
            ("oapi.dingtalk.com:443", "/robot/send?access_token=x", true)
        );
        assert!(!Target::parse("http://h:1/").expect("valid").https);
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://").is_err());
    }
}
