//! What a running node sees: its declared inputs and outputs, and nothing else.

use super::blackboard::{Blackboard, Slot};
use crate::graph::{Node, Pipeline};
use crate::ops::short_type_name;
use std::any::{Any, TypeId};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

/// The view of the run given to an op.
pub struct NodeContext<'a> {
    pub(crate) pipeline: &'a Pipeline,
    pub(crate) node: &'a Node,
    pub(crate) board: &'a Blackboard,
    pub(crate) run_dir: &'a Path,
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) written: Vec<usize>,
}

impl<'a> NodeContext<'a> {
    pub fn node_id(&self) -> &str {
        &self.node.id
    }

    pub fn op_name(&self) -> &str {
        &self.node.op_name
    }

    /// The run's directory, where ops write their files (reports, plots, metrics).
    pub fn run_dir(&self) -> &Path {
        self.run_dir
    }

    /// The pipeline's parameters after overrides.
    pub fn params(&self) -> &toml::Table {
        &self.pipeline.params
    }

    /// True once the user asked to stop (Ctrl-C); long ops may check it and return early.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// A seed for this node derived from `base` and the node id, so two nodes given the
    /// same base seed still draw different streams, identically on every run.
    pub fn derive_seed(&self, base: u64, labels: &[&[u8]]) -> u64 {
        let mut all: Vec<&[u8]> = Vec::with_capacity(labels.len() + 1);
        all.push(self.node.id.as_bytes());
        all.extend_from_slice(labels);
        crate::ml::rng::derive_seed(base, &all)
    }

    /// The value of a declared input.
    pub fn input<T: Any + Send + Sync>(&self, port: &str) -> Result<Arc<T>, PortError> {
        match self.input_slot(port)? {
            Some((artifact, slot)) => downcast(self.node, port, artifact, slot),
            None => Err(self.undeclared("input", port)),
        }
    }

    /// The value of an optional input, or `None` when the pipeline leaves it unbound.
    pub fn input_opt<T: Any + Send + Sync>(&self, port: &str) -> Result<Option<Arc<T>>, PortError> {
        match self.input_slot(port)? {
            Some((artifact, slot)) => downcast(self.node, port, artifact, slot).map(Some),
            None => Ok(None),
        }
    }

    /// Every bound input as (port, artifact name, untyped value): for ops that accept any.
    pub fn inputs_untyped(&self) -> Vec<(&str, &str, Slot)> {
        self.node
            .inputs
            .iter()
            .filter_map(|b| {
                let slot = self.board.get(b.artifact)?.clone();
                Some((
                    b.port.as_str(),
                    self.pipeline.artifacts[b.artifact].name.as_str(),
                    slot,
                ))
            })
            .collect()
    }

    /// Names of the bound output ports.
    pub fn output_ports(&self) -> Vec<&str> {
        self.node.outputs.iter().map(|b| b.port.as_str()).collect()
    }

    /// Write a declared output. A port the op declares but the pipeline leaves unbound
    /// swallows the value.
    pub fn output<T: Any + Send + Sync>(&mut self, port: &str, value: T) -> Result<(), PortError> {
        let Some(binding) = self.node.outputs.iter().find(|b| b.port == port) else {
            if self.node.discarded_outputs.iter().any(|p| p == port) {
                return Ok(());
            }
            return Err(self.undeclared("output", port));
        };
        if let Some(expected) = binding.ty.type_id() {
            if expected != TypeId::of::<T>() {
                return Err(PortError::WrongOutputType {
                    node: self.node.id.clone(),
                    port: port.into(),
                    expected: binding.ty.name(),
                    actual: short_type_name(std::any::type_name::<T>()),
                });
            }
        }
        let slot = Slot {
            value: Arc::new(value),
            type_name: std::any::type_name::<T>(),
        };
        if !self.board.put(binding.artifact, slot) {
            return Err(PortError::WrittenTwice {
                node: self.node.id.clone(),
                port: port.into(),
            });
        }
        self.written.push(binding.artifact);
        Ok(())
    }

    fn input_slot(&self, port: &str) -> Result<Option<(&str, &Slot)>, PortError> {
        let Some(binding) = self.node.inputs.iter().find(|b| b.port == port) else {
            return Ok(None);
        };
        let artifact = self.pipeline.artifacts[binding.artifact].name.as_str();
        match self.board.get(binding.artifact) {
            Some(slot) => Ok(Some((artifact, slot))),
            None => Err(PortError::NotReady {
                node: self.node.id.clone(),
                port: port.into(),
                artifact: artifact.into(),
            }),
        }
    }

    fn undeclared(&self, direction: &'static str, port: &str) -> PortError {
        let bindings = if direction == "input" {
            &self.node.inputs
        } else {
            &self.node.outputs
        };
        let declared: Vec<&str> = bindings.iter().map(|b| b.port.as_str()).collect();
        PortError::Undeclared {
            node: self.node.id.clone(),
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
    node: &Node,
    port: &str,
    artifact: &str,
    slot: &Slot,
) -> Result<Arc<T>, PortError> {
    Arc::clone(&slot.value)
        .downcast::<T>()
        .map_err(|_| PortError::WrongInputType {
            node: node.id.clone(),
            port: port.into(),
            artifact: artifact.into(),
            expected: short_type_name(std::any::type_name::<T>()),
            actual: short_type_name(slot.type_name),
        })
}
