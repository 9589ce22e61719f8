//! `report.html` and `nexusml runs`: the page of a real training run and of a failed run,
//! made from the run directory's files; the run listing and the diff of two runs.
//!
//! `tests/fixtures/data/report_inventory.csv` is `nexusml data synth --rows 400 --seed 7`
//! with its most frequent category (VAV Box) renamed `<script>alert(1)</script>` and
//! every 60th row's `uniformat_code` emptied (rows 6, 66, …: CSV lines 7, 67, …).

mod common;

use common::{fixture, newest_run, nexusml, read_json, repo, single_run_dir, Output};
use std::path::Path;

const SCRIPT_CLASS: &str = "<script>alert(1)</script>";
/// How askama writes it.
const SCRIPT_CLASS_ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

fn train(d: &Path, trees: &str, extra: &[&str]) -> Output {
    let train = repo("dags/train.toml");
    let data = format!("data={}", fixture("data/report_inventory.csv").display());
    let trees = format!("trees={trees}");
    let mut args = vec![
        "dag",
        "run",
        train.to_str().unwrap(),
        "--runs-dir",
        "runs",
        "--set",
        &data,
        "--set",
        &trees,
        "--set",
        "output_dir=models",
    ];
    args.extend_from_slice(extra);
    nexusml(d, &args)
}

fn page(run: &Path) -> String {
    std::fs::read_to_string(run.join("report.html")).expect("the run wrote report.html")
}

/// The page fetches nothing: no URL at all (inline SVG carries no namespace URL), no
/// external stylesheet, script or font, and no `<script>` but its own one.
fn assert_offline(html: &str) {
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "a URL in the page"
    );
    for fetch in ["<link", "@import", "<iframe", "<object", "<embed", " srcset="] {
        assert!(!html.contains(fetch), "the page has `{fetch}`");
    }
    // The pipeline picture's arrowheads are markers of the page itself.
    for (at, _) in html.match_indices("url(") {
        assert!(html[at + 4..].starts_with('#'), "{}", &html[at..at + 40]);
    }
    for attr in [" src=\"", " href=\""] {
        for (at, _) in html.match_indices(attr) {
            let value = &html[at + attr.len()..];
            assert!(
                value.starts_with("data:image/png;base64,")
                    || value.starts_with("./")
                    || value.starts_with('#'),
                "{attr} points outside the page and its run: {}",
                &value[..value.len().min(80)]
            );
        }
    }
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own sorting script"
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
}

/// The node table's row of `id` says `status`.
fn assert_node_row(html: &str, id: &str, status: &str) {
    let row = format!("class=\"st-{status}");
    let marker = format!("data-node=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("node `{id}` is not in the node table"));
    let tag_start = html[..at].rfind("<tr ").expect("a row");
    assert!(
        html[tag_start..at].contains(&row),
        "node `{id}` is not shown {status}: {}",
        &html[tag_start..at + marker.len()]
    );
    let cell_end = at + html[at..].find("</tr>").expect("the row ends");
    assert!(
        html[at..cell_end].contains(&format!("<span class=\"badge st-{status}\">{status}</span>")),
        "node `{id}` has no {status} badge"
    );
}

#[test]
fn a_training_run_has_one_offline_page_with_every_class_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = train(d, "10", &["--no-cache"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = single_run_dir(&d.join("runs"));
    let html = page(&run);
    assert_offline(&html);

    // The class named like a script is text, wherever it is shown.
    assert!(!html.contains(SCRIPT_CLASS), "an unescaped class name");
    let metrics = read_json(&run.join("metrics.json"));
    let category = metrics["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "category_name")
        .unwrap();
    assert!(category["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l == SCRIPT_CLASS));
    assert!(
        html.contains(&format!("<td>{SCRIPT_CLASS_ESCAPED}</td>")),
        "the class is not in the per-class table"
    );

    // Every node, with its status; the run's facts.
    let report = read_json(&run.join("report.json"));
    assert_eq!(report["nexusml_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["default_params"]["trees"], 200);
    assert!(report["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["from"] == "validate" && e["to"] == "train" && e["kind"] == "after"));
    for n in report["nodes"].as_array().unwrap() {
        assert_node_row(&html, n["id"].as_str().unwrap(), "ok");
    }
    assert!(html.contains("<table id=\"nodes\""));
    assert!(html.contains(&format!("nexusml {}", env!("CARGO_PKG_VERSION"))));
    // The changed parameter is marked, with the file's default.
    assert!(html.contains("<td class=\"mono\">trees<span class=\"tag changed\">changed</span></td><td class=\"mono\">10</td><td class=\"mono muted\">200</td>"));
    // The picture and the timeline, with the critical path, inline.
    assert!(html.contains("<svg viewBox=") && html.contains("class=\"pipeline\""));
    assert!(html.contains("<svg class=\"timeline\""));
    assert!(html.contains("Critical path (outlined): <b>load → "));

    // Metrics per target, in the metrics table; per-class rows by support.
    assert!(html.contains("<table id=\"metrics\""));
    for t in metrics["targets"].as_array().unwrap() {
        let name = t["target"].as_str().unwrap();
        assert!(
            html.contains(&format!("{name}</a>")),
            "target {name} not in the metrics table"
        );
        assert!(html.contains(&format!("{:.4}", t["accuracy"].as_f64().unwrap())));
    }
    assert!(html.contains(&format!("{:.4}", metrics["mean_accuracy"].as_f64().unwrap())));
    // Validation: the empty labels and their first lines.
    let validation = read_json(&run.join("validation.json"));
    let empty = validation["targets"]["uniformat_code"]["unlabelled"]
        .as_u64()
        .unwrap();
    assert_eq!(empty, 7);
    assert!(
        html.contains("<td class=\"num\">7</td><td class=\"num\">"),
        "the empty-label count"
    );
    assert!(
        html.contains("lines 7, 67, 127"),
        "the first lines without a label"
    );

    // Every picture inline, every file linked relatively.
    let pngs = std::fs::read_dir(run.join("plots")).unwrap().count();
    assert!(pngs >= 5);
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), pngs);
    for f in [
        "report.json",
        "metrics.json",
        "validation.json",
        "run.log",
        "plots/confusion_category_name.png",
    ] {
        assert!(html.contains(&format!("href=\"./{f}\"")), "no link to {f}");
    }
    assert!(!html.contains("href=\"./report.html\""), "the page links itself");

    // `nexusml report` makes it again from the files alone, the same each time.
    std::fs::remove_file(run.join("report.html")).unwrap();
    let again = nexusml(d, &["report", run.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.all());
    let first = page(&run);
    assert_eq!(nexusml(d, &["report", "latest", "--runs-dir", "runs"]).code, 0);
    let second = page(&run);
    if let Some(at) = first.bytes().zip(second.bytes()).position(|(a, b)| a != b) {
        let around = |s: &str| {
            s.get(at.saturating_sub(200)..(at + 200).min(s.len()))
                .unwrap_or("")
                .to_string()
        };
        panic!(
            "rendering twice differs at byte {at}:\n{}\n---\n{}",
            around(&first),
            around(&second)
        );
    }
    assert_eq!(first.len(), second.len(), "rendering twice differs in length");
    // Elsewhere, the links lead back into the run.
    let other = nexusml(d, &["report", run.to_str().unwrap(), "-o", "pages/train.html"]);
    assert_eq!(other.code, 0, "{}", other.all());
    let name = run.file_name().unwrap().to_str().unwrap();
    let elsewhere = std::fs::read_to_string(d.join("pages/train.html")).unwrap();
    assert!(
        elsewhere.contains(&format!("href=\"../runs/{name}/./metrics.json\"")),
        "links from elsewhere"
    );
    // Not a run: exit 2, named.
    let bad = nexusml(d, &["report", "models"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(
        bad.stderr
            .contains("is not a run directory: it has no report.json"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_failed_run_shows_the_error_escaped_and_the_skipped_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = fixture("report_fail.toml");
    let out = nexusml(
        d,
        &[
            "dag",
            "run",
            file.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--no-cache",
            "--keep-going",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    let run = single_run_dir(&d.join("runs"));
    let html = page(&run);
    assert_offline(&html);
    assert!(html.contains("<span class=\"badge st-failed\">failed</span></h1>"));
    for (id, status) in [
        ("source", "ok"),
        ("bad", "failed"),
        ("after_bad", "skipped"),
        ("never", "skipped"),
        ("fine", "ok"),
    ] {
        assert_node_row(&html, id, status);
    }
    // The error text, escaped, in the failed node's chain.
    assert!(
        !html.contains("<b>on</b>") && !html.contains("<img"),
        "unescaped error text"
    );
    assert!(
        html.contains(
            "disk &#60;b&#62;on&#60;/b&#62; fire &#38; &#34;smoke&#34; &#60;img src=x onerror=alert(1)&#62;"
        ),
        "the error is not shown as text"
    );
    // The skipped nodes say why, and are not on the timeline.
    let report = read_json(&run.join("report.json"));
    let reason = common::node(&report, "after_bad")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("bad"), "{reason}");
    assert!(html.contains(&reason), "{reason}");
    assert!(html.contains("Not on the timeline (never started): after_bad, never"));
    // No metrics, no validation: those sections are absent, not empty.
    assert!(!html.contains("id=\"metrics\"") && !html.contains("id=\"validation\""));
}

#[test]
fn a_predict_run_summarizes_its_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = train(d, "8", &["--no-cache"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let predict = repo("dags/predict.toml");
    let data = format!("data={}", fixture("data/report_inventory.csv").display());
    let out = nexusml(
        d,
        &[
            "dag",
            "run",
            predict.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--no-cache",
            "--set",
            "model=models/equipment_classifier_latest.nxm",
            "--set",
            &data,
            "--set",
            "output=predictions.csv",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let run = newest_run(&d.join("runs"));
    let summary = read_json(&run.join("predictions_summary.json"));
    assert_eq!(summary["rows"], 400);
    let targets = summary["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 5);
    for t in targets {
        let counted: u64 = t["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["rows"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, 400, "{t}");
        let below: Vec<u64> = t["below"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["rows"].as_u64().unwrap())
            .collect();
        assert_eq!(below.len(), 3);
        assert!(
            below[0] <= below[1] && below[1] <= below[2] && below[2] <= 400,
            "{below:?}"
        );
        // Most predicted first.
        let classes = t["classes"].as_array().unwrap();
        assert!(classes
            .windows(2)
            .all(|w| w[0]["rows"].as_u64() >= w[1]["rows"].as_u64()));
    }
    // Under 0.9 on any target is at least as many rows as under 0.9 on one.
    let any: Vec<u64> = summary["any_target_below"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["rows"].as_u64().unwrap())
        .collect();
    let most = targets
        .iter()
        .map(|t| t["below"][2]["rows"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(any[2] >= most && any[2] > 0, "{any:?}");
    let html = page(&run);
    assert_offline(&html);
    assert!(html.contains("<section class=\"card\" id=\"predictions\">"));
    assert!(html.contains("<table id=\"low-confidence\""));
    assert!(html.contains(&format!("{} rows predicted", 400)));
    assert_eq!(summary["any_target_below"][1]["probability"], 0.7);
    assert!(!html.contains(SCRIPT_CLASS));
}

#[test]
fn runs_diff_shows_the_changed_param_the_rerun_nodes_and_metric_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The forest: `trees` is its setting.
    for trees in ["6", "9"] {
        let out = train(d, trees, &["--store", "store", "--set", "learner=forest"]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
    // The listing: newest first, with the headline metric.
    let list = nexusml(d, &["runs", "list", "--runs-dir", "runs"]);
    assert_eq!(list.code, 0, "{}", list.all());
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    assert!(
        lines[0].starts_with("run ") && lines[0].ends_with("accuracy"),
        "{}",
        lines[0]
    );
    let json = nexusml(d, &["runs", "list", "--runs-dir", "runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0]["started_at"].as_str() >= runs[1]["started_at"].as_str());
    // The second run answered the data nodes from the store and re-ran the model's.
    assert_eq!(runs[1]["ran"], 13);
    assert_eq!(
        (runs[0]["ran"].as_u64(), runs[0]["cached"].as_u64()),
        (Some(6), Some(7))
    );
    let acc = runs[0]["mean_accuracy"].as_f64().unwrap();
    assert!(lines[1].ends_with(&format!("{acc:.4}")), "{}", lines[1]);

    let diff = nexusml(d, &["runs", "diff", "latest~1", "latest", "--runs-dir", "runs"]);
    assert_eq!(diff.code, 0, "{}", diff.all());
    let text = &diff.stdout;
    let trees_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("trees"))
        .expect(text);
    assert_eq!(
        trees_line.split_whitespace().collect::<Vec<_>>(),
        ["trees", "6", "9"],
        "{text}"
    );
    let train_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("train "))
        .expect(text);
    assert!(train_line.contains("param `trees` 6→9"), "{train_line}");
    let load_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("load "))
        .expect(text);
    assert!(
        load_line.contains(" ok ") && load_line.contains(" cached "),
        "{load_line}"
    );
    assert!(text.contains("metrics:") && text.lines().any(|l| l.trim_start().starts_with("category_name")));

    let json = nexusml(
        d,
        &[
            "runs",
            "diff",
            "latest~1",
            "latest",
            "--runs-dir",
            "runs",
            "--json",
        ],
    );
    assert_eq!(json.code, 0, "{}", json.all());
    let diff: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let params = diff["params"].as_array().unwrap();
    assert_eq!(params.len(), 1, "{params:?}");
    assert_eq!(
        (&params[0]["name"], &params[0]["a"], &params[0]["b"]),
        (&"trees".into(), &6.into(), &9.into())
    );
    let nodes = diff["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id);
    let train = node("train").expect("train re-ran");
    assert_eq!(
        (&train["a_status"], &train["b_status"]),
        (&"ok".into(), &"ok".into())
    );
    assert_eq!(train["key_changed"], true);
    for id in ["load", "validate", "features", "split", "tfidf"] {
        let n = node(id).unwrap_or_else(|| panic!("{id} is not in the diff"));
        assert_eq!(
            (&n["a_status"], &n["b_status"]),
            (&"ok".into(), &"cached".into()),
            "{id}"
        );
    }
    for id in ["evaluate", "confusion", "save", "sample_prediction"] {
        assert!(node(id).is_some(), "{id} re-ran and is not in the diff");
    }
    // Per-target deltas, then the mean, each b − a.
    let metrics = diff["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 6);
    assert_eq!(metrics[5]["target"], "mean");
    for m in metrics {
        let (a, b) = (
            m["a_accuracy"].as_f64().unwrap(),
            m["b_accuracy"].as_f64().unwrap(),
        );
        assert!((m["accuracy_delta"].as_f64().unwrap() - (b - a)).abs() < 1e-12);
        let (a, b) = (
            m["a_macro_f1"].as_f64().unwrap(),
            m["b_macro_f1"].as_f64().unwrap(),
        );
        assert!((m["macro_f1_delta"].as_f64().unwrap() - (b - a)).abs() < 1e-12);
    }
    assert_eq!(metrics[5]["b_accuracy"].as_f64(), Some(acc));

    // One run's summary: the changed parameter with the file's default.
    let show = nexusml(d, &["runs", "show", "latest", "--runs-dir", "runs"]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert!(
        show.stdout.contains("changed   data = ")
            && show
                .stdout
                .contains(", output_dir = models (file: ../outputs/models), trees = 9 (file: 200)"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("trees = 9 (file: 200)"), "{}", show.stdout);
    assert!(
        show.stdout
            .contains("status    ok: 6 ok, 7 cached, 0 failed, 0 skipped"),
        "{}",
        show.stdout
    );
    // A run that is not there: exit 2, with how to name one.
    let missing = nexusml(d, &["runs", "show", "latest~5", "--runs-dir", "runs"]);
    assert_eq!(missing.code, 2, "{}", missing.all());
    assert!(
        missing.stderr.contains("there are only 2 runs"),
        "{}",
        missing.stderr
    );
}
