//! `nexusml train | predict | evaluate` and the Orchestrator behind them.

mod common;
use common::*;
use nexusml::orchestrator::{Orchestrator, Status, TrainOptions};
use std::path::Path;

fn synth(dir: &Path, rows: &str, name: &str) {
    let out = nexusml(dir, &["data", "synth", "--rows", rows, "--seed", "5", "-o", name]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn train_arguments_are_checked_with_the_classic_messages() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "60", "inv.csv");
    let cases: &[(&[&str], &str)] = &[
        (&["--data-path", "nope.csv"], "Data path does not exist: nope.csv"),
        (
            &["--data-path", "inv.csv", "--test-size", "1.0"],
            "Test size must be between 0 and 1, got 1.0",
        ),
        (
            &["--data-path", "inv.csv", "--test-size", "0"],
            "Test size must be between 0 and 1, got 0.0",
        ),
        (
            &["--data-path", "inv.csv", "--feature-config", "f.toml"],
            "Feature config path does not exist: f.toml",
        ),
        (
            &["--data-path", "inv.csv", "--reference-config", "r.yml"],
            "Reference config path does not exist: r.yml",
        ),
        (
            &["--data-path", "inv.csv", "--sampling-strategy", "smote"],
            "Sampling strategy must be 'direct', got 'smote'",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["train"];
        all.extend_from_slice(args);
        let out = nexusml(dir.path(), &all);
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    let out = nexusml(dir.path(), &["train"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--data-path"), "{}", out.stderr);
}

#[test]
fn train_predict_evaluate_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "500", "inv.csv");
    let out = nexusml(
        dir.path(),
        &["train", "--data-path", "inv.csv", "--trees", "20", "--visualize"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("Sample prediction"), "{}", out.stdout);
    assert!(out.stdout.contains("category_name"), "{}", out.stdout);
    let models = dir.path().join("outputs/models");
    assert!(models.join("equipment_classifier_latest.nxm").exists());
    assert!(models.join("visualizations/confusion_category_name.png").exists());
    assert!(models
        .join("visualizations/distribution_category_name.png")
        .exists());
    let run = single_run_dir(&dir.path().join("outputs/runs"));
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(
        log.contains("node `train` ok"),
        "the log goes to the run directory too: {log}"
    );

    // An inventory with other column names, mapped by the classic flags.
    let text = std::fs::read_to_string(dir.path().join("inv.csv")).unwrap();
    let renamed = text
        .replacen("description", "Asset Description", 1)
        .replacen("equipment_tag", "Tag", 1)
        .replacen("manufacturer", "Mfr", 1);
    std::fs::write(dir.path().join("other.csv"), renamed).unwrap();
    let out = nexusml(
        dir.path(),
        &[
            "predict",
            "--input-file",
            "other.csv",
            "--description-column",
            "Asset Description",
            "--asset-tag-column",
            "Tag",
            "--map",
            "manufacturer=Mfr",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let read = |name: &str| {
        nexusml::ml::table::read_csv(&dir.path().join(name), &Default::default())
            .unwrap()
            .frame
    };
    let pred = read("prediction_results.csv");
    assert_eq!(pred.height(), 500);
    let input_columns = nexusml::ml::table::column_names(&read("other.csv"));
    let cols = nexusml::ml::table::column_names(&pred);
    // The user's own columns, under their own names, then the predictions.
    assert_eq!(cols[..input_columns.len()], input_columns[..]);
    assert!(cols.contains(&"Mfr".to_string()) && !cols.contains(&"manufacturer".to_string()));
    assert!(cols.contains(&"predicted_category_name".to_string()), "{cols:?}");
    assert!(
        cols.contains(&"predicted_category_name_probability".to_string()),
        "{cols:?}"
    );
    // Without the mapped manufacturer the predictions differ: the mapping is read.
    let out = nexusml(
        dir.path(),
        &[
            "predict",
            "--input-file",
            "other.csv",
            "--output-file",
            "id_only.csv",
            "--keep",
            "id",
            "--map",
            "description=Asset Description",
            "--map",
            "equipment_tag=Tag",
            "--map",
            "manufacturer=Mfr",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let id_only = read("id_only.csv");
    let cols = nexusml::ml::table::column_names(&id_only);
    assert_eq!(cols[..3], ["Tag", "combined_text", "category_name"]);
    assert_eq!(
        nexusml::ml::table::text_column(&id_only, "category_name").unwrap(),
        nexusml::ml::table::text_column(&pred, "predicted_category_name").unwrap(),
        "both ways of mapping give the same predictions"
    );
    let out = nexusml(
        dir.path(),
        &["predict", "--input-file", "other.csv", "--map", "manufacturer"],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("--map manufacturer: expected MODEL_COLUMN=INPUT_COLUMN"),
        "{}",
        out.stderr
    );
    let out = nexusml(
        dir.path(),
        &[
            "predict",
            "--input-file",
            "other.csv",
            "--map",
            "manufacturer=Maker",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("the mapping manufacturer=Maker names no input column \"Maker\""),
        "{}",
        out.stderr
    );

    // Without the mapping the model's columns are missing: a clear error.
    let out = nexusml(
        dir.path(),
        &["predict", "--input-file", "other.csv", "--output-file", "x.csv"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("the input lacks columns the model needs: equipment_tag"),
        "{}",
        out.stderr
    );

    let out = nexusml(
        dir.path(),
        &[
            "evaluate",
            "--data-path",
            "inv.csv",
            "--output",
            "eval/metrics.json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let metrics = read_json(&dir.path().join("eval/metrics.json"));
    assert_eq!(metrics["targets"].as_array().unwrap().len(), 5);
    let out = nexusml(dir.path(), &["predict", "--input-file", "nope.csv"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("Input file does not exist: nope.csv"),
        "{}",
        out.stderr
    );
}

#[test]
fn legacy_and_dag_paths_give_the_same_model_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "300", "inv.csv");
    for (name, legacy) in [("dag", false), ("legacy", true)] {
        let mut args = vec![
            "train",
            "--data-path",
            "inv.csv",
            "--trees",
            "15",
            "--output-dir",
            name,
            "--runs-dir",
        ];
        let runs = format!("runs-{name}");
        args.push(&runs);
        if legacy {
            // The original model: forests, sequentially.
            args.push("--legacy");
        } else {
            args.extend(["--learner", "forest"]);
        }
        let out = nexusml(dir.path(), &args);
        assert_eq!(out.code, 0, "{name}: {}", out.all());
    }
    let model = |n: &str| std::fs::read(dir.path().join(n).join("equipment_classifier_latest.nxm")).unwrap();
    assert!(
        model("dag") == model("legacy"),
        "model bytes differ between the DAG and legacy paths"
    );
    let metrics = |n: &str| {
        std::fs::read(single_run_dir(&dir.path().join(format!("runs-{n}"))).join("metrics.json")).unwrap()
    };
    assert_eq!(metrics("dag"), metrics("legacy"));
    // The legacy run used one thread.
    let report = read_json(&single_run_dir(&dir.path().join("runs-legacy")).join("report.json"));
    assert_eq!(report["jobs"], 1);
}

#[test]
fn context_records_status_timings_logs_and_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "200", "inv.csv");
    let mut o = Orchestrator::new();
    o.runs_dir = dir.path().join("runs");
    o.store = Some(dir.path().join("store"));
    assert!(o.context().is_none());

    // A failure in a step: failed status and a message naming the node.
    let bad = TrainOptions {
        output_dir: dir.path().join("models"),
        trees: Some(5),
        ..TrainOptions::new(fixture("data/classic.csv"))
    };
    let mut tiny = bad.clone();
    tiny.data_path = dir.path().join("tiny.csv");
    std::fs::write(&tiny.data_path, "equipment_tag,manufacturer,model,category_name,uniformat_code,mcaa_system_category\nA,B,C,,D3040,HVAC\n").unwrap();
    let err = o.train_model(&tiny).unwrap_err().to_string();
    assert!(err.contains("failed at node `validate`"), "{err}");
    let c = o.context().unwrap();
    assert_eq!(c.status, Status::Failed);
    assert!(c.error.as_deref().unwrap().contains("validate"));
    assert!(c
        .logs
        .iter()
        .any(|l| l.level == "ERROR" && l.node.as_deref() == Some("validate")));

    // A success: completed, a time per component, metrics, artifacts, summary JSON.
    let good = TrainOptions {
        data_path: dir.path().join("inv.csv"),
        ..bad
    };
    let (_, metrics) = o.train_model(&good).unwrap();
    let c = o.context().unwrap();
    assert_eq!(c.status, Status::Completed);
    assert!(c.started_at.is_some() && c.ended_at.is_some());
    for node in [
        "load", "validate", "features", "split", "tfidf", "train", "evaluate", "save",
    ] {
        assert!(c.component_times_ms.contains_key(node), "{node}");
    }
    assert!(c.artifacts_written.contains(&"model".to_string()));
    assert!(c.artifacts_read.contains(&"train_matrix".to_string()));
    assert_eq!(c.metrics.as_ref().unwrap().mean_accuracy, metrics.mean_accuracy);
    assert!(
        c.logs.len() >= 10,
        "one context per run: {} entries",
        c.logs.len()
    );
    // In-memory variants agree with the pipeline's evaluation.
    let model = o
        .load_model(&dir.path().join("models/equipment_classifier_latest.nxm"))
        .unwrap();
    let table = nexusml::ml::table::read_csv(&dir.path().join("inv.csv"), &Default::default())
        .unwrap()
        .frame;
    let predictions = o.predict_table(&model, &table).unwrap();
    assert_eq!(predictions.height(), 200);
    let only = o
        .evaluate_table(&model, &table, &["uniformat_code".to_string()])
        .unwrap();
    assert_eq!(only.targets.len(), 1);
    assert_eq!(only.targets[0].target, "uniformat_code");
    // A user's file replaces a built-in pipeline: this predict pipeline only loads the model.
    let custom = dir.path().join("predict_custom.toml");
    std::fs::write(
        &custom,
        "[pipeline]\nname = \"predict\"\n[params]\nmodel = \"\"\ndata = \"\"\noutput = \"\"\nmap = {}\nkeep = \"all\"\n\
         [nodes.load_model]\nop = \"model.load\"\nwith = { path = \"${model}\" }\nout = { model = \"model\" }\n",
    )
    .unwrap();
    let mut custom_o = Orchestrator::new();
    custom_o.runs_dir = dir.path().join("runs-custom");
    custom_o.store = Some(dir.path().join("store"));
    custom_o.pipeline_files.insert("predict".into(), custom.clone());
    let err = custom_o
        .predict(
            &dir.path().join("models/equipment_classifier_latest.nxm"),
            &dir.path().join("inv.csv"),
            &dir.path().join("p.csv"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("produced no `predictions`"), "{err}");
    let summary = o.execution_summary();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["config"]["params"]["trees"], 5);
    // One context per run: the failure's logs are gone.
    assert!(!c.logs.iter().any(|l| l.level == "ERROR"));
}

#[test]
fn optimize_with_the_default_learner_searches_c_and_the_char_wb_block() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "240", "inv.csv");
    let mut o = Orchestrator::new();
    o.runs_dir = dir.path().join("runs");
    o.store = Some(dir.path().join("store"));
    let grid = nexusml::ml::search::SearchGrid {
        max_features: vec![400],
        ngram_max: vec![1],
        c: vec![0.001, 1.0],
        char_wb: vec![false, true],
        ..nexusml::ml::search::SearchGrid::default()
    };
    let opts = TrainOptions {
        output_dir: dir.path().join("models"),
        optimize: Some(grid),
        cv_folds: 2,
        ..TrainOptions::new(dir.path().join("inv.csv"))
    };
    let (model, _) = o.train_model(&opts).unwrap();
    let search = &o.context().unwrap().config["search"];
    assert_eq!(search["points"].as_array().unwrap().len(), 4);
    let best = &search["best"]["point"];
    // C = 0.001 barely fits anything: the search does not choose it.
    assert_eq!(best["c"], 1.0, "{search}");
    let nexusml::ml::learner::LearnerConfig::Linear(linear) = &model.training.learner else {
        panic!("the default learner is linear: {:?}", model.training.learner)
    };
    assert_eq!(linear.c, 1.0, "trained with the best point's C");
    assert_eq!(
        model.training.tfidf.char_wb.is_some(),
        best["char_wb"].as_bool().unwrap(),
        "and its features"
    );
    let scores: Vec<f64> = search["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["mean_macro_f1"].as_f64().unwrap())
        .collect();
    assert_eq!(
        search["best"]["score"].as_f64().unwrap(),
        scores.iter().cloned().fold(f64::MIN, f64::max)
    );
}

#[test]
fn optimize_searches_the_grid_trains_the_best_point_and_records_every_score() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "240", "inv.csv");
    let mut o = Orchestrator::new();
    o.runs_dir = dir.path().join("runs");
    o.store = Some(dir.path().join("store"));
    let grid = nexusml::ml::search::SearchGrid {
        max_features: vec![400],
        ngram_max: vec![1, 2],
        c: vec![1.0],
        char_wb: vec![false],
        trees: vec![4, 6],
        min_samples_leaf: vec![1],
    };
    let opts = TrainOptions {
        output_dir: dir.path().join("models"),
        optimize: Some(grid),
        cv_folds: 2,
        learner: Some(nexusml::ml::learner::LearnerKind::Forest),
        ..TrainOptions::new(dir.path().join("inv.csv"))
    };
    let (model, _) = o.train_model(&opts).unwrap();
    let c = o.context().unwrap();
    let search = &c.config["search"];
    assert_eq!(search["points"].as_array().unwrap().len(), 4);
    assert_eq!(search["folds"], 2);
    let best_trees = search["best"]["point"]["trees"].as_u64().unwrap() as usize;
    assert_eq!(
        model.models[0].forest().unwrap().trees.len(),
        best_trees,
        "trained with the best point"
    );
    assert_eq!(
        model.training.tfidf.ngram_max as u64,
        search["best"]["point"]["ngram_max"].as_u64().unwrap()
    );
    let scores: Vec<f64> = search["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["mean_macro_f1"].as_f64().unwrap())
        .collect();
    assert_eq!(
        search["best"]["score"].as_f64().unwrap(),
        scores.iter().cloned().fold(f64::MIN, f64::max)
    );
    let run = c.run_dir.clone().unwrap();
    assert_eq!(
        read_json(&run.join("search.json"))["points"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let meta = read_json(
        &dir.path()
            .join("models/equipment_classifier_latest_metadata.json"),
    );
    // (The test reads JSON back with serde_json, which may place a float one unit off.)
    assert_eq!(meta["search"]["best"]["point"], search["best"]["point"]);
    assert_eq!(meta["search"]["best"]["train"], search["best"]["train"]);
    let stamped = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("Z_metadata.json"))
        .unwrap();
    assert_eq!(
        read_json(&stamped)["search"]["best"]["point"],
        search["best"]["point"]
    );

    let out = nexusml(
        dir.path(),
        &["train", "--data-path", "inv.csv", "--optimize", "--cv-folds", "1"],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("CV folds must be at least 2, got 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn ctrl_c_during_train_writes_the_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "1500", "inv.csv");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "train",
            "--data-path",
            "inv.csv",
            "--trees",
            "400",
            "--no-cache",
            "--runs-dir",
            "runs",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once training has started (seen in the log), whatever the build's speed:
    // the running node finishes, nothing new starts.
    let mut child = child;
    let stderr_pipe = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        let mut sent = false;
        for line in std::io::BufReader::new(stderr_pipe).lines() {
            let line = line.unwrap_or_default();
            if !sent && line.contains("node `tfidf` ok") {
                std::process::Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .unwrap();
                sent = true;
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let out = child.wait_with_output().unwrap();
    let stderr = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let run = single_run_dir(&dir.path().join("runs"));
    let report = read_json(&run.join("report.json"));
    assert_eq!(report["status"], "interrupted");
}

/// `train --optimize` validates first: on data that fails validation it stops there,
/// before any fold is fitted (it ran 162 fits for 90 s before).
#[test]
fn optimize_validates_before_it_searches() {
    let dir = tempfile::tempdir().unwrap();
    // Too few rows: validation refuses the file.
    synth(dir.path(), "30", "small.csv");
    let out = nexusml(
        dir.path(),
        &[
            "train",
            "--data-path",
            "small.csv",
            "--optimize",
            "--runs-dir",
            "runs",
        ],
    );
    assert_ne!(out.code, 0, "{}", out.all());
    let report = read_json(&newest_run(&dir.path().join("runs")).join("report.json"));
    let nodes = report["nodes"].as_array().unwrap();
    let validate = nodes.iter().find(|n| n["id"] == "validate").unwrap();
    assert_eq!(validate["status"], "failed", "{report}");
    let folds: Vec<_> = nodes.iter().filter(|n| n["op"] == "model.cv_score").collect();
    assert!(!folds.is_empty(), "the search was asked for: {report}");
    assert!(
        folds.iter().all(|n| n["status"] == "skipped"),
        "no fold ran: {report}"
    );
}
