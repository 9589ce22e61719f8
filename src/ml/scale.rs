//! Standardizing numeric columns, as scikit-learn's `StandardScaler`.

use serde::{Deserialize, Serialize};

/// Per column mean and scale (population standard deviation; 1 where it is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl StandardScaler {
    /// Fit on columns (each a vector of the same length).
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
}
