//! The engine's side of a running node: it lets the op see its declared inputs and
//! outputs only, checks types, and collects the outputs and files it writes. Outputs are
//! staged here and reach the write-once blackboard only when the op succeeded
//! ([`NodeCtx::commit`]), so a failed attempt leaves nothing behind for the next.

use super::blackboard::Blackboard;
use super::record::Written;
use crate::graph::{ArtifactIx, Node, Pipeline};
use crate::op::{short_type_name, NodeIo, PortError, Slot, WrittenFile};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A node's staged outputs.
pub(crate) type Staged = smallvec::SmallVec<[(ArtifactIx, Slot); 2]>;

pub(crate) struct NodeCtx<'a> {
    pub pipeline: &'a Pipeline,
    pub node: &'a Node,
    pub board: &'a Blackboard,
    pub run_dir: &'a Path,
    pub cancel: &'a AtomicBool,
    /// Outputs written so far, by artifact, not yet on the board (inline: most nodes
    /// write one or two, and every node stages).
    pub staged: Staged,
    pub files: Vec<WrittenFile>,
    /// Recomputing a lost value: outputs already on the board are kept, not an error.
    pub refill: bool,
    pub attempt: u32,
    /// The exit code of the program the op ran, if it told one.
    pub exit_code: Option<i32>,
}

impl NodeCtx<'_> {
    /// Stage `slot` for the output bound by `binding`, checking its type and that it is
    /// written once.
    fn stage(&mut self, binding: &crate::graph::Binding, slot: Slot) -> Result<(), PortError> {
        if let Some(expected) = binding.ty.type_id() {
            if expected != slot.type_id() {
                return Err(PortError::WrongOutputType {
                    node: self.node.id.clone(),
                    port: binding.port.clone(),
                    expected: binding.ty.name(),
                    actual: short_type_name(slot.type_name),
                });
            }
        }
        let twice = self.staged.iter().any(|(a, _)| *a == binding.artifact)
            || (!self.refill && self.board.get(binding.artifact).is_some());
        if twice {
            return Err(PortError::WrittenTwice {
                node: self.node.id.clone(),
                port: binding.port.clone(),
            });
        }
        self.staged.push((binding.artifact, slot));
        Ok(())
    }

    /// Put the staged outputs on the board; the artifacts written.
    pub fn commit(&mut self) -> Result<Written, PortError> {
        let mut written = Written::new();
        for (artifact, slot) in std::mem::take(&mut self.staged) {
            if !self.board.put(artifact, slot) && !self.refill {
                let port = self
                    .node
                    .outputs
                    .iter()
                    .find(|b| b.artifact == artifact)
                    .map_or_else(String::new, |b| b.port.clone());
                return Err(PortError::WrittenTwice {
                    node: self.node.id.clone(),
                    port,
                });
            }
            written.push(artifact);
        }
        Ok(written)
    }

    /// Whether every bound output is staged (checked without a list: every node asks).
    pub fn wrote_every_output(&self) -> bool {
        self.node
            .outputs
            .iter()
            .all(|b| self.staged.iter().any(|(a, _)| *a == b.artifact))
    }

    /// The artifacts staged so far.
    pub fn staged_artifacts(&self) -> Vec<ArtifactIx> {
        self.staged.iter().map(|(a, _)| *a).collect()
    }
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

    fn cancel_flag(&self) -> &AtomicBool {
        self.cancel
    }

    fn pipeline_dir(&self) -> Option<&Path> {
        self.pipeline.base_dir.as_deref()
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    fn set_exit_code(&mut self, code: i32) {
        self.exit_code = Some(code);
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
        self.stage(binding, slot)
    }

    fn put_every_output(&mut self, make: &mut dyn FnMut() -> Slot) -> Result<(), PortError> {
        // The node outlives this context: its bindings need no lookup and no copy.
        let node = self.node;
        for b in &node.outputs {
            self.stage(b, make())?;
        }
        Ok(())
    }

    fn record_file(&mut self, file: WrittenFile) {
        self.files.retain(|f| f.path != file.path);
        self.files.push(file);
    }
}
