//! The op library: what a node can do.
//!
//! An op is registered by name with its ports (typed inputs and outputs) and the fields
//! of its configuration. Each family of ops lives in its own file; [`Registry::builtin`]
//! gathers them.

mod features;
mod io;
pub mod model;
mod plot;
mod registry;
mod split;
pub mod util;
mod validate;

pub use registry::{short_type_name, ArtifactType, ConfigField, Op, OpError, OpSpec, Port, Registry};
