//! The retry executor: a node whose policy allows `retries` is run again after a failed
//! attempt, when `retry_on` names the failure (any, an exit code, a timeout), after a
//! delay that grows by its `backoff` (with optional jitter). Every attempt is recorded;
//! the reasons say why it was retried, or why not. A cancelled run retries nothing.

use super::executor::{Executed, Executor, Job};
use super::reason::Reason;
use super::record::{Attempt, NodeRecord, NodeStatus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a wait between attempts looks at the run's cancel flag.
const POLL: Duration = Duration::from_millis(20);

pub struct Retry<'a> {
    inner: &'a dyn Executor,
}

impl<'a> Retry<'a> {
    pub fn new(inner: &'a dyn Executor) -> Self {
        Retry { inner }
    }
}

impl Executor for Retry<'_> {
    fn execute(&self, job: &Job<'_>) -> Executed {
        let node = job.node();
        let policy = &node.policy;
        if policy.retries == 0 {
            return self.inner.execute(job);
        }
        let of = policy.attempts();
        let mut attempts = Vec::with_capacity(of as usize);
        let mut reasons = Vec::new();
        let mut start = None;
        let mut n = 1;
        loop {
            let out = self.inner.execute(&Job { attempt: n, ..*job });
            let r = &out.record;
            let at = job.elapsed();
            start = start.or(r.start);
            attempts.push(Attempt {
                number: n,
                start: r.start.unwrap_or(at),
                end: r.end.unwrap_or(at),
                error: r.error.clone(),
                exit_code: r.exit_code,
                timed_out: r.timed_out,
            });
            let stop = if r.status != NodeStatus::Failed || n == of {
                None
            } else if job.cancel.load(Ordering::SeqCst) {
                Some("the run was interrupted".to_string())
            } else if !policy.retry_on.matches(r.exit_code, r.timed_out) {
                Some(format!(
                    "{} is not in `retry_on` ({})",
                    failure(r),
                    policy.retry_on
                ))
            } else {
                None
            };
            if r.status != NodeStatus::Failed || n == of || stop.is_some() {
                reasons.extend(stop.map(|why| Reason::NotRetried { why }));
                return finish(out, attempts, reasons, start);
            }
            let first = r.error.first().cloned().unwrap_or_else(|| "failed".into());
            let delay = policy.delay_before(n + 1, jitter_unit(&node.id, n));
            tracing::warn!(
                parent: job.span,
                "node `{}`: attempt {n}/{of} failed: {first}; retrying in {}",
                node.id,
                crate::clock::format_ms(delay.as_secs_f64() * 1e3)
            );
            reasons.push(Reason::Retried {
                attempt: n,
                of,
                error: first,
            });
            if !wait(delay, job) {
                reasons.push(Reason::NotRetried {
                    why: "the run was interrupted".into(),
                });
                return finish(out, attempts, reasons, start);
            }
            n += 1;
        }
    }
}

/// The last attempt's result, with every attempt and the reasons.
fn finish(
    mut out: Executed,
    attempts: Vec<Attempt>,
    mut reasons: Vec<Reason>,
    start: Option<Duration>,
) -> Executed {
    reasons.append(&mut out.record.reasons);
    out.record.reasons = reasons;
    out.record.attempts = attempts;
    out.record.start = start.or(out.record.start);
    out
}

/// A failure as `retry_on` names it.
fn failure(r: &NodeRecord) -> String {
    if r.timed_out {
        "a timeout".into()
    } else if let Some(code) = r.exit_code {
        format!("exit code {code}")
    } else {
        "a failure without an exit code".into()
    }
}

/// Wait `delay`, unless the run is cancelled meanwhile: whether the wait ran out.
fn wait(delay: Duration, job: &Job<'_>) -> bool {
    let until = Instant::now() + delay;
    loop {
        if job.cancel.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(POLL));
    }
}

/// A number in [0, 1) that differs between nodes, attempts and processes, so nodes that
/// failed together spread their retries. It only decides when to retry, never a result.
fn jitter_unit(node: &str, attempt: u32) -> f64 {
    use std::hash::BuildHasher;
    let h = std::collections::hash_map::RandomState::new().hash_one((node, attempt));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::super::executor::Silent;
    use super::super::run::{run, RunOptions};
    use crate::graph::ArtifactIx;
    use crate::graph::Pipeline;
    use crate::op::{NoConfig, NodeContext, Op, OpError, OpSpec, Port, Registry};
    use crate::spec::PipelineSpec;
    use serde_json::Value;
    use std::sync::atomic::{AtomicU32, Ordering};

    static RUNS: AtomicU32 = AtomicU32::new(0);

    /// Writes its output, then fails on its first two runs (per test: the counter is
    /// reset by the one test that uses it).
    struct Flaky;
    impl Op for Flaky {
        fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
            let n = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
            ctx.output("out", Value::from(n))?;
            if n <= 2 {
                return Err(format!("flaky failure {n}").into());
            }
            Ok(())
        }
    }

    fn pipeline(retries: u32) -> Pipeline {
        let mut r = Registry::empty();
        r.register(OpSpec::new("t.flaky", "", |_: NoConfig| Ok(Flaky)).output(Port::new::<Value>("out", "")));
        let registry: &'static Registry = Box::leak(Box::new(r));
        let spec = PipelineSpec::parse(
            &format!(
                "[pipeline]\nname = \"flaky\"\nretry_delay = \"0s\"\n\
                 [nodes.a]\nop = \"t.flaky\"\nretries = {retries}\nout = {{ out = \"a\" }}\n"
            ),
            std::path::Path::new("flaky.toml"),
        )
        .unwrap();
        Pipeline::build(&spec, registry).unwrap()
    }

    #[test]
    fn a_failed_attempt_leaves_nothing_behind_and_every_attempt_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        RUNS.store(0, Ordering::SeqCst);
        let p = pipeline(2);
        let out = run(&p, &RunOptions::new(dir.path()), &Silent).unwrap();
        let r = &out.records[0];
        // Each failed attempt wrote its output first: staged, never on the board, so
        // the third attempt's write is no "written twice".
        assert_eq!(r.status, super::NodeStatus::Ok, "{r:?}");
        assert_eq!(
            *out.blackboard.get_as::<Value>(ArtifactIx(0)).unwrap(),
            Value::from(3)
        );
        let numbers: Vec<u32> = r.attempts.iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(r.attempts[0].error, ["flaky failure 1"]);
        assert!(r.attempts[2].error.is_empty());
        let reasons: Vec<String> = r.reasons.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "attempt 1/3 failed (flaky failure 1), retried",
                "attempt 2/3 failed (flaky failure 2), retried"
            ]
        );

        RUNS.store(0, Ordering::SeqCst);
        let p = pipeline(1);
        let out = run(&p, &RunOptions::new(dir.path()), &Silent).unwrap();
        let r = &out.records[0];
        assert_eq!(r.status, super::NodeStatus::Failed);
        assert_eq!(r.attempts.len(), 2);
        assert_eq!(r.error, ["flaky failure 2"]);
        assert!(
            out.blackboard.get(ArtifactIx(0)).is_none(),
            "a failed node's output is not on the board"
        );
    }
}
