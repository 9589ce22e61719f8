//! Sizes and counts past what the tool handles: big pipelines work, absurd settings are
//! refused with a message that names the limit, and nothing aborts or hangs.

mod common;
use common::*;
use std::fmt::Write as _;
use std::path::Path;

/// `n` `util.noop` nodes, each reading the previous one's token.
fn write_chain(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut s = String::from("[pipeline]\nname = \"chain\"\n");
    for i in 0..n {
        let _ = write!(s, "[nodes.n{i}]\nop = \"util.noop\"\n");
        if i > 0 {
            let _ = writeln!(s, "in = {{ x = \"t{}\" }}", i - 1);
        }
        let _ = writeln!(s, "out = {{ y = \"t{i}\" }}");
    }
    let path = dir.join("chain.toml");
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn a_long_chain_checks_and_runs() {
    // Past what a recursive graph search survives (the main thread's 8 MiB stack
    // overflowed at about 100,000 nodes).
    let n = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let file = write_chain(dir.path(), n);
    let file = file.to_str().unwrap();

    let out = nexusml(dir.path(), &["--log-level", "warning", "dag", "check", file]);
    assert_eq!(out.code, 0, "{}", &out.all()[..out.all().len().min(2000)]);
    assert!(
        out.stdout.starts_with(&format!(
            "ok: pipeline `chain` ({file}): {n} nodes, {} edges",
            n - 1
        )),
        "{}",
        &out.stdout[..out.stdout.len().min(500)]
    );

    let out = nexusml(
        dir.path(),
        &[
            "--log-level",
            "warning",
            "dag",
            "run",
            file,
            "--no-cache",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 0, "{}", &out.all()[..out.all().len().min(2000)]);
    assert!(
        out.stderr
            .contains(&format!("run ok: {n} ok, 0 cached, 0 failed, 0 skipped")),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(500)..]
    );
}
