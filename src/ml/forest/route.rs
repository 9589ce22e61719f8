//! Batch prediction: rows routed through each tree as sets of rows (bitmasks over
//! blocks), a chunk of rows per thread.

use super::tree::{Tree, LEAF};
use super::{argmax, RandomForest};
use crate::ml::sparse::Csr;
use rayon::prelude::*;

impl RandomForest {
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
        let chunk_rows = self.chunk_rows(x.n_rows);
        let starts: Vec<usize> = (0..x.n_rows).step_by(chunk_rows).collect();
        let k = self.n_classes;
        let per_chunk: Vec<Vec<(u32, f32)>> = starts
            .par_iter()
            .map(|&start| {
                let rows = chunk_rows.min(x.n_rows - start);
                self.proba_chunk(x, start, rows)
                    .chunks(k.max(1))
                    .take(rows)
                    .map(argmax)
                    .collect()
            })
            .collect();
        per_chunk.into_iter().flatten().collect()
    }

    /// Rows per chunk of [`Self::predict`] for `n_rows` rows: one chunk per thread,
    /// unless that holds more rows than the cache comfortably does; a whole number of
    /// blocks.
    pub fn chunk_rows(&self, n_rows: usize) -> usize {
        let n_chunks = rayon::current_num_threads().max(n_rows.div_ceil(CHUNK_ROWS));
        n_rows
            .div_ceil(n_chunks.max(1))
            .max(1)
            .next_multiple_of(BLOCK_ROWS)
    }

    /// Mean class probabilities of rows `start..start + rows` of `x`, row-major
    /// (`rows × n_classes`), routed through every tree as sets of rows. Identical to
    /// [`Self::predict_proba_row`] row by row, whatever the chunk.
    pub fn proba_chunk(&self, x: &Csr, start: usize, rows: usize) -> Vec<f64> {
        let k = self.n_classes;
        if rows == 0 {
            return Vec::new();
        }
        let chunk = RowChunk::load(x, start, rows, self.n_features);
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
        for (votes, out) in votes.chunks(k.max(1)).zip(impure.chunks_mut(k.max(1))) {
            self.mean(votes, out);
        }
        impure
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
