//! Every command in the README's `sh` blocks runs as written, in order, as a user
//! following the README would run them: in a scratch copy of the checkout's `dags/` and
//! `examples/`, with `nexusml` (and `cargo run --release --`) being the binary under
//! test. The files the README names as the user's own (`my_inventory.csv`,
//! `theirs.csv`, …) are made from the bundled inventory; `/shared/…` is a scratch
//! directory. Commands that need a Slurm cluster run only where there is one (always in
//! CI); `cargo test` itself is not run from inside the tests.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A README `sh` block, with the line it starts on.
struct Written {
    line: usize,
    text: String,
}

/// The README's `sh` blocks, each run as one script (heredocs and `\` continuations
/// as a shell reads them).
fn readme_commands() -> Vec<Written> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let mut out: Vec<Written> = Vec::new();
    let mut block: Option<Written> = None;
    for (i, line) in readme.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            match block.take() {
                Some(b) => out.push(b),
                None if lang.trim() == "sh" => {
                    block = Some(Written {
                        line: i + 2,
                        text: String::new(),
                    })
                }
                None => {}
            }
            continue;
        }
        if let Some(b) = &mut block {
            b.text.push_str(line);
            b.text.push('\n');
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The bundled inventory with some columns renamed (`from` → `to`).
fn renamed(bundled: &str, renames: &[(&str, &str)]) -> String {
    let (header, rest) = bundled.split_once('\n').unwrap();
    let header = header
        .split(',')
        .map(|c| {
            renames
                .iter()
                .find(|(from, _)| *from == c)
                .map_or(c.to_string(), |(_, to)| to.to_string())
        })
        .collect::<Vec<_>>()
        .join(",");
    format!("{header}\n{rest}")
}

#[test]
fn every_readme_command_runs_as_written() {
    let commands = readme_commands();
    assert!(commands.len() >= 6, "the README's sh blocks: {}", commands.len());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_tree(&repo("dags"), &d.join("dags"));
    copy_tree(&repo("examples"), &d.join("examples"));
    let bundled = std::fs::read_to_string(repo("examples/data/equipment_inventory.csv")).unwrap();
    for name in ["my_inventory.csv", "labelled.csv", "new_assets.csv"] {
        std::fs::write(d.join(name), &bundled).unwrap();
    }
    std::fs::write(
        d.join("theirs.csv"),
        renamed(&bundled, &[("description", "Asset Description")]),
    )
    .unwrap();
    let shared = d.join("shared");
    // `nexusml` on the PATH is the binary under test; so is `cargo run --release --`.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_nexusml"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let slurm = slurm_cluster();
    let mut ran = 0;
    for c in &commands {
        let mut script = String::new();
        for line in c.text.lines() {
            if line.trim_start().starts_with("cargo test") {
                continue; // this is it
            }
            if line.contains("--executor slurm") && !slurm {
                skipped(&format!("README: `{}` needs a Slurm cluster", line.trim()));
                continue;
            }
            ran += usize::from(line.trim_start().starts_with("nexusml") || line.contains("cargo run"));
            script.push_str(line);
            script.push('\n');
        }
        let mut text = script
            .replace("cargo run --release --", "nexusml")
            .replace("/shared/", &format!("{}/", shared.display()));
        // A run directory named by its time: the newest of that pipeline's runs.
        let mut from = 0;
        while let Some(at) = text[from..].find("outputs/runs/").map(|i| i + from) {
            let named: String = text[at..].split_whitespace().next().unwrap().to_string();
            let pipeline = named
                .trim_start_matches("outputs/runs/")
                .split('-')
                .next()
                .unwrap()
                .to_string();
            let newest = newest_run_of(&d.join("dags/outputs/runs"), &pipeline)
                .or_else(|| newest_run_of(&d.join("outputs/runs"), &pipeline))
                .unwrap_or_else(|| panic!("README line {}: no {pipeline} run to name", c.line));
            let newest = newest.display().to_string();
            text.replace_range(at..at + named.len(), &newest);
            from = at + newest.len();
        }
        let out = Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &text])
            .current_dir(d)
            .env("PATH", &path)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block at line {}:\n{}\nexited {:?}\n{}{}",
            c.line,
            c.text,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(ran >= 15, "ran {ran} of the README's commands");
}

fn newest_run_of(runs: &Path, pipeline: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{pipeline}-")))
        })
        .collect();
    dirs.sort();
    dirs.pop()
}
