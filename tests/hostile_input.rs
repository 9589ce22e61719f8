//! Input meant to break out: values that would run as shell commands in a generated
//! Slurm script, and control characters in the data that would break the pictures.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// A stand-in `sbatch` that records each call's arguments (NUL-separated, one call per
/// line of `calls`) and prints the next job id.
fn stub_sbatch(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = "#!/bin/sh\n\
                  n=$(cat \"$STUB_DIR/count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$STUB_DIR/count\"\n\
                  for a in \"$@\"; do printf '%s\\037' \"$a\"; done >> \"$STUB_DIR/calls\"\n\
                  printf '\\036' >> \"$STUB_DIR/calls\"\n\
                  echo \"$n\"\n";
    let path = bin.join("sbatch");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn an_exported_script_quotes_every_name_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    // The working directory, pipeline path and store path hold shell syntax too.
    let dir = tmp.path().join("dir $(touch DIR_RAN) `touch DIR_TICK_RAN` x");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("odd_names.toml"), dir.join("p.toml")).unwrap();
    // Only parameters given on the command line travel in the script (the jobs read the
    // rest from the pipeline file, as this run did): give the hostile one there.
    let text = std::fs::read_to_string(dir.join("p.toml")).unwrap();
    let note = text
        .lines()
        .find(|l| l.starts_with("note"))
        .expect("the fixture has a note");
    std::fs::write(dir.join("over.toml"), format!("{note}\n")).unwrap();
    let out = nexusml(
        &dir,
        &[
            "dag",
            "export",
            "p.toml",
            "--params",
            "over.toml",
            "--to",
            "slurm",
            "-o",
            "submit.sh",
            "--store",
            "st $(touch STORE_RAN)",
            "--group",
            "none",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let script = std::fs::read_to_string(dir.join("submit.sh")).unwrap();

    let syntax = Command::new("bash")
        .args(["-n", "submit.sh"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // The pipeline's name stays inside its comment line.
    assert!(
        script.contains(
            "# Submits pipeline `odd $(touch NAME_RAN) `touch TICK_RAN`\\u{a}touch NEWLINE_RAN` (p.toml)"
        ),
        "{script}"
    );
    // `a-b` and `a_b` get variables of their own.
    assert!(script.contains("job_a_b_0=$(sbatch "), "{script}");
    assert!(script.contains("job_a_b_1=$(sbatch "), "{script}");
    assert!(
        script.contains("--dependency=afterok:${job_a_b_0}:${job_a_b_1} "),
        "{script}"
    );

    // Run it against a stand-in sbatch: nothing but sbatch runs, and each argument
    // arrives whole.
    stub_sbatch(&dir);
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = Command::new("bash")
        .arg("submit.sh")
        .current_dir(&dir)
        .env("PATH", path)
        .env("STUB_DIR", &dir)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "node a-b: job 1\nnode a_b: job 2\nnode _x1: job 3\n"
    );
    let mut ran_files = Vec::new();
    for e in walk(tmp.path()) {
        if e.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("_RAN"))
        {
            ran_files.push(e);
        }
    }
    assert!(ran_files.is_empty(), "injected commands ran: {ran_files:?}");

    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    let calls: Vec<Vec<&str>> = calls
        .split('\u{1e}')
        .filter(|c| !c.is_empty())
        .map(|c| c.split('\u{1f}').filter(|a| !a.is_empty()).collect())
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let dir_text = dir.display().to_string();
    let first = &calls[0];
    assert!(
        // The pipeline's name reaches the job name only as letters, digits and `_`.
        first.contains(&"--job-name=nexusml-odd___touch_NAME_RAN___touch_TICK_RAN__touch_NEWLINE_RAN-a-b"),
        "{first:?}"
    );
    assert!(
        first.contains(&format!("--chdir={dir_text}").as_str()),
        "{first:?}"
    );
    assert!(
        first.contains(&"--partition=batch") && first.contains(&"--mem=4G"),
        "{first:?}"
    );
    assert!(first.contains(&"--time=0-01:00:00"), "{first:?}");
    let wrap = first.iter().find(|a| a.starts_with("--wrap=")).unwrap();
    // The job's own command line is quoted once more, for the shell Slurm runs it in.
    assert!(
        wrap.contains(&format!("--store '{dir_text}/st $(touch STORE_RAN)'")),
        "{wrap}"
    );
    assert!(calls[2].contains(&"--dependency=afterok:1:2"), "{:?}", calls[2]);
    assert!(calls[2].contains(&"--cpus-per-task=2"), "{:?}", calls[2]);
    assert!(calls[2].contains(&"--time=1-00:00:00"), "{:?}", calls[2]);

    // The here-document ended where it should: the parameters file is the parameters.
    let params: toml::Table = std::fs::read_to_string(dir.join("submit.params.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        params["note"].as_str().unwrap(),
        "line\nNEXUSML_PARAMS\ntouch PARAM_RAN\n'quote' $(touch QUOTE_RAN) \"; touch SEMI_RAN\""
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn control_characters_in_class_labels_still_draw_both_charts() {
    let dir = tempfile::tempdir().unwrap();
    // The classic inventory, with BEL and ESC (and an ANSI colour sequence) in two
    // classes' labels, in training and test rows alike.
    let csv = std::fs::read_to_string(fixture("data/classic.csv"))
        .unwrap()
        .replace(",Chiller,", ",Chil\u{7}ler\u{1b},")
        .replace(",Pump,", ",Pu\u{1b}[31mmp,");
    std::fs::write(dir.path().join("inventory.csv"), csv).unwrap();
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            fixture("control_labels.toml").to_str().unwrap(),
            "--set",
            "data=inventory.csv",
            "--no-cache",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("run ok: 8 ok"), "{}", out.stderr);
    let plots = single_run_dir(&dir.path().join("runs")).join("plots");
    let metrics = read_json(&plots.parent().unwrap().join("metrics.json"));
    let labels = metrics["targets"][0]["labels"].to_string();
    assert!(
        labels.contains("Chil\\u0007ler\\u001b"),
        "the label is kept as it is: {labels}"
    );
    for name in ["distribution_category_name.png", "confusion_category_name.png"] {
        let png = std::fs::read(plots.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(pixmap.width() > 200 && pixmap.height() > 100, "{name}");
    }
}

#[test]
fn dag_plot_refuses_a_node_id_outside_the_character_set_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"p\"\n[nodes.\"bell\\u0007\"]\nop = \"util.noop\"\n",
    )
    .unwrap();
    let out = nexusml(dir.path(), &["dag", "plot", "p.toml", "-o", "x.png"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("node `bell\\u{7}`: the node id has the character U+0007"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("x.png").exists());
}
