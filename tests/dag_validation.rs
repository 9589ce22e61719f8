//! `nexusml dag check`: every validation error class, with its message, file and node.

mod common;
use common::*;

fn check(file: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    nexusml(dir.path(), &["dag", "check", fixture(file).to_str().unwrap()])
}

#[test]
fn cycle_is_printed_as_a_path() {
    let out = check("cycle.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("cycle.toml: node `a`: cycle: a → b → c → a"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("node `d`: cycle: d → d"), "{}", out.stderr);
}

#[test]
fn every_error_class_is_reported_at_once() {
    let out = check("broken.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    let e = &out.stderr;
    assert!(
        e.contains("broken.toml is not a valid pipeline (8 errors)"),
        "{e}"
    );
    // Unknown op, with the nearest registered name.
    assert!(e.contains("node `typo_op`: unknown op `util.nop`"), "{e}");
    assert!(e.contains("did you mean `util.noop`?"), "{e}");
    // Unknown and ill-typed `with` fields.
    assert!(
        e.contains("node `bad_field`: invalid `with` for `util.spin`: unknown field `speed`"),
        "{e}"
    );
    assert!(
        e.contains("node `bad_type`: invalid `with` for `util.spin`: invalid type: string \"fast\""),
        "{e}"
    );
    // Unknown parameter reference.
    assert!(
        e.contains("node `bad_param`: in `with`: `${sed}` names no parameter"),
        "{e}"
    );
    assert!(e.contains("did you mean `seed`?"), "{e}");
    // Two producers.
    assert!(
        e.contains("node `twin`: artifact `numbers` is produced by both `source` and `twin`"),
        "{e}"
    );
    // Missing producer, with a similar artifact name.
    assert!(
        e.contains("node `reader`: input `x` reads artifact `numbrs`, which no node produces"),
        "{e}"
    );
    assert!(e.contains("did you mean `numbers`?"), "{e}");
    // Unknown `after` target.
    assert!(
        e.contains("node `orphan_after`: `after` names unknown node `sourse`"),
        "{e}"
    );
    // Unknown port.
    assert!(
        e.contains("node `wrong_port`: op `util.value` has no output port `val`"),
        "{e}"
    );
}

#[test]
fn port_type_mismatch_names_both_types() {
    let out = check("mismatch.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains(
            "node `strict`: input `value` expects Value, but artifact `token` from node `tick` is Token"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn parse_errors_point_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[pipeline]\nname = \"x\"\n\n[nodes.a]\nop = \"util.noop\"\nwith = { ms = }\n",
    )
    .unwrap();
    let out = nexusml(dir.path(), &["dag", "check", "bad.toml"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("bad.toml:6:"), "{}", out.stderr);
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(dir.path(), &["dag", "check", "nope.toml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot read pipeline nope.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn unreferenced_params_are_a_warning_not_an_error() {
    let out = check("panic.toml");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("parameter `forgotten` is never referenced"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("1 warning"), "{}", out.stdout);
}

#[test]
fn check_prints_the_shape() {
    let out = check("lattice.toml");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("ok: pipeline `lattice`"), "{}", out.stdout);
    assert!(out.stdout.contains("7 nodes"), "{}", out.stdout);
    assert!(
        out.stdout.contains("wave 1: r1 (util.random), r2 (util.random)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("critical path (5 nodes): r1 → r3 → d2 → d3 → save"),
        "{}",
        out.stdout
    );
}

#[test]
fn ops_lists_ports_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(dir.path(), &["dag", "ops"]);
    assert_eq!(out.code, 0);
    for op in [
        "util.noop",
        "util.spin",
        "util.fail",
        "util.panic",
        "util.value",
        "util.random",
        "util.digest",
        "util.write",
        "util.assert_eq",
    ] {
        assert!(out.stdout.contains(op), "{op} missing from:\n{}", out.stdout);
    }
    // Path fields say how a relative path is read.
    assert!(
        out.stdout.contains(
            "with   path             string (required)  CSV file [path: relative to the pipeline file, or to the working directory from --set]"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("with   ms"), "{}", out.stdout);
    assert!(
        out.stdout.contains("how long to compute, in milliseconds"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(default 4)"), "{}", out.stdout);
}

#[test]
fn every_op_documents_exactly_its_fields_with_their_real_defaults() {
    // For every registered op: each documented field exists in its config type, no
    // field of the type is undocumented, and each default `dag ops` shows (the type's
    // `Default`, serialized) is what deserializing only the required fields gives.
    let registry = nexusml::ops::builtin();
    assert!(registry.iter().count() >= 24, "the ops nexusml ships");
    let mut problems = Vec::new();
    for op in registry.iter() {
        for p in op.check_config_docs() {
            problems.push(format!("{}: {p}", op.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The defaults shown are the real ones, spelled as a pipeline writes them.
    let shown = |op: &str, field: &str| -> Option<String> {
        let spec = registry.get(op).unwrap();
        spec.config
            .iter()
            .find(|f| f.name == field)
            .unwrap()
            .default
            .clone()
    };
    assert_eq!(shown("model.train_forest", "n_trees").as_deref(), Some("200"));
    assert_eq!(
        shown("model.train_forest", "max_features").as_deref(),
        Some("none")
    );
    assert_eq!(shown("model.train_forest", "max_depth").as_deref(), Some("none"));
    assert_eq!(shown("text.tfidf", "max_df").as_deref(), Some("0.9"));
    assert_eq!(shown("data.split", "test_size").as_deref(), Some("0.3"));
    assert_eq!(shown("csv.load", "schema").as_deref(), Some("{}"));
    assert_eq!(shown("csv.load", "path"), None, "required");
}

#[test]
fn ops_print_their_version_notes() {
    let dir = tempfile::tempdir().unwrap();
    let out = nexusml(dir.path(), &["dag", "ops"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("model.train_forest\n    Train one random forest per distinct target"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    version 4: the model in file format 2 (its forests unchanged) (3: the model records its inputs' fill and a fingerprint of its training rows; 2: a row with an empty label is left out of that target's trees)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("with   n_trees          integer (default 200)  trees per forest"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_documented_field_is_accepted_by_its_op() {
    // `dag ops` must not lie: building each op from its documented defaults (and a
    // sample value for required fields) succeeds.
    for op in nexusml::ops::builtin().iter() {
        let mut with = toml::Table::new();
        for f in &op.config {
            let v = match f.default.as_deref() {
                // "none": the field is optional and absent by default.
                Some("none") => continue,
                Some(d) => toml::from_str::<toml::Table>(&format!("v = {d}"))
                    .unwrap_or_else(|e| panic!("{}.{}: default `{d}` is not TOML: {e}", op.name, f.name))
                    .remove("v")
                    .unwrap(),
                None if f.name == "config" => {
                    toml::Value::String(repo("dags/features.toml").display().to_string())
                }
                None => match f.ty {
                    // A cross-validation has at least two folds (fold 1 is then one of them).
                    "integer" if f.name == "folds" => toml::Value::Integer(2),
                    "integer" => toml::Value::Integer(1),
                    "string" => toml::Value::String("x.json".into()),
                    "[string]" => toml::Value::Array(vec![toml::Value::String("category_name".into())]),
                    "table" => toml::Value::Table(toml::Table::new()),
                    "any" => toml::Value::Integer(1),
                    other => panic!("{}.{}: no sample value for type `{other}`", op.name, f.name),
                },
            };
            with.insert(f.name.to_string(), v);
        }
        if op.config_from_node {
            // A command node needs `run` or `sh`, either one: a sample shell line.
            with.insert("sh".into(), toml::Value::String("true".into()));
        }
        op.build(&with)
            .unwrap_or_else(|e| panic!("{}: documented fields rejected: {e}", op.name));
    }
}

#[test]
fn names_outside_the_character_set_are_refused_naming_the_character() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("bad_names.toml");
    let file = file.to_str().unwrap();
    let check: &[&str] = &["dag", "check", file];
    let run: &[&str] = &["dag", "run", file, "--no-cache", "--runs-dir", "runs"];
    for args in [check, run] {
        let out = nexusml(dir.path(), args);
        assert_eq!(out.code, 2, "{}", out.all());
        let e = &out.stderr;
        assert!(
            e.contains("bad_names.toml is not a valid pipeline (9 errors)"),
            "{e}"
        );
        assert!(
            e.contains("node `a$(touch X)`: the node id has the character `$`, which names may not hold"),
            "{e}"
        );
        assert!(
            e.contains("node `b`touch X``: the node id has the character U+0060 (a backquote)"),
            "{e}"
        );
        assert!(
            e.contains("bad_names.toml: a node id is empty (`[nodes.\"\"]`)"),
            "{e}"
        );
        // A control character never reaches the terminal.
        assert!(
            e.contains("node `bell\\u{7}`: the node id has the character U+0007"),
            "{e}"
        );
        assert!(!e.contains('\u{7}'), "{e}");
        assert!(
            e.contains("node `ports`: port name `x y` in `in` has the character U+0020"),
            "{e}"
        );
        assert!(
            e.contains("node `ports`: artifact name `out.csv` of `out.z` has the character `.`"),
            "{e}"
        );
        assert!(e.contains("node `ports`: port name `` in `out` is empty"), "{e}");
        assert!(e.contains("node `-dash`: the node id starts with `-`"), "{e}");
        assert!(
            e.contains("the node id is 65 characters long; the limit is 64"),
            "{e}"
        );
        assert!(
            e.contains("help: a name is 1 to 64 ASCII letters, digits, `_` and `-`, not starting with `-`"),
            "{e}"
        );
        // The allowed names raise nothing.
        assert!(!e.contains("_Fine-1_x"), "{e}");
        assert!(!e.contains("art-4"), "{e}");
        assert!(!dir.path().join("X").exists(), "nothing ran");
        assert!(!dir.path().join("runs").exists(), "nothing ran");
    }
}

#[test]
fn reserved_run_files_and_two_writers_of_one_path_are_refused_naming_both_nodes() {
    let out = check("run_dir_writes.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    let e = &out.stderr;
    assert!(
        e.contains("run_dir_writes.toml is not a valid pipeline (7 errors)"),
        "{e}"
    );
    assert!(
        e.contains(
            "node `log`: `util.write` writes `run.log` in the run directory, where the engine writes `run.log` (the run's log)"
        ),
        "{e}"
    );
    // Whatever the case: `Report.json` is `report.json` on macOS and Windows.
    assert!(
        e.contains("node `report`: `util.write` writes `Report.json` in the run directory, where the engine writes `report.json`"),
        "{e}"
    );
    assert!(
        e.contains("node `job_file`: `csv.write` writes `jobs/table.csv` in the run directory, where the engine writes `jobs/`"),
        "{e}"
    );
    assert!(
        e.contains("help: choose another name; the engine's own are `report.json`, `run.log`, `report.html`, `pipeline.svg`, `params.toml`, `jobs/`"),
        "{e}"
    );
    assert!(
        e.contains(
            "node `second`: `util.write` writes `./out/a.json` in the run directory, and node `first` (`util.write`) writes `out/a.json`: one would overwrite the other"
        ),
        "{e}"
    );
    // A file where another node writes inside a directory of that name.
    assert!(
        e.contains("node `dir_as_file`: `util.write` writes `out` in the run directory, and node `first` (`util.write`) writes `out/a.json`"),
        "{e}"
    );
    assert!(
        e.contains(
            "node `bars_again`: `plot.distribution` writes `charts/distribution_category_name.png` in the run directory, and node `bars` (`plot.distribution`) writes `charts/distribution_category_name.png`"
        ),
        "{e}"
    );
    // Other files in the same directory, and names that only start like the engine's.
    assert!(!e.contains("other_chart"), "{e}");
    assert!(!e.contains("node `notes`"), "{e}");
}

#[test]
fn bad_resources_are_refused_at_check_with_the_rule() {
    let out = check("bad_resources.toml");
    assert_eq!(out.code, 2, "{}", out.all());
    let e = &out.stderr;
    assert!(
        e.contains("bad_resources.toml is not a valid pipeline (6 errors)"),
        "{e}"
    );
    assert!(
        e.contains("bad_resources.toml: in `[pipeline] resources`: `mem = \"lots\"` is not a memory size: a whole number with an optional unit K, M, G or T"),
        "{e}"
    );
    assert!(
        e.contains("node `a`: in `resources`: `cpus = 0`: give 1 to 256"),
        "{e}"
    );
    assert!(
        e.contains("node `a`: in `resources`: `time = \"forever\"` is not a time limit: give 30s, 90m, 2h or 1d, or Slurm's minutes"),
        "{e}"
    );
    assert!(
        e.contains("node `a`: in `resources`: `partition = \"gpu batch\"` is not a partition list"),
        "{e}"
    );
    assert!(
        e.contains("node `b`: in `resources`: `cpus = 300`: give 1 to 256"),
        "{e}"
    );
    assert!(
        e.contains("node `b`: in `resources`: `time = \"25000d\"` is longer than Slurm's limit"),
        "{e}"
    );
    assert!(!e.contains("node `c`") && !e.contains("node `d`"), "{e}");
}

#[test]
fn the_shipped_pipelines_keep_to_the_rules() {
    // Their names, their run-directory files (the distribution and confusion charts
    // share `plots/`) and their resources pass the checks.
    for file in ["dags/train.toml", "dags/predict.toml", "dags/evaluate.toml"] {
        let dir = tempfile::tempdir().unwrap();
        let out = nexusml(dir.path(), &["dag", "check", repo(file).to_str().unwrap()]);
        // A missing model file (predict, evaluate) is the only error allowed here.
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("error: ") && !l.contains("which does not exist"))
            .filter(|l| !l.contains("is not a valid pipeline"))
            .collect();
        assert!(errors.is_empty(), "{file}: {}", out.all());
    }
}
