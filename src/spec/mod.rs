//! The pipeline file: its TOML schema, parameters, `${name}` interpolation and overrides,
//! the character set of names and the rules of cluster resources.
//!
//! A [`PipelineSpec`] is the file as written. Turning it into a runnable graph (ops
//! resolved, edges drawn, everything checked) is the job of [`crate::graph`].

mod families;
pub mod names;
mod overrides;
mod params;
mod policy;
mod resources;

pub use families::{all_members, member_id, FamilyError, Member, MAX_MEMBERS};
pub use names::{check_name, NameError, MAX_NAME_LEN};
pub use overrides::Overrides;
pub use params::{
    apply_overrides, interpolate, parse_override, pieces, referenced_params, whole_reference,
    InterpolationError, ParamUse, Piece, Pieces, Unterminated,
};
pub use policy::{Backoff, Policy, PolicyError, RetryOn, MAX_RETRIES, POLICY_FIELDS};
pub use resources::{
    format_secs, parse_duration, slurm_clock, slurm_mem, slurm_partition, slurm_time, DurationError,
    ResourceError, Resources, MAX_CPUS, MAX_TIME_SECS,
};

use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Errors reading or parsing a pipeline file or its overrides.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read pipeline {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid override `{text}`: {reason}")]
    Override { text: String, reason: String },
    #[error("{given_by}: {} has no parameter `{name}`{help}", .file.display())]
    UnknownParam {
        given_by: String,
        file: PathBuf,
        name: String,
        help: String,
    },
    #[error("--params {}: {reason}", .path.display())]
    ParamsFile { path: PathBuf, reason: String },
}

/// `[pipeline]`: the header.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Defaults for every node's cluster resources.
    #[serde(default)]
    pub resources: Resources,
    /// Defaults for every node's retries and time limit ([`Policy`]).
    pub retries: Option<toml::Value>,
    pub retry_delay: Option<toml::Value>,
    pub backoff: Option<toml::Value>,
    pub retry_delay_max: Option<toml::Value>,
    pub jitter: Option<toml::Value>,
    pub retry_on: Option<toml::Value>,
    pub timeout: Option<toml::Value>,
}

impl Header {
    /// The policy defaults as written, as a table (`retries`, `timeout`, …).
    pub fn policy(&self) -> toml::Table {
        policy_table([
            &self.retries,
            &self.retry_delay,
            &self.backoff,
            &self.retry_delay_max,
            &self.jitter,
            &self.retry_on,
            &self.timeout,
        ])
    }
}

fn policy_table(values: [&Option<toml::Value>; 7]) -> toml::Table {
    POLICY_FIELDS
        .iter()
        .zip(values)
        .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
        .collect()
}

/// `[nodes.<id>]`: one step of the pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Registered op name, e.g. `csv.load`.
    pub op: String,
    /// The op's configuration; `${param}` references are resolved before the op sees it.
    #[serde(default)]
    pub with: toml::Table,
    /// Input port → artifact name.
    #[serde(default, rename = "in")]
    pub inputs: IndexMap<String, String>,
    /// Output port → artifact name.
    #[serde(default, rename = "out")]
    pub outputs: IndexMap<String, String>,
    /// Nodes that must finish first although no artifact flows between them.
    #[serde(default)]
    pub after: Vec<String>,
    /// Labels for `--tags` selection.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Cluster resources when the node runs as a job (over `[pipeline] resources`).
    #[serde(default)]
    pub resources: Resources,
    /// Nodes of one group share a cluster job (`--executor slurm`, `dag export`).
    #[serde(default)]
    pub group: Option<String>,
    /// A family: one member per combination of these axes' values (see `families`).
    #[serde(default)]
    pub matrix: Option<toml::Table>,
    /// Set on a family's members when the family is expanded.
    #[serde(skip)]
    pub member: Option<Member>,
    /// Retries and the time limit of each attempt (over `[pipeline]`'s): [`Policy`].
    pub retries: Option<toml::Value>,
    pub retry_delay: Option<toml::Value>,
    pub backoff: Option<toml::Value>,
    pub retry_delay_max: Option<toml::Value>,
    pub jitter: Option<toml::Value>,
    pub retry_on: Option<toml::Value>,
    pub timeout: Option<toml::Value>,
    /// A command node's program and its arguments, without a shell (`op = "cmd"`).
    pub run: Option<Vec<toml::Value>>,
    /// A command node's shell line (`sh -c`), instead of `run`.
    pub sh: Option<String>,
    /// Files and directories a command node reads: their content enters its key.
    pub deps: Option<Vec<String>>,
    /// Environment variables a command node sets (and only these, beyond a fixed few).
    pub env: Option<IndexMap<String, toml::Value>>,
    /// The type each output names before its artifact (`out = { clean = "table:clean" }`
    /// gives `clean → table`): for ops whose nodes declare their ports' types.
    #[serde(skip)]
    pub output_kinds: IndexMap<String, String>,
}

/// The node-level keys of a command node, in the order they are documented.
pub const COMMAND_KEYS: [&str; 4] = ["run", "sh", "deps", "env"];

impl NodeSpec {
    /// The node's policy fields as written, as a table (`retries`, `timeout`, …).
    pub fn policy(&self) -> toml::Table {
        policy_table([
            &self.retries,
            &self.retry_delay,
            &self.backoff,
            &self.retry_delay_max,
            &self.jitter,
            &self.retry_on,
            &self.timeout,
        ])
    }

    /// The command keys the node gives (`run`, `sh`, `deps`, `env`), as a table.
    pub fn command(&self) -> toml::Table {
        let mut t = toml::Table::new();
        if let Some(run) = &self.run {
            t.insert("run".into(), toml::Value::Array(run.clone()));
        }
        if let Some(sh) = &self.sh {
            t.insert("sh".into(), toml::Value::String(sh.clone()));
        }
        if let Some(deps) = &self.deps {
            t.insert(
                "deps".into(),
                toml::Value::Array(deps.iter().cloned().map(toml::Value::String).collect()),
            );
        }
        if let Some(env) = &self.env {
            t.insert(
                "env".into(),
                toml::Value::Table(env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            );
        }
        t
    }

    /// Split `kind:artifact` outputs into the artifact name and its kind. A `:` is
    /// never part of a name, so this is unambiguous for every node.
    fn split_output_kinds(&mut self) {
        for (port, artifact) in self.outputs.iter_mut() {
            if let Some((kind, name)) = artifact.split_once(':') {
                self.output_kinds.insert(port.clone(), kind.to_string());
                *artifact = name.to_string();
            }
        }
    }
}

/// A pipeline file as written.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// Where it was read from (or a label such as `<builtin train>`), used in every message.
    pub path: PathBuf,
    pub header: Header,
    pub params: toml::Table,
    /// Nodes in file order.
    pub nodes: IndexMap<String, NodeSpec>,
    /// The directory relative paths written in the file are taken from (the file's own
    /// directory; `None` for a pipeline that is not a file, such as a built-in one).
    pub base_dir: Option<PathBuf>,
    /// Parameters given on the command line or through the API (`--set`, `--params`):
    /// their relative paths are taken from the working directory.
    pub command_line_params: std::collections::BTreeSet<String>,
    /// Parameters the families read (set when they are expanded, members or none).
    pub family_params: std::collections::BTreeSet<String>,
    /// Family ids → their members' count (set when they are expanded).
    pub families: IndexMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    pipeline: Header,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    nodes: IndexMap<String, NodeSpec>,
}

impl PipelineSpec {
    /// Read and parse a pipeline file (a regular file within [`crate::fsx::PIPELINE`]).
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = crate::fsx::read_to_string(path, crate::fsx::PIPELINE).map_err(|e| SpecError::Read {
            path: path.to_path_buf(),
            source: e.into_io(),
        })?;
        let mut spec = Self::parse(&text, path)?;
        spec.base_dir = Some(match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
        Ok(spec)
    }

    /// Parse pipeline text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SpecError> {
        let mut raw: RawSpec = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        for node in raw.nodes.values_mut() {
            node.split_output_kinds();
        }
        Ok(PipelineSpec {
            path: path.to_path_buf(),
            header: raw.pipeline,
            params: raw.params,
            nodes: raw.nodes,
            base_dir: None,
            command_line_params: Default::default(),
            family_params: Default::default(),
            families: Default::default(),
        })
    }
}

/// Turn a toml error into `file:line:column: message`.
pub(crate) fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> SpecError {
    let (line, column) = match e.span() {
        Some(span) => crate::textpos::line_column(text, span.start),
        None => (1, 1),
    };
    SpecError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nodes_in_file_order() {
        let text = r#"
[pipeline]
name = "p"
[params]
n = 3
[nodes.b]
op = "util.noop"
out = { x = "a1" }
[nodes.a]
op = "util.noop"
in = { x = "a1" }
after = ["b"]
tags = ["t"]
"#;
        let spec = PipelineSpec::parse(text, Path::new("p.toml")).unwrap();
        assert_eq!(spec.header.name, "p");
        let ids: Vec<_> = spec.nodes.keys().cloned().collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(spec.nodes["a"].inputs["x"], "a1");
        assert_eq!(spec.nodes["a"].after, ["b"]);
    }

    #[test]
    fn parse_error_points_at_line_and_column() {
        let text = "[pipeline]\nname = \"p\"\n[nodes.a]\nop = \"x\"\nbogus = 1\n";
        let err = PipelineSpec::parse(text, Path::new("f.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("f.toml:5:1: "), "{msg}");
        assert!(msg.contains("unknown field `bogus`"), "{msg}");
    }
}
