//! Running a pipeline on a cluster the user already has. The nodes the store cannot
//! answer are put into units ([`groups`]: a job of fused nodes, or a job array for a
//! family), and the ordinary walker hands each unit to the cluster once the units it
//! waits for have finished. Each job is `nexusml dag run FILE --only NODES --store STORE`:
//! it reads its inputs from the shared store and writes its outputs there, with the same
//! keys and bytes as a local run. `dag export` writes the same units as a Slurm script or
//! an Airflow DAG.

pub mod airflow;
pub mod groups;
mod runner;
pub mod slurm;

pub use groups::{units, GroupError, Grouping, Unit, UnitKind};
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
    /// Inside a job, a failure does not stop the job's other nodes (`--keep-going`).
    pub keep_going: bool,
}

/// A word of a job's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    Text(String),
    /// A family member chosen by the job array task: `<prefix><task id>` (the shell
    /// expands `$SLURM_ARRAY_TASK_ID`, or the scheduler's own variable).
    Task(String),
}

impl Word {
    /// As the job's shell reads it: text quoted, a task's variable left to expand.
    pub fn shell(&self, task_var: &str) -> String {
        match self {
            Word::Text(t) => shell_quote(t),
            Word::Task(prefix) => format!("{}\"${task_var}\"", shell_quote(prefix)),
        }
    }
}

/// One unit as a job: `nexusml dag run FILE --only NODES --store STORE --params P
/// --runs-dir <jobs>/<unit>` (an array task: `--only <family>-<task>`), with the unit's
/// CPUs as its worker threads.
pub fn command(p: &Pipeline, unit: &Unit, env: &JobEnv) -> Vec<Word> {
    let text = |s: &str| Word::Text(s.to_string());
    let mut w = vec![
        Word::Text(env.exe.display().to_string()),
        text("dag"),
        text("run"),
        Word::Text(env.file.display().to_string()),
        text("--only"),
    ];
    match &unit.kind {
        UnitKind::Array { family } => w.push(Word::Task(format!("{family}-"))),
        UnitKind::Job => w.extend(unit.nodes.iter().map(|&v| Word::Text(p.nodes[v].id.clone()))),
    }
    w.extend([
        text("--store"),
        Word::Text(env.store.display().to_string()),
        text("--params"),
        Word::Text(env.params.display().to_string()),
        text("--runs-dir"),
    ]);
    // Each job's own run directory: its report tells which of its nodes failed.
    let dir = env.job_dir.join(&unit.name).display().to_string();
    match &unit.kind {
        UnitKind::Array { family } => w.push(Word::Task(format!("{dir}/{family}-"))),
        UnitKind::Job => w.push(Word::Text(dir)),
    }
    if let Some(cpus) = unit.resources.cpus {
        // The unit's thread pool uses the CPUs it was given.
        w.extend([text("--jobs"), text(&cpus.to_string())]);
    }
    if env.keep_going {
        w.push(text("--keep-going"));
    }
    w
}

/// A command line as one shell line (for `sbatch --wrap`).
pub fn shell_line(words: &[Word], task_var: &str) -> String {
    words
        .iter()
        .map(|w| w.shell(task_var))
        .collect::<Vec<_>>()
        .join(" ")
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
