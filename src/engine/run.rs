//! Running a pipeline's nodes: the walker visits them, each through the executor chain
//! `Caching(Retry(Timeout(base)))` (no caching without a store): the store is consulted
//! once per node, each attempt gets its own time limit. Every node's record is collected.

use super::blackboard::Blackboard;
use super::caching::Caching;
use super::executor::{Executor, InProcess, Job, Observer};
use super::memo::Memo;
use super::reason::Reason;
use super::record::{NodeRecord, NodeStatus, RunStatus};
use super::retry::Retry;
use super::timeout::Timeout;
use super::walker::{self, Dag, Settled, Visit, Walk, Walked};
use crate::graph::{ArtifactIx, NodeIx, Pipeline};
use crate::store::Store;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start {jobs} worker threads: {source}")]
    Pool {
        jobs: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    #[error("--jobs must be at least 1")]
    NoJobs,
    #[error(
        "--jobs {jobs} is more than the limit of {limit} ({}): more worker threads only add \
         overhead, since no more nodes can run at once",
        limit_reason(*.limit, *.cores)
    )]
    TooManyJobs { jobs: usize, limit: usize, cores: usize },
}

fn limit_reason(limit: usize, cores: usize) -> String {
    if limit == MAX_JOBS {
        format!("at most {MAX_JOBS}, whatever the number of cores")
    } else {
        format!("{JOBS_PER_CORE} × {cores} available cores")
    }
}

/// Worker threads per available core that `--jobs` may ask for: room for nodes that wait
/// on files, without the pool's own overhead taking over.
pub const JOBS_PER_CORE: usize = 4;
/// A ceiling for big machines: a pipeline's waves are rarely wider, and a rayon pool's
/// idle search and wake-ups cost more per run as it grows (`-j 5000` took 23 s for a 2 ms
/// pipeline). The same bound as a node's cluster `cpus` (which become its `--jobs`).
pub const MAX_JOBS: usize = crate::spec::MAX_CPUS as usize;

/// The most worker threads a run may use on this machine:
/// `min(JOBS_PER_CORE × cores, MAX_JOBS)`.
pub fn max_jobs() -> usize {
    (JOBS_PER_CORE * cores()).min(MAX_JOBS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `jobs` if a run may use that many worker threads.
pub fn check_jobs(jobs: usize) -> Result<usize, EngineError> {
    let limit = max_jobs();
    if jobs == 0 {
        Err(EngineError::NoJobs)
    } else if jobs > limit {
        Err(EngineError::TooManyJobs {
            jobs,
            limit,
            cores: cores(),
        })
    } else {
        Ok(jobs)
    }
}

impl Dag for Pipeline {
    type Ix = NodeIx;
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
    fn predecessors(&self, v: NodeIx) -> &[NodeIx] {
        Pipeline::predecessors(self, v)
    }
    fn successors(&self, v: NodeIx) -> &[NodeIx] {
        Pipeline::successors(self, v)
    }
}

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Worker threads.
    pub jobs: usize,
    /// Run every branch that does not depend on a failure, instead of stopping at the first.
    pub keep_going: bool,
    /// Nodes to run (`None`: all). With a store, the unselected nodes they depend on are
    /// answered from it.
    pub mask: Option<Vec<bool>>,
    /// The artifact store: the caching executor answers nodes whose key is stored, and
    /// stores what runs.
    pub store: Option<Arc<Store>>,
    /// Run these nodes even when stored (`Some(empty)`: every node).
    pub force: Option<Vec<String>>,
    /// Where ops write files.
    pub run_dir: PathBuf,
    /// Set (e.g. by Ctrl-C) to stop starting nodes.
    pub cancel: Arc<AtomicBool>,
    /// Parent of every node's tracing span.
    pub span: tracing::Span,
    /// The executor that runs a node (default: [`InProcess`]); the store's caching
    /// executor wraps it.
    pub executor: Option<Arc<dyn Executor>>,
}

impl RunOptions {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            jobs: cores(),
            keep_going: false,
            mask: None,
            store: None,
            force: None,
            run_dir: run_dir.into(),
            cancel: Arc::new(AtomicBool::new(false)),
            span: tracing::Span::none(),
            executor: None,
        }
    }
}

/// The result of a run: one record per node (in pipeline order) and the artifacts.
pub struct RunOutcome {
    pub status: RunStatus,
    pub records: Vec<NodeRecord>,
    pub wall: Duration,
    pub blackboard: Blackboard,
    store: Option<Arc<Store>>,
}

impl RunOutcome {
    /// An outcome assembled from records (a cluster's jobs), with the values of `board`.
    pub fn from_records(
        records: Vec<NodeRecord>,
        wall: Duration,
        cancelled: bool,
        blackboard: Blackboard,
        store: Option<Arc<Store>>,
    ) -> Self {
        RunOutcome {
            status: run_status(cancelled, &records),
            records,
            wall,
            blackboard,
            store,
        }
    }

    /// An artifact's value: in memory, or loaded from the store when its producer was
    /// cached.
    pub fn value<T: std::any::Any + Send + Sync>(
        &self,
        pipeline: &Pipeline,
        artifact: ArtifactIx,
    ) -> Option<Arc<T>> {
        if self.blackboard.get(artifact).is_none() {
            let store = self.store.as_deref()?;
            let memo = Memo::new(store, pipeline, std::path::Path::new(""));
            if let Err(e) = memo.load(artifact, &self.blackboard) {
                tracing::warn!("{e}");
            }
        }
        self.blackboard.get_as::<T>(artifact)
    }
}

/// Run the pipeline (or its masked part) to completion on a pool of `opts.jobs` threads.
pub fn run(
    pipeline: &Pipeline,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunOutcome, EngineError> {
    check_jobs(opts.jobs)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .thread_name(|i| format!("nexusml-worker-{i}"))
        .build()
        .map_err(|source| EngineError::Pool {
            jobs: opts.jobs,
            source,
        })?;
    Ok(run_on(&pool, pipeline, opts, observer))
}

/// Run on a pool the caller owns (benchmarks reuse one).
pub fn run_on(
    pool: &rayon::ThreadPool,
    pipeline: &Pipeline,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> RunOutcome {
    Run::new(pipeline, opts, observer)
        .go(|walk, visit, settled| walker::walk(pool, pipeline, walk, visit, settled))
}

/// The `--legacy` path: the same nodes, one after another in a fixed (topological, then
/// file) order on the calling thread. Ops that use rayon inside run on a one-thread pool,
/// so nothing runs in parallel. Results equal the parallel path's.
pub fn run_sequential(
    pipeline: &Pipeline,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunOutcome, EngineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "nexusml-legacy".into())
        .build()
        .map_err(|source| EngineError::Pool { jobs: 1, source })?;
    let run = Run::new(pipeline, opts, observer);
    let order = pipeline.topological_order(&run.mask);
    Ok(pool.install(|| {
        run.go(|walk, visit, settled| walker::walk_in_order(pipeline, &order, walk, visit, settled))
    }))
}

/// One run's node bookkeeping.
struct Run<'a> {
    pipeline: &'a Pipeline,
    opts: &'a RunOptions,
    observer: &'a dyn Observer,
    selected: Vec<bool>,
    /// In this run: selected, or upstream of a selected node (answered from the store).
    mask: Vec<bool>,
    forced: Vec<bool>,
}

impl<'a> Run<'a> {
    fn new(pipeline: &'a Pipeline, opts: &'a RunOptions, observer: &'a dyn Observer) -> Self {
        let n = pipeline.nodes.len();
        let selected = opts.mask.clone().unwrap_or_else(|| vec![true; n]);
        let upstream = if opts.store.is_some() {
            pipeline.upstream_of(&selected)
        } else {
            vec![false; n]
        };
        let mask: Vec<bool> = (0..n).map(|i| selected[i] || upstream[i]).collect();
        // Only selected nodes are forced: the rest of the run comes from the store.
        let forced = match &opts.force {
            None => vec![false; n],
            Some(list) => pipeline
                .nodes
                .iter()
                .enumerate()
                .map(|(i, node)| selected[i] && (list.is_empty() || list.contains(&node.id)))
                .collect(),
        };
        Run {
            pipeline,
            opts,
            observer,
            selected,
            mask,
            forced,
        }
    }

    fn go(self, walk_with: impl FnOnce(&Walk<'_>, Visit<'_>, Settled<'_>) -> Vec<Walked>) -> RunOutcome {
        let (pipeline, opts) = (self.pipeline, self.opts);
        let t0 = Instant::now();
        let board = Blackboard::new(pipeline.artifacts.len());
        let base: &dyn Executor = opts.executor.as_deref().unwrap_or(&InProcess);
        // Each node's policy decides what the wrappers do; without one they pass through.
        let timeout = Timeout::new(base);
        let retry = Retry::new(&timeout);
        let caching = opts
            .store
            .as_deref()
            .map(|store| Caching::new(store, pipeline, &opts.run_dir, &retry));
        let chain: &dyn Executor = match &caching {
            Some(c) => c,
            None => &retry,
        };
        let records: Vec<OnceLock<NodeRecord>> = (0..pipeline.nodes.len()).map(|_| OnceLock::new()).collect();
        {
            let visit = |v: NodeIx| {
                let job = Job {
                    pipeline,
                    node: v,
                    board: &board,
                    run_dir: &opts.run_dir,
                    cancel: &opts.cancel,
                    observer: self.observer,
                    span: &opts.span,
                    t0,
                    selected: self.selected[v],
                    forced: self.forced[v],
                    refill: false,
                    attempt: 1,
                    expired: None,
                };
                let record = chain.execute(&job).record;
                let ok = record.status.succeeded();
                let _ = records[v].set(record);
                ok
            };
            let settled = |v: NodeIx, what: Walked| {
                let skip = match what {
                    Walked::Visited { .. } => None,
                    Walked::UpstreamFailed(c) => Some(Reason::UpstreamFailed {
                        node: pipeline.nodes[c].id.clone(),
                    }),
                    Walked::Stopped(c) => Some(Reason::Stopped {
                        by: pipeline.nodes[c].id.clone(),
                    }),
                    Walked::Interrupted => Some(Reason::Interrupted),
                    Walked::Unselected => Some(Reason::NotSelected),
                };
                if let Some(reason) = skip {
                    let _ = records[v].set(NodeRecord::skipped(reason));
                }
                if let Some(r) = records[v].get() {
                    self.observer.node_finished(pipeline, v, r);
                }
            };
            let walk = Walk {
                mask: &self.mask,
                keep_going: opts.keep_going,
                cancel: &opts.cancel,
            };
            walk_with(&walk, &visit, &settled);
        }
        drop(caching);
        let wall = t0.elapsed();
        let records: Vec<NodeRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                slot.into_inner().unwrap_or_else(|| {
                    NodeRecord::skipped(if self.mask[i] {
                        // Unreachable with an acyclic graph; reported rather than panicking.
                        Reason::NeverReady
                    } else {
                        Reason::NotSelected
                    })
                })
            })
            .collect();
        RunOutcome {
            status: run_status(opts.cancel.load(Ordering::Relaxed), &records),
            records,
            wall,
            blackboard: board,
            store: opts.store.clone(),
        }
    }
}

fn run_status(cancelled: bool, records: &[NodeRecord]) -> RunStatus {
    if cancelled {
        RunStatus::Interrupted
    } else if records.iter().any(|r| r.status == NodeStatus::Failed) {
        RunStatus::Failed
    } else {
        RunStatus::Ok
    }
}
