//! `plot.distribution`, `plot.confusion` and `plot.coverage`: PNG charts in the run
//! directory.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, Port, Registry, RunDirWrite};
use crate::charts::{
    bar_chart_png, coverage_png, heatmap_png, top_k_confusion, worst_confused, CoveragePoint,
};
use crate::ml::metrics::EvaluationReport;
use crate::ml::table::text_column;
use crate::op::NodeContext;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DistributionConfig {
    columns: Vec<String>,
    #[serde(default = "default_top_n")]
    top_n: usize,
    #[serde(default = "default_dir")]
    dir: String,
}

fn default_top_n() -> usize {
    30
}

fn default_dir() -> String {
    "plots".into()
}

impl Default for DistributionConfig {
    fn default() -> Self {
        DistributionConfig {
            columns: Vec::new(),
            top_n: default_top_n(),
            dir: default_dir(),
        }
    }
}

impl OpConfig for DistributionConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::required("columns", "[string]", "columns to plot"),
        FieldDoc::optional("top_n", "integer", "most bars per chart"),
        FieldDoc::optional("dir", "string", "directory inside the run directory"),
    ];
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct ConfusionConfig {
    top_k: usize,
    dir: String,
}

impl Default for ConfusionConfig {
    fn default() -> Self {
        ConfusionConfig {
            top_k: 30,
            dir: default_dir(),
        }
    }
}

impl OpConfig for ConfusionConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional("top_k", "integer", "classes shown before folding into \"other\""),
        FieldDoc::optional("dir", "string", "directory inside the run directory"),
    ];
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct CoverageConfig {
    dir: String,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        CoverageConfig { dir: default_dir() }
    }
}

impl OpConfig for CoverageConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::optional(
        "dir",
        "string",
        "directory inside the run directory",
    )];
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "plot.coverage",
            "One PNG per target with probabilities (`coverage_<target>.png`): over the confidence thresholds \
             0.50 … 0.95, the share of rows at or above each and their accuracy.",
            |c: CoverageConfig| {
                super::inside_run_dir("dir", &c.dir)?;
                Ok(Coverage(c))
            },
        )
        .writes_in_run_dir(|c: &CoverageConfig| vec![RunDirWrite::files(&c.dir, "coverage_", ".png")])
        .input(Port::new::<EvaluationReport>("metrics", "from model.evaluate")),
    );
    r.register(
        OpSpec::new(
            "plot.confusion",
            "One annotated confusion-matrix heatmap PNG per target (the `top_k` classes by support, the rest as \"other\"); \
             with more classes than that, also `confusion_<target>_worst.png`: the `top_k` classes with the most errors.",
            |c: ConfusionConfig| {
                super::inside_run_dir("dir", &c.dir)?;
                Ok(Confusion(c))
            },
        )
        // One per target (and `_worst` beside it): the names are known when it runs.
        .writes_in_run_dir(|c: &ConfusionConfig| vec![RunDirWrite::files(&c.dir, "confusion_", ".png")])
        .input(Port::new::<EvaluationReport>("metrics", "from model.evaluate"))
        .version(2, "the worst-confused picture; full labels and a legend"),
    );
    r.register(
        OpSpec::new(
            "plot.distribution",
            "Bar chart PNG of each column's class counts (largest first; past `top_n`, one \"other\" bar).",
            |c: DistributionConfig| {
                if c.columns.is_empty() {
                    return Err("`columns` is empty: name at least one column to plot".into());
                }
                super::inside_run_dir("dir", &c.dir)?;
                Ok(Distribution(c))
            },
        )
        .writes_in_run_dir(|c: &DistributionConfig| {
            c.columns
                .iter()
                .map(|column| RunDirWrite::file(std::path::Path::new(&c.dir).join(distribution_file(column))))
                .collect()
        })
        .input(Port::new::<DataFrame>("table", "the table")),
    );
}

/// The chart of `column`: what `plot.distribution` writes and declares.
fn distribution_file(column: &str) -> String {
    format!("distribution_{}.png", file_safe(column))
}

struct Distribution(DistributionConfig);
impl Op for Distribution {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let frame = ctx.input::<DataFrame>("table")?;
        let dir = ctx.run_dir().join(&self.0.dir);
        for column in &self.0.columns {
            let values = text_column(&frame, column)?;
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for v in &values {
                *counts
                    .entry(if v.is_empty() { "(empty)" } else { v.as_str() })
                    .or_default() += 1;
            }
            let counts: Vec<(String, usize)> = counts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let path = dir.join(distribution_file(column));
            let title = format!("{column}: {} rows, {} classes", values.len(), counts.len());
            bar_chart_png(&path, &title, &counts, self.0.top_n)?;
            ctx.wrote_file(&path)?;
            tracing::info!("wrote {}", path.display());
        }
        Ok(())
    }
}

struct Confusion(ConfusionConfig);
impl Op for Confusion {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let metrics = ctx.input::<EvaluationReport>("metrics")?;
        let dir = ctx.run_dir().join(&self.0.dir);
        for t in &metrics.targets {
            let scores = format!("accuracy {:.3}, macro-F1 {:.3}", t.accuracy, t.macro_f1);
            let (labels, matrix) = top_k_confusion(&t.labels, &t.confusion, self.0.top_k);
            let path = dir.join(format!("confusion_{}.png", file_safe(&t.target)));
            let shown = if labels.len() < t.labels.len() {
                format!(", the {} largest of {} classes", self.0.top_k, t.labels.len())
            } else {
                String::new()
            };
            let title = format!("{}: {scores} ({} test rows{shown})", t.target, t.rows);
            heatmap_png(&path, &title, &labels, &matrix)?;
            ctx.wrote_file(&path)?;
            tracing::info!("wrote {}", path.display());
            if t.labels.len() > self.0.top_k {
                // Most classes are folded into "other" above: show where the errors are.
                let (labels, matrix) = worst_confused(&t.labels, &t.confusion, self.0.top_k);
                let path = dir.join(format!("confusion_{}_worst.png", file_safe(&t.target)));
                let title = format!(
                    "{}: the {} classes with the most errors, of {} ({scores})",
                    t.target,
                    labels.len().saturating_sub(1),
                    t.labels.len()
                );
                heatmap_png(&path, &title, &labels, &matrix)?;
                ctx.wrote_file(&path)?;
                tracing::info!("wrote {}", path.display());
            }
        }
        Ok(())
    }
}

struct Coverage(CoverageConfig);
impl Op for Coverage {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        use rayon::prelude::*;
        let metrics = ctx.input::<EvaluationReport>("metrics")?;
        let dir = ctx.run_dir().join(&self.0.dir);
        // The pictures are independent: drawn in parallel.
        let drawn: Vec<std::path::PathBuf> = metrics
            .targets
            .par_iter()
            .filter_map(|t| Some((t, t.calibration.as_ref()?)))
            .map(|(t, c)| {
                let points: Vec<CoveragePoint> = c
                    .coverage
                    .iter()
                    .map(|r| CoveragePoint {
                        threshold: r.threshold,
                        coverage: r.coverage,
                        accuracy: r.accuracy,
                        rows: r.rows,
                    })
                    .collect();
                let path = dir.join(format!("coverage_{}.png", file_safe(&t.target)));
                let title = format!(
                    "{}: accuracy at coverage (ECE {:.3}, Brier {:.3}; {} rows)",
                    t.target, c.ece, c.brier, t.rows
                );
                coverage_png(&path, &title, &points)?;
                Ok(path)
            })
            .collect::<Result<_, crate::charts::ChartError>>()?;
        for path in drawn {
            ctx.wrote_file(&path)?;
            tracing::info!("wrote {}", path.display());
        }
        Ok(())
    }
}

/// A column name usable in a file name.
pub(crate) fn file_safe(name: &str) -> String {
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
