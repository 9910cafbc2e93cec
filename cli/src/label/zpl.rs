//! The layout as ZPL II for Zebra-compatible thermal printers. Rules are `^GB` boxes and the
//! barcode is the printer's own Code 128 (`^BC`, automatic code sets), so bars are whole dots and
//! scan crisply. ASCII text uses the printer's scalable font `^A0`; any other text (the Chinese
//! address) is drawn with the bundled font into a `^GFA` bitmap, so the label prints on printers
//! without a CJK font installed.

use std::fmt::Write as _;

use super::layout::{Anchor, Mark};
use super::render::text_bitmap;
use super::{layout, Label, LabelError, LabelOptions};

/// Field data with `^FH` escapes: ZPL reserves `^` and `~`, and `_` starts an escape.
fn field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '^' => out.push_str("_5E"),
            '~' => out.push_str("_7E"),
            '_' => out.push_str("_5F"),
            c if c.is_ascii_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The label as one ZPL format (`^XA` .. `^XZ`), at `options.dpi` dots per inch.
pub fn render_zpl(label: &Label, options: &LabelOptions) -> Result<String, LabelError> {
    let marks = layout(label, options)?;
    let dots_per_mm = options.dpi as f32 / 25.4;
    let dots = |mm: f32| (mm * dots_per_mm).round().max(0.0) as u32;
    let page_width = dots(options.size.width_mm);
    let mut out = String::with_capacity(16 * 1024);
    // UTF-8 field data, page width and length, origin at the top-left.
    let _ = write!(out, "^XA\n^CI28\n^PW{page_width}\n^LL{}\n^LH0,0\n", dots(options.size.height_mm));
    for mark in &marks {
        match mark {
            Mark::Rect { x, y, w, h } => {
                let (w, h) = (dots(*w).max(1), dots(*h).max(1));
                let _ = writeln!(out, "^FO{},{}^GB{w},{h},{}^FS", dots(*x), dots(*y), w.min(h));
            }
            Mark::Barcode { x, y, module, h, data, .. } => {
                let module = dots(*module).clamp(1, 10);
                let _ = writeln!(
                    out,
                    "^FO{},{}^BY{module},3,{}^BCN,{},N,N,N,A^FH^FD{}^FS",
                    dots(*x),
                    dots(*y),
                    dots(*h),
                    dots(*h),
                    field(data)
                );
            }
            Mark::Text { x, y, size, text, anchor } if text.is_ascii() => {
                let height = dots(*size).max(10);
                let top = dots((y - size * 0.8).max(0.0));
                // A one-line field block aligns the text without knowing the printer font's widths.
                let (left, width, justify) = match anchor {
                    Anchor::Start => (dots(*x), page_width.saturating_sub(dots(*x)), 'L'),
                    Anchor::Middle => (0, page_width, 'C'),
                    Anchor::End => (0, dots(*x), 'R'),
                };
                let _ = writeln!(
                    out,
                    "^FO{left},{top}^A0N,{height},{height}^FB{width},1,0,{justify}^FH^FD{}^FS",
                    field(text)
                );
            }
            Mark::Text { x, y, size, text, anchor } => {
                let (w, h, bits) = text_bitmap(text, *size, options.dpi)?;
                let left = match anchor {
                    Anchor::Start => dots(*x),
                    Anchor::Middle => dots(*x).saturating_sub(w / 2),
                    Anchor::End => dots(*x).saturating_sub(w),
                };
                let top = dots((y - size).max(0.0));
                let row_bytes = w.div_ceil(8);
                let _ = write!(out, "^FO{left},{top}^GFA,{},{},{row_bytes},", bits.len(), bits.len());
                debug_assert_eq!(bits.len(), (row_bytes * h) as usize);
                for byte in &bits {
                    let _ = write!(out, "{byte:02X}");
                }
                out.push_str("^FS\n");
            }
        }
    }
    out.push_str("^PQ1\n^XZ\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn zpl_has_the_barcode_the_text_and_bitmaps_for_chinese() {
        // Checks the frame, the native barcode with the waybill, ASCII fields in the printer font,
        // and a graphic field (not raw UTF-8) for the Chinese address.
        let label = sample();
        let zpl = render_zpl(&label, &LabelOptions::default()).expect("renders");
        assert!(zpl.starts_with("^XA\n^CI28\n^PW607\n^LL1039\n"));
        assert!(zpl.ends_with("^XZ\n"));
        assert!(zpl.contains("^BCN,") && zpl.contains("^FH^FDSF1234567890^FS"));
        assert!(zpl.contains("^GFA,"), "Chinese text is a bitmap");
        assert!(!zpl.contains("深圳"), "no CJK text left for the printer's font");
        assert!(zpl.is_ascii());
        let large = render_zpl(&label, &LabelOptions { dpi: 300, ..LabelOptions::default() }).expect("renders");
        assert!(large.contains("^PW898\n"), "76 mm at 300 dpi");
    }

    #[test]
    fn reserved_characters_are_escaped() {
        // `^` and `~` in data would start ZPL commands; `_` starts an escape under ^FH.
        assert_eq!(field("A^B~C_D"), "A_5EB_7EC_5FD");
    }
}
