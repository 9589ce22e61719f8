//! The plan of a run: waves of nodes that can run together, and the critical path.

use super::{NodeIx, Pipeline};

/// Waves and critical path of the selected nodes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Wave `k` holds the nodes whose longest chain of selected predecessors has `k` nodes.
    /// Nodes of one wave never depend on each other.
    pub waves: Vec<Vec<NodeIx>>,
    /// The longest chain of dependent nodes (by `weights`, or by node count).
    pub critical_path: Vec<NodeIx>,
    /// The critical path's total weight.
    pub critical_weight: f64,
}

impl Pipeline {
    /// Indices of the selected nodes in an order where every node follows its predecessors.
    pub fn topological_order(&self, mask: &[bool]) -> Vec<NodeIx> {
        let n = self.nodes.len();
        let mut indegree: Vec<usize> = NodeIx::all(n)
            .map(|i| self.predecessors(i).iter().filter(|&&p| mask[p]).count())
            .collect();
        let mut ready: std::collections::BTreeSet<NodeIx> =
            NodeIx::all(n).filter(|&i| mask[i] && indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(v) = ready.pop_first() {
            order.push(v);
            for &w in self.successors(v) {
                if mask[w] {
                    indegree[w] -= 1;
                    if indegree[w] == 0 {
                        ready.insert(w);
                    }
                }
            }
        }
        order
    }

    /// Plan the selected nodes. `weights[i]` (e.g. a previous run's durations) ranks the
    /// critical path; without it every node weighs 1.
    pub fn plan(&self, mask: &[bool], weights: Option<&[f64]>) -> Plan {
        let n = self.nodes.len();
        let order = self.topological_order(mask);
        let weight = |i: NodeIx| weights.map_or(1.0, |w| w[i]);
        let mut level = vec![0usize; n];
        let mut best = vec![0.0f64; n];
        let mut via: Vec<Option<NodeIx>> = vec![None; n];
        for &v in &order {
            let mut lvl = 0;
            let mut acc = 0.0;
            for &p in self.predecessors(v).iter().filter(|&&p| mask[p]) {
                lvl = lvl.max(level[p] + 1);
                if best[p] > acc || via[v].is_none() {
                    acc = best[p];
                    via[v] = Some(p);
                }
            }
            level[v] = lvl;
            best[v] = acc + weight(v);
        }
        let mut waves: Vec<Vec<NodeIx>> = Vec::new();
        for &v in &order {
            if waves.len() <= level[v] {
                waves.resize(level[v] + 1, Vec::new());
            }
            waves[level[v]].push(v);
        }
        for w in &mut waves {
            w.sort_unstable();
        }
        let end = order
            .iter()
            .copied()
            .max_by(|&a, &b| best[a].total_cmp(&best[b]).then(b.cmp(&a)));
        let mut critical_path = Vec::new();
        let mut cur = end;
        while let Some(v) = cur {
            critical_path.push(v);
            cur = via[v];
        }
        critical_path.reverse();
        Plan {
            waves,
            critical_weight: end.map_or(0.0, |e| best[e]),
            critical_path,
        }
    }
}
