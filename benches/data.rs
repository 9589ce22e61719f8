//! Load + validate + engineer a 100,000-row generated inventory: the data half of training.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use indexmap::IndexMap;
use nexusml::ml::features::{FeatureConfig, Mode};
use nexusml::ml::synth::{write_inventory, SynthOptions};
use nexusml::ml::table::read_csv;
use nexusml::ml::validate::{validate, ValidationRules};
use std::path::Path;
use std::time::Duration;

const ROWS: usize = 100_000;

fn rules() -> ValidationRules {
    ValidationRules {
        required_columns: vec!["equipment_tag".into(), "manufacturer".into(), "model".into()],
        critical_columns: vec![],
        numeric_columns: vec!["service_life".into()],
        max_invalid_numeric: 0.10,
        min_rows: 50,
        target_columns: vec![
            "category_name".into(),
            "uniformat_code".into(),
            "mcaa_system_category".into(),
        ],
        min_labelled_rows: 20,
        strict: true,
        ..Default::default()
    }
}

fn data(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("inventory.csv");
    write_inventory(&SynthOptions { rows: ROWS, seed: 42 }, &csv).unwrap();
    let features = FeatureConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dags/features.toml"
    )))
    .unwrap();
    let rules = rules();
    let schema = IndexMap::new();

    let mut group = c.benchmark_group("data_100k_rows");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("load", |b| b.iter(|| read_csv(&csv, &schema).unwrap()));
    let frame = read_csv(&csv, &schema).unwrap().frame;
    group.bench_function("validate", |b| b.iter(|| validate(&frame, &rules)));
    group.bench_function("engineer", |b| {
        b.iter(|| features.apply(&frame, Mode::Train).unwrap())
    });
    group.bench_function("load_validate_engineer", |b| {
        b.iter(|| {
            let frame = read_csv(&csv, &schema).unwrap().frame;
            let report = validate(&frame, &rules);
            assert!(report.valid);
            features.apply(&frame, Mode::Train).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, data);
criterion_main!(benches);
