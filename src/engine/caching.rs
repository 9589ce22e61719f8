//! The caching executor: wraps another executor and answers from the artifact store what
//! it can, the way turborepo's visitor hashes a task, checks the run cache, then runs it.
//!
//! For each node it computes the key, looks it up (putting the node's files back on a
//! hit), says why the node must run on a miss, loads the inputs the node needs from the
//! store (recomputing a value whose blob was lost), hands the node to the executor it
//! wraps, and stores what came out. The walker and the wrapped executor know nothing of it.

use super::executor::{Executed, Executor, Job};
use super::memo::{Lookup, Memo};
use super::reason::Reason;
use super::record::{NodeRecord, NodeStatus};
use crate::graph::Pipeline;
use crate::store::Store;
use std::path::Path;
use std::sync::Mutex;

pub struct Caching<'a> {
    memo: Memo<'a>,
    inner: &'a dyn Executor,
    /// Held while a node is re-run to recover a lost stored value.
    refill: Vec<Mutex<()>>,
}

impl<'a> Caching<'a> {
    pub fn new(store: &'a Store, pipeline: &'a Pipeline, run_dir: &'a Path, inner: &'a dyn Executor) -> Self {
        Caching {
            memo: Memo::new(store, pipeline, run_dir),
            inner,
            refill: (0..pipeline.nodes.len()).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Put every input of the job's node on the board: loaded from the store when its
    /// producer was cached; recomputed when the stored value is missing or corrupt.
    fn ensure_inputs(&self, job: &Job<'_>) -> Result<(), String> {
        for b in &job.node().inputs {
            self.ensure_value(job, b.artifact)?;
        }
        Ok(())
    }

    /// Depth first over the producers whose stored values are lost, with an explicit stack
    /// (not recursion): a long chain of lost values must not overflow the thread's stack.
    fn ensure_value(&self, job: &Job<'_>, a: usize) -> Result<(), String> {
        let (pipeline, board) = (job.pipeline, job.board);
        // (artifact, its producer's inputs are on the board: recompute it now)
        let mut stack = vec![(a, false)];
        while let Some((a, inputs_ready)) = stack.pop() {
            if board.get(a).is_some() {
                continue;
            }
            let p = pipeline.artifacts[a].producer;
            let producer = &pipeline.nodes[p];
            let _one_at_a_time = self.refill[p].lock().unwrap_or_else(|e| e.into_inner());
            if board.get(a).is_some() {
                continue;
            }
            if !inputs_ready {
                let miss = match self.memo.load(a, board) {
                    Ok(()) => continue,
                    Err(e) => e,
                };
                tracing::warn!(
                    "{miss}: recomputing `{}` for artifact `{}`",
                    producer.id,
                    pipeline.artifacts[a].name
                );
                stack.push((a, true));
                stack.extend(producer.inputs.iter().rev().map(|b| (b.artifact, false)));
                continue;
            }
            let refill = job.refill_of(p);
            let out = self.inner.execute(&refill);
            if !out.record.error.is_empty() {
                return Err(format!(
                    "recomputing `{}` failed: {}",
                    producer.id,
                    out.record.error.join(": ")
                ));
            }
            if let Some(parts) = self.memo.key(p, board) {
                self.memo.save(p, &parts, board, &out.files, 0.0);
            }
            if board.get(a).is_none() {
                return Err(format!(
                    "recomputing `{}` did not produce `{}`",
                    producer.id, pipeline.artifacts[a].name
                ));
            }
        }
        Ok(())
    }

    fn hit(&self, job: &Job<'_>, restored: usize, key: crate::store::Digest) -> Executed {
        let at = job.elapsed();
        Executed {
            record: NodeRecord {
                reasons: vec![Reason::Cached { restored }],
                key: Some(key),
                start: Some(at),
                end: Some(at),
                thread: rayon::current_thread_index(),
                artifacts: job.node().outputs.iter().map(|b| b.artifact).collect(),
                ..NodeRecord::new(NodeStatus::Cached)
            },
            files: Vec::new(),
        }
    }
}

impl Executor for Caching<'_> {
    fn execute(&self, job: &Job<'_>) -> Executed {
        let v = job.node;
        let Some(parts) = self.memo.key(v, job.board) else {
            // Unreachable: every producer settled before its consumers start.
            return Executed::failed(vec!["an input has no digest".into()], job.elapsed());
        };
        let mut detail = None;
        if !job.forced {
            match self.memo.lookup(v, &parts.key, job.board) {
                Lookup::Hit { restored } => return self.hit(job, restored, parts.key),
                Lookup::Miss(d) => detail = d,
            }
        }
        if !job.selected {
            let id = &job.node().id;
            let mut out = Executed::failed(
                vec![format!(
                    "`{id}` is not selected, and the store has no result for its current inputs: \
                     run it first (add it to the selection, or `--to {id}`)"
                )],
                job.elapsed(),
            );
            out.record.key = Some(parts.key);
            return out;
        }
        let mut reasons = if job.forced {
            vec![Reason::Forced]
        } else {
            self.memo.explain(v, &parts)
        };
        reasons.extend(detail);
        if let Err(e) = self.ensure_inputs(job) {
            return Executed::failed(vec![e], job.elapsed());
        }
        let mut out = self.inner.execute(job);
        if out.record.status == NodeStatus::Ok {
            let ms = out.record.duration().unwrap_or_default().as_secs_f64() * 1e3;
            self.memo.save(v, &parts, job.board, &out.files, ms);
        }
        reasons.append(&mut out.record.reasons);
        out.record.reasons = reasons;
        out.record.key = Some(parts.key);
        out
    }
}
