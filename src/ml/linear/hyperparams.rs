//! The linear learners' settings: what to minimize, how hard to regularize, when to stop,
//! how to weigh classes, and how decision values become probabilities.

use super::LinearError;
use serde::{Deserialize, Serialize};

/// The loss of each one-vs-rest sub-problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// L2-loss SVM (`max(0, 1 − y·w·x)²`), liblinear's `L2R_L2LOSS_SVC_DUAL`: what
    /// scikit-learn's `LinearSVC` fits by default.
    #[default]
    SquaredHinge,
    /// Logistic regression, liblinear's `L2R_LR_DUAL`.
    Logistic,
}

/// Per-class weights on the cost `C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every row costs `C`.
    None,
    /// scikit-learn's `"balanced"`: class k weighs `n / (K · n_k)` over the labelled rows,
    /// applied as its liblinear wrapper does (see [`super::algorithm`]).
    #[default]
    Balanced,
}

/// How decision values become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// `own` for the logistic loss, `temperature` for the squared hinge (the measured
    /// choice: see the README's linear learners section).
    #[default]
    Auto,
    /// Logistic regression's own one-vs-rest sigmoids, normalized to sum to 1 (as
    /// scikit-learn's one-vs-rest `predict_proba`). Only for `loss = "logistic"`.
    Own,
    /// A sigmoid per class fitted on out-of-fold decision values (Platt), normalized.
    Platt,
    /// One softmax temperature per target fitted on out-of-fold decision values.
    Temperature,
}

/// Linear-learner settings; defaults are scikit-learn's `LinearSVC(C=1.0,
/// class_weight="balanced")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearConfig {
    #[serde(default)]
    pub loss: Loss,
    /// Cost of a margin violation: larger fits the training rows harder.
    #[serde(default = "one")]
    pub c: f64,
    /// Stopping tolerance on the projected gradient (liblinear's `eps`).
    #[serde(default = "tol")]
    pub tol: f64,
    /// Outer iterations (passes over the active rows) per sub-problem.
    #[serde(default = "max_iter")]
    pub max_iter: usize,
    #[serde(default)]
    pub class_weight: ClassWeight,
    /// The constant of the extra bias feature (regularized, as in liblinear).
    #[serde(default = "one")]
    pub intercept_scaling: f64,
    /// Seeds each class's coordinate order and the calibration folds.
    #[serde(default = "seed")]
    pub seed: u64,
    #[serde(default)]
    pub calibration: Calibration,
    /// Folds for the out-of-fold decision values a calibrator is fitted on. 2, the
    /// cheapest: on the 20,000-row inventory, 2 folds calibrated as well as 3 (test ECE
    /// 0.0186 against 0.0189, Brier 0.0670 against 0.0675) at two thirds of the cost.
    #[serde(default = "folds")]
    pub calibration_folds: usize,
    /// How many of the folds are held out in turn (1: one fold is scored by
    /// sub-problems solved on the others; `calibration_folds`: every row is scored, as
    /// in cross-validation). One temperature needs far fewer rows than a fold holds.
    #[serde(default = "one_fold")]
    pub held_out_folds: usize,
}

fn one() -> f64 {
    1.0
}
fn tol() -> f64 {
    1e-4
}
fn max_iter() -> usize {
    1000
}
fn seed() -> u64 {
    42
}
fn folds() -> usize {
    2
}
fn one_fold() -> usize {
    1
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            loss: Loss::default(),
            c: one(),
            tol: tol(),
            max_iter: max_iter(),
            class_weight: ClassWeight::default(),
            intercept_scaling: one(),
            seed: seed(),
            calibration: Calibration::default(),
            calibration_folds: folds(),
            held_out_folds: one_fold(),
        }
    }
}

/// Largest `c`: past it the problem is unregularized in all but name and the dual
/// solver's steps lose precision.
pub const MAX_C: f64 = 1e6;
/// Largest `max_iter` (liblinear's default is 1,000).
pub const MAX_ITER: usize = 100_000;
/// Largest `intercept_scaling`.
pub const MAX_INTERCEPT_SCALING: f64 = 1e6;
/// Calibration folds: at least 2 (one to fit on, one to hold out), at most 10.
pub const MIN_FOLDS: usize = 2;
pub const MAX_FOLDS: usize = 10;

impl LinearConfig {
    /// Every number within its bounds, and a calibration the loss can use.
    pub fn check(&self) -> Result<(), LinearError> {
        let bad = |m: String| Err(LinearError::Config(m));
        if !(self.c.is_finite() && self.c > 0.0 && self.c <= MAX_C) {
            return bad(format!("c = {}: must be finite, > 0 and <= {MAX_C:e}", self.c));
        }
        if !(self.tol.is_finite() && self.tol > 0.0 && self.tol <= 1.0) {
            return bad(format!("tol = {}: must be > 0 and <= 1", self.tol));
        }
        if !(1..=MAX_ITER).contains(&self.max_iter) {
            return bad(format!(
                "max_iter = {}: must be within 1..={MAX_ITER}",
                self.max_iter
            ));
        }
        let s = self.intercept_scaling;
        if !(s.is_finite() && s > 0.0 && s <= MAX_INTERCEPT_SCALING) {
            return bad(format!(
                "intercept_scaling = {s}: must be finite, > 0 and <= {MAX_INTERCEPT_SCALING:e}"
            ));
        }
        if !(MIN_FOLDS..=MAX_FOLDS).contains(&self.calibration_folds) {
            return bad(format!(
                "calibration_folds = {}: must be within {MIN_FOLDS}..={MAX_FOLDS}",
                self.calibration_folds
            ));
        }
        if !(1..=self.calibration_folds).contains(&self.held_out_folds) {
            return bad(format!(
                "held_out_folds = {}: must be within 1..=calibration_folds ({})",
                self.held_out_folds, self.calibration_folds
            ));
        }
        if self.calibration == Calibration::Own && self.loss != Loss::Logistic {
            return bad(
                "calibration = \"own\" needs loss = \"logistic\" (a squared-hinge SVM has no probabilities of \
                 its own): use \"platt\" or \"temperature\""
                    .into(),
            );
        }
        Ok(())
    }

    /// The calibration `auto` stands for with this loss.
    pub fn resolved_calibration(&self) -> Calibration {
        match (self.calibration, self.loss) {
            (Calibration::Auto, Loss::Logistic) => Calibration::Own,
            (Calibration::Auto, Loss::SquaredHinge) => Calibration::Temperature,
            (other, _) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_linear_svc_and_every_bound_is_checked() {
        let d = LinearConfig::default();
        assert_eq!(
            (d.loss, d.c, d.tol, d.max_iter),
            (Loss::SquaredHinge, 1.0, 1e-4, 1000)
        );
        assert_eq!(d.class_weight, ClassWeight::Balanced);
        d.check().unwrap();
        let parsed: LinearConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, d, "serde defaults are Default's");
        assert!(
            toml::from_str::<LinearConfig>("cee = 1.0").is_err(),
            "unknown fields refused"
        );
        let cases: [(LinearConfig, &str); 9] = [
            (LinearConfig { c: 0.0, ..d.clone() }, "c = 0"),
            (
                LinearConfig {
                    c: f64::NAN,
                    ..d.clone()
                },
                "c = NaN",
            ),
            (LinearConfig { c: 1e7, ..d.clone() }, "<= 1e6"),
            (
                LinearConfig {
                    tol: 0.0,
                    ..d.clone()
                },
                "tol",
            ),
            (
                LinearConfig {
                    max_iter: 0,
                    ..d.clone()
                },
                "1..=100000",
            ),
            (
                LinearConfig {
                    max_iter: 100_001,
                    ..d.clone()
                },
                "1..=100000",
            ),
            (
                LinearConfig {
                    intercept_scaling: f64::INFINITY,
                    ..d.clone()
                },
                "intercept_scaling",
            ),
            (
                LinearConfig {
                    calibration_folds: 1,
                    ..d.clone()
                },
                "2..=10",
            ),
            (
                LinearConfig {
                    calibration: Calibration::Own,
                    ..d.clone()
                },
                "needs loss",
            ),
        ];
        for (cfg, want) in cases {
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should contain {want}");
        }
        let lr = LinearConfig {
            loss: Loss::Logistic,
            ..d.clone()
        };
        assert_eq!(lr.resolved_calibration(), Calibration::Own);
        assert_eq!(d.resolved_calibration(), Calibration::Temperature);
    }
}
