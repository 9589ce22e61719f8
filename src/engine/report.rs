//! The run directory and its `report.json`, and the summary table on the terminal.

use super::record::{NodeStatus, RunStatus};
use super::run::RunOutcome;
use crate::clock::{format_ms, Utc};
use crate::graph::{Edge, Pipeline};
use crate::store::{RunRecord, Store};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Create `<root>/<pipeline>-<UTC timestamp>[-N]/` (a suffix when two runs start in the
/// same second).
pub fn create_run_dir(root: &Path, pipeline: &str, started: &Utc) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    let safe: String = pipeline
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("{safe}-{}", started.compact());
    for n in 0.. {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("an unbounded counter finds a free name")
}

/// Record the run in the store: its node keys become `cache gc` roots.
pub fn record_run(store: &Store, p: &Pipeline, outcome: &RunOutcome, started: &Utc) {
    let nodes = p
        .nodes
        .iter()
        .zip(&outcome.records)
        .filter(|(_, r)| matches!(r.status, NodeStatus::Ok | NodeStatus::Cached))
        .filter_map(|(n, r)| Some((n.id.clone(), r.key?)))
        .collect();
    let record = RunRecord {
        pipeline: p.name.clone(),
        file: p.file.display().to_string(),
        started_at: started.rfc3339(),
        started_compact: started.compact(),
        status: format!("{:?}", outcome.status).to_lowercase(),
        nodes,
    };
    if let Err(e) = store.put_run(&record) {
        tracing::warn!("{e}");
    }
}

/// One node in `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub id: String,
    pub op: String,
    pub status: NodeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The node's key in the artifact store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_inputs: Vec<String>,
    /// The cluster job that ran the node, and how it ended (`--executor slurm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
    /// Milliseconds from the job being ready to its submission, and from submission to
    /// the job running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_wait_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_ms: Option<f64>,
    /// Milliseconds from the start of the run.
    pub start_ms: Option<f64>,
    pub end_ms: Option<f64>,
    pub duration_ms: Option<f64>,
    pub thread: Option<usize>,
    pub artifacts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    /// The exit code of a command that failed with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// How many attempts the node's policy allows (1 + `retries`).
    pub max_attempts: u32,
    /// Every attempt, for a node whose policy allows retries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptReport>,
}

/// One attempt in `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub attempt: u32,
    pub start_ms: f64,
    pub end_ms: f64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl NodeReport {
    /// `ok`, `cached`, `FAILED`, `skipped`; with the attempt that ended it when the node
    /// may retry: `ok (attempt 2/3)`.
    pub fn status_text(&self) -> String {
        let word = match self.status {
            NodeStatus::Ok => "ok",
            NodeStatus::Cached => "cached",
            NodeStatus::Failed => "FAILED",
            NodeStatus::Skipped => "skipped",
        };
        match self.attempts.last() {
            Some(a) if self.max_attempts > 1 => {
                format!("{word} (attempt {}/{})", a.attempt, self.max_attempts)
            }
            _ => word.to_string(),
        }
    }
}

/// One edge of the pipeline in `report.json`: artifacts flowing, or an `after` ordering.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeReport {
    pub from: String,
    pub to: String,
    /// `data` or `after`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub pipeline: String,
    pub file: String,
    /// The nexusml that ran it.
    pub nexusml_version: String,
    pub started_at: String,
    pub status: RunStatus,
    pub wall_ms: f64,
    pub jobs: usize,
    pub keep_going: bool,
    pub params: serde_json::Value,
    /// The file's `[params]` before overrides, so a report can mark what was changed;
    /// absent when the file cannot be read again (a built-in pipeline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_params: Option<serde_json::Value>,
    /// The pipeline's edges, so the picture can be drawn from the report alone.
    pub edges: Vec<EdgeReport>,
    pub nodes: Vec<NodeReport>,
}

/// This build's version, as `report.json` records it.
pub const NEXUSML_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `[params]` of the pipeline file `p` was built from, read again (it holds no
/// overrides); `None` when `p.file` is not a readable pipeline file.
pub fn file_default_params(p: &Pipeline) -> Option<serde_json::Value> {
    let spec = crate::spec::PipelineSpec::load(&p.file).ok()?;
    serde_json::to_value(&spec.params).ok()
}

/// The `[params]` of a pipeline given as text (a built-in one).
pub fn text_default_params(text: &str) -> Option<serde_json::Value> {
    let spec = crate::spec::PipelineSpec::parse(text, Path::new("<built-in>")).ok()?;
    serde_json::to_value(&spec.params).ok()
}

/// Every edge of `p`, by node id.
pub fn edge_reports(p: &Pipeline) -> Vec<EdgeReport> {
    p.edges()
        .map(|(from, to, e)| EdgeReport {
            from: p.nodes[from].id.clone(),
            to: p.nodes[to].id.clone(),
            kind: match e {
                Edge::Data(_) => "data",
                Edge::Order => "after",
            },
            artifacts: match e {
                Edge::Data(arts) => arts.iter().map(|&a| p.artifacts[a].name.clone()).collect(),
                Edge::Order => Vec::new(),
            },
        })
        .collect()
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl RunReport {
    pub fn new(
        pipeline: &Pipeline,
        outcome: &RunOutcome,
        started: &Utc,
        jobs: usize,
        keep_going: bool,
    ) -> Self {
        let nodes = pipeline
            .nodes
            .iter()
            .zip(&outcome.records)
            .map(|(node, r)| NodeReport {
                id: node.id.clone(),
                op: node.op_name.clone(),
                status: r.status,
                reason: r.note(),
                key: r.key.map(|k| k.hex()),
                changed_inputs: r.changed_inputs(),
                job_id: r.job.as_ref().map(|j| j.id.clone()),
                job_state: r.job.as_ref().map(|j| j.state.clone()),
                submit_wait_ms: r.job.as_ref().and_then(|j| j.submit_wait).map(ms),
                queue_wait_ms: r.job.as_ref().and_then(|j| j.queue_wait).map(ms),
                start_ms: r.start.map(ms),
                end_ms: r.end.map(ms),
                duration_ms: r.duration().map(ms),
                thread: r.thread,
                artifacts: r
                    .artifacts
                    .iter()
                    .map(|&a| pipeline.artifacts[a].name.clone())
                    .collect(),
                error: r.error.clone(),
                exit_code: r.exit_code,
                timed_out: r.timed_out,
                max_attempts: node.policy.attempts(),
                attempts: r
                    .attempts
                    .iter()
                    .map(|a| AttemptReport {
                        attempt: a.number,
                        start_ms: ms(a.start),
                        end_ms: ms(a.end),
                        duration_ms: ms(a.end.saturating_sub(a.start)),
                        error: a.error.clone(),
                        exit_code: a.exit_code,
                        timed_out: a.timed_out,
                    })
                    .collect(),
            })
            .collect();
        RunReport {
            pipeline: pipeline.name.clone(),
            file: pipeline.file.display().to_string(),
            nexusml_version: NEXUSML_VERSION.to_string(),
            started_at: started.rfc3339(),
            status: outcome.status,
            wall_ms: ms(outcome.wall),
            jobs,
            keep_going,
            params: serde_json::to_value(&pipeline.params).unwrap_or(serde_json::Value::Null),
            default_params: file_default_params(pipeline),
            edges: edge_reports(pipeline),
            nodes,
        }
    }

    /// Write `report.json` into `dir` atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("report.json");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::atomic_file::write_atomic(&path, &json)?;
        Ok(path)
    }

    /// The summary table printed at the end of a run.
    pub fn table(&self) -> String {
        let statuses: Vec<String> = self.nodes.iter().map(NodeReport::status_text).collect();
        let status_w = statuses
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(7)
            .max(7);
        let id_w = self
            .nodes
            .iter()
            .map(|n| n.id.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let op_w = self
            .nodes
            .iter()
            .map(|n| n.op.chars().count())
            .max()
            .unwrap_or(2)
            .max(2);
        let mut s = format!(
            "{:<id_w$}  {:<op_w$}  {:<status_w$}  {:>10}  {:>6}  note\n",
            "node", "op", "status", "time", "thread"
        );
        for (n, status) in self.nodes.iter().zip(&statuses) {
            let time = n.duration_ms.map_or_else(|| "-".to_string(), format_ms);
            let thread = n.thread.map_or_else(|| "-".to_string(), |t| t.to_string());
            let note = n.error.first().or(n.reason.as_ref()).cloned().unwrap_or_default();
            let note = if note == "cached" { String::new() } else { note };
            s.push_str(&format!(
                "{:<id_w$}  {:<op_w$}  {:<status_w$}  {:>10}  {:>6}  {}\n",
                n.id, n.op, status, time, thread, note
            ));
        }
        let count = |st: NodeStatus| self.nodes.iter().filter(|n| n.status == st).count();
        s.push_str(&format!(
            "{}: {} ok, {} cached, {} failed, {} skipped in {}",
            match self.status {
                RunStatus::Ok => "run ok",
                RunStatus::Failed => "run FAILED",
                RunStatus::Interrupted => "run INTERRUPTED",
            },
            count(NodeStatus::Ok),
            count(NodeStatus::Cached),
            count(NodeStatus::Failed),
            count(NodeStatus::Skipped),
            format_ms(self.wall_ms)
        ));
        s
    }
}
