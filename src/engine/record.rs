//! What happened to a node, and to a run.

use super::reason::{note, Reason};
use crate::graph::ArtifactIx;
use crate::store::Digest;
use std::time::Duration;

/// The artifacts a node wrote: held inline, since most nodes write one or two and a
/// record is made for every node.
pub type Written = smallvec::SmallVec<[ArtifactIx; 2]>;

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Ok,
    /// Answered from the artifact store: not run.
    Cached,
    Failed,
    Skipped,
}

impl NodeStatus {
    /// Ok or cached: its outputs are there for its successors.
    pub fn succeeded(self) -> bool {
        matches!(self, NodeStatus::Ok | NodeStatus::Cached)
    }
}

/// One try at running a node (a node with retries has several).
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    pub start: Duration,
    pub end: Duration,
    /// The error and its causes; empty when this attempt succeeded.
    pub error: Vec<String>,
    /// The exit code of a command that failed with one.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub status: NodeStatus,
    /// Why it ran (`param `trees` 200→300`), was cached, or was skipped.
    pub reasons: Vec<Reason>,
    /// Its key in the artifact store, when a store is used.
    pub key: Option<Digest>,
    /// Offsets from the start of the run.
    pub start: Option<Duration>,
    pub end: Option<Duration>,
    /// Index of the rayon worker that ran it.
    pub thread: Option<usize>,
    /// Indices of the artifacts it wrote.
    pub artifacts: Written,
    /// The error and its causes, outermost first.
    pub error: Vec<String>,
    /// Every try, when the node's policy allows retries.
    pub attempts: Vec<Attempt>,
    /// The exit code of a command that failed with one (the last attempt's).
    pub exit_code: Option<i32>,
    /// The (last) attempt ran out of time.
    pub timed_out: bool,
    /// The cluster job that ran it (`--executor slurm`).
    pub job: Option<Box<ClusterJob>>,
}

/// A node's cluster job and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterJob {
    pub id: String,
    pub state: String,
    /// From the node's job being ready to its submission returning (`--max-jobs` waits).
    pub submit_wait: Option<Duration>,
    /// From submission to the job first seen running.
    pub queue_wait: Option<Duration>,
}

impl NodeRecord {
    /// A record with nothing in it but its status.
    pub fn new(status: NodeStatus) -> Self {
        NodeRecord {
            status,
            reasons: Vec::new(),
            key: None,
            start: None,
            end: None,
            thread: None,
            artifacts: Written::new(),
            error: Vec::new(),
            attempts: Vec::new(),
            exit_code: None,
            timed_out: false,
            job: None,
        }
    }

    pub fn skipped(reason: Reason) -> Self {
        NodeRecord {
            reasons: vec![reason],
            ..NodeRecord::new(NodeStatus::Skipped)
        }
    }

    /// A failure found before the node could run, at `at` into the run.
    pub fn failed(error: Vec<String>, at: Duration) -> Self {
        NodeRecord {
            error,
            start: Some(at),
            end: Some(at),
            thread: rayon::current_thread_index(),
            ..NodeRecord::new(NodeStatus::Failed)
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        Some(self.end? - self.start?)
    }

    /// The reasons as one line: `ran: …`, `cached`, `upstream node `x` failed`.
    pub fn note(&self) -> Option<String> {
        note(
            self.status == NodeStatus::Ok || self.status == NodeStatus::Failed,
            &self.reasons,
        )
    }

    /// Inputs whose content changed since the node last ran (by artifact name).
    pub fn changed_inputs(&self) -> Vec<String> {
        self.reasons
            .iter()
            .filter_map(|r| match r {
                Reason::InputChanged { artifact, .. } => Some(artifact.clone()),
                _ => None,
            })
            .collect()
    }
}

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Interrupted,
}
