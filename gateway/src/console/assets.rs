//! The front end's built bundle (`console/dist`, produced by `npm run build` in `console/` and
//! committed), embedded in the binary so omsd serves the console with no files beside it.
//! `build.rs` makes cargo rebuild when the bundle changes; CI rebuilds the bundle from the
//! sources and fails when it differs from the committed one.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

static BUNDLE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../console/dist");

/// Vite names every built asset by a hash of its content, so a browser may keep it for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn serve(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "the console's files are read with GET\n").into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = BUNDLE.get_file(path) else {
        return (StatusCode::NOT_FOUND, format!("no such page: /{path}\n")).into_response();
    };
    let mut response = file.contents().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    if path.starts_with("assets/") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    }
    response
}

/// The types Vite emits; anything else is served as bytes (and `nosniff` keeps it so).
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::BUNDLE;

    #[test]
    fn embedded_bundle_is_whole() {
        // Checks that the embedded bundle has an index page, that every script and stylesheet the
        // page names is embedded too (a half-copied dist/ would serve a blank page), and that the
        // page has no inline script (the CSP would block it).
        let index = BUNDLE.get_file("index.html").and_then(|f| f.contents_utf8()).expect("dist/index.html embedded");
        let mut referenced = 0;
        for attribute in ["src=\"/", "href=\"/"] {
            for (at, _) in index.match_indices(attribute) {
                let rest = &index[at + attribute.len()..];
                let path = &rest[..rest.find('"').expect("closing quote")];
                assert!(BUNDLE.get_file(path).is_some(), "index.html names /{path}, which is not embedded");
                referenced += 1;
            }
        }
        assert!(referenced >= 2, "index.html names no script or stylesheet");
        assert!(
            !index.contains("<script>") && !index.contains("<script type=\"module\">"),
            "inline script in index.html"
        );
    }

    #[test]
    fn content_types() {
        // Checks the types of the files Vite emits.
        assert_eq!(super::content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(super::content_type("assets/index-x.js"), "text/javascript; charset=utf-8");
        assert_eq!(super::content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(super::content_type("README"), "application/octet-stream");
    }
}
