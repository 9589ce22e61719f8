//! The data ops end to end: csv.load, data.validate, features.engineer, data.split.

mod common;
use common::*;
use std::path::Path;

/// Run the data pipeline on `csv` (bytes) with the repository's features.toml.
fn run_data(dir: &Path, csv: &[u8], extra: &[&str]) -> Output {
    std::fs::write(dir.join("inventory.csv"), csv).unwrap();
    // The pipeline file's own paths (its features = "../../dags/features.toml") follow
    // the file; the inventory, given on the command line, is in the working directory.
    let pipeline = fixture("data_pipeline.toml");
    let mut args = vec![
        "dag",
        "run",
        pipeline.to_str().unwrap(),
        "--runs-dir",
        "runs",
        "--set",
        "data=inventory.csv",
    ];
    args.extend_from_slice(extra);
    nexusml(dir, &args)
}

/// Rows of a CSV written by the pipeline, via the crate's own reader.
fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let t = nexusml::ml::table::read_csv(path, &Default::default())
        .unwrap()
        .frame;
    let names = nexusml::ml::table::column_names(&t);
    let cols: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            let c = t.column(n).unwrap();
            match c.str() {
                Ok(s) => s.iter().map(|v| v.unwrap_or("").to_string()).collect(),
                Err(_) => (0..t.height()).map(|i| c.get(i).unwrap().to_string()).collect(),
            }
        })
        .collect();
    (names, cols)
}

fn column<'a>(table: &'a (Vec<String>, Vec<Vec<String>>), name: &str) -> &'a [String] {
    let i = table
        .0
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    &table.1[i]
}

#[test]
fn classic_17_column_schema_goes_through_the_feature_step() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read(fixture("data/classic.csv")).unwrap();
    let out = run_data(dir.path(), &csv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = single_run_dir(&dir.path().join("runs"));
    let engineered = read_table(&run.join("engineered.csv"));
    assert_eq!(
        column(&engineered, "combined_text")[0],
        " AHU-1 York MCA-040 Library"
    );
    assert_eq!(
        column(&engineered, "Equipment_Type")[0],
        "HVAC Equipment-Air Handling Unit"
    );
    // No service_life column: the numeric feature falls back to condition_score.
    assert_eq!(column(&engineered, "service_life")[0], "4.2");
    let train = read_table(&run.join("train.csv"));
    let test = read_table(&run.join("test.csv"));
    assert_eq!(column(&test, "equipment_tag").len(), 22, "ceil(0.3 × 72)");
    assert_eq!(column(&train, "equipment_tag").len(), 50);
    let report = read_json(&run.join("validation.json"));
    assert_eq!(report["valid"], true);
    assert_eq!(report["rows"], 72);
}

#[test]
fn spreadsheet_quirks_are_read_correctly() {
    // Two BOMs, a padded header, a quoted comma, doubled quotes, empty cells, latin-1.
    let mut csv = b"\xEF\xBB\xBF\xEF\xBB\xBFequipment_tag , manufacturer,model,description,category_name,mcaa_system_category,uniformat_code,service_life\n".to_vec();
    for i in 0..6 {
        csv.extend_from_slice(
            format!(
                "AHU-{i},Trane,,\"Air handler, 10\"\" duct\",AHU,HVAC,D3040,{}\n",
                if i == 0 { "" } else { "20" }
            )
            .as_bytes(),
        );
    }
    csv.extend_from_slice(b"CH-1,Caf\xe9 Chillers,X1,chiller,Chiller,HVAC,D3030,23\n");
    let dir = tempfile::tempdir().unwrap();
    let out = run_data(dir.path(), &csv, &["--set", "test_size=2"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("is not UTF-8: decoded as Windows-1252"),
        "{}",
        out.stderr
    );
    let run = single_run_dir(&dir.path().join("runs"));
    let t = read_table(&run.join("engineered.csv"));
    assert_eq!(
        column(&t, "equipment_tag")[0],
        "AHU-0",
        "header trimmed, BOMs gone"
    );
    assert_eq!(column(&t, "description")[0], "Air handler, 10\" duct");
    assert_eq!(column(&t, "model")[0], "", "empty cells stay empty strings");
    assert_eq!(column(&t, "manufacturer")[6], "Café Chillers");
    assert_eq!(column(&t, "service_life")[0], "0.0", "empty numeric filled");
}

#[test]
fn ragged_rows_and_missing_files_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_data(dir.path(), b"a,b,category_name\n1,2,x\n1,2,3,4\n", &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("inventory.csv:3: row has 4 fields, the header has 3"),
        "{}",
        out.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let out = run_data(dir.path(), b"", &["--set", "data=nope.csv"]);
    assert_eq!(out.code, 2, "found before anything runs: {}", out.all());
    assert!(
        out.stderr
            .contains("`csv.load` reads nope.csv, which does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn strict_validation_stops_the_pipeline_before_the_split() {
    let dir = tempfile::tempdir().unwrap();
    // `category_name` has an empty cell; too few rows.
    let csv =
        b"equipment_tag,manufacturer,model,description,category_name,mcaa_system_category,uniformat_code\n\
                A,B,C,d,,HVAC,D3040\nA2,B,C,d,Pump,HVAC,D3040\n";
    let out = run_data(dir.path(), csv, &["--set", "test_size=1"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let run = single_run_dir(&dir.path().join("runs"));
    let report = read_json(&run.join("report.json"));
    let validate = node(&report, "validate");
    assert_eq!(validate["status"], "failed");
    let msg = validate["error"][0].as_str().unwrap();
    assert!(
        msg.contains("critical column `category_name` has 1 empty cell"),
        "{msg}"
    );
    assert!(msg.contains("2 rows; at least 5 are needed"), "{msg}");
    assert_eq!(node(&report, "split")["status"], "skipped");
    let v = read_json(&run.join("validation.json"));
    assert_eq!(v["valid"], false);
    assert_eq!(v["empty_cells"]["category_name"], 1);
}

#[test]
fn missing_columns_are_listed_with_the_ones_present() {
    let dir = tempfile::tempdir().unwrap();
    // --keep-going: validation and the feature step both run and both report.
    let out = run_data(
        dir.path(),
        b"tag,maker\n1,2\n3,4\n5,6\n7,8\n9,10\n",
        &["--keep-going"],
    );
    assert_eq!(out.code, 1);
    let run = single_run_dir(&dir.path().join("runs"));
    let v = read_json(&run.join("validation.json"));
    assert_eq!(
        v["errors"][0]["message"],
        "missing column `category_name` (the file has: tag, maker); a column of yours that holds it is mapped \
         with --map category_name=COLUMN (`--set map.category_name=COLUMN` under `dag run`)"
    );
    // The feature step fails on its own, naming the column it needs.
    assert!(
        out.stderr
            .contains("classification system `uniformat_code` needs column `uniformat_code`, which the table does not have (columns: tag, maker)"),
        "{}",
        out.stderr
    );
}

#[test]
fn explicit_test_rows_and_stratification() {
    let csv = std::fs::read(fixture("data/classic.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rows.txt"), "0\n5\n71\n").unwrap();
    let out = run_data(dir.path(), &csv, &["--set", "test_rows=rows.txt"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = single_run_dir(&dir.path().join("runs"));
    let test = read_table(&run.join("test.csv"));
    assert_eq!(column(&test, "equipment_tag"), ["AHU-1", "FP-1", "FP-12"]);

    let dir = tempfile::tempdir().unwrap();
    let out = run_data(dir.path(), &csv, &["--set", "stratify=category_name"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = single_run_dir(&dir.path().join("runs"));
    let test = read_table(&run.join("test.csv"));
    let cats = column(&test, "category_name");
    // ceil(0.3 × 72) = 22 test rows over 6 classes of 12: 3.67 each → four get 4, two get 3.
    let mut counts: Vec<usize> = [
        "Air Handling Unit",
        "Chiller",
        "Boiler",
        "Pump",
        "Panelboard",
        "Fire Pump",
    ]
    .iter()
    .map(|c| cats.iter().filter(|x| x == c).count())
    .collect();
    counts.sort_unstable();
    assert_eq!(counts, [3, 3, 4, 4, 4, 4]);
}

#[test]
fn bad_test_size_fails_dag_check() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = fixture("data_pipeline.toml");
    let features = format!("features={}", repo("dags/features.toml").display());
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "check",
            pipeline.to_str().unwrap(),
            "--set",
            &features,
            "--set",
            "test_size=1.0",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("node `split`: invalid `with` for `data.split`: test_size must be between 0 and 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn leakage_is_warned_by_check_and_identical_targets_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = std::fs::read_to_string(repo("dags/features.toml"))
        .unwrap()
        .replace(
            "columns = [\"description\", \"equipment_tag\"",
            "columns = [\"description\", \"category_name\", \"equipment_tag\"",
        );
    std::fs::write(dir.path().join("leaky.toml"), leaky).unwrap();
    std::fs::write(dir.path().join("inventory.csv"), "a\n1\n").unwrap();
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "check",
            fixture("data_pipeline.toml").to_str().unwrap(),
            "--set",
            "features=leaky.toml",
            "--set",
            "data=inventory.csv",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("label leakage: the model text `combined_text` includes `category_name`"),
        "{}",
        out.stderr
    );
    // Two targets derived the same way are trained once; that is not worth a warning on
    // every command.
    assert!(!out.stderr.contains("derived identically"), "{}", out.stderr);
}

#[test]
fn train_pipeline_plots_distributions_beside_validation_and_features() {
    let dir = tempfile::tempdir().unwrap();
    let train = repo("dags/train.toml");
    let data = format!("data={}", fixture("data/classic.csv").display());
    // Validation, feature engineering and the plots share a wave: nothing orders them.
    let out = nexusml(
        dir.path(),
        &["dag", "check", train.to_str().unwrap(), "--set", &data],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("wave 2: validate (data.validate), features (features.engineer), distributions (plot.distribution)"),
        "{}",
        out.stdout
    );
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            train.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--set",
            &data,
            "--only",
            "load",
            "distributions",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let plots = single_run_dir(&dir.path().join("runs")).join("plots");
    for column in ["category_name", "uniformat_code", "mcaa_system_category"] {
        let png = std::fs::read(plots.join(format!("distribution_{column}.png"))).unwrap();
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("a decodable PNG");
        assert!(pixmap.width() >= 900 && pixmap.height() > 100, "{column}");
    }
}
