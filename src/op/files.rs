//! Files and directories as artifacts: what a command node writes as `file:name` or
//! `dir:name` flows to its consumers and into the store like any value.

use super::{from_msgpack, to_msgpack, Artifact, CodecError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
}

/// Its bytes as they are: the blob is the file, so the store keeps one copy of a file
/// that is both an artifact and a file the node wrote.
impl Artifact for File {
    const FORMAT: &'static str = "file/1";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        Ok(self.bytes.clone())
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(File {
            bytes: bytes.to_vec(),
        })
    }
}

impl File {
    pub fn read(path: &Path) -> std::io::Result<File> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        Ok(File {
            bytes: std::fs::read(path)?,
        })
    }
}

/// One entry of a directory: a file with its bytes, or a (possibly empty) directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// Relative to the directory, `/`-separated.
    pub path: String,
    /// `None`: a directory.
    pub bytes: Option<Vec<u8>>,
}

/// A directory tree: every file and directory under it, sorted by path, so equal trees
/// have equal bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dir {
    pub entries: Vec<DirEntry>,
}

impl Artifact for Dir {
    const FORMAT: &'static str = "dir/1";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        to_msgpack(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let dir: Dir = from_msgpack(bytes)?;
        if let Some(bad) = dir.entries.iter().find(|e| !is_inside(&e.path)) {
            return Err(CodecError::Decode {
                ty: "Dir",
                format: Self::FORMAT,
                message: format!("entry `{}` is not a relative path inside the directory", bad.path),
            });
        }
        Ok(dir)
    }
}

/// A relative path of normal components only: writing it under a directory stays there.
fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

impl Dir {
    /// Everything under `root`, iteratively (a deep tree must not overflow the stack). A
    /// symbolic link is refused: what it points to is not the node's to record.
    pub fn read(root: &Path) -> std::io::Result<Dir> {
        if !std::fs::metadata(root)?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let mut entries = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let path = e.path();
                let rel = path
                    .strip_prefix(root)
                    .map_err(std::io::Error::other)?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let kind = e.file_type()?;
                if kind.is_symlink() {
                    return Err(std::io::Error::other(format!(
                        "{} is a symbolic link: a directory output keeps files and directories only",
                        path.display()
                    )));
                } else if kind.is_dir() {
                    entries.push(DirEntry {
                        path: rel,
                        bytes: None,
                    });
                    stack.push(path);
                } else if kind.is_file() {
                    entries.push(DirEntry {
                        path: rel,
                        bytes: Some(std::fs::read(&path)?),
                    });
                } else {
                    return Err(std::io::Error::other(format!(
                        "{} is neither a file nor a directory",
                        path.display()
                    )));
                }
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Dir { entries })
    }

    /// Write the tree under `root` (created), each file atomically.
    pub fn write_to(&self, root: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(root)?;
        for e in &self.entries {
            let path = root.join(&e.path);
            match &e.bytes {
                None => std::fs::create_dir_all(&path)?,
                Some(bytes) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    crate::atomic_file::write_atomic(&path, bytes)?;
                }
            }
        }
        Ok(())
    }

    /// The files of the tree, as paths under `root` and bytes.
    pub fn files(&self, root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        self.entries
            .iter()
            .filter_map(|e| Some((root.join(&e.path), e.bytes.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_reads_back_as_it_was_written_whatever_the_order_of_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("b/empty")).unwrap();
        std::fs::write(root.join("b/x.txt"), "x").unwrap();
        std::fs::write(root.join("a.bin"), [0u8, 1, 2]).unwrap();
        let tree = Dir::read(&root).unwrap();
        let paths: Vec<&str> = tree.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.bin", "b", "b/empty", "b/x.txt"]);
        let back = Dir::decode(&tree.encode().unwrap()).unwrap();
        assert_eq!(back, tree);
        back.write_to(&dir.path().join("copy")).unwrap();
        assert_eq!(Dir::read(&dir.path().join("copy")).unwrap(), tree);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
            let e = Dir::read(&root).unwrap_err();
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
    }

    #[test]
    fn a_stored_tree_cannot_write_outside_its_directory() {
        let evil = Dir {
            entries: vec![DirEntry {
                path: "../escape".into(),
                bytes: Some(b"x".to_vec()),
            }],
        };
        let e = Dir::decode(&to_msgpack(&evil).unwrap()).unwrap_err();
        assert!(e.to_string().contains("not a relative path inside"), "{e}");
    }
}
