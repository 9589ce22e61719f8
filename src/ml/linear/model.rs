//! A fitted one-vs-rest linear classifier: decision values and probabilities for one
//! row or a whole matrix.

use super::hyperparams::Loss;
use super::LinearError;
use crate::ml::calibration::Calibrator;
use crate::ml::sparse::Csr;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One weight vector and intercept per class, and how decision values become
/// probabilities.
///
/// Weights are `f32`, stored feature-major (`weights[f · n_classes + k]`): a row's
/// decision values are then one contiguous multiply-add of `n_classes` values per
/// non-zero, which vectorizes. The solver works in `f64`; rounding its weights to
/// `f32` moves decision values by about 1e-7 relative, far below what changes a label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub loss: Loss,
    pub n_classes: usize,
    pub n_features: usize,
    pub weights: Vec<f32>,
    /// `intercept_scaling ×` the bias feature's weight, per class.
    pub intercepts: Vec<f32>,
    pub calibrator: Calibrator,
    /// Outer iterations each sub-problem took (a sub-problem per class; one for two
    /// classes; none for one).
    pub iterations: Vec<u32>,
}

/// Rows per task of the batch paths.
const CHUNK_ROWS: usize = 512;

impl LinearModel {
    /// Decision values of one sparse row into `out` (`n_classes` long). Column indices
    /// must be below `n_features`. A value past `f32`'s range (a numeric cell of 1e40,
    /// scaled) is held at `±f32::MAX`, and `∞ − ∞` at 0, so the probabilities made from
    /// these are always a distribution.
    #[inline]
    pub fn decision_row(&self, idx: &[u32], vals: &[f32], out: &mut [f32]) {
        let k = self.n_classes;
        out.copy_from_slice(&self.intercepts);
        for (&c, &v) in idx.iter().zip(vals) {
            let w = &self.weights[c as usize * k..(c as usize + 1) * k];
            for (o, &w) in out.iter_mut().zip(w) {
                *o += v * w;
            }
        }
        for o in out.iter_mut().filter(|o| !o.is_finite()) {
            *o = if o.is_nan() { 0.0 } else { o.signum() * f32::MAX };
        }
    }

    /// Class probabilities of one row into `out`; `scratch` holds its decision values.
    pub fn proba_row(&self, idx: &[u32], vals: &[f32], scratch: &mut [f32], out: &mut [f64]) {
        self.decision_row(idx, vals, scratch);
        self.calibrator.apply(scratch, out);
    }

    fn check_columns(&self, x: &Csr) -> Result<(), LinearError> {
        if x.n_cols != self.n_features {
            return Err(LinearError::Columns {
                found: x.n_cols,
                expected: self.n_features,
            });
        }
        Ok(())
    }

    /// Decision values of every row, row-major (`n_rows × n_classes`), parallel over
    /// chunks of rows.
    pub fn decision_matrix(&self, x: &Csr) -> Result<Vec<f32>, LinearError> {
        self.check_columns(x)?;
        let k = self.n_classes;
        let mut out = vec![0f32; x.n_rows * k];
        out.par_chunks_mut(CHUNK_ROWS * k.max(1))
            .enumerate()
            .for_each(|(chunk, block)| {
                for (r, row_out) in block.chunks_mut(k.max(1)).enumerate() {
                    let (idx, vals) = x.row(chunk * CHUNK_ROWS + r);
                    self.decision_row(idx, vals, row_out);
                }
            });
        Ok(out)
    }

    /// Most probable class and its probability for every row (ties to the lowest class),
    /// parallel over chunks of rows; identical to [`Self::proba_row`] row by row.
    pub fn predict(&self, x: &Csr) -> Result<Vec<(u32, f32)>, LinearError> {
        self.check_columns(x)?;
        let k = self.n_classes;
        let mut out = vec![(0u32, 0f32); x.n_rows];
        out.par_chunks_mut(CHUNK_ROWS)
            .enumerate()
            .for_each(|(chunk, block)| {
                let mut d = vec![0f32; k];
                let mut p = vec![0f64; k];
                for (r, o) in block.iter_mut().enumerate() {
                    let (idx, vals) = x.row(chunk * CHUNK_ROWS + r);
                    self.proba_row(idx, vals, &mut d, &mut p);
                    *o = crate::ml::forest::argmax(&p);
                }
            });
        Ok(out)
    }

    /// Probabilities of every row, row-major (`n_rows × n_classes`).
    pub fn predict_proba(&self, x: &Csr) -> Result<Vec<f64>, LinearError> {
        self.check_columns(x)?;
        let k = self.n_classes;
        let mut out = vec![0f64; x.n_rows * k];
        out.par_chunks_mut(CHUNK_ROWS * k.max(1))
            .enumerate()
            .for_each(|(chunk, block)| {
                let mut d = vec![0f32; k];
                for (r, p) in block.chunks_mut(k.max(1)).enumerate() {
                    let (idx, vals) = x.row(chunk * CHUNK_ROWS + r);
                    self.proba_row(idx, vals, &mut d, p);
                }
            });
        Ok(out)
    }
}
