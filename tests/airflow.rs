//! The Airflow export against a real Airflow (from PyPI, in a virtualenv: `.ci/run`
//! installs it). `NEXUSML_AIRFLOW` names its `airflow` program; without it these tests
//! skip with a message, and with `NEXUSML_REQUIRE_AIRFLOW=1` (CI) a missing Airflow fails.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn airflow() -> Option<PathBuf> {
    let found = std::env::var_os("NEXUSML_AIRFLOW")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("NEXUSML_REQUIRE_AIRFLOW").is_some() {
            panic!("NEXUSML_REQUIRE_AIRFLOW is set but NEXUSML_AIRFLOW names no airflow program");
        }
        skipped("airflow: none (set NEXUSML_AIRFLOW to an `airflow` program; NEXUSML_REQUIRE_AIRFLOW=1 requires it)");
    }
    found
}

/// Run `airflow args…` with its home, DAG folder and database under `root`.
fn run_airflow(airflow: &Path, root: &Path, args: &[&str]) -> Output {
    let out = Command::new(airflow)
        .args(args)
        .current_dir(root)
        .env("AIRFLOW_HOME", root.join("home"))
        .env("AIRFLOW__CORE__DAGS_FOLDER", root.join("dags"))
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
        .output()
        .expect("airflow runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const TRAIN: &[&str] = &[
    "--set",
    "data=inv.csv",
    "--set",
    "trees=8",
    "--set",
    "output_dir=models",
];

#[test]
fn an_exported_dag_runs_in_airflow_gives_the_local_model_and_then_is_all_cached() {
    let Some(airflow) = airflow() else { return };
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let synth = nexusml(
        root,
        &["data", "synth", "--rows", "300", "--seed", "6", "-o", "inv.csv"],
    );
    assert_eq!(synth.code, 0, "{}", synth.all());
    let train = repo("dags/train.toml");
    let mut args = vec![
        "dag",
        "export",
        train.to_str().unwrap(),
        "--to",
        "airflow",
        "-o",
        "dags/train.py",
        "--store",
        "store",
        "--group",
        "none",
    ];
    args.extend_from_slice(TRAIN);
    let out = nexusml(root, &args);
    assert_eq!(out.code, 0, "{}", out.all());
    let dag = std::fs::read_to_string(root.join("dags/train.py")).unwrap();
    assert!(
        dag.contains("load >> validate") || dag.contains("load >> "),
        "{dag}"
    );

    let migrate = run_airflow(&airflow, root, &["db", "migrate"]);
    assert_eq!(migrate.code, 0, "{}", migrate.all());
    let errors = run_airflow(&airflow, root, &["dags", "list-import-errors"]);
    assert_eq!(errors.code, 0, "{}", errors.all());
    assert!(
        errors.stdout.contains("No data found"),
        "import errors: {}",
        errors.all()
    );

    let first = run_airflow(&airflow, root, &["dags", "test", "nexusml_train"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let log = first.all();
    assert!(
        log.contains("state=success") || log.contains("DagRun Finished"),
        "{log}"
    );
    assert!(!log.contains("Command exited with return code 1"), "{log}");
    let model = root.join("models/equipment_classifier_latest.nxm");
    let from_airflow = std::fs::read(&model).unwrap();

    // The same pipeline run here, without a store: the same model bytes.
    let local = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("inv.csv"), local.path().join("inv.csv")).unwrap();
    let mut args = vec![
        "dag",
        "run",
        train.to_str().unwrap(),
        "--no-cache",
        "--runs-dir",
        "runs",
    ];
    args.extend_from_slice(TRAIN);
    assert_eq!(nexusml(local.path(), &args).code, 0);
    assert_eq!(
        std::fs::read(local.path().join("models/equipment_classifier_latest.nxm")).unwrap(),
        from_airflow,
        "Airflow and local give the same model"
    );

    // A second test run: every task finds its node in the store.
    let second = run_airflow(&airflow, root, &["dags", "test", "nexusml_train"]);
    assert_eq!(second.code, 0, "{}", second.all());
    let log = second.all();
    let summaries: Vec<&str> = log.lines().filter(|l| l.contains("run ok: ")).collect();
    // One task per node (`--group none`); the family has no members (cv_folds = 0).
    let tasks = std::fs::read_to_string(root.join("dags/train.py"))
        .unwrap()
        .matches("BashOperator(")
        .count();
    assert_eq!(tasks, 13, "the pipeline's 13 nodes");
    assert_eq!(summaries.len(), tasks, "one summary per task: {log}");
    assert!(
        summaries.iter().all(|l| l.contains("run ok: 0 ok, ")),
        "every task cached: {summaries:#?}"
    );
}
