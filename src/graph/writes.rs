//! Who writes where in the run directory. Each op declares what it writes there
//! ([`RunDirWrite`]); the engine's own files are reserved. Two writers of one path, or
//! of a path inside another's directory (or file), would overwrite each other, so the
//! pipeline is refused before it runs.

use super::NodeIx;
use crate::op::RunDirWrite;
use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path};

/// A path the engine or the command line writes in every run directory.
#[derive(Debug, Clone, Copy)]
pub struct Reserved {
    /// Relative to the run directory.
    pub path: &'static str,
    /// A directory (everything inside it is reserved too).
    pub dir: bool,
    pub what: &'static str,
}

/// What the engine and the command line write in a run directory: no node may write
/// these, whatever the case of its letters (`Run.log` is `run.log` on macOS and
/// Windows).
pub const RESERVED: &[Reserved] = &[
    Reserved {
        path: "report.json",
        dir: false,
        what: "the run report",
    },
    Reserved {
        path: "run.log",
        dir: false,
        what: "the run's log",
    },
    Reserved {
        path: "report.html",
        dir: false,
        what: "the run report for people",
    },
    Reserved {
        path: "pipeline.svg",
        dir: false,
        what: "the pipeline's picture",
    },
    Reserved {
        path: "params.toml",
        dir: false,
        what: "the parameters a cluster run hands its jobs",
    },
    Reserved {
        path: "jobs",
        dir: true,
        what: "the cluster jobs' runs and logs",
    },
    Reserved {
        path: "nodes",
        dir: true,
        what: "the work directories of command nodes",
    },
];

/// Who claims a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    /// `RESERVED[i]`.
    Engine(usize),
    Node(NodeIx),
}

/// A place claimed, as lower-cased path components.
#[derive(Debug)]
struct Claim {
    owner: Owner,
    write: RunDirWrite,
    /// The path of a file or directory, or the directory of a family of files.
    anchor: Vec<String>,
    /// For a family of files: its name's prefix and suffix, lower-cased.
    pattern: Option<(String, String)>,
}

/// One overlap: `later` (always a node) and the earlier claim it collides with.
#[derive(Debug, Clone)]
pub(crate) struct Overlap {
    pub node: NodeIx,
    pub write: RunDirWrite,
    pub other: Owner,
    pub other_write: RunDirWrite,
}

/// A write that names no place inside the run directory (the directory itself).
#[derive(Debug, Clone)]
pub(crate) struct NotAPlace {
    pub node: NodeIx,
    pub write: RunDirWrite,
}

/// Lower-cased normal components; `None` for a path that leaves the directory (which
/// the op's own check refuses first).
fn components(path: &Path) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().to_ascii_lowercase()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn matches(name: &str, (prefix, suffix): &(String, String)) -> bool {
    name.len() >= prefix.len() + suffix.len()
        && name.starts_with(prefix.as_str())
        && name.ends_with(suffix.as_str())
}

/// Whether two `<prefix>…<suffix>` families can name one file.
fn compatible((p1, s1): &(String, String), (p2, s2): &(String, String)) -> bool {
    (p1.starts_with(p2.as_str()) || p2.starts_with(p1.as_str()))
        && (s1.ends_with(s2.as_str()) || s2.ends_with(s1.as_str()))
}

/// Whether claim `e` overlaps claim `x`, where `x`'s anchor is `e`'s or above it.
/// Every claim owns its path and everything below it (nothing can be written inside a
/// file), a family every `dir/<prefix>…<suffix>` and what is below those.
fn overlaps(e: &Claim, x: &Claim) -> bool {
    let rel = &e.anchor[x.anchor.len()..];
    match (&x.pattern, rel.first()) {
        (None, _) => true,
        (Some(px), Some(first)) => matches(first, px),
        (Some(px), None) => match &e.pattern {
            None => true,
            Some(pe) => compatible(pe, px),
        },
    }
}

/// Overlaps between nodes' run-directory writes and the engine's or each other's, at
/// most one per pair of writers, each on the later node; and every write that names the
/// run directory itself. Each claim is compared with the claims at its own path (the
/// earlier ones) and above it, taking the first overlap in each place, so every
/// collision yields at least one overlap. `writes[i]` is node `i`'s. Walks each claim's ancestors in a map by path,
/// so it costs about claims × depth, not claims².
pub(crate) fn overlaps_of(writes: &[Vec<RunDirWrite>]) -> (Vec<Overlap>, Vec<NotAPlace>) {
    let mut claims: Vec<Claim> = Vec::new();
    let mut not_places = Vec::new();
    let reserved = RESERVED.iter().enumerate().map(|(i, r)| {
        let write = if r.dir {
            RunDirWrite::Dir(r.path.into())
        } else {
            RunDirWrite::File(r.path.into())
        };
        (Owner::Engine(i), write)
    });
    let nodes = writes
        .iter()
        .enumerate()
        .flat_map(|(i, ws)| ws.iter().map(move |w| (Owner::Node(NodeIx(i)), w.clone())));
    for (owner, write) in reserved.chain(nodes) {
        let (path, pattern) = match &write {
            RunDirWrite::File(p) | RunDirWrite::Dir(p) => (p.as_path(), None),
            RunDirWrite::Files { dir, prefix, suffix } => (
                dir.as_path(),
                Some((prefix.to_ascii_lowercase(), suffix.to_ascii_lowercase())),
            ),
        };
        let Some(anchor) = components(path) else {
            continue;
        };
        if anchor.is_empty() && pattern.is_none() {
            if let Owner::Node(node) = owner {
                not_places.push(NotAPlace { node, write });
            }
            continue;
        }
        claims.push(Claim {
            owner,
            write,
            anchor,
            pattern,
        });
    }
    let mut by_anchor: BTreeMap<&[String], Vec<usize>> = BTreeMap::new();
    for (i, c) in claims.iter().enumerate() {
        by_anchor.entry(c.anchor.as_slice()).or_default().push(i);
    }
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (e, claim) in claims.iter().enumerate() {
        for depth in 0..=claim.anchor.len() {
            let Some(group) = by_anchor.get(&claim.anchor[..depth]) else {
                continue;
            };
            let same = depth == claim.anchor.len();
            // At the same anchor, each pair is seen from its later claim only.
            let hit = group
                .iter()
                .copied()
                .filter(|&x| x != e && (!same || x < e))
                .find(|&x| overlaps(claim, &claims[x]));
            if let Some(x) = hit {
                found.push((e.min(x), e.max(x)));
            }
        }
    }
    found.sort_unstable();
    let mut seen: HashSet<(Owner, Owner)> = HashSet::new();
    let mut out = Vec::new();
    for (first, later) in found {
        let (a, b) = (&claims[first], &claims[later]);
        // The engine's claims come first, so the later one is always a node's.
        let Owner::Node(node) = b.owner else { continue };
        if seen.insert((b.owner, a.owner)) {
            out.push(Overlap {
                node,
                write: b.write.clone(),
                other: a.owner,
                other_write: a.write.clone(),
            });
        }
    }
    out.sort_by_key(|o| o.node);
    (out, not_places)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> RunDirWrite {
        RunDirWrite::file(p)
    }

    /// (node, its write, the other owner) of each overlap.
    fn run(writes: &[Vec<RunDirWrite>]) -> Vec<(usize, String, Owner)> {
        overlaps_of(writes)
            .0
            .into_iter()
            .map(|o| (o.node.0, o.write.to_string(), o.other))
            .collect()
    }

    #[test]
    fn engine_files_are_reserved_in_any_case() {
        let got = run(&[
            vec![file("run.log")],
            vec![file("Report.JSON")],
            vec![file("jobs/x.log")],
            vec![file("plots/run.log")],
        ]);
        assert_eq!(
            got,
            [
                (0, "run.log".into(), Owner::Engine(1)),
                (1, "Report.JSON".into(), Owner::Engine(0)),
                (2, "jobs/x.log".into(), Owner::Engine(5)),
            ]
        );
    }

    #[test]
    fn two_writers_of_one_place_overlap() {
        let confusion = RunDirWrite::files("plots", "confusion_", ".png");
        let got = run(&[
            vec![file("out.json"), file("plots/distribution_a.png")],
            vec![file("./out.json")],
            vec![confusion.clone()],
            // Another family in the same directory: no file in common.
            vec![file("plots/distribution_b.png")],
            vec![confusion.clone()],
            // A file where another node needs a directory.
            vec![file("plots")],
            // Inside a family's file.
            vec![file("plots/confusion_x.png/y")],
            vec![file("plots/confusion_a.png")],
        ]);
        // Each later writer names an earlier one it collides with (the first in each
        // directory it lies in), so every collision is refused.
        assert_eq!(
            got,
            [
                (1, "./out.json".into(), Owner::Node(NodeIx(0))),
                (4, "plots/confusion_<…>.png".into(), Owner::Node(NodeIx(2))),
                (5, "plots".into(), Owner::Node(NodeIx(0))),
                (5, "plots".into(), Owner::Node(NodeIx(2))),
                (5, "plots".into(), Owner::Node(NodeIx(3))),
                (6, "plots/confusion_x.png/y".into(), Owner::Node(NodeIx(2))),
                (7, "plots/confusion_a.png".into(), Owner::Node(NodeIx(2))),
            ]
        );
    }

    #[test]
    fn distinct_places_and_families_do_not_overlap() {
        let got = run(&[
            vec![file("metrics.json"), file("validation.json")],
            vec![RunDirWrite::files("plots", "confusion_", ".png")],
            vec![RunDirWrite::files("plots", "distribution_", ".png")],
            vec![file("plots/confusion_a.csv"), file("plot/confusion_a.png")],
            vec![file("sample_prediction.json"), file("report.json.bak")],
        ]);
        assert!(got.is_empty(), "{got:?}");
        assert!(compatible(
            &("a".into(), ".png".into()),
            &("ab".into(), "c.png".into())
        ));
        assert!(!compatible(
            &("a".into(), ".png".into()),
            &("b".into(), ".png".into())
        ));
    }

    #[test]
    fn one_node_writing_one_file_twice_overlaps_itself() {
        // plot.distribution of columns `a b` and `a_b`: one chart file for both.
        let got = run(&[vec![
            file("plots/distribution_a_b.png"),
            file("plots/distribution_a_b.png"),
        ]]);
        assert_eq!(
            got,
            [(0, "plots/distribution_a_b.png".into(), Owner::Node(NodeIx(0)))]
        );
    }

    #[test]
    fn the_run_directory_itself_is_no_place() {
        let (overlaps, not_places) = overlaps_of(&[vec![file(".")], vec![file("./")]]);
        assert!(overlaps.is_empty());
        assert_eq!(not_places.iter().map(|n| n.node.0).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn many_writers_cost_claims_times_depth() {
        // 100,000 distinct files and one duplicate: found without comparing all pairs.
        let mut writes: Vec<Vec<RunDirWrite>> = (0..100_000)
            .map(|i| vec![file(&format!("out/{i}.json"))])
            .collect();
        writes.push(vec![file("out/7.json")]);
        let start = std::time::Instant::now();
        let got = run(&writes);
        assert_eq!(got, [(100_000, "out/7.json".into(), Owner::Node(NodeIx(7)))]);
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }
}
