//! Domain algorithms with no DAG in sight: random numbers, tables, validation, features,
//! splits, text features, forests, metrics.

pub mod bundle;
pub mod features;
pub mod metrics;
pub mod rng;
pub mod split;
pub mod table;
pub mod validate;
