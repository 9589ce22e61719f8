//! Running a pipeline: the typed blackboard, the node context, the executors, the
//! scheduler, node keys and the store's use, and the run report.

mod blackboard;
mod context;
mod executor;
pub mod key;
mod memo;
mod report;
mod scheduler;
pub mod status;

pub use crate::clock::format_ms;
pub use blackboard::Blackboard;
pub use executor::{error_chain, Executor, InProcess, Job, JobResult};
pub use report::{
    create_run_dir, edge_reports, file_default_params, record_run, text_default_params, EdgeReport,
    NodeReport, RunReport, NEXUSML_VERSION,
};
pub use scheduler::{
    check_jobs, max_jobs, run, run_on, run_sequential, EngineError, NodeRecord, NodeStatus, Observer,
    RunOptions, RunOutcome, RunStatus, Silent,
};
