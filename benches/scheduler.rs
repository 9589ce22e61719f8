//! Scheduler overhead and parallel speed-up.
//!
//! * no-op DAGs of 1k and 10k nodes, shaped as a chain, a wide fan-out/fan-in and a
//!   layered lattice (each node reads 4 artifacts of the previous layer): time per node
//!   is the engine's own cost (ready counting, spawning, blackboard, records);
//! * two independent CPU-bound branches with 1 and 2 worker threads: the speed-up.
//!
//! With `NEXUSML_LATTICE_RUNS=n` it runs the 10k lattice `n` times on one worker and
//! stops, no criterion: for counting the work per node, which the clock of a shared
//! machine does not show steadily (run it under `valgrind --tool=cachegrind` with n = 1
//! and n = 3; half the difference is one run).

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use nexusml::engine::{run_on, RunOptions, RunStatus, Silent};
use nexusml::graph::Pipeline;
use nexusml::spec::PipelineSpec;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

fn header(name: &str) -> String {
    format!("[pipeline]\nname = \"{name}\"\n")
}

fn node(out: &mut String, id: usize, inputs: &[usize]) {
    let _ = write!(
        out,
        "[nodes.n{id}]\nop = \"util.noop\"\nout = {{ o = \"a{id}\" }}\n"
    );
    if !inputs.is_empty() {
        let ins: Vec<String> = inputs
            .iter()
            .enumerate()
            .map(|(k, i)| format!("i{k} = \"a{i}\""))
            .collect();
        let _ = writeln!(out, "in = {{ {} }}", ins.join(", "));
    }
}

fn chain(n: usize) -> String {
    let mut s = header("chain");
    for i in 0..n {
        let inputs: Vec<usize> = if i == 0 { Vec::new() } else { vec![i - 1] };
        node(&mut s, i, &inputs);
    }
    s
}

/// One source, n-2 independent middles, one sink reading all of them.
fn fan(n: usize) -> String {
    let mut s = header("fan");
    node(&mut s, 0, &[]);
    for i in 1..n - 1 {
        node(&mut s, i, &[0]);
    }
    let middles: Vec<usize> = (1..n - 1).collect();
    node(&mut s, n - 1, &middles);
    s
}

/// Layers of `width`; each node reads 4 nodes of the previous layer.
fn lattice(n: usize, width: usize) -> String {
    let mut s = header("lattice");
    for i in 0..n {
        let layer = i / width;
        let pos = i % width;
        let inputs: Vec<usize> = if layer == 0 {
            Vec::new()
        } else {
            let base = (layer - 1) * width;
            (0..4).map(|k| base + (pos + k * (width / 4)) % width).collect()
        };
        node(&mut s, i, &inputs);
    }
    s
}

fn build(text: &str) -> Pipeline {
    let spec = PipelineSpec::parse(text, Path::new("<bench>")).expect("bench pipeline parses");
    Pipeline::build(&spec, nexusml::ops::builtin()).expect("bench pipeline is valid")
}

fn overhead(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let opts = RunOptions {
        jobs: 2,
        ..RunOptions::new(std::env::temp_dir())
    };
    let mut group = c.benchmark_group("noop_dag");
    group.sample_size(20).measurement_time(Duration::from_secs(4));
    for &n in &[1_000usize, 10_000] {
        let shapes = [("chain", chain(n)), ("fan", fan(n)), ("lattice", lattice(n, 100))];
        for (shape, text) in &shapes {
            let pipeline = build(text);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(*shape, n), &pipeline, |b, p| {
                b.iter(|| {
                    let outcome = run_on(&pool, p, &opts, &Silent);
                    assert_eq!(outcome.status, RunStatus::Ok);
                })
            });
        }
    }
    group.finish();
}

fn speedup(c: &mut Criterion) {
    let text = format!(
        "{}[nodes.left]\nop = \"util.spin\"\nwith = {{ ms = 100 }}\n[nodes.right]\nop = \"util.spin\"\nwith = {{ ms = 100 }}\n",
        header("branches")
    );
    let pipeline = build(&text);
    let mut group = c.benchmark_group("cpu_branches_2x100ms");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for jobs in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().unwrap();
        let opts = RunOptions {
            jobs,
            ..RunOptions::new(std::env::temp_dir())
        };
        group.bench_function(BenchmarkId::new("jobs", jobs), |b| {
            b.iter(|| run_on(&pool, &pipeline, &opts, &Silent))
        });
    }
    group.finish();
}

/// `NEXUSML_LATTICE_RUNS=n`: the 10k lattice, `n` times, on one worker.
fn lattice_runs(n: usize) {
    let pipeline = build(&lattice(10_000, 100));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let opts = RunOptions {
        jobs: 1,
        ..RunOptions::new(std::env::temp_dir())
    };
    for _ in 0..n {
        assert_eq!(run_on(&pool, &pipeline, &opts, &Silent).status, RunStatus::Ok);
    }
}

criterion_group!(benches, overhead, speedup);

fn main() {
    match std::env::var("NEXUSML_LATTICE_RUNS") {
        Ok(n) => lattice_runs(n.parse().expect("NEXUSML_LATTICE_RUNS is a count")),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
