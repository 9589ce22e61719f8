//! `nexusml dag run | check | plot | ops`.

use super::logging::RunLog;
use super::{
    CheckArgs, CliError, GcArgs, PipelineArgs, PlotArgs, PlotFormat, RunArgs, SelectArgs, StatusArgs,
    StoreOnlyArgs,
};
use crate::clock::Utc;
use crate::engine::status::{self as freshness, Freshness};
use crate::engine::{self, format_ms, NodeRecord, NodeStatus, Observer, RunOptions, RunReport, RunStatus};
use crate::graph::plot::{self, PlotStatus};
use crate::graph::{Pipeline, Plan, Selection};
use crate::spec::{apply_overrides, parse_override, PipelineSpec};
use crate::store::Store;
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing_indicatif::span_ext::IndicatifSpanExt;

/// Read the file, apply `--params` then `--set`, build and validate; print warnings.
pub(crate) fn load_pipeline(args: &PipelineArgs) -> Result<Pipeline, CliError> {
    let mut spec = PipelineSpec::load(&args.file)?;
    if let Some(path) = &args.params {
        // A bad command line is exit 2, as for --set.
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("--params {}: cannot read it: {e}", path.display())))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| crate::spec::parse_error(path, &text, &e))?;
        // An undeclared key is an error here too, as with --set: a typo must not pass.
        let unknown: Vec<&String> = table.keys().filter(|k| !spec.params.contains_key(*k)).collect();
        if let Some(key) = unknown.first() {
            let help = crate::graph::did_you_mean(key, spec.params.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(CliError::Usage(format!(
                "--params {}: {} has no parameter `{key}`{help}",
                path.display(),
                args.file.display()
            )));
        }
        spec.command_line_params.extend(table.keys().cloned());
        apply_overrides(&mut spec.params, table);
    }
    let overrides = args
        .set
        .iter()
        .map(|s| parse_override(s))
        .collect::<Result<Vec<_>, _>>()?;
    // `--set map.description=Desc` sets one entry of a table parameter.
    let mut plain = Vec::new();
    for (key, value) in overrides {
        match key.split_once('.') {
            Some((head, entry)) if spec.params.get(head).is_some_and(toml::Value::is_table) => {
                spec.command_line_params.insert(head.to_string());
                if let Some(toml::Value::Table(t)) = spec.params.get_mut(head) {
                    t.insert(entry.to_string(), value);
                }
            }
            _ => plain.push((key, value)),
        }
    }
    let overrides = plain;
    for (key, _) in &overrides {
        if !spec.params.contains_key(key) {
            let help = crate::graph::did_you_mean(key, spec.params.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(CliError::Usage(format!(
                "--set {key}=…: {} has no parameter `{key}`{help}",
                args.file.display()
            )));
        }
    }
    spec.command_line_params
        .extend(overrides.iter().map(|(k, _)| k.clone()));
    apply_overrides(&mut spec.params, overrides);
    let pipeline = Pipeline::build(&spec, crate::ops::builtin())?;
    for w in &pipeline.warnings {
        tracing::warn!("{}", w.to_string().trim_start_matches("warning: "));
    }
    Ok(pipeline)
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
    println!(
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
    print!("{}", describe_plan(&p, &plan));
    Ok(ExitCode::SUCCESS)
}

/// Progress: an overall bar on the run span, a line per running node (its span), and a
/// log line per finished node.
struct Progress {
    span: tracing::Span,
}

impl Observer for Progress {
    fn node_finished(&self, p: &Pipeline, node: usize, r: &NodeRecord) {
        let id = &p.nodes[node].id;
        match r.status {
            // `parent: &self.span`: a worker may finish this node while another node's span
            // is entered on it (work-stealing); the line belongs to the run, not to that node.
            NodeStatus::Ok => tracing::info!(
                parent: &self.span,
                "node `{id}` ok in {}{}",
                format_ms(r.duration().unwrap_or_default().as_secs_f64() * 1e3),
                r.reason.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
            ),
            NodeStatus::Cached => {
                tracing::info!(parent: &self.span, "node `{id}` {}", r.reason.as_deref().unwrap_or("cached"))
            }
            NodeStatus::Failed => {
                tracing::error!(parent: &self.span, "node `{id}` failed: {}", r.error.join(": "))
            }
            NodeStatus::Skipped => {
                tracing::warn!(parent: &self.span, "node `{id}` skipped: {}", r.reason.as_deref().unwrap_or(""))
            }
        }
        self.span.pb_inc(1);
    }
}

/// With a store, a selection takes its unselected upstream nodes' results from it: check
/// up front that it has those whose inputs are settled, naming the nodes to run first.
fn check_upstream_stored(p: &Pipeline, mask: &[bool], store: &Store) -> Result<(), CliError> {
    let upstream = p.upstream_of(mask);
    if !upstream.iter().any(|&u| u) {
        return Ok(());
    }
    let states = freshness::status(p, store);
    // Name the unselected nodes a selected node reads from directly: running them (and
    // what they need) is what the selection is missing.
    let mut missing = Vec::new();
    for (i, s) in states.iter().enumerate() {
        if !upstream[i] || s.state == Freshness::Fresh {
            continue;
        }
        if p.successors(i).iter().any(|&w| mask[w]) {
            let why = if s.state == Freshness::Missing {
                "never run".to_string()
            } else {
                s.causes.join("; ")
            };
            missing.push((s.id.clone(), why));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(id, why)| format!("`{id}` ({why})"))
        .collect();
    Err(CliError::Usage(format!(
        "the selection reads results of unselected nodes that the store does not hold for the current inputs: {}\n  \
         help: run them first, e.g. `nexusml dag run {} --to {}`, or add them to the selection",
        list.join(", "),
        p.file.display(),
        missing[0].0
    )))
}

pub(crate) fn status(args: StatusArgs) -> Result<ExitCode, CliError> {
    let p = load_pipeline(&args.pipeline)?;
    let store = Store::open(super::store_dir(args.store.as_deref()))?;
    let states = freshness::status(&p, &store);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&states).unwrap_or_default());
    } else {
        print!("{}", freshness::render(&states));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cache_info(args: StoreOnlyArgs) -> Result<ExitCode, CliError> {
    let store = Store::open(super::store_dir(args.store.as_deref()))?;
    let i = store.info();
    println!("store:     {}", i.root);
    println!("size:      {}", human_bytes(i.bytes));
    println!("entries:   {} manifests, {} blobs", i.manifests, i.blobs);
    println!("runs:      {} recorded, {} running now", i.runs, i.live_runs);
    if let Some(newest) = i.newest_run {
        println!("newest:    {newest}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cache_gc(args: GcArgs) -> Result<ExitCode, CliError> {
    let store = Store::open(super::store_dir(args.store.store.as_deref()))?;
    let r = store.gc(&crate::store::GcOptions {
        keep_runs: args.keep_runs,
        max_size: args.max_size,
        dry_run: args.dry_run,
    })?;
    let verb = if args.dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {} manifests, {} blobs ({}) and {} run records; kept {} runs ({}){}",
        r.manifests_removed,
        r.blobs_removed,
        human_bytes(r.bytes_removed),
        r.runs_removed,
        r.runs_kept,
        human_bytes(r.bytes_kept),
        if r.live_runs > 0 {
            format!(", and what {} running run(s) use", r.live_runs)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1048576.0)
    } else {
        format!("{:.2} GiB", n / 1073741824.0)
    }
}

pub(crate) fn run(args: RunArgs, run_log: &RunLog) -> Result<ExitCode, CliError> {
    let p = load_pipeline(&args.pipeline)?;
    let mask = p.select(&selection(&args.select))?;
    p.check_input_files(&mask)?;
    let store = args.store.open()?;
    match &store {
        Some(store) => check_upstream_stored(&p, &mask, store)?,
        None => p.check_closed(&mask)?,
    }
    if let Some(force) = &args.force {
        for id in force {
            if p.node_index(id).is_none() {
                let help = crate::graph::did_you_mean(id, p.nodes.iter().map(|n| n.id.as_str()))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                return Err(CliError::Usage(format!(
                    "--force names unknown node `{id}`{help}"
                )));
            }
        }
    }
    if args.dry_run {
        let plan = p.plan(&mask, None);
        println!("plan for `{}` ({}):", p.name, p.file.display());
        print!("{}", describe_plan(&p, &plan));
        if let Some(store) = &store {
            println!("against the store {}:", store.root().display());
            print!("{}", freshness::render(&freshness::status(&p, store)));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = match args.jobs {
        Some(n) => engine::check_jobs(n)?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let started = Utc::now();
    let run_dir =
        engine::create_run_dir(&args.runs_dir, &p.name, &started).map_err(|source| CliError::Io {
            what: "cannot create a run directory in",
            path: args.runs_dir.clone(),
            source,
        })?;
    let log_path = run_dir.join("run.log");
    run_log.attach(&log_path).map_err(|source| CliError::Io {
        what: "cannot create",
        path: log_path,
        source,
    })?;
    if args.executor == super::Executor::Slurm {
        let Some(store) = &store else {
            return Err(CliError::Usage(
                "--executor slurm needs the artifact store (it carries every artifact between jobs): drop --no-cache".into(),
            ));
        };
        return super::cluster::run_slurm(&p, &mask, store, &args, &run_dir, &started);
    }
    tracing::info!(
        "running `{}` with {jobs} worker thread(s); run directory {}",
        p.name,
        run_dir.display()
    );

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        // A second Ctrl-C leaves at once; the first lets running nodes finish.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "interrupted: finishing running nodes, starting no new ones (Ctrl-C again to quit now)"
            );
        });
    }
    let span = tracing::info_span!("run", pipeline = %p.name);
    span.pb_set_style(
        &indicatif::ProgressStyle::with_template(
            "{spinner} {span_name} [{bar:30}] {pos}/{len} nodes {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    span.pb_set_length(mask.iter().filter(|&&m| m).count() as u64);
    let opts = RunOptions {
        jobs,
        keep_going: args.keep_going,
        mask: Some(mask),
        store: store.clone(),
        force: args.force.clone(),
        run_dir: run_dir.clone(),
        cancel,
        span: span.clone(),
    };
    let outcome = {
        let _entered = span.enter();
        engine::run(&p, &opts, &Progress { span: span.clone() })?
    };
    // Closing the run span (every clone) clears the progress bars before the table prints.
    drop(opts);
    drop(span);
    let report = RunReport::new(&p, &outcome, &started, jobs, args.keep_going);
    report.write(&run_dir).map_err(|source| CliError::Io {
        what: "cannot write the run report in",
        path: run_dir.clone(),
        source,
    })?;
    crate::report::write_after_run(&run_dir);
    if let Some(store) = &store {
        engine::record_run(store, &p, &outcome, &started);
    }
    eprintln!("{}", report.table());
    eprintln!("run directory: {}", run_dir.display());
    Ok(match outcome.status {
        RunStatus::Ok => ExitCode::SUCCESS,
        RunStatus::Failed => ExitCode::from(1),
        RunStatus::Interrupted => ExitCode::from(130),
    })
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
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|source| CliError::Io {
                    what: "cannot write",
                    path: "<stdout>".into(),
                    source,
                })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn ops() -> Result<ExitCode, CliError> {
    let mut out = String::new();
    for op in crate::ops::builtin().iter() {
        out.push_str(&format!("{}\n    {}\n", op.name, op.summary));
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
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
