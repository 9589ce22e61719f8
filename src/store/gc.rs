//! `cache info` and `cache gc`: what the store holds, and deleting what no recent run
//! reaches. A running run is protected by its lease: every key and blob it touches is
//! noted there first, under the shared gate, and gc reads live leases under the
//! exclusive gate before it deletes anything.

use super::{io, Digest, Manifest, RunRecord, Store, StoreError};
use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A temp file older than this belongs to a process that died mid-write.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Make this process's lease: a file it holds an exclusive lock on until it exits, so gc
/// can tell a live run's lease from a dead one's.
pub(super) fn create_lease(root: &Path) -> Result<(File, PathBuf), StoreError> {
    let dir = root.join("leases");
    let path = dir.join(format!("{}-{:08x}", std::process::id(), super::rand32()));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    file.lock().map_err(io(&path))?;
    Ok((file, path))
}

/// What `cache gc` keeps and removes.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// The newest N run records are roots.
    pub keep_runs: usize,
    /// When what the roots reach exceeds this, older runs stop being roots until it fits.
    pub max_size: Option<u64>,
    pub dry_run: bool,
}

/// What `cache gc` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub runs_kept: usize,
    pub runs_removed: usize,
    pub live_runs: usize,
    pub manifests_removed: usize,
    pub blobs_removed: usize,
    pub bytes_removed: u64,
    pub bytes_kept: u64,
    pub temp_files_removed: usize,
}

/// What the store holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreInfo {
    pub root: String,
    pub bytes: u64,
    pub blobs: usize,
    pub manifests: usize,
    pub runs: usize,
    pub live_runs: usize,
    pub newest_run: Option<String>,
}

/// Every file under `dir` (two levels: fan-out directory, then entry), with its size.
fn entries(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(top) = std::fs::read_dir(dir) else {
        return out;
    };
    for fan in top.flatten() {
        let Ok(inner) = std::fs::read_dir(fan.path()) else {
            continue;
        };
        for e in inner.flatten() {
            if let Ok(m) = e.metadata() {
                out.push((e.path(), m.len()));
            }
        }
    }
    out
}

fn digest_of_entry(path: &Path) -> Option<Digest> {
    let name = path.file_name()?.to_str()?;
    Digest::parse(name.strip_suffix(".json").unwrap_or(name))
}

/// Run records, newest first.
fn runs(root: &Path) -> Vec<(PathBuf, RunRecord)> {
    let mut out: Vec<(PathBuf, RunRecord)> = std::fs::read_dir(root.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let bytes = crate::fsx::read_entry(&e.path(), crate::fsx::STORE_ENTRY).ok()?;
            Some((e.path(), serde_json::from_slice(&bytes).ok()?))
        })
        .collect();
    // Newest first: by start (to the millisecond), then by when the record was written.
    let written = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    out.sort_by(|a, b| (&b.1.started_at, written(&b.0)).cmp(&(&a.1.started_at, written(&a.0))));
    out
}

/// Keys and blobs noted in the leases of runs still going; dead leases are removed.
fn live_leases(root: &Path, remove_dead: bool) -> (usize, HashSet<Digest>, HashSet<Digest>) {
    let (mut live, mut keys, mut blobs) = (0, HashSet::new(), HashSet::new());
    for e in std::fs::read_dir(root.join("leases"))
        .into_iter()
        .flatten()
        .flatten()
    {
        // Never a FIFO or a link planted among the leases (opening one would block).
        let Ok((mut f, _)) = crate::fsx::open_entry(&e.path(), crate::fsx::STORE_ENTRY) else {
            continue;
        };
        match f.try_lock_shared() {
            Ok(()) => {
                // Nobody holds it: the run is over (or was killed).
                let _ = f.unlock();
                if remove_dead {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            Err(_) => {
                live += 1;
                let mut text = String::new();
                let _ = (&mut f)
                    .take(crate::fsx::STORE_ENTRY.bytes)
                    .read_to_string(&mut text);
                for line in text.lines() {
                    match line.split_once(' ') {
                        Some(("m", d)) => keys.extend(Digest::parse(d)),
                        Some(("b", d)) => blobs.extend(Digest::parse(d)),
                        _ => {}
                    }
                }
            }
        }
    }
    (live, keys, blobs)
}

impl Store {
    pub fn info(&self) -> StoreInfo {
        let blobs = self.backend.list(&self.root, "blobs");
        let manifests = self.backend.list(&self.root, "manifests");
        let (runs, newest, live) = if self.is_dir() {
            let runs = runs(&self.root);
            let newest = runs
                .first()
                .map(|(_, r)| format!("{} ({}, {})", r.pipeline, r.started_at, r.status));
            (runs.len(), newest, live_leases(&self.root, false).0)
        } else {
            (self.backend.list(&self.root, "runs").len(), None, 0)
        };
        StoreInfo {
            root: self.root.display().to_string(),
            bytes: blobs.iter().chain(&manifests).map(|e| e.1).sum(),
            blobs: blobs.len(),
            manifests: manifests.len(),
            runs,
            live_runs: live,
            newest_run: newest,
        }
    }

    /// Delete what neither the newest `keep_runs` run records nor a live run reach.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport, StoreError> {
        if !self.is_dir() {
            return Err(StoreError::Invalid {
                path: self.root.clone(),
                message: "`cache gc` collects directory stores; an object store is not collected yet \
                          (use the bucket's lifecycle rules)"
                    .into(),
            });
        }
        if let Some(ro) = &self.read_only {
            return Err(StoreError::Invalid {
                path: self.root.clone(),
                message: format!(
                    "the store is read-only ({}); `cache gc` needs to write it",
                    ro.why
                ),
            });
        }
        let lock_path = self.root.join("lock");
        let lock = crate::fsx::open_lock(&lock_path).map_err(|e| StoreError::Io {
            path: lock_path.clone(),
            source: e.into_io(),
        })?;
        // Waits for runs to finish the lookup or write they are in the middle of.
        lock.lock().map_err(io(&lock_path))?;
        let result = self.gc_locked(opts);
        let _ = lock.unlock();
        result
    }

    fn gc_locked(&self, opts: &GcOptions) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        let runs = runs(&self.root);
        let (live, lease_keys, lease_blobs) = live_leases(&self.root, !opts.dry_run);
        report.live_runs = live;
        let blob_files = entries(&self.root.join("blobs"));
        let size_of: std::collections::HashMap<Digest, u64> = blob_files
            .iter()
            .filter_map(|(p, n)| Some((digest_of_entry(p)?, *n)))
            .collect();
        let manifest = |k: &Digest| -> Option<Manifest> { self.peek_manifest(k) };

        let mut keep = opts.keep_runs.min(runs.len());
        let (keys, blobs) = loop {
            let mut keys: BTreeSet<Digest> = lease_keys.iter().copied().collect();
            for (_, r) in &runs[..keep] {
                keys.extend(r.nodes.values().copied());
            }
            let mut blobs: HashSet<Digest> = lease_blobs.clone();
            for k in &keys {
                if let Some(m) = manifest(k) {
                    blobs.extend(m.blobs().map(|(d, _)| *d));
                }
            }
            let size: u64 = blobs.iter().filter_map(|d| size_of.get(d)).sum();
            match opts.max_size {
                Some(max) if size > max && keep > 0 => keep -= 1,
                _ => {
                    report.bytes_kept = size;
                    break (keys, blobs);
                }
            }
        };
        report.runs_kept = keep;
        report.runs_removed = runs.len() - keep;

        let remove = |path: &Path| {
            if !opts.dry_run {
                let _ = std::fs::remove_file(path);
            }
        };
        for (path, _) in &runs[keep..] {
            remove(path);
        }
        for (path, _) in entries(&self.root.join("manifests")) {
            if digest_of_entry(&path).is_none_or(|k| !keys.contains(&k)) {
                report.manifests_removed += 1;
                remove(&path);
            }
        }
        for (path, size) in &blob_files {
            if digest_of_entry(path).is_none_or(|d| !blobs.contains(&d)) {
                report.blobs_removed += 1;
                report.bytes_removed += size;
                remove(path);
            }
        }
        // Last-key pointers to removed manifests only explain misses; drop them too.
        for (path, _) in entries(&self.root.join("last")) {
            let key = crate::fsx::read_entry(&path, super::LAST_KEY)
                .ok()
                .and_then(|t| Digest::parse(String::from_utf8_lossy(&t).trim()));
            if key.is_none_or(|k| !keys.contains(&k)) {
                remove(&path);
            }
        }
        let now = SystemTime::now();
        for e in std::fs::read_dir(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP);
            if old {
                report.temp_files_removed += 1;
                remove(&e.path());
            }
        }
        Ok(report)
    }
}
