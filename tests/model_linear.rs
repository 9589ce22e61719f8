//! The linear learners end to end: determinism across thread counts, save/load,
//! calibration in metrics.json and its pictures, the learner choice on the classic
//! command line.

mod common;
use common::*;
use std::path::Path;

/// `dag run dags/train.toml` on `inv.csv` in `dir` (generated when absent).
fn train(dir: &Path, rows: &str, jobs: &str, extra: &[&str]) -> Output {
    if !dir.join("inv.csv").exists() {
        let out = nexusml(
            dir,
            &["data", "synth", "--rows", rows, "--seed", "5", "-o", "inv.csv"],
        );
        assert_eq!(out.code, 0, "{}", out.all());
    }
    let train = repo("dags/train.toml");
    let mut args = vec![
        "dag",
        "run",
        train.to_str().unwrap(),
        "--runs-dir",
        "runs",
        "--no-cache",
        "--jobs",
        jobs,
        "--set",
        "data=inv.csv",
        "--set",
        "output_dir=models",
    ];
    args.extend_from_slice(extra);
    nexusml(dir, &args)
}

#[test]
fn linear_models_do_not_depend_on_thread_count() {
    for learner in ["linear_svc", "logistic"] {
        let set = format!("learner={learner}");
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let oa = train(a.path(), "500", "1", &["--set", &set]);
        let ob = train(b.path(), "500", "4", &["--set", &set]);
        assert_eq!(oa.code, 0, "{}", oa.all());
        assert_eq!(ob.code, 0, "{}", ob.all());
        let model = |d: &Path| std::fs::read(d.join("models/equipment_classifier_latest.nxm")).unwrap();
        assert!(
            model(a.path()) == model(b.path()),
            "{learner}: model files differ between --jobs 1 and --jobs 4"
        );
        let metrics = |d: &Path| std::fs::read(single_run_dir(&d.join("runs")).join("metrics.json")).unwrap();
        assert_eq!(metrics(a.path()), metrics(b.path()), "{learner}");
        let meta = read_json(&a.path().join("models/equipment_classifier_latest_metadata.json"));
        assert_eq!(meta["learner"], learner);
        assert_eq!(meta["format_version"], 2);
    }
}

#[test]
fn metrics_carry_calibration_code_agreement_and_coverage_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(dir.path(), "900", "2", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = single_run_dir(&dir.path().join("runs"));
    let metrics = read_json(&run.join("metrics.json"));
    assert_eq!(metrics["learner"], "linear_svc");
    for t in metrics["targets"].as_array().unwrap() {
        let name = t["target"].as_str().unwrap();
        let c = &t["calibration"];
        let ece = c["ece"].as_f64().unwrap();
        let brier = c["brier"].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&ece) && (0.0..=2.0).contains(&brier),
            "{name}: {c}"
        );
        assert!(
            c["method"].as_str().unwrap().starts_with("softmax temperature"),
            "{c}"
        );
        let coverage = c["coverage"].as_array().unwrap();
        assert_eq!(coverage.len(), 10, "0.50 … 0.95");
        assert_eq!(coverage[0]["threshold"], 0.5);
        let shares: Vec<f64> = coverage.iter().map(|r| r["coverage"].as_f64().unwrap()).collect();
        assert!(
            shares.windows(2).all(|w| w[0] >= w[1]),
            "{name}: coverage falls with the threshold"
        );
        let png = std::fs::read(run.join(format!("plots/coverage_{name}.png"))).unwrap();
        assert!(resvg::tiny_skia::Pixmap::decode_png(&png).is_ok(), "{name}");
    }
    // Equipment_Type groups the rows as category_name does: one model, relabelled.
    assert_eq!(
        metrics["targets"][0]["accuracy"],
        metrics["targets"][3]["accuracy"]
    );
    let codes = &metrics["code_agreement"];
    assert_eq!(codes["category"], "category_name");
    assert_eq!(
        codes["codes"],
        serde_json::json!(["uniformat_code", "mcaa_system_category"])
    );
    let rows = codes["rows"].as_u64().unwrap();
    let flagged = codes["disagreeing_rows"].as_u64().unwrap();
    assert_eq!(rows, 270, "every test row is labelled");
    assert!(flagged < rows, "{codes}");
    assert!((codes["share"].as_f64().unwrap() - flagged as f64 / rows as f64).abs() < 1e-12);
    let meta = read_json(
        &dir.path()
            .join("models/equipment_classifier_latest_metadata.json"),
    );
    let answered: Vec<&str> = meta["target_training"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["answered_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        answered,
        [
            "category_name",
            "uniformat_code",
            "mcaa_system_category",
            "category_name",
            "category_name"
        ]
    );
    let sample = read_json(&run.join("sample_prediction.json"));
    assert_eq!(sample["codes_agree"], true, "{sample}");
    assert_eq!(
        sample["predictions"][0]["alternatives"].as_array().unwrap().len(),
        2,
        "the next two labels: {sample}"
    );
}

#[test]
fn a_saved_linear_model_loads_and_predicts_the_same_bytes() {
    use nexusml::orchestrator::{Orchestrator, TrainOptions};
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "600", "--seed", "8", "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let mut o = Orchestrator::new();
    o.runs_dir = dir.path().join("runs");
    o.store = None;
    let opts = TrainOptions {
        output_dir: dir.path().join("models"),
        ..TrainOptions::new(dir.path().join("inv.csv"))
    };
    let (model, _) = o.train_model(&opts).unwrap();
    assert!(
        model.models.iter().all(|m| m.linear().is_some()),
        "the default learner is linear"
    );
    let path = dir.path().join("linear.nxm");
    o.save_model(&model, &path).unwrap();
    let loaded = o.load_model(&path).unwrap();
    assert_eq!(loaded, model);
    let raw = nexusml::ml::table::read_csv(&dir.path().join("inv.csv"), &Default::default())
        .unwrap()
        .frame;
    let csv = |m: &nexusml::ml::model::EquipmentModel| {
        let mut frame = o.predict_table(m, &raw).unwrap();
        let mut bytes = Vec::new();
        {
            use polars::prelude::SerWriter;
            polars::prelude::CsvWriter::new(&mut bytes).finish(&mut frame)
        }
        .unwrap();
        bytes
    };
    let (a, b) = (csv(&model), csv(&loaded));
    assert!(
        a == b,
        "predictions of the saved model differ from the trained one's"
    );
    // And the file the pipeline saved is the same model.
    let saved = o
        .load_model(&dir.path().join("models/equipment_classifier_latest.nxm"))
        .unwrap();
    assert!(csv(&saved) == a);
}

#[test]
fn the_classic_train_chooses_the_learner_and_legacy_is_the_original_forest() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(
        dir.path(),
        &["data", "synth", "--rows", "300", "--seed", "3", "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let learner_of = |models: &str| {
        read_json(
            &dir.path()
                .join(models)
                .join("equipment_classifier_latest_metadata.json"),
        )["learner"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let run = |args: &[&str]| {
        let mut all = vec![
            "train",
            "--data-path",
            "inv.csv",
            "--runs-dir",
            "runs",
            "--no-cache",
        ];
        all.extend_from_slice(args);
        nexusml(dir.path(), &all)
    };
    let out = run(&["--output-dir", "default"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(learner_of("default"), "linear_svc");
    let out = run(&["--output-dir", "legacy", "--legacy", "--trees", "3"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(learner_of("legacy"), "forest");
    let out = run(&[
        "--output-dir",
        "logistic",
        "--learner",
        "logistic",
        "--trees",
        "3",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(learner_of("logistic"), "logistic");
    assert!(
        out.stderr
            .contains("--trees sets the forest's trees, and the learner is logistic"),
        "{}",
        out.stderr
    );
    let out = run(&["--legacy", "--learner", "linear-svc"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}
