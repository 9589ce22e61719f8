//! `dag run --executor slurm`: the session's uncached nodes as Slurm jobs against a shared
//! store, then the run directory assembled from the store by a local walk.

use super::slurm::{self, JobOutcome};
use super::{plan, JobEnv};
use crate::engine::status::{self as freshness, Freshness};
use crate::engine::{
    self, Blackboard, ClusterJob, NodeRecord, NodeStatus, Reason, RunOutcome, RunSetup, Runner, Session,
    SessionError, Silent,
};
use crate::graph::Pipeline;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Runs each node the store cannot answer as one Slurm job.
pub struct SlurmRunner;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SessionError {
    let path = path.to_path_buf();
    move |source| SessionError::Io { what, path, source }
}

fn absolute(p: &Path) -> Result<PathBuf, SessionError> {
    std::path::absolute(p).map_err(io("cannot resolve", p))
}

/// Where the jobs find the binary, the pipeline, its parameters and the store.
pub fn job_env(p: &Pipeline, store: &Path, job_dir: &Path, params: &Path) -> Result<JobEnv, SessionError> {
    let exe = std::env::current_exe().map_err(io("cannot find the nexusml binary", Path::new("nexusml")))?;
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

impl Runner for SlurmRunner {
    fn run(&self, session: &Session, setup: &RunSetup<'_>) -> Result<RunOutcome, SessionError> {
        let p = &session.pipeline;
        let Some(store) = &session.store else {
            return Err(SessionError::Usage(
                "--executor slurm needs the artifact store (it carries every artifact between jobs): drop --no-cache"
                    .into(),
            ));
        };
        if session.request.force.is_some() {
            return Err(SessionError::Usage(
                "--force is not supported with --executor slurm yet: run the forced nodes locally first"
                    .into(),
            ));
        }
        let params = setup.run_dir.join("params.toml");
        let text = toml::to_string(&session.job_params()).unwrap_or_default();
        crate::atomic_file::write_atomic(&params, text.as_bytes()).map_err(io("cannot write", &params))?;
        let env = job_env(p, store.root(), &setup.run_dir.join("jobs"), &params)?;
        // Slurm opens each job's log there before the job starts.
        std::fs::create_dir_all(&env.job_dir).map_err(io("cannot create", &env.job_dir))?;
        let mask = &session.mask;
        let states = freshness::status(p, store);
        let to_run: Vec<bool> = (0..p.nodes.len())
            .map(|i| mask[i] && states[i].state != Freshness::Fresh)
            .collect();
        let jobs = plan(p, &to_run, &env);
        let t0 = Instant::now();
        tracing::info!(
            "running `{}` on Slurm: {} job(s), {} node(s) already in the store {}; run directory {}",
            p.name,
            jobs.len(),
            (0..p.nodes.len()).filter(|&i| mask[i] && !to_run[i]).count(),
            store.root().display(),
            setup.run_dir.display()
        );
        let runner_error = |e: slurm::SlurmError| SessionError::Runner(Box::new(e));
        let ids = slurm::submit(p, &jobs, &env).map_err(runner_error)?;
        let outcomes = slurm::follow(p, &ids, setup.cancel, &|v, o| {
            let id = &p.nodes[v].id;
            match o.state.as_str() {
                "COMPLETED" => tracing::info!("node `{id}` ok (Slurm job {})", o.id),
                "RUNNING" => tracing::info!("node `{id}` running (Slurm job {})", o.id),
                // Normal on the way to an end state.
                "PENDING" | "COMPLETING" | "CONFIGURING" => {}
                other => tracing::warn!("node `{id}`: Slurm job {} {other}", o.id),
            }
        })
        .map_err(runner_error)?;
        let interrupted = setup.cancel.load(Ordering::Relaxed);
        let all_ok = outcomes.values().all(|o| o.state == "COMPLETED");

        // Every node is in the store now: a local pass answers each from it, which puts the
        // files back into this run directory and the output directory (`_latest` included).
        let local = if all_ok && !interrupted {
            let opts = engine::RunOptions {
                jobs: 1,
                ..session.run_options(setup)
            };
            Some(engine::run(p, &opts, &Silent)?)
        } else {
            None
        };
        let (mut records, board) = match local {
            Some(o) => (o.records, o.blackboard),
            None => (unfinished(mask), Blackboard::new(p.artifacts.len())),
        };
        for (v, o) in &outcomes {
            let log = env.job_dir.join(format!("{}-{}.log", p.nodes[*v].id, o.id));
            overlay(p, &mut records[*v], o, interrupted, &log);
            setup.observer.node_finished(p, *v, &records[*v]);
        }
        Ok(RunOutcome::from_records(
            records,
            t0.elapsed(),
            interrupted,
            board,
            Some(Arc::clone(store)),
        ))
    }
}

/// The records of a run whose jobs did not all succeed: nodes the store answered are
/// `cached`, the jobs' nodes are filled in by the caller, the rest were not selected.
fn unfinished(mask: &[bool]) -> Vec<NodeRecord> {
    mask.iter()
        .map(|&m| {
            if m {
                NodeRecord {
                    reasons: vec![Reason::Cached { restored: 0 }],
                    ..NodeRecord::new(NodeStatus::Cached)
                }
            } else {
                NodeRecord::skipped(Reason::NotSelected)
            }
        })
        .collect()
}

/// What a node's job says of it.
fn overlay(p: &Pipeline, r: &mut NodeRecord, o: &JobOutcome, interrupted: bool, log: &Path) {
    const SLURM: &str = "Slurm";
    r.job = Some(ClusterJob {
        id: o.id.clone(),
        state: o.state.clone(),
    });
    r.start = o.start;
    r.end = o.end;
    r.thread = None;
    if o.state == "COMPLETED" {
        r.status = NodeStatus::Ok;
        r.reasons = vec![Reason::RanAsJob {
            scheduler: SLURM,
            id: o.id.clone(),
        }];
    } else if let Some(u) = o.cancelled_because {
        r.status = NodeStatus::Skipped;
        r.reasons = vec![Reason::JobCancelled {
            scheduler: SLURM,
            id: o.id.clone(),
            upstream: Some(p.nodes[u].id.clone()),
        }];
    } else if interrupted && o.state == "CANCELLED" {
        r.status = NodeStatus::Skipped;
        r.reasons = vec![Reason::JobCancelled {
            scheduler: SLURM,
            id: o.id.clone(),
            upstream: None,
        }];
    } else {
        r.status = NodeStatus::Failed;
        r.reasons.clear();
        r.error = vec![format!(
            "Slurm job {} ended {}; its log: {}",
            o.id,
            o.state,
            log.display()
        )];
    }
}
