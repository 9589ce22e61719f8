//! Runs a pipeline's nodes on a rayon pool as soon as their inputs are ready.
//!
//! There is no central dispatcher: the worker that finishes a node decrements its
//! successors' pending counts and starts the ones that reach zero, running one of them
//! itself (no hand-off to another thread on a chain) and spawning the rest. The calling
//! thread only waits for the scope to end.

use super::blackboard::Blackboard;
use super::executor::{Executor, InProcess, Job};
use super::memo::{Lookup, Memo};
use crate::graph::Pipeline;
use crate::store::{Digest, Store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
/// pipeline).
pub const MAX_JOBS: usize = 256;

/// The most worker threads a run may use on this machine:
/// `min(JOBS_PER_CORE × cores, MAX_JOBS)`.
pub fn max_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (JOBS_PER_CORE * cores).min(MAX_JOBS)
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
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    } else {
        Ok(jobs)
    }
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Ok,
    /// Answered from the artifact store: not run.
    Cached,
    Failed,
    Skipped,
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub status: NodeStatus,
    /// Why a node ran (`param `trees` 200→300`), was cached or was skipped.
    pub reason: Option<String>,
    /// Its key in the artifact store, when a store is used.
    pub key: Option<Digest>,
    /// Inputs whose content changed since the node last ran.
    pub changed_inputs: Vec<String>,
    /// Offsets from the start of the run.
    pub start: Option<Duration>,
    pub end: Option<Duration>,
    /// Index of the rayon worker that ran it.
    pub thread: Option<usize>,
    /// Indices of the artifacts it wrote.
    pub artifacts: Vec<usize>,
    /// The error and its causes, outermost first.
    pub error: Vec<String>,
}

impl NodeRecord {
    fn skipped(reason: String) -> Self {
        NodeRecord {
            status: NodeStatus::Skipped,
            reason: Some(reason),
            key: None,
            changed_inputs: Vec::new(),
            start: None,
            end: None,
            thread: None,
            artifacts: Vec::new(),
            error: Vec::new(),
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        Some(self.end? - self.start?)
    }
}

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Interrupted,
}

/// Hooks for progress display; called from worker threads.
pub trait Observer: Sync {
    fn node_started(&self, _pipeline: &Pipeline, _node: usize) {}
    fn node_finished(&self, _pipeline: &Pipeline, _node: usize, _record: &NodeRecord) {}
}

/// An observer that does nothing.
pub struct Silent;
impl Observer for Silent {}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads.
    pub jobs: usize,
    /// Run every branch that does not depend on a failure, instead of stopping at the first.
    pub keep_going: bool,
    /// Nodes to run (`None`: all). With a store, the unselected nodes they depend on are
    /// answered from it.
    pub mask: Option<Vec<bool>>,
    /// The artifact store: skip nodes whose key is stored, store what runs.
    pub store: Option<Arc<Store>>,
    /// Run these nodes even when stored (`Some(empty)`: every node).
    pub force: Option<Vec<String>>,
    /// Where ops write files.
    pub run_dir: PathBuf,
    /// Set (e.g. by Ctrl-C) to stop starting nodes.
    pub cancel: Arc<AtomicBool>,
    /// Parent of every node's tracing span.
    pub span: tracing::Span,
}

impl RunOptions {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_going: false,
            mask: None,
            store: None,
            force: None,
            run_dir: run_dir.into(),
            cancel: Arc::new(AtomicBool::new(false)),
            span: tracing::Span::none(),
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
    /// An artifact's value: in memory, or loaded from the store when its producer was
    /// cached.
    pub fn value<T: std::any::Any + Send + Sync>(
        &self,
        pipeline: &Pipeline,
        artifact: usize,
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

/// What the run does with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Selected: run it unless the store has it.
    Run,
    /// Not selected, but a selected node needs it: the store must have it.
    FromStore,
    /// Not part of this run.
    Off,
}

const NONE: usize = usize::MAX;

struct State<'a> {
    pipeline: &'a Pipeline,
    opts: &'a RunOptions,
    observer: &'a dyn Observer,
    board: Blackboard,
    executor: &'a dyn Executor,
    memo: Option<Memo<'a>>,
    mode: Vec<Mode>,
    /// Nodes in this run (`mode != Off`).
    mask: Vec<bool>,
    force: Vec<bool>,
    /// Held while a node is re-run to recover a lost stored value.
    refill: Vec<Mutex<()>>,
    pending: Vec<AtomicUsize>,
    /// The failed node that a skipped node's skip traces back to.
    root_cause: Vec<AtomicUsize>,
    records: Vec<OnceLock<NodeRecord>>,
    /// Fail-fast: the first failure stops new starts.
    stopped_by: Mutex<Option<usize>>,
    stop: AtomicBool,
    t0: Instant,
}

/// Run the pipeline (or its masked part) to completion.
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

/// The `--legacy` path: the same nodes, one after another in a fixed (topological, then
/// file) order on the calling thread, with no scheduler. Ops that use rayon inside run on
/// a one-thread pool, so nothing runs in parallel. Results equal the parallel path's.
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
    let state = State::new(pipeline, opts, observer, &InProcess);
    let order = pipeline.topological_order(&state.mask);
    pool.install(|| {
        for v in order {
            let record = state.execute(v);
            state.finish(v, record);
        }
    });
    Ok(state.outcome())
}

/// Run on a pool the caller owns (benchmarks reuse one).
pub fn run_on(
    pool: &rayon::ThreadPool,
    pipeline: &Pipeline,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> RunOutcome {
    let n = pipeline.nodes.len();
    let state = State::new(pipeline, opts, observer, &InProcess);
    let roots: Vec<usize> = (0..n)
        .filter(|&i| state.mask[i] && state.pending[i].load(Ordering::Relaxed) == 0)
        .collect();
    pool.scope(|scope| {
        for root in roots {
            let state = &state;
            scope.spawn(move |scope| state.drive(scope, root));
        }
    });
    state.outcome()
}

impl<'a> State<'a> {
    fn new(
        pipeline: &'a Pipeline,
        opts: &'a RunOptions,
        observer: &'a dyn Observer,
        executor: &'a dyn Executor,
    ) -> Self {
        let n = pipeline.nodes.len();
        let selected = opts.mask.clone().unwrap_or_else(|| vec![true; n]);
        let upstream = if opts.store.is_some() {
            pipeline.upstream_of(&selected)
        } else {
            vec![false; n]
        };
        let mode: Vec<Mode> = (0..n)
            .map(|i| {
                if selected[i] {
                    Mode::Run
                } else if upstream[i] {
                    Mode::FromStore
                } else {
                    Mode::Off
                }
            })
            .collect();
        let mask: Vec<bool> = mode.iter().map(|m| *m != Mode::Off).collect();
        // Only selected nodes are forced: the rest of the run comes from the store.
        let force: Vec<bool> = match &opts.force {
            None => vec![false; n],
            Some(list) => pipeline
                .nodes
                .iter()
                .zip(&mode)
                .map(|(node, m)| *m == Mode::Run && (list.is_empty() || list.contains(&node.id)))
                .collect(),
        };
        let memo = opts
            .store
            .as_deref()
            .map(|store| Memo::new(store, pipeline, &opts.run_dir));
        let pending: Vec<AtomicUsize> = (0..n)
            .map(|i| AtomicUsize::new(pipeline.predecessors(i).iter().filter(|&&p| mask[p]).count()))
            .collect();
        State {
            pipeline,
            opts,
            observer,
            board: Blackboard::new(pipeline.artifacts.len()),
            executor,
            memo,
            mode,
            force,
            refill: (0..n).map(|_| Mutex::new(())).collect(),
            pending,
            root_cause: (0..n).map(|_| AtomicUsize::new(NONE)).collect(),
            records: (0..n).map(|_| OnceLock::new()).collect(),
            stopped_by: Mutex::new(None),
            stop: AtomicBool::new(false),
            t0: Instant::now(),
            mask,
        }
    }

    /// Run `v`, then keep going with one of the successors it made ready.
    fn drive<'s>(&'s self, scope: &rayon::Scope<'s>, mut v: usize) {
        loop {
            let record = self.execute(v);
            let mut ready = self.finish(v, record).into_iter();
            let next = ready.next();
            for other in ready {
                scope.spawn(move |scope| self.drive(scope, other));
            }
            match next {
                Some(w) => v = w,
                None => return,
            }
        }
    }

    /// Record a finished node, propagate a failure's consequences, and return the
    /// successors that became ready.
    fn finish(&self, v: usize, record: NodeRecord) -> Vec<usize> {
        let ok = matches!(record.status, NodeStatus::Ok | NodeStatus::Cached);
        let cause = match record.status {
            NodeStatus::Ok | NodeStatus::Cached => NONE,
            NodeStatus::Failed => v,
            NodeStatus::Skipped => self.root_cause[v].load(Ordering::Acquire),
        };
        if record.status == NodeStatus::Failed && !self.opts.keep_going {
            let mut first = self.stopped_by.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(v);
            self.stop.store(true, Ordering::Release);
        }
        self.observer.node_finished(self.pipeline, v, &record);
        let _ = self.records[v].set(record);
        let mut ready = Vec::new();
        for &w in self.pipeline.successors(v) {
            if !self.mask[w] {
                continue;
            }
            if !ok {
                let _ = self.root_cause[w].compare_exchange(NONE, cause, Ordering::AcqRel, Ordering::Acquire);
            }
            if self.pending[w].fetch_sub(1, Ordering::AcqRel) == 1 {
                ready.push(w);
            }
        }
        ready
    }

    fn outcome(self) -> RunOutcome {
        let wall = self.t0.elapsed();
        let mut records = Vec::with_capacity(self.records.len());
        for (i, slot) in self.records.into_iter().enumerate() {
            records.push(slot.into_inner().unwrap_or_else(|| {
                if self.mask[i] {
                    // Unreachable with an acyclic graph; reported rather than panicking.
                    NodeRecord::skipped("never became ready".into())
                } else {
                    NodeRecord::skipped("not selected".into())
                }
            }));
        }
        let status = if self.opts.cancel.load(Ordering::Relaxed) {
            RunStatus::Interrupted
        } else if records.iter().any(|r| r.status == NodeStatus::Failed) {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
        RunOutcome {
            status,
            records,
            wall,
            blackboard: self.board,
            store: self.opts.store.clone(),
        }
    }

    fn execute(&self, v: usize) -> NodeRecord {
        if self.opts.cancel.load(Ordering::Relaxed) {
            return NodeRecord::skipped("not started: the run was interrupted".into());
        }
        let cause = self.root_cause[v].load(Ordering::Acquire);
        if cause != NONE {
            return NodeRecord::skipped(format!(
                "upstream node `{}` failed",
                self.pipeline.nodes[cause].id
            ));
        }
        if self.stop.load(Ordering::Acquire) {
            let first = self.stopped_by.lock().unwrap_or_else(|e| e.into_inner());
            let by = first.map_or("another node", |i| self.pipeline.nodes[i].id.as_str());
            return NodeRecord::skipped(format!(
                "not started: `{by}` failed (fail-fast; --keep-going runs independent branches)"
            ));
        }
        let Some(memo) = &self.memo else {
            return self.run_node(v, None, Vec::new(), Vec::new());
        };
        let Some(parts) = memo.key(v, &self.board) else {
            // Unreachable: every producer finished before its consumers start.
            return self.failed(vec!["an input has no digest".into()]);
        };
        let mut detail = None;
        if !self.force[v] {
            match memo.lookup(v, &parts.key, &self.board) {
                Lookup::Hit { restored } => {
                    let record = NodeRecord {
                        status: NodeStatus::Cached,
                        reason: Some(if restored == 0 {
                            "cached".into()
                        } else {
                            format!("cached; {restored} file(s) restored")
                        }),
                        key: Some(parts.key),
                        changed_inputs: Vec::new(),
                        start: Some(self.t0.elapsed()),
                        end: Some(self.t0.elapsed()),
                        thread: rayon::current_thread_index(),
                        artifacts: self.pipeline.nodes[v]
                            .outputs
                            .iter()
                            .map(|b| b.artifact)
                            .collect(),
                        error: Vec::new(),
                    };
                    return record;
                }
                Lookup::Miss(d) => detail = d,
            }
        }
        if self.mode[v] == Mode::FromStore {
            let id = &self.pipeline.nodes[v].id;
            let mut record = self.failed(vec![format!(
                "`{id}` is not selected, and the store has no result for its current inputs: \
                     run it first (add it to the selection, or `--to {id}`)"
            )]);
            record.key = Some(parts.key);
            return record;
        }
        let mut reasons = if self.force[v] {
            vec!["forced".to_string()]
        } else {
            memo.explain(v, &parts)
        };
        reasons.extend(detail);
        let changed: Vec<String> = reasons
            .iter()
            .filter_map(|r| r.strip_prefix("input `"))
            .filter_map(|r| r.split('`').next())
            .map(str::to_string)
            .collect();
        if let Err(e) = self.ensure_inputs(v) {
            return self.failed(vec![e]);
        }
        self.run_node(v, Some(&parts), reasons, changed)
    }

    fn failed(&self, error: Vec<String>) -> NodeRecord {
        NodeRecord {
            status: NodeStatus::Failed,
            reason: None,
            key: None,
            changed_inputs: Vec::new(),
            start: Some(self.t0.elapsed()),
            end: Some(self.t0.elapsed()),
            thread: rayon::current_thread_index(),
            artifacts: Vec::new(),
            error,
        }
    }

    /// Run node `v` through the executor; with a store, keep what it produced.
    fn run_node(
        &self,
        v: usize,
        parts: Option<&super::key::KeyParts>,
        reasons: Vec<String>,
        changed_inputs: Vec<String>,
    ) -> NodeRecord {
        let node = &self.pipeline.nodes[v];
        self.observer.node_started(self.pipeline, v);
        let span = tracing::info_span!(parent: &self.opts.span, "node", id = %node.id, op = %node.op_name);
        let _entered = span.enter();
        let start = self.t0.elapsed();
        let result = self.executor.execute(&self.job(v, false));
        let end = self.t0.elapsed();
        if result.error.is_empty() {
            if let (Some(memo), Some(parts)) = (&self.memo, parts) {
                memo.save(v, parts, &self.board, &result, (end - start).as_secs_f64() * 1e3);
            }
        }
        NodeRecord {
            status: if result.error.is_empty() {
                NodeStatus::Ok
            } else {
                NodeStatus::Failed
            },
            reason: (!reasons.is_empty()).then(|| format!("ran: {}", reasons.join("; "))),
            key: parts.map(|p| p.key),
            changed_inputs,
            start: Some(start),
            end: Some(end),
            thread: rayon::current_thread_index(),
            artifacts: result.written,
            error: result.error,
        }
    }

    fn job(&self, v: usize, refill: bool) -> Job<'_> {
        Job {
            pipeline: self.pipeline,
            node: v,
            board: &self.board,
            run_dir: &self.opts.run_dir,
            cancel: &self.opts.cancel,
            refill,
        }
    }

    /// Put every input of `v` on the board: loaded from the store when its producer was
    /// cached; recomputed when the stored value is missing or corrupt.
    fn ensure_inputs(&self, v: usize) -> Result<(), String> {
        for b in &self.pipeline.nodes[v].inputs {
            self.ensure_value(b.artifact)?;
        }
        Ok(())
    }

    /// Depth first over the producers whose stored values are lost, with an explicit stack
    /// (not recursion): a long chain of lost values must not overflow the thread's stack.
    fn ensure_value(&self, a: usize) -> Result<(), String> {
        if self.board.get(a).is_some() {
            return Ok(());
        }
        let Some(memo) = &self.memo else {
            return Err(format!(
                "artifact `{}` has no value",
                self.pipeline.artifacts[a].name
            ));
        };
        // (artifact, its producer's inputs are on the board: recompute it now)
        let mut stack = vec![(a, false)];
        while let Some((a, inputs_ready)) = stack.pop() {
            if self.board.get(a).is_some() {
                continue;
            }
            let p = self.pipeline.artifacts[a].producer;
            let producer = &self.pipeline.nodes[p];
            let _one_at_a_time = self.refill[p].lock().unwrap_or_else(|e| e.into_inner());
            if self.board.get(a).is_some() {
                continue;
            }
            if !inputs_ready {
                let miss = match memo.load(a, &self.board) {
                    Ok(()) => continue,
                    Err(e) => e,
                };
                tracing::warn!(
                    "{miss}: recomputing `{}` for artifact `{}`",
                    producer.id,
                    self.pipeline.artifacts[a].name
                );
                stack.push((a, true));
                stack.extend(producer.inputs.iter().rev().map(|b| (b.artifact, false)));
                continue;
            }
            let result = self.executor.execute(&self.job(p, true));
            if !result.error.is_empty() {
                return Err(format!(
                    "recomputing `{}` failed: {}",
                    producer.id,
                    result.error.join(": ")
                ));
            }
            if let Some(parts) = memo.key(p, &self.board) {
                memo.save(p, &parts, &self.board, &result, 0.0);
            }
            if self.board.get(a).is_none() {
                return Err(format!(
                    "recomputing `{}` did not produce `{}`",
                    producer.id, self.pipeline.artifacts[a].name
                ));
            }
        }
        Ok(())
    }
}
