//! Opening what nexusml reads, and the lock files and directories it makes, so that no
//! input hangs it, exhausts its memory or redirects a write. Every file read goes
//! through here:
//!
//! - [`open`], [`read`], [`read_to_string`]: a regular file only (a FIFO, a device such
//!   as `/dev/zero`, a socket or a directory is refused before it is opened), no larger
//!   than the [`Limit`] of its kind (checked before any byte is read, and the read stops
//!   there whatever the file claims). Opened non-blocking, so a file swapped for a FIFO
//!   between the check and the open cannot block either; the handle is checked again.
//!   A symbolic link to a regular file is followed: a data file may live elsewhere.
//! - [`read_entry`]: the same for entries nexusml itself wrote (store manifests, run
//!   records, `last/` pointers), where a symbolic link is refused: nobody links there.
//! - [`open_lock`]: a lock file, created if absent, never through a symbolic link.
//! - [`dir_below`], [`dir`]: directories nexusml makes under a root the user named (the store's
//!   layout, `visualizations/`), each created or accepted only if it is a real
//!   directory, never a symbolic link.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most bytes one kind of file may have, and its name for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub what: &'static str,
    pub bytes: u64,
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A pipeline file (a 1,000,000-node chain is about 90 MB).
pub const PIPELINE: Limit = Limit {
    what: "a pipeline file",
    bytes: 256 * MIB,
};
/// A `--params` file.
pub const PARAMS: Limit = Limit {
    what: "a --params file",
    bytes: 16 * MIB,
};
/// A feature config (`features.toml`).
pub const FEATURES: Limit = Limit {
    what: "a feature config",
    bytes: 16 * MIB,
};
/// An inventory CSV: read whole, then parsed (a 1 GiB file takes a few GB of memory).
pub const DATA: Limit = Limit {
    what: "a CSV data file",
    bytes: GIB,
};
/// A test-rows file (one row index per line).
pub const TEST_ROWS: Limit = Limit {
    what: "a test-rows file",
    bytes: 64 * MIB,
};
/// A model file (the 200-tree model of a 20,000-row inventory is about 90 MB).
pub const MODEL: Limit = Limit {
    what: "a model file",
    bytes: 4 * GIB,
};
/// A model's `_metadata.json` (a few KB).
pub const METADATA: Limit = Limit {
    what: "model metadata",
    bytes: 16 * MIB,
};
/// A store manifest, run record or lease (kilobytes).
pub const STORE_ENTRY: Limit = Limit {
    what: "a store entry",
    bytes: 64 * MIB,
};
/// A store blob (an encoded artifact or a written file).
pub const STORE_BLOB: Limit = Limit {
    what: "a store blob",
    bytes: 64 * GIB,
};
/// A file a node reads, hashed (streamed) into the node's key: the largest of the
/// kinds above.
pub const DIGEST: Limit = Limit {
    what: "a file a node reads",
    bytes: 4 * GIB,
};

/// Why a file was not opened or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path} is {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "{path} is {size} bytes, more than {} may be ({} bytes = {})",
        limit.what,
        limit.bytes,
        human(limit.bytes)
    )]
    TooLarge { path: PathBuf, size: u64, limit: Limit },
    #[error("{path} is a symbolic link; nexusml does not follow one for {what}: remove it")]
    Symlink { path: PathBuf, what: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    /// As an `io::Error` for callers whose errors carry one: an I/O failure keeps its
    /// kind (`NotFound` stays `NotFound`), the others are `InvalidInput` saying why
    /// ([`FileError::reason`]: the caller's message names the path).
    pub fn into_io(self) -> std::io::Error {
        match self {
            FileError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.reason()),
        }
    }

    /// The message without the path (for callers that name the path themselves).
    pub fn reason(&self) -> String {
        match self {
            FileError::NotAFile { kind, .. } => format!("it is {kind}, not a regular file"),
            FileError::TooLarge { size, limit, .. } => format!(
                "it is {size} bytes, more than {} may be ({} bytes = {})",
                limit.what,
                limit.bytes,
                human(limit.bytes)
            ),
            FileError::Symlink { what, .. } => {
                format!("it is a symbolic link, which nexusml does not follow for {what}")
            }
            FileError::Io { source, .. } => source.to_string(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

fn human(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} B")
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// Open flags std has no names for. A FIFO opened non-blocking does not wait for a
// writer; a final symbolic link makes a no-follow open fail (ELOOP). Where the values
// are not known here, the metadata checks around the open still refuse both.
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
))]
const FLAGS: (i32, i32) = (0o4000, 0o400000);
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64"
    )
))]
const FLAGS: (i32, i32) = (0o4000, 0o100000);
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
const FLAGS: (i32, i32) = (0x4, 0x100);
#[cfg(not(any(
    all(
        target_os = "linux",
        any(
            target_arch = "x86",
            target_arch = "x86_64",
            target_arch = "riscv64",
            target_arch = "loongarch64",
            target_arch = "s390x",
            target_arch = "arm",
            target_arch = "aarch64",
            target_arch = "powerpc",
            target_arch = "powerpc64"
        )
    ),
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
const FLAGS: (i32, i32) = (0, 0);

#[cfg(unix)]
fn flags(options: &mut OpenOptions, no_follow: bool) {
    use std::os::unix::fs::OpenOptionsExt;
    let (nonblock, nofollow) = FLAGS;
    options.custom_flags(nonblock | if no_follow { nofollow } else { 0 });
}

#[cfg(not(unix))]
fn flags(_: &mut OpenOptions, _: bool) {}

/// What a file that is not regular is, for messages.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "not a file"
    }
}

fn check(path: &Path, meta: &Metadata, limit: Limit) -> Result<(), FileError> {
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.into(),
            kind: kind_of(meta),
        });
    }
    if meta.len() > limit.bytes {
        return Err(FileError::TooLarge {
            path: path.into(),
            size: meta.len(),
            limit,
        });
    }
    Ok(())
}

fn open_checked(path: &Path, limit: Limit, no_follow: bool) -> Result<(File, u64), FileError> {
    #[cfg(unix)]
    if no_follow && FLAGS.1 != 0 {
        return open_entry_no_follow(path, limit);
    }
    let before = if no_follow {
        std::fs::symlink_metadata(path)
    } else {
        std::fs::metadata(path)
    }
    .map_err(io_at(path))?;
    if no_follow && before.file_type().is_symlink() {
        return Err(FileError::Symlink {
            path: path.into(),
            what: limit.what,
        });
    }
    check(path, &before, limit)?;
    let mut options = OpenOptions::new();
    options.read(true);
    flags(&mut options, no_follow);
    let file = options.open(path).map_err(io_at(path))?;
    let meta = file.metadata().map_err(io_at(path))?;
    check(path, &meta, limit)?;
    if no_follow && !same_file(&before, &meta) {
        // Replaced between the check and the open (by a link, where O_NOFOLLOW is unknown).
        return Err(FileError::Symlink {
            path: path.into(),
            what: limit.what,
        });
    }
    Ok((file, meta.len()))
}

/// An entry nexusml wrote, where the system has `O_NOFOLLOW`: the open itself refuses a
/// symbolic link (ELOOP) and, with `O_NONBLOCK`, cannot hang on a FIFO, so the entry is
/// checked once, on the open file (one system call fewer on the store's hot path).
#[cfg(unix)]
fn open_entry_no_follow(path: &Path, limit: Limit) -> Result<(File, u64), FileError> {
    let mut options = OpenOptions::new();
    options.read(true);
    flags(&mut options, true);
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(FileError::Symlink {
                path: path.into(),
                what: limit.what,
            })
        }
        Err(e) => return Err(io_at(path)(e)),
    };
    let meta = file.metadata().map_err(io_at(path))?;
    check(path, &meta, limit)?;
    Ok((file, meta.len()))
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &Metadata, _: &Metadata) -> bool {
    true
}

/// Open a regular file of at most `limit` bytes for reading; returns it and its size.
pub fn open(path: &Path, limit: Limit) -> Result<(File, u64), FileError> {
    open_checked(path, limit, false)
}

/// A regular file's bytes, at most `limit` of them.
pub fn read(path: &Path, limit: Limit) -> Result<Vec<u8>, FileError> {
    let (file, size) = open(path, limit)?;
    read_rest(path, file, size, Vec::new(), limit)
}

/// A regular file's text (UTF-8), at most `limit` bytes.
pub fn read_to_string(path: &Path, limit: Limit) -> Result<String, FileError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes).map_err(|_| FileError::Io {
        path: path.into(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

/// [`open`] for an entry nexusml wrote (a store lease), refusing a symbolic link.
pub fn open_entry(path: &Path, limit: Limit) -> Result<(File, u64), FileError> {
    open_checked(path, limit, true)
}

/// An entry nexusml wrote (a store manifest, a run record): [`read`], refusing a
/// symbolic link.
///
/// Entries are replaced whole (renamed into place), never appended to: the size seen on
/// the open file is the entry's, read in one call, with no probe for more.
pub fn read_entry(path: &Path, limit: Limit) -> Result<Vec<u8>, FileError> {
    let (mut file, size) = open_checked(path, limit, true)?;
    let mut bytes = vec![0; size as usize];
    file.read_exact(&mut bytes).map_err(io_at(path))?;
    Ok(bytes)
}

/// Read the rest of `file` after `head`, stopping past `limit` (a file that grew after
/// it was checked is refused, not read on).
pub fn read_rest(
    path: &Path,
    file: File,
    size: u64,
    mut head: Vec<u8>,
    limit: Limit,
) -> Result<Vec<u8>, FileError> {
    head.reserve((size as usize).saturating_sub(head.len()));
    let room = (limit.bytes + 1).saturating_sub(head.len() as u64);
    file.take(room).read_to_end(&mut head).map_err(io_at(path))?;
    if head.len() as u64 > limit.bytes {
        return Err(FileError::TooLarge {
            path: path.into(),
            size: head.len() as u64,
            limit,
        });
    }
    Ok(head)
}

/// Open (creating if absent) the lock file `path` for writing, never through a symbolic
/// link: a link planted there, even a dangling one, is refused rather than followed, so
/// nothing is created where it points.
pub fn open_lock(path: &Path) -> Result<File, FileError> {
    let what = "a lock file";
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(FileError::Symlink {
                path: path.into(),
                what,
            })
        }
        Ok(m) if !m.is_file() => {
            return Err(FileError::NotAFile {
                path: path.into(),
                kind: kind_of(&m),
            })
        }
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    flags(&mut options, true);
    let file = options
        .open(path)
        .map_err(|source| lock_open_error(path, source))?;
    check_lock(path, &file)?;
    Ok(file)
}

/// Open an existing lock file read-only (a read-only store), never through a symbolic
/// link; `None` when there is none.
pub fn open_lock_read(path: &Path) -> Result<Option<File>, FileError> {
    let what = "a lock file";
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(FileError::Symlink {
            path: path.into(),
            what,
        }),
        Ok(m) if !m.is_file() => Err(FileError::NotAFile {
            path: path.into(),
            kind: kind_of(&m),
        }),
        Ok(_) => {
            let mut options = OpenOptions::new();
            options.read(true);
            flags(&mut options, true);
            let file = options
                .open(path)
                .map_err(|source| lock_open_error(path, source))?;
            check_lock(path, &file)?;
            Ok(Some(file))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FileError::Io {
            path: path.into(),
            source,
        }),
    }
}

fn lock_open_error(path: &Path, source: std::io::Error) -> FileError {
    // ELOOP: a link appeared between the check and the open.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        FileError::Symlink {
            path: path.into(),
            what: "a lock file",
        }
    } else {
        FileError::Io {
            path: path.into(),
            source,
        }
    }
}

fn check_lock(path: &Path, file: &File) -> Result<(), FileError> {
    let meta = file.metadata().map_err(io_at(path))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.into(),
            kind: kind_of(&meta),
        });
    }
    Ok(())
}

/// `path`, made a directory that is not a symbolic link (its parents are created as
/// needed and may be links: they are the user's).
pub fn dir(path: &Path) -> Result<PathBuf, FileError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            dir_below(parent, Path::new(name))
        }
        // `/`, `.` or a path ending in `..`: nothing of nexusml's own to check.
        _ => dir_below(path, Path::new("")),
    }
}

/// `root/rel`, made a directory: `root` is created as needed (it is the user's and may
/// be a link), then each component of `rel` is created or accepted only if it is a real
/// directory. A symbolic link there is refused, so nothing nexusml writes below it goes
/// elsewhere.
pub fn dir_below(root: &Path, rel: &Path) -> Result<PathBuf, FileError> {
    std::fs::create_dir_all(root).map_err(io_at(root))?;
    let mut path = root.to_path_buf();
    for part in rel.components() {
        path.push(part);
        // Twice at most: a concurrent process may create it between the look and ours.
        for attempt in 0..2 {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => break,
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(FileError::Symlink {
                        path,
                        what: "a directory it writes into",
                    })
                }
                Ok(m) => {
                    let kind = kind_of(&m);
                    return Err(FileError::Io {
                        path,
                        source: std::io::Error::other(format!("it is {kind}, not a directory")),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&path) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt == 0 => continue,
                    Err(source) => return Err(FileError::Io { path, source }),
                },
                Err(source) => return Err(FileError::Io { path, source }),
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limit = Limit {
        what: "a test file",
        bytes: 10,
    };

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs")
            .success();
        assert!(ok, "mkfifo {}", path.display());
    }

    #[test]
    fn reads_regular_files_within_the_limit_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read(&p, SMALL).unwrap(), b"0123456789");
        std::fs::write(&p, b"0123456789x").unwrap();
        let e = read(&p, SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is 11 bytes, more than a test file may be (10 bytes = 10 B)",
                p.display()
            )
        );
        let e = read(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero is a character device, not a regular file"
        );
        assert_eq!(e.reason(), "it is a character device, not a regular file");
        let e = read(dir.path(), SMALL).unwrap_err();
        assert!(
            e.to_string().ends_with("is a directory, not a regular file"),
            "{e}"
        );
        let e = read(&dir.path().join("none"), SMALL).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.into_io().kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        mkfifo(&p);
        let start = std::time::Instant::now();
        let e = read(&p, SMALL).unwrap_err();
        assert!(e.to_string().ends_with("is a FIFO, not a regular file"), "{e}");
        let e = read_entry(&p, SMALL).unwrap_err();
        assert!(e.to_string().ends_with("is a FIFO, not a regular file"), "{e}");
        let e = open_lock(&p).unwrap_err();
        assert!(e.to_string().ends_with("is a FIFO, not a regular file"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_sparse_file_past_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::File::create(&p).unwrap().set_len(2 << 30).unwrap();
        let start = std::time::Instant::now();
        let e = read(&p, METADATA).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is 2147483648 bytes, more than model metadata may be (16777216 bytes = 16 MiB)",
                p.display()
            )
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "not read");
    }

    #[cfg(unix)]
    #[test]
    fn entries_and_locks_never_follow_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read(&link, SMALL).unwrap(), b"x", "a data file may be a link");
        let e = read_entry(&link, SMALL).unwrap_err();
        assert!(matches!(e, FileError::Symlink { .. }), "{e}");

        // A dangling link: opening it create+write would make the file it names.
        let victim = dir.path().join("victim");
        let lock = dir.path().join(".nexusml.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let e = open_lock(&lock).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a symbolic link; nexusml does not follow one for a lock file: remove it",
                lock.display()
            )
        );
        assert!(!victim.exists(), "nothing created where the link points");
        assert!(open_lock_read(&lock).is_err());
        let fresh = dir.path().join("fresh.lock");
        assert!(open_lock_read(&fresh).unwrap().is_none());
        open_lock(&fresh).unwrap();
        assert!(open_lock_read(&fresh).unwrap().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn directories_below_a_root_are_never_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let made = dir_below(&root, Path::new("a/b")).unwrap();
        assert!(made.is_dir());
        assert_eq!(dir_below(&root, Path::new("a/b")).unwrap(), made, "again: fine");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("c")).unwrap();
        assert!(super::dir(&root.join("g")).unwrap().is_dir());
        assert!(matches!(
            super::dir(&root.join("c")),
            Err(FileError::Symlink { .. })
        ));
        let e = dir_below(&root, Path::new("c/d")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a symbolic link; nexusml does not follow one for a directory it writes into: remove it",
                root.join("c").display()
            )
        );
        assert!(!elsewhere.join("d").exists());
        std::fs::write(root.join("f"), b"").unwrap();
        let e = dir_below(&root, Path::new("f")).unwrap_err();
        assert!(
            e.to_string().ends_with("it is a regular file, not a directory"),
            "{e}"
        );
    }
}
