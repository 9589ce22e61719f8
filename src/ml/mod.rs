//! Domain algorithms with no DAG in sight: random numbers, tables, validation, features,
//! splits, text features, forests, metrics, the model file, synthetic inventories.

pub mod bundle;
pub mod features;
pub mod forest;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod scale;
pub mod search;
pub mod sparse;
pub mod split;
pub mod synth;
pub mod table;
pub mod text;
pub mod validate;
