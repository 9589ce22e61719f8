//! PNG charts: class distributions (horizontal bars), confusion matrices (heatmaps) and
//! accuracy at coverage (two curves over the confidence threshold).
//!
//! Each chart is drawn as SVG and rasterized by [`crate::raster`] (resvg, with the DejaVu
//! Sans font compiled in), so text is shaped and kerned properly and no system font
//! library is needed. Labels are never cut: long ones wrap. Files are written to a
//! temporary name and renamed, never half written.

use crate::raster::{svg_to_png, text_width, xml_escape, FONT_FAMILY};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw {path}: {source}")]
    Draw {
        path: PathBuf,
        #[source]
        source: crate::raster::RasterError,
    },
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

const BAR: &str = "#427dbd";
/// The accuracy curve of the coverage chart.
const ACCURACY: &str = "#c62828";
const OTHER: &str = "#9e9e9e";
const INK: &str = "#263238";
const MUTED: &str = "#607d8b";
const GRID: &str = "#cfd8dc";
/// The heatmap's colour ramp: white (no rows) to deep blue (all of the true class's rows).
const RAMP_FROM: (u8, u8, u8) = (0xff, 0xff, 0xff);
const RAMP_TO: (u8, u8, u8) = (0x0d, 0x47, 0xa1);

fn ramp(share: f64) -> String {
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * share.clamp(0.0, 1.0)).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(RAMP_FROM.0, RAMP_TO.0),
        mix(RAMP_FROM.1, RAMP_TO.1),
        mix(RAMP_FROM.2, RAMP_TO.2)
    )
}

/// An SVG drawing built element by element.
struct Svg {
    width: f64,
    height: f64,
    body: String,
}

#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Svg {
    fn new(width: f64, height: f64) -> Self {
        Svg {
            width,
            height,
            body: String::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: Anchor, bold: bool, fill: &str, text: &str) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        // `y` is the text's vertical centre: the baseline sits 0.35 em below it.
        let _ = write!(
            self.body,
            "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{size:.1}\" text-anchor=\"{anchor}\"{} fill=\"{fill}\">{}</text>",
            y + 0.35 * size,
            if bold { " font-weight=\"bold\"" } else { "" },
            xml_escape(text)
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: Option<&str>) {
        let _ = write!(
            self.body,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"{}/>",
            stroke.map_or(String::new(), |s| format!(" stroke=\"{s}\" stroke-width=\"1\""))
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        let _ = write!(
            self.body,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" stroke-width=\"1\"/>"
        );
    }

    fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" \
             font-family=\"{FONT_FAMILY}\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>{}</svg>",
            self.body,
            w = self.width.ceil(),
            h = self.height.ceil()
        )
    }
}

/// Rasterize and write atomically.
fn write_png(path: &Path, svg: Svg) -> Result<(), ChartError> {
    let png = svg_to_png(&svg.finish(), 1.0, None).map_err(|source| ChartError::Draw {
        path: path.into(),
        source,
    })?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ChartError::Write {
            path: path.into(),
            source,
        })?;
    }
    crate::atomic_file::write_atomic(path, &png).map_err(|source| ChartError::Write {
        path: path.into(),
        source,
    })
}

/// Break `text` at spaces (or hyphens) into lines no wider than `max` px at `size`; a word
/// longer than a line stays whole.
fn wrap(text: &str, max: f64, size: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    // Split after spaces and hyphens, keeping them.
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        word.push(c);
        if c == ' ' || c == '-' {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    for w in words {
        let candidate = format!("{current}{w}");
        if !current.is_empty() && text_width(candidate.trim_end(), size, false) > max {
            lines.push(current.trim_end().to_string());
            current = w;
        } else {
            current = candidate;
        }
    }
    if !current.trim().is_empty() || lines.is_empty() {
        lines.push(current.trim_end().to_string());
    }
    lines
}

/// Axis ticks at 1, 2 or 5 × 10^k: about `target` steps from 0 to at least `max`.
fn nice_ticks(max: usize, target: usize) -> Vec<usize> {
    let max = max.max(1);
    let raw = max as f64 / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0)
        .round() as usize;
    let last = max.div_ceil(step) * step;
    (0..=last / step).map(|i| i * step).collect()
}

/// Horizontal bars of category counts, largest first, with value labels and full
/// (wrapped) category names. Past `top_n` categories the rest are summed into one
/// "other (K categories)" bar, drawn grey and not used for the scale.
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
        bars.extend(sorted[..top_n - 1].iter().map(|(l, c)| (l.clone(), *c, false)));
        bars.push((
            format!("other ({} categories)", rest.len()),
            rest.iter().map(|r| r.1).sum(),
            true,
        ));
    } else {
        bars.extend(sorted.iter().map(|(l, c)| (l.clone(), *c, false)));
    }
    const SIZE: f64 = 13.0;
    const MAX_LABEL: f64 = 360.0;
    let wrapped: Vec<Vec<String>> = bars.iter().map(|b| wrap(&b.0, MAX_LABEL, SIZE)).collect();
    let label_w = wrapped
        .iter()
        .flatten()
        .map(|l| text_width(l, SIZE, false))
        .fold(60.0, f64::max);
    let row_h = |lines: usize| 24.0 + 15.0 * (lines as f64 - 1.0);
    let top = 64.0;
    let rows_h: f64 = if bars.is_empty() {
        24.0
    } else {
        wrapped.iter().map(|w| row_h(w.len())).sum()
    };
    let width = (label_w + 520.0).max(900.0);
    let height = top + rows_h + 60.0;
    // Scale to the real categories: a summed "other" bar would flatten them all.
    let max = bars.iter().filter(|b| !b.2).map(|b| b.1).max().unwrap_or(0);
    let ticks = nice_ticks(max, 5);
    let scale_max = *ticks.last().unwrap_or(&1) as f64;
    let x0 = label_w + 24.0;
    let x1 = width - 90.0;
    let scale = |v: usize| x0 + (x1 - x0) * (v as f64).min(scale_max) / scale_max;

    let mut svg = Svg::new(width, height);
    svg.text(width / 2.0, 24.0, 20.0, Anchor::Middle, true, INK, title);
    let bottom = top + rows_h;
    if bars.is_empty() {
        svg.text(
            width / 2.0,
            top + 12.0,
            14.0,
            Anchor::Middle,
            false,
            INK,
            "no data",
        );
    }
    for &t in &ticks {
        let x = scale(t);
        svg.line(x, top - 4.0, x, bottom, GRID);
        svg.text(x, bottom + 12.0, 12.0, Anchor::Middle, false, INK, &t.to_string());
    }
    svg.text(
        (x0 + x1) / 2.0,
        bottom + 36.0,
        13.0,
        Anchor::Middle,
        false,
        INK,
        "rows",
    );
    let mut y = top;
    for ((_, count, other), lines) in bars.iter().zip(&wrapped) {
        let h = row_h(lines.len());
        let off_scale = *count as f64 > scale_max;
        let end = scale(*count).max(x0 + 1.0);
        svg.rect(
            x0,
            y + 3.0,
            end - x0,
            h - 6.0,
            if *other { OTHER } else { BAR },
            None,
        );
        let first = y + h / 2.0 - 7.5 * (lines.len() as f64 - 1.0);
        for (k, line) in lines.iter().enumerate() {
            let fill = if *other { MUTED } else { INK };
            svg.text(
                x0 - 8.0,
                first + 15.0 * k as f64,
                SIZE,
                Anchor::End,
                false,
                fill,
                line,
            );
        }
        if off_scale {
            let value = format!("{count} (off scale)");
            svg.text(x1 - 6.0, y + h / 2.0, 12.0, Anchor::End, false, "white", &value);
        } else {
            svg.text(
                end + 6.0,
                y + h / 2.0,
                12.0,
                Anchor::Start,
                false,
                INK,
                &count.to_string(),
            );
        }
        y += h;
    }
    write_png(path, svg)
}

/// Keep the classes at `keep` (indices, any order) in their original order and fold the
/// rest into a last "other (K classes)" class.
fn fold(labels: &[String], matrix: &[Vec<u64>], mut keep: Vec<usize>) -> (Vec<String>, Vec<Vec<u64>>) {
    let n = labels.len();
    keep.sort_unstable();
    keep.dedup();
    if keep.len() >= n {
        return (labels.to_vec(), matrix.to_vec());
    }
    let k = keep.len();
    let mut slot = vec![k; n];
    for (s, &i) in keep.iter().enumerate() {
        slot[i] = s;
    }
    let mut out = vec![vec![0u64; k + 1]; k + 1];
    for (r, row) in matrix.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[slot[r]][slot[c]] += v;
        }
    }
    let mut names: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
    names.push(format!("other ({} classes)", n - k));
    (names, out)
}

/// Keep the `k` classes with the largest support (row sums), in their original order,
/// and fold the rest into a last "other" class.
pub fn top_k_confusion(labels: &[String], matrix: &[Vec<u64>], k: usize) -> (Vec<String>, Vec<Vec<u64>>) {
    let mut by_support: Vec<usize> = (0..labels.len()).collect();
    by_support.sort_by(|&a, &b| {
        let sa: u64 = matrix[a].iter().sum();
        let sb: u64 = matrix[b].iter().sum();
        sb.cmp(&sa).then(a.cmp(&b))
    });
    by_support.truncate(k);
    fold(labels, matrix, by_support)
}

/// The `k` classes with the most errors (rows of the class predicted as another, plus
/// rows of another class predicted as it), in their original order; the rest folded into
/// "other". Classes without an error are never kept.
pub fn worst_confused(labels: &[String], matrix: &[Vec<u64>], k: usize) -> (Vec<String>, Vec<Vec<u64>>) {
    let n = labels.len();
    let errors: Vec<u64> = (0..n)
        .map(|i| {
            let row: u64 = matrix[i].iter().sum();
            let col: u64 = matrix.iter().map(|r| r[i]).sum();
            row + col - 2 * matrix[i][i]
        })
        .collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| errors[i] > 0).collect();
    order.sort_by(|&a, &b| errors[b].cmp(&errors[a]).then(a.cmp(&b)));
    order.truncate(k);
    fold(labels, matrix, order)
}

/// Annotated confusion-matrix heatmap: rows are true classes (numbered, full names,
/// wrapped when long), columns predicted classes (by the same numbers); a cell's colour
/// is its share of the true class's rows, explained by the legend on the right.
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
    const SIZE: f64 = 12.0;
    const MAX_LABEL: f64 = 420.0;
    let names: Vec<Vec<String>> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| wrap(&format!("{}  {l}", i + 1), MAX_LABEL, SIZE))
        .collect();
    let most_lines = names.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let cell = (760.0 / n.max(1) as f64)
        .clamp(22.0, 52.0)
        .max(8.0 + 14.0 * most_lines);
    let label_w = names
        .iter()
        .flatten()
        .map(|l| text_width(l, SIZE, false))
        .fold(60.0, f64::max);
    let left = label_w + 40.0;
    let top = 104.0;
    let grid = cell * n as f64;
    let legend_x = left + grid + 36.0;
    let width = (legend_x + 130.0).max(text_width(title, 20.0, true) + 40.0);
    let height = top + grid.max(220.0) + 48.0;
    let font = (cell * 0.38).clamp(9.0, 14.0);

    let mut svg = Svg::new(width, height);
    svg.text(width / 2.0, 24.0, 20.0, Anchor::Middle, true, INK, title);
    svg.text(
        left + grid / 2.0,
        60.0,
        14.0,
        Anchor::Middle,
        false,
        INK,
        "predicted class (number)",
    );
    svg.text(14.0, top - 18.0, 14.0, Anchor::Start, false, INK, "true class");
    for c in 0..n {
        let x = left + cell * c as f64 + cell / 2.0;
        svg.text(
            x,
            top - 14.0,
            font,
            Anchor::Middle,
            false,
            INK,
            &(c + 1).to_string(),
        );
    }
    for (r, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let y = top + cell * r as f64;
        let lines = &names[r];
        let first = y + cell / 2.0 - 7.0 * (lines.len() as f64 - 1.0);
        let other = r + 1 == n && labels[r].starts_with("other (");
        for (k, line) in lines.iter().enumerate() {
            let fill = if other { MUTED } else { INK };
            svg.text(
                left - 8.0,
                first + 14.0 * k as f64,
                SIZE,
                Anchor::End,
                false,
                fill,
                line,
            );
        }
        for (c, &v) in row.iter().enumerate() {
            let share = if total == 0 { 0.0 } else { v as f64 / total as f64 };
            let x = left + cell * c as f64;
            svg.rect(x, y, cell, cell, &ramp(share), Some(GRID));
            if v > 0 {
                let ink = if share > 0.5 { "white" } else { INK };
                svg.text(
                    x + cell / 2.0,
                    y + cell / 2.0,
                    font,
                    Anchor::Middle,
                    false,
                    ink,
                    &v.to_string(),
                );
            }
        }
    }
    // The legend: the colour ramp with its shares.
    let (lh, ly) = (200.0, top);
    let steps = 50;
    for i in 0..steps {
        let share = 1.0 - i as f64 / steps as f64;
        svg.rect(
            legend_x,
            ly + lh * i as f64 / steps as f64,
            18.0,
            lh / steps as f64 + 0.5,
            &ramp(share),
            None,
        );
    }
    svg.rect(legend_x, ly, 18.0, lh, "none", Some(GRID));
    for q in 0..=4 {
        let y = ly + lh * (1.0 - q as f64 / 4.0);
        svg.line(legend_x + 18.0, y, legend_x + 22.0, y, INK);
        svg.text(
            legend_x + 26.0,
            y,
            11.0,
            Anchor::Start,
            false,
            INK,
            &format!("{}%", q * 25),
        );
    }
    svg.text(
        legend_x - 6.0,
        ly + lh + 16.0,
        11.0,
        Anchor::Start,
        false,
        MUTED,
        "share of the",
    );
    svg.text(
        legend_x - 6.0,
        ly + lh + 30.0,
        11.0,
        Anchor::Start,
        false,
        MUTED,
        "true class's rows",
    );
    write_png(path, svg)
}

/// One threshold of the coverage chart: the threshold, the share of rows whose top
/// probability reaches it, and their accuracy (both in [0, 1]), and how many rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoveragePoint {
    pub threshold: f64,
    pub coverage: f64,
    pub accuracy: f64,
    pub rows: usize,
}

/// Accuracy at coverage: over the confidence thresholds (x), the share of rows the model
/// is at least that sure of (blue) and how often it is right on them (red), each point
/// labelled with its percentage. A threshold no row reaches has no accuracy point.
pub fn coverage_png(path: &Path, title: &str, points: &[CoveragePoint]) -> Result<(), ChartError> {
    // The legend's longest entry ("accuracy of those rows") needs ~200 px right of the plot.
    let (width, height) = (940.0f64, 520.0f64);
    let (x0, x1, y0, y1) = (90.0, width - 220.0, 80.0, height - 80.0);
    let (lo, hi) = match (points.first(), points.last()) {
        (Some(a), Some(b)) if b.threshold > a.threshold => (a.threshold, b.threshold),
        _ => (0.5, 0.95),
    };
    let sx = |t: f64| x0 + (x1 - x0) * (t - lo) / (hi - lo);
    let sy = |v: f64| y1 - (y1 - y0) * v.clamp(0.0, 1.0);
    let mut svg = Svg::new(width.max(text_width(title, 20.0, true) + 40.0), height);
    svg.text(svg.width / 2.0, 24.0, 20.0, Anchor::Middle, true, INK, title);
    for q in 0..=5 {
        let v = q as f64 / 5.0;
        let y = sy(v);
        svg.line(x0, y, x1, y, GRID);
        svg.text(
            x0 - 8.0,
            y,
            12.0,
            Anchor::End,
            false,
            INK,
            &format!("{}%", q * 20),
        );
    }
    for p in points {
        let x = sx(p.threshold);
        svg.line(x, y1, x, y1 + 4.0, INK);
        svg.text(
            x,
            y1 + 16.0,
            12.0,
            Anchor::Middle,
            false,
            INK,
            &format!("{:.2}", p.threshold),
        );
    }
    svg.text(
        (x0 + x1) / 2.0,
        y1 + 44.0,
        13.0,
        Anchor::Middle,
        false,
        INK,
        "confidence threshold (top probability at least)",
    );
    // (name, colour, points); a point's label sits above its line where that line is the
    // higher of the two at that threshold, below it where it is the lower, so the two
    // labels of one threshold never overlap.
    type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);
    let series: [Series; 2] = [
        (
            "rows covered",
            BAR,
            points.iter().map(|p| (p.threshold, p.coverage)).collect(),
        ),
        (
            "accuracy of those rows",
            ACCURACY,
            points
                .iter()
                .filter(|p| p.rows > 0)
                .map(|p| (p.threshold, p.accuracy))
                .collect(),
        ),
    ];
    for (k, (name, colour, values)) in series.iter().enumerate() {
        let other = &series[1 - k].2;
        let mut path_d = String::new();
        for (i, &(t, v)) in values.iter().enumerate() {
            let _ = write!(
                path_d,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                sx(t),
                sy(v)
            );
        }
        if !path_d.is_empty() {
            let _ = write!(
                svg.body,
                "<path d=\"{path_d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"/>"
            );
        }
        for &(t, v) in values {
            let _ = write!(
                svg.body,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/>",
                sx(t),
                sy(v)
            );
            let higher = other
                .iter()
                .find(|(u, _)| *u == t)
                .is_none_or(|&(_, w)| v >= w && (v > w || k == 1));
            svg.text(
                sx(t),
                sy(v) + if higher { -10.0 } else { 16.0 },
                11.0,
                Anchor::Middle,
                false,
                colour,
                &format!("{:.1}%", 100.0 * v),
            );
        }
        let ly = y0 + 10.0 + 24.0 * k as f64;
        svg.line(x1 + 20.0, ly, x1 + 44.0, ly, colour);
        svg.rect(x1 + 20.0, ly - 1.5, 24.0, 3.0, colour, None);
        svg.text(x1 + 50.0, ly, 12.0, Anchor::Start, false, INK, name);
    }
    if points.is_empty() {
        svg.text(
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0,
            14.0,
            Anchor::Middle,
            false,
            INK,
            "no probabilities",
        );
    }
    write_png(path, svg)
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
        assert!(w >= 900);
        assert_eq!(
            h,
            (64 + 24 * 25 + 60) as u32,
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
    fn long_labels_wrap_whole_and_ticks_are_round() {
        let label =
            "Electrical Equipment-Uninterruptible Power Supply with Static Bypass and Maintenance Switch";
        let lines = wrap(label, 300.0, 12.0);
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(
            lines.iter().all(|l| text_width(l, 12.0, false) <= 300.0),
            "{lines:?}"
        );
        assert_eq!(
            lines.concat().replace(' ', ""),
            label.replace(' ', ""),
            "nothing cut"
        );
        assert_eq!(wrap("VAV Box", 300.0, 12.0), ["VAV Box"]);
        assert_eq!(nice_ticks(158, 5), [0, 50, 100, 150, 200]);
        assert_eq!(nice_ticks(39, 5), [0, 10, 20, 30, 40]);
        assert_eq!(nice_ticks(3, 5), [0, 1, 2, 3]);
        assert_eq!(nice_ticks(0, 5), [0, 1]);
    }

    #[test]
    fn worst_confused_keeps_the_classes_with_errors() {
        let labels = names(4);
        // Class 0 is never wrong; 2 and 3 trade rows; 1 loses one to 3.
        let m = vec![
            vec![9, 0, 0, 0],
            vec![0, 5, 0, 1],
            vec![0, 0, 4, 3],
            vec![0, 0, 2, 6],
        ];
        let (l, r) = worst_confused(&labels, &m, 2);
        assert_eq!(
            l,
            [labels[2].clone(), labels[3].clone(), "other (2 classes)".into()]
        );
        assert_eq!(r[0], vec![4, 3, 0]);
        assert_eq!(r[2], vec![0, 1, 14]);
    }

    #[test]
    fn coverage_chart_renders() {
        let dir = tempfile::tempdir().unwrap();
        let points: Vec<CoveragePoint> = (0..10)
            .map(|i| CoveragePoint {
                threshold: 0.5 + 0.05 * i as f64,
                coverage: 1.0 - 0.06 * i as f64,
                accuracy: 0.9 + 0.01 * i as f64,
                rows: if i == 9 { 0 } else { 100 - i },
            })
            .collect();
        let p = dir.path().join("coverage.png");
        coverage_png(&p, "category_name: accuracy at coverage", &points).unwrap();
        let (w, h) = decode(&p);
        assert!(w >= 900 && h == 520, "{w}×{h}");
        let empty = dir.path().join("empty.png");
        coverage_png(&empty, "nothing", &[]).unwrap();
        assert!(decode(&empty).1 > 0);
        if std::env::var_os("NEXUSML_CHART_SAMPLES").is_some() {
            std::fs::copy(&p, "/tmp/coverage.png").unwrap();
        }
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
