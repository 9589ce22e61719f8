//! PNG charts: class distributions (horizontal bars) and confusion matrices (heatmaps).
//!
//! Drawn with plotters' bitmap backend and the DejaVu Sans font embedded by the `dejavu`
//! crate, so no system font library is needed. Files are written to a temporary name
//! and renamed, never half written.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::Once;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("confusion matrix for {path} is not square ({rows} rows, {labels} labels)")]
    Shape {
        path: PathBuf,
        rows: usize,
        labels: usize,
    },
}

const FONT: &str = "sans-serif";
const BAR: RGBColor = RGBColor(0x42, 0x7d, 0xbd);
const OTHER: RGBColor = RGBColor(0x9e, 0x9e, 0x9e);
const INK: RGBColor = RGBColor(0x26, 0x32, 0x38);
const GRID: RGBColor = RGBColor(0xcf, 0xd8, 0xdc);

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Only fails on a malformed font, and these bytes are compiled in.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Approximate width of text in DejaVu Sans (average advance ≈ 0.6 em).
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.6).ceil() as i32
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Draw into a temporary `.png` beside `path`, then rename it over `path`.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), ChartError> {
    fonts();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ChartError::Write {
            path: path.into(),
            source,
        })?;
    }
    // The backend picks the encoder from the extension: the temp name ends in `.png`.
    let written = crate::atomic_file::write_atomic_by_path(path, ".png", |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())
    })
    .map_err(|message| ChartError::Draw {
        path: path.into(),
        message,
    })?;
    written.map_err(|source| ChartError::Write {
        path: path.into(),
        source,
    })
}

/// Horizontal bars of category counts, largest first, with value labels. Past `top_n`
/// categories the rest are summed into one "other (K categories)" bar.
pub fn bar_chart_png(
    path: &Path,
    title: &str,
    counts: &[(String, usize)],
    top_n: usize,
) -> Result<(), ChartError> {
    let mut sorted: Vec<(String, usize)> = counts.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top_n = top_n.max(2);
    let mut bars: Vec<(String, usize, bool)> = Vec::new();
    if sorted.len() > top_n {
        let rest = &sorted[top_n - 1..];
        bars.extend(
            sorted[..top_n - 1]
                .iter()
                .map(|(l, c)| (truncate(l, 40), *c, false)),
        );
        bars.push((
            format!("other ({} categories)", rest.len()),
            rest.iter().map(|r| r.1).sum(),
            true,
        ));
    } else {
        bars.extend(sorted.iter().map(|(l, c)| (truncate(l, 40), *c, false)));
    }
    let label_w = bars
        .iter()
        .map(|b| text_width(&b.0, 13.0))
        .max()
        .unwrap_or(40)
        .max(60);
    let row = 24;
    let top = 64;
    let width = 1000.max(label_w as u32 + 500);
    let height = (top + row * bars.len().max(1) as i32 + 56) as u32;
    // Scale to the real categories: a summed "other" bar would flatten them all.
    let max = bars
        .iter()
        .filter(|b| !b.2)
        .map(|b| b.1)
        .max()
        .unwrap_or(0)
        .max(1);
    render(path, (width, height), |root| {
        let e = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();
        root.draw(&Text::new(
            title.to_string(),
            (width as i32 / 2, 22),
            (FONT, 22)
                .into_font()
                .style(FontStyle::Bold)
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(e)?;
        let x0 = label_w + 24;
        let x1 = width as i32 - 90;
        let scale = |v: usize| x0 + ((x1 - x0) as f64 * v.min(max) as f64 / max as f64).round() as i32;
        if bars.is_empty() {
            root.draw(&Text::new(
                "no data",
                (width as i32 / 2, top + 12),
                (FONT, 14)
                    .into_font()
                    .color(&INK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(e)?;
        }
        // Grid lines at quarters, labelled below.
        let bottom = top + row * bars.len().max(1) as i32;
        for q in 0..=4 {
            let v = max * q / 4;
            let x = scale(v);
            root.draw(&PathElement::new(vec![(x, top - 4), (x, bottom)], GRID))
                .map_err(e)?;
            root.draw(&Text::new(
                v.to_string(),
                (x, bottom + 12),
                (FONT, 12)
                    .into_font()
                    .color(&INK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(e)?;
        }
        root.draw(&Text::new(
            "count",
            ((x0 + x1) / 2, bottom + 34),
            (FONT, 13)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(e)?;
        for (i, (label, count, other)) in bars.iter().enumerate() {
            let y = top + row * i as i32;
            let color = if *other { OTHER } else { BAR };
            root.draw(&Rectangle::new(
                [(x0, y + 3), (scale(*count).max(x0 + 1), y + row - 3)],
                color.filled(),
            ))
            .map_err(e)?;
            root.draw(&Text::new(
                label.clone(),
                (x0 - 8, y + row / 2),
                (FONT, 13)
                    .into_font()
                    .color(&INK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(e)?;
            let value = if *count > max {
                format!("{count} (off scale)")
            } else {
                count.to_string()
            };
            let value_x = if *count > max {
                x1 - text_width(&value, 12.0) - 6
            } else {
                scale(*count) + 6
            };
            let ink = if *count > max { WHITE } else { INK };
            root.draw(&Text::new(
                value,
                (value_x, y + row / 2),
                (FONT, 12)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(e)?;
        }
        Ok(())
    })
}

/// Keep the `k` classes with the largest support (row sums), in their original order,
/// and fold the rest into a last "other" class.
pub fn top_k_confusion(labels: &[String], matrix: &[Vec<u64>], k: usize) -> (Vec<String>, Vec<Vec<u64>>) {
    let n = labels.len();
    if n <= k {
        return (labels.to_vec(), matrix.to_vec());
    }
    let mut by_support: Vec<usize> = (0..n).collect();
    by_support.sort_by(|&a, &b| {
        let sa: u64 = matrix[a].iter().sum();
        let sb: u64 = matrix[b].iter().sum();
        sb.cmp(&sa).then(a.cmp(&b))
    });
    let mut keep: Vec<usize> = by_support[..k].to_vec();
    keep.sort_unstable();
    let slot = |i: usize| keep.iter().position(|&x| x == i).unwrap_or(k);
    let mut out = vec![vec![0u64; k + 1]; k + 1];
    for (r, row) in matrix.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[slot(r)][slot(c)] += v;
        }
    }
    let mut names: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
    names.push(format!("other ({} classes)", n - k));
    (names, out)
}

/// Annotated confusion-matrix heatmap: rows are true classes (numbered, with names),
/// columns predicted classes (by number); colour is the row-normalised share.
pub fn heatmap_png(
    path: &Path,
    title: &str,
    labels: &[String],
    matrix: &[Vec<u64>],
) -> Result<(), ChartError> {
    let n = labels.len();
    if matrix.len() != n || matrix.iter().any(|r| r.len() != n) {
        return Err(ChartError::Shape {
            path: path.into(),
            rows: matrix.len(),
            labels: n,
        });
    }
    let names: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{} {}", i + 1, truncate(l, 36)))
        .collect();
    let cell = (720 / n.max(1)).clamp(22, 56) as i32;
    let label_w = names
        .iter()
        .map(|s| text_width(s, 12.0))
        .max()
        .unwrap_or(40)
        .max(60);
    let left = label_w + 40;
    let top = 96;
    let width = (left + cell * n as i32 + 40).max(520) as u32;
    let height = (top + cell * n as i32 + 40) as u32;
    render(path, (width, height), |root| {
        let e = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();
        let center = Pos::new(HPos::Center, VPos::Center);
        root.draw(&Text::new(
            title.to_string(),
            (width as i32 / 2, 22),
            (FONT, 20)
                .into_font()
                .style(FontStyle::Bold)
                .color(&INK)
                .pos(center),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            "predicted",
            (left + cell * n as i32 / 2, 52),
            (FONT, 14).into_font().color(&INK).pos(center),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            "true",
            (14, top - 16),
            (FONT, 14)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(e)?;
        let font = (cell as f64 * 0.38).clamp(9.0, 14.0);
        for c in 0..n {
            root.draw(&Text::new(
                (c + 1).to_string(),
                (left + cell * c as i32 + cell / 2, top - 12),
                (FONT, font).into_font().color(&INK).pos(center),
            ))
            .map_err(e)?;
        }
        for (r, row) in matrix.iter().enumerate() {
            let total: u64 = row.iter().sum();
            let y = top + cell * r as i32;
            root.draw(&Text::new(
                names[r].clone(),
                (left - 8, y + cell / 2),
                (FONT, 12)
                    .into_font()
                    .color(&INK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(e)?;
            for (c, &v) in row.iter().enumerate() {
                let share = if total == 0 { 0.0 } else { v as f64 / total as f64 };
                // White → deep blue.
                let mix = |from: u8, to: u8| (from as f64 + (to as f64 - from as f64) * share).round() as u8;
                let color = RGBColor(mix(0xff, 0x0d), mix(0xff, 0x47), mix(0xff, 0xa1));
                let x = left + cell * c as i32;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], color.filled()))
                    .map_err(e)?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], GRID))
                    .map_err(e)?;
                if v > 0 {
                    let ink = if share > 0.5 { WHITE } else { INK };
                    root.draw(&Text::new(
                        v.to_string(),
                        (x + cell / 2, y + cell / 2),
                        (FONT, font).into_font().color(&ink).pos(center),
                    ))
                    .map_err(e)?;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(path: &Path) -> (u32, u32) {
        let p = resvg::tiny_skia::Pixmap::decode_png(&std::fs::read(path).unwrap()).unwrap();
        (p.width(), p.height())
    }

    fn names(n: usize) -> Vec<String> {
        let base = [
            "Air Handling Unit",
            "Chilled Water Pump",
            "Variable Air Volume Box",
            "Exhaust Fan",
            "Boiler",
            "Panelboard",
        ];
        (0..n)
            .map(|i| format!("{} {}", base[i % base.len()], i))
            .collect()
    }

    #[test]
    fn bar_chart_folds_the_tail_into_other() {
        let dir = tempfile::tempdir().unwrap();
        let counts: Vec<(String, usize)> = names(150)
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, 3 + (i * 37) % 400))
            .collect();
        let p = dir.path().join("bars.png");
        bar_chart_png(&p, "category_name", &counts, 25).unwrap();
        let (w, h) = decode(&p);
        assert!(w >= 1000);
        assert_eq!(
            h,
            (64 + 24 * 25 + 56) as u32,
            "25 bars: 24 categories and one other"
        );
        let empty = dir.path().join("empty.png");
        bar_chart_png(&empty, "nothing", &[], 25).unwrap();
        assert!(decode(&empty).1 > 0);
        if std::env::var_os("NEXUSML_CHART_SAMPLES").is_some() {
            std::fs::copy(&p, "/tmp/bars_150.png").unwrap();
        }
    }

    #[test]
    fn top_k_keeps_totals_and_puts_other_last() {
        let labels = names(5);
        let m = vec![
            vec![5, 1, 0, 0, 0],
            vec![0, 9, 0, 1, 0],
            vec![0, 0, 1, 0, 0],
            vec![2, 0, 0, 7, 0],
            vec![0, 0, 0, 0, 2],
        ];
        let (l, r) = top_k_confusion(&labels, &m, 2);
        assert_eq!(
            l,
            [labels[1].clone(), labels[3].clone(), "other (3 classes)".into()]
        );
        let total = |m: &[Vec<u64>]| m.iter().flatten().sum::<u64>();
        assert_eq!(total(&r), total(&m));
        assert_eq!(r[0], vec![9, 1, 0]);
        // Rows 0, 2, 4 fold into "other": row 0 sends 1 to class 1 and 5 to other, rows 2 and 4 stay in other.
        assert_eq!(r[2], vec![1, 0, 8]);
    }

    #[test]
    fn heatmap_renders_and_rejects_bad_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let labels = names(8);
        let m: Vec<Vec<u64>> = (0..8)
            .map(|r| {
                (0..8)
                    .map(|c| if r == c { 40 } else { (r + c) as u64 % 3 })
                    .collect()
            })
            .collect();
        let p = dir.path().join("cm.png");
        heatmap_png(&p, "category_name: confusion", &labels, &m).unwrap();
        let (w, h) = decode(&p);
        assert!(w >= 520 && h > 300);
        let e = heatmap_png(&p, "x", &labels[..3], &m).unwrap_err();
        assert!(e.to_string().contains("not square"));
        if std::env::var_os("NEXUSML_CHART_SAMPLES").is_some() {
            std::fs::copy(&p, "/tmp/cm_8.png").unwrap();
        }
    }
}
