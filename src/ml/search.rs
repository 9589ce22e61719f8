//! Hyperparameter search: a grid over TF-IDF and forest settings, scored by k-fold
//! cross-validation on the training rows (mean macro-F1 over targets).

use super::features::FeatureConfig;
use super::forest::ForestConfig;
use super::model::{EquipmentModel, Featurizer, ModelError};
use super::rng::Rng;
use super::table::take_rows;
use super::text::TfidfConfig;
use polars::prelude::DataFrame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicBool;

/// The values tried for each setting; every combination is a grid point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchGrid {
    pub max_features: Vec<usize>,
    pub ngram_max: Vec<usize>,
    pub trees: Vec<usize>,
    pub min_samples_leaf: Vec<usize>,
}

impl Default for SearchGrid {
    fn default() -> Self {
        SearchGrid {
            max_features: vec![3000, 5000, 7000],
            ngram_max: vec![2, 3],
            trees: vec![100, 200, 300],
            min_samples_leaf: vec![1, 2, 4],
        }
    }
}

/// One combination of settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridPoint {
    pub max_features: usize,
    pub ngram_max: usize,
    pub trees: usize,
    pub min_samples_leaf: usize,
}

impl SearchGrid {
    pub fn points(&self) -> Vec<GridPoint> {
        let mut out = Vec::new();
        for &max_features in &self.max_features {
            for &ngram_max in &self.ngram_max {
                for &trees in &self.trees {
                    for &min_samples_leaf in &self.min_samples_leaf {
                        out.push(GridPoint {
                            max_features,
                            ngram_max,
                            trees,
                            min_samples_leaf,
                        });
                    }
                }
            }
        }
        out
    }
}

/// A grid point's cross-validated score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PointScore {
    pub point: GridPoint,
    /// Mean over folds of the mean macro-F1 over targets.
    pub mean_macro_f1: f64,
    pub fold_scores: Vec<f64>,
}

/// Every point's score and the best point (highest score; ties: the earlier point).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchResult {
    pub folds: usize,
    pub best: GridPoint,
    pub best_score: f64,
    pub points: Vec<PointScore>,
}

/// Score every grid point by `folds`-fold cross-validation on an engineered training
/// table. Folds come from a seeded shuffle; every (point, fold) fit runs in parallel.
/// `tick` is called after each fit.
pub fn grid_search(
    train: &DataFrame,
    features: &FeatureConfig,
    grid: &SearchGrid,
    folds: usize,
    base: &ForestConfig,
    tick: &(dyn Fn() + Sync),
) -> Result<SearchResult, ModelError> {
    grid_search_until(train, features, grid, folds, base, tick, &AtomicBool::new(false))
}

/// [`grid_search`], stopping early once `stop` is set: no fit starts after it, and the
/// fits running stop at their next tree.
pub fn grid_search_until(
    train: &DataFrame,
    features: &FeatureConfig,
    grid: &SearchGrid,
    folds: usize,
    base: &ForestConfig,
    tick: &(dyn Fn() + Sync),
    stop: &AtomicBool,
) -> Result<SearchResult, ModelError> {
    let n = train.height();
    let folds = folds.clamp(2, n.max(2));
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(base.seed).shuffle(&mut order);
    let fold_rows: Vec<(Vec<usize>, Vec<usize>)> = (0..folds)
        .map(|k| {
            let mut held: Vec<usize> = order.iter().copied().skip(k).step_by(folds).collect();
            held.sort_unstable();
            let mut fit: Vec<usize> = (0..n).filter(|i| held.binary_search(i).is_err()).collect();
            fit.sort_unstable();
            (fit, held)
        })
        .collect();
    // Each fold's tables are cut once, here, before the parallel fits. Cutting them
    // inside the fits called polars' own thread pool from our workers; a worker waiting
    // on polars steals another fit, which calls polars again, and with many folds that
    // nesting overflowed the stack (`--cv-folds 40`).
    let fold_tables: Vec<(DataFrame, DataFrame)> = fold_rows
        .iter()
        .map(|(fit, held)| Ok((take_rows(train, fit)?, take_rows(train, held)?)))
        .collect::<Result<_, ModelError>>()?;
    let points = grid.points();
    let jobs: Vec<(usize, usize)> = (0..points.len())
        .flat_map(|p| (0..folds).map(move |k| (p, k)))
        .collect();
    let scores: Vec<f64> = jobs
        .par_iter()
        .map(|&(p, k)| {
            let score = score_fold(features, &points[p], &fold_tables[k], base, stop);
            tick();
            score
        })
        .collect::<Result<_, _>>()?;
    let mut scored: Vec<PointScore> = points
        .iter()
        .enumerate()
        .map(|(p, point)| {
            let fold_scores = scores[p * folds..(p + 1) * folds].to_vec();
            PointScore {
                point: *point,
                mean_macro_f1: fold_scores.iter().sum::<f64>() / folds as f64,
                fold_scores,
            }
        })
        .collect();
    let best = scored
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1.mean_macro_f1
                .total_cmp(&b.1.mean_macro_f1)
                .then(b.0.cmp(&a.0))
        })
        .map(|(_, s)| s.clone())
        .expect("a grid has at least one point");
    scored.shrink_to_fit();
    Ok(SearchResult {
        folds,
        best: best.point,
        best_score: best.mean_macro_f1,
        points: scored,
    })
}

fn score_fold(
    features: &FeatureConfig,
    point: &GridPoint,
    (fit, held): &(DataFrame, DataFrame),
    base: &ForestConfig,
    stop: &AtomicBool,
) -> Result<f64, ModelError> {
    let tfidf = TfidfConfig {
        ngram_max: point.ngram_max,
        max_features: Some(point.max_features),
        ..TfidfConfig::default()
    };
    let forest = ForestConfig {
        n_trees: point.trees,
        min_samples_leaf: point.min_samples_leaf,
        ..base.clone()
    };
    let (featurizer, x) = Featurizer::fit_until(fit, features, &tfidf, stop)?;
    let model = EquipmentModel::fit_until(fit, features, featurizer, &x, &forest, &|| {}, stop)?;
    Ok(model.evaluation(held, &[], 0)?.mean_macro_f1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_every_point_and_picks_the_best() {
        let (_, features, engineered) = crate::ml::sample_inventory(240, 9);
        let grid = SearchGrid {
            max_features: vec![500],
            ngram_max: vec![1, 2],
            trees: vec![5],
            min_samples_leaf: vec![1, 8],
        };
        let count = std::sync::atomic::AtomicUsize::new(0);
        let tick = || {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let r = grid_search(&engineered, &features, &grid, 2, &ForestConfig::default(), &tick).unwrap();
        assert_eq!(r.points.len(), 4);
        assert_eq!(count.into_inner(), 8, "4 points × 2 folds");
        let top = r.points.iter().map(|p| p.mean_macro_f1).fold(f64::MIN, f64::max);
        assert_eq!(r.best_score, top);
        assert!(r
            .points
            .iter()
            .all(|p| p.fold_scores.len() == 2 && p.mean_macro_f1 > 0.0));
        // Deterministic.
        let again = grid_search(&engineered, &features, &grid, 2, &ForestConfig::default(), &|| {}).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn a_set_stop_flag_ends_the_search_with_an_error() {
        let (_, features, engineered) = crate::ml::sample_inventory(240, 9);
        let stop = AtomicBool::new(true);
        let e = grid_search_until(
            &engineered,
            &features,
            &SearchGrid::default(),
            3,
            &ForestConfig::default(),
            &|| {},
            &stop,
        )
        .unwrap_err();
        assert!(e.to_string().contains("cancelled"), "{e}");
    }

    #[test]
    fn many_folds_run() {
        // `--cv-folds 40` overflowed the stack through nested polars calls.
        let (_, features, engineered) = crate::ml::sample_inventory(240, 9);
        let grid = SearchGrid {
            max_features: vec![200],
            ngram_max: vec![1],
            trees: vec![2],
            min_samples_leaf: vec![1, 2, 4],
        };
        let base = ForestConfig::default();
        let r = grid_search(&engineered, &features, &grid, 60, &base, &|| {}).unwrap();
        assert_eq!(r.folds, 60);
        assert!(r.points.iter().all(|p| p.fold_scores.len() == 60));
    }
}
