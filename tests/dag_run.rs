//! `nexusml dag run`: scheduling, failure handling, selection, overrides, reports.

mod common;
use common::*;
use std::path::Path;

fn run(dir: &Path, file: &str, extra: &[&str]) -> Output {
    let fixture = fixture(file);
    let mut args = vec!["dag", "run", fixture.to_str().unwrap(), "--runs-dir", "runs"];
    args.extend_from_slice(extra);
    nexusml(dir, &args)
}

fn interval(report: &serde_json::Value, id: &str) -> (f64, f64) {
    let n = node(report, id);
    (n["start_ms"].as_f64().unwrap(), n["end_ms"].as_f64().unwrap())
}

#[test]
fn independent_branches_overlap_with_two_jobs_and_not_with_one() {
    for (jobs, overlap) in [("2", true), ("1", false)] {
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), "overlap.toml", &["--jobs", jobs, "--set", "ms=150"]);
        assert_eq!(out.code, 0, "{}", out.all());
        let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
        let (a0, a1) = interval(&report, "left");
        let (b0, b1) = interval(&report, "right");
        let overlaps = a0 < b1 && b0 < a1;
        assert_eq!(
            overlaps, overlap,
            "--jobs {jobs}: left {a0}..{a1}, right {b0}..{b1}"
        );
        assert_eq!(report["jobs"], jobs.parse::<u64>().unwrap());
    }
}

#[test]
fn artifacts_are_identical_for_any_thread_count() {
    let mut results = Vec::new();
    for jobs in ["1", "4"] {
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), "lattice.toml", &["--jobs", jobs]);
        assert_eq!(out.code, 0, "{}", out.all());
        let run_dir = single_run_dir(&dir.path().join("runs"));
        results.push(std::fs::read(run_dir.join("result.json")).unwrap());
    }
    assert_eq!(results[0], results[1]);
    // And the seed matters: a different seed gives different artifacts.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path(), "lattice.toml", &["--set", "seed=43"]).code, 0);
    let other = std::fs::read(single_run_dir(&dir.path().join("runs")).join("result.json")).unwrap();
    assert_ne!(results[0], other);
}

#[test]
fn fail_fast_lets_running_nodes_finish_and_starts_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "failfast.toml", &["--jobs", "2"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
    assert_eq!(report["status"], "failed");
    assert_eq!(node(&report, "bad")["status"], "failed");
    assert_eq!(node(&report, "bad")["error"][0], "disk on fire");
    // Running when `bad` failed: finishes.
    assert_eq!(node(&report, "slow")["status"], "ok");
    // Ready afterwards: not started.
    let after_slow = node(&report, "after_slow");
    assert_eq!(after_slow["status"], "skipped");
    assert!(
        after_slow["reason"]
            .as_str()
            .unwrap()
            .contains("`bad` failed (fail-fast"),
        "{after_slow}"
    );
    let downstream = node(&report, "after_after_bad");
    assert_eq!(downstream["status"], "skipped");
    assert!(out.stderr.contains("disk on fire"), "{}", out.stderr);
}

#[test]
fn keep_going_runs_every_branch_not_downstream_of_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "failfast.toml", &["--jobs", "2", "--keep-going"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
    assert_eq!(node(&report, "after_slow")["status"], "ok");
    for id in ["after_bad", "after_after_bad"] {
        let n = node(&report, id);
        assert_eq!(n["status"], "skipped");
        assert_eq!(n["reason"], "upstream node `bad` failed", "{n}");
    }
}

#[test]
fn a_panicking_op_fails_only_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "panic.toml", &["--keep-going"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
    let boom = node(&report, "boom");
    assert_eq!(boom["status"], "failed");
    assert_eq!(
        boom["error"][0],
        "op `util.panic` panicked: index out of range in op"
    );
    assert_eq!(node(&report, "fine_after")["status"], "ok");
}

#[test]
fn report_and_log_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "lattice.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run_dir = single_run_dir(&dir.path().join("runs"));
    assert!(run_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("lattice-"));
    let report = read_json(&run_dir.join("report.json"));
    assert_eq!(report["pipeline"], "lattice");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["params"]["seed"], 42);
    let d3 = node(&report, "d3");
    assert_eq!(d3["artifacts"][0], "d3");
    assert!(d3["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(d3["thread"].is_u64());
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains("node `d3` ok"), "{log}");
    // The summary table.
    assert!(
        out.stderr.contains("run ok: 7 ok, 0 cached, 0 failed, 0 skipped"),
        "{}",
        out.stderr
    );
}

#[test]
fn set_and_params_file_override_parameters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), "greeting = \"from-file\"\n").unwrap();
    let out = run(dir.path(), "select.toml", &["--params", "p.toml"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run_dir = single_run_dir(&dir.path().join("runs"));
    assert!(run_dir.join("report-from-file.json").exists());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), "greeting = \"from-file\"\n").unwrap();
    let out = run(
        dir.path(),
        "select.toml",
        &["--params", "p.toml", "--set", "greeting=cli"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let run_dir = single_run_dir(&dir.path().join("runs"));
    assert!(
        run_dir.join("report-cli.json").exists(),
        "--set wins over --params"
    );
    let report = read_json(&run_dir.join("report.json"));
    assert_eq!(report["params"]["greeting"], "cli");

    // A missing file and an undeclared key are bad command lines (exit 2), as with --set.
    let out = run(dir.path(), "select.toml", &["--params", "missing.toml"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("--params missing.toml: cannot read it"),
        "{}",
        out.stderr
    );
    std::fs::write(dir.path().join("typo.toml"), "greting = \"x\"\n").unwrap();
    let out = run(dir.path(), "select.toml", &["--params", "typo.toml"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("has no parameter `greting` (did you mean `greeting`?)"),
        "{}",
        out.stderr
    );
}

#[test]
fn set_keeps_toml_types() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typed.toml");
    std::fs::write(
        &file,
        r#"[pipeline]
name = "typed"
[params]
n = 1
[nodes.v]
op = "util.value"
with = { value = "${n}" }
out = { value = "v" }
[nodes.check]
op = "util.assert_eq"
with = { expected = 5 }
in = { value = "v" }
"#,
    )
    .unwrap();
    let ok = nexusml(
        dir.path(),
        &["dag", "run", "typed.toml", "--runs-dir", "r1", "--set", "n=5"],
    );
    assert_eq!(ok.code, 0, "{}", ok.all());
    let bad = nexusml(
        dir.path(),
        &["dag", "run", "typed.toml", "--runs-dir", "r2", "--set", "n=\"5\""],
    );
    assert_eq!(bad.code, 1, "a string is not the integer 5: {}", bad.all());
    assert!(bad.stderr.contains("expected 5, got \"5\""), "{}", bad.stderr);
    let unknown = nexusml(dir.path(), &["dag", "run", "typed.toml", "--set", "m=5"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("has no parameter `m`"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn selection_runs_a_subgraph() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--to", "clean"], &["load", "clean"]),
        (&["--from", "clean"], &[]), // needs `load`: an error, tested below
        (&["--only", "load", "plot"], &["load", "plot"]),
        (&["--tags", "data"], &["load", "clean"]),
        (&["--tags", "data", "model"], &["load", "clean", "train"]),
    ];
    for (flags, expected) in cases {
        if expected.is_empty() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), "select.toml", flags);
        assert_eq!(out.code, 0, "{flags:?}: {}", out.all());
        let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
        let ran: Vec<&str> = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["status"] == "ok")
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(&ran, expected, "{flags:?}");
        for n in report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["status"] != "ok")
        {
            assert_eq!(n["reason"], "not selected");
        }
    }
}

#[test]
fn without_a_store_a_selection_that_needs_an_unselected_producer_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "select.toml", &["--from", "clean", "--no-cache"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("node `clean`: reads `raw`, produced by `load`, which is not selected"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("add `load` to the selection"),
        "{}",
        out.stderr
    );
    let out = run(dir.path(), "select.toml", &["--only", "lod"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--only names unknown node `lod`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("did you mean `load`?"), "{}", out.stderr);
}

#[test]
fn dry_run_prints_waves_and_critical_path_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "select.toml", &["--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("wave 1: load (util.value)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("wave 2: clean (util.digest), plot (util.write)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("critical path (4 nodes): load → clean → train → report"),
        "{}",
        out.stdout
    );
    assert!(
        !dir.path().join("runs").exists(),
        "a dry run creates no run directory"
    );
}

#[test]
fn invalid_jobs_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "overlap.toml", &["--jobs", "0"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--jobs must be at least 1"), "{}", out.stderr);
}

#[test]
fn ctrl_c_stops_scheduling_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            fixture("long.toml").to_str().unwrap(),
            "--runs-dir",
            "runs",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run directory exists (the handler is installed by then), then interrupt.
    let runs = dir.path().join("runs");
    for _ in 0..200 {
        if runs.exists() && std::fs::read_dir(&runs).unwrap().count() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_json(&single_run_dir(&runs).join("report.json"));
    assert_eq!(report["status"], "interrupted");
    assert_eq!(node(&report, "busy")["status"], "ok", "the running node finishes");
    let next = node(&report, "next");
    assert_eq!(next["status"], "skipped");
    assert_eq!(next["reason"], "not started: the run was interrupted");
}
