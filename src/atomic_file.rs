//! Writing files so that a crash never leaves half of one, and nobody can redirect the
//! write: every file nexusml writes goes to an exclusively created temp file with an
//! unpredictable name (never following a symlink planted in its place), is flushed to
//! disk, then renamed over the target.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically (temp file beside it).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Write `bytes` to `path` atomically through a temp file in `tmp_dir`, which must be on
/// the same file system (the artifact store keeps its temp files in one place).
pub fn write_atomic_via(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fill_and_persist(tmp_dir, path, ".tmp", |w| w.write_all(bytes))
}

/// Write through `fill` into a temp file beside `path`, then rename it to `path`. On
/// error the temp file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    fill_and_persist(parent(path), path, ".tmp", fill)
}

/// Let `fill` write a file by path (for encoders that only take a path, such as the
/// chart backend, which picks its format from the extension `suffix`), then rename it
/// to `path`.
pub fn write_atomic_by_path<E>(
    path: &Path,
    suffix: &str,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<std::io::Result<()>, E> {
    let tmp = temp_in(parent(path), path, suffix);
    let tmp = match tmp {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    fill(tmp.path())?;
    Ok(tmp.persist(path).map(|_| ()).map_err(|e| e.error))
}

/// Write `bytes` to `path` only if nothing is there yet (the name is taken atomically:
/// a concurrent writer of the same name gets `AlreadyExists`, never an overwrite).
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_new_via(parent(path), path, bytes)
}

/// [`write_new`] through a temp file in `tmp_dir` (on the same file system).
pub fn write_new_via(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_in(tmp_dir, path, ".tmp")?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = std::io::BufWriter::new(file);
    w.write_all(bytes)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    tmp_path.persist_noclobber(path).map_err(|e| e.error)
}

/// A lock on a directory's `.nexusml.lock`, released on drop. Writers of a group of
/// files that belong together (a model and its metadata) hold it exclusively while they
/// replace them; readers hold it shared while they read them, so a reader never sees
/// one file of the group new and the other old. The lock file is never opened through a
/// symbolic link ([`crate::fsx::open_lock`]): one planted there is refused.
pub struct DirLock(std::fs::File);

pub fn lock_dir(dir: &Path, exclusive: bool) -> std::io::Result<DirLock> {
    // A refusal names the lock file: callers name only the directory.
    let file = crate::fsx::open_lock(&dir.join(".nexusml.lock")).map_err(|e| match e {
        crate::fsx::FileError::Io { source, .. } => source,
        refused => std::io::Error::new(std::io::ErrorKind::InvalidInput, refused.to_string()),
    })?;
    if exclusive {
        file.lock()?;
    } else {
        file.lock_shared()?;
    }
    Ok(DirLock(file))
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Remove temp files (`.<prefix>*.tmp`) in `dir` older than `age`: what a killed writer
/// left. A live writer's temp file is seconds old.
pub fn remove_stale_temps(dir: &Path, prefix: &str, age: std::time::Duration) -> usize {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(&format!(".{prefix}")) && name.ends_with(".tmp")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > age);
        if old && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_in(dir: &Path, path: &Path, suffix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    // O_CREAT|O_EXCL with a random name: a planted file or symlink makes it pick another.
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(suffix);
    // tempfile creates 0600 files; the finished file gets what `File::create` would give
    // (0666 less the umask), so a shared model, store or plot is readable as the user's
    // umask intends.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

fn fill_and_persist(
    dir: &Path,
    path: &Path,
    suffix: &str,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temp_in(dir, path, suffix)?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = std::io::BufWriter::new(file);
    fill(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    // `tmp_path` deletes the temp file if the rename fails or is never reached.
    tmp_path.persist(path).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {

    #[cfg(unix)]
    #[test]
    fn files_get_the_mode_file_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let atomic = dir.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain), "not tempfile's 0600");
    }

    use super::*;

    #[test]
    fn failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
    }

    #[test]
    fn write_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.nxm");
        write_new(&p, b"first").unwrap();
        let e = write_new(&p, b"second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // The old scheme's predictable temp name, planted as a symlink to the victim.
        let planted = dir.path().join(format!(".out.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let out = dir.path().join("out.json");
        write_atomic(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
    }
}
