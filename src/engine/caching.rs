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
use crate::graph::{ArtifactIx, Pipeline};
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
    fn ensure_value(&self, job: &Job<'_>, a: ArtifactIx) -> Result<(), String> {
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
        // The lookup under the store's lock, taken once (the key, which may hash a large
        // input file, is outside it): with several workers answering nodes, it is rarely
        // let go between them.
        let held = self.memo.store.hold();
        let mut detail = None;
        if !job.forced {
            match self.memo.lookup(v, &parts.key, job.board) {
                Lookup::Hit { restored } => return self.hit(job, restored, parts.key),
                Lookup::Miss(d) => detail = d,
            }
        }
        drop(held);
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

#[cfg(test)]
mod tests {
    use super::super::executor::{Observer, Silent};
    use super::super::run::{run, RunOptions};
    use super::super::NodeStatus;
    use crate::graph::Pipeline;
    use crate::op::{NoConfig, NodeContext, Op, OpError, OpSpec, Port, Registry};
    use crate::spec::PipelineSpec;
    use serde_json::Value;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// How often each test op ran, by op name.
    static SOURCE_RUNS: AtomicUsize = AtomicUsize::new(0);
    static STEP_RUNS: AtomicUsize = AtomicUsize::new(0);

    struct Source;
    impl Op for Source {
        fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
            SOURCE_RUNS.fetch_add(1, Ordering::SeqCst);
            ctx.output("out", Value::from(1))?;
            Ok(())
        }
    }

    /// Adds one to its input.
    struct Step;
    impl Op for Step {
        fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
            STEP_RUNS.fetch_add(1, Ordering::SeqCst);
            let x = ctx.input::<Value>("x")?.as_i64().unwrap_or(0);
            ctx.output("out", Value::from(x + 1))?;
            Ok(())
        }
    }

    /// `a → b → c`, on a registry of its own (`engine` sits below `ops`).
    fn chain() -> Pipeline {
        let mut r = Registry::empty();
        r.register(
            OpSpec::new("t.source", "1", |_: NoConfig| Ok(Source)).output(Port::new::<Value>("out", "")),
        );
        r.register(
            OpSpec::new("t.step", "x + 1", |_: NoConfig| Ok(Step))
                .input(Port::new::<Value>("x", ""))
                .output(Port::new::<Value>("out", "")),
        );
        let registry: &'static Registry = Box::leak(Box::new(r));
        let spec = PipelineSpec::parse(
            "[pipeline]\nname = \"chain\"\n\
             [nodes.a]\nop = \"t.source\"\nout = { out = \"a\" }\n\
             [nodes.b]\nop = \"t.step\"\nin = { x = \"a\" }\nout = { out = \"b\" }\n\
             [nodes.c]\nop = \"t.step\"\nin = { x = \"b\" }\nout = { out = \"c\" }\n",
            std::path::Path::new("chain.toml"),
        )
        .unwrap();
        Pipeline::build(&spec, registry).unwrap()
    }

    #[test]
    fn a_lost_stored_value_is_recomputed_from_its_producer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path().join("store")).unwrap());
        let p = chain();
        let opts = RunOptions {
            store: Some(Arc::clone(&store)),
            ..RunOptions::new(dir.path().join("run"))
        };
        let silent: &dyn Observer = &Silent;
        let first = run(&p, &opts, silent).unwrap();
        assert!(first.records.iter().all(|r| r.status == NodeStatus::Ok));
        // Damage `b`'s stored value (same size: the lookup still finds it), then ask for
        // `c` alone, forced: `b` is answered from the store, but its value must come back,
        // so `b` runs again (from `a`'s stored value) and `c` gets 3.
        let b = p.artifact_index("b").unwrap();
        let hex = first.blackboard.digest(b).unwrap().hex();
        let blob = dir.path().join("store/blobs").join(&hex[..2]).join(&hex);
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[0] ^= 0xff;
        std::fs::write(&blob, bytes).unwrap();
        let (source_runs, step_runs) = (
            SOURCE_RUNS.load(Ordering::SeqCst),
            STEP_RUNS.load(Ordering::SeqCst),
        );
        let c = p.node_index("c").unwrap();
        let mut mask = vec![false; 3];
        mask[c] = true;
        let again = run(
            &p,
            &RunOptions {
                mask: Some(mask),
                force: Some(vec![]),
                ..opts.clone()
            },
            silent,
        )
        .unwrap();
        assert_eq!(again.records[c].status, NodeStatus::Ok, "{:?}", again.records[c]);
        assert_eq!(
            again.records[p.node_index("b").unwrap()].status,
            NodeStatus::Cached
        );
        assert_eq!(
            SOURCE_RUNS.load(Ordering::SeqCst),
            source_runs,
            "`a`'s value was still stored"
        );
        assert_eq!(
            STEP_RUNS.load(Ordering::SeqCst),
            step_runs + 2,
            "`b` recomputed, `c` forced"
        );
        let out = p.artifact_index("c").unwrap();
        assert_eq!(*again.value::<Value>(&p, out).unwrap(), Value::from(3));
    }
}
