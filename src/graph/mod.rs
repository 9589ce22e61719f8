//! The pipeline as a graph: ops resolved, edges drawn from artifacts and `after`, and
//! every problem found before anything runs.

mod index;
mod plan;
pub mod plot;
mod select;
mod writes;

pub use crate::suggest::{closest, did_you_mean};
pub use index::{ArtifactIx, NodeIx};
pub use plan::Plan;
pub use select::Selection;
pub use writes::{Reserved, RESERVED};

use crate::op::{ArtifactType, Op, Registry};
use crate::spec::names::printable;
use crate::spec::{check_name, interpolate, NameError, ParamUse, PipelineSpec};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a pipeline, naming its file and node.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub node: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if let Some(node) = &self.node {
            write!(f, ": node `{}`", printable(node))?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// A pipeline that cannot run, with every reason at once.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{}", render_invalid(.file, .errors))]
    Invalid { file: PathBuf, errors: Vec<Diagnostic> },
}

fn render_invalid(file: &Path, errors: &[Diagnostic]) -> String {
    let mut s = format!(
        "{} is not a valid pipeline ({} error{}):",
        file.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        s.push_str("\n  ");
        s.push_str(&e.to_string().replace('\n', "\n  "));
    }
    s
}

/// A port of a node bound to an artifact.
#[derive(Debug, Clone)]
pub struct Binding {
    pub port: String,
    pub artifact: ArtifactIx,
    /// The port's type (for outputs, also the artifact's).
    pub ty: ArtifactType,
}

/// A node ready to run.
pub struct Node {
    pub id: String,
    pub op_name: String,
    pub op: Arc<dyn Op>,
    /// The `with` table after interpolation.
    pub with: toml::Table,
    /// The `with` table as written (`"${trees}"`), to name parameters in reasons.
    pub raw_with: toml::Table,
    /// `with` as canonical JSON (sorted keys): what the node's key hashes.
    pub canonical_with: String,
    /// The op's behaviour version and whether it reads every parameter (for its key).
    pub op_version: u32,
    pub reads_params: bool,
    /// The op derives its randomness from the node id: the id enters the key.
    pub seeded_by_node: bool,
    pub inputs: Vec<Binding>,
    pub outputs: Vec<Binding>,
    /// Output ports the op declares but the pipeline leaves unbound: writes are dropped.
    pub discarded_outputs: Vec<String>,
    /// Indices of nodes named in `after`.
    pub after: Vec<NodeIx>,
    pub tags: Vec<String>,
    /// Cluster resources (the node's own over the pipeline's defaults).
    pub resources: crate::spec::Resources,
    /// The node asks for resources of its own (it keeps a cluster job of its own).
    pub own_resources: bool,
    /// The cluster job group it was put in (`group = "…"`).
    pub group: Option<String>,
    /// Its family and place there, for a family's member.
    pub member: Option<crate::spec::Member>,
    /// Retries and the time limit of each attempt (the node's own over the pipeline's).
    pub policy: crate::spec::Policy,
    /// The op stops within a second when cancelled (a timeout cannot stop the others).
    pub stops_when_cancelled: bool,
}

/// A named value flowing along edges; produced by exactly one node.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    pub producer: NodeIx,
    pub ty: ArtifactType,
    pub consumers: Vec<NodeIx>,
}

/// What an edge stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {
    /// Artifacts (indices) flowing from producer to consumer.
    Data(Vec<ArtifactIx>),
    /// An `after` ordering.
    Order,
}

/// A validated pipeline: acyclic, every input produced once, every type matching.
pub struct Pipeline {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The directory relative paths in the file are taken from (`None`: not a file).
    pub base_dir: Option<PathBuf>,
    /// Parameters after overrides.
    pub params: toml::Table,
    pub nodes: Vec<Node>,
    pub artifacts: Vec<Artifact>,
    pub warnings: Vec<Diagnostic>,
    /// Families (nodes written with a `matrix`) → their members' count.
    pub families: indexmap::IndexMap<String, usize>,
    /// Node `i` is `NodeIndex(i)`.
    graph: DiGraph<(), Edge>,
    successors: Vec<Vec<NodeIx>>,
    predecessors: Vec<Vec<NodeIx>>,
}

impl Pipeline {
    /// Resolve ops, draw edges and validate. All errors are collected and returned together.
    pub fn build(spec: &PipelineSpec, registry: &Registry) -> Result<Pipeline, GraphError> {
        // Families first: every later check sees their members.
        let expanded = spec.expand_families().map_err(|errors| GraphError::Invalid {
            file: spec.path.clone(),
            errors: errors
                .into_iter()
                .map(|e| Diagnostic {
                    severity: Severity::Error,
                    file: spec.path.clone(),
                    node: Some(e.node),
                    message: e.message,
                    help: None,
                })
                .collect(),
        })?;
        Builder::new(expanded.as_ref().unwrap_or(spec), registry).build()
    }

    pub fn node_index(&self, id: &str) -> Option<NodeIx> {
        self.nodes.iter().position(|n| n.id == id).map(NodeIx)
    }

    /// The artifact named `name`.
    pub fn artifact_index(&self, name: &str) -> Option<ArtifactIx> {
        self.artifacts.iter().position(|a| a.name == name).map(ArtifactIx)
    }

    /// Every node with its index, in file order.
    pub fn indexed_nodes(&self) -> impl DoubleEndedIterator<Item = (NodeIx, &Node)> + ExactSizeIterator {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeIx(i), n))
    }

    /// Distinct nodes that must finish before node `i` starts.
    pub fn predecessors(&self, i: NodeIx) -> &[NodeIx] {
        &self.predecessors[i.0]
    }

    /// Distinct nodes that wait for node `i`.
    pub fn successors(&self, i: NodeIx) -> &[NodeIx] {
        &self.successors[i.0]
    }

    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Every edge as (from, to, what it carries).
    pub fn edges(&self) -> impl Iterator<Item = (NodeIx, NodeIx, &Edge)> {
        self.graph
            .raw_edges()
            .iter()
            .map(|e| (NodeIx(e.source().index()), NodeIx(e.target().index()), &e.weight))
    }

    /// The picture of this pipeline, optionally with a run's statuses and durations.
    pub fn plot_graph(&self, run: Option<&HashMap<String, (plot::PlotStatus, f64)>>) -> plot::PlotGraph {
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                let state = run.and_then(|r| r.get(&n.id));
                plot::PlotNode {
                    id: n.id.clone(),
                    op: n.op_name.clone(),
                    status: state.map(|s| s.0),
                    duration_ms: state.map(|s| s.1),
                }
            })
            .collect();
        let edges = self
            .edges()
            .map(|(from, to, e)| match e {
                Edge::Data(arts) => plot::PlotEdge {
                    from: from.0,
                    to: to.0,
                    label: arts
                        .iter()
                        .map(|&a| self.artifacts[a].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    ordering_only: false,
                },
                Edge::Order => plot::PlotEdge {
                    from: from.0,
                    to: to.0,
                    label: String::new(),
                    ordering_only: true,
                },
            })
            .collect();
        plot::PlotGraph {
            title: self.name.clone(),
            nodes,
            edges,
        }
    }
}

/// The pipeline being built: each pass is one method, and each adds what it learns
/// (resolved ops, artifacts, bindings, edges) and every problem it finds, so all of
/// them are reported together.
struct Builder<'s> {
    spec: &'s PipelineSpec,
    registry: &'s Registry,
    /// Node ids in file order; node `i` is `ids[i]`.
    ids: Vec<&'s str>,
    index_of: HashMap<&'s str, NodeIx>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    usage: ParamUse,
    /// Each node's op and `with` after interpolation and path resolution; `None` when
    /// either failed (the error is recorded).
    resolved: Vec<Option<(Arc<dyn Op>, toml::Table)>>,
    /// Each node's `with` as written, with a command node's keys carried in.
    raw_with: Vec<toml::Table>,
    policies: Vec<crate::spec::Policy>,
    artifacts: Vec<Artifact>,
    artifact_index: HashMap<&'s str, ArtifactIx>,
    outputs: Vec<Vec<Binding>>,
    discarded: Vec<Vec<String>>,
    inputs: Vec<Vec<Binding>>,
    after: Vec<Vec<NodeIx>>,
    graph: DiGraph<(), Edge>,
}

impl<'s> Builder<'s> {
    fn new(spec: &'s PipelineSpec, registry: &'s Registry) -> Self {
        let ids: Vec<&str> = spec.nodes.keys().map(String::as_str).collect();
        let n = ids.len();
        Builder {
            spec,
            registry,
            index_of: ids.iter().enumerate().map(|(i, id)| (*id, NodeIx(i))).collect(),
            ids,
            errors: Vec::new(),
            warnings: Vec::new(),
            usage: ParamUse::default(),
            resolved: Vec::with_capacity(n),
            raw_with: Vec::with_capacity(n),
            policies: vec![crate::spec::Policy::default(); n],
            artifacts: Vec::new(),
            artifact_index: HashMap::new(),
            outputs: vec![Vec::new(); n],
            discarded: vec![Vec::new(); n],
            inputs: vec![Vec::new(); n],
            after: vec![Vec::new(); n],
            graph: DiGraph::with_capacity(n, n),
        }
    }

    fn error(&mut self, node: Option<&str>, message: String, help: Option<String>) {
        self.errors.push(Diagnostic {
            severity: Severity::Error,
            file: self.spec.path.clone(),
            node: node.map(str::to_string),
            message,
            help,
        });
    }

    fn warn(&mut self, node: Option<&str>, message: String, help: Option<String>) {
        self.warnings.push(Diagnostic {
            severity: Severity::Warning,
            file: self.spec.path.clone(),
            node: node.map(str::to_string),
            message,
            help,
        });
    }

    fn build(mut self) -> Result<Pipeline, GraphError> {
        self.check_header();
        self.check_names();
        self.resolve_ops();
        self.check_resources();
        self.check_policies();
        self.bind_outputs();
        self.bind_inputs();
        self.resolve_after();
        self.draw_edges();
        self.check_cycles();
        self.check_run_dir_writes();
        self.warn_unused_params();
        if !self.errors.is_empty() {
            return Err(GraphError::Invalid {
                file: self.spec.path.clone(),
                errors: self.errors,
            });
        }
        Ok(self.assemble())
    }

    /// A name, and a pipeline with at least one node.
    fn check_header(&mut self) {
        if self.spec.header.name.trim().is_empty() {
            self.error(None, "`[pipeline] name` is empty".into(), None);
        }
        if self.spec.nodes.is_empty() {
            self.error(
                None,
                "the pipeline has no nodes".into(),
                Some("add a `[nodes.<id>]` table with an `op`".into()),
            );
        }
    }

    /// Node ids, artifact names and port names keep to the character set of
    /// [`crate::spec::names`]: they reach file names, shell scripts and pictures.
    fn check_names(&mut self) {
        let spec = self.spec;
        for (id, node) in &spec.nodes {
            // A node with an empty id is named by the message, not the node column.
            let owner = (!id.is_empty()).then_some(id.as_str());
            let on = |what: String| match owner {
                Some(_) => what,
                None => format!("in the node with the empty id (`[nodes.\"\"]`): {what}"),
            };
            match check_name(id) {
                Ok(()) => {}
                Err(NameError::Empty) => self.name_error(None, "a node id is empty (`[nodes.\"\"]`)".into()),
                Err(e) => self.name_error(owner, format!("the node id {e}")),
            }
            if let Some(Err(e)) = node.group.as_deref().map(check_name) {
                self.name_error(owner, on(format!("the group name {e}")));
            }
            for (direction, ports) in [("in", &node.inputs), ("out", &node.outputs)] {
                for (port, artifact) in ports {
                    if let Err(e) = check_name(port) {
                        self.name_error(
                            owner,
                            on(format!("port name `{}` in `{direction}` {e}", printable(port))),
                        );
                    }
                    if let Err(e) = check_name(artifact) {
                        self.name_error(
                            owner,
                            on(format!(
                                "artifact name `{}` of `{direction}.{}` {e}",
                                printable(artifact),
                                printable(port)
                            )),
                        );
                    }
                }
            }
        }
    }

    fn name_error(&mut self, node: Option<&str>, message: String) {
        self.error(node, message, Some(crate::spec::names::name_rule()));
    }

    /// Each node's op, its `with` interpolated, paths resolved, then built
    /// (which checks the configuration).
    fn resolve_ops(&mut self) {
        let spec = self.spec;
        for (id, node) in &spec.nodes {
            let raw = self.written_with(id, node);
            let resolved = self.resolve_op(id, node, &raw);
            self.resolved.push(resolved);
            self.raw_with.push(raw);
        }
    }

    /// The node's `with` as written. A command node (an op configured by the node) gives
    /// its keys (`run`, `sh`, `deps`, `env`) and its ports' names and kinds instead, so
    /// they enter its key like any configuration; those keys on another node are errors.
    fn written_with(&mut self, id: &str, node: &crate::spec::NodeSpec) -> toml::Table {
        let command = node.command();
        let op = self.registry.get(&node.op);
        if !op.is_some_and(|op| op.config_from_node) {
            if !command.is_empty() {
                let keys: Vec<String> = command.keys().map(|k| format!("`{k}`")).collect();
                self.error(
                    Some(id),
                    format!(
                        "{} {} only for command nodes (`op = \"cmd\"`), not for `{}`",
                        keys.join(", "),
                        if keys.len() == 1 { "is" } else { "are" },
                        node.op
                    ),
                    None,
                );
            }
            return node.with.clone();
        }
        if !node.with.is_empty() {
            self.error(
                Some(id),
                format!(
                    "a `{}` node takes no `with`: its command is the node's own `run` or `sh`, `deps` and `env`",
                    node.op
                ),
                Some("move the keys up to the node: `run = [\"python3\", \"step.py\"]`".into()),
            );
        }
        let mut with = command;
        with.insert(
            "inputs".into(),
            toml::Value::Array(node.inputs.keys().cloned().map(toml::Value::String).collect()),
        );
        with.insert(
            "outputs".into(),
            toml::Value::Table(
                node.outputs
                    .keys()
                    .map(|port| {
                        let kind = node.output_kinds.get(port).cloned().unwrap_or_default();
                        (port.clone(), toml::Value::String(kind))
                    })
                    .collect(),
            ),
        );
        with
    }

    /// Cluster resources, as Slurm reads them: the pipeline's defaults and each node's own.
    fn check_resources(&mut self) {
        let spec = self.spec;
        for e in spec.header.resources.check() {
            self.error(None, format!("in `[pipeline] resources`: {e}"), None);
        }
        for (id, node) in &spec.nodes {
            for e in node.resources.check() {
                self.error(Some(id), format!("in `resources`: {e}"), None);
            }
        }
    }

    /// Retries and time limits: the pipeline's defaults and each node's own, `${…}`
    /// resolved, every value checked; warnings where a value cannot do what it says.
    fn check_policies(&mut self) {
        let spec = self.spec;
        let defaults = match interpolate(
            &toml::Value::Table(spec.header.policy()),
            &spec.params,
            &mut self.usage,
        ) {
            Ok(toml::Value::Table(t)) => t,
            Ok(_) => unreachable!("interpolating a table yields a table"),
            Err(e) => {
                self.error(None, format!("in `[pipeline]`: {e}"), None);
                return;
            }
        };
        // Bad defaults are said once; the nodes' own values are still checked.
        let defaults = match crate::spec::Policy::resolve(&toml::Table::new(), &defaults) {
            Ok(_) => defaults,
            Err(errors) => {
                for e in errors {
                    self.error(None, format!("in `[pipeline]`: {e}"), None);
                }
                toml::Table::new()
            }
        };
        for (i, (id, node)) in spec.nodes.iter().enumerate() {
            let own = match interpolate(&toml::Value::Table(node.policy()), &spec.params, &mut self.usage) {
                Ok(toml::Value::Table(t)) => t,
                Ok(_) => unreachable!("interpolating a table yields a table"),
                Err(e) => {
                    self.error(Some(id), format!("in its retry policy: {e}"), None);
                    continue;
                }
            };
            let policy = match crate::spec::Policy::resolve(&own, &defaults) {
                Ok(p) => p,
                Err(errors) => {
                    for e in errors {
                        self.error(Some(id), e.to_string(), None);
                    }
                    continue;
                }
            };
            let op = self.registry.get(&node.op);
            let command = op.is_some_and(|op| op.node_ports.is_some());
            if policy.retries > 0 && !policy.retry_on.any && !policy.retry_on.codes.is_empty() && !command {
                let then = if policy.retry_on.timeout {
                    "it is retried after a timeout only"
                } else {
                    "it is never retried"
                };
                self.warn(
                    Some(id),
                    format!(
                        "`retry_on` lists exit codes, which only command nodes have: `{}` fails without one, so {then}",
                        node.op
                    ),
                    None,
                );
            }
            if let (Some(limit), Some(op)) = (policy.timeout, op) {
                if !op.stops_when_cancelled {
                    self.warn(
                        Some(id),
                        format!(
                            "`{}` cannot stop part-way: past its timeout of {} it runs to its end and then fails",
                            node.op,
                            crate::spec::format_secs(limit.as_secs())
                        ),
                        Some("timeouts stop `cmd` nodes, `model.train_forest` and `text.tfidf` within a second".into()),
                    );
                }
            }
            self.policies[i] = policy;
        }
    }

    /// Artifacts, exactly one producer each; output port names and types
    /// checked against the op.
    fn bind_outputs(&mut self) {
        let spec = self.spec;
        for (i, (id, node)) in spec.nodes.iter().enumerate() {
            let op = self.registry.get(&node.op);
            for (port, name) in &node.outputs {
                let kind = node.output_kinds.get(port);
                let ty = match (op, kind) {
                    (Some(op), _) if op.node_ports.is_some() => {
                        match self.node_output_type(id, op, port, kind) {
                            Some(ty) => ty,
                            None => continue,
                        }
                    }
                    (Some(_), Some(kind)) => {
                        self.error(
                            Some(id),
                            format!(
                                "output `{port}` names a kind (`{kind}:{name}`), but only command nodes declare their outputs' types"
                            ),
                            Some(format!("write `{port} = \"{name}\"`: `{}` says what it writes", node.op)),
                        );
                        continue;
                    }
                    (Some(op), None) => match op.output_port(port) {
                        Some(ty) => ty,
                        None => {
                            let known: Vec<&str> = op.outputs.iter().map(|p| p.name).collect();
                            self.error(
                                Some(id),
                                format!("op `{}` has no output port `{port}`", node.op),
                                Some(port_help(port, &known)),
                            );
                            continue;
                        }
                    },
                    (None, _) => ArtifactType::ANY,
                };
                if let Some(&a) = self.artifact_index.get(name.as_str()) {
                    let other = self.ids[self.artifacts[a].producer.0];
                    self.error(
                        Some(id),
                        format!("artifact `{name}` is produced by both `{other}` and `{id}`"),
                        Some("every artifact has exactly one producer: rename one of the outputs".into()),
                    );
                    continue;
                }
                let a = ArtifactIx(self.artifacts.len());
                self.artifact_index.insert(name.as_str(), a);
                self.outputs[i].push(Binding {
                    port: port.clone(),
                    artifact: a,
                    ty,
                });
                self.artifacts.push(Artifact {
                    name: name.clone(),
                    producer: NodeIx(i),
                    ty,
                    consumers: Vec::new(),
                });
            }
            let Some(op) = op else { continue };
            for p in &op.outputs {
                if node.outputs.contains_key(p.name) {
                    continue;
                }
                self.discarded[i].push(p.name.to_string());
                if !p.optional {
                    // An unbound output is dropped; say so, since it is often a typo.
                    self.warn(
                        Some(id),
                        format!(
                            "output `{}` of `{}` is not bound to an artifact; its value is discarded",
                            p.name, node.op
                        ),
                        None,
                    );
                }
            }
        }
    }

    /// The type of a command node's output `port` from its kind (`table:clean`).
    fn node_output_type(
        &mut self,
        id: &str,
        op: &crate::op::OpSpec,
        port: &str,
        kind: Option<&String>,
    ) -> Option<ArtifactType> {
        let kinds: Vec<&str> = op.node_ports.iter().flatten().map(|(k, _)| *k).collect();
        let example = format!("`{port} = \"table:{port}\"`");
        let Some(kind) = kind else {
            self.error(
                Some(id),
                format!(
                    "output `{port}` needs a kind before its artifact: {}",
                    kinds
                        .iter()
                        .map(|k| format!("`{k}:…`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(format!("for example {example}")),
            );
            return None;
        };
        match op.node_port_kind(kind) {
            Some(ty) => Some(ty),
            None => {
                let help = did_you_mean(kind, kinds.iter().copied())
                    .unwrap_or_else(|| format!("the kinds are {}", kinds.join(", ")));
                self.error(
                    Some(id),
                    format!(
                        "output `{port}` has kind `{kind}`, which is none of {}",
                        kinds.join(", ")
                    ),
                    Some(help),
                );
                None
            }
        }
    }

    /// Each input names a produced artifact of a fitting type; every required
    /// input is bound.
    fn bind_inputs(&mut self) {
        let spec = self.spec;
        for (i, (id, node)) in spec.nodes.iter().enumerate() {
            let op = self.registry.get(&node.op);
            for (port, name) in &node.inputs {
                let port_ty = match op {
                    // A command node's input takes its producer's type, checked below.
                    Some(op) if op.node_ports.is_some() => ArtifactType::ANY,
                    Some(op) => match op.input_port(port) {
                        Some(ty) => ty,
                        None => {
                            let known: Vec<&str> = op.inputs.iter().map(|p| p.name).collect();
                            self.error(
                                Some(id),
                                format!("op `{}` has no input port `{port}`", node.op),
                                Some(port_help(port, &known)),
                            );
                            continue;
                        }
                    },
                    None => ArtifactType::ANY,
                };
                let Some(&a) = self.artifact_index.get(name.as_str()) else {
                    let help = did_you_mean(name, self.artifact_index.keys().copied())
                        .or_else(|| Some("no node lists it in `out`".into()));
                    self.error(
                        Some(id),
                        format!("input `{port}` reads artifact `{name}`, which no node produces"),
                        help,
                    );
                    continue;
                };
                let art = &self.artifacts[a];
                if art.producer == NodeIx(i) {
                    self.error(
                        Some(id),
                        format!("input `{port}` reads `{name}`, which this node produces itself"),
                        None,
                    );
                    continue;
                }
                if !art.ty.fits(&port_ty) {
                    let message = format!(
                        "input `{port}` expects {port_ty}, but artifact `{name}` from node `{}` is {}",
                        self.ids[art.producer.0], art.ty
                    );
                    self.error(Some(id), message, None);
                    continue;
                }
                let port_ty = match op.and_then(|op| op.node_ports.as_ref()) {
                    Some(kinds) => match kinds
                        .iter()
                        .find(|(_, t)| t.type_id().is_some() && t.type_id() == art.ty.type_id())
                    {
                        Some((_, t)) => *t,
                        None => {
                            let list: Vec<String> = kinds.iter().map(|(k, t)| format!("{k} ({t})")).collect();
                            let message = format!(
                                "input `{port}` reads artifact `{name}` from node `{}`, a {}, which cannot cross into a command: \
                                 commands read {}",
                                self.ids[art.producer.0],
                                art.ty,
                                list.join(", ")
                            );
                            self.error(Some(id), message, None);
                            continue;
                        }
                    },
                    None => port_ty,
                };
                self.artifacts[a].consumers.push(NodeIx(i));
                self.inputs[i].push(Binding {
                    port: port.clone(),
                    artifact: a,
                    ty: port_ty,
                });
            }
            let Some(op) = op else { continue };
            if let (Some(kinds), Some((_, with))) = (&op.node_ports, &self.resolved[i]) {
                let bound: Vec<(String, &'static str)> = self.inputs[i]
                    .iter()
                    .filter_map(|b| {
                        let (kind, _) = kinds.iter().find(|(_, t)| t.type_id() == b.ty.type_id())?;
                        Some((b.port.clone(), *kind))
                    })
                    .collect();
                for e in op.check_node_inputs(with, &bound) {
                    self.error(Some(id), format!("invalid command: {e}"), None);
                }
            }
            for p in op.inputs.iter().filter(|p| !p.optional) {
                if !node.inputs.contains_key(p.name) {
                    self.error(
                        Some(id),
                        format!(
                            "required input `{}` ({}) of `{}` is not bound",
                            p.name, p.ty, node.op
                        ),
                        Some(format!("add `in = {{ {} = \"<artifact>\" }}`", p.name)),
                    );
                }
            }
        }
    }

    /// `after` names known nodes.
    fn resolve_after(&mut self) {
        let spec = self.spec;
        for (i, (id, node)) in spec.nodes.iter().enumerate() {
            for target in &node.after {
                match self.index_of.get(target.as_str()) {
                    Some(&t) => self.after[i].push(t),
                    None => {
                        let help = did_you_mean(target, self.ids.iter().copied());
                        self.error(Some(id), format!("`after` names unknown node `{target}`"), help);
                    }
                }
            }
        }
    }

    /// One data edge per (producer, consumer) pair carrying its artifacts, in
    /// the order the inputs name them, then the `after` edges not already drawn.
    fn draw_edges(&mut self) {
        for _ in &self.ids {
            self.graph.add_node(());
        }
        let mut data_edges: HashMap<(NodeIx, NodeIx), Vec<ArtifactIx>> = HashMap::new();
        let mut edge_order: Vec<(NodeIx, NodeIx)> = Vec::new();
        for (i, ins) in self.inputs.iter().enumerate() {
            for b in ins {
                let key = (self.artifacts[b.artifact].producer, NodeIx(i));
                let arts = data_edges.entry(key).or_insert_with(|| {
                    edge_order.push(key);
                    Vec::new()
                });
                if !arts.contains(&b.artifact) {
                    arts.push(b.artifact);
                }
            }
        }
        for key in edge_order {
            let arts = data_edges.remove(&key).unwrap_or_default();
            self.graph.add_edge(
                NodeIndex::new(key.0 .0),
                NodeIndex::new(key.1 .0),
                Edge::Data(arts),
            );
        }
        for (i, targets) in self.after.iter().enumerate() {
            for &t in targets {
                if self
                    .graph
                    .find_edge(NodeIndex::new(t.0), NodeIndex::new(i))
                    .is_none()
                {
                    self.graph
                        .add_edge(NodeIndex::new(t.0), NodeIndex::new(i), Edge::Order);
                }
            }
        }
    }

    /// The graph is acyclic; each cycle is printed as a path.
    fn check_cycles(&mut self) {
        for cycle in find_cycles(&self.graph) {
            let mut path: Vec<&str> = cycle.iter().map(|&i| self.ids[i]).collect();
            path.push(self.ids[cycle[0]]);
            self.error(
                Some(self.ids[cycle[0]]),
                format!("cycle: {}", path.join(" → ")),
                Some("a pipeline must be acyclic: remove one of these edges (an input or an `after`)".into()),
            );
        }
    }

    /// No node writes a file the engine writes in the run directory, and no two
    /// nodes write one path (or one inside the other's directory).
    fn check_run_dir_writes(&mut self) {
        let spec = self.spec;
        let writes: Vec<Vec<crate::op::RunDirWrite>> = spec
            .nodes
            .values()
            .zip(&self.resolved)
            .map(|(node, resolved)| match (resolved, self.registry.get(&node.op)) {
                (Some((_, with)), Some(op)) => op.run_dir_writes(with),
                _ => Vec::new(),
            })
            .collect();
        let (overlaps, not_places) = writes::overlaps_of(&writes);
        for n in not_places {
            let (id, op) = (self.ids[n.node], &spec.nodes[n.node.0].op);
            self.error(
                Some(id),
                format!("`{op}` writes `{}`, which is the run directory itself", n.write),
                Some("name a file inside it".into()),
            );
        }
        for o in overlaps {
            let (id, op) = (self.ids[o.node], &spec.nodes[o.node.0].op);
            let (message, help) = match o.other {
                writes::Owner::Engine(r) => (
                    format!(
                        "`{op}` writes `{}` in the run directory, where the engine writes `{}` ({})",
                        o.write,
                        o.other_write,
                        writes::RESERVED[r].what
                    ),
                    format!(
                        "choose another name; the engine's own are {}",
                        writes::RESERVED
                            .iter()
                            .map(|r| format!("`{}{}`", r.path, if r.dir { "/" } else { "" }))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                writes::Owner::Node(other) if other == o.node => (
                    if o.write == o.other_write {
                        format!("`{op}` writes `{}` in the run directory twice: the second would overwrite the first", o.write)
                    } else {
                        format!(
                            "`{op}` writes `{}` in the run directory, and `{}` too: one would overwrite the other",
                            o.write, o.other_write
                        )
                    },
                    "give each file its own name".to_string(),
                ),
                writes::Owner::Node(other) => (
                    format!(
                        "`{op}` writes `{}` in the run directory, and node `{}` (`{}`) writes `{}`: one would \
                         overwrite the other",
                        o.write, self.ids[other], spec.nodes[other.0].op, o.other_write
                    ),
                    "give each node its own file or directory (`file`, `dir`, `path`)".to_string(),
                ),
            };
            self.error(Some(id), message, Some(help));
        }
    }

    /// Parameters nobody reads are a warning.
    fn warn_unused_params(&mut self) {
        let spec = self.spec;
        for name in spec.params.keys() {
            if !self.usage.used.contains(name) && !spec.family_params.contains(name) {
                self.warn(None, format!("parameter `{name}` is never referenced"), None);
            }
        }
    }

    /// The validated pipeline, from what the passes found (called with no errors).
    fn assemble(self) -> Pipeline {
        let spec = self.spec;
        let registry = self.registry;
        let n = self.ids.len();
        let mut successors = vec![Vec::new(); n];
        let mut predecessors = vec![Vec::new(); n];
        for e in self.graph.raw_edges() {
            successors[e.source().index()].push(NodeIx(e.target().index()));
            predecessors[e.target().index()].push(NodeIx(e.source().index()));
        }
        for list in successors.iter_mut().chain(predecessors.iter_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        let nodes = spec
            .nodes
            .iter()
            .zip(self.resolved)
            .zip(self.inputs.into_iter().zip(self.outputs).zip(self.discarded))
            .zip(self.after.into_iter().zip(self.raw_with).zip(self.policies))
            .map(
                |((((id, node), op), ((ins, outs), discarded)), ((after, raw_with), policy))| {
                    let (op, with) = op.expect("no errors means every op resolved");
                    let op_spec = registry.get(&node.op);
                    // Through serde_json's key-sorted map: key order in the file does not matter.
                    let canonical_with = serde_json::to_value(&with)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    Node {
                        id: id.clone(),
                        op_name: node.op.clone(),
                        op,
                        with,
                        canonical_with,
                        raw_with,
                        op_version: op_spec.map_or(1, |s| s.version),
                        reads_params: op_spec.is_some_and(|s| s.reads_params),
                        seeded_by_node: op_spec.is_some_and(|s| s.seeded_by_node),
                        inputs: ins,
                        outputs: outs,
                        discarded_outputs: discarded,
                        after,
                        tags: node.tags.clone(),
                        resources: node.resources.or(&spec.header.resources),
                        own_resources: node.resources != crate::spec::Resources::default(),
                        group: node.group.clone(),
                        member: node.member.clone(),
                        policy,
                        stops_when_cancelled: op_spec.is_some_and(|s| s.stops_when_cancelled),
                    }
                },
            )
            .collect();
        Pipeline {
            name: spec.header.name.clone(),
            description: spec.header.description.clone(),
            file: spec.path.clone(),
            base_dir: spec.base_dir.clone(),
            params: spec.params.clone(),
            nodes,
            artifacts: self.artifacts,
            warnings: self.warnings,
            families: spec.families.clone(),
            graph: self.graph,
            successors,
            predecessors,
        }
    }

    /// A relative path written in the pipeline file (literally or through a parameter
    /// the file sets) is taken from the file's directory; one that comes from the command
    /// line stays relative to the working directory. `raw` is the field before
    /// interpolation, `value` after. `None`: leave the field as it is.
    fn resolve_path(&self, raw: Option<&toml::Value>, value: Option<&toml::Value>) -> Option<String> {
        let base = self.spec.base_dir.as_ref()?;
        let value = value?.as_str()?;
        if value.is_empty() || Path::new(value).is_absolute() {
            return None;
        }
        let raw = raw?.as_str()?;
        let from_command_line = crate::spec::referenced_params(raw)
            .iter()
            .any(|name| self.spec.command_line_params.contains(name));
        if from_command_line {
            return None;
        }
        Some(lexically_normal(&base.join(value)).to_string_lossy().into_owned())
    }

    fn resolve_op(
        &mut self,
        id: &str,
        node: &crate::spec::NodeSpec,
        raw: &toml::Table,
    ) -> Option<(Arc<dyn Op>, toml::Table)> {
        let with = match interpolate(
            &toml::Value::Table(raw.clone()),
            &self.spec.params,
            &mut self.usage,
        ) {
            Ok(toml::Value::Table(t)) => t,
            Ok(_) => unreachable!("interpolating a table yields a table"),
            Err(e) => {
                let help = match &e {
                    crate::spec::InterpolationError::Unknown { name } => {
                        did_you_mean(name, self.spec.params.keys().map(String::as_str))
                            .or_else(|| Some(format!("define it under [params] or pass --set {name}=...")))
                    }
                    _ => None,
                };
                self.error(Some(id), format!("in `with`: {e}"), help);
                return None;
            }
        };
        let registry = self.registry;
        let Some(op) = registry.get(&node.op) else {
            let help = did_you_mean(&node.op, registry.names())
                .or_else(|| Some("`nexusml dag ops` lists every op".into()));
            self.error(Some(id), format!("unknown op `{}`", node.op), help);
            return None;
        };
        let mut with = with;
        for field in &op.path_fields {
            if !field.applies(&with) {
                continue;
            }
            match (raw.get(field.name), with.get(field.name).cloned()) {
                (Some(toml::Value::Array(raw_items)), Some(toml::Value::Array(items))) => {
                    // A list of paths, each resolved; words of `field.words_in` equal to an
                    // entry become its resolved path too.
                    let mut resolved_items = Vec::with_capacity(items.len());
                    for (r, v) in raw_items.iter().zip(&items) {
                        match self.resolve_path(Some(r), Some(v)) {
                            Some(resolved) => {
                                if let (Some(words), Some(written)) = (field.words_in, v.as_str()) {
                                    replace_words(&mut with, words, written, &resolved);
                                }
                                resolved_items.push(toml::Value::String(resolved));
                            }
                            None => resolved_items.push(v.clone()),
                        }
                    }
                    with.insert(field.name.to_string(), toml::Value::Array(resolved_items));
                }
                (r, v) => {
                    if let Some(resolved) = self.resolve_path(r, v.as_ref()) {
                        with.insert(field.name.to_string(), toml::Value::String(resolved));
                    }
                }
            }
        }
        match op.build(&with) {
            Ok(built) => {
                for w in op.lint(&with) {
                    self.warn(Some(id), w, None);
                }
                Some((built, with))
            }
            Err(msg) if op.config_from_node => {
                self.error(Some(id), format!("invalid command: {msg}"), None);
                None
            }
            Err(msg) => {
                let fields: Vec<&str> = op.config.iter().map(|f| f.name).collect();
                let help = if fields.is_empty() {
                    Some(format!("`{}` takes no `with` fields", node.op))
                } else {
                    Some(format!("`{}` takes: {}", node.op, fields.join(", ")))
                };
                self.error(Some(id), format!("invalid `with` for `{}`: {msg}", node.op), help);
                None
            }
        }
    }
}

/// In the list `with[words]`, every word equal to `written` becomes `resolved`.
fn replace_words(with: &mut toml::Table, words: &str, written: &str, resolved: &str) {
    if let Some(toml::Value::Array(list)) = with.get_mut(words) {
        for w in list.iter_mut() {
            if w.as_str() == Some(written) {
                *w = toml::Value::String(resolved.to_string());
            }
        }
    }
}

/// `dags/../outputs` → `outputs`, without touching the filesystem (as Cargo does for
/// its paths); a leading `..` stays.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn port_help(port: &str, known: &[&str]) -> String {
    did_you_mean(port, known.iter().copied()).unwrap_or_else(|| {
        if known.is_empty() {
            "this op has no such ports".into()
        } else {
            format!("its ports are: {}", known.join(", "))
        }
    })
}

/// One cycle per strongly connected component that has one, as node indices starting at
/// the component's first node in file order.
///
/// Kosaraju, not Tarjan: petgraph's Tarjan recurses once per node on a path and overflows
/// the stack on a long chain; Kosaraju walks with explicit stacks.
fn find_cycles(graph: &DiGraph<(), Edge>) -> Vec<Vec<usize>> {
    let mut cycles = Vec::new();
    if petgraph::algo::toposort(graph, None).is_ok() {
        // The usual case, answered without one vector per node.
        return cycles;
    }
    let mut sccs = petgraph::algo::kosaraju_scc(graph);
    for scc in &mut sccs {
        scc.sort_unstable();
    }
    sccs.sort_by_key(|scc| scc[0]);
    for scc in sccs {
        let start = scc[0];
        if scc.len() == 1 {
            if graph.find_edge(start, start).is_some() {
                cycles.push(vec![start.index()]);
            }
            continue;
        }
        // Breadth-first search inside the component from `start` back to `start`:
        // the shortest cycle through it reads best.
        let inside: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(v) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = graph.neighbors(v).filter(|w| inside.contains(w)).collect();
            next.sort_unstable();
            for w in next {
                if w == start {
                    closing = Some(v);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        if let Some(mut v) = closing {
            let mut path = vec![v.index()];
            while v != start {
                v = parent[&v];
                path.push(v.index());
            }
            path.reverse();
            cycles.push(path);
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` `util.noop` nodes, each reading the previous one's token; with `closed`, the
    /// first reads the last's, which makes one cycle through all of them.
    fn ring(n: usize, closed: bool) -> String {
        let mut s = String::from("[pipeline]\nname = \"ring\"\n");
        for i in 0..n {
            let input = if i > 0 {
                format!("in = {{ x = \"t{}\" }}\n", i - 1)
            } else if closed {
                format!("in = {{ x = \"t{}\" }}\n", n - 1)
            } else {
                String::new()
            };
            s.push_str(&format!(
                "[nodes.n{i}]\nop = \"util.noop\"\n{input}out = {{ y = \"t{i}\" }}\n"
            ));
        }
        s
    }

    #[derive(Default, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}

    impl crate::op::OpConfig for NoFields {
        const FIELDS: &'static [crate::op::FieldDoc] = &[];
    }

    struct Nothing;
    impl Op for Nothing {
        fn run(&self, _: &mut crate::op::NodeContext<'_>) -> Result<(), crate::op::OpError> {
            Ok(())
        }
    }

    /// A registry of one op (`graph` sits below `ops`, so not the built-in one).
    fn build(text: &str) -> Result<Pipeline, GraphError> {
        let mut registry = Registry::empty();
        registry.register(
            crate::op::OpSpec::new("util.noop", "nothing", |_: NoFields| Ok(Nothing))
                .any_inputs(ArtifactType::ANY)
                .any_outputs(ArtifactType::ANY),
        );
        let spec = PipelineSpec::parse(text, Path::new("ring.toml")).unwrap();
        Pipeline::build(&spec, &registry)
    }

    #[test]
    fn a_long_cycle_is_reported_without_overflowing_the_stack() {
        // Test threads have a 2 MiB stack: a recursive search overflowed at a few
        // thousand nodes.
        let n = 200_000;
        let Err(GraphError::Invalid { errors, .. }) = build(&ring(n, true)) else {
            panic!("a cycle must not validate");
        };
        assert_eq!(errors.len(), 1, "one cycle, one error");
        let msg = &errors[0].message;
        assert!(msg.starts_with("cycle: n0 → n1 → n2 → "), "{}", &msg[..80]);
        assert!(
            msg.ends_with(&format!("n{} → n0", n - 1)),
            "{}",
            &msg[msg.len() - 80..]
        );
        assert_eq!(msg.matches(" → ").count(), n);
    }

    #[test]
    fn a_long_chain_builds_and_plans() {
        let n = 200_000;
        let p = build(&ring(n, false)).unwrap_or_else(|e| panic!("{}", &e.to_string()[..200]));
        let mask = vec![true; n];
        let plan = p.plan(&mask, None);
        assert_eq!(plan.waves.len(), n);
        assert_eq!(plan.critical_path.len(), n);
        let mid = p.node_index("n1000").unwrap();
        let to = p.select(&Selection {
            to: Some("n1000".into()),
            ..Default::default()
        });
        assert_eq!(to.unwrap().iter().filter(|&&m| m).count(), mid.0 + 1);
    }

    #[test]
    fn cycles_are_found_one_per_component_in_file_order() {
        let mut g: DiGraph<(), Edge> = DiGraph::new();
        let n: Vec<NodeIndex> = (0..6).map(|_| g.add_node(())).collect();
        for (a, b) in [(0, 1), (1, 0), (2, 2), (3, 4), (4, 5), (5, 3), (1, 3)] {
            g.add_edge(n[a], n[b], Edge::Order);
        }
        assert_eq!(find_cycles(&g), vec![vec![0, 1], vec![2], vec![3, 4, 5]]);
        g.clear_edges();
        g.add_edge(n[0], n[1], Edge::Order);
        assert!(find_cycles(&g).is_empty());
    }
}
