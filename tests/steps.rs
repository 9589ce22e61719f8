//! Steps of your own (`op = "cmd"`), retries and timeouts, through the binary: a Python
//! step between built-in ops, every kind of artifact crossing a command, keys that follow
//! the script, each failure's message, a flaky command, a command killed at its timeout
//! with its process group, a long forest stopped by its timeout, Ctrl-C, and the same
//! bytes on the local Slurm cluster. Python steps use the standard library only.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn steps(name: &str) -> PathBuf {
    fixture(&format!("steps/{name}"))
}

fn run(cwd: &Path, pipeline: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["dag", "run", pipeline.to_str().unwrap(), "--runs-dir", "runs"];
    args.extend_from_slice(extra);
    let out = nexusml(cwd, &args);
    let report = read_json(&newest_run(&cwd.join("runs")).join("report.json"));
    (out, report)
}

fn status<'a>(report: &'a serde_json::Value, id: &str) -> &'a str {
    node(report, id)["status"].as_str().unwrap()
}

fn errors(report: &serde_json::Value, id: &str) -> Vec<String> {
    node(report, id)["error"]
        .as_array()
        .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Whether a process is gone (a zombie no one reaped yet counts as gone: it runs nothing).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_python_step_between_built_in_ops_feeds_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = run(dir.path(), &steps("python_step.toml"), &["--store", "store"]);
    assert_eq!(out.code, 0, "{}", out.all());
    for id in ["load", "clean", "rename", "write"] {
        assert_eq!(status(&report, id), "ok", "{id}");
    }
    let run_dir = newest_run(&dir.path().join("runs"));
    // `rename` (built in) read the table the script wrote: its column, the script's changes.
    let text = std::fs::read_to_string(run_dir.join("cleaned.csv")).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("tag,manufacturer,"), "{text}");
    let first = lines.next().unwrap();
    assert!(first.starts_with("AHU-1,YORK,"), "{first}");
    assert!(first.ends_with(",vendor-a"), "$SOURCE from env: {first}");
    assert_eq!(text.lines().count(), 73, "every row: {text}");
    // Its output went to its log file and to run.log, line by line.
    let log = std::fs::read_to_string(run_dir.join("nodes/clean/command.log")).unwrap();
    assert!(
        log.contains("clean.py: 72 rows") && log.contains("hello on stderr"),
        "{log}"
    );
    let run_log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(run_log.contains("clean.py: 72 rows"), "{run_log}");
    assert!(run_log.contains("clean.py says hello on stderr"), "{run_log}");
}

#[test]
fn an_edited_script_re_runs_its_node_and_only_what_its_changed_output_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("pipeline");
    std::fs::create_dir(&work).unwrap();
    for f in ["python_step.toml", "clean.py"] {
        std::fs::copy(steps(f), work.join(f)).unwrap();
    }
    let data = format!("data={}", fixture("data/classic.csv").display());
    let pipeline = work.join("python_step.toml");
    let args = ["--store", "store", "--set", data.as_str()];
    let (first, _) = run(dir.path(), &pipeline, &args);
    assert_eq!(first.code, 0, "{}", first.all());

    // Nothing changed: everything is answered from the store.
    let (_, again) = run(dir.path(), &pipeline, &args);
    for id in ["load", "clean", "rename", "write", "other"] {
        assert_eq!(status(&again, id), "cached", "{id}");
    }

    // A comment: the script re-runs, its output comes out the same, nothing else runs.
    let script = std::fs::read_to_string(work.join("clean.py")).unwrap();
    std::fs::write(work.join("clean.py"), format!("# reviewed\n{script}")).unwrap();
    let (_, commented) = run(dir.path(), &pipeline, &args);
    assert_eq!(status(&commented, "clean"), "ok");
    let why = node(&commented, "clean")["reason"].as_str().unwrap();
    assert!(why.contains("clean.py changed"), "{why}");
    for id in ["load", "rename", "write", "other"] {
        assert_eq!(status(&commented, id), "cached", "{id}: early cutoff");
    }

    // A change of behaviour: the script and what reads its output run; the rest stays.
    let changed = script.replace(".upper()", ".lower()");
    assert_ne!(changed, script);
    std::fs::write(work.join("clean.py"), changed).unwrap();
    let (_, edited) = run(dir.path(), &pipeline, &args);
    for id in ["clean", "rename", "write"] {
        assert_eq!(status(&edited, id), "ok", "{id}");
    }
    for id in ["load", "other"] {
        assert_eq!(status(&edited, id), "cached", "{id}");
    }
    let why = node(&edited, "rename")["reason"].as_str().unwrap();
    assert!(why.contains("input `clean` changed (from `clean`)"), "{why}");
    let csv = std::fs::read_to_string(newest_run(&dir.path().join("runs")).join("cleaned.csv")).unwrap();
    assert!(csv.lines().nth(1).unwrap().starts_with("AHU-1,york,"), "{csv}");

    // An env value is part of the key too.
    let mut with_source = args.to_vec();
    with_source.extend(["--set", "source=vendor-b"]);
    let (_, sourced) = run(dir.path(), &pipeline, &with_source);
    assert_eq!(status(&sourced, "clean"), "ok");
    assert_eq!(status(&sourced, "load"), "cached");
}

#[test]
fn every_kind_crosses_a_command_and_comes_back_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = run(dir.path(), &steps("kinds.toml"), &["--store", "store"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(status(&report, "check"), "ok", "the JSON value read back");
    let run_dir = newest_run(&dir.path().join("runs"));
    // The table went out and came back as Arrow IPC unchanged.
    let copy = std::fs::read_to_string(run_dir.join("copy.csv")).unwrap();
    let source = std::fs::read_to_string(fixture("data/classic.csv")).unwrap();
    assert_eq!(
        copy.lines().collect::<Vec<_>>(),
        source
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .collect::<Vec<_>>()
    );
    // A file and a directory flowed into the next command.
    assert_eq!(
        std::fs::read_to_string(run_dir.join("nodes/both/out/both")).unwrap(),
        "hi\nx\n"
    );
    // Cached, the file and directory outputs are put back in the run directory.
    let (_, cached) = run(dir.path(), &steps("kinds.toml"), &["--store", "store"]);
    assert_eq!(status(&cached, "files"), "cached");
    let again = newest_run(&dir.path().join("runs"));
    assert_ne!(again, run_dir);
    assert_eq!(
        std::fs::read_to_string(again.join("nodes/files/out/f")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        std::fs::read_to_string(again.join("nodes/files/out/d/sub/x.txt")).unwrap(),
        "x\n"
    );
    assert_eq!(
        std::fs::read_to_string(again.join("nodes/both/out/both")).unwrap(),
        "hi\nx\n"
    );
}

#[test]
fn a_non_zero_exit_a_missing_output_and_a_wrong_output_each_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = run(
        dir.path(),
        &steps("failures.toml"),
        &["--no-cache", "--keep-going"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    let exits = errors(&report, "exits");
    assert_eq!(exits[0], "the command exited with code 3");
    assert_eq!(exits[1], "last lines of stderr:\nfirst line\nthe real problem");
    assert_eq!(node(&report, "exits")["exit_code"], 3);
    let nothing = errors(&report, "writes_nothing");
    assert!(
        nothing[0].starts_with("the command did not write output `t` (")
            && nothing[0].ends_with("nodes/writes_nothing/out/t.csv)"),
        "{nothing:?}"
    );
    let table = errors(&report, "not_a_table");
    assert!(
        table[0].starts_with("output `t` is not a CSV table: ")
            && table[0].ends_with("out/t.csv:2: row has 3 fields, the header has 2"),
        "{table:?}"
    );
    let json = errors(&report, "not_json");
    assert!(json[0].starts_with("output `j` is not JSON: "), "{json:?}");
    // The summary table shows the first line of each.
    assert!(out.stderr.contains("FAILED       "), "{}", out.stderr);

    // An output type that does not fit its consumer is refused before anything runs.
    let check = nexusml(
        dir.path(),
        &["dag", "check", steps("mismatch.toml").to_str().unwrap()],
    );
    assert_eq!(check.code, 2);
    assert!(
        check.all().contains(
            "node `features`: input `table` expects DataFrame, but artifact `j` from node `make` is Value"
        ),
        "{}",
        check.all()
    );
}

#[test]
fn dag_check_finds_what_it_can_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str| nexusml(dir.path(), &["dag", "check", steps(name).to_str().unwrap()]);
    let out = check("check_errors.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    let text = out.all();
    for expected in [
        "node `typo`: invalid command: `{in.vv}` names no input (it has v)",
        "node `not_a_command`: `run` is only for command nodes (`op = \"cmd\"`), not for `util.noop`",
        "in `[pipeline]`: `timeout = \"soon\"` is not a duration",
        "node `bad_retries`: `retries = -1`: give a whole number from 0 to 100",
        "node `bad_retries`: `retry_on = [0]`",
        "node `no_kind`: output `x` needs a kind before its artifact",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let out = check("missing.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    let text = out.all();
    assert!(
        text.contains("node `missing_dep`: `cmd` reads ")
            && text.contains("nowhere.py, which does not exist"),
        "{text}"
    );
    assert!(
        text.contains("node `no_program`: program `nexusml-no-such-program` is not found on PATH"),
        "a warning: {text}"
    );
    // The reserved run-directory names include the command nodes' work directories.
    let writes = dir.path().join("writes.toml");
    std::fs::write(
        &writes,
        "[pipeline]\nname = \"w\"\n[nodes.w]\nop = \"util.write\"\nwith = { file = \"nodes/x.json\" }\n",
    )
    .unwrap();
    let out = nexusml(dir.path(), &["dag", "check", writes.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.all().contains("the work directories of command nodes"),
        "{}",
        out.all()
    );
}

#[test]
fn a_flaky_command_passes_with_two_retries_and_fails_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.txt");
    let count_arg = format!("count={}", count.display());
    let flaky = steps("flaky.toml");

    let (out, report) = run(dir.path(), &flaky, &["--no-cache", "--set", &count_arg]);
    assert_eq!(out.code, 0, "{}", out.all());
    let n = node(&report, "flaky");
    assert_eq!(n["status"], "ok");
    assert_eq!(n["max_attempts"], 3);
    let attempts = n["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{n}");
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i + 1);
        assert!(a["duration_ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(attempts[0]["exit_code"], 75);
    assert_eq!(attempts[0]["error"][0], "the command exited with code 75");
    assert_eq!(
        attempts[1]["error"][1],
        "last lines of stderr:\nattempt 2: the service is busy"
    );
    assert!(attempts[2].get("error").is_none());
    assert_eq!(
        n["reason"],
        "ran: attempt 1/3 failed (the command exited with code 75), retried; \
         attempt 2/3 failed (the command exited with code 75), retried"
    );
    assert!(out.stderr.contains("ok (attempt 3/3)"), "{}", out.stderr);

    std::fs::remove_file(&count).unwrap();
    let (out, report) = run(
        dir.path(),
        &flaky,
        &["--no-cache", "--set", &count_arg, "--set", "retries=1"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    let n = node(&report, "flaky");
    assert_eq!(n["status"], "failed");
    assert_eq!(n["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(n["exit_code"], 75);
    assert!(out.stderr.contains("FAILED (attempt 2/2)"), "{}", out.stderr);

    // A failure `retry_on` does not name is not retried, and the reason says why.
    std::fs::remove_file(&count).unwrap();
    let (out, report) = run(
        dir.path(),
        &flaky,
        &[
            "--no-cache",
            "--set",
            &count_arg,
            "--set",
            "retry_on=[3, \"timeout\"]",
        ],
    );
    assert_eq!(out.code, 1);
    let n = node(&report, "flaky");
    assert_eq!(n["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(
        n["reason"],
        "ran: not retried: exit code 75 is not in `retry_on` (exit code 3 or a timeout)"
    );
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids.txt");
    let pids_arg = format!("pids={}", pids.display());
    let t0 = Instant::now();
    let (out, report) = run(
        dir.path(),
        &steps("sleepy.toml"),
        &["--no-cache", "--set", &pids_arg],
    );
    let took = t0.elapsed();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(took < Duration::from_secs(5), "stopped at its deadline: {took:?}");
    let n = node(&report, "sleepy");
    assert_eq!(n["status"], "failed");
    assert_eq!(n["timed_out"], true);
    assert_eq!(
        errors(&report, "sleepy"),
        [
            "timed out after 1s",
            "the command was stopped: SIGTERM to its process group"
        ]
    );
    assert_eq!(status(&report, "after"), "skipped");
    let child = std::fs::read_to_string(&pids).unwrap();
    assert!(
        gone(child.trim()),
        "the command's background child {child} still runs"
    );

    // A command that ignores SIGTERM is killed after the grace period.
    std::fs::remove_file(&pids).unwrap();
    let t0 = Instant::now();
    let (_, report) = run(
        dir.path(),
        &steps("sleepy.toml"),
        &[
            "--no-cache",
            "--set",
            &pids_arg,
            "--set",
            "ignore_term=trap '' TERM;",
        ],
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(10),
        "1 s, then the 5 s grace period: {took:?}"
    );
    assert_eq!(
        errors(&report, "sleepy")[1],
        "the command was stopped: SIGTERM to its process group, then SIGKILL after the grace period"
    );
    let child = std::fs::read_to_string(&pids).unwrap();
    assert!(gone(child.trim()), "{child} survived SIGKILL");
}

#[test]
fn a_long_forest_with_a_one_second_timeout_stops() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let (out, report) = run(dir.path(), &steps("forest_timeout.toml"), &["--no-cache"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let n = node(&report, "train");
    assert_eq!(n["status"], "failed");
    assert_eq!(n["timed_out"], true);
    assert_eq!(errors(&report, "train")[0], "timed out after 1s");
    // 5,000 trees take minutes in a debug build; it stopped within a second of its limit.
    let took = n["duration_ms"].as_f64().unwrap();
    assert!((1000.0..2000.0).contains(&took), "train ran {took} ms");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

#[test]
fn ctrl_c_stops_a_running_command_and_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            steps("sleepy.toml").to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--no-cache",
            "--set",
            &format!("pids={}", pids.display()),
            "--set",
            "timeout=unlimited",
        ])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command is running once its child's pid is written.
    let t0 = Instant::now();
    while std::fs::read_to_string(&pids).map_or(true, |p| p.trim().is_empty()) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let status = Command::new("kill")
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
    assert!(sent.elapsed() < Duration::from_secs(5), "{:?}", sent.elapsed());
    let report = read_json(&single_run_dir(&dir.path().join("runs")).join("report.json"));
    assert_eq!(report["status"], "interrupted");
    assert_eq!(
        errors(&report, "sleepy"),
        ["the command was stopped: SIGTERM to its process group"]
    );
    let pid = std::fs::read_to_string(&pids).unwrap();
    assert!(gone(pid.trim()), "{pid} still runs after Ctrl-C");
}

#[test]
fn a_command_node_runs_on_slurm_with_the_local_bytes() {
    if !slurm_cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = steps("python_step.toml");
    let (out, report) = run(
        dir.path(),
        &pipeline,
        &["--executor", "slurm", "--store", "shared"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let clean = node(&report, "clean");
    assert_eq!(clean["job_state"], "COMPLETED", "{clean}");
    let slurm = std::fs::read(newest_run(&dir.path().join("runs")).join("cleaned.csv")).unwrap();

    let local = tempfile::tempdir().unwrap();
    let (out, _) = run(local.path(), &pipeline, &["--no-cache"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let here = std::fs::read(newest_run(&local.path().join("runs")).join("cleaned.csv")).unwrap();
    assert_eq!(slurm, here, "the same bytes on Slurm as here");
}

#[test]
fn the_vendor_pipeline_trains_on_the_vendors_columns_and_publish_writes_the_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let synth = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "300", "--seed", "5", "-o", "inv.csv"],
    );
    assert_eq!(synth.code, 0, "{}", synth.all());
    // The vendor's export: two columns named its own way.
    let text = std::fs::read_to_string(dir.path().join("inv.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    assert!(header.contains(",manufacturer,") && header.contains(",description,"));
    let header = header
        .replace(",manufacturer,", ",Mfr,")
        .replace(",description,", ",Asset Description,");
    std::fs::write(dir.path().join("vendor.csv"), format!("{header}\n{rows}")).unwrap();
    let common = [
        "--set",
        "data=vendor.csv",
        "--set",
        "trees=5",
        "--set",
        "output_dir=models",
        "--runs-dir",
        "runs",
        "--store",
        "store",
    ];
    let plain = repo("dags/train.toml");
    let mut args = vec!["dag", "run", plain.to_str().unwrap()];
    args.extend(common);
    let out = nexusml(dir.path(), &args);
    assert_eq!(
        out.code,
        1,
        "without the step the vendor's file does not train: {}",
        out.all()
    );
    assert!(out.all().contains("manufacturer"), "{}", out.all());

    let vendor = repo("dags/train_vendor.toml");
    let mut args = vec!["dag", "run", vendor.to_str().unwrap()];
    args.extend(common);
    let out = nexusml(dir.path(), &args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all()
            .contains("columns renamed: Mfr → manufacturer, Asset Description → description"),
        "{}",
        out.all()
    );
    let model = dir.path().join("models/equipment_classifier_vendor_latest.nxm");
    assert!(model.exists());

    // Predictions, published by a shell step into a drop folder, with a receipt.
    let drop = dir.path().join("drop");
    let publish = repo("dags/predict_publish.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            publish.to_str().unwrap(),
            "--set",
            &format!("model={}", model.display()),
            "--set",
            "data=inv.csv",
            "--set",
            "output=predictions.csv",
            "--set",
            &format!("drop={}", drop.display()),
            "--runs-dir",
            "runs",
            "--store",
            "store",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let gz = std::fs::read(drop.join("predictions.csv.gz")).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip");
    let receipt =
        std::fs::read_to_string(newest_run(&dir.path().join("runs")).join("nodes/publish/out/receipt"))
            .unwrap();
    assert!(receipt.trim_end().ends_with("  predictions.csv.gz"), "{receipt}");
    assert_eq!(
        receipt.split_whitespace().next().unwrap().len(),
        64,
        "a SHA-256: {receipt}"
    );
}

#[test]
fn every_tag_and_from_to_selection_of_the_step_pipelines_works() {
    let dir = tempfile::tempdir().unwrap();
    let synth = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "300", "--seed", "9", "-o", "inv.csv"],
    );
    assert_eq!(synth.code, 0);
    let drop = format!("drop={}", dir.path().join("drop").display());
    let train: &[&str] = &[
        "--set",
        "data=inv.csv",
        "--set",
        "trees=4",
        "--set",
        "output_dir=models",
    ];
    let publish: &[&str] = &[
        "--set",
        "model=models/equipment_classifier_vendor_latest.nxm",
        "--set",
        "data=inv.csv",
        "--set",
        "output=pred.csv",
        "--set",
        &drop,
    ];
    for (file, params) in [
        ("dags/train_vendor.toml", train),
        ("dags/predict_publish.toml", publish),
    ] {
        let path = repo(file);
        let base = [
            "dag",
            "run",
            path.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--store",
            "store",
        ];
        let with = |extra: &[&str]| -> Vec<String> {
            base.iter()
                .chain(params)
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        let call =
            |args: Vec<String>| nexusml(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        let out = call(with(&[]));
        assert_eq!(out.code, 0, "{file}: {}", out.all());
        let spec: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let nodes = spec["nodes"].as_table().unwrap();
        let mut selections: Vec<[String; 2]> = Vec::new();
        for tags in nodes.values().filter_map(|n| n.get("tags")?.as_array()) {
            for t in tags {
                let sel = ["--tags".to_string(), t.as_str().unwrap().to_string()];
                if !selections.contains(&sel) {
                    selections.push(sel);
                }
            }
        }
        for id in nodes.keys() {
            selections.push(["--from".into(), id.clone()]);
            selections.push(["--to".into(), id.clone()]);
        }
        for sel in selections {
            let out = call(with(&[&sel[0], &sel[1]]));
            assert_eq!(out.code, 0, "{file} {sel:?}: {}", out.all());
        }
    }
}
