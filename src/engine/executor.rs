//! The seam between the scheduler and an op: an executor runs one node whose inputs are
//! ready. The scheduler decides first whether the node runs at all (the artifact store
//! may answer for it); it never knows how an executor runs it.

use super::blackboard::Blackboard;
use super::context::NodeCtx;
use crate::graph::{Node, Pipeline};
use crate::op::WrittenFile;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// One node to run, with what it may touch.
pub struct Job<'a> {
    pub pipeline: &'a Pipeline,
    pub node: usize,
    pub board: &'a Blackboard,
    pub run_dir: &'a Path,
    pub cancel: &'a AtomicBool,
    /// Re-running a node to recover a lost value: outputs already present are kept.
    pub refill: bool,
}

/// What running a node produced.
#[derive(Default)]
pub struct JobResult {
    /// Artifacts written to the board.
    pub written: Vec<usize>,
    /// Files the op wrote, with their bytes.
    pub files: Vec<WrittenFile>,
    /// The error and its causes, outermost first; empty on success.
    pub error: Vec<String>,
}

/// Runs nodes.
pub trait Executor: Sync {
    fn execute(&self, job: &Job<'_>) -> JobResult;
}

/// Runs the op on the calling worker thread. A panic fails the node, not the run.
pub struct InProcess;

impl Executor for InProcess {
    fn execute(&self, job: &Job<'_>) -> JobResult {
        let node = &job.pipeline.nodes[job.node];
        let mut ctx = NodeCtx {
            pipeline: job.pipeline,
            node,
            board: job.board,
            run_dir: job.run_dir,
            cancel: job.cancel,
            written: Vec::new(),
            files: Vec::new(),
            refill: job.refill,
        };
        let result = catch_unwind(AssertUnwindSafe(|| node.op.run(&mut ctx)));
        let written = std::mem::take(&mut ctx.written);
        let files = std::mem::take(&mut ctx.files);
        let error = match result {
            Ok(Ok(())) if job.refill => Vec::new(),
            Ok(Ok(())) => missing_outputs(node, &written, job.pipeline),
            Ok(Err(e)) => error_chain(e.as_ref()),
            Err(payload) => vec![format!(
                "op `{}` panicked: {}",
                node.op_name,
                panic_message(&payload)
            )],
        };
        JobResult {
            written,
            files,
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
