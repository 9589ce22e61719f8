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

/// The fields of a manifest's first document: what answering a node needs, and all a
/// lookup (the hot path) parses. The second document holds the rest, what explains a
/// miss (names, key components, when). A manifest of one document (written before the
/// split) reads the same.
const HEAD_FIELDS: [&str; 3] = ["key", "outputs", "files"];

impl Manifest {
    /// The stored form: the head document, a newline, the rest.
    pub fn encode(&self) -> serde_json::Result<Vec<u8>> {
        let serde_json::Value::Object(mut rest) = serde_json::to_value(self)? else {
            return Err(serde::ser::Error::custom("a manifest is not a JSON object"));
        };
        let head: serde_json::Map<String, serde_json::Value> =
            HEAD_FIELDS.iter().filter_map(|f| rest.remove_entry(*f)).collect();
        let mut bytes = serde_json::to_vec_pretty(&head)?;
        bytes.push(b'\n');
        serde_json::to_writer_pretty(&mut bytes, &rest)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The whole manifest, from either stored form.
    pub fn decode(bytes: &[u8]) -> Option<Manifest> {
        let mut docs = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
        let mut whole = docs.next()?.ok()?;
        if let Some(rest) = docs.next() {
            let (serde_json::Value::Object(head), serde_json::Value::Object(rest)) = (&mut whole, rest.ok()?)
            else {
                return None;
            };
            head.extend(rest);
            if docs.next().is_some() {
                return None;
            }
        }
        serde_json::from_value(whole).ok()
    }

    /// Every blob this manifest needs.
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.outputs
            .values()
            .map(|b| (&b.digest, b.size))
            .chain(self.files.iter().map(|f| (&f.digest, f.size)))
    }
}

/// A manifest's first document ([`HEAD_FIELDS`]): what answering a node needs (read on
/// every lookup, so it keeps no more than that).
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestHead {
    pub key: Digest,
    pub outputs: BTreeMap<String, StoredBlob>,
    pub files: Vec<FileRef>,
}

impl ManifestHead {
    /// The first document of a stored manifest (the whole of one written before the split);
    /// what follows it is not read.
    pub fn decode(bytes: &[u8]) -> Option<ManifestHead> {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<ManifestHead>()
            .next()?
            .ok()
    }
}

/// Where an output's bytes are: enough to check the blob is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            key: Digest::of(b"key"),
            pipeline: "p".into(),
            node: "n".into(),
            op: "util.noop".into(),
            components: serde_json::json!({ "config": { "x": 1 } }),
            outputs: BTreeMap::from([(
                "o".to_string(),
                BlobRef {
                    digest: Digest::of(b"out"),
                    format: "token/1".into(),
                    size: 0,
                },
            )]),
            files: vec![FileRef {
                base: FileBase::Run,
                path: "plots/a.png".into(),
                digest: Digest::of(b"png"),
                size: 3,
            }],
            created_at: "2026-12-01T00:00:00.000Z".into(),
            duration_ms: 1.5,
        }
    }

    #[test]
    fn a_manifest_round_trips_and_its_head_reads_alone() {
        let m = manifest();
        let bytes = m.encode().unwrap();
        let back = Manifest::decode(&bytes).unwrap();
        assert_eq!(back.key, m.key);
        assert_eq!(back.components, m.components);
        assert_eq!(back.outputs, m.outputs);
        assert_eq!(back.files, m.files);
        assert_eq!(
            (back.created_at.as_str(), back.duration_ms),
            (m.created_at.as_str(), 1.5)
        );
        let head = ManifestHead::decode(&bytes).unwrap();
        assert_eq!(head.key, m.key);
        assert_eq!(head.outputs["o"].digest, m.outputs["o"].digest);
        // The head is read without the rest: a damaged rest does not spoil a lookup...
        let head_end = String::from_utf8_lossy(&bytes).find("}\n{").unwrap() + 2;
        let mut damaged = bytes[..head_end].to_vec();
        damaged.extend_from_slice(b"{ \"pipeline\": ");
        assert_eq!(ManifestHead::decode(&damaged).unwrap().key, m.key);
        // ...but the whole manifest is refused.
        assert!(Manifest::decode(&damaged).is_none());
    }

    #[test]
    fn a_manifest_of_one_document_still_reads() {
        let m = manifest();
        let old = serde_json::to_vec_pretty(&m).unwrap();
        assert_eq!(Manifest::decode(&old).unwrap().components, m.components);
        assert_eq!(ManifestHead::decode(&old).unwrap().files, m.files);
        assert!(Manifest::decode(b"{} {} {}").is_none(), "three documents");
        assert!(Manifest::decode(b"[1] {}").is_none());
    }
}
