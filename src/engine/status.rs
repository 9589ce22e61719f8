//! `dag status` and `dag run --dry-run`: for each node, whether the store holds its
//! result for the current pipeline, parameters and files (FRESH), holds an older one
//! (STALE, with the causes), or none (MISSING). Nothing runs and nothing is written.

use super::blackboard::Blackboard;
use super::memo::Memo;
use super::reason::Reason;
use crate::graph::Pipeline;
use crate::store::Store;

/// A node's state against the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Freshness {
    Fresh,
    Stale,
    Missing,
}

/// One node's state and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeState {
    pub id: String,
    pub state: Freshness,
    pub causes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The state of every node, in pipeline order.
pub fn status(pipeline: &Pipeline, store: &Store) -> Vec<NodeState> {
    let memo = Memo::new(store, pipeline, std::path::Path::new(""));
    let board = Blackboard::new(pipeline.artifacts.len());
    let mut states: Vec<Option<NodeState>> = vec![None; pipeline.nodes.len()];
    for v in pipeline.topological_order(&vec![true; pipeline.nodes.len()]) {
        let node = &pipeline.nodes[v];
        let (parts, unknown) = memo.key_or_guess(v, &board);
        let mut causes = Vec::new();
        let mut detail = None;
        if unknown.is_empty() {
            match memo.peek(v, &parts.key) {
                Ok(digests) => {
                    for (a, d) in digests {
                        board.set_digest(a, d);
                    }
                    states[v] = Some(NodeState {
                        id: node.id.clone(),
                        state: Freshness::Fresh,
                        causes: Vec::new(),
                        key: Some(parts.key.hex()),
                    });
                    continue;
                }
                Err(d) => detail = d,
            }
        }
        let mut reasons: Vec<Reason> = unknown
            .iter()
            .map(|&a| {
                let art = &pipeline.artifacts[a];
                Reason::InputRecomputed {
                    artifact: art.name.clone(),
                    producer: pipeline.nodes[art.producer].id.clone(),
                }
            })
            .collect();
        let explained = memo.explain(v, &parts);
        let never = explained.first() == Some(&Reason::NeverRun);
        // A guessed input digest says nothing: the upstream cause is listed above.
        let guessed = |r: &Reason| match r {
            Reason::InputChanged { artifact, .. } => {
                unknown.iter().any(|&a| pipeline.artifacts[a].name == *artifact)
            }
            Reason::KeyChanged => !unknown.is_empty(),
            _ => false,
        };
        reasons.extend(explained.into_iter().filter(|r| !guessed(r)));
        reasons.extend(detail);
        causes.extend(reasons.iter().map(Reason::to_string));
        states[v] = Some(NodeState {
            id: node.id.clone(),
            state: if never {
                Freshness::Missing
            } else {
                Freshness::Stale
            },
            causes,
            key: unknown.is_empty().then(|| parts.key.hex()),
        });
    }
    states
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.unwrap_or_else(|| NodeState {
                id: pipeline.nodes[i].id.clone(),
                state: Freshness::Missing,
                causes: vec!["unreachable".into()],
                key: None,
            })
        })
        .collect()
}

/// `FRESH  load`, `STALE  train  param `trees` 200→300`, as lines.
pub fn render(states: &[NodeState]) -> String {
    let w = states.iter().map(|s| s.id.chars().count()).max().unwrap_or(4);
    let mut out = String::new();
    for s in states {
        let word = match s.state {
            Freshness::Fresh => "FRESH",
            Freshness::Stale => "STALE",
            Freshness::Missing => "MISSING",
        };
        out.push_str(&format!("{word:<7}  {:<w$}  {}\n", s.id, s.causes.join("; ")));
    }
    let count = |f: Freshness| states.iter().filter(|s| s.state == f).count();
    out.push_str(&format!(
        "{} fresh, {} stale, {} missing\n",
        count(Freshness::Fresh),
        count(Freshness::Stale),
        count(Freshness::Missing)
    ));
    out
}
