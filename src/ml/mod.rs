//! Domain algorithms with no DAG in sight: random numbers, text features, forests, metrics.

pub mod rng;
pub mod synth;
