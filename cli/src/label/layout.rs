//! Where everything goes on a label, in millimetres from the top-left corner. The layout is drawn
//! for 76x130 mm and scales to other sizes (100x180 mm gets larger type and a taller barcode).

use super::{barcode_modules, mask_phone, Label, LabelError, LabelOptions};

/// One thing drawn on the label.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// A line of text; `y` is its baseline, `size` the em size.
    Text { x: f32, y: f32, size: f32, text: String, anchor: Anchor },
    /// A filled rectangle (rules and boxes).
    Rect { x: f32, y: f32, w: f32, h: f32 },
    /// A Code 128 symbol: `modules` (1 = bar), each `module` mm wide, from `x`; `data` is the
    /// encoded text (ZPL printers draw the symbol themselves from it).
    Barcode { x: f32, y: f32, module: f32, h: f32, modules: Vec<u8>, data: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// Estimated advance of `text` at `size` mm: ideographs and full-width forms take a full em, the
/// rest (Latin, digits) at most 0.6 em in Noto Sans. Used to wrap and cut lines so they never run
/// off the label.
pub fn text_width(text: &str, size: f32) -> f32 {
    text.chars().map(|c| if is_wide(c) { 1.0 } else { 0.6 }).sum::<f32>() * size
}

fn is_wide(c: char) -> bool {
    matches!(u32::from(c), 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6)
}

/// Cut `text` so it fits `width` mm at `size`, ending in "…" when cut.
pub fn fit(text: &str, size: f32, width: f32) -> String {
    if text_width(text, size) <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    for c in text.chars() {
        if text_width(&out, size) + text_width(&format!("{c}…"), size) > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// Break `text` into lines of at most `width` mm (at any character: Chinese addresses have no
/// spaces), at most `max_lines`; the last line is cut with "…" if text remains.
pub fn wrap(text: &str, size: f32, width: f32, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let chars: Vec<char> = text.trim().chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !line.is_empty() && text_width(&line, size) + text_width(&c.to_string(), size) > width {
            lines.push(std::mem::take(&mut line).trim_end().to_owned());
            if lines.len() == max_lines {
                let rest: String = chars[i..].iter().collect();
                let last = lines.pop().unwrap_or_default();
                lines.push(fit(&(last + &rest), size, width));
                return lines;
            }
            if c == ' ' {
                i += 1;
                continue;
            }
        }
        line.push(c);
        i += 1;
    }
    if !line.trim().is_empty() && lines.len() < max_lines {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// The label's marks, in drawing order.
pub fn layout(label: &Label, options: &LabelOptions) -> Result<Vec<Mark>, LabelError> {
    options.check()?;
    let (w, h) = (options.size.width_mm, options.size.height_mm);
    // Horizontal and vertical scale against the 76x130 design; type follows the smaller one.
    let (u, v) = (w / 76.0, h / 130.0);
    let s = u.min(v);
    let margin = 3.0 * u;
    let inner = w - 2.0 * margin;
    let rule = |marks: &mut Vec<Mark>, y: f32| marks.push(Mark::Rect { x: margin, y, w: inner, h: 0.35 * s });
    let text = |marks: &mut Vec<Mark>, x: f32, y: f32, size: f32, t: String| {
        marks.push(Mark::Text { x, y, size, text: t, anchor: Anchor::Start });
    };
    let mut marks = Vec::new();

    // Header: carrier, cash on delivery.
    let carrier_size = 7.0 * s;
    let mut cod_width = 0.0;
    if label.cash_on_delivery {
        let sign = if label.cod_cents < 0 { "-" } else { "" };
        let cents = label.cod_cents.unsigned_abs();
        let cod = format!("代收货款 {sign}{}.{:02} 元", cents / 100, cents % 100);
        let size = 4.0 * s;
        cod_width = text_width(&cod, size);
        marks.push(Mark::Text { x: w - margin, y: 10.0 * v, size, text: cod, anchor: Anchor::End });
    }
    text(&mut marks, margin, 10.5 * v, carrier_size, fit(&label.carrier, carrier_size, inner - cod_width - 2.0 * s));
    rule(&mut marks, 14.0 * v);

    // Barcode, centred, quiet zones of 10 modules; the number under it.
    let modules = barcode_modules(&label.waybill)?;
    let module = (inner / (modules.len() + 20) as f32).min(0.5 * s);
    let bars_width = module * modules.len() as f32;
    let bar_height = 18.0 * v;
    marks.push(Mark::Barcode {
        x: (w - bars_width) / 2.0,
        y: 16.5 * v,
        module,
        h: bar_height,
        modules,
        data: label.waybill.clone(),
    });
    let number_size = 4.5 * s;
    marks.push(Mark::Text {
        x: w / 2.0,
        y: 16.5 * v + bar_height + 5.5 * s,
        size: number_size,
        text: label.waybill.clone(),
        anchor: Anchor::Middle,
    });
    let mut y = 16.5 * v + bar_height + 8.0 * s;
    rule(&mut marks, y);

    // Recipient: name and phone, region, street (wrapped), zip.
    let a = &label.to;
    y += 4.5 * s;
    text(&mut marks, margin, y, 3.0 * s, "收件人".into());
    let phone = if options.full_phone { a.phone.trim().to_owned() } else { mask_phone(&a.phone) };
    let name_size = 5.0 * s;
    y += 6.0 * s;
    text(&mut marks, margin, y, name_size, fit(&format!("{}  {}", a.name.trim(), phone), name_size, inner));
    let address_size = 4.2 * s;
    let line_height = 5.4 * s;
    let region = [a.province.trim(), a.city.trim(), a.district.trim()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !region.is_empty() {
        y += line_height;
        text(&mut marks, margin, y, address_size, fit(&region, address_size, inner));
    }
    for line in wrap(&a.detail, address_size, inner, 3) {
        y += line_height;
        text(&mut marks, margin, y, address_size, line);
    }
    if !a.zip.trim().is_empty() {
        y += line_height * 0.9;
        text(&mut marks, margin, y, 3.2 * s, format!("邮编 {}", fit(a.zip.trim(), 3.2 * s, inner)));
    }
    y += 2.5 * s;
    rule(&mut marks, y);

    // Sender and references.
    let small = 3.2 * s;
    let step = 4.6 * s;
    y += 4.8 * s;
    // The warehouse's code for people; its id only if the server knew no code.
    let warehouse = if label.warehouse.is_empty() {
        format!("仓库 #{}", label.warehouse_id)
    } else {
        format!("仓库 {}", label.warehouse)
    };
    text(&mut marks, margin, y, small, fit(&format!("寄件  {warehouse}"), small, inner));
    y += step;
    let order = format!("订单 {}  {} {}", label.order, label.channel, label.external_id);
    text(&mut marks, margin, y, small, fit(&order, small, inner));
    y += step;
    let weight =
        format!("包裹 {}  重量 {}.{:02} kg", label.shipment, label.weight_g / 1000, (label.weight_g % 1000) / 10);
    text(&mut marks, margin, y, small, fit(&weight, small, inner));
    y += 2.2 * s;
    rule(&mut marks, y);

    // Items, as many as fit; the rest counted.
    y += step;
    text(&mut marks, margin, y, small, "商品".into());
    let bottom = h - margin;
    let room = (((bottom - y) / step).floor().max(0.0)) as usize;
    let shown = if label.items.len() > room { room.saturating_sub(1) } else { label.items.len() };
    for item in &label.items[..shown] {
        y += step;
        text(&mut marks, margin, y, small, fit(&format!("{} × {}", item.sku, item.qty), small, inner));
    }
    if shown < label.items.len() {
        y += step;
        text(&mut marks, margin, y, small, format!("… 另有 {} 项", label.items.len() - shown));
    }
    debug_assert!(y <= h, "the layout stays on the page");
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::super::LabelSize;
    use super::*;

    #[test]
    fn every_mark_stays_on_the_page_for_both_sizes() {
        // Lays out a label with a long address and many items on both sizes and checks that every
        // mark's estimated box is inside the page.
        let mut label = sample();
        label.to.detail = "科技园南路十八号腾讯大厦三楼东区前台转交某某部门某某小组收件人本人签收".repeat(3);
        label.items = (0..40).map(|i| super::super::LabelItem { sku: format!("SKU-{i:04}"), qty: i + 1 }).collect();
        for size in [LabelSize::SMALL, LabelSize::LARGE] {
            let options = LabelOptions { size, ..LabelOptions::default() };
            let marks = layout(&label, &options).expect("lays out");
            for mark in &marks {
                let (x0, x1, y1) = match mark {
                    Mark::Text { x, y, size, text, anchor } => {
                        let width = text_width(text, *size);
                        let x0 = match anchor {
                            Anchor::Start => *x,
                            Anchor::Middle => x - width / 2.0,
                            Anchor::End => x - width,
                        };
                        (x0, x0 + width, *y)
                    }
                    Mark::Rect { x, y, w, h } => (*x, x + w, y + h),
                    Mark::Barcode { x, y, module, h, modules, .. } => (*x, x + module * modules.len() as f32, y + h),
                };
                assert!(x0 >= 0.0 && x1 <= size.width_mm + 0.01, "{mark:?} fits across {size:?}");
                assert!(y1 <= size.height_mm, "{mark:?} fits down {size:?}");
            }
            let texts: Vec<&str> = marks
                .iter()
                .filter_map(|m| if let Mark::Text { text, .. } = m { Some(text.as_str()) } else { None })
                .collect();
            assert!(texts.iter().any(|t| t.starts_with("… 另有")), "the items that do not fit are counted");
        }
    }

    #[test]
    fn wrapping_breaks_chinese_text_anywhere_and_cuts_the_last_line() {
        // Checks line widths and the ellipsis on the last allowed line.
        let lines = wrap("一二三四五六七八九十", 1.0, 4.0, 2);
        assert_eq!(lines, vec!["一二三四".to_owned(), "五六七…".to_owned()]);
        assert_eq!(wrap("ab cd", 1.0, 10.0, 3), vec!["ab cd".to_owned()]);
        assert!(wrap("", 1.0, 10.0, 3).is_empty());
    }

    #[test]
    fn the_phone_is_masked_unless_asked() {
        // Checks the recipient line with and without `full_phone`.
        let label = sample();
        let has = |marks: &[Mark], needle: &str| {
            marks.iter().any(|m| matches!(m, Mark::Text { text, .. } if text.contains(needle)))
        };
        let masked = layout(&label, &LabelOptions::default()).expect("lays out");
        assert!(has(&masked, "138****5678") && !has(&masked, "13812345678"));
        let full = layout(&label, &LabelOptions { full_phone: true, ..LabelOptions::default() }).expect("lays out");
        assert!(has(&full, "13812345678"));
    }
}
