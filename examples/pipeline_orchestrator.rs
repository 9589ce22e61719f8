//! The Orchestrator API: train, predict, evaluate, error handling, a custom pipeline file.
//!
//! `cargo run --example pipeline_orchestrator` (works in a scratch directory; prints what
//! it does).

use nexusml::ml::synth::{write_inventory, SynthOptions};
use nexusml::orchestrator::{Orchestrator, OrchestratorError, Status, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("inventory.csv");
    write_inventory(&SynthOptions { rows: 600, seed: 7 }, &data)?;

    let mut o = Orchestrator::new();
    o.runs_dir = dir.path().join("runs");
    o.store = Some(dir.path().join("store")); // the artifact store: unchanged steps are not re-run

    // 1. Train (the built-in dags/train.toml) and look at the metrics.
    let opts = TrainOptions {
        trees: 25,
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
    println!(
        "predicted {} rows; first: {:?}",
        predictions.height(),
        predictions.head(Some(1))
    );

    // 3. Evaluate on labelled data.
    let evaluation = o.evaluate(&path, &data, None)?;
    println!(
        "evaluation mean accuracy on the training file: {:.3}",
        evaluation.mean_accuracy
    );

    // 4. Errors are values: a bad argument, and a failing step.
    match o.train_model(&TrainOptions {
        test_size: 1.5,
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
