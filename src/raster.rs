//! SVG to PNG with the embedded DejaVu Sans fonts (resvg): every picture nexusml draws
//! (charts, the pipeline graph) is written as SVG and rasterized here, so text gets real
//! shaping and kerning and no system font library is needed.

use resvg::tiny_skia::{Color, IntRect, Pixmap, Transform};
use resvg::usvg::{Options, Tree};

/// The font family to name in SVG text.
pub const FONT_FAMILY: &str = "DejaVu Sans";

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("the SVG drawing cannot be read back: {0}")]
    Svg(String),
    #[error("cannot allocate a {width}×{height} picture")]
    Canvas { width: u32, height: u32 },
    #[error("cannot encode the PNG: {0}")]
    Png(String),
}

fn options() -> Options<'static> {
    let mut options = Options::default();
    {
        let db = options.fontdb_mut();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family(FONT_FAMILY);
        db.set_serif_family(FONT_FAMILY);
    }
    options.font_family = FONT_FAMILY.into();
    options
}

/// Rasterize `svg` at `scale` on white; with `crop`, trim to the drawing plus that
/// margin (in output pixels).
pub fn svg_to_png(svg: &str, scale: f32, crop: Option<u32>) -> Result<Vec<u8>, RasterError> {
    let tree = Tree::from_str(svg, &options()).map_err(|e| RasterError::Svg(e.to_string()))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or(RasterError::Canvas { width: 0, height: 0 })?;
    let (width, height) = (size.width(), size.height());
    let mut pixmap = Pixmap::new(width, height).ok_or(RasterError::Canvas { width, height })?;
    pixmap.fill(Color::WHITE);
    resvg::render(&tree, Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    let pixmap = match crop {
        Some(margin) => crop_to_content(pixmap, margin),
        None => pixmap,
    };
    pixmap.encode_png().map_err(|e| RasterError::Png(e.to_string()))
}

/// Keep the drawing (non-white pixels) plus a margin.
fn crop_to_content(pixmap: Pixmap, margin: u32) -> Pixmap {
    let (w, h) = (pixmap.width(), pixmap.height());
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (i, px) in pixmap.pixels().iter().enumerate() {
        if px.red() < 250 || px.green() < 250 || px.blue() < 250 {
            let (x, y) = (i as u32 % w, i as u32 / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 {
        return pixmap;
    }
    let x0 = x0.saturating_sub(margin);
    let y0 = y0.saturating_sub(margin);
    let x1 = (x1 + margin).min(w - 1);
    let y1 = (y1 + margin).min(h - 1);
    IntRect::from_xywh(x0 as i32, y0 as i32, x1 - x0 + 1, y1 - y0 + 1)
        .and_then(|r| pixmap.clone_rect(r))
        .unwrap_or(pixmap)
}

/// Width of `text` in DejaVu Sans at `size` px (the glyphs' advances, as resvg lays them
/// out, kerning aside), for sizing label columns before drawing.
pub fn text_width(text: &str, size: f64, bold: bool) -> f64 {
    use skrifa::{instance::Size, FontRef, MetadataProvider};
    let bytes = if bold {
        dejavu::sans::bold()
    } else {
        dejavu::sans::regular()
    };
    // Compiled-in, well-formed font bytes.
    let Ok(font) = FontRef::new(bytes) else {
        return text.chars().count() as f64 * size * 0.6;
    };
    let charmap = font.charmap();
    let metrics = font.glyph_metrics(Size::new(size as f32), skrifa::instance::LocationRef::default());
    // As drawn: with the characters XML cannot hold replaced.
    xml_chars(text)
        .chars()
        .map(|c| {
            charmap
                .map(c)
                .and_then(|g| metrics.advance_width(g))
                .map_or(size * 0.6, f64::from)
        })
        .sum()
}

/// Text made safe for SVG: markup characters escaped, and characters XML cannot hold
/// replaced ([`xml_chars`]). Every SVG nexusml writes passes its text through here (or,
/// for text a library escapes itself, through [`xml_chars`]).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml_chars(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` with every character XML 1.0 cannot hold (the C0 controls but tab, line feed
/// and carriage return; U+FFFE, U+FFFF) replaced by U+FFFD, the replacement character
/// (which the embedded font draws), so a control character in a class label shows
/// where it is instead of breaking the picture.
pub fn xml_chars(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| if bad(c) { '\u{fffd}' } else { c })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_xml_cannot_hold_is_replaced_and_the_svg_renders() {
        assert_eq!(xml_chars("Pump\u{7}A\u{1b}"), "Pump\u{fffd}A\u{fffd}");
        assert_eq!(xml_chars("tab\tline\n"), "tab\tline\n");
        assert_eq!(xml_chars("\u{fffe}"), "\u{fffd}");
        assert_eq!(
            xml_escape("a<b & \"c\" \u{0}"),
            "a&lt;b &amp; &quot;c&quot; \u{fffd}"
        );
        let every_control: String = (0u8..0x20).map(char::from).collect();
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\">\
             <text x=\"5\" y=\"20\" font-size=\"12\">{}</text></svg>",
            xml_escape(&every_control)
        );
        let png = svg_to_png(&svg, 1.0, None).expect("every control character renders");
        assert!(png.starts_with(b"\x89PNG"));
    }
}
