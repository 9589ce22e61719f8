//! `report.html`: one self-contained page per run directory, made from the directory's
//! files alone (`report.json`, `metrics.json`, `validation.json`,
//! `predictions_summary.json`, the pictures), so `nexusml report DIR` makes the same page
//! again at any time. It fetches nothing: the pictures are inline (SVG, or PNG as data
//! URIs) and everything that comes from data is escaped by the template engine (askama).
//!
//! Also the run listing and the comparison of two runs (`nexusml runs`), which read the
//! same files.

pub mod files;
mod page;
pub mod runs;
mod timeline;

pub use files::{RunDir, REPORT_FILE};
pub use runs::{diff, list, resolve, RunDiff, RunSummary};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{dir} is not a run directory: it has no report.json")]
    NotARun { dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not what nexusml writes there: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render the report page: {0}")]
    Template(#[from] askama::Error),
    #[error("no runs in {dir}{}", .pipeline.as_ref().map(|p| format!(" of pipeline `{p}`")).unwrap_or_default())]
    NoRuns { dir: PathBuf, pipeline: Option<String> },
    #[error(
        "`{spec}`: there are only {count} runs in {dir} (`latest` is the newest, `latest~1` the one before)"
    )]
    TooFewRuns {
        spec: String,
        count: usize,
        dir: PathBuf,
    },
    #[error("`{spec}` is neither a run directory nor `latest` / `latest~N`")]
    BadRun { spec: String },
}

impl ReportError {
    /// The user named something that is not a run (as opposed to a run that cannot be read).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ReportError::NotARun { .. }
                | ReportError::NoRuns { .. }
                | ReportError::TooFewRuns { .. }
                | ReportError::BadRun { .. }
        )
    }
}

/// The page for the run directory `dir`, with links relative to `page_dir`, where the
/// page will be written.
pub fn render(dir: &Path, page_dir: &Path) -> Result<String, ReportError> {
    let run = RunDir::open(dir)?;
    page::render(&run, &link_prefix(page_dir, dir))
}

/// Write the page of `dir` to `output` (default `dir/report.html`, its directory made
/// when missing), atomically.
pub fn write(dir: &Path, output: Option<&Path>) -> Result<PathBuf, ReportError> {
    let path = output.map_or_else(|| dir.join(REPORT_FILE), Path::to_path_buf);
    let page_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&page_dir).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    let html = render(dir, &page_dir)?;
    crate::atomic_file::write_atomic(&path, html.as_bytes()).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// After a run: write `report.html` into its directory. A failure is logged as a
/// warning: the page is for people, the run's result does not depend on it.
pub fn write_after_run(dir: &Path) {
    let t = std::time::Instant::now();
    match write(dir, None) {
        Ok(path) => tracing::info!(
            "wrote {} in {}",
            path.display(),
            crate::clock::format_ms(t.elapsed().as_secs_f64() * 1e3)
        ),
        Err(e) => tracing::warn!("the run's report page was not written: {e}"),
    }
}

/// The path from `from` (a directory) to `to`, `/`-separated and ending in `/` (empty
/// when they are the same directory), for links from a page in `from` to files in `to`.
fn link_prefix(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(from), abs(to));
    let a: Vec<_> = from.components().collect();
    let b: Vec<_> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    let mut s = parts
        .iter()
        .map(|p| {
            if p == ".." {
                p.clone()
            } else {
                page::percent_encode(p)
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if !s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_prefix_walks_from_the_page_to_the_run() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("runs/train-1");
        let elsewhere = d.path().join("pages");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        assert_eq!(link_prefix(&run, &run), "");
        assert_eq!(link_prefix(&elsewhere, &run), "../runs/train-1/");
        assert_eq!(link_prefix(&run.join(".."), &run), "train-1/");
    }
}
