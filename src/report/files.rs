//! What a run directory holds, read from its files alone: `report.json` (required),
//! `metrics.json`, `validation.json`, `predictions_summary.json` and the pictures, when
//! present. Every field a newer or older nexusml may lack is optional here, so a report
//! of either still reads; a section whose file is absent is simply absent.

use super::ReportError;
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `report.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunFile {
    pub pipeline: String,
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub nexusml_version: Option<String>,
    #[serde(default)]
    pub started_at: String,
    pub status: String,
    #[serde(default)]
    pub wall_ms: f64,
    #[serde(default)]
    pub jobs: Option<usize>,
    #[serde(default)]
    pub keep_going: bool,
    #[serde(default)]
    pub params: Map<String, Value>,
    /// The pipeline file's own `[params]`; absent in reports of built-in pipelines run
    /// without it and of older versions.
    #[serde(default)]
    pub default_params: Option<Map<String, Value>>,
    /// Absent in reports of older versions: then there is no picture and no critical path.
    #[serde(default)]
    pub edges: Option<Vec<EdgeFile>>,
    pub nodes: Vec<NodeFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EdgeFile {
    pub from: String,
    pub to: String,
    /// `data` or `after`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub artifacts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeFile {
    pub id: String,
    #[serde(default)]
    pub op: String,
    /// `ok`, `cached`, `failed` or `skipped`.
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub changed_inputs: Vec<String>,
    #[serde(default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub job_state: Option<String>,
    #[serde(default)]
    pub start_ms: Option<f64>,
    #[serde(default)]
    pub end_ms: Option<f64>,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    #[serde(default)]
    pub thread: Option<usize>,
    #[serde(default)]
    pub artifacts: Vec<String>,
    #[serde(default)]
    pub error: Vec<String>,
    /// Retries: a count, or a list of attempts (either is read).
    #[serde(default)]
    pub attempts: Option<Value>,
}

impl NodeFile {
    /// How many attempts the node took, when the report says.
    pub fn attempts(&self) -> Option<u64> {
        match self.attempts.as_ref()? {
            Value::Number(n) => n.as_u64(),
            Value::Array(a) => Some(a.len() as u64),
            _ => None,
        }
    }
}

/// `metrics.json` (`model.evaluate`).
#[derive(Debug, Clone, Deserialize)]
pub struct Metrics {
    #[serde(default)]
    pub rows: usize,
    #[serde(default)]
    pub mean_accuracy: Option<f64>,
    #[serde(default)]
    pub mean_macro_f1: Option<f64>,
    #[serde(default)]
    pub targets: Vec<TargetMetrics>,
    /// (target, [(term, importance)]).
    #[serde(default)]
    pub top_terms: Vec<(String, Vec<(String, f64)>)>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TargetMetrics {
    pub target: String,
    #[serde(default)]
    pub rows: usize,
    #[serde(default)]
    pub unlabelled_rows: usize,
    #[serde(default)]
    pub trained_classes: usize,
    #[serde(default)]
    pub warnings: Vec<String>,
    pub accuracy: f64,
    pub macro_f1: f64,
    #[serde(default)]
    pub weighted_f1: Option<f64>,
    #[serde(default)]
    pub per_class: Vec<ClassMetrics>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Row = true label, column = predicted, in `labels` order.
    #[serde(default)]
    pub confusion: Vec<Vec<u64>>,
    /// Shown when present, whatever their shape (tables of bins or of coverage levels).
    #[serde(default)]
    pub calibration: Option<Json>,
    #[serde(default)]
    pub coverage: Option<Json>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// JSON of a shape the reader does not know, keeping the order of keys as written
/// (`serde_json::Value` sorts them).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    List(Vec<Json>),
    Map(IndexMap<String, Json>),
}

impl Json {
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Json::List(_) | Json::Map(_))
    }
}

impl std::fmt::Display for Json {
    /// Compact JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(i) => write!(f, "{i}"),
            Json::Num(x) => write!(f, "{x}"),
            Json::Str(s) => write!(f, "{}", Value::String(s.clone())),
            Json::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{v}", Value::String(k.clone()))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `validation.json` (`data.validate`).
#[derive(Debug, Clone, Deserialize)]
pub struct Validation {
    #[serde(default = "yes")]
    pub valid: bool,
    #[serde(default)]
    pub rows: usize,
    #[serde(default)]
    pub errors: Vec<Issue>,
    #[serde(default)]
    pub warnings: Vec<Issue>,
    #[serde(default)]
    pub missing_columns: Vec<String>,
    #[serde(default)]
    pub empty_cells: IndexMap<String, usize>,
    #[serde(default)]
    pub targets: IndexMap<String, TargetLabels>,
    #[serde(default)]
    pub numeric: IndexMap<String, NumericCheck>,
    #[serde(default)]
    pub duplicate_rows: usize,
    #[serde(default)]
    pub singleton_classes: IndexMap<String, Vec<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    #[serde(default)]
    pub check: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TargetLabels {
    #[serde(default)]
    pub labelled: usize,
    #[serde(default)]
    pub unlabelled: usize,
    #[serde(default)]
    pub classes: usize,
    /// CSV lines of the first rows without a label.
    #[serde(default)]
    pub first_unlabelled: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NumericCheck {
    #[serde(default)]
    pub empty: usize,
    #[serde(default)]
    pub invalid: usize,
    /// (CSV line, value).
    #[serde(default)]
    pub first_invalid: Vec<(usize, String)>,
}

/// `predictions_summary.json` (`model.predict`).
#[derive(Debug, Clone, Deserialize)]
pub struct Predictions {
    pub rows: usize,
    #[serde(default)]
    pub targets: Vec<TargetPredictions>,
    /// Rows with at least one target under each probability.
    #[serde(default)]
    pub any_target_below: Vec<Below>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TargetPredictions {
    pub target: String,
    /// Most predicted first.
    #[serde(default)]
    pub classes: Vec<ClassCount>,
    #[serde(default)]
    pub below: Vec<Below>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClassCount {
    pub label: String,
    pub rows: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Below {
    pub probability: f64,
    pub rows: usize,
}

/// One file of the run directory.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Relative to the run directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
}

/// The file a report is written to by default; never listed as one of the run's files.
pub const REPORT_FILE: &str = "report.html";

/// Past these, the listing stops (a run directory someone filled by hand).
const MAX_FILES: usize = 5000;
const MAX_DEPTH: usize = 6;

/// A run directory, read.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub dir: PathBuf,
    pub report: RunFile,
    pub metrics: Option<Metrics>,
    pub validation: Option<Validation>,
    pub predictions: Option<Predictions>,
    /// Every file under the directory but the report page itself, sorted by path.
    pub files: Vec<FileEntry>,
    /// The listing stopped at `MAX_FILES`.
    pub files_truncated: bool,
}

impl RunDir {
    /// Read `dir`: `report.json` must be there; the other files are read when present.
    pub fn open(dir: &Path) -> Result<RunDir, ReportError> {
        let report_path = dir.join("report.json");
        if !report_path.is_file() {
            return Err(ReportError::NotARun {
                dir: dir.to_path_buf(),
            });
        }
        let report: RunFile = read_json(&report_path)?;
        let (files, files_truncated) = list_files(dir)?;
        Ok(RunDir {
            dir: dir.to_path_buf(),
            report,
            metrics: read_optional(&dir.join("metrics.json"))?,
            validation: read_optional(&dir.join("validation.json"))?,
            predictions: read_optional(&dir.join("predictions_summary.json"))?,
            files,
            files_truncated,
        })
    }

    /// Read only what a run listing shows: `report.json` and the mean accuracy.
    pub fn open_summary(dir: &Path) -> Result<(RunFile, Option<f64>, Option<f64>), ReportError> {
        #[derive(Deserialize)]
        struct Means {
            #[serde(default)]
            mean_accuracy: Option<f64>,
            #[serde(default)]
            mean_macro_f1: Option<f64>,
        }
        let report_path = dir.join("report.json");
        if !report_path.is_file() {
            return Err(ReportError::NotARun {
                dir: dir.to_path_buf(),
            });
        }
        let report: RunFile = read_json(&report_path)?;
        let means: Option<Means> = read_optional(&dir.join("metrics.json"))?;
        let (acc, f1) = means.map_or((None, None), |m| (m.mean_accuracy, m.mean_macro_f1));
        Ok((report, acc, f1))
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ReportError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ReportError> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Files under `dir` (not following symlinked directories), depth-first, sorted.
fn list_files(dir: &Path) -> Result<(Vec<FileEntry>, bool), ReportError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut truncated = false;
    while let Some((d, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| ReportError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let rel = rel.join("/");
            // The page itself, and a half-written temp file of an atomic write.
            if rel == REPORT_FILE || rel.starts_with(".report.html") {
                continue;
            }
            if out.len() >= MAX_FILES {
                truncated = true;
                break;
            }
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(FileEntry { path: rel, bytes });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_report_reads_and_extra_fields_are_ignored() {
        let json = r#"{"pipeline":"p","status":"ok","nodes":[{"id":"a","status":"ok","attempts":[{},{}],"new_field":1}],"later":true}"#;
        let r: RunFile = serde_json::from_str(json).unwrap();
        assert_eq!(r.nodes[0].attempts(), Some(2));
        assert!(r.edges.is_none() && r.default_params.is_none());
        let n: NodeFile = serde_json::from_str(r#"{"id":"a","status":"ok","attempts":3}"#).unwrap();
        assert_eq!(n.attempts(), Some(3));
        let j: Json = serde_json::from_str(r#"{"z":[1,2.5,"a\"b"],"a":null,"m":{"t":true}}"#).unwrap();
        assert_eq!(j.to_string(), r#"{"z":[1,2.5,"a\"b"],"a":null,"m":{"t":true}}"#);
    }

    #[test]
    fn a_directory_without_report_json_is_not_a_run() {
        let d = tempfile::tempdir().unwrap();
        let err = RunDir::open(d.path()).unwrap_err();
        assert!(err.to_string().contains("no report.json"), "{err}");
        std::fs::write(d.path().join("report.json"), "{\"pipeline\": 3}").unwrap();
        let err = RunDir::open(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("report.json") && err.contains("invalid type"),
            "{err}"
        );
    }

    #[test]
    fn files_are_listed_relative_and_without_the_page() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("report.json"),
            r#"{"pipeline":"p","status":"ok","nodes":[]}"#,
        )
        .unwrap();
        std::fs::create_dir(d.path().join("plots")).unwrap();
        std::fs::write(d.path().join("plots/a b.png"), b"x").unwrap();
        std::fs::write(d.path().join(REPORT_FILE), b"old").unwrap();
        let run = RunDir::open(d.path()).unwrap();
        let paths: Vec<&str> = run.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["plots/a b.png", "report.json"]);
        assert!(run.metrics.is_none() && run.validation.is_none() && run.predictions.is_none());
    }
}
