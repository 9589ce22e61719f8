//! nexusml: facility-equipment classification pipelines as a declarative, parallel DAG.

pub mod ml;
