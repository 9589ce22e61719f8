//! The model on a 20,000-row generated inventory (the size of the scikit-learn
//! comparison): training (TF-IDF + every forest), batch prediction, single-record latency;
//! the same three for the shipped linear learner.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nexusml::ml::codes::CodesConfig;
use nexusml::ml::features::FeatureConfig;
use nexusml::ml::forest::{ForestConfig, Learner};
use nexusml::ml::learner::LearnerConfig;
use nexusml::ml::linear::LinearConfig;
use nexusml::ml::model::{EquipmentModel, Featurizer, TOP_K};
use nexusml::ml::split::{split, TestSize};
use nexusml::ml::table::take_rows;
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

/// The shipped linear learner (`dags/train.toml`'s defaults: L2-loss SVM, C = 1,
/// balanced, tol 0.1, temperature-calibrated on leave-one-out values, targets that group
/// the rows alike answered by one model) on the 20,000-row inventory: training (TF-IDF +
/// every target), batch prediction of all 20,000 rows (the top 3 labels of every target;
/// from the matrix, and with the TF-IDF of the rows included), and one record (its
/// TF-IDF included).
fn linear_model(c: &mut Criterion) {
    let rows = std::env::var("NEXUSML_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (features, all, _) = common::engineered_inventory(rows);
    let s = split(all.height(), TestSize::Fraction(0.3), 42, None).unwrap();
    let train = take_rows(&all, &s.train).unwrap();
    let tfidf = TfidfConfig::default();
    let learner = LearnerConfig::Linear(LinearConfig::default());
    let codes = CodesConfig::default();
    let fit = |featurizer: Featurizer, x: &nexusml::ml::sparse::Csr| {
        EquipmentModel::train(&train, &features, featurizer, x, &learner, &codes, &|| {}).unwrap()
    };
    let mut group = c.benchmark_group(format!("linear_{rows}_rows"));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(train.height() as u64));
    group.bench_function("train_tfidf_and_all_targets", |b| {
        b.iter(|| {
            let (featurizer, x) = Featurizer::fit(&train, &features, &tfidf).unwrap();
            fit(featurizer, &x)
        })
    });
    let (featurizer, x) = Featurizer::fit(&train, &features, &tfidf).unwrap();
    let model = fit(featurizer, &x);
    let x_all = model.featurizer.transform(&all).unwrap();
    group.throughput(Throughput::Elements(all.height() as u64));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("predict_batch_top3", |b| b.iter(|| model.rank(&x_all, TOP_K)));
    group.bench_function("tfidf_and_predict_batch_top3", |b| {
        b.iter(|| {
            let x = model.featurizer.transform(&all).unwrap();
            model.rank(&x, TOP_K)
        })
    });
    group.throughput(Throughput::Elements(1));
    let record: HashMap<String, String> = [
        (
            "description",
            "Heat Exchanger for Chilled Water system with Plate and Frame design",
        ),
        ("equipment_tag", "HX-14"),
        ("manufacturer", "SWEP"),
        ("model", "B320Tx140"),
        ("service_life", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    group.bench_function("predict_one_record", |b| b.iter(|| model.predict_record(&record)));
    group.finish();
}

criterion_group!(benches, model, learners, linear_model);
criterion_main!(benches);
