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
    text.chars()
        .map(|c| {
            charmap
                .map(c)
                .and_then(|g| metrics.advance_width(g))
                .map_or(size * 0.6, f64::from)
        })
        .sum()
}

/// Text made safe for SVG.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
