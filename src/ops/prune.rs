//! `model.save`'s pruning: keep the newest `keep` timestamped models of a name
//! (`<name>_<UTC>[-N].nxm` with its `_metadata.json`), never the `_latest` pair, never a
//! model another metadata file in the directory points to (a copy someone deployed), and
//! never anything through a symbolic link: links are neither followed nor removed.

use std::collections::HashSet;
use std::path::Path;

/// Timestamped models kept per name unless told otherwise.
pub const KEEP_DEFAULT: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("cannot list {path} to prune old models: {source}")]
    List {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the old model {path}: {source}")]
    Remove {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `keep` must leave at least one timestamped model (the one `_latest` copies).
pub(crate) fn check_keep(keep: usize) -> Result<(), String> {
    if keep == 0 {
        return Err("`keep` = 0 would remove every timestamped model: give at least 1 (default 10)".into());
    }
    Ok(())
}

/// `20261201T120000Z` or `20261201T120000Z-3`: the stamp and its suffix, for ordering.
fn stamp(rest: &str) -> Option<(String, u32)> {
    let (t, n) = match rest.split_once('-') {
        Some((t, n)) => (t, n.parse().ok()?),
        None => (rest, 0),
    };
    let b = t.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    ok.then(|| (t.to_string(), n))
}

/// Remove the timestamped models of `name` in `dir` past the newest `keep`; returns how
/// many were removed. Takes the directory's lock exclusively, as a save switching
/// `_latest` does: a reader holding it shared finishes reading before a file goes.
pub fn prune(dir: &Path, name: &str, keep: usize) -> Result<usize, PruneError> {
    let _lock = crate::atomic_file::lock_dir(dir, true).map_err(|source| PruneError::List {
        path: dir.to_path_buf(),
        source,
    })?;
    prune_locked(dir, name, keep)
}

/// [`prune`], for a caller that holds the directory's lock exclusively (`model.save`,
/// right after switching `_latest`).
pub fn prune_locked(dir: &Path, name: &str, keep: usize) -> Result<usize, PruneError> {
    let list_err = |source| PruneError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut models: Vec<(String, u32, String)> = Vec::new();
    let mut pointed: HashSet<String> = HashSet::new();
    let prefix = format!("{name}_");
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        // `file_type` does not follow links: a link is not a model and is never read.
        if !entry.file_type().map_err(list_err)?.is_file() {
            continue;
        }
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix("_metadata.json") {
            let Ok(bytes) = crate::fsx::read(&entry.path(), crate::fsx::METADATA) else {
                continue;
            };
            let target = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|m| m["model_file"].as_str().map(str::to_string));
            if let Some(target) = target {
                let target = Path::new(&target)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Every model's own metadata points to it: only the others protect.
                if target != format!("{stem}.nxm") {
                    pointed.insert(target);
                }
            }
        } else if let Some(stem) = file.strip_suffix(".nxm") {
            if let Some((t, n)) = stem.strip_prefix(&prefix).and_then(stamp) {
                models.push((t, n, stem.to_string()));
            }
        }
    }
    models.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
    let mut removed = 0;
    for (_, _, stem) in models.iter().skip(keep) {
        let model = format!("{stem}.nxm");
        if pointed.contains(&model) {
            tracing::info!(
                "keeping {model}: a metadata file in {} points to it",
                dir.display()
            );
            continue;
        }
        for file in [model, format!("{stem}_metadata.json")] {
            let path = dir.join(&file);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PruneError::Remove { path, source }),
            }
        }
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} old model{} of `{name}` from {} (keeping the newest {keep})",
            if removed == 1 { "" } else { "s" },
            dir.display()
        );
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(dir: &Path, stem: &str, points_to: &str) {
        std::fs::write(dir.join(format!("{stem}.nxm")), b"NEXUSML\0").unwrap();
        let meta = serde_json::json!({ "model_file": dir.join(points_to).display().to_string() });
        std::fs::write(dir.join(format!("{stem}_metadata.json")), meta.to_string()).unwrap();
    }

    #[test]
    fn keeps_the_newest_the_latest_and_what_metadata_points_to() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        for s in [
            "20261201T100000Z",
            "20261201T110000Z",
            "20261201T110000Z-1",
            "20261201T120000Z",
        ] {
            save(dir, &format!("m_{s}"), &format!("m_{s}.nxm"));
        }
        save(dir, "m_latest", "m_20261201T120000Z.nxm");
        save(dir, "deployed", "m_20261201T100000Z.nxm");
        save(dir, "other_20261201T090000Z", "other_20261201T090000Z.nxm");
        std::os::unix::fs::symlink(
            dir.join("m_20261201T110000Z.nxm"),
            dir.join("m_20261130T000000Z.nxm"),
        )
        .unwrap();
        assert_eq!(prune(dir, "m", 2).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".nxm"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "deployed.nxm",
                "m_20261130T000000Z.nxm",
                "m_20261201T100000Z.nxm",
                "m_20261201T110000Z-1.nxm",
                "m_20261201T120000Z.nxm",
                "m_latest.nxm",
                "other_20261201T090000Z.nxm"
            ],
            "20261201T110000Z goes with its metadata; the deployed one stays; the link is left alone"
        );
        assert!(!dir.join("m_20261201T110000Z_metadata.json").exists());
        assert!(std::fs::symlink_metadata(dir.join("m_20261130T000000Z.nxm")).is_ok());
        assert!(check_keep(0).unwrap_err().contains("at least 1"));
    }
}
