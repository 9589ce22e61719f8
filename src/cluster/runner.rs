//! `dag run --executor slurm`: the session's uncached nodes as units (see [`groups`]),
//! walked by the ordinary walker — a unit is submitted once the units it waits for have
//! ended, at most `--max-jobs` at a time — and then the run directory assembled from the
//! shared store by a local walk.
//!
//! [`groups`]: super::groups

use super::groups::{units, Grouping, Unit, UnitKind};
use super::slurm::{self, JobEnd, Queue};
use super::JobEnv;
use crate::engine::status::{self as freshness, Freshness};
use crate::engine::walker::{self, ListDag, Walk, Walked};
use crate::engine::{
    self, Blackboard, ClusterJob, NodeRecord, NodeStatus, Reason, RunOutcome, RunSetup, Runner, Session,
    SessionError, Silent,
};
use crate::graph::{NodeIx, Pipeline};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const SLURM: &str = "Slurm";

/// Runs the nodes the store cannot answer as Slurm jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlurmRunner {
    pub grouping: Grouping,
    /// The most jobs of this run queued or running at once (an array counts its
    /// throttle); `None`: no limit.
    pub max_jobs: Option<usize>,
}

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
        keep_going: false,
    })
}

/// A counting semaphore: `--max-jobs`.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn take(&self, n: usize, cancel: &AtomicBool) -> bool {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free < n {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            free = self
                .freed
                .wait_timeout(free, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *free -= n;
        true
    }

    fn give(&self, n: usize) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += n;
        self.freed.notify_all();
    }
}

/// What became of one unit's job.
#[derive(Debug, Clone)]
struct Submitted {
    end: Option<JobEnd>,
    /// When the unit became ready, to tell the submission's wait.
    ready: Duration,
    error: Option<String>,
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
        let env = JobEnv {
            keep_going: session.request.keep_going,
            ..job_env(p, store.root(), &setup.run_dir.join("jobs"), &params)?
        };
        // Slurm opens each job's log there before the job starts.
        std::fs::create_dir_all(&env.job_dir).map_err(io("cannot create", &env.job_dir))?;
        let mask = &session.mask;
        let states = freshness::status(p, store);
        let to_run: Vec<bool> = (0..p.nodes.len())
            .map(|i| mask[i] && states[i].state != Freshness::Fresh)
            .collect();
        let units = units(p, &to_run, self.grouping).map_err(|e| SessionError::Usage(e.to_string()))?;
        let t0 = Instant::now();
        tracing::info!(
            "running `{}` on Slurm: {} job(s) for {} node(s), {} node(s) already in the store {}; run directory {}",
            p.name,
            units.len(),
            to_run.iter().filter(|&&r| r).count(),
            (0..p.nodes.len()).filter(|&i| mask[i] && !to_run[i]).count(),
            store.root().display(),
            setup.run_dir.display()
        );
        // Job names carry the run directory's name: one `squeue` finds them all.
        let tag = setup
            .run_dir
            .file_name()
            .map_or_else(|| p.name.clone(), |n| n.to_string_lossy().into_owned());
        let cancel = Arc::clone(setup.cancel);
        let queue = Queue::start(t0, Arc::clone(&cancel));
        let limit = self.max_jobs.unwrap_or(usize::MAX).max(1);
        let slots = Slots {
            free: Mutex::new(limit),
            freed: Condvar::new(),
        };
        let results: Vec<Mutex<Option<Submitted>>> = units.iter().map(|_| Mutex::new(None)).collect();
        let dag = ListDag::from_predecessors(units.iter().map(|u| u.deps.clone()).collect());
        // A thread per unit (up to 64), not per slot: a unit is ready when its inputs are,
        // and the time it then waits for a slot is its submit wait.
        let threads = units.len().clamp(1, 64);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("nexusml-slurm-{i}"))
            .build()
            .map_err(|source| {
                SessionError::Engine(engine::EngineError::Pool {
                    jobs: threads,
                    source,
                })
            })?;
        let visit = |u: usize| {
            let unit = &units[u];
            let ready = t0.elapsed();
            // An array takes as many slots as tasks it may run at once.
            let want = match unit.kind {
                UnitKind::Array { .. } => unit.nodes.len().min(limit),
                UnitKind::Job => 1,
            };
            let throttle = self.max_jobs.map(|_| want);
            if !slots.take(want, &cancel) {
                return false;
            }
            let outcome = match slurm::submit(p, unit, &env, &tag, throttle) {
                Ok(id) => {
                    tracing::info!("{}: Slurm job {id}", slurm::describe(p, unit));
                    let tasks = match unit.kind {
                        UnitKind::Array { .. } => slurm::task_ids(p, unit)
                            .iter()
                            .map(|t| format!("{id}_{t}"))
                            .collect(),
                        UnitKind::Job => vec![id.clone()],
                    };
                    queue.follow(&id, tasks);
                    let end = queue.wait(&id);
                    if end.state == "COMPLETED" {
                        tracing::info!("{} ok (Slurm job {id})", slurm::describe(p, unit));
                    } else {
                        tracing::warn!("{}: Slurm job {id} {}", slurm::describe(p, unit), end.state);
                    }
                    Submitted {
                        end: Some(end),
                        ready,
                        error: None,
                    }
                }
                Err(e) => Submitted {
                    end: None,
                    ready,
                    error: Some(e.to_string()),
                },
            };
            slots.give(want);
            let ok = outcome.end.as_ref().is_some_and(|e| e.state == "COMPLETED");
            *results[u].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            ok
        };
        let walk = Walk {
            mask: &vec![true; units.len()],
            keep_going: session.request.keep_going,
            cancel: &cancel,
        };
        let walked = walker::walk(&pool, &dag, &walk, &visit, &|_, _| {});
        queue.close();
        let interrupted = cancel.load(Ordering::Relaxed);
        let all_ok = walked.iter().all(|w| *w == Walked::Visited { ok: true });

        // Every node is in the store now: a local pass answers each from it, which puts the
        // files back into this run directory and the output directory (`_latest` included).
        let (mut records, board) = if all_ok && !interrupted {
            let opts = engine::RunOptions {
                jobs: 1,
                ..session.run_options(setup)
            };
            let o = engine::run(p, &opts, &Silent)?;
            (o.records, o.blackboard)
        } else {
            (unfinished(mask), Blackboard::new(p.artifacts.len()))
        };
        let results: Vec<Option<Submitted>> = results
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        for (u, unit) in units.iter().enumerate() {
            overlay(
                p,
                unit,
                &units,
                walked[u],
                results[u].as_ref(),
                &env,
                &mut records,
            );
            for &v in &unit.nodes {
                setup.observer.node_finished(p, v, &records[v]);
            }
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
/// `cached`, the units' nodes are filled in by [`overlay`], the rest were not selected.
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

/// The first node of a unit that failed, as the failed unit's own run report says (the
/// unit's first node when there is none).
fn failed_node(p: &Pipeline, unit: &Unit, env: &JobEnv) -> NodeIx {
    inner_reports(p, unit, env)
        .into_iter()
        .find(|n| n.status == NodeStatus::Failed)
        .map_or(unit.nodes[0], |n| n.node)
}

/// One node as its job's own run report saw it.
struct Inner {
    node: NodeIx,
    status: NodeStatus,
    /// When it ran, from the start of the job's run (absent when it did not).
    span: Option<(Duration, Duration)>,
}

/// What the jobs' own run reports say of a unit's nodes.
fn inner_reports(p: &Pipeline, unit: &Unit, env: &JobEnv) -> Vec<Inner> {
    let mut out = Vec::new();
    let dirs: Vec<PathBuf> = match &unit.kind {
        UnitKind::Job => vec![env.job_dir.join(&unit.name)],
        UnitKind::Array { family } => super::slurm::task_ids(p, unit)
            .iter()
            .map(|t| env.job_dir.join(&unit.name).join(format!("{family}-{t}")))
            .collect(),
    };
    let millis = |v: &serde_json::Value| {
        v.as_f64()
            .filter(|m| m.is_finite() && *m >= 0.0)
            .map(|m| Duration::from_secs_f64(m / 1000.0))
    };
    for dir in dirs {
        let Ok(runs) = std::fs::read_dir(&dir) else {
            continue;
        };
        for run in runs.flatten() {
            let Ok(text) =
                crate::fsx::read_to_string(&run.path().join("report.json"), crate::fsx::STORE_ENTRY)
            else {
                continue;
            };
            let Ok(report) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            for n in report["nodes"].as_array().into_iter().flatten() {
                let (Some(id), Some(status)) = (n["id"].as_str(), n["status"].as_str()) else {
                    continue;
                };
                let Some(v) = p.node_index(id).filter(|v| unit.nodes.contains(v)) else {
                    continue;
                };
                let status = match status {
                    "ok" => NodeStatus::Ok,
                    "cached" => NodeStatus::Cached,
                    "failed" => NodeStatus::Failed,
                    _ => NodeStatus::Skipped,
                };
                let span = millis(&n["start_ms"]).zip(millis(&n["end_ms"]));
                out.push(Inner {
                    node: v,
                    status,
                    span,
                });
            }
        }
    }
    out
}

/// What a unit's job says of its nodes.
fn overlay(
    p: &Pipeline,
    unit: &Unit,
    units: &[Unit],
    walked: Walked<usize>,
    submitted: Option<&Submitted>,
    env: &JobEnv,
    records: &mut [NodeRecord],
) {
    let end = submitted.and_then(|s| s.end.as_ref());
    let job = end.map(|e| {
        Box::new(ClusterJob {
            id: e.id.clone(),
            state: e.state.clone(),
            submit_wait: submitted.map(|s| e.submitted.saturating_sub(s.ready)),
            queue_wait: e.started.map(|st| st.saturating_sub(e.submitted)),
        })
    });
    // The node whose failure this unit was skipped for: the failed unit's failed node.
    let culprit = |c: usize| p.nodes[failed_node(p, &units[c], env)].id.clone();
    // A node's time is what it took inside its job (as the job's own report says), not
    // the job's life as polling saw it; without a report, the job's window.
    let inner = if end.is_some() {
        inner_reports(p, unit, env)
    } else {
        Vec::new()
    };
    let inner_end = inner
        .iter()
        .filter_map(|n| n.span)
        .map(|(_, b)| b)
        .max()
        .unwrap_or_default();
    for &v in &unit.nodes {
        let r = &mut records[v];
        r.job = job.clone();
        r.thread = None;
        if let Some(e) = end {
            let span = inner.iter().find(|n| n.node == v).and_then(|n| n.span);
            (r.start, r.end) = match span {
                // Placed so the job's last node ends when the job was seen ended (polls
                // see a start late or not at all; the durations are the job's own).
                Some((a, b)) => {
                    let last = match unit.kind {
                        UnitKind::Job => inner_end,
                        UnitKind::Array { .. } => b,
                    };
                    let anchor = e.ended.saturating_sub(last).max(e.submitted);
                    (Some(anchor + a), Some(anchor + b))
                }
                None => (Some(e.started.unwrap_or(e.submitted)), Some(e.ended)),
            };
        }
        match walked {
            Walked::Visited { ok: true } => {
                // A node its job answered from the store (another node of the same key
                // finished first) is cached, as the job's own report says.
                let inner_status = inner.iter().find(|n| n.node == v).map(|n| n.status);
                r.status = match inner_status {
                    Some(NodeStatus::Cached) => NodeStatus::Cached,
                    _ => NodeStatus::Ok,
                };
                r.reasons = vec![Reason::RanAsJob {
                    scheduler: SLURM,
                    id: end.map(|e| e.id.clone()).unwrap_or_default(),
                }];
            }
            Walked::Visited { ok: false } => match (end, submitted.and_then(|s| s.error.as_ref())) {
                (_, Some(error)) => {
                    r.status = NodeStatus::Failed;
                    r.reasons.clear();
                    r.error = vec![error.clone()];
                }
                (Some(e), None) if e.state == "CANCELLED" => {
                    r.status = NodeStatus::Skipped;
                    r.reasons = vec![Reason::JobCancelled {
                        scheduler: SLURM,
                        id: e.id.clone(),
                        upstream: None,
                    }];
                }
                (Some(e), None) => {
                    let status = inner.iter().find(|n| n.node == v).map(|n| n.status);
                    let log = env.job_dir.join(match &unit.kind {
                        UnitKind::Array { .. } => format!("{}-{}_<task>.log", unit.name, e.id),
                        UnitKind::Job => format!("{}-{}.log", unit.name, e.id),
                    });
                    match status {
                        Some(s @ (NodeStatus::Ok | NodeStatus::Cached)) => {
                            r.status = if s == NodeStatus::Ok {
                                NodeStatus::Ok
                            } else {
                                NodeStatus::Cached
                            };
                            r.reasons = vec![Reason::RanAsJob {
                                scheduler: SLURM,
                                id: e.id.clone(),
                            }];
                        }
                        Some(NodeStatus::Skipped) => {
                            r.status = NodeStatus::Skipped;
                            r.reasons = vec![Reason::UpstreamFailed {
                                node: p.nodes[failed_node(p, unit, env)].id.clone(),
                            }];
                        }
                        _ => {
                            r.status = NodeStatus::Failed;
                            r.reasons.clear();
                            r.error = vec![format!(
                                "Slurm job {} ended {}; its log: {}",
                                e.id,
                                e.state,
                                log.display()
                            )];
                        }
                    }
                }
                (None, None) => {
                    r.status = NodeStatus::Skipped;
                    r.reasons = vec![Reason::Interrupted];
                }
            },
            Walked::UpstreamFailed(c) | Walked::Stopped(c) => {
                r.status = NodeStatus::Skipped;
                r.reasons = vec![Reason::UpstreamFailed { node: culprit(c) }];
            }
            Walked::Interrupted | Walked::Unselected => {
                r.status = NodeStatus::Skipped;
                r.reasons = vec![Reason::Interrupted];
            }
        }
    }
}
