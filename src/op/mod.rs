//! The op contract: what an op is (`Op`), what it declares (`OpSpec`: ports, config
//! fields with their docs and defaults, version, what it writes in the run directory),
//! the types that flow between ops (`ArtifactType`, with each type's storage codec) and
//! the registry of ops by name. It knows nothing of graphs, engines
//! or equipment: `graph` and `engine` build on it, `ops` implements it.

mod artifact;
mod config;
mod context;
mod files;

pub use artifact::{from_json, from_msgpack, to_json, to_msgpack, Artifact, Codec, CodecError};
pub use config::{
    check_config_docs, describe, field_names, inline, ConfigField, FieldDoc, NoConfig, OpConfig,
};
pub use context::{NodeContext, NodeIo, PortError, Slot, WrittenFile};
pub use files::{Dir, DirEntry, File};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use std::any::TypeId;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// What an op's `run` returns on failure. Each op family has its own `thiserror` enum;
/// the engine only needs the message and the cause chain.
pub type OpError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One step's behaviour. Built once per node from its `with` table, run once per run.
pub trait Op: Send + Sync {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError>;

    /// Files this op reads (the data file, a config): their contents enter the node's key,
    /// so an edited file re-runs the node and an untouched one never does.
    fn reads(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
}

/// The Rust type of an artifact, named for messages and compared by `TypeId`.
#[derive(Clone, Copy)]
pub struct ArtifactType {
    name: &'static str,
    id: Option<TypeId>,
    codec: Option<Codec>,
}

impl ArtifactType {
    /// The type `T`, shown by its short name (`Table`, not `nexusml::ml::table::Table`).
    pub fn of<T: Artifact>() -> Self {
        ArtifactType {
            name: std::any::type_name::<T>(),
            id: Some(TypeId::of::<T>()),
            codec: Some(Codec::of::<T>()),
        }
    }

    /// Accepts any artifact (utility ops that only order or count their inputs).
    pub const ANY: ArtifactType = ArtifactType {
        name: "Any",
        id: None,
        codec: None,
    };

    /// The full Rust type name.
    pub fn type_name(&self) -> &'static str {
        self.name
    }

    /// How values of this type are stored; `None` for `ANY`.
    pub fn codec(&self) -> Option<&Codec> {
        self.codec.as_ref()
    }

    /// Short name for messages: `Vec<Table>`, not `alloc::vec::Vec<nexusml::...::Table>`.
    pub fn name(&self) -> String {
        short_type_name(self.name)
    }

    pub fn type_id(&self) -> Option<TypeId> {
        self.id
    }

    /// Whether a value of type `self` may flow into a port of type `into`.
    pub fn fits(&self, into: &ArtifactType) -> bool {
        match (self.id, into.id) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

impl fmt::Debug for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// `alloc::vec::Vec<nexusml::Foo>` → `Vec<Foo>`.
pub fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(""));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(""));
    out
}

/// A named, typed input or output of an op.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: &'static str,
    pub ty: ArtifactType,
    pub doc: &'static str,
    /// An optional input may be left unbound; an optional output may go unwritten.
    pub optional: bool,
}

impl Port {
    pub fn new<T: Artifact>(name: &'static str, doc: &'static str) -> Self {
        Port {
            name,
            ty: ArtifactType::of::<T>(),
            doc,
            optional: false,
        }
    }

    pub fn any(name: &'static str, doc: &'static str) -> Self {
        Port {
            name,
            ty: ArtifactType::ANY,
            doc,
            optional: false,
        }
    }

    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// A place in the run directory an op writes, relative to it. Ops declare these as a
/// function of their `with`, so `dag check` refuses two nodes writing one file and a
/// node writing a file the engine writes itself (`report.json`, `run.log`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunDirWrite {
    /// One file.
    File(PathBuf),
    /// Files directly in `dir` named `<prefix>…<suffix>`, the middle known only when
    /// the op runs (`plots/confusion_<target>.png`, one per target).
    Files {
        dir: PathBuf,
        prefix: String,
        suffix: String,
    },
    /// A whole directory and everything in it.
    Dir(PathBuf),
}

impl RunDirWrite {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        RunDirWrite::File(path.into())
    }

    pub fn files(dir: impl Into<PathBuf>, prefix: &str, suffix: &str) -> Self {
        RunDirWrite::Files {
            dir: dir.into(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }
}

impl fmt::Display for RunDirWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunDirWrite::File(p) => write!(f, "{}", p.display()),
            RunDirWrite::Files { dir, prefix, suffix } => {
                write!(f, "{}", dir.join(format!("{prefix}<…>{suffix}")).display())
            }
            RunDirWrite::Dir(p) => write!(f, "{}/", p.display()),
        }
    }
}

type Builder = dyn Fn(&toml::Table) -> Result<Arc<dyn Op>, String> + Send + Sync;
type Linter = dyn Fn(&toml::Table) -> Vec<String> + Send + Sync;
type Writes = dyn Fn(&toml::Table) -> Vec<RunDirWrite> + Send + Sync;
type InputCheck = dyn Fn(&toml::Table, &[(String, &'static str)]) -> Vec<String> + Send + Sync;

/// Everything the graph needs to know about an op before running it.
pub struct OpSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// When set, any input port name is accepted with this type (utility ops).
    pub variadic_inputs: Option<ArtifactType>,
    /// When set, any output port name is accepted with this type (utility ops).
    pub variadic_outputs: Option<ArtifactType>,
    /// The `with` fields, from the config type's [`OpConfig`] list and `Default`.
    pub config: Vec<ConfigField>,
    /// Bumped when the op's behaviour changes: part of every node key, so results of the
    /// old behaviour are never reused.
    pub version: u32,
    /// What changed in `version` (empty for 1), for `dag ops`.
    pub version_note: &'static str,
    /// The op reads the pipeline's whole parameter table (e.g. to record it): all
    /// parameters then enter its key.
    pub reads_params: bool,
    /// The op's result depends on the node's id (its random stream is derived from it):
    /// the id then enters its key, so two such nodes never share a result.
    pub seeded_by_node: bool,
    /// `with` fields that are file or directory paths. Written in a pipeline file they are
    /// relative to that file's directory; given on the command line, to the working
    /// directory.
    pub path_fields: Vec<PathField>,
    /// Each node declares its own ports (op `cmd`): an output's type is the kind written
    /// before its artifact (`out = { clean = "table:clean" }`), from this list, and an
    /// input takes its producer's type, which must be one of the list's.
    pub node_ports: Option<Vec<(&'static str, ArtifactType)>>,
    /// The node gives the op's configuration as node-level keys (`run`, `sh`, `deps`,
    /// `env`) rather than `with`; the graph carries them, with the node's port names and
    /// kinds (`inputs`, `outputs`), into its `with`, so its key covers them.
    pub config_from_node: bool,
    /// The op checks the cancellation flag often enough to stop within a second
    /// (Ctrl-C, a timeout); others run to their end.
    pub stops_when_cancelled: bool,
    build: Box<Builder>,
    lint: Option<Box<Linter>>,
    writes: Option<Box<Writes>>,
    input_check: Option<Box<InputCheck>>,
    /// The config type, so `linter` and `writes_in_run_dir` read the same one.
    config_type: TypeId,
    check_docs: fn() -> Vec<String>,
}

/// A `with` field that is a path, and when it is not one.
#[derive(Debug, Clone, Copy)]
pub struct PathField {
    pub name: &'static str,
    /// A bool field that, when true, puts the path inside the run directory.
    pub in_run_dir_flag: Option<&'static str>,
    /// A value that names no file (`"builtin"`).
    pub not_a_path: Option<&'static str>,
    /// For a list of paths: the list field whose words equal to an entry are resolved
    /// with it (`deps` and the words of `run`).
    pub words_in: Option<&'static str>,
}

impl PathField {
    pub fn new(name: &'static str) -> Self {
        PathField {
            name,
            in_run_dir_flag: None,
            not_a_path: None,
            words_in: None,
        }
    }

    /// A list of paths whose entries, where `field` (a list of words) repeats them, are
    /// resolved there too.
    pub fn resolving_words_in(self, field: &'static str) -> Self {
        PathField {
            words_in: Some(field),
            ..self
        }
    }

    /// Left alone when the bool field `flag` is true (the path is in the run directory).
    pub fn unless_flag(self, flag: &'static str) -> Self {
        PathField {
            in_run_dir_flag: Some(flag),
            ..self
        }
    }

    /// Left alone when it is exactly `value`, a name rather than a file.
    pub fn except(self, value: &'static str) -> Self {
        PathField {
            not_a_path: Some(value),
            ..self
        }
    }

    /// Whether this field of `with` (after interpolation) is a path to resolve.
    pub fn applies(&self, with: &toml::Table) -> bool {
        let flagged = self
            .in_run_dir_flag
            .is_some_and(|b| with.get(b).and_then(toml::Value::as_bool) == Some(true));
        let named = self
            .not_a_path
            .is_some_and(|v| with.get(self.name).and_then(toml::Value::as_str) == Some(v));
        !flagged && !named
    }
}

impl OpSpec {
    /// An op whose configuration deserializes into `C` (which should use
    /// `#[serde(deny_unknown_fields)]`) and is then turned into the op by `make`. Its
    /// `with` fields, with their docs and defaults, come from `C`.
    pub fn new<C, O>(
        name: &'static str,
        summary: &'static str,
        make: impl Fn(C) -> Result<O, String> + Send + Sync + 'static,
    ) -> Self
    where
        C: OpConfig,
        O: Op + 'static,
    {
        OpSpec {
            name,
            summary,
            inputs: Vec::new(),
            outputs: Vec::new(),
            variadic_inputs: None,
            variadic_outputs: None,
            config: config::describe::<C>(),
            version: 1,
            version_note: "",
            reads_params: false,
            seeded_by_node: false,
            path_fields: Vec::new(),
            node_ports: None,
            config_from_node: false,
            stops_when_cancelled: false,
            build: Box::new(move |with: &toml::Table| {
                let config: C = toml::Value::Table(with.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
                Ok(Arc::new(make(config)?) as Arc<dyn Op>)
            }),
            lint: None,
            writes: None,
            input_check: None,
            config_type: TypeId::of::<C>(),
            check_docs: check_config_docs::<C>,
        }
    }

    fn assert_config_type<C: 'static>(&self, what: &str) {
        assert!(
            self.config_type == TypeId::of::<C>(),
            "op `{}`: `{what}` reads {}, not the op's config type",
            self.name,
            std::any::type_name::<C>()
        );
    }

    /// Warnings about a valid configuration (label leakage, say), shown by `dag check`.
    pub fn linter<C: DeserializeOwned + 'static>(
        mut self,
        lint: impl Fn(C) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.assert_config_type::<C>("linter");
        self.lint = Some(Box::new(move |with: &toml::Table| {
            match toml::Value::Table(with.clone()).try_into::<C>() {
                Ok(config) => lint(config),
                Err(_) => Vec::new(), // build() reports the error
            }
        }));
        self
    }

    /// Run the linter, if any.
    pub fn lint(&self, with: &toml::Table) -> Vec<String> {
        self.lint.as_ref().map_or_else(Vec::new, |l| l(with))
    }

    /// Declare what the op writes in the run directory, from its configuration.
    pub fn writes_in_run_dir<C: DeserializeOwned + 'static>(
        mut self,
        writes: impl Fn(&C) -> Vec<RunDirWrite> + Send + Sync + 'static,
    ) -> Self {
        self.assert_config_type::<C>("writes_in_run_dir");
        self.writes = Some(Box::new(move |with: &toml::Table| {
            match toml::Value::Table(with.clone()).try_into::<C>() {
                Ok(config) => writes(&config),
                Err(_) => Vec::new(), // build() reports the error
            }
        }));
        self
    }

    /// What a node with this `with` writes in the run directory.
    pub fn run_dir_writes(&self, with: &toml::Table) -> Vec<RunDirWrite> {
        self.writes.as_ref().map_or_else(Vec::new, |w| w(with))
    }

    /// Problems with the config type's documentation ([`check_config_docs`]); empty
    /// when every documented field exists, none is undocumented and every default
    /// shown is the real one.
    pub fn check_config_docs(&self) -> Vec<String> {
        (self.check_docs)()
    }

    pub fn input(mut self, port: Port) -> Self {
        self.inputs.push(port);
        self
    }

    pub fn output(mut self, port: Port) -> Self {
        self.outputs.push(port);
        self
    }

    pub fn any_inputs(mut self, ty: ArtifactType) -> Self {
        self.variadic_inputs = Some(ty);
        self
    }

    pub fn any_outputs(mut self, ty: ArtifactType) -> Self {
        self.variadic_outputs = Some(ty);
        self
    }

    /// Set the op's behaviour version (default 1) and what changed in it.
    pub fn version(mut self, version: u32, note: &'static str) -> Self {
        self.version = version;
        self.version_note = note;
        self
    }

    /// Declare that the op's result depends on the node id (`ops::node_seed`).
    pub fn seeded_by_node(mut self) -> Self {
        self.seeded_by_node = true;
        self
    }

    /// Declare a `with` field that is a path (see [`OpSpec::path_fields`]).
    pub fn path_field(mut self, field: PathField) -> Self {
        self.path_fields.push(field);
        self
    }

    /// Declare that each node gives its own ports, typed by these kinds
    /// ([`OpSpec::node_ports`]).
    pub fn ports_from_node(mut self, kinds: Vec<(&'static str, ArtifactType)>) -> Self {
        self.node_ports = Some(kinds);
        self
    }

    /// Declare that a node configures the op with node-level keys
    /// ([`OpSpec::config_from_node`]).
    pub fn configured_by_node(mut self) -> Self {
        self.config_from_node = true;
        self
    }

    /// Declare that the op stops within a second of the cancellation flag.
    pub fn stops_when_cancelled(mut self) -> Self {
        self.stops_when_cancelled = true;
        self
    }

    /// Check a node's configuration against the kinds of its bound inputs (`port`,
    /// `kind`), for an op whose nodes declare their ports: errors for `dag check`.
    pub fn checking_node_inputs<C: DeserializeOwned + 'static>(
        mut self,
        check: impl Fn(&C, &[(String, &'static str)]) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.assert_config_type::<C>("checking_node_inputs");
        self.input_check = Some(Box::new(
            move |with: &toml::Table, inputs: &[(String, &'static str)]| {
                match toml::Value::Table(with.clone()).try_into::<C>() {
                    Ok(config) => check(&config, inputs),
                    Err(_) => Vec::new(), // build() reports the error
                }
            },
        ));
        self
    }

    /// Run the input check, if any.
    pub fn check_node_inputs(&self, with: &toml::Table, inputs: &[(String, &'static str)]) -> Vec<String> {
        self.input_check
            .as_ref()
            .map_or_else(Vec::new, |c| c(with, inputs))
    }

    /// The type of a node-declared port kind (`table`), when the op has node ports.
    pub fn node_port_kind(&self, kind: &str) -> Option<ArtifactType> {
        self.node_ports
            .as_ref()?
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| *t)
    }

    /// Declare that the op reads the whole parameter table.
    pub fn reads_params(mut self) -> Self {
        self.reads_params = true;
        self
    }

    /// Check the configuration and build the op.
    pub fn build(&self, with: &toml::Table) -> Result<Arc<dyn Op>, String> {
        (self.build)(with)
    }

    pub fn input_port(&self, name: &str) -> Option<ArtifactType> {
        port_type(&self.inputs, self.variadic_inputs, name)
    }

    pub fn output_port(&self, name: &str) -> Option<ArtifactType> {
        port_type(&self.outputs, self.variadic_outputs, name)
    }
}

fn port_type(ports: &[Port], variadic: Option<ArtifactType>, name: &str) -> Option<ArtifactType> {
    ports.iter().find(|p| p.name == name).map(|p| p.ty).or(variadic)
}

/// All ops by name.
pub struct Registry {
    ops: IndexMap<&'static str, OpSpec>,
}

impl Registry {
    pub fn empty() -> Self {
        Registry { ops: IndexMap::new() }
    }

    /// Add an op. A second op of the same name replaces the first.
    pub fn register(&mut self, spec: OpSpec) {
        self.ops.insert(spec.name, spec);
    }

    pub fn get(&self, name: &str) -> Option<&OpSpec> {
        self.ops.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.ops.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &OpSpec> {
        self.ops.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_paths() {
        assert_eq!(short_type_name("alloc::string::String"), "String");
        assert_eq!(short_type_name("alloc::vec::Vec<nexusml::ml::Foo>"), "Vec<Foo>");
        assert_eq!(ArtifactType::of::<u64>().name(), "u64");
    }

    #[derive(Default, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct FileConfig {
        file: String,
    }

    impl OpConfig for FileConfig {
        const FIELDS: &'static [FieldDoc] = &[FieldDoc::required("file", "string", "a file")];
    }

    struct Nothing;
    impl Op for Nothing {
        fn run(&self, _: &mut NodeContext<'_>) -> Result<(), OpError> {
            Ok(())
        }
    }

    fn spec() -> OpSpec {
        OpSpec::new("t.write", "writes", |_: FileConfig| Ok(Nothing))
    }

    #[test]
    fn writes_come_from_the_config() {
        let op = spec().writes_in_run_dir(|c: &FileConfig| vec![RunDirWrite::file(&c.file)]);
        let with: toml::Table = "file = \"out/a.json\"".parse().unwrap();
        assert_eq!(op.run_dir_writes(&with), [RunDirWrite::file("out/a.json")]);
        // An invalid `with` declares nothing: building it reports the error.
        let bad: toml::Table = "fil = 1".parse().unwrap();
        assert!(op.run_dir_writes(&bad).is_empty());
        assert!(op.build(&bad).is_err());
        assert_eq!(
            RunDirWrite::files("plots", "confusion_", ".png").to_string(),
            "plots/confusion_<…>.png"
        );
        assert_eq!(op.config[0].name, "file");
        assert_eq!(op.config[0].default, None);
    }

    #[test]
    #[should_panic(expected = "not the op's config type")]
    fn a_declaration_must_read_the_ops_own_config_type() {
        let _ = spec().writes_in_run_dir(|_: &toml::Table| Vec::new());
    }

    #[test]
    fn any_fits_everything() {
        let s = ArtifactType::of::<String>();
        assert!(s.fits(&ArtifactType::ANY));
        assert!(ArtifactType::ANY.fits(&s));
        assert!(!s.fits(&ArtifactType::of::<u64>()));
    }
}
