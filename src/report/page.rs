//! The page: what `report.html` shows, computed from a [`RunDir`] into plain strings,
//! then printed by the askama template `templates/report.html`, which escapes every
//! value. Only our own SVG (the pipeline picture, whose labels layout-rs escapes, and
//! the timeline, an askama template too) and base64 data URIs are inserted unescaped.

use super::files::{Json, NodeFile, RunDir, TargetMetrics};
use super::timeline;
use super::ReportError;
use crate::clock::format_ms;
use crate::graph::plot::{self, PlotEdge, PlotGraph, PlotNode, PlotStatus};
use askama::Template;
use base64::Engine as _;
use serde_json::Value;
use std::collections::HashMap;

/// A PNG larger than this is linked, not inlined (the page stays openable).
const MAX_INLINE_PNG: u64 = 8 << 20;
/// Confused pairs listed per target.
const TOP_CONFUSED: usize = 10;
/// Predicted classes listed per target; the rest are summed.
const TOP_PREDICTED: usize = 15;
/// Nodes in the table: a pipeline of thousands of nodes keeps a page a browser opens.
const MAX_NODE_ROWS: usize = 5000;

struct Card {
    label: &'static str,
    value: String,
    note: String,
    class: &'static str,
}

struct ParamRow {
    name: String,
    value: String,
    default: String,
    changed: bool,
}

struct NodeRow {
    id: String,
    op: String,
    status: String,
    duration: String,
    duration_ms: f64,
    start: String,
    start_ms: f64,
    lane: String,
    reason: String,
    attempts: String,
    changed_inputs: String,
    artifacts: String,
    key: String,
    errors: Vec<String>,
    critical: bool,
}

struct ClassRow {
    label: String,
    precision: String,
    recall: String,
    f1: String,
    support: usize,
    precision_v: f64,
    recall_v: f64,
    f1_v: f64,
    f1_pct: String,
}

struct Confused {
    truth: String,
    predicted: String,
    rows: u64,
    share: String,
}

struct Picture {
    title: String,
    /// A data URI (when `inline`).
    src: String,
    /// The file, relative to the page.
    href: String,
    inline: bool,
}

/// A table made from JSON of any shape (calibration bins, coverage levels).
struct Block {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

struct TargetView {
    name: String,
    anchor: String,
    accuracy: String,
    macro_f1: String,
    weighted_f1: String,
    classes: usize,
    scored: usize,
    unlabelled: usize,
    warnings: Vec<String>,
    per_class: Vec<ClassRow>,
    confused: Vec<Confused>,
    errors: u64,
    pictures: Vec<Picture>,
    calibration: Vec<Block>,
    coverage: Vec<Block>,
    top_terms: Vec<(String, String)>,
}

struct MetricsView {
    rows: usize,
    mean_accuracy: String,
    mean_macro_f1: String,
    targets: Vec<TargetView>,
}

struct IssueRow {
    check: String,
    message: String,
}

struct LabelRow {
    target: String,
    labelled: usize,
    unlabelled: usize,
    classes: usize,
    first_lines: String,
    singletons: String,
}

struct NumericRow {
    column: String,
    empty: usize,
    invalid: usize,
    first: String,
}

struct ValidationView {
    valid: bool,
    rows: usize,
    errors: Vec<IssueRow>,
    warnings: Vec<IssueRow>,
    labels: Vec<LabelRow>,
    numeric: Vec<NumericRow>,
    missing_columns: String,
    empty_cells: Vec<(String, usize)>,
    duplicate_rows: usize,
}

struct ClassShare {
    label: String,
    rows: usize,
    percent: String,
    width: String,
}

struct BelowRow {
    probability: String,
    rows: usize,
    percent: String,
}

struct PredictedTarget {
    name: String,
    classes: Vec<ClassShare>,
    below: Vec<BelowRow>,
}

struct PredictionsView {
    rows: usize,
    any_below: Vec<BelowRow>,
    targets: Vec<PredictedTarget>,
}

struct FileRow {
    href: String,
    name: String,
    size: String,
}

#[derive(Template)]
#[template(path = "report.html", config = "src/report/askama.toml")]
struct Page {
    title: String,
    pipeline: String,
    dir_name: String,
    status: String,
    started: String,
    wall: String,
    version: String,
    file: String,
    jobs: String,
    cards: Vec<Card>,
    /// (node, the first error of its chain).
    failures: Vec<(String, String)>,
    params: Vec<ParamRow>,
    /// The changed ones, for the top of the page.
    changed: Vec<ParamRow>,
    defaults_known: bool,
    pipeline_svg: Option<String>,
    pipeline_note: Option<String>,
    timeline_svg: Option<String>,
    critical: String,
    untimed: String,
    timeline_note: Option<String>,
    nodes: Vec<NodeRow>,
    /// Nodes past `MAX_NODE_ROWS`, not in the table (report.json has them).
    nodes_left_out: usize,
    report_json_href: String,
    show_attempts: bool,
    metrics: Option<MetricsView>,
    validation: Option<ValidationView>,
    predictions: Option<PredictionsView>,
    distributions: Vec<Picture>,
    other_pictures: Vec<Picture>,
    files: Vec<FileRow>,
    files_truncated: bool,
}

/// Render the page; `links` prefixes every link to a file of the run (see
/// [`super::link_prefix`]).
pub fn render(run: &RunDir, links: &str) -> Result<String, ReportError> {
    let r = &run.report;
    let edges = r.edges.as_deref().unwrap_or(&[]);
    let critical = timeline::critical_path(&r.nodes, edges);
    let count = |s: &str| r.nodes.iter().filter(|n| n.status == s).count();
    let (ok, cached, failed, skipped) = (count("ok"), count("cached"), count("failed"), count("skipped"));
    let dir_name = run
        .dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| run.dir.display().to_string());

    let mut cards = vec![
        Card {
            label: "status",
            value: r.status.clone(),
            note: match (failed, skipped) {
                (0, 0) => String::new(),
                _ => format!("{failed} failed, {skipped} skipped"),
            },
            class: status_class(&r.status),
        },
        Card {
            label: "nodes",
            value: format!("{} ran", ok + failed),
            note: format!("{cached} cached, {} in the pipeline", r.nodes.len()),
            class: "",
        },
        Card {
            label: "wall time",
            value: format_ms(r.wall_ms),
            note: r
                .jobs
                .map(|j| format!("{j} worker thread(s)"))
                .unwrap_or_default(),
            class: "",
        },
    ];
    if let Some(m) = &run.metrics {
        if let Some(a) = m.mean_accuracy {
            cards.push(Card {
                label: "mean accuracy",
                value: format!("{a:.4}"),
                note: format!("{} targets, {} test rows", m.targets.len(), m.rows),
                class: "",
            });
        }
        if let Some(f) = m.mean_macro_f1 {
            cards.push(Card {
                label: "mean macro-F1",
                value: format!("{f:.4}"),
                note: String::new(),
                class: "",
            });
        }
    }
    if let Some(p) = &run.predictions {
        cards.push(Card {
            label: "rows predicted",
            value: p.rows.to_string(),
            note: format!("{} targets", p.targets.len()),
            class: "",
        });
        if let Some(b) = p
            .any_target_below
            .iter()
            .find(|b| (b.probability - 0.7).abs() < 1e-6)
        {
            cards.push(Card {
                label: "to review",
                value: b.rows.to_string(),
                note: format!("rows with a target under probability {}", b.probability),
                class: if b.rows > 0 { "warn" } else { "" },
            });
        }
    }
    if let Some(v) = &run.validation {
        cards.push(Card {
            label: "validation",
            value: if v.valid { "valid" } else { "invalid" }.into(),
            note: format!("{} errors, {} warnings", v.errors.len(), v.warnings.len()),
            class: if !v.valid {
                "bad"
            } else if v.warnings.is_empty() {
                ""
            } else {
                "warn"
            },
        });
    }

    let (pipeline_svg, pipeline_note) = pipeline_picture(run);
    let timeline_svg = timeline::svg(&r.nodes, &critical, r.wall_ms)?;
    let critical_text = if critical.is_empty() {
        String::new()
    } else {
        let first = r.nodes[critical[0]].start_ms.unwrap_or(0.0);
        let last = r.nodes[*critical.last().unwrap_or(&0)].end_ms.unwrap_or(0.0);
        let ids: Vec<&str> = critical.iter().map(|&i| r.nodes[i].id.as_str()).collect();
        // A long chain is named by its ends.
        let chain = if ids.len() > 24 {
            format!(
                "{} → … ({} more) … → {}",
                ids[..10].join(" → "),
                ids.len() - 20,
                ids[ids.len() - 10..].join(" → ")
            )
        } else {
            ids.join(" → ")
        };
        format!(
            "{chain} ({} of {} wall)",
            format_ms(last - first),
            format_ms(r.wall_ms)
        )
    };
    let untimed: Vec<&str> = r
        .nodes
        .iter()
        .filter(|n| n.start_ms.is_none() || n.end_ms.is_none())
        .map(|n| n.id.as_str())
        .collect();
    let timed = r.nodes.len() - untimed.len();
    let untimed = if untimed.len() > 50 {
        format!("{} nodes", untimed.len())
    } else {
        untimed.join(", ")
    };
    let timeline_note = (timed > timeline::MAX_TIMELINE_ROWS).then(|| {
        format!(
            "{timed} nodes ran: too many to draw one row each (the limit is {}); the node table has their times",
            timeline::MAX_TIMELINE_ROWS
        )
    });

    let pictures = pictures(run, links);
    let (mut distributions, mut other_pictures) = (Vec::new(), Vec::new());
    let mut by_target: HashMap<String, Vec<Picture>> = HashMap::new();
    let targets: Vec<String> = run
        .metrics
        .as_ref()
        .map(|m| m.targets.iter().map(|t| t.target.clone()).collect())
        .unwrap_or_default();
    for (stem, pic) in pictures {
        if stem.starts_with("distribution_") {
            distributions.push(pic);
        } else if let Some(t) = confusion_target(&stem, &targets) {
            by_target.entry(t).or_default().push(pic);
        } else {
            other_pictures.push(pic);
        }
    }

    let page = Page {
        title: format!("{} · {} · {}", r.pipeline, r.status, dir_name),
        pipeline: r.pipeline.clone(),
        dir_name,
        status: r.status.clone(),
        started: r.started_at.replace('T', " ").replace('Z', " UTC"),
        wall: format_ms(r.wall_ms),
        version: r
            .nexusml_version
            .clone()
            .unwrap_or_else(|| "(not recorded)".into()),
        file: r.file.clone(),
        jobs: r.jobs.map(|j| j.to_string()).unwrap_or_else(|| "-".into()),
        cards,
        failures: r
            .nodes
            .iter()
            .filter(|n| n.status == "failed")
            .map(|n| (n.id.clone(), n.error.first().cloned().unwrap_or_default()))
            .collect(),
        changed: params(run).into_iter().filter(|p| p.changed).collect(),
        params: params(run),
        defaults_known: r.default_params.is_some(),
        pipeline_svg,
        pipeline_note,
        timeline_svg,
        critical: critical_text,
        untimed,
        timeline_note,
        show_attempts: r.nodes.iter().any(|n| n.attempts().is_some()),
        nodes: {
            let mut on_path = vec![false; r.nodes.len()];
            for &i in &critical {
                on_path[i] = true;
            }
            r.nodes
                .iter()
                .enumerate()
                .take(MAX_NODE_ROWS)
                .map(|(i, n)| node_row(n, on_path[i]))
                .collect()
        },
        nodes_left_out: r.nodes.len().saturating_sub(MAX_NODE_ROWS),
        report_json_href: format!("{links}{}", encode_path("report.json")),
        metrics: run.metrics.as_ref().map(|m| MetricsView {
            rows: m.rows,
            mean_accuracy: m.mean_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
            mean_macro_f1: m.mean_macro_f1.map_or("-".into(), |a| format!("{a:.4}")),
            targets: m
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let terms = m
                        .top_terms
                        .iter()
                        .find(|(name, _)| name == &t.target)
                        .map(|(_, terms)| terms);
                    target_view(i, t, by_target.remove(&t.target).unwrap_or_default(), terms)
                })
                .collect(),
        }),
        validation: run.validation.as_ref().map(validation_view),
        predictions: run.predictions.as_ref().map(predictions_view),
        distributions,
        other_pictures,
        files: run
            .files
            .iter()
            .map(|f| FileRow {
                href: format!("{links}{}", encode_path(&f.path)),
                name: f.path.clone(),
                size: human_bytes(f.bytes),
            })
            .collect(),
        files_truncated: run.files_truncated,
    };
    Ok(page.render()?)
}

fn status_class(status: &str) -> &'static str {
    match status {
        "ok" => "ok",
        "cached" => "cached",
        "failed" => "bad",
        "interrupted" => "warn",
        _ => "muted",
    }
}

/// A parameter value as a person reads it: text bare, the rest as JSON.
fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => other.to_string(),
    }
}

fn params(run: &RunDir) -> Vec<ParamRow> {
    let r = &run.report;
    r.params
        .iter()
        .map(|(name, value)| {
            let default = r.default_params.as_ref().and_then(|d| d.get(name));
            let changed = r.default_params.is_some() && default != Some(value);
            ParamRow {
                name: name.clone(),
                value: show_value(value),
                default: match default {
                    Some(d) if changed => show_value(d),
                    None if changed => "(not in the file)".into(),
                    _ => String::new(),
                },
                changed,
            }
        })
        .collect()
}

fn node_row(n: &NodeFile, critical: bool) -> NodeRow {
    let lane = match (n.thread, &n.job_id) {
        (Some(t), _) => format!("thread {t}"),
        (None, Some(j)) => format!(
            "job {j}{}",
            n.job_state
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    };
    NodeRow {
        id: n.id.clone(),
        op: n.op.clone(),
        status: n.status.clone(),
        duration: n.duration_ms.map(format_ms).unwrap_or_default(),
        duration_ms: n.duration_ms.unwrap_or(-1.0),
        start: n.start_ms.map(format_ms).unwrap_or_default(),
        start_ms: n.start_ms.unwrap_or(-1.0),
        lane,
        reason: n.reason.clone().unwrap_or_default(),
        attempts: n.attempts().map(|a| a.to_string()).unwrap_or_default(),
        changed_inputs: n.changed_inputs.join(", "),
        artifacts: n.artifacts.join(", "),
        key: n
            .key
            .as_ref()
            .map(|k| k.chars().take(12).collect())
            .unwrap_or_default(),
        errors: n.error.clone(),
        critical,
    }
}

/// The pipeline picture from the report's nodes and edges, coloured by status; or why
/// there is none.
fn pipeline_picture(run: &RunDir) -> (Option<String>, Option<String>) {
    let r = &run.report;
    let Some(edges) = &r.edges else {
        return (
            None,
            Some("this report.json was written by a nexusml that did not record the pipeline's edges".into()),
        );
    };
    let index: HashMap<&str, usize> = r
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut plot_edges = Vec::new();
    for e in edges {
        let (Some(&from), Some(&to)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) else {
            return (
                None,
                Some(format!(
                    "report.json has an edge {} → {} between nodes it does not list",
                    e.from, e.to
                )),
            );
        };
        plot_edges.push(PlotEdge {
            from,
            to,
            label: e.artifacts.join(", "),
            ordering_only: e.kind == "after",
        });
    }
    let graph = PlotGraph {
        title: r.pipeline.clone(),
        nodes: r
            .nodes
            .iter()
            .map(|n| PlotNode {
                id: n.id.clone(),
                op: n.op.clone(),
                status: match n.status.as_str() {
                    "ok" => Some(PlotStatus::Ok),
                    "failed" => Some(PlotStatus::Failed),
                    "cached" => Some(PlotStatus::Cached),
                    "skipped" => Some(PlotStatus::Skipped),
                    _ => None,
                },
                duration_ms: n.duration_ms,
            })
            .collect(),
        edges: plot_edges,
    };
    match plot::to_svg(&graph) {
        Ok(svg) => (Some(inline_svg(&svg)), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// An SVG document as an element inside HTML: no XML declaration, and no namespace
/// attribute (HTML puts `<svg>` in the SVG namespace itself; the page then names no URL).
/// Its view box is trimmed to the drawing (layout-rs leaves room it does not use) and its
/// fixed size becomes a maximum width and an aspect ratio, so it shrinks to fit.
fn inline_svg(svg: &str) -> String {
    let body = svg.find("<svg").map_or(svg, |at| &svg[at..]);
    let body = sorted_style(&body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1));
    let head_end = body.find('>').unwrap_or(body.len());
    let attr = |name: &str| -> Option<(String, String)> {
        let key = format!(" {name}=\"");
        let at = body[..head_end].find(&key)?;
        let value = body[at + key.len()..].split('"').next()?;
        Some((value.to_string(), format!("{key}{value}\"")))
    };
    let (Some((w, wa)), Some((h, ha)), Some((vb, vba))) = (attr("width"), attr("height"), attr("viewBox"))
    else {
        return body.replacen("<svg", "<svg class=\"pipeline\"", 1);
    };
    let vb: Vec<f64> = vb.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let (Ok(w), Ok(h), &[vx, vy, vw, vh]) = (w.parse::<f64>(), h.parse::<f64>(), &vb[..]) else {
        return body.replacen("<svg", "<svg class=\"pipeline\"", 1);
    };
    // The drawing's extent in view-box units (shapes only: labels sit inside boxes or
    // just above edges, which the margin covers).
    let margin = 28.0;
    let (x, y, cw, ch) =
        match resvg::usvg::Tree::from_str(&without_text(svg), &resvg::usvg::Options::default()) {
            Ok(tree) if w > 0.0 && h > 0.0 => {
                let b = tree.root().abs_stroke_bounding_box();
                let (sx, sy) = (vw / w, vh / h);
                let (x, y) = (
                    vx + f64::from(b.x()) * sx - margin,
                    vy + f64::from(b.y()) * sy - margin,
                );
                (
                    x,
                    y,
                    f64::from(b.width()) * sx + 2.0 * margin,
                    f64::from(b.height()) * sy + 2.0 * margin,
                )
            }
            _ => (vx, vy, vw, vh),
        };
    let (head, rest) = body.split_at(head_end);
    let head = head.replacen(&wa, "", 1).replacen(&ha, "", 1).replacen(
        &vba,
        &format!(
            " viewBox=\"{x:.2} {y:.2} {cw:.2} {ch:.2}\" class=\"pipeline\" style=\"max-width:{cw:.0}px;aspect-ratio:{cw:.2}/{ch:.2}\""
        ),
        1,
    );
    format!("{head}{rest}")
}

/// The lines of the first `<style>` block sorted: layout-rs writes its font classes in
/// hash order, and the page must be the same each time it is made.
fn sorted_style(svg: &str) -> String {
    let (Some(start), Some(end)) = (svg.find("<style>\n"), svg.find("</style>")) else {
        return svg.to_string();
    };
    let start = start + "<style>\n".len();
    if end < start {
        return svg.to_string();
    }
    let mut lines: Vec<&str> = svg[start..end].lines().collect();
    lines.sort_unstable();
    let mut out = String::with_capacity(svg.len());
    out.push_str(&svg[..start]);
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&svg[end..]);
    out
}

/// `svg` without its `<text>` elements (measured without fonts, they would only warn).
fn without_text(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(at) = rest.find("<text") {
        out.push_str(&rest[..at]);
        match rest[at..].find("</text>") {
            Some(end) => rest = &rest[at + end + "</text>".len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every PNG of the run, by file stem, inlined (or linked when large).
fn pictures(run: &RunDir, links: &str) -> Vec<(String, Picture)> {
    let mut out = Vec::new();
    for f in &run.files {
        let Some(name) = f.path.strip_suffix(".png") else {
            continue;
        };
        let stem = name.rsplit('/').next().unwrap_or(name).to_string();
        let title = stem.replace('_', " ");
        let inline = f.bytes <= MAX_INLINE_PNG;
        let bytes = if inline {
            std::fs::read(run.dir.join(&f.path)).ok()
        } else {
            None
        };
        let href = format!("{links}{}", encode_path(&f.path));
        let pic = match bytes {
            Some(b) if b.starts_with(b"\x89PNG") => Picture {
                title,
                src: format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(b)
                ),
                href,
                inline: true,
            },
            _ => Picture {
                title,
                src: String::new(),
                href,
                inline: false,
            },
        };
        out.push((stem, pic));
    }
    out
}

/// A name as the plot ops put it in a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The target a `confusion_<target>[_worst]` picture is of.
fn confusion_target(stem: &str, targets: &[String]) -> Option<String> {
    let rest = stem.strip_prefix("confusion_")?;
    targets
        .iter()
        .find(|t| {
            let safe = file_safe(t);
            rest == safe || rest.strip_suffix("_worst") == Some(safe.as_str())
        })
        .cloned()
}

fn target_view(
    i: usize,
    t: &TargetMetrics,
    pictures: Vec<Picture>,
    terms: Option<&Vec<(String, f64)>>,
) -> TargetView {
    let mut per_class: Vec<ClassRow> = t
        .per_class
        .iter()
        .map(|c| ClassRow {
            label: c.label.clone(),
            precision: format!("{:.3}", c.precision),
            recall: format!("{:.3}", c.recall),
            f1: format!("{:.3}", c.f1),
            support: c.support,
            precision_v: c.precision,
            recall_v: c.recall,
            f1_v: c.f1,
            f1_pct: format!("{:.1}", (c.f1 * 100.0).clamp(0.0, 100.0)),
        })
        .collect();
    per_class.sort_by(|a, b| b.support.cmp(&a.support).then(a.label.cmp(&b.label)));
    let mut confused = Vec::new();
    let mut errors = 0;
    for (r, row) in t.confusion.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (c, &n) in row.iter().enumerate() {
            if r != c && n > 0 {
                errors += n;
                confused.push((r, c, n, total));
            }
        }
    }
    confused.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let label = |k: usize| t.labels.get(k).cloned().unwrap_or_else(|| format!("#{k}"));
    TargetView {
        name: t.target.clone(),
        anchor: format!("target-{i}"),
        accuracy: format!("{:.4}", t.accuracy),
        macro_f1: format!("{:.4}", t.macro_f1),
        weighted_f1: t.weighted_f1.map_or("-".into(), |w| format!("{w:.4}")),
        classes: t.labels.len(),
        scored: t.rows,
        unlabelled: t.unlabelled_rows,
        warnings: t.warnings.clone(),
        per_class,
        confused: confused
            .into_iter()
            .take(TOP_CONFUSED)
            .map(|(r, c, n, total)| Confused {
                truth: label(r),
                predicted: label(c),
                rows: n,
                share: format!("{:.0}%", 100.0 * n as f64 / total.max(1) as f64),
            })
            .collect(),
        errors,
        pictures,
        calibration: t
            .calibration
            .as_ref()
            .map(|v| blocks("calibration", v, 0))
            .unwrap_or_default(),
        coverage: t
            .coverage
            .as_ref()
            .map(|v| blocks("coverage", v, 0))
            .unwrap_or_default(),
        top_terms: terms
            .map(|ts| {
                ts.iter()
                    .take(15)
                    .map(|(term, w)| (term.clone(), format!("{w:.4}")))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A cell of a JSON table.
fn cell(v: &Json) -> String {
    match v {
        Json::Null => "-".into(),
        Json::Bool(b) => b.to_string(),
        Json::Int(i) => i.to_string(),
        Json::Num(f) => format!("{f:.4}"),
        Json::Str(s) => s.clone(),
        Json::List(_) | Json::Map(_) => {
            let s = v.to_string();
            if s.chars().count() > 200 {
                format!("{}…", s.chars().take(200).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// Tables from JSON of any shape: a list of records is a table; a record of equally long
/// lists is a table by columns; a record of scalars is a two-column table; nested
/// records and lists become their own tables (two levels deep, then JSON text).
fn blocks(title: &str, v: &Json, depth: usize) -> Vec<Block> {
    let block = |headers: Vec<String>, rows: Vec<Vec<String>>| Block {
        title: title.into(),
        headers,
        rows,
    };
    match v {
        Json::List(items) if !items.is_empty() && items.iter().all(|i| matches!(i, Json::Map(_))) => {
            let mut headers: Vec<String> = Vec::new();
            for item in items {
                if let Json::Map(m) = item {
                    for k in m.keys() {
                        if !headers.contains(k) {
                            headers.push(k.clone());
                        }
                    }
                }
            }
            let rows = items
                .iter()
                .map(|item| {
                    headers
                        .iter()
                        .map(|h| match item {
                            Json::Map(m) => m.get(h).map_or(String::new(), cell),
                            _ => String::new(),
                        })
                        .collect()
                })
                .collect();
            vec![block(headers, rows)]
        }
        Json::List(items) => vec![block(
            Vec::new(),
            items
                .iter()
                .map(|item| match item {
                    Json::List(cells) => cells.iter().map(cell).collect(),
                    other => vec![cell(other)],
                })
                .collect(),
        )],
        Json::Map(map) => {
            let column = |v: &Json| match v {
                Json::List(a) if !a.is_empty() && a.iter().all(Json::is_scalar) => Some(a.len()),
                _ => None,
            };
            let lens: Vec<Option<usize>> = map.values().map(column).collect();
            if !map.is_empty() && lens.iter().all(|l| l.is_some() && *l == lens[0]) {
                let n = lens[0].unwrap_or(0);
                let rows = (0..n)
                    .map(|r| {
                        map.values()
                            .map(|v| match v {
                                Json::List(a) => a.get(r).map_or(String::new(), cell),
                                _ => String::new(),
                            })
                            .collect()
                    })
                    .collect();
                return vec![block(map.keys().cloned().collect(), rows)];
            }
            let mut out = Vec::new();
            let mut pairs = Vec::new();
            for (k, v) in map {
                if v.is_scalar() || depth >= 2 {
                    pairs.push(vec![k.clone(), cell(v)]);
                } else {
                    out.extend(blocks(&format!("{title} › {k}"), v, depth + 1));
                }
            }
            if !pairs.is_empty() {
                out.insert(0, block(Vec::new(), pairs));
            }
            out
        }
        scalar => vec![block(Vec::new(), vec![vec![cell(scalar)]])],
    }
}

/// "lines 4, 9, 17" for the first rows of a finding.
fn lines(list: &[usize], total: usize) -> String {
    if list.is_empty() {
        return String::new();
    }
    format!(
        "line{} {}{}",
        if list.len() == 1 { "" } else { "s" },
        list.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
        if total > list.len() { ", …" } else { "" }
    )
}

fn validation_view(v: &super::files::Validation) -> ValidationView {
    let issue = |i: &super::files::Issue| IssueRow {
        check: i.check.clone(),
        message: i.message.clone(),
    };
    ValidationView {
        valid: v.valid,
        rows: v.rows,
        errors: v.errors.iter().map(issue).collect(),
        warnings: v.warnings.iter().map(issue).collect(),
        labels: v
            .targets
            .iter()
            .map(|(t, l)| {
                let single = v.singleton_classes.get(t).cloned().unwrap_or_default();
                LabelRow {
                    target: t.clone(),
                    labelled: l.labelled,
                    unlabelled: l.unlabelled,
                    classes: l.classes,
                    first_lines: lines(&l.first_unlabelled, l.unlabelled),
                    singletons: match single.len() {
                        0 => String::new(),
                        n if n <= 5 => single.join(", "),
                        n => format!("{} and {} more", single[..5].join(", "), n - 5),
                    },
                }
            })
            .collect(),
        numeric: v
            .numeric
            .iter()
            .map(|(c, n)| NumericRow {
                column: c.clone(),
                empty: n.empty,
                invalid: n.invalid,
                first: n
                    .first_invalid
                    .iter()
                    .map(|(line, value)| format!("line {line}: {value}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect(),
        missing_columns: v.missing_columns.join(", "),
        empty_cells: v
            .empty_cells
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(c, &n)| (c.clone(), n))
            .collect(),
        duplicate_rows: v.duplicate_rows,
    }
}

fn percent(n: usize, of: usize) -> String {
    format!("{:.1}%", 100.0 * n as f64 / of.max(1) as f64)
}

fn predictions_view(p: &super::files::Predictions) -> PredictionsView {
    let below = |list: &[super::files::Below]| {
        list.iter()
            .map(|b| BelowRow {
                probability: format!("{}", b.probability),
                rows: b.rows,
                percent: percent(b.rows, p.rows),
            })
            .collect::<Vec<_>>()
    };
    PredictionsView {
        rows: p.rows,
        any_below: below(&p.any_target_below),
        targets: p
            .targets
            .iter()
            .map(|t| {
                let max = t.classes.iter().map(|c| c.rows).max().unwrap_or(1).max(1);
                let mut classes: Vec<ClassShare> = t
                    .classes
                    .iter()
                    .take(TOP_PREDICTED)
                    .map(|c| ClassShare {
                        label: c.label.clone(),
                        rows: c.rows,
                        percent: percent(c.rows, p.rows),
                        width: format!("{:.1}", 100.0 * c.rows as f64 / max as f64),
                    })
                    .collect();
                if t.classes.len() > TOP_PREDICTED {
                    let rest: usize = t.classes[TOP_PREDICTED..].iter().map(|c| c.rows).sum();
                    classes.push(ClassShare {
                        label: format!("{} other classes", t.classes.len() - TOP_PREDICTED),
                        rows: rest,
                        percent: percent(rest, p.rows),
                        width: "0".into(),
                    });
                }
                PredictedTarget {
                    name: t.target.clone(),
                    classes,
                    below: below(&t.below),
                }
            })
            .collect(),
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n if n < 1 << 30 => format!("{:.1} MiB", n as f64 / 1048576.0),
        n => format!("{:.2} GiB", n as f64 / 1073741824.0),
    }
}

/// Percent-encode one path segment: everything but unreserved characters, so no name
/// can end a link, start a scheme (`javascript:`) or a query.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A relative `/`-separated path as a link: each segment encoded, `./` first.
fn encode_path(path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(percent_encode).collect();
    format!("./{}", encoded.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_cannot_escape_their_path() {
        assert_eq!(encode_path("plots/a b#c.png"), "./plots/a%20b%23c.png");
        assert_eq!(encode_path("javascript:alert(1)"), "./javascript%3Aalert%281%29");
        assert_eq!(percent_encode("\"><"), "%22%3E%3C");
    }

    #[test]
    fn json_of_any_shape_becomes_tables() {
        let json = |text: &str| -> Json { serde_json::from_str(text).unwrap() };
        let rows = json(r#"[{"bin": 0.1, "accuracy": 0.5, "rows": 3}, {"bin": 0.2, "rows": 4}]"#);
        let b = blocks("calibration", &rows, 0);
        assert_eq!(b[0].headers, ["bin", "accuracy", "rows"]);
        assert_eq!(b[0].rows[1], ["0.2000", "", "4"]);
        let cols = json(r#"{"coverage": [0.5, 1.0], "accuracy": [0.99, 0.9]}"#);
        let b = blocks("coverage", &cols, 0);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].rows, [["0.5000", "0.9900"], ["1.0000", "0.9000"]]);
        let mixed = json(r#"{"ece": 0.031, "bins": [{"lo": 0, "hi": 0.1}], "note": null}"#);
        let b = blocks("calibration", &mixed, 0);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].rows, [["ece", "0.0310"], ["note", "-"]]);
        assert_eq!(b[1].title, "calibration › bins");
        assert_eq!(b[1].headers, ["lo", "hi"]);
    }

    #[test]
    fn confusion_pictures_find_their_target() {
        let targets = vec!["category_name".to_string(), "a b".to_string()];
        assert_eq!(
            confusion_target("confusion_category_name", &targets).as_deref(),
            Some("category_name")
        );
        assert_eq!(
            confusion_target("confusion_a_b_worst", &targets).as_deref(),
            Some("a b")
        );
        assert_eq!(confusion_target("confusion_other", &targets), None);
        assert_eq!(confusion_target("distribution_a_b", &targets), None);
    }

    #[test]
    fn inline_svg_drops_the_declaration_and_namespace_and_trims_the_view() {
        let svg = "<?xml version=\"1.0\"?><svg width=\"400\" height=\"300\" viewBox=\"-20 -20 400 300\" \
                   xmlns=\"http://www.w3.org/2000/svg\"><rect x=\"10\" y=\"10\" width=\"50\" height=\"20\"/></svg>";
        assert_eq!(
            inline_svg(svg),
            "<svg viewBox=\"-18.00 -18.00 106.00 76.00\" class=\"pipeline\" style=\"max-width:106px;aspect-ratio:106.00/76.00\">\
             <rect x=\"10\" y=\"10\" width=\"50\" height=\"20\"/></svg>"
        );
        assert!(!inline_svg(svg).contains("http"));
        assert_eq!(
            without_text("<g><text x=\"1\">a</text><rect/><text>b</text></g>"),
            "<g><rect/></g>"
        );
    }
}
