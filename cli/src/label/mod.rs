//! Shipping labels: renderings of the label data the server answers for `waybill`
//! (`oms_proto::json::Label`) for `oms waybill print --format pdf|png|zpl`.
//!
//! One layout (`layout.rs`: marks in millimetres on a 76x130 mm or 100x180 mm page, or any size
//! asked for) is drawn three ways: as SVG turned into PDF by `svg2pdf` (the bundled Noto Sans SC
//! subset embedded and subset again to the glyphs used, so the Chinese address prints on a machine
//! without CJK fonts) or into PNG by `resvg`; and as ZPL for thermal printers (`zpl.rs`: native
//! boxes and Code 128, text in the printer's font when ASCII, as a bitmap drawn with the same font
//! otherwise). Bars come from the `barcoders` crate.
//!
//! The recipient's phone is masked (138****5678) as the platforms require for printed e-waybills,
//! unless the caller asks for the full number.

mod layout;
mod render;
mod zpl;

pub use oms_proto::json::{Label, LabelAddress as Address, LabelItem};

pub use layout::{layout, Mark};
pub use render::{render_pdf, render_png, render_svg};
pub use zpl::render_zpl;

/// Characters a label barcode takes (beyond this the bars get too thin to scan).
pub const BARCODE_LIMIT: usize = 48;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    #[error("waybill number {waybill:?} cannot be a Code 128 barcode: {reason}")]
    Barcode { waybill: String, reason: String },
    #[error("label size {0:?}: expected 76x130, 100x180 or WIDTHxHEIGHT in millimetres (50..=300 each)")]
    Size(String),
    #[error("{0} dpi: expected 100..=600")]
    Dpi(u32),
    #[error("the label layout did not convert: {0}")]
    Render(String),
}

/// Page size in millimetres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelSize {
    pub width_mm: f32,
    pub height_mm: f32,
}

impl LabelSize {
    /// The common Chinese e-waybill (一联单) size.
    pub const SMALL: LabelSize = LabelSize { width_mm: 76.0, height_mm: 130.0 };
    /// The larger two-part e-waybill size.
    pub const LARGE: LabelSize = LabelSize { width_mm: 100.0, height_mm: 180.0 };
}

impl Default for LabelSize {
    fn default() -> Self {
        LabelSize::SMALL
    }
}

impl std::str::FromStr for LabelSize {
    type Err = LabelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LabelError::Size(s.to_owned());
        let (w, h) = s.trim().trim_end_matches("mm").split_once(['x', 'X']).ok_or_else(bad)?;
        let width_mm: f32 = w.trim().parse().map_err(|_| bad())?;
        let height_mm: f32 = h.trim().parse().map_err(|_| bad())?;
        let range = 50.0..=300.0;
        if !range.contains(&width_mm) || !range.contains(&height_mm) {
            return Err(bad());
        }
        Ok(LabelSize { width_mm, height_mm })
    }
}

/// How a label is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelOptions {
    pub size: LabelSize,
    /// Print the recipient's whole phone number instead of 138****5678.
    pub full_phone: bool,
    /// Dots per inch of PNG and ZPL output (thermal printers: 203 or 300).
    pub dpi: u32,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions { size: LabelSize::default(), full_phone: false, dpi: 203 }
    }
}

impl LabelOptions {
    pub fn check(&self) -> Result<(), LabelError> {
        if !(100..=600).contains(&self.dpi) {
            return Err(LabelError::Dpi(self.dpi));
        }
        Ok(())
    }
}

/// A phone number as printed on a label: the first three and last four digits of a number of
/// seven digits or more, the middle as four stars (13812345678 -> 138****5678); a country code
/// prefix (`+86`) is kept; shorter numbers show only their last two digits.
pub fn mask_phone(phone: &str) -> String {
    let phone = phone.trim();
    let (prefix, rest) = match phone.strip_prefix('+') {
        Some(rest) => {
            let code: String = rest.chars().take_while(char::is_ascii_digit).take(3).collect();
            // Only the common case is split off: "+86 138..." or "+86138..." (mainland numbers).
            if code.starts_with("86") && rest[2..].trim_start_matches([' ', '-']).len() >= 11 {
                ("+86 ", rest[2..].trim_start_matches([' ', '-']))
            } else {
                ("+", rest)
            }
        }
        None => ("", phone),
    };
    let digits: Vec<char> = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return String::new();
    }
    if digits.len() >= 7 {
        let head: String = digits[..3].iter().collect();
        let tail: String = digits[digits.len() - 4..].iter().collect();
        return format!("{prefix}{head}****{tail}");
    }
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("{prefix}****{tail}")
}

/// The Code 128 symbol of a waybill number as bars: 1 = a dark module, 0 = a light one, quiet
/// zones excluded. Digit runs use code set C (two digits per symbol), the rest code set B.
pub fn barcode_modules(waybill: &str) -> Result<Vec<u8>, LabelError> {
    let err = |reason: &str| LabelError::Barcode { waybill: waybill.to_owned(), reason: reason.to_owned() };
    if waybill.is_empty() {
        return Err(err("nothing to encode"));
    }
    if waybill.chars().count() > BARCODE_LIMIT {
        return Err(err(&format!("at most {BARCODE_LIMIT} characters fit on a label")));
    }
    if let Some(c) = waybill.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(err(&format!("{c:?} is not printable ASCII")));
    }
    let code = barcoders::sym::code128::Code128::new(code128_input(waybill)).map_err(|e| err(&e.to_string()))?;
    Ok(code.encode())
}

/// The `barcoders` input: a code set marker (À/Ɓ/Ć) before each run. A trailing run of at least
/// four digits goes to set C; an odd leading digit stays in set B.
fn code128_input(data: &str) -> String {
    const SET_B: char = '\u{0181}';
    const SET_C: char = '\u{0106}';
    let digits_from = data.len() - data.bytes().rev().take_while(u8::is_ascii_digit).count();
    let mut run = data.len() - digits_from;
    if run < 4 {
        return format!("{SET_B}{data}");
    }
    let mut split = digits_from;
    if run % 2 == 1 {
        split += 1;
        run -= 1;
    }
    debug_assert!(run.is_multiple_of(2) && run >= 4);
    if split == 0 {
        format!("{SET_C}{data}")
    } else {
        format!("{SET_B}{}{SET_C}{}", &data[..split], &data[split..])
    }
}

/// The bundled font: Noto Sans CJK SC Regular cut down to ASCII + GB 2312 (OFL 1.1, see
/// `cli/assets/fonts/`).
pub const FONT: &[u8] = include_bytes!("../../assets/fonts/NotoSansSC-Regular-GB2312.otf");
/// Its family name, as SVG text names it.
pub const FONT_FAMILY: &str = "Noto Sans CJK SC";

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Label {
        Label {
            waybill: "SF1234567890".into(),
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
            to: Address {
                name: "李四".into(),
                phone: "13812345678".into(),
                province: "广东省".into(),
                city: "深圳市".into(),
                district: "南山区".into(),
                detail: "科技园南路 18 号 腾讯大厦 3 楼".into(),
                zip: "518057".into(),
            },
            items: vec![LabelItem { sku: "TSHIRT-RED-XL".into(), qty: 2 }],
        }
    }

    #[test]
    fn phones_are_masked_like_the_platforms_print_them() {
        // Checks each phone shape against the printed form.
        let check = |phone: &str, want: &str| assert_eq!(mask_phone(phone), want, "{phone}");
        check("13812345678", "138****5678");
        check(" 138 1234 5678 ", "138****5678");
        check("+8613812345678", "+86 138****5678");
        check("+86 138-1234-5678", "+86 138****5678");
        check("0755-86013388", "075****3388");
        check("12345", "****45");
        check("", "");
        check("n/a", "");
    }

    #[test]
    fn digit_runs_use_code_set_c() {
        // Checks the code set markers given to barcoders for each waybill shape.
        assert_eq!(code128_input("SF1234567890"), "\u{181}SF\u{106}1234567890");
        assert_eq!(code128_input("SF123456789"), "\u{181}SF1\u{106}23456789");
        assert_eq!(code128_input("773012345678"), "\u{106}773012345678");
        assert_eq!(code128_input("77301234567"), "\u{181}7\u{106}7301234567");
        assert_eq!(code128_input("JD123"), "\u{181}JD123");
        assert_eq!(code128_input("A-B"), "\u{181}A-B");
    }

    #[test]
    fn barcodes_start_with_a_bar_and_end_with_the_stop_pattern() {
        // Every symbol is 11 modules; the stop pattern is 13 and ends in a 2-module bar.
        let modules = barcode_modules("SF1234567890").expect("encodes");
        assert_eq!(modules[0], 1);
        assert_eq!(modules.len() % 11, 2, "n symbols of 11 + the 13-module stop");
        assert_eq!(&modules[modules.len() - 13..], &[1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]);
        // Set C halves the digits: start + "SF" + switch + 5 pairs + check + stop.
        assert_eq!(modules.len(), 11 * (1 + 2 + 1 + 5 + 1) + 13);
        assert!(matches!(barcode_modules("é"), Err(LabelError::Barcode { .. })));
        assert!(matches!(barcode_modules(""), Err(LabelError::Barcode { .. })));
        assert!(matches!(barcode_modules(&"1".repeat(49)), Err(LabelError::Barcode { .. })));
    }

    #[test]
    fn sizes_parse_and_are_bounded() {
        // Checks the two standard sizes, a custom one, and refusals.
        assert_eq!("76x130".parse::<LabelSize>(), Ok(LabelSize::SMALL));
        assert_eq!("100X180mm".parse::<LabelSize>(), Ok(LabelSize::LARGE));
        assert_eq!("80x120".parse::<LabelSize>(), Ok(LabelSize { width_mm: 80.0, height_mm: 120.0 }));
        for bad in ["", "76", "x130", "10x130", "76x1000", "axb"] {
            assert!(bad.parse::<LabelSize>().is_err(), "{bad}");
        }
    }
}
