//! One run session for every front door (`dag run`, `train`/`predict`/`evaluate`, the
//! `Orchestrator`, cluster jobs): the pipeline and its overrides → the graph → the
//! selection and its checks → the store → the run directory → the walk (locally, or by a
//! [`Runner`] such as the Slurm one) → the report and the run record.

use super::executor::Observer;
use super::record::RunStatus;
use super::report::{create_run_dir, record_run, RunReport};
use super::run::{check_jobs, run, run_sequential, EngineError, RunOptions, RunOutcome};
use super::status::{self as freshness, Freshness, NodeState};
use crate::clock::Utc;
use crate::graph::{GraphError, NodeIx, Pipeline, Plan, Selection};
use crate::op::Registry;
use crate::spec::{Overrides, PipelineSpec, SpecError};
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Why a session could not open or run.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The request is wrong (a selection the store cannot complete, an unknown node).
    #[error("{0}")]
    Usage(String),
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A runner (a cluster) failed.
    #[error(transparent)]
    Runner(Box<dyn std::error::Error + Send + Sync>),
}

impl SessionError {
    /// The request itself is wrong (exit code 2), rather than something failing in it.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SessionError::Spec(_)
                | SessionError::Graph(_)
                | SessionError::Usage(_)
                | SessionError::Engine(EngineError::NoJobs | EngineError::TooManyJobs { .. })
        )
    }
}

/// Where a pipeline comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// A pipeline compiled into the binary (`nexusml train`): its name and text.
    Builtin {
        name: String,
        text: &'static str,
    },
}

impl Source {
    fn load(&self) -> Result<PipelineSpec, SpecError> {
        match self {
            Source::File(path) => PipelineSpec::load(path),
            Source::Builtin { name, text } => {
                PipelineSpec::parse(text, Path::new(&format!("<built-in {name}>")))
            }
        }
    }
}

/// Read a pipeline, apply its overrides, build it with the ops of `registry` and
/// validate it; log its warnings.
pub fn load(source: &Source, overrides: &Overrides, registry: &Registry) -> Result<Pipeline, SessionError> {
    Ok(Loaded::new(source, overrides, registry)?.pipeline)
}

/// A built pipeline and what its file said before the overrides.
struct Loaded {
    pipeline: Pipeline,
    /// The file's own `[params]`.
    defaults: toml::Table,
    /// Parameters given on the command line or by the API.
    given: std::collections::BTreeSet<String>,
}

impl Loaded {
    fn new(source: &Source, overrides: &Overrides, registry: &Registry) -> Result<Loaded, SessionError> {
        let mut spec = source.load()?;
        let defaults = spec.params.clone();
        overrides.apply(&mut spec)?;
        let pipeline = Pipeline::build(&spec, registry)?;
        for w in &pipeline.warnings {
            tracing::warn!("{}", w.to_string().trim_start_matches("warning: "));
        }
        Ok(Loaded {
            pipeline,
            defaults,
            given: spec.command_line_params,
        })
    }
}

/// Everything a front door asks of a run.
#[derive(Clone)]
pub struct Request {
    pub source: Source,
    /// The ops the pipeline may use (the front doors pass `ops::builtin()`).
    pub registry: &'static Registry,
    pub overrides: Overrides,
    pub selection: Selection,
    /// The artifact store (`None`: run without one, keep nothing).
    pub store: Option<PathBuf>,
    /// Re-run stored nodes: every selected node (empty list), or the ones named.
    pub force: Option<Vec<String>>,
    pub keep_going: bool,
    /// Worker threads (default: all cores).
    pub jobs: Option<usize>,
    /// One node after another on one thread, in a fixed order.
    pub legacy: bool,
    /// Where run directories are created.
    pub runs_dir: PathBuf,
}

impl Request {
    pub fn new(source: Source, registry: &'static Registry) -> Self {
        Request {
            source,
            registry,
            overrides: Overrides::default(),
            selection: Selection::default(),
            store: Some(crate::store::resolve_dir(None)),
            force: None,
            keep_going: false,
            jobs: None,
            legacy: false,
            runs_dir: PathBuf::from(DEFAULT_RUNS_DIR),
        }
    }
}

/// Where run directories go unless told otherwise (under the working directory).
pub const DEFAULT_RUNS_DIR: &str = "outputs/runs";

/// Runs a session's selected nodes somewhere other than here (a cluster), and answers
/// with every node's record, as a local walk would.
pub trait Runner: Sync {
    fn run(&self, session: &Session, run: &RunSetup<'_>) -> Result<RunOutcome, SessionError>;
}

/// What a run has when its nodes start.
pub struct RunSetup<'a> {
    pub run_dir: &'a Path,
    pub started: &'a Utc,
    pub cancel: &'a Arc<AtomicBool>,
    pub observer: &'a dyn Observer,
    pub span: &'a tracing::Span,
}

/// What the caller hooks into a run.
pub struct Hooks<'a> {
    pub observer: &'a dyn Observer,
    /// Parent of the node spans (progress bars hang on it).
    pub span: tracing::Span,
    /// Set (a signal, the caller) to stop starting nodes.
    pub cancel: Arc<AtomicBool>,
    /// Told of the run directory before anything runs (the CLI points its log there).
    pub on_run_dir: Option<&'a (dyn Fn(&Path) + Sync)>,
    /// Run elsewhere (a cluster); `None`: here.
    pub runner: Option<&'a dyn Runner>,
}

/// A finished run.
pub struct Finished {
    pub outcome: RunOutcome,
    pub report: RunReport,
    pub run_dir: PathBuf,
}

/// A pipeline ready to run: built, selected, checked, with its store open.
pub struct Session {
    pub pipeline: Pipeline,
    /// The pipeline file's own `[params]`, before overrides.
    pub defaults: toml::Table,
    /// Parameters given on the command line or by the API.
    pub given: std::collections::BTreeSet<String>,
    /// The selected nodes.
    pub mask: Vec<bool>,
    pub store: Option<Arc<Store>>,
    pub request: Request,
    pub jobs: usize,
}

impl Session {
    /// Everything that can be checked before a run: the pipeline, the selection, the
    /// files the selected nodes read, the store and what the selection needs from it,
    /// `--force` names and `--jobs`.
    pub fn open(request: Request) -> Result<Session, SessionError> {
        let Loaded {
            pipeline,
            defaults,
            given,
        } = Loaded::new(&request.source, &request.overrides, request.registry)?;
        let mask = pipeline.select(&request.selection)?;
        pipeline.check_input_files(&mask)?;
        let store = match &request.store {
            Some(dir) => Some(Arc::new(Store::open(dir)?)),
            None => None,
        };
        match &store {
            Some(store) => check_upstream_stored(&pipeline, &mask, store)?,
            None => pipeline.check_closed(&mask)?,
        }
        for id in request.force.iter().flatten() {
            if pipeline.node_index(id).is_none() {
                let help = crate::suggest::did_you_mean(id, pipeline.nodes.iter().map(|n| n.id.as_str()))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                return Err(SessionError::Usage(format!(
                    "--force names unknown node `{id}`{help}"
                )));
            }
        }
        let jobs = match request.jobs {
            Some(n) => check_jobs(n)?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Session {
            pipeline,
            defaults,
            given,
            mask,
            store,
            request,
            jobs,
        })
    }

    /// The plan of the selection and, with a store, each node's state against it.
    pub fn dry_run(&self) -> (Plan, Option<Vec<NodeState>>) {
        let plan = self.pipeline.plan(&self.mask, None);
        let states = self
            .store
            .as_deref()
            .map(|s| freshness::status(&self.pipeline, s));
        (plan, states)
    }

    /// The parameters a cluster job must receive to resolve them exactly as this run
    /// did: only those given on the command line or by the API (with their values); the
    /// others the job reads from the pipeline file itself, relative to it as here.
    pub fn job_params(&self) -> toml::Table {
        self.pipeline
            .params
            .iter()
            .filter(|(k, _)| self.given.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Run: make the run directory, walk the selection (here or through the runner),
    /// write `report.json` and record the run in the store.
    pub fn run(&self, hooks: &Hooks<'_>) -> Result<Finished, SessionError> {
        let started = Utc::now();
        let runs_dir = &self.request.runs_dir;
        let run_dir =
            create_run_dir(runs_dir, &self.pipeline.name, &started).map_err(|source| SessionError::Io {
                what: "cannot create a run directory in",
                path: runs_dir.clone(),
                source,
            })?;
        if let Some(hook) = hooks.on_run_dir {
            hook(&run_dir);
        }
        let setup = RunSetup {
            run_dir: &run_dir,
            started: &started,
            cancel: &hooks.cancel,
            observer: hooks.observer,
            span: &hooks.span,
        };
        let outcome = match hooks.runner {
            Some(runner) => runner.run(self, &setup)?,
            None => {
                tracing::info!(
                    "running `{}` with {} worker thread(s); run directory {}",
                    self.pipeline.name,
                    if self.request.legacy { 1 } else { self.jobs },
                    run_dir.display()
                );
                let opts = self.run_options(&setup);
                let _entered = hooks.span.enter();
                if self.request.legacy {
                    run_sequential(&self.pipeline, &opts, hooks.observer)?
                } else {
                    run(&self.pipeline, &opts, hooks.observer)?
                }
            }
        };
        let jobs = if self.request.legacy { 1 } else { self.jobs };
        let mut report = RunReport::new(&self.pipeline, &outcome, &started, jobs, self.request.keep_going);
        // What the file said, as this session read it (a built-in pipeline has no file).
        report.default_params = serde_json::to_value(&self.defaults).ok();
        report.write(&run_dir).map_err(|source| SessionError::Io {
            what: "cannot write the run report in",
            path: run_dir.clone(),
            source,
        })?;
        // report.html beside it; a failure to draw it is a warning, never a failed run.
        crate::report::write_after_run(&run_dir);
        if let Some(store) = &self.store {
            record_run(store, &self.pipeline, &outcome, &started);
        }
        Ok(Finished {
            outcome,
            report,
            run_dir,
        })
    }

    /// The engine's options for a local walk of this session.
    pub fn run_options(&self, setup: &RunSetup<'_>) -> RunOptions {
        RunOptions {
            jobs: if self.request.legacy { 1 } else { self.jobs },
            keep_going: self.request.keep_going,
            mask: Some(self.mask.clone()),
            store: self.store.clone(),
            force: self.request.force.clone(),
            run_dir: setup.run_dir.to_path_buf(),
            cancel: Arc::clone(setup.cancel),
            span: setup.span.clone(),
            executor: None,
        }
    }

    /// The exit code of a finished run: 0, 1 when a node failed, 128 + the signal when
    /// stopped by one.
    pub fn exit_code(status: RunStatus) -> u8 {
        match status {
            RunStatus::Ok => 0,
            RunStatus::Failed => 1,
            RunStatus::Interrupted => super::interrupt::exit_code(),
        }
    }
}

/// With a store, a selection takes its unselected upstream nodes' results from it: check
/// up front that it has those whose inputs are settled, naming the nodes to run first.
fn check_upstream_stored(p: &Pipeline, mask: &[bool], store: &Store) -> Result<(), SessionError> {
    let upstream = p.upstream_of(mask);
    if !upstream.iter().any(|&u| u) {
        return Ok(());
    }
    let states = freshness::status(p, store);
    // Name the unselected nodes a selected node reads from directly: running them (and
    // what they need) is what the selection is missing.
    let mut missing = Vec::new();
    for (i, s) in NodeIx::all(states.len()).zip(&states) {
        if !upstream[i] || s.state == Freshness::Fresh {
            continue;
        }
        if p.successors(i).iter().any(|&w| mask[w]) {
            let why = if s.state == Freshness::Missing {
                "never run".to_string()
            } else {
                s.causes.join("; ")
            };
            missing.push((s.id.clone(), why));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(id, why)| format!("`{id}` ({why})"))
        .collect();
    Err(SessionError::Usage(format!(
        "the selection reads results of unselected nodes that the store does not hold for the current inputs: {}\n  \
         help: run them first, e.g. `nexusml dag run {} --to {}`, or add them to the selection",
        list.join(", "),
        p.file.display(),
        missing[0].0
    )))
}
