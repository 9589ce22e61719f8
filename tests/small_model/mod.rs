//! A small trained model for the model-file tests: a generated inventory, the repository's
//! feature config, a few trees. Trains in well under a second.
#![allow(dead_code)]

use nexusml::ml::features::{FeatureConfig, Mode};
use nexusml::ml::forest::ForestConfig;
use nexusml::ml::model::{EquipmentModel, Featurizer};
use nexusml::ml::synth::{generate_csv, SynthOptions};
use nexusml::ml::table::parse_csv;
use nexusml::ml::text::TfidfConfig;
use polars::prelude::DataFrame;
use std::collections::HashMap;
use std::path::Path;

/// A generated raw inventory.
pub fn inventory(rows: usize, seed: u64) -> DataFrame {
    let mut csv = Vec::new();
    generate_csv(&SynthOptions { rows, seed }, &mut csv).expect("generate");
    parse_csv(&csv, Path::new("inventory.csv"), &Default::default())
        .expect("parse")
        .frame
}

/// A model of `n_trees` trees per forest, trained on `rows` generated rows.
pub fn train(rows: usize, n_trees: usize) -> EquipmentModel {
    let raw = inventory(rows, 11);
    let features = FeatureConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dags/features.toml"))
        .expect("features.toml");
    let (engineered, _) = features.apply(&raw, Mode::Train).expect("engineer");
    let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).expect("tfidf");
    let cfg = ForestConfig {
        n_trees,
        ..ForestConfig::default()
    };
    EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).expect("train")
}

/// One record to predict.
pub fn record() -> HashMap<String, String> {
    [
        ("description", "Centrifugal chiller, water cooled"),
        ("equipment_tag", "CH-1"),
        ("manufacturer", "Trane"),
        ("model", "CVHF"),
        ("building_name", "Main"),
        ("service_life", "20"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A linear model (the default linear SVM, calibrated; a code book) trained on `rows`
/// generated rows.
pub fn train_linear(rows: usize) -> EquipmentModel {
    use nexusml::ml::learner::LearnerConfig;
    let raw = inventory(rows, 11);
    let features = FeatureConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dags/features.toml"))
        .expect("features.toml");
    let (engineered, _) = features.apply(&raw, Mode::Train).expect("engineer");
    let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).expect("tfidf");
    EquipmentModel::train(
        &engineered,
        &features,
        featurizer,
        &x,
        &LearnerConfig::Linear(Default::default()),
        &Default::default(),
        &|| {},
    )
    .expect("train")
}
