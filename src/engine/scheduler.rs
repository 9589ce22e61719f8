//! Runs a pipeline's nodes on a rayon pool as soon as their inputs are ready.
//!
//! There is no central dispatcher: the worker that finishes a node decrements its
//! successors' pending counts and starts the ones that reach zero, running one of them
//! itself (no hand-off to another thread on a chain) and spawning the rest. The calling
//! thread only waits for the scope to end.

use super::blackboard::Blackboard;
use super::context::NodeContext;
use crate::graph::{Node, Pipeline};
use std::panic::{catch_unwind, AssertUnwindSafe};
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
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Ok,
    Failed,
    Skipped,
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub status: NodeStatus,
    /// Why a node was skipped.
    pub reason: Option<String>,
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
    /// Nodes to run (`None`: all).
    pub mask: Option<Vec<bool>>,
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
}

const NONE: usize = usize::MAX;

struct State<'a> {
    pipeline: &'a Pipeline,
    opts: &'a RunOptions,
    observer: &'a dyn Observer,
    board: Blackboard,
    mask: Vec<bool>,
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
    if opts.jobs == 0 {
        return Err(EngineError::NoJobs);
    }
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
    let n = pipeline.nodes.len();
    let mask = opts.mask.clone().unwrap_or_else(|| vec![true; n]);
    let state = State::new(pipeline, opts, observer, mask);
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
    let mask = opts.mask.clone().unwrap_or_else(|| vec![true; n]);
    let state = State::new(pipeline, opts, observer, mask);
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
        mask: Vec<bool>,
    ) -> Self {
        let n = pipeline.nodes.len();
        let pending: Vec<AtomicUsize> = (0..n)
            .map(|i| AtomicUsize::new(pipeline.predecessors(i).iter().filter(|&&p| mask[p]).count()))
            .collect();
        State {
            pipeline,
            opts,
            observer,
            board: Blackboard::new(pipeline.artifacts.len()),
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
        let ok = record.status == NodeStatus::Ok;
        let cause = match record.status {
            NodeStatus::Ok => NONE,
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
        }
    }

    fn execute(&self, v: usize) -> NodeRecord {
        let node = &self.pipeline.nodes[v];
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
        self.observer.node_started(self.pipeline, v);
        let span = tracing::info_span!(parent: &self.opts.span, "node", id = %node.id, op = %node.op_name);
        let _entered = span.enter();
        let start = self.t0.elapsed();
        let mut ctx = NodeContext {
            pipeline: self.pipeline,
            node,
            board: &self.board,
            run_dir: &self.opts.run_dir,
            cancel: &self.opts.cancel,
            written: Vec::new(),
        };
        let result = catch_unwind(AssertUnwindSafe(|| node.op.run(&mut ctx)));
        let written = std::mem::take(&mut ctx.written);
        let end = self.t0.elapsed();
        let error = match result {
            Ok(Ok(())) => missing_outputs(node, &written, self.pipeline),
            Ok(Err(e)) => error_chain(e.as_ref()),
            Err(payload) => vec![format!(
                "op `{}` panicked: {}",
                node.op_name,
                panic_message(&payload)
            )],
        };
        NodeRecord {
            status: if error.is_empty() {
                NodeStatus::Ok
            } else {
                NodeStatus::Failed
            },
            reason: None,
            start: Some(start),
            end: Some(end),
            thread: rayon::current_thread_index(),
            artifacts: written,
            error,
        }
    }
}

/// A successful op must have written every bound output its consumers wait for.
fn missing_outputs(node: &Node, written: &[usize], pipeline: &Pipeline) -> Vec<String> {
    let missing: Vec<String> = node
        .outputs
        .iter()
        .filter(|b| !written.contains(&b.artifact))
        .map(|b| {
            format!(
                "`{}` (artifact `{}`)",
                b.port, pipeline.artifacts[b.artifact].name
            )
        })
        .collect();
    if missing.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "op `{}` finished without writing output {}",
            node.op_name,
            missing.join(", ")
        )]
    }
}

/// The error's message and each of its sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        // thiserror messages often embed their source; don't say it twice.
        if !chain.last().is_some_and(|last| last.ends_with(&msg)) {
            chain.push(msg);
        }
        cur = s.source();
    }
    chain
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-text panic payload)".into()
    }
}
