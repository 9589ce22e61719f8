//! The typed store of one run's artifacts.

use crate::graph::ArtifactIx;
use crate::op::Slot;
use crate::store::Digest;
use std::any::Any;
use std::sync::{Arc, OnceLock};

/// One write-once slot per artifact, indexed like `Pipeline::artifacts`.
///
/// Each artifact has exactly one producer, so a slot is written once and then only read:
/// `OnceLock` gives that without a lock on the read path. Beside each value sits its
/// content digest, known as soon as the producer finished or was found in the store: a
/// cached producer's value stays in the store until a node that runs needs it.
pub struct Blackboard {
    slots: Vec<OnceLock<Slot>>,
    digests: Vec<OnceLock<Digest>>,
}

impl Blackboard {
    pub fn new(artifacts: usize) -> Self {
        Blackboard {
            slots: (0..artifacts).map(|_| OnceLock::new()).collect(),
            digests: (0..artifacts).map(|_| OnceLock::new()).collect(),
        }
    }

    pub fn get(&self, artifact: ArtifactIx) -> Option<&Slot> {
        self.slots.get(artifact.0).and_then(OnceLock::get)
    }

    /// Store a value; `false` if the slot was already written.
    pub(crate) fn put(&self, artifact: ArtifactIx, slot: Slot) -> bool {
        self.slots[artifact.0].set(slot).is_ok()
    }

    pub fn digest(&self, artifact: ArtifactIx) -> Option<Digest> {
        self.digests.get(artifact.0).and_then(OnceLock::get).copied()
    }

    pub(crate) fn set_digest(&self, artifact: ArtifactIx, d: Digest) {
        let _ = self.digests[artifact.0].set(d);
    }

    /// A typed read of a value in memory, for callers outside a node.
    pub fn get_as<T: Any + Send + Sync>(&self, artifact: ArtifactIx) -> Option<Arc<T>> {
        self.get(artifact)
            .and_then(|s| Arc::clone(&s.value).downcast::<T>().ok())
    }
}
