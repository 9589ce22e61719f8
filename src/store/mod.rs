//! The content-addressed artifact store: blobs named by their BLAKE3 digest, one
//! manifest per node key, a record per finished run, and leases that keep a running
//! run's entries safe from `cache gc`.
//!
//! ```text
//! <root>/blobs/ab/abcdef…        encoded artifacts and written files, named by content
//! <root>/manifests/12/1234…json  per node key: its key components, output and file digests
//! <root>/last/<pipeline>/<node>  the key a node last ran with (for "why did it run")
//! <root>/runs/<utc>-<name>-<r>.json  per finished run: node → key (gc roots)
//! <root>/leases/<id>             per running run: keys and blobs it touches (gc roots)
//! <root>/tmp/                    temp files, renamed into place when whole
//! <root>/lock                    shared by runs while they touch entries; exclusive for gc
//! ```
//!
//! Every write goes to an exclusive, unpredictably named temp file and is renamed into
//! place, so a reader never sees half an entry. Every blob read is checked against its
//! digest: a missing or corrupt blob is a miss (the caller recomputes), never a wrong
//! value. This module knows bytes, not artifact types: the engine encodes and decodes.

mod backend;
mod gc;
mod manifest;
#[cfg(feature = "s3")]
mod s3;

use backend::Backend;

pub use gc::{GcOptions, GcReport, StoreInfo};
pub use manifest::{BlobRef, FileBase, FileRef, Manifest, ManifestHead, RunRecord};

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The store's layout version; part of every key, so a layout change is a clean miss.
pub const SCHEMA: u32 = 1;

/// The store used when neither `--store` nor `NEXUSML_STORE` names one.
pub const DEFAULT_DIR: &str = ".nexusml/store";

/// `flag`, else `$NEXUSML_STORE`, else `.nexusml/store` (in the current directory).
pub fn resolve_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("NEXUSML_STORE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the artifact store at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid store entry: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A BLAKE3 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    pub fn parse(hex: &str) -> Option<Digest> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest(out))
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a digest")))
    }
}

/// Why a blob could not be read. Either way the caller recomputes what it held.
#[derive(Debug, thiserror::Error)]
pub enum BlobMiss {
    #[error("blob {0} is not in the store")]
    Missing(String),
    #[error("blob {0} is corrupt (its content no longer matches its digest); removed")]
    Corrupt(String),
    #[error("cannot read blob {digest}: {source}")]
    Io {
        digest: String,
        #[source]
        source: std::io::Error,
    },
}

/// The gate a run holds (shared) while it looks up or adds entries, and `cache gc` holds
/// (exclusive) while it marks and sweeps. Threads of one run share one flock.
struct Gate {
    file: File,
    holders: Mutex<usize>,
}

struct GateGuard<'a>(&'a Gate);

impl Gate {
    fn enter(&self) -> GateGuard<'_> {
        let mut n = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        if *n == 0 {
            // Blocks only while a gc sweeps.
            let _ = self.file.lock_shared();
        }
        *n += 1;
        GateGuard(self)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let mut n = self.0.holders.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            let _ = self.0.file.unlock();
        }
    }
}

/// An open store.
pub struct Store {
    root: PathBuf,
    backend: Backend,
    /// Only a directory store has a gate and leases (`cache gc` runs on directories).
    gate: Option<Gate>,
    /// This process's lease, made on the first write or lookup that needs one.
    lease: Mutex<Option<File>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

const DIRS: [&str; 6] = ["blobs", "manifests", "last", "runs", "leases", "tmp"];

impl Store {
    /// Open (creating if needed) the store at `root`: a directory, `file://DIR`, or
    /// `s3://bucket/prefix` (with the `s3` feature).
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root: PathBuf = root.into();
        let text = root.to_string_lossy().into_owned();
        if text.starts_with("s3://") {
            return Self::open_s3(&text);
        }
        let root = match text.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None => root,
        };
        for d in DIRS {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let lock = root.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io(&lock))?;
        Ok(Store {
            backend: Backend::Dir {
                tmp: root.join("tmp"),
            },
            root,
            gate: Some(Gate {
                file,
                holders: Mutex::new(0),
            }),
            lease: Mutex::new(None),
        })
    }

    #[cfg(feature = "s3")]
    fn open_s3(url: &str) -> Result<Store, StoreError> {
        let s3 = s3::S3::open(url).map_err(io(Path::new(url)))?;
        Ok(Store {
            root: PathBuf::from(url.trim_end_matches('/')),
            backend: Backend::S3(s3),
            gate: None,
            lease: Mutex::new(None),
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_s3(url: &str) -> Result<Store, StoreError> {
        Err(StoreError::Invalid {
            path: url.into(),
            message: "this nexusml was built without S3 support: build it with `--features s3`".into(),
        })
    }

    /// Whether the store is a directory (an object store has no leases, and no gc yet).
    pub fn is_dir(&self) -> bool {
        self.backend.is_dir()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join("blobs").join(&hex[..2]).join(&hex)
    }

    fn manifest_path(&self, key: &Digest) -> PathBuf {
        let hex = key.hex();
        self.root
            .join("manifests")
            .join(&hex[..2])
            .join(format!("{hex}.json"))
    }

    /// Write `bytes` to `path` whole (an exclusive temp file renamed into place, or one
    /// object put).
    fn publish(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        self.backend.write(path, bytes).map_err(io(path))
    }

    fn enter(&self) -> Option<GateGuard<'_>> {
        self.gate.as_ref().map(Gate::enter)
    }

    /// Note `line` in this process's lease (under the gate), so a concurrent gc keeps it.
    fn lease_note(&self, line: &str) -> Result<(), StoreError> {
        if self.gate.is_none() {
            return Ok(());
        }
        let mut lease = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if lease.is_none() {
            let (file, _path) = gc::create_lease(&self.root)?;
            *lease = Some(file);
        }
        if let Some(f) = lease.as_mut() {
            let p = self.root.join("leases");
            f.write_all(line.as_bytes()).map_err(io(&p))?;
        }
        Ok(())
    }

    /// Store `bytes`; returns their digest. An existing blob of that digest is kept.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of(bytes);
        self.put_blob_as(&d, bytes)?;
        Ok(d)
    }

    /// Store `bytes` already known to have digest `d`.
    pub fn put_blob_as(&self, d: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let _gate = self.enter();
        self.lease_note(&format!("b {d}\n"))?;
        let path = self.blob_path(d);
        match self.backend.size(&path) {
            Some(n) if n == bytes.len() as u64 => return Ok(()),
            // A damaged blob of the wrong size: replace it.
            Some(_) => self.backend.remove(&path),
            None => {}
        }
        // Create only if absent: a concurrent writer of the same content may win; the
        // content is the same either way.
        self.backend.create(&path, bytes).map(|_| ()).map_err(io(&path))
    }

    /// Whether a blob is present with the expected size (its content is checked on read).
    pub fn has_blob(&self, d: &Digest, size: u64) -> bool {
        self.backend.size(&self.blob_path(d)) == Some(size)
    }

    /// Read a blob and check it against its digest. A corrupt blob is removed, so the
    /// recomputed value can take its place.
    pub fn get_blob(&self, d: &Digest) -> Result<Vec<u8>, BlobMiss> {
        let path = self.blob_path(d);
        let bytes = match self.backend.read(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(BlobMiss::Missing(d.short())),
            Err(source) => {
                return Err(BlobMiss::Io {
                    digest: d.short(),
                    source,
                })
            }
        };
        if Digest::of(&bytes) != *d {
            self.backend.remove(&path);
            return Err(BlobMiss::Corrupt(d.short()));
        }
        Ok(bytes)
    }

    /// The manifest stored under `key`, if any (an unreadable one is a miss, with a warning),
    /// without the key components (the hit path does not need them).
    /// A hit is noted in this run's lease first, so gc cannot take it away mid-run.
    pub fn get_manifest(&self, key: &Digest) -> Option<ManifestHead> {
        let _gate = self.enter();
        let path = self.manifest_path(key);
        let bytes = match self.backend.read(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; treating it as a miss", path.display());
                return None;
            }
        };
        match serde_json::from_slice::<ManifestHead>(&bytes) {
            Ok(m) if m.key == *key => {
                if let Err(e) = self.lease_note(&format!("m {key}\n")) {
                    tracing::warn!("{e}");
                }
                Some(m)
            }
            Ok(_) | Err(_) => {
                tracing::warn!("{} is damaged; treating it as a miss", path.display());
                None
            }
        }
    }

    /// Read a manifest without taking a lease (for `dag status` and explanations).
    pub fn peek_manifest(&self, key: &Digest) -> Option<Manifest> {
        let bytes = self.backend.read(&self.manifest_path(key)).ok()??;
        serde_json::from_slice::<Manifest>(&bytes)
            .ok()
            .filter(|m| m.key == *key)
    }

    /// Store a manifest (its blobs must already be stored) and remember it as the node's
    /// last key.
    pub fn put_manifest(&self, m: &Manifest) -> Result<(), StoreError> {
        let _gate = self.enter();
        self.lease_note(&format!("m {}\n", m.key))?;
        let bytes = serde_json::to_vec_pretty(m).map_err(|e| StoreError::Invalid {
            path: self.manifest_path(&m.key),
            message: e.to_string(),
        })?;
        self.publish(&self.manifest_path(&m.key), &bytes)?;
        self.publish(&self.last_path(&m.pipeline, &m.node), m.key.hex().as_bytes())
    }

    fn last_path(&self, pipeline: &str, node: &str) -> PathBuf {
        self.root
            .join("last")
            .join(file_safe(pipeline))
            .join(file_safe(node))
    }

    /// The key `node` of `pipeline` last ran with.
    pub fn last_key(&self, pipeline: &str, node: &str) -> Option<Digest> {
        let bytes = self.backend.read(&self.last_path(pipeline, node)).ok()??;
        Digest::parse(String::from_utf8_lossy(&bytes).trim())
    }

    /// The newest finished run of `pipeline` (the keys its nodes had, cached or computed).
    /// Records are named by their start, so the newest name is the newest run.
    pub fn newest_run(&self, pipeline: &str) -> Option<RunRecord> {
        let infix = format!("-{}-", file_safe(pipeline));
        let mut names: Vec<String> = self
            .backend
            .list(&self.root, "runs")
            .into_iter()
            .filter_map(|(name, _)| Some(Path::new(&name).file_name()?.to_str()?.to_string()))
            .filter(|name| name.contains(&infix) && name.ends_with(".json"))
            .collect();
        names.sort();
        names.into_iter().rev().find_map(|name| {
            let bytes = self.backend.read(&self.root.join("runs").join(name)).ok()??;
            serde_json::from_slice::<RunRecord>(&bytes)
                .ok()
                .filter(|r| r.pipeline == pipeline)
        })
    }

    /// Record a finished run: its node keys become gc roots.
    pub fn put_run(&self, record: &RunRecord) -> Result<PathBuf, StoreError> {
        let name = format!(
            "{}-{}-{:08x}.json",
            record.started_compact,
            file_safe(&record.pipeline),
            rand32()
        );
        let path = self.root.join("runs").join(name);
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| StoreError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        self.publish(&path, &bytes)?;
        Ok(path)
    }
}

/// A name safe as one path component.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// 32 unpredictable bits: std's per-process random hash keys.
fn rand32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

/// Read a whole file, for digesting files a node reads.
pub fn digest_file(path: &Path) -> std::io::Result<Digest> {
    let mut f = File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest(*h.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(b"hello").unwrap();
        assert_eq!(store.get_blob(&d).unwrap(), b"hello");
        assert!(store.has_blob(&d, 5));
        std::fs::write(store.blob_path(&d), b"hellO").unwrap();
        assert!(matches!(store.get_blob(&d), Err(BlobMiss::Corrupt(_))));
        assert!(matches!(store.get_blob(&d), Err(BlobMiss::Missing(_))), "removed");
        store.put_blob(b"hello").unwrap();
        assert_eq!(store.get_blob(&d).unwrap(), b"hello", "re-stored");
    }

    #[test]
    fn digests_print_and_parse() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(&d.hex()), Some(d));
        assert_eq!(Digest::parse("zz"), None);
        assert_eq!(file_safe("../a b"), "_a_b");
    }
}
