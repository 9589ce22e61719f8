//! Another company's inventory: one column mapping (`--map`, `--map-file`) for train,
//! evaluate and predict; honest predictions (absent trained columns) and evaluations
//! (unseen classes, training rows); models that do not pile up.

mod common;
use common::*;
use std::path::Path;

/// The first `rows` data rows of the bundled inventory, header renamed by `rename`.
fn bundled(dir: &Path, name: &str, rows: usize, rename: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(repo("examples/data/equipment_inventory.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(rename).collect();
    let mut out = header.join(",") + "\n";
    for l in lines.take(rows) {
        out.push_str(l);
        out.push('\n');
    }
    std::fs::write(dir.join(name), out).unwrap();
}

/// `equipment_tag` → `Their Equipment Tag`: every column gets another name.
fn theirs(c: &str) -> String {
    let words: Vec<String> = c
        .split('_')
        .map(|w| {
            let mut ch = w.chars();
            ch.next()
                .map(|f| f.to_uppercase().chain(ch).collect())
                .unwrap_or_default()
        })
        .collect();
    format!("Their {}", words.join(" "))
}

/// Every column the shipped training pipeline reads, as `--map` arguments.
const READ: [&str; 9] = [
    "equipment_tag",
    "manufacturer",
    "model",
    "description",
    "service_life",
    "building_name",
    "category_name",
    "uniformat_code",
    "mcaa_system_category",
];

fn map_args() -> Vec<String> {
    READ.iter()
        .flat_map(|c| ["--map".to_string(), format!("{c}={}", theirs(c))])
        .collect()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = nexusml(dir, args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.all());
    out
}

fn with(base: &[&str], extra: &[String]) -> Vec<String> {
    base.iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn train(dir: &Path, data: &str, models: &str, extra: &[String]) -> Output {
    let args = with(
        &[
            "train",
            "--data-path",
            data,
            "--trees",
            "8",
            "--output-dir",
            models,
            "--runs-dir",
            "runs",
        ],
        extra,
    );
    run(dir, &strs(&args))
}

#[test]
fn an_inventory_with_every_column_renamed_trains_evaluates_and_predicts_with_map_only() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    bundled(dir, "std.csv", 900, str::to_string);
    bundled(dir, "theirs.csv", 900, theirs);

    // Without a mapping: the validation error lists the columns present and how to map.
    let out = nexusml(
        dir,
        &[
            "train",
            "--data-path",
            "theirs.csv",
            "--trees",
            "2",
            "--runs-dir",
            "runs",
        ],
    );
    assert_ne!(out.code, 0);
    // Validation and features run side by side: whichever fails first is reported,
    // and both name your columns and how to map.
    let all = out.all();
    assert!(
        all.contains("(the file has: Their Equipment Tag, Their Manufacturer")
            || all.contains("(columns: Their Equipment Tag, Their Manufacturer"),
        "{all}"
    );
    assert!(all.contains("=COLUMN (`--set map."), "{all}");
    let std_out = train(dir, "std.csv", "std", &[]);
    let their_out = train(dir, "theirs.csv", "their", &map_args());
    // Messages about a mapped column name both.
    assert!(
        their_out
            .stderr
            .contains("numeric column `service_life` (your column \"Their Service Life\"):"),
        "{}",
        their_out.stderr
    );
    assert!(their_out
        .stderr
        .contains("columns mapped: equipment_tag (your column \"Their Equipment Tag\")"));
    // The test metrics (the same split of the same rows) are those of the standard names.
    let table = |o: &Output| {
        o.stdout
            .lines()
            .skip_while(|l| !l.starts_with("target "))
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(table(&std_out).len(), 7, "{}", std_out.stdout);
    assert_eq!(table(&std_out), table(&their_out));
    let meta = read_json(&dir.join("their/equipment_classifier_latest_metadata.json"));
    assert_eq!(
        meta["training_data_columns"]["column_map"]["manufacturer"],
        "Their Manufacturer"
    );

    // Evaluate with --map only: the same metrics as the standard names.
    let std_model = "std/equipment_classifier_latest.nxm";
    let their_model = "their/equipment_classifier_latest.nxm";
    run(
        dir,
        &[
            "evaluate",
            "--model-path",
            std_model,
            "--data-path",
            "std.csv",
            "--output",
            "m_std.json",
            "--runs-dir",
            "runs",
        ],
    );
    let args = with(
        &[
            "evaluate",
            "--model-path",
            their_model,
            "--data-path",
            "theirs.csv",
            "--output",
            "m_their.json",
            "--runs-dir",
            "runs",
        ],
        &map_args(),
    );
    run(dir, &strs(&args));
    let (a, b) = (
        read_json(&dir.join("m_std.json")),
        read_json(&dir.join("m_their.json")),
    );
    assert_eq!(a["targets"], b["targets"]);
    assert_eq!(a["mean_accuracy"], b["mean_accuracy"]);
    // And without flags: the model applies the mapping it was trained with.
    run(
        dir,
        &[
            "evaluate",
            "--model-path",
            their_model,
            "--data-path",
            "theirs.csv",
            "--output",
            "m_auto.json",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(read_json(&dir.join("m_auto.json"))["targets"], a["targets"]);

    // Predicting the renamed file needs no flags and gives the standard file's answers.
    let out = run(
        dir,
        &[
            "predict",
            "--model-path",
            their_model,
            "--input-file",
            "theirs.csv",
            "--output-file",
            "p_their.csv",
            "--runs-dir",
            "runs",
        ],
    );
    assert!(!out.all().contains("is not in the input"), "{}", out.all());
    assert!(
        out.all()
            .contains("applying the column mapping the model was trained with"),
        "{}",
        out.all()
    );
    run(
        dir,
        &[
            "predict",
            "--model-path",
            std_model,
            "--input-file",
            "std.csv",
            "--output-file",
            "p_std.csv",
            "--runs-dir",
            "runs",
        ],
    );
    let predicted = |name: &str| -> Vec<String> {
        let frame = nexusml::ml::table::read_csv(&dir.join(name), &Default::default())
            .unwrap()
            .frame;
        nexusml::ml::table::text_column(&frame, "predicted_category_name").unwrap()
    };
    let (pt, ps) = (predicted("p_their.csv"), predicted("p_std.csv"));
    assert_eq!(pt.len(), 900);
    assert_eq!(pt, ps);
    // The output keeps the user's names.
    let header = std::fs::read_to_string(dir.join("p_their.csv")).unwrap();
    assert!(
        header.starts_with("Their Equipment Tag,Their Manufacturer,"),
        "{}",
        &header[..80]
    );
}

#[test]
fn an_absent_trained_column_is_a_warning_and_with_strict_an_error() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    bundled(dir, "inv.csv", 400, str::to_string);
    train(dir, "inv.csv", "models", &[]);
    // The same rows without `description`.
    let frame = nexusml::ml::table::read_csv(&dir.join("inv.csv"), &Default::default())
        .unwrap()
        .frame;
    let mut frame = frame.drop("description").unwrap();
    let mut f = std::fs::File::create(dir.join("nodesc.csv")).unwrap();
    use polars::prelude::SerWriter;
    polars::prelude::CsvWriter::new(&mut f)
        .finish(&mut frame)
        .unwrap();

    let model = "models/equipment_classifier_latest.nxm";
    let out = run(
        dir,
        &[
            "predict",
            "--model-path",
            model,
            "--input-file",
            "nodesc.csv",
            "--runs-dir",
            "runs",
        ],
    );
    let all = out.all();
    assert!(
        out.stdout.contains("warning: `description` (filled in "),
        "the run summary repeats it: {}",
        out.stdout
    );
    assert!(
        all.contains("of training rows) is not in the input: map it with --map description=COLUMN"),
        "{all}"
    );
    assert!(
        !all.contains("`building_name` ("),
        "building_name is in the input: {all}"
    );
    let summary = read_json(&newest_run(&dir.join("runs")).join("predictions_summary.json"));
    assert_eq!(summary["warnings"].as_array().unwrap().len(), 1, "{summary}");

    let out = nexusml(
        dir,
        &[
            "predict",
            "--strict",
            "--model-path",
            model,
            "--input-file",
            "nodesc.csv",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("strict: the input lacks 1 column the model was trained with: `description`"),
        "{}",
        out.stderr
    );
    // The standard file: no warning.
    let out = run(
        dir,
        &[
            "predict",
            "--strict",
            "--model-path",
            model,
            "--input-file",
            "inv.csv",
            "--runs-dir",
            "runs",
        ],
    );
    assert!(!out.all().contains("is not in the input"), "{}", out.all());
    // Lacking a column the model needs: the error lists the optional ones too.
    let out = nexusml(
        dir,
        &[
            "predict",
            "--model-path",
            model,
            "--input-file",
            "nodesc.csv",
            "--map",
            "model=nope",
            "--runs-dir",
            "runs",
        ],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("names no input column \"nope\""),
        "{}",
        out.stderr
    );
    let mut frame = frame.drop("model").unwrap();
    let mut f = std::fs::File::create(dir.join("nomodel.csv")).unwrap();
    polars::prelude::CsvWriter::new(&mut f)
        .finish(&mut frame)
        .unwrap();
    let out = nexusml(
        dir,
        &[
            "predict",
            "--model-path",
            model,
            "--input-file",
            "nomodel.csv",
            "--runs-dir",
            "runs",
        ],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("lacks columns the model needs: model (optional, read when present: description, building_name, service_life, condition_score;"),
        "{}",
        out.stderr
    );
}

#[test]
fn evaluate_warns_of_unseen_classes_and_of_training_rows() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    bundled(dir, "inv.csv", 400, str::to_string);
    train(dir, "inv.csv", "models", &[]);
    let model = "models/equipment_classifier_latest.nxm";
    // On its own training file: 70% of the rows are training rows.
    let out = run(
        dir,
        &[
            "evaluate",
            "--model-path",
            model,
            "--data-path",
            "inv.csv",
            "--output",
            "m.json",
            "--runs-dir",
            "runs",
        ],
    );
    assert!(
        out.stdout
            .contains("warning: 280 of the 400 evaluated rows are training rows of this model"),
        "{}",
        out.stdout
    );
    assert_eq!(
        read_json(&dir.join("m.json"))["warnings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // New rows whose system category the model never saw: 5 rows of one class.
    let frame = nexusml::ml::table::read_csv(
        &repo("examples/data/equipment_inventory.csv"),
        &Default::default(),
    )
    .unwrap()
    .frame;
    let mut fresh = frame.slice(2000, 60);
    let cats: Vec<String> = nexusml::ml::table::text_column(&fresh, "mcaa_system_category")
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, c)| if i < 5 { "Steam Tunnels".to_string() } else { c })
        .collect();
    fresh
        .with_column(polars::prelude::Column::new("mcaa_system_category".into(), cats))
        .unwrap();
    let mut f = std::fs::File::create(dir.join("fresh.csv")).unwrap();
    use polars::prelude::SerWriter;
    polars::prelude::CsvWriter::new(&mut f)
        .finish(&mut fresh)
        .unwrap();
    let out = run(
        dir,
        &[
            "evaluate",
            "--model-path",
            model,
            "--data-path",
            "fresh.csv",
            "--output",
            "f.json",
            "--runs-dir",
            "runs",
        ],
    );
    assert!(
        out.stdout.contains(
            "warning: mcaa_system_category: 5 of 60 labelled rows have 1 class the model never saw"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\"Steam Tunnels\" (5)"), "{}", out.stdout);
    assert!(!out.stdout.contains("are training rows"), "{}", out.stdout);
    let m = read_json(&dir.join("f.json"));
    let t = m["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "mcaa_system_category")
        .unwrap();
    assert!(t["warnings"].to_string().contains("never saw"), "{t}");
}

#[test]
fn model_save_keeps_the_newest_models_the_latest_pair_and_what_metadata_points_to() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    bundled(dir, "inv.csv", 200, str::to_string);
    // Without the store: a cached save would write nothing new.
    let keep = [
        "--keep-models".to_string(),
        "2".to_string(),
        "--no-cache".to_string(),
    ];
    let models = dir.join("models");
    let stamped = || {
        let mut v: Vec<String> = std::fs::read_dir(&models)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".nxm") && !f.contains("latest"))
            .collect();
        v.sort();
        v
    };
    train(dir, "inv.csv", "models", &keep);
    let first = stamped().pop().unwrap();
    // Someone deployed the first model: a metadata file of theirs points to it.
    let stem = first.trim_end_matches(".nxm");
    std::fs::copy(
        models.join(format!("{stem}_metadata.json")),
        models.join("deployed_metadata.json"),
    )
    .unwrap();
    for _ in 0..3 {
        train(dir, "inv.csv", "models", &keep);
    }
    let left = stamped();
    assert_eq!(left.len(), 3, "two newest + the deployed one: {left:?}");
    assert!(left.contains(&first), "{left:?}");
    assert!(models.join("equipment_classifier_latest.nxm").exists());
    assert!(models.join("equipment_classifier_latest_metadata.json").exists());
    let latest = read_json(&models.join("equipment_classifier_latest_metadata.json"));
    let newest = Path::new(latest["model_file"].as_str().unwrap())
        .file_name()
        .unwrap();
    assert!(
        left.iter().any(|f| f.as_str() == newest.to_str().unwrap()),
        "{left:?}"
    );
    // Each kept model still has its metadata; the pruned ones took theirs along.
    let metas = std::fs::read_dir(&models)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            n.ends_with("_metadata.json") && n.starts_with("equipment_classifier_2")
        })
        .count();
    assert_eq!(metas, 3);
    let out = nexusml(
        dir,
        &[
            "train",
            "--data-path",
            "inv.csv",
            "--keep-models",
            "0",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--keep-models must be at least 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn mapping_files_work_and_bad_mappings_are_refused_clearly() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    bundled(dir, "theirs.csv", 200, theirs);
    let file: String = READ
        .iter()
        .map(|c| format!("{c} = \"{}\"\n", theirs(c)))
        .collect();
    std::fs::write(dir.join("map.toml"), file).unwrap();
    train(
        dir,
        "theirs.csv",
        "models",
        &["--map-file".into(), "map.toml".into()],
    );

    let cases: &[(&[&str], &str)] = &[
        (
            &["--map", "manufacturr=Their Manufacturer"],
            "names `manufacturr`, which is not a column the model reads or is trained on (did you mean `manufacturer`?)",
        ),
        (
            &["--map", "manufacturer=Their Manufacturer", "--map", "manufacturer=Maker"],
            "`manufacturer` is mapped twice by --map: from \"Their Manufacturer\" and from \"Maker\"",
        ),
        (
            &["--map", "manufacturer="],
            "has an empty input column name",
        ),
        (
            &["--map", "=Their Manufacturer"],
            "has an empty model column name",
        ),
        (&["--map", "manufacturer"], "expected MODEL_COLUMN=INPUT_COLUMN"),
        (
            &["--map", "manufacturer=Their Model", "--map", "model=Their Model"],
            "your column \"Their Model\" is mapped to both `manufacturer` and `model`",
        ),
        (&["--map-file", "nope.toml"], "Mapping file does not exist: nope.toml"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["train", "--data-path", "theirs.csv", "--runs-dir", "runs"];
        args.extend_from_slice(extra);
        let out = nexusml(dir, &args);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.all());
        assert!(out.stderr.contains(message), "{extra:?}: {}", out.stderr);
    }
    std::fs::write(dir.join("bad.toml"), "manufacturer = 3\n").unwrap();
    let out = nexusml(
        dir,
        &[
            "evaluate",
            "--data-path",
            "theirs.csv",
            "--model-path",
            "models/equipment_classifier_latest.nxm",
            "--map-file",
            "bad.toml",
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("bad.toml: `manufacturer` must be a string"),
        "{}",
        out.stderr
    );
    // A mapped column the file lacks: named, with the columns present.
    let out = nexusml(
        dir,
        &[
            "train",
            "--data-path",
            "theirs.csv",
            "--map",
            "manufacturer=Mfr",
            "--runs-dir",
            "runs",
        ],
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("the mapping manufacturer=Mfr names no input column \"Mfr\" (columns present: Their Equipment Tag,"),
        "{}",
        out.stderr
    );
}

#[test]
fn dag_run_takes_the_mapping_as_a_param_and_synth_writes_to_stdout() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let out = run(dir, &["data", "synth", "--rows", "300", "--seed", "42"]);
    assert!(
        out.stdout.starts_with("equipment_tag,manufacturer,"),
        "{}",
        &out.stdout[..60.min(out.stdout.len())]
    );
    assert_eq!(out.stdout.lines().count(), 301);
    let renamed = out.stdout.replacen("manufacturer", "Mfr", 1);
    std::fs::write(dir.join("theirs.csv"), renamed).unwrap();
    let train = repo("dags/train.toml");
    let data = format!("data={}", dir.join("theirs.csv").display());
    let models = format!("output_dir={}", dir.join("models").display());
    let base = [
        "dag",
        "run",
        train.to_str().unwrap(),
        "--set",
        &data,
        "--set",
        &models,
        "--set",
        "trees=4",
        "--runs-dir",
        "runs",
        "--no-cache",
    ];
    let out = nexusml(dir, &base);
    assert_ne!(out.code, 0);
    assert!(
        out.all().contains("--set map.manufacturer=COLUMN"),
        "{}",
        out.all()
    );
    let mut args = base.to_vec();
    args.extend(["--set", "map.manufacturer=Mfr"]);
    run(dir, &args);
    let meta = read_json(&dir.join("models/equipment_classifier_latest_metadata.json"));
    assert_eq!(meta["training_data_columns"]["column_map"]["manufacturer"], "Mfr");
}

#[test]
fn linfa_tree_refuses_a_max_features_it_would_ignore() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let train = repo("dags/train.toml");
    // The shipped pipeline leaves max_features unset: linfa_tree is accepted.
    run(
        dir,
        &[
            "dag",
            "check",
            train.to_str().unwrap(),
            "--set",
            "learner=forest",
            "--set",
            "tree_learner=linfa_tree",
        ],
    );
    // Given explicitly, even as "sqrt", it would be ignored: refused, saying so.
    let text = std::fs::read_to_string(&train).unwrap().replace(
        "class_weight = \"balanced_subsample\", learner",
        "class_weight = \"balanced_subsample\", max_features = \"sqrt\", learner",
    );
    let copy = dir.join("linfa.toml");
    std::fs::write(&copy, text).unwrap();
    let data = format!("data={}", repo("examples/data/equipment_inventory.csv").display());
    let out = nexusml(
        dir,
        &[
            "dag",
            "check",
            copy.to_str().unwrap(),
            "--set",
            "learner=forest",
            "--set",
            "tree_learner=linfa_tree",
            "--set",
            &data,
            "--set",
            "features=builtin",
        ],
    );
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("learner \"linfa_tree\" tries every feature at each split, so max_features = \"sqrt\" would be ignored"),
        "{}",
        out.stderr
    );
}

#[test]
fn dag_check_refuses_a_mapped_column_the_features_do_not_read() {
    let d = tempfile::tempdir().unwrap();
    let train = repo("dags/train.toml");
    let out = nexusml(
        d.path(),
        &[
            "dag",
            "check",
            train.to_str().unwrap(),
            "--set",
            "map.manufacturr=Mfr",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("the mapping manufacturr=Mfr names `manufacturr`, which is not a column the model reads or is trained on (did you mean `manufacturer`?)"),
        "{}",
        out.stderr
    );
    run(
        d.path(),
        &[
            "dag",
            "check",
            train.to_str().unwrap(),
            "--set",
            "map.manufacturer=Mfr",
        ],
    );
}
