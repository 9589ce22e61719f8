//! Typed indices: a node's place in `Pipeline::nodes` and an artifact's in
//! `Pipeline::artifacts`, so neither can be passed, stored or returned as the other (or
//! as a count). A node index indexes any per-node table (`nodes`, a mask, the records,
//! the walker's counters) directly: there are many. An artifact index indexes
//! `Pipeline::artifacts` and the blackboard only, so it never indexes a per-node table.

use super::Artifact;
use std::ops::{Index, IndexMut};

/// A node of a pipeline: `pipeline.nodes[v]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIx(pub usize);

/// An artifact of a pipeline: `pipeline.artifacts[a]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactIx(pub usize);

impl NodeIx {
    /// Every node of a pipeline of `count` nodes, in file order.
    pub fn all(count: usize) -> impl DoubleEndedIterator<Item = NodeIx> + ExactSizeIterator {
        (0..count).map(NodeIx)
    }
}

impl<T> Index<NodeIx> for [T] {
    type Output = T;
    fn index(&self, v: NodeIx) -> &T {
        &self[v.0]
    }
}

impl<T> IndexMut<NodeIx> for [T] {
    fn index_mut(&mut self, v: NodeIx) -> &mut T {
        &mut self[v.0]
    }
}

impl<T> Index<NodeIx> for Vec<T> {
    type Output = T;
    fn index(&self, v: NodeIx) -> &T {
        &self[v.0]
    }
}

impl<T> IndexMut<NodeIx> for Vec<T> {
    fn index_mut(&mut self, v: NodeIx) -> &mut T {
        &mut self[v.0]
    }
}

impl Index<ArtifactIx> for Vec<Artifact> {
    type Output = Artifact;
    fn index(&self, a: ArtifactIx) -> &Artifact {
        &self[a.0]
    }
}

impl IndexMut<ArtifactIx> for Vec<Artifact> {
    fn index_mut(&mut self, a: ArtifactIx) -> &mut Artifact {
        &mut self[a.0]
    }
}
