//! Running part of a pipeline: `--only`, `--from`, `--to`, `--tags`.

use super::{did_you_mean, Diagnostic, GraphError, NodeIx, Pipeline, Severity};

/// Which nodes to run. Every given filter must hold (they intersect); none given: all.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Exactly these nodes.
    pub only: Vec<String>,
    /// This node and everything downstream of it.
    pub from: Option<String>,
    /// This node and everything it needs.
    pub to: Option<String>,
    /// Nodes carrying any of these tags.
    pub tags: Vec<String>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        self.only.is_empty() && self.from.is_none() && self.to.is_none() && self.tags.is_empty()
    }
}

/// A node's neighbours one way: `Pipeline::successors` or `Pipeline::predecessors`.
type Neighbours = fn(&Pipeline, NodeIx) -> &[NodeIx];

impl Pipeline {
    /// Whether a node other than `reader` names `path`, or a directory holding it, in its
    /// `with` (a `csv.write` whose file a later `csv.load` reads, a `model.save` whose
    /// directory a `model.load` reads from): then the run makes it.
    fn written_by_another(&self, reader: &str, path: &std::path::Path) -> bool {
        // A node that reads the path too (model.save fingerprints the data file) is not
        // its writer.
        self.nodes
            .iter()
            .filter(|n| n.id != reader && !n.op.reads().iter().any(|r| r == path))
            .any(|n| {
                n.with
                    .values()
                    .filter_map(toml::Value::as_str)
                    .any(|v| !v.is_empty() && path.starts_with(v))
            })
    }

    /// Files the selected nodes read that do not exist (the data file of `--set
    /// data=missing.csv`, say): every one at once, before anything runs.
    pub fn check_input_files(&self, mask: &[bool]) -> Result<(), GraphError> {
        let errors: Vec<Diagnostic> = self
            .nodes
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m)
            .flat_map(|(node, _)| {
                node.op
                    .reads()
                    .into_iter()
                    .filter(|p| !p.exists() && !self.written_by_another(&node.id, p))
                    .map(move |p| Diagnostic {
                        severity: Severity::Error,
                        file: self.file.clone(),
                        node: Some(node.id.clone()),
                        message: format!("`{}` reads {}, which does not exist", node.op_name, p.display()),
                        help: Some(
                            "a path written in the pipeline file is relative to its directory; one given with \
                             --set or --params, to the working directory"
                                .into(),
                        ),
                    })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(GraphError::Invalid {
                file: self.file.clone(),
                errors,
            })
        }
    }

    /// The nodes a selection runs, as a mask over `self.nodes`. With the artifact store,
    /// what unselected nodes produce comes from it; without, [`Pipeline::check_closed`]
    /// says which producers must be selected too.
    pub fn select(&self, sel: &Selection) -> Result<Vec<bool>, GraphError> {
        let n = self.nodes.len();
        let mut errors = Vec::new();
        let mut mask = vec![true; n];
        // A node, or a family: every member.
        let mut lookup = |name: &str, flag: &str| -> Option<Vec<NodeIx>> {
            if let Some(i) = self.node_index(name) {
                return Some(vec![i]);
            }
            if let Some(&count) = self.families.get(name) {
                if count == 0 {
                    errors.push(self.diagnostic(
                        None,
                        format!("{flag} names family `{name}`, which has no members with these parameters"),
                        None,
                    ));
                    return None;
                }
                return Some(
                    self.indexed_nodes()
                        .filter(|(_, n)| n.member.as_ref().is_some_and(|m| m.family == name))
                        .map(|(i, _)| i)
                        .collect(),
                );
            }
            errors.push(
                self.diagnostic(
                    None,
                    format!("{flag} names unknown node `{name}`"),
                    did_you_mean(
                        name,
                        self.nodes
                            .iter()
                            .map(|n| n.id.as_str())
                            .chain(self.families.keys().map(String::as_str)),
                    ),
                ),
            );
            None
        };
        if !sel.only.is_empty() {
            let mut only = vec![false; n];
            for name in &sel.only {
                for i in lookup(name, "--only").into_iter().flatten() {
                    only[i] = true;
                }
            }
            and(&mut mask, &only);
        }
        // `--from`: what the named nodes reach downstream; `--to`: what reaches them.
        let ends: [(&Option<String>, &str, Neighbours); 2] = [
            (&sel.from, "--from", Pipeline::successors),
            (&sel.to, "--to", Pipeline::predecessors),
        ];
        for (name, flag, next) in ends {
            let Some(found) = name.as_deref().and_then(|name| lookup(name, flag)) else {
                continue;
            };
            let mut reach = vec![false; n];
            for i in found {
                or(&mut reach, &self.reachable(i, next));
            }
            and(&mut mask, &reach);
        }
        if !sel.tags.is_empty() {
            let known: std::collections::BTreeSet<&str> = self
                .nodes
                .iter()
                .flat_map(|n| n.tags.iter().map(String::as_str))
                .collect();
            for t in &sel.tags {
                if !known.contains(t.as_str()) {
                    errors.push(self.diagnostic(
                        None,
                        format!("--tags names tag `{t}`, which no node carries"),
                        did_you_mean(t, known.iter().copied()),
                    ));
                }
            }
            let tagged: Vec<bool> = self
                .nodes
                .iter()
                .map(|node| node.tags.iter().any(|t| sel.tags.contains(t)))
                .collect();
            and(&mut mask, &tagged);
        }
        if errors.is_empty() && !mask.iter().any(|&m| m) {
            errors.push(self.diagnostic(None, "the selection matches no node".into(), None));
        }
        if errors.is_empty() {
            Ok(mask)
        } else {
            Err(GraphError::Invalid {
                file: self.file.clone(),
                errors,
            })
        }
    }

    /// Without a store, a selected node cannot read an artifact whose producer is not
    /// selected: an error naming both.
    pub fn check_closed(&self, mask: &[bool]) -> Result<(), GraphError> {
        let mut errors = Vec::new();
        {
            for (i, node) in self.nodes.iter().enumerate().filter(|(i, _)| mask[*i]) {
                for b in &node.inputs {
                    let art = &self.artifacts[b.artifact];
                    if !mask[art.producer] {
                        let producer = &self.nodes[art.producer].id;
                        errors.push(self.diagnostic(
                            Some(&self.nodes[i].id),
                            format!(
                                "reads `{}`, produced by `{producer}`, which is not selected (and the run has no artifact store: --no-cache)",
                                art.name
                            ),
                            Some(format!("add `{producer}` to the selection")),
                        ));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(GraphError::Invalid {
                file: self.file.clone(),
                errors,
            })
        }
    }

    /// Nodes outside `mask` that some node in it depends on, directly or not.
    pub fn upstream_of(&self, mask: &[bool]) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeIx> = NodeIx::all(self.nodes.len()).filter(|&i| mask[i]).collect();
        while let Some(v) = stack.pop() {
            for &w in self.predecessors(v) {
                if !seen[w] && !mask[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    }

    fn reachable(&self, start: NodeIx, next: Neighbours) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(v) = stack.pop() {
            for &w in next(self, v) {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    }

    pub(crate) fn diagnostic(&self, node: Option<&str>, message: String, help: Option<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            node: node.map(str::to_string),
            message,
            help,
        }
    }
}

fn or(mask: &mut [bool], other: &[bool]) {
    for (m, o) in mask.iter_mut().zip(other) {
        *m |= *o;
    }
}

fn and(mask: &mut [bool], other: &[bool]) {
    for (m, o) in mask.iter_mut().zip(other) {
        *m &= *o;
    }
}
