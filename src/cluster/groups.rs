//! Which nodes share a cluster job.
//!
//! A job costs seconds of scheduler start-up; most nodes run in milliseconds. So by
//! default (`--group auto`) a connected run of nodes that ask for nothing of their own is
//! fused into one job, run inside it by the ordinary walker on the job's CPUs; a node with
//! its own `resources` (the 64 GB training step) keeps a job of its own; nodes that say
//! `group = "name"` share one job whatever their place; and a family (a node written with
//! `matrix`) is one job array, a task per member. `--group none` gives every node its own
//! job (families stay arrays). Fusing never makes a job wait on itself: two nodes join
//! only when no path between them leaves the job.

use crate::graph::{NodeIx, Pipeline};
use crate::spec::Resources;
use std::collections::HashMap;

/// How nodes are put into jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    /// Fuse what gains nothing from a job of its own (the default).
    #[default]
    Auto,
    /// One job per node.
    None,
}

/// What a unit is submitted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitKind {
    /// One job running its nodes.
    Job,
    /// One job array, a task per member of this family (the nodes, by member index).
    Array { family: String },
}

/// One cluster submission: its nodes (in topological order), the units it waits for,
/// and what it asks of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// A name for job names and messages: the group's, the family's, or the nodes'.
    pub name: String,
    pub nodes: Vec<NodeIx>,
    /// Indices of the units it waits for (in the returned list).
    pub deps: Vec<usize>,
    pub resources: Resources,
    pub kind: UnitKind,
}

/// Grouping that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error(
        "group `{group}` would wait on itself: {path} leaves the group and comes back; take `{outside}` into \
         the group, or split it"
    )]
    NotContiguous {
        group: String,
        path: String,
        outside: String,
    },
    #[error("group `{group}`: `{a}` and `{b}` ask for different resources; one job has one set")]
    MixedResources { group: String, a: String, b: String },
}

/// The pipeline's nodes in `to_run` as cluster units, in an order where every unit
/// follows the units it waits for.
pub fn units(p: &Pipeline, to_run: &[bool], grouping: Grouping) -> Result<Vec<Unit>, GroupError> {
    let order = p.topological_order(to_run);
    // Unit of each node; fixed units first (explicit groups, families, own resources).
    let mut unit_of: Vec<Option<usize>> = vec![None; p.nodes.len()];
    let mut units: Vec<Unit> = Vec::new();
    let mut fusible: Vec<bool> = Vec::new();
    let mut named: HashMap<String, usize> = HashMap::new();
    for &v in &order {
        let node = &p.nodes[v];
        let key = match (&node.member, &node.group) {
            (Some(m), _) => Some(format!("family {}", m.family)),
            (None, Some(g)) if grouping == Grouping::Auto => Some(format!("group {g}")),
            _ => None,
        };
        let Some(key) = key else { continue };
        let u = *named.entry(key).or_insert_with(|| {
            units.push(Unit {
                name: node
                    .member
                    .as_ref()
                    .map(|m| m.family.clone())
                    .or_else(|| node.group.clone())
                    .unwrap_or_default(),
                nodes: Vec::new(),
                deps: Vec::new(),
                resources: node.resources.clone(),
                kind: match &node.member {
                    Some(m) => UnitKind::Array {
                        family: m.family.clone(),
                    },
                    None => UnitKind::Job,
                },
            });
            fusible.push(false);
            units.len() - 1
        });
        if units[u].resources != node.resources {
            return Err(GroupError::MixedResources {
                group: units[u].name.clone(),
                a: p.nodes[units[u].nodes[0]].id.clone(),
                b: node.id.clone(),
            });
        }
        units[u].nodes.push(v);
        unit_of[v] = Some(u);
    }
    for &v in &order {
        if unit_of[v].is_some() {
            continue;
        }
        let node = &p.nodes[v];
        let preds: Vec<NodeIx> = p.predecessors(v).iter().copied().filter(|&q| to_run[q]).collect();
        let joinable = grouping == Grouping::Auto && !node.own_resources;
        let target = joinable
            .then(|| {
                preds.iter().filter_map(|&q| unit_of[q]).find(|&u| {
                    fusible[u]
                        && units[u].resources == node.resources
                        && !preds
                            .iter()
                            .filter_map(|&q| unit_of[q])
                            .filter(|&w| w != u)
                            .any(|w| reaches(&units, &unit_of, p, to_run, u, w))
                })
            })
            .flatten();
        let u = match target {
            Some(u) => u,
            None => {
                units.push(Unit {
                    name: node.id.clone(),
                    nodes: Vec::new(),
                    deps: Vec::new(),
                    resources: node.resources.clone(),
                    kind: UnitKind::Job,
                });
                fusible.push(joinable);
                units.len() - 1
            }
        };
        // Other fusible jobs that feed `v` join it too (two roots meeting at `v`), when no
        // path runs between the two jobs (checked before `v` joins: through `v` they would
        // always meet).
        if target.is_some() {
            for &q in &preds {
                let Some(w) = unit_of[q] else { continue };
                if w == u
                    || !fusible[w]
                    || units[w].resources != units[u].resources
                    || reaches(&units, &unit_of, p, to_run, u, w)
                    || reaches(&units, &unit_of, p, to_run, w, u)
                {
                    continue;
                }
                let moved = std::mem::take(&mut units[w].nodes);
                for &x in &moved {
                    unit_of[x] = Some(u);
                }
                units[u].nodes.extend(moved);
                fusible[w] = false;
            }
        }
        units[u].nodes.push(v);
        unit_of[v] = Some(u);
    }
    // Jobs emptied by a merge go; node order within a job stays topological.
    let keep: Vec<usize> = (0..units.len()).filter(|&u| !units[u].nodes.is_empty()).collect();
    let mut renumber = vec![usize::MAX; units.len()];
    for (i, &u) in keep.iter().enumerate() {
        renumber[u] = i;
    }
    let rank: Vec<usize> = {
        let mut r = vec![0; p.nodes.len()];
        for (i, &v) in order.iter().enumerate() {
            r[v] = i;
        }
        r
    };
    let mut units: Vec<Unit> = keep.iter().map(|&u| units[u].clone()).collect();
    for unit in &mut units {
        unit.nodes.sort_by_key(|&v| rank[v]);
        // A job fused from nodes is named by its first node (an explicit group, an array
        // keep their names).
        if unit.kind == UnitKind::Job && p.nodes[unit.nodes[0]].group.is_none() {
            unit.name = p.nodes[unit.nodes[0]].id.clone();
        }
    }
    for u in unit_of.iter_mut().flatten() {
        *u = renumber[*u];
    }
    // Dependencies between units, then a check that they form no cycle (an explicit
    // group that is not contiguous).
    for &v in &order {
        let u = unit_of[v].expect("every node to run has a unit");
        for &q in p.predecessors(v).iter().filter(|&&q| to_run[q]) {
            let w = unit_of[q].expect("every node to run has a unit");
            if w != u && !units[u].deps.contains(&w) {
                units[u].deps.push(w);
            }
        }
    }
    // A fused job is named by its first and last node: `load-to-save`.
    for unit in &mut units {
        if unit.kind == UnitKind::Job && unit.nodes.len() > 1 && unit.name == p.nodes[unit.nodes[0]].id {
            let last = unit.nodes[unit.nodes.len() - 1];
            unit.name = format!("{}-to-{}", unit.name, p.nodes[last].id);
        }
    }
    let order = unit_order(&units).map_err(|cycle| not_contiguous(p, &units, &unit_of, to_run, cycle))?;
    // Renumber in topological order.
    let mut position = vec![0; units.len()];
    for (i, &u) in order.iter().enumerate() {
        position[u] = i;
    }
    let mut sorted: Vec<Unit> = order.iter().map(|&u| units[u].clone()).collect();
    for unit in &mut sorted {
        for d in &mut unit.deps {
            *d = position[*d];
        }
        unit.deps.sort_unstable();
    }
    Ok(sorted)
}

/// Whether unit `to` is reachable from unit `from` through the edges of the nodes placed
/// so far.
fn reaches(
    units: &[Unit],
    unit_of: &[Option<usize>],
    p: &Pipeline,
    to_run: &[bool],
    from: usize,
    to: usize,
) -> bool {
    let mut seen = vec![false; units.len()];
    let mut stack = vec![from];
    seen[from] = true;
    while let Some(u) = stack.pop() {
        for &v in &units[u].nodes {
            for &w in p.successors(v).iter().filter(|&&w| to_run[w]) {
                let Some(x) = unit_of[w] else { continue };
                if x == to {
                    return true;
                }
                if !seen[x] {
                    seen[x] = true;
                    stack.push(x);
                }
            }
        }
    }
    false
}

/// Units in dependency order, or a unit on a cycle.
fn unit_order(units: &[Unit]) -> Result<Vec<usize>, usize> {
    let mut pending: Vec<usize> = units.iter().map(|u| u.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for (u, unit) in units.iter().enumerate() {
        for &d in &unit.deps {
            dependents[d].push(u);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..units.len()).filter(|&u| pending[u] == 0).collect();
    let mut order = Vec::with_capacity(units.len());
    while let Some(u) = ready.pop_first() {
        order.push(u);
        for &w in &dependents[u] {
            pending[w] -= 1;
            if pending[w] == 0 {
                ready.insert(w);
            }
        }
    }
    match (0..units.len()).find(|&u| pending[u] > 0) {
        None => Ok(order),
        Some(u) => Err(u),
    }
}

/// Name the path that leaves a group on a cycle and comes back.
fn not_contiguous(
    p: &Pipeline,
    units: &[Unit],
    unit_of: &[Option<usize>],
    to_run: &[bool],
    on_cycle: usize,
) -> GroupError {
    // Find a group unit on the cycle: from one of its nodes, a path through other units
    // back to it.
    let start = (0..units.len())
        .filter(|&u| units[u].kind == UnitKind::Job && units[u].nodes.len() > 1)
        .find(|&u| {
            units[u]
                .deps
                .iter()
                .any(|&d| reaches(units, unit_of, p, to_run, u, d))
        })
        .unwrap_or(on_cycle);
    let group = &units[start];
    // Breadth first from the group's nodes to a node of the group, outside it in between.
    let mut prev: HashMap<NodeIx, NodeIx> = HashMap::new();
    let mut queue: std::collections::VecDeque<NodeIx> = std::collections::VecDeque::new();
    for &v in &group.nodes {
        for &w in p
            .successors(v)
            .iter()
            .filter(|&&w| to_run[w] && unit_of[w] != Some(start))
        {
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    while let Some(v) = queue.pop_front() {
        for &w in p.successors(v).iter().filter(|&&w| to_run[w]) {
            if unit_of[w] == Some(start) {
                let mut path = vec![w, v];
                let mut cur = v;
                while let Some(&q) = prev.get(&cur) {
                    path.push(q);
                    if unit_of[q] == Some(start) {
                        break;
                    }
                    cur = q;
                }
                path.reverse();
                let outside = p.nodes[path[1]].id.clone();
                let path = path
                    .iter()
                    .map(|&x| format!("`{}`", p.nodes[x].id))
                    .collect::<Vec<_>>()
                    .join(" → ");
                return GroupError::NotContiguous {
                    group: group.name.clone(),
                    path,
                    outside,
                };
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    GroupError::NotContiguous {
        group: group.name.clone(),
        path: "a path".into(),
        outside: "the node between".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{ArtifactType, NoConfig, Op, OpError, OpSpec, Registry};
    use crate::spec::PipelineSpec;

    struct Nothing;
    impl Op for Nothing {
        fn run(&self, _: &mut crate::op::NodeContext<'_>) -> Result<(), OpError> {
            Ok(())
        }
    }

    fn pipeline(nodes: &str) -> Pipeline {
        let mut r = Registry::empty();
        r.register(
            OpSpec::new("t.any", "", |_: NoConfig| Ok(Nothing))
                .any_inputs(ArtifactType::ANY)
                .any_outputs(ArtifactType::ANY),
        );
        let registry: &'static Registry = Box::leak(Box::new(r));
        let spec = PipelineSpec::parse(
            &format!("[pipeline]\nname = \"g\"\n{nodes}"),
            std::path::Path::new("g.toml"),
        )
        .unwrap();
        Pipeline::build(&spec, registry).unwrap()
    }

    fn names(p: &Pipeline, units: &[Unit]) -> Vec<Vec<String>> {
        units
            .iter()
            .map(|u| u.nodes.iter().map(|&v| p.nodes[v].id.clone()).collect())
            .collect()
    }

    /// load → prep → train (own resources) → evaluate → save, and report beside.
    const TRAIN: &str = r#"
[nodes.load]
op = "t.any"
out = { t = "raw" }
[nodes.prep]
op = "t.any"
in = { t = "raw" }
out = { t = "ready" }
[nodes.train]
op = "t.any"
in = { t = "ready" }
out = { m = "model" }
resources = { mem = "64G" }
[nodes.evaluate]
op = "t.any"
in = { m = "model", t = "ready" }
out = { r = "metrics" }
[nodes.save]
op = "t.any"
in = { m = "model", r = "metrics" }
"#;

    #[test]
    fn connected_nodes_share_a_job_and_a_node_with_its_own_resources_keeps_one() {
        let p = pipeline(TRAIN);
        let all = vec![true; p.nodes.len()];
        let u = units(&p, &all, Grouping::Auto).unwrap();
        assert_eq!(
            names(&p, &u),
            vec![vec!["load", "prep"], vec!["train"], vec!["evaluate", "save"]]
        );
        assert_eq!(u[0].name, "load-to-prep");
        assert_eq!(u[1].deps, vec![0]);
        assert_eq!(u[2].deps, vec![0, 1], "evaluate reads `ready` too");
        let none = units(&p, &all, Grouping::None).unwrap();
        assert_eq!(none.len(), 5);
        // Only what must run: a cached prefix is not submitted.
        let mut to_run = all.clone();
        to_run[0] = false;
        to_run[1] = false;
        assert_eq!(
            names(&p, &units(&p, &to_run, Grouping::Auto).unwrap()),
            vec![vec!["train"], vec!["evaluate", "save"]]
        );
    }

    #[test]
    fn fusing_never_makes_a_job_wait_on_itself() {
        // a → b (own resources) → c, and a → c: c may not join a's job.
        let p = pipeline(
            r#"
[nodes.a]
op = "t.any"
out = { x = "x" }
[nodes.b]
op = "t.any"
in = { x = "x" }
out = { y = "y" }
resources = { cpus = 2 }
[nodes.c]
op = "t.any"
in = { x = "x", y = "y" }
"#,
        );
        let u = units(&p, &[true; 3], Grouping::Auto).unwrap();
        assert_eq!(names(&p, &u), vec![vec!["a"], vec!["b"], vec!["c"]]);
    }

    #[test]
    fn explicit_groups_must_be_contiguous_and_alike() {
        let grouped = TRAIN
            .replace("[nodes.load]\n", "[nodes.load]\ngroup = \"ends\"\n")
            .replace("[nodes.save]\n", "[nodes.save]\ngroup = \"ends\"\n");
        let p = pipeline(&grouped);
        let e = units(&p, &[true; 5], Grouping::Auto).unwrap_err();
        assert_eq!(
            e.to_string(),
            "group `ends` would wait on itself: `load` → `prep` → `train` → `save` leaves the group and comes \
             back; take `prep` into the group, or split it"
        );
        let mixed = TRAIN
            .replace("[nodes.prep]\n", "[nodes.prep]\ngroup = \"g\"\n")
            .replace("[nodes.train]\n", "[nodes.train]\ngroup = \"g\"\n");
        let e = units(&pipeline(&mixed), &[true; 5], Grouping::Auto).unwrap_err();
        assert!(matches!(e, GroupError::MixedResources { .. }), "{e}");
    }

    #[test]
    fn a_family_is_one_array() {
        let p = pipeline(
            r#"
[nodes.src]
op = "t.any"
out = { d = "data" }
[nodes.cv]
op = "t.any"
matrix = { fold = 4 }
in = { d = "data" }
out = { s = "score" }
[nodes.best]
op = "t.any"
in = { s = "score[*]" }
"#,
        );
        let u = units(&p, &vec![true; p.nodes.len()], Grouping::Auto).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u[1].kind, UnitKind::Array { family: "cv".into() });
        assert_eq!(u[1].nodes.len(), 4);
        assert_eq!(u[2].deps, vec![1]);
    }
}
