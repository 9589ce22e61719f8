//! Signals and closed pipes: SIGTERM and SIGHUP stop a run as the first Ctrl-C does
//! (running nodes finish, the report is written; exit 143 / 129), and a reader that
//! closes its end of a pipe ends the command quietly, never with a panic.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Start `dag run long.toml`, wait until it runs, send `signal`, and return the exit code
/// and the run's report.
fn interrupted_by(signal: &str) -> (Option<i32>, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            fixture("long.toml").to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--no-cache",
        ])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runs = dir.path().join("runs");
    for _ in 0..500 {
        if runs.exists() && std::fs::read_dir(&runs).unwrap().count() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let report = read_json(&single_run_dir(&runs).join("report.json"));
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigterm_and_sighup_stop_the_run_like_ctrl_c_and_write_the_report() {
    for (signal, code, words) in [
        ("TERM", 143, "terminated (SIGTERM)"),
        ("HUP", 129, "hung up (SIGHUP)"),
    ] {
        let (exit, report, stderr) = interrupted_by(signal);
        assert_eq!(exit, Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains(words), "SIG{signal}: {stderr}");
        assert_eq!(report["status"], "interrupted", "SIG{signal}");
        assert_eq!(node(&report, "busy")["status"], "ok", "the running node finishes");
        assert_eq!(
            node(&report, "next")["reason"],
            "not started: the run was interrupted"
        );
    }
}

/// `sh -c "nexusml ARGS | head -c 0"` (or `2>&1 | head -1`): the exit code of nexusml and
/// what it wrote to stderr before the pipe closed.
fn piped(cwd: &std::path::Path, args: &str, tail: &str) -> (i32, String) {
    let exe = env!("CARGO_BIN_EXE_nexusml");
    let script = format!("'{exe}' {args} {tail}; echo \"exit=${{PIPESTATUS[0]}}\" >&2");
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(cwd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("exit="))
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(-1);
    (code, stderr)
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let train = repo("dags/train.toml");
    let demo = repo("dags/demo.toml");
    let (train, demo) = (train.display(), demo.display());
    for (args, tail) in [
        (format!("dag check {train}"), "| head -c 0"),
        (format!("dag run {demo} --dry-run"), "| head -c 0"),
        (format!("dag status {demo} --json"), "| head -c 1"),
        (format!("dag plot {demo} --format dot"), "| head -c 0"),
        (format!("dag run {demo} --runs-dir runs"), "2>&1 | head -1"),
        (
            format!(
                "train --data-path {} --trees 2 --runs-dir train-runs --output-dir models --no-cache",
                repo("examples/data/equipment_inventory.csv").display()
            ),
            "| head -1",
        ),
    ] {
        let (code, stderr) = piped(dir.path(), &args, tail);
        assert_eq!(code, 0, "`{args} {tail}`: {stderr}");
        assert!(!stderr.contains("panicked"), "`{args} {tail}`: {stderr}");
    }
    // The run whose stderr closed after one line still wrote its report.
    let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
    assert_eq!(report["status"], "ok");
}
