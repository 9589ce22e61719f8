//! The learners behind one interface: which one trains a target's model and with what
//! settings ([`LearnerConfig`]), and the fitted model of one target ([`Learned`]): its
//! probabilities for one row or a whole matrix, ranked ([`Ranked`]).

use super::forest::{ForestConfig, RandomForest};
use super::linear::{LinearConfig, LinearModel, Loss};
use super::sparse::Csr;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The learner a pipeline names (`model.train { learner }`, `--learner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerKind {
    /// L2-loss linear SVM (scikit-learn's `LinearSVC`) with calibrated probabilities.
    #[default]
    LinearSvc,
    /// L2-regularized logistic regression, one-vs-rest.
    Logistic,
    /// The original model: a random forest per target.
    Forest,
}

impl LearnerKind {
    pub fn name(self) -> &'static str {
        match self {
            LearnerKind::LinearSvc => "linear_svc",
            LearnerKind::Logistic => "logistic",
            LearnerKind::Forest => "forest",
        }
    }
}

/// What trains each target's model, with its settings (stored in the model file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerConfig {
    Forest(ForestConfig),
    Linear(LinearConfig),
}

impl LearnerConfig {
    pub fn kind(&self) -> LearnerKind {
        match self {
            LearnerConfig::Forest(_) => LearnerKind::Forest,
            LearnerConfig::Linear(c) if c.loss == Loss::Logistic => LearnerKind::Logistic,
            LearnerConfig::Linear(_) => LearnerKind::LinearSvc,
        }
    }

    /// The settings' own checks, as one message.
    pub fn check(&self) -> Result<(), String> {
        match self {
            LearnerConfig::Forest(c) => c.check().map_err(|e| e.to_string()),
            LearnerConfig::Linear(c) => c.check().map_err(|e| e.to_string()),
        }
    }
}

/// One target's fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learned {
    Forest(RandomForest),
    Linear(LinearModel),
}

/// "No class here": a [`Ranked`] slot past the model's classes, or a true label the model
/// never learned.
pub const NO_CLASS: u32 = u32::MAX;

/// The most probable classes of each row of a matrix, and (given the true classes) each
/// row's Brier term.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Entries per row.
    pub k: usize,
    /// `rows × k`: (class, probability), most probable first; ties go to the lower class,
    /// so the first entry is the argmax. Past the model's classes: `(NO_CLASS, 0)`.
    pub top: Vec<(u32, f32)>,
    /// Per truth given, per row: `Σ_c (p_c − [c = y])²` against the row's true class
    /// (`NO_CLASS`: a label the model does not know, so every class is wrong).
    pub brier: Vec<Vec<f64>>,
}

impl Ranked {
    pub fn rows(&self) -> usize {
        self.top.len() / self.k.max(1)
    }

    /// Row `i`'s entries.
    pub fn row(&self, i: usize) -> &[(u32, f32)] {
        &self.top[i * self.k..(i + 1) * self.k]
    }

    /// Row `i`'s most probable class and its probability.
    pub fn best(&self, i: usize) -> (u32, f32) {
        self.top[i * self.k]
    }
}

/// Scratch for [`Learned::proba_row`], sized for one model.
pub struct RowScratch {
    dense: Vec<f32>,
    decision: Vec<f32>,
}

/// Rows per task of the linear batch path.
const LINEAR_CHUNK: usize = 512;

impl Learned {
    pub fn n_classes(&self) -> usize {
        match self {
            Learned::Forest(f) => f.n_classes,
            Learned::Linear(m) => m.n_classes,
        }
    }

    pub fn n_features(&self) -> usize {
        match self {
            Learned::Forest(f) => f.n_features,
            Learned::Linear(m) => m.n_features,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Learned::Forest(_) => "forest",
            Learned::Linear(m) if m.loss == Loss::Logistic => "logistic",
            Learned::Linear(_) => "linear_svc",
        }
    }

    pub fn scratch(&self) -> RowScratch {
        match self {
            Learned::Forest(f) => RowScratch {
                dense: vec![0.0; f.n_features],
                decision: Vec::new(),
            },
            Learned::Linear(m) => RowScratch {
                dense: Vec::new(),
                decision: vec![0.0; m.n_classes],
            },
        }
    }

    /// Class probabilities of one sparse row (columns below `n_features`) into `out`
    /// (`n_classes` long), exactly as the batch path computes them.
    pub fn proba_row(&self, idx: &[u32], vals: &[f32], scratch: &mut RowScratch, out: &mut [f64]) {
        match self {
            Learned::Forest(f) => f.predict_proba_row(idx, vals, &mut scratch.dense, out),
            Learned::Linear(m) => m.proba_row(idx, vals, &mut scratch.decision, out),
        }
    }

    /// The `k` most probable classes of every row of `x` (which must have the model's
    /// columns), and for each of `truths` (a class or [`NO_CLASS`] per row) the Brier
    /// terms. Parallel over chunks of rows; the same values as [`Self::proba_row`] row by
    /// row, whatever the chunking or the number of threads.
    pub fn rank(&self, x: &Csr, k: usize, truths: &[&[u32]]) -> Ranked {
        let n = self.n_classes();
        let k = k.max(1);
        let chunk_rows = match self {
            Learned::Forest(f) => f.chunk_rows(x.n_rows),
            Learned::Linear(_) => LINEAR_CHUNK,
        };
        let starts: Vec<usize> = (0..x.n_rows).step_by(chunk_rows.max(1)).collect();
        // Per chunk: its top entries and its Brier terms per truth.
        type Part = (Vec<(u32, f32)>, Vec<Vec<f64>>);
        let parts: Vec<Part> = starts
            .par_iter()
            .map(|&start| {
                let rows = chunk_rows.min(x.n_rows - start);
                let proba = match self {
                    Learned::Forest(f) => f.proba_chunk(x, start, rows),
                    Learned::Linear(m) => {
                        let mut out = vec![0f64; rows * n];
                        let mut d = vec![0f32; n];
                        for (r, p) in out.chunks_mut(n.max(1)).enumerate().take(rows) {
                            let (idx, vals) = x.row(start + r);
                            m.proba_row(idx, vals, &mut d, p);
                        }
                        out
                    }
                };
                let mut top = Vec::with_capacity(rows * k);
                let mut brier = vec![Vec::with_capacity(rows); truths.len()];
                for r in 0..rows {
                    let p = &proba[r * n..(r + 1) * n];
                    top_k(p, k, &mut top);
                    for (b, truth) in brier.iter_mut().zip(truths) {
                        b.push(brier_term(p, truth[start + r]));
                    }
                }
                (top, brier)
            })
            .collect();
        let mut top = Vec::with_capacity(x.n_rows * k);
        let mut brier = vec![Vec::with_capacity(x.n_rows); truths.len()];
        for (t, b) in parts {
            top.extend(t);
            for (all, part) in brier.iter_mut().zip(b) {
                all.extend(part);
            }
        }
        Ranked { k, top, brier }
    }

    /// How much the model leans on each feature: a forest's mean decrease in impurity, or
    /// a linear model's largest absolute weight over its classes (TF-IDF columns share
    /// one scale, so these compare).
    pub fn importances(&self) -> Vec<f64> {
        match self {
            Learned::Forest(f) => f.importances.clone(),
            Learned::Linear(m) => {
                let k = m.n_classes.max(1);
                m.weights
                    .chunks(k)
                    .map(|w| w.iter().fold(0f64, |a, &v| a.max(f64::from(v).abs())))
                    .collect()
            }
        }
    }
}

/// Append the `k` most probable classes of one row (ties to the lower class; past the
/// classes, `(NO_CLASS, 0)`).
pub fn top_k(p: &[f64], k: usize, out: &mut Vec<(u32, f32)>) {
    let mut best: [(u32, f64); 8] = [(NO_CLASS, f64::NEG_INFINITY); 8];
    let k = k.min(best.len());
    for (c, &v) in p.iter().enumerate() {
        if v > best[k - 1].1 {
            // Strictly greater: an equal value found later stays behind the earlier class.
            let mut at = k - 1;
            while at > 0 && v > best[at - 1].1 {
                best[at] = best[at - 1];
                at -= 1;
            }
            best[at] = (c as u32, v);
        }
    }
    out.extend(best[..k].iter().map(|&(c, v)| {
        if c == NO_CLASS {
            (NO_CLASS, 0.0)
        } else {
            (c, v as f32)
        }
    }));
}

/// `Σ_c (p_c − [c = y])²`.
fn brier_term(p: &[f64], y: u32) -> f64 {
    let sq: f64 = p.iter().map(|v| v * v).sum();
    let py = p.get(y as usize).copied().unwrap_or(0.0);
    sq - 2.0 * py + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_argmax_ties_and_pads() {
        let mut out = Vec::new();
        top_k(&[0.2, 0.4, 0.4, 0.0], 3, &mut out);
        assert_eq!(out, [(1, 0.4), (2, 0.4), (0, 0.2)]);
        out.clear();
        top_k(&[1.0], 3, &mut out);
        assert_eq!(out, [(0, 1.0), (NO_CLASS, 0.0), (NO_CLASS, 0.0)]);
        out.clear();
        top_k(&[0.1, 0.3, 0.6], 1, &mut out);
        assert_eq!(out, [(2, 0.6)]);
    }

    #[test]
    fn brier_terms() {
        assert!((brier_term(&[0.7, 0.2, 0.1], 0) - 0.14).abs() < 1e-12);
        // A label the model does not know: every class is wrong.
        assert!((brier_term(&[0.5, 0.5], NO_CLASS) - 1.5).abs() < 1e-12);
    }
}
