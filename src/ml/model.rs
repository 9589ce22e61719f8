//! The equipment classifier: feature config + TF-IDF + scaler + one forest per distinct
//! target, and prediction for a table or a single record.

use super::features::{FeatureConfig, FeatureError, Mode};
use super::forest::{ForestConfig, ForestError, RandomForest, Target, UNLABELLED};
use super::scale::StandardScaler;
use super::sparse::Csr;
use super::table::{text_column, TableError};
use super::text::{TextError, Tfidf, TfidfConfig};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

/// The model file format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

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
    let (mut model, _version): (EquipmentModel, u32) = super::bundle::decode(&bytes, path, FORMAT_VERSION)?;
    model
        .validate()
        .map_err(|source| super::bundle::BundleError::Invalid {
            path: path.into(),
            source,
        })?;
    model.restore();
    Ok(model)
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

/// A forest and the targets it answers (identically derived targets share one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetForest {
    pub targets: Vec<String>,
    pub classes: Vec<String>,
    pub forest: RandomForest,
    /// Training rows with a label for these targets (the others were left out of them).
    #[serde(default)]
    pub labelled_rows: usize,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub rows: usize,
    pub tfidf: TfidfConfig,
    pub forest: ForestConfig,
    pub nexusml_version: String,
}

/// The trained classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquipmentModel {
    pub features: FeatureConfig,
    pub featurizer: Featurizer,
    pub forests: Vec<TargetForest>,
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
}

impl EquipmentModel {
    /// Train forests for every target of an engineered training table, given its matrix.
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
        // Group targets derived identically: one forest answers them all.
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
        // An empty cell is no label: the row is left out of this target's trees only.
        let mut encoded = Vec::with_capacity(groups.len());
        for g in &groups {
            let values = text_column(frame, &g[0])?;
            let mut classes: Vec<String> = values.iter().filter(|v| !is_unlabelled(v)).cloned().collect();
            classes.sort();
            classes.dedup();
            let index: HashMap<&str, u32> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as u32))
                .collect();
            let labels: Vec<u32> = values
                .iter()
                .map(|v| index.get(v.as_str()).copied().unwrap_or(UNLABELLED))
                .collect();
            encoded.push((classes, labels));
        }
        let targets: Vec<Target<'_>> = groups
            .iter()
            .zip(&encoded)
            .map(|(g, (classes, labels))| Target {
                name: &g[0],
                labels,
                n_classes: classes.len(),
            })
            .collect();
        let forests = RandomForest::fit_many_until(x, &targets, config, tick, stop)?;
        let featurizer_config = featurizer.tfidf.config.clone();
        let forests = groups
            .into_iter()
            .zip(encoded)
            .zip(forests)
            .map(|((targets, (classes, labels)), forest)| TargetForest {
                targets,
                classes,
                forest,
                labelled_rows: labels.iter().filter(|&&l| l != UNLABELLED).count(),
            })
            .collect();
        Ok(EquipmentModel {
            features: features.clone(),
            featurizer,
            forests,
            training: TrainingInfo {
                rows: frame.height(),
                tfidf: featurizer_config,
                forest: config.clone(),
                nexusml_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            provenance: Default::default(),
        })
    }

    /// Target names in configuration order.
    pub fn target_names(&self) -> Vec<String> {
        self.features.targets.clone()
    }

    pub fn forest_of(&self, target: &str) -> Option<&TargetForest> {
        self.forests
            .iter()
            .find(|f| f.targets.iter().any(|t| t == target))
    }

    /// Predict every target for an engineered table's feature matrix: per target, a
    /// label and its probability per row.
    pub fn predict_matrix(&self, x: &Csr) -> Vec<(String, Vec<(String, f32)>)> {
        let per_forest: Vec<Vec<(u32, f32)>> = self.forests.iter().map(|f| f.forest.predict(x)).collect();
        self.features
            .targets
            .iter()
            .filter_map(|t| {
                let k = self.forests.iter().position(|f| f.targets.contains(t))?;
                let classes = &self.forests[k].classes;
                Some((
                    t.clone(),
                    per_forest[k]
                        .iter()
                        .map(|&(c, p)| (classes[c as usize].clone(), p))
                        .collect(),
                ))
            })
            .collect()
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

    /// Predict one record given as column → value (missing columns are empty).
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
        let mut dense = vec![0f32; self.featurizer.n_features()];
        let mut answers: Vec<(usize, (u32, f32))> = Vec::new();
        for (k, f) in self.forests.iter().enumerate() {
            let mut proba = vec![0f64; f.forest.n_classes];
            f.forest.predict_proba_row(&idx, &vals, &mut dense, &mut proba);
            answers.push((k, super::forest::argmax(&proba)));
        }
        self.features
            .targets
            .iter()
            .filter_map(|t| {
                let f = self.forest_of(t)?;
                let k = self.forests.iter().position(|x| std::ptr::eq(x, f))?;
                let (c, p) = answers[k].1;
                Some(Prediction {
                    target: t.clone(),
                    label: f.classes[c as usize].clone(),
                    probability: p,
                })
            })
            .collect()
    }

    /// Predict every target for a raw inventory. `map` names, per column the model reads,
    /// the input column that holds it (`manufacturer` → `Mfr`). The output keeps the
    /// user's columns under their own names, then per target `predicted_<target>` and
    /// `predicted_<target>_probability` ([`Keep::All`]); or only the id column and the text
    /// the model read, then `<target>` and `<target>_probability` ([`Keep::Id`]). A name
    /// the input already uses gets a `_` appended.
    pub fn predictions_table(
        &self,
        raw: &DataFrame,
        id_column: &str,
        map: &indexmap::IndexMap<String, String>,
        keep: Keep,
    ) -> Result<DataFrame, ModelError> {
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
        let input = map_columns(raw, map)?;
        let (engineered, x) = self.prepare(&input)?;
        let mut columns: Vec<Column> = Vec::new();
        match keep {
            Keep::All => columns.extend(raw.columns().iter().cloned()),
            Keep::Id => {
                // The id column under the user's name, found directly or through `map`.
                let id = raw
                    .column(id_column)
                    .or_else(|e| map.get(id_column).map_or(Err(e), |c| raw.column(c)));
                if let Ok(id) = id {
                    columns.push(id.clone());
                }
                let text = &self.featurizer.text_column;
                columns.push(Column::new(text.as_str().into(), text_column(&engineered, text)?));
            }
        }
        // Beside the user's columns (which may hold the labels) a prediction is
        // `predicted_<target>`; in the id-only table, plainly `<target>`.
        let prefix = match keep {
            Keep::All => "predicted_",
            Keep::Id => "",
        };
        let free = |columns: &[Column], name: String| {
            let mut name = name;
            while columns.iter().any(|c| c.name().as_str() == name) {
                name.push('_');
            }
            name
        };
        for (target, predicted) in self.predict_matrix(&x) {
            let (labels, probs): (Vec<String>, Vec<f32>) = predicted.into_iter().unzip();
            let name = free(&columns, format!("{prefix}{target}"));
            columns.push(Column::new(name.as_str().into(), labels));
            let name = free(&columns, format!("{prefix}{target}_probability"));
            columns.push(Column::new(name.as_str().into(), probs));
        }
        Ok(DataFrame::new(engineered.height(), columns)?)
    }

    /// Metrics for an engineered, labelled table: the given targets (all when empty) and
    /// the `top_terms` most important terms of each.
    pub fn evaluation(
        &self,
        engineered: &DataFrame,
        targets: &[String],
        top_terms: usize,
    ) -> Result<super::metrics::EvaluationReport, ModelError> {
        let x = self.featurizer.transform(engineered)?;
        let texts = text_column(engineered, &self.featurizer.text_column)?;
        let mut per_target = Vec::new();
        let mut terms = Vec::new();
        for (target, predicted) in self.predict_matrix(&x) {
            if !targets.is_empty() && !targets.contains(&target) {
                continue;
            }
            // Rows without a label for this target are predicted but not scored.
            let truth = text_column(engineered, &target)?;
            let labelled: Vec<usize> = (0..truth.len()).filter(|&i| !is_unlabelled(&truth[i])).collect();
            let pick = |v: &[String]| labelled.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
            let labels: Vec<String> = predicted.into_iter().map(|p| p.0).collect();
            let mut m = super::metrics::evaluate(&target, &pick(&truth), &pick(&labels), Some(&pick(&texts)));
            m.unlabelled_rows = truth.len() - labelled.len();
            m.trained_classes = self.forest_of(&target).map_or(0, |f| f.classes.len());
            per_target.push(m);
            terms.push((target.clone(), self.top_terms(&target, top_terms)));
        }
        Ok(super::metrics::EvaluationReport::new(
            engineered.height(),
            per_target,
            terms,
        ))
    }

    /// The `n` terms with the largest importance for a target's forest.
    pub fn top_terms(&self, target: &str, n: usize) -> Vec<(String, f64)> {
        let Some(f) = self.forest_of(target) else {
            return Vec::new();
        };
        let names = &self.featurizer.tfidf.terms;
        let mut idx: Vec<usize> = (0..f.forest.importances.len()).collect();
        idx.sort_by(|&a, &b| {
            f.forest.importances[b]
                .total_cmp(&f.forest.importances[a])
                .then(a.cmp(&b))
        });
        idx.into_iter()
            .take(n)
            .map(|i| {
                let name = names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("[{}]", self.featurizer.numeric_columns[i - names.len()]));
                (name, f.forest.importances[i])
            })
            .collect()
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
            model.forests.len(),
            4,
            "Equipment_Type and System_Subtype share a forest"
        );
        let bytes = crate::ml::bundle::encode(&model, FORMAT_VERSION).unwrap();
        let (mut loaded, _): (EquipmentModel, u32) =
            crate::ml::bundle::decode(&bytes, Path::new("m.nxm"), FORMAT_VERSION).unwrap();
        loaded.restore();
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
        for f in &model.forests {
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
