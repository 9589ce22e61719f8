//! Hyperparameter search by k-fold cross-validation on the training rows: one score per
//! (grid point, fold), the mean macro-F1 over targets of a model fitted on the other folds
//! and scored on the held-out one; the best point is the highest mean over folds (ties:
//! the earlier point). The pipeline runs each (point, fold) as one node of a family
//! (`model.cv_score`), so fits are cached, run in parallel, and on a cluster as one job
//! array; `model.select_best` gathers them.

use super::codes::CodesConfig;
use super::features::FeatureConfig;
#[cfg(test)]
use super::forest::ForestConfig;
use super::learner::LearnerConfig;
use super::model::{EquipmentModel, Featurizer, ModelError};
use super::rng::Rng;
use super::table::take_rows;
use super::text::TfidfConfig;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The values `nexusml train --optimize` tries for each setting; every combination is a
/// grid point. Each axis is a parameter of `dags/train.toml` (`grid_<axis>`). The
/// default is the default learner's grid (the linear SVM's `c` × the TF-IDF vocabulary
/// × word n-grams); [`SearchGrid::forest`] is the forest's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchGrid {
    pub max_features: Vec<usize>,
    pub ngram_max: Vec<usize>,
    /// The linear learners' `c` (`linear.c`).
    pub c: Vec<f64>,
    /// Whether a char_wb block sits beside the words (`text.tfidf`'s `char_wb.enabled`).
    pub char_wb: Vec<bool>,
    pub trees: Vec<usize>,
    pub min_samples_leaf: Vec<usize>,
}

impl Default for SearchGrid {
    fn default() -> Self {
        SearchGrid {
            max_features: vec![3000, 5000, 7000],
            ngram_max: vec![2, 3],
            c: vec![0.3, 1.0, 3.0],
            char_wb: vec![false],
            trees: vec![200],
            min_samples_leaf: vec![1],
        }
    }
}

impl SearchGrid {
    /// The forest's grid (the original `--optimize`): vocabulary × n-grams × trees ×
    /// leaf size.
    pub fn forest() -> Self {
        SearchGrid {
            c: vec![1.0],
            trees: vec![100, 200, 300],
            min_samples_leaf: vec![1, 2, 4],
            ..SearchGrid::default()
        }
    }

    /// The grid of a learner's settings.
    pub fn for_learner(kind: super::learner::LearnerKind) -> Self {
        match kind {
            super::learner::LearnerKind::Forest => SearchGrid::forest(),
            _ => SearchGrid::default(),
        }
    }

    /// Grid points.
    pub fn len(&self) -> usize {
        self.max_features.len()
            * self.ngram_max.len()
            * self.c.len()
            * self.char_wb.len()
            * self.trees.len()
            * self.min_samples_leaf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As the pipeline's parameters: `grid_max_features = [3000, 5000, 7000]`, ….
    pub fn params(&self) -> Vec<(String, toml::Value)> {
        let list =
            |v: &[usize]| toml::Value::Array(v.iter().map(|&x| toml::Value::Integer(x as i64)).collect());
        vec![
            ("grid_max_features".into(), list(&self.max_features)),
            ("grid_ngram_max".into(), list(&self.ngram_max)),
            (
                "grid_c".into(),
                toml::Value::Array(self.c.iter().map(|&x| toml::Value::Float(x)).collect()),
            ),
            (
                "grid_char_wb".into(),
                toml::Value::Array(self.char_wb.iter().map(|&x| toml::Value::Boolean(x)).collect()),
            ),
            ("grid_trees".into(), list(&self.trees)),
            ("grid_min_samples_leaf".into(), list(&self.min_samples_leaf)),
        ]
    }
}

/// The rows of each fold: (fitted on, held out), from a seeded shuffle; fold `k` holds
/// every `folds`-th row of it.
pub fn fold_rows(n: usize, folds: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    (0..folds)
        .map(|k| {
            let mut held: Vec<usize> = order.iter().copied().skip(k).step_by(folds).collect();
            held.sort_unstable();
            let fit: Vec<usize> = (0..n).filter(|i| held.binary_search(i).is_err()).collect();
            (fit, held)
        })
        .collect()
}

/// The score of one (point, fold): fit TF-IDF and the model (whichever learner the
/// pipeline trains) on the other folds of `train`, score the held-out fold (mean
/// macro-F1 over targets). `stop` (a timeout, Ctrl-C) ends the fit at its next tree or
/// linear sub-problem.
#[allow(clippy::too_many_arguments)]
pub fn score_fold(
    train: &DataFrame,
    features: &FeatureConfig,
    tfidf: &TfidfConfig,
    learner: &LearnerConfig,
    folds: usize,
    fold: usize,
    seed: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<f64, ModelError> {
    let rows = fold_rows(train.height(), folds, seed);
    let (fit, held) = &rows[fold];
    let (fit, held) = (take_rows(train, fit)?, take_rows(train, held)?);
    let (featurizer, x) = Featurizer::fit_until(&fit, features, tfidf, stop)?;
    // The code book does not change the score.
    let codes = CodesConfig {
        category: String::new(),
        codes: Vec::new(),
    };
    let model = EquipmentModel::train_until(&fit, features, featurizer, &x, learner, &codes, &|| {}, stop)?;
    Ok(model.evaluation(&held, &[], 0)?.mean_macro_f1)
}

/// One (point, fold)'s score, with the settings it was fitted with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvScore {
    /// The grid point: axis → value (the `point` table of the node).
    pub point: Value,
    pub fold: usize,
    pub folds: usize,
    /// Mean macro-F1 over targets on the held-out fold.
    pub score: f64,
    /// The TF-IDF and learner settings that differ from the training nodes' own: what
    /// the chosen point makes them.
    pub tfidf: Value,
    pub train: Value,
}

/// A grid point's cross-validated score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PointScore {
    pub point: Value,
    /// Mean over folds of the mean macro-F1 over targets.
    pub mean_macro_f1: f64,
    pub fold_scores: Vec<f64>,
}

/// The chosen point and what it sets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Best {
    pub point: Value,
    pub score: f64,
    pub tfidf: Value,
    pub train: Value,
}

/// Every point's score and the best point; `best` is `None` when no search ran (the
/// family had no members: `cv_folds = 0`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchResult {
    pub folds: usize,
    pub best: Option<Best>,
    pub points: Vec<PointScore>,
}

/// Gather the scores of a search (in member order): points in the order they first
/// appear, the best one highest (ties: the earlier).
pub fn select(scores: &[CvScore]) -> SearchResult {
    let mut points: Vec<(PointScore, &CvScore)> = Vec::new();
    for s in scores {
        match points.iter_mut().find(|(p, _)| p.point == s.point) {
            Some((p, _)) => p.fold_scores.push(s.score),
            None => points.push((
                PointScore {
                    point: s.point.clone(),
                    mean_macro_f1: 0.0,
                    fold_scores: vec![s.score],
                },
                s,
            )),
        }
    }
    for (p, _) in &mut points {
        p.mean_macro_f1 = p.fold_scores.iter().sum::<f64>() / p.fold_scores.len().max(1) as f64;
    }
    let best = points
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1 .0
                .mean_macro_f1
                .total_cmp(&b.1 .0.mean_macro_f1)
                .then(b.0.cmp(&a.0))
        })
        .map(|(_, (p, s))| Best {
            point: p.point.clone(),
            score: p.mean_macro_f1,
            tfidf: s.tfidf.clone(),
            train: s.train.clone(),
        });
    SearchResult {
        folds: scores.iter().map(|s| s.folds).max().unwrap_or(0),
        best,
        points: points.into_iter().map(|(p, _)| p).collect(),
    }
}

/// `base` with the fields of `overrides` (a JSON object) set: the chosen point's
/// settings over a node's own. Tables merge field by field (`linear = { c = 3 }` sets
/// the linear learner's `c` and keeps its other settings); anything else replaces. The
/// result is checked by the caller's type.
pub fn overlay<C: Serialize + for<'de> Deserialize<'de>>(base: &C, overrides: &Value) -> Result<C, String> {
    let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
    merge(&mut v, overrides);
    serde_json::from_value(v).map_err(|e| format!("the chosen point does not fit: {e}"))
}

fn merge(target: &mut Value, overrides: &Value) {
    match (target, overrides) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, x) in o {
                match t.get_mut(k) {
                    Some(slot @ Value::Object(_)) if x.is_object() => merge(slot, x),
                    _ => {
                        t.insert(k.clone(), x.clone());
                    }
                }
            }
        }
        (t, o) => *t = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn score(point: Value, fold: usize, score: f64) -> CvScore {
        CvScore {
            point: point.clone(),
            fold,
            folds: 2,
            score,
            tfidf: json!({}),
            train: point,
        }
    }

    #[test]
    fn the_best_mean_over_folds_wins_and_ties_go_to_the_earlier_point() {
        let a = json!({ "trees": 5 });
        let b = json!({ "trees": 50 });
        let r = select(&[
            score(a.clone(), 0, 0.5),
            score(a.clone(), 1, 0.7),
            score(b.clone(), 0, 0.6),
            score(b.clone(), 1, 0.6),
        ]);
        assert_eq!(r.points.len(), 2);
        assert_eq!(r.points[0].fold_scores, vec![0.5, 0.7]);
        let best = r.best.unwrap();
        assert_eq!(best.point, a, "0.6 each: the earlier point");
        assert_eq!(best.score, 0.6);
        assert!(select(&[]).best.is_none());
    }

    #[test]
    fn folds_cover_every_row_once_and_a_fold_scores() {
        let rows = fold_rows(10, 3, 7);
        let mut held: Vec<usize> = rows.iter().flat_map(|(_, h)| h.clone()).collect();
        held.sort_unstable();
        assert_eq!(held, (0..10).collect::<Vec<_>>());
        for (fit, h) in &rows {
            assert_eq!(fit.len() + h.len(), 10);
        }
        let (_, features, engineered) = crate::ml::sample_inventory(240, 9);
        let tfidf = TfidfConfig {
            max_features: Some(500),
            ..TfidfConfig::default()
        };
        let forest = ForestConfig {
            n_trees: 5,
            ..ForestConfig::default()
        };
        let go = std::sync::atomic::AtomicBool::new(false);
        let linear = LearnerConfig::Linear(crate::ml::linear::LinearConfig::default());
        for learner in [LearnerConfig::Forest(forest), linear] {
            let s = score_fold(&engineered, &features, &tfidf, &learner, 2, 1, 42, &go).unwrap();
            assert!(s > 0.0 && s <= 1.0);
            assert_eq!(
                score_fold(&engineered, &features, &tfidf, &learner, 2, 1, 42, &go).unwrap(),
                s
            );
            // A stop already asked for ends the fold before it fits anything.
            let stop = std::sync::atomic::AtomicBool::new(true);
            let stopped = score_fold(&engineered, &features, &tfidf, &learner, 2, 1, 42, &stop);
            assert!(
                stopped.unwrap_err().to_string().contains("cancel"),
                "stops when asked"
            );
        }
    }

    #[test]
    fn a_point_overlays_a_config() {
        let base = ForestConfig::default();
        let tuned: ForestConfig = overlay(&base, &json!({ "n_trees": 7 })).unwrap();
        assert_eq!(tuned.n_trees, 7);
        assert_eq!(tuned.seed, base.seed);
        assert!(overlay::<ForestConfig>(&base, &json!({ "n_trees": "many" })).is_err());
        // Tables merge field by field.
        let linear = crate::ml::linear::LinearConfig::default();
        let tuned: LearnerConfig = overlay(
            &LearnerConfig::Linear(linear.clone()),
            &json!({ "linear": { "c": 3.0 } }),
        )
        .unwrap();
        let LearnerConfig::Linear(l) = tuned else {
            panic!("still linear")
        };
        assert_eq!(l.c, 3.0);
        assert_eq!(l.tol, linear.tol);
        assert_eq!(l.class_weight, linear.class_weight);
    }
}
