//! A real browser opens a training run's `report.html`: headless Chromium (Debian's
//! `chromium`) loads it from disk, its DOM has the node table and the metrics table, and
//! its screenshot is a picture, not one colour. CI installs Chromium and sets
//! `NEXUSML_REQUIRE_CHROMIUM=1`, so there the test cannot skip; elsewhere, without
//! Chromium, it says it skipped and why.
//!
//! `NEXUSML_REPORT_SCREENSHOT=docs/report.png` keeps the screenshot (the README's).

mod common;

use common::{nexusml, repo, single_run_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `$NEXUSML_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NEXUSML_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    })
}

/// Run Chromium headless on `url` with `extra` flags, in a fresh profile; its stdout.
/// Killed after two minutes (a browser that hangs fails the test, it does not hang it).
fn headless(browser: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let profile_flag = format!("--user-data-dir={}", profile.display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // Nothing may be fetched: any host name fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            &profile_flag,
        ])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        // Files, not pipes: the DOM (with its inline pictures) outgrows a pipe's buffer.
        .stdout(std::fs::File::create(profile.with_extension("out")).expect("stdout file"))
        .stderr(std::fs::File::create(profile.with_extension("err")).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish with {url} in two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |ext: &str| std::fs::read_to_string(profile.with_extension(ext)).unwrap_or_default();
    assert!(status.success(), "chromium failed: {}", read("err"));
    read("out")
}

#[test]
fn chromium_opens_the_report_of_a_training_run() {
    let Some(browser) = chromium() else {
        if std::env::var_os("NEXUSML_REQUIRE_CHROMIUM").is_some() {
            panic!("NEXUSML_REQUIRE_CHROMIUM is set but there is no `chromium` on the PATH (apt-get install chromium)");
        }
        eprintln!("skipped: no `chromium` on the PATH (apt-get install chromium, or set NEXUSML_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The bundled inventory, as the quick start trains it (fewer trees: a debug build).
    let out = nexusml(
        d,
        &[
            "dag",
            "run",
            repo("dags/train.toml").to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--no-cache",
            "--set",
            "output_dir=models",
            "--set",
            "trees=40",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let run = single_run_dir(&d.join("runs"));
    let url = format!("file://{}", run.join("report.html").display());

    let dom = headless(&browser, &d.join("profile-dom"), &url, &["--dump-dom"]);
    assert!(dom.contains("<table id=\"nodes\""), "no node table in the DOM");
    assert!(
        dom.contains("<table id=\"metrics\""),
        "no metrics table in the DOM"
    );
    for node in ["load", "train", "evaluate", "confusion"] {
        assert!(
            dom.contains(&format!("data-node=\"{node}\"")),
            "node {node} not in the DOM"
        );
    }
    assert!(dom.contains("<svg class=\"timeline\"") && dom.contains("class=\"pipeline\""));

    let shot = d.join("report.png");
    headless(
        &browser,
        &d.join("profile-shot"),
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1560",
        ],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("a PNG");
    assert_eq!((pixmap.width(), pixmap.height()), (1280, 1560));
    // Not blank: many colours (text, the pictures' fills, the status colours), and the
    // most common one (the background) covers well under the whole page.
    let mut counts = std::collections::HashMap::new();
    for px in pixmap.pixels() {
        *counts.entry((px.red(), px.green(), px.blue())).or_insert(0usize) += 1;
    }
    let most = counts.values().max().copied().unwrap_or(0);
    let total = pixmap.pixels().len();
    assert!(counts.len() > 200, "only {} colours: a blank page?", counts.len());
    assert!(
        most * 10 < total * 8,
        "one colour covers {most} of {total} pixels"
    );
    // The status green of the `ok` badges and the pipeline's nodes is on screen.
    assert!(counts.contains_key(&(0xc8, 0xe6, 0xc9)), "no ok-green pixel");
    if let Some(keep) = std::env::var_os("NEXUSML_REPORT_SCREENSHOT") {
        let keep = PathBuf::from(keep);
        let keep = if keep.is_relative() {
            repo(keep.to_str().unwrap())
        } else {
            keep
        };
        std::fs::copy(&shot, &keep).expect("keep the screenshot");
        eprintln!("screenshot kept in {}", keep.display());
    }
}
