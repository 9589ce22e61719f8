//! The Slurm executor against a real cluster (`scripts/slurm-local.sh up`). Without one
//! these tests skip with a message; with `NEXUSML_REQUIRE_SLURM=1` (CI) a missing
//! cluster is a failure, so they never skip silently there.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const TRAIN: &[&str] = &[
    "--set",
    "data=inv.csv",
    "--set",
    "trees=8",
    "--set",
    "output_dir=models",
];

fn train(dir: &Path, extra: &[&str]) -> Output {
    let train = repo("dags/train.toml");
    let mut args = vec!["dag", "run", train.to_str().unwrap()];
    args.extend_from_slice(TRAIN);
    args.extend_from_slice(extra);
    nexusml(dir, &args)
}

#[test]
fn train_on_slurm_gives_the_local_bytes_and_a_second_submission_is_all_cached() {
    if !slurm_cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        nexusml(
            dir.path(),
            &["data", "synth", "--rows", "300", "--seed", "4", "-o", "inv.csv"]
        )
        .code,
        0
    );
    let out = train(
        dir.path(),
        &["--executor", "slurm", "--runs-dir", "runs", "--store", "shared"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    for n in report["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "ok", "{n}");
        assert_eq!(n["job_state"], "COMPLETED", "{n}");
        assert!(n["job_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    let run = newest_run(&dir.path().join("runs"));
    assert!(
        run.join("plots/confusion_uniformat_code.png").exists(),
        "files restored"
    );

    let local = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("inv.csv"), local.path().join("inv.csv")).unwrap();
    assert_eq!(train(local.path(), &["--runs-dir", "runs", "--no-cache"]).code, 0);
    let model = "models/equipment_classifier_latest.nxm";
    assert_eq!(
        std::fs::read(dir.path().join(model)).unwrap(),
        std::fs::read(local.path().join(model)).unwrap(),
        "Slurm and local give the same model bytes"
    );
    assert_eq!(
        std::fs::read(run.join("metrics.json")).unwrap(),
        std::fs::read(newest_run(&local.path().join("runs")).join("metrics.json")).unwrap()
    );

    let again = train(
        dir.path(),
        &["--executor", "slurm", "--runs-dir", "runs", "--store", "shared"],
    );
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stderr.contains("0 job(s)"), "{}", again.stderr);
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    assert!(report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["status"] == "cached" && n.get("job_id").is_none()));
}

#[test]
fn a_failed_job_cancels_its_dependents() {
    if !slurm_cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("slurm_fail.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            file.to_str().unwrap(),
            "--executor",
            "slurm",
            "--runs-dir",
            "runs",
            "--group",
            "none",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    assert_eq!(node(&report, "broken")["status"], "failed");
    assert!(node(&report, "broken")["error"][0]
        .as_str()
        .unwrap()
        .contains("ended FAILED; its log:"));
    for id in ["after", "last"] {
        assert_eq!(node(&report, id)["status"], "skipped", "{id}");
        assert!(node(&report, id)["reason"]
            .as_str()
            .unwrap()
            .starts_with("upstream node `broken` failed"));
    }
    assert_eq!(
        node(&report, "side")["status"],
        "ok",
        "an independent branch still runs"
    );
    assert_eq!(report["status"], "failed");
}

#[test]
fn ctrl_c_cancels_every_submitted_job() {
    if !slurm_cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A name of its own: job names are how this test finds its job in the queue.
    let text = std::fs::read_to_string(fixture("slurm_fail.toml"))
        .unwrap()
        .replace("name = \"slurm_fail\"", "name = \"slurm_ctrl_c\"");
    let file = dir.path().join("p.toml");
    std::fs::write(&file, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            file.to_str().unwrap(),
            "--executor",
            "slurm",
            "--runs-dir",
            "runs",
            "--set",
            "ms=60000",
            "--only",
            "source",
            "side",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Wait until `side` runs on the cluster.
    let t0 = std::time::Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%j %T"])
            .output()
            .unwrap();
        // Job names carry the run directory's name (`slurm_ctrl_c-<UTC>`).
        if String::from_utf8_lossy(&q.stdout)
            .lines()
            .any(|l| l.starts_with("nexusml-slurm_ctrl_c-") && l.ends_with(" RUNNING"))
        {
            break;
        }
        assert!(t0.elapsed().as_secs() < 60, "the job never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelling 1 Slurm job(s)"), "{stderr}");
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    assert_eq!(node(&report, "side")["status"], "skipped");
    assert_eq!(node(&report, "side")["job_state"], "CANCELLED");
    let q = Command::new("squeue")
        .args(["-h", "-o", "%j %T"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&q.stdout)
        .lines()
        .any(|l| l.starts_with("nexusml-slurm_ctrl_c-") && l.ends_with(" RUNNING")));
}

#[test]
fn an_exported_script_submits_the_same_jobs() {
    if !slurm_cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("select.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "export",
            file.to_str().unwrap(),
            "--to",
            "slurm",
            "-o",
            "submit.sh",
            "--store",
            "shared",
            "--group",
            "none",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let script = std::fs::read_to_string(dir.path().join("submit.sh")).unwrap();
    assert!(script.contains("--dependency=afterok:${job_load}"), "{script}");
    let submitted = Command::new("bash")
        .arg("submit.sh")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        submitted.status.success(),
        "{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let ids: Vec<String> = String::from_utf8_lossy(&submitted.stdout)
        .lines()
        .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 5);
    let t0 = std::time::Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-j", &ids.join(","), "-o", "%i"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(t0.elapsed().as_secs() < 120, "jobs did not finish");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let local = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            file.to_str().unwrap(),
            "--store",
            "shared",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(local.code, 0, "{}", local.all());
    assert!(
        local.stderr.contains("0 ok, 5 cached"),
        "the jobs filled the store: {}",
        local.stderr
    );
}

/// The README's scale-out command, as written there, with `store` for its shared store.
fn readme_command(store: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("nexusml dag run dags/train.toml --executor slurm"))
        .expect("the README shows the scale-out command");
    let line = line.split('#').next().unwrap().trim();
    line.replace("/shared/nexusml-store", store.to_str().unwrap())
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_scale_out_command_works_from_the_checkout_and_from_elsewhere() {
    if !slurm_cluster() {
        return;
    }
    // A checkout of the pipeline files and the bundled inventory, as the README assumes.
    let root = tempfile::tempdir().unwrap();
    let checkout = root.path().join("checkout");
    for rel in ["dags", "examples/data"] {
        std::fs::create_dir_all(checkout.join(rel)).unwrap();
        for e in std::fs::read_dir(repo(rel)).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), checkout.join(rel).join(e.file_name())).unwrap();
            }
        }
    }
    let args = readme_command(&root.path().join("shared"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = nexusml(&checkout, &args);
    assert_eq!(out.code, 0, "from the checkout root: {}", out.all());
    let model = checkout.join("outputs/models/equipment_classifier_latest.nxm");
    let first = std::fs::read(&model).unwrap();

    // From another directory, with the pipeline named by its path and a fresh store:
    // every job runs again, and paths written in the file still follow the file.
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let file = checkout.join("dags/train.toml");
    let mut args = readme_command(&root.path().join("shared2"));
    for a in args.iter_mut().filter(|a| *a == "dags/train.toml") {
        *a = file.display().to_string();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    std::fs::remove_file(&model).unwrap();
    let out = nexusml(&elsewhere, &args);
    assert_eq!(out.code, 0, "from another directory: {}", out.all());
    let report = read_json(&newest_run(&elsewhere.join("outputs/runs")).join("report.json"));
    assert!(
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "ok"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(&model).unwrap(),
        first,
        "the same model, beside the pipeline's dags/"
    );
}

#[test]
fn in_a_grouped_job_each_node_is_reported_as_its_job_ran_it() {
    if !slurm_cluster() {
        return;
    }
    // One job runs every node (default grouping); with --keep-going inside it, the
    // independent branch still runs, and the report says which node failed.
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("slurm_fail.toml");
    let file = file.to_str().unwrap();
    let check = nexusml(dir.path(), &["dag", "check", file]);
    assert!(
        check.stdout.contains("cluster jobs (1, --group auto):"),
        "{}",
        check.stdout
    );
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            file,
            "--executor",
            "slurm",
            "--runs-dir",
            "runs",
            "--keep-going",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    let job = node(&report, "source")["job_id"].clone();
    assert!(job.is_string(), "{report}");
    for id in ["source", "broken", "after", "last", "side"] {
        assert_eq!(node(&report, id)["job_id"], job, "one job for all: {id}");
    }
    assert_eq!(node(&report, "broken")["status"], "failed");
    assert!(node(&report, "broken")["error"][0]
        .as_str()
        .unwrap()
        .contains("ended FAILED; its log:"));
    assert_eq!(node(&report, "side")["status"], "ok", "keep-going inside the job");
    assert_eq!(node(&report, "source")["status"], "ok");
    // A node's time is its own, from the job's report: not the job's polled life
    // (polls are 0.2 s apart at the fastest), and never zero.
    let took = node(&report, "source")["duration_ms"].as_f64().unwrap();
    assert!(took > 0.0 && took < 150.0, "source took {took} ms: {report}");
    for id in ["after", "last"] {
        assert_eq!(node(&report, id)["status"], "skipped", "{id}");
        assert_eq!(
            node(&report, id)["reason"],
            "upstream node `broken` failed",
            "{id}"
        );
    }
}

/// `dags/train.toml` with a small search: 2 grid points × 2 folds.
const SEARCH: &[&str] = &[
    "--set",
    "cv_folds=2",
    "--set",
    "grid_trees=[4, 6]",
    "--set",
    "grid_max_features=[300]",
    "--set",
    "grid_ngram_max=[1]",
    "--set",
    "grid_min_samples_leaf=[1]",
    "--set",
    "grid_c=[1.0]",
    "--set",
    "learner=forest",
];

#[test]
fn a_search_is_one_job_array_and_chooses_what_a_local_search_chooses() {
    if !slurm_cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let synth = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "300", "--seed", "5", "-o", "inv.csv"],
    );
    assert_eq!(synth.code, 0, "{}", synth.all());
    let mut args = SEARCH.to_vec();
    args.extend(["--executor", "slurm", "--runs-dir", "runs", "--store", "shared"]);
    let out = train(dir.path(), &args);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = newest_run(&dir.path().join("runs"));
    let report = read_json(&run.join("report.json"));
    let array = node(&report, "cv-0")["job_id"].clone();
    assert!(array.is_string(), "{report}");
    for i in 0..4 {
        assert_eq!(
            node(&report, &format!("cv-{i}"))["job_id"],
            array,
            "one array for the family"
        );
        assert_eq!(node(&report, &format!("cv-{i}"))["status"], "ok");
    }
    assert_ne!(node(&report, "load")["job_id"], array);
    assert_ne!(node(&report, "train")["job_id"], array);

    let local = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("inv.csv"), local.path().join("inv.csv")).unwrap();
    let mut args = SEARCH.to_vec();
    args.extend(["--runs-dir", "runs", "--no-cache"]);
    assert_eq!(train(local.path(), &args).code, 0);
    let local_run = newest_run(&local.path().join("runs"));
    for file in ["search.json", "metrics.json"] {
        assert_eq!(
            std::fs::read(run.join(file)).unwrap(),
            std::fs::read(local_run.join(file)).unwrap(),
            "{file}: Slurm and local agree"
        );
    }
    let model = "models/equipment_classifier_latest.nxm";
    assert_eq!(
        std::fs::read(dir.path().join(model)).unwrap(),
        std::fs::read(local.path().join(model)).unwrap()
    );
}

#[test]
fn max_jobs_bounds_the_jobs_in_the_queue() {
    if !slurm_cluster() {
        return;
    }
    // Six independent nodes, each of its own job.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[pipeline]\nname = \"slurm_max_jobs\"\n");
    for i in 0..6 {
        text.push_str(&format!(
            "[nodes.spin{i}]\nop = \"util.spin\"\nwith = {{ ms = {} }}\nout = {{ done = \"d{i}\" }}\n",
            1500 + i // six keys: none is answered by another's result
        ));
    }
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            "p.toml",
            "--executor",
            "slurm",
            "--group",
            "none",
            "--max-jobs",
            "2",
            "--runs-dir",
            "runs",
            "--store",
            "shared",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut most = 0;
    let mut seen = 0;
    let t0 = std::time::Instant::now();
    let mut child = child;
    loop {
        let q = Command::new("squeue").args(["-h", "-o", "%j"]).output().unwrap();
        let ours = String::from_utf8_lossy(&q.stdout)
            .lines()
            .filter(|l| l.starts_with("nexusml-slurm_max_jobs-"))
            .count();
        most = most.max(ours);
        seen += usize::from(ours > 0);
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(t0.elapsed().as_secs() < 180, "the run did not finish");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seen > 0, "the jobs were seen in the queue");
    assert!(
        most <= 2,
        "at most 2 of the run's jobs queued or running; saw {most}"
    );
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    let waited = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["submit_wait_ms"].as_f64().unwrap_or(0.0) > 500.0)
        .count();
    assert!(waited >= 2, "later jobs waited for a slot: {report}");
    assert!(
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["queue_wait_ms"].is_number()),
        "{report}"
    );
}
