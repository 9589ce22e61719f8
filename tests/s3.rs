//! The S3 store against a real S3-compatible server (`scripts/s3-local.sh up`: moto on
//! 127.0.0.1, bucket `nexusml-test`), configured by the standard AWS variables. Built with
//! `--features s3`. Without a server these tests skip with a message; with
//! `NEXUSML_REQUIRE_S3=1` (CI) a missing server is a failure.

mod common;
use common::*;

/// Without the feature there is no S3 store to test: say so instead of running 0 tests.
#[cfg(not(feature = "s3"))]
#[test]
fn s3_store_needs_the_s3_feature() {
    skipped("s3: built without the `s3` feature (cargo test --features s3 --test s3)");
}

#[cfg(feature = "s3")]
mod with_feature {
    use super::*;
    use nexusml::store::Store;

    /// A fresh `s3://nexusml-test/<unique>` prefix, or `None` (skip) without a server.
    fn s3_prefix(name: &str) -> Option<String> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        let up = !endpoint.is_empty()
            && std::process::Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &format!("{endpoint}/nexusml-test")])
                .status()
                .is_ok_and(|s| s.success());
        if !up {
            if std::env::var_os("NEXUSML_REQUIRE_S3").is_some() {
                panic!("NEXUSML_REQUIRE_S3 is set but no S3 server answers at AWS_ENDPOINT_URL={endpoint:?} (scripts/s3-local.sh up)");
            }
            skipped("s3: no server answers (set AWS_ENDPOINT_URL etc.; scripts/s3-local.sh up starts one; NEXUSML_REQUIRE_S3=1 requires it)");
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Some(format!("s3://nexusml-test/{name}-{}-{nanos}", std::process::id()))
    }

    fn statuses(report: &serde_json::Value) -> Vec<String> {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["status"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_pipeline_runs_and_is_cached_in_an_s3_store() {
        let Some(url) = s3_prefix("cache") else { return };
        let dir = tempfile::tempdir().unwrap();
        let file = fixture("select.toml");
        let run = || {
            nexusml(
                dir.path(),
                &[
                    "dag",
                    "run",
                    file.to_str().unwrap(),
                    "--store",
                    &url,
                    "--runs-dir",
                    "runs",
                ],
            )
        };
        let first = run();
        assert_eq!(first.code, 0, "{}", first.all());
        let second = run();
        assert_eq!(second.code, 0, "{}", second.all());
        assert!(statuses(&read_json(
            &newest_run(&dir.path().join("runs")).join("report.json")
        ))
        .iter()
        .all(|s| s == "cached"));
        assert!(
            newest_run(&dir.path().join("runs"))
                .join("report-hello.json")
                .exists(),
            "files restored from S3"
        );
        let status = nexusml(
            dir.path(),
            &["dag", "status", file.to_str().unwrap(), "--store", &url],
        );
        assert!(
            status.stdout.contains("5 fresh, 0 stale, 0 missing"),
            "{}",
            status.stdout
        );
        assert!(nexusml(dir.path(), &["cache", "info", "--store", &url])
            .stdout
            .contains("5 manifests"));
        let gc = nexusml(dir.path(), &["cache", "gc", "--store", &url]);
        assert_eq!(gc.code, 1);
        assert!(gc.stderr.contains("not collected yet"), "{}", gc.stderr);
    }

    #[test]
    fn concurrent_writers_of_one_s3_store_both_succeed() {
        let Some(url) = s3_prefix("concurrent") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let file = fixture("lattice.toml");
        let spawn = |runs: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
                .args([
                    "dag",
                    "run",
                    file.to_str().unwrap(),
                    "--store",
                    &url,
                    "--runs-dir",
                    runs,
                ])
                .current_dir(dir.path())
                .output()
                .unwrap()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| spawn("a"));
            let b = s.spawn(|| spawn("b"));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
        let result =
            |runs: &str| std::fs::read(newest_run(&dir.path().join(runs)).join("result.json")).unwrap();
        assert_eq!(result("a"), result("b"));
        let c = spawn("c");
        assert!(c.status.success());
        assert!(
            statuses(&read_json(&newest_run(&dir.path().join("c")).join("report.json")))
                .iter()
                .all(|s| s == "cached")
        );
    }

    #[test]
    fn blob_writes_are_conditional_and_reads_checked() {
        let Some(url) = s3_prefix("conditional") else {
            return;
        };
        let store = Store::open(&url).unwrap();
        let bytes = b"the same content, written by eight writers at once".to_vec();
        let digests: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| store.put_blob(&bytes))).collect();
            handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        assert!(digests.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(store.get_blob(&digests[0]).unwrap(), bytes);
        assert!(store.has_blob(&digests[0], bytes.len() as u64));
        // A missing blob is a miss, not an error.
        let absent = nexusml::store::Digest::of(b"never stored");
        assert!(matches!(
            store.get_blob(&absent),
            Err(nexusml::store::BlobMiss::Missing(_))
        ));
    }

    #[test]
    fn train_on_slurm_with_an_s3_store_gives_the_local_model_bytes() {
        let Some(url) = s3_prefix("slurm") else { return };
        if !slurm_cluster() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            nexusml(
                dir.path(),
                &["data", "synth", "--rows", "300", "--seed", "4", "-o", "inv.csv"]
            )
            .code,
            0
        );
        let train = repo("dags/train.toml");
        let args = |extra: &[&'static str]| {
            let mut a: Vec<String> = [
                "dag",
                "run",
                train.to_str().unwrap(),
                "--set",
                "data=inv.csv",
                "--set",
                "trees=8",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let slurm: Vec<String> = {
            let mut a = args(&[
                "--executor",
                "slurm",
                "--runs-dir",
                "runs",
                "--set",
                "output_dir=slurm_models",
                "--store",
            ]);
            a.push(url.clone());
            a
        };
        let out = nexusml(dir.path(), &slurm.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.code, 0, "{}", out.all());
        let local = args(&[
            "--runs-dir",
            "local_runs",
            "--set",
            "output_dir=local_models",
            "--no-cache",
        ]);
        assert_eq!(
            nexusml(dir.path(), &local.iter().map(String::as_str).collect::<Vec<_>>()).code,
            0
        );
        assert_eq!(
            std::fs::read(dir.path().join("slurm_models/equipment_classifier_latest.nxm")).unwrap(),
            std::fs::read(dir.path().join("local_models/equipment_classifier_latest.nxm")).unwrap()
        );
    }

    #[test]
    fn the_server_refuses_a_second_create_of_one_key() {
        // What the store's blob writes rely on: `If-None-Match: *` makes a second create fail
        // with AlreadyExists instead of overwriting.
        use object_store::{
            aws::AmazonS3Builder, aws::S3ConditionalPut, ObjectStore, PutMode, PutOptions, PutPayload,
        };
        let Some(url) = s3_prefix("create") else { return };
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name("nexusml-test")
            .with_allow_http(true)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()
            .unwrap();
        let key =
            object_store::path::Path::from(format!("{}/k", url.trim_start_matches("s3://nexusml-test/")));
        let create = || PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(s3.put_opts(&key, PutPayload::from(b"first".to_vec()), create()))
            .unwrap();
        let second = rt.block_on(s3.put_opts(&key, PutPayload::from(b"second".to_vec()), create()));
        assert!(
            matches!(second, Err(object_store::Error::AlreadyExists { .. })),
            "{second:?}"
        );
    }
}
