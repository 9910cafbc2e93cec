//! The layout as SVG, and that SVG as PDF (`svg2pdf`: text stays text, in the bundled font,
//! embedded and subset) or PNG (`resvg`). Only the bundled font is ever used: no system font
//! lookup, so a label looks the same on every machine.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use super::layout::{Anchor, Mark};
use super::{layout, Label, LabelError, LabelOptions, FONT, FONT_FAMILY};

const POINTS_PER_MM: f32 = 72.0 / 25.4;

fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_data(FONT.to_vec());
            debug_assert_eq!(db.len(), 1, "the bundled font loads");
            Arc::new(db)
        })
        .clone()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 cannot carry most control characters; a label has no use for them.
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// SVG text for `marks` on a `width` x `height` mm page. The user unit is the millimetre; the
/// document size is given in points so a PDF page comes out at the exact paper size.
fn svg(marks: &[Mark], width: f32, height: f32) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.3}" height="{:.3}" viewBox="0 0 {width} {height}">"#,
        width * POINTS_PER_MM,
        height * POINTS_PER_MM,
    );
    let _ = write!(out, r#"<rect width="{width}" height="{height}" fill="white"/><g fill="black">"#);
    for mark in marks {
        match mark {
            Mark::Text { x, y, size, text, anchor } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let _ = write!(
                    out,
                    r#"<text x="{x:.3}" y="{y:.3}" font-family="{FONT_FAMILY}" font-size="{size:.3}" text-anchor="{anchor}">{}</text>"#,
                    escape(text)
                );
            }
            Mark::Rect { x, y, w, h } => {
                let _ = write!(out, r#"<rect x="{x:.3}" y="{y:.3}" width="{w:.3}" height="{h:.3}"/>"#);
            }
            Mark::Barcode { x, y, module, h, modules, .. } => {
                // One rectangle per run of dark modules.
                let mut i = 0;
                while i < modules.len() {
                    if modules[i] == 0 {
                        i += 1;
                        continue;
                    }
                    let start = i;
                    while i < modules.len() && modules[i] == 1 {
                        i += 1;
                    }
                    let _ = write!(
                        out,
                        r#"<rect x="{:.4}" y="{y:.3}" width="{:.4}" height="{h:.3}"/>"#,
                        x + start as f32 * module,
                        (i - start) as f32 * module
                    );
                }
            }
        }
    }
    out.push_str("</g></svg>");
    out
}

fn tree(svg: &str) -> Result<usvg::Tree, LabelError> {
    let options = usvg::Options { fontdb: fonts(), font_family: FONT_FAMILY.to_owned(), ..usvg::Options::default() };
    usvg::Tree::from_str(svg, &options).map_err(|e| LabelError::Render(e.to_string()))
}

/// The label as an SVG document (sizes in points, user units in millimetres).
pub fn render_svg(label: &Label, options: &LabelOptions) -> Result<String, LabelError> {
    let marks = layout(label, options)?;
    Ok(svg(&marks, options.size.width_mm, options.size.height_mm))
}

/// The label as a one-page PDF with the font embedded (subset to the glyphs used).
pub fn render_pdf(label: &Label, options: &LabelOptions) -> Result<Vec<u8>, LabelError> {
    let tree = tree(&render_svg(label, options)?)?;
    let conversion = svg2pdf::ConversionOptions { embed_text: true, ..svg2pdf::ConversionOptions::default() };
    svg2pdf::to_pdf(&tree, conversion, svg2pdf::PageOptions::default()).map_err(|e| LabelError::Render(e.to_string()))
}

/// Rasterise an SVG at `dpi`, on white.
fn raster(svg: &str, width_mm: f32, height_mm: f32, dpi: u32) -> Result<tiny_skia::Pixmap, LabelError> {
    let tree = tree(svg)?;
    let dots = |mm: f32| ((mm / 25.4 * dpi as f32).round() as u32).max(1);
    let (w, h) = (dots(width_mm), dots(height_mm));
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| LabelError::Render(format!("no {w}x{h} pixel image")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let scale = w as f32 / tree.size().width();
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    Ok(pixmap)
}

/// The label as a PNG image at `options.dpi`.
pub fn render_png(label: &Label, options: &LabelOptions) -> Result<Vec<u8>, LabelError> {
    let svg = render_svg(label, options)?;
    let pixmap = raster(&svg, options.size.width_mm, options.size.height_mm, options.dpi)?;
    pixmap.encode_png().map_err(|e| LabelError::Render(e.to_string()))
}

/// One line of text drawn in the bundled font as a 1-bit bitmap at `dpi` (for ZPL's `^GF`):
/// (width in dots, height in dots, rows of packed bits, most significant bit first, 1 = black).
/// The box is the em box: from `size` above the baseline to a quarter em below it.
pub(super) fn text_bitmap(text: &str, size: f32, dpi: u32) -> Result<(u32, u32, Vec<u8>), LabelError> {
    let width = super::layout::text_width(text, size) + size * 0.2;
    let height = size * 1.25;
    let mark = Mark::Text { x: 0.0, y: size, size, text: text.to_owned(), anchor: Anchor::Start };
    let pixmap = raster(&svg(&[mark], width, height), width, height, dpi)?;
    let (w, h) = (pixmap.width(), pixmap.height());
    let row_bytes = w.div_ceil(8) as usize;
    let mut bits = vec![0u8; row_bytes * h as usize];
    for (i, pixel) in pixmap.pixels().iter().enumerate() {
        // On white, darkness is what the ink took away from the red channel.
        if pixel.red() < 128 {
            let (row, col) = (i / w as usize, i % w as usize);
            bits[row * row_bytes + col / 8] |= 0x80 >> (col % 8);
        }
    }
    Ok((w, h, bits))
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn the_pdf_embeds_the_font_and_keeps_the_text() {
        // Renders a label and checks the PDF names an embedded CFF font (FontFile3) with a
        // ToUnicode map, so text extraction and printing work without system fonts. The e2e
        // test (tests/tests/labels.rs) checks the same with poppler and zbar.
        let pdf = render_pdf(&sample(), &LabelOptions::default()).expect("renders");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/FontFile3"), "the font program is embedded");
        assert!(text.contains("/ToUnicode"), "glyphs map back to text");
        assert!(text.contains("NotoSansCJKsc"), "the bundled font is the one used");
        assert!(pdf.len() < 200_000, "the font is subset ({} bytes)", pdf.len());
    }

    #[test]
    fn the_png_has_the_paper_size_at_the_dpi() {
        // 76 mm at 203 dpi is 607.4 dots: 607; the image has ink (the barcode at least).
        let png = render_png(&sample(), &LabelOptions::default()).expect("renders");
        assert_eq!(&png[1..4], b"PNG");
        let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        assert_eq!((width, height), (607, 1039));
    }

    #[test]
    fn text_bitmaps_have_ink() {
        // A Chinese word rasterises to a bitmap with dark dots (the glyphs were found).
        let (w, h, bits) = text_bitmap("深圳市", 4.0, 203).expect("renders");
        assert!(w > 50 && h > 30, "{w}x{h}");
        assert!(bits.iter().map(|b| b.count_ones()).sum::<u32>() > 100);
    }

    #[test]
    fn markup_in_addresses_is_escaped() {
        // An address with XML markup stays text.
        let mut label = sample();
        label.to.detail = "<b>&\"x\"</b>".into();
        let svg = render_svg(&label, &LabelOptions::default()).expect("renders");
        assert!(svg.contains("&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;"));
        render_pdf(&label, &LabelOptions::default()).expect("still a valid document");
    }
}
