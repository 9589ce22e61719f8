//! The `linfa_tree` learner: linfa-trees grows the tree, this module stores and runs it.

use super::config::ForestConfig;
use super::grow::{make_leaf, sample_weights};
use super::tree::{Node, Tree, LEAF};
use super::Target;
use crate::ml::rng::Rng;
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
