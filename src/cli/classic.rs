//! `nexusml train`, `nexusml predict`, `nexusml evaluate`: the classic entry points, with
//! the Python tool's flags, run through the [`Orchestrator`].

use super::logging::RunLog;
use super::CliError;
use crate::ml::learner::LearnerKind;
use crate::ml::mapping::ColumnMap;
use crate::orchestrator::{Orchestrator, OrchestratorError, TrainOptions};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training inventory (CSV).
    #[arg(long)]
    pub data_path: PathBuf,
    /// Feature configuration (default: the built-in dags/features.toml).
    #[arg(long)]
    pub feature_config: Option<PathBuf>,
    /// Reference data configuration (checked and recorded; the model does not read it).
    #[arg(long)]
    pub reference_config: Option<PathBuf>,
    /// Fraction of rows held out for testing, strictly between 0 and 1 (default: the
    /// pipeline's `test_size`, 0.3).
    #[arg(long)]
    pub test_size: Option<f64>,
    /// Seed of the split and of the learner (default: the pipeline's `seed`, 42).
    #[arg(long)]
    pub random_state: Option<u64>,
    /// How training rows are sampled; only `direct` (no resampling) exists.
    #[arg(long, default_value = "direct")]
    pub sampling_strategy: String,
    /// Where model files go.
    #[arg(long, default_value = "outputs/models")]
    pub output_dir: PathBuf,
    /// Model file name stem.
    #[arg(long, default_value = "equipment_classifier")]
    pub model_name: String,
    /// Also copy the distribution and confusion plots to <output-dir>/visualizations/.
    #[arg(long)]
    pub visualize: bool,
    /// The original model, as the Python tool trains it: a random forest per target, the
    /// steps run one after another on one thread without the scheduler.
    #[arg(long, conflicts_with = "learner")]
    pub legacy: bool,
    /// What trains each target (default: the pipeline's `learner`).
    #[arg(long, value_enum)]
    pub learner: Option<LearnerArg>,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Trees per forest (default: the pipeline's `trees`, 200); the forest learner only.
    #[arg(long)]
    pub trees: Option<usize>,
    /// Search the learner's settings by k-fold cross-validation on the training split, then
    /// train with the best point (mean macro-F1 over targets): TF-IDF max_features
    /// {3000,5000,7000} × n-gram max {2,3} × the linear learners' C {0.3,1,3}, or with the
    /// forest × trees {100,200,300} × min_samples_leaf {1,2,4}.
    #[arg(long)]
    pub optimize: bool,
    /// Folds of the --optimize cross-validation.
    #[arg(long, default_value_t = 3)]
    pub cv_folds: usize,
    /// Train on a file whose columns are named differently: read a model column from a differently named column of your file:
    /// `--map manufacturer=Mfr` (repeatable; wins over --map-file). The model records the
    /// mapping and applies it when predicting or evaluating a file with those columns.
    #[arg(long = "map", value_name = "MODEL_COLUMN=INPUT_COLUMN")]
    pub map: Vec<String>,
    /// A mapping file: TOML, one `model_column = "your column"` per line.
    #[arg(long, value_name = "FILE")]
    pub map_file: Option<PathBuf>,
    /// Timestamped models kept per name in --output-dir, newest first (default 10; the
    /// `_latest` pair and models another metadata file points to are never removed).
    #[arg(long, value_name = "N")]
    pub keep_models: Option<usize>,
    #[command(flatten)]
    pub runs_dir: super::RunsDirArg,
    #[command(flatten)]
    pub store: super::StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LearnerArg {
    /// L2-loss linear SVM with calibrated probabilities.
    LinearSvc,
    /// Logistic regression.
    Logistic,
    /// The original random forest per target.
    Forest,
}

impl LearnerArg {
    fn kind(self) -> LearnerKind {
        match self {
            LearnerArg::LinearSvc => LearnerKind::LinearSvc,
            LearnerArg::Logistic => LearnerKind::Logistic,
            LearnerArg::Forest => LearnerKind::Forest,
        }
    }
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long, default_value = "outputs/models/equipment_classifier_latest.nxm")]
    pub model_path: PathBuf,
    /// The inventory to classify (CSV).
    #[arg(long)]
    pub input_file: PathBuf,
    /// Where the predictions CSV goes.
    #[arg(long, default_value = "prediction_results.csv")]
    pub output_file: PathBuf,
    /// The input's description column, if not `description`.
    #[arg(long)]
    pub description_column: Option<String>,
    /// The input's service-life column, if not `service_life`.
    #[arg(long)]
    pub service_life_column: Option<String>,
    /// The input's asset tag column, if not `equipment_tag`.
    #[arg(long)]
    pub asset_tag_column: Option<String>,
    /// Read a model column from a differently named input column:
    /// `--map manufacturer=Mfr` (repeatable; wins over --map-file and over the mapping
    /// the model was trained with, which applies by itself where the file has its columns).
    #[arg(long = "map", value_name = "MODEL_COLUMN=INPUT_COLUMN")]
    pub map: Vec<String>,
    /// A mapping file: TOML, one `model_column = "your column"` per line.
    #[arg(long, value_name = "FILE")]
    pub map_file: Option<PathBuf>,
    /// A column the model was trained with that the input lacks is an error, not a warning.
    #[arg(long)]
    pub strict: bool,
    /// Input columns kept in the output: `all` (under their own names) or `id` (the asset
    /// tag and the text the model read).
    #[arg(long, value_enum, default_value = "all")]
    pub keep: KeepArg,
    /// Rows whose lowest top probability over the targets is below this (or whose codes
    /// disagree with the category) go to `<output-file stem>_review.csv` beside the output
    /// (default: the pipeline's `review_below`, 0.7).
    #[arg(long, value_name = "PROBABILITY")]
    pub review_below: Option<f64>,
    /// Accepted for compatibility: the model carries its own feature configuration.
    #[arg(long)]
    pub feature_config_path: Option<PathBuf>,
    #[command(flatten)]
    pub runs_dir: super::RunsDirArg,
    #[command(flatten)]
    pub store: super::StoreArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeepArg {
    All,
    Id,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model file.
    #[arg(long, default_value = "outputs/models/equipment_classifier_latest.nxm")]
    pub model_path: PathBuf,
    /// A labelled inventory (CSV).
    #[arg(long)]
    pub data_path: PathBuf,
    /// Feature configuration that derives the targets (default: the one stored in the model).
    #[arg(long)]
    pub feature_config: Option<PathBuf>,
    /// Read a model column from a differently named column of your file:
    /// `--map manufacturer=Mfr` (repeatable; wins over --map-file and over the mapping the
    /// model was trained with, which applies by itself where the file has its columns).
    #[arg(long = "map", value_name = "MODEL_COLUMN=INPUT_COLUMN")]
    pub map: Vec<String>,
    /// A mapping file: TOML, one `model_column = "your column"` per line.
    #[arg(long, value_name = "FILE")]
    pub map_file: Option<PathBuf>,
    /// Also write the metrics JSON here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Copy the confusion plots next to the metrics (or into the run directory's plots/).
    #[arg(long)]
    pub visualize: bool,
    #[command(flatten)]
    pub runs_dir: super::RunsDirArg,
    #[command(flatten)]
    pub store: super::StoreArgs,
}

fn fail(e: OrchestratorError) -> CliError {
    match e {
        OrchestratorError::Invalid(msg) => CliError::Usage(msg),
        OrchestratorError::Mapping(e) => CliError::Usage(e.to_string()),
        OrchestratorError::Spec(e) => CliError::Spec(e),
        OrchestratorError::Graph(e) => CliError::Graph(e),
        OrchestratorError::Engine(e) => CliError::Engine(e),
        e @ OrchestratorError::Interrupted(_) => CliError::Interrupted(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

/// `--map-file` then the `--map`s, checked: one parser for every entry point.
fn column_map(file: Option<&std::path::Path>, args: &[String]) -> Result<ColumnMap, CliError> {
    if let Some(f) = file.filter(|f| !f.exists()) {
        return Err(CliError::Usage(format!(
            "Mapping file does not exist: {}",
            f.display()
        )));
    }
    ColumnMap::resolve(file, args).map_err(|e| CliError::Usage(e.to_string()))
}

/// Copy the PNGs of `<run>/plots` into `dest`, a real directory (a symbolic link planted
/// there is refused, never written through).
fn copy_plots(run: &std::path::Path, dest: &std::path::Path) -> Result<usize, CliError> {
    let io = |path: PathBuf| {
        move |source| CliError::Io {
            what: "cannot copy plots to",
            path,
            source,
        }
    };
    crate::fsx::dir(dest).map_err(|e| io(dest.into())(std::io::Error::other(e.reason())))?;
    let mut n = 0;
    for entry in std::fs::read_dir(run.join("plots")).map_err(io(dest.into()))? {
        let path = entry.map_err(io(dest.into()))?.path();
        if path.extension().is_some_and(|e| e == "png") {
            let to = dest.join(path.file_name().unwrap_or_default());
            let bytes = std::fs::read(&path).map_err(io(path.clone()))?;
            crate::atomic_file::write_atomic(&to, &bytes).map_err(io(to.clone()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// An orchestrator whose runs log to `<run>/run.log` as well as the terminal.
fn orchestrator(runs_dir: &super::RunsDirArg, store: &super::StoreArgs, run_log: &RunLog) -> Orchestrator {
    let mut o = Orchestrator::new();
    o.runs_dir = runs_dir.runs_dir.clone();
    o.store = store.dir();
    // As `dag run`: the first Ctrl-C (or SIGTERM, SIGHUP) lets running nodes finish and
    // writes the report (exit 130, 143, 129); a second one quits at once.
    o.cancel = crate::engine::interrupt::install();
    let log = run_log.clone();
    o.on_run_dir = Some(Box::new(move |dir| {
        if let Err(e) = log.attach(&dir.join("run.log")) {
            tracing::warn!("cannot write {}: {e}", dir.join("run.log").display());
        }
    }));
    o
}

pub(crate) fn train(args: TrainArgs, run_log: &RunLog) -> Result<ExitCode, CliError> {
    let mut orchestrator = orchestrator(&args.runs_dir, &args.store, run_log);
    orchestrator.legacy = args.legacy;
    if let Some(j) = args.jobs {
        orchestrator.jobs = crate::engine::check_jobs(j)?;
    }
    // `--legacy` is the original model: forests, sequentially.
    let learner = match (args.legacy, args.learner) {
        (true, _) => Some(LearnerKind::Forest),
        (false, l) => l.map(LearnerArg::kind),
    };
    let effective = learner.unwrap_or_else(default_learner);
    if args.trees.is_some() && effective != LearnerKind::Forest {
        tracing::warn!(
            "--trees sets the forest's trees, and the learner is {}: it does not apply (--learner forest \
             trains forests)",
            effective.name()
        );
    }
    let opts = TrainOptions {
        learner,
        feature_config: args.feature_config.clone(),
        reference_config: args.reference_config.clone(),
        test_size: args.test_size,
        random_state: args.random_state,
        sampling_strategy: args.sampling_strategy.clone(),
        output_dir: args.output_dir.clone(),
        model_name: args.model_name.clone(),
        trees: args.trees,
        optimize: args
            .optimize
            .then(|| crate::ml::search::SearchGrid::for_learner(effective)),
        cv_folds: args.cv_folds,
        map: column_map(args.map_file.as_deref(), &args.map)?,
        keep_models: args.keep_models,
        ..TrainOptions::new(&args.data_path)
    };
    if args.reference_config.is_some() {
        tracing::warn!(
            "--reference-config is checked and recorded, but this model does not read reference data"
        );
    }
    tracing::info!(
        "training on {} ({}, {} path)",
        args.data_path.display(),
        effective.name(),
        if args.legacy {
            "the original model, sequential"
        } else {
            "parallel DAG"
        }
    );
    let (_, metrics) = orchestrator.train_model(&opts).map_err(fail)?;
    let run = orchestrator.last_run_dir().map(PathBuf::from).unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string(run.join("sample_prediction.json")) {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            say!(
                "Sample prediction (\"{}\"):",
                json["record"]["description"].as_str().unwrap_or("")
            );
            for p in json["predictions"].as_array().into_iter().flatten() {
                say!(
                    "  {:<22} {} ({:.2})",
                    p["target"].as_str().unwrap_or(""),
                    p["label"].as_str().unwrap_or(""),
                    p["probability"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    say!("\n{}\n", metrics.table());
    let model = args.output_dir.join(format!("{}_latest.nxm", args.model_name));
    say!("model:    {}", model.display());
    say!(
        "metadata: {}",
        args.output_dir
            .join(format!("{}_latest_metadata.json", args.model_name))
            .display()
    );
    say!(
        "run:      {} (report.json, run.log, metrics.json, plots/)",
        run.display()
    );
    if let Some(search) = orchestrator.context().and_then(|c| c.config.get("search")) {
        say!(
            "search:   best {} (mean macro-F1 {:.4} over {} folds); every point in {}",
            search["best"]["point"],
            search["best"]["score"].as_f64().unwrap_or(0.0),
            search["folds"],
            run.join("search.json").display()
        );
    }
    if args.visualize {
        let dest = args.output_dir.join("visualizations");
        let n = copy_plots(&run, &dest)?;
        say!("plots:    {} ({n} files)", dest.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The learner `dags/train.toml` trains with when none is named.
fn default_learner() -> LearnerKind {
    toml::from_str::<toml::Table>(crate::orchestrator::TRAIN_PIPELINE)
        .ok()
        .and_then(|t| {
            let name = t.get("params")?.get("learner")?.as_str()?.to_string();
            toml::Value::String(name).try_into().ok()
        })
        .unwrap_or_default()
}

pub(crate) fn predict(args: PredictArgs, run_log: &RunLog) -> Result<ExitCode, CliError> {
    if !args.input_file.exists() {
        return Err(CliError::Usage(format!(
            "Input file does not exist: {}",
            args.input_file.display()
        )));
    }
    if !args.model_path.exists() {
        return Err(CliError::Usage(format!(
            "Model file does not exist: {}",
            args.model_path.display()
        )));
    }
    if let Some(p) = args.feature_config_path.as_ref().filter(|p| !p.exists()) {
        return Err(CliError::Usage(format!(
            "Feature config path does not exist: {}",
            p.display()
        )));
    }
    // The Python tool's three column flags are three more `--map`s.
    let mut pairs: Vec<String> = Vec::new();
    for (given, wanted) in [
        (&args.description_column, "description"),
        (&args.service_life_column, "service_life"),
        (&args.asset_tag_column, "equipment_tag"),
    ] {
        if let Some(col) = given {
            pairs.push(format!("{wanted}={col}"));
        }
    }
    pairs.extend(args.map.iter().cloned());
    let map = column_map(args.map_file.as_deref(), &pairs)?;
    let keep = match args.keep {
        KeepArg::All => crate::orchestrator::Keep::All,
        KeepArg::Id => crate::orchestrator::Keep::Id,
    };
    if let Some(r) = args
        .review_below
        .filter(|r| !(r.is_finite() && (0.0..=1.0).contains(r)))
    {
        return Err(CliError::Usage(format!(
            "--review-below {r}: expected a probability from 0 to 1"
        )));
    }
    let mut orchestrator = orchestrator(&args.runs_dir, &args.store, run_log);
    orchestrator.review_below = args.review_below;
    let predictions = orchestrator
        .predict_with(
            &args.model_path,
            &args.input_file,
            &args.output_file,
            &map,
            keep,
            args.strict,
        )
        .map_err(fail)?;
    say!(
        "predicted {} rows; wrote {}",
        predictions.height(),
        args.output_file.display()
    );
    // The run's summary repeats what the model lacked (logged as the run went).
    let run = orchestrator.last_run_dir().map(PathBuf::from).unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string(run.join("predictions_summary.json")) {
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for w in json["warnings"].as_array().into_iter().flatten() {
            say!("warning: {}", w.as_str().unwrap_or_default());
        }
    }
    let to_review = predictions
        .column("needs_review")
        .ok()
        .and_then(|c| c.bool().ok().map(|b| b.sum().unwrap_or(0)));
    if let Some(n) = to_review {
        say!(
            "{n} rows to review (a target below {:.2}, or codes that disagree): {}",
            args.review_below.unwrap_or(crate::ops::model::REVIEW_BELOW),
            crate::ml::review::review_path(&args.output_file).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn evaluate(args: EvaluateArgs, run_log: &RunLog) -> Result<ExitCode, CliError> {
    if !args.data_path.exists() {
        return Err(CliError::Usage(format!(
            "Data path does not exist: {}",
            args.data_path.display()
        )));
    }
    if !args.model_path.exists() {
        return Err(CliError::Usage(format!(
            "Model file does not exist: {}",
            args.model_path.display()
        )));
    }
    let mut orchestrator = orchestrator(&args.runs_dir, &args.store, run_log);
    let map = column_map(args.map_file.as_deref(), &args.map)?;
    let metrics = orchestrator
        .evaluate_mapped(
            &args.model_path,
            &args.data_path,
            args.feature_config.as_deref(),
            &map,
        )
        .map_err(fail)?;
    say!("{}\n", metrics.table());
    for w in metrics
        .targets
        .iter()
        .flat_map(|t| &t.warnings)
        .chain(&metrics.warnings)
    {
        say!("warning: {w}");
    }
    let run = orchestrator.last_run_dir().map(PathBuf::from).unwrap_or_default();
    if let Some(out) = &args.output {
        let json = serde_json::to_vec_pretty(&metrics).map_err(|e| CliError::Failed(e.to_string()))?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CliError::Io {
                what: "cannot create",
                path: parent.into(),
                source,
            })?;
        }
        crate::atomic_file::write_atomic(out, &json).map_err(|source| CliError::Io {
            what: "cannot write",
            path: out.clone(),
            source,
        })?;
        say!("metrics: {}", out.display());
    }
    say!("run:     {} (metrics.json, plots/)", run.display());
    if args.visualize {
        let dest = args
            .output
            .as_ref()
            .and_then(|o| o.parent())
            .map_or_else(|| run.join("plots"), |p| p.join("visualizations"));
        if dest != run.join("plots") {
            let n = copy_plots(&run, &dest)?;
            say!("plots:   {} ({n} files)", dest.display());
        } else {
            say!("plots:   {}", dest.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
