//! `nexusml dag run | check | plot | status | ops`.

use super::logging::RunLog;
use super::{CheckArgs, CliError, PipelineArgs, PlotArgs, PlotFormat, RunArgs, SelectArgs, StatusArgs};
use crate::engine::status as freshness;
use crate::engine::{format_ms, session, Hooks, NodeRecord, NodeStatus, Observer, Request, Session};
use crate::graph::plot::{self, PlotStatus};
use crate::graph::{NodeIx, Pipeline, Plan, Selection};
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use tracing_indicatif::span_ext::IndicatifSpanExt;

/// Read the file, apply `--params` then `--set`, build and validate; print warnings.
pub(crate) fn load_pipeline(args: &PipelineArgs) -> Result<Pipeline, CliError> {
    Ok(session::load(
        &args.source(),
        &args.overrides(),
        crate::ops::builtin(),
    )?)
}

pub(crate) fn selection(args: &SelectArgs) -> Selection {
    Selection {
        only: args.only.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        tags: args.tags.clone(),
    }
}

fn describe_plan(p: &Pipeline, plan: &Plan) -> String {
    let mut s = String::new();
    for (k, wave) in plan.waves.iter().enumerate() {
        let nodes: Vec<String> = wave
            .iter()
            .map(|&i| format!("{} ({})", p.nodes[i].id, p.nodes[i].op_name))
            .collect();
        s.push_str(&format!("wave {}: {}\n", k + 1, nodes.join(", ")));
    }
    let path: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|&i| p.nodes[i].id.as_str())
        .collect();
    s.push_str(&format!(
        "critical path ({} nodes): {}\n",
        path.len(),
        path.join(" → ")
    ));
    s
}

pub(crate) fn check(args: CheckArgs) -> Result<ExitCode, CliError> {
    let p = load_pipeline(&args.pipeline)?;
    let mask = p.select(&selection(&args.select))?;
    p.check_input_files(&mask)?;
    let plan = p.plan(&mask, None);
    let selected = mask.iter().filter(|&&m| m).count();
    say!(
        "ok: pipeline `{}` ({}): {} nodes{}, {} edges, {} artifacts, {} waves, {} warning{}",
        p.name,
        p.file.display(),
        p.nodes.len(),
        if selected < p.nodes.len() {
            format!(" ({selected} selected)")
        } else {
            String::new()
        },
        p.edge_count(),
        p.artifacts.len(),
        plan.waves.len(),
        p.warnings.len(),
        if p.warnings.len() == 1 { "" } else { "s" }
    );
    say_raw!("{}", describe_plan(&p, &plan));
    // What `--executor slurm` (and `dag export`) would submit, by the default grouping.
    let units = crate::cluster::units(&p, &mask, crate::cluster::Grouping::Auto)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    say!("cluster jobs ({}, --group auto):", units.len());
    const SHOWN: usize = 20;
    for (i, unit) in units.iter().enumerate().take(SHOWN) {
        say!("  job {}: {}", i + 1, crate::cluster::slurm::describe(&p, unit));
    }
    if units.len() > SHOWN {
        say!("  … ({} more)", units.len() - SHOWN);
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress: an overall bar on the run span, a line per running node (its span), and a
/// log line per finished node.
struct Progress {
    span: tracing::Span,
}

impl Observer for Progress {
    fn node_finished(&self, p: &Pipeline, node: NodeIx, r: &NodeRecord) {
        let id = &p.nodes[node].id;
        match r.status {
            // `parent: &self.span`: a worker may finish this node while another node's span
            // is entered on it (work-stealing); the line belongs to the run, not to that node.
            NodeStatus::Ok => tracing::info!(
                parent: &self.span,
                "node `{id}` ok in {}{}",
                format_ms(r.duration().unwrap_or_default().as_secs_f64() * 1e3),
                r.note().map(|w| format!(" ({w})")).unwrap_or_default()
            ),
            NodeStatus::Cached => {
                tracing::info!(parent: &self.span, "node `{id}` {}", r.note().unwrap_or_else(|| "cached".into()))
            }
            NodeStatus::Failed => {
                tracing::error!(parent: &self.span, "node `{id}` failed: {}", r.error.join(": "))
            }
            NodeStatus::Skipped => {
                tracing::warn!(parent: &self.span, "node `{id}` skipped: {}", r.note().unwrap_or_default())
            }
        }
        self.span.pb_inc(1);
    }
}

pub(crate) fn status(args: StatusArgs) -> Result<ExitCode, CliError> {
    let p = load_pipeline(&args.pipeline)?;
    let store = args.store.open()?;
    let states = freshness::status(&p, &store);
    if args.json {
        say!("{}", serde_json::to_string_pretty(&states).unwrap_or_default());
    } else {
        say_raw!("{}", freshness::render(&states));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(args: RunArgs, run_log: &RunLog) -> Result<ExitCode, CliError> {
    let slurm = args.executor == super::Executor::Slurm;
    if slurm && args.store.no_cache {
        return Err(CliError::Usage(
            "--executor slurm needs the artifact store (it carries every artifact between jobs): drop --no-cache".into(),
        ));
    }
    let session = Session::open(Request {
        overrides: args.pipeline.overrides(),
        selection: selection(&args.select),
        store: args.store.dir(),
        force: args.force.clone(),
        keep_going: args.keep_going,
        jobs: args.jobs,
        legacy: false,
        runs_dir: args.runs_dir.runs_dir.clone(),
        ..Request::new(args.pipeline.source(), crate::ops::builtin())
    })?;
    let p = &session.pipeline;
    if args.dry_run {
        let (plan, states) = session.dry_run();
        say!("plan for `{}` ({}):", p.name, p.file.display());
        say_raw!("{}", describe_plan(p, &plan));
        if let (Some(store), Some(states)) = (&session.store, states) {
            say!("against the store {}:", store.root().display());
            say_raw!("{}", freshness::render(&states));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let span = tracing::info_span!("run", pipeline = %p.name);
    span.pb_set_style(
        &indicatif::ProgressStyle::with_template(
            "{spinner} {span_name} [{bar:30}] {pos}/{len} nodes {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    span.pb_set_length(session.mask.iter().filter(|&&m| m).count() as u64);
    let attach = |dir: &std::path::Path| {
        let log = dir.join("run.log");
        if let Err(e) = run_log.attach(&log) {
            tracing::warn!("cannot write {}: {e}", log.display());
        }
    };
    let slurm_runner = crate::cluster::SlurmRunner {
        grouping: args.cluster.group.grouping(),
        max_jobs: args.cluster.max_jobs.map(|n| n as usize),
    };
    let progress = Progress { span: span.clone() };
    let finished = session.run(&Hooks {
        observer: &progress,
        span: span.clone(),
        cancel: crate::engine::interrupt::install(),
        on_run_dir: Some(&attach),
        runner: slurm.then_some(&slurm_runner as &dyn crate::engine::Runner),
    })?;
    // Closing the run span (every clone) clears the progress bars before the table prints.
    drop(progress);
    drop(span);
    say_err!("{}", finished.report.table());
    say_err!("run directory: {}", finished.run_dir.display());
    Ok(ExitCode::from(Session::exit_code(finished.outcome.status)))
}

/// Statuses and durations from a run directory's report.json.
fn run_states(dir: &std::path::Path) -> Result<HashMap<String, (PlotStatus, f64)>, CliError> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
        what: "cannot read",
        path: path.clone(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{} is not a run report: {e}", path.display())))?;
    let nodes = json["nodes"]
        .as_array()
        .ok_or_else(|| CliError::Usage(format!("{} has no `nodes` list", path.display())))?;
    Ok(nodes
        .iter()
        .filter_map(|n| {
            let status = match n["status"].as_str()? {
                "ok" => PlotStatus::Ok,
                "failed" => PlotStatus::Failed,
                "cached" => PlotStatus::Cached,
                _ => PlotStatus::Skipped,
            };
            Some((
                n["id"].as_str()?.to_string(),
                (status, n["duration_ms"].as_f64().unwrap_or(0.0)),
            ))
        })
        .collect())
}

pub(crate) fn plot(args: PlotArgs) -> Result<ExitCode, CliError> {
    let p = load_pipeline(&args.pipeline)?;
    let states = args.run.as_deref().map(run_states).transpose()?;
    let graph = p.plot_graph(states.as_ref());
    // The file's extension and the format must agree: a `.png` holding DOT text, or SVG
    // in a `.jpg`, is a file nobody can open.
    let by_extension = match args.output.as_ref().and_then(|o| o.extension()) {
        None => None,
        Some(ext) => Some(match ext.to_str().map(str::to_ascii_lowercase).as_deref() {
            Some("png") => PlotFormat::Png,
            Some("svg") => PlotFormat::Svg,
            Some("mmd" | "mermaid") => PlotFormat::Mermaid,
            Some("dot" | "gv") => PlotFormat::Dot,
            _ => {
                return Err(CliError::Usage(format!(
                    "-o {}: nexusml draws .dot, .gv, .mmd, .svg and .png, not .{}",
                    args.output
                        .as_ref()
                        .map(|o| o.display().to_string())
                        .unwrap_or_default(),
                    ext.to_string_lossy()
                )))
            }
        }),
    };
    let format = match (args.format, by_extension) {
        (Some(f), Some(e)) if f != e => {
            return Err(CliError::Usage(format!(
                "--format {} does not match -o {}: use a matching extension",
                format!("{f:?}").to_lowercase(),
                args.output
                    .as_ref()
                    .map(|o| o.display().to_string())
                    .unwrap_or_default()
            )))
        }
        (Some(f), _) => f,
        (None, Some(e)) => e,
        (None, None) => PlotFormat::Dot,
    };
    let bytes = match format {
        PlotFormat::Dot => plot::to_dot(&graph).into_bytes(),
        PlotFormat::Mermaid => plot::to_mermaid(&graph).into_bytes(),
        PlotFormat::Svg => plot::to_svg(&graph)?.into_bytes(),
        PlotFormat::Png => plot::to_png(&graph)?,
    };
    match &args.output {
        Some(path) => {
            crate::atomic_file::write_atomic(path, &bytes).map_err(|source| CliError::Io {
                what: "cannot write",
                path: path.clone(),
                source,
            })?;
            tracing::info!("wrote {}", path.display());
        }
        None => {
            if format == PlotFormat::Png && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(CliError::Usage(
                    "a PNG is binary: pass -o FILE.png or redirect stdout".into(),
                ));
            }
            match std::io::stdout().write_all(&bytes) {
                // `| head -c 0`: the reader wanted no more.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.map_err(|source| CliError::Io {
                    what: "cannot write",
                    path: "<stdout>".into(),
                    source,
                })?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn ops() -> Result<ExitCode, CliError> {
    let mut out = String::new();
    for op in crate::ops::builtin().iter() {
        out.push_str(&format!("{}\n    {}\n", op.name, op.summary));
        if !op.version_note.is_empty() {
            out.push_str(&format!("    version {}: {}\n", op.version, op.version_note));
        }
        let ports = |list: &[crate::ops::Port],
                     variadic: Option<crate::ops::ArtifactType>,
                     kind: &str,
                     out: &mut String| {
            for port in list {
                let opt = if port.optional { " (optional)" } else { "" };
                out.push_str(&format!(
                    "    {kind:<6} {:<16} {}{opt}  {}\n",
                    port.name, port.ty, port.doc
                ));
            }
            if let Some(ty) = variadic {
                out.push_str(&format!("    {kind:<6} {:<16} {ty}  any port name\n", "*"));
            }
        };
        ports(&op.inputs, op.variadic_inputs, "in", &mut out);
        ports(&op.outputs, op.variadic_outputs, "out", &mut out);
        for f in &op.config {
            let default = f
                .default
                .as_ref()
                .map_or_else(|| "required".to_string(), |d| format!("default {d}"));
            // A path field: relative to the pipeline file when written in it.
            let path = if op.path_fields.iter().any(|p| p.name == f.name) {
                " [path: relative to the pipeline file, or to the working directory from --set]"
            } else {
                ""
            };
            out.push_str(&format!(
                "    with   {:<16} {} ({default})  {}{path}\n",
                f.name, f.ty, f.doc
            ));
        }
        out.push('\n');
    }
    say_raw!("{out}");
    Ok(ExitCode::SUCCESS)
}
