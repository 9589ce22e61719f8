//! The library API: train, predict and evaluate through pipelines, with a
//! [`PipelineContext`] recording what happened (status, timings, metrics, logs, artifacts).
//!
//! Each call runs a pipeline: the built-in `dags/train.toml`, `dags/predict.toml` or
//! `dags/evaluate.toml` (compiled into the binary), or a file of the user's. One context
//! per run: nothing accumulates across calls.
//!
//! ```no_run
//! use nexusml::orchestrator::{Orchestrator, TrainOptions};
//! let mut orchestrator = Orchestrator::new();
//! let (model, metrics) = orchestrator.train_model(&TrainOptions::new("examples/data/equipment_inventory.csv"))?;
//! println!("mean accuracy {:.3}", metrics.mean_accuracy);
//! orchestrator.save_model(&model, std::path::Path::new("my_model.nxm"))?;
//! println!("{}", orchestrator.execution_summary());
//! # Ok::<(), nexusml::orchestrator::OrchestratorError>(())
//! ```

use crate::clock::Utc;
use crate::engine::{self, Hooks, NodeRecord, NodeStatus, Observer, Request, RunStatus, Session, Source};
use crate::graph::{NodeIx, Pipeline};
use crate::ml::bundle::{self, BundleError};
use crate::ml::mapping::{ColumnMap, MappingError};
use crate::ml::metrics::EvaluationReport;
pub use crate::ml::model::Keep;
use crate::ml::model::{EquipmentModel, FORMAT_VERSION};
use crate::ml::search::{SearchGrid, SearchResult};
use crate::spec::Overrides;
use indexmap::IndexMap;
use polars::prelude::DataFrame;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use toml::Value;

pub const TRAIN_PIPELINE: &str = include_str!("../dags/train.toml");
pub const PREDICT_PIPELINE: &str = include_str!("../dags/predict.toml");
pub const EVALUATE_PIPELINE: &str = include_str!("../dags/evaluate.toml");
pub const FEATURE_CONFIG: &str = crate::ml::features::BUILTIN;

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Session(crate::engine::SessionError),
    #[error("pipeline `{pipeline}` failed at node `{node}`: {}", .chain.join(": "))]
    NodeFailed {
        pipeline: String,
        node: String,
        chain: Vec<String>,
    },
    #[error("pipeline `{0}` was interrupted")]
    Interrupted(String),
    #[error("pipeline `{pipeline}` produced no `{artifact}`")]
    Missing { pipeline: String, artifact: String },
    #[error(transparent)]
    ModelFile(#[from] BundleError),
    #[error(transparent)]
    Model(#[from] crate::ml::model::ModelError),
    #[error(transparent)]
    Table(#[from] crate::ml::table::TableError),
    #[error(transparent)]
    Features(#[from] crate::ml::features::FeatureError),
    #[error(transparent)]
    Split(#[from] crate::ml::split::SplitError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::engine::SessionError> for OrchestratorError {
    fn from(e: crate::engine::SessionError) -> Self {
        use crate::engine::SessionError as S;
        match e {
            S::Spec(e) => OrchestratorError::Spec(e),
            S::Graph(e) => OrchestratorError::Graph(e),
            S::Engine(e) => OrchestratorError::Engine(e),
            S::Store(e) => OrchestratorError::Store(e),
            S::Usage(m) => OrchestratorError::Invalid(m),
            other => OrchestratorError::Session(other),
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Initialized,
    Running,
    Completed,
    Failed,
}

/// One structured log entry.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub time: String,
    pub level: &'static str,
    pub message: String,
    pub node: Option<String>,
}

/// What one orchestrated run did.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineContext {
    pub pipeline: String,
    pub status: Status,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// Milliseconds per component (node), in pipeline order.
    pub component_times_ms: IndexMap<String, f64>,
    pub metrics: Option<EvaluationReport>,
    pub logs: Vec<LogEntry>,
    pub artifacts_read: Vec<String>,
    pub artifacts_written: Vec<String>,
    /// Parameters after overrides, and the options of the call.
    pub config: serde_json::Value,
    pub run_dir: Option<PathBuf>,
    /// Components (nodes) answered from the artifact store instead of run.
    pub cached_components: Vec<String>,
    pub error: Option<String>,
}

impl PipelineContext {
    pub fn new(pipeline: &str, config: serde_json::Value) -> Self {
        PipelineContext {
            pipeline: pipeline.into(),
            status: Status::Initialized,
            started_at: None,
            ended_at: None,
            component_times_ms: IndexMap::new(),
            metrics: None,
            logs: Vec::new(),
            artifacts_read: Vec::new(),
            artifacts_written: Vec::new(),
            config,
            run_dir: None,
            cached_components: Vec::new(),
            error: None,
        }
    }

    fn log(&mut self, level: &'static str, message: String, node: Option<String>) {
        self.logs.push(LogEntry {
            time: Utc::now().rfc3339(),
            level,
            message,
            node,
        });
    }

    fn start(&mut self) {
        self.status = Status::Running;
        self.started_at = Some(Utc::now().rfc3339());
        self.log("INFO", format!("pipeline `{}` started", self.pipeline), None);
    }

    fn finish(&mut self, error: Option<String>) {
        self.ended_at = Some(Utc::now().rfc3339());
        match error {
            None => {
                self.status = Status::Completed;
                self.log("INFO", format!("pipeline `{}` completed", self.pipeline), None);
            }
            Some(e) => {
                self.status = Status::Failed;
                self.log("ERROR", e.clone(), None);
                self.error = Some(e);
            }
        }
    }
}

/// Options of [`Orchestrator::train_model`]. `None` leaves a value to the training
/// pipeline's `[params]` (`dags/train.toml`: test size 0.3, seed 42, 200 trees).
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub data_path: PathBuf,
    pub feature_config: Option<PathBuf>,
    pub reference_config: Option<PathBuf>,
    /// The pipeline's `test_size`.
    pub test_size: Option<f64>,
    /// The pipeline's `seed`.
    pub random_state: Option<u64>,
    pub sampling_strategy: String,
    /// Where model files go (the Python tool's `outputs/models`, under the working directory).
    pub output_dir: PathBuf,
    pub model_name: String,
    /// The pipeline's `trees`.
    pub trees: Option<usize>,
    /// Explicit test rows (0-based indices, one per line), e.g. from another tool's split.
    pub test_rows: Option<PathBuf>,
    /// A pipeline file that replaces the built-in `dags/train.toml`.
    pub pipeline: Option<PathBuf>,
    /// Search this grid by cross-validation first, then train with the best point.
    pub optimize: Option<SearchGrid>,
    /// Folds of the cross-validation.
    pub cv_folds: usize,
    /// Model column → the data's column that holds it (renamed at load; recorded in the
    /// model, which applies it when predicting or evaluating a file with those columns).
    pub map: ColumnMap,
    /// Timestamped models kept per name (`None`: the pipeline's `keep_models`, 10).
    pub keep_models: Option<usize>,
    /// The pipeline's `learner` (`linear_svc`, `logistic`, `forest`).
    pub learner: Option<crate::ml::learner::LearnerKind>,
}

impl TrainOptions {
    pub fn new(data_path: impl Into<PathBuf>) -> Self {
        TrainOptions {
            data_path: data_path.into(),
            feature_config: None,
            reference_config: None,
            test_size: None,
            random_state: None,
            sampling_strategy: "direct".into(),
            output_dir: "outputs/models".into(),
            model_name: "equipment_classifier".into(),
            trees: None,
            test_rows: None,
            pipeline: None,
            optimize: None,
            cv_folds: 3,
            map: ColumnMap::default(),
            keep_models: None,
            learner: None,
        }
    }

    /// The checks (and messages) users of the Python tool know.
    pub fn validate(&self) -> Result<(), OrchestratorError> {
        if !self.data_path.exists() {
            return Err(OrchestratorError::Invalid(format!(
                "Data path does not exist: {}",
                self.data_path.display()
            )));
        }
        if let Some(p) = self.feature_config.as_ref().filter(|p| !p.exists()) {
            return Err(OrchestratorError::Invalid(format!(
                "Feature config path does not exist: {}",
                p.display()
            )));
        }
        if let Some(p) = self.reference_config.as_ref().filter(|p| !p.exists()) {
            return Err(OrchestratorError::Invalid(format!(
                "Reference config path does not exist: {}",
                p.display()
            )));
        }
        if let Some(t) = self.test_size.filter(|t| !(*t > 0.0 && *t < 1.0)) {
            return Err(OrchestratorError::Invalid(format!(
                "Test size must be between 0 and 1, got {t:?}"
            )));
        }
        if self.sampling_strategy != "direct" {
            return Err(OrchestratorError::Invalid(format!(
                "Sampling strategy must be 'direct', got '{}'",
                self.sampling_strategy
            )));
        }
        if self.cv_folds < 2 {
            return Err(OrchestratorError::Invalid(format!(
                "CV folds must be at least 2, got {}",
                self.cv_folds
            )));
        }
        if self.trees == Some(0) {
            return Err(OrchestratorError::Invalid(
                "The number of trees must be at least 1".into(),
            ));
        }
        if self.keep_models == Some(0) {
            return Err(OrchestratorError::Invalid(
                "--keep-models must be at least 1 (the newest model is always kept)".into(),
            ));
        }
        // Every model column named must be one the feature config reads or trains on.
        let features = self
            .feature_config
            .clone()
            .unwrap_or_else(|| PathBuf::from("builtin"));
        let config = crate::ml::features::FeatureConfig::open(&features)?;
        self.map.check()?;
        self.map
            .check_known(&crate::ml::mapping::known_columns(&config))?;
        Ok(())
    }
}

/// Collects a context's per-node records while the run goes.
struct Recorder<'a> {
    context: &'a Mutex<PipelineContext>,
}

impl Observer for Recorder<'_> {
    fn node_finished(&self, p: &Pipeline, node: NodeIx, r: &NodeRecord) {
        let id = p.nodes[node].id.clone();
        let mut c = self.context.lock().unwrap_or_else(|e| e.into_inner());
        match r.status {
            NodeStatus::Ok => {
                let ms = r.duration().unwrap_or_default().as_secs_f64() * 1e3;
                c.component_times_ms.insert(id.clone(), ms);
                for b in &p.nodes[node].inputs {
                    c.artifacts_read.push(p.artifacts[b.artifact].name.clone());
                }
                for &a in &r.artifacts {
                    c.artifacts_written.push(p.artifacts[a].name.clone());
                }
                tracing::info!(parent: None, "node `{id}` ok in {}", engine::format_ms(ms));
                c.log("INFO", format!("node `{id}` ok in {ms:.1} ms"), Some(id));
            }
            NodeStatus::Cached => {
                c.component_times_ms.insert(id.clone(), 0.0);
                c.cached_components.push(id.clone());
                tracing::info!(parent: None, "node `{id}` cached");
                c.log("INFO", format!("node `{id}` cached"), Some(id));
            }
            NodeStatus::Failed => {
                let message = format!("node `{id}` failed: {}", r.error.join(": "));
                tracing::error!(parent: None, "{message}");
                c.log("ERROR", message, Some(id));
            }
            NodeStatus::Skipped => {
                let message = format!("node `{id}` skipped: {}", r.note().unwrap_or_default());
                tracing::warn!(parent: None, "{message}");
                c.log("WARNING", message, Some(id));
            }
        }
    }
}

/// Called with each new run directory (the CLI points its log file there).
pub type RunDirHook = Box<dyn Fn(&Path) + Send + Sync>;

/// Runs the built-in (or the user's) pipelines and keeps the last run's context.
pub struct Orchestrator {
    pub runs_dir: PathBuf,
    pub jobs: usize,
    /// Run nodes one after another on one thread, without the scheduler.
    pub legacy: bool,
    pub on_run_dir: Option<RunDirHook>,
    /// Pipeline files that replace the built-in ones, by name: `train`, `predict`, `evaluate`.
    pub pipeline_files: IndexMap<String, PathBuf>,
    /// The artifact store (`None`: recompute everything, keep nothing). `new()` takes
    /// `$NEXUSML_STORE`, else `.nexusml/store`.
    pub store: Option<PathBuf>,
    /// Set (e.g. by Ctrl-C) to stop starting nodes; the run then ends `Interrupted`
    /// with its report written.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The predict pipeline's `review_below` (`None`: the pipeline's own, 0.7).
    pub review_below: Option<f64>,
    context: Option<PipelineContext>,
}

impl Default for Orchestrator {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of one orchestrated pipeline run.
struct Finished {
    session: Session,
    outcome: engine::RunOutcome,
}

impl Finished {
    fn artifact<T: std::any::Any + Send + Sync + Clone>(&self, name: &str) -> Result<T, OrchestratorError> {
        let pipeline = &self.session.pipeline;
        pipeline
            .artifact_index(name)
            .and_then(|i| self.outcome.value::<T>(pipeline, i))
            .map(|v| (*v).clone())
            .ok_or_else(|| OrchestratorError::Missing {
                pipeline: pipeline.name.clone(),
                artifact: name.into(),
            })
    }
}

impl Orchestrator {
    pub fn new() -> Self {
        Orchestrator {
            runs_dir: crate::engine::session::DEFAULT_RUNS_DIR.into(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            legacy: false,
            on_run_dir: None,
            pipeline_files: IndexMap::new(),
            store: Some(crate::store::resolve_dir(None)),
            cancel: Default::default(),
            review_below: None,
            context: None,
        }
    }

    /// The last run's context (`None` before any run).
    pub fn context(&self) -> Option<&PipelineContext> {
        self.context.as_ref()
    }

    /// The last run's context as JSON: status, times, per-component timings, metrics,
    /// logs, artifacts read and written, configuration.
    pub fn execution_summary(&self) -> serde_json::Value {
        serde_json::to_value(&self.context).unwrap_or(serde_json::Value::Null)
    }

    /// Train on a labelled inventory: validate, engineer, split, TF-IDF, forests,
    /// evaluate, save (and plots). Returns the model and its test metrics.
    pub fn train_model(
        &mut self,
        opts: &TrainOptions,
    ) -> Result<(EquipmentModel, EvaluationReport), OrchestratorError> {
        let config = serde_json::to_value(opts).unwrap_or_default();
        let mut context = PipelineContext::new("train", config);
        if let Err(e) = opts.validate() {
            context.finish(Some(e.to_string()));
            self.context = Some(context);
            return Err(e);
        }
        let features = self.feature_config_path(&opts.feature_config)?;
        let mut params = toml::Table::new();
        let put = |t: &mut toml::Table, k: &str, v: toml::Value| {
            t.insert(k.into(), v);
        };
        put(&mut params, "data", path_value(&opts.data_path));
        put(&mut params, "features", path_value(&features));
        if let Some(t) = opts.test_size {
            put(&mut params, "test_size", Value::Float(t));
        }
        if let Some(seed) = opts.random_state {
            put(&mut params, "seed", Value::Integer(seed as i64));
        }
        if let Some(trees) = opts.trees {
            put(&mut params, "trees", Value::Integer(trees as i64));
        }
        if let Some(learner) = opts.learner {
            put(&mut params, "learner", Value::String(learner.name().into()));
        }
        put(&mut params, "output_dir", path_value(&opts.output_dir));
        put(&mut params, "map", map_value(&opts.map));
        if let Some(k) = opts.keep_models {
            put(&mut params, "keep_models", Value::Integer(k as i64));
        }
        put(
            &mut params,
            "model_name",
            toml::Value::String(opts.model_name.clone()),
        );
        if let Some(rows) = &opts.test_rows {
            put(&mut params, "test_rows", path_value(rows));
        }
        // The search is part of the pipeline: a family of `model.cv_score` nodes, one per
        // (grid point, fold), after validation; the chosen point reaches the training nodes.
        if let Some(grid) = &opts.optimize {
            put(&mut params, "cv_folds", Value::Integer(opts.cv_folds as i64));
            for (k, v) in grid.params() {
                put(&mut params, &k, v);
            }
        }
        let finished = self.run(context, opts.pipeline.as_deref(), TRAIN_PIPELINE, params)?;
        let mut model: EquipmentModel = finished.artifact("model")?;
        // As `model.save` wrote it: with the mapping the data was loaded with.
        model.provenance.map = opts.map.clone();
        let metrics: EvaluationReport = finished.artifact("metrics")?;
        let search: Option<SearchResult> = opts
            .optimize
            .is_some()
            .then(|| finished.artifact("search"))
            .transpose()?;
        if let Some(c) = self.context.as_mut() {
            c.metrics = Some(metrics.clone());
            if let Some(result) = &search {
                c.config["search"] = serde_json::to_value(result).unwrap_or_default();
            }
        }
        Ok((model, metrics))
    }

    /// Predict every target for an inventory file with a saved model; writes `output`.
    pub fn predict(
        &mut self,
        model: &Path,
        data: &Path,
        output: &Path,
    ) -> Result<DataFrame, OrchestratorError> {
        self.predict_mapped(model, data, output, &IndexMap::new(), Keep::All)
    }

    /// [`Orchestrator::predict`] on an input whose columns are named differently: `map`
    /// gives, per column the model reads, the input column that holds it
    /// (`"description"` → `"Asset Description"`). The output keeps the input's columns
    /// under their own names ([`Keep::All`]) or only the id and the text used.
    pub fn predict_mapped(
        &mut self,
        model: &Path,
        data: &Path,
        output: &Path,
        map: &IndexMap<String, String>,
        keep: Keep,
    ) -> Result<DataFrame, OrchestratorError> {
        let map = ColumnMap(map.clone());
        map.check()?;
        self.predict_with(model, data, output, &map, keep, false)
    }

    /// [`Orchestrator::predict_mapped`]; with `strict`, a column the model was trained
    /// with that the input lacks is an error rather than a warning.
    pub fn predict_with(
        &mut self,
        model: &Path,
        data: &Path,
        output: &Path,
        map: &ColumnMap,
        keep: Keep,
        strict: bool,
    ) -> Result<DataFrame, OrchestratorError> {
        let config = serde_json::json!({
            "model": model, "data": data, "output": output, "map": map, "keep": keep, "strict": strict,
        });
        let context = PipelineContext::new("predict", config);
        let mut params = toml::Table::new();
        params.insert("map".into(), map_value(map));
        // Only when asked: a predict pipeline of the user's may have no `strict` param.
        if strict {
            params.insert("strict".into(), Value::Boolean(true));
        }
        // `keep` as the pipeline param spells it ("all" | "id"): Keep's own serde form.
        let keep = toml::Value::try_from(keep).map_err(|e| OrchestratorError::Invalid(e.to_string()))?;
        params.insert("keep".into(), keep);
        params.insert("model".into(), path_value(model));
        params.insert("data".into(), path_value(data));
        params.insert("output".into(), path_value(output));
        if let Some(r) = self.review_below {
            params.insert("review_below".into(), Value::Float(r));
        }
        let finished = self.run(context, None, PREDICT_PIPELINE, params)?;
        finished.artifact("predictions")
    }

    /// Evaluate a saved model on a labelled inventory; returns the metrics (also in the
    /// run directory's `metrics.json`, with confusion plots).
    pub fn evaluate(
        &mut self,
        model: &Path,
        data: &Path,
        features: Option<&Path>,
    ) -> Result<EvaluationReport, OrchestratorError> {
        self.evaluate_mapped(model, data, features, &ColumnMap::default())
    }

    /// [`Orchestrator::evaluate`] on a file whose columns `map` renames at load (the
    /// model's own training mapping applies too, where the file has those columns).
    /// Without `features`, the feature config stored in the model derives the targets.
    pub fn evaluate_mapped(
        &mut self,
        model: &Path,
        data: &Path,
        features: Option<&Path>,
        map: &ColumnMap,
    ) -> Result<EvaluationReport, OrchestratorError> {
        let config = serde_json::json!({ "model": model, "data": data, "features": features, "map": map });
        let context = PipelineContext::new("evaluate", config);
        map.check()?;
        let features = features.map_or_else(|| PathBuf::from("model"), Path::to_path_buf);
        let mut params = toml::Table::new();
        params.insert("map".into(), map_value(map));
        params.insert("model".into(), path_value(model));
        params.insert("data".into(), path_value(data));
        params.insert("features".into(), path_value(&features));
        let finished = self.run(context, None, EVALUATE_PIPELINE, params)?;
        let metrics: EvaluationReport = finished.artifact("metrics")?;
        if let Some(c) = self.context.as_mut() {
            c.metrics = Some(metrics.clone());
        }
        Ok(metrics)
    }

    /// Predict every target for an in-memory inventory with an in-memory model (no
    /// pipeline, no files): the same columns as [`Orchestrator::predict`] writes.
    pub fn predict_table(
        &self,
        model: &EquipmentModel,
        table: &DataFrame,
    ) -> Result<DataFrame, OrchestratorError> {
        Ok(model.predictions_table(table, "equipment_tag", &IndexMap::new(), Keep::All)?)
    }

    /// Evaluate an in-memory model on an in-memory labelled inventory (targets derived by
    /// the model's own feature configuration), for the given targets (all when empty).
    pub fn evaluate_table(
        &self,
        model: &EquipmentModel,
        table: &DataFrame,
        targets: &[String],
    ) -> Result<EvaluationReport, OrchestratorError> {
        let (engineered, _) = model.features.apply(table, crate::ml::features::Mode::Train)?;
        Ok(model.evaluation(&engineered, targets, 15)?)
    }

    /// Write a model file atomically.
    pub fn save_model(&self, model: &EquipmentModel, path: &Path) -> Result<(), OrchestratorError> {
        bundle::save(model, FORMAT_VERSION, path)?;
        Ok(())
    }

    /// Read a model file (header, version and checksum checked).
    pub fn load_model(&self, path: &Path) -> Result<EquipmentModel, OrchestratorError> {
        Ok(crate::ops::model::load_model(path)?)
    }

    /// The user's feature config, or the built-in one written into the runs directory
    /// (pipelines read feature configs from files).
    /// The feature config a run reads: the given file, or the one compiled in
    /// (`features.engineer` takes `"builtin"`; nothing is written).
    fn feature_config_path(&self, given: &Option<PathBuf>) -> Result<PathBuf, OrchestratorError> {
        Ok(given.clone().unwrap_or_else(|| PathBuf::from("builtin")))
    }

    /// Build and run a pipeline through one run session, recording everything in
    /// `context`.
    fn run(
        &mut self,
        mut context: PipelineContext,
        file: Option<&Path>,
        builtin: &'static str,
        params: toml::Table,
    ) -> Result<Finished, OrchestratorError> {
        let name = context.pipeline.clone();
        let file = file.or_else(|| self.pipeline_files.get(&name).map(PathBuf::as_path));
        let source = match file {
            Some(f) => Source::File(f.to_path_buf()),
            None => Source::Builtin { name, text: builtin },
        };
        let request = Request {
            // The caller's paths are relative to the working directory.
            overrides: Overrides {
                api: params,
                ..Default::default()
            },
            store: self.store.clone(),
            jobs: Some(self.jobs),
            legacy: self.legacy,
            runs_dir: self.runs_dir.clone(),
            ..Request::new(source, crate::ops::builtin())
        };
        let session = match Session::open(request) {
            Ok(s) => s,
            Err(e) => {
                let e = OrchestratorError::from(e);
                context.finish(Some(e.to_string()));
                self.context = Some(context);
                return Err(e);
            }
        };
        context.config["params"] = serde_json::to_value(&session.pipeline.params).unwrap_or_default();
        context.start();
        let shared = Mutex::new(context);
        let recorder = Recorder { context: &shared };
        let on_run_dir = |dir: &Path| {
            shared.lock().unwrap_or_else(|e| e.into_inner()).run_dir = Some(dir.to_path_buf());
            if let Some(hook) = &self.on_run_dir {
                hook(dir);
            }
        };
        let result = session.run(&Hooks {
            observer: &recorder,
            span: tracing::Span::none(),
            cancel: std::sync::Arc::clone(&self.cancel),
            on_run_dir: Some(&on_run_dir),
            runner: None,
        });
        let mut context = shared.into_inner().unwrap_or_else(|e| e.into_inner());
        let finished = match result {
            Ok(f) => f,
            Err(e) => {
                let e = OrchestratorError::from(e);
                context.finish(Some(e.to_string()));
                self.context = Some(context);
                return Err(e);
            }
        };
        let pipeline = &session.pipeline;
        let error = match finished.outcome.status {
            RunStatus::Ok => None,
            RunStatus::Interrupted => Some(OrchestratorError::Interrupted(pipeline.name.clone())),
            RunStatus::Failed => {
                let (i, r) = finished
                    .outcome
                    .records
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.status == NodeStatus::Failed)
                    .expect("a failed run has a failed node");
                Some(OrchestratorError::NodeFailed {
                    pipeline: pipeline.name.clone(),
                    node: pipeline.nodes[i].id.clone(),
                    chain: r.error.clone(),
                })
            }
        };
        context.finish(error.as_ref().map(|e| e.to_string()));
        self.context = Some(context);
        match error {
            Some(e) => Err(e),
            None => Ok(Finished {
                session,
                outcome: finished.outcome,
            }),
        }
    }

    /// The run directory of the last run.
    pub fn last_run_dir(&self) -> Option<&Path> {
        self.context.as_ref().and_then(|c| c.run_dir.as_deref())
    }
}

fn map_value(map: &ColumnMap) -> toml::Value {
    toml::Value::Table(
        map.iter()
            .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
            .collect(),
    )
}

fn path_value(p: &Path) -> toml::Value {
    toml::Value::String(p.display().to_string())
}
