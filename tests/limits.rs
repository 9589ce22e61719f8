//! Sizes and counts past what the tool handles: big pipelines work, absurd settings are
//! refused with a message that names the limit, and nothing aborts or hangs.

mod common;
use common::*;
use std::fmt::Write as _;
use std::path::Path;

/// `n` `util.noop` nodes, each reading the previous one's token.
fn write_chain(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut s = String::from("[pipeline]\nname = \"chain\"\n");
    for i in 0..n {
        let _ = write!(s, "[nodes.n{i}]\nop = \"util.noop\"\n");
        if i > 0 {
            let _ = writeln!(s, "in = {{ x = \"t{}\" }}", i - 1);
        }
        let _ = writeln!(s, "out = {{ y = \"t{i}\" }}");
    }
    let path = dir.join("chain.toml");
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn a_long_chain_checks_and_runs() {
    // Past what a recursive graph search survives (the main thread's 8 MiB stack
    // overflowed at about 100,000 nodes).
    let n = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let file = write_chain(dir.path(), n);
    let file = file.to_str().unwrap();

    let out = nexusml(dir.path(), &["--log-level", "warning", "dag", "check", file]);
    assert_eq!(out.code, 0, "{}", &out.all()[..out.all().len().min(2000)]);
    assert!(
        out.stdout.starts_with(&format!(
            "ok: pipeline `chain` ({file}): {n} nodes, {} edges",
            n - 1
        )),
        "{}",
        &out.stdout[..out.stdout.len().min(500)]
    );

    let out = nexusml(
        dir.path(),
        &[
            "--log-level",
            "warning",
            "dag",
            "run",
            file,
            "--no-cache",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.code, 0, "{}", &out.all()[..out.all().len().min(2000)]);
    assert!(
        out.stderr
            .contains(&format!("run ok: {n} ok, 0 cached, 0 failed, 0 skipped")),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(500)..]
    );
}

#[test]
fn too_many_jobs_is_a_usage_error_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("overlap.toml");
    for jobs in ["100000", "5000", "257"] {
        let start = std::time::Instant::now();
        let out = nexusml(
            dir.path(),
            &["dag", "run", file.to_str().unwrap(), "--no-cache", "--jobs", jobs],
        );
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr
                .contains(&format!("error: --jobs {jobs} is more than the limit of ")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("no more nodes can run at once"),
            "{}",
            out.stderr
        );
        // Refused before any thread or run directory is made.
        assert!(start.elapsed().as_secs() < 10);
        assert!(!dir.path().join("outputs").exists());
    }
    let limit = nexusml::engine::max_jobs();
    assert!((4..=256).contains(&limit));
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            file.to_str().unwrap(),
            "--no-cache",
            "--runs-dir",
            "runs",
            "--set",
            "ms=1",
        ]
        .into_iter()
        .chain(["--jobs", &limit.to_string()])
        .collect::<Vec<_>>(),
    );
    assert_eq!(out.code, 0, "--jobs {limit} is allowed: {}", out.all());

    // `train` takes --jobs too, and refuses it before reading any data.
    let out = nexusml(
        dir.path(),
        &["train", "--data-path", "missing.csv", "--jobs", "100000"],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("--jobs 100000 is more than the limit"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_huge_random_count_is_refused_at_check_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("huge_random.toml");
    let file = file.to_str().unwrap();
    for args in [&["dag", "check", file][..], &["dag", "run", file, "--no-cache"]] {
        let out = nexusml(dir.path(), args);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains(
                "node `numbers`: invalid `with` for `util.random`: `count` = 100000000000 is more than the limit of 1000000 numbers"
            ),
            "{}",
            out.stderr
        );
    }
}

/// `train --trees 4294967296` aborted the process allocating 64 GiB; every size-like
/// setting is bounded when the pipeline is checked, before any data is read.
#[test]
fn huge_sizes_are_refused_before_training_with_their_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let data = repo("examples/data/equipment_inventory.csv");
    let data = data.to_str().unwrap();
    let out = nexusml(
        dir.path(),
        &[
            "train",
            "--data-path",
            data,
            "--learner",
            "forest",
            "--trees",
            "4294967296",
        ],
    );
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(out.all().contains("10000 trees"), "{}", out.all());
    assert!(!dir.path().join("outputs/models").exists(), "nothing trained");
    let train = repo("dags/train.toml");
    for (set, bound) in [
        ("ngram_max=100", "16"),
        ("max_features=9999999999", "1000000"),
        ("c=1e300", "1e6"),
    ] {
        let out = nexusml(
            dir.path(),
            &["dag", "check", train.to_str().unwrap(), "--set", set],
        );
        assert_eq!(out.code, 2, "{set}: {}", out.all());
        assert!(out.stderr.contains(bound), "{set}: {}", out.stderr);
    }
}
