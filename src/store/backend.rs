//! Where the store's bytes live: a directory (local or shared), or, with the `s3`
//! feature, an S3 bucket through the object_store crate. Entries are named by their
//! path under the store's root either way.

use std::io;
use std::path::{Path, PathBuf};

pub(super) enum Backend {
    /// A directory; writes go through `tmp` and are renamed into place. Directories
    /// below `root` are made only as real directories (a symbolic link there is
    /// refused), and entries are read only as regular files (never a link, a FIFO or a
    /// device), each within its kind's size limit.
    Dir { root: PathBuf, tmp: PathBuf },
    #[cfg(feature = "s3")]
    S3(super::s3::S3),
}

impl Backend {
    pub fn is_dir(&self) -> bool {
        matches!(self, Backend::Dir { .. })
    }

    /// The entry's bytes, or `None` when there is none; an entry past `limit` is an error.
    pub fn read(&self, path: &Path, limit: crate::fsx::Limit) -> io::Result<Option<Vec<u8>>> {
        match self {
            Backend::Dir { .. } => match crate::fsx::read_entry(path, limit) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e.into_io()),
            },
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.read(path, limit),
        }
    }

    /// Write an entry whole, replacing what was there.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        match self {
            Backend::Dir { root, tmp } => {
                make_parent(root, path)?;
                crate::atomic_file::write_atomic_via(tmp, path, bytes)
            }
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.write(path, bytes),
        }
    }

    /// Write an entry only if there is none; `false` when another writer was first.
    pub fn create(&self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
        match self {
            Backend::Dir { root, tmp } => {
                make_parent(root, path)?;
                match crate::atomic_file::write_new_via(tmp, path, bytes) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            }
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.create(path, bytes),
        }
    }

    /// The entry's size, if it exists as a regular file (a link or a special file planted
    /// in its place is no entry).
    pub fn size(&self, path: &Path) -> Option<u64> {
        match self {
            Backend::Dir { .. } => std::fs::symlink_metadata(path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.size(path),
        }
    }

    /// Entries under `sub` of `root` (`blobs`, `manifests`, `runs`) with their sizes.
    pub fn list(&self, root: &Path, sub: &str) -> Vec<(String, u64)> {
        match self {
            Backend::Dir { .. } => {
                let mut out = Vec::new();
                let mut stack = vec![root.join(sub)];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        match e.metadata() {
                            Ok(m) if m.is_dir() => stack.push(e.path()),
                            Ok(m) => out.push((e.path().display().to_string(), m.len())),
                            Err(_) => {}
                        }
                    }
                }
                out
            }
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.list(sub),
        }
    }

    pub fn remove(&self, path: &Path) {
        match self {
            Backend::Dir { .. } => {
                let _ = std::fs::remove_file(path);
            }
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.remove(path),
        }
    }
}

/// The directories from `root` down to `path`'s parent, made without following a link.
fn make_parent(root: &Path, path: &Path) -> io::Result<()> {
    let rel = path
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .unwrap_or(Path::new(""));
    crate::fsx::dir_below(root, rel)
        .map(|_| ())
        .map_err(crate::fsx::FileError::into_io)
}
