//! The model end to end: train, evaluate, save, load, predict; determinism; model-file errors.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// Generate an inventory and train on it with few trees; returns the run directory.
fn train(dir: &Path, rows: &str, jobs: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out = nexusml(
        dir,
        &["data", "synth", "--rows", rows, "--seed", "11", "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let features = format!("features={}", repo("dags/features.toml").display());
    let train = repo("dags/train.toml");
    let mut args = vec![
        "dag",
        "run",
        train.to_str().unwrap(),
        "--runs-dir",
        "runs",
        "--jobs",
        jobs,
        "--set",
        "data=inv.csv",
        "--set",
        &features,
        "--set",
        "trees=25",
        "--set",
        "output_dir=models",
    ];
    args.extend_from_slice(extra);
    let out = nexusml(dir, &args);
    let run = if dir.join("runs").exists() {
        single_run_dir(&dir.join("runs"))
    } else {
        PathBuf::new()
    };
    (out, run)
}

#[test]
fn train_pipeline_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (out, run) = train(dir.path(), "900", "2", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let metrics = read_json(&run.join("metrics.json"));
    assert_eq!(metrics["targets"].as_array().unwrap().len(), 5);
    let cat = &metrics["targets"][0];
    assert_eq!(cat["target"], "category_name");
    assert!(cat["accuracy"].as_f64().unwrap() > 0.5, "{cat}");
    assert!(cat["per_class"].as_array().unwrap().len() > 20);
    assert_eq!(metrics["top_terms"][0][1].as_array().unwrap().len(), 15);
    // Identically derived targets: one model, the same numbers under both names.
    assert_eq!(
        metrics["targets"][3]["accuracy"],
        metrics["targets"][4]["accuracy"]
    );
    for t in [
        "category_name",
        "uniformat_code",
        "mcaa_system_category",
        "Equipment_Type",
        "System_Subtype",
    ] {
        let png = std::fs::read(run.join(format!("plots/confusion_{t}.png"))).unwrap();
        assert!(resvg::tiny_skia::Pixmap::decode_png(&png).is_ok(), "{t}");
    }
    let sample = read_json(&run.join("sample_prediction.json"));
    assert_eq!(sample["predictions"].as_array().unwrap().len(), 5);
    let models = dir.path().join("models");
    assert!(models.join("equipment_classifier_latest.nxm").exists());
    let meta = read_json(&models.join("equipment_classifier_latest_metadata.json"));
    assert_eq!(meta["format_version"], 2);
    assert_eq!(meta["learner"], "linear_svc");
    assert_eq!(meta["training_data_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(meta["train_rows"], 630);
    assert_eq!(meta["test_rows"], 270);
    assert_eq!(meta["metrics"]["targets"][0]["target"], "category_name");
    let stamped: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".nxm") && !n.contains("latest"))
        .collect();
    assert_eq!(stamped.len(), 1, "{stamped:?}");
    assert!(stamped[0].starts_with("equipment_classifier_2"), "{stamped:?}");
    assert_eq!(
        std::fs::read(models.join(&stamped[0])).unwrap(),
        std::fs::read(models.join("equipment_classifier_latest.nxm")).unwrap()
    );

    // predict.toml with the saved model on another inventory.
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "50", "--seed", "99", "-o", "new.csv"],
    );
    assert_eq!(out.code, 0);
    let predict = repo("dags/predict.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            predict.to_str().unwrap(),
            "--runs-dir",
            "runs2",
            "--set",
            "model=models/equipment_classifier_latest.nxm",
            "--set",
            "data=new.csv",
            "--set",
            "output=predictions.csv",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let pred = nexusml::ml::table::read_csv(&dir.path().join("predictions.csv"), &Default::default())
        .unwrap()
        .frame;
    assert_eq!(pred.height(), 50);
    let cols = nexusml::ml::table::column_names(&pred);
    let input = nexusml::ml::table::read_csv(&dir.path().join("new.csv"), &Default::default())
        .unwrap()
        .frame;
    let n = input.width();
    // The input's columns as they were, then per target the 3 most probable labels with
    // their probabilities, then whether the codes agree and whether the row needs review.
    assert_eq!(cols[..n], nexusml::ml::table::column_names(&input)[..]);
    assert_eq!(
        cols[n..n + 6],
        [
            "predicted_category_name",
            "predicted_category_name_probability",
            "predicted_category_name_2",
            "predicted_category_name_2_probability",
            "predicted_category_name_3",
            "predicted_category_name_3_probability"
        ]
    );
    assert_eq!(cols[n + 6 * 5..], ["codes_agree", "needs_review"]);
    assert_eq!(cols.len(), n + 6 * 5 + 2);
    // The review queue beside the predictions: exactly the rows that need review.
    let review =
        nexusml::ml::table::read_csv(&dir.path().join("predictions_review.csv"), &Default::default())
            .unwrap()
            .frame;
    let flagged = pred.column("needs_review").unwrap().str().unwrap().clone();
    let flagged: Vec<usize> = (0..pred.height())
        .filter(|&i| flagged.get(i) == Some("true"))
        .map(|i| i + 1)
        .collect();
    let mut rows: Vec<usize> = {
        let r = review.column("row").unwrap().str().unwrap().clone();
        (0..review.height())
            .map(|i| r.get(i).unwrap().parse().unwrap())
            .collect()
    };
    rows.sort_unstable();
    assert_eq!(rows, flagged);
    assert!(
        out.stderr.contains(&format!("{} rows to review", rows.len())),
        "{}",
        out.stderr
    );
}

#[test]
fn forest_model_bytes_and_metrics_do_not_depend_on_thread_count() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (oa, ra) = train(a.path(), "400", "1", &["--set", "learner=forest"]);
    let (ob, rb) = train(b.path(), "400", "4", &["--set", "learner=forest"]);
    assert_eq!(oa.code, 0, "{}", oa.all());
    assert_eq!(ob.code, 0, "{}", ob.all());
    let model = |d: &Path| std::fs::read(d.join("models/equipment_classifier_latest.nxm")).unwrap();
    assert!(
        model(a.path()) == model(b.path()),
        "model files differ between --jobs 1 and --jobs 4"
    );
    assert_eq!(
        std::fs::read(ra.join("metrics.json")).unwrap(),
        std::fs::read(rb.join("metrics.json")).unwrap()
    );
}

#[test]
fn model_file_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = train(dir.path(), "300", "2", &["--to", "save"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let good = std::fs::read(dir.path().join("models/equipment_classifier_latest.nxm")).unwrap();
    let mut corrupted = good.clone();
    let mid = good.len() / 2;
    corrupted[mid] ^= 0x01;
    let mut future = good.clone();
    future[8] = 99;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.nxm", good[..good.len() / 3].to_vec(), "is truncated"),
        (
            "corrupted.nxm",
            corrupted,
            "is corrupted: its checksum does not match",
        ),
        (
            "future.nxm",
            future,
            "is model format version 99, newer than this nexusml reads (up to 2)",
        ),
        (
            "zip.nxm",
            b"PK\x03\x04 not a model".to_vec(),
            "is not a nexusml model file",
        ),
    ];
    let predict = repo("dags/predict.toml");
    for (name, bytes, message) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let out = nexusml(
            dir.path(),
            &[
                "dag",
                "run",
                predict.to_str().unwrap(),
                "--runs-dir",
                "r",
                "--set",
                &format!("model={name}"),
                "--set",
                "data=inv.csv",
            ],
        );
        assert_eq!(out.code, 1, "{name}: {}", out.all());
        assert!(out.stderr.contains(message), "{name}: {}", out.stderr);
        assert!(
            !dir.path().join("prediction_results.csv").exists(),
            "{name}: no output on error"
        );
    }
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            predict.to_str().unwrap(),
            "--runs-dir",
            "r",
            "--set",
            "model=missing.nxm",
            "--set",
            "data=inv.csv",
        ],
    );
    // Found before anything runs.
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("node `load_model`: `model.load` reads missing.nxm, which does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn prediction_input_without_the_model_columns_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = train(dir.path(), "300", "2", &["--to", "save"]);
    assert_eq!(out.code, 0, "{}", out.all());
    std::fs::write(dir.path().join("bad.csv"), "asset,notes\nA-1,pump\n").unwrap();
    let predict = repo("dags/predict.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            predict.to_str().unwrap(),
            "--runs-dir",
            "r",
            "--set",
            "model=models/equipment_classifier_latest.nxm",
            "--set",
            "data=bad.csv",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("the input lacks columns the model needs: equipment_tag, manufacturer, model (optional, read when present: description, building_name, service_life, condition_score; columns present: asset, notes)"),
        "{}",
        out.stderr
    );
}
