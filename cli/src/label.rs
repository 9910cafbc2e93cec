//! Shipping labels: a 4x6 inch PDF rendering (`oms waybill print`) of the label data the server
//! answers for `waybill` (`oms_proto::json::Label`), written by hand: PDF 1.4, Helvetica for Latin text, the standard
//! Adobe-GB1 CID font `STSong-Light` for Chinese addresses (readers substitute it; nothing is
//! embedded), and the waybill number as a Code 128 (code set B) barcode drawn as filled rectangles.

pub use oms_proto::json::{Label, LabelAddress as Address, LabelItem};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    #[error("Code 128 B cannot encode {0:?} (printable ASCII only)")]
    Unencodable(char),
    #[error("nothing to encode")]
    Empty,
    #[error("at most {0} characters fit on a label")]
    TooLong(usize),
}

/// Bar/space widths (in modules) of the Code 128 symbols 0..=105; 106 is the stop pattern.
const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213", // 0
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132", // 10
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211", // 20
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313", // 30
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331", // 40
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111", // 50
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214", // 60
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", // 70
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141", // 80
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141", // 90
    "114131", "311141", "411131", "211412", "211214", "211232", "2331112", // 100..=106
];
const START_B: usize = 104;
const STOP: usize = 106;
/// Characters a label barcode takes (beyond this the bars get too thin to scan).
pub const BARCODE_LIMIT: usize = 48;

/// The symbol values of `text` in Code 128 B: start B, data, checksum (mod 103), stop.
pub fn code128b_symbols(text: &str) -> Result<Vec<usize>, BarcodeError> {
    if text.is_empty() {
        return Err(BarcodeError::Empty);
    }
    if text.chars().count() > BARCODE_LIMIT {
        return Err(BarcodeError::TooLong(BARCODE_LIMIT));
    }
    let mut symbols = vec![START_B];
    let mut sum = START_B;
    for (i, c) in text.chars().enumerate() {
        if !(' '..='~').contains(&c) {
            return Err(BarcodeError::Unencodable(c));
        }
        let value = c as usize - 32;
        sum += (i + 1) * value;
        symbols.push(value);
    }
    symbols.push(sum % 103);
    symbols.push(STOP);
    Ok(symbols)
}

/// The bars of `text` as (start module, width in modules), quiet zones excluded; and the total
/// width in modules.
pub fn code128b_bars(text: &str) -> Result<(Vec<(u32, u32)>, u32), BarcodeError> {
    let mut bars = Vec::new();
    let mut x = 0u32;
    for symbol in code128b_symbols(text)? {
        for (i, w) in PATTERNS[symbol].bytes().enumerate() {
            let w = u32::from(w - b'0');
            if i % 2 == 0 {
                bars.push((x, w));
            }
            x += w;
        }
    }
    Ok((bars, x))
}

/// Escape a Latin-1 string for a PDF literal string.
fn pdf_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// UTF-16BE hex string for the UniGB-UCS2-H CMap (characters beyond the BMP become '?').
fn pdf_ucs2(text: &str) -> String {
    let mut out = String::from("<");
    for c in text.chars() {
        let unit = u16::try_from(u32::from(c)).unwrap_or(0x3F);
        out.push_str(&format!("{unit:04X}"));
    }
    out.push('>');
    out
}

struct Page {
    ops: String,
}

impl Page {
    /// One line of text at (x, y): Helvetica (F1, F2 bold) when ASCII, STSong-Light (F3) otherwise.
    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let (font, string) =
            if text.is_ascii() { (if bold { "F2" } else { "F1" }, pdf_literal(text)) } else { ("F3", pdf_ucs2(text)) };
        self.ops.push_str(&format!("BT /{font} {size} Tf {x:.2} {y:.2} Td {string} Tj ET\n"));
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.ops.push_str(&format!("{x:.3} {y:.3} {w:.3} {h:.3} re f\n"));
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.ops.push_str(&format!("{x1:.2} {y1:.2} m {x2:.2} {y2:.2} l S\n"));
    }
}

/// Cut a line to `max` characters.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(3)).collect();
    s.push_str("...");
    s
}

/// Render the label as a one-page PDF (4 x 6 inches).
pub fn render_pdf(label: &Label) -> Result<Vec<u8>, BarcodeError> {
    const W: f32 = 288.0;
    const H: f32 = 432.0;
    let (bars, modules) = code128b_bars(&label.waybill)?;
    let mut page = Page { ops: String::new() };
    page.ops.push_str("0 g 0 G 1 w\n");
    // Header: carrier and cash on delivery.
    page.text(18.0, H - 36.0, 22.0, true, &clip(&label.carrier, 12));
    if label.cash_on_delivery {
        let cod = format!("COD {}.{:02}", label.cod_cents / 100, label.cod_cents % 100);
        page.text(W - 130.0, H - 34.0, 14.0, true, &cod);
    }
    page.line(12.0, H - 48.0, W - 12.0, H - 48.0);
    // Barcode: 10 modules of quiet zone each side.
    let module = ((W - 36.0) / (modules + 20) as f32).min(3.0);
    let left = (W - module * modules as f32) / 2.0;
    let (bottom, height) = (H - 140.0, 80.0);
    for (x, w) in bars {
        page.rect(left + x as f32 * module, bottom, w as f32 * module, height);
    }
    page.text(left, bottom - 16.0, 12.0, true, &label.waybill);
    page.line(12.0, bottom - 26.0, W - 12.0, bottom - 26.0);
    // Recipient.
    let a = &label.to;
    let mut y = bottom - 44.0;
    page.text(18.0, y, 9.0, true, "TO");
    y -= 15.0;
    page.text(18.0, y, 12.0, false, &clip(&format!("{}  {}", a.name, a.phone), 30));
    let region = format!("{} {} {}", a.province, a.city, a.district);
    // The street address wraps over up to three lines.
    let detail: Vec<char> = a.detail.trim().chars().collect();
    let mut parts: Vec<String> = vec![clip(region.trim(), 24)];
    for (i, chunk) in detail.chunks(22).enumerate() {
        parts.push(if i == 2 && detail.len() > 66 {
            chunk.iter().take(19).collect::<String>() + "..."
        } else {
            chunk.iter().collect()
        });
        if i == 2 {
            break;
        }
    }
    parts.push(a.zip.clone());
    for part in parts {
        if part.trim().is_empty() {
            continue;
        }
        y -= 15.0;
        page.text(18.0, y, 11.0, false, part.trim());
    }
    y -= 12.0;
    page.line(12.0, y, W - 12.0, y);
    // Sender and references.
    y -= 14.0;
    page.text(18.0, y, 9.0, true, "FROM");
    page.text(60.0, y, 9.0, false, &format!("Warehouse {}", label.warehouse));
    y -= 12.0;
    page.text(
        18.0,
        y,
        9.0,
        false,
        &clip(&format!("Order {} ({} {})", label.order, label.channel, label.external_id), 56),
    );
    y -= 12.0;
    page.text(
        18.0,
        y,
        9.0,
        false,
        &format!("Shipment {}   Weight {:.2} kg", label.shipment, f64::from(label.weight_g) / 1000.0),
    );
    y -= 8.0;
    page.line(12.0, y, W - 12.0, y);
    // Items.
    y -= 14.0;
    page.text(18.0, y, 9.0, true, "ITEMS");
    let room = ((y - 14.0) / 11.0).max(0.0) as usize;
    let shown = if label.items.len() > room { room.saturating_sub(1) } else { label.items.len() };
    for item in &label.items[..shown] {
        y -= 11.0;
        page.text(18.0, y, 9.0, false, &clip(&format!("{} x {}", item.sku, item.qty), 50));
    }
    if shown < label.items.len() {
        y -= 11.0;
        page.text(18.0, y, 9.0, false, &format!("... and {} more", label.items.len() - shown));
    }
    Ok(assemble(&page.ops, W, H))
}

/// Write the document: catalog, pages, page, contents, fonts, cross-reference table, trailer.
fn assemble(content: &str, width: f32, height: f32) -> Vec<u8> {
    let objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R /F2 6 0 R /F3 7 0 R >> >> >>"
        ),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".into(),
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [8 0 R] >>"
            .into(),
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light \
         /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor 9 0 R \
         /DW 1000 /W [1 95 500] >>"
            .into(),
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] \
         /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>"
            .into(),
    ];
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code128_patterns_are_well_formed() {
        // Every symbol is 11 modules wide (the stop pattern 13) and starts with a bar.
        for (i, p) in PATTERNS.iter().enumerate() {
            let width: u32 = p.bytes().map(|b| u32::from(b - b'0')).sum();
            assert_eq!(width, if i == STOP { 13 } else { 11 }, "symbol {i}");
        }
        let unique: std::collections::BTreeSet<&str> = PATTERNS.iter().copied().collect();
        assert_eq!(unique.len(), PATTERNS.len(), "patterns are distinct");
    }

    #[test]
    fn code128b_checksum_matches_the_standard_example() {
        // "PJJ123C", the usual worked example (checksum 54 with start A = 103), gives 55 with
        // start B = 104: 104 + 48 + 2*42 + 3*42 + 4*17 + 5*18 + 6*19 + 7*35 = 879 = 8*103 + 55.
        let symbols = code128b_symbols("PJJ123C").unwrap();
        assert_eq!(symbols[0], 104);
        assert_eq!(symbols[symbols.len() - 2], 55);
        assert_eq!(symbols[symbols.len() - 1], 106);
        assert_eq!(code128b_symbols("SF1000").unwrap().len(), 9);
        assert_eq!(code128b_symbols("é"), Err(BarcodeError::Unencodable('é')));
        assert_eq!(code128b_symbols(""), Err(BarcodeError::Empty));
        let (_, modules) = code128b_bars("SF1000").unwrap();
        assert_eq!(modules, 11 * 8 + 13);
    }

    #[test]
    fn the_pdf_has_a_valid_cross_reference_table() {
        // Each xref offset points at its "n 0 obj" line, and the trailer points at the xref.
        let label = Label {
            waybill: "SF1000".into(),
            carrier: "SF".into(),
            shipment: 257,
            order: 1,
            channel: "taobao".into(),
            external_id: "T(1)".into(),
            warehouse: "SH".into(),
            warehouse_id: 1,
            weight_g: 1500,
            cash_on_delivery: true,
            cod_cents: 12345,
            to: Address { name: "李四".into(), detail: "科技园南路 18 号".into(), ..Address::default() },
            items: vec![LabelItem { sku: "TSHIRT-RED-XL".into(), qty: 2 }],
        };
        let pdf = render_pdf(&label).unwrap();
        let text = String::from_utf8_lossy(&pdf).into_owned();
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(text.contains("(SF1000) Tj"));
        assert!(text.contains("(Order 1 \\(taobao T\\(1\\)\\)) Tj"));
        let tail = &text[text.rfind("startxref\n").unwrap() + 10..];
        let startxref: usize = tail.lines().next().unwrap().parse().unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n"));
        let xref = String::from_utf8_lossy(&pdf[startxref..]).into_owned();
        for (i, line) in xref.lines().skip(3).take(9).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(pdf[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
        }
    }
}
