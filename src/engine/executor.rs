//! The seam between the walker and a node: an executor runs one node whose inputs are
//! settled. Executors chain: [`InProcess`] runs the op; the caching executor
//! (`super::caching`) wraps another and answers from the store what it can; retries
//! (`super::retry`) and timeouts (`super::timeout`) wrap any executor. The walker never
//! knows which it was handed.

use super::blackboard::Blackboard;
use super::context::NodeCtx;
use super::record::{NodeRecord, NodeStatus};
use crate::graph::{ArtifactIx, Node, NodeIx, Pipeline};
use crate::op::WrittenFile;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Hooks for progress display; called from worker threads.
pub trait Observer: Sync {
    fn node_started(&self, _pipeline: &Pipeline, _node: NodeIx) {}
    fn node_finished(&self, _pipeline: &Pipeline, _node: NodeIx, _record: &NodeRecord) {}
}

/// An observer that does nothing.
pub struct Silent;
impl Observer for Silent {}

/// One node to run, with what it may touch.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub pipeline: &'a Pipeline,
    pub node: NodeIx,
    pub board: &'a Blackboard,
    pub run_dir: &'a Path,
    /// Once set, the node should stop: the run's flag (Ctrl-C), or an attempt's own,
    /// which its deadline sets too (the timeout executor's).
    pub cancel: &'a AtomicBool,
    pub observer: &'a dyn Observer,
    /// Parent of the node's tracing span.
    pub span: &'a tracing::Span,
    /// The start of the run, for the record's offsets.
    pub t0: Instant,
    /// Selected to run. An unselected node is in the run only because a selected one
    /// reads its outputs: only the store may answer for it.
    pub selected: bool,
    /// `--force`: run it even when the store has its result.
    pub forced: bool,
    /// Re-running a node to recover a lost stored value: outputs already present are kept.
    pub refill: bool,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// Set when this attempt's time ran out (the timeout executor's): an op that returns
    /// after it fails, whatever it answered, and none of its outputs are kept.
    pub expired: Option<&'a AtomicBool>,
}

impl Job<'_> {
    pub fn node(&self) -> &Node {
        &self.pipeline.nodes[self.node]
    }

    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// The same node, re-run to recover a lost value.
    pub fn refill_of(&self, node: NodeIx) -> Job<'_> {
        Job {
            node,
            refill: true,
            selected: true,
            forced: false,
            attempt: 1,
            expired: None,
            ..*self
        }
    }
}

/// What running a node produced: its record, and the files its op wrote (with their
/// bytes, for the store to keep).
pub struct Executed {
    pub record: NodeRecord,
    pub files: Vec<WrittenFile>,
}

impl Executed {
    pub fn failed(error: Vec<String>, at: Duration) -> Self {
        Executed {
            record: NodeRecord::failed(error, at),
            files: Vec::new(),
        }
    }
}

/// Runs nodes.
pub trait Executor: Send + Sync {
    fn execute(&self, job: &Job<'_>) -> Executed;
}

/// Runs the op on the calling worker thread. A panic fails the node, not the run.
pub struct InProcess;

impl Executor for InProcess {
    fn execute(&self, job: &Job<'_>) -> Executed {
        let node = job.node();
        if !job.selected {
            return Executed::failed(
                vec![format!(
                    "`{}` is not selected and nothing else can answer it",
                    node.id
                )],
                job.elapsed(),
            );
        }
        if !job.refill && job.attempt <= 1 {
            job.observer.node_started(job.pipeline, job.node);
        }
        let span = tracing::info_span!(parent: job.span, "node", id = %node.id, op = %node.op_name);
        let _entered = span.enter();
        let start = job.elapsed();
        let mut ctx = NodeCtx {
            pipeline: job.pipeline,
            node,
            board: job.board,
            run_dir: job.run_dir,
            cancel: job.cancel,
            staged: Default::default(),
            files: Vec::new(),
            refill: job.refill,
            attempt: job.attempt.max(1),
            exit_code: None,
        };
        let result = catch_unwind(AssertUnwindSafe(|| node.op.run(&mut ctx)));
        let end = job.elapsed();
        // Seen once, here: what the timeout executor reports follows this reading.
        let timed_out = job.expired.is_some_and(|f| f.load(Ordering::SeqCst));
        let mut error = match result {
            Ok(Ok(())) if job.refill || timed_out => Vec::new(),
            Ok(Ok(())) if ctx.wrote_every_output() => Vec::new(),
            Ok(Ok(())) => missing_outputs(node, &ctx.staged_artifacts(), job.pipeline),
            Ok(Err(e)) => error_chain(e.as_ref()),
            Err(payload) => vec![format!(
                "op `{}` panicked: {}",
                node.op_name,
                panic_message(&payload)
            )],
        };
        let mut written = Default::default();
        if error.is_empty() && !timed_out {
            match ctx.commit() {
                Ok(w) => written = w,
                Err(e) => error = error_chain(&e),
            }
        }
        let files = if error.is_empty() && !timed_out {
            std::mem::take(&mut ctx.files)
        } else {
            Vec::new()
        };
        Executed {
            record: NodeRecord {
                status: if error.is_empty() && !timed_out {
                    NodeStatus::Ok
                } else {
                    NodeStatus::Failed
                },
                start: Some(start),
                end: Some(end),
                thread: rayon::current_thread_index(),
                artifacts: written,
                error,
                exit_code: ctx.exit_code,
                timed_out,
                ..NodeRecord::new(NodeStatus::Ok)
            },
            files,
        }
    }
}

/// A successful op must have written every bound output its consumers wait for.
fn missing_outputs(node: &Node, written: &[ArtifactIx], pipeline: &Pipeline) -> Vec<String> {
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
