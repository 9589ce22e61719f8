//! What a running op sees: its declared inputs and outputs, the run directory, and a
//! way to write files that the run records. The engine implements [`NodeIo`]; ops use
//! the typed methods on [`NodeContext`].

use super::short_type_name;
use std::any::{Any, TypeId};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A value on the blackboard with the name of its Rust type, for messages.
#[derive(Clone)]
pub struct Slot {
    pub value: Arc<dyn Any + Send + Sync>,
    pub type_name: &'static str,
}

impl Slot {
    pub fn type_id(&self) -> TypeId {
        (*self.value).type_id()
    }
}

/// A file a node wrote, with its bytes, for the run to record.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A node touched a port it did not declare, or a value of the wrong type.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("node `{node}` has no {direction} port `{port}` (declared: {declared})")]
    Undeclared {
        node: String,
        direction: &'static str,
        port: String,
        declared: String,
    },
    #[error("node `{node}` reads `{port}` as {expected}, but artifact `{artifact}` holds {actual}")]
    WrongInputType {
        node: String,
        port: String,
        artifact: String,
        expected: String,
        actual: String,
    },
    #[error("node `{node}` writes {actual} to `{port}`, which is declared as {expected}")]
    WrongOutputType {
        node: String,
        port: String,
        expected: String,
        actual: String,
    },
    #[error("node `{node}`: input `{port}` (artifact `{artifact}`) has no value yet")]
    NotReady {
        node: String,
        port: String,
        artifact: String,
    },
    #[error("node `{node}` wrote output `{port}` twice")]
    WrittenTwice { node: String, port: String },
}

/// The engine's side of a running node.
pub trait NodeIo {
    fn node_id(&self) -> &str;
    fn op_name(&self) -> &str;
    /// The run's directory, where ops write their files (reports, plots, metrics).
    fn run_dir(&self) -> &Path;
    /// The pipeline's parameters after overrides (ops that read them say so in their
    /// `OpSpec`, so the parameters enter their key).
    fn params(&self) -> &toml::Table;
    /// True once the user asked to stop (Ctrl-C) or the attempt ran out of time; long ops
    /// check it and return early.
    fn is_cancelled(&self) -> bool;
    /// The flag behind [`NodeIo::is_cancelled`], for work that checks it on other threads.
    fn cancel_flag(&self) -> &AtomicBool;
    /// The directory of the pipeline file (`None` for a pipeline that is no file).
    fn pipeline_dir(&self) -> Option<&Path>;
    /// Which attempt this is (1 for the first; more when the node retries).
    fn attempt(&self) -> u32;
    /// The exit code of the program the op ran, when it failed with one: retry conditions
    /// (`retry_on = [75]`) and the report read it.
    fn set_exit_code(&mut self, code: i32);
    /// A bound input's artifact name and value; `Ok(None)` when the port is unbound.
    fn input_slot(&self, port: &str) -> Result<Option<(&str, &Slot)>, PortError>;
    /// Every bound input as (port, artifact name, untyped value): for ops that accept any.
    fn inputs_untyped(&self) -> Vec<(&str, &str, Slot)>;
    /// Names of the bound ports in one direction (`"input"` or `"output"`).
    fn ports(&self, direction: &'static str) -> Vec<&str>;
    /// Write a declared output; the engine checks its type.
    fn put_output(&mut self, port: &str, slot: Slot) -> Result<(), PortError>;
    /// Note a file the op wrote, so a cached run can put it back.
    fn record_file(&mut self, file: WrittenFile);
    /// Write a value made by `make` to every bound output (ops that fill whatever outputs
    /// the pipeline gives them).
    fn put_every_output(&mut self, make: &mut dyn FnMut() -> Slot) -> Result<(), PortError>;
}

/// What ops receive: `fn run(&self, ctx: &mut NodeContext<'_>)`.
pub type NodeContext<'a> = dyn NodeIo + 'a;

impl<'a> dyn NodeIo + 'a {
    /// The value of a declared input.
    pub fn input<T: Any + Send + Sync>(&self, port: &str) -> Result<Arc<T>, PortError> {
        match self.input_slot(port)? {
            Some((artifact, slot)) => downcast(self.node_id(), port, artifact, slot),
            None => Err(self.undeclared("input", port)),
        }
    }

    /// The value of an optional input, or `None` when the pipeline leaves it unbound.
    pub fn input_opt<T: Any + Send + Sync>(&self, port: &str) -> Result<Option<Arc<T>>, PortError> {
        match self.input_slot(port)? {
            Some((artifact, slot)) => downcast(self.node_id(), port, artifact, slot).map(Some),
            None => Ok(None),
        }
    }

    /// Names of the bound output ports.
    pub fn output_ports(&self) -> Vec<&str> {
        self.ports("output")
    }

    /// Write a declared output. A port the op declares but the pipeline leaves unbound
    /// swallows the value.
    pub fn output<T: Any + Send + Sync>(&mut self, port: &str, value: T) -> Result<(), PortError> {
        self.put_output(
            port,
            Slot {
                value: Arc::new(value),
                type_name: std::any::type_name::<T>(),
            },
        )
    }

    /// Write `make()` to every bound output.
    pub fn output_every<T: Any + Send + Sync>(&mut self, make: impl Fn() -> T) -> Result<(), PortError> {
        self.put_every_output(&mut || Slot {
            value: Arc::new(make()),
            type_name: std::any::type_name::<T>(),
        })
    }

    /// Write a file atomically (creating its directory) and record it as this node's.
    pub fn write_file(&mut self, path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        crate::atomic_file::write_atomic(path, &bytes)?;
        self.record_file(WrittenFile {
            path: path.to_path_buf(),
            bytes,
        });
        Ok(())
    }

    /// Record a file the op already wrote by other means (a chart backend, a CSV writer).
    pub fn wrote_file(&mut self, path: &Path) -> std::io::Result<()> {
        let bytes = std::fs::read(path)?;
        self.record_file(WrittenFile {
            path: path.to_path_buf(),
            bytes,
        });
        Ok(())
    }

    fn undeclared(&self, direction: &'static str, port: &str) -> PortError {
        let declared = self.ports(direction);
        PortError::Undeclared {
            node: self.node_id().to_string(),
            direction,
            port: port.into(),
            declared: if declared.is_empty() {
                "none".into()
            } else {
                declared.join(", ")
            },
        }
    }
}

fn downcast<T: Any + Send + Sync>(
    node: &str,
    port: &str,
    artifact: &str,
    slot: &Slot,
) -> Result<Arc<T>, PortError> {
    Arc::clone(&slot.value)
        .downcast::<T>()
        .map_err(|_| PortError::WrongInputType {
            node: node.into(),
            port: port.into(),
            artifact: artifact.into(),
            expected: short_type_name(std::any::type_name::<T>()),
            actual: short_type_name(slot.type_name),
        })
}
