//! Pictures of a pipeline: DOT and Mermaid as text, SVG and PNG rendered in pure Rust
//! (layout-rs lays out and writes SVG; resvg rasterizes it with an embedded DejaVu font,
//! so neither graphviz nor system fonts are needed).

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::{get_size_for_str, Point};
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

/// A pipeline to draw: nodes (optionally with a run's status and duration) and edges.
#[derive(Debug, Clone)]
pub struct PlotGraph {
    pub title: String,
    pub nodes: Vec<PlotNode>,
    pub edges: Vec<PlotEdge>,
}

#[derive(Debug, Clone)]
pub struct PlotNode {
    pub id: String,
    pub op: String,
    pub status: Option<PlotStatus>,
    pub duration_ms: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotStatus {
    Ok,
    Failed,
    Skipped,
    Cached,
}

/// `from`/`to` index `nodes`; `label` names the artifacts carried; an ordering-only
/// (`after`) edge is dashed.
#[derive(Debug, Clone)]
pub struct PlotEdge {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub ordering_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Raster(#[from] crate::raster::RasterError),
    #[error(
        "the pipeline is too big for an SVG or PNG picture: {}; \
         their layout time grows much faster than the pipeline. \
         Use `--format dot` (render it with graphviz: `dot -Tsvg`) or `--format mermaid`, \
         which work at any size, or draw part of it",
        .size.excess()
    )]
    TooBig { size: LayoutSize },
}

/// What the layout's cost depends on. layout-rs turns every edge into a chain of
/// connector boxes, one per rank it spans, and reorders each rank against its
/// neighbours; its time grows about with the cube of these (measured: a 1,500-node chain
/// 3.9 s, 2,000 25 s; a source feeding 300 nodes 2.7 s, 400 6.4 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutSize {
    /// Boxes to place: nodes, plus one connector per rank each edge spans.
    pub elements: usize,
    /// Over each gap between neighbouring ranks, the square of the edges passing it,
    /// summed: what reordering the ranks to avoid crossings costs.
    pub gap_load: usize,
}

/// Past these, SVG and PNG are refused (measured with the release binary on 2 cores:
/// near the limits a picture takes 0.2 to 1 s as SVG and 0.8 to 2.3 s as PNG; a chain
/// of 500, 1,000 unconnected nodes, a source feeding 140, or two such fans in a row fit).
pub const MAX_LAYOUT_ELEMENTS: usize = 1000;
pub const MAX_LAYOUT_GAP_LOAD: usize = 20_000;

impl LayoutSize {
    /// Ranks are longest-path levels, as layout-rs assigns them. Linear in the graph.
    pub fn of(g: &PlotGraph) -> LayoutSize {
        let n = g.nodes.len();
        let mut indegree = vec![0usize; n];
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &g.edges {
            if e.from < n && e.to < n && e.from != e.to {
                indegree[e.to] += 1;
                succ[e.from].push(e.to);
            }
        }
        let mut level = vec![0usize; n];
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        while let Some(v) = ready.pop() {
            for &w in &succ[v] {
                level[w] = level[w].max(level[v] + 1);
                indegree[w] -= 1;
                if indegree[w] == 0 {
                    ready.push(w);
                }
            }
        }
        // Edges crossing each gap between rank r and r + 1, by a difference array.
        let ranks = level.iter().max().map_or(0, |m| m + 1);
        let mut delta = vec![0isize; ranks + 1];
        let mut elements = n;
        for e in &g.edges {
            if e.from >= n || e.to >= n {
                continue;
            }
            let (a, b) = (level[e.from].min(level[e.to]), level[e.from].max(level[e.to]));
            elements += (b - a).max(1);
            delta[a] += 1;
            delta[b.max(a + 1).min(ranks)] -= 1;
        }
        let mut gap_load = 0usize;
        let mut open = 0isize;
        for d in delta {
            open += d;
            let width = open.max(0) as usize;
            gap_load = gap_load.saturating_add(width.saturating_mul(width));
        }
        LayoutSize { elements, gap_load }
    }

    fn fits(&self) -> bool {
        self.elements <= MAX_LAYOUT_ELEMENTS && self.gap_load <= MAX_LAYOUT_GAP_LOAD
    }

    fn excess(&self) -> String {
        if self.elements > MAX_LAYOUT_ELEMENTS {
            format!(
                "{} boxes to lay out (nodes, and edges counted once per rank they span), past the limit of {MAX_LAYOUT_ELEMENTS}",
                self.elements
            )
        } else {
            format!(
                "edges crowd between neighbouring ranks (the squares of the edges passing each gap \
                 add up to {}), past the limit of {MAX_LAYOUT_GAP_LOAD}",
                self.gap_load
            )
        }
    }
}

/// Fill colours by status (and none: neutral).
fn fill(status: Option<PlotStatus>) -> &'static str {
    match status {
        None => "#eef2f7",
        Some(PlotStatus::Ok) => "#c8e6c9",
        Some(PlotStatus::Failed) => "#ffcdd2",
        Some(PlotStatus::Skipped) => "#e0e0e0",
        Some(PlotStatus::Cached) => "#bbdefb",
    }
}

fn status_word(status: PlotStatus) -> &'static str {
    match status {
        PlotStatus::Ok => "ok",
        PlotStatus::Failed => "failed",
        PlotStatus::Skipped => "skipped",
        PlotStatus::Cached => "cached",
    }
}

/// `id`, `op`, and with a run `status · duration`, one per line.
fn node_lines(n: &PlotNode) -> Vec<String> {
    let mut lines = vec![n.id.clone(), n.op.clone()];
    if let Some(s) = n.status {
        let mut line = status_word(s).to_string();
        if let (Some(ms), PlotStatus::Ok | PlotStatus::Failed) = (n.duration_ms, s) {
            line.push_str(" · ");
            line.push_str(&crate::clock::format_ms(ms));
        }
        lines.push(line);
    }
    lines
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Graphviz DOT.
pub fn to_dot(g: &PlotGraph) -> String {
    let mut s = format!("digraph \"{}\" {{\n", dot_escape(&g.title));
    s.push_str("  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"DejaVu Sans\"];\n");
    s.push_str("  edge [fontname=\"DejaVu Sans\", fontsize=10];\n");
    for n in &g.nodes {
        let label = node_lines(n)
            .iter()
            .map(|l| dot_escape(l))
            .collect::<Vec<_>>()
            .join("\\n");
        s.push_str(&format!(
            "  \"{}\" [label=\"{label}\", fillcolor=\"{}\"];\n",
            dot_escape(&n.id),
            fill(n.status)
        ));
    }
    for e in &g.edges {
        let (from, to) = (&g.nodes[e.from].id, &g.nodes[e.to].id);
        let attrs = if e.ordering_only {
            "style=dashed, label=\"after\"".to_string()
        } else {
            format!("label=\"{}\"", dot_escape(&e.label))
        };
        s.push_str(&format!(
            "  \"{}\" -> \"{}\" [{attrs}];\n",
            dot_escape(from),
            dot_escape(to)
        ));
    }
    s.push_str("}\n");
    s
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Mermaid flowchart (node ids are mapped to `n0, n1, …`: pipeline ids may hold `.`/`-`).
pub fn to_mermaid(g: &PlotGraph) -> String {
    let mut s = String::from("flowchart LR\n");
    for (i, n) in g.nodes.iter().enumerate() {
        let label = node_lines(n)
            .iter()
            .map(|l| mermaid_escape(l))
            .collect::<Vec<_>>()
            .join("<br/>");
        s.push_str(&format!("  n{i}[\"{label}\"]\n"));
    }
    for e in &g.edges {
        if e.ordering_only {
            s.push_str(&format!("  n{} -.->|after| n{}\n", e.from, e.to));
        } else {
            s.push_str(&format!(
                "  n{} -->|\"{}\"| n{}\n",
                e.from,
                mermaid_escape(&e.label),
                e.to
            ));
        }
    }
    for (class, status) in [
        ("ok", PlotStatus::Ok),
        ("failed", PlotStatus::Failed),
        ("skipped", PlotStatus::Skipped),
        ("cached", PlotStatus::Cached),
    ] {
        let members: Vec<String> = (0..g.nodes.len())
            .filter(|&i| g.nodes[i].status == Some(status))
            .map(|i| format!("n{i}"))
            .collect();
        if !members.is_empty() {
            s.push_str(&format!("  classDef {class} fill:{}\n", fill(Some(status))));
            s.push_str(&format!("  class {} {class}\n", members.join(",")));
        }
    }
    s
}

const FONT: usize = 14;

/// SVG, laid out left to right by layout-rs.
pub fn to_svg(g: &PlotGraph) -> Result<String, PlotError> {
    if g.nodes.is_empty() {
        return Ok(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"240\" height=\"40\"><text x=\"10\" y=\"25\" \
             font-family=\"DejaVu Sans\" font-size=\"14\">{} (no nodes)</text></svg>",
            crate::raster::xml_escape(&g.title)
        ));
    }
    let size = LayoutSize::of(g);
    if !size.fits() {
        return Err(PlotError::TooBig { size });
    }
    let orientation = Orientation::LeftToRight;
    let mut vg = VisualGraph::new(orientation);
    let handles: Vec<_> = g
        .nodes
        .iter()
        .map(|n| {
            // layout-rs escapes markup but not what XML cannot hold.
            let label = crate::raster::xml_chars(&node_lines(n).join("\n")).into_owned();
            let look = StyleAttr::new(
                Color::fast("#37474f"),
                1,
                Some(Color::fast(fill(n.status))),
                6,
                FONT,
            );
            // layout-rs sizes text at one font-size per character; DejaVu is narrower.
            let size = get_size_for_str(&label, FONT);
            let size = Point::new(size.x * 0.68 + 24.0, size.y * 1.15 + 16.0);
            vg.add_node(Element::create(
                ShapeKind::new_box(&label),
                look,
                orientation,
                size,
            ))
        })
        .collect();
    for e in &g.edges {
        let look = StyleAttr::new(Color::fast("#546e7a"), 1, None, 0, 11);
        let (style, text) = if e.ordering_only {
            (LineStyleKind::Dashed, "after".into())
        } else {
            (LineStyleKind::Normal, crate::raster::xml_chars(&e.label))
        };
        let arrow = Arrow::new(
            LineEndKind::None,
            LineEndKind::Arrow,
            style,
            &text,
            &look,
            &None,
            &None,
        );
        vg.add_edge(arrow, handles[e.from], handles[e.to]);
    }
    let mut writer = SVGWriter::new();
    vg.do_it(false, false, false, &mut writer);
    // layout-rs names Times; we ship DejaVu Sans and ask for it by name.
    let svg = writer
        .finalize()
        .replace("Times, serif", "'DejaVu Sans', sans-serif");
    Ok(pad_canvas(&lift_edge_labels(&svg, 9.0), 24.0))
}

/// Grow the canvas by `m` on every side (a lifted label near the top edge would
/// otherwise be cut or touch the border); the PNG is cropped to its content afterwards.
fn pad_canvas(svg: &str, m: f64) -> String {
    let Some(start) = svg.find("<svg ") else {
        return svg.to_string();
    };
    let end = start + svg[start..].find('>').unwrap_or(0);
    let head = &svg[start..end];
    let attr = |name: &str| -> Option<f64> {
        let at = head.find(&format!(" {name}=\""))? + name.len() + 3;
        head[at..].split('"').next()?.parse().ok()
    };
    let (Some(w), Some(h)) = (attr("width"), attr("height")) else {
        return svg.to_string();
    };
    let (w2, h2) = (w + 2.0 * m, h + 2.0 * m);
    let new_head = format!(
        "<svg width=\"{w2:.2}\" height=\"{h2:.2}\" viewBox=\"{:.2} {:.2} {w2:.2} {h2:.2}\" xmlns=\"http://www.w3.org/2000/svg\"",
        -m, -m
    );
    format!("{}{}{}", &svg[..start], new_head, &svg[end..])
}

/// layout-rs centres an edge's label on the edge, and draws the edge after it, so the
/// line strikes the label through. Move each edge label up by `dy`: those of short edges
/// (font class `a11`) and those layout-rs puts on a long edge's bend (class `a15`, which
/// it also draws at 15 px: made 11 px like the others).
fn lift_edge_labels(svg: &str, dy: f64) -> String {
    let mut svg = svg.replace(".a15 { font-size: 15px;", ".a15 { font-size: 11px;");
    for class in ["a11", "a15"] {
        let mark = format!("\" class=\"{class}\"");
        let mut out = String::with_capacity(svg.len());
        let mut rest = svg.as_str();
        while let Some(at) = rest.find(&mark) {
            let head = &rest[..at];
            // `head` ends with `y="<number>`.
            match head.rfind("y=\"") {
                Some(y) if head[y + 3..].parse::<f64>().is_ok() => {
                    let value: f64 = head[y + 3..].parse().unwrap_or_default();
                    out.push_str(&head[..y + 3]);
                    out.push_str(&format!("{:.2}", value - dy));
                }
                _ => out.push_str(head),
            }
            out.push_str(&mark);
            rest = &rest[at + mark.len()..];
        }
        out.push_str(rest);
        svg = out;
    }
    svg
}

/// PNG of the SVG at 2× scale on white.
pub fn to_png(g: &PlotGraph) -> Result<Vec<u8>, PlotError> {
    let svg = to_svg(g)?;
    svg_to_png(&svg, 2.0)
}

/// Rasterize an SVG with the embedded DejaVu fonts, cropped to the drawing.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, PlotError> {
    Ok(crate::raster::svg_to_png(
        svg,
        scale,
        Some((16.0 * scale) as u32),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(statuses: bool) -> PlotGraph {
        let ids = [
            ("load", "csv.load"),
            ("validate", "data.validate"),
            ("features", "features.engineer"),
            ("split", "data.split"),
            ("train \"x\"", "model.train_forest"),
        ];
        PlotGraph {
            title: "train".into(),
            nodes: ids
                .iter()
                .enumerate()
                .map(|(i, (id, op))| PlotNode {
                    id: id.to_string(),
                    op: op.to_string(),
                    status: statuses.then_some(if i == 4 {
                        PlotStatus::Failed
                    } else {
                        PlotStatus::Ok
                    }),
                    duration_ms: statuses.then_some(12.5 * i as f64),
                })
                .collect(),
            edges: vec![
                PlotEdge {
                    from: 0,
                    to: 1,
                    label: "raw".into(),
                    ordering_only: false,
                },
                PlotEdge {
                    from: 0,
                    to: 2,
                    label: "raw".into(),
                    ordering_only: false,
                },
                PlotEdge {
                    from: 2,
                    to: 3,
                    label: "engineered".into(),
                    ordering_only: false,
                },
                PlotEdge {
                    from: 3,
                    to: 4,
                    label: "train_set, test_set".into(),
                    ordering_only: false,
                },
                PlotEdge {
                    from: 1,
                    to: 4,
                    label: String::new(),
                    ordering_only: true,
                },
            ],
        }
    }

    #[test]
    fn dot_escapes_and_lists_everything() {
        let dot = to_dot(&sample(true));
        assert!(dot.starts_with("digraph \"train\" {"));
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
        assert!(dot.contains(
            "\"train \\\"x\\\"\" [label=\"train \\\"x\\\"\\nmodel.train_forest\\nfailed · 50.0 ms\""
        ));
        assert!(dot.contains("\"load\" -> \"features\" [label=\"raw\"]"));
        assert!(dot.contains("\"validate\" -> \"train \\\"x\\\"\" [style=dashed"));
        assert!(dot.contains(fill(Some(PlotStatus::Failed))));
        assert_eq!(dot.matches(" -> ").count(), 5);
    }

    #[test]
    fn mermaid_has_every_node_and_edge() {
        let m = to_mermaid(&sample(true));
        assert!(m.starts_with("flowchart LR\n"));
        assert_eq!(m.matches("-->").count(), 4);
        assert_eq!(m.matches("-.->").count(), 1);
        assert!(m.contains("n4[\"train #quot;x#quot;<br/>model.train_forest<br/>failed · 50.0 ms\"]"));
        assert!(m.contains("class n4 failed"));
    }

    #[test]
    fn edge_labels_are_lifted_off_their_edge() {
        let svg = "<svg width=\"10\" height=\"20\" viewBox=\"0 0 10 20\" xmlns=\"http://www.w3.org/2000/svg\">\
                   <style>.a15 { font-size: 15px; }</style>\
                   <text x=\"1\" y=\"50.5\" class=\"a11\">a</text><text x=\"1\" y=\"70\" class=\"a15\">b</text></svg>";
        let out = pad_canvas(&lift_edge_labels(svg, 9.0), 24.0);
        assert!(out.contains("y=\"41.50\" class=\"a11\""), "{out}");
        assert!(out.contains("y=\"61.00\" class=\"a15\""), "{out}");
        assert!(out.contains(".a15 { font-size: 11px; }"), "{out}");
        assert!(
            out.contains("width=\"58.00\" height=\"68.00\" viewBox=\"-24.00 -24.00 58.00 68.00\""),
            "{out}"
        );
    }

    #[test]
    fn svg_parses_and_png_decodes() {
        for statuses in [false, true] {
            let g = sample(statuses);
            let svg = to_svg(&g).unwrap();
            assert!(resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).is_ok());
            assert!(svg.contains("model.train_forest"));
            // Edge labels: one size (layout-rs draws those on long edges at 15 px), and room
            // above the top one.
            assert!(!svg.contains("font-size: 15px"), "{svg}");
            assert!(svg.contains("viewBox=\"-24.00 -24.00 "), "{}", &svg[..300]);
            let png = to_png(&g).unwrap();
            let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
            assert!(
                pixmap.width() > 300 && pixmap.height() > 80,
                "{}×{}",
                pixmap.width(),
                pixmap.height()
            );
            if std::env::var_os("NEXUSML_PLOT_SAMPLES").is_some() {
                std::fs::write(format!("/tmp/plot_{statuses}.png"), &png).unwrap();
            }
        }
        let empty = PlotGraph {
            title: "t".into(),
            nodes: vec![],
            edges: vec![],
        };
        assert!(to_png(&empty).is_ok());
    }

    fn shape(n: usize, edges: &[(usize, usize)]) -> PlotGraph {
        PlotGraph {
            title: "t".into(),
            nodes: (0..n)
                .map(|i| PlotNode {
                    id: format!("n{i}"),
                    op: "util.noop".into(),
                    status: None,
                    duration_ms: None,
                })
                .collect(),
            edges: edges
                .iter()
                .map(|&(from, to)| PlotEdge {
                    from,
                    to,
                    label: "x".into(),
                    ordering_only: false,
                })
                .collect(),
        }
    }

    #[test]
    fn layout_size_counts_spans_and_gap_load() {
        let chain: Vec<_> = (1..10).map(|i| (i - 1, i)).collect();
        assert_eq!(
            LayoutSize::of(&shape(10, &chain)),
            LayoutSize {
                elements: 19,
                gap_load: 9
            }
        );
        // A source feeding 5 nodes, and a long edge from it to the end of a 3-chain.
        let mut edges: Vec<_> = (1..6).map(|i| (0, i)).collect();
        edges.extend([(1, 6), (6, 7), (0, 7)]);
        assert_eq!(
            LayoutSize::of(&shape(8, &edges)),
            LayoutSize {
                elements: 8 + 5 + 2 + 3,
                // Gap 0: the 5 fan edges and the long one; gap 1: (1, 6) and the long one.
                gap_load: 6 * 6 + 2 * 2 + 2 * 2
            }
        );
        assert_eq!(LayoutSize::of(&shape(3, &[])).gap_load, 0);
    }

    #[test]
    fn too_big_pictures_are_refused_with_the_way_out() {
        let chain: Vec<_> = (1..600).map(|i| (i - 1, i)).collect();
        let err = to_svg(&shape(600, &chain)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("1199 boxes to lay out"), "{msg}");
        assert!(msg.contains("past the limit of 1000"), "{msg}");
        assert!(
            msg.contains("`--format dot`") && msg.contains("`--format mermaid`"),
            "{msg}"
        );
        let fan: Vec<_> = (1..=142).map(|i| (0, i)).collect();
        let msg = to_png(&shape(143, &fan)).unwrap_err().to_string();
        assert!(msg.contains("add up to 20164), past the limit of 20000"), "{msg}");
        let fan: Vec<_> = (1..=20).map(|i| (0, i)).collect();
        assert!(to_svg(&shape(21, &fan)).is_ok());
        assert!(to_dot(&shape(600, &chain)).contains("\"n598\" -> \"n599\""));
    }
}
