//! Shared helpers for the CLI integration tests: run the real binary in a scratch directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Run `nexusml args…` with `cwd` as working directory.
pub fn nexusml(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("the nexusml binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The only run directory under `runs`.
pub fn single_run_dir(runs: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .expect("runs dir exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "expected one run directory, found {dirs:?}");
    dirs.into_iter().next().unwrap()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A store manifest as one JSON object (its two documents merged), read the way the
/// store reads it.
pub fn read_manifest(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let m = nexusml::store::Manifest::decode(&bytes)
        .unwrap_or_else(|| panic!("{} is not a manifest", path.display()));
    serde_json::to_value(m).unwrap()
}

/// The report node with this id.
pub fn node<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in report"))
}

/// The newest run directory under `runs` (by when its report was written).
pub fn newest_run(runs: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .expect("runs dir exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort_by_key(|p| {
        std::fs::metadata(p.join("report.json"))
            .and_then(|m| m.modified())
            .ok()
    });
    dirs.pop().expect("a run directory")
}

/// Whether a Slurm cluster answers `sinfo`; panics when `NEXUSML_REQUIRE_SLURM` is set
/// and none does (CI never skips), else says the test is skipped.
pub fn slurm_cluster() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        if std::env::var_os("NEXUSML_REQUIRE_SLURM").is_some() {
            panic!("NEXUSML_REQUIRE_SLURM is set but no Slurm cluster answers (scripts/slurm-local.sh up)");
        }
        skipped("slurm: no cluster answers `sinfo` (scripts/slurm-local.sh up starts one; set NEXUSML_REQUIRE_SLURM=1 to require it)");
    }
    up
}

/// Say that the running test is skipped and why, on the terminal itself: libtest hides
/// what a passing test prints with `eprintln!`, and a skip must never look like a pass.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason}");
}
