//! The committed OpenAPI document (docs/openapi.json) is the one the code generates.
//!
//! Regenerate after changing a route or a body type with
//! `UPDATE_OPENAPI=1 cargo test -p oms-gateway --test openapi`.

use std::path::Path;

#[test]
fn committed_openapi_document_matches_the_code() {
    // Checks docs/openapi.json byte for byte against the document utoipa generates from the
    // handlers (the same text GET /openapi.json serves), so a route or body change that is not
    // committed to the document fails here.
    let generated = oms_gateway::http::document();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the generated document; regenerate it with \
         UPDATE_OPENAPI=1 cargo test -p oms-gateway --test openapi"
    );
    // A sanity check that the comparison is about a real document.
    let value: serde_json::Value = serde_json::from_str(&generated).expect("the document is JSON");
    assert!(value["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(value["paths"]["/v1/reservations"]["post"].is_object());
}
