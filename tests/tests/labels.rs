//! Waybill labels through the real `oms waybill print` against a real omsd, checked with the
//! tools a warehouse would trust: poppler (`pdffonts`, `pdftotext`, `pdftoppm`) and zbar
//! (`zbarimg`). The PDF is rendered with a fontconfig that knows no font at all, so whatever shows
//! up came from the font embedded in the file.
//!
//! Needs poppler-utils and zbar-tools (installed by `.ci/run`).

use std::path::Path;
use std::process::Command;

use oms_tests::{text, Omsd};
use serde_json::Value;

const CATALOG: &str = r#"{
  "warehouses": [{"id": 1, "code": "SZ-NS", "region": "south", "priority": 0}],
  "skus": [{"code": "TEA-LONGJING-250G"}, {"code": "CUP-CELADON"}],
  "stock": [{"sku": "TEA-LONGJING-250G", "warehouse": 1, "on_hand": 10},
            {"sku": "CUP-CELADON", "warehouse": 1, "on_hand": 10}]
}"#;

const RULES: &str = r#"
[carriers]
default_weight_g = 500
[[carriers.carrier]]
code = "SF"
prefix = "SF"
range_start = 7730000000
range_end = 7739999999
base_cents = 1200
per_kg_cents = 200
cod = true
"#;

const ORDER: &str = r#"{"order_id": "WX-20240611-0001", "buyer": "zhang", "cash_on_delivery": true,
  "address": {"name": "张三丰", "phone": "13812345678", "province": "广东省", "city": "深圳市",
              "district": "南山区", "detail": "科技园南路十八号腾讯大厦三楼", "zip": "518057"},
  "lines": [{"sku": "TEA-LONGJING-250G", "qty": 2, "unit_price_cents": 12800},
            {"sku": "CUP-CELADON", "qty": 1, "unit_price_cents": 4500}]}"#;

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// Run a tool; its stdout (panics with stderr when it fails).
fn tool(program: &str, args: &[&str], fonts: Option<&Path>) -> String {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(conf) = fonts {
        command.env("FONTCONFIG_FILE", conf);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (apt-get install poppler-utils zbar-tools): {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A packed shipment: its id and waybill number.
fn packed_shipment(omsd: &Omsd, dir: &Path) -> (String, String) {
    omsd.oms_ok(&["catalog", "load", &write(dir, "catalog.json", CATALOG)]);
    omsd.oms_json(&["rules", "reload", &write(dir, "rules.toml", RULES)]);
    let imported = omsd.oms_json(&["order", "import", "--channel", "native", &write(dir, "order.json", ORDER)]);
    let order = imported["results"][0]["order"].as_u64().unwrap_or_else(|| panic!("{imported}")).to_string();
    let o = omsd.oms_json(&["order", "get", &order]);
    let shipment = o["shipments"][0]["id"].as_u64().unwrap_or_else(|| panic!("{o}")).to_string();
    let waves = omsd.oms_json(&["wave", "create", "--warehouse", "1"]);
    // Packing waits for the wave's pick list to be scanned (`oms wave scan`).
    for w in waves["waves"].as_array().into_iter().flatten() {
        let id = w["wave"].as_u64().unwrap_or_else(|| panic!("{waves}")).to_string();
        let wave = omsd.oms_json(&["wave", "get", &id]);
        for item in wave["pick_list"].as_array().into_iter().flatten() {
            let sku = item["sku_code"].as_str().unwrap_or_else(|| panic!("{wave}"));
            omsd.oms_json(&["wave", "scan", &id, sku, "--qty", &item["qty"].to_string()]);
        }
    }
    let packed = omsd.oms_json(&["shipment", "pack", &shipment]);
    let waybill = packed["waybill"].as_str().unwrap_or_else(|| panic!("{packed}")).to_owned();
    (shipment, waybill)
}

/// Grey pixels (0 = black) of a binary PGM (`pdftoppm -gray`): (width, height, pixels).
fn read_pgm(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).expect("pgm written");
    // "P5\n<w> <h>\n255\n" then the pixels.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    let (w, h): (usize, usize) = (fields[1].parse().expect("width"), fields[2].parse().expect("height"));
    (w, h, bytes[at + 1..at + 1 + w * h].to_vec())
}

/// Grey pixels of an 8-bit RGBA PNG.
fn read_png(path: &Path) -> (usize, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("png written"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let grey = buf[..info.buffer_size()].chunks(channels).map(|p| p[0]).collect();
    (info.width as usize, info.height as usize, grey)
}

/// Of the dark pixels in rows `rows` of either image, the share dark in both (1.0: identical ink).
fn ink_overlap(a: &(usize, usize, Vec<u8>), b: &(usize, usize, Vec<u8>), rows: std::ops::Range<usize>) -> f64 {
    let width = a.0.min(b.0);
    let (mut both, mut either) = (0u64, 0u64);
    for y in rows {
        for x in 0..width {
            let (da, db) = (a.2[y * a.0 + x] < 128, b.2[y * b.0 + x] < 128);
            both += u64::from(da && db);
            either += u64::from(da || db);
        }
    }
    assert!(either > 500, "the band has ink ({either} dark pixels)");
    both as f64 / either as f64
}

#[test]
fn pdf_label_embeds_its_font_and_prints_chinese_and_the_barcode_without_system_fonts() {
    // Prints the label of a packed shipment with a Chinese address as PDF (76x130 mm), PNG and ZPL.
    // pdffonts: every font is embedded. pdftotext: the address, masked phone, codes and waybill
    // are the text. pdftoppm under a fontconfig with no fonts: the page renders the same ink as
    // omsd's own PNG of the label (so the Chinese glyphs came from the embedded font, not boxes),
    // and zbarimg reads the waybill number from the rendered page.
    let omsd = Omsd::start(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let dir = files.path();
    let (shipment, waybill) = packed_shipment(&omsd, dir);
    let pdf = dir.join("label.pdf");
    let printed = omsd.oms_json(&["waybill", "print", &shipment, "--out", &pdf.to_string_lossy()]);
    assert_eq!((printed["waybill"].as_str(), printed["format"].as_str()), (Some(waybill.as_str()), Some("pdf")));
    assert_eq!(printed["size_mm"], serde_json::json!([76.0, 130.0]));

    let fonts = tool("pdffonts", &[&pdf.to_string_lossy()], None);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for row in &rows {
        assert!(row.contains("NotoSansCJKsc"), "the bundled font: {row}");
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type type encoding emb sub uni object id: emb and sub are "yes".
        assert_eq!(&cols[cols.len() - 5..cols.len() - 2], &["yes", "yes", "yes"], "embedded, subset, unicode: {row}");
    }

    let page_text = tool("pdftotext", &["-layout", &pdf.to_string_lossy(), "-"], None);
    for expected in [
        "张三丰",
        "138****5678",
        "广东省 深圳市 南山区",
        "科技园南路十八号",
        "518057",
        "SZ-NS",
        "TEA-LONGJING-250G",
        "CUP-CELADON",
        &waybill,
    ] {
        assert!(page_text.contains(expected), "{expected:?} in the text:\n{page_text}");
    }
    assert!(!page_text.contains("13812345678"), "the full phone is not printed");

    // Render with no fonts available at all.
    let empty = dir.join("fonts.conf");
    std::fs::write(
        &empty,
        format!(
            "<?xml version=\"1.0\"?>\n<fontconfig><cachedir>{}</cachedir></fontconfig>\n",
            dir.join("fc-cache").display()
        ),
    )
    .expect("write fonts.conf");
    let rendered = dir.join("page");
    tool(
        "pdftoppm",
        &["-r", "203", "-gray", "-singlefile", &pdf.to_string_lossy(), &rendered.to_string_lossy()],
        Some(&empty),
    );
    let page = read_pgm(&dir.join("page.pgm"));
    assert!((page.0 as i64 - 607).abs() <= 1, "76 mm at 203 dpi: {} dots", page.0);
    let scanned = tool("zbarimg", &["--raw", "-q", &dir.join("page.pgm").to_string_lossy()], None);
    assert_eq!(scanned.trim(), waybill, "the barcode scans from the rendered PDF");

    let png = dir.join("label.png");
    omsd.oms_json(&["waybill", "print", &shipment, "--format", "png", "--out", &png.to_string_lossy()]);
    let image = read_png(&png);
    assert_eq!(tool("zbarimg", &["--raw", "-q", &png.to_string_lossy()], None).trim(), waybill);
    // The recipient block (name, region, street: 45-70 mm from the top) has the same ink in both.
    let mm = |v: f64| (v / 25.4 * 203.0) as usize;
    let overlap = ink_overlap(&page, &image, mm(45.0)..mm(70.0));
    assert!(overlap > 0.6, "the PDF's Chinese text renders like the font's own glyphs: overlap {overlap:.2}");

    // ZPL: native barcode, Chinese as bitmaps, the printer's page size.
    let zpl = omsd.oms(&["waybill", "print", &shipment, "--format", "zpl", "--size", "100x180", "--out", "-"]);
    assert!(zpl.status.success(), "{}", text(&zpl.stderr));
    let zpl = text(&zpl.stdout);
    assert!(zpl.starts_with("^XA") && zpl.trim_end().ends_with("^XZ"), "{zpl}");
    assert!(zpl.contains("^PW799\n") && zpl.contains("^LL1439\n"), "100x180 mm at 203 dpi");
    assert!(zpl.contains(&format!("^FD{waybill}^FS")) && zpl.contains("^BCN"));
    assert!(zpl.contains("^GFA,"));
}

#[test]
fn bad_label_options_are_usage_errors_and_full_phone_is_for_ops() {
    // A size or dpi out of range exits 2 (usage) before asking the server; --full-phone with the
    // loopback ops identity prints the whole number.
    let omsd = Omsd::start(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let dir = files.path();
    let (shipment, _) = packed_shipment(&omsd, dir);
    for args in [["--size", "10x10"], ["--size", "wide"], ["--dpi", "5"]] {
        let out = omsd.oms(&[&["waybill", "print", &shipment][..], &args[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
    let pdf = dir.join("full.pdf");
    omsd.oms_ok(&["waybill", "print", &shipment, "--full-phone", "--out", &pdf.to_string_lossy()]);
    let page_text = tool("pdftotext", &[&pdf.to_string_lossy(), "-"], None);
    assert!(page_text.contains("13812345678"), "{page_text}");
    let unknown = omsd.oms(&["--json", "waybill", "print", "999999"]);
    assert_eq!(unknown.status.code(), Some(1), "an unknown shipment is refused");
    let err: Value = serde_json::from_str(&text(&unknown.stdout)).expect("JSON error");
    assert_eq!(err["ok"], false, "{err}");
}
