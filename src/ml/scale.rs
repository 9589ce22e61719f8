//! Standardizing numeric columns, as scikit-learn's `StandardScaler`.

use serde::{Deserialize, Serialize};

/// The largest magnitude a numeric feature may have. A value past it is invalid, as
/// `inf` and `NaN` are (validation counts it, feature engineering fills it): squared
/// for the variance, `1e200` or `1.7e308` overflow to infinity and the fitted scaler
/// would standardize every value to NaN or 0. `1e100` squared is `1e200`, far from
/// overflowing for any number of rows.
pub const MAX_ABS: f64 = 1e100;

/// Whether `x` is a number the scaler can take: finite and within [`MAX_ABS`].
pub fn usable(x: f64) -> bool {
    x.is_finite() && x.abs() <= MAX_ABS
}

/// Per column mean and scale (population standard deviation; 1 where it is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl StandardScaler {
    /// Fit on columns (each a vector of the same length) of [`usable`] values.
    pub fn fit(columns: &[Vec<f64>]) -> Self {
        let mut mean = Vec::with_capacity(columns.len());
        let mut scale = Vec::with_capacity(columns.len());
        for col in columns {
            let n = col.len().max(1) as f64;
            let m = col.iter().sum::<f64>() / n;
            let var = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
            let sd = var.sqrt();
            mean.push(m);
            scale.push(if sd > 0.0 { sd } else { 1.0 });
        }
        StandardScaler { mean, scale }
    }

    pub fn transform_value(&self, column: usize, x: f64) -> f64 {
        (x - self.mean[column]) / self.scale[column]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_standard_scaler() {
        let s = StandardScaler::fit(&[vec![1.0, 2.0, 3.0, 4.0], vec![5.0, 5.0, 5.0, 5.0]]);
        assert_eq!(s.mean, [2.5, 5.0]);
        assert!((s.scale[0] - 1.118_033_988_749_895).abs() < 1e-12);
        assert_eq!(s.scale[1], 1.0, "a constant column keeps scale 1");
        assert!((s.transform_value(0, 4.0) - 1.341_640_786_499_874).abs() < 1e-12);
    }

    #[test]
    fn values_at_the_bound_keep_the_scaler_finite() {
        assert!(usable(MAX_ABS) && usable(-MAX_ABS) && usable(0.0));
        assert!(!usable(1e200) && !usable(-1.7e308) && !usable(f64::INFINITY) && !usable(f64::NAN));
        let mut col = vec![20.0; 3000];
        col[0] = MAX_ABS;
        col[1] = -MAX_ABS;
        let s = StandardScaler::fit(&[col]);
        assert!(
            s.mean[0].is_finite() && s.scale[0].is_finite() && s.scale[0] > 0.0,
            "{s:?}"
        );
        // What the bound rules out: past it the variance overflows.
        let mut col = vec![20.0; 3000];
        col[0] = 1e200;
        assert!(!StandardScaler::fit(&[col]).scale[0].is_finite());
    }
}
