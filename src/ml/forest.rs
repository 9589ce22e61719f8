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

use super::rng::{derive_seed, Rng};
use super::sparse::{Csc, Csr};
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
    #[serde(default = "sqrt")]
    pub max_features: MaxFeatures,
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
fn sqrt() -> MaxFeatures {
    MaxFeatures::Sqrt
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
            max_features: MaxFeatures::Sqrt,
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

impl ForestConfig {
    pub fn check(&self) -> Result<(), ForestError> {
        if self.n_trees == 0 {
            return Err(ForestError::Config("n_trees must be at least 1".into()));
        }
        if self.min_samples_split < 2 {
            return Err(ForestError::Config("min_samples_split must be at least 2".into()));
        }
        if self.min_samples_leaf < 1 {
            return Err(ForestError::Config("min_samples_leaf must be at least 1".into()));
        }
        if self.learner == Learner::LinfaTree {
            if self.max_features != MaxFeatures::Sqrt {
                return Err(ForestError::Config(
                    "learner \"linfa_tree\" tries every feature at each split: leave max_features unset"
                        .into(),
                ));
            }
            if self.min_samples_leaf != 1 {
                return Err(ForestError::Config(
                    "learner \"linfa_tree\" has no min_samples_leaf (linfa-trees limits leaves by weight)"
                        .into(),
                ));
            }
        }
        if let MaxFeatures::Fraction(f) = self.max_features {
            if !(f > 0.0 && f <= 1.0) {
                return Err(ForestError::Config(format!(
                    "max_features fraction {f} must be in (0, 1]"
                )));
            }
        }
        Ok(())
    }
}

const LEAF: u32 = u32::MAX;

/// A tree node; for a leaf, `left..right` spans its entries in the leaf tables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    pub threshold: f32,
    pub left: u32,
    pub right: u32,
}

/// One decision tree with sparse leaf distributions (most leaves are pure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub leaf_class: Vec<u32>,
    pub leaf_prob: Vec<f32>,
}

impl Tree {
    /// The leaf reached by a densified row: its entries in the leaf tables.
    #[inline]
    fn leaf(&self, dense: &[f32]) -> (usize, usize) {
        let n = self.nodes[self.leaf_node(dense)];
        (n.left as usize, n.right as usize)
    }

    /// The index of the leaf node a densified row reaches.
    #[inline]
    fn leaf_node(&self, dense: &[f32]) -> usize {
        let mut i = 0usize;
        loop {
            let n = self.nodes[i];
            if n.feature == LEAF {
                return i;
            }
            i = if dense[n.feature as usize] <= n.threshold {
                n.left
            } else {
                n.right
            } as usize;
        }
    }

    /// Add a leaf to a row's tally. Most leaves of a full-depth tree are pure: they count
    /// as a vote (an integer, so cheap to keep per row and exact in any order); the
    /// others add their class fractions to `impure`, tree by tree.
    #[inline]
    fn tally(&self, leaf: std::ops::Range<usize>, votes: &mut [u32], impure: &mut [f64]) {
        if leaf.len() == 1 && self.leaf_prob[leaf.start] == 1.0 {
            votes[self.leaf_class[leaf.start] as usize] += 1;
        } else {
            for j in leaf {
                impure[self.leaf_class[j] as usize] += self.leaf_prob[j] as f64;
            }
        }
    }

    pub fn depth(&self) -> usize {
        fn walk(t: &Tree, i: usize) -> usize {
            let n = t.nodes[i];
            if n.feature == LEAF {
                1
            } else {
                1 + walk(t, n.left as usize).max(walk(t, n.right as usize))
            }
        }
        walk(self, 0)
    }
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

    /// Most probable class and its probability for every row (ties go to the lowest
    /// class index, as numpy's argmax).
    ///
    /// Rows go through each tree as sets (bitmasks over blocks of rows), not one by
    /// one. TF-IDF rows are almost all zeros, so at most nodes every row of a set takes
    /// the branch a zero takes and the node is passed once for the whole set; a set
    /// splits only at nodes testing a term some of its rows contain. A tree's deep chains
    /// of "does the row contain term X?" nodes are walked once per block instead of once
    /// per row. Each thread takes a chunk of blocks and sends all of them through one
    /// tree before the next, so the tree stays in cache.
    ///
    /// Each row still meets the trees in order and sums the same leaves as
    /// [`Self::predict_proba_row`], so the probabilities are identical to it, whatever
    /// the chunking or the number of threads.
    pub fn predict(&self, x: &Csr) -> Vec<(u32, f32)> {
        if x.n_rows == 0 {
            return Vec::new();
        }
        // One chunk per thread, unless that holds more rows than the cache comfortably does.
        let n_chunks = rayon::current_num_threads().max(x.n_rows.div_ceil(CHUNK_ROWS));
        let chunk_rows = x.n_rows.div_ceil(n_chunks).next_multiple_of(BLOCK_ROWS);
        let starts: Vec<usize> = (0..x.n_rows).step_by(chunk_rows).collect();
        let per_chunk: Vec<Vec<(u32, f32)>> = starts
            .par_iter()
            .map(|&start| {
                let rows = chunk_rows.min(x.n_rows - start);
                let chunk = RowChunk::load(x, start, rows, self.n_features);
                let k = self.n_classes;
                let mut votes = vec![0u32; rows * k];
                let mut impure = vec![0f64; rows * k];
                let mut stack = Vec::new();
                for tree in &self.trees {
                    for b in 0..chunk.n_blocks {
                        chunk.route(tree, b, &mut stack, |leaf, r| {
                            let at = r * k..(r + 1) * k;
                            tree.tally(leaf, &mut votes[at.clone()], &mut impure[at]);
                        });
                    }
                }
                votes
                    .chunks(k)
                    .zip(impure.chunks_mut(k))
                    .map(|(votes, out)| {
                        self.mean(votes, out);
                        argmax(out)
                    })
                    .collect()
            })
            .collect();
        per_chunk.into_iter().flatten().collect()
    }
}

/// Words of row bits per block in batch prediction: 1,024 rows. On the 20,000-row
/// inventory's model, 256-, 512- and 1,024-row blocks measured within noise of each
/// other; wider blocks share more of each tree's walk.
const BLOCK_WORDS: usize = 16;
const BLOCK_ROWS: usize = 64 * BLOCK_WORDS;
/// Rows a thread routes together through each tree.
const CHUNK_ROWS: usize = 4096;
type RowSet = [u64; BLOCK_WORDS];
const NO_SLOT: u32 = u32::MAX;

/// A chunk of rows indexed by column: for every column some row of the chunk has, and
/// for each block of the chunk, the set of the block's rows having it and their values
/// in row order.
struct RowChunk {
    rows: usize,
    n_blocks: usize,
    /// Column → its slot, or `NO_SLOT` (every row of the chunk is zero there).
    slot_of: Vec<u32>,
    /// Per (slot, block), at `slot * n_blocks + block`.
    rows_with: Vec<RowSet>,
    starts: Vec<u32>,
    dense: Vec<bool>,
    values: Vec<f32>,
    /// Per cell, the smallest and largest value: most thresholds fall outside that
    /// range, and then the whole set goes one way without looking at single values.
    ranges: Vec<(f32, f32)>,
}

impl RowChunk {
    fn load(x: &Csr, start: usize, rows: usize, n_features: usize) -> Self {
        let mut slot_of = vec![NO_SLOT; n_features];
        let mut n_slots = 0u32;
        for r in start..start + rows {
            for &c in x.row(r).0 {
                if slot_of[c as usize] == NO_SLOT {
                    slot_of[c as usize] = n_slots;
                    n_slots += 1;
                }
            }
        }
        let n_blocks = rows.div_ceil(BLOCK_ROWS);
        let cells = n_slots as usize * n_blocks;
        let mut rows_with = vec![[0u64; BLOCK_WORDS]; cells];
        let mut counts = vec![0u32; cells + 1];
        for r in 0..rows {
            let (b, i) = (r / BLOCK_ROWS, r % BLOCK_ROWS);
            for &c in x.row(start + r).0 {
                let cell = slot_of[c as usize] as usize * n_blocks + b;
                rows_with[cell][i / 64] |= 1 << (i % 64);
                counts[cell] += 1;
            }
        }
        // Counts to starts. A cell that many of its block's rows have is stored densely
        // (a value per row of the block); the others hold their values in row order, so a
        // value's place is the rank of its row in the cell's set.
        let mut dense = vec![false; cells];
        let mut total = 0u32;
        for (cell, c) in counts.iter_mut().enumerate() {
            let mut n = *c;
            if cell < cells && n as usize * 8 >= BLOCK_ROWS {
                dense[cell] = true;
                n = BLOCK_ROWS as u32;
            }
            *c = total;
            total += n;
        }
        let starts = counts;
        let mut fill = starts.clone();
        let mut values = vec![0f32; total as usize];
        let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); cells];
        for r in 0..rows {
            let (b, i) = (r / BLOCK_ROWS, r % BLOCK_ROWS);
            let (idx, vals) = x.row(start + r);
            for (&c, &v) in idx.iter().zip(vals) {
                let cell = slot_of[c as usize] as usize * n_blocks + b;
                if dense[cell] {
                    values[starts[cell] as usize + i] = v;
                } else {
                    values[fill[cell] as usize] = v;
                    fill[cell] += 1;
                }
                let range = &mut ranges[cell];
                *range = (range.0.min(v), range.1.max(v));
            }
        }
        RowChunk {
            rows,
            n_blocks,
            slot_of,
            rows_with,
            starts,
            dense,
            values,
            ranges,
        }
    }

    /// The value of row `i` of a cell's block (the row is known to have one).
    #[inline]
    fn value(&self, cell: usize, i: usize) -> f32 {
        if self.dense[cell] {
            return self.values[self.starts[cell] as usize + i];
        }
        let set = &self.rows_with[cell];
        let (w, b) = (i / 64, i % 64);
        let mut rank = (set[w] & ((1u64 << b) - 1)).count_ones();
        for word in &set[..w] {
            rank += word.count_ones();
        }
        self.values[(self.starts[cell] + rank) as usize]
    }

    /// Send block `b` through `tree`, calling `at_leaf` with the leaf's entries and the
    /// chunk row of each row that reaches it.
    fn route(
        &self,
        tree: &Tree,
        b: usize,
        stack: &mut Vec<(u32, RowSet)>,
        mut at_leaf: impl FnMut(std::ops::Range<usize>, usize),
    ) {
        let first = b * BLOCK_ROWS;
        let mut all = [0u64; BLOCK_WORDS];
        for i in 0..BLOCK_ROWS.min(self.rows - first) {
            all[i / 64] |= 1 << (i % 64);
        }
        stack.push((0, all));
        while let Some((mut node, mut set)) = stack.pop() {
            loop {
                let n = tree.nodes[node as usize];
                if n.feature == LEAF {
                    for_each_row(&set, |i| at_leaf(n.left as usize..n.right as usize, first + i));
                    break;
                }
                // Where a zero goes: rows without the column follow it.
                let zero_left = 0.0 <= n.threshold;
                let (zero_side, other_side) = if zero_left {
                    (n.left, n.right)
                } else {
                    (n.right, n.left)
                };
                let slot = self.slot_of[n.feature as usize];
                if slot != NO_SLOT {
                    let cell = slot as usize * self.n_blocks + b;
                    let with = and(&set, &self.rows_with[cell]);
                    let (lo, hi) = self.ranges[cell];
                    let other = if (lo <= n.threshold) == (hi <= n.threshold) {
                        // All values of the cell are on one side of the threshold.
                        if (lo <= n.threshold) != zero_left {
                            with
                        } else {
                            [0; BLOCK_WORDS]
                        }
                    } else if self.dense[cell] {
                        // Compare the whole block at once (vectorizes), keep the set's rows.
                        let start = self.starts[cell] as usize;
                        let values = &self.values[start..start + BLOCK_ROWS];
                        std::array::from_fn(|w| {
                            if with[w] == 0 {
                                return 0;
                            }
                            let mut bits = 0u64;
                            for (j, &v) in values[w * 64..(w + 1) * 64].iter().enumerate() {
                                bits |= u64::from((v <= n.threshold) != zero_left) << j;
                            }
                            bits & with[w]
                        })
                    } else {
                        let mut other = [0u64; BLOCK_WORDS];
                        for_each_row(&with, |i| {
                            if (self.value(cell, i) <= n.threshold) != zero_left {
                                other[i / 64] |= 1 << (i % 64);
                            }
                        });
                        other
                    };
                    if !is_empty(&other) {
                        let stay = and_not(&set, &other);
                        if is_empty(&stay) {
                            node = other_side;
                            continue;
                        }
                        stack.push((other_side, other));
                        set = stay;
                    }
                }
                node = zero_side;
            }
        }
    }
}

/// No row in the set (an OR of the words: an array `==` would call memcmp).
#[inline]
fn is_empty(set: &RowSet) -> bool {
    set.iter().fold(0, |acc, w| acc | w) == 0
}

#[inline]
fn and(a: &RowSet, b: &RowSet) -> RowSet {
    std::array::from_fn(|i| a[i] & b[i])
}

#[inline]
fn and_not(a: &RowSet, b: &RowSet) -> RowSet {
    std::array::from_fn(|i| a[i] & !b[i])
}

#[inline]
fn for_each_row(set: &RowSet, mut f: impl FnMut(usize)) {
    for (w, &word) in set.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            f(w * 64 + bits.trailing_zeros() as usize);
            bits &= bits - 1;
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

struct Data<'a> {
    csr: &'a Csr,
    csc: &'a Csc,
    avg_row_nnz: f64,
    avg_col_nnz: f64,
}

/// Work waiting to be split.
struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    class_w: Vec<f64>,
}

struct Best {
    feature: u32,
    threshold: f32,
    proxy: f64,
}

/// Scratch shared by all nodes of one tree.
struct Scratch {
    /// Node id (+1) each sample is in: a column scan keeps only this node's entries.
    node_of: Vec<u32>,
    /// Stamps marking the features present in the current node's rows.
    in_union: Vec<u32>,
    /// Stamps marking the features drawn at the current node.
    drawn: Vec<u32>,
    union: Vec<u32>,
    entries: Vec<(f32, u32)>,
    value_of: Vec<f32>,
    left: ClassScratch,
    right: ClassScratch,
}

fn grow(data: &Data<'_>, target: &Target<'_>, cfg: &ForestConfig, seed: u64) -> (Tree, Vec<f64>) {
    let n = data.csr.n_rows;
    let n_features = data.csr.n_cols;
    let k = target.n_classes;
    let y = target.labels;
    let mut rng = Rng::new(seed);
    let weight = sample_weights(y, k, cfg, &mut rng);
    let mut samples: Vec<u32> = (0..n as u32).filter(|&i| weight[i as usize] > 0.0).collect();

    let mut tree = Tree {
        nodes: vec![Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
        }],
        leaf_class: Vec::new(),
        leaf_prob: Vec::new(),
    };
    let mut importance = vec![0.0f64; n_features];
    let mut s = Scratch {
        node_of: vec![0; n],
        in_union: vec![0; n_features],
        drawn: vec![0; n_features],
        union: Vec::new(),
        entries: Vec::new(),
        value_of: vec![0.0; n],
        left: ClassScratch::new(k),
        right: ClassScratch::new(k),
    };
    for &i in &samples {
        s.node_of[i as usize] = 1;
    }
    let mut root_w = vec![0.0; k];
    for &i in &samples {
        root_w[y[i as usize] as usize] += weight[i as usize];
    }
    let max_features = cfg.max_features.resolve(n_features);
    let mut stack = vec![Pending {
        node: 0,
        start: 0,
        end: samples.len(),
        depth: 0,
        class_w: root_w,
    }];
    // A stamp per visited node keeps the marker arrays valid without clearing them.
    let mut stamp = 0u32;
    while let Some(p) = stack.pop() {
        stamp += 1;
        let m = p.end - p.start;
        let w_total: f64 = p.class_w.iter().sum();
        let sumsq: f64 = p.class_w.iter().map(|v| v * v).sum();
        let impurity = if w_total > 0.0 {
            1.0 - sumsq / (w_total * w_total)
        } else {
            0.0
        };
        let is_leaf = m < cfg.min_samples_split
            || m < 2 * cfg.min_samples_leaf
            || impurity <= 1e-7
            || cfg.max_depth.is_some_and(|d| p.depth >= d);
        let best = if is_leaf {
            None
        } else {
            let node_samples = &samples[p.start..p.end];
            best_split(
                data,
                y,
                &weight,
                node_samples,
                &p,
                stamp,
                max_features,
                cfg,
                &mut rng,
                &mut s,
            )
        };
        let Some(best) = best else {
            make_leaf(&mut tree, p.node, &p.class_w, w_total);
            continue;
        };
        // Partition: left = value <= threshold. Values come from the feature's entries.
        let f = best.feature;
        let node_samples = &mut samples[p.start..p.end];
        gather(
            data,
            f,
            node_samples,
            p.node as u32 + 1,
            &mut s.entries,
            &s.node_of,
        );
        for &(v, i) in &s.entries {
            s.value_of[i as usize] = v;
        }
        let mut split = 0;
        for j in 0..node_samples.len() {
            if s.value_of[node_samples[j] as usize] <= best.threshold {
                node_samples.swap(split, j);
                split += 1;
            }
        }
        for &(_, i) in &s.entries {
            s.value_of[i as usize] = 0.0;
        }
        let (left_id, right_id) = (tree.nodes.len(), tree.nodes.len() + 1);
        for _ in 0..2 {
            tree.nodes.push(Node {
                feature: LEAF,
                threshold: 0.0,
                left: 0,
                right: 0,
            });
        }
        tree.nodes[p.node] = Node {
            feature: f,
            threshold: best.threshold,
            left: left_id as u32,
            right: right_id as u32,
        };
        let mut lw = vec![0.0; k];
        for &i in &node_samples[..split] {
            lw[y[i as usize] as usize] += weight[i as usize];
            s.node_of[i as usize] = left_id as u32 + 1;
        }
        for &i in &node_samples[split..] {
            s.node_of[i as usize] = right_id as u32 + 1;
        }
        let rw: Vec<f64> = p.class_w.iter().zip(&lw).map(|(a, b)| (a - b).max(0.0)).collect();
        // Impurity decrease, weighted: proxy − Σw²/W (see `evaluate`).
        importance[f as usize] += (best.proxy - sumsq / w_total).max(0.0);
        stack.push(Pending {
            node: right_id,
            start: p.start + split,
            end: p.end,
            depth: p.depth + 1,
            class_w: rw,
        });
        stack.push(Pending {
            node: left_id,
            start: p.start,
            end: p.start + split,
            depth: p.depth + 1,
            class_w: lw,
        });
    }
    (tree, importance)
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

/// The `linfa_tree` learner: linfa-trees grows the tree, this module stores and runs it.
mod linfa_learner {
    use super::{make_leaf, sample_weights, ForestConfig, Node, Rng, Target, Tree, LEAF};
    use crate::ml::sparse::Csr;
    use linfa::prelude::*;
    use linfa_trees::{DecisionTree, SplitQuality, TreeNode};
    use ndarray::{Array1, Array2};

    /// One tree: the bootstrap sample (weighted as [`super::grow`] weighs it) made dense
    /// and fitted by linfa-trees, then converted to a [`Tree`] whose leaves hold the
    /// sample's class fractions (linfa keeps only the majority class).
    pub(super) fn grow(
        x: &Csr,
        target: &Target<'_>,
        cfg: &ForestConfig,
        seed: u64,
    ) -> Result<(Tree, Vec<f64>), String> {
        let mut rng = Rng::new(seed);
        let weight = sample_weights(target.labels, target.n_classes, cfg, &mut rng);
        let samples: Vec<usize> = (0..x.n_rows).filter(|&i| weight[i] > 0.0).collect();
        let mut records = Array2::<f32>::zeros((samples.len(), x.n_cols));
        for (r, &i) in samples.iter().enumerate() {
            let (idx, vals) = x.row(i);
            for (&c, &v) in idx.iter().zip(vals) {
                records[(r, c as usize)] = v;
            }
        }
        let labels = Array1::from_iter(samples.iter().map(|&i| target.labels[i] as usize));
        let weights = Array1::from_iter(samples.iter().map(|&i| weight[i] as f32));
        let lightest = weights.iter().copied().fold(f32::INFINITY, f32::min);
        let dataset = Dataset::new(records, labels).with_weights(weights);
        let fitted = DecisionTree::params()
            .split_quality(SplitQuality::Gini)
            .max_depth(cfg.max_depth)
            .min_weight_split(cfg.min_samples_split as f32)
            // Class weights make a sample weigh less than 1: one sample, however light,
            // may form a leaf (half the lightest, so rounding in linfa's running sums
            // never lets an empty side through).
            .min_weight_leaf(lightest / 2.0)
            .fit(&dataset)
            .map_err(|e| e.to_string())?;

        let mut tree = Tree {
            nodes: Vec::new(),
            leaf_class: Vec::new(),
            leaf_prob: Vec::new(),
        };
        convert(fitted.root_node(), &mut tree)?;
        // Class weight per leaf, routing the sample as linfa split it (value <= split).
        let k = target.n_classes;
        let mut leaf_w = vec![0.0f64; tree.nodes.len() * k];
        for (r, &i) in samples.iter().enumerate() {
            let row = dataset.records().row(r);
            let leaf = tree.leaf_node(row.as_slice().expect("rows of a standard-layout array"));
            leaf_w[leaf * k + target.labels[i] as usize] += weight[i];
        }
        for node in 0..tree.nodes.len() {
            if tree.nodes[node].feature == LEAF {
                let w = &leaf_w[node * k..(node + 1) * k];
                make_leaf(&mut tree, node, w, w.iter().sum());
            }
        }
        let importances = fitted.feature_importance().into_iter().map(f64::from).collect();
        Ok((tree, importances))
    }

    /// Append `node` and its subtree in depth-first order; returns its index.
    fn convert(node: &TreeNode<f32, usize>, tree: &mut Tree) -> Result<u32, String> {
        let at = tree.nodes.len();
        tree.nodes.push(Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
        });
        if node.is_leaf() {
            return Ok(at as u32);
        }
        let (feature, threshold, _) = node.split();
        let [Some(left), Some(right)] = node.children()[..] else {
            return Err("an internal node without two children".into());
        };
        let left = convert(left, tree)?;
        let right = convert(right, tree)?;
        tree.nodes[at] = Node {
            feature: feature as u32,
            threshold,
            left,
            right,
        };
        Ok(at as u32)
    }
}

/// Each training row's weight in one tree: its bootstrap count times its class weight.
fn sample_weights(y: &[u32], k: usize, cfg: &ForestConfig, rng: &mut Rng) -> Vec<f64> {
    let n = y.len();
    // The bootstrap draws from the labelled rows only; with every row labelled this is
    // the plain draw of n rows out of n (the same draws as before unlabelled rows existed).
    let labelled: Vec<usize> = (0..n).filter(|&i| y[i] != UNLABELLED).collect();
    let m = labelled.len();
    let mut counts = vec![0u32; n];
    if cfg.bootstrap {
        for _ in 0..m {
            counts[labelled[rng.below(m)]] += 1;
        }
    } else {
        labelled.iter().for_each(|&i| counts[i] = 1);
    }
    let class_factor = match cfg.class_weight {
        ClassWeight::None => vec![1.0; k],
        ClassWeight::Balanced => balanced(labelled.iter().map(|&i| (y[i], 1u32)), k, m as f64),
        ClassWeight::BalancedSubsample => {
            let draws: f64 = counts.iter().map(|&c| c as f64).sum();
            balanced(labelled.iter().map(|&i| (y[i], counts[i])), k, draws)
        }
    };
    (0..n)
        .map(|i| {
            if counts[i] == 0 {
                0.0
            } else {
                counts[i] as f64 * class_factor[y[i] as usize]
            }
        })
        .collect()
}

/// `total / (classes present · weight of class c)` per class.
fn balanced(labels: impl Iterator<Item = (u32, u32)>, k: usize, total: f64) -> Vec<f64> {
    let mut per_class = vec![0.0f64; k];
    for (c, n) in labels {
        per_class[c as usize] += n as f64;
    }
    let present = per_class.iter().filter(|&&v| v > 0.0).count().max(1) as f64;
    per_class
        .iter()
        .map(|&v| if v > 0.0 { total / (present * v) } else { 0.0 })
        .collect()
}

fn make_leaf(tree: &mut Tree, node: usize, class_w: &[f64], total: f64) {
    let start = tree.leaf_class.len() as u32;
    for (c, &w) in class_w.iter().enumerate() {
        if w > 0.0 {
            tree.leaf_class.push(c as u32);
            tree.leaf_prob.push((w / total) as f32);
        }
    }
    tree.nodes[node] = Node {
        feature: LEAF,
        threshold: 0.0,
        left: start,
        right: tree.leaf_class.len() as u32,
    };
}

/// The non-zero values of feature `f` among the node's samples, as (value, sample).
fn gather(
    data: &Data<'_>,
    f: u32,
    node_samples: &[u32],
    node_stamp: u32,
    out: &mut Vec<(f32, u32)>,
    node_of: &[u32],
) {
    out.clear();
    let (rows, vals) = data.csc.col(f as usize);
    let m = node_samples.len();
    // Scan the column when it is shorter than searching each of the node's rows.
    if (rows.len() as f64) <= m as f64 * (data.avg_row_nnz.max(2.0)).log2() * 2.0 {
        for (&r, &v) in rows.iter().zip(vals) {
            if node_of[r as usize] == node_stamp {
                out.push((v, r));
            }
        }
    } else {
        for &i in node_samples {
            let v = data.csr.get(i as usize, f);
            if v != 0.0 {
                out.push((v, i));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn best_split(
    data: &Data<'_>,
    y: &[u32],
    weight: &[f64],
    node_samples: &[u32],
    p: &Pending,
    stamp: u32,
    max_features: usize,
    cfg: &ForestConfig,
    rng: &mut Rng,
    s: &mut Scratch,
) -> Option<Best> {
    let n_features = data.csr.n_cols;
    let m = node_samples.len();
    let node_stamp = p.node as u32 + 1;
    // Small node: the union of its rows' columns says which features can vary here.
    let use_union = (m as f64) * data.avg_row_nnz < (max_features as f64) * data.avg_col_nnz * 0.4;
    if use_union {
        s.union.clear();
        for &i in node_samples {
            for &c in data.csr.row(i as usize).0 {
                if s.in_union[c as usize] != stamp {
                    s.in_union[c as usize] = stamp;
                    s.union.push(c);
                }
            }
        }
        if s.union.is_empty() {
            return None;
        }
    }
    let sum_t2: f64 = p.class_w.iter().map(|v| v * v).sum();
    let w_total: f64 = p.class_w.iter().sum();
    let mut best: Option<Best> = None;
    let mut visited = 0usize;
    let mut varying = 0usize;
    let mut n_drawn = 0usize;
    let mut entries = std::mem::take(&mut s.entries);
    loop {
        if varying > 0 && visited >= max_features {
            break;
        }
        if n_drawn >= n_features {
            break;
        }
        let f = if visited >= max_features && use_union {
            // Every draw so far was constant: the next varying draw is uniform over the
            // varying features not drawn yet.
            let left: Vec<u32> = s
                .union
                .iter()
                .copied()
                .filter(|&c| s.drawn[c as usize] != stamp)
                .collect();
            if left.is_empty() {
                break;
            }
            left[rng.below(left.len())]
        } else {
            let mut f = rng.below(n_features) as u32;
            while s.drawn[f as usize] == stamp {
                f = rng.below(n_features) as u32;
            }
            f
        };
        s.drawn[f as usize] = stamp;
        n_drawn += 1;
        visited += 1;
        if use_union && s.in_union[f as usize] != stamp {
            continue; // all zeros here: constant
        }
        gather(data, f, node_samples, node_stamp, &mut entries, &s.node_of);
        match evaluate(
            &mut entries,
            y,
            weight,
            m,
            &p.class_w,
            sum_t2,
            w_total,
            cfg.min_samples_leaf,
            &mut s.left,
            &mut s.right,
        ) {
            Split::Constant => {}
            // Varies but no split leaves min_samples_leaf on both sides: it still counts.
            Split::Inadmissible => varying += 1,
            Split::Found { proxy, threshold } => {
                varying += 1;
                if best.as_ref().is_none_or(|b| proxy > b.proxy) {
                    best = Some(Best {
                        feature: f,
                        threshold,
                        proxy,
                    });
                }
            }
        }
    }
    s.entries = entries;
    best
}

/// What one feature offers a node.
enum Split {
    /// The same value in every sample.
    Constant,
    /// Varies, but no threshold leaves `min_samples_leaf` samples on both sides.
    Inadmissible,
    /// The best threshold; proxy = Σ_L w²/W_L + Σ_R w²/W_R (larger is better: it differs
    /// from the weighted gini decrease by a per-node constant).
    Found { proxy: f64, threshold: f32 },
}

/// Per-class accumulators kept zeroed between uses; `touched` lists what to reset.
struct ClassScratch {
    acc: Vec<f64>,
    touched: Vec<u32>,
}

impl ClassScratch {
    fn new(k: usize) -> Self {
        ClassScratch {
            acc: vec![0.0; k],
            touched: Vec::new(),
        }
    }

    #[inline]
    fn add(&mut self, c: usize, w: f64) -> f64 {
        if self.acc[c] == 0.0 {
            self.touched.push(c as u32);
        }
        let before = self.acc[c];
        self.acc[c] += w;
        before
    }

    fn clear(&mut self) {
        for &c in &self.touched {
            self.acc[c as usize] = 0.0;
        }
        self.touched.clear();
    }
}

/// Best threshold of one feature in a node, in O(non-zeros · log) whatever the number of
/// classes: with T the node's class weights, right = T − left, so Σ right² follows from
/// Σ left², Σ T·left and Σ T², and the zero block never has to be visited class by class.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    entries: &mut [(f32, u32)],
    y: &[u32],
    weight: &[f64],
    m: usize,
    class_w: &[f64],
    sum_t2: f64,
    w_total: f64,
    min_leaf: usize,
    left: &mut ClassScratch,
    right: &mut ClassScratch,
) -> Split {
    let nz = entries.len();
    let zeros = m - nz;
    if nz == 0 {
        return Split::Constant;
    }
    entries.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    if zeros == 0 && entries[0].0 >= entries[nz - 1].0 - 1e-7 {
        return Split::Constant;
    }
    let first_pos = entries.partition_point(|e| e.0 < 0.0);
    let mut best: Option<(f64, f32)> = None;
    let mut consider = |cur: f32, next: f32, sl: f64, sr: f64, wl: f64, wr: f64, nl: usize, nr: usize| {
        if next <= cur + 1e-7 || nl < min_leaf || nr < min_leaf || wl <= 0.0 || wr <= 0.0 {
            return;
        }
        let proxy = sl / wl + sr / wr;
        if best.is_none_or(|b| proxy > b.0) {
            let mut t = (cur as f64 / 2.0 + next as f64 / 2.0) as f32;
            if t >= next || !t.is_finite() {
                t = cur;
            }
            best = Some((proxy, t));
        }
    };

    // Phase 1, negative values enter the left side: track B = Σ L², A = Σ T·L.
    let (mut a, mut b, mut wl) = (0.0f64, 0.0f64, 0.0f64);
    for pos in 0..first_pos {
        let (v, i) = entries[pos];
        let c = y[i as usize] as usize;
        let w = weight[i as usize];
        let before = left.add(c, w);
        b += 2.0 * before * w + w * w;
        a += class_w[c] * w;
        wl += w;
        let next = if pos + 1 < first_pos {
            Some(entries[pos + 1].0)
        } else if zeros > 0 {
            Some(0.0)
        } else {
            None // the negatives/positives boundary is considered below
        };
        if let Some(next) = next {
            let (nl, nr) = (pos + 1, m - pos - 1);
            consider(v, next, b, sum_t2 - 2.0 * a + b, wl, w_total - wl, nl, nr);
        }
    }
    left.clear();

    // Phase 2: everything up to the first positive value is left; right holds exactly the
    // positive entries. Track R explicitly: S_R = Σ R², C = Σ T·R, S_L = ΣT² − 2C + S_R.
    let (mut sr, mut cc, mut wr) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, i) in &entries[first_pos..] {
        let c = y[i as usize] as usize;
        let w = weight[i as usize];
        let before = right.add(c, w);
        sr += 2.0 * before * w + w * w;
        cc += class_w[c] * w;
        wr += w;
    }
    let mut nr = nz - first_pos;
    if first_pos < nz && (zeros > 0 || first_pos > 0) {
        let cur = if zeros > 0 { 0.0 } else { entries[first_pos - 1].0 };
        consider(
            cur,
            entries[first_pos].0,
            sum_t2 - 2.0 * cc + sr,
            sr,
            w_total - wr,
            wr,
            m - nr,
            nr,
        );
    }
    // Phase 3: positive values leave the right side one by one.
    for pos in first_pos..nz {
        let (v, i) = entries[pos];
        let c = y[i as usize] as usize;
        let w = weight[i as usize];
        let r = right.acc[c];
        sr += -2.0 * r * w + w * w;
        right.acc[c] = r - w;
        cc -= class_w[c] * w;
        wr -= w;
        nr -= 1;
        if pos + 1 < nz {
            consider(
                v,
                entries[pos + 1].0,
                sum_t2 - 2.0 * cc + sr,
                sr.max(0.0),
                w_total - wr,
                wr,
                m - nr,
                nr,
            );
        }
    }
    right.clear();
    match best {
        Some((proxy, threshold)) => Split::Found { proxy, threshold },
        None => Split::Inadmissible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable classes in sparse features, with noise columns.
    pub(super) fn toy(n: usize) -> (Csr, Vec<u32>) {
        let mut rng = Rng::new(5);
        let mut x = Csr::new(50);
        let mut y = Vec::new();
        for i in 0..n {
            let class = (i % 3) as u32;
            let mut row = vec![(class * 7, 0.5 + rng.next_f64() as f32 * 0.5)];
            let noise = 20 + rng.below(30) as u32;
            row.push((noise, rng.next_f64() as f32));
            row.sort_by_key(|e| e.0);
            row.dedup_by_key(|e| e.0);
            x.push_row(row);
            y.push(class);
        }
        (x, y)
    }

    #[test]
    fn separable_data_is_classified_perfectly() {
        let (x, y) = toy(300);
        let cfg = ForestConfig {
            n_trees: 20,
            ..ForestConfig::default()
        };
        let f = RandomForest::fit(
            &x,
            &Target {
                name: "t",
                labels: &y,
                n_classes: 3,
            },
            &cfg,
        )
        .unwrap();
        let pred = f.predict(&x);
        assert!(pred.iter().zip(&y).all(|(p, t)| p.0 == *t));
        let total: f64 = f.importances.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
        // The informative columns carry the importance.
        let informative = f.importances[0] + f.importances[7] + f.importances[14];
        assert!(informative > 0.9, "{informative}");
    }

    #[test]
    fn identical_for_any_thread_count() {
        let (x, y) = toy(200);
        let cfg = ForestConfig {
            n_trees: 16,
            ..ForestConfig::default()
        };
        let fit = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    RandomForest::fit(
                        &x,
                        &Target {
                            name: "t",
                            labels: &y,
                            n_classes: 3,
                        },
                        &cfg,
                    )
                    .unwrap()
                })
        };
        assert_eq!(fit(1), fit(4));
    }

    #[test]
    fn min_samples_leaf_is_honoured() {
        let (x, y) = toy(120);
        let cfg = ForestConfig {
            n_trees: 4,
            min_samples_leaf: 10,
            bootstrap: false,
            ..ForestConfig::default()
        };
        let f = RandomForest::fit(
            &x,
            &Target {
                name: "t",
                labels: &y,
                n_classes: 3,
            },
            &cfg,
        )
        .unwrap();
        // Without bootstrap every sample weighs 1 per class factor; count leaf sizes by routing.
        for tree in &f.trees {
            let mut sizes = std::collections::HashMap::new();
            let mut dense = vec![0f32; 50];
            for i in 0..x.n_rows {
                let (idx, vals) = x.row(i);
                for (&c, &v) in idx.iter().zip(vals) {
                    dense[c as usize] = v;
                }
                *sizes.entry(tree.leaf(&dense)).or_insert(0) += 1;
                for &c in idx {
                    dense[c as usize] = 0.0;
                }
            }
            assert!(sizes.values().all(|&s| s >= 10), "{sizes:?}");
        }
    }

    #[test]
    fn negative_and_dense_columns_split_too() {
        // Class decided by the sign of a dense column with no zeros, or by negatives only.
        for shift in [0.0f32, -10.0] {
            let mut x = Csr::new(2);
            let mut y = Vec::new();
            for i in 0..60 {
                let v = if shift == 0.0 {
                    i as f32 - 29.5
                } else {
                    shift - i as f32
                };
                x.push_row([(0, v), (1, 1.0)]);
                y.push(u32::from(v > shift - 30.0));
            }
            let cfg = ForestConfig {
                n_trees: 5,
                ..ForestConfig::default()
            };
            let f = RandomForest::fit(
                &x,
                &Target {
                    name: "t",
                    labels: &y,
                    n_classes: 2,
                },
                &cfg,
            )
            .unwrap();
            let pred = f.predict(&x);
            assert!(pred.iter().zip(&y).all(|(p, t)| p.0 == *t), "shift {shift}");
        }
    }

    #[test]
    fn batch_prediction_equals_row_by_row() {
        // Noisy labels grow deep trees. Column 0 is in every row with signed values
        // (negative thresholds; stored densely per block); the other 400 are rare
        // (stored sparsely). 5,000 rows make several chunks of several blocks, the last
        // ones partial.
        let mut rng = Rng::new(9);
        let mut x = Csr::new(401);
        let mut y = Vec::new();
        for i in 0..5000 {
            let mut row: Vec<(u32, f32)> = (0..6)
                .map(|_| (1 + rng.below(400) as u32, rng.next_f64() as f32))
                .collect();
            row.push((0, rng.next_f64() as f32 * 4.0 - 2.0));
            row.sort_by_key(|e| e.0);
            row.dedup_by_key(|e| e.0);
            x.push_row(row);
            y.push(((i * 7 + rng.below(3)) % 5) as u32);
        }
        let cfg = ForestConfig {
            n_trees: 6,
            ..ForestConfig::default()
        };
        let target = Target {
            name: "t",
            labels: &y,
            n_classes: 5,
        };
        let f = RandomForest::fit(&x, &target, &cfg).unwrap();
        assert!(f
            .trees
            .iter()
            .any(|t| t.nodes.iter().any(|n| n.feature != LEAF && n.threshold < 0.0)));
        let (mut dense, mut proba) = (vec![0f32; 401], vec![0f64; 5]);
        let want: Vec<(u32, u32)> = (0..x.n_rows)
            .map(|i| {
                let (idx, vals) = x.row(i);
                f.predict_proba_row(idx, vals, &mut dense, &mut proba);
                let (class, p) = argmax(&proba);
                (class, p.to_bits())
            })
            .collect();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got: Vec<(u32, u32)> = pool
                .install(|| f.predict(&x))
                .iter()
                .map(|p| (p.0, p.1.to_bits()))
                .collect();
            assert_eq!(got, want, "{threads} threads");
        }
    }

    #[test]
    fn linfa_tree_learner_separates_the_toy_set() {
        let (x, y) = toy(150);
        let cfg = ForestConfig {
            n_trees: 6,
            learner: Learner::LinfaTree,
            ..ForestConfig::default()
        };
        let target = Target {
            name: "t",
            labels: &y,
            n_classes: 3,
        };
        let fit = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| RandomForest::fit(&x, &target, &cfg).unwrap())
        };
        // Not bit-identical run to run: linfa-trees keeps class weights in a std HashMap,
        // whose random iteration order breaks ties and orders float sums. The answers on
        // separable data do not depend on it.
        let f = fit(1);
        for forest in [&f, &fit(3)] {
            assert!(forest.predict(&x).iter().zip(&y).all(|(p, t)| p.0 == *t));
        }
        // Leaves carry the bootstrap sample's class fractions, like the sparse learner's.
        let tree = &f.trees[0];
        assert!(tree
            .nodes
            .iter()
            .filter(|n| n.feature == LEAF)
            .all(|n| n.right > n.left));
        assert!(
            (tree.leaf_prob.iter().sum::<f32>()
                - tree.nodes.iter().filter(|n| n.feature == LEAF).count() as f32)
                .abs()
                < 1e-3
        );
        // A different learner, different trees, the same answers on separable data.
        let sparse = RandomForest::fit(
            &x,
            &target,
            &ForestConfig {
                learner: Learner::Sparse,
                ..cfg.clone()
            },
        )
        .unwrap();
        assert_ne!(sparse.trees, f.trees);
        // Settings linfa-trees cannot honour are refused, not ignored.
        for bad in [
            ForestConfig {
                min_samples_leaf: 3,
                ..cfg.clone()
            },
            ForestConfig {
                max_features: MaxFeatures::All,
                ..cfg.clone()
            },
        ] {
            let err = RandomForest::fit(&x, &target, &bad).unwrap_err().to_string();
            assert!(err.contains("linfa_tree"), "{err}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (x, y) = toy(10);
        let t = |labels: &'static [u32]| Target {
            name: "t",
            labels,
            n_classes: 3,
        };
        assert_eq!(
            RandomForest::fit(&x, &t(&[0, 1]), &ForestConfig::default()).unwrap_err(),
            ForestError::Length { rows: 10, labels: 2 }
        );
        let bad = Target {
            name: "t",
            labels: &y,
            n_classes: 2,
        };
        assert!(matches!(
            RandomForest::fit(&x, &bad, &ForestConfig::default()),
            Err(ForestError::Label { .. })
        ));
        let cfg = ForestConfig {
            n_trees: 0,
            ..ForestConfig::default()
        };
        assert!(matches!(
            RandomForest::fit(
                &x,
                &Target {
                    name: "t",
                    labels: &y,
                    n_classes: 3
                },
                &cfg
            ),
            Err(ForestError::Config(_))
        ));
    }
}

/// linfa integration: the forest trains and predicts through linfa's `Fit` and
/// `PredictInplace` traits, on a sparse [`Csr`] matrix with `usize` class labels.
mod linfa_traits {
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
}

#[cfg(test)]
fn tests_toy(n: usize) -> (Csr, Vec<u32>) {
    tests::toy(n)
}
