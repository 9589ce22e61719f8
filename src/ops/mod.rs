//! The op library: what a node can do.
//!
//! Each family of ops lives in its own file and registers its ops (ports, config,
//! version) with [`builtin`]. The contract they implement is [`crate::op`].

mod artifacts;
pub mod cmd;
mod features;
mod io;
pub mod model;
mod plot;
pub mod search;
mod split;
pub mod util;
mod validate;

pub use crate::op::{
    short_type_name, ArtifactType, ConfigField, FieldDoc, Op, OpConfig, OpError, OpSpec, PathField, Port,
    Registry, RunDirWrite,
};

use std::path::{Component, Path};
use std::sync::OnceLock;

/// The ops nexusml ships with; built once per process.
pub fn builtin() -> &'static Registry {
    static BUILTIN: OnceLock<Registry> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let mut r = Registry::empty();
        io::register(&mut r);
        validate::register(&mut r);
        features::register(&mut r);
        split::register(&mut r);
        plot::register(&mut r);
        model::register(&mut r);
        search::register(&mut r);
        util::register(&mut r);
        cmd::register(&mut r);
        r
    })
}

/// A seed for this node derived from `base` and the node id, so two nodes given the
/// same base seed still draw different streams, identically on every run.
/// An op that uses it declares `OpSpec::seeded_by_node`, so the id enters its key.
pub fn node_seed(ctx: &crate::op::NodeContext<'_>, base: u64, labels: &[&[u8]]) -> u64 {
    let mut all: Vec<&[u8]> = Vec::with_capacity(labels.len() + 1);
    all.push(ctx.node_id().as_bytes());
    all.extend_from_slice(labels);
    crate::ml::rng::derive_seed(base, &all)
}

/// A path an op writes inside the run directory must stay there: relative, no `..`.
/// Checked when the op is built, so `dag check` refuses it.
pub(crate) fn inside_run_dir(field: &str, path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err(format!("`{field}` is empty"));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "`{field}` = `{path}` leaves the run directory (`..`): give a path inside it"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`{field}` = `{path}` is absolute: files of this op go inside the run directory, so give a relative path"
                ))
            }
        }
    }
    Ok(())
}

/// A name used as one file name (a model name): no directories, not `.` or `..`.
pub(crate) fn plain_file_name(field: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(format!(
            "`{field}` = `{name}` is not a plain file name: no `/`, `\\`, `.` or `..` (the directory is `output_dir`)"
        ));
    }
    Ok(())
}
