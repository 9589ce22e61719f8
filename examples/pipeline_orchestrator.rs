//! The Orchestrator API: train, predict, evaluate, error handling, a custom pipeline file.
//!
//! `cargo run --release --example pipeline_orchestrator` (works in a scratch directory;
//! prints what it does). It trains on the bundled 3,000-row inventory with 100 trees per
//! forest: the same data as the quick start, so the numbers are comparable (the quick
//! start uses 200 trees).

use nexusml::orchestrator::{Orchestrator, OrchestratorError, Status, TrainOptions};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/equipment_inventory.csv");

    let mut o = Orchestrator::new();
    o.runs_dir = dir.path().join("runs");
    o.store = Some(dir.path().join("store")); // the artifact store: unchanged steps are not re-run

    // 1. Train (the built-in dags/train.toml) and look at the metrics.
    let opts = TrainOptions {
        trees: Some(100),
        // The forest, whose `trees` these examples set (the default learner is the linear SVM).
        learner: Some(nexusml::ml::learner::LearnerKind::Forest),
        output_dir: dir.path().join("models"),
        ..TrainOptions::new(&data)
    };
    let (model, metrics) = o.train_model(&opts)?;
    println!(
        "trained {} targets:\n{}\n",
        model.target_names().len(),
        metrics.table()
    );
    let summary = o.execution_summary();
    println!(
        "context: status {}, {} components timed, {} log entries",
        summary["status"],
        summary["component_times_ms"].as_object().map_or(0, |m| m.len()),
        summary["logs"].as_array().map_or(0, |l| l.len())
    );

    // 2. Save and load, then predict a file with the saved model.
    let path = dir.path().join("model.nxm");
    o.save_model(&model, &path)?;
    let loaded = o.load_model(&path)?;
    assert_eq!(loaded, model);
    let predictions = o.predict(&path, &data, &dir.path().join("predictions.csv"))?;
    // The output keeps the file's own columns, then `predicted_<target>` and its probability.
    let tags = nexusml::ml::table::text_column(&predictions, "equipment_tag")?;
    let categories = nexusml::ml::table::text_column(&predictions, "predicted_category_name")?;
    let probability = predictions
        .column("predicted_category_name_probability")?
        .f32()?
        .get(0)
        .unwrap_or(0.0);
    println!(
        "predicted {} rows; first: {} → {} ({probability:.2})",
        predictions.height(),
        tags[0],
        categories[0]
    );

    // 3. Evaluate on labelled data.
    let evaluation = o.evaluate(&path, &data, None)?;
    // Rows the model was trained on are among them: this is higher than the test
    // accuracy above, and is not a measure of the model.
    println!(
        "evaluation mean accuracy on the whole file (training rows included): {:.3}",
        evaluation.mean_accuracy
    );

    // 4. Errors are values: a bad argument, and a failing step.
    match o.train_model(&TrainOptions {
        test_size: Some(1.5),
        ..opts.clone()
    }) {
        Err(OrchestratorError::Invalid(msg)) => println!("rejected: {msg}"),
        other => return Err(format!("expected an invalid-argument error, got {other:?}").into()),
    }
    let empty = dir.path().join("empty.csv");
    std::fs::write(
        &empty,
        "equipment_tag,manufacturer,model,category_name,uniformat_code,mcaa_system_category\n",
    )?;
    let err = o
        .train_model(&TrainOptions {
            data_path: empty,
            ..opts.clone()
        })
        .unwrap_err();
    println!("failed as expected: {err}");
    assert_eq!(o.context().map(|c| c.status), Some(Status::Failed));

    // 5. A custom pipeline file replaces the built-in one: here, word 1-2-grams only.
    let custom = dir.path().join("train_bigrams.toml");
    std::fs::write(
        &custom,
        nexusml::orchestrator::TRAIN_PIPELINE.replace("ngram_max = 3", "ngram_max = 2"),
    )?;
    let (_, metrics) = o.train_model(&TrainOptions {
        pipeline: Some(custom),
        ..opts
    })?;
    println!("custom pipeline: mean accuracy {:.3}", metrics.mean_accuracy);
    Ok(())
}
