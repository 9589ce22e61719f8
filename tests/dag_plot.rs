//! `nexusml dag plot`: DOT, Mermaid, SVG and PNG, and colouring by a run's report.

mod common;
use common::*;

#[test]
fn dot_and_mermaid_are_well_formed_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("select.toml");
    let out = nexusml(dir.path(), &["dag", "plot", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let dot = &out.stdout;
    assert!(dot.starts_with("digraph \"select\" {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    for node in ["load", "clean", "train", "plot", "report"] {
        assert!(
            dot.contains(&format!("\"{node}\" [label=\"{node}\\n")),
            "{node} missing:\n{dot}"
        );
    }
    assert!(dot.contains("\"load\" -> \"clean\" [label=\"raw\"]"), "{dot}");
    // A real DOT parser accepts it.
    let mut parser = layout::gv::DotParser::new(dot);
    assert!(parser.process().is_ok(), "DOT does not parse:\n{dot}");
    assert!(dot.contains("\"plot\" -> \"report\" [style=dashed"), "{dot}");

    let out = nexusml(
        dir.path(),
        &["dag", "plot", file.to_str().unwrap(), "--format", "mermaid"],
    );
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("flowchart LR\n"));
    assert_eq!(
        out.stdout.matches("-->").count() + out.stdout.matches("-.->").count(),
        5
    );
}

#[test]
fn svg_and_png_render_without_graphviz_or_system_fonts() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("select.toml");
    let out = nexusml(
        dir.path(),
        &["dag", "plot", file.to_str().unwrap(), "-o", "g.svg"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let svg = std::fs::read_to_string(dir.path().join("g.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("util.digest"));
    assert!(resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).is_ok());

    let out = nexusml(
        dir.path(),
        &["dag", "plot", file.to_str().unwrap(), "-o", "g.png"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let png = std::fs::read(dir.path().join("g.png")).unwrap();
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("a valid PNG");
    assert!(pixmap.width() > 200 && pixmap.height() > 50);
}

#[test]
fn run_colours_nodes_by_status_with_durations() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("failfast.toml");
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "run",
            file.to_str().unwrap(),
            "--runs-dir",
            "runs",
            "--keep-going",
        ],
    );
    assert_eq!(out.code, 1);
    let run = single_run_dir(&dir.path().join("runs"));
    let out = nexusml(
        dir.path(),
        &[
            "dag",
            "plot",
            file.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("\"bad\" [label=\"bad\\nutil.fail\\nfailed · "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\\nskipped\", fillcolor=\"#e0e0e0\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("fillcolor=\"#ffcdd2\""),
        "failed colour: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("fillcolor=\"#c8e6c9\""),
        "ok colour: {}",
        out.stdout
    );

    let out = nexusml(
        dir.path(),
        &["dag", "plot", file.to_str().unwrap(), "--run", "nowhere"],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot read nowhere/report.json"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_big_pipeline_is_refused_as_a_picture_but_drawn_as_dot_and_mermaid() {
    let dir = tempfile::tempdir().unwrap();
    let n = 5000;
    let mut text = String::from("[pipeline]\nname = \"big\"\n");
    for i in 0..n {
        text.push_str(&format!("[nodes.n{i}]\nop = \"util.noop\"\n"));
        if i > 0 {
            text.push_str(&format!("in = {{ x = \"t{}\" }}\n", i - 1));
        }
        text.push_str(&format!("out = {{ y = \"t{i}\" }}\n"));
    }
    let file = dir.path().join("big.toml");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();

    for out_file in ["big.svg", "big.png"] {
        let start = std::time::Instant::now();
        let out = nexusml(dir.path(), &["dag", "plot", file, "-o", out_file]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr
                .contains("error: the pipeline is too big for an SVG or PNG picture: 9999 boxes to lay out"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("Use `--format dot`") && out.stderr.contains("`--format mermaid`"),
            "{}",
            out.stderr
        );
        assert!(start.elapsed().as_secs() < 10, "refused at once");
        assert!(!dir.path().join(out_file).exists());
    }

    let out = nexusml(dir.path(), &["dag", "plot", file]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout.matches(" -> ").count(), n - 1);
    assert!(out.stdout.contains("\"n4998\" -> \"n4999\" [label=\"t4998\"]"));
    let out = nexusml(dir.path(), &["dag", "plot", file, "--format", "mermaid"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout.matches("-->").count(), n - 1);
}

#[test]
fn an_extension_that_does_not_match_the_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("select.toml");
    let f = file.to_str().unwrap();
    let out = nexusml(dir.path(), &["dag", "plot", f, "-o", "x.jpg"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("draws .dot, .gv, .mmd, .svg and .png, not .jpg"),
        "{}",
        out.stderr
    );
    let out = nexusml(dir.path(), &["dag", "plot", f, "--format", "svg", "-o", "x.png"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("--format svg does not match -o x.png"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("x.png").exists() && !dir.path().join("x.jpg").exists());
    assert_eq!(
        nexusml(dir.path(), &["dag", "plot", f, "--format", "dot", "-o", "x.gv"]).code,
        0
    );
}
