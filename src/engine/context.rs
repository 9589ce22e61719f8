//! The engine's side of a running node: it lets the op see its declared inputs and
//! outputs only, checks types, and collects the files it writes.

use super::blackboard::Blackboard;
use crate::graph::{Node, Pipeline};
use crate::op::{short_type_name, NodeIo, PortError, Slot, WrittenFile};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct NodeCtx<'a> {
    pub pipeline: &'a Pipeline,
    pub node: &'a Node,
    pub board: &'a Blackboard,
    pub run_dir: &'a Path,
    pub cancel: &'a AtomicBool,
    pub written: Vec<usize>,
    pub files: Vec<WrittenFile>,
    /// Recomputing a lost value: outputs already on the board are kept, not an error.
    pub refill: bool,
}

impl NodeIo for NodeCtx<'_> {
    fn node_id(&self) -> &str {
        &self.node.id
    }

    fn op_name(&self) -> &str {
        &self.node.op_name
    }

    fn run_dir(&self) -> &Path {
        self.run_dir
    }

    fn params(&self) -> &toml::Table {
        &self.pipeline.params
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
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

    fn inputs_untyped(&self) -> Vec<(&str, &str, Slot)> {
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

    fn ports(&self, direction: &'static str) -> Vec<&str> {
        let bindings = if direction == "input" {
            &self.node.inputs
        } else {
            &self.node.outputs
        };
        bindings.iter().map(|b| b.port.as_str()).collect()
    }

    fn put_output(&mut self, port: &str, slot: Slot) -> Result<(), PortError> {
        let Some(binding) = self.node.outputs.iter().find(|b| b.port == port) else {
            if self.node.discarded_outputs.iter().any(|p| p == port) {
                return Ok(());
            }
            let declared = self.ports("output");
            return Err(PortError::Undeclared {
                node: self.node.id.clone(),
                direction: "output",
                port: port.into(),
                declared: if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                },
            });
        };
        if let Some(expected) = binding.ty.type_id() {
            if expected != slot.type_id() {
                return Err(PortError::WrongOutputType {
                    node: self.node.id.clone(),
                    port: port.into(),
                    expected: binding.ty.name(),
                    actual: short_type_name(slot.type_name),
                });
            }
        }
        if !self.board.put(binding.artifact, slot) {
            if self.refill {
                return Ok(());
            }
            return Err(PortError::WrittenTwice {
                node: self.node.id.clone(),
                port: port.into(),
            });
        }
        self.written.push(binding.artifact);
        Ok(())
    }

    fn record_file(&mut self, file: WrittenFile) {
        self.files.retain(|f| f.path != file.path);
        self.files.push(file);
    }
}
