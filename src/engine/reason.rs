//! Why a node ran, was answered from the store, or did not run: a typed list built by the
//! engine and rendered to text in one place (the summary table, the log, `report.json`,
//! `dag status`), in the manner of cargo's `DirtyReason`.

use std::fmt;

/// One reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    // Why a node had to run.
    /// The store has no result this node ever computed.
    NeverRun,
    /// `--force`.
    Forced,
    /// The key it last ran with is known, but that result was collected.
    LastResultGone,
    OpChanged {
        from: String,
        to: String,
    },
    OpVersionChanged {
        op: String,
        from: String,
        to: String,
    },
    SchemaChanged,
    /// A `with` value written as `"${name}"` (or a parameter an op reads) changed.
    ParamChanged {
        name: String,
        from: String,
        to: String,
    },
    /// A literal `with` value changed (dotted path).
    ConfigChanged {
        path: String,
        from: String,
        to: String,
    },
    /// An input's content changed.
    InputChanged {
        artifact: String,
        producer: String,
    },
    InputAdded {
        port: String,
    },
    InputRemoved {
        port: String,
    },
    FileChanged {
        path: String,
    },
    FileNew {
        path: String,
    },
    /// The key differs in something not named above (e.g. the node id of a seeded op).
    KeyChanged,
    /// The stored entry for the current key is incomplete.
    OutputMissing {
        port: String,
    },
    OutputFileMissing {
        path: String,
    },
    OutputFileUnrestorable {
        path: String,
    },
    /// `dag status`: an input's producer is not fresh, so this input will be recomputed.
    InputRecomputed {
        artifact: String,
        producer: String,
    },

    // Why it did not run.
    /// Answered from the store; `restored` files were put back.
    Cached {
        restored: usize,
    },
    UpstreamFailed {
        node: String,
    },
    /// Fail-fast: this node failed first.
    Stopped {
        by: String,
    },
    Interrupted,
    NotSelected,
    NeverReady,

    // Retries.
    /// This attempt of `of` failed (its first line of error) and the node was tried again.
    Retried {
        attempt: u32,
        of: u32,
        error: String,
    },
    /// The node failed and was not tried again, though its policy allows retries.
    NotRetried {
        why: String,
    },

    // Cluster jobs.
    /// Ran as this job of a cluster scheduler.
    RanAsJob {
        scheduler: &'static str,
        id: String,
    },
    /// Its job was cancelled: because this upstream node failed, or (`None`) because
    /// the run was interrupted.
    JobCancelled {
        scheduler: &'static str,
        id: String,
        upstream: Option<String>,
    },
}

impl Reason {
    /// Reasons that explain a run (as opposed to a cache hit or a skip).
    pub fn is_cause(&self) -> bool {
        !matches!(
            self,
            Reason::Cached { .. }
                | Reason::UpstreamFailed { .. }
                | Reason::Stopped { .. }
                | Reason::Interrupted
                | Reason::NotSelected
                | Reason::NeverReady
                | Reason::JobCancelled { .. }
                | Reason::Retried { .. }
                | Reason::NotRetried { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NeverRun => f.write_str("never run"),
            Reason::Forced => f.write_str("forced"),
            Reason::LastResultGone => f.write_str("its last result is no longer in the store"),
            Reason::OpChanged { from, to } => write!(f, "op changed: {from} → {to}"),
            Reason::OpVersionChanged { op, from, to } => {
                write!(f, "op `{op}` version changed ({from} → {to})")
            }
            Reason::SchemaChanged => f.write_str("store schema changed"),
            Reason::ParamChanged { name, from, to } => write!(f, "param `{name}` {from}→{to}"),
            Reason::ConfigChanged { path, from, to } => write!(f, "`with.{path}` {from}→{to}"),
            Reason::InputChanged { artifact, producer } => {
                write!(f, "input `{artifact}` changed (from `{producer}`)")
            }
            Reason::InputAdded { port } => write!(f, "input `{port}` added"),
            Reason::InputRemoved { port } => write!(f, "input `{port}` removed"),
            Reason::FileChanged { path } => write!(f, "file {path} changed"),
            Reason::FileNew { path } => write!(f, "file {path} is new to this node"),
            Reason::KeyChanged => f.write_str("key changed"),
            Reason::OutputMissing { port } => write!(f, "output `{port}` missing from the store"),
            Reason::OutputFileMissing { path } => write!(f, "output file {path} missing"),
            Reason::OutputFileUnrestorable { path } => write!(f, "output file {path} cannot be restored"),
            Reason::InputRecomputed { artifact, producer } => {
                write!(f, "input `{artifact}` is recomputed (`{producer}` is not fresh)")
            }
            Reason::Cached { restored: 0 } => f.write_str("cached"),
            Reason::Cached { restored } => write!(f, "cached; {restored} file(s) restored"),
            Reason::UpstreamFailed { node } => write!(f, "upstream node `{node}` failed"),
            Reason::Stopped { by } => write!(
                f,
                "not started: `{by}` failed (fail-fast; --keep-going runs independent branches)"
            ),
            Reason::Interrupted => f.write_str("not started: the run was interrupted"),
            Reason::NotSelected => f.write_str("not selected"),
            Reason::NeverReady => f.write_str("never became ready"),
            Reason::Retried { attempt, of, error } => {
                write!(f, "attempt {attempt}/{of} failed ({error}), retried")
            }
            Reason::NotRetried { why } => write!(f, "not retried: {why}"),
            Reason::RanAsJob { scheduler, id } => write!(f, "as {scheduler} job {id}"),
            Reason::JobCancelled {
                scheduler,
                id,
                upstream: Some(node),
            } => write!(
                f,
                "upstream node `{node}` failed ({scheduler} job {id} cancelled)"
            ),
            Reason::JobCancelled {
                scheduler,
                id,
                upstream: None,
            } => write!(f, "interrupted ({scheduler} job {id} cancelled)"),
        }
    }
}

/// Reasons joined as one note: `ran: param `trees` 200→300; input `model` changed …` for
/// a node that ran, the reason itself otherwise; `None` when there is nothing to say.
pub fn note(ran: bool, reasons: &[Reason]) -> Option<String> {
    if reasons.is_empty() {
        return None;
    }
    let text: Vec<String> = reasons.iter().map(Reason::to_string).collect();
    Some(match (ran, &reasons[0]) {
        // `ran as Slurm job 41`
        (true, Reason::RanAsJob { .. }) => format!("ran {}", text.join("; ")),
        (true, _) => format!("ran: {}", text.join("; ")),
        (false, _) => text.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_as_before() {
        let r = vec![
            Reason::ParamChanged {
                name: "trees".into(),
                from: "200".into(),
                to: "300".into(),
            },
            Reason::InputChanged {
                artifact: "train_set".into(),
                producer: "split".into(),
            },
        ];
        assert_eq!(
            note(true, &r).unwrap(),
            "ran: param `trees` 200→300; input `train_set` changed (from `split`)"
        );
        assert_eq!(
            note(false, &[Reason::Cached { restored: 2 }]).unwrap(),
            "cached; 2 file(s) restored"
        );
        assert_eq!(note(true, &[]), None);
        assert_eq!(
            note(
                true,
                &[
                    Reason::NeverRun,
                    Reason::Retried {
                        attempt: 1,
                        of: 3,
                        error: "command exited with code 75".into()
                    }
                ]
            )
            .unwrap(),
            "ran: never run; attempt 1/3 failed (command exited with code 75), retried"
        );
        assert!(!Reason::Cached { restored: 0 }.is_cause());
        assert!(Reason::Forced.is_cause());
    }
}
