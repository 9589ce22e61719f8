use super::*;
use crate::ml::calibration::Calibrator;
use crate::ml::forest::UNLABELLED;
use crate::ml::rng::Rng;
use crate::ml::sparse::Csr;

/// 11 rows, 4 features, classes of 6, 3 and 2 rows (the same fixture as the scikit-learn
/// literals below were computed on, values rounded to f32 first).
fn fixture() -> (Csr, Vec<u32>) {
    let rows: [(&[(u32, f32)], u32); 11] = [
        (&[(0, 1.0), (1, 0.5)], 0),
        (&[(0, 0.8), (2, 0.3)], 0),
        (&[(0, 0.9), (1, 0.2), (3, 0.1)], 0),
        (&[(0, 0.4), (1, 0.7)], 0),
        (&[(0, 0.6), (3, 0.5)], 0),
        (&[(0, 0.3), (2, 0.4)], 0),
        (&[(1, 1.0), (2, 0.2)], 1),
        (&[(1, 0.9), (3, 0.4)], 1),
        (&[(0, 0.5), (1, 0.6)], 1),
        (&[(2, 1.0), (3, 0.6)], 2),
        (&[(1, 0.1), (3, 0.9)], 2),
    ];
    let mut x = Csr::new(4);
    let mut y = Vec::new();
    for (r, c) in rows {
        x.push_row(r.iter().copied());
        y.push(c);
    }
    (x, y)
}

fn tight(loss: Loss, class_weight: ClassWeight) -> LinearConfig {
    LinearConfig {
        loss,
        tol: 1e-9,
        max_iter: 100_000,
        class_weight,
        calibration: if loss == Loss::Logistic {
            Calibration::Own
        } else {
            Calibration::Temperature
        },
        calibration_folds: 2,
        ..LinearConfig::default()
    }
}

fn assert_weights(m: &LinearModel, coef: &[&[f64]], intercept: &[f64]) {
    let k = m.n_classes;
    for (c, row) in coef.iter().enumerate() {
        for (f, &want) in row.iter().enumerate() {
            let got = m.weights[f * k + c] as f64;
            assert!(
                (got - want).abs() < 2e-5,
                "class {c} feature {f}: {got} vs {want}"
            );
        }
        let got = m.intercepts[c] as f64;
        assert!(
            (got - intercept[c]).abs() < 2e-5,
            "class {c} intercept: {got} vs {}",
            intercept[c]
        );
    }
}

/// scikit-learn 1.9.1, `LinearSVC(C=1.0, class_weight=…, tol=1e-9, dual=True)` on the
/// fixture. The dual optimum's weights are unique, so a different coordinate order reaches
/// the same ones; the balanced literals only match with liblinear's `Cn = C` for every
/// negative row of a one-vs-rest sub-problem.
#[test]
fn matches_linear_svc_with_and_without_balanced_weights() {
    let (x, y) = fixture();
    let m = fit(&x, &y, 3, &tight(Loss::SquaredHinge, ClassWeight::Balanced)).unwrap();
    assert_weights(
        &m,
        &[
            &[
                1.0837741570410215,
                -0.7348941053046437,
                -0.274846031478359,
                -0.6348600502384419,
            ],
            &[
                -0.7848607835969806,
                1.1699363862175582,
                -0.2879741013166326,
                -0.38150667642242725,
            ],
            &[
                -0.9680897117019106,
                -0.6571007791065314,
                0.496885201708902,
                1.1427818978283266,
            ],
        ],
        &[-0.01075356673505376, -0.3808805778492145, -0.4253061891736595],
    );
    let m = fit(&x, &y, 3, &tight(Loss::SquaredHinge, ClassWeight::None)).unwrap();
    assert_weights(
        &m,
        &[
            &[
                1.1362948622380027,
                -0.7879172832573795,
                -0.3109165379552763,
                -0.7149268926363802,
            ],
            &[
                -0.7699921046444718,
                1.1065594493842894,
                -0.26835712107655707,
                -0.36595157419297397,
            ],
            &[
                -0.8573246367247925,
                -0.5913581516148416,
                0.4774444949616014,
                0.9513554916691036,
            ],
        ],
        &[0.12316529411360899, -0.40820923410889026, -0.47582398288231387],
    );
}

/// Two classes: one sub-problem, class 1 positive at C·w₁ and class 0 at C·w₀
/// (scikit-learn's `coef_` row is class 1's; class 0 gets its negation).
#[test]
fn two_classes_match_linear_svc_and_liblinear_logistic() {
    let (x, y) = fixture();
    let x = x.select_rows(&(0..9).collect::<Vec<_>>());
    let y = &y[..9];
    let svc = [
        -0.8837302640057333,
        1.062090688042806,
        -0.22274849047944054,
        -0.005001828266567985,
    ];
    let neg = svc.map(|v: f64| -v);
    let m = fit(&x, y, 2, &tight(Loss::SquaredHinge, ClassWeight::Balanced)).unwrap();
    assert_eq!(m.iterations.len(), 1, "one sub-problem for two classes");
    assert_weights(&m, &[&neg, &svc], &[0.16789761660226854, -0.16789761660226854]);
    // LogisticRegression(solver="liblinear", dual=True, class_weight="balanced", tol=1e-9).
    let lr = [
        -0.7809403347791692,
        0.8730610398383529,
        -0.09994145916192572,
        0.03372591420488447,
    ];
    let neg = lr.map(|v: f64| -v);
    let m = fit(&x, y, 2, &tight(Loss::Logistic, ClassWeight::Balanced)).unwrap();
    assert_weights(&m, &[&neg, &lr], &[0.09046362362061827, -0.09046362362061827]);
    let (mut d, mut p) = ([0f32; 2], [0f64; 2]);
    for (row, want) in [
        (0, [0.607036798100525, 0.392963201899475]),
        (1, [0.6781315425180592, 0.3218684574819408]),
    ] {
        let (idx, vals) = x.row(row);
        m.proba_row(idx, vals, &mut d, &mut p);
        assert!(
            (p[0] - want[0]).abs() < 1e-5 && (p[1] - want[1]).abs() < 1e-5,
            "{p:?} vs {want:?}"
        );
    }
}

/// Three noisy classes in 60 sparse features, 600 rows.
fn noisy(n: usize) -> (Csr, Vec<u32>) {
    let mut rng = Rng::new(7);
    let mut x = Csr::new(60);
    let mut y = Vec::new();
    for _ in 0..n {
        let class = rng.below(3) as u32;
        let mut row: Vec<(u32, f32)> = (0..5)
            .map(|_| (rng.below(60) as u32, rng.next_f64() as f32))
            .collect();
        if rng.chance(0.8) {
            row.push((class * 10, 1.0));
        }
        row.sort_by_key(|e| e.0);
        row.dedup_by_key(|e| e.0);
        x.push_row(row);
        y.push(class);
    }
    (x, y)
}

#[test]
fn identical_for_any_thread_count() {
    let (x, y) = noisy(600);
    for loss in [Loss::SquaredHinge, Loss::Logistic] {
        let config = LinearConfig {
            loss,
            ..LinearConfig::default()
        };
        let fit_with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| fit(&x, &y, 3, &config).unwrap())
        };
        let (one, four) = (fit_with(1), fit_with(4));
        assert_eq!(
            rmp_serde::to_vec(&one).unwrap(),
            rmp_serde::to_vec(&four).unwrap(),
            "{loss:?}"
        );
        let other_seed = fit(
            &x,
            &y,
            3,
            &LinearConfig {
                seed: 7,
                ..config.clone()
            },
        )
        .unwrap();
        assert_ne!(other_seed.weights, one.weights, "the seed orders the coordinates");
    }
}

#[test]
fn batch_paths_equal_row_by_row_and_learn_the_signal() {
    let (x, y) = noisy(3000);
    let m = fit(&x, &y, 3, &LinearConfig::default()).unwrap();
    let (mut d, mut p) = (vec![0f32; 3], vec![0f64; 3]);
    let mut right = 0;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let (batch, decisions, proba) = pool.install(|| {
        (
            m.predict(&x).unwrap(),
            m.decision_matrix(&x).unwrap(),
            m.predict_proba(&x).unwrap(),
        )
    });
    for i in 0..x.n_rows {
        let (idx, vals) = x.row(i);
        m.proba_row(idx, vals, &mut d, &mut p);
        assert_eq!(&decisions[i * 3..i * 3 + 3], &d[..]);
        assert_eq!(&proba[i * 3..i * 3 + 3], &p[..]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let top = crate::ml::forest::argmax(&p);
        assert_eq!(batch[i], top);
        right += usize::from(top.0 == y[i]);
    }
    // 80% of rows carry their class's feature; the others are a coin toss of three.
    assert!(right as f64 / x.n_rows as f64 > 0.8, "{right}");
    let mut narrow = Csr::new(5);
    narrow.push_row([(0, 1.0)]);
    assert_eq!(
        m.predict(&narrow).unwrap_err(),
        LinearError::Columns {
            found: 5,
            expected: 60
        }
    );
}

#[test]
fn unlabelled_rows_are_left_out() {
    let (x, y) = noisy(300);
    let config = LinearConfig::default();
    let alone = fit(&x, &y, 3, &config).unwrap();
    // The same rows with unlabelled ones interleaved: the same model.
    let mut wide = Csr::new(60);
    let mut labels = Vec::new();
    for (i, &label) in y.iter().enumerate() {
        let (idx, vals) = x.row(i);
        wide.push_row(idx.iter().copied().zip(vals.iter().copied()));
        labels.push(label);
        if i % 4 == 0 {
            wide.push_row([(7, 1.0)]);
            labels.push(UNLABELLED);
        }
    }
    let with = fit(&wide, &labels, 3, &config).unwrap();
    assert_eq!(with, alone);
    assert_eq!(
        fit(&x, &vec![UNLABELLED; x.n_rows], 3, &config).unwrap_err(),
        LinearError::NoLabels
    );
}

#[test]
fn a_single_class_is_predicted_with_certainty() {
    let (x, _) = noisy(50);
    for loss in [Loss::SquaredHinge, Loss::Logistic] {
        let m = fit(
            &x,
            &[0; 50],
            1,
            &LinearConfig {
                loss,
                ..LinearConfig::default()
            },
        )
        .unwrap();
        assert!(m.iterations.is_empty());
        assert!(m.predict(&x).unwrap().iter().all(|&p| p == (0, 1.0)), "{loss:?}");
    }
    // Two classes declared, one present: its sub-problem has only positives.
    let m = fit(&x, &[1; 50], 2, &LinearConfig::default()).unwrap();
    assert!(m.predict(&x).unwrap().iter().all(|p| p.0 == 1));
}

#[test]
fn calibrated_probabilities_are_fitted_out_of_fold() {
    let (x, y) = noisy(900);
    let base = LinearConfig::default();
    let temp = fit(&x, &y, 3, &base).unwrap();
    let Calibrator::Temperature { t } = temp.calibrator else {
        panic!("temperature by default for the SVM")
    };
    assert!(t.is_finite() && t > 0.0 && t != 1.0, "{t}");
    let platt = fit(
        &x,
        &y,
        3,
        &LinearConfig {
            calibration: Calibration::Platt,
            ..base.clone()
        },
    )
    .unwrap();
    assert!(matches!(platt.calibrator, Calibrator::Platt { ref a, .. } if a.len() == 3));
    assert_eq!(
        platt.weights, temp.weights,
        "calibration leaves the weights alone"
    );
    // Out-of-fold probabilities are not the over-confident in-sample ones: on these noisy
    // rows, the mean top probability stays near the accuracy (within 0.1).
    for m in [&temp, &platt] {
        let proba = m.predict_proba(&x).unwrap();
        let (conf, ok) = crate::ml::calibration::top_label(&proba, &y, 3);
        let acc = ok.iter().filter(|&&b| b).count() as f64 / ok.len() as f64;
        let mean = conf.iter().sum::<f64>() / conf.len() as f64;
        assert!((mean - acc).abs() < 0.1, "confidence {mean} vs accuracy {acc}");
    }
    let lr = fit(
        &x,
        &y,
        3,
        &LinearConfig {
            loss: Loss::Logistic,
            ..base.clone()
        },
    )
    .unwrap();
    assert_eq!(lr.calibrator, Calibrator::Sigmoid);
    let tiny = x.select_rows(&[0, 1, 2]);
    assert_eq!(
        fit(&tiny, &y[..3], 3, &base).unwrap_err(),
        LinearError::TooFewForCalibration { rows: 3, folds: 2 }
    );
}

#[test]
fn round_trips_through_message_pack() {
    let (x, y) = noisy(200);
    let m = fit(&x, &y, 3, &LinearConfig::default()).unwrap();
    let bytes = rmp_serde::to_vec(&m).unwrap();
    let back: LinearModel = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, m);
}

#[test]
fn bad_inputs_are_errors() {
    let (x, y) = noisy(20);
    let c = LinearConfig::default();
    assert_eq!(
        fit(&x, &y[..3], 3, &c).unwrap_err(),
        LinearError::Length { rows: 20, labels: 3 }
    );
    assert!(matches!(
        fit(&x, &y, 2, &c).unwrap_err(),
        LinearError::Label { n_classes: 2, .. }
    ));
    assert_eq!(fit(&x, &y, 0, &c).unwrap_err(), LinearError::NoClasses);
    assert_eq!(fit(&Csr::new(3), &[], 1, &c).unwrap_err(), LinearError::Empty);
    let bad = LinearConfig { c: -1.0, ..c };
    assert!(matches!(
        fit(&x, &y, 3, &bad).unwrap_err(),
        LinearError::Config(_)
    ));
}
