//! Real inventories and real users: empty labels, differently named columns, pipelines run
//! from another directory and by an installed binary, `dag check` on missing files.

mod common;
use common::*;
use nexusml::ml::table::{column_names, read_csv, text_column};
use polars::prelude::*;
use std::path::Path;

fn frame(path: &Path) -> DataFrame {
    read_csv(path, &Default::default()).unwrap().frame
}

fn write(path: &Path, frame: &mut DataFrame) {
    let mut f = std::fs::File::create(path).unwrap();
    CsvWriter::new(&mut f).finish(frame).unwrap();
}

/// Empty the cells of `column` in the rows `blank` picks; returns those rows.
fn blank(frame: &mut DataFrame, column: &str, blank: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut rows = Vec::new();
    let values: Vec<String> = text_column(frame, column)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if blank(i) {
                rows.push(i);
                String::new()
            } else {
                v
            }
        })
        .collect();
    frame.with_column(Column::new(column.into(), values)).unwrap();
    rows
}

/// A synthetic inventory of `rows` rows, as a table (also left in `inv.csv`).
fn synth(d: &Path, rows: &str, seed: &str) -> DataFrame {
    let out = nexusml(
        d,
        &["data", "synth", "--rows", rows, "--seed", seed, "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    frame(&d.join("inv.csv"))
}

/// `dag run dags/train.toml` on `data` with `trees` trees, models into `models/`.
fn train(d: &Path, data: &str, trees: &str, extra: &[&str]) -> Output {
    let train = repo("dags/train.toml");
    let data = format!("data={data}");
    let trees = format!("trees={trees}");
    let mut args = vec![
        "dag",
        "run",
        train.to_str().unwrap(),
        "--runs-dir",
        "runs",
        "--set",
        &data,
        "--set",
        &trees,
        "--set",
        "output_dir=models",
    ];
    args.extend_from_slice(extra);
    nexusml(d, &args)
}

#[test]
fn rows_without_a_label_are_left_out_of_that_target_only_and_still_predicted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut inv = synth(d, "500", "21");
    // 19 of 500 rows (3.8%) lack a Uniformat code; 13 lack a category.
    let no_code = blank(&mut inv, "uniformat_code", |i| i % 27 == 3);
    let no_category = blank(&mut inv, "category_name", |i| i % 40 == 5);
    assert_eq!((no_code.len(), no_category.len()), (19, 13));
    write(&d.join("gaps.csv"), &mut inv);

    let out = train(d, "gaps.csv", "20", &[]);
    assert_eq!(
        out.code,
        0,
        "training on an inventory with empty labels: {}",
        out.all()
    );
    let err = out.stderr;
    assert!(
        err.contains(
            "target `uniformat_code`: 19 of 500 rows (3.8%) have no label (lines 5, 32, 59, 86, 113, …)"
        ),
        "the validation warning, with counts and lines: {err}"
    );
    assert!(
        err.contains("without a label left out)"),
        "the training log: {err}"
    );
    let run = single_run_dir(&d.join("runs"));

    let validation = read_json(&run.join("validation.json"));
    assert_eq!(validation["valid"], true);
    assert_eq!(validation["targets"]["uniformat_code"]["unlabelled"], 19);
    assert_eq!(validation["targets"]["uniformat_code"]["labelled"], 481);
    assert_eq!(validation["targets"]["category_name"]["unlabelled"], 13);
    assert_eq!(validation["targets"]["mcaa_system_category"]["unlabelled"], 0);

    // Metrics: per target, the rows scored and those left out; no class "".
    let metrics = read_json(&run.join("metrics.json"));
    let test_rows = metrics["rows"].as_u64().unwrap();
    assert_eq!(test_rows, 150);
    let target = |name: &str| {
        metrics["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == name)
            .unwrap()
            .clone()
    };
    let mut left_out = 0;
    for name in [
        "category_name",
        "uniformat_code",
        "mcaa_system_category",
        "Equipment_Type",
    ] {
        let t = target(name);
        let (rows, unlabelled) = (
            t["rows"].as_u64().unwrap(),
            t["unlabelled_rows"].as_u64().unwrap(),
        );
        assert_eq!(rows + unlabelled, test_rows, "{name}");
        assert!(
            t["labels"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| !l.as_str().unwrap().trim().is_empty()),
            "{name} has a class \"\": {}",
            t["labels"]
        );
        left_out += unlabelled;
    }
    assert_eq!(target("mcaa_system_category")["unlabelled_rows"], 0);
    assert!(target("uniformat_code")["unlabelled_rows"].as_u64().unwrap() > 0);
    assert_eq!(
        target("Equipment_Type")["unlabelled_rows"],
        target("category_name")["unlabelled_rows"],
        "a label derived from a missing one is missing"
    );
    assert!(left_out > 0);

    // The model's metadata: labelled rows per target.
    let meta = read_json(&d.join("models/equipment_classifier_latest_metadata.json"));
    let training = meta["target_training"].as_array().unwrap();
    let code = training.iter().find(|t| t["target"] == "uniformat_code").unwrap();
    let train_rows = meta["train_rows"].as_u64().unwrap();
    assert_eq!(
        code["labelled_rows"].as_u64().unwrap() + code["unlabelled_rows"].as_u64().unwrap(),
        train_rows
    );
    assert_eq!(
        code["unlabelled_rows"].as_u64().unwrap()
            + target("uniformat_code")["unlabelled_rows"].as_u64().unwrap(),
        19
    );

    // Every row is predicted, those without a label too, and under the user's columns
    // (here with the description column renamed and mapped back with --set map.…).
    let mut renamed = frame(&d.join("gaps.csv"));
    renamed.rename("description", "Asset Description".into()).unwrap();
    write(&d.join("renamed.csv"), &mut renamed);
    let predict = repo("dags/predict.toml");
    let out = nexusml(
        d,
        &[
            "dag",
            "run",
            predict.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--set",
            "model=models/equipment_classifier_latest.nxm",
            "--set",
            "data=renamed.csv",
            "--set",
            "output=predictions.csv",
            "--set",
            "map.description=Asset Description",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let pred = frame(&d.join("predictions.csv"));
    assert_eq!(pred.height(), 500);
    let cols = column_names(&pred);
    assert_eq!(
        cols[..renamed.width()],
        column_names(&renamed)[..],
        "the user's columns, as they were"
    );
    let code = text_column(&pred, "predicted_uniformat_code").unwrap();
    for &row in &no_code {
        assert!(
            !code[row].is_empty(),
            "row {row} has no label and is still predicted"
        );
    }
    for c in [
        "predicted_category_name",
        "predicted_uniformat_code",
        "predicted_Equipment_Type",
    ] {
        assert!(
            text_column(&pred, c).unwrap().iter().all(|v| !v.is_empty()),
            "{c}"
        );
    }
}

#[test]
fn too_few_labelled_rows_stop_training_and_strict_is_a_param() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut inv = synth(d, "120", "3");
    blank(&mut inv, "uniformat_code", |i| i >= 10);
    write(&d.join("few.csv"), &mut inv);
    let out = train(d, "few.csv", "5", &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(
            "target `uniformat_code`: 10 labelled rows; at least 20 are needed (min_labelled_rows)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        !d.join("models").exists(),
        "nothing trained on data that failed validation"
    );
    // The threshold is a parameter.
    let out = train(d, "few.csv", "5", &["--set", "min_labelled_rows=5"]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn shipped_pipelines_run_from_another_directory_with_a_copied_binary() {
    // What `cargo install` does: the binary alone, somewhere else, run from a third place.
    let install = tempfile::tempdir().unwrap();
    let bin = install.path().join("nexusml");
    std::fs::copy(env!("CARGO_BIN_EXE_nexusml"), &bin).unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .current_dir(work.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), all)
    };
    let dags = repo("dags");
    let train = dags.join("train.toml");
    let train = train.to_str().unwrap();
    // The file's own paths (features.toml, ../examples/data/…) follow the file; the
    // command line's (output_dir=models) follow the working directory.
    let (code, all) = run(&["dag", "check", train]);
    assert_eq!(code, 0, "{all}");
    let (code, all) = run(&[
        "dag",
        "run",
        train,
        "--set",
        "trees=5",
        "--set",
        "output_dir=models",
    ]);
    assert_eq!(code, 0, "{all}");
    assert!(work
        .path()
        .join("models/equipment_classifier_latest.nxm")
        .is_file());
    assert!(
        work.path().join("outputs/runs").is_dir(),
        "runs go under the working directory"
    );
    let predict = dags.join("predict.toml");
    let (code, all) = run(&[
        "dag",
        "run",
        predict.to_str().unwrap(),
        "--set",
        "model=models/equipment_classifier_latest.nxm",
        "--set",
        "output=p.csv",
    ]);
    assert_eq!(code, 0, "{all}");
    assert!(work.path().join("p.csv").is_file());
    let evaluate = dags.join("evaluate.toml");
    let (code, all) = run(&[
        "dag",
        "run",
        evaluate.to_str().unwrap(),
        "--set",
        "model=models/equipment_classifier_latest.nxm",
    ]);
    assert_eq!(code, 0, "{all}");
    // The classic command needs no file beside the binary (its pipeline and feature
    // config are built in) and writes nothing but its runs and model.
    let (code, all) = run(&[
        "train",
        "--data-path",
        repo("examples/data/equipment_inventory.csv").to_str().unwrap(),
        "--trees",
        "5",
        "--output-dir",
        "classic",
    ]);
    assert_eq!(code, 0, "{all}");
    let top: Vec<String> = std::fs::read_dir(work.path().join("outputs/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("train-") && !n.starts_with("predict-") && !n.starts_with("evaluate-"))
        .collect();
    assert!(
        top.iter().all(|n| n == "_latest"),
        "only run directories in the runs directory: {top:?}"
    );
}

#[test]
fn dag_check_reports_input_files_that_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let train = repo("dags/train.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "check",
            train.to_str().unwrap(),
            "--set",
            "data=missing.csv",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("node `load`: `csv.load` reads missing.csv, which does not exist"),
        "{}",
        out.stderr
    );
    // Written in the file, a path is taken from the file's directory.
    std::fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"p\"\n[nodes.load]\nop = \"csv.load\"\nwith = { path = \"data/inv.csv\" }\nout = { table = \"t\" }\n",
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    let out = nexusml(elsewhere.path(), &["dag", "check", p.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    let expected = dir.path().join("data/inv.csv");
    assert!(
        out.stderr
            .contains(&format!("reads {}, which", expected.display())),
        "{}",
        out.stderr
    );
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(&expected, "a,b\n1,2\n").unwrap();
    let out = nexusml(elsewhere.path(), &["dag", "run", p.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());

    // A file another node of the pipeline writes is not missing: the run makes it.
    std::fs::write(
        dir.path().join("chain.toml"),
        "[pipeline]\nname = \"chain\"\n\
         [nodes.load]\nop = \"csv.load\"\nwith = { path = \"data/inv.csv\" }\nout = { table = \"t\" }\n\
         [nodes.write]\nop = \"csv.write\"\nwith = { path = \"copy/inv.csv\" }\nin = { table = \"t\" }\n\
         [nodes.again]\nop = \"csv.load\"\nwith = { path = \"copy/inv.csv\" }\nout = { table = \"u\" }\nafter = [\"write\"]\n",
    )
    .unwrap();
    let chain = dir.path().join("chain.toml");
    let out = nexusml(elsewhere.path(), &["dag", "run", chain.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        dir.path().join("copy/inv.csv").is_file(),
        "written beside the pipeline file"
    );
}
