//! The artifact store's costs.
//!
//! * `node_key`: computing one node's key (a lattice node with 4 inputs);
//! * `round_trip`: encode, store, read back (digest checked) and decode the 20,000-row
//!   engineered table (Arrow IPC) and the 20,000-row model (MessagePack); the blob
//!   sizes against the CSV are printed once;
//! * `store_overhead`: the 10,000-node no-op lattice with a cold store (every node runs
//!   and is stored) and a warm one (every node answered from the store).

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use nexusml::engine::{run_on, RunOptions, RunStatus, Silent};
use nexusml::graph::Pipeline;
use nexusml::ml::forest::ForestConfig;
use nexusml::ml::model::{EquipmentModel, Featurizer};
use nexusml::ml::text::TfidfConfig;
use nexusml::op::Artifact;
use nexusml::spec::PipelineSpec;
use nexusml::store::{Digest, Store};
use polars::prelude::DataFrame;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Layers of `width`; each node reads 4 nodes of the previous layer.
fn lattice(n: usize, width: usize) -> Pipeline {
    let mut s = String::from("[pipeline]\nname = \"lattice\"\n");
    for i in 0..n {
        let _ = write!(s, "[nodes.n{i}]\nop = \"util.noop\"\nout = {{ o = \"a{i}\" }}\n");
        let layer = i / width;
        if layer > 0 {
            let base = (layer - 1) * width;
            let ins: Vec<String> = (0..4)
                .map(|k| format!("i{k} = \"a{}\"", base + (i % width + k * (width / 4)) % width))
                .collect();
            let _ = writeln!(s, "in = {{ {} }}", ins.join(", "));
        }
    }
    let spec = PipelineSpec::parse(&s, Path::new("<bench>")).unwrap();
    Pipeline::build(&spec, nexusml::ops::builtin()).unwrap()
}

fn node_key(c: &mut Criterion) {
    let p = lattice(200, 100);
    let inputs: Vec<Digest> = (0..4u8).map(|i| Digest::of(&[i])).collect();
    c.bench_function("node_key/lattice_node_4_inputs", |b| {
        b.iter(|| nexusml::engine::key::node_key(&p, nexusml::graph::NodeIx(150), &inputs, &[]))
    });
}

fn round_trip(c: &mut Criterion) {
    let rows = std::env::var("NEXUSML_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let (features, engineered, csv_bytes) = common::engineered_inventory(rows);
    let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
    let model = EquipmentModel::fit(
        &engineered,
        &features,
        featurizer,
        &x,
        &ForestConfig::default(),
        &|| {},
    )
    .unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let table_blob = engineered.encode().unwrap();
    let model_blob = model.encode().unwrap();
    eprintln!(
        "{rows} rows: CSV {} bytes; engineered table {} columns as Arrow IPC {} bytes; model {} bytes",
        csv_bytes,
        engineered.width(),
        table_blob.len(),
        model_blob.len()
    );
    let mut group = c.benchmark_group(format!("store_round_trip_{rows}_rows"));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(table_blob.len() as u64));
    group.bench_function("engineered_table", |b| {
        b.iter(|| {
            let d = store.put_blob(&engineered.encode().unwrap()).unwrap();
            DataFrame::decode(&store.get_blob(&d).unwrap()).unwrap()
        })
    });
    group.throughput(Throughput::Bytes(model_blob.len() as u64));
    group.bench_function("model", |b| {
        b.iter(|| {
            let d = store.put_blob(&model.encode().unwrap()).unwrap();
            EquipmentModel::decode(&store.get_blob(&d).unwrap()).unwrap()
        })
    });
    group.throughput(Throughput::Bytes(model_blob.len() as u64));
    group.bench_function("blake3_model_bytes", |b| b.iter(|| Digest::of(&model_blob)));
    group.finish();
}

fn store_overhead(c: &mut Criterion) {
    let n = 10_000;
    let p = lattice(n, 100);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = |store: Arc<Store>| RunOptions {
        jobs: 2,
        store: Some(store),
        ..RunOptions::new(dir.path().join("run"))
    };
    let mut group = c.benchmark_group("store_overhead_lattice");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("cold_store", n), |b| {
        b.iter_batched(
            || {
                let d = tempfile::tempdir().unwrap();
                let s = Arc::new(Store::open(d.path()).unwrap());
                (d, s)
            },
            |(_d, s)| {
                let o = run_on(&pool, &p, &options(s), &Silent);
                assert_eq!(o.status, RunStatus::Ok);
            },
            BatchSize::PerIteration,
        )
    });
    let warm = Arc::new(Store::open(dir.path().join("warm")).unwrap());
    assert_eq!(
        run_on(&pool, &p, &options(warm.clone()), &Silent).status,
        RunStatus::Ok
    );
    group.bench_function(BenchmarkId::new("warm_store", n), |b| {
        b.iter(|| {
            let o = run_on(&pool, &p, &options(warm.clone()), &Silent);
            assert!(o
                .records
                .iter()
                .all(|r| r.status == nexusml::engine::NodeStatus::Cached));
        })
    });
    group.finish();
}

criterion_group!(benches, node_key, store_overhead, round_trip);
criterion_main!(benches);
