//! `oms catalog load FILE`: JSON or CSV catalogs, loaded idempotently (defines are upserts and
//! stock uses set-on-hand, so loading the same file twice gives the same state).

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use oms_client::{Client, ClientError};
use oms_proto::json::{JsonLine, SkuKey, StockOp, WarehouseKey};
use oms_proto::ErrorCode;

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    #[serde(default)]
    pub warehouses: Vec<WarehouseDef>,
    #[serde(default)]
    pub skus: Vec<SkuDef>,
    #[serde(default)]
    pub kits: Vec<KitDef>,
    #[serde(default)]
    pub stock: Vec<StockDef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseDef {
    pub id: u16,
    pub code: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub priority: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuDef {
    pub code: String,
    #[serde(default)]
    pub low_stock_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitDef {
    pub code: String,
    pub components: Vec<ComponentDef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDef {
    pub sku: String,
    pub qty: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockDef {
    pub sku: String,
    pub warehouse: u16,
    pub on_hand: u64,
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoadSummary {
    pub warehouses: usize,
    /// Warehouses defined automatically (code `WH<id>`) because the CSV referenced them.
    pub warehouses_auto_defined: usize,
    pub skus: usize,
    pub kits: usize,
    pub stock: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: unknown catalog format (use a .json or .csv file)")]
    Format { path: String },
    #[error("{path}: invalid JSON catalog: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("{path}:{line}: {message}")]
    Csv { path: String, line: usize, message: String },
    #[error("{what}: {source}")]
    Server { what: String, source: ClientError },
}

impl CatalogError {
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            CatalogError::Server { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Parse a file by extension (`.json` or `.csv`, case-insensitive).
pub fn read_catalog(path: &Path) -> Result<CatalogFile, CatalogError> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CatalogError::Read { path: display.clone(), source })?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => serde_json::from_slice(&bytes).map_err(|source| CatalogError::Json { path: display, source }),
        Some("csv") => parse_csv(&display, &decode_text(&display, &bytes)?),
        _ => Err(CatalogError::Format { path: display }),
    }
}

/// The text of a spreadsheet export: UTF-8 (a byte-order mark is dropped), or, when the bytes are
/// not UTF-8, GBK/GB 18030 (what Excel on a Chinese Windows saves as "CSV").
pub fn decode_text(path: &str, bytes: &[u8]) -> Result<String, CatalogError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(CatalogError::Csv {
            path: path.to_owned(),
            line: 1,
            message: "the file is neither UTF-8 nor GBK text".into(),
        });
    }
    Ok(text.into_owned())
}

/// CSV (RFC 4180 through the csv crate: quoted fields, commas and quotes inside quotes): header
/// `sku,warehouse,on_hand[,low_stock_threshold]`, one row per SKU x warehouse; blank lines and
/// lines starting with `#` are skipped. Warehouses referenced by the CSV are auto-defined (code
/// `WH<id>`) when the server does not know them.
pub fn parse_csv(path: &str, text: &str) -> Result<CatalogFile, CatalogError> {
    let err = |line: u64, message: String| CatalogError::Csv { path: path.to_owned(), line: line as usize, message };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut rows = reader.records();
    let line_of = |e: &csv::Error| e.position().map_or(1, csv::Position::line);
    let header = match rows.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(err(line_of(&e), e.to_string())),
        None => return Err(err(1, "empty file (expected a header)".into())),
    };
    let header_line = header.position().map_or(1, csv::Position::line);
    let columns: Vec<String> = header.iter().map(str::to_ascii_lowercase).collect();
    let has_threshold = match columns.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["sku", "warehouse", "on_hand"] => false,
        ["sku", "warehouse", "on_hand", "low_stock_threshold"] => true,
        _ => {
            let got = header.iter().collect::<Vec<_>>().join(",");
            return Err(err(
                header_line,
                format!("header must be sku,warehouse,on_hand[,low_stock_threshold], got {got:?}"),
            ));
        }
    };
    let mut catalog = CatalogFile::default();
    let mut seen_skus = BTreeSet::new();
    for row in rows {
        let row = row.map_err(|e| err(line_of(&e), e.to_string()))?;
        let line = row.position().map_or(0, csv::Position::line);
        if row.iter().all(str::is_empty) {
            continue;
        }
        if row.len() != columns.len() {
            return Err(err(line, format!("expected {} fields, got {}", columns.len(), row.len())));
        }
        let field = |i: usize| row.get(i).unwrap_or_default();
        let sku = field(0);
        if sku.is_empty() {
            return Err(err(line, "empty sku".into()));
        }
        let warehouse: u16 = field(1)
            .parse()
            .map_err(|_| err(line, format!("warehouse must be a number 0-65535, got {:?}", field(1))))?;
        let on_hand: u64 =
            field(2).parse().map_err(|_| err(line, format!("on_hand must be a whole number, got {:?}", field(2))))?;
        if has_threshold {
            let threshold: u32 = field(3)
                .parse()
                .map_err(|_| err(line, format!("low_stock_threshold must be a whole number, got {:?}", field(3))))?;
            if seen_skus.insert(sku.to_owned()) {
                catalog.skus.push(SkuDef { code: sku.to_owned(), low_stock_threshold: threshold });
            }
        }
        catalog.stock.push(StockDef { sku: sku.to_owned(), warehouse, on_hand });
    }
    Ok(catalog)
}

fn server(what: impl Into<String>) -> impl FnOnce(ClientError) -> CatalogError {
    let what = what.into();
    move |source| CatalogError::Server { what, source }
}

fn is_refusal(error: &ClientError, name: &str) -> bool {
    matches!(error, ClientError::Refused(e) if Some(e.code) == ErrorCode::from_name(name))
}

/// Apply a catalog: warehouses, SKUs, kits, then stock (set on hand).
pub async fn load(client: &Client, catalog: &CatalogFile) -> Result<LoadSummary, CatalogError> {
    let mut summary = LoadSummary::default();
    for w in &catalog.warehouses {
        client
            .define_warehouse(w.id, &w.code, &w.region, w.priority)
            .await
            .map_err(server(format!("define warehouse {} ({})", w.id, w.code)))?;
        summary.warehouses += 1;
    }
    for s in &catalog.skus {
        client.define_sku(&s.code, s.low_stock_threshold).await.map_err(server(format!("define sku {}", s.code)))?;
        summary.skus += 1;
    }
    // SKUs that stock rows or kits mention without defining: define the unknown ones (threshold 0),
    // leaving existing SKUs (and their thresholds) alone.
    let defined: BTreeSet<&str> =
        catalog.skus.iter().map(|s| s.code.as_str()).chain(catalog.kits.iter().map(|k| k.code.as_str())).collect();
    let mentioned: BTreeSet<&str> = catalog
        .stock
        .iter()
        .map(|s| s.sku.as_str())
        .chain(catalog.kits.iter().flat_map(|k| k.components.iter().map(|c| c.sku.as_str())))
        .filter(|code| !defined.contains(code))
        .collect();
    if !mentioned.is_empty() {
        let codes: Vec<String> = mentioned.iter().map(|c| (*c).to_owned()).collect();
        let ids = client.lookup_skus(codes.clone()).await.map_err(server("look up skus"))?;
        for (code, id) in codes.iter().zip(ids) {
            if id.is_none() {
                client.define_sku(code, 0).await.map_err(server(format!("define sku {code}")))?;
                summary.skus += 1;
            }
        }
    }
    for k in &catalog.kits {
        let components =
            k.components.iter().map(|c| JsonLine { sku: SkuKey::Code(c.sku.clone()), qty: c.qty }).collect();
        client.define_kit(&k.code, components).await.map_err(server(format!("define kit {}", k.code)))?;
        summary.kits += 1;
    }
    let mut auto_defined = BTreeSet::new();
    for s in &catalog.stock {
        let op = || StockOp::SetOnHand {
            sku: SkuKey::Code(s.sku.clone()),
            warehouse: WarehouseKey::Id(s.warehouse),
            on_hand: s.on_hand,
        };
        let what = || format!("set on-hand of {} in warehouse {} to {}", s.sku, s.warehouse, s.on_hand);
        match client.stock_op(op()).await {
            Ok(()) => {}
            Err(e) if is_refusal(&e, "unknown_warehouse") && !auto_defined.contains(&s.warehouse) => {
                let code = format!("WH{}", s.warehouse);
                client
                    .define_warehouse(s.warehouse, &code, "", 0)
                    .await
                    .map_err(server(format!("define warehouse {} ({code})", s.warehouse)))?;
                auto_defined.insert(s.warehouse);
                client.stock_op(op()).await.map_err(server(what()))?;
            }
            Err(e) => return Err(server(what())(e)),
        }
        summary.stock += 1;
    }
    summary.warehouses_auto_defined = auto_defined.len();
    summary.warehouses += auto_defined.len();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_and_without_thresholds() {
        // Checks CSV parsing: both header shapes, comments and blank lines, one SKU def per code.
        let c = parse_csv("x.csv", "sku,warehouse,on_hand,low_stock_threshold\nA,1,10,3\n\n# note\nA,2,5,3\nB,1,0,0\n")
            .unwrap();
        assert_eq!(c.skus.len(), 2);
        assert_eq!(c.stock.len(), 3);
        assert_eq!(c.stock[1], StockDef { sku: "A".into(), warehouse: 2, on_hand: 5 });
        let c = parse_csv("x.csv", "SKU, warehouse, on_hand\nA,1,10\n").unwrap();
        assert!(c.skus.is_empty());
        assert_eq!(c.stock.len(), 1);
    }

    #[test]
    fn csv_errors_name_the_line() {
        // Checks that malformed CSV input is refused with the offending line number.
        let e = parse_csv("x.csv", "sku,qty\n").unwrap_err().to_string();
        assert!(e.contains("x.csv:1"), "{e}");
        let e = parse_csv("x.csv", "sku,warehouse,on_hand\nA,1,10\nB,one,10\n").unwrap_err().to_string();
        assert!(e.contains("x.csv:3"), "{e}");
        let e = parse_csv("x.csv", "sku,warehouse,on_hand\nA,1\n").unwrap_err().to_string();
        assert!(e.contains("x.csv:2"), "{e}");
        assert!(parse_csv("x.csv", "").is_err());
    }

    #[test]
    fn spreadsheet_exports_with_quotes_bom_and_gbk_load() {
        // A quoted code with a comma and a doubled quote, a UTF-8 BOM before the header, and the
        // same file saved as GBK all give the same rows.
        let text = "\u{FEFF}sku,warehouse,on_hand\n\"MUG, \"\"WHITE\"\"\",1,10\n茶叶-龙井,2,5\n";
        let utf8 = decode_text("x.csv", text.as_bytes()).unwrap();
        let c = parse_csv("x.csv", &utf8).unwrap();
        assert_eq!(c.stock[0], StockDef { sku: "MUG, \"WHITE\"".into(), warehouse: 1, on_hand: 10 });
        assert_eq!(c.stock[1].sku, "茶叶-龙井");
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(text.trim_start_matches('\u{FEFF}'));
        assert!(!unmappable);
        assert!(std::str::from_utf8(&gbk).is_err(), "really not UTF-8");
        assert_eq!(parse_csv("x.csv", &decode_text("x.csv", &gbk).unwrap()).unwrap(), c);
        assert!(decode_text("x.csv", &[0xFF, 0xFF, 0xFF]).is_err(), "neither encoding");
    }

    #[test]
    fn json_catalog_shape() {
        // Checks the documented JSON catalog parses, with defaults, and unknown fields are refused.
        let text = r#"{"warehouses":[{"id":1,"code":"SH","region":"east","priority":0}],
            "skus":[{"code":"TSHIRT-RED-XL","low_stock_threshold":5}],
            "kits":[{"code":"GIFT-BOX","components":[{"sku":"MUG-WHT","qty":1}]}],
            "stock":[{"sku":"TSHIRT-RED-XL","warehouse":1,"on_hand":100}]}"#;
        let c: CatalogFile = serde_json::from_str(text).unwrap();
        assert_eq!((c.warehouses.len(), c.skus.len(), c.kits.len(), c.stock.len()), (1, 1, 1, 1));
        let c: CatalogFile = serde_json::from_str(r#"{"warehouses":[{"id":2,"code":"BJ"}]}"#).unwrap();
        assert_eq!(c.warehouses[0].region, "");
        assert!(serde_json::from_str::<CatalogFile>(r#"{"wharehouses":[]}"#).is_err());
    }
}
