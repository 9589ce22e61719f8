//! Dual coordinate descent for one binary, L2-regularized problem, as liblinear solves it.
//!
//! The rows are a subset of a [`Csr`] with an implicit last feature of constant value
//! `bias` (liblinear's bias term: a feature like any other, so it is regularized).
//! `w` is dense, `n_cols + 1` long, and kept equal to `Σ y_i α_i x_i` throughout.

use crate::ml::rng::Rng;
use crate::ml::sparse::Csr;

/// The rows of a problem, copied out of the matrix in problem order, each row's
/// (column, value) pairs contiguous. The solver visits rows in a random order every pass
/// and its time went to waiting on memory (a row index, then its offsets, then two
/// arrays); here a row is one offset and one run of pairs, and the next row is fetched
/// while the current one is worked on.
pub(super) struct Packed {
    entries: Vec<(u32, f32)>,
    start: Vec<usize>,
    n_cols: usize,
}

impl Packed {
    /// Rows `rows` of `x`, whose column indices must all be below `x.n_cols` (the solver
    /// relies on it; `fit` checks it).
    pub fn new(x: &Csr, rows: &[u32]) -> Packed {
        let nnz: usize = rows
            .iter()
            .map(|&r| x.indptr[r as usize + 1] - x.indptr[r as usize])
            .sum();
        let mut entries = Vec::with_capacity(nnz);
        let mut start = Vec::with_capacity(rows.len() + 1);
        start.push(0);
        for &r in rows {
            let (idx, vals) = x.row(r as usize);
            entries.extend(idx.iter().copied().zip(vals.iter().copied()));
            start.push(entries.len());
        }
        Packed {
            entries,
            start,
            n_cols: x.n_cols,
        }
    }

    /// The rows at `keep` (positions in this one), in that order.
    pub fn select(&self, keep: &[usize]) -> Packed {
        let mut entries = Vec::new();
        let mut start = Vec::with_capacity(keep.len() + 1);
        start.push(0);
        for &s in keep {
            entries.extend_from_slice(&self.entries[self.start[s]..self.start[s + 1]]);
            start.push(entries.len());
        }
        Packed {
            entries,
            start,
            n_cols: self.n_cols,
        }
    }
}

/// The rows of one sub-problem and what every sub-problem over them shares.
pub(super) struct Rows<'a> {
    pub packed: &'a Packed,
    /// `‖x_i‖² + bias²` per problem row.
    pub sq_norms: &'a [f64],
    pub bias: f64,
}

impl Rows<'_> {
    #[inline]
    fn row(&self, s: usize) -> &[(u32, f32)] {
        let p = self.packed;
        &p.entries[p.start[s]..p.start[s + 1]]
    }

    /// Ask for row `s` to be in cache by the time it is read.
    #[inline]
    fn prefetch(&self, s: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(&at) = self.packed.start.get(s) {
            // SAFETY: a prefetch reads nothing and cannot fault; the address is at most one
            // past the end of `entries`.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let p = self
                    .packed
                    .entries
                    .as_ptr()
                    .add(at.min(self.packed.entries.len()));
                _mm_prefetch(p as *const i8, _MM_HINT_T0);
                _mm_prefetch((p as *const i8).wrapping_add(64), _MM_HINT_T0);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = s;
    }

    #[inline]
    pub fn dot(&self, w: &[f64], s: usize) -> f64 {
        let row = self.row(s);
        let n = self.packed.n_cols;
        assert!(w.len() > n);
        // Two sums, so consecutive additions do not wait on each other (the loop was
        // bound by the latency of one chain of adds).
        let (mut a, mut b) = (w[n] * self.bias, 0.0);
        let mut pairs = row.chunks_exact(2);
        for pair in &mut pairs {
            // SAFETY: every column of a packed row is below `n_cols` (`Packed::new`), and
            // `w` has `n_cols + 1` entries (asserted above). This gather is the solver's
            // inner loop; the bounds checks cost a fifth of its time.
            unsafe {
                a += *w.get_unchecked(pair[0].0 as usize) * f64::from(pair[0].1);
                b += *w.get_unchecked(pair[1].0 as usize) * f64::from(pair[1].1);
            }
        }
        if let [(c, v)] = pairs.remainder() {
            a += w[*c as usize] * f64::from(*v);
        }
        a + b
    }

    #[inline]
    fn axpy(&self, a: f64, s: usize, w: &mut [f64]) {
        let n = self.packed.n_cols;
        assert!(w.len() > n);
        for &(c, v) in self.row(s) {
            // SAFETY: as in `dot`.
            unsafe { *w.get_unchecked_mut(c as usize) += a * v as f64 };
        }
        w[n] += a * self.bias;
    }

    pub fn len(&self) -> usize {
        self.sq_norms.len()
    }

    pub fn n_cols(&self) -> usize {
        self.packed.n_cols
    }
}

/// A solved sub-problem.
pub(super) struct Solution {
    /// Weights, the bias feature's last.
    pub w: Vec<f64>,
    /// Dual variables, one per problem row.
    pub alpha: Vec<f64>,
    /// Outer iterations taken; `max_iter` means it stopped unconverged.
    pub iterations: u32,
}

/// L2-loss SVM dual (Hsieh et al. 2008, liblinear's `solve_l2r_l1l2_svc` with
/// `L2R_L2LOSS_SVC_DUAL`): minimize `½ αᵀ(Q + D)α − eᵀα`, `α ≥ 0`, with
/// `D_ii = 1 / (2 C_i)`, by one coordinate at a time in a random order per pass, with
/// shrinking of the coordinates stuck at their bound.
///
/// `y` is ±1 per row; row i costs `cost[(y_i > 0) as usize]` (negative, positive).
/// `init` warm-starts from given dual values (≥ 0).
pub(super) fn l2loss_svm(
    p: &Rows<'_>,
    y: &[i8],
    cost: [f64; 2],
    tol: f64,
    max_iter: usize,
    rng: &mut Rng,
    init: Option<&[f64]>,
) -> Solution {
    let l = p.len();
    let diag = [0.5 / cost[0], 0.5 / cost[1]];
    let class = |i: usize| usize::from(y[i] > 0);
    let mut alpha = init.map_or_else(|| vec![0.0; l], <[f64]>::to_vec);
    let mut w = vec![0.0; p.n_cols() + 1];
    let qd: Vec<f64> = (0..l).map(|i| p.sq_norms[i] + diag[class(i)]).collect();
    for (i, &a) in alpha.iter().enumerate() {
        if a != 0.0 {
            p.axpy(y[i] as f64 * a, i, &mut w);
        }
    }
    let mut index: Vec<u32> = (0..l as u32).collect();
    let mut active = l;
    // liblinear also tracks the smallest projected gradient, to shrink coordinates at the
    // upper bound; the L2 loss has none.
    let mut pg_max_old = f64::INFINITY;
    let mut iter = 0;
    while iter < max_iter {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for i in 0..active {
            let j = i + rng.below(active - i);
            index.swap(i, j);
        }
        let mut s = 0;
        while s < active {
            let i = index[s] as usize;
            if s + 1 < active {
                p.prefetch(index[s + 1] as usize);
            }
            let yi = y[i] as f64;
            let g = yi * p.dot(&w, i) - 1.0 + alpha[i] * diag[class(i)];
            let mut pg = 0.0;
            if alpha[i] == 0.0 {
                if g > pg_max_old {
                    // At its bound and pushing against it: set aside until the check.
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g < 0.0 {
                    pg = g;
                }
            } else {
                pg = g; // the upper bound is infinite for the L2 loss
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).max(0.0);
                p.axpy((alpha[i] - old) * yi, i, &mut w);
            }
            s += 1;
        }
        iter += 1;
        // liblinear's test (as scikit-learn vendors it): the spread of the projected
        // gradient over the pass.
        if pg_max - pg_min <= tol {
            if active == l {
                break;
            }
            // Converged on the active set: check every coordinate once more.
            active = l;
            pg_max_old = f64::INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
    }
    Solution {
        w,
        alpha,
        iterations: iter as u32,
    }
}

/// Logistic-regression dual (Yu, Huang & Lin 2011, liblinear's `solve_l2r_lr_dual`):
/// minimize `½ αᵀQα + Σ α_i log α_i + (C_i − α_i) log(C_i − α_i)`, `0 < α_i < C_i`, one
/// coordinate at a time by a guarded Newton method on the sub-problem.
pub(super) fn logistic(
    p: &Rows<'_>,
    y: &[i8],
    cost: [f64; 2],
    tol: f64,
    max_iter: usize,
    rng: &mut Rng,
) -> Solution {
    let l = p.len();
    let upper = |i: usize| cost[usize::from(y[i] > 0)];
    const MAX_INNER: usize = 100;
    const ETA: f64 = 0.1;
    let mut inner_tol = 1e-2;
    let inner_tol_min = tol.min(1e-8);
    // alpha[2i] is α_i, alpha[2i + 1] is C_i − α_i (kept separately for precision).
    let mut alpha = vec![0.0; 2 * l];
    for i in 0..l {
        alpha[2 * i] = (0.001 * upper(i)).min(1e-8);
        alpha[2 * i + 1] = upper(i) - alpha[2 * i];
    }
    let mut w = vec![0.0; p.n_cols() + 1];
    for i in 0..l {
        p.axpy(y[i] as f64 * alpha[2 * i], i, &mut w);
    }
    let mut index: Vec<u32> = (0..l as u32).collect();
    let mut iter = 0;
    while iter < max_iter {
        for i in 0..l {
            let j = i + rng.below(l - i);
            index.swap(i, j);
        }
        let mut newton_iter = 0;
        let mut g_max = 0.0f64;
        for (s, &i) in index.iter().enumerate() {
            let i = i as usize;
            if let Some(&next) = index.get(s + 1) {
                p.prefetch(next as usize);
            }
            let yi = y[i] as f64;
            let c = upper(i);
            let a = p.sq_norms[i];
            let b = yi * p.dot(&w, i);
            // Minimize over z = α_i (sign 1) or z = C − α_i (sign −1), whichever is
            // the smaller side: g(z) = z log z + (C−z) log(C−z) + ½a(z−z₀)² + sign·b(z−z₀).
            let (mut ind1, mut ind2, mut sign) = (2 * i, 2 * i + 1, 1.0);
            if 0.5 * a * (alpha[ind2] - alpha[ind1]) + b < 0.0 {
                (ind1, ind2, sign) = (2 * i + 1, 2 * i, -1.0);
            }
            let old = alpha[ind1];
            let mut z = old;
            if c - z < 0.5 * c {
                z *= 0.1;
            }
            let mut gp = a * (z - old) + sign * b + (z / (c - z)).ln();
            g_max = g_max.max(gp.abs());
            let mut inner = 0;
            while inner <= MAX_INNER {
                if gp.abs() < inner_tol {
                    break;
                }
                let gpp = a + c / (c - z) / z;
                let next = z - gp / gpp;
                z = if next <= 0.0 { z * ETA } else { next };
                gp = a * (z - old) + sign * b + (z / (c - z)).ln();
                newton_iter += 1;
                inner += 1;
            }
            if inner > 0 {
                alpha[ind1] = z;
                alpha[ind2] = c - z;
                p.axpy(sign * (z - old) * yi, i, &mut w);
            }
        }
        iter += 1;
        if g_max < tol {
            break;
        }
        if newton_iter <= l / 10 {
            inner_tol = inner_tol_min.max(0.1 * inner_tol);
        }
    }
    let alpha = (0..l).map(|i| alpha[2 * i]).collect();
    Solution {
        w,
        alpha,
        iterations: iter as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows in two dimensions: (x0, x1) with labels by the sign of x0 − x1.
    fn problem() -> (Csr, Vec<i8>) {
        let mut rng = Rng::new(3);
        let mut x = Csr::new(2);
        let mut y = Vec::new();
        for _ in 0..200 {
            let (a, b) = (rng.next_f64() as f32, rng.next_f64() as f32);
            x.push_row([(0, a), (1, b)]);
            y.push(if a > b { 1 } else { -1 });
        }
        (x, y)
    }

    fn rows<'a>(x: &Csr, rows: &[u32], sq: &'a mut Vec<f64>, packed: &'a mut Option<Packed>) -> Rows<'a> {
        *sq = rows
            .iter()
            .map(|&r| {
                x.row(r as usize)
                    .1
                    .iter()
                    .map(|&v| (v as f64).powi(2))
                    .sum::<f64>()
                    + 1.0
            })
            .collect();
        Rows {
            packed: packed.insert(Packed::new(x, rows)),
            sq_norms: sq,
            bias: 1.0,
        }
    }

    /// The primal objective of the L2-loss SVM.
    fn primal_l2(p: &Rows<'_>, y: &[i8], c: f64, w: &[f64]) -> f64 {
        let reg = 0.5 * w.iter().map(|v| v * v).sum::<f64>();
        let loss: f64 = (0..p.len())
            .map(|i| (1.0 - y[i] as f64 * p.dot(w, i)).max(0.0).powi(2))
            .sum();
        reg + c * loss
    }

    #[test]
    fn svm_reaches_the_optimum_and_kkt_holds() {
        let (x, y) = problem();
        let idx: Vec<u32> = (0..x.n_rows as u32).collect();
        let (mut sq, mut packed) = (Vec::new(), None);
        let p = rows(&x, &idx, &mut sq, &mut packed);
        let s = l2loss_svm(&p, &y, [1.0, 1.0], 1e-6, 10_000, &mut Rng::new(1), None);
        assert!(s.iterations < 10_000, "converged");
        // w = Σ y α x, and α_i = 2C·max(0, 1 − y_i w·x_i) at the optimum (KKT of the L2 loss).
        for (i, &yi) in y.iter().enumerate() {
            let margin = 1.0 - yi as f64 * p.dot(&s.w, i);
            assert!((s.alpha[i] - 2.0 * margin.max(0.0)).abs() < 1e-3, "row {i}");
        }
        // Any perturbation of the optimum raises the primal objective.
        let best = primal_l2(&p, &y, 1.0, &s.w);
        for k in 0..3 {
            for d in [-1e-3, 1e-3] {
                let mut w = s.w.clone();
                w[k] += d;
                assert!(primal_l2(&p, &y, 1.0, &w) > best - 1e-12);
            }
        }
        // A warm start from the solution converges at once to the same weights.
        let warm = l2loss_svm(&p, &y, [1.0, 1.0], 1e-6, 10_000, &mut Rng::new(2), Some(&s.alpha));
        assert!(warm.iterations <= 2, "{}", warm.iterations);
        for (a, b) in warm.w.iter().zip(&s.w) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn logistic_reaches_the_optimum() {
        let (x, y) = problem();
        let idx: Vec<u32> = (0..x.n_rows as u32).collect();
        let (mut sq, mut packed) = (Vec::new(), None);
        let p = rows(&x, &idx, &mut sq, &mut packed);
        let c = 2.0;
        let s = logistic(&p, &y, [c, c], 1e-8, 10_000, &mut Rng::new(1));
        // The primal gradient w − C Σ y_i σ(−y_i w·x_i) x_i vanishes at the optimum.
        let mut grad = s.w.clone();
        for (i, &yi) in y.iter().enumerate() {
            let yi = yi as f64;
            let sig = 1.0 / (1.0 + (yi * p.dot(&s.w, i)).exp());
            let mut xi = vec![0.0; 3];
            p.axpy(1.0, i, &mut xi);
            for k in 0..3 {
                grad[k] -= c * yi * sig * xi[k];
            }
        }
        assert!(grad.iter().all(|g| g.abs() < 1e-4), "{grad:?}");
        // The separating direction: w0 > 0 > w1.
        assert!(s.w[0] > 1.0 && s.w[1] < -1.0, "{:?}", s.w);
    }
}
