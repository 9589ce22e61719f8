//! Domain algorithms with no DAG in sight: random numbers, tables, validation, features,
//! splits, text features, forests, linear learners, calibration, metrics, the model and
//! its file, the codes each category takes, predictions and the review queue, synthetic
//! inventories.

pub mod bundle;
pub mod calibration;
pub mod codes;
pub mod features;
pub mod forest;
pub mod learner;
pub mod linear;
pub mod mapping;
pub mod metrics;
pub mod model;
pub mod model_check;
pub mod model_v1;
pub mod provenance;
pub mod review;
pub mod rng;
pub mod scale;
pub mod search;
pub mod sparse;
pub mod split;
pub mod synth;
pub mod table;
pub mod text;
pub mod validate;

/// Tests' shared fixture: a generated inventory, the repository's feature config, and the
/// inventory engineered by it.
#[cfg(test)]
pub(crate) fn sample_inventory(
    rows: usize,
    seed: u64,
) -> (
    polars::prelude::DataFrame,
    features::FeatureConfig,
    polars::prelude::DataFrame,
) {
    let mut csv = Vec::new();
    synth::generate_csv(&synth::SynthOptions { rows, seed }, &mut csv).expect("generate");
    let raw = table::parse_csv(&csv, std::path::Path::new("sample.csv"), &Default::default())
        .expect("parse")
        .frame;
    let config = features::FeatureConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dags/features.toml"
    )))
    .expect("features.toml");
    let (engineered, _) = config.apply(&raw, features::Mode::Train).expect("engineer");
    (raw, config, engineered)
}
