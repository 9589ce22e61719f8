//! Slurm: each job submitted with `sbatch --parsable --dependency=afterok:…`, followed
//! with `squeue` (and `scontrol` once a job has left the queue), cancelled with
//! `scancel`. No accounting database is needed.

use super::{shell_quote, JobEnv, JobSpec};
use crate::graph::Pipeline;
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("`{0}` is not on PATH: --executor slurm needs a Slurm client (scripts/slurm-local.sh up starts a one-node cluster here)")]
    NotFound(&'static str),
    #[error("sbatch refused the job for node `{node}`: {message}")]
    Submit { node: String, message: String },
    #[error("`{command}` failed: {message}")]
    Query { command: String, message: String },
    #[error("resources of node `{node}`: {message}")]
    Resources { node: String, message: String },
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

/// The `sbatch` options of one job (without the dependency, which needs job ids).
pub fn sbatch_options(p: &Pipeline, job: &JobSpec, env: &JobEnv) -> Result<Vec<String>, SlurmError> {
    let node = &p.nodes[job.node];
    let mut o = vec![
        "--parsable".to_string(),
        format!("--job-name=nexusml-{}-{}", p.name, node.id),
        format!("--chdir={}", env.workdir.display()),
        format!(
            "--output={}",
            env.job_dir.join(format!("{}-%j.log", node.id)).display()
        ),
        // A job whose dependency failed is cancelled, not left pending forever.
        "--kill-on-invalid-dep=yes".to_string(),
    ];
    // `dag check` applied these rules already; a pipeline built otherwise gets the same.
    let r = &node.resources;
    let refused = |e: crate::spec::ResourceError| SlurmError::Resources {
        node: node.id.clone(),
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
    } else if let Some(limit) = job_time_limit(&node.policy) {
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

/// Slack a job gets beyond its node's attempts: starting nexusml, loading the inputs
/// from the store, storing the outputs.
pub const JOB_TIME_SLACK_SECS: u64 = 60;

/// A node's `timeout` as its job's `--time` (when `resources.time` is not set): every
/// attempt the job may make and the waits between them, plus [`JOB_TIME_SLACK_SECS`],
/// in whole minutes, so Slurm never ends a job its node would still retry.
pub fn job_time_limit(policy: &crate::spec::Policy) -> Option<String> {
    let total = policy.worst_case()?.as_secs() + JOB_TIME_SLACK_SECS;
    let minutes = total.div_ceil(60) * 60;
    Some(crate::spec::slurm_clock(minutes.min(crate::spec::MAX_TIME_SECS)))
}

fn wrap(job: &JobSpec) -> String {
    job.command
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Submit every job in order; returns each node's job id. If one is refused, the jobs
/// already submitted are cancelled.
pub fn submit(p: &Pipeline, jobs: &[JobSpec], env: &JobEnv) -> Result<HashMap<usize, String>, SlurmError> {
    let mut ids: HashMap<usize, String> = HashMap::new();
    for job in jobs {
        let mut args = sbatch_options(p, job, env)?;
        let deps: Vec<&str> = job
            .deps
            .iter()
            .filter_map(|d| ids.get(d).map(String::as_str))
            .collect();
        if !deps.is_empty() {
            args.push(format!("--dependency=afterok:{}", deps.join(":")));
        }
        args.push(format!("--wrap={}", wrap(job)));
        match run("sbatch", &args) {
            Ok(out) => {
                // `--parsable` prints `id` or `id;cluster`.
                let id = out.trim().split(';').next().unwrap_or("").to_string();
                tracing::info!("node `{}`: Slurm job {id}", p.nodes[job.node].id);
                ids.insert(job.node, id);
            }
            Err(e) => {
                cancel(&ids.values().cloned().collect::<Vec<_>>());
                return Err(match e {
                    SlurmError::Query { message, .. } => SlurmError::Submit {
                        node: p.nodes[job.node].id.clone(),
                        message,
                    },
                    other => other,
                });
            }
        }
    }
    Ok(ids)
}

/// Cancel jobs (errors ignored: a job may have ended meanwhile).
pub fn cancel(ids: &[String]) {
    if !ids.is_empty() {
        let _ = run("scancel", ids);
    }
}

/// The state of each job: `squeue` for jobs the controller still lists, `scontrol` for
/// the rest.
pub fn states(ids: &[String]) -> Result<HashMap<String, String>, SlurmError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let listed = run(
        "squeue",
        &[
            "-h".into(),
            "-t".into(),
            "all".into(),
            "-j".into(),
            ids.join(","),
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
        let text = run(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), id.clone()],
        )?;
        let state = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("UNKNOWN");
        out.insert(id.clone(), state.to_string());
    }
    Ok(out)
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
            | "RESIZING"
            | "STAGE_OUT"
    )
}

/// How one job ended, with offsets from when following began.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub id: String,
    pub state: String,
    pub start: Option<Duration>,
    pub end: Option<Duration>,
    /// Set when nexusml cancelled it because an upstream job failed.
    pub cancelled_because: Option<usize>,
}

/// Follow the jobs until every one has ended. When a job fails, the jobs that depend on
/// it are cancelled; when `interrupt` is set (Ctrl-C), every job still queued or running
/// is cancelled. `on_change` is told of each node's new state.
pub fn follow(
    p: &Pipeline,
    ids: &HashMap<usize, String>,
    interrupt: &AtomicBool,
    on_change: &dyn Fn(usize, &JobOutcome),
) -> Result<HashMap<usize, JobOutcome>, SlurmError> {
    let t0 = Instant::now();
    let mut outcomes: HashMap<usize, JobOutcome> = ids
        .iter()
        .map(|(&v, id)| {
            (
                v,
                JobOutcome {
                    id: id.clone(),
                    state: "PENDING".into(),
                    start: None,
                    end: None,
                    cancelled_because: None,
                },
            )
        })
        .collect();
    let mut cancelled_all = false;
    loop {
        if interrupt.load(Ordering::Relaxed) && !cancelled_all {
            let live: Vec<String> = outcomes
                .values()
                .filter(|o| !terminal(&o.state))
                .map(|o| o.id.clone())
                .collect();
            tracing::warn!("interrupted: cancelling {} Slurm job(s)", live.len());
            cancel(&live);
            cancelled_all = true;
        }
        let live: Vec<String> = outcomes
            .values()
            .filter(|o| !terminal(&o.state))
            .map(|o| o.id.clone())
            .collect();
        if live.is_empty() {
            blame_cancellations(p, &mut outcomes);
            return Ok(outcomes);
        }
        let now = states(&live)?;
        let mut failed = Vec::new();
        for (&v, o) in outcomes.iter_mut() {
            let Some(state) = now.get(&o.id) else { continue };
            if *state == o.state {
                continue;
            }
            let at = t0.elapsed();
            if state != "PENDING" && o.start.is_none() {
                o.start = Some(at);
            }
            o.state = state.clone();
            if terminal(state) {
                o.end = Some(at);
                // Slurm itself cancels a job whose dependency failed
                // (`--kill-on-invalid-dep`); that is blamed on the failure, below.
                if state != "COMPLETED" && state != "CANCELLED" && o.cancelled_because.is_none() {
                    failed.push(v);
                }
            }
            on_change(v, o);
        }
        for v in failed {
            // Its dependents cannot run: cancel every job downstream that has not ended.
            let mut stack = vec![v];
            let mut seen = vec![false; p.nodes.len()];
            let mut doomed = Vec::new();
            while let Some(u) = stack.pop() {
                for &w in p.successors(u) {
                    if !seen[w] {
                        seen[w] = true;
                        stack.push(w);
                        if let Some(o) = outcomes.get_mut(&w) {
                            if !terminal(&o.state) {
                                o.cancelled_because.get_or_insert(v);
                                doomed.push(o.id.clone());
                            }
                        }
                    }
                }
            }
            cancel(&doomed);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A job cancelled by Slurm (or by us) because something upstream failed is blamed on
/// the nearest failed upstream job, so it is reported skipped rather than failed.
fn blame_cancellations(p: &Pipeline, outcomes: &mut HashMap<usize, JobOutcome>) {
    let failed = |o: &JobOutcome| o.state != "COMPLETED" && o.state != "CANCELLED";
    let cancelled: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| o.state == "CANCELLED" && o.cancelled_because.is_none())
        .map(|(&v, _)| v)
        .collect();
    for v in cancelled {
        let mut seen = vec![false; p.nodes.len()];
        let mut queue = std::collections::VecDeque::from([v]);
        let mut culprit = None;
        while let Some(u) = queue.pop_front() {
            for &q in p.predecessors(u) {
                if !seen[q] {
                    seen[q] = true;
                    match outcomes.get(&q) {
                        Some(o) if failed(o) => {
                            culprit = Some(q);
                            break;
                        }
                        _ => queue.push_back(q),
                    }
                }
            }
            if culprit.is_some() {
                break;
            }
        }
        if let (Some(c), Some(o)) = (culprit, outcomes.get_mut(&v)) {
            o.cancelled_because = Some(c);
        }
    }
}

/// A standalone script with the same jobs and dependencies, for submitting by hand.
///
/// Every value from the pipeline or the command line is quoted for the shell
/// ([`shell_quote`]), comments hold no line break and the parameters' here-document ends
/// with a word that is no line of them, so no name or value can run as a command.
pub fn script(p: &Pipeline, jobs: &[JobSpec], env: &JobEnv, params_toml: &str) -> Result<String, SlurmError> {
    let comment = |text: &str| crate::spec::names::printable(text).into_owned();
    let mut s = String::from("#!/usr/bin/env bash\n");
    s.push_str(&format!(
        "# Submits pipeline `{}` ({}) to Slurm, one job per node, edges as dependencies.\n\
         # Written by `nexusml dag export --to slurm`. Each job runs one node against the\n\
         # shared artifact store and skips itself when the store already holds its result.\n\
         set -euo pipefail\n\n",
        comment(&p.name),
        comment(&p.file.display().to_string())
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
    // A shell variable per job, named after its node; ids that read alike as variable
    // names (`a-b`, `a_b`) get the node's index too, so two jobs never share one.
    let plain = |v: usize| p.nodes[v].id.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for job in jobs {
        *seen.entry(plain(job.node)).or_default() += 1;
    }
    let var = |v: usize| {
        let name = plain(v);
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            format!("job_{name}_{v}")
        } else {
            format!("job_{name}")
        }
    };
    for job in jobs {
        let mut args: Vec<String> = sbatch_options(p, job, env)?
            .into_iter()
            .map(|a| shell_quote(&a))
            .collect();
        if !job.deps.is_empty() {
            let deps: Vec<String> = job.deps.iter().map(|&d| format!("${{{}}}", var(d))).collect();
            args.push(format!("--dependency=afterok:{}", deps.join(":")));
        }
        args.push(shell_quote(&format!("--wrap={}", wrap(job))));
        s.push_str(&format!("{}=$(sbatch {})\n", var(job.node), args.join(" ")));
        s.push_str(&format!(
            "echo {} \"job ${{{}}}\"\n",
            shell_quote(&format!("node {}:", p.nodes[job.node].id)),
            var(job.node)
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Policy;
    use std::time::Duration;

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
