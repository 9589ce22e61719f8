//! Running a pipeline on a cluster the user already has. nexusml hands each node that
//! the store cannot answer to the cluster's scheduler as one job, with the pipeline's
//! edges as job dependencies; the scheduler does the scheduling. Each job is
//! `nexusml dag run FILE --only NODE --store STORE`: it reads its inputs from the shared
//! store and writes its outputs there, with the same key and bytes as a local run.

pub mod groups;
mod runner;
pub mod slurm;

pub use runner::{job_env, SlurmRunner};

use crate::graph::Pipeline;
use std::path::PathBuf;

/// Where the jobs find everything; every path absolute, since jobs may start elsewhere.
#[derive(Debug, Clone)]
pub struct JobEnv {
    /// The nexusml binary the jobs run.
    pub exe: PathBuf,
    /// The pipeline file.
    pub file: PathBuf,
    /// The parameters after overrides, as a TOML file (`--params`).
    pub params: PathBuf,
    /// The shared artifact store.
    pub store: PathBuf,
    /// Where the jobs' own run directories and logs go.
    pub job_dir: PathBuf,
    /// The jobs' working directory.
    pub workdir: PathBuf,
}

/// One node as a job: its command line and the nodes it waits for.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub node: usize,
    pub deps: Vec<usize>,
    pub command: Vec<String>,
}

/// The jobs for the nodes in `to_run`, in topological order; each waits for the jobs
/// of its predecessors that are also in `to_run` (the others are in the store).
pub fn plan(p: &Pipeline, to_run: &[bool], env: &JobEnv) -> Vec<JobSpec> {
    p.topological_order(to_run)
        .into_iter()
        .map(|v| {
            let node = &p.nodes[v];
            let mut command = vec![
                env.exe.display().to_string(),
                "dag".into(),
                "run".into(),
                env.file.display().to_string(),
                "--only".into(),
                node.id.clone(),
                "--store".into(),
                env.store.display().to_string(),
                "--params".into(),
                env.params.display().to_string(),
                "--runs-dir".into(),
                env.job_dir.display().to_string(),
            ];
            if let Some(cpus) = node.resources.cpus {
                // The node's thread pool uses the CPUs it was given.
                command.extend(["--jobs".into(), cpus.to_string()]);
            }
            JobSpec {
                node: v,
                deps: p.predecessors(v).iter().copied().filter(|&q| to_run[q]).collect(),
                command,
            }
        })
        .collect()
}

/// `'it''s'` → a word the shell reads back as `it's`.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
