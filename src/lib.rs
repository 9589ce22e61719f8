//! nexusml: facility-equipment classification pipelines as a declarative, parallel DAG.
//!
//! A pipeline is a TOML file ([`spec`]) compiled into a validated graph ([`graph`]) of
//! nodes, each running an op ([`ops`]); the [`engine`] runs the graph on a rayon pool with
//! a typed blackboard between nodes. [`ml`] holds the algorithms, free of any DAG.

pub mod atomic_file;
pub mod charts;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod engine;
pub mod fsx;
pub mod graph;
pub mod ml;
pub mod op;
pub mod ops;
pub mod orchestrator;
pub mod raster;
pub mod report;
pub mod spec;
pub mod store;
pub mod suggest;
pub mod textpos;
