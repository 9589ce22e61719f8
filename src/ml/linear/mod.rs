//! L2-regularized linear classifiers on the sparse matrix, by dual coordinate descent
//! as liblinear solves them: the L2-loss SVM (Hsieh, Chang, Lin, Keerthi &
//! Sundararajan, ICML 2008) and logistic regression (Yu, Huang & Lin, Machine Learning
//! 2011), one-vs-rest over classes, with a bias feature and scikit-learn's balanced
//! class weights.
//!
//! * [`hyperparams`]: the settings and their bounds;
//! * `solver`: the two dual coordinate-descent solvers for one binary problem;
//! * [`algorithm`]: one-vs-rest training, classes in parallel, and the calibrator's
//!   out-of-fold decision values;
//! * [`model`]: the fitted model, its decision values and probabilities.

pub mod algorithm;
pub mod hyperparams;
pub mod model;
mod solver;

pub use algorithm::{fit, fit_until};
pub use hyperparams::{Calibration, ClassWeight, LinearConfig, Loss};
pub use model::LinearModel;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinearError {
    #[error("cannot train on an empty table")]
    Empty,
    #[error("{labels} labels for {rows} rows")]
    Length { rows: usize, labels: usize },
    #[error("a target needs at least one class")]
    NoClasses,
    #[error("label {label} is out of range for {n_classes} classes")]
    Label { label: u32, n_classes: usize },
    #[error("no labelled row to train on")]
    NoLabels,
    #[error("invalid linear-learner settings: {0}")]
    Config(String),
    #[error(
        "calibration with {folds} folds needs at least {} labelled rows, and there are {rows}; lower \
         calibration_folds or label more rows", 2 * folds
    )]
    TooFewForCalibration { rows: usize, folds: usize },
    #[error("the matrix names column {column}, but it has {n_cols} columns")]
    Column { column: u32, n_cols: usize },
    #[error("the matrix has {found} columns; the model was trained on {expected}")]
    Columns { found: usize, expected: usize },
    #[error("stopped before every sub-problem was solved (cancelled)")]
    Cancelled,
}

#[cfg(test)]
mod tests;
