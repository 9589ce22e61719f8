//! The module dependency direction the README's architecture section states:
//! `cli → orchestrator → engine → graph → op ← ops → ml`, with `store` used by `engine`
//! (and the orchestrator) only, `spec` below `graph`, and `report` (reading run
//! directories) beside `engine`, called by the orchestrator and the CLI. A `use crate::…` against it
//! fails here, naming the file and line.

use std::collections::BTreeMap;
use std::path::Path;

/// Module → the crate modules it may name. Foundation modules (`fsx`, `atomic_file`,
/// `clock`, `textpos`, `raster`) may be named by anyone and name nothing but `fsx`
/// (`atomic_file` opens its lock files through it).
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    let foundation = ["fsx", "atomic_file", "clock", "textpos", "raster", "suggest"];
    let with =
        |mods: &[&'static str]| -> Vec<&'static str> { mods.iter().chain(&foundation).copied().collect() };
    BTreeMap::from([
        ("fsx", vec![]),
        ("atomic_file", vec!["fsx"]),
        ("clock", vec![]),
        ("textpos", vec![]),
        ("raster", vec![]),
        ("suggest", vec![]),
        ("charts", with(&[])),
        ("spec", with(&[])),
        ("op", with(&["op"])),
        ("store", with(&[])),
        ("ml", with(&["ml"])),
        ("graph", with(&["op", "spec"])),
        ("engine", with(&["graph", "op", "spec", "store", "report"])),
        ("cluster", with(&["engine", "graph", "op", "spec"])),
        // report.html and the run listing: read a run directory's files, draw with plot.
        ("report", with(&["graph"])),
        ("ops", with(&["op", "ml", "charts"])),
        (
            "orchestrator",
            with(&["engine", "graph", "op", "ops", "ml", "spec", "store", "report"]),
        ),
        (
            "cli",
            with(&[
                "orchestrator",
                "cluster",
                "engine",
                "graph",
                "op",
                "ops",
                "ml",
                "spec",
                "store",
                "charts",
                "report",
            ]),
        ),
    ])
}

/// Exported macros live at the crate root but belong to a module.
fn owner(name: &str) -> &str {
    match name {
        "serde_artifact" => "op",
        other => other,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_depend_in_one_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules = allowed();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(may) = rules.get(module.as_str()) else {
            violations.push(format!(
                "src/{}: module `{module}` has no place in the layering",
                rel.display()
            ));
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let target = owner(&name);
                if target != module && !may.contains(&target) {
                    violations.push(format!(
                        "src/{}:{}: `{module}` uses `crate::{name}`, against the direction",
                        rel.display(),
                        n + 1
                    ));
                }
                rest = &after[name.len()..];
            }
        }
    }
    assert!(checked > 30, "only {checked} files checked");
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
