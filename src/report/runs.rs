//! The runs under a runs directory, newest first; naming one (`latest`, `latest~N`, a
//! directory); and what changed between two: parameters, nodes that ran in one and were
//! answered from the store in the other, and metrics per target.

use super::files::{RunDir, RunFile};
use super::ReportError;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One row of `nexusml runs list`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub pipeline: String,
    pub started_at: String,
    pub status: String,
    pub wall_ms: f64,
    pub ran: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// From `metrics.json`, when the run evaluated a model.
    pub mean_accuracy: Option<f64>,
    pub mean_macro_f1: Option<f64>,
}

impl RunSummary {
    fn new(dir: PathBuf, r: &RunFile, mean_accuracy: Option<f64>, mean_macro_f1: Option<f64>) -> Self {
        let count = |s: &str| r.nodes.iter().filter(|n| n.status == s).count();
        RunSummary {
            dir,
            pipeline: r.pipeline.clone(),
            started_at: r.started_at.clone(),
            status: r.status.clone(),
            wall_ms: r.wall_ms,
            ran: count("ok") + count("failed"),
            cached: count("cached"),
            failed: count("failed"),
            skipped: count("skipped"),
            mean_accuracy,
            mean_macro_f1,
        }
    }
}

/// The runs directly under `runs_dir` (of `pipeline`, when given), newest first, and the
/// directories that look like runs but could not be read (with why). A runs directory
/// that does not exist holds no runs.
pub fn list(
    runs_dir: &Path,
    pipeline: Option<&str>,
) -> Result<(Vec<RunSummary>, Vec<ReportError>), ReportError> {
    if !runs_dir.exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let entries = std::fs::read_dir(runs_dir).map_err(|source| ReportError::Read {
        path: runs_dir.to_path_buf(),
        source,
    })?;
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("report.json").is_file() {
            continue;
        }
        match RunDir::open_summary(&dir) {
            Ok((r, acc, f1)) => {
                if pipeline.is_none_or(|p| p == r.pipeline) {
                    runs.push(RunSummary::new(dir, &r, acc, f1));
                }
            }
            Err(e) => unreadable.push(e),
        }
    }
    // RFC 3339 UTC times sort as text; the directory name breaks ties (`-1` suffixes).
    runs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.dir.cmp(&a.dir)));
    Ok((runs, unreadable))
}

/// `latest`, `latest~N` (the N-th before the newest), or a run directory.
pub fn resolve(spec: &str, runs_dir: &Path, pipeline: Option<&str>) -> Result<PathBuf, ReportError> {
    let back = match spec.strip_prefix("latest") {
        Some("") => Some(0),
        Some(rest) => match rest.strip_prefix('~').map(str::parse::<usize>) {
            Some(Ok(n)) => Some(n),
            _ => {
                return Err(ReportError::BadRun { spec: spec.into() });
            }
        },
        None => None,
    };
    let Some(back) = back else {
        let dir = PathBuf::from(spec);
        if dir.join("report.json").is_file() {
            return Ok(dir);
        }
        if !dir.exists() {
            return Err(ReportError::BadRun { spec: spec.into() });
        }
        return Err(ReportError::NotARun { dir });
    };
    let (runs, _) = list(runs_dir, pipeline)?;
    if runs.is_empty() {
        return Err(ReportError::NoRuns {
            dir: runs_dir.to_path_buf(),
            pipeline: pipeline.map(String::from),
        });
    }
    let count = runs.len();
    runs.into_iter()
        .nth(back)
        .map(|r| r.dir)
        .ok_or_else(|| ReportError::TooFewRuns {
            spec: spec.into(),
            count,
            dir: runs_dir.to_path_buf(),
        })
}

/// A run as the diff names it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRef {
    pub dir: PathBuf,
    pub pipeline: String,
    pub started_at: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamChange {
    pub name: String,
    /// `None`: the run has no such parameter.
    pub a: Option<Value>,
    pub b: Option<Value>,
}

/// A node that ran in one run and was answered from the store in the other, or whose key
/// changed (its configuration or inputs did, so it ran again).
#[derive(Debug, Clone, Serialize)]
pub struct NodeChange {
    pub id: String,
    /// Both runs recorded the node's key in the store, and they differ.
    pub key_changed: bool,
    /// `None`: the node is not in that run's pipeline.
    pub a_status: Option<String>,
    pub a_reason: Option<String>,
    pub b_status: Option<String>,
    pub b_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricDelta {
    pub target: String,
    pub a_accuracy: Option<f64>,
    pub b_accuracy: Option<f64>,
    /// `b − a`, when both have the target.
    pub accuracy_delta: Option<f64>,
    pub a_macro_f1: Option<f64>,
    pub b_macro_f1: Option<f64>,
    pub macro_f1_delta: Option<f64>,
}

/// What changed from run `a` to run `b`.
#[derive(Debug, Clone, Serialize)]
pub struct RunDiff {
    pub a: RunRef,
    pub b: RunRef,
    pub params: Vec<ParamChange>,
    pub nodes: Vec<NodeChange>,
    /// Per target, then `mean` (absent when neither run has metrics).
    pub metrics: Vec<MetricDelta>,
}

fn run_ref(r: &RunDir) -> RunRef {
    RunRef {
        dir: r.dir.clone(),
        pipeline: r.report.pipeline.clone(),
        started_at: r.report.started_at.clone(),
        status: r.report.status.clone(),
    }
}

/// Why a node has the outcome it has: its error when it failed.
fn why(n: &super::files::NodeFile) -> Option<String> {
    n.error.first().cloned().or_else(|| n.reason.clone())
}

pub fn diff(a: &RunDir, b: &RunDir) -> RunDiff {
    let (ra, rb) = (&a.report, &b.report);
    let mut params = Vec::new();
    for (name, va) in &ra.params {
        let vb = rb.params.get(name);
        if vb != Some(va) {
            params.push(ParamChange {
                name: name.clone(),
                a: Some(va.clone()),
                b: vb.cloned(),
            });
        }
    }
    for (name, vb) in &rb.params {
        if !ra.params.contains_key(name) {
            params.push(ParamChange {
                name: name.clone(),
                a: None,
                b: Some(vb.clone()),
            });
        }
    }
    let mut nodes = Vec::new();
    let index = |r: &RunFile| -> std::collections::HashMap<String, usize> {
        r.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect()
    };
    let (ia, ib) = (index(ra), index(rb));
    for na in &ra.nodes {
        let nb = ib.get(&na.id).map(|&i| &rb.nodes[i]);
        let key_changed = nb.is_some_and(|nb| matches!((&na.key, &nb.key), (Some(x), Some(y)) if x != y));
        if key_changed || nb.is_none_or(|nb| nb.status != na.status) {
            nodes.push(NodeChange {
                id: na.id.clone(),
                key_changed,
                a_status: Some(na.status.clone()),
                a_reason: why(na),
                b_status: nb.map(|n| n.status.clone()),
                b_reason: nb.and_then(why),
            });
        }
    }
    for nb in &rb.nodes {
        if !ia.contains_key(&nb.id) {
            nodes.push(NodeChange {
                id: nb.id.clone(),
                key_changed: false,
                a_status: None,
                a_reason: None,
                b_status: Some(nb.status.clone()),
                b_reason: why(nb),
            });
        }
    }
    let mut metrics = Vec::new();
    if a.metrics.is_some() || b.metrics.is_some() {
        let targets = |r: &RunDir| -> Vec<(String, f64, f64)> {
            r.metrics
                .iter()
                .flat_map(|m| {
                    m.targets
                        .iter()
                        .map(|t| (t.target.clone(), t.accuracy, t.macro_f1))
                })
                .collect()
        };
        let (ta, tb) = (targets(a), targets(b));
        let mut names: Vec<String> = ta.iter().map(|t| t.0.clone()).collect();
        names.extend(
            tb.iter()
                .map(|t| t.0.clone())
                .filter(|n| !ta.iter().any(|t| &t.0 == n)),
        );
        let find =
            |list: &[(String, f64, f64)], name: &str| list.iter().find(|t| t.0 == name).map(|t| (t.1, t.2));
        let delta = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| y - x);
        for name in names {
            let (ma, mb) = (find(&ta, &name), find(&tb, &name));
            metrics.push(MetricDelta {
                a_accuracy: ma.map(|m| m.0),
                b_accuracy: mb.map(|m| m.0),
                accuracy_delta: delta(ma.map(|m| m.0), mb.map(|m| m.0)),
                a_macro_f1: ma.map(|m| m.1),
                b_macro_f1: mb.map(|m| m.1),
                macro_f1_delta: delta(ma.map(|m| m.1), mb.map(|m| m.1)),
                target: name,
            });
        }
        let mean = |r: &RunDir| r.metrics.as_ref().map(|m| (m.mean_accuracy, m.mean_macro_f1));
        let (ma, mb) = (mean(a).unwrap_or_default(), mean(b).unwrap_or_default());
        metrics.push(MetricDelta {
            target: "mean".into(),
            a_accuracy: ma.0,
            b_accuracy: mb.0,
            accuracy_delta: delta(ma.0, mb.0),
            a_macro_f1: ma.1,
            b_macro_f1: mb.1,
            macro_f1_delta: delta(ma.1, mb.1),
        });
    }
    RunDiff {
        a: run_ref(a),
        b: run_ref(b),
        params,
        nodes,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write_run(root: &Path, name: &str, started: &str, report: Value, metrics: Option<Value>) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut report = report;
        report["started_at"] = json!(started);
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
        if let Some(m) = metrics {
            std::fs::write(dir.join("metrics.json"), m.to_string()).unwrap();
        }
        dir
    }

    fn report(pipeline: &str, trees: u64, train: &str) -> Value {
        json!({
            "pipeline": pipeline, "status": "ok", "wall_ms": 10.0,
            "params": {"trees": trees, "seed": 42},
            "nodes": [
                {"id": "load", "status": "cached", "reason": "cached", "key": "k1"},
                {"id": "train", "status": train, "reason": "param `trees` changed", "key": format!("k{trees}")},
                {"id": "evaluate", "status": "ok", "key": format!("e{trees}")},
                {"id": "plot", "status": "ok"},
            ]
        })
    }

    fn metrics(acc: f64) -> Value {
        json!({"rows": 10, "mean_accuracy": acc, "mean_macro_f1": acc - 0.1,
               "targets": [{"target": "t", "accuracy": acc, "macro_f1": acc - 0.1}]})
    }

    #[test]
    fn runs_are_listed_newest_first_and_named_by_latest() {
        let d = tempfile::tempdir().unwrap();
        let old = write_run(
            d.path(),
            "train-1",
            "2026-01-01T00:00:00.000Z",
            report("train", 10, "ok"),
            Some(metrics(0.8)),
        );
        let new = write_run(
            d.path(),
            "train-2",
            "2026-01-02T00:00:00.000Z",
            report("train", 12, "ok"),
            None,
        );
        let pred = write_run(
            d.path(),
            "predict-1",
            "2026-01-03T00:00:00.000Z",
            report("predict", 12, "ok"),
            None,
        );
        std::fs::create_dir(d.path().join("not-a-run")).unwrap();
        let (runs, bad) = list(d.path(), None).unwrap();
        assert!(bad.is_empty());
        let dirs: Vec<&Path> = runs.iter().map(|r| r.dir.as_path()).collect();
        assert_eq!(dirs, [pred.as_path(), new.as_path(), old.as_path()]);
        assert_eq!(runs[2].mean_accuracy, Some(0.8));
        assert_eq!((runs[2].ran, runs[2].cached), (3, 1));
        assert_eq!(resolve("latest", d.path(), None).unwrap(), pred);
        assert_eq!(resolve("latest~1", d.path(), Some("train")).unwrap(), old);
        let err = resolve("latest~3", d.path(), None).unwrap_err().to_string();
        assert!(err.contains("only 3 runs"), "{err}");
        assert!(resolve("latest~x", d.path(), None).unwrap_err().is_usage());
        assert_eq!(resolve(old.to_str().unwrap(), d.path(), None).unwrap(), old);
        let err = resolve(d.path().join("not-a-run").to_str().unwrap(), d.path(), None).unwrap_err();
        assert!(matches!(err, ReportError::NotARun { .. }), "{err}");
        assert!(list(&d.path().join("nowhere"), None).unwrap().0.is_empty());
        assert!(matches!(
            resolve("latest", &d.path().join("nowhere"), None),
            Err(ReportError::NoRuns { .. })
        ));
        // A report nexusml cannot read is reported, not skipped in silence.
        std::fs::write(d.path().join("not-a-run/report.json"), "{").unwrap();
        assert_eq!(list(d.path(), None).unwrap().1.len(), 1);
    }

    #[test]
    fn a_diff_has_params_nodes_and_metric_deltas() {
        let d = tempfile::tempdir().unwrap();
        let a = write_run(
            d.path(),
            "a",
            "2026-01-01T00:00:00.000Z",
            report("train", 10, "ok"),
            Some(metrics(0.8)),
        );
        let b = write_run(
            d.path(),
            "b",
            "2026-01-02T00:00:00.000Z",
            report("train", 12, "cached"),
            Some(metrics(0.85)),
        );
        let diff = diff(&RunDir::open(&a).unwrap(), &RunDir::open(&b).unwrap());
        assert_eq!(diff.params.len(), 1);
        assert_eq!(diff.params[0].name, "trees");
        assert_eq!(
            (diff.params[0].a.clone(), diff.params[0].b.clone()),
            (Some(json!(10)), Some(json!(12)))
        );
        // `train` ran in a and was cached in b; `evaluate` ran in both, with a new key;
        // `load` and `plot` ended the same (`plot` has no key to compare).
        let ids: Vec<&str> = diff.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["train", "evaluate"]);
        assert_eq!(diff.nodes[0].a_status.as_deref(), Some("ok"));
        assert_eq!(diff.nodes[0].b_status.as_deref(), Some("cached"));
        assert!(diff.nodes[1].key_changed);
        assert_eq!(diff.metrics.len(), 2);
        assert!((diff.metrics[0].accuracy_delta.unwrap() - 0.05).abs() < 1e-9);
        assert_eq!(diff.metrics[1].target, "mean");
    }
}
