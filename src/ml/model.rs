//! The equipment classifier: feature config + TF-IDF + scaler + one model per distinct
//! target (a random forest or a linear model), the codes each category takes, and
//! prediction for a table or a single record.

use super::codes::{CodeBook, CodesConfig, Disagreement};
use super::features::{FeatureConfig, FeatureError, Mode};
use super::forest::{ForestConfig, ForestError, RandomForest, Target, UNLABELLED};
use super::learner::{Learned, LearnerConfig, Ranked, NO_CLASS};
use super::linear::LinearError;
use super::scale::StandardScaler;
use super::sparse::Csr;
use super::table::{text_column, TableError};
use super::text::{TextError, Tfidf, TfidfConfig};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

/// The model file format this build writes and the newest it reads. Version 2 carries
/// the learner of each target's model (forest or linear), the targets answered by
/// relabelling, and the code book; version 1 files (forests only) still load.
pub const FORMAT_VERSION: u32 = 2;

/// Read a model file: the container ([`super::bundle::read_bounded`]: a regular file
/// within the size limit, the magic checked before the rest is read; then header,
/// checksum, decoding), then the model's structure ([`EquipmentModel::validate`]), then
/// the lookups that are not stored. Every way of loading a model goes through here.
pub fn load_model_file(path: &std::path::Path) -> Result<EquipmentModel, super::bundle::BundleError> {
    // With its metadata beside it (`X.nxm`, `X_metadata.json`), both are read under the
    // directory's shared lock, so a save switching `_latest` is never seen half done,
    // and the metadata must describe this very file.
    let meta_path = path.with_file_name(format!(
        "{}_metadata.json",
        path.file_stem().unwrap_or_default().to_string_lossy()
    ));
    let with_meta = path.extension().is_some_and(|e| e == "nxm") && meta_path.is_file();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    // A directory the reader cannot write has no lock to take; a planted link is refused
    // (never followed); either way the read goes on, checked against the metadata.
    let _lock = with_meta
        .then(|| {
            crate::atomic_file::lock_dir(dir, false)
                .map_err(|e| tracing::debug!("reading {} without its lock: {e}", path.display()))
                .ok()
        })
        .flatten();
    // The model file is checked (regular, bounded, magic) before anything hashes it.
    let bytes = super::bundle::read_bounded(path)?;
    if with_meta {
        check_metadata(path, &meta_path, &bytes)?;
    }
    EquipmentModel::from_file_bytes(&bytes, path)
}

/// The metadata's `model_sha256` must be the model file's (`bytes`).
fn check_metadata(
    path: &std::path::Path,
    meta_path: &std::path::Path,
    bytes: &[u8],
) -> Result<(), super::bundle::BundleError> {
    let meta = super::bundle::read_metadata(meta_path)?;
    let Some(expected) = meta["model_sha256"].as_str() else {
        return Ok(()); // not nexusml's metadata
    };
    let found = super::bundle::sha256_hex(bytes);
    if found != expected {
        return Err(super::bundle::BundleError::MetadataMismatch {
            path: path.into(),
            metadata: meta_path.into(),
            expected: expected.into(),
            found,
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Forest(#[from] ForestError),
    #[error("target {target}: {source}")]
    Linear {
        target: String,
        #[source]
        source: LinearError,
    },
    #[error("invalid learner settings: {0}")]
    Learner(String),
    #[error("target `{target}` has no labelled row to train on")]
    NoLabels { target: String },
    #[error("column `{column}` is not numeric after feature engineering")]
    NotNumeric { column: String },
    #[error(
        "the input lacks columns the model needs: {missing} (optional, read when present: {optional}; columns \
         present: {present}); a column named differently is mapped with --map MODEL_COLUMN=INPUT_COLUMN \
         (`--set map.MODEL_COLUMN=INPUT_COLUMN` under `dag run`)"
    )]
    MissingInputs {
        missing: String,
        optional: String,
        present: String,
    },
    #[error("the mapping {model_column}={input_column} names no input column `{input_column}` (columns present: {present})")]
    NoMappedColumn {
        model_column: String,
        input_column: String,
        present: String,
    },
    #[error(
        "the mapping {model_column}={input_column} names `{model_column}`, which is not a column the model \
         reads; it reads {reads}"
    )]
    UnknownModelColumn {
        model_column: String,
        input_column: String,
        /// The model's input columns (and the id column, which may be mapped too).
        reads: String,
    },
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
}

/// Turns engineered rows into the model's feature matrix: TF-IDF columns, then the
/// standardized numeric columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Featurizer {
    pub text_column: String,
    pub numeric_columns: Vec<String>,
    pub tfidf: Tfidf,
    pub scaler: StandardScaler,
}

impl Featurizer {
    /// Fit on an engineered training table.
    pub fn fit(
        frame: &DataFrame,
        features: &FeatureConfig,
        config: &TfidfConfig,
    ) -> Result<(Self, Csr), ModelError> {
        Self::fit_until(frame, features, config, &AtomicBool::new(false))
    }

    /// [`Self::fit`], stopping early once `stop` is set.
    pub fn fit_until(
        frame: &DataFrame,
        features: &FeatureConfig,
        config: &TfidfConfig,
        stop: &AtomicBool,
    ) -> Result<(Self, Csr), ModelError> {
        let texts = text_column(frame, &features.model_text)?;
        let numeric = numeric_columns(frame, &features.model_numeric)?;
        let tfidf = Tfidf::fit_until(&texts, config, stop)?;
        let scaler = StandardScaler::fit(&numeric);
        let f = Featurizer {
            text_column: features.model_text.clone(),
            numeric_columns: features.model_numeric.clone(),
            tfidf,
            scaler,
        };
        let x = f.matrix(&texts, &numeric);
        Ok((f, x))
    }

    pub fn n_features(&self) -> usize {
        self.tfidf.n_features() + self.numeric_columns.len()
    }

    /// The feature matrix of an engineered table.
    pub fn transform(&self, frame: &DataFrame) -> Result<Csr, ModelError> {
        let texts = text_column(frame, &self.text_column)?;
        let numeric = numeric_columns(frame, &self.numeric_columns)?;
        Ok(self.matrix(&texts, &numeric))
    }

    fn matrix(&self, texts: &[String], numeric: &[Vec<f64>]) -> Csr {
        let text = self.tfidf.transform(texts);
        let mut num = Csr::new(self.numeric_columns.len());
        for i in 0..texts.len() {
            num.push_row(
                numeric
                    .iter()
                    .enumerate()
                    .map(|(c, col)| (c as u32, self.scaler.transform_value(c, col[i]) as f32)),
            );
        }
        text.hstack(&num)
    }

    /// One row's (column, value) pairs.
    pub fn row(&self, text: &str, numeric: &[f64], buf: &mut String) -> Vec<(u32, f32)> {
        let mut row = self.tfidf.transform_one(text, buf);
        let shift = self.tfidf.n_features() as u32;
        for (c, &x) in numeric.iter().enumerate() {
            let v = self.scaler.transform_value(c, x) as f32;
            if v != 0.0 {
                row.push((shift + c as u32, v));
            }
        }
        row
    }
}

/// Which input columns a predictions table keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Every input column, under the user's names.
    #[default]
    All,
    /// The id column and the text the model read.
    Id,
}

/// The input as the model reads it: each `model column → input column` of `map` copies
/// the input column under the model's name (replacing a column of that name).
pub fn map_columns(
    raw: &DataFrame,
    map: &indexmap::IndexMap<String, String>,
) -> Result<DataFrame, ModelError> {
    let mut out = raw.clone();
    for (model_column, input_column) in map {
        let column = raw.column(input_column).map_err(|_| ModelError::NoMappedColumn {
            model_column: model_column.clone(),
            input_column: input_column.clone(),
            present: super::table::column_names(raw).join(", "),
        })?;
        out.with_column(column.clone().with_name(model_column.as_str().into()))?;
    }
    Ok(out)
}

/// A target cell that holds no label (empty or blank).
pub fn is_unlabelled(value: &str) -> bool {
    value.trim().is_empty()
}

fn numeric_columns(frame: &DataFrame, names: &[String]) -> Result<Vec<Vec<f64>>, ModelError> {
    names
        .iter()
        .map(|n| {
            let col = frame.column(n).map_err(|_| super::table::no_column(frame, n))?;
            let values = col
                .f64()
                .map_err(|_| ModelError::NotNumeric { column: n.clone() })?;
            Ok(values.iter().map(|v| v.unwrap_or(0.0)).collect())
        })
        .collect()
}

/// Targets answered by another model through a relabelling: their label partition of
/// the training rows is the model's own (same rows, grouped the same way), so the
/// model's class `k` is their class `classes[k]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub targets: Vec<String>,
    /// This target's name of each of the model's classes.
    pub classes: Vec<String>,
}

/// One fitted model and the targets it answers: `targets` with `classes` (targets
/// derived identically share it), and each alias with its own class names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetModel {
    pub targets: Vec<String>,
    pub classes: Vec<String>,
    pub aliases: Vec<Alias>,
    pub learned: Learned,
    /// Training rows with a label for these targets (the others were left out of them).
    pub labelled_rows: usize,
}

impl TargetModel {
    /// The forest, when the model is one.
    pub fn forest(&self) -> Option<&RandomForest> {
        match &self.learned {
            Learned::Forest(f) => Some(f),
            Learned::Linear(_) => None,
        }
    }

    pub fn forest_mut(&mut self) -> Option<&mut RandomForest> {
        match &mut self.learned {
            Learned::Forest(f) => Some(f),
            Learned::Linear(_) => None,
        }
    }

    pub fn linear(&self) -> Option<&super::linear::LinearModel> {
        match &self.learned {
            Learned::Linear(m) => Some(m),
            Learned::Forest(_) => None,
        }
    }

    pub fn linear_mut(&mut self) -> Option<&mut super::linear::LinearModel> {
        match &mut self.learned {
            Learned::Linear(m) => Some(m),
            Learned::Forest(_) => None,
        }
    }

    /// Every target answered, with its class names: the model's own, then the aliases'.
    pub fn answers(&self) -> impl Iterator<Item = (&String, &[String])> {
        let own = self.targets.iter().map(|t| (t, self.classes.as_slice()));
        let aliased = self
            .aliases
            .iter()
            .flat_map(|a| a.targets.iter().map(move |t| (t, a.classes.as_slice())));
        own.chain(aliased)
    }

    /// All targets answered, joined for messages (`category_name = Equipment_Type`).
    pub fn names(&self) -> String {
        self.answers()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(" = ")
    }
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub rows: usize,
    pub tfidf: TfidfConfig,
    pub learner: LearnerConfig,
    pub nexusml_version: String,
}

/// The trained classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquipmentModel {
    pub features: FeatureConfig,
    pub featurizer: Featurizer,
    pub models: Vec<TargetModel>,
    /// The codes each category took in training (empty: no check).
    pub codes: CodeBook,
    pub training: TrainingInfo,
    /// The training data's column mapping, input fill shares and row fingerprint (none in
    /// older files).
    #[serde(default)]
    pub provenance: super::provenance::Provenance,
}

/// One target's answer for one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub target: String,
    pub label: String,
    pub probability: f32,
    /// The next most probable labels with their probabilities (those above 0).
    pub alternatives: Vec<(String, f32)>,
}

/// Labels most probable first, per row, for the prediction table and the review queue.
pub const TOP_K: usize = 3;

/// A target's ranked answers for a matrix: the model's ranking and the target's names of
/// its classes.
pub struct TargetAnswers<'a> {
    pub target: &'a str,
    pub classes: &'a [String],
    pub ranked: &'a Ranked,
}

impl TargetAnswers<'_> {
    /// Row `i`'s label and probability at rank `r` (`None` past the classes or at
    /// probability 0).
    pub fn at(&self, i: usize, r: usize) -> Option<(&str, f32)> {
        let (c, p) = *self.ranked.row(i).get(r)?;
        (c != NO_CLASS && p > 0.0).then(|| (self.classes[c as usize].as_str(), p))
    }
}

/// Labels of one grouped target, encoded: classes (sorted) and a class per row.
struct Encoded {
    classes: Vec<String>,
    labels: Vec<u32>,
}

fn encode(values: &[String]) -> Encoded {
    let mut classes: Vec<String> = values.iter().filter(|v| !is_unlabelled(v)).cloned().collect();
    classes.sort();
    classes.dedup();
    let index: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let labels = values
        .iter()
        .map(|v| index.get(v.as_str()).copied().unwrap_or(UNLABELLED))
        .collect();
    Encoded { classes, labels }
}

/// If `b` partitions the rows exactly as `a` (the same rows labelled, grouped the same
/// way), `b`'s class for each of `a`'s classes.
fn same_partition(a: &Encoded, b: &Encoded) -> Option<Vec<u32>> {
    if a.classes.len() != b.classes.len() || a.labels.len() != b.labels.len() {
        return None;
    }
    let mut a_to_b = vec![UNLABELLED; a.classes.len()];
    let mut b_to_a = vec![UNLABELLED; b.classes.len()];
    for (&la, &lb) in a.labels.iter().zip(&b.labels) {
        match (la == UNLABELLED, lb == UNLABELLED) {
            (true, true) => continue,
            (false, false) => {}
            _ => return None,
        }
        for (map, from, to) in [(&mut a_to_b, la, lb), (&mut b_to_a, lb, la)] {
            let slot = &mut map[from as usize];
            if *slot == UNLABELLED {
                *slot = to;
            } else if *slot != to {
                return None;
            }
        }
    }
    // Every class has a row (classes come from the labels), so the maps are total.
    a_to_b.iter().all(|&c| c != UNLABELLED).then_some(a_to_b)
}

impl EquipmentModel {
    /// Train forests for every target (the original model): [`Self::train`] with a
    /// forest learner and no code book.
    pub fn fit(
        frame: &DataFrame,
        features: &FeatureConfig,
        featurizer: Featurizer,
        x: &Csr,
        config: &ForestConfig,
        tick: &(dyn Fn() + Sync),
    ) -> Result<EquipmentModel, ModelError> {
        Self::fit_until(
            frame,
            features,
            featurizer,
            x,
            config,
            tick,
            &AtomicBool::new(false),
        )
    }

    /// [`Self::fit`], stopping before the next tree once `stop` is set.
    pub fn fit_until(
        frame: &DataFrame,
        features: &FeatureConfig,
        featurizer: Featurizer,
        x: &Csr,
        config: &ForestConfig,
        tick: &(dyn Fn() + Sync),
        stop: &AtomicBool,
    ) -> Result<EquipmentModel, ModelError> {
        let codes = CodesConfig {
            category: String::new(),
            codes: Vec::new(),
        };
        Self::train_until(
            frame,
            features,
            featurizer,
            x,
            &LearnerConfig::Forest(config.clone()),
            &codes,
            tick,
            stop,
        )
    }

    /// [`Self::train_until`] without a way to stop it.
    pub fn train(
        frame: &DataFrame,
        features: &FeatureConfig,
        featurizer: Featurizer,
        x: &Csr,
        learner: &LearnerConfig,
        codes: &CodesConfig,
        tick: &(dyn Fn() + Sync),
    ) -> Result<EquipmentModel, ModelError> {
        Self::train_until(
            frame,
            features,
            featurizer,
            x,
            learner,
            codes,
            tick,
            &AtomicBool::new(false),
        )
    }

    /// Train a model for every target of an engineered training table, given its matrix.
    ///
    /// Targets derived identically (`Equipment_Type` = `System_Subtype`) share one model.
    /// With a linear learner, targets whose labels partition the rows exactly as another
    /// target's (`Equipment_Type` groups the rows as `category_name` does, each category
    /// having one system) are answered by that target's model through a relabelling:
    /// they would train the very same sub-problems. The forest keeps one forest per
    /// derivation, as the original model. `tick` is called after each tree or linear
    /// model (progress). Once `stop` is set (a timeout, Ctrl-C) the fit ends before its
    /// next tree or linear sub-problem.
    #[allow(clippy::too_many_arguments)]
    pub fn train_until(
        frame: &DataFrame,
        features: &FeatureConfig,
        featurizer: Featurizer,
        x: &Csr,
        learner: &LearnerConfig,
        codes: &CodesConfig,
        tick: &(dyn Fn() + Sync),
        stop: &AtomicBool,
    ) -> Result<EquipmentModel, ModelError> {
        learner.check().map_err(ModelError::Learner)?;
        // Group targets derived identically: one model answers them all.
        let mut groups: Vec<Vec<String>> = Vec::new();
        for t in &features.targets {
            let derivation = features.derivation(t);
            match groups
                .iter_mut()
                .find(|g| derivation.is_some() && features.derivation(&g[0]) == derivation)
            {
                Some(g) => g.push(t.clone()),
                None => groups.push(vec![t.clone()]),
            }
        }
        // An empty cell is no label: the row is left out of this target only.
        let mut encoded = Vec::with_capacity(groups.len());
        for g in &groups {
            encoded.push(encode(&text_column(frame, &g[0])?));
        }
        // Which group answers which (itself, or another through a relabelling).
        let mut alias_of: Vec<Option<(usize, Vec<u32>)>> = vec![None; groups.len()];
        if matches!(learner, LearnerConfig::Linear(_)) {
            for b in 0..groups.len() {
                for a in 0..b {
                    if alias_of[a].is_some() {
                        continue;
                    }
                    if let Some(map) = same_partition(&encoded[a], &encoded[b]) {
                        tracing::info!(
                            "{} partitions the training rows as {} does: answered by its model, relabelled",
                            groups[b].join(" = "),
                            groups[a].join(" = ")
                        );
                        alias_of[b] = Some((a, map));
                        break;
                    }
                }
            }
        }
        let fitted: Vec<usize> = (0..groups.len()).filter(|&g| alias_of[g].is_none()).collect();
        for &g in &fitted {
            if encoded[g].labels.iter().all(|&l| l == UNLABELLED) {
                return Err(ModelError::NoLabels {
                    target: groups[g][0].clone(),
                });
            }
        }
        let learned: Vec<Learned> = match learner {
            LearnerConfig::Forest(config) => {
                let targets: Vec<Target<'_>> = fitted
                    .iter()
                    .map(|&g| Target {
                        name: &groups[g][0],
                        labels: &encoded[g].labels,
                        n_classes: encoded[g].classes.len(),
                    })
                    .collect();
                RandomForest::fit_many_until(x, &targets, config, tick, stop)?
                    .into_iter()
                    .map(Learned::Forest)
                    .collect()
            }
            LearnerConfig::Linear(config) => fitted
                .par_iter()
                .map(|&g| {
                    let e = &encoded[g];
                    let m = super::linear::fit_until(x, &e.labels, e.classes.len(), config, stop).map_err(
                        |source| ModelError::Linear {
                            target: groups[g].join(" = "),
                            source,
                        },
                    )?;
                    tick();
                    Ok(Learned::Linear(m))
                })
                .collect::<Result<_, ModelError>>()?,
        };
        let mut models: Vec<TargetModel> = fitted
            .iter()
            .zip(learned)
            .map(|(&g, learned)| TargetModel {
                targets: groups[g].clone(),
                classes: encoded[g].classes.clone(),
                aliases: Vec::new(),
                learned,
                labelled_rows: encoded[g].labels.iter().filter(|&&l| l != UNLABELLED).count(),
            })
            .collect();
        for (b, alias) in alias_of.iter().enumerate() {
            if let Some((a, map)) = alias {
                let k = fitted
                    .iter()
                    .position(|&g| g == *a)
                    .expect("an alias points at a fitted group");
                models[k].aliases.push(Alias {
                    targets: groups[b].clone(),
                    classes: map
                        .iter()
                        .map(|&c| encoded[b].classes[c as usize].clone())
                        .collect(),
                });
            }
        }
        let codes = Self::learn_codes(frame, features, codes)?;
        let tfidf = featurizer.tfidf.config.clone();
        Ok(EquipmentModel {
            features: features.clone(),
            featurizer,
            models,
            codes,
            training: TrainingInfo {
                rows: frame.height(),
                tfidf,
                learner: learner.clone(),
                nexusml_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            provenance: Default::default(),
        })
    }

    /// The code book of a training table: the configured category and code targets that
    /// are targets of this model (a missing one is said, and left out).
    fn learn_codes(
        frame: &DataFrame,
        features: &FeatureConfig,
        config: &CodesConfig,
    ) -> Result<CodeBook, ModelError> {
        let is_target = |t: &str| features.targets.iter().any(|x| x == t);
        if config.category.is_empty() || config.codes.is_empty() {
            return Ok(CodeBook::default());
        }
        if !is_target(&config.category) {
            tracing::warn!(
                "codes that agree: `{}` is not a target of this model, so no code is checked against it",
                config.category
            );
            return Ok(CodeBook::default());
        }
        let mut codes = Vec::new();
        for c in &config.codes {
            if is_target(c) && c != &config.category {
                codes.push((c.clone(), text_column(frame, c)?));
            } else {
                tracing::warn!(
                    "codes that agree: `{c}` is not another target of this model; it is not checked"
                );
            }
        }
        if codes.is_empty() {
            return Ok(CodeBook::default());
        }
        Ok(CodeBook::learn(
            &config.category,
            &text_column(frame, &config.category)?,
            &codes,
        ))
    }

    /// Target names in configuration order.
    pub fn target_names(&self) -> Vec<String> {
        self.features.targets.clone()
    }

    /// The model answering `target`, its index, and the target's class names.
    pub fn answer_of(&self, target: &str) -> Option<(usize, &TargetModel, &[String])> {
        self.models.iter().enumerate().find_map(|(k, m)| {
            m.answers()
                .find(|(t, _)| t.as_str() == target)
                .map(|(_, classes)| (k, m, classes))
        })
    }

    /// The `k` most probable classes of every row, per model (in `models` order).
    pub fn rank(&self, x: &Csr, k: usize) -> Vec<Ranked> {
        self.models.iter().map(|m| m.learned.rank(x, k, &[])).collect()
    }

    /// Per target in configuration order, its answers from `ranked` (one per model).
    pub fn answers<'a>(&'a self, ranked: &'a [Ranked]) -> Vec<TargetAnswers<'a>> {
        self.features
            .targets
            .iter()
            .filter_map(|t| {
                let (k, _, classes) = self.answer_of(t)?;
                Some(TargetAnswers {
                    target: t,
                    classes,
                    ranked: &ranked[k],
                })
            })
            .collect()
    }

    /// Predict every target for an engineered table's feature matrix: per target, a
    /// label and its probability per row.
    pub fn predict_matrix(&self, x: &Csr) -> Vec<(String, Vec<(String, f32)>)> {
        let ranked = self.rank(x, 1);
        self.answers(&ranked)
            .into_iter()
            .map(|a| {
                let rows = (0..a.ranked.rows())
                    .map(|i| {
                        let (c, p) = a.ranked.best(i);
                        (a.classes[c as usize].clone(), p)
                    })
                    .collect();
                (a.target.to_string(), rows)
            })
            .collect()
    }

    /// The predicted codes of a row that contradict its predicted category (empty when
    /// they agree, or the model has no code book). `label_of(target)` is the row's label.
    pub fn disagreements<'a>(&self, label_of: impl Fn(&str) -> Option<&'a str>) -> Vec<Disagreement> {
        if self.codes.is_empty() {
            return Vec::new();
        }
        match label_of(&self.codes.category) {
            Some(category) => self.codes.check(category, label_of),
            None => Vec::new(),
        }
    }

    /// Engineer an inventory (prediction mode), check it has what the model reads, and
    /// return the engineered table with its feature matrix.
    pub fn prepare(&self, raw: &DataFrame) -> Result<(DataFrame, Csr), ModelError> {
        self.check_inputs(raw)?;
        let (engineered, _) = self.features.apply(raw, Mode::Predict)?;
        let x = self.featurizer.transform(&engineered)?;
        Ok((engineered, x))
    }

    /// The input columns the model's text needs that are absent (and not optional).
    fn check_inputs(&self, raw: &DataFrame) -> Result<(), ModelError> {
        let present = super::table::column_names(raw);
        let mut missing = Vec::new();
        let mut optional = Vec::new();
        for t in &self.features.text_combinations {
            if t.name != self.features.model_text {
                continue;
            }
            for c in &t.columns {
                if t.optional.contains(c) {
                    optional.push(c.clone());
                } else if !present.contains(c) {
                    missing.push(c.clone());
                }
            }
        }
        for n in &self.features.numeric_columns {
            if self.featurizer.numeric_columns.contains(&n.name) {
                for c in &n.sources {
                    if !optional.contains(c) {
                        optional.push(c.clone());
                    }
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ModelError::MissingInputs {
                missing: missing.join(", "),
                optional: optional.join(", "),
                present: present.join(", "),
            })
        }
    }

    /// The input columns the model reads: those joined into its text, then the source
    /// columns of its numeric features, each once.
    pub fn input_columns(&self) -> Vec<String> {
        let text = self
            .features
            .text_combinations
            .iter()
            .filter(|t| t.name == self.features.model_text)
            .flat_map(|t| t.columns.iter());
        let numeric = self
            .features
            .numeric_columns
            .iter()
            .filter(|n| self.featurizer.numeric_columns.contains(&n.name))
            .flat_map(|n| n.sources.iter());
        let mut out: Vec<String> = Vec::new();
        for c in text.chain(numeric) {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// Predict one record given as column → value (missing columns are empty): per
    /// target its label, probability and the next [`TOP_K`]` − 1` labels.
    pub fn predict_record(&self, record: &HashMap<String, String>) -> Vec<Prediction> {
        let get = |c: &str| record.get(c).map(String::as_str).unwrap_or("");
        let text = self
            .features
            .text_combinations
            .iter()
            .find(|t| t.name == self.features.model_text)
            .map(|t| {
                t.columns
                    .iter()
                    .map(|c| get(c))
                    .collect::<Vec<_>>()
                    .join(&t.separator)
            })
            .unwrap_or_default();
        let numeric: Vec<f64> = self
            .featurizer
            .numeric_columns
            .iter()
            .map(|name| {
                let spec = self.features.numeric_columns.iter().find(|n| &n.name == name);
                let fill = spec.map_or(0.0, |s| s.fill);
                let source = spec.and_then(|s| s.sources.iter().find(|c| record.contains_key(*c)));
                source
                    .and_then(|c| get(c).trim().parse::<f64>().ok())
                    .filter(|&x| super::scale::usable(x))
                    .unwrap_or(fill)
            })
            .collect();
        let mut buf = String::new();
        let row = self.featurizer.row(&text, &numeric, &mut buf);
        let (idx, vals): (Vec<u32>, Vec<f32>) = row.into_iter().unzip();
        let tops: Vec<Vec<(u32, f32)>> = self
            .models
            .iter()
            .map(|m| {
                let mut scratch = m.learned.scratch();
                let mut proba = vec![0f64; m.learned.n_classes()];
                m.learned.proba_row(&idx, &vals, &mut scratch, &mut proba);
                let mut top = Vec::with_capacity(TOP_K);
                super::learner::top_k(&proba, TOP_K, &mut top);
                top
            })
            .collect();
        self.features
            .targets
            .iter()
            .filter_map(|t| {
                let (k, _, classes) = self.answer_of(t)?;
                let top = &tops[k];
                let (c, p) = top[0];
                Some(Prediction {
                    target: t.clone(),
                    label: classes[c as usize].clone(),
                    probability: p,
                    alternatives: top[1..]
                        .iter()
                        .filter(|&&(c, p)| c != NO_CLASS && p > 0.0)
                        .map(|&(c, p)| (classes[c as usize].clone(), p))
                        .collect(),
                })
            })
            .collect()
    }

    /// Predict every target for a raw inventory. `map` names, per column the model reads,
    /// the input column that holds it (`manufacturer` → `Mfr`). The output keeps the
    /// user's columns under their own names, then per target `predicted_<target>` and
    /// `predicted_<target>_probability` and the next labels ([`Keep::All`]); or only the
    /// id column and the text the model read, then `<target>`, `<target>_probability`, …
    /// ([`Keep::Id`]). See [`super::review`] for every column and the review queue.
    pub fn predictions_table(
        &self,
        raw: &DataFrame,
        id_column: &str,
        map: &indexmap::IndexMap<String, String>,
        keep: Keep,
    ) -> Result<DataFrame, ModelError> {
        let options = super::review::ReviewOptions {
            id_column: id_column.to_string(),
            keep,
            review_below: 0.0,
        };
        Ok(super::review::predict_inventory(self, raw, map, &options)?.predictions)
    }

    /// Check a `map` (model column → input column) against the columns the model reads.
    pub(crate) fn check_map(
        &self,
        id_column: &str,
        map: &indexmap::IndexMap<String, String>,
    ) -> Result<(), ModelError> {
        // A key naming no column the model reads would be silently ignored (a typo such
        // as `descripton`): refuse it.
        let mut reads = self.input_columns();
        if !reads.iter().any(|c| c == id_column) {
            reads.push(id_column.to_string());
        }
        if let Some((model_column, input_column)) = map.iter().find(|(k, _)| !reads.contains(k)) {
            return Err(ModelError::UnknownModelColumn {
                model_column: model_column.clone(),
                input_column: input_column.clone(),
                reads: reads.join(", "),
            });
        }
        Ok(())
    }

    /// Metrics for an engineered, labelled table: the given targets (all when empty) and
    /// the `top_terms` most important terms of each; per target the calibration of the
    /// probabilities, and for the whole model how often predicted codes contradict the
    /// predicted category.
    pub fn evaluation(
        &self,
        engineered: &DataFrame,
        targets: &[String],
        top_terms: usize,
    ) -> Result<super::metrics::EvaluationReport, ModelError> {
        use super::calibration as cal;
        let x = self.featurizer.transform(engineered)?;
        let texts = text_column(engineered, &self.featurizer.text_column)?;
        let wanted = |t: &str| targets.is_empty() || targets.iter().any(|x| x == t);
        // Each target's true class per row (NO_CLASS for a label the model never learned),
        // then one ranking per model with the Brier terms of each of its targets.
        let mut truth_of: HashMap<&str, (Vec<String>, Vec<u32>)> = HashMap::new();
        for t in &self.features.targets {
            if !wanted(t) && t != &self.codes.category && !self.codes.tables.iter().any(|c| &c.target == t) {
                continue;
            }
            let Some((_, _, classes)) = self.answer_of(t) else {
                continue;
            };
            let index: HashMap<&str, u32> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as u32))
                .collect();
            let truth = text_column(engineered, t)?;
            let ids = truth
                .iter()
                .map(|v| index.get(v.as_str()).copied().unwrap_or(NO_CLASS))
                .collect();
            truth_of.insert(t.as_str(), (truth, ids));
        }
        let mut brier_slot: HashMap<&str, (usize, usize)> = HashMap::new();
        let ranked: Vec<Ranked> = self
            .models
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let mine: Vec<&str> = m
                    .answers()
                    .map(|(t, _)| t.as_str())
                    .filter(|t| truth_of.contains_key(t))
                    .collect();
                for (j, t) in mine.iter().enumerate() {
                    brier_slot.insert(t, (k, j));
                }
                let truths: Vec<&[u32]> = mine.iter().map(|t| truth_of[t].1.as_slice()).collect();
                m.learned.rank(&x, TOP_K, &truths)
            })
            .collect();
        let answers = self.answers(&ranked);
        let mut per_target = Vec::new();
        let mut terms = Vec::new();
        for a in &answers {
            if !wanted(a.target) {
                continue;
            }
            // Rows without a label for this target are predicted but not scored.
            let (truth, truth_ids) = &truth_of[a.target];
            let labelled: Vec<usize> = (0..truth.len()).filter(|&i| !is_unlabelled(&truth[i])).collect();
            let pick = |v: &[String]| labelled.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
            let labels: Vec<String> = (0..a.ranked.rows())
                .map(|i| a.classes[a.ranked.best(i).0 as usize].clone())
                .collect();
            let mut m = super::metrics::evaluate(a.target, &pick(truth), &pick(&labels), Some(&pick(&texts)));
            m.unlabelled_rows = truth.len() - labelled.len();
            let (k, slot) = brier_slot[a.target];
            m.trained_classes = self.models[k].learned.n_classes();
            let confidence: Vec<f64> = labelled.iter().map(|&i| f64::from(a.ranked.best(i).1)).collect();
            let correct: Vec<bool> = labelled
                .iter()
                .map(|&i| a.ranked.best(i).0 == truth_ids[i] && truth_ids[i] != NO_CLASS)
                .collect();
            let brier = &a.ranked.brier[slot];
            let n = labelled.len().max(1) as f64;
            m.calibration = Some(super::metrics::CalibrationReport {
                method: self.calibration_method(k),
                ece: cal::expected_calibration_error(&confidence, &correct, cal::ECE_BINS),
                brier: labelled.iter().map(|&i| brier[i]).sum::<f64>() / n,
                mean_confidence: confidence.iter().sum::<f64>() / n,
                coverage: cal::accuracy_at_coverage(&confidence, &correct),
            });
            per_target.push(m);
            terms.push((a.target.to_string(), self.top_terms(a.target, top_terms)));
        }
        let mut report = super::metrics::EvaluationReport::new(engineered.height(), per_target, terms);
        report.learner = self.training.learner.kind().name().to_string();
        report.code_agreement = self.code_agreement(&answers, &truth_of);
        Ok(report)
    }

    /// How the probabilities of model `k` are made, for the report.
    fn calibration_method(&self, k: usize) -> String {
        use super::calibration::Calibrator;
        match &self.models[k].learned {
            Learned::Forest(_) => "forest (mean of the trees' leaf distributions)".into(),
            Learned::Linear(m) => match &m.calibrator {
                Calibrator::Sigmoid => "logistic (own one-vs-rest sigmoids, normalized)".into(),
                Calibrator::Platt { .. } => "Platt scaling per class, fitted out of fold".into(),
                Calibrator::Temperature { t } => {
                    format!("softmax temperature {t:.4}, fitted out of fold")
                }
            },
        }
    }

    /// On the rows labelled for the category and every code: how many predictions have
    /// codes that contradict their predicted category, and how right those rows are.
    fn code_agreement(
        &self,
        answers: &[TargetAnswers<'_>],
        truth_of: &HashMap<&str, (Vec<String>, Vec<u32>)>,
    ) -> Option<super::metrics::CodeAgreement> {
        if self.codes.is_empty() {
            return None;
        }
        let checked: Vec<&str> = std::iter::once(self.codes.category.as_str())
            .chain(self.codes.tables.iter().map(|t| t.target.as_str()))
            .collect();
        let answer = |t: &str| answers.iter().find(|a| a.target == t);
        let (mut rows, mut flagged, mut flagged_right, mut agreeing_right, mut truth_flagged) =
            (0usize, 0usize, 0usize, 0usize, 0usize);
        let n = answers.first().map_or(0, |a| a.ranked.rows());
        for i in 0..n {
            if checked
                .iter()
                .any(|t| truth_of.get(t).is_none_or(|(truth, _)| is_unlabelled(&truth[i])))
            {
                continue;
            }
            rows += 1;
            let predicted = |t: &str| answer(t).map(|a| a.classes[a.ranked.best(i).0 as usize].as_str());
            let all_right = checked
                .iter()
                .all(|t| predicted(t) == truth_of.get(t).map(|(truth, _)| truth[i].as_str()));
            let disagree = !self.disagreements(predicted).is_empty();
            if disagree {
                flagged += 1;
                flagged_right += usize::from(all_right);
            } else {
                agreeing_right += usize::from(all_right);
            }
            let true_label = |t: &str| truth_of.get(t).map(|(truth, _)| truth[i].as_str());
            truth_flagged += usize::from(!self.disagreements(true_label).is_empty());
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Some(super::metrics::CodeAgreement {
            category: self.codes.category.clone(),
            codes: self.codes.tables.iter().map(|t| t.target.clone()).collect(),
            rows,
            disagreeing_rows: flagged,
            share: ratio(flagged, rows),
            all_right_when_disagreeing: ratio(flagged_right, flagged),
            all_right_when_agreeing: ratio(agreeing_right, rows - flagged),
            true_labels_disagreeing: truth_flagged,
        })
    }

    /// The `n` terms the model leans on most for a target (see [`Learned::importances`]).
    pub fn top_terms(&self, target: &str, n: usize) -> Vec<(String, f64)> {
        let Some((_, m, _)) = self.answer_of(target) else {
            return Vec::new();
        };
        let importances = m.learned.importances();
        let names = &self.featurizer.tfidf.terms;
        let mut idx: Vec<usize> = (0..importances.len()).collect();
        idx.sort_by(|&a, &b| importances[b].total_cmp(&importances[a]).then(a.cmp(&b)));
        idx.into_iter()
            .take(n)
            .map(|i| {
                let name = names.get(i).cloned().unwrap_or_else(|| {
                    let c = self.featurizer.numeric_columns.get(i - names.len());
                    format!("[{}]", c.map_or("?", String::as_str))
                });
                (name, importances[i])
            })
            .collect()
    }

    /// Decode a model file's bytes (any supported format version), check its structure
    /// and rebuild what is not stored; `path` names it in errors.
    pub fn from_file_bytes(
        bytes: &[u8],
        path: &std::path::Path,
    ) -> Result<EquipmentModel, super::bundle::BundleError> {
        let (version, payload) = super::bundle::open(bytes, path, FORMAT_VERSION)?;
        let mut model: EquipmentModel = match version {
            1 => super::bundle::decode_payload::<super::model_v1::EquipmentModelV1>(payload, path)?.into(),
            _ => super::bundle::decode_payload(payload, path)?,
        };
        model
            .validate()
            .map_err(|source| super::bundle::BundleError::Invalid {
                path: path.into(),
                source: Box::new(source),
            })?;
        model.restore();
        Ok(model)
    }

    /// After loading: rebuild lookups that are not stored.
    pub fn restore(&mut self) {
        self.featurizer.tfidf.build_index();
        self.provenance.fingerprint.hashes.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn save_load_gives_identical_predictions() {
        let (raw, features, engineered) = crate::ml::sample_inventory(300, 4);
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 10,
            ..ForestConfig::default()
        };
        let model = EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).unwrap();
        assert_eq!(
            model.models.len(),
            4,
            "Equipment_Type and System_Subtype share a forest"
        );
        let bytes = crate::ml::bundle::encode(&model, FORMAT_VERSION).unwrap();
        let loaded = EquipmentModel::from_file_bytes(&bytes, Path::new("m.nxm")).unwrap();
        assert_eq!(loaded, model);
        let (_, xa) = model.prepare(&raw).unwrap();
        let (_, xb) = loaded.prepare(&raw).unwrap();
        assert_eq!(model.predict_matrix(&xa), loaded.predict_matrix(&xb));
        // A single record goes the same way as the same row in a batch.
        let row: HashMap<String, String> = [
            "description",
            "equipment_tag",
            "manufacturer",
            "model",
            "building_name",
            "service_life",
        ]
        .iter()
        .map(|c| {
            (
                c.to_string(),
                crate::ml::table::text_column(&raw, c).unwrap()[7].clone(),
            )
        })
        .collect();
        let one = model.predict_record(&row);
        let batch = model.predict_matrix(&xa);
        for (p, (target, rows)) in one.iter().zip(&batch) {
            assert_eq!(&p.target, target);
            assert_eq!(p.label, rows[7].0, "{target}");
            assert!((p.probability - rows[7].1).abs() < 1e-6);
        }
    }

    #[test]
    fn rows_without_a_label_are_left_out_of_that_target_only() {
        let (raw, features, _) = crate::ml::sample_inventory(300, 5);
        // Every 7th row loses its category: category_name and the targets derived from it.
        let cats: Vec<String> = crate::ml::table::text_column(&raw, "category_name")
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i % 7 == 0 { "  ".to_string() } else { c })
            .collect();
        let mut raw = raw;
        raw.with_column(Column::new("category_name".into(), cats))
            .unwrap();
        let (engineered, _) = features.apply(&raw, super::super::features::Mode::Train).unwrap();
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 5,
            ..ForestConfig::default()
        };
        let model = EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).unwrap();
        let unlabelled = 300usize.div_ceil(7);
        for f in &model.models {
            assert!(f.classes.iter().all(|c| !c.trim().is_empty()), "{:?}", f.targets);
            let derived_from_category = f
                .targets
                .iter()
                .any(|t| t != "uniformat_code" && t != "mcaa_system_category");
            let expected = if derived_from_category {
                300 - unlabelled
            } else {
                300
            };
            assert_eq!(f.labelled_rows, expected, "{:?}", f.targets);
            assert!(!f.classes.iter().any(|c| c.ends_with('-')), "no \"HVAC-\" class");
        }
        // Evaluated on the same rows: the unlabelled ones are predicted, not scored.
        let report = model.evaluation(&engineered, &[], 3).unwrap();
        assert_eq!(report.rows, 300);
        let cat = report
            .targets
            .iter()
            .find(|t| t.target == "category_name")
            .unwrap();
        assert_eq!((cat.rows, cat.unlabelled_rows), (300 - unlabelled, unlabelled));
        assert!(!cat.labels.iter().any(|l| l.trim().is_empty()));
        let uni = report
            .targets
            .iter()
            .find(|t| t.target == "uniformat_code")
            .unwrap();
        assert_eq!((uni.rows, uni.unlabelled_rows), (300, 0));
        let (_, xr) = model.prepare(&raw).unwrap();
        for (_, rows) in model.predict_matrix(&xr) {
            assert!(rows.iter().all(|(label, _)| !label.is_empty()));
        }
    }

    #[test]
    fn a_single_class_target_is_said_in_the_metrics() {
        let (raw, features, _) = crate::ml::sample_inventory(120, 6);
        let mut raw = raw;
        raw.with_column(Column::new("uniformat_code".into(), vec!["D3040"; 120]))
            .unwrap();
        let (engineered, _) = features.apply(&raw, super::super::features::Mode::Train).unwrap();
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 3,
            ..ForestConfig::default()
        };
        let model = EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).unwrap();
        let report = model.evaluation(&engineered, &[], 3).unwrap();
        let uni = report
            .targets
            .iter()
            .find(|t| t.target == "uniformat_code")
            .unwrap();
        assert_eq!(uni.accuracy, 1.0);
        assert_eq!(uni.trained_classes, 1);
        assert!(uni.warnings[0].contains("single class"), "{:?}", uni.warnings);
        let cat = report
            .targets
            .iter()
            .find(|t| t.target == "category_name")
            .unwrap();
        assert!(cat.warnings.is_empty());
    }
}
