//! The walker: visits every node of a DAG once all of its predecessors are settled, in
//! parallel on a rayon pool, in the manner of cargo's `DependencyQueue`.
//!
//! It knows ready counting, fail-fast, keep-going, cancel and root causes, and nothing
//! else: what visiting a node means (run an op, answer it from the store, submit a
//! cluster job) is the visitor's business. There is no dispatcher thread: the worker that
//! settles a node decrements its successors' pending counts, keeps one newly ready
//! successor for itself (a chain never waits for a hand-off) and spawns the others.

use crate::graph::NodeIx;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The index of a node in the graph being walked: a pipeline's [`NodeIx`], or a plain
/// position (a cluster run walks its job units).
pub trait Ix: Copy + Eq + Send + Sync + std::fmt::Debug {
    fn from_index(i: usize) -> Self;
    fn index(self) -> usize;
}

impl Ix for usize {
    fn from_index(i: usize) -> Self {
        i
    }
    fn index(self) -> usize {
        self
    }
}

impl Ix for NodeIx {
    fn from_index(i: usize) -> Self {
        NodeIx(i)
    }
    fn index(self) -> usize {
        self.0
    }
}

/// A graph the walker can walk: nodes `0..len`, edges both ways.
pub trait Dag: Sync {
    type Ix: Ix;
    fn node_count(&self) -> usize;
    fn predecessors(&self, v: Self::Ix) -> &[Self::Ix];
    fn successors(&self, v: Self::Ix) -> &[Self::Ix];
}

/// A DAG of positions `0..len` given by each one's predecessors: what a caller that has
/// no graph of its own walks (the Slurm runner's jobs, the tests' fakes).
pub struct ListDag {
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
}

impl ListDag {
    pub fn from_predecessors(preds: Vec<Vec<usize>>) -> Self {
        let mut succs = vec![Vec::new(); preds.len()];
        for (v, ps) in preds.iter().enumerate() {
            for &p in ps {
                succs[p].push(v);
            }
        }
        ListDag { preds, succs }
    }
}

impl Dag for ListDag {
    type Ix = usize;
    fn node_count(&self) -> usize {
        self.preds.len()
    }
    fn predecessors(&self, v: usize) -> &[usize] {
        &self.preds[v]
    }
    fn successors(&self, v: usize) -> &[usize] {
        &self.succs[v]
    }
}

/// What became of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walked<I = NodeIx> {
    /// Visited; `ok` is what the visitor answered.
    Visited { ok: bool },
    /// Not visited: this failed node is upstream of it.
    UpstreamFailed(I),
    /// Not started: fail-fast stopped the walk after this node failed.
    Stopped(I),
    /// Not started: the walk was cancelled.
    Interrupted,
    /// Not part of the walk (outside the mask).
    Unselected,
}

/// How to walk.
pub struct Walk<'a> {
    /// Nodes to visit; the others are `Unselected` and do not hold their successors back.
    pub mask: &'a [bool],
    /// After a failure, keep visiting every node that does not depend on it.
    pub keep_going: bool,
    /// Once set, nothing new starts.
    pub cancel: &'a AtomicBool,
}

const NONE: usize = usize::MAX;

impl<I: Ix> Walked<I> {
    /// A tag in the top three bits, the node index below (graphs are far smaller than 2^61).
    fn pack(self) -> u64 {
        let (tag, v) = match self {
            Walked::Unselected => (0, 0),
            Walked::Visited { ok: false } => (1, 0),
            Walked::Visited { ok: true } => (2, 0),
            Walked::UpstreamFailed(c) => (3, c.index()),
            Walked::Stopped(c) => (4, c.index()),
            Walked::Interrupted => (5, 0),
        };
        (tag << 61) | (v as u64 & ((1 << 61) - 1))
    }

    fn unpack(bits: u64) -> Walked<I> {
        let v = I::from_index((bits & ((1 << 61) - 1)) as usize);
        match bits >> 61 {
            1 => Walked::Visited { ok: false },
            2 => Walked::Visited { ok: true },
            3 => Walked::UpstreamFailed(v),
            4 => Walked::Stopped(v),
            5 => Walked::Interrupted,
            _ => Walked::Unselected,
        }
    }
}

/// Visiting a node: whether it succeeded.
pub type Visit<'a, I = NodeIx> = &'a (dyn Fn(I) -> bool + Sync);
/// What hears of each node's fate.
pub type Settled<'a, I = NodeIx> = &'a (dyn Fn(I, Walked<I>) + Sync);

struct State<'a, D: Dag> {
    dag: &'a D,
    walk: &'a Walk<'a>,
    visit: Visit<'a, D::Ix>,
    settled: Settled<'a, D::Ix>,
    /// Per node, side by side: a settled node touches one place per successor.
    nodes: Vec<NodeState>,
    /// Fail-fast: the first failure.
    stopped_by: AtomicUsize,
}

/// One node's walk state.
struct NodeState {
    /// Predecessors in the walk not settled yet.
    pending: AtomicUsize,
    /// The failed node its skip traces back to.
    root_cause: AtomicUsize,
    /// Its fate, packed (see [`Walked::pack`]): one atomic store, no lock.
    outcome: AtomicU64,
}

/// Walk `dag` on `pool`. `visit(v)` runs node `v` and answers whether it succeeded;
/// `settled(v, what)` is told of every masked node's fate, visited or not, before its
/// successors are released. Returns each node's fate, indexed like the DAG.
pub fn walk<D: Dag>(
    pool: &rayon::ThreadPool,
    dag: &D,
    walk: &Walk<'_>,
    visit: Visit<'_, D::Ix>,
    settled: Settled<'_, D::Ix>,
) -> Vec<Walked<D::Ix>> {
    let state = State::new(dag, walk, visit, settled);
    let roots: Vec<D::Ix> = (0..dag.node_count())
        .filter(|&v| walk.mask[v] && state.nodes[v].pending.load(Ordering::Relaxed) == 0)
        .map(D::Ix::from_index)
        .collect();
    pool.scope(|scope| {
        for root in roots {
            let state = &state;
            scope.spawn(move |scope| state.drive(scope, root));
        }
    });
    state.into_outcome()
}

/// Walk `dag` on the calling thread, one node after another in `order` (which must list
/// every masked node after its masked predecessors): the `--legacy` path.
pub fn walk_in_order<D: Dag>(
    dag: &D,
    order: &[D::Ix],
    walk: &Walk<'_>,
    visit: Visit<'_, D::Ix>,
    settled: Settled<'_, D::Ix>,
) -> Vec<Walked<D::Ix>> {
    let state = State::new(dag, walk, visit, settled);
    for &v in order {
        // `order` already lists every node after its predecessors.
        let _ = state.settle(v, &|_| {});
    }
    state.into_outcome()
}

impl<'a, D: Dag> State<'a, D> {
    fn new(dag: &'a D, walk: &'a Walk<'a>, visit: Visit<'a, D::Ix>, settled: Settled<'a, D::Ix>) -> Self {
        let n = dag.node_count();
        State {
            dag,
            walk,
            visit,
            settled,
            nodes: (0..n)
                .map(|v| NodeState {
                    pending: AtomicUsize::new(
                        dag.predecessors(D::Ix::from_index(v))
                            .iter()
                            .filter(|p| walk.mask[p.index()])
                            .count(),
                    ),
                    root_cause: AtomicUsize::new(NONE),
                    outcome: AtomicU64::new(Walked::<D::Ix>::Unselected.pack()),
                })
                .collect(),
            stopped_by: AtomicUsize::new(NONE),
        }
    }

    /// Settle `v`, then go on with one of the successors it made ready.
    fn drive<'s>(&'s self, scope: &rayon::Scope<'s>, mut v: D::Ix) {
        loop {
            let spawn = |other: D::Ix| scope.spawn(move |scope| self.drive(scope, other));
            match self.settle(v, &spawn) {
                Some(w) => v = w,
                None => return,
            }
        }
    }

    /// Visit `v` or decide why not; record it. Returns the first successor that became
    /// ready and hands the others to `also_ready` (no list per node: this is the walker's
    /// hot path).
    fn settle(&self, v: D::Ix, also_ready: &dyn Fn(D::Ix)) -> Option<D::Ix> {
        let what = self.decide(v);
        let ok = matches!(what, Walked::Visited { ok: true });
        let cause = match what {
            Walked::Visited { ok: true } => NONE,
            Walked::Visited { ok: false } => v.index(),
            Walked::UpstreamFailed(c) => c.index(),
            // Stopped or interrupted: downstream nodes are stopped for the same reason.
            Walked::Stopped(c) => c.index(),
            Walked::Interrupted | Walked::Unselected => NONE,
        };
        if what == (Walked::Visited { ok: false }) && !self.walk.keep_going {
            let _ = self
                .stopped_by
                .compare_exchange(NONE, v.index(), Ordering::AcqRel, Ordering::Acquire);
        }
        self.nodes[v.index()]
            .outcome
            .store(what.pack(), Ordering::Release);
        (self.settled)(v, what);
        let mut first = None;
        for &w in self.dag.successors(v) {
            if !self.walk.mask[w.index()] {
                continue;
            }
            if !ok && cause != NONE && matches!(what, Walked::Visited { .. } | Walked::UpstreamFailed(_)) {
                let _ = self.nodes[w.index()].root_cause.compare_exchange(
                    NONE,
                    cause,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            if self.nodes[w.index()].pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                match first {
                    None => first = Some(w),
                    Some(_) => also_ready(w),
                }
            }
        }
        first
    }

    fn decide(&self, v: D::Ix) -> Walked<D::Ix> {
        if self.walk.cancel.load(Ordering::Relaxed) {
            return Walked::Interrupted;
        }
        let cause = self.nodes[v.index()].root_cause.load(Ordering::Acquire);
        if cause != NONE {
            return Walked::UpstreamFailed(D::Ix::from_index(cause));
        }
        let by = self.stopped_by.load(Ordering::Acquire);
        if by != NONE {
            return Walked::Stopped(D::Ix::from_index(by));
        }
        Walked::Visited { ok: (self.visit)(v) }
    }

    fn into_outcome(self) -> Vec<Walked<D::Ix>> {
        self.nodes
            .into_iter()
            .map(|node| Walked::unpack(node.outcome.into_inner()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
    }

    /// 0 → 1 → 2, and 3 on its own, 3 → 4.
    fn two_branches() -> ListDag {
        ListDag::from_predecessors(vec![vec![], vec![0], vec![1], vec![], vec![3]])
    }

    fn run(
        g: &ListDag,
        jobs: usize,
        keep_going: bool,
        fails: &[usize],
        cancel_after: Option<usize>,
    ) -> Vec<Walked<usize>> {
        let cancel = AtomicBool::new(false);
        let mask = vec![true; g.node_count()];
        let visited = AtomicUsize::new(0);
        let w = Walk {
            mask: &mask,
            keep_going,
            cancel: &cancel,
        };
        let visit = |v: usize| {
            if cancel_after.is_some_and(|k| visited.fetch_add(1, Ordering::SeqCst) + 1 >= k) {
                cancel.store(true, Ordering::SeqCst);
            }
            !fails.contains(&v)
        };
        if jobs == 0 {
            let order: Vec<usize> = (0..g.node_count()).collect();
            walk_in_order(g, &order, &w, &visit, &|_, _| {})
        } else {
            walk(&pool(jobs), g, &w, &visit, &|_, _| {})
        }
    }

    #[test]
    fn a_fate_packs_and_unpacks_to_itself() {
        for w in [
            Walked::Unselected,
            Walked::Visited { ok: false },
            Walked::Visited { ok: true },
            Walked::UpstreamFailed(0),
            Walked::UpstreamFailed(123_456),
            Walked::Stopped(7),
            Walked::Interrupted,
        ] {
            assert_eq!(Walked::unpack(w.pack()), w);
        }
    }

    #[test]
    fn every_node_is_visited_after_its_predecessors() {
        // A lattice: each node of a layer reads every node of the layer before.
        let layers = 20;
        let width = 5;
        let mut preds = Vec::new();
        for l in 0..layers {
            for _ in 0..width {
                preds.push(if l == 0 {
                    vec![]
                } else {
                    ((l - 1) * width..l * width).collect()
                });
            }
        }
        let g = ListDag::from_predecessors(preds);
        let done: Vec<AtomicBool> = (0..g.node_count()).map(|_| AtomicBool::new(false)).collect();
        let cancel = AtomicBool::new(false);
        let mask = vec![true; g.node_count()];
        let w = Walk {
            mask: &mask,
            keep_going: false,
            cancel: &cancel,
        };
        let out = walk(
            &pool(4),
            &g,
            &w,
            &|v| {
                assert!(
                    g.predecessors(v).iter().all(|&p| done[p].load(Ordering::SeqCst)),
                    "node {v} ran early"
                );
                done[v].store(true, Ordering::SeqCst);
                true
            },
            &|_, _| {},
        );
        assert!(out.iter().all(|w| *w == Walked::Visited { ok: true }));
    }

    #[test]
    fn fail_fast_stops_new_starts_and_names_the_root_cause() {
        for jobs in [0, 1, 4] {
            let g = two_branches();
            let out = run(&g, jobs, false, &[0], None);
            assert_eq!(out[0], Walked::Visited { ok: false });
            assert_eq!(out[1], Walked::UpstreamFailed(0));
            assert_eq!(
                out[2],
                Walked::UpstreamFailed(0),
                "the root cause, not the skipped parent"
            );
            // The other branch either ran before the failure or was stopped by it.
            for v in [3, 4] {
                assert!(
                    matches!(out[v], Walked::Visited { ok: true } | Walked::Stopped(0)),
                    "jobs {jobs}, node {v}: {:?}",
                    out[v]
                );
            }
        }
        // In file order on one thread, node 3 comes after the failure: stopped.
        let out = run(&two_branches(), 0, false, &[0], None);
        assert_eq!(out[3], Walked::Stopped(0));
        assert_eq!(out[4], Walked::Stopped(0));
    }

    #[test]
    fn keep_going_runs_every_independent_branch() {
        for jobs in [0, 1, 4] {
            let out = run(&two_branches(), jobs, true, &[1], None);
            assert_eq!(out[0], Walked::Visited { ok: true });
            assert_eq!(out[1], Walked::Visited { ok: false });
            assert_eq!(out[2], Walked::UpstreamFailed(1));
            assert_eq!(out[3], Walked::Visited { ok: true });
            assert_eq!(out[4], Walked::Visited { ok: true });
        }
    }

    #[test]
    fn cancel_starts_nothing_new() {
        let out = run(&two_branches(), 0, false, &[], Some(1));
        assert_eq!(out[0], Walked::Visited { ok: true });
        assert!(out[1..].iter().all(|w| *w == Walked::Interrupted), "{out:?}");
    }

    #[test]
    fn unselected_nodes_do_not_hold_successors_back() {
        let g = two_branches();
        let cancel = AtomicBool::new(false);
        let mask = vec![false, true, true, false, false];
        let w = Walk {
            mask: &mask,
            keep_going: false,
            cancel: &cancel,
        };
        let out = walk(&pool(2), &g, &w, &|_| true, &|_, _| {});
        assert_eq!(
            out,
            vec![
                Walked::Unselected,
                Walked::Visited { ok: true },
                Walked::Visited { ok: true },
                Walked::Unselected,
                Walked::Unselected
            ]
        );
    }

    #[test]
    fn settled_hears_of_every_masked_node_once() {
        let g = two_branches();
        let cancel = AtomicBool::new(false);
        let mask = vec![true; 5];
        let heard: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
        let w = Walk {
            mask: &mask,
            keep_going: false,
            cancel: &cancel,
        };
        walk(&pool(3), &g, &w, &|v| v != 0, &|v, _| {
            heard[v].fetch_add(1, Ordering::SeqCst);
        });
        assert!(heard.iter().all(|h| h.load(Ordering::SeqCst) == 1));
    }
}
