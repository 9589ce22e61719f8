//! `nexusml data synth`: deterministic, realistic, and valid input for the train pipeline.

mod common;
use common::*;

#[test]
fn same_seed_same_bytes_and_the_bundled_file_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.csv", "b.csv"] {
        let out = nexusml(
            dir.path(),
            &["data", "synth", "--rows", "3000", "--seed", "42", "-o", name],
        );
        assert_eq!(out.code, 0, "{}", out.all());
    }
    let a = std::fs::read(dir.path().join("a.csv")).unwrap();
    assert_eq!(a, std::fs::read(dir.path().join("b.csv")).unwrap());
    assert_eq!(
        a,
        std::fs::read(repo("examples/data/equipment_inventory.csv")).unwrap()
    );
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "3000", "--seed", "7", "-o", "c.csv"],
    );
    assert_eq!(out.code, 0);
    assert_ne!(a, std::fs::read(dir.path().join("c.csv")).unwrap());
}

#[test]
fn generated_inventory_passes_validation_and_feature_engineering() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "400", "--seed", "3", "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let features = format!("features={}", repo("dags/features.toml").display());
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            repo("dags/train.toml").to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--set",
            "data=inv.csv",
            "--set",
            &features,
            "--only",
            "load",
            "validate",
            "features",
            "split",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let report = read_json(&single_run_dir(&dir.path().join("runs")).join("validation.json"));
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["rows"], 400);
}

#[test]
fn a_missing_directory_is_made_and_an_unwritable_output_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "10", "-o", "no/such/dir/x.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(dir.path().join("no/such/dir/x.csv").is_file());
    // Its parent is a file: no directory can be made there.
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "10", "-o", "no/such/dir/x.csv/y.csv"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("cannot write no/such/dir/x.csv/y.csv"),
        "{}",
        out.stderr
    );
}

#[test]
fn rows_past_the_limit_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "4294967296", "-o", "big.csv"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("--rows 4294967296 is more than the limit of 5000000"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("big.csv").exists());
}
