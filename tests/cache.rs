//! The artifact store end to end: skipping, reasons, early cutoff, status causes,
//! selections from the store, resume after kill -9, corruption, concurrency and gc.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn run(dir: &Path, file: &str, extra: &[&str]) -> Output {
    let fixture = fixture(file);
    let mut args = vec!["dag", "run", fixture.to_str().unwrap(), "--runs-dir", "runs"];
    args.extend_from_slice(extra);
    nexusml(dir, &args)
}

/// Run directories, oldest first.
fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort_by_key(|p| {
        std::fs::metadata(p.join("report.json"))
            .and_then(|m| m.modified())
            .ok()
    });
    dirs
}

fn last_report(dir: &Path) -> serde_json::Value {
    read_json(&run_dirs(dir).last().unwrap().join("report.json"))
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of(report: &serde_json::Value, id: &str) -> String {
    node(report, id)["status"].as_str().unwrap().to_string()
}

fn reason_of(report: &serde_json::Value, id: &str) -> String {
    node(report, id)["reason"].as_str().unwrap_or("").to_string()
}

fn store_files(dir: &Path, sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join(".nexusml/store").join(sub)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_second_run_is_all_cached_and_leaves_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), "select.toml", &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let r1 = last_report(dir.path());
    assert!(statuses(&r1).iter().all(|(_, s)| s == "ok"), "{r1}");
    assert_eq!(reason_of(&r1, "load"), "ran: never run");

    let second = run(dir.path(), "select.toml", &[]);
    assert_eq!(second.code, 0, "{}", second.all());
    let r2 = last_report(dir.path());
    assert!(statuses(&r2).iter().all(|(_, s)| s == "cached"), "{r2}");
    assert!(second.stderr.contains("5 cached"), "{}", second.stderr);
    let dirs = run_dirs(dir.path());
    for file in ["plot.json", "report-hello.json"] {
        assert_eq!(
            std::fs::read(dirs[0].join(file)).unwrap(),
            std::fs::read(dirs[1].join(file)).unwrap(),
            "{file} restored byte for byte"
        );
    }
    // Keys are the same, and recorded.
    assert_eq!(node(&r1, "train")["key"], node(&r2, "train")["key"]);
}

#[test]
fn a_changed_param_reruns_what_depends_on_it_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path(), "select.toml", &[]).code, 0);
    let out = run(dir.path(), "select.toml", &["--set", "greeting=bye"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = last_report(dir.path());
    assert_eq!(reason_of(&r, "load"), "ran: param `greeting` hello→bye");
    assert_eq!(reason_of(&r, "clean"), "ran: input `raw` changed (from `load`)");
    assert_eq!(node(&r, "clean")["changed_inputs"], serde_json::json!(["raw"]));
    assert!(
        out.stderr.contains("param `greeting` hello→bye"),
        "the table says why: {}",
        out.stderr
    );
    // --force reruns a cached node, and says so.
    let out = run(
        dir.path(),
        "select.toml",
        &["--set", "greeting=bye", "--force", "train"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let r = last_report(dir.path());
    assert_eq!(status_of(&r, "train"), "ok");
    assert_eq!(reason_of(&r, "train"), "ran: forced");
    assert_eq!(status_of(&r, "clean"), "cached");
    let out = run(dir.path(), "select.toml", &["--force", "trian"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("did you mean `train`"), "{}", out.stderr);
}

#[test]
fn equal_outputs_stop_invalidation() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path(), "cutoff.toml", &[]).code, 0);
    let out = run(dir.path(), "cutoff.toml", &["--set", "x=2"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = last_report(dir.path());
    assert_eq!(status_of(&r, "source"), "ok");
    assert_eq!(status_of(&r, "numbers"), "ok", "its input changed");
    for id in ["digest", "slow", "write"] {
        assert_eq!(status_of(&r, id), "cached", "{id}: numbers came out identical");
    }
}

#[test]
fn comments_and_key_order_rerun_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(fixture("cutoff.toml")).unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, &original).unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        nexusml(dir.path(), &["dag", "run", f, "--runs-dir", "runs"]).code,
        0
    );
    let edited = original
        .replace(
            "with = { seed = 7, count = 3 }",
            "with = { count = 3, seed = 7 }   # reordered",
        )
        .replace("[nodes.digest]", "# a new comment\n[nodes.digest]");
    assert_ne!(edited, original);
    std::fs::write(&file, edited).unwrap();
    let out = nexusml(dir.path(), &["dag", "run", f, "--runs-dir", "runs"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = last_report(dir.path());
    assert!(statuses(&r).iter().all(|(_, s)| s == "cached"), "{r}");
}

#[test]
fn status_names_every_cause() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), "a,b\n1,2\n").unwrap();
    let pipeline = r#"
[pipeline]
name = "causes"

[params]
data = "data.csv"
greeting = "hello"

[nodes.load]
op = "csv.load"
with = { path = "${data}" }
out = { table = "raw" }

[nodes.label]
op = "util.value"
with = { value = "${greeting}" }
out = { value = "label" }

[nodes.note]
op = "util.digest"
in = { label = "label" }
out = { value = "note" }

[nodes.write]
op = "util.write"
with = { file = "out.json" }
in = { note = "note" }

[nodes.copy]
op = "csv.write"
with = { path = "copy.csv", in_run_dir = true }
in = { table = "raw" }
"#;
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let status = |extra: &[&str]| {
        let mut args = vec!["dag", "status", "p.toml"];
        args.extend_from_slice(extra);
        let out = nexusml(dir.path(), &args);
        assert_eq!(out.code, 0, "{}", out.all());
        out.stdout
    };
    let s = status(&[]);
    assert!(s.contains("MISSING  load   never run"), "{s}");
    assert_eq!(
        nexusml(dir.path(), &["dag", "run", "p.toml", "--runs-dir", "runs"]).code,
        0
    );
    let s = status(&[]);
    assert!(s.contains("5 fresh, 0 stale, 0 missing"), "{s}");

    let s = status(&["--set", "greeting=bye"]);
    assert!(s.contains("STALE    label  param `greeting` hello→bye"), "{s}");
    assert!(
        s.contains("input `label` is recomputed (`label` is not fresh)"),
        "{s}"
    );

    std::fs::write(dir.path().join("data.csv"), "a,b\n1,3\n").unwrap();
    let s = status(&[]);
    assert!(s.contains("file data.csv changed"), "{s}");
    std::fs::write(dir.path().join("data.csv"), "a,b\n1,2\n").unwrap();

    // Input changed: `note` last ran on another `label` than the one stored now.
    assert_eq!(
        nexusml(
            dir.path(),
            &[
                "dag",
                "run",
                "p.toml",
                "--runs-dir",
                "runs",
                "--set",
                "greeting=bye",
                "--only",
                "label"
            ]
        )
        .code,
        0
    );
    let s = status(&["--set", "greeting=bye"]);
    assert!(s.contains("FRESH    label"), "{s}");
    assert!(s.contains("input `label` changed (from `label`)"), "{s}");

    // A written file whose blob is gone.
    let report = last_report(dir.path());
    let _ = report;
    let manifests = store_files(dir.path(), "manifests");
    let write_manifest = manifests
        .iter()
        .map(|p| read_manifest(p))
        .find(|m| m["node"] == "copy")
        .unwrap();
    let digest = write_manifest["files"][0]["digest"].as_str().unwrap().to_string();
    let blob = dir
        .path()
        .join(".nexusml/store/blobs")
        .join(&digest[..2])
        .join(&digest);
    std::fs::remove_file(blob).unwrap();
    let s = status(&[]);
    assert!(s.contains("output file copy.csv missing"), "{s}");

    // An op version change: the stored result was made by an older version of the op.
    let (path, mut m) = manifests
        .iter()
        .map(|p| (p.clone(), read_manifest(p)))
        .find(|(_, m)| m["node"] == "load")
        .unwrap();
    let old_key = "0".repeat(64);
    m["key"] = serde_json::json!(old_key);
    m["components"]["op_version"] = serde_json::json!("0 (nexusml 0.0.1)");
    std::fs::remove_file(&path).unwrap();
    let old = dir
        .path()
        .join(".nexusml/store/manifests/00")
        .join(format!("{old_key}.json"));
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, serde_json::to_vec(&m).unwrap()).unwrap();
    std::fs::write(dir.path().join(".nexusml/store/last/causes/load"), &old_key).unwrap();
    let s = status(&["--json"]);
    let states: serde_json::Value = serde_json::from_str(&s).unwrap();
    let load = states
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "load")
        .unwrap();
    assert_eq!(load["state"], "STALE");
    assert!(
        load["causes"][0]
            .as_str()
            .unwrap()
            .starts_with("op `csv.load` version changed (0 (nexusml 0.0.1) →"),
        "{load}"
    );
}

#[test]
fn selections_take_upstream_results_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing stored yet: the error names the node to run first.
    let out = run(dir.path(), "select.toml", &["--tags", "model"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("`clean` (never run)"), "{}", out.stderr);
    assert!(out.stderr.contains("--to clean"), "{}", out.stderr);
    assert_eq!(run(dir.path(), "select.toml", &[]).code, 0);
    for sel in [
        &["--tags", "model"][..],
        &["--from", "clean"],
        &["--only", "report"],
        &["--tags", "plots"],
    ] {
        let out = run(dir.path(), "select.toml", sel);
        assert_eq!(out.code, 0, "{sel:?}: {}", out.all());
    }
    // A selected node re-runs with a new param; unselected upstream comes from the store.
    let out = run(dir.path(), "select.toml", &["--only", "report", "--force"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = last_report(dir.path());
    assert_eq!(status_of(&r, "report"), "ok");
    assert_eq!(status_of(&r, "train"), "cached");
    assert!(run_dirs(dir.path())
        .last()
        .unwrap()
        .join("report-hello.json")
        .exists());
}

#[test]
fn a_corrupt_blob_is_detected_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path(), "select.toml", &[]).code, 0);
    let expected = std::fs::read(run_dirs(dir.path())[0].join("report-hello.json")).unwrap();
    let train = store_files(dir.path(), "manifests")
        .iter()
        .map(|p| read_manifest(p))
        .find(|m| m["node"] == "train")
        .unwrap();
    let digest = train["outputs"]["value"]["digest"].as_str().unwrap().to_string();
    let blob = dir
        .path()
        .join(".nexusml/store/blobs")
        .join(&digest[..2])
        .join(&digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    let out = run(dir.path(), "select.toml", &["--force", "report"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("is corrupt"), "{}", out.stderr);
    assert!(out.stderr.contains("recomputing `train`"), "{}", out.stderr);
    let got = std::fs::read(run_dirs(dir.path()).last().unwrap().join("report-hello.json")).unwrap();
    assert_eq!(got, expected);
    // The recomputed value was stored again, whole.
    assert_eq!(blake(&std::fs::read(&blob).unwrap()), digest);
}

fn blake(bytes: &[u8]) -> String {
    // The store's digest, recomputed by hand through the CLI-independent library.
    nexusml::store::Digest::of(bytes).hex()
}

#[test]
fn a_killed_run_resumes_with_only_the_unfinished_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("cutoff.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            fixture.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--set",
            "ms=30000",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the three nodes before the slow one are stored.
    let t0 = std::time::Instant::now();
    while store_files(dir.path(), "manifests").len() < 3 {
        assert!(t0.elapsed().as_secs() < 60, "the run did not get going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = run(dir.path(), "cutoff.toml", &["--set", "ms=30"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = last_report(dir.path());
    for id in ["source", "numbers", "digest"] {
        assert_eq!(status_of(&r, id), "cached", "{id}");
    }
    assert_eq!(status_of(&r, "slow"), "ok");
    assert_eq!(status_of(&r, "write"), "ok");
    let clean = tempfile::tempdir().unwrap();
    assert_eq!(run(clean.path(), "cutoff.toml", &["--set", "ms=30"]).code, 0);
    assert_eq!(
        std::fs::read(run_dirs(dir.path()).last().unwrap().join("result.json")).unwrap(),
        std::fs::read(run_dirs(clean.path())[0].join("result.json")).unwrap()
    );
}

#[test]
fn two_runs_sharing_a_store_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("lattice.toml");
    let spawn = |runs: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
            .args([
                "dag",
                "run",
                fixture.to_str().unwrap(),
                "--runs-dir",
                runs,
                "--store",
                "shared",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("a"));
        let b = s.spawn(|| spawn("b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let result =
        |runs: &str| std::fs::read(single_run_dir(&dir.path().join(runs)).join("result.json")).unwrap();
    assert_eq!(result("a"), result("b"));
    let c = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            fixture.to_str().unwrap(),
            "--runs-dir",
            "c",
            "--store",
            "shared",
        ],
    );
    assert_eq!(c.code, 0, "{}", c.all());
    let report = read_json(&single_run_dir(&dir.path().join("c")).join("report.json"));
    assert!(
        statuses(&report).iter().all(|(_, s)| s == "cached"),
        "the store is consistent"
    );
    assert_eq!(result("a"), result("c"));
}

#[test]
fn gc_keeps_the_newest_runs_and_what_a_running_run_uses() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path(), "cutoff.toml", &["--set", "x=1"]).code, 0);
    assert_eq!(run(dir.path(), "cutoff.toml", &["--set", "x=2"]).code, 0);
    let before = store_files(dir.path(), "manifests").len();
    let out = nexusml(dir.path(), &["cache", "gc", "--keep-runs", "1", "--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.starts_with("would remove 2 manifests"),
        "{}",
        out.stdout
    );
    assert_eq!(
        store_files(dir.path(), "manifests").len(),
        before,
        "dry run deletes nothing"
    );
    let out = nexusml(dir.path(), &["cache", "gc", "--keep-runs", "1"]);
    assert!(out.stdout.starts_with("removed 2 manifests"), "{}", out.stdout);
    // The newest run is still whole; the older one's own entries are gone.
    assert_eq!(run(dir.path(), "cutoff.toml", &["--set", "x=2"]).code, 0);
    assert!(statuses(&last_report(dir.path()))
        .iter()
        .all(|(_, s)| s == "cached"));
    assert_eq!(run(dir.path(), "cutoff.toml", &["--set", "x=1"]).code, 0);
    assert_eq!(status_of(&last_report(dir.path()), "source"), "ok");
    let info = nexusml(dir.path(), &["cache", "info"]);
    assert!(
        info.stdout.contains("runs:      3 recorded, 0 running now"),
        "{}",
        info.stdout
    );

    // gc --keep-runs 0 while a run is going: what that run reads and writes survives.
    let fixture = fixture("cutoff.toml");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            fixture.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--set",
            "x=3",
            "--force",
            "slow",
            "--set",
            "ms=1500",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let out = nexusml(dir.path(), &["cache", "gc", "--keep-runs", "0"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("1 running run(s)"), "{}", out.stdout);
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        !stderr.contains("recomputing"),
        "nothing it read was taken away: {stderr}"
    );
    let again = run(dir.path(), "cutoff.toml", &["--set", "x=3", "--set", "ms=1500"]);
    assert_eq!(again.code, 0);
    assert!(
        statuses(&last_report(dir.path()))
            .iter()
            .all(|(_, s)| s == "cached"),
        "{}",
        again.stderr
    );
}

#[test]
fn nodes_seeded_by_their_id_never_share_a_result() {
    // util.random draws from a seed derived from the node id: two such nodes with the
    // same `with` must not answer each other from the store.
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[pipeline]
name = "twins"

[nodes.r1]
op = "util.random"
with = { seed = 1, count = 3 }
out = { value = "a" }

[nodes.r2]
op = "util.random"
with = { seed = 1, count = 3 }
out = { value = "b" }

[nodes.write]
op = "util.write"
with = { file = "out.json" }
in = { a = "a", b = "b" }
"#;
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    for _ in 0..2 {
        let out = nexusml(
            dir.path(),
            &["dag", "run", "p.toml", "--runs-dir", "runs", "--jobs", "1"],
        );
        assert_eq!(out.code, 0, "{}", out.all());
        let written = read_json(&run_dirs(dir.path()).last().unwrap().join("out.json"));
        assert_ne!(written["a"], written["b"], "{written}");
    }
}

/// Causes are diffed against the key each node last had, cached or computed: after runs
/// on other data and a cached run back on the first file, changing only `trees` names
/// only `trees`, and a table param prints as a table.
#[test]
fn status_names_only_what_changed_since_the_last_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(dir.path().join("b.csv"), "a,b\n5,6\n").unwrap();
    let pipeline = r#"
[pipeline]
name = "lastkey"

[params]
data = "a.csv"
trees = 100
map = {}

[nodes.load]
op = "csv.load"
with = { path = "${data}" }
out = { table = "raw" }

[nodes.settings]
op = "util.value"
with = { value = { trees = "${trees}", map = "${map}", data = "${data}" } }
out = { value = "settings" }

[nodes.fit]
op = "util.digest"
in = { settings = "settings" }
out = { value = "model" }

[nodes.copy]
op = "csv.write"
with = { path = "copy.csv", in_run_dir = true }
in = { table = "raw" }
"#;
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["dag", "run", "p.toml", "--runs-dir", "runs"];
        args.extend_from_slice(extra);
        let out = nexusml(dir.path(), &args);
        assert_eq!(out.code, 0, "{}", out.all());
    };
    run(&[]);
    run(&["--set", "data=b.csv"]);
    run(&[]); // every node cached: the last key is a's again, though b's was computed later
    let out = nexusml(dir.path(), &["dag", "status", "p.toml", "--set", "trees=300"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let line = |id: &str| {
        let pad = format!(" {id} ");
        out.stdout
            .lines()
            .find(|l| l.contains(&pad))
            .unwrap_or_default()
            .to_string()
    };
    let settings = line("settings");
    assert!(
        settings.contains("STALE") && settings.contains("param `trees` 100→300"),
        "{}",
        out.stdout
    );
    assert!(!settings.contains("data"), "only trees: {}", out.stdout);
    let fit = line("fit");
    assert!(!fit.contains("file") && !fit.contains("data"), "{}", out.stdout);
    assert!(line("load").contains("FRESH"), "{}", out.stdout);
    assert!(line("copy").contains("FRESH"), "{}", out.stdout);

    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "status",
            "p.toml",
            "--set",
            "map.description=Asset Description",
        ],
    );
    assert!(
        out.stdout
            .contains(r#"param `map` {}→{ description = "Asset Description" }"#),
        "{}",
        out.stdout
    );
}
