//! The shipped pipelines with the artifact store: a cached run leaves what a fresh run
//! leaves, byte for byte, and every tag and `--from`/`--to` selection works.

mod common;
use common::*;
use std::path::Path;

fn dag_run(dir: &Path, file: &str, extra: &[&str]) -> Output {
    let pipeline = repo(file);
    let features = format!("features={}", repo("dags/features.toml").display());
    let mut args = vec!["dag", "run", pipeline.to_str().unwrap(), "--runs-dir", "runs"];
    if file != "dags/demo.toml" && file != "dags/predict.toml" {
        args.extend_from_slice(&["--set", &features]);
    }
    args.extend_from_slice(extra);
    nexusml(dir, &args)
}

const TRAIN: &[&str] = &[
    "--set",
    "data=inv.csv",
    "--set",
    "trees=10",
    "--set",
    "output_dir=models",
];

/// Every file below `root`, relative, with its bytes.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A small search on `dags/train.toml`: one grid point, two folds.
const SEARCH: &[&str] = &[
    "--set",
    "cv_folds=2",
    "--set",
    "grid_trees=[4]",
    "--set",
    "grid_max_features=[300]",
    "--set",
    "grid_ngram_max=[1]",
    "--set",
    "grid_min_samples_leaf=[1]",
    "--set",
    "grid_c=[1.0]",
];

#[test]
fn a_cached_train_run_leaves_what_a_full_run_leaves() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        nexusml(
            dir.path(),
            &["data", "synth", "--rows", "400", "--seed", "5", "-o", "inv.csv"]
        )
        .code,
        0
    );
    let first = dag_run(dir.path(), "dags/train.toml", TRAIN);
    assert_eq!(first.code, 0, "{}", first.all());
    let fresh = newest_run(&dir.path().join("runs"));
    let latest = std::fs::read(dir.path().join("models/equipment_classifier_latest.nxm")).unwrap();
    std::fs::remove_dir_all(dir.path().join("models")).unwrap();

    let second = dag_run(dir.path(), "dags/train.toml", TRAIN);
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(second.stderr.contains("0 ok, 13 cached"), "{}", second.stderr);
    let cached = newest_run(&dir.path().join("runs"));
    let strip = |mut v: Vec<(String, Vec<u8>)>| {
        // The run's own records (and its page, made from them) differ: statuses, times.
        v.retain(|(name, _)| !["report.json", "run.log", "report.html"].contains(&name.as_str()));
        v
    };
    let (a, b) = (strip(files(&fresh)), strip(files(&cached)));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(a.iter().any(|(n, _)| n == "plots/confusion_uniformat_code.png"));
    assert_eq!(a, b, "the run directory's files, byte for byte");
    // The output directory is whole again, and `_latest` is this run's model.
    assert_eq!(
        std::fs::read(dir.path().join("models/equipment_classifier_latest.nxm")).unwrap(),
        latest
    );
    let visible = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(visible, 4, "the model, its metadata and the `_latest` pair");

    // Without the store, the same model and metrics come out.
    let plain = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("inv.csv"), plain.path().join("inv.csv")).unwrap();
    let mut args = TRAIN.to_vec();
    args.push("--no-cache");
    assert_eq!(dag_run(plain.path(), "dags/train.toml", &args).code, 0);
    assert!(
        !plain.path().join(".nexusml").exists(),
        "--no-cache keeps nothing"
    );
    assert_eq!(
        std::fs::read(plain.path().join("models/equipment_classifier_latest.nxm")).unwrap(),
        latest
    );
    assert_eq!(
        std::fs::read(newest_run(&plain.path().join("runs")).join("metrics.json")).unwrap(),
        std::fs::read(fresh.join("metrics.json")).unwrap()
    );
}

#[test]
fn every_tag_and_from_to_selection_of_the_shipped_pipelines_works() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        nexusml(
            dir.path(),
            &["data", "synth", "--rows", "300", "--seed", "9", "-o", "inv.csv"]
        )
        .code,
        0
    );
    assert_eq!(dag_run(dir.path(), "dags/train.toml", TRAIN).code, 0);
    let model = "model=models/equipment_classifier_latest.nxm";
    let predict: &[&str] = &[
        "--set",
        model,
        "--set",
        "data=inv.csv",
        "--set",
        "output=pred.csv",
    ];
    let evaluate: &[&str] = &["--set", model, "--set", "data=inv.csv"];
    let demo: &[&str] = &["--set", "spin_ms=5"];
    let pipelines: [(&str, &[&str]); 4] = [
        ("dags/train.toml", TRAIN),
        ("dags/predict.toml", predict),
        ("dags/evaluate.toml", evaluate),
        ("dags/demo.toml", demo),
    ];
    for (file, params) in pipelines {
        assert_eq!(dag_run(dir.path(), file, params).code, 0, "{file}");
        let text = std::fs::read_to_string(repo(file)).unwrap();
        let spec: toml::Table = toml::from_str(&text).unwrap();
        let nodes = spec["nodes"].as_table().unwrap();
        let mut tags: Vec<String> = nodes
            .values()
            .filter_map(|n| n.get("tags"))
            .flat_map(|t| {
                t.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect();
        tags.sort();
        tags.dedup();
        let mut selections: Vec<Vec<String>> =
            tags.iter().map(|t| vec!["--tags".into(), t.clone()]).collect();
        for (id, node) in nodes {
            // A family (a node with a matrix) has members only with a search set up.
            let search: &[&str] = if node.get("matrix").is_some() { SEARCH } else { &[] };
            for flag in ["--from", "--to"] {
                let mut sel = vec![flag.to_string(), id.clone()];
                sel.extend(search.iter().map(|s| s.to_string()));
                selections.push(sel);
            }
        }
        for sel in selections {
            let mut args: Vec<&str> = params.to_vec();
            args.extend(sel.iter().map(String::as_str));
            let out = dag_run(dir.path(), file, &args);
            assert_eq!(out.code, 0, "{file} {sel:?}: {}", out.all());
        }
    }
    // The README's example: re-draw the plots of the last training run.
    let mut args = TRAIN.to_vec();
    args.extend(["--tags", "plots", "--force"]);
    let out = dag_run(dir.path(), "dags/train.toml", &args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("run ok: 3 ok, 8 cached, 0 failed"),
        "{}",
        out.stderr
    );
}
