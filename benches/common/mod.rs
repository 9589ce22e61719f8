//! The generated inventory the benches share.

use nexusml::ml::features::{FeatureConfig, Mode};
use nexusml::ml::synth::{write_inventory, SynthOptions};
use nexusml::ml::table::read_csv;
use polars::prelude::DataFrame;
use std::path::Path;

/// A generated inventory of `rows` rows (seed 42), engineered as the train pipeline does:
/// (feature config, engineered table, size of the CSV in bytes).
pub fn engineered_inventory(rows: usize) -> (FeatureConfig, DataFrame, u64) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("inventory.csv");
    write_inventory(&SynthOptions { rows, seed: 42 }, &csv).unwrap();
    let features = FeatureConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dags/features.toml"
    )))
    .unwrap();
    let raw = read_csv(&csv, &Default::default()).unwrap().frame;
    let (engineered, _) = features.apply(&raw, Mode::Train).unwrap();
    (features, engineered, std::fs::metadata(&csv).unwrap().len())
}
