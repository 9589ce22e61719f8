//! Nothing lost, nothing escapes: concurrent saves into one directory, model/metadata
//! pairs, and paths that would leave the run directory refused at check time.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn sha256_hex(path: &Path) -> String {
    nexusml::ml::bundle::sha256_file(path).unwrap()
}

fn meta_sha(path: &Path) -> String {
    read_json(path)["model_sha256"].as_str().unwrap().to_string()
}

#[test]
fn concurrent_trains_into_one_directory_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        nexusml(
            dir.path(),
            &["data", "synth", "--rows", "120", "--seed", "3", "-o", "inv.csv"]
        )
        .code,
        0
    );
    let out_dir = dir.path().join("models");
    for round in 0..20 {
        let children: Vec<_> = (0..4)
            .map(|k| {
                let seed = (round * 4 + k).to_string();
                std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
                    .args([
                        "train",
                        "--data-path",
                        "inv.csv",
                        "--trees",
                        "1",
                        "--output-dir",
                        "models",
                        "--random-state",
                        &seed,
                        // Every save is to survive: no pruning here (tests/column_mapping.rs).
                        "--keep-models",
                        "1000",
                        "--no-cache",
                        "--runs-dir",
                        "runs",
                    ])
                    .current_dir(dir.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let models: Vec<_> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "nxm"))
            .filter(|p| !p.to_string_lossy().ends_with("_latest.nxm"))
            .collect();
        assert_eq!(
            models.len(),
            4 * (round + 1),
            "round {round}: every model survives"
        );
        let mut shas = BTreeSet::new();
        for m in &models {
            let meta = m.with_file_name(format!(
                "{}_metadata.json",
                m.file_stem().unwrap().to_string_lossy()
            ));
            assert_eq!(
                meta_sha(&meta),
                sha256_hex(m),
                "{} and its metadata match",
                m.display()
            );
            assert_eq!(
                read_json(&meta)["model_file"],
                m.display()
                    .to_string()
                    .replace(&format!("{}/", dir.path().display()), "")
            );
            shas.insert(sha256_hex(m));
        }
        assert_eq!(shas.len(), models.len(), "different seeds, different models");
        let latest = out_dir.join("equipment_classifier_latest.nxm");
        let latest_meta = out_dir.join("equipment_classifier_latest_metadata.json");
        assert_eq!(
            meta_sha(&latest_meta),
            sha256_hex(&latest),
            "round {round}: `_latest` is a pair"
        );
        assert!(shas.contains(&sha256_hex(&latest)));
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_model_whose_metadata_describes_another_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        nexusml(
            dir.path(),
            &["data", "synth", "--rows", "120", "--seed", "3", "-o", "inv.csv"]
        )
        .code,
        0
    );
    for seed in ["1", "2"] {
        let out = nexusml(
            dir.path(),
            &[
                "train",
                "--data-path",
                "inv.csv",
                "--trees",
                "1",
                "--output-dir",
                "m",
                "--model-name",
                &format!("s{seed}"),
                "--random-state",
                seed,
                "--no-cache",
            ],
        );
        assert_eq!(out.code, 0, "{}", out.all());
    }
    std::fs::copy(
        dir.path().join("m/s2_latest_metadata.json"),
        dir.path().join("m/s1_latest_metadata.json"),
    )
    .unwrap();
    let out = nexusml(
        dir.path(),
        &[
            "predict",
            "--model-path",
            "m/s1_latest.nxm",
            "--input-file",
            "inv.csv",
            "--output-file",
            "p.csv",
            "--no-cache",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("s1_latest.nxm does not match its metadata"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("p.csv").exists());
}

#[test]
fn writes_that_would_leave_the_run_directory_are_refused_at_check_time() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("op = \"util.write\"\nwith = { file = \"../escape.json\" }", "`file` = `../escape.json` leaves the run directory"),
        ("op = \"util.write\"\nwith = { file = \"/tmp/escape.json\" }", "`file` = `/tmp/escape.json` is absolute"),
        ("op = \"plot.confusion\"\nwith = { dir = \"../plots\" }\nin = { metrics = \"m\" }", "`dir` = `../plots` leaves the run directory"),
        ("op = \"csv.write\"\nwith = { path = \"../a.csv\", in_run_dir = true }\nin = { table = \"t\" }", "`path` = `../a.csv` leaves the run directory"),
        ("op = \"model.save\"\nwith = { output_dir = \"out\", model_name = \"../../x\" }\nin = { model = \"m\" }", "`model_name` = `../../x` is not a plain file name"),
        ("op = \"model.predict_one\"\nwith = { record = {}, file = \"/etc/x.json\" }\nin = { model = \"m\" }", "`file` = `/etc/x.json` is absolute"),
    ];
    for (node, message) in cases {
        let text = format!("[pipeline]\nname = \"escape\"\n\n[nodes.bad]\n{node}\n");
        std::fs::write(dir.path().join("p.toml"), text).unwrap();
        let out = nexusml(dir.path(), &["dag", "check", "p.toml"]);
        assert_eq!(out.code, 2, "{node}: {}", out.all());
        assert!(out.stderr.contains(message), "{node}: {}", out.stderr);
    }
    // An explicit destination may go anywhere.
    std::fs::write(
        dir.path().join("ok.toml"),
        "[pipeline]\nname = \"ok\"\n[nodes.v]\nop = \"util.value\"\nwith = { value = 1 }\nout = { value = \"v\" }\n",
    )
    .unwrap();
    assert_eq!(nexusml(dir.path(), &["dag", "check", "ok.toml"]).code, 0);

    let out = nexusml(
        dir.path(),
        &["train", "--data-path", "ok.toml", "--model-name", "../../x"],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("is not a plain file name"), "{}", out.stderr);
}

#[test]
fn a_failed_model_write_leaves_no_orphan_metadata() {
    // The save takes the name metadata first, then writes the model beside it. Make
    // that second write fail (as a full disk would): a directory already stands where
    // the model would go, for every second the save might pick, while the metadata's
    // name is free.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        nexusml(
            dir.path(),
            &["data", "synth", "--rows", "120", "--seed", "3", "-o", "inv.csv"]
        )
        .code,
        0
    );
    let out_dir = dir.path().join("m");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for s in 0..300 {
        let stamp = nexusml::clock::Utc::from_unix_millis(now + s * 1000).compact();
        std::fs::create_dir_all(out_dir.join(format!("e_{stamp}.nxm"))).unwrap();
    }
    let start = std::time::Instant::now();
    let out = nexusml(
        dir.path(),
        &[
            "train",
            "--data-path",
            "inv.csv",
            "--trees",
            "1",
            "--output-dir",
            "m",
            "--model-name",
            "e",
            "--no-cache",
        ],
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(240),
        "inside the planted window"
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("failed at node `save`: cannot write m/e_"),
        "{}",
        out.stderr
    );
    let left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".nxm"))
        .collect();
    assert!(left.is_empty(), "orphans: {left:?}");
}
