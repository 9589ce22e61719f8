//! What the store keeps about a node run (its manifest) and about a whole run.

use super::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One stored artifact: its digest, encoding and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    /// The artifact codec's format name, e.g. `arrow-ipc/1`.
    pub format: String,
    pub size: u64,
}

/// Where a written file lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileBase {
    /// Relative to the run directory (plots, metrics.json, ...): restored into each run's.
    Run,
    /// An explicit destination (a model file, `csv.write { path }`), as given.
    Path,
}

/// A file a node wrote, kept as a blob so a cached node can put it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub base: FileBase,
    pub path: String,
    pub digest: Digest,
    pub size: u64,
}

/// Everything the store knows about one node key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub key: Digest,
    pub pipeline: String,
    pub node: String,
    pub op: String,
    /// What the key was computed from, kept to explain the next miss.
    pub components: serde_json::Value,
    /// Output port → stored artifact.
    pub outputs: BTreeMap<String, BlobRef>,
    pub files: Vec<FileRef>,
    pub created_at: String,
    pub duration_ms: f64,
}

impl Manifest {
    /// Every blob this manifest needs.
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.outputs
            .values()
            .map(|b| (&b.digest, b.size))
            .chain(self.files.iter().map(|f| (&f.digest, f.size)))
    }
}

/// A manifest without its key components: what answering a node needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestHead {
    pub key: Digest,
    pub outputs: BTreeMap<String, BlobRef>,
    pub files: Vec<FileRef>,
}

/// A finished run: which key each node had. The newest runs are `cache gc`'s roots.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    pub file: String,
    pub started_at: String,
    /// `20261127T103300Z`, the sort key.
    pub started_compact: String,
    pub status: String,
    pub nodes: BTreeMap<String, Digest>,
}
