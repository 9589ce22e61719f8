//! Running a pipeline: the walker, the executor chain (in-process, timeout, retry,
//! caching), node keys and reasons, the typed blackboard, the node context, `dag status`,
//! and the run report.

mod blackboard;
mod caching;
mod context;
mod executor;
pub mod interrupt;
pub mod key;
mod memo;
pub mod reason;
mod record;
mod report;
mod retry;
mod run;
pub mod session;
pub mod status;
mod timeout;
pub mod walker;

pub use crate::clock::format_ms;
pub use blackboard::Blackboard;
pub use caching::Caching;
pub use executor::{error_chain, Executed, Executor, InProcess, Job, Observer, Silent};
pub use reason::Reason;
pub use record::{Attempt, ClusterJob, NodeRecord, NodeStatus, RunStatus};
pub use report::{
    create_run_dir, edge_reports, file_default_params, record_run, text_default_params, AttemptReport,
    EdgeReport, NodeReport, RunReport, NEXUSML_VERSION,
};
pub use retry::Retry;
pub use run::{check_jobs, max_jobs, run, run_on, run_sequential, EngineError, RunOptions, RunOutcome};
pub use session::{Finished, Hooks, Request, RunSetup, Runner, Session, SessionError, Source};
pub use timeout::Timeout;
