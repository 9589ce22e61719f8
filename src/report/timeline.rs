//! The run's timeline: one bar per node from its start to its end, grouped by the worker
//! thread (or cluster job) that ran it, so stages that overlapped are side by side; and
//! the critical path, the chain of nodes each of which waited for the one before it.

use super::files::{EdgeFile, NodeFile};
use askama::Template;
use std::collections::HashMap;

/// Bar fill by node status, as the pipeline picture colours them.
pub fn status_fill(status: &str) -> &'static str {
    match status {
        "ok" => "#66bb6a",
        "cached" => "#64b5f6",
        "failed" => "#e57373",
        _ => "#bdbdbd",
    }
}

/// The critical path of a run: start from the node that ended last and step back, each
/// time to the predecessor that ended last (the one the node was still waiting for).
/// Indices into `nodes`, first to last; empty without timed nodes.
pub fn critical_path(nodes: &[NodeFile], edges: &[EdgeFile]) -> Vec<usize> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for e in edges {
        if let (Some(&f), Some(&t)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            preds[t].push(f);
        }
    }
    let end = |i: usize| nodes[i].end_ms.filter(|_| nodes[i].start_ms.is_some());
    let last = (0..nodes.len())
        .filter_map(|i| end(i).map(|e| (i, e)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((mut at, _)) = last else {
        return Vec::new();
    };
    let mut path = vec![at];
    let mut on_path = vec![false; nodes.len()];
    on_path[at] = true;
    // Each step goes to a node not yet on the path: at most one step per node.
    loop {
        let next = preds[at]
            .iter()
            .filter(|&&p| !on_path[p])
            .filter_map(|&p| end(p).map(|e| (p, e)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((p, _)) => {
                path.push(p);
                on_path[p] = true;
                at = p;
            }
            None => break,
        }
    }
    path.reverse();
    path
}

struct Tick {
    x: f64,
    label: String,
}

struct Group {
    y: f64,
    height: f64,
    label: String,
    shaded: bool,
}

struct Bar {
    y: f64,
    label: String,
    label_bold: bool,
    x: f64,
    w: f64,
    fill: &'static str,
    critical: bool,
    title: String,
    text: String,
    text_x: f64,
    text_end: bool,
}

#[derive(Template)]
#[template(path = "timeline.svg", config = "src/report/askama.toml")]
struct TimelineSvg {
    width: f64,
    height: f64,
    left: f64,
    chart: f64,
    axis_y: f64,
    ticks: Vec<Tick>,
    groups: Vec<Group>,
    bars: Vec<Bar>,
}

const ROW: f64 = 22.0;
const GROUP_GAP: f64 = 8.0;
const FONT: f64 = 12.0;
const CHART_WIDTH: f64 = 820.0;

/// A round tick step near `span / 8`: 1, 2 or 5 × 10^k ms.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 8.0).max(1e-3);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag)
}

/// `0`, `2 s`, `1.5 s`, `20 ms`: seconds on a timeline of a second or more, with as many
/// decimals as the step needs.
fn tick_label(t: f64, step: f64, span: f64) -> String {
    if t == 0.0 {
        return "0".into();
    }
    let (value, step, unit) = if span >= 1000.0 {
        (t / 1000.0, step / 1000.0, "s")
    } else {
        (t, step, "ms")
    };
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$} {unit}")
}

/// The lane a node ran in: its worker thread, else the cluster (each node its own job).
fn lane(n: &NodeFile) -> (usize, String) {
    match (n.thread, &n.job_id) {
        (Some(t), _) => (t, format!("worker thread {t}")),
        (None, Some(_)) => (usize::MAX - 1, "cluster jobs".to_string()),
        (None, None) => (usize::MAX, "no thread recorded".to_string()),
    }
}

/// Past this many timed nodes the timeline is not drawn (a row each: the picture would be
/// taller than anyone reads, and the node table has the same times).
pub const MAX_TIMELINE_ROWS: usize = 1000;

/// The timeline as SVG (no `xmlns`: it is inlined in HTML), or `None` when no node has
/// start and end times (nothing ran, or every node was skipped) or more than
/// [`MAX_TIMELINE_ROWS`] have.
pub fn svg(nodes: &[NodeFile], critical: &[usize], wall_ms: f64) -> Result<Option<String>, askama::Error> {
    let mut timed: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].start_ms.is_some() && nodes[i].end_ms.is_some())
        .collect();
    if timed.is_empty() || timed.len() > MAX_TIMELINE_ROWS {
        return Ok(None);
    }
    let mut on_path = vec![false; nodes.len()];
    for &i in critical {
        on_path[i] = true;
    }
    timed.sort_by(|&a, &b| {
        lane(&nodes[a]).0.cmp(&lane(&nodes[b]).0).then(
            nodes[a]
                .start_ms
                .unwrap_or(0.0)
                .total_cmp(&nodes[b].start_ms.unwrap_or(0.0)),
        )
    });
    let span = timed
        .iter()
        .filter_map(|&i| nodes[i].end_ms)
        .fold(wall_ms.max(0.0), f64::max)
        .max(1e-3);
    let left = timed
        .iter()
        .map(|&i| crate::raster::text_width(&nodes[i].id, FONT, true))
        .fold(120.0, f64::max)
        + 28.0;
    let scale = CHART_WIDTH / span;
    let step = tick_step(span);
    let axis_y = 22.0;
    let ticks = (0..)
        .map(|k| k as f64 * step)
        .take_while(|&t| t <= span * 1.0001)
        .map(|t| Tick {
            x: left + t * scale,
            label: tick_label(t, step, span),
        })
        .collect();
    let mut groups = Vec::new();
    let mut bars = Vec::new();
    let mut y = axis_y + 12.0;
    let mut current: Option<usize> = None;
    for &i in &timed {
        let n = &nodes[i];
        let (key, label) = lane(n);
        if current != Some(key) {
            if current.is_some() {
                y += GROUP_GAP;
            }
            groups.push(Group {
                y,
                height: 0.0,
                label,
                shaded: groups.len() % 2 == 0,
            });
            y += 18.0;
            current = Some(key);
        }
        let (start, end) = (n.start_ms.unwrap_or(0.0), n.end_ms.unwrap_or(0.0));
        let x = left + start * scale;
        let w = ((end - start) * scale).max(2.0);
        let text = crate::clock::format_ms(n.duration_ms.unwrap_or(end - start));
        let text_w = crate::raster::text_width(&text, 11.0, false);
        // The duration beside the bar: after it when it fits in the chart, else before.
        let (text_x, text_end) = if x + w + 6.0 + text_w <= left + CHART_WIDTH {
            (x + w + 5.0, false)
        } else {
            (x - 5.0, true)
        };
        let is_critical = on_path[i];
        bars.push(Bar {
            y,
            label: n.id.clone(),
            label_bold: is_critical,
            x,
            w,
            fill: status_fill(&n.status),
            critical: is_critical,
            title: format!(
                "{} ({}): {}, {} → {}",
                n.id,
                n.op,
                n.status,
                crate::clock::format_ms(start),
                crate::clock::format_ms(end)
            ),
            text,
            text_x,
            text_end,
        });
        y += ROW;
        if let Some(g) = groups.last_mut() {
            g.height = y - g.y;
        }
    }
    let height = y + 10.0;
    TimelineSvg {
        width: left + CHART_WIDTH + 70.0,
        height,
        left,
        chart: CHART_WIDTH,
        axis_y,
        ticks,
        groups,
        bars,
    }
    .render()
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, start: f64, end: f64, thread: usize) -> NodeFile {
        serde_json::from_value(serde_json::json!({
            "id": id, "op": "util.noop", "status": "ok",
            "start_ms": start, "end_ms": end, "duration_ms": end - start, "thread": thread,
        }))
        .unwrap()
    }

    fn edge(from: &str, to: &str) -> EdgeFile {
        EdgeFile {
            from: from.into(),
            to: to.into(),
            kind: "data".into(),
            artifacts: vec![],
        }
    }

    #[test]
    fn the_critical_path_follows_the_predecessor_that_ended_last() {
        // a → (b: short, c: long) → d; e runs alone and ends early.
        let nodes = vec![
            node("a", 0.0, 10.0, 0),
            node("b", 10.0, 15.0, 0),
            node("c", 10.0, 50.0, 1),
            node("d", 50.0, 60.0, 1),
            node("e", 0.0, 5.0, 0),
        ];
        let edges = vec![edge("a", "b"), edge("a", "c"), edge("b", "d"), edge("c", "d")];
        assert_eq!(critical_path(&nodes, &edges), [0, 2, 3]);
        // Without edges, the path is the last node alone; untimed nodes are never on it.
        assert_eq!(critical_path(&nodes, &[]), [3]);
        let mut skipped = node("s", 0.0, 0.0, 0);
        skipped.start_ms = None;
        skipped.end_ms = None;
        assert!(critical_path(&[skipped], &[]).is_empty());
    }

    #[test]
    fn a_long_chain_has_its_critical_path_in_linear_time() {
        let n = 100_000;
        let nodes: Vec<NodeFile> = (0..n)
            .map(|i| node(&format!("n{i}"), i as f64, i as f64 + 1.0, 0))
            .collect();
        let edges: Vec<EdgeFile> = (1..n)
            .map(|i| edge(&format!("n{}", i - 1), &format!("n{i}")))
            .collect();
        let t = std::time::Instant::now();
        let path = critical_path(&nodes, &edges);
        assert_eq!(path.len(), n);
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        // Too many rows to draw: no timeline, quickly.
        assert!(svg(&nodes, &path, n as f64).unwrap().is_none());
    }

    #[test]
    fn the_svg_has_a_bar_per_timed_node_grouped_by_thread_and_escapes_text() {
        let mut nodes = vec![
            node("a", 0.0, 10.0, 0),
            node("b<&>", 10.0, 40.0, 1),
            node("c", 40.0, 41.0, 0),
        ];
        nodes[1].op = "<script>".into();
        let svg = svg(&nodes, &[0, 1], 41.0).unwrap().unwrap();
        assert_eq!(svg.matches("<rect class=\"bar").count(), 3, "{svg}");
        assert_eq!(svg.matches("class=\"bar critical\"").count(), 2, "{svg}");
        assert!(svg.contains("worker thread 0") && svg.contains("worker thread 1"));
        assert!(
            svg.contains("b&#60;&#38;&#62;") || svg.contains("b&lt;&amp;&gt;"),
            "{svg}"
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(resvg::usvg::Tree::from_str(
            &svg.replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1),
            &resvg::usvg::Options::default()
        )
        .is_ok());
        assert!(super::svg(&[], &[], 0.0).unwrap().is_none());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(7530.0), 1000.0);
        assert_eq!(tick_step(41.0), 10.0);
        assert_eq!(tick_step(130.0), 20.0);
        assert_eq!(tick_label(6000.0, 1000.0, 7530.0), "6 s");
        assert_eq!(tick_label(600.0, 200.0, 900.0), "600 ms");
        assert_eq!(tick_label(0.6000000000000001, 0.2, 1.3), "0.6 ms");
        assert_eq!(tick_label(1500.0, 500.0, 3900.0), "1.5 s");
        assert_eq!(tick_label(1000.0, 500.0, 3900.0), "1.0 s");
    }
}
