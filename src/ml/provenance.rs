//! What a model remembers of its training data, so prediction and evaluation can say
//! when their input is not what the model was trained on: the column mapping the data
//! was loaded with, how full each input column was, and a fingerprint of the training
//! rows.
//!
//! The fingerprint is the sorted list of the 64-bit BLAKE3 prefixes of each training
//! row's canonical text (its text input columns, trimmed, joined by U+001F), bounded at
//! [`MAX_FINGERPRINT`] entries: past it, the smallest hashes are kept (a bottom-k
//! sample), and an overlap is counted exactly on the evaluated rows whose hash falls in
//! the sample's range, then scaled.

use super::mapping::{how_to_map, ColumnMap};
use super::model::EquipmentModel;
use super::table::{column_names, text_column};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The most row hashes a model keeps (8 bytes each: 800 KB).
pub const MAX_FINGERPRINT: usize = 100_000;

/// Classes listed per target in an unseen-classes warning.
const LISTED_CLASSES: usize = 10;

/// Stored in the model (`#[serde(default)]`: models from before it load with none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Model column → the training file's column it was loaded from.
    pub map: ColumnMap,
    /// Per input column the model reads: whether the training data had it, and how many
    /// of its rows had a value.
    pub inputs: Vec<InputFill>,
    pub fingerprint: RowFingerprint,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFill {
    pub column: String,
    pub present: bool,
    pub filled_rows: usize,
    pub rows: usize,
}

impl InputFill {
    pub fn share(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.filled_rows as f64 / self.rows as f64
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowFingerprint {
    /// Distinct training rows (by canonical text).
    pub distinct: usize,
    /// The smallest [`MAX_FINGERPRINT`] row hashes, ascending.
    pub hashes: Vec<u64>,
}

/// `100%`, `0%`, else one decimal (`99.5%`): a column filled in all but a few rows
/// must not read as 100%.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == p.round() {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The text input columns the fingerprint reads, in the model's order.
fn fingerprint_columns(model: &EquipmentModel) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &model.features.text_combinations {
        if t.name == model.features.model_text {
            for c in &t.columns {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
    }
    out
}

/// Each row's hash: the 64-bit BLAKE3 prefix of its canonical text (absent columns empty).
fn row_hashes(model: &EquipmentModel, frame: &DataFrame) -> Vec<u64> {
    let present = column_names(frame);
    let columns: Vec<Option<Vec<String>>> = fingerprint_columns(model)
        .iter()
        .map(|c| present.contains(c).then(|| text_column(frame, c).ok()).flatten())
        .collect();
    let mut text = String::new();
    (0..frame.height())
        .map(|row| {
            text.clear();
            for (k, col) in columns.iter().enumerate() {
                if k > 0 {
                    text.push('\u{1f}');
                }
                if let Some(values) = col {
                    text.push_str(values[row].trim());
                }
            }
            let d = blake3::hash(text.as_bytes());
            u64::from_le_bytes(d.as_bytes()[..8].try_into().expect("8 bytes"))
        })
        .collect()
}

/// Rows of a column with a value: a non-empty text cell; for a numeric column the
/// features step filled in place (its source has its name), a finite value other than
/// the configured fill.
fn filled_rows(model: &EquipmentModel, frame: &DataFrame, column: &str) -> usize {
    let Ok(c) = frame.column(column) else {
        return 0;
    };
    if let Ok(s) = c.str() {
        return s
            .iter()
            .filter(|v| v.is_some_and(|v| !v.trim().is_empty()))
            .count();
    }
    let fill = (model.features.numeric_columns.iter())
        .find(|n| n.name == column)
        .map_or(0.0, |n| n.fill);
    match c.cast(&DataType::Float64) {
        Ok(f) => f
            .f64()
            .map(|f| {
                f.iter()
                    .filter(|v| v.is_some_and(|v| v.is_finite() && v != fill))
                    .count()
            })
            .unwrap_or(0),
        Err(_) => 0,
    }
}

impl Provenance {
    /// From the training rows (engineered: the raw columns are still there), loaded
    /// with `map`.
    pub fn of_training(model: &EquipmentModel, train: &DataFrame, map: &ColumnMap) -> Provenance {
        let present = column_names(train);
        let inputs = model
            .input_columns()
            .into_iter()
            .map(|column| InputFill {
                present: present.contains(&column),
                filled_rows: filled_rows(model, train, &column),
                rows: train.height(),
                column,
            })
            .collect();
        let mut hashes = row_hashes(model, train);
        hashes.sort_unstable();
        hashes.dedup();
        let distinct = hashes.len();
        hashes.truncate(MAX_FINGERPRINT);
        Provenance {
            map: map.clone(),
            inputs,
            fingerprint: RowFingerprint { distinct, hashes },
        }
    }

    /// The metadata file's summary: the mapping, the fill share per input column, and
    /// the fingerprint's size.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "column_map": self.map,
            "input_columns": self.inputs.iter().map(|i| serde_json::json!({
                "column": i.column, "present": i.present, "filled_rows": i.filled_rows,
                "share": i.share(),
            })).collect::<Vec<_>>(),
            "training_rows_fingerprint": {
                "distinct_rows": self.fingerprint.distinct,
                "hashes": self.fingerprint.hashes.len(),
            },
        })
    }
}

/// A column the model was trained with that the input to predict lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbsentInput {
    pub column: String,
    /// Share of training rows with a value (`None`: a model from before it was recorded).
    pub trained_share: Option<f64>,
}

impl std::fmt::Display for AbsentInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let share = match self.trained_share {
            Some(s) => format!("filled in {} of training rows", percent(s)),
            None => "the model predates fill records".to_string(),
        };
        write!(
            f,
            "`{}` ({share}) is not in the input: map it with {}",
            self.column,
            how_to_map(&self.column)
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "strict: the input lacks {} column{} the model was trained with: {}",
    .0.len(),
    if .0.len() == 1 { "" } else { "s" },
    .0.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("; ")
)]
pub struct AbsentInputs(pub Vec<AbsentInput>);

/// Every input column the model was trained with (present in its training data) that
/// `columns` (the input, after mapping) lacks. A model without fill records: every text
/// column and the first source of each numeric column.
pub fn absent_inputs(model: &EquipmentModel, columns: &[String]) -> Vec<AbsentInput> {
    let p = &model.provenance;
    if p.inputs.is_empty() {
        let mut trained: Vec<String> = fingerprint_columns(model);
        for n in &model.features.numeric_columns {
            if model.featurizer.numeric_columns.contains(&n.name) {
                trained.extend(n.sources.first().cloned());
            }
        }
        return trained
            .into_iter()
            .filter(|c| !columns.contains(c))
            .map(|column| AbsentInput {
                column,
                trained_share: None,
            })
            .collect();
    }
    p.inputs
        .iter()
        .filter(|i| i.present && !columns.contains(&i.column))
        .map(|i| AbsentInput {
            column: i.column.clone(),
            trained_share: Some(i.share()),
        })
        .collect()
}

/// How many evaluated rows are training rows: exact, or (a sampled fingerprint) an
/// estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    pub rows: usize,
    pub of: usize,
    pub estimated: bool,
}

/// `None` for a model without a fingerprint.
pub fn overlap(model: &EquipmentModel, frame: &DataFrame) -> Option<Overlap> {
    let fp = &model.provenance.fingerprint;
    let max = *fp.hashes.last()?;
    let set: HashSet<u64> = fp.hashes.iter().copied().collect();
    let hashes = row_hashes(model, frame);
    let sampled = fp.hashes.len() < fp.distinct;
    let (mut found, mut decidable) = (0usize, 0usize);
    for h in &hashes {
        if !sampled || *h <= max {
            decidable += 1;
            if set.contains(h) {
                found += 1;
            }
        }
    }
    let rows = if sampled && decidable > 0 {
        ((found as f64) * hashes.len() as f64 / decidable as f64).round() as usize
    } else {
        found
    };
    Some(Overlap {
        rows,
        of: hashes.len(),
        estimated: sampled,
    })
}

/// The evaluation's warnings, in words: per target, the labels the model never learned
/// (rows and classes); and the evaluated rows that are training rows.
pub fn evaluation_warnings(
    model: &EquipmentModel,
    engineered: &DataFrame,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut per_target = BTreeMap::new();
    for target in model.target_names() {
        let (Some((_, _, classes)), Ok(truth)) = (model.answer_of(&target), text_column(engineered, &target))
        else {
            continue;
        };
        let known: HashSet<&str> = classes.iter().map(String::as_str).collect();
        let mut unseen: BTreeMap<&str, usize> = BTreeMap::new();
        for v in truth.iter().filter(|v| !super::model::is_unlabelled(v)) {
            if !known.contains(v.as_str()) {
                *unseen.entry(v.as_str()).or_default() += 1;
            }
        }
        if unseen.is_empty() {
            continue;
        }
        let rows: usize = unseen.values().sum();
        let mut listed: Vec<String> = unseen
            .iter()
            .take(LISTED_CLASSES)
            .map(|(c, n)| format!("\"{c}\" ({n})"))
            .collect();
        if unseen.len() > LISTED_CLASSES {
            listed.push(format!("and {} more", unseen.len() - LISTED_CLASSES));
        }
        per_target.insert(
            target.clone(),
            format!(
                "{target}: {rows} of {} labelled rows have {} class{} the model never saw in training, so \
                 they cannot be predicted right: {}",
                truth.iter().filter(|v| !super::model::is_unlabelled(v)).count(),
                unseen.len(),
                if unseen.len() == 1 { "" } else { "es" },
                listed.join(", ")
            ),
        );
    }
    let overlap = overlap(model, engineered).filter(|o| o.rows > 0).map(|o| {
        format!(
            "{}{} of the {} evaluated rows are training rows of this model (same text columns): on them the \
             scores measure memory, not generalisation; evaluate on rows the model was not trained on",
            if o.estimated { "about " } else { "" },
            o.rows,
            o.of
        )
    });
    (per_target, overlap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::forest::ForestConfig;
    use crate::ml::model::Featurizer;
    use crate::ml::text::TfidfConfig;

    fn model(rows: usize) -> (DataFrame, EquipmentModel) {
        let (_, features, engineered) = crate::ml::sample_inventory(rows, 3);
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 3,
            ..ForestConfig::default()
        };
        let mut model = EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).unwrap();
        model.provenance = Provenance::of_training(&model, &engineered, &ColumnMap::default());
        (engineered, model)
    }

    #[test]
    fn fill_shares_and_absent_columns() {
        let (engineered, model) = model(200);
        let d = model
            .provenance
            .inputs
            .iter()
            .find(|i| i.column == "description")
            .unwrap();
        assert!(d.present && d.filled_rows > 150, "{d:?}");
        let absent = absent_inputs(
            &model,
            &["equipment_tag".into(), "manufacturer".into(), "model".into()],
        );
        let names: Vec<&str> = absent.iter().map(|a| a.column.as_str()).collect();
        assert!(
            names.contains(&"description") && names.contains(&"service_life"),
            "{names:?}"
        );
        // A column the training data lacked is no warning.
        let mut m = model.clone();
        let without = engineered.drop("building_name").unwrap();
        m.provenance = Provenance::of_training(&model, &without, &ColumnMap::default());
        let names2: Vec<String> = absent_inputs(&m, &["model".into()])
            .into_iter()
            .map(|a| a.column)
            .collect();
        assert!(!names2.iter().any(|c| c == "building_name"), "{names2:?}");
        assert!(names2.iter().any(|c| c == "description"), "{names2:?}");
        let text = absent[0].to_string();
        assert!(
            text.contains("of training rows) is not in the input: map it with --map"),
            "{text}"
        );
        assert!(absent_inputs(&model, &column_names(&engineered)).is_empty());
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.995), "99.5%");
    }

    #[test]
    fn the_fingerprint_finds_training_rows_and_only_them() {
        let (engineered, model) = model(200);
        let o = overlap(&model, &engineered).unwrap();
        assert_eq!((o.rows, o.of, o.estimated), (200, 200, false));
        let (_, _, other) = crate::ml::sample_inventory(50, 99);
        assert_eq!(overlap(&model, &other).unwrap().rows, 0);
        // Bounded: a sampled fingerprint still estimates the whole overlap.
        let mut sampled = model.clone();
        sampled.provenance.fingerprint.hashes.truncate(100);
        let o = overlap(&sampled, &engineered).unwrap();
        assert!(o.estimated && o.rows > 120 && o.rows <= 200, "{o:?}");
        let (_, warning) = evaluation_warnings(&model, &engineered);
        assert!(warning
            .unwrap()
            .starts_with("200 of the 200 evaluated rows are training rows"));
    }

    #[test]
    fn a_model_file_from_before_provenance_loads_with_none() {
        // The model as files written before provenance hold it: the same fields, without it.
        #[derive(Serialize)]
        struct Old<'a> {
            features: &'a crate::ml::features::FeatureConfig,
            featurizer: &'a Featurizer,
            models: &'a Vec<crate::ml::model::TargetModel>,
            codes: &'a crate::ml::codes::CodeBook,
            training: &'a crate::ml::model::TrainingInfo,
        }
        let (engineered, model) = model(120);
        let old = Old {
            features: &model.features,
            featurizer: &model.featurizer,
            models: &model.models,
            codes: &model.codes,
            training: &model.training,
        };
        let bytes = crate::ml::bundle::encode(&old, crate::ml::model::FORMAT_VERSION).unwrap();
        let (loaded, _): (EquipmentModel, u32) = crate::ml::bundle::decode(
            &bytes,
            std::path::Path::new("old.nxm"),
            crate::ml::model::FORMAT_VERSION,
        )
        .unwrap();
        assert_eq!(loaded.provenance, Provenance::default());
        assert_eq!(loaded.models, model.models);
        // No fingerprint: no overlap claimed; absent columns still warned, share unknown.
        assert!(overlap(&loaded, &engineered).is_none());
        let absent = absent_inputs(&loaded, &["model".into()]);
        assert!(absent.iter().all(|a| a.trained_share.is_none()) && !absent.is_empty());
        assert!(absent[0].to_string().contains("the model predates fill records"));
    }

    #[test]
    fn unseen_classes_are_counted_per_target() {
        let (engineered, model) = model(200);
        let mut t = engineered.clone();
        let mut cats = text_column(&t, "mcaa_system_category").unwrap();
        for c in cats.iter_mut().take(7) {
            *c = "Never Seen".into();
        }
        t.with_column(Column::new("mcaa_system_category".into(), cats))
            .unwrap();
        let (per_target, _) = evaluation_warnings(&model, &t);
        let w = &per_target["mcaa_system_category"];
        assert!(
            w.starts_with("mcaa_system_category: 7 of 200 labelled rows have 1 class"),
            "{w}"
        );
        assert!(w.contains("\"Never Seen\" (7)"), "{w}");
        assert!(!per_target.contains_key("category_name"));
    }
}
