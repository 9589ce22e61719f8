//! `cmd`: a step of the user's own, as a program (`run = [argv…]`, no shell) or a shell
//! line (`sh = "…"`), with its inputs and outputs as files in the node's work directory
//! `<run>/nodes/<id>/`. Tables cross as CSV (or Arrow IPC with `:arrow`), JSON values as
//! JSON, files and directories as they are. Outputs are typed by the node (`out = {
//! clean = "table:clean" }`), read back and checked before the node counts as ok.

mod placeholders;
mod process;

use super::{ArtifactType, FieldDoc, Op, OpConfig, OpError, OpSpec, PathField, Registry};
use crate::ml::table;
use crate::op::{Dir, File, NodeContext, WrittenFile};
use indexmap::IndexMap;
use placeholders::{Piece, Placeholder, TABLE_FORMATS};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use process::TERM_GRACE;

/// The kinds a node's ports may have, and their types.
pub fn kinds() -> Vec<(&'static str, ArtifactType)> {
    vec![
        ("table", ArtifactType::of::<DataFrame>()),
        ("json", ArtifactType::of::<serde_json::Value>()),
        ("file", ArtifactType::of::<File>()),
        ("dir", ArtifactType::of::<Dir>()),
    ]
}

/// Environment variables a command gets from nexusml's own environment, beyond the
/// node's `env`: nothing else reaches it (and none of these enters the key).
pub const PASSED_THROUGH: [&str; 5] = ["PATH", "HOME", "LANG", "TMPDIR", "USER"];

/// What went wrong running a command node.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("cannot prepare the work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write input `{port}` to {path}: {message}")]
    Input {
        port: String,
        path: PathBuf,
        message: String,
    },
    #[error("input `{port}` holds a {ty}, which a command cannot read")]
    InputType { port: String, ty: String },
    #[error("cannot start `{program}`: {source}{hint}")]
    Spawn {
        program: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("`{{dir}}`: this pipeline is not a file, so it has no directory")]
    NoDir,
    #[error("the command exited with code {code}")]
    Exit {
        code: i32,
        #[source]
        stderr: StderrTail,
    },
    #[error("the command was killed by signal {signal}")]
    Signalled {
        signal: i32,
        #[source]
        stderr: StderrTail,
    },
    #[error("the command was stopped: SIGTERM to its process group{}", if *.killed { ", then SIGKILL after the grace period" } else { "" })]
    Stopped { killed: bool },
    #[error("the command did not write {}", .missing.join(", "))]
    NotWritten { missing: Vec<String> },
    /// `detail` names the file.
    #[error("output `{port}` is not {what}: {detail}")]
    BadOutput {
        port: String,
        what: &'static str,
        detail: String,
    },
}

/// The last lines a command wrote to stderr, quoted in its failure.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_tail(.0))]
pub struct StderrTail(pub Vec<String>);

fn render_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        "it wrote nothing to stderr".into()
    } else {
        format!("last lines of stderr:\n{}", lines.join("\n"))
    }
}

/// A word of the command line or an environment value: text, or a number or boolean
/// (a whole-string `"${param}"` keeps its parameter's type), taken as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Word {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl Word {
    fn text(&self) -> String {
        match self {
            Word::Text(s) => s.clone(),
            Word::Integer(i) => i.to_string(),
            Word::Float(f) => f.to_string(),
            Word::Bool(b) => b.to_string(),
        }
    }
}

/// A command node's configuration: its node-level keys, with its ports' names and kinds,
/// which the graph carries into `with` (so the node's key covers all of it).
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CmdConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<Vec<Word>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sh: Option<String>,
    #[serde(default)]
    deps: Vec<PathBuf>,
    #[serde(default)]
    env: IndexMap<String, Word>,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    outputs: IndexMap<String, String>,
}

impl OpConfig for CmdConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional(
            "run",
            "[string]",
            "node key: the program and its arguments, run without a shell; a word equal to a `deps` \
             entry becomes that file's path",
        ),
        FieldDoc::optional(
            "sh",
            "string",
            "node key: a shell line (`sh -c`), instead of `run`",
        ),
        FieldDoc::optional(
            "deps",
            "[string]",
            "node key: files and directories the command reads; their content enters the key",
        ),
        FieldDoc::optional(
            "env",
            "table",
            "node key: environment variables (with PATH, HOME, LANG, LC_*, TMPDIR, USER: nothing else)",
        ),
        FieldDoc::optional("inputs", "[string]", "from `in`: the input ports"),
        FieldDoc::optional(
            "outputs",
            "table",
            "from `out`: each output port's kind (table, json, file, dir)",
        ),
    ];
}

/// The checked command.
struct Cmd {
    /// The program and its arguments (`sh -c LINE` for a shell line), as pieces.
    argv: Vec<Vec<Piece>>,
    /// `argv` is `sh -c LINE`: paths put into the line are quoted for the shell.
    shell: bool,
    env: Vec<(String, Vec<Piece>)>,
    deps: Vec<PathBuf>,
    /// Output port → kind, and the table format its placeholder asks for.
    outputs: IndexMap<String, (String, Option<String>)>,
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "cmd",
            "Run a program or shell line of your own, its inputs and outputs as files in the node's work \
             directory (see the README, \"Steps of your own\").",
            Cmd::new,
        )
        .configured_by_node()
        .ports_from_node(kinds())
        .stops_when_cancelled()
        .path_field(PathField::new("deps").resolving_words_in("run"))
        .linter(lint)
        .checking_node_inputs(check_inputs),
    );
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Cmd {
    fn new(c: CmdConfig) -> Result<Cmd, String> {
        let argv: Vec<String> = match (&c.run, &c.sh) {
            (Some(_), Some(_)) => return Err("give `run` or `sh`, not both".into()),
            (None, None) => {
                return Err(
                    "no command: give `run = [\"program\", \"arg\", …]` (run without a shell) or `sh = \"…\"` (a shell line)"
                        .into(),
                )
            }
            (Some(run), None) => {
                let words: Vec<String> = run.iter().map(Word::text).collect();
                if words.first().is_none_or(|w| w.is_empty()) {
                    return Err("`run` needs a program: `run = [\"python3\", \"step.py\"]`".into());
                }
                words
            }
            (None, Some(sh)) => {
                if sh.trim().is_empty() {
                    return Err("`sh` is empty".into());
                }
                vec!["sh".into(), "-c".into(), sh.clone()]
            }
        };
        let mut problems = Vec::new();
        let parse = |text: &str, problems: &mut Vec<String>| match placeholders::parse(text) {
            Ok(p) => p,
            Err(e) => {
                problems.push(e);
                vec![Piece::Text(text.to_string())]
            }
        };
        if argv.iter().any(|w| w.contains('\0')) {
            problems.push("a word of the command holds a NUL character".into());
        }
        let argv: Vec<Vec<Piece>> = argv.iter().map(|w| parse(w, &mut problems)).collect();
        let mut env = Vec::new();
        for (name, value) in &c.env {
            if !is_env_name(name) {
                problems.push(format!(
                    "`env.{name}` is not a variable name: letters, digits and `_`, not starting with a digit"
                ));
            }
            let text = value.text();
            if text.contains('\0') {
                problems.push(format!("`env.{name}` holds a NUL character"));
            }
            env.push((name.clone(), parse(&text, &mut problems)));
        }
        let mut outputs: IndexMap<String, (String, Option<String>)> = IndexMap::new();
        for (port, kind) in &c.outputs {
            outputs.insert(port.clone(), (kind.clone(), None));
        }
        let mut named: BTreeSet<String> = BTreeSet::new();
        let every = argv.iter().chain(env.iter().map(|(_, p)| p)).flatten();
        for piece in every {
            let Piece::Placeholder(p) = piece else { continue };
            match p {
                Placeholder::Dir => {}
                Placeholder::In { port, format } => {
                    if !c.inputs.contains(port) {
                        problems.push(format!("`{p}` names no input ({})", list(&c.inputs)));
                    } else if let Some(f) = format.as_deref().filter(|f| !TABLE_FORMATS.contains(f)) {
                        problems.push(format!("`{p}`: the format `{f}` is none of csv, arrow"));
                    }
                }
                Placeholder::Out { port, format } => {
                    let Some((kind, chosen)) = outputs.get_mut(port) else {
                        problems.push(format!(
                            "`{p}` names no output ({})",
                            list(&c.outputs.keys().cloned().collect::<Vec<_>>())
                        ));
                        continue;
                    };
                    named.insert(port.clone());
                    match (kind.as_str(), format.as_deref()) {
                        (_, None) => {}
                        ("table", Some(f)) if TABLE_FORMATS.contains(&f) => match chosen {
                            Some(c) if c != f => problems.push(format!(
                                "output `{port}` is named as {c} and as {f}: a command writes a table in one format"
                            )),
                            _ => *chosen = Some(f.to_string()),
                        },
                        ("table", Some(f)) => problems.push(format!("`{p}`: the format `{f}` is none of csv, arrow")),
                        (kind, Some(_)) => problems.push(format!(
                            "`{p}`: a {kind} output has no format (formats are for tables)"
                        )),
                    }
                }
            }
        }
        for (port, (kind, _)) in &outputs {
            // An empty kind is the graph's to report (`out = { x = "x" }`).
            if !kind.is_empty() && !kinds().iter().any(|(k, _)| k == kind) {
                problems.push(format!(
                    "output `{port}` has kind `{kind}`, which is none of table, json, file, dir"
                ));
            }
            if !named.contains(port) {
                problems.push(format!(
                    "output `{port}` is never named by a placeholder (`{{out.{port}}}`): the command cannot know where to write it"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Cmd {
            argv,
            shell: c.sh.is_some(),
            env,
            deps: c.deps,
            outputs,
        })
    }

    /// The input's file for a placeholder, relative to the work directory.
    fn input_path(port: &str, kind: &str, format: Option<&str>) -> PathBuf {
        match kind {
            "table" => PathBuf::from(format!("in/{port}.{}", format.unwrap_or("csv"))),
            "json" => PathBuf::from(format!("in/{port}.json")),
            _ => PathBuf::from(format!("in/{port}")),
        }
    }

    fn output_path(&self, port: &str) -> PathBuf {
        match self.outputs.get(port) {
            Some((kind, format)) if kind == "table" => {
                PathBuf::from(format!("out/{port}.{}", format.as_deref().unwrap_or("csv")))
            }
            Some((kind, _)) if kind == "json" => PathBuf::from(format!("out/{port}.json")),
            _ => PathBuf::from(format!("out/{port}")),
        }
    }

    /// Table formats each table input is named in (CSV when none).
    fn input_formats(&self, port: &str) -> Vec<String> {
        let mut formats: Vec<String> = self
            .argv
            .iter()
            .chain(self.env.iter().map(|(_, p)| p))
            .flatten()
            .filter_map(|piece| match piece {
                Piece::Placeholder(Placeholder::In { port: p, format }) if p == port => {
                    Some(format.clone().unwrap_or_else(|| "csv".into()))
                }
                _ => None,
            })
            .collect();
        formats.sort();
        formats.dedup();
        if formats.is_empty() {
            formats.push("csv".into());
        }
        formats
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "the node has none".into()
    } else {
        format!("it has {}", names.join(", "))
    }
}

/// `dag check` warnings: a program that is not there.
fn lint(c: CmdConfig) -> Vec<String> {
    let Some(program) = c.run.as_ref().and_then(|r| r.first()).map(Word::text) else {
        return Vec::new();
    };
    let path = Path::new(&program);
    if c.deps.iter().any(|d| d == path) {
        // A dep: `dag check` says when it is missing.
        return Vec::new();
    }
    if program.contains('/') {
        if path.is_absolute() {
            return if path.exists() {
                Vec::new()
            } else {
                vec![format!("program `{program}` does not exist")]
            };
        }
        return vec![format!(
            "program `{program}` is relative to the node's work directory (nodes/<id>/), where it is not: \
             list it in `deps` to take it from the pipeline file's directory"
        )];
    }
    if on_path(&program) {
        Vec::new()
    } else {
        vec![format!("program `{program}` is not found on PATH")]
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            std::fs::metadata(&p).is_ok_and(|m| {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    m.is_file() && m.permissions().mode() & 0o111 != 0
                }
                #[cfg(not(unix))]
                {
                    m.is_file()
                }
            })
        })
    })
}

/// `dag check` errors: a table format asked of an input that is no table.
fn check_inputs(c: &CmdConfig, inputs: &[(String, &'static str)]) -> Vec<String> {
    let Ok(cmd) = Cmd::new(CmdConfig {
        run: c.run.clone(),
        sh: c.sh.clone(),
        deps: c.deps.clone(),
        env: c.env.clone(),
        inputs: c.inputs.clone(),
        outputs: c.outputs.clone(),
    }) else {
        return Vec::new(); // building it reports the error
    };
    let mut problems = Vec::new();
    for piece in cmd.argv.iter().chain(cmd.env.iter().map(|(_, p)| p)).flatten() {
        if let Piece::Placeholder(
            p @ Placeholder::In {
                port,
                format: Some(_),
            },
        ) = piece
        {
            if let Some((_, kind)) = inputs.iter().find(|(q, _)| q == port) {
                if *kind != "table" {
                    let e = format!("`{p}`: input `{port}` is a {kind}, and formats are for tables");
                    if !problems.contains(&e) {
                        problems.push(e);
                    }
                }
            }
        }
    }
    problems
}

impl Op for Cmd {
    /// The `deps`, a directory as every file under it (sorted), so an edited, added or
    /// removed file changes the key.
    fn reads(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in &self.deps {
            if d.is_dir() {
                let mut files = Vec::new();
                let mut stack = vec![d.clone()];
                while let Some(dir) = stack.pop() {
                    let Ok(entries) = std::fs::read_dir(&dir) else {
                        continue;
                    };
                    for e in entries.flatten() {
                        let p = e.path();
                        match e.file_type() {
                            Ok(t) if t.is_dir() => stack.push(p),
                            Ok(_) => files.push(p),
                            Err(_) => {}
                        }
                    }
                }
                files.sort();
                out.extend(files);
            } else {
                out.push(d.clone());
            }
        }
        out
    }

    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        // Messages name files as the run directory was given; the command gets absolute
        // paths (it may change directory).
        let shown = ctx.run_dir().join("nodes").join(ctx.node_id());
        let work = std::path::absolute(&shown).map_err(|source| CmdError::WorkDir {
            path: shown.clone(),
            source,
        })?;
        fresh_work_dir(&work)?;
        let t0 = std::time::Instant::now();
        let mut input_kinds: Vec<(String, &'static str)> = Vec::new();
        for (port, _, slot) in ctx.inputs_untyped() {
            let kind = write_input(self, &work, port, &slot)?;
            input_kinds.push((port.to_string(), kind));
        }
        if !input_kinds.is_empty() {
            tracing::debug!(
                "inputs written in {}",
                crate::clock::format_ms(t0.elapsed().as_secs_f64() * 1e3)
            );
        }
        for (port, (kind, _)) in &self.outputs {
            if kind == "dir" {
                let dir = work.join(self.output_path(port));
                std::fs::create_dir_all(&dir).map_err(|source| CmdError::WorkDir { path: dir, source })?;
            }
        }
        let dir = ctx
            .pipeline_dir()
            .map(std::path::absolute)
            .transpose()
            .ok()
            .flatten();
        // Deps were resolved against the working directory; the command runs elsewhere.
        let deps: Vec<(String, OsString)> = self
            .deps
            .iter()
            .filter_map(|d| {
                Some((
                    d.to_str()?.to_string(),
                    std::path::absolute(d).ok()?.into_os_string(),
                ))
            })
            .collect();
        // In a shell line, a path is one quoted word whatever characters it holds.
        let expand = |pieces: &[Piece], quoted: bool| -> Result<OsString, CmdError> {
            let mut out = OsString::new();
            for piece in pieces {
                let path = match piece {
                    Piece::Text(t) => {
                        out.push(t);
                        continue;
                    }
                    Piece::Placeholder(Placeholder::Dir) => dir.clone().ok_or(CmdError::NoDir)?,
                    Piece::Placeholder(Placeholder::In { port, format }) => {
                        let kind = input_kinds
                            .iter()
                            .find(|(p, _)| p == port)
                            .map_or("table", |(_, k)| *k);
                        work.join(Cmd::input_path(port, kind, format.as_deref()))
                    }
                    Piece::Placeholder(Placeholder::Out { port, .. }) => work.join(self.output_path(port)),
                };
                if quoted {
                    out.push(shell_quote(&path.to_string_lossy()));
                } else {
                    out.push(path);
                }
            }
            Ok(out)
        };
        let mut argv = Vec::with_capacity(self.argv.len());
        for (i, word) in self.argv.iter().enumerate() {
            let w = expand(word, self.shell && i == 2)?;
            // A word that is exactly a dep is that dep, wherever the command runs.
            argv.push(match deps.iter().find(|(d, _)| std::ffi::OsStr::new(d) == w) {
                Some((_, abs)) => abs.clone(),
                None => w,
            });
        }
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| {
                k.to_str()
                    .is_some_and(|k| PASSED_THROUGH.contains(&k) || k.starts_with("LC_"))
            })
            .collect();
        for (name, value) in &self.env {
            let v = expand(value, false)?;
            env.retain(|(k, _)| k != name.as_str());
            env.push((name.into(), v));
        }
        let program = argv.remove(0);
        tracing::info!(
            "running {}{} in {}",
            program.to_string_lossy(),
            argv.iter()
                .map(|a| format!(" {}", a.to_string_lossy()))
                .collect::<String>(),
            work.display()
        );
        let spec = process::Program {
            program: program.clone(),
            args: argv,
            dir: &work,
            env,
            log: &work.join("command.log"),
        };
        let finished = process::run(&spec, ctx.cancel_flag()).map_err(|source| CmdError::Spawn {
            program: program.to_string_lossy().into_owned(),
            hint: if source.kind() == std::io::ErrorKind::NotFound {
                " (not found: is it on PATH, or listed in `deps`?)"
            } else {
                ""
            },
            source,
        })?;
        let took = crate::clock::format_ms(finished.elapsed.as_secs_f64() * 1e3);
        match finished.end {
            process::End::Exited(0) => tracing::info!("the command exited with code 0 after {took}"),
            process::End::Exited(code) => {
                ctx.set_exit_code(code);
                return Err(CmdError::Exit {
                    code,
                    stderr: StderrTail(finished.stderr_tail),
                }
                .into());
            }
            process::End::Signalled(signal) => {
                return Err(CmdError::Signalled {
                    signal,
                    stderr: StderrTail(finished.stderr_tail),
                }
                .into())
            }
            process::End::Stopped { killed } => return Err(CmdError::Stopped { killed }.into()),
        }
        let t0 = std::time::Instant::now();
        self.read_outputs(ctx, &shown)?;
        if !self.outputs.is_empty() {
            tracing::debug!(
                "outputs read in {}",
                crate::clock::format_ms(t0.elapsed().as_secs_f64() * 1e3)
            );
        }
        Ok(())
    }
}

impl Cmd {
    /// Every output read back and checked; all missing ones named at once.
    fn read_outputs(&self, ctx: &mut NodeContext<'_>, work: &Path) -> Result<(), OpError> {
        let missing: Vec<String> = self
            .outputs
            .keys()
            .filter(|port| !work.join(self.output_path(port)).exists())
            .map(|port| {
                format!(
                    "output `{port}` ({})",
                    work.join(self.output_path(port)).display()
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(CmdError::NotWritten { missing }.into());
        }
        for (port, (kind, format)) in &self.outputs {
            let path = work.join(self.output_path(port));
            let bad = |what: &'static str, message: String| CmdError::BadOutput {
                port: port.clone(),
                what,
                detail: format!("{}: {message}", path.display()),
            };
            match kind.as_str() {
                "table" => {
                    let frame = if format.as_deref() == Some("arrow") {
                        std::fs::File::open(&path)
                            .map_err(PolarsError::from)
                            .and_then(|f| IpcReader::new(f).finish())
                            .map_err(|e| bad("a table in Arrow IPC", e.to_string()))?
                    } else {
                        table::read_csv(&path, &IndexMap::new())
                            .map_err(|e| CmdError::BadOutput {
                                port: port.clone(),
                                what: "a CSV table",
                                detail: e.to_string(),
                            })?
                            .frame
                    };
                    tracing::info!(
                        "output `{port}`: {} rows × {} columns",
                        frame.height(),
                        frame.width()
                    );
                    ctx.output(port, frame)?;
                }
                "json" => {
                    let bytes = std::fs::read(&path).map_err(|e| bad("JSON", e.to_string()))?;
                    let value: serde_json::Value =
                        serde_json::from_slice(&bytes).map_err(|e| bad("JSON", e.to_string()))?;
                    ctx.output(port, value)?;
                }
                "file" => {
                    let file = File::read(&path).map_err(|e| bad("a file", e.to_string()))?;
                    ctx.record_file(WrittenFile {
                        path: path.clone(),
                        bytes: file.bytes.clone(),
                    });
                    ctx.output(port, file)?;
                }
                _ => {
                    let tree = Dir::read(&path).map_err(|e| bad("a directory", e.to_string()))?;
                    for (p, bytes) in tree.files(&path) {
                        ctx.record_file(WrittenFile { path: p, bytes });
                    }
                    ctx.output(port, tree)?;
                }
            }
        }
        Ok(())
    }
}

/// `it's` → `'it'\''s'`: one word for `sh`.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// An empty work directory with `in/` and `out/`: what an earlier attempt wrote is gone.
fn fresh_work_dir(work: &Path) -> Result<(), CmdError> {
    let err = |source| CmdError::WorkDir {
        path: work.to_path_buf(),
        source,
    };
    match std::fs::remove_dir_all(work) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(work.join("in")).map_err(err)?;
    std::fs::create_dir_all(work.join("out")).map_err(err)?;
    Ok(())
}

/// Write one input where its placeholders point; its kind.
fn write_input(cmd: &Cmd, work: &Path, port: &str, slot: &crate::op::Slot) -> Result<&'static str, CmdError> {
    let fail = |path: &Path, message: String| CmdError::Input {
        port: port.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let value = &slot.value;
    if let Some(frame) = value.downcast_ref::<DataFrame>() {
        for format in cmd.input_formats(port) {
            let path = work.join(Cmd::input_path(port, "table", Some(&format)));
            let mut frame = frame.clone();
            let written = std::fs::File::create(&path)
                .map_err(PolarsError::from)
                .and_then(|f| {
                    if format == "arrow" {
                        // The oldest Arrow layout (no string views), which every pyarrow
                        // reads. Slower to write than polars' own (0.4 s against 0.03 s for
                        // 100,000 rows), but polars reads its own back ten times slower.
                        IpcWriter::new(f)
                            .with_compat_level(CompatLevel::oldest())
                            .finish(&mut frame)
                    } else {
                        CsvWriter::new(f).finish(&mut frame)
                    }
                });
            written.map_err(|e| fail(&path, e.to_string()))?;
        }
        return Ok("table");
    }
    if let Some(json) = value.downcast_ref::<serde_json::Value>() {
        let path = work.join(Cmd::input_path(port, "json", None));
        let bytes = serde_json::to_vec_pretty(json).map_err(|e| fail(&path, e.to_string()))?;
        std::fs::write(&path, bytes).map_err(|e| fail(&path, e.to_string()))?;
        return Ok("json");
    }
    if let Some(file) = value.downcast_ref::<File>() {
        let path = work.join(Cmd::input_path(port, "file", None));
        std::fs::write(&path, &file.bytes).map_err(|e| fail(&path, e.to_string()))?;
        return Ok("file");
    }
    if let Some(tree) = value.downcast_ref::<Dir>() {
        let path = work.join(Cmd::input_path(port, "dir", None));
        tree.write_to(&path).map_err(|e| fail(&path, e.to_string()))?;
        return Ok("dir");
    }
    Err(CmdError::InputType {
        port: port.to_string(),
        ty: crate::op::short_type_name(slot.type_name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> CmdConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_command_is_checked_when_it_is_built() {
        let err = |text: &str| Cmd::new(config(text)).err().unwrap_or_default();
        assert!(err("").contains("no command"));
        assert!(err("run = [\"a\"]\nsh = \"b\"").contains("not both"));
        assert!(err("run = [\"\"]").contains("needs a program"));
        let e = err("run = [\"p\", \"{in.rwa}\"]\ninputs = [\"raw\"]");
        assert_eq!(e, "`{in.rwa}` names no input (it has raw)");
        let e = err("run = [\"p\"]\noutputs = { clean = \"table\" }");
        assert!(
            e.contains("output `clean` is never named by a placeholder"),
            "{e}"
        );
        let e = err("run = [\"p\", \"{out.c:csv}\", \"{out.c:arrow}\"]\noutputs = { c = \"table\" }");
        assert!(e.contains("named as csv and as arrow"), "{e}");
        let e = err("run = [\"p\", \"{out.j:arrow}\"]\noutputs = { j = \"json\" }");
        assert!(e.contains("a json output has no format"), "{e}");
        let e = err("run = [\"p\", \"{out.c:xlsx}\"]\noutputs = { c = \"table\" }");
        assert!(e.contains("none of csv, arrow"), "{e}");
        let e = err("sh = \"x\"\nenv = { \"1BAD\" = \"v\" }");
        assert!(e.contains("`env.1BAD` is not a variable name"), "{e}");
        let ok = Cmd::new(config(
            "run = [\"p\", \"{in.raw:arrow}\", \"{out.c:arrow}\", 3]\nenv = { N = 4 }\ninputs = [\"raw\"]\noutputs = { c = \"table\" }",
        ))
        .unwrap();
        assert_eq!(ok.output_path("c"), Path::new("out/c.arrow"));
        assert_eq!(ok.input_formats("raw"), ["arrow"]);
        assert_eq!(ok.argv[3], [Piece::Text("3".into())], "a number is a word");
    }

    #[test]
    fn a_table_format_on_an_input_that_is_no_table_is_refused() {
        let c = config("run = [\"p\", \"{in.j:arrow}\"]\ninputs = [\"j\"]");
        assert_eq!(
            check_inputs(&c, &[("j".into(), "json")]),
            ["`{in.j:arrow}`: input `j` is a json, and formats are for tables"]
        );
        assert!(check_inputs(&c, &[("j".into(), "table")]).is_empty());
    }

    #[test]
    fn a_missing_program_is_a_warning() {
        assert!(lint(config("run = [\"sh\"]")).is_empty());
        assert_eq!(
            lint(config("run = [\"no-such-program-nexusml\"]")),
            ["program `no-such-program-nexusml` is not found on PATH"]
        );
        assert!(lint(config("run = [\"./x.sh\"]"))[0].contains("list it in `deps`"));
    }
}
