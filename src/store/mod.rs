//! The content-addressed artifact store: blobs named by their BLAKE3 digest, one
//! manifest per node key, a record per finished run, and leases that keep a running
//! run's entries safe from `cache gc`.
//!
//! ```text
//! <root>/blobs/ab/abcdef…        encoded artifacts and written files, named by content
//! <root>/manifests/12/1234…json  per node key: output and file digests, then (a second
//!                                JSON document, not read on a hit) its key components
//! <root>/last/<pipeline>/<node>  the key a node last ran with (for "why did it run")
//! <root>/runs/<utc>-<name>-<r>.json  per finished run: node → key (gc roots)
//! <root>/leases/<id>             per running run: keys and blobs it touches, once each (gc roots)
//! <root>/tmp/                    temp files, renamed into place when whole
//! <root>/lock                    shared by runs while they touch entries; exclusive for gc
//! ```
//!
//! Nothing here follows a symbolic link: the layout's directories are made or accepted
//! only as real directories, the lock file is opened without following one, and entries
//! (manifests, `last/` pointers, run records, leases, blobs) are read only as regular
//! files within a size limit ([`crate::fsx`]), so a planted link, FIFO or device is an
//! error or a miss, never a hang or a write elsewhere.
//!
//! A store nexusml cannot write (a shared CI cache, a colleague's results: a read-only
//! directory, or `NEXUSML_STORE_READ_ONLY=1`) opens read-only: hits are served, no lock
//! file or lease is created, and every put is a no-op, said once per process.
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
pub use manifest::{BlobRef, FileBase, FileRef, Manifest, ManifestHead, RunRecord, StoredBlob};

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The store's layout version; part of every key, so a layout change is a clean miss.
pub const SCHEMA: u32 = 1;

/// The store used when neither `--store` nor `NEXUSML_STORE` names one.
pub const DEFAULT_DIR: &str = ".nexusml/store";

/// Set (to anything but empty or `0`) to open every directory store read-only, writable
/// or not: for a shared store that must not change, and where permissions do not stop
/// writes (root).
pub const READ_ONLY_ENV: &str = "NEXUSML_STORE_READ_ONLY";

/// The largest `last/` pointer (a digest in hex).
pub(crate) const LAST_KEY: crate::fsx::Limit = crate::fsx::Limit {
    what: "a store pointer",
    bytes: 4096,
};

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
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
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
        // Parsed from the text in place: no string per digest.
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest of 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                Digest::parse(s).ok_or_else(|| E::custom(format!("`{s}` is not a digest")))
            }
        }
        d.deserialize_str(Hex)
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

/// The store's shared lock, held across several lookups (see [`Store::hold`]).
pub struct Held<'a> {
    _guard: Option<GateGuard<'a>>,
}

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
    lease: Mutex<Lease>,
    /// Opened read-only: puts are no-ops (said once), no lease is taken.
    read_only: Option<ReadOnly>,
}

/// This process's lease file and what it already holds: a key or blob is noted once (the
/// file lives as long as the process, so a second line would say nothing new).
#[derive(Default)]
struct Lease {
    file: Option<File>,
    noted: std::collections::HashSet<(LeaseKind, Digest)>,
}

/// What a lease line keeps: a manifest (by key) or a blob.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum LeaseKind {
    Manifest,
    Blob,
}

/// Why a store is read-only, and whether that was said yet.
struct ReadOnly {
    why: String,
    said: std::sync::atomic::AtomicBool,
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
        let forced = std::env::var_os(READ_ONLY_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        if forced {
            return Self::open_dir_read_only(root, format!("{READ_ONLY_ENV} is set"));
        }
        match Self::open_dir_writable(&root) {
            Ok(file) => Ok(Store {
                backend: Backend::Dir {
                    tmp: root.join("tmp"),
                    root: root.clone(),
                },
                root,
                gate: Some(Gate {
                    file,
                    holders: Mutex::new(0),
                }),
                lease: Mutex::new(Lease::default()),
                read_only: None,
            }),
            Err((path, e)) if unwritable(&e) && root.is_dir() => {
                Self::open_dir_read_only(root, format!("{} is not writable: {e}", path.display()))
            }
            Err((path, source)) => Err(StoreError::Io { path, source }),
        }
    }

    /// Open the directory store at `root` read-only, whether or not it could be written.
    pub fn open_read_only(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        Self::open_dir_read_only(root.into(), "opened read-only".into())
    }

    /// The layout's directories (never through a link) and the lock file.
    fn open_dir_writable(root: &Path) -> Result<File, (PathBuf, std::io::Error)> {
        for d in DIRS {
            crate::fsx::dir_below(root, Path::new(d)).map_err(|e| (root.join(d), e.into_io()))?;
        }
        let lock = root.join("lock");
        crate::fsx::open_lock(&lock).map_err(|e| (lock, e.into_io()))
    }

    fn open_dir_read_only(root: PathBuf, why: String) -> Result<Store, StoreError> {
        let meta = std::fs::metadata(&root).map_err(io(&root))?;
        if !meta.is_dir() {
            return Err(StoreError::Invalid {
                path: root,
                message: "not a directory".into(),
            });
        }
        // Take the gate shared when the store has one, so its owner's gc still waits for
        // this run's lookups; a store never written has no lock file, and none is made.
        let lock = root.join("lock");
        let gate = crate::fsx::open_lock_read(&lock)
            .map_err(|e| StoreError::Io {
                path: lock.clone(),
                source: e.into_io(),
            })?
            .map(|file| Gate {
                file,
                holders: Mutex::new(0),
            });
        tracing::debug!("artifact store {} is read-only: {why}", root.display());
        Ok(Store {
            backend: Backend::Dir {
                tmp: root.join("tmp"),
                root: root.clone(),
            },
            root,
            gate,
            lease: Mutex::new(Lease::default()),
            read_only: Some(ReadOnly {
                why,
                said: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Whether the store was opened read-only (puts are no-ops).
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// For a put: `true` when the store is read-only and the put is to be skipped; the
    /// first skip says so once.
    fn skip_put(&self) -> bool {
        let Some(ro) = &self.read_only else {
            return false;
        };
        if !ro.said.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "the artifact store {} is read-only ({}): cached results are used, but nothing this run \
                 computes is stored",
                self.root.display(),
                ro.why
            );
        }
        true
    }

    #[cfg(feature = "s3")]
    fn open_s3(url: &str) -> Result<Store, StoreError> {
        let s3 = s3::S3::open(url).map_err(io(Path::new(url)))?;
        Ok(Store {
            root: PathBuf::from(url.trim_end_matches('/')),
            backend: Backend::S3(s3),
            gate: None,
            lease: Mutex::new(Lease::default()),
            read_only: None,
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
        self.entry_path("blobs", d, "")
    }

    fn manifest_path(&self, key: &Digest) -> PathBuf {
        self.entry_path("manifests", key, ".json")
    }

    /// `<root>/<dir>/<first two hex digits>/<hex><suffix>`, built in one allocation: every
    /// lookup makes two.
    fn entry_path(&self, dir: &str, d: &Digest, suffix: &str) -> PathBuf {
        let hex = d.hex();
        let root = self.root.as_os_str();
        let mut p = std::ffi::OsString::with_capacity(root.len() + dir.len() + hex.len() + suffix.len() + 6);
        p.push(root);
        // As `Path::join` would: no separator after an empty root or one ending in `/`.
        if !root.is_empty() && !root.as_encoded_bytes().ends_with(b"/") {
            p.push("/");
        }
        p.push(dir);
        p.push("/");
        p.push(&hex[..2]);
        p.push("/");
        p.push(&hex);
        p.push(suffix);
        PathBuf::from(p)
    }

    /// Write `bytes` to `path` whole (an exclusive temp file renamed into place, or one
    /// object put).
    fn publish(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        self.backend.write(path, bytes).map_err(io(path))
    }

    fn enter(&self) -> Option<GateGuard<'_>> {
        self.gate.as_ref().map(Gate::enter)
    }

    /// Hold the shared lock until the guard drops: the lookups made meanwhile take it
    /// without a system call. Held for one node's answer, never while an op runs (gc
    /// waits for it).
    pub fn hold(&self) -> Held<'_> {
        Held { _guard: self.enter() }
    }

    /// Note a key or blob in this process's lease (under the gate), so a concurrent gc
    /// keeps it.
    fn lease_note(&self, kind: LeaseKind, d: &Digest) -> Result<(), StoreError> {
        if self.gate.is_none() || self.read_only.is_some() {
            return Ok(());
        }
        let mut lease = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if lease.noted.contains(&(kind, *d)) {
            return Ok(());
        }
        if lease.file.is_none() {
            let (file, _path) = gc::create_lease(&self.root)?;
            lease.file = Some(file);
        }
        if let Some(f) = lease.file.as_mut() {
            let tag = match kind {
                LeaseKind::Manifest => 'm',
                LeaseKind::Blob => 'b',
            };
            let p = self.root.join("leases");
            f.write_all(format!("{tag} {d}\n").as_bytes()).map_err(io(&p))?;
        }
        lease.noted.insert((kind, *d));
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
        if self.skip_put() {
            return Ok(());
        }
        let _gate = self.enter();
        self.lease_note(LeaseKind::Blob, d)?;
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
        let bytes = match self.backend.read(&path, crate::fsx::STORE_BLOB) {
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
            if self.read_only.is_none() {
                self.backend.remove(&path);
            }
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
        let bytes = match self.backend.read(&path, crate::fsx::STORE_ENTRY) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; treating it as a miss", path.display());
                return None;
            }
        };
        match ManifestHead::decode(&bytes) {
            Some(m) if m.key == *key => {
                if let Err(e) = self.lease_note(LeaseKind::Manifest, key) {
                    tracing::warn!("{e}");
                }
                Some(m)
            }
            Some(_) | None => {
                tracing::warn!("{} is damaged; treating it as a miss", path.display());
                None
            }
        }
    }

    /// Read a manifest without taking a lease (for `dag status` and explanations).
    pub fn peek_manifest(&self, key: &Digest) -> Option<Manifest> {
        let bytes = self
            .backend
            .read(&self.manifest_path(key), crate::fsx::STORE_ENTRY)
            .ok()??;
        Manifest::decode(&bytes).filter(|m| m.key == *key)
    }

    /// Store a manifest (its blobs must already be stored) and remember it as the node's
    /// last key.
    pub fn put_manifest(&self, m: &Manifest) -> Result<(), StoreError> {
        if self.skip_put() {
            return Ok(());
        }
        let _gate = self.enter();
        self.lease_note(LeaseKind::Manifest, &m.key)?;
        let bytes = m.encode().map_err(|e| StoreError::Invalid {
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
        let bytes = self
            .backend
            .read(&self.last_path(pipeline, node), LAST_KEY)
            .ok()??;
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
        let read = |name: &str| {
            let bytes = self
                .backend
                .read(&self.root.join("runs").join(name), crate::fsx::STORE_ENTRY)
                .ok()??;
            serde_json::from_slice::<RunRecord>(&bytes)
                .ok()
                .filter(|r| r.pipeline == pipeline)
        };
        // Names start with the second a run started: runs of one second are told apart
        // by the milliseconds inside (their names' order is their hashes').
        let mut newest: Option<RunRecord> = None;
        for name in names.iter().rev() {
            if let Some(n) = &newest {
                if !name.starts_with(&n.started_compact) {
                    break;
                }
            }
            if let Some(r) = read(name) {
                if newest.as_ref().is_none_or(|n| r.started_at > n.started_at) {
                    newest = Some(r);
                }
            }
        }
        newest
    }

    /// Record a finished run: its node keys become gc roots. `None` when the store is
    /// read-only.
    pub fn put_run(&self, record: &RunRecord) -> Result<Option<PathBuf>, StoreError> {
        if self.skip_put() {
            return Ok(None);
        }
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
        Ok(Some(path))
    }
}

/// A directory this process may read but not write (permissions, a read-only mount).
fn unwritable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
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

/// The digest of a file a node reads (streamed). Only a regular file of at most
/// [`crate::fsx::DIGEST`] bytes is read: a FIFO, a device such as `/dev/zero` or a larger
/// file is an error (the node's key then records the file as unreadable, and the op that
/// reads it reports the real problem), never a hang.
pub fn digest_file(path: &Path) -> std::io::Result<Digest> {
    let (f, _) = crate::fsx::open(path, crate::fsx::DIGEST).map_err(crate::fsx::FileError::into_io)?;
    let mut f = f.take(crate::fsx::DIGEST.bytes);
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
    fn entry_paths_are_what_joining_makes() {
        let d = Digest::of(b"x");
        let hex = d.hex();
        for root in ["/tmp/store", "/tmp/store/", "store", "s3://bucket/prefix"] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(dir.path()).unwrap();
            store.root = PathBuf::from(root);
            let joined = Path::new(root).join("blobs").join(&hex[..2]).join(&hex);
            assert_eq!(store.blob_path(&d), joined, "root {root}");
            let joined = Path::new(root)
                .join("manifests")
                .join(&hex[..2])
                .join(format!("{hex}.json"));
            assert_eq!(store.manifest_path(&d), joined, "root {root}");
        }
    }

    #[test]
    fn digests_print_and_parse() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(&d.hex()), Some(d));
        assert_eq!(Digest::parse("zz"), None);
        assert_eq!(Digest::parse(&d.hex().to_uppercase()), Some(d));
        assert_eq!(Digest::parse(&format!("+{}", &d.hex()[1..])), None);
        assert_eq!(file_safe("../a b"), "_a_b");
    }

    #[test]
    fn a_read_only_store_serves_hits_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = Store::open(dir.path()).unwrap().put_blob(b"hello").unwrap();
        std::fs::remove_file(dir.path().join("lock")).unwrap();
        let leases = || std::fs::read_dir(dir.path().join("leases")).unwrap().count();
        let leases_before = leases();
        let ro = Store::open_read_only(dir.path()).unwrap();
        assert!(ro.is_read_only());
        assert_eq!(ro.get_blob(&d).unwrap(), b"hello");
        let other = ro.put_blob(b"other").unwrap();
        assert!(!ro.has_blob(&other, 5), "a put is a no-op");
        let record = RunRecord {
            pipeline: "p".into(),
            file: "p.toml".into(),
            started_at: "2026-12-01T00:00:00.000Z".into(),
            started_compact: "20261201T000000Z".into(),
            status: "ok".into(),
            nodes: Default::default(),
        };
        assert!(ro.put_run(&record).unwrap().is_none());
        assert!(!dir.path().join("lock").exists(), "no lock file made");
        assert_eq!(leases(), leases_before, "no lease");
        assert_eq!(std::fs::read_dir(dir.path().join("runs")).unwrap().count(), 0);
        let e = ro
            .gc(&GcOptions {
                keep_runs: 1,
                max_size: None,
                dry_run: false,
            })
            .unwrap_err();
        assert!(e.to_string().contains("`cache gc` needs to write it"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn special_and_linked_entries_are_misses_not_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"k");
        let path = store.manifest_path(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let fifo = |p: &Path| {
            assert!(std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .unwrap()
                .success());
        };
        fifo(&path);
        assert!(store.get_manifest(&key).is_none());
        assert!(store.peek_manifest(&key).is_none());
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert!(store.get_manifest(&key).is_none());
        let last = store.last_path("p", "n");
        std::fs::create_dir_all(last.parent().unwrap()).unwrap();
        fifo(&last);
        assert_eq!(store.last_key("p", "n"), None);
        let e = digest_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "it is a character device, not a regular file");
        let e = digest_file(&last).unwrap_err();
        assert_eq!(e.to_string(), "it is a FIFO, not a regular file");
        let blob = Digest::of(b"blob");
        let bp = store.blob_path(&blob);
        std::fs::create_dir_all(bp.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &bp).unwrap();
        assert!(!store.has_blob(&blob, 0), "a link is no blob");
        assert!(store.get_blob(&blob).is_err());
    }
}
