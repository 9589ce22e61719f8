//! The model on a 20,000-row generated inventory (the size of the scikit-learn
//! comparison): training (TF-IDF + every forest), batch prediction, single-record latency;
//! the same three for the linear learner (TF-IDF + one linear model per distinct target).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nexusml::ml::features::FeatureConfig;
use nexusml::ml::forest::{ForestConfig, Learner, UNLABELLED};
use nexusml::ml::linear::{self, LinearConfig, LinearModel};
use nexusml::ml::model::{is_unlabelled, EquipmentModel, Featurizer};
use nexusml::ml::split::{split, TestSize};
use nexusml::ml::table::{take_rows, text_column};
use nexusml::ml::text::TfidfConfig;
use polars::prelude::DataFrame;
use std::collections::HashMap;
use std::time::Duration;

/// A generated inventory of `rows` rows, engineered and split 70/30 as the train
/// pipeline does: (feature config, training rows, test rows).
fn inventory(rows: usize) -> (FeatureConfig, DataFrame, DataFrame) {
    let (features, engineered, _) = common::engineered_inventory(rows);
    let s = split(engineered.height(), TestSize::Fraction(0.3), 42, None).unwrap();
    let train = take_rows(&engineered, &s.train).unwrap();
    let test = take_rows(&engineered, &s.test).unwrap();
    (features, train, test)
}

fn model(c: &mut Criterion) {
    let rows = std::env::var("NEXUSML_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (features, train, test) = inventory(rows);
    let tfidf = TfidfConfig::default();
    let forest = ForestConfig::default();

    let mut group = c.benchmark_group(format!("model_{rows}_rows"));
    group.sample_size(10).measurement_time(Duration::from_secs(40));
    group.throughput(Throughput::Elements(train.height() as u64));
    group.bench_function("train_tfidf_and_all_forests", |b| {
        b.iter(|| {
            let (featurizer, x) = Featurizer::fit(&train, &features, &tfidf).unwrap();
            EquipmentModel::fit(&train, &features, featurizer, &x, &forest, &|| {}).unwrap()
        })
    });
    let (featurizer, x) = Featurizer::fit(&train, &features, &tfidf).unwrap();
    let trained = EquipmentModel::fit(&train, &features, featurizer, &x, &forest, &|| {}).unwrap();
    let x_test = trained.featurizer.transform(&test).unwrap();
    group.throughput(Throughput::Elements(test.height() as u64));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("predict_batch", |b| b.iter(|| trained.predict_matrix(&x_test)));
    group.throughput(Throughput::Elements(1));
    let record: HashMap<String, String> = [
        (
            "description",
            "Heat Exchanger for Chilled Water system with Plate and Frame design",
        ),
        ("service_life", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    group.bench_function("predict_one_record", |b| {
        b.iter(|| trained.predict_record(&record))
    });
    group.finish();
}

/// Both learners on a problem small enough for linfa-trees, which tries every one of
/// the ~5,000 features at every split over a dense copy of the sample.
fn learners(c: &mut Criterion) {
    let (features, train, _) = inventory(500);
    let (featurizer, x) = Featurizer::fit(&train, &features, &TfidfConfig::default()).unwrap();
    let mut group = c.benchmark_group(format!("learners_{}_rows_10_trees", train.height()));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for learner in [Learner::Sparse, Learner::LinfaTree] {
        let forest = ForestConfig {
            n_trees: 10,
            learner,
            ..ForestConfig::default()
        };
        group.bench_function(format!("{learner:?}"), |b| {
            b.iter(|| {
                EquipmentModel::fit(&train, &features, featurizer.clone(), &x, &forest, &|| {}).unwrap()
            })
        });
    }
    group.finish();
}

/// Class indices per distinct target (targets derived identically share one), as the
/// model encodes them.
fn encoded_targets(features: &FeatureConfig, train: &DataFrame) -> Vec<(usize, Vec<u32>)> {
    let mut firsts: Vec<&String> = Vec::new();
    for t in &features.targets {
        let d = features.derivation(t);
        if !firsts.iter().any(|f| d.is_some() && features.derivation(f) == d) {
            firsts.push(t);
        }
    }
    firsts
        .into_iter()
        .map(|t| {
            let values = text_column(train, t).unwrap();
            let mut classes: Vec<&String> = values.iter().filter(|v| !is_unlabelled(v)).collect();
            classes.sort();
            classes.dedup();
            let labels = values
                .iter()
                .map(|v| classes.binary_search(&v).map_or(UNLABELLED, |i| i as u32))
                .collect();
            (classes.len(), labels)
        })
        .collect()
}

/// The linear learner (default settings: L2-loss SVM, balanced, calibrated) on the
/// 20,000-row inventory: TF-IDF + the 4 distinct targets, batch and single-record
/// prediction (TF-IDF of the record included).
fn linear_model(c: &mut Criterion) {
    let rows = std::env::var("NEXUSML_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (features, train, test) = inventory(rows);
    let tfidf = TfidfConfig::default();
    let config = LinearConfig::default();
    let targets = encoded_targets(&features, &train);
    let fit = |x: &nexusml::ml::sparse::Csr| -> Vec<LinearModel> {
        targets
            .iter()
            .map(|(k, labels)| linear::fit(x, labels, *k, &config).unwrap())
            .collect()
    };
    let mut group = c.benchmark_group(format!("linear_{rows}_rows"));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(train.height() as u64));
    group.bench_function("train_tfidf_and_all_targets", |b| {
        b.iter(|| {
            let (featurizer, x) = Featurizer::fit(&train, &features, &tfidf).unwrap();
            (featurizer, fit(&x))
        })
    });
    let (featurizer, x) = Featurizer::fit(&train, &features, &tfidf).unwrap();
    let models = fit(&x);
    let x_test = featurizer.transform(&test).unwrap();
    group.throughput(Throughput::Elements(test.height() as u64));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("predict_batch", |b| {
        b.iter(|| {
            models
                .iter()
                .map(|m| m.predict(&x_test).unwrap())
                .collect::<Vec<_>>()
        })
    });
    group.throughput(Throughput::Elements(1));
    let text = "Heat Exchanger for Chilled Water system with Plate and Frame design";
    group.bench_function("predict_one_record", |b| {
        let mut buf = String::new();
        b.iter(|| {
            let row = featurizer.row(text, &[20.0], &mut buf);
            let (idx, vals): (Vec<u32>, Vec<f32>) = row.into_iter().unzip();
            models
                .iter()
                .map(|m| {
                    let (mut d, mut p) = (vec![0f32; m.n_classes], vec![0f64; m.n_classes]);
                    m.proba_row(&idx, &vals, &mut d, &mut p);
                    nexusml::ml::forest::argmax(&p)
                })
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, model, learners, linear_model);
criterion_main!(benches);
