//! The typed store of one run's artifacts.

use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};

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

/// One write-once slot per artifact, indexed like `Pipeline::artifacts`.
///
/// Each artifact has exactly one producer, so a slot is written once and then only read:
/// `OnceLock` gives that without a lock on the read path.
pub struct Blackboard {
    slots: Vec<OnceLock<Slot>>,
}

impl Blackboard {
    pub fn new(artifacts: usize) -> Self {
        Blackboard {
            slots: (0..artifacts).map(|_| OnceLock::new()).collect(),
        }
    }

    pub fn get(&self, artifact: usize) -> Option<&Slot> {
        self.slots.get(artifact).and_then(OnceLock::get)
    }

    /// Store a value; `false` if the slot was already written.
    pub(crate) fn put(&self, artifact: usize, slot: Slot) -> bool {
        self.slots[artifact].set(slot).is_ok()
    }

    /// A typed read, for callers outside a node (the orchestrator, tests).
    pub fn get_as<T: Any + Send + Sync>(&self, artifact: usize) -> Option<Arc<T>> {
        self.get(artifact)
            .and_then(|s| Arc::clone(&s.value).downcast::<T>().ok())
    }
}
