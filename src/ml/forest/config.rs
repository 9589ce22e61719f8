//! Forest settings: the learner, the per-split feature count, class weights, and the
//! bounds every size-like setting is checked against.

use super::ForestError;
use serde::{Deserialize, Serialize};

/// Which algorithm grows each tree of the forest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    /// This module's sparse-aware trees: `max_features` drawn per split, as scikit-learn.
    #[default]
    Sparse,
    /// linfa-trees' `DecisionTree`, fitted on each tree's bootstrap sample made dense.
    /// It tries every feature at every split (linfa-trees has no per-split sampling)
    /// and limits leaves by weight, so `max_features` and `min_samples_leaf` do not
    /// apply. Kept for comparison: it is orders of magnitude slower on TF-IDF input.
    LinfaTree,
}

/// How many features to try per split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    Sqrt,
    Log2,
    All,
    Count(usize),
    Fraction(f64),
}

impl MaxFeatures {
    /// As a pipeline writes it: `"sqrt"`, `{ count = 100 }`.
    pub fn text(&self) -> String {
        match self {
            MaxFeatures::Sqrt => "\"sqrt\"".into(),
            MaxFeatures::Log2 => "\"log2\"".into(),
            MaxFeatures::All => "\"all\"".into(),
            MaxFeatures::Count(c) => format!("{{ count = {c} }}"),
            MaxFeatures::Fraction(f) => format!("{{ fraction = {f} }}"),
        }
    }
}

impl MaxFeatures {
    pub fn resolve(self, n_features: usize) -> usize {
        let n = n_features as f64;
        let k = match self {
            MaxFeatures::Sqrt => n.sqrt() as usize,
            MaxFeatures::Log2 => n.log2() as usize,
            MaxFeatures::All => n_features,
            MaxFeatures::Count(c) => c,
            MaxFeatures::Fraction(f) => (f * n) as usize,
        };
        k.clamp(1, n_features.max(1))
    }
}

/// Per-class weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every sample weighs 1 (times its bootstrap count).
    None,
    /// `n / (k · n_c)` on the whole training set.
    Balanced,
    /// `n / (k · n_c)` on each tree's bootstrap sample.
    BalancedSubsample,
}

/// Forest settings; the defaults are the Python NexusML model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestConfig {
    #[serde(default = "trees")]
    pub n_trees: usize,
    /// Unset: `sqrt` for the sparse learner; linfa_tree takes none (it tries every
    /// feature), so a value given with it is refused rather than ignored.
    #[serde(default)]
    pub max_features: Option<MaxFeatures>,
    #[serde(default = "two")]
    pub min_samples_split: usize,
    #[serde(default = "one")]
    pub min_samples_leaf: usize,
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default = "yes")]
    pub bootstrap: bool,
    #[serde(default = "balanced_subsample")]
    pub class_weight: ClassWeight,
    #[serde(default = "seed")]
    pub seed: u64,
    /// Last, so model files written before it existed still read (as `sparse`).
    #[serde(default)]
    pub learner: Learner,
}

fn trees() -> usize {
    200
}
fn two() -> usize {
    2
}
fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn balanced_subsample() -> ClassWeight {
    ClassWeight::BalancedSubsample
}
fn seed() -> u64 {
    42
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            n_trees: 200,
            max_features: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_depth: None,
            bootstrap: true,
            class_weight: ClassWeight::BalancedSubsample,
            seed: 42,
            learner: Learner::Sparse,
        }
    }
}

/// Most trees per forest. Past a few hundred trees a forest's accuracy stops moving,
/// and every tree costs memory in the model file (about 70 KB on the bundled inventory).
pub const MAX_TREES: usize = 10_000;
/// Deepest `max_depth`: deeper than any tree a table we can read grows (the deepest
/// full-depth trees of the 20,000-row inventory reach about 500 levels).
pub const MAX_DEPTH: usize = 100_000;
/// Largest `min_samples_split` / `min_samples_leaf`: more rows than any table we read.
pub const MAX_MIN_SAMPLES: usize = 100_000_000;
/// Largest `max_features` count: more than any vocabulary (`text.tfidf` bounds
/// `max_features` at a million terms).
pub const MAX_FEATURE_COUNT: usize = 10_000_000;

impl ForestConfig {
    pub fn check(&self) -> Result<(), ForestError> {
        if self.n_trees == 0 {
            return Err(ForestError::Config("n_trees must be at least 1".into()));
        }
        if self.n_trees > MAX_TREES {
            return Err(ForestError::Config(format!(
                "n_trees = {} is more than the {MAX_TREES} trees a forest may have",
                self.n_trees
            )));
        }
        if let Some(d) = self.max_depth.filter(|&d| d > MAX_DEPTH) {
            return Err(ForestError::Config(format!(
                "max_depth = {d} is past the bound of {MAX_DEPTH}; leave it unset for full depth"
            )));
        }
        for (name, v) in [
            ("min_samples_split", self.min_samples_split),
            ("min_samples_leaf", self.min_samples_leaf),
        ] {
            if v > MAX_MIN_SAMPLES {
                return Err(ForestError::Config(format!(
                    "{name} = {v} is past the bound of {MAX_MIN_SAMPLES}"
                )));
            }
        }
        if let Some(MaxFeatures::Count(c)) = self.max_features {
            if c == 0 || c > MAX_FEATURE_COUNT {
                return Err(ForestError::Config(format!(
                    "max_features = {c} must be within 1..={MAX_FEATURE_COUNT}"
                )));
            }
        }
        if self.min_samples_split < 2 {
            return Err(ForestError::Config("min_samples_split must be at least 2".into()));
        }
        if self.min_samples_leaf < 1 {
            return Err(ForestError::Config("min_samples_leaf must be at least 1".into()));
        }
        if self.learner == Learner::LinfaTree {
            if let Some(m) = self.max_features {
                return Err(ForestError::Config(format!(
                    "learner \"linfa_tree\" tries every feature at each split, so max_features = {} would be \
                     ignored: leave max_features unset",
                    m.text()
                )));
            }
            if self.min_samples_leaf != 1 {
                return Err(ForestError::Config(
                    "learner \"linfa_tree\" has no min_samples_leaf (linfa-trees limits leaves by weight)"
                        .into(),
                ));
            }
        }
        if let Some(MaxFeatures::Fraction(f)) = self.max_features {
            if !(f > 0.0 && f <= 1.0) {
                return Err(ForestError::Config(format!(
                    "max_features fraction {f} must be in (0, 1]"
                )));
            }
        }
        Ok(())
    }
}
