//! Training: one-vs-rest sub-problems solved in parallel, then the calibrator fitted on
//! out-of-fold decision values.
//!
//! Class weights go in as scikit-learn's liblinear wrapper puts them
//! (`sklearn/svm/src/liblinear/linear.cpp`, `train`): with K > 2 classes, the
//! sub-problem of class k costs `C · weight_k` on its positive rows and the plain `C`
//! on every negative row (`train_one(…, weighted_C[i], param->C)`), whatever the
//! negative row's own class; with two classes there is one sub-problem, class 1
//! positive at `C · weight_1`, class 0 negative at `C · weight_0`.

use super::hyperparams::{Calibration, ClassWeight, LinearConfig, Loss};
use super::model::LinearModel;
use super::solver::{self, Packed, Rows, Solution};
use super::LinearError;
use crate::ml::calibration::{self, Calibrator};
use crate::ml::forest::UNLABELLED;
use crate::ml::rng::{derive_seed, Rng};
use crate::ml::sparse::Csr;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// One binary sub-problem: which class is positive, and the cost of a (negative,
/// positive) row.
struct SubProblem {
    positive: u32,
    cost: [f64; 2],
}

/// `n / (K · n_k)` per class over the labelled rows, K the classes present (absent
/// classes get 0: they have no row to weigh), as scikit-learn's `compute_class_weight`.
pub fn balanced_weights(labels: &[u32], n_classes: usize) -> Vec<f64> {
    let mut count = vec![0usize; n_classes];
    for &l in labels.iter().filter(|&&l| l != UNLABELLED) {
        count[l as usize] += 1;
    }
    let n: usize = count.iter().sum();
    let present = count.iter().filter(|&&c| c > 0).count().max(1);
    count
        .iter()
        .map(|&c| {
            if c > 0 {
                n as f64 / (present * c) as f64
            } else {
                0.0
            }
        })
        .collect()
}

fn sub_problems(labels: &[u32], n_classes: usize, config: &LinearConfig) -> Vec<SubProblem> {
    let weight = match config.class_weight {
        ClassWeight::None => vec![1.0; n_classes],
        ClassWeight::Balanced => balanced_weights(labels, n_classes),
    };
    let c = config.c;
    match n_classes {
        1 => Vec::new(),
        2 => vec![SubProblem {
            positive: 1,
            cost: [c * weight[0], c * weight[1]],
        }],
        k => (0..k)
            .map(|class| SubProblem {
                positive: class as u32,
                cost: [c, c * weight[class]],
            })
            .collect(),
    }
}

/// The seed of one class's coordinate order: from (seed, class index) only, so the
/// model is the same whatever runs in parallel.
fn class_seed(seed: u64, class: u32, fold: Option<usize>) -> u64 {
    let class = u64::from(class).to_le_bytes();
    match fold {
        None => derive_seed(seed, &[b"linear", &class]),
        Some(f) => derive_seed(seed, &[b"linear-fold", &class, &(f as u64).to_le_bytes()]),
    }
}

/// Train a one-vs-rest linear classifier on the rows of `x` whose label is not
/// [`UNLABELLED`]. Sub-problems run in parallel on the current rayon pool; each is
/// sequential and seeded from (seed, class), so the model is identical for any number of
/// threads.
pub fn fit(
    x: &Csr,
    labels: &[u32],
    n_classes: usize,
    config: &LinearConfig,
) -> Result<LinearModel, LinearError> {
    fit_until(x, labels, n_classes, config, &AtomicBool::new(false))
}

/// [`fit`], stopping with [`LinearError::Cancelled`] before the next sub-problem (of the
/// model or of a calibration fold) once `stop` is set.
pub fn fit_until(
    x: &Csr,
    labels: &[u32],
    n_classes: usize,
    config: &LinearConfig,
    stop: &AtomicBool,
) -> Result<LinearModel, LinearError> {
    config.check()?;
    if x.n_rows == 0 {
        return Err(LinearError::Empty);
    }
    if labels.len() != x.n_rows {
        return Err(LinearError::Length {
            rows: x.n_rows,
            labels: labels.len(),
        });
    }
    if n_classes == 0 {
        return Err(LinearError::NoClasses);
    }
    if let Some(&bad) = labels
        .iter()
        .find(|&&l| l != UNLABELLED && l as usize >= n_classes)
    {
        return Err(LinearError::Label {
            label: bad,
            n_classes,
        });
    }
    if let Some(&bad) = x.indices.iter().find(|&&c| c as usize >= x.n_cols) {
        return Err(LinearError::Column {
            column: bad,
            n_cols: x.n_cols,
        });
    }
    let rows: Vec<u32> = (0..x.n_rows as u32)
        .filter(|&i| labels[i as usize] != UNLABELLED)
        .collect();
    if rows.is_empty() {
        return Err(LinearError::NoLabels);
    }
    let y: Vec<u32> = rows.iter().map(|&i| labels[i as usize]).collect();
    let bias = config.intercept_scaling;
    let sq_norms: Vec<f64> = rows
        .iter()
        .map(|&i| {
            x.row(i as usize)
                .1
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                + bias * bias
        })
        .collect();
    let packed = Packed::new(x, &rows);
    let problem = Rows {
        packed: &packed,
        sq_norms: &sq_norms,
        bias,
    };
    let subs = sub_problems(labels, n_classes, config);
    let started = std::time::Instant::now();
    let solutions: Vec<Solution> = subs
        .par_iter()
        .map(|sp| {
            if stop.load(Ordering::Relaxed) {
                return Err(LinearError::Cancelled);
            }
            let signs = signs(&y, sp.positive);
            let mut rng = Rng::new(class_seed(config.seed, sp.positive, None));
            Ok(solve(&problem, &signs, sp, config, &mut rng, None))
        })
        .collect::<Result<_, _>>()?;
    let unconverged = solutions
        .iter()
        .filter(|s| s.iterations as usize >= config.max_iter)
        .count();
    if unconverged > 0 {
        tracing::warn!(
            "{unconverged} of {} linear sub-problems stopped at max_iter = {} before reaching tol = {}",
            solutions.len(),
            config.max_iter,
            config.tol
        );
    }
    let solved = started.elapsed();
    let (weights, intercepts) = assemble(&solutions, n_classes, x.n_cols, bias);
    let mut model = LinearModel {
        loss: config.loss,
        n_classes,
        n_features: x.n_cols,
        weights,
        intercepts,
        calibrator: Calibrator::Sigmoid,
        iterations: solutions.iter().map(|s| s.iterations).collect(),
    };
    model.calibrator = match config.resolved_calibration() {
        Calibration::Own | Calibration::Auto => Calibrator::Sigmoid,
        method if n_classes == 1 => {
            let _ = method; // one class: certain, whatever the method
            Calibrator::Temperature { t: 1.0 }
        }
        method => {
            let (held, oof) = out_of_fold(&problem, &y, &subs, &solutions, n_classes, config, stop)?;
            let held_y: Vec<u32> = held.iter().map(|&i| y[i]).collect();
            match method {
                Calibration::Platt => calibration::fit_platt(&oof, &held_y, n_classes),
                _ => calibration::fit_temperature(&oof, &held_y, n_classes),
            }
        }
    };
    tracing::debug!(
        "linear fit: {} sub-problems over {} rows in {:.3} s, calibration {:?} in {:.3} s",
        subs.len(),
        rows.len(),
        solved.as_secs_f64(),
        config.resolved_calibration(),
        (started.elapsed() - solved).as_secs_f64()
    );
    Ok(model)
}

fn signs(y: &[u32], positive: u32) -> Vec<i8> {
    y.iter().map(|&c| if c == positive { 1 } else { -1 }).collect()
}

fn solve(
    problem: &Rows<'_>,
    signs: &[i8],
    sp: &SubProblem,
    config: &LinearConfig,
    rng: &mut Rng,
    init: Option<&[f64]>,
) -> Solution {
    match config.loss {
        Loss::SquaredHinge => {
            solver::l2loss_svm(problem, signs, sp.cost, config.tol, config.max_iter, rng, init)
        }
        Loss::Logistic => solver::logistic(problem, signs, sp.cost, config.tol, config.max_iter, rng),
    }
}

/// Feature-major `f32` weights and the intercepts from the sub-problems' solutions.
fn assemble(solutions: &[Solution], n_classes: usize, n_features: usize, bias: f64) -> (Vec<f32>, Vec<f32>) {
    let k = n_classes;
    let mut weights = vec![0f32; n_features * k];
    let mut intercepts = vec![0f32; k];
    // Two classes: one weight vector w for class 1; class 0 gets −w, so the argmax of the
    // two decision values is the sign of w·x, and their sigmoids already sum to 1.
    let columns: Vec<(usize, &Solution, f64)> = match k {
        1 => Vec::new(),
        2 => vec![(1, &solutions[0], 1.0), (0, &solutions[0], -1.0)],
        _ => solutions.iter().enumerate().map(|(c, s)| (c, s, 1.0)).collect(),
    };
    for (c, s, sign) in columns {
        for f in 0..n_features {
            weights[f * k + c] = (sign * s.w[f]) as f32;
        }
        intercepts[c] = (sign * s.w[n_features] * bias) as f32;
    }
    (weights, intercepts)
}

/// The stopping tolerance of the calibration folds' sub-problems (or `tol`, when
/// looser). The calibrator needs the decision values' scale, not the final model's
/// precision: on the 20,000-row inventory, fold tolerances of 1e-4, 1e-2 and 1e-1 fit
/// the same temperature (0.177) and the same test ECE and Brier score to 4 decimals,
/// and 1e-1 halved the calibration's cost.
const FOLD_TOL: f64 = 1e-1;

/// Out-of-fold decision values: the rows are dealt into `calibration_folds` folds at
/// random, and each of the first `held_out_folds` folds is scored by the sub-problems
/// solved on the other folds. Each of those starts from the full problem's dual solution
/// restricted to its rows (a warm start: most of the dual is already right, so a fold
/// costs a fraction of a cold fit). Returns the held-out rows (problem row indices, in
/// order) and their decision values (`held × n_classes`, row-major).
fn out_of_fold(
    problem: &Rows<'_>,
    y: &[u32],
    subs: &[SubProblem],
    full: &[Solution],
    n_classes: usize,
    config: &LinearConfig,
    stop: &AtomicBool,
) -> Result<(Vec<usize>, Vec<f32>), LinearError> {
    let m = y.len();
    let folds = config.calibration_folds;
    if m < 2 * folds {
        return Err(LinearError::TooFewForCalibration { rows: m, folds });
    }
    let mut order: Vec<usize> = (0..m).collect();
    Rng::new(derive_seed(config.seed, &[b"calibration-folds"])).shuffle(&mut order);
    let mut fold_of = vec![0usize; m];
    for (pos, &i) in order.iter().enumerate() {
        fold_of[i] = pos % folds;
    }
    let scored_folds = config.held_out_folds.clamp(1, folds);
    let held: Vec<usize> = (0..m).filter(|&i| fold_of[i] < scored_folds).collect();
    // Each held-out row's place in `held`.
    let mut slot = vec![usize::MAX; m];
    for (k, &i) in held.iter().enumerate() {
        slot[i] = k;
    }
    // Each fold's training rows, packed once for all its sub-problems.
    let trains: Vec<(Vec<usize>, Packed, Vec<f64>)> = (0..scored_folds)
        .map(|f| {
            let train: Vec<usize> = (0..m).filter(|&i| fold_of[i] != f).collect();
            let packed = problem.packed.select(&train);
            let sq: Vec<f64> = train.iter().map(|&i| problem.sq_norms[i]).collect();
            (train, packed, sq)
        })
        .collect();
    let jobs: Vec<(usize, usize)> = (0..scored_folds)
        .flat_map(|f| (0..subs.len()).map(move |s| (f, s)))
        .collect();
    // Per job: the held-out rows' decision values of that sub-problem.
    let scored: Vec<Vec<f64>> = jobs
        .par_iter()
        .map(|&(f, s)| {
            if stop.load(Ordering::Relaxed) {
                return Err(LinearError::Cancelled);
            }
            let (train, packed, sq) = &trains[f];
            let sub = Rows {
                packed,
                sq_norms: sq,
                bias: problem.bias,
            };
            let train_y: Vec<u32> = train.iter().map(|&i| y[i]).collect();
            let signs = signs(&train_y, subs[s].positive);
            let init: Vec<f64> = train.iter().map(|&i| full[s].alpha[i]).collect();
            let mut rng = Rng::new(class_seed(config.seed, subs[s].positive, Some(f)));
            let loose = LinearConfig {
                tol: config.tol.max(FOLD_TOL),
                ..config.clone()
            };
            let sol = solve(&sub, &signs, &subs[s], &loose, &mut rng, Some(&init));
            Ok((0..m)
                .filter(|&i| fold_of[i] == f)
                .map(|i| problem.dot(&sol.w, i))
                .collect())
        })
        .collect::<Result<_, LinearError>>()?;
    let mut oof = vec![0f32; held.len() * n_classes];
    for (&(f, s), values) in jobs.iter().zip(&scored) {
        let rows = (0..m).filter(|&i| fold_of[i] == f);
        for (i, &v) in rows.zip(values) {
            let k = slot[i];
            if n_classes == 2 {
                oof[k * 2 + 1] = v as f32;
                oof[k * 2] = -v as f32;
            } else {
                oof[k * n_classes + subs[s].positive as usize] = v as f32;
            }
        }
    }
    Ok((held, oof))
}
