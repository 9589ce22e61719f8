//! A random-forest classifier for sparse, high-dimensional input (TF-IDF plus a few
//! numeric columns), following scikit-learn's `RandomForestClassifier`:
//!
//! * each tree is grown on a bootstrap sample, weighted per class on that sample
//!   (`class_weight="balanced_subsample"`), with the gini criterion, to full depth;
//! * at each node, features are drawn without replacement until `max_features` have been
//!   visited *and* one of them varies in the node (features constant in the node count as
//!   visited, exactly as scikit-learn's best splitter; on TF-IDF most draws are such
//!   all-zero columns);
//! * a split's threshold is the midpoint between consecutive distinct values.
//!
//! What makes it fast on sparse data: a feature's values in a node are gathered from its
//! non-zeros only (by scanning the column, or by binary search in the node's rows,
//! whichever touches less), the zeros form one block, and in small nodes the union of the
//! rows' non-zero columns tells at once which drawn features are constant.
//!
//! Every tree is seeded from (seed, target, tree index), so a forest is the same bit for
//! bit whatever the number of threads. Trees train in parallel on the ambient rayon pool.

mod config;
mod grow;
mod linfa_learner;
mod linfa_traits;
mod route;
mod tree;

pub use config::{ClassWeight, ForestConfig, Learner, MaxFeatures};
pub use config::{MAX_DEPTH, MAX_FEATURE_COUNT, MAX_MIN_SAMPLES, MAX_TREES};
pub use tree::{Node, Tree};

use self::grow::{grow, Data};
#[cfg(test)]
use self::tree::LEAF;
use super::rng::derive_seed;
#[cfg(test)]
use super::rng::Rng;
use super::sparse::Csr;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForestError {
    #[error("cannot train on an empty table")]
    Empty,
    #[error("{labels} labels for {rows} rows")]
    Length { rows: usize, labels: usize },
    #[error("label {label} is out of range for {n_classes} classes")]
    Label { label: u32, n_classes: usize },
    #[error("target '{target}' has no labelled row to train on")]
    NoLabels { target: String },
    #[error("invalid forest settings: {0}")]
    Config(String),
    #[error("stopped before every tree was grown (cancelled)")]
    Cancelled,
    #[error("linfa-trees failed on tree {tree} of target '{target}': {message}")]
    Linfa {
        target: String,
        tree: usize,
        message: String,
    },
}

/// A trained forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForest {
    pub n_classes: usize,
    pub n_features: usize,
    pub trees: Vec<Tree>,
    /// Mean decrease in impurity per feature, summing to 1.
    pub importances: Vec<f64>,
}

/// One target to train: its name (seeds the trees), labels and class count.
pub struct Target<'a> {
    pub name: &'a str,
    /// Class per row; [`UNLABELLED`] leaves the row out of this target's trees.
    pub labels: &'a [u32],
    pub n_classes: usize,
}

/// The label of a row that has none: it is never drawn into the target's trees (the
/// other targets still train on it).
pub const UNLABELLED: u32 = u32::MAX;

impl RandomForest {
    /// Train one forest.
    pub fn fit(x: &Csr, target: &Target<'_>, config: &ForestConfig) -> Result<RandomForest, ForestError> {
        Ok(Self::fit_many(x, std::slice::from_ref(target), config, &|| {})?.remove(0))
    }

    /// Train one forest per target, all trees in one parallel pool of work (better
    /// balance than forest by forest). `tick` is called after each tree (progress).
    pub fn fit_many(
        x: &Csr,
        targets: &[Target<'_>],
        config: &ForestConfig,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Vec<RandomForest>, ForestError> {
        Self::fit_many_until(x, targets, config, tick, &AtomicBool::new(false))
    }

    /// [`Self::fit_many`], stopping with [`ForestError::Cancelled`] before the next tree
    /// once `stop` is set.
    pub fn fit_many_until(
        x: &Csr,
        targets: &[Target<'_>],
        config: &ForestConfig,
        tick: &(dyn Fn() + Sync),
        stop: &AtomicBool,
    ) -> Result<Vec<RandomForest>, ForestError> {
        config.check()?;
        if x.n_rows == 0 {
            return Err(ForestError::Empty);
        }
        for t in targets {
            if t.labels.len() != x.n_rows {
                return Err(ForestError::Length {
                    rows: x.n_rows,
                    labels: t.labels.len(),
                });
            }
            if let Some(&bad) = t
                .labels
                .iter()
                .find(|&&l| l != UNLABELLED && l as usize >= t.n_classes)
            {
                return Err(ForestError::Label {
                    label: bad,
                    n_classes: t.n_classes,
                });
            }
            if t.labels.iter().all(|&l| l == UNLABELLED) {
                return Err(ForestError::NoLabels {
                    target: t.name.to_string(),
                });
            }
        }
        let csc = x.to_csc();
        let data = Data {
            csr: x,
            csc: &csc,
            avg_row_nnz: x.nnz() as f64 / x.n_rows as f64,
            avg_col_nnz: x.nnz() as f64 / x.n_cols.max(1) as f64,
        };
        let jobs: Vec<(usize, usize)> = (0..targets.len())
            .flat_map(|t| (0..config.n_trees).map(move |k| (t, k)))
            .collect();
        let grown: Vec<(Tree, Vec<f64>)> = jobs
            .par_iter()
            .map(|&(t, k)| {
                if stop.load(Ordering::Relaxed) {
                    return Err(ForestError::Cancelled);
                }
                let out = grow_tree(&data, &targets[t], k, config);
                tick();
                out
            })
            .collect::<Result<_, _>>()?;
        let mut forests = Vec::with_capacity(targets.len());
        let mut grown = grown.into_iter();
        for t in targets {
            let mut trees = Vec::with_capacity(config.n_trees);
            let mut importances = vec![0.0; x.n_cols];
            for _ in 0..config.n_trees {
                let (tree, imp) = grown.next().expect("one tree per job");
                let total: f64 = imp.iter().sum();
                if total > 0.0 {
                    for (a, b) in importances.iter_mut().zip(&imp) {
                        *a += b / total;
                    }
                }
                trees.push(tree);
            }
            let total: f64 = importances.iter().sum();
            if total > 0.0 {
                importances.iter_mut().for_each(|v| *v /= total);
            }
            forests.push(RandomForest {
                n_classes: t.n_classes,
                n_features: x.n_cols,
                trees,
                importances,
            });
        }
        Ok(forests)
    }

    /// Mean class probabilities for one sparse row. `dense` is scratch of `n_features`
    /// zeros, returned zeroed.
    pub fn predict_proba_row(&self, idx: &[u32], vals: &[f32], dense: &mut [f32], out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = 0.0);
        let mut votes = vec![0u32; self.n_classes];
        for (&c, &v) in idx.iter().zip(vals) {
            dense[c as usize] = v;
        }
        for tree in &self.trees {
            let (a, b) = tree.leaf(dense);
            tree.tally(a..b, &mut votes, out);
        }
        for &c in idx {
            dense[c as usize] = 0.0;
        }
        self.mean(&votes, out);
    }

    /// Turn a row's tally into mean probabilities, in `impure`.
    #[inline]
    fn mean(&self, votes: &[u32], impure: &mut [f64]) {
        let n = self.trees.len() as f64;
        for (p, &v) in impure.iter_mut().zip(votes) {
            *p = (v as f64 + *p) / n;
        }
    }
}

/// Index and value of the largest entry (first on ties).
pub fn argmax(p: &[f64]) -> (u32, f32) {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    (best as u32, p.get(best).copied().unwrap_or(0.0) as f32)
}

/// Tree `k` of a target, grown by the configured learner from its derived seed.
fn grow_tree(
    data: &Data<'_>,
    target: &Target<'_>,
    k: usize,
    config: &ForestConfig,
) -> Result<(Tree, Vec<f64>), ForestError> {
    let seed = derive_seed(config.seed, &[target.name.as_bytes(), &(k as u64).to_le_bytes()]);
    match config.learner {
        Learner::Sparse => Ok(grow(data, target, config, seed)),
        Learner::LinfaTree => {
            linfa_learner::grow(data.csr, target, config, seed).map_err(|message| ForestError::Linfa {
                target: target.name.to_string(),
                tree: k,
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
fn tests_toy(n: usize) -> (Csr, Vec<u32>) {
    tests::toy(n)
}
