//! linfa integration: the forest trains and predicts through linfa's `Fit` and
//! `PredictInplace` traits, on a sparse [`Csr`] matrix with `usize` class labels.

use super::{ForestConfig, ForestError, RandomForest, Target};
use crate::ml::sparse::Csr;
use linfa::dataset::{DatasetBase, Records};
use linfa::traits::{Fit, PredictInplace};
use ndarray::Array1;

impl Records for Csr {
    type Elem = f32;
    fn nsamples(&self) -> usize {
        self.n_rows
    }
    fn nfeatures(&self) -> usize {
        self.n_cols
    }
}

impl From<linfa::Error> for ForestError {
    fn from(e: linfa::Error) -> Self {
        ForestError::Config(e.to_string())
    }
}

impl Fit<Csr, Array1<usize>, ForestError> for ForestConfig {
    type Object = RandomForest;

    fn fit(&self, dataset: &DatasetBase<Csr, Array1<usize>>) -> Result<RandomForest, ForestError> {
        let labels: Vec<u32> = dataset.targets.iter().map(|&c| c as u32).collect();
        let n_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        RandomForest::fit(
            &dataset.records,
            &Target {
                name: "linfa",
                labels: &labels,
                n_classes,
            },
            self,
        )
    }
}

impl PredictInplace<Csr, Array1<usize>> for RandomForest {
    fn predict_inplace(&self, x: &Csr, y: &mut Array1<usize>) {
        assert_eq!(y.len(), x.n_rows, "the target array must have one entry per row");
        for (out, (class, _)) in y.iter_mut().zip(self.predict(x)) {
            *out = class as usize;
        }
    }

    fn default_target(&self, x: &Csr) -> Array1<usize> {
        Array1::zeros(x.n_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_and_predicts_through_linfa_traits() {
        let (x, y) = super::super::tests_toy(150);
        let targets = Array1::from_iter(y.iter().map(|&c| c as usize));
        let dataset = DatasetBase::new(x.clone(), targets.clone());
        let config = ForestConfig {
            n_trees: 10,
            ..ForestConfig::default()
        };
        let forest = config.fit(&dataset).unwrap();
        let mut predicted = forest.default_target(&x);
        forest.predict_inplace(&x, &mut predicted);
        assert_eq!(predicted, targets);
    }
}
