//! Slurm: a unit is submitted with `sbatch --parsable` once the units it waits for have
//! ended (a job array with `--array=…%T` for a family), followed by one `squeue` per poll
//! for every job of the run (and `scontrol` once a job has left the queue), and cancelled
//! with `scancel`. No accounting database is needed. `dag export --to slurm` writes the
//! same units as a script, with `--dependency=afterok:` between them.

use super::{command, shell_line, shell_quote, JobEnv, Unit, UnitKind};
use crate::graph::Pipeline;
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("`{0}` is not on PATH: --executor slurm needs a Slurm client (scripts/slurm-local.sh up starts a one-node cluster here)")]
    NotFound(&'static str),
    #[error("sbatch refused the job for {unit}: {message}")]
    Submit { unit: String, message: String },
    #[error("`{command}` failed: {message}")]
    Query { command: String, message: String },
    #[error("resources of {unit}: {message}")]
    Resources { unit: String, message: String },
}

fn run(cmd: &'static str, args: &[String]) -> Result<String, SlurmError> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SlurmError::NotFound(cmd)
        } else {
            SlurmError::Query {
                command: cmd.into(),
                message: e.to_string(),
            }
        }
    })?;
    if !out.status.success() {
        return Err(SlurmError::Query {
            command: format!("{cmd} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How a unit names itself in messages: `node `train``, `nodes `load`, `split``, `family `cv``.
pub fn describe(p: &Pipeline, unit: &Unit) -> String {
    match &unit.kind {
        UnitKind::Array { family } => format!("family `{family}` ({} tasks)", unit.nodes.len()),
        UnitKind::Job if unit.nodes.len() == 1 => format!("node `{}`", p.nodes[unit.nodes[0]].id),
        UnitKind::Job => {
            const SHOWN: usize = 12;
            let mut names: Vec<String> = unit
                .nodes
                .iter()
                .take(SHOWN)
                .map(|&v| format!("`{}`", p.nodes[v].id))
                .collect();
            if unit.nodes.len() > SHOWN {
                names.push(format!("… ({} more)", unit.nodes.len() - SHOWN));
            }
            format!("nodes {}", names.join(", "))
        }
    }
}

/// The array tasks of a family unit: its members' indices.
pub fn task_ids(p: &Pipeline, unit: &Unit) -> Vec<usize> {
    unit.nodes
        .iter()
        .filter_map(|&v| p.nodes[v].member.as_ref().map(|m| m.index))
        .collect()
}

/// The `sbatch` options of one unit (without `--dependency` and `--wrap`). `tag` names
/// the run in the job name, so one `squeue` finds every job of the run; `throttle` is
/// the most array tasks running at once.
pub fn sbatch_options(
    p: &Pipeline,
    unit: &Unit,
    env: &JobEnv,
    tag: &str,
    throttle: Option<usize>,
) -> Result<Vec<String>, SlurmError> {
    let log = match unit.kind {
        UnitKind::Array { .. } => format!("{}-%A_%a.log", unit.name),
        UnitKind::Job => format!("{}-%j.log", unit.name),
    };
    let mut o = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job_name(tag, &unit.name)),
        format!("--chdir={}", env.workdir.display()),
        format!("--output={}", env.job_dir.join(log).display()),
    ];
    if let UnitKind::Array { .. } = unit.kind {
        let ids: Vec<String> = task_ids(p, unit).iter().map(usize::to_string).collect();
        let limit = throttle.map(|t| format!("%{}", t.max(1))).unwrap_or_default();
        o.push(format!("--array={}{limit}", ids.join(",")));
    }
    // `dag check` applied these rules already; a pipeline built otherwise gets the same.
    let r = &unit.resources;
    let refused = |e: crate::spec::ResourceError| SlurmError::Resources {
        unit: describe(p, unit),
        message: e.to_string(),
    };
    if let Some(c) = r.cpus {
        o.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = &r.mem {
        o.push(format!("--mem={}", crate::spec::slurm_mem(m).map_err(refused)?));
    }
    if let Some(t) = &r.time {
        o.push(format!("--time={}", crate::spec::slurm_time(t).map_err(refused)?));
    } else if let Some(limit) = unit_time_limit(p, unit) {
        o.push(format!("--time={limit}"));
    }
    if let Some(part) = &r.partition {
        o.push(format!(
            "--partition={}",
            crate::spec::slurm_partition(part).map_err(refused)?
        ));
    }
    Ok(o)
}

/// `nexusml-<tag>-<unit>`: every job of one run shares the prefix.
pub fn job_name(tag: &str, unit: &str) -> String {
    format!("nexusml-{tag}-{unit}")
}

/// Slack a job gets beyond its node's attempts: starting nexusml, loading the inputs
/// from the store, storing the outputs.
pub const JOB_TIME_SLACK_SECS: u64 = 60;

/// A unit's `--time` from its nodes' timeouts: a grouped job runs its nodes one after
/// another (the sum), an array task runs one member (the longest). None when any node
/// has no timeout: the job then runs under the partition's own limit.
pub fn unit_time_limit(p: &Pipeline, unit: &Unit) -> Option<String> {
    clock_for(unit_worst_case_secs(p, unit)?)
}

/// The longest a unit's job (or one array task) may take by its nodes' timeouts, every
/// attempt and wait included, in seconds; None when any node has no timeout.
pub fn unit_worst_case_secs(p: &Pipeline, unit: &Unit) -> Option<u64> {
    let mut each = unit
        .nodes
        .iter()
        .map(|&v| p.nodes[v].policy.worst_case().map(|d| d.as_secs()));
    match unit.kind {
        UnitKind::Job => each.try_fold(0u64, |sum, s| s.map(|s| sum.saturating_add(s))),
        UnitKind::Array { .. } => each.try_fold(0u64, |most, s| s.map(|s| most.max(s))),
    }
}

/// A worst case as a job's `--time` (when `resources.time` is not set): plus
/// [`JOB_TIME_SLACK_SECS`], in whole minutes, so Slurm never ends a job its nodes would
/// still retry.
fn clock_for(secs: u64) -> Option<String> {
    let total = secs.saturating_add(JOB_TIME_SLACK_SECS);
    let minutes = total.div_ceil(60).saturating_mul(60);
    Some(crate::spec::slurm_clock(minutes.min(crate::spec::MAX_TIME_SECS)))
}

/// The `--wrap` command of a unit.
pub fn wrap(p: &Pipeline, unit: &Unit, env: &JobEnv) -> String {
    shell_line(&command(p, unit, env), "SLURM_ARRAY_TASK_ID")
}

/// Submit one unit now; its job id.
pub fn submit(
    p: &Pipeline,
    unit: &Unit,
    env: &JobEnv,
    tag: &str,
    throttle: Option<usize>,
) -> Result<String, SlurmError> {
    let mut args = sbatch_options(p, unit, env, tag, throttle)?;
    args.push(format!("--wrap={}", wrap(p, unit, env)));
    match run("sbatch", &args) {
        // `--parsable` prints `id` or `id;cluster`.
        Ok(out) => Ok(out.trim().split(';').next().unwrap_or("").to_string()),
        Err(SlurmError::Query { message, .. }) => Err(SlurmError::Submit {
            unit: describe(p, unit),
            message,
        }),
        Err(e) => Err(e),
    }
}

/// Cancel jobs (errors ignored: a job may have ended meanwhile).
pub fn cancel(ids: &[String]) {
    if !ids.is_empty() {
        let _ = run("scancel", ids);
    }
}

fn terminal(state: &str) -> bool {
    !matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "SUSPENDED"
            | "REQUEUED"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "SUBMITTED"
    )
}

/// How one job (or every task of one array) ended, with offsets from the start of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd {
    pub id: String,
    /// `COMPLETED` when every task completed; else the first other end state.
    pub state: String,
    /// When it was submitted, first seen running, and seen ended.
    pub submitted: Duration,
    pub started: Option<Duration>,
    pub ended: Duration,
}

/// One job the queue follows: its tasks (`id` for a job, `id_3` for an array task) and
/// what was last seen of each.
struct Followed {
    tasks: Vec<String>,
    states: HashMap<String, String>,
    submitted: Duration,
    started: Option<Duration>,
}

impl Followed {
    fn ended(&self) -> bool {
        self.tasks
            .iter()
            .all(|t| self.states.get(t).is_some_and(|s| terminal(s)))
    }

    fn state(&self) -> String {
        self.tasks
            .iter()
            .filter_map(|t| self.states.get(t))
            .find(|s| s.as_str() != "COMPLETED")
            .cloned()
            .unwrap_or_else(|| "COMPLETED".into())
    }
}

#[derive(Default)]
struct Board {
    jobs: HashMap<String, Followed>,
    /// A poll found something new (or a job was added): poll again soon.
    changed: bool,
    done: bool,
}

/// Follows every job of one run with one `squeue` per poll, polling every 0.2 s while
/// states change and backing off (×1.5, up to 5 s) while nothing does. When `cancel` is
/// set, every job still queued or running is cancelled with one `scancel`.
pub struct Queue {
    board: Mutex<Board>,
    wake: Condvar,
    t0: Instant,
}

const FIRST_POLL: Duration = Duration::from_millis(200);
const LAST_POLL: Duration = Duration::from_secs(5);

impl Queue {
    /// Start following; the poller thread stops when the queue is dropped by every holder
    /// (see [`Queue::close`]).
    pub fn start(t0: Instant, cancel: Arc<AtomicBool>) -> Arc<Queue> {
        let q = Arc::new(Queue {
            board: Mutex::new(Board::default()),
            wake: Condvar::new(),
            t0,
        });
        let poller = Arc::clone(&q);
        std::thread::Builder::new()
            .name("nexusml-slurm-poll".into())
            .spawn(move || poller.poll_loop(&cancel))
            .expect("a thread can be started");
        q
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follow a submitted job whose tasks are `tasks`.
    pub fn follow(&self, id: &str, tasks: Vec<String>) {
        let mut b = self.lock();
        b.jobs.insert(
            id.to_string(),
            Followed {
                tasks,
                states: HashMap::new(),
                submitted: self.t0.elapsed(),
                started: None,
            },
        );
        b.changed = true;
        self.wake.notify_all();
    }

    /// Wait until job `id` has ended.
    pub fn wait(&self, id: &str) -> JobEnd {
        let mut b = self.lock();
        loop {
            if let Some(j) = b.jobs.get(id).filter(|j| j.ended()) {
                return JobEnd {
                    id: id.to_string(),
                    state: j.state(),
                    submitted: j.submitted,
                    started: j.started,
                    ended: self.t0.elapsed(),
                };
            }
            if b.done {
                return JobEnd {
                    id: id.to_string(),
                    state: "UNKNOWN".into(),
                    submitted: Duration::ZERO,
                    started: None,
                    ended: self.t0.elapsed(),
                };
            }
            b = self.wake.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stop the poller.
    pub fn close(&self) {
        self.lock().done = true;
        self.wake.notify_all();
    }

    fn poll_loop(&self, interrupt: &AtomicBool) {
        let mut interval = FIRST_POLL;
        let mut cancelled = false;
        loop {
            let live: Vec<String> = {
                let b = self.lock();
                if b.done {
                    return;
                }
                b.jobs
                    .values()
                    .filter(|j| !j.ended())
                    .flat_map(|j| {
                        j.tasks
                            .iter()
                            .filter(|t| !j.states.get(*t).is_some_and(|s| terminal(s)))
                            .cloned()
                    })
                    .collect()
            };
            if interrupt.load(Ordering::Relaxed) && !cancelled {
                let jobs: Vec<String> = {
                    let b = self.lock();
                    b.jobs
                        .iter()
                        .filter(|(_, j)| !j.ended())
                        .map(|(id, _)| id.clone())
                        .collect()
                };
                tracing::warn!("interrupted: cancelling {} Slurm job(s)", jobs.len());
                cancel(&jobs);
                cancelled = true;
            }
            let mut changed = false;
            if !live.is_empty() {
                let now = states(&live);
                let at = self.t0.elapsed();
                let mut b = self.lock();
                for j in b.jobs.values_mut() {
                    for t in &j.tasks {
                        let Some(s) = now.get(t) else { continue };
                        if j.states.get(t) != Some(s) {
                            changed = true;
                            if s != "PENDING" && j.started.is_none() {
                                j.started = Some(at);
                            }
                            j.states.insert(t.clone(), s.clone());
                        }
                    }
                }
                if changed {
                    self.wake.notify_all();
                }
            }
            let mut b = self.lock();
            if b.changed {
                b.changed = false;
                changed = true;
            }
            interval = if changed {
                FIRST_POLL
            } else {
                interval.mul_f64(1.5).min(LAST_POLL)
            };
            // Sleep until the interval ends, a job is added, or the run is interrupted.
            let (b, _) = self
                .wake
                .wait_timeout_while(b, interval, |b| {
                    !b.done && !b.changed && (cancelled || !interrupt.load(Ordering::Relaxed))
                })
                .unwrap_or_else(|e| e.into_inner());
            drop(b);
        }
    }
}

/// The state of each job or task: one `squeue` for those the controller still lists,
/// `scontrol` for the rest (a query that fails counts as no news).
pub fn states(ids: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return out;
    }
    // The array ids too, so pending tasks folded into `123_[4-9]` are listed: `-r` lists
    // every task on its own line.
    let mut jobs: Vec<&str> = ids.iter().map(|t| t.split('_').next().unwrap_or(t)).collect();
    jobs.sort_unstable();
    jobs.dedup();
    let listed = run(
        "squeue",
        &[
            "-h".into(),
            "-r".into(),
            "-t".into(),
            "all".into(),
            "-j".into(),
            jobs.join(","),
            "-o".into(),
            "%i|%T".into(),
        ],
    )
    .unwrap_or_default();
    for line in listed.lines() {
        if let Some((id, state)) = line.trim().split_once('|') {
            out.insert(id.to_string(), state.to_string());
        }
    }
    let unlisted: Vec<&String> = ids.iter().filter(|id| !out.contains_key(*id)).collect();
    for id in unlisted {
        if let Ok(text) = run(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), id.clone()],
        ) {
            if let Some(state) = text.split_whitespace().find_map(|w| w.strip_prefix("JobState=")) {
                out.insert(id.clone(), state.to_string());
            }
        }
    }
    out
}

/// A standalone script with the same units and dependencies, for submitting by hand.
///
/// Every value from the pipeline or the command line is quoted for the shell
/// ([`shell_quote`]), comments hold no line break and the parameters' here-document ends
/// with a word that is no line of them, so no name or value can run as a command.
pub fn script(p: &Pipeline, units: &[Unit], env: &JobEnv, params_toml: &str) -> Result<String, SlurmError> {
    let comment = |text: &str| crate::spec::names::printable(text).into_owned();
    let mut s = String::from("#!/usr/bin/env bash\n");
    s.push_str(&format!(
        "# Submits pipeline `{}` ({}) to Slurm: {} job(s), the pipeline's edges as dependencies.\n\
         # Written by `nexusml dag export --to slurm`. Each job runs its nodes against the\n\
         # shared artifact store and skips what the store already holds.\n\
         set -euo pipefail\n\n",
        comment(&p.name),
        comment(&p.file.display().to_string()),
        units.len()
    ));
    s.push_str(&format!(
        "mkdir -p {}\n",
        shell_quote(&env.job_dir.display().to_string())
    ));
    let mut end = String::from("NEXUSML_PARAMS");
    while params_toml.lines().any(|l| l == end) {
        end.push('_');
    }
    let newline = if params_toml.is_empty() || params_toml.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    s.push_str(&format!(
        "cat > {} <<'{end}'\n{params_toml}{newline}{end}\n\n",
        shell_quote(&env.params.display().to_string()),
    ));
    // A shell variable per unit, named after it; names that read alike as variable names
    // (`a-b`, `a_b`) get the unit's index too, so two jobs never share one.
    let plain = |u: usize| units[u].name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for u in 0..units.len() {
        *seen.entry(plain(u)).or_default() += 1;
    }
    let var = |u: usize| {
        let name = plain(u);
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            format!("job_{name}_{u}")
        } else {
            format!("job_{name}")
        }
    };
    let tag = p
        .name
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_");
    for (u, unit) in units.iter().enumerate() {
        let mut args: Vec<String> = sbatch_options(p, unit, env, &tag, None)?
            .into_iter()
            .map(|a| shell_quote(&a))
            .collect();
        if !unit.deps.is_empty() {
            let deps: Vec<String> = unit.deps.iter().map(|&d| format!("${{{}}}", var(d))).collect();
            args.push(format!("--dependency=afterok:{}", deps.join(":")));
            // A job whose dependency failed is cancelled, not left pending forever.
            args.push("--kill-on-invalid-dep=yes".into());
        }
        args.push(shell_quote(&format!("--wrap={}", wrap(p, unit, env))));
        s.push_str(&format!("{}=$(sbatch {})\n", var(u), args.join(" ")));
        s.push_str(&format!(
            "echo {} \"job ${{{}}}\"\n",
            shell_quote(&format!("{}:", describe(p, unit).replace('`', ""))),
            var(u)
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Policy;
    use std::time::Duration;

    /// One node's job: its attempts and waits.
    fn job_time_limit(policy: &Policy) -> Option<String> {
        clock_for(policy.worst_case()?.as_secs())
    }

    #[test]
    fn a_timeout_becomes_the_jobs_time_limit_with_room_for_every_attempt() {
        let one = Policy {
            timeout: Some(Duration::from_secs(600)),
            ..Policy::default()
        };
        assert_eq!(
            job_time_limit(&one).as_deref(),
            Some("0-00:11:00"),
            "10m + 1m slack"
        );
        let three = Policy {
            retries: 2,
            retry_delay: Duration::from_secs(30),
            ..one.clone()
        };
        // 3 × 10 min + 2 × 30 s + 60 s = 32 min.
        assert_eq!(job_time_limit(&three).as_deref(), Some("0-00:32:00"));
        assert_eq!(job_time_limit(&Policy::default()), None, "no timeout, no limit");
    }
}
