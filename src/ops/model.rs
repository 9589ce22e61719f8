//! Model ops: `text.tfidf`, `model.train` (and the original `model.train_forest`),
//! `model.evaluate`, `model.save`, `model.load`, `model.predict`, `model.write_review`,
//! `model.predict_one`.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, PathField, Port, Registry, RunDirWrite};
use crate::clock::Utc;
use crate::ml::bundle;
use crate::ml::codes::CodesConfig;
use crate::ml::features::FeatureConfig;
use crate::ml::forest::ForestConfig;
use crate::ml::learner::{Learned, LearnerConfig, LearnerKind};
use crate::ml::linear::{LinearConfig, Loss};
use crate::ml::mapping::ColumnMap;
use crate::ml::metrics::EvaluationReport;
use crate::ml::model::{EquipmentModel, Featurizer, Keep, Prediction, FORMAT_VERSION};
use crate::ml::provenance::Provenance;
use crate::ml::review::{predict_inventory, review_path, ReviewOptions};
use crate::ml::sparse::Csr;
use crate::ml::split::SplitIndices;
use crate::ml::text::TfidfConfig;
use crate::op::NodeContext;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tracing_indicatif::span_ext::IndicatifSpanExt;

#[derive(Debug, thiserror::Error)]
pub enum ModelOpError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fingerprint the training data {path}: {source}")]
    Fingerprint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the test table has no target column `{0}`")]
    NoTarget(String),
}

/// Write a file as this node's (atomically; recorded for the artifact store).
fn write_file(ctx: &mut NodeContext<'_>, path: &Path, bytes: Vec<u8>) -> Result<(), OpError> {
    ctx.write_file(path, bytes)
        .map_err(|source| ModelOpError::Write {
            path: path.into(),
            source,
        })?;
    Ok(())
}

fn write_json<T: Serialize>(ctx: &mut NodeContext<'_>, path: &Path, value: &T) -> Result<(), OpError> {
    write_file(ctx, path, serde_json::to_vec_pretty(value)?)
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct EvaluateConfig {
    top_terms: usize,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig { top_terms: 15 }
    }
}

impl OpConfig for EvaluateConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::optional(
        "top_terms",
        "integer",
        "terms listed per target",
    )];
}

/// What `model.evaluate` writes in the run directory.
const METRICS_FILE: &str = "metrics.json";

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SaveConfig {
    output_dir: PathBuf,
    #[serde(default = "model_name")]
    model_name: String,
    /// The training data file, fingerprinted (SHA-256) into the metadata.
    #[serde(default)]
    data: String,
    /// The column mapping the training data was loaded with, recorded in the model.
    #[serde(default)]
    map: ColumnMap,
    /// Timestamped models of this name kept ([`super::prune`]).
    #[serde(default = "keep_default")]
    keep: usize,
}

fn keep_default() -> usize {
    super::prune::KEEP_DEFAULT
}

fn model_name() -> String {
    "equipment_classifier".into()
}

impl Default for SaveConfig {
    fn default() -> Self {
        SaveConfig {
            output_dir: PathBuf::new(),
            model_name: model_name(),
            data: String::new(),
            map: ColumnMap::default(),
            keep: keep_default(),
        }
    }
}

impl OpConfig for SaveConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::required("output_dir", "string", "directory for model files"),
        FieldDoc::optional("model_name", "string", "file name stem"),
        FieldDoc::optional("data", "string", "training data file to fingerprint"),
        FieldDoc::optional(
            "map",
            "table",
            "the column mapping the data was loaded with (recorded in the model; predict and evaluate apply it)",
        ),
        FieldDoc::optional(
            "keep",
            "integer",
            "timestamped models of this name kept, newest first (default 10; the _latest pair and models a \
             metadata file points to are never removed)",
        ),
    ];
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LoadConfig {
    path: PathBuf,
}

impl OpConfig for LoadConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required("path", "string", "a .nxm file")];
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct PredictConfig {
    id_column: String,
    /// Model column → the input column that holds it.
    map: ColumnMap,
    keep: Keep,
    /// A column the model was trained with and the input lacks is an error, not a warning.
    strict: bool,
    /// A row whose lowest top probability is below this goes to review.
    review_below: f64,
}

/// The default confidence a row must reach on every target to stay out of review.
pub const REVIEW_BELOW: f64 = 0.7;

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            id_column: "equipment_tag".into(),
            map: ColumnMap::default(),
            keep: Keep::default(),
            strict: false,
            review_below: REVIEW_BELOW,
        }
    }
}

impl OpConfig for PredictConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional(
            "id_column",
            "string",
            "the input's id column (kept with keep = \"id\")",
        ),
        FieldDoc::optional(
            "map",
            "table",
            "model column = input column, e.g. { manufacturer = \"Mfr\" }",
        ),
        FieldDoc::optional(
            "keep",
            "\"all\" | \"id\"",
            "input columns in the output: all of them (their own names), or the id and the text used",
        ),
        FieldDoc::optional(
            "strict",
            "bool",
            "a column the model was trained with that the input lacks is an error (else a warning)",
        ),
        FieldDoc::optional(
            "review_below",
            "float",
            "rows whose lowest top probability is below this (or whose codes disagree) go to review",
        ),
    ];
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WriteReviewConfig {
    /// The predictions file the review queue sits beside.
    predictions: PathBuf,
}

impl OpConfig for WriteReviewConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required(
        "predictions",
        "string",
        "the predictions file; the queue goes beside it as <stem>_review.csv",
    )];
}

/// `model.train`'s settings: the learner and each learner's own table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TrainConfig {
    learner: LearnerKind,
    linear: LinearConfig,
    forest: ForestConfig,
    codes: CodesConfig,
}

impl OpConfig for TrainConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional(
            "learner",
            "\"linear_svc\" | \"logistic\" | \"forest\"",
            "what trains each target: the L2-loss linear SVM, logistic regression, or the original random forest",
        ),
        FieldDoc::optional(
            "linear",
            "{ c, tol, max_iter, class_weight, intercept_scaling, seed, calibration, calibration_folds, loss }",
            "the linear learners' settings (loss follows learner; c in (0, 1e6], max_iter at most 100,000, calibration_folds 2 to 10)",
        ),
        FieldDoc::optional(
            "forest",
            "{ n_trees, max_features, min_samples_split, min_samples_leaf, max_depth, bootstrap, class_weight, seed, learner }",
            "the forest's settings (as model.train_forest; n_trees at most 10,000)",
        ),
        FieldDoc::optional(
            "codes",
            "{ category, codes }",
            "the category target and the code targets checked against it (category = \"\": no check)",
        ),
    ];
}

/// The keys of a `model.train` settings table; a table with none of them (in a search's
/// `train` settings) is `model.train_forest`'s, a forest's settings.
const TRAIN_KEYS: [&str; 4] = ["learner", "linear", "forest", "codes"];

/// A search point's `train` settings as `model.train`'s: as they are, or a forest's
/// settings (`model.train_forest`'s table: `{ n_trees, … }`) as `{ learner = "forest",
/// forest = { … } }`.
pub(crate) fn as_train_settings(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o)
            if !o.is_empty() && !o.keys().any(|k| TRAIN_KEYS.contains(&k.as_str())) =>
        {
            serde_json::json!({ "learner": "forest", "forest": v })
        }
        _ => v.clone(),
    }
}

/// A search's `train` settings (over the defaults) as the learner they train: read as
/// `model.train`'s table when it names any of its keys, else as `model.train_forest`'s
/// (so an empty table is the default forest, as before `model.train` existed).
pub(crate) fn search_learner(v: &serde_json::Value) -> Result<LearnerConfig, String> {
    let is_train =
        matches!(v, serde_json::Value::Object(o) if o.keys().any(|k| TRAIN_KEYS.contains(&k.as_str())));
    if is_train {
        let c: TrainConfig = crate::ml::search::overlay(&TrainConfig::default(), v)?;
        c.learner()
    } else {
        let f: ForestConfig = crate::ml::search::overlay(&ForestConfig::default(), v)?;
        f.check().map_err(|e| e.to_string())?;
        Ok(LearnerConfig::Forest(f))
    }
}

impl TrainConfig {
    /// The learner with its settings, or why the settings do not fit together.
    pub(crate) fn learner(&self) -> Result<LearnerConfig, String> {
        let config = match self.learner {
            LearnerKind::Forest => LearnerConfig::Forest(self.forest.clone()),
            LearnerKind::LinearSvc if self.linear.loss == Loss::Logistic => {
                return Err(
                    "`linear.loss = \"logistic\"` with `learner = \"linear_svc\"`: the loss follows the learner; \
                     use learner = \"logistic\""
                        .into(),
                )
            }
            LearnerKind::LinearSvc => LearnerConfig::Linear(self.linear.clone()),
            LearnerKind::Logistic => LearnerConfig::Linear(LinearConfig {
                loss: Loss::Logistic,
                ..self.linear.clone()
            }),
        };
        config.check()?;
        Ok(config)
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PredictOneConfig {
    record: toml::Table,
    #[serde(default = "sample_file")]
    file: String,
}

fn sample_file() -> String {
    "sample_prediction.json".into()
}

impl Default for PredictOneConfig {
    fn default() -> Self {
        PredictOneConfig {
            record: toml::Table::new(),
            file: sample_file(),
        }
    }
}

impl OpConfig for PredictOneConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::required(
            "record",
            "table",
            "column → value, e.g. { description = \"...\", service_life = 20 }",
        ),
        FieldDoc::optional("file", "string", "output file name, in the run directory"),
    ];
}

/// `text.tfidf`'s fields; the defaults are `TfidfConfig`'s own.
impl OpConfig for TfidfConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional("ngram_min", "integer", "smallest n-gram (at least 1)"),
        FieldDoc::optional("ngram_max", "integer", "largest n-gram (at most 16)"),
        FieldDoc::optional("max_features", "integer", "keep the most frequent terms (1 to 1,000,000)"),
        FieldDoc::optional(
            "min_df",
            "integer | float",
            "fewest documents (count or fraction)",
        ),
        FieldDoc::optional("max_df", "integer | float", "most documents (count or fraction)"),
        FieldDoc::optional("sublinear_tf", "bool", "tf → 1 + ln(tf)"),
        FieldDoc::optional(
            "analyzer",
            "\"word\" | \"char_wb\"",
            "word n-grams, or character n-grams inside word boundaries (scikit-learn's char_wb)",
        ),
        FieldDoc::optional(
            "char_wb",
            "{ ngram_min, ngram_max, max_features, enabled }",
            "a char_wb block beside the main one (each L2-normalised, as a FeatureUnion); enabled = false: none",
        ),
    ];
}

/// `model.train_forest`'s fields; the defaults are `ForestConfig`'s own.
impl OpConfig for ForestConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional("n_trees", "integer", "trees per forest (1 to 10,000)"),
        FieldDoc::optional(
            "max_features",
            "\"sqrt\" | \"log2\" | \"all\" | {count=N} | {fraction=F}",
            "features tried per split (unset: \"sqrt\"; with learner = \"linfa_tree\" it must stay unset)",
        ),
        FieldDoc::optional(
            "min_samples_split",
            "integer",
            "fewest samples to split a node (at most 100,000,000)",
        ),
        FieldDoc::optional(
            "min_samples_leaf",
            "integer",
            "fewest samples in a leaf (at most 100,000,000)",
        ),
        FieldDoc::optional(
            "max_depth",
            "integer",
            "deepest tree (none: unlimited; at most 100,000)",
        ),
        FieldDoc::optional("bootstrap", "bool", "sample rows with replacement per tree"),
        FieldDoc::optional(
            "class_weight",
            "\"none\" | \"balanced\" | \"balanced_subsample\"",
            "per-class weights",
        ),
        FieldDoc::optional("seed", "integer", "every tree's seed derives from it"),
        FieldDoc::optional(
            "learner",
            "\"sparse\" | \"linfa_tree\"",
            "who grows the trees: nexusml's sparse trees, or linfa-trees (for comparison; slow)",
        ),
    ];
}

/// Where `model.save` put the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    pub model: PathBuf,
    pub metadata: PathBuf,
    pub latest: PathBuf,
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "text.tfidf",
            "Fit TF-IDF (scikit-learn semantics) on the model text and a scaler on the numeric columns; \
             output the featurizer and the training matrix.",
            |c: TfidfConfig| {
                c.check().map_err(|e| e.to_string())?;
                Ok(FitTfidf(c.normalized()))
            },
        )
        .input(Port::new::<DataFrame>("table", "engineered training rows"))
        .input(Port::new::<FeatureConfig>("features", "the feature config"))
        .input(
            Port::new::<crate::ml::search::SearchResult>(
                "search",
                "a search whose chosen point sets TF-IDF settings",
            )
            .optional(),
        )
        .output(Port::new::<Featurizer>(
            "featurizer",
            "vocabulary, idf and scaler",
        ))
        .output(Port::new::<Csr>("matrix", "training feature matrix (sparse)"))
        .stops_when_cancelled(),
    );
    r.register(
        OpSpec::new(
            "model.train",
            "Train a model per distinct target with the chosen learner (linear SVM, logistic regression or random \
             forest) and learn which codes each category takes.",
            |c: TrainConfig| {
                c.learner()?;
                Ok(Train(TrainSettings::Train(c)))
            },
        )
        .input(Port::new::<DataFrame>("table", "engineered training rows (for the labels)"))
        .input(Port::new::<FeatureConfig>("features", "the feature config"))
        .input(Port::new::<Featurizer>("featurizer", "from text.tfidf"))
        .input(Port::new::<Csr>("matrix", "from text.tfidf"))
        .input(
            Port::new::<crate::ml::search::SearchResult>(
                "search",
                "a search whose chosen point sets the learner's settings",
            )
            .optional(),
        )
        .output(Port::new::<EquipmentModel>("model", "the trained classifier"))
        .stops_when_cancelled(),
    );
    r.register(
        OpSpec::new(
            "model.train_forest",
            "Train one random forest per distinct target (identically derived targets share one), trees in parallel.",
            |c: ForestConfig| {
                c.check().map_err(|e| e.to_string())?;
                Ok(Train(TrainSettings::Forest(c)))
            },
        )
        .input(Port::new::<DataFrame>("table", "engineered training rows (for the labels)"))
        .input(Port::new::<FeatureConfig>("features", "the feature config"))
        .input(Port::new::<Featurizer>("featurizer", "from text.tfidf"))
        .input(Port::new::<Csr>("matrix", "from text.tfidf"))
        .input(
            Port::new::<crate::ml::search::SearchResult>("search", "a search whose chosen point sets the forest's settings")
                .optional(),
        )
        .output(Port::new::<EquipmentModel>("model", "the trained classifier"))
        .version(
            4,
            "the model in file format 2 (its forests unchanged) (3: the model records its inputs' fill and a \
             fingerprint of its training rows; 2: a row with an empty label is left out of that target's trees)",
        )
        .stops_when_cancelled(),
    );
    r.register(
        OpSpec::new(
            "model.evaluate",
            "Accuracy, macro/weighted F1, per-class report, confusion matrix, \"Other\" analysis and top terms per target; \
             writes metrics.json.",
            |c: EvaluateConfig| Ok(Evaluate(c)),
        )
        .writes_in_run_dir(|_: &EvaluateConfig| vec![RunDirWrite::file(METRICS_FILE)])
        .input(Port::new::<EquipmentModel>("model", "the classifier"))
        .input(Port::new::<DataFrame>("table", "engineered test rows"))
        .output(Port::new::<EvaluationReport>("metrics", "the report").optional())
        .version(
            4,
            "calibration (ECE, Brier, accuracy at coverage) per target; codes that agree (3: warnings for \
             classes never trained and for training rows; 2: rows with an empty label are not scored; \
             single-class warnings)",
        ),
    );
    r.register(
        OpSpec::new(
            "model.save",
            "Write <output_dir>/<model_name>_<UTC>.nxm and _metadata.json, plus _latest copies, atomically.",
            |c: SaveConfig| {
                super::plain_file_name("model_name", &c.model_name)?;
                c.map.check().map_err(|e| e.to_string())?;
                super::prune::check_keep(c.keep)?;
                Ok(Save(c))
            },
        )
        .path_field(PathField::new("output_dir"))
        .path_field(PathField::new("data"))
        .input(Port::new::<EquipmentModel>("model", "the classifier"))
        .input(Port::new::<EvaluationReport>("metrics", "metrics for the metadata").optional())
        .input(Port::new::<SplitIndices>("split", "row counts for the metadata").optional())
        .input(
            Port::new::<crate::ml::search::SearchResult>("search", "the search, for the metadata").optional(),
        )
        .output(Port::new::<SavedModel>("saved", "the written paths").optional())
        .version(
            4,
            "model file format 2; the learner in the metadata (3: the column mapping in the model; input fill \
             and fingerprint size in the metadata; prunes old models; 2: labelled rows per target in the metadata)",
        )
        .reads_params(),
    );
    r.register(
        OpSpec::new(
            "model.load",
            "Read a model file (header, version and checksum checked; format 1 files load as forest models).",
            |c: LoadConfig| Ok(Load(c)),
        )
        .path_field(PathField::new("path"))
        .output(Port::new::<EquipmentModel>("model", "the classifier"))
        .version(2, "model file format 2"),
    );
    r.register(
        OpSpec::new(
            "model.predict",
            "Predict every target for an inventory: the input's columns (all, or the id and the text used), \
             then per target the 3 most probable labels with their probabilities, whether the codes agree with \
             the category, and whether the row needs review; and the review queue.",
            |c: PredictConfig| {
                c.map.check().map_err(|e| e.to_string())?;
                if !(c.review_below.is_finite() && (0.0..=1.0).contains(&c.review_below)) {
                    return Err(format!(
                        "`review_below` = {}: a probability from 0 to 1",
                        c.review_below
                    ));
                }
                Ok(Predict(c))
            },
        )
        .input(Port::new::<EquipmentModel>("model", "the classifier"))
        .input(Port::new::<DataFrame>(
            "table",
            "the inventory (raw: it is engineered here)",
        ))
        .output(Port::new::<DataFrame>("predictions", "one row per input row"))
        .output(
            Port::new::<DataFrame>(
                "review",
                "the rows to review, least confident first, with the reason",
            )
            .optional(),
        )
        .version(
            4,
            "top-3 labels, codes_agree, needs_review; the review queue; applies the model's recorded mapping; \
             warns of (or, strict, refuses) absent trained columns (4: review and strict; 3: writes \
             predictions_summary.json; 2: keeps the input's columns; `map`)",
        ),
    );
    r.register(
        OpSpec::new(
            "model.write_review",
            "Write the review queue as CSV beside the predictions file, named by it (predictions.csv → \
             predictions_review.csv), and say how many rows went to review.",
            |c: WriteReviewConfig| Ok(WriteReview(c)),
        )
        .path_field(PathField::new("predictions"))
        .input(Port::new::<DataFrame>("review", "from model.predict")),
    );
    r.register(
        OpSpec::new(
            "model.predict_one",
            "Predict one record given in `record` (column = value); log it and write it to `file` in the run directory.",
            |c: PredictOneConfig| {
                super::inside_run_dir("file", &c.file)?;
                Ok(PredictOne(c))
            },
        )
        .writes_in_run_dir(|c: &PredictOneConfig| vec![RunDirWrite::file(&c.file)])
        .input(Port::new::<EquipmentModel>("model", "the classifier"))
        .output(Port::new::<Vec<Prediction>>("prediction", "per target label and probability").optional()),
    );
}

struct FitTfidf(TfidfConfig);
impl Op for FitTfidf {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let table = ctx.input::<DataFrame>("table")?;
        let features = ctx.input::<FeatureConfig>("features")?;
        // `char_wb = { enabled = false }` (a search point's, too) is no block.
        let config = super::search::tuned(ctx, &self.0, |b| &b.tfidf)?.normalized();
        config.check()?;
        let (featurizer, matrix) = Featurizer::fit_until(&table, &features, &config, ctx.cancel_flag())?;
        tracing::info!(
            "TF-IDF: {} terms from {} documents; matrix {}×{} with {} non-zeros",
            featurizer.tfidf.n_features(),
            matrix.n_rows,
            matrix.n_rows,
            matrix.n_cols,
            matrix.nnz()
        );
        ctx.output("featurizer", featurizer)?;
        ctx.output("matrix", matrix)?;
        Ok(())
    }
}

/// The settings of a training node: `model.train`'s, or `model.train_forest`'s.
enum TrainSettings {
    Train(TrainConfig),
    Forest(ForestConfig),
}

struct Train(TrainSettings);

impl Train {
    /// The learner and the code book's settings, with the chosen point of a search on
    /// the optional `search` input laid over the node's own.
    fn settings(&self, ctx: &NodeContext<'_>) -> Result<(LearnerConfig, CodesConfig), OpError> {
        match &self.0 {
            TrainSettings::Forest(f) => {
                let f = super::search::tuned(ctx, f, |b| &b.train)?;
                f.check()?;
                let none = CodesConfig {
                    category: String::new(),
                    codes: Vec::new(),
                };
                Ok((LearnerConfig::Forest(f), none))
            }
            TrainSettings::Train(t) => {
                let t: TrainConfig = super::search::tuned_with(ctx, t, |b| as_train_settings(&b.train))?;
                let learner = t.learner().map_err(|e| -> OpError { e.into() })?;
                Ok((learner, t.codes))
            }
        }
    }
}

impl Op for Train {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let table = ctx.input::<DataFrame>("table")?;
        let features = ctx.input::<FeatureConfig>("features")?;
        let featurizer = ctx.input::<Featurizer>("featurizer")?;
        let matrix = ctx.input::<Csr>("matrix")?;
        let (learner, codes) = self.settings(ctx)?;
        let distinct = {
            let mut seen: Vec<Option<String>> = Vec::new();
            let mut n = 0;
            for t in &features.targets {
                let d = features.derivation(t);
                if d.is_none() || !seen.contains(&d) {
                    n += 1;
                    seen.push(d);
                }
            }
            n
        };
        // Progress over trees (or linear models) on the node's line (a terminal only; a
        // no-op when piped).
        let span = tracing::Span::current();
        span.pb_set_length(match &learner {
            LearnerConfig::Forest(f) => (distinct * f.n_trees) as u64,
            LearnerConfig::Linear(_) => distinct as u64,
        });
        let tick = || span.pb_inc(1);
        let started = std::time::Instant::now();
        let mut model = EquipmentModel::train_until(
            &table,
            &features,
            (*featurizer).clone(),
            &matrix,
            &learner,
            &codes,
            &tick,
            ctx.cancel_flag(),
        )?;
        for m in &model.models {
            let left_out = table.height().saturating_sub(m.labelled_rows);
            let labelled = format!(
                "{} labelled rows{}",
                m.labelled_rows,
                if left_out > 0 {
                    format!(" ({left_out} without a label left out)")
                } else {
                    String::new()
                }
            );
            match &m.learned {
                Learned::Forest(f) => {
                    let depth = f.trees.iter().map(|t| t.depth()).max().unwrap_or(0);
                    let nodes: usize = f.trees.iter().map(|t| t.nodes.len()).sum();
                    tracing::info!(
                        "forest for {}: {} classes, {} trees, {} nodes, max depth {depth}; {labelled}",
                        m.names(),
                        m.classes.len(),
                        f.trees.len(),
                        nodes,
                    );
                }
                Learned::Linear(l) => {
                    let passes = l.iterations.iter().max().copied().unwrap_or(0);
                    tracing::info!(
                        "{} for {}: {} classes, {} sub-problems (at most {passes} passes), {}; {labelled}",
                        m.learned.kind_name(),
                        m.names(),
                        m.classes.len(),
                        l.iterations.len(),
                        match &l.calibrator {
                            crate::ml::calibration::Calibrator::Sigmoid =>
                                "its own probabilities".to_string(),
                            crate::ml::calibration::Calibrator::Platt { .. } =>
                                "Platt-calibrated".to_string(),
                            crate::ml::calibration::Calibrator::Temperature { t } =>
                                format!("softmax temperature {t:.4}"),
                        },
                    );
                }
            }
            if m.classes.len() == 1 {
                tracing::warn!(
                    "target {} has a single class (\"{}\") in the training rows: the model predicts it for \
                     every row, and its metrics say nothing",
                    m.names(),
                    m.classes[0]
                );
            }
        }
        if !model.codes.is_empty() {
            let per_category =
                |t: &crate::ml::codes::CodeTable| t.allowed.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
            tracing::info!(
                "codes that agree: {} against {} ({})",
                model
                    .codes
                    .tables
                    .iter()
                    .map(|t| t.target.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                model.codes.category,
                model
                    .codes
                    .tables
                    .iter()
                    .map(|t| format!("{}: up to {} per category", t.target, per_category(t)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tracing::debug!("trained in {:.3} s", started.elapsed().as_secs_f64());
        // The mapping is the load's; `model.save` records it (its `map`).
        model.provenance = Provenance::of_training(&model, &table, &ColumnMap::default());
        ctx.output("model", model)?;
        Ok(())
    }
}

struct Evaluate(EvaluateConfig);
impl Op for Evaluate {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let model = ctx.input::<EquipmentModel>("model")?;
        let table = ctx.input::<DataFrame>("table")?;
        for target in model.target_names() {
            if table.column(&target).is_err() {
                return Err(ModelOpError::NoTarget(target).into());
            }
        }
        let mut report = model.evaluation(&table, &[], self.0.top_terms)?;
        // Scores that mean less than they seem: classes never trained, training rows.
        let (unseen, overlap) = crate::ml::provenance::evaluation_warnings(&model, &table);
        for t in &mut report.targets {
            t.warnings.extend(unseen.get(&t.target).cloned());
        }
        report.warnings.extend(overlap.clone());
        if let Some(w) = &overlap {
            tracing::warn!("{w}");
        }
        let path = ctx.run_dir().join(METRICS_FILE);
        write_json(ctx, &path, &report)?;
        for line in report.table().lines() {
            tracing::info!("{line}");
        }
        for t in &report.targets {
            if let Some(c) = &t.calibration {
                let at = |x: f64| c.coverage.iter().find(|r| (r.threshold - x).abs() < 1e-9);
                let shown = [0.7, 0.9]
                    .iter()
                    .filter_map(|&x| at(x))
                    .map(|r| {
                        format!(
                            "at {:.2}: {:.1}% of rows, {:.1}% right",
                            r.threshold,
                            100.0 * r.coverage,
                            100.0 * r.accuracy
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::info!("{}: ECE {:.4}, Brier {:.4}; {shown}", t.target, c.ece, c.brier);
            }
        }
        if let Some(c) = &report.code_agreement {
            tracing::info!(
                "codes that agree: {} of {} rows ({:.2}%) have predicted {} that contradict the predicted {}",
                c.disagreeing_rows,
                c.rows,
                100.0 * c.share,
                c.codes.join(" or "),
                c.category
            );
        }
        for warning in report.targets.iter().flat_map(|t| &t.warnings) {
            tracing::warn!("{warning}");
        }
        ctx.output("metrics", report)?;
        Ok(())
    }
}

/// `model.save`'s metadata file.
#[derive(Serialize)]
struct Metadata<'a> {
    model_name: &'a str,
    created_at: String,
    nexusml_version: &'a str,
    format_version: u32,
    model_file: String,
    model_bytes: u64,
    model_sha256: String,
    training_data: Option<String>,
    training_data_sha256: Option<String>,
    train_rows: usize,
    test_rows: Option<usize>,
    targets: Vec<String>,
    /// Per target: training rows with a label, and classes learned.
    target_training: Vec<serde_json::Value>,
    params: serde_json::Value,
    tfidf: &'a crate::ml::text::TfidfConfig,
    /// `linear_svc`, `logistic` or `forest`.
    learner: &'static str,
    /// The learner's settings.
    learner_settings: &'a LearnerConfig,
    metrics: Option<serde_json::Value>,
    /// The hyperparameter search that chose the settings (`train --optimize`).
    search: Option<&'a crate::ml::search::SearchResult>,
    /// The column mapping, the inputs' fill shares, the training-row fingerprint's size.
    training_data_columns: serde_json::Value,
}

struct Save(SaveConfig);
impl Op for Save {
    fn reads(&self) -> Vec<PathBuf> {
        if self.0.data.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(&self.0.data)]
        }
    }

    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let model = ctx.input::<EquipmentModel>("model")?;
        let metrics = ctx.input_opt::<EvaluationReport>("metrics")?;
        let split = ctx.input_opt::<SplitIndices>("split")?;
        let search = ctx.input_opt::<crate::ml::search::SearchResult>("search")?;
        let dir = &self.0.output_dir;
        std::fs::create_dir_all(dir).map_err(|source| ModelOpError::Write {
            path: dir.clone(),
            source,
        })?;
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelOpError::Write { path, source }
        };
        // What a killed save left behind (a live save's temp files are seconds old).
        crate::atomic_file::remove_stale_temps(dir, &self.0.model_name, std::time::Duration::from_secs(3600));
        let now = Utc::now();
        let mut model = (*model).clone();
        model.provenance.map = self.0.map.clone();
        let bytes = bundle::encode(&model, FORMAT_VERSION)?;
        let fingerprint = if self.0.data.is_empty() {
            None
        } else {
            let p = PathBuf::from(&self.0.data);
            Some(bundle::sha256_file(&p).map_err(|source| ModelOpError::Fingerprint { path: p, source })?)
        };
        let summary = metrics.as_ref().map(|m| {
            serde_json::json!({
                "mean_accuracy": m.mean_accuracy,
                "mean_macro_f1": m.mean_macro_f1,
                "targets": m.targets.iter().map(|t| serde_json::json!({
                    "target": t.target, "accuracy": t.accuracy, "macro_f1": t.macro_f1,
                    "weighted_f1": t.weighted_f1, "classes": t.labels.len(),
                    "rows": t.rows, "unlabelled_rows": t.unlabelled_rows, "warnings": t.warnings,
                    "ece": t.calibration.as_ref().map(|c| c.ece),
                    "brier": t.calibration.as_ref().map(|c| c.brier),
                })).collect::<Vec<_>>(),
                "code_agreement": m.code_agreement,
            })
        });
        let params = serde_json::to_value(ctx.params()).unwrap_or_default();
        let metadata = |path: &Path| {
            serde_json::to_vec_pretty(&Metadata {
                model_name: &self.0.model_name,
                created_at: now.rfc3339(),
                nexusml_version: env!("CARGO_PKG_VERSION"),
                format_version: FORMAT_VERSION,
                model_file: path.display().to_string(),
                model_bytes: bytes.len() as u64,
                model_sha256: bundle::hex(&sha2_digest(&bytes)),
                training_data: (!self.0.data.is_empty()).then(|| self.0.data.clone()),
                training_data_sha256: fingerprint.clone(),
                train_rows: model.training.rows,
                test_rows: split.as_ref().map(|s| s.test.len()),
                targets: model.target_names(),
                target_training: model
                    .target_names()
                    .iter()
                    .filter_map(|t| {
                        let (_, m, classes) = model.answer_of(t)?;
                        Some(serde_json::json!({
                            "target": t,
                            "labelled_rows": m.labelled_rows,
                            "unlabelled_rows": model.training.rows.saturating_sub(m.labelled_rows),
                            "classes": classes.len(),
                            "answered_by": m.targets[0],
                        }))
                    })
                    .collect(),
                params: params.clone(),
                tfidf: &model.training.tfidf,
                learner: model.training.learner.kind().name(),
                learner_settings: &model.training.learner,
                metrics: summary.clone(),
                search: search.as_deref().filter(|s| s.best.is_some()),
                training_data_columns: model.provenance.summary(),
            })
        };
        // A name no other save has taken: the metadata file is created first, only if
        // absent (a concurrent save of the same second gets the next suffix), then the
        // model beside it. Nothing is ever overwritten.
        let base = format!("{}_{}", self.0.model_name, now.compact());
        let (path, meta_path, meta) = (0..)
            .map(|n| {
                if n == 0 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find_map(|stem| {
                let path = dir.join(format!("{stem}.nxm"));
                let meta_path = dir.join(format!("{stem}_metadata.json"));
                let meta = match metadata(&path) {
                    Ok(m) => m,
                    Err(e) => return Some(Err(OpError::from(e))),
                };
                match crate::atomic_file::write_new(&meta_path, &meta) {
                    Ok(()) => Some(Ok((path, meta_path, meta))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                    Err(e) => Some(Err(write_err(&meta_path)(e).into())),
                }
            })
            .expect("an unbounded range finds a free name")?;
        write_model_beside(&meta_path, &path, &bytes, crate::atomic_file::write_new)
            .map_err(write_err(&path))?;
        // `_latest` switches as a pair, under the directory's lock: a reader (which takes
        // it shared) never sees one file of this save and the other of another.
        let latest = dir.join(format!("{}_latest.nxm", self.0.model_name));
        let latest_meta = dir.join(format!("{}_latest_metadata.json", self.0.model_name));
        {
            let _lock = crate::atomic_file::lock_dir(dir, true).map_err(write_err(dir))?;
            crate::atomic_file::write_atomic(&latest_meta, &meta).map_err(write_err(&latest_meta))?;
            crate::atomic_file::write_atomic(&latest, &bytes).map_err(write_err(&latest))?;
            // Under the same lock: no reader of `_latest` sees a file go.
            super::prune::prune_locked(dir, &self.0.model_name, self.0.keep)?;
        }
        for (p, b) in [
            (&meta_path, &meta),
            (&path, &bytes),
            (&latest_meta, &meta),
            (&latest, &bytes),
        ] {
            ctx.record_file(crate::op::WrittenFile {
                path: p.clone(),
                bytes: b.clone(),
            });
        }
        tracing::info!(
            "saved model {} ({} bytes) and {}",
            path.display(),
            bytes.len(),
            latest.display()
        );
        ctx.output(
            "saved",
            SavedModel {
                model: path,
                metadata: meta_path,
                latest,
            },
        )?;
        Ok(())
    }
}

/// Write the model (through `write`) beside its metadata, which took the name first. If
/// the write fails (a full disk), the metadata goes too: it must never describe a model
/// that is not there.
fn write_model_beside(
    meta_path: &Path,
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write(path, bytes).inspect_err(|_| {
        if let Err(e) = std::fs::remove_file(meta_path) {
            tracing::warn!("cannot remove {} after the failed save: {e}", meta_path.display());
        }
    })
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// Read a model file.
pub fn load_model(path: &Path) -> Result<EquipmentModel, bundle::BundleError> {
    crate::ml::model::load_model_file(path)
}

struct Load(LoadConfig);
impl Op for Load {
    fn reads(&self) -> Vec<PathBuf> {
        vec![self.0.path.clone()]
    }

    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let model = load_model(&self.0.path)?;
        tracing::info!(
            "loaded model {} ({} targets)",
            self.0.path.display(),
            model.features.targets.len()
        );
        ctx.output("model", model)?;
        Ok(())
    }
}

struct Predict(PredictConfig);
impl Op for Predict {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let model = ctx.input::<EquipmentModel>("model")?;
        let table = ctx.input::<DataFrame>("table")?;
        let (map, warnings) = super::columns::predict_inputs(&model, &table, &self.0.map, &self.0.id_column)?;
        if self.0.strict && !warnings.is_empty() {
            return Err(crate::ml::provenance::AbsentInputs(warnings).into());
        }
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let options = ReviewOptions {
            id_column: self.0.id_column.clone(),
            keep: self.0.keep,
            review_below: self.0.review_below,
        };
        let mut out = predict_inventory(&model, &table, &map.0, &options)?;
        tracing::info!(
            "predicted {} rows × {} targets; {} rows to review (a target below {:.2}{})",
            out.predictions.height(),
            model.features.targets.len(),
            out.review.height(),
            self.0.review_below,
            if model.codes.is_empty() {
                ""
            } else {
                ", or codes that disagree with the category"
            }
        );
        // For the run's report (and `runs show`): with the mapping used and the warnings.
        if let Some(summary) = out.summary.as_object_mut() {
            summary.insert(
                "column_map".into(),
                serde_json::to_value(&map).unwrap_or_default(),
            );
            summary.insert("warnings".into(), serde_json::json!(warnings));
        }
        let path = ctx.run_dir().join("predictions_summary.json");
        write_json(ctx, &path, &out.summary)?;
        ctx.output("predictions", out.predictions)?;
        if ctx.output_ports().contains(&"review") {
            ctx.output("review", out.review)?;
        }
        Ok(())
    }
}

struct WriteReview(WriteReviewConfig);
impl Op for WriteReview {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let review = ctx.input::<DataFrame>("review")?;
        let path = review_path(&self.0.predictions);
        super::io::write_csv(&review, &path)?;
        ctx.wrote_file(&path).map_err(|source| ModelOpError::Write {
            path: path.clone(),
            source,
        })?;
        tracing::info!("{} rows to review: {}", review.height(), path.display());
        Ok(())
    }
}

struct PredictOne(PredictOneConfig);
impl Op for PredictOne {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let model = ctx.input::<EquipmentModel>("model")?;
        let record: HashMap<String, String> = self
            .0
            .record
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        let start = std::time::Instant::now();
        let predictions = model.predict_record(&record);
        let took = start.elapsed();
        for p in &predictions {
            tracing::info!(
                "sample prediction: {} = {} ({:.2})",
                p.target,
                p.label,
                p.probability
            );
        }
        let label = |t: &str| {
            predictions
                .iter()
                .find(|p| p.target == t)
                .map(|p| p.label.as_str())
        };
        let disagreements: Vec<String> = model
            .disagreements(label)
            .iter()
            .map(|d| d.describe(label(&model.codes.category).unwrap_or("")))
            .collect();
        for d in &disagreements {
            tracing::warn!("sample prediction: {d}");
        }
        let path = ctx.run_dir().join(&self.0.file);
        write_json(
            ctx,
            &path,
            &serde_json::json!({
                "record": record,
                "predictions": predictions,
                "codes_agree": (!model.codes.is_empty()).then_some(disagreements.is_empty()),
                "disagreements": disagreements,
                "latency_ms": took.as_secs_f64() * 1e3,
            }),
        )?;
        ctx.output("prediction", predictions)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_model_write_takes_its_metadata_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("m_20261201T000000Z_metadata.json");
        let model = dir.path().join("m_20261201T000000Z.nxm");
        crate::atomic_file::write_new(&meta, b"{}").unwrap();
        let e = write_model_beside(&meta, &model, b"NEXUSML\0", |_, _| {
            Err(std::io::Error::other("No space left on device"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "No space left on device");
        assert!(!meta.exists(), "no orphan metadata");
        assert!(!model.exists());

        crate::atomic_file::write_new(&meta, b"{}").unwrap();
        write_model_beside(&meta, &model, b"NEXUSML\0", crate::atomic_file::write_new).unwrap();
        assert!(meta.exists() && model.exists(), "a good save keeps both");
    }
}
