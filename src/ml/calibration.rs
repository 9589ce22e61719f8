//! Probabilities that mean what they say, and the measures that tell whether they do.
//!
//! A [`Calibrator`] turns one row's decision values (one per class, from a one-vs-rest
//! linear model) into class probabilities: logistic regression's own sigmoids, a Platt
//! sigmoid per class, or one softmax temperature. Platt and temperature are fitted on
//! out-of-fold decision values (the linear learner makes them), never on the rows the
//! decision values were trained on, which would be over-confident.
//!
//! The measures are pure functions: expected calibration error over the top label,
//! the multi-class Brier score, and accuracy at coverage.

use serde::{Deserialize, Serialize};

/// Equal-width confidence bins for [`expected_calibration_error`]: 15, as Guo et al.
/// ("On Calibration of Modern Neural Networks", 2017) and most reports since.
pub const ECE_BINS: usize = 15;

/// How decision values become probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibrator {
    /// `σ(d_k) / Σ_j σ(d_j)`: logistic regression's one-vs-rest probabilities, as
    /// scikit-learn computes them. One class: probability 1.
    Sigmoid,
    /// `σ(−(a_k d_k + b_k))` per class (Platt's sign convention), normalized to sum to 1.
    Platt { a: Vec<f64>, b: Vec<f64> },
    /// `softmax(d / t)`.
    Temperature { t: f64 },
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Calibrator {
    /// Probabilities of one row from its decision values (`out.len() == d.len()`).
    pub fn apply(&self, d: &[f32], out: &mut [f64]) {
        match self {
            Calibrator::Sigmoid => {
                for (o, &v) in out.iter_mut().zip(d) {
                    *o = sigmoid(v as f64);
                }
                normalize(out);
            }
            Calibrator::Platt { a, b } => {
                for (k, (o, &v)) in out.iter_mut().zip(d).enumerate() {
                    *o = sigmoid(-(a[k] * v as f64 + b[k]));
                }
                normalize(out);
            }
            Calibrator::Temperature { t } => softmax(d, 1.0 / t, out),
        }
    }

    /// Classes this calibrator is for (`None`: any number).
    pub fn n_classes(&self) -> Option<usize> {
        match self {
            Calibrator::Platt { a, .. } => Some(a.len()),
            _ => None,
        }
    }
}

fn normalize(p: &mut [f64]) {
    let total: f64 = p.iter().sum();
    if total > 0.0 {
        p.iter_mut().for_each(|v| *v /= total);
    } else {
        let u = 1.0 / p.len() as f64;
        p.iter_mut().for_each(|v| *v = u);
    }
}

/// `softmax(s · d)`, shifted by the maximum so no exponential overflows.
fn softmax(d: &[f32], s: f64, out: &mut [f64]) {
    let max = d.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let mut total = 0.0;
    for (o, &v) in out.iter_mut().zip(d) {
        *o = (s * (v as f64 - max)).exp();
        total += *o;
    }
    out.iter_mut().for_each(|v| *v /= total);
}

/// Platt scaling for each class of an `n × k` row-major decision matrix against the true
/// classes, by the Newton method with backtracking of Lin, Lin & Weng ("A note on
/// Platt's probabilistic outputs for support vector machines", 2007), on Platt's
/// smoothed targets `(n₊ + 1)/(n₊ + 2)` and `1/(n₋ + 2)`.
pub fn fit_platt(decisions: &[f32], labels: &[u32], k: usize) -> Calibrator {
    let (mut a, mut b) = (Vec::with_capacity(k), Vec::with_capacity(k));
    let mut f = Vec::with_capacity(labels.len());
    for c in 0..k {
        f.clear();
        f.extend(decisions.chunks(k).map(|row| row[c] as f64));
        let (ac, bc) = platt_one(&f, |i| labels[i] == c as u32);
        a.push(ac);
        b.push(bc);
    }
    Calibrator::Platt { a, b }
}

/// One sigmoid `P(y=1|f) = 1/(1+exp(A f + B))`.
fn platt_one(f: &[f64], positive: impl Fn(usize) -> bool) -> (f64, f64) {
    let n = f.len();
    let prior1 = (0..n).filter(|&i| positive(i)).count() as f64;
    let prior0 = n as f64 - prior1;
    let (hi, lo) = ((prior1 + 1.0) / (prior1 + 2.0), 1.0 / (prior0 + 2.0));
    let t: Vec<f64> = (0..n).map(|i| if positive(i) { hi } else { lo }).collect();
    let (min_step, sigma, eps) = (1e-10, 1e-12, 1e-5);
    let mut a = 0.0;
    let mut b = ((prior0 + 1.0) / (prior1 + 1.0)).ln();
    let objective = |a: f64, b: f64| -> f64 {
        (0..n)
            .map(|i| {
                let fab = f[i] * a + b;
                if fab >= 0.0 {
                    t[i] * fab + (1.0 + (-fab).exp()).ln()
                } else {
                    (t[i] - 1.0) * fab + (1.0 + fab.exp()).ln()
                }
            })
            .sum()
    };
    let mut fval = objective(a, b);
    for _ in 0..100 {
        // Gradient and Hessian (plus sigma on the diagonal, for a positive definite step).
        let (mut h11, mut h22, mut h21, mut g1, mut g2) = (sigma, sigma, 0.0, 0.0, 0.0);
        for i in 0..n {
            let fab = f[i] * a + b;
            let (p, q) = if fab >= 0.0 {
                let e = (-fab).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = fab.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += f[i] * f[i] * d2;
            h22 += d2;
            h21 += f[i] * d2;
            let d1 = t[i] - p;
            g1 += f[i] * d1;
            g2 += d1;
        }
        if g1.abs() < eps && g2.abs() < eps {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let gd = g1 * da + g2 * db;
        let mut step = 1.0;
        while step >= min_step {
            let (na, nb) = (a + step * da, b + step * db);
            let nf = objective(na, nb);
            if nf < fval + 1e-4 * step * gd {
                (a, b, fval) = (na, nb, nf);
                break;
            }
            step /= 2.0;
        }
        if step < min_step {
            break; // line search failed: the current point is as good as it gets
        }
    }
    (a, b)
}

/// The temperature `t` minimizing the log-loss of `softmax(d / t)` over the rows of an
/// `n × k` decision matrix. The loss is convex in `s = 1/t`; Newton's method on `s`,
/// kept positive, with bisection when a step would leave (0, ∞).
pub fn fit_temperature(decisions: &[f32], labels: &[u32], k: usize) -> Calibrator {
    if k < 2 || labels.is_empty() {
        return Calibrator::Temperature { t: 1.0 };
    }
    // d(NLL)/ds = Σ (E_p[d] − d_y), d²(NLL)/ds² = Σ Var_p[d] ≥ 0.
    let derivatives = |s: f64| -> (f64, f64) {
        let mut p = vec![0.0; k];
        let (mut g, mut h) = (0.0, 0.0);
        for (row, &y) in decisions.chunks(k).zip(labels) {
            softmax(row, s, &mut p);
            let mean: f64 = p.iter().zip(row).map(|(p, &d)| p * d as f64).sum();
            let sq: f64 = p.iter().zip(row).map(|(p, &d)| p * (d as f64).powi(2)).sum();
            g += mean - row[y as usize] as f64;
            h += (sq - mean * mean).max(0.0);
        }
        (g, h)
    };
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut s = 1.0;
    for _ in 0..100 {
        let (g, h) = derivatives(s);
        if g.abs() < 1e-9 * labels.len() as f64 {
            break;
        }
        // Keep a bracket: the loss rises past a point of positive slope.
        if g > 0.0 {
            hi = hi.min(s);
        } else {
            lo = lo.max(s);
        }
        let mut next = if h > 0.0 { s - g / h } else { f64::NAN };
        if !(next > lo && next < hi) {
            next = if hi.is_finite() { (lo + hi) / 2.0 } else { s * 2.0 };
        }
        if (next - s).abs() <= 1e-12 * s {
            s = next;
            break;
        }
        s = next;
        if s > 1e6 {
            break; // perfectly separated: as sharp as f64 can hold
        }
    }
    Calibrator::Temperature { t: 1.0 / s }
}

/// Expected calibration error over the top label: rows binned by their top probability
/// into `bins` equal-width bins of [0, 1] (a probability of exactly 1 goes in the last),
/// then `Σ_b (n_b / n) · |accuracy_b − mean confidence_b|`. 0 for no rows.
pub fn expected_calibration_error(confidence: &[f64], correct: &[bool], bins: usize) -> f64 {
    assert_eq!(confidence.len(), correct.len(), "one confidence per row");
    let n = confidence.len();
    if n == 0 || bins == 0 {
        return 0.0;
    }
    let mut count = vec![0usize; bins];
    let mut conf = vec![0.0; bins];
    let mut hits = vec![0usize; bins];
    for (&p, &ok) in confidence.iter().zip(correct) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        conf[b] += p;
        hits[b] += usize::from(ok);
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let m = count[b] as f64;
            (m / n as f64) * (hits[b] as f64 / m - conf[b] / m).abs()
        })
        .sum()
}

/// The multi-class Brier score: mean over rows of `Σ_k (p_k − [y = k])²` (0 is perfect,
/// 2 is the worst), for an `n × k` row-major probability matrix.
pub fn brier_score(proba: &[f64], labels: &[u32], k: usize) -> f64 {
    assert_eq!(proba.len(), labels.len() * k, "k probabilities per row");
    if labels.is_empty() {
        return 0.0;
    }
    let total: f64 = proba
        .chunks(k)
        .zip(labels)
        .map(|(row, &y)| {
            row.iter()
                .enumerate()
                .map(|(c, &p)| (p - f64::from(u8::from(c == y as usize))).powi(2))
                .sum::<f64>()
        })
        .sum();
    total / labels.len() as f64
}

/// One line of [`accuracy_at_coverage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub threshold: f64,
    /// Share of rows whose top probability is at least `threshold`.
    pub coverage: f64,
    /// Accuracy of those rows (0 when there are none).
    pub accuracy: f64,
    pub rows: usize,
}

/// The thresholds of [`accuracy_at_coverage`]: 0.50, 0.55, …, 0.95.
pub fn coverage_thresholds() -> Vec<f64> {
    (0..10).map(|i| (50 + 5 * i) as f64 / 100.0).collect()
}

/// For each threshold of [`coverage_thresholds`]: how many rows the model is at least
/// that sure of, and how often it is right on them.
pub fn accuracy_at_coverage(confidence: &[f64], correct: &[bool]) -> Vec<CoverageRow> {
    assert_eq!(confidence.len(), correct.len(), "one confidence per row");
    let n = confidence.len();
    coverage_thresholds()
        .into_iter()
        .map(|threshold| {
            let (mut rows, mut hits) = (0usize, 0usize);
            for (&p, &ok) in confidence.iter().zip(correct) {
                if p >= threshold {
                    rows += 1;
                    hits += usize::from(ok);
                }
            }
            CoverageRow {
                threshold,
                coverage: if n == 0 { 0.0 } else { rows as f64 / n as f64 },
                accuracy: if rows == 0 { 0.0 } else { hits as f64 / rows as f64 },
                rows,
            }
        })
        .collect()
}

/// Top probability and whether its class is the true one, per row of an `n × k` matrix
/// (ties go to the lowest class, as argmax).
pub fn top_label(proba: &[f64], labels: &[u32], k: usize) -> (Vec<f64>, Vec<bool>) {
    proba
        .chunks(k)
        .zip(labels)
        .map(|(row, &y)| {
            let mut best = 0;
            for (c, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = c;
                }
            }
            (row[best], best == y as usize)
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_on_a_fixture_with_a_known_answer() {
        // Bins of width 0.1 (10 bins). Bin 9: 0.95, 0.95 (one right) → |0.5 − 0.95| · 2/5.
        // Bin 6: 0.6, 0.65, 0.6 (two right) → |2/3 − 0.6167| · 3/5.
        let conf = [0.95, 0.95, 0.6, 0.65, 0.6];
        let ok = [true, false, true, true, false];
        let want = 0.4 * (0.5f64 - 0.95).abs() + 0.6 * (2.0f64 / 3.0 - 1.85 / 3.0).abs();
        assert!((expected_calibration_error(&conf, &ok, 10) - want).abs() < 1e-12);
        // Probability 1 goes in the last bin; perfect calibration scores 0.
        assert_eq!(expected_calibration_error(&[1.0, 1.0], &[true, true], 15), 0.0);
        assert_eq!(expected_calibration_error(&[], &[], 15), 0.0);
    }

    #[test]
    fn brier_on_a_fixture_with_a_known_answer() {
        // Row 0: (0.7, 0.2, 0.1), true 0 → 0.09 + 0.04 + 0.01 = 0.14.
        // Row 1: (0.5, 0.5, 0.0), true 2 → 0.25 + 0.25 + 1 = 1.5.
        let p = [0.7, 0.2, 0.1, 0.5, 0.5, 0.0];
        assert!((brier_score(&p, &[0, 2], 3) - (0.14 + 1.5) / 2.0).abs() < 1e-12);
        assert_eq!(brier_score(&[0.0, 1.0], &[1], 2), 0.0);
    }

    #[test]
    fn coverage_table_on_a_fixture() {
        let conf = [0.52, 0.58, 0.9, 0.97, 0.3];
        let ok = [false, true, true, true, false];
        let t = accuracy_at_coverage(&conf, &ok);
        assert_eq!(t.len(), 10);
        assert_eq!(t[0].threshold, 0.5);
        assert!((t[9].threshold - 0.95).abs() < 1e-12);
        // ≥ 0.50: 4 rows, 3 right. ≥ 0.55: 3 rows, all right. ≥ 0.95: 1 row.
        assert_eq!((t[0].rows, t[0].coverage, t[0].accuracy), (4, 0.8, 0.75));
        assert_eq!((t[1].rows, t[1].accuracy), (3, 1.0));
        assert_eq!((t[9].rows, t[9].coverage), (1, 0.2));
        let (top, right) = top_label(&[0.2, 0.8, 0.6, 0.4], &[1, 1], 2);
        assert_eq!((top, right), (vec![0.8, 0.6], vec![true, false]));
    }

    #[test]
    fn sigmoid_and_softmax_probabilities() {
        let mut p = [0.0; 3];
        Calibrator::Sigmoid.apply(&[0.0, 0.0, 0.0], &mut p);
        assert!(p.iter().all(|&v| (v - 1.0 / 3.0).abs() < 1e-12));
        Calibrator::Temperature { t: 0.5 }.apply(&[1.0, 0.0, 0.0], &mut p);
        let e = 2f64.exp();
        assert!((p[0] - e / (e + 2.0)).abs() < 1e-12);
        let mut one = [0.0];
        Calibrator::Sigmoid.apply(&[-3.0], &mut one);
        assert_eq!(one, [1.0], "a single class is certain");
        // Huge decision values do not overflow.
        Calibrator::Temperature { t: 1e-3 }.apply(&[1e4, -1e4, 0.0], &mut p);
        assert_eq!(p[0], 1.0);
    }

    #[test]
    fn temperature_recovers_the_generating_one() {
        // Rows whose labels are drawn from softmax(d / 2): the fit finds t close to 2.
        let mut rng = crate::ml::rng::Rng::new(11);
        let (k, n) = (4, 20_000);
        let mut d = Vec::new();
        let mut y = Vec::new();
        let mut p = vec![0.0; k];
        for _ in 0..n {
            let row: Vec<f32> = (0..k).map(|_| (rng.next_f64() * 8.0 - 4.0) as f32).collect();
            softmax(&row, 0.5, &mut p);
            let u = rng.next_f64();
            let mut acc = 0.0;
            let mut label = k - 1;
            for (c, &pc) in p.iter().enumerate() {
                acc += pc;
                if u < acc {
                    label = c;
                    break;
                }
            }
            d.extend(row);
            y.push(label as u32);
        }
        let Calibrator::Temperature { t } = fit_temperature(&d, &y, k) else {
            panic!("a temperature")
        };
        assert!((t - 2.0).abs() < 0.1, "t = {t}");
    }

    #[test]
    fn platt_recovers_the_generating_sigmoid() {
        // Positives drawn with P = σ(−(a f + b)), a = −2, b = 0.5.
        let mut rng = crate::ml::rng::Rng::new(12);
        let n = 20_000;
        let mut d = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let f = rng.next_f64() * 6.0 - 3.0;
            let positive = rng.next_f64() < sigmoid(-(-2.0 * f + 0.5));
            // Two classes: column 0 for class 0, column 1 (= −f) unused by the check.
            d.extend([f as f32, -f as f32]);
            y.push(u32::from(!positive));
        }
        let Calibrator::Platt { a, b } = fit_platt(&d, &y, 2) else {
            panic!("Platt")
        };
        assert!(
            (a[0] + 2.0).abs() < 0.1 && (b[0] - 0.5).abs() < 0.1,
            "{a:?} {b:?}"
        );
    }
}
