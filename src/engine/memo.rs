//! The engine's use of the artifact store: a node's key, answering a node from the store
//! (putting its files back), storing what a node produced, loading a stored value when a
//! node that runs needs it, and saying why a node had to run.

use super::blackboard::Blackboard;
use super::key::{explain, FileDigests, KeyComponents, KeyParts};
use super::reason::Reason;
use crate::clock::Utc;
use crate::graph::{ArtifactIx, NodeIx, Pipeline};
use crate::op::{Slot, WrittenFile};
use crate::store::{BlobRef, Digest, FileBase, FileRef, Manifest, RunRecord, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How a store lookup went.
pub(crate) enum Lookup {
    /// Every output and file is in the store; files were put back.
    Hit { restored: usize },
    /// No usable entry; the reason says what was missing when an entry existed.
    Miss(Option<Reason>),
}

pub(crate) struct Memo<'a> {
    pub store: &'a Store,
    pub pipeline: &'a Pipeline,
    pub run_dir: &'a Path,
    pub files: FileDigests,
    /// The newest finished run of this pipeline, read once: the keys nodes last had.
    previous: OnceLock<Option<RunRecord>>,
}

impl<'a> Memo<'a> {
    pub fn new(store: &'a Store, pipeline: &'a Pipeline, run_dir: &'a Path) -> Self {
        Memo {
            store,
            pipeline,
            run_dir,
            files: FileDigests::default(),
            previous: OnceLock::new(),
        }
    }

    /// The key of node `v`; every input's digest must be known.
    pub fn key(&self, v: NodeIx, board: &Blackboard) -> Option<KeyParts> {
        let (parts, unknown) = self.key_or_guess(v, board);
        unknown.is_empty().then_some(parts)
    }

    /// The key of node `v`, with a placeholder for inputs whose digest is not known yet
    /// (their producer has to run), and those inputs' ports.
    pub fn key_or_guess(&self, v: NodeIx, board: &Blackboard) -> (KeyParts, Vec<ArtifactIx>) {
        let node = &self.pipeline.nodes[v];
        let mut unknown = Vec::new();
        let inputs: Vec<Digest> = node
            .inputs
            .iter()
            .map(|b| {
                board.digest(b.artifact).unwrap_or_else(|| {
                    unknown.push(b.artifact);
                    Digest([0; 32])
                })
            })
            .collect();
        let files: Vec<(PathBuf, Option<Digest>)> = node
            .op
            .reads()
            .into_iter()
            .map(|p| {
                let d = self.files.get(&p);
                (p, d)
            })
            .collect();
        (KeyParts::new(self.pipeline, v, inputs, files), unknown)
    }

    /// Whether the store can answer node `v` under `key`, without changing anything:
    /// `Ok` with its outputs' digests, or what is missing.
    pub fn peek(&self, v: NodeIx, key: &Digest) -> Result<Vec<(ArtifactIx, Digest)>, Option<Reason>> {
        let node = &self.pipeline.nodes[v];
        let m = self.store.peek_manifest(key).ok_or(None)?;
        let mut digests = Vec::new();
        for b in &node.outputs {
            match m.outputs.get(&b.port) {
                Some(r) if self.store.has_blob(&r.digest, r.size) => digests.push((b.artifact, r.digest)),
                _ => return Err(Some(Reason::OutputMissing { port: b.port.clone() })),
            }
        }
        for f in &m.files {
            if !self.store.has_blob(&f.digest, f.size) {
                return Err(Some(Reason::OutputFileMissing { path: f.path.clone() }));
            }
        }
        Ok(digests)
    }

    /// Answer node `v` from the store: check its outputs are there, put its files back,
    /// and publish its outputs' digests.
    pub fn lookup(&self, v: NodeIx, key: &Digest, board: &Blackboard) -> Lookup {
        let node = &self.pipeline.nodes[v];
        let Some(m) = self.store.get_manifest(key) else {
            return Lookup::Miss(None);
        };
        let mut digests = Vec::with_capacity(node.outputs.len());
        for b in &node.outputs {
            match m.outputs.get(&b.port) {
                Some(r) if self.store.has_blob(&r.digest, r.size) => digests.push((b.artifact, r.digest)),
                _ => return Lookup::Miss(Some(Reason::OutputMissing { port: b.port.clone() })),
            }
        }
        // Files outside the run directory that belong together (a model and its metadata)
        // are put back under their directories' locks, as `model.save` writes them.
        let mut dirs: Vec<PathBuf> = m
            .files
            .iter()
            .filter(|f| f.base == FileBase::Path)
            .filter_map(|f| {
                let p = Path::new(&f.path).parent()?;
                Some(if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                })
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        let _locks: Vec<_> = dirs
            .iter()
            .filter_map(|d| {
                std::fs::create_dir_all(d).ok()?;
                crate::atomic_file::lock_dir(d, true).ok()
            })
            .collect();
        let mut restored = 0;
        for f in &m.files {
            let dest = self.file_dest(f);
            if crate::store::digest_file(&dest).is_ok_and(|d| d == f.digest) {
                continue;
            }
            let bytes = match self.store.get_blob(&f.digest) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("{e}");
                    return Lookup::Miss(Some(Reason::OutputFileMissing { path: f.path.clone() }));
                }
            };
            if let Err(e) = write_file(&dest, &bytes) {
                tracing::warn!("cannot restore {}: {e}", dest.display());
                return Lookup::Miss(Some(Reason::OutputFileUnrestorable { path: f.path.clone() }));
            }
            restored += 1;
        }
        for (a, d) in digests {
            board.set_digest(a, d);
        }
        Lookup::Hit { restored }
    }

    fn file_dest(&self, f: &FileRef) -> PathBuf {
        match f.base {
            FileBase::Run => self.run_dir.join(&f.path),
            FileBase::Path => PathBuf::from(&f.path),
        }
    }

    /// Encode and store what node `v` produced, publish the digests, and write its
    /// manifest. A store failure is a warning: the run's results stand, the next run
    /// recomputes.
    pub fn save(
        &self,
        v: NodeIx,
        parts: &KeyParts,
        board: &Blackboard,
        written: &[WrittenFile],
        duration_ms: f64,
    ) {
        let node = &self.pipeline.nodes[v];
        let mut outputs = BTreeMap::new();
        let mut complete = true;
        for b in &node.outputs {
            let Some(slot) = board.get(b.artifact) else {
                continue;
            };
            match self.encode(b.ty.codec(), slot) {
                Ok((bytes, format)) => {
                    let d = Digest::of(&bytes);
                    board.set_digest(b.artifact, d);
                    if let Err(e) = self.store.put_blob_as(&d, &bytes) {
                        tracing::warn!("{e}");
                        complete = false;
                    }
                    outputs.insert(
                        b.port.clone(),
                        BlobRef {
                            digest: d,
                            format: format.to_string(),
                            size: bytes.len() as u64,
                        },
                    );
                }
                Err(message) => {
                    // Consumers still need a digest: one no other run can match.
                    tracing::warn!("node `{}`: output `{}` is not stored: {message}", node.id, b.port);
                    board.set_digest(
                        b.artifact,
                        Digest::of(format!("{message}{:?}", std::time::SystemTime::now()).as_bytes()),
                    );
                    complete = false;
                }
            }
        }
        let mut files = Vec::with_capacity(written.len());
        for f in written {
            let d = Digest::of(&f.bytes);
            if let Err(e) = self.store.put_blob_as(&d, &f.bytes) {
                tracing::warn!("{e}");
                complete = false;
            }
            let (base, path) = match f.path.strip_prefix(self.run_dir) {
                Ok(rel) => (FileBase::Run, rel.to_path_buf()),
                Err(_) => (FileBase::Path, f.path.clone()),
            };
            files.push(FileRef {
                base,
                path: path.display().to_string(),
                digest: d,
                size: f.bytes.len() as u64,
            });
        }
        if !complete {
            return;
        }
        let manifest = Manifest {
            key: parts.key,
            pipeline: self.pipeline.name.clone(),
            node: node.id.clone(),
            op: node.op_name.clone(),
            components: parts.components(self.pipeline, v).to_json(),
            outputs,
            files,
            created_at: Utc::now().rfc3339(),
            duration_ms,
        };
        if let Err(e) = self.store.put_manifest(&manifest) {
            tracing::warn!("{e}");
        }
    }

    fn encode(
        &self,
        codec: Option<&crate::op::Codec>,
        slot: &Slot,
    ) -> Result<(Vec<u8>, &'static str), String> {
        let codec = codec.ok_or("its port type has no codec")?;
        let bytes = codec.encode(&*slot.value).map_err(|e| e.to_string())?;
        Ok((bytes, codec.format))
    }

    /// Put a stored artifact's value on the board.
    pub fn load(&self, artifact: ArtifactIx, board: &Blackboard) -> Result<(), String> {
        let art = &self.pipeline.artifacts[artifact];
        let d = board
            .digest(artifact)
            .ok_or_else(|| format!("artifact `{}` has no digest", art.name))?;
        let codec = art
            .ty
            .codec()
            .ok_or_else(|| format!("artifact `{}` cannot be stored", art.name))?;
        let bytes = self.store.get_blob(&d).map_err(|e| e.to_string())?;
        let value = codec.decode(&bytes).map_err(|e| e.to_string())?;
        board.put(
            artifact,
            Slot {
                value,
                type_name: art.ty.type_name(),
            },
        );
        Ok(())
    }

    /// Why node `v` must run, against the key it last had: in the newest finished run of
    /// this pipeline (cached or computed), or the one it last computed if that is newer
    /// (a run killed before it finished).
    pub fn explain(&self, v: NodeIx, parts: &KeyParts) -> Vec<Reason> {
        let node = &self.pipeline.nodes[v];
        let previous = self
            .previous
            .get_or_init(|| self.store.newest_run(&self.pipeline.name));
        let recorded = previous
            .as_ref()
            .and_then(|r| Some((*r.nodes.get(&node.id)?, r.started_at.as_str())));
        let computed = self.store.last_key(&self.pipeline.name, &node.id);
        let last = match (recorded, computed) {
            (None, None) => return vec![Reason::NeverRun],
            (Some((k, _)), None) => k,
            (None, Some(k)) => k,
            (Some((r, _)), Some(c)) if r == c => r,
            (Some((r, started)), Some(c)) => match self.store.peek_manifest(&c) {
                Some(m) if m.created_at.as_str() > started => c,
                _ => r,
            },
        };
        if last == parts.key {
            return Vec::new();
        }
        match self.store.peek_manifest(&last) {
            Some(m) => match KeyComponents::from_json(&m.components) {
                Some(before) => explain(node, &parts.components(self.pipeline, v), &before),
                None => vec![Reason::KeyChanged],
            },
            None => vec![Reason::LastResultGone],
        }
    }
}

fn write_file(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::atomic_file::write_atomic(dest, bytes)
}
