//! Nothing escapes, nothing hangs, nothing reads back wrong: planted symbolic links,
//! FIFOs, devices and huge files as inputs, tampered store entries, read-only stores,
//! and results that must read back as they were written. Every command runs under a
//! timeout: a hang fails the test instead of stalling it.

mod common;
use common::{node, read_json, single_run_dir, Output};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one command may take (debug build, 2 shared cores).
const LIMIT: Duration = Duration::from_secs(120);

/// Run `nexusml args…` in `cwd` with `env`, killed and failed past [`LIMIT`].
fn run_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("NEXUSML_STORE_READ_ONLY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the nexusml binary runs");
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`nexusml {}` hangs (killed after {LIMIT:?})", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    run_env(cwd, args, &[])
}

/// A scratch directory with a 200-row inventory `inv.csv`.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["data", "synth", "--rows", "200", "--seed", "3", "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    dir
}

/// `train` a 1-tree model into `output_dir`, with `extra` arguments.
fn train(dir: &Path, output_dir: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--data-path",
        "inv.csv",
        "--trees",
        "1",
        "--output-dir",
        output_dir,
        "--runs-dir",
        "runs",
    ];
    args.extend_from_slice(extra);
    run(dir, &args)
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A sparse file of `bytes` zeros: no disk used.
fn sparse(path: &Path, bytes: u64) {
    std::fs::File::create(path).unwrap().set_len(bytes).unwrap();
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// The `error:` line a failed command ends with.
fn error_line(out: &Output) -> String {
    out.stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", out.all()))
        .to_string()
}

fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn planted_lock_symlinks_are_refused_not_followed() {
    let dir = scratch();
    let d = dir.path();
    // A writer: `train --output-dir D` takes D/.nexusml.lock to switch `_latest`.
    std::fs::create_dir(d.join("out")).unwrap();
    symlink(&d.join("victim1"), &d.join("out/.nexusml.lock"));
    let out = train(d, "out", &["--no-cache"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        error_line(&out),
        "error: pipeline `train` failed at node `save`: cannot write out: out/.nexusml.lock is a symbolic link; \
         nexusml does not follow one for a lock file: remove it"
    );
    assert!(
        !d.join("victim1").exists(),
        "nothing created where the link points"
    );

    // A reader: `predict --model-path D/m.nxm` takes it shared; it reads without it.
    let out = train(d, "good", &["--no-cache"]);
    assert_eq!(out.code, 0, "{}", out.all());
    std::fs::create_dir(d.join("shared")).unwrap();
    for f in [
        "equipment_classifier_latest.nxm",
        "equipment_classifier_latest_metadata.json",
    ] {
        std::fs::copy(d.join("good").join(f), d.join("shared").join(f)).unwrap();
    }
    symlink(&d.join("victim2"), &d.join("shared/.nexusml.lock"));
    let out = run(
        d,
        &[
            "predict",
            "--model-path",
            "shared/equipment_classifier_latest.nxm",
            "--input-file",
            "inv.csv",
            "--output-file",
            "p.csv",
            "--no-cache",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!d.join("victim2").exists(), "the reader created nothing either");
    assert!(d.join("p.csv").is_file());

    // The store's lock.
    std::fs::create_dir(d.join("store")).unwrap();
    symlink(&d.join("victim3"), &d.join("store/lock"));
    let out = train(d, "good", &["--store", "store"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        error_line(&out),
        "error: cannot use the artifact store at store/lock: it is a symbolic link, which nexusml does not \
         follow for a lock file"
    );
    assert!(!d.join("victim3").exists());
}

#[test]
fn symlinked_directories_are_refused_not_written_through() {
    let dir = scratch();
    let d = dir.path();
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    std::fs::create_dir(d.join("store")).unwrap();
    symlink(&d.join("elsewhere"), &d.join("store/last"));
    let out = train(d, "m", &["--store", "store"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        error_line(&out),
        "error: cannot use the artifact store at store/last: it is a symbolic link, which nexusml does not \
         follow for a directory it writes into"
    );

    // `--visualize` copies plots into <output-dir>/visualizations/.
    std::fs::create_dir(d.join("m")).unwrap();
    symlink(&d.join("elsewhere"), &d.join("m/visualizations"));
    let out = train(d, "m", &["--no-cache", "--visualize"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        error_line(&out),
        "error: cannot copy plots to m/visualizations: it is a symbolic link, which nexusml does not follow \
         for a directory it writes into"
    );
    assert_eq!(
        files_under(&d.join("elsewhere")),
        vec![],
        "nothing written through either link"
    );
}

#[test]
fn special_files_are_refused_without_hanging_even_with_the_store_on() {
    let dir = scratch();
    let d = dir.path();
    mkfifo(&d.join("fifo.nxm"));
    mkfifo(&d.join("fifo.csv"));
    mkfifo(&d.join("rows.txt"));
    let predict = |model: &str, cache: &str| {
        run(
            d,
            &[
                "predict",
                "--model-path",
                model,
                "--input-file",
                "inv.csv",
                "--output-file",
                "p.csv",
                cache,
                "store",
                "--runs-dir",
                "runs",
            ],
        )
    };
    // With the store on, the node key hashes the model file before the op looks at it.
    for (model, kind) in [("/dev/zero", "a character device"), ("fifo.nxm", "a FIFO")] {
        let out = predict(model, "--store");
        assert_eq!(out.code, 1, "{}", out.all());
        assert_eq!(
            error_line(&out),
            format!(
                "error: pipeline `predict` failed at node `load_model`: {model} is not a regular file ({kind}); \
                 a model must be a .nxm file"
            )
        );
    }
    // A FIFO model beside its metadata: the metadata check hashes the model (no store).
    std::fs::create_dir(d.join("fm")).unwrap();
    mkfifo(&d.join("fm/x.nxm"));
    std::fs::write(d.join("fm/x_metadata.json"), r#"{"model_sha256": "00"}"#).unwrap();
    let out = run(
        d,
        &[
            "predict",
            "--model-path",
            "fm/x.nxm",
            "--input-file",
            "inv.csv",
            "--output-file",
            "p.csv",
            "--no-cache",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(
        error_line(&out),
        "error: pipeline `predict` failed at node `load_model`: fm/x.nxm is not a regular file (a FIFO); a \
         model must be a .nxm file"
    );
    // The data (`--set data=…`), and the test rows.
    for (data, kind) in [("/dev/zero", "a character device"), ("fifo.csv", "a FIFO")] {
        let out = run(
            d,
            &[
                "train",
                "--data-path",
                data,
                "--trees",
                "1",
                "--output-dir",
                "m",
                "--store",
                "store",
            ],
        );
        assert_eq!(out.code, 1, "{}", out.all());
        assert_eq!(
            error_line(&out),
            format!("error: pipeline `train` failed at node `load`: cannot read {data}: it is {kind}, not a regular file")
        );
    }
    let train_toml = common::repo("dags/train.toml");
    let out = run(
        d,
        &[
            "dag",
            "run",
            train_toml.to_str().unwrap(),
            "--set",
            "data=inv.csv",
            "--set",
            "test_rows=rows.txt",
            "--set",
            "trees=1",
            "--set",
            "output_dir=m",
            "--store",
            "store",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(
            "ERROR run{pipeline=train}: node `split` failed: cannot read test rows rows.txt: it is a FIFO, not a \
             regular file"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn oversized_and_binary_inputs_are_refused_with_their_limit() {
    let dir = scratch();
    let d = dir.path();
    sparse(&d.join("big.toml"), 2 << 30);
    let train_toml = common::repo("dags/train.toml");
    let train_toml = train_toml.to_str().unwrap();
    let start = Instant::now();

    let out = run(d, &["dag", "run", "/dev/zero"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(
        error_line(&out),
        "error: cannot read pipeline /dev/zero: it is a character device, not a regular file"
    );
    let out = run(d, &["dag", "check", "big.toml"]);
    assert_eq!(
        error_line(&out),
        "error: cannot read pipeline big.toml: it is 2147483648 bytes, more than a pipeline file may be \
         (268435456 bytes = 256 MiB)"
    );
    for (params, why) in [
        ("/dev/zero", "it is a character device, not a regular file"),
        (
            "big.toml",
            "it is 2147483648 bytes, more than a --params file may be (16777216 bytes = 16 MiB)",
        ),
    ] {
        let out = run(d, &["dag", "check", train_toml, "--params", params]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert_eq!(
            error_line(&out),
            format!("error: --params {params}: cannot read it: {why}")
        );
    }
    let out = run(
        d,
        &[
            "dag",
            "check",
            train_toml,
            "--set",
            "data=inv.csv",
            "--set",
            "features=big.toml",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains(
            "node `features`: invalid `with` for `features.engineer`: cannot read feature config big.toml: it is \
             2147483648 bytes, more than a feature config may be (16777216 bytes = 16 MiB)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "nothing was read: {:?}",
        start.elapsed()
    );

    // The data: past its limit, or within it but binary (a NUL byte), with --no-cache so
    // the node key does not hash the file first.
    sparse(&d.join("big.csv"), 2 << 30);
    let out = run(
        d,
        &[
            "train",
            "--data-path",
            "big.csv",
            "--trees",
            "1",
            "--output-dir",
            "m",
            "--no-cache",
        ],
    );
    assert_eq!(
        error_line(&out),
        "error: pipeline `train` failed at node `load`: cannot read big.csv: it is 2147483648 bytes, more than \
         a CSV data file may be (1073741824 bytes = 1 GiB)"
    );
    let mut csv = std::fs::read(d.join("inv.csv")).unwrap();
    let second_line = csv.iter().position(|&b| b == b'\n').unwrap() + 1;
    csv.insert(second_line + 3, 0);
    std::fs::write(d.join("nul.csv"), &csv).unwrap();
    sparse(&d.join("zeros.csv"), 100 << 20);
    for (data, line, byte) in [("nul.csv", 2, second_line + 3), ("zeros.csv", 1, 0)] {
        let out = run(
            d,
            &[
                "train",
                "--data-path",
                data,
                "--trees",
                "1",
                "--output-dir",
                "m",
                "--no-cache",
            ],
        );
        assert_eq!(out.code, 1, "{}", out.all());
        assert_eq!(
            error_line(&out),
            format!(
                "error: pipeline `train` failed at node `load`: {data}:{line}: a NUL byte (byte {byte}): this is a \
                 binary file, or UTF-16 text, not a CSV nexusml reads (save it as UTF-8 CSV)"
            )
        );
    }
}

#[test]
fn tampered_store_entries_are_misses_never_hangs() {
    let dir = scratch();
    let d = dir.path();
    let out = train(d, "m", &["--store", "store"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let store = d.join("store");
    let manifests: Vec<PathBuf> = files_under(&store.join("manifests"))
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(manifests.len() >= 3, "{manifests:?}");
    std::fs::remove_file(&manifests[0]).unwrap();
    mkfifo(&manifests[0]);
    std::fs::remove_file(&manifests[1]).unwrap();
    symlink(Path::new("/dev/zero"), &manifests[1]);
    let last = files_under(&store.join("last"))[0].0.clone();
    std::fs::remove_file(&last).unwrap();
    mkfifo(&last);
    mkfifo(&store.join("runs/20261201T000000Z-train-00000000.json"));
    symlink(
        Path::new("/dev/zero"),
        &store.join("runs/20261201T000001Z-train-00000000.json"),
    );
    mkfifo(&store.join("leases/1-00000000"));
    symlink(Path::new("/dev/zero"), &store.join("leases/2-00000000"));

    let out = train(d, "m", &["--store", "store"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let fifo = manifests[0].strip_prefix(d).unwrap().display().to_string();
    let link = manifests[1].strip_prefix(d).unwrap().display().to_string();
    assert!(
        out.stderr.contains(&format!(
            "WARN cannot read {fifo}: it is a FIFO, not a regular file; treating it as a miss"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "WARN cannot read {link}: it is a symbolic link, which nexusml does not follow for a store entry; \
             treating it as a miss"
        )),
        "{}",
        out.stderr
    );
    for args in [
        vec!["cache", "info", "--store", "store"],
        vec!["cache", "gc", "--store", "store", "--dry-run"],
        vec!["cache", "gc", "--store", "store"],
    ] {
        let out = run(d, &args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.all());
    }
    let out = run(
        d,
        &[
            "dag",
            "status",
            common::repo("dags/train.toml").to_str().unwrap(),
            "--store",
            "store",
        ],
    );
    assert!(out.stdout.contains(" stale"), "{}", out.all());
}

#[test]
fn evaluating_twice_reads_the_stored_metrics_back() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(train(d, "m", &["--store", "store"]).code, 0);
    for round in ["first", "second"] {
        let out = run(
            d,
            &[
                "evaluate",
                "--model-path",
                "m/equipment_classifier_latest.nxm",
                "--data-path",
                "inv.csv",
                "--store",
                "store",
                "--runs-dir",
                round,
            ],
        );
        assert_eq!(out.code, 0, "{round}: {}", out.all());
        assert!(!out.stderr.contains("cannot decode"), "{}", out.stderr);
        assert!(out.stdout.contains("mean "), "{round}: {}", out.stdout);
        let report = read_json(&single_run_dir(&d.join(round)).join("report.json"));
        let expected = if round == "first" { "ok" } else { "cached" };
        assert_eq!(node(&report, "evaluate")["status"], expected, "{round}");
    }
}

#[test]
fn split_outputs_depend_on_their_input_only() {
    // Cold: `split` gets the table `features` computed. Forced: `features` is answered
    // from the store and `split` gets the decoded table. The same rows must give the
    // same bytes, so nothing after `split` runs again.
    let dir = scratch();
    let d = dir.path();
    let train_toml = common::repo("dags/train.toml");
    let args = |runs: &'static str| {
        vec![
            "dag",
            "run",
            train_toml.to_str().unwrap(),
            "--set",
            "data=inv.csv",
            "--set",
            "trees=2",
            "--set",
            "output_dir=m",
            "--store",
            "store",
            "--runs-dir",
            runs,
        ]
    };
    let out = run(d, &args("cold"));
    assert_eq!(out.code, 0, "{}", out.all());
    let mut forced = args("forced");
    forced.extend(["--force", "split"]);
    let out = run(d, &forced);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = read_json(&single_run_dir(&d.join("forced")).join("report.json"));
    assert_eq!(node(&report, "features")["status"], "cached");
    assert_eq!(node(&report, "split")["status"], "ok");
    for n in ["tfidf", "train", "evaluate", "save"] {
        assert_eq!(node(&report, n)["status"], "cached", "{n} re-ran:\n{}", out.all());
    }
}

#[test]
fn huge_numeric_values_are_invalid_not_an_unusable_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(
        d,
        &["data", "synth", "--rows", "3000", "--seed", "4", "-o", "inv.csv"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    // Two rows of 3,000 with values whose squares overflow: 1e200 and ±1.7e308.
    let text = std::fs::read_to_string(d.join("inv.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let column = split_fields(&lines[0])
        .iter()
        .position(|f| f == "service_life")
        .unwrap();
    for (line, value) in [(11, "1e200"), (21, "1.7e308"), (31, "-1.7e308")] {
        let mut fields = split_fields(&lines[line - 1]);
        fields[column] = value.into();
        lines[line - 1] = fields.join(",");
    }
    std::fs::write(d.join("huge.csv"), lines.join("\n") + "\n").unwrap();
    let out = run(
        d,
        &[
            "train",
            "--data-path",
            "huge.csv",
            "--trees",
            "2",
            "--output-dir",
            "m",
            "--no-cache",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("filled cells are not usable numbers (not a number, infinite, or beyond ±1e100)")
            && out.stderr.contains("line 11: \"1e200\"")
            && out.stderr.contains("line 21: \"1.7e308\""),
        "{}",
        out.stderr
    );
    let model = nexusml::ml::model::load_model_file(&d.join("m/equipment_classifier_latest.nxm")).unwrap();
    let scaler = &model.featurizer.scaler;
    assert!(
        scaler.mean.iter().chain(&scaler.scale).all(|v| v.is_finite()),
        "{scaler:?}"
    );
    let out = run(
        d,
        &[
            "predict",
            "--model-path",
            "m/equipment_classifier_latest.nxm",
            "--input-file",
            "huge.csv",
            "--output-file",
            "p.csv",
            "--no-cache",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
}

/// The fields of one CSV line (quotes kept as written).
fn split_fields(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

#[test]
fn a_map_key_that_is_no_model_column_is_refused() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(train(d, "m", &["--no-cache"]).code, 0);
    let predict = |map: &str| {
        run(
            d,
            &[
                "predict",
                "--model-path",
                "m/equipment_classifier_latest.nxm",
                "--input-file",
                "inv.csv",
                "--output-file",
                "p.csv",
                "--no-cache",
                "--map",
                map,
            ],
        )
    };
    let out = predict("descripton=model");
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        error_line(&out),
        "error: pipeline `predict` failed at node `predict`: the mapping descripton=model names `descripton`, \
         which is not a column the model reads or is trained on (did you mean `description`?); those are \
         description, equipment_tag, manufacturer, model, building_name, service_life, condition_score, \
         uniformat_code, mcaa_system_category, category_name"
    );
    assert!(!d.join("p.csv").exists());
    let out = predict("description=model");
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn max_invalid_numeric_must_be_a_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let train_toml = common::repo("dags/train.toml");
    for (value, shown) in [("nan", "NaN"), ("inf", "inf"), ("-0.5", "-0.5"), ("1.5", "1.5")] {
        let out = run(
            dir.path(),
            &[
                "dag",
                "check",
                train_toml.to_str().unwrap(),
                "--set",
                &format!("max_invalid_numeric={value}"),
            ],
        );
        assert_eq!(out.code, 2, "{value}: {}", out.all());
        assert!(
            out.stderr.contains(&format!(
                "node `validate`: invalid `with` for `data.validate`: `max_invalid_numeric` = {shown} is not a \
                 fraction: give a number from 0 to 1"
            )),
            "{value}: {}",
            out.stderr
        );
    }
    let out = run(
        dir.path(),
        &[
            "dag",
            "check",
            train_toml.to_str().unwrap(),
            "--set",
            "max_invalid_numeric=1",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
}

/// Make everything under `dir` read-only (or writable again).
fn set_read_only(dir: &Path, read_only: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mut all: Vec<PathBuf> = files_under(dir).into_iter().map(|e| e.0).collect();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        all.push(d.clone());
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().symlink_metadata().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    for p in all {
        let dir = p.symlink_metadata().unwrap().is_dir();
        let mode = match (dir, read_only) {
            (true, true) => 0o555,
            (true, false) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn a_read_only_store_serves_hits_and_stores_nothing() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(train(d, "m", &["--store", "store"]).code, 0);
    let store = d.join("store");
    // A store copied without its lock file (a CI cache): none is created either.
    std::fs::remove_file(store.join("lock")).unwrap();
    let before = files_under(&store);
    set_read_only(&store, true);
    // Root writes through permissions: then the store is told it is read-only.
    let probe = store.join("probe");
    let env: &[(&str, &str)] = if std::fs::write(&probe, b"").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        eprintln!("permissions do not stop this user's writes: NEXUSML_STORE_READ_ONLY=1 instead");
        &[("NEXUSML_STORE_READ_ONLY", "1")]
    } else {
        &[]
    };
    let warning = "is read-only (";
    let train_ro = |trees: &str, runs: &str| {
        run_env(
            d,
            &[
                "train",
                "--data-path",
                "inv.csv",
                "--trees",
                trees,
                "--output-dir",
                "m",
                "--store",
                "store",
                "--runs-dir",
                runs,
            ],
            env,
        )
    };
    // Fully cached: every node is a hit.
    let out = train_ro("1", "hits");
    assert_eq!(out.code, 0, "{}", out.all());
    let report = read_json(&single_run_dir(&d.join("hits")).join("report.json"));
    for n in report["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "cached", "{n}");
    }
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("WARN the artifact store store is read-only (")
            && out
                .stderr
                .contains("): cached results are used, but nothing this run computes is stored"),
        "{}",
        out.stderr
    );
    // Partly cached: the rest runs, nothing is stored, one warning.
    let out = train_ro("2", "partial");
    assert_eq!(out.code, 0, "{}", out.all());
    let report = read_json(&single_run_dir(&d.join("partial")).join("report.json"));
    assert_eq!(node(&report, "features")["status"], "cached");
    assert_eq!(node(&report, "train")["status"], "ok");
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
    set_read_only(&store, false);
    assert_eq!(
        files_under(&store),
        before,
        "the store is unchanged, and has no lock file"
    );
}
