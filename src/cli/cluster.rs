//! `dag run --executor slurm` and `dag export --to slurm`: the pipeline's uncached nodes
//! as Slurm jobs against a shared store, then the run directory assembled from the store.

use super::dag::load_pipeline;
use super::{CliError, ExportArgs, RunArgs};
use crate::clock::Utc;
use crate::cluster::{plan, slurm, JobEnv};
use crate::engine::status::{self as freshness, Freshness};
use crate::engine::{self, NodeReport, NodeStatus, RunOptions, RunReport, RunStatus, Silent};
use crate::graph::Pipeline;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(p).map_err(|source| CliError::Io {
        what: "cannot resolve",
        path: p.into(),
        source,
    })
}

/// Where the jobs find the binary, the pipeline, its parameters and the store.
fn job_env(p: &Pipeline, store: &Path, job_dir: &Path, params: &Path) -> Result<JobEnv, CliError> {
    let exe = std::env::current_exe().map_err(|source| CliError::Io {
        what: "cannot find the nexusml binary",
        path: "nexusml".into(),
        source,
    })?;
    Ok(JobEnv {
        exe,
        file: absolute(&p.file)?,
        params: absolute(params)?,
        // A URL (s3://…) is the same everywhere; a directory is made absolute.
        store: if store.to_string_lossy().contains("://") {
            store.to_path_buf()
        } else {
            absolute(store)?
        },
        job_dir: absolute(job_dir)?,
        workdir: absolute(Path::new("."))?,
    })
}

fn params_toml(p: &Pipeline) -> String {
    toml::to_string(&p.params).unwrap_or_default()
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    crate::atomic_file::write_atomic(path, text.as_bytes()).map_err(|source| CliError::Io {
        what: "cannot write",
        path: path.into(),
        source,
    })
}

pub(crate) fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let p = load_pipeline(&args.pipeline)?;
    let mask = vec![true; p.nodes.len()];
    let store = crate::store::resolve_dir(args.store.as_deref());
    let script_dir = args
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = args
        .output
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let params = script_dir.join(format!("{stem}.params.toml"));
    let env = job_env(&p, &store, &args.jobs_dir, &params)?;
    let jobs = plan(&p, &mask, &env);
    let script = slurm::script(&p, &jobs, &env, &params_toml(&p))?;
    write(&args.output, &script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&args.output, std::fs::Permissions::from_mode(0o755));
    }
    tracing::info!("wrote {} ({} jobs)", args.output.display(), jobs.len());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_slurm(
    p: &Pipeline,
    mask: &[bool],
    store: &Arc<Store>,
    args: &RunArgs,
    run_dir: &Path,
    started: &Utc,
) -> Result<ExitCode, CliError> {
    if args.force.is_some() {
        return Err(CliError::Usage(
            "--force is not supported with --executor slurm yet: run the forced nodes locally first".into(),
        ));
    }
    let params = run_dir.join("params.toml");
    write(&params, &params_toml(p))?;
    let env = job_env(p, store.root(), &run_dir.join("jobs"), &params)?;
    // Slurm opens each job's log there before the job starts.
    std::fs::create_dir_all(&env.job_dir).map_err(|source| CliError::Io {
        what: "cannot create",
        path: env.job_dir.clone(),
        source,
    })?;
    let states = freshness::status(p, store);
    let to_run: Vec<bool> = (0..p.nodes.len())
        .map(|i| mask[i] && states[i].state != Freshness::Fresh)
        .collect();
    let jobs = plan(p, &to_run, &env);
    let t0 = std::time::Instant::now();
    tracing::info!(
        "running `{}` on Slurm: {} job(s), {} node(s) already in the store {}; run directory {}",
        p.name,
        jobs.len(),
        (0..p.nodes.len()).filter(|&i| mask[i] && !to_run[i]).count(),
        store.root().display(),
        run_dir.display()
    );
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = Arc::clone(&interrupt);
        let _ = ctrlc::set_handler(move || {
            if interrupt.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("interrupted: cancelling the submitted Slurm jobs (Ctrl-C again to quit now)");
        });
    }
    let ids = slurm::submit(p, &jobs, &env)?;
    let outcomes = slurm::follow(p, &ids, &interrupt, &|v, o| {
        let id = &p.nodes[v].id;
        match o.state.as_str() {
            "COMPLETED" => tracing::info!("node `{id}` ok (Slurm job {})", o.id),
            "RUNNING" => tracing::info!("node `{id}` running (Slurm job {})", o.id),
            "PENDING" => {}
            other => tracing::warn!("node `{id}`: Slurm job {} {other}", o.id),
        }
    })?;
    let interrupted = interrupt.load(Ordering::Relaxed);
    let all_ok = outcomes.values().all(|o| o.state == "COMPLETED");

    // Every node is in the store now: a local pass answers each from it, which puts the
    // files back into this run directory and the output directory (`_latest` included).
    let mut report = if all_ok && !interrupted {
        let opts = RunOptions {
            jobs: 1,
            mask: Some(mask.to_vec()),
            store: Some(Arc::clone(store)),
            ..RunOptions::new(run_dir)
        };
        let outcome = engine::run(p, &opts, &Silent)?;
        engine::record_run(store, p, &outcome, started);
        RunReport::new(p, &outcome, started, 1, false)
    } else {
        unfinished_report(p, mask, started)
    };
    for (v, o) in &outcomes {
        let n = &mut report.nodes[*v];
        n.job_id = Some(o.id.clone());
        n.job_state = Some(o.state.clone());
        n.start_ms = o.start.map(|d| d.as_secs_f64() * 1e3);
        n.end_ms = o.end.map(|d| d.as_secs_f64() * 1e3);
        n.duration_ms = match (o.start, o.end) {
            (Some(a), Some(b)) => Some((b - a).as_secs_f64() * 1e3),
            _ => None,
        };
        n.thread = None;
        let log = env.job_dir.join(format!("{}-{}.log", p.nodes[*v].id, o.id));
        if o.state == "COMPLETED" {
            n.status = NodeStatus::Ok;
            n.reason = Some(format!("ran as Slurm job {}", o.id));
        } else if let Some(u) = o.cancelled_because {
            n.status = NodeStatus::Skipped;
            n.reason = Some(format!(
                "upstream node `{}` failed (Slurm job {} cancelled)",
                p.nodes[u].id, o.id
            ));
        } else if interrupted && o.state == "CANCELLED" {
            n.status = NodeStatus::Skipped;
            n.reason = Some(format!("interrupted (Slurm job {} cancelled)", o.id));
        } else {
            n.status = NodeStatus::Failed;
            n.error = vec![format!(
                "Slurm job {} ended {}; its log: {}",
                o.id,
                o.state,
                log.display()
            )];
        }
    }
    report.status = if interrupted {
        RunStatus::Interrupted
    } else if report.nodes.iter().any(|n| n.status == NodeStatus::Failed) {
        RunStatus::Failed
    } else {
        RunStatus::Ok
    };
    report.wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    report.write(run_dir).map_err(|source| CliError::Io {
        what: "cannot write the run report in",
        path: run_dir.into(),
        source,
    })?;
    crate::report::write_after_run(run_dir);
    eprintln!("{}", report.table());
    eprintln!("run directory: {}", run_dir.display());
    Ok(match report.status {
        RunStatus::Ok => ExitCode::SUCCESS,
        RunStatus::Failed => ExitCode::from(1),
        RunStatus::Interrupted => ExitCode::from(130),
    })
}

/// The report of a run whose jobs did not all succeed: nodes the store answered are
/// `cached`, the jobs' nodes are filled in by the caller, the rest were not selected.
fn unfinished_report(p: &Pipeline, mask: &[bool], started: &Utc) -> RunReport {
    let nodes = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeReport {
            id: n.id.clone(),
            op: n.op_name.clone(),
            status: if mask[i] {
                NodeStatus::Cached
            } else {
                NodeStatus::Skipped
            },
            reason: Some(if mask[i] {
                "cached".into()
            } else {
                "not selected".into()
            }),
            key: None,
            changed_inputs: Vec::new(),
            job_id: None,
            job_state: None,
            start_ms: None,
            end_ms: None,
            duration_ms: None,
            thread: None,
            artifacts: Vec::new(),
            error: Vec::new(),
        })
        .collect();
    RunReport {
        pipeline: p.name.clone(),
        file: p.file.display().to_string(),
        nexusml_version: engine::NEXUSML_VERSION.to_string(),
        default_params: engine::file_default_params(p),
        edges: engine::edge_reports(p),
        started_at: started.rfc3339(),
        status: RunStatus::Failed,
        wall_ms: 0.0,
        jobs: 1,
        keep_going: false,
        params: serde_json::to_value(&p.params).unwrap_or(serde_json::Value::Null),
        nodes,
    }
}
