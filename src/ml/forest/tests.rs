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
        (tree.leaf_prob.iter().sum::<f32>() - tree.nodes.iter().filter(|n| n.feature == LEAF).count() as f32)
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
            max_features: Some(MaxFeatures::All),
            ..cfg.clone()
        },
        // Even the sparse learner's own default, given explicitly, would be ignored.
        ForestConfig {
            max_features: Some(MaxFeatures::Sqrt),
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

#[test]
fn size_settings_are_bounded() {
    let (x, y) = toy(10);
    let target = Target {
        name: "t",
        labels: &y,
        n_classes: 3,
    };
    let d = ForestConfig::default();
    for (cfg, want) in [
        (
            ForestConfig {
                n_trees: 4_294_967_296,
                ..d.clone()
            },
            "10000 trees",
        ),
        (
            ForestConfig {
                n_trees: MAX_TREES + 1,
                ..d.clone()
            },
            "10000 trees",
        ),
        (
            ForestConfig {
                max_depth: Some(MAX_DEPTH + 1),
                ..d.clone()
            },
            "max_depth = 100001",
        ),
        (
            ForestConfig {
                min_samples_split: usize::MAX,
                ..d.clone()
            },
            "min_samples_split",
        ),
        (
            ForestConfig {
                min_samples_leaf: MAX_MIN_SAMPLES + 1,
                ..d.clone()
            },
            "min_samples_leaf",
        ),
        (
            ForestConfig {
                max_features: Some(MaxFeatures::Count(0)),
                ..d.clone()
            },
            "1..=10000000",
        ),
        (
            ForestConfig {
                max_features: Some(MaxFeatures::Count(MAX_FEATURE_COUNT + 1)),
                ..d.clone()
            },
            "1..=10000000",
        ),
    ] {
        let e = RandomForest::fit(&x, &target, &cfg).unwrap_err().to_string();
        assert!(e.contains(want), "{e} should contain {want}");
    }
    // At the bound is fine.
    ForestConfig {
        n_trees: MAX_TREES,
        max_depth: Some(MAX_DEPTH),
        ..d
    }
    .check()
    .unwrap();
}
