//! Growing one sparse-aware tree: bootstrap weights, the per-node feature draws, the
//! best threshold of a feature in O(non-zeros), and the partition of the node's samples.

use super::config::{ClassWeight, ForestConfig, MaxFeatures};
use super::tree::{Node, Tree, LEAF};
use super::{Target, UNLABELLED};
use crate::ml::rng::Rng;
use crate::ml::sparse::{Csc, Csr};

pub(super) struct Data<'a> {
    pub(super) csr: &'a Csr,
    pub(super) csc: &'a Csc,
    pub(super) avg_row_nnz: f64,
    pub(super) avg_col_nnz: f64,
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

pub(super) fn grow(data: &Data<'_>, target: &Target<'_>, cfg: &ForestConfig, seed: u64) -> (Tree, Vec<f64>) {
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
    let max_features = cfg.max_features.unwrap_or(MaxFeatures::Sqrt).resolve(n_features);
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

/// Each training row's weight in one tree: its bootstrap count times its class weight.
pub(super) fn sample_weights(y: &[u32], k: usize, cfg: &ForestConfig, rng: &mut Rng) -> Vec<f64> {
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

pub(super) fn make_leaf(tree: &mut Tree, node: usize, class_w: &[f64], total: f64) {
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
