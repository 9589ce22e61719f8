//! Running a pipeline: the typed blackboard, the node context, the scheduler and the report.

mod blackboard;
mod context;
mod report;
mod scheduler;

pub use blackboard::{Blackboard, Slot};
pub use context::{NodeContext, PortError};
pub use report::{create_run_dir, format_ms, NodeReport, RunReport};
pub use scheduler::{
    error_chain, run, run_on, run_sequential, EngineError, NodeRecord, NodeStatus, Observer, RunOptions,
    RunOutcome, RunStatus, Silent,
};
