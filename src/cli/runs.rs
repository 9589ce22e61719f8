//! `nexusml report RUN` and `nexusml runs {list, show, diff}`: the run directories, read
//! from their files.

use super::CliError;
use crate::clock::format_ms;
use crate::report::{self, RunDiff, RunDir, RunSummary};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where runs are, and which pipeline's (for `latest`).
#[derive(Debug, Args)]
pub struct RunsDirArgs {
    /// The directory runs are created in (as `dag run --runs-dir`).
    #[arg(long, value_name = "DIR", default_value = "outputs/runs")]
    pub runs_dir: PathBuf,
    /// Only runs of this pipeline (`latest` is then its newest run).
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory, or `latest` / `latest~N` (the N-th before the newest) under --runs-dir.
    pub run: String,
    /// Where to write the page (default: report.html in the run directory).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub runs: RunsDirArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One row per run, newest first: pipeline, start, status, wall time, ran and cached nodes, mean accuracy.
    List(ListArgs),
    /// The summary of one run.
    Show(ShowArgs),
    /// What changed between two runs: parameters, nodes run in one and cached in the other, metrics.
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub runs: RunsDirArgs,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A run directory, or `latest` / `latest~N`.
    pub run: String,
    #[command(flatten)]
    pub runs: RunsDirArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first run: a run directory, or `latest` / `latest~N`.
    pub a: String,
    /// The second run.
    pub b: String,
    #[command(flatten)]
    pub runs: RunsDirArgs,
    /// Print JSON instead of the tables.
    #[arg(long)]
    pub json: bool,
}

fn resolve(spec: &str, runs: &RunsDirArgs) -> Result<PathBuf, CliError> {
    Ok(report::resolve(spec, &runs.runs_dir, runs.pipeline.as_deref())?)
}

pub(crate) fn report(args: ReportArgs) -> Result<ExitCode, CliError> {
    let dir = resolve(&args.run, &args.runs)?;
    let t = std::time::Instant::now();
    let path = report::write(&dir, args.output.as_deref())?;
    tracing::info!(
        "wrote {} in {}",
        path.display(),
        format_ms(t.elapsed().as_secs_f64() * 1e3)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn runs(command: RunsCommand) -> Result<ExitCode, CliError> {
    match command {
        RunsCommand::List(args) => list(args),
        RunsCommand::Show(args) => show(args),
        RunsCommand::Diff(args) => diff(args),
    }
}

fn name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// `2026-12-01T09:08:35.183Z` as `2026-12-01 09:08:35`.
fn when(rfc3339: &str) -> String {
    rfc3339.get(..19).unwrap_or(rfc3339).replace('T', " ")
}

fn json_out<T: serde::Serialize>(value: &T) -> Result<ExitCode, CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn list(args: ListArgs) -> Result<ExitCode, CliError> {
    let (runs, unreadable) = report::list(&args.runs.runs_dir, args.runs.pipeline.as_deref())?;
    for e in &unreadable {
        tracing::warn!("skipped: {e}");
    }
    if args.json {
        return json_out(&runs);
    }
    if runs.is_empty() {
        println!("no runs in {}", args.runs.runs_dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", list_table(&runs));
    Ok(ExitCode::SUCCESS)
}

fn list_table(runs: &[RunSummary]) -> String {
    let rows: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                name(&r.dir),
                r.pipeline.clone(),
                when(&r.started_at),
                r.status.clone(),
                format_ms(r.wall_ms),
                r.ran.to_string(),
                r.cached.to_string(),
                r.mean_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
            ]
        })
        .collect();
    table(
        &[
            "run",
            "pipeline",
            "started (UTC)",
            "status",
            "wall",
            "ran",
            "cached",
            "accuracy",
        ],
        &[false, false, false, false, true, true, true, true],
        &rows,
    )
}

/// Columns padded to their widest cell; `right` aligns numbers.
fn table<const N: usize>(headers: &[&str; N], right: &[bool; N], rows: &[[String; N]]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i > 0 {
                s.push_str("  ");
            }
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < N {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => other.to_string(),
    }
}

/// The changed parameters of a run: (name, value, the file's default).
fn changed_params(run: &RunDir) -> Vec<(String, String, String)> {
    let r = &run.report;
    let Some(defaults) = &r.default_params else {
        return Vec::new();
    };
    r.params
        .iter()
        .filter(|(k, v)| defaults.get(*k) != Some(v))
        .map(|(k, v)| {
            (
                k.clone(),
                show_value(v),
                defaults.get(k).map_or("(not in the file)".into(), show_value),
            )
        })
        .collect()
}

fn show(args: ShowArgs) -> Result<ExitCode, CliError> {
    let dir = resolve(&args.run, &args.runs)?;
    let run = RunDir::open(&dir)?;
    let r = &run.report;
    if args.json {
        let changed: Vec<Value> = changed_params(&run)
            .into_iter()
            .map(|(k, v, d)| serde_json::json!({"name": k, "value": v, "default": d}))
            .collect();
        let count = |s: &str| r.nodes.iter().filter(|n| n.status == s).count();
        return json_out(&serde_json::json!({
            "dir": dir,
            "pipeline": r.pipeline,
            "file": r.file,
            "nexusml_version": r.nexusml_version,
            "started_at": r.started_at,
            "status": r.status,
            "wall_ms": r.wall_ms,
            "nodes": {"ok": count("ok"), "cached": count("cached"), "failed": count("failed"), "skipped": count("skipped")},
            "changed_params": changed,
            "failed": r.nodes.iter().filter(|n| n.status == "failed").map(|n| serde_json::json!({"id": n.id, "error": n.error})).collect::<Vec<_>>(),
            "mean_accuracy": run.metrics.as_ref().and_then(|m| m.mean_accuracy),
            "mean_macro_f1": run.metrics.as_ref().and_then(|m| m.mean_macro_f1),
            "targets": run.metrics.as_ref().map(|m| m.targets.iter().map(|t| serde_json::json!({
                "target": t.target, "accuracy": t.accuracy, "macro_f1": t.macro_f1, "rows": t.rows,
            })).collect::<Vec<_>>()),
            "validation": run.validation.as_ref().map(|v| serde_json::json!({
                "valid": v.valid, "errors": v.errors.len(), "warnings": v.warnings.len(),
            })),
            "predictions": run.predictions.as_ref().map(|p| serde_json::json!({
                "rows": p.rows,
                "any_target_below": p.any_target_below.iter().map(|b| serde_json::json!({"probability": b.probability, "rows": b.rows})).collect::<Vec<_>>(),
            })),
        }));
    }
    print!("{}", show_text(&run));
    Ok(ExitCode::SUCCESS)
}

fn show_text(run: &RunDir) -> String {
    let r = &run.report;
    let count = |s: &str| r.nodes.iter().filter(|n| n.status == s).count();
    let mut s = format!("run       {}\n", run.dir.display());
    s.push_str(&format!(
        "pipeline  {} ({}), nexusml {}\n",
        r.pipeline,
        r.file,
        r.nexusml_version.as_deref().unwrap_or("(not recorded)")
    ));
    s.push_str(&format!(
        "started   {} UTC, wall {}{}\n",
        when(&r.started_at),
        format_ms(r.wall_ms),
        r.jobs
            .map(|j| format!(", {j} worker thread(s)"))
            .unwrap_or_default()
    ));
    s.push_str(&format!(
        "status    {}: {} ok, {} cached, {} failed, {} skipped\n",
        r.status,
        count("ok"),
        count("cached"),
        count("failed"),
        count("skipped")
    ));
    let changed = changed_params(run);
    if !changed.is_empty() {
        let list: Vec<String> = changed
            .iter()
            .map(|(k, v, d)| format!("{k} = {v} (file: {d})"))
            .collect();
        s.push_str(&format!("changed   {}\n", list.join(", ")));
    }
    s.push('\n');
    let rows: Vec<[String; 5]> = r
        .nodes
        .iter()
        .map(|n| {
            [
                n.id.clone(),
                n.op.clone(),
                n.status.clone(),
                n.duration_ms.map_or("-".into(), format_ms),
                n.error
                    .first()
                    .cloned()
                    .or_else(|| n.reason.clone().filter(|r| r != "cached"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    s.push_str(&table(
        &["node", "op", "status", "time", "note"],
        &[false, false, false, true, false],
        &rows,
    ));
    if let Some(m) = &run.metrics {
        s.push('\n');
        let mut rows: Vec<[String; 5]> = m
            .targets
            .iter()
            .map(|t| {
                [
                    t.target.clone(),
                    format!("{:.4}", t.accuracy),
                    format!("{:.4}", t.macro_f1),
                    t.labels.len().to_string(),
                    t.rows.to_string(),
                ]
            })
            .collect();
        rows.push([
            "mean".into(),
            m.mean_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
            m.mean_macro_f1.map_or("-".into(), |a| format!("{a:.4}")),
            String::new(),
            String::new(),
        ]);
        s.push_str(&table(
            &["target", "accuracy", "macro-F1", "classes", "scored"],
            &[false, true, true, true, true],
            &rows,
        ));
    }
    if let Some(v) = &run.validation {
        s.push_str(&format!(
            "\nvalidation: {} ({} rows, {} errors, {} warnings)\n",
            if v.valid { "valid" } else { "INVALID" },
            v.rows,
            v.errors.len(),
            v.warnings.len()
        ));
        for i in v.errors.iter().chain(&v.warnings) {
            s.push_str(&format!("  {}: {}\n", i.check, i.message));
        }
    }
    if let Some(p) = &run.predictions {
        let below: Vec<String> = p
            .any_target_below
            .iter()
            .map(|b| format!("{} under {}", b.rows, b.probability))
            .collect();
        s.push_str(&format!(
            "\npredictions: {} rows; rows with a target's probability {}\n",
            p.rows,
            below.join(", ")
        ));
    }
    let page = run.dir.join(report::REPORT_FILE);
    if page.is_file() {
        s.push_str(&format!("\nreport: {}\n", page.display()));
    }
    s
}

fn diff(args: DiffArgs) -> Result<ExitCode, CliError> {
    let a = RunDir::open(&resolve(&args.a, &args.runs)?)?;
    let b = RunDir::open(&resolve(&args.b, &args.runs)?)?;
    let d = report::diff(&a, &b);
    if args.json {
        return json_out(&d);
    }
    print!("{}", diff_text(&d));
    Ok(ExitCode::SUCCESS)
}

fn opt(v: &Option<Value>) -> String {
    v.as_ref().map_or("(none)".into(), show_value)
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.4}"))
}

fn delta(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:+.4}"))
}

fn diff_text(d: &RunDiff) -> String {
    let mut s = String::new();
    for (tag, r) in [("a", &d.a), ("b", &d.b)] {
        s.push_str(&format!(
            "{tag}: {} ({}, started {} UTC, {})\n",
            r.dir.display(),
            r.pipeline,
            when(&r.started_at),
            r.status
        ));
    }
    s.push_str("\nparams:\n");
    if d.params.is_empty() {
        s.push_str("  (the same)\n");
    } else {
        let rows: Vec<[String; 3]> = d
            .params
            .iter()
            .map(|p| [format!("  {}", p.name), opt(&p.a), opt(&p.b)])
            .collect();
        s.push_str(&table(&["  param", "a", "b"], &[false, false, false], &rows));
    }
    s.push_str("\nnodes:\n");
    if d.nodes.is_empty() {
        s.push_str("  (every node ended the same way)\n");
    } else {
        let rows: Vec<[String; 5]> = d
            .nodes
            .iter()
            .map(|n| {
                [
                    format!("  {}", n.id),
                    n.a_status.clone().unwrap_or_else(|| "(absent)".into()),
                    n.b_status.clone().unwrap_or_else(|| "(absent)".into()),
                    n.a_reason.clone().unwrap_or_default(),
                    n.b_reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        s.push_str(&table(
            &["  node", "a", "b", "why in a", "why in b"],
            &[false; 5],
            &rows,
        ));
    }
    if !d.metrics.is_empty() {
        s.push_str("\nmetrics:\n");
        let rows: Vec<[String; 7]> = d
            .metrics
            .iter()
            .map(|m| {
                [
                    format!("  {}", m.target),
                    num(m.a_accuracy),
                    num(m.b_accuracy),
                    delta(m.accuracy_delta),
                    num(m.a_macro_f1),
                    num(m.b_macro_f1),
                    delta(m.macro_f1_delta),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "  target",
                "accuracy a",
                "accuracy b",
                "Δ",
                "macro-F1 a",
                "macro-F1 b",
                "Δ",
            ],
            &[false, true, true, true, true, true, true],
            &rows,
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_and_align_numbers() {
        let t = table(
            &["a", "n"],
            &[false, true],
            &[["xyz".into(), "1".into()], ["é".into(), "100".into()]],
        );
        assert_eq!(t, "a      n\nxyz    1\né    100\n");
    }

    #[test]
    fn start_times_read_as_dates() {
        assert_eq!(when("2026-12-01T09:08:35.183Z"), "2026-12-01 09:08:35");
        assert_eq!(when("short"), "short");
    }
}
