//! The timeout executor: each attempt of a node with a `timeout` runs with a cancel flag
//! of its own, which a watchdog sets at the deadline, or as soon as the run's flag is set
//! (Ctrl-C). Ops that check the flag stop (a command's process group is signalled);
//! an attempt that ran out of time fails with `timed out after 10m`, whatever the op
//! answered, and none of its outputs are kept.

use super::executor::{Executed, Executor, Job};
use super::record::NodeStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the watchdog passes the run's cancel flag on.
const POLL: Duration = Duration::from_millis(20);

pub struct Timeout<'a> {
    inner: &'a dyn Executor,
}

impl<'a> Timeout<'a> {
    pub fn new(inner: &'a dyn Executor) -> Self {
        Timeout { inner }
    }
}

impl Executor for Timeout<'_> {
    fn execute(&self, job: &Job<'_>) -> Executed {
        let Some(limit) = job.node().policy.timeout else {
            return self.inner.execute(job);
        };
        let cancel = AtomicBool::new(job.cancel.load(Ordering::SeqCst));
        let expired = AtomicBool::new(false);
        let done = AtomicBool::new(false);
        let deadline = Instant::now() + limit;
        let mut out = std::thread::scope(|s| {
            let watchdog = s.spawn(|| loop {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                if job.cancel.load(Ordering::SeqCst) {
                    cancel.store(true, Ordering::SeqCst);
                }
                let now = Instant::now();
                if now >= deadline {
                    // Expired first: whoever sees the cancel flag then sees why.
                    expired.store(true, Ordering::SeqCst);
                    cancel.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::park_timeout((deadline - now).min(POLL));
            });
            let attempt = Job {
                cancel: &cancel,
                expired: Some(&expired),
                ..*job
            };
            let out = self.inner.execute(&attempt);
            done.store(true, Ordering::SeqCst);
            watchdog.thread().unpark();
            out
        });
        // An executor that does not read `expired` (not `InProcess`) is judged here.
        let timed_out =
            out.record.timed_out || (expired.load(Ordering::SeqCst) && out.record.status != NodeStatus::Ok);
        if timed_out {
            out.record.timed_out = true;
            out.record.status = NodeStatus::Failed;
            out.record.artifacts.clear();
            out.files.clear();
            out.record.error.insert(
                0,
                format!("timed out after {}", crate::spec::format_secs(limit.as_secs())),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::executor::Silent;
    use super::super::run::{run, RunOptions};
    use super::super::NodeStatus;
    use crate::graph::ArtifactIx;
    use crate::graph::Pipeline;
    use crate::op::{NoConfig, NodeContext, Op, OpError, OpSpec, Port, Registry};
    use crate::spec::PipelineSpec;
    use serde_json::Value;
    use std::time::{Duration, Instant};

    /// Works until it is cancelled (as long ops check the flag).
    struct Patient;
    impl Op for Patient {
        fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
            let t0 = Instant::now();
            while !ctx.is_cancelled() {
                if t0.elapsed() > Duration::from_secs(30) {
                    return Err("never cancelled".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err("stopped early (cancelled)".into())
        }
    }

    /// Ignores the flag and succeeds after 1.5 s.
    struct Stubborn;
    impl Op for Stubborn {
        fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
            std::thread::sleep(Duration::from_millis(1500));
            ctx.output("out", Value::from(1))?;
            Ok(())
        }
    }

    fn pipeline(op: &str) -> Pipeline {
        let mut r = Registry::empty();
        r.register(
            OpSpec::new("t.patient", "", |_: NoConfig| Ok(Patient))
                .output(Port::new::<Value>("out", ""))
                .stops_when_cancelled(),
        );
        r.register(
            OpSpec::new("t.stubborn", "", |_: NoConfig| Ok(Stubborn)).output(Port::new::<Value>("out", "")),
        );
        let registry: &'static Registry = Box::leak(Box::new(r));
        let spec = PipelineSpec::parse(
            &format!("[pipeline]\nname = \"t\"\ntimeout = \"1s\"\n[nodes.a]\nop = \"{op}\"\nout = {{ out = \"a\" }}\n"),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        Pipeline::build(&spec, registry).unwrap()
    }

    #[test]
    fn an_op_that_checks_the_flag_stops_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let out = run(&pipeline("t.patient"), &RunOptions::new(dir.path()), &Silent).unwrap();
        let r = &out.records[0];
        assert!(t0.elapsed() < Duration::from_millis(1500), "{:?}", t0.elapsed());
        assert_eq!(r.status, NodeStatus::Failed);
        assert!(r.timed_out);
        assert_eq!(r.error, ["timed out after 1s", "stopped early (cancelled)"]);
    }

    #[test]
    fn an_op_that_finishes_after_its_deadline_fails_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline("t.stubborn");
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("cannot stop part-way")),
            "{:?}",
            p.warnings
        );
        let out = run(&p, &RunOptions::new(dir.path()), &Silent).unwrap();
        let r = &out.records[0];
        assert_eq!(r.status, NodeStatus::Failed);
        assert_eq!(r.error, ["timed out after 1s"]);
        assert!(r.artifacts.is_empty() && out.blackboard.get(ArtifactIx(0)).is_none());
    }
}
