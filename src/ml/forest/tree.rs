//! The stored tree: nodes in an array, sparse leaf distributions, and how one densified
//! row walks it.

use serde::{Deserialize, Serialize};

pub(super) const LEAF: u32 = u32::MAX;

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
    pub(super) fn leaf(&self, dense: &[f32]) -> (usize, usize) {
        let n = self.nodes[self.leaf_node(dense)];
        (n.left as usize, n.right as usize)
    }

    /// The index of the leaf node a densified row reaches.
    #[inline]
    pub(super) fn leaf_node(&self, dense: &[f32]) -> usize {
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
    pub(super) fn tally(&self, leaf: std::ops::Range<usize>, votes: &mut [u32], impure: &mut [f64]) {
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
